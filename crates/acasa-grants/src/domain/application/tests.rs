//! Given/when/then for every application rule.

use acasa_domain::testing::{given, when};

use super::*;
use crate::domain::call::{Call, CallCommand, CallError};
use crate::domain::eligibility::Standing;
use crate::domain::fixtures::{by, d, eur, new_call, person, session, stamp};
use crate::domain::{SESSION_SEAT, Sex};

fn id() -> Uuid {
    Uuid::from_u128(0xa9)
}

fn person_id() -> Uuid {
    Uuid::from_u128(0x9e)
}

fn call_id() -> Uuid {
    new_call().id
}

fn apply_with(person: PersonFacts, applied_on: NaiveDate, closed: bool) -> ApplicationCommand {
    ApplicationCommand::Apply {
        application: NewApplication { id: id(), call: call_id(), person: person_id(), applied_on },
        call: CallFacts { terms: Box::new(new_call()), closed },
        person,
        stamp: stamp(),
    }
}

fn apply() -> ApplicationCommand {
    apply_with(person(), d(2027, 3, 1), false)
}

fn entrepreneurs() -> SessionFacts {
    session(Audience::Entrepreneurs)
}

fn second_session() -> SessionFacts {
    SessionFacts {
        id: Uuid::from_u128(0x5e56),
        code: "ANTR-2027-04".into(),
        days: (7..=11).map(|day| d(2027, 6, day)).collect(),
        ..entrepreneurs()
    }
}

fn enrol_in(session: SessionFacts, seat: u32, place: u32) -> ApplicationCommand {
    ApplicationCommand::Enrol { session, seat, place, on: d(2027, 4, 20), stamp: stamp() }
}

fn enrol(seat: u32, place: u32) -> ApplicationCommand {
    enrol_in(entrepreneurs(), seat, place)
}

fn attend_in(session: SessionFacts, day: NaiveDate, present: bool) -> ApplicationCommand {
    ApplicationCommand::RecordAttendance { session, day, present, today: d(2027, 7, 1), stamp: stamp() }
}

fn attend(day: u32) -> ApplicationCommand {
    attend_in(entrepreneurs(), d(2027, 5, day), true)
}

fn complete_in(session: SessionFacts) -> ApplicationCommand {
    ApplicationCommand::CompleteTraining { session, today: d(2027, 7, 1), stamp: stamp() }
}

fn seat(session: &SessionFacts, n: u32) -> Claim {
    Claim::new(SESSION_SEAT, format!("{}#{n}", session.id))
}

fn place(n: u32) -> Claim {
    Claim::new(CALL_TRAINING_PLACE, format!("{}#{n}", call_id()))
}

fn applicant() -> Claim {
    Claim::new(CALL_APPLICANT, format!("{}#{}", call_id(), person_id()))
}

fn grantee() -> Claim {
    Claim::new(GRANTEE, person_id().to_string())
}

fn with(mut history: Vec<ApplicationCommand>, more: &[ApplicationCommand]) -> Vec<ApplicationCommand> {
    history.extend_from_slice(more);
    history
}

/// Seat 3, place 1; four of five days: completed.
fn trained() -> Vec<ApplicationCommand> {
    vec![apply(), enrol(3, 1), attend(3), attend(4), attend(5), attend(6), complete_in(entrepreneurs())]
}

/// Seat 3, place 1; one day of five: not completed.
fn not_trained() -> Vec<ApplicationCommand> {
    vec![apply(), enrol(3, 1), attend(3), complete_in(entrepreneurs())]
}

/// 1,800.00 requested; items worth 1,900.00.
fn plan() -> Plan {
    Plan {
        sector: "A".into(),
        summary: "A greenhouse for early vegetables".into(),
        requested: eur(180_000),
        items: vec![
            PlanItem { description: "Greenhouse 8×30 m".into(), quantity: 1, unit_price: eur(150_000) },
            PlanItem { description: "Drip irrigation kit".into(), quantity: 2, unit_price: eur(20_000) },
        ],
    }
}

fn submit(plan: Plan) -> ApplicationCommand {
    ApplicationCommand::SubmitPlan(plan, stamp())
}

fn submitted() -> Vec<ApplicationCommand> {
    with(trained(), &[submit(plan())])
}

fn score(evaluator: &str, viability: u32, jobs: u32) -> ApplicationCommand {
    ApplicationCommand::Score {
        scores: vec![("viability".into(), viability), ("jobs".into(), jobs)],
        comment: String::new(),
        stamp: by(evaluator),
    }
}

fn conflict(evaluator: &str) -> ApplicationCommand {
    ApplicationCommand::DeclareConflict { reason: "the applicant is my cousin".into(), stamp: by(evaluator) }
}

/// ev-1: (3·8 + 6)/4 = 7.50; ev-2: (3·7 + 7)/4 = 7.00; final 7.25.
fn scored() -> Vec<ApplicationCommand> {
    with(submitted(), &[score("ev-1", 8, 6), score("ev-2", 7, 7)])
}

fn approve(minor: i64) -> ApplicationCommand {
    ApplicationCommand::Approve {
        amount: eur(minor),
        reference: "CM-2027-05 item 4".into(),
        note: String::new(),
        stamp: by("admin-1"),
    }
}

fn reject() -> ApplicationCommand {
    ApplicationCommand::Reject {
        reasons: "the market analysis is missing".into(),
        reference: "CM-2027-05 item 5".into(),
        stamp: by("admin-1"),
    }
}

/// Approved for 1,800.00.
fn approved() -> Vec<ApplicationCommand> {
    with(scored(), &[approve(180_000)])
}

fn item_id(n: u128) -> Uuid {
    Uuid::from_u128(0x1700 + n)
}

fn item(n: u128, quantity: u32, unit: i64) -> Item {
    Item {
        id: item_id(n),
        description: format!("item {n}"),
        supplier: Supplier { name: "Agro-Tehnica SRL".into(), idno: Some("1003600012345".into()) },
        quantity,
        unit_price: eur(unit),
    }
}

fn order(n: u128, quantity: u32, unit: i64) -> ApplicationCommand {
    ApplicationCommand::Order(item(n, quantity, unit), stamp())
}

fn deliver(n: u128) -> ApplicationCommand {
    ApplicationCommand::RecordDelivery {
        item: item_id(n),
        on: d(2027, 9, 1),
        reference: format!("DN-{n}"),
        stamp: stamp(),
    }
}

fn pay(n: u128) -> ApplicationCommand {
    ApplicationCommand::RecordPayment {
        item: item_id(n),
        on: d(2027, 9, 10),
        reference: format!("OP-{n}"),
        stamp: by("finance-1"),
    }
}

fn cancel_order(n: u128) -> ApplicationCommand {
    ApplicationCommand::CancelOrder { item: item_id(n), reason: "supplier out of stock".into(), stamp: stamp() }
}

fn hand_over(reference: &str, items: &[u128]) -> ApplicationCommand {
    ApplicationCommand::HandOver(
        Handover {
            reference: reference.into(),
            items: items.iter().map(|n| item_id(*n)).collect(),
            on: d(2027, 9, 15),
            location: "Cahul, str. Păcii 3".into(),
            note: String::new(),
        },
        stamp(),
    )
}

fn visit() -> ApplicationCommand {
    ApplicationCommand::RecordVisit(
        Visit {
            on: d(2028, 3, 1),
            officer: "M. Popa".into(),
            operating: true,
            jobs_created: 2,
            findings: "first harvest sold".into(),
        },
        stamp(),
    )
}

fn close() -> ApplicationCommand {
    ApplicationCommand::Close { note: String::new(), releasing: None, stamp: stamp() }
}

fn cancel_grant() -> ApplicationCommand {
    ApplicationCommand::CancelGrant { reason: "the applicant emigrated".into(), stamp: stamp() }
}

fn withdraw() -> ApplicationCommand {
    ApplicationCommand::Withdraw { reason: "found a job".into(), stamp: stamp() }
}

/// Items 1 (1,500.00) and 2 (2 × 150.00) ordered, delivered, paid, handed over.
fn handed_over() -> Vec<ApplicationCommand> {
    with(
        approved(),
        &[
            order(1, 1, 150_000),
            order(2, 2, 15_000),
            deliver(1),
            deliver(2),
            pay(1),
            pay(2),
            hand_over("HO-1", &[1, 2]),
        ],
    )
}

// --- applying ---

#[test]
fn an_application_records_its_eligibility_and_takes_the_persons_place_in_the_call() {
    let none = given::<Application>(&[]);
    assert_eq!(
        when(&none, &apply()).events(),
        [
            ApplicationEvent::Applied {
                application: NewApplication {
                    id: id(),
                    call: call_id(),
                    person: person_id(),
                    applied_on: d(2027, 3, 1)
                },
                terms: GrantTerms::of(&new_call()),
                stamp: stamp(),
            },
            ApplicationEvent::EligibilityAssessed { failed: None, on: d(2027, 3, 1), stamp: stamp() },
        ]
    );
    assert_eq!(when(&none, &apply()).claims(), [ClaimChange::Acquire(applicant())]);
    let a = when(&none, &apply()).state();
    assert_eq!(
        (a.status, a.call, a.person, a.ineligible),
        (Status::Eligible, Some(call_id()), Some(person_id()), None)
    );
    assert_eq!(when(&a, &apply()).refused(), ApplicationError::AlreadyExists);
    assert_eq!(when(&none, &withdraw()).refused(), ApplicationError::NotFound);
    // The call comes from the facts, whatever the command said.
    let mut other = apply();
    if let ApplicationCommand::Apply { application, .. } = &mut other {
        application.call = Uuid::from_u128(1);
    }
    assert_eq!(when(&none, &other).state().call, Some(call_id()));
}

#[test]
fn an_application_is_made_while_the_call_takes_applications() {
    let none = given::<Application>(&[]);
    assert!(when(&none, &apply_with(person(), d(2027, 2, 1), false)).result().is_ok(), "the first day");
    assert!(when(&none, &apply_with(person(), d(2027, 3, 31), false)).result().is_ok(), "the last day");
    assert_eq!(
        when(&none, &apply_with(person(), d(2027, 1, 31), false)).refused(),
        ApplicationError::CallNotOpen(d(2027, 2, 1))
    );
    assert_eq!(when(&none, &apply_with(person(), d(2027, 4, 1), false)).refused(), ApplicationError::CallClosed);
    assert_eq!(when(&none, &apply_with(person(), d(2027, 3, 1), true)).refused(), ApplicationError::CallClosed);
    assert_eq!(ApplicationError::CallNotOpen(d(2027, 2, 1)).rule(), Some("CALL_NOT_OPEN"));
    assert_eq!(ApplicationError::CallClosed.rule(), Some("CALL_CLOSED"));
}

#[test]
fn a_person_without_standing_or_consent_is_not_recorded_at_all() {
    let none = given::<Application>(&[]);
    let refused = |f: fn(&mut PersonFacts)| {
        let mut p = person();
        f(&mut p);
        when(&given::<Application>(&[]), &apply_with(p, d(2027, 3, 1), false)).refused()
    };
    assert_eq!(refused(|p| p.programme_consent = false), ApplicationError::Barred(Rule::ProgrammeConsent));
    assert_eq!(refused(|p| p.standing = Standing::Unknown), ApplicationError::Barred(Rule::PersonUnknown));
    assert_eq!(refused(|p| p.standing = Standing::Erased), ApplicationError::Barred(Rule::PersonErased));
    let e = refused(|p| p.programme_consent = false);
    assert_eq!((e.kind(), e.rule()), (RejectionKind::FailedPrecondition, Some("PROGRAMME_CONSENT")));
    assert_eq!(e.to_string(), Rule::ProgrammeConsent.to_string());
    assert!(!none.exists());
}

#[test]
fn an_ineligible_application_is_recorded_with_its_rule_and_refused_further_by_it() {
    let mut old = person();
    old.birth_date = Some(d(1980, 1, 1));
    let apply_old = apply_with(old, d(2027, 3, 1), false);
    let a = when(&given::<Application>(&[]), &apply_old).state();
    assert_eq!((a.status, a.ineligible), (Status::Ineligible, Some(Rule::Age)));
    for command in [enrol(1, 1), submit(plan()), score("ev-1", 5, 5), approve(100)] {
        let e = when(&a, &command).refused();
        assert_eq!(e, ApplicationError::Ineligible(Rule::Age), "{command:?}");
        assert_eq!((e.kind(), e.rule()), (RejectionKind::FailedPrecondition, Some("AGE")));
    }
    let mut elsewhere = person();
    elsewhere.district = Some("Soroca".into());
    let a = when(&given::<Application>(&[]), &apply_with(elsewhere, d(2027, 3, 1), false)).state();
    assert_eq!(when(&a, &enrol(1, 1)).refused().rule(), Some("DISTRICT"));
}

#[test]
fn eligibility_is_reassessed_on_newer_facts_until_training() {
    let mut male = person();
    male.categories.clear();
    let a = given::<Application>(&[apply_with(male.clone(), d(2027, 3, 1), false)]);
    assert_eq!(a.ineligible, Some(Rule::Category));
    let reassess = |p: PersonFacts| ApplicationCommand::Reassess { person: p, on: d(2027, 3, 10), stamp: stamp() };
    assert_eq!(when(&a, &reassess(male.clone())).events(), [], "the same outcome");
    let now = when(&a, &reassess(person())).state();
    assert_eq!((now.status, now.ineligible), (Status::Eligible, None));
    assert_eq!(
        when(&a, &reassess(person())).event(),
        ApplicationEvent::EligibilityAssessed { failed: None, on: d(2027, 3, 10), stamp: stamp() }
    );
    // Eligible becomes ineligible on other facts; a withdrawn consent is recorded as such.
    let eligible = given::<Application>(&[apply()]);
    let mut moved = person();
    moved.district = Some("Soroca".into());
    assert_eq!(when(&eligible, &reassess(moved)).state().ineligible, Some(Rule::District));
    let mut withdrawn = person();
    withdrawn.programme_consent = false;
    assert_eq!(when(&eligible, &reassess(withdrawn)).state().ineligible, Some(Rule::ProgrammeConsent));
    assert_eq!(when(&eligible, &reassess(person())).events(), []);
    let enrolled = given::<Application>(&[apply(), enrol(3, 1)]);
    assert_eq!(
        when(&enrolled, &reassess(person())).refused(),
        ApplicationError::Transition("enrolled in training", "reassessed")
    );
    assert_eq!(ApplicationError::Transition("a", "b").rule(), Some("APPLICATION_STATE"));
}

#[test]
fn a_withdrawal_frees_the_call_and_whatever_training_held() {
    let eligible = given::<Application>(&[apply()]);
    assert_eq!(when(&eligible, &withdraw()).claims(), [ClaimChange::Release(applicant())]);
    let enrolled = given::<Application>(&[apply(), enrol(3, 1)]);
    assert_eq!(
        when(&enrolled, &withdraw()).claims(),
        [
            ClaimChange::Release(applicant()),
            ClaimChange::Release(seat(&entrepreneurs(), 3)),
            ClaimChange::Release(place(1))
        ]
    );
    // A training attended keeps its seat (its certificate's) and the place (used).
    let not = given::<Application>(&not_trained());
    assert_eq!(when(&not, &withdraw()).claims(), [ClaimChange::Release(applicant())]);
    let withdrawn = when(&enrolled, &withdraw()).state();
    assert_eq!((withdrawn.status, withdrawn.enrolment.is_none()), (Status::Withdrawn, true));
    assert_eq!(when(&withdrawn, &withdraw()).refused(), ApplicationError::Transition("withdrawn", "withdrawn"));
    for history in [
        given::<Application>(&submitted()),
        given::<Application>(&[apply_with(
            PersonFacts { sex: Some(Sex::Male), categories: Vec::new(), ..person() },
            d(2027, 3, 1),
            false,
        )]),
    ] {
        assert!(when(&history, &withdraw()).result().is_ok());
    }
    assert_eq!(
        when(&given::<Application>(&approved()), &withdraw()).refused(),
        ApplicationError::Transition("approved", "withdrawn")
    );
}

// --- training ---

#[test]
fn enrolling_takes_a_seat_and_the_first_time_one_of_the_calls_training_places() {
    let eligible = given::<Application>(&[apply()]);
    assert_eq!(
        when(&eligible, &enrol(3, 1)).claims(),
        [ClaimChange::Acquire(seat(&entrepreneurs(), 3)), ClaimChange::Acquire(place(1))]
    );
    let enrolled = when(&eligible, &enrol(3, 1)).state();
    assert_eq!((enrolled.status, enrolled.place), (Status::Enrolled, Some(1)));
    assert_eq!(
        when(&enrolled, &enrol(4, 2)).refused(),
        ApplicationError::Transition("enrolled in training", "enrolled")
    );
    assert!(when(&eligible, &enrol(3, 30)).result().is_ok(), "the last place");
    assert_eq!(when(&eligible, &enrol(3, 31)).refused(), ApplicationError::CallTrainingFull(30));
    assert_eq!(when(&eligible, &enrol(3, 0)).refused(), ApplicationError::CallTrainingFull(30));
    assert_eq!(ApplicationError::CallTrainingFull(30).rule(), Some("CALL_TRAINING_FULL"));
    assert_eq!(
        when(&eligible, &enrol_in(session(Audience::Officials), 3, 1)).refused(),
        ApplicationError::Training(TrainingRule::Audience)
    );
    assert_eq!(when(&eligible, &enrol(21, 1)).refused().rule(), Some("SESSION_FULL"));
    assert_eq!(
        when(&given::<Application>(&trained()), &enrol(4, 2)).refused(),
        ApplicationError::Transition("trained", "enrolled")
    );
}

#[test]
fn leaving_before_the_first_day_frees_the_seat_and_an_unused_place() {
    let enrolled = given::<Application>(&[apply(), enrol(3, 1)]);
    let unenrol = |on: NaiveDate| ApplicationCommand::Unenrol {
        session: entrepreneurs(),
        reason: "sick".into(),
        on,
        stamp: stamp(),
    };
    assert_eq!(
        when(&enrolled, &unenrol(d(2027, 5, 3))).claims(),
        [ClaimChange::Release(seat(&entrepreneurs(), 3)), ClaimChange::Release(place(1))]
    );
    let left = when(&enrolled, &unenrol(d(2027, 5, 3))).state();
    assert_eq!((left.status, left.place, left.enrolment.is_none()), (Status::Eligible, None, true));
    assert_eq!(when(&left, &enrol(5, 2)).claims().len(), 2, "a place is taken again");
    assert_eq!(
        when(&enrolled, &unenrol(d(2027, 5, 4))).refused(),
        ApplicationError::Training(TrainingRule::SessionStarted)
    );
    assert_eq!(
        when(&given::<Application>(&[apply()]), &unenrol(d(2027, 5, 1))).refused(),
        ApplicationError::Training(TrainingRule::NotEnrolled)
    );
}

#[test]
fn completion_at_the_threshold_gives_a_certificate() {
    let enrolled = given::<Application>(&trained()[..6]);
    assert_eq!(
        when(&enrolled, &complete_in(entrepreneurs())).event(),
        ApplicationEvent::TrainingCompleted {
            session: entrepreneurs().id,
            certificate: "ANTR-2027-03-003".into(),
            attended: 4,
            of: 5,
            stamp: stamp(),
        }
    );
    assert_eq!(when(&enrolled, &complete_in(entrepreneurs())).claims(), [], "the seat stays: the certificate's");
    let a = given::<Application>(&trained());
    assert_eq!((a.status, a.certificate(), a.place), (Status::Trained, Some("ANTR-2027-03-003"), Some(1)));
    assert_eq!(when(&enrolled, &attend(6)).events(), [], "recorded before");
    assert_eq!(
        when(&enrolled, &attend_in(entrepreneurs(), d(2027, 5, 8), true)).refused(),
        ApplicationError::Training(TrainingRule::NotASessionDay)
    );
    assert_eq!(
        when(&a, &attend(7)).refused(),
        ApplicationError::Training(TrainingRule::NotEnrolled),
        "the enrolment is over"
    );
    assert_eq!(
        when(&a, &complete_in(entrepreneurs())).refused(),
        ApplicationError::Training(TrainingRule::NotEnrolled)
    );
}

#[test]
fn not_through_training_an_applicant_enrols_again_keeping_the_place() {
    let not = given::<Application>(&not_trained());
    assert_eq!((not.status, not.certificate(), not.place), (Status::NotTrained, None, Some(1)));
    assert!(matches!(
        when(&given::<Application>(&not_trained()[..3]), &complete_in(entrepreneurs())).event(),
        ApplicationEvent::TrainingNotCompleted { attended: 1, of: 5, .. }
    ));
    let again = enrol_in(second_session(), 8, 9);
    assert_eq!(when(&not, &again).claims(), [ClaimChange::Acquire(seat(&second_session(), 8))]);
    assert!(matches!(when(&not, &again).event(), ApplicationEvent::Enrolled { place: None, .. }));
    let second = given::<Application>(&with(not_trained(), std::slice::from_ref(&again)));
    // Leaving the second session frees its seat only, and goes back to not trained.
    let unenrol = ApplicationCommand::Unenrol {
        session: second_session(),
        reason: "harvest".into(),
        on: d(2027, 6, 1),
        stamp: stamp(),
    };
    assert_eq!(when(&second, &unenrol).claims(), [ClaimChange::Release(seat(&second_session(), 8))]);
    assert_eq!(when(&second, &unenrol).state().status, Status::NotTrained);
    // Completed the second time.
    let days: Vec<ApplicationCommand> =
        second_session().days.iter().map(|day| attend_in(second_session(), *day, true)).collect();
    let done = given::<Application>(&with(with(not_trained(), &[again]), &days));
    let done = when(&done, &complete_in(second_session())).state();
    assert_eq!((done.status, done.certificate(), done.trainings.len()), (Status::Trained, Some("ANTR-2027-04-008"), 2));
}

// --- the business plan ---

#[test]
fn the_plan_comes_after_training() {
    for history in [vec![apply()], vec![apply(), enrol(3, 1)], not_trained()] {
        assert_eq!(
            when(&given::<Application>(&history), &submit(plan())).refused(),
            ApplicationError::TrainingNotCompleted
        );
    }
    assert_eq!(ApplicationError::TrainingNotCompleted.rule(), Some("TRAINING_NOT_COMPLETED"));
    let a = given::<Application>(&submitted());
    assert_eq!((a.status, a.plan.clone()), (Status::PlanSubmitted, Some(plan())));
    let rejected = given::<Application>(&with(scored(), &[reject()]));
    assert_eq!(when(&rejected, &submit(plan())).refused(), ApplicationError::Transition("rejected", "given a plan"));
}

#[test]
fn the_plan_asks_at_most_the_cap_in_the_calls_currency_backed_by_its_items() {
    let ready = given::<Application>(&trained());
    let refused = |f: fn(&mut Plan)| {
        let mut p = plan();
        f(&mut p);
        when(&given::<Application>(&trained()), &submit(p)).refused()
    };
    let mut at_cap = plan();
    at_cap.requested = eur(200_000);
    at_cap.items[1].quantity = 3;
    assert!(when(&ready, &submit(at_cap)).result().is_ok(), "exactly the cap, items worth exactly that");
    let mut exact = plan();
    exact.items[1].quantity = 1;
    exact.requested = eur(170_000);
    assert!(when(&ready, &submit(exact)).result().is_ok(), "items worth exactly the request");
    assert_eq!(refused(|p| p.requested = eur(200_001)), ApplicationError::OverCap { cap: 200_000 });
    assert_eq!(
        refused(|p| p.requested = Money::new(180_000, "MDL")),
        ApplicationError::Currency { field: "plan.requested_amount", currency: "EUR".into() }
    );
    assert_eq!(refused(|p| p.requested = eur(0)), ApplicationError::NotPositive { field: "plan.requested_amount" });
    assert_eq!(
        refused(|p| p.items[0].unit_price = Money::new(1, "MDL")),
        ApplicationError::Currency { field: "plan.items", currency: "EUR".into() }
    );
    assert_eq!(refused(|p| p.items[1].quantity = 1), ApplicationError::ItemsBelowRequested, "1,700 < 1,800");
    assert_eq!(
        refused(|p| p.items[1].unit_price = eur(i64::MAX / 2 + 1)),
        ApplicationError::Overflow { field: "plan.items" }
    );
    let mut huge = plan();
    huge.items = vec![PlanItem { description: "x".into(), quantity: 1, unit_price: eur(i64::MAX) }; 2];
    assert_eq!(when(&ready, &submit(huge)).refused(), ApplicationError::Overflow { field: "plan.items" });
    for (e, field) in [
        (ApplicationError::ItemsBelowRequested, "plan.items"),
        (ApplicationError::Overflow { field: "plan.items" }, "plan.items"),
        (ApplicationError::NotPositive { field: "amount" }, "amount"),
        (ApplicationError::Currency { field: "amount", currency: "EUR".into() }, "amount"),
        (ApplicationError::NoItems, "handover.item_ids"),
        (ApplicationError::Scores(ScoresError::Missing("jobs".into())), "scores"),
    ] {
        assert_eq!((e.kind(), e.field(), e.rule()), (RejectionKind::InvalidArgument, Some(field), None), "{e}");
    }
}

#[test]
fn the_plan_is_revised_until_an_evaluator_acts() {
    let a = given::<Application>(&submitted());
    assert_eq!(when(&a, &submit(plan())).events(), [], "the same plan");
    let mut revised = plan();
    revised.summary = "A greenhouse and a cold store".into();
    assert_eq!(when(&a, &submit(revised.clone())).state().plan, Some(revised.clone()));
    let scored_once = given::<Application>(&with(submitted(), &[score("ev-1", 5, 5)]));
    assert_eq!(when(&scored_once, &submit(revised.clone())).refused(), ApplicationError::EvaluationStarted);
    let conflicted = given::<Application>(&with(submitted(), &[conflict("ev-1")]));
    assert_eq!(when(&conflicted, &submit(revised)).refused(), ApplicationError::EvaluationStarted);
    assert_eq!(ApplicationError::EvaluationStarted.rule(), Some("EVALUATION_STARTED"));
}

// --- evaluation ---

#[test]
fn each_evaluator_scores_every_criterion_once() {
    let a = given::<Application>(&submitted());
    assert_eq!(
        when(&a, &score("ev-1", 8, 6)).event(),
        ApplicationEvent::Scored {
            scores: BTreeMap::from([("jobs".to_owned(), 6), ("viability".to_owned(), 8)]),
            weighted: 750,
            comment: String::new(),
            stamp: by("ev-1"),
        }
    );
    let once = given::<Application>(&with(submitted(), &[score("ev-1", 8, 6)]));
    assert_eq!(when(&once, &score("ev-1", 9, 9)).refused(), ApplicationError::AlreadyScored);
    assert_eq!(ApplicationError::AlreadyScored.rule(), Some("ALREADY_SCORED"));
    assert!(when(&once, &score("ev-2", 9, 9)).result().is_ok());
    let above = score("ev-2", 11, 9);
    assert_eq!(
        when(&once, &above).refused(),
        ApplicationError::Scores(ScoresError::AboveScale { key: "viability".into(), max: 10 })
    );
    let partial =
        ApplicationCommand::Score { scores: vec![("viability".into(), 5)], comment: String::new(), stamp: by("ev-2") };
    assert_eq!(when(&once, &partial).refused(), ApplicationError::Scores(ScoresError::Missing("jobs".into())));
    assert_eq!(
        when(&given::<Application>(&trained()), &score("ev-1", 5, 5)).refused(),
        ApplicationError::Transition("trained", "evaluated")
    );
    assert_eq!(
        when(&given::<Application>(&trained()), &conflict("ev-1")).refused(),
        ApplicationError::Transition("trained", "evaluated")
    );
}

#[test]
fn a_declared_conflict_excludes_the_evaluator() {
    let a = given::<Application>(&with(submitted(), &[conflict("ev-1")]));
    assert_eq!(when(&a, &score("ev-1", 9, 9)).refused(), ApplicationError::EvaluatorConflict);
    let e = ApplicationError::EvaluatorConflict;
    assert_eq!((e.kind(), e.rule()), (RejectionKind::FailedPrecondition, Some("EVALUATOR_CONFLICT")));
    assert_eq!(when(&a, &conflict("ev-1")).events(), [], "declared before");
    assert!(when(&a, &score("ev-2", 9, 9)).result().is_ok(), "others score");
    // Declared after scoring: the score no longer counts.
    let after = given::<Application>(&with(scored(), &[conflict("ev-2")]));
    assert_eq!(after.final_score(), Some(750), "ev-1's alone");
    assert_eq!(after.counted().count(), 1);
    assert_eq!(given::<Application>(&scored()).final_score(), Some(725));
    assert_eq!(given::<Application>(&submitted()).final_score(), None);
    assert_eq!(given::<Application>(&[]).final_score(), None);
}

// --- the committee ---

#[test]
fn the_committee_decides_after_enough_evaluators_scored_without_a_conflict() {
    let one = given::<Application>(&with(submitted(), &[score("ev-1", 8, 6)]));
    assert_eq!(when(&one, &approve(180_000)).refused(), ApplicationError::TooFewEvaluations { have: 1, need: 2 });
    assert_eq!(when(&one, &reject()).refused(), ApplicationError::TooFewEvaluations { have: 1, need: 2 });
    let excluded = given::<Application>(&with(scored(), &[conflict("ev-2")]));
    assert_eq!(when(&excluded, &approve(180_000)).refused(), ApplicationError::TooFewEvaluations { have: 1, need: 2 });
    assert_eq!(ApplicationError::TooFewEvaluations { have: 1, need: 2 }.rule(), Some("TOO_FEW_EVALUATIONS"));
    assert_eq!(
        when(&given::<Application>(&trained()), &approve(1)).refused(),
        ApplicationError::Transition("trained", "decided")
    );
}

#[test]
fn an_approval_is_at_most_the_cap_and_the_request_for_a_plan_that_passes() {
    let a = given::<Application>(&scored());
    assert_eq!(
        when(&a, &approve(180_000)).event(),
        ApplicationEvent::Approved {
            amount: eur(180_000),
            score: 725,
            evaluators: 2,
            reference: "CM-2027-05 item 4".into(),
            note: String::new(),
            stamp: by("admin-1"),
        }
    );
    assert_eq!(when(&a, &approve(180_000)).claims(), [ClaimChange::Acquire(grantee())]);
    assert!(when(&a, &approve(150_000)).result().is_ok(), "less than requested");
    assert_eq!(when(&a, &approve(180_001)).refused(), ApplicationError::AboveRequested { requested: 180_000 });
    assert_eq!(ApplicationError::AboveRequested { requested: 1 }.rule(), Some("ABOVE_REQUESTED"));
    assert_eq!(when(&a, &approve(0)).refused(), ApplicationError::NotPositive { field: "amount" });
    let mut mdl = approve(1);
    if let ApplicationCommand::Approve { amount, .. } = &mut mdl {
        *amount = Money::new(1, "MDL");
    }
    assert_eq!(when(&a, &mdl).refused(), ApplicationError::Currency { field: "amount", currency: "EUR".into() });
    // A plan at the cap: approving over it is refused as over the cap.
    let mut at_cap = plan();
    at_cap.requested = eur(200_000);
    at_cap.items[1].quantity = 3;
    let capped = given::<Application>(&with(trained(), &[submit(at_cap), score("ev-1", 8, 6), score("ev-2", 7, 7)]));
    assert!(when(&capped, &approve(200_000)).result().is_ok());
    assert_eq!(when(&capped, &approve(200_001)).refused(), ApplicationError::OverCap { cap: 200_000 });
    assert_eq!(ApplicationError::OverCap { cap: 1 }.rule(), Some("OVER_CAP"));
    // Below the pass score (6.00): 5.75 is refused, 6.00 passes.
    let low = given::<Application>(&with(submitted(), &[score("ev-1", 6, 5), score("ev-2", 6, 5)]));
    assert_eq!(low.final_score(), Some(575));
    assert_eq!(when(&low, &approve(100_000)).refused(), ApplicationError::BelowPassScore { score: 575, pass: 600 });
    assert_eq!(ApplicationError::BelowPassScore { score: 1, pass: 2 }.rule(), Some("BELOW_PASS_SCORE"));
    let pass = given::<Application>(&with(submitted(), &[score("ev-1", 6, 6), score("ev-2", 6, 6)]));
    assert!(when(&pass, &approve(100_000)).result().is_ok());
    assert!(when(&low, &reject()).result().is_ok(), "a rejection needs no pass score");
}

#[test]
fn the_committee_decides_once() {
    let approved = given::<Application>(&approved());
    assert_eq!((approved.status, approved.approved.clone()), (Status::Approved, Some(eur(180_000))));
    assert_eq!(when(&approved, &approve(1)).refused(), ApplicationError::Transition("approved", "decided"));
    assert_eq!(when(&approved, &reject()).refused(), ApplicationError::Transition("approved", "decided"));
    let a = given::<Application>(&scored());
    assert_eq!(
        when(&a, &reject()).event(),
        ApplicationEvent::Rejected {
            reasons: "the market analysis is missing".into(),
            score: 725,
            reference: "CM-2027-05 item 5".into(),
            stamp: by("admin-1"),
        }
    );
    let rejected = when(&a, &reject()).state();
    assert_eq!(rejected.status, Status::Rejected);
    assert_eq!(when(&a, &reject()).claims(), []);
    assert_eq!(when(&rejected, &score("ev-3", 5, 5)).refused(), ApplicationError::Transition("rejected", "evaluated"));
}

#[test]
fn approval_is_the_call_and_the_application_agreeing() {
    // The committee's approval is two decisions stored together or not at
    // all: the call's Commit (budget) and the application's Approve (its
    // own rules). Either refusing refuses both.
    let call = given::<Call>(&[
        CallCommand::Open(Box::new(new_call()), stamp()),
        CallCommand::Commit { application: Uuid::from_u128(1), amount: eur(200_000), stamp: stamp() },
        CallCommand::Commit { application: Uuid::from_u128(2), amount: eur(200_000), stamp: stamp() },
    ]);
    let decide_both = |minor: i64| {
        let commit = CallCommand::Commit { application: id(), amount: eur(minor), stamp: by("admin-1") };
        (
            when(&call, &commit).result().clone(),
            when(&given::<Application>(&scored()), &approve(minor)).result().clone(),
        )
    };
    let (c, a) = decide_both(100_000);
    assert!(c.is_ok() && a.is_ok(), "1,000 of the 1,000 left");
    let (c, a) = decide_both(150_000);
    assert_eq!(
        (c, a.is_ok()),
        (Err(CallError::OverBudget { remaining: 100_000 }), true),
        "the call refuses: neither is stored"
    );
    let (c, a) = decide_both(180_001);
    assert_eq!((c.is_err(), a), (true, Err(ApplicationError::AboveRequested { requested: 180_000 })));
}

// --- procurement ---

#[test]
fn orders_never_add_up_to_more_than_the_approved_amount() {
    let a = given::<Application>(&approved());
    assert_eq!(when(&a, &order(1, 1, 150_000)).event(), ApplicationEvent::ItemOrdered(item(1, 1, 150_000), stamp()));
    let one = given::<Application>(&with(approved(), &[order(1, 1, 150_000)]));
    assert_eq!(one.ordered(), 150_000);
    assert!(when(&one, &order(2, 2, 15_000)).result().is_ok(), "exactly what is left");
    assert_eq!(when(&one, &order(2, 3, 10_001)).refused(), ApplicationError::OverApproved { remaining: 30_000 });
    assert_eq!(ApplicationError::OverApproved { remaining: 1 }.rule(), Some("OVER_APPROVED"));
    // A cancelled order frees its amount.
    let freed = given::<Application>(&with(approved(), &[order(1, 1, 150_000), cancel_order(1)]));
    assert_eq!(freed.ordered(), 0);
    assert!(when(&freed, &order(2, 1, 180_000)).result().is_ok());
    assert_eq!(when(&one, &order(1, 1, 1)).refused(), ApplicationError::ItemExists);
    assert_eq!(ApplicationError::ItemExists.kind(), RejectionKind::AlreadyExists);
    assert_eq!(when(&a, &order(3, 0, 100)).refused(), ApplicationError::NotPositive { field: "item.quantity" });
    assert_eq!(when(&a, &order(3, 1, 0)).refused(), ApplicationError::NotPositive { field: "item.unit_price" });
    assert_eq!(
        when(&a, &ApplicationCommand::Order(Item { unit_price: Money::new(1, "MDL"), ..item(3, 1, 1) }, stamp()))
            .refused(),
        ApplicationError::Currency { field: "item.unit_price", currency: "EUR".into() }
    );
    assert_eq!(when(&a, &order(3, 3, i64::MAX / 2)).refused(), ApplicationError::Overflow { field: "item.unit_price" });
    assert_eq!(
        when(&given::<Application>(&scored()), &order(1, 1, 1)).refused(),
        ApplicationError::Transition("under evaluation", "given items")
    );
}

#[test]
fn items_are_delivered_paid_and_handed_over_in_order() {
    let ordered = given::<Application>(&with(approved(), &[order(1, 1, 150_000), order(2, 2, 15_000)]));
    assert_eq!(when(&ordered, &pay(1)).refused(), ApplicationError::ItemNotDelivered);
    assert_eq!(when(&ordered, &hand_over("HO-1", &[1])).refused(), ApplicationError::ItemNotDelivered);
    assert_eq!(ApplicationError::ItemNotDelivered.rule(), Some("ITEM_NOT_DELIVERED"));
    assert_eq!(when(&ordered, &deliver(9)).refused(), ApplicationError::NoSuchItem);
    assert_eq!(ApplicationError::NoSuchItem.kind(), RejectionKind::NotFound);
    let delivered = given::<Application>(&with(approved(), &[order(1, 1, 150_000), order(2, 2, 15_000), deliver(1)]));
    assert_eq!(delivered.items[&item_id(1)].state, ItemState::Delivered);
    assert_eq!(when(&delivered, &deliver(1)).refused(), ApplicationError::ItemState("delivered", "delivered"));
    assert_eq!(when(&delivered, &cancel_order(1)).refused(), ApplicationError::ItemState("delivered", "cancelled"));
    assert_eq!(ApplicationError::ItemState("a", "b").rule(), Some("ITEM_STATE"));
    assert_eq!(
        when(&delivered, &pay(1)).event(),
        ApplicationEvent::SupplierPaid {
            item: item_id(1),
            amount: eur(150_000),
            on: d(2027, 9, 10),
            reference: "OP-1".into(),
            stamp: by("finance-1"),
        }
    );
    let paid = given::<Application>(&with(approved(), &[order(1, 1, 150_000), deliver(1), pay(1)]));
    assert_eq!(when(&paid, &pay(1)).refused(), ApplicationError::ItemPaid);
    assert_eq!(ApplicationError::ItemPaid.rule(), Some("ITEM_PAID"));
    let cancelled = given::<Application>(&with(approved(), &[order(1, 1, 150_000), cancel_order(1)]));
    assert_eq!(when(&cancelled, &deliver(1)).refused(), ApplicationError::ItemState("cancelled", "delivered"));
    assert_eq!(when(&cancelled, &cancel_order(1)).refused(), ApplicationError::ItemState("cancelled", "cancelled"));
    assert_eq!(
        when(&cancelled, &hand_over("HO-1", &[1])).refused(),
        ApplicationError::ItemState("cancelled", "handed over")
    );
    assert_eq!(when(&cancelled, &pay(1)).refused(), ApplicationError::ItemNotDelivered);
    // A handover record names delivered items once, under a reference of its own.
    let handed = when(&delivered, &hand_over("HO-1", &[1])).state();
    assert_eq!((handed.items[&item_id(1)].state, handed.handed_over()), (ItemState::HandedOver, 150_000));
    assert_eq!(
        when(&handed, &hand_over("HO-2", &[1])).refused(),
        ApplicationError::ItemState("handed over", "handed over")
    );
    assert_eq!(when(&handed, &hand_over("HO-1", &[2])).refused(), ApplicationError::HandoverExists);
    assert_eq!(ApplicationError::HandoverExists.kind(), RejectionKind::AlreadyExists);
    assert_eq!(when(&handed, &hand_over("HO-2", &[])).refused(), ApplicationError::NoItems);
    assert_eq!(when(&handed, &hand_over("HO-2", &[7])).refused(), ApplicationError::NoSuchItem);
    assert!(when(&handed, &pay(1)).result().is_ok(), "paid after the handover");
}

#[test]
fn monitoring_visits_follow_the_first_handover() {
    let delivered = given::<Application>(&with(approved(), &[order(1, 1, 150_000), deliver(1)]));
    assert_eq!(when(&delivered, &visit()).refused(), ApplicationError::NothingHandedOver);
    assert_eq!(ApplicationError::NothingHandedOver.rule(), Some("NOTHING_HANDED_OVER"));
    let a = given::<Application>(&handed_over());
    assert_eq!(when(&a, &visit()).state().visits.len(), 1);
    assert_eq!(
        when(&given::<Application>(&scored()), &visit()).refused(),
        ApplicationError::Transition("under evaluation", "visited")
    );
}

#[test]
fn a_grant_closes_with_everything_handed_over_and_paid_after_a_visit() {
    let a = given::<Application>(&handed_over());
    assert_eq!(when(&a, &close()).refused(), ApplicationError::NoMonitoringVisit);
    assert_eq!(ApplicationError::NoMonitoringVisit.rule(), Some("NO_MONITORING_VISIT"));
    let visited = given::<Application>(&with(handed_over(), &[visit()]));
    assert_eq!(
        when(&visited, &close()).event(),
        ApplicationEvent::Closed { spent: eur(180_000), unspent: eur(0), note: String::new(), stamp: stamp() }
    );
    let closed = when(&visited, &close()).state();
    assert_eq!(closed.status, Status::Closed);
    assert_eq!(when(&closed, &close()).refused(), ApplicationError::Transition("closed", "closed"));
    assert!(when(&closed, &visit()).result().is_ok(), "visits go on after closing");
    assert_eq!(when(&closed, &order(5, 1, 1)).refused(), ApplicationError::Transition("closed", "given items"));
    assert_eq!(when(&visited, &close()).claims(), [], "the grantee stays one");
    // An order still open, delivered or not, keeps it open.
    let part = with(approved(), &[order(1, 1, 150_000), deliver(1), pay(1), hand_over("HO-1", &[1]), visit()]);
    assert!(when(&given::<Application>(&part), &close()).result().is_ok());
    // The call's release in the same batch must be what is unspent now.
    let releasing = |r| ApplicationCommand::Close { note: String::new(), releasing: Some(r), stamp: stamp() };
    assert!(when(&given::<Application>(&part), &releasing(30_000)).result().is_ok());
    assert_eq!(
        when(&given::<Application>(&part), &releasing(180_000)).refused(),
        ApplicationError::ReleaseMismatch { unspent: 30_000 }
    );
    let open = given::<Application>(&with(part.clone(), &[order(3, 1, 1_000)]));
    assert_eq!(when(&open, &close()).refused(), ApplicationError::OpenOrders);
    let undelivered = given::<Application>(&with(part, &[order(3, 1, 1_000), deliver(3)]));
    assert_eq!(when(&undelivered, &close()).refused(), ApplicationError::OpenOrders);
    assert_eq!(ApplicationError::OpenOrders.rule(), Some("OPEN_ORDERS"));
    // Unpaid.
    let unpaid =
        given::<Application>(&with(approved(), &[order(1, 1, 150_000), deliver(1), hand_over("HO-1", &[1]), visit()]));
    assert_eq!(when(&unpaid, &close()).refused(), ApplicationError::SupplierUnpaid);
    assert_eq!(ApplicationError::SupplierUnpaid.rule(), Some("SUPPLIER_UNPAID"));
    // Spent less than approved: the rest is unspent (the call releases it).
    let under = given::<Application>(&with(
        approved(),
        &[
            order(1, 1, 150_000),
            order(2, 1, 5_000),
            cancel_order(2),
            deliver(1),
            pay(1),
            hand_over("HO-1", &[1]),
            visit(),
        ],
    ));
    assert!(matches!(
        when(&under, &close()).event(),
        ApplicationEvent::Closed { spent, unspent, .. } if spent == eur(150_000) && unspent == eur(30_000)
    ));
}

#[test]
fn a_grant_with_nothing_ordered_is_cancelled_giving_the_amount_back() {
    let a = given::<Application>(&approved());
    assert_eq!(
        when(&a, &cancel_grant()).event(),
        ApplicationEvent::GrantCancelled {
            released: eur(180_000),
            reason: "the applicant emigrated".into(),
            stamp: stamp()
        }
    );
    assert_eq!(when(&a, &cancel_grant()).claims(), [ClaimChange::Release(grantee())]);
    assert_eq!(when(&a, &cancel_grant()).state().status, Status::Cancelled);
    let ordered = given::<Application>(&with(approved(), &[order(1, 1, 100)]));
    assert_eq!(when(&ordered, &cancel_grant()).refused(), ApplicationError::ProcurementStarted);
    assert_eq!(ApplicationError::ProcurementStarted.rule(), Some("PROCUREMENT_STARTED"));
    let cancelled_orders = given::<Application>(&with(approved(), &[order(1, 1, 100), cancel_order(1)]));
    assert!(when(&cancelled_orders, &cancel_grant()).result().is_ok());
    assert_eq!(
        when(&given::<Application>(&scored()), &cancel_grant()).refused(),
        ApplicationError::Transition("under evaluation", "cancelled")
    );
}

#[test]
fn error_kinds_without_a_rule() {
    for e in [ApplicationError::AlreadyExists, ApplicationError::NotFound] {
        assert_eq!((e.field(), e.rule()), (None, None));
    }
    assert_eq!(ApplicationError::AlreadyExists.kind(), RejectionKind::AlreadyExists);
    assert_eq!(ApplicationError::NotFound.kind(), RejectionKind::NotFound);
    assert_eq!(ApplicationError::Training(TrainingRule::DayNotYet).rule(), Some("DAY_NOT_YET"));
    assert_eq!(ApplicationError::Barred(Rule::PersonMerged(Uuid::nil())).rule(), Some("PERSON_MERGED"));
    let names: Vec<&str> = [
        Status::None,
        Status::Eligible,
        Status::Ineligible,
        Status::Enrolled,
        Status::NotTrained,
        Status::Trained,
        Status::PlanSubmitted,
        Status::Approved,
        Status::Rejected,
        Status::Closed,
        Status::Withdrawn,
        Status::Cancelled,
    ]
    .iter()
    .map(|s| s.name())
    .collect();
    let mut distinct = names.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), names.len());
}
