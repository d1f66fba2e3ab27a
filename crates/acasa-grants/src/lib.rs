//! Grants: entrepreneurship support for youth and women — programme calls
//! with a budget and eligibility rules, training for entrepreneurs and for
//! local officials and SME-support staff, business plans scored by
//! evaluators, committee approvals within the call's budget, in-kind
//! procurement, monitoring visits and start-up support services.
//!
//! - [`domain`]: the call, application, course, session, official and
//!   support aggregates, eligibility and scoring; pure, given/when/then
//!   tested.
//! - [`validate`]: requests of `acasa.grants.v1` into domain values, every
//!   bad field named.

pub mod domain;
pub mod validate;
