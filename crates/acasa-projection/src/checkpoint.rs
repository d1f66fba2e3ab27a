//! Checkpoints, poison records and status of projections (schema `projection`).

use sqlx::{PgConnection, PgPool};

/// What an operator sees of a projection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectionStatus {
    /// The projection's name.
    pub name: String,
    /// The last applied stream sequence.
    pub position: u64,
    /// How many commits were recorded as poison.
    pub poison_count: u64,
    /// The most recent poison commit's sequence and reason.
    pub last_poison: Option<(u64, String)>,
}

pub(crate) async fn ensure_row(conn: &mut PgConnection, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO projection.checkpoints (name, position) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks the projection's checkpoint row for the transaction and reads it.
pub(crate) async fn lock(conn: &mut PgConnection, name: &str) -> Result<u64, sqlx::Error> {
    let pos: i64 = sqlx::query_scalar("SELECT position FROM projection.checkpoints WHERE name = $1 FOR UPDATE")
        .bind(name)
        .fetch_one(conn)
        .await?;
    Ok(u64::try_from(pos).unwrap_or(0))
}

pub(crate) async fn advance(conn: &mut PgConnection, name: &str, position: u64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE projection.checkpoints SET position = $2, updated_at = now() WHERE name = $1")
        .bind(name)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .execute(&mut *conn)
        .await?;
    sqlx::query("SELECT pg_notify('acasa_projection', $1)").bind(format!("{name}:{position}")).execute(conn).await?;
    Ok(())
}

pub(crate) async fn record_poison(
    conn: &mut PgConnection,
    name: &str,
    sequence: u64,
    subject: &str,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection.poison (name, sequence, subject, reason) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name, sequence) DO UPDATE SET reason = EXCLUDED.reason, recorded_at = now()",
    )
    .bind(name)
    .bind(i64::try_from(sequence).unwrap_or(i64::MAX))
    .bind(subject)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// The status of projection `name`.
pub async fn status(pool: &PgPool, name: &str) -> Result<ProjectionStatus, sqlx::Error> {
    let position: Option<i64> = sqlx::query_scalar("SELECT position FROM projection.checkpoints WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    let poison_count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM projection.poison WHERE name = $1").bind(name).fetch_one(pool).await?;
    let last: Option<(i64, String)> =
        sqlx::query_as("SELECT sequence, reason FROM projection.poison WHERE name = $1 ORDER BY sequence DESC LIMIT 1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(ProjectionStatus {
        name: name.to_owned(),
        position: position.map_or(0, |p| u64::try_from(p).unwrap_or(0)),
        poison_count: u64::try_from(poison_count).unwrap_or(0),
        last_poison: last.map(|(s, r)| (u64::try_from(s).unwrap_or(0), r)),
    })
}

/// Resets a projection for a rebuild: its read model (through `reset`), its
/// poison records and its checkpoint, in one transaction. A running worker
/// notices the checkpoint went back and replays from the start.
pub async fn rebuild_reset<P: crate::Projection + ?Sized>(pool: &PgPool, projection: &P) -> Result<(), sqlx::Error> {
    let name = projection.name();
    let mut tx = pool.begin().await?;
    ensure_row(&mut tx, name).await?;
    lock(&mut tx, name).await?;
    projection.reset(&mut tx).await?;
    sqlx::query("DELETE FROM projection.poison WHERE name = $1").bind(name).execute(&mut *tx).await?;
    advance(&mut tx, name, 0).await?;
    tx.commit().await
}
