//! The projection worker: durable consumer → batches → one transaction each.

use std::{sync::Arc, time::Duration};

use acasa_eventstore::{EventStore, StoredCommit, trace};
use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
};
use futures::{StreamExt as _, future::BoxFuture};
use opentelemetry::{KeyValue, metrics::Counter};
use sqlx::{PgConnection, PgPool, Postgres, pool::PoolConnection};
use tokio::sync::watch;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::checkpoint;

/// How long a batch waits for more commits once it has one.
const LINGER: Duration = Duration::from_millis(1);

/// A read model built from one service's stream.
pub trait Projection: Send + Sync + 'static {
    /// Unique name, e.g. `demo.counters`.
    fn name(&self) -> &str;

    /// Empties the read model for a rebuild (inside the reset transaction).
    fn reset<'c>(&'c self, conn: &'c mut PgConnection) -> BoxFuture<'c, Result<(), sqlx::Error>>;

    /// Applies commits, in stream order, inside the batch transaction. Should
    /// skip commits of aggregates or event types it does not care about.
    fn apply<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        commits: &'c [StoredCommit],
    ) -> BoxFuture<'c, Result<(), ApplyError>>;
}

/// Why commits could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The commit's content cannot be applied (e.g. an event that fails to
    /// decode): retrying will not help.
    #[error("poison: {0}")]
    Poison(String),
    /// The database failed; poison if the database refused the data itself
    /// (SQLSTATE classes 22 and 23), transient otherwise.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Something outside the database (e.g. the broker a projection
    /// publishes to) failed; the batch is retried, never poisoned.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<acasa_vault::VaultError> for ApplyError {
    /// The vault is infrastructure: its database, or the master key it was
    /// configured with, failed. Such a batch is retried (and the worker's
    /// status shows it stuck), never poisoned: skipping an erasure would leave
    /// personal columns in clear.
    fn from(e: acasa_vault::VaultError) -> Self {
        Self::Unavailable(format!("vault: {e}"))
    }
}

impl ApplyError {
    fn is_poison(&self) -> bool {
        match self {
            Self::Poison(_) => true,
            Self::Database(sqlx::Error::Database(e)) => {
                e.code().is_some_and(|c| c.starts_with("22") || c.starts_with("23"))
            }
            Self::Database(_) | Self::Unavailable(_) => false,
        }
    }

    /// A description safe to log and store: no row values.
    fn reason(&self) -> String {
        match self {
            Self::Poison(r) => r.clone(),
            Self::Database(sqlx::Error::Database(e)) => format!(
                "database refused the data: SQLSTATE {}{}",
                e.code().unwrap_or_default(),
                e.constraint().map(|c| format!(" (constraint {c})")).unwrap_or_default()
            ),
            Self::Database(e) => e.to_string(),
            Self::Unavailable(e) => e.clone(),
        }
    }
}

/// A batch's transaction commits without waiting for its WAL flush
/// (`synchronous_commit = off`, this transaction only). Safe for a projection:
/// the read model and its checkpoint commit atomically, so a Postgres crash
/// can only lose the last batches whole — never half of one — and the worker
/// replays them from the stream. It takes a WAL fsync off every batch's path.
async fn relaxed_commit(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SET LOCAL synchronous_commit = off").execute(conn).await.map(|_| ())
}

/// A worker failed in a way that needs the operator or a restart.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// JetStream failed.
    #[error("jetstream: {0}")]
    Nats(String),
    /// Postgres failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The advisory-lock connection was lost: another worker may lead now.
    #[error("lost the projection's leadership lock")]
    LostLeadership,
}

fn nats(e: impl std::fmt::Display) -> WorkerError {
    WorkerError::Nats(e.to_string())
}

/// Tuning of a [`Worker`].
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The stream to read (`ACASA_<SERVICE>`).
    pub stream: String,
    /// Most commits per transaction.
    pub batch_size: usize,
    /// The subjects it reads: the commit subjects (`acasa.<service>.*.*`),
    /// so the claims and request records beside them never reach the worker;
    /// empty reads every subject.
    pub filter_subject: String,
}

/// What one batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Commits applied.
    pub applied: usize,
    /// Redelivered commits at or below the checkpoint, skipped.
    pub skipped: usize,
    /// Commits recorded as poison.
    pub poisoned: usize,
    /// The checkpoint after the batch.
    pub position: u64,
}

struct Metrics {
    applied: Counter<u64>,
    poison: Counter<u64>,
    batches: Counter<u64>,
    labels: [KeyValue; 1],
}

/// Runs one projection.
pub struct Worker<P: Projection + ?Sized> {
    projection: Arc<P>,
    pool: PgPool,
    js: jetstream::Context,
    config: WorkerConfig,
    messages: Option<pull::Stream>,
    consumer: Option<jetstream::consumer::PullConsumer>,
    position: u64,
    lock: Option<PoolConnection<Postgres>>,
    metrics: Metrics,
}

impl<P: Projection + ?Sized> Drop for Worker<P> {
    fn drop(&mut self) {
        // The advisory lock belongs to the session: close the connection
        // rather than return it to the pool still holding leadership.
        if let Some(lock) = self.lock.take() {
            drop(lock.detach());
        }
    }
}

impl<P: Projection + ?Sized> std::fmt::Debug for Worker<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("projection", &self.projection.name()).field("position", &self.position).finish()
    }
}

impl<P: Projection + ?Sized> Worker<P> {
    /// A worker for `projection` reading `config.stream`.
    pub fn new(projection: Arc<P>, pool: PgPool, js: jetstream::Context, config: WorkerConfig) -> Self {
        let meter = opentelemetry::global::meter("acasa.projection");
        let metrics = Metrics {
            applied: meter.u64_counter("acasa.projection.commits.applied").build(),
            poison: meter.u64_counter("acasa.projection.commits.poison").build(),
            batches: meter.u64_counter("acasa.projection.batches").build(),
            labels: [KeyValue::new("projection", projection.name().to_owned())],
        };
        Self { projection, pool, js, config, messages: None, consumer: None, position: 0, lock: None, metrics }
    }

    /// The last applied stream sequence as this worker knows it.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Tries once to become the projection's active worker.
    pub async fn try_lead(&mut self) -> Result<bool, WorkerError> {
        if self.lock.is_some() {
            return Ok(true);
        }
        let mut conn = self.pool.acquire().await?;
        let got: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended('acasa.projection.' || $1, 0))")
                .bind(self.projection.name())
                .fetch_one(&mut *conn)
                .await?;
        if got {
            self.lock = Some(conn);
        }
        Ok(got)
    }

    /// Gives up leadership at once, so a standby can take over without waiting.
    pub async fn release(&mut self) {
        if let Some(mut lock) = self.lock.take() {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock_all()").execute(&mut *lock).await.is_ok();
            if !unlocked {
                drop(lock.detach());
            }
        }
    }

    /// Waits until this worker leads or `shutdown` turns true.
    pub async fn lead(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<bool, WorkerError> {
        loop {
            if self.try_lead().await? {
                tracing::info!(projection = self.projection.name(), "leading the projection");
                return Ok(true);
            }
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return Ok(false),
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Runs until `shutdown` turns true: lead, then pump batches. Transient
    /// failures are logged and retried with backoff.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), WorkerError> {
        if !self.lead(&mut shutdown).await? {
            return Ok(());
        }
        let mut failures = 0u32;
        while !*shutdown.borrow() {
            match self.pump(Duration::from_millis(500)).await {
                Ok(_) => failures = 0,
                Err(WorkerError::LostLeadership) => return Err(WorkerError::LostLeadership),
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let wait = Duration::from_millis(100 * u64::from(failures.min(50)));
                    tracing::warn!(projection = self.projection.name(), error = %e, ?wait, "batch failed; retrying");
                    self.messages = None;
                    tokio::select! {
                        _ = shutdown.wait_for(|s| *s) => {}
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        self.release().await;
        tracing::info!(projection = self.projection.name(), position = self.position, "projection worker stopped");
        Ok(())
    }

    /// Pumps batches until the checkpoint reaches `target`, a stream
    /// sequence read before the call (for rebuilds and tests). The stream's
    /// last messages may be ones the filter skips (claims, request records):
    /// once the consumer has nothing pending and nothing unacknowledged, every
    /// commit up to `target` is applied, and the checkpoint moves to `target`.
    pub async fn catch_up_to(&mut self, target: u64) -> Result<u64, WorkerError> {
        while self.position < target {
            let report = self.pump(Duration::from_millis(200)).await?;
            if report.applied + report.poisoned + report.skipped > 0 {
                continue;
            }
            let Some(consumer) = self.consumer.as_mut() else { continue };
            let info = consumer.info().await.map_err(nats)?;
            if info.num_pending == 0 && info.num_ack_pending == 0 {
                let name = self.projection.name().to_owned();
                let mut tx = self.pool.begin().await?;
                let at = checkpoint::lock(&mut tx, &name).await?;
                if at != self.position {
                    return Err(self.moved(at));
                }
                checkpoint::advance(&mut tx, &name, target).await?;
                tx.commit().await?;
                self.position = target;
            }
        }
        Ok(self.position)
    }

    /// Applies at most one batch: waits up to `wait` for the first commit, then
    /// takes whatever else is ready, up to the batch size.
    pub async fn pump(&mut self, wait: Duration) -> Result<BatchReport, WorkerError> {
        if self.lock.is_none() {
            return Err(WorkerError::LostLeadership);
        }
        if self.messages.is_none() {
            self.start().await?;
        }
        let Some(messages) = self.messages.as_mut() else {
            return Err(WorkerError::Nats("no consumer".into()));
        };
        let first = match tokio::time::timeout(wait, messages.next()).await {
            Err(_) => {
                self.idle_checks().await?;
                return Ok(BatchReport { position: self.position, ..Default::default() });
            }
            Ok(None) => {
                self.messages = None;
                return Err(WorkerError::Nats("consumer stream ended".into()));
            }
            Ok(Some(Err(e))) => {
                self.messages = None;
                return Err(nats(e));
            }
            Ok(Some(Ok(m))) => m,
        };
        // Fill the batch with what is ready, lingering up to 1 ms for more:
        // big batches while catching up, ~1 ms extra latency when live.
        let mut batch = vec![first];
        while batch.len() < self.config.batch_size {
            let Ok(next) = tokio::time::timeout(LINGER, messages.next()).await else { break };
            match next {
                Some(Ok(m)) => batch.push(m),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "consumer error while filling a batch");
                    break;
                }
                None => break,
            }
        }
        self.apply_batch(batch).await
    }

    async fn idle_checks(&mut self) -> Result<(), WorkerError> {
        let Some(lock) = self.lock.as_mut() else { return Err(WorkerError::LostLeadership) };
        if sqlx::query("SELECT 1").execute(&mut **lock).await.is_err() {
            self.lock = None;
            return Err(WorkerError::LostLeadership);
        }
        // A rebuild resets the checkpoint; follow it.
        let mut conn = self.pool.acquire().await?;
        let pos: i64 = sqlx::query_scalar("SELECT position FROM projection.checkpoints WHERE name = $1")
            .bind(self.projection.name())
            .fetch_one(&mut *conn)
            .await?;
        let pos = u64::try_from(pos).unwrap_or(0);
        if pos != self.position {
            tracing::info!(
                projection = self.projection.name(),
                from = self.position,
                to = pos,
                "checkpoint moved; repositioning"
            );
            self.position = pos;
            self.messages = None;
        }
        Ok(())
    }

    fn consumer_name(&self) -> String {
        format!("projection-{}", self.projection.name().replace(['.', ' ', '*', '>'], "-"))
    }

    /// (Re)creates the durable consumer at the checkpoint + 1.
    async fn start(&mut self) -> Result<(), WorkerError> {
        let mut conn = self.pool.acquire().await?;
        checkpoint::ensure_row(&mut conn, self.projection.name()).await?;
        let pos: i64 = sqlx::query_scalar("SELECT position FROM projection.checkpoints WHERE name = $1")
            .bind(self.projection.name())
            .fetch_one(&mut *conn)
            .await?;
        drop(conn);
        self.position = u64::try_from(pos).unwrap_or(0);
        let stream = self.js.get_stream(&self.config.stream).await.map_err(nats)?;
        let name = self.consumer_name();
        // Ignore "not found": the consumer may not exist yet.
        let _ = stream.delete_consumer(&name).await;
        let consumer: jetstream::consumer::PullConsumer = stream
            .create_consumer(pull::Config {
                durable_name: Some(name),
                description: Some(format!("projection {}", self.projection.name())),
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: self.position + 1 },
                ack_policy: AckPolicy::All,
                filter_subject: self.config.filter_subject.clone(),
                ack_wait: Duration::from_secs(60),
                max_ack_pending: 50_000,
                ..Default::default()
            })
            .await
            .map_err(nats)?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(self.config.batch_size.max(1) * 2)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await
            .map_err(nats)?;
        self.messages = Some(messages);
        self.consumer = Some(consumer);
        Ok(())
    }

    async fn apply_batch(&mut self, batch: Vec<jetstream::Message>) -> Result<BatchReport, WorkerError> {
        let name = self.projection.name().to_owned();
        let mut report = BatchReport::default();
        let mut good: Vec<StoredCommit> = Vec::with_capacity(batch.len());
        let mut corrupt: Vec<(u64, String, String)> = Vec::new();
        let mut spans = Vec::with_capacity(batch.len());
        let mut last_seq = self.position;
        for msg in &batch {
            let seq = match msg.info() {
                Ok(info) => info.stream_sequence,
                Err(e) => return Err(nats(e)),
            };
            if seq <= self.position {
                report.skipped += 1;
                continue;
            }
            last_seq = last_seq.max(seq);
            // Claims and request records share the stream: the checkpoint
            // moves past them, the projection never sees them.
            if !EventStore::is_commit_subject(msg.subject.as_str()) {
                report.skipped += 1;
                continue;
            }
            let span = tracing::info_span!("projection.commit", projection = %name, sequence = seq);
            let _ = span.set_parent(trace::extract(msg.headers.as_ref()));
            spans.push(span);
            match StoredCommit::decode(seq, msg.subject.as_str(), &msg.payload) {
                Ok(c) => good.push(c),
                Err(e) => corrupt.push((seq, msg.subject.to_string(), e.to_string())),
            }
        }
        if last_seq > self.position {
            let outcome = if corrupt.is_empty() { self.fast_path(&good, last_seq).await? } else { None };
            match outcome {
                Some(n) => report.applied = n,
                None => {
                    let (applied, poisoned) = self.slow_path(&good, &corrupt, last_seq).await?;
                    report.applied = applied;
                    report.poisoned = poisoned;
                }
            }
            if report.applied + report.poisoned > 0 || self.position != last_seq {
                self.position = last_seq;
            }
        }
        drop(spans);
        if let Some(last) = batch.last()
            && let Err(e) = last.ack().await
        {
            // Harmless: redelivered commits are skipped by the checkpoint.
            tracing::debug!(error = %e, "ack failed");
        }
        self.metrics.batches.add(1, &self.metrics.labels);
        self.metrics.applied.add(report.applied as u64, &self.metrics.labels);
        report.position = self.position;
        Ok(report)
    }

    /// The whole batch in one transaction. `Ok(None)`: a commit is poison, use
    /// the slow path.
    async fn fast_path(&mut self, commits: &[StoredCommit], last_seq: u64) -> Result<Option<usize>, WorkerError> {
        let name = self.projection.name();
        let mut tx = self.pool.begin().await?;
        relaxed_commit(&mut tx).await?;
        let at = checkpoint::lock(&mut tx, name).await?;
        if at != self.position {
            return Err(self.moved(at));
        }
        match self.projection.apply(&mut tx, commits).await {
            Ok(()) => {
                checkpoint::advance(&mut tx, name, last_seq).await?;
                tx.commit().await?;
                Ok(Some(commits.len()))
            }
            Err(e) if e.is_poison() => Ok(None),
            Err(ApplyError::Database(e)) => Err(e.into()),
            Err(ApplyError::Unavailable(e)) => Err(WorkerError::Nats(e)),
            Err(ApplyError::Poison(_)) => Ok(None),
        }
    }

    /// Commit by commit under savepoints, recording the poison ones.
    async fn slow_path(
        &mut self,
        commits: &[StoredCommit],
        corrupt: &[(u64, String, String)],
        last_seq: u64,
    ) -> Result<(usize, usize), WorkerError> {
        let name = self.projection.name().to_owned();
        let mut tx = self.pool.begin().await?;
        relaxed_commit(&mut tx).await?;
        let at = checkpoint::lock(&mut tx, &name).await?;
        if at != self.position {
            return Err(self.moved(at));
        }
        let mut applied = 0;
        let mut poison: Vec<(u64, String, String)> = corrupt.to_vec();
        for c in commits {
            sqlx::query("SAVEPOINT commit_apply").execute(&mut *tx).await?;
            match self.projection.apply(&mut tx, std::slice::from_ref(c)).await {
                Ok(()) => {
                    sqlx::query("RELEASE SAVEPOINT commit_apply").execute(&mut *tx).await?;
                    applied += 1;
                }
                Err(e) if e.is_poison() => {
                    sqlx::query("ROLLBACK TO SAVEPOINT commit_apply").execute(&mut *tx).await?;
                    poison.push((c.sequence, c.subject.clone(), e.reason()));
                }
                Err(ApplyError::Database(e)) => return Err(e.into()),
                Err(ApplyError::Unavailable(e)) => return Err(WorkerError::Nats(e)),
                Err(ApplyError::Poison(_)) => {}
            }
        }
        for (seq, subject, reason) in &poison {
            tracing::error!(projection = %name, sequence = seq, %reason, "poison commit recorded and skipped");
            checkpoint::record_poison(&mut tx, &name, *seq, subject, reason).await?;
        }
        checkpoint::advance(&mut tx, &name, last_seq).await?;
        tx.commit().await?;
        self.metrics.poison.add(poison.len() as u64, &self.metrics.labels);
        Ok((applied, poison.len()))
    }

    fn moved(&mut self, at: u64) -> WorkerError {
        tracing::info!(
            projection = self.projection.name(),
            from = self.position,
            to = at,
            "checkpoint moved; repositioning"
        );
        self.position = at;
        self.messages = None;
        WorkerError::Nats("checkpoint moved under the worker; repositioned".into())
    }
}
