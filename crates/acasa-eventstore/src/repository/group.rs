//! Commands that meet on one aggregate, decided in turn and stored in one
//! atomic batch.
//!
//! Every command's commit carries its aggregate's expected sequence, so
//! commands on one aggregate are stored one after another: one batch's round
//! trip each. When many commands queue on one hot aggregate (approvals racing
//! on one grants call), [`Repository::execute_group`] decides them in turn —
//! each on the state the earlier ones leave — and stores them together: every
//! command keeps its own request record, claims and commits (its own request
//! id, actor and digest: replays and audit are as for a command alone), and
//! every commit on a shared subject carries the expected sequence the subject
//! had before the batch, which is what JetStream checks every message of an
//! atomic batch against. A command the group cannot take — refused, a replay,
//! a claim another command of the group changes, its own subject twice — runs
//! on its own afterwards, and so does every command when the batch is refused
//! or its outcome is unknown: the group is an optimisation, never a different
//! answer.
//!
//! [`Coalescer`] queues commands per key (the hot aggregate's id) and runs
//! whatever queued while the previous group was being stored as the next
//! group: the group is closed by the previous one still in flight, never by a
//! timer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use acasa_domain::{Aggregate, EventCodec, Plain};
use tokio::sync::oneshot;

use super::{CommandMeta, Guard, Outcome, Repository, RequestSeen, Step, loaded_ref};
use crate::error::{CommandError, StoreError};
use crate::writer::Transaction;

/// One command of a group: its steps (an aggregate's id, its command, and
/// whether the id was just minted) and its metadata.
#[derive(Clone, Debug)]
pub struct GroupCommand<C> {
    /// The steps, as [`Repository::execute_all`] takes them (plain codec).
    pub steps: Vec<(String, C, bool)>,
    /// Who asked, and the request id.
    pub meta: CommandMeta,
}

type Answer<A> = Result<Vec<Outcome<A>>, CommandError<<A as Aggregate>::Error>>;

/// What one command of a group decided, ready to store.
struct Taken<A: Aggregate> {
    index: usize,
    key: String,
    subjects: Vec<String>,
    decided: Vec<Vec<A::Event>>,
    marks: Vec<Vec<super::Marked>>,
    tx: Transaction,
}

impl<A> Repository<A>
where
    A: Aggregate,
    A::Event: EventCodec,
{
    /// Runs `commands` as one atomic batch where they can be (see the module
    /// doc), each on its own otherwise; answers in their order, each as
    /// [`Repository::execute_all`] would.
    pub async fn execute_group(&self, commands: &[GroupCommand<A::Command>]) -> Vec<Answer<A>> {
        self.execute_group_counted(commands).await.0
    }

    /// [`Repository::execute_group`], and how many of the commands were
    /// stored together in the group's batch (0 when none were).
    pub async fn execute_group_counted(&self, commands: &[GroupCommand<A::Command>]) -> (Vec<Answer<A>>, usize) {
        let mut answers: Vec<Option<Answer<A>>> = commands.iter().map(|_| None).collect();
        let mut alone: Vec<usize> = Vec::new();
        if commands.len() > 1 {
            match self.grouped(commands, &mut answers).await {
                Ok(left) => alone = left,
                Err(_) => alone = (0..commands.len()).filter(|i| answers[*i].is_none()).collect(),
            }
        } else {
            alone.extend(0..commands.len());
        }
        let together = answers.iter().filter(|a| a.is_some()).count();
        if together > 0 {
            tracing::debug!(together, of = commands.len(), "commands stored in one batch");
        }
        for i in alone {
            let c = &commands[i];
            let steps: Vec<Step<'_, A>> = c
                .steps
                .iter()
                .map(|(id, command, new)| Step { id: id.clone(), command, codec: &Plain, new: *new })
                .collect();
            answers[i] = Some(self.execute_all(&steps, &c.meta).await);
        }
        let answers = answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Err(CommandError::Store(StoreError::Nats("a command without answer".into())))))
            .collect();
        (answers, together)
    }

    /// Decides and stores what the group can take; the indices of the
    /// commands left to run alone. An error leaves every unanswered command
    /// to run alone.
    async fn grouped(
        &self,
        commands: &[GroupCommand<A::Command>],
        answers: &mut [Option<Answer<A>>],
    ) -> Result<Vec<usize>, StoreError> {
        let subjects: Vec<Vec<String>> = commands
            .iter()
            .map(|c| c.steps.iter().map(|(id, command, _)| self.store.subject(A::subject_kind(command), id)).collect())
            .collect();
        // Lock every subject once, in order (as execute_all does: no deadlock).
        let mut guards: BTreeMap<String, Guard<A>> = BTreeMap::new();
        for s in subjects.iter().flatten() {
            if !guards.contains_key(s) {
                let guard = self.slot(s).lock_owned().await;
                guards.insert(s.clone(), guard);
            }
        }
        let result = self.decide_and_store(commands, &subjects, &mut guards, answers).await;
        if result.is_err() {
            // Whatever we hold may be incomplete; reload next time.
            for guard in guards.values_mut() {
                **guard = None;
            }
        }
        result
    }

    async fn decide_and_store(
        &self,
        commands: &[GroupCommand<A::Command>],
        subjects: &[Vec<String>],
        guards: &mut BTreeMap<String, Guard<A>>,
        answers: &mut [Option<Answer<A>>],
    ) -> Result<Vec<usize>, StoreError> {
        for (c, subjects) in commands.iter().zip(subjects) {
            for ((_, _, new), s) in c.steps.iter().zip(subjects) {
                let Some(guard) = guards.get_mut(s) else { continue };
                if *new && guard.is_none() {
                    **guard = Some(super::Loaded::default());
                }
                self.ensure_loaded(s, guard, &Plain).await?;
            }
        }
        // Each subject's state as the commands decided so far leave it, and
        // its version before the batch (what every commit on it expects).
        let mut working: HashMap<String, (A, u64)> = HashMap::new();
        for (s, guard) in guards.iter() {
            let loaded = loaded_ref(guard)?;
            working.insert(s.clone(), (loaded.state.clone(), loaded.version));
        }
        let mut alone = Vec::new();
        let mut taken: Vec<Taken<A>> = Vec::new();
        let mut keys: HashSet<String> = HashSet::new();
        let mut claimed: HashSet<String> = HashSet::new();
        for (index, c) in commands.iter().enumerate() {
            let key = self.request_key(&c.meta);
            let own = &subjects[index];
            let twice = own.iter().enumerate().any(|(i, s)| own[..i].contains(s));
            let seen = own
                .iter()
                .any(|s| guards.get(s).and_then(|g| g.as_ref()).is_some_and(|l| l.requests.contains_key(&key)));
            if twice || seen || !keys.insert(key.clone()) {
                alone.push(index);
                continue;
            }
            let mut decided = Vec::with_capacity(own.len());
            for ((_, command, _), s) in c.steps.iter().zip(own) {
                match working.get(s).map(|(state, _)| state.decide(command)) {
                    Some(Ok(events)) => decided.push(events),
                    _ => break,
                }
            }
            if decided.len() < own.len() {
                // Refused (or refused on a state not known to be current):
                // alone, it is decided again and answered as such.
                alone.push(index);
                continue;
            }
            let steps: Vec<Step<'_, A>> = c
                .steps
                .iter()
                .map(|(id, command, new)| Step { id: id.clone(), command, codec: &Plain, new: *new })
                .collect();
            let views = own
                .iter()
                .map(|s| working.get(s).map(|(state, version)| (state, *version)))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| StoreError::Nats("a grouped subject without state".into()))?;
            let Ok((tx, marks)) = self.transaction(&steps, own, &key, &c.meta, &views, &decided, false).await else {
                alone.push(index);
                continue;
            };
            // Its claims: messages after the record, before its commits.
            let commits = decided.iter().filter(|e| !e.is_empty()).count();
            let claims: Vec<String> = tx
                .messages
                .iter()
                .skip(1)
                .take(tx.messages.len().saturating_sub(1 + commits))
                .map(|m| m.subject.clone())
                .collect();
            if claims.iter().any(|s| claimed.contains(s)) {
                alone.push(index);
                continue;
            }
            claimed.extend(claims);
            for (s, events) in own.iter().zip(&decided) {
                if let Some((state, _)) = working.get_mut(s) {
                    for e in events {
                        state.evolve(e);
                    }
                }
            }
            taken.push(Taken { index, key, subjects: own.clone(), decided, marks, tx });
        }
        if taken.len() < 2 {
            // Nothing to share: each goes its usual way.
            alone.extend(taken.iter().map(|t| t.index));
            alone.sort_unstable();
            return Ok(alone);
        }
        // A subject's first message in the batch carries its expectation (as
        // before the batch); later ones on it none (see OutMessage).
        let mut checked: HashSet<&str> = HashSet::new();
        let mut messages = Vec::new();
        for m in taken.iter().flat_map(|t| t.tx.messages.iter()) {
            let first = checked.insert(m.subject.as_str());
            let mut m = m.clone();
            if !first {
                m.expected = None;
            }
            messages.push(m);
        }
        let batch = Transaction { messages };
        let Ok(first) = self.store.submit(batch).await else {
            // Refused or unknown: alone, each is decided again (and a stored
            // one answers from its request record).
            for guard in guards.values_mut() {
                **guard = None;
            }
            alone.extend(taken.iter().map(|t| t.index));
            alone.sort_unstable();
            return Ok(alone);
        };
        let mut next = first;
        for t in taken {
            let commits = t.decided.iter().filter(|e| !e.is_empty()).count() as u64;
            let mut sequence = next + (t.tx.messages.len() as u64 - commits);
            next += t.tx.messages.len() as u64;
            let meta = &commands[t.index].meta;
            let mut changed = Vec::new();
            let mut unchanged = Vec::new();
            for (((id, _, _), s), (events, marks)) in
                commands[t.index].steps.iter().zip(&t.subjects).zip(t.decided.into_iter().zip(t.marks))
            {
                let Some(loaded) = guards.get_mut(s).and_then(|g| g.as_mut()) else { continue };
                if events.is_empty() {
                    let position = loaded.version;
                    unchanged.push(Outcome { id: id.clone(), position, events, replayed: false, marks });
                    continue;
                }
                for e in &events {
                    loaded.state.evolve(e);
                }
                loaded.version = sequence;
                loaded.requests.insert(t.key.clone(), RequestSeen { sequence, digest: meta.digest.clone() });
                changed.push(Outcome { id: id.clone(), position: sequence, events, replayed: false, marks });
                sequence += 1;
            }
            changed.extend(unchanged);
            answers[t.index] = Some(Ok(changed));
        }
        Ok(alone)
    }
}

/// A queued command and where to answer it.
type Queued<A> = (GroupCommand<<A as Aggregate>::Command>, oneshot::Sender<Answer<A>>);

/// A lane of commands meeting on one key.
struct Lane<A: Aggregate> {
    pending: Mutex<Vec<Queued<A>>>,
    turn: tokio::sync::Mutex<()>,
}

impl<A: Aggregate> Default for Lane<A> {
    fn default() -> Self {
        Self { pending: Mutex::new(Vec::new()), turn: tokio::sync::Mutex::new(()) }
    }
}

/// Queues commands per key (a hot aggregate's id) and runs what queued while
/// the previous group was stored as the next group ([`Repository::execute_group`]).
pub struct Coalescer<A: Aggregate> {
    repo: Repository<A>,
    lanes: Arc<Mutex<HashMap<String, Arc<Lane<A>>>>>,
    max: usize,
}

impl<A: Aggregate> Clone for Coalescer<A> {
    fn clone(&self) -> Self {
        Self { repo: self.repo.clone(), lanes: self.lanes.clone(), max: self.max }
    }
}

impl<A: Aggregate> std::fmt::Debug for Coalescer<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer").field("repo", &self.repo).field("max", &self.max).finish()
    }
}

impl<A> Coalescer<A>
where
    A: Aggregate,
    A::Event: EventCodec,
    A::Command: Clone + 'static,
    A::Event: 'static,
{
    /// Groups of at most `max` commands over `repo`.
    pub fn new(repo: Repository<A>, max: usize) -> Self {
        Self { repo, lanes: Arc::default(), max: max.max(1) }
    }

    fn lane(&self, key: &str) -> Arc<Lane<A>> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        lanes.entry(key.to_owned()).or_default().clone()
    }

    /// Runs `command` in the lane of `key`: alone when nothing else is
    /// queued there, else in a group with what is.
    pub async fn execute(&self, key: &str, command: GroupCommand<A::Command>) -> Answer<A> {
        let lane = self.lane(key);
        let (done, mut ready) = oneshot::channel();
        lane.pending.lock().unwrap_or_else(|p| p.into_inner()).push((command, done));
        loop {
            tokio::select! {
                biased;
                answer = &mut ready => {
                    return answer.unwrap_or_else(|_| {
                        Err(CommandError::Store(StoreError::Nats("a group ended without answering".into())))
                    });
                }
                turn = lane.turn.lock() => {
                    let jobs: Vec<_> = {
                        let mut pending = lane.pending.lock().unwrap_or_else(|p| p.into_inner());
                        let n = pending.len().min(self.max);
                        pending.drain(..n).collect()
                    };
                    if !jobs.is_empty() {
                        // The group runs in its own task, so it is stored and
                        // answered whatever becomes of this call (a client gone).
                        let repo = self.repo.clone();
                        let run = tokio::spawn(async move {
                            let (commands, senders): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
                            let answers = repo.execute_group(&commands).await;
                            for (sender, answer) in senders.into_iter().zip(answers) {
                                let _ = sender.send(answer);
                            }
                        });
                        let _ = run.await;
                    }
                    drop(turn);
                }
            }
        }
    }
}
