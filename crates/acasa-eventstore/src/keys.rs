//! Keyed hashes of identifiers, and the subjects of uniqueness claims and
//! request records built from them.
//!
//! A national id, a company code or a client's request id never appears in a
//! subject: only HMAC-SHA256 under a secret key from configuration, which
//! cannot be reversed by enumerating the 10^12 possible codes without the key.

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

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

    /// The key of a request: `<scope hash>.<request hash>`, both keyed. The
    /// scope is the caller's (`api:<subject>…`, `system:<worker>`), so two
    /// callers' request ids never meet, and ids a worker proposes live in a
    /// scope no token can name.
    pub fn request_key(&self, scope: &str, request_id: &str) -> String {
        let scope_hash = self.hash("request-scope", scope);
        let id_hash = self.hash(&format!("request\0{scope}"), request_id);
        format!("{}.{}", &scope_hash[..32], &id_hash[..32])
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

    #[test]
    fn request_keys_are_scoped_by_caller() {
        let h = KeyedHasher::new(b"k".to_vec());
        let a = h.request_key("api:alice", "r-1");
        assert_eq!(a, h.request_key("api:alice", "r-1"));
        assert_ne!(a, h.request_key("api:bob", "r-1"));
        assert_ne!(a, h.request_key("api:alice", "r-2"));
        assert_ne!(
            h.request_key("system:deadlines", "sla-breach:x"),
            h.request_key("api:system:deadlines", "sla-breach:x")
        );
        // Two subject tokens, no dots inside them, nothing in clear.
        let tokens: Vec<&str> = a.split('.').collect();
        assert_eq!(tokens.len(), 2);
        assert!(tokens.iter().all(|t| t.len() == 32 && t.chars().all(|c| c.is_ascii_hexdigit())));
        assert!(!a.contains("alice"));
    }
}
