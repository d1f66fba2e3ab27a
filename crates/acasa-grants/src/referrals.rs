//! The `grants.referrals` projection: this service's own view of the referral
//! system's log (stream ACASA_REFERRALS, `proto/acasa/referrals/v1/events.proto`),
//! for the start-up support services its partners delivered. Never the
//! referral system's tables.
//!
//! `ReferralCreated` names the person (the registry id, in clear), the
//! partner and the service needed; it is kept in `grants.referrals` (ids
//! and the service only: no district, no profile, no note). The partner's
//! `ReferralOutcomeRecorded` names none of them: with the referral's row it
//! becomes one row of `grants.referral_support` when it counts as support:
//!
//! | outcome                              | support kind        |
//! |--------------------------------------|---------------------|
//! | loan disbursed                       | loans               |
//! | service delivered: loan              | loans               |
//! | service delivered: accounting        | accounting          |
//! | service delivered: taxation          | taxation            |
//! | service delivered: licensing         | licensing           |
//! | service delivered: quality standards | quality standards   |
//! | service delivered: financial literacy| financial literacy  |
//! | service delivered: consulting        | business planning   |
//! | service delivered: training, legal, business registration | not recorded |
//! | not delivered                        | not recorded        |
//!
//! The kind is the service the outcome says was delivered (the referral
//! system requires it and it may differ from the need); a loan disbursed
//! is a loan. Business consulting (by a business service provider) is the
//! programme's "business strategy planning". Training is the grants
//! service's own capability, recorded there; legal advice and business
//! registration are none of the programme's seven kinds of support (the
//! referral system keeps "licensing and permits" apart from
//! registration): guessing a kind for them would count support that was
//! not given.
//!
//! `delivered_on` is the UTC day of the outcome's time and `recorded_at`
//! that time (the commit's if the event has none). A referral is one row
//! however often its events are replayed. The referral system records one
//! outcome per referral and has no event reversing it; should a later
//! outcome of the same referral ever say otherwise, the last one stands (a
//! "not delivered" deletes the row), so a rebuild equals the live model.

use acasa_domain::EncodedEvent;
use acasa_eventstore::StoredCommit;
use acasa_projection::{ApplyError, Projection};
use acasa_proto::partner::v1::{self as partner, ServiceKind, outcome::Kind};
use acasa_proto::referrals::v1 as refs;
use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::codec::support_kind;
use crate::domain::support::SupportKind;

/// The referral system's subjects of a referral's commits: the prefix, then its id.
pub const SUBJECT_PREFIX: &str = "acasa.referrals.referral.";
/// `ReferralCreated`'s type name.
pub const REFERRAL_CREATED: &str = "acasa.referrals.v1.ReferralCreated";
/// `ReferralOutcomeRecorded`'s type name.
pub const REFERRAL_OUTCOME_RECORDED: &str = "acasa.referrals.v1.ReferralOutcomeRecorded";

/// Builds `grants.referrals` and `grants.referral_support` from the
/// referral system's log.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReferralsProjection;

impl ReferralsProjection {
    /// The projection.
    pub fn new() -> Self {
        Self
    }
}

fn poison(e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Poison(e.to_string())
}

fn decode<M: acasa_proto::Message + Default>(data: &[u8]) -> Result<M, ApplyError> {
    M::decode(data).map_err(|e| poison(format!("referral event: {e}")))
}

fn referral_of(c: &StoredCommit) -> Option<Uuid> {
    c.subject.strip_prefix(SUBJECT_PREFIX).and_then(|s| Uuid::parse_str(s).ok())
}

/// The support kind a delivered service counts as (see the module's table).
pub fn support_of(service: ServiceKind) -> Option<SupportKind> {
    Some(match service {
        ServiceKind::Loan => SupportKind::Loans,
        ServiceKind::Accounting => SupportKind::Accounting,
        ServiceKind::Taxation => SupportKind::Taxation,
        ServiceKind::Licensing => SupportKind::Licensing,
        ServiceKind::QualityStandards => SupportKind::QualityStandards,
        ServiceKind::FinancialLiteracy => SupportKind::FinancialLiteracy,
        ServiceKind::Consulting => SupportKind::BusinessPlanning,
        ServiceKind::Training | ServiceKind::Legal | ServiceKind::BusinessRegistration | ServiceKind::Unspecified => {
            return None;
        }
    })
}

/// The support kind an outcome counts as, if any.
pub fn outcome_support(outcome: Option<&partner::Outcome>) -> Option<SupportKind> {
    match outcome?.kind.as_ref()? {
        Kind::LoanDisbursed(_) => Some(SupportKind::Loans),
        Kind::ServiceDelivered(s) => support_of(ServiceKind::try_from(s.service).ok()?),
        Kind::NotDelivered(_) => None,
    }
}

/// A referral as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sent {
    person: Uuid,
    partner: Uuid,
    service: i16,
}

/// What one referral event changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    /// The referral was sent.
    Sent(Sent),
    /// The outcome: the support it counts as (none: not support), when.
    Outcome(Option<SupportKind>, DateTime<Utc>),
}

/// What `e` (of a commit recorded at `recorded_at`) changes, if anything
/// this service keeps.
fn change(e: &EncodedEvent, recorded_at: DateTime<Utc>) -> Result<Option<Change>, ApplyError> {
    Ok(Some(match e.type_name.as_str() {
        REFERRAL_CREATED => {
            let m: refs::ReferralCreated = decode(&e.data)?;
            let id = |s: &str, what: &str| Uuid::parse_str(s).map_err(|_| poison(format!("a referral without {what}")));
            Change::Sent(Sent {
                person: id(&m.person_id, "a person id")?,
                partner: id(&m.partner_id, "a partner id")?,
                service: m.need.and_then(|n| i16::try_from(n.service).ok()).unwrap_or(0),
            })
        }
        REFERRAL_OUTCOME_RECORDED => {
            let m: refs::ReferralOutcomeRecorded = decode(&e.data)?;
            let at =
                m.at.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
                    .unwrap_or(recorded_at);
            Change::Outcome(outcome_support(m.outcome.as_ref()), at)
        }
        _ => return Ok(None),
    }))
}

/// The row of `grants.referral_support` an outcome makes of a sent referral.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SupportRow {
    person: Uuid,
    kind: i16,
    partner: Uuid,
    delivered_on: NaiveDate,
    recorded_at: DateTime<Utc>,
}

fn support_row(sent: Sent, kind: SupportKind, at: DateTime<Utc>) -> SupportRow {
    SupportRow {
        person: sent.person,
        kind: i16::try_from(support_kind(kind) as i32).unwrap_or(0),
        partner: sent.partner,
        delivered_on: at.date_naive(),
        recorded_at: at,
    }
}

async fn write(conn: &mut PgConnection, referral: Uuid, position: i64, change: Change) -> Result<(), ApplyError> {
    match change {
        Change::Sent(s) => {
            sqlx::query(
                "INSERT INTO grants.referrals (referral_id, person_id, partner_id, service, position) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (referral_id) DO NOTHING",
            )
            .bind(referral)
            .bind(s.person)
            .bind(s.partner)
            .bind(s.service)
            .bind(position)
            .execute(&mut *conn)
            .await?;
        }
        Change::Outcome(Some(kind), at) => {
            let sent: Option<(Uuid, Uuid, i16)> =
                sqlx::query_as("SELECT person_id, partner_id, service FROM grants.referrals WHERE referral_id = $1")
                    .bind(referral)
                    .fetch_optional(&mut *conn)
                    .await?;
            let (person, partner, service) = sent.ok_or_else(|| poison("an outcome of a referral never sent"))?;
            let row = support_row(Sent { person, partner, service }, kind, at);
            sqlx::query(
                "INSERT INTO grants.referral_support \
                 (referral_id, person_id, kind, partner_id, delivered_on, recorded_at, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (referral_id) DO UPDATE SET \
                 kind = EXCLUDED.kind, delivered_on = EXCLUDED.delivered_on, \
                 recorded_at = EXCLUDED.recorded_at, position = EXCLUDED.position",
            )
            .bind(referral)
            .bind(row.person)
            .bind(row.kind)
            .bind(row.partner)
            .bind(row.delivered_on)
            .bind(row.recorded_at)
            .bind(position)
            .execute(&mut *conn)
            .await?;
        }
        Change::Outcome(None, _) => {
            sqlx::query("DELETE FROM grants.referral_support WHERE referral_id = $1")
                .bind(referral)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

impl Projection for ReferralsProjection {
    fn name(&self) -> &str {
        crate::REFERRALS_PROJECTION
    }

    fn reset<'c>(&'c self, conn: &'c mut PgConnection) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query("TRUNCATE grants.referrals, grants.referral_support").execute(conn).await?;
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
                let Some(referral) = referral_of(c) else { continue };
                let position = i64::try_from(c.sequence).unwrap_or(i64::MAX);
                for e in &c.events {
                    if let Some(change) = change(e, c.recorded_at)? {
                        write(conn, referral, position, change).await?;
                    }
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use acasa_proto::Message;
    use acasa_proto::r#type::v1::Money;

    use super::*;

    fn event(type_name: &str, m: &impl Message) -> EncodedEvent {
        EncodedEvent { type_name: type_name.to_owned(), schema_version: 1, data: m.encode_to_vec() }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ts(t: DateTime<Utc>) -> acasa_proto::Timestamp {
        acasa_proto::Timestamp { seconds: t.timestamp(), nanos: 0 }
    }

    fn delivered(service: ServiceKind) -> partner::Outcome {
        partner::Outcome { kind: Some(Kind::ServiceDelivered(partner::ServiceDelivered { service: service as i32 })) }
    }

    #[test]
    fn delivered_services_map_to_support_kinds() {
        use ServiceKind as S;
        use SupportKind as K;
        let mapped: Vec<_> = [
            S::Unspecified,
            S::Loan,
            S::Training,
            S::Accounting,
            S::Licensing,
            S::Legal,
            S::Consulting,
            S::Taxation,
            S::QualityStandards,
            S::FinancialLiteracy,
            S::BusinessRegistration,
        ]
        .into_iter()
        .map(|s| outcome_support(Some(&delivered(s))))
        .collect();
        assert_eq!(
            mapped,
            [
                None,
                Some(K::Loans),
                None,
                Some(K::Accounting),
                Some(K::Licensing),
                None,
                Some(K::BusinessPlanning),
                Some(K::Taxation),
                Some(K::QualityStandards),
                Some(K::FinancialLiteracy),
                None
            ]
        );
        // Every support kind but none other can come from the referral system.
        let mut kinds: Vec<_> = mapped.into_iter().flatten().collect();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds.len(), 7);
        let loan = partner::Outcome {
            kind: Some(Kind::LoanDisbursed(Money { amount_minor: 150_000, currency: "MDL".into() })),
        };
        assert_eq!(outcome_support(Some(&loan)), Some(K::Loans));
        let not = partner::Outcome { kind: Some(Kind::NotDelivered(partner::NotDelivered { reason: 1 })) };
        assert_eq!(outcome_support(Some(&not)), None);
        assert_eq!(outcome_support(Some(&partner::Outcome { kind: None })), None);
        assert_eq!(outcome_support(None), None);
        let unknown =
            partner::Outcome { kind: Some(Kind::ServiceDelivered(partner::ServiceDelivered { service: 99 })) };
        assert_eq!(outcome_support(Some(&unknown)), None, "a service this service does not know yet");
    }

    #[test]
    fn referral_events_become_changes() {
        let now = at("2027-06-01T10:00:00Z");
        let (person, partner_id) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let created = refs::ReferralCreated {
            person_id: person.to_string(),
            partner_id: partner_id.to_string(),
            need: Some(partner::Need { service: ServiceKind::Accounting as i32, requested_amount: None }),
            district: "Cahul".into(),
            ..Default::default()
        };
        assert_eq!(
            change(&event(REFERRAL_CREATED, &created), now).unwrap(),
            Some(Change::Sent(Sent { person, partner: partner_id, service: 3 }))
        );
        let anonymous = refs::ReferralCreated { person_id: String::new(), ..created.clone() };
        assert!(matches!(change(&event(REFERRAL_CREATED, &anonymous), now), Err(ApplyError::Poison(_))));
        let when = at("2027-06-30T23:30:00Z");
        let outcome =
            refs::ReferralOutcomeRecorded { outcome: Some(delivered(ServiceKind::Taxation)), at: Some(ts(when)) };
        assert_eq!(
            change(&event(REFERRAL_OUTCOME_RECORDED, &outcome), now).unwrap(),
            Some(Change::Outcome(Some(SupportKind::Taxation), when))
        );
        let undated = refs::ReferralOutcomeRecorded { at: None, ..outcome };
        assert_eq!(
            change(&event(REFERRAL_OUTCOME_RECORDED, &undated), now).unwrap(),
            Some(Change::Outcome(Some(SupportKind::Taxation), now)),
            "no time: the commit's"
        );
        let not = refs::ReferralOutcomeRecorded {
            outcome: Some(partner::Outcome { kind: Some(Kind::NotDelivered(partner::NotDelivered { reason: 2 })) }),
            at: Some(ts(when)),
        };
        assert_eq!(change(&event(REFERRAL_OUTCOME_RECORDED, &not), now).unwrap(), Some(Change::Outcome(None, when)));
        let accepted = event("acasa.referrals.v1.ReferralAccepted", &refs::ReferralAccepted { at: Some(ts(now)) });
        assert_eq!(change(&accepted, now).unwrap(), None);
        let broken = EncodedEvent { type_name: REFERRAL_OUTCOME_RECORDED.into(), schema_version: 1, data: vec![0xff] };
        assert!(matches!(change(&broken, now), Err(ApplyError::Poison(_))));
    }

    #[test]
    fn a_sent_referral_and_its_outcome_make_a_row() {
        let sent = Sent { person: Uuid::from_u128(1), partner: Uuid::from_u128(2), service: 6 };
        let when = at("2027-06-30T23:30:00Z");
        assert_eq!(
            support_row(sent, SupportKind::BusinessPlanning, when),
            SupportRow {
                person: sent.person,
                kind: 1,
                partner: sent.partner,
                delivered_on: NaiveDate::from_ymd_opt(2027, 6, 30).unwrap(),
                recorded_at: when,
            }
        );
        assert_eq!(support_row(sent, SupportKind::FinancialLiteracy, when).kind, 7);
    }

    #[test]
    fn only_referral_subjects_are_read() {
        let commit = |subject: &str| StoredCommit {
            sequence: 1,
            subject: subject.into(),
            request_key: String::new(),
            method: String::new(),
            actor: String::new(),
            request_digest: Vec::new(),
            events: Vec::new(),
            recorded_at: Utc::now(),
        };
        let id = Uuid::from_u128(5);
        assert_eq!(referral_of(&commit(&format!("acasa.referrals.referral.{id}"))), Some(id));
        assert_eq!(referral_of(&commit(&format!("acasa.referrals.partner.{id}"))), None);
        assert_eq!(referral_of(&commit("acasa.referrals.referral.nope")), None);
    }
}
