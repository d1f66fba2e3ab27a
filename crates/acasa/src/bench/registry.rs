//! The registry part of `acasa bench`: a running registry service and its
//! projection worker (separate processes, started by `make bench`) driven over
//! gRPC, beside the raw JetStream ceiling measured in the same run.
//!
//! 1. Registrations alone (each one atomic batch: its request record, the
//!    IDNP's claim and the commit).
//! 2. A mix of registrations and updates (1 in 5 registers; the rest update
//!    contacts, consent, interests or categories of known people), closed loop.
//! 3. Once the projection has worked off 2's backlog, the same mix open loop
//!    at half the rate of 2, latency measured from each request's scheduled
//!    start (no coordinated omission).
//! 4. Registrations until the registry holds `--registry-people`; then the
//!    wait for the projection to catch up.
//! 5. GetPerson with a minimum position; searches and candidate lists over
//!    the whole population; 4 readers at a time.
//! 6. Peak RSS (VmHWM) of the service and worker processes.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use acasa_domain::formats::make_national_code;
use acasa_proto::{
    registry::v1::{self as pb, registry_service_client::RegistryServiceClient},
    r#type::v1::Date,
};
use acasa_runtime::{Config, Role, TokenIssuer};
use anyhow::Context as _;
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use serde::Serialize;
use tonic::{Request, transport::Channel};

use super::stats::{Rate, concurrently, peak_rss_mib, rate};

/// Where the registry runs, for the benchmark.
#[derive(Clone, Debug)]
pub struct Target {
    /// gRPC address (`host:port`).
    pub addr: String,
    /// People to reach before the read benchmarks.
    pub people: usize,
    /// Commands in the mixed run.
    pub commands: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// The service's pid, for its peak RSS.
    pub service_pid: Option<u32>,
    /// The projection worker's pid.
    pub worker_pid: Option<u32>,
}

/// The registry figures.
#[derive(Debug, Serialize)]
pub struct RegistryReport {
    /// Registrations alone.
    pub registrations: Rate,
    /// The mixed commands, closed loop.
    pub mixed_commands: Rate,
    /// mixed / raw JetStream publishes.
    pub mixed_ratio: f64,
    /// Seconds the projection needed after the closed-loop run (waited before the half-rate run).
    pub projection_lag_after_mixed_seconds: f64,
    /// The mix at half the closed-loop rate, open loop.
    pub mixed_at_half_rate: Rate,
    /// Its registrations alone.
    pub half_rate_registrations: Rate,
    /// Its updates alone.
    pub half_rate_updates: Rate,
    /// Registrations to fill the population.
    pub fill_registrations: Rate,
    /// People in the read model for the read benchmarks.
    pub people: usize,
    /// Seconds the projection still needed after the last registration was acknowledged.
    pub projection_lag_seconds: f64,
    /// GetPerson with a minimum position.
    pub get_person: Rate,
    /// Searches (mixed filters) and candidate lists.
    pub search: Rate,
    /// Peak RSS of the service, MiB.
    pub service_peak_rss_mib: Option<f64>,
    /// Peak RSS of the projection worker, MiB.
    pub worker_peak_rss_mib: Option<f64>,
}

const GIVEN: &[&str] = &[
    "Ion",
    "Maria",
    "Vasile",
    "Elena",
    "Gheorghe",
    "Ana",
    "Mihai",
    "Natalia",
    "Andrei",
    "Tatiana",
    "Sergiu",
    "Olga",
    "Alexandru",
    "Irina",
    "Victor",
    "Cristina",
    "Nicolae",
    "Svetlana",
    "Dumitru",
    "Lilia",
    "Igor",
    "Ludmila",
    "Petru",
    "Valentina",
    "Vladimir",
    "Galina",
    "Dorin",
    "Angela",
    "Radu",
    "Diana",
];
const FAMILY: &[&str] = &[
    "Rusu",
    "Ceban",
    "Ciobanu",
    "Țurcanu",
    "Lungu",
    "Munteanu",
    "Rotari",
    "Cojocaru",
    "Moraru",
    "Botnaru",
    "Popa",
    "Sandu",
    "Cebotari",
    "Bălan",
    "Guțu",
    "Cazacu",
    "Roșca",
    "Melnic",
    "Ursu",
    "Vrabie",
    "Croitoru",
    "Grosu",
    "Postolachi",
    "Stratan",
    "Golban",
    "Prodan",
    "Caraman",
    "Bivol",
    "Dodon",
    "Leancă",
];
const COUNTRIES: &[&str] = &["IT", "DE", "FR", "ES", "GB", "RU", "RO", "US", "CA", "IL", "PT", "IE", "MD", "UA"];
const DISTRICTS: &[&str] = &[
    "Anenii Noi",
    "Bălți",
    "Cahul",
    "Călărași",
    "Cantemir",
    "Căușeni",
    "Criuleni",
    "Drochia",
    "Edineț",
    "Fălești",
    "Florești",
    "Glodeni",
    "Hîncești",
    "Ialoveni",
    "Leova",
    "Nisporeni",
    "Ocnița",
    "Orhei",
    "Rezina",
    "Rîșcani",
    "Sîngerei",
    "Soroca",
    "Strășeni",
    "Ștefan Vodă",
    "Taraclia",
    "Telenești",
    "Ungheni",
    "Chișinău",
    "Comrat",
];
const PROFESSIONS: &[&str] = &[
    "nurse",
    "physician",
    "software engineer",
    "civil engineer",
    "agronomist",
    "teacher",
    "accountant",
    "electrician",
    "welder",
    "cook",
    "driver",
    "veterinarian",
    "economist",
    "lawyer",
    "pharmacist",
    "architect",
];
const FIELDS: &[&str] = &[
    "plant genetics",
    "molecular biology",
    "computer science",
    "applied mathematics",
    "physics",
    "chemistry",
    "economics",
    "sociology",
    "materials science",
    "public health",
    "viticulture",
    "history",
];
const SKILLS: &[&str] = &[
    "welding",
    "irrigation",
    "greenhouses",
    "accounting",
    "rust",
    "python",
    "project management",
    "nursing care",
    "machine learning",
    "winemaking",
    "carpentry",
    "tiling",
    "driving licence C",
    "english",
    "german",
    "italian",
];

/// Concurrent readers for the query latencies (a busy office of caseworkers).
const READERS: usize = 4;

fn pick<'a>(rng: &mut StdRng, xs: &[&'a str]) -> &'a str {
    xs[rng.random_range(0..xs.len())]
}

/// A realistic registration, different for every `i`.
fn registration(run: &str, i: usize) -> pb::RegisterPersonRequest {
    let mut rng = StdRng::seed_from_u64(i as u64);
    let scientist = rng.random_bool(0.2);
    let idnp = rng.random_bool(0.7).then(|| {
        let prefix: String = (0..12).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect();
        make_national_code(&prefix).unwrap_or_default()
    });
    let mut categories = vec![pb::Category::MigrantAbroad as i32];
    if scientist {
        categories.push(pb::Category::DiasporaScientist as i32);
    } else if rng.random_bool(0.3) {
        categories.push(pb::Category::OverseasGraduate as i32);
    }
    if rng.random_bool(0.2) {
        categories.push(pb::Category::YouthEntrepreneur as i32);
    }
    let given = pick(&mut rng, GIVEN);
    pb::RegisterPersonRequest {
        request_id: format!("{run}-r{i}"),
        details: Some(pb::PersonDetails {
            given_name: given.into(),
            family_name: pick(&mut rng, FAMILY).into(),
            birth_date: Some(Date {
                year: rng.random_range(1960..2006),
                month: rng.random_range(1..13),
                day: rng.random_range(1..29),
            }),
            sex: rng.random_range(1..3),
            idnp: idnp.unwrap_or_default(),
            home_district: pick(&mut rng, DISTRICTS).into(),
            home_locality: pick(&mut rng, DISTRICTS).into(),
            languages: vec!["ro".into(), pick(&mut rng, &["ru", "en", "it", "de", "fr"]).into()],
            education: vec![pb::Education {
                level: rng.random_range(1..6),
                field: pick(&mut rng, FIELDS).into(),
                institution: "University".into(),
                country: pick(&mut rng, COUNTRIES).into(),
                year: rng.random_range(1985..2025),
            }],
            profession: pick(&mut rng, PROFESSIONS).into(),
            scientific_field: if scientist { pick(&mut rng, FIELDS).into() } else { String::new() },
            skills: (0..3).map(|_| pick(&mut rng, SKILLS).to_owned()).collect(),
        }),
        contacts: Some(pb::Contacts {
            email: format!("{}.{i}@example.md", given.to_lowercase()),
            phone: format!("+3736{:07}", i % 10_000_000),
        }),
        country_of_residence: pick(&mut rng, COUNTRIES).into(),
        categories,
        interests: vec![if scientist { pb::Interest::ScientificAssignment } else { pb::Interest::Placement } as i32],
    }
}

#[derive(Clone)]
struct Client {
    channels: Arc<Vec<Channel>>,
    token: Arc<String>,
}

impl Client {
    fn grpc(&self, i: usize) -> RegistryServiceClient<Channel> {
        RegistryServiceClient::new(self.channels[i % self.channels.len()].clone())
    }

    fn req<T>(&self, msg: T) -> anyhow::Result<Request<T>> {
        let mut r = Request::new(msg);
        r.set_timeout(Duration::from_secs(10));
        r.metadata_mut().insert("authorization", format!("Bearer {}", self.token).parse()?);
        Ok(r)
    }

    async fn register(&self, run: &str, i: usize) -> anyhow::Result<(String, u64)> {
        let r = self.grpc(i).register_person(self.req(registration(run, i))?).await?.into_inner();
        Ok((r.person_id, r.position))
    }

    /// One command of the mix: every fifth registers, the rest update someone known.
    async fn mixed(&self, run: &str, i: usize, known: &[String]) -> anyhow::Result<u64> {
        if i.is_multiple_of(5) {
            return Ok(self.register(run, i).await?.1);
        }
        let person_id = known[(i * 7919) % known.len()].clone();
        let request_id = format!("{run}-u{i}");
        let mut c = self.grpc(i);
        Ok(match i % 5 {
            1 => {
                let contacts = Some(pb::Contacts { email: format!("new.{i}@example.md"), phone: String::new() });
                c.update_contacts(self.req(pb::UpdateContactsRequest { request_id, person_id, contacts })?)
                    .await?
                    .into_inner()
                    .position
            }
            2 => {
                c.give_consent(self.req(pb::GiveConsentRequest {
                    request_id,
                    person_id,
                    purpose: pb::ConsentPurpose::ProgrammeParticipation as i32,
                    partner_id: String::new(),
                    channel: pb::ConsentChannel::Online as i32,
                })?)
                .await?
                .into_inner()
                .position
            }
            3 => {
                let interests = vec![pb::Interest::Information as i32, pb::Interest::Placement as i32];
                c.record_interests(self.req(pb::RecordInterestsRequest { request_id, person_id, interests })?)
                    .await?
                    .into_inner()
                    .position
            }
            _ => {
                let category = pb::Category::WomanEntrepreneur as i32;
                c.add_category(self.req(pb::AddCategoryRequest { request_id, person_id, category })?)
                    .await?
                    .into_inner()
                    .position
            }
        })
    }
}

/// Runs the registry benchmark; `raw_per_second` is the raw JetStream ceiling of this run.
pub async fn run(config: &Config, target: &Target, raw_per_second: f64) -> anyhow::Result<RegistryReport> {
    let token = TokenIssuer::from_config(config)?.issue(
        "bench",
        &[Role::Caseworker, Role::Viewer],
        None,
        Duration::from_secs(6 * 3600),
    )?;
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(
            Channel::from_shared(format!("http://{}", target.addr))?
                .connect()
                .await
                .with_context(|| format!("connecting to the registry at {}", target.addr))?,
        );
    }
    let client = Client { channels: Arc::new(channels), token: Arc::new(token) };
    let clients = target.clients.max(1);
    let run = uuid::Uuid::now_v7().simple().to_string();
    let known = Arc::new(std::sync::Mutex::new(Vec::new()));

    let warm = 5_000.min(target.people);
    eprintln!("bench: registry: {warm} registrations, {clients} clients…");
    let registrations = {
        let (client, run, known) = (client.clone(), run.clone(), known.clone());
        let (elapsed, lat) = concurrently(warm, clients, move |i| {
            let (client, run, known) = (client.clone(), run.clone(), known.clone());
            async move {
                let (id, _) = client.register(&run, i).await?;
                known.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push(id);
                Ok(())
            }
        })
        .await?;
        rate(warm, elapsed, lat)
    };
    let known: Arc<Vec<String>> = Arc::new(known.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone());
    let mut next = warm;

    eprintln!("bench: registry: {} mixed commands (1 in 5 registers), closed loop…", target.commands);
    let mixed_last = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mixed = {
        let (client, run, known, last) = (client.clone(), run.clone(), known.clone(), mixed_last.clone());
        let base = next;
        let (elapsed, lat) = concurrently(target.commands, clients, move |i| {
            let (client, run, known, last) = (client.clone(), run.clone(), known.clone(), last.clone());
            async move {
                let position = client.mixed(&run, base + i, &known).await?;
                last.fetch_max(position, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
        })
        .await?;
        next += target.commands;
        rate(target.commands, elapsed, lat)
    };

    // Steady state for the latency run: the worker first works off the
    // closed-loop run's backlog (it shares the two cores with everything else).
    let caught_up_after_mixed_seconds =
        wait_for_projection(&client, &known, mixed_last.load(std::sync::atomic::Ordering::Relaxed)).await?;

    let half = mixed.per_second / 2.0;
    let seconds = 8.0;
    let total = (half * seconds) as usize;
    eprintln!("bench: registry: the mix open loop at {half:.0}/s for {seconds} s…");
    let at_half = {
        let interval = Duration::from_secs_f64(1.0 / half.max(1.0));
        let start = tokio::time::Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for k in 0..total {
            let scheduled = start + interval.mul_f64(k as f64);
            tokio::time::sleep_until(scheduled).await;
            let (client, run, known) = (client.clone(), run.clone(), known.clone());
            let i = next + k;
            tasks.spawn(async move {
                client.mixed(&run, i, &known).await?;
                Ok::<_, anyhow::Error>((i.is_multiple_of(5), scheduled.elapsed()))
            });
        }
        let (mut lat, mut regs, mut upds) = (Vec::with_capacity(total), Vec::new(), Vec::new());
        while let Some(r) = tasks.join_next().await {
            let (registration, l) = r??;
            lat.push(l);
            if registration { regs.push(l) } else { upds.push(l) }
        }
        next += total;
        let elapsed = start.elapsed();
        (rate(total, elapsed, lat), rate(regs.len(), elapsed, regs), rate(upds.len(), elapsed, upds))
    };
    let (at_half, at_half_registrations, at_half_updates) = at_half;

    let have = warm + (warm..next).filter(|i| i.is_multiple_of(5)).count();
    let fill = target.people.saturating_sub(have.min(target.people));
    eprintln!("bench: registry: {fill} more registrations to reach ~{} people…", target.people);
    let last_position = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let fill_rate = {
        let (client, run, last) = (client.clone(), run.clone(), last_position.clone());
        let base = next + 1_000_000;
        let (elapsed, lat) = concurrently(fill, clients, move |i| {
            let (client, run, last) = (client.clone(), run.clone(), last.clone());
            async move {
                let (_, position) = client.register(&run, base + i).await?;
                last.fetch_max(position, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
        })
        .await?;
        rate(fill, elapsed, lat)
    };

    eprintln!("bench: registry: waiting for the projection…");
    let last = last_position.load(std::sync::atomic::Ordering::Relaxed);
    let projection_lag_seconds = wait_for_projection(&client, &known, last).await?;
    let counts = client.grpc(0).count_people(client.req(pb::CountPeopleRequest { min_position: last })?).await?;
    let people = counts
        .into_inner()
        .counts
        .iter()
        .filter(|c| c.category == pb::Category::MigrantAbroad as i32)
        .map(|c| c.people)
        .sum::<i64>();

    eprintln!("bench: registry: GetPerson with a minimum position…");
    let get_person = {
        let (client, known) = (client.clone(), known.clone());
        let n = 10_000;
        let (elapsed, lat) = concurrently(n, READERS, move |i| {
            let (client, known) = (client.clone(), known.clone());
            async move {
                let person_id = known[(i * 7919) % known.len()].clone();
                client.grpc(i).get_person(client.req(pb::GetPersonRequest { person_id, min_position: last })?).await?;
                Ok(())
            }
        })
        .await?;
        rate(n, elapsed, lat)
    };

    eprintln!("bench: registry: searches over {people} people…");
    let search = {
        let client = client.clone();
        let n = 3_000;
        let (elapsed, lat) = concurrently(n, READERS, move |i| {
            let client = client.clone();
            async move { search_one(&client, i, last).await }
        })
        .await?;
        rate(n, elapsed, lat)
    };

    Ok(RegistryReport {
        mixed_ratio: mixed.per_second / raw_per_second,
        registrations,
        mixed_commands: mixed,
        projection_lag_after_mixed_seconds: caught_up_after_mixed_seconds,
        mixed_at_half_rate: at_half,
        half_rate_registrations: at_half_registrations,
        half_rate_updates: at_half_updates,
        fill_registrations: fill_rate,
        people: usize::try_from(people).unwrap_or(0),
        projection_lag_seconds,
        get_person,
        search,
        service_peak_rss_mib: peak_rss_mib(target.service_pid),
        worker_peak_rss_mib: peak_rss_mib(target.worker_pid),
    })
}

/// Waits until the read model has reached `position`; returns the seconds it took.
async fn wait_for_projection(client: &Client, known: &[String], position: u64) -> anyhow::Result<f64> {
    let waited = Instant::now();
    let probe = known.first().cloned().unwrap_or_default();
    loop {
        let mut r = client.req(pb::GetPersonRequest { person_id: probe.clone(), min_position: position })?;
        r.set_timeout(Duration::from_secs(30));
        match client.grpc(0).get_person(r).await {
            Ok(_) => return Ok(waited.elapsed().as_secs_f64()),
            Err(s) if s.code() == tonic::Code::DeadlineExceeded && waited.elapsed() < Duration::from_secs(600) => {}
            Err(s) => return Err(s.into()),
        }
    }
}

async fn search_one(client: &Client, i: usize, min_position: u64) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(i as u64 ^ 0x5eed);
    let mut c = client.grpc(i);
    let mut q = pb::SearchPeopleRequest { min_position, page_size: 50, ..Default::default() };
    match i % 6 {
        0 => {
            q.country = pick(&mut rng, COUNTRIES).into();
            q.categories = vec![pb::Category::DiasporaScientist as i32];
        }
        1 => q.name = pick(&mut rng, FAMILY).into(),
        2 => {
            q.district = pick(&mut rng, DISTRICTS).into();
            q.skills = vec![pick(&mut rng, SKILLS).into()];
        }
        3 => q.field = pick(&mut rng, FIELDS).into(),
        4 => {
            q.name = format!("{} {}", pick(&mut rng, FAMILY), pick(&mut rng, GIVEN));
            q.country = pick(&mut rng, COUNTRIES).into();
        }
        _ => {
            let r = pb::ListCandidatesRequest {
                purpose: pb::CandidatePurpose::ScientificAssignment as i32,
                field: pick(&mut rng, FIELDS).into(),
                min_position,
                ..Default::default()
            };
            c.list_candidates(client.req(r)?).await?;
            return Ok(());
        }
    }
    let first = c.search_people(client.req(q.clone())?).await?.into_inner();
    // Every other search also reads its second page.
    if i.is_multiple_of(2) && !first.next_page_token.is_empty() {
        q.page_token = first.next_page_token;
        c.search_people(client.req(q)?).await?;
    }
    Ok(())
}
