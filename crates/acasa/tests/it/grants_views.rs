//! The grants service's views of other services' logs, against real NATS
//! and Postgres: the registry's people (registered through the registry's
//! API, their details and returns opened by its PersonDataService for the
//! purpose eligibility) into `grants.people`, the district and locality
//! those of the latest return if one is recorded, an erased person's facts
//! gone; the
//! referral system's outcomes into `grants.referral_support`, one row per
//! referral that counts as support; replay and rebuild equal live.

use std::{sync::Arc, time::Duration};

use acasa_domain::EncodedEvent;
use acasa_eventstore::{EventStore, NewCommit, Repository, RepositoryConfig};
use acasa_grants::domain::eligibility::Standing;
use acasa_grants::domain::{Category, Sex};
use acasa_grants::{people::PeopleProjection, referrals::ReferralsProjection};
use acasa_projection::{Positions, Projection, Worker};
use acasa_proto::{
    Message,
    partner::v1::{self as partner, ServiceKind, outcome::Kind},
    referrals::v1 as refs,
    registry::v1::{self as reg, registry_service_client::RegistryServiceClient},
    r#type::v1::{Date, Money},
};
use acasa_registry::grpc::{PersonDataService, RegistryService};
use acasa_runtime::{
    Authenticator, Role, Serving, TokenIssuer,
    person_data::{Purpose, RegistryPersonData},
};
use acasa_vault::{Keys, MasterKey, Vault};
use chrono::{NaiveDate, Utc};
use tokio::sync::watch;
use tonic::{Request, transport::Channel};
use uuid::Uuid;

use crate::harness::{Env, JWT_KEY_HEX};

const WAIT: Duration = Duration::from_secs(20);

const PEOPLE: &str = "SELECT t::text FROM grants.people t ORDER BY 1";
const SUPPORT: &str = "SELECT t::text FROM grants.referral_support t UNION ALL \
     SELECT t::text FROM grants.referrals t ORDER BY 1";

async fn migrate(env: &Env) {
    acasa_runtime::kit::migrate(&env.pool, sqlx::migrate!("../acasa-grants/migrations"), "grants").await.unwrap();
}

fn worker<P: Projection>(env: &Env, store: &EventStore, p: P) -> Worker<P> {
    Worker::new(Arc::new(p), env.pool.clone(), store.jetstream().clone(), crate::harness::worker_config(store))
}

fn vault(env: &Env) -> Vault {
    let master = MasterKey::from_bytes(&hex::decode(JWT_KEY_HEX).unwrap()).unwrap();
    Vault::new(env.pool.clone(), master, acasa_registry::VAULT_TABLE).unwrap()
}

fn people(channel: Channel) -> PeopleProjection {
    let issuer = TokenIssuer::hs256(&hex::decode(JWT_KEY_HEX).unwrap(), "acasa", "acasa");
    let data = RegistryPersonData::with_issuer(channel, issuer, acasa_grants::SERVICE, Purpose::Eligibility);
    PeopleProjection::new(Arc::new(data))
}

fn req<T>(issuer: &TokenIssuer, role: Role, msg: T) -> Request<T> {
    let token = issuer.issue("tester", &[role], None, Duration::from_secs(600)).unwrap();
    let mut r = Request::new(msg);
    r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

fn rid() -> String {
    Uuid::now_v7().to_string()
}

/// Records `person`'s return to `district` and `locality`; returns the registry position.
async fn record_return(
    registry: &mut RegistryServiceClient<Channel>,
    issuer: &TokenIssuer,
    person: Uuid,
    district: &str,
    locality: &str,
) -> u64 {
    let r = req(
        issuer,
        Role::Caseworker,
        reg::RecordReturnRequest {
            request_id: rid(),
            person_id: person.to_string(),
            return_details: Some(reg::ReturnDetails {
                return_date: Some(Date { year: 2025, month: 6, day: 1 }),
                district: district.into(),
                locality: locality.into(),
            }),
        },
    );
    registry.record_return(r).await.unwrap().into_inner().position
}

/// `person`'s applicant place in `grants.people`: locality, district, folded district, rural.
async fn place_of(env: &Env, person: Uuid) -> (Option<String>, Option<String>, Option<String>, Option<bool>) {
    sqlx::query_as("SELECT locality, district, district_folded, rural FROM grants.people WHERE person_id = $1")
        .bind(person)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

/// Registers a person with programme consent; returns the id and the registry position.
async fn register(
    registry: &mut RegistryServiceClient<Channel>,
    issuer: &TokenIssuer,
    sex: reg::Sex,
    district: &str,
    locality: &str,
) -> (Uuid, u64) {
    let r = req(
        issuer,
        Role::Caseworker,
        reg::RegisterPersonRequest {
            request_id: rid(),
            details: Some(reg::PersonDetails {
                given_name: "Maria".into(),
                family_name: format!("Ciobanu{}", rid()),
                birth_date: Some(Date { year: 1998, month: 3, day: 1 }),
                sex: sex as i32,
                home_district: district.into(),
                home_locality: locality.into(),
                languages: vec!["ro".into()],
                ..Default::default()
            }),
            contacts: Some(reg::Contacts { email: "maria@example.md".into(), phone: String::new() }),
            country_of_residence: "IT".into(),
            categories: vec![reg::Category::WomanEntrepreneur as i32, reg::Category::Returnee as i32],
            interests: vec![reg::Interest::EntrepreneurshipSupport as i32],
        },
    );
    let person = registry.register_person(r).await.unwrap().into_inner();
    let r = req(
        issuer,
        Role::Caseworker,
        reg::GiveConsentRequest {
            request_id: rid(),
            person_id: person.person_id.clone(),
            purpose: reg::ConsentPurpose::ProgrammeParticipation as i32,
            partner_id: String::new(),
            channel: reg::ConsentChannel::InPerson as i32,
        },
    );
    let position = registry.give_consent(r).await.unwrap().into_inner().position;
    (person.person_id.parse().unwrap(), position)
}

#[tokio::test]
async fn the_registrys_people_become_eligibility_facts_and_erasure_drops_them() {
    let env = Env::new().await;
    migrate(&env).await;
    let key = hex::decode(JWT_KEY_HEX).unwrap();
    let auth = Authenticator::hs256(&key, "acasa", "acasa");
    let issuer = TokenIssuer::hs256(&key, "acasa", "acasa");
    let positions = Positions::start(env.pool.clone());
    let store = EventStore::open(env.client().await, crate::harness::settings("registry")).await.unwrap();
    let registry = RegistryService::new(
        Repository::new(store.clone(), RepositoryConfig::default()),
        vault(&env),
        positions.clone(),
        env.pool.clone(),
    );
    let opener = PersonDataService::new(Keys::new(vault(&env)));
    let routes = opener.add_to(registry.routes(&auth), &auth);
    let serving: Serving = Serving::start(
        "127.0.0.1:0".parse().unwrap(),
        routes,
        &[RegistryService::NAME, PersonDataService::NAME],
        std::future::pending(),
    )
    .await
    .unwrap();
    let channel = Channel::from_shared(format!("http://{}", serving.local_addr)).unwrap().connect().await.unwrap();
    let mut client = RegistryServiceClient::new(channel.clone());
    let (stop, stopped) = watch::channel(false);
    let w = worker(&env, &store, people(channel.clone()));
    let running = tokio::spawn(async move { w.run(stopped).await.unwrap() });

    // A woman of the village of Costești, Ialoveni; a man of the town of Costești, Rîșcani.
    let (maria, _) = register(&mut client, &issuer, reg::Sex::Female, "Ialoveni", "s. Costești").await;
    let (ion, at) = register(&mut client, &issuer, reg::Sex::Male, "Rîșcani", "Costești").await;
    let stream = store.stream_name().to_owned();
    let deadline = || tokio::time::Instant::now() + WAIT;
    positions.wait_for(acasa_grants::PEOPLE_PROJECTION, &stream, at, deadline()).await.unwrap();
    let facts = acasa_grants::people::facts(&env.pool, maria).await.unwrap();
    assert_eq!(facts.standing, Standing::Active);
    assert!(facts.programme_consent);
    assert_eq!(facts.birth_date, NaiveDate::from_ymd_opt(1998, 3, 1));
    assert_eq!(facts.sex, Some(Sex::Female));
    assert_eq!((facts.rural, facts.district.as_deref()), (Some(true), Some("Ialoveni")));
    assert_eq!(facts.categories, [Category::Returnee, Category::WomanEntrepreneur]);
    let facts = acasa_grants::people::facts(&env.pool, ion).await.unwrap();
    assert_eq!((facts.sex, facts.rural), (Some(Sex::Male), Some(false)));
    let nobody = acasa_grants::people::facts(&env.pool, Uuid::now_v7()).await.unwrap();
    assert_eq!(nobody.standing, Standing::Unknown);

    // Elena, of the town of Costești (Rîșcani), returns to the village of
    // Costești in Ialoveni: her district is the return's, her locality rural.
    let (elena, _) = register(&mut client, &issuer, reg::Sex::Female, "Rîșcani", "Costești").await;
    let at = record_return(&mut client, &issuer, elena, "Ialoveni", "Costești").await;
    positions.wait_for(acasa_grants::PEOPLE_PROJECTION, &stream, at, deadline()).await.unwrap();
    let facts = acasa_grants::people::facts(&env.pool, elena).await.unwrap();
    assert_eq!((facts.district.as_deref(), facts.rural), (Some("Ialoveni"), Some(true)));
    let ialoveni = (Some("Costești".to_owned()), Some("Ialoveni".to_owned()), Some("ialoveni".to_owned()), Some(true));
    assert_eq!(place_of(&env, elena).await, ialoveni);
    // Her details updated after the return (another home): the return's place stands.
    let r = req(
        &issuer,
        Role::Caseworker,
        reg::UpdatePersonDetailsRequest {
            request_id: rid(),
            person_id: elena.to_string(),
            details: Some(reg::PersonDetails {
                given_name: "Elena".into(),
                family_name: format!("Rusu{}", rid()),
                birth_date: Some(Date { year: 1997, month: 7, day: 9 }),
                sex: reg::Sex::Female as i32,
                home_district: "Edineț".into(),
                home_locality: "Edineț".into(),
                languages: vec!["ro".into()],
                ..Default::default()
            }),
            country_of_residence: "MD".into(),
        },
    );
    let at = client.update_person_details(r).await.unwrap().into_inner().position;
    positions.wait_for(acasa_grants::PEOPLE_PROJECTION, &stream, at, deadline()).await.unwrap();
    assert_eq!(place_of(&env, elena).await, ialoveni);
    let facts = acasa_grants::people::facts(&env.pool, elena).await.unwrap();
    assert_eq!(facts.birth_date, NaiveDate::from_ymd_opt(1997, 7, 9), "the details are kept");
    // A later return corrects the earlier: the municipality of Cahul, not rural.
    let at = record_return(&mut client, &issuer, elena, "Cahul", "Cahul").await;
    positions.wait_for(acasa_grants::PEOPLE_PROJECTION, &stream, at, deadline()).await.unwrap();
    let cahul = (Some("Cahul".to_owned()), Some("Cahul".to_owned()), Some("cahul".to_owned()), Some(false));
    assert_eq!(place_of(&env, elena).await, cahul);
    // Maria, never returned, keeps her home place.
    assert_eq!(
        place_of(&env, maria).await,
        (Some("s. Costești".to_owned()), Some("Ialoveni".to_owned()), Some("ialoveni".to_owned()), Some(true))
    );

    // Ion is erased: nothing personal of his is left, and rebuilding (his
    // details no longer open) gives the same rows.
    let r = req(&issuer, Role::Admin, reg::ErasePersonRequest { request_id: rid(), person_id: ion.to_string() });
    let erased = client.erase_person(r).await.unwrap().into_inner().position;
    positions.wait_for(acasa_grants::PEOPLE_PROJECTION, &stream, erased, deadline()).await.unwrap();
    let facts = acasa_grants::people::facts(&env.pool, ion).await.unwrap();
    assert_eq!(
        facts,
        acasa_grants::domain::eligibility::PersonFacts { standing: Standing::Erased, ..Default::default() }
    );
    let (locality, district, rural, categories): (Option<String>, Option<String>, Option<bool>, Vec<i16>) =
        sqlx::query_as("SELECT locality, district_folded, rural, categories FROM grants.people WHERE person_id = $1")
            .bind(ion)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!((locality, district, rural, categories), (None, None, None, Vec::new()));

    let live: Vec<(String,)> = sqlx::query_as(PEOPLE).fetch_all(&env.pool).await.unwrap();
    assert_eq!(live.len(), 3);
    let commits: Vec<_> =
        crate::harness::all_commits(&store).await.into_iter().filter(|c| c.sequence <= erased).collect();
    let mut tx = env.pool.begin().await.unwrap();
    sqlx::query("TRUNCATE grants.people").execute(&mut *tx).await.unwrap();
    people(channel.clone()).apply(&mut tx, &commits).await.unwrap();
    let rebuilt: Vec<(String,)> = sqlx::query_as(PEOPLE).fetch_all(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(rebuilt, live);

    stop.send(true).unwrap();
    running.await.unwrap();
}

pub(crate) fn event(type_name: &str, m: &impl Message) -> EncodedEvent {
    EncodedEvent { type_name: type_name.to_owned(), schema_version: 1, data: m.encode_to_vec() }
}

pub(crate) async fn append(store: &EventStore, referral: Uuid, events: Vec<EncodedEvent>) -> u64 {
    let subject = format!("{}{referral}", acasa_grants::referrals::SUBJECT_PREFIX);
    let last = store.last_on(&subject, false).await.unwrap().map_or(0, |(sequence, _)| sequence);
    let commit = NewCommit {
        request_key: rid(),
        method: "test".into(),
        actor: "tester".into(),
        request_digest: Vec::new(),
        events,
        recorded_at: Utc::now(),
    };
    store.append(&subject, last, &commit).await.unwrap().sequence
}

pub(crate) fn created(person: Uuid, partner_id: Uuid, service: ServiceKind) -> EncodedEvent {
    let m = refs::ReferralCreated {
        person_id: person.to_string(),
        partner_id: partner_id.to_string(),
        need: Some(partner::Need { service: service as i32, requested_amount: None }),
        district: "Cahul".into(),
        ..Default::default()
    };
    event(acasa_referrals::codec::names::REFERRAL_CREATED, &m)
}

pub(crate) fn outcome(kind: Kind) -> EncodedEvent {
    let m = refs::ReferralOutcomeRecorded {
        outcome: Some(partner::Outcome { kind: Some(kind) }),
        at: Some(acasa_proto::Timestamp { seconds: 1_814_400_000, nanos: 0 }),
    };
    event(acasa_referrals::codec::names::REFERRAL_OUTCOME_RECORDED, &m)
}

pub(crate) fn service(s: ServiceKind) -> Kind {
    Kind::ServiceDelivered(partner::ServiceDelivered { service: s as i32 })
}

#[tokio::test]
async fn referral_outcomes_that_count_become_support_once() {
    assert_eq!(acasa_grants::referrals::REFERRAL_CREATED, acasa_referrals::codec::names::REFERRAL_CREATED);
    assert_eq!(
        acasa_grants::referrals::REFERRAL_OUTCOME_RECORDED,
        acasa_referrals::codec::names::REFERRAL_OUTCOME_RECORDED
    );
    let env = Env::new().await;
    migrate(&env).await;
    let store = EventStore::open(env.client().await, crate::harness::settings("referrals")).await.unwrap();
    let positions = Positions::start(env.pool.clone());
    let (person, mfi, provider) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let [accounting, loan, legal, not, pending] = [0; 5].map(|_| Uuid::now_v7());
    append(&store, accounting, vec![created(person, provider, ServiceKind::Consulting)]).await;
    append(&store, loan, vec![created(person, mfi, ServiceKind::Loan)]).await;
    append(&store, legal, vec![created(person, provider, ServiceKind::Legal), outcome(service(ServiceKind::Legal))])
        .await;
    append(&store, not, vec![created(person, mfi, ServiceKind::Loan)]).await;
    append(&store, pending, vec![created(person, provider, ServiceKind::Taxation)]).await;
    let accepted = refs::ReferralAccepted { at: None };
    append(&store, pending, vec![event(acasa_referrals::codec::names::REFERRAL_ACCEPTED, &accepted)]).await;
    // The provider delivered accounting where consulting was asked for.
    append(&store, accounting, vec![outcome(service(ServiceKind::Accounting))]).await;
    let money = Money { amount_minor: 5_000_000, currency: "MDL".into() };
    append(&store, loan, vec![outcome(Kind::LoanDisbursed(money))]).await;
    let last = append(&store, not, vec![outcome(Kind::NotDelivered(partner::NotDelivered { reason: 1 }))]).await;

    let (stop, stopped) = watch::channel(false);
    let w = worker(&env, &store, ReferralsProjection::new());
    let running = tokio::spawn(async move { w.run(stopped).await.unwrap() });
    let deadline = tokio::time::Instant::now() + WAIT;
    positions.wait_for(acasa_grants::REFERRALS_PROJECTION, store.stream_name(), last, deadline).await.unwrap();

    let rows: Vec<(Uuid, Uuid, i16, Uuid, NaiveDate)> = sqlx::query_as(
        "SELECT referral_id, person_id, kind, partner_id, delivered_on FROM grants.referral_support \
         ORDER BY referral_id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let on = NaiveDate::from_ymd_opt(2027, 7, 1).unwrap();
    let accounting_kind = acasa_proto::grants::v1::SupportKind::Accounting as i16;
    let loans_kind = acasa_proto::grants::v1::SupportKind::Loans as i16;
    assert_eq!(rows, [(accounting, person, accounting_kind, provider, on), (loan, person, loans_kind, mfi, on)]);

    // Replayed on top, and rebuilt from nothing: the same rows.
    let live: Vec<(String,)> = sqlx::query_as(SUPPORT).fetch_all(&env.pool).await.unwrap();
    let commits = crate::harness::all_commits(&store).await;
    let mut tx = env.pool.begin().await.unwrap();
    ReferralsProjection::new().apply(&mut tx, &commits).await.unwrap();
    let replayed: Vec<(String,)> = sqlx::query_as(SUPPORT).fetch_all(&mut *tx).await.unwrap();
    ReferralsProjection::new().reset(&mut tx).await.unwrap();
    ReferralsProjection::new().apply(&mut tx, &commits).await.unwrap();
    let rebuilt: Vec<(String,)> = sqlx::query_as(SUPPORT).fetch_all(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(replayed, live);
    assert_eq!(rebuilt, live);

    stop.send(true).unwrap();
    running.await.unwrap();
}
