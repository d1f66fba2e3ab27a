//! Helpers every handler uses: the call's deadline, the command's digest and
//! metadata for the command loop.

use std::time::Duration;

use acasa_domain::{RequestId, Violations};
use acasa_eventstore::CommandMeta;
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

/// SHA-256 of a request's encoding with its request id cleared: equal for
/// retries of the same command, different for a different command.
pub fn digest<M: prost::Message + Clone>(message: &M, clear_request_id: impl FnOnce(&mut M)) -> Vec<u8> {
    let mut m = message.clone();
    clear_request_id(&mut m);
    Sha256::digest(m.encode_to_vec()).to_vec()
}

/// Validates `request_id` into `violations` and builds the command metadata.
pub fn command_meta(
    principal: &Principal,
    request_id: &str,
    digest: Vec<u8>,
    violations: &mut Violations,
) -> Option<CommandMeta> {
    let request_id = violations.check("request_id", RequestId::parse(request_id))?;
    Some(CommandMeta { request_id, actor: principal.subject.clone(), digest })
}

/// [`command_meta`] for a request message, its digest taken without its
/// request id (`clear` empties it).
pub fn meta_of<M: prost::Message + Clone>(
    principal: &Principal,
    violations: &mut Violations,
    request_id: &str,
    message: &M,
    clear: impl FnOnce(&mut M),
) -> Option<CommandMeta> {
    command_meta(principal, request_id, digest(message, clear), violations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
    }
}
