//! The `referrals.consents` projection: this service's own view of the
//! registry, built from the registry's public events (stream ACASA_REGISTRY) —
//! who exists, who was merged or erased, and who consented to share their data
//! with which partner. The referrals service never reads the registry's tables.
//!
//! Only events the registry publishes in clear are read (registration,
//! consent, merge, erasure); the sealed personal payloads are not touched.
//! An erasure also destroys this service's data key of the person and drops
//! the sealed profiles of their referrals.

use acasa_eventstore::StoredCommit;
use acasa_projection::{ApplyError, Projection};
use acasa_proto::registry::v1 as reg;
use acasa_runtime::person_data::registry_events::{
    CONSENT_GIVEN, CONSENT_WITHDRAWN, ERASED, MERGED, REGISTERED, SUBJECT_PREFIX,
};
use acasa_vault::Vault;
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{PersonFact, time_of};

/// Builds `referrals.people` and `referrals.consents` from the registry's log.
#[derive(Clone, Debug)]
pub struct ConsentsProjection {
    vault: Vault,
}

impl ConsentsProjection {
    /// A projection that destroys erased people's keys in `vault`.
    pub fn new(vault: Vault) -> Self {
        Self { vault }
    }
}

fn poison(e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Poison(e.to_string())
}

fn decode<M: acasa_proto::Message + Default>(data: &[u8]) -> Result<M, ApplyError> {
    M::decode(data).map_err(|e| poison(format!("registry event: {e}")))
}

/// Sets a consent to share with a partner, unless a later change is already there.
async fn set_consent(
    conn: &mut PgConnection,
    person: Uuid,
    purpose: i32,
    partner: &str,
    given: bool,
    at: Option<&prost_types::Timestamp>,
) -> Result<(), ApplyError> {
    if purpose != reg::ConsentPurpose::PartnerSharing as i32 {
        return Ok(());
    }
    let Ok(partner) = Uuid::parse_str(partner) else {
        return Err(poison("partner-sharing consent without a partner id"));
    };
    sqlx::query(
        "INSERT INTO referrals.consents (person_id, partner_id, given, changed_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (person_id, partner_id) DO UPDATE SET given = EXCLUDED.given, changed_at = EXCLUDED.changed_at",
    )
    .bind(person)
    .bind(partner)
    .bind(given)
    .bind(time_of(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Projection for ConsentsProjection {
    fn name(&self) -> &str {
        crate::CONSENTS_PROJECTION
    }

    fn reset<'c>(&'c self, conn: &'c mut PgConnection) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query("TRUNCATE referrals.people, referrals.consents").execute(conn).await?;
            Ok(())
        })
    }

    fn apply<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        commits: &'c [StoredCommit],
    ) -> BoxFuture<'c, Result<(), ApplyError>> {
        Box::pin(async move {
            let mut erased = false;
            for c in commits {
                let Some(person) = c.subject.strip_prefix(SUBJECT_PREFIX).and_then(|s| Uuid::parse_str(s).ok()) else {
                    continue;
                };
                for e in &c.events {
                    match e.type_name.as_str() {
                        REGISTERED => {
                            sqlx::query(
                                "INSERT INTO referrals.people (person_id, status) VALUES ($1, 1) \
                                 ON CONFLICT (person_id) DO NOTHING",
                            )
                            .bind(person)
                            .execute(&mut *conn)
                            .await?;
                        }
                        CONSENT_GIVEN => {
                            let m: reg::ConsentGiven = decode(&e.data)?;
                            set_consent(conn, person, m.purpose, &m.partner_id, true, m.at.as_ref()).await?;
                        }
                        CONSENT_WITHDRAWN => {
                            let m: reg::ConsentWithdrawn = decode(&e.data)?;
                            set_consent(conn, person, m.purpose, &m.partner_id, false, m.at.as_ref()).await?;
                        }
                        MERGED => {
                            let m: reg::PersonMerged = decode(&e.data)?;
                            let survivor = Uuid::parse_str(&m.survivor_person_id)
                                .map_err(|_| poison("merge without a survivor id"))?;
                            sqlx::query(
                                "UPDATE referrals.people SET status = 2, merged_into = $2 WHERE person_id = $1",
                            )
                            .bind(person)
                            .bind(survivor)
                            .execute(&mut *conn)
                            .await?;
                        }
                        ERASED => {
                            erased = true;
                            sqlx::query(
                                "INSERT INTO referrals.people (person_id, status) VALUES ($1, 3) \
                                 ON CONFLICT (person_id) DO UPDATE SET status = 3",
                            )
                            .bind(person)
                            .execute(&mut *conn)
                            .await?;
                            sqlx::query("DELETE FROM referrals.consents WHERE person_id = $1")
                                .bind(person)
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query(
                                "UPDATE referrals.referrals SET profile_sealed = NULL WHERE person_id = $1 \
                                 AND profile_sealed IS NOT NULL",
                            )
                            .bind(person)
                            .execute(&mut *conn)
                            .await?;
                            self.vault.destroy_on(conn, person).await?;
                        }
                        _ => {}
                    }
                }
            }
            if erased {
                // The deleted key rows are reclaimed once this transaction
                // commits: vacuum shortly after (autovacuum is the backstop).
                let vault = self.vault.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    vault.vacuum().await;
                });
            }
            Ok(())
        })
    }
}

/// What this service knows of `person` and their consent to share with `partner`.
pub async fn person_fact(conn: &mut PgConnection, person: Uuid, partner: Uuid) -> Result<PersonFact, sqlx::Error> {
    let row: Option<(i16, Option<Uuid>, Option<bool>)> = sqlx::query_as(
        "SELECT p.status, p.merged_into, c.given FROM referrals.people p \
         LEFT JOIN referrals.consents c ON c.person_id = p.person_id AND c.partner_id = $2 \
         WHERE p.person_id = $1",
    )
    .bind(person)
    .bind(partner)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        None => PersonFact::Unknown,
        Some((3, _, _)) => PersonFact::Erased,
        Some((2, survivor, _)) => PersonFact::Merged(survivor.unwrap_or_default()),
        Some((_, _, given)) => PersonFact::Active { consent: given.unwrap_or(false) },
    })
}
