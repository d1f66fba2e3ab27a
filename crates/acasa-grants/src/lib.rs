//! Grants: entrepreneurship support for youth and women — programme calls
//! with a budget and eligibility rules, training for entrepreneurs and for
//! local officials and SME-support staff, business plans scored by
//! evaluators, committee approvals within the call's budget, in-kind
//! procurement, monitoring visits and start-up support services.
//!
//! This first increment is the pure core and the contract:
//!
//! - [`domain`]: the call, application, course, session, official and
//!   support aggregates, eligibility and scoring; pure, given/when/then
//!   tested.
//! - [`validate`]: requests of `acasa.grants.v1` into domain values, every
//!   bad field named.
//! - `proto/acasa/grants/v1/grants.proto` (the API, `GrantService`) and
//!   `events.proto` (the log's events, part of the contract).
//! - [`codec`]: the events as the log stores them (`events.proto`); an
//!   official's personal data sealed with the official's own data key
//!   ([`codec::OfficialCodec`]).
//!
//! What comes next, on the service kit like placements:
//!
//! - the committee's approval (`CallCommand::Commit` with
//!   `ApplicationCommand::Approve`) and closing and cancelling grants (the
//!   application's event with `CallCommand::Release`) as one
//!   `Repository::execute_all` over `acasa_domain::pair::Pair<Call,
//!   Application>` (in the kit: two aggregates of different kinds, one
//!   atomic batch);
//! - the official's data keys in this service's vault table (destroyed by
//!   `EraseOfficial`), `commands` (seats and training places
//!   tried free-first like placements' offer places; `SESSION_FULL`,
//!   `CALL_TRAINING_FULL`, `ONE_GRANT_PER_PERSON` and the second application
//!   to a call from the claims held; a day's register and a session's
//!   completion as one command over its trainees; a cancelled session's
//!   trainees unenrolled), `grpc` with the roles of `grants.proto`;
//! - projections: the read models behind the queries (funnel by call,
//!   district, sex and age band; budget committed, ordered and spent; grants
//!   by district; training completion by audience; progress against
//!   configurable targets, 540 trained and 101 grants by default); this
//!   service's own projection of the registry (the eligibility facts, the
//!   rural classification of localities, consent) and of the referral
//!   system (outcomes that count as support, recorded once per referral by
//!   a worker);
//! - its `ServiceDef`, migrations and the binary's service table, deploy
//!   manifests, integration tests (the budget under racing approvals, the
//!   last seat under racing enrolments, rebuild equals live) and e2e tests.

pub mod codec;
mod commands;
pub mod domain;
pub mod grpc;
pub mod localities;
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
