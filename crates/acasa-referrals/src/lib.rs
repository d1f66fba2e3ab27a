//! The SME Referral System: partner organisations and their catalogues,
//! referrals of registered entrepreneurs between them with consent checks and
//! response-time SLAs, and per-partner event feeds.
//!
//! - [`domain`]: the partner and referral aggregates.
//! - [`codec`]: their events as the log stores them.
//! - [`validate`]: the edge's validation of requests.
//! - [`sealing`]: the shared profile, encrypted with the person's data key.
//! - [`projection`]: the read models (partners, referrals, profiles).
//! - [`consents`]: this service's projection of the registry's consent events.
//! - [`feed`]: the partner feed publisher.
//! - [`deadlines`]: the SLA deadline worker.
//! - [`nats_users`]: the partners' NATS accounts (the feed's access control plane).
//! - [`grpc`]: the transport glue; `commands` and `queries` behind it.

pub mod codec;
mod commands;
pub mod consents;
pub mod deadlines;
pub mod domain;
pub mod feed;
pub mod grpc;
pub mod nats_users;
pub mod projection;
mod queries;
pub mod sealing;
pub mod validate;

/// The service's name: stream `ACASA_REFERRALS`, subjects `acasa.referrals.>`, schema `referrals`.
pub const SERVICE: &str = "referrals";
/// The projection building `referrals.partners` and `referrals.referrals`.
pub const PROJECTION: &str = "referrals.referrals";
/// The projection of the registry's events into `referrals.people` and `referrals.consents`.
pub const CONSENTS_PROJECTION: &str = "referrals.consents";
/// The projection publishing the partner feeds (its checkpoint only).
pub const FEED_PROJECTION: &str = "referrals.feed";
/// The table of the service's per-person data keys.
pub const VAULT_TABLE: &str = "referrals_vault.data_keys";
/// The partner feed stream.
pub const FEED_STREAM: &str = "ACASA_PARTNER_FEED";
/// Subjects of partner commits in the service's log: the prefix, then the partner id.
const PARTNER_PREFIX: &str = "acasa.referrals.partner.";
/// Subjects of referral commits in the service's log: the prefix, then the referral id.
const REFERRAL_PREFIX: &str = "acasa.referrals.referral.";

use std::sync::Arc;

use acasa_domain::Aggregate as _;
use acasa_eventstore::{Repository, RepositoryConfig};
use acasa_projection::Projection;
use acasa_runtime::kit::{self, ProjectionSpec, ServeContext, ServiceDef, WorkContext, WorkerRun};
use futures::future::BoxFuture;
use tokio::sync::watch;
use tonic::service::Routes;

/// The referral system as the binary knows it.
#[derive(Clone, Copy, Debug)]
pub struct Referrals;

const PROJECTIONS: &[ProjectionSpec] = &[
    ProjectionSpec { name: PROJECTION, stream_of: SERVICE, rebuildable: true, build: read_model },
    // The registry's published consent facts, kept in this service's schema.
    ProjectionSpec { name: CONSENTS_PROJECTION, stream_of: "registry", rebuildable: true, build: consent_facts },
    // Partners hold positions in their feeds: never reset.
    ProjectionSpec { name: FEED_PROJECTION, stream_of: SERVICE, rebuildable: false, build: partner_feeds },
];

fn read_model(_: &WorkContext<'_>) -> anyhow::Result<Arc<dyn Projection>> {
    Ok(Arc::new(projection::ReferralsProjection))
}

fn consent_facts(ctx: &WorkContext<'_>) -> anyhow::Result<Arc<dyn Projection>> {
    Ok(Arc::new(consents::ConsentsProjection::new(ctx.vault(VAULT_TABLE)?)))
}

fn partner_feeds(ctx: &WorkContext<'_>) -> anyhow::Result<Arc<dyn Projection>> {
    Ok(Arc::new(feed::FeedProjection::new(ctx.store.jetstream().clone())))
}

impl ServiceDef for Referrals {
    fn name(&self) -> &'static str {
        SERVICE
    }

    fn default_port(&self) -> u16 {
        50054
    }

    fn apis(&self) -> &'static [&'static str] {
        &[grpc::ReferralService::NAME]
    }

    fn migrations(&self) -> sqlx::migrate::Migrator {
        sqlx::migrate!("./migrations")
    }

    fn projections(&self) -> &'static [ProjectionSpec] {
        PROJECTIONS
    }

    fn claim_kinds(&self) -> &'static [(&'static str, &'static str)] {
        &[(domain::IDNO_CLAIM, domain::Partner::KIND)]
    }

    fn prepare<'a>(&'a self, ctx: &'a WorkContext<'a>) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            feed::declare_stream(ctx.store.jetstream(), ctx.config.stream_replicas).await.map_err(anyhow::Error::msg)
        })
    }

    fn routes<'a>(&'a self, ctx: ServeContext<'a>) -> BoxFuture<'a, anyhow::Result<Routes>> {
        Box::pin(async move {
            let vault = kit::vault(ctx.config, ctx.pool.clone(), VAULT_TABLE)?;
            let limits = feed::StreamLimits::from_config(ctx.config);
            Ok(grpc::ReferralService::new(ctx.store, vault, ctx.positions, ctx.pool)
                .with_feed_streams(limits, ctx.draining)
                .routes(ctx.auth))
        })
    }

    fn workers(&self, ctx: &WorkContext<'_>, shutdown: watch::Receiver<bool>) -> anyhow::Result<Vec<WorkerRun>> {
        let repo = Repository::new(ctx.store.clone(), RepositoryConfig::default());
        let sweep = deadlines::Deadlines::new(repo, ctx.pool.clone(), ctx.config.sla_sweep_interval);
        Ok(vec![Box::pin(async move {
            sweep.run(shutdown).await;
            Ok(())
        })])
    }
}
