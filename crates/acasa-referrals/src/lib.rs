//! The SME Referral System: partner organisations and their catalogues,
//! referrals of registered entrepreneurs between them with consent checks and
//! response-time SLAs, and per-partner event feeds.
//!
//! - [`domain`]: the partner and referral aggregates.
//! - [`validate`]: the edge's validation of requests.
//! - [`sealing`]: the shared profile, encrypted with the person's data key.
//! - [`projection`]: the read models (partners, referrals, profiles).
//! - [`consents`]: this service's projection of the registry's consent events.
//! - [`feed`]: the partner feed publisher.
//! - [`deadlines`]: the SLA deadline worker.
//! - [`service`]: the gRPC handlers.

pub mod consents;
pub mod deadlines;
pub mod domain;
pub mod feed;
pub mod projection;
pub mod sealing;
pub mod service;
pub mod validate;

/// The service's name: stream `ACASA_REFERRALS`, subjects `acasa.referrals.>`, schema `referrals`.
pub const SERVICE: &str = "referrals";
/// The projection building `referrals.partners` and `referrals.referrals`.
pub const PROJECTION: &str = "referrals.referrals";
/// The projection of the registry's events into `referrals.people` and `referrals.consents`.
pub const CONSENTS_PROJECTION: &str = "referrals.consents";
/// The projection publishing the partner feeds (its checkpoint only).
pub const FEED_PROJECTION: &str = "referrals.feed";
/// The table of the service's per-person data keys.
pub const VAULT_TABLE: &str = "referrals_vault.data_keys";
/// The partner feed stream.
pub const FEED_STREAM: &str = "ACASA_PARTNER_FEED";
/// Subjects of partner commits in the service's log: the prefix, then the partner id.
const PARTNER_PREFIX: &str = "acasa.referrals.partner.";
/// Subjects of referral commits in the service's log: the prefix, then the referral id.
const REFERRAL_PREFIX: &str = "acasa.referrals.referral.";
