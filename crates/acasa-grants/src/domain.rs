//! The grants domain: pure `decide` and `evolve`, no I/O, no clock.
//!
//! Six aggregates, each on its own subject `acasa.grants.<kind>.<id>`:
//!
//! - [`call::Call`]: a programme call — budget, per-grant cap, dates,
//!   districts, training places, eligibility rules, evaluation criteria —
//!   and the budget side of every approval (`Commit`, `Release`).
//! - [`application::Application`]: one registry person's application to one
//!   call, from the eligibility assessment through training, the business
//!   plan, evaluation and the committee's decision to in-kind procurement,
//!   monitoring visits and closure.
//! - [`training::Course`] and [`training::Session`]: the training
//!   capability, one for both audiences (entrepreneurs; local officials and
//!   SME-support staff).
//! - [`official::Official`]: a local official or SME-support staff member
//!   trained by the programme (not a registry person).
//! - [`support::Support`]: the start-up support services a person received.
//!
//! [`eligibility`] is the pure check of an applicant's facts against a call's
//! rules; [`scoring`] the pure arithmetic of weighted evaluation scores.
//!
//! **Outside facts come in.** A command carries what it is decided on from
//! outside its aggregate — the call's terms when applying, the person's
//! facts from this service's projection of the registry, a session's
//! schedule when enrolling — and every date and time (`Stamp`, `on`,
//! `today`): nothing here reads a clock.
//!
//! **Who and why.** Every decision event carries a [`Stamp`] (the actor's
//! token subject and the time) and, where a decision has one, its reason or
//! reference (committee minutes, handover record, delivery note).
//!
//! **Two aggregates, one decision.** A committee's approval is
//! `CallCommand::Commit` on the call and `ApplicationCommand::Approve` on
//! the application, decided together and stored in one JetStream atomic
//! batch with each subject's expected sequence: each aggregate checks its
//! own rules (the call its cap and remaining budget, the application its
//! state, its evaluations and the amount against the requested one and the
//! cap), and either both commits are stored or neither. Closing or
//! cancelling a grant pairs the application's event with the call's
//! `Release` the same way.

use chrono::{DateTime, Utc};

pub mod application;
pub mod call;
#[cfg(test)]
mod contract;
pub mod eligibility;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod localities;
pub mod official;
pub mod scoring;
pub mod support;
pub mod training;

/// Claim kind: one application per person and call (`<call>#<person>`).
pub const CALL_APPLICANT: &str = "call-applicant";
/// Claim kind: a call's training places (`<call>#<place>`, 1..=places).
pub const CALL_TRAINING_PLACE: &str = "call-training-place";
/// Claim kind: a session's seats (`<session>#<seat>`, 1..=capacity).
pub const SESSION_SEAT: &str = "session-seat";
/// Claim kind: a session's code (certificate numbers start with it).
pub const SESSION_CODE: &str = "session-code";
/// Claim kind: a person's one grant (`<person>`).
pub const GRANTEE: &str = "grantee";
/// The rule a second grant to one person breaks (its `grantee` claim is
/// held: the edge names it).
pub const ONE_GRANT_PER_PERSON: &str = "ONE_GRANT_PER_PERSON";

/// An amount in minor units of a currency.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Money {
    /// Minor units (cents, bani).
    pub minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

impl Money {
    /// `minor` of `currency`.
    pub fn new(minor: i64, currency: &str) -> Self {
        Self { minor, currency: currency.to_owned() }
    }

    /// The same currency, another amount.
    pub fn with(&self, minor: i64) -> Self {
        Self { minor, currency: self.currency.clone() }
    }
}

/// Who decided, and when: the actor's token subject (an evaluator's is
/// their evaluator id) and the command's time.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Stamp {
    /// The actor's token subject.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

impl Stamp {
    /// `by` at `at`.
    pub fn new(by: &str, at: DateTime<Utc>) -> Self {
        Self { by: by.to_owned(), at }
    }
}

/// Sex, as the registry records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sex {
    /// Female.
    Female,
    /// Male.
    Male,
}

/// A registry category.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// A migrant abroad.
    MigrantAbroad,
    /// A returnee.
    Returnee,
    /// An overseas graduate.
    OverseasGraduate,
    /// A diaspora scientist.
    DiasporaScientist,
    /// A youth entrepreneur.
    YouthEntrepreneur,
    /// A woman entrepreneur.
    WomanEntrepreneur,
}

/// Whom a course trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Audience {
    /// Entrepreneurs: applicants to a call.
    Entrepreneurs,
    /// Local officials and SME-support staff.
    Officials,
}

/// `a + b` or `None` on overflow; the sum of a list of amounts.
pub(crate) fn sum(amounts: impl IntoIterator<Item = i64>) -> Option<i64> {
    amounts.into_iter().try_fold(0i64, i64::checked_add)
}
