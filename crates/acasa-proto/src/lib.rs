//! Generated protobuf messages and gRPC services of the Acasă APIs and events.
//!
//! This is the only crate that knows prost types; every other crate converts
//! at its edge.

#![allow(clippy::all, clippy::pedantic, missing_docs)] // generated code

/// The encoded `FileDescriptorSet` of every proto file, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/acasa_descriptor.bin"));

/// `acasa.eventstore.v1`: the commit envelope of every event log entry.
pub mod eventstore {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/acasa.eventstore.v1.rs"));
    }
}

/// `acasa.demo.v1`: the small counter service that proves the platform.
pub mod demo {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/acasa.demo.v1.rs"));
    }
}

/// `acasa.type.v1`: value types shared by the APIs.
pub mod r#type {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/acasa.r#type.v1.rs"));
    }
}

/// `acasa.registry.v1`: people, consent, duplicates and erasure.
pub mod registry {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/acasa.registry.v1.rs"));
    }
}

/// `acasa.referrals.v1`: partners, referrals and their events.
pub mod referrals {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/acasa.referrals.v1.rs"));
    }
}

/// `acasa.partner.v1`: the partner integration events of the partner feeds.
pub mod partner {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/acasa.partner.v1.rs"));
    }
}

/// Conversions between protobuf well-known times and `chrono`.
pub mod time {
    use chrono::{DateTime, Utc};
    use prost_types::Timestamp;

    /// The protobuf timestamp of a UTC time.
    pub fn timestamp(t: DateTime<Utc>) -> Timestamp {
        Timestamp { seconds: t.timestamp(), nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0) }
    }

    /// The UTC time of a protobuf timestamp (negative nanos read as 0),
    /// `None` if out of range.
    pub fn checked_time(t: &Timestamp) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
    }
}

pub use prost::Message;
pub use prost::Name;
pub use prost_types::Duration;
pub use prost_types::Timestamp;
