//! The `grants.people` projection: this service's own view of the registry,
//! from the registry's events (stream ACASA_REGISTRY) — what a call's
//! eligibility rules are checked on ([`facts`]).
//!
//! From the events in clear: who exists, their categories, their programme
//! consent, merges and erasure. Opened by the registry's `PersonDataService`
//! for the purpose *eligibility* (this service holds no data keys and never
//! reads the registry's tables): from the sealed `details` of
//! `PersonRegistered` and `PersonDetailsUpdated`, birth date, sex, home
//! district and home locality; from the sealed `return_details` of
//! `ReturnRecorded`, the district and locality returned to (the registry
//! opens nothing else of a return, and only for eligibility).
//!
//! The applicant's place (`applicant_place`), kept in `district`,
//! `district_folded`, `locality` and `rural` (the locality classified rural
//! or not by [`crate::domain::localities`], in that district): the place of the
//! latest `ReturnRecorded` (a later one is a correction and replaces the
//! earlier) if it names a district or a locality — as a whole, district and
//! locality together, the one it leaves out unknown — else the home place.
//! A return naming no place says nothing of where the person lives, so the
//! home place stands. Both sides are kept (`home_district`,
//! `home_locality`, `return_district`, `return_locality`) so that a change
//! of either (details updated after a return, a corrected return) gives the
//! place anew, in any order of events.
//!
//! Erasure sets every personal column NULL (no categories, no consent, no
//! merge), and nothing is written over an erased person afterwards. Once
//! erased, the registry opens none of the person's fields any more, also
//! for a rebuild from the start of the log: a rebuild after an erasure
//! equals the live model.

use std::sync::Arc;

use acasa_domain::EncodedEvent;
use acasa_domain::formats::fold;
use acasa_eventstore::StoredCommit;
use acasa_projection::{ApplyError, Projection};
use acasa_proto::registry::v1 as reg;
use acasa_runtime::person_data::registry_events::{
    CATEGORY_ADDED, CATEGORY_REMOVED, CONSENT_GIVEN, CONSENT_WITHDRAWN, DETAILS_UPDATED, ERASED, MERGED, REGISTERED,
    RETURN_RECORDED, SUBJECT_PREFIX,
};
use acasa_runtime::person_data::{Opened, PersonData, SealedField, open_all};
use chrono::NaiveDate;
use futures::future::BoxFuture;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::codec::{category_of, sex_of};
use crate::domain::eligibility::{PersonFacts, Standing};
use crate::domain::localities;

/// `grants.people.status`: active.
const ACTIVE: i16 = 1;
/// `grants.people.status`: merged into another record.
const MERGED_STATUS: i16 = 2;
/// `grants.people.status`: erased.
const ERASED_STATUS: i16 = 3;

/// Builds `grants.people` from the registry's log, opening sealed details
/// and return details through `data` (which must ask for the purpose
/// eligibility).
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

fn small(v: i32) -> i16 {
    i16::try_from(v).unwrap_or(0)
}

/// What one registry event changes in a person's row (besides the facts of
/// its sealed details).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Change {
    /// A new row with these categories.
    Registered(Vec<i16>),
    /// A category added or removed.
    Category {
        /// The category.
        category: i16,
        /// Added, else removed.
        added: bool,
    },
    /// Programme consent given or withdrawn.
    ProgrammeConsent(bool),
    /// Merged into the survivor.
    Merged(Uuid),
    /// Erased.
    Erased,
}

/// What `e` changes, if anything this service keeps.
fn change(e: &EncodedEvent) -> Result<Option<Change>, ApplyError> {
    Ok(Some(match e.type_name.as_str() {
        REGISTERED => {
            let m: reg::PersonRegistered = decode(&e.data)?;
            let mut categories: Vec<i16> = m.categories.iter().map(|c| small(*c)).collect();
            categories.sort_unstable();
            categories.dedup();
            Change::Registered(categories)
        }
        CATEGORY_ADDED => {
            Change::Category { category: small(decode::<reg::CategoryAdded>(&e.data)?.category), added: true }
        }
        CATEGORY_REMOVED => {
            Change::Category { category: small(decode::<reg::CategoryRemoved>(&e.data)?.category), added: false }
        }
        CONSENT_GIVEN | CONSENT_WITHDRAWN => {
            let purpose = if e.type_name == CONSENT_GIVEN {
                decode::<reg::ConsentGiven>(&e.data)?.purpose
            } else {
                decode::<reg::ConsentWithdrawn>(&e.data)?.purpose
            };
            if purpose != reg::ConsentPurpose::ProgrammeParticipation as i32 {
                return Ok(None);
            }
            Change::ProgrammeConsent(e.type_name == CONSENT_GIVEN)
        }
        MERGED => {
            let m: reg::PersonMerged = decode(&e.data)?;
            Change::Merged(Uuid::parse_str(&m.survivor_person_id).map_err(|_| poison("merge without a survivor id"))?)
        }
        ERASED => Change::Erased,
        _ => return Ok(None),
    }))
}

/// The sealed field of `e` to open, if it carries one this projection
/// keeps: the `details` of a registration or a details update, the
/// `return_details` of a return.
fn sealed_field(person: Uuid, e: &EncodedEvent) -> Result<Option<SealedField>, ApplyError> {
    let (field, sealed) = match e.type_name.as_str() {
        REGISTERED => ("details", decode::<reg::PersonRegistered>(&e.data)?.details),
        DETAILS_UPDATED => ("details", decode::<reg::PersonDetailsUpdated>(&e.data)?.details),
        RETURN_RECORDED => ("return_details", decode::<reg::ReturnRecorded>(&e.data)?.return_details),
        _ => return Ok(None),
    };
    Ok(sealed.map(|sealed| SealedField { person, event_type: e.type_name.clone(), field, sealed }))
}

/// A place in Moldova as the registry records it: a district (raion) and a
/// locality, each trimmed, either unstated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Place {
    district: Option<String>,
    locality: Option<String>,
}

impl Place {
    /// From the registry's strings (empty: unstated).
    fn of(district: &str, locality: &str) -> Self {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Self { district: text(district), locality: text(locality) }
    }

    /// Names a district or a locality.
    fn is_stated(&self) -> bool {
        self.district.is_some() || self.locality.is_some()
    }
}

/// The applicant's place: the return's if it names one (as a whole), else
/// the home place.
fn applicant_place(home: Place, returned: Place) -> Place {
    if returned.is_stated() { returned } else { home }
}

/// The columns of the applicant's place.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct PlaceColumns {
    district: Option<String>,
    district_folded: Option<String>,
    locality: Option<String>,
    rural: Option<bool>,
}

/// The place's columns, its locality classified in its district.
fn place_columns(place: Place) -> PlaceColumns {
    let Place { district, locality } = place;
    PlaceColumns {
        district_folded: district.as_deref().map(fold),
        rural: locality.as_deref().and_then(|l| localities::is_rural_in(district.as_deref().unwrap_or_default(), l)),
        district,
        locality,
    }
}

async fn write(conn: &mut PgConnection, person: Uuid, position: i64, change: Change) -> Result<(), ApplyError> {
    let query = match change {
        Change::Registered(categories) => sqlx::query(
            "INSERT INTO grants.people (person_id, status, programme_consent, categories, position) \
             VALUES ($1, 1, false, $2, $3) ON CONFLICT (person_id) DO NOTHING",
        )
        .bind(person)
        .bind(categories)
        .bind(position),
        Change::Category { category, added: true } => sqlx::query(
            "UPDATE grants.people SET categories = CASE WHEN $2 = ANY(categories) THEN categories \
             ELSE array_append(categories, $2) END WHERE person_id = $1 AND status <> 3",
        )
        .bind(person)
        .bind(category),
        Change::Category { category, added: false } => sqlx::query(
            "UPDATE grants.people SET categories = array_remove(categories, $2) WHERE person_id = $1 AND status <> 3",
        )
        .bind(person)
        .bind(category),
        Change::ProgrammeConsent(given) => {
            sqlx::query("UPDATE grants.people SET programme_consent = $2 WHERE person_id = $1 AND status <> 3")
                .bind(person)
                .bind(given)
        }
        Change::Merged(survivor) => {
            sqlx::query("UPDATE grants.people SET status = 2, merged_into = $2 WHERE person_id = $1 AND status <> 3")
                .bind(person)
                .bind(survivor)
        }
        Change::Erased => sqlx::query(
            "INSERT INTO grants.people (person_id, status, programme_consent, categories, position) \
             VALUES ($1, 3, false, '{}', $2) ON CONFLICT (person_id) DO UPDATE SET status = 3, merged_into = NULL, \
             programme_consent = false, categories = '{}', birth_date = NULL, sex = NULL, district = NULL, \
             district_folded = NULL, locality = NULL, rural = NULL, home_district = NULL, home_locality = NULL, \
             return_district = NULL, return_locality = NULL",
        )
        .bind(person)
        .bind(position),
    };
    query.execute(&mut *conn).await?;
    Ok(())
}

/// A row's home place and place returned to, as an update leaves them.
type Places = (Option<String>, Option<String>, Option<String>, Option<String>);

/// Keeps what the registry opened: the facts of details (the home place
/// among them) or the place of a return, then the applicant's place anew
/// from both.
async fn keep(conn: &mut PgConnection, person: Uuid, opened: Opened) -> Result<(), ApplyError> {
    let places: Option<Places> = match opened {
        Opened::Eligibility(f) => {
            let home = Place::of(&f.home_district, &f.home_locality);
            let sex = (f.sex != reg::Sex::Unspecified as i32).then(|| small(f.sex));
            sqlx::query_as(
                "UPDATE grants.people SET birth_date = $2, sex = $3, home_district = $4, home_locality = $5 \
                 WHERE person_id = $1 AND status <> 3 \
                 RETURNING home_district, home_locality, return_district, return_locality",
            )
            .bind(person)
            .bind(f.birth_date)
            .bind(sex)
            .bind(home.district)
            .bind(home.locality)
            .fetch_optional(&mut *conn)
            .await?
        }
        Opened::ReturnPlace(p) => {
            let returned = Place::of(&p.district, &p.locality);
            sqlx::query_as(
                "UPDATE grants.people SET return_district = $2, return_locality = $3 \
                 WHERE person_id = $1 AND status <> 3 \
                 RETURNING home_district, home_locality, return_district, return_locality",
            )
            .bind(person)
            .bind(returned.district)
            .bind(returned.locality)
            .fetch_optional(&mut *conn)
            .await?
        }
        // Not openable (the person erased): nothing is kept; the erasure
        // event clears what was.
        Opened::Gone => return Ok(()),
        // Asked for the wrong purpose: a configuration error, retried (the
        // worker shows it stuck) rather than rows left without facts.
        Opened::Profile(_) | Opened::Contacts { .. } | Opened::Languages(_) => {
            return Err(ApplyError::Unavailable(
                "the registry answered a profile: grants.people must ask for the purpose eligibility".into(),
            ));
        }
    };
    // No row (not registered here) or erased: nothing to place.
    let Some((home_district, home_locality, return_district, return_locality)) = places else { return Ok(()) };
    let place = applicant_place(
        Place { district: home_district, locality: home_locality },
        Place { district: return_district, locality: return_locality },
    );
    let c = place_columns(place);
    sqlx::query(
        "UPDATE grants.people SET district = $2, district_folded = $3, locality = $4, rural = $5 \
         WHERE person_id = $1 AND status <> 3",
    )
    .bind(person)
    .bind(c.district)
    .bind(c.district_folded)
    .bind(c.locality)
    .bind(c.rural)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Projection for PeopleProjection {
    fn name(&self) -> &str {
        crate::PEOPLE_PROJECTION
    }

    fn reset<'c>(&'c self, conn: &'c mut PgConnection) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query("TRUNCATE grants.people").execute(conn).await?;
            Ok(())
        })
    }

    fn apply<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        commits: &'c [StoredCommit],
    ) -> BoxFuture<'c, Result<(), ApplyError>> {
        Box::pin(async move {
            // Every sealed field of the batch this projection keeps (details,
            // return details), opened in as few calls as possible; which
            // events (in order) carry one.
            let mut fields = Vec::new();
            let mut carries = Vec::new();
            for c in commits {
                if let Some(person) = person_of(c) {
                    for e in &c.events {
                        let field = sealed_field(person, e)?;
                        carries.push(field.is_some());
                        fields.extend(field);
                    }
                }
            }
            let mut carries = carries.into_iter();
            let mut opened = open_all(&*self.data, fields).await.map_err(ApplyError::Unavailable)?.into_iter();
            let mut touched = Vec::new();
            for c in commits {
                let Some(person) = person_of(c) else { continue };
                touched.push(person);
                let position = i64::try_from(c.sequence).unwrap_or(i64::MAX);
                for e in &c.events {
                    if let Some(change) = change(e)? {
                        write(conn, person, position, change).await?;
                    }
                    if carries.next().unwrap_or(false) {
                        let o = opened.next().ok_or_else(|| poison("the registry answered fewer fields than asked"))?;
                        keep(conn, person, o).await?;
                    }
                }
                sqlx::query("UPDATE grants.people SET position = $2 WHERE person_id = $1")
                    .bind(person)
                    .bind(position)
                    .execute(&mut *conn)
                    .await?;
            }
            // Their applications carry the funnel's dimensions.
            touched.sort_unstable();
            touched.dedup();
            crate::projection::refresh_applicants(conn, &touched).await?;
            Ok(())
        })
    }
}

/// A row of `grants.people` as [`facts`] reads it.
type Row = (i16, Option<Uuid>, bool, Vec<i16>, Option<NaiveDate>, Option<i16>, Option<String>, Option<bool>);

/// The facts of a row (none: not seen).
fn person_facts(row: Option<Row>) -> PersonFacts {
    let Some((status, merged_into, programme_consent, categories, birth_date, sex, district, rural)) = row else {
        return PersonFacts::default();
    };
    let standing = match (status, merged_into) {
        (ACTIVE, _) => Standing::Active,
        (MERGED_STATUS, Some(survivor)) => Standing::Merged(survivor),
        (ERASED_STATUS, _) => Standing::Erased,
        // Not a status this projection writes.
        _ => Standing::Unknown,
    };
    if standing == Standing::Erased {
        return PersonFacts { standing, ..PersonFacts::default() };
    }
    let mut categories: Vec<_> = categories.into_iter().filter_map(|c| category_of(i32::from(c))).collect();
    categories.sort_unstable();
    categories.dedup();
    PersonFacts {
        standing,
        programme_consent,
        birth_date,
        sex: sex.and_then(|s| sex_of(i32::from(s))),
        rural,
        categories,
        district,
    }
}

/// What this service knows of `person` from the registry's log (a person
/// not seen yet: [`Standing::Unknown`]), for checking a call's eligibility
/// rules.
pub async fn facts(pool: &PgPool, person: Uuid) -> Result<PersonFacts, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT status, merged_into, programme_consent, categories, birth_date, sex, district, rural \
         FROM grants.people WHERE person_id = $1",
    )
    .bind(person)
    .fetch_optional(pool)
    .await?;
    Ok(person_facts(row))
}

#[cfg(test)]
mod tests {
    use acasa_proto::Message;

    use super::*;
    use crate::domain::{Category, Sex};

    fn event(type_name: &str, m: &impl Message) -> EncodedEvent {
        EncodedEvent { type_name: type_name.to_owned(), schema_version: 1, data: m.encode_to_vec() }
    }

    fn sealed() -> reg::Sealed {
        reg::Sealed { scheme: 1, ciphertext: vec![1, 2, 3] }
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn registry_events_become_changes() {
        let registered = reg::PersonRegistered {
            person_id: Uuid::from_u128(1).to_string(),
            categories: vec![6, 2, 6],
            details: Some(sealed()),
            ..Default::default()
        };
        assert_eq!(change(&event(REGISTERED, &registered)).unwrap(), Some(Change::Registered(vec![2, 6])));
        assert_eq!(
            change(&event(CATEGORY_ADDED, &reg::CategoryAdded { category: 5 })).unwrap(),
            Some(Change::Category { category: 5, added: true })
        );
        assert_eq!(
            change(&event(CATEGORY_REMOVED, &reg::CategoryRemoved { category: 2 })).unwrap(),
            Some(Change::Category { category: 2, added: false })
        );
        let programme = reg::ConsentPurpose::ProgrammeParticipation as i32;
        let given = reg::ConsentGiven { purpose: programme, ..Default::default() };
        assert_eq!(change(&event(CONSENT_GIVEN, &given)).unwrap(), Some(Change::ProgrammeConsent(true)));
        let withdrawn = reg::ConsentWithdrawn { purpose: programme, ..Default::default() };
        assert_eq!(change(&event(CONSENT_WITHDRAWN, &withdrawn)).unwrap(), Some(Change::ProgrammeConsent(false)));
        let sharing = reg::ConsentGiven {
            purpose: reg::ConsentPurpose::PartnerSharing as i32,
            partner_id: Uuid::from_u128(7).to_string(),
            ..Default::default()
        };
        assert_eq!(change(&event(CONSENT_GIVEN, &sharing)).unwrap(), None, "another purpose");
        let survivor = Uuid::from_u128(9);
        let merged = reg::PersonMerged { survivor_person_id: survivor.to_string() };
        assert_eq!(change(&event(MERGED, &merged)).unwrap(), Some(Change::Merged(survivor)));
        assert!(matches!(change(&event(MERGED, &reg::PersonMerged::default())), Err(ApplyError::Poison(_))));
        assert_eq!(change(&event(ERASED, &reg::PersonErased::default())).unwrap(), Some(Change::Erased));
        let other = event("acasa.registry.v1.DuplicateDismissed", &reg::DuplicateDismissed::default());
        assert_eq!(change(&other).unwrap(), None);
        let broken = EncodedEvent { type_name: REGISTERED.into(), schema_version: 1, data: vec![0xff, 0xff] };
        assert!(matches!(change(&broken), Err(ApplyError::Poison(_))));
    }

    #[test]
    fn details_and_return_details_are_opened() {
        let person = Uuid::from_u128(1);
        let registered =
            reg::PersonRegistered { details: Some(sealed()), contacts: Some(sealed()), ..Default::default() };
        let f = sealed_field(person, &event(REGISTERED, &registered)).unwrap().unwrap();
        assert_eq!((f.person, f.event_type.as_str(), f.field, f.sealed), (person, REGISTERED, "details", sealed()));
        let updated = reg::PersonDetailsUpdated { details: Some(sealed()), ..Default::default() };
        assert_eq!(
            sealed_field(person, &event(DETAILS_UPDATED, &updated)).unwrap().unwrap().event_type,
            DETAILS_UPDATED
        );
        let contacts = reg::ContactsUpdated { contacts: Some(sealed()) };
        assert!(sealed_field(person, &event("acasa.registry.v1.ContactsUpdated", &contacts)).unwrap().is_none());
        let returned = reg::ReturnRecorded { return_details: Some(sealed()) };
        let f = sealed_field(person, &event(RETURN_RECORDED, &returned)).unwrap().unwrap();
        assert_eq!((f.event_type.as_str(), f.field), (RETURN_RECORDED, "return_details"));
        assert!(sealed_field(person, &event(RETURN_RECORDED, &reg::ReturnRecorded::default())).unwrap().is_none());
        assert!(sealed_field(person, &event(REGISTERED, &reg::PersonRegistered::default())).unwrap().is_none());
        let broken = EncodedEvent { type_name: RETURN_RECORDED.into(), schema_version: 1, data: vec![0xff, 0xff] };
        assert!(matches!(sealed_field(person, &broken), Err(ApplyError::Poison(_))));
    }

    #[test]
    fn places_become_columns_with_the_locality_classified() {
        let place = Place::of(" Ialoveni ", "Costești");
        assert_eq!(place, Place { district: Some("Ialoveni".into()), locality: Some("Costești".into()) });
        assert_eq!(
            place_columns(place),
            PlaceColumns {
                district: Some("Ialoveni".into()),
                district_folded: Some("ialoveni".into()),
                locality: Some("Costești".into()),
                rural: Some(true),
            },
            "the village of Ialoveni, not the town of Rîșcani"
        );
        let town = place_columns(Place::of("Rîșcani", "Costești"));
        assert_eq!((town.rural, town.district_folded.as_deref()), (Some(false), Some("riscani")));
        assert_eq!(place_columns(Place::of(" ", "")), PlaceColumns::default(), "nothing stated: nothing known");
        assert_eq!(place_columns(Place::of("", "Giurgiulești")).rural, Some(true));
    }

    #[test]
    fn the_return_place_if_it_names_one_else_home() {
        let home = Place::of("Rîșcani", "Costești");
        let back = Place::of("Ialoveni", "Costești");
        assert_eq!(applicant_place(home.clone(), Place::default()), home, "no return");
        assert_eq!(applicant_place(home.clone(), back.clone()), back);
        // As a whole: the locality of one place is not put in the district of another.
        let district_only = Place::of("Cahul", "");
        assert_eq!(applicant_place(home.clone(), district_only.clone()), district_only);
        let locality_only = Place::of("", "Giurgiulești");
        assert_eq!(applicant_place(home.clone(), locality_only.clone()), locality_only);
        // A return naming no place says nothing of where: home stands.
        assert_eq!(applicant_place(home.clone(), Place::of("", " ")), home);
        // The same locality name is a town at home and a village where they returned.
        assert_eq!(place_columns(applicant_place(home.clone(), Place::default())).rural, Some(false));
        assert_eq!(place_columns(applicant_place(home, back)).rural, Some(true));
    }

    #[test]
    fn rows_become_person_facts() {
        let row = |status: i16, merged: Option<Uuid>| -> Row {
            (status, merged, true, vec![6, 2, 0, 99, 6], Some(d(1998, 4, 2)), Some(1), Some("Cahul".into()), Some(true))
        };
        assert_eq!(person_facts(None), PersonFacts::default());
        assert_eq!(person_facts(None).standing, Standing::Unknown);
        assert_eq!(
            person_facts(Some(row(1, None))),
            PersonFacts {
                standing: Standing::Active,
                programme_consent: true,
                birth_date: Some(d(1998, 4, 2)),
                sex: Some(Sex::Female),
                rural: Some(true),
                categories: vec![Category::Returnee, Category::WomanEntrepreneur],
                district: Some("Cahul".into()),
            }
        );
        let survivor = Uuid::from_u128(9);
        assert_eq!(person_facts(Some(row(2, Some(survivor)))).standing, Standing::Merged(survivor));
        assert_eq!(person_facts(Some(row(2, None))).standing, Standing::Unknown);
        assert_eq!(person_facts(Some(row(3, None))), PersonFacts { standing: Standing::Erased, ..Default::default() });
        assert_eq!(person_facts(Some(row(7, None))).standing, Standing::Unknown);
        let unstated = (1, None, false, Vec::new(), None, None, None, None);
        let p = person_facts(Some(unstated));
        assert_eq!((p.sex, p.rural, p.district, p.birth_date), (None, None, None, None));
    }
}
