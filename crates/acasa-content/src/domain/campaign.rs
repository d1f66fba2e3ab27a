//! An information campaign: whom it targets (people abroad in some
//! destination countries, by language, who consented to information
//! campaigns), what it sends in each language (an article, or a message),
//! when, and the record of whom it was sent to.
//!
//! **States.** draft → scheduled → sending → completed, or cancelled
//! before sending starts ([`CampaignState`]; a command in the wrong state
//! is refused, `CAMPAIGN_STATE`).
//!
//! - A draft's target (`Retarget`) and content per language (`SetContent`,
//!   only for a targeted language) can change. A target names at least one
//!   language.
//! - `Schedule` sets the send time (not in the past) once every targeted
//!   language has content (`NO_CONTENT`); a scheduled campaign can be
//!   rescheduled, or taken back to draft (`Unschedule`) to be changed.
//! - `Cancel` is possible until sending starts.
//! - The sender worker asks `StartSending` with its now once the send time
//!   is reached (`NOT_DUE` before), then records each batch it hands to the
//!   outbox (`RecordBatch`), then `Complete`s the campaign.
//!
//! **Never twice.** The campaign keeps the set of recipients recorded. A
//! batch naming a recipient already recorded — or the same one twice — is
//! refused as a whole (`ALREADY_SENT`) rather than silently trimmed: the
//! worker that built it did so from a stale view (another worker, or
//! itself before a crash, recorded them since), and must reload and build
//! its batch again; a retried command with the same request id still gets
//! its original answer from the command loop. A batch is recorded *before*
//! its messages are handed to the outbox, in the same durable write, so a
//! crash between the two loses nothing and repeats nothing. Recipients are
//! ids only: no contact detail is ever in the campaign's events, so erasing
//! a person leaves nothing here to erase.

use std::collections::{BTreeMap, BTreeSet};

use acasa_domain::{Aggregate, Rejection, RejectionKind};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Stamp, sorted_set};

/// Whom a campaign targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Destination countries (ISO 3166 alpha-2); none: every country.
    pub countries: Vec<String>,
    /// Languages (BCP 47, validated); at least one.
    pub languages: Vec<String>,
}

impl Target {
    fn normalised(&self) -> Self {
        Self { countries: sorted_set(&self.countries), languages: sorted_set(&self.languages) }
    }
}

/// One recipient of a batch: a registry person id (never a contact
/// detail), the language they are sent, and their country of residence
/// then (for the reach by country; not personal on its own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The registry person id.
    pub person: Uuid,
    /// The language sent.
    pub locale: String,
    /// Their country of residence when recorded.
    pub country: String,
}

/// What a campaign sends in one language.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// A link to an article (in that language, or its fallback).
    Article(Uuid),
    /// A message of its own: its subject and its text.
    Message {
        /// The subject (the e-mail's subject line).
        subject: String,
        /// The text.
        text: String,
    },
}

/// A new campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCampaign {
    /// Id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its target.
    pub target: Target,
}

/// Where a campaign stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CampaignState {
    /// Being prepared.
    #[default]
    Draft,
    /// Waiting for its send time.
    Scheduled,
    /// Being sent.
    Sending,
    /// Sent.
    Completed,
    /// Cancelled before sending.
    Cancelled,
}

/// A campaign's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Campaign {
    /// Id, once created.
    pub id: Option<Uuid>,
    /// Name.
    pub name: String,
    /// Target.
    pub target: Option<Target>,
    /// Content by language.
    pub content: BTreeMap<String, Content>,
    /// State.
    pub state: CampaignState,
    /// The send time, once scheduled.
    pub send_at: Option<DateTime<Utc>>,
    /// Every recipient recorded.
    pub sent: BTreeSet<Uuid>,
    /// How many were sent each language.
    pub reach: BTreeMap<String, u32>,
}

/// What can be asked of a campaign.
#[derive(Clone, Debug, PartialEq)]
pub enum CampaignCommand {
    /// Create it, as a draft.
    Create(NewCampaign, Stamp),
    /// Change a draft's target.
    Retarget(Target, Stamp),
    /// Set a draft's content in one targeted language.
    SetContent {
        /// The language.
        locale: String,
        /// The content.
        content: Content,
        /// Who, when.
        stamp: Stamp,
    },
    /// Schedule (or reschedule) it.
    Schedule {
        /// When to send.
        send_at: DateTime<Utc>,
        /// Who, when.
        stamp: Stamp,
    },
    /// Take a scheduled campaign back to draft.
    Unschedule(Stamp),
    /// Cancel it (before sending).
    Cancel {
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// The sender worker: start sending, its send time reached.
    StartSending(Stamp),
    /// The sender worker: record a batch of recipients with their language.
    RecordBatch {
        /// The recipients (registry person ids) and the language each is sent.
        sent: Vec<Recipient>,
        /// The worker, and its now.
        stamp: Stamp,
    },
    /// The sender worker: every recipient is recorded.
    Complete(Stamp),
}

/// What happened to a campaign.
#[derive(Clone, Debug, PartialEq)]
pub enum CampaignEvent {
    /// Created.
    Created(NewCampaign, Stamp),
    /// Target changed.
    Retargeted(Target, Stamp),
    /// Content set.
    ContentSet {
        /// The language.
        locale: String,
        /// The content.
        content: Content,
        /// Who, when.
        stamp: Stamp,
    },
    /// Scheduled.
    Scheduled {
        /// When to send.
        send_at: DateTime<Utc>,
        /// Who, when.
        stamp: Stamp,
    },
    /// Back to draft.
    Unscheduled(Stamp),
    /// Cancelled.
    Cancelled {
        /// Why.
        reason: String,
        /// Who, when.
        stamp: Stamp,
    },
    /// Sending started.
    SendingStarted(Stamp),
    /// A batch of recipients recorded (then handed to the outbox).
    BatchRecorded {
        /// The recipients and their language.
        sent: Vec<Recipient>,
        /// The worker, and its now.
        stamp: Stamp,
    },
    /// Completed.
    Completed(Stamp),
}

/// Why a campaign refused a command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CampaignError {
    /// Created twice.
    #[error("the campaign already exists")]
    AlreadyExists,
    /// Not created.
    #[error("no such campaign")]
    NotFound,
    /// Not allowed in its state.
    #[error("not allowed when the campaign is {0:?}")]
    State(CampaignState),
    /// A target with no language.
    #[error("a campaign targets at least one language")]
    NoLanguage,
    /// Content, or a recipient, in a language not targeted.
    #[error("the campaign does not target that language")]
    NotTargeted {
        /// The request field.
        field: &'static str,
    },
    /// Scheduled in the past.
    #[error("the send time has passed")]
    SendAtPassed,
    /// A targeted language without content.
    #[error("a targeted language has no content")]
    NoContent,
    /// The send time not reached.
    #[error("the send time has not come")]
    NotDue,
    /// A recipient already recorded (or twice in one batch).
    #[error("a recipient of the batch was already sent the campaign")]
    AlreadySent,
}

impl Rejection for CampaignError {
    fn kind(&self) -> RejectionKind {
        match self {
            Self::AlreadyExists => RejectionKind::AlreadyExists,
            Self::NotFound => RejectionKind::NotFound,
            Self::NoLanguage | Self::NotTargeted { .. } | Self::SendAtPassed => RejectionKind::InvalidArgument,
            Self::State(_) | Self::NoContent | Self::NotDue | Self::AlreadySent => RejectionKind::FailedPrecondition,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::NoLanguage => Some("target.languages"),
            Self::NotTargeted { field } => Some(field),
            Self::SendAtPassed => Some("send_at"),
            _ => None,
        }
    }

    fn rule(&self) -> Option<&'static str> {
        match self {
            Self::State(_) => Some("CAMPAIGN_STATE"),
            Self::NoContent => Some("NO_CONTENT"),
            Self::NotDue => Some("NOT_DUE"),
            Self::AlreadySent => Some("ALREADY_SENT"),
            _ => None,
        }
    }
}

impl Campaign {
    fn targets(&self, locale: &str) -> bool {
        self.target.as_ref().is_some_and(|t| t.languages.iter().any(|l| l == locale))
    }

    fn only_in(&self, allowed: &[CampaignState]) -> Result<(), CampaignError> {
        if allowed.contains(&self.state) { Ok(()) } else { Err(CampaignError::State(self.state)) }
    }

    fn check_batch(&self, sent: &[Recipient]) -> Result<(), CampaignError> {
        let mut seen = BTreeSet::new();
        for r in sent {
            if !self.targets(&r.locale) {
                return Err(CampaignError::NotTargeted { field: "sent.locale" });
            }
            if self.sent.contains(&r.person) || !seen.insert(r.person) {
                return Err(CampaignError::AlreadySent);
            }
        }
        Ok(())
    }
}

impl Aggregate for Campaign {
    type Command = CampaignCommand;
    type Event = CampaignEvent;
    type Error = CampaignError;
    const KIND: &'static str = "campaign";

    fn decide(&self, command: &CampaignCommand) -> Result<Vec<CampaignEvent>, CampaignError> {
        use CampaignCommand as C;
        use CampaignEvent as E;
        use CampaignState as S;
        if let C::Create(new, stamp) = command {
            if self.exists() {
                return if self.id == Some(new.id) { Ok(Vec::new()) } else { Err(CampaignError::AlreadyExists) };
            }
            let target = new.target.normalised();
            if target.languages.is_empty() {
                return Err(CampaignError::NoLanguage);
            }
            return Ok(vec![E::Created(NewCampaign { target, ..new.clone() }, stamp.clone())]);
        }
        if !self.exists() {
            return Err(CampaignError::NotFound);
        }
        Ok(match command {
            C::Create(..) => Vec::new(),
            C::Retarget(target, stamp) => {
                let target = target.normalised();
                if self.target.as_ref() == Some(&target) {
                    return Ok(Vec::new());
                }
                self.only_in(&[S::Draft])?;
                if target.languages.is_empty() {
                    return Err(CampaignError::NoLanguage);
                }
                vec![E::Retargeted(target, stamp.clone())]
            }
            C::SetContent { locale, content, stamp } => {
                if self.content.get(locale) == Some(content) {
                    return Ok(Vec::new());
                }
                self.only_in(&[S::Draft])?;
                if !self.targets(locale) {
                    return Err(CampaignError::NotTargeted { field: "locale" });
                }
                vec![E::ContentSet { locale: locale.clone(), content: content.clone(), stamp: stamp.clone() }]
            }
            C::Schedule { send_at, stamp } => {
                if self.state == S::Scheduled && self.send_at == Some(*send_at) {
                    return Ok(Vec::new());
                }
                self.only_in(&[S::Draft, S::Scheduled])?;
                if *send_at < stamp.at {
                    return Err(CampaignError::SendAtPassed);
                }
                let languages = self.target.as_ref().map_or(&[][..], |t| t.languages.as_slice());
                if languages.iter().any(|l| !self.content.contains_key(l)) {
                    return Err(CampaignError::NoContent);
                }
                vec![E::Scheduled { send_at: *send_at, stamp: stamp.clone() }]
            }
            C::Unschedule(_) if self.state == S::Draft => Vec::new(),
            C::Unschedule(stamp) => {
                self.only_in(&[S::Scheduled])?;
                vec![E::Unscheduled(stamp.clone())]
            }
            C::Cancel { .. } if self.state == S::Cancelled => Vec::new(),
            C::Cancel { reason, stamp } => {
                self.only_in(&[S::Draft, S::Scheduled])?;
                vec![E::Cancelled { reason: reason.clone(), stamp: stamp.clone() }]
            }
            C::StartSending(_) if self.state == S::Sending => Vec::new(),
            C::StartSending(stamp) => {
                self.only_in(&[S::Scheduled])?;
                if self.send_at.is_none_or(|at| at > stamp.at) {
                    return Err(CampaignError::NotDue);
                }
                vec![E::SendingStarted(stamp.clone())]
            }
            C::RecordBatch { sent, stamp } => {
                self.only_in(&[S::Sending])?;
                if sent.is_empty() {
                    return Ok(Vec::new());
                }
                self.check_batch(sent)?;
                vec![E::BatchRecorded { sent: sent.clone(), stamp: stamp.clone() }]
            }
            C::Complete(_) if self.state == S::Completed => Vec::new(),
            C::Complete(stamp) => {
                self.only_in(&[S::Sending])?;
                vec![E::Completed(stamp.clone())]
            }
        })
    }

    fn evolve(&mut self, event: &CampaignEvent) {
        use CampaignEvent as E;
        match event {
            E::Created(new, _) => {
                self.id = Some(new.id);
                self.name = new.name.clone();
                self.target = Some(new.target.clone());
            }
            E::Retargeted(target, _) => self.target = Some(target.clone()),
            E::ContentSet { locale, content, .. } => {
                self.content.insert(locale.clone(), content.clone());
            }
            E::Scheduled { send_at, .. } => {
                self.state = CampaignState::Scheduled;
                self.send_at = Some(*send_at);
            }
            E::Unscheduled(_) => {
                self.state = CampaignState::Draft;
                self.send_at = None;
            }
            E::Cancelled { .. } => self.state = CampaignState::Cancelled,
            E::SendingStarted(_) => self.state = CampaignState::Sending,
            E::BatchRecorded { sent, .. } => {
                for r in sent {
                    if self.sent.insert(r.person) {
                        let n = self.reach.entry(r.locale.clone()).or_insert(0);
                        *n = n.saturating_add(1);
                    }
                }
            }
            E::Completed(_) => self.state = CampaignState::Completed,
        }
    }

    fn exists(&self) -> bool {
        self.id.is_some()
    }
}

#[cfg(test)]
mod tests;
