//! The SLA deadline worker: finds referrals still unanswered past their due
//! time in the read model and records the breach as an event on each
//! (`ReferralSlaBreached`), which escalates it to programme staff (the breach
//! list, a warning in the log, the partner's feed). The read model only
//! proposes candidates; the referral aggregate decides, so a late, repeated
//! or concurrent sweep records each breach exactly once.

use std::time::Duration;

use acasa_domain::RequestId;
use acasa_eventstore::{CommandError, Repository};
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::domain::{Referral, ReferralCommand, ReferralEvent, now};

/// Most referrals looked at per sweep.
const SWEEP_LIMIT: i64 = 500;
/// The actor the breaches are recorded by.
pub const ACTOR: &str = "sla-deadline-worker";

/// The deadline worker.
#[derive(Clone, Debug)]
pub struct Deadlines {
    repo: Repository<Referral>,
    pool: PgPool,
    interval: Duration,
    breaches: opentelemetry::metrics::Counter<u64>,
}

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Candidates looked at.
    pub candidates: usize,
    /// Breaches recorded now.
    pub recorded: usize,
}

impl Deadlines {
    /// A worker sweeping every `interval`.
    pub fn new(repo: Repository<Referral>, pool: PgPool, interval: Duration) -> Self {
        let meter = opentelemetry::global::meter("acasa.referrals");
        // An operator's alert: breaches recorded, labelled by nothing personal
        // (no partner or person ids in metric labels).
        let breaches = meter
            .u64_counter("acasa.referrals.sla_breaches")
            .with_description("referral response times breached (recorded by the deadline worker)")
            .build();
        Self { repo, pool, interval, breaches }
    }

    /// One sweep: every referral due by now, unanswered and not yet breached.
    pub async fn sweep(&self) -> Result<Sweep, sqlx::Error> {
        let due: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT referral_id, partner_id FROM referrals.referrals \
             WHERE status = 1 AND sla_breached_at IS NULL AND due_at <= now() ORDER BY due_at LIMIT $1",
        )
        .bind(SWEEP_LIMIT)
        .fetch_all(&self.pool)
        .await?;
        let mut sweep = Sweep { candidates: due.len(), recorded: 0 };
        for (referral, partner) in due {
            let Ok(request_id) = RequestId::parse(&format!("sla-breach:{referral}")) else { continue };
            // In the worker's own scope: no caller can send this request id.
            let meta = acasa_runtime::request::system_meta(ACTOR, request_id, "acasa.referrals.RecordSlaBreach");
            let command = ReferralCommand::RecordSlaBreach(now());
            match self.repo.execute(&referral.to_string(), &command, &meta).await {
                Ok(o) if !o.replayed && o.events.iter().any(|e| matches!(e, ReferralEvent::SlaBreached(_))) => {
                    sweep.recorded += 1;
                    self.breaches.add(1, &[]);
                    tracing::warn!(
                        referral_id = %referral,
                        partner_id = %partner,
                        position = o.position,
                        "referral response time breached; escalated to programme staff"
                    );
                }
                Ok(_) => {}
                Err(CommandError::Rejected(e)) => {
                    tracing::debug!(referral_id = %referral, error = %e, "no breach to record");
                }
                Err(e) => {
                    tracing::warn!(referral_id = %referral, error = %e, "recording an SLA breach failed; will retry")
                }
            }
        }
        Ok(sweep)
    }

    /// Sweeps until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(interval = ?self.interval, "SLA deadline worker started");
        while !*shutdown.borrow() {
            if let Err(e) = self.sweep().await {
                tracing::warn!(error = %e, "SLA sweep failed; retrying");
            }
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => {}
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }
}
