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
use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
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

/// The protobuf form of a date.
pub fn date(d: NaiveDate) -> Date {
    Date { year: d.year(), month: i32::try_from(d.month()).unwrap_or(0), day: i32::try_from(d.day()).unwrap_or(0) }
}

/// The calendar date of a protobuf date, if it is one.
pub fn date_of(d: &Date) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(d.year, u32::try_from(d.month).ok()?, u32::try_from(d.day).ok()?)
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
