//! The event store and the command loop against a real JetStream.

use std::{collections::HashSet, sync::Arc, time::Duration};

use acasa_demo::domain::{Counter, CounterEvent};
use acasa_domain::{EncodedEvent, EventCodec as _};
use acasa_eventstore::{AppendError, CommandError, NewCommit, Repository, RepositoryConfig};
use uuid::Uuid;

use crate::harness::{Env, create, inc, meta, new_counter};

fn commit(request_id: &str, value: i64) -> NewCommit {
    NewCommit {
        request_key: request_id.into(),
        method: String::new(),
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
    assert_eq!(loaded.iter().map(|c| c.request_key.as_str()).collect::<Vec<_>>(), ["a", "b"]);
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
    two_hundred_on_one(env.repo().await, env.repo().await, env.store().await).await;
}

#[tokio::test]
async fn on_a_three_node_cluster_two_replicas_lose_no_update() {
    let cluster = acasa_testkit::NatsCluster::start().await.unwrap();
    let mut stores = cluster_stores(&cluster, 3).await;
    let a = Repository::<Counter>::new(stores.remove(0), RepositoryConfig::default());
    let b = Repository::<Counter>::new(stores.remove(0), RepositoryConfig::default());
    two_hundred_on_one(a, b, stores.remove(0)).await;
}

async fn two_hundred_on_one(a: Repository<Counter>, b: Repository<Counter>, store: acasa_eventstore::EventStore) {
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
    // A replica's direct get may lag the leader a moment on a cluster.
    let subject = store.subject("counter", &id.to_string());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut commits = store.load(&subject, 0).await.unwrap();
    while commits.len() < 201 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        commits = store.load(&subject, 0).await.unwrap();
    }
    assert_eq!(commits.len(), 201, "one create and 200 increments, none lost, none doubled");
    assert!(commits.windows(2).all(|w| w[0].sequence < w[1].sequence));
    let ids: HashSet<_> = commits.iter().map(|c| c.request_key.clone()).collect();
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
                    acked.push((crate::harness::key_of(&rid), o.position));
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
            .map(|c| (c.request_key, c.sequence))
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
        request_key: "x".into(),
        method: String::new(),
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

/// `n` creations of counters with one name race over `stores` (each with its
/// own connection and group writer, as separate replicas would), in waves of
/// 16: exactly one wins the name's claim, every other is refused with the
/// winner's id, and nothing of theirs is stored — no commit, no claim, no
/// request record.
async fn one_holder_however_creations_race(stores: Vec<acasa_eventstore::EventStore>, n: usize) {
    use acasa_domain::Plain;
    let repos: Vec<Repository<Counter>> =
        stores.iter().map(|s| Repository::new(s.clone(), RepositoryConfig::default())).collect();
    let name = format!("race-{}", Uuid::now_v7().simple());
    let mut results = Vec::new();
    for wave in 0..n.div_ceil(16) {
        let mut tasks = Vec::new();
        for i in wave * 16..((wave + 1) * 16).min(n) {
            let repo = repos[i % repos.len()].clone();
            let name = name.clone();
            tasks.push(tokio::spawn(async move {
                let id = Uuid::now_v7();
                let m = meta(&format!("create-{i}-{id}"));
                (id, m.clone(), repo.execute_new_with(&id.to_string(), &create(id, &name, 0), &m, &Plain).await)
            }));
        }
        for t in tasks {
            results.push(t.await.unwrap());
        }
    }
    let winners: Vec<Uuid> = results.iter().filter(|(_, _, r)| r.is_ok()).map(|(id, _, _)| *id).collect();
    assert_eq!(winners.len(), 1, "exactly one creation wins");
    let winner = winners[0].to_string();
    for (id, _, r) in &results {
        match r {
            Ok(o) => assert_eq!(o.id, id.to_string()),
            Err(CommandError::Claimed { kind, owner }) => {
                assert_eq!((*kind, owner.as_str()), ("counter-name", winner.as_str()));
            }
            Err(e) => panic!("a racing creation answered {e:?}, not the holder"),
        }
    }
    let store = &stores[0];
    let claim = store.claim("counter-name", &name, true).await.unwrap();
    assert_eq!(claim.holder.as_deref(), Some(winner.as_str()));
    for (id, m, r) in &results {
        let subject = store.subject("counter", &id.to_string());
        let commits = store.load(&subject, 0).await.unwrap();
        let key = store.hasher().request_key(&m.scope, m.request_id.as_str());
        let record = store.request(&key, true).await.unwrap();
        if r.is_ok() {
            assert_eq!((commits.len(), record.is_some()), (1, true));
        } else {
            assert!(commits.is_empty() && record.is_none(), "a refused creation left something behind");
        }
    }
}

#[tokio::test]
async fn racing_creations_leave_exactly_one_holder_of_a_claim() {
    let env = Env::new().await;
    let stores = vec![env.store().await, env.store().await, env.store().await, env.store().await];
    one_holder_however_creations_race(stores, 48).await;
}

#[tokio::test]
async fn on_a_three_node_cluster_racing_claims_answer_the_holder_not_unavailable() {
    let cluster = acasa_testkit::NatsCluster::start().await.unwrap();
    let stores = cluster_stores(&cluster, 4).await;
    // As the reviewer's client did: 80 registrations in waves of 16.
    one_holder_however_creations_race(stores, 80).await;
}

/// Two stores of one stream, as two replicas of a service would have.
async fn cluster_stores(cluster: &acasa_testkit::NatsCluster, n: usize) -> Vec<acasa_eventstore::EventStore> {
    let mut stores = Vec::new();
    for i in 0..n {
        let urls = cluster.urls();
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(urls[i % urls.len()].as_str())
            .await
            .unwrap();
        let mut settings = crate::harness::settings("demo");
        settings.replicas = 3;
        stores.push(acasa_eventstore::EventStore::open(client, settings).await.unwrap());
    }
    stores
}

#[tokio::test]
async fn a_request_id_belongs_to_one_call_of_one_caller() {
    let env = Env::new().await;
    request_ids_are_one_call(env.store().await, env.store().await).await;
}

#[tokio::test]
async fn on_a_three_node_cluster_a_request_id_belongs_to_one_call_and_batches_land_where_answered() {
    let cluster = acasa_testkit::NatsCluster::start().await.unwrap();
    let mut stores = cluster_stores(&cluster, 2).await;
    let (one, other) = (stores.remove(0), stores.remove(0));
    request_ids_are_one_call(one.clone(), other).await;
    commits_land_where_answered(one).await;
}

async fn request_ids_are_one_call(store: acasa_eventstore::EventStore, replica: acasa_eventstore::EventStore) {
    let repo = Repository::<Counter>::new(store, RepositoryConfig::default());
    let a = new_counter(&repo, "a").await;
    let b = new_counter(&repo, "b").await;
    let call = |method: &str, digest: u8| {
        let mut m = meta("same-id");
        m.method = method.into();
        m.digest = vec![digest; 32];
        m
    };
    let first = repo.execute(&a.to_string(), &inc(1), &call("Increment", 1)).await.unwrap();
    let again = repo.execute(&a.to_string(), &inc(1), &call("Increment", 1)).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.position, first.position);
    // Another method with a byte-identical body, on the same aggregate.
    let err = repo.execute(&a.to_string(), &inc(1), &call("Decrement", 2)).await.unwrap_err();
    assert!(matches!(err, CommandError::RequestIdReused), "{err:?}");
    // The same method on another aggregate (another body): refused through
    // the request record, and nothing appended.
    let last = repo.store().last_sequence().await.unwrap();
    let err = repo.execute(&b.to_string(), &inc(1), &call("Increment", 3)).await.unwrap_err();
    assert!(matches!(err, CommandError::RequestIdReused), "{err:?}");
    assert_eq!(repo.store().last_sequence().await.unwrap(), last);
    // Another caller's request id of the same text is its own.
    let mut other = call("Increment", 3);
    other.scope = "api:someone-else".into();
    let theirs = repo.execute(&b.to_string(), &inc(1), &other).await.unwrap();
    assert!(!theirs.replayed && theirs.position > last);
    // A fresh repository (another replica) knows all of it from the log.
    let fresh = Repository::<Counter>::new(replica, RepositoryConfig::default());
    let err = fresh.execute(&b.to_string(), &inc(1), &call("Increment", 3)).await.unwrap_err();
    assert!(matches!(err, CommandError::RequestIdReused), "{err:?}");
    assert_eq!(fresh.execute(&a.to_string(), &inc(1), &call("Increment", 1)).await.unwrap().position, first.position);
}

#[tokio::test]
async fn concurrent_commands_share_batches_and_each_commit_is_where_its_answer_says() {
    let env = Env::new().await;
    commits_land_where_answered(env.store().await).await;
}

async fn commits_land_where_answered(store: acasa_eventstore::EventStore) {
    use futures::StreamExt as _;
    let repo = Repository::<Counter>::new(store.clone(), RepositoryConfig::default());
    let mut counters = Vec::new();
    for i in 0..64 {
        counters.push(new_counter(&repo, &format!("c{i}")).await);
    }
    let results: Vec<(Uuid, String, u64)> = futures::stream::iter(0..1280)
        .map(|i| {
            let repo = repo.clone();
            let id = counters[i % counters.len()];
            async move {
                let request = format!("inc-{i}");
                let o = repo.execute(&id.to_string(), &inc(1), &meta(&request)).await.unwrap();
                (id, request, o.position)
            }
        })
        .buffer_unordered(128)
        .collect()
        .await;
    let mut positions = HashSet::new();
    for (id, request, position) in results {
        assert!(positions.insert(position), "two answers name one position");
        let c = store.get(position).await.unwrap();
        let key = crate::harness::key_of(&request);
        assert_eq!((c.aggregate_id(), c.request_key.as_str()), (id.to_string().as_str(), key.as_str()));
    }
}

#[tokio::test]
async fn reservations_of_an_earlier_version_become_claims() {
    use acasa_domain::Plain;
    use async_nats::jetstream::kv;
    let env = Env::new().await;
    let store = env.store().await;
    // A counter created before claims existed: its commit, and its name in the old bucket.
    let id = Uuid::now_v7();
    let created = NewCommit {
        events: vec![CounterEvent::Created { id, name: "legacy".into(), limit: 0 }.encode()],
        ..commit("old-create", 0)
    };
    store.append(&store.subject("counter", &id.to_string()), 0, &created).await.unwrap();
    let bucket = store
        .jetstream()
        .create_key_value(kv::Config { bucket: "acasa-demo-reservations".into(), history: 1, ..Default::default() })
        .await
        .unwrap();
    let h = store.hasher();
    bucket.put(format!("counter-name.{}", h.hash("counter-name", "legacy")), id.to_string().into()).await.unwrap();
    // Left by a crash before its holder's commit: not imported.
    let never = Uuid::now_v7().to_string();
    bucket.put(format!("counter-name.{}", h.hash("counter-name", "dangling")), never.into()).await.unwrap();
    bucket.put(format!("request.counter.{}", h.hash("request.counter", "r")), id.to_string().into()).await.unwrap();

    assert_eq!(store.import_reservations(&[("counter-name", "counter")]).await.unwrap(), 1);
    assert!(store.jetstream().get_key_value("acasa-demo-reservations").await.is_err(), "the bucket is gone");
    assert_eq!(store.import_reservations(&[("counter-name", "counter")]).await.unwrap(), 0);

    let repo = Repository::<Counter>::new(store.clone(), RepositoryConfig::default());
    let other = Uuid::now_v7();
    let err = repo
        .execute_new_with(&other.to_string(), &create(other, "legacy", 0), &meta("new-1"), &Plain)
        .await
        .unwrap_err();
    assert!(matches!(&err, CommandError::Claimed { owner, .. } if *owner == id.to_string()), "{err:?}");
    repo.execute_new_with(&other.to_string(), &create(other, "dangling", 0), &meta("new-2"), &Plain).await.unwrap();
}

/// Counts the events it decodes.
#[derive(Default)]
struct Counting(std::sync::atomic::AtomicUsize);

impl acasa_domain::Codec<CounterEvent> for Counting {
    fn encode(&self, event: &CounterEvent) -> Result<EncodedEvent, acasa_domain::EncodeError> {
        Ok(event.encode())
    }
    fn decode(&self, event: &EncodedEvent) -> Result<CounterEvent, acasa_domain::DecodeError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        CounterEvent::decode(event)
    }
}

/// Issue 11: a loaded aggregate is read again from the log once older than
/// the cache's lifetime, so what a replica decoded (personal data) is held for
/// a bounded time.
#[tokio::test]
async fn a_cached_aggregate_is_read_again_after_the_cache_lifetime() {
    let env = Env::new().await;
    let writer = env.repo().await;
    let id = new_counter(&writer, "ttl").await;
    for i in 0..3 {
        writer.execute(&id.to_string(), &inc(1), &meta(&format!("ttl-{i}"))).await.unwrap();
    }
    for (ttl, second_load_decodes) in [(Duration::from_secs(3600), 0), (Duration::ZERO, 4)] {
        let config = RepositoryConfig { cache_ttl: ttl, ..RepositoryConfig::default() };
        let reader: Repository<Counter> = Repository::new(env.store().await, config);
        let codec = Counting::default();
        reader.load_with(&id.to_string(), &codec).await.unwrap();
        assert_eq!(codec.0.swap(0, std::sync::atomic::Ordering::Relaxed), 4, "the first load reads the history");
        reader.load_with(&id.to_string(), &codec).await.unwrap();
        assert_eq!(codec.0.load(std::sync::atomic::Ordering::Relaxed), second_load_decodes, "ttl {ttl:?}");
    }
}

/// Issue 11: a retried creation that (reading a lagging replica) did not find
/// its first attempt's record, minted another id and found the claim held by
/// the first attempt's aggregate, answers the first attempt — never
/// ALREADY_EXISTS naming itself.
#[tokio::test]
async fn a_retried_creation_that_missed_its_record_answers_the_first_attempt() {
    let env = Env::new().await;
    let repo = env.repo().await;
    let first = Uuid::now_v7();
    let meta = meta("create-once");
    let done = repo.execute(&first.to_string(), &create(first, "unique-name", 0), &meta).await.unwrap();
    let again = Uuid::now_v7();
    let command = create(again, "unique-name", 0);
    let step =
        acasa_eventstore::Step { id: again.to_string(), command: &command, codec: &acasa_domain::Plain, new: true };
    let replay = repo.execute_step(step, &meta).await.unwrap();
    assert!(replay.replayed);
    assert_eq!((replay.id, replay.position), (first.to_string(), done.position));
}

/// Two aggregates of two kinds in one command: a budget and an
/// application (the grants approval's shape).
mod pair {
    use acasa_domain::{
        Aggregate, DecodeError, EncodedEvent, EventCodec, Rejection, RejectionKind,
        pair::{Either, Pair},
    };

    #[derive(Clone, Debug, Default)]
    pub struct Budget {
        pub left: Option<i64>,
    }

    #[derive(Clone, Debug, Default)]
    pub struct Application {
        pub approved: Option<i64>,
    }

    #[derive(Clone, Debug, PartialEq)]
    pub struct Moved(pub &'static str, pub i64);

    impl EventCodec for Moved {
        fn encode(&self) -> EncodedEvent {
            EncodedEvent { type_name: self.0.into(), schema_version: 1, data: self.1.to_be_bytes().to_vec() }
        }

        fn decode(e: &EncodedEvent) -> Result<Self, DecodeError> {
            let bytes: [u8; 8] = e.data.as_slice().try_into().map_err(|_| DecodeError::new(e, "not 8 bytes"))?;
            let n = i64::from_be_bytes(bytes);
            match e.type_name.as_str() {
                "test.Opened" => Ok(Moved("test.Opened", n)),
                "test.Spent" => Ok(Moved("test.Spent", n)),
                "test.Approved" => Ok(Moved("test.Approved", n)),
                _ => Err(DecodeError::new(e, "unknown")),
            }
        }
    }

    #[derive(Debug, PartialEq)]
    pub enum Refused {
        OverBudget,
        Twice,
    }

    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(if *self == Self::OverBudget { "over budget" } else { "approved before" })
        }
    }

    impl std::error::Error for Refused {}

    impl Rejection for Refused {
        fn kind(&self) -> RejectionKind {
            RejectionKind::FailedPrecondition
        }
    }

    impl Aggregate for Budget {
        type Command = Moved;
        type Event = Moved;
        type Error = Refused;
        const KIND: &'static str = "budget";

        fn decide(&self, c: &Moved) -> Result<Vec<Moved>, Refused> {
            match (self.left, c.0) {
                (None, "test.Opened") => Ok(vec![c.clone()]),
                (Some(left), "test.Spent") if left >= c.1 => Ok(vec![c.clone()]),
                _ => Err(Refused::OverBudget),
            }
        }

        fn evolve(&mut self, e: &Moved) {
            self.left = Some(if e.0 == "test.Opened" { e.1 } else { self.left.unwrap_or(0) - e.1 });
        }

        fn exists(&self) -> bool {
            self.left.is_some()
        }
    }

    impl Aggregate for Application {
        type Command = Moved;
        type Event = Moved;
        type Error = Refused;
        const KIND: &'static str = "application";

        fn decide(&self, c: &Moved) -> Result<Vec<Moved>, Refused> {
            if self.approved.is_some() { Err(Refused::Twice) } else { Ok(vec![c.clone()]) }
        }

        fn evolve(&mut self, e: &Moved) {
            self.approved = Some(e.1);
        }

        fn exists(&self) -> bool {
            self.approved.is_some()
        }
    }

    pub type Grant = Pair<Budget, Application>;

    pub fn spend(n: i64) -> Either<Moved, Moved> {
        Either::First(Moved("test.Spent", n))
    }

    pub fn approve(n: i64) -> Either<Moved, Moved> {
        Either::Second(Moved("test.Approved", n))
    }
}

#[tokio::test]
async fn a_budget_and_an_application_commit_together_or_not_at_all_under_racing_approvals() {
    use acasa_domain::pair::Either;
    use acasa_eventstore::Step;
    use pair::{Grant, Moved, Refused, approve, spend};

    let env = Env::new().await;
    let store = env.store().await;
    let repo: Repository<Grant> = Repository::new(store.clone(), RepositoryConfig::default());
    let budget = Uuid::now_v7().to_string();
    let open = Either::First(Moved("test.Opened", 100));
    repo.execute(&budget, &open, &meta("open")).await.unwrap();
    // Ten approvals of 30 race for a budget of 100: three win, both sides
    // written; the others write nothing at all.
    let apps: Vec<String> = (0..10).map(|_| Uuid::now_v7().to_string()).collect();
    let answers = futures::future::join_all(apps.iter().enumerate().map(|(i, app)| {
        let repo = repo.clone();
        let budget = budget.clone();
        let app = app.clone();
        async move {
            let (s, a) = (spend(30), approve(30));
            let steps = [
                Step { id: budget, command: &s, codec: &acasa_domain::Plain, new: false },
                Step { id: app, command: &a, codec: &acasa_domain::Plain, new: true },
            ];
            repo.execute_all(&steps, &meta(&format!("approve-{i}"))).await
        }
    }))
    .await;
    let won: Vec<usize> = answers.iter().enumerate().filter(|(_, a)| a.is_ok()).map(|(i, _)| i).collect();
    assert_eq!(won.len(), 3, "{answers:?}");
    for a in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert!(matches!(a, CommandError::Rejected(Either::First(Refused::OverBudget))), "{a:?}");
    }
    for (i, app) in apps.iter().enumerate() {
        let written = store.load(&store.subject("application", app), 0).await.unwrap();
        assert_eq!(written.len(), usize::from(won.contains(&i)), "application {i}");
    }
    let spent = store.load(&store.subject("budget", &budget), 0).await.unwrap();
    assert_eq!(spent.len(), 4, "opened, then three spends");
    // The application refuses (approved before): the budget is not touched.
    let (s, a) = (spend(5), approve(5));
    let steps = [
        Step { id: budget.clone(), command: &s, codec: &acasa_domain::Plain, new: false },
        Step { id: apps[won[0]].clone(), command: &a, codec: &acasa_domain::Plain, new: false },
    ];
    let e = repo.execute_all(&steps, &meta("again")).await.unwrap_err();
    assert!(matches!(e, CommandError::Rejected(Either::Second(Refused::Twice))), "{e:?}");
    assert_eq!(store.load(&store.subject("budget", &budget), 0).await.unwrap().len(), 4);
    // A retry of a winning approval answers the first, however late.
    let (s, a) = (spend(30), approve(30));
    let steps = [
        Step { id: budget.clone(), command: &s, codec: &acasa_domain::Plain, new: false },
        Step { id: apps[won[0]].clone(), command: &a, codec: &acasa_domain::Plain, new: false },
    ];
    let replay = repo.execute_all(&steps, &meta(&format!("approve-{}", won[0]))).await.unwrap();
    assert!(replay.iter().all(|o| o.replayed), "{replay:?}");
    assert_eq!(store.load(&store.subject("budget", &budget), 0).await.unwrap().len(), 4);
    // Each side is loaded from its own subject kind (a fresh repository reads the log).
    let fresh: Repository<Grant> = Repository::new(store.clone(), RepositoryConfig::default());
    // (Both sides' events here are one type, so only the subjects tell them apart.)
    let (state, version) = fresh.load_kind("application", &apps[won[0]]).await.unwrap();
    assert!(version > 0 && acasa_domain::Aggregate::exists(&state), "{state:?}");
    let (state, _) = fresh.load(&budget).await.unwrap();
    assert_eq!(state.first().left, Some(10));
    let (state, version) = fresh.load(&apps[won[0]]).await.unwrap();
    assert_eq!(
        (version, acasa_domain::Aggregate::exists(&state)),
        (0, false),
        "the first side's kind holds no application"
    );
}

#[tokio::test]
async fn commands_meeting_on_one_aggregate_are_decided_in_turn_and_stored_in_one_batch() {
    use acasa_domain::pair::Either;
    use acasa_eventstore::{Coalescer, GroupCommand, Step};
    use pair::{Grant, Moved, Refused, approve, spend};

    let env = Env::new().await;
    let store = env.store().await;
    let repo: Repository<Grant> = Repository::new(store.clone(), RepositoryConfig::default());
    let budget = Uuid::now_v7().to_string();
    repo.execute(&budget, &Either::First(Moved("test.Opened", 100)), &meta("open")).await.unwrap();
    let apps: Vec<String> = (0..5).map(|_| Uuid::now_v7().to_string()).collect();
    let group: Vec<GroupCommand<Either<Moved, Moved>>> = apps
        .iter()
        .enumerate()
        .map(|(i, app)| GroupCommand {
            steps: vec![(budget.clone(), spend(30), false), (app.clone(), approve(30), true)],
            meta: meta(&format!("group-{i}")),
        })
        .collect();
    let (answers, together) = repo.execute_group_counted(&group).await;
    assert_eq!(together, 3, "the three that fit share one batch");
    // Three fit, decided in turn on the budget as the earlier left it; the
    // others are refused as they would be alone.
    let won: Vec<usize> = answers.iter().enumerate().filter(|(_, a)| a.is_ok()).map(|(i, _)| i).collect();
    assert_eq!(won, [0, 1, 2], "{answers:?}");
    for a in &answers[3..] {
        assert!(matches!(a, Err(CommandError::Rejected(Either::First(Refused::OverBudget)))), "{a:?}");
    }
    // One batch: the three approvals' messages (a record and two commits
    // each) are contiguous in the stream.
    let positions: Vec<u64> =
        answers[..3].iter().flat_map(|a| a.as_ref().unwrap().iter().map(|o| o.position)).collect();
    let (lo, hi) = (positions.iter().min().unwrap(), positions.iter().max().unwrap());
    assert!(hi - lo < 9, "{positions:?}");
    let spends = store.load(&store.subject("budget", &budget), 0).await.unwrap();
    assert_eq!(spends.len(), 4, "opened, then three spends, each its own commit");
    let keys: std::collections::HashSet<_> = spends.iter().map(|c| c.request_key.clone()).collect();
    assert_eq!(keys.len(), 4, "each commit keeps its own request");
    // A retry of a grouped command, alone, answers what the group stored.
    let steps_of = |i: usize| {
        [
            Step { id: budget.clone(), command: &group[i].steps[0].1, codec: &acasa_domain::Plain, new: false },
            Step { id: apps[i].clone(), command: &group[i].steps[1].1, codec: &acasa_domain::Plain, new: false },
        ]
    };
    let replay = repo.execute_all(&steps_of(1), &meta("group-1")).await.unwrap();
    assert!(replay.iter().all(|o| o.replayed));
    assert_eq!(
        replay.iter().map(|o| o.position).collect::<Vec<_>>(),
        answers[1].as_ref().unwrap().iter().map(|o| o.position).collect::<Vec<_>>()
    );

    // Another replica writes the budget meanwhile: the group's batch is
    // refused (stale), and each command, alone, decides again on what is stored.
    let other: Repository<Grant> = Repository::new(store.clone(), RepositoryConfig::default());
    let budget2 = Uuid::now_v7().to_string();
    repo.execute(&budget2, &Either::First(Moved("test.Opened", 50)), &meta("open-2")).await.unwrap();
    other.execute(&budget2, &spend(20), &meta("elsewhere")).await.unwrap();
    let late: Vec<String> = (0..3).map(|_| Uuid::now_v7().to_string()).collect();
    let group: Vec<GroupCommand<Either<Moved, Moved>>> = late
        .iter()
        .enumerate()
        .map(|(i, app)| GroupCommand {
            steps: vec![(budget2.clone(), spend(20), false), (app.clone(), approve(20), true)],
            meta: meta(&format!("late-{i}")),
        })
        .collect();
    let (answers, together) = repo.execute_group_counted(&group).await;
    assert_eq!(together, 0, "the stale batch was refused; each went alone");
    assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 1, "30 were left, not 50: {answers:?}");
    assert_eq!(store.load(&store.subject("budget", &budget2), 0).await.unwrap().len(), 3);

    // Through the coalescer: twelve approvals of 10 racing on a budget of 100.
    let budget3 = Uuid::now_v7().to_string();
    repo.execute(&budget3, &Either::First(Moved("test.Opened", 100)), &meta("open-3")).await.unwrap();
    let lanes = Coalescer::new(repo.clone(), 64);
    let racing = (0..12).map(|i| {
        let (lanes, budget3) = (lanes.clone(), budget3.clone());
        async move {
            let command = GroupCommand {
                steps: vec![(budget3.clone(), spend(10), false), (Uuid::now_v7().to_string(), approve(10), true)],
                meta: meta(&format!("lane-{i}")),
            };
            lanes.execute(&budget3, command).await
        }
    });
    let answers = futures::future::join_all(racing).await;
    assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 10, "{answers:?}");
    assert_eq!(store.load(&store.subject("budget", &budget3), 0).await.unwrap().len(), 11);
}
