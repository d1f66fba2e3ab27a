//! The `referrals.referrals` projection: partners and referrals, from the
//! service's own log. The shared profile is kept as sealed in the log and
//! opened only when read (see [`crate::service`]), so consent withdrawal and
//! erasure take effect without rewriting rows; a referral projected after its
//! person's erasure gets no profile at all.

use acasa_domain::EventCodec as _;
use acasa_domain::formats::fold;
use acasa_eventstore::StoredCommit;
use acasa_projection::{ApplyError, Projection};
use acasa_proto::{Message as _, partner::v1 as types, referrals::v1 as pb};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    PARTNER_PREFIX, REFERRAL_PREFIX,
    domain::{PartnerEvent, ReferralEvent, duration_of, time_of},
};

/// Builds `referrals.partners` and `referrals.referrals`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReferralsProjection;

fn poison(e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Poison(e.to_string())
}

fn uuid(s: &str) -> Result<Uuid, ApplyError> {
    Uuid::parse_str(s).map_err(|_| poison("an event names an id that is not a UUID"))
}

fn optional_uuid(s: &str) -> Result<Option<Uuid>, ApplyError> {
    if s.is_empty() { Ok(None) } else { uuid(s).map(Some) }
}

fn services_bytes(services: &[pb::PartnerService]) -> (Vec<u8>, Vec<i16>) {
    let bytes = pb::PartnerServicesSet { services: services.to_vec() }.encode_to_vec();
    let kinds = services.iter().map(|s| i16::try_from(s.kind).unwrap_or(0)).collect();
    (bytes, kinds)
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn small(v: i32) -> i16 {
    i16::try_from(v).unwrap_or(0)
}

/// The outcome's kind as stored: 1 loan disbursed, 2 service delivered, 3 not delivered.
fn outcome_columns(o: &types::Outcome) -> (i16, Option<i64>, Option<String>) {
    match &o.kind {
        Some(types::outcome::Kind::LoanDisbursed(m)) => (1, Some(m.amount_minor), Some(m.currency.clone())),
        Some(types::outcome::Kind::ServiceDelivered(_)) => (2, None, None),
        Some(types::outcome::Kind::NotDelivered(_)) => (3, None, None),
        None => (0, None, None),
    }
}

impl Projection for ReferralsProjection {
    fn name(&self) -> &str {
        crate::PROJECTION
    }

    fn reset<'c>(&'c self, conn: &'c mut PgConnection) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query("TRUNCATE referrals.partners, referrals.referrals").execute(conn).await?;
            Ok(())
        })
    }

    fn apply<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        commits: &'c [StoredCommit],
    ) -> BoxFuture<'c, Result<(), ApplyError>> {
        Box::pin(async move {
            for c in commits {
                let position = i64::try_from(c.sequence).unwrap_or(i64::MAX);
                if let Some(id) = c.subject.strip_prefix(PARTNER_PREFIX) {
                    let id = uuid(id)?;
                    for e in &c.events {
                        let event = PartnerEvent::decode(e).map_err(poison)?;
                        apply_partner(conn, id, position, &event).await?;
                    }
                } else if let Some(id) = c.subject.strip_prefix(REFERRAL_PREFIX) {
                    let id = uuid(id)?;
                    for e in &c.events {
                        let event = ReferralEvent::decode(e).map_err(poison)?;
                        apply_referral(conn, id, position, &event).await?;
                    }
                }
            }
            Ok(())
        })
    }
}

async fn apply_partner(conn: &mut PgConnection, id: Uuid, position: i64, e: &PartnerEvent) -> Result<(), ApplyError> {
    match e {
        PartnerEvent::Registered(r) => {
            let (services, kinds) = services_bytes(&r.services);
            let folded: Vec<String> = r.districts.iter().map(|d| fold(d)).collect();
            sqlx::query(
                "INSERT INTO referrals.partners (partner_id, kind, name, idno, districts, districts_folded, contact, \
                 services, service_kinds, response_time_ms, suspended, registered_at, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, false, $11, $12) \
                 ON CONFLICT (partner_id) DO NOTHING",
            )
            .bind(id)
            .bind(small(r.kind))
            .bind(&r.name)
            .bind(&r.idno)
            .bind(&r.districts)
            .bind(&folded)
            .bind(r.contact.clone().unwrap_or_default().encode_to_vec())
            .bind(services)
            .bind(kinds)
            .bind(millis(duration_of(r.response_time.as_ref())))
            .bind(time_of(r.registered_at.as_ref()))
            .bind(position)
            .execute(&mut *conn)
            .await?;
        }
        PartnerEvent::ServicesSet(s) => {
            let (services, kinds) = services_bytes(&s.services);
            sqlx::query(
                "UPDATE referrals.partners SET services = $2, service_kinds = $3, position = $4 WHERE partner_id = $1",
            )
            .bind(id)
            .bind(services)
            .bind(kinds)
            .bind(position)
            .execute(&mut *conn)
            .await?;
        }
        PartnerEvent::ResponseTimeSet(s) => {
            sqlx::query("UPDATE referrals.partners SET response_time_ms = $2, position = $3 WHERE partner_id = $1")
                .bind(id)
                .bind(millis(duration_of(s.response_time.as_ref())))
                .bind(position)
                .execute(&mut *conn)
                .await?;
        }
        PartnerEvent::Suspended(_) | PartnerEvent::Reactivated(_) => {
            sqlx::query("UPDATE referrals.partners SET suspended = $2, position = $3 WHERE partner_id = $1")
                .bind(id)
                .bind(matches!(e, PartnerEvent::Suspended(_)))
                .bind(position)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// `UPDATE referrals.referrals SET <set>, position = $2 WHERE referral_id = $1`
/// with the extra binds from `$3`.
macro_rules! update {
    ($set:literal $(,)?) => {
        concat!("UPDATE referrals.referrals SET ", $set, ", position = $2 WHERE referral_id = $1")
    };
}

async fn apply_referral(conn: &mut PgConnection, id: Uuid, position: i64, e: &ReferralEvent) -> Result<(), ApplyError> {
    match e {
        ReferralEvent::Created(c) => {
            let need = c.need.clone().unwrap_or_default();
            let (staff, partner) = match c.referrer.as_ref().and_then(|r| r.kind.as_ref()) {
                Some(pb::referrer::Kind::StaffSubject(s)) => (Some(s.clone()), None),
                Some(pb::referrer::Kind::PartnerId(p)) => (None, Some(uuid(p)?)),
                None => (None, None),
            };
            let person = uuid(&c.person_id)?;
            // A person erased before this projection got here keeps no
            // profile, not even sealed.
            sqlx::query(
                "INSERT INTO referrals.referrals (referral_id, person_id, partner_id, partner_kind, service, \
                 requested_amount, requested_currency, district, district_folded, referrer_staff, referrer_partner, \
                 status, created_at, due_at, re_referred_from, profile_sealed, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $13, $14, \
                 CASE WHEN EXISTS (SELECT 1 FROM referrals.people p WHERE p.person_id = $2 AND p.status = 3) \
                      THEN NULL ELSE $15 END, $16) \
                 ON CONFLICT (referral_id) DO NOTHING",
            )
            .bind(id)
            .bind(person)
            .bind(uuid(&c.partner_id)?)
            .bind(small(c.partner_kind))
            .bind(small(need.service))
            .bind(need.requested_amount.as_ref().map(|m| m.amount_minor))
            .bind(need.requested_amount.as_ref().map(|m| m.currency.clone()))
            .bind(&c.district)
            .bind(fold(&c.district))
            .bind(staff)
            .bind(partner)
            .bind(time_of(c.created_at.as_ref()))
            .bind(time_of(c.due_at.as_ref()))
            .bind(optional_uuid(&c.re_referred_from)?)
            .bind(c.profile.as_ref().map(|p| p.ciphertext.clone()))
            .bind(position)
            .execute(&mut *conn)
            .await?;
        }
        ReferralEvent::Accepted(a) => {
            sqlx::query(update!("status = 2, answered_at = $3, accepted_at = $3"))
                .bind(id)
                .bind(position)
                .bind(time_of(a.at.as_ref()))
                .execute(&mut *conn)
                .await?;
        }
        ReferralEvent::Declined(d) => {
            sqlx::query(update!("status = 6, answered_at = $3, decline_reason = $4"))
                .bind(id)
                .bind(position)
                .bind(time_of(d.at.as_ref()))
                .bind(small(d.reason))
                .execute(&mut *conn)
                .await?;
        }
        ReferralEvent::ProgressReported(p) => {
            sqlx::query(update!("status = 3, progress = $3"))
                .bind(id)
                .bind(position)
                .bind(small(p.stage))
                .execute(&mut *conn)
                .await?;
        }
        ReferralEvent::OutcomeRecorded(o) => {
            let outcome = o.outcome.clone().unwrap_or_default();
            let (kind, amount, currency) = outcome_columns(&outcome);
            sqlx::query(update!(
                "status = 4, outcome = $3, outcome_kind = $4, disbursed_amount = $5, disbursed_currency = $6",
            ))
            .bind(id)
            .bind(position)
            .bind(outcome.encode_to_vec())
            .bind(kind)
            .bind(amount)
            .bind(currency)
            .execute(&mut *conn)
            .await?;
        }
        ReferralEvent::Closed(c) => {
            sqlx::query(update!("status = 5, closed_at = $3"))
                .bind(id)
                .bind(position)
                .bind(time_of(c.at.as_ref()))
                .execute(&mut *conn)
                .await?;
        }
        ReferralEvent::Withdrawn(w) => {
            sqlx::query(update!("status = 7, withdraw_reason = $3"))
                .bind(id)
                .bind(position)
                .bind(small(w.reason))
                .execute(&mut *conn)
                .await?;
        }
        ReferralEvent::ReReferred(r) => {
            sqlx::query(update!("status = 8, re_referred_to = $3"))
                .bind(id)
                .bind(position)
                .bind(uuid(&r.new_referral_id)?)
                .execute(&mut *conn)
                .await?;
        }
        ReferralEvent::SlaBreached(b) => {
            sqlx::query(update!("sla_breached_at = $3"))
                .bind(id)
                .bind(position)
                .bind(time_of(b.recorded_at.as_ref()))
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}
