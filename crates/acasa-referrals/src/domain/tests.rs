//! Given/when/then tests of the partner and referral aggregates and of their
//! event codecs. Pure: no I/O, every time is fixed.

use super::*;
use crate::codec::names;
use acasa_domain::testing;
use acasa_domain::{Codec, Plain};
use acasa_domain::{EncodedEvent, EventCodec};
use acasa_proto::Message;
use acasa_proto::r#type::v1::Money;

// ------------------------------------------------------------------ fixtures

/// The time referrals are sent in these tests.
fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

/// `t0` plus `h` hours.
fn at(h: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::hours(h)
}

/// The addressed partner's response time.
const RESPONSE_TIME: Duration = Duration::from_secs(48 * 3600);

fn person_id() -> Uuid {
    Uuid::from_u128(0x1)
}

fn referral_id() -> Uuid {
    Uuid::from_u128(0x2)
}

/// The partner that refers (in most tests).
fn referrer_id() -> Uuid {
    Uuid::from_u128(0xA)
}

/// The partner addressed.
fn addressee_id() -> Uuid {
    Uuid::from_u128(0xB)
}

/// A partner that has nothing to do with the referral.
fn stranger_id() -> Uuid {
    Uuid::from_u128(0xC)
}

/// The partner a referral is re-referred to.
fn next_partner_id() -> Uuid {
    Uuid::from_u128(0xD)
}

fn addressee() -> Actor {
    Actor::Partner(addressee_id())
}

fn referrer() -> Actor {
    Actor::Partner(referrer_id())
}

fn stranger() -> Actor {
    Actor::Partner(stranger_id())
}

fn staff() -> Actor {
    Actor::Staff("caseworker-7".into())
}

fn mdl(amount_minor: i64) -> Money {
    Money { amount_minor, currency: "MDL".into() }
}

fn offer(kind: ServiceKind) -> pb::PartnerService {
    pb::PartnerService { kind: kind.into(), description: format!("{kind:?}"), ..Default::default() }
}

fn loan_offer() -> pb::PartnerService {
    pb::PartnerService {
        kind: ServiceKind::Loan.into(),
        description: "Micro-loans for returnees".into(),
        min_amount: Some(mdl(1_000_000)),
        max_amount: Some(mdl(50_000_000)),
    }
}

fn registration() -> pb::PartnerRegistered {
    pb::PartnerRegistered {
        kind: PartnerKind::MicrofinanceInstitution.into(),
        name: "Microinvest".into(),
        idno: "1002600012345".into(),
        districts: vec!["Cahul".into(), "Chișinău".into()],
        contact: Some(pb::PartnerContact {
            email: "credit@microinvest.md".into(),
            phone: "+37322123456".into(),
            address: "str. Ștefan cel Mare 1".into(),
        }),
        services: vec![loan_offer(), offer(ServiceKind::Training)],
        response_time: Some(proto_duration(RESPONSE_TIME)),
        registered_at: Some(timestamp(t0() - chrono::Duration::days(30))),
    }
}

fn register() -> PartnerCommand {
    let new = NewPartner {
        kind: PartnerKind::MicrofinanceInstitution,
        name: "Microinvest".into(),
        idno: "1002600012345".into(),
        districts: vec!["Cahul".into(), "Chișinău".into()],
        contact: pb::PartnerContact {
            email: "credit@microinvest.md".into(),
            phone: "+37322123456".into(),
            address: "str. Ștefan cel Mare 1".into(),
        },
        services: vec![loan_offer(), offer(ServiceKind::Training)],
        response_time: RESPONSE_TIME,
    };
    PartnerCommand::Register(Box::new(new), t0() - chrono::Duration::days(30))
}

fn suspend() -> PartnerCommand {
    PartnerCommand::Suspend { reason: "audit".into() }
}

/// A partner after `commands`, each of which must be accepted.
fn given_partner(commands: &[PartnerCommand]) -> Partner {
    testing::given(commands)
}

/// The addressed partner, registered and active (loans and training, 48 h).
fn active_partner() -> Partner {
    given_partner(&[register()])
}

fn loan_need() -> types::Need {
    types::Need { service: ServiceKind::Loan.into(), requested_amount: Some(mdl(20_000_000)) }
}

fn training_need() -> types::Need {
    types::Need { service: ServiceKind::Training.into(), requested_amount: None }
}

/// A valid referral of the person to the addressee by the referring partner,
/// for a loan.
fn new_referral() -> NewReferral {
    NewReferral {
        person_id: person_id(),
        partner: PartnerFact { id: addressee_id(), state: active_partner() },
        person: PersonFact::Active { consent: true },
        need: loan_need(),
        district: "Cahul".into(),
        referrer: referrer(),
        sealed_profile: vec![0xDE, 0xAD, 0xBE, 0xEF],
        re_referred_from: None,
    }
}

fn create_with(change: impl FnOnce(&mut NewReferral)) -> ReferralCommand {
    let mut new = new_referral();
    change(&mut new);
    ReferralCommand::Create(Box::new(new), t0())
}

fn create() -> ReferralCommand {
    create_with(|_| {})
}

fn accept(by: Actor) -> ReferralCommand {
    ReferralCommand::Accept(by, at(1))
}

fn decline(by: Actor) -> ReferralCommand {
    ReferralCommand::Decline(by, DeclineReason::NoCapacity, "fully booked until June".into(), at(1))
}

fn progress(by: Actor) -> ReferralCommand {
    ReferralCommand::ReportProgress(by, ProgressStage::Contacted, at(2))
}

fn loan_disbursed() -> types::Outcome {
    types::Outcome { kind: Some(types::outcome::Kind::LoanDisbursed(mdl(15_000_000))) }
}

fn service_delivered(service: ServiceKind) -> types::Outcome {
    types::Outcome {
        kind: Some(types::outcome::Kind::ServiceDelivered(types::ServiceDelivered { service: service.into() })),
    }
}

fn not_delivered() -> types::Outcome {
    types::Outcome {
        kind: Some(types::outcome::Kind::NotDelivered(types::NotDelivered {
            reason: DeclineReason::NotEligible.into(),
        })),
    }
}

fn outcome(by: Actor) -> ReferralCommand {
    ReferralCommand::RecordOutcome(by, loan_disbursed(), at(3))
}

fn close(by: Actor) -> ReferralCommand {
    ReferralCommand::Close(by, at(4))
}

fn withdraw(by: Actor) -> ReferralCommand {
    ReferralCommand::Withdraw(by, WithdrawReason::PersonRequest, at(2))
}

fn rerefer(by: Actor) -> ReferralCommand {
    ReferralCommand::ReRefer {
        by,
        new_referral_id: Uuid::from_u128(0x3),
        new_partner_id: next_partner_id(),
        now: at(5),
    }
}

/// The deadline worker's command, well after the 48 h response time.
fn breach() -> ReferralCommand {
    ReferralCommand::RecordSlaBreach(at(72))
}

/// A referral after `commands`, each of which must record something.
fn given(commands: &[ReferralCommand]) -> Referral {
    // Every history command must record something here: a no-op in a
    // history would hide a missing transition.
    for (i, c) in commands.iter().enumerate() {
        let before = testing::given::<Referral>(&commands[..i]);
        assert!(!testing::when(&before, c).events().is_empty(), "the history command {c:?} recorded nothing");
    }
    testing::given(commands)
}

/// The one event a command recorded.
fn then_one(result: Result<Vec<ReferralEvent>, ReferralError>) -> ReferralEvent {
    let mut events = result.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    events.remove(0)
}

/// The command was refused with `error`, of `kind`.
#[track_caller]
fn then_refused(result: Result<Vec<ReferralEvent>, ReferralError>, error: ReferralError, kind: RejectionKind) {
    assert_eq!(result, Err(error));
    assert_eq!(result.unwrap_err().kind(), kind);
}

#[track_caller]
fn then_partner_refused(result: Result<Vec<PartnerEvent>, PartnerError>, error: PartnerError, kind: RejectionKind) {
    assert_eq!(result, Err(error));
    assert_eq!(result.unwrap_err().kind(), kind);
}

/// A command issued by an actor.
type ByActor = fn(Actor) -> ReferralCommand;

fn transition(action: &'static str, status: &'static str) -> ReferralError {
    ReferralError::Transition { action, status }
}

// ------------------------------------------------------------------ helpers

#[test]
fn timestamps_and_durations_convert_both_ways() {
    let t = DateTime::from_timestamp(1_800_000_123, 456_789_000).unwrap();
    assert_eq!(timestamp(t), Timestamp { seconds: 1_800_000_123, nanos: 456_789_000 });
    assert_eq!(time_of(Some(&timestamp(t))), t);
    assert_eq!(time_of(None), DateTime::<Utc>::default(), "absent is the epoch");
    assert_eq!(time_of(Some(&Timestamp { seconds: i64::MAX, nanos: 0 })), DateTime::<Utc>::default());
    assert_eq!(time_of(Some(&Timestamp { seconds: 5, nanos: -1 })), DateTime::from_timestamp(5, 0).unwrap());

    let d = Duration::new(172_800, 250_000_000);
    assert_eq!(proto_duration(d), prost_types::Duration { seconds: 172_800, nanos: 250_000_000 });
    assert_eq!(duration_of(Some(&proto_duration(d))), d);
    assert_eq!(duration_of(None), Duration::ZERO, "absent is zero");
    assert_eq!(duration_of(Some(&prost_types::Duration { seconds: -5, nanos: -3 })), Duration::ZERO);
    assert_eq!(proto_duration(Duration::from_secs(u64::MAX)).seconds, i64::MAX, "saturates");
}

#[test]
fn aggregate_kinds_name_the_subjects() {
    assert_eq!(Partner::KIND, "partner");
    assert_eq!(Referral::KIND, "referral");
}

// ------------------------------------------------------------------ partners

#[test]
fn a_partner_is_registered_with_its_catalogue_and_response_time() {
    let p = given_partner(&[]);
    assert!(!p.exists());
    assert_eq!(p.decide(&register()), Ok(vec![PartnerEvent::Registered(registration())]));

    let p = active_partner();
    assert!(p.exists() && p.registered && !p.suspended);
    assert_eq!(p.kind, PartnerKind::MicrofinanceInstitution);
    assert_eq!(p.services, vec![ServiceKind::Loan, ServiceKind::Training]);
    assert_eq!(p.response_time, RESPONSE_TIME);
    assert!(p.offers(ServiceKind::Loan) && p.offers(ServiceKind::Training));
    assert!(!p.offers(ServiceKind::Legal));
}

#[test]
fn registering_a_partner_twice_is_refused() {
    for history in
        [vec![register()], vec![register(), suspend()], vec![register(), suspend(), PartnerCommand::Reactivate]]
    {
        let p = given_partner(&history);
        then_partner_refused(p.decide(&register()), PartnerError::AlreadyRegistered, RejectionKind::AlreadyExists);
    }
}

#[test]
fn partner_commands_need_a_registered_partner() {
    let p = given_partner(&[]);
    for c in [
        PartnerCommand::SetServices(vec![offer(ServiceKind::Legal)]),
        PartnerCommand::SetResponseTime(Duration::from_secs(3600)),
        suspend(),
        PartnerCommand::Reactivate,
    ] {
        then_partner_refused(p.decide(&c), PartnerError::NotFound, RejectionKind::NotFound);
    }
}

#[test]
fn the_catalogue_is_replaced() {
    let p = active_partner();
    let services = vec![offer(ServiceKind::Legal), offer(ServiceKind::Taxation)];
    let set = PartnerCommand::SetServices(services.clone());
    assert_eq!(
        p.decide(&set),
        Ok(vec![PartnerEvent::ServicesSet(pb::PartnerServicesSet { services: services.clone() })])
    );
    let p = given_partner(&[register(), set]);
    assert_eq!(p.services, vec![ServiceKind::Legal, ServiceKind::Taxation]);
    assert!(!p.offers(ServiceKind::Loan), "the old catalogue is gone");

    // An empty catalogue offers nothing.
    let p = given_partner(&[register(), PartnerCommand::SetServices(vec![])]);
    assert!(p.services.is_empty() && !p.offers(ServiceKind::Loan));
}

#[test]
fn unknown_service_kinds_in_events_are_ignored() {
    let mut p = active_partner();
    let future = pb::PartnerService { kind: 99, ..Default::default() };
    p.evolve(&PartnerEvent::ServicesSet(pb::PartnerServicesSet { services: vec![future, offer(ServiceKind::Legal)] }));
    assert_eq!(p.services, vec![ServiceKind::Legal]);

    let mut registered = registration();
    registered.kind = 77;
    registered.services.push(pb::PartnerService { kind: 1234, ..Default::default() });
    registered.response_time = None;
    let mut p = Partner::default();
    p.evolve(&PartnerEvent::Registered(registered));
    assert_eq!(p.kind, PartnerKind::Unspecified, "an unknown kind evolves to the default");
    assert_eq!(p.services, vec![ServiceKind::Loan, ServiceKind::Training]);
    assert_eq!(p.response_time, Duration::ZERO);
}

#[test]
fn the_response_time_changes_and_setting_the_same_one_records_nothing() {
    let p = active_partner();
    assert_eq!(p.decide(&PartnerCommand::SetResponseTime(RESPONSE_TIME)), Ok(vec![]));
    let d = Duration::new(24 * 3600, 500_000_000);
    assert_eq!(
        p.decide(&PartnerCommand::SetResponseTime(d)),
        Ok(vec![PartnerEvent::ResponseTimeSet(pb::PartnerResponseTimeSet {
            response_time: Some(prost_types::Duration { seconds: 86_400, nanos: 500_000_000 }),
        })])
    );
    let p = given_partner(&[register(), PartnerCommand::SetResponseTime(d)]);
    assert_eq!(p.response_time, d);
    assert_eq!(p.decide(&PartnerCommand::SetResponseTime(d)), Ok(vec![]));
}

#[test]
fn a_partner_is_suspended_and_reactivated_and_repeating_either_is_a_no_op() {
    let p = active_partner();
    assert_eq!(p.decide(&PartnerCommand::Reactivate), Ok(vec![]), "reactivating an active partner");
    assert_eq!(
        p.decide(&suspend()),
        Ok(vec![PartnerEvent::Suspended(pb::PartnerSuspended { reason: "audit".into() })])
    );

    let p = given_partner(&[register(), suspend()]);
    assert!(p.suspended && p.exists());
    assert_eq!(p.decide(&suspend()), Ok(vec![]), "suspending a suspended partner");
    assert_eq!(p.decide(&PartnerCommand::Suspend { reason: "another".into() }), Ok(vec![]));
    assert_eq!(p.decide(&PartnerCommand::Reactivate), Ok(vec![PartnerEvent::Reactivated(pb::PartnerReactivated {})]));

    let p = given_partner(&[register(), suspend(), PartnerCommand::Reactivate]);
    assert!(!p.suspended);
    assert_eq!(p.decide(&PartnerCommand::Reactivate), Ok(vec![]));
    let p = given_partner(&[register(), suspend(), PartnerCommand::Reactivate, suspend()]);
    assert!(p.suspended, "suspended again");
}

#[test]
fn a_suspended_partner_keeps_its_catalogue_and_can_still_change_it() {
    let p = given_partner(&[register(), suspend()]);
    assert_eq!(p.services, vec![ServiceKind::Loan, ServiceKind::Training]);
    assert_eq!(p.response_time, RESPONSE_TIME);
    let p = given_partner(&[
        register(),
        suspend(),
        PartnerCommand::SetServices(vec![offer(ServiceKind::Accounting)]),
        PartnerCommand::SetResponseTime(Duration::from_secs(3600)),
    ]);
    assert!(p.suspended);
    assert_eq!(p.services, vec![ServiceKind::Accounting]);
    assert_eq!(p.response_time, Duration::from_secs(3600));
}

#[test]
fn partner_rejections_have_kinds_and_no_field() {
    for (error, kind) in [
        (PartnerError::AlreadyRegistered, RejectionKind::AlreadyExists),
        (PartnerError::NotFound, RejectionKind::NotFound),
    ] {
        assert_eq!(error.kind(), kind, "{error}");
        assert_eq!(error.field(), None);
    }
}

// ------------------------------------------------------------------ referral creation

#[test]
fn a_referral_is_created_with_everything_the_partner_needs() {
    let r = given(&[]);
    assert!(!r.exists());
    let ReferralEvent::Created(c) = then_one(r.decide(&create())) else { panic!("not a creation") };
    assert_eq!(
        c,
        pb::ReferralCreated {
            person_id: person_id().to_string(),
            partner_id: addressee_id().to_string(),
            partner_kind: PartnerKind::MicrofinanceInstitution.into(),
            need: Some(loan_need()),
            district: "Cahul".into(),
            referrer: Some(pb::Referrer { kind: Some(pb::referrer::Kind::PartnerId(referrer_id().to_string())) }),
            profile: Some(pb::SealedProfile { ciphertext: vec![0xDE, 0xAD, 0xBE, 0xEF] }),
            created_at: Some(timestamp(t0())),
            due_at: Some(timestamp(at(48))),
            re_referred_from: String::new(),
        }
    );
}

#[test]
fn a_created_referral_is_sent_and_due_after_the_partners_response_time() {
    let r = given(&[create()]);
    assert!(r.exists());
    assert_eq!(r.status, Status::Sent);
    assert_eq!(r.person_id, person_id());
    assert_eq!(r.partner_id, addressee_id());
    assert_eq!(r.service, ServiceKind::Loan);
    assert_eq!(r.referrer, Some(referrer()));
    assert_eq!(r.due_at, at(48));
    assert!(!r.breached);
}

#[test]
fn due_at_follows_the_partners_current_response_time_to_the_nanosecond() {
    let d = Duration::new(3 * 3600, 250_000_000);
    let partner = given_partner(&[register(), PartnerCommand::SetResponseTime(d)]);
    let r = given(&[create_with(|n| n.partner.state = partner)]);
    assert_eq!(r.due_at, t0() + chrono::Duration::from_std(d).unwrap());
    assert_eq!(r.due_at.timestamp_subsec_nanos(), 250_000_000);

    // A partner without a response time must answer at once.
    let partner = given_partner(&[register(), PartnerCommand::SetResponseTime(Duration::ZERO)]);
    let r = given(&[create_with(|n| n.partner.state = partner)]);
    assert_eq!(r.due_at, t0());
}

#[test]
fn a_huge_response_time_does_not_panic() {
    for response_time in [Duration::from_secs(u64::MAX), Duration::from_secs(i64::MAX as u64), Duration::MAX] {
        let partner = given_partner(&[register(), PartnerCommand::SetResponseTime(response_time)]);
        let decided = std::panic::catch_unwind(|| {
            Referral::default().decide(&create_with(|n| n.partner.state = partner.clone())).map(|_| ())
        });
        assert!(decided.is_ok(), "deciding a referral to a partner with response time {response_time:?} panicked");
    }
}

#[test]
fn staff_can_refer_and_re_referrals_name_their_origin() {
    let c = create_with(|n| {
        n.referrer = staff();
        n.re_referred_from = Some(referral_id());
    });
    let ReferralEvent::Created(created) = then_one(Referral::default().decide(&c)) else { panic!("not a creation") };
    assert_eq!(
        created.referrer,
        Some(pb::Referrer { kind: Some(pb::referrer::Kind::StaffSubject("caseworker-7".into())) })
    );
    assert_eq!(created.re_referred_from, referral_id().to_string());
    let r = given(&[c]);
    assert_eq!(r.referrer, Some(staff()));
}

#[test]
fn only_a_known_active_person_who_consented_can_be_referred() {
    let survivor = Uuid::from_u128(0x99);
    for (person, error, kind) in [
        (PersonFact::Unknown, ReferralError::UnknownPerson, RejectionKind::NotFound),
        (PersonFact::Active { consent: false }, ReferralError::NoConsent, RejectionKind::FailedPrecondition),
        (PersonFact::Merged(survivor), ReferralError::PersonMerged(survivor), RejectionKind::FailedPrecondition),
        (PersonFact::Erased, ReferralError::PersonErased, RejectionKind::FailedPrecondition),
    ] {
        then_refused(Referral::default().decide(&create_with(|n| n.person = person)), error, kind);
    }
    assert!(ReferralError::PersonMerged(survivor).to_string().contains(&survivor.to_string()));
}

#[test]
fn only_a_registered_partner_can_be_addressed() {
    then_refused(
        Referral::default().decide(&create_with(|n| n.partner.state = Partner::default())),
        ReferralError::UnknownPartner,
        RejectionKind::NotFound,
    );
}

#[test]
fn a_suspended_partner_cannot_be_addressed_until_reactivated() {
    let suspended = given_partner(&[register(), suspend()]);
    then_refused(
        Referral::default().decide(&create_with(|n| n.partner.state = suspended)),
        ReferralError::PartnerSuspended,
        RejectionKind::FailedPrecondition,
    );
    let reactivated = given_partner(&[register(), suspend(), PartnerCommand::Reactivate]);
    assert_eq!(given(&[create_with(|n| n.partner.state = reactivated)]).status, Status::Sent);
}

#[test]
fn the_partner_must_offer_the_service_needed() {
    let legal = types::Need { service: ServiceKind::Legal.into(), requested_amount: None };
    then_refused(
        Referral::default().decide(&create_with(|n| n.need = legal.clone())),
        ReferralError::ServiceNotOffered,
        RejectionKind::FailedPrecondition,
    );
    // An unknown or unspecified service is offered by no one.
    for service in [0, 999] {
        let need = types::Need { service, requested_amount: None };
        then_refused(
            Referral::default().decide(&create_with(|n| n.need = need)),
            ReferralError::ServiceNotOffered,
            RejectionKind::FailedPrecondition,
        );
    }
    // Once the catalogue offers it, the referral goes.
    let partner = given_partner(&[register(), PartnerCommand::SetServices(vec![offer(ServiceKind::Legal)])]);
    let r = given(&[create_with(|n| {
        n.need = legal;
        n.partner.state = partner.clone();
    })]);
    assert_eq!(r.service, ServiceKind::Legal);
    // ... and no longer for what it dropped.
    then_refused(
        Referral::default().decide(&create_with(|n| n.partner.state = partner)),
        ReferralError::ServiceNotOffered,
        RejectionKind::FailedPrecondition,
    );
}

#[test]
fn a_partner_cannot_refer_to_itself() {
    then_refused(
        Referral::default().decide(&create_with(|n| n.referrer = addressee())),
        ReferralError::SelfReferral,
        RejectionKind::FailedPrecondition,
    );
    // Any other partner, or staff, may.
    for by in [referrer(), stranger(), staff(), Actor::Staff(addressee_id().to_string())] {
        assert_eq!(given(&[create_with(|n| n.referrer = by.clone())]).referrer, Some(by));
    }
}

#[test]
fn a_referral_is_created_once() {
    for history in [vec![create()], vec![create(), decline(addressee()), close(staff())]] {
        then_refused(given(&history).decide(&create()), ReferralError::AlreadyExists, RejectionKind::AlreadyExists);
    }
}

#[test]
fn commands_need_an_existing_referral() {
    let r = Referral::default();
    for c in [
        accept(addressee()),
        decline(addressee()),
        progress(addressee()),
        outcome(addressee()),
        close(staff()),
        withdraw(staff()),
        rerefer(staff()),
        breach(),
    ] {
        then_refused(r.decide(&c), ReferralError::NotFound, RejectionKind::NotFound);
    }
}

// ------------------------------------------------------------------ answering

#[test]
fn the_addressee_accepts_a_sent_referral() {
    let r = given(&[create()]);
    assert_eq!(
        then_one(r.decide(&accept(addressee()))),
        ReferralEvent::Accepted(pb::ReferralAccepted { at: Some(timestamp(at(1))) })
    );
    assert_eq!(given(&[create(), accept(addressee())]).status, Status::Accepted);
}

#[test]
fn the_addressee_declines_a_sent_referral_with_a_reason() {
    let r = given(&[create()]);
    assert_eq!(
        then_one(r.decide(&decline(addressee()))),
        ReferralEvent::Declined(pb::ReferralDeclined {
            reason: DeclineReason::NoCapacity.into(),
            note: "fully booked until June".into(),
            at: Some(timestamp(at(1))),
        })
    );
    assert_eq!(given(&[create(), decline(addressee())]).status, Status::Declined);
}

#[test]
fn a_referral_is_answered_once() {
    for (history, status) in
        [(vec![create(), accept(addressee())], "accepted"), (vec![create(), decline(addressee())], "declined")]
    {
        let r = given(&history);
        let kind = RejectionKind::FailedPrecondition;
        then_refused(r.decide(&accept(addressee())), transition("accept", status), kind);
        then_refused(r.decide(&decline(addressee())), transition("decline", status), kind);
    }
}

#[test]
fn only_the_addressee_answers_and_works_on_a_referral() {
    let sent = given(&[create()]);
    let accepted = given(&[create(), accept(addressee())]);
    for (r, c, action) in [
        (&sent, accept as ByActor, "accept"),
        (&sent, decline, "decline"),
        (&accepted, progress, "report progress on"),
        (&accepted, outcome, "record the outcome of"),
    ] {
        assert_eq!(r.decide(&c(addressee())).map(|e| e.len()), Ok(1), "{action}");
        for by in [referrer(), staff(), Actor::Staff(addressee_id().to_string())] {
            then_refused(r.decide(&c(by)), ReferralError::OnlyAddressee(action), RejectionKind::FailedPrecondition);
        }
        then_refused(r.decide(&c(stranger())), ReferralError::NotVisible, RejectionKind::NotFound);
    }
}

#[test]
fn a_partner_accepts_late_after_an_sla_breach_and_the_breach_stays_on_record() {
    let r = given(&[create(), breach()]);
    assert!(r.breached);
    assert_eq!(r.status, Status::Sent);
    let ReferralEvent::Accepted(_) = then_one(r.decide(&ReferralCommand::Accept(addressee(), at(100)))) else {
        panic!("not an acceptance")
    };
    let r = given(&[create(), breach(), accept(addressee())]);
    assert_eq!(r.status, Status::Accepted);
    assert!(r.breached);
    // Declining late is allowed as well.
    assert_eq!(given(&[create(), breach(), decline(addressee())]).status, Status::Declined);
}

// ------------------------------------------------------------------ progress and outcome

#[test]
fn progress_is_reported_after_acceptance_each_stage_once() {
    let r = given(&[create(), accept(addressee())]);
    assert_eq!(
        then_one(r.decide(&progress(addressee()))),
        ReferralEvent::ProgressReported(pb::ReferralProgressReported {
            stage: ProgressStage::Contacted.into(),
            at: Some(timestamp(at(2))),
        })
    );
    let next = ReferralCommand::ReportProgress(addressee(), ProgressStage::UnderAssessment, at(3));
    let r = given(&[create(), accept(addressee()), progress(addressee()), next.clone()]);
    assert_eq!(r.status, Status::InProgress);
    // A stage reported again is refused: each is one fsynced commit and one
    // feed message, and the history stays bounded.
    assert_eq!(r.decide(&next), Err(ReferralError::StageReported(ProgressStage::UnderAssessment)));
    assert_eq!(r.decide(&progress(addressee())), Err(ReferralError::StageReported(ProgressStage::Contacted)));
    assert_eq!(ReferralError::StageReported(ProgressStage::Contacted).kind(), RejectionKind::FailedPrecondition);
}

#[test]
fn progress_and_outcome_need_an_accepted_referral() {
    for (history, status) in [
        (vec![create()], "sent"),
        (vec![create(), breach()], "sent"),
        (vec![create(), decline(addressee())], "declined"),
        (vec![create(), withdraw(referrer())], "withdrawn"),
        (vec![create(), accept(addressee()), outcome(addressee())], "outcome recorded"),
        (vec![create(), accept(addressee()), outcome(addressee()), close(staff())], "closed"),
        (vec![create(), rerefer(referrer())], "re-referred"),
    ] {
        let r = given(&history);
        let kind = RejectionKind::FailedPrecondition;
        then_refused(r.decide(&progress(addressee())), transition("report progress on", status), kind);
        then_refused(r.decide(&outcome(addressee())), transition("record the outcome of", status), kind);
    }
}

#[test]
fn the_outcome_is_recorded_after_acceptance_or_progress() {
    for history in [vec![create(), accept(addressee())], vec![create(), accept(addressee()), progress(addressee())]] {
        let r = given(&history);
        for o in [loan_disbursed(), service_delivered(ServiceKind::Loan), not_delivered()] {
            assert_eq!(
                then_one(r.decide(&ReferralCommand::RecordOutcome(addressee(), o.clone(), at(3)))),
                ReferralEvent::OutcomeRecorded(pb::ReferralOutcomeRecorded {
                    outcome: Some(o),
                    at: Some(timestamp(at(3)))
                })
            );
        }
        let mut done = history;
        done.push(outcome(addressee()));
        assert_eq!(given(&done).status, Status::OutcomeRecorded);
    }
}

#[test]
fn a_loan_disbursement_is_an_outcome_of_a_loan_referral_only() {
    let training = create_with(|n| n.need = training_need());
    let r = given(&[training.clone(), accept(addressee())]);
    assert_eq!(r.service, ServiceKind::Training);
    then_refused(
        r.decide(&outcome(addressee())),
        ReferralError::LoanOutcomeForOtherNeed,
        RejectionKind::InvalidArgument,
    );
    assert_eq!(r.decide(&outcome(addressee())).unwrap_err().field(), Some("outcome.loan_disbursed"));
    // Other outcomes are fine for any need.
    for o in [service_delivered(ServiceKind::Training), not_delivered()] {
        assert_eq!(r.decide(&ReferralCommand::RecordOutcome(addressee(), o, at(3))).map(|e| e.len()), Ok(1));
    }
    // The status is checked before the outcome.
    then_refused(
        given(&[training]).decide(&outcome(addressee())),
        transition("record the outcome of", "sent"),
        RejectionKind::FailedPrecondition,
    );
}

// ------------------------------------------------------------------ closing

#[test]
fn a_referral_is_closed_after_an_outcome_or_a_decline_by_addressee_referrer_or_staff() {
    let finished = [
        vec![create(), accept(addressee()), outcome(addressee())],
        vec![create(), accept(addressee()), progress(addressee()), outcome(addressee())],
        vec![create(), decline(addressee())],
    ];
    for history in finished {
        let r = given(&history);
        for by in [addressee(), referrer(), staff(), Actor::Staff("administrator".into())] {
            assert_eq!(
                then_one(r.decide(&close(by))),
                ReferralEvent::Closed(pb::ReferralClosed { at: Some(timestamp(at(4))) })
            );
        }
        then_refused(r.decide(&close(stranger())), ReferralError::NotVisible, RejectionKind::NotFound);
        let mut closed = history;
        closed.push(close(referrer()));
        assert_eq!(given(&closed).status, Status::Closed);
    }
}

#[test]
fn a_referral_without_outcome_or_decline_cannot_be_closed() {
    for (history, status) in [
        (vec![create()], "sent"),
        (vec![create(), accept(addressee())], "accepted"),
        (vec![create(), accept(addressee()), progress(addressee())], "in progress"),
        (vec![create(), withdraw(referrer())], "withdrawn"),
        (vec![create(), rerefer(referrer())], "re-referred"),
        (vec![create(), decline(addressee()), close(addressee())], "closed"),
    ] {
        then_refused(
            given(&history).decide(&close(staff())),
            transition("close", status),
            RejectionKind::FailedPrecondition,
        );
    }
}

// ------------------------------------------------------------------ withdrawing and re-referring

#[test]
fn the_referrer_or_staff_withdraws_an_open_referral() {
    let open = [
        vec![create()],
        vec![create(), breach()],
        vec![create(), accept(addressee())],
        vec![create(), accept(addressee()), progress(addressee())],
    ];
    for history in open {
        let r = given(&history);
        for by in [referrer(), staff()] {
            assert_eq!(
                then_one(r.decide(&withdraw(by))),
                ReferralEvent::Withdrawn(pb::ReferralWithdrawn {
                    reason: WithdrawReason::PersonRequest.into(),
                    at: Some(timestamp(at(2))),
                })
            );
        }
        let mut withdrawn = history;
        withdrawn.push(withdraw(staff()));
        assert_eq!(given(&withdrawn).status, Status::Withdrawn);
    }
}

#[test]
fn a_finished_referral_cannot_be_withdrawn() {
    for (history, status) in [
        (vec![create(), accept(addressee()), outcome(addressee())], "outcome recorded"),
        (vec![create(), accept(addressee()), outcome(addressee()), close(staff())], "closed"),
        (vec![create(), decline(addressee())], "declined"),
        (vec![create(), withdraw(referrer())], "withdrawn"),
        (vec![create(), rerefer(referrer())], "re-referred"),
    ] {
        then_refused(
            given(&history).decide(&withdraw(referrer())),
            transition("withdraw", status),
            RejectionKind::FailedPrecondition,
        );
    }
}

#[test]
fn the_referrer_or_staff_re_refers_to_another_partner() {
    let re_referable = [
        vec![create()],
        vec![create(), breach()],
        vec![create(), decline(addressee())],
        vec![create(), withdraw(referrer())],
        vec![create(), accept(addressee()), withdraw(staff())],
    ];
    for history in re_referable {
        let r = given(&history);
        for by in [referrer(), staff()] {
            assert_eq!(
                then_one(r.decide(&rerefer(by))),
                ReferralEvent::ReReferred(pb::ReferralReReferred {
                    new_referral_id: Uuid::from_u128(0x3).to_string(),
                    new_partner_id: next_partner_id().to_string(),
                    at: Some(timestamp(at(5))),
                })
            );
        }
        // Never to the same partner.
        let same = ReferralCommand::ReRefer {
            by: referrer(),
            new_referral_id: Uuid::from_u128(0x3),
            new_partner_id: addressee_id(),
            now: at(5),
        };
        then_refused(r.decide(&same), ReferralError::SamePartner, RejectionKind::FailedPrecondition);
        let mut re_referred = history;
        re_referred.push(rerefer(referrer()));
        assert_eq!(given(&re_referred).status, Status::ReReferred);
    }
}

#[test]
fn accepted_or_finished_referrals_are_not_re_referred() {
    for (history, status) in [
        (vec![create(), accept(addressee())], "accepted"),
        (vec![create(), accept(addressee()), progress(addressee())], "in progress"),
        (vec![create(), accept(addressee()), outcome(addressee())], "outcome recorded"),
        (vec![create(), decline(addressee()), close(staff())], "closed"),
        (vec![create(), rerefer(referrer())], "re-referred"),
    ] {
        let r = given(&history);
        then_refused(r.decide(&rerefer(referrer())), transition("re-refer", status), RejectionKind::FailedPrecondition);
    }
}

#[test]
fn only_the_referrer_or_staff_withdraws_and_re_refers() {
    let r = given(&[create()]);
    for (c, action) in [(withdraw as ByActor, "withdraw"), (rerefer, "re-refer")] {
        then_refused(r.decide(&c(addressee())), ReferralError::OnlyReferrer(action), RejectionKind::FailedPrecondition);
        then_refused(r.decide(&c(stranger())), ReferralError::NotVisible, RejectionKind::NotFound);
        // Any staff member may, not only the one who referred.
        let by_staff = given(&[create_with(|n| n.referrer = staff())]);
        for by in [staff(), Actor::Staff("administrator".into())] {
            assert_eq!(by_staff.decide(&c(by)).map(|e| e.len()), Ok(1), "{action}");
        }
        // A partner that did not refer a staff referral cannot see it.
        then_refused(by_staff.decide(&c(referrer())), ReferralError::NotVisible, RejectionKind::NotFound);
    }
}

// ------------------------------------------------------------------ visibility

#[test]
fn a_referral_is_visible_to_staff_the_addressee_and_the_referring_partner_only() {
    let r = given(&[create()]);
    assert!(r.visible_to(&staff()));
    assert!(r.visible_to(&Actor::Staff("anyone".into())));
    assert!(r.visible_to(&addressee()));
    assert!(r.visible_to(&referrer()));
    assert!(!r.visible_to(&stranger()));
    let by_staff = given(&[create_with(|n| n.referrer = staff())]);
    assert!(by_staff.visible_to(&addressee()));
    assert!(!by_staff.visible_to(&referrer()));
}

#[test]
fn an_invisible_referral_reads_as_not_found() {
    assert_eq!(ReferralError::NotVisible.to_string(), ReferralError::NotFound.to_string());
    assert_eq!(ReferralError::NotVisible.kind(), ReferralError::NotFound.kind());
}

// ------------------------------------------------------------------ SLA

#[test]
fn a_breach_is_recorded_for_a_sent_referral_once_due() {
    let r = given(&[create()]);
    assert_eq!(r.decide(&ReferralCommand::RecordSlaBreach(at(47))), Err(ReferralError::NotDue), "before due");
    let just_before = at(48) - chrono::Duration::nanoseconds(1);
    assert_eq!(r.decide(&ReferralCommand::RecordSlaBreach(just_before)), Err(ReferralError::NotDue));
    for now in [at(48), at(72)] {
        assert_eq!(
            then_one(r.decide(&ReferralCommand::RecordSlaBreach(now))),
            ReferralEvent::SlaBreached(pb::ReferralSlaBreached {
                due_at: Some(timestamp(at(48))),
                recorded_at: Some(timestamp(now)),
            })
        );
    }
    let breached = given(&[create(), ReferralCommand::RecordSlaBreach(at(48))]);
    assert!(breached.breached);
    assert_eq!(breached.status, Status::Sent, "a breach does not change the status");
    assert_eq!(breached.due_at, at(48));
}

#[test]
fn a_breach_is_recorded_once_and_never_after_an_answer() {
    let cases = [
        vec![create(), breach()],
        vec![create(), accept(addressee())],
        vec![create(), accept(addressee()), progress(addressee())],
        vec![create(), accept(addressee()), outcome(addressee())],
        vec![create(), decline(addressee())],
        vec![create(), decline(addressee()), close(staff())],
        vec![create(), withdraw(referrer())],
        vec![create(), rerefer(referrer())],
        vec![create(), breach(), accept(addressee())],
    ];
    for history in cases {
        let r = given(&history);
        for now in [at(48), at(72), at(10_000)] {
            assert_eq!(r.decide(&ReferralCommand::RecordSlaBreach(now)), Ok(vec![]), "{history:?}");
        }
    }
}

// ------------------------------------------------------------------ the status × command matrix

/// What a command does in a status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Records its one event.
    Records,
    /// Refused: not from this status.
    Transition,
    /// Refused: the referral exists.
    Exists,
    /// Refused: no such referral.
    Missing,
    /// Accepted, records nothing.
    Nothing,
}

const Y: Expect = Expect::Records;
const T: Expect = Expect::Transition;
const AE: Expect = Expect::Exists;
const NF: Expect = Expect::Missing;
const NOOP: Expect = Expect::Nothing;

/// The matrix's columns: each command by the actor it is meant for, the
/// action its refusals name and the event it records.
fn columns() -> [(ReferralCommand, &'static str, &'static str); 9] {
    use names::*;
    [
        (create(), "create", REFERRAL_CREATED),
        (accept(addressee()), "accept", REFERRAL_ACCEPTED),
        (decline(addressee()), "decline", REFERRAL_DECLINED),
        (progress(addressee()), "report progress on", REFERRAL_PROGRESS_REPORTED),
        (outcome(addressee()), "record the outcome of", REFERRAL_OUTCOME_RECORDED),
        (close(addressee()), "close", REFERRAL_CLOSED),
        (withdraw(referrer()), "withdraw", REFERRAL_WITHDRAWN),
        (rerefer(referrer()), "re-refer", REFERRAL_RE_REFERRED),
        (breach(), "record a breach of", REFERRAL_SLA_BREACHED),
    ]
}

/// One row: a realistic history, the status (name, breached) it reaches and
/// what each column's command does then.
struct Row {
    label: &'static str,
    history: Vec<ReferralCommand>,
    status: Status,
    name: &'static str,
    breached: bool,
    expect: [Expect; 9],
}

fn rows() -> Vec<Row> {
    let a = addressee;
    let row = |label, history, status, name, breached, expect| Row { label, history, status, name, breached, expect };
    vec![
        //                                                                       create accept decl prog  outc  close with  rerf  sla
        row("not created", vec![], Status::None, "not created", false, [Y, NF, NF, NF, NF, NF, NF, NF, NF]),
        row("sent", vec![create()], Status::Sent, "sent", false, [AE, Y, Y, T, T, T, Y, Y, Y]),
        row("sent, breached", vec![create(), breach()], Status::Sent, "sent", true, [AE, Y, Y, T, T, T, Y, Y, NOOP]),
        row(
            "accepted",
            vec![create(), accept(a())],
            Status::Accepted,
            "accepted",
            false,
            [AE, T, T, Y, Y, T, Y, T, NOOP],
        ),
        row(
            "accepted late",
            vec![create(), breach(), accept(a())],
            Status::Accepted,
            "accepted",
            true,
            [AE, T, T, Y, Y, T, Y, T, NOOP],
        ),
        row(
            "in progress",
            vec![create(), accept(a()), ReferralCommand::ReportProgress(a(), ProgressStage::UnderAssessment, at(2))],
            Status::InProgress,
            "in progress",
            false,
            [AE, T, T, Y, Y, T, Y, T, NOOP],
        ),
        row(
            "outcome recorded after acceptance",
            vec![create(), accept(a()), outcome(a())],
            Status::OutcomeRecorded,
            "outcome recorded",
            false,
            [AE, T, T, T, T, Y, T, T, NOOP],
        ),
        row(
            "outcome recorded after progress",
            vec![create(), accept(a()), progress(a()), outcome(a())],
            Status::OutcomeRecorded,
            "outcome recorded",
            false,
            [AE, T, T, T, T, Y, T, T, NOOP],
        ),
        row(
            "closed after an outcome",
            vec![create(), accept(a()), progress(a()), outcome(a()), close(a())],
            Status::Closed,
            "closed",
            false,
            [AE, T, T, T, T, T, T, T, NOOP],
        ),
        row(
            "declined",
            vec![create(), decline(a())],
            Status::Declined,
            "declined",
            false,
            [AE, T, T, T, T, Y, T, Y, NOOP],
        ),
        row(
            "declined late",
            vec![create(), breach(), decline(a())],
            Status::Declined,
            "declined",
            true,
            [AE, T, T, T, T, Y, T, Y, NOOP],
        ),
        row(
            "closed after a decline",
            vec![create(), decline(a()), close(staff())],
            Status::Closed,
            "closed",
            false,
            [AE, T, T, T, T, T, T, T, NOOP],
        ),
        row(
            "withdrawn while sent",
            vec![create(), withdraw(referrer())],
            Status::Withdrawn,
            "withdrawn",
            false,
            [AE, T, T, T, T, T, T, Y, NOOP],
        ),
        row(
            "withdrawn while in progress",
            vec![create(), accept(a()), progress(a()), withdraw(staff())],
            Status::Withdrawn,
            "withdrawn",
            false,
            [AE, T, T, T, T, T, T, Y, NOOP],
        ),
        row(
            "re-referred while sent",
            vec![create(), rerefer(referrer())],
            Status::ReReferred,
            "re-referred",
            false,
            [AE, T, T, T, T, T, T, T, NOOP],
        ),
        row(
            "re-referred after a decline",
            vec![create(), decline(a()), rerefer(staff())],
            Status::ReReferred,
            "re-referred",
            false,
            [AE, T, T, T, T, T, T, T, NOOP],
        ),
        row(
            "re-referred after a withdrawal",
            vec![create(), withdraw(referrer()), rerefer(referrer())],
            Status::ReReferred,
            "re-referred",
            false,
            [AE, T, T, T, T, T, T, T, NOOP],
        ),
    ]
}

/// What the command's result should be, per `expect`.
fn expected(expect: Expect, action: &'static str, status: &'static str) -> Result<usize, ReferralError> {
    match expect {
        Expect::Records => Ok(1),
        Expect::Nothing => Ok(0),
        Expect::Transition => Err(transition(action, status)),
        Expect::Exists => Err(ReferralError::AlreadyExists),
        Expect::Missing => Err(ReferralError::NotFound),
    }
}

#[test]
fn every_command_in_every_status_matches_the_table() {
    let mut mismatches = Vec::new();
    for row in rows() {
        let r = given(&row.history);
        assert_eq!((r.status, r.breached), (row.status, row.breached), "{}: state", row.label);
        assert_eq!(r.status.name(), row.name, "{}", row.label);
        for ((command, action, event), expect) in columns().into_iter().zip(row.expect) {
            let result = r.decide(&command);
            let want = expected(expect, action, row.name);
            if result.as_ref().map(Vec::len) != want.as_ref().copied() {
                mismatches.push(format!("{} / {action}: expected {want:?}, got {result:?}", row.label));
                continue;
            }
            match &result {
                Ok(events) => {
                    for e in events {
                        assert_eq!(e.encode().type_name, event, "{} / {action}", row.label);
                    }
                }
                Err(error) => {
                    let kind = if expect == Expect::Exists {
                        RejectionKind::AlreadyExists
                    } else if expect == Expect::Missing {
                        RejectionKind::NotFound
                    } else {
                        RejectionKind::FailedPrecondition
                    };
                    assert_eq!(error.kind(), kind, "{} / {action}", row.label);
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
}

/// Who may issue a command: the actor check comes before the status check, so
/// in every status the wrong actor is refused the same way and a partner that
/// cannot see the referral learns nothing about its status.
#[test]
fn actor_guards_hold_in_every_status() {
    // Columns 1..=7 carry an actor.
    let with_actor: [(ByActor, usize); 7] =
        [(accept, 1), (decline, 2), (progress, 3), (outcome, 4), (close, 5), (withdraw, 6), (rerefer, 7)];
    let columns = columns();
    let mut mismatches = Vec::new();
    for row in rows() {
        let r = given(&row.history);
        for (command, column) in with_actor {
            let action = columns[column].1;
            let allowed = || expected(row.expect[column], action, row.name);
            for by in [addressee(), referrer(), staff(), stranger()] {
                let want = if !r.exists() {
                    Err(ReferralError::NotFound)
                } else if by == stranger() {
                    Err(ReferralError::NotVisible)
                } else {
                    match (column, &by) {
                        (1..=4, Actor::Partner(p)) if *p == addressee_id() => allowed(),
                        (1..=4, _) => Err(ReferralError::OnlyAddressee(action)),
                        (5, _) => allowed(),
                        (6 | 7, Actor::Partner(p)) if *p == addressee_id() => Err(ReferralError::OnlyReferrer(action)),
                        _ => allowed(),
                    }
                };
                let result = r.decide(&command(by.clone())).map(|e| e.len());
                if result != want {
                    mismatches.push(format!("{} / {action} by {by:?}: expected {want:?}, got {result:?}", row.label));
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
}

#[test]
fn rejection_kinds_and_fields_of_every_referral_error() {
    use RejectionKind::*;
    let precondition = [
        ReferralError::NoConsent,
        ReferralError::PersonMerged(Uuid::from_u128(7)),
        ReferralError::PersonErased,
        ReferralError::PartnerSuspended,
        ReferralError::ServiceNotOffered,
        ReferralError::SelfReferral,
        ReferralError::OnlyAddressee("accept"),
        ReferralError::OnlyReferrer("withdraw"),
        transition("close", "sent"),
        ReferralError::SamePartner,
    ];
    let not_found = [
        ReferralError::NotFound,
        ReferralError::UnknownPerson,
        ReferralError::UnknownPartner,
        ReferralError::NotVisible,
    ];
    for e in precondition {
        assert_eq!((e.kind(), e.field()), (FailedPrecondition, None), "{e:?}");
    }
    for e in not_found {
        assert_eq!((e.kind(), e.field()), (NotFound, None), "{e:?}");
    }
    assert_eq!((ReferralError::AlreadyExists.kind(), ReferralError::AlreadyExists.field()), (AlreadyExists, None));
    let loan = ReferralError::LoanOutcomeForOtherNeed;
    assert_eq!((loan.kind(), loan.field()), (InvalidArgument, Some("outcome.loan_disbursed")));
}

#[test]
fn refusals_say_what_and_why() {
    assert_eq!(transition("accept", "declined").to_string(), "cannot accept a referral that is declined");
    assert_eq!(
        ReferralError::OnlyAddressee("record the outcome of").to_string(),
        "only the addressed partner may record the outcome of a referral"
    );
    assert_eq!(
        ReferralError::OnlyReferrer("re-refer").to_string(),
        "only the referrer or programme staff may re-refer a referral"
    );
}

#[test]
fn statuses_map_to_the_api() {
    use pb::ReferralStatus as P;
    for (status, api) in [
        (Status::None, P::Unspecified),
        (Status::Sent, P::Sent),
        (Status::Accepted, P::Accepted),
        (Status::InProgress, P::InProgress),
        (Status::OutcomeRecorded, P::OutcomeRecorded),
        (Status::Closed, P::Closed),
        (Status::Declined, P::Declined),
        (Status::Withdrawn, P::Withdrawn),
        (Status::ReReferred, P::ReReferred),
    ] {
        assert_eq!(status.to_pb(), api);
    }
    assert_eq!(Status::default(), Status::None);
}

// ------------------------------------------------------------------ evolve

#[test]
fn a_whole_life_evolves_status_due_at_and_breach() {
    let steps: [(ReferralCommand, Status, bool); 7] = [
        (create(), Status::Sent, false),
        (ReferralCommand::RecordSlaBreach(at(50)), Status::Sent, true),
        (ReferralCommand::Accept(addressee(), at(60)), Status::Accepted, true),
        (progress(addressee()), Status::InProgress, true),
        (ReferralCommand::ReportProgress(addressee(), ProgressStage::Approved, at(70)), Status::InProgress, true),
        (ReferralCommand::RecordOutcome(addressee(), loan_disbursed(), at(80)), Status::OutcomeRecorded, true),
        (ReferralCommand::Close(referrer(), at(90)), Status::Closed, true),
    ];
    let mut r = Referral::default();
    for (command, status, breached) in steps {
        for e in r.decide(&command).unwrap() {
            r.evolve(&e);
        }
        assert_eq!((r.status, r.breached, r.due_at), (status, breached, at(48)), "after {command:?}");
        assert_eq!((r.person_id, r.partner_id, r.service), (person_id(), addressee_id(), ServiceKind::Loan));
    }
}

#[test]
fn each_event_sets_its_status() {
    let base = given(&[create()]);
    let t = Some(timestamp(at(1)));
    for (event, status) in [
        (ReferralEvent::Accepted(pb::ReferralAccepted { at: t }), Status::Accepted),
        (ReferralEvent::Declined(pb::ReferralDeclined::default()), Status::Declined),
        (ReferralEvent::ProgressReported(pb::ReferralProgressReported::default()), Status::InProgress),
        (ReferralEvent::OutcomeRecorded(pb::ReferralOutcomeRecorded::default()), Status::OutcomeRecorded),
        (ReferralEvent::Closed(pb::ReferralClosed::default()), Status::Closed),
        (ReferralEvent::Withdrawn(pb::ReferralWithdrawn::default()), Status::Withdrawn),
        (ReferralEvent::ReReferred(pb::ReferralReReferred::default()), Status::ReReferred),
        (ReferralEvent::SlaBreached(pb::ReferralSlaBreached::default()), Status::Sent),
    ] {
        let mut r = base.clone();
        r.evolve(&event);
        assert_eq!(r.status, status, "{event:?}");
        assert_eq!(r.breached, matches!(event, ReferralEvent::SlaBreached(_)), "{event:?}");
        assert_eq!(r.due_at, at(48), "no event but the creation moves the due time");
    }
}

#[test]
fn a_creation_evolves_even_from_sparse_or_odd_events() {
    let mut r = Referral::default();
    r.evolve(&ReferralEvent::Created(pb::ReferralCreated::default()));
    assert_eq!(r.status, Status::Sent);
    assert!(r.exists());
    assert_eq!(
        (r.person_id, r.partner_id, r.service, r.referrer.clone(), r.due_at, r.breached),
        (Uuid::nil(), Uuid::nil(), ServiceKind::Unspecified, None, DateTime::<Utc>::default(), false)
    );

    let mut r = Referral::default();
    r.evolve(&ReferralEvent::Created(pb::ReferralCreated {
        referrer: Some(pb::Referrer { kind: Some(pb::referrer::Kind::PartnerId("not a uuid".into())) }),
        need: Some(types::Need { service: 4242, requested_amount: None }),
        due_at: Some(timestamp(at(5))),
        ..Default::default()
    }));
    assert_eq!((r.referrer, r.service, r.due_at), (None, ServiceKind::Unspecified, at(5)));

    let mut r = Referral::default();
    r.evolve(&ReferralEvent::Created(pb::ReferralCreated {
        referrer: Some(pb::Referrer { kind: None }),
        ..Default::default()
    }));
    assert_eq!(r.referrer, None);
}

// ------------------------------------------------------------------ codecs

fn partner_events() -> Vec<PartnerEvent> {
    vec![
        PartnerEvent::Registered(registration()),
        PartnerEvent::Registered(pb::PartnerRegistered::default()),
        PartnerEvent::ServicesSet(pb::PartnerServicesSet { services: vec![loan_offer(), offer(ServiceKind::Legal)] }),
        PartnerEvent::ServicesSet(pb::PartnerServicesSet::default()),
        PartnerEvent::ResponseTimeSet(pb::PartnerResponseTimeSet {
            response_time: Some(prost_types::Duration { seconds: 86_400, nanos: 1 }),
        }),
        PartnerEvent::Suspended(pb::PartnerSuspended { reason: "contract ended — reînnoire".into() }),
        PartnerEvent::Reactivated(pb::PartnerReactivated {}),
    ]
}

fn referral_events() -> Vec<ReferralEvent> {
    let t = Some(timestamp(DateTime::from_timestamp(1_800_000_001, 999_999_999).unwrap()));
    let ReferralEvent::Created(created) = then_one(Referral::default().decide(&create_with(|n| {
        n.re_referred_from = Some(referral_id());
    }))) else {
        panic!("not a creation")
    };
    let staff_created = pb::ReferralCreated {
        referrer: Some(pb::Referrer { kind: Some(pb::referrer::Kind::StaffSubject("caseworker-7".into())) }),
        need: Some(training_need()),
        ..created.clone()
    };
    vec![
        ReferralEvent::Created(created),
        ReferralEvent::Created(staff_created),
        ReferralEvent::Accepted(pb::ReferralAccepted { at: t }),
        ReferralEvent::Declined(pb::ReferralDeclined {
            reason: DeclineReason::OutsideArea.into(),
            note: "we serve Bălți only".into(),
            at: t,
        }),
        ReferralEvent::ProgressReported(pb::ReferralProgressReported {
            stage: ProgressStage::ServiceOngoing.into(),
            at: t,
        }),
        ReferralEvent::OutcomeRecorded(pb::ReferralOutcomeRecorded { outcome: Some(loan_disbursed()), at: t }),
        ReferralEvent::OutcomeRecorded(pb::ReferralOutcomeRecorded {
            outcome: Some(service_delivered(ServiceKind::Training)),
            at: t,
        }),
        ReferralEvent::OutcomeRecorded(pb::ReferralOutcomeRecorded { outcome: Some(not_delivered()), at: t }),
        ReferralEvent::Closed(pb::ReferralClosed { at: t }),
        ReferralEvent::Withdrawn(pb::ReferralWithdrawn { reason: WithdrawReason::NoAnswer.into(), at: t }),
        ReferralEvent::ReReferred(pb::ReferralReReferred {
            new_referral_id: Uuid::from_u128(0x3).to_string(),
            new_partner_id: next_partner_id().to_string(),
            at: t,
        }),
        ReferralEvent::SlaBreached(pb::ReferralSlaBreached { due_at: Some(timestamp(at(48))), recorded_at: t }),
    ]
}

fn partner_names() -> [&'static str; 5] {
    use names::*;
    [PARTNER_REGISTERED, PARTNER_SERVICES_SET, PARTNER_RESPONSE_TIME_SET, PARTNER_SUSPENDED, PARTNER_REACTIVATED]
}

fn referral_names() -> [&'static str; 9] {
    use names::*;
    [
        REFERRAL_CREATED,
        REFERRAL_ACCEPTED,
        REFERRAL_DECLINED,
        REFERRAL_PROGRESS_REPORTED,
        REFERRAL_OUTCOME_RECORDED,
        REFERRAL_CLOSED,
        REFERRAL_WITHDRAWN,
        REFERRAL_RE_REFERRED,
        REFERRAL_SLA_BREACHED,
    ]
}

#[test]
fn event_type_names_are_the_protobuf_message_names() {
    let all: Vec<&str> = partner_names().into_iter().chain(referral_names()).collect();
    for name in &all {
        let message = name.strip_prefix("acasa.referrals.v1.").unwrap();
        assert!(message.starts_with("Partner") || message.starts_with("Referral"), "{name}");
    }
    let mut unique = all.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), all.len(), "type names are distinct");
}

#[test]
fn every_partner_event_round_trips() {
    let mut seen = Vec::new();
    for e in partner_events() {
        let encoded = e.encode();
        assert_eq!(encoded.schema_version, 1);
        assert_eq!(PartnerEvent::decode(&encoded), Ok(e.clone()));
        assert_eq!(Plain.encode(&e), Ok(encoded.clone()));
        assert_eq!(Codec::<PartnerEvent>::decode(&Plain, &encoded), Ok(e.clone()));
        seen.push(encoded.type_name);
    }
    for name in partner_names() {
        assert!(seen.iter().any(|s| s == name), "{name} is covered");
    }
    use names::*;
    let kinds: Vec<String> = [
        PartnerEvent::Registered(registration()),
        PartnerEvent::ServicesSet(pb::PartnerServicesSet::default()),
        PartnerEvent::ResponseTimeSet(pb::PartnerResponseTimeSet::default()),
        PartnerEvent::Suspended(pb::PartnerSuspended::default()),
        PartnerEvent::Reactivated(pb::PartnerReactivated {}),
    ]
    .iter()
    .map(|e| e.encode().type_name)
    .collect();
    assert_eq!(
        kinds,
        [PARTNER_REGISTERED, PARTNER_SERVICES_SET, PARTNER_RESPONSE_TIME_SET, PARTNER_SUSPENDED, PARTNER_REACTIVATED]
    );
}

#[test]
fn every_referral_event_round_trips() {
    let mut seen = Vec::new();
    for e in referral_events() {
        let encoded = e.encode();
        assert_eq!(encoded.schema_version, 1);
        assert_eq!(ReferralEvent::decode(&encoded), Ok(e.clone()));
        assert_eq!(Plain.encode(&e), Ok(encoded.clone()));
        assert_eq!(Codec::<ReferralEvent>::decode(&Plain, &encoded), Ok(e.clone()));
        seen.push(encoded.type_name);
    }
    for name in referral_names() {
        assert!(seen.iter().any(|s| s == name), "{name} is covered");
    }
}

#[test]
fn every_event_a_decision_records_round_trips_and_replays_to_the_same_state() {
    for row in rows() {
        let mut original = Referral::default();
        let mut replayed = Referral::default();
        for c in &row.history {
            for e in original.decide(c).unwrap() {
                original.evolve(&e);
                replayed.evolve(&ReferralEvent::decode(&e.encode()).unwrap());
            }
        }
        assert_eq!(replayed, original, "{}", row.label);
    }
    let mut p = Partner::default();
    let mut replayed = Partner::default();
    for c in [
        register(),
        suspend(),
        PartnerCommand::SetServices(vec![offer(ServiceKind::Legal)]),
        PartnerCommand::Reactivate,
    ] {
        for e in p.decide(&c).unwrap() {
            p.evolve(&e);
            replayed.evolve(&PartnerEvent::decode(&e.encode()).unwrap());
        }
    }
    assert_eq!(replayed, p);
}

#[track_caller]
fn assert_refused<E: EventCodec + std::fmt::Debug>(encoded: &EncodedEvent) {
    let error = E::decode(encoded).map(|e| format!("{e:?}")).unwrap_err();
    assert_eq!(error.type_name, encoded.type_name);
    assert_eq!(error.schema_version, encoded.schema_version);
    assert!(!error.reason.is_empty());
}

#[test]
fn unknown_type_names_are_refused() {
    let valid = pb::ReferralAccepted { at: Some(timestamp(t0())) }.encode_to_vec();
    let event = |type_name: &str| EncodedEvent { type_name: type_name.into(), schema_version: 1, data: valid.clone() };
    for name in [
        "",
        "acasa.referrals.v1.ReferralEscalated",
        "acasa.referrals.v1.referralaccepted",
        "ReferralAccepted",
        "acasa.referrals.v2.ReferralAccepted",
        "acasa.registry.v1.PersonRegistered",
    ] {
        assert_refused::<ReferralEvent>(&event(name));
        assert_refused::<PartnerEvent>(&event(name));
    }
    // Each aggregate refuses the other's events.
    for name in referral_names() {
        assert_refused::<PartnerEvent>(&event(name));
    }
    for name in partner_names() {
        assert_refused::<ReferralEvent>(&event(name));
    }
}

#[test]
fn other_schema_versions_are_refused() {
    for version in [0, 2, 3, u32::MAX] {
        for e in partner_events() {
            let mut encoded = e.encode();
            encoded.schema_version = version;
            assert_refused::<PartnerEvent>(&encoded);
        }
        for e in referral_events() {
            let mut encoded = e.encode();
            encoded.schema_version = version;
            assert_refused::<ReferralEvent>(&encoded);
        }
    }
}

#[test]
fn garbage_bytes_are_refused() {
    let garbage: [&[u8]; 5] = [
        &[0xFF],                                                                   // a truncated varint
        &[0x07],                                                                   // wire type 7
        &[0x0A, 0x05, 0x01],                                                       // length past the end
        &[0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], // varint too long
        &[0x00, 0x00],                                                             // field number 0
    ];
    for data in garbage {
        for name in partner_names() {
            let encoded = EncodedEvent { type_name: name.into(), schema_version: 1, data: data.to_vec() };
            assert_refused::<PartnerEvent>(&encoded);
        }
        for name in referral_names() {
            let encoded = EncodedEvent { type_name: name.into(), schema_version: 1, data: data.to_vec() };
            assert_refused::<ReferralEvent>(&encoded);
        }
    }
    // A string field that is not UTF-8.
    let encoded = EncodedEvent {
        type_name: names::REFERRAL_CREATED.into(),
        schema_version: 1,
        data: vec![0x0A, 0x02, 0xFF, 0xFE],
    };
    assert_refused::<ReferralEvent>(&encoded);
}

#[test]
fn decoding_arbitrary_bytes_never_panics() {
    // A deterministic xorshift, so failures reproduce.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let sent = given(&[create()]);
    for _ in 0..2_000 {
        let len = usize::try_from(next() % 48).unwrap();
        let data: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
        for name in partner_names().into_iter().chain(referral_names()) {
            let encoded = EncodedEvent { type_name: name.into(), schema_version: 1, data: data.clone() };
            // Either a decode error or an event that encodes again; never a panic.
            if let Ok(e) = PartnerEvent::decode(&encoded) {
                let _ = e.encode();
                Partner::default().evolve(&e);
            }
            if let Ok(e) = ReferralEvent::decode(&encoded) {
                let _ = e.encode();
                sent.clone().evolve(&e);
            }
        }
    }
}

// ------------------------------------------------------------------ claims

#[test]
fn a_partner_claims_its_idno_when_registered_and_nothing_else_claims() {
    let registering = testing::when(&Partner::default(), &register());
    assert_eq!(registering.claims(), [ClaimChange::Acquire(Claim::new(IDNO_CLAIM, "1002600012345"))]);
    let p = registering.state();
    assert_eq!(testing::when(&p, &suspend()).claims(), []);
    assert_eq!(testing::when(&given(&[create()]), &ReferralCommand::Accept(addressee(), at(1))).claims(), []);
}
