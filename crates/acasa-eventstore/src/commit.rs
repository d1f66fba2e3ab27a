//! Commits as written to and read from the log, and their NATS headers.

use acasa_domain::EncodedEvent;
use acasa_proto::{
    Message as _, Timestamp,
    eventstore::v1::{Commit, Event},
};
use async_nats::HeaderMap;
use chrono::{DateTime, Utc};

use crate::error::StoreError;

/// Header naming the event types of a commit, comma-separated, in order.
pub const HEADER_EVENT_TYPES: &str = "Acasa-Event-Types";
/// Header with the commit envelope's schema version.
pub const HEADER_SCHEMA_VERSION: &str = "Acasa-Schema-Version";
/// The commit envelope's schema version.
pub const COMMIT_SCHEMA_VERSION: u32 = 1;

/// A commit about to be appended: all events of one command.
///
/// The client's request id is not stored, only its keyed hash (`request_key`):
/// a request id a client chose may carry anything, and the log is kept forever.
#[derive(Clone, Debug)]
pub struct NewCommit {
    /// The request's scoped key (see `KeyedHasher::request_key`).
    pub request_key: String,
    /// The command's method (its request message's full name).
    pub method: String,
    /// The authenticated actor (an id, never personal data).
    pub actor: String,
    /// SHA-256 of the command, to refuse a reused request id with another command.
    pub request_digest: Vec<u8>,
    /// The events, in order. Never empty.
    pub events: Vec<EncodedEvent>,
    /// When the command was decided.
    pub recorded_at: DateTime<Utc>,
}

impl NewCommit {
    /// The size of the encoded commit message in bytes.
    pub fn encoded_len(&self) -> usize {
        self.encode().len()
    }

    pub fn encode(&self) -> Vec<u8> {
        Commit {
            events: self
                .events
                .iter()
                .map(|e| Event { r#type: e.type_name.clone(), schema_version: e.schema_version, data: e.data.clone() })
                .collect(),
            recorded_at: Some(Timestamp {
                seconds: self.recorded_at.timestamp(),
                nanos: i32::try_from(self.recorded_at.timestamp_subsec_nanos()).unwrap_or(0),
            }),
            actor: self.actor.clone(),
            request_digest: self.request_digest.clone(),
            request_key: self.request_key.clone(),
            method: self.method.clone(),
        }
        .encode_to_vec()
    }

    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        let types: Vec<&str> = self.events.iter().map(|e| e.type_name.as_str()).collect();
        h.insert(HEADER_EVENT_TYPES, types.join(",").as_str());
        h.insert(HEADER_SCHEMA_VERSION, COMMIT_SCHEMA_VERSION.to_string().as_str());
        h
    }
}

/// A commit read back from the log.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredCommit {
    /// Its stream sequence: the position clients use for read-your-writes.
    pub sequence: u64,
    /// The aggregate's subject.
    pub subject: String,
    /// The request's scoped key (empty in commits from before request records).
    pub request_key: String,
    /// The command's method (empty in commits from before request records).
    pub method: String,
    /// The actor that issued the command.
    pub actor: String,
    /// SHA-256 of the command.
    pub request_digest: Vec<u8>,
    /// The events.
    pub events: Vec<EncodedEvent>,
    /// When it was decided.
    pub recorded_at: DateTime<Utc>,
}

impl StoredCommit {
    /// Decodes a commit payload stored at `sequence` on `subject`.
    pub fn decode(sequence: u64, subject: &str, payload: &[u8]) -> Result<Self, StoreError> {
        let c = Commit::decode(payload)
            .map_err(|e| StoreError::Corrupt { sequence, reason: format!("commit envelope: {e}") })?;
        if c.events.is_empty() {
            return Err(StoreError::Corrupt { sequence, reason: "commit without events".into() });
        }
        let recorded_at = c
            .recorded_at
            .and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
            .unwrap_or_default();
        Ok(Self {
            sequence,
            subject: subject.to_owned(),
            request_key: c.request_key,
            method: c.method,
            actor: c.actor,
            request_digest: c.request_digest,
            events: c
                .events
                .into_iter()
                .map(|e| EncodedEvent { type_name: e.r#type, schema_version: e.schema_version, data: e.data })
                .collect(),
            recorded_at,
        })
    }

    /// The aggregate id: the last token of the subject.
    pub fn aggregate_id(&self) -> &str {
        self.subject.rsplit('.').next().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_round_trips() {
        let new = NewCommit {
            request_key: "a.b".into(),
            method: "m".into(),
            actor: "u1".into(),
            request_digest: vec![1, 2, 3],
            events: vec![EncodedEvent { type_name: "a.B".into(), schema_version: 2, data: vec![9] }],
            recorded_at: DateTime::from_timestamp(1_700_000_000, 5).unwrap_or_default(),
        };
        let stored = StoredCommit::decode(7, "acasa.demo.counter.x", &new.encode()).unwrap();
        assert_eq!(stored.sequence, 7);
        assert_eq!(stored.aggregate_id(), "x");
        assert_eq!(stored.request_key, "a.b");
        assert_eq!(stored.method, "m");
        assert_eq!(stored.events, new.events);
        assert_eq!(stored.recorded_at, new.recorded_at);
        let h = new.headers();
        assert_eq!(h.get(HEADER_EVENT_TYPES).map(|v| v.as_str()), Some("a.B"));
    }

    #[test]
    fn garbage_is_reported_not_panicked() {
        assert!(matches!(
            StoredCommit::decode(3, "s", &[0xff, 0xff, 0xff]),
            Err(StoreError::Corrupt { sequence: 3, .. })
        ));
        assert!(matches!(StoredCommit::decode(4, "s", &[]), Err(StoreError::Corrupt { sequence: 4, .. })));
    }
}
