//! The demo's queries: the `demo.counters` read model, after waiting for
//! the caller's minimum position.

use acasa_domain::Violations;
use acasa_proto::{demo::v1 as pb, time::timestamp};
use acasa_runtime::ApiError;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::grpc::CounterService;

impl CounterService {
    pub(crate) async fn get(
        &self,
        req: &pb::GetCounterRequest,
        deadline: tokio::time::Instant,
    ) -> Result<pb::GetCounterResponse, ApiError> {
        let mut v = Violations::new();
        let id = v.id("counter_id", &req.counter_id);
        let Some(id) = id else { return Err(v.into()) };
        let stream = self.repo.store().stream_name();
        let position = self.positions.at(crate::PROJECTION, stream, req.min_position, deadline).await?;
        type Row = (Uuid, String, i64, i64, i64, DateTime<Utc>, DateTime<Utc>);
        let row: Option<Row> = sqlx::query_as(
            "SELECT counter_id, name, max_value, value, increments, created_at, updated_at \
             FROM demo.counters WHERE counter_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let (counter_id, name, limit, value, increments, created_at, updated_at) =
            row.ok_or_else(|| ApiError::NotFound(format!("no counter {id}")))?;
        Ok(pb::GetCounterResponse {
            counter: Some(pb::Counter {
                counter_id: counter_id.to_string(),
                name,
                value,
                limit,
                increments,
                created_at: Some(timestamp(created_at)),
                updated_at: Some(timestamp(updated_at)),
            }),
            position,
        })
    }
}
