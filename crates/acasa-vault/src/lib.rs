//! Per-subject data keys for crypto-shredding.
//!
//! # Design
//!
//! Every data subject (a person, identified by a random UUID) gets its own 256-bit **data key**
//! ([`DataKey`]). Personal data about the subject is sealed with that key (AES-256-GCM, random
//! 96-bit nonce) before it goes into the event log or anywhere else. Erasing the subject means
//! destroying the key: the ciphertexts stay in place, intact and auditable, but nobody can read
//! them any more.
//!
//! Data keys are never stored in the clear. Each row of the key table holds the data key **wrapped**
//! (sealed) by the [`MasterKey`], which is configuration (an environment secret), never data. The
//! wrap uses as additional authenticated data (AAD) the table name, a `0x00` separator and the 16
//! bytes of the subject's UUID, so a wrapped key copied to another subject's row or into another
//! table fails to open (an error, never a wrong key silently accepted).
//!
//! The key table lives in Postgres, separate from the log (see [`create_table_sql`] for its DDL):
//!
//! ```sql
//! CREATE TABLE <table> (
//!     subject_id uuid PRIMARY KEY,
//!     wrapped bytea,                           -- nonce || AES-256-GCM(master, data key) || tag;
//!                                              -- NULL: destroyed (a tombstone)
//!     master_key_id smallint NOT NULL DEFAULT 1, -- for a future master-key rotation; always 1 now
//!     created_at timestamptz NOT NULL DEFAULT now()
//! ) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1)
//! ```
//!
//! # What "forgets" means, and its limits
//!
//! [`Vault::destroy`] overwrites the subject's row with a **tombstone** (`wrapped` NULL) and then
//! runs `VACUUM` on the table, so the dead tuple holding the wrapped key is reclaimed and its space
//! is made reusable at once, rather than lingering until some later vacuum. [`Vault::destroy_on`]
//! only writes the tombstone (it runs inside a caller's transaction, where `VACUUM` is not
//! allowed); the table's autovacuum settings (threshold 1, scale factor 0) make autovacuum
//! reclaim the dead tuple soon after. The tombstone keeps the subject's id only: no key is ever
//! made for that subject again ([`VaultError::Erased`]), so a command racing an erasure cannot
//! seal new personal data under a key that outlives it.
//!
//! This is "forgetting" as far as the live database goes, with limits operators must own:
//!
//! * `VACUUM` marks the space free; the bytes are physically overwritten only when the page is
//!   reused. Until then they may survive in the data file and in the OS page cache.
//! * The Postgres **write-ahead log** holds the row (as inserted) until the WAL segment is
//!   recycled; WAL archives and replicas' WAL hold it for as long as they are kept.
//! * **Backups** (base backups, dumps, snapshots) taken while the key existed keep it until they
//!   expire. Operators must bound backup and WAL-archive retention; that bound is the real erasure
//!   deadline.
//!
//! Even in those copies the data key is only readable together with the master key, which never
//! goes into the database; destroying or rotating the master key is the last resort.
//!
//! [`Vault::key_for_new`] refuses a subject whose key was destroyed, even one whose erasure this
//! service learned of before it ever made a key ([`Vault::destroy_on`] writes the tombstone
//! either way).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore as _;
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Row as _};
use uuid::Uuid;
use zeroize::{Zeroize as _, Zeroizing};

/// Length in bytes of a master key and of a data key (AES-256).
pub const KEY_LEN: usize = 32;
/// Length in bytes of the random AES-GCM nonce that prefixes every sealed value.
pub const NONCE_LEN: usize = 12;
/// Length in bytes of the AES-GCM authentication tag that ends every sealed value.
pub const TAG_LEN: usize = 16;
/// The id of the only master key so far (stored in `master_key_id`, for a future rotation).
pub const MASTER_KEY_ID: i16 = 1;

/// Longest identifier Postgres keeps without truncating it.
const MAX_IDENT_LEN: usize = 63;

/// Errors of the vault.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// A key had the wrong length or a stored key could not be used (e.g. unknown master key id).
    #[error("bad key: {0}")]
    BadKey(String),
    /// Sealing failed, or opening failed: tampered or truncated input, wrong key or wrong AAD.
    #[error("encryption or authentication failed")]
    Crypto,
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The table name is not a schema-qualified lower-case identifier.
    #[error("bad table name {0:?}: expected schema.table, each [a-z_][a-z0-9_]* (at most 63 bytes)")]
    BadTable(String),
    /// The subject's key was destroyed: it was erased, and gets no key again.
    #[error("the subject {0} was erased")]
    Erased(Uuid),
}

/// What the vault holds for a subject ([`Vault::key_states`]).
#[derive(Debug)]
pub enum KeyState {
    /// Its key.
    Live(DataKey),
    /// Its key was destroyed (a tombstone): it was erased.
    Erased,
    /// It never had a key here.
    Absent,
}

/// The master key that wraps the data keys: 32 bytes, zeroized on drop, never printed.
pub struct MasterKey([u8; KEY_LEN]);

impl MasterKey {
    /// A master key from exactly 32 bytes; any other length is [`VaultError::BadKey`].
    pub fn from_bytes(b: &[u8]) -> Result<Self, VaultError> {
        let bytes: [u8; KEY_LEN] = b
            .try_into()
            .map_err(|_| VaultError::BadKey(format!("a master key is {KEY_LEN} bytes, got {}", b.len())))?;
        Ok(Self(bytes))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A subject's data key: a 32-byte AES-256-GCM key, zeroized on drop, never printed.
#[derive(Clone)]
pub struct DataKey([u8; KEY_LEN]);

impl DataKey {
    /// A fresh random key (from the thread-local CSPRNG, seeded by the OS).
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// AES-256-GCM with a random 96-bit nonce; returns nonce || ciphertext+tag.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        seal(&self.0, aad, plaintext)
    }

    /// Opens what [`DataKey::seal`] returned; [`VaultError::Crypto`] on tampered or short input,
    /// a wrong key or a wrong AAD.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        open(&self.0, aad, sealed)
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl Drop for DataKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

fn seal(key: &[u8; KEY_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let ciphertext =
        cipher.encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad }).map_err(|_| VaultError::Crypto)?;
    let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

fn open(key: &[u8; KEY_LEN], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(VaultError::Crypto);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| VaultError::Crypto)?;
    let cipher = Aes256Gcm::new(key.into());
    cipher.decrypt(&Nonce::from(nonce), Payload { msg: ciphertext, aad }).map_err(|_| VaultError::Crypto)
}

/// Checks that `table` is `schema.table`, each part `[a-z_][a-z0-9_]*` and at most 63 bytes.
fn validate_table(table: &str) -> Result<(), VaultError> {
    fn ident(s: &str) -> bool {
        let mut chars = s.chars();
        s.len() <= MAX_IDENT_LEN
            && chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }
    match table.split_once('.') {
        Some((schema, name)) if ident(schema) && ident(name) => Ok(()),
        _ => Err(VaultError::BadTable(table.to_owned())),
    }
}

/// The AAD of a wrapped key: table name bytes || 0x00 || subject uuid bytes.
fn wrap_aad(table: &str, subject: Uuid) -> Vec<u8> {
    let mut aad = Vec::with_capacity(table.len() + 1 + 16);
    aad.extend_from_slice(table.as_bytes());
    aad.push(0);
    aad.extend_from_slice(subject.as_bytes());
    aad
}

/// The DDL of a key table named `table` (validated as in [`Vault::new`]).
///
/// ```sql
/// CREATE TABLE <table> (subject_id uuid PRIMARY KEY, wrapped bytea,
///     master_key_id smallint NOT NULL DEFAULT 1, created_at timestamptz NOT NULL DEFAULT now())
///     WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1)
/// ```
///
/// The autovacuum settings make autovacuum reclaim a single deleted row (a key destroyed by
/// [`Vault::destroy_on`], which cannot `VACUUM` itself). The schema must exist already.
pub fn create_table_sql(table: &str) -> Result<String, VaultError> {
    validate_table(table)?;
    Ok(format!(
        "CREATE TABLE {table} (subject_id uuid PRIMARY KEY, wrapped bytea, \
         master_key_id smallint NOT NULL DEFAULT {MASTER_KEY_ID}, created_at timestamptz NOT NULL DEFAULT now()) \
         WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1)"
    ))
}

/// The store of data keys: a Postgres table of wrapped keys and the master key that unwraps them.
#[derive(Clone)]
pub struct Vault {
    pool: PgPool,
    master: Arc<MasterKey>,
    table: String,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault").field("table", &self.table).field("master", &self.master).finish_non_exhaustive()
    }
}

impl Vault {
    /// `table` is a schema-qualified table name like "registry_vault.data_keys", validated to be
    /// `[a-z_][a-z0-9_]*.[a-z_][a-z0-9_]*` (each part at most 63 bytes); [`VaultError::BadTable`]
    /// otherwise. The table is not created here; see [`create_table_sql`].
    pub fn new(pool: PgPool, master: MasterKey, table: &str) -> Result<Self, VaultError> {
        validate_table(table)?;
        Ok(Self { pool, master: Arc::new(master), table: table.to_owned() })
    }

    fn wrap(&self, subject: Uuid, key: &DataKey) -> Result<Vec<u8>, VaultError> {
        seal(&self.master.0, &wrap_aad(&self.table, subject), &key.0)
    }

    fn unwrap_key(&self, subject: Uuid, wrapped: &[u8], master_key_id: i16) -> Result<DataKey, VaultError> {
        if master_key_id != MASTER_KEY_ID {
            return Err(VaultError::BadKey(format!("unknown master key id {master_key_id}")));
        }
        let plain = Zeroizing::new(open(&self.master.0, &wrap_aad(&self.table, subject), wrapped)?);
        let bytes: [u8; KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::BadKey(format!("an unwrapped data key is {} bytes", plain.len())))?;
        Ok(DataKey(bytes))
    }

    /// The subject's key, creating it if absent (INSERT .. ON CONFLICT DO NOTHING then SELECT, so
    /// concurrent callers get the same key). A subject whose key was destroyed is
    /// [`VaultError::Erased`]: it never gets a key again.
    pub async fn key_for_new(&self, subject: Uuid) -> Result<DataKey, VaultError> {
        let key = DataKey::generate();
        let wrapped = self.wrap(subject, &key)?;
        let sql = format!(
            "INSERT INTO {} (subject_id, wrapped, master_key_id) VALUES ($1, $2, $3) \
             ON CONFLICT (subject_id) DO NOTHING RETURNING subject_id",
            self.table
        );
        let inserted = sqlx::query(AssertSqlSafe(sql))
            .bind(subject)
            .bind(wrapped)
            .bind(MASTER_KEY_ID)
            .fetch_optional(&self.pool)
            .await?;
        if inserted.is_some() {
            return Ok(key);
        }
        // Someone else's key won, or the subject was erased (a tombstone; or destroyed meanwhile).
        self.key(subject).await?.ok_or(VaultError::Erased(subject))
    }

    /// The subject's key, or None if it never existed or was destroyed.
    pub async fn key(&self, subject: Uuid) -> Result<Option<DataKey>, VaultError> {
        let sql = format!("SELECT wrapped, master_key_id FROM {} WHERE subject_id = $1", self.table);
        let row = sqlx::query(AssertSqlSafe(sql)).bind(subject).fetch_optional(&self.pool).await?;
        let Some(row) = row else { return Ok(None) };
        let Some(wrapped) = row.try_get::<Option<Vec<u8>>, _>(0)? else { return Ok(None) };
        self.unwrap_key(subject, &wrapped, row.try_get(1)?).map(Some)
    }

    /// Whether the subject's key was destroyed (it has a tombstone).
    pub async fn is_erased(&self, subject: Uuid) -> Result<bool, VaultError> {
        let sql = format!("SELECT wrapped IS NULL FROM {} WHERE subject_id = $1", self.table);
        Ok(sqlx::query_scalar(AssertSqlSafe(sql)).bind(subject).fetch_optional(&self.pool).await?.unwrap_or(false))
    }

    /// What the table holds for each of `subjects` now (one query with `= ANY($1)`): its
    /// key, a tombstone, or nothing. Every subject asked for is in the map.
    pub async fn key_states(&self, subjects: &[Uuid]) -> Result<HashMap<Uuid, KeyState>, VaultError> {
        let mut states: HashMap<Uuid, KeyState> = subjects.iter().map(|s| (*s, KeyState::Absent)).collect();
        if subjects.is_empty() {
            return Ok(states);
        }
        let sql = format!("SELECT subject_id, wrapped, master_key_id FROM {} WHERE subject_id = ANY($1)", self.table);
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(subjects).fetch_all(&self.pool).await?;
        for r in rows {
            let subject: Uuid = r.try_get(0)?;
            let state = match r.try_get::<Option<Vec<u8>>, _>(1)? {
                Some(wrapped) => KeyState::Live(self.unwrap_key(subject, &wrapped, r.try_get(2)?)?),
                None => KeyState::Erased,
            };
            states.insert(subject, state);
        }
        Ok(states)
    }

    /// Keys of many subjects on a given connection (e.g. inside a projection's transaction): one
    /// query with `= ANY($1)`. Subjects without a key are absent from the map.
    pub async fn keys_on(
        &self,
        conn: &mut PgConnection,
        subjects: &[Uuid],
    ) -> Result<HashMap<Uuid, DataKey>, VaultError> {
        if subjects.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT subject_id, wrapped, master_key_id FROM {} WHERE subject_id = ANY($1) AND wrapped IS NOT NULL",
            self.table
        );
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(subjects).fetch_all(&mut *conn).await?;
        let mut keys = HashMap::with_capacity(rows.len());
        for r in rows {
            let subject: Uuid = r.try_get(0)?;
            let wrapped: Vec<u8> = r.try_get(1)?;
            keys.insert(subject, self.unwrap_key(subject, &wrapped, r.try_get(2)?)?);
        }
        Ok(keys)
    }

    /// Destroys the key: overwrite the row with a tombstone, then run `VACUUM <table>` (outside any
    /// transaction, on a pool connection) so the dead tuple is reclaimed; returns whether a key was
    /// destroyed. A
    /// `VACUUM` failure is logged and is not an error (autovacuum reclaims the tuple later).
    pub async fn destroy(&self, subject: Uuid) -> Result<bool, VaultError> {
        let mut conn = self.pool.acquire().await?;
        let deleted = self.destroy_on(&mut conn, subject).await?;
        if deleted {
            // Simple-query protocol: one statement, no implicit transaction block around it.
            let vacuum = format!("VACUUM {}", self.table);
            if let Err(e) = sqlx::raw_sql(AssertSqlSafe(vacuum)).execute(&mut *conn).await {
                tracing::warn!(table = %self.table, %subject, error = %e, "VACUUM after destroying a data key failed");
            }
        }
        Ok(deleted)
    }

    /// Runs `VACUUM <table>` on a pool connection, e.g. after a projection's
    /// transaction destroyed keys with [`Vault::destroy_on`]. A failure is
    /// logged (autovacuum reclaims the tuples later).
    pub async fn vacuum(&self) {
        let vacuum = format!("VACUUM {}", self.table);
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(vacuum)).execute(&self.pool).await {
            tracing::warn!(table = %self.table, error = %e, "VACUUM of the data keys failed");
        }
    }

    /// The tombstone only, on a given connection (for a projection's transaction; autovacuum
    /// reclaims the dead tuple): the key is gone and the subject never gets one again, also when
    /// it had none yet. Returns whether a key was destroyed.
    pub async fn destroy_on(&self, conn: &mut PgConnection, subject: Uuid) -> Result<bool, VaultError> {
        let sql = format!("UPDATE {} SET wrapped = NULL WHERE subject_id = $1 AND wrapped IS NOT NULL", self.table);
        let done = sqlx::query(AssertSqlSafe(sql)).bind(subject).execute(&mut *conn).await?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        let sql = format!(
            "INSERT INTO {} (subject_id, wrapped) VALUES ($1, NULL) ON CONFLICT (subject_id) DO NOTHING",
            self.table
        );
        sqlx::query(AssertSqlSafe(sql)).bind(subject).execute(&mut *conn).await?;
        Ok(false)
    }
}

/// Unwrapped data keys kept in memory for a while, so a hot subject's
/// commands do not read and unwrap its key each time (least recently used
/// first out, each entry for at most `ttl`).
///
/// Erasure must [`forget`](KeyCache::forget) the key at once in the erasing
/// process; another replica may hold it up to `ttl`, unable to write with it
/// (its append conflicts with the erasure and the retry sees the subject
/// erased). Clones share the cache.
#[derive(Clone)]
pub struct KeyCache {
    keys: Arc<std::sync::Mutex<lru::LruCache<Uuid, (DataKey, std::time::Instant)>>>,
    ttl: std::time::Duration,
}

impl fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyCache").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl KeyCache {
    /// A cache of at most `capacity` keys, each kept for at most `ttl`.
    pub fn new(capacity: usize, ttl: std::time::Duration) -> Self {
        let capacity = std::num::NonZeroUsize::new(capacity).unwrap_or(std::num::NonZeroUsize::MIN);
        Self { keys: Arc::new(std::sync::Mutex::new(lru::LruCache::new(capacity))), ttl }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<Uuid, (DataKey, std::time::Instant)>> {
        self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The subject's key, if cached and fresh.
    pub fn get(&self, subject: Uuid) -> Option<DataKey> {
        let mut keys = self.lock();
        match keys.get(&subject) {
            Some((key, at)) if at.elapsed() < self.ttl => Some(key.clone()),
            Some(_) => {
                keys.pop(&subject);
                None
            }
            None => None,
        }
    }

    /// Caches the subject's key from now.
    pub fn put(&self, subject: Uuid, key: DataKey) {
        self.lock().put(subject, (key, std::time::Instant::now()));
    }

    /// Drops the subject's key (e.g. on erasure).
    pub fn forget(&self, subject: Uuid) {
        self.lock().pop(&subject);
    }
}

/// The data keys of one service's subjects: its vault behind a short-lived
/// cache. Every service that seals personal data gets, creates and destroys
/// keys through this one type, so crypto-shredding goes one way everywhere.
#[derive(Clone, Debug)]
pub struct Keys {
    vault: Vault,
    cache: KeyCache,
}

impl Keys {
    /// How long an unwrapped key stays in memory: a replica other than the
    /// erasing one may hold an erased subject's key this long.
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(30);

    /// The keys of `vault`, cached for [`Keys::TTL`].
    pub fn new(vault: Vault) -> Self {
        Self::with_ttl(vault, Self::TTL)
    }

    /// The keys of `vault`, each cached for `ttl` (zero: never cached).
    pub fn with_ttl(vault: Vault, ttl: std::time::Duration) -> Self {
        Self { vault, cache: KeyCache::new(10_000, ttl) }
    }

    /// The subject's key, if it has one (none: it never had personal data
    /// sealed, or it was erased).
    pub async fn get(&self, subject: Uuid) -> Result<Option<DataKey>, VaultError> {
        if let Some(key) = self.cache.get(subject) {
            return Ok(Some(key));
        }
        let key = self.vault.key(subject).await?;
        if let Some(key) = &key {
            self.cache.put(subject, key.clone());
        }
        Ok(key)
    }

    /// What the vault holds for each of `subjects` ([`Vault::key_states`]),
    /// always read from the vault, never the cache: for opening data on
    /// another's behalf, where a key erased a moment ago by another replica
    /// must not serve any more. One query for them all.
    pub async fn current_states(&self, subjects: &[Uuid]) -> Result<HashMap<Uuid, KeyState>, VaultError> {
        self.vault.key_states(subjects).await
    }

    /// A key for a subject about to get personal data sealed (see
    /// [`Vault::key_for_new`]).
    /// Always asks the vault, so a subject erased by another replica (whose
    /// key this one may still cache) is refused with [`VaultError::Erased`]:
    /// one read when the key is cached (it exists, or was destroyed), else
    /// the insert of a new one (a new subject: one round trip).
    pub async fn create(&self, subject: Uuid) -> Result<DataKey, VaultError> {
        let key = if self.cache.get(subject).is_some() {
            self.vault.key(subject).await?.ok_or(VaultError::Erased(subject))?
        } else {
            self.vault.key_for_new(subject).await?
        };
        self.cache.put(subject, key.clone());
        Ok(key)
    }

    /// Shreds the subject: drops the cached key, deletes and vacuums the
    /// stored one ([`Vault::destroy`]). Returns whether a stored key was deleted.
    pub async fn destroy(&self, subject: Uuid) -> Result<bool, VaultError> {
        self.cache.forget(subject);
        let deleted = self.vault.destroy(subject).await?;
        // A read racing the deletion may have cached it again.
        self.cache.forget(subject);
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_cache_keeps_keys_for_their_ttl_and_forgets_on_demand() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let cache = KeyCache::new(10, std::time::Duration::from_secs(60));
        assert!(cache.get(a).is_none());
        cache.put(a, DataKey::generate());
        cache.put(b, DataKey::generate());
        assert!(cache.get(a).is_some());
        cache.forget(a);
        assert!(cache.get(a).is_none());
        assert!(cache.get(b).is_some());
        let expired = KeyCache::new(10, std::time::Duration::ZERO);
        expired.put(a, DataKey::generate());
        assert!(expired.get(a).is_none());
    }

    #[test]
    fn seal_open_round_trip() {
        let key = DataKey::generate();
        let sealed = key.seal(b"aad", b"Ion Popescu").unwrap();
        assert_eq!(sealed.len(), NONCE_LEN + 11 + TAG_LEN);
        assert_eq!(key.open(b"aad", &sealed).unwrap(), b"Ion Popescu");
        // Random nonces: the same plaintext seals differently.
        assert_ne!(key.seal(b"aad", b"Ion Popescu").unwrap(), sealed);
        // Empty plaintext is fine too.
        let empty = key.seal(b"", b"").unwrap();
        assert_eq!(key.open(b"", &empty).unwrap(), b"");
        // A clone is the same key.
        assert_eq!(key.clone().open(b"aad", &sealed).unwrap(), b"Ion Popescu");
    }

    #[test]
    fn tamper_is_detected() {
        let key = DataKey::generate();
        let sealed = key.seal(b"aad", b"secret").unwrap();
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert!(matches!(key.open(b"aad", &t), Err(VaultError::Crypto)), "byte {i}");
        }
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(matches!(key.open(b"aad", &longer), Err(VaultError::Crypto)));
    }

    #[test]
    fn wrong_aad_fails() {
        let key = DataKey::generate();
        let sealed = key.seal(b"person:1", b"secret").unwrap();
        assert!(matches!(key.open(b"person:2", &sealed), Err(VaultError::Crypto)));
        assert!(matches!(key.open(b"", &sealed), Err(VaultError::Crypto)));
    }

    #[test]
    fn wrong_key_fails() {
        let sealed = DataKey::generate().seal(b"aad", b"secret").unwrap();
        assert!(matches!(DataKey::generate().open(b"aad", &sealed), Err(VaultError::Crypto)));
    }

    #[test]
    fn short_input_fails() {
        let key = DataKey::generate();
        for n in [0, 1, NONCE_LEN, NONCE_LEN + TAG_LEN - 1] {
            assert!(matches!(key.open(b"aad", &vec![0u8; n]), Err(VaultError::Crypto)), "len {n}");
        }
    }

    #[test]
    fn master_key_length_is_checked() {
        assert!(MasterKey::from_bytes(&[7u8; 32]).is_ok());
        for n in [0, 16, 31, 33, 64] {
            assert!(matches!(MasterKey::from_bytes(&vec![7u8; n]), Err(VaultError::BadKey(_))), "len {n}");
        }
    }

    #[test]
    fn keys_are_not_printed() {
        let master = MasterKey::from_bytes(&[0xab; 32]).unwrap();
        assert_eq!(format!("{master:?}"), "<secret>");
        let key = DataKey::generate();
        assert_eq!(format!("{key:?}"), "<secret>");
    }

    #[test]
    fn table_names_are_validated() {
        for ok in ["registry_vault.data_keys", "_s._t", "a.b", "s1.t_2", "public.keys9"] {
            assert!(validate_table(ok).is_ok(), "{ok}");
            assert!(create_table_sql(ok).unwrap().starts_with(&format!("CREATE TABLE {ok} (")));
        }
        let long = format!("s.{}", "t".repeat(64));
        for bad in [
            "",
            "data_keys",
            ".t",
            "s.",
            "a.b.c",
            "S.t",
            "s.T",
            "1s.t",
            "s.1t",
            "s.t-x",
            "s.t;drop table x",
            "s. t",
            "\"s\".t",
            "s.tä",
            long.as_str(),
        ] {
            assert!(matches!(validate_table(bad), Err(VaultError::BadTable(_))), "{bad:?}");
            assert!(matches!(create_table_sql(bad), Err(VaultError::BadTable(_))), "{bad:?}");
        }
    }

    #[test]
    fn wrap_aad_binds_table_and_subject() {
        let master = MasterKey::from_bytes(&[0x11; 32]).unwrap();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let aad = wrap_aad("s.t", a);
        assert_eq!(&aad[..4], b"s.t\0");
        assert_eq!(&aad[4..], a.as_bytes());
        let data_key = DataKey::generate();
        let wrapped = seal(&master.0, &aad, &data_key.0).unwrap();
        assert_eq!(wrapped.len(), NONCE_LEN + KEY_LEN + TAG_LEN);
        assert_eq!(open(&master.0, &wrap_aad("s.t", a), &wrapped).unwrap(), data_key.0);
        assert!(matches!(open(&master.0, &wrap_aad("s.t", b), &wrapped), Err(VaultError::Crypto)));
        assert!(matches!(open(&master.0, &wrap_aad("s.u", a), &wrapped), Err(VaultError::Crypto)));
        let other = MasterKey::from_bytes(&[0x22; 32]).unwrap();
        assert!(matches!(open(&other.0, &wrap_aad("s.t", a), &wrapped), Err(VaultError::Crypto)));
    }
}
