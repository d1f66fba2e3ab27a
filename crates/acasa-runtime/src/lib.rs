//! The service runtime every Acasă role stands on: configuration from
//! `ACASA_*` variables, logs and OpenTelemetry, JWT bearer authentication,
//! the gRPC server with health, reflection and graceful shutdown, and the one
//! mapping of errors to gRPC statuses.

pub mod auth;
pub mod config;
pub mod error;
pub mod health;
pub mod kit;
pub mod nats_url;
pub mod page;
pub mod person_data;
pub mod rate;
pub mod request;
pub mod server;
pub mod telemetry;

pub use auth::{Authenticator, KeySetRefresh, Principal, Role, TokenIssuer, TokenScope};
pub use config::Config;
pub use error::ApiError;
pub use kit::{ProjectionSpec, ServeContext, ServiceDef, WorkContext};
pub use server::{Draining, ServeOptions, Serving, shutdown_signal};
