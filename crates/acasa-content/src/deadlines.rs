//! The deadline worker: records, as events, each scheduled publication
//! (`ArticlePublished { scheduled }`) and each expiry (`ArticleExpired`)
//! once its time is reached. The read model only proposes candidates; the
//! article decides (`PublishDue`, `ExpireDue`), so a late, repeated or
//! concurrent sweep records each exactly once: the request id names the
//! version and the scheduled instant (`publish-due:<article>:<locale>:<µs>`).
//!
//! A scheduled publication whose revision is not approved by someone other
//! than its author is not published (`NOT_APPROVED`); it is proposed again
//! every sweep until it is approved (then it goes out at once) or
//! rescheduled, and counted meanwhile (`acasa.content.publications_waiting`).
//! Readers never see an expired version even before the worker records it:
//! the public reads compare the expiry with their own clock.

use std::time::Duration;

use acasa_domain::RequestId;
use acasa_eventstore::{CommandError, Repository};
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::domain::{
    Stamp,
    article::{Article, ArticleCommand, ArticleError, ArticleEvent},
};

/// Most versions looked at per sweep and kind.
const SWEEP_LIMIT: i64 = 1_000;
/// Articles recorded at once.
const IN_FLIGHT: usize = 16;
/// The actor the events are recorded by.
pub const ACTOR: &str = "content-deadline-worker";

/// The deadline worker.
#[derive(Clone, Debug)]
pub struct Deadlines {
    repo: Repository<Article>,
    pool: PgPool,
    interval: Duration,
    recorded: opentelemetry::metrics::Counter<u64>,
    waiting: opentelemetry::metrics::Counter<u64>,
}

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Versions looked at.
    pub candidates: usize,
    /// Versions published now.
    pub published: usize,
    /// Versions expired now.
    pub expired: usize,
    /// Scheduled publications still waiting for an approval.
    pub waiting: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Due {
    Publish,
    Expire,
}

impl Deadlines {
    /// A worker sweeping every `interval`.
    pub fn new(repo: Repository<Article>, pool: PgPool, interval: Duration) -> Self {
        let meter = opentelemetry::global::meter("acasa.content");
        // Labelled by nothing but the kind of deadline.
        let recorded = meter
            .u64_counter("acasa.content.deadlines_recorded")
            .with_description("scheduled publications and expiries recorded")
            .build();
        let waiting = meter
            .u64_counter("acasa.content.publications_waiting")
            .with_description("scheduled publications reached but not approved, per sweep")
            .build();
        Self { repo, pool, interval, recorded, waiting }
    }

    async fn record(&self, article: Uuid, locale: String, at: DateTime<Utc>, due: Due, now: DateTime<Utc>) -> Sweep {
        let (prefix, command) = match due {
            Due::Publish => {
                ("publish-due", ArticleCommand::PublishDue { locale: locale.clone(), stamp: Stamp::new(ACTOR, now) })
            }
            Due::Expire => {
                ("expire-due", ArticleCommand::ExpireDue { locale: locale.clone(), stamp: Stamp::new(ACTOR, now) })
            }
        };
        let request_id = format!("{prefix}:{article}:{locale}:{}", at.timestamp_micros());
        let Ok(request_id) = RequestId::parse(&request_id) else { return Sweep::default() };
        let meta = acasa_runtime::request::system_meta(ACTOR, request_id, "acasa.content.Deadline");
        match self.repo.execute(&article.to_string(), &command, &meta).await {
            Ok(o) if !o.replayed => {
                let published = o.events.iter().filter(|e| matches!(e, ArticleEvent::Published { .. })).count();
                let expired = o.events.iter().filter(|e| matches!(e, ArticleEvent::Expired { .. })).count();
                Sweep { published, expired, ..Sweep::default() }
            }
            Ok(_) => Sweep::default(),
            Err(CommandError::Rejected(ArticleError::NotApproved)) => {
                tracing::debug!(article_id = %article, locale = %locale, "scheduled publication waits for an approval");
                Sweep { waiting: 1, ..Sweep::default() }
            }
            Err(CommandError::Rejected(e)) => {
                tracing::debug!(article_id = %article, locale = %locale, error = %e, "nothing to record");
                Sweep::default()
            }
            Err(e) => {
                tracing::warn!(article_id = %article, error = %e, "recording a deadline failed; will retry");
                Sweep::default()
            }
        }
    }

    /// One sweep as of `now`.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<Sweep, sqlx::Error> {
        let publish: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT article_id, locale, publish_at FROM content.article_versions \
             WHERE publish_at IS NOT NULL AND publish_at <= $1 ORDER BY publish_at LIMIT $2",
        )
        .bind(now)
        .bind(SWEEP_LIMIT)
        .fetch_all(&self.pool)
        .await?;
        let expire: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT article_id, locale, expire_at FROM content.article_versions \
             WHERE expire_at IS NOT NULL AND expire_at <= $1 AND live_revision IS NOT NULL \
             ORDER BY expire_at LIMIT $2",
        )
        .bind(now)
        .bind(SWEEP_LIMIT)
        .fetch_all(&self.pool)
        .await?;
        let mut sweep = Sweep { candidates: publish.len() + expire.len(), ..Sweep::default() };
        let work = publish
            .into_iter()
            .map(|(a, l, at)| (a, l, at, Due::Publish))
            .chain(expire.into_iter().map(|(a, l, at)| (a, l, at, Due::Expire)));
        let mut done = futures::stream::iter(work)
            .map(|(article, locale, at, due)| self.record(article, locale, at, due, now))
            .buffer_unordered(IN_FLIGHT);
        while let Some(s) = done.next().await {
            sweep.published += s.published;
            sweep.expired += s.expired;
            sweep.waiting += s.waiting;
        }
        let kind = |k: &'static str| [opentelemetry::KeyValue::new("kind", k)];
        self.recorded.add(u64::try_from(sweep.published).unwrap_or(0), &kind("publish"));
        self.recorded.add(u64::try_from(sweep.expired).unwrap_or(0), &kind("expire"));
        self.waiting.add(u64::try_from(sweep.waiting).unwrap_or(0), &[]);
        Ok(sweep)
    }

    /// Sweeps until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(interval = ?self.interval, "content deadline worker started");
        while !*shutdown.borrow() {
            if let Err(e) = self.sweep(Utc::now()).await {
                tracing::warn!(error = %e, "content sweep failed; retrying");
            }
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => {}
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }
}
