//! Logs through `tracing`, traces and metrics through OpenTelemetry.
//!
//! OTLP exporters are installed only when the standard `OTEL_*` variables name
//! an endpoint; without one, spans still get OpenTelemetry trace ids (so the
//! W3C trace context flows from gRPC into NATS headers and on into
//! projections) but nothing is exported. Logs never carry personal data:
//! handlers log ids, never names or national ids.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{
    Resource, metrics::SdkMeterProvider, propagation::TraceContextPropagator, trace::SdkTracerProvider,
};
use tracing_subscriber::{EnvFilter, Layer as _, layer::SubscriberExt as _, util::SubscriberInitExt as _};

use crate::config::{Config, LogFormat};

/// Flushes and shuts down the exporters when dropped.
#[derive(Debug)]
pub struct Telemetry {
    tracer: SdkTracerProvider,
    meter: Option<SdkMeterProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        // Errors here mean nothing was configured or the collector is gone; neither is actionable at exit.
        let _ = self.tracer.shutdown();
        if let Some(m) = self.meter.take() {
            let _ = m.shutdown();
        }
    }
}

fn endpoint_configured(signal: &str) -> bool {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.trim().is_empty());
    (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")))
        && !std::env::var(format!("OTEL_{signal}_EXPORTER")).is_ok_and(|v| v == "none")
}

/// Installs logging and OpenTelemetry for role `service` (e.g. `acasa-demo`).
/// Must be called inside the tokio runtime (the OTLP exporter uses it).
pub fn init(service: &str, config: &Config) -> Result<Telemetry, Box<dyn std::error::Error + Send + Sync>> {
    let resource = Resource::builder().with_service_name(service.to_owned()).build();
    let mut tracer = SdkTracerProvider::builder().with_resource(resource.clone());
    if endpoint_configured("TRACES") {
        let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().build()?;
        tracer = tracer.with_batch_exporter(exporter);
    }
    let tracer = tracer.build();
    let meter = if endpoint_configured("METRICS") {
        let exporter = opentelemetry_otlp::MetricExporter::builder().with_tonic().build()?;
        let provider = SdkMeterProvider::builder().with_resource(resource).with_periodic_exporter(exporter).build();
        opentelemetry::global::set_meter_provider(provider.clone());
        Some(provider)
    } else {
        None
    };
    install(tracer.clone(), &config.log, config.log_format)?;
    Ok(Telemetry { tracer, meter })
}

/// Installs the global subscriber with `tracer` (tests pass one with an
/// in-memory exporter) and the W3C trace-context propagator.
pub fn install(
    tracer: SdkTracerProvider,
    filter: &str,
    format: LogFormat,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let otel = tracing_opentelemetry::layer().with_tracer(tracer.tracer("acasa"));
    let filter = EnvFilter::try_new(filter)?;
    let fmt = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer().with_target(true).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer().json().with_current_span(false).boxed(),
    };
    tracing_subscriber::registry().with(filter).with(fmt).with(otel).try_init()?;
    Ok(())
}
