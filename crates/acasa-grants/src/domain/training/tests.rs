//! Given/when/then for courses, sessions and the enrolment rules.

use acasa_domain::testing::{given, when};

use super::*;
use crate::domain::fixtures::{d, session, stamp};

fn enrolment(seat: u32) -> Enrolment {
    Enrolment::new(session(Audience::Officials).id, seat)
}

fn present(e: &mut Enrolment, days: &[u32]) {
    for day in days {
        e.attendance.insert(d(2027, 5, *day), true);
    }
}

// --- the shared enrolment rules ---

#[test]
fn enrolment_is_for_the_courses_audience_until_the_first_day_within_the_capacity() {
    let s = session(Audience::Officials);
    let before = d(2027, 4, 20);
    assert_eq!(can_enrol(Audience::Officials, &s, 1, before), Ok(()));
    assert_eq!(can_enrol(Audience::Officials, &s, 20, d(2027, 5, 3)), Ok(()), "the last seat, on the first day");
    assert_eq!(can_enrol(Audience::Entrepreneurs, &s, 1, before), Err(TrainingRule::Audience));
    assert_eq!(can_enrol(Audience::Officials, &s, 1, d(2027, 5, 4)), Err(TrainingRule::SessionStarted));
    assert_eq!(can_enrol(Audience::Officials, &s, 21, before), Err(TrainingRule::SessionFull(20)));
    assert_eq!(can_enrol(Audience::Officials, &s, 0, before), Err(TrainingRule::SessionFull(20)));
    let mut cancelled = s.clone();
    cancelled.cancelled = true;
    assert_eq!(can_enrol(Audience::Officials, &cancelled, 1, before), Err(TrainingRule::SessionCancelled));
}

#[test]
fn unenrolment_until_the_first_day_or_once_cancelled() {
    let s = session(Audience::Officials);
    let e = enrolment(3);
    assert_eq!(can_unenrol(Some(&e), &s, d(2027, 5, 3)), Ok(()));
    assert_eq!(can_unenrol(Some(&e), &s, d(2027, 5, 4)), Err(TrainingRule::SessionStarted));
    let mut cancelled = s.clone();
    cancelled.cancelled = true;
    assert_eq!(can_unenrol(Some(&e), &cancelled, d(2027, 5, 6)), Ok(()));
    assert_eq!(can_unenrol(None, &s, d(2027, 5, 1)), Err(TrainingRule::NotEnrolled));
    let mut other = s.clone();
    other.id = Uuid::from_u128(77);
    assert_eq!(can_unenrol(Some(&e), &other, d(2027, 5, 1)), Err(TrainingRule::NotEnrolled));
    let mut done = enrolment(3);
    done.finished = Some(Finished::NotCompleted);
    assert_eq!(can_unenrol(Some(&done), &cancelled, d(2027, 5, 1)), Err(TrainingRule::TrainingFinished));
}

#[test]
fn attendance_is_per_session_day_on_or_after_it() {
    let s = session(Audience::Officials);
    let mut e = enrolment(3);
    assert_eq!(attendance(Some(&e), &s, d(2027, 5, 3), true, d(2027, 5, 3)), Ok(true), "on the day");
    assert_eq!(attendance(Some(&e), &s, d(2027, 5, 3), false, d(2027, 6, 1)), Ok(true), "later");
    assert_eq!(attendance(Some(&e), &s, d(2027, 5, 4), true, d(2027, 5, 3)), Err(TrainingRule::DayNotYet));
    assert_eq!(attendance(Some(&e), &s, d(2027, 5, 8), true, d(2027, 6, 1)), Err(TrainingRule::NotASessionDay));
    present(&mut e, &[3]);
    assert_eq!(attendance(Some(&e), &s, d(2027, 5, 3), true, d(2027, 5, 3)), Ok(false), "already so");
    assert_eq!(attendance(Some(&e), &s, d(2027, 5, 3), false, d(2027, 5, 3)), Ok(true), "a correction");
    assert_eq!(attendance(None, &s, d(2027, 5, 3), true, d(2027, 5, 3)), Err(TrainingRule::NotEnrolled));
    let mut cancelled = s.clone();
    cancelled.cancelled = true;
    assert_eq!(
        attendance(Some(&e), &cancelled, d(2027, 5, 3), true, d(2027, 5, 3)),
        Err(TrainingRule::SessionCancelled)
    );
    e.finished = Some(Finished::Completed("X-003".into()));
    assert_eq!(attendance(Some(&e), &s, d(2027, 5, 3), false, d(2027, 5, 3)), Err(TrainingRule::TrainingFinished));
}

#[test]
fn completion_follows_the_threshold_on_or_after_the_last_day() {
    let s = session(Audience::Officials);
    let mut e = enrolment(17);
    present(&mut e, &[3, 4, 5, 6]);
    // 4 of 5 days = 80 %: completed, on the last day.
    assert_eq!(
        completion(Some(&e), &s, d(2027, 5, 7)),
        Ok(Completion { attended: 4, of: 5, certificate: Some("ANTR-2027-03-017".into()) })
    );
    assert_eq!(completion(Some(&e), &s, d(2027, 5, 6)), Err(TrainingRule::SessionNotOver));
    // 3 of 5 = 60 %: not completed.
    e.attendance.insert(d(2027, 5, 6), false);
    assert_eq!(completion(Some(&e), &s, d(2027, 6, 1)), Ok(Completion { attended: 3, of: 5, certificate: None }));
    // Attendance on a day no longer in the session does not count.
    e.attendance.insert(d(2027, 5, 10), true);
    assert_eq!(completion(Some(&e), &s, d(2027, 6, 1)).map(|c| c.attended), Ok(3));
    // 60 % threshold: 3 of 5 is enough.
    let mut lenient = s.clone();
    lenient.threshold_percent = 60;
    assert!(completion(Some(&e), &lenient, d(2027, 6, 1)).unwrap().certificate.is_some());
    lenient.threshold_percent = 61;
    assert!(completion(Some(&e), &lenient, d(2027, 6, 1)).unwrap().certificate.is_none());
    let mut cancelled = s.clone();
    cancelled.cancelled = true;
    assert_eq!(completion(Some(&e), &cancelled, d(2027, 6, 1)), Err(TrainingRule::SessionCancelled));
    assert_eq!(completion(None, &s, d(2027, 6, 1)), Err(TrainingRule::NotEnrolled));
    e.finished = Some(Finished::NotCompleted);
    assert_eq!(completion(Some(&e), &s, d(2027, 6, 1)), Err(TrainingRule::TrainingFinished));
}

#[test]
fn certificate_numbers_and_seat_claims() {
    assert_eq!(certificate_number("ANTR-2027-03", 7), "ANTR-2027-03-007");
    assert_eq!(certificate_number("X", 999), "X-999");
    let session = Uuid::from_u128(5);
    assert_eq!(seat_claim(session, 4), Claim::new(SESSION_SEAT, format!("{session}#4")));
    assert_eq!(Enrolment::new(session, 4).seat_claim(), seat_claim(session, 4));
}

#[test]
fn training_rules_have_stable_names() {
    let names: Vec<&str> = [
        TrainingRule::Audience,
        TrainingRule::SessionCancelled,
        TrainingRule::SessionStarted,
        TrainingRule::SessionFull(1),
        TrainingRule::NotEnrolled,
        TrainingRule::TrainingFinished,
        TrainingRule::NotASessionDay,
        TrainingRule::DayNotYet,
        TrainingRule::SessionNotOver,
    ]
    .iter()
    .map(|r| r.name())
    .collect();
    assert_eq!(
        names,
        [
            "AUDIENCE",
            "SESSION_CANCELLED",
            "SESSION_STARTED",
            "SESSION_FULL",
            "NOT_ENROLLED",
            "TRAINING_FINISHED",
            "NOT_A_SESSION_DAY",
            "DAY_NOT_YET",
            "SESSION_NOT_OVER"
        ]
    );
    assert!(TrainingRule::SessionFull(20).to_string().contains("20 seats"));
}

// --- courses ---

fn course_details() -> CourseDetails {
    CourseDetails {
        title: "Start your business".into(),
        topics: vec!["business planning".into(), "accounting".into()],
        language: "ro".into(),
        hours: 40,
        threshold_percent: 80,
    }
}

fn create_course() -> CourseCommand {
    CourseCommand::Create(
        NewCourse { id: Uuid::from_u128(0xc0), audience: Audience::Entrepreneurs, details: course_details() },
        stamp(),
    )
}

#[test]
fn a_course_is_created_once_with_a_threshold() {
    let course = when(&given::<Course>(&[]), &create_course()).state();
    assert_eq!((course.audience, course.retired), (Some(Audience::Entrepreneurs), false));
    assert_eq!(when(&course, &create_course()).refused(), CourseError::AlreadyExists);
    let mut bad = course_details();
    bad.threshold_percent = 0;
    let create = |details: CourseDetails| {
        CourseCommand::Create(NewCourse { id: Uuid::from_u128(1), audience: Audience::Officials, details }, stamp())
    };
    assert_eq!(when(&given::<Course>(&[]), &create(bad.clone())).refused(), CourseError::Threshold);
    bad.threshold_percent = 101;
    assert_eq!(when(&given::<Course>(&[]), &create(bad.clone())).refused(), CourseError::Threshold);
    bad.threshold_percent = 100;
    assert!(when(&given::<Course>(&[]), &create(bad)).result().is_ok());
    assert_eq!(
        when(&given::<Course>(&[]), &CourseCommand::Update(course_details(), stamp())).refused(),
        CourseError::NotFound
    );
    assert_eq!(CourseError::Threshold.field(), Some("details.completion_threshold_percent"));
    assert_eq!(CourseError::Threshold.kind(), RejectionKind::InvalidArgument);
    assert_eq!(CourseError::AlreadyExists.kind(), RejectionKind::AlreadyExists);
    assert_eq!(CourseError::NotFound.kind(), RejectionKind::NotFound);
    assert_eq!((CourseError::NotFound.field(), CourseError::NotFound.rule()), (None, None));
}

#[test]
fn a_course_is_updated_until_retired() {
    let course = given::<Course>(&[create_course()]);
    assert_eq!(when(&course, &CourseCommand::Update(course_details(), stamp())).events(), [], "unchanged");
    let mut longer = course_details();
    longer.hours = 48;
    let updated = when(&course, &CourseCommand::Update(longer.clone(), stamp())).state();
    assert_eq!(updated.details.map(|d| d.hours), Some(48));
    let mut bad = longer.clone();
    bad.threshold_percent = 0;
    assert_eq!(when(&course, &CourseCommand::Update(bad, stamp())).refused(), CourseError::Threshold);
    let retire = CourseCommand::Retire { reason: "replaced".into(), stamp: stamp() };
    let retired = when(&course, &retire).state();
    assert!(retired.retired);
    assert_eq!(when(&retired, &retire).events(), [], "retiring twice changes nothing");
    assert_eq!(when(&retired, &CourseCommand::Update(longer, stamp())).refused(), CourseError::Retired);
    assert_eq!(
        (CourseError::Retired.kind(), CourseError::Retired.rule()),
        (RejectionKind::FailedPrecondition, Some("COURSE_RETIRED"))
    );
}

// --- sessions ---

fn details() -> SessionDetails {
    SessionDetails {
        days: (3..=7).map(|day| d(2027, 5, day)).collect(),
        venue: "Casa de Cultură".into(),
        district: "Cahul".into(),
        trainer: "Ana Rusu (ODA)".into(),
    }
}

fn new_session() -> NewSession {
    NewSession {
        id: Uuid::from_u128(0x5e55),
        course: Uuid::from_u128(0xc0),
        code: "ANTR-2027-03".into(),
        capacity: 20,
        threshold_percent: None,
        details: details(),
    }
}

fn course_facts() -> CourseFacts {
    CourseFacts { audience: Audience::Entrepreneurs, threshold_percent: 80, retired: false }
}

fn schedule(new: NewSession) -> SessionCommand {
    SessionCommand::Schedule(Box::new(new), course_facts(), stamp())
}

#[test]
fn a_session_is_scheduled_once_taking_its_code() {
    let none = given::<Session>(&[]);
    assert_eq!(
        when(&none, &schedule(new_session())).claims(),
        [ClaimChange::Acquire(Claim::new(SESSION_CODE, "ANTR-2027-03"))]
    );
    let s = when(&none, &schedule(new_session())).state();
    assert_eq!(
        s.facts(),
        Some(SessionFacts {
            id: Uuid::from_u128(0x5e55),
            audience: Audience::Entrepreneurs,
            code: "ANTR-2027-03".into(),
            days: details().days,
            capacity: 20,
            threshold_percent: 80,
            cancelled: false,
        })
    );
    assert_eq!(when(&s, &schedule(new_session())).refused(), SessionError::AlreadyExists);
    assert_eq!(none.facts(), None);
    let refused = |f: fn(&mut NewSession)| {
        let mut n = new_session();
        f(&mut n);
        when(&given::<Session>(&[]), &schedule(n)).refused()
    };
    assert_eq!(refused(|n| n.details.days.clear()), SessionError::Days);
    assert_eq!(refused(|n| n.details.days.swap(0, 1)), SessionError::Days);
    assert_eq!(refused(|n| n.details.days[1] = n.details.days[0]), SessionError::Days);
    assert_eq!(refused(|n| n.capacity = 0), SessionError::Capacity);
    assert_eq!(refused(|n| n.capacity = 1000), SessionError::Capacity);
    assert_eq!(refused(|n| n.threshold_percent = Some(0)), SessionError::Threshold);
    assert_eq!(refused(|n| n.threshold_percent = Some(101)), SessionError::Threshold);
    let retired = CourseFacts { retired: true, ..course_facts() };
    assert_eq!(
        when(&none, &SessionCommand::Schedule(Box::new(new_session()), retired, stamp())).refused(),
        SessionError::CourseRetired
    );
    // Its own threshold wins over the course's; a one-day session of 999 seats is fine.
    let mut own = new_session();
    own.threshold_percent = Some(100);
    own.capacity = 999;
    own.details.days.truncate(1);
    let s = when(&none, &schedule(own)).state();
    assert_eq!((s.threshold_percent, s.capacity), (100, 999));
    for (e, field) in [
        (SessionError::Days, "details.days"),
        (SessionError::Capacity, "capacity"),
        (SessionError::Threshold, "completion_threshold_percent"),
    ] {
        assert_eq!((e.kind(), e.field(), e.rule()), (RejectionKind::InvalidArgument, Some(field), None));
    }
    assert_eq!(SessionError::AlreadyExists.kind(), RejectionKind::AlreadyExists);
    assert_eq!(SessionError::NotFound.kind(), RejectionKind::NotFound);
    assert_eq!((SessionError::NotFound.field(), SessionError::NotFound.rule()), (None, None));
}

#[test]
fn a_session_is_rescheduled_until_its_first_day() {
    let s = given::<Session>(&[schedule(new_session())]);
    let mut later = details();
    later.days = vec![d(2027, 6, 1), d(2027, 6, 2)];
    let reschedule =
        |details: SessionDetails, today: NaiveDate| SessionCommand::Reschedule { details, today, stamp: stamp() };
    let moved = when(&s, &reschedule(later.clone(), d(2027, 5, 3))).state();
    assert_eq!(moved.facts().map(|f| f.days), Some(later.days.clone()), "on the first day still");
    assert_eq!(when(&s, &reschedule(later.clone(), d(2027, 5, 4))).refused(), SessionError::Started);
    assert_eq!(when(&s, &reschedule(details(), d(2027, 4, 1))).events(), [], "unchanged");
    let mut bad = later.clone();
    bad.days.clear();
    assert_eq!(when(&s, &reschedule(bad, d(2027, 4, 1))).refused(), SessionError::Days);
    assert_eq!(when(&given::<Session>(&[]), &reschedule(later, d(2027, 4, 1))).refused(), SessionError::NotFound);
    assert_eq!(SessionError::Started.rule(), Some("SESSION_STARTED"));
}

#[test]
fn a_sessions_capacity_only_grows() {
    let s = given::<Session>(&[schedule(new_session())]);
    let capacity = |capacity: u32| SessionCommand::ChangeCapacity { capacity, stamp: stamp() };
    assert_eq!(when(&s, &capacity(25)).state().capacity, 25);
    assert_eq!(when(&s, &capacity(20)).events(), []);
    assert_eq!(when(&s, &capacity(19)).refused(), SessionError::CapacityShrinks(20));
    assert_eq!(when(&s, &capacity(1000)).refused(), SessionError::Capacity);
    assert_eq!(
        (SessionError::CapacityShrinks(20).kind(), SessionError::CapacityShrinks(20).rule()),
        (RejectionKind::FailedPrecondition, Some("CAPACITY_SHRINKS"))
    );
}

#[test]
fn a_cancelled_session_changes_no_more() {
    let cancel = SessionCommand::Cancel { reason: "trainer ill".into(), stamp: stamp() };
    let s = given::<Session>(&[schedule(new_session()), cancel.clone()]);
    assert!(s.cancelled && s.facts().is_some_and(|f| f.cancelled));
    assert_eq!(when(&s, &cancel).events(), [], "cancelling twice changes nothing");
    assert_eq!(
        when(&s, &SessionCommand::ChangeCapacity { capacity: 30, stamp: stamp() }).refused(),
        SessionError::Cancelled
    );
    assert_eq!(
        when(&s, &SessionCommand::Reschedule { details: details(), today: d(2027, 4, 1), stamp: stamp() }).refused(),
        SessionError::Cancelled
    );
    assert_eq!(when(&s, &cancel).claims(), []);
    assert_eq!(SessionError::Cancelled.rule(), Some("SESSION_CANCELLED"));
    assert_eq!(SessionError::CourseRetired.rule(), Some("COURSE_RETIRED"));
}
