//! Wiring of the roles: connections, stores, services and workers from configuration.

use std::{sync::Arc, time::Duration};

use acasa_demo::{projection::CountersProjection, service::CounterService};
use acasa_eventstore::{EventStore, KeyedHasher, Repository, RepositoryConfig, StreamSettings};
use acasa_projection::{Positions, Projection, Worker, WorkerConfig};
use acasa_referrals::{
    consents::ConsentsProjection, deadlines::Deadlines, feed::FeedProjection, projection::ReferralsProjection,
    service::ReferralService,
};
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
        Service::Referrals => acasa_referrals::SERVICE,
    }
}

/// The service's default gRPC address.
fn default_addr(service: Service) -> std::net::SocketAddr {
    let port = match service {
        Service::Demo => 50050,
        Service::Registry => 50051,
        Service::Referrals => 50054,
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
///
/// `user:password@` in `ACASA_NATS_URL` logs in as that user (async-nats itself
/// ignores credentials inside the URL).
pub async fn nats(config: &Config, role: &str) -> anyhow::Result<async_nats::Client> {
    let (url, credentials) = crate::nats_users::split_url_credentials(&config.nats_url);
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("acasa-{role}"))
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5));
    if let Some((user, password)) = credentials {
        options = options.user_and_password(user, password);
    }
    options.connect(url.as_str()).await.context("connecting to NATS (ACASA_NATS_URL)")
}

/// Opens a service's event store.
pub async fn store(config: &Config, client: async_nats::Client, service: &str) -> anyhow::Result<EventStore> {
    let hasher = KeyedHasher::new(Config::read_secret(&config.hash_key_file)?);
    let mut settings = StreamSettings::new(service, hasher);
    settings.replicas = config.stream_replicas;
    settings.duplicate_window = config.duplicate_window;
    EventStore::open(client, settings).await.context("declaring the service's stream")
}

/// The vault of the registry's personal data keys.
pub fn registry_vault(config: &Config, pool: PgPool) -> anyhow::Result<Vault> {
    vault(config, pool, acasa_registry::VAULT_TABLE)
}

/// The vault of the referrals service's personal data keys.
pub fn referrals_vault(config: &Config, pool: PgPool) -> anyhow::Result<Vault> {
    vault(config, pool, acasa_referrals::VAULT_TABLE)
}

fn vault(config: &Config, pool: PgPool, table: &str) -> anyhow::Result<Vault> {
    let master = MasterKey::from_bytes(&Config::read_secret(&config.master_key_file)?)
        .context("ACASA_MASTER_KEY_FILE must hold a 32-byte key (64 hex digits)")?;
    Ok(Vault::new(pool, master, table)?)
}

/// Declares the partner feed stream.
pub async fn feed_stream(config: &Config, store: &EventStore) -> anyhow::Result<()> {
    acasa_referrals::feed::declare_stream(store.jetstream(), config.stream_replicas).await.map_err(anyhow::Error::msg)
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
    import_reservations(service, &store).await?;
    let serving = match service {
        Service::Demo => {
            let repo = Repository::new(store, RepositoryConfig::default());
            let routes = CounterService::new(repo, positions, pool).routes(&auth);
            Serving::start(addr, routes, &[CounterService::NAME], shutdown_signal()).await?
        }
        Service::Registry => {
            let vault = registry_vault(config, pool.clone())?;
            let repo = Repository::new(store, RepositoryConfig::default());
            let routes = RegistryService::new(repo, vault, positions, pool).routes(&auth);
            Serving::start(addr, routes, &[RegistryService::NAME], shutdown_signal()).await?
        }
        Service::Referrals => {
            let vault = referrals_vault(config, pool.clone())?;
            feed_stream(config, &store).await?;
            let routes = ReferralService::new(store, vault, positions, pool).routes(&auth);
            Serving::start(addr, routes, &[ReferralService::NAME], shutdown_signal()).await?
        }
    };
    println!("acasa {svc}: gRPC on {}", serving.local_addr);
    serving.wait().await?;
    Ok(())
}

/// Claims kept by earlier versions in a KV bucket become claims in the stream.
async fn import_reservations(service: Service, store: &EventStore) -> anyhow::Result<()> {
    use acasa_domain::Aggregate as _;
    let kinds: &[(&str, &str)] = match service {
        Service::Demo => &[(acasa_demo::domain::NAME_CLAIM, acasa_demo::domain::Counter::KIND)],
        Service::Registry => &[(acasa_registry::domain::IDNP_CLAIM, acasa_registry::domain::Person::KIND)],
        Service::Referrals => &[(acasa_referrals::domain::IDNO_CLAIM, acasa_referrals::domain::Partner::KIND)],
    };
    store.import_reservations(kinds).await.context("importing the reservations of an earlier version")?;
    Ok(())
}

fn projection_for(config: &Config, service: Service, pool: &PgPool) -> anyhow::Result<Arc<dyn Projection>> {
    Ok(match service {
        Service::Demo => Arc::new(CountersProjection),
        Service::Registry => Arc::new(PeopleProjection::new(registry_vault(config, pool.clone())?)),
        Service::Referrals => Arc::new(ReferralsProjection),
    })
}

fn service_of_projection(projection: &str) -> Option<Service> {
    match projection {
        acasa_demo::PROJECTION => Some(Service::Demo),
        acasa_registry::PROJECTION => Some(Service::Registry),
        acasa_referrals::PROJECTION => Some(Service::Referrals),
        _ => None,
    }
}

/// Runs a service's projection worker until SIGTERM or SIGINT.
pub async fn project(config: &Config, service: Service) -> anyhow::Result<()> {
    let svc = name(service);
    let client = nats(config, &format!("{svc}-projection")).await?;
    let store = store(config, client, svc).await?;
    // Referrals runs three projections (each leader holds a lock connection)
    // and the deadline worker in one process.
    let pool = pool(config, if service == Service::Referrals { 12 } else { 4 }).await?;
    let worker = projection_worker(config, service, &store, pool.clone())?;
    if service != Service::Referrals {
        worker.run(shutdown_flag()).await?;
        return Ok(());
    }
    let registry = self::store(config, store.client().clone(), acasa_registry::SERVICE).await?;
    let consents = consents_worker(config, &registry, pool.clone())?;
    feed_stream(config, &store).await?;
    let feed = feed_worker(&store, pool.clone());
    let deadlines = deadline_worker(config, &store, pool);
    let shutdown = shutdown_flag();
    // One worker failing for good (e.g. its leadership lock lost) ends the
    // process, so the supervisor restarts all of them, as with one projection.
    tokio::try_join!(
        worker.run(shutdown.clone()),
        consents.run(shutdown.clone()),
        feed.run(shutdown.clone()),
        async {
            deadlines.run(shutdown).await;
            Ok(())
        },
    )?;
    Ok(())
}

/// The referrals service's projection of the registry's consent events.
pub fn consents_worker(
    config: &Config,
    registry: &EventStore,
    pool: PgPool,
) -> anyhow::Result<Worker<ConsentsProjection>> {
    let projection = Arc::new(ConsentsProjection::new(referrals_vault(config, pool.clone())?));
    Ok(worker_on(projection, registry, pool))
}

/// The partner feed publisher.
pub fn feed_worker(store: &EventStore, pool: PgPool) -> Worker<FeedProjection> {
    worker_on(Arc::new(FeedProjection::new(store.jetstream().clone())), store, pool)
}

/// A worker of `projection` over `store`'s stream, in batches of up to 500 commits.
fn worker_on<P: Projection + ?Sized>(projection: Arc<P>, store: &EventStore, pool: PgPool) -> Worker<P> {
    Worker::new(
        projection,
        pool,
        store.jetstream().clone(),
        WorkerConfig { stream: store.stream_name().to_owned(), batch_size: 500 },
    )
}

/// The SLA deadline worker.
pub fn deadline_worker(config: &Config, store: &EventStore, pool: PgPool) -> Deadlines {
    Deadlines::new(Repository::new(store.clone(), RepositoryConfig::default()), pool, config.sla_sweep_interval)
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
    Ok(worker_on(projection, store, pool))
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
