//! Given/when/then for every placement rule.

use acasa_domain::Rejection as _;
use acasa_domain::testing::{given, when};

use super::*;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn host() -> Uuid {
    Uuid::from_u128(0xb0)
}

fn mdl(minor: i64) -> Money {
    Money::new(minor, "MDL")
}

/// 6,000.00 MDL a month, six months, travel capped at 1,000.00 MDL.
fn proposal() -> Proposal {
    Proposal {
        id: Uuid::from_u128(1),
        person: Uuid::from_u128(0xa1),
        offer: Uuid::from_u128(0xc0),
        host: host(),
        slot: 2,
        terms: Terms { kind: Kind::GraduatePlacement, months: 6, allowance: mdl(600_000), travel_cap: mdl(100_000) },
        start_from: d(2027, 1, 1),
        start_until: d(2027, 2, 1),
    }
}

fn facts() -> ProposalFacts {
    ProposalFacts { offer_open: true, host_active: true, person: PersonFact::Active { consent: true, category: true } }
}

fn propose() -> PlacementCommand {
    PlacementCommand::Propose(proposal(), facts(), at())
}

fn sign() -> PlacementCommand {
    PlacementCommand::SignAgreement { signed_on: d(2027, 1, 5), start_on: d(2027, 1, 15), reference: "AG-7".into() }
}

/// Started on 2027-01-15.
fn started() -> Vec<PlacementCommand> {
    vec![propose(), PlacementCommand::Accept(at()), sign(), PlacementCommand::Start(d(2027, 1, 15))]
}

fn with(mut history: Vec<PlacementCommand>, more: &[PlacementCommand]) -> Vec<PlacementCommand> {
    history.extend_from_slice(more);
    history
}

fn confirm(month: u32) -> PlacementCommand {
    PlacementCommand::ConfirmPresence { month, host: host() }
}

fn pay(month: u32, minor: i64) -> PlacementCommand {
    PlacementCommand::Pay { month, amount: mdl(minor), paid_on: d(2027, 3, 1), reference: format!("OP-{month}") }
}

fn due(month: u32, minor: i64, due_on: NaiveDate) -> PlacementEvent {
    PlacementEvent::AllowanceFellDue { month, amount: mdl(minor), due_on }
}

#[test]
fn months_run_from_the_start_day_to_the_same_day_next_month() {
    assert_eq!(month_period(d(2027, 1, 15), 1), Some((d(2027, 1, 15), d(2027, 2, 15))));
    assert_eq!(month_period(d(2027, 1, 15), 6), Some((d(2027, 6, 15), d(2027, 7, 15))));
    // The end of a month clamps to the last day of a shorter one.
    assert_eq!(month_period(d(2027, 1, 31), 1), Some((d(2027, 1, 31), d(2027, 2, 28))));
    assert_eq!(month_period(d(2027, 1, 15), 0), None);
}

#[test]
fn a_proposal_takes_a_place_of_the_offer_and_the_persons_one_active_placement() {
    let place = Claim::new(OFFER_PLACE, format!("{}#2", Uuid::from_u128(0xc0)));
    let person = Claim::new(ACTIVE_PLACEMENT, Uuid::from_u128(0xa1).to_string());
    assert_eq!(
        when(&given::<Placement>(&[]), &propose()).claims(),
        [ClaimChange::Acquire(place.clone()), ClaimChange::Acquire(person.clone())]
    );
    // Declined or withdrawn: both are free again.
    let proposed = given::<Placement>(&[propose()]);
    let both = [ClaimChange::Release(place.clone()), ClaimChange::Release(person.clone())];
    assert_eq!(when(&proposed, &PlacementCommand::Decline("abroad".into(), at())).claims(), both);
    assert_eq!(when(&proposed, &PlacementCommand::Withdraw("budget".into(), at())).claims(), both);
    // Completed or ended: the person is free, the place stays used.
    let running = given::<Placement>(&started());
    assert_eq!(
        when(&running, &PlacementCommand::EndEarly(d(2027, 3, 1), "moved".into())).claims(),
        [ClaimChange::Release(person.clone())]
    );
    assert_eq!(when(&running, &PlacementCommand::Complete(d(2027, 7, 15))).claims(), [ClaimChange::Release(person)]);
    assert_eq!(when(&running, &confirm(1)).claims(), [], "nothing else touches a claim");
}

#[test]
fn a_proposal_is_made_once_with_a_term_and_a_place() {
    assert_eq!(when(&given::<Placement>(&[propose()]), &propose()).refused(), PlacementError::AlreadyExists);
    let mut none = proposal();
    none.terms.months = 0;
    assert_eq!(
        when(&given::<Placement>(&[]), &PlacementCommand::Propose(none, facts(), at())).refused(),
        PlacementError::NotPositive
    );
    let mut slotless = proposal();
    slotless.slot = 0;
    assert_eq!(
        when(&given::<Placement>(&[]), &PlacementCommand::Propose(slotless, facts(), at())).refused(),
        PlacementError::NotPositive
    );
    assert_eq!(when(&given::<Placement>(&[]), &PlacementCommand::Accept(at())).refused(), PlacementError::NotFound);
}

#[test]
fn the_candidate_answers_a_proposal_once_and_the_agreement_comes_before_the_start() {
    let proposed = given::<Placement>(&[propose()]);
    assert_eq!(when(&proposed, &sign()).refused(), PlacementError::Transition("proposed", "signed"));
    assert_eq!(
        when(&proposed, &PlacementCommand::Start(d(2027, 1, 15))).refused(),
        PlacementError::Transition("proposed", "started")
    );
    let accepted = given::<Placement>(&[propose(), PlacementCommand::Accept(at())]);
    assert_eq!(
        when(&accepted, &PlacementCommand::Accept(at())).refused(),
        PlacementError::Transition("accepted", "accepted")
    );
    assert_eq!(
        when(&accepted, &PlacementCommand::Decline("no".into(), at())).refused(),
        PlacementError::Transition("accepted", "declined")
    );
    let early =
        PlacementCommand::SignAgreement { signed_on: d(2027, 1, 5), start_on: d(2027, 1, 4), reference: "x".into() };
    assert_eq!(when(&accepted, &early).refused(), PlacementError::BeforeSignature(d(2027, 1, 5)));
    let same_day =
        PlacementCommand::SignAgreement { signed_on: d(2027, 1, 5), start_on: d(2027, 1, 5), reference: "x".into() };
    assert!(when(&accepted, &same_day).result().is_ok());
    let declined = given::<Placement>(&[propose(), PlacementCommand::Decline("abroad".into(), at())]);
    assert_eq!(declined.status, Status::Declined);
    assert_eq!(
        when(&declined, &PlacementCommand::Accept(at())).refused(),
        PlacementError::Transition("declined", "accepted")
    );
    let running = given::<Placement>(&started());
    assert_eq!(
        when(&running, &PlacementCommand::Withdraw("late".into(), at())).refused(),
        PlacementError::Transition("started", "withdrawn")
    );
    assert_eq!(running.start, Some(d(2027, 1, 15)));
}

#[test]
fn each_month_falls_due_once_when_its_period_ends() {
    let running = given::<Placement>(&started());
    assert_eq!(when(&running, &PlacementCommand::FallDue(d(2027, 2, 14))).events(), []);
    assert_eq!(when(&running, &PlacementCommand::FallDue(d(2027, 2, 15))).event(), due(1, 600_000, d(2027, 2, 15)));
    // A late worker records every month that ended, once.
    let late = when(&running, &PlacementCommand::FallDue(d(2027, 4, 20))).events();
    assert_eq!(
        late,
        [due(1, 600_000, d(2027, 2, 15)), due(2, 600_000, d(2027, 3, 15)), due(3, 600_000, d(2027, 4, 15))]
    );
    let after = given::<Placement>(&with(started(), &[PlacementCommand::FallDue(d(2027, 4, 20))]));
    assert_eq!(when(&after, &PlacementCommand::FallDue(d(2027, 4, 20))).events(), []);
    // Never beyond the term.
    let all = when(&running, &PlacementCommand::FallDue(d(2030, 1, 1))).events();
    assert_eq!(all.len(), 6);
    // Not before the start.
    let signed = given::<Placement>(&[propose(), PlacementCommand::Accept(at()), sign()]);
    assert_eq!(when(&signed, &PlacementCommand::FallDue(d(2030, 1, 1))).events(), []);
}

#[test]
fn only_the_host_confirms_presence_of_a_due_month_once() {
    let one_due = given::<Placement>(&with(started(), &[PlacementCommand::FallDue(d(2027, 2, 15))]));
    assert_eq!(when(&one_due, &confirm(1)).event(), PlacementEvent::PresenceConfirmed(1));
    assert_eq!(when(&one_due, &confirm(2)).refused(), PlacementError::NotDue(2));
    let other = PlacementCommand::ConfirmPresence { month: 1, host: Uuid::from_u128(0xb1) };
    assert_eq!(when(&one_due, &other).refused(), PlacementError::NotHost);
    let confirmed = given::<Placement>(&with(started(), &[PlacementCommand::FallDue(d(2027, 2, 15)), confirm(1)]));
    assert_eq!(when(&confirmed, &confirm(1)).refused(), PlacementError::AlreadyConfirmed(1));
}

#[test]
fn a_month_is_paid_once_after_presence_and_never_above_what_is_due() {
    let due_only = given::<Placement>(&with(started(), &[PlacementCommand::FallDue(d(2027, 2, 15))]));
    assert_eq!(when(&due_only, &pay(1, 600_000)).refused(), PlacementError::PresenceNotConfirmed(1));
    assert_eq!(when(&due_only, &pay(2, 600_000)).refused(), PlacementError::NotDue(2));
    let ready = given::<Placement>(&with(started(), &[PlacementCommand::FallDue(d(2027, 2, 15)), confirm(1)]));
    assert_eq!(when(&ready, &pay(1, 600_001)).refused(), PlacementError::AboveDue { due: 600_000 });
    assert_eq!(when(&ready, &pay(1, 0)).refused(), PlacementError::NotPositive);
    let eur = PlacementCommand::Pay {
        month: 1,
        amount: Money::new(30_000, "EUR"),
        paid_on: d(2027, 3, 1),
        reference: "x".into(),
    };
    assert_eq!(when(&ready, &eur).refused(), PlacementError::Currency("MDL".into()));
    assert_eq!(PlacementError::Currency("MDL".into()).field(), Some("amount"));
    assert!(matches!(when(&ready, &pay(1, 600_000)).event(), PlacementEvent::AllowancePaid { month: 1, .. }));
    assert!(when(&ready, &pay(1, 550_000)).result().is_ok(), "less than due may be paid");
    let paid =
        given::<Placement>(&with(started(), &[PlacementCommand::FallDue(d(2027, 2, 15)), confirm(1), pay(1, 600_000)]));
    assert_eq!(when(&paid, &pay(1, 600_000)).refused(), PlacementError::AlreadyPaid(1));
    assert_eq!(paid.months[&1].paid, Some(mdl(600_000)));
}

#[test]
fn ending_early_makes_the_started_month_due_for_the_days_served_and_nothing_after() {
    let running = given::<Placement>(&with(started(), &[PlacementCommand::FallDue(d(2027, 2, 15))]));
    // Month 2 runs Feb 15 – Mar 14 (28 days); ending on Mar 1 served 14 of them.
    let events = when(&running, &PlacementCommand::EndEarly(d(2027, 3, 1), "employed".into())).events();
    assert_eq!(events, [due(2, 300_000, d(2027, 3, 1)), PlacementEvent::EndedEarly(d(2027, 3, 1), "employed".into())]);
    // Rounded down to the minor unit: 1 day of 28 of 6,000.00.
    let one_day = when(&running, &PlacementCommand::EndEarly(d(2027, 2, 16), "x".into())).events();
    assert_eq!(one_day[0], due(2, 21_428, d(2027, 2, 16)));
    // Ending on a month's first day: that month owes nothing.
    let on_boundary = when(&running, &PlacementCommand::EndEarly(d(2027, 2, 15), "x".into())).events();
    assert_eq!(on_boundary, [PlacementEvent::EndedEarly(d(2027, 2, 15), "x".into())]);
    // Full months the worker had not recorded yet fall due with the end.
    let fresh = given::<Placement>(&started());
    let events = when(&fresh, &PlacementCommand::EndEarly(d(2027, 3, 15), "x".into())).events();
    assert_eq!(events[..2], [due(1, 600_000, d(2027, 2, 15)), due(2, 600_000, d(2027, 3, 15))]);
    assert_eq!(events.len(), 3);
    // After the end nothing falls due.
    let ended = given::<Placement>(&with(started(), &[PlacementCommand::EndEarly(d(2027, 3, 1), "x".into())]));
    assert_eq!(when(&ended, &PlacementCommand::FallDue(d(2028, 1, 1))).events(), []);
    assert_eq!(ended.end, Some(d(2027, 3, 1)));
    // Only within the term.
    let term = PlacementError::OutsideTerm(d(2027, 1, 15), d(2027, 7, 15));
    assert_eq!(when(&fresh, &PlacementCommand::EndEarly(d(2027, 1, 14), "x".into())).refused(), term);
    assert_eq!(when(&fresh, &PlacementCommand::EndEarly(d(2027, 7, 15), "x".into())).refused(), term);
    assert!(when(&fresh, &PlacementCommand::EndEarly(d(2027, 1, 15), "x".into())).result().is_ok());
    assert_eq!(
        when(&ended, &PlacementCommand::EndEarly(d(2027, 4, 1), "x".into())).refused(),
        PlacementError::Transition("ended early", "ended early")
    );
}

#[test]
fn completion_comes_when_the_term_is_over_and_makes_every_month_due() {
    let running = given::<Placement>(&with(started(), &[PlacementCommand::FallDue(d(2027, 5, 15))]));
    assert_eq!(
        when(&running, &PlacementCommand::Complete(d(2027, 7, 14))).refused(),
        PlacementError::TermNotOver(d(2027, 7, 15))
    );
    let events = when(&running, &PlacementCommand::Complete(d(2027, 7, 20))).events();
    assert_eq!(
        events,
        [due(5, 600_000, d(2027, 6, 15)), due(6, 600_000, d(2027, 7, 15)), PlacementEvent::Completed(d(2027, 7, 15))]
    );
    let signed = given::<Placement>(&[propose(), PlacementCommand::Accept(at()), sign()]);
    assert_eq!(
        when(&signed, &PlacementCommand::Complete(d(2028, 1, 1))).refused(),
        PlacementError::Transition("signed", "completed")
    );
}

#[test]
fn outcomes_come_at_completion_and_at_the_follow_up_six_months_later_once_each() {
    let outcome = |stage, on| PlacementCommand::RecordOutcome(stage, Outcome::EmployedInMoldova, on);
    let running = given::<Placement>(&started());
    assert_eq!(
        when(&running, &outcome(OutcomeStage::Completion, d(2027, 7, 15))).refused(),
        PlacementError::Transition("started", "given an outcome")
    );
    let done = with(started(), &[PlacementCommand::Complete(d(2027, 7, 15))]);
    let completed = given::<Placement>(&done);
    assert!(when(&completed, &outcome(OutcomeStage::Completion, d(2027, 7, 15))).result().is_ok());
    assert_eq!(
        when(&completed, &outcome(OutcomeStage::FollowUp, d(2028, 1, 14))).refused(),
        PlacementError::FollowUpNotYet(d(2028, 1, 15))
    );
    assert!(when(&completed, &outcome(OutcomeStage::FollowUp, d(2028, 1, 15))).result().is_ok());
    let recorded = given::<Placement>(&with(done.clone(), &[outcome(OutcomeStage::Completion, d(2027, 7, 15))]));
    assert_eq!(
        when(&recorded, &outcome(OutcomeStage::Completion, d(2027, 7, 16))).refused(),
        PlacementError::OutcomeRecorded
    );
    // The deadline worker: overdue 30 days after the follow-up was due, once.
    let check = |today| PlacementCommand::CheckFollowUp(today);
    assert_eq!(when(&completed, &check(d(2028, 2, 14))).events(), []);
    assert_eq!(when(&completed, &check(d(2028, 2, 15))).event(), PlacementEvent::FollowUpOverdue(d(2028, 1, 15)));
    let overdue = given::<Placement>(&with(done.clone(), &[check(d(2028, 3, 1))]));
    assert!(overdue.follow_up_overdue);
    assert_eq!(when(&overdue, &check(d(2028, 4, 1))).events(), []);
    let followed = given::<Placement>(&with(done, &[outcome(OutcomeStage::FollowUp, d(2028, 1, 20))]));
    assert_eq!(when(&followed, &check(d(2028, 4, 1))).events(), []);
}

#[test]
fn travel_is_approved_up_to_the_remaining_cap_and_paid_once() {
    let claim = |n: u128| Uuid::from_u128(0x70 + n);
    let submit = |n, minor| PlacementCommand::SubmitTravel {
        claim: claim(n),
        kind: "flight".into(),
        amount: mdl(minor),
        receipt: format!("R-{n}"),
    };
    let approve = |n, minor| PlacementCommand::ApproveTravel { claim: claim(n), amount: mdl(minor) };
    let proposed = given::<Placement>(&[propose()]);
    assert_eq!(when(&proposed, &submit(1, 10)).refused(), PlacementError::Transition("proposed", "claimed travel for"));
    let history = with(started(), &[submit(1, 60_000), submit(2, 60_000)]);
    let two = given::<Placement>(&history);
    assert_eq!(when(&two, &submit(1, 5)).refused(), PlacementError::ClaimExists);
    assert_eq!(when(&two, &approve(1, 60_001)).refused(), PlacementError::AboveClaim);
    assert_eq!(when(&two, &approve(3, 1)).refused(), PlacementError::NoSuchClaim);
    let one_approved = given::<Placement>(&with(history.clone(), &[approve(1, 60_000)]));
    assert_eq!(one_approved.travel_approved(), 60_000);
    assert_eq!(when(&one_approved, &approve(2, 60_000)).refused(), PlacementError::OverCap { remaining: 40_000 });
    assert!(when(&one_approved, &approve(2, 40_000)).result().is_ok(), "up to the cap exactly");
    assert_eq!(when(&one_approved, &approve(1, 1)).refused(), PlacementError::ClaimDecided);
    let reject = PlacementCommand::RejectTravel { claim: claim(1), reason: "no receipt".into() };
    assert_eq!(when(&one_approved, &reject).refused(), PlacementError::ClaimDecided);
    let pay_travel = |n| PlacementCommand::PayTravel { claim: claim(n), paid_on: d(2027, 2, 1), reference: "T".into() };
    assert_eq!(when(&one_approved, &pay_travel(2)).refused(), PlacementError::ClaimNotApproved);
    assert_eq!(
        when(&one_approved, &pay_travel(1)).event(),
        PlacementEvent::TravelPaid {
            claim: claim(1),
            amount: mdl(60_000),
            paid_on: d(2027, 2, 1),
            reference: "T".into()
        }
    );
    let paid = given::<Placement>(&with(history.clone(), &[approve(1, 60_000), pay_travel(1)]));
    assert_eq!(when(&paid, &pay_travel(1)).refused(), PlacementError::ClaimPaid);
    // A rejected claim uses none of the cap.
    let rejected =
        given::<Placement>(&with(history, &[PlacementCommand::RejectTravel { claim: claim(1), reason: "x".into() }]));
    assert!(rejected.travel[&claim(1)].rejected);
    assert!(when(&rejected, &approve(2, 60_000)).result().is_ok());
    // Travel home after the end is still claimed.
    let ended = given::<Placement>(&with(started(), &[PlacementCommand::EndEarly(d(2027, 3, 1), "x".into())]));
    assert!(when(&ended, &submit(9, 1_000)).result().is_ok());
}

#[test]
fn rejections_map_to_statuses() {
    assert_eq!(PlacementError::NotFound.kind(), RejectionKind::NotFound);
    assert_eq!(PlacementError::NoSuchClaim.kind(), RejectionKind::NotFound);
    assert_eq!(PlacementError::AlreadyExists.kind(), RejectionKind::AlreadyExists);
    assert_eq!(PlacementError::NotPositive.kind(), RejectionKind::InvalidArgument);
    assert_eq!(PlacementError::OverCap { remaining: 1 }.kind(), RejectionKind::FailedPrecondition);
    assert_eq!(PlacementError::OverCap { remaining: 1 }.field(), None);
}

#[test]
fn a_proposal_needs_an_open_offer_an_active_host_and_a_consenting_person_of_the_offers_category() {
    let refused =
        |f: ProposalFacts| when(&given::<Placement>(&[]), &PlacementCommand::Propose(proposal(), f, at())).refused();
    assert_eq!(refused(ProposalFacts { offer_open: false, ..facts() }), PlacementError::OfferClosed);
    assert_eq!(refused(ProposalFacts { host_active: false, ..facts() }), PlacementError::HostNotActive);
    assert_eq!(refused(ProposalFacts { person: PersonFact::Unknown, ..facts() }), PlacementError::PersonUnknown);
    assert_eq!(refused(ProposalFacts { person: PersonFact::Erased, ..facts() }), PlacementError::PersonErased);
    let survivor = Uuid::from_u128(0xa2);
    assert_eq!(
        refused(ProposalFacts { person: PersonFact::Merged(survivor), ..facts() }),
        PlacementError::PersonMerged(survivor)
    );
    assert_eq!(
        refused(ProposalFacts { person: PersonFact::Active { consent: false, category: true }, ..facts() }),
        PlacementError::NoConsent
    );
    assert_eq!(
        refused(ProposalFacts { person: PersonFact::Active { consent: true, category: false }, ..facts() }),
        PlacementError::NotEligible
    );
    for rule in [PlacementError::OfferClosed, PlacementError::NoConsent, PlacementError::NotEligible] {
        assert_eq!(rule.kind(), RejectionKind::FailedPrecondition);
        assert!(rule.rule().is_some(), "{rule}");
    }
}

#[test]
fn the_agreed_start_lies_within_the_offers_window() {
    let history = vec![propose(), PlacementCommand::Accept(at())];
    let sign_for =
        |start_on| PlacementCommand::SignAgreement { signed_on: d(2026, 12, 1), start_on, reference: "AG-1".into() };
    let window = PlacementError::OutsideStartWindow(d(2027, 1, 1), d(2027, 2, 1));
    assert_eq!(when(&given::<Placement>(&history), &sign_for(d(2026, 12, 31))).refused(), window);
    assert_eq!(when(&given::<Placement>(&history), &sign_for(d(2027, 2, 2))).refused(), window);
    when(&given::<Placement>(&history), &sign_for(d(2027, 1, 1))).event();
    when(&given::<Placement>(&history), &sign_for(d(2027, 2, 1))).event();
}

#[test]
fn every_broken_rule_is_named_and_the_names_are_the_contract() {
    let day = d(2027, 1, 1);
    let named = [
        (PlacementError::Transition("proposed", "started"), "PLACEMENT_STATE"),
        (PlacementError::NotDue(1), "MONTH_NOT_DUE"),
        (PlacementError::AlreadyConfirmed(1), "PRESENCE_ALREADY_CONFIRMED"),
        (PlacementError::PresenceNotConfirmed(1), "PRESENCE_NOT_CONFIRMED"),
        (PlacementError::AlreadyPaid(1), "MONTH_ALREADY_PAID"),
        (PlacementError::AboveDue { due: 1 }, "PAYMENT_ABOVE_DUE"),
        (PlacementError::ClaimDecided, "TRAVEL_CLAIM_DECIDED"),
        (PlacementError::OverCap { remaining: 1 }, "TRAVEL_OVER_CAP"),
        (PlacementError::AboveClaim, "TRAVEL_ABOVE_CLAIM"),
        (PlacementError::ClaimNotApproved, "TRAVEL_CLAIM_NOT_APPROVED"),
        (PlacementError::ClaimPaid, "TRAVEL_CLAIM_PAID"),
        (PlacementError::TermNotOver(day), "TERM_NOT_OVER"),
        (PlacementError::OutsideTerm(day, day), "OUTSIDE_TERM"),
        (PlacementError::BeforeSignature(day), "START_BEFORE_SIGNATURE"),
        (PlacementError::OutcomeRecorded, "OUTCOME_RECORDED"),
        (PlacementError::FollowUpNotYet(day), "FOLLOW_UP_NOT_YET"),
        (PlacementError::OfferClosed, "OFFER_CLOSED"),
        (PlacementError::HostNotActive, "HOST_SUSPENDED"),
        (PlacementError::PersonUnknown, "PERSON_UNKNOWN"),
        (PlacementError::PersonErased, "PERSON_ERASED"),
        (PlacementError::PersonMerged(Uuid::nil()), "PERSON_MERGED"),
        (PlacementError::NoConsent, "PROGRAMME_CONSENT"),
        (PlacementError::NotEligible, "CATEGORY"),
        (PlacementError::OutsideStartWindow(day, day), "START_WINDOW"),
    ];
    for (e, name) in named {
        assert_eq!(e.kind(), RejectionKind::FailedPrecondition, "{e}");
        assert_eq!(e.rule(), Some(name), "{e}");
    }
    // Not broken rules: not found, already there, bad amounts.
    for e in [
        PlacementError::AlreadyExists,
        PlacementError::NotFound,
        PlacementError::NotHost,
        PlacementError::Currency("MDL".into()),
        PlacementError::NotPositive,
        PlacementError::NoSuchClaim,
        PlacementError::ClaimExists,
    ] {
        assert_ne!(e.kind(), RejectionKind::FailedPrecondition, "{e}");
        assert_eq!(e.rule(), None, "{e}");
    }
}

#[test]
fn proposals_try_the_free_places_first_each_from_its_own_point() {
    assert_eq!(slot_order(5, &[2, 4], 0), [1, 3, 5, 2, 4]);
    assert_eq!(slot_order(5, &[2, 4], 1), [3, 5, 1, 4, 2]);
    assert_eq!(slot_order(5, &[2, 4], 5), [5, 1, 3, 4, 2]);
    assert_eq!(slot_order(3, &[1, 2, 3], 7), [2, 3, 1]);
    assert_eq!(slot_order(3, &[], 7), [2, 3, 1]);
    assert_eq!(slot_order(0, &[], 7), Vec::<u32>::new());
    // Every place once, whatever the seed.
    for seed in 0..20 {
        let mut all = slot_order(7, &[3, 9], seed);
        all.sort_unstable();
        assert_eq!(all, [1, 2, 3, 4, 5, 6, 7]);
    }
}
