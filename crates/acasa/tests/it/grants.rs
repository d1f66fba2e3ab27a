//! Grants over gRPC against real NATS and Postgres, with the registry beside
//! it as the source of people (its events projected into the grants' own
//! view, sealed fields opened through the registry's PersonDataService for
//! the purpose eligibility) and the referral system's log as the source of
//! outcomes that count as support: approvals racing at the last euro of a
//! call, enrolments racing for the last seat and the last training place,
//! procurement at the approved amount and closing with the rest given back,
//! a referral outcome arriving as a support service, erasure of an applicant
//! and of an official, and rebuild equals live.

use std::{sync::Arc, time::Duration};

use acasa_eventstore::{EventStore, Repository, RepositoryConfig};
use acasa_grants::{
    grpc::GrantService, people::PeopleProjection, projection::GrantsProjection, referrals::ReferralsProjection,
};
use acasa_projection::{Positions, Projection};
use acasa_proto::{
    grants::v1::{self as pb, grant_service_client::GrantServiceClient},
    partner::v1::ServiceKind,
    registry::v1::{self as reg, registry_service_client::RegistryServiceClient},
    r#type::v1::{Date, Money},
};
use acasa_registry::grpc::{PersonDataService, RegistryService};
use acasa_runtime::{Authenticator, Role, Serving, TokenIssuer, person_data::Purpose};
use acasa_vault::Keys;
use chrono::{Datelike as _, NaiveDate, Utc};
use tokio::sync::watch;
use tonic::{Code, Request, Status, transport::Channel};
use tonic_types::StatusExt as _;
use uuid::Uuid;

use crate::grants_views::{append, created, outcome, service};
use crate::harness::{Env, JWT_KEY_HEX, person_data, serve, vault, worker};

const WAIT: Duration = Duration::from_secs(20);

struct Stack {
    _registry: Serving,
    _grants: Serving,
    registry: RegistryServiceClient<Channel>,
    client: GrantServiceClient<Channel>,
    issuer: TokenIssuer,
    store: EventStore,
    registry_store: EventStore,
    referrals_store: EventStore,
    registry_channel: Channel,
    positions: Positions,
    stop: watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

fn people(channel: Channel) -> PeopleProjection {
    PeopleProjection::new(Arc::new(person_data(channel, acasa_grants::SERVICE, Purpose::Eligibility)))
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

    let store = EventStore::open(env.client().await, crate::harness::settings("grants")).await.unwrap();
    let referrals_store = EventStore::open(env.client().await, crate::harness::settings("referrals")).await.unwrap();
    let service =
        GrantService::new(store.clone(), vault(env, acasa_grants::VAULT_TABLE), positions.clone(), env.pool.clone());
    let (grants_serving, channel) = serve(service.routes(&auth), &[GrantService::NAME]).await;

    let (stop, stopped) = watch::channel(false);
    let mut workers = Vec::new();
    let w = worker(env, &store, GrantsProjection::new(vault(env, acasa_grants::VAULT_TABLE)));
    let s = stopped.clone();
    workers.push(tokio::spawn(async move { w.run(s).await.unwrap() }));
    let w = worker(env, &registry_store, people(registry_channel.clone()));
    let s = stopped.clone();
    workers.push(tokio::spawn(async move { w.run(s).await.unwrap() }));
    let w = worker(env, &referrals_store, ReferralsProjection::new());
    workers.push(tokio::spawn(async move { w.run(stopped).await.unwrap() }));
    Stack {
        _registry: registry_serving,
        _grants: grants_serving,
        registry: RegistryServiceClient::new(registry_channel.clone()),
        client: GrantServiceClient::new(channel),
        issuer: TokenIssuer::hs256(&key, "acasa", "acasa"),
        store,
        registry_store,
        referrals_store,
        registry_channel,
        positions,
        stop,
        workers,
    }
}

fn eur(amount_minor: i64) -> Option<Money> {
    Some(Money { amount_minor, currency: "EUR".into() })
}

fn date(d: NaiveDate) -> Option<Date> {
    Some(acasa_proto::time::date(d))
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn rid() -> String {
    Uuid::now_v7().to_string()
}

/// The rule a FAILED_PRECONDITION names.
fn rule(s: &Status) -> String {
    assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
    s.get_error_details().precondition_failure().expect("a named rule").violations[0].r#type.clone()
}

fn minor(m: Option<&Money>) -> i64 {
    m.map_or(i64::MIN, |m| m.amount_minor)
}

impl Stack {
    fn token(&self, subject: &str, roles: &[Role]) -> String {
        self.issuer.issue(subject, roles, None, Duration::from_secs(600)).unwrap()
    }

    fn as_<T>(&self, subject: &str, role: Role, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        let token = self.token(subject, &[role]);
        r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        r
    }

    fn req<T>(&self, role: Role, msg: T) -> Request<T> {
        self.as_("tester", role, msg)
    }

    async fn last(&self) -> u64 {
        crate::harness::last_commit(&self.store).await
    }

    /// A woman entrepreneur of 30 from a village of Anenii Noi, with
    /// programme consent; her id and the registry position.
    async fn woman(&mut self) -> (String, u64) {
        let born = today().with_year(today().year() - 30).unwrap_or(today()) - chrono::Days::new(10);
        let r = self.req(
            Role::Caseworker,
            reg::RegisterPersonRequest {
                request_id: rid(),
                details: Some(reg::PersonDetails {
                    given_name: "Maria".into(),
                    family_name: format!("Ciobanu-{}", rid()),
                    birth_date: date(born),
                    sex: reg::Sex::Female as i32,
                    home_district: "Anenii Noi".into(),
                    home_locality: "s. Mereni".into(),
                    languages: vec!["ro".into()],
                    ..Default::default()
                }),
                contacts: Some(reg::Contacts { email: "maria@example.md".into(), phone: String::new() }),
                country_of_residence: "IT".into(),
                categories: vec![reg::Category::WomanEntrepreneur as i32],
                interests: vec![reg::Interest::EntrepreneurshipSupport as i32],
            },
        );
        let person = self.registry.register_person(r).await.unwrap().into_inner();
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
        let position = self.registry.give_consent(r).await.unwrap().into_inner().position;
        (person.person_id, position)
    }

    /// Opens a call for women entrepreneurs: `budget`, a cap of 2,000.00
    /// EUR, `places` training places, one evaluator.
    async fn call(&mut self, budget: i64, places: i32) -> String {
        let terms = pb::CallTerms {
            title: "Start-up grants 2027".into(),
            budget: eur(budget),
            cap: eur(200_000),
            opens_on: date(today() - chrono::Days::new(5)),
            closes_on: date(today() + chrono::Days::new(30)),
            districts: vec![],
            training_places: places,
            eligibility: Some(pb::EligibilityRules {
                age: Some(pb::AgeRange { min_age: 18, max_age: 45 }),
                sexes: vec![],
                rural_only: true,
                categories: vec![reg::Category::WomanEntrepreneur as i32, reg::Category::YouthEntrepreneur as i32],
            }),
            evaluation: Some(pb::EvaluationRules {
                criteria: vec![pb::Criterion { key: "viability".into(), title: "Viability".into(), weight: 1 }],
                scale_max: 10,
                min_evaluators: 1,
                pass_score: 0,
            }),
        };
        let r = self.req(Role::Admin, pb::OpenCallRequest { request_id: rid(), terms: Some(terms) });
        self.client.open_call(r).await.unwrap().into_inner().call_id
    }

    /// A one-day entrepreneurs' session today of `capacity` seats.
    async fn session(&mut self, capacity: i32) -> String {
        let r = self.req(
            Role::Caseworker,
            pb::CreateCourseRequest {
                request_id: rid(),
                audience: pb::Audience::Entrepreneurs as i32,
                details: Some(pb::CourseDetails {
                    title: "Business basics".into(),
                    topics: vec!["accounting".into()],
                    language: "ro".into(),
                    hours: 8,
                    completion_threshold_percent: 100,
                }),
            },
        );
        let course = self.client.create_course(r).await.unwrap().into_inner().course_id;
        let code = format!("S-{}", &Uuid::now_v7().simple().to_string()[20..]).to_uppercase();
        let r = self.req(
            Role::Caseworker,
            pb::ScheduleSessionRequest {
                request_id: rid(),
                course_id: course,
                code,
                capacity,
                completion_threshold_percent: 0,
                details: Some(pb::SessionDetails {
                    days: vec![date(today()).unwrap()],
                    venue: "Primăria Mereni".into(),
                    district: "Anenii Noi".into(),
                    trainer: "ODIMM".into(),
                }),
            },
        );
        self.client.schedule_session(r).await.unwrap().into_inner().session_id
    }

    async fn apply(&mut self, call: &str, person: &str, min: u64) -> pb::ApplyResponse {
        let r = self.req(
            Role::Caseworker,
            pb::ApplyRequest {
                request_id: rid(),
                call_id: call.into(),
                person_id: person.into(),
                min_registry_position: min,
            },
        );
        self.client.apply(r).await.unwrap().into_inner()
    }

    async fn enrol(&self, session: &str, application: &str) -> Result<pb::EnrolInSessionResponse, Status> {
        let r = self.req(
            Role::Caseworker,
            pb::EnrolInSessionRequest {
                request_id: rid(),
                session_id: session.into(),
                trainee: Some(pb::enrol_in_session_request::Trainee::ApplicationId(application.into())),
            },
        );
        self.client.clone().enrol_in_session(r).await.map(|r| r.into_inner())
    }

    /// `n` eligible applications to `call`, trained in one session and
    /// scored, each requesting `requested`.
    async fn scored(&mut self, call: &str, n: usize, requested: i64) -> Vec<String> {
        let session = self.session(i32::try_from(n).unwrap()).await;
        let mut apps = Vec::new();
        for _ in 0..n {
            let (person, min) = self.woman().await;
            let applied = self.apply(call, &person, min).await;
            assert!(applied.eligible, "{applied:?}");
            self.enrol(&session, &applied.application_id).await.unwrap();
            apps.push(applied.application_id);
        }
        let r = self.req(
            Role::Caseworker,
            pb::RecordAttendanceRequest {
                request_id: rid(),
                session_id: session.clone(),
                day: date(today()),
                present_trainee_ids: apps.clone(),
                absent_trainee_ids: vec![],
            },
        );
        self.client.record_attendance(r).await.unwrap();
        let r = self.req(Role::Caseworker, pb::CompleteSessionRequest { request_id: rid(), session_id: session });
        let done = self.client.complete_session(r).await.unwrap().into_inner();
        assert_eq!(done.completed, i32::try_from(n).unwrap());
        for app in &apps {
            let plan = pb::BusinessPlan {
                sector: "A".into(),
                summary: "Greenhouse vegetables for the Chișinău market".into(),
                requested_amount: eur(requested),
                items: vec![pb::PlanItem { description: "Greenhouse".into(), quantity: 1, unit_price: eur(requested) }],
            };
            let r = self.req(
                Role::Caseworker,
                pb::SubmitBusinessPlanRequest { request_id: rid(), application_id: app.clone(), plan: Some(plan) },
            );
            self.client.submit_business_plan(r).await.unwrap();
            let r = self.as_(
                "evaluator-1",
                Role::Caseworker,
                pb::ScoreApplicationRequest {
                    request_id: rid(),
                    application_id: app.clone(),
                    scores: vec![pb::CriterionScore { key: "viability".into(), score: 8 }],
                    comment: String::new(),
                },
            );
            self.client.score_application(r).await.unwrap();
        }
        apps
    }

    async fn approve(&self, application: &str, amount: i64) -> Result<pb::ApproveGrantResponse, Status> {
        let r = self.req(
            Role::Admin,
            pb::ApproveGrantRequest {
                request_id: rid(),
                application_id: application.into(),
                amount: eur(amount),
                minutes_reference: "PV-2027-04".into(),
                note: String::new(),
            },
        );
        self.client.clone().approve_grant(r).await.map(|r| r.into_inner())
    }

    async fn get_call(&mut self, call: &str) -> pb::Call {
        let min_position = self.last().await;
        let r = self.req(Role::Viewer, pb::GetCallRequest { call_id: call.into(), min_position });
        self.client.get_call(r).await.unwrap().into_inner().call.unwrap()
    }

    async fn application(&mut self, id: &str) -> pb::Application {
        let min_position = self.last().await;
        let r = self.req(Role::Caseworker, pb::GetApplicationRequest { application_id: id.into(), min_position });
        self.client.get_application(r).await.unwrap().into_inner().application.unwrap()
    }

    async fn shutdown(mut self) {
        self.stop.send(true).unwrap();
        for w in self.workers.drain(..) {
            w.await.unwrap();
        }
    }
}

#[tokio::test]
async fn approvals_racing_at_the_last_euro_never_take_the_call_over_its_budget() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    // 4,000.01 EUR: four grants of 1,000.00 fit, a cent is left.
    let call = s.call(400_001, 20).await;
    let apps = s.scored(&call, 6, 100_000).await;
    let racing = apps.iter().map(|a| {
        let s = &s;
        async move { s.approve(a, 100_000).await }
    });
    let results = futures::future::join_all(racing).await;
    let approved = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(approved, 4, "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(rule(r), "OVER_BUDGET", "{r:?}");
        assert!(r.message().contains('1'), "the message says what remains: {}", r.message());
    }
    let got = s.get_call(&call).await;
    assert_eq!(minor(got.committed.as_ref()), 400_000);
    assert_eq!(minor(got.remaining.as_ref()), 1);
    // Neither side is written without the other: the refused applications
    // are not approved, the approved ones are committed.
    let mut approved_apps = 0;
    for a in &apps {
        let app = s.application(a).await;
        if app.status == pb::ApplicationStatus::Approved as i32 {
            approved_apps += 1;
            assert_eq!(minor(app.decision.as_ref().and_then(|d| d.amount.as_ref())), 100_000);
        } else {
            assert_eq!(app.status, pb::ApplicationStatus::PlanSubmitted as i32);
        }
    }
    assert_eq!(approved_apps, 4);
    // The last cent: nothing over it, a cent exactly fits.
    let refused = apps.iter().find(|a| results[apps.iter().position(|x| x == *a).unwrap()].is_err()).unwrap();
    assert_eq!(rule(&s.approve(refused, 2).await.unwrap_err()), "OVER_BUDGET");
    let last = s.approve(refused, 1).await.unwrap();
    assert_eq!(minor(last.remaining.as_ref()), 0);
    let r = s.req(Role::Admin, pb::GetBudgetRequest { call_id: call.clone(), min_position: s.last().await });
    let budget = s.client.get_budget(r).await.unwrap().into_inner().calls.remove(0);
    assert_eq!((minor(budget.committed.as_ref()), minor(budget.remaining.as_ref())), (400_001, 0));
    rebuild_equals_live(&env, &s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn racing_enrolments_take_the_last_seat_and_the_last_training_place_once() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    let call = s.call(1_000_000, 20).await;
    let session = s.session(2).await;
    let mut apps = Vec::new();
    for _ in 0..6 {
        let (person, min) = s.woman().await;
        apps.push(s.apply(&call, &person, min).await.application_id);
    }
    let racing = apps.iter().map(|a| s.enrol(&session, a));
    let results = futures::future::join_all(racing).await;
    let mut seats: Vec<i32> = results.iter().filter_map(|r| r.as_ref().ok()).map(|r| r.seat).collect();
    seats.sort_unstable();
    assert_eq!(seats, [1, 2], "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(rule(r), "SESSION_FULL");
    }
    // A call with two training places: three applicants racing into a big session.
    let small = s.call(1_000_000, 2).await;
    let big = s.session(50).await;
    let mut apps = Vec::new();
    for _ in 0..3 {
        let (person, min) = s.woman().await;
        apps.push(s.apply(&small, &person, min).await.application_id);
    }
    let results = futures::future::join_all(apps.iter().map(|a| s.enrol(&big, a))).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2, "{results:?}");
    let refused = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert_eq!(rule(refused), "CALL_TRAINING_FULL");
    assert_eq!(s.get_call(&small).await.training_places_taken, 2);
    s.shutdown().await;
}

#[tokio::test]
async fn procurement_holds_to_the_approved_amount_and_closing_gives_the_rest_back() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    let call = s.call(1_000_000, 20).await;
    let app = s.scored(&call, 1, 150_000).await.remove(0);
    s.approve(&app, 150_000).await.unwrap();
    let order = |description: &str, quantity: i32, unit: i64| pb::OrderItemRequest {
        request_id: rid(),
        application_id: app.clone(),
        item: Some(pb::ProcurementItem {
            description: description.into(),
            supplier: Some(pb::Supplier { name: "AgroTehnica SRL".into(), idno: String::new() }),
            quantity,
            unit_price: eur(unit),
        }),
    };
    let r = s.req(Role::Caseworker, order("Greenhouse frame", 1, 100_000));
    let frame = s.client.order_item(r).await.unwrap().into_inner();
    assert_eq!(minor(frame.remaining.as_ref()), 50_000);
    let r = s.req(Role::Caseworker, order("Drip irrigation kit", 5, 10_000));
    let kits = s.client.order_item(r).await.unwrap().into_inner();
    assert_eq!(minor(kits.remaining.as_ref()), 0, "ordered to the approved amount exactly");
    let r = s.req(Role::Caseworker, order("Seeds", 1, 1));
    let over = s.client.order_item(r).await.unwrap_err();
    assert_eq!(rule(&over), "OVER_APPROVED");
    // Cancelling an order frees its amount; a smaller one takes part of it.
    let r = s.req(
        Role::Caseworker,
        pb::CancelOrderRequest {
            request_id: rid(),
            application_id: app.clone(),
            item_id: kits.item_id.clone(),
            reason: "supplier out of stock".into(),
        },
    );
    s.client.cancel_order(r).await.unwrap();
    let r = s.req(Role::Caseworker, order("Drip irrigation kit", 4, 10_000));
    let kits = s.client.order_item(r).await.unwrap().into_inner();
    assert_eq!(minor(kits.remaining.as_ref()), 10_000);
    for item in [&frame.item_id, &kits.item_id] {
        let r = s.req(
            Role::Caseworker,
            pb::RecordDeliveryRequest {
                request_id: rid(),
                application_id: app.clone(),
                item_id: item.clone(),
                delivered_on: date(today()),
                delivery_note_reference: format!("AWB-{item}"),
            },
        );
        s.client.record_delivery(r).await.unwrap();
        let r = s.req(
            Role::Finance,
            pb::RecordSupplierPaymentRequest {
                request_id: rid(),
                application_id: app.clone(),
                item_id: item.clone(),
                paid_on: date(today()),
                payment_reference: format!("OP-{item}"),
            },
        );
        s.client.record_supplier_payment(r).await.unwrap();
    }
    let r = s.req(
        Role::Caseworker,
        pb::HandOverItemsRequest {
            request_id: rid(),
            application_id: app.clone(),
            handover: Some(pb::Handover {
                reference: "PV-PP-1".into(),
                item_ids: vec![frame.item_id.clone(), kits.item_id.clone()],
                handed_over_on: date(today()),
                location: "Mereni".into(),
                note: String::new(),
            }),
        },
    );
    s.client.hand_over_items(r).await.unwrap();
    let close = pb::CloseGrantRequest { request_id: rid(), application_id: app.clone(), note: String::new() };
    let early = s.client.close_grant(s.req(Role::Caseworker, close.clone())).await.unwrap_err();
    assert_eq!(rule(&early), "NO_MONITORING_VISIT");
    let r = s.req(
        Role::Caseworker,
        pb::RecordMonitoringVisitRequest {
            request_id: rid(),
            application_id: app.clone(),
            visit: Some(pb::MonitoringVisit {
                visited_on: date(today()),
                officer: "Ana Munteanu".into(),
                operating: true,
                jobs_created: 2,
                findings: "The greenhouse produces.".into(),
            }),
        },
    );
    s.client.record_monitoring_visit(r).await.unwrap();
    let closed =
        s.client.close_grant(s.req(Role::Caseworker, pb::CloseGrantRequest { request_id: rid(), ..close })).await;
    let closed = closed.unwrap().into_inner();
    assert_eq!((minor(closed.spent.as_ref()), minor(closed.released.as_ref())), (140_000, 10_000));
    let got = s.get_call(&call).await;
    assert_eq!(minor(got.committed.as_ref()), 140_000, "the unspent 100.00 went back to the call");
    assert_eq!(minor(got.remaining.as_ref()), 860_000);
    assert_eq!(minor(got.spent.as_ref()), 140_000);
    let app = s.application(&app).await;
    assert_eq!(app.status, pb::ApplicationStatus::Closed as i32);
    assert_eq!(minor(app.released.as_ref()), 10_000);
    rebuild_equals_live(&env, &s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn a_referral_outcome_counts_as_support_and_an_erased_applicant_leaves_no_personal_trace() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    let call = s.call(1_000_000, 20).await;
    let (person, min) = s.woman().await;
    let applied = s.apply(&call, &person, min).await;
    assert!(applied.eligible);
    let person_id: Uuid = person.parse().unwrap();
    let (referral, partner) = (Uuid::now_v7(), Uuid::now_v7());
    let position =
        append(&s.referrals_store, referral, vec![created(person_id, partner, ServiceKind::Accounting)]).await;
    let position =
        position.max(append(&s.referrals_store, referral, vec![outcome(service(ServiceKind::Accounting))]).await);
    let r = s.req(
        Role::Caseworker,
        pb::RecordSupportServiceRequest {
            request_id: rid(),
            person_id: person.clone(),
            kind: pb::SupportKind::Taxation as i32,
            provider: Some(pb::record_support_service_request::Provider::Staff("consultant-2".into())),
            delivered_on: date(today()),
            note: "VAT registration".into(),
        },
    );
    s.client.record_support_service(r).await.unwrap();
    let list = |min_position, min_referrals_position| pb::ListSupportServicesRequest {
        person_id: person.clone(),
        min_position,
        min_referrals_position,
        ..Default::default()
    };
    let r = s.req(Role::Caseworker, list(s.last().await, position));
    let services = s.client.list_support_services(r).await.unwrap().into_inner().services;
    assert_eq!(services.len(), 2, "{services:?}");
    let from_referral =
        services.iter().find(|x| x.referral_id == referral.to_string()).expect("the referral's outcome");
    assert_eq!(from_referral.kind, pb::SupportKind::Accounting as i32);
    assert_eq!(from_referral.provider, Some(pb::support_service::Provider::PartnerId(partner.to_string())));
    assert!(services.iter().any(|x| x.kind == pb::SupportKind::Taxation as i32 && x.referral_id.is_empty()));

    let funnel = |s: &Stack, min_position| {
        let r = s.req(
            Role::Viewer,
            pb::GetFunnelRequest {
                call_id: call.clone(),
                group_by: vec![pb::FunnelDimension::District as i32, pb::FunnelDimension::AgeBand as i32],
                min_position,
                ..Default::default()
            },
        );
        let mut client = s.client.clone();
        async move { client.get_funnel(r).await.unwrap().into_inner().rows }
    };
    let rows = funnel(&s, s.last().await).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].district.as_str(), rows[0].age_band), ("anenii noi", pb::AgeBand::AgeBand3035 as i32));

    // The registry erases her: her facts leave this service's view.
    let r = s.req(Role::Admin, reg::ErasePersonRequest { request_id: rid(), person_id: person.clone() });
    let erased = s.registry.erase_person(r).await.unwrap().into_inner().position;
    let registry = acasa_eventstore::stream_name_of("registry");
    let deadline = tokio::time::Instant::now() + WAIT;
    s.positions.wait_for(acasa_grants::PEOPLE_PROJECTION, &registry, erased, deadline).await.unwrap();
    let row: (i16, Option<NaiveDate>, Option<i16>, Option<String>, Option<String>) =
        sqlx::query_as("SELECT status, birth_date, sex, district, locality FROM grants.people WHERE person_id = $1")
            .bind(person_id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(row, (3, None, None, None, None));
    let app = s.application(&applied.application_id).await;
    assert!(app.district.is_empty(), "{app:?}");
    let rows = funnel(&s, s.last().await).await;
    assert_eq!((rows[0].district.as_str(), rows[0].age_band), ("", pb::AgeBand::Unknown as i32), "{rows:?}");
    assert_eq!(rows[0].counts.as_ref().unwrap().applied, 1, "still counted, as unknown");
    let r = s.req(Role::Caseworker, list(s.last().await, position));
    assert!(s.client.list_support_services(r).await.unwrap().into_inner().services.is_empty());
    let r = s.req(
        Role::Caseworker,
        pb::ReassessEligibilityRequest {
            request_id: rid(),
            application_id: applied.application_id.clone(),
            min_registry_position: erased,
        },
    );
    // The application stays (pseudonymous), ineligible from now on.
    let reassessed = s.client.reassess_eligibility(r).await.unwrap().into_inner();
    assert_eq!((reassessed.eligible, reassessed.failed_rule.as_str()), (false, "PERSON_ERASED"));

    // An official's erasure shreds their sealed data.
    let r = s.req(
        Role::Caseworker,
        pb::RegisterOfficialRequest {
            request_id: rid(),
            details: Some(pb::OfficialDetails {
                kind: pb::OfficialKind::LocalOfficial as i32,
                given_name: "Vasile".into(),
                family_name: "Lungu".into(),
                sex: reg::Sex::Male as i32,
                organisation: "Primăria Mereni".into(),
                role: "Secretary".into(),
                district: "Anenii Noi".into(),
                email: "vasile@mereni.md".into(),
                phone: String::new(),
            }),
        },
    );
    let official = s.client.register_official(r).await.unwrap().into_inner().official_id;
    let get = |min_position| pb::GetOfficialRequest { official_id: official.clone(), min_position };
    let r = s.req(Role::Caseworker, get(s.last().await));
    let seen = s.client.get_official(r).await.unwrap().into_inner().official.unwrap();
    assert_eq!(seen.details.unwrap().family_name, "Lungu");
    let r = s.req(
        Role::Admin,
        pb::EraseOfficialRequest { request_id: rid(), official_id: official.clone(), reason: "GDPR-17".into() },
    );
    s.client.erase_official(r).await.unwrap();
    let r = s.req(Role::Caseworker, get(s.last().await));
    let seen = s.client.get_official(r).await.unwrap().into_inner().official.unwrap();
    assert!(seen.erased);
    let details = seen.details.unwrap();
    assert_eq!((details.family_name.as_str(), details.email.as_str()), ("", ""));
    assert_eq!(details.organisation, "Primăria Mereni");
    rebuild_equals_live(&env, &s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn a_session_decides_its_trainees_once_and_cancelling_one_frees_its_seats() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    let call = s.call(1_000_000, 20).await;
    let first = s.session(5).await;
    let mut apps = Vec::new();
    for _ in 0..2 {
        let (person, min) = s.woman().await;
        let a = s.apply(&call, &person, min).await.application_id;
        s.enrol(&first, &a).await.unwrap();
        apps.push(a);
    }
    let r = s.req(
        Role::Caseworker,
        pb::RecordAttendanceRequest {
            request_id: rid(),
            session_id: first.clone(),
            day: date(today()),
            present_trainee_ids: vec![apps[0].clone()],
            absent_trainee_ids: vec![apps[1].clone()],
        },
    );
    s.client.record_attendance(r).await.unwrap();
    let r = s.req(Role::Caseworker, pb::CompleteSessionRequest { request_id: rid(), session_id: first.clone() });
    let done = s.client.complete_session(r).await.unwrap().into_inner();
    assert_eq!((done.completed, done.not_completed), (1, 1));
    let trained = s.application(&apps[0]).await;
    assert_eq!(trained.status, pb::ApplicationStatus::Trained as i32);
    assert!(trained.certificate_number.ends_with("-001"), "{trained:?}");
    assert_eq!(s.application(&apps[1]).await.status, pb::ApplicationStatus::NotTrained as i32);
    // Not through training: she enrols again elsewhere, with another applicant.
    let second = s.session(5).await;
    s.enrol(&second, &apps[1]).await.unwrap();
    let (person, min) = s.woman().await;
    let third = s.apply(&call, &person, min).await.application_id;
    s.enrol(&second, &third).await.unwrap();
    // The first session is decided once: nobody is left in training in it.
    let r = s.req(Role::Caseworker, pb::CompleteSessionRequest { request_id: rid(), session_id: first.clone() });
    assert_eq!(rule(&s.client.complete_session(r).await.unwrap_err()), "NOT_ENROLLED");
    // Cancelling the second unenrols both of its trainees in the same write.
    let r = s.req(
        Role::Caseworker,
        pb::CancelSessionRequest { request_id: rid(), session_id: second.clone(), reason: "trainer ill".into() },
    );
    s.client.cancel_session(r).await.unwrap();
    for a in [&apps[1], &third] {
        let status = s.application(a).await.status;
        assert!(status == pb::ApplicationStatus::Eligible as i32 || status == pb::ApplicationStatus::NotTrained as i32);
    }
    let r = s.req(Role::Caseworker, pb::GetSessionRequest { session_id: second.clone(), min_position: s.last().await });
    let got = s.client.get_session(r).await.unwrap().into_inner();
    assert!(got.session.as_ref().unwrap().cancelled);
    assert_eq!(got.session.unwrap().enrolled, 0, "{:?}", got.trainees);
    let again = s.session(5).await;
    assert_eq!(s.enrol(&again, &third).await.unwrap().seat, 1);

    // An official through an officials' session, certified.
    let r = s.req(
        Role::Caseworker,
        pb::CreateCourseRequest {
            request_id: rid(),
            audience: pb::Audience::Officials as i32,
            details: Some(pb::CourseDetails {
                title: "Supporting local SMEs".into(),
                topics: vec![],
                language: "ro".into(),
                hours: 6,
                completion_threshold_percent: 0,
            }),
        },
    );
    let course = s.client.create_course(r).await.unwrap().into_inner().course_id;
    let r = s.req(
        Role::Caseworker,
        pb::ScheduleSessionRequest {
            request_id: rid(),
            course_id: course,
            code: "LPA-2027-01".into(),
            capacity: 10,
            completion_threshold_percent: 0,
            details: Some(pb::SessionDetails {
                days: vec![date(today()).unwrap()],
                venue: "Consiliul Raional".into(),
                district: "Anenii Noi".into(),
                trainer: "ODIMM".into(),
            }),
        },
    );
    let officials_session = s.client.schedule_session(r).await.unwrap().into_inner().session_id;
    let r = s.req(
        Role::Caseworker,
        pb::RegisterOfficialRequest {
            request_id: rid(),
            details: Some(pb::OfficialDetails {
                kind: pb::OfficialKind::SmeSupportStaff as i32,
                given_name: "Elena".into(),
                family_name: "Rotaru".into(),
                sex: reg::Sex::Female as i32,
                organisation: "ODIMM".into(),
                role: "Adviser".into(),
                district: "Chișinău".into(),
                email: String::new(),
                phone: String::new(),
            }),
        },
    );
    let official = s.client.register_official(r).await.unwrap().into_inner().official_id;
    let r = s.req(
        Role::Caseworker,
        pb::EnrolInSessionRequest {
            request_id: rid(),
            session_id: officials_session.clone(),
            trainee: Some(pb::enrol_in_session_request::Trainee::OfficialId(official.clone())),
        },
    );
    assert_eq!(s.client.enrol_in_session(r).await.unwrap().into_inner().seat, 1);
    // An applicant has no place in an officials' session.
    let (person, min) = s.woman().await;
    let fresh = s.apply(&call, &person, min).await.application_id;
    let wrong = s.enrol(&officials_session, &fresh).await.unwrap_err();
    assert_eq!(rule(&wrong), "AUDIENCE");
    let r = s.req(
        Role::Caseworker,
        pb::RecordAttendanceRequest {
            request_id: rid(),
            session_id: officials_session.clone(),
            day: date(today()),
            present_trainee_ids: vec![official.clone()],
            absent_trainee_ids: vec![],
        },
    );
    s.client.record_attendance(r).await.unwrap();
    let r = s.req(Role::Caseworker, pb::CompleteSessionRequest { request_id: rid(), session_id: officials_session });
    assert_eq!(s.client.complete_session(r).await.unwrap().into_inner().completed, 1);
    let r = s.req(Role::Caseworker, pb::GetOfficialRequest { official_id: official, min_position: s.last().await });
    let got = s.client.get_official(r).await.unwrap().into_inner().official.unwrap();
    assert_eq!(got.trainings.len(), 1);
    assert_eq!(got.trainings[0].certificate_number, "LPA-2027-01-001");
    rebuild_equals_live(&env, &s).await;
    s.shutdown().await;
}

const TABLES: &str = "SELECT t::text FROM grants.calls t UNION ALL SELECT t::text FROM grants.commitments t \
     UNION ALL SELECT t::text FROM grants.courses t UNION ALL SELECT t::text FROM grants.sessions t \
     UNION ALL SELECT t::text FROM grants.enrolments t UNION ALL SELECT t::text FROM grants.officials t \
     UNION ALL SELECT t::text FROM grants.applications t UNION ALL SELECT t::text FROM grants.evaluations t \
     UNION ALL SELECT t::text FROM grants.items t UNION ALL SELECT t::text FROM grants.handovers t \
     UNION ALL SELECT t::text FROM grants.visits t UNION ALL SELECT t::text FROM grants.support_services t \
     UNION ALL SELECT t::text FROM grants.people t UNION ALL SELECT t::text FROM grants.referral_support t \
     UNION ALL SELECT t::text FROM grants.referrals t ORDER BY 1";

/// A full rebuild of the three projections (inside a transaction that is
/// rolled back, so the running workers are undisturbed) equals the live tables.
async fn rebuild_equals_live(env: &Env, s: &Stack) {
    let last = s.last().await;
    let registry_last = crate::harness::last_commit(&s.registry_store).await;
    let referrals_last = crate::harness::last_commit(&s.referrals_store).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let p = &s.positions;
    p.wait_for(acasa_grants::PROJECTION, s.store.stream_name(), last, deadline).await.unwrap();
    p.wait_for(acasa_grants::PEOPLE_PROJECTION, s.registry_store.stream_name(), registry_last, deadline).await.unwrap();
    p.wait_for(acasa_grants::REFERRALS_PROJECTION, s.referrals_store.stream_name(), referrals_last, deadline)
        .await
        .unwrap();
    let live: Vec<(String,)> = sqlx::query_as(TABLES).fetch_all(&env.pool).await.unwrap();
    assert!(!live.is_empty());
    let mut tx = env.pool.begin().await.unwrap();
    sqlx::query(
        "TRUNCATE grants.calls, grants.commitments, grants.courses, grants.sessions, grants.enrolments, \
         grants.officials, grants.applications, grants.evaluations, grants.items, grants.handovers, grants.visits, \
         grants.support_services, grants.people, grants.referral_support, grants.referrals",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    let upto = |commits: Vec<acasa_eventstore::StoredCommit>, last: u64| -> Vec<_> {
        commits.into_iter().filter(|c| c.sequence <= last).collect()
    };
    let commits = upto(crate::harness::all_commits(&s.store).await, last);
    GrantsProjection::new(vault(env, acasa_grants::VAULT_TABLE)).apply(&mut tx, &commits).await.unwrap();
    let registry = upto(crate::harness::all_commits(&s.registry_store).await, registry_last);
    people(s.registry_channel.clone()).apply(&mut tx, &registry).await.unwrap();
    let referrals = upto(crate::harness::all_commits(&s.referrals_store).await, referrals_last);
    ReferralsProjection::new().apply(&mut tx, &referrals).await.unwrap();
    let rebuilt: Vec<(String,)> = sqlx::query_as(TABLES).fetch_all(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(rebuilt, live);
}
