//! Validation at the edge: field violations gathered per request, and the
//! validated newtypes shared by every service.

use std::fmt;

/// One invalid field: its path in the request (e.g. `contacts[0].email`) and
/// what is wrong, in words a client developer can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field path.
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

/// All violations found in one request; validation reports every bad field at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation of `field`.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation { field: field.into(), description: description.into() });
    }

    /// Runs a parser, recording its error against `field`; returns the value if valid.
    pub fn check<T, E: fmt::Display>(&mut self, field: &str, parsed: Result<T, E>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }

    /// A required UUID in `field`.
    pub fn id(&mut self, field: &str, s: &str) -> Option<uuid::Uuid> {
        if s.is_empty() {
            self.add(field, "is required");
            return None;
        }
        let parsed = uuid::Uuid::parse_str(s).map_err(|_| "must be a UUID");
        self.check(field, parsed)
    }

    /// Whether no field was bad.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The violations.
    pub fn iter(&self) -> impl Iterator<Item = &FieldViolation> {
        self.0.iter()
    }

    /// `Ok(())` if empty, else `Err(self)`.
    pub fn into_result(self) -> Result<(), Violations> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", v.field, v.description)?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

/// A client's idempotency key: 1 to 128 characters of `[A-Za-z0-9._:-]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(String);

/// Why a request id is invalid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestIdError {
    /// Empty.
    #[error("is required")]
    Empty,
    /// Longer than 128 characters.
    #[error("must be at most 128 characters")]
    TooLong,
    /// A character outside the allowed set.
    #[error("may contain only letters, digits and . _ : -")]
    BadCharacter,
}

impl RequestId {
    /// The longest accepted request id.
    pub const MAX_LEN: usize = 128;

    /// Validates a request id.
    pub fn parse(s: &str) -> Result<Self, RequestIdError> {
        if s.is_empty() {
            return Err(RequestIdError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(RequestIdError::TooLong);
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')) {
            return Err(RequestIdError::BadCharacter);
        }
        Ok(Self(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_checked() {
        assert!(RequestId::parse("r-1.a_b:c").is_ok());
        assert_eq!(RequestId::parse(""), Err(RequestIdError::Empty));
        assert_eq!(RequestId::parse(&"a".repeat(129)), Err(RequestIdError::TooLong));
        assert_eq!(RequestId::parse("a b"), Err(RequestIdError::BadCharacter));
        assert_eq!(RequestId::parse("é"), Err(RequestIdError::BadCharacter));
    }

    #[test]
    fn violations_gather_every_field() {
        let mut v = Violations::new();
        assert_eq!(v.check("a", RequestId::parse("ok")).map(|r| r.to_string()), Some("ok".into()));
        assert!(v.check("b", RequestId::parse("")).is_none());
        v.add("c", "bad");
        assert_eq!(v.to_string(), "b: is required; c: bad");
        assert!(v.into_result().is_err());
    }
}
