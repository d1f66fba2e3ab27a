//! Wiring of the roles from configuration and the table of services: every
//! role (`serve`, `project`, `migrate`, `rebuild`, `status`) reads
//! [`SERVICES`], so adding a service adds one entry here and nothing else in
//! the binary.

use std::{sync::Arc, time::Duration};

use acasa_eventstore::{EventStore, KeyedHasher, StreamSettings, WriterLimits};
use acasa_projection::{Positions, Projection, Worker, WorkerConfig};
use acasa_runtime::{
    Authenticator, Config, Draining, ServeOptions, Serving,
    health::{Probe, Readiness},
    kit::{self, ProjectionSpec, ServeContext, ServiceDef, WorkContext, WorkerRun},
    server::shutdown_flag,
    shutdown_signal,
};
use anyhow::Context as _;
use sqlx::{PgPool, postgres::PgPoolOptions};

/// Every service of the platform, as the binary knows it.
pub const SERVICES: &[&dyn ServiceDef] = &[
    &acasa_demo::Demo,
    &acasa_registry::Registry,
    &acasa_placements::Placements,
    &acasa_grants::Grants,
    &acasa_referrals::Referrals,
    &acasa_content::Content,
];

/// The names of the services, for the command line.
pub fn service_names() -> Vec<&'static str> {
    SERVICES.iter().map(|s| s.name()).collect()
}

/// The service called `name`.
pub fn service(name: &str) -> anyhow::Result<&'static dyn ServiceDef> {
    SERVICES
        .iter()
        .copied()
        .find(|s| s.name() == name)
        .with_context(|| format!("unknown service `{name}` (known: {})", service_names().join(", ")))
}

/// Every projection of every service, with its service.
pub fn projections() -> impl Iterator<Item = (&'static dyn ServiceDef, &'static ProjectionSpec)> {
    SERVICES.iter().flat_map(|s| s.projections().iter().map(move |p| (*s, p)))
}

/// The projection called `name`, with its service.
pub fn projection(name: &str) -> anyhow::Result<(&'static dyn ServiceDef, &'static ProjectionSpec)> {
    projections().find(|(_, p)| p.name == name).with_context(|| {
        let known: Vec<&str> = projections().map(|(_, p)| p.name).collect();
        format!("unknown projection `{name}` (known: {})", known.join(", "))
    })
}

/// A Postgres pool.
pub async fn pool(config: &Config, max: u32) -> anyhow::Result<PgPool> {
    pool_with(config, max, None).await
}

/// [`pool`] whose statements are cancelled after `statement_timeout`.
pub async fn pool_with(config: &Config, max: u32, statement_timeout: Option<Duration>) -> anyhow::Result<PgPool> {
    let mut options: sqlx::postgres::PgConnectOptions =
        config.database_url.parse().context("parsing ACASA_DATABASE_URL")?;
    if let Some(t) = statement_timeout {
        options = options.options([("statement_timeout", format!("{}ms", t.as_millis().max(1)))]);
    }
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_millis(u64::from(config.db_acquire_timeout_ms.max(1))))
        .connect_with(options)
        .await
        .context("connecting to Postgres (ACASA_DATABASE_URL)")
}

/// The statement timeout of a server's queries (`ACASA_DB_STATEMENT_TIMEOUT_MS`).
pub fn statement_timeout(config: &Config) -> Duration {
    Duration::from_millis(u64::from(config.db_statement_timeout_ms))
}

/// Applies the projection runtime's migrations, then every service's own.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    kit::migrate(pool, acasa_projection::migrations(), "the projection runtime").await?;
    for s in SERVICES {
        kit::migrate(pool, s.migrations(), s.name()).await?;
    }
    Ok(())
}

/// A NATS connection that keeps reconnecting.
///
/// `user:password@` in `ACASA_NATS_URL` logs in as that user (async-nats itself
/// ignores credentials inside the URL). A comma-separated list names several
/// servers of a cluster: the client connects to one and fails over to the others.
pub async fn nats(config: &Config, role: &str) -> anyhow::Result<async_nats::Client> {
    let (url, credentials) = acasa_runtime::nats_url::split_url_credentials(&config.nats_url);
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("acasa-{role}"))
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5));
    if let Some((user, password)) = credentials {
        options = options.user_and_password(user, password);
    }
    // async-nats parses one string as one URL: a list is passed as a list.
    let servers: Vec<&str> = url.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    options.connect(servers).await.context("connecting to NATS (ACASA_NATS_URL)")
}

/// Opens a service's event store.
pub async fn store(config: &Config, client: async_nats::Client, service: &str) -> anyhow::Result<EventStore> {
    let hasher = KeyedHasher::new(Config::read_secret(&config.hash_key_file)?);
    let mut settings = StreamSettings::new(service, hasher);
    settings.replicas = config.stream_replicas;
    settings.duplicate_window = config.duplicate_window;
    settings.writer = WriterLimits {
        in_flight: config.writer_in_flight.clamp(1, 50),
        max_messages: config.writer_max_messages.clamp(1, 1000),
    };
    EventStore::open(client, settings).await.context("declaring the service's stream")
}

/// Serves a service until SIGTERM or SIGINT; then its streams end, and the
/// calls still in flight get `ACASA_DRAIN_GRACE_MS` to finish. Health follows
/// Postgres and NATS (`acasa_runtime::health`).
pub async fn serve(config: &Config, name: &str) -> anyhow::Result<()> {
    let svc = service(name)?;
    let auth = Authenticator::from_config(config)?;
    let client = nats(config, svc.name()).await?;
    let store = store(config, client.clone(), svc.name()).await?;
    store.import_reservations(svc.claim_kinds()).await.context("importing the reservations of an earlier version")?;
    let pool = pool_with(config, config.db_max_connections, Some(statement_timeout(config))).await?;
    svc.prepare(&WorkContext { config, store: store.clone(), pool: pool.clone() }).await?;
    let positions = Positions::start(pool.clone()).with_log(store.jetstream().clone());
    let (drain, draining) = Draining::channel();
    let readiness = Readiness { pool: pool.clone(), nats: client, interval: config.health_interval };
    let routes = svc.routes(ServeContext { config, store, pool, positions, auth: &auth, draining }).await?;
    let addr = config.grpc_addr.unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], svc.default_port())));
    let options = ServeOptions { drain: Some(drain), readiness: Some(readiness), ..ServeOptions::from_config(config) };
    let serving = Serving::start_with(addr, routes, svc.apis(), shutdown_signal(), options).await?;
    println!("acasa {}: gRPC on {}", svc.name(), serving.local_addr);
    serving.wait().await?;
    Ok(())
}

/// Runs a service's projections (each led by one process at a time) and
/// background workers until SIGTERM or SIGINT. One of them failing for good
/// (e.g. its leadership lock lost) ends the process, so the supervisor
/// restarts all of them, as with one.
pub async fn project(config: &Config, name: &str) -> anyhow::Result<()> {
    let svc = service(name)?;
    let client = nats(config, &format!("{}-projection", svc.name())).await?;
    let store = store(config, client.clone(), svc.name()).await?;
    // Each projection's leader holds a lock connection besides its batches.
    let connections = u32::try_from(svc.projections().len() * 4).unwrap_or(16).max(4);
    let pool = pool_with(config, connections, Some(statement_timeout(config) * 10)).await?;
    let ctx = WorkContext { config, store: store.clone(), pool: pool.clone() };
    svc.prepare(&ctx).await?;
    let shutdown = shutdown_flag();
    let mut runs: Vec<WorkerRun> = Vec::new();
    for spec in svc.projections() {
        let stream = if spec.stream_of == svc.name() {
            store.clone()
        } else {
            self::store(config, client.clone(), spec.stream_of).await?
        };
        let worker = worker_on((spec.build)(&ctx)?, &stream, pool.clone());
        let shutdown = shutdown.clone();
        runs.push(Box::pin(async move { worker.run(shutdown).await.map_err(anyhow::Error::from) }));
    }
    runs.extend(svc.workers(&ctx, shutdown.clone())?);
    // The probe: grpc.health.v1 on ACASA_PROBE_ADDR, readiness following
    // Postgres and NATS, liveness while the workers run (one failing ends the process).
    let _probe = match config.probe_addr {
        Some(addr) => {
            let (drain, draining) = Draining::channel();
            let mut stopping = shutdown;
            tokio::spawn(async move {
                let _ = stopping.wait_for(|s| *s).await;
                let _ = drain.send(true);
            });
            let readiness = Readiness { pool: pool.clone(), nats: client.clone(), interval: config.health_interval };
            let probe = Probe::start(addr, readiness, draining).await.context("binding ACASA_PROBE_ADDR")?;
            println!("acasa {} workers: health probe on {}", svc.name(), probe.local_addr);
            Some(probe)
        }
        None => None,
    };
    futures::future::try_join_all(runs).await?;
    Ok(())
}

/// A worker of `projection` over `store`'s stream, in batches of up to 500 commits.
pub fn worker_on<P: Projection + ?Sized>(projection: Arc<P>, store: &EventStore, pool: PgPool) -> Worker<P> {
    Worker::new(
        projection,
        pool,
        store.jetstream().clone(),
        WorkerConfig { stream: store.stream_name().to_owned(), batch_size: 500, filter_subject: store.commit_filter() },
    )
}

/// Resets a projection and replays its stream into it.
pub async fn rebuild(config: &Config, name: &str) -> anyhow::Result<()> {
    let (svc, spec) = projection(name)?;
    anyhow::ensure!(spec.rebuildable, "{name} is never rebuilt: partners hold positions in what it publishes");
    let client = nats(config, "rebuild").await?;
    let own = store(config, client.clone(), svc.name()).await?;
    let stream = store(config, client, spec.stream_of).await?;
    let pool = pool(config, 4).await?;
    let target = stream.last_sequence().await?;
    let ctx = WorkContext { config, store: own, pool: pool.clone() };
    let Some(reached) = replay_from_start(&ctx, spec, &stream, target).await? else {
        println!("{name}: reset; the running projection worker is replaying the stream (up to {target})");
        return Ok(());
    };
    let status = acasa_projection::status(&pool, name).await?;
    println!("{name}: rebuilt up to position {reached}; {} poison commit(s)", status.poison_count);
    Ok(())
}

/// Resets the projection `spec` and replays `stream` into it up to `target`.
/// `None`: another worker leads the projection and replays it instead.
pub async fn replay_from_start(
    ctx: &WorkContext<'_>,
    spec: &ProjectionSpec,
    stream: &EventStore,
    target: u64,
) -> anyhow::Result<Option<u64>> {
    let projection = (spec.build)(ctx)?;
    acasa_projection::rebuild_reset(&ctx.pool, &*projection).await?;
    let mut worker = worker_on(projection, stream, ctx.pool.clone());
    if !worker.try_lead().await? {
        return Ok(None);
    }
    Ok(Some(worker.catch_up_to(target).await?))
}

/// Prints the checkpoint and poison commits of `name`, or of every projection.
pub async fn status(config: &Config, name: Option<&str>) -> anyhow::Result<()> {
    let names: Vec<&str> = match name {
        Some(n) => vec![projection(n)?.1.name],
        None => projections().map(|(_, p)| p.name).collect(),
    };
    let pool = pool(config, 1).await?;
    for n in names {
        let s = acasa_projection::status(&pool, n).await?;
        println!("projection {}: position {}, {} poison commit(s)", s.name, s.position, s.poison_count);
        if let Some((seq, reason)) = s.last_poison {
            println!("  last poison: sequence {seq}: {reason}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The services' migrations share sqlx's table of applied versions: two
    /// crates choosing one version would make one of them silently skipped.
    #[test]
    fn migration_versions_are_unique_across_crates() {
        let mut seen = std::collections::HashMap::new();
        let all = std::iter::once(("projection runtime", acasa_projection::migrations()))
            .chain(SERVICES.iter().map(|s| (s.name(), s.migrations())));
        for (owner, migrator) in all {
            for m in migrator.iter() {
                if let Some(other) = seen.insert(m.version, owner) {
                    panic!("migration {} of {owner} has the version of one of {other}", m.version);
                }
            }
        }
        assert!(seen.len() >= 6, "{seen:?}");
    }
}
