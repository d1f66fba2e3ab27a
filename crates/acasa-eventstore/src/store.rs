//! The stream of one service: declaration, appends and aggregate loads.

use std::time::Duration;

use async_nats::{
    HeaderMap, StatusCode,
    jetstream::{
        self,
        context::PublishErrorKind,
        stream::{Config, DiscardPolicy, StorageType},
    },
};
use futures::StreamExt as _;
use tracing::Instrument as _;

use acasa_proto::{
    Message as _,
    eventstore::v1::{ClaimRecord, RequestRecord},
};

use crate::{
    commit::{NewCommit, StoredCommit},
    error::{AppendError, StoreError},
    keys::KeyedHasher,
    trace,
    writer::{Transaction, Writer, WriterLimits},
};

/// How a service's stream is declared.
#[derive(Clone, Debug)]
pub struct StreamSettings {
    /// The service name (`registry`, `demo`, …): stream `ACASA_<SERVICE>`,
    /// subjects `acasa.<service>.>`.
    pub service: String,
    /// Replicas: 1 on a single node, 3 in a cluster.
    pub replicas: usize,
    /// JetStream's de-duplication window for `Nats-Msg-Id`.
    pub duplicate_window: Duration,
    /// Keys the hashes in claim and request subjects.
    pub hasher: KeyedHasher,
    /// The group writer's limits.
    pub writer: WriterLimits,
}

impl StreamSettings {
    /// Settings for `service` with one replica and a two-minute window.
    pub fn new(service: &str, hasher: KeyedHasher) -> Self {
        Self {
            service: service.to_owned(),
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            hasher,
            writer: WriterLimits::default(),
        }
    }

    /// The stream's name.
    pub fn stream_name(&self) -> String {
        stream_name_of(&self.service)
    }
}

/// The name of `service`'s stream.
pub fn stream_name_of(service: &str) -> String {
    format!("ACASA_{}", service.to_ascii_uppercase())
}

/// An acknowledged append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The commit's stream sequence.
    pub sequence: u64,
    /// The server recognised the `Nats-Msg-Id` as a duplicate: nothing new was
    /// stored and `sequence` is the original's.
    pub duplicate: bool,
}

/// One service's event log.
#[derive(Clone, Debug)]
pub struct EventStore {
    client: async_nats::Client,
    js: jetstream::Context,
    settings: StreamSettings,
    stream: String,
    writer: Writer,
}

/// The last message of a claim subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimState {
    /// Its stream sequence (0: the value was never claimed).
    pub sequence: u64,
    /// The aggregate that holds the value, if any.
    pub holder: Option<String>,
}

/// A request record read back, with its stream sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRequest {
    /// Its stream sequence.
    pub sequence: u64,
    /// The record.
    pub record: RequestRecord,
}

/// Commits fetched per direct-get batch request.
const LOAD_BATCH: usize = 256;

impl EventStore {
    /// Declares the service's stream (idempotently: created if missing,
    /// updated if its mutable settings differ) and returns the store.
    pub async fn open(client: async_nats::Client, settings: StreamSettings) -> Result<Self, StoreError> {
        let js = jetstream::new(client.clone());
        let stream = settings.stream_name();
        let config = Config {
            name: stream.clone(),
            description: Some(format!("Acasă {} event log (system of record)", settings.service)),
            subjects: vec![format!("acasa.{}.>", settings.service)],
            storage: StorageType::File,
            num_replicas: settings.replicas,
            duplicate_window: settings.duplicate_window,
            discard: DiscardPolicy::New,
            deny_delete: true,
            deny_purge: true,
            allow_direct: true,
            allow_atomic_publish: true,
            ..Default::default()
        };
        match js.get_stream(&stream).await {
            Ok(mut existing) => {
                let info = existing.info().await.map_err(StoreError::nats)?;
                let c = &info.config;
                if c.subjects != config.subjects
                    || c.duplicate_window != config.duplicate_window
                    || c.num_replicas != config.num_replicas
                    || !c.allow_direct
                    || !c.deny_delete
                    || !c.deny_purge
                    || !c.allow_atomic_publish
                {
                    js.update_stream(config).await.map_err(StoreError::nats)?;
                }
            }
            Err(_) => {
                js.create_stream(config).await.map_err(StoreError::nats)?;
            }
        }
        let writer = Writer::start(client.clone(), js.clone(), settings.writer);
        Ok(Self { client, js, settings, stream, writer })
    }

    /// The service this store belongs to.
    pub fn service(&self) -> &str {
        &self.settings.service
    }

    /// The stream's name.
    pub fn stream_name(&self) -> &str {
        &self.stream
    }

    /// The JetStream context.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// The NATS client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The subject of an aggregate.
    pub fn subject(&self, kind: &str, id: &str) -> String {
        format!("acasa.{}.{}.{}", self.settings.service, kind, id)
    }

    /// The keyed hasher of this store's claims and request keys.
    pub fn hasher(&self) -> &KeyedHasher {
        &self.settings.hasher
    }

    /// The subjects that hold commits, for projection consumers: four tokens
    /// (`acasa.<service>.<kind>.<id>`); claims and request records have five.
    pub fn commit_filter(&self) -> String {
        format!("acasa.{}.*.*", self.settings.service)
    }

    /// The subject of a claim of `value` of `kind`.
    pub fn claim_subject(&self, kind: &str, value: &str) -> String {
        format!("acasa.{}.claim.{kind}.{}", self.settings.service, self.settings.hasher.hash(kind, value))
    }

    /// The subject of the request record with `key` (see [`KeyedHasher::request_key`]).
    pub fn request_subject(&self, key: &str) -> String {
        format!("acasa.{}.request.{key}", self.settings.service)
    }

    /// Stores a transaction atomically through the group writer; answers the
    /// stream sequence of its first message.
    pub(crate) async fn submit(&self, tx: Transaction) -> Result<u64, AppendError> {
        let span = tracing::info_span!("eventstore.submit", stream = %self.stream, messages = tx.messages.len());
        self.writer.submit(tx).instrument(span).await
    }

    /// The last message on `subject`, if any: from any replica, or (`leader`)
    /// from the stream's leader, which is never behind.
    pub async fn last_on(&self, subject: &str, leader: bool) -> Result<Option<(u64, bytes::Bytes)>, StoreError> {
        let stream = self.js.get_stream_no_info(&self.stream).await.map_err(StoreError::nats)?;
        if leader {
            use async_nats::jetstream::stream::LastRawMessageErrorKind as K;
            return match stream.get_last_raw_message_by_subject(subject).await {
                Ok(m) => Ok(Some((m.sequence, m.payload))),
                Err(e) if e.kind() == K::NoMessageFound => Ok(None),
                Err(e) => Err(StoreError::nats(e)),
            };
        }
        use async_nats::jetstream::stream::DirectGetErrorKind as K;
        match stream.direct_get_last_for_subject(subject).await {
            Ok(m) => Ok(Some((m.sequence, m.payload))),
            Err(e) if e.kind() == K::NotFound => Ok(None),
            Err(e) => Err(StoreError::nats(e)),
        }
    }

    /// Who holds `value` of `kind` now.
    pub async fn claim(&self, kind: &str, value: &str, leader: bool) -> Result<ClaimState, StoreError> {
        let subject = self.claim_subject(kind, value);
        Ok(match self.last_on(&subject, leader).await? {
            None => ClaimState { sequence: 0, holder: None },
            Some((sequence, payload)) => {
                let record = ClaimRecord::decode(payload)
                    .map_err(|e| StoreError::Corrupt { sequence, reason: format!("claim record: {e}") })?;
                ClaimState { sequence, holder: (!record.released).then_some(record.owner) }
            }
        })
    }

    /// The record of the request with `key`, if it was recorded.
    pub async fn request(&self, key: &str, leader: bool) -> Result<Option<StoredRequest>, StoreError> {
        let Some((sequence, payload)) = self.last_on(&self.request_subject(key), leader).await? else {
            return Ok(None);
        };
        let record = RequestRecord::decode(payload)
            .map_err(|e| StoreError::Corrupt { sequence, reason: format!("request record: {e}") })?;
        Ok(Some(StoredRequest { sequence, record }))
    }

    /// Appends one commit to `subject` if the subject's last stream sequence is
    /// still `expected` (0: the subject must be empty).
    pub async fn append(&self, subject: &str, expected: u64, commit: &NewCommit) -> Result<Appended, AppendError> {
        let span = tracing::info_span!("eventstore.append", stream = %self.stream, expected);
        async {
            let mut headers: HeaderMap = commit.headers();
            headers.insert("Nats-Expected-Last-Subject-Sequence", expected.to_string().as_str());
            headers.insert("Nats-Msg-Id", msg_id(subject, &commit.request_key).as_str());
            trace::inject(&mut headers);
            let ack = self
                .js
                .publish_with_headers(subject.to_owned(), headers, commit.encode().into())
                .await
                .map_err(|e| AppendError::Unknown(e.to_string()))?;
            match ack.await {
                Ok(ack) => Ok(Appended { sequence: ack.sequence, duplicate: ack.duplicate }),
                Err(e) => match e.kind() {
                    PublishErrorKind::WrongLastSequence => Err(AppendError::Conflict { expected }),
                    PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe => {
                        Err(AppendError::Unknown(e.to_string()))
                    }
                    PublishErrorKind::Other if e.to_string().contains("10071") => {
                        Err(AppendError::Conflict { expected })
                    }
                    _ => Err(AppendError::Store(StoreError::nats(e))),
                },
            }
        }
        .instrument(span)
        .await
    }

    /// Loads every commit of `subject` after stream sequence `after`, in order,
    /// with batched direct gets (one round trip per 256 commits).
    pub async fn load(&self, subject: &str, after: u64) -> Result<Vec<StoredCommit>, StoreError> {
        let mut out = Vec::new();
        let mut next = after + 1;
        loop {
            let (batch, more) = self.load_batch(subject, next).await?;
            if let Some(last) = batch.last() {
                next = last.sequence + 1;
            }
            let empty = batch.is_empty();
            out.extend(batch);
            if !more || empty {
                return Ok(out);
            }
        }
    }

    /// Reads the commit at stream sequence `sequence`.
    pub async fn get(&self, sequence: u64) -> Result<StoredCommit, StoreError> {
        let stream = self.js.get_stream_no_info(&self.stream).await.map_err(StoreError::nats)?;
        let msg = stream.direct_get(sequence).await.map_err(StoreError::nats)?;
        StoredCommit::decode(sequence, msg.subject.as_str(), &msg.payload)
    }

    /// Imports the uniqueness reservations of earlier versions (the KV bucket
    /// `acasa-<service>-reservations`) as claims, then deletes the bucket.
    /// `kinds` pairs each claim kind with the aggregate kind that holds it;
    /// a reservation is imported only if its holder has commits (one left
    /// by a crash before the holder's commit is dropped), and request-id
    /// reservations are not (their scope was not the caller's). Idempotent:
    /// a claim already in the stream stays as it is. Answers how many it imported.
    pub async fn import_reservations(&self, kinds: &[(&str, &str)]) -> Result<usize, StoreError> {
        let bucket = format!("acasa-{}-reservations", self.settings.service);
        let Ok(kv) = self.js.get_key_value(&bucket).await else { return Ok(0) };
        let mut keys = kv.keys().await.map_err(StoreError::nats)?;
        let mut imported = 0;
        while let Some(key) = keys.next().await {
            let key = key.map_err(StoreError::nats)?;
            let Some((kind, hash)) = key.split_once('.') else { continue };
            let Some((_, aggregate)) = kinds.iter().find(|(k, _)| *k == kind) else { continue };
            let Some(owner) = kv.get(&key).await.map_err(StoreError::nats)? else { continue };
            let owner = String::from_utf8_lossy(&owner).into_owned();
            if self.last_on(&self.subject(aggregate, &owner), true).await?.is_none() {
                continue;
            }
            let subject = format!("acasa.{}.claim.{kind}.{hash}", self.settings.service);
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Expected-Last-Subject-Sequence", "0");
            let record = ClaimRecord { owner, released: false };
            let ack = self
                .js
                .publish_with_headers(subject, headers, record.encode_to_vec().into())
                .await
                .map_err(StoreError::nats)?;
            match ack.await {
                Ok(_) => imported += 1,
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {}
                Err(e) => return Err(StoreError::nats(e)),
            }
        }
        self.js.delete_key_value(&bucket).await.map_err(StoreError::nats)?;
        tracing::info!(stream = %self.stream, imported, "reservations of an earlier version imported as claims");
        Ok(imported)
    }

    /// The subject and bytes of the message at `sequence`, whatever it holds
    /// (a commit, a claim or a request record).
    pub async fn get_raw(&self, sequence: u64) -> Result<(String, bytes::Bytes), StoreError> {
        let stream = self.js.get_stream_no_info(&self.stream).await.map_err(StoreError::nats)?;
        let msg = stream.direct_get(sequence).await.map_err(StoreError::nats)?;
        Ok((msg.subject.to_string(), msg.payload))
    }

    /// Whether `subject` holds commits (`acasa.<service>.<kind>.<id>`) rather
    /// than claims or request records.
    pub fn is_commit_subject(subject: &str) -> bool {
        subject.split('.').count() == 4
    }

    /// The last sequence of the stream (0 when empty).
    pub async fn last_sequence(&self) -> Result<u64, StoreError> {
        let mut stream = self.js.get_stream(&self.stream).await.map_err(StoreError::nats)?;
        let info = stream.info().await.map_err(StoreError::nats)?;
        Ok(info.state.last_sequence)
    }

    /// One batched direct get (ADR-31): messages of `subject` from sequence
    /// `from`, ended by a 204 "EOB" status; returns whether more remain.
    async fn load_batch(&self, subject: &str, from: u64) -> Result<(Vec<StoredCommit>, bool), StoreError> {
        let inbox = self.client.new_inbox();
        let mut sub = self.client.subscribe(inbox.clone()).await.map_err(StoreError::nats)?;
        let request = serde_json::json!({ "seq": from, "next_by_subj": subject, "batch": LOAD_BATCH });
        self.client
            .publish_with_reply(format!("$JS.API.DIRECT.GET.{}", self.stream), inbox, request.to_string().into())
            .await
            .map_err(StoreError::nats)?;
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let msg = match tokio::time::timeout_at(deadline, sub.next()).await {
                Ok(Some(m)) => m,
                Ok(None) => return Err(StoreError::Nats("subscription closed during load".into())),
                Err(_) => return Err(StoreError::Nats("timed out loading an aggregate".into())),
            };
            match msg.status {
                Some(StatusCode::NOT_FOUND) => return Ok((out, false)),
                Some(s) if s.as_u16() == 204 => {
                    let pending = header_u64(msg.headers.as_ref(), "Nats-Num-Pending").unwrap_or(0);
                    return Ok((out, pending > 0));
                }
                Some(s) if s.as_u16() != 200 => {
                    return Err(StoreError::Nats(format!(
                        "direct get failed: {} {}",
                        s.as_u16(),
                        msg.description.unwrap_or_default()
                    )));
                }
                _ => {
                    let seq = header_u64(msg.headers.as_ref(), "Nats-Sequence")
                        .ok_or_else(|| StoreError::Nats("direct get reply without Nats-Sequence".into()))?;
                    out.push(StoredCommit::decode(seq, subject, &msg.payload)?);
                    if out.len() > LOAD_BATCH {
                        return Err(StoreError::Nats("direct get returned more than the batch".into()));
                    }
                }
            }
        }
    }
}

fn header_u64(headers: Option<&HeaderMap>, name: &str) -> Option<u64> {
    headers.and_then(|h| h.get(name)).and_then(|v| v.as_str().parse().ok())
}

/// The `Nats-Msg-Id` of a command's commit: unique per aggregate and request.
fn msg_id(subject: &str, request_key: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(subject.as_bytes());
    h.update([0]);
    h.update(request_key.as_bytes());
    hex::encode(&h.finalize()[..16])
}
