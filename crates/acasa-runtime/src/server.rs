//! The gRPC server: the service's routes plus `grpc.health.v1` and reflection,
//! a span per call continuing the caller's W3C trace context, and graceful
//! shutdown. It binds before serving so callers (and tests) can use port 0.

use std::{future::Future, net::SocketAddr};

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
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        // The named services plus "" (the server as a whole).
        let mut names: Vec<String> = services.iter().map(|s| (*s).to_owned()).collect();
        names.push(String::new());
        let (health_reporter, health) = tonic_health::server::health_reporter();
        for s in &names {
            health_reporter.set_service_status(s, tonic_health::ServingStatus::Serving).await;
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
        let task = tokio::spawn(async move {
            let signal = async move {
                tokio::select! {
                    () = shutdown => {}
                    _ = stopped.wait_for(|s| *s) => {}
                }
                tracing::info!("shutting down: draining in-flight calls");
                for s in &names {
                    health_reporter.set_service_status(s, tonic_health::ServingStatus::NotServing).await;
                }
            };
            tonic::transport::Server::builder()
                .trace_fn(request_span)
                .add_routes(routes)
                .serve_with_incoming_shutdown(incoming, signal)
                .await
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
