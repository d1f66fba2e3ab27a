//! The application aggregate: one registry person's application to one
//! call, the whole way.
//!
//! ```text
//! Apply ──► eligible ──► enrolled in training ──► trained ──► plan submitted
//!   │           │  ▲            │        │                     │ scored by evaluators
//!   ▼           ▼  └─unenrolled─┘        ▼ (below threshold)   ▼
//! ineligible  withdrawn          not through training     approved ──► items ordered, delivered,
//!  (rule)       (any time before the committee)   ↺ enrol      │       paid, handed over;
//!                                                    again     │       monitoring visits ──► closed
//!                                                 rejected ◄───┘ or cancelled (nothing ordered)
//! ```
//!
//! **Applying.** The command carries the call's terms (from the call's log)
//! and the person's facts (from this service's projection of the
//! registry). The call must take applications on the day (`CALL_NOT_OPEN`
//! before its first day, `CALL_CLOSED` after its last or once closed). A
//! person the registry does not know as active, or who does not consent to
//! programme participation, is refused (`PERSON_*`, `PROGRAMME_CONSENT`):
//! nothing about them is recorded. Otherwise the application is recorded
//! with its eligibility assessment — eligible, or ineligible naming the
//! first rule that failed ([`super::eligibility`]) — so the funnel counts
//! who applied and who was eligible, and an ineligible application is
//! refused further with that rule's name (`AGE`, `DISTRICT`, …). A
//! caseworker may reassess it on newer facts (`Reassess`) until training.
//! One application per person and call: the claim `call-applicant
//! <call>#<person>` (freed by withdrawal).
//!
//! **Training** follows the shared rules of [`super::training`]: enrolling
//! takes a seat of the session and, the first time, one of the call's
//! training places (`call-training-place <call>#<place>`, 1..=places:
//! never more applicants in training than the call has places;
//! `CALL_TRAINING_FULL` when all are held). An applicant not through
//! training may enrol again (keeping their place). Unenrolling frees the
//! seat, and the place if no training was attended on it.
//!
//! **The business plan** (sector, summary, requested amount, items) comes
//! after training (`TRAINING_NOT_COMPLETED`), in the call's currency, at
//! most the cap (`OVER_CAP`), its items worth at least the requested
//! amount; revised until the first evaluator acts (`EVALUATION_STARTED`).
//!
//! **Evaluation.** Evaluators (caseworkers; their token subject is their
//! evaluator id) score every criterion once (`ALREADY_SCORED`). An
//! evaluator who declares a conflict of interest is excluded: their score
//! is refused (`EVALUATOR_CONFLICT`), or, declared after scoring, no longer
//! counts. The final score is the weighted mean over the evaluators not
//! excluded ([`super::scoring`]).
//!
//! **The committee** decides once at least the call's number of evaluators
//! scored without a conflict (`TOO_FEW_EVALUATIONS`): it approves an amount
//! at most the cap (`OVER_CAP`) and at most what was requested
//! (`ABOVE_REQUESTED`), for a plan at or above the pass score
//! (`BELOW_PASS_SCORE`), with the minutes' reference — together with the
//! call's `Commit` in one atomic batch (see [`super::call`]) — or rejects
//! it with reasons. The approval takes the claim `grantee <person>`: one
//! grant per person (`ONE_GRANT_PER_PERSON` at the edge), freed if the
//! grant is cancelled.
//!
//! **In-kind procurement.** Items (description, supplier, quantity, unit
//! price) are ordered — never more in all than the approved amount
//! (`OVER_APPROVED`, naming what is left; a cancelled order frees its
//! amount) — delivered (with the delivery note), paid to the supplier
//! (finance), and handed over to the entrepreneur with a handover record
//! (its reference, the items, the day, the place). Monitoring visits (day,
//! officer, whether the business operates, jobs created, findings) follow
//! the first handover (`NOTHING_HANDED_OVER`). Closing needs every order
//! handed over or cancelled (`OPEN_ORDERS`), every supplier paid
//! (`SUPPLIER_UNPAID`) and a monitoring visit (`NO_MONITORING_VISIT`); it
//! records what was spent and what is left unspent, which the call's
//! `Release` gives back in the same batch. A grant with nothing ordered
//! may be cancelled instead (`PROCUREMENT_STARTED` otherwise), giving back
//! the whole amount.

use std::collections::{BTreeMap, BTreeSet};

use acasa_domain::{Aggregate, Claim, ClaimChange, Rejection, RejectionKind};
use chrono::NaiveDate;
use uuid::Uuid;

use super::call::NewCall;
use super::eligibility::{self, PersonFacts, Rule, Rules};
use super::scoring::{Evaluation, ScoresError};
use super::training::{self, Enrolment, Finished, SessionFacts, TrainingRule};
use super::{Audience, CALL_APPLICANT, CALL_TRAINING_PLACE, GRANTEE, Money, Stamp, sum};

/// What an application keeps of its call's terms (fixed when the call opened).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantTerms {
    /// The per-grant cap.
    pub cap: Money,
    /// The call's training places.
    pub training_places: u32,
    /// Eligibility rules.
    pub eligibility: Rules,
    /// Districts (empty: every district).
    pub districts: Vec<String>,
    /// How plans are evaluated.
    pub evaluation: Evaluation,
}

impl GrantTerms {
    /// The terms of `call`.
    pub fn of(call: &NewCall) -> Self {
        Self {
            cap: call.cap.clone(),
            training_places: call.training_places,
            eligibility: call.eligibility.clone(),
            districts: call.districts.clone(),
            evaluation: call.evaluation.clone(),
        }
    }
}

/// A new application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApplication {
    /// Id.
    pub id: Uuid,
    /// The call.
    pub call: Uuid,
    /// The registry person.
    pub person: Uuid,
    /// The day it was made (eligibility is assessed on it).
    pub applied_on: NaiveDate,
}

/// What applying knows of the call (from the call's log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallFacts {
    /// Its terms.
    pub terms: Box<NewCall>,
    /// Closed to applications.
    pub closed: bool,
}

/// Where an application stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Status {
    /// Not applied.
    #[default]
    None,
    /// Eligible.
    Eligible,
    /// Ineligible (a rule failed).
    Ineligible,
    /// Enrolled in a training session.
    Enrolled,
    /// Attended too little of a session; may enrol again.
    NotTrained,
    /// Completed training.
    Trained,
    /// The business plan is submitted; evaluation is open.
    PlanSubmitted,
    /// Approved by the committee: procurement and monitoring.
    Approved,
    /// Rejected by the committee.
    Rejected,
    /// The grant is closed.
    Closed,
    /// Withdrawn before the committee decided.
    Withdrawn,
    /// The approved grant was cancelled.
    Cancelled,
}

impl Status {
    /// The status in words.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "not applied",
            Self::Eligible => "eligible",
            Self::Ineligible => "ineligible",
            Self::Enrolled => "enrolled in training",
            Self::NotTrained => "not through training",
            Self::Trained => "trained",
            Self::PlanSubmitted => "under evaluation",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Closed => "closed",
            Self::Withdrawn => "withdrawn",
            Self::Cancelled => "cancelled",
        }
    }
}

/// An item of the business plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanItem {
    /// What.
    pub description: String,
    /// How many.
    pub quantity: u32,
    /// At what unit price (estimated).
    pub unit_price: Money,
}

/// The business plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The economic sector: a NACE Rev. 2 (CAEM-2) section letter, A to U.
    pub sector: String,
    /// A summary.
    pub summary: String,
    /// The amount requested.
    pub requested: Money,
    /// The items the grant would buy.
    pub items: Vec<PlanItem>,
}

/// Quantity × unit price, `None` on overflow.
fn line_total(quantity: u32, unit_price: &Money) -> Option<i64> {
    unit_price.minor.checked_mul(i64::from(quantity))
}

impl Plan {
    /// The items' total, `None` on overflow.
    pub fn items_total(&self) -> Option<i64> {
        self.items.iter().map(|i| line_total(i.quantity, &i.unit_price)).try_fold(0i64, |a, t| a.checked_add(t?))
    }
}

/// A supplier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Supplier {
    /// Name.
    pub name: String,
    /// IDNO, if a Moldovan company.
    pub idno: Option<String>,
}

/// An item procured in kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Id.
    pub id: Uuid,
    /// What.
    pub description: String,
    /// From whom.
    pub supplier: Supplier,
    /// How many.
    pub quantity: u32,
    /// At what unit price.
    pub unit_price: Money,
}

/// Where an item stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ItemState {
    /// Ordered.
    Ordered,
    /// The order was cancelled.
    Cancelled,
    /// Delivered.
    Delivered,
    /// Handed over to the entrepreneur.
    HandedOver,
}

impl ItemState {
    fn name(self) -> &'static str {
        match self {
            Self::Ordered => "ordered",
            Self::Cancelled => "cancelled",
            Self::Delivered => "delivered",
            Self::HandedOver => "handed over",
        }
    }
}

/// An item and where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Procured {
    /// The item.
    pub item: Item,
    /// Quantity × unit price, in minor units.
    pub total: i64,
    /// Where it stands.
    pub state: ItemState,
    /// The supplier was paid.
    pub paid: bool,
}

/// A handover record: the act by which delivered items pass to the
/// entrepreneur.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handover {
    /// The act's reference number.
    pub reference: String,
    /// The items handed over (delivered ones).
    pub items: Vec<Uuid>,
    /// When.
    pub on: NaiveDate,
    /// Where.
    pub location: String,
    /// A note (may be empty).
    pub note: String,
}

/// A monitoring visit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Visit {
    /// When.
    pub on: NaiveDate,
    /// The monitoring officer.
    pub officer: String,
    /// The business operates.
    pub operating: bool,
    /// Jobs created so far.
    pub jobs_created: u32,
    /// What was found.
    pub findings: String,
}

/// An application's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Application {
    /// Id, once applied.
    pub id: Option<Uuid>,
    /// The call.
    pub call: Option<Uuid>,
    /// The registry person.
    pub person: Option<Uuid>,
    /// The call's terms.
    pub terms: Option<GrantTerms>,
    /// Status.
    pub status: Status,
    /// The rule that failed, while ineligible.
    pub ineligible: Option<Rule>,
    /// The call's training place held.
    pub place: Option<u32>,
    /// The current enrolment.
    pub enrolment: Option<Enrolment>,
    /// Enrolments finished (completed or not).
    pub trainings: Vec<Enrolment>,
    /// The business plan.
    pub plan: Option<Plan>,
    /// Scores by evaluator (criterion → score).
    pub scores: BTreeMap<String, BTreeMap<String, u32>>,
    /// Evaluators who declared a conflict of interest.
    pub conflicts: BTreeSet<String>,
    /// The approved amount.
    pub approved: Option<Money>,
    /// Procured items by id.
    pub items: BTreeMap<Uuid, Procured>,
    /// Handover records' references.
    pub handovers: BTreeSet<String>,
    /// Monitoring visits.
    pub visits: Vec<Visit>,
}

/// What can be asked of an application.
#[derive(Clone, Debug, PartialEq)]
pub enum ApplicationCommand {
    /// Apply, on the call's terms and the person's facts.
    Apply {
        /// Id, person, day.
        application: NewApplication,
        /// The call.
        call: CallFacts,
        /// The person.
        person: PersonFacts,
        /// Who recorded it, when.
        stamp: Stamp,
    },
    /// Assess eligibility again on newer facts (until training).
    Reassess {
        /// The person's facts now.
        person: PersonFacts,
        /// The day.
        on: NaiveDate,
        /// Who, when.
        stamp: Stamp,
    },
    /// The applicant withdraws (before the committee decides).
    Withdraw {
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Enrol in a session for entrepreneurs.
    Enrol {
        /// The session.
        session: SessionFacts,
        /// The seat to take.
        seat: u32,
        /// The call's training place to take, if none is held yet.
        place: u32,
        /// Today.
        on: NaiveDate,
        /// Who, when.
        stamp: Stamp,
    },
    /// Leave the session.
    Unenrol {
        /// The session.
        session: SessionFacts,
        /// Why.
        reason: String,
        /// Today.
        on: NaiveDate,
        /// Who, when.
        stamp: Stamp,
    },
    /// Record a day's attendance.
    RecordAttendance {
        /// The session.
        session: SessionFacts,
        /// The day.
        day: NaiveDate,
        /// Present.
        present: bool,
        /// Today.
        today: NaiveDate,
        /// Who, when.
        stamp: Stamp,
    },
    /// Decide completion at the session's end.
    CompleteTraining {
        /// The session.
        session: SessionFacts,
        /// Today.
        today: NaiveDate,
        /// Who, when.
        stamp: Stamp,
    },
    /// Submit (or revise) the business plan.
    SubmitPlan(Plan, Stamp),
    /// The evaluator (`stamp.by`) declares a conflict of interest.
    DeclareConflict {
        /// What the conflict is.
        reason: String,
        /// The evaluator, when.
        stamp: Stamp,
    },
    /// The evaluator (`stamp.by`) scores the plan.
    Score {
        /// Criterion key and score.
        scores: Vec<(String, u32)>,
        /// A comment (may be empty).
        comment: String,
        /// The evaluator, when.
        stamp: Stamp,
    },
    /// The committee approves (with the call's `Commit`).
    Approve {
        /// The amount.
        amount: Money,
        /// The committee minutes' reference.
        reference: String,
        /// A note (may be empty).
        note: String,
        /// Who recorded it, when.
        stamp: Stamp,
    },
    /// The committee rejects.
    Reject {
        /// Why.
        reasons: String,
        /// The committee minutes' reference.
        reference: String,
        /// Who recorded it, when.
        stamp: Stamp,
    },
    /// Order an item.
    Order(Item, Stamp),
    /// Cancel an order (before delivery).
    CancelOrder {
        /// The item.
        item: Uuid,
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Record an item's delivery.
    RecordDelivery {
        /// The item.
        item: Uuid,
        /// When.
        on: NaiveDate,
        /// The delivery note's reference.
        reference: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Finance records the supplier's payment for a delivered item.
    RecordPayment {
        /// The item.
        item: Uuid,
        /// When.
        on: NaiveDate,
        /// The payment's reference.
        reference: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Hand delivered items over to the entrepreneur.
    HandOver(Handover, Stamp),
    /// Record a monitoring visit.
    RecordVisit(Visit, Stamp),
    /// Close the grant (with the call's `Release` of what is unspent).
    Close {
        /// A closing note (may be empty).
        note: String,
        /// What the call's `Release` in the same batch gives back, as the
        /// edge computed it from the state it loaded: refused
        /// (`ReleaseMismatch`) unless it is what is unspent when decided, so
        /// the two sides of the batch always agree (`None`: not checked).
        releasing: Option<i64>,
        /// Who, when.
        stamp: Stamp,
    },
    /// Cancel an approved grant with nothing ordered (with the call's `Release`).
    CancelGrant {
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
}

/// What happened to an application.
#[derive(Clone, Debug, PartialEq)]
pub enum ApplicationEvent {
    /// Applied.
    Applied {
        /// Id, call, person, day.
        application: NewApplication,
        /// The call's terms.
        terms: GrantTerms,
        /// Who recorded it, when.
        stamp: Stamp,
    },
    /// Eligibility assessed: `failed` names the rule, `None` is eligible.
    EligibilityAssessed {
        /// The rule that failed, if any.
        failed: Option<Rule>,
        /// The day it was assessed on.
        on: NaiveDate,
        /// Who, when.
        stamp: Stamp,
    },
    /// Withdrawn.
    Withdrawn {
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Enrolled in a session.
    Enrolled {
        /// The session.
        session: Uuid,
        /// The seat taken.
        seat: u32,
        /// The call's training place taken (none if held before).
        place: Option<u32>,
        /// Who, when.
        stamp: Stamp,
    },
    /// Left a session.
    Unenrolled {
        /// The session.
        session: Uuid,
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// A day's attendance.
    AttendanceRecorded {
        /// The session.
        session: Uuid,
        /// The day.
        day: NaiveDate,
        /// Present.
        present: bool,
        /// Who, when.
        stamp: Stamp,
    },
    /// Training completed, with a certificate.
    TrainingCompleted {
        /// The session.
        session: Uuid,
        /// The certificate's number.
        certificate: String,
        /// Days attended.
        attended: u32,
        /// The session's days.
        of: u32,
        /// Who, when.
        stamp: Stamp,
    },
    /// Attended too little.
    TrainingNotCompleted {
        /// The session.
        session: Uuid,
        /// Days attended.
        attended: u32,
        /// The session's days.
        of: u32,
        /// Who, when.
        stamp: Stamp,
    },
    /// The business plan (or its revision).
    PlanSubmitted(Plan, Stamp),
    /// An evaluator (`stamp.by`) declared a conflict of interest.
    ConflictDeclared {
        /// What the conflict is.
        reason: String,
        /// The evaluator, when.
        stamp: Stamp,
    },
    /// An evaluator (`stamp.by`) scored the plan.
    Scored {
        /// Criterion key → score.
        scores: BTreeMap<String, u32>,
        /// The weighted score, hundredths of a point.
        weighted: u32,
        /// A comment.
        comment: String,
        /// The evaluator, when.
        stamp: Stamp,
    },
    /// Approved by the committee.
    Approved {
        /// The amount.
        amount: Money,
        /// The final score then, hundredths of a point.
        score: u32,
        /// The evaluators it was computed over.
        evaluators: u32,
        /// The minutes' reference.
        reference: String,
        /// A note.
        note: String,
        /// Who recorded it, when.
        stamp: Stamp,
    },
    /// Rejected by the committee.
    Rejected {
        /// Why.
        reasons: String,
        /// The final score then, hundredths of a point.
        score: u32,
        /// The minutes' reference.
        reference: String,
        /// Who recorded it, when.
        stamp: Stamp,
    },
    /// An item was ordered.
    ItemOrdered(Item, Stamp),
    /// An order was cancelled.
    OrderCancelled {
        /// The item.
        item: Uuid,
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// An item was delivered.
    ItemDelivered {
        /// The item.
        item: Uuid,
        /// When.
        on: NaiveDate,
        /// The delivery note's reference.
        reference: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// The supplier of an item was paid (its total).
    SupplierPaid {
        /// The item.
        item: Uuid,
        /// How much.
        amount: Money,
        /// When.
        on: NaiveDate,
        /// The payment's reference.
        reference: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Items were handed over.
    HandedOver(Handover, Stamp),
    /// A monitoring visit.
    Visited(Visit, Stamp),
    /// The grant was closed.
    Closed {
        /// Spent: the items handed over.
        spent: Money,
        /// Approved but not spent (given back to the call).
        unspent: Money,
        /// A note.
        note: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// The grant was cancelled.
    GrantCancelled {
        /// The amount given back to the call.
        released: Money,
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
}

/// Why an application refused a command.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApplicationError {
    /// Applied twice.
    #[error("the application already exists")]
    AlreadyExists,
    /// Not applied.
    #[error("no such application")]
    NotFound,
    /// Not in a state that allows it.
    #[error("an application that is {0} cannot be {1}")]
    Transition(&'static str, &'static str),
    /// Before the call's first day.
    #[error("the call takes applications from {0}")]
    CallNotOpen(NaiveDate),
    /// After the call's last day, or closed.
    #[error("the call is closed to applications")]
    CallClosed,
    /// The person may not be recorded (standing, consent).
    #[error("{0}")]
    Barred(Rule),
    /// The application is ineligible under this rule.
    #[error("the application is ineligible: {0}")]
    Ineligible(Rule),
    /// A training rule.
    #[error("{0}")]
    Training(TrainingRule),
    /// No training place left.
    #[error("every one of the call's {0} training places is taken")]
    CallTrainingFull(u32),
    /// A plan before training.
    #[error("the applicant has not completed training")]
    TrainingNotCompleted,
    /// A plan revised after evaluation began.
    #[error("the plan is being evaluated and can no longer be revised")]
    EvaluationStarted,
    /// An evaluator with a declared conflict.
    #[error("the evaluator declared a conflict of interest on this application")]
    EvaluatorConflict,
    /// An evaluator scoring twice.
    #[error("the evaluator has scored this application")]
    AlreadyScored,
    /// Scores that do not fit the criteria.
    #[error("{0}")]
    Scores(ScoresError),
    /// The committee before enough evaluations.
    #[error("{have} evaluators scored without a conflict; the call needs {need}")]
    TooFewEvaluations {
        /// Evaluations that count.
        have: u32,
        /// Evaluations needed.
        need: u32,
    },
    /// Approving a plan below the pass score.
    #[error("the final score {score} is below the call's pass score {pass} (hundredths)")]
    BelowPassScore {
        /// The final score.
        score: u32,
        /// The pass score.
        pass: u32,
    },
    /// Closing with a release that is not what is unspent (the state
    /// changed since the edge loaded it: reload and retry).
    #[error("the grant's unspent amount is {unspent}")]
    ReleaseMismatch {
        /// What is unspent, in minor units.
        unspent: i64,
    },
    /// Over the cap.
    #[error("the amount is over the call's per-grant cap ({cap})")]
    OverCap {
        /// The cap, in minor units.
        cap: i64,
    },
    /// Approving more than requested.
    #[error("the amount is over what the plan requests ({requested})")]
    AboveRequested {
        /// The requested amount, in minor units.
        requested: i64,
    },
    /// Another currency.
    #[error("must be in {currency}")]
    Currency {
        /// The request field.
        field: &'static str,
        /// The currency expected.
        currency: String,
    },
    /// Not a positive amount or quantity.
    #[error("must be more than zero")]
    NotPositive {
        /// The request field.
        field: &'static str,
    },
    /// An amount too large to compute.
    #[error("is too large")]
    Overflow {
        /// The request field.
        field: &'static str,
    },
    /// The plan's items are worth less than requested.
    #[error("the items must be worth at least the requested amount")]
    ItemsBelowRequested,
    /// A handover without items.
    #[error("must name at least one item")]
    NoItems,
    /// An item id ordered before.
    #[error("an item with this id is ordered")]
    ItemExists,
    /// No such item.
    #[error("no such item")]
    NoSuchItem,
    /// The item's state does not allow it.
    #[error("an item that is {0} cannot be {1}")]
    ItemState(&'static str, &'static str),
    /// Paying for or handing over an item not delivered.
    #[error("the item is not delivered")]
    ItemNotDelivered,
    /// Paying twice.
    #[error("the item's supplier is paid")]
    ItemPaid,
    /// Ordering over the approved amount.
    #[error("the order is over what is left of the approved amount ({remaining} left)")]
    OverApproved {
        /// What is left, in minor units.
        remaining: i64,
    },
    /// A handover record's reference used before.
    #[error("a handover record with this reference exists")]
    HandoverExists,
    /// A visit before anything was handed over.
    #[error("nothing has been handed over yet")]
    NothingHandedOver,
    /// Closing with items ordered or delivered but not handed over.
    #[error("every ordered item must be handed over or cancelled")]
    OpenOrders,
    /// Closing with a supplier unpaid.
    #[error("every supplier must be paid")]
    SupplierUnpaid,
    /// Closing without a monitoring visit.
    #[error("a monitoring visit must be recorded")]
    NoMonitoringVisit,
    /// Cancelling a grant with items ordered.
    #[error("items are ordered: cancel their orders first")]
    ProcurementStarted,
}

impl Rejection for ApplicationError {
    fn kind(&self) -> RejectionKind {
        match self {
            Self::AlreadyExists | Self::ItemExists | Self::HandoverExists => RejectionKind::AlreadyExists,
            Self::NotFound | Self::NoSuchItem => RejectionKind::NotFound,
            Self::Scores(_)
            | Self::Currency { .. }
            | Self::NotPositive { .. }
            | Self::Overflow { .. }
            | Self::ItemsBelowRequested
            | Self::NoItems => RejectionKind::InvalidArgument,
            _ => RejectionKind::FailedPrecondition,
        }
    }

    fn field(&self) -> Option<&'static str> {
        Some(match self {
            Self::Scores(_) => "scores",
            Self::Currency { field, .. } | Self::NotPositive { field } | Self::Overflow { field } => field,
            Self::ItemsBelowRequested => "plan.items",
            Self::NoItems => "handover.item_ids",
            _ => return None,
        })
    }

    fn rule(&self) -> Option<&'static str> {
        Some(match self {
            Self::Transition(..) => "APPLICATION_STATE",
            Self::CallNotOpen(_) => "CALL_NOT_OPEN",
            Self::CallClosed => "CALL_CLOSED",
            Self::Barred(rule) | Self::Ineligible(rule) => rule.name(),
            Self::Training(rule) => rule.name(),
            Self::CallTrainingFull(_) => "CALL_TRAINING_FULL",
            Self::TrainingNotCompleted => "TRAINING_NOT_COMPLETED",
            Self::EvaluationStarted => "EVALUATION_STARTED",
            Self::EvaluatorConflict => "EVALUATOR_CONFLICT",
            Self::AlreadyScored => "ALREADY_SCORED",
            Self::TooFewEvaluations { .. } => "TOO_FEW_EVALUATIONS",
            Self::BelowPassScore { .. } => "BELOW_PASS_SCORE",
            Self::OverCap { .. } => "OVER_CAP",
            Self::AboveRequested { .. } => "ABOVE_REQUESTED",
            Self::ItemState(..) => "ITEM_STATE",
            Self::ItemNotDelivered => "ITEM_NOT_DELIVERED",
            Self::ItemPaid => "ITEM_PAID",
            Self::OverApproved { .. } => "OVER_APPROVED",
            Self::NothingHandedOver => "NOTHING_HANDED_OVER",
            Self::OpenOrders => "OPEN_ORDERS",
            Self::SupplierUnpaid => "SUPPLIER_UNPAID",
            Self::NoMonitoringVisit => "NO_MONITORING_VISIT",
            Self::ProcurementStarted => "PROCUREMENT_STARTED",
            Self::ReleaseMismatch { .. } => "RELEASE_MISMATCH",
            _ => return None,
        })
    }
}

impl From<TrainingRule> for ApplicationError {
    fn from(rule: TrainingRule) -> Self {
        Self::Training(rule)
    }
}

impl Application {
    fn terms(&self) -> Result<&GrantTerms, ApplicationError> {
        self.terms.as_ref().ok_or(ApplicationError::NotFound)
    }

    fn refuse(&self, action: &'static str) -> ApplicationError {
        match (self.status, self.ineligible) {
            (Status::Ineligible, Some(rule)) => ApplicationError::Ineligible(rule),
            (status, _) => ApplicationError::Transition(status.name(), action),
        }
    }

    fn money(&self, amount: &Money, field: &'static str) -> Result<(), ApplicationError> {
        let currency = &self.terms()?.cap.currency;
        if &amount.currency != currency {
            return Err(ApplicationError::Currency { field, currency: currency.clone() });
        }
        if amount.minor <= 0 {
            return Err(ApplicationError::NotPositive { field });
        }
        Ok(())
    }

    /// The evaluations that count: the scores of evaluators without a
    /// declared conflict.
    pub fn counted(&self) -> impl Iterator<Item = &BTreeMap<String, u32>> {
        self.scores.iter().filter(|(e, _)| !self.conflicts.contains(*e)).map(|(_, s)| s)
    }

    /// The final score over the evaluations that count, hundredths of a point.
    pub fn final_score(&self) -> Option<u32> {
        self.terms.as_ref()?.evaluation.final_score(self.counted())
    }

    /// What the active orders (not cancelled) add up to, in minor units.
    pub fn ordered(&self) -> i64 {
        sum(self.items.values().filter(|p| p.state != ItemState::Cancelled).map(|p| p.total)).unwrap_or(i64::MAX)
    }

    /// What was handed over, in minor units.
    pub fn handed_over(&self) -> i64 {
        sum(self.items.values().filter(|p| p.state == ItemState::HandedOver).map(|p| p.total)).unwrap_or(i64::MAX)
    }

    /// The certificate of the training completed.
    pub fn certificate(&self) -> Option<&str> {
        self.trainings.iter().find_map(|e| match &e.finished {
            Some(Finished::Completed(c)) => Some(c.as_str()),
            _ => None,
        })
    }

    fn item(&self, id: &Uuid) -> Result<&Procured, ApplicationError> {
        self.items.get(id).ok_or(ApplicationError::NoSuchItem)
    }

    fn apply(
        &self,
        application: &NewApplication,
        call: &CallFacts,
        person: &PersonFacts,
        stamp: &Stamp,
    ) -> Result<Vec<ApplicationEvent>, ApplicationError> {
        if self.exists() {
            return Err(ApplicationError::AlreadyExists);
        }
        let on = application.applied_on;
        if on < call.terms.opens_on {
            return Err(ApplicationError::CallNotOpen(call.terms.opens_on));
        }
        if call.closed || on > call.terms.closes_on {
            return Err(ApplicationError::CallClosed);
        }
        let terms = GrantTerms::of(&call.terms);
        let failed = eligibility::check(&terms.eligibility, &terms.districts, person, on).err();
        if let Some(rule) = failed.filter(|r| r.bars_recording()) {
            return Err(ApplicationError::Barred(rule));
        }
        let mut application = application.clone();
        application.call = call.terms.id;
        Ok(vec![
            ApplicationEvent::Applied { application, terms, stamp: stamp.clone() },
            ApplicationEvent::EligibilityAssessed { failed, on, stamp: stamp.clone() },
        ])
    }

    fn decide_training(&self, command: &ApplicationCommand) -> Result<Vec<ApplicationEvent>, ApplicationError> {
        use ApplicationCommand as C;
        use ApplicationEvent as E;
        Ok(match command {
            C::Enrol { session, seat, place, on, stamp } => {
                if !matches!(self.status, Status::Eligible | Status::NotTrained) {
                    return Err(self.refuse("enrolled"));
                }
                training::can_enrol(Audience::Entrepreneurs, session, *seat, *on)?;
                let place = match self.place {
                    Some(_) => None,
                    None => {
                        let places = self.terms()?.training_places;
                        if !(1..=places).contains(place) {
                            return Err(ApplicationError::CallTrainingFull(places));
                        }
                        Some(*place)
                    }
                };
                vec![E::Enrolled { session: session.id, seat: *seat, place, stamp: stamp.clone() }]
            }
            C::Unenrol { session, reason, on, stamp } => {
                training::can_unenrol(self.enrolment.as_ref(), session, *on)?;
                vec![E::Unenrolled { session: session.id, reason: reason.clone(), stamp: stamp.clone() }]
            }
            C::RecordAttendance { session, day, present, today, stamp } => {
                if !training::attendance(self.enrolment.as_ref(), session, *day, *present, *today)? {
                    return Ok(Vec::new());
                }
                vec![E::AttendanceRecorded { session: session.id, day: *day, present: *present, stamp: stamp.clone() }]
            }
            C::CompleteTraining { session, today, stamp } => {
                let c = training::completion(self.enrolment.as_ref(), session, *today)?;
                vec![match c.certificate {
                    Some(certificate) => E::TrainingCompleted {
                        session: session.id,
                        certificate,
                        attended: c.attended,
                        of: c.of,
                        stamp: stamp.clone(),
                    },
                    None => E::TrainingNotCompleted {
                        session: session.id,
                        attended: c.attended,
                        of: c.of,
                        stamp: stamp.clone(),
                    },
                }]
            }
            _ => Vec::new(),
        })
    }

    fn decide_plan(&self, plan: &Plan, stamp: &Stamp) -> Result<Vec<ApplicationEvent>, ApplicationError> {
        match self.status {
            Status::Trained => {}
            Status::PlanSubmitted if self.scores.is_empty() && self.conflicts.is_empty() => {
                if self.plan.as_ref() == Some(plan) {
                    return Ok(Vec::new());
                }
            }
            Status::PlanSubmitted => return Err(ApplicationError::EvaluationStarted),
            Status::Eligible | Status::Enrolled | Status::NotTrained => {
                return Err(ApplicationError::TrainingNotCompleted);
            }
            _ => return Err(self.refuse("given a plan")),
        }
        self.money(&plan.requested, "plan.requested_amount")?;
        let cap = &self.terms()?.cap;
        if plan.requested.minor > cap.minor {
            return Err(ApplicationError::OverCap { cap: cap.minor });
        }
        for item in &plan.items {
            self.money(&item.unit_price, "plan.items")?;
        }
        let total = plan.items_total().ok_or(ApplicationError::Overflow { field: "plan.items" })?;
        if total < plan.requested.minor {
            return Err(ApplicationError::ItemsBelowRequested);
        }
        Ok(vec![ApplicationEvent::PlanSubmitted(plan.clone(), stamp.clone())])
    }

    fn decide_evaluation(&self, command: &ApplicationCommand) -> Result<Vec<ApplicationEvent>, ApplicationError> {
        use ApplicationCommand as C;
        use ApplicationEvent as E;
        let evaluation = &self.terms()?.evaluation;
        Ok(match command {
            C::DeclareConflict { .. } if self.status != Status::PlanSubmitted => return Err(self.refuse("evaluated")),
            C::DeclareConflict { stamp, .. } if self.conflicts.contains(&stamp.by) => Vec::new(),
            C::DeclareConflict { reason, stamp } => {
                vec![E::ConflictDeclared { reason: reason.clone(), stamp: stamp.clone() }]
            }
            C::Score { .. } if self.status != Status::PlanSubmitted => return Err(self.refuse("evaluated")),
            C::Score { scores, comment, stamp } => {
                if self.conflicts.contains(&stamp.by) {
                    return Err(ApplicationError::EvaluatorConflict);
                }
                if self.scores.contains_key(&stamp.by) {
                    return Err(ApplicationError::AlreadyScored);
                }
                let scores = evaluation.checked(scores).map_err(ApplicationError::Scores)?;
                let weighted = evaluation.weighted(&scores);
                vec![E::Scored { scores, weighted, comment: comment.clone(), stamp: stamp.clone() }]
            }
            _ => Vec::new(),
        })
    }

    fn decide_committee(&self, command: &ApplicationCommand) -> Result<Vec<ApplicationEvent>, ApplicationError> {
        use ApplicationCommand as C;
        use ApplicationEvent as E;
        if self.status != Status::PlanSubmitted {
            return Err(self.refuse("decided"));
        }
        let terms = self.terms()?;
        let need = terms.evaluation.min_evaluators;
        let have = u32::try_from(self.counted().count()).unwrap_or(u32::MAX);
        if have < need {
            return Err(ApplicationError::TooFewEvaluations { have, need });
        }
        let score = self.final_score().unwrap_or(0);
        Ok(match command {
            C::Approve { amount, reference, note, stamp } => {
                let pass = terms.evaluation.pass_score;
                if score < pass {
                    return Err(ApplicationError::BelowPassScore { score, pass });
                }
                self.money(amount, "amount")?;
                if amount.minor > terms.cap.minor {
                    return Err(ApplicationError::OverCap { cap: terms.cap.minor });
                }
                let requested = self.plan.as_ref().map_or(0, |p| p.requested.minor);
                if amount.minor > requested {
                    return Err(ApplicationError::AboveRequested { requested });
                }
                vec![E::Approved {
                    amount: amount.clone(),
                    score,
                    evaluators: have,
                    reference: reference.clone(),
                    note: note.clone(),
                    stamp: stamp.clone(),
                }]
            }
            C::Reject { reasons, reference, stamp } => vec![E::Rejected {
                reasons: reasons.clone(),
                score,
                reference: reference.clone(),
                stamp: stamp.clone(),
            }],
            _ => Vec::new(),
        })
    }

    fn decide_procurement(&self, command: &ApplicationCommand) -> Result<Vec<ApplicationEvent>, ApplicationError> {
        use ApplicationCommand as C;
        use ApplicationEvent as E;
        if self.status != Status::Approved {
            return Err(self.refuse(match command {
                C::Close { .. } => "closed",
                C::CancelGrant { .. } => "cancelled",
                _ => "given items",
            }));
        }
        let approved = self.approved.as_ref().map_or(0, |m| m.minor);
        Ok(match command {
            C::Order(item, stamp) => {
                if self.items.contains_key(&item.id) {
                    return Err(ApplicationError::ItemExists);
                }
                if item.quantity == 0 {
                    return Err(ApplicationError::NotPositive { field: "item.quantity" });
                }
                self.money(&item.unit_price, "item.unit_price")?;
                let total = line_total(item.quantity, &item.unit_price)
                    .ok_or(ApplicationError::Overflow { field: "item.unit_price" })?;
                let remaining = approved - self.ordered();
                if total > remaining {
                    return Err(ApplicationError::OverApproved { remaining });
                }
                vec![E::ItemOrdered(item.clone(), stamp.clone())]
            }
            C::CancelOrder { item, reason, stamp } => {
                let p = self.item(item)?;
                if p.state != ItemState::Ordered {
                    return Err(ApplicationError::ItemState(p.state.name(), "cancelled"));
                }
                vec![E::OrderCancelled { item: *item, reason: reason.clone(), stamp: stamp.clone() }]
            }
            C::RecordDelivery { item, on, reference, stamp } => {
                let p = self.item(item)?;
                if p.state != ItemState::Ordered {
                    return Err(ApplicationError::ItemState(p.state.name(), "delivered"));
                }
                vec![E::ItemDelivered { item: *item, on: *on, reference: reference.clone(), stamp: stamp.clone() }]
            }
            C::RecordPayment { item, on, reference, stamp } => {
                let p = self.item(item)?;
                if !matches!(p.state, ItemState::Delivered | ItemState::HandedOver) {
                    return Err(ApplicationError::ItemNotDelivered);
                }
                if p.paid {
                    return Err(ApplicationError::ItemPaid);
                }
                vec![E::SupplierPaid {
                    item: *item,
                    amount: p.item.unit_price.with(p.total),
                    on: *on,
                    reference: reference.clone(),
                    stamp: stamp.clone(),
                }]
            }
            C::HandOver(handover, stamp) => {
                if handover.items.is_empty() {
                    return Err(ApplicationError::NoItems);
                }
                if self.handovers.contains(&handover.reference) {
                    return Err(ApplicationError::HandoverExists);
                }
                for id in &handover.items {
                    match self.item(id)?.state {
                        ItemState::Delivered => {}
                        ItemState::Ordered => return Err(ApplicationError::ItemNotDelivered),
                        state => return Err(ApplicationError::ItemState(state.name(), "handed over")),
                    }
                }
                vec![E::HandedOver(handover.clone(), stamp.clone())]
            }
            C::Close { note, releasing, stamp } => {
                let items = self.items.values();
                if items.clone().any(|p| matches!(p.state, ItemState::Ordered | ItemState::Delivered)) {
                    return Err(ApplicationError::OpenOrders);
                }
                if items.clone().any(|p| p.state == ItemState::HandedOver && !p.paid) {
                    return Err(ApplicationError::SupplierUnpaid);
                }
                if self.visits.is_empty() {
                    return Err(ApplicationError::NoMonitoringVisit);
                }
                let spent = self.handed_over();
                if releasing.is_some_and(|r| r != approved - spent) {
                    return Err(ApplicationError::ReleaseMismatch { unspent: approved - spent });
                }
                let currency = &self.terms()?.cap;
                vec![E::Closed {
                    spent: currency.with(spent),
                    unspent: currency.with(approved - spent),
                    note: note.clone(),
                    stamp: stamp.clone(),
                }]
            }
            C::CancelGrant { reason, stamp } => {
                if self.items.values().any(|p| p.state != ItemState::Cancelled) {
                    return Err(ApplicationError::ProcurementStarted);
                }
                vec![E::GrantCancelled {
                    released: self.terms()?.cap.with(approved),
                    reason: reason.clone(),
                    stamp: stamp.clone(),
                }]
            }
            _ => Vec::new(),
        })
    }

    fn place_claim(&self, place: u32) -> Option<Claim> {
        Some(Claim::new(CALL_TRAINING_PLACE, format!("{}#{place}", self.call?)))
    }

    /// The claims leaving training frees: the seat, and the call's place if
    /// no training was finished on it.
    fn leaving_training(&self) -> Vec<ClaimChange> {
        let mut out: Vec<ClaimChange> = self.enrolment.iter().map(|e| ClaimChange::Release(e.seat_claim())).collect();
        if self.trainings.is_empty()
            && let Some(claim) = self.place.and_then(|p| self.place_claim(p))
        {
            out.push(ClaimChange::Release(claim));
        }
        out
    }
}

impl Aggregate for Application {
    type Command = ApplicationCommand;
    type Event = ApplicationEvent;
    type Error = ApplicationError;
    const KIND: &'static str = "application";

    fn decide(&self, command: &ApplicationCommand) -> Result<Vec<ApplicationEvent>, ApplicationError> {
        use ApplicationCommand as C;
        use ApplicationEvent as E;
        use Status as S;
        if let C::Apply { application, call, person, stamp } = command {
            return self.apply(application, call, person, stamp);
        }
        if !self.exists() {
            return Err(ApplicationError::NotFound);
        }
        match command {
            C::Apply { .. } => Err(ApplicationError::AlreadyExists),
            C::Reassess { person, on, stamp } => {
                if !matches!(self.status, S::Eligible | S::Ineligible) {
                    return Err(ApplicationError::Transition(self.status.name(), "reassessed"));
                }
                let terms = self.terms()?;
                let failed = eligibility::check(&terms.eligibility, &terms.districts, person, *on).err();
                if failed == self.ineligible {
                    return Ok(Vec::new());
                }
                Ok(vec![E::EligibilityAssessed { failed, on: *on, stamp: stamp.clone() }])
            }
            C::Withdraw { reason, stamp } => {
                if !matches!(
                    self.status,
                    S::Eligible | S::Ineligible | S::Enrolled | S::NotTrained | S::Trained | S::PlanSubmitted
                ) {
                    return Err(ApplicationError::Transition(self.status.name(), "withdrawn"));
                }
                Ok(vec![E::Withdrawn { reason: reason.clone(), stamp: stamp.clone() }])
            }
            C::Enrol { .. } | C::Unenrol { .. } | C::RecordAttendance { .. } | C::CompleteTraining { .. } => {
                self.decide_training(command)
            }
            C::SubmitPlan(plan, stamp) => self.decide_plan(plan, stamp),
            C::DeclareConflict { .. } | C::Score { .. } => self.decide_evaluation(command),
            C::Approve { .. } | C::Reject { .. } => self.decide_committee(command),
            C::RecordVisit(visit, stamp) => {
                if !matches!(self.status, S::Approved | S::Closed) {
                    return Err(self.refuse("visited"));
                }
                if self.handovers.is_empty() {
                    return Err(ApplicationError::NothingHandedOver);
                }
                Ok(vec![E::Visited(visit.clone(), stamp.clone())])
            }
            C::Order(..)
            | C::CancelOrder { .. }
            | C::RecordDelivery { .. }
            | C::RecordPayment { .. }
            | C::HandOver(..)
            | C::Close { .. }
            | C::CancelGrant { .. } => self.decide_procurement(command),
        }
    }

    fn evolve(&mut self, event: &ApplicationEvent) {
        use ApplicationEvent as E;
        match event {
            E::Applied { application, terms, .. } => {
                self.id = Some(application.id);
                self.call = Some(application.call);
                self.person = Some(application.person);
                self.terms = Some(terms.clone());
            }
            E::EligibilityAssessed { failed, .. } => {
                self.ineligible = *failed;
                self.status = if failed.is_some() { Status::Ineligible } else { Status::Eligible };
            }
            E::Withdrawn { .. } => {
                self.enrolment = None;
                self.status = Status::Withdrawn;
            }
            E::Enrolled { session, seat, place, .. } => {
                self.enrolment = Some(Enrolment::new(*session, *seat));
                if place.is_some() {
                    self.place = *place;
                }
                self.status = Status::Enrolled;
            }
            E::Unenrolled { .. } => {
                self.enrolment = None;
                if self.trainings.is_empty() {
                    self.place = None;
                    self.status = Status::Eligible;
                } else {
                    self.status = Status::NotTrained;
                }
            }
            E::AttendanceRecorded { day, present, .. } => {
                if let Some(e) = self.enrolment.as_mut() {
                    e.attendance.insert(*day, *present);
                }
            }
            E::TrainingCompleted { certificate, .. } => {
                if let Some(mut e) = self.enrolment.take() {
                    e.finished = Some(Finished::Completed(certificate.clone()));
                    self.trainings.push(e);
                }
                self.status = Status::Trained;
            }
            E::TrainingNotCompleted { .. } => {
                if let Some(mut e) = self.enrolment.take() {
                    e.finished = Some(Finished::NotCompleted);
                    self.trainings.push(e);
                }
                self.status = Status::NotTrained;
            }
            E::PlanSubmitted(plan, _) => {
                self.plan = Some(plan.clone());
                self.status = Status::PlanSubmitted;
            }
            E::ConflictDeclared { stamp, .. } => {
                self.conflicts.insert(stamp.by.clone());
            }
            E::Scored { scores, stamp, .. } => {
                self.scores.insert(stamp.by.clone(), scores.clone());
            }
            E::Approved { amount, .. } => {
                self.approved = Some(amount.clone());
                self.status = Status::Approved;
            }
            E::Rejected { .. } => self.status = Status::Rejected,
            E::ItemOrdered(item, _) => {
                let total = line_total(item.quantity, &item.unit_price).unwrap_or(i64::MAX);
                self.items
                    .insert(item.id, Procured { item: item.clone(), total, state: ItemState::Ordered, paid: false });
            }
            E::OrderCancelled { item, .. } => self.set_item(item, ItemState::Cancelled),
            E::ItemDelivered { item, .. } => self.set_item(item, ItemState::Delivered),
            E::SupplierPaid { item, .. } => {
                if let Some(p) = self.items.get_mut(item) {
                    p.paid = true;
                }
            }
            E::HandedOver(handover, _) => {
                self.handovers.insert(handover.reference.clone());
                for item in &handover.items {
                    self.set_item(item, ItemState::HandedOver);
                }
            }
            E::Visited(visit, _) => self.visits.push(visit.clone()),
            E::Closed { .. } => self.status = Status::Closed,
            E::GrantCancelled { .. } => self.status = Status::Cancelled,
        }
    }

    fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// One application per person and call (`call-applicant`, freed by
    /// withdrawal); a seat and, the first time, a call's training place
    /// while in training; one grant per person (`grantee`, freed by
    /// cancellation).
    fn claims(&self, events: &[ApplicationEvent]) -> Vec<ClaimChange> {
        use ApplicationEvent as E;
        let mut out = Vec::new();
        for event in events {
            match event {
                E::Applied { application, .. } => out.push(ClaimChange::Acquire(Claim::new(
                    CALL_APPLICANT,
                    format!("{}#{}", application.call, application.person),
                ))),
                E::Withdrawn { .. } => {
                    if let (Some(call), Some(person)) = (self.call, self.person) {
                        out.push(ClaimChange::Release(Claim::new(CALL_APPLICANT, format!("{call}#{person}"))));
                    }
                    out.extend(self.leaving_training());
                }
                E::Enrolled { session, seat, place, .. } => {
                    out.push(ClaimChange::Acquire(training::seat_claim(*session, *seat)));
                    if let Some(claim) = place.and_then(|p| self.place_claim(p)) {
                        out.push(ClaimChange::Acquire(claim));
                    }
                }
                E::Unenrolled { .. } => out.extend(self.leaving_training()),
                E::Approved { .. } => {
                    if let Some(person) = self.person {
                        out.push(ClaimChange::Acquire(Claim::new(GRANTEE, person.to_string())));
                    }
                }
                E::GrantCancelled { .. } => {
                    if let Some(person) = self.person {
                        out.push(ClaimChange::Release(Claim::new(GRANTEE, person.to_string())));
                    }
                }
                _ => {}
            }
        }
        out
    }
}

impl Application {
    fn set_item(&mut self, item: &Uuid, state: ItemState) {
        if let Some(p) = self.items.get_mut(item) {
            p.state = state;
        }
    }
}

#[cfg(test)]
mod tests;
