//! Placements over gRPC against real NATS and Postgres, with the registry
//! beside it as the source of people (its events projected into the
//! placements' own view, sealed fields opened through the registry's
//! PersonDataService): a graduate's placement from offer to payment, the
//! host's and finance's roles, the last place and the travel cap under
//! concurrency, erasure of a placed person, and rebuild equals live.

use std::{sync::Arc, time::Duration};

use acasa_domain::formats::make_national_code;
use acasa_eventstore::{EventStore, Repository, RepositoryConfig};
use acasa_placements::{
    deadlines::Deadlines, grpc::PlacementService, people::PeopleProjection, projection::PlacementsProjection,
};
use acasa_projection::{Positions, Projection};
use acasa_proto::{
    placements::v1::{self as pb, placement_service_client::PlacementServiceClient},
    registry::v1::{self as reg, registry_service_client::RegistryServiceClient},
    r#type::v1::{Date, Money},
};
use acasa_registry::grpc::{PersonDataService, RegistryService};
use acasa_runtime::{Authenticator, Role, Serving, TokenIssuer, TokenScope, person_data::Purpose};
use acasa_vault::Keys;
use chrono::NaiveDate;
use rand::Rng as _;
use tokio::sync::watch;
use tonic::{Code, Request, Status, transport::Channel};
use tonic_types::StatusExt as _;

use crate::harness::{Env, JWT_KEY_HEX, person_data, serve, vault, worker};

const WAIT: Duration = Duration::from_secs(20);

struct Stack {
    _registry: Serving,
    _placements: Serving,
    registry: RegistryServiceClient<Channel>,
    client: PlacementServiceClient<Channel>,
    issuer: TokenIssuer,
    store: EventStore,
    registry_store: EventStore,
    registry_channel: Channel,
    deadlines: Deadlines,
    positions: Positions,
    stop: watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

fn people(channel: Channel) -> PeopleProjection {
    PeopleProjection::new(Arc::new(person_data(channel, acasa_placements::SERVICE, Purpose::Matching)))
}

async fn start(env: &Env) -> Stack {
    let key = hex::decode(JWT_KEY_HEX).unwrap();
    let auth = Authenticator::hs256(&key, "acasa", "acasa");
    let positions = Positions::start(env.pool.clone());

    let registry_store = EventStore::open(env.client().await, crate::harness::settings("registry")).await.unwrap();
    let registry = RegistryService::new(
        Repository::new(registry_store.clone(), RepositoryConfig::default()),
        vault(env, acasa_registry::VAULT_TABLE),
        positions.clone(),
        env.pool.clone(),
    );
    let opener = PersonDataService::new(Keys::new(vault(env, acasa_registry::VAULT_TABLE)));
    let routes = opener.add_to(registry.routes(&auth), &auth);
    let (registry_serving, registry_channel) = serve(routes, &[RegistryService::NAME, PersonDataService::NAME]).await;

    let store = EventStore::open(env.client().await, crate::harness::settings("placements")).await.unwrap();
    let service = PlacementService::new(store.clone(), positions.clone(), env.pool.clone());
    let (placements_serving, channel) = serve(service.routes(&auth), &[PlacementService::NAME]).await;

    let (stop, stopped) = watch::channel(false);
    let mut workers = Vec::new();
    let w = worker(env, &store, PlacementsProjection);
    let s = stopped.clone();
    workers.push(tokio::spawn(async move { w.run(s).await.unwrap() }));
    let w = worker(env, &registry_store, people(registry_channel.clone()));
    workers.push(tokio::spawn(async move { w.run(stopped).await.unwrap() }));
    let deadlines = Deadlines::new(
        Repository::new(store.clone(), RepositoryConfig::default()),
        env.pool.clone(),
        Duration::from_secs(3600),
    );
    Stack {
        _registry: registry_serving,
        _placements: placements_serving,
        registry: RegistryServiceClient::new(registry_channel.clone()),
        client: PlacementServiceClient::new(channel),
        issuer: TokenIssuer::hs256(&key, "acasa", "acasa"),
        store,
        registry_store,
        registry_channel,
        deadlines,
        positions: positions.clone(),
        stop,
        workers,
    }
}

fn idno() -> String {
    let prefix: String = (0..12).map(|_| char::from(b'0' + rand::rng().random_range(0..10u8))).collect();
    make_national_code(&prefix).unwrap()
}

fn mdl(amount_minor: i64) -> Option<Money> {
    Some(Money { amount_minor, currency: "MDL".into() })
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn date(d: NaiveDate) -> Option<Date> {
    Some(acasa_placements::codec::date(d))
}

fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The rule a FAILED_PRECONDITION names.
fn rule(s: &Status) -> String {
    assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
    s.get_error_details().precondition_failure().expect("a named rule").violations[0].r#type.clone()
}

fn fields(s: &Status) -> Vec<String> {
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    s.get_error_details().bad_request().unwrap().field_violations.iter().map(|f| f.field.clone()).collect()
}

struct Graduate<'a> {
    tag: &'a str,
    category: reg::Category,
    profession: &'a str,
    skills: &'a [&'a str],
    languages: &'a [&'a str],
    consent: bool,
}

impl Default for Graduate<'_> {
    fn default() -> Self {
        Self {
            tag: "a",
            category: reg::Category::OverseasGraduate,
            profession: "Civil Engineering",
            skills: &["bridges", "cooking"],
            languages: &["ro", "en"],
            consent: true,
        }
    }
}

impl Stack {
    fn token(&self, roles: &[Role], host: Option<&str>) -> String {
        let scope = TokenScope { partner_id: None, host_id: host };
        self.issuer.issue_scoped("tester", roles, scope, Duration::from_secs(600)).unwrap()
    }

    fn req<T>(&self, role: Role, msg: T) -> Request<T> {
        self.with_token(&self.token(&[role], None), msg)
    }

    fn as_host<T>(&self, host: &str, msg: T) -> Request<T> {
        self.with_token(&self.token(&[Role::Host], Some(host)), msg)
    }

    fn with_token<T>(&self, token: &str, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        r
    }

    async fn host(&mut self, name: &str) -> (String, u64) {
        let r = self.req(
            Role::Caseworker,
            pb::RegisterHostRequest {
                request_id: rid(),
                idno: idno(),
                details: Some(pb::HostDetails {
                    kind: pb::HostKind::PrivateEmployer as i32,
                    name: name.into(),
                    district: "Cahul".into(),
                    contact: Some(pb::HostContact {
                        name: "HR office".into(),
                        email: "hr@host.md".into(),
                        phone: String::new(),
                    }),
                    hosts: vec!["Bridges".into(), "Roads".into()],
                }),
            },
        );
        let r = self.client.register_host(r).await.unwrap().into_inner();
        (r.host_id, r.position)
    }

    fn terms(places: i32, cap: i64) -> pb::OfferTerms {
        pb::OfferTerms {
            kind: pb::PlacementKind::GraduatePlacement as i32,
            subject: "Civil engineering".into(),
            places,
            term_months: 6,
            allowance: mdl(600_000),
            travel_cap: mdl(cap),
            start_from: date(day(2027, 1, 1)),
            start_until: date(day(2027, 3, 1)),
            languages: vec!["ro".into(), "en".into()],
        }
    }

    async fn offer(&mut self, host: &str, places: i32, cap: i64) -> String {
        let r = self.req(
            Role::Caseworker,
            pb::PublishOfferRequest { request_id: rid(), host_id: host.into(), terms: Some(Self::terms(places, cap)) },
        );
        self.client.publish_offer(r).await.unwrap().into_inner().offer_id
    }

    /// Registers a person (with programme consent unless told); returns the
    /// id and the registry position.
    async fn person(&mut self, g: Graduate<'_>) -> (String, u64) {
        let r = self.req(
            Role::Caseworker,
            reg::RegisterPersonRequest {
                request_id: format!("person-{}-{}", g.tag, rid()),
                details: Some(reg::PersonDetails {
                    given_name: "Ion".into(),
                    family_name: format!("Rusu{}", g.tag),
                    birth_date: Some(Date { year: 1998, month: 3, day: 1 }),
                    languages: g.languages.iter().map(|l| (*l).into()).collect(),
                    profession: g.profession.into(),
                    skills: g.skills.iter().map(|s| (*s).into()).collect(),
                    ..Default::default()
                }),
                contacts: Some(reg::Contacts { email: "ion@example.md".into(), phone: "+37369000001".into() }),
                country_of_residence: "DE".into(),
                categories: vec![g.category as i32],
                interests: vec![reg::Interest::Placement as i32],
            },
        );
        let person = self.registry.register_person(r).await.unwrap().into_inner();
        let mut position = person.position;
        if g.consent {
            let r = self.req(
                Role::Caseworker,
                reg::GiveConsentRequest {
                    request_id: rid(),
                    person_id: person.person_id.clone(),
                    purpose: reg::ConsentPurpose::ProgrammeParticipation as i32,
                    partner_id: String::new(),
                    channel: reg::ConsentChannel::InPerson as i32,
                },
            );
            position = self.registry.give_consent(r).await.unwrap().into_inner().position;
        }
        (person.person_id, position)
    }

    async fn propose(&mut self, offer: &str, person: &str, min: u64) -> Result<pb::ProposePlacementResponse, Status> {
        let r = self.req(
            Role::Caseworker,
            pb::ProposePlacementRequest {
                request_id: rid(),
                offer_id: offer.into(),
                person_id: person.into(),
                min_registry_position: min,
            },
        );
        self.client.propose_placement(r).await.map(|r| r.into_inner())
    }

    /// Proposed, accepted, signed and started on `start`.
    async fn running(&mut self, offer: &str, person: &str, min: u64, start: NaiveDate) -> String {
        let id = self.propose(offer, person, min).await.unwrap().placement_id;
        let r = self.req(Role::Caseworker, pb::AcceptPlacementRequest { request_id: rid(), placement_id: id.clone() });
        self.client.accept_placement(r).await.unwrap();
        let r = self.req(
            Role::Caseworker,
            pb::SignAgreementRequest {
                request_id: rid(),
                placement_id: id.clone(),
                signed_on: date(day(2026, 12, 20)),
                start_on: date(start),
                reference: "AG-2026-17".into(),
            },
        );
        self.client.sign_agreement(r).await.unwrap();
        let r = self.req(
            Role::Caseworker,
            pb::StartPlacementRequest { request_id: rid(), placement_id: id.clone(), started_on: date(start) },
        );
        self.client.start_placement(r).await.unwrap();
        id
    }

    async fn last(&self) -> u64 {
        crate::harness::last_commit(&self.store).await
    }

    async fn placement(&mut self, token: &str, id: &str) -> Result<pb::Placement, Status> {
        let min_position = self.last().await;
        let r = self.with_token(token, pb::GetPlacementRequest { placement_id: id.into(), min_position });
        self.client.get_placement(r).await.map(|r| r.into_inner().placement.unwrap())
    }

    /// A deadline sweep as of `today`, once the read model holds every
    /// commit so far (the sweep reads it for candidates).
    async fn sweep(&self, today: NaiveDate) -> acasa_placements::deadlines::Sweep {
        let last = self.last().await;
        self.positions
            .wait_for(acasa_placements::PROJECTION, self.store.stream_name(), last, tokio::time::Instant::now() + WAIT)
            .await
            .unwrap();
        self.deadlines.sweep(today).await.unwrap()
    }

    async fn shutdown(mut self) {
        self.stop.send(true).unwrap();
        for w in self.workers.drain(..) {
            w.await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_graduates_placement_runs_from_offer_to_paid_months_with_the_host_confirming_and_finance_paying() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    let (host, _) = s.host("Drumuri Cahul SRL").await;
    let (other_host, _) = s.host("Poduri Nord SA").await;
    let offer = s.offer(&host, 2, 100_000).await;
    let (ion, _) = s.person(Graduate::default()).await;
    let (_cook, _) = s
        .person(Graduate { tag: "b", profession: "Cook", skills: &[], languages: &["fr"], ..Graduate::default() })
        .await;
    let (_, _) = s.person(Graduate { tag: "c", consent: false, ..Graduate::default() }).await;
    let (_, min) =
        s.person(Graduate { tag: "d", category: reg::Category::DiasporaScientist, ..Graduate::default() }).await;

    // Candidates: graduates with programme consent, best fit first, with why.
    let r = s.req(
        Role::Caseworker,
        pb::ListCandidatesRequest {
            offer_id: offer.clone(),
            min_registry_position: min,
            min_position: s.last().await,
            ..Default::default()
        },
    );
    let candidates = s.client.list_candidates(r).await.unwrap().into_inner().candidates;
    assert_eq!(candidates.len(), 2, "{candidates:?}");
    assert_eq!(candidates[0].person_id, ion);
    assert!(candidates[0].subject_match);
    assert_eq!(candidates[0].matching_skills, ["bridges"]);
    assert_eq!(candidates[0].matching_languages, ["ro", "en"]);
    assert!(candidates[0].reason.contains("profession civil engineering matches"), "{}", candidates[0].reason);
    assert!(candidates[1].score < candidates[0].score);
    // Paged one at a time, the same order.
    let page = |page_token: String| pb::ListCandidatesRequest {
        offer_id: offer.clone(),
        page_size: 1,
        page_token,
        ..Default::default()
    };
    let first = s.client.list_candidates(s.req(Role::Caseworker, page(String::new()))).await.unwrap().into_inner();
    assert_eq!(first.candidates, candidates[..1]);
    let second =
        s.client.list_candidates(s.req(Role::Caseworker, page(first.next_page_token))).await.unwrap().into_inner();
    assert_eq!((second.candidates.as_slice(), second.next_page_token.as_str()), (&candidates[1..], ""));

    let id = s.running(&offer, &ion, min, day(2027, 1, 15)).await;

    // Month 1 falls due on 2027-02-15: not before.
    assert_eq!(s.sweep(day(2027, 2, 14)).await.months_due, 0);
    assert_eq!(s.sweep(day(2027, 2, 15)).await.months_due, 1);
    // A repeated sweep records nothing twice.
    assert_eq!(s.sweep(day(2027, 2, 15)).await.months_due, 0);

    // Finance's list: unconfirmed months only when asked.
    let payments = |include_unconfirmed: bool, min_position: u64| pb::ListPaymentsDueRequest {
        as_of: date(day(2027, 2, 20)),
        include_unconfirmed,
        min_position,
        ..Default::default()
    };
    let min_position = s.last().await;
    let r = s.req(Role::Finance, payments(false, min_position));
    assert!(s.client.list_payments_due(r).await.unwrap().into_inner().payments.is_empty());
    let r = s.req(Role::Finance, payments(true, min_position));
    let due = s.client.list_payments_due(r).await.unwrap().into_inner().payments;
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].month, due[0].due.clone(), due[0].present, due[0].overdue), (1, mdl(600_000), false, false));

    // Finance cannot pay before the host confirms; another host cannot confirm.
    let pay = |amount: i64| pb::RecordAllowancePaymentRequest {
        request_id: rid(),
        placement_id: id.clone(),
        month: 1,
        amount: mdl(amount),
        paid_on: date(day(2027, 2, 21)),
        reference: "OP-0001".into(),
    };
    let e = s.client.record_allowance_payment(s.req(Role::Finance, pay(600_000))).await.unwrap_err();
    assert_eq!(rule(&e), "PRESENCE_NOT_CONFIRMED");
    let confirm = pb::ConfirmPresenceRequest { request_id: rid(), placement_id: id.clone(), month: 1 };
    let e = s.client.confirm_presence(s.as_host(&other_host, confirm.clone())).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = s.client.confirm_presence(s.req(Role::Caseworker, confirm.clone())).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    s.client.confirm_presence(s.as_host(&host, confirm.clone())).await.unwrap();
    // Retried: the same answer, nothing twice.
    s.client.confirm_presence(s.as_host(&host, confirm)).await.unwrap();

    // A caseworker does not pay; finance pays at most what is due, once.
    let e = s.client.record_allowance_payment(s.req(Role::Caseworker, pay(600_000))).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = s.client.record_allowance_payment(s.req(Role::Finance, pay(600_001))).await.unwrap_err();
    assert_eq!(rule(&e), "PAYMENT_ABOVE_DUE");
    s.client.record_allowance_payment(s.req(Role::Finance, pay(600_000))).await.unwrap();
    let e = s.client.record_allowance_payment(s.req(Role::Finance, pay(600_000))).await.unwrap_err();
    assert_eq!(rule(&e), "MONTH_ALREADY_PAID");

    // The host sees its placement and the person's contacts while it runs;
    // another host sees nothing; a viewer no personal data.
    let host_token = s.token(&[Role::Host], Some(&host));
    let p = s.placement(&host_token, &id).await.unwrap();
    assert_eq!(p.status, pb::PlacementStatus::Started as i32);
    assert_eq!(p.person.as_ref().unwrap().name, "Ion Rusua");
    assert_eq!(p.person.as_ref().unwrap().email, "ion@example.md");
    assert_eq!(p.months.len(), 6, "the whole schedule: {:?}", p.months);
    assert_eq!(p.months[0].paid, mdl(600_000));
    assert_eq!(p.months[1].due_on, date(day(2027, 3, 15)));
    assert_eq!(p.months[1].due, None);
    let other = s.token(&[Role::Host], Some(&other_host));
    assert_eq!(s.placement(&other, &id).await.unwrap_err().code(), Code::NotFound);
    let viewer = s.token(&[Role::Viewer], None);
    assert_eq!(s.placement(&viewer, &id).await.unwrap().person, None);
    let r = s.as_host(&other_host, pb::ListPlacementsRequest { host_id: host.clone(), ..Default::default() });
    assert!(s.client.list_placements(r).await.unwrap().into_inner().placements.is_empty());
    let r = s.as_host(&host, pb::ListPlacementsRequest::default());
    assert_eq!(s.client.list_placements(r).await.unwrap().into_inner().placements.len(), 1);

    // Ended early on 2027-04-01: month 2 (Feb 15 – Mar 15) falls due in
    // full, month 3 (Mar 15 – Apr 15) for 17 of its 31 days, rounded down.
    let r = s.req(
        Role::Caseworker,
        pb::EndPlacementEarlyRequest {
            request_id: rid(),
            placement_id: id.clone(),
            ended_on: date(day(2027, 4, 1)),
            reason: "employed by the host".into(),
        },
    );
    s.client.end_placement_early(r).await.unwrap();
    let staff = s.token(&[Role::Caseworker], None);
    let p = s.placement(&staff, &id).await.unwrap();
    let dues: Vec<_> = p.months.iter().map(|m| m.due.clone().unwrap().amount_minor).collect();
    assert_eq!(dues, [600_000, 600_000, 600_000 * 17 / 31]);
    // Nothing falls due after the end.
    assert_eq!(s.sweep(day(2027, 8, 1)).await.months_due, 0);
    // The host no longer sees the person's contacts.
    assert_eq!(s.placement(&host_token, &id).await.unwrap().person, None);

    // Budget: the ended placement commits what fell due; paid, one month.
    let r = s.req(Role::Finance, pb::GetBudgetRequest { min_position: s.last().await });
    let lines = s.client.get_budget(r).await.unwrap().into_inner().lines;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].allowances_committed_minor, 600_000 * 2 + 600_000 * 17 / 31);
    assert_eq!(lines[0].allowances_paid_minor, 600_000);
    let r = s.req(Role::Viewer, pb::GetProgressRequest { min_position: s.last().await });
    let progress = s.client.get_progress(r).await.unwrap().into_inner().kinds;
    assert_eq!((progress[0].target, progress[0].placed, progress[0].ended_early), (43, 1, 1));
    assert_eq!(progress[1].target, 31);

    // Outcome at completion; the follow-up is due six months after the end.
    let outcome = |stage: pb::OutcomeStage, on: NaiveDate| pb::RecordOutcomeRequest {
        request_id: rid(),
        placement_id: id.clone(),
        stage: stage as i32,
        kind: pb::OutcomeKind::EmployedInMoldova as i32,
        note: String::new(),
        recorded_on: date(on),
    };
    let r = s.req(Role::Caseworker, outcome(pb::OutcomeStage::Completion, day(2027, 4, 2)));
    s.client.record_outcome(r).await.unwrap();
    let r = s.req(Role::Caseworker, outcome(pb::OutcomeStage::FollowUp, day(2027, 9, 30)));
    assert_eq!(rule(&s.client.record_outcome(r).await.unwrap_err()), "FOLLOW_UP_NOT_YET");
    let r = s.req(Role::Caseworker, pb::GetOutcomesRequest { min_position: s.last().await, ..Default::default() });
    let o = s.client.get_outcomes(r).await.unwrap().into_inner();
    assert_eq!(o.counts.len(), 1);
    // Overdue 30 days after it was due (2027-10-01).
    assert_eq!(s.sweep(day(2027, 10, 31)).await.follow_ups_overdue, 0);
    assert_eq!(s.sweep(day(2027, 11, 1)).await.follow_ups_overdue, 1);
    assert_eq!(s.sweep(day(2027, 11, 2)).await.follow_ups_overdue, 0);
    let r = s.req(Role::Caseworker, pb::GetOutcomesRequest { min_position: s.last().await, ..Default::default() });
    assert_eq!(s.client.get_outcomes(r).await.unwrap().into_inner().follow_ups_overdue, 1);

    rebuild_equals_live(&env, &s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn the_last_place_goes_to_one_of_many_concurrent_proposals_and_a_person_holds_one_placement() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    let (host, _) = s.host("Institutul de Fizică").await;
    let offer = s.offer(&host, 3, 0).await;
    let mut people = Vec::new();
    let mut min = 0;
    for i in 0..12 {
        let (p, pos) = s.person(Graduate { tag: &format!("p{i}"), ..Graduate::default() }).await;
        people.push(p);
        min = pos;
    }
    let answers = futures::future::join_all(people.iter().map(|p| {
        let mut client = s.client.clone();
        let r = s.req(
            Role::Caseworker,
            pb::ProposePlacementRequest {
                request_id: rid(),
                offer_id: offer.clone(),
                person_id: p.clone(),
                min_registry_position: min,
            },
        );
        async move { client.propose_placement(r).await }
    }))
    .await;
    let won = answers.iter().filter(|a| a.is_ok()).count();
    assert_eq!(won, 3, "{answers:?}");
    for a in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert_eq!(rule(a), "OFFER_FULL");
    }
    let r = s.req(Role::Viewer, pb::GetOfferRequest { offer_id: offer.clone(), min_position: s.last().await });
    assert_eq!(s.client.get_offer(r).await.unwrap().into_inner().offer.unwrap().places_taken, 3);

    // A declined proposal frees its place for the next candidate.
    let first = answers.iter().find_map(|a| a.as_ref().ok()).unwrap().get_ref().placement_id.clone();
    let r = s.req(
        Role::Caseworker,
        pb::DeclinePlacementRequest { request_id: rid(), placement_id: first, reason: "stays abroad".into() },
    );
    s.client.decline_placement(r).await.unwrap();
    let loser = people.iter().zip(&answers).find(|(_, a)| a.is_err()).unwrap().0.clone();
    s.propose(&offer, &loser, 0).await.unwrap();

    // One active placement per person, even proposed at once for two offers.
    let (second_host, _) = s.host("Universitatea Tehnică").await;
    let a = s.offer(&second_host, 5, 0).await;
    let b = s.offer(&second_host, 5, 0).await;
    let (solo, min) = s.person(Graduate { tag: "solo", ..Graduate::default() }).await;
    let (x, y) = tokio::join!(
        {
            let mut c = s.client.clone();
            let r = s.req(
                Role::Caseworker,
                pb::ProposePlacementRequest {
                    request_id: rid(),
                    offer_id: a.clone(),
                    person_id: solo.clone(),
                    min_registry_position: min,
                },
            );
            async move { c.propose_placement(r).await }
        },
        {
            let mut c = s.client.clone();
            let r = s.req(
                Role::Caseworker,
                pb::ProposePlacementRequest {
                    request_id: rid(),
                    offer_id: b.clone(),
                    person_id: solo.clone(),
                    min_registry_position: min,
                },
            );
            async move { c.propose_placement(r).await }
        }
    );
    assert!(x.is_ok() != y.is_ok(), "exactly one: {x:?} {y:?}");
    assert_eq!(rule(x.as_ref().err().or(y.as_ref().err()).unwrap()), "ONE_ACTIVE_PLACEMENT");

    // Not a graduate, no consent, unknown: refused, naming the rule.
    let (scientist, _) =
        s.person(Graduate { tag: "sci", category: reg::Category::DiasporaScientist, ..Graduate::default() }).await;
    let (no_consent, min) = s.person(Graduate { tag: "nc", consent: false, ..Graduate::default() }).await;
    assert_eq!(rule(&s.propose(&a, &scientist, min).await.unwrap_err()), "CATEGORY");
    assert_eq!(rule(&s.propose(&a, &no_consent, min).await.unwrap_err()), "PROGRAMME_CONSENT");
    assert_eq!(rule(&s.propose(&a, &uuid::Uuid::now_v7().to_string(), min).await.unwrap_err()), "PERSON_UNKNOWN");
    s.shutdown().await;
}

#[tokio::test]
async fn concurrent_travel_approvals_never_pass_the_cap_and_bad_input_names_the_field() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    let (host, _) = s.host("Moldsilva").await;
    let offer = s.offer(&host, 1, 100_000).await;
    let (ion, min) = s.person(Graduate::default()).await;
    let id = s.running(&offer, &ion, min, day(2027, 1, 15)).await;
    let mut claims = Vec::new();
    for i in 0..6 {
        let r = s.req(
            Role::Caseworker,
            pb::SubmitTravelClaimRequest {
                request_id: format!("travel-{i}"),
                placement_id: id.clone(),
                kind: "flight".into(),
                amount: mdl(40_000),
                receipt_reference: format!("R-{i}"),
            },
        );
        claims.push(s.client.submit_travel_claim(r).await.unwrap().into_inner().claim_id);
    }
    // A retried submission names the same claim and adds none.
    let r = s.req(
        Role::Caseworker,
        pb::SubmitTravelClaimRequest {
            request_id: "travel-0".into(),
            placement_id: id.clone(),
            kind: "flight".into(),
            amount: mdl(40_000),
            receipt_reference: "R-0".into(),
        },
    );
    assert_eq!(s.client.submit_travel_claim(r).await.unwrap().into_inner().claim_id, claims[0]);
    let answers = futures::future::join_all(claims.iter().map(|c| {
        let mut client = s.client.clone();
        let r = s.req(
            Role::Caseworker,
            pb::ApproveTravelClaimRequest {
                request_id: rid(),
                placement_id: id.clone(),
                claim_id: c.clone(),
                amount: mdl(40_000),
            },
        );
        async move { client.approve_travel_claim(r).await }
    }))
    .await;
    assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 2, "{answers:?}");
    for e in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert_eq!(rule(e), "TRAVEL_OVER_CAP");
    }
    let staff = s.token(&[Role::Caseworker], None);
    let p = s.placement(&staff, &id).await.unwrap();
    assert_eq!(p.travel_claims.len(), 6);
    let approved: i64 = p.travel_claims.iter().filter_map(|c| c.approved.as_ref()).map(|m| m.amount_minor).sum();
    assert_eq!(approved, 80_000);

    // Bad input: every bad field named; nothing written.
    let before = s.last().await;
    let r = s.req(
        Role::Caseworker,
        pb::PublishOfferRequest {
            request_id: rid(),
            host_id: "not-a-uuid".into(),
            terms: Some(pb::OfferTerms {
                places: 0,
                allowance: Some(Money { amount_minor: -1, currency: "XX".into() }),
                languages: vec!["!!".into()],
                ..Stack::terms(1, 0)
            }),
        },
    );
    let e = s.client.publish_offer(r).await.unwrap_err();
    assert_eq!(
        fields(&e),
        ["host_id", "terms.places", "terms.allowance.currency", "terms.allowance.amount_minor", "terms.languages[0]"]
    );
    let r = s.req(
        Role::Finance,
        pb::RecordAllowancePaymentRequest {
            request_id: "bad id!".into(),
            placement_id: id.clone(),
            month: 0,
            amount: None,
            paid_on: Some(Date { year: 2027, month: 2, day: 30 }),
            reference: String::new(),
        },
    );
    let e = s.client.record_allowance_payment(r).await.unwrap_err();
    assert_eq!(fields(&e), ["request_id", "month", "amount", "paid_on", "reference"]);
    assert_eq!(s.last().await, before, "nothing was written");
    s.shutdown().await;
}

#[tokio::test]
async fn a_placed_persons_erasure_reaches_the_placements_view_and_a_rebuild_equals_it() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    let (host, _) = s.host("Apă Canal Cahul").await;
    let offer = s.offer(&host, 1, 0).await;
    let (ion, min) = s.person(Graduate::default()).await;
    let id = s.running(&offer, &ion, min, day(2027, 1, 15)).await;
    let host_token = s.token(&[Role::Host], Some(&host));
    assert!(s.placement(&host_token, &id).await.unwrap().person.is_some());

    let r = s.req(Role::Admin, reg::ErasePersonRequest { request_id: rid(), person_id: ion.clone() });
    let erased = s.registry.erase_person(r).await.unwrap().into_inner().position;
    let registry = acasa_eventstore::stream_name_of("registry");
    s.positions
        .wait_for(acasa_placements::PEOPLE_PROJECTION, &registry, erased, tokio::time::Instant::now() + WAIT)
        .await
        .unwrap();
    // The placement and its money stay; the person's data is gone for everyone.
    let staff = s.token(&[Role::Caseworker], None);
    let p = s.placement(&staff, &id).await.unwrap();
    assert_eq!((p.person_id.as_str(), p.person.is_none()), (ion.as_str(), true));
    assert!(s.placement(&host_token, &id).await.unwrap().person.is_none());
    let personal: Option<(bool,)> = sqlx::query_as(
        "SELECT given_name IS NULL AND email IS NULL AND skills IS NULL AND languages IS NULL \
             FROM placements.people WHERE person_id = $1::uuid",
    )
    .bind(&ion)
    .fetch_optional(&env.pool)
    .await
    .unwrap();
    assert_eq!(personal, Some((true,)), "every personal column is NULL");
    // Erased people are never candidates and cannot be proposed.
    let offer2 = s.offer(&host, 1, 0).await;
    assert_eq!(rule(&s.propose(&offer2, &ion, erased).await.unwrap_err()), "PERSON_ERASED");

    rebuild_equals_live(&env, &s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn a_suspended_host_takes_no_new_offers_or_proposals_while_its_running_placements_go_on() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    let (host, _) = s.host("Fabrica de Sticlă").await;
    let offer = s.offer(&host, 2, 0).await;
    let (ion, min) = s.person(Graduate::default()).await;
    let (ana, min2) = s.person(Graduate { tag: "ana", ..Graduate::default() }).await;
    let id = s.running(&offer, &ion, min, day(2027, 1, 15)).await;
    let r = s.req(
        Role::Caseworker,
        pb::SuspendHostRequest { request_id: rid(), host_id: host.clone(), reason: "audit".into() },
    );
    s.client.suspend_host(r).await.unwrap();
    let r = s.req(
        Role::Caseworker,
        pb::PublishOfferRequest { request_id: rid(), host_id: host.clone(), terms: Some(Stack::terms(1, 0)) },
    );
    assert_eq!(rule(&s.client.publish_offer(r).await.unwrap_err()), "HOST_SUSPENDED");
    assert_eq!(rule(&s.propose(&offer, &ana, min2).await.unwrap_err()), "HOST_SUSPENDED");
    // The running placement goes on: its month falls due and the host confirms it.
    assert_eq!(s.sweep(day(2027, 2, 15)).await.months_due, 1);
    let confirm = pb::ConfirmPresenceRequest { request_id: rid(), placement_id: id.clone(), month: 1 };
    s.client.confirm_presence(s.as_host(&host, confirm)).await.unwrap();
    // Reactivated, it takes proposals again.
    let r = s.req(Role::Caseworker, pb::ReactivateHostRequest { request_id: rid(), host_id: host.clone() });
    s.client.reactivate_host(r).await.unwrap();
    s.propose(&offer, &ana, min2).await.unwrap();
    // A second host with the same IDNO is refused, naming the first.
    let r = s.req(Role::Viewer, pb::GetHostRequest { host_id: host.clone(), min_position: s.last().await });
    let existing = s.client.get_host(r).await.unwrap().into_inner().host.unwrap();
    assert_eq!((existing.open_offers, existing.active_placements), (1, 1));
    let r = s.req(
        Role::Caseworker,
        pb::RegisterHostRequest { request_id: rid(), idno: existing.idno.clone(), details: existing.details.clone() },
    );
    let e = s.client.register_host(r).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    assert!(e.message().contains(&host), "{}", e.message());
    s.shutdown().await;
}

/// A full rebuild of both projections (inside a transaction that is rolled
/// back, so the running workers are undisturbed) equals the live tables.
async fn rebuild_equals_live(env: &Env, s: &Stack) {
    let last = s.last().await;
    let registry_last = crate::harness::last_commit(&s.registry_store).await;
    let positions = &s.positions;
    let deadline = tokio::time::Instant::now() + WAIT;
    positions.wait_for(acasa_placements::PROJECTION, s.store.stream_name(), last, deadline).await.unwrap();
    positions
        .wait_for(acasa_placements::PEOPLE_PROJECTION, s.registry_store.stream_name(), registry_last, deadline)
        .await
        .unwrap();
    const TABLES: &str = "SELECT t::text FROM placements.hosts t UNION ALL SELECT t::text FROM placements.offers t \
         UNION ALL SELECT t::text FROM placements.placements t UNION ALL SELECT t::text FROM placements.months t \
         UNION ALL SELECT t::text FROM placements.travel_claims t UNION ALL SELECT t::text FROM placements.people t \
         ORDER BY 1";
    let live: Vec<(String,)> = sqlx::query_as(TABLES).fetch_all(&env.pool).await.unwrap();
    assert!(!live.is_empty());
    let mut tx = env.pool.begin().await.unwrap();
    sqlx::query(
        "TRUNCATE placements.hosts, placements.offers, placements.placements, placements.months, \
         placements.travel_claims, placements.people",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    let commits: Vec<_> =
        crate::harness::all_commits(&s.store).await.into_iter().filter(|c| c.sequence <= last).collect();
    PlacementsProjection.apply(&mut tx, &commits).await.unwrap();
    let registry: Vec<_> = crate::harness::all_commits(&s.registry_store)
        .await
        .into_iter()
        .filter(|c| c.sequence <= registry_last)
        .collect();
    people(s.registry_channel.clone()).apply(&mut tx, &registry).await.unwrap();
    let rebuilt: Vec<(String,)> = sqlx::query_as(TABLES).fetch_all(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(rebuilt, live);
}
