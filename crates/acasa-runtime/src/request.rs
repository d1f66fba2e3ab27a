//! Helpers every handler uses: the call's deadline, the command's digest and
//! metadata for the command loop.

use std::time::Duration;

use acasa_domain::{RequestId, Violations};
use acasa_eventstore::CommandMeta;
use acasa_proto::Idempotent;
use sha2::{Digest as _, Sha256};
use tokio::time::Instant;
use tonic::Request;

use crate::auth::Principal;

/// Longest a query waits for a read model when the caller set no deadline.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);
/// Longest a query ever waits.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// The call's deadline from its `grpc-timeout` header (default 5 s, at most 30 s).
pub fn deadline<T>(request: &Request<T>) -> Instant {
    let timeout = request
        .metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
        .unwrap_or(DEFAULT_WAIT)
        .min(MAX_WAIT);
    // Leave a little time to answer before the client gives up.
    Instant::now() + timeout.saturating_sub(Duration::from_millis(5))
}

fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    let (num, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The method of a command: its request message's full name (one request
/// message per RPC, by the API's lint rules).
pub fn method<M: prost::Name>() -> String {
    M::full_name()
}

/// SHA-256 over a request's method and its encoding with its request id
/// cleared: equal for retries of the same call, different for another body
/// or another method — GiveConsent and WithdrawConsent have byte-identical
/// bodies, so the body alone cannot tell them apart.
pub fn digest<M: Idempotent>(message: &M) -> Vec<u8> {
    let mut m = message.clone();
    m.clear_request_id();
    let mut h = Sha256::new();
    h.update(method::<M>().as_bytes());
    h.update([0]);
    h.update(m.encode_to_vec());
    h.finalize().to_vec()
}

/// Validates `request_id` into `violations` and builds the command metadata
/// of a caller's call: its request ids are scoped by the caller.
pub fn command_meta(
    principal: &Principal,
    request_id: &str,
    method: String,
    digest: Vec<u8>,
    violations: &mut Violations,
) -> Option<CommandMeta> {
    let request_id = violations.check("request_id", RequestId::parse(request_id))?;
    Some(CommandMeta { request_id, actor: principal.subject.clone(), scope: principal.scope(), method, digest })
}

/// [`command_meta`] for a request message: its request id validated, its
/// digest taken over its method and its body without the request id.
pub fn meta_of<M: Idempotent>(principal: &Principal, violations: &mut Violations, message: &M) -> Option<CommandMeta> {
    command_meta(principal, message.request_id(), method::<M>(), digest(message), violations)
}

/// The metadata of a command the system proposes itself (a worker), in a
/// scope no caller's token can reach.
pub fn system_meta(worker: &str, request_id: RequestId, method: &str) -> CommandMeta {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(request_id.as_str().as_bytes());
    CommandMeta {
        request_id,
        actor: worker.to_owned(),
        scope: format!("system:{worker}"),
        method: method.to_owned(),
        digest: h.finalize().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_tells_methods_with_equal_bodies_apart() {
        use acasa_proto::registry::v1::{GiveConsentRequest, WithdrawConsentRequest};
        let give = GiveConsentRequest { request_id: "r".into(), person_id: "p".into(), ..Default::default() };
        let withdraw = WithdrawConsentRequest { request_id: "r".into(), person_id: "p".into(), ..Default::default() };
        assert_eq!(prost::Message::encode_to_vec(&give), prost::Message::encode_to_vec(&withdraw));
        let a = digest(&give);
        let b = digest(&withdraw);
        assert_ne!(a, b);
        let retried = GiveConsentRequest { request_id: "other".into(), ..give.clone() };
        assert_eq!(a, digest(&retried), "the request id is not part of the digest");
        assert_eq!(method::<GiveConsentRequest>(), "acasa.registry.v1.GiveConsentRequest");
    }

    #[test]
    fn system_scopes_are_out_of_reach_of_tokens() {
        let meta = system_meta("deadlines", RequestId::parse("sla-breach:x").unwrap(), "RecordSlaBreach");
        assert_eq!(meta.scope, "system:deadlines");
        let caller = Principal { subject: "system:deadlines".into(), roles: vec![], partner_id: None, host_id: None };
        assert_ne!(caller.scope(), meta.scope);
    }

    #[test]
    fn a_callers_request_becomes_metadata_scoped_by_the_caller() {
        use acasa_proto::registry::v1::GiveConsentRequest;
        let partner =
            Principal { subject: "bank-7".into(), roles: vec![], partner_id: Some("p-1".into()), host_id: None };
        let req = GiveConsentRequest { request_id: "r-1".into(), person_id: "x".into(), ..Default::default() };
        let mut v = Violations::new();
        let meta = meta_of(&partner, &mut v, &req).unwrap();
        assert!(v.is_empty());
        assert_eq!(meta.request_id.as_str(), "r-1");
        assert_eq!((meta.actor.as_str(), meta.scope.as_str()), ("bank-7", "api:bank-7|partner:p-1"));
        assert_eq!(meta.method, "acasa.registry.v1.GiveConsentRequest");
        assert_eq!(meta.digest, digest(&req));
        let bad = GiveConsentRequest { request_id: "has space".into(), ..req };
        assert!(meta_of(&partner, &mut v, &bad).is_none());
        assert_eq!(v.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["request_id"]);
    }

    #[test]
    fn the_deadline_follows_the_callers_timeout_within_bounds() {
        let mut r = Request::new(());
        r.metadata_mut().insert("grpc-timeout", "2S".parse().unwrap());
        let left = deadline(&r) - Instant::now();
        assert!(left > Duration::from_millis(1900) && left <= Duration::from_secs(2), "{left:?}");
        let mut r = Request::new(());
        r.metadata_mut().insert("grpc-timeout", "1H".parse().unwrap());
        assert!(deadline(&r) - Instant::now() <= MAX_WAIT);
        let left = deadline(&Request::new(())) - Instant::now();
        assert!(left > DEFAULT_WAIT - Duration::from_millis(100) && left <= DEFAULT_WAIT, "{left:?}");
    }

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("3H"), Some(Duration::from_secs(3 * 3600)));
        assert_eq!(parse_grpc_timeout("4M"), Some(Duration::from_secs(240)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("9n"), Some(Duration::from_nanos(9)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
    }
}
