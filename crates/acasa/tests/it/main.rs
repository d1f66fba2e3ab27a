//! Integration tests of the platform against a real nats-server (JetStream,
//! `sync_interval: always`) and a real Postgres 15, each started per test on
//! free ports. One test binary, modules per area.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly")]

mod content;
mod content_campaigns;
mod eventstore;
mod faults;
mod grants;
mod grants_views;
mod grpc;
mod harness;
mod nats_permissions;
mod operations;
mod person_data;
mod placements;
mod projection;
mod referrals;
mod registry;
