//! Placements: overseas graduates' six-month professional placements and
//! diaspora scientists' temporary assignments — host institutions, offers,
//! matching from the registry, monthly allowances, travel claims and outcomes.
//!
//! This crate holds the placement's rules first ([`domain`]): pure `decide`
//! and `evolve`, unit-tested without I/O. The gRPC service
//! (`acasa.placements.v1`), its codec, projections and deadline worker
//! follow on the service kit, in the same shape as the registry and the
//! referral system.

pub mod domain;
pub mod validate;

/// The service's name: stream `ACASA_PLACEMENTS`, subjects `acasa.placements.>`.
pub const SERVICE: &str = "placements";
