//! The Acasă roles as a library: the binary's subcommands call into it, and
//! the integration tests drive the same wiring.

pub mod app;
pub mod bench;
pub mod bench_referrals;
pub mod bench_registry;
pub mod nats_users;

use clap::ValueEnum;

/// A service of the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Service {
    /// The demo counter service proving the platform.
    Demo,
    /// The registry of people.
    Registry,
    /// The SME referral system.
    Referrals,
}
