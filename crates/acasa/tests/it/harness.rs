//! Per-test environment: servers, a migrated database, configuration, and
//! helpers to drive the demo service.

use std::{collections::HashMap, sync::OnceLock, time::Duration};

use acasa_demo::domain::{Amount, Counter, CounterCommand, CounterName};
use acasa_domain::RequestId;
use acasa_eventstore::{CommandMeta, EventStore, KeyedHasher, Repository, RepositoryConfig, StreamSettings};
use acasa_testkit::{NatsServer, PostgresServer};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use sqlx::PgPool;
use tempfile::TempDir;
use uuid::Uuid;

pub struct Env {
    pub nats: NatsServer,
    /// Kept alive for the test's duration.
    pub _pg: PostgresServer,
    pub db_url: String,
    pub pool: PgPool,
    pub dir: TempDir,
}

pub const JWT_KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

impl Env {
    pub async fn new() -> Env {
        let (nats, pg) = tokio::join!(NatsServer::start(), PostgresServer::start());
        let (nats, pg) = (nats.unwrap(), pg.unwrap());
        let db_url = pg.create_database().await.unwrap();
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(8).connect(&db_url).await.unwrap();
        acasa::app::migrate(&pool).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
        std::fs::write(dir.path().join("secrets/jwt.key"), JWT_KEY_HEX).unwrap();
        std::fs::write(dir.path().join("secrets/hash.key"), JWT_KEY_HEX).unwrap();
        std::fs::write(dir.path().join("secrets/master.key"), JWT_KEY_HEX).unwrap();
        Env { nats, _pg: pg, db_url, pool, dir }
    }

    /// The environment variables a role process of this environment gets.
    pub fn vars(&self) -> HashMap<String, String> {
        HashMap::from([
            ("ACASA_NATS_URL".into(), self.nats.url()),
            ("ACASA_DATABASE_URL".into(), self.db_url.clone()),
            ("ACASA_STATE_DIR".into(), self.dir.path().display().to_string()),
            ("ACASA_LOG".into(), "info".into()),
        ])
    }

    pub async fn client(&self) -> async_nats::Client {
        async_nats::ConnectOptions::new().retry_on_initial_connect().connect(self.nats.url()).await.unwrap()
    }

    pub async fn store_with_window(&self, window: Duration) -> EventStore {
        let mut settings = settings("demo");
        settings.duplicate_window = window;
        EventStore::open(self.client().await, settings).await.unwrap()
    }

    pub async fn store(&self) -> EventStore {
        self.store_with_window(Duration::from_secs(120)).await
    }

    pub async fn repo(&self) -> Repository<Counter> {
        Repository::new(self.store().await, RepositoryConfig::default())
    }
}

pub fn meta(request_id: &str) -> CommandMeta {
    CommandMeta {
        request_id: RequestId::parse(request_id).unwrap(),
        actor: "test".into(),
        scope: "api:test".into(),
        method: "test".into(),
        digest: vec![],
    }
}

/// The stored key of a request id sent with [`meta`].
pub fn key_of(request_id: &str) -> String {
    hasher().request_key("api:test", request_id)
}

/// The keyed hasher every test store uses (the same key as the secrets files).
pub fn hasher() -> KeyedHasher {
    KeyedHasher::new(hex::decode(JWT_KEY_HEX).unwrap())
}

/// Stream settings of `service` with the tests' hasher.
pub fn settings(service: &str) -> StreamSettings {
    StreamSettings::new(service, hasher())
}

/// A projection worker's configuration over `store`'s commits.
pub fn worker_config(store: &EventStore) -> acasa_projection::WorkerConfig {
    acasa_projection::WorkerConfig {
        stream: store.stream_name().to_owned(),
        batch_size: 500,
        filter_subject: store.commit_filter(),
    }
}

pub fn create(id: Uuid, name: &str, limit: i64) -> CounterCommand {
    CounterCommand::Create { id, name: CounterName::parse(name).unwrap(), limit }
}

pub fn inc(n: i64) -> CounterCommand {
    CounterCommand::Increment { amount: Amount::parse(n).unwrap() }
}

/// Creates a counter through the repository; returns its id.
pub async fn new_counter(repo: &Repository<Counter>, name: &str) -> Uuid {
    let id = Uuid::now_v7();
    repo.execute(&id.to_string(), &create(id, name, 0), &meta(&format!("create-{id}"))).await.unwrap();
    id
}

/// Spans recorded by every test in this binary (tracing is global).
pub fn spans() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        acasa_runtime::telemetry::install(provider, "warn,acasa=info", acasa_runtime::config::LogFormat::Text).unwrap();
        exporter
    })
}

/// Polls `f` until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "condition not reached within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Every commit of `store`'s stream, in order (claims and request records skipped).
pub async fn all_commits(store: &EventStore) -> Vec<acasa_eventstore::StoredCommit> {
    let mut out = Vec::new();
    for seq in 1..=store.last_sequence().await.unwrap() {
        let (subject, _) = store.get_raw(seq).await.unwrap();
        if EventStore::is_commit_subject(&subject) {
            out.push(store.get(seq).await.unwrap());
        }
    }
    out
}

/// The stream sequence of the last commit of `store` (claims and request
/// records after it skipped): what a projection's checkpoint reaches.
pub async fn last_commit(store: &EventStore) -> u64 {
    let mut seq = store.last_sequence().await.unwrap();
    while seq > 0 {
        let (subject, _) = store.get_raw(seq).await.unwrap();
        if EventStore::is_commit_subject(&subject) {
            return seq;
        }
        seq -= 1;
    }
    0
}

/// The vault table `table`, under the tests' master key.
pub fn vault(env: &Env, table: &str) -> acasa_vault::Vault {
    let master = acasa_vault::MasterKey::from_bytes(&hex::decode(JWT_KEY_HEX).unwrap()).unwrap();
    acasa_vault::Vault::new(env.pool.clone(), master, table).unwrap()
}

/// A projection worker of `p` over `store`'s stream.
pub fn worker<P: acasa_projection::Projection>(env: &Env, store: &EventStore, p: P) -> acasa_projection::Worker<P> {
    acasa_projection::Worker::new(
        std::sync::Arc::new(p),
        env.pool.clone(),
        store.jetstream().clone(),
        worker_config(store),
    )
}

/// Serves `routes` (health naming `names`) on a free port; a channel to it.
pub async fn serve(
    routes: tonic::service::Routes,
    names: &'static [&'static str],
) -> (acasa_runtime::Serving, tonic::transport::Channel) {
    let serving = acasa_runtime::Serving::start("127.0.0.1:0".parse().unwrap(), routes, names, std::future::pending())
        .await
        .unwrap();
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", serving.local_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (serving, channel)
}

/// The registry's PersonDataService as `service` sees it, asking for `purpose`.
pub fn person_data(
    channel: tonic::transport::Channel,
    service: &'static str,
    purpose: acasa_runtime::person_data::Purpose,
) -> acasa_runtime::person_data::RegistryPersonData {
    let issuer = acasa_runtime::TokenIssuer::hs256(&hex::decode(JWT_KEY_HEX).unwrap(), "acasa", "acasa");
    acasa_runtime::person_data::RegistryPersonData::with_issuer(channel, issuer, service, purpose)
}
