//! The aggregate contract: `decide(state, command) -> events`, `evolve(state, event)`.

use std::fmt;

/// An event as it is stored: the protobuf message name, its schema version and
/// its encoded bytes. Produced and consumed by [`EventCodec`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedEvent {
    /// Fully qualified protobuf message name, e.g. `acasa.demo.v1.CounterCreated`.
    pub type_name: String,
    /// Schema version of `data`.
    pub schema_version: u32,
    /// The protobuf-encoded message.
    pub data: Vec<u8>,
}

/// A stored event could not be understood.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("cannot decode event {type_name} v{schema_version}: {reason}")]
pub struct DecodeError {
    /// The event's type name.
    pub type_name: String,
    /// The event's schema version.
    pub schema_version: u32,
    /// Why it failed (never contains event data).
    pub reason: String,
}

impl DecodeError {
    /// A decode error for `event` with `reason`.
    pub fn new(event: &EncodedEvent, reason: impl Into<String>) -> Self {
        Self { type_name: event.type_name.clone(), schema_version: event.schema_version, reason: reason.into() }
    }
}

/// Conversion between a service's event enum and stored events, including
/// upcasting of older schema versions on decode.
pub trait EventCodec: Sized {
    /// Encodes the event for storage.
    fn encode(&self) -> EncodedEvent;
    /// Decodes a stored event, upcasting older versions.
    fn decode(event: &EncodedEvent) -> Result<Self, DecodeError>;
}

/// An event could not be encoded (e.g. its personal data could not be sealed).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("cannot encode event: {0}")]
pub struct EncodeError(pub String);

/// Encoding and decoding with context, e.g. a person's data key: the codec
/// the command loop uses for one aggregate. Events that need no context use
/// [`Plain`], which delegates to their [`EventCodec`].
pub trait Codec<E>: Send + Sync {
    /// Encodes an event for storage.
    fn encode(&self, event: &E) -> Result<EncodedEvent, EncodeError>;
    /// Decodes a stored event.
    fn decode(&self, event: &EncodedEvent) -> Result<E, DecodeError>;
}

/// The codec of events that encode without context.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plain;

impl<E: EventCodec> Codec<E> for Plain {
    fn encode(&self, event: &E) -> Result<EncodedEvent, EncodeError> {
        Ok(event.encode())
    }

    fn decode(&self, event: &EncodedEvent) -> Result<E, DecodeError> {
        E::decode(event)
    }
}

/// Why a command was refused by the domain, in transport-neutral terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectionKind {
    /// A business rule does not allow the command in the current state.
    FailedPrecondition,
    /// The aggregate the command addresses does not exist.
    NotFound,
    /// The command would create something that already exists.
    AlreadyExists,
    /// The command itself is malformed in a way only the domain can see.
    InvalidArgument,
}

/// Implemented by domain errors so the edge can map them without a catch-all.
pub trait Rejection: fmt::Display {
    /// The kind of refusal.
    fn kind(&self) -> RejectionKind;

    /// For [`RejectionKind::InvalidArgument`]: the request field at fault,
    /// so the edge can name it like any other field violation.
    fn field(&self) -> Option<&'static str> {
        None
    }

    /// For [`RejectionKind::FailedPrecondition`]: the rule that refused, a
    /// stable upper-case name (`TRAVEL_OVER_CAP`), so a client can act on it
    /// without parsing the message.
    fn rule(&self) -> Option<&'static str> {
        None
    }
}

/// An event-sourced aggregate: its state, the commands it decides and the
/// events it evolves by. Both functions are pure.
pub trait Aggregate: Default + Clone + Send + Sync + 'static {
    /// The command type.
    type Command: Send + Sync;
    /// The event type (encoded by an [`EventCodec`] or a [`Codec`]).
    type Event: Clone + Send + Sync;
    /// The domain error type.
    type Error: Rejection + std::error::Error + Send + Sync + 'static;

    /// The aggregate's name in subjects (`acasa.<service>.<KIND>.<id>`).
    const KIND: &'static str;

    /// The kind in the subject a command addresses: [`Self::KIND`]; a
    /// [`crate::pair::Pair`] answers its sides' kinds, so one command can
    /// hold an aggregate of each.
    fn subject_kind(command: &Self::Command) -> &'static str {
        let _ = command;
        Self::KIND
    }

    /// Decides which events a command produces in the current state.
    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Applies one event to the state.
    fn evolve(&mut self, event: &Self::Event);

    /// Whether the aggregate has been created (has any events).
    fn exists(&self) -> bool;

    /// The uniqueness claims that `events`, decided in this state, take or
    /// free. The command loop writes them in the same atomic batch as the
    /// events, so a claim is held exactly while the aggregate's own events
    /// say so. Pure: the values come from the state and the events.
    fn claims(&self, events: &[Self::Event]) -> Vec<ClaimChange> {
        let _ = events;
        Vec::new()
    }
}

/// A value that at most one aggregate may hold at a time (a national id, a
/// company code, a name). Stored only as a keyed hash of `value`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Claim {
    /// What kind of value (`idnp`, `idno`, …); part of the claim's subject.
    pub kind: &'static str,
    /// The value itself (never written anywhere in clear).
    pub value: String,
}

impl Claim {
    /// A claim of `value` of `kind`.
    pub fn new(kind: &'static str, value: impl Into<String>) -> Self {
        Self { kind, value: value.into() }
    }
}

/// A change to a claim that a command's events make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimChange {
    /// The aggregate takes the value; refused if another aggregate holds it.
    Acquire(Claim),
    /// The aggregate frees the value (if it holds it).
    Release(Claim),
    /// Not exclusive: the aggregate becomes the latest to hold a shared value
    /// (e.g. names and birth date), and the command learns who did before it
    /// and where (`Outcome::marks`). Marks of one value are written one after
    /// another (each expects the last), so none is missed by the next.
    Mark(Claim),
}
