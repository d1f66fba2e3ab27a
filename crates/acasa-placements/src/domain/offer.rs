//! The offer aggregate: a host's offer of places on fixed terms. Its places
//! are taken by placements as claims (`offer-place`, slot 1..=places), so an
//! offer is never over-filled whoever proposes at once.

use acasa_domain::{Aggregate, Rejection, RejectionKind};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{Kind, Money, Terms};

/// The term of every graduate placement, in months.
pub const GRADUATE_MONTHS: u32 = 6;
/// The longest scientific assignment, in months.
pub const ASSIGNMENT_MONTHS_MAX: u32 = 36;

/// What a host states, with what the command gathered about the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOffer {
    /// Id.
    pub id: Uuid,
    /// The host institution.
    pub host: Uuid,
    /// The host exists and is not suspended (from its aggregate).
    pub host_active: bool,
    /// The profession (placements) or scientific field (assignments), folded.
    pub subject: String,
    /// Places.
    pub places: u32,
    /// Kind, term, allowance and travel cap.
    pub terms: Terms,
    /// Working languages (BCP 47, canonical case).
    pub languages: Vec<String>,
    /// The earliest start.
    pub start_from: NaiveDate,
    /// The latest start.
    pub start_until: NaiveDate,
}

/// An offer's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Offer {
    /// Id, once published.
    pub id: Option<Uuid>,
    /// What was offered.
    pub offer: Option<NewOffer>,
    /// Closed to new proposals.
    pub closed: bool,
}

/// What can be asked of an offer.
#[derive(Clone, Debug, PartialEq)]
pub enum OfferCommand {
    /// Publish it.
    Publish(Box<NewOffer>, DateTime<Utc>),
    /// Take no more proposals.
    Close(String, DateTime<Utc>),
    /// Take proposals again.
    Reopen(DateTime<Utc>),
}

/// What happened to an offer.
#[derive(Clone, Debug, PartialEq)]
pub enum OfferEvent {
    /// Published.
    Published(Box<NewOffer>, DateTime<Utc>),
    /// Closed.
    Closed(String, DateTime<Utc>),
    /// Reopened.
    Reopened(DateTime<Utc>),
}

/// Why an offer refused a command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OfferError {
    /// Published twice.
    #[error("the offer already exists")]
    AlreadyExists,
    /// Not published.
    #[error("no such offer")]
    NotFound,
    /// The host is unknown or suspended.
    #[error("the host institution is unknown or suspended")]
    HostNotActive,
    /// No places.
    #[error("must be at least 1")]
    NoPlaces,
    /// A graduate placement of another length, or an assignment out of range.
    #[error("a graduate placement runs 6 months; an assignment 1 to 36")]
    Term,
    /// Allowance or cap not positive, or in two currencies.
    #[error("the allowance must be more than zero and the travel cap not negative, in one currency")]
    Money,
    /// The window ends before it starts.
    #[error("must not be before start_from")]
    Window,
}

impl Rejection for OfferError {
    fn kind(&self) -> RejectionKind {
        match self {
            Self::AlreadyExists => RejectionKind::AlreadyExists,
            Self::NotFound => RejectionKind::NotFound,
            Self::HostNotActive => RejectionKind::FailedPrecondition,
            Self::NoPlaces | Self::Term | Self::Money | Self::Window => RejectionKind::InvalidArgument,
        }
    }

    fn rule(&self) -> Option<&'static str> {
        matches!(self, Self::HostNotActive).then_some("HOST_SUSPENDED")
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::NoPlaces => Some("places"),
            Self::Term => Some("term_months"),
            Self::Money => Some("allowance"),
            Self::Window => Some("start_until"),
            _ => None,
        }
    }
}

fn check(new: &NewOffer) -> Result<(), OfferError> {
    if !new.host_active {
        return Err(OfferError::HostNotActive);
    }
    if new.places == 0 {
        return Err(OfferError::NoPlaces);
    }
    let months = new.terms.months;
    let term_ok = match new.terms.kind {
        Kind::GraduatePlacement => months == GRADUATE_MONTHS,
        Kind::ScientificAssignment => (1..=ASSIGNMENT_MONTHS_MAX).contains(&months),
    };
    if !term_ok {
        return Err(OfferError::Term);
    }
    let (allowance, cap): (&Money, &Money) = (&new.terms.allowance, &new.terms.travel_cap);
    if allowance.minor <= 0 || cap.minor < 0 || allowance.currency != cap.currency {
        return Err(OfferError::Money);
    }
    if new.start_until < new.start_from {
        return Err(OfferError::Window);
    }
    Ok(())
}

impl Aggregate for Offer {
    type Command = OfferCommand;
    type Event = OfferEvent;
    type Error = OfferError;
    const KIND: &'static str = "offer";

    fn decide(&self, command: &OfferCommand) -> Result<Vec<OfferEvent>, OfferError> {
        if let OfferCommand::Publish(new, at) = command {
            if self.exists() {
                return Err(OfferError::AlreadyExists);
            }
            check(new)?;
            return Ok(vec![OfferEvent::Published(new.clone(), *at)]);
        }
        if !self.exists() {
            return Err(OfferError::NotFound);
        }
        Ok(match command {
            OfferCommand::Publish(..) => Vec::new(),
            OfferCommand::Close(..) if self.closed => Vec::new(),
            OfferCommand::Close(reason, at) => vec![OfferEvent::Closed(reason.clone(), *at)],
            OfferCommand::Reopen(_) if !self.closed => Vec::new(),
            OfferCommand::Reopen(at) => vec![OfferEvent::Reopened(*at)],
        })
    }

    fn evolve(&mut self, event: &OfferEvent) {
        match event {
            OfferEvent::Published(new, _) => {
                self.id = Some(new.id);
                self.offer = Some((**new).clone());
            }
            OfferEvent::Closed(..) => self.closed = true,
            OfferEvent::Reopened(_) => self.closed = false,
        }
    }

    fn exists(&self) -> bool {
        self.id.is_some()
    }
}

#[cfg(test)]
mod tests {
    use acasa_domain::testing::{given, when};

    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn new_offer() -> NewOffer {
        NewOffer {
            id: Uuid::from_u128(1),
            host: Uuid::from_u128(2),
            host_active: true,
            subject: "agronomist".into(),
            places: 3,
            terms: Terms {
                kind: Kind::GraduatePlacement,
                months: 6,
                allowance: Money::new(600_000, "MDL"),
                travel_cap: Money::new(0, "MDL"),
            },
            languages: vec!["ro".into()],
            start_from: NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
            start_until: NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
        }
    }

    fn publish(new: NewOffer) -> OfferCommand {
        OfferCommand::Publish(Box::new(new), at())
    }

    #[test]
    fn an_offer_states_valid_terms_for_an_active_host() {
        let none = given::<Offer>(&[]);
        assert!(when(&none, &publish(new_offer())).result().is_ok(), "a zero travel cap and a one-day window are fine");
        let refused = |f: fn(&mut NewOffer)| {
            let mut n = new_offer();
            f(&mut n);
            when(&given::<Offer>(&[]), &publish(n)).refused()
        };
        assert_eq!(refused(|n| n.host_active = false), OfferError::HostNotActive);
        assert_eq!(refused(|n| n.places = 0), OfferError::NoPlaces);
        assert_eq!(refused(|n| n.terms.months = 5), OfferError::Term);
        assert_eq!(refused(|n| n.terms.months = 7), OfferError::Term);
        assert_eq!(
            refused(|n| {
                n.terms.kind = Kind::ScientificAssignment;
                n.terms.months = 37;
            }),
            OfferError::Term
        );
        let mut assignment = new_offer();
        assignment.terms.kind = Kind::ScientificAssignment;
        for months in [1, 12, 36] {
            assignment.terms.months = months;
            assert!(when(&none, &publish(assignment.clone())).result().is_ok(), "{months} months");
        }
        assignment.terms.months = 0;
        assert_eq!(when(&none, &publish(assignment)).refused(), OfferError::Term);
        assert_eq!(refused(|n| n.terms.allowance.minor = 0), OfferError::Money);
        assert_eq!(refused(|n| n.terms.travel_cap.minor = -1), OfferError::Money);
        assert_eq!(refused(|n| n.terms.travel_cap.currency = "EUR".into()), OfferError::Money);
        assert_eq!(refused(|n| n.start_until = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()), OfferError::Window);
        assert_eq!(OfferError::Window.field(), Some("start_until"));
        assert_eq!(OfferError::Term.field(), Some("term_months"));
        assert_eq!(OfferError::NoPlaces.field(), Some("places"));
        assert_eq!(OfferError::Money.field(), Some("allowance"));
        assert_eq!(OfferError::HostNotActive.kind(), RejectionKind::FailedPrecondition);
        assert_eq!(OfferError::Money.kind(), RejectionKind::InvalidArgument);
        assert_eq!(OfferError::NotFound.kind(), RejectionKind::NotFound);
        assert_eq!(OfferError::AlreadyExists.kind(), RejectionKind::AlreadyExists);
    }

    #[test]
    fn an_offer_is_published_once_and_closes_and_reopens() {
        let published = given::<Offer>(&[publish(new_offer())]);
        assert_eq!(published.offer.as_ref().map(|o| o.places), Some(3));
        assert_eq!(when(&published, &publish(new_offer())).refused(), OfferError::AlreadyExists);
        assert_eq!(when(&given::<Offer>(&[]), &OfferCommand::Reopen(at())).refused(), OfferError::NotFound);
        assert_eq!(when(&published, &OfferCommand::Reopen(at())).events(), []);
        let closed = given::<Offer>(&[publish(new_offer()), OfferCommand::Close("filled".into(), at())]);
        assert!(closed.closed);
        assert_eq!(when(&closed, &OfferCommand::Close("again".into(), at())).events(), []);
        assert_eq!(when(&closed, &OfferCommand::Reopen(at())).event(), OfferEvent::Reopened(at()));
    }
}
