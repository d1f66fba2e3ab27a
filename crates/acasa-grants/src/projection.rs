//! The `grants.grants` projection: calls and their commitments, courses,
//! sessions and their rosters, officials, applications (evaluations, items,
//! handovers, visits, the funnel's stage flags) and the support services
//! staff recorded, from the service's own log (`acasa.grants.<kind>.<id>`).
//!
//! A batch of commits and the checkpoint commit in one transaction (the
//! worker), so nothing is applied twice; the statements are also idempotent
//! on their own (inserts that keep the first row, updates that set rather
//! than add, the few additions guarded by the row's position), so a rebuild
//! from an empty read model equals the live one.
//!
//! Officials' personal data is opened with their data keys, read from the
//! vault once per batch inside its transaction. An official whose key is
//! gone (erased) decodes shredded: the personal columns stay NULL, their
//! kind, organisation, district and trainings stay. Applying an erasure
//! also destroys the key, as a backstop to the service doing so.
//!
//! The command side reads the rosters back: [`held_seats`],
//! [`held_training_places`], [`roster`].

use std::collections::HashMap;

use acasa_domain::{Aggregate, Codec as _, EventCodec as _, formats::fold};
use acasa_eventstore::StoredCommit;
use acasa_projection::{ApplyError, Projection};
use acasa_proto::{Message as _, grants::v1 as pb};
use acasa_vault::{DataKey, Vault};
use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    codec::{self, OfficialCodec},
    domain::{
        Money,
        application::{Application, ApplicationEvent},
        call::{Call, CallEvent},
        official::{Official, OfficialDetails, OfficialEvent},
        support::{Provider, Support, SupportEvent},
        training::{Course, CourseEvent, Session, SessionDetails, SessionEvent},
    },
};

/// Builds the service's read models from its log.
#[derive(Clone, Debug)]
pub struct GrantsProjection {
    vault: Vault,
}

impl GrantsProjection {
    /// A projection opening officials' sealed data with keys from `vault`
    /// (the table [`crate::VAULT_TABLE`]).
    pub fn new(vault: Vault) -> Self {
        Self { vault }
    }
}

/// `enrolments.trainee_kind` of an application.
const APPLICATION_TRAINEE: i16 = 1;
/// `enrolments.trainee_kind` of an official.
const OFFICIAL_TRAINEE: i16 = 2;

/// The stored number of an application status (the API's).
fn status(s: pb::ApplicationStatus) -> i16 {
    s as i16
}

/// The stored number of an item status (the API's).
fn item_status(s: pb::ItemStatus) -> i16 {
    s as i16
}

/// The stored number of a training result (the API's).
fn result(r: pb::TrainingResult) -> i16 {
    r as i16
}

fn poison(e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Poison(e.to_string())
}

fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn position(c: &StoredCommit) -> i64 {
    i64::try_from(c.sequence).unwrap_or(i64::MAX)
}

/// The aggregates of this service's subjects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Call,
    Application,
    Course,
    Session,
    Official,
    Support,
}

/// The kind and id of a commit's subject (`acasa.grants.<kind>.<id>`);
/// `None` for a subject this projection does not read.
fn subject(s: &str) -> Result<Option<(Kind, Uuid)>, ApplyError> {
    let Some(rest) =
        s.strip_prefix("acasa.").and_then(|r| r.strip_prefix(crate::SERVICE)).and_then(|r| r.strip_prefix('.'))
    else {
        return Ok(None);
    };
    let Some((kind, id)) = rest.split_once('.') else { return Ok(None) };
    let kind = match kind {
        k if k == Call::KIND => Kind::Call,
        k if k == Application::KIND => Kind::Application,
        k if k == Course::KIND => Kind::Course,
        k if k == Session::KIND => Kind::Session,
        k if k == Official::KIND => Kind::Official,
        k if k == Support::KIND => Kind::Support,
        _ => return Ok(None),
    };
    let id = Uuid::parse_str(id).map_err(|_| poison(format!("subject {s} names an id that is not a UUID")))?;
    Ok(Some((kind, id)))
}

impl Projection for GrantsProjection {
    fn name(&self) -> &str {
        crate::PROJECTION
    }

    fn reset<'c>(&'c self, conn: &'c mut PgConnection) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query(
                "TRUNCATE grants.calls, grants.commitments, grants.courses, grants.sessions, grants.enrolments, \
                 grants.officials, grants.applications, grants.evaluations, grants.items, grants.handovers, \
                 grants.visits, grants.support_services",
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
            let mut subjects = Vec::with_capacity(commits.len());
            for c in commits {
                subjects.push(subject(&c.subject)?);
            }
            // The officials' keys, once for the batch.
            let mut officials: Vec<Uuid> =
                subjects.iter().filter_map(|s| s.filter(|(k, _)| *k == Kind::Official).map(|(_, id)| id)).collect();
            officials.sort_unstable();
            officials.dedup();
            let keys: HashMap<Uuid, DataKey> =
                if officials.is_empty() { HashMap::new() } else { self.vault.keys_on(conn, &officials).await? };
            for (c, s) in commits.iter().zip(subjects) {
                let Some((kind, id)) = s else { continue };
                let at = Applied { id, position: position(c) };
                match kind {
                    Kind::Call => {
                        for e in &c.events {
                            at.call(conn, &CallEvent::decode(e).map_err(poison)?).await?;
                        }
                    }
                    Kind::Application => {
                        for e in &c.events {
                            at.application(conn, &ApplicationEvent::decode(e).map_err(poison)?).await?;
                        }
                    }
                    Kind::Course => {
                        for e in &c.events {
                            at.course(conn, &CourseEvent::decode(e).map_err(poison)?).await?;
                        }
                    }
                    Kind::Session => {
                        for e in &c.events {
                            at.session(conn, &SessionEvent::decode(e).map_err(poison)?).await?;
                        }
                    }
                    Kind::Official => {
                        let codec = OfficialCodec::new(id, keys.get(&id).cloned());
                        for e in &c.events {
                            let event = codec.decode(e).map_err(poison)?;
                            at.official(conn, &event).await?;
                            if matches!(event, OfficialEvent::Erased { .. }) {
                                self.vault.destroy_on(conn, id).await?;
                            }
                        }
                    }
                    Kind::Support => {
                        for e in &c.events {
                            at.support(conn, &SupportEvent::decode(e).map_err(poison)?).await?;
                        }
                    }
                }
            }
            Ok(())
        })
    }
}

/// The aggregate a commit is about, and the commit's stream position.
#[derive(Clone, Copy)]
struct Applied {
    id: Uuid,
    position: i64,
}

impl Applied {
    async fn call(self, conn: &mut PgConnection, e: &CallEvent) -> Result<(), ApplyError> {
        let Self { id, position } = self;
        match e {
            CallEvent::Opened(call, stamp) => {
                sqlx::query(
                    "INSERT INTO grants.calls (call_id, title, currency, budget_minor, closes_on, terms, opened_at, \
                     opened_by, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (call_id) DO NOTHING",
                )
                .bind(id)
                .bind(&call.title)
                .bind(&call.budget.currency)
                .bind(call.budget.minor)
                .bind(call.closes_on)
                .bind(codec::call_terms(call).encode_to_vec())
                .bind(stamp.at)
                .bind(&stamp.by)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            CallEvent::Closed { .. } => {
                sqlx::query("UPDATE grants.calls SET closed = true, position = $2 WHERE call_id = $1")
                    .bind(id)
                    .bind(position)
                    .execute(&mut *conn)
                    .await?;
            }
            CallEvent::BudgetChanged { budget, .. } => {
                sqlx::query("UPDATE grants.calls SET budget_minor = $2, position = $3 WHERE call_id = $1")
                    .bind(id)
                    .bind(budget.minor)
                    .bind(position)
                    .execute(&mut *conn)
                    .await?;
            }
            CallEvent::Committed { application, amount, .. } => {
                sqlx::query(
                    "INSERT INTO grants.commitments (application_id, call_id, committed_minor, position) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (application_id) DO UPDATE \
                     SET committed_minor = commitments.committed_minor + EXCLUDED.committed_minor, \
                     position = EXCLUDED.position WHERE commitments.position < EXCLUDED.position",
                )
                .bind(application)
                .bind(id)
                .bind(amount.minor)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            CallEvent::Released { application, amount, .. } => {
                sqlx::query(
                    "UPDATE grants.commitments SET released_minor = released_minor + $2, position = $3 \
                     WHERE application_id = $1 AND position < $3",
                )
                .bind(application)
                .bind(amount.minor)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
        }
        Ok(())
    }

    /// Sets the application's status (and position).
    async fn set_status(self, conn: &mut PgConnection, s: pb::ApplicationStatus) -> Result<(), ApplyError> {
        sqlx::query("UPDATE grants.applications SET status = $2, position = $3 WHERE application_id = $1")
            .bind(self.id)
            .bind(status(s))
            .bind(self.position)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn application(self, conn: &mut PgConnection, e: &ApplicationEvent) -> Result<(), ApplyError> {
        use ApplicationEvent as E;
        use pb::ApplicationStatus as S;
        let Self { id, position } = self;
        match e {
            E::Applied { application, terms, stamp } => {
                sqlx::query(
                    "INSERT INTO grants.applications (application_id, call_id, person_id, applied_on, currency, \
                     terms, received_at, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (application_id) DO NOTHING",
                )
                .bind(id)
                .bind(application.call)
                .bind(application.person)
                .bind(application.applied_on)
                .bind(&terms.cap.currency)
                .bind(codec::grant_terms(terms).encode_to_vec())
                .bind(stamp.at)
                .bind(position)
                .execute(&mut *conn)
                .await?;
                // The person's row, held until this commits, so the registry
                // view's refresh of it sees this application or waits for it.
                sqlx::query("SELECT 1 FROM grants.people WHERE person_id = $1 FOR SHARE")
                    .bind(application.person)
                    .execute(&mut *conn)
                    .await?;
                refresh_applicants(conn, &[application.person]).await?;
            }
            E::EligibilityAssessed { failed, .. } => {
                sqlx::query(
                    "UPDATE grants.applications SET status = $2, failed_rule = $3, reached_eligible = $4, \
                     position = $5 WHERE application_id = $1",
                )
                .bind(id)
                .bind(status(if failed.is_some() { S::Ineligible } else { S::Eligible }))
                .bind(failed.map(|r| r.name()))
                .bind(failed.is_none())
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::Withdrawn { reason, .. } => {
                leave_unfinished(conn, id, &format!("withdrawn: {reason}")).await?;
                free_place_unless_trained(conn, id).await?;
                self.set_status(conn, S::Withdrawn).await?;
            }
            E::Enrolled { session, seat, place, stamp } => {
                enrol(conn, *session, id, APPLICATION_TRAINEE, *seat, *place, stamp.at, position).await?;
                sqlx::query(
                    "UPDATE grants.applications SET status = $2, training_place = COALESCE($3, training_place), \
                     position = $4 WHERE application_id = $1",
                )
                .bind(id)
                .bind(status(S::Enrolled))
                .bind(place.map(int))
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::Unenrolled { session, reason, .. } => {
                unenrol(conn, *session, id, reason).await?;
                // Back to eligible, the call's place freed, unless a training
                // was finished before (then not through training, the place kept).
                sqlx::query(
                    "UPDATE grants.applications a SET status = CASE WHEN x.finished THEN $2 ELSE $3 END, \
                     training_place = CASE WHEN x.finished THEN a.training_place END, position = $4 \
                     FROM (SELECT EXISTS (SELECT 1 FROM grants.enrolments WHERE trainee_id = $1 \
                     AND result IN ($5, $6)) AS finished) x WHERE a.application_id = $1",
                )
                .bind(id)
                .bind(status(S::NotTrained))
                .bind(status(S::Eligible))
                .bind(position)
                .bind(result(pb::TrainingResult::Completed))
                .bind(result(pb::TrainingResult::NotCompleted))
                .execute(&mut *conn)
                .await?;
            }
            E::AttendanceRecorded { session, day, present, .. } => {
                attend(conn, *session, id, *day, *present).await?;
            }
            E::TrainingCompleted { session, certificate, attended, .. } => {
                finish(conn, *session, id, Some(certificate), *attended).await?;
                sqlx::query(
                    "UPDATE grants.applications SET status = $2, certificate_number = $3, reached_trained = true, \
                     position = $4 WHERE application_id = $1",
                )
                .bind(id)
                .bind(status(S::Trained))
                .bind(certificate)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::TrainingNotCompleted { session, attended, .. } => {
                finish(conn, *session, id, None, *attended).await?;
                self.set_status(conn, S::NotTrained).await?;
            }
            E::PlanSubmitted(plan, _) => {
                sqlx::query(
                    "UPDATE grants.applications SET status = $2, plan = $3, reached_plan = true, position = $4 \
                     WHERE application_id = $1",
                )
                .bind(id)
                .bind(status(S::PlanSubmitted))
                .bind(codec::plan(plan).encode_to_vec())
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::ConflictDeclared { reason, stamp } => {
                sqlx::query(
                    "INSERT INTO grants.evaluations (application_id, evaluator, conflict_declared, conflict_reason, \
                     at) \
                     VALUES ($1, $2, true, $3, $4) ON CONFLICT (application_id, evaluator) DO UPDATE \
                     SET conflict_declared = true, conflict_reason = EXCLUDED.conflict_reason, at = EXCLUDED.at",
                )
                .bind(id)
                .bind(&stamp.by)
                .bind(reason)
                .bind(stamp.at)
                .execute(&mut *conn)
                .await?;
            }
            E::Scored { scores, weighted, comment, stamp } => {
                let keys: Vec<&str> = scores.keys().map(String::as_str).collect();
                let values: Vec<i32> = scores.values().map(|v| int(*v)).collect();
                sqlx::query(
                    "INSERT INTO grants.evaluations (application_id, evaluator, score_keys, score_values, \
                     weighted_score, comment, at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (application_id, evaluator) DO UPDATE SET score_keys = EXCLUDED.score_keys, \
                     score_values = EXCLUDED.score_values, weighted_score = EXCLUDED.weighted_score, \
                     comment = EXCLUDED.comment, at = EXCLUDED.at",
                )
                .bind(id)
                .bind(&stamp.by)
                .bind(&keys)
                .bind(&values)
                .bind(int(*weighted))
                .bind(comment)
                .bind(stamp.at)
                .execute(&mut *conn)
                .await?;
            }
            E::Approved { amount, score, reference, note, stamp, .. } => {
                decide(conn, self, S::Approved, Some(amount), *score, reference, note, &stamp.by, stamp.at).await?;
            }
            E::Rejected { reasons, score, reference, stamp } => {
                decide(conn, self, S::Rejected, None, *score, reference, reasons, &stamp.by, stamp.at).await?;
            }
            E::ItemOrdered(item, _) => {
                let total = item.unit_price.minor.checked_mul(i64::from(item.quantity)).unwrap_or(i64::MAX);
                sqlx::query(
                    "INSERT INTO grants.items (item_id, application_id, call_id, description, supplier_name, \
                     supplier_idno, quantity, unit_price_minor, currency, total_minor, status, position) \
                     SELECT $1, $2, a.call_id, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM grants.applications a \
                     WHERE a.application_id = $2 ON CONFLICT (item_id) DO NOTHING",
                )
                .bind(item.id)
                .bind(id)
                .bind(&item.description)
                .bind(&item.supplier.name)
                .bind(item.supplier.idno.as_deref().unwrap_or_default())
                .bind(int(item.quantity))
                .bind(item.unit_price.minor)
                .bind(&item.unit_price.currency)
                .bind(total)
                .bind(item_status(pb::ItemStatus::Ordered))
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::OrderCancelled { item, .. } => {
                sqlx::query("UPDATE grants.items SET status = $3 WHERE item_id = $1 AND application_id = $2")
                    .bind(item)
                    .bind(id)
                    .bind(item_status(pb::ItemStatus::Cancelled))
                    .execute(&mut *conn)
                    .await?;
            }
            E::ItemDelivered { item, on, reference, .. } => {
                sqlx::query(
                    "UPDATE grants.items SET status = $3, delivered_on = $4, delivery_note_ref = $5 \
                     WHERE item_id = $1 AND application_id = $2",
                )
                .bind(item)
                .bind(id)
                .bind(item_status(pb::ItemStatus::Delivered))
                .bind(on)
                .bind(reference)
                .execute(&mut *conn)
                .await?;
            }
            E::SupplierPaid { item, amount, on, reference, .. } => {
                sqlx::query(
                    "UPDATE grants.items SET paid_minor = $3, paid_on = $4, payment_ref = $5 \
                     WHERE item_id = $1 AND application_id = $2",
                )
                .bind(item)
                .bind(id)
                .bind(amount.minor)
                .bind(on)
                .bind(reference)
                .execute(&mut *conn)
                .await?;
            }
            E::HandedOver(h, _) => {
                sqlx::query(
                    "INSERT INTO grants.handovers (application_id, reference, item_ids, handed_over_on, location, \
                     note, position) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (application_id, reference) DO NOTHING",
                )
                .bind(id)
                .bind(&h.reference)
                .bind(&h.items)
                .bind(h.on)
                .bind(&h.location)
                .bind(&h.note)
                .bind(position)
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "UPDATE grants.items SET status = $3, handover_ref = $4 WHERE application_id = $1 \
                     AND item_id = ANY($2)",
                )
                .bind(id)
                .bind(&h.items)
                .bind(item_status(pb::ItemStatus::HandedOver))
                .bind(&h.reference)
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "UPDATE grants.applications SET equipment_delivered = true, position = $2 \
                     WHERE application_id = $1",
                )
                .bind(id)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::Visited(v, _) => {
                sqlx::query(
                    "INSERT INTO grants.visits (application_id, position, visited_on, officer, operating, \
                     jobs_created, findings) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (application_id, position) DO NOTHING",
                )
                .bind(id)
                .bind(position)
                .bind(v.on)
                .bind(&v.officer)
                .bind(v.operating)
                .bind(int(v.jobs_created))
                .bind(&v.findings)
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "UPDATE grants.applications SET operating_last = $2, jobs_last = $3, position = $4 \
                     WHERE application_id = $1",
                )
                .bind(id)
                .bind(v.operating)
                .bind(int(v.jobs_created))
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::Closed { unspent, .. } => {
                sqlx::query(
                    "UPDATE grants.applications SET status = $2, released_minor = $3, position = $4 \
                     WHERE application_id = $1",
                )
                .bind(id)
                .bind(status(S::Closed))
                .bind(unspent.minor)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::GrantCancelled { released, .. } => {
                sqlx::query(
                    "UPDATE grants.applications SET status = $2, released_minor = $3, approved_active = false, \
                     position = $4 WHERE application_id = $1",
                )
                .bind(id)
                .bind(status(S::Cancelled))
                .bind(released.minor)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
        }
        Ok(())
    }

    async fn course(self, conn: &mut PgConnection, e: &CourseEvent) -> Result<(), ApplyError> {
        let Self { id, position } = self;
        match e {
            CourseEvent::Created(course, _) => {
                sqlx::query(
                    "INSERT INTO grants.courses (course_id, audience, title, details, position) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (course_id) DO NOTHING",
                )
                .bind(id)
                .bind(codec::audience(course.audience) as i16)
                .bind(&course.details.title)
                .bind(codec::course_details(&course.details).encode_to_vec())
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            CourseEvent::Updated(details, _) => {
                sqlx::query("UPDATE grants.courses SET title = $2, details = $3, position = $4 WHERE course_id = $1")
                    .bind(id)
                    .bind(&details.title)
                    .bind(codec::course_details(details).encode_to_vec())
                    .bind(position)
                    .execute(&mut *conn)
                    .await?;
            }
            CourseEvent::Retired { .. } => {
                sqlx::query("UPDATE grants.courses SET retired = true, position = $2 WHERE course_id = $1")
                    .bind(id)
                    .bind(position)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    }

    async fn session(self, conn: &mut PgConnection, e: &SessionEvent) -> Result<(), ApplyError> {
        let Self { id, position } = self;
        match e {
            SessionEvent::Scheduled { session, audience, threshold_percent, .. } => {
                let (first, last) = days(&session.details)?;
                sqlx::query(
                    "INSERT INTO grants.sessions (session_id, course_id, audience, code, capacity, threshold_percent, \
                     details, district_folded, first_day, last_day, position) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (session_id) DO NOTHING",
                )
                .bind(id)
                .bind(session.course)
                .bind(codec::audience(*audience) as i16)
                .bind(&session.code)
                .bind(int(session.capacity))
                .bind(int(*threshold_percent))
                .bind(codec::session_details(&session.details).encode_to_vec())
                .bind(fold(&session.details.district))
                .bind(first)
                .bind(last)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            SessionEvent::Rescheduled(details, _) => {
                let (first, last) = days(details)?;
                sqlx::query(
                    "UPDATE grants.sessions SET details = $2, district_folded = $3, first_day = $4, last_day = $5, \
                     position = $6 WHERE session_id = $1",
                )
                .bind(id)
                .bind(codec::session_details(details).encode_to_vec())
                .bind(fold(&details.district))
                .bind(first)
                .bind(last)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            SessionEvent::CapacityChanged(capacity, _) => {
                sqlx::query("UPDATE grants.sessions SET capacity = $2, position = $3 WHERE session_id = $1")
                    .bind(id)
                    .bind(int(*capacity))
                    .bind(position)
                    .execute(&mut *conn)
                    .await?;
            }
            SessionEvent::Cancelled { .. } => {
                sqlx::query("UPDATE grants.sessions SET cancelled = true, position = $2 WHERE session_id = $1")
                    .bind(id)
                    .bind(position)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    }

    async fn official(self, conn: &mut PgConnection, e: &OfficialEvent) -> Result<(), ApplyError> {
        use OfficialEvent as E;
        let Self { id, position } = self;
        match e {
            E::Registered { details, stamp, .. } => {
                let p = Personal::of(details);
                sqlx::query(
                    "INSERT INTO grants.officials (official_id, kind, organisation, organisation_folded, district, \
                     district_folded, given_name, family_name, sex, role, email, phone, registered_at, position) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                     ON CONFLICT (official_id) DO NOTHING",
                )
                .bind(id)
                .bind(codec::official_kind(details.kind) as i16)
                .bind(&details.organisation)
                .bind(fold(&details.organisation))
                .bind(&details.district)
                .bind(fold(&details.district))
                .bind(p.given_name)
                .bind(p.family_name)
                .bind(p.sex)
                .bind(p.role)
                .bind(p.email)
                .bind(p.phone)
                .bind(stamp.at)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::Updated(details, _) => {
                let p = Personal::of(details);
                sqlx::query(
                    "UPDATE grants.officials SET kind = $2, organisation = $3, organisation_folded = $4, \
                     district = $5, district_folded = $6, given_name = $7, family_name = $8, sex = $9, role = $10, \
                     email = $11, phone = $12, position = $13 WHERE official_id = $1",
                )
                .bind(id)
                .bind(codec::official_kind(details.kind) as i16)
                .bind(&details.organisation)
                .bind(fold(&details.organisation))
                .bind(&details.district)
                .bind(fold(&details.district))
                .bind(p.given_name)
                .bind(p.family_name)
                .bind(p.sex)
                .bind(p.role)
                .bind(p.email)
                .bind(p.phone)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::Erased { .. } => {
                sqlx::query(
                    "UPDATE grants.officials SET erased = true, given_name = NULL, family_name = NULL, sex = NULL, \
                     role = NULL, email = NULL, phone = NULL, position = $2 WHERE official_id = $1",
                )
                .bind(id)
                .bind(position)
                .execute(&mut *conn)
                .await?;
                // Erasure frees the seats of trainings not finished.
                leave_unfinished(conn, id, "erased").await?;
            }
            E::Enrolled { session, seat, stamp } => {
                enrol(conn, *session, id, OFFICIAL_TRAINEE, *seat, None, stamp.at, position).await?;
            }
            E::Unenrolled { session, reason, .. } => unenrol(conn, *session, id, reason).await?,
            E::AttendanceRecorded { session, day, present, .. } => attend(conn, *session, id, *day, *present).await?,
            E::TrainingCompleted { session, certificate, attended, .. } => {
                finish(conn, *session, id, Some(certificate), *attended).await?;
            }
            E::TrainingNotCompleted { session, attended, .. } => finish(conn, *session, id, None, *attended).await?,
        }
        Ok(())
    }

    async fn support(self, conn: &mut PgConnection, e: &SupportEvent) -> Result<(), ApplyError> {
        match e {
            SupportEvent::Recorded { person, service, stamp } => {
                let (provider_kind, provider): (i16, String) = match &service.provider {
                    Provider::Staff(by) => (1, by.clone()),
                    Provider::Partner(partner) => (2, partner.to_string()),
                    Provider::Other(name) => (3, name.clone()),
                };
                let referral = match service.source {
                    crate::domain::support::Source::Recorded => None,
                    crate::domain::support::Source::Referral(r) => Some(r),
                };
                sqlx::query(
                    "INSERT INTO grants.support_services (service_id, person_id, kind, provider_kind, provider, \
                     delivered_on, note, referral_id, recorded_by, recorded_at, position) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (service_id) DO NOTHING",
                )
                .bind(service.id)
                .bind(person)
                .bind(codec::support_kind(service.kind) as i16)
                .bind(provider_kind)
                .bind(provider)
                .bind(service.delivered_on)
                .bind(&service.note)
                .bind(referral)
                .bind(&stamp.by)
                .bind(stamp.at)
                .bind(self.position)
                .execute(&mut *conn)
                .await?;
            }
            SupportEvent::Retracted { service, reason, .. } => {
                sqlx::query(
                    "UPDATE grants.support_services SET retracted = true, retract_reason = $2 WHERE service_id = $1",
                )
                .bind(service)
                .bind(reason)
                .execute(&mut *conn)
                .await?;
            }
        }
        Ok(())
    }
}

/// A session's first and last days.
fn days(d: &SessionDetails) -> Result<(NaiveDate, NaiveDate), ApplyError> {
    match (d.days.iter().min(), d.days.iter().max()) {
        (Some(first), Some(last)) => Ok((*first, *last)),
        _ => Err(poison("a session without days")),
    }
}

/// An official's personal columns (NULL when shredded: the codec reads an
/// erased official's sealed data back empty).
struct Personal<'a> {
    given_name: Option<&'a str>,
    family_name: Option<&'a str>,
    sex: Option<i16>,
    role: Option<&'a str>,
    email: Option<&'a str>,
    phone: Option<&'a str>,
}

impl<'a> Personal<'a> {
    fn of(d: &'a OfficialDetails) -> Self {
        let some = |s: &'a str| Some(s).filter(|s| !s.is_empty());
        Self {
            given_name: some(&d.given_name),
            family_name: some(&d.family_name),
            sex: d.sex.map(|s| codec::sex(s) as i16),
            role: some(&d.role),
            email: some(&d.email),
            phone: some(&d.phone),
        }
    }
}

/// A trainee takes a seat; enrolling again in the same session starts the
/// row afresh.
#[allow(clippy::too_many_arguments, reason = "one row's columns")]
async fn enrol(
    conn: &mut PgConnection,
    session: Uuid,
    trainee: Uuid,
    kind: i16,
    seat: u32,
    place: Option<u32>,
    at: DateTime<Utc>,
    position: i64,
) -> Result<(), ApplyError> {
    sqlx::query(
        "INSERT INTO grants.enrolments (session_id, trainee_id, trainee_kind, seat, call_place, enrolled_at, position) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (session_id, trainee_id) DO UPDATE \
         SET seat = EXCLUDED.seat, call_place = EXCLUDED.call_place, present_days = '{}', absent_days = '{}', \
         result = 1, certificate_number = NULL, days_attended = NULL, left_session = false, left_reason = NULL, \
         enrolled_at = EXCLUDED.enrolled_at, position = EXCLUDED.position \
         WHERE enrolments.position < EXCLUDED.position",
    )
    .bind(session)
    .bind(trainee)
    .bind(kind)
    .bind(int(seat))
    .bind(place.map(int))
    .bind(at)
    .bind(position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn unenrol(conn: &mut PgConnection, session: Uuid, trainee: Uuid, reason: &str) -> Result<(), ApplyError> {
    sqlx::query(
        "UPDATE grants.enrolments SET left_session = true, left_reason = $3 WHERE session_id = $1 AND trainee_id = $2",
    )
    .bind(session)
    .bind(trainee)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The trainee's enrolments not finished end (their seats are freed).
async fn leave_unfinished(conn: &mut PgConnection, trainee: Uuid, reason: &str) -> Result<(), ApplyError> {
    sqlx::query(
        "UPDATE grants.enrolments SET left_session = true, left_reason = $2 WHERE trainee_id = $1 AND result = $3 \
         AND NOT left_session",
    )
    .bind(trainee)
    .bind(reason)
    .bind(result(pb::TrainingResult::InProgress))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An application leaving before any training finished gives the call's
/// training place back.
async fn free_place_unless_trained(conn: &mut PgConnection, application: Uuid) -> Result<(), ApplyError> {
    sqlx::query(
        "UPDATE grants.applications SET training_place = NULL WHERE application_id = $1 AND NOT EXISTS \
         (SELECT 1 FROM grants.enrolments WHERE trainee_id = $1 AND result IN ($2, $3))",
    )
    .bind(application)
    .bind(result(pb::TrainingResult::Completed))
    .bind(result(pb::TrainingResult::NotCompleted))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn attend(
    conn: &mut PgConnection,
    session: Uuid,
    trainee: Uuid,
    day: NaiveDate,
    present: bool,
) -> Result<(), ApplyError> {
    sqlx::query(
        "UPDATE grants.enrolments SET \
         present_days = CASE WHEN $4 THEN array_append(array_remove(present_days, $3), $3) \
             ELSE array_remove(present_days, $3) END, \
         absent_days = CASE WHEN $4 THEN array_remove(absent_days, $3) \
             ELSE array_append(array_remove(absent_days, $3), $3) END \
         WHERE session_id = $1 AND trainee_id = $2",
    )
    .bind(session)
    .bind(trainee)
    .bind(day)
    .bind(present)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Completion decided: completed with a certificate, or not.
async fn finish(
    conn: &mut PgConnection,
    session: Uuid,
    trainee: Uuid,
    certificate: Option<&String>,
    attended: u32,
) -> Result<(), ApplyError> {
    let r = if certificate.is_some() { pb::TrainingResult::Completed } else { pb::TrainingResult::NotCompleted };
    sqlx::query(
        "UPDATE grants.enrolments SET result = $3, certificate_number = $4, days_attended = $5 \
         WHERE session_id = $1 AND trainee_id = $2",
    )
    .bind(session)
    .bind(trainee)
    .bind(result(r))
    .bind(certificate)
    .bind(int(attended))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The committee's decision.
#[allow(clippy::too_many_arguments, reason = "the decision's columns")]
async fn decide(
    conn: &mut PgConnection,
    at: Applied,
    s: pb::ApplicationStatus,
    amount: Option<&Money>,
    score: u32,
    reference: &str,
    reasons: &str,
    by: &str,
    when: DateTime<Utc>,
) -> Result<(), ApplyError> {
    let approved = amount.is_some();
    sqlx::query(
        "UPDATE grants.applications SET status = $2, decision = $3, decision_score = $4, approved_minor = $5, \
         minutes_reference = $6, decision_reasons = $7, decided_by = $8, decided_at = $9, approved_active = $10, \
         position = $11 WHERE application_id = $1",
    )
    .bind(at.id)
    .bind(status(s))
    .bind(if approved { 1i16 } else { 2 })
    .bind(int(score))
    .bind(amount.map(|m| m.minor))
    .bind(reference)
    .bind(reasons)
    .bind(by)
    .bind(when)
    .bind(approved)
    .bind(at.position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

// ------------------------------------------------------------ for the command side

/// Seats of `session` held now (enrolled and not unenrolled), by anyone.
pub(crate) async fn held_seats(pool: &PgPool, session: Uuid) -> Result<Vec<u32>, sqlx::Error> {
    let seats: Vec<i32> = sqlx::query_scalar(
        "SELECT seat FROM grants.enrolments WHERE session_id = $1 AND NOT left_session ORDER BY seat",
    )
    .bind(session)
    .fetch_all(pool)
    .await?;
    Ok(seats.into_iter().filter_map(|s| u32::try_from(s).ok()).collect())
}

/// The training places of `call` its applications hold.
pub(crate) async fn held_training_places(pool: &PgPool, call: Uuid) -> Result<Vec<u32>, sqlx::Error> {
    let places: Vec<i32> = sqlx::query_scalar(
        "SELECT training_place FROM grants.applications WHERE call_id = $1 AND training_place IS NOT NULL \
         ORDER BY training_place",
    )
    .bind(call)
    .fetch_all(pool)
    .await?;
    Ok(places.into_iter().filter_map(|p| u32::try_from(p).ok()).collect())
}

/// A trainee of a session (an application or an official).
pub(crate) use crate::validate::Trainee;

/// The trainees enrolled in `session` now (not unenrolled; those whose
/// completion was decided too), with their seats, by seat.
pub(crate) async fn roster(pool: &PgPool, session: Uuid) -> Result<Vec<(Trainee, u32)>, sqlx::Error> {
    let rows: Vec<(Uuid, i16, i32)> = sqlx::query_as(
        "SELECT trainee_id, trainee_kind, seat FROM grants.enrolments WHERE session_id = $1 AND NOT left_session \
         ORDER BY seat, trainee_id",
    )
    .bind(session)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, kind, seat)| {
            let trainee = if kind == OFFICIAL_TRAINEE { Trainee::Official(id) } else { Trainee::Application(id) };
            Some((trainee, u32::try_from(seat).ok()?))
        })
        .collect())
}

/// The funnel's dimensions on every application of `persons` — district
/// (folded), sex, age band on the application day — from their rows in
/// `grants.people` now (none once erased, unknown without a row). Run by
/// this read model when an application comes (with the person's row held
/// FOR SHARE) and by the registry view after it changes a person's row: each
/// writes the same values whichever runs last, so both converge, live and
/// rebuilt, and the funnel reads the applications alone.
pub(crate) async fn refresh_applicants(conn: &mut sqlx::PgConnection, persons: &[Uuid]) -> Result<(), sqlx::Error> {
    static REFRESH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "UPDATE grants.applications a SET \
               applicant_district = CASE WHEN p.status = 3 THEN NULL ELSE p.district_folded END, \
               applicant_sex = CASE WHEN p.status = 3 THEN NULL ELSE p.sex END, \
               applicant_band = ({band})::smallint \
             FROM grants.people p WHERE p.person_id = a.person_id AND a.person_id = ANY($1)",
            band =
                crate::queries::age_band_sql("CASE WHEN p.status = 3 THEN NULL ELSE p.birth_date END", "a.applied_on"),
        )
    });
    if persons.is_empty() {
        return Ok(());
    }
    sqlx::query(sqlx::AssertSqlSafe(REFRESH.as_str())).bind(persons).execute(&mut *conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_name_the_aggregate_and_its_id() {
        let id = Uuid::from_u128(7);
        assert_eq!(subject(&format!("acasa.grants.call.{id}")).unwrap(), Some((Kind::Call, id)));
        assert_eq!(subject(&format!("acasa.grants.application.{id}")).unwrap(), Some((Kind::Application, id)));
        assert_eq!(subject(&format!("acasa.grants.course.{id}")).unwrap(), Some((Kind::Course, id)));
        assert_eq!(subject(&format!("acasa.grants.session.{id}")).unwrap(), Some((Kind::Session, id)));
        assert_eq!(subject(&format!("acasa.grants.official.{id}")).unwrap(), Some((Kind::Official, id)));
        assert_eq!(subject(&format!("acasa.grants.support.{id}")).unwrap(), Some((Kind::Support, id)));
        assert_eq!(subject(&format!("acasa.grants.other.{id}")).unwrap(), None);
        assert_eq!(subject(&format!("acasa.placements.call.{id}")).unwrap(), None);
        assert!(subject("acasa.grants.call.not-a-uuid").is_err());
    }

    #[test]
    fn stored_numbers_are_the_api_enums() {
        assert_eq!(status(pb::ApplicationStatus::Eligible), 1);
        assert_eq!(status(pb::ApplicationStatus::Cancelled), 11);
        assert_eq!(item_status(pb::ItemStatus::HandedOver), 4);
        assert_eq!(result(pb::TrainingResult::InProgress), 1);
        assert_eq!(result(pb::TrainingResult::NotCompleted), 3);
    }

    #[test]
    fn shredded_details_store_no_personal_column() {
        let d = OfficialDetails {
            kind: crate::domain::official::OfficialKind::LocalOfficial,
            given_name: String::new(),
            family_name: String::new(),
            sex: None,
            organisation: "Primăria Cahul".into(),
            role: String::new(),
            district: "Cahul".into(),
            email: String::new(),
            phone: String::new(),
        };
        let p = Personal::of(&d);
        assert!(p.given_name.is_none() && p.family_name.is_none() && p.sex.is_none());
        assert!(p.role.is_none() && p.email.is_none() && p.phone.is_none());
    }
}
