//! The placements' queries: read models only, after waiting for the
//! caller's minimum position; rows mapped to API messages, with what a
//! reader may see (a host its own, the person's name and contacts only
//! while its placement runs; a viewer no personal data).

use acasa_domain::{Violations, formats::fold};
use acasa_proto::{placements::v1 as pb, r#type::v1::Money as PbMoney};
use acasa_runtime::{ApiError, page};
use chrono::{Datelike as _, NaiveDate, Utc};
use futures::TryStreamExt as _;
use sqlx::{Row as _, postgres::PgRow};
use tokio::time::Instant;
use uuid::Uuid;

use crate::{
    codec::date,
    domain::{Kind, matching, month_period},
    grpc::{PlacementService, Reader},
    validate,
};

fn money(minor: i64, currency: &str) -> Option<PbMoney> {
    Some(PbMoney { amount_minor: minor, currency: currency.to_owned() })
}

fn host_row(r: &PgRow) -> Result<pb::Host, sqlx::Error> {
    Ok(pb::Host {
        host_id: r.try_get::<Uuid, _>("host_id")?.to_string(),
        idno: r.try_get("idno")?,
        details: Some(pb::HostDetails {
            kind: i32::from(r.try_get::<i16, _>("kind")?),
            name: r.try_get("name")?,
            district: r.try_get("district")?,
            contact: Some(pb::HostContact {
                name: r.try_get("contact_name")?,
                email: r.try_get("contact_email")?,
                phone: r.try_get("contact_phone")?,
            }),
            hosts: r.try_get("hosts")?,
        }),
        suspended: r.try_get("suspended")?,
        open_offers: r.try_get::<i64, _>("open_offers")?.try_into().unwrap_or(i32::MAX),
        active_placements: r.try_get::<i64, _>("active_placements")?.try_into().unwrap_or(i32::MAX),
    })
}

/// A host's columns with its open offers and running placements counted.
macro_rules! host_columns {
    () => {
        "h.*, (SELECT count(*) FROM placements.offers o WHERE o.host_id = h.host_id AND NOT o.closed) \
         AS open_offers, (SELECT count(*) FROM placements.placements p WHERE p.host_id = h.host_id \
         AND p.status IN (5, 6)) AS active_placements"
    };
}

fn offer_row(r: &PgRow) -> Result<pb::Offer, sqlx::Error> {
    let currency: String = r.try_get("currency")?;
    Ok(pb::Offer {
        offer_id: r.try_get::<Uuid, _>("offer_id")?.to_string(),
        host_id: r.try_get::<Uuid, _>("host_id")?.to_string(),
        terms: Some(pb::OfferTerms {
            kind: i32::from(r.try_get::<i16, _>("kind")?),
            subject: r.try_get("subject")?,
            places: r.try_get("places")?,
            term_months: r.try_get("term_months")?,
            allowance: money(r.try_get("allowance_minor")?, &currency),
            travel_cap: money(r.try_get("travel_cap_minor")?, &currency),
            start_from: Some(date(r.try_get("start_from")?)),
            start_until: Some(date(r.try_get("start_until")?)),
            languages: r.try_get("languages")?,
        }),
        closed: r.try_get("closed")?,
        places_taken: r.try_get("places_taken")?,
    })
}

fn optional_date(r: &PgRow, column: &str) -> Result<Option<acasa_proto::r#type::v1::Date>, sqlx::Error> {
    Ok(r.try_get::<Option<NaiveDate>, _>(column)?.map(date))
}

fn placement_row(r: &PgRow) -> Result<pb::Placement, sqlx::Error> {
    let currency: String = r.try_get("currency")?;
    Ok(pb::Placement {
        placement_id: r.try_get::<Uuid, _>("placement_id")?.to_string(),
        person_id: r.try_get::<Uuid, _>("person_id")?.to_string(),
        offer_id: r.try_get::<Uuid, _>("offer_id")?.to_string(),
        host_id: r.try_get::<Uuid, _>("host_id")?.to_string(),
        kind: i32::from(r.try_get::<i16, _>("kind")?),
        status: i32::from(r.try_get::<i16, _>("status")?),
        allowance: money(r.try_get("allowance_minor")?, &currency),
        travel_cap: money(r.try_get("travel_cap_minor")?, &currency),
        term_months: r.try_get("term_months")?,
        started_on: optional_date(r, "started_on")?,
        ended_on: optional_date(r, "ended_on")?,
        months: Vec::new(),
        travel_claims: Vec::new(),
        outcome_at_completion: i32::from(r.try_get::<Option<i16>, _>("outcome_completion")?.unwrap_or(0)),
        outcome_at_follow_up: i32::from(r.try_get::<Option<i16>, _>("outcome_follow_up")?.unwrap_or(0)),
        follow_up_overdue: r.try_get("follow_up_overdue")?,
        person: None,
        proposed_at: Some(acasa_proto::time::timestamp(r.try_get("proposed_at")?)),
    })
}

/// The person as `reader` may see them on a placement in `status`.
fn placed_person(reader: Reader, status: i16, r: &PgRow) -> Result<Option<pb::PlacedPerson>, sqlx::Error> {
    let running = matches!(status, 5 | 6);
    let (name, contacts) = match reader {
        Reader::Staff => (true, true),
        Reader::Finance => (true, false),
        Reader::Host(_) if running => (true, true),
        Reader::Host(_) | Reader::Viewer => (false, false),
    };
    if !name {
        return Ok(None);
    }
    let given: Option<String> = r.try_get("given_name")?;
    let family: Option<String> = r.try_get("family_name")?;
    let Some(name) = given.zip(family).map(|(g, f)| format!("{g} {f}")) else { return Ok(None) };
    let (email, phone) = if contacts {
        (
            r.try_get::<Option<String>, _>("email")?.unwrap_or_default(),
            r.try_get::<Option<String>, _>("phone")?.unwrap_or_default(),
        )
    } else {
        (String::new(), String::new())
    };
    Ok(Some(pb::PlacedPerson { name, email, phone }))
}

fn kind_filter(v: &mut Violations, field: &str, kind: i32) -> Option<Option<i16>> {
    match pb::PlacementKind::try_from(kind) {
        Ok(pb::PlacementKind::Unspecified) => Some(None),
        Ok(k) => Some(Some(k as i16)),
        Err(_) => {
            v.add(field, "must be a known placement kind (or unset)");
            None
        }
    }
}

fn optional_id(v: &mut Violations, field: &str, s: &str) -> Option<Option<Uuid>> {
    if s.is_empty() { Some(None) } else { validate::id(v, field, s).map(Some) }
}

fn optional_folded(v: &mut Violations, field: &str, s: &str, max: usize) -> Option<Option<String>> {
    if s.is_empty() { Some(None) } else { validate::text(v, field, s, max).map(|t| Some(fold(&t))) }
}

impl PlacementService {
    async fn at(&self, min: u64, deadline: Instant) -> Result<u64, ApiError> {
        Ok(self.positions.at(crate::PROJECTION, self.placements.store().stream_name(), min, deadline).await?)
    }

    // ------------------------------------------------------------ hosts
    pub(crate) async fn get_host_row(
        &self,
        reader: Reader,
        req: &pb::GetHostRequest,
        deadline: Instant,
    ) -> Result<pb::Host, ApiError> {
        let mut v = Violations::new();
        let Some(id) = validate::id(&mut v, "host_id", &req.host_id) else { return Err(v.into()) };
        if matches!(reader, Reader::Host(own) if own != id) {
            return Err(ApiError::NotFound(format!("no host institution {id}")));
        }
        self.at(req.min_position, deadline).await?;
        let row = sqlx::query(concat!("SELECT ", host_columns!(), " FROM placements.hosts h WHERE h.host_id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no host institution {id}")))?;
        Ok(host_row(&row)?)
    }

    pub(crate) async fn list_hosts(
        &self,
        req: &pb::ListHostsRequest,
        deadline: Instant,
    ) -> Result<pb::ListHostsResponse, ApiError> {
        let mut v = Violations::new();
        let kind = match pb::HostKind::try_from(req.kind) {
            Ok(pb::HostKind::Unspecified) => Some(None),
            Ok(k) => Some(Some(k as i16)),
            Err(_) => {
                v.add("kind", "must be a known host kind (or unset)");
                None
            }
        };
        let district = optional_folded(&mut v, "district", &req.district, validate::DISTRICT_MAX);
        let field = optional_folded(&mut v, "hosts", &req.hosts, validate::SUBJECT_MAX);
        let page = page::request::<Uuid>(&mut v, req.page_size, &req.page_token);
        let (Some(kind), Some(district), Some(field), Some(page)) = (kind, district, field, page) else {
            return Err(v.into());
        };
        self.at(req.min_position, deadline).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            host_columns!(),
            " FROM placements.hosts h WHERE ($1::smallint IS NULL OR h.kind = $1) \
             AND ($2::text IS NULL OR h.district_folded = $2) AND ($3::text IS NULL OR $3 = ANY(h.hosts)) \
             AND ($4 OR NOT h.suspended) AND ($5::uuid IS NULL OR h.host_id > $5) ORDER BY h.host_id LIMIT $6"
        ))
        .bind(kind)
        .bind(district)
        .bind(field)
        .bind(req.include_suspended)
        .bind(page.after)
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await?;
        let (rows, next_page_token) = page.cut(rows, |r| r.try_get::<Uuid, _>("host_id").unwrap_or_default());
        let hosts = rows.iter().map(host_row).collect::<Result<_, _>>()?;
        Ok(pb::ListHostsResponse { hosts, next_page_token })
    }

    // ------------------------------------------------------------ offers
    pub(crate) async fn get_offer_row(
        &self,
        reader: Reader,
        req: &pb::GetOfferRequest,
        deadline: Instant,
    ) -> Result<pb::Offer, ApiError> {
        let mut v = Violations::new();
        let Some(id) = validate::id(&mut v, "offer_id", &req.offer_id) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let row = sqlx::query("SELECT * FROM placements.offers WHERE offer_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .filter(|r| match reader {
                Reader::Host(own) => r.try_get::<Uuid, _>("host_id").is_ok_and(|h| h == own),
                _ => true,
            })
            .ok_or_else(|| ApiError::NotFound(format!("no offer {id}")))?;
        Ok(offer_row(&row)?)
    }

    pub(crate) async fn list_offers(
        &self,
        reader: Reader,
        req: &pb::ListOffersRequest,
        deadline: Instant,
    ) -> Result<pb::ListOffersResponse, ApiError> {
        let mut v = Violations::new();
        let kind = kind_filter(&mut v, "kind", req.kind);
        let host = optional_id(&mut v, "host_id", &req.host_id);
        let district = optional_folded(&mut v, "district", &req.district, validate::DISTRICT_MAX);
        let page = page::request::<Uuid>(&mut v, req.page_size, &req.page_token);
        let (Some(kind), Some(mut host), Some(district), Some(page)) = (kind, host, district, page) else {
            return Err(v.into());
        };
        if let Reader::Host(own) = reader {
            host = Some(own);
        }
        self.at(req.min_position, deadline).await?;
        let rows = sqlx::query(
            "SELECT * FROM placements.offers WHERE ($1::smallint IS NULL OR kind = $1) \
             AND ($2::uuid IS NULL OR host_id = $2) AND ($3::text IS NULL OR district_folded = $3) \
             AND ($4 OR (NOT closed AND places_taken < places)) AND ($5::uuid IS NULL OR offer_id > $5) \
             ORDER BY offer_id LIMIT $6",
        )
        .bind(kind)
        .bind(host)
        .bind(district)
        .bind(req.include_closed)
        .bind(page.after)
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await?;
        let (rows, next_page_token) = page.cut(rows, |r| r.try_get::<Uuid, _>("offer_id").unwrap_or_default());
        let offers = rows.iter().map(offer_row).collect::<Result<_, _>>()?;
        Ok(pb::ListOffersResponse { offers, next_page_token })
    }

    pub(crate) async fn list_candidates(
        &self,
        req: &pb::ListCandidatesRequest,
        deadline: Instant,
    ) -> Result<pb::ListCandidatesResponse, ApiError> {
        let mut v = Violations::new();
        let id = validate::id(&mut v, "offer_id", &req.offer_id);
        let page = page::request::<(i32, Uuid)>(&mut v, req.page_size, &req.page_token);
        let (Some(id), Some(page)) = (id, page) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        if req.min_registry_position > 0 {
            let registry = acasa_eventstore::stream_name_of("registry");
            self.positions
                .wait_for(crate::PEOPLE_PROJECTION, &registry, req.min_registry_position, deadline)
                .await
                .map_err(|e| ApiError::waiting(e, "min_registry_position"))?;
        }
        let offer: Option<(i16, String, Vec<String>, Vec<String>)> = sqlx::query_as(
            "SELECT o.kind, o.subject, o.languages, COALESCE(h.hosts, '{}') FROM placements.offers o \
             LEFT JOIN placements.hosts h ON h.host_id = o.host_id WHERE o.offer_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((kind, subject, languages, host_fields)) = offer else {
            return Err(ApiError::NotFound(format!("no offer {id}")));
        };
        let kind = if kind == crate::projection::kind_number(Kind::ScientificAssignment) {
            Kind::ScientificAssignment
        } else {
            Kind::GraduatePlacement
        };
        let interest = crate::interest_of(kind);
        let wanted = matching::Wanted { kind: Some(kind), subject, host_fields, languages };
        let limit = usize::try_from(page.limit()).unwrap_or(usize::MAX);
        // Every eligible person is ranked (active, consented to programme
        // participation, in the kind's category, no active placement),
        // streamed: only the page's best after the cursor are kept.
        let mut rows = sqlx::query(
            "SELECT person_id, profession, scientific_field, COALESCE(education_fields, '{}') AS education_fields, \
             COALESCE(skills, '{}') AS skills, COALESCE(languages, '{}') AS languages, \
             $2 = ANY(interests) AS interested FROM placements.people p \
             WHERE p.status = 1 AND p.programme_consent AND $1 = ANY(p.categories) \
             AND NOT EXISTS (SELECT 1 FROM placements.placements x WHERE x.person_id = p.person_id \
             AND x.status IN (1, 2, 5, 6))",
        )
        .bind(crate::category_of(kind))
        .bind(interest)
        .fetch(&self.pool);
        let mut best = matching::Best::new(limit, page.after);
        while let Some(r) = rows.try_next().await? {
            best.offer(matching::rank_one(
                &wanted,
                &matching::Profile {
                    person: r.try_get("person_id")?,
                    profession: r.try_get("profession")?,
                    scientific_field: r.try_get("scientific_field")?,
                    education_fields: r.try_get("education_fields")?,
                    skills: r.try_get("skills")?,
                    languages: r.try_get("languages")?,
                    interested: r.try_get::<Option<bool>, _>("interested")?.unwrap_or(false),
                },
            ));
        }
        let (rest, next_page_token) = page.cut(best.into_sorted(), |r| (r.score, r.person));
        let candidates = rest
            .into_iter()
            .map(|r| pb::Candidate {
                person_id: r.person.to_string(),
                score: r.score,
                subject_match: r.subject_match.is_some(),
                reason: r.reason(),
                matching_skills: r.matching_skills,
                matching_languages: r.matching_languages,
            })
            .collect();
        Ok(pb::ListCandidatesResponse { candidates, next_page_token })
    }

    // ------------------------------------------------------------ placements
    pub(crate) async fn get_placement_row(
        &self,
        reader: Reader,
        req: &pb::GetPlacementRequest,
        deadline: Instant,
    ) -> Result<pb::Placement, ApiError> {
        let mut v = Violations::new();
        let Some(id) = validate::id(&mut v, "placement_id", &req.placement_id) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let row = sqlx::query(
            "SELECT x.*, p.given_name, p.family_name, p.email, p.phone FROM placements.placements x \
             LEFT JOIN placements.people p ON p.person_id = x.person_id WHERE x.placement_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .filter(|r| match reader {
            Reader::Host(own) => r.try_get::<Uuid, _>("host_id").is_ok_and(|h| h == own),
            _ => true,
        })
        .ok_or_else(|| ApiError::NotFound(format!("no placement {id}")))?;
        let mut placement = placement_row(&row)?;
        let status: i16 = row.try_get("status")?;
        placement.person = placed_person(reader, status, &row)?;
        let started: Option<NaiveDate> = row.try_get("started_on")?;
        let months: Vec<PgRow> = sqlx::query(
            "SELECT month, due_minor, currency, due_on, present, paid_minor, paid_on, payment_ref \
             FROM placements.months WHERE placement_id = $1 ORDER BY month",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        placement.months = schedule(started, &placement, &months, status)?;
        let claims =
            sqlx::query("SELECT * FROM placements.travel_claims WHERE placement_id = $1 ORDER BY position, claim_id")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        placement.travel_claims = claims
            .iter()
            .map(|c| {
                let currency: String = c.try_get("currency")?;
                Ok(pb::TravelClaim {
                    claim_id: c.try_get::<Uuid, _>("claim_id")?.to_string(),
                    kind: c.try_get("kind")?,
                    requested: money(c.try_get("requested_minor")?, &currency),
                    approved: c.try_get::<Option<i64>, _>("approved_minor")?.and_then(|m| money(m, &currency)),
                    rejected: c.try_get("rejected")?,
                    paid: c.try_get::<Option<i64>, _>("paid_minor")?.is_some(),
                    receipt_reference: c.try_get("receipt_ref")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(placement)
    }

    pub(crate) async fn list_placements(
        &self,
        reader: Reader,
        req: &pb::ListPlacementsRequest,
        deadline: Instant,
    ) -> Result<pb::ListPlacementsResponse, ApiError> {
        let mut v = Violations::new();
        let host = optional_id(&mut v, "host_id", &req.host_id);
        let kind = kind_filter(&mut v, "kind", req.kind);
        let district = optional_folded(&mut v, "district", &req.district, validate::DISTRICT_MAX);
        let mut statuses: Vec<i16> = Vec::new();
        for (i, s) in req.statuses.iter().enumerate() {
            match pb::PlacementStatus::try_from(*s) {
                Ok(pb::PlacementStatus::Unspecified) | Err(_) => {
                    v.add(format!("statuses[{i}]"), "must be a known placement status");
                }
                Ok(s) => statuses.push(s as i16),
            }
        }
        if statuses.is_empty() {
            statuses = vec![1, 2, 5, 6];
        }
        let page = page::request::<Uuid>(&mut v, req.page_size, &req.page_token);
        let (Some(mut host), Some(kind), Some(district), Some(page)) = (host, kind, district, page) else {
            return Err(v.into());
        };
        v.into_result()?;
        if let Reader::Host(own) = reader {
            host = Some(own);
        }
        self.at(req.min_position, deadline).await?;
        let rows = sqlx::query(
            "SELECT * FROM placements.placements WHERE ($1::uuid IS NULL OR host_id = $1) \
             AND ($2::smallint IS NULL OR kind = $2) AND ($3::text IS NULL OR district_folded = $3) \
             AND status = ANY($4) AND ($5::uuid IS NULL OR placement_id > $5) ORDER BY placement_id LIMIT $6",
        )
        .bind(host)
        .bind(kind)
        .bind(district)
        .bind(&statuses)
        .bind(page.after)
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await?;
        let (rows, next_page_token) = page.cut(rows, |r| r.try_get::<Uuid, _>("placement_id").unwrap_or_default());
        let placements = rows.iter().map(placement_row).collect::<Result<_, _>>()?;
        Ok(pb::ListPlacementsResponse { placements, next_page_token })
    }

    // ------------------------------------------------------------ finance
    pub(crate) async fn list_payments_due(
        &self,
        req: &pb::ListPaymentsDueRequest,
        deadline: Instant,
    ) -> Result<pb::ListPaymentsDueResponse, ApiError> {
        let mut v = Violations::new();
        let as_of = match &req.as_of {
            None => Some(Utc::now().date_naive()),
            Some(d) => validate::date(&mut v, "as_of", Some(d)),
        };
        let page = page::request::<(NaiveDate, Uuid, i32)>(&mut v, req.page_size, &req.page_token);
        let (Some(as_of), Some(page)) = (as_of, page) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let (after_day, after_id, after_month) = match page.after {
            Some((d, id, m)) => (Some(d), Some(id), Some(m)),
            None => (None, None, None),
        };
        let rows = sqlx::query(
            "SELECT placement_id, host_id, month, due_minor, currency, due_on, present FROM placements.months \
             WHERE paid_minor IS NULL AND due_on <= $1 AND ($2 OR present) \
             AND ($3::date IS NULL OR (due_on, placement_id, month) > ($3, $4, $5)) \
             ORDER BY due_on, placement_id, month LIMIT $6",
        )
        .bind(as_of)
        .bind(req.include_unconfirmed)
        .bind(after_day)
        .bind(after_id)
        .bind(after_month)
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await?;
        let key = |r: &PgRow| {
            (
                r.try_get::<NaiveDate, _>("due_on").unwrap_or_default(),
                r.try_get::<Uuid, _>("placement_id").unwrap_or_default(),
                r.try_get::<i32, _>("month").unwrap_or_default(),
            )
        };
        let (rows, next_page_token) = page.cut(rows, key);
        let month_start = as_of.with_day(1).unwrap_or(as_of);
        let payments = rows
            .iter()
            .map(|r| {
                let due_on: NaiveDate = r.try_get("due_on")?;
                let currency: String = r.try_get("currency")?;
                Ok(pb::PaymentDue {
                    placement_id: r.try_get::<Uuid, _>("placement_id")?.to_string(),
                    host_id: r.try_get::<Uuid, _>("host_id")?.to_string(),
                    month: r.try_get("month")?,
                    due: money(r.try_get("due_minor")?, &currency),
                    due_on: Some(date(due_on)),
                    present: r.try_get("present")?,
                    overdue: due_on < month_start,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(pb::ListPaymentsDueResponse { payments, next_page_token })
    }

    /// Committed: a signed, running or completed placement's allowance over
    /// its whole term and its travel cap; an ended one's allowances that fell
    /// due (no more will) and its travel approved. Paid: what was paid.
    pub(crate) async fn budget(
        &self,
        req: &pb::GetBudgetRequest,
        deadline: Instant,
    ) -> Result<pb::GetBudgetResponse, ApiError> {
        self.at(req.min_position, deadline).await?;
        let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT x.currency, \
             COALESCE(sum(CASE WHEN x.status = 8 \
                 THEN (SELECT COALESCE(sum(m.due_minor), 0) FROM placements.months m WHERE m.placement_id = x.placement_id) \
                 ELSE x.allowance_minor * x.term_months END), 0)::bigint, \
             COALESCE(sum(CASE WHEN x.status = 8 \
                 THEN (SELECT COALESCE(sum(t.approved_minor), 0) FROM placements.travel_claims t WHERE t.placement_id = x.placement_id) \
                 ELSE x.travel_cap_minor END), 0)::bigint, \
             COALESCE(sum((SELECT COALESCE(sum(m.paid_minor), 0) FROM placements.months m WHERE m.placement_id = x.placement_id)), 0)::bigint, \
             COALESCE(sum((SELECT COALESCE(sum(t.paid_minor), 0) FROM placements.travel_claims t WHERE t.placement_id = x.placement_id)), 0)::bigint \
             FROM placements.placements x WHERE x.status IN (5, 6, 7, 8) GROUP BY x.currency ORDER BY x.currency",
        )
        .fetch_all(&self.pool)
        .await?;
        let lines = rows
            .into_iter()
            .map(|(currency, allowances, travel, allowances_paid, travel_paid)| pb::BudgetLine {
                currency,
                allowances_committed_minor: allowances,
                travel_committed_minor: travel,
                allowances_paid_minor: allowances_paid,
                travel_paid_minor: travel_paid,
            })
            .collect();
        Ok(pb::GetBudgetResponse { lines })
    }

    pub(crate) async fn outcomes(
        &self,
        req: &pb::GetOutcomesRequest,
        deadline: Instant,
    ) -> Result<pb::GetOutcomesResponse, ApiError> {
        let mut v = Violations::new();
        let Some(kind) = kind_filter(&mut v, "kind", req.kind) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let rows: Vec<(i16, i16, i64)> = sqlx::query_as(
            "SELECT 1::smallint, outcome_completion, count(*) FROM placements.placements \
             WHERE outcome_completion IS NOT NULL AND ($1::smallint IS NULL OR kind = $1) GROUP BY 2 \
             UNION ALL SELECT 2::smallint, outcome_follow_up, count(*) FROM placements.placements \
             WHERE outcome_follow_up IS NOT NULL AND ($1::smallint IS NULL OR kind = $1) GROUP BY 2 ORDER BY 1, 2",
        )
        .bind(kind)
        .fetch_all(&self.pool)
        .await?;
        let overdue: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM placements.placements WHERE follow_up_overdue AND outcome_follow_up IS NULL \
             AND ($1::smallint IS NULL OR kind = $1)",
        )
        .bind(kind)
        .fetch_one(&self.pool)
        .await?;
        let counts = rows
            .into_iter()
            .map(|(stage, kind, n)| pb::OutcomeCount {
                stage: i32::from(stage),
                kind: i32::from(kind),
                count: i32::try_from(n).unwrap_or(i32::MAX),
            })
            .collect();
        Ok(pb::GetOutcomesResponse { counts, follow_ups_overdue: i32::try_from(overdue).unwrap_or(i32::MAX) })
    }

    pub(crate) async fn progress(
        &self,
        req: &pb::GetProgressRequest,
        deadline: Instant,
    ) -> Result<pb::GetProgressResponse, ApiError> {
        self.at(req.min_position, deadline).await?;
        let mut kinds = Vec::new();
        for (kind, target) in
            [(Kind::GraduatePlacement, self.targets.graduates), (Kind::ScientificAssignment, self.targets.scientists)]
        {
            let (placed, running, completed, ended): (i64, i64, i64, i64) = sqlx::query_as(
                "SELECT count(*) FILTER (WHERE status IN (5, 6, 7, 8)), count(*) FILTER (WHERE status = 6), \
                 count(*) FILTER (WHERE status = 7), count(*) FILTER (WHERE status = 8) \
                 FROM placements.placements WHERE kind = $1",
            )
            .bind(crate::projection::kind_number(kind))
            .fetch_one(&self.pool)
            .await?;
            let n = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
            kinds.push(pb::KindProgress {
                kind: crate::codec::kind(kind) as i32,
                target: i32::try_from(target).unwrap_or(i32::MAX),
                placed: n(placed),
                running: n(running),
                completed: n(completed),
                ended_early: n(ended),
            });
        }
        Ok(pb::GetProgressResponse { kinds })
    }
}

/// The term's months: those that fell due as recorded, and, while the
/// placement has not ended, the months still to come with their dates (no
/// amount until they fall due).
fn schedule(
    started: Option<NaiveDate>,
    p: &pb::Placement,
    rows: &[PgRow],
    status: i16,
) -> Result<Vec<pb::AllowanceMonth>, sqlx::Error> {
    let mut out = Vec::new();
    let months = u32::try_from(p.term_months).unwrap_or(0);
    let period = |k: u32| started.and_then(|s| month_period(s, k));
    let mut recorded = std::collections::BTreeMap::new();
    for r in rows {
        recorded.insert(u32::try_from(r.try_get::<i32, _>("month")?).unwrap_or(0), r);
    }
    for k in 1..=months {
        let from = period(k).map(|(f, _)| date(f));
        match recorded.get(&k) {
            Some(r) => {
                let currency: String = r.try_get("currency")?;
                out.push(pb::AllowanceMonth {
                    month: i32::try_from(k).unwrap_or(0),
                    from,
                    due_on: Some(date(r.try_get("due_on")?)),
                    due: money(r.try_get("due_minor")?, &currency),
                    present: r.try_get("present")?,
                    paid: r.try_get::<Option<i64>, _>("paid_minor")?.and_then(|m| money(m, &currency)),
                    paid_on: optional_date(r, "paid_on")?,
                    payment_reference: r.try_get::<Option<String>, _>("payment_ref")?.unwrap_or_default(),
                });
            }
            // Still to come while the placement runs.
            None if status == 6 => out.push(pb::AllowanceMonth {
                month: i32::try_from(k).unwrap_or(0),
                from,
                due_on: period(k).map(|(_, d)| date(d)),
                ..pb::AllowanceMonth::default()
            }),
            None => {}
        }
    }
    Ok(out)
}
