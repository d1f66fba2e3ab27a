//! The placement aggregate: pure `decide` and `evolve`.
//!
//! A placement is one person at one host on the terms of one offer:
//! proposed → accepted (or declined, or withdrawn) → agreement signed →
//! started → each month of the term its allowance falls due, the host
//! confirms the month's presence, finance pays it → completed, or ended
//! early → outcomes at completion and at the follow-up six months later.
//! Travel claims are submitted, approved up to the remaining cap, and paid.
//!
//! **Months.** Month `k` (from 1) of a placement started on `S` runs from
//! `S + (k-1) months` up to, not including, `S + k months`, and falls due on
//! that last date (Jan 15 → month 1 is Jan 15 – Feb 14, due Feb 15).
//!
//! **Ending early** on `E` (the first day no longer on placement): every
//! month whose period ended by `E` falls due in full; the month `E` falls in
//! falls due on `E` for the days served, `allowance × days(start of month,
//! E) / days in that month's period`, rounded down to the minor unit (none
//! if `E` is its first day); no later month ever falls due.
//!
//! **Uniqueness** goes through claims in the command's atomic batch: a
//! proposal takes one of the offer's places (`offer-place`,
//! `<offer>#<slot>`, slot 1..=places: never over-filled) and the person's
//! active placement (`active-placement`: one at a time). A declined or
//! withdrawn proposal frees both; a completed or ended placement frees the
//! person (its place stays used).

use std::collections::BTreeMap;

use acasa_domain::{Aggregate, Claim, ClaimChange, Rejection, RejectionKind};
use chrono::{DateTime, Months, NaiveDate, Utc};
use uuid::Uuid;

pub mod host;
pub mod matching;
pub mod offer;

/// Claim kind of an offer's places.
pub const OFFER_PLACE: &str = "offer-place";
/// Claim kind of a person's one active placement.
pub const ACTIVE_PLACEMENT: &str = "active-placement";
/// The follow-up outcome is due this long after the placement ended.
pub const FOLLOW_UP_AFTER: Months = Months::new(6);
/// A follow-up not recorded this many days after it was due is overdue.
pub const FOLLOW_UP_GRACE_DAYS: i64 = 30;

/// An amount in minor units of a currency.
#[derive(Clone, Debug, PartialEq, Eq)]
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

    fn with(&self, minor: i64) -> Self {
        Self { minor, currency: self.currency.clone() }
    }
}

/// What is offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A graduate's professional placement (six months).
    GraduatePlacement,
    /// A diaspora scientist's assignment (the agreed term).
    ScientificAssignment,
}

/// The terms a placement runs on (from its offer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terms {
    /// What kind.
    pub kind: Kind,
    /// Months in the term.
    pub months: u32,
    /// The monthly living allowance.
    pub allowance: Money,
    /// The most that travel claims may be approved for, in all.
    pub travel_cap: Money,
}

/// A proposal of a candidate for an offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// The placement's id.
    pub id: Uuid,
    /// The registry person.
    pub person: Uuid,
    /// The offer.
    pub offer: Uuid,
    /// The host institution.
    pub host: Uuid,
    /// Which of the offer's places it takes (1..=places).
    pub slot: u32,
    /// The offer's terms.
    pub terms: Terms,
    /// The offer's earliest start.
    pub start_from: NaiveDate,
    /// The offer's latest start.
    pub start_until: NaiveDate,
}

/// What the command gathered about the person, from this service's own
/// projection of the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersonFact {
    /// Not (yet) seen in the registry's log.
    Unknown,
    /// Erased.
    Erased,
    /// Merged into the survivor.
    Merged(Uuid),
    /// Active.
    Active {
        /// Consented to programme participation.
        consent: bool,
        /// In the offer kind's category (overseas graduate for placements,
        /// diaspora scientist for assignments).
        category: bool,
    },
}

/// The outside facts a proposal is decided on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProposalFacts {
    /// The offer takes proposals (published, not closed).
    pub offer_open: bool,
    /// The host exists and is not suspended.
    pub host_active: bool,
    /// The person.
    pub person: PersonFact,
}

impl ProposalFacts {
    fn check(&self) -> Result<(), PlacementError> {
        if !self.offer_open {
            return Err(PlacementError::OfferClosed);
        }
        if !self.host_active {
            return Err(PlacementError::HostNotActive);
        }
        match self.person {
            PersonFact::Unknown => Err(PlacementError::PersonUnknown),
            PersonFact::Erased => Err(PlacementError::PersonErased),
            PersonFact::Merged(survivor) => Err(PlacementError::PersonMerged(survivor)),
            PersonFact::Active { consent: false, .. } => Err(PlacementError::NoConsent),
            PersonFact::Active { category: false, .. } => Err(PlacementError::NotEligible),
            PersonFact::Active { .. } => Ok(()),
        }
    }
}

/// What became of the person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Employed in Moldova.
    EmployedInMoldova,
    /// Continued in research (in Moldova).
    ContinuedResearch,
    /// Returned abroad.
    ReturnedAbroad,
    /// Something else, described.
    Other(String),
}

/// When an outcome is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OutcomeStage {
    /// At completion (or early end).
    Completion,
    /// Six months later.
    FollowUp,
}

/// Where a placement stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Status {
    /// Not proposed.
    #[default]
    None,
    /// Proposed to the candidate.
    Proposed,
    /// The candidate accepted.
    Accepted,
    /// The candidate declined.
    Declined,
    /// Withdrawn by the programme before it started.
    Withdrawn,
    /// The agreement is signed.
    Signed,
    /// Under way.
    Started,
    /// Ran its whole term.
    Completed,
    /// Ended before its term.
    EndedEarly,
}

/// One month of the term that fell due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueMonth {
    /// The allowance due.
    pub due: Money,
    /// The host confirmed presence.
    pub present: bool,
    /// What was paid.
    pub paid: Option<Money>,
}

/// A travel claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TravelClaim {
    /// What was asked for.
    pub requested: Money,
    /// What was approved.
    pub approved: Option<Money>,
    /// Refused.
    pub rejected: bool,
    /// Paid.
    pub paid: bool,
}

/// A placement's state, as far as the rules need it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Placement {
    /// Id, once proposed.
    pub id: Option<Uuid>,
    /// Status.
    pub status: Status,
    /// Person, offer, host, slot and terms.
    pub proposal: Option<Proposal>,
    /// The first day.
    pub start: Option<NaiveDate>,
    /// The first day no longer on placement (completion or early end).
    pub end: Option<NaiveDate>,
    /// Months that fell due, by number.
    pub months: BTreeMap<u32, DueMonth>,
    /// Travel claims by id.
    pub travel: BTreeMap<Uuid, TravelClaim>,
    /// Outcomes recorded.
    pub outcomes: BTreeMap<OutcomeStage, Outcome>,
    /// The follow-up was recorded overdue.
    pub follow_up_overdue: bool,
}

/// What can be asked of a placement.
#[derive(Clone, Debug, PartialEq)]
pub enum PlacementCommand {
    /// Propose a candidate, on the facts gathered.
    Propose(Proposal, ProposalFacts, DateTime<Utc>),
    /// The candidate accepts.
    Accept(DateTime<Utc>),
    /// The candidate declines.
    Decline(String, DateTime<Utc>),
    /// The programme withdraws the proposal (before the start).
    Withdraw(String, DateTime<Utc>),
    /// The agreement is signed.
    SignAgreement {
        /// When.
        signed_on: NaiveDate,
        /// The agreed first day.
        start_on: NaiveDate,
        /// The agreement's reference.
        reference: String,
    },
    /// The placement starts.
    Start(NaiveDate),
    /// Records the allowance of every month whose period ended by `today`
    /// (the deadline worker; nothing if none).
    FallDue(NaiveDate),
    /// The host confirms a month's presence.
    ConfirmPresence {
        /// The month.
        month: u32,
        /// The host institution confirming.
        host: Uuid,
    },
    /// Finance records a month's payment.
    Pay {
        /// The month.
        month: u32,
        /// What was paid.
        amount: Money,
        /// When.
        paid_on: NaiveDate,
        /// The payment's reference.
        reference: String,
    },
    /// A travel claim.
    SubmitTravel {
        /// Its id.
        claim: Uuid,
        /// What for (flight, train, visa…).
        kind: String,
        /// How much.
        amount: Money,
        /// The receipt's reference.
        receipt: String,
    },
    /// Approve a travel claim for `amount` (at most what was asked and what
    /// is left of the cap).
    ApproveTravel {
        /// Which.
        claim: Uuid,
        /// How much.
        amount: Money,
    },
    /// Refuse a travel claim.
    RejectTravel {
        /// Which.
        claim: Uuid,
        /// Why.
        reason: String,
    },
    /// Finance pays an approved travel claim.
    PayTravel {
        /// Which.
        claim: Uuid,
        /// When.
        paid_on: NaiveDate,
        /// The payment's reference.
        reference: String,
    },
    /// The term is over.
    Complete(NaiveDate),
    /// It ends before its term, on this (first day off) date.
    EndEarly(NaiveDate, String),
    /// Record an outcome.
    RecordOutcome(OutcomeStage, Outcome, NaiveDate),
    /// Records the follow-up overdue if it is (the deadline worker).
    CheckFollowUp(NaiveDate),
}

/// What happened to a placement.
#[derive(Clone, Debug, PartialEq)]
pub enum PlacementEvent {
    /// Proposed.
    Proposed(Proposal, DateTime<Utc>),
    /// Accepted.
    Accepted(DateTime<Utc>),
    /// Declined, with the reason.
    Declined(String, DateTime<Utc>),
    /// Withdrawn, with the reason.
    Withdrawn(String, DateTime<Utc>),
    /// Agreement signed.
    AgreementSigned {
        /// When.
        signed_on: NaiveDate,
        /// The first day.
        start_on: NaiveDate,
        /// Reference.
        reference: String,
    },
    /// Started.
    Started(NaiveDate),
    /// A month's allowance fell due.
    AllowanceFellDue {
        /// The month.
        month: u32,
        /// How much.
        amount: Money,
        /// When.
        due_on: NaiveDate,
    },
    /// Presence confirmed.
    PresenceConfirmed(u32),
    /// A month's allowance paid.
    AllowancePaid {
        /// The month.
        month: u32,
        /// How much.
        amount: Money,
        /// When.
        paid_on: NaiveDate,
        /// Reference.
        reference: String,
    },
    /// A travel claim submitted.
    TravelSubmitted {
        /// Id.
        claim: Uuid,
        /// What for.
        kind: String,
        /// How much.
        amount: Money,
        /// The receipt's reference.
        receipt: String,
    },
    /// Approved.
    TravelApproved {
        /// Id.
        claim: Uuid,
        /// How much.
        amount: Money,
    },
    /// Refused.
    TravelRejected {
        /// Id.
        claim: Uuid,
        /// Why.
        reason: String,
    },
    /// Paid.
    TravelPaid {
        /// Id.
        claim: Uuid,
        /// How much.
        amount: Money,
        /// When.
        paid_on: NaiveDate,
        /// Reference.
        reference: String,
    },
    /// Ran its term.
    Completed(NaiveDate),
    /// Ended early.
    EndedEarly(NaiveDate, String),
    /// An outcome.
    OutcomeRecorded(OutcomeStage, Outcome, NaiveDate),
    /// The follow-up is overdue.
    FollowUpOverdue(NaiveDate),
}

/// Why a placement refused a command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlacementError {
    /// Proposed twice.
    #[error("the placement already exists")]
    AlreadyExists,
    /// Not proposed.
    #[error("no such placement")]
    NotFound,
    /// Not in a state that allows it.
    #[error("a placement that is {0} cannot be {1}")]
    Transition(&'static str, &'static str),
    /// Another host's token: to it, the placement does not exist.
    #[error("no such placement for this host institution")]
    NotHost,
    /// The month did not fall due (yet, or ever).
    #[error("month {0} has not fallen due")]
    NotDue(u32),
    /// Confirmed before.
    #[error("the presence of month {0} was already confirmed")]
    AlreadyConfirmed(u32),
    /// Paid before confirmation.
    #[error("the presence of month {0} is not confirmed by the host")]
    PresenceNotConfirmed(u32),
    /// Paid twice.
    #[error("month {0} was already paid")]
    AlreadyPaid(u32),
    /// More than due.
    #[error("the payment exceeds the {due} due for the month")]
    AboveDue {
        /// What is due, in minor units.
        due: i64,
    },
    /// A currency other than the terms'.
    #[error("must be in {0}")]
    Currency(String),
    /// Not a positive amount.
    #[error("must be more than zero")]
    NotPositive,
    /// Unknown travel claim.
    #[error("no such travel claim")]
    NoSuchClaim,
    /// A claim id used twice.
    #[error("a travel claim with this id exists")]
    ClaimExists,
    /// Approved or rejected before.
    #[error("the travel claim was already decided")]
    ClaimDecided,
    /// Over the travel cap.
    #[error("the approval exceeds what is left of the travel cap ({remaining} left)")]
    OverCap {
        /// What is left, in minor units.
        remaining: i64,
    },
    /// Approving more than asked.
    #[error("the approval exceeds the claimed amount")]
    AboveClaim,
    /// Paying an unapproved claim.
    #[error("the travel claim is not approved")]
    ClaimNotApproved,
    /// Paying twice.
    #[error("the travel claim was already paid")]
    ClaimPaid,
    /// Completing before the term is over.
    #[error("the term is not over before {0}")]
    TermNotOver(NaiveDate),
    /// Ending early outside the term.
    #[error("must be within the term ({0} to {1})")]
    OutsideTerm(NaiveDate, NaiveDate),
    /// Starting on a day other than the agreed one is allowed; before the signature is not.
    #[error("must not be before the agreement was signed ({0})")]
    BeforeSignature(NaiveDate),
    /// Recorded before.
    #[error("this outcome was already recorded")]
    OutcomeRecorded,
    /// The follow-up before it is due.
    #[error("the follow-up is due from {0}")]
    FollowUpNotYet(NaiveDate),
    /// The offer takes no proposals.
    #[error("the offer is closed to proposals")]
    OfferClosed,
    /// The host is unknown or suspended.
    #[error("the host institution is suspended")]
    HostNotActive,
    /// The registry has no such person (as far as this service has seen).
    #[error("the person is not in the registry (or not yet seen here: pass min_registry_position)")]
    PersonUnknown,
    /// Erased.
    #[error("the person was erased")]
    PersonErased,
    /// Merged.
    #[error("the person was merged into {0}: propose the survivor")]
    PersonMerged(Uuid),
    /// No programme consent.
    #[error("the person has not consented to programme participation")]
    NoConsent,
    /// Not in the category the offer is for.
    #[error(
        "the person is not in the offer's category (overseas graduate for placements, diaspora scientist for assignments)"
    )]
    NotEligible,
    /// A start outside the offer's window.
    #[error("the start must be within the offer's window ({0} to {1})")]
    OutsideStartWindow(NaiveDate, NaiveDate),
}

impl Rejection for PlacementError {
    fn kind(&self) -> RejectionKind {
        match self {
            Self::AlreadyExists | Self::ClaimExists => RejectionKind::AlreadyExists,
            Self::NotFound | Self::NoSuchClaim | Self::NotHost => RejectionKind::NotFound,
            Self::Currency(_) | Self::NotPositive => RejectionKind::InvalidArgument,
            _ => RejectionKind::FailedPrecondition,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Currency(_) | Self::NotPositive => Some("amount"),
            _ => None,
        }
    }

    fn rule(&self) -> Option<&'static str> {
        Some(match self {
            Self::Transition(..) => "PLACEMENT_STATE",
            Self::NotDue(_) => "MONTH_NOT_DUE",
            Self::AlreadyConfirmed(_) => "PRESENCE_ALREADY_CONFIRMED",
            Self::PresenceNotConfirmed(_) => "PRESENCE_NOT_CONFIRMED",
            Self::AlreadyPaid(_) => "MONTH_ALREADY_PAID",
            Self::AboveDue { .. } => "PAYMENT_ABOVE_DUE",
            Self::ClaimDecided => "TRAVEL_CLAIM_DECIDED",
            Self::OverCap { .. } => "TRAVEL_OVER_CAP",
            Self::AboveClaim => "TRAVEL_ABOVE_CLAIM",
            Self::ClaimNotApproved => "TRAVEL_CLAIM_NOT_APPROVED",
            Self::ClaimPaid => "TRAVEL_CLAIM_PAID",
            Self::TermNotOver(_) => "TERM_NOT_OVER",
            Self::OutsideTerm(..) => "OUTSIDE_TERM",
            Self::BeforeSignature(_) => "START_BEFORE_SIGNATURE",
            Self::OutcomeRecorded => "OUTCOME_RECORDED",
            Self::FollowUpNotYet(_) => "FOLLOW_UP_NOT_YET",
            Self::OfferClosed => "OFFER_CLOSED",
            Self::HostNotActive => "HOST_SUSPENDED",
            Self::PersonUnknown => "PERSON_UNKNOWN",
            Self::PersonErased => "PERSON_ERASED",
            Self::PersonMerged(_) => "PERSON_MERGED",
            Self::NoConsent => "PROGRAMME_CONSENT",
            Self::NotEligible => "CATEGORY",
            Self::OutsideStartWindow(..) => "START_WINDOW",
            Self::AlreadyExists
            | Self::NotFound
            | Self::NotHost
            | Self::Currency(_)
            | Self::NotPositive
            | Self::NoSuchClaim
            | Self::ClaimExists => return None,
        })
    }
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::None => "not proposed",
        Status::Proposed => "proposed",
        Status::Accepted => "accepted",
        Status::Declined => "declined",
        Status::Withdrawn => "withdrawn",
        Status::Signed => "signed",
        Status::Started => "started",
        Status::Completed => "completed",
        Status::EndedEarly => "ended early",
    }
}

/// The order in which a proposal tries an offer's places (the kit's
/// [`acasa_domain::slots::slot_order`]).
pub use acasa_domain::slots::slot_order;

/// The offer's place and the person's active placement a proposal holds.
fn claims_of(p: &Proposal) -> (Claim, Claim) {
    (Claim::new(OFFER_PLACE, format!("{}#{}", p.offer, p.slot)), Claim::new(ACTIVE_PLACEMENT, p.person.to_string()))
}

/// The first day of month `k` (from 1) of a placement started on `start`,
/// and the first day after it (its due date).
pub fn month_period(start: NaiveDate, k: u32) -> Option<(NaiveDate, NaiveDate)> {
    let from = start.checked_add_months(Months::new(k.checked_sub(1)?))?;
    Some((from, start.checked_add_months(Months::new(k))?))
}

impl Placement {
    fn terms(&self) -> Result<&Terms, PlacementError> {
        self.proposal.as_ref().map(|p| &p.terms).ok_or(PlacementError::NotFound)
    }

    fn refuse(&self, action: &'static str) -> PlacementError {
        PlacementError::Transition(status_name(self.status), action)
    }

    fn money(&self, amount: &Money, like: &Money) -> Result<(), PlacementError> {
        if amount.currency != like.currency {
            return Err(PlacementError::Currency(like.currency.clone()));
        }
        if amount.minor <= 0 {
            return Err(PlacementError::NotPositive);
        }
        Ok(())
    }

    /// The last day + 1 of the whole term.
    pub fn term_end(&self) -> Option<NaiveDate> {
        let start = self.start?;
        start.checked_add_months(Months::new(self.proposal.as_ref()?.terms.months))
    }

    /// Full months whose period ended by `by` (at most the term) and not yet due.
    fn full_months_due(&self, by: NaiveDate) -> Vec<PlacementEvent> {
        let (Some(start), Ok(terms)) = (self.start, self.terms()) else { return Vec::new() };
        (1..=terms.months)
            .filter(|k| !self.months.contains_key(k))
            .filter_map(|k| month_period(start, k).map(|(_, due)| (k, due)))
            .filter(|(_, due)| *due <= by)
            .map(|(k, due_on)| PlacementEvent::AllowanceFellDue { month: k, amount: terms.allowance.clone(), due_on })
            .collect()
    }

    /// The approved travel so far, in minor units.
    pub fn travel_approved(&self) -> i64 {
        self.travel.values().filter_map(|c| c.approved.as_ref()).map(|m| m.minor).sum()
    }

    fn decide_travel(&self, command: &PlacementCommand) -> Result<Vec<PlacementEvent>, PlacementError> {
        use PlacementCommand as C;
        use PlacementEvent as E;
        if !matches!(self.status, Status::Signed | Status::Started | Status::Completed | Status::EndedEarly) {
            return Err(self.refuse("claimed travel for"));
        }
        let cap = &self.terms()?.travel_cap;
        Ok(match command {
            C::SubmitTravel { claim, kind, amount, receipt } => {
                if self.travel.contains_key(claim) {
                    return Err(PlacementError::ClaimExists);
                }
                self.money(amount, cap)?;
                vec![E::TravelSubmitted {
                    claim: *claim,
                    kind: kind.clone(),
                    amount: amount.clone(),
                    receipt: receipt.clone(),
                }]
            }
            C::ApproveTravel { claim, amount } => {
                let c = self.travel.get(claim).ok_or(PlacementError::NoSuchClaim)?;
                if c.approved.is_some() || c.rejected {
                    return Err(PlacementError::ClaimDecided);
                }
                self.money(amount, cap)?;
                if amount.minor > c.requested.minor {
                    return Err(PlacementError::AboveClaim);
                }
                let remaining = cap.minor - self.travel_approved();
                if amount.minor > remaining {
                    return Err(PlacementError::OverCap { remaining });
                }
                vec![E::TravelApproved { claim: *claim, amount: amount.clone() }]
            }
            C::RejectTravel { claim, reason } => {
                let c = self.travel.get(claim).ok_or(PlacementError::NoSuchClaim)?;
                if c.approved.is_some() || c.rejected {
                    return Err(PlacementError::ClaimDecided);
                }
                vec![E::TravelRejected { claim: *claim, reason: reason.clone() }]
            }
            C::PayTravel { claim, paid_on, reference } => {
                let c = self.travel.get(claim).ok_or(PlacementError::NoSuchClaim)?;
                let Some(amount) = &c.approved else { return Err(PlacementError::ClaimNotApproved) };
                if c.paid {
                    return Err(PlacementError::ClaimPaid);
                }
                vec![E::TravelPaid {
                    claim: *claim,
                    amount: amount.clone(),
                    paid_on: *paid_on,
                    reference: reference.clone(),
                }]
            }
            _ => Vec::new(),
        })
    }

    fn decide_allowance(&self, command: &PlacementCommand) -> Result<Vec<PlacementEvent>, PlacementError> {
        use PlacementCommand as C;
        use PlacementEvent as E;
        Ok(match command {
            // Only while started: nothing falls due before, or after the end.
            C::FallDue(today) if self.status == Status::Started => self.full_months_due(*today),
            C::ConfirmPresence { month, host } => {
                if self.proposal.as_ref().map(|p| p.host) != Some(*host) {
                    return Err(PlacementError::NotHost);
                }
                let m = self.months.get(month).ok_or(PlacementError::NotDue(*month))?;
                if m.present {
                    return Err(PlacementError::AlreadyConfirmed(*month));
                }
                vec![E::PresenceConfirmed(*month)]
            }
            C::Pay { month, amount, paid_on, reference } => {
                let m = self.months.get(month).ok_or(PlacementError::NotDue(*month))?;
                if m.paid.is_some() {
                    return Err(PlacementError::AlreadyPaid(*month));
                }
                if !m.present {
                    return Err(PlacementError::PresenceNotConfirmed(*month));
                }
                self.money(amount, &m.due)?;
                if amount.minor > m.due.minor {
                    return Err(PlacementError::AboveDue { due: m.due.minor });
                }
                vec![E::AllowancePaid {
                    month: *month,
                    amount: amount.clone(),
                    paid_on: *paid_on,
                    reference: reference.clone(),
                }]
            }
            _ => Vec::new(),
        })
    }

    fn decide_end(&self, command: &PlacementCommand) -> Result<Vec<PlacementEvent>, PlacementError> {
        use PlacementCommand as C;
        use PlacementEvent as E;
        if self.status != Status::Started {
            return Err(self.refuse(if matches!(command, C::Complete(_)) { "completed" } else { "ended early" }));
        }
        let (Some(start), Some(term_end)) = (self.start, self.term_end()) else { return Err(PlacementError::NotFound) };
        Ok(match command {
            C::Complete(on) => {
                if *on < term_end {
                    return Err(PlacementError::TermNotOver(term_end));
                }
                let mut events = self.full_months_due(term_end);
                events.push(E::Completed(term_end));
                events
            }
            C::EndEarly(on, reason) => {
                if *on < start || *on >= term_end {
                    return Err(PlacementError::OutsideTerm(start, term_end));
                }
                let terms = self.terms()?;
                let mut events = self.full_months_due(*on);
                // The month `on` falls in: the days served, rounded down.
                let partial = (1..=terms.months)
                    .filter(|k| !self.months.contains_key(k))
                    .filter_map(|k| month_period(start, k).map(|p| (k, p)))
                    .find(|(_, (from, to))| from <= on && on < to);
                if let Some((k, (from, to))) = partial {
                    let served = (*on - from).num_days();
                    let days = (to - from).num_days().max(1);
                    let amount =
                        i64::try_from(i128::from(terms.allowance.minor) * i128::from(served) / i128::from(days))
                            .unwrap_or(0);
                    if served > 0 {
                        events.push(E::AllowanceFellDue {
                            month: k,
                            amount: terms.allowance.with(amount),
                            due_on: *on,
                        });
                    }
                }
                events.push(E::EndedEarly(*on, reason.clone()));
                events
            }
            _ => Vec::new(),
        })
    }

    fn decide_outcome(&self, command: &PlacementCommand) -> Result<Vec<PlacementEvent>, PlacementError> {
        use PlacementCommand as C;
        use PlacementEvent as E;
        let Some(end) = self.end else { return Err(self.refuse("given an outcome")) };
        let follow_up_due = end.checked_add_months(FOLLOW_UP_AFTER).unwrap_or(NaiveDate::MAX);
        Ok(match command {
            C::RecordOutcome(stage, outcome, on) => {
                if self.outcomes.contains_key(stage) {
                    return Err(PlacementError::OutcomeRecorded);
                }
                if *stage == OutcomeStage::FollowUp && *on < follow_up_due {
                    return Err(PlacementError::FollowUpNotYet(follow_up_due));
                }
                vec![E::OutcomeRecorded(*stage, outcome.clone(), *on)]
            }
            C::CheckFollowUp(today) => {
                let late = (*today - follow_up_due).num_days() > FOLLOW_UP_GRACE_DAYS;
                if late && !self.follow_up_overdue && !self.outcomes.contains_key(&OutcomeStage::FollowUp) {
                    vec![E::FollowUpOverdue(follow_up_due)]
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        })
    }

    fn claims_of(&self) -> Option<(Claim, Claim)> {
        self.proposal.as_ref().map(claims_of)
    }
}

impl Aggregate for Placement {
    type Command = PlacementCommand;
    type Event = PlacementEvent;
    type Error = PlacementError;
    const KIND: &'static str = "placement";

    fn decide(&self, command: &PlacementCommand) -> Result<Vec<PlacementEvent>, PlacementError> {
        use PlacementCommand as C;
        use PlacementEvent as E;
        use Status as S;
        if let C::Propose(proposal, facts, at) = command {
            if self.exists() {
                return Err(PlacementError::AlreadyExists);
            }
            if proposal.terms.months == 0 || proposal.slot == 0 {
                return Err(PlacementError::NotPositive);
            }
            facts.check()?;
            return Ok(vec![E::Proposed(proposal.clone(), *at)]);
        }
        if !self.exists() {
            return Err(PlacementError::NotFound);
        }
        Ok(match command {
            C::Propose(..) => return Err(PlacementError::AlreadyExists),
            C::Accept(at) if self.status == S::Proposed => vec![E::Accepted(*at)],
            C::Accept(_) => return Err(self.refuse("accepted")),
            C::Decline(reason, at) if self.status == S::Proposed => vec![E::Declined(reason.clone(), *at)],
            C::Decline(..) => return Err(self.refuse("declined")),
            C::Withdraw(reason, at) if matches!(self.status, S::Proposed | S::Accepted | S::Signed) => {
                vec![E::Withdrawn(reason.clone(), *at)]
            }
            C::Withdraw(..) => return Err(self.refuse("withdrawn")),
            C::SignAgreement { signed_on, start_on, reference } if self.status == S::Accepted => {
                if start_on < signed_on {
                    return Err(PlacementError::BeforeSignature(*signed_on));
                }
                if let Some(p) = &self.proposal
                    && !(p.start_from..=p.start_until).contains(start_on)
                {
                    return Err(PlacementError::OutsideStartWindow(p.start_from, p.start_until));
                }
                vec![E::AgreementSigned { signed_on: *signed_on, start_on: *start_on, reference: reference.clone() }]
            }
            C::SignAgreement { .. } => return Err(self.refuse("signed")),
            C::Start(on) if self.status == S::Signed => vec![E::Started(*on)],
            C::Start(_) => return Err(self.refuse("started")),
            C::FallDue(_) | C::ConfirmPresence { .. } | C::Pay { .. } => self.decide_allowance(command)?,
            C::SubmitTravel { .. } | C::ApproveTravel { .. } | C::RejectTravel { .. } | C::PayTravel { .. } => {
                self.decide_travel(command)?
            }
            C::Complete(_) | C::EndEarly(..) => self.decide_end(command)?,
            C::RecordOutcome(..) | C::CheckFollowUp(_) => self.decide_outcome(command)?,
        })
    }

    fn evolve(&mut self, event: &PlacementEvent) {
        use PlacementEvent as E;
        match event {
            E::Proposed(p, _) => {
                self.id = Some(p.id);
                self.status = Status::Proposed;
                self.proposal = Some(p.clone());
            }
            E::Accepted(_) => self.status = Status::Accepted,
            E::Declined(..) => self.status = Status::Declined,
            E::Withdrawn(..) => self.status = Status::Withdrawn,
            E::AgreementSigned { .. } => self.status = Status::Signed,
            E::Started(on) => {
                self.status = Status::Started;
                self.start = Some(*on);
            }
            E::AllowanceFellDue { month, amount, .. } => {
                self.months.insert(*month, DueMonth { due: amount.clone(), present: false, paid: None });
            }
            E::PresenceConfirmed(month) => {
                if let Some(m) = self.months.get_mut(month) {
                    m.present = true;
                }
            }
            E::AllowancePaid { month, amount, .. } => {
                if let Some(m) = self.months.get_mut(month) {
                    m.paid = Some(amount.clone());
                }
            }
            E::TravelSubmitted { claim, amount, .. } => {
                self.travel.insert(
                    *claim,
                    TravelClaim { requested: amount.clone(), approved: None, rejected: false, paid: false },
                );
            }
            E::TravelApproved { claim, amount } => {
                if let Some(c) = self.travel.get_mut(claim) {
                    c.approved = Some(amount.clone());
                }
            }
            E::TravelRejected { claim, .. } => {
                if let Some(c) = self.travel.get_mut(claim) {
                    c.rejected = true;
                }
            }
            E::TravelPaid { claim, .. } => {
                if let Some(c) = self.travel.get_mut(claim) {
                    c.paid = true;
                }
            }
            E::Completed(on) => {
                self.status = Status::Completed;
                self.end = Some(*on);
            }
            E::EndedEarly(on, _) => {
                self.status = Status::EndedEarly;
                self.end = Some(*on);
            }
            E::OutcomeRecorded(stage, outcome, _) => {
                self.outcomes.insert(*stage, outcome.clone());
            }
            E::FollowUpOverdue(_) => self.follow_up_overdue = true,
        }
    }

    fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// A proposal takes one of the offer's places and the person's active
    /// placement; a declined or withdrawn one frees both; the end frees the
    /// person.
    fn claims(&self, events: &[PlacementEvent]) -> Vec<ClaimChange> {
        use PlacementEvent as E;
        let mut out = Vec::new();
        for event in events {
            match event {
                E::Proposed(p, _) => {
                    let (place, person) = claims_of(p);
                    out.push(ClaimChange::Acquire(place));
                    out.push(ClaimChange::Acquire(person));
                }
                E::Declined(..) | E::Withdrawn(..) => {
                    if let Some((place, person)) = self.claims_of() {
                        out.push(ClaimChange::Release(place));
                        out.push(ClaimChange::Release(person));
                    }
                }
                E::Completed(_) | E::EndedEarly(..) => {
                    if let Some((_, person)) = self.claims_of() {
                        out.push(ClaimChange::Release(person));
                    }
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
