//! `acasa bench`: the platform measured against the raw ceilings, in one run
//! on the same servers.
//!
//! 1. Raw JetStream: acknowledged publishes of commit-sized messages on
//!    10,000 subjects with N in flight (the append ceiling).
//! 2. The command loop: N concurrent writers running increments through
//!    `Repository::execute` on the demo counter aggregate.
//! 3. Raw Postgres: batched UNNEST upserts of rows shaped like the read model,
//!    500 per transaction on one connection (the projection ceiling).
//! 4. Projection catch-up: the demo projection replaying the stream from 2.
//!
//! Then, when their addresses are given, the registry ([`registry`]), the
//! referrals service with its partner feed ([`referrals`]) and the
//! placements service with its deadline worker ([`placements`]) and the
//! grants service ([`grants`]: approvals racing on one call and spread over
//! many, the budget checked to the cent, the funnel) and the content service
//! ([`content`]: public reads by slug with fallbacks, search in four
//! languages, lists) over gRPC; `--referrals-only`, `--placements-only`,
//! `--grants-only` and `--content-only` measure just the raw ceiling and
//! that one service.
//!
//! It writes to the `demo` stream and schema: run it on throwaway servers
//! (`make bench` does), never on a deployment with real data.

use std::{sync::Arc, time::Instant};

use acasa_demo::domain::{Amount, Counter, CounterCommand, CounterName};
use acasa_domain::{EventCodec as _, RequestId};
use acasa_eventstore::{CommandMeta, NewCommit, Repository, RepositoryConfig};
use acasa_runtime::Config;
use anyhow::Context as _;
use serde::Serialize;
use uuid::Uuid;

use crate::app;

mod campaigns;
mod client;
mod content;
mod grants;
mod placements;
mod referrals;
mod registry;
mod stats;

pub use content::ContentReport;
pub use grants::GrantsReport;
pub use placements::PlacementsReport;
pub use referrals::ReferralsReport;
pub use registry::RegistryReport;
pub use stats::{Rate, StepRate};
use stats::{concurrently, rate};

/// Benchmark arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Concurrent writers (commands or publishes in flight).
    #[arg(long, default_value_t = 64)]
    pub writers: usize,
    /// Commands (and raw publishes) to measure.
    #[arg(long, default_value_t = 30_000)]
    pub commands: usize,
    /// Aggregates the commands spread over.
    #[arg(long, default_value_t = 1_000)]
    pub aggregates: usize,
    /// A running registry service (`host:port`) to measure over gRPC.
    #[arg(long)]
    pub registry_addr: Option<String>,
    /// People in the registry for the read benchmarks.
    #[arg(long, default_value_t = 100_000)]
    pub registry_people: usize,
    /// The registry service's pid (for its peak RSS).
    #[arg(long)]
    pub registry_service_pid: Option<u32>,
    /// The registry projection worker's pid (for its peak RSS).
    #[arg(long)]
    pub registry_worker_pid: Option<u32>,
    /// A running referrals service (`host:port`) to measure over gRPC (needs `--registry-addr`).
    #[arg(long)]
    pub referrals_addr: Option<String>,
    /// The referrals service's pid (for its peak RSS).
    #[arg(long)]
    pub referrals_service_pid: Option<u32>,
    /// The referrals worker's pid (for its peak RSS).
    #[arg(long)]
    pub referrals_worker_pid: Option<u32>,
    /// Partners the referrals go to.
    #[arg(long, default_value_t = 8)]
    pub referrals_partners: usize,
    /// People (with consent to every partner) the referrals are for.
    #[arg(long, default_value_t = 1_000)]
    pub referrals_people: usize,
    /// Referral commands per second of the open-loop feed-latency run.
    #[arg(long, default_value_t = 1_000.0)]
    pub referrals_rate: f64,
    /// Measured seconds of the open-loop run.
    #[arg(long, default_value_t = 15.0)]
    pub referrals_seconds: f64,
    /// Warm-up seconds before it.
    #[arg(long, default_value_t = 5.0)]
    pub referrals_warmup_seconds: f64,
    /// Measure only the raw JetStream ceiling and the referrals service (skips the demo, Postgres and registry parts).
    #[arg(long)]
    pub referrals_only: bool,
    /// A running placements service (`host:port`) to measure over gRPC (needs `--registry-addr`).
    #[arg(long)]
    pub placements_addr: Option<String>,
    /// The placements service's pid (for its peak RSS).
    #[arg(long)]
    pub placements_service_pid: Option<u32>,
    /// The placements worker's pid (for its peak RSS).
    #[arg(long)]
    pub placements_worker_pid: Option<u32>,
    /// A file to create when the placements part starts (`make bench` starts the placements worker only then, so
    /// its projection of the registry's log does not run during the other parts).
    #[arg(long)]
    pub placements_worker_gate: Option<std::path::PathBuf>,
    /// Running placements to set up and measure (one registry person each).
    #[arg(long, default_value_t = 10_000)]
    pub placements_active: usize,
    /// Places per offer (at most 1,000; the placements spread round-robin over as many offers as they need, two
    /// offers per host).
    #[arg(long, default_value_t = 100)]
    pub placements_places_per_offer: usize,
    /// ListPaymentsDue queries to measure.
    #[arg(long, default_value_t = 4_000)]
    pub placements_queries: usize,
    /// Measure only the raw JetStream ceiling and the placements service (skips the demo, Postgres, registry and
    /// referrals parts).
    #[arg(long)]
    pub placements_only: bool,
    /// A running grants service (`host:port`) to measure over gRPC (needs `--registry-addr`).
    #[arg(long)]
    pub grants_addr: Option<String>,
    /// The grants service's pid (for its peak RSS).
    #[arg(long)]
    pub grants_service_pid: Option<u32>,
    /// The grants worker's pid (for its peak RSS).
    #[arg(long)]
    pub grants_worker_pid: Option<u32>,
    /// A file to create when the grants part starts (`make bench` starts the grants worker only then, so its
    /// projection of the registry's log does not run during the other parts).
    #[arg(long)]
    pub grants_worker_gate: Option<std::path::PathBuf>,
    /// Approvals racing on one call (at most 10,000; its budget refuses the last twentieth OVER_BUDGET), and as
    /// many spread over one call per writer.
    #[arg(long, default_value_t = 2_000)]
    pub grants_approvals: usize,
    /// Applications the grants service holds for the funnel queries (the approvals' and more).
    #[arg(long, default_value_t = 10_000)]
    pub grants_applications: usize,
    /// GetFunnel queries to measure.
    #[arg(long, default_value_t = 400)]
    pub grants_queries: usize,
    /// Measure only the raw JetStream ceiling and the grants service (skips the demo, Postgres, registry,
    /// referrals and placements parts).
    #[arg(long)]
    pub grants_only: bool,
    /// A running content service (`host:port`) to measure over gRPC (its public reads need a per-client rate far
    /// above the default: `make bench` starts it with one).
    #[arg(long)]
    pub content_addr: Option<String>,
    /// The content service's pid (for its peak RSS).
    #[arg(long)]
    pub content_service_pid: Option<u32>,
    /// The content worker's pid (for its peak RSS).
    #[arg(long)]
    pub content_worker_pid: Option<u32>,
    /// Articles published in ro, ru, en and uk (a twentieth as many more in ro and ru only, for the fallbacks).
    #[arg(long, default_value_t = 5_000)]
    pub content_articles: usize,
    /// Articles seeded at once.
    #[arg(long, default_value_t = 32)]
    pub content_clients: usize,
    /// GetArticle reads to measure.
    #[arg(long, default_value_t = 10_000)]
    pub content_reads: usize,
    /// SearchArticles queries to measure (and half as many ListArticles).
    #[arg(long, default_value_t = 2_000)]
    pub content_searches: usize,
    /// The Maildir of the SMTP server the content worker sends campaigns to
    /// (with `--registry-addr`: the campaign part runs).
    #[arg(long)]
    pub content_maildir: Option<std::path::PathBuf>,
    /// A file to create when the content part begins: `make bench` starts the content worker
    /// (its read models, and its view of the registry opening every person's languages) only
    /// then, so it does not load the earlier parts.
    #[arg(long)]
    pub content_worker_gate: Option<std::path::PathBuf>,
    /// People a bench campaign reaches.
    #[arg(long, default_value_t = 2_000)]
    pub content_campaign_recipients: usize,
    /// Measure only the raw JetStream ceiling and the content service (skips the demo, Postgres, registry,
    /// referrals, placements and grants parts).
    #[arg(long)]
    pub content_only: bool,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Writers in flight.
    pub writers: usize,
    /// Size of one commit message in bytes.
    pub message_bytes: usize,
    /// Raw acknowledged JetStream publishes (ceiling).
    pub raw_jetstream_publish: Rate,
    /// Appends through the command loop.
    pub command_loop_appends: Rate,
    /// Average commits per aggregate when loaded cold.
    pub commits_per_aggregate: usize,
    /// Loading an aggregate from the log without the cache (batched direct get).
    pub cold_aggregate_load: Rate,
    /// command loop / raw publish.
    pub append_ratio: f64,
    /// Raw batched Postgres upserts (ceiling), rows.
    pub raw_postgres_upsert: Rate,
    /// Projection catch-up, commits.
    pub projection_catch_up: Rate,
    /// catch-up / raw upserts.
    pub projection_ratio: f64,
    /// The registry over gRPC, when `--registry-addr` was given.
    pub registry: Option<registry::RegistryReport>,
    /// The referrals service over gRPC, when `--referrals-addr` was given.
    pub referrals: Option<referrals::ReferralsReport>,
    /// The placements service over gRPC, when `--placements-addr` was given.
    pub placements: Option<placements::PlacementsReport>,
    /// The grants service over gRPC, when `--grants-addr` was given.
    pub grants: Option<grants::GrantsReport>,
    /// The content service over gRPC, when `--content-addr` was given.
    pub content: Option<content::ContentReport>,
}

/// The report of `--referrals-only`.
#[derive(Debug, Serialize)]
pub struct ReferralsOnlyReport {
    /// Writers in flight.
    pub writers: usize,
    /// Size of one commit message in bytes.
    pub message_bytes: usize,
    /// Raw acknowledged JetStream publishes (ceiling).
    pub raw_jetstream_publish: Rate,
    /// The referrals service over gRPC.
    pub referrals: referrals::ReferralsReport,
}

/// The report of `--placements-only`.
#[derive(Debug, Serialize)]
pub struct PlacementsOnlyReport {
    /// Writers in flight.
    pub writers: usize,
    /// Size of one commit message in bytes.
    pub message_bytes: usize,
    /// Raw acknowledged JetStream publishes (ceiling).
    pub raw_jetstream_publish: Rate,
    /// The placements service over gRPC.
    pub placements: placements::PlacementsReport,
}

/// The report of `--grants-only`.
#[derive(Debug, Serialize)]
pub struct GrantsOnlyReport {
    /// Writers in flight.
    pub writers: usize,
    /// Size of one commit message in bytes.
    pub message_bytes: usize,
    /// Raw acknowledged JetStream publishes (ceiling).
    pub raw_jetstream_publish: Rate,
    /// The grants service over gRPC.
    pub grants: grants::GrantsReport,
}

/// The report of `--content-only`.
#[derive(Debug, Serialize)]
pub struct ContentOnlyReport {
    /// Writers in flight.
    pub writers: usize,
    /// Size of one commit message in bytes.
    pub message_bytes: usize,
    /// Raw acknowledged JetStream publishes (ceiling).
    pub raw_jetstream_publish: Rate,
    /// The content service over gRPC.
    pub content: content::ContentReport,
}

/// The content part, when `--content-addr` was given.
async fn content(
    config: &Config,
    pool: &sqlx::PgPool,
    args: &Args,
    raw_per_second: f64,
) -> anyhow::Result<Option<content::ContentReport>> {
    let Some(addr) = &args.content_addr else { return Ok(None) };
    if let Some(gate) = &args.content_worker_gate {
        eprintln!("bench: content: starting the worker ({})…", gate.display());
        std::fs::write(gate, b"go\n").with_context(|| format!("creating {}", gate.display()))?;
    }
    let target = content::Target {
        addr: addr.clone(),
        articles: args.content_articles,
        clients: args.content_clients,
        readers: 4,
        reads: args.content_reads,
        searches: args.content_searches,
        service_pid: args.content_service_pid,
        worker_pid: args.content_worker_pid,
        campaign: match (&args.content_maildir, &args.registry_addr) {
            (Some(maildir), Some(registry)) => Some(campaigns::Target {
                content_addr: addr.clone(),
                registry_addr: registry.clone(),
                maildir: maildir.clone(),
                recipients: args.content_campaign_recipients,
                clients: args.content_clients,
            }),
            _ => None,
        },
    };
    Ok(Some(content::run(config, pool, &target, raw_per_second).await?))
}

/// The grants part, when `--grants-addr` was given.
async fn grants(config: &Config, args: &Args, raw_per_second: f64) -> anyhow::Result<Option<grants::GrantsReport>> {
    let Some(addr) = &args.grants_addr else { return Ok(None) };
    let registry_addr = args.registry_addr.clone().context("--grants-addr needs --registry-addr")?;
    let target = grants::Target {
        addr: addr.clone(),
        registry_addr,
        racing: args.grants_approvals,
        spread: args.grants_approvals,
        funnel_applications: args.grants_applications,
        clients: args.writers.max(1),
        readers: 4,
        queries: args.grants_queries,
        service_pid: args.grants_service_pid,
        worker_pid: args.grants_worker_pid,
        worker_gate: args.grants_worker_gate.clone(),
    };
    Ok(Some(grants::run(config, &target, raw_per_second).await?))
}

/// The placements part, when `--placements-addr` was given; `registry_mixed_ratio`
/// is the registry's of this run, when measured.
async fn placements(
    config: &Config,
    pool: &sqlx::PgPool,
    args: &Args,
    raw_per_second: f64,
    registry_mixed_ratio: Option<f64>,
) -> anyhow::Result<Option<placements::PlacementsReport>> {
    let Some(addr) = &args.placements_addr else { return Ok(None) };
    let registry_addr = args.registry_addr.clone().context("--placements-addr needs --registry-addr")?;
    let target = placements::Target {
        addr: addr.clone(),
        registry_addr,
        placements: args.placements_active,
        places_per_offer: args.placements_places_per_offer,
        clients: args.writers.max(1),
        readers: 4,
        queries: args.placements_queries,
        service_pid: args.placements_service_pid,
        worker_pid: args.placements_worker_pid,
        worker_gate: args.placements_worker_gate.clone(),
        registry_mixed_ratio,
    };
    Ok(Some(placements::run(config, pool, &target, raw_per_second).await?))
}

/// The referrals part, when `--referrals-addr` was given.
async fn referrals(
    config: &Config,
    args: &Args,
    raw_per_second: f64,
) -> anyhow::Result<Option<referrals::ReferralsReport>> {
    let Some(addr) = &args.referrals_addr else { return Ok(None) };
    let registry_addr = args.registry_addr.clone().context("--referrals-addr needs --registry-addr")?;
    let target = referrals::Target {
        addr: addr.clone(),
        registry_addr,
        partners: args.referrals_partners,
        people: args.referrals_people,
        commands: args.commands,
        clients: args.writers.max(1),
        rate: args.referrals_rate,
        seconds: args.referrals_seconds,
        warmup_seconds: args.referrals_warmup_seconds,
        service_pid: args.referrals_service_pid,
        worker_pid: args.referrals_worker_pid,
    };
    Ok(Some(referrals::run(config, &target, raw_per_second).await?))
}

fn meta(request_id: &str) -> anyhow::Result<CommandMeta> {
    Ok(CommandMeta {
        request_id: RequestId::parse(request_id)?,
        actor: "bench".into(),
        scope: "api:bench".into(),
        method: "acasa.demo.v1.IncrementCounterRequest".into(),
        digest: vec![0; 32],
    })
}

/// Runs every measurement and prints the report.
pub async fn run(config: &Config, args: Args) -> anyhow::Result<()> {
    let client = app::nats(config, "bench").await?;
    let store = app::store(config, client.clone(), acasa_demo::SERVICE).await?;
    let pool = app::pool(config, 4).await?;
    app::migrate(&pool).await?;
    let writers = args.writers.max(1);

    // A commit as the command loop writes it, for the raw publishes' size.
    let sample = NewCommit {
        request_key: format!("{}.{}", "0".repeat(32), "0".repeat(32)),
        method: "acasa.demo.v1.IncrementCounterRequest".into(),
        actor: "bench".into(),
        request_digest: vec![0; 32],
        events: vec![acasa_demo::domain::CounterEvent::Incremented { amount: 1, value: 123_456 }.encode()],
        recorded_at: chrono::Utc::now(),
    };
    let message_bytes = sample.encoded_len();

    eprintln!("bench: raw JetStream publishes ({} with {writers} in flight)…", args.commands);
    let raw_js = raw_publish(&client, args.commands, writers, message_bytes).await?;

    anyhow::ensure!(
        [args.referrals_only, args.placements_only, args.grants_only, args.content_only].iter().filter(|o| **o).count()
            <= 1,
        "--referrals-only, --placements-only, --grants-only and --content-only exclude each other"
    );
    if args.content_only {
        let content =
            content(config, &pool, &args, raw_js.per_second).await?.context("--content-only needs --content-addr")?;
        let report = ContentOnlyReport { writers, message_bytes, raw_jetstream_publish: raw_js, content };
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!("Acasă content benchmark — {} in flight, {}-byte commits", writers, message_bytes);
            println!(
                "  raw JetStream publish      {:>10.0} /s  p50 {:6.2} ms  p99 {:6.2} ms",
                report.raw_jetstream_publish.per_second,
                report.raw_jetstream_publish.p50_ms.unwrap_or(f64::NAN),
                report.raw_jetstream_publish.p99_ms.unwrap_or(f64::NAN)
            );
            content::print_table(&report.content);
        }
        return Ok(());
    }
    if args.grants_only {
        let grants = grants(config, &args, raw_js.per_second)
            .await?
            .context("--grants-only needs --grants-addr and --registry-addr")?;
        let report = GrantsOnlyReport { writers, message_bytes, raw_jetstream_publish: raw_js, grants };
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!("Acasă grants benchmark — {} in flight, {}-byte commits", writers, message_bytes);
            println!(
                "  raw JetStream publish      {:>10.0} /s  p50 {:6.2} ms  p99 {:6.2} ms",
                report.raw_jetstream_publish.per_second,
                report.raw_jetstream_publish.p50_ms.unwrap_or(f64::NAN),
                report.raw_jetstream_publish.p99_ms.unwrap_or(f64::NAN)
            );
            grants::print_table(&report.grants);
        }
        return Ok(());
    }
    if args.placements_only {
        let placements = placements(config, &pool, &args, raw_js.per_second, None)
            .await?
            .context("--placements-only needs --placements-addr and --registry-addr")?;
        let report = PlacementsOnlyReport { writers, message_bytes, raw_jetstream_publish: raw_js, placements };
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!("Acasă placements benchmark — {} in flight, {}-byte commits", writers, message_bytes);
            println!(
                "  raw JetStream publish      {:>10.0} /s  p50 {:6.2} ms  p99 {:6.2} ms",
                report.raw_jetstream_publish.per_second,
                report.raw_jetstream_publish.p50_ms.unwrap_or(f64::NAN),
                report.raw_jetstream_publish.p99_ms.unwrap_or(f64::NAN)
            );
            placements::print_table(&report.placements);
        }
        return Ok(());
    }
    if args.referrals_only {
        let referrals = referrals(config, &args, raw_js.per_second)
            .await?
            .context("--referrals-only needs --referrals-addr and --registry-addr")?;
        let report = ReferralsOnlyReport { writers, message_bytes, raw_jetstream_publish: raw_js, referrals };
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!("Acasă referrals benchmark — {} in flight, {}-byte commits", writers, message_bytes);
            println!(
                "  raw JetStream publish      {:>10.0} /s  p50 {:6.2} ms  p99 {:6.2} ms",
                report.raw_jetstream_publish.per_second,
                report.raw_jetstream_publish.p50_ms.unwrap_or(f64::NAN),
                report.raw_jetstream_publish.p99_ms.unwrap_or(f64::NAN)
            );
            referrals::print_table(&report.referrals);
        }
        return Ok(());
    }

    eprintln!("bench: creating {} aggregates…", args.aggregates);
    let repo = Repository::<Counter>::new(store.clone(), RepositoryConfig::default());
    let ids = create_aggregates(&repo, args.aggregates, writers).await?;

    eprintln!("bench: {} commands through the command loop with {writers} writers…", args.commands);
    let appends = command_loop(&repo, &ids, args.commands, writers).await?;

    eprintln!("bench: cold aggregate loads (no cache), {writers} in flight…");
    let cold = cold_loads(&store, &ids, writers).await?;

    let last = store.last_sequence().await?;
    // The stream also holds each command's request record and the names'
    // claims, which the projection skips: it applies the commits alone.
    let commits = args.aggregates + args.commands;
    eprintln!("bench: raw Postgres upserts ({commits} rows, 500 per transaction)…");
    let raw_pg = raw_upsert(&pool, commits, args.aggregates).await?;

    eprintln!("bench: projection catch-up over {commits} commits ({last} stream messages)…");
    let start = Instant::now();
    let ctx = acasa_runtime::kit::WorkContext { config, store: store.clone(), pool: pool.clone() };
    let spec = acasa_runtime::ServiceDef::projections(&acasa_demo::Demo)
        .first()
        .context("the demo service has a projection")?;
    let reached = app::replay_from_start(&ctx, spec, &store, last).await?;
    anyhow::ensure!(reached.is_some(), "another worker leads demo.counters; run bench on throwaway servers");
    let catch_up = rate(commits, start.elapsed(), Vec::new());

    let registry = match &args.registry_addr {
        None => None,
        Some(addr) => {
            let target = registry::Target {
                addr: addr.clone(),
                people: args.registry_people,
                commands: args.commands,
                clients: writers,
                service_pid: args.registry_service_pid,
                worker_pid: args.registry_worker_pid,
            };
            Some(registry::run(config, &target, raw_js.per_second).await?)
        }
    };
    let referrals = referrals(config, &args, raw_js.per_second).await?;
    let registry_mixed_ratio = registry.as_ref().map(|r| r.mixed_ratio);
    let placements = placements(config, &pool, &args, raw_js.per_second, registry_mixed_ratio).await?;
    let grants = grants(config, &args, raw_js.per_second).await?;
    let content = content(config, &pool, &args, raw_js.per_second).await?;

    let report = Report {
        writers,
        message_bytes,
        append_ratio: appends.per_second / raw_js.per_second,
        projection_ratio: catch_up.per_second / raw_pg.per_second,
        raw_jetstream_publish: raw_js,
        command_loop_appends: appends,
        cold_aggregate_load: cold,
        commits_per_aggregate: 1 + args.commands / args.aggregates.max(1),
        raw_postgres_upsert: raw_pg,
        projection_catch_up: catch_up,
        registry,
        referrals,
        placements,
        grants,
        content,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
        if let Some(f) = &report.referrals {
            referrals::print_table(f);
        }
        if let Some(p) = &report.placements {
            placements::print_table(p);
        }
        if let Some(g) = &report.grants {
            grants::print_table(g);
        }
        if let Some(c) = &report.content {
            content::print_table(c);
        }
    }
    Ok(())
}

fn print_table(r: &Report) {
    let lat = |x: &Rate| match (x.p50_ms, x.p99_ms) {
        (Some(a), Some(b)) => format!("p50 {a:6.2} ms  p99 {b:6.2} ms"),
        _ => String::new(),
    };
    println!("Acasă platform benchmark — {} in flight, {}-byte commits", r.writers, r.message_bytes);
    println!(
        "  raw JetStream publish      {:>10.0} /s  {}",
        r.raw_jetstream_publish.per_second,
        lat(&r.raw_jetstream_publish)
    );
    println!(
        "  command loop appends       {:>10.0} /s  {}",
        r.command_loop_appends.per_second,
        lat(&r.command_loop_appends)
    );
    println!("    ratio                    {:>10.1} %   (target ≥ 70 %)", r.append_ratio * 100.0);
    println!(
        "  cold aggregate loads       {:>10.0} /s  {}   (~{} commits each; cached: none)",
        r.cold_aggregate_load.per_second,
        lat(&r.cold_aggregate_load),
        r.commits_per_aggregate
    );
    println!("  raw Postgres upserts       {:>10.0} rows/s", r.raw_postgres_upsert.per_second);
    println!("  projection catch-up        {:>10.0} commits/s", r.projection_catch_up.per_second);
    println!("    ratio                    {:>10.1} %   (target ≥ 50 %)", r.projection_ratio * 100.0);
    let Some(g) = &r.registry else { return };
    let mib = |m: Option<f64>| m.map_or_else(|| "n/a".to_owned(), |m| format!("{m:.1} MiB"));
    println!("Registry over gRPC — {} people", g.people);
    println!("  registrations alone        {:>10.0} /s  {}", g.registrations.per_second, lat(&g.registrations));
    println!("  mixed commands (1/5 reg.)  {:>10.0} /s  {}", g.mixed_commands.per_second, lat(&g.mixed_commands));
    println!("    ratio to raw publishes   {:>10.1} %   (target ≥ 50 %)", g.mixed_ratio * 100.0);
    println!("  projection caught up after {:>6.2} s", g.projection_lag_after_mixed_seconds);
    println!(
        "  mix at half rate (open)    {:>10.0} /s  {}   (target p99 ≤ 10 ms)",
        g.mixed_at_half_rate.per_second,
        lat(&g.mixed_at_half_rate)
    );
    println!(
        "    its registrations        {:>10.0} /s  {}",
        g.half_rate_registrations.per_second,
        lat(&g.half_rate_registrations)
    );
    println!("    its updates              {:>10.0} /s  {}", g.half_rate_updates.per_second, lat(&g.half_rate_updates));
    println!(
        "  fill registrations         {:>10.0} /s  {}",
        g.fill_registrations.per_second,
        lat(&g.fill_registrations)
    );
    println!("  projection lag after fill  {:>10.2} s", g.projection_lag_seconds);
    println!(
        "  GetPerson (min position)   {:>10.0} /s  {}   (target p99 ≤ 5 ms)",
        g.get_person.per_second,
        lat(&g.get_person)
    );
    println!(
        "  search / candidates        {:>10.0} /s  {}   (target p99 ≤ 50 ms)",
        g.search.per_second,
        lat(&g.search)
    );
    println!(
        "  peak RSS: service {} (target ≤ 100 MiB), projection worker {}",
        mib(g.service_peak_rss_mib),
        mib(g.worker_peak_rss_mib)
    );
}

async fn raw_publish(client: &async_nats::Client, total: usize, writers: usize, size: usize) -> anyhow::Result<Rate> {
    let js = async_nats::jetstream::new(client.clone());
    let _ = js.delete_stream("BENCH_RAW").await;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "BENCH_RAW".into(),
        subjects: vec!["bench.raw.>".into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .context("creating the raw benchmark stream")?;
    let payload = bytes_of(size);
    let publisher = js.clone();
    let (elapsed, lat) = concurrently(total, writers, move |i| {
        let js = publisher.clone();
        let payload = payload.clone();
        async move {
            js.publish(format!("bench.raw.{}", i % 10_000), payload).await?.await?;
            Ok(())
        }
    })
    .await?;
    let _ = js.delete_stream("BENCH_RAW").await;
    Ok(rate(total, elapsed, lat))
}

fn bytes_of(size: usize) -> bytes::Bytes {
    bytes::Bytes::from((0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
}

async fn create_aggregates(repo: &Repository<Counter>, n: usize, writers: usize) -> anyhow::Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let shared = Arc::new(ids.clone());
    let repo = repo.clone();
    concurrently(n, writers, move |i| {
        let repo = repo.clone();
        let id = shared[i];
        async move {
            let cmd = CounterCommand::Create { id, name: CounterName::parse(&format!("bench-{i}"))?, limit: 0 };
            repo.execute(&id.to_string(), &cmd, &meta(&format!("create-{id}"))?).await?;
            Ok(())
        }
    })
    .await?;
    Ok(ids)
}

async fn command_loop(repo: &Repository<Counter>, ids: &[Uuid], total: usize, writers: usize) -> anyhow::Result<Rate> {
    let ids = Arc::new(ids.to_vec());
    let run = Uuid::now_v7().simple().to_string();
    let amount = Amount::parse(1).map_err(anyhow::Error::msg)?;
    let repo = repo.clone();
    let (elapsed, lat) = concurrently(total, writers, move |i| {
        let repo = repo.clone();
        let id = ids[(i * 7919) % ids.len()];
        let request_id = format!("{run}-{i}");
        async move {
            repo.execute(&id.to_string(), &CounterCommand::Increment { amount }, &meta(&request_id)?).await?;
            Ok(())
        }
    })
    .await?;
    Ok(rate(total, elapsed, lat))
}

async fn raw_upsert(pool: &sqlx::PgPool, rows: usize, distinct: usize) -> anyhow::Result<Rate> {
    sqlx::query("DROP TABLE IF EXISTS public.bench_raw").execute(pool).await?;
    sqlx::query(
        "CREATE TABLE public.bench_raw (counter_id uuid PRIMARY KEY, name text NOT NULL, max_value bigint NOT NULL, \
         value bigint NOT NULL, increments bigint NOT NULL, created_at timestamptz NOT NULL, \
         updated_at timestamptz NOT NULL, position bigint NOT NULL)",
    )
    .execute(pool)
    .await?;
    let ids: Vec<Uuid> = (0..distinct.max(500)).map(|_| Uuid::now_v7()).collect();
    let mut conn = pool.acquire().await?;
    let start = Instant::now();
    let mut done = 0;
    let mut cursor = 0;
    while done < rows {
        let n = (rows - done).min(500);
        let batch: Vec<Uuid> = (0..n).map(|k| ids[(cursor + k) % ids.len()]).collect();
        cursor += n;
        let now = chrono::Utc::now();
        let names: Vec<String> = batch.iter().map(|id| format!("bench-{id}")).collect();
        let zeros = vec![0_i64; n];
        let values: Vec<i64> = (0..n as i64).collect();
        let times = vec![now; n];
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::query(
            "INSERT INTO public.bench_raw AS c SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::int8[], \
             $5::int8[], $6::timestamptz[], $7::timestamptz[], $8::int8[]) \
             ON CONFLICT (counter_id) DO UPDATE SET value = EXCLUDED.value, increments = c.increments + 1, \
             updated_at = EXCLUDED.updated_at, position = EXCLUDED.position",
        )
        .bind(&batch)
        .bind(&names)
        .bind(&zeros)
        .bind(&values)
        .bind(&zeros)
        .bind(&times)
        .bind(&times)
        .bind(&values)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        done += n;
    }
    let elapsed = start.elapsed();
    drop(conn);
    sqlx::query("DROP TABLE public.bench_raw").execute(pool).await?;
    Ok(rate(rows, elapsed, Vec::new()))
}

async fn cold_loads(store: &acasa_eventstore::EventStore, ids: &[Uuid], writers: usize) -> anyhow::Result<Rate> {
    let ids = Arc::new(ids.to_vec());
    let total = ids.len().min(2_000);
    let store = store.clone();
    let (elapsed, lat) = concurrently(total, writers, move |i| {
        // A fresh repository per load: nothing cached.
        let repo = Repository::<Counter>::new(store.clone(), RepositoryConfig::default());
        let id = ids[i];
        async move {
            repo.load(&id.to_string()).await?;
            Ok(())
        }
    })
    .await?;
    Ok(rate(total, elapsed, lat))
}
