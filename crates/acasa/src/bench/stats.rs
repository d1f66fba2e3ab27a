//! What every measurement reports: throughput and latency percentiles, and
//! the closed-loop driver the measurements share.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;

/// Throughput and latency of one measurement.
#[derive(Debug, Serialize)]
pub struct Rate {
    /// Operations completed.
    pub ops: usize,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Operations per second.
    pub per_second: f64,
    /// Median latency in milliseconds (where measured per operation).
    pub p50_ms: Option<f64>,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: Option<f64>,
}

/// The rate and latencies of one step of a mix.
#[derive(Debug, Serialize)]
pub struct StepRate {
    /// The command.
    pub command: &'static str,
    /// Its rate and latencies.
    pub rate: Rate,
}

/// Peak resident set size (VmHWM) of process `pid`, MiB.
pub(crate) fn peak_rss_mib(pid: Option<u32>) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub(crate) fn rate(ops: usize, elapsed: Duration, mut latencies: Vec<Duration>) -> Rate {
    let seconds = elapsed.as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| -> Option<f64> {
        if latencies.is_empty() {
            return None;
        }
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(i).map(|d| d.as_secs_f64() * 1000.0)
    };
    Rate { ops, seconds, per_second: ops as f64 / seconds.max(1e-9), p50_ms: pct(0.50), p99_ms: pct(0.99) }
}

/// Runs `op(0..total)` on `writers` tasks, each awaiting one operation at a
/// time; returns the wall time and each operation's latency.
pub(crate) async fn concurrently<F, Fut>(
    total: usize,
    writers: usize,
    op: F,
) -> anyhow::Result<(Duration, Vec<Duration>)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let op = op.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(lat);
                }
                let t = Instant::now();
                op(i).await?;
                lat.push(t.elapsed());
            }
        }));
    }
    let mut lat = Vec::with_capacity(total);
    for t in tasks {
        lat.extend(t.await??);
    }
    Ok((start.elapsed(), lat))
}
