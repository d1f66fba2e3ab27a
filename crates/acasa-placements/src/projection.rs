//! The `placements.placements` projection: hosts, offers, placements, the
//! allowance months and travel claims, from the service's own log. A batch
//! of commits and the checkpoint commit in one transaction (the worker), so
//! the counters kept here (`places_taken`) are applied exactly once.

use acasa_domain::EventCodec as _;
use acasa_domain::formats::fold;
use acasa_eventstore::StoredCommit;
use acasa_projection::{ApplyError, Projection};
use chrono::NaiveDate;
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    HOST_PREFIX, OFFER_PREFIX, PLACEMENT_PREFIX, codec,
    domain::{FOLLOW_UP_AFTER, Kind, OutcomeStage, PlacementEvent, Status, host::HostEvent, offer::OfferEvent},
};

/// Builds the service's read models from its log.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlacementsProjection;

fn poison(e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Poison(e.to_string())
}

fn uuid(s: &str) -> Result<Uuid, ApplyError> {
    Uuid::parse_str(s).map_err(|_| poison("a subject names an id that is not a UUID"))
}

fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The stored number of a placement kind (the API's enum number).
pub fn kind_number(k: Kind) -> i16 {
    codec::kind(k) as i16
}

/// The stored number of a status (the API's enum number).
pub fn status_number(s: Status) -> i16 {
    match s {
        Status::None => 0,
        Status::Proposed => 1,
        Status::Accepted => 2,
        Status::Declined => 3,
        Status::Withdrawn => 4,
        Status::Signed => 5,
        Status::Started => 6,
        Status::Completed => 7,
        Status::EndedEarly => 8,
    }
}

impl Projection for PlacementsProjection {
    fn name(&self) -> &str {
        crate::PROJECTION
    }

    fn reset<'c>(&'c self, conn: &'c mut PgConnection) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query(
                "TRUNCATE placements.hosts, placements.offers, placements.placements, placements.months, \
                 placements.travel_claims",
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
            for c in commits {
                let position = i64::try_from(c.sequence).unwrap_or(i64::MAX);
                if let Some(id) = c.subject.strip_prefix(HOST_PREFIX) {
                    let id = uuid(id)?;
                    for e in &c.events {
                        apply_host(conn, id, position, &HostEvent::decode(e).map_err(poison)?).await?;
                    }
                } else if let Some(id) = c.subject.strip_prefix(OFFER_PREFIX) {
                    let id = uuid(id)?;
                    for e in &c.events {
                        apply_offer(conn, id, position, &OfferEvent::decode(e).map_err(poison)?).await?;
                    }
                } else if let Some(id) = c.subject.strip_prefix(PLACEMENT_PREFIX) {
                    let id = uuid(id)?;
                    for e in &c.events {
                        apply_placement(conn, id, position, &PlacementEvent::decode(e).map_err(poison)?).await?;
                    }
                }
            }
            Ok(())
        })
    }
}

async fn apply_host(conn: &mut PgConnection, id: Uuid, position: i64, e: &HostEvent) -> Result<(), ApplyError> {
    match e {
        HostEvent::Registered { idno, details, .. } => {
            sqlx::query(
                "INSERT INTO placements.hosts (host_id, idno, kind, name, district, district_folded, contact_name, \
                 contact_email, contact_phone, hosts, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (host_id) DO NOTHING",
            )
            .bind(id)
            .bind(idno)
            .bind(codec::host_kind(details.kind) as i16)
            .bind(&details.name)
            .bind(&details.district)
            .bind(fold(&details.district))
            .bind(&details.contact.name)
            .bind(&details.contact.email)
            .bind(&details.contact.phone)
            .bind(&details.hosts)
            .bind(position)
            .execute(&mut *conn)
            .await?;
        }
        HostEvent::Updated(details) => {
            let district = fold(&details.district);
            sqlx::query(
                "UPDATE placements.hosts SET kind = $2, name = $3, district = $4, district_folded = $5, \
                 contact_name = $6, contact_email = $7, contact_phone = $8, hosts = $9, position = $10 \
                 WHERE host_id = $1",
            )
            .bind(id)
            .bind(codec::host_kind(details.kind) as i16)
            .bind(&details.name)
            .bind(&details.district)
            .bind(&district)
            .bind(&details.contact.name)
            .bind(&details.contact.email)
            .bind(&details.contact.phone)
            .bind(&details.hosts)
            .bind(position)
            .execute(&mut *conn)
            .await?;
            for sql in [
                "UPDATE placements.offers SET district_folded = $2 WHERE host_id = $1",
                "UPDATE placements.placements SET district_folded = $2 WHERE host_id = $1",
            ] {
                sqlx::query(sql).bind(id).bind(&district).execute(&mut *conn).await?;
            }
        }
        HostEvent::Suspended(..) | HostEvent::Reactivated(_) => {
            sqlx::query("UPDATE placements.hosts SET suspended = $2, position = $3 WHERE host_id = $1")
                .bind(id)
                .bind(matches!(e, HostEvent::Suspended(..)))
                .bind(position)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

async fn apply_offer(conn: &mut PgConnection, id: Uuid, position: i64, e: &OfferEvent) -> Result<(), ApplyError> {
    match e {
        OfferEvent::Published(o, at) => {
            sqlx::query(
                "INSERT INTO placements.offers (offer_id, host_id, kind, subject, places, term_months, \
                 allowance_minor, currency, travel_cap_minor, start_from, start_until, languages, district_folded, \
                 published_at, position) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                 COALESCE((SELECT district_folded FROM placements.hosts WHERE host_id = $2), ''), $13, $14 \
                 ON CONFLICT (offer_id) DO NOTHING",
            )
            .bind(id)
            .bind(o.host)
            .bind(kind_number(o.terms.kind))
            .bind(&o.subject)
            .bind(int(o.places))
            .bind(int(o.terms.months))
            .bind(o.terms.allowance.minor)
            .bind(&o.terms.allowance.currency)
            .bind(o.terms.travel_cap.minor)
            .bind(o.start_from)
            .bind(o.start_until)
            .bind(&o.languages)
            .bind(at)
            .bind(position)
            .execute(&mut *conn)
            .await?;
        }
        OfferEvent::Closed(..) | OfferEvent::Reopened(_) => {
            sqlx::query("UPDATE placements.offers SET closed = $2, position = $3 WHERE offer_id = $1")
                .bind(id)
                .bind(matches!(e, OfferEvent::Closed(..)))
                .bind(position)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

async fn set_status(conn: &mut PgConnection, id: Uuid, position: i64, status: Status) -> Result<(), ApplyError> {
    sqlx::query("UPDATE placements.placements SET status = $2, position = $3 WHERE placement_id = $1")
        .bind(id)
        .bind(status_number(status))
        .bind(position)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A declined or withdrawn proposal gives its place back.
async fn free_place(conn: &mut PgConnection, id: Uuid) -> Result<(), ApplyError> {
    sqlx::query(
        "UPDATE placements.offers SET places_taken = GREATEST(places_taken - 1, 0) \
         WHERE offer_id = (SELECT offer_id FROM placements.placements WHERE placement_id = $1)",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn ended(
    conn: &mut PgConnection,
    id: Uuid,
    position: i64,
    status: Status,
    on: NaiveDate,
    reason: Option<&str>,
) -> Result<(), ApplyError> {
    sqlx::query(
        "UPDATE placements.placements SET status = $2, ended_on = $3, end_reason = $4, follow_up_due_on = $5, \
         position = $6 WHERE placement_id = $1",
    )
    .bind(id)
    .bind(status_number(status))
    .bind(on)
    .bind(reason)
    .bind(on.checked_add_months(FOLLOW_UP_AFTER))
    .bind(position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn apply_placement(
    conn: &mut PgConnection,
    id: Uuid,
    position: i64,
    e: &PlacementEvent,
) -> Result<(), ApplyError> {
    use PlacementEvent as E;
    match e {
        E::Proposed(p, at) => {
            let inserted = sqlx::query(
                "INSERT INTO placements.placements (placement_id, person_id, offer_id, host_id, slot, kind, status, \
                 term_months, allowance_minor, currency, travel_cap_minor, start_from, start_until, district_folded, \
                 proposed_at, position) \
                 SELECT $1, $2, $3, $4, $5, $6, 1, $7, $8, $9, $10, $11, $12, \
                 COALESCE((SELECT district_folded FROM placements.hosts WHERE host_id = $4), ''), $13, $14 \
                 ON CONFLICT (placement_id) DO NOTHING",
            )
            .bind(id)
            .bind(p.person)
            .bind(p.offer)
            .bind(p.host)
            .bind(int(p.slot))
            .bind(kind_number(p.terms.kind))
            .bind(int(p.terms.months))
            .bind(p.terms.allowance.minor)
            .bind(&p.terms.allowance.currency)
            .bind(p.terms.travel_cap.minor)
            .bind(p.start_from)
            .bind(p.start_until)
            .bind(at)
            .bind(position)
            .execute(&mut *conn)
            .await?;
            if inserted.rows_affected() > 0 {
                sqlx::query("UPDATE placements.offers SET places_taken = places_taken + 1 WHERE offer_id = $1")
                    .bind(p.offer)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        E::Accepted(_) => set_status(conn, id, position, Status::Accepted).await?,
        E::Declined(..) | E::Withdrawn(..) => {
            free_place(conn, id).await?;
            let status = if matches!(e, E::Declined(..)) { Status::Declined } else { Status::Withdrawn };
            set_status(conn, id, position, status).await?;
        }
        E::AgreementSigned { signed_on, start_on, reference } => {
            sqlx::query(
                "UPDATE placements.placements SET status = 5, signed_on = $2, start_on = $3, agreement_ref = $4, \
                 position = $5 WHERE placement_id = $1",
            )
            .bind(id)
            .bind(signed_on)
            .bind(start_on)
            .bind(reference)
            .bind(position)
            .execute(&mut *conn)
            .await?;
        }
        E::Started(on) => {
            sqlx::query(
                "UPDATE placements.placements SET status = 6, started_on = $2, position = $3 WHERE placement_id = $1",
            )
            .bind(id)
            .bind(on)
            .bind(position)
            .execute(&mut *conn)
            .await?;
        }
        E::AllowanceFellDue { month, amount, due_on } => {
            sqlx::query(
                "INSERT INTO placements.months (placement_id, month, due_minor, currency, due_on, host_id) \
                 SELECT $1, $2, $3, $4, $5, host_id FROM placements.placements WHERE placement_id = $1 \
                 ON CONFLICT (placement_id, month) DO NOTHING",
            )
            .bind(id)
            .bind(int(*month))
            .bind(amount.minor)
            .bind(&amount.currency)
            .bind(due_on)
            .execute(&mut *conn)
            .await?;
        }
        E::PresenceConfirmed(month) => {
            sqlx::query("UPDATE placements.months SET present = true WHERE placement_id = $1 AND month = $2")
                .bind(id)
                .bind(int(*month))
                .execute(&mut *conn)
                .await?;
        }
        E::AllowancePaid { month, amount, paid_on, reference } => {
            sqlx::query(
                "UPDATE placements.months SET paid_minor = $3, paid_on = $4, payment_ref = $5 \
                 WHERE placement_id = $1 AND month = $2",
            )
            .bind(id)
            .bind(int(*month))
            .bind(amount.minor)
            .bind(paid_on)
            .bind(reference)
            .execute(&mut *conn)
            .await?;
        }
        E::TravelSubmitted { claim, kind, amount, receipt } => {
            sqlx::query(
                "INSERT INTO placements.travel_claims (claim_id, placement_id, kind, requested_minor, currency, \
                 receipt_ref, position) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (claim_id) DO NOTHING",
            )
            .bind(claim)
            .bind(id)
            .bind(kind)
            .bind(amount.minor)
            .bind(&amount.currency)
            .bind(receipt)
            .bind(position)
            .execute(&mut *conn)
            .await?;
        }
        E::TravelApproved { claim, amount } => {
            sqlx::query("UPDATE placements.travel_claims SET approved_minor = $2 WHERE claim_id = $1")
                .bind(claim)
                .bind(amount.minor)
                .execute(&mut *conn)
                .await?;
        }
        E::TravelRejected { claim, reason } => {
            sqlx::query("UPDATE placements.travel_claims SET rejected = true, reject_reason = $2 WHERE claim_id = $1")
                .bind(claim)
                .bind(reason)
                .execute(&mut *conn)
                .await?;
        }
        E::TravelPaid { claim, amount, paid_on, reference } => {
            sqlx::query(
                "UPDATE placements.travel_claims SET paid_minor = $2, paid_on = $3, payment_ref = $4 \
                 WHERE claim_id = $1",
            )
            .bind(claim)
            .bind(amount.minor)
            .bind(paid_on)
            .bind(reference)
            .execute(&mut *conn)
            .await?;
        }
        E::Completed(on) => ended(conn, id, position, Status::Completed, *on, None).await?,
        E::EndedEarly(on, reason) => ended(conn, id, position, Status::EndedEarly, *on, Some(reason)).await?,
        E::OutcomeRecorded(stage, outcome, _) => {
            let (kind, note) = codec::outcome(outcome);
            let sql = match stage {
                OutcomeStage::Completion => {
                    "UPDATE placements.placements SET outcome_completion = $2, \
                     outcome_completion_note = NULLIF($3, ''), position = $4 WHERE placement_id = $1"
                }
                OutcomeStage::FollowUp => {
                    "UPDATE placements.placements SET outcome_follow_up = $2, \
                     outcome_follow_up_note = NULLIF($3, ''), position = $4 WHERE placement_id = $1"
                }
            };
            sqlx::query(sql).bind(id).bind(kind as i16).bind(note).bind(position).execute(&mut *conn).await?;
        }
        E::FollowUpOverdue(_) => {
            sqlx::query(
                "UPDATE placements.placements SET follow_up_overdue = true, position = $2 WHERE placement_id = $1",
            )
            .bind(id)
            .bind(position)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}
