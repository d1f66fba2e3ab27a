//! The `content.audience` projection: this service's own view of the
//! registry, from the registry's events (stream ACASA_REGISTRY) — for each
//! person, the country of residence, the languages they read, their
//! information-campaign consent, merge and erasure: whom a campaign may
//! reach.
//!
//! Content never reads the registry's tables and holds no data keys. The
//! languages are sealed in the registry's `details`; the registry's
//! `PersonDataService` opens them for the purpose *campaigns* (languages,
//! nothing else). Contacts are kept only as the sealed value the registry's
//! event carries, and opened by the campaign sender at the moment it sends
//! ([`crate::outbox`]): an erasure destroys the person's key in the
//! registry, so from then on they open for no one, and the erasure event
//! here empties the row, so a rebuild after an erasure equals the live
//! model.

use std::sync::Arc;

use acasa_eventstore::StoredCommit;
use acasa_projection::{ApplyError, Projection};
use acasa_proto::{Message as _, registry::v1 as reg};
use acasa_runtime::person_data::registry_events::{
    CONSENT_GIVEN, CONSENT_WITHDRAWN, CONTACTS_UPDATED, DETAILS_UPDATED, ERASED, MERGED, REGISTERED, RETURN_RECORDED,
    SUBJECT_PREFIX,
};
use acasa_runtime::person_data::{Opened, PersonData, SealedField, open_all};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;

/// `content.audience.status` of a person.
pub const ACTIVE: i16 = 1;
/// Merged into another record.
pub const MERGED_STATUS: i16 = 2;
/// Erased.
pub const ERASED_STATUS: i16 = 3;

/// Builds `content.audience` from the registry's log.
#[derive(Clone, Debug)]
pub struct AudienceProjection {
    data: Arc<dyn PersonData>,
}

impl AudienceProjection {
    /// A projection opening the languages through `data` (purpose campaigns).
    pub fn new(data: Arc<dyn PersonData>) -> Self {
        Self { data }
    }
}

fn poison(e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Poison(e.to_string())
}

fn decode<M: acasa_proto::Message + Default>(data: &[u8]) -> Result<M, ApplyError> {
    M::decode(data).map_err(|e| poison(format!("registry event: {e}")))
}

fn person_of(c: &StoredCommit) -> Option<Uuid> {
    c.subject.strip_prefix(SUBJECT_PREFIX).and_then(|s| Uuid::parse_str(s).ok())
}

/// The sealed `details` of a registry event (opened for the languages).
fn sealed_details(person: Uuid, e: &acasa_domain::EncodedEvent) -> Result<Option<SealedField>, ApplyError> {
    let details = match e.type_name.as_str() {
        REGISTERED => decode::<reg::PersonRegistered>(&e.data)?.details,
        DETAILS_UPDATED => decode::<reg::PersonDetailsUpdated>(&e.data)?.details,
        _ => None,
    };
    Ok(details.map(|sealed| SealedField { person, event_type: e.type_name.clone(), field: "details", sealed }))
}

async fn set_contacts(
    conn: &mut PgConnection,
    person: Uuid,
    event_type: &str,
    sealed: Option<reg::Sealed>,
) -> Result<(), ApplyError> {
    sqlx::query(
        "UPDATE content.audience SET contacts_event = $2, contacts_sealed = $3 WHERE person_id = $1 AND status <> 3",
    )
    .bind(person)
    .bind(sealed.as_ref().map(|_| event_type))
    .bind(sealed.map(|s| s.encode_to_vec()))
    .execute(conn)
    .await?;
    Ok(())
}

async fn set_country(conn: &mut PgConnection, person: Uuid, country: &str) -> Result<(), ApplyError> {
    sqlx::query("UPDATE content.audience SET country = NULLIF($2, '') WHERE person_id = $1 AND status <> 3")
        .bind(person)
        .bind(country)
        .execute(conn)
        .await?;
    Ok(())
}

impl Projection for AudienceProjection {
    fn name(&self) -> &str {
        crate::AUDIENCE_PROJECTION
    }

    fn reset<'c>(&'c self, conn: &'c mut PgConnection) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query("TRUNCATE content.audience").execute(conn).await?;
            Ok(())
        })
    }

    fn apply<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        commits: &'c [StoredCommit],
    ) -> BoxFuture<'c, Result<(), ApplyError>> {
        Box::pin(async move {
            // Every sealed `details` of the batch, opened in as few calls as possible.
            let mut fields = Vec::new();
            for c in commits {
                if let Some(person) = person_of(c) {
                    for e in &c.events {
                        fields.extend(sealed_details(person, e)?);
                    }
                }
            }
            let opened = open_all(&*self.data, fields).await.map_err(ApplyError::Unavailable)?;
            let mut opened = opened.into_iter();
            for c in commits {
                let Some(person) = person_of(c) else { continue };
                let position = i64::try_from(c.sequence).unwrap_or(i64::MAX);
                for e in &c.events {
                    match e.type_name.as_str() {
                        REGISTERED => {
                            let m: reg::PersonRegistered = decode(&e.data)?;
                            sqlx::query(
                                "INSERT INTO content.audience (person_id, country, position) \
                                 VALUES ($1, NULLIF($2, ''), $3) ON CONFLICT (person_id) DO NOTHING",
                            )
                            .bind(person)
                            .bind(&m.country_of_residence)
                            .bind(position)
                            .execute(&mut *conn)
                            .await?;
                            set_contacts(conn, person, &e.type_name, m.contacts).await?;
                        }
                        DETAILS_UPDATED => {
                            let m: reg::PersonDetailsUpdated = decode(&e.data)?;
                            set_country(conn, person, &m.country_of_residence).await?;
                        }
                        CONTACTS_UPDATED => {
                            let m: reg::ContactsUpdated = decode(&e.data)?;
                            set_contacts(conn, person, &e.type_name, m.contacts).await?;
                        }
                        RETURN_RECORDED => set_country(conn, person, "MD").await?,
                        CONSENT_GIVEN | CONSENT_WITHDRAWN => {
                            let (purpose, given) = if e.type_name == CONSENT_GIVEN {
                                (decode::<reg::ConsentGiven>(&e.data)?.purpose, true)
                            } else {
                                (decode::<reg::ConsentWithdrawn>(&e.data)?.purpose, false)
                            };
                            if purpose == reg::ConsentPurpose::InformationCampaigns as i32 {
                                sqlx::query(
                                    "UPDATE content.audience SET consent = $2 WHERE person_id = $1 AND status <> 3",
                                )
                                .bind(person)
                                .bind(given)
                                .execute(&mut *conn)
                                .await?;
                            }
                        }
                        MERGED => {
                            sqlx::query(
                                "UPDATE content.audience SET status = $2, consent = false WHERE person_id = $1",
                            )
                            .bind(person)
                            .bind(MERGED_STATUS)
                            .execute(&mut *conn)
                            .await?;
                        }
                        ERASED => {
                            sqlx::query(
                                "INSERT INTO content.audience (person_id, status) VALUES ($1, $2) \
                                 ON CONFLICT (person_id) DO UPDATE SET status = $2, consent = false, \
                                 languages = '{}', contacts_event = NULL, contacts_sealed = NULL",
                            )
                            .bind(person)
                            .bind(ERASED_STATUS)
                            .execute(&mut *conn)
                            .await?;
                        }
                        _ => {}
                    }
                    if sealed_details(person, e)?.is_some() {
                        let o = opened.next().ok_or_else(|| poison("the registry answered fewer fields than asked"))?;
                        if let Opened::Languages(languages) = o {
                            // As campaigns name them: normalised BCP 47 tags.
                            let languages: Vec<String> = languages
                                .iter()
                                .filter_map(|l| crate::domain::locale::Locale::parse(l).ok())
                                .map(|l| l.to_string())
                                .collect();
                            sqlx::query(
                                "UPDATE content.audience SET languages = $2 WHERE person_id = $1 AND status <> 3",
                            )
                            .bind(person)
                            .bind(&languages)
                            .execute(&mut *conn)
                            .await?;
                        }
                    }
                }
                sqlx::query("UPDATE content.audience SET position = $2 WHERE person_id = $1")
                    .bind(person)
                    .bind(position)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        })
    }
}
