//! The `placements.people` projection: this service's own view of the
//! registry, from the registry's events (stream ACASA_REGISTRY) — who
//! exists, their categories and interests, their programme consent, merges
//! and erasure, and, for matching and for the host, the profile and
//! contacts the registry keeps sealed with the person's data key.
//!
//! Placements never reads the registry's tables and holds no data keys: the
//! sealed fields are opened by the registry's `PersonDataService`, which
//! returns only a programme profile (names, languages, profession,
//! scientific field, skills, education fields) and contact points. Once the
//! person is erased the registry cannot open them any more, and the erasure
//! event here sets every personal column NULL, so a rebuild after an erasure
//! equals the live model.

use std::sync::Arc;

use acasa_domain::formats::fold;
use acasa_eventstore::StoredCommit;
use acasa_projection::{ApplyError, Projection};
use acasa_proto::registry::v1 as reg;
use acasa_runtime::person_data::registry_events::{
    CATEGORY_ADDED, CATEGORY_REMOVED, CONSENT_GIVEN, CONSENT_WITHDRAWN, CONTACTS_UPDATED, DETAILS_UPDATED, ERASED,
    INTERESTS_RECORDED, MERGED, REGISTERED, SUBJECT_PREFIX,
};
use acasa_runtime::person_data::{Opened, PersonData, SealedField, open_all};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;

/// Builds `placements.people` from the registry's log.
#[derive(Clone, Debug)]
pub struct PeopleProjection {
    data: Arc<dyn PersonData>,
}

impl PeopleProjection {
    /// A projection opening sealed fields through `data`.
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

/// The sealed fields of a registry event that this service keeps.
fn sealed_fields(person: Uuid, e: &acasa_domain::EncodedEvent) -> Result<Vec<SealedField>, ApplyError> {
    let field = |field: &'static str, sealed: Option<reg::Sealed>| {
        sealed.map(|sealed| SealedField { person, event_type: e.type_name.clone(), field, sealed })
    };
    Ok(match e.type_name.as_str() {
        REGISTERED => {
            let m: reg::PersonRegistered = decode(&e.data)?;
            [field("details", m.details), field("contacts", m.contacts)].into_iter().flatten().collect()
        }
        DETAILS_UPDATED => {
            field("details", decode::<reg::PersonDetailsUpdated>(&e.data)?.details).into_iter().collect()
        }
        CONTACTS_UPDATED => field("contacts", decode::<reg::ContactsUpdated>(&e.data)?.contacts).into_iter().collect(),
        _ => Vec::new(),
    })
}

fn small(v: i32) -> i16 {
    i16::try_from(v).unwrap_or(0)
}

async fn keep(conn: &mut PgConnection, person: Uuid, opened: Opened) -> Result<(), ApplyError> {
    match opened {
        Opened::Profile(p) => {
            let folded = |v: &[String]| v.iter().map(|s| fold(s)).collect::<Vec<_>>();
            let optional = |s: &str| (!s.is_empty()).then(|| fold(s));
            sqlx::query(
                "UPDATE placements.people SET given_name = $2, family_name = $3, languages = $4, profession = $5, \
                 scientific_field = $6, skills = $7, education_fields = $8 WHERE person_id = $1 AND status <> 3",
            )
            .bind(person)
            .bind(&p.given_name)
            .bind(&p.family_name)
            .bind(&p.languages)
            .bind(optional(&p.profession))
            .bind(optional(&p.scientific_field))
            .bind(folded(&p.skills))
            .bind(folded(&p.education_fields))
            .execute(&mut *conn)
            .await?;
        }
        Opened::Contacts { email, phone } => {
            sqlx::query(
                "UPDATE placements.people SET email = NULLIF($2, ''), phone = NULLIF($3, '') \
                 WHERE person_id = $1 AND status <> 3",
            )
            .bind(person)
            .bind(email)
            .bind(phone)
            .execute(&mut *conn)
            .await?;
        }
        // Placements asks for matching (and never for a return's details):
        // eligibility facts and places returned to are not its to keep.
        Opened::Eligibility(_) | Opened::ReturnPlace(_) | Opened::Languages(_) | Opened::Gone => {}
    }
    Ok(())
}

async fn set_category(conn: &mut PgConnection, person: Uuid, category: i16, add: bool) -> Result<(), ApplyError> {
    let sql = if add {
        "UPDATE placements.people SET categories = CASE WHEN $2 = ANY(categories) THEN categories \
         ELSE array_append(categories, $2) END WHERE person_id = $1"
    } else {
        "UPDATE placements.people SET categories = array_remove(categories, $2) WHERE person_id = $1"
    };
    sqlx::query(sql).bind(person).bind(category).execute(&mut *conn).await?;
    Ok(())
}

impl Projection for PeopleProjection {
    fn name(&self) -> &str {
        crate::PEOPLE_PROJECTION
    }

    fn reset<'c>(&'c self, conn: &'c mut PgConnection) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query("TRUNCATE placements.people").execute(conn).await?;
            Ok(())
        })
    }

    fn apply<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        commits: &'c [StoredCommit],
    ) -> BoxFuture<'c, Result<(), ApplyError>> {
        Box::pin(async move {
            // Every sealed field of the batch, opened in as few calls as possible.
            let mut fields = Vec::new();
            // How many sealed fields each event (in order) has opened.
            let mut counts = Vec::new();
            for c in commits {
                if let Some(person) = person_of(c) {
                    for e in &c.events {
                        let sealed = sealed_fields(person, e)?;
                        counts.push(sealed.len());
                        fields.extend(sealed);
                    }
                }
            }
            let opened = open_all(&*self.data, fields).await.map_err(ApplyError::Unavailable)?;
            let mut opened = opened.into_iter();
            let mut counts = counts.into_iter();
            for c in commits {
                let Some(person) = person_of(c) else { continue };
                let position = i64::try_from(c.sequence).unwrap_or(i64::MAX);
                for e in &c.events {
                    let sealed = counts.next().unwrap_or(0);
                    match e.type_name.as_str() {
                        REGISTERED => {
                            let m: reg::PersonRegistered = decode(&e.data)?;
                            let categories: Vec<i16> = m.categories.iter().map(|c| small(*c)).collect();
                            let interests: Vec<i16> = m.interests.iter().map(|c| small(*c)).collect();
                            sqlx::query(
                                "INSERT INTO placements.people (person_id, categories, interests, position) \
                                 VALUES ($1, $2, $3, $4) ON CONFLICT (person_id) DO NOTHING",
                            )
                            .bind(person)
                            .bind(categories)
                            .bind(interests)
                            .bind(position)
                            .execute(&mut *conn)
                            .await?;
                        }
                        CATEGORY_ADDED | CATEGORY_REMOVED => {
                            let category = if e.type_name == CATEGORY_ADDED {
                                decode::<reg::CategoryAdded>(&e.data)?.category
                            } else {
                                decode::<reg::CategoryRemoved>(&e.data)?.category
                            };
                            set_category(conn, person, small(category), e.type_name == CATEGORY_ADDED).await?;
                        }
                        INTERESTS_RECORDED => {
                            let m: reg::InterestsRecorded = decode(&e.data)?;
                            let interests: Vec<i16> = m.interests.iter().map(|c| small(*c)).collect();
                            sqlx::query("UPDATE placements.people SET interests = $2 WHERE person_id = $1")
                                .bind(person)
                                .bind(interests)
                                .execute(&mut *conn)
                                .await?;
                        }
                        CONSENT_GIVEN | CONSENT_WITHDRAWN => {
                            let (purpose, given) = if e.type_name == CONSENT_GIVEN {
                                (decode::<reg::ConsentGiven>(&e.data)?.purpose, true)
                            } else {
                                (decode::<reg::ConsentWithdrawn>(&e.data)?.purpose, false)
                            };
                            if purpose == reg::ConsentPurpose::ProgrammeParticipation as i32 {
                                sqlx::query("UPDATE placements.people SET programme_consent = $2 WHERE person_id = $1")
                                    .bind(person)
                                    .bind(given)
                                    .execute(&mut *conn)
                                    .await?;
                            }
                        }
                        MERGED => {
                            let m: reg::PersonMerged = decode(&e.data)?;
                            let survivor = Uuid::parse_str(&m.survivor_person_id)
                                .map_err(|_| poison("merge without a survivor id"))?;
                            sqlx::query(
                                "UPDATE placements.people SET status = 2, merged_into = $2 WHERE person_id = $1",
                            )
                            .bind(person)
                            .bind(survivor)
                            .execute(&mut *conn)
                            .await?;
                        }
                        ERASED => {
                            sqlx::query(
                                "INSERT INTO placements.people (person_id, status) VALUES ($1, 3) \
                                 ON CONFLICT (person_id) DO UPDATE SET status = 3, programme_consent = false, \
                                 given_name = NULL, family_name = NULL, email = NULL, phone = NULL, \
                                 languages = NULL, profession = NULL, scientific_field = NULL, skills = NULL, \
                                 education_fields = NULL",
                            )
                            .bind(person)
                            .execute(&mut *conn)
                            .await?;
                        }
                        _ => {}
                    }
                    for _ in 0..sealed {
                        let o = opened.next().ok_or_else(|| poison("the registry answered fewer fields than asked"))?;
                        keep(conn, person, o).await?;
                    }
                }
                sqlx::query("UPDATE placements.people SET position = $2 WHERE person_id = $1")
                    .bind(person)
                    .bind(position)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        })
    }
}
