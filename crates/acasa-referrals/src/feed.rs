//! The partner feeds: a projection of the referral events into partner
//! integration events (`acasa.partner.v1.ReferralEvent`), published to the
//! stream `ACASA_PARTNER_FEED` on `acasa.partner.<partner-id>.referral.<referral-id>`
//! with CloudEvents attributes as NATS headers; and the reading side used by
//! the gRPC `SubscribeReferralEvents`.
//!
//! Exactly once: the publisher runs as a checkpointed projection. Every feed
//! message's id (`ce-id`, also its `Nats-Msg-Id`) is derived from its source
//! commit and event index, and carries the source position in a header.
//! Before re-publishing a batch after a failure, a restart or a replay from an
//! older checkpoint, the publisher reads the feed's tail back to the batch's
//! first source position and skips what is already there — so a retry never
//! duplicates, however late it comes, and nothing is skipped that was not
//! stored. Events go out in atomic publishes, each stored whole or not at all,
//! one after the other: a failure never leaves a later event stored before an
//! earlier one.
//!
//! The events carry no personal data (no names, contacts, national ids,
//! person ids): only the referral's need, district, times, status changes and
//! outcome. The shared profile is read over gRPC while consent holds.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use acasa_domain::EventCodec as _;
use acasa_eventstore::StoredCommit;
use acasa_projection::{ApplyError, Projection};
use acasa_proto::{Message as _, partner::v1 as feed, referrals::v1 as pb};
use acasa_runtime::Draining;
use async_nats::{
    HeaderMap,
    jetstream::{
        self,
        consumer::DeliverPolicy,
        stream::{Config, DiscardPolicy, StorageType},
    },
};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::{Stream, StreamExt as _, future::BoxFuture};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    PARTNER_PREFIX, REFERRAL_PREFIX,
    domain::{ReferralEvent, timestamp},
};

/// Header naming the source commit's position in ACASA_REFERRALS.
pub const SOURCE_POSITION: &str = "Acasa-Source-Position";
/// CloudEvents `source` of every feed event.
pub const CE_SOURCE: &str = "/acasa/referrals";
/// Most messages in one atomic publish (the server's default limit is 1,000).
const ATOMIC_BATCH_MAX: usize = 500;
const BATCH_ID: &str = "Nats-Batch-Id";
const BATCH_SEQUENCE: &str = "Nats-Batch-Sequence";
const BATCH_COMMIT: &str = "Nats-Batch-Commit";
/// Most tail messages read back when recovering.
const TAIL_SCAN_MAX: u64 = 100_000;

/// The subject filter of a partner's feed.
pub fn partner_filter(partner: Uuid) -> String {
    format!("acasa.partner.{partner}.>")
}

/// The name of a partner's durable feed consumer: its id.
pub fn consumer_name(partner: Uuid) -> String {
    partner.to_string()
}

/// Creates (idempotently) a partner's durable pull consumer on the feed,
/// named by the partner's id and filtered on its subjects. Partners never
/// create consumers themselves (a consumer's deliver subject is not checked
/// against its creator's permissions); they fetch, acknowledge and reset
/// this one.
pub async fn ensure_partner_consumer(js: &jetstream::Context, partner: Uuid) -> Result<(), String> {
    let stream = js.get_stream_no_info(crate::FEED_STREAM).await.map_err(|e| e.to_string())?;
    let name = consumer_name(partner);
    stream
        .get_or_create_consumer(
            &name,
            jetstream::consumer::pull::Config {
                durable_name: Some(name.clone()),
                description: Some("the partner's feed consumer (created by Acasa)".into()),
                filter_subject: partner_filter(partner),
                deliver_policy: DeliverPolicy::All,
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await
        .map(|_| ())
        .map_err(|e| format!("creating the feed consumer of partner {partner}: {e}"))
}

/// Declares the feed stream (idempotent).
pub async fn declare_stream(js: &jetstream::Context, replicas: usize) -> Result<(), String> {
    let config = Config {
        name: crate::FEED_STREAM.to_owned(),
        description: Some("Acasă partner feeds: referral events per partner (acasa.partner.v1)".into()),
        subjects: vec!["acasa.partner.>".into()],
        storage: StorageType::File,
        num_replicas: replicas,
        duplicate_window: Duration::from_secs(120),
        discard: DiscardPolicy::Old,
        deny_delete: true,
        allow_direct: false,
        // The publisher stores each batch whole or not at all.
        allow_atomic_publish: true,
        ..Default::default()
    };
    match js.get_stream(crate::FEED_STREAM).await {
        Ok(mut stream) => {
            // A stream declared before atomic publishing: turn it on.
            let info = stream.info().await.map_err(|e| format!("reading the feed stream: {e}"))?;
            if info.config.allow_atomic_publish {
                return Ok(());
            }
            let mut updated = info.config.clone();
            updated.allow_atomic_publish = true;
            js.update_stream(updated).await.map(|_| ()).map_err(|e| format!("enabling atomic publish on the feed: {e}"))
        }
        Err(_) => js.create_stream(config).await.map(|_| ()).map_err(|e| format!("declaring the feed stream: {e}")),
    }
}

/// One feed event, ready to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedMessage {
    /// `acasa.partner.<partner>.referral.<referral>`.
    pub subject: String,
    /// CloudEvents `id` (also `Nats-Msg-Id`).
    pub id: String,
    /// CloudEvents `type`.
    pub kind: &'static str,
    /// CloudEvents `time`.
    pub time: DateTime<Utc>,
    /// The referral.
    pub referral: Uuid,
    /// The source commit's position.
    pub source_position: u64,
    /// The event.
    pub event: feed::ReferralEvent,
}

impl FeedMessage {
    /// The NATS headers: CloudEvents attributes, de-duplication id, source position.
    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("ce-specversion", "1.0");
        h.insert("ce-id", self.id.as_str());
        h.insert("ce-type", self.kind);
        h.insert("ce-source", CE_SOURCE);
        h.insert("ce-time", self.time.to_rfc3339_opts(SecondsFormat::Millis, true).as_str());
        h.insert("ce-subject", self.referral.to_string().as_str());
        h.insert("content-type", "application/protobuf");
        h.insert("Nats-Msg-Id", self.id.as_str());
        h.insert(SOURCE_POSITION, self.source_position.to_string().as_str());
        h
    }
}

/// The CloudEvents type of a feed event.
pub fn type_of(kind: &feed::referral_event::Kind) -> &'static str {
    use feed::referral_event::Kind as K;
    match kind {
        K::Received(_) => "acasa.partner.v1.referral.received",
        K::Accepted(_) => "acasa.partner.v1.referral.accepted",
        K::Declined(_) => "acasa.partner.v1.referral.declined",
        K::Progress(_) => "acasa.partner.v1.referral.progress",
        K::Outcome(_) => "acasa.partner.v1.referral.outcome",
        K::Closed(_) => "acasa.partner.v1.referral.closed",
        K::Withdrawn(_) => "acasa.partner.v1.referral.withdrawn",
        K::SlaBreached(_) => "acasa.partner.v1.referral.sla_breached",
    }
}

/// The partner event of a referral event, and whether it is a creation
/// (which names its partner) — pure, for tests.
pub fn translate(event: &ReferralEvent) -> (feed::referral_event::Kind, Option<Uuid>) {
    use feed::referral_event::Kind as K;
    match event {
        ReferralEvent::Created(c) => {
            let referred_by = match c.referrer.as_ref().and_then(|r| r.kind.as_ref()) {
                Some(pb::referrer::Kind::PartnerId(p)) => p.clone(),
                _ => String::new(),
            };
            (
                K::Received(feed::ReferralReceived {
                    need: c.need.clone(),
                    district: c.district.clone(),
                    due_at: c.due_at,
                    referred_by_partner_id: referred_by,
                }),
                Uuid::parse_str(&c.partner_id).ok(),
            )
        }
        ReferralEvent::Accepted(_) => (K::Accepted(feed::ReferralAccepted {}), None),
        ReferralEvent::Declined(d) => (K::Declined(feed::ReferralDeclined { reason: d.reason }), None),
        ReferralEvent::ProgressReported(p) => (K::Progress(feed::ReferralProgress { stage: p.stage }), None),
        ReferralEvent::OutcomeRecorded(o) => (K::Outcome(feed::ReferralOutcome { outcome: o.outcome.clone() }), None),
        ReferralEvent::Closed(_) => (K::Closed(feed::ReferralClosed {}), None),
        ReferralEvent::Withdrawn(w) => {
            (K::Withdrawn(feed::ReferralWithdrawn { reason: w.reason, re_referred: false }), None)
        }
        ReferralEvent::ReReferred(_) => (K::Withdrawn(feed::ReferralWithdrawn { reason: 0, re_referred: true }), None),
        ReferralEvent::SlaBreached(b) => {
            (K::SlaBreached(feed::ReferralSlaBreached { due_at: b.due_at, recorded_at: b.recorded_at }), None)
        }
    }
}

/// Publishes the partner feeds.
#[derive(Debug)]
pub struct FeedProjection {
    js: jetstream::Context,
    /// What this process may have published so far.
    published: Mutex<Published>,
}

/// The publisher's high-water mark. A batch may skip the tail scan only when
/// it starts right after everything this process could have published and no
/// earlier attempt was left half-done. Any other batch — the first after a
/// start, a retry after a failed transaction, a replay after the worker was
/// repositioned to an older checkpoint (e.g. a relaxed commit lost in a
/// Postgres crash) — scans the feed's tail and skips what is already there.
#[derive(Debug, Default)]
struct Published {
    /// The highest source position of any batch this process started publishing.
    through: u64,
    /// A batch's publishing started and did not finish (or nothing is known yet).
    uncertain: bool,
}

impl Published {
    fn unknown() -> Self {
        Self { through: 0, uncertain: true }
    }

    /// Whether a batch `first..=last` must scan, marking it in flight.
    fn begin(&mut self, first: u64, last: u64) -> bool {
        let scan = self.uncertain || first != self.through.saturating_add(1);
        self.through = self.through.max(last);
        self.uncertain = true;
        scan
    }

    fn finish(&mut self) {
        self.uncertain = false;
    }
}

impl FeedProjection {
    /// A publisher over `js` (the feed stream must be declared).
    pub fn new(js: jetstream::Context) -> Self {
        Self { js, published: Mutex::new(Published::unknown()) }
    }

    fn published(&self) -> std::sync::MutexGuard<'_, Published> {
        self.published.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Ids of feed messages already stored from source positions ≥ `from`.
    async fn published_since(&self, from: u64) -> Result<HashSet<String>, ApplyError> {
        let unavailable = |e: &dyn std::fmt::Display| ApplyError::Unavailable(format!("reading the feed's tail: {e}"));
        // Looking the stream up fetches its info: its state is current.
        let stream = self.js.get_stream(crate::FEED_STREAM).await.map_err(|e| unavailable(&e))?;
        let state = &stream.cached_info().state;
        let (first, last) = (state.first_sequence, state.last_sequence);
        let mut ids = HashSet::new();
        let mut seq = last;
        while seq >= first.max(1) && last - seq < TAIL_SCAN_MAX {
            match stream.get_raw_message(seq).await {
                Ok(m) => {
                    // A message without the header is not the publisher's: step over it.
                    let source = m.headers.get(SOURCE_POSITION).and_then(|v| v.as_str().parse::<u64>().ok());
                    match source {
                        Some(source) if source < from => break,
                        Some(_) => {
                            if let Some(id) = m.headers.get("Nats-Msg-Id") {
                                ids.insert(id.as_str().to_owned());
                            }
                        }
                        None => {}
                    }
                }
                Err(e) if e.to_string().contains("no message found") => {}
                Err(e) => return Err(unavailable(&e)),
            }
            seq -= 1;
        }
        Ok(ids)
    }

    async fn messages(
        &self,
        conn: &mut PgConnection,
        commits: &[StoredCommit],
    ) -> Result<Vec<FeedMessage>, ApplyError> {
        let mut routes: HashMap<Uuid, Uuid> = HashMap::new();
        let mut decoded = Vec::new();
        let mut unknown = Vec::new();
        let mut created = Vec::new();
        for c in commits {
            let Some(referral) = c.subject.strip_prefix(REFERRAL_PREFIX).and_then(|s| Uuid::parse_str(s).ok()) else {
                continue;
            };
            for (index, e) in c.events.iter().enumerate() {
                let event = ReferralEvent::decode(e).map_err(|e| ApplyError::Poison(e.to_string()))?;
                let (kind, partner) = translate(&event);
                if let Some(partner) = partner {
                    routes.insert(referral, partner);
                    created.push((referral, partner));
                } else if !routes.contains_key(&referral) {
                    unknown.push(referral);
                }
                decoded.push((c.sequence, c.recorded_at, referral, index, kind));
            }
        }
        if !created.is_empty() {
            let (ids, partners): (Vec<Uuid>, Vec<Uuid>) = created.into_iter().unzip();
            sqlx::query(
                "INSERT INTO referrals.feed_routes (referral_id, partner_id) \
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[]) ON CONFLICT (referral_id) DO NOTHING",
            )
            .bind(&ids)
            .bind(&partners)
            .execute(&mut *conn)
            .await?;
        }
        if !unknown.is_empty() {
            let rows: Vec<(Uuid, Uuid)> =
                sqlx::query_as("SELECT referral_id, partner_id FROM referrals.feed_routes WHERE referral_id = ANY($1)")
                    .bind(&unknown)
                    .fetch_all(&mut *conn)
                    .await?;
            routes.extend(rows);
        }
        let mut out = Vec::with_capacity(decoded.len());
        for (sequence, time, referral, index, kind) in decoded {
            let Some(partner) = routes.get(&referral) else {
                return Err(ApplyError::Poison(format!("referral event at {sequence} without a creation")));
            };
            out.push(FeedMessage {
                subject: format!("acasa.partner.{partner}.referral.{referral}"),
                id: format!("referrals-{sequence}-{index}"),
                kind: type_of(&kind),
                time,
                referral,
                source_position: sequence,
                event: feed::ReferralEvent {
                    referral_id: referral.to_string(),
                    partner_id: partner.to_string(),
                    occurred_at: Some(timestamp(time)),
                    kind: Some(kind),
                },
            });
        }
        Ok(out)
    }

    /// Publishes what is not in `skip`, in order, as atomic batches of at most
    /// [`ATOMIC_BATCH_MAX`]: each batch is stored whole or not at all, and the
    /// next is sent only after the previous one's commit was acknowledged, so
    /// a failure can never leave a later event stored before an earlier one.
    async fn publish(&self, messages: Vec<FeedMessage>, skip: &HashSet<String>) -> Result<(), ApplyError> {
        let unavailable = |e: &dyn std::fmt::Display| ApplyError::Unavailable(format!("publishing the feed: {e}"));
        let todo: Vec<FeedMessage> = messages.into_iter().filter(|m| !skip.contains(&m.id)).collect();
        let client = self.js.client();
        for chunk in todo.chunks(ATOMIC_BATCH_MAX) {
            let Some((commit, staged)) = chunk.split_last() else { continue };
            // Unique per attempt (a retry must not join a stale batch); ≤ 64 characters.
            let batch_id = Uuid::now_v7().simple().to_string();
            let mut sequence = 0_u64;
            let mut batch_headers = |m: &FeedMessage| {
                sequence += 1;
                let mut h = m.headers();
                h.insert(BATCH_ID, batch_id.as_str());
                h.insert(BATCH_SEQUENCE, sequence.to_string().as_str());
                h
            };
            for m in staged {
                let headers = batch_headers(m);
                client
                    .publish_with_headers(m.subject.clone(), headers, m.event.encode_to_vec().into())
                    .await
                    .map_err(|e| unavailable(&e))?;
            }
            let mut headers = batch_headers(commit);
            headers.insert(BATCH_COMMIT, "1");
            self.js
                .publish_with_headers(commit.subject.clone(), headers, commit.event.encode_to_vec().into())
                .await
                .map_err(|e| unavailable(&e))?
                .await
                .map_err(|e| unavailable(&e))?;
        }
        Ok(())
    }
}

impl Projection for FeedProjection {
    fn name(&self) -> &str {
        crate::FEED_PROJECTION
    }

    fn reset<'c>(&'c self, _conn: &'c mut PgConnection) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        // The feed is never rebuilt: partners hold positions in it. Its
        // routes stay (they are facts of the log).
        Box::pin(async { Ok(()) })
    }

    fn apply<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        commits: &'c [StoredCommit],
    ) -> BoxFuture<'c, Result<(), ApplyError>> {
        Box::pin(async move {
            let (Some(first), Some(last)) = (commits.first(), commits.last()) else { return Ok(()) };
            for c in commits {
                if let Some(partner) = c.subject.strip_prefix(PARTNER_PREFIX).and_then(|s| Uuid::parse_str(s).ok())
                    && c.events.iter().any(|e| e.type_name == crate::codec::names::PARTNER_REGISTERED)
                {
                    ensure_partner_consumer(&self.js, partner).await.map_err(ApplyError::Unavailable)?;
                }
            }
            let messages = self.messages(conn, commits).await?;
            let scan = self.published().begin(first.sequence, last.sequence);
            let skip = if scan { self.published_since(first.sequence).await? } else { HashSet::new() };
            self.publish(messages, &skip).await?;
            self.published().finish();
            Ok(())
        })
    }
}

/// One event read from a partner's feed.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedItem {
    /// Its position (stream sequence).
    pub position: u64,
    /// CloudEvents `id`.
    pub id: String,
    /// CloudEvents `type`.
    pub kind: String,
    /// CloudEvents `time`.
    pub time: Option<DateTime<Utc>>,
    /// The event.
    pub event: feed::ReferralEvent,
}

/// A partner's feed from the first event after `after`, then live, through an
/// ordered consumer filtered on the partner's subjects only. The consumer is
/// deleted as soon as the returned stream is dropped (the client went away,
/// the call ended, the server stops): left to itself, an ordered consumer
/// lingers for its inactive threshold (30 s in async-nats), and a client
/// opening and closing streams would pile them up.
pub async fn subscribe(
    js: &jetstream::Context,
    partner: Uuid,
    after: u64,
) -> Result<impl Stream<Item = Result<FeedItem, String>> + use<>, String> {
    let stream = js.get_stream_no_info(crate::FEED_STREAM).await.map_err(|e| e.to_string())?;
    let deliver_policy = if after == 0 {
        DeliverPolicy::All
    } else {
        DeliverPolicy::ByStartSequence { start_sequence: after.saturating_add(1) }
    };
    // Named, so that it can be deleted; a recreated one is `<name>_<n>`, and
    // the name of the current one arrives with each message.
    let name = format!("feed-grpc-{}", Uuid::now_v7().simple());
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            name: Some(name.clone()),
            filter_subject: partner_filter(partner),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut cleanup = ConsumerCleanup { js: js.clone(), first: name.clone(), current: name };
    let messages = consumer.messages().await.map_err(|e| e.to_string())?;
    Ok(messages.map(move |m| {
        let m = m.map_err(|e| e.to_string())?;
        let info = m.info().map_err(|e| e.to_string())?;
        cleanup.seen(info.consumer);
        let position = info.stream_sequence;
        let header = |name: &str| m.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.as_str().to_owned());
        let event = feed::ReferralEvent::decode(m.payload.as_ref()).map_err(|e| e.to_string())?;
        Ok(FeedItem {
            position,
            id: header("ce-id").unwrap_or_default(),
            kind: header("ce-type").unwrap_or_default(),
            time: header("ce-time").and_then(|t| DateTime::parse_from_rfc3339(&t).ok()).map(|t| t.with_timezone(&Utc)),
            event,
        })
    }))
}

/// Deletes a gRPC feed stream's ordered consumer when the stream is dropped.
struct ConsumerCleanup {
    js: jetstream::Context,
    first: String,
    current: String,
}

impl ConsumerCleanup {
    fn seen(&mut self, consumer: &str) {
        if consumer != self.current {
            consumer.clone_into(&mut self.current);
        }
    }
}

impl Drop for ConsumerCleanup {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let js = self.js.clone();
        let mut names = vec![std::mem::take(&mut self.current)];
        if names[0] != self.first {
            names.push(std::mem::take(&mut self.first));
        }
        runtime.spawn(async move {
            for name in names {
                if let Err(e) = js.delete_consumer_from_stream(&name, crate::FEED_STREAM).await {
                    tracing::debug!(consumer = %name, error = %e, "deleting a closed feed stream's consumer");
                }
            }
        });
    }
}

/// Limits of the gRPC feed streams (`SubscribeReferralEvents`) of one server process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    /// Open streams per partner (`ACASA_FEED_STREAMS_PER_PARTNER`).
    pub per_partner: usize,
    /// Open streams per client connection (`ACASA_FEED_STREAMS_PER_CONNECTION`).
    pub per_connection: usize,
    /// How often the open streams' partners are checked for a suspension.
    pub suspension_check: Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self { per_partner: 4, per_connection: 8, suspension_check: Duration::from_secs(2) }
    }
}

impl StreamLimits {
    /// The limits `config` sets.
    pub fn from_config(config: &acasa_runtime::Config) -> Self {
        Self {
            per_partner: config.feed_streams_per_partner,
            per_connection: config.feed_streams_per_connection,
            ..Self::default()
        }
    }
}

/// Why a feed stream was not opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    /// The partner has as many streams open as it may.
    #[error("this partner already has {0} feed streams open, the most it may; close one first")]
    Partner(usize),
    /// The connection has as many streams open as it may.
    #[error("this connection already has {0} feed streams open, the most it may; close one first")]
    Connection(usize),
}

/// Why a feed stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEnd {
    /// The server is stopping: resume (elsewhere) after `resume_after`.
    Draining {
        /// The position of the last event sent (or the requested one).
        resume_after: u64,
    },
    /// The partner was suspended.
    Suspended,
    /// Reading the feed failed: resume after `resume_after`.
    Interrupted {
        /// What failed.
        reason: String,
        /// The position of the last event sent (or the requested one).
        resume_after: u64,
    },
}

#[derive(Debug, Default)]
struct Open {
    partners: HashMap<Uuid, usize>,
    connections: HashMap<std::net::SocketAddr, usize>,
}

#[derive(Debug)]
struct Streams {
    limits: StreamLimits,
    open: Mutex<Open>,
    /// The last check of the partners with open streams.
    suspended: tokio::sync::watch::Sender<Arc<Checked>>,
    draining: Draining,
}

/// Which partners with open streams were suspended, by a check started `at`.
#[derive(Debug)]
struct Checked {
    at: tokio::time::Instant,
    suspended: HashSet<Uuid>,
}

impl Streams {
    fn open(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The open gRPC feed streams of one server process: at most
/// [`StreamLimits::per_partner`] per partner and [`StreamLimits::per_connection`]
/// per client connection (each held by a [`StreamSlot`], released when the
/// stream ends by any path); a stream ends when its partner is suspended, and
/// when the server drains.
#[derive(Clone, Debug)]
pub struct FeedStreams {
    inner: Arc<Streams>,
}

/// One open feed stream's place in the limits; released on drop.
#[derive(Debug)]
pub struct StreamSlot {
    streams: Arc<Streams>,
    partner: Uuid,
    connection: Option<std::net::SocketAddr>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.open();
        if let Some(n) = open.partners.get_mut(&self.partner) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.partners.remove(&self.partner);
            }
        }
        if let Some(c) = self.connection
            && let Some(n) = open.connections.get_mut(&c)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.connections.remove(&c);
            }
        }
    }
}

impl FeedStreams {
    /// The streams of a server reading partners' suspensions from `pool`
    /// (`referrals.partners`), ending when `draining` starts. Starts the
    /// suspension check (every [`StreamLimits::suspension_check`], one query
    /// for all partners with open streams; it ends with the last handle).
    pub fn new(limits: StreamLimits, pool: PgPool, draining: Draining) -> Self {
        let none = Checked { at: tokio::time::Instant::now(), suspended: HashSet::new() };
        let (suspended, _) = tokio::sync::watch::channel(Arc::new(none));
        let inner = Arc::new(Streams { limits, open: Mutex::new(Open::default()), suspended, draining });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(check_suspensions(Arc::downgrade(&inner), pool));
        }
        Self { inner }
    }

    /// The limits.
    pub fn limits(&self) -> StreamLimits {
        self.inner.limits
    }

    /// Whether `partner` is suspended, by the read model (unknown: no).
    pub async fn is_suspended(pool: &PgPool, partner: Uuid) -> Result<bool, sqlx::Error> {
        let row: Option<(bool,)> = sqlx::query_as("SELECT suspended FROM referrals.partners WHERE partner_id = $1")
            .bind(partner)
            .fetch_optional(pool)
            .await?;
        Ok(row.is_some_and(|(s,)| s))
    }

    /// A place for one more stream of `partner` on `connection`, or why not.
    pub fn acquire(&self, partner: Uuid, connection: Option<std::net::SocketAddr>) -> Result<StreamSlot, Refused> {
        let limits = self.inner.limits;
        let mut open = self.inner.open();
        if open.partners.get(&partner).copied().unwrap_or(0) >= limits.per_partner {
            return Err(Refused::Partner(limits.per_partner));
        }
        if let Some(c) = connection
            && open.connections.get(&c).copied().unwrap_or(0) >= limits.per_connection
        {
            return Err(Refused::Connection(limits.per_connection));
        }
        *open.partners.entry(partner).or_default() += 1;
        if let Some(c) = connection {
            *open.connections.entry(c).or_default() += 1;
        }
        Ok(StreamSlot { streams: Arc::clone(&self.inner), partner, connection })
    }

    /// `partner`'s feed after `after` (see [`subscribe`]) holding `slot`:
    /// it ends with [`FeedEnd::Suspended`] once the partner is found
    /// suspended, with [`FeedEnd::Draining`] when the server stops, with
    /// [`FeedEnd::Interrupted`] when reading fails; the slot and the consumer
    /// are released when it is dropped.
    pub async fn open(
        &self,
        js: &jetstream::Context,
        slot: StreamSlot,
        after: u64,
    ) -> Result<impl Stream<Item = Result<FeedItem, FeedEnd>> + use<>, String> {
        let items = subscribe(js, slot.partner, after).await?;
        let state = Open1 {
            items: Box::pin(items),
            suspended: self.inner.suspended.subscribe(),
            opened: tokio::time::Instant::now(),
            draining: self.inner.draining.clone(),
            last: after,
            done: false,
            slot,
        };
        Ok(futures::stream::unfold(state, next_event))
    }
}

/// An open stream's state.
struct Open1 {
    items: std::pin::Pin<Box<dyn Stream<Item = Result<FeedItem, String>> + Send>>,
    suspended: tokio::sync::watch::Receiver<Arc<Checked>>,
    opened: tokio::time::Instant,
    draining: Draining,
    last: u64,
    done: bool,
    slot: StreamSlot,
}

async fn next_event(mut s: Open1) -> Option<(Result<FeedItem, FeedEnd>, Open1)> {
    if s.done {
        return None;
    }
    let partner = s.slot.partner;
    let end = tokio::select! {
        biased;
        () = s.draining.started() => FeedEnd::Draining { resume_after: s.last },
        () = suspension_of(&mut s.suspended, partner, s.opened) => FeedEnd::Suspended,
        item = s.items.next() => match item {
            Some(Ok(item)) => {
                s.last = item.position;
                return Some((Ok(item), s));
            }
            Some(Err(reason)) => FeedEnd::Interrupted { reason, resume_after: s.last },
            None => return None,
        },
    };
    s.done = true;
    Some((Err(end), s))
}

/// Resolves once a check started after `opened` finds `partner` suspended
/// (an older one may predate a reactivation the stream was opened after).
async fn suspension_of(
    rx: &mut tokio::sync::watch::Receiver<Arc<Checked>>,
    partner: Uuid,
    opened: tokio::time::Instant,
) {
    if rx.wait_for(|c| c.at > opened && c.suspended.contains(&partner)).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Every `suspension_check`, which partners with open streams are suspended
/// (one query for all of them), until the streams' owner is gone.
async fn check_suspensions(streams: std::sync::Weak<Streams>, pool: PgPool) {
    let Some(interval) = streams.upgrade().map(|s| s.limits.suspension_check) else { return };
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(s) = streams.upgrade() else { return };
        let partners: Vec<Uuid> = s.open().partners.keys().copied().collect();
        if partners.is_empty() {
            continue;
        }
        let at = tokio::time::Instant::now();
        let found: Result<Vec<(Uuid,)>, _> =
            sqlx::query_as("SELECT partner_id FROM referrals.partners WHERE suspended AND partner_id = ANY($1)")
                .bind(&partners)
                .fetch_all(&pool)
                .await;
        match found {
            Ok(rows) => {
                let suspended: HashSet<Uuid> = rows.into_iter().map(|(p,)| p).collect();
                s.suspended.send_replace(Arc::new(Checked { at, suspended }));
            }
            Err(e) => tracing::debug!(error = %e, "checking the feed streams' partners for suspensions"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Actor, NewReferral, PartnerFact, PersonFact, Referral, ReferralCommand};
    use acasa_domain::Aggregate as _;

    #[test]
    fn the_feed_carries_no_personal_data_and_names_the_referring_partner() {
        let partner = Uuid::now_v7();
        let mut state = crate::domain::Partner {
            registered: true,
            services: vec![crate::domain::ServiceKind::Loan],
            response_time: Duration::from_secs(60),
            ..Default::default()
        };
        state.kind = crate::domain::PartnerKind::Bank;
        let by = Uuid::now_v7();
        let person = Uuid::now_v7();
        let new = NewReferral {
            person_id: person,
            partner: PartnerFact { id: partner, state },
            person: PersonFact::Active { consent: true },
            need: feed::Need { service: crate::domain::ServiceKind::Loan.into(), requested_amount: None },
            district: "Cahul".into(),
            referrer: Actor::Partner(by),
            sealed_profile: b"sealed-bytes-Maria".to_vec(),
            re_referred_from: None,
        };
        let events = Referral::default().decide(&ReferralCommand::Create(Box::new(new), Utc::now())).unwrap();
        let (kind, routed) = translate(&events[0]);
        assert_eq!(routed, Some(partner));
        let feed::referral_event::Kind::Received(r) = &kind else { panic!("not received") };
        assert_eq!(r.referred_by_partner_id, by.to_string());
        let bytes = feed::ReferralEvent { kind: Some(kind), ..Default::default() }.encode_to_vec();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&person.to_string()));
        assert!(!text.contains("Maria"));
    }

    #[test]
    fn cloud_events_headers_are_complete() {
        let m = FeedMessage {
            subject: "acasa.partner.p.referral.r".into(),
            id: "referrals-7-0".into(),
            kind: "acasa.partner.v1.referral.accepted",
            time: DateTime::from_timestamp(1_800_000_000, 5_000_000).unwrap(),
            referral: Uuid::nil(),
            source_position: 7,
            event: feed::ReferralEvent::default(),
        };
        let h = m.headers();
        for (name, want) in [
            ("ce-specversion", "1.0"),
            ("ce-id", "referrals-7-0"),
            ("ce-type", "acasa.partner.v1.referral.accepted"),
            ("ce-source", CE_SOURCE),
            ("ce-time", "2027-01-15T08:00:00.005Z"),
            ("Nats-Msg-Id", "referrals-7-0"),
            (SOURCE_POSITION, "7"),
        ] {
            assert_eq!(h.get(name).map(|v| v.as_str()), Some(want), "{name}");
        }
    }

    #[test]
    fn only_a_batch_right_after_everything_published_skips_the_tail_scan() {
        let mut p = Published::unknown();
        assert!(p.begin(1, 10), "the first batch after a start scans");
        p.finish();
        assert!(!p.begin(11, 20), "the next batch in order does not");
        p.finish();
        // The batch's transaction failed (or its relaxed commit was lost): the
        // worker replays from its checkpoint.
        assert!(p.begin(11, 15), "a replayed batch scans");
        p.finish();
        assert!(p.begin(16, 25), "so does one overlapping what an earlier attempt published");
        p.finish();
        assert!(!p.begin(26, 30));
        // Publishing 26..=30 failed half-way: whatever batch comes next scans.
        assert!(p.begin(31, 32));
        p.finish();
        assert!(!p.begin(33, 33));
    }

    #[tokio::test]
    async fn stream_slots_are_capped_per_partner_and_per_connection_and_freed_on_drop() {
        let pool = sqlx::postgres::PgPoolOptions::new().connect_lazy("postgres://nobody@127.0.0.1:1/none").unwrap();
        let limits = StreamLimits { per_partner: 2, per_connection: 3, suspension_check: Duration::from_secs(3600) };
        let streams = FeedStreams::new(limits, pool, Draining::never());
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let (c1, c2): (std::net::SocketAddr, std::net::SocketAddr) =
            ("127.0.0.1:1000".parse().unwrap(), "127.0.0.1:1001".parse().unwrap());
        let a1 = streams.acquire(a, Some(c1)).unwrap();
        let _a2 = streams.acquire(a, Some(c2)).unwrap();
        assert_eq!(streams.acquire(a, Some(c2)).unwrap_err(), Refused::Partner(2));
        let _b1 = streams.acquire(b, Some(c1)).unwrap();
        let _b2 = streams.acquire(b, Some(c1)).unwrap();
        // c1 carries a1, b1, b2: full, whichever partner asks.
        assert_eq!(streams.acquire(Uuid::now_v7(), Some(c1)).unwrap_err(), Refused::Connection(3));
        drop(a1);
        // Both of a1's places are free again.
        let _a3 = streams.acquire(a, Some(c1)).unwrap();
        assert_eq!(streams.acquire(a, None).unwrap_err(), Refused::Partner(2));
        assert!(streams.inner.open().connections.get(&c2) == Some(&1));
    }
}
