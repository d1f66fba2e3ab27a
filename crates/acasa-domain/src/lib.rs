//! The shared domain kernel: what every service's pure domain logic stands on.
//!
//! Nothing here does I/O. Services implement [`Aggregate`] for their state,
//! with `decide` and `evolve` as pure functions, and validate untrusted input
//! into the newtypes of [`validate`] before the domain ever sees it.

mod aggregate;
pub mod formats;
pub mod pair;
pub mod slots;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod validate;

pub use aggregate::{
    Aggregate, Claim, ClaimChange, Codec, DecodeError, EncodeError, EncodedEvent, EventCodec, Plain, Rejection,
    RejectionKind,
};
pub use validate::{FieldViolation, RequestId, Violations};
