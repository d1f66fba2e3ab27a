//! Given/when/then for every agreement rule.

use acasa_domain::testing::{given, when};

use super::*;
use crate::domain::fixtures::by;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn create_in(status: Status, on: NaiveDate) -> AgreementCommand {
    AgreementCommand::Create(
        NewAgreement {
            id: Uuid::from_u128(0xa6),
            country: "PT".into(),
            kind: Kind::SocialSecurity,
            title: "Acordul de securitate socială Moldova–Portugalia".into(),
            status,
            on,
        },
        by("editor-1"),
    )
}

fn create() -> AgreementCommand {
    create_in(Status::Negotiating, d(2008, 1, 10))
}

fn to(status: Status, on: NaiveDate) -> AgreementCommand {
    AgreementCommand::Transition { to: status, on, stamp: by("editor-1") }
}

fn summary(locale: &str, text: &str, translates: Option<u32>) -> AgreementCommand {
    AgreementCommand::EditSummary { locale: locale.into(), text: text.into(), translates, stamp: by("editor-1") }
}

#[test]
fn an_agreement_is_catalogued_in_its_status_with_its_date() {
    let state = when(&Agreement::default(), &create_in(Status::InForce, d(2010, 2, 1))).state();
    assert_eq!(state.status(), Some((Status::InForce, d(2010, 2, 1))));
    assert_eq!(state.kind, Some(Kind::SocialSecurity));
    when(&state, &create()).nothing();
}

#[test]
fn an_agreement_not_catalogued_is_not_found() {
    let e = when(&Agreement::default(), &to(Status::Signed, d(2009, 1, 1))).refused();
    assert_eq!((e.kind(), e), (RejectionKind::NotFound, AgreementError::NotFound));
}

#[test]
fn it_moves_along_its_transitions_each_with_its_date() {
    let state = given::<Agreement>(&[
        create(),
        to(Status::Signed, d(2009, 2, 18)),
        to(Status::Ratified, d(2009, 2, 18)),
        to(Status::InForce, d(2010, 2, 1)),
        to(Status::Suspended, d(2015, 1, 1)),
        to(Status::InForce, d(2016, 1, 1)),
        to(Status::Terminated, d(2030, 1, 1)),
    ]);
    assert_eq!(state.history.len(), 7);
    assert_eq!(state.status(), Some((Status::Terminated, d(2030, 1, 1))));
}

#[test]
fn an_illegal_transition_names_the_rule() {
    let state = given::<Agreement>(&[create()]);
    let e = when(&state, &to(Status::InForce, d(2009, 1, 1))).refused();
    assert_eq!((e.kind(), e.rule()), (RejectionKind::FailedPrecondition, Some("AGREEMENT_STATUS")));
    let over = given::<Agreement>(&[create(), to(Status::Terminated, d(2009, 1, 1))]);
    assert_eq!(when(&over, &to(Status::Negotiating, d(2009, 2, 1))).refused().rule(), Some("AGREEMENT_STATUS"));
    let signed = given::<Agreement>(&[create(), to(Status::Signed, d(2009, 2, 18))]);
    assert_eq!(when(&signed, &to(Status::Suspended, d(2009, 3, 1))).refused().rule(), Some("AGREEMENT_STATUS"));
}

#[test]
fn dates_do_not_go_backwards() {
    let state = given::<Agreement>(&[create(), to(Status::Signed, d(2009, 2, 18))]);
    let e = when(&state, &to(Status::Ratified, d(2009, 2, 17))).refused();
    assert_eq!((e.kind(), e.rule()), (RejectionKind::FailedPrecondition, Some("AGREEMENT_DATES")));
}

#[test]
fn the_same_status_on_the_same_date_records_nothing() {
    let state = given::<Agreement>(&[create(), to(Status::Signed, d(2009, 2, 18))]);
    when(&state, &to(Status::Signed, d(2009, 2, 18))).nothing();
    assert_eq!(when(&state, &to(Status::Signed, d(2009, 3, 1))).refused().rule(), Some("AGREEMENT_STATUS"));
}

#[test]
fn links_are_a_set() {
    let add = AgreementCommand::AddLink { url: "https://example.org/a.pdf".into(), stamp: by("editor-1") };
    let remove = AgreementCommand::RemoveLink { url: "https://example.org/a.pdf".into(), stamp: by("editor-1") };
    let state = when(&given::<Agreement>(&[create()]), &add).state();
    assert_eq!(state.links, vec!["https://example.org/a.pdf".to_owned()]);
    when(&state, &add).nothing();
    let state = when(&state, &remove).state();
    assert!(state.links.is_empty());
    when(&state, &remove).nothing();
}

#[test]
fn renaming_changes_the_title_once() {
    let rename = AgreementCommand::Rename { title: "Acord".into(), stamp: by("editor-1") };
    let state = when(&given::<Agreement>(&[create()]), &rename).state();
    assert_eq!(state.title, "Acord");
    when(&state, &rename).nothing();
}

#[test]
fn summaries_follow_the_translation_rules() {
    let state = given::<Agreement>(&[create(), summary("ro", "Pensii", None), summary("ru", "Пенсии", Some(1))]);
    assert_eq!(state.summaries.source.as_deref(), Some("ro"));
    assert_eq!(state.stale("ru"), None);
    let e = when(&state, &summary("en", "Pensions", Some(2))).refused();
    assert_eq!((e.kind(), e.rule()), (RejectionKind::FailedPrecondition, Some("NO_SUCH_SOURCE_REVISION")));
    let e = when(&state, &summary("en", "Pensions", None)).refused();
    assert_eq!((e.kind(), e.field()), (RejectionKind::InvalidArgument, Some("translates")));

    let state = given::<Agreement>(&[
        create(),
        summary("ro", "Pensii", None),
        summary("ru", "Пенсии", Some(1)),
        summary("ro", "Pensii și alocații", None),
    ]);
    assert_eq!(state.stale("ru"), Some((1, 2)));
    let confirm = AgreementCommand::ConfirmTranslation { locale: "ru".into(), source_revision: 2, stamp: by("t") };
    let confirmed = when(&state, &confirm).state();
    assert_eq!(confirmed.stale("ru"), None);
    when(&confirmed, &confirm).nothing();
    let updated = when(&state, &summary("ru", "Пенсии и пособия", Some(2))).state();
    assert_eq!((updated.stale("ru"), updated.summaries.history("ru").len()), (None, 2));
}

#[test]
fn another_agreement_under_the_same_id_is_refused_as_existing() {
    let state = given::<Agreement>(&[create()]);
    let AgreementCommand::Create(mut other, stamp) = create() else { unreachable!() };
    other.id = Uuid::from_u128(0xb7);
    let e = when(&given::<Agreement>(&[AgreementCommand::Create(other, stamp)]), &create()).refused();
    assert_eq!((e.kind(), e), (RejectionKind::AlreadyExists, AgreementError::AlreadyExists));
    when(&state, &create()).nothing();
}
