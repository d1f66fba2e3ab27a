//! How a service declares itself to the binary: its name and port, the gRPC
//! APIs it serves, its migrations, its projections and its background
//! workers. The binary keeps one table of [`ServiceDef`]s; adding a service
//! adds its crate and one entry there, and `serve`, `project`, `migrate`,
//! `rebuild` and `status` know it.

use std::sync::Arc;

use acasa_eventstore::EventStore;
use acasa_projection::{Positions, Projection};
use acasa_vault::{MasterKey, Vault};
use anyhow::Context as _;
use futures::future::BoxFuture;
use sqlx::PgPool;
use tokio::sync::watch;
use tonic::service::Routes;

use crate::{Authenticator, Config};

/// What a service's gRPC server is built from.
#[derive(Debug)]
pub struct ServeContext<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// The service's own stream.
    pub store: EventStore,
    /// The database (its read models).
    pub pool: PgPool,
    /// Read-your-writes waits on the checkpoints.
    pub positions: Positions,
    /// Verifies bearer tokens.
    pub auth: &'a Authenticator,
    /// Turns true when the server starts shutting down: streams end then.
    pub draining: crate::Draining,
}

/// What a service's projections and workers are built from.
#[derive(Debug)]
pub struct WorkContext<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// The service's own stream.
    pub store: EventStore,
    /// The database.
    pub pool: PgPool,
}

impl WorkContext<'_> {
    /// The vault of personal data keys in `table`, under the configured master key.
    pub fn vault(&self, table: &str) -> anyhow::Result<Vault> {
        vault(self.config, self.pool.clone(), table)
    }
}

/// The vault of personal data keys in `table`, under the configured master key.
pub fn vault(config: &Config, pool: PgPool, table: &str) -> anyhow::Result<Vault> {
    let master = MasterKey::from_bytes(&Config::read_secret(&config.master_key_file)?)
        .context("ACASA_MASTER_KEY_FILE must hold a 32-byte key (64 hex digits)")?;
    Ok(Vault::new(pool, master, table)?)
}

/// One projection of a service.
#[derive(Clone, Copy)]
pub struct ProjectionSpec {
    /// Its name, the key of its checkpoint (`<service>.<read model>`).
    pub name: &'static str,
    /// The service whose stream it reads: its own, or another's whose
    /// published facts it keeps (referrals keeps the registry's consents).
    pub stream_of: &'static str,
    /// Whether `acasa rebuild` may reset and replay it. A partner feed may
    /// not: partners hold positions in it.
    pub rebuildable: bool,
    /// Builds it.
    pub build: fn(&WorkContext<'_>) -> anyhow::Result<Arc<dyn Projection>>,
}

impl std::fmt::Debug for ProjectionSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionSpec")
            .field("name", &self.name)
            .field("stream_of", &self.stream_of)
            .field("rebuildable", &self.rebuildable)
            .finish()
    }
}

/// A background worker's run until the shutdown flag turns true.
pub type WorkerRun = BoxFuture<'static, anyhow::Result<()>>;

/// A service as the binary knows it.
pub trait ServiceDef: Sync {
    /// Its name: stream `ACASA_<NAME>`, subjects `acasa.<name>.>`, schema `<name>`.
    fn name(&self) -> &'static str;

    /// Its gRPC port on 127.0.0.1 when `ACASA_GRPC_ADDR` is not set.
    fn default_port(&self) -> u16;

    /// The full names of the gRPC services it serves: health reports them,
    /// reflection lists exactly these.
    fn apis(&self) -> &'static [&'static str];

    /// Its own migrations (its schema and vault tables).
    fn migrations(&self) -> sqlx::migrate::Migrator;

    /// Its projections, run by `acasa project <name>`.
    fn projections(&self) -> &'static [ProjectionSpec];

    /// The values it claims, each with the aggregate kind holding it: to
    /// import the reservations that earlier versions kept in a KV bucket.
    fn claim_kinds(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// Declares what its processes use besides its stream (e.g. the partner
    /// feed's stream), idempotently, before serving or projecting.
    fn prepare<'a>(&'a self, ctx: &'a WorkContext<'a>) -> BoxFuture<'a, anyhow::Result<()>> {
        let _ = ctx;
        Box::pin(async { Ok(()) })
    }

    /// Its gRPC routes, behind bearer authentication.
    fn routes<'a>(&'a self, ctx: ServeContext<'a>) -> BoxFuture<'a, anyhow::Result<Routes>>;

    /// Its background workers besides the projections (e.g. a deadline
    /// sweep), run by `acasa project <name>` until `shutdown` turns true.
    fn workers(&self, ctx: &WorkContext<'_>, shutdown: watch::Receiver<bool>) -> anyhow::Result<Vec<WorkerRun>> {
        let _ = (ctx, shutdown);
        Ok(Vec::new())
    }
}

impl std::fmt::Debug for dyn ServiceDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceDef").field("name", &self.name()).finish()
    }
}

/// Applies `migrator` beside the other services' migrations (they share
/// sqlx's table of applied versions, so each ignores the others').
pub async fn migrate(pool: &PgPool, mut migrator: sqlx::migrate::Migrator, what: &str) -> anyhow::Result<()> {
    migrator.set_ignore_missing(true);
    migrator.run(pool).await.with_context(|| format!("applying the migrations of {what}"))
}
