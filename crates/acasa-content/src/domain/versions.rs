//! One version per locale, each a list of revisions; translations that know
//! their source. Shared by [`super::article::Article`] (title, summary and
//! body per language) and [`super::agreement::Agreement`] (a summary per
//! language): the rules are the same, so they live here once.
//!
//! **Revisions.** Every edit of a locale's version is a new [`Revision`],
//! numbered 1, 2, 3… within that version, with its author (the actor's
//! token subject), its time and its content as given. Nothing is ever
//! overwritten: the whole history can be listed and any revision read. An
//! edit that changes nothing (same content, same source revision) records
//! nothing, so a retried edit is harmless.
//!
//! **The source locale** is the locale of the first version written (e.g.
//! `ro`); it never changes. Every other version is a translation.
//!
//! **Translations know their source.** A revision of a translation records
//! the source revision it translates (`translates`); one of the source
//! version records none. Naming a source revision that does not exist is
//! refused (`NO_SUCH_SOURCE_REVISION`); a translation that names none, or
//! a source revision that names one, is a bad `translates` field.
//!
//! **Staleness.** A translation is *in line with* a source revision: the
//! one its current revision translates, or a later one an editor confirmed
//! needs no change (`ConfirmTranslation`: e.g. the source fixed a typo).
//! When the source has a newer revision than that, the translation is
//! stale ([`Versions::stale`]: the revision it is in line with and the
//! source's current one, whose diff the editor reviews). It stops being
//! stale when revised to translate the current source revision, or
//! confirmed at it. Confirming a revision no newer than the one it is in
//! line with records nothing; confirming the source version itself is
//! refused (`NOT_A_TRANSLATION`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::Stamp;

/// One revision of one locale's version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revision<T> {
    /// Its number within its version: 1, 2, 3…
    pub number: u32,
    /// Its author: the actor's token subject.
    pub author: String,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// Its content, as given.
    pub content: T,
    /// For a translation: the source revision it translates.
    pub translates: Option<u32>,
}

/// One locale's version: its revisions, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track<T> {
    /// The revisions, oldest first (revision `n` at index `n - 1`).
    pub revisions: Vec<Revision<T>>,
    /// For a translation: the source revision it is in line with (the one
    /// its current revision translates, or a later one confirmed).
    pub in_line_with: Option<u32>,
}

impl<T> Track<T> {
    /// The current (latest) revision.
    pub fn current(&self) -> Option<&Revision<T>> {
        self.revisions.last()
    }

    /// The current revision's number (0 with none).
    pub fn current_number(&self) -> u32 {
        self.revisions.last().map_or(0, |r| r.number)
    }
}

/// The versions of one piece of content, by locale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versions<T> {
    /// The source locale: the first version's.
    pub source: Option<String>,
    /// The versions by locale.
    pub tracks: BTreeMap<String, Track<T>>,
}

impl<T> Default for Versions<T> {
    fn default() -> Self {
        Self { source: None, tracks: BTreeMap::new() }
    }
}

/// A versioning or translation rule a command broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionRule {
    /// No version in that locale.
    #[error("there is no version in that locale")]
    NoSuchVersion,
    /// No such revision in that version.
    #[error("that version has no revision {0}")]
    NoSuchRevision(u32),
    /// The source revision named does not exist.
    #[error("the source has no revision {translates} (its latest is {current})")]
    NoSuchSourceRevision {
        /// The revision named.
        translates: u32,
        /// The source's current revision (0: no source yet).
        current: u32,
    },
    /// A translation that does not say which source revision it translates.
    #[error("a translation must name the source revision it translates")]
    TranslatesMissing,
    /// A revision of the source version naming a source revision.
    #[error("the source version translates nothing")]
    SourceTranslates,
    /// Confirming the source version.
    #[error("the source version is not a translation")]
    NotATranslation,
}

impl VersionRule {
    /// The request field at fault, for a bad argument.
    pub fn field(self) -> Option<&'static str> {
        matches!(self, Self::TranslatesMissing | Self::SourceTranslates).then_some("translates")
    }

    /// The rule's stable name, for a broken rule.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::NoSuchVersion => "NO_SUCH_VERSION",
            Self::NoSuchRevision(_) => "NO_SUCH_REVISION",
            Self::NoSuchSourceRevision { .. } => "NO_SUCH_SOURCE_REVISION",
            Self::NotATranslation => "NOT_A_TRANSLATION",
            Self::TranslatesMissing | Self::SourceTranslates => return None,
        })
    }
}

impl<T: PartialEq + Clone> Versions<T> {
    /// The version in `locale`.
    pub fn track(&self, locale: &str) -> Option<&Track<T>> {
        self.tracks.get(locale)
    }

    /// The version in `locale`, or [`VersionRule::NoSuchVersion`].
    pub fn existing(&self, locale: &str) -> Result<&Track<T>, VersionRule> {
        self.tracks.get(locale).ok_or(VersionRule::NoSuchVersion)
    }

    /// The current revision in `locale`.
    pub fn current(&self, locale: &str) -> Option<&Revision<T>> {
        self.tracks.get(locale).and_then(Track::current)
    }

    /// Revision `number` in `locale`.
    pub fn revision(&self, locale: &str, number: u32) -> Option<&Revision<T>> {
        let index = usize::try_from(number.checked_sub(1)?).ok()?;
        self.tracks.get(locale)?.revisions.get(index)
    }

    /// Every revision in `locale`, oldest first.
    pub fn history(&self, locale: &str) -> &[Revision<T>] {
        self.tracks.get(locale).map_or(&[], |t| t.revisions.as_slice())
    }

    /// Whether `locale` is (or, with no version yet, would become) the source.
    pub fn is_source(&self, locale: &str) -> bool {
        self.source.as_deref().is_none_or(|s| s == locale)
    }

    /// The source's current revision number (0 with no source yet).
    pub fn source_current(&self) -> u32 {
        self.source.as_deref().and_then(|s| self.tracks.get(s)).map_or(0, Track::current_number)
    }

    /// The number of the revision an edit of `locale` to `content`
    /// translating `translates` would create; `None` if it changes nothing.
    pub fn check_revise(&self, locale: &str, content: &T, translates: Option<u32>) -> Result<Option<u32>, VersionRule> {
        match (self.is_source(locale), translates) {
            (true, Some(_)) => return Err(VersionRule::SourceTranslates),
            (false, None) => return Err(VersionRule::TranslatesMissing),
            (false, Some(n)) => {
                let current = self.source_current();
                if n == 0 || n > current {
                    return Err(VersionRule::NoSuchSourceRevision { translates: n, current });
                }
            }
            (true, None) => {}
        }
        let track = self.tracks.get(locale);
        if let Some(now) = track.and_then(Track::current)
            && now.content == *content
            && now.translates == translates
        {
            return Ok(None);
        }
        Ok(Some(track.map_or(0, Track::current_number).saturating_add(1)))
    }

    /// Records revision `number` of `locale` (the first version's locale
    /// becomes the source).
    pub fn revise(&mut self, locale: &str, number: u32, content: &T, translates: Option<u32>, stamp: &Stamp) {
        if self.source.is_none() {
            self.source = Some(locale.to_owned());
        }
        let track =
            self.tracks.entry(locale.to_owned()).or_insert_with(|| Track { revisions: Vec::new(), in_line_with: None });
        track.revisions.push(Revision {
            number,
            author: stamp.by.clone(),
            at: stamp.at,
            content: content.clone(),
            translates,
        });
        track.in_line_with = translates;
    }

    /// Whether confirming `locale` at source revision `source_revision`
    /// changes anything.
    pub fn check_confirm(&self, locale: &str, source_revision: u32) -> Result<bool, VersionRule> {
        let track = self.existing(locale)?;
        if self.is_source(locale) {
            return Err(VersionRule::NotATranslation);
        }
        let current = self.source_current();
        if source_revision == 0 || source_revision > current {
            return Err(VersionRule::NoSuchSourceRevision { translates: source_revision, current });
        }
        Ok(track.in_line_with.is_none_or(|n| n < source_revision))
    }

    /// Records that `locale` is in line with source revision `source_revision`.
    pub fn confirm(&mut self, locale: &str, source_revision: u32) {
        if let Some(track) = self.tracks.get_mut(locale) {
            track.in_line_with = Some(track.in_line_with.map_or(source_revision, |n| n.max(source_revision)));
        }
    }

    /// For a stale translation: the source revision it is in line with and
    /// the source's current revision. `None` for the source, a locale with
    /// no version, or a translation in line with the current source.
    pub fn stale(&self, locale: &str) -> Option<(u32, u32)> {
        if self.is_source(locale) {
            return None;
        }
        let in_line_with = self.tracks.get(locale)?.in_line_with?;
        let current = self.source_current();
        (in_line_with < current).then_some((in_line_with, current))
    }
}
