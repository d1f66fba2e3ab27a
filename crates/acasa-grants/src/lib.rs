//! Grants: entrepreneurship support for youth and women — programme calls
//! with a budget and eligibility rules, training for entrepreneurs and for
//! local officials and SME-support staff, business plans scored by
//! evaluators, committee approvals within the call's budget, in-kind
//! procurement, monitoring visits and start-up support services.
//!
//! This first increment is the pure core and the contract:
//!
//! - [`domain`]: the call, application, course, session, official and
//!   support aggregates, eligibility and scoring; pure, given/when/then
//!   tested.
//! - [`validate`]: requests of `acasa.grants.v1` into domain values, every
//!   bad field named.
//! - `proto/acasa/grants/v1/grants.proto` (the API, `GrantService`) and
//!   `events.proto` (the log's events, part of the contract).
//! - [`codec`]: the events as the log stores them (`events.proto`); an
//!   official's personal data sealed with the official's own data key
//!   ([`codec::OfficialCodec`]).
//!
//! What comes next, on the service kit like placements:
//!
//! - the committee's approval (`CallCommand::Commit` with
//!   `ApplicationCommand::Approve`) and closing and cancelling grants (the
//!   application's event with `CallCommand::Release`) as one
//!   `Repository::execute_all` over `acasa_domain::pair::Pair<Call,
//!   Application>` (in the kit: two aggregates of different kinds, one
//!   atomic batch);
//! - the official's data keys in this service's vault table (destroyed by
//!   `EraseOfficial`), `commands` (seats and training places
//!   tried free-first like placements' offer places; `SESSION_FULL`,
//!   `CALL_TRAINING_FULL`, `ONE_GRANT_PER_PERSON` and the second application
//!   to a call from the claims held; a day's register and a session's
//!   completion as one command over its trainees; a cancelled session's
//!   trainees unenrolled), `grpc` with the roles of `grants.proto`;
//! - projections: the read models behind the queries (funnel by call,
//!   district, sex and age band; budget committed, ordered and spent; grants
//!   by district; training completion by audience; progress against
//!   configurable targets, 540 trained and 101 grants by default); this
//!   service's own projection of the registry (the eligibility facts, the
//!   rural classification of localities, consent) and of the referral
//!   system (outcomes that count as support, recorded once per referral by
//!   a worker);
//! - its `ServiceDef`, migrations and the binary's service table, deploy
//!   manifests, integration tests (the budget under racing approvals, the
//!   last seat under racing enrolments, rebuild equals live) and e2e tests.

pub mod codec;
mod commands;
pub mod domain;
#[allow(dead_code)] // The transport glue lands with the commands.
pub mod grpc;
pub mod localities;
pub mod people;
pub mod projection;
mod queries;
pub mod referrals;
pub mod validate;

/// The service's name: stream `ACASA_GRANTS`, subjects `acasa.grants.>`, schema `grants`.
pub const SERVICE: &str = "grants";
/// The projection building the service's read models from its own log.
pub const PROJECTION: &str = "grants.grants";
/// The projection of the registry's events into `grants.people`.
pub const PEOPLE_PROJECTION: &str = "grants.people";
/// The projection of the referral system's outcomes into `grants.referral_support`.
pub const REFERRALS_PROJECTION: &str = "grants.referrals";
/// The table of the officials' data keys.
pub const VAULT_TABLE: &str = "grants_vault.data_keys";
