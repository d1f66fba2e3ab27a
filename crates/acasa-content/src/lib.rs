//! Content: multilingual information for migrants abroad (issue 14) —
//! `acasa.content.v1`, served by `acasa serve content`.
//!
//! - [`domain`]: the article (one version per language, each with its own
//!   draft → in review → published → unpublished states and revision
//!   history; translations recording the source revision they translate),
//!   the agreement (the bilateral labour and social-security agreements
//!   catalogue) and the campaign aggregates; pure, given/when/then tested.
//! - [`domain::locale`]: BCP 47 locales and the fallback chain (`ru-MD → ru → ro → en`).
//! - [`domain::diff`]: what changed between two revisions (a stale translation's diff).
//! - [`domain::render`]: article bodies rendered safely (no HTML or script reaches a reader).
//! - [`domain::search`]: each language's Postgres text-search configuration.
//! - [`validate`]: requests into domain values, every bad field named.
//! - [`codec`]: the events as the log stores them (`events.proto`).
//! - `commands` and `queries` behind [`grpc`]'s `ContentService` (the
//!   editorial side: editors, reviewers), and `public` behind its
//!   `PublicContentService` (no login, rate-limited per client).
//! - [`projection`]: the read models; [`deadlines`]: the worker recording
//!   scheduled publications and expiries.
//! - [`sender`]: delivery of campaign messages through a pluggable
//!   [`sender::Sender`]: e-mail over SMTP (lettre, one reused connection) and
//!   SMS over a provider's gateway; errors say whether to retry and name no
//!   recipient.

pub mod audience;
pub mod codec;
mod commands;
pub mod deadlines;
pub mod domain;
pub mod grpc;
pub mod outbox;
pub mod projection;
mod public;
mod queries;
pub mod sender;
pub mod validate;

/// The service's name: stream `ACASA_CONTENT`, subjects `acasa.content.>`, schema `content`.
pub const SERVICE: &str = "content";
/// The projection building the service's read models from its own log.
pub const PROJECTION: &str = "content.content";
/// The projection of the registry's events into `content.audience`.
pub const AUDIENCE_PROJECTION: &str = "content.audience";

use std::sync::Arc;

use acasa_eventstore::{Repository, RepositoryConfig};
use acasa_projection::Projection;
use acasa_runtime::{
    Config,
    kit::{ProjectionSpec, ServeContext, ServiceDef, WorkContext, WorkerRun},
    rate::RateLimiter,
};
use anyhow::Context as _;
use futures::future::BoxFuture;
use tokio::sync::watch;
use tonic::service::Routes;

use crate::domain::locale::FallbackChain;

/// The content service as the binary knows it.
#[derive(Clone, Copy, Debug)]
pub struct Content;

const PROJECTIONS: &[ProjectionSpec] = &[
    ProjectionSpec { name: PROJECTION, stream_of: SERVICE, rebuildable: true, build: read_model },
    // Whom campaigns may reach, kept in this service's schema.
    ProjectionSpec { name: AUDIENCE_PROJECTION, stream_of: "registry", rebuildable: true, build: audience_view },
];

fn person_data(config: &Config) -> anyhow::Result<acasa_runtime::person_data::RegistryPersonData> {
    use acasa_runtime::person_data::{Purpose, RegistryPersonData};
    RegistryPersonData::from_config(config, SERVICE, Purpose::Campaigns)
}

fn audience_view(ctx: &WorkContext<'_>) -> anyhow::Result<Arc<dyn Projection>> {
    Ok(Arc::new(audience::AudienceProjection::new(Arc::new(person_data(ctx.config)?))))
}

fn read_model(_: &WorkContext<'_>) -> anyhow::Result<Arc<dyn Projection>> {
    Ok(Arc::new(projection::ContentProjection))
}

/// The configured fallback chains (`ACASA_CONTENT_FALLBACK`, else the default).
pub fn fallback_chain(config: &Config) -> anyhow::Result<FallbackChain> {
    // Set but blank (e.g. compose's `${VAR:-}`) means unset.
    let text = config.content_fallback.as_deref().filter(|t| !t.trim().is_empty()).unwrap_or(FallbackChain::DEFAULT);
    FallbackChain::parse(text).context("ACASA_CONTENT_FALLBACK")
}

impl ServiceDef for Content {
    fn name(&self) -> &'static str {
        SERVICE
    }

    fn default_port(&self) -> u16 {
        50055
    }

    fn apis(&self) -> &'static [&'static str] {
        &[grpc::ContentService::NAME, grpc::PublicContentService::NAME]
    }

    fn migrations(&self) -> sqlx::migrate::Migrator {
        sqlx::migrate!("./migrations")
    }

    fn projections(&self) -> &'static [ProjectionSpec] {
        PROJECTIONS
    }

    fn routes<'a>(&'a self, ctx: ServeContext<'a>) -> BoxFuture<'a, anyhow::Result<Routes>> {
        Box::pin(async move {
            let limiter = RateLimiter::new(ctx.config.content_public_rate, ctx.config.content_public_burst)
                .trusting_forwarded(ctx.config.content_trust_forwarded);
            let public = grpc::PublicContentService::new(ctx.pool.clone(), fallback_chain(ctx.config)?, limiter);
            let editorial = grpc::ContentService::new(ctx.store, ctx.positions, ctx.pool);
            Ok(grpc::routes(editorial, public, ctx.auth))
        })
    }

    fn workers(&self, ctx: &WorkContext<'_>, shutdown: watch::Receiver<bool>) -> anyhow::Result<Vec<WorkerRun>> {
        let repo = Repository::new(ctx.store.clone(), RepositoryConfig::default());
        let sweep = deadlines::Deadlines::new(repo, ctx.pool.clone(), ctx.config.content_sweep_interval);
        let smtp = sender::SmtpSettings::from_env().map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut senders: Vec<Arc<dyn sender::Sender>> = Vec::new();
        for _ in 0..ctx.config.content_send_connections {
            senders.push(Arc::new(sender::SmtpSender::new(smtp.clone()).map_err(|e| anyhow::anyhow!("{e}"))?));
        }
        let campaigns = outbox::Campaigns::new(
            Repository::new(ctx.store.clone(), RepositoryConfig::default()),
            ctx.pool.clone(),
            Arc::new(person_data(ctx.config)?),
            senders,
            fallback_chain(ctx.config)?,
            outbox::Settings {
                public_url: ctx.config.content_public_url.clone(),
                interval: ctx.config.content_send_interval,
            },
        );
        let stop = shutdown.clone();
        Ok(vec![
            Box::pin(async move {
                sweep.run(shutdown).await;
                Ok(())
            }),
            Box::pin(async move {
                campaigns.run(stop).await;
                Ok(())
            }),
        ])
    }
}
