//! The rule names are the contract: pinned here, and every one documented
//! in `grants.proto`.

use acasa_domain::Rejection;
use chrono::NaiveDate;
use uuid::Uuid;

use super::application::ApplicationError as A;
use super::call::CallError as C;
use super::eligibility::Rule;
use super::official::OfficialError as O;
use super::training::{CourseError, SessionError, TrainingRule as T};
use super::{ONE_GRANT_PER_PERSON, scoring::ScoresError};

const PROTO: &str = include_str!("../../../../proto/acasa/grants/v1/grants.proto");

fn all_rules() -> Vec<&'static str> {
    let day = NaiveDate::MIN;
    let training = [
        T::Audience,
        T::SessionCancelled,
        T::SessionStarted,
        T::SessionFull(1),
        T::NotEnrolled,
        T::TrainingFinished,
        T::NotASessionDay,
        T::DayNotYet,
        T::SessionNotOver,
    ];
    let eligibility = [
        Rule::PersonUnknown,
        Rule::PersonErased,
        Rule::PersonMerged(Uuid::nil()),
        Rule::ProgrammeConsent,
        Rule::Age,
        Rule::Sex,
        Rule::Rural,
        Rule::Category,
        Rule::District,
    ];
    let mut out: Vec<Option<&'static str>> = Vec::new();
    out.extend(
        [
            C::OverCap { cap: 1 },
            C::OverBudget { remaining: 1 },
            C::AlreadyCommitted { committed: 1 },
            C::NotCommitted,
            C::ReleaseOverCommitted { held: 1 },
            C::BudgetBelowCommitted { committed: 1 },
        ]
        .iter()
        .map(Rejection::rule),
    );
    out.extend(training.iter().map(|t| A::Training(*t).rule()));
    out.extend(training.iter().map(|t| O::Training(*t).rule()));
    out.extend(eligibility.iter().map(|r| A::Ineligible(*r).rule()));
    out.extend(eligibility.iter().map(|r| A::Barred(*r).rule()));
    out.extend([CourseError::Retired.rule()]);
    out.extend(
        [SessionError::CourseRetired, SessionError::Started, SessionError::Cancelled, SessionError::CapacityShrinks(1)]
            .iter()
            .map(Rejection::rule),
    );
    out.extend([O::Erased.rule(), O::AlreadyEnrolled.rule()]);
    out.extend(
        [
            A::Transition("a", "b"),
            A::CallNotOpen(day),
            A::CallClosed,
            A::CallTrainingFull(1),
            A::TrainingNotCompleted,
            A::EvaluationStarted,
            A::EvaluatorConflict,
            A::AlreadyScored,
            A::TooFewEvaluations { have: 0, need: 1 },
            A::BelowPassScore { score: 0, pass: 1 },
            A::OverCap { cap: 1 },
            A::AboveRequested { requested: 1 },
            A::ItemState("a", "b"),
            A::ItemNotDelivered,
            A::ItemPaid,
            A::OverApproved { remaining: 1 },
            A::NothingHandedOver,
            A::OpenOrders,
            A::SupplierUnpaid,
            A::NoMonitoringVisit,
            A::ProcurementStarted,
        ]
        .iter()
        .map(Rejection::rule),
    );
    out.push(Some(ONE_GRANT_PER_PERSON));
    let mut names: Vec<&'static str> = out.into_iter().map(|r| r.unwrap_or("(none)")).collect();
    names.sort_unstable();
    names.dedup();
    names
}

#[test]
fn the_rule_names_are_pinned() {
    assert_eq!(
        all_rules(),
        [
            "ABOVE_REQUESTED",
            "AGE",
            "ALREADY_COMMITTED",
            "ALREADY_ENROLLED",
            "ALREADY_SCORED",
            "APPLICATION_STATE",
            "AUDIENCE",
            "BELOW_PASS_SCORE",
            "BUDGET_BELOW_COMMITTED",
            "CALL_CLOSED",
            "CALL_NOT_OPEN",
            "CALL_TRAINING_FULL",
            "CAPACITY_SHRINKS",
            "CATEGORY",
            "COURSE_RETIRED",
            "DAY_NOT_YET",
            "DISTRICT",
            "EVALUATION_STARTED",
            "EVALUATOR_CONFLICT",
            "ITEM_NOT_DELIVERED",
            "ITEM_PAID",
            "ITEM_STATE",
            "NOTHING_HANDED_OVER",
            "NOT_A_SESSION_DAY",
            "NOT_COMMITTED",
            "NOT_ENROLLED",
            "NO_MONITORING_VISIT",
            "OFFICIAL_ERASED",
            "ONE_GRANT_PER_PERSON",
            "OPEN_ORDERS",
            "OVER_APPROVED",
            "OVER_BUDGET",
            "OVER_CAP",
            "PERSON_ERASED",
            "PERSON_MERGED",
            "PERSON_UNKNOWN",
            "PROCUREMENT_STARTED",
            "PROGRAMME_CONSENT",
            "RELEASE_OVER_COMMITTED",
            "RURAL",
            "SESSION_CANCELLED",
            "SESSION_FULL",
            "SESSION_NOT_OVER",
            "SESSION_STARTED",
            "SEX",
            "SUPPLIER_UNPAID",
            "TOO_FEW_EVALUATIONS",
            "TRAINING_FINISHED",
            "TRAINING_NOT_COMPLETED",
        ]
    );
}

#[test]
fn every_rule_is_documented_in_the_contract() {
    let words: Vec<&str> =
        PROTO.split(|c: char| !(c.is_ascii_uppercase() || c == '_')).filter(|w| !w.is_empty()).collect();
    for rule in all_rules() {
        assert!(words.contains(&rule), "{rule} is not in grants.proto");
    }
}

#[test]
fn invalid_arguments_name_no_rule() {
    let scores = A::Scores(ScoresError::Missing("k".into()));
    assert_eq!((scores.rule(), scores.field()), (None, Some("scores")));
}
