//! The grants' events as the log stores them: the `acasa.grants.v1` event
//! messages (`proto/acasa/grants/v1/events.proto`), by type name and schema
//! version, and the conversions between the domain's values and their
//! protobuf forms. The only place the service's events become bytes.
//!
//! Decoding is strict: a missing or invalid id, date, time, amount, count
//! or enum value is a [`DecodeError`] naming the field, never a default.
//!
//! **Officials' personal data.** An official's name, sex, role and
//! contacts are sealed with the official's own data key
//! ([`OfficialCodec`]: AES-256-GCM through `acasa-vault`, associated data
//! `"<official id>|<event type name>|personal"`). [`OfficialEvent`]
//! therefore has no plain [`EventCodec`]: its events are only written and
//! read through an `OfficialCodec`, which refuses to write details without
//! the key and reads them back shredded (empty names and contacts, no sex)
//! once the key is destroyed by erasure.
//!
//! The training events (`TraineeEnrolled`, `TraineeUnenrolled`,
//! `AttendanceRecorded`, `TrainingCompleted`, `TrainingNotCompleted`) are
//! shared by the application's and the official's subjects; an official's
//! enrolment has no call place (`call_place` 0).

use std::collections::BTreeMap;

use acasa_domain::{Codec, DecodeError, EncodeError, EncodedEvent, EventCodec};
use acasa_proto::{
    Message, Timestamp,
    grants::v1 as pb,
    registry::v1 as registry,
    time,
    r#type::v1::{Date, Money as PbMoney},
};
use acasa_vault::DataKey;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::domain::{
    Audience, Category, Money, Sex, Stamp,
    application::{ApplicationEvent, GrantTerms, Handover, Item, NewApplication, Plan, PlanItem, Supplier, Visit},
    call::{CallEvent, NewCall},
    eligibility::{AgeRange, Rule, Rules},
    official::{OfficialDetails, OfficialEvent, OfficialKind},
    scoring::{Criterion, Evaluation},
    support::{Provider, Service, Source, SupportEvent, SupportKind},
    training::{CourseDetails, CourseEvent, NewCourse, NewSession, SessionDetails, SessionEvent},
};

/// Type names of the events.
pub mod names {
    /// `CallOpened`.
    pub const CALL_OPENED: &str = "acasa.grants.v1.CallOpened";
    /// `CallClosed`.
    pub const CALL_CLOSED: &str = "acasa.grants.v1.CallClosed";
    /// `CallBudgetChanged`.
    pub const CALL_BUDGET_CHANGED: &str = "acasa.grants.v1.CallBudgetChanged";
    /// `BudgetCommitted`.
    pub const BUDGET_COMMITTED: &str = "acasa.grants.v1.BudgetCommitted";
    /// `BudgetReleased`.
    pub const BUDGET_RELEASED: &str = "acasa.grants.v1.BudgetReleased";
    /// `ApplicationReceived`.
    pub const APPLICATION_RECEIVED: &str = "acasa.grants.v1.ApplicationReceived";
    /// `EligibilityAssessed`.
    pub const ELIGIBILITY_ASSESSED: &str = "acasa.grants.v1.EligibilityAssessed";
    /// `ApplicationWithdrawn`.
    pub const APPLICATION_WITHDRAWN: &str = "acasa.grants.v1.ApplicationWithdrawn";
    /// `TraineeEnrolled` (an application's or an official's).
    pub const TRAINEE_ENROLLED: &str = "acasa.grants.v1.TraineeEnrolled";
    /// `TraineeUnenrolled` (an application's or an official's).
    pub const TRAINEE_UNENROLLED: &str = "acasa.grants.v1.TraineeUnenrolled";
    /// `AttendanceRecorded` (an application's or an official's).
    pub const ATTENDANCE_RECORDED: &str = "acasa.grants.v1.AttendanceRecorded";
    /// `TrainingCompleted` (an application's or an official's).
    pub const TRAINING_COMPLETED: &str = "acasa.grants.v1.TrainingCompleted";
    /// `TrainingNotCompleted` (an application's or an official's).
    pub const TRAINING_NOT_COMPLETED: &str = "acasa.grants.v1.TrainingNotCompleted";
    /// `BusinessPlanSubmitted`.
    pub const PLAN_SUBMITTED: &str = "acasa.grants.v1.BusinessPlanSubmitted";
    /// `ConflictOfInterestDeclared`.
    pub const CONFLICT_DECLARED: &str = "acasa.grants.v1.ConflictOfInterestDeclared";
    /// `ApplicationScored`.
    pub const SCORED: &str = "acasa.grants.v1.ApplicationScored";
    /// `GrantApproved`.
    pub const GRANT_APPROVED: &str = "acasa.grants.v1.GrantApproved";
    /// `ApplicationRejected`.
    pub const APPLICATION_REJECTED: &str = "acasa.grants.v1.ApplicationRejected";
    /// `ItemOrdered`.
    pub const ITEM_ORDERED: &str = "acasa.grants.v1.ItemOrdered";
    /// `OrderCancelled`.
    pub const ORDER_CANCELLED: &str = "acasa.grants.v1.OrderCancelled";
    /// `ItemDelivered`.
    pub const ITEM_DELIVERED: &str = "acasa.grants.v1.ItemDelivered";
    /// `SupplierPaid`.
    pub const SUPPLIER_PAID: &str = "acasa.grants.v1.SupplierPaid";
    /// `ItemsHandedOver`.
    pub const ITEMS_HANDED_OVER: &str = "acasa.grants.v1.ItemsHandedOver";
    /// `MonitoringVisitRecorded`.
    pub const VISIT_RECORDED: &str = "acasa.grants.v1.MonitoringVisitRecorded";
    /// `GrantClosed`.
    pub const GRANT_CLOSED: &str = "acasa.grants.v1.GrantClosed";
    /// `GrantCancelled`.
    pub const GRANT_CANCELLED: &str = "acasa.grants.v1.GrantCancelled";
    /// `CourseCreated`.
    pub const COURSE_CREATED: &str = "acasa.grants.v1.CourseCreated";
    /// `CourseUpdated`.
    pub const COURSE_UPDATED: &str = "acasa.grants.v1.CourseUpdated";
    /// `CourseRetired`.
    pub const COURSE_RETIRED: &str = "acasa.grants.v1.CourseRetired";
    /// `SessionScheduled`.
    pub const SESSION_SCHEDULED: &str = "acasa.grants.v1.SessionScheduled";
    /// `SessionRescheduled`.
    pub const SESSION_RESCHEDULED: &str = "acasa.grants.v1.SessionRescheduled";
    /// `SessionCapacityChanged`.
    pub const SESSION_CAPACITY_CHANGED: &str = "acasa.grants.v1.SessionCapacityChanged";
    /// `SessionCancelled`.
    pub const SESSION_CANCELLED: &str = "acasa.grants.v1.SessionCancelled";
    /// `OfficialRegistered`.
    pub const OFFICIAL_REGISTERED: &str = "acasa.grants.v1.OfficialRegistered";
    /// `OfficialUpdated`.
    pub const OFFICIAL_UPDATED: &str = "acasa.grants.v1.OfficialUpdated";
    /// `OfficialErased`.
    pub const OFFICIAL_ERASED: &str = "acasa.grants.v1.OfficialErased";
    /// `SupportServiceRecorded`.
    pub const SUPPORT_RECORDED: &str = "acasa.grants.v1.SupportServiceRecorded";
    /// `SupportServiceRetracted`.
    pub const SUPPORT_RETRACTED: &str = "acasa.grants.v1.SupportServiceRetracted";
}

fn encoded(type_name: &str, m: &impl Message) -> EncodedEvent {
    EncodedEvent { type_name: type_name.to_owned(), schema_version: 1, data: m.encode_to_vec() }
}

fn decoded<M: Message + Default>(e: &EncodedEvent) -> Result<M, DecodeError> {
    if e.schema_version != 1 {
        return Err(DecodeError::new(e, format!("unknown schema version {}", e.schema_version)));
    }
    M::decode(e.data.as_slice()).map_err(|err| DecodeError::new(e, err.to_string()))
}

fn missing(e: &EncodedEvent, field: &str) -> DecodeError {
    DecodeError::new(e, format!("{field} is missing"))
}

// ------------------------------------------------------------ values

/// Calendar dates to and from protobuf `Date`s (the kit's).
pub use acasa_proto::time::{date, naive_date as date_of};

/// The protobuf form of an amount.
pub fn money(m: &Money) -> PbMoney {
    PbMoney { amount_minor: m.minor, currency: m.currency.clone() }
}

/// The amount `field` of `e`: present, with a currency.
pub fn money_in(e: &EncodedEvent, field: &str, m: Option<&PbMoney>) -> Result<Money, DecodeError> {
    let m = m.ok_or_else(|| missing(e, field))?;
    if m.currency.is_empty() {
        return Err(DecodeError::new(e, format!("{field} has no currency")));
    }
    Ok(Money { minor: m.amount_minor, currency: m.currency.clone() })
}

/// The date `field` of `e`: present and a calendar date.
pub fn date_in(e: &EncodedEvent, field: &str, d: Option<&Date>) -> Result<NaiveDate, DecodeError> {
    let d = d.ok_or_else(|| missing(e, field))?;
    date_of(d).ok_or_else(|| DecodeError::new(e, format!("{field} is not a date")))
}

/// The protobuf form of a time.
pub fn ts(t: DateTime<Utc>) -> Option<Timestamp> {
    Some(time::timestamp(t))
}

/// The time `field` of `e`: present and in range.
pub fn time_in(e: &EncodedEvent, field: &str, t: Option<&Timestamp>) -> Result<DateTime<Utc>, DecodeError> {
    let t = t.ok_or_else(|| missing(e, field))?;
    time::checked_time(t).ok_or_else(|| DecodeError::new(e, format!("{field} is out of range")))
}

/// The id `field` of `e`.
pub fn id_in(e: &EncodedEvent, field: &str, s: &str) -> Result<Uuid, DecodeError> {
    if s.is_empty() {
        return Err(missing(e, field));
    }
    Uuid::parse_str(s).map_err(|_| DecodeError::new(e, format!("{field} is not a UUID")))
}

/// The ids `field` of `e`.
pub fn ids_in(e: &EncodedEvent, field: &str, ss: &[String]) -> Result<Vec<Uuid>, DecodeError> {
    ss.iter().map(|s| id_in(e, field, s)).collect()
}

/// A count as protobuf `int32` (saturating).
pub fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The count `field` of `e`: not negative.
pub fn count_in(e: &EncodedEvent, field: &str, n: i32) -> Result<u32, DecodeError> {
    u32::try_from(n).map_err(|_| DecodeError::new(e, format!("{field} is negative")))
}

/// The stamp of `e`: its actor and its time `at`.
fn stamp_in(e: &EncodedEvent, actor: &str, at: Option<&Timestamp>) -> Result<Stamp, DecodeError> {
    if actor.is_empty() {
        return Err(missing(e, "actor"));
    }
    Ok(Stamp { by: actor.to_owned(), at: time_in(e, "at", at)? })
}

/// The protobuf sex.
pub fn sex(s: Sex) -> registry::Sex {
    match s {
        Sex::Female => registry::Sex::Female,
        Sex::Male => registry::Sex::Male,
    }
}

/// The sex of a protobuf sex (`None`: unspecified or unknown).
pub fn sex_of(s: i32) -> Option<Sex> {
    match registry::Sex::try_from(s) {
        Ok(registry::Sex::Female) => Some(Sex::Female),
        Ok(registry::Sex::Male) => Some(Sex::Male),
        _ => None,
    }
}

/// The protobuf category.
pub fn category(c: Category) -> registry::Category {
    match c {
        Category::MigrantAbroad => registry::Category::MigrantAbroad,
        Category::Returnee => registry::Category::Returnee,
        Category::OverseasGraduate => registry::Category::OverseasGraduate,
        Category::DiasporaScientist => registry::Category::DiasporaScientist,
        Category::YouthEntrepreneur => registry::Category::YouthEntrepreneur,
        Category::WomanEntrepreneur => registry::Category::WomanEntrepreneur,
    }
}

/// The category of a protobuf category (`None`: unspecified or unknown).
pub fn category_of(c: i32) -> Option<Category> {
    Some(match registry::Category::try_from(c).ok()? {
        registry::Category::MigrantAbroad => Category::MigrantAbroad,
        registry::Category::Returnee => Category::Returnee,
        registry::Category::OverseasGraduate => Category::OverseasGraduate,
        registry::Category::DiasporaScientist => Category::DiasporaScientist,
        registry::Category::YouthEntrepreneur => Category::YouthEntrepreneur,
        registry::Category::WomanEntrepreneur => Category::WomanEntrepreneur,
        registry::Category::Unspecified => return None,
    })
}

/// The protobuf audience.
pub fn audience(a: Audience) -> pb::Audience {
    match a {
        Audience::Entrepreneurs => pb::Audience::Entrepreneurs,
        Audience::Officials => pb::Audience::Officials,
    }
}

/// The audience of a protobuf audience (`None`: unspecified or unknown).
pub fn audience_of(a: i32) -> Option<Audience> {
    match pb::Audience::try_from(a) {
        Ok(pb::Audience::Entrepreneurs) => Some(Audience::Entrepreneurs),
        Ok(pb::Audience::Officials) => Some(Audience::Officials),
        _ => None,
    }
}

fn audience_in(e: &EncodedEvent, a: i32) -> Result<Audience, DecodeError> {
    audience_of(a).ok_or_else(|| DecodeError::new(e, "audience is unknown"))
}

/// The protobuf kind of an official.
pub fn official_kind(k: OfficialKind) -> pb::OfficialKind {
    match k {
        OfficialKind::LocalOfficial => pb::OfficialKind::LocalOfficial,
        OfficialKind::SmeSupportStaff => pb::OfficialKind::SmeSupportStaff,
    }
}

/// The kind of an official of its protobuf kind (`None`: unspecified or
/// unknown).
pub fn official_kind_of(k: i32) -> Option<OfficialKind> {
    match pb::OfficialKind::try_from(k) {
        Ok(pb::OfficialKind::LocalOfficial) => Some(OfficialKind::LocalOfficial),
        Ok(pb::OfficialKind::SmeSupportStaff) => Some(OfficialKind::SmeSupportStaff),
        _ => None,
    }
}

/// The protobuf kind of support.
pub fn support_kind(k: SupportKind) -> pb::SupportKind {
    match k {
        SupportKind::BusinessPlanning => pb::SupportKind::BusinessPlanning,
        SupportKind::Accounting => pb::SupportKind::Accounting,
        SupportKind::Taxation => pb::SupportKind::Taxation,
        SupportKind::Licensing => pb::SupportKind::Licensing,
        SupportKind::QualityStandards => pb::SupportKind::QualityStandards,
        SupportKind::Loans => pb::SupportKind::Loans,
        SupportKind::FinancialLiteracy => pb::SupportKind::FinancialLiteracy,
    }
}

/// The kind of support of its protobuf kind (`None`: unspecified or
/// unknown).
pub fn support_kind_of(k: i32) -> Option<SupportKind> {
    Some(match pb::SupportKind::try_from(k).ok()? {
        pb::SupportKind::BusinessPlanning => SupportKind::BusinessPlanning,
        pb::SupportKind::Accounting => SupportKind::Accounting,
        pb::SupportKind::Taxation => SupportKind::Taxation,
        pb::SupportKind::Licensing => SupportKind::Licensing,
        pb::SupportKind::QualityStandards => SupportKind::QualityStandards,
        pb::SupportKind::Loans => SupportKind::Loans,
        pb::SupportKind::FinancialLiteracy => SupportKind::FinancialLiteracy,
        pb::SupportKind::Unspecified => return None,
    })
}

/// The protobuf eligibility rules.
pub fn rules(r: &Rules) -> pb::EligibilityRules {
    pb::EligibilityRules {
        age: r.age.map(|a| pb::AgeRange { min_age: count(a.min), max_age: count(a.max) }),
        sexes: r.sexes.iter().map(|s| sex(*s) as i32).collect(),
        rural_only: r.rural_only,
        categories: r.categories.iter().map(|c| category(*c) as i32).collect(),
    }
}

fn rules_in(e: &EncodedEvent, r: Option<&pb::EligibilityRules>) -> Result<Rules, DecodeError> {
    let r = r.ok_or_else(|| missing(e, "eligibility"))?;
    let age = match &r.age {
        Some(a) => {
            Some(AgeRange { min: count_in(e, "age.min_age", a.min_age)?, max: count_in(e, "age.max_age", a.max_age)? })
        }
        None => None,
    };
    let sexes = r
        .sexes
        .iter()
        .map(|s| sex_of(*s).ok_or_else(|| DecodeError::new(e, "a sex is unknown")))
        .collect::<Result<_, _>>()?;
    let categories = r
        .categories
        .iter()
        .map(|c| category_of(*c).ok_or_else(|| DecodeError::new(e, "a category is unknown")))
        .collect::<Result<_, _>>()?;
    Ok(Rules { age, sexes, rural_only: r.rural_only, categories })
}

/// The protobuf evaluation rules.
pub fn evaluation(v: &Evaluation) -> pb::EvaluationRules {
    pb::EvaluationRules {
        criteria: v
            .criteria
            .iter()
            .map(|c| pb::Criterion { key: c.key.clone(), title: c.title.clone(), weight: count(c.weight) })
            .collect(),
        scale_max: count(v.scale_max),
        min_evaluators: count(v.min_evaluators),
        pass_score: count(v.pass_score),
    }
}

fn evaluation_in(e: &EncodedEvent, v: Option<&pb::EvaluationRules>) -> Result<Evaluation, DecodeError> {
    let v = v.ok_or_else(|| missing(e, "evaluation"))?;
    if v.criteria.is_empty() {
        return Err(missing(e, "evaluation.criteria"));
    }
    Ok(Evaluation {
        criteria: v
            .criteria
            .iter()
            .map(|c| {
                Ok(Criterion {
                    key: c.key.clone(),
                    title: c.title.clone(),
                    weight: count_in(e, "criterion.weight", c.weight)?,
                })
            })
            .collect::<Result<_, DecodeError>>()?,
        scale_max: count_in(e, "evaluation.scale_max", v.scale_max)?,
        min_evaluators: count_in(e, "evaluation.min_evaluators", v.min_evaluators)?,
        pass_score: count_in(e, "evaluation.pass_score", v.pass_score)?,
    })
}

/// The protobuf terms of a call.
pub fn call_terms(c: &NewCall) -> pb::CallTerms {
    pb::CallTerms {
        title: c.title.clone(),
        budget: Some(money(&c.budget)),
        cap: Some(money(&c.cap)),
        opens_on: Some(date(c.opens_on)),
        closes_on: Some(date(c.closes_on)),
        districts: c.districts.clone(),
        training_places: count(c.training_places),
        eligibility: Some(rules(&c.eligibility)),
        evaluation: Some(evaluation(&c.evaluation)),
    }
}

fn call_in(e: &EncodedEvent, id: Uuid, t: Option<&pb::CallTerms>) -> Result<NewCall, DecodeError> {
    let t = t.ok_or_else(|| missing(e, "terms"))?;
    Ok(NewCall {
        id,
        title: t.title.clone(),
        budget: money_in(e, "terms.budget", t.budget.as_ref())?,
        cap: money_in(e, "terms.cap", t.cap.as_ref())?,
        opens_on: date_in(e, "terms.opens_on", t.opens_on.as_ref())?,
        closes_on: date_in(e, "terms.closes_on", t.closes_on.as_ref())?,
        districts: t.districts.clone(),
        training_places: count_in(e, "terms.training_places", t.training_places)?,
        eligibility: rules_in(e, t.eligibility.as_ref())?,
        evaluation: evaluation_in(e, t.evaluation.as_ref())?,
    })
}

/// The protobuf form of what an application keeps of its call's terms.
pub fn grant_terms(t: &GrantTerms) -> pb::GrantTerms {
    pb::GrantTerms {
        cap: Some(money(&t.cap)),
        training_places: count(t.training_places),
        eligibility: Some(rules(&t.eligibility)),
        districts: t.districts.clone(),
        evaluation: Some(evaluation(&t.evaluation)),
    }
}

fn grant_terms_in(e: &EncodedEvent, t: Option<&pb::GrantTerms>) -> Result<GrantTerms, DecodeError> {
    let t = t.ok_or_else(|| missing(e, "terms"))?;
    Ok(GrantTerms {
        cap: money_in(e, "terms.cap", t.cap.as_ref())?,
        training_places: count_in(e, "terms.training_places", t.training_places)?,
        eligibility: rules_in(e, t.eligibility.as_ref())?,
        districts: t.districts.clone(),
        evaluation: evaluation_in(e, t.evaluation.as_ref())?,
    })
}

/// The protobuf business plan.
pub fn plan(p: &Plan) -> pb::BusinessPlan {
    pb::BusinessPlan {
        sector: p.sector.clone(),
        summary: p.summary.clone(),
        requested_amount: Some(money(&p.requested)),
        items: p
            .items
            .iter()
            .map(|i| pb::PlanItem {
                description: i.description.clone(),
                quantity: count(i.quantity),
                unit_price: Some(money(&i.unit_price)),
            })
            .collect(),
    }
}

fn plan_in(e: &EncodedEvent, p: Option<&pb::BusinessPlan>) -> Result<Plan, DecodeError> {
    let p = p.ok_or_else(|| missing(e, "plan"))?;
    Ok(Plan {
        sector: p.sector.clone(),
        summary: p.summary.clone(),
        requested: money_in(e, "plan.requested_amount", p.requested_amount.as_ref())?,
        items: p
            .items
            .iter()
            .map(|i| {
                Ok(PlanItem {
                    description: i.description.clone(),
                    quantity: count_in(e, "plan.items.quantity", i.quantity)?,
                    unit_price: money_in(e, "plan.items.unit_price", i.unit_price.as_ref())?,
                })
            })
            .collect::<Result<_, DecodeError>>()?,
    })
}

/// The protobuf scores, in key order.
pub fn scores(s: &BTreeMap<String, u32>) -> Vec<pb::CriterionScore> {
    s.iter().map(|(k, v)| pb::CriterionScore { key: k.clone(), score: count(*v) }).collect()
}

fn scores_in(e: &EncodedEvent, s: &[pb::CriterionScore]) -> Result<BTreeMap<String, u32>, DecodeError> {
    let mut out = BTreeMap::new();
    for c in s {
        if out.insert(c.key.clone(), count_in(e, "scores.score", c.score)?).is_some() {
            return Err(DecodeError::new(e, format!("scores: {} is scored twice", c.key)));
        }
    }
    Ok(out)
}

/// The protobuf form of an item procured.
pub fn procurement_item(i: &Item) -> pb::ProcurementItem {
    pb::ProcurementItem {
        description: i.description.clone(),
        supplier: Some(pb::Supplier {
            name: i.supplier.name.clone(),
            idno: i.supplier.idno.clone().unwrap_or_default(),
        }),
        quantity: count(i.quantity),
        unit_price: Some(money(&i.unit_price)),
    }
}

fn item_in(e: &EncodedEvent, id: Uuid, i: Option<&pb::ProcurementItem>) -> Result<Item, DecodeError> {
    let i = i.ok_or_else(|| missing(e, "item"))?;
    let s = i.supplier.as_ref().ok_or_else(|| missing(e, "item.supplier"))?;
    Ok(Item {
        id,
        description: i.description.clone(),
        supplier: Supplier { name: s.name.clone(), idno: (!s.idno.is_empty()).then(|| s.idno.clone()) },
        quantity: count_in(e, "item.quantity", i.quantity)?,
        unit_price: money_in(e, "item.unit_price", i.unit_price.as_ref())?,
    })
}

/// The protobuf handover record.
pub fn handover(h: &Handover) -> pb::Handover {
    pb::Handover {
        reference: h.reference.clone(),
        item_ids: h.items.iter().map(Uuid::to_string).collect(),
        handed_over_on: Some(date(h.on)),
        location: h.location.clone(),
        note: h.note.clone(),
    }
}

fn handover_in(e: &EncodedEvent, h: Option<&pb::Handover>) -> Result<Handover, DecodeError> {
    let h = h.ok_or_else(|| missing(e, "handover"))?;
    Ok(Handover {
        reference: h.reference.clone(),
        items: ids_in(e, "handover.item_ids", &h.item_ids)?,
        on: date_in(e, "handover.handed_over_on", h.handed_over_on.as_ref())?,
        location: h.location.clone(),
        note: h.note.clone(),
    })
}

/// The protobuf monitoring visit.
pub fn visit(v: &Visit) -> pb::MonitoringVisit {
    pb::MonitoringVisit {
        visited_on: Some(date(v.on)),
        officer: v.officer.clone(),
        operating: v.operating,
        jobs_created: count(v.jobs_created),
        findings: v.findings.clone(),
    }
}

fn visit_in(e: &EncodedEvent, v: Option<&pb::MonitoringVisit>) -> Result<Visit, DecodeError> {
    let v = v.ok_or_else(|| missing(e, "visit"))?;
    Ok(Visit {
        on: date_in(e, "visit.visited_on", v.visited_on.as_ref())?,
        officer: v.officer.clone(),
        operating: v.operating,
        jobs_created: count_in(e, "visit.jobs_created", v.jobs_created)?,
        findings: v.findings.clone(),
    })
}

/// The protobuf course details.
pub fn course_details(d: &CourseDetails) -> pb::CourseDetails {
    pb::CourseDetails {
        title: d.title.clone(),
        topics: d.topics.clone(),
        language: d.language.clone(),
        hours: count(d.hours),
        completion_threshold_percent: count(d.threshold_percent),
    }
}

fn course_details_in(e: &EncodedEvent, d: Option<&pb::CourseDetails>) -> Result<CourseDetails, DecodeError> {
    let d = d.ok_or_else(|| missing(e, "details"))?;
    Ok(CourseDetails {
        title: d.title.clone(),
        topics: d.topics.clone(),
        language: d.language.clone(),
        hours: count_in(e, "details.hours", d.hours)?,
        threshold_percent: count_in(e, "details.completion_threshold_percent", d.completion_threshold_percent)?,
    })
}

/// The protobuf session details.
pub fn session_details(d: &SessionDetails) -> pb::SessionDetails {
    pb::SessionDetails {
        days: d.days.iter().map(|d| date(*d)).collect(),
        venue: d.venue.clone(),
        district: d.district.clone(),
        trainer: d.trainer.clone(),
    }
}

fn session_details_in(e: &EncodedEvent, d: Option<&pb::SessionDetails>) -> Result<SessionDetails, DecodeError> {
    let d = d.ok_or_else(|| missing(e, "details"))?;
    Ok(SessionDetails {
        days: d.days.iter().map(|day| date_in(e, "details.days", Some(day))).collect::<Result<_, _>>()?,
        venue: d.venue.clone(),
        district: d.district.clone(),
        trainer: d.trainer.clone(),
    })
}

/// The protobuf form of a support service (`retracted`, `recorded_by` and
/// `recorded_at` left empty: the event's actor and time say them).
pub fn support_service(person: Uuid, s: &Service) -> pb::SupportService {
    use pb::support_service::Provider as P;
    pb::SupportService {
        service_id: s.id.to_string(),
        person_id: person.to_string(),
        kind: support_kind(s.kind) as i32,
        provider: Some(match &s.provider {
            Provider::Staff(by) => P::Staff(by.clone()),
            Provider::Partner(p) => P::PartnerId(p.to_string()),
            Provider::Other(name) => P::OtherProvider(name.clone()),
        }),
        delivered_on: Some(date(s.delivered_on)),
        note: s.note.clone(),
        referral_id: match s.source {
            Source::Recorded => String::new(),
            Source::Referral(r) => r.to_string(),
        },
        retracted: false,
        recorded_by: String::new(),
        recorded_at: None,
    }
}

fn support_service_in(e: &EncodedEvent, s: Option<&pb::SupportService>) -> Result<(Uuid, Service), DecodeError> {
    use pb::support_service::Provider as P;
    let s = s.ok_or_else(|| missing(e, "service"))?;
    let provider = match s.provider.as_ref().ok_or_else(|| missing(e, "service.provider"))? {
        P::Staff(by) => Provider::Staff(by.clone()),
        P::PartnerId(p) => Provider::Partner(id_in(e, "service.partner_id", p)?),
        P::OtherProvider(name) => Provider::Other(name.clone()),
    };
    let source = if s.referral_id.is_empty() {
        Source::Recorded
    } else {
        Source::Referral(id_in(e, "service.referral_id", &s.referral_id)?)
    };
    Ok((
        id_in(e, "service.person_id", &s.person_id)?,
        Service {
            id: id_in(e, "service.service_id", &s.service_id)?,
            kind: support_kind_of(s.kind).ok_or_else(|| DecodeError::new(e, "service.kind is unknown"))?,
            provider,
            delivered_on: date_in(e, "service.delivered_on", s.delivered_on.as_ref())?,
            note: s.note.clone(),
            source,
        },
    ))
}

// ------------------------------------------------------------ calls

impl EventCodec for CallEvent {
    fn encode(&self) -> EncodedEvent {
        use names::*;
        match self {
            Self::Opened(c, s) => encoded(
                CALL_OPENED,
                &pb::CallOpened {
                    call_id: c.id.to_string(),
                    terms: Some(call_terms(c)),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::Closed { reason, stamp: s } => {
                encoded(CALL_CLOSED, &pb::CallClosed { reason: reason.clone(), actor: s.by.clone(), at: ts(s.at) })
            }
            Self::BudgetChanged { budget, reason, stamp: s } => encoded(
                CALL_BUDGET_CHANGED,
                &pb::CallBudgetChanged {
                    budget: Some(money(budget)),
                    reason: reason.clone(),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::Committed { application, amount, stamp: s } => encoded(
                BUDGET_COMMITTED,
                &pb::BudgetCommitted {
                    application_id: application.to_string(),
                    amount: Some(money(amount)),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::Released { application, amount, reason, stamp: s } => encoded(
                BUDGET_RELEASED,
                &pb::BudgetReleased {
                    application_id: application.to_string(),
                    amount: Some(money(amount)),
                    reason: reason.clone(),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
        }
    }

    fn decode(e: &EncodedEvent) -> Result<Self, DecodeError> {
        use names::*;
        Ok(match e.type_name.as_str() {
            CALL_OPENED => {
                let m: pb::CallOpened = decoded(e)?;
                let id = id_in(e, "call_id", &m.call_id)?;
                Self::Opened(Box::new(call_in(e, id, m.terms.as_ref())?), stamp_in(e, &m.actor, m.at.as_ref())?)
            }
            CALL_CLOSED => {
                let m: pb::CallClosed = decoded(e)?;
                Self::Closed { stamp: stamp_in(e, &m.actor, m.at.as_ref())?, reason: m.reason }
            }
            CALL_BUDGET_CHANGED => {
                let m: pb::CallBudgetChanged = decoded(e)?;
                Self::BudgetChanged {
                    budget: money_in(e, "budget", m.budget.as_ref())?,
                    stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
                    reason: m.reason,
                }
            }
            BUDGET_COMMITTED => {
                let m: pb::BudgetCommitted = decoded(e)?;
                Self::Committed {
                    application: id_in(e, "application_id", &m.application_id)?,
                    amount: money_in(e, "amount", m.amount.as_ref())?,
                    stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
                }
            }
            BUDGET_RELEASED => {
                let m: pb::BudgetReleased = decoded(e)?;
                Self::Released {
                    application: id_in(e, "application_id", &m.application_id)?,
                    amount: money_in(e, "amount", m.amount.as_ref())?,
                    stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
                    reason: m.reason,
                }
            }
            _ => return Err(DecodeError::new(e, "not a call event")),
        })
    }
}

// ------------------------------------------------------------ training events of a trainee

fn enrolled(session: Uuid, seat: u32, place: Option<u32>, s: &Stamp) -> EncodedEvent {
    encoded(
        names::TRAINEE_ENROLLED,
        &pb::TraineeEnrolled {
            session_id: session.to_string(),
            seat: count(seat),
            call_place: place.map_or(0, count),
            actor: s.by.clone(),
            at: ts(s.at),
        },
    )
}

fn unenrolled(session: Uuid, reason: &str, s: &Stamp) -> EncodedEvent {
    encoded(
        names::TRAINEE_UNENROLLED,
        &pb::TraineeUnenrolled {
            session_id: session.to_string(),
            reason: reason.to_owned(),
            actor: s.by.clone(),
            at: ts(s.at),
        },
    )
}

fn attendance(session: Uuid, day: NaiveDate, present: bool, s: &Stamp) -> EncodedEvent {
    encoded(
        names::ATTENDANCE_RECORDED,
        &pb::AttendanceRecorded {
            session_id: session.to_string(),
            day: Some(date(day)),
            present,
            actor: s.by.clone(),
            at: ts(s.at),
        },
    )
}

fn completed(session: Uuid, certificate: &str, attended: u32, of: u32, s: &Stamp) -> EncodedEvent {
    encoded(
        names::TRAINING_COMPLETED,
        &pb::TrainingCompleted {
            session_id: session.to_string(),
            certificate_number: certificate.to_owned(),
            days_attended: count(attended),
            session_days: count(of),
            actor: s.by.clone(),
            at: ts(s.at),
        },
    )
}

fn not_completed(session: Uuid, attended: u32, of: u32, s: &Stamp) -> EncodedEvent {
    encoded(
        names::TRAINING_NOT_COMPLETED,
        &pb::TrainingNotCompleted {
            session_id: session.to_string(),
            days_attended: count(attended),
            session_days: count(of),
            actor: s.by.clone(),
            at: ts(s.at),
        },
    )
}

/// A trainee's training event, decoded: the same for applications and
/// officials (an official's has no call place).
enum Trainee {
    Enrolled { session: Uuid, seat: u32, place: Option<u32>, stamp: Stamp },
    Unenrolled { session: Uuid, reason: String, stamp: Stamp },
    Attendance { session: Uuid, day: NaiveDate, present: bool, stamp: Stamp },
    Completed { session: Uuid, certificate: String, attended: u32, of: u32, stamp: Stamp },
    NotCompleted { session: Uuid, attended: u32, of: u32, stamp: Stamp },
}

/// The trainee event `e`, if it is one.
fn trainee_in(e: &EncodedEvent) -> Result<Option<Trainee>, DecodeError> {
    use names::*;
    Ok(Some(match e.type_name.as_str() {
        TRAINEE_ENROLLED => {
            let m: pb::TraineeEnrolled = decoded(e)?;
            let place = count_in(e, "call_place", m.call_place)?;
            Trainee::Enrolled {
                session: id_in(e, "session_id", &m.session_id)?,
                seat: count_in(e, "seat", m.seat)?,
                place: (place != 0).then_some(place),
                stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
            }
        }
        TRAINEE_UNENROLLED => {
            let m: pb::TraineeUnenrolled = decoded(e)?;
            Trainee::Unenrolled {
                session: id_in(e, "session_id", &m.session_id)?,
                stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
                reason: m.reason,
            }
        }
        ATTENDANCE_RECORDED => {
            let m: pb::AttendanceRecorded = decoded(e)?;
            Trainee::Attendance {
                session: id_in(e, "session_id", &m.session_id)?,
                day: date_in(e, "day", m.day.as_ref())?,
                present: m.present,
                stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
            }
        }
        TRAINING_COMPLETED => {
            let m: pb::TrainingCompleted = decoded(e)?;
            if m.certificate_number.is_empty() {
                return Err(missing(e, "certificate_number"));
            }
            Trainee::Completed {
                session: id_in(e, "session_id", &m.session_id)?,
                attended: count_in(e, "days_attended", m.days_attended)?,
                of: count_in(e, "session_days", m.session_days)?,
                stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
                certificate: m.certificate_number,
            }
        }
        TRAINING_NOT_COMPLETED => {
            let m: pb::TrainingNotCompleted = decoded(e)?;
            Trainee::NotCompleted {
                session: id_in(e, "session_id", &m.session_id)?,
                attended: count_in(e, "days_attended", m.days_attended)?,
                of: count_in(e, "session_days", m.session_days)?,
                stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
            }
        }
        _ => return Ok(None),
    }))
}

// ------------------------------------------------------------ applications

fn failed_rule(r: Option<Rule>) -> (String, String) {
    match r {
        None => (String::new(), String::new()),
        Some(Rule::PersonMerged(survivor)) => (Rule::PersonMerged(survivor).name().to_owned(), survivor.to_string()),
        Some(r) => (r.name().to_owned(), String::new()),
    }
}

fn failed_rule_in(e: &EncodedEvent, m: &pb::EligibilityAssessed) -> Result<Option<Rule>, DecodeError> {
    if m.eligible {
        if !m.failed_rule.is_empty() {
            return Err(DecodeError::new(e, "failed_rule is set on an eligible assessment"));
        }
        return Ok(None);
    }
    if m.failed_rule.is_empty() {
        return Err(missing(e, "failed_rule"));
    }
    let survivor = if m.failed_rule == Rule::PersonMerged(Uuid::nil()).name() {
        id_in(e, "merged_into", &m.merged_into)?
    } else {
        Uuid::nil()
    };
    Rule::from_name(&m.failed_rule, survivor)
        .map(Some)
        .ok_or_else(|| DecodeError::new(e, format!("failed_rule {} is unknown", m.failed_rule)))
}

impl EventCodec for ApplicationEvent {
    fn encode(&self) -> EncodedEvent {
        use names::*;
        match self {
            Self::Applied { application: a, terms, stamp: s } => encoded(
                APPLICATION_RECEIVED,
                &pb::ApplicationReceived {
                    application_id: a.id.to_string(),
                    call_id: a.call.to_string(),
                    person_id: a.person.to_string(),
                    applied_on: Some(date(a.applied_on)),
                    terms: Some(grant_terms(terms)),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::EligibilityAssessed { failed, on, stamp: s } => {
                let (failed_rule, merged_into) = failed_rule(*failed);
                encoded(
                    ELIGIBILITY_ASSESSED,
                    &pb::EligibilityAssessed {
                        eligible: failed.is_none(),
                        failed_rule,
                        merged_into,
                        assessed_on: Some(date(*on)),
                        actor: s.by.clone(),
                        at: ts(s.at),
                    },
                )
            }
            Self::Withdrawn { reason, stamp: s } => encoded(
                APPLICATION_WITHDRAWN,
                &pb::ApplicationWithdrawn { reason: reason.clone(), actor: s.by.clone(), at: ts(s.at) },
            ),
            Self::Enrolled { session, seat, place, stamp } => enrolled(*session, *seat, *place, stamp),
            Self::Unenrolled { session, reason, stamp } => unenrolled(*session, reason, stamp),
            Self::AttendanceRecorded { session, day, present, stamp } => attendance(*session, *day, *present, stamp),
            Self::TrainingCompleted { session, certificate, attended, of, stamp } => {
                completed(*session, certificate, *attended, *of, stamp)
            }
            Self::TrainingNotCompleted { session, attended, of, stamp } => {
                not_completed(*session, *attended, *of, stamp)
            }
            Self::PlanSubmitted(p, s) => encoded(
                PLAN_SUBMITTED,
                &pb::BusinessPlanSubmitted { plan: Some(plan(p)), actor: s.by.clone(), at: ts(s.at) },
            ),
            Self::ConflictDeclared { reason, stamp: s } => encoded(
                CONFLICT_DECLARED,
                &pb::ConflictOfInterestDeclared { reason: reason.clone(), actor: s.by.clone(), at: ts(s.at) },
            ),
            Self::Scored { scores: sc, weighted, comment, stamp: s } => encoded(
                SCORED,
                &pb::ApplicationScored {
                    scores: scores(sc),
                    weighted_score: count(*weighted),
                    comment: comment.clone(),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::Approved { amount, score, evaluators, reference, note, stamp: s } => encoded(
                GRANT_APPROVED,
                &pb::GrantApproved {
                    amount: Some(money(amount)),
                    score: count(*score),
                    evaluators: count(*evaluators),
                    minutes_reference: reference.clone(),
                    note: note.clone(),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::Rejected { reasons, score, reference, stamp: s } => encoded(
                APPLICATION_REJECTED,
                &pb::ApplicationRejected {
                    reasons: reasons.clone(),
                    score: count(*score),
                    minutes_reference: reference.clone(),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::ItemOrdered(i, s) => encoded(
                ITEM_ORDERED,
                &pb::ItemOrdered {
                    item_id: i.id.to_string(),
                    item: Some(procurement_item(i)),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::OrderCancelled { item, reason, stamp: s } => encoded(
                ORDER_CANCELLED,
                &pb::OrderCancelled {
                    item_id: item.to_string(),
                    reason: reason.clone(),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::ItemDelivered { item, on, reference, stamp: s } => encoded(
                ITEM_DELIVERED,
                &pb::ItemDelivered {
                    item_id: item.to_string(),
                    delivered_on: Some(date(*on)),
                    delivery_note_reference: reference.clone(),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::SupplierPaid { item, amount, on, reference, stamp: s } => encoded(
                SUPPLIER_PAID,
                &pb::SupplierPaid {
                    item_id: item.to_string(),
                    amount: Some(money(amount)),
                    paid_on: Some(date(*on)),
                    payment_reference: reference.clone(),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::HandedOver(h, s) => encoded(
                ITEMS_HANDED_OVER,
                &pb::ItemsHandedOver { handover: Some(handover(h)), actor: s.by.clone(), at: ts(s.at) },
            ),
            Self::Visited(v, s) => encoded(
                VISIT_RECORDED,
                &pb::MonitoringVisitRecorded { visit: Some(visit(v)), actor: s.by.clone(), at: ts(s.at) },
            ),
            Self::Closed { spent, unspent, note, stamp: s } => encoded(
                GRANT_CLOSED,
                &pb::GrantClosed {
                    spent: Some(money(spent)),
                    unspent: Some(money(unspent)),
                    note: note.clone(),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::GrantCancelled { released, reason, stamp: s } => encoded(
                GRANT_CANCELLED,
                &pb::GrantCancelled {
                    released: Some(money(released)),
                    reason: reason.clone(),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
        }
    }

    fn decode(e: &EncodedEvent) -> Result<Self, DecodeError> {
        use names::*;
        if let Some(t) = trainee_in(e)? {
            return Ok(match t {
                Trainee::Enrolled { session, seat, place, stamp } => Self::Enrolled { session, seat, place, stamp },
                Trainee::Unenrolled { session, reason, stamp } => Self::Unenrolled { session, reason, stamp },
                Trainee::Attendance { session, day, present, stamp } => {
                    Self::AttendanceRecorded { session, day, present, stamp }
                }
                Trainee::Completed { session, certificate, attended, of, stamp } => {
                    Self::TrainingCompleted { session, certificate, attended, of, stamp }
                }
                Trainee::NotCompleted { session, attended, of, stamp } => {
                    Self::TrainingNotCompleted { session, attended, of, stamp }
                }
            });
        }
        Ok(match e.type_name.as_str() {
            APPLICATION_RECEIVED => {
                let m: pb::ApplicationReceived = decoded(e)?;
                Self::Applied {
                    application: NewApplication {
                        id: id_in(e, "application_id", &m.application_id)?,
                        call: id_in(e, "call_id", &m.call_id)?,
                        person: id_in(e, "person_id", &m.person_id)?,
                        applied_on: date_in(e, "applied_on", m.applied_on.as_ref())?,
                    },
                    terms: grant_terms_in(e, m.terms.as_ref())?,
                    stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
                }
            }
            ELIGIBILITY_ASSESSED => {
                let m: pb::EligibilityAssessed = decoded(e)?;
                Self::EligibilityAssessed {
                    failed: failed_rule_in(e, &m)?,
                    on: date_in(e, "assessed_on", m.assessed_on.as_ref())?,
                    stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
                }
            }
            APPLICATION_WITHDRAWN => {
                let m: pb::ApplicationWithdrawn = decoded(e)?;
                Self::Withdrawn { stamp: stamp_in(e, &m.actor, m.at.as_ref())?, reason: m.reason }
            }
            PLAN_SUBMITTED => {
                let m: pb::BusinessPlanSubmitted = decoded(e)?;
                Self::PlanSubmitted(plan_in(e, m.plan.as_ref())?, stamp_in(e, &m.actor, m.at.as_ref())?)
            }
            CONFLICT_DECLARED => {
                let m: pb::ConflictOfInterestDeclared = decoded(e)?;
                Self::ConflictDeclared { stamp: stamp_in(e, &m.actor, m.at.as_ref())?, reason: m.reason }
            }
            SCORED => {
                let m: pb::ApplicationScored = decoded(e)?;
                if m.scores.is_empty() {
                    return Err(missing(e, "scores"));
                }
                Self::Scored {
                    scores: scores_in(e, &m.scores)?,
                    weighted: count_in(e, "weighted_score", m.weighted_score)?,
                    stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
                    comment: m.comment,
                }
            }
            GRANT_APPROVED => {
                let m: pb::GrantApproved = decoded(e)?;
                Self::Approved {
                    amount: money_in(e, "amount", m.amount.as_ref())?,
                    score: count_in(e, "score", m.score)?,
                    evaluators: count_in(e, "evaluators", m.evaluators)?,
                    stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
                    reference: m.minutes_reference,
                    note: m.note,
                }
            }
            APPLICATION_REJECTED => {
                let m: pb::ApplicationRejected = decoded(e)?;
                Self::Rejected {
                    score: count_in(e, "score", m.score)?,
                    stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
                    reasons: m.reasons,
                    reference: m.minutes_reference,
                }
            }
            ITEM_ORDERED => {
                let m: pb::ItemOrdered = decoded(e)?;
                let id = id_in(e, "item_id", &m.item_id)?;
                Self::ItemOrdered(item_in(e, id, m.item.as_ref())?, stamp_in(e, &m.actor, m.at.as_ref())?)
            }
            ORDER_CANCELLED => {
                let m: pb::OrderCancelled = decoded(e)?;
                Self::OrderCancelled {
                    item: id_in(e, "item_id", &m.item_id)?,
                    stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
                    reason: m.reason,
                }
            }
            ITEM_DELIVERED => {
                let m: pb::ItemDelivered = decoded(e)?;
                Self::ItemDelivered {
                    item: id_in(e, "item_id", &m.item_id)?,
                    on: date_in(e, "delivered_on", m.delivered_on.as_ref())?,
                    stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
                    reference: m.delivery_note_reference,
                }
            }
            SUPPLIER_PAID => {
                let m: pb::SupplierPaid = decoded(e)?;
                Self::SupplierPaid {
                    item: id_in(e, "item_id", &m.item_id)?,
                    amount: money_in(e, "amount", m.amount.as_ref())?,
                    on: date_in(e, "paid_on", m.paid_on.as_ref())?,
                    stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
                    reference: m.payment_reference,
                }
            }
            ITEMS_HANDED_OVER => {
                let m: pb::ItemsHandedOver = decoded(e)?;
                Self::HandedOver(handover_in(e, m.handover.as_ref())?, stamp_in(e, &m.actor, m.at.as_ref())?)
            }
            VISIT_RECORDED => {
                let m: pb::MonitoringVisitRecorded = decoded(e)?;
                Self::Visited(visit_in(e, m.visit.as_ref())?, stamp_in(e, &m.actor, m.at.as_ref())?)
            }
            GRANT_CLOSED => {
                let m: pb::GrantClosed = decoded(e)?;
                Self::Closed {
                    spent: money_in(e, "spent", m.spent.as_ref())?,
                    unspent: money_in(e, "unspent", m.unspent.as_ref())?,
                    stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
                    note: m.note,
                }
            }
            GRANT_CANCELLED => {
                let m: pb::GrantCancelled = decoded(e)?;
                Self::GrantCancelled {
                    released: money_in(e, "released", m.released.as_ref())?,
                    stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
                    reason: m.reason,
                }
            }
            _ => return Err(DecodeError::new(e, "not an application event")),
        })
    }
}

// ------------------------------------------------------------ courses and sessions

impl EventCodec for CourseEvent {
    fn encode(&self) -> EncodedEvent {
        use names::*;
        match self {
            Self::Created(c, s) => encoded(
                COURSE_CREATED,
                &pb::CourseCreated {
                    course_id: c.id.to_string(),
                    audience: audience(c.audience) as i32,
                    details: Some(course_details(&c.details)),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::Updated(d, s) => encoded(
                COURSE_UPDATED,
                &pb::CourseUpdated { details: Some(course_details(d)), actor: s.by.clone(), at: ts(s.at) },
            ),
            Self::Retired { reason, stamp: s } => encoded(
                COURSE_RETIRED,
                &pb::CourseRetired { reason: reason.clone(), actor: s.by.clone(), at: ts(s.at) },
            ),
        }
    }

    fn decode(e: &EncodedEvent) -> Result<Self, DecodeError> {
        use names::*;
        Ok(match e.type_name.as_str() {
            COURSE_CREATED => {
                let m: pb::CourseCreated = decoded(e)?;
                Self::Created(
                    NewCourse {
                        id: id_in(e, "course_id", &m.course_id)?,
                        audience: audience_in(e, m.audience)?,
                        details: course_details_in(e, m.details.as_ref())?,
                    },
                    stamp_in(e, &m.actor, m.at.as_ref())?,
                )
            }
            COURSE_UPDATED => {
                let m: pb::CourseUpdated = decoded(e)?;
                Self::Updated(course_details_in(e, m.details.as_ref())?, stamp_in(e, &m.actor, m.at.as_ref())?)
            }
            COURSE_RETIRED => {
                let m: pb::CourseRetired = decoded(e)?;
                Self::Retired { stamp: stamp_in(e, &m.actor, m.at.as_ref())?, reason: m.reason }
            }
            _ => return Err(DecodeError::new(e, "not a course event")),
        })
    }
}

impl EventCodec for SessionEvent {
    fn encode(&self) -> EncodedEvent {
        use names::*;
        match self {
            Self::Scheduled { session: n, audience: a, threshold_percent, stamp: s } => encoded(
                SESSION_SCHEDULED,
                &pb::SessionScheduled {
                    session_id: n.id.to_string(),
                    course_id: n.course.to_string(),
                    audience: audience(*a) as i32,
                    code: n.code.clone(),
                    capacity: count(n.capacity),
                    completion_threshold_percent: count(*threshold_percent),
                    details: Some(session_details(&n.details)),
                    actor: s.by.clone(),
                    at: ts(s.at),
                    own_threshold_percent: n.threshold_percent.map_or(0, count),
                },
            ),
            Self::Rescheduled(d, s) => encoded(
                SESSION_RESCHEDULED,
                &pb::SessionRescheduled { details: Some(session_details(d)), actor: s.by.clone(), at: ts(s.at) },
            ),
            Self::CapacityChanged(c, s) => encoded(
                SESSION_CAPACITY_CHANGED,
                &pb::SessionCapacityChanged { capacity: count(*c), actor: s.by.clone(), at: ts(s.at) },
            ),
            Self::Cancelled { reason, stamp: s } => encoded(
                SESSION_CANCELLED,
                &pb::SessionCancelled { reason: reason.clone(), actor: s.by.clone(), at: ts(s.at) },
            ),
        }
    }

    fn decode(e: &EncodedEvent) -> Result<Self, DecodeError> {
        use names::*;
        Ok(match e.type_name.as_str() {
            SESSION_SCHEDULED => {
                let m: pb::SessionScheduled = decoded(e)?;
                if m.code.is_empty() {
                    return Err(missing(e, "code"));
                }
                let own = count_in(e, "own_threshold_percent", m.own_threshold_percent)?;
                Self::Scheduled {
                    session: Box::new(NewSession {
                        id: id_in(e, "session_id", &m.session_id)?,
                        course: id_in(e, "course_id", &m.course_id)?,
                        code: m.code.clone(),
                        capacity: count_in(e, "capacity", m.capacity)?,
                        threshold_percent: (own != 0).then_some(own),
                        details: session_details_in(e, m.details.as_ref())?,
                    }),
                    audience: audience_in(e, m.audience)?,
                    threshold_percent: count_in(e, "completion_threshold_percent", m.completion_threshold_percent)?,
                    stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
                }
            }
            SESSION_RESCHEDULED => {
                let m: pb::SessionRescheduled = decoded(e)?;
                Self::Rescheduled(session_details_in(e, m.details.as_ref())?, stamp_in(e, &m.actor, m.at.as_ref())?)
            }
            SESSION_CAPACITY_CHANGED => {
                let m: pb::SessionCapacityChanged = decoded(e)?;
                Self::CapacityChanged(count_in(e, "capacity", m.capacity)?, stamp_in(e, &m.actor, m.at.as_ref())?)
            }
            SESSION_CANCELLED => {
                let m: pb::SessionCancelled = decoded(e)?;
                Self::Cancelled { stamp: stamp_in(e, &m.actor, m.at.as_ref())?, reason: m.reason }
            }
            _ => return Err(DecodeError::new(e, "not a session event")),
        })
    }
}

// ------------------------------------------------------------ support

impl EventCodec for SupportEvent {
    fn encode(&self) -> EncodedEvent {
        use names::*;
        match self {
            Self::Recorded { person, service, stamp: s } => encoded(
                SUPPORT_RECORDED,
                &pb::SupportServiceRecorded {
                    service: Some(support_service(*person, service)),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            Self::Retracted { service, reason, stamp: s } => encoded(
                SUPPORT_RETRACTED,
                &pb::SupportServiceRetracted {
                    service_id: service.to_string(),
                    reason: reason.clone(),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
        }
    }

    fn decode(e: &EncodedEvent) -> Result<Self, DecodeError> {
        use names::*;
        Ok(match e.type_name.as_str() {
            SUPPORT_RECORDED => {
                let m: pb::SupportServiceRecorded = decoded(e)?;
                let (person, service) = support_service_in(e, m.service.as_ref())?;
                Self::Recorded { person, service, stamp: stamp_in(e, &m.actor, m.at.as_ref())? }
            }
            SUPPORT_RETRACTED => {
                let m: pb::SupportServiceRetracted = decoded(e)?;
                Self::Retracted {
                    service: id_in(e, "service_id", &m.service_id)?,
                    stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
                    reason: m.reason,
                }
            }
            _ => return Err(DecodeError::new(e, "not a support event")),
        })
    }
}

// ------------------------------------------------------------ officials

/// The sealing scheme written: AES-256-GCM, random 96-bit nonce (see
/// `acasa-vault`).
const SCHEME: u32 = 1;

/// The field of the official's events that holds the sealed
/// `OfficialPersonal`.
const PERSONAL: &str = "personal";

/// The associated data of an official's sealed field:
/// `"<official id>|<event type name>|<field name>"`.
pub fn official_aad(official: Uuid, type_name: &str, field: &str) -> Vec<u8> {
    format!("{official}|{type_name}|{field}").into_bytes()
}

/// Encodes and decodes one official's events, sealing their personal data
/// (name, sex, role, contacts) with their own data key.
///
/// With the key it seals on encode and opens on decode. Without it (the
/// key was destroyed by erasure, or never made) registering or updating
/// cannot be written, and the sealed payloads read back shredded: empty
/// names, role and contacts, no sex — the organisation, district, kind and
/// the training record stay.
pub struct OfficialCodec {
    official: Uuid,
    key: Option<DataKey>,
}

impl std::fmt::Debug for OfficialCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfficialCodec").field("official", &self.official).field("has_key", &self.key.is_some()).finish()
    }
}

impl OfficialCodec {
    /// The codec of `official`, with its data key if it still exists.
    pub fn new(official: Uuid, key: Option<DataKey>) -> Self {
        Self { official, key }
    }

    fn seal(&self, type_name: &str, d: &OfficialDetails) -> Result<pb::Sealed, EncodeError> {
        let key = self.key.as_ref().ok_or_else(|| {
            EncodeError(format!("{type_name}.{PERSONAL}: the official's data key is gone (never written in clear)"))
        })?;
        let personal = pb::OfficialPersonal {
            given_name: d.given_name.clone(),
            family_name: d.family_name.clone(),
            sex: d.sex.map_or(registry::Sex::Unspecified, sex) as i32,
            role: d.role.clone(),
            email: d.email.clone(),
            phone: d.phone.clone(),
        };
        let ciphertext = key
            .seal(&official_aad(self.official, type_name, PERSONAL), &personal.encode_to_vec())
            .map_err(|err| EncodeError(format!("sealing {type_name}.{PERSONAL}: {err}")))?;
        Ok(pb::Sealed { scheme: SCHEME, ciphertext })
    }

    /// The official's personal data of `e`'s sealed field (the default,
    /// empty, when shredded).
    fn open(&self, e: &EncodedEvent, sealed: Option<&pb::Sealed>) -> Result<pb::OfficialPersonal, DecodeError> {
        let sealed = sealed.ok_or_else(|| missing(e, PERSONAL))?;
        if sealed.scheme != SCHEME {
            return Err(DecodeError::new(e, format!("{PERSONAL}: unknown sealing scheme {}", sealed.scheme)));
        }
        let Some(key) = &self.key else { return Ok(pb::OfficialPersonal::default()) };
        let plain = key
            .open(&official_aad(self.official, &e.type_name, PERSONAL), &sealed.ciphertext)
            .map_err(|_| DecodeError::new(e, format!("{PERSONAL} does not open with the official's key")))?;
        pb::OfficialPersonal::decode(plain.as_slice()).map_err(|err| DecodeError::new(e, format!("{PERSONAL}: {err}")))
    }

    fn details_in(
        &self,
        e: &EncodedEvent,
        kind: i32,
        organisation: String,
        district: String,
        sealed: Option<&pb::Sealed>,
    ) -> Result<OfficialDetails, DecodeError> {
        let kind = official_kind_of(kind).ok_or_else(|| DecodeError::new(e, "kind is unknown"))?;
        let p = self.open(e, sealed)?;
        Ok(OfficialDetails {
            kind,
            given_name: p.given_name,
            family_name: p.family_name,
            sex: sex_of(p.sex),
            organisation,
            role: p.role,
            district,
            email: p.email,
            phone: p.phone,
        })
    }
}

impl Codec<OfficialEvent> for OfficialCodec {
    fn encode(&self, event: &OfficialEvent) -> Result<EncodedEvent, EncodeError> {
        use OfficialEvent as E;
        use names::*;
        Ok(match event {
            E::Registered { id, details: d, stamp: s } => {
                if *id != self.official {
                    return Err(EncodeError(format!("official {id} encoded with the codec of {}", self.official)));
                }
                encoded(
                    OFFICIAL_REGISTERED,
                    &pb::OfficialRegistered {
                        official_id: id.to_string(),
                        kind: official_kind(d.kind) as i32,
                        organisation: d.organisation.clone(),
                        district: d.district.clone(),
                        personal: Some(self.seal(OFFICIAL_REGISTERED, d)?),
                        actor: s.by.clone(),
                        at: ts(s.at),
                    },
                )
            }
            E::Updated(d, s) => encoded(
                OFFICIAL_UPDATED,
                &pb::OfficialUpdated {
                    kind: official_kind(d.kind) as i32,
                    organisation: d.organisation.clone(),
                    district: d.district.clone(),
                    personal: Some(self.seal(OFFICIAL_UPDATED, d)?),
                    actor: s.by.clone(),
                    at: ts(s.at),
                },
            ),
            E::Erased { reason, stamp: s } => encoded(
                OFFICIAL_ERASED,
                &pb::OfficialErased { reason: reason.clone(), actor: s.by.clone(), at: ts(s.at) },
            ),
            E::Enrolled { session, seat, stamp } => enrolled(*session, *seat, None, stamp),
            E::Unenrolled { session, reason, stamp } => unenrolled(*session, reason, stamp),
            E::AttendanceRecorded { session, day, present, stamp } => attendance(*session, *day, *present, stamp),
            E::TrainingCompleted { session, certificate, attended, of, stamp } => {
                completed(*session, certificate, *attended, *of, stamp)
            }
            E::TrainingNotCompleted { session, attended, of, stamp } => not_completed(*session, *attended, *of, stamp),
        })
    }

    fn decode(&self, e: &EncodedEvent) -> Result<OfficialEvent, DecodeError> {
        use OfficialEvent as E;
        use names::*;
        if let Some(t) = trainee_in(e)? {
            return Ok(match t {
                Trainee::Enrolled { place: Some(_), .. } => {
                    return Err(DecodeError::new(e, "call_place is set on an official's enrolment"));
                }
                Trainee::Enrolled { session, seat, place: None, stamp } => E::Enrolled { session, seat, stamp },
                Trainee::Unenrolled { session, reason, stamp } => E::Unenrolled { session, reason, stamp },
                Trainee::Attendance { session, day, present, stamp } => {
                    E::AttendanceRecorded { session, day, present, stamp }
                }
                Trainee::Completed { session, certificate, attended, of, stamp } => {
                    E::TrainingCompleted { session, certificate, attended, of, stamp }
                }
                Trainee::NotCompleted { session, attended, of, stamp } => {
                    E::TrainingNotCompleted { session, attended, of, stamp }
                }
            });
        }
        Ok(match e.type_name.as_str() {
            OFFICIAL_REGISTERED => {
                let m: pb::OfficialRegistered = decoded(e)?;
                let id = id_in(e, "official_id", &m.official_id)?;
                if id != self.official {
                    return Err(DecodeError::new(e, "official_id is not the codec's official"));
                }
                E::Registered {
                    id,
                    details: self.details_in(e, m.kind, m.organisation, m.district, m.personal.as_ref())?,
                    stamp: stamp_in(e, &m.actor, m.at.as_ref())?,
                }
            }
            OFFICIAL_UPDATED => {
                let m: pb::OfficialUpdated = decoded(e)?;
                E::Updated(
                    self.details_in(e, m.kind, m.organisation, m.district, m.personal.as_ref())?,
                    stamp_in(e, &m.actor, m.at.as_ref())?,
                )
            }
            OFFICIAL_ERASED => {
                let m: pb::OfficialErased = decoded(e)?;
                E::Erased { stamp: stamp_in(e, &m.actor, m.at.as_ref())?, reason: m.reason }
            }
            _ => return Err(DecodeError::new(e, "not an official event")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{at, by, d, eur, new_call, stamp};

    fn round_trip<E: EventCodec + PartialEq + std::fmt::Debug>(e: E) {
        let stored = e.encode();
        assert_eq!(E::decode(&stored).unwrap(), e, "{}", stored.type_name);
    }

    fn stored(type_name: &str, m: &impl Message) -> EncodedEvent {
        encoded(type_name, m)
    }

    fn reason<E: EventCodec + std::fmt::Debug>(e: &EncodedEvent) -> String {
        E::decode(e).unwrap_err().reason
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn details(sex: Option<Sex>) -> OfficialDetails {
        OfficialDetails {
            kind: OfficialKind::SmeSupportStaff,
            given_name: "Ion".into(),
            family_name: "Rusu".into(),
            sex,
            organisation: "ODIMM".into(),
            role: "advisor".into(),
            district: "Cahul".into(),
            email: "ion@example.md".into(),
            phone: "+37360000000".into(),
        }
    }

    fn official_events(official: Uuid) -> Vec<OfficialEvent> {
        let session = id(0x5e55);
        vec![
            OfficialEvent::Registered { id: official, details: details(Some(Sex::Male)), stamp: stamp() },
            OfficialEvent::Updated(details(None), stamp()),
            OfficialEvent::Updated(
                OfficialDetails { kind: OfficialKind::LocalOfficial, ..details(Some(Sex::Female)) },
                stamp(),
            ),
            OfficialEvent::Enrolled { session, seat: 3, stamp: stamp() },
            OfficialEvent::Unenrolled { session, reason: "moved".into(), stamp: stamp() },
            OfficialEvent::AttendanceRecorded { session, day: d(2027, 5, 3), present: true, stamp: stamp() },
            OfficialEvent::AttendanceRecorded { session, day: d(2027, 5, 4), present: false, stamp: stamp() },
            OfficialEvent::TrainingCompleted {
                session,
                certificate: "ANTR-2027-03-003".into(),
                attended: 4,
                of: 5,
                stamp: stamp(),
            },
            OfficialEvent::TrainingNotCompleted { session, attended: 2, of: 5, stamp: stamp() },
            OfficialEvent::Erased { reason: "request 12".into(), stamp: stamp() },
        ]
    }

    #[test]
    fn every_call_event_survives_the_log() {
        let mut call = new_call();
        round_trip(CallEvent::Opened(Box::new(call.clone()), stamp()));
        call.eligibility = Rules {
            age: None,
            sexes: vec![Sex::Female, Sex::Male],
            rural_only: true,
            categories: vec![
                Category::MigrantAbroad,
                Category::Returnee,
                Category::OverseasGraduate,
                Category::DiasporaScientist,
            ],
        };
        call.districts = Vec::new();
        round_trip(CallEvent::Opened(Box::new(call), by("admin")));
        round_trip(CallEvent::Closed { reason: "done".into(), stamp: stamp() });
        round_trip(CallEvent::BudgetChanged { budget: eur(600_000), reason: "donor".into(), stamp: stamp() });
        round_trip(CallEvent::Committed { application: id(1), amount: eur(150_000), stamp: stamp() });
        round_trip(CallEvent::Released {
            application: id(1),
            amount: eur(50_000),
            reason: "cancelled".into(),
            stamp: stamp(),
        });
    }

    #[test]
    fn every_application_event_survives_the_log() {
        let session = id(0x5e55);
        let item = Item {
            id: id(0x17e),
            description: "oven".into(),
            supplier: Supplier { name: "Furnal SRL".into(), idno: Some("1003600012345".into()) },
            quantity: 2,
            unit_price: eur(40_000),
        };
        let plan = Plan {
            sector: "C".into(),
            summary: "a bakery".into(),
            requested: eur(150_000),
            items: vec![
                PlanItem { description: "oven".into(), quantity: 2, unit_price: eur(40_000) },
                PlanItem { description: "van".into(), quantity: 1, unit_price: eur(70_000) },
            ],
        };
        let events = vec![
            ApplicationEvent::Applied {
                application: NewApplication { id: id(1), call: id(0xca11), person: id(2), applied_on: d(2027, 2, 3) },
                terms: GrantTerms::of(&new_call()),
                stamp: stamp(),
            },
            ApplicationEvent::EligibilityAssessed { failed: None, on: d(2027, 2, 3), stamp: stamp() },
            ApplicationEvent::Withdrawn { reason: "moved".into(), stamp: stamp() },
            ApplicationEvent::Enrolled { session, seat: 17, place: Some(4), stamp: stamp() },
            ApplicationEvent::Enrolled { session, seat: 1, place: None, stamp: stamp() },
            ApplicationEvent::Unenrolled { session, reason: "ill".into(), stamp: stamp() },
            ApplicationEvent::AttendanceRecorded { session, day: d(2027, 5, 3), present: true, stamp: stamp() },
            ApplicationEvent::AttendanceRecorded { session, day: d(2027, 5, 4), present: false, stamp: stamp() },
            ApplicationEvent::TrainingCompleted {
                session,
                certificate: "ANTR-2027-03-017".into(),
                attended: 5,
                of: 5,
                stamp: stamp(),
            },
            ApplicationEvent::TrainingNotCompleted { session, attended: 1, of: 5, stamp: stamp() },
            ApplicationEvent::PlanSubmitted(plan.clone(), stamp()),
            ApplicationEvent::PlanSubmitted(Plan { items: Vec::new(), ..plan }, stamp()),
            ApplicationEvent::ConflictDeclared { reason: "cousin".into(), stamp: by("evaluator-2") },
            ApplicationEvent::Scored {
                scores: [("viability".to_owned(), 8), ("jobs".to_owned(), 6)].into(),
                weighted: 750,
                comment: "solid".into(),
                stamp: by("evaluator-1"),
            },
            ApplicationEvent::Approved {
                amount: eur(150_000),
                score: 736,
                evaluators: 2,
                reference: "minutes 4/2027".into(),
                note: "n".into(),
                stamp: stamp(),
            },
            ApplicationEvent::Rejected {
                reasons: "weak".into(),
                score: 412,
                reference: "minutes 4/2027".into(),
                stamp: stamp(),
            },
            ApplicationEvent::ItemOrdered(item.clone(), stamp()),
            ApplicationEvent::ItemOrdered(
                Item { supplier: Supplier { name: "Abroad Ltd".into(), idno: None }, ..item },
                stamp(),
            ),
            ApplicationEvent::OrderCancelled { item: id(0x17e), reason: "late".into(), stamp: stamp() },
            ApplicationEvent::ItemDelivered {
                item: id(0x17e),
                on: d(2027, 7, 1),
                reference: "DN-1".into(),
                stamp: stamp(),
            },
            ApplicationEvent::SupplierPaid {
                item: id(0x17e),
                amount: eur(80_000),
                on: d(2027, 7, 2),
                reference: "P-1".into(),
                stamp: stamp(),
            },
            ApplicationEvent::HandedOver(
                Handover {
                    reference: "H-1".into(),
                    items: vec![id(0x17e), id(0x17f)],
                    on: d(2027, 7, 3),
                    location: "Cahul".into(),
                    note: String::new(),
                },
                stamp(),
            ),
            ApplicationEvent::Visited(
                Visit {
                    on: d(2027, 10, 1),
                    officer: "officer-1".into(),
                    operating: true,
                    jobs_created: 3,
                    findings: "fine".into(),
                },
                stamp(),
            ),
            ApplicationEvent::Visited(
                Visit {
                    on: d(2027, 11, 1),
                    officer: "o".into(),
                    operating: false,
                    jobs_created: 0,
                    findings: String::new(),
                },
                stamp(),
            ),
            ApplicationEvent::Closed { spent: eur(80_000), unspent: eur(70_000), note: "ok".into(), stamp: stamp() },
            ApplicationEvent::GrantCancelled { released: eur(150_000), reason: "fraud".into(), stamp: stamp() },
        ];
        for e in events {
            round_trip(e);
        }
        for rule in [
            Rule::PersonUnknown,
            Rule::PersonErased,
            Rule::PersonMerged(id(9)),
            Rule::ProgrammeConsent,
            Rule::Age,
            Rule::Sex,
            Rule::Rural,
            Rule::Category,
            Rule::District,
        ] {
            round_trip(ApplicationEvent::EligibilityAssessed { failed: Some(rule), on: d(2027, 2, 3), stamp: stamp() });
        }
    }

    #[test]
    fn every_training_event_survives_the_log() {
        let details = CourseDetails {
            title: "Starting a business".into(),
            topics: vec!["finance".into(), "marketing".into()],
            language: "ro".into(),
            hours: 40,
            threshold_percent: 80,
        };
        for audience in [Audience::Entrepreneurs, Audience::Officials] {
            round_trip(CourseEvent::Created(NewCourse { id: id(0xc0), audience, details: details.clone() }, stamp()));
        }
        round_trip(CourseEvent::Updated(details, stamp()));
        round_trip(CourseEvent::Retired { reason: "old".into(), stamp: stamp() });
        let sd = SessionDetails {
            days: (3..=7).map(|day| d(2027, 5, day)).collect(),
            venue: "Town hall".into(),
            district: "Cahul".into(),
            trainer: "A. Trainer (ODIMM)".into(),
        };
        for (own, threshold, audience) in [(None, 80, Audience::Entrepreneurs), (Some(60), 60, Audience::Officials)] {
            round_trip(SessionEvent::Scheduled {
                session: Box::new(NewSession {
                    id: id(0x5e55),
                    course: id(0xc0),
                    code: "ANTR-2027-03".into(),
                    capacity: 20,
                    threshold_percent: own,
                    details: sd.clone(),
                }),
                audience,
                threshold_percent: threshold,
                stamp: stamp(),
            });
        }
        round_trip(SessionEvent::Rescheduled(sd, stamp()));
        round_trip(SessionEvent::CapacityChanged(25, stamp()));
        round_trip(SessionEvent::Cancelled { reason: "trainer ill".into(), stamp: stamp() });
    }

    #[test]
    fn every_support_event_survives_the_log() {
        let kinds = [
            SupportKind::BusinessPlanning,
            SupportKind::Accounting,
            SupportKind::Taxation,
            SupportKind::Licensing,
            SupportKind::QualityStandards,
            SupportKind::Loans,
            SupportKind::FinancialLiteracy,
        ];
        let providers =
            [Provider::Staff("caseworker-1".into()), Provider::Partner(id(0xba)), Provider::Other("bank".into())];
        for (i, kind) in kinds.into_iter().enumerate() {
            round_trip(SupportEvent::Recorded {
                person: id(2),
                service: Service {
                    id: id(0x5e00 + i as u128),
                    kind,
                    provider: providers[i % 3].clone(),
                    delivered_on: d(2027, 8, 1),
                    note: "n".into(),
                    source: if i % 2 == 0 { Source::Recorded } else { Source::Referral(id(0x4ef)) },
                },
                stamp: stamp(),
            });
        }
        round_trip(SupportEvent::Retracted { service: id(0x5e00), reason: "mistake".into(), stamp: stamp() });
    }

    #[test]
    fn every_official_event_survives_the_log_sealed() {
        let official = id(0x0ff);
        let codec = OfficialCodec::new(official, Some(DataKey::generate()));
        for e in official_events(official) {
            let stored = codec.encode(&e).unwrap();
            assert_eq!(codec.decode(&stored).unwrap(), e, "{}", stored.type_name);
        }
    }

    #[test]
    fn an_officials_personal_data_is_never_in_clear() {
        let official = id(0x0ff);
        let codec = OfficialCodec::new(official, Some(DataKey::generate()));
        for e in &official_events(official)[..3] {
            let stored = codec.encode(e).unwrap();
            for needle in ["Ion", "Rusu", "advisor", "ion@example.md", "+37360000000"] {
                assert!(!stored.data.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle} in clear");
            }
            // The organisation and district are not personal: readable.
            assert!(stored.data.windows(5).any(|w| w == b"ODIMM"));
        }
        // Without the key nothing personal can be written.
        let keyless = OfficialCodec::new(official, None);
        for e in &official_events(official)[..3] {
            assert!(keyless.encode(e).unwrap_err().0.contains("key is gone"));
        }
        // Another official's codec writes and reads nothing of this one's.
        let other = OfficialCodec::new(id(0x0fe), Some(DataKey::generate()));
        assert!(other.encode(&official_events(official)[0]).is_err());
        let stored = codec.encode(&official_events(official)[1]).unwrap();
        assert!(other.decode(&stored).unwrap_err().reason.contains("does not open"));
        // Sealed for one event type, it does not open as another.
        let moved = EncodedEvent { type_name: names::OFFICIAL_REGISTERED.into(), ..stored.clone() };
        assert!(codec.decode(&moved).is_err());
        assert!(format!("{codec:?}").contains("has_key: true"));
    }

    #[test]
    fn a_sealed_field_opens_only_for_its_official_event_and_field() {
        let official = id(0x0ff);
        assert_eq!(
            official_aad(official, names::OFFICIAL_UPDATED, PERSONAL),
            format!("{official}|acasa.grants.v1.OfficialUpdated|personal").into_bytes()
        );
        let key = DataKey::generate();
        let codec = OfficialCodec::new(official, Some(key.clone()));
        let stored = codec.encode(&OfficialEvent::Updated(details(None), stamp())).unwrap();
        // The same key, another official: the associated data differs.
        let same_key = OfficialCodec::new(id(0x0fe), Some(key.clone()));
        assert!(same_key.decode(&stored).unwrap_err().reason.contains("does not open"));
        // Sealed under an associated data of another event type or field.
        let m = pb::OfficialUpdated::decode(stored.data.as_slice()).unwrap();
        let plain = pb::OfficialPersonal { given_name: "Ion".into(), ..Default::default() }.encode_to_vec();
        for aad in [
            official_aad(official, names::OFFICIAL_REGISTERED, PERSONAL),
            official_aad(official, names::OFFICIAL_UPDATED, "details"),
        ] {
            let sealed = pb::Sealed { scheme: SCHEME, ciphertext: key.seal(&aad, &plain).unwrap() };
            let e = encoded(names::OFFICIAL_UPDATED, &pb::OfficialUpdated { personal: Some(sealed), ..m.clone() });
            assert!(codec.decode(&e).unwrap_err().reason.contains("does not open"));
        }
        let right = official_aad(official, names::OFFICIAL_UPDATED, PERSONAL);
        let sealed = pb::Sealed { scheme: SCHEME, ciphertext: key.seal(&right, &plain).unwrap() };
        let e = encoded(names::OFFICIAL_UPDATED, &pb::OfficialUpdated { personal: Some(sealed), ..m });
        let OfficialEvent::Updated(d, _) = codec.decode(&e).unwrap() else { panic!("not updated") };
        assert_eq!(d.given_name, "Ion");
    }

    #[test]
    fn an_erased_officials_details_read_back_shredded() {
        let official = id(0x0ff);
        let key = DataKey::generate();
        let codec = OfficialCodec::new(official, Some(key));
        let shredded = OfficialCodec::new(official, None);
        let stored = codec.encode(&official_events(official)[0]).unwrap();
        let OfficialEvent::Registered { id: got, details: d, stamp: s } = shredded.decode(&stored).unwrap() else {
            panic!("not registered")
        };
        assert_eq!((got, s), (official, stamp()));
        assert_eq!(
            d,
            OfficialDetails {
                kind: OfficialKind::SmeSupportStaff,
                given_name: String::new(),
                family_name: String::new(),
                sex: None,
                organisation: "ODIMM".into(),
                role: String::new(),
                district: "Cahul".into(),
                email: String::new(),
                phone: String::new(),
            }
        );
        // The training record and the erasure need no key.
        for e in &official_events(official)[3..] {
            assert_eq!(&shredded.decode(&shredded.encode(e).unwrap()).unwrap(), e);
        }
        assert!(format!("{shredded:?}").contains("has_key: false"));
    }

    #[test]
    fn events_that_do_not_decode_are_named_not_guessed() {
        // A schema version this code does not know.
        let mut e = CallEvent::Closed { reason: "r".into(), stamp: stamp() }.encode();
        e.schema_version = 2;
        assert!(reason::<CallEvent>(&e).contains("schema version 2"));
        // Bytes that are not the message.
        let e = EncodedEvent {
            data: vec![0xff, 0xff, 0xff],
            ..CallEvent::Closed { reason: "r".into(), stamp: stamp() }.encode()
        };
        assert!(CallEvent::decode(&e).is_err());
        // Missing fields, named.
        let at = ts(at());
        let a = || "caseworker-1".to_owned();
        let cases: Vec<(EncodedEvent, &str)> = vec![
            (stored(names::CALL_CLOSED, &pb::CallClosed { reason: "r".into(), actor: a(), at: None }), "at is missing"),
            (
                stored(names::CALL_CLOSED, &pb::CallClosed { reason: "r".into(), actor: String::new(), at }),
                "actor is missing",
            ),
            (
                stored(
                    names::CALL_BUDGET_CHANGED,
                    &pb::CallBudgetChanged { budget: None, reason: "r".into(), actor: a(), at },
                ),
                "budget is missing",
            ),
            (
                stored(
                    names::CALL_BUDGET_CHANGED,
                    &pb::CallBudgetChanged {
                        budget: Some(PbMoney { amount_minor: 1, currency: String::new() }),
                        reason: "r".into(),
                        actor: a(),
                        at,
                    },
                ),
                "budget has no currency",
            ),
            (
                stored(
                    names::BUDGET_COMMITTED,
                    &pb::BudgetCommitted {
                        application_id: String::new(),
                        amount: Some(money(&eur(1))),
                        actor: a(),
                        at,
                    },
                ),
                "application_id is missing",
            ),
            (
                stored(
                    names::BUDGET_COMMITTED,
                    &pb::BudgetCommitted { application_id: "x".into(), amount: Some(money(&eur(1))), actor: a(), at },
                ),
                "application_id is not a UUID",
            ),
            (
                stored(names::CALL_OPENED, &pb::CallOpened { call_id: id(1).to_string(), terms: None, actor: a(), at }),
                "terms is missing",
            ),
        ];
        for (e, why) in cases {
            assert!(reason::<CallEvent>(&e).contains(why), "{why}: {}", reason::<CallEvent>(&e));
        }
        let mut terms = call_terms(&new_call());
        terms.opens_on = Some(Date { year: 2027, month: 2, day: 30 });
        let e = stored(
            names::CALL_OPENED,
            &pb::CallOpened { call_id: id(1).to_string(), terms: Some(terms), actor: a(), at },
        );
        assert!(reason::<CallEvent>(&e).contains("terms.opens_on is not a date"));
        let mut terms = call_terms(&new_call());
        terms.training_places = -1;
        let e = stored(
            names::CALL_OPENED,
            &pb::CallOpened { call_id: id(1).to_string(), terms: Some(terms), actor: a(), at },
        );
        assert!(reason::<CallEvent>(&e).contains("terms.training_places is negative"));
        let mut terms = call_terms(&new_call());
        terms.eligibility.as_mut().unwrap().categories.push(0);
        let e = stored(
            names::CALL_OPENED,
            &pb::CallOpened { call_id: id(1).to_string(), terms: Some(terms), actor: a(), at },
        );
        assert!(reason::<CallEvent>(&e).contains("category is unknown"));
        let mut terms = call_terms(&new_call());
        terms.eligibility.as_mut().unwrap().sexes.push(0);
        let e = stored(
            names::CALL_OPENED,
            &pb::CallOpened { call_id: id(1).to_string(), terms: Some(terms), actor: a(), at },
        );
        assert!(reason::<CallEvent>(&e).contains("sex is unknown"));
        let mut terms = call_terms(&new_call());
        terms.evaluation.as_mut().unwrap().criteria.clear();
        let e = stored(
            names::CALL_OPENED,
            &pb::CallOpened { call_id: id(1).to_string(), terms: Some(terms), actor: a(), at },
        );
        assert!(reason::<CallEvent>(&e).contains("evaluation.criteria is missing"));

        let e = stored(
            names::ELIGIBILITY_ASSESSED,
            &pb::EligibilityAssessed {
                eligible: false,
                assessed_on: Some(date(d(2027, 2, 3))),
                actor: a(),
                at,
                ..Default::default()
            },
        );
        assert!(reason::<ApplicationEvent>(&e).contains("failed_rule is missing"));
        let e = stored(
            names::ELIGIBILITY_ASSESSED,
            &pb::EligibilityAssessed {
                eligible: true,
                failed_rule: "AGE".into(),
                assessed_on: Some(date(d(2027, 2, 3))),
                actor: a(),
                at,
                ..Default::default()
            },
        );
        assert!(reason::<ApplicationEvent>(&e).contains("failed_rule is set"));
        let e = stored(
            names::ELIGIBILITY_ASSESSED,
            &pb::EligibilityAssessed {
                eligible: false,
                failed_rule: "HEIGHT".into(),
                assessed_on: Some(date(d(2027, 2, 3))),
                actor: a(),
                at,
                ..Default::default()
            },
        );
        assert!(reason::<ApplicationEvent>(&e).contains("HEIGHT is unknown"));
        let e = stored(
            names::ELIGIBILITY_ASSESSED,
            &pb::EligibilityAssessed {
                eligible: false,
                failed_rule: "PERSON_MERGED".into(),
                assessed_on: Some(date(d(2027, 2, 3))),
                actor: a(),
                at,
                ..Default::default()
            },
        );
        assert!(reason::<ApplicationEvent>(&e).contains("merged_into is missing"));
        let e = stored(
            names::SCORED,
            &pb::ApplicationScored { scores: Vec::new(), weighted_score: 1, comment: String::new(), actor: a(), at },
        );
        assert!(reason::<ApplicationEvent>(&e).contains("scores is missing"));
        let twice = vec![
            pb::CriterionScore { key: "jobs".into(), score: 1 },
            pb::CriterionScore { key: "jobs".into(), score: 2 },
        ];
        let e = stored(
            names::SCORED,
            &pb::ApplicationScored { scores: twice, weighted_score: 1, comment: String::new(), actor: a(), at },
        );
        assert!(reason::<ApplicationEvent>(&e).contains("jobs is scored twice"));
        let e = stored(
            names::TRAINING_COMPLETED,
            &pb::TrainingCompleted {
                session_id: id(5).to_string(),
                certificate_number: String::new(),
                days_attended: 5,
                session_days: 5,
                actor: a(),
                at,
            },
        );
        assert!(reason::<ApplicationEvent>(&e).contains("certificate_number is missing"));
        let e = stored(
            names::TRAINEE_ENROLLED,
            &pb::TraineeEnrolled { session_id: id(5).to_string(), seat: -1, call_place: 0, actor: a(), at },
        );
        assert!(reason::<ApplicationEvent>(&e).contains("seat is negative"));
        let e = stored(
            names::ITEM_ORDERED,
            &pb::ItemOrdered {
                item_id: id(5).to_string(),
                item: Some(pb::ProcurementItem {
                    supplier: None,
                    ..procurement_item(&Item {
                        id: id(5),
                        description: "d".into(),
                        supplier: Supplier { name: "s".into(), idno: None },
                        quantity: 1,
                        unit_price: eur(1),
                    })
                }),
                actor: a(),
                at,
            },
        );
        assert!(reason::<ApplicationEvent>(&e).contains("item.supplier is missing"));
        let e = stored(
            names::ITEMS_HANDED_OVER,
            &pb::ItemsHandedOver {
                handover: Some(pb::Handover {
                    item_ids: vec!["nope".into()],
                    handed_over_on: Some(date(d(2027, 1, 1))),
                    ..Default::default()
                }),
                actor: a(),
                at,
            },
        );
        assert!(reason::<ApplicationEvent>(&e).contains("handover.item_ids is not a UUID"));
        let e = stored(names::VISIT_RECORDED, &pb::MonitoringVisitRecorded { visit: None, actor: a(), at });
        assert!(reason::<ApplicationEvent>(&e).contains("visit is missing"));
        let e = stored(
            names::GRANT_CLOSED,
            &pb::GrantClosed { spent: Some(money(&eur(1))), unspent: None, note: String::new(), actor: a(), at },
        );
        assert!(reason::<ApplicationEvent>(&e).contains("unspent is missing"));

        let e = stored(
            names::COURSE_CREATED,
            &pb::CourseCreated {
                course_id: id(1).to_string(),
                audience: 0,
                details: Some(pb::CourseDetails::default()),
                actor: a(),
                at,
            },
        );
        assert!(reason::<CourseEvent>(&e).contains("audience is unknown"));
        let e = stored(
            names::SESSION_SCHEDULED,
            &pb::SessionScheduled {
                session_id: id(1).to_string(),
                course_id: id(2).to_string(),
                audience: 1,
                code: String::new(),
                capacity: 1,
                details: Some(pb::SessionDetails::default()),
                actor: a(),
                at,
                ..Default::default()
            },
        );
        assert!(reason::<SessionEvent>(&e).contains("code is missing"));
        let e = stored(
            names::SESSION_RESCHEDULED,
            &pb::SessionRescheduled {
                details: Some(pb::SessionDetails { days: vec![Date::default()], ..Default::default() }),
                actor: a(),
                at,
            },
        );
        assert!(reason::<SessionEvent>(&e).contains("details.days is not a date"));
        let e = stored(
            names::SUPPORT_RECORDED,
            &pb::SupportServiceRecorded {
                service: Some(pb::SupportService {
                    provider: None,
                    ..support_service(
                        id(2),
                        &Service {
                            id: id(3),
                            kind: SupportKind::Loans,
                            provider: Provider::Other("b".into()),
                            delivered_on: d(2027, 1, 1),
                            note: String::new(),
                            source: Source::Recorded,
                        },
                    )
                }),
                actor: a(),
                at,
            },
        );
        assert!(reason::<SupportEvent>(&e).contains("service.provider is missing"));
        let e = stored(
            names::SUPPORT_RECORDED,
            &pb::SupportServiceRecorded {
                service: Some(pb::SupportService {
                    kind: 0,
                    ..support_service(
                        id(2),
                        &Service {
                            id: id(3),
                            kind: SupportKind::Loans,
                            provider: Provider::Other("b".into()),
                            delivered_on: d(2027, 1, 1),
                            note: String::new(),
                            source: Source::Recorded,
                        },
                    )
                }),
                actor: a(),
                at,
            },
        );
        assert!(reason::<SupportEvent>(&e).contains("service.kind is unknown"));

        // Officials: the sealed field, its scheme, the kind, a call place.
        let codec = OfficialCodec::new(id(0x0ff), Some(DataKey::generate()));
        let e = stored(
            names::OFFICIAL_UPDATED,
            &pb::OfficialUpdated { kind: 1, personal: None, actor: a(), at, ..Default::default() },
        );
        assert!(codec.decode(&e).unwrap_err().reason.contains("personal is missing"));
        let e = stored(
            names::OFFICIAL_UPDATED,
            &pb::OfficialUpdated {
                kind: 1,
                personal: Some(pb::Sealed { scheme: 2, ciphertext: Vec::new() }),
                actor: a(),
                at,
                ..Default::default()
            },
        );
        assert!(codec.decode(&e).unwrap_err().reason.contains("unknown sealing scheme 2"));
        assert!(
            OfficialCodec::new(id(0x0ff), None).decode(&e).unwrap_err().reason.contains("unknown sealing scheme 2")
        );
        let mut e = codec.encode(&OfficialEvent::Updated(details(None), stamp())).unwrap();
        let mut m = pb::OfficialUpdated::decode(e.data.as_slice()).unwrap();
        m.kind = 0;
        e.data = m.encode_to_vec();
        assert!(codec.decode(&e).unwrap_err().reason.contains("kind is unknown"));
        let e = ApplicationEvent::Enrolled { session: id(5), seat: 1, place: Some(2), stamp: stamp() }.encode();
        assert!(codec.decode(&e).unwrap_err().reason.contains("call_place is set"));
        let other = OfficialEvent::Registered { id: id(0x0fe), details: details(None), stamp: stamp() };
        let e = OfficialCodec::new(id(0x0fe), Some(DataKey::generate())).encode(&other).unwrap();
        assert!(codec.decode(&e).unwrap_err().reason.contains("not the codec's official"));
    }

    #[test]
    fn another_aggregates_events_are_refused() {
        let call = CallEvent::Closed { reason: "r".into(), stamp: stamp() }.encode();
        let application = ApplicationEvent::Withdrawn { reason: "r".into(), stamp: stamp() }.encode();
        let course = CourseEvent::Retired { reason: "r".into(), stamp: stamp() }.encode();
        let session = SessionEvent::Cancelled { reason: "r".into(), stamp: stamp() }.encode();
        let support = SupportEvent::Retracted { service: id(1), reason: "r".into(), stamp: stamp() }.encode();
        let official = OfficialCodec::new(id(0x0ff), None)
            .encode(&OfficialEvent::Erased { reason: "r".into(), stamp: stamp() })
            .unwrap();
        let all = [&call, &application, &course, &session, &support, &official];
        let not = |own: &EncodedEvent| all.iter().filter(|e| e.type_name != own.type_name).copied().collect::<Vec<_>>();
        for e in not(&call) {
            assert!(reason::<CallEvent>(e).contains("not a call event"), "{}", e.type_name);
        }
        for e in not(&application) {
            assert!(reason::<ApplicationEvent>(e).contains("not an application event"), "{}", e.type_name);
        }
        for e in not(&course) {
            assert!(reason::<CourseEvent>(e).contains("not a course event"), "{}", e.type_name);
        }
        for e in not(&session) {
            assert!(reason::<SessionEvent>(e).contains("not a session event"), "{}", e.type_name);
        }
        for e in not(&support) {
            assert!(reason::<SupportEvent>(e).contains("not a support event"), "{}", e.type_name);
        }
        let codec = OfficialCodec::new(id(0x0ff), None);
        for e in not(&official) {
            assert!(codec.decode(e).unwrap_err().reason.contains("not an official event"), "{}", e.type_name);
        }
        // The trainee events are shared by applications and officials only.
        let enrolled = OfficialEvent::Enrolled { session: id(5), seat: 1, stamp: stamp() };
        let e = codec.encode(&enrolled).unwrap();
        assert!(ApplicationEvent::decode(&e).is_ok());
        for r in
            [reason::<CallEvent>(&e), reason::<CourseEvent>(&e), reason::<SessionEvent>(&e), reason::<SupportEvent>(&e)]
        {
            assert!(r.starts_with("not a"), "{r}");
        }
    }
}
