//! The placements part of `acasa bench`: a running placements service and
//! its worker (`acasa serve placements`, `acasa project placements`: read
//! model, the projection of the registry's people — sealed fields opened by
//! the registry's `PersonDataService` — and the deadline worker; separate
//! processes started by `make bench`) driven over gRPC, beside the raw
//! JetStream ceiling measured in the same run.
//!
//! Setup (not measured as the mix): host institutions and their graduate
//! offers (caseworker; at most 1,000 places per offer, so several offers),
//! one registry person per placement — category OVERSEAS_GRADUATE, then
//! programme-participation consent — registered through the registry's
//! gRPC with `clients` in flight, then the wait until the service's own
//! projection of the registry holds them (`ListCandidates` with
//! `min_registry_position`). When `make bench` runs the other parts first,
//! the worker only starts here (`--placements-worker-gate`), so its
//! projection of the registry's log — every registration opened through the
//! registry — does not run during the registry's and the referrals'
//! measurements; it catches up on their people in this wait.
//!
//! The mix, closed loop, `clients` in flight, each client running one
//! placement's steps one after another. The placements spread round-robin
//! over offers of `places_per_offer` places (100 by default: 100 offers at
//! 50 hosts, so the clients' concurrent proposals rarely meet on one offer,
//! as in the programme, where an offer has a handful of places). Proposals
//! racing for one offer all try its lowest free place first and collide on
//! its claim; a run with 1,000 places per offer (10 offers, ~6 proposals in
//! flight on each) measures that hot spot.
//!
//! 1. The lifecycle: propose (caseworker; takes one of the offer's places
//!    and the person's one active placement as claims), accept, sign the
//!    agreement, start — on a day three months and 1–25 days ago, so the
//!    first three months are due today — then submit a travel claim and
//!    approve it (caseworker). Six commands per placement.
//! 2. Months fall due only through the deadline worker (sweeping by UTC
//!    date every `ACASA_PLACEMENTS_SWEEP_MS`, at most 1,000 placements per
//!    sweep, one `FallDue` command each). It sweeps during 1 — its commands
//!    share the cores and conflict with the clients' on the same placements,
//!    as they would in service — and is then waited for, not measured: the
//!    read model is polled (every 250 ms, at most 10 minutes) until it holds
//!    every month due. The wait is reported.
//! 3. The monthly round: the host confirms presence for month 1 (a host
//!    token scoped to its `host_id`), finance pays month 1, the host
//!    confirms month 2, finance pays the travel claim. Four commands per
//!    placement.
//!
//! Commands/s is all ten commands of every placement over the wall time of
//! 1 and 3 (not the wait of 2), with each step's latency; its ratio to the
//! raw publish ceiling is set beside the registry's mix ratio of the same
//! run (the target: at least that). ABORTED answers (a placement changed
//! by the deadline worker fifty times in a row) are retried with the same
//! request id and counted.
//!
//! Then, with `placements` running placements whose month 1 is paid, month
//! 2 confirmed and unpaid and month 3 unconfirmed: `ListPaymentsDue` as of
//! today (finance), with and without unconfirmed months, first pages and
//! pages 2–5 through `page_token` (tokens collected beforehand), with a
//! minimum position, `readers` at a time; and the whole list paged through
//! once each way to check it holds exactly what is due. Last, the peak RSS
//! (VmHWM) of the service and the worker.

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use acasa_domain::formats::make_national_code;
use acasa_proto::{
    placements::v1::{self as pb, placement_service_client::PlacementServiceClient},
    registry::v1 as reg,
    r#type::v1::{Date, Money},
};
use acasa_runtime::{Config, Role, TokenIssuer, TokenScope};
use anyhow::Context as _;
use chrono::{Months, NaiveDate};
use serde::Serialize;
use tonic::{
    Code, Status,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

use super::client::{bearer, connect, register_people, req};
use super::stats::{Rate, StepRate, concurrently, peak_rss_mib, rate};

/// Commands of the lifecycle run (1) and of the monthly round (3).
const LIFECYCLE: usize = 6;
const STEPS: usize = 10;
const STEP_NAMES: [&str; STEPS] = [
    "propose",
    "accept",
    "sign",
    "start",
    "submit travel",
    "approve travel",
    "confirm month 1",
    "pay month 1",
    "confirm month 2",
    "pay travel",
];
/// The monthly allowance and the travel figures, in MDL minor units.
const ALLOWANCE: i64 = 600_000;
const TRAVEL_CAP: i64 = 300_000;
const TRAVEL_CLAIM: i64 = 120_000;
/// Months of a graduate placement.
const TERM_MONTHS: u32 = 6;
/// Offers per host institution.
const OFFERS_PER_HOST: usize = 2;
/// Pages deep the payment-list queries go (pages 2..=DEEP).
const DEEP: usize = 5;

const DISTRICTS: &[&str] = &["Chișinău", "Bălți", "Cahul", "Orhei", "Ungheni", "Soroca", "Comrat", "Hîncești"];
const GIVEN: &[&str] = &["Ion", "Maria", "Vasile", "Elena", "Mihai", "Natalia", "Andrei", "Tatiana", "Sergiu", "Olga"];
const FAMILY: &[&str] = &["Rusu", "Ceban", "Ciobanu", "Țurcanu", "Lungu", "Munteanu", "Rotari", "Cojocaru", "Moraru"];

/// Where the placements service runs, for the benchmark.
#[derive(Clone, Debug)]
pub struct Target {
    /// The placements service's gRPC address (`host:port`).
    pub addr: String,
    /// The registry service's gRPC address, for the people and their consent.
    pub registry_addr: String,
    /// Running placements to reach (one registry person each).
    pub placements: usize,
    /// Places per offer (at most 1,000).
    pub places_per_offer: usize,
    /// Concurrent clients of the mix and of the setup.
    pub clients: usize,
    /// Concurrent readers of the payment list.
    pub readers: usize,
    /// Payment-list queries to measure.
    pub queries: usize,
    /// The service's pid, for its peak RSS.
    pub service_pid: Option<u32>,
    /// The worker's pid.
    pub worker_pid: Option<u32>,
    /// A file to create when this part starts: `make bench` starts the
    /// worker only then.
    pub worker_gate: Option<PathBuf>,
    /// The registry's mix ratio of this run, to compare with.
    pub registry_mixed_ratio: Option<f64>,
}

/// One kind of payment-list query.
#[derive(Debug, Serialize)]
pub struct QueryRate {
    /// Which (confirmed only or with unconfirmed; first page or deeper).
    pub query: &'static str,
    /// Its rate and latencies.
    pub rate: Rate,
}

/// The placements figures.
#[derive(Debug, Serialize)]
pub struct PlacementsReport {
    /// Running placements set up and measured.
    pub placements: usize,
    /// Host institutions.
    pub hosts: usize,
    /// Offers (graduate placements).
    pub offers: usize,
    /// Places per offer.
    pub places_per_offer: usize,
    /// Registry commands of the setup (registrations and consents), for scale.
    pub setup_registry_commands: Rate,
    /// Seconds until the service's projection of the registry held the setup's people.
    pub people_projection_wait_seconds: f64,
    /// All placement commands of the mix (lifecycle and monthly round), closed loop.
    pub commands: Rate,
    /// commands / raw JetStream publishes of this run.
    pub ratio: f64,
    /// The registry's mix ratio of this run (the target: at least this).
    pub registry_mixed_ratio: Option<f64>,
    /// The lifecycle run (propose to approved travel).
    pub lifecycle: Rate,
    /// The monthly round (presence, payments).
    pub monthly_round: Rate,
    /// Each step.
    pub steps: Vec<StepRate>,
    /// Retries after ABORTED.
    pub aborted_retries: u64,
    /// Months due today over all placements.
    pub months_due: usize,
    /// Seconds from the lifecycle run's end until the read model held every month due.
    pub months_due_wait_seconds: f64,
    /// Lines of the payment list, confirmed months only (expected: one per placement).
    pub payment_lines_confirmed: usize,
    /// Lines with unconfirmed months (expected: two per placement).
    pub payment_lines_with_unconfirmed: usize,
    /// Every `ListPaymentsDue` query measured.
    pub payments_due: Rate,
    /// By kind of query.
    pub payments_due_by_query: Vec<QueryRate>,
    /// Readers at a time.
    pub readers: usize,
    /// Peak RSS of the service, MiB.
    pub service_peak_rss_mib: Option<f64>,
    /// Peak RSS of the worker, MiB.
    pub worker_peak_rss_mib: Option<f64>,
}

fn mdl(amount_minor: i64) -> Option<Money> {
    Some(Money { amount_minor, currency: "MDL".into() })
}

fn date(d: NaiveDate) -> Option<Date> {
    Some(acasa_placements::codec::date(d))
}

/// A placement of the run: its id once proposed, its travel claim's once submitted.
#[derive(Default)]
struct Ids {
    placement: OnceLock<String>,
    claim: OnceLock<String>,
}

/// The clients, tokens and fixtures every command needs.
struct Fixture {
    channels: Vec<Channel>,
    staff: MetadataValue<Ascii>,
    finance: MetadataValue<Ascii>,
    /// A host token per host.
    host_auth: Vec<MetadataValue<Ascii>>,
    /// Offer ids and their host's index.
    offers: Vec<(String, usize)>,
    people: Vec<String>,
    ids: Vec<Ids>,
    run: String,
    today: NaiveDate,
    min_registry_position: u64,
    last_position: AtomicU64,
    aborted_retries: AtomicU64,
}

/// The first day of placement `i`: three months and 1–25 days before `today`.
fn start_of(today: NaiveDate, i: usize) -> anyhow::Result<NaiveDate> {
    let back = today.checked_sub_months(Months::new(3)).context("three months back")?;
    back.checked_sub_days(chrono::Days::new(1 + (i % 25) as u64)).context("days back")
}

/// Months of a placement started on `start` that are due by `today`.
fn months_due(start: NaiveDate, today: NaiveDate) -> usize {
    (1..=TERM_MONTHS)
        .filter(|k| acasa_placements::domain::month_period(start, *k).is_some_and(|(_, due)| due <= today))
        .count()
}

impl Fixture {
    fn grpc(&self, i: usize) -> PlacementServiceClient<Channel> {
        PlacementServiceClient::new(self.channels[i % self.channels.len()].clone())
    }

    /// Runs step `s` of placement `i`, retrying after ABORTED with the same request id.
    async fn step(&self, i: usize, s: usize) -> anyhow::Result<()> {
        let mut attempt = 0;
        loop {
            match self.step_once(i, s).await {
                Err(e) if e.code() == Code::Aborted && attempt < 10 => {
                    attempt += 1;
                    self.aborted_retries.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e).context(format!("{} of bench placement {i}", STEP_NAMES[s])));
                }
                Ok(position) => {
                    self.last_position.fetch_max(position, Ordering::Relaxed);
                    return Ok(());
                }
            }
        }
    }

    async fn step_once(&self, i: usize, s: usize) -> Result<u64, Status> {
        let timeout = Duration::from_secs(30);
        let request_id = format!("{}-{i}-{s}", self.run);
        let (offer_id, host) = &self.offers[i % self.offers.len()];
        let ids = &self.ids[i];
        let placement_id = ids.placement.get().cloned().unwrap_or_default();
        let claim_id = ids.claim.get().cloned().unwrap_or_default();
        let start = start_of(self.today, i).map_err(|e| Status::internal(e.to_string()))?;
        let mut c = self.grpc(i);
        let (staff, finance, host) = (&self.staff, &self.finance, &self.host_auth[*host]);
        let position = match s {
            0 => {
                let msg = pb::ProposePlacementRequest {
                    request_id,
                    offer_id: offer_id.clone(),
                    person_id: self.people[i].clone(),
                    min_registry_position: self.min_registry_position,
                };
                let r = c.propose_placement(req(staff, msg, timeout)).await?.into_inner();
                let _ = ids.placement.set(r.placement_id);
                r.position
            }
            1 => {
                let msg = pb::AcceptPlacementRequest { request_id, placement_id };
                c.accept_placement(req(staff, msg, timeout)).await?.into_inner().position
            }
            2 => {
                let msg = pb::SignAgreementRequest {
                    request_id,
                    placement_id,
                    signed_on: date(start - chrono::Days::new(14)),
                    start_on: date(start),
                    reference: format!("AG-{}-{i}", &self.run[..8]),
                };
                c.sign_agreement(req(staff, msg, timeout)).await?.into_inner().position
            }
            3 => {
                let msg = pb::StartPlacementRequest { request_id, placement_id, started_on: date(start) };
                c.start_placement(req(staff, msg, timeout)).await?.into_inner().position
            }
            4 => {
                let msg = pb::SubmitTravelClaimRequest {
                    request_id,
                    placement_id,
                    kind: "flight".into(),
                    amount: mdl(TRAVEL_CLAIM),
                    receipt_reference: format!("R-{i}"),
                };
                let r = c.submit_travel_claim(req(staff, msg, timeout)).await?.into_inner();
                let _ = ids.claim.set(r.claim_id);
                r.position
            }
            5 => {
                let msg =
                    pb::ApproveTravelClaimRequest { request_id, placement_id, claim_id, amount: mdl(TRAVEL_CLAIM) };
                c.approve_travel_claim(req(staff, msg, timeout)).await?.into_inner().position
            }
            6 | 8 => {
                let month = if s == 6 { 1 } else { 2 };
                let msg = pb::ConfirmPresenceRequest { request_id, placement_id, month };
                c.confirm_presence(req(host, msg, timeout)).await?.into_inner().position
            }
            7 => {
                let msg = pb::RecordAllowancePaymentRequest {
                    request_id,
                    placement_id,
                    month: 1,
                    amount: mdl(ALLOWANCE),
                    paid_on: date(self.today),
                    reference: format!("OP-{i}-1"),
                };
                c.record_allowance_payment(req(finance, msg, timeout)).await?.into_inner().position
            }
            _ => {
                let msg = pb::PayTravelClaimRequest {
                    request_id,
                    placement_id,
                    claim_id,
                    paid_on: date(self.today),
                    reference: format!("TR-{i}"),
                };
                c.pay_travel_claim(req(finance, msg, timeout)).await?.into_inner().position
            }
        };
        Ok(position)
    }
}

/// Steps `steps` of every placement, `clients` placements at a time, each
/// one's steps in order; the wall time, with each step's latencies added to
/// `step_lat`.
async fn run_steps(
    fx: &Arc<Fixture>,
    steps: std::ops::Range<usize>,
    clients: usize,
    step_lat: &Arc<Vec<Mutex<Vec<Duration>>>>,
) -> anyhow::Result<Duration> {
    let (fx, step_lat) = (fx.clone(), step_lat.clone());
    let n = fx.people.len();
    let (elapsed, _) = concurrently(n, clients, move |i| {
        let (fx, step_lat, steps) = (fx.clone(), step_lat.clone(), steps.clone());
        async move {
            for s in steps {
                let t = Instant::now();
                fx.step(i, s).await?;
                step_lat[s].lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push(t.elapsed());
            }
            Ok(())
        }
    })
    .await?;
    Ok(elapsed)
}

/// Registers the hosts and publishes their offers (caseworker): the offers
/// and their host's index, and the host ids.
async fn hosts_and_offers(
    c: &mut PlacementServiceClient<Channel>,
    staff: &MetadataValue<Ascii>,
    run: &str,
    offers: usize,
    places: usize,
    today: NaiveDate,
) -> anyhow::Result<(Vec<(String, usize)>, Vec<String>)> {
    let timeout = Duration::from_secs(30);
    let hosts_n = offers.div_ceil(OFFERS_PER_HOST);
    // A run-specific IDNO prefix: reruns on the same servers get new hosts.
    let seed = uuid::Uuid::now_v7().as_u128();
    let mut hosts = Vec::new();
    for h in 0..hosts_n {
        let prefix = format!("{:012}", (seed.wrapping_mul(31).wrapping_add(h as u128 * 7_919)) % 1_000_000_000_000);
        let msg = pb::RegisterHostRequest {
            request_id: format!("{run}-host-{h}"),
            idno: make_national_code(&prefix).context("making an IDNO")?,
            details: Some(pb::HostDetails {
                kind: pb::HostKind::PrivateEmployer as i32,
                name: format!("Bench Construct {h} SRL"),
                district: DISTRICTS[h % DISTRICTS.len()].into(),
                contact: Some(pb::HostContact {
                    name: "HR office".into(),
                    email: format!("hr.{h}@host.example.md"),
                    phone: format!("+37322{:06}", 100_000 + h),
                }),
                hosts: vec!["Civil engineering".into(), "Roads".into()],
            }),
        };
        let r = c.register_host(req(staff, msg, timeout)).await.context("registering a bench host")?.into_inner();
        hosts.push(r.host_id);
    }
    let window_from = today.checked_sub_months(Months::new(4)).context("four months back")?;
    let window_until = today.checked_sub_months(Months::new(3)).context("three months back")?;
    let mut out = Vec::new();
    for o in 0..offers {
        let host = o % hosts_n;
        let msg = pb::PublishOfferRequest {
            request_id: format!("{run}-offer-{o}"),
            host_id: hosts[host].clone(),
            terms: Some(pb::OfferTerms {
                kind: pb::PlacementKind::GraduatePlacement as i32,
                subject: "Civil engineering".into(),
                places: i32::try_from(places).context("places")?,
                term_months: TERM_MONTHS as i32,
                allowance: mdl(ALLOWANCE),
                travel_cap: mdl(TRAVEL_CAP),
                start_from: date(window_from),
                start_until: date(window_until),
                languages: vec!["ro".into(), "en".into()],
            }),
        };
        let r = c.publish_offer(req(staff, msg, timeout)).await.context("publishing a bench offer")?.into_inner();
        out.push((r.offer_id, host));
    }
    Ok((out, hosts))
}

/// Graduate `i`'s registration: names and birth date distinct for every `i`
/// (no namesake waits).
fn graduate(run: &str, i: usize) -> reg::RegisterPersonRequest {
    let k = i / (GIVEN.len() * FAMILY.len());
    reg::RegisterPersonRequest {
        request_id: format!("{run}-graduate-{i}"),
        details: Some(reg::PersonDetails {
            given_name: GIVEN[i % GIVEN.len()].into(),
            family_name: FAMILY[(i / GIVEN.len()) % FAMILY.len()].into(),
            birth_date: Some(Date {
                year: 1990 + (k % 10) as i32,
                month: 1 + ((k / 10) % 12) as i32,
                day: 1 + ((k / 120) % 28) as i32,
            }),
            home_district: DISTRICTS[i % DISTRICTS.len()].into(),
            languages: vec!["ro".into(), "en".into()],
            profession: "civil engineer".into(),
            skills: vec!["bridges".into(), "autocad".into()],
            ..Default::default()
        }),
        contacts: Some(reg::Contacts {
            email: format!("graduate.{i}@example.md"),
            phone: format!("+3736{:07}", i % 10_000_000),
        }),
        country_of_residence: "DE".into(),
        categories: vec![reg::Category::OverseasGraduate as i32],
        interests: vec![reg::Interest::Placement as i32],
    }
}

/// Waits until the service's projection of the registry has reached
/// `position` (at most 10 minutes); the seconds waited.
async fn wait_for_people(fx: &Fixture, offer_id: &str) -> anyhow::Result<f64> {
    let waited = Instant::now();
    loop {
        let msg = pb::ListCandidatesRequest {
            offer_id: offer_id.to_owned(),
            page_size: 1,
            page_token: String::new(),
            min_registry_position: fx.min_registry_position,
            min_position: 0,
        };
        match fx.grpc(0).list_candidates(req(&fx.staff, msg, Duration::from_secs(30))).await {
            Ok(_) => return Ok(waited.elapsed().as_secs_f64()),
            Err(s) if s.code() == Code::DeadlineExceeded && waited.elapsed() < Duration::from_secs(600) => {}
            Err(s) => {
                return Err(anyhow::Error::new(s).context(format!(
                    "waiting for the placements' projection of the registry (position {})",
                    fx.min_registry_position
                )));
            }
        }
    }
}

/// Polls the read model (every 250 ms, at most 10 minutes) until it holds
/// `expected` months of the run's placements; the seconds waited.
async fn wait_for_months(pool: &sqlx::PgPool, fx: &Fixture, expected: usize) -> anyhow::Result<f64> {
    let ids: Vec<uuid::Uuid> =
        fx.ids.iter().filter_map(|i| i.placement.get()).filter_map(|p| uuid::Uuid::parse_str(p).ok()).collect();
    let waited = Instant::now();
    loop {
        let have: i64 = sqlx::query_scalar("SELECT count(*) FROM placements.months WHERE placement_id = ANY($1)")
            .bind(&ids)
            .fetch_one(pool)
            .await
            .context("counting the months due in placements.months")?;
        if usize::try_from(have).unwrap_or(0) >= expected {
            return Ok(waited.elapsed().as_secs_f64());
        }
        anyhow::ensure!(
            waited.elapsed() < Duration::from_secs(600),
            "the deadline worker recorded {have} of {expected} months due within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One page of the payment list as finance asks for it.
async fn payments_page(
    fx: &Fixture,
    i: usize,
    include_unconfirmed: bool,
    page_size: i32,
    page_token: String,
    min_position: u64,
    timeout: Duration,
) -> Result<pb::ListPaymentsDueResponse, Status> {
    let msg =
        pb::ListPaymentsDueRequest { as_of: date(fx.today), include_unconfirmed, page_size, page_token, min_position };
    Ok(fx.grpc(i).list_payments_due(req(&fx.finance, msg, timeout)).await?.into_inner())
}

/// Every line of the payment list (pages of 200).
async fn count_lines(fx: &Fixture, include_unconfirmed: bool, min_position: u64) -> anyhow::Result<usize> {
    let (mut lines, mut token) = (0, String::new());
    loop {
        let page = payments_page(fx, 0, include_unconfirmed, 200, token, min_position, Duration::from_secs(30)).await?;
        lines += page.payments.len();
        if page.next_page_token.is_empty() {
            return Ok(lines);
        }
        token = page.next_page_token;
    }
}

/// The page tokens of pages 2..=DEEP (default page size).
async fn deep_tokens(fx: &Fixture, include_unconfirmed: bool, min_position: u64) -> anyhow::Result<Vec<String>> {
    let (mut tokens, mut token) = (Vec::new(), String::new());
    while tokens.len() < DEEP - 1 {
        let page = payments_page(fx, 0, include_unconfirmed, 0, token, min_position, Duration::from_secs(30)).await?;
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token.clone();
        tokens.push(page.next_page_token);
    }
    anyhow::ensure!(!tokens.is_empty(), "the payment list has a single page");
    Ok(tokens)
}

/// Runs the placements benchmark; `raw_per_second` is the raw JetStream ceiling of this run.
pub async fn run(
    config: &Config,
    pool: &sqlx::PgPool,
    target: &Target,
    raw_per_second: f64,
) -> anyhow::Result<PlacementsReport> {
    anyhow::ensure!((1..=1_000).contains(&target.places_per_offer), "--placements-places-per-offer is 1 to 1000");
    let n = target.placements.max(1);
    let clients = target.clients.max(1);
    let run = uuid::Uuid::now_v7().simple().to_string();
    let issuer = TokenIssuer::from_config(config)?;
    let ttl = Duration::from_secs(6 * 3600);
    let today = chrono::Utc::now().date_naive();

    if let Some(gate) = &target.worker_gate {
        eprintln!("bench: placements: starting the worker ({})…", gate.display());
        std::fs::write(gate, b"go\n").with_context(|| format!("creating {}", gate.display()))?;
    }
    let channels = connect(&target.addr, 4, "placements service").await?;
    let staff = bearer(&issuer.issue("bench-caseworker", &[Role::Caseworker], None, ttl)?)?;
    let finance = bearer(&issuer.issue("bench-finance", &[Role::Finance], None, ttl)?)?;
    let offers_n = n.div_ceil(target.places_per_offer);
    eprintln!(
        "bench: placements: {offers_n} offers of {} places at {} hosts…",
        target.places_per_offer,
        offers_n.div_ceil(OFFERS_PER_HOST)
    );
    let mut c = PlacementServiceClient::new(channels[0].clone());
    let (offers, hosts) = hosts_and_offers(&mut c, &staff, &run, offers_n, target.places_per_offer, today).await?;
    let mut host_auth = Vec::new();
    for h in &hosts {
        let scope = TokenScope { partner_id: None, host_id: Some(h) };
        host_auth.push(bearer(&issuer.issue_scoped(&format!("bench-host-{h}"), &[Role::Host], scope, ttl)?)?);
    }

    eprintln!("bench: placements: {n} graduates in the registry with programme consent, {clients} in flight…");
    let (people, min_registry_position, setup_registry_commands) =
        register_people(&staff, &target.registry_addr, n, clients, "graduate", &format!("{run}-programme-consent"), {
            let run = run.clone();
            move |i| graduate(&run, i)
        })
        .await?;
    let fx = Arc::new(Fixture {
        channels,
        staff,
        finance,
        host_auth,
        offers,
        people,
        ids: (0..n).map(|_| Ids::default()).collect(),
        run,
        today,
        min_registry_position,
        last_position: AtomicU64::new(0),
        aborted_retries: AtomicU64::new(0),
    });
    eprintln!("bench: placements: waiting for the projection of the registry (position {min_registry_position})…");
    let people_projection_wait_seconds = wait_for_people(&fx, &fx.offers[0].0).await?;

    let step_lat: Arc<Vec<Mutex<Vec<Duration>>>> = Arc::new((0..STEPS).map(|_| Mutex::new(Vec::new())).collect());
    eprintln!(
        "bench: placements: {} lifecycle commands ({n} placements: propose … approve travel), {clients} in flight…",
        n * LIFECYCLE
    );
    let lifecycle_elapsed = run_steps(&fx, 0..LIFECYCLE, clients, &step_lat).await?;

    let mut expected = 0;
    for i in 0..n {
        let due = months_due(start_of(today, i)?, today);
        anyhow::ensure!(due >= 2, "placement {i} would have {due} months due; the monthly round needs two");
        expected += due;
    }
    eprintln!("bench: placements: waiting for the deadline worker to record {expected} months due…");
    let months_due_wait_seconds = wait_for_months(pool, &fx, expected).await?;

    eprintln!(
        "bench: placements: {} monthly-round commands (presence and payments), {clients} in flight…",
        n * (STEPS - LIFECYCLE)
    );
    let monthly_elapsed = run_steps(&fx, LIFECYCLE..STEPS, clients, &step_lat).await?;

    let elapsed = lifecycle_elapsed + monthly_elapsed;
    let mut all = Vec::with_capacity(n * STEPS);
    let mut steps = Vec::new();
    let (mut lifecycle_lat, mut monthly_lat) = (Vec::new(), Vec::new());
    for (s, l) in step_lat.iter().enumerate() {
        let l = std::mem::take(&mut *l.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
        all.extend_from_slice(&l);
        let phase = if s < LIFECYCLE { lifecycle_elapsed } else { monthly_elapsed };
        if s < LIFECYCLE {
            lifecycle_lat.extend_from_slice(&l)
        } else {
            monthly_lat.extend_from_slice(&l)
        }
        steps.push(StepRate { command: STEP_NAMES[s], rate: rate(l.len(), phase, l) });
    }
    let commands = rate(n * STEPS, elapsed, all);
    let lifecycle = rate(n * LIFECYCLE, lifecycle_elapsed, lifecycle_lat);
    let monthly_round = rate(n * (STEPS - LIFECYCLE), monthly_elapsed, monthly_lat);

    // The read model holds the monthly round (a query with its last position
    // waits for it), then the list is paged through once each way.
    let last = fx.last_position.load(Ordering::Relaxed);
    eprintln!("bench: placements: the payment list, whole, once each way…");
    let payment_lines_confirmed = count_lines(&fx, false, last).await?;
    let payment_lines_with_unconfirmed = count_lines(&fx, true, last).await?;
    if payment_lines_confirmed != n || payment_lines_with_unconfirmed != expected - n {
        eprintln!(
            "bench: placements: WARNING: the payment list holds {payment_lines_confirmed} confirmed and \
             {payment_lines_with_unconfirmed} lines in all; expected {n} and {}",
            expected - n
        );
    }

    let readers = target.readers.max(1);
    let queries = target.queries.max(4);
    eprintln!("bench: placements: {queries} ListPaymentsDue queries, {readers} readers…");
    let tokens = Arc::new([deep_tokens(&fx, false, last).await?, deep_tokens(&fx, true, last).await?]);
    let by_query: Arc<Vec<Mutex<Vec<Duration>>>> = Arc::new((0..4).map(|_| Mutex::new(Vec::new())).collect());
    let (query_elapsed, query_lat) = {
        let (fx, tokens, by_query) = (fx.clone(), tokens.clone(), by_query.clone());
        concurrently(queries, readers, move |i| {
            let (fx, tokens, by_query) = (fx.clone(), tokens.clone(), by_query.clone());
            async move {
                // 0: confirmed, first page; 1: confirmed, deeper; 2, 3: the same with unconfirmed.
                let kind = i % 4;
                let unconfirmed = kind >= 2;
                let token = if kind % 2 == 0 {
                    String::new()
                } else {
                    let t = &tokens[usize::from(unconfirmed)];
                    t[(i / 4) % t.len()].clone()
                };
                let t = Instant::now();
                let page = payments_page(&fx, i, unconfirmed, 0, token, last, Duration::from_secs(10)).await?;
                let l = t.elapsed();
                anyhow::ensure!(!page.payments.is_empty(), "an empty page of the payment list");
                by_query[kind].lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push(l);
                Ok(())
            }
        })
        .await?
    };
    let names = [
        "confirmed, first page",
        "confirmed, pages 2–5",
        "with unconfirmed, first page",
        "with unconfirmed, pages 2–5",
    ];
    let mut payments_due_by_query = Vec::new();
    for (k, l) in by_query.iter().enumerate() {
        let l = std::mem::take(&mut *l.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
        payments_due_by_query.push(QueryRate { query: names[k], rate: rate(l.len(), query_elapsed, l) });
    }

    Ok(PlacementsReport {
        placements: n,
        hosts: hosts.len(),
        offers: fx.offers.len(),
        places_per_offer: target.places_per_offer,
        setup_registry_commands,
        people_projection_wait_seconds,
        ratio: commands.per_second / raw_per_second,
        registry_mixed_ratio: target.registry_mixed_ratio,
        commands,
        lifecycle,
        monthly_round,
        steps,
        aborted_retries: fx.aborted_retries.load(Ordering::Relaxed),
        months_due: expected,
        months_due_wait_seconds,
        payment_lines_confirmed,
        payment_lines_with_unconfirmed,
        payments_due: rate(queries, query_elapsed, query_lat),
        payments_due_by_query,
        readers,
        service_peak_rss_mib: peak_rss_mib(target.service_pid),
        worker_peak_rss_mib: peak_rss_mib(target.worker_pid),
    })
}

/// Prints the figures in the style of the others.
pub fn print_table(g: &PlacementsReport) {
    let lat = |x: &Rate| match (x.p50_ms, x.p99_ms) {
        (Some(a), Some(b)) => format!("p50 {a:6.2} ms  p99 {b:6.2} ms"),
        _ => String::new(),
    };
    let mib = |m: Option<f64>| m.map_or_else(|| "n/a".to_owned(), |m| format!("{m:.1} MiB"));
    println!(
        "Placements over gRPC — {} running placements at {} offers of {} places ({} hosts); \
         per placement: propose, accept, sign, start, travel submitted and approved; once months are due: \
         presence confirmed (host) and paid (finance), travel paid",
        g.placements, g.offers, g.places_per_offer, g.hosts
    );
    println!(
        "  setup: registry commands   {:>10.0} /s  ({} ops); registry projection waited {:.2} s",
        g.setup_registry_commands.per_second, g.setup_registry_commands.ops, g.people_projection_wait_seconds
    );
    println!("  placement commands (closed){:>10.0} /s  {}", g.commands.per_second, lat(&g.commands));
    let target = match g.registry_mixed_ratio {
        Some(r) => {
            format!("(target ≥ registry mix ratio {:.1} %: {})", r * 100.0, if g.ratio >= r { "met" } else { "MISSED" })
        }
        None => "(target ≥ registry mix ratio: not measured in this run)".to_owned(),
    };
    println!("    ratio to raw publishes   {:>10.1} %   {target}", g.ratio * 100.0);
    println!("    lifecycle                {:>10.0} /s  {}", g.lifecycle.per_second, lat(&g.lifecycle));
    println!("    monthly round            {:>10.0} /s  {}", g.monthly_round.per_second, lat(&g.monthly_round));
    for s in &g.steps {
        println!("    {:<16}         {:>10.0} /s  {}", s.command, s.rate.per_second, lat(&s.rate));
    }
    if g.aborted_retries > 0 {
        println!("    retries after ABORTED    {:>10}", g.aborted_retries);
    }
    println!(
        "  months due (deadline worker){:>9} months; read model held them {:.2} s after the lifecycle run",
        g.months_due, g.months_due_wait_seconds
    );
    let (confirmed, with_unconfirmed) = (g.placements, g.months_due.saturating_sub(g.placements));
    let verdict = if (g.payment_lines_confirmed, g.payment_lines_with_unconfirmed) == (confirmed, with_unconfirmed) {
        "as expected".to_owned()
    } else {
        format!("EXPECTED {confirmed} and {with_unconfirmed}")
    };
    println!(
        "  payment list lines         {:>10} confirmed unpaid, {} with unconfirmed ({verdict})",
        g.payment_lines_confirmed, g.payment_lines_with_unconfirmed
    );
    println!(
        "  ListPaymentsDue, {} readers {:>9.0} /s  {}   (target p99 ≤ 20 ms)",
        g.readers,
        g.payments_due.per_second,
        lat(&g.payments_due)
    );
    for q in &g.payments_due_by_query {
        println!("    {:<28} {:>8.0} /s  {}", q.query, q.rate.per_second, lat(&q.rate));
    }
    println!(
        "  peak RSS: service {} (target ≤ 100 MiB), worker {}",
        mib(g.service_peak_rss_mib),
        mib(g.worker_peak_rss_mib)
    );
}
