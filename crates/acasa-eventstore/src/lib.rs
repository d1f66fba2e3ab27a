//! The event store: NATS JetStream as the system of record.
//!
//! One stream per service (`ACASA_<SERVICE>`, subjects `acasa.<service>.>`),
//! one subject per aggregate (`acasa.<service>.<kind>.<id>`), one message per
//! command (a [`Commit`](acasa_proto::eventstore::v1::Commit) holding all its
//! events). Appends carry `Nats-Expected-Last-Subject-Sequence` for optimistic
//! concurrency and `Nats-Msg-Id` for the server's de-duplication window;
//! idempotency beyond that window comes from the request ids recorded in the
//! aggregate's own commits. [`Repository`] runs the command loop
//! (load → decide → append; on conflict catch up and retry, bounded) over a
//! cache of loaded aggregates, and [`Reservations`] gives uniqueness across
//! aggregates by create-only KV entries keyed by a keyed hash.

mod commit;
mod error;
mod repository;
mod reservation;
mod store;
pub mod trace;

pub use commit::{NewCommit, StoredCommit};
pub use error::{AppendError, CommandError, StoreError};
pub use repository::{CommandMeta, Outcome, Repository, RepositoryConfig};
pub use reservation::{KeyedHasher, Reservation, Reservations};
pub use store::{Appended, EventStore, StreamSettings};
