//! The one mapping from failures to gRPC statuses.
//!
//! Bad input → `INVALID_ARGUMENT` with `google.rpc.BadRequest` field
//! violations; broken business rules → `FAILED_PRECONDITION`; lost
//! optimistic-concurrency races → `ABORTED`; missing aggregates → `NOT_FOUND`;
//! an unreachable broker or database → `UNAVAILABLE`; `INTERNAL` only for bugs
//! and corrupt data, logged with detail and answered without it.

use acasa_domain::{Rejection, RejectionKind, Violations};
use acasa_eventstore::{CommandError, StoreError};
use acasa_projection::WaitError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// Every way an RPC can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Fields of the request are invalid.
    #[error("invalid request: {0}")]
    Invalid(Violations),
    /// The domain refused the command.
    #[error("{message}")]
    Rejected {
        /// Why, in the domain's terms.
        kind: RejectionKind,
        /// The domain's message.
        message: String,
        /// The rule that refused (a FAILED_PRECONDITION's
        /// `google.rpc.PreconditionFailure` violation type), if named.
        rule: Option<&'static str>,
    },
    /// The command would create a second record of something unique; names
    /// the existing record's id (also as `existing_id` in an ErrorInfo detail).
    #[error("{message}")]
    Duplicate {
        /// What is duplicated, for the client.
        message: String,
        /// The existing record's id.
        existing_id: String,
    },
    /// The request names something that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Concurrent writers kept winning.
    #[error("too much contention; retry the request")]
    Contention,
    /// A request id was reused for a different command.
    #[error("request_id was already used for a different command")]
    RequestIdReused,
    /// The read model did not catch up before the deadline.
    #[error("{0}")]
    NotCaughtUp(String),
    /// A position (or another bound) past what exists; names the field.
    #[error("{field}: {message}")]
    OutOfRange {
        /// The request's field.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// The caller (or all callers together) hold as much as allowed.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The broker or database cannot be reached; retrying may help. The
    /// client is told which (`what`); the detail is logged only.
    #[error("{what} unavailable: {detail}")]
    Unavailable {
        /// What is unavailable, in the client's terms.
        what: &'static str,
        /// The underlying error, for the log.
        detail: String,
    },
    /// A bug or corrupt data.
    #[error("{0}")]
    Internal(String),
}

impl From<Violations> for ApiError {
    fn from(v: Violations) -> Self {
        Self::Invalid(v)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Nats(detail) => Self::Unavailable { what: "the event log", detail },
            StoreError::Corrupt { .. } | StoreError::Decode { .. } | StoreError::Encode(_) => {
                Self::Internal(e.to_string())
            }
        }
    }
}

impl<E: Rejection> From<CommandError<E>> for ApiError {
    fn from(e: CommandError<E>) -> Self {
        match e {
            CommandError::Rejected(r) => match (r.kind(), r.field()) {
                (RejectionKind::InvalidArgument, Some(field)) => {
                    let mut v = Violations::new();
                    v.add(field, r.to_string());
                    Self::Invalid(v)
                }
                (kind, _) => Self::Rejected { kind, message: r.to_string(), rule: r.rule() },
            },
            CommandError::Contention => Self::Contention,
            CommandError::RequestIdReused => Self::RequestIdReused,
            CommandError::Claimed { kind, owner } => {
                Self::Duplicate { message: format!("this {kind} is already held by {owner}"), existing_id: owner }
            }
            CommandError::Store(s) => s.into(),
        }
    }
}

impl From<WaitError> for ApiError {
    fn from(e: WaitError) -> Self {
        Self::waiting(e, "min_position")
    }
}

impl ApiError {
    /// A failed wait for the read model at the position in request field `field`.
    pub fn waiting(e: WaitError, field: &'static str) -> Self {
        match e {
            WaitError::Timeout { .. } => Self::NotCaughtUp(e.to_string()),
            WaitError::BeyondLog { .. } => Self::OutOfRange { field, message: e.to_string() },
            WaitError::TooManyWaiters => Self::ResourceExhausted(e.to_string()),
            WaitError::Database(d) => d.into(),
            WaitError::Broker(detail) => Self::Unavailable { what: "the event log", detail },
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                Self::Unavailable { what: "the database", detail: e.to_string() }
            }
            // Cancelled by the statement timeout, or the server shutting down
            // / restarting (SQLSTATE class 57, and 08 connection exceptions).
            sqlx::Error::Database(ref d) if d.code().is_some_and(|c| c.starts_with("57") || c.starts_with("08")) => {
                Self::Unavailable { what: "the database", detail: e.to_string() }
            }
            other => Self::Internal(format!("read model: {other}")),
        }
    }
}

impl From<acasa_vault::VaultError> for ApiError {
    fn from(e: acasa_vault::VaultError) -> Self {
        match e {
            acasa_vault::VaultError::Database(d) => d.into(),
            acasa_vault::VaultError::Erased(_) => Self::Rejected {
                kind: RejectionKind::FailedPrecondition,
                message: "the person was erased".into(),
                rule: Some("PERSON_ERASED"),
            },
            other => Self::Internal(format!("vault: {other}")),
        }
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Invalid(v) => {
                let mut details = ErrorDetails::new();
                for f in v.iter() {
                    details.add_bad_request_violation(f.field.clone(), f.description.clone());
                }
                Status::with_error_details(Code::InvalidArgument, format!("invalid request: {v}"), details)
            }
            ApiError::Rejected { kind, message, rule } => match kind {
                RejectionKind::FailedPrecondition => match rule {
                    Some(rule) => {
                        let mut details = ErrorDetails::new();
                        details.add_precondition_failure_violation(rule, "", message.clone());
                        Status::with_error_details(Code::FailedPrecondition, message, details)
                    }
                    None => Status::failed_precondition(message),
                },
                RejectionKind::NotFound => Status::not_found(message),
                RejectionKind::AlreadyExists => Status::already_exists(message),
                RejectionKind::InvalidArgument => Status::invalid_argument(message),
            },
            ApiError::Duplicate { message, existing_id } => {
                let metadata = std::collections::HashMap::from([("existing_id".to_owned(), existing_id)]);
                let details = ErrorDetails::with_error_info("DUPLICATE", "acasa", metadata);
                Status::with_error_details(Code::AlreadyExists, message, details)
            }
            ApiError::NotFound(m) => Status::not_found(m),
            ApiError::Contention => Status::aborted("too much contention on the aggregate; retry the request"),
            ApiError::RequestIdReused => {
                Status::failed_precondition("request_id was already used for a different command")
            }
            ApiError::NotCaughtUp(m) => Status::deadline_exceeded(m),
            ApiError::OutOfRange { field, message } => {
                let mut details = ErrorDetails::new();
                details.add_bad_request_violation(field, message.clone());
                Status::with_error_details(Code::OutOfRange, format!("{field}: {message}"), details)
            }
            ApiError::ResourceExhausted(m) => Status::resource_exhausted(m),
            ApiError::Unavailable { what, detail } => {
                tracing::warn!(reason = %detail, "{what} unavailable");
                Status::unavailable(format!(
                    "{what} is unavailable; retry (a command with the same request_id is safe to retry)"
                ))
            }
            ApiError::Internal(m) => {
                tracing::error!(reason = %m, "internal error");
                Status::internal("internal error; it has been logged")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_become_bad_request_details() {
        let mut v = Violations::new();
        v.add("name", "is required");
        v.add("limit", "must not be negative");
        let s: Status = ApiError::from(v).into();
        assert_eq!(s.code(), Code::InvalidArgument);
        let br = s.get_error_details().bad_request().cloned().unwrap();
        let fields: Vec<_> = br.field_violations.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["name", "limit"]);
    }

    #[test]
    fn unavailable_names_what_and_hides_the_detail() {
        let s: Status = ApiError::from(StoreError::Nats("nats: timed out at 10.0.3.7:4222".into())).into();
        assert_eq!(s.code(), Code::Unavailable);
        assert!(s.message().starts_with("the event log is unavailable"), "{}", s.message());
        assert!(!s.message().contains("10.0.3.7"), "{}", s.message());
        let s: Status = ApiError::from(sqlx::Error::PoolTimedOut).into();
        assert_eq!(s.code(), Code::Unavailable);
        assert!(s.message().starts_with("the database is unavailable"), "{}", s.message());
    }

    #[test]
    fn an_erased_subject_is_a_failed_precondition() {
        let s: Status = ApiError::from(acasa_vault::VaultError::Erased(uuid::Uuid::nil())).into();
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert!(!s.message().contains("00000000"), "no id in the answer: {}", s.message());
    }

    #[test]
    fn a_broken_rule_is_named_in_a_precondition_failure() {
        #[derive(Debug)]
        struct Full;
        impl std::fmt::Display for Full {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("every place is taken")
            }
        }
        impl acasa_domain::Rejection for Full {
            fn kind(&self) -> RejectionKind {
                RejectionKind::FailedPrecondition
            }
            fn rule(&self) -> Option<&'static str> {
                Some("OFFER_FULL")
            }
        }
        let s: Status = ApiError::from(CommandError::Rejected(Full)).into();
        assert_eq!((s.code(), s.message()), (Code::FailedPrecondition, "every place is taken"));
        let pf = s.get_error_details().precondition_failure().cloned().unwrap();
        assert_eq!(pf.violations.len(), 1);
        assert_eq!(
            (pf.violations[0].r#type.as_str(), pf.violations[0].description.as_str()),
            ("OFFER_FULL", "every place is taken")
        );
        // Without a rule: the code and the message only.
        let s: Status =
            ApiError::Rejected { kind: RejectionKind::FailedPrecondition, message: "no".into(), rule: None }.into();
        assert!(s.get_error_details().precondition_failure().is_none());
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let s: Status = ApiError::Internal("secret detail".into()).into();
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("secret"));
    }
}
