//! Faults under load (issue 11), against real `acasa serve registry` and
//! `acasa project registry` processes: the stream leader of a three-node
//! cluster killed, Postgres restarted, the service SIGKILLed — each while
//! concurrent clients register people. Nothing acknowledged is lost, every
//! refusal is safe to retry with its request id, and each IDNP is held by the
//! one person its registration answered.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use acasa_eventstore::EventStore;
use acasa_proto::registry::v1::{self as pb, registry_service_client::RegistryServiceClient};
use acasa_registry::{domain::IDNP_CLAIM, projection::PeopleProjection};
use acasa_runtime::{Role, TokenIssuer};
use futures::{StreamExt as _, TryStreamExt as _};
use tonic::{
    Code, Request, Status,
    transport::{Channel, Endpoint},
};
use tonic_types::StatusExt as _;

use crate::{
    harness::{Env, JWT_KEY_HEX, eventually},
    operations::{Process, free_addr},
    registry::{person, read_model_text, sorted_lines, vault, worker},
};

/// The token subject of the load's caseworker: request ids are scoped by it.
const CASEWORKER: &str = "caseworker-faults";
/// What each call may take, as a client's deadline.
const CALL: Duration = Duration::from_secs(5);
const STREAM: &str = "ACASA_REGISTRY";

#[derive(Clone)]
struct Api {
    client: RegistryServiceClient<Channel>,
    writer: String,
    reader: String,
}

impl Api {
    /// A client of the server at `addr`, once it answers.
    async fn connect(addr: SocketAddr) -> Api {
        let issuer = TokenIssuer::hs256(&hex::decode(JWT_KEY_HEX).unwrap(), "acasa", "acasa");
        let writer = issuer.issue(CASEWORKER, &[Role::Caseworker], None, Duration::from_secs(600)).unwrap();
        let reader = issuer.issue("viewer-faults", &[Role::Viewer], None, Duration::from_secs(600)).unwrap();
        let client = eventually(Duration::from_secs(30), || async move {
            let channel = Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.ok()?;
            Some(RegistryServiceClient::new(channel))
        })
        .await;
        Api { client, writer, reader }
    }

    fn req<T>(token: &str, msg: T, timeout: Duration) -> Request<T> {
        let mut r = Request::new(msg);
        r.set_timeout(timeout);
        r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        r
    }

    /// A call bounded on the client too: a server that does not answer by
    /// the deadline (plus a margin) counts as `DEADLINE_EXCEEDED` from here.
    async fn bounded<T>(
        timeout: Duration,
        call: impl std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, Status> {
        match tokio::time::timeout(timeout + Duration::from_secs(1), call).await {
            Ok(r) => r.map(tonic::Response::into_inner),
            Err(_) => Err(Status::deadline_exceeded("no answer from the server (client-side bound)")),
        }
    }

    async fn register(&self, body: pb::RegisterPersonRequest) -> Result<pb::RegisterPersonResponse, Status> {
        let mut c = self.client.clone();
        Self::bounded(CALL, c.register_person(Self::req(&self.writer, body, CALL))).await
    }

    async fn get(&self, id: &str, min_position: u64, timeout: Duration) -> Result<pb::Person, Status> {
        let mut c = self.client.clone();
        let r = Self::req(&self.reader, pb::GetPersonRequest { person_id: id.into(), min_position }, timeout);
        let person = Self::bounded(timeout, c.get_person(r)).await?;
        person.person.ok_or_else(|| Status::internal("an answer without its person"))
    }
}

/// Refusals a client retries with the same request id.
fn retryable(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::Aborted | Code::DeadlineExceeded | Code::Cancelled)
}

/// A registration's body; distinct names, so duplicate detection stays quiet.
fn registration(request_id: &str, client: usize, n: usize) -> pb::RegisterPersonRequest {
    person(request_id, &format!("Ana{n}"), &format!("Fault{client}"))
}

fn idnp_of(body: &pb::RegisterPersonRequest) -> String {
    body.details.as_ref().unwrap().idnp.clone()
}

#[derive(Clone, Debug)]
struct Answer {
    request_id: String,
    idnp: String,
    body: pb::RegisterPersonRequest,
    person_id: String,
    position: u64,
    at: Instant,
    /// It was refused at least once before this answer.
    after_refusal: bool,
}

#[derive(Clone, Debug)]
struct Refusal {
    code: Code,
    at: Instant,
    took: Duration,
}

#[derive(Default)]
struct Log {
    answers: Vec<Answer>,
    refusals: Vec<Refusal>,
}

type Shared = Arc<Mutex<Log>>;

fn answered_since(log: &Shared, since: Instant) -> usize {
    log.lock().unwrap().answers.iter().filter(|a| a.at >= since).count()
}

/// `clients` tasks registering until `stop`, each registration with its own
/// request id and IDNP, retried with that same request id while refused (as
/// a client should), up to `give_up`. Any other answer fails the test.
fn load(
    api: &Api,
    clients: usize,
    prefix: &str,
    stop: &Arc<AtomicBool>,
    log: &Shared,
    give_up: Duration,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..clients)
        .map(|c| {
            let (api, stop, log, prefix) = (api.clone(), stop.clone(), log.clone(), prefix.to_owned());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let request_id = format!("{prefix}-{c}-{n}");
                    let body = registration(&request_id, c, n);
                    n += 1;
                    let started = Instant::now();
                    let mut refused = false;
                    loop {
                        let t = Instant::now();
                        match api.register(body.clone()).await {
                            Ok(r) => {
                                let answer = Answer {
                                    request_id: request_id.clone(),
                                    idnp: idnp_of(&body),
                                    body: body.clone(),
                                    person_id: r.person_id,
                                    position: r.position,
                                    at: Instant::now(),
                                    after_refusal: refused,
                                };
                                log.lock().unwrap().answers.push(answer);
                                break;
                            }
                            Err(s) if retryable(s.code()) => {
                                refused = true;
                                let refusal = Refusal { code: s.code(), at: Instant::now(), took: t.elapsed() };
                                log.lock().unwrap().refusals.push(refusal);
                                assert!(
                                    started.elapsed() < give_up,
                                    "{request_id} still refused after {give_up:?}: {s:?}"
                                );
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            Err(s) => panic!("{request_id} answered {s:?}, which is not a refusal to retry"),
                        }
                    }
                }
            })
        })
        .collect()
}

async fn finish(stop: &Arc<AtomicBool>, tasks: Vec<tokio::task::JoinHandle<()>>) {
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
}

fn codes(refusals: &[Refusal]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in refusals {
        *out.entry(format!("{:?}", r.code)).or_insert(0) += 1;
    }
    out
}

/// A store over the registry's stream, for reading the log as it is.
async fn registry_store(urls: Vec<String>, replicas: usize) -> EventStore {
    let client = async_nats::ConnectOptions::new().retry_on_initial_connect().connect(urls).await.unwrap();
    let mut settings = crate::harness::settings("registry");
    settings.replicas = replicas;
    EventStore::open(client, settings).await.unwrap()
}

/// How many messages each subject matching `filter` holds.
async fn subjects(store: &EventStore, filter: &str) -> HashMap<String, usize> {
    let stream = store.jetstream().get_stream(STREAM).await.unwrap();
    stream.info_with_subjects(filter).await.unwrap().try_collect().await.unwrap()
}

/// Every answered registration is in the log, asked of the stream's leader:
/// its request record names its person alone, its IDNP's claim is held by
/// that person, and the log holds one person, one claim and one request
/// record per answered request id — nothing besides.
async fn assert_in_log(store: &EventStore, answers: &[Answer]) {
    let ids: HashSet<&str> = answers.iter().map(|a| a.request_id.as_str()).collect();
    let people: HashSet<&str> = answers.iter().map(|a| a.person_id.as_str()).collect();
    assert_eq!(ids.len(), answers.len(), "one answer per request id");
    assert_eq!(people.len(), answers.len(), "one person per request id");
    futures::stream::iter(answers)
        .for_each_concurrent(16, |a| async move {
            let key = store.hasher().request_key(&format!("api:{CASEWORKER}"), &a.request_id);
            let record = store.request(&key, true).await.unwrap().unwrap_or_else(|| panic!("{a:?} has no record"));
            assert_eq!(record.record.subjects, [store.subject("person", &a.person_id)], "{a:?}");
            let claim = store.claim(IDNP_CLAIM, &a.idnp, true).await.unwrap();
            assert_eq!(claim.holder.as_deref(), Some(a.person_id.as_str()), "{a:?}");
        })
        .await;
    let persons = subjects(store, "acasa.registry.person.*").await;
    let expected: HashSet<String> = answers.iter().map(|a| store.subject("person", &a.person_id)).collect();
    let stored: HashSet<String> = persons.keys().cloned().collect();
    assert_eq!(stored, expected, "the log holds exactly the answered people");
    assert!(persons.values().all(|n| *n == 1), "each person registered once");
    let claims = subjects(store, &format!("acasa.registry.claim.{IDNP_CLAIM}.*")).await;
    assert_eq!(claims.len(), answers.len(), "one IDNP claim per person");
    assert!(claims.values().all(|n| *n == 1), "each claim taken once");
    assert_eq!(subjects(store, "acasa.registry.request.>").await.len(), answers.len(), "one record per request id");
}

/// Each answered request, sent again with its request id: the same person at
/// the same position.
async fn assert_replays(api: &Api, answers: &[Answer]) {
    futures::stream::iter(answers)
        .for_each_concurrent(16, |a| async move {
            let again = api.register(a.body.clone()).await.unwrap();
            assert_eq!((again.person_id.as_str(), again.position), (a.person_id.as_str(), a.position), "{a:?}");
        })
        .await;
}

#[tokio::test]
async fn the_stream_leader_killed_under_load_loses_no_registration_and_every_refusal_is_safe_to_retry() {
    let test = Instant::now();
    let env = Env::new().await;
    let mut cluster = acasa_testkit::NatsCluster::start().await.unwrap();
    let addr = free_addr();
    let nats = [("ACASA_NATS_URL", cluster.urls().join(",")), ("ACASA_STREAM_REPLICAS", "3".to_owned())];
    let mut serve_vars = nats.to_vec();
    serve_vars.push(("ACASA_GRPC_ADDR", addr.to_string()));
    let serve = Process::start(&env, &["serve", "registry"], &serve_vars);
    let _project = Process::start(&env, &["project", "registry"], &nats);
    let api = Api::connect(addr).await;

    let (stop, log) = (Arc::new(AtomicBool::new(false)), Shared::default());
    let tasks = load(&api, 8, "leader", &stop, &log, Duration::from_secs(30));
    let started = Instant::now();
    eventually(Duration::from_secs(30), || async { (answered_since(&log, started) >= 200).then_some(()) }).await;
    let leader = cluster.stream_leader(STREAM, 0, Duration::from_secs(10)).await.unwrap();
    let killed = Instant::now();
    cluster.kill(leader);
    // The load goes on until acknowledgements flow again.
    eventually(Duration::from_secs(40), || async { (answered_since(&log, killed) >= 300).then_some(()) }).await;
    finish(&stop, tasks).await;
    let new_leader = cluster.stream_leader(STREAM, (leader + 1) % 3, Duration::from_secs(10)).await.unwrap();
    assert_ne!(new_leader, leader);

    let Log { answers, refusals } = std::mem::take(&mut *log.lock().unwrap());
    let mut acks: Vec<Instant> = answers.iter().map(|a| a.at).collect();
    acks.sort();
    let quiet = acks.windows(2).filter(|w| w[1] > killed).map(|w| w[1] - w[0]).max().unwrap_or_default();
    let first_ack = acks.iter().find(|t| **t > killed).map(|t| *t - killed).unwrap_or_default();
    let after = |t: Instant| t.saturating_duration_since(killed);
    let (first, last) = (
        refusals.iter().map(|r| after(r.at)).min().unwrap_or_default(),
        refusals.iter().map(|r| after(r.at)).max().unwrap_or_default(),
    );
    let slowest = refusals.iter().map(|r| r.took).max().unwrap_or_default();
    eprintln!(
        "leader kill (node {leader} -> {new_leader}): {} registrations acknowledged ({} before the kill), \
         {} refusals {:?} between +{first:.2?} and +{last:.2?} after the kill (slowest refusal took {slowest:.2?}); \
         longest time without an acknowledgement {quiet:.2?}; {} registrations answered only after a refusal",
        answers.len(),
        answers.iter().filter(|a| a.at < killed).count(),
        refusals.len(),
        codes(&refusals),
        answers.iter().filter(|a| a.after_refusal).count(),
    );
    eprintln!("leader kill: first acknowledgement {first_ack:.2?} after the kill");

    // Every request answered after a refusal answers the same when sent again.
    let retried: Vec<Answer> = answers.iter().filter(|a| a.after_refusal).cloned().collect();
    assert_replays(&api, &retried).await;
    cluster.restart(leader).await.unwrap();
    let store = registry_store(cluster.urls(), 3).await;
    assert_in_log(&store, &answers).await;
    assert!(quiet < Duration::from_secs(20), "registrations stalled for {quiet:?}");
    if std::env::var("FAULTS_DEBUG").is_ok() {
        for l in serve.log().lines().filter(|l| l.contains("WARN") || l.contains("ERROR")) {
            eprintln!("SERVE {l}");
        }
    }
    drop(serve);
    eprintln!("leader kill: the test took {:.1?}", test.elapsed());
}

#[derive(Clone, Debug)]
struct Query {
    at: Instant,
    took: Duration,
    code: Code,
}

/// Reads person `id` until `stop`, each read with a 2 s deadline.
fn reads(api: &Api, id: String, stop: &Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<Query>> {
    let (api, stop) = (api.clone(), stop.clone());
    tokio::spawn(async move {
        let mut out = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            let code = match api.get(&id, 0, Duration::from_secs(2)).await {
                Ok(_) => Code::Ok,
                Err(s) => s.code(),
            };
            out.push(Query { at: t, took: t.elapsed(), code });
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        out
    })
}

/// Issue 11: Postgres restarted while registrations and the projection run.
/// Registrations need Postgres too (the new person's data key, then the
/// duplicate lookup): refused with UNAVAILABLE during the outage and retried.
#[tokio::test]
async fn postgres_restarted_under_load_queries_answer_unavailable_and_recover_and_the_read_model_equals_a_rebuild() {
    let test = Instant::now();
    let mut env = Env::new().await;
    let addr = free_addr();
    let _serve = Process::start(&env, &["serve", "registry"], &[("ACASA_GRPC_ADDR", addr.to_string())]);
    let mut project = Process::start(&env, &["project", "registry"], &[]);
    let api = Api::connect(addr).await;
    let probe = eventually(Duration::from_secs(20), || {
        let api = api.clone();
        async move { api.register(registration("pg-probe", 99, 0)).await.ok() }
    })
    .await;

    let (stop, log) = (Arc::new(AtomicBool::new(false)), Shared::default());
    let tasks = load(&api, 4, "pg", &stop, &log, Duration::from_secs(40));
    let queries = reads(&api, probe.person_id.clone(), &stop);
    let started = Instant::now();
    eventually(Duration::from_secs(30), || async { (answered_since(&log, started) >= 50).then_some(()) }).await;
    env._pg.stop();
    let down = Instant::now();
    // Let the load run against the outage for a moment.
    tokio::time::sleep(Duration::from_secs(3)).await;
    env._pg.restart().await.unwrap();
    let up = Instant::now();
    eventually(Duration::from_secs(30), || async { (answered_since(&log, up) >= 50).then_some(()) }).await;
    finish(&stop, tasks).await;
    let queries = queries.await.unwrap();

    let during: Vec<&Query> = queries.iter().filter(|q| q.at >= down && q.at + q.took <= up).collect();
    let after: Vec<&Query> = queries.iter().filter(|q| q.at >= up).collect();
    let slowest = during.iter().map(|q| q.took).max().unwrap_or_default();
    let recovered = after.iter().find(|q| q.code == Code::Ok).map(|q| (q.at + q.took) - up);
    let Log { answers, refusals } = std::mem::take(&mut *log.lock().unwrap());
    let outage_refusals: Vec<Refusal> = refusals.iter().filter(|r| r.at >= down).cloned().collect();
    eprintln!(
        "postgres restart: outage {:.2?}; {} reads during it, codes {:?}, slowest {slowest:.2?}; \
         first read answered {recovered:.2?} after Postgres was back; {} registrations acknowledged, \
         {} refusals {:?} (slowest {:.2?})",
        up - down,
        during.len(),
        codes(&during.iter().map(|q| Refusal { code: q.code, at: q.at, took: q.took }).collect::<Vec<_>>()),
        answers.len(),
        refusals.len(),
        codes(&refusals),
        outage_refusals.iter().map(|r| r.took).max().unwrap_or_default(),
    );
    assert!(!during.is_empty(), "no read ran during the outage");
    for q in &during {
        assert!(matches!(q.code, Code::Unavailable), "a read during the outage answered {q:?}");
        assert!(q.took < Duration::from_millis(2500), "a read during the outage hung: {q:?}");
    }
    assert!(recovered.is_some(), "reads did not recover by themselves");
    assert!(after.iter().all(|q| matches!(q.code, Code::Ok | Code::Unavailable)), "{after:?}");

    // Every acknowledged registration reaches the read model; the worker, if
    // it gave up its leadership with its lock connection, is started again
    // as a supervisor would.
    let mut answers = answers;
    answers.push(Answer {
        request_id: "pg-probe".into(),
        idnp: String::new(),
        body: pb::RegisterPersonRequest::default(),
        person_id: probe.person_id.clone(),
        position: probe.position,
        at: started,
        after_refusal: false,
    });
    let top = answers.iter().map(|a| a.position).max().unwrap();
    let mut restarts = 0;
    eventually(Duration::from_secs(30), || {
        if project.exited().is_some() {
            restarts += 1;
            project = Process::start(&env, &["project", "registry"], &[]);
        }
        let (api, id) = (api.clone(), probe.person_id.clone());
        async move { api.get(&id, top, Duration::from_secs(2)).await.ok() }
    })
    .await;
    eprintln!("postgres restart: the projection worker was started again {restarts} time(s)");
    futures::stream::iter(&answers)
        .for_each_concurrent(16, |a| {
            let api = api.clone();
            async move {
                let p = api.get(&a.person_id, top, Duration::from_secs(5)).await.unwrap();
                assert_eq!(p.person_id, a.person_id);
            }
        })
        .await;
    let people: i64 = sqlx::query_scalar("SELECT count(*) FROM registry.people").fetch_one(&env.pool).await.unwrap();
    assert_eq!(people, answers.len() as i64, "the read model holds every acknowledged registration, once");

    // And it equals a rebuild from the log.
    let store = registry_store(vec![env.nats.url()], 1).await;
    let last = crate::harness::last_commit(&store).await;
    api.get(&probe.person_id, last, Duration::from_secs(10)).await.unwrap();
    // A worker whose lock connection died with Postgres ends its process
    // (ARCHITECTURE.md: the supervisor restarts it); say whether it did.
    let lost = project.log().contains("leadership");
    let gone = project.exited();
    eprintln!("postgres restart: worker exited before the stop: {gone:?}; its log names lost leadership: {lost}");
    if gone.is_none() {
        project.terminate();
        eventually(Duration::from_secs(15), || {
            let s = project.exited();
            async move { s }
        })
        .await;
    }
    let live = sorted_lines(read_model_text(&env).await);
    acasa_projection::rebuild_reset(&env.pool, &PeopleProjection::new(vault(&env))).await.unwrap();
    let mut w = worker(&env, &store);
    assert!(w.try_lead().await.unwrap());
    assert_eq!(w.catch_up_to(last).await.unwrap(), last);
    assert_eq!(sorted_lines(read_model_text(&env).await), live, "the read model equals a rebuild");
    eprintln!("postgres restart: the test took {:.1?}", test.elapsed());
}

struct Sent {
    body: pb::RegisterPersonRequest,
    answer: Option<Result<pb::RegisterPersonResponse, Status>>,
}

/// Issue 11: the service SIGKILLed in the middle of registrations. Started
/// again, every registration retried with its request id answers what it
/// answered before (if it was answered), and every IDNP is held by exactly
/// the one person its registration names.
#[tokio::test]
async fn a_service_killed_mid_registration_leaves_no_idnp_without_its_person_and_retries_answer_the_first_answer() {
    let test = Instant::now();
    let env = Env::new().await;
    let addr = free_addr();
    let vars = [("ACASA_GRPC_ADDR", addr.to_string())];
    let mut serve = Process::start(&env, &["serve", "registry"], &vars);
    let _project = Process::start(&env, &["project", "registry"], &[]);
    let api = Api::connect(addr).await;

    // 16 clients send registrations, each until it sees the service die.
    let killed = Arc::new(AtomicBool::new(false));
    let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let tasks: Vec<_> = (0..16)
        .map(|c| {
            let (api, killed, sent) = (api.clone(), killed.clone(), sent.clone());
            tokio::spawn(async move {
                for n in 0.. {
                    let body = registration(&format!("kill-{c}-{n}"), c, n);
                    let answer = api.register(body.clone()).await;
                    let failed = answer.is_err();
                    if let Err(s) = &answer {
                        // A connection broken by the kill is tonic's UNKNOWN "transport error".
                        let broken = s.code() == Code::Unknown && s.message() == "transport error";
                        assert!((retryable(s.code()) || broken) && killed.load(Ordering::Relaxed), "{s:?}");
                    }
                    // An answer that never came (the connection died) is kept as none.
                    let answer = answer.map_err(|s| Status::new(s.code(), s.message())).ok().map(Ok);
                    sent.lock().unwrap().push(Sent { body, answer });
                    if failed {
                        return;
                    }
                }
            })
        })
        .collect();
    let count = || sent.lock().unwrap().len();
    eventually(Duration::from_secs(30), || async { (count() >= 150).then_some(()) }).await;
    killed.store(true, Ordering::Relaxed);
    serve.kill();
    for t in tasks {
        t.await.unwrap();
    }
    let sent = std::mem::take(&mut *sent.lock().unwrap());
    let unanswered = sent.iter().filter(|s| s.answer.is_none()).count();
    assert!(unanswered > 0, "the kill came between registrations, not in the middle of any");

    // Started again: every registration retried with its own request id.
    let serve = Process::start(&env, &["serve", "registry"], &vars);
    let api = Api::connect(addr).await;
    let answers: Vec<Answer> = futures::stream::iter(&sent)
        .map(|s| {
            let api = api.clone();
            async move {
                let r = eventually(Duration::from_secs(20), || {
                    let api = api.clone();
                    async move {
                        match api.register(s.body.clone()).await {
                            Ok(r) => Some(r),
                            Err(e) if retryable(e.code()) => None,
                            Err(e) => panic!("{} retried answered {e:?}", s.body.request_id),
                        }
                    }
                })
                .await;
                if let Some(Ok(first)) = &s.answer {
                    assert_eq!((&r.person_id, r.position), (&first.person_id, first.position), "{}", s.body.request_id);
                }
                Answer {
                    request_id: s.body.request_id.clone(),
                    idnp: idnp_of(&s.body),
                    body: s.body.clone(),
                    person_id: r.person_id,
                    position: r.position,
                    at: Instant::now(),
                    after_refusal: s.answer.is_none(),
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let store = registry_store(vec![env.nats.url()], 1).await;
    assert_in_log(&store, &answers).await;

    let keys_after_retries = data_keys(&env).await;
    // Each IDNP again, under a new request id: refused, naming the person
    // holding it, who exists and has that IDNP.
    let top = answers.iter().map(|a| a.position).max().unwrap();
    futures::stream::iter(&answers)
        .for_each_concurrent(16, |a| {
            let api = api.clone();
            async move {
                let mut again = registration(&format!("again-{}", a.request_id), 0, 0);
                again.details.as_mut().unwrap().idnp = a.idnp.clone();
                let e = api.register(again).await.unwrap_err();
                assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
                let holder = e.get_error_details().error_info().unwrap().metadata["existing_id"].clone();
                assert_eq!(holder, a.person_id);
                let p = api.get(&holder, top, Duration::from_secs(5)).await.unwrap();
                assert_eq!(p.details.unwrap().idnp, a.idnp);
            }
        })
        .await;
    let keys = data_keys(&env).await;
    eprintln!(
        "service kill: {} registrations sent, {} answered before the kill, {unanswered} unanswered; \
         after the restart all {} answered as before, each IDNP held by its person; \
         {keys_after_retries} data keys for {} people after the retries, {keys} after as many refused \
         duplicates; the test took {:.1?}",
        sent.len(),
        sent.len() - unanswered,
        answers.len(),
        answers.len(),
        test.elapsed()
    );
    drop(serve);
}

/// Rows in the registry's vault (one per person registered, and one per
/// registration refused or cut short after its key was made).
async fn data_keys(env: &Env) -> i64 {
    let sql = format!("SELECT count(*) FROM {}", acasa_registry::VAULT_TABLE);
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&env.pool).await.unwrap()
}
