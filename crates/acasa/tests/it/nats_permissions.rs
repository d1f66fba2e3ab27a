//! The partner feed's NATS accounts and permissions, against a real
//! nats-server configured with `acasa_referrals::nats_users::render_accounts` for
//! partners A and B: the services' account `ACASA` (JetStream, the service
//! user, the exports) and one account per partner importing only its own
//! consumer's API and acks.
//!
//! Each partner's durable pull consumer is created by the service user, as
//! the feed publisher does when it projects the partner's registration
//! (`acasa_referrals::feed::ensure_partner_consumer`, on the stream of
//! `feed::declare_stream`). A consumes its own: binds to it, fetches and acks,
//! resumes after reconnecting, and replays it with RESET from a stream
//! sequence. A can create or delete no consumer at all — not its own, not a
//! push consumer of its own feed delivering into another service's event-log
//! subject, not one on B's feed — and can not see anything of B's, by every
//! route tried here: core subscriptions (B's subjects, wildcards, advisories,
//! acks; its own inboxes, which it may listen on, see nothing of B's), B's
//! consumer, direct get, message get, stream info and listings, acks of B's
//! messages, publishing into the feed. Each refusal is asserted as the exact
//! permissions-violation error the server sends (the connection's event
//! callback).
//!
//! The reply subject of A's permitted requests — which no permission checks —
//! names a subject of A's own account: answers come back to A's inboxes and
//! never to the same-named subject of the services' account. A fetch replying
//! into the registry's event-log subject finds no interest there and delivers
//! nothing; an info or reset replying into B's feed subjects and an ack
//! replying into the registry's are served, answered into A's account; nothing
//! of any of them reaches the services' account (its streams and listeners). Partners added by a configuration
//! reload, as `scripts/stack.sh` does, get a working account; removed ones can
//! no longer log in. No sleeps: every wait has a deadline.

use std::time::Duration;

use acasa_eventstore::KeyedHasher;
use acasa_referrals::feed;
use acasa_referrals::nats_users::{self, FEED_STREAM, INBOX_PREFIX, PartnerLimits, SERVICE_USER, feed_filter};
use acasa_testkit::NatsServer;
use async_nats::{
    ConnectErrorKind, ConnectOptions, Event, ServerError, Subscriber,
    jetstream::{
        self,
        consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull, push},
        stream,
    },
};
use futures::{FutureExt as _, StreamExt as _, TryStreamExt as _};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

const SERVICE_PASSWORD: &str = "service-password-for-tests";
/// Upper bound of every wait for something that must happen.
const DEADLINE: Duration = Duration::from_secs(10);
/// How long a refused JetStream request waits for the answer that never comes.
const REFUSED: Duration = Duration::from_millis(500);
/// Another service's event-log subject (the registry stream stores `acasa.registry.>`).
const REGISTRY_SUBJECT: &str = "acasa.registry.person.x";

struct Feed {
    nats: NatsServer,
    hasher: KeyedHasher,
    a: Uuid,
    b: Uuid,
    js: jetstream::Context,
    limits: PartnerLimits,
}

/// The `accounts` block for these partners.
fn accounts(hasher: &KeyedHasher, partners: &[Uuid], limits: &PartnerLimits) -> String {
    let partners: Vec<(Uuid, String)> =
        partners.iter().map(|id| (*id, nats_users::partner_password(hasher, *id))).collect();
    nats_users::render_accounts(SERVICE_USER, SERVICE_PASSWORD, &partners, limits)
}

impl Feed {
    /// A server whose accounts are the services' (the service user) and
    /// partners A's and B's; the service declared the feed stream and created
    /// both partners' consumers, and a stream of the services' account stores
    /// another service's event log.
    async fn start() -> Feed {
        Self::start_limited(PartnerLimits::default()).await
    }

    /// [`Feed::start`] with these limits on the partners' accounts.
    async fn start_limited(limits: PartnerLimits) -> Feed {
        let hasher = KeyedHasher::new(vec![42u8; 32]);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let nats = NatsServer::start_with(&accounts(&hasher, &[a, b], &limits)).await.unwrap();
        let service = ConnectOptions::new()
            .user_and_password(SERVICE_USER.into(), SERVICE_PASSWORD.into())
            .connect(nats.url())
            .await
            .unwrap();
        let js = jetstream::new(service);
        feed::declare_stream(&js, 1).await.unwrap();
        for id in [a, b] {
            feed::ensure_partner_consumer(&js, id).await.unwrap();
        }
        js.create_stream(stream::Config {
            name: "ACASA_REGISTRY".into(),
            subjects: vec!["acasa.registry.>".into()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .unwrap();
        Feed { nats, hasher, a, b, js, limits }
    }

    /// The server reloads its configuration with these partners' accounts, as
    /// `scripts/stack.sh` does when `acasa nats-users` changed the file: twice,
    /// because nats-server (2.15.1) routes the imports of an account that a
    /// reload adds only from the next reload on (until then the partner's
    /// requests find no responders).
    async fn reconfigure(&mut self, partners: &[Uuid]) {
        let config = accounts(&self.hasher, partners, &self.limits);
        for _ in 0..2 {
            self.nats.reload_with(&config).await.unwrap();
        }
    }

    /// A partner's connection whose every event (server errors, disconnects)
    /// arrives, as its debug text, on the receiver.
    async fn connect_watched(
        &self,
        id: Uuid,
    ) -> Result<(async_nats::Client, mpsc::UnboundedReceiver<String>), async_nats::ConnectError> {
        let (tx, events) = mpsc::unbounded_channel();
        let client = ConnectOptions::new()
            .user_and_password(nats_users::partner_user(id), nats_users::partner_password(&self.hasher, id))
            .max_reconnects(Some(1))
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(format!("{event:?}"));
                }
            })
            .connect(self.nats.url())
            .await?;
        Ok((client, events))
    }

    /// [`Feed::connect_watched`], retried until the deadline while the
    /// partner's account is at its connection limit (a closed connection
    /// counts until the server has seen it go).
    async fn connect_when_free(&self, id: Uuid) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            match self.connect_watched(id).await {
                Ok(c) => return c,
                Err(e) => {
                    assert!(e.to_string().contains("maximum account active connections exceeded"), "{e}");
                    assert!(tokio::time::Instant::now() < deadline, "{id} could not connect within {DEADLINE:?}: {e}");
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
        }
    }

    /// The service publishes referral event `n` to `partner`'s feed; its stream sequence.
    async fn publish(&self, partner: Uuid, n: u32) -> u64 {
        let subject = format!("acasa.partner.{partner}.referral.r{n}");
        self.js.publish(subject, payload(partner, n).into()).await.unwrap().await.unwrap().sequence
    }

    /// The feed's consumers, as the service sees them.
    async fn consumer_names(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.js.get_stream(FEED_STREAM).await.unwrap().consumer_names().try_collect().await.unwrap();
        names.sort();
        names
    }

    /// How many messages the other service's event log holds.
    async fn registry_messages(&self) -> u64 {
        self.js.get_stream("ACASA_REGISTRY").await.unwrap().info().await.unwrap().state.messages
    }

    /// How many messages the feed holds.
    async fn feed_messages(&self) -> u64 {
        self.js.get_stream(FEED_STREAM).await.unwrap().info().await.unwrap().state.messages
    }

    /// `partner`'s consumer as the service sees it, once `done` holds of it
    /// (asked again until the deadline: what a partner sent the consumer is
    /// served asynchronously).
    async fn consumer_once(
        &self,
        partner: Uuid,
        what: &str,
        done: impl Fn(&jetstream::consumer::Info) -> bool,
    ) -> jetstream::consumer::Info {
        let stream = self.js.get_stream_no_info(FEED_STREAM).await.unwrap();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let info = stream.consumer_info(partner.to_string()).await.unwrap();
            if done(&info) {
                return info;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{partner}'s consumer not {what} within {DEADLINE:?}: {info:?}"
            );
        }
    }

    async fn partner(&self, id: Uuid) -> Partner {
        let (tx, errors) = mpsc::unbounded_channel();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        // Retried while connections just closed still count against the
        // account's limit (the server notices a close a moment later).
        let client = loop {
            let tx = tx.clone();
            // The default inbox prefix: inboxes are account-local.
            let connected = ConnectOptions::new()
                .user_and_password(nats_users::partner_user(id), nats_users::partner_password(&self.hasher, id))
                .event_callback(move |event| {
                    let tx = tx.clone();
                    async move {
                        if let Event::ServerError(ServerError::Other(e)) = event {
                            let _ = tx.send(e);
                        }
                    }
                })
                .connect(self.nats.url())
                .await;
            match connected {
                Ok(c) => break c,
                Err(e) => {
                    assert!(e.to_string().contains("maximum account active connections exceeded"), "{e}");
                    assert!(tokio::time::Instant::now() < deadline, "{id} could not connect: {e}");
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
        };
        let js = jetstream::new(client.clone());
        let refused = jetstream::ContextBuilder::new().timeout(REFUSED).ack_timeout(REFUSED).build(client.clone());
        Partner { id, client, js, refused, errors }
    }
}

fn payload(partner: Uuid, n: u32) -> String {
    format!("{partner}:{n}")
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

struct Partner {
    id: Uuid,
    client: async_nats::Client,
    js: jetstream::Context,
    /// The same connection with a short request timeout, for refused requests.
    refused: jetstream::Context,
    errors: mpsc::UnboundedReceiver<String>,
}

impl Partner {
    async fn feed(&self) -> jetstream::stream::Stream<()> {
        self.js.get_stream_no_info(FEED_STREAM).await.unwrap()
    }

    /// Binds to its durable pull consumer (a consumer info request), and
    /// checks it is the one the service created: named after it, filtered on
    /// its feed, every message, explicit acks, no deliver subject.
    async fn consumer(&self) -> PullConsumer {
        let c: PullConsumer = self.feed().await.get_consumer(&self.id.to_string()).await.unwrap();
        let info = c.cached_info();
        assert_eq!(info.name, self.id.to_string());
        assert_eq!(info.config.durable_name, Some(self.id.to_string()));
        assert_eq!(info.config.filter_subject, feed_filter(self.id));
        assert_eq!(info.config.deliver_policy, DeliverPolicy::All);
        assert_eq!(info.config.ack_policy, AckPolicy::Explicit);
        assert_eq!(info.config.deliver_subject, None);
        c
    }

    /// The next error the server sent must be exactly this permissions violation.
    async fn expect_violation(&mut self, kind: &str, subject: &str) {
        self.client.flush().await.unwrap();
        let got = tokio::time::timeout(DEADLINE, self.errors.recv())
            .await
            .unwrap_or_else(|_| panic!("no permissions violation for {kind} to {subject} within {DEADLINE:?}"))
            .unwrap();
        assert_eq!(got, format!("Permissions Violation for {kind} to \"{subject}\""));
    }

    /// Publishes (with a reply subject, like a request) and expects the refusal.
    async fn publish_refused(&mut self, subject: &str, body: Value) {
        let reply = format!("{INBOX_PREFIX}.refused");
        self.client.publish_with_reply(subject.to_owned(), reply, body.to_string().into()).await.unwrap();
        self.expect_violation("Publish", subject).await;
    }

    /// Subscribes and expects the refusal; the subscriber is kept to show it
    /// never receives anything.
    async fn subscribe_refused(&mut self, subject: &str) -> Subscriber {
        let sub = self.client.subscribe(subject.to_owned()).await.unwrap();
        self.expect_violation("Subscription", subject).await;
        sub
    }

    /// A JetStream API request the server answers (the subject is allowed),
    /// with the raw `body`: its `error.err_code` (0 on success) and the answer.
    async fn api(&self, subject: &str, body: bytes::Bytes) -> (u64, Value) {
        let answer = tokio::time::timeout(DEADLINE, self.client.request(format!("$JS.API.{subject}"), body))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{subject}: {e}"));
        let answer: Value = serde_json::from_slice(&answer.payload).unwrap();
        (answer["error"]["err_code"].as_u64().unwrap_or(0), answer)
    }

    /// No further error from the server.
    async fn no_more_errors(&mut self) {
        self.client.flush().await.unwrap();
        assert_eq!(self.errors.try_recv().ok(), None);
    }
}

/// Fetches what is there now (up to `max`), double-acking each unless `ack`
/// is false; their payloads. Every message must be on `partner`'s own subjects.
async fn fetch_with(consumer: &PullConsumer, partner: Uuid, max: usize, ack: bool) -> Vec<String> {
    // What is there now, up to `max`; on a loaded machine a message stored a
    // moment ago may reach the consumer a little later, so keep fetching
    // until `max` came or nothing more came for a while.
    let mut got = Vec::new();
    let mut quiet_since = tokio::time::Instant::now();
    while got.len() < max && quiet_since.elapsed() < QUIET {
        let mut batch = consumer.fetch().max_messages(max - got.len()).messages().await.unwrap();
        let before = got.len();
        while let Some(m) = tokio::time::timeout(DEADLINE, batch.next()).await.unwrap() {
            let m = m.unwrap();
            assert!(m.subject.starts_with(&format!("acasa.partner.{partner}.")), "{}", m.subject);
            got.push(String::from_utf8(m.payload.to_vec()).unwrap());
            if ack {
                m.double_ack().await.unwrap();
            }
        }
        if got.len() > before {
            quiet_since = tokio::time::Instant::now();
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    got
}

/// How long a fetch waits for stragglers after the last message it got.
const QUIET: Duration = Duration::from_millis(300);

/// Fetches and acks what is there now (up to `max`).
async fn fetch(consumer: &PullConsumer, partner: Uuid, max: usize) -> Vec<String> {
    fetch_with(consumer, partner, max, true).await
}

#[tokio::test]
async fn a_partner_consumes_its_durable_consumer_and_replays_it_with_reset() {
    let f = Feed::start().await;
    let (a, b) = (f.a, f.b);
    let s = FEED_STREAM;
    let mut seq_a = Vec::new();
    for n in 1..=3 {
        seq_a.push(f.publish(a, n).await);
        f.publish(b, n).await;
    }

    // The service created A's consumer before A's first login: A binds to it,
    // fetches and acks two.
    let mut pa = f.partner(a).await;
    let consumer = pa.consumer().await;
    assert_eq!(fetch(&consumer, a, 2).await, [payload(a, 1), payload(a, 2)]);
    pa.no_more_errors().await;
    pa.client.drain().await.unwrap();

    // Reconnected, it resumes where it stopped, and only its own messages come.
    let mut pa = f.partner(a).await;
    let consumer = pa.consumer().await;
    assert_eq!(fetch(&consumer, a, 10).await, [payload(a, 3)]);
    assert_eq!(fetch(&consumer, a, 10).await, Vec::<String>::new());
    seq_a.push(f.publish(a, 4).await);
    f.publish(b, 4).await;
    assert_eq!(fetch(&consumer, a, 10).await, [payload(a, 4)]);

    // The feed publisher projecting the registration again (a replay) keeps
    // the consumer and its position.
    feed::ensure_partner_consumer(&f.js, a).await.unwrap();
    assert_eq!(fetch(&consumer, a, 10).await, Vec::<String>::new());

    // Replay from a stream sequence: reset the consumer to it, fetch from there.
    let reset = pa.feed().await.reset_consumer(&a.to_string(), Some(seq_a[1])).await.unwrap();
    assert_eq!(reset.reset_seq, seq_a[1]);
    assert_eq!(fetch(&consumer, a, 10).await, [payload(a, 2), payload(a, 3), payload(a, 4)]);

    // The request itself: body {"seq": N}; the ack floor becomes N - 1, and the
    // next message fetched is the first at or after N, however far back.
    let reset = format!("CONSUMER.RESET.{s}.{a}");
    let (code, answer) = pa.api(&reset, json!({"seq": seq_a[0]}).to_string().into()).await;
    assert_eq!(code, 0, "{answer}");
    assert_eq!(answer["type"], json!("io.nats.jetstream.api.v1.consumer_reset_response"), "{answer}");
    assert_eq!(answer["name"], json!(a.to_string()), "{answer}");
    assert_eq!(answer["reset_seq"], json!(seq_a[0]), "{answer}");
    assert_eq!(answer["ack_floor"]["stream_seq"], json!(seq_a[0] - 1), "{answer}");
    assert_eq!(fetch(&consumer, a, 3).await, [payload(a, 1), payload(a, 2), payload(a, 3)]);
    // An empty body only clears what was delivered and not acked: delivery
    // restarts after the ack floor (`reset_seq` is the ack floor + 1, here B's
    // message between A's third and fourth).
    assert_eq!(fetch_with(&consumer, a, 10, false).await, [payload(a, 4)]);
    let (code, answer) = pa.api(&reset, bytes::Bytes::new()).await;
    assert_eq!(code, 0, "{answer}");
    assert_eq!(answer["ack_floor"]["stream_seq"], json!(seq_a[2]), "{answer}");
    assert_eq!(answer["reset_seq"], json!(seq_a[2] + 1), "{answer}");
    assert_eq!(fetch(&consumer, a, 10).await, [payload(a, 4)]);
    // A body the server can not read is answered with an error, and changes nothing.
    let (code, answer) = pa.api(&reset, json!({"seq": "first"}).to_string().into()).await;
    assert_eq!(code, 10025, "{answer}");
    assert_eq!(fetch(&consumer, a, 10).await, Vec::<String>::new());
    pa.no_more_errors().await;

    // B consumes its own feed the same way, untouched by A.
    let mut pb = f.partner(b).await;
    let consumer = pb.consumer().await;
    assert_eq!(fetch(&consumer, b, 10).await, (1..=4).map(|n| payload(b, n)).collect::<Vec<_>>());
    pb.no_more_errors().await;
    assert_eq!(f.consumer_names().await, sorted(vec![a.to_string(), b.to_string()]));
}

#[tokio::test]
async fn a_partner_can_neither_create_nor_delete_a_consumer_not_even_its_own() {
    let f = Feed::start().await;
    let (a, b) = (f.a, f.b);
    let s = FEED_STREAM;
    f.publish(a, 1).await;
    f.publish(b, 1).await;
    // Someone listening on another service's event-log subject.
    let mut listener = f.js.client().subscribe(REGISTRY_SUBJECT).await.unwrap();
    f.js.client().flush().await.unwrap();

    let mut pa = f.partner(a).await;
    let (a_filter, b_filter) = (feed_filter(a), feed_filter(b));
    let (fresh, a_name, b_name) = (Uuid::now_v7().to_string(), a.to_string(), b.to_string());
    let pull = |name: &str, filter: &str| {
        json!({"stream_name": s, "config": {"name": name, "durable_name": name, "filter_subject": filter,
               "deliver_policy": "all", "ack_policy": "explicit"}})
    };
    // A push consumer named A, on A's own feed, delivering into the registry's subject.
    let push_into_registry = json!({"stream_name": s, "config": {"name": a_name, "durable_name": a_name,
        "filter_subject": a_filter, "deliver_subject": REGISTRY_SUBJECT, "deliver_policy": "all",
        "ack_policy": "explicit"}});
    for (subject, body) in [
        // Every create form of that push consumer.
        (format!("$JS.API.CONSUMER.CREATE.{s}.{a}.{a_filter}"), push_into_registry.clone()),
        (format!("$JS.API.CONSUMER.CREATE.{s}.{a}"), push_into_registry.clone()),
        (format!("$JS.API.CONSUMER.CREATE.{s}"), push_into_registry.clone()),
        (format!("$JS.API.CONSUMER.DURABLE.CREATE.{s}.{a}"), push_into_registry.clone()),
        (
            format!("$JS.API.CONSUMER.CREATE.{s}.{fresh}.{a_filter}"),
            json!({"stream_name": s, "config": {"name": fresh, "filter_subject": a_filter,
                   "deliver_subject": REGISTRY_SUBJECT, "ack_policy": "none"}}),
        ),
        // Its own pull consumer exactly as the service creates it (an update), a
        // second one under another name, an ephemeral one from a start sequence.
        (format!("$JS.API.CONSUMER.CREATE.{s}.{a}.{a_filter}"), pull(&a_name, &a_filter)),
        (format!("$JS.API.CONSUMER.CREATE.{s}.{fresh}.{a_filter}"), pull(&fresh, &a_filter)),
        (
            format!("$JS.API.CONSUMER.CREATE.{s}"),
            json!({"stream_name": s, "config": {"filter_subject": a_filter, "deliver_policy": "by_start_sequence",
                   "opt_start_seq": 1, "ack_policy": "explicit"}}),
        ),
        (format!("$JS.API.CONSUMER.DURABLE.CREATE.{s}.{a}"), pull(&a_name, &a_filter)),
        // Filtered on B's feed, on the whole feed, or unfiltered; under A's name or B's.
        (format!("$JS.API.CONSUMER.CREATE.{s}"), json!({"stream_name": s, "config": {"filter_subject": b_filter}})),
        (format!("$JS.API.CONSUMER.CREATE.{s}"), json!({"stream_name": s, "config": {}})),
        (format!("$JS.API.CONSUMER.CREATE.{s}.{a}"), pull(&a_name, &b_filter)),
        (format!("$JS.API.CONSUMER.CREATE.{s}.{a}"), pull(&a_name, "")),
        (format!("$JS.API.CONSUMER.CREATE.{s}.{b}"), pull(&b_name, &b_filter)),
        (format!("$JS.API.CONSUMER.CREATE.{s}.{a}.{b_filter}"), pull(&a_name, &b_filter)),
        (format!("$JS.API.CONSUMER.CREATE.{s}.{b}.{b_filter}"), pull(&b_name, &b_filter)),
        // B's consumer name with A's filter would take over (update) B's consumer.
        (format!("$JS.API.CONSUMER.CREATE.{s}.{b}.{a_filter}"), pull(&b_name, &a_filter)),
        (format!("$JS.API.CONSUMER.CREATE.{s}.{a}.acasa.partner.>"), pull(&a_name, "acasa.partner.>")),
        (format!("$JS.API.CONSUMER.CREATE.{s}.{a}.acasa.partner.*.>"), pull(&a_name, "acasa.partner.*.>")),
        (format!("$JS.API.CONSUMER.CREATE.{s}.{a}.>"), pull(&a_name, ">")),
        (format!("$JS.API.CONSUMER.DURABLE.CREATE.{s}.{a}"), pull(&a_name, &b_filter)),
        (format!("$JS.API.CONSUMER.DURABLE.CREATE.{s}.{b}"), pull(&b_name, &b_filter)),
        // Deleting its own consumer (to create another) or B's.
        (format!("$JS.API.CONSUMER.DELETE.{s}.{a}"), json!({})),
        (format!("$JS.API.CONSUMER.DELETE.{s}.{b}"), json!({})),
    ] {
        pa.publish_refused(&subject, body).await;
    }

    // The same through the client library: each request is refused by the
    // server (no answer ever comes) with the matching violation.
    let stream = pa.refused.get_stream_no_info(s).await.unwrap();
    let err = stream
        .create_consumer(push::Config {
            durable_name: Some(a_name.clone()),
            filter_subject: a_filter.clone(),
            deliver_subject: REGISTRY_SUBJECT.into(),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await;
    assert!(err.is_err());
    pa.expect_violation("Publish", &format!("$JS.API.CONSUMER.CREATE.{s}.{a}.{a_filter}")).await;
    let filtered = |name: Option<&str>, filter: &str| pull::Config {
        durable_name: name.map(str::to_owned),
        filter_subject: filter.into(),
        ack_policy: AckPolicy::Explicit,
        ..Default::default()
    };
    for (config, subject) in [
        (filtered(Some(&a_name), &a_filter), format!("$JS.API.CONSUMER.CREATE.{s}.{a}.{a_filter}")),
        (filtered(Some(&a_name), &b_filter), format!("$JS.API.CONSUMER.CREATE.{s}.{a}.{b_filter}")),
        (filtered(Some(&b_name), &b_filter), format!("$JS.API.CONSUMER.CREATE.{s}.{b}.{b_filter}")),
        (filtered(Some(&a_name), ""), format!("$JS.API.CONSUMER.CREATE.{s}.{a}")),
        (filtered(None, &b_filter), format!("$JS.API.CONSUMER.CREATE.{s}")),
        (
            pull::Config {
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: 1 },
                ..filtered(None, &a_filter)
            },
            format!("$JS.API.CONSUMER.CREATE.{s}"),
        ),
    ] {
        assert!(stream.create_consumer(config).await.is_err());
        pa.expect_violation("Publish", &subject).await;
    }
    for name in [&a_name, &b_name] {
        assert!(stream.delete_consumer(name).await.is_err());
        pa.expect_violation("Publish", &format!("$JS.API.CONSUMER.DELETE.{s}.{name}")).await;
    }

    // The feed's consumers are still exactly the service's two, unchanged: A's
    // and B's pull consumers deliver their own first message; the registry's
    // subject and stream received nothing.
    assert_eq!(f.consumer_names().await, sorted(vec![a_name, b_name]));
    assert_eq!(fetch(&pa.consumer().await, a, 10).await, [payload(a, 1)]);
    let mut pb = f.partner(b).await;
    assert_eq!(fetch(&pb.consumer().await, b, 10).await, [payload(b, 1)]);
    assert!(listener.next().now_or_never().is_none());
    assert_eq!(f.registry_messages().await, 0);
    pa.no_more_errors().await;
    pb.no_more_errors().await;
}

#[tokio::test]
async fn a_partner_can_not_read_or_subscribe_to_another_partners_feed_by_any_route() {
    let f = Feed::start().await;
    let (a, b) = (f.a, f.b);
    let s = FEED_STREAM;
    f.publish(a, 1).await;
    let seq_b1 = f.publish(b, 1).await;
    f.publish(a, 2).await;
    f.publish(b, 2).await;
    // B fetched a message from its consumer and has not acked it yet.
    let pb = f.partner(b).await;
    let b_consumer = pb.consumer().await;
    let mut pending = b_consumer.fetch().max_messages(1).messages().await.unwrap();
    let b_msg = tokio::time::timeout(DEADLINE, pending.next()).await.unwrap().unwrap().unwrap();
    let b_ack = b_msg.reply.clone().unwrap().to_string();
    assert!(b_ack.starts_with(&format!("$JS.ACK.{s}.{b}.")), "{b_ack}");

    let mut pa = f.partner(a).await;
    let (a_filter, b_filter) = (feed_filter(a), feed_filter(b));

    // A may listen on its inboxes, `_INBOX.>`: they are its account's, and B's
    // answers and fetched messages never arrive there.
    let mut inboxes = pa.client.subscribe(format!("{INBOX_PREFIX}.>")).await.unwrap();
    pa.no_more_errors().await;

    // Core subscriptions: B's subjects, any wildcard over the feed, A's own feed
    // subjects (only its consumer delivers), advisories, B's acks, the system
    // account's subjects. Queue groups too.
    let mut spies = Vec::new();
    for subject in [
        b_filter.clone(),
        format!("acasa.partner.{b}.referral.r1"),
        "acasa.partner.>".into(),
        "acasa.partner.*.referral.*".into(),
        "acasa.>".into(),
        ">".into(),
        a_filter.clone(),
        "$JS.EVENT.>".into(),
        "$JS.>".into(),
        format!("$JS.ACK.{s}.{b}.>"),
        "$SYS.>".into(),
    ] {
        spies.push(pa.subscribe_refused(&subject).await);
    }
    let queue = pa.client.queue_subscribe(b_filter.clone(), "q".into()).await.unwrap();
    pa.expect_violation("Subscription", &format!("{b_filter}\" using queue \"q")).await;
    spies.push(queue);

    // B's consumer: fetch from it, read its state, delete, rewind, pause it; list consumers.
    pa.publish_refused(&format!("$JS.API.CONSUMER.MSG.NEXT.{s}.{b}"), json!({"batch": 10, "no_wait": true})).await;
    pa.publish_refused(&format!("$JS.API.CONSUMER.INFO.{s}.{b}"), json!({})).await;
    pa.publish_refused(&format!("$JS.API.CONSUMER.DELETE.{s}.{b}"), json!({})).await;
    pa.publish_refused(&format!("$JS.API.CONSUMER.RESET.{s}.{b}"), json!({"seq": 1})).await;
    pa.publish_refused(&format!("$JS.API.CONSUMER.PAUSE.{s}.{b}"), json!({})).await;
    pa.publish_refused(&format!("$JS.API.CONSUMER.NAMES.{s}"), json!({})).await;
    pa.publish_refused(&format!("$JS.API.CONSUMER.LIST.{s}"), json!({})).await;
    // Acking (or nak-ing for redelivery) B's message.
    pa.publish_refused(&b_ack, json!(null)).await;

    // The stream's messages other than through its consumer: direct get by
    // sequence and by subject, message get, stream info listing every subject,
    // listings, account info; changing or copying the stream.
    for (subject, body) in [
        (format!("$JS.API.DIRECT.GET.{s}"), json!({"seq": seq_b1})),
        (format!("$JS.API.DIRECT.GET.{s}"), json!({"last_by_subj": format!("acasa.partner.{b}.referral.r1")})),
        (format!("$JS.API.DIRECT.GET.{s}.acasa.partner.{b}.referral.r1"), json!(null)),
        (format!("$JS.API.STREAM.MSG.GET.{s}"), json!({"seq": seq_b1})),
        (format!("$JS.API.STREAM.INFO.{s}"), json!({"subjects_filter": ">"})),
        ("$JS.API.STREAM.NAMES".into(), json!({"subject": "acasa.partner.>"})),
        ("$JS.API.STREAM.LIST".into(), json!({})),
        ("$JS.API.INFO".into(), json!({})),
        (format!("$JS.API.STREAM.UPDATE.{s}"), json!({"name": s, "subjects": ["acasa.partner.>"]})),
        (
            "$JS.API.STREAM.CREATE.COPY".into(),
            json!({"name": "COPY", "sources": [{"name": s, "filter_subject": b_filter}]}),
        ),
        (format!("$JS.API.STREAM.PURGE.{s}"), json!({})),
        (format!("$JS.API.STREAM.DELETE.{s}"), json!({})),
        ("$SYS.REQ.ACCOUNT.PING.CONNZ".into(), json!({"subscriptions": true})),
        ("$SYS.REQ.SERVER.PING.CONNZ".into(), json!({"subscriptions": true})),
    ] {
        pa.publish_refused(&subject, body).await;
    }

    // Publishing into the feed (its own subjects or B's), or into the shared inbox space.
    pa.publish_refused(&format!("acasa.partner.{a}.referral.forged"), json!("forged")).await;
    pa.publish_refused(&format!("acasa.partner.{b}.referral.forged"), json!("forged")).await;
    pa.publish_refused("_INBOX.guess.1", json!("forged")).await;

    // The same routes through the client library's API: each request is refused
    // by the server (no answer ever comes) with the matching violation.
    let stream = pa.refused.get_stream_no_info(s).await.unwrap();
    assert!(stream.get_consumer::<pull::Config>(&b.to_string()).await.is_err());
    pa.expect_violation("Publish", &format!("$JS.API.CONSUMER.INFO.{s}.{b}")).await;
    assert!(stream.reset_consumer(&b.to_string(), Some(1)).await.is_err());
    pa.expect_violation("Publish", &format!("$JS.API.CONSUMER.RESET.{s}.{b}")).await;
    assert!(stream.direct_get(seq_b1).await.is_err());
    pa.expect_violation("Publish", &format!("$JS.API.DIRECT.GET.{s}")).await;
    assert!(stream.direct_get_last_for_subject(format!("acasa.partner.{b}.referral.r1")).await.is_err());
    pa.expect_violation("Publish", &format!("$JS.API.DIRECT.GET.{s}.acasa.partner.{b}.referral.r1")).await;
    assert!(stream.get_raw_message(seq_b1).await.is_err());
    pa.expect_violation("Publish", &format!("$JS.API.STREAM.MSG.GET.{s}")).await;
    assert!(stream.info_with_subjects("acasa.partner.>").await.is_err());
    pa.expect_violation("Publish", &format!("$JS.API.STREAM.INFO.{s}")).await;
    assert!(pa.refused.get_stream(s).await.is_err());
    pa.expect_violation("Publish", &format!("$JS.API.STREAM.INFO.{s}")).await;
    assert!(pa.refused.query_account().await.is_err());
    pa.expect_violation("Publish", "$JS.API.INFO").await;
    let forged = pa.refused.publish(format!("acasa.partner.{b}.referral.forged"), "forged".into()).await.unwrap();
    assert!(forged.await.is_err());
    pa.expect_violation("Publish", &format!("acasa.partner.{b}.referral.forged")).await;

    // B's consumer and messages are as B left them: its pending message is
    // still unacked, and B can ack it and fetch the rest.
    b_msg.double_ack().await.unwrap();
    assert_eq!(fetch(&b_consumer, b, 10).await, [payload(b, 2)]);

    // Nothing of B's reached A: after more traffic on both feeds (and B
    // fetching, so its inbox sees messages too), A's own consumer delivers
    // exactly A's messages, and no refused subscription received anything
    // (a delivery to one would have come before A's fetched messages, on the
    // same connection).
    f.publish(b, 3).await;
    assert_eq!(fetch(&b_consumer, b, 10).await, [payload(b, 3)]);
    // A's inboxes got nothing (A sent no request that was answered yet; B's
    // deliveries were routed before A's flush is answered).
    pa.client.flush().await.unwrap();
    assert!(inboxes.next().now_or_never().is_none());
    f.publish(a, 3).await;
    let mine = pa.consumer().await;
    assert_eq!(fetch(&mine, a, 10).await, [payload(a, 1), payload(a, 2), payload(a, 3)]);
    for spy in &mut spies {
        assert!(spy.next().now_or_never().is_none());
    }
    pa.no_more_errors().await;
}

#[tokio::test]
async fn the_reply_subjects_of_a_partners_requests_stay_in_its_own_account() {
    let f = Feed::start().await;
    let (a, b) = (f.a, f.b);
    let s = FEED_STREAM;
    let mut seq_a = Vec::new();
    for n in 1..=3 {
        seq_a.push(f.publish(a, n).await);
    }
    f.publish(b, 1).await;
    let b_subject = |x: &str| format!("acasa.partner.{b}.referral.{x}");
    // In the services' account: listeners on the registry's subjects, on B's
    // feed subjects, and on the inbox subject A will name as a reply.
    let service = f.js.client();
    let mut registry = service.subscribe("acasa.registry.>").await.unwrap();
    let mut b_feed = service.subscribe(format!("acasa.partner.{b}.>")).await.unwrap();
    let mut service_inbox = service.subscribe(format!("{INBOX_PREFIX}.shared.>")).await.unwrap();
    service.flush().await.unwrap();
    let feed_before = f.feed_messages().await;

    let mut pa = f.partner(a).await;
    let info = format!("$JS.API.CONSUMER.INFO.{s}.{a}");
    let next = format!("$JS.API.CONSUMER.MSG.NEXT.{s}.{a}");
    let reset = format!("$JS.API.CONSUMER.RESET.{s}.{a}");

    // An answer goes to the reply subject in A's account: A's listener there
    // gets it, the same subject in the services' account gets nothing.
    let mut own = pa.client.subscribe(format!("{INBOX_PREFIX}.shared.>")).await.unwrap();
    pa.client.publish_with_reply(info.clone(), format!("{INBOX_PREFIX}.shared.1"), bytes::Bytes::new()).await.unwrap();
    let answer = tokio::time::timeout(DEADLINE, own.next()).await.unwrap().unwrap();
    let answer: Value = serde_json::from_slice(&answer.payload).unwrap();
    assert_eq!(answer["type"], json!("io.nats.jetstream.api.v1.consumer_info_response"), "{answer}");
    assert_eq!(answer["name"], json!(a.to_string()), "{answer}");

    // A fetch whose reply subject is the registry's event-log subject: the
    // reply subject is resolved in A's account, where nothing listens on it, so
    // JetStream drops the request as having no interest and delivers nothing
    // (within one account the registry's stream was that interest, and stored
    // the messages). A's next fetch, queued behind it, gets all three.
    let consumer = pa.consumer().await;
    let body = json!({"batch": 3, "no_wait": true}).to_string();
    pa.client.publish_with_reply(next, REGISTRY_SUBJECT, body.into()).await.unwrap();
    assert_eq!(fetch_with(&consumer, a, 3, false).await, [payload(a, 1), payload(a, 2), payload(a, 3)]);
    f.consumer_once(a, "delivering three", |c| c.num_ack_pending == 3).await;
    // An info and a reset replying into B's feed subjects: served (the reset
    // clears what was delivered and not acked), answered into A's account.
    pa.client.publish_with_reply(info, b_subject("x"), bytes::Bytes::new()).await.unwrap();
    pa.client.publish_with_reply(reset, b_subject("y"), json!({}).to_string().into()).await.unwrap();
    f.consumer_once(a, "reset", |c| c.num_ack_pending == 0).await;
    // An ack replying into the registry's subject: served, and its
    // confirmation goes to A's account too.
    let mut batch = consumer.fetch().max_messages(1).messages().await.unwrap();
    let m = tokio::time::timeout(DEADLINE, batch.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(String::from_utf8(m.payload.to_vec()).unwrap(), payload(a, 1));
    let ack = m.reply.clone().unwrap().to_string();
    pa.client.publish_with_reply(ack, REGISTRY_SUBJECT, "+ACK".into()).await.unwrap();
    f.consumer_once(a, "acked", |c| c.ack_floor.stream_sequence == seq_a[0]).await;
    pa.no_more_errors().await;

    // Nothing of it reached the services' account: what the service publishes
    // after it all is the first and only new message of the registry's stream
    // and of B's feed, and of the listeners there.
    f.js.publish("acasa.registry.sentinel", "sentinel".into()).await.unwrap().await.unwrap();
    f.publish(b, 2).await;
    let first = tokio::time::timeout(DEADLINE, registry.next()).await.unwrap().unwrap();
    assert_eq!(first.subject.as_str(), "acasa.registry.sentinel");
    assert_eq!(f.registry_messages().await, 1);
    let first = tokio::time::timeout(DEADLINE, b_feed.next()).await.unwrap().unwrap();
    assert_eq!(first.subject.as_str(), b_subject("r2"));
    assert_eq!(f.feed_messages().await, feed_before + 1);
    service.flush().await.unwrap();
    assert!(service_inbox.next().now_or_never().is_none());
    // B's consumer delivers exactly B's two events; A's goes on after its ack floor.
    let mut pb = f.partner(b).await;
    assert_eq!(fetch(&pb.consumer().await, b, 10).await, [payload(b, 1), payload(b, 2)]);
    assert_eq!(fetch(&consumer, a, 10).await, [payload(a, 2), payload(a, 3)]);
    pa.no_more_errors().await;
    pb.no_more_errors().await;
}

#[tokio::test]
async fn partners_added_or_removed_by_a_reload_gain_or_lose_their_account() {
    let mut f = Feed::start().await;
    let (a, b, c) = (f.a, f.b, Uuid::now_v7());
    f.publish(a, 1).await;
    let mut pa = f.partner(a).await;
    let a_consumer = pa.consumer().await;
    assert_eq!(fetch(&a_consumer, a, 10).await, [payload(a, 1)]);

    // C registers: the feed publisher creates its consumer, then `acasa
    // nats-users` adds its account and the server reloads.
    feed::ensure_partner_consumer(&f.js, c).await.unwrap();
    f.publish(c, 1).await;
    f.reconfigure(&[a, b, c]).await;
    let mut pc = f.partner(c).await;
    assert_eq!(fetch(&pc.consumer().await, c, 10).await, [payload(c, 1)]);
    // A's connection and consumer went on through the reloads.
    f.publish(a, 2).await;
    assert_eq!(fetch(&a_consumer, a, 10).await, [payload(a, 2)]);

    // B's account is removed: B can no longer log in; A and C go on.
    f.reconfigure(&[a, c]).await;
    let err = ConnectOptions::new()
        .user_and_password(nats_users::partner_user(b), nats_users::partner_password(&f.hasher, b))
        .connect(f.nats.url())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ConnectErrorKind::AuthorizationViolation);
    f.publish(a, 3).await;
    f.publish(c, 2).await;
    assert_eq!(fetch(&a_consumer, a, 10).await, [payload(a, 3)]);
    assert_eq!(fetch(&pc.consumer().await, c, 10).await, [payload(c, 2)]);
    pa.no_more_errors().await;
    pc.no_more_errors().await;
    // The services' account kept its streams and consumers.
    assert_eq!(f.consumer_names().await, sorted(vec![a.to_string(), b.to_string(), c.to_string()]));
    assert_eq!(f.registry_messages().await, 0);
}

#[tokio::test]
async fn partner_users_log_in_with_their_own_password_only() {
    let f = Feed::start().await;
    let connect =
        |user: String, password: String| ConnectOptions::new().user_and_password(user, password).connect(f.nats.url());
    let a_user = nats_users::partner_user(f.a);
    let b_password = nats_users::partner_password(&f.hasher, f.b);
    for (user, password) in [
        (a_user.clone(), b_password),
        (a_user.clone(), "wrong".to_owned()),
        (a_user, String::new()),
        (SERVICE_USER.to_owned(), nats_users::partner_password(&f.hasher, f.a)),
        ("partner-unknown".to_owned(), "x".to_owned()),
    ] {
        let err = connect(user.clone(), password).await.unwrap_err();
        assert_eq!(err.kind(), ConnectErrorKind::AuthorizationViolation, "{user}");
    }
    // Without credentials at all.
    let err = async_nats::connect(f.nats.url()).await.unwrap_err();
    assert_eq!(err.kind(), ConnectErrorKind::AuthorizationViolation);
}

#[tokio::test]
async fn the_service_connection_takes_its_credentials_from_the_url() {
    let f = Feed::start().await;
    let port = f.nats.url().rsplit(':').next().unwrap().to_owned();
    let mut config = acasa_runtime::Config::from_lookup(|_| None).unwrap();
    config.nats_url = format!("nats://{SERVICE_USER}:{SERVICE_PASSWORD}@127.0.0.1:{port}");
    let client = acasa::app::nats(&config, "test").await.unwrap();
    // The service user may use the whole JetStream API.
    let info = jetstream::new(client).get_stream(FEED_STREAM).await.unwrap().cached_info().clone();
    assert_eq!(info.config.name, FEED_STREAM);
}

/// The next event of a watched connection that mentions `what`, within the deadline.
async fn expect_event(events: &mut mpsc::UnboundedReceiver<String>, what: &str) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(e)) if e.to_lowercase().contains(what) => return,
            Ok(Some(e)) => seen.push(e),
            Ok(None) | Err(_) => panic!("no event with {what:?} within {DEADLINE:?}; saw {seen:?}"),
        }
    }
}

#[tokio::test]
async fn a_partners_account_is_limited_in_connections_subscriptions_and_payload() {
    let limits = PartnerLimits { max_connections: 2, max_subscriptions: 4, max_payload: 512 };
    let f = Feed::start_limited(limits).await;
    let (a, b) = (f.a, f.b);

    // Connections: two of A's at once, not a third; B's account has its own.
    let (first, _) = f.connect_watched(a).await.unwrap();
    let (second, _) = f.connect_watched(a).await.unwrap();
    let err = f.connect_watched(a).await.unwrap_err();
    assert!(err.to_string().contains("maximum account active connections exceeded"), "{err}");
    let (b_client, _) = f.connect_watched(b).await.unwrap();
    b_client.flush().await.unwrap();
    // One closed, A may connect again (once the server has seen it go).
    first.drain().await.unwrap();
    let (third, mut events) = f.connect_when_free(a).await;
    second.drain().await.unwrap();

    // Subscriptions: four on one connection, not a fifth.
    let mut subs = Vec::new();
    for i in 0..4 {
        subs.push(third.subscribe(format!("{INBOX_PREFIX}.limit.{i}")).await.unwrap());
    }
    third.flush().await.unwrap();
    while let Ok(e) = events.try_recv() {
        assert_eq!(e, "Connected", "four subscriptions are allowed");
    }
    let _fifth = third.subscribe(format!("{INBOX_PREFIX}.limit.4")).await.unwrap();
    let _ = third.flush().await;
    expect_event(&mut events, "maximum subscriptions exceeded").await;
    drop(subs);
    drop(third);

    // Payload: a feed message larger than the limit still reaches A (the limit
    // is on what A publishes), and A's consumer works within the limits.
    let big = "x".repeat(2048);
    f.js.publish(format!("acasa.partner.{a}.referral.big"), big.clone().into()).await.unwrap().await.unwrap();
    let pa = f.partner(a).await;
    let consumer = pa.consumer().await;
    assert_eq!(fetch(&consumer, a, 10).await, [big]);
    pa.client.drain().await.unwrap();
    // A message above the limit, even to a subject A may publish to, closes its connection.
    // (The connections closed above may still count until the server sees them go.)
    let (client, mut events) = f.connect_when_free(a).await;
    let subject = format!("$JS.API.CONSUMER.INFO.{FEED_STREAM}.{a}");
    client.publish(subject.clone(), "y".repeat(513).into()).await.unwrap();
    let _ = client.flush().await;
    expect_event(&mut events, "maximum payload").await;
    // Within it, the same request is answered.
    drop(client);
    let (client, _) = f.connect_when_free(a).await;
    let info = tokio::time::timeout(DEADLINE, client.request(subject, "{}".into())).await.unwrap().unwrap();
    let info: Value = serde_json::from_slice(&info.payload).unwrap();
    assert_eq!(info["name"], json!(a.to_string()), "{info}");
}
