//! The vault against a real, throwaway Postgres 15.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly")]

use std::collections::HashSet;
use std::time::Duration;

use acasa_testkit::PostgresServer;
use acasa_vault::{DataKey, KeyState, Keys, MasterKey, Vault, VaultError, create_table_sql};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};
use uuid::Uuid;

const TABLE: &str = "registry_vault.data_keys";

fn master() -> MasterKey {
    MasterKey::from_bytes(&[0x5a; 32]).unwrap()
}

/// Whether `b` opens what `a` sealed, i.e. whether they are the same key.
fn same_key(a: &DataKey, b: &DataKey) -> bool {
    let sealed = a.seal(b"probe", b"same?").unwrap();
    b.open(b"probe", &sealed).is_ok_and(|p| p == b"same?")
}

async fn wrapped_of(pool: &PgPool, table: &str, subject: Uuid) -> Option<Vec<u8>> {
    sqlx::query_scalar::<_, Option<Vec<u8>>>(AssertSqlSafe(format!(
        "SELECT wrapped FROM {table} WHERE subject_id = $1"
    )))
    .bind(subject)
    .fetch_optional(pool)
    .await
    .unwrap()
    .flatten()
}

/// Whether a tuple (live or dead) of the table still carries `needle`.
async fn tuple_contains(pool: &PgPool, table: &str, needle: &[u8]) -> bool {
    sqlx::query_scalar::<_, bool>(AssertSqlSafe(format!(
        "SELECT coalesce(bool_or(position($1 in i.t_data) > 0), false) \
         FROM generate_series(0, pg_relation_size('{table}') / current_setting('block_size')::bigint - 1) AS b, \
              heap_page_items(get_raw_page('{table}', 'main', b::int)) AS i"
    )))
    .bind(needle)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Dead tuples counted by scanning the heap (`pgstattuple`), exact and without statistics lag.
async fn dead_tuples_in_heap(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(format!("SELECT dead_tuple_count FROM pgstattuple('{table}')")))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Manual VACUUMs of the table so far, per the statistics.
async fn vacuum_count(pool: &PgPool, table: &str) -> i64 {
    let (schema, name) = table.split_once('.').unwrap();
    sqlx::query_scalar("SELECT vacuum_count FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = $2")
        .bind(schema)
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_against_postgres() {
    let pg = PostgresServer::start().await.unwrap();
    let url = pg.create_database().await.unwrap();
    let pool = PgPoolOptions::new().max_connections(10).connect(&url).await.unwrap();
    sqlx::raw_sql(
        "CREATE SCHEMA registry_vault; CREATE SCHEMA other; CREATE EXTENSION pageinspect; CREATE EXTENSION pgstattuple",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::raw_sql(AssertSqlSafe(create_table_sql(TABLE).unwrap())).execute(&pool).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(create_table_sql("other.data_keys").unwrap())).execute(&pool).await.unwrap();

    assert!(matches!(Vault::new(pool.clone(), master(), "data_keys"), Err(VaultError::BadTable(_))));
    let vault = Vault::new(pool.clone(), master(), TABLE).unwrap();

    // key_for_new is idempotent, and key() finds the same key.
    let a = Uuid::now_v7();
    let k1 = vault.key_for_new(a).await.unwrap();
    let k2 = vault.key_for_new(a).await.unwrap();
    assert!(same_key(&k1, &k2));
    assert!(same_key(&k1, &vault.key(a).await.unwrap().unwrap()));
    assert!(vault.key(Uuid::now_v7()).await.unwrap().is_none());
    let row: (i16, bool) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT master_key_id, length(wrapped) = 60 FROM {TABLE} WHERE subject_id = $1"
    )))
    .bind(a)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(row, (1, true));

    // Concurrent creators of one subject all get the same key.
    let c = Uuid::now_v7();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let v = vault.clone();
            tokio::spawn(async move { v.key_for_new(c).await.unwrap() })
        })
        .collect();
    let mut keys = Vec::new();
    for t in tasks {
        keys.push(t.await.unwrap());
    }
    let stored = vault.key(c).await.unwrap().unwrap();
    assert!(keys.iter().all(|k| same_key(k, &stored)));

    // keys_on fetches many in one go, on a given connection (here inside a transaction).
    let many: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    for s in &many {
        vault.key_for_new(*s).await.unwrap();
    }
    let absent = Uuid::now_v7();
    let mut wanted = many.clone();
    wanted.push(a);
    wanted.push(absent);
    let mut tx = pool.begin().await.unwrap();
    let found = vault.keys_on(&mut tx, &wanted).await.unwrap();
    assert!(vault.keys_on(&mut tx, &[]).await.unwrap().is_empty());
    tx.commit().await.unwrap();
    assert_eq!(found.keys().copied().collect::<HashSet<_>>(), many.iter().chain([&a]).copied().collect());
    assert!(same_key(&found[&a], &k1));

    // A wrapped key moved to another subject, or copied to another table, does not unwrap.
    let moved_from = many[0];
    let moved_to = Uuid::now_v7();
    sqlx::query(AssertSqlSafe(format!("UPDATE {TABLE} SET subject_id = $2 WHERE subject_id = $1")))
        .bind(moved_from)
        .bind(moved_to)
        .execute(&pool)
        .await
        .unwrap();
    assert!(matches!(vault.key(moved_to).await, Err(VaultError::Crypto)));
    let mut conn = pool.acquire().await.unwrap();
    assert!(matches!(vault.keys_on(&mut conn, &[moved_to]).await, Err(VaultError::Crypto)));
    drop(conn);
    sqlx::query(AssertSqlSafe(format!("INSERT INTO other.data_keys SELECT * FROM {TABLE} WHERE subject_id = $1")))
        .bind(a)
        .execute(&pool)
        .await
        .unwrap();
    let other = Vault::new(pool.clone(), master(), "other.data_keys").unwrap();
    assert!(matches!(other.key(a).await, Err(VaultError::Crypto)));
    // A different master key cannot unwrap either.
    let wrong = Vault::new(pool.clone(), MasterKey::from_bytes(&[0x5b; 32]).unwrap(), TABLE).unwrap();
    assert!(matches!(wrong.key(a).await, Err(VaultError::Crypto)));
    // Put the moved row back and clear the noise, so the table starts the destroy part clean.
    sqlx::query(AssertSqlSafe(format!("UPDATE {TABLE} SET subject_id = $1 WHERE subject_id = $2")))
        .bind(moved_from)
        .bind(moved_to)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!("VACUUM {TABLE}"))).execute(&pool).await.unwrap();

    // destroy: the key is None, a second destroy destroys nothing, and only a
    // tombstone (the subject's id) is left.
    let wrapped_a = wrapped_of(&pool, TABLE, a).await.unwrap();
    assert!(tuple_contains(&pool, TABLE, &wrapped_a).await);
    let vacuums_before = vacuum_count(&pool, TABLE).await;
    assert!(!vault.is_erased(a).await.unwrap());
    assert!(vault.destroy(a).await.unwrap());
    assert!(vault.key(a).await.unwrap().is_none());
    assert!(vault.is_erased(a).await.unwrap());
    assert!(!vault.destroy(a).await.unwrap());
    assert_eq!(wrapped_of(&pool, TABLE, a).await, None);
    assert!(matches!(vault.key_for_new(a).await, Err(VaultError::Erased(s)) if s == a), "no key after erasure");
    // The VACUUM reclaimed the tuple: no tuple, live or dead, carries the wrapped key any more.
    assert!(!tuple_contains(&pool, TABLE, &wrapped_a).await);
    // The heap has no dead tuples left. (Not `pg_stat_user_tables.n_dead_tup`: backends flush their
    // counters lazily, up to seconds later, so it can rise again after the VACUUM reset it to 0.)
    assert_eq!(dead_tuples_in_heap(&pool, TABLE).await, 0);
    // And destroy did run a VACUUM (the VACUUM's own report is immediate; poll anyway, briefly).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while vacuum_count(&pool, TABLE).await <= vacuums_before {
        assert!(tokio::time::Instant::now() < deadline, "destroy did not VACUUM the table");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // destroy_on deletes inside a caller's transaction, and a rollback keeps the key.
    let d = many[1];
    let mut tx = pool.begin().await.unwrap();
    assert!(vault.destroy_on(&mut tx, d).await.unwrap());
    tx.rollback().await.unwrap();
    assert!(vault.key(d).await.unwrap().is_some());
    let mut tx = pool.begin().await.unwrap();
    assert!(vault.destroy_on(&mut tx, d).await.unwrap());
    assert!(!vault.destroy_on(&mut tx, d).await.unwrap());
    tx.commit().await.unwrap();
    assert!(vault.key(d).await.unwrap().is_none());

    // A subject erased before it ever had a key never gets one either (a
    // service that learns of an erasure before its first command on the subject).
    let never = Uuid::now_v7();
    let mut tx = pool.begin().await.unwrap();
    assert!(!vault.destroy_on(&mut tx, never).await.unwrap());
    tx.commit().await.unwrap();
    assert!(matches!(vault.key_for_new(never).await, Err(VaultError::Erased(_))));
    let mut conn = pool.acquire().await.unwrap();
    assert!(vault.keys_on(&mut conn, &[never, a, many[2]]).await.unwrap().keys().eq([&many[2]]));
    drop(conn);

    // key_states tells a key, a tombstone and nothing apart, in one query for all.
    let live = many[2];
    let states = vault.key_states(&[never, a, live, absent, live]).await.unwrap();
    assert_eq!(states.len(), 4);
    assert!(matches!(states[&never], KeyState::Erased));
    assert!(matches!(states[&a], KeyState::Erased));
    assert!(matches!(&states[&live], KeyState::Live(k) if same_key(k, &vault.key(live).await.unwrap().unwrap())));
    assert!(matches!(states[&absent], KeyState::Absent));
    assert!(vault.key_states(&[]).await.unwrap().is_empty());
    // Keys::current_states reads the vault, not the cache: a key destroyed by
    // another replica (here: the vault directly) is erased at once.
    let keys = Keys::new(vault.clone());
    let cached = many[3];
    assert!(keys.get(cached).await.unwrap().is_some());
    assert!(matches!(keys.current_states(&[cached]).await.unwrap()[&cached], KeyState::Live(_)));
    assert!(vault.destroy(cached).await.unwrap());
    assert!(keys.get(cached).await.unwrap().is_some(), "the cache still holds it (Keys::TTL)");
    assert!(matches!(keys.current_states(&[cached]).await.unwrap()[&cached], KeyState::Erased));
    // A key that does not unwrap fails the whole lookup rather than reading as absent.
    assert!(matches!(wrong.key_states(&[live]).await, Err(VaultError::Crypto)));

    pool.close().await;
}
