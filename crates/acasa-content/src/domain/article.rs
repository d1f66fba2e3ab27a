//! An article: information for migrants abroad on one [`Topic`], for some
//! destination countries, under a unique slug, with one version per
//! language ([`Versions`]: revisions, the source locale, translations that
//! know their source and show when they are stale).
//!
//! **The slug** is unique across articles: a claim (`article-slug`) taken
//! on creation, and swapped (the old one freed, the new one taken) when the
//! slug changes.
//!
//! **Each language's way to readers.** A version's [`State`] is that of
//! its latest revision: draft → in review → published (→ unpublished).
//! Apart from it, a version has a *live* revision: the one readers get.
//!
//! - Editing (`Edit`) writes a new revision, a draft: a version in review
//!   goes back to draft (its approval was of the revision before). A live
//!   revision stays live — served to readers while the newer revision is
//!   drafted, reviewed and approved — and is replaced only when that one is
//!   published. So readers never see an unreviewed text, and never lose the
//!   page meanwhile.
//! - `SubmitForReview` moves a draft (or an unpublished version) into
//!   review; the reviewer may send it back (`RequestChanges`: draft again,
//!   with the reason).
//! - `Approve` approves the current revision of a version in review
//!   (`NOT_IN_REVIEW`, `NOT_CURRENT_REVISION`), never by its author
//!   (`OWN_REVISION`).
//! - `Publish` needs an approval of the current revision by someone other
//!   than its author (`NOT_APPROVED`): then it becomes the live revision.
//!   An approval names its revision, so any edit voids it.
//! - `Unpublish` withdraws the live revision: readers get nothing in that
//!   language (they fall back along their chain).
//!
//! **Schedules.** `Schedule` sets (or clears) a version's publish-at and
//! expire-at instants (expiry after publication). The deadline worker asks
//! `PublishDue` and `ExpireDue` with its `now` once an instant is reached
//! (`NOT_DUE` before): a scheduled publication follows the same approval
//! rule and records `Published { scheduled: true }`; expiry records
//! `Expired` and withdraws the live revision. Until the worker has run,
//! [`Article::served`] already answers with the reader's `now`: a revision
//! is served only once published, and not at or after its expiry.

use acasa_domain::{Aggregate, Claim, ClaimChange, Rejection, RejectionKind};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::versions::{Revision, VersionRule, Versions};
use super::{ARTICLE_SLUG, Stamp, Topic, sorted_set};

/// What one revision of an article's version says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text {
    /// The title.
    pub title: String,
    /// The summary.
    pub summary: String,
    /// The body, as given (rendered safely when read).
    pub body: String,
}

/// A new article.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewArticle {
    /// Id.
    pub id: Uuid,
    /// Its topic.
    pub topic: Topic,
    /// Destination countries (ISO 3166 alpha-2); none: every country.
    pub countries: Vec<String>,
    /// Its slug (unique).
    pub slug: String,
}

/// A version's editorial state (that of its latest revision).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum State {
    /// Being written.
    #[default]
    Draft,
    /// Waiting for a reviewer.
    InReview,
    /// Its latest revision is live (what readers get).
    Published,
    /// Withdrawn (by an editor, or expired).
    Unpublished,
}

/// A revision's approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    /// The revision approved.
    pub revision: u32,
    /// The reviewer, when.
    pub stamp: Stamp,
}

/// The revision readers get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Live {
    /// The revision.
    pub revision: u32,
    /// Published when.
    pub since: DateTime<Utc>,
}

/// One language's workflow (its revisions live in [`Article::versions`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Workflow {
    /// Its state.
    pub state: State,
    /// The latest approval.
    pub approval: Option<Approval>,
    /// The revision readers get, if any.
    pub live: Option<Live>,
    /// Scheduled publication.
    pub publish_at: Option<DateTime<Utc>>,
    /// Scheduled expiry.
    pub expire_at: Option<DateTime<Utc>>,
}

/// An article's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Article {
    /// Id, once created.
    pub id: Option<Uuid>,
    /// Topic.
    pub topic: Option<Topic>,
    /// Destination countries (none: all).
    pub countries: Vec<String>,
    /// Slug.
    pub slug: String,
    /// The versions' revisions.
    pub versions: Versions<Text>,
    /// Each version's workflow, by locale.
    pub workflows: std::collections::BTreeMap<String, Workflow>,
}

/// What can be asked of an article.
#[derive(Clone, Debug, PartialEq)]
pub enum ArticleCommand {
    /// Create it (no version yet).
    Create(NewArticle, Stamp),
    /// Change its topic and countries.
    Retag {
        /// The topic.
        topic: Topic,
        /// The countries.
        countries: Vec<String>,
        /// Who, when.
        stamp: Stamp,
    },
    /// Change its slug.
    ChangeSlug {
        /// The new slug.
        slug: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Write a new revision of a locale's version (the first creates it).
    Edit {
        /// The locale (BCP 47, validated).
        locale: String,
        /// The text.
        text: Text,
        /// For a translation: the source revision it translates.
        translates: Option<u32>,
        /// The author, when.
        stamp: Stamp,
    },
    /// Send a version to review.
    SubmitForReview {
        /// The locale.
        locale: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Send a version in review back to draft.
    RequestChanges {
        /// The locale.
        locale: String,
        /// What to change.
        reason: String,
        /// The reviewer, when.
        stamp: Stamp,
    },
    /// Approve a version's current revision.
    Approve {
        /// The locale.
        locale: String,
        /// The revision approved (the current one).
        revision: u32,
        /// The reviewer, when.
        stamp: Stamp,
    },
    /// Publish a version's current (approved) revision now.
    Publish {
        /// The locale.
        locale: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Withdraw a version's live revision.
    Unpublish {
        /// The locale.
        locale: String,
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Set or clear a version's publish-at and expire-at.
    Schedule {
        /// The locale.
        locale: String,
        /// Publish then (none: no scheduled publication).
        publish_at: Option<DateTime<Utc>>,
        /// Expire then (none: no expiry).
        expire_at: Option<DateTime<Utc>>,
        /// Who, when.
        stamp: Stamp,
    },
    /// The deadline worker: publish a version whose publish-at is reached.
    PublishDue {
        /// The locale.
        locale: String,
        /// The worker, and its now.
        stamp: Stamp,
    },
    /// The deadline worker: expire a version whose expire-at is reached.
    ExpireDue {
        /// The locale.
        locale: String,
        /// The worker, and its now.
        stamp: Stamp,
    },
    /// Confirm a translation needs no change for a newer source revision.
    ConfirmTranslation {
        /// The translation's locale.
        locale: String,
        /// The source revision it is confirmed in line with.
        source_revision: u32,
        /// Who, when.
        stamp: Stamp,
    },
}

/// What happened to an article.
#[derive(Clone, Debug, PartialEq)]
pub enum ArticleEvent {
    /// Created.
    Created(NewArticle, Stamp),
    /// Topic and countries changed.
    Retagged {
        /// The topic.
        topic: Topic,
        /// The countries.
        countries: Vec<String>,
        /// Who, when.
        stamp: Stamp,
    },
    /// Slug changed.
    SlugChanged {
        /// The new slug.
        slug: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// A revision written.
    Revised {
        /// The locale.
        locale: String,
        /// Its number.
        revision: u32,
        /// Its text.
        text: Text,
        /// The source revision it translates.
        translates: Option<u32>,
        /// The author, when.
        stamp: Stamp,
    },
    /// Sent to review.
    Submitted {
        /// The locale.
        locale: String,
        /// The revision.
        revision: u32,
        /// Who, when.
        stamp: Stamp,
    },
    /// Sent back to draft.
    ChangesRequested {
        /// The locale.
        locale: String,
        /// The revision.
        revision: u32,
        /// What to change.
        reason: String,
        /// The reviewer, when.
        stamp: Stamp,
    },
    /// A revision approved.
    Approved {
        /// The locale.
        locale: String,
        /// The revision.
        revision: u32,
        /// The reviewer, when.
        stamp: Stamp,
    },
    /// A revision published.
    Published {
        /// The locale.
        locale: String,
        /// The revision.
        revision: u32,
        /// By the deadline worker at its publish-at.
        scheduled: bool,
        /// Who, when (readers get it from then).
        stamp: Stamp,
    },
    /// The live revision withdrawn.
    Unpublished {
        /// The locale.
        locale: String,
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Schedule set.
    Scheduled {
        /// The locale.
        locale: String,
        /// Publish then.
        publish_at: Option<DateTime<Utc>>,
        /// Expire then.
        expire_at: Option<DateTime<Utc>>,
        /// Who, when.
        stamp: Stamp,
    },
    /// The live revision expired.
    Expired {
        /// The locale.
        locale: String,
        /// The worker, and its now.
        stamp: Stamp,
    },
    /// A translation confirmed in line with a newer source revision.
    TranslationConfirmed {
        /// The locale.
        locale: String,
        /// The source revision.
        source_revision: u32,
        /// Who, when.
        stamp: Stamp,
    },
}

/// Why an article refused a command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArticleError {
    /// Created twice.
    #[error("the article already exists")]
    AlreadyExists,
    /// Not created.
    #[error("no such article")]
    NotFound,
    /// A versioning or translation rule.
    #[error(transparent)]
    Version(#[from] VersionRule),
    /// Approving, or requesting changes, in the wrong state.
    #[error("the version is not in review")]
    NotInReview,
    /// Submitting what is already live, or scheduling its publication.
    #[error("the version's current revision is already published")]
    AlreadyPublished,
    /// Approving a revision that is not the current one.
    #[error("only the current revision ({0}) can be approved")]
    NotCurrentRevision(u32),
    /// Approving one's own revision.
    #[error("a reviewer cannot approve a revision they wrote")]
    OwnRevision,
    /// Publishing without an approval by someone other than the author.
    #[error("the current revision has no approval by someone other than its author")]
    NotApproved,
    /// The deadline worker came early, or there is no such deadline.
    #[error("no deadline of that kind is reached")]
    NotDue,
    /// Expiry not after publication.
    #[error("must be after publish_at")]
    ExpiryBeforePublication,
}

impl Rejection for ArticleError {
    fn kind(&self) -> RejectionKind {
        match self {
            Self::AlreadyExists => RejectionKind::AlreadyExists,
            Self::NotFound => RejectionKind::NotFound,
            Self::ExpiryBeforePublication => RejectionKind::InvalidArgument,
            Self::Version(v) if v.field().is_some() => RejectionKind::InvalidArgument,
            _ => RejectionKind::FailedPrecondition,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::ExpiryBeforePublication => Some("expire_at"),
            Self::Version(v) => v.field(),
            _ => None,
        }
    }

    fn rule(&self) -> Option<&'static str> {
        Some(match self {
            Self::Version(v) => return v.name(),
            Self::NotInReview => "NOT_IN_REVIEW",
            Self::AlreadyPublished => "ALREADY_PUBLISHED",
            Self::NotCurrentRevision(_) => "NOT_CURRENT_REVISION",
            Self::OwnRevision => "OWN_REVISION",
            Self::NotApproved => "NOT_APPROVED",
            Self::NotDue => "NOT_DUE",
            Self::AlreadyExists | Self::NotFound | Self::ExpiryBeforePublication => return None,
        })
    }
}

impl Article {
    /// A version's workflow.
    pub fn workflow(&self, locale: &str) -> Option<&Workflow> {
        self.workflows.get(locale)
    }

    /// A version's state.
    pub fn state(&self, locale: &str) -> Option<State> {
        self.workflows.get(locale).map(|w| w.state)
    }

    /// For a stale translation: the source revision it is in line with and
    /// the source's current one.
    pub fn stale(&self, locale: &str) -> Option<(u32, u32)> {
        self.versions.stale(locale)
    }

    /// The revision a public reader of `locale` gets at `now`: the live
    /// one, once its publication time is reached and before its expiry.
    pub fn served(&self, locale: &str, now: DateTime<Utc>) -> Option<&Revision<Text>> {
        let workflow = self.workflows.get(locale)?;
        let live = workflow.live.as_ref()?;
        if live.since > now || workflow.expire_at.is_some_and(|e| e <= now) {
            return None;
        }
        self.versions.revision(locale, live.revision)
    }

    fn existing(&self, locale: &str) -> Result<(&Workflow, u32), ArticleError> {
        let track = self.versions.existing(locale)?;
        let workflow = self.workflows.get(locale).ok_or(VersionRule::NoSuchVersion)?;
        Ok((workflow, track.current_number()))
    }

    /// The approval rule: the current revision approved by someone other
    /// than its author.
    fn approved(&self, locale: &str, workflow: &Workflow, current: u32) -> Result<(), ArticleError> {
        let author = self.versions.revision(locale, current).map(|r| r.author.as_str());
        match &workflow.approval {
            Some(a) if a.revision == current && Some(a.stamp.by.as_str()) != author => Ok(()),
            _ => Err(ArticleError::NotApproved),
        }
    }

    fn decide_version(&self, command: &ArticleCommand) -> Result<Vec<ArticleEvent>, ArticleError> {
        use ArticleCommand as C;
        use ArticleEvent as E;
        Ok(match command {
            C::Create(..) | C::Retag { .. } | C::ChangeSlug { .. } => Vec::new(),
            C::Edit { locale, text, translates, stamp } => {
                match self.versions.check_revise(locale, text, *translates)? {
                    None => Vec::new(),
                    Some(revision) => vec![E::Revised {
                        locale: locale.clone(),
                        revision,
                        text: text.clone(),
                        translates: *translates,
                        stamp: stamp.clone(),
                    }],
                }
            }
            C::ConfirmTranslation { locale, source_revision, stamp } => {
                if self.versions.check_confirm(locale, *source_revision)? {
                    vec![E::TranslationConfirmed {
                        locale: locale.clone(),
                        source_revision: *source_revision,
                        stamp: stamp.clone(),
                    }]
                } else {
                    Vec::new()
                }
            }
            C::SubmitForReview { locale, stamp } => {
                let (workflow, current) = self.existing(locale)?;
                match workflow.state {
                    State::InReview => Vec::new(),
                    State::Published => return Err(ArticleError::AlreadyPublished),
                    State::Draft | State::Unpublished => {
                        vec![E::Submitted { locale: locale.clone(), revision: current, stamp: stamp.clone() }]
                    }
                }
            }
            C::RequestChanges { locale, reason, stamp } => {
                let (workflow, current) = self.existing(locale)?;
                match workflow.state {
                    State::Draft => Vec::new(),
                    State::InReview => vec![E::ChangesRequested {
                        locale: locale.clone(),
                        revision: current,
                        reason: reason.clone(),
                        stamp: stamp.clone(),
                    }],
                    State::Published | State::Unpublished => return Err(ArticleError::NotInReview),
                }
            }
            C::Approve { locale, revision, stamp } => {
                let (workflow, current) = self.existing(locale)?;
                if workflow.approval.as_ref().is_some_and(|a| a.revision == *revision && a.stamp.by == stamp.by) {
                    return Ok(Vec::new());
                }
                if workflow.state != State::InReview {
                    return Err(ArticleError::NotInReview);
                }
                if *revision != current {
                    return Err(ArticleError::NotCurrentRevision(current));
                }
                if self.versions.revision(locale, current).is_some_and(|r| r.author == stamp.by) {
                    return Err(ArticleError::OwnRevision);
                }
                vec![E::Approved { locale: locale.clone(), revision: current, stamp: stamp.clone() }]
            }
            C::Publish { locale, stamp } => {
                let (workflow, current) = self.existing(locale)?;
                if workflow.live.as_ref().is_some_and(|l| l.revision == current) {
                    return Ok(Vec::new());
                }
                self.approved(locale, workflow, current)?;
                vec![E::Published { locale: locale.clone(), revision: current, scheduled: false, stamp: stamp.clone() }]
            }
            C::PublishDue { locale, stamp } => {
                let (workflow, current) = self.existing(locale)?;
                if workflow.publish_at.is_none_or(|at| at > stamp.at) {
                    return Err(ArticleError::NotDue);
                }
                self.approved(locale, workflow, current)?;
                vec![E::Published { locale: locale.clone(), revision: current, scheduled: true, stamp: stamp.clone() }]
            }
            C::ExpireDue { locale, stamp } => {
                let (workflow, _) = self.existing(locale)?;
                if workflow.expire_at.is_none_or(|at| at > stamp.at) {
                    return Err(ArticleError::NotDue);
                }
                vec![E::Expired { locale: locale.clone(), stamp: stamp.clone() }]
            }
            C::Unpublish { locale, reason, stamp } => {
                let (workflow, _) = self.existing(locale)?;
                if workflow.live.is_none() {
                    return Ok(Vec::new());
                }
                vec![E::Unpublished { locale: locale.clone(), reason: reason.clone(), stamp: stamp.clone() }]
            }
            C::Schedule { locale, publish_at, expire_at, stamp } => {
                let (workflow, current) = self.existing(locale)?;
                if let (Some(p), Some(e)) = (publish_at, expire_at)
                    && e <= p
                {
                    return Err(ArticleError::ExpiryBeforePublication);
                }
                if publish_at.is_some() && workflow.live.as_ref().is_some_and(|l| l.revision == current) {
                    return Err(ArticleError::AlreadyPublished);
                }
                if workflow.publish_at == *publish_at && workflow.expire_at == *expire_at {
                    return Ok(Vec::new());
                }
                vec![E::Scheduled {
                    locale: locale.clone(),
                    publish_at: *publish_at,
                    expire_at: *expire_at,
                    stamp: stamp.clone(),
                }]
            }
        })
    }
}

impl Aggregate for Article {
    type Command = ArticleCommand;
    type Event = ArticleEvent;
    type Error = ArticleError;
    const KIND: &'static str = "article";

    fn decide(&self, command: &ArticleCommand) -> Result<Vec<ArticleEvent>, ArticleError> {
        if let ArticleCommand::Create(new, stamp) = command {
            if self.exists() {
                return if self.id == Some(new.id) && self.slug == new.slug {
                    Ok(Vec::new())
                } else {
                    Err(ArticleError::AlreadyExists)
                };
            }
            let new = NewArticle { countries: sorted_set(&new.countries), ..new.clone() };
            return Ok(vec![ArticleEvent::Created(new, stamp.clone())]);
        }
        if !self.exists() {
            return Err(ArticleError::NotFound);
        }
        match command {
            ArticleCommand::Retag { topic, countries, stamp } => {
                let countries = sorted_set(countries);
                if self.topic == Some(*topic) && self.countries == countries {
                    return Ok(Vec::new());
                }
                Ok(vec![ArticleEvent::Retagged { topic: *topic, countries, stamp: stamp.clone() }])
            }
            ArticleCommand::ChangeSlug { slug, stamp } if *slug != self.slug => {
                Ok(vec![ArticleEvent::SlugChanged { slug: slug.clone(), stamp: stamp.clone() }])
            }
            _ => self.decide_version(command),
        }
    }

    fn evolve(&mut self, event: &ArticleEvent) {
        use ArticleEvent as E;
        match event {
            E::Created(new, _) => {
                self.id = Some(new.id);
                self.topic = Some(new.topic);
                self.countries = new.countries.clone();
                self.slug = new.slug.clone();
            }
            E::Retagged { topic, countries, .. } => {
                self.topic = Some(*topic);
                self.countries = countries.clone();
            }
            E::SlugChanged { slug, .. } => self.slug = slug.clone(),
            E::Revised { locale, revision, text, translates, stamp } => {
                self.versions.revise(locale, *revision, text, *translates, stamp);
                self.workflow_mut(locale).state = State::Draft;
            }
            E::ChangesRequested { locale, .. } => self.workflow_mut(locale).state = State::Draft,
            E::TranslationConfirmed { locale, source_revision, .. } => self.versions.confirm(locale, *source_revision),
            E::Submitted { locale, .. } => self.workflow_mut(locale).state = State::InReview,
            E::Approved { locale, revision, stamp } => {
                self.workflow_mut(locale).approval = Some(Approval { revision: *revision, stamp: stamp.clone() });
            }
            E::Published { locale, revision, stamp, .. } => {
                let workflow = self.workflow_mut(locale);
                workflow.state = State::Published;
                workflow.live = Some(Live { revision: *revision, since: stamp.at });
                workflow.publish_at = None;
            }
            E::Unpublished { locale, .. } => {
                let workflow = self.workflow_mut(locale);
                workflow.live = None;
                if workflow.state == State::Published {
                    workflow.state = State::Unpublished;
                }
            }
            E::Expired { locale, .. } => {
                let workflow = self.workflow_mut(locale);
                workflow.live = None;
                workflow.expire_at = None;
                if workflow.state == State::Published {
                    workflow.state = State::Unpublished;
                }
            }
            E::Scheduled { locale, publish_at, expire_at, .. } => {
                let workflow = self.workflow_mut(locale);
                workflow.publish_at = *publish_at;
                workflow.expire_at = *expire_at;
            }
        }
    }

    fn exists(&self) -> bool {
        self.id.is_some()
    }

    fn claims(&self, events: &[ArticleEvent]) -> Vec<ClaimChange> {
        let mut held = self.exists().then(|| self.slug.clone());
        let mut changes = Vec::new();
        for event in events {
            let slug = match event {
                ArticleEvent::Created(new, _) => &new.slug,
                ArticleEvent::SlugChanged { slug, .. } => slug,
                _ => continue,
            };
            if let Some(old) = held.take() {
                changes.push(ClaimChange::Release(Claim::new(ARTICLE_SLUG, old)));
            }
            changes.push(ClaimChange::Acquire(Claim::new(ARTICLE_SLUG, slug.clone())));
            held = Some(slug.clone());
        }
        changes
    }
}

impl Article {
    fn workflow_mut(&mut self, locale: &str) -> &mut Workflow {
        self.workflows.entry(locale.to_owned()).or_default()
    }
}

#[cfg(test)]
mod tests;
