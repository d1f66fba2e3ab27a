//! Training: one capability, two audiences. A [`Course`] trains
//! entrepreneurs (applicants to a call) or local officials and SME-support
//! staff; its [`Session`]s have days, a place, a trainer and a capacity.
//!
//! **Enrolment never exceeds capacity: seat claims.** A session of capacity
//! `n` has `n` claim values `session-seat <session>#<seat>`. Enrolling is a
//! command on the *trainee's* aggregate (the application, or the official)
//! whose event takes one seat with expected sequence 0 in the command's
//! atomic batch, exactly like an offer's places in placements: the command
//! tries the seats the read model shows free first, then the others; a
//! seat taken meanwhile refuses the whole batch and the next is tried; none
//! left is `SESSION_FULL`. Chosen over deciding on the session aggregate
//! because the trainee's own rules — the application is eligible and not
//! enrolled elsewhere, the call's training places (`call-training-place`
//! claims, the same way), an official enrolled once per session — are then
//! decided in the same atomic batch as the seat, with the kit as it is; and
//! because concurrent enrolments touch different subjects and only collide
//! on the same seat, where the session's subject would serialise them all.
//! The price: the roster is a read model (the seats' holders), a day's
//! register is one command over the session's trainees (one audience, so
//! one aggregate type: one atomic batch), and the session's schedule comes
//! into each trainee command as [`SessionFacts`], loaded from the session's
//! own log. A session's capacity therefore only grows: the session cannot
//! see which seats are held.
//!
//! **Enrolment, attendance, completion** (the same rules for both kinds of
//! trainee, [`can_enrol`], [`attendance`], [`completion`]): enrolment and
//! unenrolment until the session's first day (included), for the course's
//! audience, not in a cancelled session; attendance recorded per session
//! day, on or after that day, correctable until completion; completion on
//! or after the last day: completed when the days attended are at least the
//! session's threshold (a percentage of its days, from the course unless
//! the session sets its own: 80 % of 5 days is 4), not completed otherwise.
//!
//! **Certificate numbers** are `<session code>-<seat, 3 digits>`
//! (`ANTR-2027-03-017`). Unique by construction: a session's code is a
//! claim (`session-code`), and a seat is held by at most one trainee who
//! completes — a seat is freed only by unenrolling, which is refused once
//! the training is finished. The last `-` splits a number back into code
//! and seat, so two different pairs never make the same number.

use std::collections::BTreeMap;

use acasa_domain::{Aggregate, Claim, ClaimChange, Rejection, RejectionKind};
use chrono::NaiveDate;
use uuid::Uuid;

use super::{Audience, SESSION_CODE, SESSION_SEAT, Stamp};

/// The default completion threshold: 80 % of a session's days.
pub const DEFAULT_THRESHOLD_PERCENT: u32 = 80;
/// The largest session.
pub const CAPACITY_MAX: u32 = 999;

// ---------------------------------------------------------------------------
// Enrolment rules, shared by both kinds of trainee.
// ---------------------------------------------------------------------------

/// What a trainee's command knows of a session (from the session's log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionFacts {
    /// The session.
    pub id: Uuid,
    /// Its course's audience.
    pub audience: Audience,
    /// Its code.
    pub code: String,
    /// Its days, in order.
    pub days: Vec<NaiveDate>,
    /// Its capacity.
    pub capacity: u32,
    /// Its completion threshold, percent of its days.
    pub threshold_percent: u32,
    /// Cancelled.
    pub cancelled: bool,
}

impl SessionFacts {
    fn first_day(&self) -> NaiveDate {
        self.days.first().copied().unwrap_or(NaiveDate::MIN)
    }

    fn last_day(&self) -> NaiveDate {
        self.days.last().copied().unwrap_or(NaiveDate::MIN)
    }
}

/// One trainee's enrolment in one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrolment {
    /// The session.
    pub session: Uuid,
    /// The seat held.
    pub seat: u32,
    /// Attendance by day.
    pub attendance: BTreeMap<NaiveDate, bool>,
    /// How it ended, once it did.
    pub finished: Option<Finished>,
}

impl Enrolment {
    /// A new enrolment on `seat`.
    pub fn new(session: Uuid, seat: u32) -> Self {
        Self { session, seat, attendance: BTreeMap::new(), finished: None }
    }

    /// The seat's claim.
    pub fn seat_claim(&self) -> Claim {
        seat_claim(self.session, self.seat)
    }
}

/// How an enrolment ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finished {
    /// Completed, with the certificate's number.
    Completed(String),
    /// Attended too little.
    NotCompleted,
}

/// The outcome of a completion check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// Days attended.
    pub attended: u32,
    /// The session's days.
    pub of: u32,
    /// The certificate's number, if completed.
    pub certificate: Option<String>,
}

/// A training rule a trainee's command broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrainingRule {
    /// The session's course is for the other audience.
    #[error("the session's course is for the other audience")]
    Audience,
    /// The session was cancelled.
    #[error("the session was cancelled")]
    SessionCancelled,
    /// After the session's first day.
    #[error("the session has started: enrolment changes end on its first day")]
    SessionStarted,
    /// No such seat: every seat of the capacity is taken.
    #[error("every one of the session's {0} seats is taken")]
    SessionFull(u32),
    /// Not enrolled in this session.
    #[error("the trainee is not enrolled in this session")]
    NotEnrolled,
    /// The training was completed (or not) already.
    #[error("the trainee's training in this session is finished")]
    TrainingFinished,
    /// Not one of the session's days.
    #[error("not one of the session's days")]
    NotASessionDay,
    /// A day still to come.
    #[error("attendance is recorded on or after the day")]
    DayNotYet,
    /// Completion before the last day.
    #[error("the session's last day has not come")]
    SessionNotOver,
}

impl TrainingRule {
    /// The rule's stable name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Audience => "AUDIENCE",
            Self::SessionCancelled => "SESSION_CANCELLED",
            Self::SessionStarted => "SESSION_STARTED",
            Self::SessionFull(_) => "SESSION_FULL",
            Self::NotEnrolled => "NOT_ENROLLED",
            Self::TrainingFinished => "TRAINING_FINISHED",
            Self::NotASessionDay => "NOT_A_SESSION_DAY",
            Self::DayNotYet => "DAY_NOT_YET",
            Self::SessionNotOver => "SESSION_NOT_OVER",
        }
    }
}

/// A session seat's claim.
pub fn seat_claim(session: Uuid, seat: u32) -> Claim {
    Claim::new(SESSION_SEAT, format!("{session}#{seat}"))
}

/// The certificate number of a session's seat.
pub fn certificate_number(code: &str, seat: u32) -> String {
    format!("{code}-{seat:03}")
}

/// Whether a trainee of `audience` may take `seat` of `session` on `on`.
pub fn can_enrol(audience: Audience, session: &SessionFacts, seat: u32, on: NaiveDate) -> Result<(), TrainingRule> {
    if session.audience != audience {
        return Err(TrainingRule::Audience);
    }
    if session.cancelled {
        return Err(TrainingRule::SessionCancelled);
    }
    if on > session.first_day() {
        return Err(TrainingRule::SessionStarted);
    }
    if seat == 0 || seat > session.capacity {
        return Err(TrainingRule::SessionFull(session.capacity));
    }
    Ok(())
}

fn enrolled<'a>(enrolment: Option<&'a Enrolment>, session: &SessionFacts) -> Result<&'a Enrolment, TrainingRule> {
    let e = enrolment.filter(|e| e.session == session.id).ok_or(TrainingRule::NotEnrolled)?;
    if e.finished.is_some() {
        return Err(TrainingRule::TrainingFinished);
    }
    Ok(e)
}

/// Whether the trainee may leave `session` on `on` (until its first day, or
/// any time once it is cancelled).
pub fn can_unenrol(enrolment: Option<&Enrolment>, session: &SessionFacts, on: NaiveDate) -> Result<(), TrainingRule> {
    enrolled(enrolment, session)?;
    if !session.cancelled && on > session.first_day() {
        return Err(TrainingRule::SessionStarted);
    }
    Ok(())
}

/// Whether `present` on `day` may be recorded on `today`: `Ok(false)` when
/// it is recorded so already.
pub fn attendance(
    enrolment: Option<&Enrolment>,
    session: &SessionFacts,
    day: NaiveDate,
    present: bool,
    today: NaiveDate,
) -> Result<bool, TrainingRule> {
    let e = enrolled(enrolment, session)?;
    if session.cancelled {
        return Err(TrainingRule::SessionCancelled);
    }
    if !session.days.contains(&day) {
        return Err(TrainingRule::NotASessionDay);
    }
    if day > today {
        return Err(TrainingRule::DayNotYet);
    }
    Ok(e.attendance.get(&day) != Some(&present))
}

/// The trainee's completion of `session` on `today`.
pub fn completion(
    enrolment: Option<&Enrolment>,
    session: &SessionFacts,
    today: NaiveDate,
) -> Result<Completion, TrainingRule> {
    let e = enrolled(enrolment, session)?;
    if session.cancelled {
        return Err(TrainingRule::SessionCancelled);
    }
    if today < session.last_day() {
        return Err(TrainingRule::SessionNotOver);
    }
    let attended = session.days.iter().filter(|d| e.attendance.get(d) == Some(&true)).count();
    let attended = u32::try_from(attended).unwrap_or(u32::MAX);
    let of = u32::try_from(session.days.len()).unwrap_or(u32::MAX);
    let completed = u64::from(attended) * 100 >= u64::from(session.threshold_percent) * u64::from(of);
    Ok(Completion { attended, of, certificate: completed.then(|| certificate_number(&session.code, e.seat)) })
}

// ---------------------------------------------------------------------------
// Course.
// ---------------------------------------------------------------------------

/// A course's details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CourseDetails {
    /// Title.
    pub title: String,
    /// Topics.
    pub topics: Vec<String>,
    /// Language taught in (BCP 47).
    pub language: String,
    /// Hours in all.
    pub hours: u32,
    /// The completion threshold, percent of a session's days (1 to 100).
    pub threshold_percent: u32,
}

/// A new course.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCourse {
    /// Id.
    pub id: Uuid,
    /// Whom it trains (fixed).
    pub audience: Audience,
    /// Details.
    pub details: CourseDetails,
}

/// A course's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Course {
    /// Id, once created.
    pub id: Option<Uuid>,
    /// Audience.
    pub audience: Option<Audience>,
    /// Details.
    pub details: Option<CourseDetails>,
    /// Retired: no new sessions.
    pub retired: bool,
}

/// What can be asked of a course.
#[derive(Clone, Debug, PartialEq)]
pub enum CourseCommand {
    /// Create it.
    Create(NewCourse, Stamp),
    /// Replace its details.
    Update(CourseDetails, Stamp),
    /// Schedule no more sessions of it.
    Retire {
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
}

/// What happened to a course.
#[derive(Clone, Debug, PartialEq)]
pub enum CourseEvent {
    /// Created.
    Created(NewCourse, Stamp),
    /// Details replaced.
    Updated(CourseDetails, Stamp),
    /// Retired.
    Retired {
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
}

/// Why a course refused a command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CourseError {
    /// Created twice.
    #[error("the course already exists")]
    AlreadyExists,
    /// Not created.
    #[error("no such course")]
    NotFound,
    /// A threshold of 0 or over 100.
    #[error("must be 1 to 100")]
    Threshold,
    /// Retired.
    #[error("the course is retired")]
    Retired,
}

impl Rejection for CourseError {
    fn kind(&self) -> RejectionKind {
        match self {
            Self::AlreadyExists => RejectionKind::AlreadyExists,
            Self::NotFound => RejectionKind::NotFound,
            Self::Threshold => RejectionKind::InvalidArgument,
            Self::Retired => RejectionKind::FailedPrecondition,
        }
    }

    fn field(&self) -> Option<&'static str> {
        matches!(self, Self::Threshold).then_some("details.completion_threshold_percent")
    }

    fn rule(&self) -> Option<&'static str> {
        matches!(self, Self::Retired).then_some("COURSE_RETIRED")
    }
}

fn check_threshold(percent: u32) -> Result<(), CourseError> {
    if (1..=100).contains(&percent) { Ok(()) } else { Err(CourseError::Threshold) }
}

impl Aggregate for Course {
    type Command = CourseCommand;
    type Event = CourseEvent;
    type Error = CourseError;
    const KIND: &'static str = "course";

    fn decide(&self, command: &CourseCommand) -> Result<Vec<CourseEvent>, CourseError> {
        if let CourseCommand::Create(new, stamp) = command {
            if self.exists() {
                return Err(CourseError::AlreadyExists);
            }
            check_threshold(new.details.threshold_percent)?;
            return Ok(vec![CourseEvent::Created(new.clone(), stamp.clone())]);
        }
        if !self.exists() {
            return Err(CourseError::NotFound);
        }
        Ok(match command {
            CourseCommand::Create(..) => Vec::new(),
            CourseCommand::Retire { .. } if self.retired => Vec::new(),
            CourseCommand::Retire { reason, stamp } => {
                vec![CourseEvent::Retired { reason: reason.clone(), stamp: stamp.clone() }]
            }
            CourseCommand::Update(..) if self.retired => return Err(CourseError::Retired),
            CourseCommand::Update(details, _) if self.details.as_ref() == Some(details) => Vec::new(),
            CourseCommand::Update(details, stamp) => {
                check_threshold(details.threshold_percent)?;
                vec![CourseEvent::Updated(details.clone(), stamp.clone())]
            }
        })
    }

    fn evolve(&mut self, event: &CourseEvent) {
        match event {
            CourseEvent::Created(new, _) => {
                self.id = Some(new.id);
                self.audience = Some(new.audience);
                self.details = Some(new.details.clone());
            }
            CourseEvent::Updated(details, _) => self.details = Some(details.clone()),
            CourseEvent::Retired { .. } => self.retired = true,
        }
    }

    fn exists(&self) -> bool {
        self.id.is_some()
    }
}

// ---------------------------------------------------------------------------
// Session.
// ---------------------------------------------------------------------------

/// When, where and by whom a session is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDetails {
    /// Its days, in order, distinct.
    pub days: Vec<NaiveDate>,
    /// The venue.
    pub venue: String,
    /// The venue's district.
    pub district: String,
    /// The trainer (name, and organisation if any).
    pub trainer: String,
}

/// A new session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSession {
    /// Id.
    pub id: Uuid,
    /// The course.
    pub course: Uuid,
    /// Its code (upper case; unique: certificate numbers start with it).
    pub code: String,
    /// Seats (1 to 999).
    pub capacity: u32,
    /// Its own completion threshold (else the course's).
    pub threshold_percent: Option<u32>,
    /// Days, place, trainer.
    pub details: SessionDetails,
}

/// What scheduling knows of the course (from its log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CourseFacts {
    /// Its audience.
    pub audience: Audience,
    /// Its threshold.
    pub threshold_percent: u32,
    /// Retired.
    pub retired: bool,
}

/// A session's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Session {
    /// Id, once scheduled.
    pub id: Option<Uuid>,
    /// The course.
    pub course: Option<Uuid>,
    /// Audience.
    pub audience: Option<Audience>,
    /// Code.
    pub code: String,
    /// Seats.
    pub capacity: u32,
    /// Completion threshold, percent.
    pub threshold_percent: u32,
    /// Days, place, trainer.
    pub details: Option<SessionDetails>,
    /// Cancelled.
    pub cancelled: bool,
}

/// What can be asked of a session.
#[derive(Clone, Debug, PartialEq)]
pub enum SessionCommand {
    /// Schedule it.
    Schedule(Box<NewSession>, CourseFacts, Stamp),
    /// Change days, place or trainer (until the first day).
    Reschedule {
        /// The new details.
        details: SessionDetails,
        /// Today.
        today: NaiveDate,
        /// Who, when.
        stamp: Stamp,
    },
    /// Grow its capacity.
    ChangeCapacity {
        /// The new capacity.
        capacity: u32,
        /// Who, when.
        stamp: Stamp,
    },
    /// Cancel it.
    Cancel {
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
}

/// What happened to a session.
#[derive(Clone, Debug, PartialEq)]
pub enum SessionEvent {
    /// Scheduled.
    Scheduled {
        /// The session.
        session: Box<NewSession>,
        /// Its course's audience.
        audience: Audience,
        /// Its completion threshold (its own, or the course's).
        threshold_percent: u32,
        /// Who, when.
        stamp: Stamp,
    },
    /// Days, place or trainer changed.
    Rescheduled(SessionDetails, Stamp),
    /// Capacity grown.
    CapacityChanged(u32, Stamp),
    /// Cancelled.
    Cancelled {
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
}

/// Why a session refused a command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    /// Scheduled twice.
    #[error("the session already exists")]
    AlreadyExists,
    /// Not scheduled.
    #[error("no such session")]
    NotFound,
    /// No days, or days out of order or repeated.
    #[error("must list at least one day, in order, none twice")]
    Days,
    /// A capacity of 0 or over 999.
    #[error("must be 1 to 999")]
    Capacity,
    /// A threshold of 0 or over 100.
    #[error("must be 1 to 100")]
    Threshold,
    /// The course is retired.
    #[error("the course is retired")]
    CourseRetired,
    /// After the first day.
    #[error("the session has started")]
    Started,
    /// Cancelled.
    #[error("the session was cancelled")]
    Cancelled,
    /// A smaller capacity.
    #[error("a session's capacity only grows (it is {0}): seats may be taken")]
    CapacityShrinks(u32),
}

impl Rejection for SessionError {
    fn kind(&self) -> RejectionKind {
        match self {
            Self::AlreadyExists => RejectionKind::AlreadyExists,
            Self::NotFound => RejectionKind::NotFound,
            Self::Days | Self::Capacity | Self::Threshold => RejectionKind::InvalidArgument,
            _ => RejectionKind::FailedPrecondition,
        }
    }

    fn field(&self) -> Option<&'static str> {
        Some(match self {
            Self::Days => "details.days",
            Self::Capacity => "capacity",
            Self::Threshold => "completion_threshold_percent",
            _ => return None,
        })
    }

    fn rule(&self) -> Option<&'static str> {
        Some(match self {
            Self::CourseRetired => "COURSE_RETIRED",
            Self::Started => "SESSION_STARTED",
            Self::Cancelled => "SESSION_CANCELLED",
            Self::CapacityShrinks(_) => "CAPACITY_SHRINKS",
            _ => return None,
        })
    }
}

fn check_days(days: &[NaiveDate]) -> Result<(), SessionError> {
    if days.is_empty() || days.windows(2).any(|w| w[0] >= w[1]) { Err(SessionError::Days) } else { Ok(()) }
}

fn check_capacity(capacity: u32) -> Result<(), SessionError> {
    if (1..=CAPACITY_MAX).contains(&capacity) { Ok(()) } else { Err(SessionError::Capacity) }
}

impl Session {
    /// What a trainee's command needs to know of the session.
    pub fn facts(&self) -> Option<SessionFacts> {
        Some(SessionFacts {
            id: self.id?,
            audience: self.audience?,
            code: self.code.clone(),
            days: self.details.as_ref()?.days.clone(),
            capacity: self.capacity,
            threshold_percent: self.threshold_percent,
            cancelled: self.cancelled,
        })
    }

    fn started(&self, today: NaiveDate) -> bool {
        self.details.as_ref().and_then(|d| d.days.first()).is_some_and(|first| today > *first)
    }
}

impl Aggregate for Session {
    type Command = SessionCommand;
    type Event = SessionEvent;
    type Error = SessionError;
    const KIND: &'static str = "session";

    fn decide(&self, command: &SessionCommand) -> Result<Vec<SessionEvent>, SessionError> {
        use SessionCommand as C;
        use SessionEvent as E;
        if let C::Schedule(new, course, stamp) = command {
            if self.exists() {
                return Err(SessionError::AlreadyExists);
            }
            if course.retired {
                return Err(SessionError::CourseRetired);
            }
            check_days(&new.details.days)?;
            check_capacity(new.capacity)?;
            let threshold_percent = new.threshold_percent.unwrap_or(course.threshold_percent);
            if !(1..=100).contains(&threshold_percent) {
                return Err(SessionError::Threshold);
            }
            return Ok(vec![E::Scheduled {
                session: new.clone(),
                audience: course.audience,
                threshold_percent,
                stamp: stamp.clone(),
            }]);
        }
        if !self.exists() {
            return Err(SessionError::NotFound);
        }
        Ok(match command {
            C::Schedule(..) => Vec::new(),
            C::Cancel { .. } if self.cancelled => Vec::new(),
            C::Cancel { reason, stamp } => vec![E::Cancelled { reason: reason.clone(), stamp: stamp.clone() }],
            _ if self.cancelled => return Err(SessionError::Cancelled),
            C::Reschedule { details, today, stamp } => {
                if self.started(*today) {
                    return Err(SessionError::Started);
                }
                check_days(&details.days)?;
                if self.details.as_ref() == Some(details) {
                    return Ok(Vec::new());
                }
                vec![E::Rescheduled(details.clone(), stamp.clone())]
            }
            C::ChangeCapacity { capacity, stamp } => {
                check_capacity(*capacity)?;
                if *capacity < self.capacity {
                    return Err(SessionError::CapacityShrinks(self.capacity));
                }
                if *capacity == self.capacity {
                    return Ok(Vec::new());
                }
                vec![E::CapacityChanged(*capacity, stamp.clone())]
            }
        })
    }

    fn evolve(&mut self, event: &SessionEvent) {
        match event {
            SessionEvent::Scheduled { session, audience, threshold_percent, .. } => {
                self.id = Some(session.id);
                self.course = Some(session.course);
                self.audience = Some(*audience);
                self.code.clone_from(&session.code);
                self.capacity = session.capacity;
                self.threshold_percent = *threshold_percent;
                self.details = Some(session.details.clone());
            }
            SessionEvent::Rescheduled(details, _) => self.details = Some(details.clone()),
            SessionEvent::CapacityChanged(capacity, _) => self.capacity = *capacity,
            SessionEvent::Cancelled { .. } => self.cancelled = true,
        }
    }

    fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// A session's code is unique.
    fn claims(&self, events: &[SessionEvent]) -> Vec<ClaimChange> {
        events
            .iter()
            .filter_map(|e| match e {
                SessionEvent::Scheduled { session, .. } => {
                    Some(ClaimChange::Acquire(Claim::new(SESSION_CODE, session.code.clone())))
                }
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
