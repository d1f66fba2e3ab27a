//! The `demo.counters` read model: one row per counter, upserted in batches.

use std::collections::HashMap;

use acasa_domain::EventCodec as _;
use acasa_eventstore::StoredCommit;
use acasa_projection::{ApplyError, Projection};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::CounterEvent;

/// Builds `demo.counters`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountersProjection;

#[derive(Default)]
struct Row {
    name: Option<String>,
    limit: Option<i64>,
    value: i64,
    increments: i64,
    created_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    position: i64,
}

/// Folds a batch into one row per counter, so the upsert never sees an id twice.
fn fold(commits: &[StoredCommit]) -> Result<Vec<(Uuid, Row)>, ApplyError> {
    let mut rows: HashMap<Uuid, Row> = HashMap::new();
    let mut order = Vec::new();
    for c in commits {
        let Some(rest) = c.subject.strip_prefix("acasa.demo.counter.") else { continue };
        let id = Uuid::parse_str(rest).map_err(|_| ApplyError::Poison(format!("subject {} has no uuid", c.subject)))?;
        let row = rows.entry(id).or_insert_with(|| {
            order.push(id);
            Row::default()
        });
        for e in &c.events {
            match CounterEvent::decode(e).map_err(|e| ApplyError::Poison(e.to_string()))? {
                CounterEvent::Created { name, limit, .. } => {
                    row.name = Some(name);
                    row.limit = Some(limit);
                    row.created_at = Some(c.recorded_at);
                }
                CounterEvent::Incremented { value, .. } => {
                    row.value = value;
                    row.increments += 1;
                }
            }
        }
        row.updated_at = c.recorded_at;
        row.position = i64::try_from(c.sequence).unwrap_or(i64::MAX);
    }
    Ok(order.into_iter().filter_map(|id| rows.remove(&id).map(|r| (id, r))).collect())
}

impl Projection for CountersProjection {
    fn name(&self) -> &str {
        crate::PROJECTION
    }

    fn reset<'c>(&'c self, conn: &'c mut PgConnection) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query("TRUNCATE demo.counters").execute(conn).await?;
            Ok(())
        })
    }

    fn apply<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        commits: &'c [StoredCommit],
    ) -> BoxFuture<'c, Result<(), ApplyError>> {
        Box::pin(async move {
            let rows = fold(commits)?;
            if rows.is_empty() {
                return Ok(());
            }
            let (created, changed): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(_, r)| r.name.is_some());
            insert_created(conn, created).await?;
            let expected = changed.len() as u64;
            let updated = update_changed(conn, changed).await?;
            if updated != expected {
                return Err(ApplyError::Poison("an event for a counter that was never created".into()));
            }
            Ok(())
        })
    }
}

async fn insert_created(conn: &mut PgConnection, rows: Vec<(Uuid, Row)>) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut names = Vec::with_capacity(rows.len());
    let mut limits = Vec::with_capacity(rows.len());
    let mut values = Vec::with_capacity(rows.len());
    let mut increments = Vec::with_capacity(rows.len());
    let mut created = Vec::with_capacity(rows.len());
    let mut updated = Vec::with_capacity(rows.len());
    let mut positions = Vec::with_capacity(rows.len());
    for (id, r) in rows {
        ids.push(id);
        names.push(r.name.unwrap_or_default());
        limits.push(r.limit.unwrap_or_default());
        values.push(r.value);
        increments.push(r.increments);
        created.push(r.created_at.unwrap_or(r.updated_at));
        updated.push(r.updated_at);
        positions.push(r.position);
    }
    // A replayed create (after a rebuild reset nothing, or a redelivery past a
    // lost checkpoint) overwrites with the same facts: idempotent.
    sqlx::query(
        "INSERT INTO demo.counters AS c \
           (counter_id, name, max_value, value, increments, created_at, updated_at, position) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::int8[], $5::int8[], \
                              $6::timestamptz[], $7::timestamptz[], $8::int8[]) \
         ON CONFLICT (counter_id) DO UPDATE SET \
           name = EXCLUDED.name, max_value = EXCLUDED.max_value, value = EXCLUDED.value, \
           increments = EXCLUDED.increments, created_at = EXCLUDED.created_at, \
           updated_at = EXCLUDED.updated_at, position = EXCLUDED.position",
    )
    .bind(&ids)
    .bind(&names)
    .bind(&limits)
    .bind(&values)
    .bind(&increments)
    .bind(&created)
    .bind(&updated)
    .bind(&positions)
    .execute(conn)
    .await?;
    Ok(())
}

async fn update_changed(conn: &mut PgConnection, rows: Vec<(Uuid, Row)>) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut values = Vec::with_capacity(rows.len());
    let mut increments = Vec::with_capacity(rows.len());
    let mut updated = Vec::with_capacity(rows.len());
    let mut positions = Vec::with_capacity(rows.len());
    for (id, r) in rows {
        ids.push(id);
        values.push(r.value);
        increments.push(r.increments);
        updated.push(r.updated_at);
        positions.push(r.position);
    }
    let done = sqlx::query(
        "UPDATE demo.counters AS c SET \
           value = CASE WHEN t.increments > 0 THEN t.value ELSE c.value END, \
           increments = c.increments + t.increments, updated_at = t.updated_at, position = t.position \
         FROM UNNEST($1::uuid[], $2::int8[], $3::int8[], $4::timestamptz[], $5::int8[]) \
           AS t(id, value, increments, updated_at, position) \
         WHERE c.counter_id = t.id",
    )
    .bind(&ids)
    .bind(&values)
    .bind(&increments)
    .bind(&updated)
    .bind(&positions)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
