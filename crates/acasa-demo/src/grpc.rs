//! The transport glue of `acasa.demo.v1.CounterService`: who may call what,
//! then the command ([`crate::commands`]) or the query ([`crate::queries`]).

use acasa_eventstore::Repository;
use acasa_projection::Positions;
use acasa_proto::demo::v1::{self as pb, counter_service_server::CounterServiceServer};
use acasa_runtime::{Authenticator, Principal, Role, request};
use sqlx::PgPool;
use tonic::{Request, Response, Status, service::Routes};

use crate::domain::Counter;

/// The service's dependencies.
#[derive(Clone, Debug)]
pub struct CounterService {
    pub(crate) repo: Repository<Counter>,
    pub(crate) positions: Positions,
    pub(crate) pool: PgPool,
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
