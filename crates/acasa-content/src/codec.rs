//! The content events as the log stores them: the `acasa.content.v1` event
//! messages (`proto/acasa/content/v1/events.proto`) that the domain's
//! [`ArticleEvent`], [`AgreementEvent`] and [`CampaignEvent`] become, by type name and schema
//! version, and the conversions between the domain's enums and their
//! protobuf forms (also used by the service's validation and queries). The
//! only place the service's events become bytes.
//!
//! Decoding is strict: a missing or invalid id, time, date, revision number
//! or enum value, and an empty actor, locale, slug, country or URL, is a
//! [`DecodeError`] naming the field, never a default. Texts (titles,
//! summaries, bodies, reasons) are stored exactly as written and read back
//! as they are, empty or not.
//!
//! A revision's `translates` is `0` for a revision of the source version
//! (the domain's `None`): source revisions are numbered from 1.

use acasa_domain::{DecodeError, EncodedEvent, EventCodec};
use acasa_proto::{Message, Timestamp, content::v1 as pb, time, r#type::v1::Date};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::domain::{
    Stamp, Topic,
    agreement::{AgreementEvent, Kind, NewAgreement, Status},
    article::{ArticleEvent, NewArticle, State, Text},
    campaign::{CampaignEvent, CampaignState, Content, NewCampaign, Recipient, Target},
};

/// Type names of the events.
pub mod names {
    /// `ArticleCreated`.
    pub const ARTICLE_CREATED: &str = "acasa.content.v1.ArticleCreated";
    /// `ArticleRetagged`.
    pub const ARTICLE_RETAGGED: &str = "acasa.content.v1.ArticleRetagged";
    /// `ArticleSlugChanged`.
    pub const ARTICLE_SLUG_CHANGED: &str = "acasa.content.v1.ArticleSlugChanged";
    /// `ArticleRevised`.
    pub const ARTICLE_REVISED: &str = "acasa.content.v1.ArticleRevised";
    /// `ArticleSubmitted`.
    pub const ARTICLE_SUBMITTED: &str = "acasa.content.v1.ArticleSubmitted";
    /// `ArticleChangesRequested`.
    pub const ARTICLE_CHANGES_REQUESTED: &str = "acasa.content.v1.ArticleChangesRequested";
    /// `ArticleApproved`.
    pub const ARTICLE_APPROVED: &str = "acasa.content.v1.ArticleApproved";
    /// `ArticlePublished`.
    pub const ARTICLE_PUBLISHED: &str = "acasa.content.v1.ArticlePublished";
    /// `ArticleUnpublished`.
    pub const ARTICLE_UNPUBLISHED: &str = "acasa.content.v1.ArticleUnpublished";
    /// `ArticleScheduled`.
    pub const ARTICLE_SCHEDULED: &str = "acasa.content.v1.ArticleScheduled";
    /// `ArticleExpired`.
    pub const ARTICLE_EXPIRED: &str = "acasa.content.v1.ArticleExpired";
    /// `ArticleTranslationConfirmed`.
    pub const ARTICLE_TRANSLATION_CONFIRMED: &str = "acasa.content.v1.ArticleTranslationConfirmed";
    /// `AgreementCreated`.
    pub const AGREEMENT_CREATED: &str = "acasa.content.v1.AgreementCreated";
    /// `AgreementRenamed`.
    pub const AGREEMENT_RENAMED: &str = "acasa.content.v1.AgreementRenamed";
    /// `AgreementStatusChanged`.
    pub const AGREEMENT_STATUS_CHANGED: &str = "acasa.content.v1.AgreementStatusChanged";
    /// `AgreementLinkAdded`.
    pub const AGREEMENT_LINK_ADDED: &str = "acasa.content.v1.AgreementLinkAdded";
    /// `AgreementLinkRemoved`.
    pub const AGREEMENT_LINK_REMOVED: &str = "acasa.content.v1.AgreementLinkRemoved";
    /// `AgreementSummaryRevised`.
    pub const AGREEMENT_SUMMARY_REVISED: &str = "acasa.content.v1.AgreementSummaryRevised";
    /// `AgreementTranslationConfirmed`.
    pub const AGREEMENT_TRANSLATION_CONFIRMED: &str = "acasa.content.v1.AgreementTranslationConfirmed";
    /// `CampaignCreated`.
    pub const CAMPAIGN_CREATED: &str = "acasa.content.v1.CampaignCreated";
    /// `CampaignRetargeted`.
    pub const CAMPAIGN_RETARGETED: &str = "acasa.content.v1.CampaignRetargeted";
    /// `CampaignContentSet`.
    pub const CAMPAIGN_CONTENT_SET: &str = "acasa.content.v1.CampaignContentSet";
    /// `CampaignScheduled`.
    pub const CAMPAIGN_SCHEDULED: &str = "acasa.content.v1.CampaignScheduled";
    /// `CampaignUnscheduled`.
    pub const CAMPAIGN_UNSCHEDULED: &str = "acasa.content.v1.CampaignUnscheduled";
    /// `CampaignCancelled`.
    pub const CAMPAIGN_CANCELLED: &str = "acasa.content.v1.CampaignCancelled";
    /// `CampaignSendingStarted`.
    pub const CAMPAIGN_SENDING_STARTED: &str = "acasa.content.v1.CampaignSendingStarted";
    /// `CampaignBatchRecorded`.
    pub const CAMPAIGN_BATCH_RECORDED: &str = "acasa.content.v1.CampaignBatchRecorded";
    /// `CampaignCompleted`.
    pub const CAMPAIGN_COMPLETED: &str = "acasa.content.v1.CampaignCompleted";
}

fn encoded(type_name: &str, m: &impl Message) -> EncodedEvent {
    EncodedEvent { type_name: type_name.to_owned(), schema_version: 1, data: m.encode_to_vec() }
}

fn decoded<M: Message + Default>(e: &EncodedEvent) -> Result<M, DecodeError> {
    if e.schema_version != 1 {
        return Err(DecodeError::new(e, format!("unknown schema version {}", e.schema_version)));
    }
    M::decode(e.data.as_slice()).map_err(|err| DecodeError::new(e, err.to_string()))
}

fn missing(e: &EncodedEvent, field: &str) -> DecodeError {
    DecodeError::new(e, format!("{field} is missing"))
}

// ------------------------------------------------------------ enums

/// The protobuf topic.
pub fn topic_to_pb(t: Topic) -> pb::Topic {
    match t {
        Topic::LegalAssistance => pb::Topic::LegalAssistance,
        Topic::BenefitPortability => pb::Topic::BenefitPortability,
        Topic::HealthAndInsurance => pb::Topic::HealthAndInsurance,
        Topic::DocumentsAndConsularHelp => pb::Topic::DocumentsAndConsularHelp,
        Topic::AssistedVoluntaryReturn => pb::Topic::AssistedVoluntaryReturn,
        Topic::EducationAndChildcare => pb::Topic::EducationAndChildcare,
        Topic::ReturnAndReintegration => pb::Topic::ReturnAndReintegration,
    }
}

/// The topic of a protobuf topic (`None`: unspecified or unknown).
pub fn topic_from_pb(t: i32) -> Option<Topic> {
    Some(match pb::Topic::try_from(t).ok()? {
        pb::Topic::LegalAssistance => Topic::LegalAssistance,
        pb::Topic::BenefitPortability => Topic::BenefitPortability,
        pb::Topic::HealthAndInsurance => Topic::HealthAndInsurance,
        pb::Topic::DocumentsAndConsularHelp => Topic::DocumentsAndConsularHelp,
        pb::Topic::AssistedVoluntaryReturn => Topic::AssistedVoluntaryReturn,
        pb::Topic::EducationAndChildcare => Topic::EducationAndChildcare,
        pb::Topic::ReturnAndReintegration => Topic::ReturnAndReintegration,
        pb::Topic::Unspecified => return None,
    })
}

/// The protobuf kind of an agreement.
pub fn kind_to_pb(k: Kind) -> pb::AgreementKind {
    match k {
        Kind::Labour => pb::AgreementKind::Labour,
        Kind::SocialSecurity => pb::AgreementKind::SocialSecurity,
    }
}

/// The kind of an agreement of its protobuf kind (`None`: unspecified or
/// unknown).
pub fn kind_from_pb(k: i32) -> Option<Kind> {
    Some(match pb::AgreementKind::try_from(k).ok()? {
        pb::AgreementKind::Labour => Kind::Labour,
        pb::AgreementKind::SocialSecurity => Kind::SocialSecurity,
        pb::AgreementKind::Unspecified => return None,
    })
}

/// The protobuf status of an agreement.
pub fn status_to_pb(s: Status) -> pb::AgreementStatus {
    match s {
        Status::Negotiating => pb::AgreementStatus::Negotiating,
        Status::Signed => pb::AgreementStatus::Signed,
        Status::Ratified => pb::AgreementStatus::Ratified,
        Status::InForce => pb::AgreementStatus::InForce,
        Status::Suspended => pb::AgreementStatus::Suspended,
        Status::Terminated => pb::AgreementStatus::Terminated,
    }
}

/// The status of an agreement of its protobuf status (`None`: unspecified
/// or unknown).
pub fn status_from_pb(s: i32) -> Option<Status> {
    Some(match pb::AgreementStatus::try_from(s).ok()? {
        pb::AgreementStatus::Negotiating => Status::Negotiating,
        pb::AgreementStatus::Signed => Status::Signed,
        pb::AgreementStatus::Ratified => Status::Ratified,
        pb::AgreementStatus::InForce => Status::InForce,
        pb::AgreementStatus::Suspended => Status::Suspended,
        pb::AgreementStatus::Terminated => Status::Terminated,
        pb::AgreementStatus::Unspecified => return None,
    })
}

/// The protobuf state of an article's version.
pub fn state_to_pb(s: State) -> pb::VersionState {
    match s {
        State::Draft => pb::VersionState::Draft,
        State::InReview => pb::VersionState::InReview,
        State::Published => pb::VersionState::Published,
        State::Unpublished => pb::VersionState::Unpublished,
    }
}

/// The enum value `field` of `e`, read by `of`: set (not 0) and known.
fn enum_in<T>(e: &EncodedEvent, field: &str, n: i32, of: fn(i32) -> Option<T>) -> Result<T, DecodeError> {
    if n == 0 {
        return Err(missing(e, field));
    }
    of(n).ok_or_else(|| DecodeError::new(e, format!("{field} {n} is unknown")))
}

// ------------------------------------------------------------ values

fn ts(t: DateTime<Utc>) -> Option<Timestamp> {
    Some(time::timestamp(t))
}

/// The time `field` of `e`: present and in range.
fn time_in(e: &EncodedEvent, field: &str, t: Option<&Timestamp>) -> Result<DateTime<Utc>, DecodeError> {
    let t = t.ok_or_else(|| missing(e, field))?;
    time::checked_time(t).ok_or_else(|| DecodeError::new(e, format!("{field} is out of range")))
}

/// The optional time `field` of `e`: unset is `None`, set is in range.
fn optional_time_in(
    e: &EncodedEvent,
    field: &str,
    t: Option<&Timestamp>,
) -> Result<Option<DateTime<Utc>>, DecodeError> {
    t.map(|t| time_in(e, field, Some(t))).transpose()
}

/// The date `field` of `e`: present and a calendar date.
fn date_in(e: &EncodedEvent, field: &str, d: Option<&Date>) -> Result<NaiveDate, DecodeError> {
    let d = d.ok_or_else(|| missing(e, field))?;
    time::naive_date(d).ok_or_else(|| DecodeError::new(e, format!("{field} is not a date")))
}

/// The id `field` of `e`.
fn id_in(e: &EncodedEvent, field: &str, s: &str) -> Result<Uuid, DecodeError> {
    if s.is_empty() {
        return Err(missing(e, field));
    }
    Uuid::parse_str(s).map_err(|_| DecodeError::new(e, format!("{field} is not a UUID")))
}

/// The required string `field` of `e`: not empty.
fn required(e: &EncodedEvent, field: &str, s: String) -> Result<String, DecodeError> {
    if s.is_empty() {
        return Err(missing(e, field));
    }
    Ok(s)
}

/// The revision number `field` of `e`: revisions are numbered from 1.
fn revision_in(e: &EncodedEvent, field: &str, n: u32) -> Result<u32, DecodeError> {
    if n == 0 {
        return Err(missing(e, field));
    }
    Ok(n)
}

/// The source revision a revision translates (`None`, 0: a source revision).
fn translates(t: Option<u32>) -> u32 {
    t.unwrap_or(0)
}

fn translates_in(t: u32) -> Option<u32> {
    (t != 0).then_some(t)
}

/// The stamp of `e`: its actor and its time `at`.
fn stamp_in(e: &EncodedEvent, actor: String, at: Option<&Timestamp>) -> Result<Stamp, DecodeError> {
    Ok(Stamp { by: required(e, "actor", actor)?, at: time_in(e, "at", at)? })
}

// ------------------------------------------------------------ articles

impl EventCodec for ArticleEvent {
    fn encode(&self) -> EncodedEvent {
        use names::*;
        match self {
            Self::Created(a, s) => encoded(
                ARTICLE_CREATED,
                &pb::ArticleCreated {
                    article_id: a.id.to_string(),
                    topic: topic_to_pb(a.topic) as i32,
                    countries: a.countries.clone(),
                    slug: a.slug.clone(),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::Retagged { topic, countries, stamp: s } => encoded(
                ARTICLE_RETAGGED,
                &pb::ArticleRetagged {
                    topic: topic_to_pb(*topic) as i32,
                    countries: countries.clone(),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::SlugChanged { slug, stamp: s } => encoded(
                ARTICLE_SLUG_CHANGED,
                &pb::ArticleSlugChanged { slug: slug.clone(), actor: s.by.clone(), at: ts(s.at) },
            ),
            Self::Revised { locale, revision, text, translates: t, stamp: s } => encoded(
                ARTICLE_REVISED,
                &pb::ArticleRevised {
                    locale: locale.clone(),
                    revision: *revision,
                    title: text.title.clone(),
                    summary: text.summary.clone(),
                    body: text.body.clone(),
                    translates: translates(*t),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::Submitted { locale, revision, stamp: s } => encoded(
                ARTICLE_SUBMITTED,
                &pb::ArticleSubmitted {
                    locale: locale.clone(),
                    revision: *revision,
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::ChangesRequested { locale, revision, reason, stamp: s } => encoded(
                ARTICLE_CHANGES_REQUESTED,
                &pb::ArticleChangesRequested {
                    locale: locale.clone(),
                    revision: *revision,
                    reason: reason.clone(),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::Approved { locale, revision, stamp: s } => encoded(
                ARTICLE_APPROVED,
                &pb::ArticleApproved { locale: locale.clone(), revision: *revision, actor: s.by.clone(), at: ts(s.at) },
            ),
            Self::Published { locale, revision, scheduled, stamp: s } => encoded(
                ARTICLE_PUBLISHED,
                &pb::ArticlePublished {
                    locale: locale.clone(),
                    revision: *revision,
                    scheduled: *scheduled,
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::Unpublished { locale, reason, stamp: s } => encoded(
                ARTICLE_UNPUBLISHED,
                &pb::ArticleUnpublished {
                    locale: locale.clone(),
                    reason: reason.clone(),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::Scheduled { locale, publish_at, expire_at, stamp: s } => encoded(
                ARTICLE_SCHEDULED,
                &pb::ArticleScheduled {
                    locale: locale.clone(),
                    publish_at: publish_at.map(time::timestamp),
                    expire_at: expire_at.map(time::timestamp),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::Expired { locale, stamp: s } => encoded(
                ARTICLE_EXPIRED,
                &pb::ArticleExpired { locale: locale.clone(), actor: s.by.clone(), at: ts(s.at) },
            ),
            Self::TranslationConfirmed { locale, source_revision, stamp: s } => encoded(
                ARTICLE_TRANSLATION_CONFIRMED,
                &pb::ArticleTranslationConfirmed {
                    locale: locale.clone(),
                    source_revision: *source_revision,
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
        }
    }

    fn decode(e: &EncodedEvent) -> Result<Self, DecodeError> {
        use names::*;
        Ok(match e.type_name.as_str() {
            ARTICLE_CREATED => {
                let m: pb::ArticleCreated = decoded(e)?;
                Self::Created(
                    NewArticle {
                        id: id_in(e, "article_id", &m.article_id)?,
                        topic: enum_in(e, "topic", m.topic, topic_from_pb)?,
                        countries: m.countries,
                        slug: required(e, "slug", m.slug)?,
                    },
                    stamp_in(e, m.actor, m.at.as_ref())?,
                )
            }
            ARTICLE_RETAGGED => {
                let m: pb::ArticleRetagged = decoded(e)?;
                Self::Retagged {
                    topic: enum_in(e, "topic", m.topic, topic_from_pb)?,
                    countries: m.countries,
                    stamp: stamp_in(e, m.actor, m.at.as_ref())?,
                }
            }
            ARTICLE_SLUG_CHANGED => {
                let m: pb::ArticleSlugChanged = decoded(e)?;
                Self::SlugChanged { slug: required(e, "slug", m.slug)?, stamp: stamp_in(e, m.actor, m.at.as_ref())? }
            }
            ARTICLE_REVISED => {
                let m: pb::ArticleRevised = decoded(e)?;
                Self::Revised {
                    locale: required(e, "locale", m.locale)?,
                    revision: revision_in(e, "revision", m.revision)?,
                    text: Text { title: m.title, summary: m.summary, body: m.body },
                    translates: translates_in(m.translates),
                    stamp: stamp_in(e, m.actor, m.at.as_ref())?,
                }
            }
            ARTICLE_SUBMITTED => {
                let m: pb::ArticleSubmitted = decoded(e)?;
                Self::Submitted {
                    locale: required(e, "locale", m.locale)?,
                    revision: revision_in(e, "revision", m.revision)?,
                    stamp: stamp_in(e, m.actor, m.at.as_ref())?,
                }
            }
            ARTICLE_CHANGES_REQUESTED => {
                let m: pb::ArticleChangesRequested = decoded(e)?;
                Self::ChangesRequested {
                    locale: required(e, "locale", m.locale)?,
                    revision: revision_in(e, "revision", m.revision)?,
                    reason: m.reason,
                    stamp: stamp_in(e, m.actor, m.at.as_ref())?,
                }
            }
            ARTICLE_APPROVED => {
                let m: pb::ArticleApproved = decoded(e)?;
                Self::Approved {
                    locale: required(e, "locale", m.locale)?,
                    revision: revision_in(e, "revision", m.revision)?,
                    stamp: stamp_in(e, m.actor, m.at.as_ref())?,
                }
            }
            ARTICLE_PUBLISHED => {
                let m: pb::ArticlePublished = decoded(e)?;
                Self::Published {
                    locale: required(e, "locale", m.locale)?,
                    revision: revision_in(e, "revision", m.revision)?,
                    scheduled: m.scheduled,
                    stamp: stamp_in(e, m.actor, m.at.as_ref())?,
                }
            }
            ARTICLE_UNPUBLISHED => {
                let m: pb::ArticleUnpublished = decoded(e)?;
                Self::Unpublished {
                    locale: required(e, "locale", m.locale)?,
                    reason: m.reason,
                    stamp: stamp_in(e, m.actor, m.at.as_ref())?,
                }
            }
            ARTICLE_SCHEDULED => {
                let m: pb::ArticleScheduled = decoded(e)?;
                Self::Scheduled {
                    locale: required(e, "locale", m.locale)?,
                    publish_at: optional_time_in(e, "publish_at", m.publish_at.as_ref())?,
                    expire_at: optional_time_in(e, "expire_at", m.expire_at.as_ref())?,
                    stamp: stamp_in(e, m.actor, m.at.as_ref())?,
                }
            }
            ARTICLE_EXPIRED => {
                let m: pb::ArticleExpired = decoded(e)?;
                Self::Expired { locale: required(e, "locale", m.locale)?, stamp: stamp_in(e, m.actor, m.at.as_ref())? }
            }
            ARTICLE_TRANSLATION_CONFIRMED => {
                let m: pb::ArticleTranslationConfirmed = decoded(e)?;
                Self::TranslationConfirmed {
                    locale: required(e, "locale", m.locale)?,
                    source_revision: revision_in(e, "source_revision", m.source_revision)?,
                    stamp: stamp_in(e, m.actor, m.at.as_ref())?,
                }
            }
            _ => return Err(DecodeError::new(e, "not an article event")),
        })
    }
}

// ------------------------------------------------------------ agreements

impl EventCodec for AgreementEvent {
    fn encode(&self) -> EncodedEvent {
        use names::*;
        match self {
            Self::Created(a, s) => encoded(
                AGREEMENT_CREATED,
                &pb::AgreementCreated {
                    agreement_id: a.id.to_string(),
                    country: a.country.clone(),
                    kind: kind_to_pb(a.kind) as i32,
                    title: a.title.clone(),
                    status: status_to_pb(a.status) as i32,
                    on: Some(time::date(a.on)),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::Renamed { title, stamp: s } => encoded(
                AGREEMENT_RENAMED,
                &pb::AgreementRenamed { title: title.clone(), actor: s.by.clone(), at: ts(s.at) },
            ),
            Self::StatusChanged { to, on, stamp: s } => encoded(
                AGREEMENT_STATUS_CHANGED,
                &pb::AgreementStatusChanged {
                    status: status_to_pb(*to) as i32,
                    on: Some(time::date(*on)),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::LinkAdded { url, stamp: s } => encoded(
                AGREEMENT_LINK_ADDED,
                &pb::AgreementLinkAdded { url: url.clone(), actor: s.by.clone(), at: ts(s.at) },
            ),
            Self::LinkRemoved { url, stamp: s } => encoded(
                AGREEMENT_LINK_REMOVED,
                &pb::AgreementLinkRemoved { url: url.clone(), actor: s.by.clone(), at: ts(s.at) },
            ),
            Self::SummaryRevised { locale, revision, text, translates: t, stamp: s } => encoded(
                AGREEMENT_SUMMARY_REVISED,
                &pb::AgreementSummaryRevised {
                    locale: locale.clone(),
                    revision: *revision,
                    summary: text.clone(),
                    translates: translates(*t),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::TranslationConfirmed { locale, source_revision, stamp: s } => encoded(
                AGREEMENT_TRANSLATION_CONFIRMED,
                &pb::AgreementTranslationConfirmed {
                    locale: locale.clone(),
                    source_revision: *source_revision,
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
        }
    }

    fn decode(e: &EncodedEvent) -> Result<Self, DecodeError> {
        use names::*;
        Ok(match e.type_name.as_str() {
            AGREEMENT_CREATED => {
                let m: pb::AgreementCreated = decoded(e)?;
                Self::Created(
                    NewAgreement {
                        id: id_in(e, "agreement_id", &m.agreement_id)?,
                        country: required(e, "country", m.country)?,
                        kind: enum_in(e, "kind", m.kind, kind_from_pb)?,
                        title: m.title,
                        status: enum_in(e, "status", m.status, status_from_pb)?,
                        on: date_in(e, "on", m.on.as_ref())?,
                    },
                    stamp_in(e, m.actor, m.at.as_ref())?,
                )
            }
            AGREEMENT_RENAMED => {
                let m: pb::AgreementRenamed = decoded(e)?;
                Self::Renamed { title: m.title, stamp: stamp_in(e, m.actor, m.at.as_ref())? }
            }
            AGREEMENT_STATUS_CHANGED => {
                let m: pb::AgreementStatusChanged = decoded(e)?;
                Self::StatusChanged {
                    to: enum_in(e, "status", m.status, status_from_pb)?,
                    on: date_in(e, "on", m.on.as_ref())?,
                    stamp: stamp_in(e, m.actor, m.at.as_ref())?,
                }
            }
            AGREEMENT_LINK_ADDED => {
                let m: pb::AgreementLinkAdded = decoded(e)?;
                Self::LinkAdded { url: required(e, "url", m.url)?, stamp: stamp_in(e, m.actor, m.at.as_ref())? }
            }
            AGREEMENT_LINK_REMOVED => {
                let m: pb::AgreementLinkRemoved = decoded(e)?;
                Self::LinkRemoved { url: required(e, "url", m.url)?, stamp: stamp_in(e, m.actor, m.at.as_ref())? }
            }
            AGREEMENT_SUMMARY_REVISED => {
                let m: pb::AgreementSummaryRevised = decoded(e)?;
                Self::SummaryRevised {
                    locale: required(e, "locale", m.locale)?,
                    revision: revision_in(e, "revision", m.revision)?,
                    text: m.summary,
                    translates: translates_in(m.translates),
                    stamp: stamp_in(e, m.actor, m.at.as_ref())?,
                }
            }
            AGREEMENT_TRANSLATION_CONFIRMED => {
                let m: pb::AgreementTranslationConfirmed = decoded(e)?;
                Self::TranslationConfirmed {
                    locale: required(e, "locale", m.locale)?,
                    source_revision: revision_in(e, "source_revision", m.source_revision)?,
                    stamp: stamp_in(e, m.actor, m.at.as_ref())?,
                }
            }
            _ => return Err(DecodeError::new(e, "not an agreement event")),
        })
    }
}

/// A campaign's state in the API.
pub fn campaign_state_to_pb(s: CampaignState) -> pb::CampaignState {
    match s {
        CampaignState::Draft => pb::CampaignState::Draft,
        CampaignState::Scheduled => pb::CampaignState::Scheduled,
        CampaignState::Sending => pb::CampaignState::Sending,
        CampaignState::Completed => pb::CampaignState::Completed,
        CampaignState::Cancelled => pb::CampaignState::Cancelled,
    }
}

/// A target in the API.
pub fn target_to_pb(t: &Target) -> pb::CampaignTarget {
    pb::CampaignTarget { countries: t.countries.clone(), languages: t.languages.clone() }
}

/// A language's content in the API.
pub fn content_to_pb(locale: &str, c: &Content) -> pb::CampaignContent {
    let content = match c {
        Content::Article(id) => pb::campaign_content::Content::ArticleId(id.to_string()),
        Content::Message { subject, text } => {
            pb::campaign_content::Content::Message(pb::CampaignMessage { subject: subject.clone(), text: text.clone() })
        }
    };
    pb::CampaignContent { locale: locale.to_owned(), content: Some(content) }
}

fn target_in(e: &EncodedEvent, t: Option<pb::CampaignTarget>) -> Result<Target, DecodeError> {
    let t = t.ok_or_else(|| missing(e, "target"))?;
    if t.languages.is_empty() {
        return Err(missing(e, "target.languages"));
    }
    Ok(Target { countries: t.countries, languages: t.languages })
}

fn content_in(e: &EncodedEvent, c: Option<pb::CampaignContent>) -> Result<(String, Content), DecodeError> {
    let c = c.ok_or_else(|| missing(e, "content"))?;
    let locale = required(e, "content.locale", c.locale)?;
    let content = match c.content {
        Some(pb::campaign_content::Content::ArticleId(id)) => Content::Article(id_in(e, "content.article_id", &id)?),
        Some(pb::campaign_content::Content::Message(m)) => Content::Message { subject: m.subject, text: m.text },
        None => return Err(missing(e, "content.content")),
    };
    Ok((locale, content))
}

impl EventCodec for CampaignEvent {
    fn encode(&self) -> EncodedEvent {
        use names::*;
        match self {
            Self::Created(c, s) => encoded(
                CAMPAIGN_CREATED,
                &pb::CampaignCreated {
                    campaign_id: c.id.to_string(),
                    name: c.name.clone(),
                    target: Some(target_to_pb(&c.target)),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::Retargeted(t, s) => encoded(
                CAMPAIGN_RETARGETED,
                &pb::CampaignRetargeted { target: Some(target_to_pb(t)), actor: s.by.clone(), at: ts(s.at) },
            ),
            Self::ContentSet { locale, content, stamp: s } => encoded(
                CAMPAIGN_CONTENT_SET,
                &pb::CampaignContentSet {
                    content: Some(content_to_pb(locale, content)),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::Scheduled { send_at, stamp: s } => encoded(
                CAMPAIGN_SCHEDULED,
                &pb::CampaignScheduled { send_at: ts(*send_at), actor: s.by.clone(), at: ts(s.at) },
            ),
            Self::Unscheduled(s) => {
                encoded(CAMPAIGN_UNSCHEDULED, &pb::CampaignUnscheduled { actor: s.by.clone(), at: ts(s.at) })
            }
            Self::Cancelled { reason, stamp: s } => encoded(
                CAMPAIGN_CANCELLED,
                &pb::CampaignCancelled { reason: reason.clone(), actor: s.by.clone(), at: ts(s.at) },
            ),
            Self::SendingStarted(s) => {
                encoded(CAMPAIGN_SENDING_STARTED, &pb::CampaignSendingStarted { actor: s.by.clone(), at: ts(s.at) })
            }
            Self::BatchRecorded { sent, stamp: s } => encoded(
                CAMPAIGN_BATCH_RECORDED,
                &pb::CampaignBatchRecorded {
                    recipients: sent
                        .iter()
                        .map(|r| pb::CampaignRecipient {
                            person_id: r.person.to_string(),
                            locale: r.locale.clone(),
                            country: r.country.clone(),
                        })
                        .collect(),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::Completed(s) => {
                encoded(CAMPAIGN_COMPLETED, &pb::CampaignCompleted { actor: s.by.clone(), at: ts(s.at) })
            }
        }
    }

    fn decode(e: &EncodedEvent) -> Result<Self, DecodeError> {
        use names::*;
        Ok(match e.type_name.as_str() {
            CAMPAIGN_CREATED => {
                let m: pb::CampaignCreated = decoded(e)?;
                Self::Created(
                    NewCampaign {
                        id: id_in(e, "campaign_id", &m.campaign_id)?,
                        name: m.name,
                        target: target_in(e, m.target)?,
                    },
                    stamp_in(e, m.actor, m.at.as_ref())?,
                )
            }
            CAMPAIGN_RETARGETED => {
                let m: pb::CampaignRetargeted = decoded(e)?;
                Self::Retargeted(target_in(e, m.target)?, stamp_in(e, m.actor, m.at.as_ref())?)
            }
            CAMPAIGN_CONTENT_SET => {
                let m: pb::CampaignContentSet = decoded(e)?;
                let (locale, content) = content_in(e, m.content)?;
                Self::ContentSet { locale, content, stamp: stamp_in(e, m.actor, m.at.as_ref())? }
            }
            CAMPAIGN_SCHEDULED => {
                let m: pb::CampaignScheduled = decoded(e)?;
                Self::Scheduled {
                    send_at: time_in(e, "send_at", m.send_at.as_ref())?,
                    stamp: stamp_in(e, m.actor, m.at.as_ref())?,
                }
            }
            CAMPAIGN_UNSCHEDULED => {
                let m: pb::CampaignUnscheduled = decoded(e)?;
                Self::Unscheduled(stamp_in(e, m.actor, m.at.as_ref())?)
            }
            CAMPAIGN_CANCELLED => {
                let m: pb::CampaignCancelled = decoded(e)?;
                Self::Cancelled { reason: m.reason, stamp: stamp_in(e, m.actor, m.at.as_ref())? }
            }
            CAMPAIGN_SENDING_STARTED => {
                let m: pb::CampaignSendingStarted = decoded(e)?;
                Self::SendingStarted(stamp_in(e, m.actor, m.at.as_ref())?)
            }
            CAMPAIGN_BATCH_RECORDED => {
                let m: pb::CampaignBatchRecorded = decoded(e)?;
                let mut sent = Vec::with_capacity(m.recipients.len());
                for r in m.recipients {
                    sent.push(Recipient {
                        person: id_in(e, "recipients.person_id", &r.person_id)?,
                        locale: required(e, "recipients.locale", r.locale)?,
                        country: r.country,
                    });
                }
                Self::BatchRecorded { sent, stamp: stamp_in(e, m.actor, m.at.as_ref())? }
            }
            CAMPAIGN_COMPLETED => {
                let m: pb::CampaignCompleted = decoded(e)?;
                Self::Completed(stamp_in(e, m.actor, m.at.as_ref())?)
            }
            _ => return Err(DecodeError::new(e, "not a campaign event")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{by, by_at, t};

    fn round_trip<E: EventCodec + PartialEq + std::fmt::Debug>(e: E) {
        let stored = e.encode();
        assert_eq!(stored.schema_version, 1);
        assert_eq!(E::decode(&stored).unwrap(), e, "{}", stored.type_name);
    }

    fn stored(type_name: &str, m: &impl Message) -> EncodedEvent {
        encoded(type_name, m)
    }

    fn reason<E: EventCodec + std::fmt::Debug>(e: &EncodedEvent) -> String {
        E::decode(e).unwrap_err().reason
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    /// A time with a fraction of a second.
    fn precise(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 123_456_789).unwrap()
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn text(n: u32) -> Text {
        Text {
            title: format!("Title {n}"),
            summary: format!("Summary {n}"),
            body: format!("# Body {n}\n\n<b>as given</b>"),
        }
    }

    const TOPICS: [Topic; 7] = [
        Topic::LegalAssistance,
        Topic::BenefitPortability,
        Topic::HealthAndInsurance,
        Topic::DocumentsAndConsularHelp,
        Topic::AssistedVoluntaryReturn,
        Topic::EducationAndChildcare,
        Topic::ReturnAndReintegration,
    ];

    const STATUSES: [Status; 6] =
        [Status::Negotiating, Status::Signed, Status::Ratified, Status::InForce, Status::Suspended, Status::Terminated];

    #[test]
    fn every_article_event_survives_the_log() {
        for topic in TOPICS {
            round_trip(ArticleEvent::Created(
                NewArticle {
                    id: id(1),
                    topic,
                    countries: vec!["DE".into(), "IT".into()],
                    slug: "work-in-italy".into(),
                },
                by("editor"),
            ));
            round_trip(ArticleEvent::Retagged { topic, countries: vec!["FR".into()], stamp: by("editor") });
        }
        round_trip(ArticleEvent::Created(
            NewArticle { id: id(2), topic: Topic::LegalAssistance, countries: Vec::new(), slug: "help".into() },
            Stamp::new("editor", precise(1)),
        ));
        round_trip(ArticleEvent::Retagged { topic: Topic::LegalAssistance, countries: Vec::new(), stamp: by("e") });
        round_trip(ArticleEvent::SlugChanged { slug: "new-slug".into(), stamp: by("editor") });
        round_trip(ArticleEvent::Revised {
            locale: "ro".into(),
            revision: 1,
            text: text(1),
            translates: None,
            stamp: by_at("author", 5),
        });
        round_trip(ArticleEvent::Revised {
            locale: "ru-MD".into(),
            revision: 3,
            text: Text { title: String::new(), summary: String::new(), body: String::new() },
            translates: Some(2),
            stamp: Stamp::new("translator", precise(6)),
        });
        round_trip(ArticleEvent::Submitted { locale: "ro".into(), revision: 1, stamp: by("author") });
        round_trip(ArticleEvent::ChangesRequested {
            locale: "ro".into(),
            revision: 1,
            reason: "cite the law".into(),
            stamp: by("reviewer"),
        });
        round_trip(ArticleEvent::Approved { locale: "ro".into(), revision: 2, stamp: by("reviewer") });
        for scheduled in [false, true] {
            round_trip(ArticleEvent::Published { locale: "ro".into(), revision: 2, scheduled, stamp: by("editor") });
        }
        round_trip(ArticleEvent::Unpublished { locale: "ro".into(), reason: "outdated".into(), stamp: by("editor") });
        for (publish_at, expire_at) in
            [(None, None), (Some(precise(100)), None), (None, Some(t(200))), (Some(t(100)), Some(precise(200)))]
        {
            round_trip(ArticleEvent::Scheduled { locale: "en".into(), publish_at, expire_at, stamp: by("editor") });
        }
        round_trip(ArticleEvent::Expired { locale: "en".into(), stamp: by("content-deadline-worker") });
        round_trip(ArticleEvent::TranslationConfirmed { locale: "en".into(), source_revision: 4, stamp: by("e") });
    }

    #[test]
    fn every_agreement_event_survives_the_log() {
        for kind in [Kind::Labour, Kind::SocialSecurity] {
            for status in STATUSES {
                round_trip(AgreementEvent::Created(
                    NewAgreement {
                        id: id(3),
                        country: "IL".into(),
                        kind,
                        title: "Agreement on temporary employment".into(),
                        status,
                        on: d(2012, 11, 22),
                    },
                    by("editor"),
                ));
                round_trip(AgreementEvent::StatusChanged { to: status, on: d(2013, 1, 31), stamp: by("editor") });
            }
        }
        round_trip(AgreementEvent::Renamed { title: "Social security agreement".into(), stamp: by("editor") });
        round_trip(AgreementEvent::LinkAdded { url: "https://example.md/a.pdf".into(), stamp: by("editor") });
        round_trip(AgreementEvent::LinkRemoved { url: "https://example.md/a.pdf".into(), stamp: by("editor") });
        round_trip(AgreementEvent::SummaryRevised {
            locale: "ro".into(),
            revision: 1,
            text: "Rezumat".into(),
            translates: None,
            stamp: Stamp::new("author", precise(9)),
        });
        round_trip(AgreementEvent::SummaryRevised {
            locale: "en".into(),
            revision: 2,
            text: "Summary".into(),
            translates: Some(1),
            stamp: by("translator"),
        });
        round_trip(AgreementEvent::TranslationConfirmed { locale: "en".into(), source_revision: 2, stamp: by("e") });
    }

    #[test]
    fn every_campaign_event_survives_the_log() {
        let target = Target { countries: vec!["DE".into(), "IT".into()], languages: vec!["ro".into(), "ru".into()] };
        round_trip(CampaignEvent::Created(
            NewCampaign { id: id(7), name: "Pensii".into(), target: target.clone() },
            by("a"),
        ));
        round_trip(CampaignEvent::Retargeted(target, by_at("a", 1)));
        round_trip(CampaignEvent::ContentSet { locale: "ro".into(), content: Content::Article(id(8)), stamp: by("a") });
        round_trip(CampaignEvent::ContentSet {
            locale: "ru".into(),
            content: Content::Message { subject: "Пенсии".into(), text: "Текст.".into() },
            stamp: by("a"),
        });
        round_trip(CampaignEvent::Scheduled { send_at: precise(60), stamp: by("a") });
        round_trip(CampaignEvent::Unscheduled(by("a")));
        round_trip(CampaignEvent::Cancelled { reason: "nu".into(), stamp: by("a") });
        round_trip(CampaignEvent::SendingStarted(by_at("sender", 2)));
        round_trip(CampaignEvent::BatchRecorded {
            sent: vec![
                Recipient { person: id(1), locale: "ro".into(), country: "IT".into() },
                Recipient { person: id(2), locale: "ru".into(), country: "DE".into() },
            ],
            stamp: by_at("sender", 3),
        });
        round_trip(CampaignEvent::Completed(by_at("sender", 4)));
        let _ = t(0);
        let bad = stored(
            names::CAMPAIGN_BATCH_RECORDED,
            &pb::CampaignBatchRecorded {
                recipients: vec![pb::CampaignRecipient {
                    person_id: "nope".into(),
                    locale: "ro".into(),
                    country: "IT".into(),
                }],
                actor: "x".into(),
                at: ts(t(0)),
            },
        );
        assert!(reason::<CampaignEvent>(&bad).contains("recipients.person_id"));
        let bad = stored(
            names::CAMPAIGN_CREATED,
            &pb::CampaignCreated {
                campaign_id: id(1).to_string(),
                name: "x".into(),
                target: Some(pb::CampaignTarget { countries: vec![], languages: vec![] }),
                actor: "x".into(),
                at: ts(t(0)),
            },
        );
        assert!(reason::<CampaignEvent>(&bad).contains("target.languages"));
    }

    #[test]
    fn type_names_are_the_messages_full_names() {
        use acasa_proto::Name;
        let pairs = [
            (names::ARTICLE_CREATED, pb::ArticleCreated::full_name()),
            (names::ARTICLE_RETAGGED, pb::ArticleRetagged::full_name()),
            (names::ARTICLE_SLUG_CHANGED, pb::ArticleSlugChanged::full_name()),
            (names::ARTICLE_REVISED, pb::ArticleRevised::full_name()),
            (names::ARTICLE_SUBMITTED, pb::ArticleSubmitted::full_name()),
            (names::ARTICLE_CHANGES_REQUESTED, pb::ArticleChangesRequested::full_name()),
            (names::ARTICLE_APPROVED, pb::ArticleApproved::full_name()),
            (names::ARTICLE_PUBLISHED, pb::ArticlePublished::full_name()),
            (names::ARTICLE_UNPUBLISHED, pb::ArticleUnpublished::full_name()),
            (names::ARTICLE_SCHEDULED, pb::ArticleScheduled::full_name()),
            (names::ARTICLE_EXPIRED, pb::ArticleExpired::full_name()),
            (names::ARTICLE_TRANSLATION_CONFIRMED, pb::ArticleTranslationConfirmed::full_name()),
            (names::AGREEMENT_CREATED, pb::AgreementCreated::full_name()),
            (names::AGREEMENT_RENAMED, pb::AgreementRenamed::full_name()),
            (names::AGREEMENT_STATUS_CHANGED, pb::AgreementStatusChanged::full_name()),
            (names::AGREEMENT_LINK_ADDED, pb::AgreementLinkAdded::full_name()),
            (names::AGREEMENT_LINK_REMOVED, pb::AgreementLinkRemoved::full_name()),
            (names::AGREEMENT_SUMMARY_REVISED, pb::AgreementSummaryRevised::full_name()),
            (names::AGREEMENT_TRANSLATION_CONFIRMED, pb::AgreementTranslationConfirmed::full_name()),
        ];
        for (name, full) in pairs {
            assert_eq!(name, full);
        }
    }

    #[test]
    fn conversions_cover_every_value() {
        for topic in TOPICS {
            assert_eq!(topic_from_pb(topic_to_pb(topic) as i32), Some(topic));
        }
        for kind in [Kind::Labour, Kind::SocialSecurity] {
            assert_eq!(kind_from_pb(kind_to_pb(kind) as i32), Some(kind));
        }
        for status in STATUSES {
            assert_eq!(status_from_pb(status_to_pb(status) as i32), Some(status));
        }
        assert_eq!((topic_from_pb(0), topic_from_pb(99)), (None, None));
        assert_eq!((kind_from_pb(0), kind_from_pb(99)), (None, None));
        assert_eq!((status_from_pb(0), status_from_pb(99)), (None, None));
        assert_eq!(state_to_pb(State::Draft), pb::VersionState::Draft);
        assert_eq!(state_to_pb(State::InReview), pb::VersionState::InReview);
        assert_eq!(state_to_pb(State::Published), pb::VersionState::Published);
        assert_eq!(state_to_pb(State::Unpublished), pb::VersionState::Unpublished);
    }

    #[test]
    fn decoding_is_strict_and_names_the_field() {
        let at = ts(t(0));
        let a = || "editor".to_owned();
        let created = |article_id: &str, topic: i32, at: Option<Timestamp>| pb::ArticleCreated {
            article_id: article_id.into(),
            topic,
            countries: Vec::new(),
            slug: "s".into(),
            actor: a(),
            at,
        };
        let id1 = id(1).to_string();
        let article_cases = [
            (stored(names::ARTICLE_CREATED, &created(&id1, 1, None)), "at is missing"),
            (
                stored(names::ARTICLE_CREATED, &created(&id1, 1, Some(Timestamp { seconds: i64::MAX, nanos: 0 }))),
                "at is out of range",
            ),
            (stored(names::ARTICLE_CREATED, &created("not-a-uuid", 1, at)), "article_id is not a UUID"),
            (stored(names::ARTICLE_CREATED, &created("", 1, at)), "article_id is missing"),
            (stored(names::ARTICLE_CREATED, &created(&id1, 0, at)), "topic is missing"),
            (stored(names::ARTICLE_CREATED, &created(&id1, 42, at)), "topic 42 is unknown"),
            (
                stored(names::ARTICLE_CREATED, &pb::ArticleCreated { slug: String::new(), ..created(&id1, 1, at) }),
                "slug is missing",
            ),
            (
                stored(names::ARTICLE_CREATED, &pb::ArticleCreated { actor: String::new(), ..created(&id1, 1, at) }),
                "actor is missing",
            ),
            (
                stored(
                    names::ARTICLE_RETAGGED,
                    &pb::ArticleRetagged { topic: 0, countries: Vec::new(), actor: a(), at },
                ),
                "topic is missing",
            ),
            (
                stored(
                    names::ARTICLE_REVISED,
                    &pb::ArticleRevised { locale: "ro".into(), revision: 0, actor: a(), at, ..Default::default() },
                ),
                "revision is missing",
            ),
            (
                stored(
                    names::ARTICLE_SUBMITTED,
                    &pb::ArticleSubmitted { locale: String::new(), revision: 1, actor: a(), at },
                ),
                "locale is missing",
            ),
            (
                stored(
                    names::ARTICLE_SCHEDULED,
                    &pb::ArticleScheduled {
                        locale: "ro".into(),
                        publish_at: None,
                        expire_at: Some(Timestamp { seconds: i64::MIN, nanos: 0 }),
                        actor: a(),
                        at,
                    },
                ),
                "expire_at is out of range",
            ),
            (
                stored(
                    names::ARTICLE_TRANSLATION_CONFIRMED,
                    &pb::ArticleTranslationConfirmed { locale: "en".into(), source_revision: 0, actor: a(), at },
                ),
                "source_revision is missing",
            ),
            (stored("acasa.content.v1.ArticleDeleted", &pb::ArticleExpired::default()), "not an article event"),
            (AgreementEvent::Renamed { title: "t".into(), stamp: by("e") }.encode(), "not an article event"),
        ];
        for (e, why) in article_cases {
            let got = reason::<ArticleEvent>(&e);
            assert!(got.contains(why), "{why}: {got}");
        }

        let agreement = |status: i32, on: Option<Date>| pb::AgreementCreated {
            agreement_id: id(2).to_string(),
            country: "IL".into(),
            kind: 1,
            title: "t".into(),
            status,
            on,
            actor: a(),
            at,
        };
        let on = Some(time::date(d(2020, 1, 1)));
        let agreement_cases = [
            (stored(names::AGREEMENT_CREATED, &agreement(1, None)), "on is missing"),
            (
                stored(names::AGREEMENT_CREATED, &agreement(1, Some(Date { year: 2021, month: 2, day: 30 }))),
                "on is not a date",
            ),
            (stored(names::AGREEMENT_CREATED, &agreement(0, on)), "status is missing"),
            (
                stored(names::AGREEMENT_CREATED, &pb::AgreementCreated { kind: 0, ..agreement(1, on) }),
                "kind is missing",
            ),
            (
                stored(names::AGREEMENT_CREATED, &pb::AgreementCreated { kind: 7, ..agreement(1, on) }),
                "kind 7 is unknown",
            ),
            (
                stored(
                    names::AGREEMENT_CREATED,
                    &pb::AgreementCreated { agreement_id: "x".into(), ..agreement(1, on) },
                ),
                "agreement_id is not a UUID",
            ),
            (
                stored(names::AGREEMENT_CREATED, &pb::AgreementCreated { country: String::new(), ..agreement(1, on) }),
                "country is missing",
            ),
            (
                stored(names::AGREEMENT_STATUS_CHANGED, &pb::AgreementStatusChanged { status: 9, on, actor: a(), at }),
                "status 9 is unknown",
            ),
            (
                stored(names::AGREEMENT_LINK_ADDED, &pb::AgreementLinkAdded { url: String::new(), actor: a(), at }),
                "url is missing",
            ),
            (
                stored(names::AGREEMENT_RENAMED, &pb::AgreementRenamed { title: "t".into(), actor: a(), at: None }),
                "at is missing",
            ),
            (stored("acasa.content.v1.AgreementSigned", &pb::AgreementRenamed::default()), "not an agreement event"),
            (ArticleEvent::Expired { locale: "ro".into(), stamp: by("w") }.encode(), "not an agreement event"),
        ];
        for (e, why) in agreement_cases {
            let got = reason::<AgreementEvent>(&e);
            assert!(got.contains(why), "{why}: {got}");
        }
    }

    #[test]
    fn other_schema_versions_and_bad_bytes_are_refused() {
        let mut e = ArticleEvent::Expired { locale: "ro".into(), stamp: by("w") }.encode();
        e.schema_version = 2;
        assert!(reason::<ArticleEvent>(&e).contains("unknown schema version 2"));
        let mut e = AgreementEvent::Renamed { title: "t".into(), stamp: by("e") }.encode();
        e.schema_version = 0;
        assert!(reason::<AgreementEvent>(&e).contains("unknown schema version 0"));
        let e = EncodedEvent { type_name: names::ARTICLE_EXPIRED.into(), schema_version: 1, data: vec![0xff, 0xff] };
        let err = ArticleEvent::decode(&e).unwrap_err();
        assert_eq!(err.type_name, names::ARTICLE_EXPIRED);
    }
}
