//! NATS accounts and users of the partner feed: the services' account
//! [`SERVICE_ACCOUNT`] with the service user and the streams, and one account
//! per registered partner that is not suspended, holding only that partner's
//! user and imports of the few JetStream API subjects of its own consumer.
//!
//! The feed is the JetStream stream [`FEED_STREAM`] with subjects
//! `acasa.partner.<partner id>.referral.<referral id>`. A partner consumes it
//! through the durable pull consumer named after itself and filtered on its
//! own subjects, which the referrals feed publisher creates when it projects
//! the partner's registration (`acasa_referrals::feed::ensure_partner_consumer`);
//! the partner fetches, acks and resets it, and never creates or deletes a
//! consumer.
//!
//! Why accounts: nats-server checks the subject a client publishes to, never
//! the reply subject it names, and JetStream answers into that reply subject
//! as the account that owns the stream. Within one account a partner could
//! thus have its fetched messages (or an API answer) delivered into any
//! subject of the services — another service's event log, another partner's
//! feed. Across an account boundary the reply subject belongs to the
//! requester's account: the server hands the responder a generated `_R_.…`
//! subject instead and delivers the answer back into the partner's account,
//! where nothing but the partner listens. `tests/it/nats_permissions.rs`
//! proves it, and that everything else is refused, route by route.
//!
//! Locally the credentials need no store: a partner's password is a keyed
//! hash of its id ([`partner_password`]), so `acasa nats-users` can write the
//! nats-server `accounts` block from the partner ids alone and `acasa
//! partner-credentials` can tell a partner its password. In production the
//! same shape is an account JWT per partner (ARCHITECTURE.md, "Partner feed
//! credentials").

use std::{
    io::Write as _,
    path::{Path, PathBuf},
};

use acasa_eventstore::KeyedHasher;
use acasa_runtime::Config;
use anyhow::Context as _;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// The JetStream stream of the partner feed, a partner's consumer name and
/// its feed subjects (`acasa.partner.<id>.>`, the consumer's filter): as the
/// feed publisher creates them.
pub use crate::{
    FEED_STREAM,
    feed::{consumer_name, partner_filter as feed_filter},
};

/// The account of the services and workers: JetStream (every stream), the
/// service user, and the exports of each partner's consumer API.
pub const SERVICE_ACCOUNT: &str = "ACASA";

/// The NATS user of the services and workers (every permission in [`SERVICE_ACCOUNT`]).
pub const SERVICE_USER: &str = "acasa";

/// The inbox prefix of partner clients: the default one. Inboxes are
/// account-local and a partner's account holds only the partner, so no
/// per-partner prefix is needed.
pub const INBOX_PREFIX: &str = "_INBOX";

/// Where a partner's account imports the services' JetStream API subjects:
/// `$JS.API.X` of [`SERVICE_ACCOUNT`] is `ACASA.API.X` in the partner's account,
/// and the account maps the client's `$JS.API.X` onto it (see [`FeedImport`]).
pub const IMPORT_PREFIX: &str = "ACASA.API";

/// The keyed-hash domain of partner passwords.
const PASSWORD_DOMAIN: &str = "nats-partner";

/// A partner's NATS user name: `partner-<id>`.
pub fn partner_user(partner_id: Uuid) -> String {
    format!("partner-{partner_id}")
}

/// A partner's NATS account: `P_<id without dashes>`.
pub fn partner_account(partner_id: Uuid) -> String {
    format!("P_{}", partner_id.simple())
}

/// A partner's NATS password: the keyed hash (HMAC-SHA256, hex) of its id.
pub fn partner_password(hasher: &KeyedHasher, partner_id: Uuid) -> String {
    hasher.hash(PASSWORD_DOMAIN, &partner_id.to_string())
}

/// How many answers one request to an exported service gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response {
    /// One answer (the server's default).
    Singleton,
    /// Any number of answers: a fetch is answered with each message it gets.
    Stream,
}

/// One service of [`SERVICE_ACCOUNT`] that a partner's account imports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedImport {
    /// The subject in [`SERVICE_ACCOUNT`], exported to this partner's account only.
    pub subject: String,
    /// The import's subject in the partner's account (`to:`), when it differs.
    pub local: Option<String>,
    /// The subject the partner's clients send, mapped (account `mappings`)
    /// onto `local`, when they differ.
    pub client: Option<String>,
    /// How many answers a request gets.
    pub response: Response,
}

impl FeedImport {
    /// The subject the import listens on in the partner's account.
    pub fn local_subject(&self) -> &str {
        self.local.as_deref().unwrap_or(&self.subject)
    }

    /// The subject the partner's clients publish to.
    pub fn client_subject(&self) -> &str {
        self.client.as_deref().unwrap_or(self.local_subject())
    }
}

/// What a partner's account imports from [`SERVICE_ACCOUNT`]: the JetStream
/// API requests that work on its own durable pull consumer (named after it,
/// created by the feed publisher with the filter `acasa.partner.<id>.>`,
/// `DeliverPolicy::All`, `AckPolicy::Explicit`), and acks of that consumer's
/// messages:
///
/// - `$JS.API.CONSUMER.MSG.NEXT.<stream>.<id>` — fetch (a stream of answers:
///   the messages, then a status).
/// - `$JS.API.CONSUMER.INFO.<stream>.<id>` — bind to it (clients read its info
///   first) and see its position.
/// - `$JS.API.CONSUMER.RESET.<stream>.<id>` — replay from any position. The
///   body (nats-server 2.14+, ADR-60) is `{"seq": N}`: the ack floor becomes
///   stream sequence N − 1, pending and redelivery state is cleared, and the
///   next fetched message has a stream sequence ≥ N (N may lie before or
///   beyond what it acked). An empty body, `{}` or `{"seq": 0}` only clears the
///   pending state: delivery restarts after the ack floor. The answer is an
///   `io.nats.jetstream.api.v1.consumer_reset_response`: the consumer's info
///   plus `reset_seq`.
/// - `$JS.ACK.<stream>.<id>.>` — acknowledge what its consumer delivered (the
///   reply subject of each delivered message, unchanged across the accounts).
///
/// The three API subjects are imported under [`IMPORT_PREFIX`] (`ACASA.API.…`)
/// and the account maps the client's own `$JS.API.…` subject onto that, so
/// that clients use the ordinary JetStream API subjects: a nats-server with
/// JetStream gives every account without JetStream a `$JS.API.>` import that
/// answers "JetStream not enabled for account", and an import under the same
/// subject would be answered twice, that error first. The mapping applies
/// before routing, so the request reaches only the import. The ack subjects
/// have no such twin and are imported as they are.
pub fn partner_imports(partner_id: Uuid) -> Vec<FeedImport> {
    let s = FEED_STREAM;
    let c = consumer_name(partner_id);
    let api = |op: &str, response| FeedImport {
        subject: format!("$JS.API.CONSUMER.{op}.{s}.{c}"),
        local: Some(format!("{IMPORT_PREFIX}.CONSUMER.{op}.{s}.{c}")),
        client: Some(format!("$JS.API.CONSUMER.{op}.{s}.{c}")),
        response,
    };
    vec![
        api("MSG.NEXT", Response::Stream),
        api("INFO", Response::Singleton),
        api("RESET", Response::Singleton),
        FeedImport { subject: format!("$JS.ACK.{s}.{c}.>"), local: None, client: None, response: Response::Singleton },
    ]
}

/// What one NATS user may publish and subscribe to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permissions {
    /// Subjects it may publish to.
    pub publish_allow: Vec<String>,
    /// Subjects it may never publish to (these win over the allow list).
    pub publish_deny: Vec<String>,
    /// Subjects it may subscribe to.
    pub subscribe_allow: Vec<String>,
    /// Subjects it may never subscribe to.
    pub subscribe_deny: Vec<String>,
}

/// The permission template of a partner's user, inside its own account.
///
/// The account boundary is what keeps the partner from everything of the
/// services: its account has no JetStream and imports only
/// [`partner_imports`], and every reply subject it names is one of its own
/// account. The permissions are the second wall, and they make a refusal
/// explicit (a permissions violation instead of silence).
///
/// Publish: only the subjects of [`partner_imports`], both as the client sends
/// them (`$JS.API.CONSUMER.{MSG.NEXT,INFO,RESET}.<stream>.<id>`) and as the
/// account maps them (`ACASA.API.…`): nats-server 2.15.1 checks the mapped
/// subject, and allowing both keeps the template independent of that order.
///
/// Every consumer create and delete is denied: `$JS.API.CONSUMER.CREATE.>`
/// (every form), `$JS.API.CONSUMER.DURABLE.CREATE.>`, `$JS.API.CONSUMER.DELETE.>`;
/// so are direct get and message get, the stream API, consumer listings,
/// account info, `acasa.>` and `_INBOX.>`. None of them is imported, so none
/// could reach the services anyway; denied, they stay refused should an
/// import ever be widened.
///
/// Subscribe: only its inboxes `_INBOX.>` — account-local, so they are its
/// own: answers to its requests and its consumer's messages arrive there. Not
/// `acasa.>` (nothing of the services is there in its account) nor `$JS.>`.
///
/// No `allow_responses`: a partner answers nothing over NATS (it acts over gRPC).
pub fn partner_permissions(partner_id: Uuid) -> Permissions {
    let mut publish_allow = Vec::new();
    for i in partner_imports(partner_id) {
        publish_allow.push(i.client_subject().to_owned());
        if i.client_subject() != i.local_subject() {
            publish_allow.push(i.local_subject().to_owned());
        }
    }
    Permissions {
        publish_allow,
        publish_deny: vec![
            // Creating or deleting any consumer: the feed publisher owns them.
            "$JS.API.CONSUMER.CREATE.>".into(),
            "$JS.API.CONSUMER.DURABLE.CREATE.>".into(),
            "$JS.API.CONSUMER.DELETE.>".into(),
            // Reading messages or subjects of a stream other than through its consumer.
            "$JS.API.DIRECT.GET.>".into(),
            "$JS.API.STREAM.>".into(),
            "$JS.API.CONSUMER.NAMES.>".into(),
            "$JS.API.CONSUMER.LIST.>".into(),
            "$JS.API.INFO".into(),
            // The services' subject space and the inboxes.
            "acasa.>".into(),
            "_INBOX.>".into(),
        ],
        subscribe_allow: vec![format!("{INBOX_PREFIX}.>")],
        subscribe_deny: vec!["acasa.>".into(), "$JS.>".into()],
    }
}

/// What one partner's NATS account may use (nats-server's account `limits`,
/// checked on a real server in `tests/it/nats_permissions.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartnerLimits {
    /// Connections open at once, all of the partner's clients together (the
    /// server refuses the next login with "maximum account active connections
    /// exceeded"). Default 5: a consumer, a standby, a reconnect whose old
    /// connection the server has not yet noticed gone, and one for tooling.
    pub max_connections: u32,
    /// Subscriptions of one connection (nats-server 2.15 applies the account's
    /// limit per connection; the next one is refused with "maximum
    /// subscriptions exceeded"). Default 10: a client's request inbox and a
    /// fetch or two need three.
    pub max_subscriptions: u32,
    /// The largest message a partner's client may publish, headers included
    /// (a larger one closes the connection: "maximum payload exceeded").
    /// A partner publishes only API requests (fetch, info, reset: a small
    /// JSON object) and acks; the feed's messages it receives are not bound
    /// by it. Default 4096 bytes.
    pub max_payload: u32,
}

impl Default for PartnerLimits {
    fn default() -> Self {
        Self { max_connections: 5, max_subscriptions: 10, max_payload: 4096 }
    }
}

impl PartnerLimits {
    /// From `ACASA_NATS_PARTNER_MAX_CONNECTIONS`, `…_MAX_SUBSCRIPTIONS` and `…_MAX_PAYLOAD`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_connections: config.nats_partner_max_connections,
            max_subscriptions: config.nats_partner_max_subscriptions,
            max_payload: config.nats_partner_max_payload,
        }
    }
}

/// A quoted nats-server configuration string.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn subject_list(out: &mut String, key: &str, subjects: &[String], indent: &str) {
    out.push_str(indent);
    out.push_str(key);
    out.push_str(": [\n");
    for s in subjects {
        out.push_str(indent);
        out.push_str("  ");
        out.push_str(&quoted(s));
        out.push('\n');
    }
    out.push_str(indent);
    out.push_str("]\n");
}

/// The nats-server `accounts { ... }` block:
///
/// - [`SERVICE_ACCOUNT`], with JetStream, the service user (every permission)
///   and, per partner, the exports of [`partner_imports`], each to that
///   partner's account only;
/// - per partner (id, password), the account [`partner_account`] without
///   JetStream, with its `limits` ([`PartnerLimits`]), its user
///   ([`partner_user`], [`partner_permissions`]), the mappings of its
///   clients' API subjects and the imports.
///
/// No `system_account`: nats-server creates `$SYS` itself, with no user to
/// log in as. Deterministic: the same input gives the same text. With no
/// partner it is the services' account alone.
pub fn render_accounts(
    service_user: &str,
    service_password: &str,
    partners: &[(Uuid, String)],
    limits: &PartnerLimits,
) -> String {
    let mut out = String::new();
    out.push_str("# Written by `acasa nats-users`; edits are overwritten.\n");
    out.push_str(&format!("# Account {SERVICE_ACCOUNT}: JetStream, the service user (every permission), and the\n"));
    out.push_str("# per-partner exports of its consumer's API. One account per partner: its user, which\n");
    out.push_str(&format!("# only consumes its own feed (stream {FEED_STREAM}) through the durable consumer\n"));
    out.push_str("# named after it, and the imports of exactly that consumer's subjects. A reply subject a\n");
    out.push_str(&format!(
        "# partner names stays in its own account: nothing of {SERVICE_ACCOUNT} can be reached by it.\n"
    ));
    out.push_str(&format!("# {} partner(s).\n", partners.len()));
    out.push_str("accounts {\n");
    out.push_str(&format!("  {}: {{\n    jetstream: enabled\n", quoted(SERVICE_ACCOUNT)));
    out.push_str("    users: [\n");
    out.push_str(&format!("      {{ user: {}, password: {} }}\n", quoted(service_user), quoted(service_password)));
    out.push_str("    ]\n    exports: [\n");
    for (id, _) in partners {
        let account = quoted(&partner_account(*id));
        for i in partner_imports(*id) {
            let response = match i.response {
                Response::Stream => ", response_type: stream",
                Response::Singleton => "",
            };
            out.push_str(&format!("      {{ service: {}{response}, accounts: [{account}] }}\n", quoted(&i.subject)));
        }
    }
    out.push_str("    ]\n  }\n");
    for (id, password) in partners {
        let p = partner_permissions(*id);
        let imports = partner_imports(*id);
        out.push_str(&format!("  {}: {{\n    jetstream: disabled\n", quoted(&partner_account(*id))));
        out.push_str(&format!(
            "    limits: {{ max_connections: {}, max_subscriptions: {}, max_payload: {} }}\n",
            limits.max_connections, limits.max_subscriptions, limits.max_payload
        ));
        out.push_str(&format!(
            "    users: [\n      {{\n        user: {}\n        password: {}\n",
            quoted(&partner_user(*id)),
            quoted(password)
        ));
        out.push_str("        permissions: {\n          publish: {\n");
        subject_list(&mut out, "allow", &p.publish_allow, "            ");
        subject_list(&mut out, "deny", &p.publish_deny, "            ");
        out.push_str("          }\n          subscribe: {\n");
        subject_list(&mut out, "allow", &p.subscribe_allow, "            ");
        subject_list(&mut out, "deny", &p.subscribe_deny, "            ");
        out.push_str("          }\n        }\n      }\n    ]\n");
        out.push_str("    mappings: {\n");
        for i in imports.iter().filter(|i| i.client_subject() != i.local_subject()) {
            out.push_str(&format!("      {}: {}\n", quoted(i.client_subject()), quoted(i.local_subject())));
        }
        out.push_str("    }\n    imports: [\n");
        for i in &imports {
            let to = match &i.local {
                Some(local) => format!(", to: {}", quoted(local)),
                None => String::new(),
            };
            out.push_str(&format!(
                "      {{ service: {{ account: {}, subject: {} }}{to} }}\n",
                quoted(SERVICE_ACCOUNT),
                quoted(&i.subject)
            ));
        }
        out.push_str("    ]\n  }\n");
    }
    out.push_str("}\n");
    out
}

/// What a partner needs to consume its feed over NATS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartnerCredentials {
    /// The NATS user.
    pub user: String,
    /// The NATS password.
    pub password: String,
    /// Its NATS account (informational: the server finds it from the user).
    pub account: String,
    /// The inbox prefix: the default `_INBOX`, which its client may keep.
    pub inbox_prefix: String,
    /// The feed's stream.
    pub stream: String,
    /// Its consumer's filter subject.
    pub subject: String,
    /// Its durable pull consumer's name, created by the feed publisher when it
    /// projected the partner's registration: bind to it, never create it.
    pub consumer: String,
}

/// A partner's credentials.
pub fn partner_credentials(hasher: &KeyedHasher, partner_id: Uuid) -> PartnerCredentials {
    PartnerCredentials {
        user: partner_user(partner_id),
        password: partner_password(hasher, partner_id),
        account: partner_account(partner_id),
        inbox_prefix: INBOX_PREFIX.to_owned(),
        stream: FEED_STREAM.to_owned(),
        subject: feed_filter(partner_id),
        consumer: consumer_name(partner_id),
    }
}

/// Writes `content` to `path` unless it already holds exactly that: through a
/// temporary file in the same directory (mode 0600), fsynced, then renamed
/// over `path`. Returns whether the file changed.
pub fn write_if_changed(path: &Path, content: &str) -> std::io::Result<bool> {
    match std::fs::read(path) {
        Ok(existing) if existing == content.as_bytes() => return Ok(false),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "nats-users".into());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(content.as_bytes())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        // The rename itself survives a crash once the directory is synced.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(true)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The ids of the registered partners that are not suspended, in order; none
/// while the referrals read model (`referrals.partners`) does not exist yet.
/// A suspended partner gets no NATS account, so it cannot log in to stream
/// its feed; its consumer stays, and it resumes where it stopped once
/// reactivated.
pub async fn partner_ids(pool: &PgPool) -> anyhow::Result<Vec<Uuid>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('referrals.partners') IS NOT NULL")
        .fetch_one(pool)
        .await
        .context("looking for referrals.partners")?;
    if !exists {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT partner_id FROM referrals.partners WHERE NOT suspended ORDER BY partner_id")
        .fetch_all(pool)
        .await
        .context("reading referrals.partners")
}

/// Reads a password file: its text, trimmed; refused when empty or when it
/// holds characters a password should not (control characters).
fn read_password(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let password = text.trim();
    anyhow::ensure!(!password.is_empty(), "{} is empty", path.display());
    anyhow::ensure!(!password.chars().any(char::is_control), "{} holds control characters", path.display());
    Ok(password.to_owned())
}

/// `acasa nats-users`: writes the `accounts` block ([`render_accounts`]) from
/// the registered partners into `out` when its content changed, and prints
/// `changed` or `unchanged` (then the file and the number of partners) for
/// the scripts.
pub async fn run_nats_users(config: &Config, out: &Path, service_password_file: Option<&Path>) -> anyhow::Result<()> {
    let password_file = service_password_file
        .map(Path::to_path_buf)
        .unwrap_or_else(|| config.state_dir.join("secrets/nats-service.password"));
    let service_password = read_password(&password_file)?;
    let hasher = KeyedHasher::new(Config::read_secret(&config.hash_key_file)?);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&config.database_url)
        .await
        .context("connecting to Postgres (ACASA_DATABASE_URL)")?;
    let ids = partner_ids(&pool).await?;
    pool.close().await;
    let partners: Vec<(Uuid, String)> = ids.iter().map(|id| (*id, partner_password(&hasher, *id))).collect();
    let text = render_accounts(SERVICE_USER, &service_password, &partners, &PartnerLimits::from_config(config));
    let changed = write_if_changed(out, &text).with_context(|| format!("writing {}", out.display()))?;
    println!("{} {} ({} partner(s))", if changed { "changed" } else { "unchanged" }, out.display(), partners.len());
    Ok(())
}

/// `acasa partner-credentials <id>`: prints the partner's credentials as JSON.
pub fn print_partner_credentials(config: &Config, partner_id: Uuid) -> anyhow::Result<()> {
    let hasher = KeyedHasher::new(Config::read_secret(&config.hash_key_file)?);
    println!("{}", serde_json::to_string(&partner_credentials(&hasher, partner_id))?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0193a1b2-0000-7000-8000-00000000000a";

    fn a() -> Uuid {
        A.parse().unwrap()
    }

    /// Whether the NATS subject pattern `pattern` covers `subject` (token-wise).
    fn matches(pattern: &str, subject: &str) -> bool {
        let (p, s): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), subject.split('.').collect());
        for (i, t) in p.iter().enumerate() {
            match (*t, s.get(i)) {
                (">", Some(_)) => return true,
                ("*", Some(_)) => {}
                (t, Some(x)) if t == *x => {}
                _ => return false,
            }
        }
        p.len() == s.len()
    }

    #[test]
    fn the_subject_matcher_of_these_tests_works() {
        assert!(matches("$JS.API.CONSUMER.CREATE.*.*", "$JS.API.CONSUMER.CREATE.S.C"));
        assert!(!matches("$JS.API.CONSUMER.CREATE.*.*", "$JS.API.CONSUMER.CREATE.S.C.acasa.partner.x.>"));
        assert!(matches("a.>", "a.b.c"));
        assert!(!matches("a.>", "a"));
        assert!(!matches("_INBOX.>", "_INBOX_x.y"));
        assert!(matches("$JS.API.CONSUMER.CREATE.>", "$JS.API.CONSUMER.CREATE.S"));
        assert!(!matches("$JS.API.CONSUMER.CREATE.>", "$JS.API.CONSUMER.CREATE"));
    }

    /// Whether `p` lets its user publish to `subject`: an allow covers it, no deny does.
    fn may_publish(p: &Permissions, subject: &str) -> bool {
        p.publish_allow.iter().any(|a| matches(a, subject)) && !p.publish_deny.iter().any(|d| matches(d, subject))
    }

    #[test]
    fn names_derive_from_the_partner_id() {
        assert_eq!(partner_user(a()), format!("partner-{A}"));
        assert_eq!(partner_account(a()), "P_0193a1b200007000800000000000000a");
        assert_eq!(consumer_name(a()), A);
        assert_eq!(feed_filter(a()), format!("acasa.partner.{A}.>"));
        // The names of the consumer the feed publisher creates.
        assert_eq!(FEED_STREAM, crate::FEED_STREAM);
        assert_eq!(feed_filter(a()), crate::feed::partner_filter(a()));
    }

    #[test]
    fn passwords_are_deterministic_per_key_and_partner() {
        let h = KeyedHasher::new(vec![7u8; 32]);
        let b: Uuid = "0193a1b2-0000-7000-8000-00000000000b".parse().unwrap();
        let p = partner_password(&h, a());
        assert_eq!(p.len(), 64);
        assert_eq!(p, partner_password(&KeyedHasher::new(vec![7u8; 32]), a()));
        assert_ne!(p, partner_password(&h, b));
        assert_ne!(p, partner_password(&KeyedHasher::new(vec![8u8; 32]), a()));
        // Not the hash other domains use for the same value.
        assert_ne!(p, h.hash("idnp", A));
    }

    #[test]
    fn a_partner_imports_exactly_its_consumers_api_and_acks() {
        let s = "ACASA_PARTNER_FEED";
        let imports = partner_imports(a());
        let remote: Vec<&str> = imports.iter().map(|i| i.subject.as_str()).collect();
        assert_eq!(
            remote,
            [
                format!("$JS.API.CONSUMER.MSG.NEXT.{s}.{A}"),
                format!("$JS.API.CONSUMER.INFO.{s}.{A}"),
                format!("$JS.API.CONSUMER.RESET.{s}.{A}"),
                format!("$JS.ACK.{s}.{A}.>"),
            ]
        );
        let responses: Vec<Response> = imports.iter().map(|i| i.response).collect();
        assert_eq!(responses, [Response::Stream, Response::Singleton, Response::Singleton, Response::Singleton]);
        // Clients send the services' own API subjects; the account maps the
        // three API requests onto their imports under ACASA.API, away from the
        // server's `$JS.API.>` "not enabled" import. Acks keep their subject.
        for i in &imports[..3] {
            assert_eq!(i.client_subject(), i.subject);
            assert_eq!(i.local_subject(), i.subject.replacen("$JS.API.", "ACASA.API.", 1));
            assert!(!matches("$JS.API.>", i.local_subject()), "{i:?}");
        }
        assert_eq!(imports[3].local_subject(), imports[3].subject);
        assert_eq!(imports[3].client_subject(), imports[3].subject);
        // Every subject names this partner's consumer, no other.
        for i in &imports {
            for x in [&i.subject[..], i.local_subject(), i.client_subject()] {
                assert!(x.contains(&format!(".{s}.{A}")), "{x}");
                assert!(!x.contains('*') && x.matches('>').count() <= 1, "{x}");
            }
        }
    }

    #[test]
    fn the_template_allows_only_fetching_acking_and_resetting_the_own_consumer() {
        let p = partner_permissions(a());
        let b = "0193a1b2-0000-7000-8000-00000000000b";
        let s = "ACASA_PARTNER_FEED";
        assert_eq!(
            p.publish_allow,
            vec![
                format!("$JS.API.CONSUMER.MSG.NEXT.{s}.{A}"),
                format!("ACASA.API.CONSUMER.MSG.NEXT.{s}.{A}"),
                format!("$JS.API.CONSUMER.INFO.{s}.{A}"),
                format!("ACASA.API.CONSUMER.INFO.{s}.{A}"),
                format!("$JS.API.CONSUMER.RESET.{s}.{A}"),
                format!("ACASA.API.CONSUMER.RESET.{s}.{A}"),
                format!("$JS.ACK.{s}.{A}.>"),
            ]
        );
        assert_eq!(p.subscribe_allow, vec!["_INBOX.>".to_owned()]);
        // Every allowed subject names this partner; no allowed subject is denied
        // (a deny pattern matching it would win over the allow).
        for x in &p.publish_allow {
            assert!(x.contains(A), "{x}");
            for d in &p.publish_deny {
                assert!(!matches(d, x), "{d} denies the allowed {x}");
            }
        }
        for x in &p.subscribe_allow {
            for d in &p.subscribe_deny {
                assert!(!matches(d, x), "{d} denies the allowed {x}");
            }
        }
        for x in [
            format!("$JS.API.CONSUMER.MSG.NEXT.{s}.{A}"),
            format!("ACASA.API.CONSUMER.MSG.NEXT.{s}.{A}"),
            format!("$JS.API.CONSUMER.INFO.{s}.{A}"),
            format!("$JS.API.CONSUMER.RESET.{s}.{A}"),
            format!("$JS.ACK.{s}.{A}.1.7.3.1795840284456839637.0"),
        ] {
            assert!(may_publish(&p, &x), "{x}");
        }
        // No consumer create (any form, its own name and filter included) or
        // delete, nothing on B's consumer, nothing else of the API.
        for x in [
            format!("$JS.API.CONSUMER.CREATE.{s}"),
            format!("$JS.API.CONSUMER.CREATE.{s}.{A}"),
            format!("$JS.API.CONSUMER.CREATE.{s}.{A}.acasa.partner.{A}.>"),
            format!("$JS.API.CONSUMER.DURABLE.CREATE.{s}.{A}"),
            format!("$JS.API.CONSUMER.DELETE.{s}.{A}"),
            format!("$JS.API.CONSUMER.PAUSE.{s}.{A}"),
            format!("$JS.API.CONSUMER.MSG.NEXT.{s}.{b}"),
            format!("ACASA.API.CONSUMER.MSG.NEXT.{s}.{b}"),
            format!("$JS.API.CONSUMER.RESET.{s}.{b}"),
            format!("$JS.ACK.{s}.{b}.1.7.3.1795840284456839637.0"),
            format!("$JS.API.DIRECT.GET.{s}"),
            format!("$JS.API.STREAM.INFO.{s}"),
            format!("acasa.partner.{A}.referral.r"),
            "acasa.registry.person.x".to_owned(),
        ] {
            assert!(!may_publish(&p, &x), "{x}");
        }
        // Denied explicitly, whatever an allow list adds.
        for d in [
            "$JS.API.CONSUMER.CREATE.>",
            "$JS.API.CONSUMER.DURABLE.CREATE.>",
            "$JS.API.CONSUMER.DELETE.>",
            "$JS.API.DIRECT.GET.>",
            "$JS.API.STREAM.>",
            "acasa.>",
            "_INBOX.>",
        ] {
            assert!(p.publish_deny.iter().any(|x| x == d), "{d}");
        }
    }

    #[test]
    fn the_accounts_block_has_the_service_account_and_one_account_per_partner() {
        let b: Uuid = "0193a1b2-0000-7000-8000-00000000000b".parse().unwrap();
        let s = "ACASA_PARTNER_FEED";
        let partners = [(a(), "pa".to_owned()), (b, "pb".to_owned())];
        let limits = PartnerLimits { max_connections: 3, max_subscriptions: 7, max_payload: 2048 };
        let text = render_accounts("acasa", "svc-pw", &partners, &limits);
        assert_eq!(text, render_accounts("acasa", "svc-pw", &partners, &limits));
        assert!(text.contains("# 2 partner(s)."));
        assert!(!text.contains("authorization"), "{text}");
        // The services' account: JetStream, the service user, exports to each partner's account only.
        let (services, rest) = text.split_once(&format!("  \"{}\": {{", partner_account(a()))).unwrap();
        assert!(services.contains("accounts {\n  \"ACASA\": {\n    jetstream: enabled\n"), "{text}");
        assert!(services.contains("{ user: \"acasa\", password: \"svc-pw\" }"), "{text}");
        for (id, account) in [(a(), partner_account(a())), (b, partner_account(b))] {
            for (line, response) in [
                (format!("$JS.API.CONSUMER.MSG.NEXT.{s}.{id}"), ", response_type: stream"),
                (format!("$JS.API.CONSUMER.INFO.{s}.{id}"), ""),
                (format!("$JS.API.CONSUMER.RESET.{s}.{id}"), ""),
                (format!("$JS.ACK.{s}.{id}.>"), ""),
            ] {
                let export = format!("{{ service: \"{line}\"{response}, accounts: [\"{account}\"] }}");
                assert_eq!(services.matches(&export).count(), 1, "{export}\n{text}");
            }
        }
        assert_eq!(services.matches("{ service: ").count(), 8, "{text}");
        // A's account: no JetStream, its user, its mappings and imports, nothing of B's.
        let (a_account, b_account) = rest.split_once(&format!("  \"{}\": {{", partner_account(b))).unwrap();
        assert!(
            a_account.starts_with(
                "\n    jetstream: disabled\n    limits: { max_connections: 3, max_subscriptions: 7, max_payload: 2048 }\n"
            ),
            "{a_account}"
        );
        // Every partner account is limited; the services' account is not.
        assert_eq!(text.matches("    limits: { max_connections: 3,").count(), 2, "{text}");
        assert!(!services.contains("limits"), "{services}");
        assert!(a_account.contains(&format!("user: \"partner-{A}\"\n        password: \"pa\"")), "{text}");
        assert!(!a_account.contains(&b.to_string()) && !a_account.contains("svc-pw"), "{a_account}");
        assert!(
            a_account.contains(&format!("\"$JS.API.CONSUMER.INFO.{s}.{A}\": \"ACASA.API.CONSUMER.INFO.{s}.{A}\"\n")),
            "{a_account}"
        );
        assert!(
            a_account.contains(&format!(
                "{{ service: {{ account: \"ACASA\", subject: \"$JS.API.CONSUMER.MSG.NEXT.{s}.{A}\" }}, \
                 to: \"ACASA.API.CONSUMER.MSG.NEXT.{s}.{A}\" }}"
            )),
            "{a_account}"
        );
        assert!(
            a_account.contains(&format!("{{ service: {{ account: \"ACASA\", subject: \"$JS.ACK.{s}.{A}.>\" }} }}")),
            "{a_account}"
        );
        assert_eq!(a_account.matches("{ service: { account: ").count(), 4);
        assert_eq!(a_account.matches(": \"ACASA.API.").count(), 6, "3 mappings, 3 imports: {a_account}");
        assert!(b_account.contains(&format!("user: \"partner-{b}\"")) && !b_account.contains(A), "{b_account}");
        // Balanced braces and brackets.
        assert_eq!(text.matches('{').count(), text.matches('}').count());
        assert_eq!(text.matches('[').count(), text.matches(']').count());
        // No partner: the services' account alone, with no exports.
        let none = render_accounts("acasa", "svc-pw", &[], &limits);
        assert!(none.contains("# 0 partner(s).") && !none.contains("partner-") && !none.contains("P_"), "{none}");
        assert!(none.contains("    exports: [\n    ]\n"), "{none}");
    }

    #[test]
    fn partner_limits_come_from_the_configuration() {
        let defaults = Config::from_lookup(|_| None).unwrap();
        assert_eq!(PartnerLimits::from_config(&defaults), PartnerLimits::default());
        assert_eq!(
            PartnerLimits::default(),
            PartnerLimits { max_connections: 5, max_subscriptions: 10, max_payload: 4096 }
        );
        let set = Config::from_lookup(|k| match k {
            "ACASA_NATS_PARTNER_MAX_CONNECTIONS" => Some("2".into()),
            "ACASA_NATS_PARTNER_MAX_SUBSCRIPTIONS" => Some("3".into()),
            "ACASA_NATS_PARTNER_MAX_PAYLOAD" => Some("1024".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            PartnerLimits::from_config(&set),
            PartnerLimits { max_connections: 2, max_subscriptions: 3, max_payload: 1024 }
        );
    }

    #[test]
    fn quoting_escapes_what_would_end_the_string() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quoted("$JS.API.>"), "\"$JS.API.>\"");
    }

    #[test]
    fn credentials_name_the_feed() {
        let h = KeyedHasher::new(vec![1u8; 32]);
        let c = partner_credentials(&h, a());
        let json: serde_json::Value = serde_json::to_value(&c).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "user": format!("partner-{A}"),
                "password": partner_password(&h, a()),
                "account": partner_account(a()),
                "inbox_prefix": "_INBOX",
                "stream": "ACASA_PARTNER_FEED",
                "subject": format!("acasa.partner.{A}.>"),
                "consumer": A,
            })
        );
    }

    #[test]
    fn the_users_file_is_written_only_when_it_changes() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nats-users.conf");
        assert!(write_if_changed(&path, "one").unwrap());
        assert!(!write_if_changed(&path, "one").unwrap());
        assert!(write_if_changed(&path, "two").unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
