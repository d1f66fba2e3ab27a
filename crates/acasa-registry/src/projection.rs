//! The `registry.people` projection: people, current consents, consent
//! history and duplicate flags, from the person events.
//!
//! Sealed payloads are opened with the people's data keys, read from the
//! vault inside the batch's transaction. A person whose key is gone (erased)
//! decodes with every personal payload shredded, so a rebuild after erasure
//! writes no personal column for them. Applying an erasure also deletes the
//! key, as a backstop to the service doing so.

use std::collections::HashMap;

use acasa_domain::Codec as _;
use acasa_eventstore::StoredCommit;
use acasa_projection::{ApplyError, Projection};
use acasa_proto::{Message as _, registry::v1 as pb};
use acasa_vault::{DataKey, Vault};
use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    codec::PersonCodec,
    domain::{ConsentKey, ConsentPurpose, PersonEvent, Personal},
    validate::fold,
};

const SUBJECT_PREFIX: &str = "acasa.registry.person.";

/// Builds the registry's read model.
#[derive(Clone, Debug)]
pub struct PeopleProjection {
    vault: Vault,
}

impl PeopleProjection {
    /// A projection opening sealed payloads with keys from `vault`.
    pub fn new(vault: Vault) -> Self {
        Self { vault }
    }
}

fn person_of(c: &StoredCommit) -> Result<Uuid, ApplyError> {
    c.subject
        .strip_prefix(SUBJECT_PREFIX)
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| ApplyError::Poison(format!("subject {} is not a person's", c.subject)))
}

impl Projection for PeopleProjection {
    fn name(&self) -> &str {
        crate::PROJECTION
    }

    fn reset<'c>(&'c self, conn: &'c mut PgConnection) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query(
                "TRUNCATE registry.people, registry.consent_history, registry.consents, registry.duplicate_flags",
            )
            .execute(conn)
            .await?;
            Ok(())
        })
    }

    fn apply<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        commits: &'c [StoredCommit],
    ) -> BoxFuture<'c, Result<(), ApplyError>> {
        Box::pin(async move {
            let mut ids = Vec::with_capacity(commits.len());
            for c in commits {
                ids.push(person_of(c)?);
            }
            let keys = self
                .vault
                .keys_on(conn, &ids)
                .await
                .map_err(|e| ApplyError::Poison(format!("reading data keys: {e}")))?;
            for (c, id) in commits.iter().zip(ids) {
                self.apply_commit(conn, c, id, &keys).await?;
            }
            Ok(())
        })
    }
}

/// The personal columns of a details payload (all NULL when shredded).
#[derive(Default)]
struct DetailCols {
    given_name: Option<String>,
    family_name: Option<String>,
    name_key: Option<String>,
    birth_date: Option<NaiveDate>,
    sex: Option<i32>,
    idnp: Option<String>,
    home_district: Option<String>,
    district_key: Option<String>,
    home_locality: Option<String>,
    languages: Option<Vec<String>>,
    education: Option<Vec<Vec<u8>>>,
    profession: Option<String>,
    profession_key: Option<String>,
    scientific_field: Option<String>,
    field_key: Option<String>,
    skills: Option<Vec<String>>,
    skills_key: Option<Vec<String>>,
}

fn non_empty(s: &str) -> Option<String> {
    Some(s.to_owned()).filter(|s| !s.is_empty())
}

impl DetailCols {
    fn of(d: &Personal<pb::PersonDetails>) -> Self {
        let Personal::Open(d) = d else { return Self::default() };
        let fields: Vec<&str> = std::iter::once(d.scientific_field.as_str())
            .chain(d.education.iter().map(|e| e.field.as_str()))
            .filter(|s| !s.is_empty())
            .collect();
        Self {
            given_name: Some(d.given_name.clone()),
            family_name: Some(d.family_name.clone()),
            name_key: Some(fold(&format!("{} {}", d.family_name, d.given_name))),
            birth_date: d.birth_date.as_ref().and_then(|b| {
                NaiveDate::from_ymd_opt(b.year, u32::try_from(b.month).ok()?, u32::try_from(b.day).ok()?)
            }),
            sex: Some(d.sex),
            idnp: non_empty(&d.idnp),
            home_district: non_empty(&d.home_district),
            district_key: non_empty(&fold(&d.home_district)),
            home_locality: non_empty(&d.home_locality),
            languages: Some(d.languages.clone()),
            education: Some(d.education.iter().map(|e| e.encode_to_vec()).collect()),
            profession: non_empty(&d.profession),
            profession_key: non_empty(&fold(&d.profession)),
            scientific_field: non_empty(&d.scientific_field),
            field_key: non_empty(&fold(&fields.join(" | "))),
            skills: Some(d.skills.clone()),
            skills_key: Some(d.skills.iter().map(|s| fold(s)).collect()),
        }
    }
}

fn position(c: &StoredCommit) -> i64 {
    i64::try_from(c.sequence).unwrap_or(i64::MAX)
}

impl PeopleProjection {
    async fn apply_commit(
        &self,
        conn: &mut PgConnection,
        c: &StoredCommit,
        id: Uuid,
        keys: &HashMap<Uuid, DataKey>,
    ) -> Result<(), ApplyError> {
        let codec = PersonCodec::new(id, keys.get(&id).cloned());
        for (seq, e) in c.events.iter().enumerate() {
            let event = codec.decode(e).map_err(|e| ApplyError::Poison(e.to_string()))?;
            self.apply_event(conn, c, id, i32::try_from(seq).unwrap_or(i32::MAX), event).await?;
        }
        let touched = sqlx::query("UPDATE registry.people SET updated_at = $2, version = $3 WHERE person_id = $1")
            .bind(id)
            .bind(c.recorded_at)
            .bind(position(c))
            .execute(&mut *conn)
            .await?;
        if touched.rows_affected() == 0 {
            return Err(ApplyError::Poison("an event for a person who was never registered".into()));
        }
        Ok(())
    }

    async fn apply_event(
        &self,
        conn: &mut PgConnection,
        c: &StoredCommit,
        id: Uuid,
        seq: i32,
        event: PersonEvent,
    ) -> Result<(), ApplyError> {
        use PersonEvent as E;
        match event {
            E::Registered { categories, country, interests, details, contacts, .. } => {
                let d = DetailCols::of(&details);
                let contacts = contacts.open().cloned().unwrap_or_default();
                sqlx::query(
                    "INSERT INTO registry.people AS p (person_id, status, categories, country, interests, \
                       given_name, family_name, name_key, birth_date, sex, idnp, email, phone, home_district, \
                       district_key, home_locality, languages, education, profession, profession_key, \
                       scientific_field, field_key, skills, skills_key, registered_at, updated_at, version) \
                     VALUES ($1, 'active', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
                       $18, $19, $20, $21, $22, $23, $24, $24, $25) \
                     ON CONFLICT (person_id) DO NOTHING",
                )
                .bind(id)
                .bind(categories.iter().map(|c| *c as i32).collect::<Vec<_>>())
                .bind(&country)
                .bind(interests.iter().map(|i| *i as i32).collect::<Vec<_>>())
                .bind(&d.given_name)
                .bind(&d.family_name)
                .bind(&d.name_key)
                .bind(d.birth_date)
                .bind(d.sex)
                .bind(&d.idnp)
                .bind(non_empty(&contacts.email))
                .bind(non_empty(&contacts.phone))
                .bind(&d.home_district)
                .bind(&d.district_key)
                .bind(&d.home_locality)
                .bind(&d.languages)
                .bind(&d.education)
                .bind(&d.profession)
                .bind(&d.profession_key)
                .bind(&d.scientific_field)
                .bind(&d.field_key)
                .bind(&d.skills)
                .bind(&d.skills_key)
                .bind(c.recorded_at)
                .bind(position(c))
                .execute(&mut *conn)
                .await?;
                raise_flags(conn, id, &d, c.recorded_at).await?;
            }
            E::DetailsUpdated { country, details } => {
                let d = DetailCols::of(&details);
                sqlx::query(
                    "UPDATE registry.people SET country = $2, given_name = $3, family_name = $4, name_key = $5, \
                       birth_date = $6, sex = $7, idnp = $8, home_district = $9, district_key = $10, \
                       home_locality = $11, languages = $12, education = $13, profession = $14, \
                       profession_key = $15, scientific_field = $16, field_key = $17, skills = $18, skills_key = $19 \
                     WHERE person_id = $1",
                )
                .bind(id)
                .bind(&country)
                .bind(&d.given_name)
                .bind(&d.family_name)
                .bind(&d.name_key)
                .bind(d.birth_date)
                .bind(d.sex)
                .bind(&d.idnp)
                .bind(&d.home_district)
                .bind(&d.district_key)
                .bind(&d.home_locality)
                .bind(&d.languages)
                .bind(&d.education)
                .bind(&d.profession)
                .bind(&d.profession_key)
                .bind(&d.scientific_field)
                .bind(&d.field_key)
                .bind(&d.skills)
                .bind(&d.skills_key)
                .execute(&mut *conn)
                .await?;
                raise_flags(conn, id, &d, c.recorded_at).await?;
            }
            E::ContactsUpdated(contacts) => {
                let contacts = contacts.open().cloned();
                sqlx::query("UPDATE registry.people SET email = $2, phone = $3 WHERE person_id = $1")
                    .bind(id)
                    .bind(contacts.as_ref().and_then(|c| non_empty(&c.email)))
                    .bind(contacts.as_ref().and_then(|c| non_empty(&c.phone)))
                    .execute(&mut *conn)
                    .await?;
            }
            E::ReturnRecorded(ret) => {
                let ret = ret.open().cloned();
                let date = ret.as_ref().and_then(|r| r.return_date.as_ref()).and_then(|d| {
                    NaiveDate::from_ymd_opt(d.year, u32::try_from(d.month).ok()?, u32::try_from(d.day).ok()?)
                });
                sqlx::query(
                    "UPDATE registry.people SET returned = true, country = 'MD', return_date = $2, \
                       return_district = $3, return_locality = $4 WHERE person_id = $1",
                )
                .bind(id)
                .bind(date)
                .bind(ret.as_ref().and_then(|r| non_empty(&r.district)))
                .bind(ret.as_ref().and_then(|r| non_empty(&r.locality)))
                .execute(&mut *conn)
                .await?;
            }
            E::CategoryAdded(cat) => {
                sqlx::query(
                    "UPDATE registry.people SET categories = array_append(categories, $2) \
                     WHERE person_id = $1 AND NOT ($2 = ANY (categories))",
                )
                .bind(id)
                .bind(cat as i32)
                .execute(&mut *conn)
                .await?;
            }
            E::CategoryRemoved(cat) => {
                sqlx::query(
                    "UPDATE registry.people SET categories = array_remove(categories, $2) WHERE person_id = $1",
                )
                .bind(id)
                .bind(cat as i32)
                .execute(&mut *conn)
                .await?;
            }
            E::ConsentGiven { key, channel, at } => {
                consent(conn, c, id, seq, key, true, channel as i32, at).await?;
            }
            E::ConsentWithdrawn { key, channel, at } => {
                consent(conn, c, id, seq, key, false, channel as i32, at).await?;
            }
            E::InterestsRecorded(interests) => {
                sqlx::query("UPDATE registry.people SET interests = $2 WHERE person_id = $1")
                    .bind(id)
                    .bind(interests.iter().map(|i| *i as i32).collect::<Vec<_>>())
                    .execute(&mut *conn)
                    .await?;
            }
            E::DuplicateDismissed(other) => {
                sqlx::query(
                    "UPDATE registry.duplicate_flags SET status = 'dismissed' \
                     WHERE person_id = LEAST($1::uuid, $2::uuid) AND other_id = GREATEST($1::uuid, $2::uuid) \
                       AND status = 'open'",
                )
                .bind(id)
                .bind(other)
                .execute(&mut *conn)
                .await?;
            }
            E::Merged(survivor) => {
                sqlx::query("UPDATE registry.people SET status = 'merged', merged_into = $2 WHERE person_id = $1")
                    .bind(id)
                    .bind(survivor)
                    .execute(&mut *conn)
                    .await?;
                close_flags(conn, id, "merged").await?;
            }
            E::Absorbed(_) => {}
            E::Erased { .. } => {
                sqlx::query(
                    "UPDATE registry.people SET status = 'erased', given_name = NULL, family_name = NULL, \
                       name_key = NULL, birth_date = NULL, sex = NULL, idnp = NULL, email = NULL, phone = NULL, \
                       home_district = NULL, district_key = NULL, home_locality = NULL, languages = NULL, \
                       education = NULL, profession = NULL, profession_key = NULL, scientific_field = NULL, \
                       field_key = NULL, skills = NULL, skills_key = NULL, return_date = NULL, \
                       return_district = NULL, return_locality = NULL \
                     WHERE person_id = $1",
                )
                .bind(id)
                .execute(&mut *conn)
                .await?;
                close_flags(conn, id, "erased").await?;
                self.vault
                    .destroy_on(conn, id)
                    .await
                    .map_err(|e| ApplyError::Poison(format!("destroying a data key: {e}")))?;
            }
        }
        Ok(())
    }
}

/// Flags active people with the same folded names and birth date.
async fn raise_flags(conn: &mut PgConnection, id: Uuid, d: &DetailCols, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let (Some(name_key), Some(birth_date)) = (&d.name_key, d.birth_date) else { return Ok(()) };
    sqlx::query(
        "INSERT INTO registry.duplicate_flags (person_id, other_id, raised_at, status) \
         SELECT LEAST($1::uuid, p.person_id), GREATEST($1::uuid, p.person_id), $4, 'open' \
         FROM registry.people p \
         WHERE p.status = 'active' AND p.name_key = $2 AND p.birth_date = $3 AND p.person_id <> $1 \
           AND EXISTS (SELECT 1 FROM registry.people me WHERE me.person_id = $1 AND me.status = 'active') \
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(name_key)
    .bind(birth_date)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

async fn close_flags(conn: &mut PgConnection, id: Uuid, why: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE registry.duplicate_flags SET status = $2 WHERE (person_id = $1 OR other_id = $1) AND status = 'open'",
    )
    .bind(id)
    .bind(why)
    .execute(conn)
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn consent(
    conn: &mut PgConnection,
    c: &StoredCommit,
    id: Uuid,
    seq: i32,
    key: ConsentKey,
    given: bool,
    channel: i32,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO registry.consent_history \
           (person_id, position, seq, purpose, partner_id, given, channel, at, recorded_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(position(c))
    .bind(seq)
    .bind(key.purpose as i32)
    .bind(key.partner)
    .bind(given)
    .bind(channel)
    .bind(at)
    .bind(&c.actor)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO registry.consents (person_id, purpose, partner_id, given, channel, changed_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (person_id, purpose, partner_id) DO UPDATE SET \
           given = EXCLUDED.given, channel = EXCLUDED.channel, changed_at = EXCLUDED.changed_at",
    )
    .bind(id)
    .bind(key.purpose as i32)
    .bind(key.partner.unwrap_or_default())
    .bind(given)
    .bind(channel)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    if key.purpose == ConsentPurpose::ProgrammeParticipation {
        sqlx::query("UPDATE registry.people SET programme_consent = $2 WHERE person_id = $1")
            .bind(id)
            .bind(given)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
