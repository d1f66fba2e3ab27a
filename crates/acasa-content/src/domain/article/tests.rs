//! Given/when/then for every article rule.

use acasa_domain::testing::{given, when};

use super::*;
use crate::domain::fixtures::{by, by_at, t};

fn id() -> Uuid {
    Uuid::from_u128(0xa7)
}

fn create() -> ArticleCommand {
    ArticleCommand::Create(
        NewArticle {
            id: id(),
            topic: Topic::BenefitPortability,
            countries: vec!["IT".into(), "DE".into(), "IT".into()],
            slug: "pensii-italia".into(),
        },
        by("editor-1"),
    )
}

fn text(title: &str) -> Text {
    Text { title: title.into(), summary: format!("{title}: summary"), body: format!("{title}: body") }
}

fn edit(locale: &str, title: &str, translates: Option<u32>, who: &str) -> ArticleCommand {
    ArticleCommand::Edit { locale: locale.into(), text: text(title), translates, stamp: by(who) }
}

fn ro(title: &str) -> ArticleCommand {
    edit("ro", title, None, "editor-1")
}

fn submit(locale: &str) -> ArticleCommand {
    ArticleCommand::SubmitForReview { locale: locale.into(), stamp: by("editor-1") }
}

fn approve(locale: &str, revision: u32, who: &str) -> ArticleCommand {
    ArticleCommand::Approve { locale: locale.into(), revision, stamp: by(who) }
}

fn publish(locale: &str) -> ArticleCommand {
    ArticleCommand::Publish { locale: locale.into(), stamp: by("editor-1") }
}

fn schedule(locale: &str, publish_at: Option<i64>, expire_at: Option<i64>) -> ArticleCommand {
    ArticleCommand::Schedule {
        locale: locale.into(),
        publish_at: publish_at.map(t),
        expire_at: expire_at.map(t),
        stamp: by("editor-1"),
    }
}

fn confirm(locale: &str, source_revision: u32) -> ArticleCommand {
    ArticleCommand::ConfirmTranslation { locale: locale.into(), source_revision, stamp: by("translator-1") }
}

fn with(mut history: Vec<ArticleCommand>, more: &[ArticleCommand]) -> Vec<ArticleCommand> {
    history.extend_from_slice(more);
    history
}

/// Romanian revision 1, in review.
fn in_review() -> Vec<ArticleCommand> {
    vec![create(), ro("Pensii"), submit("ro")]
}

/// Romanian revision 1, approved by reviewer-1 and published.
fn published() -> Vec<ArticleCommand> {
    with(in_review(), &[approve("ro", 1, "reviewer-1"), publish("ro")])
}

fn rule(e: &ArticleError) -> Option<&'static str> {
    e.rule()
}

// --- Creation and the slug ---------------------------------------------------

#[test]
fn creating_takes_the_slug_and_sorts_the_countries() {
    let then = when(&Article::default(), &create());
    assert_eq!(then.claims(), vec![ClaimChange::Acquire(Claim::new(ARTICLE_SLUG, "pensii-italia"))]);
    let state = then.state();
    assert_eq!(state.countries, vec!["DE".to_owned(), "IT".to_owned()]);
    assert_eq!(state.topic, Some(Topic::BenefitPortability));
    assert!(state.versions.source.is_none());
}

#[test]
fn creating_twice_is_a_no_op_with_the_same_article_and_refused_otherwise() {
    let state = given::<Article>(&[create()]);
    when(&state, &create()).nothing();
    let other = ArticleCommand::Create(
        NewArticle { id: Uuid::from_u128(1), topic: Topic::LegalAssistance, countries: vec![], slug: "x".into() },
        by("editor-1"),
    );
    assert_eq!(when(&state, &other).refused(), ArticleError::AlreadyExists);
}

#[test]
fn commands_on_an_article_not_created_are_not_found() {
    let e = when(&Article::default(), &ro("Pensii")).refused();
    assert_eq!((e.kind(), e), (RejectionKind::NotFound, ArticleError::NotFound));
}

#[test]
fn changing_the_slug_swaps_the_claim() {
    let state = given::<Article>(&[create()]);
    let then = when(&state, &ArticleCommand::ChangeSlug { slug: "pensii".into(), stamp: by("editor-1") });
    assert_eq!(
        then.claims(),
        vec![
            ClaimChange::Release(Claim::new(ARTICLE_SLUG, "pensii-italia")),
            ClaimChange::Acquire(Claim::new(ARTICLE_SLUG, "pensii")),
        ]
    );
    assert_eq!(then.state().slug, "pensii");
    when(&state, &ArticleCommand::ChangeSlug { slug: "pensii-italia".into(), stamp: by("editor-1") }).nothing();
}

#[test]
fn retagging_changes_topic_and_countries_once() {
    let state = given::<Article>(&[create()]);
    let retag = ArticleCommand::Retag { topic: Topic::HealthAndInsurance, countries: vec![], stamp: by("editor-1") };
    let state = when(&state, &retag).state();
    assert_eq!((state.topic, state.countries.is_empty()), (Some(Topic::HealthAndInsurance), true));
    when(&state, &retag).nothing();
}

// --- Revisions ---------------------------------------------------------------

#[test]
fn the_first_version_is_the_source_and_each_edit_a_numbered_revision() {
    let state = given::<Article>(&[create(), ro("Pensii"), edit("ro", "Pensii în Italia", None, "editor-2")]);
    assert_eq!(state.versions.source.as_deref(), Some("ro"));
    let history = state.versions.history("ro");
    assert_eq!(
        history.iter().map(|r| (r.number, r.author.as_str())).collect::<Vec<_>>(),
        [(1, "editor-1"), (2, "editor-2")]
    );
    assert_eq!(state.versions.revision("ro", 1).map(|r| r.content.title.as_str()), Some("Pensii"));
    assert_eq!(state.versions.revision("ro", 3), None);
    assert_eq!(state.state("ro"), Some(State::Draft));
}

#[test]
fn an_edit_that_changes_nothing_records_nothing() {
    let state = given::<Article>(&[create(), ro("Pensii")]);
    when(&state, &ro("Pensii")).nothing();
}

#[test]
fn the_source_version_translates_nothing() {
    let state = given::<Article>(&[create(), ro("Pensii")]);
    let e = when(&state, &edit("ro", "Pensii 2", Some(1), "editor-1")).refused();
    assert_eq!((e.kind(), e.field()), (RejectionKind::InvalidArgument, Some("translates")));
    let e = when(&given::<Article>(&[create()]), &edit("en", "Pensions", Some(1), "editor-1")).refused();
    assert_eq!(e.field(), Some("translates"), "the first version is the source");
}

#[test]
fn editing_in_review_goes_back_to_draft_and_voids_the_approval() {
    let state = given::<Article>(&with(in_review(), &[approve("ro", 1, "reviewer-1"), ro("Pensii 2")]));
    assert_eq!(state.state("ro"), Some(State::Draft));
    assert_eq!(rule(&when(&state, &publish("ro")).refused()), Some("NOT_APPROVED"));
}

// --- Review and publishing ---------------------------------------------------

#[test]
fn submitting_puts_the_version_in_review_once() {
    let state = given::<Article>(&in_review());
    assert_eq!(state.state("ro"), Some(State::InReview));
    when(&state, &submit("ro")).nothing();
}

#[test]
fn submitting_a_locale_with_no_version_is_refused() {
    let e = when(&given::<Article>(&[create(), ro("Pensii")]), &submit("ru")).refused();
    assert_eq!((e.kind(), e.rule()), (RejectionKind::FailedPrecondition, Some("NO_SUCH_VERSION")));
}

#[test]
fn a_reviewer_approves_the_current_revision() {
    let state = given::<Article>(&in_review());
    let state = when(&state, &approve("ro", 1, "reviewer-1")).state();
    assert_eq!(state.workflow("ro").and_then(|w| w.approval.as_ref()).map(|a| a.revision), Some(1));
    when(&state, &approve("ro", 1, "reviewer-1")).nothing();
}

#[test]
fn a_reviewer_sends_a_version_in_review_back_to_draft() {
    let back =
        ArticleCommand::RequestChanges { locale: "ro".into(), reason: "cite the law".into(), stamp: by("reviewer-1") };
    let state = when(&given::<Article>(&in_review()), &back).state();
    assert_eq!(state.state("ro"), Some(State::Draft));
    when(&state, &back).nothing();
    assert_eq!(rule(&when(&state, &approve("ro", 1, "reviewer-1")).refused()), Some("NOT_IN_REVIEW"));
    assert_eq!(rule(&when(&given::<Article>(&published()), &back).refused()), Some("NOT_IN_REVIEW"));
}

#[test]
fn nobody_approves_their_own_revision() {
    let e = when(&given::<Article>(&in_review()), &approve("ro", 1, "editor-1")).refused();
    assert_eq!((e.kind(), e.rule()), (RejectionKind::FailedPrecondition, Some("OWN_REVISION")));
}

#[test]
fn only_a_version_in_review_is_approved_and_only_its_current_revision() {
    let draft = given::<Article>(&[create(), ro("Pensii")]);
    assert_eq!(rule(&when(&draft, &approve("ro", 1, "reviewer-1")).refused()), Some("NOT_IN_REVIEW"));
    let state = given::<Article>(&[create(), ro("Pensii"), ro("Pensii 2"), submit("ro")]);
    assert_eq!(when(&state, &approve("ro", 1, "reviewer-1")).refused(), ArticleError::NotCurrentRevision(2));
}

#[test]
fn publishing_needs_an_approval() {
    let e = when(&given::<Article>(&in_review()), &publish("ro")).refused();
    assert_eq!((e.kind(), e.rule()), (RejectionKind::FailedPrecondition, Some("NOT_APPROVED")));
}

#[test]
fn publishing_makes_the_approved_revision_live_and_served() {
    let state = given::<Article>(&with(in_review(), &[approve("ro", 1, "reviewer-1")]));
    let event = when(&state, &publish("ro")).event();
    assert!(matches!(event, ArticleEvent::Published { revision: 1, scheduled: false, .. }));
    let state = given::<Article>(&published());
    assert_eq!(state.state("ro"), Some(State::Published));
    assert_eq!(state.served("ro", t(0)).map(|r| r.number), Some(1));
    assert_eq!(state.served("ro", t(-1)), None, "not before its publication");
    assert_eq!(state.served("en", t(0)), None);
    when(&state, &publish("ro")).nothing();
    assert_eq!(rule(&when(&state, &submit("ro")).refused()), Some("ALREADY_PUBLISHED"));
}

#[test]
fn a_published_version_stays_served_while_a_newer_revision_is_reviewed() {
    let state = given::<Article>(&with(published(), &[edit("ro", "Pensii 2", None, "editor-2")]));
    assert_eq!(state.state("ro"), Some(State::Draft));
    assert_eq!(state.served("ro", t(0)).map(|r| r.number), Some(1));
    let state = given::<Article>(&with(published(), &[edit("ro", "Pensii 2", None, "editor-2"), submit("ro")]));
    assert_eq!(state.state("ro"), Some(State::InReview));
    assert_eq!(state.served("ro", t(0)).map(|r| r.number), Some(1));
    assert_eq!(rule(&when(&state, &publish("ro")).refused()), Some("NOT_APPROVED"));
    let state = given::<Article>(&with(
        published(),
        &[edit("ro", "Pensii 2", None, "editor-2"), submit("ro"), approve("ro", 2, "editor-1"), publish("ro")],
    ));
    assert_eq!(state.served("ro", t(0)).map(|r| r.content.title.as_str()), Some("Pensii 2"));
}

#[test]
fn unpublishing_withdraws_the_live_revision() {
    let state = given::<Article>(&published());
    let unpublish = ArticleCommand::Unpublish { locale: "ro".into(), reason: "outdated".into(), stamp: by("editor-1") };
    let state = when(&state, &unpublish).state();
    assert_eq!((state.state("ro"), state.served("ro", t(0))), (Some(State::Unpublished), None));
    when(&state, &unpublish).nothing();
    // The approval of the unchanged revision still stands: it can go back.
    assert_eq!(when(&state, &publish("ro")).state().served("ro", t(0)).map(|r| r.number), Some(1));
}

// --- Schedules ---------------------------------------------------------------

#[test]
fn the_worker_publishes_a_scheduled_version_when_due() {
    let state =
        given::<Article>(&with(in_review(), &[approve("ro", 1, "reviewer-1"), schedule("ro", Some(3600), None)]));
    let early = ArticleCommand::PublishDue { locale: "ro".into(), stamp: by_at("deadline-worker", 3599) };
    assert_eq!(rule(&when(&state, &early).refused()), Some("NOT_DUE"));
    let due = ArticleCommand::PublishDue { locale: "ro".into(), stamp: by_at("deadline-worker", 3600) };
    let then = when(&state, &due);
    assert!(matches!(then.result(), Ok(e) if matches!(e[..], [ArticleEvent::Published { scheduled: true, .. }])));
    let state = then.state();
    assert_eq!(state.served("ro", t(3600)).map(|r| r.number), Some(1));
    assert_eq!(state.workflow("ro").and_then(|w| w.publish_at), None);
    assert_eq!(rule(&when(&state, &due).refused()), Some("NOT_DUE"), "the schedule is spent");
}

#[test]
fn a_scheduled_publication_still_needs_the_approval() {
    let state = given::<Article>(&with(in_review(), &[schedule("ro", Some(60), None)]));
    let due = ArticleCommand::PublishDue { locale: "ro".into(), stamp: by_at("deadline-worker", 60) };
    assert_eq!(rule(&when(&state, &due).refused()), Some("NOT_APPROVED"));
}

#[test]
fn expiry_is_after_publication_and_not_scheduled_for_what_is_live() {
    let state = given::<Article>(&in_review());
    let e = when(&state, &schedule("ro", Some(60), Some(60))).refused();
    assert_eq!((e.kind(), e.field()), (RejectionKind::InvalidArgument, Some("expire_at")));
    let e = when(&given::<Article>(&published()), &schedule("ro", Some(60), None)).refused();
    assert_eq!(e.rule(), Some("ALREADY_PUBLISHED"));
    when(&state, &schedule("ro", None, None)).nothing();
}

#[test]
fn an_expired_version_is_not_served_and_the_worker_records_it() {
    let state = given::<Article>(&with(published(), &[schedule("ro", None, Some(7200))]));
    assert_eq!(state.served("ro", t(7199)).map(|r| r.number), Some(1));
    assert_eq!(state.served("ro", t(7200)), None, "not served at its expiry, even before the worker runs");
    let early = ArticleCommand::ExpireDue { locale: "ro".into(), stamp: by_at("deadline-worker", 7199) };
    assert_eq!(rule(&when(&state, &early).refused()), Some("NOT_DUE"));
    let due = ArticleCommand::ExpireDue { locale: "ro".into(), stamp: by_at("deadline-worker", 7200) };
    let state = when(&state, &due).state();
    assert_eq!(state.state("ro"), Some(State::Unpublished));
    assert_eq!(state.workflow("ro").and_then(|w| w.live.as_ref()), None);
}

// --- Translations ------------------------------------------------------------

/// Romanian 1, Russian translating it.
fn translated() -> Vec<ArticleCommand> {
    vec![create(), ro("Pensii"), edit("ru", "Пенсии", Some(1), "translator-1")]
}

#[test]
fn a_translation_records_the_source_revision_it_translates() {
    let state = given::<Article>(&translated());
    assert_eq!(state.versions.current("ru").and_then(|r| r.translates), Some(1));
    assert_eq!(state.stale("ru"), None);
    assert_eq!(state.stale("ro"), None, "the source is never stale");
}

#[test]
fn a_translation_of_a_source_revision_that_does_not_exist_is_refused() {
    let state = given::<Article>(&[create(), ro("Pensii")]);
    let e = when(&state, &edit("ru", "Пенсии", Some(2), "translator-1")).refused();
    assert_eq!((e.kind(), e.rule()), (RejectionKind::FailedPrecondition, Some("NO_SUCH_SOURCE_REVISION")));
    let e = when(&state, &edit("ru", "Пенсии", Some(0), "translator-1")).refused();
    assert_eq!(e.rule(), Some("NO_SUCH_SOURCE_REVISION"));
}

#[test]
fn a_translation_must_name_its_source_revision() {
    let e = when(&given::<Article>(&[create(), ro("Pensii")]), &edit("ru", "Пенсии", None, "translator-1")).refused();
    assert_eq!((e.kind(), e.field()), (RejectionKind::InvalidArgument, Some("translates")));
}

#[test]
fn a_translation_is_stale_when_the_source_moves_on_until_updated() {
    let state = given::<Article>(&with(translated(), &[ro("Pensii 2"), ro("Pensii 3")]));
    assert_eq!(state.stale("ru"), Some((1, 3)));
    let state = when(&state, &edit("ru", "Пенсии 3", Some(3), "translator-1")).state();
    assert_eq!(state.stale("ru"), None);
}

#[test]
fn a_stale_translation_confirmed_needs_no_change() {
    let state = given::<Article>(&with(translated(), &[ro("Pensii 2")]));
    let then = when(&state, &confirm("ru", 2));
    let state = then.state();
    assert_eq!(state.stale("ru"), None);
    assert_eq!(state.versions.history("ru").len(), 1, "confirming writes no revision");
    when(&state, &confirm("ru", 1)).nothing();
    when(&state, &confirm("ru", 2)).nothing();
}

#[test]
fn confirming_is_for_existing_translations_and_source_revisions() {
    let state = given::<Article>(&translated());
    assert_eq!(rule(&when(&state, &confirm("ru", 2)).refused()), Some("NO_SUCH_SOURCE_REVISION"));
    assert_eq!(rule(&when(&state, &confirm("ro", 1)).refused()), Some("NOT_A_TRANSLATION"));
    assert_eq!(rule(&when(&state, &confirm("uk", 1)).refused()), Some("NO_SUCH_VERSION"));
}

#[test]
fn each_language_has_its_own_workflow() {
    let state = given::<Article>(&with(published(), &[edit("ru", "Пенсии", Some(1), "translator-1")]));
    assert_eq!((state.state("ro"), state.state("ru")), (Some(State::Published), Some(State::Draft)));
    assert_eq!(state.served("ru", t(0)), None);
}

#[test]
fn creating_again_under_the_same_id_with_another_slug_is_refused_as_existing() {
    let state = given::<Article>(&[create()]);
    let same_id = ArticleCommand::Create(
        NewArticle { id: id(), topic: Topic::BenefitPortability, countries: vec![], slug: "alta".into() },
        by("editor-1"),
    );
    let e = when(&state, &same_id).refused();
    assert_eq!((e.kind(), e), (RejectionKind::AlreadyExists, ArticleError::AlreadyExists));
}

#[test]
fn retagging_the_countries_alone_is_recorded() {
    let state = given::<Article>(&[create()]);
    let retag =
        ArticleCommand::Retag { topic: Topic::BenefitPortability, countries: vec!["FR".into()], stamp: by("editor-1") };
    assert_eq!(when(&state, &retag).state().countries, ["FR"]);
}

#[test]
fn an_approval_repeats_as_a_no_op_only_by_the_same_reviewer_of_the_same_revision() {
    let state = when(&given::<Article>(&in_review()), &approve("ro", 1, "reviewer-1")).state();
    assert_ne!(when(&state, &approve("ro", 1, "reviewer-2")).result(), &Ok(Vec::new()));
    assert_ne!(when(&state, &approve("ro", 2, "reviewer-1")).result(), &Ok(Vec::new()));
}

#[test]
fn each_locale_has_its_own_track_of_revisions() {
    let state = given::<Article>(&[create(), ro("Pensii"), ro("Pensii în Italia")]);
    let track = state.versions.track("ro").expect("a Romanian track");
    assert_eq!(track.revisions.len(), 2);
    assert!(state.versions.track("uk").is_none());
}
