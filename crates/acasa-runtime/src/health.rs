//! Health that follows what a process needs: a background check of Postgres
//! (`SELECT 1`) and NATS (the connection, and a JetStream account lookup)
//! every `ACASA_HEALTH_INTERVAL_MS`, reported as `grpc.health.v1` statuses.
//! A process that cannot serve answers `NOT_SERVING` (leaving the load
//! balancer's rotation) and `SERVING` again once both answer, by itself.
//!
//! Readiness is reported under the server's service names and `""`;
//! [`LIVENESS`] stays `SERVING` as long as the process runs, so a liveness
//! probe never restarts a replica for an outage of Postgres or NATS.

use std::{net::SocketAddr, time::Duration};

use sqlx::PgPool;
use tokio::{net::TcpListener, task::JoinHandle};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::server::Draining;

/// The health key a liveness probe asks for (`grpc.health.v1` service name):
/// `SERVING` while the process runs, whatever its dependencies do.
pub const LIVENESS: &str = "liveness";

/// Longest a single check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_millis(1500);

/// What a process needs to serve, checked in the background.
#[derive(Clone, Debug)]
pub struct Readiness {
    /// The database (queries, read models).
    pub pool: PgPool,
    /// The NATS connection (commands, projections).
    pub nats: async_nats::Client,
    /// How often to check.
    pub interval: Duration,
}

impl Readiness {
    /// Checks Postgres and NATS once: `Ok` when both answer in time, else
    /// what failed (no personal data, no credentials).
    pub async fn check(&self) -> Result<(), String> {
        let (pg, nats) = tokio::join!(self.postgres(), self.nats());
        match (pg, nats) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(p), Ok(())) => Err(p),
            (Ok(()), Err(n)) => Err(n),
            (Err(p), Err(n)) => Err(format!("{p}; {n}")),
        }
    }

    async fn postgres(&self) -> Result<(), String> {
        match tokio::time::timeout(CHECK_TIMEOUT, sqlx::query("SELECT 1").execute(&self.pool)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("postgres: {e}")),
            Err(_) => Err(format!("postgres: no answer within {CHECK_TIMEOUT:?}")),
        }
    }

    async fn nats(&self) -> Result<(), String> {
        let state = self.nats.connection_state();
        if state != async_nats::connection::State::Connected {
            return Err(format!("nats: {state}"));
        }
        let js = async_nats::jetstream::new(self.nats.clone());
        match tokio::time::timeout(CHECK_TIMEOUT, js.query_account()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("nats: jetstream: {e}")),
            Err(_) => Err(format!("nats: jetstream: no answer within {CHECK_TIMEOUT:?}")),
        }
    }

    /// Checks now and sets `names` (readiness) and [`LIVENESS`] accordingly,
    /// then keeps checking every interval in the background, logging each
    /// change, until `draining` starts (then everything but liveness turns
    /// `NOT_SERVING` and the task ends).
    pub async fn spawn(self, reporter: HealthReporter, names: Vec<String>, mut draining: Draining) -> JoinHandle<()> {
        reporter.set_service_status(LIVENESS, ServingStatus::Serving).await;
        let mut ready = self.check().await;
        if let Err(why) = &ready {
            tracing::warn!(reason = %why, "not ready");
        }
        set_all(&reporter, &names, status(&ready)).await;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    () = draining.started() => break,
                    _ = tick.tick() => {}
                }
                let now = self.check().await;
                match (&ready, &now) {
                    (Ok(()), Err(why)) => tracing::warn!(reason = %why, "not ready: health NOT_SERVING"),
                    (Err(_), Ok(())) => tracing::info!("ready again: health SERVING"),
                    _ => {}
                }
                if now.is_ok() != ready.is_ok() {
                    set_all(&reporter, &names, status(&now)).await;
                }
                ready = now;
            }
            set_all(&reporter, &names, ServingStatus::NotServing).await;
        })
    }
}

fn status(ready: &Result<(), String>) -> ServingStatus {
    if ready.is_ok() { ServingStatus::Serving } else { ServingStatus::NotServing }
}

async fn set_all(reporter: &HealthReporter, names: &[String], status: ServingStatus) {
    for n in names {
        reporter.set_service_status(n, status).await;
    }
}

/// A probe endpoint for a process without an API of its own (a projection
/// worker): `grpc.health.v1` only, on `addr`, readiness under `""` and
/// [`LIVENESS`], until `draining` starts.
#[derive(Debug)]
pub struct Probe {
    /// The bound address.
    pub local_addr: SocketAddr,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
    checker: JoinHandle<()>,
}

impl Probe {
    /// Binds `addr` and serves health there, checked by `readiness`.
    pub async fn start(addr: SocketAddr, readiness: Readiness, draining: Draining) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (reporter, health) = tonic_health::server::health_reporter();
        let checker = readiness.spawn(reporter, vec![String::new()], draining.clone()).await;
        let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let mut stopping = draining;
        let task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming_shutdown(incoming, async move { stopping.started().await })
                .await
        });
        tracing::info!(%local_addr, "health probe listening");
        Ok(Self { local_addr, task, checker })
    }

    /// Waits until it has stopped (after draining started).
    pub async fn wait(self) {
        let _ = self.checker.await;
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "health probe failed"),
            Err(e) => tracing::warn!(error = %e, "health probe task failed"),
        }
    }
}
