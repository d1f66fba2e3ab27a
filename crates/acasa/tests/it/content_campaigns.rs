//! An information campaign from the registry to a real SMTP server's
//! mailbox: people abroad who consented are reached once each in their
//! language, and nobody else — not those without consent, not those in
//! Moldova, not one who withdrew consent after being recorded and before
//! the send, not one erased meanwhile — even though the sender dies in the
//! middle of the batch (the SMTP server frozen in the middle of a
//! transaction, the sender's task killed) and a new one takes over. The
//! outbox never holds a contact detail; the reach is counted by country and
//! language.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use acasa_content::{
    audience::AudienceProjection,
    domain::locale::FallbackChain,
    grpc::{ContentService, PublicContentService},
    outbox::{Campaigns, Settings},
    projection::ContentProjection,
    sender::{Delivery, Message, Record, SendError, Sender, SmtpSender, SmtpSettings},
};
use acasa_eventstore::{EventStore, Repository, RepositoryConfig};
use acasa_projection::Positions;
use acasa_proto::{
    content::v1::{self as pb, content_service_client::ContentServiceClient},
    registry::v1::{self as reg, registry_service_client::RegistryServiceClient},
    r#type::v1::Date,
};
use acasa_registry::grpc::{PersonDataService, RegistryService};
use acasa_runtime::{Authenticator, Role, TokenIssuer, person_data::Purpose, rate::RateLimiter};
use acasa_testkit::SmtpServer;
use acasa_vault::Keys;
use chrono::Utc;
use futures::future::BoxFuture;
use tokio::sync::watch;
use tonic::Request;
use uuid::Uuid;

use crate::harness::{Env, JWT_KEY_HEX, eventually, person_data, serve, vault, worker};

const WAIT: Duration = Duration::from_secs(30);

fn rid() -> String {
    Uuid::now_v7().to_string()
}

/// A sender that, at its `crash_at`-th message, freezes the SMTP server and
/// hands the message on: the transaction hangs mid-way, where the test
/// kills the task.
struct FreezingAt {
    inner: SmtpSender,
    count: AtomicUsize,
    crash_at: usize,
    server_pid_signal: Box<dyn Fn() + Send + Sync>,
    frozen: tokio::sync::Notify,
}

impl Sender for FreezingAt {
    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), SendError>> {
        self.inner.send(message)
    }

    fn send_recorded<'a>(&'a self, message: &'a Message, record: Record<'a>) -> BoxFuture<'a, Delivery> {
        Box::pin(async move {
            if self.count.fetch_add(1, Ordering::SeqCst) + 1 == self.crash_at {
                (self.server_pid_signal)();
                self.frozen.notify_one();
            }
            self.inner.send_recorded(message, record).await
        })
    }
}

fn authed<T>(issuer: &TokenIssuer, subject: &str, role: Role, msg: T) -> Request<T> {
    let token = issuer.issue(subject, &[role], None, Duration::from_secs(600)).unwrap();
    let mut r = Request::new(msg);
    r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

fn smtp(server: &SmtpServer) -> SmtpSender {
    SmtpSender::new(SmtpSettings {
        host: server.host().to_owned(),
        port: server.port(),
        timeout: Duration::from_secs(60),
        ..SmtpSettings::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_consenting_recipient_gets_exactly_one_message_though_the_sender_dies_mid_batch() {
    let env = Env::new().await;
    let server = SmtpServer::start().await.unwrap();
    let key = hex::decode(JWT_KEY_HEX).unwrap();
    let auth = Authenticator::hs256(&key, "acasa", "acasa");
    let issuer = TokenIssuer::hs256(&key, "acasa", "acasa");
    let positions = Positions::start(env.pool.clone());

    // The registry, with its PersonDataService.
    let registry_store = EventStore::open(env.client().await, crate::harness::settings("registry")).await.unwrap();
    let registry = RegistryService::new(
        Repository::new(registry_store.clone(), RepositoryConfig::default()),
        vault(&env, acasa_registry::VAULT_TABLE),
        positions.clone(),
        env.pool.clone(),
    );
    let opener = PersonDataService::new(Keys::new(vault(&env, acasa_registry::VAULT_TABLE)));
    let routes = opener.add_to(registry.routes(&auth), &auth);
    let (_registry_serving, registry_channel) = serve(routes, &[RegistryService::NAME, PersonDataService::NAME]).await;
    let mut people = RegistryServiceClient::new(registry_channel.clone());

    // Content: the editorial service, its projections (its own log, the registry's).
    let store = EventStore::open(env.client().await, crate::harness::settings("content")).await.unwrap();
    let chain = FallbackChain::parse(FallbackChain::DEFAULT).unwrap();
    let routes = acasa_content::grpc::routes(
        ContentService::new(store.clone(), positions.clone(), env.pool.clone()),
        PublicContentService::new(env.pool.clone(), chain.clone(), RateLimiter::new(100.0, 100)),
        &auth,
    );
    let (_content_serving, channel) = serve(routes, &[ContentService::NAME, PublicContentService::NAME]).await;
    let mut content = ContentServiceClient::new(channel);
    let (stop, stopped) = watch::channel(false);
    let w = worker(&env, &store, ContentProjection);
    let s = stopped.clone();
    let content_worker = tokio::spawn(async move { w.run(s).await.unwrap() });
    let opens: Arc<dyn acasa_runtime::person_data::PersonData> =
        Arc::new(person_data(registry_channel.clone(), acasa_content::SERVICE, Purpose::Campaigns));
    let w = worker(&env, &registry_store, AudienceProjection::new(opens.clone()));
    let audience_worker = tokio::spawn(async move { w.run(stopped).await.unwrap() });

    // People: 40 in Italy reading Romanian and 10 in Germany reading
    // Russian who consented; 3 in Italy who did not; 2 in Moldova who did.
    let mut register = async |i: usize, country: &str, language: &str, consent: bool| -> (String, u64) {
        let r = authed(
            &issuer,
            "tester",
            Role::Caseworker,
            reg::RegisterPersonRequest {
                request_id: rid(),
                details: Some(reg::PersonDetails {
                    given_name: "Ion".into(),
                    family_name: format!("Popescu-{i}"),
                    birth_date: Some(Date { year: 1990, month: 1, day: 1 }),
                    languages: vec![language.into(), "en".into()],
                    ..Default::default()
                }),
                contacts: Some(reg::Contacts { email: format!("p{i}@example.md"), phone: String::new() }),
                country_of_residence: country.into(),
                categories: vec![reg::Category::MigrantAbroad as i32],
                interests: vec![reg::Interest::Information as i32],
            },
        );
        let person = people.register_person(r).await.unwrap().into_inner();
        let mut position = person.position;
        if consent {
            let r = authed(
                &issuer,
                "tester",
                Role::Caseworker,
                reg::GiveConsentRequest {
                    request_id: rid(),
                    person_id: person.person_id.clone(),
                    purpose: reg::ConsentPurpose::InformationCampaigns as i32,
                    partner_id: String::new(),
                    channel: reg::ConsentChannel::Online as i32,
                },
            );
            position = people.give_consent(r).await.unwrap().into_inner().position;
        }
        (person.person_id, position)
    };
    let mut email_of: HashMap<String, String> = HashMap::new();
    let mut reached = Vec::new();
    let mut last = 0;
    for i in 0..52 {
        let (country, language) = if i < 40 { ("IT", "ro") } else { ("DE", "ru") };
        let (id, at) = register(i, country, language, true).await;
        email_of.insert(format!("p{i}@example.md"), id.clone());
        reached.push(id);
        last = at;
    }
    for i in 100..103 {
        last = register(i, "IT", "ro", false).await.1;
    }
    for i in 200..202 {
        last = register(i, "MD", "ro", true).await.1;
    }
    // Two of the 52 will not be sent to: one withdraws, one is erased.
    let withdrawn = reached.pop().unwrap();
    let erased = reached.pop().unwrap();
    let registry_stream = acasa_eventstore::stream_name_of("registry");
    let deadline = tokio::time::Instant::now() + WAIT;
    positions.wait_for(acasa_content::AUDIENCE_PROJECTION, &registry_stream, last, deadline).await.unwrap();

    // The campaign: a message in Romanian and in Russian.
    let r = authed(
        &issuer,
        "editor-ana",
        Role::Editor,
        pb::CreateCampaignRequest {
            request_id: rid(),
            name: "Pensii 2027".into(),
            target: Some(pb::CampaignTarget {
                countries: vec!["IT".into(), "DE".into()],
                languages: vec!["ro".into(), "ru".into()],
            }),
        },
    );
    let campaign = content.create_campaign(r).await.unwrap().into_inner().campaign_id;
    for (locale, subject, text) in [
        ("ro", "Pensia dumneavoastră", "Perioadele lucrate în Italia contează."),
        ("ru", "Ваша пенсия", "Стаж в Германии учитывается."),
    ] {
        let r = authed(
            &issuer,
            "editor-ana",
            Role::Editor,
            pb::SetCampaignContentRequest {
                request_id: rid(),
                campaign_id: campaign.clone(),
                content: Some(pb::CampaignContent {
                    locale: locale.into(),
                    content: Some(pb::campaign_content::Content::Message(pb::CampaignMessage {
                        subject: subject.into(),
                        text: text.into(),
                    })),
                }),
            },
        );
        content.set_campaign_content(r).await.unwrap();
    }
    let send_at = Utc::now() + chrono::Duration::minutes(1);
    let r = authed(
        &issuer,
        "editor-ana",
        Role::Editor,
        pb::ScheduleCampaignRequest {
            request_id: rid(),
            campaign_id: campaign.clone(),
            send_at: Some(acasa_proto::time::timestamp(send_at)),
        },
    );
    let position = content.schedule_campaign(r).await.unwrap().into_inner().position;
    let content_stream = acasa_eventstore::stream_name_of("content");
    let deadline = tokio::time::Instant::now() + WAIT;
    positions.wait_for(acasa_content::PROJECTION, &content_stream, position, deadline).await.unwrap();

    let sender_at = |senders: Vec<Arc<dyn Sender>>| {
        Campaigns::new(
            Repository::new(store.clone(), RepositoryConfig::default()),
            env.pool.clone(),
            opens.clone(),
            senders,
            chain.clone(),
            Settings { public_url: "https://acasa.test/info".into(), interval: Duration::from_secs(3600) },
        )
    };
    let now = send_at + chrono::Duration::seconds(1);
    let first = {
        let pid_server = server.pid().unwrap();
        let freezing = Arc::new(FreezingAt {
            inner: smtp(&server),
            count: AtomicUsize::new(0),
            crash_at: 20,
            server_pid_signal: Box::new(move || {
                std::process::Command::new("kill").args(["-STOP", &pid_server.to_string()]).status().unwrap();
            }),
            frozen: tokio::sync::Notify::new(),
        });
        (sender_at(vec![freezing.clone() as Arc<dyn Sender>]), freezing)
    };
    let (campaigns, freezing) = first;
    // Started, and its recipients recorded in one batch (the outbox).
    assert_eq!(campaigns.start_due(now).await.unwrap(), 1);
    let recorded = eventually(WAIT, || {
        let campaigns = campaigns.clone();
        async move {
            let r = campaigns.record(now).await.unwrap();
            (r.recorded > 0).then_some(r.recorded)
        }
    })
    .await;
    assert_eq!(recorded, 52, "the consenting people abroad, nobody else");
    let pool = env.pool.clone();
    let campaign_id = Uuid::parse_str(&campaign).unwrap();
    eventually(WAIT, || {
        let pool = pool.clone();
        async move {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM content.deliveries WHERE campaign_id = $1")
                .bind(campaign_id)
                .fetch_one(&pool)
                .await
                .unwrap();
            (n == 52).then_some(())
        }
    })
    .await;

    // After being recorded and before the send: one withdraws, one is erased.
    let r = authed(
        &issuer,
        "tester",
        Role::Caseworker,
        reg::WithdrawConsentRequest {
            request_id: rid(),
            person_id: withdrawn.clone(),
            purpose: reg::ConsentPurpose::InformationCampaigns as i32,
            partner_id: String::new(),
            channel: reg::ConsentChannel::Online as i32,
        },
    );
    people.withdraw_consent(r).await.unwrap();
    let r = authed(
        &issuer,
        "tester",
        Role::Admin,
        reg::ErasePersonRequest { request_id: rid(), person_id: erased.clone() },
    );
    let at = people.erase_person(r).await.unwrap().into_inner().position;
    let deadline = tokio::time::Instant::now() + WAIT;
    positions.wait_for(acasa_content::AUDIENCE_PROJECTION, &registry_stream, at, deadline).await.unwrap();

    // The sender dies at its 20th message, the server frozen mid-transaction.
    let dying = {
        let campaigns = campaigns.clone();
        tokio::spawn(async move { campaigns.deliver(now).await })
    };
    freezing.frozen.notified().await;
    dying.abort();
    assert!(dying.await.is_err(), "killed");
    server.resume().unwrap();
    let before = server.messages().unwrap().len();
    assert!((15..50).contains(&before), "killed mid-batch: {before} sent before");

    // Another sender takes over and drains the outbox.
    let campaigns = sender_at(vec![Arc::new(smtp(&server)), Arc::new(smtp(&server))]);
    loop {
        let r = campaigns.deliver(now).await.unwrap();
        if r == acasa_content::outbox::Round::default() {
            break;
        }
    }
    let r = campaigns.record(now).await.unwrap();
    assert_eq!(r.completed, 1);

    // Exactly one message to every consenting recipient, none to anyone else.
    let mut got: HashMap<String, usize> = HashMap::new();
    for m in server.messages().unwrap() {
        for to in m.to {
            *got.entry(email_of.get(&to).cloned().unwrap_or(to)).or_default() += 1;
        }
    }
    for person in &reached {
        assert_eq!(got.get(person), Some(&1), "{person}");
    }
    assert_eq!(got.len(), reached.len(), "nobody else: {got:?}");
    assert!(!got.contains_key(&withdrawn) && !got.contains_key(&erased));

    // Reach by country and language; nothing personal in the outbox.
    let r = authed(
        &issuer,
        "editor-ana",
        Role::Editor,
        pb::GetCampaignReachRequest { campaign_id: campaign.clone(), min_position: 0 },
    );
    let reach = content.get_campaign_reach(r).await.unwrap().into_inner();
    let total = reach.total.unwrap();
    assert_eq!((total.recipients, total.sent, total.consent_withdrawn, total.erased), (52, 50, 1, 1));
    assert_eq!((total.pending, total.failed, total.uncertain), (0, 0, 0));
    let rows: Vec<(String, String, u32)> =
        reach.rows.iter().map(|r| (r.country.clone(), r.locale.clone(), r.sent)).collect();
    assert_eq!(rows, [("DE".into(), "ru".into(), 10), ("IT".into(), "ro".into(), 40)]);
    // To whom and when: the withdrawn and the erased named by id, not sent.
    let r = authed(
        &issuer,
        "editor-ana",
        Role::Editor,
        pb::ListCampaignDeliveriesRequest { campaign_id: campaign.clone(), page_size: 200, ..Default::default() },
    );
    let deliveries = content.list_campaign_deliveries(r).await.unwrap().into_inner().deliveries;
    assert_eq!(deliveries.len(), 52);
    let status_of = |p: &str| deliveries.iter().find(|d| d.person_id == p).map(|d| d.status);
    assert_eq!(status_of(&withdrawn), Some(pb::DeliveryStatus::ConsentWithdrawn as i32));
    assert_eq!(status_of(&erased), Some(pb::DeliveryStatus::Erased as i32));
    assert!(deliveries.iter().filter(|d| d.status == pb::DeliveryStatus::Sent as i32).all(|d| d.sent_at.is_some()));
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM content.deliveries WHERE concat_ws(' ', locale, country, error) LIKE '%@%'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0);
    let (contacts, languages): (Option<Vec<u8>>, Vec<String>) =
        sqlx::query_as("SELECT contacts_sealed, languages FROM content.audience WHERE person_id = $1")
            .bind(Uuid::parse_str(&erased).unwrap())
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert!(contacts.is_none() && languages.is_empty(), "nothing of the erased person remains");

    stop.send(true).unwrap();
    content_worker.await.unwrap();
    audience_worker.await.unwrap();
}
