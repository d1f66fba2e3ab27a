//! Given/when/then for aggregates: the one harness every service's domain
//! tests use. [`given`] builds a state from commands it must accept (or
//! [`given_events`] from events), [`when`] asks it a command, and [`Then`]
//! says what it decided, what it refused, which claims the decision changes
//! and the state it leads to. Pure: no I/O, no clock.
//!
//! Compiled for tests only (`features = ["testing"]` in a service's
//! dev-dependencies); it fails the test loudly instead of returning errors.

#![allow(clippy::panic, reason = "a test harness fails the test loudly")]

use std::fmt::Debug;

use crate::{Aggregate, ClaimChange};

/// The state after `history`, every command of which must be accepted.
pub fn given<A: Aggregate>(history: &[A::Command]) -> A
where
    A::Command: Debug,
{
    let mut state = A::default();
    for (i, command) in history.iter().enumerate() {
        match state.decide(command) {
            Ok(events) => {
                for e in &events {
                    state.evolve(e);
                }
            }
            Err(e) => panic!("given: command {i} was refused ({e}): {command:?}"),
        }
    }
    state
}

/// The state after `events`.
pub fn given_events<A: Aggregate>(events: &[A::Event]) -> A {
    let mut state = A::default();
    for e in events {
        state.evolve(e);
    }
    state
}

/// What `state` decides when asked `command`.
pub fn when<A: Aggregate>(state: &A, command: &A::Command) -> Then<A> {
    Then { before: state.clone(), result: state.decide(command) }
}

/// A decision, to check.
#[derive(Debug)]
pub struct Then<A: Aggregate> {
    before: A,
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> Then<A>
where
    A::Event: Debug,
{
    /// The decision as it is.
    pub fn result(&self) -> &Result<Vec<A::Event>, A::Error> {
        &self.result
    }

    /// The events decided; fails the test if the command was refused.
    pub fn events(self) -> Vec<A::Event> {
        match self.result {
            Ok(events) => events,
            Err(e) => panic!("then: expected events, the command was refused: {e}"),
        }
    }

    /// The one event decided; fails the test otherwise.
    pub fn event(self) -> A::Event {
        let mut events = self.events();
        match (events.pop(), events.is_empty()) {
            (Some(e), true) => e,
            (last, _) => panic!("then: expected exactly one event, got {events:?} and {last:?}"),
        }
    }

    /// The refusal; fails the test if the command was accepted.
    pub fn refused(self) -> A::Error {
        match self.result {
            Ok(events) => panic!("then: expected a refusal, got {events:?}"),
            Err(e) => e,
        }
    }

    /// Accepted with nothing to record (a no-op); fails the test otherwise.
    pub fn nothing(self) {
        let events = self.events();
        assert!(events.is_empty(), "then: expected no events, got {events:?}");
    }

    /// The claims the decided events take or free (none if refused).
    pub fn claims(&self) -> Vec<ClaimChange> {
        match &self.result {
            Ok(events) => self.before.claims(events),
            Err(_) => Vec::new(),
        }
    }

    /// The state the decided events lead to; fails the test if refused.
    pub fn state(self) -> A {
        let mut state = self.before.clone();
        for e in &self.events() {
            state.evolve(e);
        }
        state
    }
}
