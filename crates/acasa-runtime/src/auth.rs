//! JWT bearer authentication and role checks.
//!
//! Every RPC but health and reflection goes through [`Authenticator::interceptor`],
//! which verifies the bearer token (signature — one key, or the key its `kid`
//! names in a rotating key set — expiry, not-before, issuer, audience, a capped
//! lifetime) and
//! puts the caller's [`Principal`] into the request. Handlers then ask for
//! the roles they need. Partner tokens carry the partner's id, host
//! institutions' tokens the host's id ([`TokenScope`]).

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse},
};
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
    /// Approves information content another wrote.
    Reviewer,
    /// A host institution of placements, acting on its own placements only
    /// (its token carries its `host_id`).
    Host,
    /// Records allowance and travel payments.
    Finance,
    /// Another Acasă service's worker, e.g. a projection that opens the
    /// registry's sealed person data for its own read model.
    Service,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 9] = [
        Role::Admin,
        Role::Caseworker,
        Role::Viewer,
        Role::Partner,
        Role::Editor,
        Role::Reviewer,
        Role::Host,
        Role::Finance,
        Role::Service,
    ];

    /// The role's name in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Caseworker => "caseworker",
            Role::Viewer => "viewer",
            Role::Partner => "partner",
            Role::Editor => "editor",
            Role::Reviewer => "reviewer",
            Role::Host => "host",
            Role::Finance => "finance",
            Role::Service => "service",
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

/// The audience of a token: one name or several (RFC 7519 §4.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience (what [`TokenIssuer`] issues).
    One(String),
    /// Several; the configured audience must be among them.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `name` is among the audiences.
    pub fn contains(&self, name: &str) -> bool {
        match self {
            Audience::One(a) => a == name,
            Audience::Many(all) => all.iter().any(|a| a == name),
        }
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
    /// For host tokens: the host institution's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    /// Issuer.
    pub iss: String,
    /// Audience: a string or an array of strings.
    pub aud: Audience,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Issued at (seconds since the epoch); required to verify a token, whose
    /// lifetime `exp - iat` is capped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before (seconds since the epoch), when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
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
    /// For host institutions: the host's id.
    pub host_id: Option<String>,
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
    /// for a partner token and `|host:<id>` for a host token (two partners'
    /// or hosts' tokens may share a subject). Never a `system:` scope, which
    /// belongs to the workers.
    pub fn scope(&self) -> String {
        let mut scope = format!("api:{}", self.subject);
        if let Some(p) = &self.partner_id {
            scope.push_str(&format!("|partner:{p}"));
        }
        if let Some(h) = &self.host_id {
            scope.push_str(&format!("|host:{h}"));
        }
        scope
    }

    /// The principal of a request, `PERMISSION_DENIED` unless it has one of `roles`.
    pub fn authorized<'r, T>(request: &'r Request<T>, roles: &[Role]) -> Result<&'r Principal, Status> {
        let principal = Self::of(request)?;
        principal.require_any(roles)?;
        Ok(principal)
    }
}

/// The longest lifetime (`exp - iat`) a token may have by default: 12 hours
/// (`ACASA_JWT_MAX_LIFETIME_SECS`). Dev tokens last an hour, benchmark tokens six.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
const LEEWAY_SECS: u64 = 30;

/// How often a key set file is read again at most: periodically, and when a
/// token names a key it does not hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySetRefresh {
    /// The file is read again when a token arrives this long after the last
    /// read (default 30 s): new keys appear, removed keys disappear.
    pub interval: Duration,
    /// A token naming a `kid` the set lacks makes the file be read again, at
    /// most this often (default 1 s), so a new key works as soon as the file has it.
    pub unknown_kid: Duration,
}

impl Default for KeySetRefresh {
    fn default() -> Self {
        Self { interval: Duration::from_secs(30), unknown_kid: Duration::from_secs(1) }
    }
}

/// A key and what tokens signed with it must satisfy.
struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

/// How a token's signature is verified.
enum Keys {
    /// One key (the HS256 secret or an Ed25519 PEM); a `kid` is ignored.
    Single(Arc<Verifier>),
    /// A JSON Web Key Set file; the token's `kid` picks the key.
    Set(KeySet),
}

/// The keys of a JWKS file as last read.
struct Loaded {
    bytes: Vec<u8>,
    keys: HashMap<String, Arc<Verifier>>,
}

/// A JSON Web Key Set file (RFC 7517), read again as [`KeySetRefresh`] says,
/// so that keys rotate without a restart: the old and the new key both verify
/// while both are in the file. A file that cannot be read or holds no usable
/// key leaves the keys as they were (with a warning).
struct KeySet {
    path: PathBuf,
    refresh: KeySetRefresh,
    issuer: String,
    audience: String,
    current: RwLock<Arc<Loaded>>,
    read_at: Mutex<Instant>,
}

impl KeySet {
    fn open(path: &Path, refresh: KeySetRefresh, issuer: &str, audience: &str) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let keys = parse_key_set(&bytes, issuer, audience).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            refresh,
            issuer: issuer.into(),
            audience: audience.into(),
            current: RwLock::new(Arc::new(Loaded { bytes, keys })),
            read_at: Mutex::new(Instant::now()),
        })
    }

    fn loaded(&self) -> Arc<Loaded> {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The key named `kid`: reads the file again first if `interval` has
    /// passed, and once more (at most every `unknown_kid`) if the key is not there.
    fn find(&self, kid: &str) -> Option<Arc<Verifier>> {
        self.reread_after(self.refresh.interval);
        if let Some(v) = self.loaded().keys.get(kid) {
            return Some(v.clone());
        }
        if self.reread_after(self.refresh.unknown_kid) {
            return self.loaded().keys.get(kid).cloned();
        }
        None
    }

    /// Reads the file again if it was last read at least `after` ago; whether it did.
    fn reread_after(&self, after: Duration) -> bool {
        {
            let mut read_at = self.read_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if read_at.elapsed() < after {
                return false;
            }
            *read_at = Instant::now();
        }
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "JWT key set unreadable; keeping its keys");
                return true;
            }
        };
        if bytes == self.loaded().bytes {
            return true;
        }
        match parse_key_set(&bytes, &self.issuer, &self.audience) {
            Ok(keys) => {
                let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
                kids.sort_unstable();
                tracing::info!(path = %self.path.display(), kids = ?kids, "JWT key set changed");
                *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Arc::new(Loaded { bytes, keys });
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "JWT key set invalid; keeping its keys");
            }
        }
        true
    }
}

/// The signature algorithm of a JWK: its `alg`, else what its key type
/// implies (OKP Ed25519: EdDSA, RSA: RS256, EC P-256/P-384: ES256/ES384).
fn jwk_algorithm(jwk: &Jwk) -> Result<Algorithm, String> {
    if let Some(alg) = jwk.common.key_algorithm {
        return alg.to_string().parse::<Algorithm>().map_err(|_| format!("the algorithm {alg} does not sign"));
    }
    match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => Ok(Algorithm::EdDSA),
        AlgorithmParameters::RSA(_) => Ok(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Ok(Algorithm::ES256),
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P384 => Ok(Algorithm::ES384),
        _ => Err("an unsupported key type".into()),
    }
}

/// The usable keys of a JWKS document, by `kid`. Keys without a `kid`, for
/// encryption, of an unsupported type or symmetric (`oct`, HS*: whoever reads
/// the file could sign) are left out with a warning; a repeated `kid` or a set
/// without a usable key is an error.
fn parse_key_set(bytes: &[u8], issuer: &str, audience: &str) -> Result<HashMap<String, Arc<Verifier>>, String> {
    let set: JwkSet = serde_json::from_slice(bytes).map_err(|e| format!("not a JSON Web Key Set: {e}"))?;
    let mut keys = HashMap::new();
    for (i, jwk) in set.keys.iter().enumerate() {
        let Some(kid) = jwk.common.key_id.clone() else {
            tracing::warn!(key = i, "JWT key set: a key without kid is left out");
            continue;
        };
        if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
            continue;
        }
        let usable = jwk_algorithm(jwk).and_then(|alg| {
            if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
                || matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_))
            {
                return Err("a symmetric key (a key set holds public keys only)".into());
            }
            let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
            Ok(Verifier { key, validation: validation(alg, issuer, audience) })
        });
        match usable {
            Ok(v) => {
                if keys.insert(kid.clone(), Arc::new(v)).is_some() {
                    return Err(format!("the kid {kid:?} appears twice"));
                }
            }
            Err(why) => tracing::warn!(kid = %kid, why = %why, "JWT key set: a key is left out"),
        }
    }
    if keys.is_empty() {
        return Err("no usable signing key (each needs a kid)".into());
    }
    Ok(keys)
}

/// Verifies bearer tokens: the signature (one key, or the key its `kid`
/// names in a key set), `exp` and `nbf` (30 s leeway), issuer, audience (one
/// of the token's), and a lifetime `exp - iat` no longer than the maximum.
#[derive(Clone)]
pub struct Authenticator {
    keys: Arc<Keys>,
    max_lifetime: Duration,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = match &*self.keys {
            Keys::Single(v) => format!("{:?}", v.validation.algorithms),
            Keys::Set(set) => format!("key set {}", set.path.display()),
        };
        f.debug_struct("Authenticator").field("keys", &keys).field("max_lifetime", &self.max_lifetime).finish()
    }
}

fn validation(alg: Algorithm, issuer: &str, audience: &str) -> Validation {
    let mut v = Validation::new(alg);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.validate_nbf = true;
    v.leeway = LEEWAY_SECS;
    v
}

impl Authenticator {
    fn single(key: DecodingKey, alg: Algorithm, issuer: &str, audience: &str) -> Self {
        Self {
            keys: Arc::new(Keys::Single(Arc::new(Verifier { key, validation: validation(alg, issuer, audience) }))),
            max_lifetime: DEFAULT_MAX_LIFETIME,
        }
    }

    /// Verifies HS256 tokens signed with `secret`.
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self::single(DecodingKey::from_secret(secret), Algorithm::HS256, issuer, audience)
    }

    /// Verifies EdDSA tokens of an identity provider's Ed25519 public key (PEM).
    pub fn ed25519_pem(pem: &[u8], issuer: &str, audience: &str) -> Result<Self, jsonwebtoken::errors::Error> {
        Ok(Self::single(DecodingKey::from_ed_pem(pem)?, Algorithm::EdDSA, issuer, audience))
    }

    /// Verifies tokens with the keys of a JSON Web Key Set file (RFC 7517):
    /// the token's `kid` names the key, whose algorithm (its `alg`, else its
    /// type's: EdDSA for OKP Ed25519, RS256 for RSA) the token must use. The
    /// file is read again as `refresh` says.
    pub fn jwks_file(path: &Path, refresh: KeySetRefresh, issuer: &str, audience: &str) -> Result<Self, String> {
        Ok(Self {
            keys: Arc::new(Keys::Set(KeySet::open(path, refresh, issuer, audience)?)),
            max_lifetime: DEFAULT_MAX_LIFETIME,
        })
    }

    /// Refuses tokens whose lifetime `exp - iat` exceeds `max`.
    pub fn with_max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = max;
        self
    }

    /// From configuration, the first that is set: the key set
    /// (`ACASA_JWT_JWKS_FILE`), the Ed25519 public key
    /// (`ACASA_JWT_PUBLIC_KEY_FILE`), else the HS256 secret file
    /// (`ACASA_JWT_SECRET_FILE`); capped at `ACASA_JWT_MAX_LIFETIME_SECS`.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let auth = if let Some(path) = &config.jwt_jwks_file {
            let refresh = KeySetRefresh { interval: config.jwt_jwks_refresh, ..KeySetRefresh::default() };
            Self::jwks_file(path, refresh, &config.jwt_issuer, &config.jwt_audience)
                .map_err(|reason| ConfigError { var: "ACASA_JWT_JWKS_FILE", reason })?
        } else if let Some(path) = &config.jwt_public_key_file {
            let pem = std::fs::read(path).map_err(|e| ConfigError {
                var: "ACASA_JWT_PUBLIC_KEY_FILE",
                reason: format!("{}: {e}", path.display()),
            })?;
            Self::ed25519_pem(&pem, &config.jwt_issuer, &config.jwt_audience)
                .map_err(|e| ConfigError { var: "ACASA_JWT_PUBLIC_KEY_FILE", reason: e.to_string() })?
        } else {
            let secret = Config::read_secret(&config.jwt_secret_file)?;
            Self::hs256(&secret, &config.jwt_issuer, &config.jwt_audience)
        };
        Ok(auth.with_max_lifetime(config.jwt_max_lifetime))
    }

    /// Verifies a token.
    pub fn verify(&self, token: &str) -> Result<Principal, Status> {
        let verifier = match &*self.keys {
            Keys::Single(v) => v.clone(),
            Keys::Set(set) => {
                let header = jsonwebtoken::decode_header(token)
                    .map_err(|_| Status::unauthenticated("the token is malformed"))?;
                let kid = header.kid.ok_or_else(|| Status::unauthenticated("the token names no key (kid)"))?;
                set.find(&kid).ok_or_else(|| Status::unauthenticated("the token's key (kid) is not known"))?
            }
        };
        let data = jsonwebtoken::decode::<Claims>(token, &verifier.key, &verifier.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            let why = match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
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
        let iat = c.iat.ok_or_else(|| Status::unauthenticated("the token lacks a required claim (iat)"))?;
        if iat > jsonwebtoken::get_current_timestamp().saturating_add(LEEWAY_SECS) {
            return Err(Status::unauthenticated("the token is issued in the future (iat)"));
        }
        if c.exp.saturating_sub(iat) > self.max_lifetime.as_secs() {
            return Err(Status::unauthenticated("the token's lifetime (exp - iat) exceeds the maximum"));
        }
        Ok(Principal {
            subject: c.sub,
            roles: c.roles.iter().filter_map(|r| Role::parse(r)).collect(),
            partner_id: c.partner_id,
            host_id: c.host_id,
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

/// What a token is scoped to besides its roles: a partner organisation (role
/// `partner`) or a host institution (role `host`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenScope<'a> {
    /// The partner's id (`partner_id` claim).
    pub partner_id: Option<&'a str>,
    /// The host institution's id (`host_id` claim).
    pub host_id: Option<&'a str>,
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

    /// Signs a token for `subject` with `roles` (and a partner's id for
    /// partner tokens), valid for `ttl`.
    pub fn issue(
        &self,
        subject: &str,
        roles: &[Role],
        partner_id: Option<&str>,
        ttl: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.issue_scoped(subject, roles, TokenScope { partner_id, host_id: None }, ttl)
    }

    /// Signs a token for `subject` with `roles` and `scope` (a partner's or a
    /// host institution's id), valid for `ttl`.
    pub fn issue_scoped(
        &self,
        subject: &str,
        roles: &[Role],
        scope: TokenScope<'_>,
        ttl: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = jsonwebtoken::get_current_timestamp();
        self.sign(subject, roles, scope, now, now + ttl.as_secs())
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
        self.sign(subject, roles, TokenScope { partner_id, host_id: None }, iat, exp)
    }

    fn sign(
        &self,
        subject: &str,
        roles: &[Role],
        scope: TokenScope<'_>,
        iat: u64,
        exp: u64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: subject.into(),
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            partner_id: scope.partner_id.map(str::to_owned),
            host_id: scope.host_id.map(str::to_owned),
            iss: self.issuer.clone(),
            aud: Audience::One(self.audience.clone()),
            exp,
            iat: Some(iat),
            nbf: None,
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
    fn a_host_token_carries_its_host_id_and_scopes_request_ids_by_it() {
        let issuer = TokenIssuer::hs256(KEY, "acasa", "acasa");
        let auth = Authenticator::hs256(KEY, "acasa", "acasa");
        let scope = TokenScope { partner_id: None, host_id: Some("h-1") };
        let t = issuer.issue_scoped("clerk", &[Role::Host], scope, Duration::from_secs(60)).unwrap();
        let p = call(&auth, Some(&format!("Bearer {t}"))).unwrap();
        assert_eq!(p.roles, vec![Role::Host]);
        assert_eq!((p.host_id.as_deref(), p.partner_id.as_deref()), (Some("h-1"), None));
        assert_eq!(p.scope(), "api:clerk|host:h-1");
        // Two hosts' tokens may share a subject; their request ids do not.
        let other = TokenScope { partner_id: None, host_id: Some("h-2") };
        let t2 = issuer.issue_scoped("clerk", &[Role::Host], other, Duration::from_secs(60)).unwrap();
        assert_ne!(call(&auth, Some(&format!("Bearer {t2}"))).unwrap().scope(), p.scope());
        // The claim is `host_id`, and absent from other tokens (and from their principals).
        use base64::Engine as _;
        let json = |t: &str| -> serde_json::Value {
            let payload = t.split('.').nth(1).unwrap();
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
        };
        assert_eq!(json(&t)["host_id"], serde_json::json!("h-1"));
        assert!(json(&t).get("partner_id").is_none());
        let partner = issuer.issue("bank", &[Role::Partner], Some("p-1"), Duration::from_secs(60)).unwrap();
        assert!(json(&partner).get("host_id").is_none());
        let p = call(&auth, Some(&format!("Bearer {partner}"))).unwrap();
        assert_eq!((p.host_id, p.partner_id.as_deref()), (None, Some("p-1")));
        // An IdP's token with the claim verifies the same way.
        let mut c = claims(Some(now()), now() + 60);
        c.host_id = Some("h-3".into());
        c.roles = vec!["host".into(), "finance".into()];
        let p = verify(&auth, &hs(&c)).unwrap();
        assert_eq!(p.host_id.as_deref(), Some("h-3"));
        assert_eq!(p.roles, vec![Role::Host, Role::Finance]);
    }

    #[test]
    fn every_role_has_one_name() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(r.to_string(), r.as_str());
        }
        let names: std::collections::HashSet<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), Role::ALL.len());
        assert_eq!(Role::parse("host"), Some(Role::Host));
        assert_eq!(Role::parse("finance"), Some(Role::Finance));
        assert_eq!(Role::parse("service"), Some(Role::Service));
        assert_eq!(Role::parse("Service"), None);
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

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn claims(iat: Option<u64>, exp: u64) -> Claims {
        Claims {
            sub: "u".into(),
            roles: vec!["viewer".into()],
            partner_id: None,
            host_id: None,
            iss: "acasa".into(),
            aud: Audience::One("acasa".into()),
            exp,
            iat,
            nbf: None,
        }
    }

    fn hs(c: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), c, &EncodingKey::from_secret(KEY)).unwrap()
    }

    fn verify(auth: &Authenticator, token: &str) -> Result<Principal, String> {
        auth.verify(token).map_err(|e| {
            assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
            e.message().to_owned()
        })
    }

    #[test]
    fn a_token_not_valid_yet_is_refused() {
        let auth = Authenticator::hs256(KEY, "acasa", "acasa");
        let mut c = claims(Some(now()), now() + 7200);
        c.nbf = Some(now() + 3600);
        assert_eq!(verify(&auth, &hs(&c)).unwrap_err(), "the token is not valid yet (nbf)");
        // Within the clock-skew leeway, and in the past, it is valid.
        c.nbf = Some(now() + 10);
        assert!(verify(&auth, &hs(&c)).is_ok());
        c.nbf = Some(now() - 10);
        assert!(verify(&auth, &hs(&c)).is_ok());
    }

    #[test]
    fn an_audience_array_is_accepted_when_it_names_ours() {
        let auth = Authenticator::hs256(KEY, "acasa", "acasa");
        let mut c = claims(Some(now()), now() + 60);
        c.aud = Audience::Many(vec!["registry-ui".into(), "acasa".into()]);
        assert_eq!(verify(&auth, &hs(&c)).unwrap().subject, "u");
        c.aud = Audience::Many(vec!["registry-ui".into(), "someone-else".into()]);
        assert_eq!(verify(&auth, &hs(&c)).unwrap_err(), "the token's audience is not accepted");
        c.aud = Audience::Many(vec![]);
        assert!(verify(&auth, &hs(&c)).is_err());
        c.aud = Audience::One("someone-else".into());
        assert_eq!(verify(&auth, &hs(&c)).unwrap_err(), "the token's audience is not accepted");
        // Dev tokens keep a plain string.
        let t = TokenIssuer::hs256(KEY, "acasa", "acasa").issue("u", &[], None, Duration::from_secs(60)).unwrap();
        let payload = t.split('.').nth(1).unwrap();
        use base64::Engine as _;
        let json: serde_json::Value =
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(json["aud"], serde_json::json!("acasa"));
    }

    #[test]
    fn a_lifetime_over_the_cap_or_without_iat_is_refused() {
        let auth = Authenticator::hs256(KEY, "acasa", "acasa").with_max_lifetime(Duration::from_secs(3600));
        let t = now();
        assert!(verify(&auth, &hs(&claims(Some(t), t + 3600))).is_ok());
        assert_eq!(
            verify(&auth, &hs(&claims(Some(t), t + 3601))).unwrap_err(),
            "the token's lifetime (exp - iat) exceeds the maximum"
        );
        assert_eq!(verify(&auth, &hs(&claims(None, t + 60))).unwrap_err(), "the token lacks a required claim (iat)");
        // An iat in the future would stretch the cap.
        assert_eq!(
            verify(&auth, &hs(&claims(Some(t + 3000), t + 3600))).unwrap_err(),
            "the token is issued in the future (iat)"
        );
        // By default 12 hours: the benchmarks' 6-hour tokens pass, a day does not.
        let default = Authenticator::hs256(KEY, "acasa", "acasa");
        assert!(verify(&default, &hs(&claims(Some(t), t + 6 * 3600))).is_ok());
        assert!(verify(&default, &hs(&claims(Some(t), t + 12 * 3600))).is_ok());
        assert!(verify(&default, &hs(&claims(Some(t), t + 12 * 3600 + 1))).is_err());
    }

    /// A test signing key with its kid.
    struct Signer {
        key: EncodingKey,
        alg: Algorithm,
        kid: String,
    }

    impl Signer {
        /// An Ed25519 key from a seed (PKCS#8 DER: a fixed prefix and the seed).
        fn ed25519(seed: u8, kid: &str) -> Self {
            let mut der =
                vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
            der.extend([seed; 32]);
            Self { key: EncodingKey::from_ed_der(&der), alg: Algorithm::EdDSA, kid: kid.into() }
        }

        /// The RSA test key (testdata/, used nowhere else).
        fn rsa(kid: &str) -> Self {
            let pem = include_bytes!("../testdata/rs256-test-key.pem");
            Self { key: EncodingKey::from_rsa_pem(pem).unwrap(), alg: Algorithm::RS256, kid: kid.into() }
        }

        /// Its public JWK; without `alg` for RSA (the key type implies RS256).
        fn jwk(&self) -> serde_json::Value {
            let mut jwk = Jwk::from_encoding_key(&self.key, self.alg).unwrap();
            jwk.common.key_id = Some(self.kid.clone());
            if self.alg == Algorithm::RS256 {
                jwk.common.key_algorithm = None;
            }
            serde_json::to_value(jwk).unwrap()
        }

        fn sign_as(&self, kid: Option<&str>, c: &Claims) -> String {
            let mut header = Header::new(self.alg);
            header.kid = kid.map(str::to_owned);
            jsonwebtoken::encode(&header, c, &self.key).unwrap()
        }

        fn sign(&self) -> String {
            self.sign_as(Some(&self.kid), &claims(Some(now()), now() + 600))
        }
    }

    /// Replaces the key set file, as a mounted Secret changes (a rename).
    fn write_set(path: &Path, keys: &[&Signer]) {
        let set = serde_json::json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() });
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&set).unwrap()).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    fn key_set(path: &Path, interval: Duration, unknown_kid: Duration) -> Authenticator {
        Authenticator::jwks_file(path, KeySetRefresh { interval, unknown_kid }, "acasa", "acasa").unwrap()
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn the_kid_selects_the_key_among_several() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        let (a, b) = (Signer::ed25519(1, "ed-2025"), Signer::rsa("rsa-2026"));
        write_set(&path, &[&a, &b]);
        let auth = key_set(&path, HOUR, HOUR);
        assert_eq!(verify(&auth, &a.sign()).unwrap().subject, "u");
        assert_eq!(verify(&auth, &b.sign()).unwrap().subject, "u");
        // Another Ed25519 key naming a's kid; a's key naming b's kid.
        let forger = Signer::ed25519(2, "ed-2025");
        assert_eq!(verify(&auth, &forger.sign()).unwrap_err(), "the token's signature is invalid");
        let c = claims(Some(now()), now() + 600);
        assert_eq!(
            verify(&auth, &a.sign_as(Some("rsa-2026"), &c)).unwrap_err(),
            "the token's algorithm is not accepted"
        );
        // The HS256 dev tokens mean nothing to a key set.
        let dev = TokenIssuer::hs256(KEY, "acasa", "acasa").issue("u", &[], None, Duration::from_secs(60)).unwrap();
        assert!(verify(&auth, &dev).is_err());
        // The other rules hold for key set tokens too.
        let mut late = claims(Some(now()), now() + 600);
        late.nbf = Some(now() + 300);
        assert_eq!(verify(&auth, &a.sign_as(Some("ed-2025"), &late)).unwrap_err(), "the token is not valid yet (nbf)");
    }

    #[test]
    fn a_token_without_a_kid_or_with_an_unknown_kid_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        let a = Signer::ed25519(1, "ed-2025");
        write_set(&path, &[&a]);
        let auth = key_set(&path, Duration::ZERO, Duration::ZERO);
        let c = claims(Some(now()), now() + 600);
        assert_eq!(verify(&auth, &a.sign_as(None, &c)).unwrap_err(), "the token names no key (kid)");
        assert_eq!(verify(&auth, &a.sign_as(Some("ed-2024"), &c)).unwrap_err(), "the token's key (kid) is not known");
        assert!(verify(&auth, &a.sign_as(Some("ed-2025"), &c)).is_ok());
    }

    #[test]
    fn a_rewritten_key_set_takes_effect_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        let (old, next, third) = (Signer::ed25519(1, "old"), Signer::ed25519(2, "next"), Signer::ed25519(3, "third"));

        // A token naming an unknown kid has the file read again at once.
        write_set(&path, &[&old]);
        let auth = key_set(&path, HOUR, Duration::ZERO);
        assert!(verify(&auth, &old.sign()).is_ok());
        assert!(verify(&auth, &next.sign()).is_err());
        write_set(&path, &[&old, &next]);
        assert!(verify(&auth, &next.sign()).is_ok(), "the new key verifies");
        assert!(verify(&auth, &old.sign()).is_ok(), "the old key still verifies while both are in the file");

        // The file is read again periodically: a removed key stops verifying.
        let auth = key_set(&path, Duration::ZERO, HOUR);
        write_set(&path, &[&next]);
        assert_eq!(verify(&auth, &old.sign()).unwrap_err(), "the token's key (kid) is not known");
        assert!(verify(&auth, &next.sign()).is_ok());
        // A broken file keeps the keys it had.
        std::fs::write(&path, "{ not json").unwrap();
        assert!(verify(&auth, &next.sign()).is_ok());
        std::fs::remove_file(&path).unwrap();
        assert!(verify(&auth, &next.sign()).is_ok());

        // At most as often as configured: within the intervals, the file is not read again.
        write_set(&path, &[&next]);
        let auth = key_set(&path, HOUR, HOUR);
        write_set(&path, &[&next, &third]);
        assert_eq!(verify(&auth, &third.sign()).unwrap_err(), "the token's key (kid) is not known");
    }

    #[test]
    fn a_key_set_holds_public_signing_keys_with_distinct_kids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        let a = Signer::ed25519(1, "a");
        let secret = serde_json::json!({"kty": "oct", "kid": "h", "k": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"});
        let mut no_kid = a.jwk();
        no_kid.as_object_mut().unwrap().remove("kid");
        // A symmetric key and a key without a kid are left out; the rest works.
        std::fs::write(&path, serde_json::json!({"keys": [secret, no_kid, a.jwk()]}).to_string()).unwrap();
        let auth = key_set(&path, HOUR, HOUR);
        assert!(verify(&auth, &a.sign()).is_ok());
        let hs_with_kid = jsonwebtoken::encode(
            &Header { kid: Some("h".into()), ..Header::new(Algorithm::HS256) },
            &claims(Some(now()), now() + 60),
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .unwrap();
        assert_eq!(verify(&auth, &hs_with_kid).unwrap_err(), "the token's key (kid) is not known");
        // No usable key, or a kid twice: refused at start.
        std::fs::write(&path, serde_json::json!({"keys": [secret]}).to_string()).unwrap();
        assert!(Authenticator::jwks_file(&path, KeySetRefresh::default(), "acasa", "acasa").is_err());
        std::fs::write(&path, serde_json::json!({"keys": [a.jwk(), a.jwk()]}).to_string()).unwrap();
        assert!(Authenticator::jwks_file(&path, KeySetRefresh::default(), "acasa", "acasa").is_err());
    }

    #[test]
    fn configuration_prefers_the_key_set_and_caps_the_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        let a = Signer::ed25519(1, "a");
        write_set(&jwks, &[&a]);
        let secret = dir.path().join("jwt.key");
        std::fs::write(&secret, hex::encode(KEY)).unwrap();
        let env = |jwks_set: bool| {
            let (jwks, secret) = (jwks.clone(), secret.clone());
            Config::from_lookup(move |k| match k {
                "ACASA_JWT_JWKS_FILE" if jwks_set => Some(jwks.display().to_string()),
                "ACASA_JWT_SECRET_FILE" => Some(secret.display().to_string()),
                "ACASA_JWT_MAX_LIFETIME_SECS" => Some("600".into()),
                _ => None,
            })
            .unwrap()
        };
        let dev = TokenIssuer::hs256(KEY, "acasa", "acasa").issue("u", &[], None, Duration::from_secs(60)).unwrap();
        let with_set = Authenticator::from_config(&env(true)).unwrap();
        assert!(verify(&with_set, &a.sign()).is_ok());
        assert!(verify(&with_set, &dev).is_err());
        let without = Authenticator::from_config(&env(false)).unwrap();
        assert!(verify(&without, &dev).is_ok());
        assert!(verify(&without, &a.sign()).is_err());
        let long = TokenIssuer::hs256(KEY, "acasa", "acasa").issue("u", &[], None, Duration::from_secs(601)).unwrap();
        assert!(verify(&without, &long).is_err(), "ACASA_JWT_MAX_LIFETIME_SECS applies");
    }
}
