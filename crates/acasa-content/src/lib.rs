//! Content: multilingual information for migrants abroad (issue 14).
//!
//! This first increment is the pure core:
//!
//! - [`domain`]: the article (one version per language, each with its own
//!   draft → in review → published → unpublished states and revision
//!   history; translations recording the source revision they translate),
//!   the agreement (the bilateral labour and social-security agreements
//!   catalogue) and the campaign aggregates; pure, given/when/then tested.
//! - [`locale`]: BCP 47 locales and the fallback chain (`ru-MD → ru → ro → en`).
//! - [`diff`]: what changed between two revisions (a stale translation's diff).
//! - [`render`]: article bodies rendered safely (no HTML or script reaches a reader).
//! - [`search`]: each language's Postgres text-search configuration.
//! - [`sender`]: delivery of campaign messages through a pluggable
//!   [`sender::Sender`]: e-mail over SMTP (lettre, one reused connection) and
//!   SMS over a provider's gateway; errors say whether to retry and name no
//!   recipient.
//!
//! The service (`acasa serve content`) follows on the kit like grants.

pub mod diff;
pub mod domain;
pub mod locale;
pub mod render;
pub mod search;
pub mod sender;
