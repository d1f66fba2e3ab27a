//! Wiring of the roles: connections, stores, services and workers from configuration.

use std::{sync::Arc, time::Duration};

use acasa_demo::{projection::CountersProjection, service::CounterService};
use acasa_eventstore::{EventStore, KeyedHasher, Repository, RepositoryConfig, Reservations, StreamSettings};
use acasa_projection::{Positions, Projection, Worker, WorkerConfig};
use acasa_registry::{projection::PeopleProjection, service::RegistryService};
use acasa_runtime::{Authenticator, Config, Serving, server::shutdown_flag, shutdown_signal};
use acasa_vault::{MasterKey, Vault};
use anyhow::Context as _;
use sqlx::{PgPool, postgres::PgPoolOptions};

use crate::Service;

/// The service's name in streams, subjects and schemas.
pub fn name(service: Service) -> &'static str {
    match service {
        Service::Demo => acasa_demo::SERVICE,
        Service::Registry => acasa_registry::SERVICE,
    }
}

/// The service's default gRPC address.
fn default_addr(service: Service) -> std::net::SocketAddr {
    let port = match service {
        Service::Demo => 50050,
        Service::Registry => 50051,
    };
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

/// A Postgres pool.
pub async fn pool(config: &Config, max: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&config.database_url)
        .await
        .context("connecting to Postgres (ACASA_DATABASE_URL)")
}

/// Applies the embedded migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::migrate!("./migrations").run(pool).await.context("applying migrations")
}

/// A NATS connection that keeps reconnecting.
pub async fn nats(config: &Config, role: &str) -> anyhow::Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .name(format!("acasa-{role}"))
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .connect(&config.nats_url)
        .await
        .context("connecting to NATS (ACASA_NATS_URL)")
}

/// Opens a service's event store.
pub async fn store(config: &Config, client: async_nats::Client, service: &str) -> anyhow::Result<EventStore> {
    let mut settings = StreamSettings::new(service);
    settings.replicas = config.stream_replicas;
    settings.duplicate_window = config.duplicate_window;
    EventStore::open(client, settings).await.context("declaring the service's stream")
}

/// The vault of the registry's personal data keys.
pub fn registry_vault(config: &Config, pool: PgPool) -> anyhow::Result<Vault> {
    let master = MasterKey::from_bytes(&Config::read_secret(&config.master_key_file)?)
        .context("ACASA_MASTER_KEY_FILE must hold a 32-byte key (64 hex digits)")?;
    Ok(Vault::new(pool, master, acasa_registry::VAULT_TABLE)?)
}

/// The service's reservations bucket.
async fn reservations(config: &Config, store: &EventStore, svc: &str) -> anyhow::Result<Reservations> {
    let hasher = KeyedHasher::new(Config::read_secret(&config.hash_key_file)?);
    Ok(Reservations::open(store.jetstream(), svc, config.stream_replicas, hasher).await?)
}

/// Serves a service until SIGTERM or SIGINT.
pub async fn serve(config: &Config, service: Service) -> anyhow::Result<()> {
    let svc = name(service);
    let auth = Authenticator::from_config(config)?;
    let client = nats(config, svc).await?;
    let store = store(config, client, svc).await?;
    let pool = pool(config, config.db_max_connections).await?;
    let positions = Positions::start(pool.clone());
    let addr = config.grpc_addr.unwrap_or_else(|| default_addr(service));
    let serving = match service {
        Service::Demo => {
            let reservations = reservations(config, &store, svc).await?;
            let repo = Repository::new(store, RepositoryConfig::default());
            let routes = CounterService::new(repo, reservations, positions, pool).routes(&auth);
            Serving::start(addr, routes, &[CounterService::NAME], shutdown_signal()).await?
        }
        Service::Registry => {
            let reservations = reservations(config, &store, svc).await?;
            let vault = registry_vault(config, pool.clone())?;
            let repo = Repository::new(store, RepositoryConfig::default());
            let routes = RegistryService::new(repo, reservations, vault, positions, pool).routes(&auth);
            Serving::start(addr, routes, &[RegistryService::NAME], shutdown_signal()).await?
        }
    };
    println!("acasa {svc}: gRPC on {}", serving.local_addr);
    serving.wait().await?;
    Ok(())
}

fn projection_for(config: &Config, service: Service, pool: &PgPool) -> anyhow::Result<Arc<dyn Projection>> {
    Ok(match service {
        Service::Demo => Arc::new(CountersProjection),
        Service::Registry => Arc::new(PeopleProjection::new(registry_vault(config, pool.clone())?)),
    })
}

fn service_of_projection(projection: &str) -> Option<Service> {
    match projection {
        acasa_demo::PROJECTION => Some(Service::Demo),
        acasa_registry::PROJECTION => Some(Service::Registry),
        _ => None,
    }
}

/// Runs a service's projection worker until SIGTERM or SIGINT.
pub async fn project(config: &Config, service: Service) -> anyhow::Result<()> {
    let svc = name(service);
    let client = nats(config, &format!("{svc}-projection")).await?;
    let store = store(config, client, svc).await?;
    let pool = pool(config, 4).await?;
    let worker = projection_worker(config, service, &store, pool)?;
    worker.run(shutdown_flag()).await?;
    Ok(())
}

/// Resets a projection and replays its stream into it.
pub async fn rebuild(config: &Config, projection: &str) -> anyhow::Result<()> {
    let service = service_of_projection(projection).with_context(|| format!("unknown projection `{projection}`"))?;
    let svc = name(service);
    let client = nats(config, "rebuild").await?;
    let store = store(config, client, svc).await?;
    let pool = pool(config, 4).await?;
    let target = store.last_sequence().await?;
    let Some(reached) = replay_from_start(config, service, &store, &pool, target).await? else {
        println!("{projection}: reset; the running projection worker is replaying the stream (up to {target})");
        return Ok(());
    };
    let status = acasa_projection::status(&pool, projection).await?;
    println!("{projection}: rebuilt up to position {reached}; {} poison commit(s)", status.poison_count);
    Ok(())
}

/// The projection worker of `service`.
pub fn projection_worker(
    config: &Config,
    service: Service,
    store: &EventStore,
    pool: PgPool,
) -> anyhow::Result<Worker<dyn Projection>> {
    let projection = projection_for(config, service, &pool)?;
    Ok(Worker::new(
        projection,
        pool,
        store.jetstream().clone(),
        WorkerConfig { stream: store.stream_name().to_owned(), batch_size: 500 },
    ))
}

/// Resets the service's projection and replays its stream up to `target`.
/// `None`: another worker leads the projection and replays it instead.
pub async fn replay_from_start(
    config: &Config,
    service: Service,
    store: &EventStore,
    pool: &PgPool,
    target: u64,
) -> anyhow::Result<Option<u64>> {
    acasa_projection::rebuild_reset(pool, &*projection_for(config, service, pool)?).await?;
    let mut worker = projection_worker(config, service, store, pool.clone())?;
    if !worker.try_lead().await? {
        return Ok(None);
    }
    Ok(Some(worker.catch_up_to(target).await?))
}
