//! The edge's validation of the demo's requests: every bad field named.

use uuid::Uuid;

/// A required UUID.
pub fn id(s: &str) -> Result<Uuid, &'static str> {
    if s.is_empty() {
        return Err("is required");
    }
    Uuid::parse_str(s).map_err(|_| "must be a UUID")
}
