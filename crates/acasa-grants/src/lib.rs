//! Grants: entrepreneurship support for youth and women — programme calls
//! with a budget and eligibility rules, training for entrepreneurs and for
//! local officials and SME-support staff, business plans scored by
//! evaluators, committee approvals within the call's budget, in-kind
//! procurement, monitoring visits and start-up support services.
//!
//! - [`domain`]: the call, application, course, session, official and
//!   support aggregates, eligibility and scoring; pure, given/when/then
//!   tested.
//! - [`validate`]: requests of `acasa.grants.v1` into domain values, every
//!   bad field named.
//! - [`codec`]: the events as the log stores them (`events.proto`); an
//!   official's personal data sealed with the official's own data key
//!   ([`codec::OfficialCodec`], keys in [`VAULT_TABLE`]).
//! - `commands` and `queries` behind [`grpc`] (`GrantService`, the roles of
//!   `grants.proto`). The committee's approval is the call's `Commit` and the
//!   application's `Approve` in one atomic batch (`Repository::execute_all`
//!   over `acasa_domain::pair::Pair<Call, Application>`); closing and
//!   cancelling a grant pair the application's event with the call's
//!   `Release`; cancelling a session unenrols its trainees in the same batch.
//! - [`projection`]: the read models; [`people`]: this service's projection
//!   of the registry (eligibility facts, [`domain::localities`] for rural);
//!   [`referrals`]: the referral system's outcomes that count as support.

pub mod codec;
mod commands;
pub mod domain;
pub mod grpc;
pub mod people;
pub mod projection;
mod queries;
pub mod referrals;
pub mod validate;

/// The service's name: stream `ACASA_GRANTS`, subjects `acasa.grants.>`, schema `grants`.
pub const SERVICE: &str = "grants";
/// The projection building the service's read models from its own log.
pub const PROJECTION: &str = "grants.grants";
/// The projection of the registry's events into `grants.people`.
pub const PEOPLE_PROJECTION: &str = "grants.people";
/// The projection of the referral system's outcomes into `grants.referral_support`.
pub const REFERRALS_PROJECTION: &str = "grants.referrals";
/// The table of the officials' data keys.
pub const VAULT_TABLE: &str = "grants_vault.data_keys";

use std::sync::Arc;

use acasa_projection::Projection;
use acasa_runtime::kit::{self, ProjectionSpec, ServeContext, ServiceDef, WorkContext};
use futures::future::BoxFuture;
use tonic::service::Routes;

/// The grants service as the binary knows it.
#[derive(Clone, Copy, Debug)]
pub struct Grants;

const PROJECTIONS: &[ProjectionSpec] = &[
    ProjectionSpec { name: PROJECTION, stream_of: SERVICE, rebuildable: true, build: read_model },
    // The registry's people (eligibility facts), kept in this service's schema.
    ProjectionSpec { name: PEOPLE_PROJECTION, stream_of: "registry", rebuildable: true, build: people_view },
    // The referral system's outcomes that count as start-up support.
    ProjectionSpec { name: REFERRALS_PROJECTION, stream_of: "referrals", rebuildable: true, build: referral_outcomes },
];

fn read_model(ctx: &WorkContext<'_>) -> anyhow::Result<Arc<dyn Projection>> {
    Ok(Arc::new(projection::GrantsProjection::new(ctx.vault(VAULT_TABLE)?)))
}

fn people_view(ctx: &WorkContext<'_>) -> anyhow::Result<Arc<dyn Projection>> {
    use acasa_runtime::person_data::{Purpose, RegistryPersonData};
    let data = RegistryPersonData::from_config(ctx.config, SERVICE, Purpose::Eligibility)?;
    Ok(Arc::new(people::PeopleProjection::new(Arc::new(data))))
}

fn referral_outcomes(_: &WorkContext<'_>) -> anyhow::Result<Arc<dyn Projection>> {
    Ok(Arc::new(referrals::ReferralsProjection::new()))
}

impl ServiceDef for Grants {
    fn name(&self) -> &'static str {
        SERVICE
    }

    fn default_port(&self) -> u16 {
        50053
    }

    fn apis(&self) -> &'static [&'static str] {
        &[grpc::GrantService::NAME]
    }

    fn migrations(&self) -> sqlx::migrate::Migrator {
        sqlx::migrate!("./migrations")
    }

    fn projections(&self) -> &'static [ProjectionSpec] {
        PROJECTIONS
    }

    fn routes<'a>(&'a self, ctx: ServeContext<'a>) -> BoxFuture<'a, anyhow::Result<Routes>> {
        Box::pin(async move {
            let vault = kit::vault(ctx.config, ctx.pool.clone(), VAULT_TABLE)?;
            let targets = grpc::Targets {
                trained: ctx.config.grants_target_trained,
                grants: ctx.config.grants_target_grants,
                officials: ctx.config.grants_target_officials,
            };
            Ok(grpc::GrantService::new(ctx.store, vault, ctx.positions, ctx.pool)
                .with_targets(targets)
                .routes(ctx.auth))
        })
    }
}
