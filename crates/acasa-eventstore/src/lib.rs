//! The event store: NATS JetStream as the system of record.
//!
//! One stream per service (`ACASA_<SERVICE>`, subjects `acasa.<service>.>`),
//! one subject per aggregate (`acasa.<service>.<kind>.<id>`), one message per
//! command (a [`Commit`](acasa_proto::eventstore::v1::Commit) holding all its
//! events). Appends carry `Nats-Expected-Last-Subject-Sequence` for optimistic
//! concurrency and `Nats-Msg-Id` for the server's de-duplication window;
//! idempotency beyond that window comes from the request ids recorded in the
//! aggregate's own commits and in request records. [`Repository`] runs the
//! command loop (load → decide → append; on conflict catch up and retry,
//! bounded) over a cache of loaded aggregates. A command's commits, the
//! uniqueness claims its events take or free (`acasa.<service>.claim.<kind>.
//! <keyed hash>`) and its request record (`acasa.<service>.request.<scope
//! hash>.<request hash>`) are one JetStream atomic batch, written by a group
//! writer that stores concurrent commands' transactions together.

mod commit;
mod error;
mod keys;
mod repository;
mod store;
pub mod trace;
mod writer;

pub use commit::{NewCommit, StoredCommit};
pub use error::{AppendError, CommandError, StoreError};
pub use keys::KeyedHasher;
pub use repository::{Coalescer, CommandMeta, GroupCommand, Marked, Outcome, Repository, RepositoryConfig, Step};
pub use store::{Appended, ClaimState, EventStore, StoredRequest, StreamSettings, stream_name_of};
pub use writer::WriterLimits;
