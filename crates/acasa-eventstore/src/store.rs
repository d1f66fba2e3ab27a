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

use crate::{
    commit::{NewCommit, StoredCommit},
    error::{AppendError, StoreError},
    trace,
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
}

impl StreamSettings {
    /// Settings for `service` with one replica and a two-minute window.
    pub fn new(service: &str) -> Self {
        Self { service: service.to_owned(), replicas: 1, duplicate_window: Duration::from_secs(120) }
    }

    /// The stream's name.
    pub fn stream_name(&self) -> String {
        format!("ACASA_{}", self.service.to_ascii_uppercase())
    }
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
                {
                    js.update_stream(config).await.map_err(StoreError::nats)?;
                }
            }
            Err(_) => {
                js.create_stream(config).await.map_err(StoreError::nats)?;
            }
        }
        Ok(Self { client, js, settings, stream })
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

    /// Appends one commit to `subject` if the subject's last stream sequence is
    /// still `expected` (0: the subject must be empty).
    pub async fn append(&self, subject: &str, expected: u64, commit: &NewCommit) -> Result<Appended, AppendError> {
        let span = tracing::info_span!("eventstore.append", stream = %self.stream, expected);
        async {
            let mut headers: HeaderMap = commit.headers();
            headers.insert("Nats-Expected-Last-Subject-Sequence", expected.to_string().as_str());
            headers.insert("Nats-Msg-Id", msg_id(subject, &commit.request_id).as_str());
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
fn msg_id(subject: &str, request_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(subject.as_bytes());
    h.update([0]);
    h.update(request_id.as_bytes());
    hex::encode(&h.finalize()[..16])
}
