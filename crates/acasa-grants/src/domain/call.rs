//! The call aggregate: a programme call's terms, and its budget.
//!
//! **Terms** are fixed when the call opens: the budget and the per-grant cap
//! (one currency, 0 < cap ≤ budget), the dates applications are taken (both
//! included), the districts (none: every district), the training places,
//! the eligibility rules and the evaluation (criteria, scale, evaluators
//! needed, pass score). Only the budget may change later, never below what
//! is committed.
//!
//! **The budget side of a grant.** A committee's approval commits the
//! approved amount on the call (`Commit`), decided together with the
//! application's `Approve` and stored with it in one atomic batch (each
//! subject with its expected sequence): the call refuses an amount over the
//! cap (`OVER_CAP`) or over what remains (`OVER_BUDGET`, naming the
//! remainder), so concurrent approvals serialise on the call's subject and
//! the budget is never exceeded. An application is committed once: the
//! same commit again changes nothing, another amount is refused
//! (`ALREADY_COMMITTED`). A cancelled grant, or the unspent part of a
//! closed one, is given back by `Release` (at most what is committed:
//! `RELEASE_OVER_COMMITTED`; nothing committed: `NOT_COMMITTED`).
//!
//! Commitments are taken after the call closed too: closing ends
//! applications, not the committee's work.

use std::collections::BTreeMap;

use acasa_domain::{Aggregate, Rejection, RejectionKind};
use chrono::NaiveDate;
use uuid::Uuid;

use super::eligibility::Rules;
use super::scoring::{Evaluation, EvaluationError};
use super::{Money, Stamp};

/// A call's terms, as opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCall {
    /// Id.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// The budget.
    pub budget: Money,
    /// The most one grant may be.
    pub cap: Money,
    /// The first day applications are taken.
    pub opens_on: NaiveDate,
    /// The last day applications are taken.
    pub closes_on: NaiveDate,
    /// Districts (folded; empty: every district).
    pub districts: Vec<String>,
    /// How many applicants the call trains.
    pub training_places: u32,
    /// Who is eligible.
    pub eligibility: Rules,
    /// How plans are evaluated.
    pub evaluation: Evaluation,
}

/// One application's commitment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Commitment {
    /// Committed by the approval, in minor units.
    pub committed: i64,
    /// Given back since, in minor units.
    pub released: i64,
}

impl Commitment {
    /// What is still committed.
    pub fn held(&self) -> i64 {
        self.committed - self.released
    }
}

/// A call's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Call {
    /// Id, once opened.
    pub id: Option<Uuid>,
    /// Terms.
    pub terms: Option<NewCall>,
    /// The budget now, in minor units.
    pub budget: i64,
    /// Closed to applications (before or at its close date).
    pub closed: bool,
    /// Commitments by application.
    pub commitments: BTreeMap<Uuid, Commitment>,
}

/// What can be asked of a call.
#[derive(Clone, Debug, PartialEq)]
pub enum CallCommand {
    /// Open it.
    Open(Box<NewCall>, Stamp),
    /// Take no more applications.
    Close {
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Change the budget (not below what is committed).
    ChangeBudget {
        /// The new budget.
        budget: Money,
        /// Why (a donor's amendment, a reallocation).
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Commit an approved grant's amount (with the application's approval).
    Commit {
        /// The application.
        application: Uuid,
        /// The approved amount.
        amount: Money,
        /// Who, when.
        stamp: Stamp,
    },
    /// Give back (part of) a grant's commitment.
    Release {
        /// The application.
        application: Uuid,
        /// How much.
        amount: Money,
        /// Why (cancelled, closed under the approved amount).
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
}

/// What happened to a call.
#[derive(Clone, Debug, PartialEq)]
pub enum CallEvent {
    /// Opened.
    Opened(Box<NewCall>, Stamp),
    /// Closed to applications.
    Closed {
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// The budget changed.
    BudgetChanged {
        /// The new budget.
        budget: Money,
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// A grant's amount was committed.
    Committed {
        /// The application.
        application: Uuid,
        /// How much.
        amount: Money,
        /// Who, when.
        stamp: Stamp,
    },
    /// (Part of) a grant's commitment was given back.
    Released {
        /// The application.
        application: Uuid,
        /// How much.
        amount: Money,
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
}

/// Why a call refused a command.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum CallError {
    /// Opened twice.
    #[error("the call already exists")]
    AlreadyExists,
    /// Not opened.
    #[error("no such call")]
    NotFound,
    /// The budget is not positive.
    #[error("must be more than zero")]
    Budget,
    /// The cap is not positive, above the budget, or in another currency.
    #[error("must be more than zero, at most the budget, in the budget's currency")]
    Cap,
    /// Closes before it opens.
    #[error("must not be before opens_on")]
    Dates,
    /// No training places.
    #[error("must be at least 1")]
    TrainingPlaces,
    /// The age range is upside down.
    #[error("must not be above max_age")]
    AgeRange,
    /// The evaluation is not usable.
    #[error("{0}")]
    Evaluation(EvaluationError),
    /// Another currency than the call's.
    #[error("must be in {currency}")]
    Currency {
        /// The request field.
        field: &'static str,
        /// The call's currency.
        currency: String,
    },
    /// Not a positive amount.
    #[error("must be more than zero")]
    NotPositive {
        /// The request field.
        field: &'static str,
    },
    /// Over the per-grant cap.
    #[error("the amount is over the call's per-grant cap ({cap})")]
    OverCap {
        /// The cap, in minor units.
        cap: i64,
    },
    /// Over what remains of the budget.
    #[error("the amount is over what remains of the call's budget ({remaining} left)")]
    OverBudget {
        /// What remains, in minor units.
        remaining: i64,
    },
    /// Committed before with another amount.
    #[error("the application's grant is already committed ({committed})")]
    AlreadyCommitted {
        /// What was committed, in minor units.
        committed: i64,
    },
    /// Releasing for an application with no commitment.
    #[error("the application has no commitment on this call")]
    NotCommitted,
    /// Releasing more than is committed.
    #[error("the release is over what is committed for the application ({held} held)")]
    ReleaseOverCommitted {
        /// What is held, in minor units.
        held: i64,
    },
    /// A budget below the commitments.
    #[error("the budget must not be below what is committed ({committed})")]
    BudgetBelowCommitted {
        /// What is committed, in minor units.
        committed: i64,
    },
}

impl Rejection for CallError {
    fn kind(&self) -> RejectionKind {
        match self {
            Self::AlreadyExists => RejectionKind::AlreadyExists,
            Self::NotFound => RejectionKind::NotFound,
            Self::Budget
            | Self::Cap
            | Self::Dates
            | Self::TrainingPlaces
            | Self::AgeRange
            | Self::Evaluation(_)
            | Self::Currency { .. }
            | Self::NotPositive { .. } => RejectionKind::InvalidArgument,
            _ => RejectionKind::FailedPrecondition,
        }
    }

    fn field(&self) -> Option<&'static str> {
        Some(match self {
            Self::Budget => "terms.budget",
            Self::Cap => "terms.cap",
            Self::Dates => "terms.closes_on",
            Self::TrainingPlaces => "terms.training_places",
            Self::AgeRange => "terms.eligibility.age.min_age",
            Self::Evaluation(EvaluationError::Criteria) => "terms.evaluation.criteria",
            Self::Evaluation(EvaluationError::Scale) => "terms.evaluation.scale_max",
            Self::Evaluation(EvaluationError::MinEvaluators) => "terms.evaluation.min_evaluators",
            Self::Evaluation(EvaluationError::PassScore) => "terms.evaluation.pass_score",
            Self::Currency { field, .. } | Self::NotPositive { field } => field,
            _ => return None,
        })
    }

    fn rule(&self) -> Option<&'static str> {
        Some(match self {
            Self::OverCap { .. } => "OVER_CAP",
            Self::OverBudget { .. } => "OVER_BUDGET",
            Self::AlreadyCommitted { .. } => "ALREADY_COMMITTED",
            Self::NotCommitted => "NOT_COMMITTED",
            Self::ReleaseOverCommitted { .. } => "RELEASE_OVER_COMMITTED",
            Self::BudgetBelowCommitted { .. } => "BUDGET_BELOW_COMMITTED",
            _ => return None,
        })
    }
}

fn check(new: &NewCall) -> Result<(), CallError> {
    if new.budget.minor <= 0 {
        return Err(CallError::Budget);
    }
    if new.cap.minor <= 0 || new.cap.minor > new.budget.minor || new.cap.currency != new.budget.currency {
        return Err(CallError::Cap);
    }
    if new.closes_on < new.opens_on {
        return Err(CallError::Dates);
    }
    if new.training_places == 0 {
        return Err(CallError::TrainingPlaces);
    }
    if new.eligibility.age.is_some_and(|a| a.min > a.max) {
        return Err(CallError::AgeRange);
    }
    new.evaluation.check().map_err(CallError::Evaluation)
}

impl Call {
    fn new_call(&self) -> Result<&NewCall, CallError> {
        self.terms.as_ref().ok_or(CallError::NotFound)
    }

    fn money(&self, amount: &Money, field: &'static str) -> Result<(), CallError> {
        let currency = &self.new_call()?.budget.currency;
        if &amount.currency != currency {
            return Err(CallError::Currency { field, currency: currency.clone() });
        }
        if amount.minor <= 0 {
            return Err(CallError::NotPositive { field });
        }
        Ok(())
    }

    /// What is committed now, in minor units.
    pub fn committed(&self) -> i64 {
        self.commitments.values().map(Commitment::held).sum()
    }

    /// What remains of the budget, in minor units.
    pub fn remaining(&self) -> i64 {
        self.budget - self.committed()
    }

    /// Whether the call takes applications on `on`.
    pub fn takes_applications_on(&self, on: NaiveDate) -> bool {
        self.terms.as_ref().is_some_and(|t| !self.closed && (t.opens_on..=t.closes_on).contains(&on))
    }
}

impl Aggregate for Call {
    type Command = CallCommand;
    type Event = CallEvent;
    type Error = CallError;
    const KIND: &'static str = "call";

    fn decide(&self, command: &CallCommand) -> Result<Vec<CallEvent>, CallError> {
        use CallCommand as C;
        use CallEvent as E;
        if let C::Open(new, stamp) = command {
            if self.exists() {
                return Err(CallError::AlreadyExists);
            }
            check(new)?;
            return Ok(vec![E::Opened(new.clone(), stamp.clone())]);
        }
        let terms = self.new_call()?;
        Ok(match command {
            C::Open(..) => Vec::new(),
            C::Close { .. } if self.closed => Vec::new(),
            C::Close { reason, stamp } => vec![E::Closed { reason: reason.clone(), stamp: stamp.clone() }],
            C::ChangeBudget { budget, reason, stamp } => {
                self.money(budget, "budget")?;
                if budget.minor == self.budget {
                    return Ok(Vec::new());
                }
                let committed = self.committed();
                if budget.minor < committed {
                    return Err(CallError::BudgetBelowCommitted { committed });
                }
                vec![E::BudgetChanged { budget: budget.clone(), reason: reason.clone(), stamp: stamp.clone() }]
            }
            C::Commit { application, amount, stamp } => {
                self.money(amount, "amount")?;
                if let Some(c) = self.commitments.get(application) {
                    // The same commit again (a retried approval) changes nothing.
                    if c.committed == amount.minor && c.released == 0 {
                        return Ok(Vec::new());
                    }
                    return Err(CallError::AlreadyCommitted { committed: c.committed });
                }
                if amount.minor > terms.cap.minor {
                    return Err(CallError::OverCap { cap: terms.cap.minor });
                }
                let remaining = self.remaining();
                if amount.minor > remaining {
                    return Err(CallError::OverBudget { remaining });
                }
                vec![E::Committed { application: *application, amount: amount.clone(), stamp: stamp.clone() }]
            }
            C::Release { application, amount, reason, stamp } => {
                self.money(amount, "amount")?;
                let c = self.commitments.get(application).ok_or(CallError::NotCommitted)?;
                if amount.minor > c.held() {
                    return Err(CallError::ReleaseOverCommitted { held: c.held() });
                }
                vec![E::Released {
                    application: *application,
                    amount: amount.clone(),
                    reason: reason.clone(),
                    stamp: stamp.clone(),
                }]
            }
        })
    }

    fn evolve(&mut self, event: &CallEvent) {
        match event {
            CallEvent::Opened(new, _) => {
                self.id = Some(new.id);
                self.budget = new.budget.minor;
                self.terms = Some((**new).clone());
            }
            CallEvent::Closed { .. } => self.closed = true,
            CallEvent::BudgetChanged { budget, .. } => self.budget = budget.minor,
            CallEvent::Committed { application, amount, .. } => {
                self.commitments.insert(*application, Commitment { committed: amount.minor, released: 0 });
            }
            CallEvent::Released { application, amount, .. } => {
                if let Some(c) = self.commitments.get_mut(application) {
                    c.released += amount.minor;
                }
            }
        }
    }

    fn exists(&self) -> bool {
        self.id.is_some()
    }
}

#[cfg(test)]
mod tests {
    use acasa_domain::testing::{given, when};
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::domain::eligibility::AgeRange;
    use crate::domain::scoring::Criterion;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn stamp() -> Stamp {
        Stamp::new("admin-1", DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap())
    }

    fn eur(minor: i64) -> Money {
        Money::new(minor, "EUR")
    }

    fn app(n: u128) -> Uuid {
        Uuid::from_u128(0xa000 + n)
    }

    /// 5,000.00 EUR, 2,000.00 cap.
    fn new_call() -> NewCall {
        NewCall {
            id: Uuid::from_u128(0xca11),
            title: "Start-up grants 2027".into(),
            budget: eur(500_000),
            cap: eur(200_000),
            opens_on: d(2027, 2, 1),
            closes_on: d(2027, 3, 31),
            districts: vec!["cahul".into()],
            training_places: 30,
            eligibility: Rules { age: Some(AgeRange { min: 18, max: 35 }), ..Rules::default() },
            evaluation: Evaluation {
                criteria: vec![Criterion { key: "viability".into(), title: "Viability".into(), weight: 1 }],
                scale_max: 10,
                min_evaluators: 2,
                pass_score: 0,
            },
        }
    }

    fn open() -> CallCommand {
        CallCommand::Open(Box::new(new_call()), stamp())
    }

    fn commit(n: u128, minor: i64) -> CallCommand {
        CallCommand::Commit { application: app(n), amount: eur(minor), stamp: stamp() }
    }

    fn release(n: u128, minor: i64) -> CallCommand {
        CallCommand::Release { application: app(n), amount: eur(minor), reason: "cancelled".into(), stamp: stamp() }
    }

    fn budget(minor: i64) -> CallCommand {
        CallCommand::ChangeBudget { budget: eur(minor), reason: "amendment 2".into(), stamp: stamp() }
    }

    #[test]
    fn a_call_opens_once_on_sound_terms() {
        let none = given::<Call>(&[]);
        let call = when(&none, &open()).state();
        assert_eq!((call.budget, call.remaining(), call.committed()), (500_000, 500_000, 0));
        assert_eq!(when(&call, &open()).refused(), CallError::AlreadyExists);
        let refused = |f: fn(&mut NewCall)| {
            let mut n = new_call();
            f(&mut n);
            when(&given::<Call>(&[]), &CallCommand::Open(Box::new(n), stamp())).refused()
        };
        assert_eq!(refused(|n| n.budget.minor = 0), CallError::Budget);
        assert_eq!(refused(|n| n.cap.minor = 0), CallError::Cap);
        assert_eq!(refused(|n| n.cap.minor = 500_001), CallError::Cap);
        assert_eq!(refused(|n| n.cap.currency = "MDL".into()), CallError::Cap);
        assert_eq!(refused(|n| n.closes_on = d(2027, 1, 31)), CallError::Dates);
        assert_eq!(refused(|n| n.training_places = 0), CallError::TrainingPlaces);
        assert_eq!(refused(|n| n.eligibility.age = Some(AgeRange { min: 36, max: 35 })), CallError::AgeRange);
        assert_eq!(refused(|n| n.evaluation.min_evaluators = 0), CallError::Evaluation(EvaluationError::MinEvaluators));
        // Edges that are fine: the cap equal to the budget, a one-day call, a one-year age range.
        let mut edge = new_call();
        edge.cap = eur(500_000);
        edge.closes_on = edge.opens_on;
        edge.eligibility.age = Some(AgeRange { min: 35, max: 35 });
        assert!(when(&none, &CallCommand::Open(Box::new(edge), stamp())).result().is_ok());
        for (e, field) in [
            (CallError::Budget, "terms.budget"),
            (CallError::Cap, "terms.cap"),
            (CallError::Dates, "terms.closes_on"),
            (CallError::TrainingPlaces, "terms.training_places"),
            (CallError::AgeRange, "terms.eligibility.age.min_age"),
            (CallError::Evaluation(EvaluationError::Criteria), "terms.evaluation.criteria"),
            (CallError::Evaluation(EvaluationError::Scale), "terms.evaluation.scale_max"),
            (CallError::Evaluation(EvaluationError::MinEvaluators), "terms.evaluation.min_evaluators"),
            (CallError::Evaluation(EvaluationError::PassScore), "terms.evaluation.pass_score"),
            (CallError::Currency { field: "amount", currency: "EUR".into() }, "amount"),
            (CallError::NotPositive { field: "budget" }, "budget"),
        ] {
            assert_eq!((e.kind(), e.field(), e.rule()), (RejectionKind::InvalidArgument, Some(field), None), "{e}");
        }
        assert_eq!(CallError::AlreadyExists.kind(), RejectionKind::AlreadyExists);
        assert_eq!(CallError::NotFound.kind(), RejectionKind::NotFound);
        assert_eq!((CallError::NotFound.field(), CallError::NotFound.rule()), (None, None));
    }

    #[test]
    fn nothing_happens_to_a_call_that_was_not_opened() {
        let none = given::<Call>(&[]);
        assert_eq!(when(&none, &commit(1, 100)).refused(), CallError::NotFound);
        assert_eq!(
            when(&none, &CallCommand::Close { reason: "x".into(), stamp: stamp() }).refused(),
            CallError::NotFound
        );
        assert!(!none.takes_applications_on(d(2027, 2, 1)));
    }

    #[test]
    fn a_call_takes_applications_between_its_dates_until_closed() {
        let call = given::<Call>(&[open()]);
        assert!(!call.takes_applications_on(d(2027, 1, 31)));
        assert!(call.takes_applications_on(d(2027, 2, 1)));
        assert!(call.takes_applications_on(d(2027, 3, 31)));
        assert!(!call.takes_applications_on(d(2027, 4, 1)));
        let close = CallCommand::Close { reason: "enough applications".into(), stamp: stamp() };
        let closed = when(&call, &close).state();
        assert!(!closed.takes_applications_on(d(2027, 2, 1)));
        assert_eq!(when(&closed, &close).events(), [], "closing twice changes nothing");
    }

    #[test]
    fn a_commit_takes_the_amount_within_the_cap_and_the_remaining_budget() {
        let call = given::<Call>(&[open(), commit(1, 200_000), commit(2, 200_000)]);
        assert_eq!((call.committed(), call.remaining()), (400_000, 100_000));
        assert_eq!(when(&call, &commit(3, 100_000)).state().remaining(), 0, "exactly what remains");
        assert_eq!(when(&call, &commit(3, 100_001)).refused(), CallError::OverBudget { remaining: 100_000 });
        let fresh = given::<Call>(&[open()]);
        assert_eq!(when(&fresh, &commit(1, 200_000)).state().remaining(), 300_000, "exactly the cap");
        assert_eq!(when(&fresh, &commit(1, 200_001)).refused(), CallError::OverCap { cap: 200_000 });
        assert_eq!(when(&fresh, &commit(1, 0)).refused(), CallError::NotPositive { field: "amount" });
        assert_eq!(
            when(&fresh, &CallCommand::Commit { application: app(1), amount: Money::new(5, "MDL"), stamp: stamp() })
                .refused(),
            CallError::Currency { field: "amount", currency: "EUR".into() }
        );
        let over = CallError::OverBudget { remaining: 100_000 };
        assert_eq!((over.kind(), over.rule()), (RejectionKind::FailedPrecondition, Some("OVER_BUDGET")));
        assert!(over.to_string().contains("100000 left"));
        assert_eq!(CallError::OverCap { cap: 1 }.rule(), Some("OVER_CAP"));
    }

    #[test]
    fn an_application_is_committed_once() {
        let call = given::<Call>(&[open(), commit(1, 150_000)]);
        assert_eq!(when(&call, &commit(1, 150_000)).events(), [], "the same commit again changes nothing");
        assert_eq!(when(&call, &commit(1, 120_000)).refused(), CallError::AlreadyCommitted { committed: 150_000 });
        let released = given::<Call>(&[open(), commit(1, 150_000), release(1, 10_000)]);
        assert_eq!(
            when(&released, &commit(1, 150_000)).refused(),
            CallError::AlreadyCommitted { committed: 150_000 },
            "a partly released commitment is not taken again"
        );
        assert_eq!(CallError::AlreadyCommitted { committed: 1 }.rule(), Some("ALREADY_COMMITTED"));
    }

    #[test]
    fn a_release_gives_back_at_most_what_is_held() {
        let call = given::<Call>(&[open(), commit(1, 150_000), commit(2, 200_000)]);
        assert_eq!(call.remaining(), 150_000);
        let part = when(&call, &release(1, 30_000)).state();
        assert_eq!((part.committed(), part.remaining()), (320_000, 180_000));
        assert_eq!(part.commitments[&app(1)].held(), 120_000);
        assert_eq!(when(&part, &release(1, 120_001)).refused(), CallError::ReleaseOverCommitted { held: 120_000 });
        let all = when(&part, &release(1, 120_000)).state();
        assert_eq!(all.remaining(), 300_000);
        assert_eq!(when(&call, &release(3, 1)).refused(), CallError::NotCommitted);
        assert_eq!(when(&call, &release(1, 0)).refused(), CallError::NotPositive { field: "amount" });
        assert_eq!(CallError::NotCommitted.rule(), Some("NOT_COMMITTED"));
        assert_eq!(CallError::ReleaseOverCommitted { held: 1 }.rule(), Some("RELEASE_OVER_COMMITTED"));
        // What was given back can be committed to another application.
        assert_eq!(when(&all, &commit(3, 200_000)).state().remaining(), 100_000);
    }

    #[test]
    fn the_budget_changes_but_never_below_the_commitments() {
        let call = given::<Call>(&[open(), commit(1, 200_000)]);
        assert_eq!(when(&call, &budget(500_000)).events(), [], "unchanged");
        assert_eq!(when(&call, &budget(700_000)).state().remaining(), 500_000);
        assert_eq!(when(&call, &budget(200_000)).state().remaining(), 0, "down to exactly the commitments");
        assert_eq!(when(&call, &budget(199_999)).refused(), CallError::BudgetBelowCommitted { committed: 200_000 });
        assert_eq!(when(&call, &budget(0)).refused(), CallError::NotPositive { field: "budget" });
        assert_eq!(
            when(
                &call,
                &CallCommand::ChangeBudget { budget: Money::new(1, "MDL"), reason: "x".into(), stamp: stamp() }
            )
            .refused(),
            CallError::Currency { field: "budget", currency: "EUR".into() }
        );
        assert_eq!(CallError::BudgetBelowCommitted { committed: 1 }.rule(), Some("BUDGET_BELOW_COMMITTED"));
        // A smaller budget is what commits are checked against.
        let smaller = given::<Call>(&[open(), commit(1, 200_000), budget(300_000)]);
        assert_eq!(when(&smaller, &commit(2, 100_001)).refused(), CallError::OverBudget { remaining: 100_000 });
    }
}
