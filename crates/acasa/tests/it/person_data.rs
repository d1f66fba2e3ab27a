//! The registry's `PersonDataService` over gRPC against real NATS and
//! Postgres, served as `acasa serve registry` serves it (the registry's
//! `ServiceDef`): another service's worker has the sealed fields it read from
//! the registry's log opened — the programme profile and contact points only
//! (for eligibility: birth date, sex, home and the place of a return, never
//! for matching), for `service` and `admin` tokens only; tampered or
//! mislabelled values,
//! unknown people and erased people (on every replica, and in a consumer's
//! rebuild from the log) open for no one.

use std::time::Duration;

use acasa_eventstore::{EventStore, StoredCommit};
use acasa_projection::Positions;
use acasa_proto::{
    Message as _,
    registry::v1::{
        self as pb, opened_item::Result as Opened, person_data_service_client::PersonDataServiceClient,
        registry_service_client::RegistryServiceClient, unavailable::Reason,
    },
};
use acasa_registry::{
    Registry,
    codec::types,
    grpc::{PersonDataService, RegistryService},
};
use acasa_runtime::{
    Authenticator, Config, Draining, Role, ServeContext, ServiceDef as _, Serving, TokenIssuer, TokenScope,
};
use acasa_vault::Keys;
use tonic::{Code, Request, transport::Channel};
use tonic_types::StatusExt as _;

use crate::harness::{Env, JWT_KEY_HEX, eventually, spans};
use crate::registry::{person, vault};

struct Api {
    _serving: Serving,
    channel: Channel,
    registry: RegistryServiceClient<Channel>,
    data: PersonDataServiceClient<Channel>,
    issuer: TokenIssuer,
    store: EventStore,
}

/// The registry's server as `acasa serve registry` builds it: its routes and
/// API names from its `ServiceDef`.
async fn start(env: &Env) -> Api {
    let key = hex::decode(JWT_KEY_HEX).unwrap();
    let vars = env.vars();
    let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let store = EventStore::open(env.client().await, crate::harness::settings("registry")).await.unwrap();
    let auth = Authenticator::hs256(&key, "acasa", "acasa");
    let ctx = ServeContext {
        config: &config,
        store: store.clone(),
        pool: env.pool.clone(),
        positions: Positions::start(env.pool.clone()).with_log(store.jetstream().clone()),
        auth: &auth,
        draining: Draining::never(),
    };
    let routes = Registry.routes(ctx).await.unwrap();
    let serving =
        Serving::start("127.0.0.1:0".parse().unwrap(), routes, Registry.apis(), std::future::pending()).await.unwrap();
    let channel = Channel::from_shared(format!("http://{}", serving.local_addr)).unwrap().connect().await.unwrap();
    Api {
        _serving: serving,
        registry: RegistryServiceClient::new(channel.clone()),
        data: PersonDataServiceClient::new(channel.clone()),
        channel,
        issuer: TokenIssuer::hs256(&key, "acasa", "acasa"),
        store,
    }
}

impl Api {
    fn req<T>(&self, role: Role, msg: T) -> Request<T> {
        self.req_as("placements", role, msg)
    }

    /// A request with a token of `subject` (a service's name, for the purposes policy).
    fn req_as<T>(&self, subject: &str, role: Role, msg: T) -> Request<T> {
        let scope = match role {
            Role::Partner => TokenScope { partner_id: Some("p-1"), host_id: None },
            Role::Host => TokenScope { partner_id: None, host_id: Some("h-1") },
            _ => TokenScope::default(),
        };
        let token = self.issuer.issue_scoped(subject, &[role], scope, Duration::from_secs(300)).unwrap();
        let mut r = Request::new(msg);
        r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        r
    }

    async fn register(&mut self, body: pb::RegisterPersonRequest) -> pb::RegisterPersonResponse {
        let r = self.req(Role::Caseworker, body);
        self.registry.register_person(r).await.unwrap().into_inner()
    }

    /// OpenPersonData with a `service` token.
    async fn open(&mut self, items: Vec<pb::SealedItem>) -> Result<Vec<pb::OpenedItem>, tonic::Status> {
        let r = self.req(Role::Service, pb::OpenPersonDataRequest { items, purpose: pb::Purpose::Matching as i32 });
        Ok(self.data.open_person_data(r).await?.into_inner().items)
    }

    /// The sealed fields of the commit at `position`.
    async fn sealed_at(&self, position: u64) -> Vec<pb::SealedItem> {
        sealed_fields(&self.store.get(position).await.unwrap())
    }
}

/// Every sealed `details`, `contacts` and `return_details` field of a commit's events, labelled
/// as a consumer reading the log labels them: the subject's person id, the
/// event's type name, the field's name.
fn sealed_fields(commit: &StoredCommit) -> Vec<pb::SealedItem> {
    let person_id = commit.subject.rsplit('.').next().unwrap().to_owned();
    let item = |event_type: &str, field: &str, sealed: Option<pb::Sealed>| pb::SealedItem {
        person_id: person_id.clone(),
        event_type: event_type.into(),
        field: field.into(),
        sealed: Some(sealed.unwrap()),
    };
    let mut out = Vec::new();
    for e in &commit.events {
        match e.type_name.as_str() {
            types::REGISTERED => {
                let m = pb::PersonRegistered::decode(e.data.as_slice()).unwrap();
                out.push(item(types::REGISTERED, "details", m.details));
                out.push(item(types::REGISTERED, "contacts", m.contacts));
            }
            types::DETAILS_UPDATED => {
                let m = pb::PersonDetailsUpdated::decode(e.data.as_slice()).unwrap();
                out.push(item(types::DETAILS_UPDATED, "details", m.details));
            }
            types::CONTACTS_UPDATED => {
                let m = pb::ContactsUpdated::decode(e.data.as_slice()).unwrap();
                out.push(item(types::CONTACTS_UPDATED, "contacts", m.contacts));
            }
            types::RETURN_RECORDED => {
                let m = pb::ReturnRecorded::decode(e.data.as_slice()).unwrap();
                out.push(item(types::RETURN_RECORDED, "return_details", m.return_details));
            }
            _ => {}
        }
    }
    out
}

/// The programme profile of `details`, as the registry should answer it.
fn profile_of(d: &pb::PersonDetails) -> Opened {
    Opened::Profile(pb::ProgrammeProfile {
        given_name: d.given_name.clone(),
        family_name: d.family_name.clone(),
        languages: d.languages.clone(),
        profession: d.profession.clone(),
        scientific_field: d.scientific_field.clone(),
        skills: d.skills.clone(),
        education: d.education.clone(),
    })
}

fn unavailable(reason: Reason) -> Option<Opened> {
    Some(Opened::Unavailable(pb::Unavailable { reason: reason as i32 }))
}

fn fields_of(e: &tonic::Status) -> Vec<String> {
    e.get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|f| f.field.clone()).collect())
        .unwrap_or_default()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_service_token_has_the_programme_profile_and_contacts_opened_and_other_roles_are_refused() {
    let env = Env::new().await;
    let exporter = spans();
    let mut api = start(&env).await;
    let body = person("pd-1", "Ana", "Moraru");
    let details = body.details.clone().unwrap();
    let registered = api.register(body.clone()).await;
    let items = api.sealed_at(registered.position).await;
    assert_eq!(items.len(), 2, "the registration's details and contacts");
    // The values are sealed in the log (so that what follows shows the registry opening them).
    let log = api.store.get_raw(registered.position).await.unwrap().1;
    for s in ["Moraru", "agronomist", "irrigation", "ana@example.md"] {
        assert!(!contains(&log, s), "{s} is in clear in the log");
    }

    // Contacts replaced later: a ContactsUpdated opens too.
    let new_contacts = pb::Contacts { email: "ana.moraru@example.md".into(), phone: "+37369123456".into() };
    let update = pb::UpdateContactsRequest {
        request_id: "pd-contacts".into(),
        person_id: registered.person_id.clone(),
        contacts: Some(new_contacts.clone()),
    };
    let updated = api.registry.update_contacts(api.req(Role::Caseworker, update)).await.unwrap().into_inner().position;
    let mut all = items.clone();
    all.extend(api.sealed_at(updated).await);
    assert_eq!(all[2].event_type, types::CONTACTS_UPDATED);

    let opened = api.open(all.clone()).await.unwrap();
    assert!(opened.iter().all(|o| o.person_id == registered.person_id));
    let results: Vec<Option<Opened>> = opened.iter().map(|o| o.result.clone()).collect();
    assert_eq!(
        results,
        [
            Some(profile_of(&details)),
            Some(Opened::Contacts(pb::ContactPoints { email: "ana@example.md".into(), phone: "+393331234567".into() })),
            Some(Opened::Contacts(pb::ContactPoints { email: new_contacts.email, phone: new_contacts.phone })),
        ]
    );
    // Nothing a programme does not need is in the answer: no IDNP, birth date, sex, home district or locality.
    let answer = pb::OpenPersonDataResponse { items: opened }.encode_to_vec();
    assert!(contains(&answer, "agronomist") && contains(&answer, "Bologna"), "the answer holds the profile");
    for s in [details.idnp.as_str(), "Ungheni", "Sculeni"] {
        assert!(!contains(&answer, s), "{s} is in the answer");
    }

    // An admin may too; nobody else.
    let r = api.req(Role::Admin, pb::OpenPersonDataRequest { items: all.clone(), purpose: 0 });
    assert_eq!(api.data.open_person_data(r).await.unwrap().into_inner().items.len(), 3);
    for role in [Role::Caseworker, Role::Viewer, Role::Partner, Role::Editor, Role::Host, Role::Finance] {
        let r = api.req(role, pb::OpenPersonDataRequest { items: all.clone(), purpose: 0 });
        let e = api.data.open_person_data(r).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{role}");
    }
    let e = api.data.open_person_data(pb::OpenPersonDataRequest { items: all.clone(), purpose: 0 }).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);

    // Served as `acasa serve registry` serves it: in health and reflection beside the registry's API.
    let mut health = tonic_health::pb::health_client::HealthClient::new(api.channel.clone());
    let s = health
        .check(tonic_health::pb::HealthCheckRequest { service: PersonDataService::NAME.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    let (mut listed, _) = crate::grpc::reflected(&api.channel).await;
    listed.sort();
    let mut expected = acasa_runtime::server::advertised(&[RegistryService::NAME, PersonDataService::NAME]);
    expected.sort();
    assert_eq!(listed, expected);

    // The call's span has the number of items, and nothing personal.
    let span = eventually(Duration::from_secs(10), || async {
        let found = exporter.get_finished_spans().unwrap_or_default();
        found.into_iter().find(|s| {
            s.name == "registry.open_person_data"
                && s.attributes.iter().any(|a| a.key.as_str() == "items" && a.value.as_str() == "3")
        })
    })
    .await;
    for a in &span.attributes {
        let value = a.value.as_str();
        for s in ["Ana", "Moraru", "agronomist", "example.md", registered.person_id.as_str()] {
            assert!(!value.contains(s), "{s} in the span's {}", a.key);
        }
    }
}

#[tokio::test]
async fn tampered_mislabelled_unknown_and_malformed_items() {
    let env = Env::new().await;
    let mut api = start(&env).await;
    let ana = api.register(person("pd-a", "Ana", "Moraru")).await;
    let ion = api.register(person("pd-i", "Ion", "Rusu")).await;
    let items = api.sealed_at(ana.position).await;
    let (details, contacts) = (items[0].clone(), items[1].clone());

    let mut flipped = contacts.clone();
    let ciphertext = &mut flipped.sealed.as_mut().unwrap().ciphertext;
    let last = ciphertext.len() - 1;
    ciphertext[last] ^= 0x01;
    let as_ion = pb::SealedItem { person_id: ion.person_id.clone(), ..details.clone() };
    let as_update = pb::SealedItem { event_type: types::DETAILS_UPDATED.into(), ..details.clone() };
    let as_contacts = pb::SealedItem { field: "contacts".into(), ..details.clone() };
    let stranger = uuid::Uuid::now_v7().to_string();
    let unknown = pb::SealedItem { person_id: stranger.clone(), ..details.clone() };
    let opened =
        api.open(vec![flipped, as_ion, as_update, as_contacts, unknown, details.clone(), contacts]).await.unwrap();
    let results: Vec<Option<Opened>> = opened.iter().map(|o| o.result.clone()).collect();
    assert_eq!(
        results[..5],
        [
            unavailable(Reason::NotOpenable),
            unavailable(Reason::NotOpenable),
            unavailable(Reason::NotOpenable),
            unavailable(Reason::NotOpenable),
            unavailable(Reason::UnknownPerson),
        ]
    );
    assert_eq!(opened[1].person_id, ion.person_id);
    assert_eq!(opened[4].person_id, stranger);
    // The good ones in the same call open, in order.
    assert!(matches!(&results[5], Some(Opened::Profile(p)) if p.family_name == "Moraru"));
    assert!(matches!(&results[6], Some(Opened::Contacts(c)) if c.email == "ana@example.md"));

    // Bad requests name the field.
    let return_details = pb::SealedItem { field: "return_details".into(), ..details.clone() };
    let e = api.open(vec![return_details]).await.unwrap_err();
    assert_eq!((e.code(), fields_of(&e)), (Code::InvalidArgument, vec!["items[0].field".to_owned()]));
    let bad_event = pb::SealedItem { event_type: types::RETURN_RECORDED.into(), ..details.clone() };
    let bad_id = pb::SealedItem { person_id: "someone".into(), ..details.clone() };
    let no_value = pb::SealedItem { sealed: None, ..details.clone() };
    let e = api.open(vec![details.clone(), bad_event, bad_id, no_value]).await.unwrap_err();
    assert_eq!(fields_of(&e), ["items[1].event_type", "items[2].person_id", "items[3].sealed"]);
    assert!(!e.message().contains("someone"), "the request's values are not echoed: {}", e.message());
    let e = api.open(vec![]).await.unwrap_err();
    assert_eq!((e.code(), fields_of(&e)), (Code::InvalidArgument, vec!["items".to_owned()]));
    let e = api.open(vec![details.clone(); 501]).await.unwrap_err();
    assert_eq!((e.code(), fields_of(&e)), (Code::InvalidArgument, vec!["items".to_owned()]));
    // 500 is the limit, and a person in every one of them is one key.
    let opened = api.open(vec![details.clone(); 500]).await.unwrap();
    assert_eq!(opened.len(), 500);
    assert!(opened.iter().all(|o| matches!(&o.result, Some(Opened::Profile(p)) if p.given_name == "Ana")));
}

#[tokio::test]
async fn after_erasure_nothing_opens_for_anyone_on_any_replica_nor_in_a_rebuild() {
    let env = Env::new().await;
    let mut api = start(&env).await;
    let zamfira = api.register(person("pd-z", "Zamfira", "Ursachi")).await;
    let petru = api.register(person("pd-p", "Petru", "Botnaru")).await;
    let id = uuid::Uuid::parse_str(&zamfira.person_id).unwrap();
    let mut items = api.sealed_at(zamfira.position).await;
    items.extend(api.sealed_at(petru.position).await);
    let opened = api.open(items.clone()).await.unwrap();
    assert!(opened.iter().all(|o| !matches!(o.result, Some(Opened::Unavailable(_)))), "{opened:?}");

    // Another replica, whose key cache holds Zamfira's key from before the erasure.
    let keys = Keys::new(vault(&env));
    assert!(keys.get(id).await.unwrap().is_some());
    let auth = Authenticator::hs256(&hex::decode(JWT_KEY_HEX).unwrap(), "acasa", "acasa");
    let replica = Serving::start(
        "127.0.0.1:0".parse().unwrap(),
        PersonDataService::new(keys.clone()).add_to(tonic::service::Routes::default(), &auth),
        &[PersonDataService::NAME],
        std::future::pending(),
    )
    .await
    .unwrap();
    let channel = Channel::from_shared(format!("http://{}", replica.local_addr)).unwrap().connect().await.unwrap();
    let mut other = PersonDataServiceClient::new(channel);

    let erase = pb::ErasePersonRequest { request_id: "pd-erase".into(), person_id: zamfira.person_id.clone() };
    api.registry.erase_person(api.req(Role::Admin, erase)).await.unwrap();

    let erased = [unavailable(Reason::Erased), unavailable(Reason::Erased)];
    let opened = api.open(items.clone()).await.unwrap();
    assert_eq!(opened[..2].iter().map(|o| o.result.clone()).collect::<Vec<_>>(), erased);
    assert!(matches!(&opened[2].result, Some(Opened::Profile(p)) if p.family_name == "Botnaru"), "others open");
    assert!(keys.get(id).await.unwrap().is_some(), "the other replica still caches the key");
    let r = api.req(Role::Service, pb::OpenPersonDataRequest { items: items[..2].to_vec(), purpose: 0 });
    let opened = other.open_person_data(r).await.unwrap().into_inner().items;
    assert_eq!(opened.iter().map(|o| o.result.clone()).collect::<Vec<_>>(), erased, "not with a cached key");

    // A consumer rebuilding its projection reads the log again: every sealed
    // field of the person is still there, and none opens.
    let subject = api.store.subject("person", &zamfira.person_id);
    let commits = api.store.load(&subject, 0).await.unwrap();
    let again: Vec<pb::SealedItem> = commits.iter().flat_map(sealed_fields).collect();
    assert_eq!(again, items[..2], "the log is intact");
    let opened = api.open(again).await.unwrap();
    assert!(opened.iter().all(|o| o.result == unavailable(Reason::Erased)), "{opened:?}");
}

#[tokio::test]
async fn each_service_has_only_the_purposes_the_policy_grants_it() {
    let env = Env::new().await;
    let mut api = start(&env).await;
    let body = person("pd-purpose", "Elena", "Rusu");
    let details = body.details.clone().unwrap();
    let registered = api.register(body).await;
    let items = api.sealed_at(registered.position).await;
    let ask = |purpose: pb::Purpose| pb::OpenPersonDataRequest { items: items[..1].to_vec(), purpose: purpose as i32 };
    // Grants checks eligibility: birth date, sex, home district and locality, no names.
    let r = api.req_as("grants", Role::Service, ask(pb::Purpose::Eligibility));
    let opened = api.data.open_person_data(r).await.unwrap().into_inner().items;
    assert_eq!(
        opened[0].result,
        Some(Opened::Eligibility(pb::EligibilityFacts {
            birth_date: details.birth_date,
            sex: details.sex,
            home_district: details.home_district.clone(),
            home_locality: details.home_locality.clone(),
        }))
    );
    // Placements matches, and may not ask for eligibility facts.
    let r = api.req_as("placements", Role::Service, ask(pb::Purpose::Eligibility));
    let e = api.data.open_person_data(r).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    let r = api.req_as("placements", Role::Service, ask(pb::Purpose::Unspecified));
    let opened = api.data.open_person_data(r).await.unwrap().into_inner().items;
    assert_eq!(opened[0].result, Some(profile_of(&details)));
    // Content sends campaigns: the languages of the details, nothing else.
    let r = api.req_as("content", Role::Service, ask(pb::Purpose::Campaigns));
    let opened = api.data.open_person_data(r).await.unwrap().into_inner().items;
    assert_eq!(opened[0].result, Some(Opened::Campaign(pb::CampaignProfile { languages: details.languages.clone() })));
    // A service the policy does not name gets nothing; an admin anything.
    let r = api.req_as("content", Role::Service, ask(pb::Purpose::Matching));
    assert_eq!(api.data.open_person_data(r).await.unwrap_err().code(), tonic::Code::PermissionDenied);
    let r = api.req_as("ops", Role::Admin, ask(pb::Purpose::Eligibility));
    assert!(api.data.open_person_data(r).await.is_ok());
    // An unknown purpose is a bad field.
    let bad = pb::OpenPersonDataRequest { items: items[..1].to_vec(), purpose: 7 };
    let e = api.data.open_person_data(api.req_as("grants", Role::Service, bad)).await.unwrap_err();
    assert_eq!(fields_of(&e), ["purpose"]);

    // Her return: for eligibility the district and locality returned to
    // (no date), in the order asked; for matching, never.
    let ret = pb::ReturnDetails {
        return_date: Some(acasa_proto::r#type::v1::Date { year: 2025, month: 6, day: 1 }),
        district: "Căușeni".into(),
        locality: "Tocuz".into(),
    };
    let r = api.req(
        Role::Caseworker,
        pb::RecordReturnRequest {
            request_id: "pd-return".into(),
            person_id: registered.person_id.clone(),
            return_details: Some(ret),
        },
    );
    let at = api.registry.record_return(r).await.unwrap().into_inner().position;
    let returned = api.sealed_at(at).await;
    assert_eq!(returned.len(), 1, "{returned:?}");
    assert_eq!(
        (returned[0].field.as_str(), returned[0].event_type.as_str()),
        ("return_details", types::RETURN_RECORDED)
    );
    let both = vec![returned[0].clone(), items[0].clone()];
    let ask = |purpose: pb::Purpose| pb::OpenPersonDataRequest { items: both.clone(), purpose: purpose as i32 };
    let r = api.req_as("grants", Role::Service, ask(pb::Purpose::Eligibility));
    let opened = api.data.open_person_data(r).await.unwrap().into_inner().items;
    assert_eq!(
        opened[0].result,
        Some(Opened::ReturnPlace(pb::ReturnPlace { district: "Căușeni".into(), locality: "Tocuz".into() }))
    );
    assert_eq!(opened[0].person_id, registered.person_id);
    assert!(matches!(&opened[1].result, Some(Opened::Eligibility(f)) if f.home_district == details.home_district));
    for (subject, role) in [("grants", Role::Service), ("placements", Role::Service), ("ops", Role::Admin)] {
        for purpose in [pb::Purpose::Matching, pb::Purpose::Unspecified] {
            let e = api.data.open_person_data(api.req_as(subject, role, ask(purpose))).await.unwrap_err();
            assert_eq!((e.code(), fields_of(&e)), (Code::InvalidArgument, vec!["items[0].field".to_owned()]));
        }
    }
    // Labelled as another event, it is refused; erased, it opens for no one.
    let as_details = pb::SealedItem { event_type: types::REGISTERED.into(), ..returned[0].clone() };
    let bad = pb::OpenPersonDataRequest { items: vec![as_details], purpose: pb::Purpose::Eligibility as i32 };
    let e = api.data.open_person_data(api.req_as("grants", Role::Service, bad)).await.unwrap_err();
    assert_eq!(fields_of(&e), ["items[0].event_type"]);
    let erase = pb::ErasePersonRequest { request_id: "pd-purpose-erase".into(), person_id: registered.person_id };
    api.registry.erase_person(api.req(Role::Admin, erase)).await.unwrap();
    let r = api.req_as("grants", Role::Service, ask(pb::Purpose::Eligibility));
    let opened = api.data.open_person_data(r).await.unwrap().into_inner().items;
    assert!(opened.iter().all(|o| o.result == unavailable(Reason::Erased)), "{opened:?}");
}
