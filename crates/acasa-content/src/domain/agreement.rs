//! An agreement of the catalogue: one bilateral labour or social-security
//! agreement between Moldova and a country, its status with the date of
//! each transition, its document links, and a summary per language.
//!
//! **Status.** An agreement is catalogued in the status it has (editors
//! also record agreements negotiated long ago), with that status's date,
//! and then moves only along these transitions ([`Status::can_become`];
//! any other is refused, `AGREEMENT_STATUS`):
//!
//! ```text
//! negotiating → signed → ratified → in force ⇄ suspended
//!      └──────────┴──────────┴──────────┴──────────┴──→ terminated
//! ```
//!
//! Each transition carries its date, never before the previous one's
//! (`AGREEMENT_DATES`; the same day is fine: some agreements are signed
//! and ratified the same day). Terminated is final. Asking for the status
//! it already has on the date it already has records nothing.
//!
//! **Links** to the agreement's documents (URLs validated by the edge) are
//! a set: adding one present, or removing one absent, records nothing.
//!
//! **Summaries** are versioned per locale under the same rules as articles'
//! versions ([`Versions`]): numbered revisions with author and time, the
//! first locale written is the source, translations name the source
//! revision they translate (`NO_SUCH_SOURCE_REVISION`), show as stale when
//! it moves on, and are updated or confirmed. The catalogue is publicly
//! readable as it stands: summaries have no review step of their own.

use acasa_domain::{Aggregate, Rejection, RejectionKind};
use chrono::NaiveDate;
use uuid::Uuid;

use super::Stamp;
use super::versions::{VersionRule, Versions};

/// What an agreement coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Labour migration.
    Labour,
    /// Social security (pensions, benefits portability).
    SocialSecurity,
}

/// Where an agreement stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Being negotiated.
    Negotiating,
    /// Signed.
    Signed,
    /// Ratified.
    Ratified,
    /// In force.
    InForce,
    /// Suspended.
    Suspended,
    /// Terminated (final).
    Terminated,
}

impl Status {
    /// Whether an agreement in this status may move to `to`.
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Negotiating, Signed)
                | (Signed, Ratified)
                | (Ratified, InForce)
                | (InForce, Suspended)
                | (Suspended, InForce)
                | (Negotiating | Signed | Ratified | InForce | Suspended, Terminated)
        )
    }
}

/// A new agreement of the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAgreement {
    /// Id.
    pub id: Uuid,
    /// The other country (ISO 3166 alpha-2).
    pub country: String,
    /// Its kind.
    pub kind: Kind,
    /// Its title.
    pub title: String,
    /// Its status when catalogued.
    pub status: Status,
    /// Since when.
    pub on: NaiveDate,
}

/// An agreement's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Agreement {
    /// Id, once catalogued.
    pub id: Option<Uuid>,
    /// The other country.
    pub country: String,
    /// Its kind.
    pub kind: Option<Kind>,
    /// Its title.
    pub title: String,
    /// Every status it has had, with its date, oldest first.
    pub history: Vec<(Status, NaiveDate)>,
    /// Links to its documents.
    pub links: Vec<String>,
    /// Its summary per locale.
    pub summaries: Versions<String>,
}

/// What can be asked of an agreement.
#[derive(Clone, Debug, PartialEq)]
pub enum AgreementCommand {
    /// Catalogue it.
    Create(NewAgreement, Stamp),
    /// Change its title.
    Rename {
        /// The title.
        title: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Move it to another status.
    Transition {
        /// The status.
        to: Status,
        /// Its date.
        on: NaiveDate,
        /// Who, when.
        stamp: Stamp,
    },
    /// Add a document link.
    AddLink {
        /// The URL.
        url: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Remove a document link.
    RemoveLink {
        /// The URL.
        url: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Write a new revision of a locale's summary.
    EditSummary {
        /// The locale.
        locale: String,
        /// The summary.
        text: String,
        /// For a translation: the source revision it translates.
        translates: Option<u32>,
        /// The author, when.
        stamp: Stamp,
    },
    /// Confirm a translated summary needs no change for a newer source revision.
    ConfirmTranslation {
        /// The locale.
        locale: String,
        /// The source revision.
        source_revision: u32,
        /// Who, when.
        stamp: Stamp,
    },
}

/// What happened to an agreement.
#[derive(Clone, Debug, PartialEq)]
pub enum AgreementEvent {
    /// Catalogued.
    Created(NewAgreement, Stamp),
    /// Title changed.
    Renamed {
        /// The title.
        title: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Status changed.
    StatusChanged {
        /// The status.
        to: Status,
        /// Its date.
        on: NaiveDate,
        /// Who, when.
        stamp: Stamp,
    },
    /// Link added.
    LinkAdded {
        /// The URL.
        url: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Link removed.
    LinkRemoved {
        /// The URL.
        url: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// A summary revision written.
    SummaryRevised {
        /// The locale.
        locale: String,
        /// Its number.
        revision: u32,
        /// The summary.
        text: String,
        /// The source revision it translates.
        translates: Option<u32>,
        /// The author, when.
        stamp: Stamp,
    },
    /// A translated summary confirmed in line with a newer source revision.
    TranslationConfirmed {
        /// The locale.
        locale: String,
        /// The source revision.
        source_revision: u32,
        /// Who, when.
        stamp: Stamp,
    },
}

/// Why an agreement refused a command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AgreementError {
    /// Catalogued twice.
    #[error("the agreement already exists")]
    AlreadyExists,
    /// Not catalogued.
    #[error("no such agreement")]
    NotFound,
    /// A transition not allowed.
    #[error("an agreement {from:?} cannot become {to:?}")]
    Status {
        /// Its status.
        from: Status,
        /// The one asked.
        to: Status,
    },
    /// A date before the previous transition's.
    #[error("the date is before the previous transition's ({0})")]
    Dates(NaiveDate),
    /// A versioning or translation rule.
    #[error(transparent)]
    Version(#[from] VersionRule),
}

impl Rejection for AgreementError {
    fn kind(&self) -> RejectionKind {
        match self {
            Self::AlreadyExists => RejectionKind::AlreadyExists,
            Self::NotFound => RejectionKind::NotFound,
            Self::Version(v) if v.field().is_some() => RejectionKind::InvalidArgument,
            _ => RejectionKind::FailedPrecondition,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Version(v) => v.field(),
            _ => None,
        }
    }

    fn rule(&self) -> Option<&'static str> {
        match self {
            Self::Status { .. } => Some("AGREEMENT_STATUS"),
            Self::Dates(_) => Some("AGREEMENT_DATES"),
            Self::Version(v) => v.name(),
            Self::AlreadyExists | Self::NotFound => None,
        }
    }
}

impl Agreement {
    /// Its status and since when.
    pub fn status(&self) -> Option<(Status, NaiveDate)> {
        self.history.last().copied()
    }

    /// For a stale translated summary: the source revision it is in line
    /// with and the source's current one.
    pub fn stale(&self, locale: &str) -> Option<(u32, u32)> {
        self.summaries.stale(locale)
    }
}

impl Aggregate for Agreement {
    type Command = AgreementCommand;
    type Event = AgreementEvent;
    type Error = AgreementError;
    const KIND: &'static str = "agreement";

    fn decide(&self, command: &AgreementCommand) -> Result<Vec<AgreementEvent>, AgreementError> {
        use AgreementCommand as C;
        use AgreementEvent as E;
        if let C::Create(new, stamp) = command {
            if self.exists() {
                return if self.id == Some(new.id) { Ok(Vec::new()) } else { Err(AgreementError::AlreadyExists) };
            }
            return Ok(vec![E::Created(new.clone(), stamp.clone())]);
        }
        let Some((status, since)) = self.status() else {
            return Err(AgreementError::NotFound);
        };
        Ok(match command {
            C::Create(..) => Vec::new(),
            C::Rename { title, .. } if *title == self.title => Vec::new(),
            C::Rename { title, stamp } => vec![E::Renamed { title: title.clone(), stamp: stamp.clone() }],
            C::Transition { to, on, .. } if (*to, *on) == (status, since) => Vec::new(),
            C::Transition { to, on, stamp } => {
                if !status.can_become(*to) {
                    return Err(AgreementError::Status { from: status, to: *to });
                }
                if *on < since {
                    return Err(AgreementError::Dates(since));
                }
                vec![E::StatusChanged { to: *to, on: *on, stamp: stamp.clone() }]
            }
            C::AddLink { url, .. } if self.links.contains(url) => Vec::new(),
            C::AddLink { url, stamp } => vec![E::LinkAdded { url: url.clone(), stamp: stamp.clone() }],
            C::RemoveLink { url, stamp } if self.links.contains(url) => {
                vec![E::LinkRemoved { url: url.clone(), stamp: stamp.clone() }]
            }
            C::RemoveLink { .. } => Vec::new(),
            C::EditSummary { locale, text, translates, stamp } => {
                match self.summaries.check_revise(locale, text, *translates)? {
                    None => Vec::new(),
                    Some(revision) => vec![E::SummaryRevised {
                        locale: locale.clone(),
                        revision,
                        text: text.clone(),
                        translates: *translates,
                        stamp: stamp.clone(),
                    }],
                }
            }
            C::ConfirmTranslation { locale, source_revision, stamp } => {
                if self.summaries.check_confirm(locale, *source_revision)? {
                    vec![E::TranslationConfirmed {
                        locale: locale.clone(),
                        source_revision: *source_revision,
                        stamp: stamp.clone(),
                    }]
                } else {
                    Vec::new()
                }
            }
        })
    }

    fn evolve(&mut self, event: &AgreementEvent) {
        use AgreementEvent as E;
        match event {
            E::Created(new, _) => {
                self.id = Some(new.id);
                self.country = new.country.clone();
                self.kind = Some(new.kind);
                self.title = new.title.clone();
                self.history = vec![(new.status, new.on)];
            }
            E::Renamed { title, .. } => self.title = title.clone(),
            E::StatusChanged { to, on, .. } => self.history.push((*to, *on)),
            E::LinkAdded { url, .. } => self.links.push(url.clone()),
            E::LinkRemoved { url, .. } => self.links.retain(|l| l != url),
            E::SummaryRevised { locale, revision, text, translates, stamp } => {
                self.summaries.revise(locale, *revision, text, *translates, stamp);
            }
            E::TranslationConfirmed { locale, source_revision, .. } => self.summaries.confirm(locale, *source_revision),
        }
    }

    fn exists(&self) -> bool {
        self.id.is_some()
    }
}

#[cfg(test)]
mod tests;
