//! Configuration from `ACASA_*` environment variables, with local defaults.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// Configuration was malformed.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    /// The variable.
    pub var: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// Everything a role needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// `ACASA_NATS_URL`.
    pub nats_url: String,
    /// `ACASA_DATABASE_URL`.
    pub database_url: String,
    /// `ACASA_DB_MAX_CONNECTIONS`.
    pub db_max_connections: u32,
    /// `ACASA_DB_STATEMENT_TIMEOUT_MS`: Postgres `statement_timeout` of a
    /// server's queries (default 5000); projection workers get ten times it,
    /// migrations none. A statement past it is cancelled and the call answers
    /// UNAVAILABLE.
    pub db_statement_timeout_ms: u32,
    /// `ACASA_DB_ACQUIRE_TIMEOUT_MS`: how long a call waits for a Postgres
    /// connection (default 1000), then answers UNAVAILABLE. While Postgres is
    /// down every call waits this long, so it stays under callers' deadlines.
    pub db_acquire_timeout_ms: u32,
    /// `ACASA_GRPC_ADDR`: where to listen (default: the service's own port on 127.0.0.1).
    pub grpc_addr: Option<SocketAddr>,
    /// `ACASA_STATE_DIR`: local state (default `.state`).
    pub state_dir: PathBuf,
    /// `ACASA_JWT_SECRET_FILE`: hex HS256 key (default `<state>/secrets/jwt.key`).
    pub jwt_secret_file: PathBuf,
    /// `ACASA_JWT_PUBLIC_KEY_FILE`: an Ed25519 public key (PEM) of the identity
    /// provider; when set (and no key set is), tokens are verified with it
    /// instead of the HS256 key.
    pub jwt_public_key_file: Option<PathBuf>,
    /// `ACASA_JWT_JWKS_FILE`: a JSON Web Key Set (RFC 7517) of the identity
    /// provider; when set, it wins over the public key and the HS256 key: a
    /// token's `kid` names its key (OKP Ed25519/EdDSA, RSA/RS256, EC/ES256),
    /// and the file is read again so keys rotate without a restart (see
    /// `jwt_jwks_refresh`). Precedence: key set, public key, HS256 secret.
    pub jwt_jwks_file: Option<PathBuf>,
    /// `ACASA_JWT_JWKS_REFRESH_SECS`: the key set file is read again when a
    /// token arrives this long after the last read (default 30), and at once
    /// (at most every second) when a token names a `kid` the set lacks.
    pub jwt_jwks_refresh: Duration,
    /// `ACASA_JWT_MAX_LIFETIME_SECS`: tokens whose `exp - iat` is longer are
    /// refused, as are tokens without `iat` (default 43200, 12 hours).
    pub jwt_max_lifetime: Duration,
    /// `ACASA_JWT_ISSUER` (default `acasa`).
    pub jwt_issuer: String,
    /// `ACASA_JWT_AUDIENCE` (default `acasa`).
    pub jwt_audience: String,
    /// `ACASA_HASH_KEY_FILE`: hex key of the keyed hash of identifiers.
    pub hash_key_file: PathBuf,
    /// `ACASA_MASTER_KEY_FILE`: hex 32-byte key wrapping the personal data
    /// keys (default `<state>/secrets/master.key`). Configuration, never data.
    pub master_key_file: PathBuf,
    /// `ACASA_STREAM_REPLICAS` (default 1; 3 in a cluster).
    pub stream_replicas: usize,
    /// `ACASA_DUPLICATE_WINDOW_SECS` (default 120).
    pub duplicate_window: Duration,
    /// `ACASA_SLA_SWEEP_MS`: how often the referrals' SLA deadline worker
    /// looks for breached response times (default 1000).
    pub sla_sweep_interval: Duration,
    /// `ACASA_WRITER_IN_FLIGHT`: atomic batches a service process keeps in
    /// flight (default 1; the server allows 50 per stream, all processes together).
    pub writer_in_flight: usize,
    /// `ACASA_WRITER_MAX_MESSAGES`: most messages in one batch (default 500;
    /// the server allows 1,000).
    pub writer_max_messages: usize,
    /// `ACASA_NATS_PARTNER_MAX_CONNECTIONS`: connections a partner's NATS
    /// account may have open at once (default 5; `acasa nats-users`).
    pub nats_partner_max_connections: u32,
    /// `ACASA_NATS_PARTNER_MAX_SUBSCRIPTIONS`: subscriptions per connection of
    /// a partner's NATS account (default 10).
    pub nats_partner_max_subscriptions: u32,
    /// `ACASA_NATS_PARTNER_MAX_PAYLOAD`: the largest message, in bytes, a
    /// partner's client may publish (default 4096; it publishes only API
    /// requests and acks).
    pub nats_partner_max_payload: u32,
    /// `ACASA_GRPC_MAX_CONCURRENT_STREAMS`: calls (HTTP/2 streams) one
    /// client connection may have open at once (default 128).
    pub grpc_max_concurrent_streams: u32,
    /// `ACASA_DRAIN_GRACE_MS`: how long a stopping server lets open calls
    /// finish before it drops them (default 10000). Streams are told to end
    /// at once; this bounds the rest.
    pub drain_grace: Duration,
    /// `ACASA_HEALTH_INTERVAL_MS`: how often a process checks what it needs
    /// (Postgres, NATS) and reports it as its gRPC health (default 2000).
    pub health_interval: Duration,
    /// `ACASA_PROBE_ADDR`: where `acasa project` serves `grpc.health.v1`
    /// for probes (default: nowhere).
    pub probe_addr: Option<SocketAddr>,
    /// `ACASA_FEED_STREAMS_PER_PARTNER`: open `SubscribeReferralEvents`
    /// streams one partner may have in one server process (default 4).
    pub feed_streams_per_partner: usize,
    /// `ACASA_FEED_STREAMS_PER_CONNECTION`: open feed streams on one client
    /// connection, whichever partners they are for (default 8).
    pub feed_streams_per_connection: usize,
    /// `ACASA_REGISTRY_URL`: the registry's gRPC endpoint, for services
    /// that open a person's sealed registry data through it (default
    /// `http://127.0.0.1:50051`).
    pub registry_url: String,
    /// `ACASA_PERSON_DATA_PURPOSES`: which services (by their token's
    /// subject) may have the registry open people's sealed data for which
    /// purpose: `subject=purpose,purpose;…` (default
    /// `placements=matching;grants=matching,eligibility;content=campaigns`).
    pub person_data_purposes: String,
    /// `ACASA_SERVICE_TOKEN_FILE`: a bearer token (role `service`) for
    /// calls to other services, re-read on every use so an identity
    /// provider's sidecar can refresh it. Unset: the process signs its own
    /// short-lived tokens with the HS256 key (`ACASA_JWT_SECRET_FILE`).
    pub service_token_file: Option<PathBuf>,
    /// `ACASA_PLACEMENTS_TARGET_GRADUATES`: the programme's target of
    /// graduate placements (default 43).
    pub placements_target_graduates: u32,
    /// `ACASA_PLACEMENTS_TARGET_SCIENTISTS`: the programme's target of
    /// scientific assignments (default 31).
    pub placements_target_scientists: u32,
    /// `ACASA_PLACEMENTS_SWEEP_MS`: how often the placements deadline
    /// worker records allowances fallen due and overdue follow-ups
    /// (default 60000).
    pub placements_sweep_interval: Duration,
    /// `ACASA_GRANTS_TARGET_TRAINED`: the programme's target of
    /// entrepreneurs trained (default 540).
    pub grants_target_trained: u32,
    /// `ACASA_GRANTS_TARGET_GRANTS`: the programme's target of start-up
    /// grants awarded (default 101).
    pub grants_target_grants: u32,
    /// `ACASA_GRANTS_TARGET_OFFICIALS`: officials and SME-support staff to
    /// train (default 0: no target set).
    pub grants_target_officials: u32,
    /// `ACASA_CONTENT_FALLBACK`: the content's locale fallback chains,
    /// `locale=chain>…; *=chain>…` (unset: `acasa_content`'s default,
    /// `ru-MD>ru>ro>en; ru=ru>ro>en; uk=uk>ro>en; en=en>ro; *=ro>en`).
    pub content_fallback: Option<String>,
    /// `ACASA_CONTENT_PUBLIC_RATE`: public content reads per second per
    /// client (default 20).
    pub content_public_rate: f64,
    /// `ACASA_CONTENT_PUBLIC_BURST`: the burst of public reads a client may
    /// make at once (default 40).
    pub content_public_burst: u32,
    /// `ACASA_CONTENT_TRUST_FORWARDED`: key the public rate by the
    /// left-most `x-forwarded-for` address (only behind a proxy that sets
    /// it; default false: the peer's address).
    pub content_trust_forwarded: bool,
    /// `ACASA_CONTENT_SWEEP_MS`: how often the content deadline worker
    /// records scheduled publications and expiries (default 5000).
    pub content_sweep_interval: Duration,
    /// `ACASA_CONTENT_PUBLIC_URL`: where readers read articles; a campaign's
    /// article link is `<url>/<slug>?locale=<locale>` (default
    /// `https://acasa.local/info`).
    pub content_public_url: String,
    /// `ACASA_CONTENT_SEND_CONNECTIONS`: SMTP connections the campaign
    /// sender uses at once (default 4).
    pub content_send_connections: usize,
    /// `ACASA_CONTENT_SEND_MS`: how often the campaign sender looks for work
    /// when idle (default 1000).
    pub content_send_interval: Duration,
    /// `ACASA_LOG`: a tracing filter (default `info`).
    pub log: String,
    /// `ACASA_LOG_FORMAT`: `text` or `json`.
    pub log_format: LogFormat,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let state_dir = PathBuf::from(get("ACASA_STATE_DIR").unwrap_or_else(|| ".state".into()));
        let grpc_addr = address(&get, "ACASA_GRPC_ADDR")?;
        let probe_addr = address(&get, "ACASA_PROBE_ADDR")?;
        let log_format = match get("ACASA_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError { var: "ACASA_LOG_FORMAT", reason: format!("`{other}` is not text or json") });
            }
        };
        Ok(Self {
            nats_url: get("ACASA_NATS_URL").unwrap_or_else(|| "nats://127.0.0.1:4222".into()),
            database_url: get("ACASA_DATABASE_URL").unwrap_or_else(|| "postgres://acasa@127.0.0.1:54320/acasa".into()),
            db_max_connections: parse(&get, "ACASA_DB_MAX_CONNECTIONS", 16)?,
            db_statement_timeout_ms: parse(&get, "ACASA_DB_STATEMENT_TIMEOUT_MS", 5000)?,
            db_acquire_timeout_ms: parse(&get, "ACASA_DB_ACQUIRE_TIMEOUT_MS", 1000)?,
            grpc_addr,
            jwt_secret_file: get("ACASA_JWT_SECRET_FILE")
                .map_or_else(|| state_dir.join("secrets/jwt.key"), PathBuf::from),
            jwt_public_key_file: get("ACASA_JWT_PUBLIC_KEY_FILE").map(PathBuf::from),
            jwt_jwks_file: get("ACASA_JWT_JWKS_FILE").map(PathBuf::from),
            jwt_jwks_refresh: Duration::from_secs(parse(&get, "ACASA_JWT_JWKS_REFRESH_SECS", 30)?),
            jwt_max_lifetime: Duration::from_secs(parse(
                &get,
                "ACASA_JWT_MAX_LIFETIME_SECS",
                crate::auth::DEFAULT_MAX_LIFETIME.as_secs(),
            )?),
            jwt_issuer: get("ACASA_JWT_ISSUER").unwrap_or_else(|| "acasa".into()),
            jwt_audience: get("ACASA_JWT_AUDIENCE").unwrap_or_else(|| "acasa".into()),
            hash_key_file: get("ACASA_HASH_KEY_FILE").map_or_else(|| state_dir.join("secrets/hash.key"), PathBuf::from),
            master_key_file: get("ACASA_MASTER_KEY_FILE")
                .map_or_else(|| state_dir.join("secrets/master.key"), PathBuf::from),
            stream_replicas: parse(&get, "ACASA_STREAM_REPLICAS", 1)?,
            duplicate_window: Duration::from_secs(parse(&get, "ACASA_DUPLICATE_WINDOW_SECS", 120)?),
            sla_sweep_interval: Duration::from_millis(parse(&get, "ACASA_SLA_SWEEP_MS", 1000)?),
            writer_in_flight: parse(&get, "ACASA_WRITER_IN_FLIGHT", 1)?,
            writer_max_messages: parse(&get, "ACASA_WRITER_MAX_MESSAGES", 500)?,
            nats_partner_max_connections: parse(&get, "ACASA_NATS_PARTNER_MAX_CONNECTIONS", 5)?,
            nats_partner_max_subscriptions: parse(&get, "ACASA_NATS_PARTNER_MAX_SUBSCRIPTIONS", 10)?,
            nats_partner_max_payload: parse(&get, "ACASA_NATS_PARTNER_MAX_PAYLOAD", 4096)?,
            grpc_max_concurrent_streams: parse(&get, "ACASA_GRPC_MAX_CONCURRENT_STREAMS", 128)?,
            drain_grace: Duration::from_millis(parse(&get, "ACASA_DRAIN_GRACE_MS", 10_000)?),
            health_interval: Duration::from_millis(parse(&get, "ACASA_HEALTH_INTERVAL_MS", 2_000)?.max(50)),
            probe_addr,
            feed_streams_per_partner: parse(&get, "ACASA_FEED_STREAMS_PER_PARTNER", 4)?,
            feed_streams_per_connection: parse(&get, "ACASA_FEED_STREAMS_PER_CONNECTION", 8)?,
            registry_url: get("ACASA_REGISTRY_URL").unwrap_or_else(|| "http://127.0.0.1:50051".into()),
            service_token_file: get("ACASA_SERVICE_TOKEN_FILE").map(PathBuf::from),
            person_data_purposes: get("ACASA_PERSON_DATA_PURPOSES")
                .unwrap_or_else(|| "placements=matching;grants=matching,eligibility;content=campaigns".into()),
            placements_target_graduates: parse(&get, "ACASA_PLACEMENTS_TARGET_GRADUATES", 43)?,
            placements_target_scientists: parse(&get, "ACASA_PLACEMENTS_TARGET_SCIENTISTS", 31)?,
            placements_sweep_interval: Duration::from_millis(parse(&get, "ACASA_PLACEMENTS_SWEEP_MS", 60_000)?.max(10)),
            grants_target_trained: parse(&get, "ACASA_GRANTS_TARGET_TRAINED", 540)?,
            grants_target_grants: parse(&get, "ACASA_GRANTS_TARGET_GRANTS", 101)?,
            grants_target_officials: parse(&get, "ACASA_GRANTS_TARGET_OFFICIALS", 0)?,
            content_fallback: get("ACASA_CONTENT_FALLBACK"),
            content_public_rate: parse(&get, "ACASA_CONTENT_PUBLIC_RATE", 20.0)?,
            content_public_burst: parse(&get, "ACASA_CONTENT_PUBLIC_BURST", 40)?,
            content_trust_forwarded: parse(&get, "ACASA_CONTENT_TRUST_FORWARDED", false)?,
            content_sweep_interval: Duration::from_millis(parse(&get, "ACASA_CONTENT_SWEEP_MS", 5_000)?.max(10)),
            content_public_url: get("ACASA_CONTENT_PUBLIC_URL").unwrap_or_else(|| "https://acasa.local/info".into()),
            content_send_connections: parse(&get, "ACASA_CONTENT_SEND_CONNECTIONS", 4_usize)?.clamp(1, 64),
            content_send_interval: Duration::from_millis(parse(&get, "ACASA_CONTENT_SEND_MS", 1_000)?.max(10)),
            log: get("ACASA_LOG").unwrap_or_else(|| "info".into()),
            log_format,
            state_dir,
        })
    }

    /// Reads a hex-encoded secret file (at least 16 bytes).
    pub fn read_secret(path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            var: "secret file",
            reason: format!("{}: {e} (run `make run` once, or point ACASA_*_FILE at a key)", path.display()),
        })?;
        let key = hex::decode(text.trim())
            .map_err(|e| ConfigError { var: "secret file", reason: format!("{}: not hex: {e}", path.display()) })?;
        if key.len() < 16 {
            return Err(ConfigError {
                var: "secret file",
                reason: format!("{}: shorter than 16 bytes", path.display()),
            });
        }
        Ok(key)
    }
}

fn address(get: &impl Fn(&str) -> Option<String>, var: &'static str) -> Result<Option<SocketAddr>, ConfigError> {
    match get(var) {
        Some(a) => a.trim().parse().map(Some).map_err(|e| ConfigError { var, reason: format!("`{a}`: {e}") }),
        None => Ok(None),
    }
}

fn parse<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match get(var) {
        Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError { var, reason: format!("`{v}`: {e}") }),
        None => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_local() {
        let c = Config::from_lookup(|_| None).unwrap();
        assert_eq!(c.nats_url, "nats://127.0.0.1:4222");
        assert_eq!(c.jwt_secret_file, PathBuf::from(".state/secrets/jwt.key"));
        assert_eq!(c.stream_replicas, 1);
        assert_eq!(c.jwt_jwks_file, None);
        assert_eq!(c.jwt_jwks_refresh, Duration::from_secs(30));
        assert_eq!(c.jwt_max_lifetime, Duration::from_secs(12 * 3600));
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.feed_streams_per_partner, 4);
        assert_eq!(c.feed_streams_per_connection, 8);
        assert_eq!(c.drain_grace, Duration::from_secs(10));
        assert_eq!(c.probe_addr, None);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = Config::from_lookup(|k| (k == "ACASA_STREAM_REPLICAS").then(|| "three".into())).unwrap_err();
        assert_eq!(e.var, "ACASA_STREAM_REPLICAS");
        let e = Config::from_lookup(|k| (k == "ACASA_GRPC_ADDR").then(|| "nowhere".into())).unwrap_err();
        assert_eq!(e.var, "ACASA_GRPC_ADDR");
        let e = Config::from_lookup(|k| (k == "ACASA_PROBE_ADDR").then(|| ":8081".into())).unwrap_err();
        assert_eq!(e.var, "ACASA_PROBE_ADDR");
    }
}
