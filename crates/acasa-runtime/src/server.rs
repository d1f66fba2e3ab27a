//! The gRPC server: the service's routes plus `grpc.health.v1` and reflection,
//! a span per call continuing the caller's W3C trace context, and graceful
//! shutdown. It binds before serving so callers (and tests) can use port 0.
//!
//! Shutdown, bounded: the [`Draining`] signal turns true first, so that
//! long-lived calls (streams) end with a status their client can resume from;
//! health turns `NOT_SERVING`; the server stops accepting and lets the calls
//! in flight finish, and drops whatever is still open after the grace.

use std::{future::Future, net::SocketAddr, time::Duration};

use opentelemetry::propagation::Extractor;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tonic::service::Routes;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

fn request_span(req: &http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!("grpc.request", rpc = %req.uri().path(), otel.kind = "server");
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(req.headers())));
    let _ = span.set_parent(parent);
    span
}

/// The services reflection lists: the server's own, health and reflection.
pub fn advertised(services: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = services.iter().map(|s| (*s).to_owned()).collect();
    names.extend(
        ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]
            .map(String::from),
    );
    names
}

/// Whether the server is stopping. Long-lived calls (streams) watch it and
/// end when it turns true, so that a shutdown never waits on a client.
#[derive(Clone, Debug)]
pub struct Draining(watch::Receiver<bool>);

impl Draining {
    /// A signal and the sender that starts it (`send(true)`).
    pub fn channel() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }

    /// A signal that never starts.
    pub fn never() -> Self {
        Self(watch::channel(false).1)
    }

    /// Whether draining has started.
    pub fn is_draining(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once draining starts (never, if its sender is gone unsent).
    pub async fn started(&mut self) {
        if self.0.wait_for(|d| *d).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// How a server runs beyond its routes.
#[derive(Debug)]
pub struct ServeOptions {
    /// HTTP/2 streams (calls) one connection may have open at once.
    pub max_concurrent_streams: u32,
    /// How long open calls may take to finish once shutdown started.
    pub drain_grace: Duration,
    /// Turned true when shutdown starts (the services' [`Draining`] watch it).
    pub drain: Option<watch::Sender<bool>>,
    /// What health follows; without it, health is `SERVING` until shutdown.
    pub readiness: Option<crate::health::Readiness>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self { max_concurrent_streams: 128, drain_grace: Duration::from_secs(10), drain: None, readiness: None }
    }
}

impl ServeOptions {
    /// The options `config` sets (no drain sender, no readiness yet).
    pub fn from_config(config: &crate::Config) -> Self {
        Self {
            max_concurrent_streams: config.grpc_max_concurrent_streams.max(1),
            drain_grace: config.drain_grace,
            ..Self::default()
        }
    }
}

/// A running server.
#[derive(Debug)]
pub struct Serving {
    /// The bound address (useful with port 0).
    pub local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Serving {
    /// Binds `addr` and serves `routes` plus health (reporting `services` as
    /// serving) and reflection, until [`Serving::stop`] or `shutdown` resolves.
    pub async fn start(
        addr: SocketAddr,
        routes: Routes,
        services: &[&str],
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<Self> {
        Self::start_with(addr, routes, services, shutdown, ServeOptions::default()).await
    }

    /// [`Serving::start`] with `options`: the concurrent-stream limit, the
    /// drain signal and its grace, and health following `readiness`.
    pub async fn start_with(
        addr: SocketAddr,
        routes: Routes,
        services: &[&str],
        shutdown: impl Future<Output = ()> + Send + 'static,
        options: ServeOptions,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        // The named services plus "" (the server as a whole).
        let mut names: Vec<String> = services.iter().map(|s| (*s).to_owned()).collect();
        names.push(String::new());
        let (health_reporter, health) = tonic_health::server::health_reporter();
        let (drain, draining) = match options.drain {
            Some(tx) => {
                let rx = Draining(tx.subscribe());
                (tx, rx)
            }
            None => Draining::channel(),
        };
        match options.readiness {
            Some(readiness) => {
                // Checked once now, then in the background until shutdown.
                readiness.spawn(health_reporter.clone(), names.clone(), draining).await;
            }
            None => {
                health_reporter.set_service_status(crate::health::LIVENESS, tonic_health::ServingStatus::Serving).await;
                for s in &names {
                    health_reporter.set_service_status(s, tonic_health::ServingStatus::Serving).await;
                }
            }
        }
        // Reflection advertises exactly what this server serves, in v1 and in
        // v1alpha (Python's grpcio-reflection and several GUI clients speak only that).
        let reflection = || {
            let mut b = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(acasa_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
            for name in advertised(services) {
                b = b.with_service_name(name);
            }
            b
        };
        let reflection_v1 = reflection().build_v1().map_err(std::io::Error::other)?;
        let reflection_v1alpha = reflection().build_v1alpha().map_err(std::io::Error::other)?;
        // Small gRPC frames must not wait for delayed ACKs (Nagle): no delay,
        // and keepalive so dead peers are noticed.
        let incoming = tonic::transport::server::TcpIncoming::from(listener)
            .with_nodelay(Some(true))
            .with_keepalive(Some(std::time::Duration::from_secs(60)));
        let (stop, mut stopped) = watch::channel(false);
        let routes = routes.add_service(health).add_service(reflection_v1).add_service(reflection_v1alpha);
        let grace = options.drain_grace;
        let (fired, mut fired_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let signal = async move {
                tokio::select! {
                    () = shutdown => {}
                    _ = stopped.wait_for(|s| *s) => {}
                }
                tracing::info!(grace_ms = grace.as_millis(), "shutting down: ending streams, draining in-flight calls");
                // Streams end first (they would hold the drain open for ever).
                let _ = drain.send(true);
                for s in &names {
                    health_reporter.set_service_status(s, tonic_health::ServingStatus::NotServing).await;
                }
                let _ = fired.send(true);
            };
            let server = tonic::transport::Server::builder()
                .max_concurrent_streams(options.max_concurrent_streams)
                .trace_fn(request_span)
                .add_routes(routes)
                .serve_with_incoming_shutdown(incoming, signal);
            // The drain is bounded: what is still open after the grace is dropped.
            let deadline = async move {
                if fired_rx.wait_for(|f| *f).await.is_err() {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(grace).await;
            };
            tokio::select! {
                r = server => r,
                () = deadline => {
                    tracing::warn!(grace_ms = grace.as_millis(), "calls still open after the drain grace: dropping them");
                    Ok(())
                }
            }
        });
        tracing::info!(%local_addr, "gRPC server listening");
        Ok(Self { local_addr, stop, task })
    }

    /// Stops accepting calls, lets in-flight calls finish, and waits.
    pub async fn stop(self) -> Result<(), tonic::transport::Error> {
        let _ = self.stop.send(true);
        self.wait().await
    }

    /// Waits until the server ends.
    pub async fn wait(self) -> Result<(), tonic::transport::Error> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "server task failed");
                Ok(())
            }
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A shutdown flag that turns true on SIGTERM or SIGINT, for workers.
pub fn shutdown_flag() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = tx.send(true);
    });
    rx
}
