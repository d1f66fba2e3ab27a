//! The event store and the command loop against a real JetStream.

use std::{collections::HashSet, sync::Arc, time::Duration};

use acasa_demo::domain::{Counter, CounterEvent};
use acasa_domain::{EncodedEvent, EventCodec as _};
use acasa_eventstore::{
    AppendError, CommandError, KeyedHasher, NewCommit, Repository, RepositoryConfig, Reservation, Reservations,
};
use uuid::Uuid;

use crate::harness::{Env, create, inc, meta, new_counter};

fn commit(request_id: &str, value: i64) -> NewCommit {
    NewCommit {
        request_id: request_id.into(),
        actor: "test".into(),
        request_digest: vec![],
        events: vec![CounterEvent::Incremented { amount: 1, value }.encode()],
        recorded_at: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn appends_conflict_on_a_stale_expected_sequence() {
    let env = Env::new().await;
    let store = env.store().await;
    let subject = store.subject("counter", &Uuid::now_v7().to_string());
    let first = store.append(&subject, 0, &commit("a", 1)).await.unwrap();
    assert!(!first.duplicate);
    // Expecting an empty subject again is a conflict, and nothing is stored.
    let err = store.append(&subject, 0, &commit("b", 2)).await.unwrap_err();
    assert!(matches!(err, AppendError::Conflict { expected: 0 }), "{err:?}");
    // Another subject's writes move the stream but not this subject's sequence.
    let other = store.subject("counter", &Uuid::now_v7().to_string());
    store.append(&other, 0, &commit("c", 1)).await.unwrap();
    let second = store.append(&subject, first.sequence, &commit("b", 2)).await.unwrap();
    assert!(second.sequence > first.sequence + 1);
    let loaded = store.load(&subject, 0).await.unwrap();
    assert_eq!(loaded.iter().map(|c| c.request_id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(loaded[1].sequence, second.sequence);
    assert_eq!(store.load(&subject, first.sequence).await.unwrap().len(), 1);
}

#[tokio::test]
async fn loads_long_aggregates_across_batches() {
    let env = Env::new().await;
    let store = env.store().await;
    let subject = store.subject("counter", &Uuid::now_v7().to_string());
    let mut last = 0;
    for i in 0..600 {
        last = store.append(&subject, last, &commit(&format!("r{i}"), i + 1)).await.unwrap().sequence;
    }
    let loaded = store.load(&subject, 0).await.unwrap();
    assert_eq!(loaded.len(), 600);
    assert!(loaded.windows(2).all(|w| w[0].sequence < w[1].sequence));
    assert_eq!(loaded.last().unwrap().sequence, last);
}

#[tokio::test]
async fn two_hundred_concurrent_commands_on_one_aggregate_all_land_once() {
    let env = Env::new().await;
    // Two replicas of the service, each with its own connection and cache.
    let a = env.repo().await;
    let b = env.repo().await;
    let id = new_counter(&a, "busy").await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let repo = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(
            async move { repo.execute(&id.to_string(), &inc(1), &meta(&format!("inc-{i}"))).await },
        ));
    }
    let mut positions = Vec::new();
    for t in tasks {
        let outcome = t.await.unwrap().unwrap_or_else(|e| panic!("command failed: {e}"));
        positions.push(outcome.position);
    }
    let store = env.store().await;
    let commits = store.load(&store.subject("counter", &id.to_string()), 0).await.unwrap();
    assert_eq!(commits.len(), 201, "one create and 200 increments, none lost, none doubled");
    assert!(commits.windows(2).all(|w| w[0].sequence < w[1].sequence));
    let ids: HashSet<_> = commits.iter().map(|c| c.request_id.clone()).collect();
    assert_eq!(ids.len(), 201);
    let values: Vec<i64> = commits[1..]
        .iter()
        .map(|c| match CounterEvent::decode(&c.events[0]).unwrap() {
            CounterEvent::Incremented { value, .. } => value,
            e => panic!("unexpected {e:?}"),
        })
        .collect();
    assert_eq!(values, (1..=200).collect::<Vec<_>>(), "each increment saw the one before it");
    positions.sort_unstable();
    positions.dedup();
    assert_eq!(positions.len(), 200);
    let (state, _) =
        Repository::<Counter>::new(store, RepositoryConfig::default()).load(&id.to_string()).await.unwrap();
    assert_eq!(state.value, 200);
}

#[tokio::test]
async fn a_request_id_retried_after_the_dedup_window_appends_nothing() {
    let env = Env::new().await;
    let window = Duration::from_secs(1);
    let repo = Repository::<Counter>::new(env.store_with_window(window).await, RepositoryConfig::default());
    let id = new_counter(&repo, "once").await;
    let mut m = meta("pay-1");
    m.digest = vec![7; 32];
    let first = repo.execute(&id.to_string(), &inc(5), &m).await.unwrap();
    assert!(!first.replayed);
    let last_before = repo.store().last_sequence().await.unwrap();
    // Past JetStream's de-duplication window the server no longer knows the
    // message id; the aggregate's own record of request ids still does.
    tokio::time::sleep(window + Duration::from_millis(1500)).await;
    let fresh = Repository::<Counter>::new(env.store_with_window(window).await, RepositoryConfig::default());
    let again = fresh.execute(&id.to_string(), &inc(5), &m).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.position, first.position);
    assert_eq!(again.events, first.events);
    assert_eq!(fresh.store().last_sequence().await.unwrap(), last_before, "nothing appended");
    // The same request id for a different command is refused, not answered.
    let mut other = m.clone();
    other.digest = vec![8; 32];
    let err = fresh.execute(&id.to_string(), &inc(6), &other).await.unwrap_err();
    assert!(matches!(err, CommandError::RequestIdReused), "{err:?}");
}

#[tokio::test]
async fn reservations_grant_a_value_to_exactly_one_owner() {
    let env = Env::new().await;
    let store = env.store().await;
    let hasher = KeyedHasher::new(vec![1; 32]);
    let reservations = Arc::new(Reservations::open(store.jetstream(), "demo", 1, hasher).await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..16 {
        let r = reservations.clone();
        tasks.push(tokio::spawn(async move {
            (i, r.reserve("idnp", "2000000000001", &format!("owner-{i}")).await.unwrap())
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (i, r) = t.await.unwrap();
        if r == Reservation::Granted {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1);
    let winner = format!("owner-{}", winners[0]);
    assert_eq!(
        reservations.reserve("idnp", "2000000000001", "late").await.unwrap(),
        Reservation::Held { owner: winner.clone() }
    );
    // Releasing by a non-holder does nothing; by the holder frees it.
    reservations.release("idnp", "2000000000001", "late").await.unwrap();
    assert!(matches!(reservations.reserve("idnp", "2000000000001", "x").await.unwrap(), Reservation::Held { .. }));
    reservations.release("idnp", "2000000000001", &winner).await.unwrap();
    assert_eq!(reservations.reserve("idnp", "2000000000001", "x").await.unwrap(), Reservation::Granted);
    // Request ids map to one creation id forever.
    let (a, fresh_a) = reservations.id_for_request("counter", "req-1").await.unwrap();
    let (b, fresh_b) = reservations.id_for_request("counter", "req-1").await.unwrap();
    assert_eq!((a, fresh_a, fresh_b), (b, true, false));
}

#[tokio::test]
async fn a_rejection_is_checked_against_the_latest_log() {
    let env = Env::new().await;
    let a = env.repo().await;
    let b = env.repo().await;
    let id = Uuid::now_v7();
    // `b` caches the counter as missing…
    assert_eq!(b.load(&id.to_string()).await.unwrap().1, 0);
    // …then another replica creates it…
    a.execute(&id.to_string(), &create(id, "late", 0), &meta("c")).await.unwrap();
    // …and `b` does not wrongly answer NOT_FOUND from its stale cache.
    let outcome = b.execute(&id.to_string(), &inc(2), &meta("i")).await.unwrap();
    assert_eq!(outcome.events, vec![CounterEvent::Incremented { amount: 2, value: 2 }]);
}

#[tokio::test]
async fn nats_killed_and_restarted_under_load_loses_no_acknowledged_commit() {
    let mut env = Env::new().await;
    let repo = env.repo().await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(new_counter(&repo, &format!("load-{i}")).await);
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for (w, id) in ids.iter().copied().enumerate() {
        let repo = repo.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 5_000 {
                let rid = format!("w{w}-{n}");
                if let Ok(o) = repo.execute(&id.to_string(), &inc(1), &meta(&rid)).await {
                    acked.push((rid, o.position));
                }
                n += 1;
            }
            (id, acked)
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    env.nats.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.nats.restart().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let store = env.store().await;
    let mut total = 0;
    for w in writers {
        let (id, acked) = w.await.unwrap();
        total += acked.len();
        let stored: HashSet<(String, u64)> = store
            .load(&store.subject("counter", &id.to_string()), 0)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.request_id, c.sequence))
            .collect();
        for a in &acked {
            assert!(stored.contains(a), "acknowledged commit {a:?} is missing after the restart");
        }
    }
    assert!(total > 50, "the writers made progress ({total} acknowledged)");
}

#[tokio::test]
async fn undecodable_events_are_an_error_not_a_panic() {
    let env = Env::new().await;
    let store = env.store().await;
    let id = Uuid::now_v7();
    let subject = store.subject("counter", &id.to_string());
    let bad = NewCommit {
        request_id: "x".into(),
        actor: "t".into(),
        request_digest: vec![],
        events: vec![EncodedEvent { type_name: "acasa.demo.v1.Unknown".into(), schema_version: 9, data: vec![1] }],
        recorded_at: chrono::Utc::now(),
    };
    store.append(&subject, 0, &bad).await.unwrap();
    let repo = Repository::<Counter>::new(store, RepositoryConfig::default());
    let err = repo.execute(&id.to_string(), &inc(1), &meta("y")).await.unwrap_err();
    assert!(matches!(err, CommandError::Store(acasa_eventstore::StoreError::Decode { .. })), "{err:?}");
}
