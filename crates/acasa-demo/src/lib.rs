//! The demo counter service: the smallest aggregate that exercises every
//! platform piece end to end — a unique name reserved across aggregates,
//! idempotent commands, optimistic concurrency, a checkpointed projection and
//! read-your-writes queries. It carries no personal data. Real services
//! (registry, placements, grants, referrals, content) follow its shape.

pub mod domain;
pub mod projection;
pub mod service;

/// The service's name: stream `ACASA_DEMO`, subjects `acasa.demo.>`, schema `demo`.
pub const SERVICE: &str = "demo";
/// The projection building `demo.counters`.
pub const PROJECTION: &str = "demo.counters";
