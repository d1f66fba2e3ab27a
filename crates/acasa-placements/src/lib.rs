//! Placements: overseas graduates' six-month professional placements and
//! diaspora scientists' temporary assignments — host institutions, offers,
//! candidates matched from the registry, agreements, monthly allowances,
//! travel claims and outcomes.
//!
//! - [`domain`]: the host, offer and placement aggregates, and the ranking
//!   of candidates, pure and unit-tested.
//! - [`codec`]: their events as the log stores them.
//! - [`validate`]: the edge's validation of requests.
//! - [`projection`]: the read models (hosts, offers, placements, months, travel).
//! - [`people`]: this service's projection of the registry's events (sealed
//!   fields opened through `acasa_runtime::person_data`).
//! - [`deadlines`]: the deadline worker (allowances due, overdue follow-ups).
//! - [`grpc`]: the transport glue; `commands` and `queries` behind it.

pub mod codec;
mod commands;
pub mod deadlines;
pub mod domain;
pub mod grpc;
pub mod people;
pub mod projection;
mod queries;
pub mod validate;

/// The service's name: stream `ACASA_PLACEMENTS`, subjects `acasa.placements.>`, schema `placements`.
pub const SERVICE: &str = "placements";
/// The projection building the service's read models from its own log.
pub const PROJECTION: &str = "placements.placements";
/// The projection of the registry's events into `placements.people`.
pub const PEOPLE_PROJECTION: &str = "placements.people";
/// Subjects of host commits: the prefix, then the host id.
const HOST_PREFIX: &str = "acasa.placements.host.";
/// Subjects of offer commits.
const OFFER_PREFIX: &str = "acasa.placements.offer.";
/// Subjects of placement commits.
const PLACEMENT_PREFIX: &str = "acasa.placements.placement.";

use std::sync::Arc;

use acasa_eventstore::{Repository, RepositoryConfig};
use acasa_projection::Projection;
use acasa_proto::registry::v1 as reg;
use acasa_runtime::kit::{ProjectionSpec, ServeContext, ServiceDef, WorkContext, WorkerRun};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::watch;
use tonic::service::Routes;

use crate::domain::Kind;

pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

/// The registry category a kind of offer is for.
pub(crate) fn category_of(kind: Kind) -> i16 {
    match kind {
        Kind::GraduatePlacement => reg::Category::OverseasGraduate as i16,
        Kind::ScientificAssignment => reg::Category::DiasporaScientist as i16,
    }
}

/// The registry interest in a kind of offer.
pub(crate) fn interest_of(kind: Kind) -> i16 {
    match kind {
        Kind::GraduatePlacement => reg::Interest::Placement as i16,
        Kind::ScientificAssignment => reg::Interest::ScientificAssignment as i16,
    }
}

/// The placements service as the binary knows it.
#[derive(Clone, Copy, Debug)]
pub struct Placements;

const PROJECTIONS: &[ProjectionSpec] = &[
    ProjectionSpec { name: PROJECTION, stream_of: SERVICE, rebuildable: true, build: read_model },
    // The registry's people, kept in this service's schema.
    ProjectionSpec { name: PEOPLE_PROJECTION, stream_of: "registry", rebuildable: true, build: people_view },
];

fn read_model(_: &WorkContext<'_>) -> anyhow::Result<Arc<dyn Projection>> {
    Ok(Arc::new(projection::PlacementsProjection))
}

fn people_view(ctx: &WorkContext<'_>) -> anyhow::Result<Arc<dyn Projection>> {
    use acasa_runtime::person_data::{Purpose, RegistryPersonData};
    let data = RegistryPersonData::from_config(ctx.config, SERVICE, Purpose::Matching)?;
    Ok(Arc::new(people::PeopleProjection::new(Arc::new(data))))
}

impl ServiceDef for Placements {
    fn name(&self) -> &'static str {
        SERVICE
    }

    fn default_port(&self) -> u16 {
        50052
    }

    fn apis(&self) -> &'static [&'static str] {
        &[grpc::PlacementService::NAME]
    }

    fn migrations(&self) -> sqlx::migrate::Migrator {
        sqlx::migrate!("./migrations")
    }

    fn projections(&self) -> &'static [ProjectionSpec] {
        PROJECTIONS
    }

    fn routes<'a>(&'a self, ctx: ServeContext<'a>) -> BoxFuture<'a, anyhow::Result<Routes>> {
        Box::pin(async move {
            let targets = grpc::Targets {
                graduates: ctx.config.placements_target_graduates,
                scientists: ctx.config.placements_target_scientists,
            };
            Ok(grpc::PlacementService::new(ctx.store, ctx.positions, ctx.pool).with_targets(targets).routes(ctx.auth))
        })
    }

    fn workers(&self, ctx: &WorkContext<'_>, shutdown: watch::Receiver<bool>) -> anyhow::Result<Vec<WorkerRun>> {
        let repo = Repository::new(ctx.store.clone(), RepositoryConfig::default());
        let sweep = deadlines::Deadlines::new(repo, ctx.pool.clone(), ctx.config.placements_sweep_interval);
        Ok(vec![Box::pin(async move {
            sweep.run(shutdown).await;
            Ok(())
        })])
    }
}
