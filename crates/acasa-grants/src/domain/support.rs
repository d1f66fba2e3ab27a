//! The support aggregate: the start-up support services one person
//! received, whoever delivered them — programme staff, a partner of the
//! referral system, another provider. One aggregate per registry person
//! (its id is the person's), so a person's record is one subject.
//!
//! A referral whose outcome is "service delivered" (or "loan disbursed") in
//! the referral system counts too: a worker reading the referrals service's
//! events records it with the referral as its source. A referral counts
//! once however often it is recorded (a replayed event, a retried worker):
//! the second record of the same referral changes nothing. A service
//! recorded by mistake is retracted with a reason, never deleted.

use std::collections::{BTreeMap, BTreeSet};

use acasa_domain::{Aggregate, Rejection, RejectionKind};
use chrono::NaiveDate;
use uuid::Uuid;

use super::Stamp;

/// What kind of support.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SupportKind {
    /// Business strategy planning.
    BusinessPlanning,
    /// Accounting.
    Accounting,
    /// Taxation.
    Taxation,
    /// Licensing.
    Licensing,
    /// Quality standards.
    QualityStandards,
    /// Loans.
    Loans,
    /// Financial literacy.
    FinancialLiteracy,
}

/// Who delivered it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Programme staff (their token subject).
    Staff(String),
    /// A partner organisation of the referral system.
    Partner(Uuid),
    /// Another provider, named.
    Other(String),
}

/// Where the record comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// Recorded by staff.
    Recorded,
    /// A referral's outcome in the referral system.
    Referral(Uuid),
}

/// One service delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// Id.
    pub id: Uuid,
    /// Kind.
    pub kind: SupportKind,
    /// Who delivered it.
    pub provider: Provider,
    /// When.
    pub delivered_on: NaiveDate,
    /// A note (may be empty).
    pub note: String,
    /// Where the record comes from.
    pub source: Source,
}

/// A person's support record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Support {
    /// The person, once anything is recorded.
    pub person: Option<Uuid>,
    /// Services by id, with whether they were retracted.
    pub services: BTreeMap<Uuid, (Service, bool)>,
    /// Referrals already counted.
    pub referrals: BTreeSet<Uuid>,
}

/// What can be asked of a support record.
#[derive(Clone, Debug, PartialEq)]
pub enum SupportCommand {
    /// Record a service delivered to the person.
    Record {
        /// The person.
        person: Uuid,
        /// The service.
        service: Service,
        /// Who, when.
        stamp: Stamp,
    },
    /// Retract a service recorded by mistake.
    Retract {
        /// The service.
        service: Uuid,
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
}

/// What happened to a support record.
#[derive(Clone, Debug, PartialEq)]
pub enum SupportEvent {
    /// A service was recorded.
    Recorded {
        /// The person.
        person: Uuid,
        /// The service.
        service: Service,
        /// Who, when.
        stamp: Stamp,
    },
    /// A service was retracted.
    Retracted {
        /// The service.
        service: Uuid,
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
}

/// Why a support record refused a command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SupportError {
    /// Another person's record.
    #[error("the support record is another person's")]
    OtherPerson,
    /// A service id recorded before with other content.
    #[error("a service with this id is recorded")]
    ServiceExists,
    /// No such service.
    #[error("no such service")]
    NotFound,
}

impl Rejection for SupportError {
    fn kind(&self) -> RejectionKind {
        match self {
            Self::OtherPerson => RejectionKind::InvalidArgument,
            Self::ServiceExists => RejectionKind::AlreadyExists,
            Self::NotFound => RejectionKind::NotFound,
        }
    }

    fn field(&self) -> Option<&'static str> {
        matches!(self, Self::OtherPerson).then_some("person_id")
    }
}

impl Aggregate for Support {
    type Command = SupportCommand;
    type Event = SupportEvent;
    type Error = SupportError;
    const KIND: &'static str = "support";

    fn decide(&self, command: &SupportCommand) -> Result<Vec<SupportEvent>, SupportError> {
        Ok(match command {
            SupportCommand::Record { person, service, stamp } => {
                if self.person.is_some_and(|p| p != *person) {
                    return Err(SupportError::OtherPerson);
                }
                if let Some((existing, _)) = self.services.get(&service.id) {
                    return if existing == service { Ok(Vec::new()) } else { Err(SupportError::ServiceExists) };
                }
                if let Source::Referral(referral) = service.source
                    && self.referrals.contains(&referral)
                {
                    return Ok(Vec::new());
                }
                vec![SupportEvent::Recorded { person: *person, service: service.clone(), stamp: stamp.clone() }]
            }
            SupportCommand::Retract { service, reason, stamp } => {
                let (_, retracted) = self.services.get(service).ok_or(SupportError::NotFound)?;
                if *retracted {
                    return Ok(Vec::new());
                }
                vec![SupportEvent::Retracted { service: *service, reason: reason.clone(), stamp: stamp.clone() }]
            }
        })
    }

    fn evolve(&mut self, event: &SupportEvent) {
        match event {
            SupportEvent::Recorded { person, service, .. } => {
                self.person = Some(*person);
                if let Source::Referral(referral) = service.source {
                    self.referrals.insert(referral);
                }
                self.services.insert(service.id, (service.clone(), false));
            }
            SupportEvent::Retracted { service, .. } => {
                if let Some((_, retracted)) = self.services.get_mut(service) {
                    *retracted = true;
                }
            }
        }
    }

    fn exists(&self) -> bool {
        self.person.is_some()
    }
}

#[cfg(test)]
mod tests {
    use acasa_domain::testing::{given, when};

    use super::*;
    use crate::domain::fixtures::{d, stamp};

    fn person() -> Uuid {
        Uuid::from_u128(0xa1)
    }

    fn service(n: u128, source: Source) -> Service {
        Service {
            id: Uuid::from_u128(0x5000 + n),
            kind: SupportKind::Accounting,
            provider: Provider::Partner(Uuid::from_u128(0xfa)),
            delivered_on: d(2027, 6, 1),
            note: String::new(),
            source,
        }
    }

    fn record(service: Service) -> SupportCommand {
        SupportCommand::Record { person: person(), service, stamp: stamp() }
    }

    fn retract(n: u128) -> SupportCommand {
        SupportCommand::Retract { service: Uuid::from_u128(0x5000 + n), reason: "wrong person".into(), stamp: stamp() }
    }

    #[test]
    fn services_are_recorded_per_person() {
        let none = given::<Support>(&[]);
        assert!(!none.exists());
        let s = when(&none, &record(service(1, Source::Recorded))).state();
        assert_eq!((s.exists(), s.person, s.services.len()), (true, Some(person()), 1));
        let staff = Service {
            kind: SupportKind::BusinessPlanning,
            provider: Provider::Staff("caseworker-1".into()),
            ..service(2, Source::Recorded)
        };
        assert_eq!(when(&s, &record(staff)).state().services.len(), 2);
        let someone_else = SupportCommand::Record {
            person: Uuid::from_u128(0xa2),
            service: service(3, Source::Recorded),
            stamp: stamp(),
        };
        assert_eq!(when(&s, &someone_else).refused(), SupportError::OtherPerson);
        assert_eq!(
            (SupportError::OtherPerson.kind(), SupportError::OtherPerson.field()),
            (RejectionKind::InvalidArgument, Some("person_id"))
        );
    }

    #[test]
    fn a_service_id_is_recorded_once() {
        let s = given::<Support>(&[record(service(1, Source::Recorded))]);
        assert_eq!(when(&s, &record(service(1, Source::Recorded))).events(), [], "the same again");
        let mut changed = service(1, Source::Recorded);
        changed.kind = SupportKind::Loans;
        assert_eq!(when(&s, &record(changed)).refused(), SupportError::ServiceExists);
        assert_eq!(SupportError::ServiceExists.kind(), RejectionKind::AlreadyExists);
        assert_eq!(SupportError::ServiceExists.field(), None);
    }

    #[test]
    fn a_referral_counts_once() {
        let referral = Source::Referral(Uuid::from_u128(0xe1));
        let s = given::<Support>(&[record(service(1, referral))]);
        assert!(s.referrals.contains(&Uuid::from_u128(0xe1)));
        assert_eq!(when(&s, &record(service(2, referral))).events(), [], "another id, the same referral");
        let other = Source::Referral(Uuid::from_u128(0xe2));
        assert_eq!(when(&s, &record(service(3, other))).state().services.len(), 2);
    }

    #[test]
    fn a_service_is_retracted_not_deleted() {
        let s = given::<Support>(&[record(service(1, Source::Recorded))]);
        let retracted = when(&s, &retract(1)).state();
        assert_eq!(retracted.services.get(&Uuid::from_u128(0x5001)).map(|(_, r)| *r), Some(true));
        assert_eq!(when(&retracted, &retract(1)).events(), [], "twice changes nothing");
        assert_eq!(when(&s, &retract(9)).refused(), SupportError::NotFound);
        assert_eq!(SupportError::NotFound.kind(), RejectionKind::NotFound);
    }
}
