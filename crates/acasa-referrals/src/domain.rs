//! The partner and referral aggregates: pure `decide` and `evolve`.
//!
//! Events are the protobuf messages of `acasa.referrals.v1` (events.proto),
//! built from inputs validated at the edge ([`crate::validate`]). Facts from
//! outside an aggregate — the addressed partner's state, the person's consent
//! as this service's projection of the registry sees it — arrive in the
//! command, so every rule is decided here and tested without I/O.

use std::time::Duration;

use acasa_domain::{Aggregate, Claim, ClaimChange, Rejection, RejectionKind};
use acasa_proto::{partner::v1 as types, referrals::v1 as pb};
use chrono::{DateTime, Utc};
use prost_types::Timestamp;
use uuid::Uuid;

pub use types::{DeclineReason, PartnerKind, ProgressStage, ServiceKind, WithdrawReason};

/// Now, to the microsecond: times round-trip through Postgres unchanged.
pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound as _;
    Utc::now().trunc_subsecs(6)
}

pub use acasa_proto::time::timestamp;

/// The time of a protobuf timestamp (the epoch if absent or out of range).
pub fn time_of(t: Option<&Timestamp>) -> DateTime<Utc> {
    t.and_then(acasa_proto::time::checked_time).unwrap_or_default()
}

/// The protobuf duration of a duration.
pub fn proto_duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// The duration of a protobuf duration (zero if absent or negative).
pub fn duration_of(d: Option<&prost_types::Duration>) -> Duration {
    d.map(|d| Duration::new(u64::try_from(d.seconds).unwrap_or(0), u32::try_from(d.nanos).unwrap_or(0)))
        .unwrap_or_default()
}

// ------------------------------------------------------------------ partners

/// A partner organisation's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Partner {
    /// Registered.
    pub registered: bool,
    /// Kind.
    pub kind: PartnerKind,
    /// IDNO.
    pub idno: String,
    /// Service kinds in its catalogue.
    pub services: Vec<ServiceKind>,
    /// Time to answer a referral.
    pub response_time: Duration,
    /// Suspended.
    pub suspended: bool,
}

/// A partner to register: the validated values of the request.
#[derive(Clone, Debug, PartialEq)]
pub struct NewPartner {
    /// What kind of organisation.
    pub kind: PartnerKind,
    /// Its name.
    pub name: String,
    /// Its company code (IDNO), check digit verified.
    pub idno: String,
    /// The districts it serves.
    pub districts: Vec<String>,
    /// How to reach it.
    pub contact: pb::PartnerContact,
    /// Its catalogue.
    pub services: Vec<pb::PartnerService>,
    /// How soon it answers a referral (its SLA).
    pub response_time: Duration,
}

/// What can be asked of a partner.
#[derive(Clone, Debug, PartialEq)]
pub enum PartnerCommand {
    /// Register it, now.
    Register(Box<NewPartner>, DateTime<Utc>),
    /// Replace its catalogue.
    SetServices(Vec<pb::PartnerService>),
    /// Change its response time.
    SetResponseTime(Duration),
    /// Suspend it.
    Suspend {
        /// Why.
        reason: String,
    },
    /// Reactivate it.
    Reactivate,
}

/// What happened to a partner.
#[derive(Clone, Debug, PartialEq)]
pub enum PartnerEvent {
    /// Registered.
    Registered(pb::PartnerRegistered),
    /// Catalogue replaced.
    ServicesSet(pb::PartnerServicesSet),
    /// Response time changed.
    ResponseTimeSet(pb::PartnerResponseTimeSet),
    /// Suspended.
    Suspended(pb::PartnerSuspended),
    /// Reactivated.
    Reactivated(pb::PartnerReactivated),
}

/// Why a partner refused a command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PartnerError {
    /// Registered twice.
    #[error("the partner is already registered")]
    AlreadyRegistered,
    /// Not registered.
    #[error("no such partner")]
    NotFound,
}

impl Rejection for PartnerError {
    fn kind(&self) -> RejectionKind {
        match self {
            Self::AlreadyRegistered => RejectionKind::AlreadyExists,
            Self::NotFound => RejectionKind::NotFound,
        }
    }
}

fn service_kinds(services: &[pb::PartnerService]) -> Vec<ServiceKind> {
    services.iter().filter_map(|s| ServiceKind::try_from(s.kind).ok()).collect()
}

impl Partner {
    /// Whether it offers `service`.
    pub fn offers(&self, service: ServiceKind) -> bool {
        self.services.contains(&service)
    }
}

impl Aggregate for Partner {
    type Command = PartnerCommand;
    type Event = PartnerEvent;
    type Error = PartnerError;
    const KIND: &'static str = "partner";

    fn decide(&self, command: &PartnerCommand) -> Result<Vec<PartnerEvent>, PartnerError> {
        if let PartnerCommand::Register(new, at) = command {
            if self.registered {
                return Err(PartnerError::AlreadyRegistered);
            }
            return Ok(vec![PartnerEvent::Registered(pb::PartnerRegistered {
                kind: new.kind.into(),
                name: new.name.clone(),
                idno: new.idno.clone(),
                districts: new.districts.clone(),
                contact: Some(new.contact.clone()),
                services: new.services.clone(),
                response_time: Some(proto_duration(new.response_time)),
                registered_at: Some(timestamp(*at)),
            })]);
        }
        if !self.registered {
            return Err(PartnerError::NotFound);
        }
        Ok(match command {
            PartnerCommand::Register(..) => Vec::new(),
            PartnerCommand::SetServices(services) => {
                vec![PartnerEvent::ServicesSet(pb::PartnerServicesSet { services: services.clone() })]
            }
            PartnerCommand::SetResponseTime(d) if *d == self.response_time => Vec::new(),
            PartnerCommand::SetResponseTime(d) => vec![PartnerEvent::ResponseTimeSet(pb::PartnerResponseTimeSet {
                response_time: Some(proto_duration(*d)),
            })],
            // Suspending a suspended partner (or reactivating an active one)
            // changes nothing and records nothing.
            PartnerCommand::Suspend { .. } if self.suspended => Vec::new(),
            PartnerCommand::Suspend { reason } => {
                vec![PartnerEvent::Suspended(pb::PartnerSuspended { reason: reason.clone() })]
            }
            PartnerCommand::Reactivate if !self.suspended => Vec::new(),
            PartnerCommand::Reactivate => vec![PartnerEvent::Reactivated(pb::PartnerReactivated {})],
        })
    }

    fn evolve(&mut self, event: &PartnerEvent) {
        match event {
            PartnerEvent::Registered(r) => {
                self.registered = true;
                self.kind = PartnerKind::try_from(r.kind).unwrap_or_default();
                self.idno.clone_from(&r.idno);
                self.services = service_kinds(&r.services);
                self.response_time = duration_of(r.response_time.as_ref());
            }
            PartnerEvent::ServicesSet(s) => self.services = service_kinds(&s.services),
            PartnerEvent::ResponseTimeSet(s) => self.response_time = duration_of(s.response_time.as_ref()),
            PartnerEvent::Suspended(_) => self.suspended = true,
            PartnerEvent::Reactivated(_) => self.suspended = false,
        }
    }

    fn exists(&self) -> bool {
        self.registered
    }

    /// One partner per IDNO, taken at registration.
    fn claims(&self, events: &[PartnerEvent]) -> Vec<ClaimChange> {
        events
            .iter()
            .filter_map(|e| match e {
                PartnerEvent::Registered(r) => Some(ClaimChange::Acquire(Claim::new(IDNO_CLAIM, r.idno.clone()))),
                _ => None,
            })
            .collect()
    }
}

/// The claim kind of IDNOs: one partner per company code.
pub const IDNO_CLAIM: &str = "idno";

// ------------------------------------------------------------------ referrals

/// Who acts on a referral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A caseworker or administrator (the token's subject).
    Staff(String),
    /// A partner organisation (the token's partner id).
    Partner(Uuid),
}

impl Actor {
    fn to_pb(&self) -> pb::Referrer {
        pb::Referrer {
            kind: Some(match self {
                Self::Staff(s) => pb::referrer::Kind::StaffSubject(s.clone()),
                Self::Partner(p) => pb::referrer::Kind::PartnerId(p.to_string()),
            }),
        }
    }

    fn of_pb(r: Option<&pb::Referrer>) -> Option<Self> {
        match r?.kind.as_ref()? {
            pb::referrer::Kind::StaffSubject(s) => Some(Self::Staff(s.clone())),
            pb::referrer::Kind::PartnerId(p) => Uuid::parse_str(p).ok().map(Self::Partner),
        }
    }
}

/// The person as this service's projection of the registry sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersonFact {
    /// Not (yet) seen in the registry's events.
    Unknown,
    /// Active, with or without consent to share with the partner.
    Active {
        /// Consent to share with the addressed partner holds.
        consent: bool,
    },
    /// Merged into another record.
    Merged(Uuid),
    /// Erased.
    Erased,
}

/// The addressed partner's state when the referral is made.
#[derive(Clone, Debug, PartialEq)]
pub struct PartnerFact {
    /// Its id.
    pub id: Uuid,
    /// Its state (not registered: default).
    pub state: Partner,
}

/// A new referral's content, validated at the edge.
#[derive(Clone, Debug, PartialEq)]
pub struct NewReferral {
    /// The person.
    pub person_id: Uuid,
    /// The partner addressed, with its state.
    pub partner: PartnerFact,
    /// The person.
    pub person: PersonFact,
    /// The need.
    pub need: types::Need,
    /// District of the business.
    pub district: String,
    /// Who refers.
    pub referrer: Actor,
    /// The shared profile, already sealed with the person's data key.
    pub sealed_profile: Vec<u8>,
    /// The referral re-referred, if any.
    pub re_referred_from: Option<Uuid>,
}

/// What can be asked of a referral. `now` comes from the edge (or the
/// deadline worker), so decisions stay pure.
#[derive(Clone, Debug, PartialEq)]
pub enum ReferralCommand {
    /// Send a referral.
    Create(Box<NewReferral>, DateTime<Utc>),
    /// The partner accepts.
    Accept(Actor, DateTime<Utc>),
    /// The partner declines.
    Decline(Actor, DeclineReason, String, DateTime<Utc>),
    /// The partner reports progress.
    ReportProgress(Actor, ProgressStage, DateTime<Utc>),
    /// The partner records the outcome.
    RecordOutcome(Actor, types::Outcome, DateTime<Utc>),
    /// Close it.
    Close(Actor, DateTime<Utc>),
    /// The referrer withdraws it.
    Withdraw(Actor, WithdrawReason, DateTime<Utc>),
    /// It was sent on to another partner as `new_referral_id`.
    ReRefer {
        /// Who re-refers.
        by: Actor,
        /// The new referral.
        new_referral_id: Uuid,
        /// The new partner.
        new_partner_id: Uuid,
        /// When.
        now: DateTime<Utc>,
    },
    /// The deadline worker found the response time passed.
    RecordSlaBreach(DateTime<Utc>),
}

/// Where a referral is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Status {
    /// Not created.
    #[default]
    None,
    /// Waiting for the partner's answer.
    Sent,
    /// Accepted.
    Accepted,
    /// Progress reported.
    InProgress,
    /// Outcome recorded.
    OutcomeRecorded,
    /// Closed.
    Closed,
    /// Declined.
    Declined,
    /// Withdrawn.
    Withdrawn,
    /// Sent on to another partner.
    ReReferred,
}

impl Status {
    /// The API's status.
    pub fn to_pb(self) -> pb::ReferralStatus {
        match self {
            Self::None => pb::ReferralStatus::Unspecified,
            Self::Sent => pb::ReferralStatus::Sent,
            Self::Accepted => pb::ReferralStatus::Accepted,
            Self::InProgress => pb::ReferralStatus::InProgress,
            Self::OutcomeRecorded => pb::ReferralStatus::OutcomeRecorded,
            Self::Closed => pb::ReferralStatus::Closed,
            Self::Declined => pb::ReferralStatus::Declined,
            Self::Withdrawn => pb::ReferralStatus::Withdrawn,
            Self::ReReferred => pb::ReferralStatus::ReReferred,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::None => "not created",
            Self::Sent => "sent",
            Self::Accepted => "accepted",
            Self::InProgress => "in progress",
            Self::OutcomeRecorded => "outcome recorded",
            Self::Closed => "closed",
            Self::Declined => "declined",
            Self::Withdrawn => "withdrawn",
            Self::ReReferred => "re-referred",
        }
    }
}

/// A referral's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Referral {
    /// Status.
    pub status: Status,
    /// The person.
    pub person_id: Uuid,
    /// The partner addressed.
    pub partner_id: Uuid,
    /// The need's service.
    pub service: ServiceKind,
    /// Who referred.
    pub referrer: Option<Actor>,
    /// When the answer is due.
    pub due_at: DateTime<Utc>,
    /// A breach was recorded.
    pub breached: bool,
    /// The need.
    pub need: types::Need,
    /// District of the business.
    pub district: String,
    /// The shared profile as sealed (for a re-referral to re-seal).
    pub sealed_profile: Vec<u8>,
    /// The progress stages reported (each at most once, so a referral's
    /// history is bounded by its states and stages).
    pub stages: std::collections::BTreeSet<ProgressStage>,
}

/// What happened to a referral.
#[derive(Clone, Debug, PartialEq)]
pub enum ReferralEvent {
    /// Sent.
    Created(pb::ReferralCreated),
    /// Accepted.
    Accepted(pb::ReferralAccepted),
    /// Declined.
    Declined(pb::ReferralDeclined),
    /// Progress reported.
    ProgressReported(pb::ReferralProgressReported),
    /// Outcome recorded.
    OutcomeRecorded(pb::ReferralOutcomeRecorded),
    /// Closed.
    Closed(pb::ReferralClosed),
    /// Withdrawn.
    Withdrawn(pb::ReferralWithdrawn),
    /// Sent on to another partner.
    ReReferred(pb::ReferralReReferred),
    /// Response time breached.
    SlaBreached(pb::ReferralSlaBreached),
}

/// Why a referral refused a command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferralError {
    /// Created twice.
    #[error("the referral already exists")]
    AlreadyExists,
    /// Not created.
    #[error("no such referral")]
    NotFound,
    /// The person is unknown to this service's view of the registry.
    #[error("no such person in the registry (pass min_registry_position if they were just registered)")]
    UnknownPerson,
    /// No consent to share with the partner.
    #[error(
        "the person has not consented to share their data with this partner (consent purpose PARTNER_SHARING in the registry)"
    )]
    NoConsent,
    /// The person's record was merged.
    #[error("the person's record was merged into {0}; refer the surviving record")]
    PersonMerged(Uuid),
    /// The person was erased.
    #[error("the person was erased")]
    PersonErased,
    /// The partner does not exist.
    #[error("no such partner")]
    UnknownPartner,
    /// The partner is suspended.
    #[error("the partner is suspended")]
    PartnerSuspended,
    /// This progress stage was reported already.
    #[error("progress stage {0:?} was already reported for this referral")]
    StageReported(ProgressStage),
    /// The partner does not offer the service.
    #[error("the partner does not offer this service")]
    ServiceNotOffered,
    /// A partner referring to itself.
    #[error("a partner cannot refer to itself")]
    SelfReferral,
    /// A partner token that is neither addressee nor referrer.
    #[error("no such referral")]
    NotVisible,
    /// Only the addressed partner may do this.
    #[error("only the addressed partner may {0} a referral")]
    OnlyAddressee(&'static str),
    /// Only the referrer (or staff) may do this.
    #[error("only the referrer or programme staff may {0} a referral")]
    OnlyReferrer(&'static str),
    /// The transition is not allowed from the current status.
    #[error("cannot {action} a referral that is {status}")]
    Transition {
        /// What was asked.
        action: &'static str,
        /// The current status.
        status: &'static str,
    },
    /// A loan outcome for a need that is not a loan.
    #[error("a loan disbursement is an outcome of a loan referral only")]
    LoanOutcomeForOtherNeed,
    /// Re-referral to the same partner.
    #[error("re-refer to another partner than the current one")]
    SamePartner,
    /// An SLA breach proposed before the due time (a clock behind): refused,
    /// not a no-op, so the proposal's request id stays free for when it is due.
    #[error("the referral's response time has not passed yet")]
    NotDue,
}

impl Rejection for ReferralError {
    fn kind(&self) -> RejectionKind {
        match self {
            Self::AlreadyExists => RejectionKind::AlreadyExists,
            Self::NotFound | Self::UnknownPerson | Self::UnknownPartner | Self::NotVisible => RejectionKind::NotFound,
            Self::LoanOutcomeForOtherNeed => RejectionKind::InvalidArgument,
            _ => RejectionKind::FailedPrecondition,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::LoanOutcomeForOtherNeed => Some("outcome.loan_disbursed"),
            _ => None,
        }
    }
}

impl Referral {
    fn transition(&self, action: &'static str) -> ReferralError {
        ReferralError::Transition { action, status: self.status.name() }
    }

    /// Whether `actor` may see the referral at all: staff, the addressee, the
    /// referring partner.
    pub fn visible_to(&self, actor: &Actor) -> bool {
        match actor {
            Actor::Staff(_) => true,
            Actor::Partner(p) => *p == self.partner_id || self.referrer.as_ref() == Some(actor),
        }
    }

    fn addressee(&self, actor: &Actor, action: &'static str) -> Result<(), ReferralError> {
        match actor {
            Actor::Partner(p) if *p == self.partner_id => Ok(()),
            Actor::Partner(_) if !self.visible_to(actor) => Err(ReferralError::NotVisible),
            _ => Err(ReferralError::OnlyAddressee(action)),
        }
    }

    fn referrer_or_staff(&self, actor: &Actor, action: &'static str) -> Result<(), ReferralError> {
        match actor {
            Actor::Staff(_) => Ok(()),
            a if self.referrer.as_ref() == Some(a) => Ok(()),
            a if !self.visible_to(a) => Err(ReferralError::NotVisible),
            _ => Err(ReferralError::OnlyReferrer(action)),
        }
    }

    fn create(new: &NewReferral, now: DateTime<Utc>) -> Result<pb::ReferralCreated, ReferralError> {
        match new.person {
            PersonFact::Unknown => return Err(ReferralError::UnknownPerson),
            PersonFact::Erased => return Err(ReferralError::PersonErased),
            PersonFact::Merged(survivor) => return Err(ReferralError::PersonMerged(survivor)),
            PersonFact::Active { consent: false } => return Err(ReferralError::NoConsent),
            PersonFact::Active { consent: true } => {}
        }
        let partner = &new.partner.state;
        if !partner.registered {
            return Err(ReferralError::UnknownPartner);
        }
        if partner.suspended {
            return Err(ReferralError::PartnerSuspended);
        }
        if !partner.offers(ServiceKind::try_from(new.need.service).unwrap_or_default()) {
            return Err(ReferralError::ServiceNotOffered);
        }
        if new.referrer == Actor::Partner(new.partner.id) {
            return Err(ReferralError::SelfReferral);
        }
        let due = chrono::Duration::from_std(partner.response_time)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Ok(pb::ReferralCreated {
            person_id: new.person_id.to_string(),
            partner_id: new.partner.id.to_string(),
            partner_kind: partner.kind.into(),
            need: Some(new.need.clone()),
            district: new.district.clone(),
            referrer: Some(new.referrer.to_pb()),
            profile: Some(pb::SealedProfile { ciphertext: new.sealed_profile.clone() }),
            created_at: Some(timestamp(now)),
            due_at: Some(timestamp(due)),
            re_referred_from: new.re_referred_from.map(|r| r.to_string()).unwrap_or_default(),
        })
    }
}

impl Aggregate for Referral {
    type Command = ReferralCommand;
    type Event = ReferralEvent;
    type Error = ReferralError;
    const KIND: &'static str = "referral";

    fn decide(&self, command: &ReferralCommand) -> Result<Vec<ReferralEvent>, ReferralError> {
        use ReferralCommand as C;
        use Status as S;
        if let C::Create(new, now) = command {
            if self.exists() {
                return Err(ReferralError::AlreadyExists);
            }
            return Ok(vec![ReferralEvent::Created(Self::create(new, *now)?)]);
        }
        if !self.exists() {
            return Err(ReferralError::NotFound);
        }
        let event = match command {
            C::Create(..) => return Err(ReferralError::AlreadyExists),
            C::Accept(by, now) => {
                self.addressee(by, "accept")?;
                if self.status != S::Sent {
                    return Err(self.transition("accept"));
                }
                ReferralEvent::Accepted(pb::ReferralAccepted { at: Some(timestamp(*now)) })
            }
            C::Decline(by, reason, note, now) => {
                self.addressee(by, "decline")?;
                if self.status != S::Sent {
                    return Err(self.transition("decline"));
                }
                ReferralEvent::Declined(pb::ReferralDeclined {
                    reason: (*reason).into(),
                    note: note.clone(),
                    at: Some(timestamp(*now)),
                })
            }
            C::ReportProgress(by, stage, now) => {
                self.addressee(by, "report progress on")?;
                if !matches!(self.status, S::Accepted | S::InProgress) {
                    return Err(self.transition("report progress on"));
                }
                if self.stages.contains(stage) {
                    return Err(ReferralError::StageReported(*stage));
                }
                ReferralEvent::ProgressReported(pb::ReferralProgressReported {
                    stage: (*stage).into(),
                    at: Some(timestamp(*now)),
                })
            }
            C::RecordOutcome(by, outcome, now) => {
                self.addressee(by, "record the outcome of")?;
                if !matches!(self.status, S::Accepted | S::InProgress) {
                    return Err(self.transition("record the outcome of"));
                }
                if matches!(outcome.kind, Some(types::outcome::Kind::LoanDisbursed(_)))
                    && self.service != ServiceKind::Loan
                {
                    return Err(ReferralError::LoanOutcomeForOtherNeed);
                }
                ReferralEvent::OutcomeRecorded(pb::ReferralOutcomeRecorded {
                    outcome: Some(outcome.clone()),
                    at: Some(timestamp(*now)),
                })
            }
            C::Close(by, now) => {
                if let Actor::Partner(_) = by
                    && !self.visible_to(by)
                {
                    return Err(ReferralError::NotVisible);
                }
                if !matches!(self.status, S::OutcomeRecorded | S::Declined) {
                    return Err(self.transition("close"));
                }
                ReferralEvent::Closed(pb::ReferralClosed { at: Some(timestamp(*now)) })
            }
            C::Withdraw(by, reason, now) => {
                self.referrer_or_staff(by, "withdraw")?;
                if !matches!(self.status, S::Sent | S::Accepted | S::InProgress) {
                    return Err(self.transition("withdraw"));
                }
                ReferralEvent::Withdrawn(pb::ReferralWithdrawn { reason: (*reason).into(), at: Some(timestamp(*now)) })
            }
            C::ReRefer { by, new_referral_id, new_partner_id, now } => {
                self.referrer_or_staff(by, "re-refer")?;
                if !matches!(self.status, S::Sent | S::Declined | S::Withdrawn) {
                    return Err(self.transition("re-refer"));
                }
                if *new_partner_id == self.partner_id {
                    return Err(ReferralError::SamePartner);
                }
                ReferralEvent::ReReferred(pb::ReferralReReferred {
                    new_referral_id: new_referral_id.to_string(),
                    new_partner_id: new_partner_id.to_string(),
                    at: Some(timestamp(*now)),
                })
            }
            C::RecordSlaBreach(now) => {
                // The worker may run late, twice, or after an answer: only a
                // referral still unanswered past its due time is breached, once.
                if self.status != S::Sent || self.breached {
                    return Ok(Vec::new());
                }
                if *now < self.due_at {
                    return Err(ReferralError::NotDue);
                }
                ReferralEvent::SlaBreached(pb::ReferralSlaBreached {
                    due_at: Some(timestamp(self.due_at)),
                    recorded_at: Some(timestamp(*now)),
                })
            }
        };
        Ok(vec![event])
    }

    fn evolve(&mut self, event: &ReferralEvent) {
        match event {
            ReferralEvent::Created(c) => {
                self.status = Status::Sent;
                self.person_id = Uuid::parse_str(&c.person_id).unwrap_or_default();
                self.partner_id = Uuid::parse_str(&c.partner_id).unwrap_or_default();
                self.service = c.need.as_ref().and_then(|n| ServiceKind::try_from(n.service).ok()).unwrap_or_default();
                self.referrer = Actor::of_pb(c.referrer.as_ref());
                self.due_at = time_of(c.due_at.as_ref());
                self.need = c.need.clone().unwrap_or_default();
                self.district.clone_from(&c.district);
                self.sealed_profile = c.profile.as_ref().map(|p| p.ciphertext.clone()).unwrap_or_default();
            }
            ReferralEvent::Accepted(_) => self.status = Status::Accepted,
            ReferralEvent::Declined(_) => self.status = Status::Declined,
            ReferralEvent::ProgressReported(p) => {
                self.status = Status::InProgress;
                if let Ok(stage) = ProgressStage::try_from(p.stage) {
                    self.stages.insert(stage);
                }
            }
            ReferralEvent::OutcomeRecorded(_) => self.status = Status::OutcomeRecorded,
            ReferralEvent::Closed(_) => self.status = Status::Closed,
            ReferralEvent::Withdrawn(_) => self.status = Status::Withdrawn,
            ReferralEvent::ReReferred(_) => self.status = Status::ReReferred,
            ReferralEvent::SlaBreached(_) => self.breached = true,
        }
    }

    fn exists(&self) -> bool {
        self.status != Status::None
    }
}

#[cfg(test)]
mod tests;
