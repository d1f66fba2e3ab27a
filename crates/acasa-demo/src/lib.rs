//! The demo counter service: the smallest aggregate that exercises every
//! platform piece end to end — a unique name reserved across aggregates,
//! idempotent commands, optimistic concurrency, a checkpointed projection and
//! read-your-writes queries. It carries no personal data. Real services
//! (registry, placements, grants, referrals, content) follow its shape.

pub mod codec;
mod commands;
pub mod domain;
pub mod grpc;
pub mod projection;
mod queries;
pub mod validate;

/// The service's name: stream `ACASA_DEMO`, subjects `acasa.demo.>`, schema `demo`.
pub const SERVICE: &str = "demo";
/// The projection building `demo.counters`.
pub const PROJECTION: &str = "demo.counters";

use std::sync::Arc;

use acasa_domain::Aggregate as _;
use acasa_eventstore::{Repository, RepositoryConfig};
use acasa_projection::Projection;
use acasa_runtime::kit::{ProjectionSpec, ServeContext, ServiceDef, WorkContext};
use futures::future::BoxFuture;
use tonic::service::Routes;

/// The demo service as the binary knows it.
#[derive(Clone, Copy, Debug)]
pub struct Demo;

const PROJECTIONS: &[ProjectionSpec] =
    &[ProjectionSpec { name: PROJECTION, stream_of: SERVICE, rebuildable: true, build: counters }];

fn counters(_: &WorkContext<'_>) -> anyhow::Result<Arc<dyn Projection>> {
    Ok(Arc::new(projection::CountersProjection))
}

impl ServiceDef for Demo {
    fn name(&self) -> &'static str {
        SERVICE
    }

    fn default_port(&self) -> u16 {
        50050
    }

    fn apis(&self) -> &'static [&'static str] {
        &[grpc::CounterService::NAME]
    }

    fn migrations(&self) -> sqlx::migrate::Migrator {
        sqlx::migrate!("./migrations")
    }

    fn projections(&self) -> &'static [ProjectionSpec] {
        PROJECTIONS
    }

    fn claim_kinds(&self) -> &'static [(&'static str, &'static str)] {
        &[(domain::NAME_CLAIM, domain::Counter::KIND)]
    }

    fn routes<'a>(&'a self, ctx: ServeContext<'a>) -> BoxFuture<'a, anyhow::Result<Routes>> {
        Box::pin(async move {
            let repo = Repository::new(ctx.store, RepositoryConfig::default());
            Ok(grpc::CounterService::new(repo, ctx.positions, ctx.pool).routes(ctx.auth))
        })
    }
}
