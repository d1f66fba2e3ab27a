//! The deadline worker: records, as events, each month's allowance falling
//! due (`AllowanceFellDue`) and each follow-up outcome not recorded in time
//! (`FollowUpOverdue`). The read model only proposes candidates; the
//! placement aggregate decides, so a late, repeated or concurrent sweep
//! records each due month and each overdue follow-up exactly once.

use std::time::Duration;

use acasa_domain::RequestId;
use acasa_eventstore::{CommandError, Repository};
use chrono::{NaiveDate, Utc};
use futures::StreamExt as _;
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::domain::{FOLLOW_UP_GRACE_DAYS, Placement, PlacementCommand, PlacementEvent};

/// Most placements looked at per sweep and kind.
const SWEEP_LIMIT: i64 = 1_000;
/// Placements recorded at once.
const IN_FLIGHT: usize = 16;
/// The actor the events are recorded by.
pub const ACTOR: &str = "placements-deadline-worker";

/// The deadline worker.
#[derive(Clone, Debug)]
pub struct Deadlines {
    repo: Repository<Placement>,
    pool: PgPool,
    interval: Duration,
    dues: opentelemetry::metrics::Counter<u64>,
    overdue: opentelemetry::metrics::Counter<u64>,
}

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Placements looked at.
    pub candidates: usize,
    /// Months that fell due now.
    pub months_due: usize,
    /// Follow-ups recorded overdue now.
    pub follow_ups_overdue: usize,
}

impl Deadlines {
    /// A worker sweeping every `interval`.
    pub fn new(repo: Repository<Placement>, pool: PgPool, interval: Duration) -> Self {
        let meter = opentelemetry::global::meter("acasa.placements");
        // Labelled by nothing personal.
        let dues = meter
            .u64_counter("acasa.placements.allowances_due")
            .with_description("allowance months recorded as fallen due")
            .build();
        let overdue = meter
            .u64_counter("acasa.placements.follow_ups_overdue")
            .with_description("follow-up outcomes recorded overdue")
            .build();
        Self { repo, pool, interval, dues, overdue }
    }

    async fn record(&self, placement: Uuid, request_id: &str, command: PlacementCommand) -> (usize, usize) {
        let Ok(request_id) = RequestId::parse(request_id) else { return (0, 0) };
        let meta = acasa_runtime::request::system_meta(ACTOR, request_id, "acasa.placements.Deadline");
        match self.repo.execute(&placement.to_string(), &command, &meta).await {
            Ok(o) if !o.replayed => {
                let due = o.events.iter().filter(|e| matches!(e, PlacementEvent::AllowanceFellDue { .. })).count();
                let overdue = o.events.iter().filter(|e| matches!(e, PlacementEvent::FollowUpOverdue(_))).count();
                if overdue > 0 {
                    tracing::warn!(placement_id = %placement, position = o.position, "follow-up outcome overdue");
                }
                (due, overdue)
            }
            Ok(_) => (0, 0),
            Err(CommandError::Rejected(e)) => {
                tracing::debug!(placement_id = %placement, error = %e, "nothing to record");
                (0, 0)
            }
            Err(e) => {
                tracing::warn!(placement_id = %placement, error = %e, "recording a deadline failed; will retry");
                (0, 0)
            }
        }
    }

    /// One sweep as of `today`.
    pub async fn sweep(&self, today: NaiveDate) -> Result<Sweep, sqlx::Error> {
        // Running placements whose next month's period ended by today.
        let due: Vec<Uuid> = sqlx::query_scalar(
            "SELECT x.placement_id FROM placements.placements x WHERE x.status = 6 AND x.started_on IS NOT NULL \
             AND (SELECT count(*) FROM placements.months m WHERE m.placement_id = x.placement_id) < x.term_months \
             AND (x.started_on + make_interval(months => (SELECT count(*) FROM placements.months m \
                  WHERE m.placement_id = x.placement_id)::int + 1))::date <= $1 \
             ORDER BY x.started_on LIMIT $2",
        )
        .bind(today)
        .bind(SWEEP_LIMIT)
        .fetch_all(&self.pool)
        .await?;
        let follow_ups: Vec<Uuid> = sqlx::query_scalar(
            "SELECT placement_id FROM placements.placements WHERE outcome_follow_up IS NULL \
             AND NOT follow_up_overdue AND follow_up_due_on IS NOT NULL AND follow_up_due_on + $2::int < $1 \
             ORDER BY follow_up_due_on LIMIT $3",
        )
        .bind(today)
        .bind(i32::try_from(FOLLOW_UP_GRACE_DAYS).unwrap_or(30))
        .bind(SWEEP_LIMIT)
        .fetch_all(&self.pool)
        .await?;
        let mut sweep = Sweep { candidates: due.len() + follow_ups.len(), ..Sweep::default() };
        // Different placements at once (each its own aggregate), a bounded few.
        let work =
            due.into_iter().map(|p| (p, format!("fall-due:{p}:{today}"), PlacementCommand::FallDue(today))).chain(
                follow_ups
                    .into_iter()
                    .map(|p| (p, format!("follow-up:{p}:{today}"), PlacementCommand::CheckFollowUp(today))),
            );
        let mut done = futures::stream::iter(work)
            .map(|(placement, request_id, command)| async move { self.record(placement, &request_id, command).await })
            .buffer_unordered(IN_FLIGHT);
        while let Some((months, overdue)) = done.next().await {
            sweep.months_due += months;
            sweep.follow_ups_overdue += overdue;
        }
        self.dues.add(u64::try_from(sweep.months_due).unwrap_or(0), &[]);
        self.overdue.add(u64::try_from(sweep.follow_ups_overdue).unwrap_or(0), &[]);
        Ok(sweep)
    }

    /// Sweeps (as of the UTC date) until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(interval = ?self.interval, "placements deadline worker started");
        while !*shutdown.borrow() {
            if let Err(e) = self.sweep(Utc::now().date_naive()).await {
                tracing::warn!(error = %e, "placements sweep failed; retrying");
            }
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => {}
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }
}
