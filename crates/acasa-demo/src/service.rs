//! The gRPC handlers of `acasa.demo.v1.CounterService`: validate, call the
//! command loop or the read model, map errors.

use acasa_domain::Violations;
use acasa_eventstore::Repository;
use acasa_projection::Positions;
use acasa_proto::demo::v1::{self as pb, counter_service_server::CounterServiceServer};
use acasa_proto::time::timestamp;
use acasa_runtime::{ApiError, Authenticator, Principal, Role, request};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tonic::{Request, Response, Status, service::Routes};
use uuid::Uuid;

use crate::domain::{Amount, Counter, CounterCommand, CounterEvent, CounterName};

/// The service's dependencies.
#[derive(Clone, Debug)]
pub struct CounterService {
    repo: Repository<Counter>,
    positions: Positions,
    pool: PgPool,
}

impl CounterService {
    /// A service over its repository and read model.
    pub fn new(repo: Repository<Counter>, positions: Positions, pool: PgPool) -> Self {
        Self { repo, positions, pool }
    }

    /// The service's routes, behind bearer authentication.
    pub fn routes(self, auth: &Authenticator) -> Routes {
        Routes::new(CounterServiceServer::with_interceptor(self, auth.interceptor()))
    }

    /// The gRPC service name, for health.
    pub const NAME: &'static str = "acasa.demo.v1.CounterService";

    async fn create(
        &self,
        principal: &Principal,
        req: &pb::CreateCounterRequest,
    ) -> Result<pb::CreateCounterResponse, ApiError> {
        let mut v = Violations::new();
        let meta = request::meta_of(principal, &mut v, &req.request_id, req, |m| m.request_id.clear());
        let name = v.check("name", CounterName::parse(&req.name));
        if req.limit < 0 {
            v.add("limit", "must not be negative (0 means unbounded)");
        }
        v.clone().into_result()?;
        let (Some(meta), Some(name)) = (meta, name) else { return Err(v.into()) };

        // A retry addresses the counter its first attempt created.
        let (id, fresh) = match self.repo.created_by(&meta).await? {
            Some(id) => (
                Uuid::parse_str(&id).map_err(|_| ApiError::Internal("a request record names a non-uuid".into()))?,
                false,
            ),
            None => (Uuid::now_v7(), true),
        };
        let command = CounterCommand::Create { id, name: name.clone(), limit: req.limit };
        let outcome = if fresh {
            self.repo.execute_new_with(&id.to_string(), &command, &meta, &acasa_domain::Plain).await
        } else {
            self.repo.execute(&id.to_string(), &command, &meta).await
        };
        let outcome = outcome.map_err(|e| match e {
            acasa_eventstore::CommandError::Claimed { owner, .. } => ApiError::Rejected {
                kind: acasa_domain::RejectionKind::AlreadyExists,
                message: format!("a counter with this name already exists: {owner}"),
            },
            e => e.into(),
        })?;
        if outcome.replayed {
            tracing::info!(counter_id = %outcome.id, position = outcome.position, "create replayed for a retried request id");
        } else {
            tracing::info!(counter_id = %outcome.id, position = outcome.position, "counter created");
        }
        Ok(pb::CreateCounterResponse { counter_id: outcome.id, position: outcome.position })
    }

    async fn increment(
        &self,
        principal: &Principal,
        req: &pb::IncrementCounterRequest,
    ) -> Result<pb::IncrementCounterResponse, ApiError> {
        let mut v = Violations::new();
        let meta = request::meta_of(principal, &mut v, &req.request_id, req, |m| m.request_id.clear());
        let id = v.check("counter_id", parse_id(&req.counter_id));
        let amount = v.check("amount", Amount::parse(req.amount));
        let (Some(meta), Some(id), Some(amount)) = (meta, id, amount) else { return Err(v.into()) };
        let outcome = self.repo.execute(&id.to_string(), &CounterCommand::Increment { amount }, &meta).await?;
        let value = outcome
            .events
            .iter()
            .find_map(|e| match e {
                CounterEvent::Incremented { value, .. } => Some(*value),
                CounterEvent::Created { .. } => None,
            })
            .ok_or_else(|| ApiError::Internal("increment commit without an increment event".into()))?;
        Ok(pb::IncrementCounterResponse { value, position: outcome.position })
    }

    async fn get(
        &self,
        req: &pb::GetCounterRequest,
        deadline: tokio::time::Instant,
    ) -> Result<pb::GetCounterResponse, ApiError> {
        let mut v = Violations::new();
        let id = v.check("counter_id", parse_id(&req.counter_id));
        let Some(id) = id else { return Err(v.into()) };
        let position = if req.min_position > 0 {
            self.positions.wait_for(crate::PROJECTION, req.min_position, deadline).await?
        } else {
            self.positions.current(crate::PROJECTION).await?
        };
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

fn parse_id(s: &str) -> Result<Uuid, &'static str> {
    if s.is_empty() {
        return Err("is required");
    }
    Uuid::parse_str(s).map_err(|_| "must be a UUID")
}

#[tonic::async_trait]
impl pb::counter_service_server::CounterService for CounterService {
    async fn create_counter(
        &self,
        request: Request<pb::CreateCounterRequest>,
    ) -> Result<Response<pb::CreateCounterResponse>, Status> {
        let principal = Principal::of(&request)?;
        principal.require_any(&[Role::Admin, Role::Caseworker])?;
        Ok(Response::new(self.create(principal, request.get_ref()).await?))
    }

    async fn increment_counter(
        &self,
        request: Request<pb::IncrementCounterRequest>,
    ) -> Result<Response<pb::IncrementCounterResponse>, Status> {
        let principal = Principal::of(&request)?;
        principal.require_any(&[Role::Admin, Role::Caseworker])?;
        Ok(Response::new(self.increment(principal, request.get_ref()).await?))
    }

    async fn get_counter(
        &self,
        request: Request<pb::GetCounterRequest>,
    ) -> Result<Response<pb::GetCounterResponse>, Status> {
        let principal = Principal::of(&request)?;
        principal.require_any(&[Role::Admin, Role::Caseworker, Role::Viewer])?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.get(request.get_ref(), deadline).await?))
    }
}
