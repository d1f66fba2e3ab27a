//! JWT bearer authentication and role checks.
//!
//! Every RPC but health and reflection goes through [`Authenticator::interceptor`],
//! which verifies the bearer token (signature, expiry, issuer, audience) and
//! puts the caller's [`Principal`] into the request. Handlers then ask for
//! the roles they need. Partner tokens carry the partner's id.

use std::{fmt, path::Path, sync::Arc, time::Duration};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::{Request, Status};

use crate::config::{Config, ConfigError};

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, including erasure and merges.
    Admin,
    /// Registers and edits people, manages cases.
    Caseworker,
    /// Reads.
    Viewer,
    /// A partner organisation acting on referrals addressed to it.
    Partner,
    /// Edits information content.
    Editor,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [Role::Admin, Role::Caseworker, Role::Viewer, Role::Partner, Role::Editor];

    /// The role's name in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Caseworker => "caseworker",
            Role::Viewer => "viewer",
            Role::Partner => "partner",
            Role::Editor => "editor",
        }
    }

    /// Parses a role name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The claims of an Acasă token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The caller's id (a user or system id, never personal data).
    pub sub: String,
    /// Role names.
    #[serde(default)]
    pub roles: Vec<String>,
    /// For partner tokens: the partner organisation's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Issued at.
    pub iat: u64,
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The caller's id.
    pub subject: String,
    /// Its roles (unknown role names are ignored).
    pub roles: Vec<Role>,
    /// For partners: the partner's id.
    pub partner_id: Option<String>,
}

impl Principal {
    /// Whether the caller has `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// `PERMISSION_DENIED` unless the caller has one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), Status> {
        if roles.iter().any(|r| self.has(*r)) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(Status::permission_denied(format!("requires one of the roles: {}", names.join(", "))))
        }
    }

    /// The principal of a request that passed the interceptor.
    pub fn of<T>(request: &Request<T>) -> Result<&Principal, Status> {
        request.extensions().get::<Principal>().ok_or_else(|| Status::unauthenticated("no authenticated caller"))
    }

    /// Whose request ids a call's are: `api:<subject>`, with `|partner:<id>`
    /// for a partner token (two partners' tokens may share a subject). Never
    /// a `system:` scope, which belongs to the workers.
    pub fn scope(&self) -> String {
        match &self.partner_id {
            Some(p) => format!("api:{}|partner:{p}", self.subject),
            None => format!("api:{}", self.subject),
        }
    }

    /// The principal of a request, `PERMISSION_DENIED` unless it has one of `roles`.
    pub fn authorized<'r, T>(request: &'r Request<T>, roles: &[Role]) -> Result<&'r Principal, Status> {
        let principal = Self::of(request)?;
        principal.require_any(roles)?;
        Ok(principal)
    }
}

/// Verifies bearer tokens.
#[derive(Clone)]
pub struct Authenticator {
    key: Arc<DecodingKey>,
    validation: Arc<Validation>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator").field("algorithms", &self.validation.algorithms).finish()
    }
}

fn validation(alg: Algorithm, issuer: &str, audience: &str) -> Validation {
    let mut v = Validation::new(alg);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.leeway = 30;
    v
}

impl Authenticator {
    /// Verifies HS256 tokens signed with `secret`.
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self {
            key: Arc::new(DecodingKey::from_secret(secret)),
            validation: Arc::new(validation(Algorithm::HS256, issuer, audience)),
        }
    }

    /// Verifies EdDSA tokens of an identity provider's Ed25519 public key (PEM).
    pub fn ed25519_pem(pem: &[u8], issuer: &str, audience: &str) -> Result<Self, jsonwebtoken::errors::Error> {
        Ok(Self {
            key: Arc::new(DecodingKey::from_ed_pem(pem)?),
            validation: Arc::new(validation(Algorithm::EdDSA, issuer, audience)),
        })
    }

    /// From configuration: the public key if configured, else the HS256 secret file.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        if let Some(path) = &config.jwt_public_key_file {
            let pem = std::fs::read(path).map_err(|e| ConfigError {
                var: "ACASA_JWT_PUBLIC_KEY_FILE",
                reason: format!("{}: {e}", path.display()),
            })?;
            return Self::ed25519_pem(&pem, &config.jwt_issuer, &config.jwt_audience)
                .map_err(|e| ConfigError { var: "ACASA_JWT_PUBLIC_KEY_FILE", reason: e.to_string() });
        }
        let secret = Config::read_secret(&config.jwt_secret_file)?;
        Ok(Self::hs256(&secret, &config.jwt_issuer, &config.jwt_audience))
    }

    /// Verifies a token.
    pub fn verify(&self, token: &str) -> Result<Principal, Status> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            let why = match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::InvalidSignature => "the token's signature is invalid",
                ErrorKind::InvalidIssuer => "the token's issuer is not accepted",
                ErrorKind::InvalidAudience => "the token's audience is not accepted",
                ErrorKind::InvalidAlgorithm => "the token's algorithm is not accepted",
                ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim",
                _ => "the token is malformed",
            };
            Status::unauthenticated(why)
        })?;
        let c = data.claims;
        Ok(Principal {
            subject: c.sub,
            roles: c.roles.iter().filter_map(|r| Role::parse(r)).collect(),
            partner_id: c.partner_id,
        })
    }

    /// A tonic interceptor requiring `authorization: Bearer <token>`.
    pub fn interceptor(
        &self,
    ) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone + Send + Sync + 'static {
        let this = self.clone();
        move |mut req: Request<()>| {
            let header = req
                .metadata()
                .get("authorization")
                .ok_or_else(|| Status::unauthenticated("missing authorization: Bearer <token>"))?;
            let value = header.to_str().map_err(|_| Status::unauthenticated("malformed authorization header"))?;
            let token = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .ok_or_else(|| Status::unauthenticated("authorization must be `Bearer <token>`"))?;
            let principal = this.verify(token.trim())?;
            req.extensions_mut().insert(principal);
            Ok(req)
        }
    }
}

/// Issues HS256 tokens (the `token` subcommand, tests and benchmarks).
#[derive(Clone)]
pub struct TokenIssuer {
    key: EncodingKey,
    issuer: String,
    audience: String,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer").field("issuer", &self.issuer).finish()
    }
}

impl TokenIssuer {
    /// An issuer signing with `secret`.
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self { key: EncodingKey::from_secret(secret), issuer: issuer.into(), audience: audience.into() }
    }

    /// From configuration's HS256 secret file.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let secret = Config::read_secret(&config.jwt_secret_file)?;
        Ok(Self::hs256(&secret, &config.jwt_issuer, &config.jwt_audience))
    }

    /// Signs a token for `subject` with `roles`, valid for `ttl`.
    pub fn issue(
        &self,
        subject: &str,
        roles: &[Role],
        partner_id: Option<&str>,
        ttl: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = jsonwebtoken::get_current_timestamp();
        self.issue_at(subject, roles, partner_id, now, now + ttl.as_secs())
    }

    /// Signs a token with explicit times (tests make expired ones).
    pub fn issue_at(
        &self,
        subject: &str,
        roles: &[Role],
        partner_id: Option<&str>,
        iat: u64,
        exp: u64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: subject.into(),
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            partner_id: partner_id.map(str::to_owned),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp,
            iat,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
    }
}

/// Reads a hex key file, for callers outside configuration.
pub fn read_key(path: &Path) -> Result<Vec<u8>, ConfigError> {
    Config::read_secret(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn call(auth: &Authenticator, header: Option<&str>) -> Result<Principal, Status> {
        let mut req = Request::new(());
        if let Some(h) = header {
            req.metadata_mut().insert("authorization", h.parse().unwrap());
        }
        let mut i = auth.interceptor();
        let req = i(req)?;
        Ok(Principal::of(&req)?.clone())
    }

    #[test]
    fn a_valid_token_yields_its_principal() {
        let issuer = TokenIssuer::hs256(KEY, "acasa", "acasa");
        let t = issuer.issue("u1", &[Role::Partner], Some("p-1"), Duration::from_secs(60)).unwrap();
        let p = call(&Authenticator::hs256(KEY, "acasa", "acasa"), Some(&format!("Bearer {t}"))).unwrap();
        assert_eq!(p.subject, "u1");
        assert_eq!(p.roles, vec![Role::Partner]);
        assert_eq!(p.partner_id.as_deref(), Some("p-1"));
        assert!(p.require_any(&[Role::Admin]).is_err());
        assert!(p.require_any(&[Role::Admin, Role::Partner]).is_ok());
    }

    #[test]
    fn missing_forged_expired_and_foreign_tokens_are_refused() {
        let auth = Authenticator::hs256(KEY, "acasa", "acasa");
        assert_eq!(call(&auth, None).unwrap_err().code(), tonic::Code::Unauthenticated);
        assert_eq!(call(&auth, Some("Basic abc")).unwrap_err().code(), tonic::Code::Unauthenticated);
        assert_eq!(call(&auth, Some("Bearer not.a.jwt")).unwrap_err().code(), tonic::Code::Unauthenticated);
        let forged = TokenIssuer::hs256(b"another-key-another-key-another!", "acasa", "acasa")
            .issue("u", &[Role::Admin], None, Duration::from_secs(60))
            .unwrap();
        let e = call(&auth, Some(&format!("Bearer {forged}"))).unwrap_err();
        assert_eq!(e.message(), "the token's signature is invalid");
        let now = jsonwebtoken::get_current_timestamp();
        let expired = TokenIssuer::hs256(KEY, "acasa", "acasa")
            .issue_at("u", &[Role::Admin], None, now - 7200, now - 3600)
            .unwrap();
        let e = call(&auth, Some(&format!("Bearer {expired}"))).unwrap_err();
        assert_eq!(e.message(), "the token has expired");
        let foreign = TokenIssuer::hs256(KEY, "someone-else", "acasa")
            .issue("u", &[Role::Admin], None, Duration::from_secs(60))
            .unwrap();
        assert_eq!(call(&auth, Some(&format!("Bearer {foreign}"))).unwrap_err().code(), tonic::Code::Unauthenticated);
    }
}
