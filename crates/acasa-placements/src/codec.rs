//! The placements' events as the log stores them: the `acasa.placements.v1`
//! event messages (`proto/acasa/placements/v1/events.proto`), by type name
//! and schema version, and the conversions between the domain's values and
//! their protobuf forms. The only place the service's events become bytes.

use acasa_domain::{DecodeError, EncodedEvent, EventCodec};
use acasa_proto::{
    Message,
    placements::v1 as pb,
    time,
    r#type::v1::{Date, Money as PbMoney},
};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::domain::{
    Kind, Money, Outcome, OutcomeStage, PlacementEvent, Proposal, Terms,
    host::{Contact, HostDetails, HostEvent, HostKind},
    offer::{NewOffer, OfferEvent},
};

/// Type names of the events.
pub mod names {
    /// `HostRegistered`.
    pub const HOST_REGISTERED: &str = "acasa.placements.v1.HostRegistered";
    /// `HostUpdated`.
    pub const HOST_UPDATED: &str = "acasa.placements.v1.HostUpdated";
    /// `HostSuspended`.
    pub const HOST_SUSPENDED: &str = "acasa.placements.v1.HostSuspended";
    /// `HostReactivated`.
    pub const HOST_REACTIVATED: &str = "acasa.placements.v1.HostReactivated";
    /// `OfferPublished`.
    pub const OFFER_PUBLISHED: &str = "acasa.placements.v1.OfferPublished";
    /// `OfferClosed`.
    pub const OFFER_CLOSED: &str = "acasa.placements.v1.OfferClosed";
    /// `OfferReopened`.
    pub const OFFER_REOPENED: &str = "acasa.placements.v1.OfferReopened";
    /// `PlacementProposed`.
    pub const PROPOSED: &str = "acasa.placements.v1.PlacementProposed";
    /// `PlacementAccepted`.
    pub const ACCEPTED: &str = "acasa.placements.v1.PlacementAccepted";
    /// `PlacementDeclined`.
    pub const DECLINED: &str = "acasa.placements.v1.PlacementDeclined";
    /// `PlacementWithdrawn`.
    pub const WITHDRAWN: &str = "acasa.placements.v1.PlacementWithdrawn";
    /// `AgreementSigned`.
    pub const AGREEMENT_SIGNED: &str = "acasa.placements.v1.AgreementSigned";
    /// `PlacementStarted`.
    pub const STARTED: &str = "acasa.placements.v1.PlacementStarted";
    /// `AllowanceFellDue`.
    pub const ALLOWANCE_FELL_DUE: &str = "acasa.placements.v1.AllowanceFellDue";
    /// `PresenceConfirmed`.
    pub const PRESENCE_CONFIRMED: &str = "acasa.placements.v1.PresenceConfirmed";
    /// `AllowancePaid`.
    pub const ALLOWANCE_PAID: &str = "acasa.placements.v1.AllowancePaid";
    /// `TravelClaimSubmitted`.
    pub const TRAVEL_SUBMITTED: &str = "acasa.placements.v1.TravelClaimSubmitted";
    /// `TravelClaimApproved`.
    pub const TRAVEL_APPROVED: &str = "acasa.placements.v1.TravelClaimApproved";
    /// `TravelClaimRejected`.
    pub const TRAVEL_REJECTED: &str = "acasa.placements.v1.TravelClaimRejected";
    /// `TravelClaimPaid`.
    pub const TRAVEL_PAID: &str = "acasa.placements.v1.TravelClaimPaid";
    /// `PlacementCompleted`.
    pub const COMPLETED: &str = "acasa.placements.v1.PlacementCompleted";
    /// `PlacementEndedEarly`.
    pub const ENDED_EARLY: &str = "acasa.placements.v1.PlacementEndedEarly";
    /// `OutcomeRecorded`.
    pub const OUTCOME_RECORDED: &str = "acasa.placements.v1.OutcomeRecorded";
    /// `FollowUpOverdue`.
    pub const FOLLOW_UP_OVERDUE: &str = "acasa.placements.v1.FollowUpOverdue";
}

fn encoded(type_name: &str, m: &impl Message) -> EncodedEvent {
    EncodedEvent { type_name: type_name.to_owned(), schema_version: 1, data: m.encode_to_vec() }
}

fn decoded<M: Message + Default>(e: &EncodedEvent) -> Result<M, DecodeError> {
    if e.schema_version != 1 {
        return Err(DecodeError::new(e, "unknown schema version"));
    }
    M::decode(e.data.as_slice()).map_err(|err| DecodeError::new(e, err.to_string()))
}

// ------------------------------------------------------------ values

/// Calendar dates to and from protobuf `Date`s (the kit's).
pub use acasa_proto::time::{date, naive_date as date_of};

/// The protobuf form of an amount.
pub fn money(m: &Money) -> PbMoney {
    PbMoney { amount_minor: m.minor, currency: m.currency.clone() }
}

fn money_of(e: &EncodedEvent, m: Option<&PbMoney>) -> Result<Money, DecodeError> {
    m.map(|m| Money { minor: m.amount_minor, currency: m.currency.clone() })
        .ok_or_else(|| DecodeError::new(e, "an amount is missing"))
}

fn date_in(e: &EncodedEvent, d: Option<&Date>) -> Result<NaiveDate, DecodeError> {
    d.and_then(date_of).ok_or_else(|| DecodeError::new(e, "a date is missing or invalid"))
}

fn ts(t: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(time::timestamp(t))
}

fn time_in(e: &EncodedEvent, t: Option<&prost_types::Timestamp>) -> Result<DateTime<Utc>, DecodeError> {
    t.and_then(time::checked_time).ok_or_else(|| DecodeError::new(e, "a time is missing or invalid"))
}

fn id_in(e: &EncodedEvent, s: &str) -> Result<Uuid, DecodeError> {
    Uuid::parse_str(s).map_err(|_| DecodeError::new(e, "an id is not a UUID"))
}

fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn count_in(e: &EncodedEvent, n: i32) -> Result<u32, DecodeError> {
    u32::try_from(n).map_err(|_| DecodeError::new(e, "a count is negative"))
}

/// The protobuf kind of a placement.
pub fn kind(k: Kind) -> pb::PlacementKind {
    match k {
        Kind::GraduatePlacement => pb::PlacementKind::GraduatePlacement,
        Kind::ScientificAssignment => pb::PlacementKind::ScientificAssignment,
    }
}

fn kind_in(e: &EncodedEvent, k: i32) -> Result<Kind, DecodeError> {
    match pb::PlacementKind::try_from(k) {
        Ok(pb::PlacementKind::GraduatePlacement) => Ok(Kind::GraduatePlacement),
        Ok(pb::PlacementKind::ScientificAssignment) => Ok(Kind::ScientificAssignment),
        _ => Err(DecodeError::new(e, "unknown placement kind")),
    }
}

/// The protobuf kind of a host.
pub fn host_kind(k: HostKind) -> pb::HostKind {
    match k {
        HostKind::PublicEmployer => pb::HostKind::PublicEmployer,
        HostKind::PrivateEmployer => pb::HostKind::PrivateEmployer,
        HostKind::ResearchInstitute => pb::HostKind::ResearchInstitute,
        HostKind::University => pb::HostKind::University,
    }
}

/// The protobuf form of a host's details.
pub fn host_details(d: &HostDetails) -> pb::HostDetails {
    pb::HostDetails {
        kind: host_kind(d.kind) as i32,
        name: d.name.clone(),
        district: d.district.clone(),
        contact: Some(pb::HostContact {
            name: d.contact.name.clone(),
            email: d.contact.email.clone(),
            phone: d.contact.phone.clone(),
        }),
        hosts: d.hosts.clone(),
    }
}

fn host_details_in(e: &EncodedEvent, d: Option<&pb::HostDetails>) -> Result<HostDetails, DecodeError> {
    let d = d.ok_or_else(|| DecodeError::new(e, "details are missing"))?;
    let kind = match pb::HostKind::try_from(d.kind) {
        Ok(pb::HostKind::PublicEmployer) => HostKind::PublicEmployer,
        Ok(pb::HostKind::PrivateEmployer) => HostKind::PrivateEmployer,
        Ok(pb::HostKind::ResearchInstitute) => HostKind::ResearchInstitute,
        Ok(pb::HostKind::University) => HostKind::University,
        _ => return Err(DecodeError::new(e, "unknown host kind")),
    };
    let c = d.contact.clone().unwrap_or_default();
    Ok(HostDetails {
        kind,
        name: d.name.clone(),
        district: d.district.clone(),
        contact: Contact { name: c.name, email: c.email, phone: c.phone },
        hosts: d.hosts.clone(),
    })
}

/// The protobuf stage of an outcome.
pub fn stage(s: OutcomeStage) -> pb::OutcomeStage {
    match s {
        OutcomeStage::Completion => pb::OutcomeStage::Completion,
        OutcomeStage::FollowUp => pb::OutcomeStage::FollowUp,
    }
}

/// The protobuf kind of an outcome, and its note.
pub fn outcome(o: &Outcome) -> (pb::OutcomeKind, &str) {
    match o {
        Outcome::EmployedInMoldova => (pb::OutcomeKind::EmployedInMoldova, ""),
        Outcome::ContinuedResearch => (pb::OutcomeKind::ContinuedResearch, ""),
        Outcome::ReturnedAbroad => (pb::OutcomeKind::ReturnedAbroad, ""),
        Outcome::Other(note) => (pb::OutcomeKind::Other, note),
    }
}

fn outcome_in(e: &EncodedEvent, m: &pb::OutcomeRecorded) -> Result<(OutcomeStage, Outcome), DecodeError> {
    let stage = match pb::OutcomeStage::try_from(m.stage) {
        Ok(pb::OutcomeStage::Completion) => OutcomeStage::Completion,
        Ok(pb::OutcomeStage::FollowUp) => OutcomeStage::FollowUp,
        _ => return Err(DecodeError::new(e, "unknown outcome stage")),
    };
    let outcome = match pb::OutcomeKind::try_from(m.kind) {
        Ok(pb::OutcomeKind::EmployedInMoldova) => Outcome::EmployedInMoldova,
        Ok(pb::OutcomeKind::ContinuedResearch) => Outcome::ContinuedResearch,
        Ok(pb::OutcomeKind::ReturnedAbroad) => Outcome::ReturnedAbroad,
        Ok(pb::OutcomeKind::Other) => Outcome::Other(m.note.clone()),
        _ => return Err(DecodeError::new(e, "unknown outcome")),
    };
    Ok((stage, outcome))
}

// ------------------------------------------------------------ hosts

impl EventCodec for HostEvent {
    fn encode(&self) -> EncodedEvent {
        use names::*;
        match self {
            Self::Registered { id, idno, details } => encoded(
                HOST_REGISTERED,
                &pb::HostRegistered {
                    host_id: id.to_string(),
                    idno: idno.clone(),
                    details: Some(host_details(details)),
                },
            ),
            Self::Updated(d) => encoded(HOST_UPDATED, &pb::HostUpdated { details: Some(host_details(d)) }),
            Self::Suspended(reason, at) => {
                encoded(HOST_SUSPENDED, &pb::HostSuspended { reason: reason.clone(), at: ts(*at) })
            }
            Self::Reactivated(at) => encoded(HOST_REACTIVATED, &pb::HostReactivated { at: ts(*at) }),
        }
    }

    fn decode(e: &EncodedEvent) -> Result<Self, DecodeError> {
        use names::*;
        Ok(match e.type_name.as_str() {
            HOST_REGISTERED => {
                let m: pb::HostRegistered = decoded(e)?;
                Self::Registered {
                    id: id_in(e, &m.host_id)?,
                    idno: m.idno.clone(),
                    details: host_details_in(e, m.details.as_ref())?,
                }
            }
            HOST_UPDATED => {
                let m: pb::HostUpdated = decoded(e)?;
                Self::Updated(host_details_in(e, m.details.as_ref())?)
            }
            HOST_SUSPENDED => {
                let m: pb::HostSuspended = decoded(e)?;
                Self::Suspended(m.reason, time_in(e, m.at.as_ref())?)
            }
            HOST_REACTIVATED => {
                let m: pb::HostReactivated = decoded(e)?;
                Self::Reactivated(time_in(e, m.at.as_ref())?)
            }
            _ => return Err(DecodeError::new(e, "not a host event")),
        })
    }
}

// ------------------------------------------------------------ offers

/// The protobuf terms of an offer.
pub fn offer_terms(o: &NewOffer) -> pb::OfferTerms {
    pb::OfferTerms {
        kind: kind(o.terms.kind) as i32,
        subject: o.subject.clone(),
        places: count(o.places),
        term_months: count(o.terms.months),
        allowance: Some(money(&o.terms.allowance)),
        travel_cap: Some(money(&o.terms.travel_cap)),
        start_from: Some(date(o.start_from)),
        start_until: Some(date(o.start_until)),
        languages: o.languages.clone(),
    }
}

impl EventCodec for OfferEvent {
    fn encode(&self) -> EncodedEvent {
        use names::*;
        match self {
            Self::Published(o, at) => encoded(
                OFFER_PUBLISHED,
                &pb::OfferPublished {
                    offer_id: o.id.to_string(),
                    host_id: o.host.to_string(),
                    terms: Some(offer_terms(o)),
                    at: ts(*at),
                },
            ),
            Self::Closed(reason, at) => encoded(OFFER_CLOSED, &pb::OfferClosed { reason: reason.clone(), at: ts(*at) }),
            Self::Reopened(at) => encoded(OFFER_REOPENED, &pb::OfferReopened { at: ts(*at) }),
        }
    }

    fn decode(e: &EncodedEvent) -> Result<Self, DecodeError> {
        use names::*;
        Ok(match e.type_name.as_str() {
            OFFER_PUBLISHED => {
                let m: pb::OfferPublished = decoded(e)?;
                let t = m.terms.clone().ok_or_else(|| DecodeError::new(e, "terms are missing"))?;
                Self::Published(
                    Box::new(NewOffer {
                        id: id_in(e, &m.offer_id)?,
                        host: id_in(e, &m.host_id)?,
                        host_active: true,
                        subject: t.subject.clone(),
                        places: count_in(e, t.places)?,
                        terms: Terms {
                            kind: kind_in(e, t.kind)?,
                            months: count_in(e, t.term_months)?,
                            allowance: money_of(e, t.allowance.as_ref())?,
                            travel_cap: money_of(e, t.travel_cap.as_ref())?,
                        },
                        languages: t.languages.clone(),
                        start_from: date_in(e, t.start_from.as_ref())?,
                        start_until: date_in(e, t.start_until.as_ref())?,
                    }),
                    time_in(e, m.at.as_ref())?,
                )
            }
            OFFER_CLOSED => {
                let m: pb::OfferClosed = decoded(e)?;
                Self::Closed(m.reason, time_in(e, m.at.as_ref())?)
            }
            OFFER_REOPENED => {
                let m: pb::OfferReopened = decoded(e)?;
                Self::Reopened(time_in(e, m.at.as_ref())?)
            }
            _ => return Err(DecodeError::new(e, "not an offer event")),
        })
    }
}

// ------------------------------------------------------------ placements

fn proposed(p: &Proposal, at: DateTime<Utc>) -> pb::PlacementProposed {
    pb::PlacementProposed {
        placement_id: p.id.to_string(),
        person_id: p.person.to_string(),
        offer_id: p.offer.to_string(),
        host_id: p.host.to_string(),
        slot: count(p.slot),
        kind: kind(p.terms.kind) as i32,
        term_months: count(p.terms.months),
        allowance: Some(money(&p.terms.allowance)),
        travel_cap: Some(money(&p.terms.travel_cap)),
        start_from: Some(date(p.start_from)),
        start_until: Some(date(p.start_until)),
        at: ts(at),
    }
}

fn proposal_in(e: &EncodedEvent, m: &pb::PlacementProposed) -> Result<Proposal, DecodeError> {
    Ok(Proposal {
        id: id_in(e, &m.placement_id)?,
        person: id_in(e, &m.person_id)?,
        offer: id_in(e, &m.offer_id)?,
        host: id_in(e, &m.host_id)?,
        slot: count_in(e, m.slot)?,
        terms: Terms {
            kind: kind_in(e, m.kind)?,
            months: count_in(e, m.term_months)?,
            allowance: money_of(e, m.allowance.as_ref())?,
            travel_cap: money_of(e, m.travel_cap.as_ref())?,
        },
        start_from: date_in(e, m.start_from.as_ref())?,
        start_until: date_in(e, m.start_until.as_ref())?,
    })
}

impl EventCodec for PlacementEvent {
    fn encode(&self) -> EncodedEvent {
        use names::*;
        match self {
            Self::Proposed(p, at) => encoded(PROPOSED, &proposed(p, *at)),
            Self::Accepted(at) => encoded(ACCEPTED, &pb::PlacementAccepted { at: ts(*at) }),
            Self::Declined(reason, at) => {
                encoded(DECLINED, &pb::PlacementDeclined { reason: reason.clone(), at: ts(*at) })
            }
            Self::Withdrawn(reason, at) => {
                encoded(WITHDRAWN, &pb::PlacementWithdrawn { reason: reason.clone(), at: ts(*at) })
            }
            Self::AgreementSigned { signed_on, start_on, reference } => encoded(
                AGREEMENT_SIGNED,
                &pb::AgreementSigned {
                    signed_on: Some(date(*signed_on)),
                    start_on: Some(date(*start_on)),
                    reference: reference.clone(),
                },
            ),
            Self::Started(on) => encoded(STARTED, &pb::PlacementStarted { started_on: Some(date(*on)) }),
            Self::AllowanceFellDue { month, amount, due_on } => encoded(
                ALLOWANCE_FELL_DUE,
                &pb::AllowanceFellDue {
                    month: count(*month),
                    amount: Some(money(amount)),
                    due_on: Some(date(*due_on)),
                },
            ),
            Self::PresenceConfirmed(month) => {
                encoded(PRESENCE_CONFIRMED, &pb::PresenceConfirmed { month: count(*month) })
            }
            Self::AllowancePaid { month, amount, paid_on, reference } => encoded(
                ALLOWANCE_PAID,
                &pb::AllowancePaid {
                    month: count(*month),
                    amount: Some(money(amount)),
                    paid_on: Some(date(*paid_on)),
                    reference: reference.clone(),
                },
            ),
            Self::TravelSubmitted { claim, kind, amount, receipt } => encoded(
                TRAVEL_SUBMITTED,
                &pb::TravelClaimSubmitted {
                    claim_id: claim.to_string(),
                    kind: kind.clone(),
                    amount: Some(money(amount)),
                    receipt_reference: receipt.clone(),
                },
            ),
            Self::TravelApproved { claim, amount } => encoded(
                TRAVEL_APPROVED,
                &pb::TravelClaimApproved { claim_id: claim.to_string(), amount: Some(money(amount)) },
            ),
            Self::TravelRejected { claim, reason } => encoded(
                TRAVEL_REJECTED,
                &pb::TravelClaimRejected { claim_id: claim.to_string(), reason: reason.clone() },
            ),
            Self::TravelPaid { claim, amount, paid_on, reference } => encoded(
                TRAVEL_PAID,
                &pb::TravelClaimPaid {
                    claim_id: claim.to_string(),
                    amount: Some(money(amount)),
                    paid_on: Some(date(*paid_on)),
                    reference: reference.clone(),
                },
            ),
            Self::Completed(on) => encoded(COMPLETED, &pb::PlacementCompleted { ended_on: Some(date(*on)) }),
            Self::EndedEarly(on, reason) => {
                encoded(ENDED_EARLY, &pb::PlacementEndedEarly { ended_on: Some(date(*on)), reason: reason.clone() })
            }
            Self::OutcomeRecorded(s, o, on) => {
                let (kind, note) = outcome(o);
                encoded(
                    OUTCOME_RECORDED,
                    &pb::OutcomeRecorded {
                        stage: stage(*s) as i32,
                        kind: kind as i32,
                        note: note.to_owned(),
                        recorded_on: Some(date(*on)),
                    },
                )
            }
            Self::FollowUpOverdue(on) => encoded(FOLLOW_UP_OVERDUE, &pb::FollowUpOverdue { due_on: Some(date(*on)) }),
        }
    }

    fn decode(e: &EncodedEvent) -> Result<Self, DecodeError> {
        use names::*;
        Ok(match e.type_name.as_str() {
            PROPOSED => {
                let m: pb::PlacementProposed = decoded(e)?;
                Self::Proposed(proposal_in(e, &m)?, time_in(e, m.at.as_ref())?)
            }
            ACCEPTED => {
                let m: pb::PlacementAccepted = decoded(e)?;
                Self::Accepted(time_in(e, m.at.as_ref())?)
            }
            DECLINED => {
                let m: pb::PlacementDeclined = decoded(e)?;
                Self::Declined(m.reason, time_in(e, m.at.as_ref())?)
            }
            WITHDRAWN => {
                let m: pb::PlacementWithdrawn = decoded(e)?;
                Self::Withdrawn(m.reason, time_in(e, m.at.as_ref())?)
            }
            AGREEMENT_SIGNED => {
                let m: pb::AgreementSigned = decoded(e)?;
                Self::AgreementSigned {
                    signed_on: date_in(e, m.signed_on.as_ref())?,
                    start_on: date_in(e, m.start_on.as_ref())?,
                    reference: m.reference,
                }
            }
            STARTED => {
                let m: pb::PlacementStarted = decoded(e)?;
                Self::Started(date_in(e, m.started_on.as_ref())?)
            }
            ALLOWANCE_FELL_DUE => {
                let m: pb::AllowanceFellDue = decoded(e)?;
                Self::AllowanceFellDue {
                    month: count_in(e, m.month)?,
                    amount: money_of(e, m.amount.as_ref())?,
                    due_on: date_in(e, m.due_on.as_ref())?,
                }
            }
            PRESENCE_CONFIRMED => {
                let m: pb::PresenceConfirmed = decoded(e)?;
                Self::PresenceConfirmed(count_in(e, m.month)?)
            }
            ALLOWANCE_PAID => {
                let m: pb::AllowancePaid = decoded(e)?;
                Self::AllowancePaid {
                    month: count_in(e, m.month)?,
                    amount: money_of(e, m.amount.as_ref())?,
                    paid_on: date_in(e, m.paid_on.as_ref())?,
                    reference: m.reference,
                }
            }
            TRAVEL_SUBMITTED => {
                let m: pb::TravelClaimSubmitted = decoded(e)?;
                Self::TravelSubmitted {
                    claim: id_in(e, &m.claim_id)?,
                    kind: m.kind.clone(),
                    amount: money_of(e, m.amount.as_ref())?,
                    receipt: m.receipt_reference,
                }
            }
            TRAVEL_APPROVED => {
                let m: pb::TravelClaimApproved = decoded(e)?;
                Self::TravelApproved { claim: id_in(e, &m.claim_id)?, amount: money_of(e, m.amount.as_ref())? }
            }
            TRAVEL_REJECTED => {
                let m: pb::TravelClaimRejected = decoded(e)?;
                Self::TravelRejected { claim: id_in(e, &m.claim_id)?, reason: m.reason }
            }
            TRAVEL_PAID => {
                let m: pb::TravelClaimPaid = decoded(e)?;
                Self::TravelPaid {
                    claim: id_in(e, &m.claim_id)?,
                    amount: money_of(e, m.amount.as_ref())?,
                    paid_on: date_in(e, m.paid_on.as_ref())?,
                    reference: m.reference,
                }
            }
            COMPLETED => {
                let m: pb::PlacementCompleted = decoded(e)?;
                Self::Completed(date_in(e, m.ended_on.as_ref())?)
            }
            ENDED_EARLY => {
                let m: pb::PlacementEndedEarly = decoded(e)?;
                Self::EndedEarly(date_in(e, m.ended_on.as_ref())?, m.reason)
            }
            OUTCOME_RECORDED => {
                let m: pb::OutcomeRecorded = decoded(e)?;
                let (s, o) = outcome_in(e, &m)?;
                Self::OutcomeRecorded(s, o, date_in(e, m.recorded_on.as_ref())?)
            }
            FOLLOW_UP_OVERDUE => {
                let m: pb::FollowUpOverdue = decoded(e)?;
                Self::FollowUpOverdue(date_in(e, m.due_on.as_ref())?)
            }
            _ => return Err(DecodeError::new(e, "not a placement event")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Terms;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn round_trip<E: EventCodec + PartialEq + std::fmt::Debug>(e: E) {
        let stored = e.encode();
        assert_eq!(E::decode(&stored).unwrap(), e, "{}", stored.type_name);
    }

    #[test]
    fn every_event_survives_the_log() {
        let mdl = |m| Money::new(m, "MDL");
        let details = HostDetails {
            kind: HostKind::University,
            name: "UTM".into(),
            district: "Chișinău".into(),
            contact: Contact { name: "HR".into(), email: "hr@utm.md".into(), phone: String::new() },
            hosts: vec!["software".into()],
        };
        let id = Uuid::from_u128(7);
        round_trip(HostEvent::Registered { id, idno: "1003600012345".into(), details: details.clone() });
        round_trip(HostEvent::Updated(details));
        round_trip(HostEvent::Suspended("audit".into(), at()));
        round_trip(HostEvent::Reactivated(at()));
        let terms = Terms { kind: Kind::ScientificAssignment, months: 12, allowance: mdl(5), travel_cap: mdl(0) };
        round_trip(OfferEvent::Published(
            Box::new(NewOffer {
                id,
                host: Uuid::from_u128(8),
                host_active: true,
                subject: "physics".into(),
                places: 2,
                terms: terms.clone(),
                languages: vec!["ro".into(), "en".into()],
                start_from: d(2027, 1, 1),
                start_until: d(2027, 2, 1),
            }),
            at(),
        ));
        round_trip(OfferEvent::Closed("full".into(), at()));
        round_trip(OfferEvent::Reopened(at()));
        let proposal = Proposal {
            id,
            person: Uuid::from_u128(9),
            offer: Uuid::from_u128(10),
            host: Uuid::from_u128(8),
            slot: 2,
            terms,
            start_from: d(2027, 1, 1),
            start_until: d(2027, 2, 1),
        };
        for e in [
            PlacementEvent::Proposed(proposal, at()),
            PlacementEvent::Accepted(at()),
            PlacementEvent::Declined("moved".into(), at()),
            PlacementEvent::Withdrawn("budget".into(), at()),
            PlacementEvent::AgreementSigned {
                signed_on: d(2027, 1, 2),
                start_on: d(2027, 1, 3),
                reference: "A".into(),
            },
            PlacementEvent::Started(d(2027, 1, 3)),
            PlacementEvent::AllowanceFellDue { month: 1, amount: mdl(3), due_on: d(2027, 2, 3) },
            PlacementEvent::PresenceConfirmed(1),
            PlacementEvent::AllowancePaid { month: 1, amount: mdl(3), paid_on: d(2027, 2, 4), reference: "P".into() },
            PlacementEvent::TravelSubmitted { claim: id, kind: "bus".into(), amount: mdl(2), receipt: "R".into() },
            PlacementEvent::TravelApproved { claim: id, amount: mdl(2) },
            PlacementEvent::TravelRejected { claim: id, reason: "no receipt".into() },
            PlacementEvent::TravelPaid { claim: id, amount: mdl(2), paid_on: d(2027, 2, 5), reference: "T".into() },
            PlacementEvent::Completed(d(2028, 1, 3)),
            PlacementEvent::EndedEarly(d(2027, 5, 3), "illness".into()),
            PlacementEvent::OutcomeRecorded(OutcomeStage::Completion, Outcome::EmployedInMoldova, d(2028, 1, 4)),
            PlacementEvent::OutcomeRecorded(OutcomeStage::FollowUp, Outcome::Other("NGO".into()), d(2028, 7, 4)),
            PlacementEvent::FollowUpOverdue(d(2028, 7, 3)),
        ] {
            round_trip(e);
        }
    }

    #[test]
    fn events_that_do_not_decode_are_named_not_guessed() {
        let mut stored = PlacementEvent::Started(d(2027, 1, 3)).encode();
        stored.schema_version = 2;
        assert!(PlacementEvent::decode(&stored).is_err());
        let stored = EncodedEvent {
            type_name: names::STARTED.into(),
            schema_version: 1,
            data: pb::PlacementStarted { started_on: None }.encode_to_vec(),
        };
        assert!(PlacementEvent::decode(&stored).unwrap_err().reason.contains("date"));
        let wrong = HostEvent::Reactivated(at()).encode();
        assert!(PlacementEvent::decode(&wrong).is_err());
        assert!(OfferEvent::decode(&wrong).is_err());
    }
}
