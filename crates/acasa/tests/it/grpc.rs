//! The demo service over gRPC: authentication, validation, read-your-writes,
//! idempotency and one trace from the call into the projection.

use std::{sync::Arc, time::Duration};

use acasa_demo::grpc::CounterService;
use acasa_eventstore::{Repository, RepositoryConfig};
use acasa_projection::Positions;
use acasa_proto::demo::v1::{self as pb, counter_service_client::CounterServiceClient};
use acasa_runtime::{Authenticator, Role, Serving, TokenIssuer};
use opentelemetry::trace::TraceId;
use tonic::{Code, Request, transport::Channel};
use tonic_types::StatusExt as _;

use crate::{
    harness::{Env, JWT_KEY_HEX, eventually, spans},
    projection::worker,
};

struct Api {
    _serving: Serving,
    client: CounterServiceClient<Channel>,
    channel: Channel,
    issuer: TokenIssuer,
}

async fn start(env: &Env) -> Api {
    let key = hex::decode(JWT_KEY_HEX).unwrap();
    let store = env.store().await;
    let service = CounterService::new(
        Repository::new(store, RepositoryConfig::default()),
        Positions::start(env.pool.clone()),
        env.pool.clone(),
    );
    let auth = Authenticator::hs256(&key, "acasa", "acasa");
    let serving = Serving::start(
        "127.0.0.1:0".parse().unwrap(),
        service.routes(&auth),
        &[CounterService::NAME],
        std::future::pending(),
    )
    .await
    .unwrap();
    let channel = Channel::from_shared(format!("http://{}", serving.local_addr)).unwrap().connect().await.unwrap();
    Api {
        _serving: serving,
        client: CounterServiceClient::new(channel.clone()),
        channel,
        issuer: TokenIssuer::hs256(&key, "acasa", "acasa"),
    }
}

impl Api {
    fn token(&self, role: Role) -> String {
        self.issuer.issue("tester", &[role], None, Duration::from_secs(300)).unwrap()
    }

    fn req<T>(&self, role: Role, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        r.metadata_mut().insert("authorization", format!("Bearer {}", self.token(role)).parse().unwrap());
        r
    }
}

fn create(request_id: &str, name: &str) -> pb::CreateCounterRequest {
    pb::CreateCounterRequest { request_id: request_id.into(), name: name.into(), limit: 0 }
}

#[tokio::test]
async fn calls_without_a_valid_token_are_refused_but_health_is_open() {
    let env = Env::new().await;
    let mut api = start(&env).await;
    let e = api.client.create_counter(create("r1", "x")).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let mut forged = Request::new(create("r1", "x"));
    let other = TokenIssuer::hs256(b"someone-elses-key-someone-elses!!", "acasa", "acasa");
    let t = other.issue("u", &[Role::Admin], None, Duration::from_secs(60)).unwrap();
    forged.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
    assert_eq!(api.client.create_counter(forged).await.unwrap_err().code(), Code::Unauthenticated);
    let now = jsonwebtoken::get_current_timestamp();
    let expired = api.issuer.issue_at("u", &[Role::Admin], None, now - 7200, now - 3600).unwrap();
    let mut r = Request::new(create("r1", "x"));
    r.metadata_mut().insert("authorization", format!("Bearer {expired}").parse().unwrap());
    let e = api.client.create_counter(r).await.unwrap_err();
    assert_eq!((e.code(), e.message()), (Code::Unauthenticated, "the token has expired"));
    // A viewer may read but not write.
    let e = api.client.create_counter(api.req(Role::Viewer, create("r1", "x"))).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // Health needs no token.
    let mut health = tonic_health::pb::health_client::HealthClient::new(api.channel.clone());
    let s = health
        .check(tonic_health::pb::HealthCheckRequest { service: CounterService::NAME.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
}

#[tokio::test]
async fn bad_input_names_its_fields_and_business_errors_map_to_statuses() {
    let env = Env::new().await;
    let mut api = start(&env).await;
    let cases: Vec<(pb::CreateCounterRequest, Vec<&str>)> = vec![
        (create("", "ok"), vec!["request_id"]),
        (create("has space", "ok"), vec!["request_id"]),
        (create("r", ""), vec!["name"]),
        (create("r", &"n".repeat(101)), vec!["name"]),
        (pb::CreateCounterRequest { request_id: "r".into(), name: "ok".into(), limit: -1 }, vec!["limit"]),
        (create("", ""), vec!["request_id", "name"]),
    ];
    for (req, fields) in cases {
        let e = api.client.create_counter(api.req(Role::Caseworker, req.clone())).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{req:?}");
        let br = e.get_error_details().bad_request().cloned().unwrap();
        let got: Vec<&str> = br.field_violations.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(got, fields, "{req:?}");
    }
    let bad_inc = pb::IncrementCounterRequest { request_id: "r".into(), counter_id: "nope".into(), amount: 0 };
    let e = api.client.increment_counter(api.req(Role::Caseworker, bad_inc)).await.unwrap_err();
    let br = e.get_error_details().bad_request().cloned().unwrap();
    let got: Vec<&str> = br.field_violations.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(got, ["counter_id", "amount"]);
    // Unknown counter → NOT_FOUND; limit → FAILED_PRECONDITION; duplicate name → ALREADY_EXISTS.
    let missing =
        pb::IncrementCounterRequest { request_id: "r".into(), counter_id: uuid::Uuid::now_v7().to_string(), amount: 1 };
    assert_eq!(
        api.client.increment_counter(api.req(Role::Caseworker, missing)).await.unwrap_err().code(),
        Code::NotFound
    );
    let limited = pb::CreateCounterRequest { request_id: "lim".into(), name: "limited".into(), limit: 5 };
    let id = api.client.create_counter(api.req(Role::Caseworker, limited)).await.unwrap().into_inner().counter_id;
    let over = pb::IncrementCounterRequest { request_id: "over".into(), counter_id: id.clone(), amount: 6 };
    assert_eq!(
        api.client.increment_counter(api.req(Role::Caseworker, over)).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    let e = api.client.create_counter(api.req(Role::Caseworker, create("another", "limited"))).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    assert!(e.message().contains(&id), "the refusal names the existing counter");
}

#[tokio::test]
async fn read_your_writes_idempotency_and_one_trace_into_the_projection() {
    let env = Env::new().await;
    let exporter = spans();
    let mut api = start(&env).await;
    let store = env.store().await;
    let pumping = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut w = worker(&env, &store);
    assert!(w.try_lead().await.unwrap());
    let flag = pumping.clone();
    let pump = tokio::spawn(async move {
        while flag.load(std::sync::atomic::Ordering::Relaxed) {
            w.pump(Duration::from_millis(50)).await.unwrap();
        }
    });

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut req = api.req(Role::Caseworker, create("make-1", "visitors"));
    req.metadata_mut().insert("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01").parse().unwrap());
    let created = api.client.create_counter(req).await.unwrap().into_inner();
    let again =
        api.client.create_counter(api.req(Role::Caseworker, create("make-1", "visitors"))).await.unwrap().into_inner();
    assert_eq!(again, created, "a retried request id returns the original answer");

    let inc =
        pb::IncrementCounterRequest { request_id: "inc-1".into(), counter_id: created.counter_id.clone(), amount: 4 };
    let done = api.client.increment_counter(api.req(Role::Caseworker, inc.clone())).await.unwrap().into_inner();
    let replay = api.client.increment_counter(api.req(Role::Caseworker, inc)).await.unwrap().into_inner();
    assert_eq!((replay.value, replay.position), (done.value, done.position));

    let get = pb::GetCounterRequest { counter_id: created.counter_id.clone(), min_position: done.position };
    let got = api.client.get_counter(api.req(Role::Viewer, get)).await.unwrap().into_inner();
    assert!(got.position >= done.position);
    let counter = got.counter.unwrap();
    assert_eq!((counter.name.as_str(), counter.value, counter.increments), ("visitors", 4, 1));

    let wanted = TraceId::from_hex(trace_id).unwrap();
    eventually(Duration::from_secs(10), || async {
        let found = exporter.get_finished_spans().unwrap_or_default();
        let names: Vec<String> =
            found.iter().filter(|s| s.span_context.trace_id() == wanted).map(|s| s.name.to_string()).collect();
        (names.iter().any(|n| n == "projection.commit") && names.iter().any(|n| n == "eventstore.submit")).then_some(())
    })
    .await;
    pumping.store(false, std::sync::atomic::Ordering::Relaxed);
    pump.await.unwrap();
}

/// The services a server lists over reflection, in v1 and in v1alpha.
pub(crate) async fn reflected(channel: &Channel) -> (Vec<String>, Vec<String>) {
    use tonic_reflection::pb::{v1, v1alpha};
    let request = v1::ServerReflectionRequest {
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(String::new())),
        ..Default::default()
    };
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let mut answers = client.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let v1_names = match answers.message().await.unwrap().unwrap().message_response.unwrap() {
        v1::server_reflection_response::MessageResponse::ListServicesResponse(l) => {
            l.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected answer {other:?}"),
    };
    let request = v1alpha::ServerReflectionRequest {
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
        ..Default::default()
    };
    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let mut answers = client.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let v1alpha_names = match answers.message().await.unwrap().unwrap().message_response.unwrap() {
        v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(l) => {
            l.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected answer {other:?}"),
    };
    (v1_names, v1alpha_names)
}

#[tokio::test]
async fn reflection_lists_exactly_the_services_served_in_v1_and_v1alpha() {
    let env = Env::new().await;
    let api = start(&env).await;
    let (mut v1_names, mut v1alpha_names) = reflected(&api.channel).await;
    v1_names.sort();
    v1alpha_names.sort();
    let mut expected = acasa_runtime::server::advertised(&[CounterService::NAME]);
    expected.sort();
    assert_eq!(v1_names, expected);
    assert_eq!(v1alpha_names, expected, "grpcio-reflection speaks v1alpha only");
    assert!(!v1_names.iter().any(|n| n.contains("registry") || n.contains("referrals")));
}

/// `acasa token` with the development key in `dir`.
fn token_command(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_acasa"))
        .arg("token")
        .args(args)
        .env("ACASA_STATE_DIR", dir)
        .env("ACASA_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn the_token_command_issues_host_tokens_with_their_host_and_the_new_roles() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/jwt.key"), JWT_KEY_HEX).unwrap();
    let auth = Authenticator::hs256(&hex::decode(JWT_KEY_HEX).unwrap(), "acasa", "acasa");
    let principal = |out: std::process::Output| {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        auth.verify(String::from_utf8(out.stdout).unwrap().trim()).unwrap()
    };
    let host = principal(token_command(dir.path(), &["--role", "host", "--host", "h-7", "--subject", "clerk"]));
    assert_eq!((host.roles.as_slice(), host.host_id.as_deref()), ([Role::Host].as_slice(), Some("h-7")));
    assert_eq!((host.subject.as_str(), host.partner_id.as_deref()), ("clerk", None));
    let out = token_command(dir.path(), &["--role", "host"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("a host token needs --host <host id>"));
    let staff = principal(token_command(dir.path(), &["--role", "finance", "--role", "service"]));
    assert_eq!((staff.roles.as_slice(), staff.host_id.as_deref()), ([Role::Finance, Role::Service].as_slice(), None));
    let partner = principal(token_command(dir.path(), &["--role", "partner", "--partner", "p-1"]));
    assert_eq!((partner.partner_id.as_deref(), partner.host_id.as_deref()), (Some("p-1"), None));
}
