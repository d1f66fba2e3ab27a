//! The projection runtime: read models in Postgres built from a service's log.
//!
//! A [`Worker`] reads its service's stream through a durable JetStream pull
//! consumer and applies commits in batches, each batch in one Postgres
//! transaction together with the projection's checkpoint (the last applied
//! stream sequence), so a crash at any point neither loses nor double-applies
//! a commit. Redelivered commits at or below the checkpoint are skipped. A
//! commit that cannot be applied (undecodable, or refused by the database for
//! its data) is recorded as poison — logged with its sequence, counted in a
//! metric, visible in the projection's status — and the checkpoint moves on.
//! One worker per projection is active at a time (a Postgres advisory lock);
//! others wait as hot standbys. [`Positions`] lets queries wait until a read
//! model has caught up to a position (read-your-writes).

mod checkpoint;
mod positions;
mod worker;

pub use checkpoint::{ProjectionStatus, rebuild_reset, status};
pub use positions::{Positions, WaitError};
pub use worker::{ApplyError, BatchReport, Projection, Worker, WorkerConfig, WorkerError};

/// The projection runtime's own migrations (schema `projection`: checkpoints
/// and poison commits), applied before any service's.
pub fn migrations() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations")
}
