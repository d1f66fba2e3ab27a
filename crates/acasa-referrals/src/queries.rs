//! The referral system's queries: its read models only, after waiting for
//! the caller's minimum position; rows mapped to API messages, with what a
//! reader may see (a partner its own referrals, profiles under consent).

use std::time::Duration;

use acasa_domain::Violations;
use acasa_proto::{
    Message as _,
    partner::v1 as types,
    referrals::v1::{self as pb},
};
use acasa_runtime::{
    ApiError,
    page::{self, PageRequest},
};
use chrono::{DateTime, Utc};
use sqlx::{Row as _, postgres::PgRow};
use tokio::time::Instant;
use uuid::Uuid;

use crate::grpc::{Reader, ReferralService};
use crate::{
    domain::{proto_duration, timestamp},
    sealing, validate,
};

fn time_proto(t: Option<DateTime<Utc>>) -> Option<prost_types::Timestamp> {
    t.map(timestamp)
}

fn partner_row(r: &PgRow) -> Result<pb::Partner, sqlx::Error> {
    let contact: Vec<u8> = r.try_get("contact")?;
    let services: Vec<u8> = r.try_get("services")?;
    let millis: i64 = r.try_get("response_time_ms")?;
    Ok(pb::Partner {
        partner_id: r.try_get::<Uuid, _>("partner_id")?.to_string(),
        kind: i32::from(r.try_get::<i16, _>("kind")?),
        name: r.try_get("name")?,
        idno: r.try_get("idno")?,
        districts: r.try_get("districts")?,
        contact: pb::PartnerContact::decode(contact.as_slice()).ok(),
        services: pb::PartnerServicesSet::decode(services.as_slice()).map(|s| s.services).unwrap_or_default(),
        response_time: Some(proto_duration(Duration::from_millis(u64::try_from(millis).unwrap_or(0)))),
        suspended: r.try_get("suspended")?,
        registered_at: Some(timestamp(r.try_get("registered_at")?)),
    })
}

const REFERRAL_COLUMNS: &str = "r.referral_id, r.person_id, r.partner_id, r.partner_kind, r.service, \
     r.requested_amount, r.requested_currency, r.district, r.referrer_staff, r.referrer_partner, r.status, \
     r.created_at, r.due_at, r.answered_at, r.sla_breached_at, r.progress, r.outcome, r.decline_reason, \
     r.withdraw_reason, r.re_referred_from, r.re_referred_to, r.closed_at";

fn referral_row(r: &PgRow, reader: Reader) -> Result<pb::Referral, sqlx::Error> {
    let amount: Option<i64> = r.try_get("requested_amount")?;
    let currency: Option<String> = r.try_get("requested_currency")?;
    let referrer =
        match (r.try_get::<Option<String>, _>("referrer_staff")?, r.try_get::<Option<Uuid>, _>("referrer_partner")?) {
            (_, Some(p)) => Some(pb::referrer::Kind::PartnerId(p.to_string())),
            // A partner does not learn staff subjects.
            (Some(s), None) if !matches!(reader, Reader::Partner(_)) => Some(pb::referrer::Kind::StaffSubject(s)),
            (Some(_), None) => Some(pb::referrer::Kind::StaffSubject(String::new())),
            (None, None) => None,
        };
    let outcome: Option<Vec<u8>> = r.try_get("outcome")?;
    let id_text = |c: &str| -> Result<String, sqlx::Error> {
        Ok(r.try_get::<Option<Uuid>, _>(c)?.map(|u| u.to_string()).unwrap_or_default())
    };
    Ok(pb::Referral {
        referral_id: r.try_get::<Uuid, _>("referral_id")?.to_string(),
        person_id: if matches!(reader, Reader::Partner(_)) {
            String::new()
        } else {
            r.try_get::<Uuid, _>("person_id")?.to_string()
        },
        partner_id: r.try_get::<Uuid, _>("partner_id")?.to_string(),
        partner_kind: i32::from(r.try_get::<i16, _>("partner_kind")?),
        need: Some(types::Need {
            service: i32::from(r.try_get::<i16, _>("service")?),
            requested_amount: amount
                .zip(currency)
                .map(|(amount_minor, currency)| acasa_proto::r#type::v1::Money { amount_minor, currency }),
        }),
        district: r.try_get("district")?,
        referrer: referrer.map(|k| pb::Referrer { kind: Some(k) }),
        status: i32::from(r.try_get::<i16, _>("status")?),
        created_at: time_proto(r.try_get("created_at")?),
        due_at: time_proto(r.try_get("due_at")?),
        answered_at: time_proto(r.try_get("answered_at")?),
        sla_breached_at: time_proto(r.try_get("sla_breached_at")?),
        progress: i32::from(r.try_get::<i16, _>("progress")?),
        outcome: outcome.and_then(|b| types::Outcome::decode(b.as_slice()).ok()),
        decline_reason: i32::from(r.try_get::<i16, _>("decline_reason")?),
        withdraw_reason: i32::from(r.try_get::<i16, _>("withdraw_reason")?),
        re_referred_from: id_text("re_referred_from")?,
        re_referred_to: id_text("re_referred_to")?,
        profile: None,
        closed_at: time_proto(r.try_get("closed_at")?),
    })
}

impl ReferralService {
    pub(crate) async fn at_position(&self, projection: &str, min: u64, deadline: Instant) -> Result<u64, ApiError> {
        Ok(self.positions.at(projection, self.referrals.store().stream_name(), min, deadline).await?)
    }

    pub(crate) async fn get_partner_row(
        &self,
        req: &pb::GetPartnerRequest,
        deadline: Instant,
    ) -> Result<pb::Partner, ApiError> {
        let mut v = Violations::new();
        let id = validate::id(&mut v, "partner_id", &req.partner_id);
        let Some(id) = id else { return Err(v.into()) };
        self.at_position(crate::PROJECTION, req.min_position, deadline).await?;
        let row = sqlx::query("SELECT * FROM referrals.partners WHERE partner_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no partner {id}")))?;
        Ok(partner_row(&row)?)
    }

    pub(crate) async fn list_partners(
        &self,
        req: &pb::ListPartnersRequest,
        deadline: Instant,
    ) -> Result<pb::ListPartnersResponse, ApiError> {
        let mut v = Violations::new();
        let kind = if req.kind == 0 { Some(None) } else { validate::partner_kind(&mut v, "kind", req.kind).map(Some) };
        let service = if req.service == 0 {
            Some(None)
        } else {
            validate::service_kind(&mut v, "service", req.service).map(Some)
        };
        let district = validate::note(&mut v, "district", &req.district, validate::DISTRICT_MAX);
        let page = page::request::<Uuid>(&mut v, req.page_size, &req.page_token);
        let (Some(kind), Some(service), Some(district), Some(page)) = (kind, service, district, page) else {
            return Err(v.into());
        };
        v.into_result()?;
        self.at_position(crate::PROJECTION, req.min_position, deadline).await?;
        let rows = sqlx::query(
            "SELECT * FROM referrals.partners WHERE ($1::smallint IS NULL OR kind = $1) \
             AND ($2::smallint IS NULL OR service_kinds @> ARRAY[$2]) \
             AND ($3::text IS NULL OR districts_folded @> ARRAY[$3]) \
             AND ($4 OR NOT suspended) AND ($5::uuid IS NULL OR partner_id > $5) \
             ORDER BY partner_id LIMIT $6",
        )
        .bind(kind.map(|k| k as i16))
        .bind(service.map(|s| s as i16))
        .bind((!district.is_empty()).then(|| acasa_domain::formats::fold(&district)))
        .bind(req.include_suspended)
        .bind(page.after)
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await?;
        let partners: Vec<pb::Partner> = rows.iter().map(partner_row).collect::<Result<_, _>>()?;
        let (partners, next_page_token) = page.cut(partners, |p| Uuid::parse_str(&p.partner_id).unwrap_or_default());
        Ok(pb::ListPartnersResponse { partners, next_page_token })
    }

    pub(crate) async fn get_referral(
        &self,
        reader: Reader,
        req: &pb::GetReferralRequest,
        deadline: Instant,
    ) -> Result<pb::Referral, ApiError> {
        let mut v = Violations::new();
        let id = validate::id(&mut v, "referral_id", &req.referral_id);
        let Some(id) = id else { return Err(v.into()) };
        self.at_position(crate::PROJECTION, req.min_position, deadline).await?;
        let sql = format!(
            "SELECT {REFERRAL_COLUMNS}, r.profile_sealed, \
             (c.given IS TRUE AND p.status = 1) AS shareable \
             FROM referrals.referrals r \
             LEFT JOIN referrals.consents c ON c.person_id = r.person_id AND c.partner_id = r.partner_id \
             LEFT JOIN referrals.people p ON p.person_id = r.person_id \
             WHERE r.referral_id = $1"
        );
        let not_found = || ApiError::NotFound(format!("no referral {id}"));
        let row =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?.ok_or_else(not_found)?;
        let mut referral = referral_row(&row, reader)?;
        let addressee = Uuid::parse_str(&referral.partner_id).unwrap_or_default();
        let open = matches!(referral.status, 1..=4);
        let sees_profile = match reader {
            Reader::Staff => true,
            Reader::Viewer => false,
            Reader::Partner(p) if p == addressee => open,
            Reader::Partner(p) => {
                let referrer = row.try_get::<Option<Uuid>, _>("referrer_partner")?;
                if referrer != Some(p) {
                    return Err(not_found());
                }
                false
            }
        };
        let shareable: Option<bool> = row.try_get("shareable")?;
        let sealed: Option<Vec<u8>> = row.try_get("profile_sealed")?;
        if sees_profile
            && shareable == Some(true)
            && let Some(sealed) = sealed
        {
            let person: Uuid = row.try_get("person_id")?;
            if let Some(key) = self.key(person, false).await? {
                referral.profile = sealing::open(&key, id, person, &sealed);
            }
        }
        Ok(referral)
    }

    pub(crate) async fn list_inbox(
        &self,
        reader: Reader,
        req: &pb::ListInboxRequest,
        deadline: Instant,
    ) -> Result<pb::ListInboxResponse, ApiError> {
        let mut v = Violations::new();
        let partner = match reader {
            Reader::Partner(own) => match validate::optional_id(&mut v, "partner_id", &req.partner_id) {
                Some(Some(p)) if p != own => {
                    return Err(ApiError::Rejected {
                        kind: acasa_domain::RejectionKind::NotFound,
                        message: "a partner token reads its own inbox only".into(),
                        rule: None,
                    });
                }
                Some(_) => Some(own),
                None => None,
            },
            _ => validate::id(&mut v, "partner_id", &req.partner_id),
        };
        let page = page::request::<(DateTime<Utc>, Uuid)>(&mut v, req.page_size, &req.page_token);
        let (Some(partner), Some(page)) = (partner, page) else { return Err(v.into()) };
        v.into_result()?;
        self.at_position(crate::PROJECTION, req.min_position, deadline).await?;
        let sql = format!(
            "SELECT {REFERRAL_COLUMNS} FROM referrals.referrals r \
             WHERE r.partner_id = $1 AND r.status IN (1, 2, 3) \
             AND ($2::timestamptz IS NULL OR (r.due_at, r.referral_id) > ($2, $3)) \
             ORDER BY r.due_at, r.referral_id LIMIT $4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(partner)
            .bind(page.after.map(|a| a.0))
            .bind(page.after.map(|a| a.1))
            .bind(page.limit())
            .fetch_all(&self.pool)
            .await?;
        let (referrals, next_page_token) = self.page(&rows, &page, reader, "due_at")?;
        Ok(pb::ListInboxResponse { referrals, next_page_token })
    }

    /// A page of referral rows, ordered by `key` then id, and the next token.
    pub(crate) fn page(
        &self,
        rows: &[PgRow],
        page: &PageRequest<(DateTime<Utc>, Uuid)>,
        reader: Reader,
        key: &str,
    ) -> Result<(Vec<pb::Referral>, String), ApiError> {
        let keyed = rows
            .iter()
            .map(|r| Ok(((r.try_get::<DateTime<Utc>, _>(key)?, r.try_get("referral_id")?), referral_row(r, reader)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let (keyed, token) = page.cut(keyed, |(k, _)| *k);
        Ok((keyed.into_iter().map(|(_, r)| r).collect(), token))
    }

    pub(crate) async fn list_breaches(
        &self,
        reader: Reader,
        req: &pb::ListSlaBreachesRequest,
        deadline: Instant,
    ) -> Result<pb::ListSlaBreachesResponse, ApiError> {
        let mut v = Violations::new();
        let partner = match reader {
            Reader::Partner(own) => Some(Some(own)),
            _ => validate::optional_id(&mut v, "partner_id", &req.partner_id),
        };
        let page = page::request::<(DateTime<Utc>, Uuid)>(&mut v, req.page_size, &req.page_token);
        let (Some(partner), Some(page)) = (partner, page) else { return Err(v.into()) };
        v.into_result()?;
        self.at_position(crate::PROJECTION, req.min_position, deadline).await?;
        let sql = format!(
            "SELECT {REFERRAL_COLUMNS} FROM referrals.referrals r \
             WHERE r.sla_breached_at IS NOT NULL AND ($1::uuid IS NULL OR r.partner_id = $1) \
             AND (NOT $2 OR r.status = 1) \
             AND ($3::timestamptz IS NULL OR (r.sla_breached_at, r.referral_id) < ($3, $4)) \
             ORDER BY r.sla_breached_at DESC, r.referral_id DESC LIMIT $5"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(partner)
            .bind(req.unanswered_only)
            .bind(page.after.map(|a| a.0))
            .bind(page.after.map(|a| a.1))
            .bind(page.limit())
            .fetch_all(&self.pool)
            .await?;
        let (referrals, next_page_token) = self.page(&rows, &page, reader, "sla_breached_at")?;
        Ok(pb::ListSlaBreachesResponse { referrals, next_page_token })
    }

    pub(crate) async fn pipeline(
        &self,
        req: &pb::GetPipelineRequest,
        deadline: Instant,
    ) -> Result<pb::GetPipelineResponse, ApiError> {
        let mut v = Violations::new();
        let partner = validate::optional_id(&mut v, "partner_id", &req.partner_id);
        let Some(partner) = partner else { return Err(v.into()) };
        self.at_position(crate::PROJECTION, req.min_position, deadline).await?;
        let rows: Vec<(Uuid, String, i16, i64)> = sqlx::query_as(
            "SELECT r.partner_id, p.name, r.status, count(*) FROM referrals.referrals r \
             JOIN referrals.partners p ON p.partner_id = r.partner_id \
             WHERE ($1::uuid IS NULL OR r.partner_id = $1) \
             GROUP BY r.partner_id, p.name, r.status ORDER BY p.name, r.partner_id, r.status",
        )
        .bind(partner)
        .fetch_all(&self.pool)
        .await?;
        Ok(pb::GetPipelineResponse {
            entries: rows
                .into_iter()
                .map(|(id, name, status, count)| pb::PipelineEntry {
                    partner_id: id.to_string(),
                    partner_name: name,
                    status: i32::from(status),
                    count,
                })
                .collect(),
        })
    }

    pub(crate) async fn conversion(
        &self,
        req: &pb::GetConversionRequest,
        deadline: Instant,
    ) -> Result<pb::GetConversionResponse, ApiError> {
        let mut v = Violations::new();
        let kind = if req.partner_kind == 0 {
            Some(None)
        } else {
            validate::partner_kind(&mut v, "partner_kind", req.partner_kind).map(Some)
        };
        let district = validate::note(&mut v, "district", &req.district, validate::DISTRICT_MAX);
        let (Some(kind), Some(district)) = (kind, district) else { return Err(v.into()) };
        v.into_result()?;
        self.at_position(crate::PROJECTION, req.min_position, deadline).await?;
        let district = (!district.is_empty()).then(|| acasa_domain::formats::fold(&district));
        // Re-referred referrals count once, for the partner they went on to.
        let rows: Vec<(i16, String, String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT partner_kind, district_folded, min(district), count(*), count(accepted_at), \
             count(*) FILTER (WHERE outcome_kind > 0), count(*) FILTER (WHERE outcome_kind IN (1, 2)) \
             FROM referrals.referrals WHERE status <> 8 \
             AND ($1::smallint IS NULL OR partner_kind = $1) AND ($2::text IS NULL OR district_folded = $2) \
             GROUP BY partner_kind, district_folded ORDER BY partner_kind, district_folded",
        )
        .bind(kind.map(|k| k as i16))
        .bind(&district)
        .fetch_all(&self.pool)
        .await?;
        let sums: Vec<(i16, String, String, i64)> = sqlx::query_as(
            "SELECT partner_kind, district_folded, disbursed_currency, sum(disbursed_amount)::bigint \
             FROM referrals.referrals WHERE outcome_kind = 1 AND status <> 8 \
             AND ($1::smallint IS NULL OR partner_kind = $1) AND ($2::text IS NULL OR district_folded = $2) \
             GROUP BY partner_kind, district_folded, disbursed_currency ORDER BY disbursed_currency",
        )
        .bind(kind.map(|k| k as i16))
        .bind(&district)
        .fetch_all(&self.pool)
        .await?;
        Ok(pb::GetConversionResponse {
            entries: rows
                .into_iter()
                .map(|(kind, folded, name, referred, accepted, with_outcome, delivered)| pb::ConversionEntry {
                    partner_kind: i32::from(kind),
                    district: name,
                    referred,
                    accepted,
                    with_outcome,
                    delivered,
                    disbursed: sums
                        .iter()
                        .filter(|s| s.0 == kind && s.1 == folded)
                        .map(|s| acasa_proto::r#type::v1::Money { amount_minor: s.3, currency: s.2.clone() })
                        .collect(),
                })
                .collect(),
        })
    }
}
