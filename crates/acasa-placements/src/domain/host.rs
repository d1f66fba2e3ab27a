//! The host institution aggregate: an employer, research institute or
//! university that hosts placements. Unique by IDNO (a claim taken at
//! registration, in the same atomic batch).

use acasa_domain::{Aggregate, Claim, ClaimChange, Rejection, RejectionKind};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Claim kind of hosts' IDNOs.
pub const HOST_IDNO: &str = "host-idno";

/// What kind of institution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostKind {
    /// A public employer.
    PublicEmployer,
    /// A private employer.
    PrivateEmployer,
    /// A research institute.
    ResearchInstitute,
    /// A university.
    University,
}

/// A host's details (validated at the edge).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostDetails {
    /// Kind.
    pub kind: HostKind,
    /// Name.
    pub name: String,
    /// District (raion).
    pub district: String,
    /// Contact person (name, e-mail, phone: the institution's, for the programme).
    pub contact: Contact,
    /// Fields and professions it hosts (folded, at least one).
    pub hosts: Vec<String>,
}

/// The institution's contact person.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contact {
    /// Name.
    pub name: String,
    /// E-mail.
    pub email: String,
    /// Phone (E.164).
    pub phone: String,
}

/// A host's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Host {
    /// Id, once registered.
    pub id: Option<Uuid>,
    /// IDNO.
    pub idno: String,
    /// Details.
    pub details: Option<HostDetails>,
    /// Suspended: no new offers or proposals.
    pub suspended: bool,
}

/// What can be asked of a host.
#[derive(Clone, Debug, PartialEq)]
pub enum HostCommand {
    /// Register.
    Register {
        /// Id.
        id: Uuid,
        /// IDNO (validated).
        idno: String,
        /// Details.
        details: HostDetails,
    },
    /// Replace the details.
    Update(HostDetails),
    /// Suspend, with the reason.
    Suspend(String, DateTime<Utc>),
    /// Reactivate.
    Reactivate(DateTime<Utc>),
}

/// What happened to a host.
#[derive(Clone, Debug, PartialEq)]
pub enum HostEvent {
    /// Registered.
    Registered {
        /// Id.
        id: Uuid,
        /// IDNO.
        idno: String,
        /// Details.
        details: HostDetails,
    },
    /// Details replaced.
    Updated(HostDetails),
    /// Suspended.
    Suspended(String, DateTime<Utc>),
    /// Reactivated.
    Reactivated(DateTime<Utc>),
}

/// Why a host refused a command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HostError {
    /// Registered twice.
    #[error("the host institution is already registered")]
    AlreadyRegistered,
    /// Not registered.
    #[error("no such host institution")]
    NotFound,
}

impl Rejection for HostError {
    fn kind(&self) -> RejectionKind {
        match self {
            Self::AlreadyRegistered => RejectionKind::AlreadyExists,
            Self::NotFound => RejectionKind::NotFound,
        }
    }
}

impl Aggregate for Host {
    type Command = HostCommand;
    type Event = HostEvent;
    type Error = HostError;
    const KIND: &'static str = "host";

    fn decide(&self, command: &HostCommand) -> Result<Vec<HostEvent>, HostError> {
        if let HostCommand::Register { id, idno, details } = command {
            if self.exists() {
                return Err(HostError::AlreadyRegistered);
            }
            return Ok(vec![HostEvent::Registered { id: *id, idno: idno.clone(), details: details.clone() }]);
        }
        if !self.exists() {
            return Err(HostError::NotFound);
        }
        Ok(match command {
            HostCommand::Register { .. } => Vec::new(),
            HostCommand::Update(d) if self.details.as_ref() == Some(d) => Vec::new(),
            HostCommand::Update(d) => vec![HostEvent::Updated(d.clone())],
            // Suspending a suspended host (or reactivating an active one) changes nothing.
            HostCommand::Suspend(..) if self.suspended => Vec::new(),
            HostCommand::Suspend(reason, at) => vec![HostEvent::Suspended(reason.clone(), *at)],
            HostCommand::Reactivate(_) if !self.suspended => Vec::new(),
            HostCommand::Reactivate(at) => vec![HostEvent::Reactivated(*at)],
        })
    }

    fn evolve(&mut self, event: &HostEvent) {
        match event {
            HostEvent::Registered { id, idno, details } => {
                self.id = Some(*id);
                self.idno.clone_from(idno);
                self.details = Some(details.clone());
            }
            HostEvent::Updated(d) => self.details = Some(d.clone()),
            HostEvent::Suspended(..) => self.suspended = true,
            HostEvent::Reactivated(_) => self.suspended = false,
        }
    }

    fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// One host per IDNO.
    fn claims(&self, events: &[HostEvent]) -> Vec<ClaimChange> {
        events
            .iter()
            .filter_map(|e| match e {
                HostEvent::Registered { idno, .. } => Some(ClaimChange::Acquire(Claim::new(HOST_IDNO, idno.clone()))),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use acasa_domain::testing::{given, when};

    use super::*;

    fn details() -> HostDetails {
        HostDetails {
            kind: HostKind::ResearchInstitute,
            name: "Institutul de Genetică".into(),
            district: "Chișinău".into(),
            contact: Contact { name: "Ana Lungu".into(), email: "hr@igen.md".into(), phone: "+37322000000".into() },
            hosts: vec!["plant genetics".into()],
        }
    }

    fn register() -> HostCommand {
        HostCommand::Register { id: Uuid::from_u128(1), idno: "1003600012345".into(), details: details() }
    }

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn a_host_registers_once_taking_its_idno() {
        assert_eq!(
            when(&given::<Host>(&[]), &register()).claims(),
            [ClaimChange::Acquire(Claim::new(HOST_IDNO, "1003600012345"))]
        );
        assert_eq!(when(&given::<Host>(&[register()]), &register()).refused(), HostError::AlreadyRegistered);
        assert_eq!(when(&given::<Host>(&[]), &HostCommand::Update(details())).refused(), HostError::NotFound);
        assert_eq!(HostError::AlreadyRegistered.kind(), RejectionKind::AlreadyExists);
        assert_eq!(HostError::NotFound.kind(), RejectionKind::NotFound);
    }

    #[test]
    fn updates_replace_the_details_and_suspension_toggles() {
        let host = given::<Host>(&[register()]);
        assert_eq!(when(&host, &HostCommand::Update(details())).events(), [], "unchanged");
        let mut moved = details();
        moved.district = "Bălți".into();
        assert_eq!(when(&host, &HostCommand::Update(moved.clone())).event(), HostEvent::Updated(moved.clone()));
        assert_eq!(given::<Host>(&[register(), HostCommand::Update(moved.clone())]).details, Some(moved));
        assert_eq!(when(&host, &HostCommand::Reactivate(at())).events(), []);
        let suspended = given::<Host>(&[register(), HostCommand::Suspend("audit".into(), at())]);
        assert!(suspended.suspended);
        assert_eq!(when(&suspended, &HostCommand::Suspend("again".into(), at())).events(), []);
        assert_eq!(when(&suspended, &HostCommand::Reactivate(at())).event(), HostEvent::Reactivated(at()));
        assert!(
            !given::<Host>(&[register(), HostCommand::Suspend("a".into(), at()), HostCommand::Reactivate(at())])
                .suspended
        );
        assert_eq!(when(&suspended, &HostCommand::Suspend("x".into(), at())).claims(), []);
    }
}
