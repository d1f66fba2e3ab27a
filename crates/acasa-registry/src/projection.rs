//! The `registry.people` projection: people, current consents, consent
//! history and duplicate flags, from the person events.
//!
//! Sealed payloads are opened with the people's data keys, read from the
//! vault inside the batch's transaction. A person whose key is gone (erased)
//! decodes with every personal payload shredded, so a rebuild after erasure
//! writes no personal column for them. Applying an erasure also deletes the
//! key, as a backstop to the service doing so.

use acasa_domain::Codec as _;
use acasa_eventstore::StoredCommit;
use acasa_projection::{ApplyError, Projection};
use acasa_proto::{Message as _, registry::v1 as pb};
use acasa_vault::Vault;
use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    codec::PersonCodec,
    domain::{ConsentKey, ConsentPurpose, PersonEvent, Personal, naive_date},
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
            let keys = self.vault.keys_on(conn, &ids).await?;
            // The bulk of a busy log goes in set-wise statements: runs of
            // registrations in one multi-row insert, contact and interest
            // replacements folded per person into one multi-row update
            // (after the registrations). Any other commit flushes both first,
            // so every person's commits still apply in log order.
            let mut pending: Vec<NewPerson> = Vec::new();
            let mut updates = SimpleUpdates::default();
            for (c, id) in commits.iter().zip(ids) {
                let codec = PersonCodec::new(id, keys.get(&id).cloned());
                let mut events = Vec::with_capacity(c.events.len());
                for e in &c.events {
                    events.push(codec.decode(e).map_err(|e| ApplyError::Poison(e.to_string()))?);
                }
                if let [PersonEvent::Registered { .. }] = events.as_slice()
                    && !pending.iter().any(|p| p.id == id)
                    && !updates.rows.contains_key(&id)
                    && let Some(PersonEvent::Registered { categories, country, interests, details, contacts, .. }) =
                        events.pop()
                {
                    pending.push(NewPerson { id, categories, country, interests, details, contacts, commit: c });
                    continue;
                }
                if updates.absorb(id, c, &events) {
                    continue;
                }
                insert_people(conn, std::mem::take(&mut pending)).await?;
                std::mem::take(&mut updates).flush(conn).await?;
                self.apply_commit(conn, c, id, events).await?;
            }
            insert_people(conn, pending).await?;
            updates.flush(conn).await?;
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
    languages: Option<String>,
    education: Option<Vec<u8>>,
    profession: Option<String>,
    profession_key: Option<String>,
    scientific_field: Option<String>,
    field_key: Option<String>,
    skills: Option<String>,
    skills_key: Option<String>,
}

/// Separator of list columns passed as text (`string_to_array(x, chr(31))`);
/// validation keeps control characters out of every value.
const SEP: &str = "\u{1f}";

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
            birth_date: d.birth_date.as_ref().and_then(naive_date),
            sex: Some(d.sex),
            idnp: non_empty(&d.idnp),
            home_district: non_empty(&d.home_district),
            district_key: non_empty(&fold(&d.home_district)),
            home_locality: non_empty(&d.home_locality),
            languages: Some(d.languages.join(SEP)),
            education: Some(d.education.iter().flat_map(|e| e.encode_length_delimited_to_vec()).collect()),
            profession: non_empty(&d.profession),
            profession_key: non_empty(&fold(&d.profession)),
            scientific_field: non_empty(&d.scientific_field),
            field_key: non_empty(&fold(&fields.join(" | "))),
            skills: Some(d.skills.join(SEP)),
            skills_key: Some(d.skills.iter().map(|s| fold(s)).collect::<Vec<_>>().join(SEP)),
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
        events: Vec<PersonEvent>,
    ) -> Result<(), ApplyError> {
        let mut touched = false;
        for (seq, event) in events.into_iter().enumerate() {
            touched |= self.apply_event(conn, c, id, i32::try_from(seq).unwrap_or(i32::MAX), event).await?;
        }
        if touched {
            // The event statements set updated_at and version themselves.
            return Ok(());
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
    ) -> Result<bool, ApplyError> {
        use PersonEvent as E;
        let mut touched = false;
        match event {
            E::Registered { categories, country, interests, details, contacts, .. } => {
                insert_people(
                    conn,
                    vec![NewPerson { id, categories, country, interests, details, contacts, commit: c }],
                )
                .await?;
            }
            E::DetailsUpdated { country, details } => {
                let d = DetailCols::of(&details);
                touched |= changed(
                    &mut *conn,
                    sqlx::query(
                        "UPDATE registry.people SET country = $2, given_name = $3, family_name = $4, name_key = $5, \
                       birth_date = $6, sex = $7, idnp = $8, home_district = $9, district_key = $10, \
                       home_locality = $11, languages = string_to_array($12, chr(31)), education = $13, \
                       profession = $14, profession_key = $15, scientific_field = $16, field_key = $17, \
                       skills = string_to_array($18, chr(31)), skills_key = string_to_array($19, chr(31)), \
                       updated_at = $20, version = $21 WHERE person_id = $1",
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
                    .bind(c.recorded_at)
                    .bind(position(c)),
                )
                .await?;
                raise_flags(conn, id, &d, c.recorded_at).await?;
            }
            E::ContactsUpdated(contacts) => {
                let contacts = contacts.open().cloned();
                touched |= changed(
                    &mut *conn,
                    sqlx::query(
                        "UPDATE registry.people SET email = $2, phone = $3, updated_at = $4, version = $5 \
                     WHERE person_id = $1",
                    )
                    .bind(id)
                    .bind(contacts.as_ref().and_then(|c| non_empty(&c.email)))
                    .bind(contacts.as_ref().and_then(|c| non_empty(&c.phone)))
                    .bind(c.recorded_at)
                    .bind(position(c)),
                )
                .await?;
            }
            E::ReturnRecorded(ret) => {
                let ret = ret.open().cloned();
                let date = ret.as_ref().and_then(|r| r.return_date.as_ref()).and_then(naive_date);
                touched |= changed(
                    &mut *conn,
                    sqlx::query(
                        "UPDATE registry.people SET returned = true, country = 'MD', return_date = $2, \
                       return_district = $3, return_locality = $4, updated_at = $5, version = $6 WHERE person_id = $1",
                    )
                    .bind(id)
                    .bind(date)
                    .bind(ret.as_ref().and_then(|r| non_empty(&r.district)))
                    .bind(ret.as_ref().and_then(|r| non_empty(&r.locality)))
                    .bind(c.recorded_at)
                    .bind(position(c)),
                )
                .await?;
            }
            E::CategoryAdded(cat) => {
                touched |= changed(&mut *conn, sqlx::query(
                    "UPDATE registry.people SET categories = array_append(categories, $2), updated_at = $3, version = $4 \
                     WHERE person_id = $1 AND NOT ($2 = ANY (categories))",
                )
                .bind(id)
                .bind(cat as i32)
                .bind(c.recorded_at)
                .bind(position(c))).await?;
            }
            E::CategoryRemoved(cat) => {
                touched |= changed(&mut *conn, sqlx::query(
                    "UPDATE registry.people SET categories = array_remove(categories, $2), updated_at = $3, version = $4 \
                     WHERE person_id = $1",
                )
                .bind(id)
                .bind(cat as i32)
                .bind(c.recorded_at)
                .bind(position(c))).await?;
            }
            E::ConsentGiven { key, channel, at } => {
                consent(conn, c, id, seq, key, true, channel as i32, at).await?;
            }
            E::ConsentWithdrawn { key, channel, at } => {
                consent(conn, c, id, seq, key, false, channel as i32, at).await?;
            }
            E::InterestsRecorded(interests) => {
                touched |= changed(
                    &mut *conn,
                    sqlx::query(
                        "UPDATE registry.people SET interests = $2, updated_at = $3, version = $4 WHERE person_id = $1",
                    )
                    .bind(id)
                    .bind(interests.iter().map(|i| *i as i32).collect::<Vec<_>>())
                    .bind(c.recorded_at)
                    .bind(position(c)),
                )
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
                touched |= changed(
                    &mut *conn,
                    sqlx::query(
                        "UPDATE registry.people SET status = 'merged', merged_into = $2, updated_at = $3, version = $4 \
                     WHERE person_id = $1",
                    )
                    .bind(id)
                    .bind(survivor)
                    .bind(c.recorded_at)
                    .bind(position(c)),
                )
                .await?;
                close_flags(conn, id, "merged").await?;
            }
            E::Absorbed(_) => {}
            E::Erased { .. } => {
                touched |= changed(
                    &mut *conn,
                    sqlx::query(
                        "UPDATE registry.people SET status = 'erased', given_name = NULL, family_name = NULL, \
                       name_key = NULL, birth_date = NULL, sex = NULL, idnp = NULL, email = NULL, phone = NULL, \
                       home_district = NULL, district_key = NULL, home_locality = NULL, languages = NULL, \
                       education = NULL, profession = NULL, profession_key = NULL, scientific_field = NULL, \
                       field_key = NULL, skills = NULL, skills_key = NULL, return_date = NULL, \
                       return_district = NULL, return_locality = NULL, updated_at = $2, version = $3 \
                     WHERE person_id = $1",
                    )
                    .bind(id)
                    .bind(c.recorded_at)
                    .bind(position(c)),
                )
                .await?;
                // A flag pairs the erased person's (now unreadable) names with
                // another's; a rebuild could not raise it again.
                sqlx::query("DELETE FROM registry.duplicate_flags WHERE person_id = $1 OR other_id = $1")
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                self.vault.destroy_on(conn, id).await?;
            }
        }
        Ok(touched)
    }
}

/// Runs an update; whether it changed a row.
async fn changed(
    conn: &mut PgConnection,
    query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
) -> Result<bool, sqlx::Error> {
    Ok(query.execute(conn).await?.rows_affected() > 0)
}

/// Flags active people with the same folded names and birth date.
async fn raise_flags(conn: &mut PgConnection, id: Uuid, d: &DetailCols, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let (Some(name_key), Some(birth_date)) = (&d.name_key, d.birth_date) else { return Ok(()) };
    raise_flags_many(conn, &[id], std::slice::from_ref(name_key), &[birth_date], &[at]).await
}

async fn raise_flags_many(
    conn: &mut PgConnection,
    ids: &[Uuid],
    name_keys: &[String],
    birth_dates: &[NaiveDate],
    ats: &[DateTime<Utc>],
) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO registry.duplicate_flags (person_id, other_id, raised_at, status) \
         SELECT DISTINCT ON (1, 2) LEAST(n.id, p.person_id), GREATEST(n.id, p.person_id), n.at, 'open' \
         FROM UNNEST($1::uuid[], $2::text[], $3::date[], $4::timestamptz[]) AS n(id, name_key, birth_date, at) \
         JOIN registry.people me ON me.person_id = n.id AND me.status = 'active' \
         JOIN registry.people p ON p.status = 'active' AND p.name_key = n.name_key \
           AND p.birth_date = n.birth_date AND p.person_id <> n.id \
         ORDER BY 1, 2, n.at DESC \
         ON CONFLICT DO NOTHING",
    )
    .bind(ids)
    .bind(name_keys)
    .bind(birth_dates)
    .bind(ats)
    .execute(conn)
    .await?;
    Ok(())
}

/// Contact and interest replacements of a batch, the last one per person.
#[derive(Default)]
struct SimpleUpdates {
    rows: std::collections::HashMap<Uuid, SimpleUpdate>,
}

#[derive(Default)]
struct SimpleUpdate {
    contacts: Option<(Option<String>, Option<String>)>,
    interests: Option<String>,
    at: DateTime<Utc>,
    position: i64,
}

impl SimpleUpdates {
    /// Takes the commit if it only replaces contacts or interests.
    fn absorb(&mut self, id: Uuid, c: &StoredCommit, events: &[PersonEvent]) -> bool {
        let simple = !events.is_empty()
            && events.iter().all(|e| matches!(e, PersonEvent::ContactsUpdated(_) | PersonEvent::InterestsRecorded(_)));
        if !simple {
            return false;
        }
        let row = self.rows.entry(id).or_default();
        for e in events {
            match e {
                PersonEvent::ContactsUpdated(contacts) => {
                    let contacts = contacts.open();
                    row.contacts =
                        Some((contacts.and_then(|c| non_empty(&c.email)), contacts.and_then(|c| non_empty(&c.phone))));
                }
                PersonEvent::InterestsRecorded(i) => row.interests = Some(joined_ints(i.iter().map(|i| *i as i32))),
                _ => {}
            }
        }
        row.at = c.recorded_at;
        row.position = position(c);
        true
    }

    async fn flush(self, conn: &mut PgConnection) -> Result<(), ApplyError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let n = self.rows.len();
        let (mut ids, mut set_contacts, mut emails, mut phones, mut set_interests, mut interests, mut at, mut pos) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for (id, r) in self.rows {
            ids.push(id);
            set_contacts.push(r.contacts.is_some());
            let (email, phone) = r.contacts.unwrap_or_default();
            emails.push(email);
            phones.push(phone);
            set_interests.push(r.interests.is_some());
            interests.push(r.interests.unwrap_or_default());
            at.push(r.at);
            pos.push(r.position);
        }
        let updated = sqlx::query(
            "UPDATE registry.people p SET \
               email = CASE WHEN n.sc THEN n.email ELSE p.email END, \
               phone = CASE WHEN n.sc THEN n.phone ELSE p.phone END, \
               interests = CASE WHEN n.si THEN string_to_array(n.ints, ',')::int[] ELSE p.interests END, \
               updated_at = n.at, version = n.pos \
             FROM UNNEST($1::uuid[], $2::bool[], $3::text[], $4::text[], $5::bool[], $6::text[], \
                         $7::timestamptz[], $8::int8[]) AS n(id, sc, email, phone, si, ints, at, pos) \
             WHERE p.person_id = n.id",
        )
        .bind(&ids)
        .bind(&set_contacts)
        .bind(&emails)
        .bind(&phones)
        .bind(&set_interests)
        .bind(&interests)
        .bind(&at)
        .bind(&pos)
        .execute(&mut *conn)
        .await?;
        if updated.rows_affected() != n as u64 {
            return Err(ApplyError::Poison("an event for a person who was never registered".into()));
        }
        Ok(())
    }
}

/// A registration waiting for its batch insert.
struct NewPerson<'c> {
    id: Uuid,
    categories: Vec<crate::domain::Category>,
    country: String,
    interests: Vec<crate::domain::Interest>,
    details: Personal<pb::PersonDetails>,
    contacts: Personal<pb::Contacts>,
    commit: &'c StoredCommit,
}

fn joined_ints(xs: impl Iterator<Item = i32>) -> String {
    xs.map(|x| x.to_string()).collect::<Vec<_>>().join(",")
}

/// Inserts registrations in one statement, then raises their duplicate flags in one more.
async fn insert_people(conn: &mut PgConnection, people: Vec<NewPerson<'_>>) -> Result<(), sqlx::Error> {
    if people.is_empty() {
        return Ok(());
    }
    let n = people.len();
    let mut ids = Vec::with_capacity(n);
    let mut categories = Vec::with_capacity(n);
    let mut countries = Vec::with_capacity(n);
    let mut interests = Vec::with_capacity(n);
    let mut emails = Vec::with_capacity(n);
    let mut phones = Vec::with_capacity(n);
    let mut at = Vec::with_capacity(n);
    let mut positions = Vec::with_capacity(n);
    let mut d_cols = Vec::with_capacity(n);
    for p in people {
        ids.push(p.id);
        categories.push(joined_ints(p.categories.iter().map(|c| *c as i32)));
        countries.push(p.country);
        interests.push(joined_ints(p.interests.iter().map(|i| *i as i32)));
        let contacts = p.contacts.open().cloned().unwrap_or_default();
        emails.push(non_empty(&contacts.email));
        phones.push(non_empty(&contacts.phone));
        at.push(p.commit.recorded_at);
        positions.push(position(p.commit));
        d_cols.push(DetailCols::of(&p.details));
    }
    let col = |f: fn(&DetailCols) -> Option<String>| d_cols.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO registry.people AS p (person_id, status, categories, country, interests, \
           given_name, family_name, name_key, birth_date, sex, idnp, email, phone, home_district, \
           district_key, home_locality, languages, education, profession, profession_key, \
           scientific_field, field_key, skills, skills_key, registered_at, updated_at, version) \
         SELECT id, 'active', string_to_array(cats, ',')::int[], country, string_to_array(ints, ',')::int[], \
           given, family, name_key, birth, sex, idnp, email, phone, district, district_key, locality, \
           string_to_array(langs, chr(31)), edu, profession, profession_key, field, field_key, \
           string_to_array(skills, chr(31)), string_to_array(skills_key, chr(31)), at, at, pos \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
           $8::date[], $9::int4[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], \
           $16::text[], $17::bytea[], $18::text[], $19::text[], $20::text[], $21::text[], $22::text[], \
           $23::text[], $24::timestamptz[], $25::int8[]) \
           AS n(id, cats, country, ints, given, family, name_key, birth, sex, idnp, email, phone, district, \
                district_key, locality, langs, edu, profession, profession_key, field, field_key, skills, \
                skills_key, at, pos) \
         ON CONFLICT (person_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&categories)
    .bind(&countries)
    .bind(&interests)
    .bind(col(|d| d.given_name.clone()))
    .bind(col(|d| d.family_name.clone()))
    .bind(col(|d| d.name_key.clone()))
    .bind(d_cols.iter().map(|d| d.birth_date).collect::<Vec<_>>())
    .bind(d_cols.iter().map(|d| d.sex).collect::<Vec<_>>())
    .bind(col(|d| d.idnp.clone()))
    .bind(&emails)
    .bind(&phones)
    .bind(col(|d| d.home_district.clone()))
    .bind(col(|d| d.district_key.clone()))
    .bind(col(|d| d.home_locality.clone()))
    .bind(col(|d| d.languages.clone()))
    .bind(d_cols.iter().map(|d| d.education.clone()).collect::<Vec<_>>())
    .bind(col(|d| d.profession.clone()))
    .bind(col(|d| d.profession_key.clone()))
    .bind(col(|d| d.scientific_field.clone()))
    .bind(col(|d| d.field_key.clone()))
    .bind(col(|d| d.skills.clone()))
    .bind(col(|d| d.skills_key.clone()))
    .bind(&at)
    .bind(&positions)
    .execute(&mut *conn)
    .await?;
    let mut flag_ids = Vec::new();
    let mut name_keys = Vec::new();
    let mut births = Vec::new();
    let mut flag_at = Vec::new();
    for (i, d) in d_cols.iter().enumerate() {
        if let (Some(k), Some(b)) = (&d.name_key, d.birth_date) {
            flag_ids.push(ids[i]);
            name_keys.push(k.clone());
            births.push(b);
            flag_at.push(at[i]);
        }
    }
    raise_flags_many(conn, &flag_ids, &name_keys, &births, &flag_at).await
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
