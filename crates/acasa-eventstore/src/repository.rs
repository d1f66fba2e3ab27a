//! The command loop over a cache of loaded aggregates.
//!
//! Commands on one aggregate are serialised inside a process by a per-aggregate
//! lock, so only writers in other replicas can conflict; those conflicts are
//! caught by the expected-sequence header and resolved by catching up from the
//! cached version and deciding again, a bounded number of times. A cached
//! aggregate may be stale (another replica wrote it): that is safe, because a
//! stale version makes the append conflict, and a rejection is only returned
//! after checking the log for newer commits.

use std::{
    collections::HashMap,
    num::NonZeroUsize,
    sync::{Arc, Mutex},
    time::Duration,
};

use acasa_domain::{Aggregate, Codec, EventCodec, Plain, RequestId};
use chrono::Utc;
use lru::LruCache;
use rand::Rng as _;

use crate::{
    commit::{NewCommit, StoredCommit},
    error::{AppendError, CommandError, StoreError},
    store::EventStore,
};

/// Tuning of a [`Repository`].
#[derive(Clone, Copy, Debug)]
pub struct RepositoryConfig {
    /// How many aggregates to keep loaded.
    pub cache_capacity: usize,
    /// Attempts on optimistic-concurrency conflicts before giving up with
    /// [`CommandError::Contention`].
    pub max_conflict_attempts: u32,
    /// Attempts when the broker does not answer (the commit may or may not be
    /// stored; retrying with the same request id is safe).
    pub max_unavailable_attempts: u32,
}

impl Default for RepositoryConfig {
    fn default() -> Self {
        Self { cache_capacity: 10_000, max_conflict_attempts: 10, max_unavailable_attempts: 6 }
    }
}

/// Who asked for a command, and its idempotency key.
#[derive(Clone, Debug)]
pub struct CommandMeta {
    /// The client's request id.
    pub request_id: RequestId,
    /// The authenticated actor's id.
    pub actor: String,
    /// SHA-256 of the command's canonical encoding (empty: not checked).
    pub digest: Vec<u8>,
}

/// The result of a command.
#[derive(Clone, Debug)]
pub struct Outcome<A: Aggregate> {
    /// The stream sequence of the commit (the position for read-your-writes).
    pub position: u64,
    /// The events of the commit.
    pub events: Vec<A::Event>,
    /// The command had already been executed with this request id: nothing
    /// was appended and this is the original result.
    pub replayed: bool,
}

#[derive(Clone, Debug)]
struct RequestRecord {
    sequence: u64,
    digest: Vec<u8>,
}

#[derive(Clone, Debug, Default)]
struct Loaded<A> {
    state: A,
    version: u64,
    requests: HashMap<String, RequestRecord>,
}

type Slot<A> = Arc<tokio::sync::Mutex<Option<Loaded<A>>>>;

/// Loads, decides and appends commands for one aggregate type.
pub struct Repository<A: Aggregate> {
    store: EventStore,
    cache: Arc<Mutex<LruCache<String, Slot<A>>>>,
    config: RepositoryConfig,
}

impl<A: Aggregate> Clone for Repository<A> {
    fn clone(&self) -> Self {
        Self { store: self.store.clone(), cache: self.cache.clone(), config: self.config }
    }
}

impl<A: Aggregate> std::fmt::Debug for Repository<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository").field("kind", &A::KIND).field("config", &self.config).finish()
    }
}

impl<A: Aggregate> Repository<A> {
    /// A repository over `store`.
    pub fn new(store: EventStore, config: RepositoryConfig) -> Self {
        let cap = NonZeroUsize::new(config.cache_capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self { store, cache: Arc::new(Mutex::new(LruCache::new(cap))), config }
    }

    /// The underlying store.
    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// The current state of an aggregate and its version (last stream
    /// sequence, 0 if it has no commits), read from the log.
    pub async fn load(&self, id: &str) -> Result<(A, u64), StoreError>
    where
        A::Event: EventCodec,
    {
        self.load_with(id, &Plain).await
    }

    /// [`Repository::load`] with the aggregate's own codec (e.g. its data key).
    /// Every call for one aggregate must use an equivalent codec: the decoded
    /// state is cached.
    pub async fn load_with(&self, id: &str, codec: &dyn Codec<A::Event>) -> Result<(A, u64), StoreError> {
        let subject = self.store.subject(A::KIND, id);
        let slot = self.slot(&subject);
        let mut guard = slot.lock().await;
        let loaded = self.ensure_loaded(&subject, &mut guard, codec).await?;
        self.catch_up(&subject, loaded, codec).await?;
        Ok((loaded.state.clone(), loaded.version))
    }

    /// Forgets the cached state of an aggregate (e.g. after its data key was destroyed).
    pub fn evict(&self, id: &str) {
        let subject = self.store.subject(A::KIND, id);
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.pop(&subject);
    }

    /// Runs `command` against aggregate `id`: load, decide, append one commit;
    /// on conflict catch up and decide again. A request id seen before returns
    /// the original outcome and appends nothing, however long ago it was.
    pub async fn execute(
        &self,
        id: &str,
        command: &A::Command,
        meta: &CommandMeta,
    ) -> Result<Outcome<A>, CommandError<A::Error>>
    where
        A::Event: EventCodec,
    {
        self.execute_with(id, command, meta, &Plain).await
    }

    /// [`Repository::execute`] with the aggregate's own codec.
    pub async fn execute_with(
        &self,
        id: &str,
        command: &A::Command,
        meta: &CommandMeta,
        codec: &dyn Codec<A::Event>,
    ) -> Result<Outcome<A>, CommandError<A::Error>> {
        self.run(id, command, meta, codec, false).await
    }

    /// Runs a command creating aggregate `id`, which the caller knows to be
    /// new (its id was just minted): the log is not read first. Should the
    /// subject have commits after all, the append conflicts on its expected
    /// sequence 0 and the loop catches up as usual, so this is only faster,
    /// never less correct.
    pub async fn execute_new_with(
        &self,
        id: &str,
        command: &A::Command,
        meta: &CommandMeta,
        codec: &dyn Codec<A::Event>,
    ) -> Result<Outcome<A>, CommandError<A::Error>> {
        self.run(id, command, meta, codec, true).await
    }

    async fn run(
        &self,
        id: &str,
        command: &A::Command,
        meta: &CommandMeta,
        codec: &dyn Codec<A::Event>,
        assume_new: bool,
    ) -> Result<Outcome<A>, CommandError<A::Error>> {
        let subject = self.store.subject(A::KIND, id);
        let slot = self.slot(&subject);
        let mut guard = slot.lock().await;
        if assume_new && guard.is_none() {
            *guard = Some(Loaded::default());
        }
        let result = self.execute_locked(&subject, command, meta, &mut guard, codec).await;
        if matches!(result, Err(CommandError::Store(_))) {
            // Whatever we hold may be incomplete; reload next time.
            *guard = None;
        }
        result
    }

    async fn execute_locked(
        &self,
        subject: &str,
        command: &A::Command,
        meta: &CommandMeta,
        guard: &mut Option<Loaded<A>>,
        codec: &dyn Codec<A::Event>,
    ) -> Result<Outcome<A>, CommandError<A::Error>> {
        let mut conflicts = 0;
        let mut unavailable = 0;
        let mut verified_fresh = false;
        loop {
            let loaded = self.ensure_loaded(subject, guard, codec).await?;
            if let Some(record) = loaded.requests.get(meta.request_id.as_str()).cloned() {
                return self.replay(&record, meta, codec).await;
            }
            let events = match loaded.state.decide(command) {
                Ok(events) => events,
                Err(rejection) => {
                    // Only refuse on a state known to be current.
                    if !verified_fresh {
                        verified_fresh = true;
                        if self.catch_up(subject, loaded, codec).await? > 0 {
                            continue;
                        }
                    }
                    return Err(CommandError::Rejected(rejection));
                }
            };
            if events.is_empty() {
                return Ok(Outcome { position: loaded.version, events, replayed: false });
            }
            let commit = NewCommit {
                request_id: meta.request_id.as_str().to_owned(),
                actor: meta.actor.clone(),
                request_digest: meta.digest.clone(),
                events: events
                    .iter()
                    .map(|e| codec.encode(e))
                    .collect::<Result<_, _>>()
                    .map_err(|e| StoreError::Encode(e.to_string()))?,
                recorded_at: Utc::now(),
            };
            match self.store.append(subject, loaded.version, &commit).await {
                Ok(appended) if !appended.duplicate => {
                    for e in &events {
                        loaded.state.evolve(e);
                    }
                    loaded.version = appended.sequence;
                    loaded.requests.insert(
                        commit.request_id,
                        RequestRecord { sequence: appended.sequence, digest: commit.request_digest },
                    );
                    return Ok(Outcome { position: appended.sequence, events, replayed: false });
                }
                Ok(_duplicate) => {
                    // An earlier attempt of this request was stored; catch up to find it.
                    conflicts += 1;
                    if conflicts >= self.config.max_conflict_attempts {
                        return Err(CommandError::Contention);
                    }
                    self.catch_up(subject, loaded, codec).await?;
                }
                Err(AppendError::Conflict { .. }) => {
                    conflicts += 1;
                    if conflicts >= self.config.max_conflict_attempts {
                        return Err(CommandError::Contention);
                    }
                    backoff(Duration::from_millis(2) * conflicts).await;
                    self.catch_up(subject, loaded, codec).await?;
                }
                Err(AppendError::Unknown(reason)) => {
                    unavailable += 1;
                    tracing::warn!(attempt = unavailable, %reason, "append outcome unknown; retrying");
                    if unavailable >= self.config.max_unavailable_attempts {
                        return Err(CommandError::Store(StoreError::Nats(reason)));
                    }
                    backoff(Duration::from_millis(100) * unavailable).await;
                    // The commit may have landed: catch up before deciding again.
                    if let Err(e) = self.catch_up(subject, loaded, codec).await {
                        tracing::warn!(error = %e, "catch-up after unknown append failed");
                    }
                }
                Err(AppendError::Store(e)) => return Err(CommandError::Store(e)),
            }
        }
    }

    async fn replay(
        &self,
        record: &RequestRecord,
        meta: &CommandMeta,
        codec: &dyn Codec<A::Event>,
    ) -> Result<Outcome<A>, CommandError<A::Error>> {
        if !record.digest.is_empty() && !meta.digest.is_empty() && record.digest != meta.digest {
            return Err(CommandError::RequestIdReused);
        }
        let commit = self.store.get(record.sequence).await?;
        let events = decode_events::<A>(&commit, codec)?;
        Ok(Outcome { position: record.sequence, events, replayed: true })
    }

    fn slot(&self, subject: &str) -> Slot<A> {
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(slot) = cache.get(subject) {
            return slot.clone();
        }
        let slot: Slot<A> = Arc::default();
        cache.put(subject.to_owned(), slot.clone());
        slot
    }

    async fn ensure_loaded<'g>(
        &self,
        subject: &str,
        guard: &'g mut Option<Loaded<A>>,
        codec: &dyn Codec<A::Event>,
    ) -> Result<&'g mut Loaded<A>, StoreError> {
        if guard.is_none() {
            let mut loaded = Loaded::default();
            self.catch_up(subject, &mut loaded, codec).await?;
            *guard = Some(loaded);
        }
        guard.as_mut().ok_or_else(|| StoreError::Nats("aggregate slot unexpectedly empty".into()))
    }

    /// Applies commits newer than the loaded version; returns how many.
    async fn catch_up(
        &self,
        subject: &str,
        loaded: &mut Loaded<A>,
        codec: &dyn Codec<A::Event>,
    ) -> Result<usize, StoreError> {
        let commits = self.store.load(subject, loaded.version).await?;
        let n = commits.len();
        for commit in commits {
            for e in decode_events::<A>(&commit, codec)? {
                loaded.state.evolve(&e);
            }
            loaded.version = commit.sequence;
            loaded
                .requests
                .insert(commit.request_id, RequestRecord { sequence: commit.sequence, digest: commit.request_digest });
        }
        Ok(n)
    }
}

fn decode_events<A: Aggregate>(
    commit: &StoredCommit,
    codec: &dyn Codec<A::Event>,
) -> Result<Vec<A::Event>, StoreError> {
    commit
        .events
        .iter()
        .map(|e| codec.decode(e).map_err(|source| StoreError::Decode { sequence: commit.sequence, source }))
        .collect()
}

async fn backoff(base: Duration) {
    let jitter = rand::rng().random_range(0..=base.as_micros().min(u128::from(u32::MAX)) as u64);
    tokio::time::sleep(base + Duration::from_micros(jitter)).await;
}
