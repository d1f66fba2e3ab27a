//! The projection runtime: batches, checkpoints, poison, crash safety, rebuild.

use std::{process::Stdio, sync::Arc, time::Duration};

use acasa_demo::{domain::CounterEvent, projection::CountersProjection};
use acasa_domain::{EncodedEvent, EventCodec as _};
use acasa_eventstore::{EventStore, NewCommit};
use acasa_projection::{Positions, Worker};
use rand::Rng as _;
use sqlx::PgPool;
use uuid::Uuid;

use crate::harness::{Env, eventually, inc, meta, new_counter};

pub fn worker(env: &Env, store: &EventStore) -> Worker<CountersProjection> {
    Worker::new(
        Arc::new(CountersProjection),
        env.pool.clone(),
        store.jetstream().clone(),
        crate::harness::worker_config(store),
    )
}

type Snapshot = Vec<(Uuid, String, i64, i64, i64)>;

async fn snapshot(pool: &PgPool) -> Snapshot {
    sqlx::query_as("SELECT counter_id, name, max_value, value, increments FROM demo.counters ORDER BY counter_id")
        .fetch_all(pool)
        .await
        .unwrap()
}

fn raw_commit(events: Vec<EncodedEvent>) -> NewCommit {
    NewCommit {
        request_key: Uuid::now_v7().to_string(),
        method: String::new(),
        actor: "t".into(),
        request_digest: vec![],
        events,
        recorded_at: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn batches_apply_with_their_checkpoint_and_positions_wait_for_them() {
    let env = Env::new().await;
    let repo = env.repo().await;
    let a = new_counter(&repo, "a").await;
    let b = new_counter(&repo, "b").await;
    let mut last = 0;
    for i in 0..30 {
        let id = if i % 3 == 0 { a } else { b };
        last = repo.execute(&id.to_string(), &inc(2), &meta(&format!("i{i}"))).await.unwrap().position;
    }
    let store = env.store().await;
    let mut w = worker(&env, &store);
    assert!(w.try_lead().await.unwrap());
    // A second worker of the same projection stands by.
    assert!(!worker(&env, &store).try_lead().await.unwrap());
    let positions = Positions::start(env.pool.clone()).with_log(store.jetstream().clone());
    let stream = store.stream_name().to_owned();
    let waiting = {
        let (p, stream) = (positions.clone(), stream.clone());
        tokio::spawn(async move {
            p.wait_for("demo.counters", &stream, last, tokio::time::Instant::now() + Duration::from_secs(20)).await
        })
    };
    assert_eq!(w.catch_up_to(last).await.unwrap(), last);
    assert!(waiting.await.unwrap().unwrap() >= last);
    let rows = snapshot(&env.pool).await;
    assert_eq!(rows.len(), 2);
    let row_a = rows.iter().find(|r| r.0 == a).unwrap();
    assert_eq!((row_a.3, row_a.4), (20, 10));
    let row_b = rows.iter().find(|r| r.0 == b).unwrap();
    assert_eq!((row_b.3, row_b.4), (40, 20));
    let status = acasa_projection::status(&env.pool, "demo.counters").await.unwrap();
    assert_eq!((status.position, status.poison_count), (last, 0));
    // Written but not yet applied: the wait gives up at its deadline.
    let next = repo.execute(&a.to_string(), &inc(1), &meta("next")).await.unwrap().position;
    let err = positions
        .wait_for("demo.counters", &stream, next, tokio::time::Instant::now() + Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(err, acasa_projection::WaitError::Timeout { .. }), "{err:?}");
    // Past the end of the log: refused at once, whatever the deadline (issue 11).
    let end = store.last_sequence().await.unwrap();
    let started = tokio::time::Instant::now();
    let err =
        positions.wait_for("demo.counters", &stream, end + 1, started + Duration::from_secs(30)).await.unwrap_err();
    assert!(matches!(err, acasa_projection::WaitError::BeyondLog { wanted, end: e } if wanted == end + 1 && e == end));
    assert!(started.elapsed() < Duration::from_secs(5), "answered at once");
    let status: tonic::Status = acasa_runtime::ApiError::from(err).into();
    assert_eq!(status.code(), tonic::Code::OutOfRange);
    // At most MAX_WAITERS callers wait at once; the next one is refused, not queued.
    let far = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut waiters = Vec::new();
    for _ in 0..Positions::MAX_WAITERS {
        let (p, stream) = (positions.clone(), stream.clone());
        waiters.push(tokio::spawn(async move { p.wait_for("demo.counters", &stream, next, far).await }));
    }
    eventually(Duration::from_secs(60), || {
        let p = positions.clone();
        async move { (p.waiting() == Positions::MAX_WAITERS).then_some(()) }
    })
    .await;
    let err = positions
        .wait_for("demo.counters", &stream, next, tokio::time::Instant::now() + Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(matches!(err, acasa_projection::WaitError::TooManyWaiters), "{err:?}");
    // Applying the commit releases every waiter.
    assert_eq!(w.catch_up_to(next).await.unwrap(), next);
    for waiter in waiters {
        assert!(waiter.await.unwrap().unwrap() >= next);
    }
}

#[tokio::test]
async fn a_poison_commit_is_recorded_and_does_not_block_the_checkpoint() {
    let env = Env::new().await;
    let repo = env.repo().await;
    let store = env.store().await;
    let good = new_counter(&repo, "good").await;
    // Garbage bytes on a counter subject, published around the event store.
    let garbage_subject = store.subject("counter", &Uuid::now_v7().to_string());
    let garbage_seq =
        store.jetstream().publish(garbage_subject, vec![0xff, 0x01].into()).await.unwrap().await.unwrap().sequence;
    // A well-formed commit whose event type the projection does not know.
    let unknown = EncodedEvent { type_name: "acasa.demo.v1.FromTheFuture".into(), schema_version: 1, data: vec![] };
    let unknown_seq = store
        .append(&store.subject("counter", &Uuid::now_v7().to_string()), 0, &raw_commit(vec![unknown]))
        .await
        .unwrap()
        .sequence;
    // An increment of a counter that was never created (the database refuses it).
    let orphan = CounterEvent::Incremented { amount: 1, value: 1 }.encode();
    let orphan_seq = store
        .append(&store.subject("counter", &Uuid::now_v7().to_string()), 0, &raw_commit(vec![orphan]))
        .await
        .unwrap()
        .sequence;
    let last = repo.execute(&good.to_string(), &inc(3), &meta("after")).await.unwrap().position;

    let mut w = worker(&env, &store);
    assert!(w.try_lead().await.unwrap());
    assert_eq!(w.catch_up_to(last).await.unwrap(), last);
    let status = acasa_projection::status(&env.pool, "demo.counters").await.unwrap();
    assert_eq!(status.position, last, "the checkpoint moved past the poison");
    assert_eq!(status.poison_count, 3);
    let poisoned: Vec<i64> = sqlx::query_scalar("SELECT sequence FROM projection.poison ORDER BY sequence")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(poisoned, [garbage_seq as i64, unknown_seq as i64, orphan_seq as i64]);
    let rows = snapshot(&env.pool).await;
    assert_eq!(rows.len(), 1, "good commits around the poison were applied");
    assert_eq!(rows[0].3, 3);
}

fn spawn_worker(env: &Env) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_acasa"))
        .args(["project", "demo"])
        .envs(env.vars())
        .env("ACASA_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn a_worker_killed_mid_batch_ends_equal_to_a_full_rebuild() {
    let env = Env::new().await;
    let repo = env.repo().await;
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(new_counter(&repo, &format!("c{i}")).await);
    }
    // A backlog large enough that a kill lands inside a batch.
    let mut tasks = Vec::new();
    for (k, id) in ids.iter().copied().enumerate() {
        let repo = repo.clone();
        tasks.push(tokio::spawn(async move {
            let mut last = 0;
            for n in 0..100 {
                last = repo
                    .execute(&id.to_string(), &inc(1 + (n % 3)), &meta(&format!("k{k}-{n}")))
                    .await
                    .unwrap()
                    .position;
            }
            last
        }));
    }
    let mut last = 0;
    for t in tasks {
        last = last.max(t.await.unwrap());
    }
    let last = crate::harness::last_commit(repo.store()).await.max(last);
    let pool = env.pool.clone();
    let checkpoint = || async {
        sqlx::query_scalar::<_, i64>("SELECT position FROM projection.checkpoints WHERE name = 'demo.counters'")
            .fetch_optional(&pool)
            .await
            .unwrap()
            .unwrap_or(0)
    };
    let mut kills = 0;
    for _ in 0..4 {
        let mut child = spawn_worker(&env);
        // Let it get into its backlog, then SIGKILL it wherever it is.
        let after = rand::rng().random_range(150..600);
        tokio::time::sleep(Duration::from_millis(after)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        if checkpoint().await as u64 >= last {
            break;
        }
    }
    assert!(kills >= 1);
    let mut child = spawn_worker(&env);
    eventually(Duration::from_secs(60), || async { (checkpoint().await as u64 >= last).then_some(()) }).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let recovered = snapshot(&env.pool).await;
    assert_eq!(recovered.len(), 40);
    assert!(recovered.iter().all(|r| r.4 == 100), "every increment applied exactly once");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_acasa"))
        .args(["rebuild", "demo.counters"])
        .envs(env.vars())
        .output()
        .unwrap();
    assert!(out.status.success(), "rebuild failed: {}", String::from_utf8_lossy(&out.stderr));
    let rebuilt = snapshot(&env.pool).await;
    assert_eq!(recovered, rebuilt);
}
