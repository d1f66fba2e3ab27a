//! A per-client rate limit for the public, unauthenticated RPCs: a token
//! bucket per client key (the peer's address), refilled at `rate` per
//! second up to `burst`. Over the limit, RESOURCE_EXHAUSTED with a
//! `google.rpc.RetryInfo` saying when a request would be accepted.
//!
//! **Bounded memory.** At most `max_clients` buckets are kept; when the map
//! is full, buckets that have refilled completely (they hold no state a
//! fresh bucket would not) are dropped first, and if none has, the oldest
//! half goes. A flood from many addresses therefore costs a bounded amount
//! of memory, never an error for well-behaved clients.
//!
//! **The client key** is the TCP peer's IP address. Behind a proxy or load
//! balancer every request would come from it, so a deployment there either
//! sets the limit on the proxy or trusts one forwarded header
//! (`ACASA_CONTENT_TRUST_FORWARDED`): then the left-most address of
//! `x-forwarded-for` is the key.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use tonic::{Request, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// A token bucket per client.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    max_clients: usize,
    trust_forwarded: bool,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets kept at most, by default.
pub const MAX_CLIENTS: usize = 100_000;

impl RateLimiter {
    /// `rate` requests per second per client, bursts of up to `burst`
    /// (at least 1).
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate: if rate.is_finite() && rate > 0.0 { rate } else { 1.0 },
            burst: f64::from(burst.max(1)),
            max_clients: MAX_CLIENTS,
            trust_forwarded: false,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The same limiter keeping at most `max` buckets.
    #[must_use]
    pub fn with_max_clients(mut self, max: usize) -> Self {
        self.max_clients = max.max(1);
        self
    }

    /// The same limiter keyed by the left-most `x-forwarded-for` address
    /// when there is one (behind a trusted proxy only).
    #[must_use]
    pub fn trusting_forwarded(mut self, trust: bool) -> Self {
        self.trust_forwarded = trust;
        self
    }

    /// Takes one token of `client`'s bucket at `now`; over the limit, how
    /// long until one is there.
    pub fn take(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !buckets.contains_key(&client) && buckets.len() >= self.max_clients {
            self.prune(&mut buckets, now);
        }
        let bucket = buckets.entry(client).or_insert(Bucket { tokens: self.burst, at: now });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }

    fn prune(&self, buckets: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        let full = |b: &Bucket| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * self.rate >= self.burst;
        buckets.retain(|_, b| !full(b));
        if buckets.len() >= self.max_clients {
            let mut ages: Vec<Instant> = buckets.values().map(|b| b.at).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            buckets.retain(|_, b| b.at > cut);
        }
    }

    /// The client key of `request`: its peer's address (or the forwarded
    /// one, when trusted); `None` when unknown (e.g. a Unix socket).
    pub fn client_of<T>(&self, request: &Request<T>) -> Option<IpAddr> {
        if self.trust_forwarded
            && let Some(ip) = request
                .metadata()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok())
        {
            return Some(ip);
        }
        request.remote_addr().map(|a| a.ip())
    }

    /// Admits `request` or answers RESOURCE_EXHAUSTED with a retry delay.
    /// A request whose client is unknown shares one bucket with all such.
    pub fn admit<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let client = self.client_of(request).unwrap_or(IpAddr::from([0, 0, 0, 0]));
        self.take(client, Instant::now()).map_err(|wait| {
            Status::with_error_details(
                tonic::Code::ResourceExhausted,
                "too many requests from this client: slow down",
                ErrorDetails::with_retry_info(Some(wait.max(Duration::from_millis(1)))),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn a_burst_is_admitted_then_refused_until_the_bucket_refills() {
        let limiter = RateLimiter::new(10.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take(ip(1), t0), Ok(()));
        }
        let wait = limiter.take(ip(1), t0).unwrap_err();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100), "{wait:?}");
        // Another client has its own bucket.
        assert_eq!(limiter.take(ip(2), t0), Ok(()));
        // A tenth of a second later, one more.
        assert_eq!(limiter.take(ip(1), t0 + Duration::from_millis(100)), Ok(()));
        assert!(limiter.take(ip(1), t0 + Duration::from_millis(100)).is_err());
        // Never more than the burst, however long the pause.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(limiter.take(ip(1), later), Ok(()));
        }
        assert!(limiter.take(ip(1), later).is_err());
    }

    #[test]
    fn memory_is_bounded_and_busy_clients_keep_their_state() {
        let limiter = RateLimiter::new(1.0, 2).with_max_clients(4);
        let t0 = Instant::now();
        // Client 1 spends its burst.
        assert_eq!(limiter.take(ip(1), t0), Ok(()));
        assert_eq!(limiter.take(ip(1), t0), Ok(()));
        for n in 2..=20 {
            let _ = limiter.take(ip(n), t0);
            let _ = limiter.take(ip(n), t0);
        }
        assert!(limiter.buckets.lock().unwrap().len() <= 4);
        // A pruned client starts with a full bucket; one kept is still empty.
        let kept = limiter.buckets.lock().unwrap().contains_key(&ip(1));
        assert_eq!(limiter.take(ip(1), t0).is_err(), kept);
    }

    #[test]
    fn pruning_drops_refilled_buckets_first() {
        let limiter = RateLimiter::new(1.0, 1).with_max_clients(2);
        let t0 = Instant::now();
        assert_eq!(limiter.take(ip(1), t0), Ok(()));
        assert_eq!(limiter.take(ip(2), t0 + Duration::from_secs(5)), Ok(()));
        // At t0+5s client 1 has refilled, client 2 has not: 1 goes.
        assert_eq!(limiter.take(ip(3), t0 + Duration::from_secs(5)), Ok(()));
        let buckets = limiter.buckets.lock().unwrap();
        assert!(!buckets.contains_key(&ip(1)));
        assert!(buckets.contains_key(&ip(2)));
    }

    #[test]
    fn the_refusal_says_when_to_retry() {
        let limiter = RateLimiter::new(2.0, 1);
        let request = Request::new(());
        assert!(limiter.admit(&request).is_ok());
        let status = limiter.admit(&request).unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        let retry = status.get_details_retry_info().and_then(|r| r.retry_delay).unwrap();
        assert!(retry > Duration::ZERO && retry <= Duration::from_millis(500), "{retry:?}");
    }

    #[test]
    fn a_forwarded_address_counts_only_when_trusted() {
        let mut request = Request::new(());
        request.metadata_mut().insert("x-forwarded-for", "192.0.2.7, 10.0.0.1".parse().unwrap());
        assert_eq!(RateLimiter::new(1.0, 1).client_of(&request), None);
        let trusting = RateLimiter::new(1.0, 1).trusting_forwarded(true);
        assert_eq!(trusting.client_of(&request), Some(IpAddr::from([192, 0, 2, 7])));
    }
}
