//! The referrals part of `acasa bench`: a running referrals service and its
//! worker (`acasa serve referrals`, `acasa project referrals`: read model,
//! consent projection, partner-feed publisher, SLA deadlines — separate
//! processes started by `make bench`) driven over gRPC, beside the raw
//! JetStream ceiling measured in the same run.
//!
//! Setup: partners offering loans (admin), people registered in the registry
//! with consent to share with every partner (caseworker), one consumer per
//! partner on its feed (`acasa.partner.<partner-id>.>` in
//! `ACASA_PARTNER_FEED`, ordered, new messages only).
//!
//! Every referral runs the same life: create (caseworker), accept, progress,
//! outcome `loan_disbursed` (the addressed partner's token), close (the
//! partner or a caseworker, alternately). Each command yields one feed event;
//! the feed consumers match each event to its command by referral id and
//! event kind (payload), and check the CloudEvents headers on the way.
//!
//! 1. Commands, closed loop, `clients` in flight (each client runs referrals
//!    one after another), and the time the feed then needs to deliver all of
//!    their events.
//! 2. The same mix open loop at `rate` commands/s: a warm-up, then the
//!    measured window. Command `k` of the schedule is step `k mod 5` of a
//!    referral started ~100 ms before its previous step, so the steps of one
//!    referral never wait for each other at the requested rate (if they must,
//!    it is counted). For each command: the time from its gRPC
//!    acknowledgement to the delivery of its event to the partner's consumer.
//!    The schedule's start lag and the rates sent and acknowledged tell
//!    whether the open loop really ran at the requested rate.
//! 3. Peak RSS (VmHWM) of the service and worker processes.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use acasa_domain::formats::make_national_code;
use acasa_proto::{
    Message as _,
    partner::v1::{self as feed, referral_event},
    referrals::v1::{self as pb, referral_service_client::ReferralServiceClient},
    registry::v1::{self as reg, registry_service_client::RegistryServiceClient},
    r#type::v1::{Date, Money},
};
use acasa_runtime::{Config, Role, TokenIssuer};
use anyhow::Context as _;
use futures::StreamExt as _;
use serde::Serialize;
use tonic::{
    Code, Request,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

use super::client::{bearer, connect, req};
use super::stats::{Rate, StepRate, peak_rss_mib, rate};
use acasa_referrals::FEED_STREAM;

/// Commands in one referral's life.
const STEPS: usize = 5;
const STEP_NAMES: [&str; STEPS] = ["create", "accept", "progress", "outcome", "close"];
/// The feed event of each step (`ce-type` suffix).
const EVENT_NAMES: [&str; STEPS] = ["received", "accepted", "progress", "outcome", "closed"];
/// Spacing of one referral's steps in the open loop.
const STEP_SPACING: Duration = Duration::from_millis(100);

const DISTRICTS: &[&str] = &[
    "Chișinău",
    "Bălți",
    "Cahul",
    "Orhei",
    "Ungheni",
    "Soroca",
    "Hîncești",
    "Ialoveni",
    "Edineț",
    "Comrat",
    "Strășeni",
    "Florești",
];
const GIVEN: &[&str] = &["Ion", "Maria", "Vasile", "Elena", "Mihai", "Natalia", "Andrei", "Tatiana", "Sergiu", "Olga"];
const FAMILY: &[&str] = &["Rusu", "Ceban", "Ciobanu", "Țurcanu", "Lungu", "Munteanu", "Rotari", "Cojocaru", "Moraru"];
const PARTNER_KINDS: &[feed::PartnerKind] = &[
    feed::PartnerKind::MicrofinanceInstitution,
    feed::PartnerKind::Bank,
    feed::PartnerKind::SavingsAndCreditAssociation,
    feed::PartnerKind::MicrofinanceInstitution,
];

/// Where the referrals service runs, for the benchmark.
#[derive(Clone, Debug)]
pub struct Target {
    /// The referrals service's gRPC address (`host:port`).
    pub addr: String,
    /// The registry service's gRPC address, for the people and their consent.
    pub registry_addr: String,
    /// Partners to register.
    pub partners: usize,
    /// People to register, each consenting to share with every partner.
    pub people: usize,
    /// Commands in the closed-loop run.
    pub commands: usize,
    /// Concurrent clients in the closed loop.
    pub clients: usize,
    /// Commands per second of the open loop.
    pub rate: f64,
    /// Measured seconds of the open loop.
    pub seconds: f64,
    /// Warm-up seconds of the open loop (same rate, not measured).
    pub warmup_seconds: f64,
    /// The service's pid, for its peak RSS.
    pub service_pid: Option<u32>,
    /// The worker's pid.
    pub worker_pid: Option<u32>,
}

/// Delivery latencies from the feed.
#[derive(Debug, Serialize)]
pub struct FeedLatency {
    /// Events delivered for the phase's commands.
    pub delivered: usize,
    /// Commands whose event never arrived (within the wait).
    pub missing: usize,
    /// Events delivered before the client had the command's acknowledgement (counted as 0 ms).
    pub before_ack: usize,
    /// Acknowledgement → delivery, milliseconds (`p50_ms`, `p99_ms`; ops/s is the delivery rate).
    pub latency: Rate,
    /// The largest, milliseconds.
    pub max_ms: Option<f64>,
    /// Deliveries later than 50 ms after the acknowledgement.
    pub over_50_ms: usize,
    /// p99 per second of acknowledgements, milliseconds (where the tail sits in time).
    pub p99_ms_by_second: Vec<f64>,
    /// `ce-time` (the change's time, service clock) → delivery, wall-clock milliseconds.
    pub from_ce_time: Rate,
    /// Its largest, milliseconds.
    pub from_ce_time_max_ms: Option<f64>,
}

/// The open loop and whether it held its rate.
#[derive(Debug, Serialize)]
pub struct OpenLoop {
    /// Requested commands per second.
    pub requested_per_second: f64,
    /// Commands sent per second in the measured window (actual send times).
    pub sent_per_second: f64,
    /// Commands acknowledged per second in the measured window.
    pub acknowledged_per_second: f64,
    /// Commands in the measured window.
    pub commands: usize,
    /// Sent later than scheduled, milliseconds (p50/p99 of the start lag).
    pub start_lag: Rate,
    /// Largest start lag, milliseconds.
    pub start_lag_max_ms: Option<f64>,
    /// Commands that had to wait for their referral's previous step.
    pub waited_for_previous_step: usize,
    /// Whether the requested rate was held (sent ≥ 97 %, acknowledged ≥ 95 % of it, p99 start lag ≤ 10 ms).
    pub held_rate: bool,
    /// Command latency from the scheduled start (no coordinated omission).
    pub commands_latency: Rate,
    /// Partner-feed delivery after acknowledgement.
    pub feed: FeedLatency,
}

/// What the feed consumers saw that the contract does not allow.
#[derive(Debug, Default, Serialize, Clone)]
pub struct FeedChecks {
    /// Messages received by the partner consumers.
    pub messages: u64,
    /// Payloads that are not a `ReferralEvent`.
    pub undecodable: u64,
    /// Messages missing a CloudEvents header (ce-specversion, ce-id, ce-type, ce-source, ce-time, ce-subject, content-type).
    pub missing_headers: u64,
    /// Headers with a value the contract does not allow (spec version, source, content type, unparsable time).
    pub bad_headers: u64,
    /// `ce-type` not matching the payload's event kind.
    pub type_mismatch: u64,
    /// Subject, `ce-subject` or payload ids not matching (or delivered to another partner's consumer).
    pub id_mismatch: u64,
    /// A `ce-id` seen twice.
    pub duplicate_ce_ids: u64,
    /// The same event (referral and kind) delivered twice.
    pub duplicate_events: u64,
    /// A referral's events delivered out of the order of its commands.
    pub out_of_order: u64,
    /// Kinds the benchmark never causes (declined, withdrawn, SLA breached, unknown).
    pub unexpected_kinds: u64,
    /// Events for referrals of no command of this run.
    pub unmatched: u64,
    /// Errors from the consumers (recreated ordered consumers, missed heartbeats).
    pub consumer_errors: u64,
}

/// The floor under the feed latency: raw JetStream publishes at the open
/// loop's rate, acknowledgement → delivery to an ordered consumer.
#[derive(Debug, Serialize)]
pub struct RawFeedBaseline {
    /// Messages published and delivered per second.
    pub latency: Rate,
    /// The largest, milliseconds.
    pub max_ms: Option<f64>,
    /// Messages not delivered within the wait.
    pub missing: usize,
}

/// The referrals figures.
#[derive(Debug, Serialize)]
pub struct ReferralsReport {
    /// Raw publish → ordered consumer at the open loop's rate (no service).
    pub raw_feed_baseline: RawFeedBaseline,
    /// Partners registered.
    pub partners: usize,
    /// People registered with consent to every partner.
    pub people: usize,
    /// Registry commands of the setup (registrations and consents), for scale.
    pub setup_registry_commands: Rate,
    /// Seconds until the service's consent projection had the setup's consents.
    pub consent_projection_wait_seconds: f64,
    /// The mix, closed loop.
    pub commands: Rate,
    /// commands / raw JetStream publishes of this run.
    pub ratio: f64,
    /// Each step of the closed loop.
    pub steps: Vec<StepRate>,
    /// Retries after ABORTED (heavy contention), all runs.
    pub aborted_retries: u64,
    /// Seconds the feed needed after the closed loop's last acknowledgement to deliver all its events.
    pub feed_caught_up_after_closed_loop_seconds: f64,
    /// Feed delivery during the closed loop (saturated; for information).
    pub feed_closed_loop: FeedLatency,
    /// The mix, open loop.
    pub open_loop: OpenLoop,
    /// Contract checks over every feed message of the run.
    pub feed_checks: FeedChecks,
    /// Peak RSS of the service, MiB.
    pub service_peak_rss_mib: Option<f64>,
    /// Peak RSS of the worker, MiB.
    pub worker_peak_rss_mib: Option<f64>,
}

/// Which part of the run a command belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Setup = 0,
    Closed = 1,
    Warmup = 2,
    Open = 3,
}
const PHASES: usize = 4;

#[derive(Default)]
struct Entry {
    acked: Option<Instant>,
    delivered: Option<Instant>,
    /// Wall-clock ms from ce-time to delivery.
    from_ce_time_ms: Option<f64>,
    phase: Option<Phase>,
}

#[derive(Default)]
struct TrackerState {
    events: HashMap<(String, u8), Entry>,
    /// The highest step delivered per referral.
    last_step: HashMap<String, u8>,
    ce_ids: HashSet<String>,
    checks: FeedChecks,
    acked: [usize; PHASES],
    matched: [usize; PHASES],
}

/// Commands acknowledged and events delivered, matched by referral id and step.
#[derive(Default)]
struct Tracker {
    state: Mutex<TrackerState>,
}

impl Tracker {
    fn lock(&self) -> anyhow::Result<std::sync::MutexGuard<'_, TrackerState>> {
        self.state.lock().map_err(|_| anyhow::anyhow!("feed tracker poisoned"))
    }

    fn acked(&self, referral_id: &str, step: usize, phase: Phase, at: Instant) -> anyhow::Result<()> {
        let mut s = self.lock()?;
        let e = s.events.entry((referral_id.to_owned(), step as u8)).or_default();
        e.acked = Some(at);
        e.phase = Some(phase);
        let matched = e.delivered.is_some();
        s.acked[phase as usize] += 1;
        if matched {
            s.matched[phase as usize] += 1;
        }
        Ok(())
    }

    /// Commands of `phase` acknowledged whose event has not arrived yet.
    fn pending(&self, phase: Phase) -> anyhow::Result<usize> {
        let s = self.lock()?;
        Ok(s.acked[phase as usize] - s.matched[phase as usize])
    }

    fn delivered(&self, partner_id: &str, msg: &async_nats::Message, at: Instant) -> anyhow::Result<()> {
        let header = |name: &str| msg.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.as_str().to_owned());
        let wall = chrono::Utc::now();
        let mut guard = self.lock()?;
        let s = &mut *guard;
        s.checks.messages += 1;
        let Ok(event) = feed::ReferralEvent::decode(msg.payload.clone()) else {
            s.checks.undecodable += 1;
            return Ok(());
        };
        let names = ["ce-specversion", "ce-id", "ce-type", "ce-source", "ce-time", "ce-subject", "content-type"];
        let values: Vec<Option<String>> = names.iter().map(|n| header(n)).collect();
        if values.iter().any(Option::is_none) {
            s.checks.missing_headers += 1;
        }
        let [spec, ce_id, ce_type, source, ce_time, ce_subject, content_type] = <[Option<String>; 7]>::try_from(values)
            .map_err(|_| anyhow::anyhow!("seven CloudEvents headers expected"))?;
        let ce_time = ce_time.and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok());
        if spec.as_deref().is_some_and(|v| v != "1.0")
            || source.as_deref().is_some_and(|v| v != "/acasa/referrals")
            || content_type.as_deref().is_some_and(|v| v != "application/protobuf")
            || (header("ce-time").is_some() && ce_time.is_none())
        {
            s.checks.bad_headers += 1;
        }
        if let Some(id) = ce_id
            && !s.ce_ids.insert(id)
        {
            s.checks.duplicate_ce_ids += 1;
        }
        let step = match &event.kind {
            Some(referral_event::Kind::Received(_)) => 0,
            Some(referral_event::Kind::Accepted(_)) => 1,
            Some(referral_event::Kind::Progress(_)) => 2,
            Some(referral_event::Kind::Outcome(_)) => 3,
            Some(referral_event::Kind::Closed(_)) => 4,
            _ => {
                s.checks.unexpected_kinds += 1;
                return Ok(());
            }
        };
        if ce_type.as_deref().is_some_and(|t| t != format!("acasa.partner.v1.referral.{}", EVENT_NAMES[step])) {
            s.checks.type_mismatch += 1;
        }
        let subject = format!("acasa.partner.{}.referral.{}", event.partner_id, event.referral_id);
        if msg.subject.as_str() != subject
            || event.partner_id != partner_id
            || ce_subject.as_deref().is_some_and(|v| v != event.referral_id)
        {
            s.checks.id_mismatch += 1;
        }
        let last = s.last_step.entry(event.referral_id.clone()).or_insert(0);
        if (step as u8) < *last {
            s.checks.out_of_order += 1;
        }
        *last = (*last).max(step as u8);
        let e = s.events.entry((event.referral_id, step as u8)).or_default();
        if e.delivered.is_some() {
            s.checks.duplicate_events += 1;
            return Ok(());
        }
        e.delivered = Some(at);
        e.from_ce_time_ms =
            ce_time.map(|t| (wall - t.with_timezone(&chrono::Utc)).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        if e.acked.is_some()
            && let Some(p) = e.phase
        {
            s.matched[p as usize] += 1;
        }
        Ok(())
    }

    /// The feed latencies of a phase's commands.
    fn latency(&self, phase: Phase, window: Duration) -> anyhow::Result<FeedLatency> {
        let s = self.lock()?;
        let (mut lat, mut ce, mut missing, mut before_ack) = (Vec::new(), Vec::new(), 0, 0);
        let first = s.events.values().filter(|e| e.phase == Some(phase)).filter_map(|e| e.acked).min();
        let mut by_second: Vec<Vec<Duration>> = Vec::new();
        for e in s.events.values().filter(|e| e.phase == Some(phase)) {
            let (Some(a), Some(d)) = (e.acked, e.delivered) else {
                missing += 1;
                continue;
            };
            if d < a {
                before_ack += 1;
            }
            let l = d.saturating_duration_since(a);
            let second = first.map_or(0, |f| a.saturating_duration_since(f).as_secs() as usize);
            if by_second.len() <= second {
                by_second.resize_with(second + 1, Vec::new);
            }
            by_second[second].push(l);
            lat.push(l);
            if let Some(ms) = e.from_ce_time_ms {
                ce.push(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
            }
        }
        Ok(FeedLatency {
            delivered: lat.len(),
            missing,
            before_ack,
            max_ms: max_ms(&lat),
            over_50_ms: lat.iter().filter(|l| **l > Duration::from_millis(50)).count(),
            p99_ms_by_second: by_second.into_iter().map(|l| rate(l.len(), window, l).p99_ms.unwrap_or(0.0)).collect(),
            latency: rate(lat.len(), window, lat),
            from_ce_time_max_ms: max_ms(&ce),
            from_ce_time: rate(ce.len(), window, ce),
        })
    }

    fn finish_checks(&self) -> anyhow::Result<FeedChecks> {
        let mut s = self.lock()?;
        let unmatched = s.events.values().filter(|e| e.acked.is_none() && e.delivered.is_some()).count();
        s.checks.unmatched = unmatched as u64;
        Ok(s.checks.clone())
    }
}

fn max_ms(xs: &[Duration]) -> Option<f64> {
    xs.iter().max().map(|d| d.as_secs_f64() * 1000.0)
}

/// The clients, tokens and fixtures every command needs.
struct Fixture {
    channels: Vec<Channel>,
    staff: MetadataValue<Ascii>,
    partner_auth: Vec<MetadataValue<Ascii>>,
    partners: Vec<String>,
    people: Vec<String>,
    run: String,
    min_registry_position: u64,
    aborted_retries: AtomicU64,
}

impl Fixture {
    fn grpc(&self, i: usize) -> ReferralServiceClient<Channel> {
        ReferralServiceClient::new(self.channels[i % self.channels.len()].clone())
    }

    fn req<T>(&self, msg: T, auth: &MetadataValue<Ascii>, timeout: Duration) -> Request<T> {
        let mut r = Request::new(msg);
        r.set_timeout(timeout);
        r.metadata_mut().insert("authorization", auth.clone());
        r
    }

    /// Referral `r`'s partner index and person.
    fn pair(&self, r: usize) -> (usize, &str) {
        let p = r % self.partners.len();
        let person = &self.people[(r / self.partners.len()) % self.people.len()];
        (p, person)
    }

    /// Runs step `step` of referral `r` (`referral_id` empty for the create);
    /// retries after ABORTED with the same request id. Answers the referral id.
    async fn step(&self, r: usize, step: usize, referral_id: &str, timeout: Duration) -> anyhow::Result<String> {
        let mut attempt = 0;
        loop {
            match self.step_once(r, step, referral_id, timeout).await {
                Err(s) if s.code() == Code::Aborted && attempt < 10 => {
                    attempt += 1;
                    self.aborted_retries.fetch_add(1, Ordering::Relaxed);
                }
                Err(s) => {
                    return Err(anyhow::Error::new(s)
                        .context(format!("{} of bench referral {r} ({referral_id})", STEP_NAMES[step])));
                }
                Ok(id) => return Ok(id),
            }
        }
    }

    async fn step_once(
        &self,
        r: usize,
        step: usize,
        referral_id: &str,
        timeout: Duration,
    ) -> Result<String, tonic::Status> {
        let (p, person_id) = self.pair(r);
        let partner = &self.partner_auth[p];
        let request_id = format!("{}-{r}-{}", self.run, STEP_NAMES[step]);
        let referral_id = referral_id.to_owned();
        let mut c = self.grpc(r);
        match step {
            0 => {
                let amount = 100_000 + (r as i64 * 7_919) % 4_000_000;
                let msg = pb::CreateReferralRequest {
                    request_id,
                    person_id: person_id.to_owned(),
                    partner_id: self.partners[p].clone(),
                    need: Some(feed::Need {
                        service: feed::ServiceKind::Loan as i32,
                        requested_amount: Some(Money { amount_minor: amount, currency: "EUR".into() }),
                    }),
                    district: DISTRICTS[r % DISTRICTS.len()].into(),
                    profile: Some(pb::SharedProfile {
                        display_name: format!("{} {}", GIVEN[r % GIVEN.len()], FAMILY[r % FAMILY.len()]),
                        phone: format!("+3736{:07}", r % 10_000_000),
                        email: format!("entrepreneur.{r}@example.md"),
                        note: "Greenhouse vegetables; needs working capital for the season.".into(),
                    }),
                    min_registry_position: self.min_registry_position,
                };
                Ok(c.create_referral(self.req(msg, &self.staff, timeout)).await?.into_inner().referral_id)
            }
            1 => {
                let msg = pb::AcceptReferralRequest { request_id, referral_id: referral_id.clone() };
                c.accept_referral(self.req(msg, partner, timeout)).await?;
                Ok(referral_id)
            }
            2 => {
                let msg = pb::ReportProgressRequest {
                    request_id,
                    referral_id: referral_id.clone(),
                    stage: feed::ProgressStage::MeetingHeld as i32,
                };
                c.report_progress(self.req(msg, partner, timeout)).await?;
                Ok(referral_id)
            }
            3 => {
                let amount = 100_000 + (r as i64 * 104_729) % 2_000_000;
                let outcome = feed::Outcome {
                    kind: Some(feed::outcome::Kind::LoanDisbursed(Money {
                        amount_minor: amount,
                        currency: "EUR".into(),
                    })),
                };
                let msg =
                    pb::RecordOutcomeRequest { request_id, referral_id: referral_id.clone(), outcome: Some(outcome) };
                c.record_outcome(self.req(msg, partner, timeout)).await?;
                Ok(referral_id)
            }
            _ => {
                let msg = pb::CloseReferralRequest { request_id, referral_id: referral_id.clone() };
                let auth = if r.is_multiple_of(2) { &self.staff } else { partner };
                c.close_referral(self.req(msg, auth, timeout)).await?;
                Ok(referral_id)
            }
        }
    }
}

/// `op(0..total)` on `clients` tasks, one at a time each; the wall time.
async fn closed_loop<F, Fut>(total: usize, clients: usize, op: F) -> anyhow::Result<Duration>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let (elapsed, _) = super::stats::concurrently(total, clients, op).await?;
    Ok(elapsed)
}

/// Registers the partners (admin).
async fn register_partners(config: &Config, addr: &str, run: &str, n: usize) -> anyhow::Result<Vec<String>> {
    let admin = bearer(&TokenIssuer::from_config(config)?.issue(
        "bench-admin",
        &[Role::Admin],
        None,
        Duration::from_secs(6 * 3600),
    )?)?;
    let mut c = ReferralServiceClient::new(connect(addr, 1, "referrals service").await?.remove(0));
    // A run-specific IDNO prefix: reruns on the same servers get new partners.
    let seed = uuid::Uuid::now_v7().as_u128();
    let mut ids = Vec::new();
    for p in 0..n {
        let prefix = format!("{:012}", (seed.wrapping_mul(31).wrapping_add(p as u128 * 7_919)) % 1_000_000_000_000);
        let idno = make_national_code(&prefix).context("making an IDNO")?;
        let kind = PARTNER_KINDS[p % PARTNER_KINDS.len()];
        let msg = pb::RegisterPartnerRequest {
            request_id: format!("{run}-partner-{p}"),
            kind: kind as i32,
            name: format!("Bench {} {p}", if kind == feed::PartnerKind::Bank { "Bank" } else { "Microfinance" }),
            idno,
            districts: DISTRICTS.iter().map(|d| (*d).to_owned()).collect(),
            contact: Some(pb::PartnerContact {
                email: format!("referrals.{p}@partner.example.md"),
                phone: format!("+37322{:06}", 100_000 + p),
                address: "str. Ștefan cel Mare 1, Chișinău".into(),
            }),
            services: vec![pb::PartnerService {
                kind: feed::ServiceKind::Loan as i32,
                description: "Start-up and working-capital loans for returnees.".into(),
                min_amount: Some(Money { amount_minor: 50_000, currency: "EUR".into() }),
                max_amount: Some(Money { amount_minor: 5_000_000, currency: "EUR".into() }),
            }],
            response_time: None,
        };
        let id = c
            .register_partner(req(&admin, msg, Duration::from_secs(30)))
            .await
            .context("registering a bench partner")?
            .into_inner()
            .partner_id;
        ids.push(id);
    }
    Ok(ids)
}

/// Registers `n` people and gives each consent to share with every partner;
/// answers the people and the largest registry position.
async fn register_people(
    config: &Config,
    addr: &str,
    run: &str,
    n: usize,
    partners: &[String],
    clients: usize,
) -> anyhow::Result<(Vec<String>, u64, Rate)> {
    let auth = Arc::new(bearer(&TokenIssuer::from_config(config)?.issue(
        "bench-caseworker",
        &[Role::Caseworker],
        None,
        Duration::from_secs(6 * 3600),
    )?)?);
    let channels = Arc::new(connect(addr, 2, "registry").await?);
    let people = Arc::new(Mutex::new(vec![String::new(); n]));
    let last = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    {
        let (channels, auth, people, last, run) =
            (channels.clone(), auth.clone(), people.clone(), last.clone(), run.to_owned());
        closed_loop(n, clients, move |i| {
            let (channels, auth, people, last) = (channels.clone(), auth.clone(), people.clone(), last.clone());
            let msg = reg::RegisterPersonRequest {
                request_id: format!("{run}-person-{i}"),
                details: Some(reg::PersonDetails {
                    given_name: GIVEN[i % GIVEN.len()].into(),
                    family_name: FAMILY[(i / GIVEN.len()) % FAMILY.len()].into(),
                    birth_date: Some(Date {
                        year: 1970 + (i % 35) as i32,
                        month: 1 + (i % 12) as i32,
                        day: 1 + (i % 28) as i32,
                    }),
                    home_district: DISTRICTS[i % DISTRICTS.len()].into(),
                    languages: vec!["ro".into()],
                    profession: "farmer".into(),
                    ..Default::default()
                }),
                contacts: Some(reg::Contacts {
                    email: format!("entrepreneur.{i}@example.md"),
                    phone: format!("+3736{:07}", i % 10_000_000),
                }),
                country_of_residence: "MD".into(),
                categories: vec![reg::Category::Returnee as i32],
                interests: vec![reg::Interest::EntrepreneurshipSupport as i32],
            };
            let r = req(&auth, msg, Duration::from_secs(30));
            async move {
                let mut c = RegistryServiceClient::new(channels[i % channels.len()].clone());
                let a = c.register_person(r).await.context("registering a bench person")?.into_inner();
                last.fetch_max(a.position, Ordering::Relaxed);
                people.lock().map_err(|_| anyhow::anyhow!("poisoned"))?[i] = a.person_id;
                Ok(())
            }
        })
        .await?;
    }
    let people: Arc<Vec<String>> = Arc::new(people.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone());
    let partners = Arc::new(partners.to_vec());
    let consents = n * partners.len();
    {
        let (channels, auth, people, last, run) =
            (channels.clone(), auth.clone(), people.clone(), last.clone(), run.to_owned());
        closed_loop(consents, clients, move |i| {
            let (channels, auth, last) = (channels.clone(), auth.clone(), last.clone());
            let msg = reg::GiveConsentRequest {
                request_id: format!("{run}-consent-{i}"),
                person_id: people[i / partners.len()].clone(),
                purpose: reg::ConsentPurpose::PartnerSharing as i32,
                partner_id: partners[i % partners.len()].clone(),
                channel: reg::ConsentChannel::InPerson as i32,
            };
            let r = req(&auth, msg, Duration::from_secs(30));
            async move {
                let mut c = RegistryServiceClient::new(channels[i % channels.len()].clone());
                let a = c.give_consent(r).await.context("giving bench consent")?.into_inner();
                last.fetch_max(a.position, Ordering::Relaxed);
                Ok(())
            }
        })
        .await?;
    }
    let setup = rate(n + consents, start.elapsed(), Vec::new());
    Ok((people.to_vec(), last.load(Ordering::Relaxed), setup))
}

/// One ordered consumer per partner on its feed subjects, new messages only,
/// feeding the tracker until aborted.
async fn start_consumers(
    client: &async_nats::Client,
    partners: &[String],
    tracker: &Arc<Tracker>,
) -> anyhow::Result<tokio::task::JoinSet<()>> {
    let js = async_nats::jetstream::new(client.clone());
    let waited = Instant::now();
    let stream = loop {
        match js.get_stream(FEED_STREAM).await {
            Ok(s) => break s,
            Err(e) if waited.elapsed() < Duration::from_secs(60) => {
                tracing::debug!("waiting for {FEED_STREAM}: {e}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("the partner feed stream {FEED_STREAM}"))),
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    for partner in partners {
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
                filter_subject: format!("acasa.partner.{partner}.>"),
                deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .with_context(|| format!("creating a feed consumer for partner {partner}"))?;
        let mut messages = consumer.messages().await.context("consuming the partner feed")?;
        let (tracker, partner) = (tracker.clone(), partner.clone());
        tasks.spawn(async move {
            while let Some(m) = messages.next().await {
                let at = Instant::now();
                let result = match m {
                    Ok(m) => tracker.delivered(&partner, &m, at),
                    Err(e) => {
                        tracing::warn!("partner feed consumer: {e}");
                        tracker.lock().map(|mut s| s.checks.consumer_errors += 1)
                    }
                };
                if let Err(e) = result {
                    tracing::warn!("feed tracker: {e}");
                    return;
                }
            }
        });
    }
    Ok(tasks)
}

/// Waits until every acknowledged command of `phase` has its event, at most `limit`; the time waited.
async fn wait_for_feed(tracker: &Tracker, phase: Phase, limit: Duration) -> anyhow::Result<Duration> {
    let start = Instant::now();
    while tracker.pending(phase)? > 0 && start.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(start.elapsed())
}

/// Runs the referrals benchmark; `raw_per_second` is the raw JetStream ceiling of this run.
pub async fn run(config: &Config, target: &Target, raw_per_second: f64) -> anyhow::Result<ReferralsReport> {
    let clients = target.clients.max(1);
    let run = uuid::Uuid::now_v7().simple().to_string();
    let issuer = TokenIssuer::from_config(config)?;
    let ttl = Duration::from_secs(6 * 3600);
    let nats = crate::app::nats(config, "bench-feed").await?;

    eprintln!("bench: referrals: raw publish → ordered consumer at {:.0}/s for 5 s (the feed's floor)…", target.rate);
    let raw_feed_baseline = raw_feed(&nats, target.rate.max(1.0), Duration::from_secs(5)).await?;

    eprintln!("bench: referrals: registering {} partners…", target.partners);
    let partners = register_partners(config, &target.addr, &run, target.partners.max(1)).await?;
    eprintln!("bench: referrals: {} people in the registry with consent to share with each partner…", target.people);
    let (people, min_registry_position, setup_registry_commands) =
        register_people(config, &target.registry_addr, &run, target.people.max(1), &partners, clients).await?;

    let mut partner_auth = Vec::new();
    for p in &partners {
        partner_auth.push(bearer(&issuer.issue(&format!("bench-partner-{p}"), &[Role::Partner], Some(p), ttl)?)?);
    }
    let fx = Arc::new(Fixture {
        channels: connect(&target.addr, 4, "referrals service").await?,
        staff: bearer(&issuer.issue("bench-caseworker", &[Role::Caseworker], None, ttl)?)?,
        partner_auth,
        partners: partners.clone(),
        people,
        run,
        min_registry_position,
        aborted_retries: AtomicU64::new(0),
    });

    let tracker = Arc::new(Tracker::default());
    let consumers = start_consumers(&nats, &partners, &tracker).await?;

    // The first referral waits for the service's projection of the registry's
    // consents (min_registry_position), then runs its whole life, and its
    // events must reach the feed.
    eprintln!("bench: referrals: waiting for the consent projection (registry position {min_registry_position})…");
    let waited = Instant::now();
    let mut referral_id = loop {
        match fx.step(0, 0, "", Duration::from_secs(30)).await {
            Ok(id) => break id,
            Err(e)
                if e.downcast_ref::<tonic::Status>().is_some_and(|s| s.code() == Code::DeadlineExceeded)
                    && waited.elapsed() < Duration::from_secs(600) => {}
            Err(e) => return Err(e),
        }
    };
    let consent_projection_wait_seconds = waited.elapsed().as_secs_f64();
    tracker.acked(&referral_id, 0, Phase::Setup, Instant::now())?;
    for s in 1..STEPS {
        referral_id = fx.step(0, s, &referral_id, Duration::from_secs(30)).await?;
        tracker.acked(&referral_id, s, Phase::Setup, Instant::now())?;
    }
    wait_for_feed(&tracker, Phase::Setup, Duration::from_secs(60)).await?;
    anyhow::ensure!(
        tracker.pending(Phase::Setup)? == 0,
        "the partner feed did not deliver the first referral's events within 60 s (stream {FEED_STREAM}, subjects acasa.partner.<partner>.>)"
    );

    let referrals = (target.commands / STEPS).max(1);
    let commands_total = referrals * STEPS;
    eprintln!("bench: referrals: {commands_total} commands ({referrals} referrals), {clients} in flight, closed loop…");
    let step_lat: Arc<Vec<Mutex<Vec<Duration>>>> = Arc::new((0..STEPS).map(|_| Mutex::new(Vec::new())).collect());
    let elapsed = {
        let (fx, tracker, step_lat) = (fx.clone(), tracker.clone(), step_lat.clone());
        closed_loop(referrals, clients, move |i| {
            let (fx, tracker, step_lat) = (fx.clone(), tracker.clone(), step_lat.clone());
            async move {
                let r = 1 + i;
                let mut id = String::new();
                for s in 0..STEPS {
                    let t = Instant::now();
                    id = fx.step(r, s, &id, Duration::from_secs(10)).await?;
                    let acked = Instant::now();
                    tracker.acked(&id, s, Phase::Closed, acked)?;
                    step_lat[s].lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push(acked - t);
                }
                Ok(())
            }
        })
        .await?
    };
    let mut all = Vec::with_capacity(commands_total);
    let mut steps = Vec::new();
    for (s, l) in step_lat.iter().enumerate() {
        let l = std::mem::take(&mut *l.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
        all.extend_from_slice(&l);
        steps.push(StepRate { command: STEP_NAMES[s], rate: rate(l.len(), elapsed, l) });
    }
    let commands = rate(commands_total, elapsed, all);
    eprintln!("bench: referrals: waiting for the feed to deliver the closed loop's events…");
    let caught_up = wait_for_feed(&tracker, Phase::Closed, Duration::from_secs(300)).await?;
    let feed_closed_loop = tracker.latency(Phase::Closed, elapsed)?;

    let open_loop = open_loop(&fx, &tracker, target, 1 + referrals).await?;
    let feed_checks = tracker.finish_checks()?;
    drop(consumers);

    Ok(ReferralsReport {
        raw_feed_baseline,
        partners: partners.len(),
        people: fx.people.len(),
        setup_registry_commands,
        consent_projection_wait_seconds,
        ratio: commands.per_second / raw_per_second,
        commands,
        steps,
        aborted_retries: fx.aborted_retries.load(Ordering::Relaxed),
        feed_caught_up_after_closed_loop_seconds: caught_up.as_secs_f64(),
        feed_closed_loop,
        open_loop,
        feed_checks,
        service_peak_rss_mib: peak_rss_mib(target.service_pid),
        worker_peak_rss_mib: peak_rss_mib(target.worker_pid),
    })
}

/// Raw JetStream publishes open loop at `per_second` for `duration` (file
/// storage, like the feed), each matched to its delivery to an ordered consumer.
async fn raw_feed(client: &async_nats::Client, per_second: f64, duration: Duration) -> anyhow::Result<RawFeedBaseline> {
    type Times = Mutex<Vec<(Option<Instant>, Option<Instant>)>>;
    let js = async_nats::jetstream::new(client.clone());
    let _ = js.delete_stream("BENCH_FEED_RAW").await;
    let stream = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: "BENCH_FEED_RAW".into(),
            subjects: vec!["bench.feed.>".into()],
            storage: async_nats::jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await
        .context("creating the raw feed stream")?;
    let total = (per_second * duration.as_secs_f64()).max(1.0) as usize;
    let times: Arc<Times> = Arc::new(Mutex::new(vec![(None, None); total]));
    let mut messages = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: "bench.feed.>".into(),
            deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::New,
            ..Default::default()
        })
        .await
        .context("creating the raw feed consumer")?
        .messages()
        .await?;
    let delivered = Arc::new(AtomicU64::new(0));
    let consumer = {
        let (times, delivered) = (times.clone(), delivered.clone());
        tokio::spawn(async move {
            while let Some(Ok(m)) = messages.next().await {
                let at = Instant::now();
                let Some(k) = std::str::from_utf8(&m.payload).ok().and_then(|p| p.parse::<usize>().ok()) else {
                    continue;
                };
                if let Ok(mut t) = times.lock()
                    && let Some(slot) = t.get_mut(k)
                {
                    slot.1 = Some(at);
                }
                delivered.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let interval = Duration::from_secs_f64(1.0 / per_second);
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..total {
        tokio::time::sleep_until(start + interval.mul_f64(k as f64)).await;
        let (js, times) = (js.clone(), times.clone());
        tasks.spawn(async move {
            js.publish(format!("bench.feed.p{}.r{k}", k % 8), k.to_string().into()).await?.await?;
            let at = Instant::now();
            if let Some(slot) = times.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.get_mut(k) {
                slot.0 = Some(at);
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let elapsed = start.elapsed();
    let waited = Instant::now();
    while (delivered.load(Ordering::Relaxed) as usize) < total && waited.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    consumer.abort();
    let (mut lat, mut missing) = (Vec::with_capacity(total), 0);
    for (a, d) in times.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.iter() {
        match (a, d) {
            (Some(a), Some(d)) => lat.push(d.saturating_duration_since(*a)),
            _ => missing += 1,
        }
    }
    let _ = js.delete_stream("BENCH_FEED_RAW").await;
    Ok(RawFeedBaseline { max_ms: max_ms(&lat), missing, latency: rate(lat.len(), elapsed, lat) })
}

/// A referral of the open loop: its id once created, and its steps acknowledged.
struct Slot {
    id: std::sync::OnceLock<String>,
    done: tokio::sync::watch::Sender<usize>,
}

/// What one open-loop command reports.
struct Sent {
    tick: usize,
    start_lag: Duration,
    sent: Instant,
    acked: Instant,
    latency: Duration,
    waited: bool,
}

/// The mix open loop at `target.rate`, referral indexes from `first`.
async fn open_loop(
    fx: &Arc<Fixture>,
    tracker: &Arc<Tracker>,
    target: &Target,
    first: usize,
) -> anyhow::Result<OpenLoop> {
    let per_second = target.rate.max(1.0);
    let warm_ticks = (per_second * target.warmup_seconds) as usize;
    let total = warm_ticks + (per_second * target.seconds).max(1.0) as usize;
    let interval = Duration::from_secs_f64(1.0 / per_second);
    // Referrals between a referral's consecutive steps in the schedule.
    let lag = ((STEP_SPACING.as_secs_f64() * per_second / STEPS as f64).round() as usize).max(1);
    let slots: Arc<Vec<Slot>> = Arc::new(
        (0..total / STEPS + 1)
            .map(|_| Slot { id: std::sync::OnceLock::new(), done: tokio::sync::watch::channel(0).0 })
            .collect(),
    );
    eprintln!(
        "bench: referrals: the mix open loop at {per_second:.0}/s: {:.0} s warm-up, {:.0} s measured…",
        target.warmup_seconds, target.seconds
    );
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..total {
        let s = k % STEPS;
        let Some(slot_index) = (k / STEPS).checked_sub(s * lag) else { continue };
        let scheduled = start + interval.mul_f64(k as f64);
        tokio::time::sleep_until(scheduled).await;
        let (fx, tracker, slots) = (fx.clone(), tracker.clone(), slots.clone());
        let phase = if k < warm_ticks { Phase::Warmup } else { Phase::Open };
        tasks.spawn(async move {
            let slot = &slots[slot_index];
            let mut rx = slot.done.subscribe();
            let waited = *rx.borrow() < s;
            if waited {
                tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|d| *d >= s))
                    .await
                    .context("waiting for a referral's previous step")??;
            }
            let sent = Instant::now();
            let start_lag = tokio::time::Instant::now().saturating_duration_since(scheduled);
            let r = first + slot_index;
            let prev = slot.id.get().cloned().unwrap_or_default();
            let id = fx.step(r, s, &prev, Duration::from_secs(10)).await?;
            let acked = Instant::now();
            tracker.acked(&id, s, phase, acked)?;
            if s == 0 {
                let _ = slot.id.set(id);
            }
            slot.done.send_replace(s + 1);
            let latency = tokio::time::Instant::now().saturating_duration_since(scheduled);
            Ok::<_, anyhow::Error>(Sent { tick: k, start_lag, sent, acked, latency, waited })
        });
    }
    let scheduled_end = start.elapsed();
    let mut window = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let sent = r??;
        if sent.tick >= warm_ticks {
            window.push(sent);
        }
    }
    eprintln!("bench: referrals: waiting for the feed to deliver the open loop's events…");
    wait_for_feed(tracker, Phase::Open, Duration::from_secs(30)).await?;

    let n = window.len();
    let first_sent = window.iter().map(|s| s.sent).min();
    let last_sent = window.iter().map(|s| s.sent).max();
    let last_acked = window.iter().map(|s| s.acked).max();
    let (sent_per_second, acknowledged_per_second) = match (first_sent, last_sent, last_acked) {
        (Some(f), Some(l), Some(a)) if n > 1 => {
            let span = l.duration_since(f).as_secs_f64().max(1e-9);
            ((n - 1) as f64 / span, n as f64 / a.duration_since(f).as_secs_f64().max(1e-9))
        }
        _ => (0.0, 0.0),
    };
    let measured = Duration::from_secs_f64(target.seconds.max(1e-3));
    let lags: Vec<Duration> = window.iter().map(|s| s.start_lag).collect();
    let start_lag_max_ms = max_ms(&lags);
    let start_lag = rate(n, measured, lags);
    let waited_for_previous_step = window.iter().filter(|s| s.waited).count();
    let commands_latency = rate(n, measured, window.iter().map(|s| s.latency).collect());
    let held_rate = sent_per_second >= 0.97 * per_second
        && acknowledged_per_second >= 0.95 * per_second
        && start_lag.p99_ms.is_some_and(|p| p <= 10.0);
    if !held_rate {
        eprintln!(
            "bench: referrals: the open loop did NOT hold {per_second:.0}/s: sent {sent_per_second:.0}/s, \
             acknowledged {acknowledged_per_second:.0}/s, p99 start lag {:.1} ms (schedule took {:.1} s for {:.1} s)",
            start_lag.p99_ms.unwrap_or(f64::NAN),
            scheduled_end.as_secs_f64(),
            total as f64 / per_second
        );
    }
    Ok(OpenLoop {
        requested_per_second: per_second,
        sent_per_second,
        acknowledged_per_second,
        commands: n,
        start_lag,
        start_lag_max_ms,
        waited_for_previous_step,
        held_rate,
        commands_latency,
        feed: tracker.latency(Phase::Open, measured)?,
    })
}

/// Prints the figures in the style of the registry's.
pub fn print_table(g: &ReferralsReport) {
    let lat = |x: &Rate| match (x.p50_ms, x.p99_ms) {
        (Some(a), Some(b)) => format!("p50 {a:6.2} ms  p99 {b:6.2} ms"),
        _ => String::new(),
    };
    let ms = |m: Option<f64>| m.map_or_else(|| "n/a".to_owned(), |m| format!("{m:.2} ms"));
    let mib = |m: Option<f64>| m.map_or_else(|| "n/a".to_owned(), |m| format!("{m:.1} MiB"));
    println!(
        "Referrals over gRPC — {} partners, {} people with consent to each; per referral: create, accept, progress, outcome, close",
        g.partners, g.people
    );
    println!(
        "  setup: registry commands   {:>10.0} /s  ({} ops); consent projection waited {:.2} s",
        g.setup_registry_commands.per_second, g.setup_registry_commands.ops, g.consent_projection_wait_seconds
    );
    println!("  referral commands (closed) {:>10.0} /s  {}", g.commands.per_second, lat(&g.commands));
    println!("    ratio to raw publishes   {:>10.1} %   (target ≥ 50 %)", g.ratio * 100.0);
    for s in &g.steps {
        println!("    {:<10}               {:>10.0} /s  {}", s.command, s.rate.per_second, lat(&s.rate));
    }
    if g.aborted_retries > 0 {
        println!("    retries after ABORTED    {:>10}", g.aborted_retries);
    }
    println!(
        "  feed during closed loop    {:>10} events  {}  max {}",
        g.feed_closed_loop.delivered,
        lat(&g.feed_closed_loop.latency),
        ms(g.feed_closed_loop.max_ms)
    );
    println!("    feed caught up after     {:>10.2} s", g.feed_caught_up_after_closed_loop_seconds);
    let o = &g.open_loop;
    println!(
        "  mix open loop requested    {:>10.0} /s  sent {:.0} /s, acknowledged {:.0} /s{}",
        o.requested_per_second,
        o.sent_per_second,
        o.acknowledged_per_second,
        if o.held_rate { "" } else { "  — RATE NOT HELD" }
    );
    println!("    start lag                {:>10}    {}  max {}", "", lat(&o.start_lag), ms(o.start_lag_max_ms));
    println!("    commands (from schedule) {:>10} ops {}", o.commands, lat(&o.commands_latency));
    let b = &g.raw_feed_baseline;
    println!(
        "  raw publish → consumer     {:>10.0} /s  {}  max {}   (the feed's floor, same rate)",
        b.latency.per_second,
        lat(&b.latency),
        ms(b.max_ms)
    );
    println!(
        "  partner feed ack → deliver {:>10} events  {}  max {}   (target p99 ≤ 50 ms)",
        o.feed.delivered,
        lat(&o.feed.latency),
        ms(o.feed.max_ms)
    );
    let by_second: Vec<String> = o.feed.p99_ms_by_second.iter().map(|p| format!("{p:.0}")).collect();
    println!(
        "    over 50 ms               {:>10} events; p99 per second (ms): {}",
        o.feed.over_50_ms,
        by_second.join(" ")
    );
    println!(
        "    ce-time → deliver        {:>10}         {}  max {}",
        "",
        lat(&o.feed.from_ce_time),
        ms(o.feed.from_ce_time_max_ms)
    );
    if o.feed.missing > 0 || o.feed.before_ack > 0 || o.waited_for_previous_step > 0 {
        println!(
            "    missing events {}, delivered before the ack {}, waited for the previous step {}",
            o.feed.missing, o.feed.before_ack, o.waited_for_previous_step
        );
    }
    let c = &g.feed_checks;
    let faults = c.undecodable
        + c.missing_headers
        + c.bad_headers
        + c.type_mismatch
        + c.id_mismatch
        + c.duplicate_ce_ids
        + c.duplicate_events
        + c.out_of_order
        + c.unexpected_kinds
        + c.unmatched
        + c.consumer_errors;
    if faults == 0 {
        println!("  feed contract checks       {:>10} messages, all as specified", c.messages);
    } else {
        println!("  feed contract checks       {:>10} messages; FAULTS: {c:?}", c.messages);
    }
    println!("  peak RSS: service {}, worker {}", mib(g.service_peak_rss_mib), mib(g.worker_peak_rss_mib));
}
