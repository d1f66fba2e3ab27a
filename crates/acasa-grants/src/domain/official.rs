//! The official aggregate: a local official or SME-support staff member the
//! programme trains. Not a registry person: recorded here with their
//! organisation and role, under the same personal-data rules — their name,
//! sex and contacts are sealed in the events with the official's own data
//! key (in this service's vault table, like the registry's people; see
//! [`crate::codec::OfficialCodec`]), and `Erase` destroys the key: the log
//! keeps that someone of this organisation and role was trained, with the
//! certificate number, and nothing personal.
//!
//! Their enrolments follow the shared training rules
//! ([`super::training`]): a seat claim per enrolment, once per session,
//! attendance per day, completion at the session's threshold.

use std::collections::BTreeMap;

use acasa_domain::{Aggregate, ClaimChange, Rejection, RejectionKind};
use chrono::NaiveDate;
use uuid::Uuid;

use super::training::{self, Enrolment, Finished, SessionFacts, TrainingRule};
use super::{Audience, Sex, Stamp};

/// What kind of official.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OfficialKind {
    /// A local public administration official.
    LocalOfficial,
    /// SME-support staff (a business support organisation, an incubator, a
    /// government agency for SMEs).
    SmeSupportStaff,
}

/// An official's details. Personal: name, sex, e-mail and phone (sealed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfficialDetails {
    /// Kind.
    pub kind: OfficialKind,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Sex, if stated (for sex-disaggregated reporting).
    pub sex: Option<Sex>,
    /// Organisation (a town hall, a district council, an agency).
    pub organisation: String,
    /// Role in it.
    pub role: String,
    /// The organisation's district.
    pub district: String,
    /// E-mail (may be empty).
    pub email: String,
    /// Phone, E.164 (may be empty).
    pub phone: String,
}

/// An official's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Official {
    /// Id, once registered.
    pub id: Option<Uuid>,
    /// Details (none after erasure).
    pub details: Option<OfficialDetails>,
    /// Erased.
    pub erased: bool,
    /// Enrolments by session.
    pub enrolments: BTreeMap<Uuid, Enrolment>,
}

/// What can be asked of an official's record.
#[derive(Clone, Debug, PartialEq)]
pub enum OfficialCommand {
    /// Register.
    Register {
        /// Id.
        id: Uuid,
        /// Details.
        details: OfficialDetails,
        /// Who, when.
        stamp: Stamp,
    },
    /// Replace the details.
    Update(OfficialDetails, Stamp),
    /// Erase the personal data (crypto-shredding).
    Erase {
        /// Why (the request's reference).
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Enrol in a session, taking a seat.
    Enrol {
        /// The session.
        session: SessionFacts,
        /// The seat.
        seat: u32,
        /// Today.
        on: NaiveDate,
        /// Who, when.
        stamp: Stamp,
    },
    /// Leave a session, freeing the seat.
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
}

/// What happened to an official's record.
#[derive(Clone, Debug, PartialEq)]
pub enum OfficialEvent {
    /// Registered.
    Registered {
        /// Id.
        id: Uuid,
        /// Details.
        details: OfficialDetails,
        /// Who, when.
        stamp: Stamp,
    },
    /// Details replaced.
    Updated(OfficialDetails, Stamp),
    /// Personal data erased.
    Erased {
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Enrolled.
    Enrolled {
        /// The session.
        session: Uuid,
        /// The seat.
        seat: u32,
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
    /// Completed, with a certificate.
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
}

/// Why an official's record refused a command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OfficialError {
    /// Registered twice.
    #[error("the official is already registered")]
    AlreadyExists,
    /// Not registered.
    #[error("no such official")]
    NotFound,
    /// Erased.
    #[error("the official's personal data was erased")]
    Erased,
    /// Enrolled in the session before.
    #[error("the official is already enrolled in this session")]
    AlreadyEnrolled,
    /// A training rule.
    #[error("{0}")]
    Training(TrainingRule),
}

impl Rejection for OfficialError {
    fn kind(&self) -> RejectionKind {
        match self {
            Self::AlreadyExists => RejectionKind::AlreadyExists,
            Self::NotFound => RejectionKind::NotFound,
            _ => RejectionKind::FailedPrecondition,
        }
    }

    fn rule(&self) -> Option<&'static str> {
        Some(match self {
            Self::Erased => "OFFICIAL_ERASED",
            Self::AlreadyEnrolled => "ALREADY_ENROLLED",
            Self::Training(rule) => rule.name(),
            Self::AlreadyExists | Self::NotFound => return None,
        })
    }
}

impl From<TrainingRule> for OfficialError {
    fn from(rule: TrainingRule) -> Self {
        Self::Training(rule)
    }
}

impl Official {
    fn decide_training(&self, command: &OfficialCommand) -> Result<Vec<OfficialEvent>, OfficialError> {
        use OfficialCommand as C;
        use OfficialEvent as E;
        Ok(match command {
            C::Enrol { session, seat, on, stamp } => {
                if self.enrolments.contains_key(&session.id) {
                    return Err(OfficialError::AlreadyEnrolled);
                }
                training::can_enrol(Audience::Officials, session, *seat, *on)?;
                vec![E::Enrolled { session: session.id, seat: *seat, stamp: stamp.clone() }]
            }
            C::Unenrol { session, reason, on, stamp } => {
                training::can_unenrol(self.enrolments.get(&session.id), session, *on)?;
                vec![E::Unenrolled { session: session.id, reason: reason.clone(), stamp: stamp.clone() }]
            }
            C::RecordAttendance { session, day, present, today, stamp } => {
                if !training::attendance(self.enrolments.get(&session.id), session, *day, *present, *today)? {
                    return Ok(Vec::new());
                }
                vec![E::AttendanceRecorded { session: session.id, day: *day, present: *present, stamp: stamp.clone() }]
            }
            C::CompleteTraining { session, today, stamp } => {
                let c = training::completion(self.enrolments.get(&session.id), session, *today)?;
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
            C::Register { .. } | C::Update(..) | C::Erase { .. } => Vec::new(),
        })
    }
}

impl Aggregate for Official {
    type Command = OfficialCommand;
    type Event = OfficialEvent;
    type Error = OfficialError;
    const KIND: &'static str = "official";

    fn decide(&self, command: &OfficialCommand) -> Result<Vec<OfficialEvent>, OfficialError> {
        use OfficialCommand as C;
        use OfficialEvent as E;
        if let C::Register { id, details, stamp } = command {
            if self.exists() {
                return Err(OfficialError::AlreadyExists);
            }
            return Ok(vec![E::Registered { id: *id, details: details.clone(), stamp: stamp.clone() }]);
        }
        if !self.exists() {
            return Err(OfficialError::NotFound);
        }
        if self.erased {
            return match command {
                C::Erase { .. } => Ok(Vec::new()),
                _ => Err(OfficialError::Erased),
            };
        }
        Ok(match command {
            C::Update(details, _) if self.details.as_ref() == Some(details) => Vec::new(),
            C::Update(details, stamp) => vec![E::Updated(details.clone(), stamp.clone())],
            C::Erase { reason, stamp } => vec![E::Erased { reason: reason.clone(), stamp: stamp.clone() }],
            _ => self.decide_training(command)?,
        })
    }

    fn evolve(&mut self, event: &OfficialEvent) {
        use OfficialEvent as E;
        match event {
            E::Registered { id, details, .. } => {
                self.id = Some(*id);
                self.details = Some(details.clone());
            }
            E::Updated(details, _) => self.details = Some(details.clone()),
            E::Erased { .. } => {
                self.erased = true;
                self.details = None;
            }
            E::Enrolled { session, seat, .. } => {
                self.enrolments.insert(*session, Enrolment::new(*session, *seat));
            }
            E::Unenrolled { session, .. } => {
                self.enrolments.remove(session);
            }
            E::AttendanceRecorded { session, day, present, .. } => {
                if let Some(e) = self.enrolments.get_mut(session) {
                    e.attendance.insert(*day, *present);
                }
            }
            E::TrainingCompleted { session, certificate, .. } => {
                if let Some(e) = self.enrolments.get_mut(session) {
                    e.finished = Some(Finished::Completed(certificate.clone()));
                }
            }
            E::TrainingNotCompleted { session, .. } => {
                if let Some(e) = self.enrolments.get_mut(session) {
                    e.finished = Some(Finished::NotCompleted);
                }
            }
        }
    }

    fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// An enrolment takes its seat; leaving frees it; erasure frees the
    /// seats of enrolments not finished (a finished one's seat stays: its
    /// certificate number is the seat's).
    fn claims(&self, events: &[OfficialEvent]) -> Vec<ClaimChange> {
        let mut out = Vec::new();
        for event in events {
            match event {
                OfficialEvent::Enrolled { session, seat, .. } => {
                    out.push(ClaimChange::Acquire(training::seat_claim(*session, *seat)));
                }
                OfficialEvent::Unenrolled { session, .. } => {
                    if let Some(e) = self.enrolments.get(session) {
                        out.push(ClaimChange::Release(e.seat_claim()));
                    }
                }
                OfficialEvent::Erased { .. } => {
                    out.extend(
                        self.enrolments
                            .values()
                            .filter(|e| e.finished.is_none())
                            .map(|e| ClaimChange::Release(e.seat_claim())),
                    );
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use acasa_domain::Claim;
    use acasa_domain::testing::{given, when};

    use super::*;
    use crate::domain::SESSION_SEAT;
    use crate::domain::fixtures::{d, session, stamp};

    fn details() -> OfficialDetails {
        OfficialDetails {
            kind: OfficialKind::LocalOfficial,
            given_name: "Elena".into(),
            family_name: "Ciobanu".into(),
            sex: Some(Sex::Female),
            organisation: "Primăria Cahul".into(),
            role: "Economic development specialist".into(),
            district: "Cahul".into(),
            email: "e.ciobanu@cahul.md".into(),
            phone: String::new(),
        }
    }

    fn register() -> OfficialCommand {
        OfficialCommand::Register { id: Uuid::from_u128(0x0f), details: details(), stamp: stamp() }
    }

    fn enrol(seat: u32) -> OfficialCommand {
        OfficialCommand::Enrol { session: session(Audience::Officials), seat, on: d(2027, 4, 20), stamp: stamp() }
    }

    fn attend(day: u32, present: bool) -> OfficialCommand {
        OfficialCommand::RecordAttendance {
            session: session(Audience::Officials),
            day: d(2027, 5, day),
            present,
            today: d(2027, 5, 7),
            stamp: stamp(),
        }
    }

    fn complete() -> OfficialCommand {
        OfficialCommand::CompleteTraining {
            session: session(Audience::Officials),
            today: d(2027, 5, 7),
            stamp: stamp(),
        }
    }

    fn unenrol() -> OfficialCommand {
        OfficialCommand::Unenrol {
            session: session(Audience::Officials),
            reason: "cannot attend".into(),
            on: d(2027, 5, 1),
            stamp: stamp(),
        }
    }

    fn seat(n: u32) -> Claim {
        Claim::new(SESSION_SEAT, format!("{}#{n}", session(Audience::Officials).id))
    }

    #[test]
    fn an_official_registers_once_and_updates() {
        let none = given::<Official>(&[]);
        let o = when(&none, &register()).state();
        assert_eq!(o.details, Some(details()));
        assert_eq!(when(&o, &register()).refused(), OfficialError::AlreadyExists);
        assert_eq!(when(&none, &OfficialCommand::Update(details(), stamp())).refused(), OfficialError::NotFound);
        assert_eq!(when(&o, &OfficialCommand::Update(details(), stamp())).events(), [], "unchanged");
        let mut moved = details();
        moved.role = "Mayor's deputy".into();
        assert_eq!(when(&o, &OfficialCommand::Update(moved.clone(), stamp())).state().details, Some(moved));
        assert_eq!(when(&none, &register()).claims(), [], "officials take no claim");
        assert_eq!(OfficialError::AlreadyExists.kind(), RejectionKind::AlreadyExists);
        assert_eq!(OfficialError::NotFound.kind(), RejectionKind::NotFound);
        assert_eq!(OfficialError::NotFound.rule(), None);
    }

    #[test]
    fn an_official_enrols_once_per_session_taking_a_seat() {
        let o = given::<Official>(&[register()]);
        assert_eq!(when(&o, &enrol(4)).claims(), [ClaimChange::Acquire(seat(4))]);
        let enrolled = given::<Official>(&[register(), enrol(4)]);
        assert_eq!(when(&enrolled, &enrol(5)).refused(), OfficialError::AlreadyEnrolled);
        let entrepreneurs = OfficialCommand::Enrol {
            session: session(Audience::Entrepreneurs),
            seat: 1,
            on: d(2027, 4, 20),
            stamp: stamp(),
        };
        assert_eq!(when(&o, &entrepreneurs).refused(), OfficialError::Training(TrainingRule::Audience));
        assert_eq!(when(&o, &enrol(21)).refused(), OfficialError::Training(TrainingRule::SessionFull(20)));
        assert_eq!(OfficialError::AlreadyEnrolled.rule(), Some("ALREADY_ENROLLED"));
        assert_eq!(OfficialError::Training(TrainingRule::SessionFull(20)).rule(), Some("SESSION_FULL"));
        assert_eq!(OfficialError::Training(TrainingRule::Audience).kind(), RejectionKind::FailedPrecondition);
    }

    #[test]
    fn leaving_a_session_frees_the_seat() {
        let enrolled = given::<Official>(&[register(), enrol(4)]);
        assert_eq!(when(&enrolled, &unenrol()).claims(), [ClaimChange::Release(seat(4))]);
        let left = when(&enrolled, &unenrol()).state();
        assert!(left.enrolments.is_empty());
        assert_eq!(when(&left, &unenrol()).refused(), OfficialError::Training(TrainingRule::NotEnrolled));
        assert!(when(&left, &enrol(6)).result().is_ok(), "and may enrol again");
    }

    #[test]
    fn attendance_and_completion_with_a_certificate() {
        let history = [register(), enrol(4), attend(3, true), attend(4, true), attend(5, true), attend(6, true)];
        let o = given::<Official>(&history);
        assert_eq!(when(&o, &attend(6, true)).events(), [], "already recorded");
        assert_eq!(
            when(&o, &complete()).event(),
            OfficialEvent::TrainingCompleted {
                session: session(Audience::Officials).id,
                certificate: "ANTR-2027-03-004".into(),
                attended: 4,
                of: 5,
                stamp: stamp(),
            }
        );
        let done = when(&o, &complete()).state();
        assert_eq!(
            done.enrolments.values().next().and_then(|e| e.finished.clone()),
            Some(Finished::Completed("ANTR-2027-03-004".into()))
        );
        assert_eq!(when(&done, &complete()).refused(), OfficialError::Training(TrainingRule::TrainingFinished));
        assert_eq!(when(&o, &complete()).claims(), [], "the seat stays held");
        // A correction to absent: 3 of 5, not completed.
        let o = given::<Official>(&[&history[..], &[attend(6, false)]].concat());
        let not = when(&o, &complete()).state();
        assert_eq!(not.enrolments.values().next().and_then(|e| e.finished.clone()), Some(Finished::NotCompleted));
        assert!(matches!(
            when(&o, &complete()).event(),
            OfficialEvent::TrainingNotCompleted { attended: 3, of: 5, .. }
        ));
        assert_eq!(
            when(&given::<Official>(&[register()]), &attend(3, true)).refused(),
            OfficialError::Training(TrainingRule::NotEnrolled)
        );
    }

    #[test]
    fn erasure_drops_the_details_frees_unfinished_seats_and_ends_everything() {
        let erase = OfficialCommand::Erase { reason: "request 2027-17".into(), stamp: stamp() };
        let other = SessionFacts { id: Uuid::from_u128(0x5e56), code: "B".into(), ..session(Audience::Officials) };
        let history = vec![
            register(),
            enrol(4),
            OfficialCommand::Enrol { session: other.clone(), seat: 9, on: d(2027, 4, 20), stamp: stamp() },
            OfficialCommand::RecordAttendance {
                session: other.clone(),
                day: d(2027, 5, 3),
                present: true,
                today: d(2027, 5, 7),
                stamp: stamp(),
            },
            OfficialCommand::CompleteTraining { session: other, today: d(2027, 5, 7), stamp: stamp() },
        ];
        let o = given::<Official>(&history);
        assert_eq!(when(&o, &erase).claims(), [ClaimChange::Release(seat(4))], "the finished one's seat stays");
        let erased = when(&o, &erase).state();
        assert!(erased.erased && erased.details.is_none());
        assert_eq!(when(&erased, &erase).events(), [], "erasing twice changes nothing");
        assert_eq!(when(&erased, &enrol(5)).refused(), OfficialError::Erased);
        assert_eq!(when(&erased, &OfficialCommand::Update(details(), stamp())).refused(), OfficialError::Erased);
        assert_eq!(OfficialError::Erased.rule(), Some("OFFICIAL_ERASED"));
    }
}
