//! The registry: the people the programme serves and its candidate database.
//!
//! A person is one aggregate (`acasa.registry.person.<id>`). Personal fields
//! travel in the log sealed with the person's own data key ([`codec`]); the
//! key lives in a vault table outside the log and erasure destroys it. The
//! `registry.people` read model ([`projection`]) opens what it can and drops
//! the personal columns of erased people; queries ([`service`]) read it only.

pub mod codec;
pub mod domain;
pub mod projection;
pub mod service;
pub mod validate;

/// The service's name: stream `ACASA_REGISTRY`, subjects `acasa.registry.>`, schema `registry`.
pub const SERVICE: &str = "registry";
/// The projection building the `registry` schema's read model.
pub const PROJECTION: &str = "registry.people";
/// The vault table of the people's data keys.
pub const VAULT_TABLE: &str = "registry_vault.data_keys";
