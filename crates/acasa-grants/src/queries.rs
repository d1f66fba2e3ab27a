//! The grants' queries: read models only (`grants.*`, built by
//! [`crate::projection`]; `grants.people` and `grants.referral_support` by
//! this service's projections of the registry and of the referral system),
//! after waiting for the caller's minimum positions; rows mapped to API
//! messages with what a reader may see (officials' and trainees' names and
//! contacts for programme staff only). Lists are keyset-paged
//! ([`acasa_runtime::page`]). The roles are checked by [`crate::grpc`].

use std::{collections::BTreeMap, sync::LazyLock};

use acasa_domain::{Violations, formats::fold};
use acasa_proto::{Message, grants::v1 as pb, registry::v1 as registry, r#type::v1::Money as PbMoney};
use acasa_runtime::{ApiError, page};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Row as _, postgres::PgRow};
use tokio::time::Instant;
use uuid::Uuid;

use crate::{
    codec::date,
    domain::scoring::{Criterion, Evaluation},
    grpc::{GrantService, Reader},
    validate,
};

// ------------------------------------------------------------ values

fn money(minor: i64, currency: &str) -> Option<PbMoney> {
    Some(PbMoney { amount_minor: minor, currency: currency.to_owned() })
}

fn n32(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn text(r: &PgRow, column: &str) -> Result<String, sqlx::Error> {
    Ok(r.try_get::<Option<String>, _>(column)?.unwrap_or_default())
}

fn optional_date(r: &PgRow, column: &str) -> Result<Option<acasa_proto::r#type::v1::Date>, sqlx::Error> {
    Ok(r.try_get::<Option<NaiveDate>, _>(column)?.map(date))
}

/// A protobuf message the projection stored.
fn decoded<M: Message + Default>(r: &PgRow, column: &str) -> Result<Option<M>, ApiError> {
    let Some(bytes) = r.try_get::<Option<Vec<u8>>, _>(column)? else { return Ok(None) };
    M::decode(bytes.as_slice()).map(Some).map_err(|e| ApiError::Internal(format!("read model: {column}: {e}")))
}

fn optional_id(v: &mut Violations, field: &str, s: &str) -> Option<Option<Uuid>> {
    if s.is_empty() { Some(None) } else { validate::id(v, field, s).map(Some) }
}

fn optional_folded(v: &mut Violations, field: &str, s: &str, max: usize) -> Option<Option<String>> {
    if s.is_empty() { Some(None) } else { validate::text(v, field, s, max).map(|t| Some(fold(&t))) }
}

/// An enum filter: unset for any, else a known value.
fn enum_filter<E: TryFrom<i32>>(v: &mut Violations, field: &str, n: i32, what: &str) -> Option<Option<i16>> {
    if n == 0 {
        return Some(None);
    }
    match (E::try_from(n), i16::try_from(n)) {
        (Ok(_), Ok(n)) => Some(Some(n)),
        _ => {
            v.add(field, format!("must be a known {what} (or unset)"));
            None
        }
    }
}

// ------------------------------------------------------------ age bands

/// The funnel's age bands by their youngest age, in order (age in whole
/// years on the application day).
const AGE_BANDS: [(u32, pb::AgeBand); 6] = [
    (0, pb::AgeBand::Under18),
    (18, pb::AgeBand::AgeBand1824),
    (25, pb::AgeBand::AgeBand2529),
    (30, pb::AgeBand::AgeBand3035),
    (36, pb::AgeBand::AgeBand3644),
    (45, pb::AgeBand::AgeBand45AndOver),
];

/// The age band of someone born on `birth` on `on` (unknown without a
/// birth date, or born after `on`): what [`age_band_sql`] computes.
#[cfg(test)]
fn age_band(birth: Option<NaiveDate>, on: NaiveDate) -> pb::AgeBand {
    let Some(age) = birth.and_then(|b| on.years_since(b)) else { return pb::AgeBand::Unknown };
    AGE_BANDS.iter().rev().find(|(from, _)| age >= *from).map_or(pb::AgeBand::Unknown, |(_, band)| *band)
}

/// [`age_band`] in SQL, over `birth` and `on` (column expressions).
pub(crate) fn age_band_sql(birth: &str, on: &str) -> String {
    // The age once per row (a CASE evaluating age() in every branch cost
    // the funnel a third of its time).
    let mut sql = format!("(SELECT CASE WHEN y IS NULL THEN {unknown} ", unknown = pb::AgeBand::Unknown as i32);
    for (from, band) in AGE_BANDS.iter().rev() {
        sql.push_str(&format!("WHEN y >= {from} THEN {} ", *band as i32));
    }
    sql.push_str(&format!(
        "ELSE {unknown} END FROM (SELECT CASE WHEN {birth} IS NULL OR {birth} > {on} THEN NULL \
         ELSE extract(year FROM age({on}, {birth})) END AS y) AS years)",
        unknown = pb::AgeBand::Unknown as i32
    ));
    sql
}

/// The funnel: one statement, grouped by the dimensions asked for ($5 to
/// $8: by call, district, sex, age band), over the applications and the
/// applicant's dimensions they carry (see [`crate::projection::refresh_applicants`]).
static FUNNEL_SQL: LazyLock<String> = LazyLock::new(|| {
    "WITH g AS (SELECT CASE WHEN $5 THEN call_id END AS g_call, \
       CASE WHEN $6 THEN COALESCE(applicant_district, '') END AS g_district, \
       CASE WHEN $7 THEN COALESCE(applicant_sex, 0)::smallint END AS g_sex, \
       CASE WHEN $8 THEN applicant_band END AS g_band, \
       count(*) AS applied, count(*) FILTER (WHERE reached_eligible) AS eligible, \
       count(*) FILTER (WHERE reached_trained) AS trained, count(*) FILTER (WHERE reached_plan) AS plan, \
       count(*) FILTER (WHERE approved_active) AS approved, \
       count(*) FILTER (WHERE equipment_delivered) AS delivered, \
       count(*) FILTER (WHERE operating_last) AS operating \
     FROM grants.applications \
     WHERE ($1::uuid IS NULL OR call_id = $1) AND ($2::text IS NULL OR applicant_district = $2) \
       AND ($3::smallint IS NULL OR applicant_sex = $3) AND ($4::smallint IS NULL OR applicant_band = $4) \
     GROUP BY 1, 2, 3, 4) \
     SELECT g_call, g_district, g_sex, g_band, applied::bigint AS applied, eligible::bigint AS eligible, \
       trained::bigint AS trained, plan::bigint AS plan, approved::bigint AS approved, \
       delivered::bigint AS delivered, operating::bigint AS operating \
     FROM g ORDER BY 1, 2, 3, 4"
        .to_owned()
});

// ------------------------------------------------------------ rows

/// A call's columns with its commitments, orders, payments, applications
/// and training places taken.
macro_rules! call_columns {
    () => {
        "c.*, \
         COALESCE((SELECT sum(m.committed_minor - m.released_minor) FROM grants.commitments m \
             WHERE m.call_id = c.call_id), 0)::bigint AS committed, \
         COALESCE((SELECT sum(i.total_minor) FILTER (WHERE i.status <> 2) FROM grants.items i \
             WHERE i.call_id = c.call_id), 0)::bigint AS ordered, \
         COALESCE((SELECT sum(i.paid_minor) FROM grants.items i WHERE i.call_id = c.call_id), 0)::bigint AS spent, \
         (SELECT count(*) FROM grants.applications a WHERE a.call_id = c.call_id) AS applications, \
         (SELECT count(*) FROM grants.applications a WHERE a.call_id = c.call_id \
             AND a.training_place IS NOT NULL) AS places_taken"
    };
}

fn call_row(r: &PgRow, today: NaiveDate) -> Result<pb::Call, ApiError> {
    let currency: String = r.try_get("currency")?;
    let budget: i64 = r.try_get("budget_minor")?;
    let committed: i64 = r.try_get("committed")?;
    let closes_on: NaiveDate = r.try_get("closes_on")?;
    Ok(pb::Call {
        call_id: r.try_get::<Uuid, _>("call_id")?.to_string(),
        terms: decoded(r, "terms")?,
        closed: r.try_get::<bool, _>("closed")? || closes_on < today,
        budget: money(budget, &currency),
        committed: money(committed, &currency),
        ordered: money(r.try_get("ordered")?, &currency),
        spent: money(r.try_get("spent")?, &currency),
        remaining: money(budget.saturating_sub(committed), &currency),
        applications: n32(r.try_get("applications")?),
        training_places_taken: n32(r.try_get("places_taken")?),
        opened_at: Some(acasa_proto::time::timestamp(r.try_get("opened_at")?)),
        opened_by: r.try_get("opened_by")?,
    })
}

fn course_row(r: &PgRow) -> Result<pb::Course, ApiError> {
    Ok(pb::Course {
        course_id: r.try_get::<Uuid, _>("course_id")?.to_string(),
        audience: i32::from(r.try_get::<i16, _>("audience")?),
        details: decoded(r, "details")?,
        retired: r.try_get("retired")?,
        sessions: n32(r.try_get("sessions")?),
    })
}

/// A course's columns with its sessions counted.
macro_rules! course_columns {
    () => {
        "c.*, (SELECT count(*) FROM grants.sessions s WHERE s.course_id = c.course_id) AS sessions"
    };
}

/// A session's columns with its roster counted.
macro_rules! session_from {
    () => {
        "s.*, x.enrolled, x.completed, x.not_completed FROM grants.sessions s \
     LEFT JOIN LATERAL (SELECT count(*) FILTER (WHERE NOT e.left_session) AS enrolled, \
     count(*) FILTER (WHERE NOT e.left_session AND e.result = 2) AS completed, \
     count(*) FILTER (WHERE NOT e.left_session AND e.result = 3) AS not_completed \
     FROM grants.enrolments e WHERE e.session_id = s.session_id) x ON true"
    };
}

fn session_row(r: &PgRow) -> Result<pb::Session, ApiError> {
    Ok(pb::Session {
        session_id: r.try_get::<Uuid, _>("session_id")?.to_string(),
        course_id: r.try_get::<Uuid, _>("course_id")?.to_string(),
        audience: i32::from(r.try_get::<i16, _>("audience")?),
        code: r.try_get("code")?,
        capacity: r.try_get("capacity")?,
        completion_threshold_percent: r.try_get("threshold_percent")?,
        details: decoded(r, "details")?,
        cancelled: r.try_get("cancelled")?,
        enrolled: n32(r.try_get("enrolled")?),
        completed: n32(r.try_get("completed")?),
        not_completed: n32(r.try_get("not_completed")?),
    })
}

/// A trainee's attendance, by day.
fn attendance(present: Vec<NaiveDate>, absent: Vec<NaiveDate>) -> Vec<pb::AttendanceDay> {
    let mut days: BTreeMap<NaiveDate, bool> = absent.into_iter().map(|d| (d, false)).collect();
    days.extend(present.into_iter().map(|d| (d, true)));
    days.into_iter().map(|(day, present)| pb::AttendanceDay { day: Some(date(day)), present }).collect()
}

/// A full name, when both parts are known.
fn full_name(given: Option<String>, family: Option<String>) -> String {
    match (given, family) {
        (Some(g), Some(f)) => format!("{g} {f}"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => String::new(),
    }
}

fn trainee_row(reader: Reader, r: &PgRow) -> Result<pb::Trainee, ApiError> {
    use pb::trainee::Trainee as T;
    let id = r.try_get::<Uuid, _>("trainee_id")?.to_string();
    let official = r.try_get::<i16, _>("trainee_kind")? == 2;
    let name = if reader == Reader::Staff && official {
        full_name(r.try_get("given_name")?, r.try_get("family_name")?)
    } else {
        String::new()
    };
    Ok(pb::Trainee {
        trainee: Some(if official { T::OfficialId(id) } else { T::ApplicationId(id) }),
        seat: r.try_get("seat")?,
        attendance: attendance(r.try_get("present_days")?, r.try_get("absent_days")?),
        result: i32::from(r.try_get::<i16, _>("result")?),
        certificate_number: text(r, "certificate_number")?,
        name,
    })
}

fn official_row(reader: Reader, r: &PgRow) -> Result<pb::Official, ApiError> {
    let personal = reader == Reader::Staff;
    let pick =
        |column: &str| -> Result<String, sqlx::Error> { if personal { text(r, column) } else { Ok(String::new()) } };
    Ok(pb::Official {
        official_id: r.try_get::<Uuid, _>("official_id")?.to_string(),
        details: Some(pb::OfficialDetails {
            kind: i32::from(r.try_get::<i16, _>("kind")?),
            given_name: pick("given_name")?,
            family_name: pick("family_name")?,
            sex: if personal { r.try_get::<Option<i16>, _>("sex")?.map_or(0, i32::from) } else { 0 },
            organisation: r.try_get("organisation")?,
            role: pick("role")?,
            district: r.try_get("district")?,
            email: pick("email")?,
            phone: pick("phone")?,
        }),
        erased: r.try_get("erased")?,
        trainings: Vec::new(),
    })
}

/// An application's columns with the applicant's district (none once
/// erased) and what was paid.
macro_rules! application_from {
    () => {
        "a.*, CASE WHEN p.status = 3 THEN NULL ELSE p.district END AS person_district, \
     COALESCE((SELECT sum(i.paid_minor) FROM grants.items i WHERE i.application_id = a.application_id), 0)::bigint \
     AS spent FROM grants.applications a LEFT JOIN grants.people p ON p.person_id = a.person_id"
    };
}

/// The call's evaluation rules an application keeps, as the domain's.
fn evaluation_of(e: &pb::EvaluationRules) -> Evaluation {
    let n = |v: i32| u32::try_from(v).unwrap_or(0);
    Evaluation {
        criteria: e
            .criteria
            .iter()
            .map(|c| Criterion { key: c.key.clone(), title: c.title.clone(), weight: n(c.weight) })
            .collect(),
        scale_max: n(e.scale_max),
        min_evaluators: n(e.min_evaluators),
        pass_score: n(e.pass_score),
    }
}

fn evaluation_row(r: &PgRow) -> Result<pb::Evaluation, ApiError> {
    let keys: Vec<String> = r.try_get("score_keys")?;
    let values: Vec<i32> = r.try_get("score_values")?;
    Ok(pb::Evaluation {
        evaluator: r.try_get("evaluator")?,
        scores: keys.into_iter().zip(values).map(|(key, score)| pb::CriterionScore { key, score }).collect(),
        weighted_score: r.try_get("weighted_score")?,
        comment: r.try_get("comment")?,
        conflict_declared: r.try_get("conflict_declared")?,
        conflict_reason: r.try_get("conflict_reason")?,
        at: Some(acasa_proto::time::timestamp(r.try_get("at")?)),
    })
}

/// The final score over the evaluations that count (no declared conflict).
fn final_score(terms: Option<&pb::GrantTerms>, evaluations: &[pb::Evaluation]) -> i32 {
    let Some(rules) = terms.and_then(|t| t.evaluation.as_ref()) else { return 0 };
    let counted: Vec<BTreeMap<String, u32>> = evaluations
        .iter()
        .filter(|e| !e.conflict_declared)
        .map(|e| e.scores.iter().map(|s| (s.key.clone(), u32::try_from(s.score).unwrap_or(0))).collect())
        .collect();
    evaluation_of(rules).final_score(&counted).map_or(0, |s| i32::try_from(s).unwrap_or(i32::MAX))
}

fn application_row(r: &PgRow, evaluations: Vec<pb::Evaluation>) -> Result<pb::Application, ApiError> {
    let currency: String = r.try_get("currency")?;
    let terms: Option<pb::GrantTerms> = decoded(r, "terms")?;
    let decision = match r.try_get::<Option<i16>, _>("decision")? {
        None => None,
        Some(d) => Some(pb::Decision {
            approved: d == 1,
            amount: r.try_get::<Option<i64>, _>("approved_minor")?.and_then(|m| money(m, &currency)),
            score: r.try_get::<Option<i32>, _>("decision_score")?.unwrap_or_default(),
            minutes_reference: text(r, "minutes_reference")?,
            reasons: text(r, "decision_reasons")?,
            decided_by: text(r, "decided_by")?,
            decided_at: r.try_get::<Option<DateTime<Utc>>, _>("decided_at")?.map(acasa_proto::time::timestamp),
        }),
    };
    Ok(pb::Application {
        application_id: r.try_get::<Uuid, _>("application_id")?.to_string(),
        call_id: r.try_get::<Uuid, _>("call_id")?.to_string(),
        person_id: r.try_get::<Uuid, _>("person_id")?.to_string(),
        status: i32::from(r.try_get::<i16, _>("status")?),
        failed_rule: text(r, "failed_rule")?,
        applied_on: Some(date(r.try_get("applied_on")?)),
        district: text(r, "person_district")?,
        certificate_number: text(r, "certificate_number")?,
        plan: decoded(r, "plan")?,
        final_score: final_score(terms.as_ref(), &evaluations),
        evaluations,
        decision,
        items: Vec::new(),
        handovers: Vec::new(),
        visits: Vec::new(),
        spent: money(r.try_get("spent")?, &currency),
        released: r.try_get::<Option<i64>, _>("released_minor")?.and_then(|m| money(m, &currency)),
    })
}

fn item_row(r: &PgRow) -> Result<pb::Item, ApiError> {
    let currency: String = r.try_get("currency")?;
    Ok(pb::Item {
        item_id: r.try_get::<Uuid, _>("item_id")?.to_string(),
        item: Some(pb::ProcurementItem {
            description: r.try_get("description")?,
            supplier: Some(pb::Supplier { name: r.try_get("supplier_name")?, idno: r.try_get("supplier_idno")? }),
            quantity: r.try_get("quantity")?,
            unit_price: money(r.try_get("unit_price_minor")?, &currency),
        }),
        total: money(r.try_get("total_minor")?, &currency),
        status: i32::from(r.try_get::<i16, _>("status")?),
        delivered_on: optional_date(r, "delivered_on")?,
        delivery_note_reference: text(r, "delivery_note_ref")?,
        paid_on: optional_date(r, "paid_on")?,
        payment_reference: text(r, "payment_ref")?,
        handover_reference: text(r, "handover_ref")?,
    })
}

fn support_row(r: &PgRow) -> Result<pb::SupportService, ApiError> {
    use pb::support_service::Provider as P;
    let provider: String = r.try_get("provider")?;
    Ok(pb::SupportService {
        service_id: r.try_get::<Uuid, _>("id")?.to_string(),
        person_id: r.try_get::<Uuid, _>("person_id")?.to_string(),
        kind: i32::from(r.try_get::<i16, _>("kind")?),
        provider: Some(match r.try_get::<i16, _>("provider_kind")? {
            1 => P::Staff(provider),
            2 => P::PartnerId(provider),
            _ => P::OtherProvider(provider),
        }),
        delivered_on: Some(date(r.try_get("delivered_on")?)),
        note: r.try_get("note")?,
        referral_id: r.try_get::<Option<Uuid>, _>("referral_id")?.map(|id| id.to_string()).unwrap_or_default(),
        retracted: r.try_get("retracted")?,
        recorded_by: r.try_get("recorded_by")?,
        recorded_at: Some(acasa_proto::time::timestamp(r.try_get("recorded_at")?)),
    })
}

fn funnel_row(r: &PgRow) -> Result<pb::FunnelRow, ApiError> {
    let count = |c: &str| -> Result<i32, sqlx::Error> { Ok(n32(r.try_get(c)?)) };
    Ok(pb::FunnelRow {
        call_id: r.try_get::<Option<Uuid>, _>("g_call")?.map(|c| c.to_string()).unwrap_or_default(),
        district: text(r, "g_district")?,
        sex: r.try_get::<Option<i16>, _>("g_sex")?.map_or(0, i32::from),
        age_band: r.try_get::<Option<i16>, _>("g_band")?.map_or(0, i32::from),
        counts: Some(pb::FunnelCounts {
            applied: count("applied")?,
            eligible: count("eligible")?,
            trained: count("trained")?,
            plan_submitted: count("plan")?,
            approved: count("approved")?,
            equipment_delivered: count("delivered")?,
            operating_at_last_visit: count("operating")?,
        }),
    })
}

// ------------------------------------------------------------ the queries

impl GrantService {
    /// Waits for this service's read model at `min` (request field `min_position`).
    async fn at(&self, min: u64, deadline: Instant) -> Result<u64, ApiError> {
        let stream = acasa_eventstore::stream_name_of(crate::SERVICE);
        self.positions
            .at(crate::PROJECTION, &stream, min, deadline)
            .await
            .map_err(|e| ApiError::waiting(e, "min_position"))
    }

    // -------------------------------------------------------- calls

    pub(crate) async fn query_get_call(
        &self,
        _reader: Reader,
        req: &pb::GetCallRequest,
        deadline: Instant,
    ) -> Result<pb::GetCallResponse, ApiError> {
        let mut v = Violations::new();
        let Some(id) = validate::id(&mut v, "call_id", &req.call_id) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let row = sqlx::query(concat!("SELECT ", call_columns!(), " FROM grants.calls c WHERE c.call_id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no call {id}")))?;
        Ok(pb::GetCallResponse { call: Some(call_row(&row, Utc::now().date_naive())?) })
    }

    pub(crate) async fn query_list_calls(
        &self,
        _reader: Reader,
        req: &pb::ListCallsRequest,
        deadline: Instant,
    ) -> Result<pb::ListCallsResponse, ApiError> {
        let mut v = Violations::new();
        let Some(page) = page::request::<(DateTime<Utc>, Uuid)>(&mut v, req.page_size, &req.page_token) else {
            return Err(v.into());
        };
        self.at(req.min_position, deadline).await?;
        let today = Utc::now().date_naive();
        let (after_at, after_id) = page.after.map_or((None, None), |(at, id)| (Some(at), Some(id)));
        let rows = sqlx::query(concat!(
            "SELECT ",
            call_columns!(),
            " FROM grants.calls c WHERE ($1 OR (NOT c.closed AND c.closes_on >= $2)) \
             AND ($3::timestamptz IS NULL OR (c.opened_at, c.call_id) < ($3, $4)) \
             ORDER BY c.opened_at DESC, c.call_id DESC LIMIT $5"
        ))
        .bind(req.include_closed)
        .bind(today)
        .bind(after_at)
        .bind(after_id)
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await?;
        let key = |r: &PgRow| {
            (
                r.try_get::<DateTime<Utc>, _>("opened_at").unwrap_or_default(),
                r.try_get::<Uuid, _>("call_id").unwrap_or_default(),
            )
        };
        let (rows, next_page_token) = page.cut(rows, key);
        let calls = rows.iter().map(|r| call_row(r, today)).collect::<Result<_, _>>()?;
        Ok(pb::ListCallsResponse { calls, next_page_token })
    }

    // -------------------------------------------------------- training

    pub(crate) async fn query_get_course(
        &self,
        _reader: Reader,
        req: &pb::GetCourseRequest,
        deadline: Instant,
    ) -> Result<pb::GetCourseResponse, ApiError> {
        let mut v = Violations::new();
        let Some(id) = validate::id(&mut v, "course_id", &req.course_id) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let row = sqlx::query(concat!("SELECT ", course_columns!(), " FROM grants.courses c WHERE c.course_id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no course {id}")))?;
        Ok(pb::GetCourseResponse { course: Some(course_row(&row)?) })
    }

    pub(crate) async fn query_list_courses(
        &self,
        _reader: Reader,
        req: &pb::ListCoursesRequest,
        deadline: Instant,
    ) -> Result<pb::ListCoursesResponse, ApiError> {
        let mut v = Violations::new();
        let audience = enum_filter::<pb::Audience>(&mut v, "audience", req.audience, "audience");
        let page = page::request::<Uuid>(&mut v, req.page_size, &req.page_token);
        let (Some(audience), Some(page)) = (audience, page) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            course_columns!(),
            " FROM grants.courses c WHERE ($1::smallint IS NULL OR c.audience = $1) \
             AND ($2 OR NOT c.retired) AND ($3::uuid IS NULL OR c.course_id > $3) ORDER BY c.course_id LIMIT $4"
        ))
        .bind(audience)
        .bind(req.include_retired)
        .bind(page.after)
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await?;
        let (rows, next_page_token) = page.cut(rows, |r| r.try_get::<Uuid, _>("course_id").unwrap_or_default());
        let courses = rows.iter().map(course_row).collect::<Result<_, _>>()?;
        Ok(pb::ListCoursesResponse { courses, next_page_token })
    }

    pub(crate) async fn query_get_session(
        &self,
        reader: Reader,
        req: &pb::GetSessionRequest,
        deadline: Instant,
    ) -> Result<pb::GetSessionResponse, ApiError> {
        let mut v = Violations::new();
        let Some(id) = validate::id(&mut v, "session_id", &req.session_id) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let row = sqlx::query(concat!("SELECT ", session_from!(), " WHERE s.session_id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no session {id}")))?;
        let trainees = sqlx::query(
            "SELECT e.*, o.given_name, o.family_name FROM grants.enrolments e \
             LEFT JOIN grants.officials o ON o.official_id = e.trainee_id AND e.trainee_kind = 2 \
             WHERE e.session_id = $1 AND NOT e.left_session ORDER BY e.seat, e.trainee_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(pb::GetSessionResponse {
            session: Some(session_row(&row)?),
            trainees: trainees.iter().map(|r| trainee_row(reader, r)).collect::<Result<_, _>>()?,
        })
    }

    pub(crate) async fn query_list_sessions(
        &self,
        _reader: Reader,
        req: &pb::ListSessionsRequest,
        deadline: Instant,
    ) -> Result<pb::ListSessionsResponse, ApiError> {
        let mut v = Violations::new();
        let course = optional_id(&mut v, "course_id", &req.course_id);
        let audience = enum_filter::<pb::Audience>(&mut v, "audience", req.audience, "audience");
        let district = optional_folded(&mut v, "district", &req.district, validate::DISTRICT_MAX);
        let from = match &req.from {
            None => Some(None),
            Some(d) => validate::date(&mut v, "from", Some(d)).map(Some),
        };
        let page = page::request::<(NaiveDate, Uuid, i32)>(&mut v, req.page_size, &req.page_token);
        let (Some(course), Some(audience), Some(district), Some(from), Some(page)) =
            (course, audience, district, from, page)
        else {
            return Err(v.into());
        };
        self.at(req.min_position, deadline).await?;
        let (after_day, after_id) = page.after.map_or((None, None), |(d, id, _)| (Some(d), Some(id)));
        let rows = sqlx::query(concat!(
            "SELECT ",
            session_from!(),
            " WHERE ($1::uuid IS NULL OR s.course_id = $1) \
             AND ($2::smallint IS NULL OR s.audience = $2) AND ($3::text IS NULL OR s.district_folded = $3) \
             AND ($4::date IS NULL OR s.last_day >= $4) AND ($5 OR NOT s.cancelled) \
             AND ($6::date IS NULL OR (s.first_day, s.session_id) > ($6, $7)) \
             ORDER BY s.first_day, s.session_id LIMIT $8"
        ))
        .bind(course)
        .bind(audience)
        .bind(district)
        .bind(from)
        .bind(req.include_cancelled)
        .bind(after_day)
        .bind(after_id)
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await?;
        let key = |r: &PgRow| {
            (
                r.try_get::<NaiveDate, _>("first_day").unwrap_or_default(),
                r.try_get::<Uuid, _>("session_id").unwrap_or_default(),
                0,
            )
        };
        let (rows, next_page_token) = page.cut(rows, key);
        let sessions = rows.iter().map(session_row).collect::<Result<_, _>>()?;
        Ok(pb::ListSessionsResponse { sessions, next_page_token })
    }

    // -------------------------------------------------------- officials

    pub(crate) async fn query_get_official(
        &self,
        reader: Reader,
        req: &pb::GetOfficialRequest,
        deadline: Instant,
    ) -> Result<pb::GetOfficialResponse, ApiError> {
        let mut v = Violations::new();
        let Some(id) = validate::id(&mut v, "official_id", &req.official_id) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let row = sqlx::query("SELECT * FROM grants.officials WHERE official_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no official {id}")))?;
        let mut official = official_row(reader, &row)?;
        let trainings: Vec<(Uuid, Option<Uuid>, i16, Option<String>)> = sqlx::query_as(
            "SELECT e.session_id, s.course_id, e.result, e.certificate_number FROM grants.enrolments e \
             LEFT JOIN grants.sessions s ON s.session_id = e.session_id \
             WHERE e.trainee_id = $1 AND NOT e.left_session ORDER BY e.enrolled_at, e.session_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        official.trainings = trainings
            .into_iter()
            .map(|(session, course, result, certificate)| pb::OfficialTraining {
                session_id: session.to_string(),
                course_id: course.map(|c| c.to_string()).unwrap_or_default(),
                result: i32::from(result),
                certificate_number: certificate.unwrap_or_default(),
            })
            .collect();
        Ok(pb::GetOfficialResponse { official: Some(official) })
    }

    pub(crate) async fn query_list_officials(
        &self,
        reader: Reader,
        req: &pb::ListOfficialsRequest,
        deadline: Instant,
    ) -> Result<pb::ListOfficialsResponse, ApiError> {
        let mut v = Violations::new();
        let kind = enum_filter::<pb::OfficialKind>(&mut v, "kind", req.kind, "official kind");
        let district = optional_folded(&mut v, "district", &req.district, validate::DISTRICT_MAX);
        let organisation = optional_folded(&mut v, "organisation", &req.organisation, validate::NAME_MAX);
        let page = page::request::<Uuid>(&mut v, req.page_size, &req.page_token);
        let (Some(kind), Some(district), Some(organisation), Some(page)) = (kind, district, organisation, page) else {
            return Err(v.into());
        };
        self.at(req.min_position, deadline).await?;
        let rows = sqlx::query(
            "SELECT * FROM grants.officials WHERE ($1::smallint IS NULL OR kind = $1) \
             AND ($2::text IS NULL OR district_folded = $2) AND ($3::text IS NULL OR organisation_folded = $3) \
             AND ($4::uuid IS NULL OR official_id > $4) ORDER BY official_id LIMIT $5",
        )
        .bind(kind)
        .bind(district)
        .bind(organisation)
        .bind(page.after)
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await?;
        let (rows, next_page_token) = page.cut(rows, |r| r.try_get::<Uuid, _>("official_id").unwrap_or_default());
        let officials = rows.iter().map(|r| official_row(reader, r)).collect::<Result<_, _>>()?;
        Ok(pb::ListOfficialsResponse { officials, next_page_token })
    }

    // -------------------------------------------------------- applications

    /// The evaluations of `applications`, by application.
    async fn evaluations(&self, applications: &[Uuid]) -> Result<BTreeMap<Uuid, Vec<pb::Evaluation>>, ApiError> {
        let rows = sqlx::query(
            "SELECT * FROM grants.evaluations WHERE application_id = ANY($1) ORDER BY application_id, at, evaluator",
        )
        .bind(applications)
        .fetch_all(&self.pool)
        .await?;
        let mut out: BTreeMap<Uuid, Vec<pb::Evaluation>> = BTreeMap::new();
        for r in &rows {
            out.entry(r.try_get("application_id")?).or_default().push(evaluation_row(r)?);
        }
        Ok(out)
    }

    pub(crate) async fn query_get_application(
        &self,
        _reader: Reader,
        req: &pb::GetApplicationRequest,
        deadline: Instant,
    ) -> Result<pb::GetApplicationResponse, ApiError> {
        let mut v = Violations::new();
        let Some(id) = validate::id(&mut v, "application_id", &req.application_id) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let row = sqlx::query(concat!("SELECT ", application_from!(), " WHERE a.application_id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no application {id}")))?;
        let evaluations = self.evaluations(&[id]).await?.remove(&id).unwrap_or_default();
        let mut application = application_row(&row, evaluations)?;
        let items = sqlx::query("SELECT * FROM grants.items WHERE application_id = $1 ORDER BY position, item_id")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        application.items = items.iter().map(item_row).collect::<Result<_, _>>()?;
        let handovers: Vec<(String, Vec<Uuid>, NaiveDate, String, String)> = sqlx::query_as(
            "SELECT reference, item_ids, handed_over_on, location, note FROM grants.handovers \
             WHERE application_id = $1 ORDER BY position, reference",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        application.handovers = handovers
            .into_iter()
            .map(|(reference, items, on, location, note)| pb::Handover {
                reference,
                item_ids: items.iter().map(Uuid::to_string).collect(),
                handed_over_on: Some(date(on)),
                location,
                note,
            })
            .collect();
        let visits: Vec<(NaiveDate, String, bool, i32, String)> = sqlx::query_as(
            "SELECT visited_on, officer, operating, jobs_created, findings FROM grants.visits \
             WHERE application_id = $1 ORDER BY position",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        application.visits = visits
            .into_iter()
            .map(|(on, officer, operating, jobs_created, findings)| pb::MonitoringVisit {
                visited_on: Some(date(on)),
                officer,
                operating,
                jobs_created,
                findings,
            })
            .collect();
        Ok(pb::GetApplicationResponse { application: Some(application) })
    }

    pub(crate) async fn query_list_applications(
        &self,
        _reader: Reader,
        req: &pb::ListApplicationsRequest,
        deadline: Instant,
    ) -> Result<pb::ListApplicationsResponse, ApiError> {
        let mut v = Violations::new();
        let call = optional_id(&mut v, "call_id", &req.call_id);
        let person = optional_id(&mut v, "person_id", &req.person_id);
        let district = optional_folded(&mut v, "district", &req.district, validate::DISTRICT_MAX);
        let mut statuses: Vec<i16> = Vec::new();
        for (i, s) in req.statuses.iter().enumerate() {
            match (pb::ApplicationStatus::try_from(*s), i16::try_from(*s)) {
                (Ok(pb::ApplicationStatus::Unspecified) | Err(_), _) | (_, Err(_)) => {
                    v.add(format!("statuses[{i}]"), "must be a known application status");
                }
                (Ok(_), Ok(s)) => statuses.push(s),
            }
        }
        let page = page::request::<Uuid>(&mut v, req.page_size, &req.page_token);
        let (Some(call), Some(person), Some(district), Some(page)) = (call, person, district, page) else {
            return Err(v.into());
        };
        v.into_result()?;
        self.at(req.min_position, deadline).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            application_from!(),
            " WHERE ($1::uuid IS NULL OR a.call_id = $1) \
             AND ($2::uuid IS NULL OR a.person_id = $2) \
             AND ($3::text IS NULL OR (p.status <> 3 AND p.district_folded = $3)) \
             AND (cardinality($4::smallint[]) = 0 OR a.status = ANY($4)) \
             AND ($5::uuid IS NULL OR a.application_id > $5) ORDER BY a.application_id LIMIT $6"
        ))
        .bind(call)
        .bind(person)
        .bind(district)
        .bind(&statuses)
        .bind(page.after)
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await?;
        let (rows, next_page_token) = page.cut(rows, |r| r.try_get::<Uuid, _>("application_id").unwrap_or_default());
        let ids = rows.iter().map(|r| r.try_get::<Uuid, _>("application_id")).collect::<Result<Vec<_>, _>>()?;
        let mut evaluations = self.evaluations(&ids).await?;
        let applications = rows
            .iter()
            .zip(&ids)
            .map(|(r, id)| application_row(r, evaluations.remove(id).unwrap_or_default()))
            .map(|a| {
                // The list leaves the evaluations out (the final score stays).
                a.map(|a| pb::Application { evaluations: Vec::new(), ..a })
            })
            .collect::<Result<_, _>>()?;
        Ok(pb::ListApplicationsResponse { applications, next_page_token })
    }

    // -------------------------------------------------------- support

    pub(crate) async fn query_list_support_services(
        &self,
        _reader: Reader,
        req: &pb::ListSupportServicesRequest,
        deadline: Instant,
    ) -> Result<pb::ListSupportServicesResponse, ApiError> {
        let mut v = Violations::new();
        let person = optional_id(&mut v, "person_id", &req.person_id);
        let call = optional_id(&mut v, "call_id", &req.call_id);
        let kind = enum_filter::<pb::SupportKind>(&mut v, "kind", req.kind, "support kind");
        let page = page::request::<(DateTime<Utc>, Uuid)>(&mut v, req.page_size, &req.page_token);
        let (Some(person), Some(call), Some(kind), Some(page)) = (person, call, kind, page) else {
            return Err(v.into());
        };
        self.at(req.min_position, deadline).await?;
        if req.min_referrals_position > 0 {
            let referrals = acasa_eventstore::stream_name_of("referrals");
            self.positions
                .wait_for(crate::REFERRALS_PROJECTION, &referrals, req.min_referrals_position, deadline)
                .await
                .map_err(|e| ApiError::waiting(e, "min_referrals_position"))?;
        }
        let (after_at, after_id) = page.after.map_or((None, None), |(at, id)| (Some(at), Some(id)));
        // Staff's records and the referral system's outcomes (those not also
        // recorded on the person's support subject), latest first; nobody
        // erased.
        let rows = sqlx::query(
            "SELECT * FROM ( \
               SELECT s.service_id AS id, s.person_id, s.kind, s.provider_kind, s.provider, s.delivered_on, s.note, \
                 s.referral_id, s.retracted, s.recorded_by, s.recorded_at FROM grants.support_services s \
               WHERE ($4 OR NOT s.retracted) \
               UNION ALL \
               SELECT r.referral_id, r.person_id, r.kind, 2::smallint, r.partner_id::text, r.delivered_on, '', \
                 r.referral_id, false, '', r.recorded_at FROM grants.referral_support r \
               WHERE NOT EXISTS (SELECT 1 FROM grants.support_services s WHERE s.referral_id = r.referral_id) \
             ) u \
             WHERE ($1::uuid IS NULL OR u.person_id = $1) \
             AND ($2::uuid IS NULL OR u.person_id IN \
               (SELECT a.person_id FROM grants.applications a WHERE a.call_id = $2)) \
             AND ($3::smallint IS NULL OR u.kind = $3) \
             AND NOT EXISTS (SELECT 1 FROM grants.people pp WHERE pp.person_id = u.person_id AND pp.status = 3) \
             AND ($5::timestamptz IS NULL OR (u.recorded_at, u.id) < ($5, $6)) \
             ORDER BY u.recorded_at DESC, u.id DESC LIMIT $7",
        )
        .bind(person)
        .bind(call)
        .bind(kind)
        .bind(req.include_retracted)
        .bind(after_at)
        .bind(after_id)
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await?;
        let key = |r: &PgRow| {
            (
                r.try_get::<DateTime<Utc>, _>("recorded_at").unwrap_or_default(),
                r.try_get::<Uuid, _>("id").unwrap_or_default(),
            )
        };
        let (rows, next_page_token) = page.cut(rows, key);
        let services = rows.iter().map(support_row).collect::<Result<_, _>>()?;
        Ok(pb::ListSupportServicesResponse { services, next_page_token })
    }

    // -------------------------------------------------------- the views

    pub(crate) async fn query_get_funnel(
        &self,
        _reader: Reader,
        req: &pb::GetFunnelRequest,
        deadline: Instant,
    ) -> Result<pb::GetFunnelResponse, ApiError> {
        let mut v = Violations::new();
        let call = optional_id(&mut v, "call_id", &req.call_id);
        let district = optional_folded(&mut v, "district", &req.district, validate::DISTRICT_MAX);
        let sex = enum_filter::<registry::Sex>(&mut v, "sex", req.sex, "sex");
        let band = enum_filter::<pb::AgeBand>(&mut v, "age_band", req.age_band, "age band");
        let mut by = [false; 4];
        for (i, d) in req.group_by.iter().enumerate() {
            match pb::FunnelDimension::try_from(*d) {
                Ok(pb::FunnelDimension::Call) => by[0] = true,
                Ok(pb::FunnelDimension::District) => by[1] = true,
                Ok(pb::FunnelDimension::Sex) => by[2] = true,
                Ok(pb::FunnelDimension::AgeBand) => by[3] = true,
                Ok(pb::FunnelDimension::Unspecified) | Err(_) => {
                    v.add(format!("group_by[{i}]"), "must be a known funnel dimension");
                }
            }
        }
        let (Some(call), Some(district), Some(sex), Some(band)) = (call, district, sex, band) else {
            return Err(v.into());
        };
        v.into_result()?;
        self.at(req.min_position, deadline).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(FUNNEL_SQL.as_str()))
            .bind(call)
            .bind(district)
            .bind(sex)
            .bind(band)
            .bind(by[0])
            .bind(by[1])
            .bind(by[2])
            .bind(by[3])
            .fetch_all(&self.pool)
            .await?;
        let mut rows = rows.iter().map(funnel_row).collect::<Result<Vec<_>, _>>()?;
        if rows.is_empty() && !by.contains(&true) {
            rows.push(pb::FunnelRow { counts: Some(pb::FunnelCounts::default()), ..pb::FunnelRow::default() });
        }
        Ok(pb::GetFunnelResponse { rows })
    }

    pub(crate) async fn query_get_budget(
        &self,
        _reader: Reader,
        req: &pb::GetBudgetRequest,
        deadline: Instant,
    ) -> Result<pb::GetBudgetResponse, ApiError> {
        let mut v = Violations::new();
        let Some(call) = optional_id(&mut v, "call_id", &req.call_id) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            call_columns!(),
            " FROM grants.calls c WHERE ($1::uuid IS NULL OR c.call_id = $1) ORDER BY c.opened_at, c.call_id"
        ))
        .bind(call)
        .fetch_all(&self.pool)
        .await?;
        if let Some(id) = call
            && rows.is_empty()
        {
            return Err(ApiError::NotFound(format!("no call {id}")));
        }
        let today = Utc::now().date_naive();
        let calls = rows
            .iter()
            .map(|r| {
                let c = call_row(r, today)?;
                Ok(pb::CallBudget {
                    call_id: c.call_id,
                    title: r.try_get("title")?,
                    budget: c.budget,
                    committed: c.committed,
                    ordered: c.ordered,
                    spent: c.spent,
                    remaining: c.remaining,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(pb::GetBudgetResponse { calls })
    }

    pub(crate) async fn query_get_grants_by_district(
        &self,
        _reader: Reader,
        req: &pb::GetGrantsByDistrictRequest,
        deadline: Instant,
    ) -> Result<pb::GetGrantsByDistrictResponse, ApiError> {
        let mut v = Violations::new();
        let Some(call) = optional_id(&mut v, "call_id", &req.call_id) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let rows: Vec<(String, String, i64, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT COALESCE(a.applicant_district, '') AS district, \
             a.currency, count(*), COALESCE(sum(a.approved_minor), 0)::bigint, \
             COALESCE(sum((SELECT sum(i.paid_minor) FROM grants.items i WHERE i.application_id = a.application_id)), \
             0)::bigint, count(*) FILTER (WHERE a.operating_last), COALESCE(sum(a.jobs_last), 0)::bigint \
             FROM grants.applications a \
             WHERE a.approved_active AND ($1::uuid IS NULL OR a.call_id = $1) GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(call)
        .fetch_all(&self.pool)
        .await?;
        let districts = rows
            .into_iter()
            .map(|(district, currency, grants, approved, spent, operating, jobs)| pb::DistrictGrants {
                district,
                currency,
                grants: n32(grants),
                approved_minor: approved,
                spent_minor: spent,
                operating: n32(operating),
                jobs_created: n32(jobs),
            })
            .collect();
        Ok(pb::GetGrantsByDistrictResponse { districts })
    }

    pub(crate) async fn query_get_training_completion(
        &self,
        _reader: Reader,
        req: &pb::GetTrainingCompletionRequest,
        deadline: Instant,
    ) -> Result<pb::GetTrainingCompletionResponse, ApiError> {
        let mut v = Violations::new();
        let audience = enum_filter::<pb::Audience>(&mut v, "audience", req.audience, "audience");
        let course = optional_id(&mut v, "course_id", &req.course_id);
        let (Some(audience), Some(course)) = (audience, course) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let rows: Vec<(i16, Uuid, String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT c.audience, c.course_id, c.title, count(e.trainee_id) FILTER (WHERE NOT e.left_session), \
             count(e.trainee_id) FILTER (WHERE NOT e.left_session AND e.result = 2), \
             count(e.trainee_id) FILTER (WHERE NOT e.left_session AND e.result = 3), \
             count(e.trainee_id) FILTER (WHERE NOT e.left_session AND e.result = 1) \
             FROM grants.courses c LEFT JOIN grants.sessions s ON s.course_id = c.course_id \
             LEFT JOIN grants.enrolments e ON e.session_id = s.session_id \
             WHERE ($1::smallint IS NULL OR c.audience = $1) AND ($2::uuid IS NULL OR c.course_id = $2) \
             GROUP BY c.audience, c.course_id, c.title ORDER BY c.audience, c.title, c.course_id",
        )
        .bind(audience)
        .bind(course)
        .fetch_all(&self.pool)
        .await?;
        if let Some(id) = course
            && rows.is_empty()
            && audience.is_none()
        {
            return Err(ApiError::NotFound(format!("no course {id}")));
        }
        let courses = rows
            .into_iter()
            .map(|(audience, course, title, enrolled, completed, not_completed, in_progress)| pb::CourseCompletion {
                audience: i32::from(audience),
                course_id: course.to_string(),
                title,
                enrolled: n32(enrolled),
                completed: n32(completed),
                not_completed: n32(not_completed),
                in_progress: n32(in_progress),
            })
            .collect();
        Ok(pb::GetTrainingCompletionResponse { courses })
    }

    pub(crate) async fn query_get_progress(
        &self,
        _reader: Reader,
        req: &pb::GetProgressRequest,
        deadline: Instant,
    ) -> Result<pb::GetProgressResponse, ApiError> {
        self.at(req.min_position, deadline).await?;
        let (trained, granted, officials, operating): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE reached_trained), count(*) FILTER (WHERE approved_active), \
             (SELECT count(DISTINCT trainee_id) FROM grants.enrolments WHERE trainee_kind = 2 AND result = 2 \
                 AND NOT left_session), \
             count(*) FILTER (WHERE operating_last) FROM grants.applications",
        )
        .fetch_one(&self.pool)
        .await?;
        let target = |t: u32| i32::try_from(t).unwrap_or(i32::MAX);
        let indicator = |indicator: pb::Indicator, target: i32, achieved: i64| pb::IndicatorProgress {
            indicator: indicator as i32,
            target,
            achieved: n32(achieved),
        };
        Ok(pb::GetProgressResponse {
            indicators: vec![
                indicator(pb::Indicator::EntrepreneursTrained, target(self.targets.trained), trained),
                indicator(pb::Indicator::GrantsAwarded, target(self.targets.grants), granted),
                indicator(pb::Indicator::OfficialsTrained, target(self.targets.officials), officials),
                indicator(pb::Indicator::BusinessesOperating, 0, operating),
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn age_bands_are_whole_years_on_the_application_day() {
        let on = d(2027, 2, 10);
        assert_eq!(age_band(None, on), pb::AgeBand::Unknown);
        assert_eq!(age_band(Some(d(2030, 1, 1)), on), pb::AgeBand::Unknown);
        assert_eq!(age_band(Some(d(2010, 1, 1)), on), pb::AgeBand::Under18);
        // The 18th birthday is the first day of 18 to 24.
        assert_eq!(age_band(Some(d(2009, 2, 11)), on), pb::AgeBand::Under18);
        assert_eq!(age_band(Some(d(2009, 2, 10)), on), pb::AgeBand::AgeBand1824);
        assert_eq!(age_band(Some(d(2002, 2, 11)), on), pb::AgeBand::AgeBand1824);
        assert_eq!(age_band(Some(d(2002, 2, 10)), on), pb::AgeBand::AgeBand2529);
        assert_eq!(age_band(Some(d(1997, 2, 10)), on), pb::AgeBand::AgeBand3035);
        assert_eq!(age_band(Some(d(1991, 2, 11)), on), pb::AgeBand::AgeBand3035);
        assert_eq!(age_band(Some(d(1991, 2, 10)), on), pb::AgeBand::AgeBand3644);
        assert_eq!(age_band(Some(d(1982, 2, 10)), on), pb::AgeBand::AgeBand45AndOver);
        assert_eq!(age_band(Some(d(1930, 1, 1)), on), pb::AgeBand::AgeBand45AndOver);
    }

    #[test]
    fn the_sql_age_band_checks_the_same_bounds_oldest_first() {
        let sql = age_band_sql("b", "o");
        assert!(sql.starts_with("(SELECT CASE WHEN y IS NULL THEN 7 "));
        let bounds: Vec<&str> = sql.match_indices("y >= ").map(|(i, _)| &sql[i + 5..i + 7]).collect();
        assert_eq!(bounds, ["45", "36", "30", "25", "18", "0 "]);
        assert!(sql.contains("ELSE 7 END FROM (SELECT CASE WHEN b IS NULL OR b > o THEN NULL"));
        assert!(sql.ends_with("ELSE extract(year FROM age(o, b)) END AS y) AS years)"));
    }

    #[test]
    fn attendance_is_by_day_present_winning_a_day_recorded_twice() {
        let days = attendance(vec![d(2027, 5, 5), d(2027, 5, 3)], vec![d(2027, 5, 4), d(2027, 5, 3)]);
        let got: Vec<(NaiveDate, bool)> =
            days.iter().map(|a| (crate::codec::date_of(a.day.as_ref().unwrap()).unwrap(), a.present)).collect();
        assert_eq!(got, [(d(2027, 5, 3), true), (d(2027, 5, 4), false), (d(2027, 5, 5), true)]);
    }

    #[test]
    fn names_join_what_is_known() {
        assert_eq!(full_name(Some("Elena".into()), Some("Ciobanu".into())), "Elena Ciobanu");
        assert_eq!(full_name(None, Some("Ciobanu".into())), "Ciobanu");
        assert_eq!(full_name(None, None), "");
    }

    #[test]
    fn the_final_score_leaves_out_declared_conflicts() {
        let terms = pb::GrantTerms {
            evaluation: Some(pb::EvaluationRules {
                criteria: vec![
                    pb::Criterion { key: "viability".into(), title: "V".into(), weight: 3 },
                    pb::Criterion { key: "jobs".into(), title: "J".into(), weight: 1 },
                ],
                scale_max: 10,
                min_evaluators: 2,
                pass_score: 600,
            }),
            ..pb::GrantTerms::default()
        };
        let eval = |viability, jobs, conflict| pb::Evaluation {
            scores: vec![
                pb::CriterionScore { key: "jobs".into(), score: jobs },
                pb::CriterionScore { key: "viability".into(), score: viability },
            ],
            conflict_declared: conflict,
            ..pb::Evaluation::default()
        };
        let expected = evaluation_of(terms.evaluation.as_ref().unwrap())
            .final_score([
                &BTreeMap::from([("viability".to_string(), 8), ("jobs".to_string(), 6)]),
                &BTreeMap::from([("viability".to_string(), 6), ("jobs".to_string(), 6)]),
            ])
            .unwrap();
        let got = final_score(Some(&terms), &[eval(8, 6, false), eval(6, 6, false), eval(0, 0, true)]);
        assert_eq!(got, i32::try_from(expected).unwrap());
        assert_eq!(final_score(None, &[eval(8, 6, false)]), 0);
    }

    #[test]
    fn enum_filters_take_unset_or_known_values() {
        let mut v = Violations::new();
        assert_eq!(enum_filter::<pb::Audience>(&mut v, "audience", 0, "audience"), Some(None));
        assert_eq!(enum_filter::<pb::Audience>(&mut v, "audience", 2, "audience"), Some(Some(2)));
        assert!(v.is_empty());
        assert_eq!(enum_filter::<pb::Audience>(&mut v, "audience", 9, "audience"), None);
        assert_eq!(v.iter().map(|f| f.field.clone()).collect::<Vec<_>>(), ["audience"]);
    }
}
