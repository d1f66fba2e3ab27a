//! The referral system's events as the log stores them: the
//! `acasa.referrals.v1` event messages (`proto/acasa/referrals/v1/events.proto`)
//! that the domain's [`PartnerEvent`] and [`ReferralEvent`] carry, by type
//! name and schema version. The only place the service's events become bytes.

use acasa_domain::{DecodeError, EncodedEvent, EventCodec};

use crate::domain::{PartnerEvent, ReferralEvent};

/// Type names of the events.
pub mod names {
    /// `PartnerRegistered`.
    pub const PARTNER_REGISTERED: &str = "acasa.referrals.v1.PartnerRegistered";
    /// `PartnerServicesSet`.
    pub const PARTNER_SERVICES_SET: &str = "acasa.referrals.v1.PartnerServicesSet";
    /// `PartnerResponseTimeSet`.
    pub const PARTNER_RESPONSE_TIME_SET: &str = "acasa.referrals.v1.PartnerResponseTimeSet";
    /// `PartnerSuspended`.
    pub const PARTNER_SUSPENDED: &str = "acasa.referrals.v1.PartnerSuspended";
    /// `PartnerReactivated`.
    pub const PARTNER_REACTIVATED: &str = "acasa.referrals.v1.PartnerReactivated";
    /// `ReferralCreated`.
    pub const REFERRAL_CREATED: &str = "acasa.referrals.v1.ReferralCreated";
    /// `ReferralAccepted`.
    pub const REFERRAL_ACCEPTED: &str = "acasa.referrals.v1.ReferralAccepted";
    /// `ReferralDeclined`.
    pub const REFERRAL_DECLINED: &str = "acasa.referrals.v1.ReferralDeclined";
    /// `ReferralProgressReported`.
    pub const REFERRAL_PROGRESS_REPORTED: &str = "acasa.referrals.v1.ReferralProgressReported";
    /// `ReferralOutcomeRecorded`.
    pub const REFERRAL_OUTCOME_RECORDED: &str = "acasa.referrals.v1.ReferralOutcomeRecorded";
    /// `ReferralClosed`.
    pub const REFERRAL_CLOSED: &str = "acasa.referrals.v1.ReferralClosed";
    /// `ReferralWithdrawn`.
    pub const REFERRAL_WITHDRAWN: &str = "acasa.referrals.v1.ReferralWithdrawn";
    /// `ReferralReReferred`.
    pub const REFERRAL_RE_REFERRED: &str = "acasa.referrals.v1.ReferralReReferred";
    /// `ReferralSlaBreached`.
    pub const REFERRAL_SLA_BREACHED: &str = "acasa.referrals.v1.ReferralSlaBreached";
}

fn encoded(type_name: &str, m: &impl acasa_proto::Message) -> EncodedEvent {
    EncodedEvent { type_name: type_name.to_owned(), schema_version: 1, data: m.encode_to_vec() }
}

fn decoded<M: acasa_proto::Message + Default>(e: &EncodedEvent) -> Result<M, DecodeError> {
    if e.schema_version != 1 {
        return Err(DecodeError::new(e, "unknown schema version"));
    }
    M::decode(e.data.as_slice()).map_err(|err| DecodeError::new(e, err.to_string()))
}

impl EventCodec for PartnerEvent {
    fn encode(&self) -> EncodedEvent {
        use names::*;
        match self {
            Self::Registered(m) => encoded(PARTNER_REGISTERED, m),
            Self::ServicesSet(m) => encoded(PARTNER_SERVICES_SET, m),
            Self::ResponseTimeSet(m) => encoded(PARTNER_RESPONSE_TIME_SET, m),
            Self::Suspended(m) => encoded(PARTNER_SUSPENDED, m),
            Self::Reactivated(m) => encoded(PARTNER_REACTIVATED, m),
        }
    }

    fn decode(e: &EncodedEvent) -> Result<Self, DecodeError> {
        use names::*;
        Ok(match e.type_name.as_str() {
            PARTNER_REGISTERED => Self::Registered(decoded(e)?),
            PARTNER_SERVICES_SET => Self::ServicesSet(decoded(e)?),
            PARTNER_RESPONSE_TIME_SET => Self::ResponseTimeSet(decoded(e)?),
            PARTNER_SUSPENDED => Self::Suspended(decoded(e)?),
            PARTNER_REACTIVATED => Self::Reactivated(decoded(e)?),
            _ => return Err(DecodeError::new(e, "not a partner event")),
        })
    }
}

impl EventCodec for ReferralEvent {
    fn encode(&self) -> EncodedEvent {
        use names::*;
        match self {
            Self::Created(m) => encoded(REFERRAL_CREATED, m),
            Self::Accepted(m) => encoded(REFERRAL_ACCEPTED, m),
            Self::Declined(m) => encoded(REFERRAL_DECLINED, m),
            Self::ProgressReported(m) => encoded(REFERRAL_PROGRESS_REPORTED, m),
            Self::OutcomeRecorded(m) => encoded(REFERRAL_OUTCOME_RECORDED, m),
            Self::Closed(m) => encoded(REFERRAL_CLOSED, m),
            Self::Withdrawn(m) => encoded(REFERRAL_WITHDRAWN, m),
            Self::ReReferred(m) => encoded(REFERRAL_RE_REFERRED, m),
            Self::SlaBreached(m) => encoded(REFERRAL_SLA_BREACHED, m),
        }
    }

    fn decode(e: &EncodedEvent) -> Result<Self, DecodeError> {
        use names::*;
        Ok(match e.type_name.as_str() {
            REFERRAL_CREATED => Self::Created(decoded(e)?),
            REFERRAL_ACCEPTED => Self::Accepted(decoded(e)?),
            REFERRAL_DECLINED => Self::Declined(decoded(e)?),
            REFERRAL_PROGRESS_REPORTED => Self::ProgressReported(decoded(e)?),
            REFERRAL_OUTCOME_RECORDED => Self::OutcomeRecorded(decoded(e)?),
            REFERRAL_CLOSED => Self::Closed(decoded(e)?),
            REFERRAL_WITHDRAWN => Self::Withdrawn(decoded(e)?),
            REFERRAL_RE_REFERRED => Self::ReReferred(decoded(e)?),
            REFERRAL_SLA_BREACHED => Self::SlaBreached(decoded(e)?),
            _ => return Err(DecodeError::new(e, "not a referral event")),
        })
    }
}
