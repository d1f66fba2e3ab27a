//! The grants part of `acasa bench`: a running grants service and its worker
//! (`acasa serve grants`, `acasa project grants`: read models, the projection
//! of the registry's people — sealed fields opened by the registry's
//! `PersonDataService` — and of the referral system's outcomes; separate
//! processes started by `make bench`) driven over gRPC, beside the raw
//! JetStream ceiling measured in the same run.
//!
//! Setup (not measured): `racing + spread` registry people — women and
//! youth entrepreneurs, 19 to 46 years old, in villages of eight districts,
//! half women, half men — with programme-participation consent, registered
//! through the registry's gRPC with `clients` in flight; then the wait until
//! the service's own projection of the registry holds them (the first
//! `Apply` with `min_registry_position`; when `make bench` runs the other
//! parts first, the worker only starts here, `--grants-worker-gate`, and
//! catches up on their people in this wait). One call for the racing
//! approvals (budget: the first 95 % of its applications' amounts and 37
//! cents more, so the last approvals are refused OVER_BUDGET), one call per
//! client for the spread approvals (budget ample), one entrepreneurs'
//! course and one one-day session per client, held today. Every person
//! applies (eligible), is enrolled — client `c` enrols its applications one
//! after another in its own session, so seats never collide — then each
//! session's register (everyone present) and its completion are recorded
//! as one command each; the business plan is submitted and scored by one
//! evaluator (the calls need one).
//!
//! 1. Racing: `clients` in flight approving distinct applications of the one
//!    call (the committee, an admin), amounts between 1,500.00 and 1,899.99
//!    EUR with odd cents. Approvals/s counts every answer (approved or
//!    refused OVER_BUDGET); any other refusal fails the bench. Then the
//!    budget is checked exact to the cent: the call's committed amount (read
//!    with the last position) is the sum of the approved amounts, at most
//!    the budget, its remaining the budget less it, every refused amount
//!    more than what remains; the budget view says the same.
//! 2. Spread: `clients` clients, each approving its own call's applications
//!    one after another. The racing rate's ratio to it (target ≥ 50 %), and
//!    both as ratios of the raw publish ceiling.
//! 3. The funnel: more applications (the same people to further calls, one
//!    for women only, one for ages 18 to 29, and so on, so a share is
//!    ineligible: SEX, AGE) until the service holds `funnel_applications`;
//!    then `GetFunnel` with eight combinations of filters and `group_by`,
//!    `readers` at a time (target p99 ≤ 50 ms).
//!
//! Last, the peak RSS (VmHWM) of the service and the worker (target for
//! the service ≤ 100 MiB). No figure fails the bench; a wrong budget is
//! reported as a failure of the check.

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use acasa_proto::{
    grants::v1::{self as pb, grant_service_client::GrantServiceClient},
    registry::v1 as reg,
    r#type::v1::{Date, Money},
};
use acasa_runtime::{Config, Role, TokenIssuer};
use anyhow::Context as _;
use chrono::{Datelike as _, NaiveDate};
use serde::Serialize;
use tonic::{
    Code, Status,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};
use tonic_types::StatusExt as _;

use super::client::{bearer, connect, register_people, req};
use super::stats::{Rate, concurrently, peak_rss_mib, rate};

/// The per-grant cap and the requested amount, EUR minor units.
const CAP: i64 = 200_000;
const CURRENCY: &str = "EUR";
const DISTRICTS: &[&str] = &["Anenii Noi", "Cahul", "Orhei", "Ungheni", "Soroca", "Hîncești", "Ialoveni", "Leova"];
const VILLAGES: &[&str] = &["s. Mereni", "s. Zîrnești", "s. Pelivan", "s. Sculeni", "s. Vădeni", "s. Lăpușna"];
const GIVEN_F: &[&str] = &["Maria", "Elena", "Natalia", "Tatiana", "Olga", "Ana", "Irina", "Svetlana", "Doina"];
const GIVEN_M: &[&str] = &["Ion", "Vasile", "Mihai", "Andrei", "Sergiu", "Victor", "Petru", "Nicolae", "Dumitru"];
const FAMILY: &[&str] = &["Rusu", "Ceban", "Ciobanu", "Țurcanu", "Lungu", "Munteanu", "Rotari", "Cojocaru", "Moraru"];
/// The funnel queries: a name, the filters (call, district) and the grouping.
const FUNNEL_QUERIES: [(&str, bool, bool, &[pb::FunnelDimension]); 8] = [
    ("programme total", false, false, &[]),
    ("by call", false, false, &[pb::FunnelDimension::Call]),
    ("by district", false, false, &[pb::FunnelDimension::District]),
    ("by sex and age band", false, false, &[pb::FunnelDimension::Sex, pb::FunnelDimension::AgeBand]),
    (
        "by every dimension",
        false,
        false,
        &[
            pb::FunnelDimension::Call,
            pb::FunnelDimension::District,
            pb::FunnelDimension::Sex,
            pb::FunnelDimension::AgeBand,
        ],
    ),
    ("one call, by district", true, false, &[pb::FunnelDimension::District]),
    ("one call, by sex", true, false, &[pb::FunnelDimension::Sex]),
    ("one district, by call and age", false, true, &[pb::FunnelDimension::Call, pb::FunnelDimension::AgeBand]),
];

/// One kind of funnel query's latencies and its last answer's rows.
type QuerySamples = Mutex<(Vec<Duration>, usize)>;

/// Where the grants service runs, for the benchmark.
#[derive(Clone, Debug)]
pub struct Target {
    /// The grants service's gRPC address (`host:port`).
    pub addr: String,
    /// The registry service's gRPC address, for the people and their consent.
    pub registry_addr: String,
    /// Approvals racing on one call.
    pub racing: usize,
    /// Approvals spread over one call per client.
    pub spread: usize,
    /// Applications the service holds for the funnel queries.
    pub funnel_applications: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Concurrent readers of the funnel.
    pub readers: usize,
    /// Funnel queries to measure.
    pub queries: usize,
    /// The service's pid, for its peak RSS.
    pub service_pid: Option<u32>,
    /// The worker's pid.
    pub worker_pid: Option<u32>,
    /// A file to create when this part starts: `make bench` starts the
    /// worker only then.
    pub worker_gate: Option<PathBuf>,
}

/// One kind of funnel query.
#[derive(Debug, Serialize)]
pub struct FunnelQueryRate {
    /// Its filters and grouping.
    pub query: &'static str,
    /// Rows it answered (the last time).
    pub rows: usize,
    /// Its rate and latencies.
    pub rate: Rate,
}

/// The budget check after the racing approvals.
#[derive(Debug, Serialize)]
pub struct BudgetCheck {
    /// The call's budget, minor units.
    pub budget_minor: i64,
    /// Approvals answered OK.
    pub approved: usize,
    /// Approvals refused OVER_BUDGET.
    pub refused_over_budget: usize,
    /// The sum of the approved amounts.
    pub approved_sum_minor: i64,
    /// The call's committed amount as the service reports it.
    pub committed_minor: i64,
    /// Its remaining amount.
    pub remaining_minor: i64,
    /// The budget view's committed and remaining for the call.
    pub budget_view_committed_minor: i64,
    /// As above.
    pub budget_view_remaining_minor: i64,
    /// Every refused amount is more than what remains.
    pub refusals_justified: bool,
    /// All of it holds.
    pub exact: bool,
}

/// The grants figures.
#[derive(Debug, Serialize)]
pub struct GrantsReport {
    /// Registry commands of the setup (registrations and consents), for scale.
    pub setup_registry_commands: Rate,
    /// Seconds until the service's projection of the registry held the setup's people.
    pub people_projection_wait_seconds: f64,
    /// Grants commands of the setup (apply, enrol, registers, completions, plans, scores).
    pub setup_grants_commands: Rate,
    /// Seconds the whole setup took (people to scored applications).
    pub setup_seconds: f64,
    /// Clients in flight.
    pub clients: usize,
    /// Approvals racing on one call (approved or refused OVER_BUDGET), closed loop.
    pub racing_approvals: Rate,
    /// The budget after it.
    pub racing_budget: BudgetCheck,
    /// Retries after ABORTED in the racing run.
    pub racing_aborted_retries: u64,
    /// Approvals spread over one call per client.
    pub spread_approvals: Rate,
    /// Calls of the spread run.
    pub spread_calls: usize,
    /// Retries after ABORTED in the spread run.
    pub spread_aborted_retries: u64,
    /// racing / spread (target ≥ 0.5).
    pub racing_to_spread: f64,
    /// racing / raw JetStream publishes of this run.
    pub racing_to_raw: f64,
    /// spread / raw JetStream publishes of this run.
    pub spread_to_raw: f64,
    /// Applications added for the funnel (beyond the approvals').
    pub funnel_setup_applies: Rate,
    /// Applications the funnel counts (programme total).
    pub funnel_applied: usize,
    /// Of them eligible.
    pub funnel_eligible: usize,
    /// Of them trained.
    pub funnel_trained: usize,
    /// Of them approved.
    pub funnel_approved: usize,
    /// Every funnel query measured.
    pub funnel: Rate,
    /// By kind of query.
    pub funnel_by_query: Vec<FunnelQueryRate>,
    /// Readers at a time.
    pub readers: usize,
    /// Peak RSS of the service, MiB.
    pub service_peak_rss_mib: Option<f64>,
    /// Peak RSS of the worker, MiB.
    pub worker_peak_rss_mib: Option<f64>,
}

fn eur(amount_minor: i64) -> Option<Money> {
    Some(Money { amount_minor, currency: CURRENCY.into() })
}

fn date(d: NaiveDate) -> Option<Date> {
    Some(Date { year: d.year(), month: d.month() as i32, day: d.day() as i32 })
}

fn minor(m: Option<&Money>) -> i64 {
    m.map_or(0, |m| m.amount_minor)
}

/// The amount approved for application `j` of a call: 1,500.00 to 1,899.99 EUR, odd cents.
fn amount_of(j: usize) -> i64 {
    150_000 + ((j as i64 * 7_919) % 40_000)
}

/// The rule a FAILED_PRECONDITION names.
fn rule_of(s: &Status) -> String {
    s.get_details_precondition_failure()
        .and_then(|p| p.violations.first().map(|v| v.r#type.clone()))
        .unwrap_or_default()
}

/// A closure sending `$msg` (cloned each time) with `$method` on client `$i`.
macro_rules! rpc {
    ($fx:expr, $i:expr, $method:ident, $auth:expr, $msg:expr, $timeout:expr) => {
        || {
            let mut c = $fx.grpc($i);
            let r = req($auth, $msg.clone(), $timeout);
            async move { c.$method(r).await }
        }
    };
}

/// The clients, tokens and fixtures every command needs.
struct Fixture {
    channels: Vec<Channel>,
    staff: MetadataValue<Ascii>,
    committee: MetadataValue<Ascii>,
    evaluator: MetadataValue<Ascii>,
    run: String,
    aborted: AtomicU64,
    last_position: AtomicU64,
}

impl Fixture {
    fn grpc(&self, i: usize) -> GrantServiceClient<Channel> {
        GrantServiceClient::new(self.channels[i % self.channels.len()].clone())
    }

    fn seen(&self, position: u64) {
        self.last_position.fetch_max(position, Ordering::Relaxed);
    }

    /// Runs `op` until it answers something but ABORTED or DEADLINE_EXCEEDED
    /// (the same request id each time; at most 20 times).
    async fn retrying<T, F, Fut>(&self, what: &str, op: F) -> anyhow::Result<Result<T, Status>>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Err(s) if matches!(s.code(), Code::Aborted | Code::DeadlineExceeded) && attempt < 20 => {
                    attempt += 1;
                    if s.code() == Code::Aborted {
                        self.aborted.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(s) if s.code() == Code::FailedPrecondition => return Ok(Err(s)),
                Err(s) => return Err(anyhow::Error::new(s).context(what.to_owned())),
                Ok(v) => return Ok(Ok(v)),
            }
        }
    }

    /// As [`Fixture::retrying`], every refusal an error.
    async fn must<T, F, Fut>(&self, what: &str, op: F) -> anyhow::Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        self.retrying(what, op).await?.map_err(|s| anyhow::Error::new(s).context(what.to_owned()))
    }
}

/// A person of the bench: female on even `i`.
fn person_details(i: usize, today: NaiveDate) -> reg::PersonDetails {
    let female = i.is_multiple_of(2);
    let given = if female { GIVEN_F } else { GIVEN_M };
    let k = i / (given.len() * FAMILY.len());
    let age = 19 + (k % 27) as i32;
    let family = FAMILY[(i / given.len()) % FAMILY.len()];
    reg::PersonDetails {
        given_name: given[i % given.len()].into(),
        family_name: if female { format!("{family}a") } else { family.into() },
        birth_date: Some(Date {
            year: today.year() - age - 1,
            month: 1 + ((k / 27) % 12) as i32,
            day: 1 + ((k / 324) % 28) as i32,
        }),
        sex: if female { reg::Sex::Female } else { reg::Sex::Male } as i32,
        home_district: DISTRICTS[i % DISTRICTS.len()].into(),
        home_locality: VILLAGES[(i / DISTRICTS.len()) % VILLAGES.len()].into(),
        languages: vec!["ro".into(), "ru".into()],
        profession: "tailor".into(),
        ..Default::default()
    }
}

/// Entrepreneur `i`'s registration: women on even `i`, men on odd.
fn entrepreneur(run: &str, i: usize, today: NaiveDate) -> reg::RegisterPersonRequest {
    let category =
        if i.is_multiple_of(2) { reg::Category::WomanEntrepreneur } else { reg::Category::YouthEntrepreneur };
    reg::RegisterPersonRequest {
        request_id: format!("{run}-entrepreneur-{i}"),
        details: Some(person_details(i, today)),
        contacts: Some(reg::Contacts {
            email: format!("entrepreneur.{i}@example.md"),
            phone: format!("+3736{:07}", i % 10_000_000),
        }),
        country_of_residence: "MD".into(),
        categories: vec![category as i32],
        interests: vec![reg::Interest::EntrepreneurshipSupport as i32],
    }
}

/// A call's terms: youth and women entrepreneurs, one evaluator.
fn terms(title: String, budget: i64, places: usize, today: NaiveDate, rules: pb::EligibilityRules) -> pb::CallTerms {
    pb::CallTerms {
        title,
        budget: eur(budget),
        cap: eur(CAP.min(budget)),
        opens_on: date(today),
        closes_on: date(today + chrono::Days::new(60)),
        districts: Vec::new(),
        training_places: i32::try_from(places.clamp(1, 10_000)).unwrap_or(10_000),
        eligibility: Some(rules),
        evaluation: Some(pb::EvaluationRules {
            criteria: vec![pb::Criterion {
                key: "viability".into(),
                title: "Is the business viable?".into(),
                weight: 1,
            }],
            scale_max: 10,
            min_evaluators: 1,
            pass_score: 0,
        }),
    }
}

fn entrepreneurs(min_age: i32, max_age: i32, sexes: Vec<i32>) -> pb::EligibilityRules {
    pb::EligibilityRules {
        age: Some(pb::AgeRange { min_age, max_age }),
        sexes,
        rural_only: false,
        categories: vec![reg::Category::WomanEntrepreneur as i32, reg::Category::YouthEntrepreneur as i32],
    }
}

async fn open_call(fx: &Fixture, key: &str, terms: pb::CallTerms) -> anyhow::Result<String> {
    let msg = pb::OpenCallRequest { request_id: format!("{}-call-{key}", fx.run), terms: Some(terms) };
    let r = fx
        .must("opening a bench call", rpc!(fx, 0, open_call, &fx.committee, msg, Duration::from_secs(30)))
        .await?
        .into_inner();
    fx.seen(r.position);
    Ok(r.call_id)
}

/// Applies person `person` to `call`; the application id and whether it is eligible.
async fn apply(
    fx: &Fixture,
    i: usize,
    key: &str,
    call: &str,
    person: &str,
    min_registry_position: u64,
    timeout: Duration,
) -> anyhow::Result<(String, bool)> {
    let msg = pb::ApplyRequest {
        request_id: format!("{}-apply-{key}", fx.run),
        call_id: call.to_owned(),
        person_id: person.to_owned(),
        min_registry_position,
    };
    let r = fx.must("applying", rpc!(fx, i, apply, &fx.staff, msg, timeout)).await?.into_inner();
    fx.seen(r.position);
    Ok((r.application_id, r.eligible))
}

/// Runs `op(c, k)` for the items `k` of each client `c` (`items[c]`), the
/// clients at once, each one item after another; the wall time and latencies.
async fn per_client<F, Fut>(items: Vec<Vec<usize>>, op: F) -> anyhow::Result<(Duration, Vec<Duration>)>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (c, mine) in items.into_iter().enumerate() {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(mine.len());
            for k in mine {
                let t = Instant::now();
                op(c, k).await?;
                lat.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    Ok((start.elapsed(), lat))
}

/// An approval's answer: the amount approved, or refused OVER_BUDGET (None).
async fn approve(fx: &Fixture, i: usize, application: &str, amount: i64) -> anyhow::Result<Option<i64>> {
    let msg = pb::ApproveGrantRequest {
        request_id: format!("{}-approve-{application}", fx.run),
        application_id: application.to_owned(),
        amount: eur(amount),
        minutes_reference: format!("PV-BENCH-{}", &fx.run[..8]),
        note: String::new(),
    };
    match fx
        .retrying("approving a grant", rpc!(fx, i, approve_grant, &fx.committee, msg, Duration::from_secs(30)))
        .await?
    {
        Ok(r) => {
            fx.seen(r.into_inner().position);
            Ok(Some(amount))
        }
        Err(s) if rule_of(&s) == "OVER_BUDGET" => Ok(None),
        Err(s) => Err(anyhow::Error::new(s).context(format!("approving bench application {application}"))),
    }
}

/// Runs the grants benchmark; `raw_per_second` is the raw JetStream ceiling of this run.
pub async fn run(config: &Config, target: &Target, raw_per_second: f64) -> anyhow::Result<GrantsReport> {
    let clients = target.clients.max(1);
    let racing = target.racing.clamp(clients, 10_000);
    let spread = target.spread.max(clients);
    let n = racing + spread;
    anyhow::ensure!(n.div_ceil(clients) <= 999, "too many approvals for {clients} sessions of at most 999 seats");
    let run = uuid::Uuid::now_v7().simple().to_string();
    let issuer = TokenIssuer::from_config(config)?;
    let ttl = Duration::from_secs(6 * 3600);
    let today = chrono::Utc::now().date_naive();
    let setup_started = Instant::now();

    if let Some(gate) = &target.worker_gate {
        eprintln!("bench: grants: starting the worker ({})…", gate.display());
        std::fs::write(gate, b"go\n").with_context(|| format!("creating {}", gate.display()))?;
    }
    let fx = Arc::new(Fixture {
        channels: connect(&target.addr, 4, "grants service").await?,
        staff: bearer(&issuer.issue("bench-grants-caseworker", &[Role::Caseworker], None, ttl)?)?,
        committee: bearer(&issuer.issue("bench-grants-committee", &[Role::Admin], None, ttl)?)?,
        evaluator: bearer(&issuer.issue("bench-grants-evaluator", &[Role::Caseworker], None, ttl)?)?,
        run,
        aborted: AtomicU64::new(0),
        last_position: AtomicU64::new(0),
    });

    eprintln!("bench: grants: {n} entrepreneurs in the registry with programme consent, {clients} in flight…");
    let (run, consent_ids) = (fx.run.clone(), format!("{}-entrepreneur-consent", fx.run));
    let (people, min_registry_position, setup_registry_commands) =
        register_people(&fx.staff, &target.registry_addr, n, clients, "entrepreneur", &consent_ids, move |i| {
            entrepreneur(&run, i, today)
        })
        .await?;
    let people = Arc::new(people);

    // The calls: one raced on, one per client.
    let amounts: Vec<i64> = (0..racing).map(amount_of).collect();
    let fits = racing - racing / 20;
    let racing_budget = amounts[..fits].iter().sum::<i64>() + 37;
    let racing_call = open_call(
        &fx,
        "racing",
        terms(format!("Bench racing {}", &fx.run[..8]), racing_budget, racing, today, entrepreneurs(18, 50, vec![])),
    )
    .await?;
    let per_call = spread.div_ceil(clients);
    let mut spread_calls = Vec::new();
    for c in 0..clients {
        let t = terms(
            format!("Bench spread {} {c}", &fx.run[..8]),
            (per_call as i64 + 1) * CAP,
            per_call + 1,
            today,
            entrepreneurs(18, 50, vec![]),
        );
        spread_calls.push(open_call(&fx, &format!("spread-{c}"), t).await?);
    }
    // Application j: person j; the racing call for j < racing, else spread call (j − racing) mod clients.
    let call_of = {
        let (racing_call, spread_calls) = (racing_call.clone(), spread_calls.clone());
        Arc::new(
            move |j: usize| if j < racing { racing_call.clone() } else { spread_calls[(j - racing) % clients].clone() },
        )
    };

    // Training: one course, one session per client, held today.
    let course_msg = pb::CreateCourseRequest {
        request_id: format!("{}-course", fx.run),
        audience: pb::Audience::Entrepreneurs as i32,
        details: Some(pb::CourseDetails {
            title: format!("Start your business {}", &fx.run[..8]),
            topics: vec!["business planning".into(), "accounting".into()],
            language: "ro".into(),
            hours: 8,
            completion_threshold_percent: 80,
        }),
    };
    let course = fx
        .must("creating the bench course", rpc!(fx, 0, create_course, &fx.staff, course_msg, Duration::from_secs(30)))
        .await?
        .into_inner();
    fx.seen(course.position);
    let seats = n.div_ceil(clients);
    let mut sessions = Vec::new();
    for c in 0..clients {
        let msg = pb::ScheduleSessionRequest {
            request_id: format!("{}-session-{c}", fx.run),
            course_id: course.course_id.clone(),
            code: format!("B{}-{c}", fx.run[..8].to_uppercase()),
            capacity: i32::try_from(seats)?,
            completion_threshold_percent: 0,
            details: Some(pb::SessionDetails {
                days: vec![date(today).context("today")?],
                venue: "Casa de cultură".into(),
                district: DISTRICTS[c % DISTRICTS.len()].into(),
                trainer: "Elena Rusu, ODA".into(),
            }),
        };
        let r = fx
            .must("scheduling a bench session", rpc!(fx, c, schedule_session, &fx.staff, msg, Duration::from_secs(30)))
            .await?
            .into_inner();
        fx.seen(r.position);
        sessions.push(r.session_id);
    }
    let sessions = Arc::new(sessions);

    eprintln!("bench: grants: waiting for the projection of the registry (position {min_registry_position})…");
    let applications = Arc::new(Mutex::new(vec![String::new(); n]));
    let waited = Instant::now();
    // DEADLINE_EXCEEDED (the projection behind) is retried, 20 × 30 s at most.
    let (first, eligible) = apply(&fx, 0, "0", &call_of(0), &people[0], min_registry_position, Duration::from_secs(30))
        .await
        .context("waiting for the grants' projection of the registry")?;
    anyhow::ensure!(eligible, "bench entrepreneur 0 is not eligible");
    applications.lock().map_err(|_| anyhow::anyhow!("poisoned"))?[0] = first;
    let people_projection_wait_seconds = waited.elapsed().as_secs_f64();

    let grants_setup = Instant::now();
    eprintln!("bench: grants: {n} applications, enrolled ({clients} sessions), trained, planned, scored…");
    {
        let (fx, people, applications, call_of) = (fx.clone(), people.clone(), applications.clone(), call_of.clone());
        concurrently(n - 1, clients, move |k| {
            let (fx, people, applications, call_of) =
                (fx.clone(), people.clone(), applications.clone(), call_of.clone());
            let j = k + 1;
            async move {
                let (id, eligible) =
                    apply(&fx, j, &j.to_string(), &call_of(j), &people[j], 0, Duration::from_secs(30)).await?;
                anyhow::ensure!(eligible, "bench entrepreneur {j} is not eligible");
                applications.lock().map_err(|_| anyhow::anyhow!("poisoned"))?[j] = id;
                Ok(())
            }
        })
        .await?;
    }
    eprintln!("bench: grants:   applied ({:.1} s)", grants_setup.elapsed().as_secs_f64());
    let applications: Arc<Vec<String>> =
        Arc::new(applications.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone());
    // Client c enrols applications c, c + clients, … in session c, one after another.
    let by_session: Vec<Vec<usize>> = (0..clients).map(|c| (c..n).step_by(clients).collect()).collect();
    {
        let (fx, applications, sessions) = (fx.clone(), applications.clone(), sessions.clone());
        per_client(by_session.clone(), move |c, j| {
            let (fx, applications, sessions) = (fx.clone(), applications.clone(), sessions.clone());
            async move {
                let msg = pb::EnrolInSessionRequest {
                    request_id: format!("{}-enrol-{j}", fx.run),
                    session_id: sessions[c].clone(),
                    trainee: Some(pb::enrol_in_session_request::Trainee::ApplicationId(applications[j].clone())),
                };
                let r = fx
                    .must("enrolling", rpc!(fx, c, enrol_in_session, &fx.staff, msg, Duration::from_secs(30)))
                    .await?
                    .into_inner();
                fx.seen(r.position);
                Ok(())
            }
        })
        .await?;
    }
    eprintln!("bench: grants:   enrolled ({:.1} s)", grants_setup.elapsed().as_secs_f64());
    {
        let (fx, applications, sessions, by_session) =
            (fx.clone(), applications.clone(), sessions.clone(), Arc::new(by_session));
        concurrently(clients, clients, move |c| {
            let (fx, applications, sessions, by_session) =
                (fx.clone(), applications.clone(), sessions.clone(), by_session.clone());
            async move {
                let register = pb::RecordAttendanceRequest {
                    request_id: format!("{}-register-{c}", fx.run),
                    session_id: sessions[c].clone(),
                    day: date(today),
                    present_trainee_ids: by_session[c].iter().map(|j| applications[*j].clone()).collect(),
                    absent_trainee_ids: Vec::new(),
                };
                let timeout = Duration::from_secs(60);
                let r = fx
                    .must("recording a register", rpc!(fx, c, record_attendance, &fx.staff, register, timeout))
                    .await?
                    .into_inner();
                fx.seen(r.position);
                let msg = pb::CompleteSessionRequest {
                    request_id: format!("{}-complete-{c}", fx.run),
                    session_id: sessions[c].clone(),
                };
                let r = fx
                    .must("completing a session", rpc!(fx, c, complete_session, &fx.staff, msg, timeout))
                    .await?
                    .into_inner();
                anyhow::ensure!(
                    r.completed as usize == by_session[c].len(),
                    "session {c}: {} of {} completed",
                    r.completed,
                    by_session[c].len()
                );
                fx.seen(r.position);
                Ok(())
            }
        })
        .await?;
    }
    eprintln!("bench: grants:   registers and completions ({:.1} s)", grants_setup.elapsed().as_secs_f64());
    {
        let (fx, applications) = (fx.clone(), applications.clone());
        concurrently(n, clients, move |j| {
            let (fx, applications) = (fx.clone(), applications.clone());
            async move {
                let timeout = Duration::from_secs(30);
                let plan = pb::SubmitBusinessPlanRequest {
                    request_id: format!("{}-plan-{j}", fx.run),
                    application_id: applications[j].clone(),
                    plan: Some(pb::BusinessPlan {
                        sector: "C".into(),
                        summary: "A tailoring workshop: school uniforms and alterations.".into(),
                        requested_amount: eur(CAP),
                        items: vec![pb::PlanItem {
                            description: "Industrial sewing machine".into(),
                            quantity: 2,
                            unit_price: eur(CAP / 2),
                        }],
                    }),
                };
                let r = fx
                    .must("submitting a plan", rpc!(fx, j, submit_business_plan, &fx.staff, plan, timeout))
                    .await?
                    .into_inner();
                fx.seen(r.position);
                let score = pb::ScoreApplicationRequest {
                    request_id: format!("{}-score-{j}", fx.run),
                    application_id: applications[j].clone(),
                    scores: vec![pb::CriterionScore { key: "viability".into(), score: 8 }],
                    comment: String::new(),
                };
                let r = fx
                    .must("scoring", rpc!(fx, j, score_application, &fx.evaluator, score, timeout))
                    .await?
                    .into_inner();
                fx.seen(r.position);
                Ok(())
            }
        })
        .await?;
    }
    // apply, enrol, plan, score per application; a register and a completion per session.
    let setup_grants_commands = rate(4 * n + 2 * clients, grants_setup.elapsed(), Vec::new());
    let setup_seconds = setup_started.elapsed().as_secs_f64();
    fx.aborted.store(0, Ordering::Relaxed);

    eprintln!("bench: grants: {racing} approvals racing on one call, {clients} in flight…");
    let outcomes = Arc::new(Mutex::new(vec![None; racing]));
    let (racing_elapsed, racing_lat) = {
        let (fx, applications, outcomes, amounts) =
            (fx.clone(), applications.clone(), outcomes.clone(), amounts.clone());
        concurrently(racing, clients, move |j| {
            let (fx, applications, outcomes, amount) = (fx.clone(), applications.clone(), outcomes.clone(), amounts[j]);
            async move {
                let answer = approve(&fx, j, &applications[j], amount).await?;
                outcomes.lock().map_err(|_| anyhow::anyhow!("poisoned"))?[j] = Some(answer);
                Ok(())
            }
        })
        .await?
    };
    let racing_approvals = rate(racing, racing_elapsed, racing_lat);
    let racing_aborted_retries = fx.aborted.swap(0, Ordering::Relaxed);

    // The budget, exact to the cent.
    let last = fx.last_position.load(Ordering::Relaxed);
    let outcomes = std::mem::take(&mut *outcomes.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    let approved: Vec<i64> = outcomes.iter().filter_map(|o| o.flatten()).collect();
    let refused: Vec<i64> =
        outcomes.iter().zip(&amounts).filter(|(o, _)| matches!(o, Some(None))).map(|(_, a)| *a).collect();
    let call = fx
        .grpc(0)
        .get_call(req(
            &fx.staff,
            pb::GetCallRequest { call_id: racing_call.clone(), min_position: last },
            Duration::from_secs(30),
        ))
        .await
        .context("reading the racing call")?
        .into_inner()
        .call
        .context("no call in GetCall's answer")?;
    let view = fx
        .grpc(0)
        .get_budget(req(
            &fx.staff,
            pb::GetBudgetRequest { call_id: racing_call.clone(), min_position: last },
            Duration::from_secs(30),
        ))
        .await
        .context("reading the racing call's budget")?
        .into_inner();
    let line = view.calls.iter().find(|c| c.call_id == racing_call);
    let (committed, remaining) = (minor(call.committed.as_ref()), minor(call.remaining.as_ref()));
    let approved_sum: i64 = approved.iter().sum();
    let refusals_justified = refused.iter().all(|a| *a > remaining);
    let budget_view_committed_minor = line.map_or(-1, |l| minor(l.committed.as_ref()));
    let budget_view_remaining_minor = line.map_or(-1, |l| minor(l.remaining.as_ref()));
    let exact = committed == approved_sum
        && committed <= racing_budget
        && minor(call.budget.as_ref()) == racing_budget
        && remaining == racing_budget - committed
        && budget_view_committed_minor == committed
        && budget_view_remaining_minor == remaining
        && refusals_justified
        && !refused.is_empty()
        && approved.len() + refused.len() == racing;
    let racing_budget = BudgetCheck {
        budget_minor: racing_budget,
        approved: approved.len(),
        refused_over_budget: refused.len(),
        approved_sum_minor: approved_sum,
        committed_minor: committed,
        remaining_minor: remaining,
        budget_view_committed_minor,
        budget_view_remaining_minor,
        refusals_justified,
        exact,
    };
    if !exact {
        eprintln!("bench: grants: WARNING: the racing call's budget is not exact: {racing_budget:?}");
    }

    eprintln!("bench: grants: {spread} approvals spread over {clients} calls, one client each…");
    let by_call: Vec<Vec<usize>> = (0..clients).map(|c| (racing + c..n).step_by(clients).collect()).collect();
    let (spread_elapsed, spread_lat) = {
        let (fx, applications) = (fx.clone(), applications.clone());
        per_client(by_call, move |c, j| {
            let (fx, applications) = (fx.clone(), applications.clone());
            async move {
                let answer = approve(&fx, c, &applications[j], amount_of(j)).await?;
                anyhow::ensure!(answer.is_some(), "spread approval {j} refused OVER_BUDGET");
                Ok(())
            }
        })
        .await?
    };
    let spread_approvals = rate(spread_lat.len(), spread_elapsed, spread_lat);
    let spread_aborted_retries = fx.aborted.swap(0, Ordering::Relaxed);

    // The funnel: more applications of the same people to further calls.
    let extra = target.funnel_applications.saturating_sub(n);
    let funnel_calls_n = extra.div_ceil(n);
    let mut funnel_calls = Vec::new();
    for f in 0..funnel_calls_n {
        let rules = match f % 3 {
            0 => entrepreneurs(18, 50, vec![reg::Sex::Female as i32]),
            1 => entrepreneurs(18, 29, vec![]),
            _ => entrepreneurs(30, 45, vec![reg::Sex::Male as i32]),
        };
        let t = terms(format!("Bench funnel {} {f}", &fx.run[..8]), 100 * CAP, 10_000, today, rules);
        funnel_calls.push(open_call(&fx, &format!("funnel-{f}"), t).await?);
    }
    eprintln!("bench: grants: {extra} more applications to {funnel_calls_n} calls for the funnel…");
    let funnel_setup_applies = {
        let (fx, people, funnel_calls) = (fx.clone(), people.clone(), Arc::new(funnel_calls.clone()));
        let started = Instant::now();
        concurrently(extra, clients, move |k| {
            let (fx, people, funnel_calls) = (fx.clone(), people.clone(), funnel_calls.clone());
            async move {
                let (f, p) = (k / n, k % n);
                apply(&fx, k, &format!("f{f}-{p}"), &funnel_calls[f], &people[p], 0, Duration::from_secs(30)).await?;
                Ok(())
            }
        })
        .await?;
        rate(extra, started.elapsed(), Vec::new())
    };

    let last = fx.last_position.load(Ordering::Relaxed);
    let total = fx
        .grpc(0)
        .get_funnel(req(
            &fx.staff,
            pb::GetFunnelRequest { min_position: last, ..Default::default() },
            Duration::from_secs(60),
        ))
        .await
        .context("the programme's funnel")?
        .into_inner();
    let counts = total.rows.first().and_then(|r| r.counts).unwrap_or_default();
    let readers = target.readers.max(1);
    let queries = target.queries.max(FUNNEL_QUERIES.len());
    eprintln!("bench: grants: {queries} GetFunnel queries over {} applications, {readers} readers…", counts.applied);
    let by_query: Arc<Vec<QuerySamples>> =
        Arc::new((0..FUNNEL_QUERIES.len()).map(|_| Mutex::new((Vec::new(), 0))).collect());
    // The filtered queries take the racing call and the funnel's (thousands of applications each).
    let all_calls: Arc<Vec<String>> =
        Arc::new(std::iter::once(racing_call.clone()).chain(funnel_calls.iter().cloned()).collect());
    let (query_elapsed, query_lat) = {
        let (fx, by_query, all_calls) = (fx.clone(), by_query.clone(), all_calls.clone());
        concurrently(queries, readers, move |i| {
            let (fx, by_query, all_calls) = (fx.clone(), by_query.clone(), all_calls.clone());
            async move {
                let kind = i % FUNNEL_QUERIES.len();
                let (_, by_call, by_district, group) = FUNNEL_QUERIES[kind];
                let k = i / FUNNEL_QUERIES.len();
                let msg = pb::GetFunnelRequest {
                    call_id: if by_call { all_calls[k % all_calls.len()].clone() } else { String::new() },
                    district: if by_district { DISTRICTS[k % DISTRICTS.len()].into() } else { String::new() },
                    sex: 0,
                    age_band: 0,
                    group_by: group.iter().map(|d| *d as i32).collect(),
                    min_position: last,
                };
                let t = Instant::now();
                let r = fx.grpc(i).get_funnel(req(&fx.staff, msg, Duration::from_secs(10))).await?.into_inner();
                let l = t.elapsed();
                let mut slot = by_query[kind].lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                slot.0.push(l);
                slot.1 = r.rows.len();
                Ok(())
            }
        })
        .await?
    };
    let mut funnel_by_query = Vec::new();
    for (k, slot) in by_query.iter().enumerate() {
        let (l, rows) = std::mem::take(&mut *slot.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
        funnel_by_query.push(FunnelQueryRate {
            query: FUNNEL_QUERIES[k].0,
            rows,
            rate: rate(l.len(), query_elapsed, l),
        });
    }

    let count = |c: i32| usize::try_from(c).unwrap_or(0);
    Ok(GrantsReport {
        setup_registry_commands,
        people_projection_wait_seconds,
        setup_grants_commands,
        setup_seconds,
        clients,
        racing_to_spread: racing_approvals.per_second / spread_approvals.per_second.max(1e-9),
        racing_to_raw: racing_approvals.per_second / raw_per_second,
        spread_to_raw: spread_approvals.per_second / raw_per_second,
        racing_approvals,
        racing_budget,
        racing_aborted_retries,
        spread_approvals,
        spread_calls: clients,
        spread_aborted_retries,
        funnel_setup_applies,
        funnel_applied: count(counts.applied),
        funnel_eligible: count(counts.eligible),
        funnel_trained: count(counts.trained),
        funnel_approved: count(counts.approved),
        funnel: rate(queries, query_elapsed, query_lat),
        funnel_by_query,
        readers,
        service_peak_rss_mib: peak_rss_mib(target.service_pid),
        worker_peak_rss_mib: peak_rss_mib(target.worker_pid),
    })
}

/// Prints the figures in the style of the others.
pub fn print_table(g: &GrantsReport) {
    let lat = |x: &Rate| match (x.p50_ms, x.p99_ms) {
        (Some(a), Some(b)) => format!("p50 {a:6.2} ms  p99 {b:6.2} ms"),
        _ => String::new(),
    };
    let mib = |m: Option<f64>| m.map_or_else(|| "n/a".to_owned(), |m| format!("{m:.1} MiB"));
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let b = &g.racing_budget;
    println!(
        "Grants over gRPC — {} clients; each approval: an application applied, enrolled, trained, planned and \
         scored beforehand (setup)",
        g.clients
    );
    println!(
        "  setup: registry commands   {:>10.0} /s  ({} ops); registry projection waited {:.2} s",
        g.setup_registry_commands.per_second, g.setup_registry_commands.ops, g.people_projection_wait_seconds
    );
    println!(
        "  setup: grants commands     {:>10.0} /s  ({} ops); whole setup {:.1} s",
        g.setup_grants_commands.per_second, g.setup_grants_commands.ops, g.setup_seconds
    );
    println!(
        "  approvals racing, one call {:>10.0} /s  {}   ({} answers)",
        g.racing_approvals.per_second,
        lat(&g.racing_approvals),
        g.racing_approvals.ops
    );
    println!(
        "    budget {:.2} EUR: {} approved ({:.2}), {} refused OVER_BUDGET; committed {:.2}, remaining {:.2}: {}",
        b.budget_minor as f64 / 100.0,
        b.approved,
        b.approved_sum_minor as f64 / 100.0,
        b.refused_over_budget,
        b.committed_minor as f64 / 100.0,
        b.remaining_minor as f64 / 100.0,
        if b.exact { "exact to the cent" } else { "NOT EXACT" }
    );
    if g.racing_aborted_retries > 0 {
        println!("    retries after ABORTED    {:>10}", g.racing_aborted_retries);
    }
    println!(
        "  approvals spread, {} calls {:>9.0} /s  {}",
        g.spread_calls,
        g.spread_approvals.per_second,
        lat(&g.spread_approvals)
    );
    if g.spread_aborted_retries > 0 {
        println!("    retries after ABORTED    {:>10}", g.spread_aborted_retries);
    }
    println!(
        "    racing / spread          {:>10.1} %   (target ≥ 50 %: {})",
        g.racing_to_spread * 100.0,
        verdict(g.racing_to_spread >= 0.5)
    );
    println!(
        "    to raw publishes         {:>10.1} % racing, {:.1} % spread",
        g.racing_to_raw * 100.0,
        g.spread_to_raw * 100.0
    );
    println!(
        "  funnel setup applies       {:>10.0} /s  ({} ops)",
        g.funnel_setup_applies.per_second, g.funnel_setup_applies.ops
    );
    println!(
        "  funnel: {} applied, {} eligible, {} trained, {} approved",
        g.funnel_applied, g.funnel_eligible, g.funnel_trained, g.funnel_approved
    );
    let p99 = g.funnel.p99_ms.unwrap_or(f64::INFINITY);
    println!(
        "  GetFunnel, {} readers      {:>10.0} /s  {}   (target p99 ≤ 50 ms: {})",
        g.readers,
        g.funnel.per_second,
        lat(&g.funnel),
        verdict(p99 <= 50.0)
    );
    for q in &g.funnel_by_query {
        println!("    {:<30} {:>6.0} /s  {}  ({} rows)", q.query, q.rate.per_second, lat(&q.rate), q.rows);
    }
    let rss_ok = g.service_peak_rss_mib.is_some_and(|m| m <= 100.0);
    println!(
        "  peak RSS: service {} (target ≤ 100 MiB: {}), worker {}",
        mib(g.service_peak_rss_mib),
        if g.service_peak_rss_mib.is_some() { verdict(rss_ok) } else { "not measured" },
        mib(g.worker_peak_rss_mib)
    );
}
