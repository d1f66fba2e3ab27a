//! The Acasă roles as a library: the binary's subcommands call into it, and
//! the integration tests drive the same wiring.

pub mod app;
pub mod bench;

use clap::ValueEnum;

/// A service of the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Service {
    /// The demo counter service proving the platform.
    Demo,
}
