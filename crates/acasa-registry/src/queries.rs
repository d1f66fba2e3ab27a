//! The registry's queries: the `registry` schema's read model only, after
//! waiting for the caller's minimum position; rows mapped to API messages.

use acasa_domain::Violations;
use acasa_proto::{
    Message as _,
    registry::v1::{self as pb},
};
use acasa_runtime::{
    ApiError,
    page::{self, PageRequest},
};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Postgres, QueryBuilder, Row as _, postgres::PgRow};
use uuid::Uuid;

use crate::grpc::RegistryService;
use crate::{
    codec::timestamp,
    domain::{Category, Interest, proto_date},
    validate::{self, fold},
};

impl RegistryService {
    pub(crate) async fn at_position(&self, min: u64, deadline: tokio::time::Instant) -> Result<u64, ApiError> {
        Ok(self.positions.at(crate::PROJECTION, self.repo.store().stream_name(), min, deadline).await?)
    }

    pub(crate) async fn get(
        &self,
        req: &pb::GetPersonRequest,
        deadline: tokio::time::Instant,
    ) -> Result<pb::GetPersonResponse, ApiError> {
        let mut v = Violations::new();
        let id = validate::id(&mut v, "person_id", &req.person_id);
        let Some(id) = id else { return Err(v.into()) };
        let position = self.at_position(req.min_position, deadline).await?;
        // One round trip: the row, its consents, history and open flags.
        let row = sqlx::query(
            "SELECT p.*, \
               (SELECT coalesce(json_agg(json_build_array(c.purpose, c.partner_id, c.given, c.channel, \
                   (extract(epoch FROM c.changed_at) * 1000000)::int8) ORDER BY c.purpose, c.partner_id), '[]') \
                FROM registry.consents c WHERE c.person_id = p.person_id)::text AS consents_json, \
               (SELECT coalesce(json_agg(json_build_array(h.purpose, h.partner_id, h.given, h.channel, \
                   (extract(epoch FROM h.at) * 1000000)::int8, h.recorded_by) ORDER BY h.position, h.seq), '[]') \
                FROM registry.consent_history h WHERE h.person_id = p.person_id)::text AS history_json, \
               ARRAY(SELECT CASE WHEN f.person_id = p.person_id THEN f.other_id ELSE f.person_id END \
                FROM registry.duplicate_flags f \
                WHERE (f.person_id = p.person_id OR f.other_id = p.person_id) AND f.status = 'open' ORDER BY 1) \
                 AS duplicates \
             FROM registry.people p WHERE p.person_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no person {id}")))?;
        let mut person = person_of(&row)?;
        let consents: Vec<(i32, Uuid, bool, i32, i64)> = json_column(&row, "consents_json")?;
        person.consents = consents
            .into_iter()
            .map(|(purpose, partner, given, channel, micros)| pb::Consent {
                purpose,
                partner_id: if partner.is_nil() { String::new() } else { partner.to_string() },
                given,
                channel,
                changed_at: Some(micros_timestamp(micros)),
            })
            .collect();
        let history: Vec<(i32, Option<Uuid>, bool, i32, i64, String)> = json_column(&row, "history_json")?;
        person.consent_history = history
            .into_iter()
            .map(|(purpose, partner, given, channel, micros, recorded_by)| pb::ConsentChange {
                purpose,
                partner_id: partner.map(|p| p.to_string()).unwrap_or_default(),
                given,
                channel,
                at: Some(micros_timestamp(micros)),
                recorded_by,
            })
            .collect();
        let duplicates: Vec<Uuid> = row.try_get("duplicates")?;
        person.possible_duplicates = duplicates.iter().map(Uuid::to_string).collect();
        Ok(pb::GetPersonResponse { person: Some(person), position })
    }

    pub(crate) async fn search(
        &self,
        req: &pb::SearchPeopleRequest,
        deadline: tokio::time::Instant,
    ) -> Result<pb::SearchPeopleResponse, ApiError> {
        let mut v = Violations::new();
        let categories = validate::categories(&mut v, "categories", &req.categories, false);
        let country = (!req.country.is_empty()).then(|| validate::country(&mut v, "country", &req.country));
        let name = fold(req.name.trim());
        if !req.name.is_empty() && name.chars().count() < 2 {
            v.add("name", "must be at least 2 characters");
        }
        if req.name.chars().count() > validate::NAME_MAX * 2 {
            v.add("name", format!("must be at most {} characters", validate::NAME_MAX * 2));
        }
        let mut skills = Vec::new();
        if v.check("skills", acasa_domain::formats::list_len(req.skills.len(), validate::SKILLS_MAX)).is_some() {
            for (i, skill) in req.skills.iter().enumerate() {
                if skill.chars().count() > validate::SKILL_MAX {
                    v.add(format!("skills[{i}]"), format!("must be at most {} characters", validate::SKILL_MAX));
                }
            }
            skills = req.skills.iter().map(|s| fold(s.trim())).filter(|s| !s.is_empty()).collect();
        }
        for (field, value) in [("district", &req.district), ("field", &req.field), ("profession", &req.profession)] {
            if value.chars().count() > validate::LONG_TEXT_MAX {
                v.add(field, format!("must be at most {} characters", validate::LONG_TEXT_MAX));
            }
        }
        let page = page::request(&mut v, req.page_size, &req.page_token);
        let (Some(categories), Some(page)) = (categories, page) else { return Err(v.into()) };
        v.into_result()?;
        let position = self.at_position(req.min_position, deadline).await?;
        let mut q = QueryBuilder::<Postgres>::new(SUMMARY_SELECT);
        if !req.include_inactive {
            q.push(" AND status = 'active'");
        }
        if !categories.is_empty() {
            q.push(" AND categories && ").push_bind(categories.iter().map(|c| *c as i32).collect::<Vec<_>>());
        }
        if let Some(Some(country)) = country {
            q.push(" AND country = ").push_bind(country);
        }
        if !req.district.trim().is_empty() {
            q.push(" AND district_key = ").push_bind(fold(req.district.trim()));
        }
        push_like(&mut q, "field_key", &req.field);
        push_like(&mut q, "profession_key", &req.profession);
        push_like(&mut q, "name_key", &req.name);
        if !skills.is_empty() {
            q.push(" AND skills_key @> ").push_bind(skills);
        }
        let (people, next_page_token) = self.page_of(q, page).await?;
        Ok(pb::SearchPeopleResponse { people, next_page_token, position })
    }

    pub(crate) async fn candidates(
        &self,
        req: &pb::ListCandidatesRequest,
        deadline: tokio::time::Instant,
    ) -> Result<pb::ListCandidatesResponse, ApiError> {
        let mut v = Violations::new();
        let wanted = match pb::CandidatePurpose::try_from(req.purpose) {
            Ok(pb::CandidatePurpose::ScientificAssignment) => {
                Some((vec![Category::DiasporaScientist], Interest::ScientificAssignment))
            }
            Ok(pb::CandidatePurpose::Placement) => Some((vec![Category::OverseasGraduate], Interest::Placement)),
            Ok(pb::CandidatePurpose::Entrepreneurship) => Some((
                vec![Category::YouthEntrepreneur, Category::WomanEntrepreneur],
                Interest::EntrepreneurshipSupport,
            )),
            Ok(pb::CandidatePurpose::Unspecified) => {
                v.add("purpose", "is required");
                None
            }
            Err(_) => {
                v.add("purpose", "is not a known purpose");
                None
            }
        };
        let country = (!req.country.is_empty()).then(|| validate::country(&mut v, "country", &req.country));
        let page = page::request(&mut v, req.page_size, &req.page_token);
        let (Some((categories, interest)), Some(page)) = (wanted, page) else { return Err(v.into()) };
        v.into_result()?;
        let position = self.at_position(req.min_position, deadline).await?;
        let mut q = QueryBuilder::<Postgres>::new(SUMMARY_SELECT);
        q.push(" AND status = 'active' AND programme_consent AND categories && ")
            .push_bind(categories.iter().map(|c| *c as i32).collect::<Vec<_>>())
            .push(" AND interests @> ")
            .push_bind(vec![interest as i32]);
        if let Some(Some(country)) = country {
            q.push(" AND country = ").push_bind(country);
        }
        push_like(&mut q, "field_key", &req.field);
        push_like(&mut q, "profession_key", &req.profession);
        let (people, next_page_token) = self.page_of(q, page).await?;
        Ok(pb::ListCandidatesResponse { people, next_page_token, position })
    }

    pub(crate) async fn page_of(
        &self,
        mut q: QueryBuilder<Postgres>,
        page: PageRequest<Uuid>,
    ) -> Result<(Vec<pb::PersonSummary>, String), ApiError> {
        if let Some(after) = page.after {
            q.push(" AND person_id > ").push_bind(after);
        }
        q.push(" ORDER BY person_id LIMIT ").push_bind(page.limit());
        // Not a prepared statement: a generic plan cannot use the trigram
        // indexes for `LIKE $n` and would scan the table for rare names.
        let rows = q.build().persistent(false).fetch_all(&self.pool).await?;
        let people = rows.iter().map(summary_of).collect::<Result<Vec<_>, _>>()?;
        let (people, token) = page.cut(people, |p| Uuid::parse_str(&p.person_id).unwrap_or_default());
        Ok((people, token))
    }

    pub(crate) async fn flags(
        &self,
        req: &pb::ListDuplicateFlagsRequest,
        deadline: tokio::time::Instant,
    ) -> Result<pb::ListDuplicateFlagsResponse, ApiError> {
        let mut v = Violations::new();
        let page = page::request::<(Uuid, Uuid)>(&mut v, req.page_size, &req.page_token);
        let Some(page) = page else { return Err(v.into()) };
        let position = self.at_position(req.min_position, deadline).await?;
        let rows: Vec<(Uuid, Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT person_id, other_id, raised_at FROM registry.duplicate_flags \
             WHERE status = 'open' AND (person_id, other_id) > ($1, $2) ORDER BY person_id, other_id LIMIT $3",
        )
        .bind(page.after.map(|a| a.0).unwrap_or_default())
        .bind(page.after.map(|a| a.1).unwrap_or_default())
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await?;
        let (rows, next_page_token) = page.cut(rows, |(a, b, _)| (*a, *b));
        let ids: Vec<Uuid> = rows.iter().flat_map(|(a, b, _)| [*a, *b]).collect();
        let mut q = QueryBuilder::<Postgres>::new(SUMMARY_SELECT);
        q.push(" AND person_id = ANY(").push_bind(ids).push(")");
        let summaries: Vec<pb::PersonSummary> =
            q.build().fetch_all(&self.pool).await?.iter().map(summary_of).collect::<Result<_, _>>()?;
        let find = |id: &Uuid| summaries.iter().find(|s| s.person_id == id.to_string()).cloned();
        let flags = rows
            .iter()
            .map(|(a, b, at)| pb::DuplicateFlag { person: find(a), other: find(b), raised_at: Some(timestamp(*at)) })
            .collect();
        Ok(pb::ListDuplicateFlagsResponse { flags, next_page_token, position })
    }

    pub(crate) async fn counts(
        &self,
        req: &pb::CountPeopleRequest,
        deadline: tokio::time::Instant,
    ) -> Result<pb::CountPeopleResponse, ApiError> {
        let position = self.at_position(req.min_position, deadline).await?;
        let rows: Vec<(i32, String, i64)> = sqlx::query_as(
            "SELECT c, country, count(*) FROM registry.people, unnest(categories) AS c \
             WHERE status <> 'merged' GROUP BY c, country ORDER BY c, country",
        )
        .fetch_all(&self.pool)
        .await?;
        let counts =
            rows.into_iter().map(|(category, country, people)| pb::PeopleCount { category, country, people }).collect();
        Ok(pb::CountPeopleResponse { counts, position })
    }
}

/// `AND <column> LIKE %folded%` when `value` is given (LIKE wildcards in it are literal).
fn push_like(q: &mut QueryBuilder<Postgres>, column: &str, value: &str) {
    let value = fold(value.trim());
    if value.is_empty() {
        return;
    }
    let escaped = value.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    q.push(format_args!(" AND {column} LIKE ")).push_bind(format!("%{escaped}%"));
}

const SUMMARY_SELECT: &str = "SELECT person_id, status, merged_into, categories, country, given_name, family_name, \
     home_district, profession, scientific_field FROM registry.people WHERE true";

fn json_column<T: serde::de::DeserializeOwned>(row: &PgRow, column: &str) -> Result<T, ApiError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| ApiError::Internal(format!("read model {column}: {e}")))
}

fn micros_timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1000).unwrap_or(0),
    }
}

fn status_of(s: &str) -> pb::PersonStatus {
    match s {
        "active" => pb::PersonStatus::Active,
        "merged" => pb::PersonStatus::Merged,
        "erased" => pb::PersonStatus::Erased,
        _ => pb::PersonStatus::Unspecified,
    }
}

fn text(row: &PgRow, column: &str) -> Result<String, sqlx::Error> {
    Ok(row.try_get::<Option<String>, _>(column)?.unwrap_or_default())
}

fn summary_of(row: &PgRow) -> Result<pb::PersonSummary, sqlx::Error> {
    let id: Uuid = row.try_get("person_id")?;
    let merged_into: Option<Uuid> = row.try_get("merged_into")?;
    Ok(pb::PersonSummary {
        person_id: id.to_string(),
        status: status_of(row.try_get("status")?) as i32,
        given_name: text(row, "given_name")?,
        family_name: text(row, "family_name")?,
        categories: row.try_get("categories")?,
        country_of_residence: row.try_get("country")?,
        home_district: text(row, "home_district")?,
        profession: text(row, "profession")?,
        scientific_field: text(row, "scientific_field")?,
        merged_into: merged_into.map(|m| m.to_string()).unwrap_or_default(),
    })
}

/// Education entries stored length-delimited in one column.
fn education_of(mut bytes: &[u8]) -> Vec<pb::Education> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        match pb::Education::decode_length_delimited(&mut bytes) {
            Ok(e) => out.push(e),
            Err(_) => break,
        }
    }
    out
}

fn person_of(row: &PgRow) -> Result<pb::Person, sqlx::Error> {
    let id: Uuid = row.try_get("person_id")?;
    let merged_into: Option<Uuid> = row.try_get("merged_into")?;
    let given_name: Option<String> = row.try_get("given_name")?;
    let details = match given_name {
        None => None,
        Some(given_name) => {
            let education: Vec<u8> = row.try_get::<Option<Vec<u8>>, _>("education")?.unwrap_or_default();
            Some(pb::PersonDetails {
                given_name,
                family_name: text(row, "family_name")?,
                birth_date: row.try_get::<Option<NaiveDate>, _>("birth_date")?.map(proto_date),
                sex: row.try_get::<Option<i32>, _>("sex")?.unwrap_or_default(),
                idnp: text(row, "idnp")?,
                home_district: text(row, "home_district")?,
                home_locality: text(row, "home_locality")?,
                languages: row.try_get::<Option<Vec<String>>, _>("languages")?.unwrap_or_default(),
                education: education_of(&education),
                profession: text(row, "profession")?,
                scientific_field: text(row, "scientific_field")?,
                skills: row.try_get::<Option<Vec<String>>, _>("skills")?.unwrap_or_default(),
            })
        }
    };
    let contacts = details.as_ref().map(|_| -> Result<pb::Contacts, sqlx::Error> {
        Ok(pb::Contacts { email: text(row, "email")?, phone: text(row, "phone")? })
    });
    let returned: bool = row.try_get("returned")?;
    let return_date: Option<NaiveDate> = row.try_get("return_date")?;
    let return_details = return_date.map(|d| -> Result<pb::ReturnDetails, sqlx::Error> {
        Ok(pb::ReturnDetails {
            return_date: Some(proto_date(d)),
            district: text(row, "return_district")?,
            locality: text(row, "return_locality")?,
        })
    });
    Ok(pb::Person {
        person_id: id.to_string(),
        status: status_of(row.try_get("status")?) as i32,
        merged_into: merged_into.map(|m| m.to_string()).unwrap_or_default(),
        categories: row.try_get("categories")?,
        country_of_residence: row.try_get("country")?,
        details,
        contacts: contacts.transpose()?,
        return_details: return_details.transpose()?,
        returned,
        interests: row.try_get("interests")?,
        consents: Vec::new(),
        consent_history: Vec::new(),
        possible_duplicates: Vec::new(),
        registered_at: Some(timestamp(row.try_get("registered_at")?)),
        updated_at: Some(timestamp(row.try_get("updated_at")?)),
        version: u64::try_from(row.try_get::<i64, _>("version")?).unwrap_or(0),
    })
}
