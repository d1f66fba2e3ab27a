//! The Acasă roles as a library: the binary's subcommands call into it, and
//! the integration tests drive the same wiring.

pub mod app;
pub mod bench;
