//! The command loop over a cache of loaded aggregates.
//!
//! Commands on one aggregate are serialised inside a process by a per-aggregate
//! lock, so only writers in other replicas can conflict; those conflicts are
//! caught by the expected-sequence header and resolved by catching up from the
//! cached version and deciding again, a bounded number of times. A cached
//! aggregate may be stale (another replica wrote it): that is safe, because a
//! stale version makes the append conflict, and a rejection is only returned
//! after checking the log for newer commits.

mod group;
pub use group::{Coalescer, GroupCommand};

use std::{
    collections::HashMap,
    num::NonZeroUsize,
    sync::{Arc, Mutex},
    time::Duration,
};

use acasa_domain::{Aggregate, Claim, ClaimChange, Codec, EventCodec, Plain, RequestId};
use acasa_proto::{
    Message as _,
    eventstore::v1::{ClaimRecord, RequestRecord},
};
use async_nats::HeaderMap;
use chrono::Utc;
use lru::LruCache;
use rand::Rng as _;
use uuid::Uuid;

use crate::{
    commit::{NewCommit, StoredCommit},
    error::{AppendError, CommandError, StoreError},
    store::{EventStore, StoredRequest},
    trace,
    writer::{OutMessage, Transaction},
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
    /// How long a loaded aggregate is used before it is read again from the
    /// log. Bounds how long a replica holds state it decoded (e.g. personal
    /// data opened with a data key) after another replica erased it.
    pub cache_ttl: Duration,
}

impl Default for RepositoryConfig {
    fn default() -> Self {
        // A replica that loses a race to another keeps losing while the other
        // drains its queue for the aggregate (it catches up first, the other
        // does not); enough attempts to outlast a burst, each short.
        Self {
            cache_capacity: 10_000,
            max_conflict_attempts: 50,
            max_unavailable_attempts: 6,
            cache_ttl: Duration::from_secs(30),
        }
    }
}

/// Who asked for a command, and its idempotency key.
#[derive(Clone, Debug)]
pub struct CommandMeta {
    /// The client's request id.
    pub request_id: RequestId,
    /// The authenticated actor's id.
    pub actor: String,
    /// Whose request ids these are: `api:<token subject>[|partner:<id>]` for
    /// callers, `system:<worker>` for what the system proposes itself. Two
    /// scopes' request ids never meet.
    pub scope: String,
    /// The command's method (its request message's full name).
    pub method: String,
    /// SHA-256 over the method and the request without its request id.
    pub digest: Vec<u8>,
}

impl CommandMeta {
    /// The id of something a command creates inside an aggregate (a travel
    /// claim, a procured item, a support service), `what` naming the kind:
    /// derived from the caller's scope and request id, so a retry names the
    /// same one however late it comes, and two callers' never meet.
    pub fn derived_id(&self, what: &str) -> Uuid {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        for part in [what, self.scope.as_str(), self.request_id.as_str()] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        let digest = h.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

/// The result of a command on one aggregate.
#[derive(Clone, Debug)]
pub struct Outcome<A: Aggregate> {
    /// The aggregate's id (for a replayed creation: the one first created).
    pub id: String,
    /// The stream sequence of the commit (the position for read-your-writes);
    /// for a command that changed nothing, the aggregate's version.
    pub position: u64,
    /// The events of the commit (empty for a replay of another process's
    /// creation, whose codec this call may not have).
    pub events: Vec<A::Event>,
    /// The command had already been executed with this request id: nothing
    /// was appended and this is the original result.
    pub replayed: bool,
    /// The shared values the command marked ([`ClaimChange::Mark`]), each
    /// with the aggregate that marked it last before and where (empty on a
    /// replay).
    pub marks: Vec<Marked>,
}

/// A shared value's previous mark, as a command that marked it found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marked {
    /// The claim kind.
    pub kind: &'static str,
    /// The aggregate that marked it last before, if any.
    pub previous: Option<String>,
    /// The stream sequence of that mark (0 if none). Every commit stored
    /// before it — the earlier marks' aggregates' among them — precedes it;
    /// the previous aggregate's own commit follows it in its atomic batch.
    pub sequence: u64,
}

/// One aggregate's part of a command: its id, what it is asked, and its codec.
pub struct Step<'a, A: Aggregate> {
    /// The aggregate's id.
    pub id: String,
    /// The command it decides.
    pub command: &'a A::Command,
    /// Its codec (e.g. its data key).
    pub codec: &'a dyn Codec<A::Event>,
    /// Its id was just minted: skip reading the log (a wrong guess only
    /// conflicts on expected sequence 0).
    pub new: bool,
}

impl<A: Aggregate> std::fmt::Debug for Step<'_, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step").field("kind", &A::KIND).field("id", &self.id).field("new", &self.new).finish()
    }
}

#[derive(Clone, Debug)]
struct RequestSeen {
    sequence: u64,
    digest: Vec<u8>,
}

#[derive(Clone, Debug)]
struct Loaded<A> {
    state: A,
    version: u64,
    requests: HashMap<String, RequestSeen>,
    /// When it was read from the log from scratch (or created here).
    since: std::time::Instant,
}

impl<A: Default> Default for Loaded<A> {
    fn default() -> Self {
        Self { state: A::default(), version: 0, requests: HashMap::new(), since: std::time::Instant::now() }
    }
}

type Slot<A> = Arc<tokio::sync::Mutex<Option<Loaded<A>>>>;
type Guard<A> = tokio::sync::OwnedMutexGuard<Option<Loaded<A>>>;

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
        self.load_kind_with(A::KIND, id, codec).await
    }

    /// [`Repository::load`] of an aggregate of subject kind `kind`: for an
    /// aggregate holding two kinds (`acasa_domain::pair::Pair`), its second
    /// side's.
    pub async fn load_kind(&self, kind: &str, id: &str) -> Result<(A, u64), StoreError>
    where
        A::Event: EventCodec,
    {
        self.load_kind_with(kind, id, &Plain).await
    }

    /// [`Repository::load_kind`] with the aggregate's own codec.
    pub async fn load_kind_with(
        &self,
        kind: &str,
        id: &str,
        codec: &dyn Codec<A::Event>,
    ) -> Result<(A, u64), StoreError> {
        let subject = self.store.subject(kind, id);
        let slot = self.slot(&subject);
        let mut guard = slot.lock().await;
        let loaded = self.ensure_loaded(&subject, &mut guard, codec).await?;
        self.catch_up(&subject, loaded, codec).await?;
        Ok((loaded.state.clone(), loaded.version))
    }

    /// Forgets the cached state of an aggregate (e.g. after its data key was destroyed).
    pub fn evict(&self, id: &str) {
        self.evict_kind(A::KIND, id);
    }

    /// [`Repository::evict`] of an aggregate of subject kind `kind`.
    pub fn evict_kind(&self, kind: &str, id: &str) {
        let subject = self.store.subject(kind, id);
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.pop(&subject);
    }

    /// The id of the aggregate that an earlier call with this request created,
    /// if there was one: a creating command looks here before minting an id,
    /// so every retry addresses the same aggregate however late it comes. A
    /// request id recorded for another method or body is refused.
    pub async fn created_by(&self, meta: &CommandMeta) -> Result<Option<String>, CommandError<A::Error>> {
        let key = self.request_key(meta);
        let Some(stored) = self.store.request(&key, false).await? else { return Ok(None) };
        if stored.record.digest != meta.digest {
            return Err(CommandError::RequestIdReused);
        }
        Ok(stored.record.subjects.first().map(|s| last_token(s).to_owned()))
    }

    /// The id a creating command addresses: the one an earlier attempt of
    /// its request created ([`created_by`](Self::created_by)), or a fresh
    /// UUIDv7; and whether it is fresh.
    pub async fn creation_id(&self, meta: &CommandMeta) -> Result<(Uuid, bool), CommandError<A::Error>> {
        match self.created_by(meta).await? {
            None => Ok((Uuid::now_v7(), true)),
            Some(id) => Uuid::parse_str(&id).map(|id| (id, false)).map_err(|_| {
                CommandError::Store(StoreError::Corrupt {
                    sequence: 0,
                    reason: "a request record names a non-uuid".into(),
                })
            }),
        }
    }

    /// Runs `command` against aggregate `id`: load, decide, append one commit
    /// with its claims and request record; on conflict catch up and decide
    /// again. A request id seen before returns the original outcome and
    /// appends nothing, however long ago it was.
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
        self.execute_step(Step { id: id.to_owned(), command, codec, new: false }, meta).await
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
        self.execute_step(Step { id: id.to_owned(), command, codec, new: true }, meta).await
    }

    /// Runs one aggregate's command (a creation when `step.new`).
    pub async fn execute_step(
        &self,
        step: Step<'_, A>,
        meta: &CommandMeta,
    ) -> Result<Outcome<A>, CommandError<A::Error>> {
        self.execute_all(&[step], meta)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| CommandError::Store(StoreError::Nats("a command without outcome".into())))
    }

    /// Runs one command over several aggregates of this type, each deciding
    /// its own step, and stores all their commits, claims and the request
    /// record as one atomic batch: all of it or nothing. The outcomes follow
    /// the commits' order (steps that changed nothing last).
    pub async fn execute_all(
        &self,
        steps: &[Step<'_, A>],
        meta: &CommandMeta,
    ) -> Result<Vec<Outcome<A>>, CommandError<A::Error>> {
        let key = self.request_key(meta);
        // Each step's subject kind comes from its command (a `Pair` holds two kinds).
        let subjects: Vec<String> =
            steps.iter().map(|s| self.store.subject(A::subject_kind(s.command), &s.id)).collect();
        let mut order: Vec<usize> = (0..steps.len()).collect();
        order.sort_by(|a, b| subjects[*a].cmp(&subjects[*b]));
        if order.windows(2).any(|w| subjects[w[0]] == subjects[w[1]]) {
            return Err(CommandError::Store(StoreError::Nats("one aggregate twice in a command".into())));
        }
        // Lock in subject order, so two multi-aggregate commands cannot deadlock.
        let mut locked: Vec<Option<Guard<A>>> = steps.iter().map(|_| None).collect();
        for &i in &order {
            locked[i] = Some(self.slot(&subjects[i]).lock_owned().await);
        }
        let mut guards: Vec<Guard<A>> = locked.into_iter().flatten().collect();
        for (guard, step) in guards.iter_mut().zip(steps) {
            if step.new && guard.is_none() {
                **guard = Some(Loaded::default());
            }
        }
        let result = self.run_locked(steps, &subjects, &key, meta, &mut guards).await;
        if matches!(result, Err(CommandError::Store(_))) {
            // Whatever we hold may be incomplete; reload next time.
            for guard in &mut guards {
                **guard = None;
            }
        }
        result
    }

    fn request_key(&self, meta: &CommandMeta) -> String {
        self.store.hasher().request_key(&meta.scope, meta.request_id.as_str())
    }

    async fn run_locked(
        &self,
        steps: &[Step<'_, A>],
        subjects: &[String],
        key: &str,
        meta: &CommandMeta,
        guards: &mut [Guard<A>],
    ) -> Result<Vec<Outcome<A>>, CommandError<A::Error>> {
        let mut conflicts = 0;
        let mut unavailable = 0;
        let mut verified_fresh = false;
        // After a conflict, read claims and records from the stream's leader:
        // a replica's direct get may lag behind.
        let mut leader = false;
        loop {
            for ((guard, step), subject) in guards.iter_mut().zip(steps).zip(subjects) {
                self.ensure_loaded(subject, guard, step.codec).await?;
            }
            if guards.iter().any(|g| g.as_ref().is_some_and(|l| l.requests.contains_key(key))) {
                // The record names every aggregate the first attempt wrote,
                // also those this attempt does not load.
                if let Some(stored) = self.store.request(key, true).await? {
                    return self.replay_record(stored, steps, subjects, key, meta, guards).await;
                }
                return self.replay_seen(steps, key, meta, guards).await;
            }
            let mut decided = Vec::with_capacity(steps.len());
            let mut rejection = None;
            for (guard, step) in guards.iter().zip(steps) {
                let loaded = loaded_ref(guard)?;
                match loaded.state.decide(step.command) {
                    Ok(events) => decided.push(events),
                    Err(r) => {
                        rejection = Some(r);
                        break;
                    }
                }
            }
            if let Some(rejection) = rejection {
                // Only refuse on a state known to be current.
                if !verified_fresh {
                    verified_fresh = true;
                    if self.catch_up_all(steps, subjects, guards).await? > 0 {
                        continue;
                    }
                }
                // A request id used before (elsewhere) answers as such.
                if let Some(stored) = self.store.request(key, leader).await? {
                    return self.replay_record(stored, steps, subjects, key, meta, guards).await;
                }
                return Err(CommandError::Rejected(rejection));
            }
            let views =
                guards.iter().map(|g| loaded_ref(g).map(|l| (&l.state, l.version))).collect::<Result<Vec<_>, _>>()?;
            let (tx, marks) = match self.transaction(steps, subjects, key, meta, &views, &decided, leader).await {
                Ok(built) => built,
                // A cached state may outlive what its codec needs to write
                // (an erased person's key): look at the log before failing.
                Err(CommandError::Store(StoreError::Encode(_))) if !verified_fresh => {
                    verified_fresh = true;
                    self.catch_up_all(steps, subjects, guards).await?;
                    continue;
                }
                Err(CommandError::Claimed { .. }) if !leader => {
                    // The holder may have freed it since a replica last heard: ask the leader.
                    leader = true;
                    continue;
                }
                Err(e @ CommandError::Claimed { .. }) => {
                    // A retry whose first attempt stored it (and holds the claim
                    // itself) answers the first attempt, not "held by".
                    if let Some(stored) = self.store.request(key, true).await? {
                        return self.replay_record(stored, steps, subjects, key, meta, guards).await;
                    }
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            let claims = tx.messages.len() - 1 - decided.iter().filter(|e| !e.is_empty()).count();
            match self.store.submit(tx).await {
                Ok(first) => {
                    let decided = decided.into_iter().zip(marks).collect();
                    return Ok(self.applied(steps, key, meta, guards, decided, first + 1 + claims as u64));
                }
                Err(AppendError::Conflict { .. }) => {
                    conflicts += 1;
                    if conflicts >= self.config.max_conflict_attempts {
                        return Err(CommandError::Contention);
                    }
                    leader = true;
                    if let Some(stored) = self.store.request(key, true).await? {
                        return self.replay_record(stored, steps, subjects, key, meta, guards).await;
                    }
                    backoff(Duration::from_millis(2) * conflicts.min(5)).await;
                    self.catch_up_all(steps, subjects, guards).await?;
                }
                Err(AppendError::Unknown(reason)) => {
                    unavailable += 1;
                    tracing::warn!(attempt = unavailable, %reason, "append outcome unknown; retrying");
                    if unavailable >= self.config.max_unavailable_attempts {
                        return Err(CommandError::Store(StoreError::Nats(reason)));
                    }
                    backoff(Duration::from_millis(100) * unavailable).await;
                    leader = true;
                    // The transaction may have landed: its record says so.
                    match self.store.request(key, true).await {
                        Ok(Some(stored)) => {
                            return self.replay_record(stored, steps, subjects, key, meta, guards).await;
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "reading the request record after an unknown append failed")
                        }
                    }
                    if let Err(e) = self.catch_up_all(steps, subjects, guards).await {
                        tracing::warn!(error = %e, "catch-up after unknown append failed");
                    }
                }
                Err(AppendError::Store(e)) => return Err(CommandError::Store(e)),
            }
        }
    }

    /// The command's messages: its request record, the claims its events take
    /// or free, then its commits.
    #[allow(clippy::too_many_arguments, reason = "one private step of the loop")]
    async fn transaction(
        &self,
        steps: &[Step<'_, A>],
        subjects: &[String],
        key: &str,
        meta: &CommandMeta,
        views: &[(&A, u64)],
        decided: &[Vec<A::Event>],
        leader: bool,
    ) -> Result<(Transaction, Vec<Vec<Marked>>), CommandError<A::Error>> {
        let mut marks: Vec<Vec<Marked>> = steps.iter().map(|_| Vec::new()).collect();
        let changed: Vec<String> =
            subjects.iter().zip(decided).filter(|(_, e)| !e.is_empty()).map(|(s, _)| s.clone()).collect();
        let unchanged_at = views.iter().map(|(_, version)| *version).max().unwrap_or(0);
        let record = RequestRecord {
            method: meta.method.clone(),
            digest: meta.digest.clone(),
            position: if changed.is_empty() { unchanged_at } else { 0 },
            subjects: changed,
        };
        let mut messages = vec![OutMessage {
            subject: self.store.request_subject(key),
            expected: Some(0),
            headers: HeaderMap::new(),
            payload: record.encode_to_vec().into(),
        }];
        // Every claim the steps change, read at once (one round trip's wait
        // for a registration's IDNP and names, not two).
        let mut changes = Vec::new();
        for (i, ((state, _), events)) in views.iter().zip(decided).enumerate() {
            for change in state.claims(events) {
                let (claim, acquire, mark) = match change {
                    ClaimChange::Acquire(c) => (c, true, false),
                    ClaimChange::Release(c) => (c, false, false),
                    ClaimChange::Mark(c) => (c, true, true),
                };
                let subject = self.store.claim_subject(claim.kind, &claim.value);
                if changes.iter().any(|(_, s, ..): &(usize, String, Claim, bool, bool)| *s == subject) {
                    return Err(CommandError::Store(StoreError::Encode("one claim changed twice in a command".into())));
                }
                changes.push((i, subject, claim, acquire, mark));
            }
        }
        let states = futures::future::try_join_all(
            changes.iter().map(|(_, _, claim, ..)| self.store.claim(claim.kind, &claim.value, leader)),
        )
        .await?;
        for ((i, subject, claim, acquire, mark), now) in changes.into_iter().zip(states) {
            let step = &steps[i];
            let released = match (&now.holder, acquire) {
                _ if mark => {
                    marks[i].push(Marked { kind: claim.kind, previous: now.holder.clone(), sequence: now.sequence });
                    false
                }
                (None, true) => false,
                (Some(h), true) if *h == step.id => continue,
                (Some(h), true) => return Err(CommandError::Claimed { kind: claim.kind, owner: h.clone() }),
                (Some(h), false) if *h == step.id => true,
                (_, false) => continue,
            };
            let record = ClaimRecord { owner: step.id.clone(), released };
            messages.push(OutMessage {
                subject,
                expected: Some(now.sequence),
                headers: HeaderMap::new(),
                payload: record.encode_to_vec().into(),
            });
        }
        for ((((_, version), step), subject), events) in views.iter().zip(steps).zip(subjects).zip(decided) {
            if events.is_empty() {
                continue;
            }
            let commit = NewCommit {
                request_key: key.to_owned(),
                method: meta.method.clone(),
                actor: meta.actor.clone(),
                request_digest: meta.digest.clone(),
                events: events
                    .iter()
                    .map(|e| step.codec.encode(e))
                    .collect::<Result<_, _>>()
                    .map_err(|e| StoreError::Encode(e.to_string()))?,
                recorded_at: Utc::now(),
            };
            let mut headers = commit.headers();
            trace::inject(&mut headers);
            messages.push(OutMessage {
                subject: subject.clone(),
                expected: Some(*version),
                headers,
                payload: commit.encode().into(),
            });
        }
        Ok((Transaction { messages }, marks))
    }

    /// Applies a stored transaction to the cached aggregates; `sequence` is
    /// the stream sequence of its first commit.
    fn applied(
        &self,
        steps: &[Step<'_, A>],
        key: &str,
        meta: &CommandMeta,
        guards: &mut [Guard<A>],
        decided: Vec<(Vec<A::Event>, Vec<Marked>)>,
        mut sequence: u64,
    ) -> Vec<Outcome<A>> {
        let mut changed = Vec::new();
        let mut unchanged = Vec::new();
        for ((guard, step), (events, marks)) in guards.iter_mut().zip(steps).zip(decided) {
            let Some(loaded) = guard.as_mut() else { continue };
            if events.is_empty() {
                let position = loaded.version;
                unchanged.push(Outcome { id: step.id.clone(), position, events, replayed: false, marks });
                continue;
            }
            for e in &events {
                loaded.state.evolve(e);
            }
            loaded.version = sequence;
            loaded.requests.insert(key.to_owned(), RequestSeen { sequence, digest: meta.digest.clone() });
            changed.push(Outcome { id: step.id.clone(), position: sequence, events, replayed: false, marks });
            sequence += 1;
        }
        changed.extend(unchanged);
        changed
    }

    /// The request is recorded in one of the loaded aggregates' commits.
    async fn replay_seen(
        &self,
        steps: &[Step<'_, A>],
        key: &str,
        meta: &CommandMeta,
        guards: &[Guard<A>],
    ) -> Result<Vec<Outcome<A>>, CommandError<A::Error>> {
        let mut out = Vec::new();
        for (guard, step) in guards.iter().zip(steps) {
            let Some(seen) = guard.as_ref().and_then(|l| l.requests.get(key)) else { continue };
            if seen.digest != meta.digest {
                return Err(CommandError::RequestIdReused);
            }
            let commit = self.store.get(seen.sequence).await?;
            let events = decode_events::<A>(&commit, step.codec)?;
            out.push(Outcome {
                id: step.id.clone(),
                position: seen.sequence,
                events,
                replayed: true,
                marks: Vec::new(),
            });
        }
        Ok(out)
    }

    /// The request's record was found: answer what it did.
    async fn replay_record(
        &self,
        stored: StoredRequest,
        steps: &[Step<'_, A>],
        subjects: &[String],
        key: &str,
        meta: &CommandMeta,
        guards: &mut [Guard<A>],
    ) -> Result<Vec<Outcome<A>>, CommandError<A::Error>> {
        let record = stored.record;
        if record.digest != meta.digest {
            return Err(CommandError::RequestIdReused);
        }
        if record.subjects.is_empty() {
            // It changed nothing then.
            let id = steps.first().map(|s| s.id.clone()).unwrap_or_default();
            return Ok(vec![Outcome {
                id,
                position: record.position,
                events: Vec::new(),
                replayed: true,
                marks: Vec::new(),
            }]);
        }
        self.catch_up_all(steps, subjects, guards).await?;
        let mut out = Vec::new();
        for subject in &record.subjects {
            let id = last_token(subject).to_owned();
            if let Some(i) = subjects.iter().position(|s| s == subject) {
                let seen = guards[i].as_ref().and_then(|l| l.requests.get(key)).cloned();
                let Some(seen) = seen else {
                    return Err(CommandError::Store(StoreError::Nats(format!(
                        "request recorded at {} without its commit",
                        stored.sequence
                    ))));
                };
                let commit = self.store.get(seen.sequence).await?;
                let events = decode_events::<A>(&commit, steps[i].codec)?;
                out.push(Outcome { id, position: seen.sequence, events, replayed: true, marks: Vec::new() });
            } else {
                // Another attempt of this request created another aggregate:
                // find its commit without decoding (its codec is not ours).
                let commits = self.store.load(subject, 0).await?;
                let position = commits.iter().find(|c| c.request_key == key).map(|c| c.sequence).unwrap_or(0);
                out.push(Outcome { id, position, events: Vec::new(), replayed: true, marks: Vec::new() });
            }
        }
        Ok(out)
    }

    async fn catch_up_all(
        &self,
        steps: &[Step<'_, A>],
        subjects: &[String],
        guards: &mut [Guard<A>],
    ) -> Result<usize, StoreError> {
        let mut n = 0;
        for ((guard, step), subject) in guards.iter_mut().zip(steps).zip(subjects) {
            let loaded = self.ensure_loaded(subject, guard, step.codec).await?;
            n += self.catch_up(subject, loaded, step.codec).await?;
        }
        Ok(n)
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
        if guard.as_ref().is_some_and(|l| l.since.elapsed() >= self.config.cache_ttl) {
            *guard = None;
        }
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
            if !commit.request_key.is_empty() {
                loaded.requests.insert(
                    commit.request_key,
                    RequestSeen { sequence: commit.sequence, digest: commit.request_digest },
                );
            }
        }
        Ok(n)
    }
}

fn loaded_ref<A: Aggregate>(guard: &Guard<A>) -> Result<&Loaded<A>, StoreError> {
    guard.as_ref().ok_or_else(|| StoreError::Nats("aggregate slot unexpectedly empty".into()))
}

fn last_token(subject: &str) -> &str {
    subject.rsplit('.').next().unwrap_or_default()
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
