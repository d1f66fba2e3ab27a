//! Given/when/then for every campaign rule.

use acasa_domain::testing::{given, when};

use super::*;
use crate::domain::fixtures::{by, by_at, t};

fn create() -> CampaignCommand {
    CampaignCommand::Create(
        NewCampaign {
            id: Uuid::from_u128(0xca),
            name: "Pensii 2027".into(),
            target: Target { countries: vec!["IT".into(), "PT".into()], languages: vec!["ro".into(), "ru".into()] },
        },
        by("editor-1"),
    )
}

fn set(locale: &str, content: Content) -> CampaignCommand {
    CampaignCommand::SetContent { locale: locale.into(), content, stamp: by("editor-1") }
}

fn article() -> Content {
    Content::Article(Uuid::from_u128(0xa7))
}

fn schedule(at: i64) -> CampaignCommand {
    CampaignCommand::Schedule { send_at: t(at), stamp: by("editor-1") }
}

fn draft() -> Vec<CampaignCommand> {
    vec![
        create(),
        set("ro", article()),
        set("ru", Content::Message { subject: "Пенсии".into(), text: "Пенсии за границей.".into() }),
    ]
}

fn with(mut history: Vec<CampaignCommand>, more: &[CampaignCommand]) -> Vec<CampaignCommand> {
    history.extend_from_slice(more);
    history
}

/// Scheduled in an hour.
fn scheduled() -> Vec<CampaignCommand> {
    with(draft(), &[schedule(3600)])
}

fn start(at: i64) -> CampaignCommand {
    CampaignCommand::StartSending(by_at("sender", at))
}

fn sending() -> Vec<CampaignCommand> {
    with(scheduled(), &[start(3600)])
}

fn p(n: u128) -> Uuid {
    Uuid::from_u128(0x1000 + n)
}

fn batch(sent: &[(u128, &str)]) -> CampaignCommand {
    CampaignCommand::RecordBatch {
        sent: sent
            .iter()
            .map(|(n, l)| Recipient { person: p(*n), locale: (*l).to_owned(), country: "IT".into() })
            .collect(),
        stamp: by_at("sender", 3601),
    }
}

#[test]
fn a_campaign_is_created_as_a_draft_with_a_target() {
    let state = when(&Campaign::default(), &create()).state();
    assert_eq!(state.state, CampaignState::Draft);
    when(&state, &create()).nothing();
    let e = when(&Campaign::default(), &schedule(60)).refused();
    assert_eq!((e.kind(), e), (RejectionKind::NotFound, CampaignError::NotFound));
}

#[test]
fn a_target_names_a_language() {
    let none = CampaignCommand::Create(
        NewCampaign {
            id: Uuid::from_u128(1),
            name: "x".into(),
            target: Target { countries: vec![], languages: vec![] },
        },
        by("editor-1"),
    );
    let e = when(&Campaign::default(), &none).refused();
    assert_eq!((e.kind(), e.field()), (RejectionKind::InvalidArgument, Some("target.languages")));
}

#[test]
fn content_is_set_per_targeted_language_while_a_draft() {
    let state = given::<Campaign>(&draft());
    assert_eq!(state.content.get("ro"), Some(&article()));
    when(&state, &set("ro", article())).nothing();
    let e = when(&state, &set("uk", article())).refused();
    assert_eq!((e.kind(), e.field()), (RejectionKind::InvalidArgument, Some("locale")));
    let e =
        when(&given::<Campaign>(&scheduled()), &set("ro", Content::Message { subject: "x".into(), text: "x".into() }))
            .refused();
    assert_eq!(e.rule(), Some("CAMPAIGN_STATE"));
}

#[test]
fn retargeting_is_for_drafts() {
    let target = Target { countries: vec![], languages: vec!["ro".into()] };
    let state = when(&given::<Campaign>(&draft()), &CampaignCommand::Retarget(target.clone(), by("e"))).state();
    assert_eq!(state.target, Some(target.clone()));
    let e = when(&given::<Campaign>(&scheduled()), &CampaignCommand::Retarget(target, by("e"))).refused();
    assert_eq!(e.rule(), Some("CAMPAIGN_STATE"));
}

#[test]
fn scheduling_needs_content_in_every_targeted_language() {
    let e = when(&given::<Campaign>(&[create(), set("ro", article())]), &schedule(60)).refused();
    assert_eq!((e.kind(), e.rule()), (RejectionKind::FailedPrecondition, Some("NO_CONTENT")));
}

#[test]
fn scheduling_is_not_in_the_past_and_can_be_changed() {
    let e = when(&given::<Campaign>(&draft()), &schedule(-1)).refused();
    assert_eq!((e.kind(), e.field()), (RejectionKind::InvalidArgument, Some("send_at")));
    let state = given::<Campaign>(&scheduled());
    assert_eq!((state.state, state.send_at), (CampaignState::Scheduled, Some(t(3600))));
    when(&state, &schedule(3600)).nothing();
    assert_eq!(when(&state, &schedule(7200)).state().send_at, Some(t(7200)));
    let state = when(&state, &CampaignCommand::Unschedule(by("editor-1"))).state();
    assert_eq!((state.state, state.send_at), (CampaignState::Draft, None));
}

#[test]
fn cancelling_is_possible_until_sending_starts() {
    let cancel = CampaignCommand::Cancel { reason: "obsolete".into(), stamp: by("editor-1") };
    let state = when(&given::<Campaign>(&scheduled()), &cancel).state();
    assert_eq!(state.state, CampaignState::Cancelled);
    when(&state, &cancel).nothing();
    assert_eq!(when(&state, &start(3600)).refused().rule(), Some("CAMPAIGN_STATE"));
    let e = when(&given::<Campaign>(&sending()), &cancel).refused();
    assert_eq!((e.kind(), e.rule()), (RejectionKind::FailedPrecondition, Some("CAMPAIGN_STATE")));
}

#[test]
fn sending_starts_when_the_send_time_is_reached() {
    let state = given::<Campaign>(&scheduled());
    let e = when(&state, &start(3599)).refused();
    assert_eq!((e.kind(), e.rule()), (RejectionKind::FailedPrecondition, Some("NOT_DUE")));
    let state = when(&state, &start(3600)).state();
    assert_eq!(state.state, CampaignState::Sending);
    when(&state, &start(3700)).nothing();
    assert_eq!(when(&given::<Campaign>(&draft()), &start(3600)).refused().rule(), Some("CAMPAIGN_STATE"));
}

#[test]
fn batches_are_recorded_while_sending() {
    let state = given::<Campaign>(&with(sending(), &[batch(&[(1, "ro"), (2, "ru")])]));
    assert_eq!(state.sent.len(), 2);
    assert_eq!(state.reach.get("ro"), Some(&1));
    let state = when(&state, &batch(&[(3, "ro")])).state();
    assert_eq!((state.sent.len(), state.reach.get("ro")), (3, Some(&2)));
    when(&state, &batch(&[])).nothing();
    assert_eq!(when(&given::<Campaign>(&scheduled()), &batch(&[(1, "ro")])).refused().rule(), Some("CAMPAIGN_STATE"));
}

#[test]
fn nobody_is_recorded_twice() {
    let state = given::<Campaign>(&with(sending(), &[batch(&[(1, "ro"), (2, "ru")])]));
    let e = when(&state, &batch(&[(3, "ro"), (2, "ru")])).refused();
    assert_eq!((e.kind(), e.rule()), (RejectionKind::FailedPrecondition, Some("ALREADY_SENT")));
    let e = when(&state, &batch(&[(4, "ro"), (4, "ro")])).refused();
    assert_eq!(e.rule(), Some("ALREADY_SENT"), "nor twice in one batch");
}

#[test]
fn a_recipient_is_sent_a_targeted_language() {
    let e = when(&given::<Campaign>(&sending()), &batch(&[(1, "uk")])).refused();
    assert_eq!((e.kind(), e.field()), (RejectionKind::InvalidArgument, Some("sent.locale")));
}

#[test]
fn a_campaign_completes_after_sending() {
    let complete = CampaignCommand::Complete(by_at("sender", 4000));
    let e = when(&given::<Campaign>(&scheduled()), &complete).refused();
    assert_eq!(e.rule(), Some("CAMPAIGN_STATE"));
    let state = when(&given::<Campaign>(&with(sending(), &[batch(&[(1, "ro")])])), &complete).state();
    assert_eq!(state.state, CampaignState::Completed);
    when(&state, &complete).nothing();
    assert_eq!(when(&state, &batch(&[(2, "ro")])).refused().rule(), Some("CAMPAIGN_STATE"));
}

#[test]
fn a_campaign_may_be_scheduled_to_send_at_once() {
    assert_eq!(when(&given::<Campaign>(&draft()), &schedule(0)).state().send_at, Some(t(0)));
}

#[test]
fn unscheduling_a_draft_changes_nothing() {
    when(&given::<Campaign>(&draft()), &CampaignCommand::Unschedule(by("editor-1"))).nothing();
}
