//! Operating the services: the partner feed's stream limits and suspension,
//! a shutdown that ends open streams with where to resume, and health that
//! follows Postgres and NATS — for the servers and the workers' probes. Real
//! nats-server and Postgres; the shutdown and health tests run the binary.

use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use acasa_eventstore::EventStore;
use acasa_projection::{Positions, Worker};
use acasa_proto::{
    Message as _,
    partner::v1 as types,
    referrals::v1::{self as pb, referral_service_client::ReferralServiceClient},
};
use acasa_referrals::{
    feed::StreamLimits,
    grpc::{RESUME_FROM, ReferralService},
    projection::ReferralsProjection,
};
use acasa_runtime::{Authenticator, Draining, Role, ServeOptions, Serving, TokenIssuer};
use acasa_vault::{MasterKey, Vault};
use futures::StreamExt as _;
use tokio::sync::watch;
use tonic::{
    Code, Request, Streaming,
    transport::{Channel, Endpoint},
};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use uuid::Uuid;

use crate::harness::{Env, JWT_KEY_HEX, eventually};

const WAIT: Duration = Duration::from_secs(20);

struct Feed {
    serving: Serving,
    addr: SocketAddr,
    client: ReferralServiceClient<Channel>,
    issuer: TokenIssuer,
    js: async_nats::jetstream::Context,
    stop: watch::Sender<bool>,
    worker: tokio::task::JoinHandle<()>,
}

async fn feed_server(env: &Env, limits: StreamLimits, options: ServeOptions) -> Feed {
    let key = hex::decode(JWT_KEY_HEX).unwrap();
    let auth = Authenticator::hs256(&key, "acasa", "acasa");
    let store = EventStore::open(env.client().await, crate::harness::settings("referrals")).await.unwrap();
    acasa_referrals::feed::declare_stream(store.jetstream(), 1).await.unwrap();
    let master = MasterKey::from_bytes(&key).unwrap();
    let vault = Vault::new(env.pool.clone(), master, acasa_referrals::VAULT_TABLE).unwrap();
    let service = ReferralService::new(store.clone(), vault, Positions::start(env.pool.clone()), env.pool.clone())
        .with_feed_streams(limits, Draining::never());
    let serving = Serving::start_with(
        "127.0.0.1:0".parse().unwrap(),
        service.routes(&auth),
        &[ReferralService::NAME],
        std::future::pending(),
        options,
    )
    .await
    .unwrap();
    let addr = serving.local_addr;
    let (stop, stopped) = watch::channel(false);
    let w = Worker::new(
        std::sync::Arc::new(ReferralsProjection),
        env.pool.clone(),
        store.jetstream().clone(),
        crate::harness::worker_config(&store),
    );
    let worker = tokio::spawn(async move { w.run(stopped).await.unwrap() });
    Feed {
        serving,
        addr,
        client: ReferralServiceClient::new(channel(addr).await),
        issuer: TokenIssuer::hs256(&key, "acasa", "acasa"),
        js: store.jetstream().clone(),
        stop,
        worker,
    }
}

/// A new client connection (a tonic channel is one HTTP/2 connection).
async fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap()
}

fn with_token<T>(issuer: &TokenIssuer, roles: &[Role], partner: Option<&str>, msg: T) -> Request<T> {
    let token = issuer.issue("tester", roles, partner, Duration::from_secs(600)).unwrap();
    let mut r = Request::new(msg);
    r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

async fn subscribe(
    client: &mut ReferralServiceClient<Channel>,
    issuer: &TokenIssuer,
    partner: &str,
    from_position: u64,
) -> Result<Streaming<pb::SubscribeReferralEventsResponse>, tonic::Status> {
    let r = with_token(issuer, &[Role::Partner], Some(partner), pb::SubscribeReferralEventsRequest { from_position });
    client.subscribe_referral_events(r).await.map(tonic::Response::into_inner)
}

async fn feed_consumers(js: &async_nats::jetstream::Context) -> usize {
    let mut stream = js.get_stream(acasa_referrals::FEED_STREAM).await.unwrap();
    stream.info().await.unwrap().state.consumer_count
}

/// Publishes one feed event for `partner` straight into the feed stream; its position.
async fn feed_event(js: &async_nats::jetstream::Context, partner: &str) -> u64 {
    let referral = Uuid::now_v7();
    let event = types::ReferralEvent {
        referral_id: referral.to_string(),
        partner_id: partner.to_owned(),
        occurred_at: None,
        kind: Some(types::referral_event::Kind::Accepted(types::ReferralAccepted {})),
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("ce-id", format!("test-{referral}").as_str());
    headers.insert("ce-type", "acasa.partner.v1.referral.accepted");
    let subject = format!("acasa.partner.{partner}.referral.{referral}");
    js.publish_with_headers(subject, headers, event.encode_to_vec().into()).await.unwrap().await.unwrap().sequence
}

#[tokio::test]
async fn feed_streams_are_capped_per_partner_and_connection_and_a_closed_one_frees_its_place_at_once() {
    let env = Env::new().await;
    let limits = StreamLimits { per_partner: 2, per_connection: 3, suspension_check: Duration::from_millis(100) };
    let mut f = feed_server(&env, limits, ServeOptions::default()).await;
    let (p, q) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string());
    let issuer = f.issuer.clone();

    // P may have two streams open; the third is refused, on any connection.
    let first = subscribe(&mut f.client, &issuer, &p, 0).await.unwrap();
    let second = subscribe(&mut f.client, &issuer, &p, 0).await.unwrap();
    let e = subscribe(&mut f.client, &issuer, &p, 0).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    let mut other = ReferralServiceClient::new(channel(f.addr).await);
    assert_eq!(subscribe(&mut other, &issuer, &p, 0).await.unwrap_err().code(), Code::ResourceExhausted);
    assert_eq!(feed_consumers(&f.js).await, 2);

    // The connection carries three at most, whichever partners they are for.
    let q1 = subscribe(&mut f.client, &issuer, &q, 0).await.unwrap();
    let e = subscribe(&mut f.client, &issuer, &q, 0).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("connection"), "{e:?}");
    let q2 = subscribe(&mut other, &issuer, &q, 0).await.unwrap();

    // The client closes one: its place is free again, and its consumer gone
    // promptly (an ordered consumer left alone lingers for 30 s).
    drop(first);
    let third = eventually(WAIT, || {
        let (mut c, issuer, p) = (f.client.clone(), issuer.clone(), p.clone());
        async move { subscribe(&mut c, &issuer, &p, 0).await.ok() }
    })
    .await;
    let closed_at = Instant::now();
    drop((second, third, q1, q2));
    eventually(Duration::from_secs(5), || async { (feed_consumers(&f.js).await == 0).then_some(()) }).await;
    assert!(closed_at.elapsed() < Duration::from_secs(5));
    // All places are free: P opens two again.
    let _a = subscribe(&mut f.client, &issuer, &p, 0).await.unwrap();
    let _b = subscribe(&mut other, &issuer, &p, 0).await.unwrap();
    f.stop.send(true).unwrap();
    f.worker.await.unwrap();
}

fn register(name: &str) -> pb::RegisterPartnerRequest {
    let prefix: String = (0..12).map(|_| char::from(b'0' + rand::random_range(0..10u8))).collect();
    pb::RegisterPartnerRequest {
        request_id: format!("partner-{}", name.replace(' ', "-")),
        kind: types::PartnerKind::Bank as i32,
        name: name.into(),
        idno: acasa_domain::formats::make_national_code(&prefix).unwrap(),
        districts: vec!["Comrat".into()],
        contact: Some(pb::PartnerContact { email: "referrals@bank.md".into(), ..Default::default() }),
        services: vec![pb::PartnerService { kind: types::ServiceKind::Loan as i32, ..Default::default() }],
        response_time: Some(prost_types::Duration { seconds: 3600, nanos: 0 }),
    }
}

#[tokio::test]
async fn a_suspended_partner_cannot_open_its_feed_and_its_open_stream_ends() {
    let env = Env::new().await;
    let limits = StreamLimits { suspension_check: Duration::from_millis(100), ..StreamLimits::default() };
    let mut f = feed_server(&env, limits, ServeOptions::default()).await;
    let issuer = f.issuer.clone();
    let partner = f
        .client
        .register_partner(with_token(&issuer, &[Role::Admin], None, register("Suspended Bank")))
        .await
        .unwrap()
        .into_inner()
        .partner_id;
    let position = feed_event(&f.js, &partner).await;
    let mut open = subscribe(&mut f.client, &issuer, &partner, 0).await.unwrap();
    assert_eq!(open.next().await.unwrap().unwrap().position, position);

    let suspend =
        pb::SuspendPartnerRequest { request_id: "s-1".into(), partner_id: partner.clone(), reason: "audit".into() };
    f.client.suspend_partner(with_token(&issuer, &[Role::Admin], None, suspend)).await.unwrap();
    let end = tokio::time::timeout(WAIT, open.next()).await.expect("the stream ends").unwrap().unwrap_err();
    assert_eq!(end.code(), Code::FailedPrecondition, "{end:?}");
    assert!(end.message().contains("suspended"), "{end:?}");
    assert!(tokio::time::timeout(WAIT, open.next()).await.unwrap().is_none());
    let e = subscribe(&mut f.client, &issuer, &partner, 0).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    // Reactivated, it follows its feed again.
    let reactivate = pb::ReactivatePartnerRequest { request_id: "r-1".into(), partner_id: partner.clone() };
    f.client.reactivate_partner(with_token(&issuer, &[Role::Admin], None, reactivate)).await.unwrap();
    let mut again = eventually(WAIT, || {
        let (mut c, issuer, p) = (f.client.clone(), issuer.clone(), partner.clone());
        async move { subscribe(&mut c, &issuer, &p, 0).await.ok() }
    })
    .await;
    assert_eq!(again.next().await.unwrap().unwrap().position, position);
    f.stop.send(true).unwrap();
    f.worker.await.unwrap();
}

#[tokio::test]
async fn a_stopping_server_drops_what_is_still_open_after_its_drain_grace() {
    let env = Env::new().await;
    // Its streams never hear of the shutdown (Draining::never()): such a stream
    // once held every rollout until the kill.
    let grace = Duration::from_millis(500);
    let options = ServeOptions { drain_grace: grace, ..ServeOptions::default() };
    let mut f = feed_server(&env, StreamLimits::default(), options).await;
    let issuer = f.issuer.clone();
    let open = subscribe(&mut f.client, &issuer, &Uuid::now_v7().to_string(), 0).await.unwrap();
    let asked = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), f.serving.stop()).await.expect("stopped within the grace").unwrap();
    assert!(asked.elapsed() >= grace, "the open stream had its grace: {:?}", asked.elapsed());
    drop(open);
    f.stop.send(true).unwrap();
    f.worker.await.unwrap();
}

/// An `acasa` process of the test's environment; killed on drop.
pub(crate) struct Process {
    child: Child,
    log: std::path::PathBuf,
}

impl Process {
    pub(crate) fn start(env: &Env, args: &[&str], vars: &[(&str, String)]) -> Process {
        let log = env.dir.path().join(format!("{}.log", args.join("-")));
        // Appended to: a process started again keeps its predecessor's log.
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_acasa"))
            .args(args)
            .envs(env.vars())
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap();
        Process { child, log }
    }

    pub(crate) fn terminate(&self) {
        let ok = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok);
    }

    /// SIGKILL, and waits for it to end.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], acasa_testkit::free_port().unwrap()))
}

#[tokio::test]
async fn sigterm_ends_open_feed_streams_with_where_to_resume_and_the_server_stops() {
    let env = Env::new().await;
    let addr = free_addr();
    let mut serve = Process::start(
        &env,
        &["serve", "referrals"],
        &[("ACASA_GRPC_ADDR", addr.to_string()), ("ACASA_DRAIN_GRACE_MS", "10000".into())],
    );
    let issuer = TokenIssuer::hs256(&hex::decode(JWT_KEY_HEX).unwrap(), "acasa", "acasa");
    let mut client = eventually(WAIT, || async move {
        let channel = Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.ok()?;
        Some(ReferralServiceClient::new(channel))
    })
    .await;
    let partner = Uuid::now_v7().to_string();
    let js = async_nats::jetstream::new(env.client().await);
    let position = feed_event(&js, &partner).await;
    let mut open = subscribe(&mut client, &issuer, &partner, 0).await.unwrap();
    assert_eq!(open.next().await.unwrap().unwrap().position, position);
    let mut idle = subscribe(&mut client, &issuer, &Uuid::now_v7().to_string(), 7).await.unwrap();

    let asked = Instant::now();
    serve.terminate();
    let end = tokio::time::timeout(Duration::from_secs(5), open.next()).await.expect("ended").unwrap().unwrap_err();
    assert_eq!(end.code(), Code::Unavailable, "{end:?}");
    assert_eq!(end.metadata().get(RESUME_FROM).unwrap().to_str().unwrap(), position.to_string());
    assert!(end.message().contains(&format!("from_position {position}")), "{end:?}");
    // A stream that sent nothing resumes where it was asked to start.
    let end = tokio::time::timeout(Duration::from_secs(5), idle.next()).await.expect("ended").unwrap().unwrap_err();
    assert_eq!(end.code(), Code::Unavailable, "{end:?}");
    assert_eq!(end.metadata().get(RESUME_FROM).unwrap().to_str().unwrap(), "7");
    // The server then stops, well within the grace.
    let status = eventually(Duration::from_secs(8), || {
        let s = serve.exited();
        async move { s }
    })
    .await;
    assert!(status.success(), "{status:?}\n{}", serve.log());
    assert!(asked.elapsed() < Duration::from_secs(8), "{:?}", asked.elapsed());
}

async fn health(addr: SocketAddr, service: &str) -> Option<ServingStatus> {
    let channel = Endpoint::from_shared(format!("http://{addr}")).unwrap().connect_lazy();
    let request = HealthCheckRequest { service: service.into() };
    let answer = tokio::time::timeout(Duration::from_secs(2), HealthClient::new(channel).check(request)).await;
    answer.ok()?.ok().map(|r| r.into_inner().status())
}

/// Waits until `service` at `addr` reports `want`.
async fn health_becomes(addr: SocketAddr, service: &str, want: ServingStatus, within: Duration) {
    eventually(within, || async move { (health(addr, service).await == Some(want)).then_some(()) }).await;
}

#[tokio::test]
async fn health_follows_postgres_and_nats_for_servers_and_workers_and_comes_back_by_itself() {
    let mut env = Env::new().await;
    let (api, probe) = (free_addr(), free_addr());
    let fast = ("ACASA_HEALTH_INTERVAL_MS", "200".to_owned());
    let _serve = Process::start(&env, &["serve", "demo"], &[("ACASA_GRPC_ADDR", api.to_string()), fast.clone()]);
    let _project = Process::start(&env, &["project", "demo"], &[("ACASA_PROBE_ADDR", probe.to_string()), fast]);
    let service = acasa_demo::grpc::CounterService::NAME;
    for (addr, name) in [(api, service), (api, ""), (probe, "")] {
        health_becomes(addr, name, ServingStatus::Serving, WAIT).await;
    }

    // NATS goes away: neither can do its work; both say so, and come back.
    env.nats.kill();
    for (addr, name) in [(api, service), (api, ""), (probe, "")] {
        health_becomes(addr, name, ServingStatus::NotServing, Duration::from_secs(10)).await;
    }
    // Alive all the same: a liveness probe must not restart them for it.
    assert_eq!(health(api, "liveness").await, Some(ServingStatus::Serving));
    assert_eq!(health(probe, "liveness").await, Some(ServingStatus::Serving));
    env.nats.restart().await.unwrap();
    for (addr, name) in [(api, service), (api, ""), (probe, "")] {
        health_becomes(addr, name, ServingStatus::Serving, WAIT).await;
    }

    // Postgres goes away: the server cannot answer queries.
    env._pg.stop();
    health_becomes(api, service, ServingStatus::NotServing, Duration::from_secs(10)).await;
    assert_eq!(health(api, "liveness").await, Some(ServingStatus::Serving));
    env._pg.restart().await.unwrap();
    health_becomes(api, service, ServingStatus::Serving, WAIT).await;
    health_becomes(api, "", ServingStatus::Serving, WAIT).await;
}
