//! The registry: the people the programme serves and its candidate database.
//!
//! A person is one aggregate (`acasa.registry.person.<id>`). Personal fields
//! travel in the log sealed with the person's own data key ([`codec`]); the
//! key lives in a vault table outside the log and erasure destroys it. The
//! `registry.people` read model ([`projection`]) opens what it can and drops
//! the personal columns of erased people; queries ([`queries`]) read it only.
//! Other services' workers have the sealed fields they read from the log
//! opened by `PersonDataService` ([`grpc::PersonDataService`]): the key never
//! leaves the registry.

pub mod codec;
mod commands;
pub mod domain;
pub mod grpc;
pub mod person_data;
pub mod projection;
mod queries;
pub mod validate;

/// The service's name: stream `ACASA_REGISTRY`, subjects `acasa.registry.>`, schema `registry`.
pub const SERVICE: &str = "registry";
/// The projection building the `registry` schema's read model.
pub const PROJECTION: &str = "registry.people";
/// The vault table of the people's data keys.
pub const VAULT_TABLE: &str = "registry_vault.data_keys";

use std::sync::Arc;

use acasa_domain::Aggregate as _;
use acasa_eventstore::{Repository, RepositoryConfig};
use acasa_projection::Projection;
use acasa_runtime::kit::{self, ProjectionSpec, ServeContext, ServiceDef, WorkContext};
use acasa_vault::Keys;
use futures::future::BoxFuture;
use tonic::service::Routes;

/// The registry as the binary knows it.
#[derive(Clone, Copy, Debug)]
pub struct Registry;

const PROJECTIONS: &[ProjectionSpec] =
    &[ProjectionSpec { name: PROJECTION, stream_of: SERVICE, rebuildable: true, build: people }];

fn people(ctx: &WorkContext<'_>) -> anyhow::Result<Arc<dyn Projection>> {
    Ok(Arc::new(projection::PeopleProjection::new(ctx.vault(VAULT_TABLE)?)))
}

impl ServiceDef for Registry {
    fn name(&self) -> &'static str {
        SERVICE
    }

    fn default_port(&self) -> u16 {
        50051
    }

    fn apis(&self) -> &'static [&'static str] {
        &[grpc::RegistryService::NAME, grpc::PersonDataService::NAME]
    }

    fn migrations(&self) -> sqlx::migrate::Migrator {
        sqlx::migrate!("./migrations")
    }

    fn projections(&self) -> &'static [ProjectionSpec] {
        PROJECTIONS
    }

    fn claim_kinds(&self) -> &'static [(&'static str, &'static str)] {
        &[(domain::IDNP_CLAIM, domain::Person::KIND)]
    }

    fn routes<'a>(&'a self, ctx: ServeContext<'a>) -> BoxFuture<'a, anyhow::Result<Routes>> {
        Box::pin(async move {
            let vault = kit::vault(ctx.config, ctx.pool.clone(), VAULT_TABLE)?;
            let keys = Keys::new(vault.clone());
            let repo = Repository::new(ctx.store, RepositoryConfig::default());
            let registry = grpc::RegistryService::new(repo, vault, ctx.positions, ctx.pool)
                .with_keys(keys.clone())
                .routes(ctx.auth);
            let policy = person_data::Policy::parse(&ctx.config.person_data_purposes)
                .map_err(|e| anyhow::anyhow!("ACASA_PERSON_DATA_PURPOSES: {e}"))?;
            Ok(grpc::PersonDataService::new(keys).with_policy(policy).add_to(registry, ctx.auth))
        })
    }
}
