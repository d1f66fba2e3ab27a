//! Uniqueness across aggregates, and creation ids derived from request ids,
//! through create-only entries in a JetStream key-value bucket.
//!
//! Keys are keyed hashes (HMAC-SHA256) of the identifier, never the
//! identifier: a national id does not appear in a subject or a key, and the
//! hash cannot be reversed by enumerating the 10^12 possible codes without
//! the key.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    kv::{self, CreateErrorKind},
    stream::StorageType,
};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use uuid::Uuid;

use crate::error::StoreError;

/// HMAC-SHA256 of identifiers, with a secret key from configuration.
#[derive(Clone)]
pub struct KeyedHasher {
    key: Vec<u8>,
}

impl std::fmt::Debug for KeyedHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedHasher(<secret>)")
    }
}

impl KeyedHasher {
    /// A hasher with `key` (at least 32 bytes recommended).
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into() }
    }

    /// Hex HMAC of `value` within `domain` (so equal values of different kinds differ).
    pub fn hash(&self, domain: &str, value: &str) -> String {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// The answer to a reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// The value is now (or already was) reserved for the asking owner.
    Granted,
    /// Another owner holds it.
    Held {
        /// The holder (an aggregate id).
        owner: String,
    },
}

/// A service's reservations bucket.
#[derive(Clone, Debug)]
pub struct Reservations {
    kv: kv::Store,
    hasher: KeyedHasher,
}

impl Reservations {
    /// Opens (declaring idempotently) the bucket `acasa-<service>-reservations`.
    pub async fn open(
        js: &jetstream::Context,
        service: &str,
        replicas: usize,
        hasher: KeyedHasher,
    ) -> Result<Self, StoreError> {
        let bucket = format!("acasa-{service}-reservations");
        let kv = match js.get_key_value(&bucket).await {
            Ok(kv) => kv,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: bucket.clone(),
                    description: format!("Acasă {service}: unique keys and request ids (hashed)"),
                    history: 1,
                    storage: StorageType::File,
                    num_replicas: replicas,
                    max_age: Duration::ZERO,
                    ..Default::default()
                })
                .await
                .map_err(StoreError::nats)?,
        };
        Ok(Self { kv, hasher })
    }

    fn key(&self, kind: &str, value: &str) -> String {
        format!("{kind}.{}", self.hasher.hash(kind, value))
    }

    /// Reserves `value` of `kind` for `owner`, create-only: exactly one owner
    /// wins however many ask at once.
    pub async fn reserve(&self, kind: &str, value: &str, owner: &str) -> Result<Reservation, StoreError> {
        let key = self.key(kind, value);
        match self.kv.create(&key, owner.to_owned().into()).await {
            Ok(_) => Ok(Reservation::Granted),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {
                let held = self.kv.get(&key).await.map_err(StoreError::nats)?;
                match held {
                    Some(bytes) if bytes.as_ref() == owner.as_bytes() => Ok(Reservation::Granted),
                    Some(bytes) => Ok(Reservation::Held { owner: String::from_utf8_lossy(&bytes).into_owned() }),
                    // Released in between: try once more.
                    None => match self.kv.create(&key, owner.to_owned().into()).await {
                        Ok(_) => Ok(Reservation::Granted),
                        Err(e) => Err(StoreError::nats(e)),
                    },
                }
            }
            Err(e) => Err(StoreError::nats(e)),
        }
    }

    /// Moves a reservation from `from` (found dangling: its aggregate was never
    /// created) to `to`, only if `from` still holds it.
    pub async fn take_over(&self, kind: &str, value: &str, from: &str, to: &str) -> Result<Reservation, StoreError> {
        let key = self.key(kind, value);
        let entry = self.kv.entry(&key).await.map_err(StoreError::nats)?;
        match entry {
            Some(e) if e.operation == kv::Operation::Put && e.value.as_ref() == from.as_bytes() => {
                match self.kv.update(&key, to.to_owned().into(), e.revision).await {
                    Ok(_) => Ok(Reservation::Granted),
                    Err(_) => self.reserve(kind, value, to).await,
                }
            }
            _ => self.reserve(kind, value, to).await,
        }
    }

    /// Releases `value` if `owner` holds it, leaving no history of the key.
    pub async fn release(&self, kind: &str, value: &str, owner: &str) -> Result<(), StoreError> {
        let key = self.key(kind, value);
        let entry = self.kv.entry(&key).await.map_err(StoreError::nats)?;
        if let Some(e) = entry
            && e.operation == kv::Operation::Put
            && e.value.as_ref() == owner.as_bytes()
        {
            self.kv.purge_expect_revision(&key, Some(e.revision)).await.map_err(StoreError::nats)?;
        }
        Ok(())
    }

    /// The id of the aggregate a creating request makes: a fresh UUIDv7 the
    /// first time, the same id for every retry of the request, forever.
    /// Returns the id and whether it was fresh.
    pub async fn id_for_request(&self, scope: &str, request_id: &str) -> Result<(Uuid, bool), StoreError> {
        let fresh = Uuid::now_v7();
        let kind = format!("request.{scope}");
        match self.reserve(&kind, request_id, &fresh.to_string()).await? {
            Reservation::Granted => Ok((fresh, true)),
            Reservation::Held { owner } => Uuid::parse_str(&owner)
                .map(|id| (id, false))
                .map_err(|_| StoreError::Nats(format!("request reservation holds a non-uuid value ({scope})"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_keyed_and_domain_separated() {
        let a = KeyedHasher::new(b"k1".to_vec());
        let b = KeyedHasher::new(b"k2".to_vec());
        assert_eq!(a.hash("idnp", "2000000000001"), a.hash("idnp", "2000000000001"));
        assert_ne!(a.hash("idnp", "2000000000001"), b.hash("idnp", "2000000000001"));
        assert_ne!(a.hash("idnp", "x"), a.hash("idno", "x"));
        assert_eq!(a.hash("idnp", "x").len(), 64);
        assert!(!a.hash("idnp", "2000000000001").contains("2000000000001"));
    }
}
