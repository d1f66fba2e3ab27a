//! The content domain: pure `decide` and `evolve`, no I/O, no clock.
//!
//! Three aggregates, each on its own subject `acasa.content.<kind>.<id>`:
//!
//! - [`article::Article`]: information for migrants abroad on one
//!   [`Topic`], for some destination countries (none: all), under a unique
//!   slug, with one version per language. Each language has its own
//!   revisions and its own draft → in review → published (→ unpublished)
//!   states; publishing needs the approval of someone other than the
//!   revision's author; scheduled publishing and expiry are recorded by the
//!   deadline worker's commands.
//! - [`agreement::Agreement`]: one bilateral labour or social-security
//!   agreement of the catalogue, its status history with the date of each
//!   transition, its document links and a summary per language.
//! - [`campaign::Campaign`]: an information campaign — its target, its
//!   content per language, its schedule, and the record of who was sent
//!   what, so that nobody is sent it twice.
//!
//! Pure helpers beside them: [`locale`] (BCP 47 locales and the fallback
//! chain), [`diff`] (what changed between two revisions), [`render`]
//! (bodies rendered safely) and [`search`] (each language's text-search
//! configuration and the bounds of a reader's query).
//!
//! [`versions`] holds what articles and agreement summaries share: one
//! version per locale, each a list of revisions, the source locale, and
//! translations that know the source revision they translate (stale when
//! the source moves on, until updated or confirmed).
//!
//! **Outside facts come in.** Locales arrive already validated as BCP 47
//! tags ([`crate::domain::locale`]), URLs, slugs and country codes already checked
//! by the edge; every time comes in the command (a [`Stamp`], or the
//! deadline worker's `now`): nothing here reads a clock.
//!
//! **Who and when.** Every event carries a [`Stamp`]: the actor's token
//! subject and the command's time. A revision's author is its stamp's
//! subject; that is what "someone other than the author" compares.

use chrono::{DateTime, Utc};

pub mod agreement;
pub mod article;
pub mod campaign;
pub mod diff;
pub mod locale;
pub mod render;
pub mod search;
pub mod versions;

/// Claim kind: an article's slug (unique across articles).
pub const ARTICLE_SLUG: &str = "article-slug";

/// Who decided, and when: the actor's token subject and the command's time.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Stamp {
    /// The actor's token subject.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

impl Stamp {
    /// `by` at `at`.
    pub fn new(by: &str, at: DateTime<Utc>) -> Self {
        Self { by: by.to_owned(), at }
    }
}

/// What an article is about: the entitlements of migrants abroad, and
/// return home.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Topic {
    /// Legal assistance.
    LegalAssistance,
    /// Portability of social benefits (pensions, allowances).
    BenefitPortability,
    /// Health services and insurance.
    HealthAndInsurance,
    /// Documents and consular help.
    DocumentsAndConsularHelp,
    /// Assisted voluntary return.
    AssistedVoluntaryReturn,
    /// Education and childcare.
    EducationAndChildcare,
    /// Return and reintegration opportunities at home.
    ReturnAndReintegration,
}

/// A set of codes (ISO 3166 alpha-2 countries, BCP 47 languages), sorted
/// and without repeats: the order and repeats a client sent mean nothing.
pub fn sorted_set(codes: &[String]) -> Vec<String> {
    let mut set: Vec<String> = codes.to_vec();
    set.sort();
    set.dedup();
    set
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Values the domain's tests share.

    use chrono::{DateTime, Utc};

    use super::Stamp;

    /// An instant, `seconds` after a fixed one.
    pub fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    /// `who` at the fixed instant.
    pub fn by(who: &str) -> Stamp {
        Stamp::new(who, t(0))
    }

    /// `who` at `t(seconds)`.
    pub fn by_at(who: &str, seconds: i64) -> Stamp {
        Stamp::new(who, t(seconds))
    }
}
