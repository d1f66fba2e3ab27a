//! The referral system over gRPC against real NATS and Postgres, with the
//! registry beside it as the source of people and consent: the referral
//! lifecycle and its guards, consent and erasure, the SLA deadline worker,
//! re-referral, the partner feed (exactly once, resumable) and isolation
//! between partners by every gRPC route.

use std::{collections::HashSet, time::Duration};

use acasa_domain::formats::make_national_code;
use acasa_eventstore::{EventStore, Repository, RepositoryConfig};
use acasa_projection::{Positions, Projection};
use acasa_proto::{
    partner::v1 as types,
    referrals::v1::{self as pb, referral_service_client::ReferralServiceClient},
    registry::v1::{self as reg, registry_service_client::RegistryServiceClient},
    r#type::v1::{Date, Money},
};
use acasa_referrals::{
    consents::ConsentsProjection, deadlines::Deadlines, feed::FeedProjection, grpc::ReferralService,
    projection::ReferralsProjection,
};
use acasa_registry::grpc::RegistryService;
use acasa_runtime::{Authenticator, Role, Serving, TokenIssuer};
use futures::StreamExt as _;
use rand::Rng as _;
use tokio::sync::watch;
use tonic::{Code, Request, transport::Channel};
use tonic_types::StatusExt as _;

use crate::harness::{Env, JWT_KEY_HEX, eventually, serve, vault, worker};

const WAIT: Duration = Duration::from_secs(20);

struct Stack {
    _registry: Serving,
    _referrals: Serving,
    registry: RegistryServiceClient<Channel>,
    client: ReferralServiceClient<Channel>,
    issuer: TokenIssuer,
    store: EventStore,
    stop: watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    feed_stop: Option<watch::Sender<bool>>,
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
    let (registry_serving, registry_channel) = serve(registry.routes(&auth), &[RegistryService::NAME]).await;

    let store = EventStore::open(env.client().await, crate::harness::settings("referrals")).await.unwrap();
    acasa_referrals::feed::declare_stream(store.jetstream(), 1).await.unwrap();
    let service =
        ReferralService::new(store.clone(), vault(env, acasa_referrals::VAULT_TABLE), positions, env.pool.clone());
    let (referrals_serving, channel) = serve(service.routes(&auth), &[ReferralService::NAME]).await;

    let (stop, stopped) = watch::channel(false);
    let mut workers = Vec::new();
    let w = worker(env, &store, ReferralsProjection);
    let s = stopped.clone();
    workers.push(tokio::spawn(async move { w.run(s).await.unwrap() }));
    let w = worker(env, &registry_store, ConsentsProjection::new(vault(env, acasa_referrals::VAULT_TABLE)));
    let s = stopped.clone();
    workers.push(tokio::spawn(async move { w.run(s).await.unwrap() }));
    let deadlines = Deadlines::new(
        Repository::new(store.clone(), RepositoryConfig::default()),
        env.pool.clone(),
        Duration::from_millis(100),
    );
    workers.push(tokio::spawn(deadlines.run(stopped)));
    let mut stack = Stack {
        _registry: registry_serving,
        _referrals: referrals_serving,
        registry: RegistryServiceClient::new(registry_channel),
        client: ReferralServiceClient::new(channel),
        issuer: TokenIssuer::hs256(&key, "acasa", "acasa"),
        store,
        stop,
        workers,
        feed_stop: None,
    };
    stack.start_feed(env);
    stack
}

fn idno() -> String {
    let prefix: String = (0..12).map(|_| char::from(b'0' + rand::rng().random_range(0..10u8))).collect();
    make_national_code(&prefix).unwrap()
}

fn eur(amount_minor: i64) -> Option<Money> {
    Some(Money { amount_minor, currency: "EUR".into() })
}

fn profile() -> pb::SharedProfile {
    pb::SharedProfile {
        display_name: "Maria Ceban".into(),
        phone: "+37369555123".into(),
        email: "maria.ceban@example.md".into(),
        note: "Bakery in Comrat, two employees".into(),
    }
}

fn loan() -> types::Need {
    types::Need { service: types::ServiceKind::Loan as i32, requested_amount: eur(1_500_000) }
}

impl Stack {
    fn start_feed(&mut self, env: &Env) {
        let (tx, rx) = watch::channel(false);
        let w = worker(env, &self.store, FeedProjection::new(self.store.jetstream().clone()));
        self.workers.push(tokio::spawn(async move { w.run(rx).await.unwrap() }));
        self.feed_stop = Some(tx);
    }

    fn stop_feed(&mut self) {
        if let Some(tx) = self.feed_stop.take() {
            tx.send(true).unwrap();
        }
    }

    fn token(&self, roles: &[Role], partner: Option<&str>) -> String {
        self.issuer.issue("tester", roles, partner, Duration::from_secs(600)).unwrap()
    }

    fn req<T>(&self, role: Role, msg: T) -> Request<T> {
        self.with_token(&self.token(&[role], None), msg)
    }

    fn as_partner<T>(&self, partner: &str, msg: T) -> Request<T> {
        self.with_token(&self.token(&[Role::Partner], Some(partner)), msg)
    }

    fn with_token<T>(&self, token: &str, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        r
    }

    async fn partner(&mut self, name: &str, kind: types::PartnerKind, response_time: Duration) -> String {
        let r = self.req(
            Role::Admin,
            pb::RegisterPartnerRequest {
                request_id: format!("partner-{}", name.replace(' ', "-")),
                kind: kind as i32,
                name: name.into(),
                idno: idno(),
                districts: vec!["Comrat".into(), "Cahul".into()],
                contact: Some(pb::PartnerContact { email: "referrals@bank.md".into(), ..Default::default() }),
                services: vec![
                    pb::PartnerService {
                        kind: types::ServiceKind::Loan as i32,
                        description: "Start-up loans".into(),
                        min_amount: eur(50_000),
                        max_amount: eur(5_000_000),
                    },
                    pb::PartnerService { kind: types::ServiceKind::Accounting as i32, ..Default::default() },
                ],
                response_time: Some(prost_types::Duration {
                    seconds: i64::try_from(response_time.as_secs()).unwrap(),
                    nanos: 0,
                }),
            },
        );
        self.client.register_partner(r).await.unwrap().into_inner().partner_id
    }

    /// Registers a person; returns the id and the registry position.
    async fn person(&mut self, tag: &str) -> (String, u64) {
        let r = self.req(
            Role::Caseworker,
            reg::RegisterPersonRequest {
                request_id: format!("person-{tag}"),
                details: Some(reg::PersonDetails {
                    given_name: "Maria".into(),
                    family_name: format!("Ceban{tag}"),
                    birth_date: Some(Date { year: 1994, month: 6, day: 1 }),
                    ..Default::default()
                }),
                contacts: Some(reg::Contacts { email: String::new(), phone: "+37369555123".into() }),
                country_of_residence: "MD".into(),
                categories: vec![reg::Category::WomanEntrepreneur as i32],
                interests: vec![reg::Interest::EntrepreneurshipSupport as i32],
            },
        );
        let r = self.registry.register_person(r).await.unwrap().into_inner();
        (r.person_id, r.position)
    }

    async fn consent(&mut self, person: &str, partner: &str, given: bool) -> u64 {
        let tag = format!("{}-{}", if given { "give" } else { "withdraw" }, uuid::Uuid::now_v7());
        if given {
            let r = self.req(
                Role::Caseworker,
                reg::GiveConsentRequest {
                    request_id: tag,
                    person_id: person.into(),
                    purpose: reg::ConsentPurpose::PartnerSharing as i32,
                    partner_id: partner.into(),
                    channel: reg::ConsentChannel::InPerson as i32,
                },
            );
            self.registry.give_consent(r).await.unwrap().into_inner().position
        } else {
            let r = self.req(
                Role::Caseworker,
                reg::WithdrawConsentRequest {
                    request_id: tag,
                    person_id: person.into(),
                    purpose: reg::ConsentPurpose::PartnerSharing as i32,
                    partner_id: partner.into(),
                    channel: reg::ConsentChannel::Phone as i32,
                },
            );
            self.registry.withdraw_consent(r).await.unwrap().into_inner().position
        }
    }

    fn referral_body(&self, request_id: &str, person: &str, partner: &str, min: u64) -> pb::CreateReferralRequest {
        pb::CreateReferralRequest {
            request_id: request_id.into(),
            person_id: person.into(),
            partner_id: partner.into(),
            need: Some(loan()),
            district: "Comrat".into(),
            profile: Some(profile()),
            min_registry_position: min,
        }
    }

    async fn refer(&mut self, request_id: &str, person: &str, partner: &str, min: u64) -> pb::CreateReferralResponse {
        let body = self.referral_body(request_id, person, partner, min);
        let r = self.req(Role::Caseworker, body);
        self.client.create_referral(r).await.unwrap().into_inner()
    }

    async fn get_as(&mut self, token: &str, id: &str, min_position: u64) -> Result<pb::Referral, tonic::Status> {
        let r = self.with_token(token, pb::GetReferralRequest { referral_id: id.into(), min_position });
        self.client.get_referral(r).await.map(|r| r.into_inner().referral.unwrap())
    }

    async fn accept(&mut self, partner: &str, id: &str, request_id: &str) -> Result<u64, tonic::Status> {
        let r = self
            .as_partner(partner, pb::AcceptReferralRequest { request_id: request_id.into(), referral_id: id.into() });
        self.client.accept_referral(r).await.map(|r| r.into_inner().position)
    }

    /// The partner's whole feed over gRPC after `from`, until `count` events.
    async fn feed(&mut self, partner: &str, from: u64, count: usize) -> Vec<pb::SubscribeReferralEventsResponse> {
        let r = self.as_partner(partner, pb::SubscribeReferralEventsRequest { from_position: from });
        let mut stream = self.client.subscribe_referral_events(r).await.unwrap().into_inner();
        let mut out = Vec::new();
        while out.len() < count {
            let next = tokio::time::timeout(WAIT, stream.next()).await.expect("feed event in time");
            out.push(next.unwrap().unwrap());
        }
        out
    }

    async fn shutdown(mut self) {
        self.stop_feed();
        self.stop.send(true).unwrap();
        for w in self.workers.drain(..) {
            w.await.unwrap();
        }
    }
}

fn kind_of(e: &pb::SubscribeReferralEventsResponse) -> &str {
    e.r#type.rsplit('.').next().unwrap_or_default()
}

#[tokio::test]
async fn a_referral_goes_from_sent_to_closed_and_the_partner_follows_it_on_its_feed() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    let bank = s.partner("Banca Sociala", types::PartnerKind::Bank, Duration::from_secs(3600)).await;
    let (person, _) = s.person("a").await;
    let consent = s.consent(&person, &bank, true).await;
    let created = s.refer("ref-1", &person, &bank, consent).await;
    let id = created.referral_id.clone();

    // The addressed partner reads the referral with the shared profile, but
    // not the registry's person id.
    let bank_token = s.token(&[Role::Partner], Some(&bank));
    let seen = s.get_as(&bank_token, &id, created.position).await.unwrap();
    assert_eq!(seen.status, pb::ReferralStatus::Sent as i32);
    assert_eq!(seen.profile.as_ref().unwrap().display_name, "Maria Ceban");
    assert!(seen.person_id.is_empty());
    assert_eq!(seen.due_at, created.due_at);

    // Its inbox lists it.
    let inbox = s
        .client
        .list_inbox(s.as_partner(&bank, pb::ListInboxRequest { min_position: created.position, ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inbox.referrals.iter().map(|r| r.referral_id.as_str()).collect::<Vec<_>>(), [id.as_str()]);

    // Outcome before acceptance is refused.
    let outcome = pb::RecordOutcomeRequest {
        request_id: "out-1".into(),
        referral_id: id.clone(),
        outcome: Some(types::Outcome { kind: Some(types::outcome::Kind::LoanDisbursed(eur(1_200_000).unwrap())) }),
    };
    let e = s.client.record_outcome(s.as_partner(&bank, outcome.clone())).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    s.accept(&bank, &id, "acc-1").await.unwrap();
    // Accepting again (a retry with the same request id) answers the same position.
    let p1 = s.accept(&bank, &id, "acc-1").await.unwrap();
    assert_eq!(s.accept(&bank, &id, "acc-1").await.unwrap(), p1);
    // A second acceptance under another request id is refused.
    assert_eq!(s.accept(&bank, &id, "acc-2").await.unwrap_err().code(), Code::FailedPrecondition);

    s.client
        .report_progress(s.as_partner(
            &bank,
            pb::ReportProgressRequest {
                request_id: "prog-1".into(),
                referral_id: id.clone(),
                stage: types::ProgressStage::UnderAssessment as i32,
            },
        ))
        .await
        .unwrap();
    s.client.record_outcome(s.as_partner(&bank, outcome)).await.unwrap();
    let closed = s
        .client
        .close_referral(
            s.req(Role::Caseworker, pb::CloseReferralRequest { request_id: "close-1".into(), referral_id: id.clone() }),
        )
        .await
        .unwrap()
        .into_inner()
        .position;

    let staff = s.token(&[Role::Caseworker], None);
    let r = s.get_as(&staff, &id, closed).await.unwrap();
    assert_eq!(r.status, pb::ReferralStatus::Closed as i32);
    assert_eq!(r.person_id, person);
    assert_eq!(r.progress, types::ProgressStage::UnderAssessment as i32);
    assert!(r.answered_at.is_some() && r.closed_at.is_some());
    // Once closed, the partner no longer sees the profile.
    assert!(s.get_as(&bank_token, &id, 0).await.unwrap().profile.is_none());

    // Reports: the pipeline and the conversion count it.
    let pipeline = s
        .client
        .get_pipeline(s.req(Role::Viewer, pb::GetPipelineRequest { partner_id: bank.clone(), min_position: closed }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pipeline.entries.len(), 1);
    assert_eq!((pipeline.entries[0].status, pipeline.entries[0].count), (pb::ReferralStatus::Closed as i32, 1));
    let conversion = s
        .client
        .get_conversion(s.req(Role::Viewer, pb::GetConversionRequest { min_position: closed, ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    let c = &conversion.entries[0];
    assert_eq!((c.partner_kind, c.district.as_str()), (types::PartnerKind::Bank as i32, "Comrat"));
    assert_eq!((c.referred, c.accepted, c.with_outcome, c.delivered), (1, 1, 1, 1));
    assert_eq!(c.disbursed, vec![eur(1_200_000).unwrap()]);

    // The feed: every step, in order, with CloudEvents attributes, and no
    // personal data anywhere in it.
    let events = s.feed(&bank, 0, 5).await;
    let kinds: Vec<&str> = events.iter().map(kind_of).collect();
    assert_eq!(kinds, ["received", "accepted", "progress", "outcome", "closed"]);
    assert!(events.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(events.iter().map(|e| e.id.clone()).collect::<HashSet<_>>().len(), 5);
    for e in &events {
        let ev = e.event.as_ref().unwrap();
        assert_eq!((ev.referral_id.as_str(), ev.partner_id.as_str()), (id.as_str(), bank.as_str()));
        assert!(e.time.is_some());
    }
    // What a partner reading the stream sees on a message: exactly the
    // documented headers (and the broker's own `Nats-Batch-*` of the atomic
    // publish, documented as ignorable).
    let feed_stream = s.store.jetstream().get_stream(acasa_referrals::FEED_STREAM).await.unwrap();
    let raw = feed_stream.get_raw_message(events[1].position).await.unwrap();
    let mut names: Vec<String> =
        raw.headers.iter().map(|(k, _)| k.to_string()).filter(|k| !k.starts_with("Nats-Batch-")).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "Acasa-Source-Position",
            "Nats-Msg-Id",
            "ce-id",
            "ce-source",
            "ce-specversion",
            "ce-subject",
            "ce-time",
            "ce-type",
            "content-type"
        ]
    );
    rebuild_equals_live(&env, &s).await;
    let stored = stream_bytes(&s.store, acasa_referrals::FEED_STREAM).await;
    for secret in ["Maria", "Ceban", "+37369555123", "maria.ceban", "Bakery", person.as_str()] {
        assert!(!contains(&stored, secret.as_bytes()), "the feed carries {secret}");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn no_consent_no_referral_and_withdrawal_or_erasure_hides_the_profile() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    let bank = s.partner("MFI Invest", types::PartnerKind::MicrofinanceInstitution, Duration::from_secs(3600)).await;
    let other = s.partner("Other Bank", types::PartnerKind::Bank, Duration::from_secs(3600)).await;
    let (person, registered) = s.person("b").await;

    // No consent at all; then consent to another partner only.
    let body = s.referral_body("r-none", &person, &bank, registered);
    let e = s.client.create_referral(s.req(Role::Caseworker, body)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("consent"), "{}", e.message());
    let pos = s.consent(&person, &other, true).await;
    let body = s.referral_body("r-other", &person, &bank, pos);
    assert_eq!(
        s.client.create_referral(s.req(Role::Caseworker, body)).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    // An unknown person.
    let body = s.referral_body("r-ghost", &uuid::Uuid::now_v7().to_string(), &bank, pos);
    assert_eq!(s.client.create_referral(s.req(Role::Caseworker, body)).await.unwrap_err().code(), Code::NotFound);

    // With consent it goes through; the retry gives the same referral.
    let pos = s.consent(&person, &bank, true).await;
    let first = s.refer("r-ok", &person, &bank, pos).await;
    let again = s.refer("r-ok", &person, &bank, pos).await;
    assert_eq!((again.referral_id.as_str(), again.position), (first.referral_id.as_str(), first.position));
    // The same request id for a different referral is refused.
    let mut different = s.referral_body("r-ok", &person, &bank, pos);
    different.district = "Cahul".into();
    assert_eq!(
        s.client.create_referral(s.req(Role::Caseworker, different)).await.unwrap_err().code(),
        Code::FailedPrecondition
    );

    let bank_token = s.token(&[Role::Partner], Some(&bank));
    assert!(s.get_as(&bank_token, &first.referral_id, first.position).await.unwrap().profile.is_some());

    // Withdrawn consent: the profile is hidden and no new referral is possible.
    let withdrawn = s.consent(&person, &bank, false).await;
    let body = s.referral_body("r-after", &person, &bank, withdrawn);
    assert_eq!(
        s.client.create_referral(s.req(Role::Caseworker, body)).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    assert!(s.get_as(&bank_token, &first.referral_id, 0).await.unwrap().profile.is_none());

    // Consent given again: visible again. Erasure: gone for good.
    let pos = s.consent(&person, &bank, true).await;
    let body = s.referral_body("r-again", &person, &bank, pos);
    s.client.create_referral(s.req(Role::Caseworker, body)).await.unwrap();
    assert!(s.get_as(&bank_token, &first.referral_id, 0).await.unwrap().profile.is_some());
    let erased = s
        .registry
        .erase_person(
            s.req(Role::Admin, reg::ErasePersonRequest { request_id: "erase".into(), person_id: person.clone() }),
        )
        .await
        .unwrap()
        .into_inner()
        .position;
    let pool = env.pool.clone();
    let pid = uuid::Uuid::parse_str(&person).unwrap();
    eventually(WAIT, || {
        let pool = pool.clone();
        async move {
            let keys: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM referrals_vault.data_keys WHERE subject_id = $1 AND wrapped IS NOT NULL",
            )
            .bind(pid)
            .fetch_one(&pool)
            .await
            .unwrap();
            (keys == 0).then_some(())
        }
    })
    .await;
    let sealed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM referrals.referrals WHERE person_id = $1 AND profile_sealed IS NOT NULL",
    )
    .bind(pid)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(sealed, 0);
    let staff = s.token(&[Role::Caseworker], None);
    assert!(s.get_as(&staff, &first.referral_id, 0).await.unwrap().profile.is_none());
    let body = s.referral_body("r-erased", &person, &bank, erased);
    assert_eq!(
        s.client.create_referral(s.req(Role::Caseworker, body)).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_partner_sees_and_answers_only_its_own_referrals_by_every_grpc_route() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    let a = s.partner("Bank A", types::PartnerKind::Bank, Duration::from_secs(3600)).await;
    let b = s.partner("Bank B", types::PartnerKind::Bank, Duration::from_secs(3600)).await;
    let (person, _) = s.person("c").await;
    s.consent(&person, &a, true).await;
    let pos = s.consent(&person, &b, true).await;
    let to_a = s.refer("to-a", &person, &a, pos).await;
    let to_b = s.refer("to-b", &person, &b, pos).await;
    let id = to_a.referral_id.clone();
    let b_token = s.token(&[Role::Partner], Some(&b));

    // Reads.
    assert_eq!(s.get_as(&b_token, &id, to_b.position.max(to_a.position)).await.unwrap_err().code(), Code::NotFound);
    let inbox = s.client.list_inbox(s.as_partner(&b, pb::ListInboxRequest::default())).await.unwrap().into_inner();
    assert_eq!(inbox.referrals.iter().map(|r| r.referral_id.as_str()).collect::<Vec<_>>(), [to_b.referral_id.as_str()]);
    let e = s
        .client
        .list_inbox(s.as_partner(&b, pb::ListInboxRequest { partner_id: a.clone(), ..Default::default() }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let breaches = s
        .client
        .list_sla_breaches(s.as_partner(&b, pb::ListSlaBreachesRequest { partner_id: a.clone(), ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    assert!(breaches.referrals.iter().all(|r| r.partner_id == b));
    assert_eq!(
        s.client.get_pipeline(s.as_partner(&b, pb::GetPipelineRequest::default())).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        s.client.get_conversion(s.as_partner(&b, pb::GetConversionRequest::default())).await.unwrap_err().code(),
        Code::PermissionDenied
    );

    // Every answer.
    let rid = || id.clone();
    let mut c = s.client.clone();
    let codes = [
        c.accept_referral(s.as_partner(&b, pb::AcceptReferralRequest { request_id: "x1".into(), referral_id: rid() }))
            .await
            .unwrap_err()
            .code(),
        c.decline_referral(s.as_partner(
            &b,
            pb::DeclineReferralRequest {
                request_id: "x2".into(),
                referral_id: rid(),
                reason: types::DeclineReason::NoCapacity as i32,
                note: String::new(),
            },
        ))
        .await
        .unwrap_err()
        .code(),
        c.report_progress(s.as_partner(
            &b,
            pb::ReportProgressRequest {
                request_id: "x3".into(),
                referral_id: rid(),
                stage: types::ProgressStage::Contacted as i32,
            },
        ))
        .await
        .unwrap_err()
        .code(),
        c.record_outcome(s.as_partner(
            &b,
            pb::RecordOutcomeRequest {
                request_id: "x4".into(),
                referral_id: rid(),
                outcome: Some(types::Outcome {
                    kind: Some(types::outcome::Kind::ServiceDelivered(types::ServiceDelivered {
                        service: types::ServiceKind::Loan as i32,
                    })),
                }),
            },
        ))
        .await
        .unwrap_err()
        .code(),
        c.close_referral(s.as_partner(&b, pb::CloseReferralRequest { request_id: "x5".into(), referral_id: rid() }))
            .await
            .unwrap_err()
            .code(),
        c.withdraw_referral(s.as_partner(
            &b,
            pb::WithdrawReferralRequest {
                request_id: "x6".into(),
                referral_id: rid(),
                reason: types::WithdrawReason::Other as i32,
            },
        ))
        .await
        .unwrap_err()
        .code(),
        c.re_refer_referral(s.as_partner(
            &b,
            pb::ReReferReferralRequest {
                request_id: "x7".into(),
                referral_id: rid(),
                partner_id: b.clone(),
                min_registry_position: 0,
            },
        ))
        .await
        .unwrap_err()
        .code(),
    ];
    assert!(codes.iter().all(|c| *c == Code::NotFound), "{codes:?}");
    // Staff cannot answer for a partner either.
    let e = c
        .accept_referral(
            s.req(Role::Caseworker, pb::AcceptReferralRequest { request_id: "x8".into(), referral_id: rid() }),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    // Partner administration is not for partners (beyond their own catalogue).
    let e = c
        .suspend_partner(s.as_partner(
            &b,
            pb::SuspendPartnerRequest { request_id: "x9".into(), partner_id: a.clone(), reason: String::new() },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = c
        .set_partner_services(s.as_partner(
            &b,
            pb::SetPartnerServicesRequest { request_id: "x10".into(), partner_id: a.clone(), services: vec![] },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // The feed: B's subscription carries only B's referral; a token without a
    // partner id, or a staff token, cannot subscribe.
    let feed_b = s.feed(&b, 0, 1).await;
    assert_eq!(feed_b[0].event.as_ref().unwrap().referral_id, to_b.referral_id);
    let r = s.as_partner(&b, pb::SubscribeReferralEventsRequest { from_position: feed_b[0].position });
    let mut rest = s.client.subscribe_referral_events(r).await.unwrap().into_inner();
    s.accept(&a, &id, "a-accepts").await.unwrap();
    let last_a = s.feed(&a, 0, 2).await;
    assert_eq!(kind_of(&last_a[1]), "accepted");
    // Nothing of A's arrives on B's stream (A's events are already stored).
    assert!(tokio::time::timeout(Duration::from_millis(500), rest.next()).await.is_err());
    let r = s.req(Role::Caseworker, pb::SubscribeReferralEventsRequest { from_position: 0 });
    assert_eq!(s.client.subscribe_referral_events(r).await.unwrap_err().code(), Code::PermissionDenied);
    let no_partner = s.token(&[Role::Partner], None);
    let r = s.with_token(&no_partner, pb::SubscribeReferralEventsRequest { from_position: 0 });
    assert_eq!(s.client.subscribe_referral_events(r).await.unwrap_err().code(), Code::PermissionDenied);
    s.shutdown().await;
}

#[tokio::test]
async fn the_deadline_worker_records_an_sla_breach_once_and_a_late_answer_still_counts() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    let slow = s.partner("Slow MFI", types::PartnerKind::MicrofinanceInstitution, Duration::from_secs(1)).await;
    let (person, _) = s.person("d").await;
    let pos = s.consent(&person, &slow, true).await;
    let created = s.refer("late", &person, &slow, pos).await;

    let mut client = s.client.clone();
    let token = s.token(&[Role::Viewer], None);
    let breached = eventually(WAIT, || {
        let mut client = client.clone();
        let r = s.with_token(&token, pb::ListSlaBreachesRequest { unanswered_only: true, ..Default::default() });
        async move {
            let list = client.list_sla_breaches(r).await.unwrap().into_inner();
            list.referrals.into_iter().next()
        }
    })
    .await;
    assert_eq!(breached.referral_id, created.referral_id);
    let due = breached.due_at.unwrap();
    let at = breached.sla_breached_at.unwrap();
    assert!((at.seconds, at.nanos) >= (due.seconds, due.nanos));

    // The partner accepts late: allowed, and it leaves the unanswered list.
    let accepted = s.accept(&slow, &created.referral_id, "late-ok").await.unwrap();
    let r = s.with_token(
        &token,
        pb::ListSlaBreachesRequest { unanswered_only: true, min_position: accepted, ..Default::default() },
    );
    assert!(client.list_sla_breaches(r).await.unwrap().into_inner().referrals.is_empty());
    let r = s.with_token(&token, pb::ListSlaBreachesRequest { min_position: accepted, ..Default::default() });
    assert_eq!(client.list_sla_breaches(r).await.unwrap().into_inner().referrals.len(), 1);

    // Exactly one breach event in the log, recorded by the deadline worker,
    // and on the partner's feed between the receipt and the acceptance.
    let mut breaches = 0;
    for c in crate::harness::all_commits(&s.store).await {
        if c.events.iter().any(|e| e.type_name == "acasa.referrals.v1.ReferralSlaBreached") {
            breaches += 1;
            assert_eq!(c.actor, acasa_referrals::deadlines::ACTOR);
        }
    }
    assert_eq!(breaches, 1);
    let feed = s.feed(&slow, 0, 3).await;
    assert_eq!(feed.iter().map(kind_of).collect::<Vec<_>>(), ["received", "sla_breached", "accepted"]);
    s.shutdown().await;
}

#[tokio::test]
async fn a_declined_referral_is_re_referred_with_its_profile_and_the_first_partner_is_told() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    let a = s.partner("First", types::PartnerKind::Bank, Duration::from_secs(3600)).await;
    let b = s.partner("Second", types::PartnerKind::SavingsAndCreditAssociation, Duration::from_secs(3600)).await;
    let (person, _) = s.person("e").await;
    let pos = s.consent(&person, &a, true).await;
    let created = s.refer("first", &person, &a, pos).await;
    s.client
        .decline_referral(s.as_partner(
            &a,
            pb::DeclineReferralRequest {
                request_id: "no".into(),
                referral_id: created.referral_id.clone(),
                reason: types::DeclineReason::NotEligible as i32,
                note: "outside our criteria".into(),
            },
        ))
        .await
        .unwrap();
    let rerefer = pb::ReReferReferralRequest {
        request_id: "again".into(),
        referral_id: created.referral_id.clone(),
        partner_id: b.clone(),
        min_registry_position: 0,
    };
    // No consent to share with B yet.
    let e = s.client.re_refer_referral(s.req(Role::Caseworker, rerefer.clone())).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let pos = s.consent(&person, &b, true).await;
    let mut rerefer = rerefer;
    rerefer.request_id = "again-2".into();
    rerefer.min_registry_position = pos;
    let new = s.client.re_refer_referral(s.req(Role::Caseworker, rerefer.clone())).await.unwrap().into_inner();
    // Idempotent.
    let same = s.client.re_refer_referral(s.req(Role::Caseworker, rerefer)).await.unwrap().into_inner();
    assert_eq!(same.referral_id, new.referral_id);

    let b_token = s.token(&[Role::Partner], Some(&b));
    let seen = s.get_as(&b_token, &new.referral_id, new.position).await.unwrap();
    assert_eq!(seen.profile.unwrap(), profile());
    assert_eq!(seen.re_referred_from, created.referral_id);
    let staff = s.token(&[Role::Caseworker], None);
    let last = crate::harness::last_commit(&s.store).await;
    let old = s.get_as(&staff, &created.referral_id, last).await.unwrap();
    assert_eq!(old.status, pb::ReferralStatus::ReReferred as i32);
    assert_eq!(old.re_referred_to, new.referral_id);
    // A declined then closed referral cannot be re-referred again.
    let e = s
        .client
        .re_refer_referral(s.req(
            Role::Caseworker,
            pb::ReReferReferralRequest {
                request_id: "again-3".into(),
                referral_id: created.referral_id.clone(),
                partner_id: b.clone(),
                min_registry_position: 0,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);

    let feed_a = s.feed(&a, 0, 3).await;
    assert_eq!(feed_a.iter().map(kind_of).collect::<Vec<_>>(), ["received", "declined", "withdrawn"]);
    let types::referral_event::Kind::Withdrawn(w) = feed_a[2].event.as_ref().unwrap().kind.clone().unwrap() else {
        panic!("not withdrawn")
    };
    assert!(w.re_referred);
    let feed_b = s.feed(&b, 0, 1).await;
    assert_eq!(kind_of(&feed_b[0]), "received");

    // The caseworker withdraws the new one.
    s.client
        .withdraw_referral(s.req(
            Role::Caseworker,
            pb::WithdrawReferralRequest {
                request_id: "wd".into(),
                referral_id: new.referral_id.clone(),
                reason: types::WithdrawReason::PersonRequest as i32,
            },
        ))
        .await
        .unwrap();
    assert_eq!(kind_of(&s.feed(&b, 0, 2).await[1]), "withdrawn");
    s.shutdown().await;
}

#[tokio::test]
async fn the_feed_resumes_from_any_position_and_a_restarted_publisher_duplicates_nothing() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    let bank = s.partner("Resume Bank", types::PartnerKind::Bank, Duration::from_secs(3600)).await;
    let (person, _) = s.person("f").await;
    let pos = s.consent(&person, &bank, true).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(s.refer(&format!("many-{i}"), &person, &bank, pos).await.referral_id);
    }
    // Past JetStream's deduplication window only the publisher's own recovery
    // stands between a replay and a duplicate: shrink the window to its
    // minimum, and let it pass (a sleep for the broker's clock, not for a
    // projection) before each replay.
    const DEDUP: Duration = Duration::from_millis(100);
    let js = s.store.jetstream().clone();
    let mut feed_stream = js.get_stream(acasa_referrals::FEED_STREAM).await.unwrap();
    let mut config = feed_stream.info().await.unwrap().config.clone();
    config.duplicate_window = DEDUP;
    js.update_stream(config).await.unwrap();
    let all = s.feed(&bank, 0, 4).await;
    // From the middle: exactly the rest.
    let rest = s.feed(&bank, all[1].position, 2).await;
    assert_eq!(
        rest.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        all[2..].iter().map(|e| e.id.clone()).collect::<Vec<_>>()
    );

    // Stop the publisher, act, force it to re-publish what it already did by
    // moving its checkpoint back, restart: the feed gains each event once.
    s.stop_feed();
    for id in &ids {
        s.accept(&bank, id, &format!("acc-{id}")).await.unwrap();
    }
    sqlx::query("UPDATE projection.checkpoints SET position = 0 WHERE name = $1")
        .bind(acasa_referrals::FEED_PROJECTION)
        .execute(&env.pool)
        .await
        .unwrap();
    tokio::time::sleep(DEDUP * 2).await;
    s.start_feed(&env);
    let everything = s.feed(&bank, 0, 8).await;
    let unique: HashSet<_> = everything.iter().map(|e| e.id.clone()).collect();
    assert_eq!(unique.len(), 8);

    // The same running publisher replays from an older checkpoint (as after a
    // relaxed commit lost in a Postgres crash): the next batch finds the
    // checkpoint moved, repositions, and re-applies everything.
    sqlx::query("UPDATE projection.checkpoints SET position = 0 WHERE name = $1")
        .bind(acasa_referrals::FEED_PROJECTION)
        .execute(&env.pool)
        .await
        .unwrap();
    tokio::time::sleep(DEDUP * 2).await;
    let progress = pb::ReportProgressRequest {
        request_id: "prog-replay".into(),
        referral_id: ids[0].clone(),
        stage: types::ProgressStage::Contacted as i32,
    };
    s.client.report_progress(s.as_partner(&bank, progress)).await.unwrap();
    let ninth = s.feed(&bank, everything[7].position, 1).await;
    assert_eq!(ninth[0].r#type, "acasa.partner.v1.referral.progress");
    // Nothing further arrives: no duplicate was published, by either replay.
    let r = s.as_partner(&bank, pb::SubscribeReferralEventsRequest { from_position: ninth[0].position });
    let mut tail = s.client.subscribe_referral_events(r).await.unwrap().into_inner();
    assert!(tokio::time::timeout(Duration::from_millis(700), tail.next()).await.is_err());
    s.shutdown().await;
}

#[tokio::test]
async fn partners_are_unique_by_idno_findable_and_bad_input_names_its_fields() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    let code = idno();
    let body = pb::RegisterPartnerRequest {
        request_id: "p1".into(),
        kind: types::PartnerKind::LocalAuthority as i32,
        name: "Primăria Comrat".into(),
        idno: code.clone(),
        districts: vec!["Comrat".into()],
        contact: Some(pb::PartnerContact { phone: "+37329822222".into(), ..Default::default() }),
        services: vec![pb::PartnerService { kind: types::ServiceKind::Licensing as i32, ..Default::default() }],
        response_time: None,
    };
    let first = s.client.register_partner(s.req(Role::Admin, body.clone())).await.unwrap().into_inner();
    let mut dup = body.clone();
    dup.request_id = "p2".into();
    let e = s.client.register_partner(s.req(Role::Admin, dup)).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    assert_eq!(e.get_error_details().error_info().unwrap().metadata.get("existing_id"), Some(&first.partner_id));
    assert!(!e.message().contains(&code));
    // The same request id with another IDNO is refused, and leaves that IDNO free.
    let mut reused = body.clone();
    reused.idno = idno();
    reused.districts = vec!["Orhei".into()];
    let e = s.client.register_partner(s.req(Role::Admin, reused.clone())).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    reused.request_id = "p3".into();
    s.client.register_partner(s.req(Role::Admin, reused)).await.unwrap();
    // Caseworkers cannot register partners.
    assert_eq!(
        s.client.register_partner(s.req(Role::Caseworker, body)).await.unwrap_err().code(),
        Code::PermissionDenied
    );

    let found = s
        .client
        .list_partners(s.req(
            Role::Viewer,
            pb::ListPartnersRequest {
                district: "comrat".into(),
                service: types::ServiceKind::Licensing as i32,
                min_position: first.position,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.partners.len(), 1);
    assert_eq!(found.partners[0].response_time.unwrap().seconds, 48 * 3600);
    // Suspended: not listed, and no referral to it.
    let pos = s
        .client
        .suspend_partner(s.req(
            Role::Admin,
            pb::SuspendPartnerRequest {
                request_id: "s".into(),
                partner_id: first.partner_id.clone(),
                reason: "audit".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .position;
    let found = s
        .client
        .list_partners(s.req(Role::Viewer, pb::ListPartnersRequest { min_position: pos, ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    assert!(found.partners.iter().all(|p| p.partner_id != first.partner_id));
    assert_eq!(found.partners.len(), 1);

    let cases: Vec<(pb::RegisterPartnerRequest, &[&str])> = vec![
        (
            pb::RegisterPartnerRequest { request_id: "bad".into(), ..Default::default() },
            &["kind", "name", "idno", "districts", "contact"],
        ),
        (
            pb::RegisterPartnerRequest {
                request_id: "bad idno".into(),
                kind: 2,
                name: "X".into(),
                idno: "1234567890123".into(),
                districts: vec!["A".into()],
                contact: Some(pb::PartnerContact { email: "not-an-email".into(), ..Default::default() }),
                services: vec![pb::PartnerService {
                    kind: types::ServiceKind::Training as i32,
                    min_amount: eur(1),
                    max_amount: eur(2),
                    ..Default::default()
                }],
                response_time: Some(prost_types::Duration { seconds: 0, nanos: 0 }),
            },
            &["request_id", "idno", "contact.email", "services[0].min_amount", "response_time"],
        ),
    ];
    for (body, fields) in cases {
        let e = s.client.register_partner(s.req(Role::Admin, body)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        let got: Vec<String> =
            e.get_error_details().bad_request().unwrap().field_violations.iter().map(|f| f.field.clone()).collect();
        assert_eq!(got, *fields);
    }
    let bad = pb::CreateReferralRequest {
        request_id: "bad-ref".into(),
        person_id: "nope".into(),
        partner_id: String::new(),
        need: Some(types::Need { service: types::ServiceKind::Training as i32, requested_amount: eur(5) }),
        district: " ".into(),
        profile: Some(pb::SharedProfile { display_name: "A".into(), phone: "12".into(), ..Default::default() }),
        min_registry_position: 0,
    };
    let e = s.client.create_referral(s.req(Role::Caseworker, bad)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let got: Vec<String> =
        e.get_error_details().bad_request().unwrap().field_violations.iter().map(|f| f.field.clone()).collect();
    assert_eq!(got, ["person_id", "partner_id", "need.requested_amount", "district", "profile.phone"]);
    s.shutdown().await;
}

/// A full rebuild of `referrals.referrals` (into a second, idle worker's
/// transaction) gives the same rows as the live projection.
async fn rebuild_equals_live(env: &Env, s: &Stack) {
    let last = crate::harness::last_commit(&s.store).await;
    let positions = Positions::start(env.pool.clone());
    positions
        .wait_for(acasa_referrals::PROJECTION, s.store.stream_name(), last, tokio::time::Instant::now() + WAIT)
        .await
        .unwrap();
    let text = || async {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT t::text FROM referrals.referrals t UNION ALL SELECT t::text FROM referrals.partners t ORDER BY 1",
        )
        .fetch_all(&env.pool)
        .await
        .unwrap();
        rows.into_iter().map(|r| r.0).collect::<Vec<_>>()
    };
    let live = text().await;
    assert!(!live.is_empty());
    // Replay everything into emptied tables inside one transaction, compare,
    // and roll back so the running worker is undisturbed.
    let mut tx = env.pool.begin().await.unwrap();
    sqlx::query("TRUNCATE referrals.partners, referrals.referrals").execute(&mut *tx).await.unwrap();
    let commits: Vec<_> =
        crate::harness::all_commits(&s.store).await.into_iter().filter(|c| c.sequence <= last).collect();
    ReferralsProjection.apply(&mut tx, &commits).await.unwrap();
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT t::text FROM referrals.referrals t UNION ALL SELECT t::text FROM referrals.partners t ORDER BY 1",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(rows.into_iter().map(|r| r.0).collect::<Vec<_>>(), live);
}

/// Every stored message of a stream (subjects, headers and payloads).
async fn stream_bytes(store: &EventStore, stream: &str) -> Vec<u8> {
    let mut s = store.jetstream().get_stream(stream).await.unwrap();
    let last = s.info().await.unwrap().state.last_sequence;
    let mut all = Vec::new();
    for seq in 1..=last {
        let m = s.get_raw_message(seq).await.unwrap();
        all.extend(m.subject.as_bytes());
        for (k, vs) in m.headers.iter() {
            all.extend(k.to_string().as_bytes());
            for v in vs {
                all.extend(v.as_str().as_bytes());
            }
        }
        all.extend(m.payload.as_ref());
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn a_feed_stream_from_before_atomic_publishing_is_upgraded_in_place() {
    let env = Env::new().await;
    let js = async_nats::jetstream::new(env.client().await);
    let old = async_nats::jetstream::stream::Config {
        name: acasa_referrals::FEED_STREAM.to_owned(),
        subjects: vec!["acasa.partner.>".into()],
        ..Default::default()
    };
    js.create_stream(old).await.unwrap();
    acasa_referrals::feed::declare_stream(&js, 1).await.unwrap();
    let mut stream = js.get_stream(acasa_referrals::FEED_STREAM).await.unwrap();
    assert!(stream.info().await.unwrap().config.allow_atomic_publish);
    // Declaring again changes nothing.
    acasa_referrals::feed::declare_stream(&js, 1).await.unwrap();
}

#[tokio::test]
async fn a_request_id_is_one_call_another_method_under_it_is_refused() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    let bank = s.partner("Banca Sociala", types::PartnerKind::Bank, Duration::from_secs(3600)).await;
    let (person, _) = s.person("a").await;
    let consent = s.consent(&person, &bank, true).await;
    let created = s.refer("ref-1", &person, &bank, consent).await;
    let id = created.referral_id.clone();
    let accepted = s.accept(&bank, &id, "same-1").await.unwrap();
    // CloseReferral's body is byte-for-byte AcceptReferral's.
    let close = pb::CloseReferralRequest { request_id: "same-1".into(), referral_id: id.clone() };
    let e = s.client.close_referral(s.as_partner(&bank, close)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("request_id"), "{e:?}");
    let staff = s.token(&[Role::Caseworker], None);
    assert_eq!(s.get_as(&staff, &id, accepted).await.unwrap().status, pb::ReferralStatus::Accepted as i32);

    // SuspendPartner with no reason and ReactivatePartner: identical bodies too.
    let suspend =
        pb::SuspendPartnerRequest { request_id: "p-same".into(), partner_id: bank.clone(), reason: String::new() };
    let suspended = s.client.suspend_partner(s.req(Role::Admin, suspend)).await.unwrap().into_inner().position;
    let reactivate = pb::ReactivatePartnerRequest { request_id: "p-same".into(), partner_id: bank.clone() };
    let e = s.client.reactivate_partner(s.req(Role::Admin, reactivate)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let get = pb::GetPartnerRequest { partner_id: bank.clone(), min_position: suspended };
    let partner = s.client.get_partner(s.req(Role::Admin, get)).await.unwrap().into_inner().partner.unwrap();
    assert!(partner.suspended, "the partner stays suspended");
}

/// Issue 11: a CreateReferral that read the person as active just before the
/// erasure reached this service (the consents projection destroyed the key
/// meanwhile) must not make a fresh key and seal the profile under it.
#[tokio::test]
async fn a_referral_racing_an_erasure_makes_no_key_for_the_erased_person() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    let partner = s.partner("Race Bank", types::PartnerKind::Bank, Duration::from_secs(3600)).await;
    let (person, _) = s.person("race").await;
    let pos = s.consent(&person, &partner, true).await;
    let id = uuid::Uuid::parse_str(&person).unwrap();
    // The interleaving: the person reads as active with consent (the facts are
    // current at `pos`), and the erasure's key destruction lands before the key
    // is fetched — what the consents projection does on PersonErased.
    let referrals_vault = vault(&env, acasa_referrals::VAULT_TABLE);
    let mut conn = env.pool.acquire().await.unwrap();
    referrals_vault.destroy_on(&mut conn, id).await.unwrap();
    drop(conn);
    let body = s.referral_body("race-1", &person, &partner, pos);
    let e = s.client.create_referral(s.req(Role::Caseworker, body)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(referrals_vault.key(id).await.unwrap().is_none(), "a key was made for an erased person");
    s.shutdown().await;
}

/// A suspended partner gets no NATS account (`acasa nats-users` renders the
/// accounts from `partner_ids`), so it cannot stream its feed; its consumer
/// stays, and reactivated it gets its account back.
#[tokio::test]
async fn a_suspended_partner_gets_no_nats_account_until_reactivated() {
    use acasa_referrals::nats_users::{PartnerLimits, partner_account, partner_ids, partner_user, render_accounts};
    let env = Env::new().await;
    let mut s = start(&env).await;
    let bank = s.partner("Suspended Bank", types::PartnerKind::Bank, Duration::from_secs(3600)).await;
    let mfi = s.partner("Active Credit", types::PartnerKind::MicrofinanceInstitution, Duration::from_secs(3600)).await;
    let (bank_id, mfi_id): (uuid::Uuid, uuid::Uuid) = (bank.parse().unwrap(), mfi.parse().unwrap());
    let mut both = vec![bank_id, mfi_id];
    both.sort();
    let ids = || async { partner_ids(&env.pool).await.unwrap() };
    eventually(WAIT, || async { (ids().await == both).then_some(()) }).await;
    // The feed publisher created the bank's consumer.
    let feed = s.store.jetstream().get_stream(acasa_referrals::FEED_STREAM).await.unwrap();
    eventually(WAIT, || async { feed.consumer_info(bank.clone()).await.ok().map(|_| ()) }).await;

    let suspend =
        pb::SuspendPartnerRequest { request_id: "susp".into(), partner_id: bank.clone(), reason: "audit".into() };
    let pos = s.client.suspend_partner(s.req(Role::Admin, suspend)).await.unwrap().into_inner().position;
    let get = pb::GetPartnerRequest { partner_id: bank.clone(), min_position: pos };
    assert!(s.client.get_partner(s.req(Role::Admin, get)).await.unwrap().into_inner().partner.unwrap().suspended);
    assert_eq!(ids().await, vec![mfi_id]);
    let partners: Vec<(uuid::Uuid, String)> = ids().await.into_iter().map(|id| (id, "pw".to_owned())).collect();
    let text = render_accounts("acasa", "svc", &partners, &PartnerLimits::default());
    assert!(!text.contains(&partner_account(bank_id)) && !text.contains(&partner_user(bank_id)), "{text}");
    assert!(text.contains(&partner_account(mfi_id)), "{text}");
    // Nothing else changes: its consumer stays.
    assert_eq!(feed.consumer_info(bank.clone()).await.unwrap().name, bank);

    let reactivate = pb::ReactivatePartnerRequest { request_id: "react".into(), partner_id: bank.clone() };
    let pos = s.client.reactivate_partner(s.req(Role::Admin, reactivate)).await.unwrap().into_inner().position;
    let get = pb::GetPartnerRequest { partner_id: bank.clone(), min_position: pos };
    assert!(!s.client.get_partner(s.req(Role::Admin, get)).await.unwrap().into_inner().partner.unwrap().suspended);
    assert_eq!(ids().await, both);
}

/// Issue 11: a hand-made page token whose time is outside what Postgres
/// stores is a bad `page_token` (it answered INTERNAL).
#[tokio::test]
async fn a_forged_page_token_is_a_bad_field_not_an_internal_error() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    let bank = s.partner("Token Bank", types::PartnerKind::Bank, Duration::from_secs(3600)).await;
    let far = chrono::DateTime::from_timestamp_micros(i64::MAX / 2).unwrap();
    let forged = acasa_runtime::page::token(&(far, uuid::Uuid::now_v7()));
    let inbox = pb::ListInboxRequest { partner_id: bank.clone(), page_token: forged, ..Default::default() };
    let e = s.client.list_inbox(s.req(Role::Admin, inbox)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let fields: Vec<String> =
        e.get_error_details().bad_request().unwrap().field_violations.iter().map(|f| f.field.clone()).collect();
    assert_eq!(fields, ["page_token"]);
    s.shutdown().await;
}

/// Issue 11 (reproduced from outside): a suspended partner opens no profile,
/// answers nothing and lists nothing until reactivated; its referrals are kept.
#[tokio::test]
async fn a_suspended_partner_reads_and_answers_nothing_until_reactivated() {
    let env = Env::new().await;
    let mut s = start(&env).await;
    let bank = s.partner("Paused Bank", types::PartnerKind::Bank, Duration::from_secs(3600)).await;
    let (person, _) = s.person("paused").await;
    let pos = s.consent(&person, &bank, true).await;
    let r = s.refer("paused-1", &person, &bank, pos).await;
    let token = s.token(&[Role::Partner], Some(&bank));
    assert!(s.get_as(&token, &r.referral_id, r.position).await.unwrap().profile.is_some());

    let suspend =
        pb::SuspendPartnerRequest { request_id: "pause".into(), partner_id: bank.clone(), reason: "audit".into() };
    let pos = s.client.suspend_partner(s.req(Role::Admin, suspend)).await.unwrap().into_inner().position;
    // Applies once projected (every replica reads it from the read model).
    let get = pb::GetPartnerRequest { partner_id: bank.clone(), min_position: pos };
    s.client.get_partner(s.req(Role::Admin, get)).await.unwrap();
    let e = s.get_as(&token, &r.referral_id, 0).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = s.accept(&bank, &r.referral_id, "acc-1").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let inbox = s.with_token(&token, pb::ListInboxRequest::default());
    assert_eq!(s.client.list_inbox(inbox).await.unwrap_err().code(), Code::PermissionDenied);

    let reactivate = pb::ReactivatePartnerRequest { request_id: "resume".into(), partner_id: bank.clone() };
    let pos = s.client.reactivate_partner(s.req(Role::Admin, reactivate)).await.unwrap().into_inner().position;
    let get = pb::GetPartnerRequest { partner_id: bank.clone(), min_position: pos };
    s.client.get_partner(s.req(Role::Admin, get)).await.unwrap();
    assert!(s.get_as(&token, &r.referral_id, 0).await.unwrap().profile.is_some(), "nothing was lost");
    s.accept(&bank, &r.referral_id, "acc-1").await.unwrap();
    s.shutdown().await;
}
