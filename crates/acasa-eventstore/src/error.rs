//! Errors of the event store and the command loop.

use acasa_domain::DecodeError;

/// The log could not be read or written.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// NATS or JetStream failed (connection, timeout, server error).
    #[error("jetstream: {0}")]
    Nats(String),
    /// A stored commit could not be decoded.
    #[error("corrupt commit at sequence {sequence}: {reason}")]
    Corrupt {
        /// Its stream sequence.
        sequence: u64,
        /// Why.
        reason: String,
    },
    /// An event could not be encoded (e.g. sealing its personal data failed).
    #[error("cannot encode an event: {0}")]
    Encode(String),
    /// A stored event could not be decoded by the aggregate's codec.
    #[error("at sequence {sequence}: {source}")]
    Decode {
        /// Its stream sequence.
        sequence: u64,
        /// The codec's error.
        source: DecodeError,
    },
}

impl StoreError {
    pub(crate) fn nats(e: impl std::fmt::Display) -> Self {
        Self::Nats(e.to_string())
    }
}

/// An append did not happen.
#[derive(Clone, Debug, thiserror::Error)]
pub enum AppendError {
    /// The aggregate's subject has moved past the expected sequence.
    #[error("conflict: the aggregate changed since sequence {expected}")]
    Conflict {
        /// The sequence the append expected.
        expected: u64,
    },
    /// The outcome is unknown (timeout, broken connection): the commit may or
    /// may not be stored. Retrying with the same request id is safe.
    #[error("append outcome unknown: {0}")]
    Unknown(String),
    /// The append was refused for another reason.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E> {
    /// The domain refused it.
    #[error(transparent)]
    Rejected(E),
    /// Concurrent writers kept winning; the bounded retries ran out.
    #[error("too much contention on the aggregate; retry")]
    Contention,
    /// The request id was already used for a different command (another
    /// method, or another body).
    #[error("request_id was already used for a different command")]
    RequestIdReused,
    /// A value the command's events claim is held by another aggregate.
    #[error("the {kind} is already held by {owner}")]
    Claimed {
        /// The claim's kind (`idnp`, …).
        kind: &'static str,
        /// The holding aggregate's id.
        owner: String,
    },
    /// The log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
