//! Requests into domain values: every bad field named, in the request's own
//! terms (`terms.cap.currency`, `plan.items[2].quantity`,
//! `details.days[0]`), before a command reaches the domain. What only the
//! domain can see (a currency against the call's, scores against the
//! call's criteria) it names itself (`Rejection::field`).

use acasa_domain::{Violations, formats};
use acasa_proto::{
    grants::v1 as pb,
    partner::v1 as partner,
    registry::v1 as reg,
    r#type::v1::{Date, Money as PbMoney},
};
use chrono::NaiveDate;
use uuid::Uuid;

use crate::domain::application::{Handover, Item, Plan, PlanItem, Supplier, Visit};
use crate::domain::call::NewCall;
use crate::domain::eligibility::{AgeRange, Rules};
use crate::domain::official::{OfficialDetails, OfficialKind};
use crate::domain::scoring::{Criterion, Evaluation};
use crate::domain::support::{Provider, SupportKind};
use crate::domain::training::{CAPACITY_MAX, CourseDetails, DEFAULT_THRESHOLD_PERCENT, SessionDetails};
use crate::domain::{Audience, Category, Money, Sex};

/// Longest title, name, organisation, role, venue, trainer, description.
pub const NAME_MAX: usize = 200;
/// Longest district or topic.
pub const DISTRICT_MAX: usize = 100;
/// Longest reason.
pub const NOTE_MAX: usize = 500;
/// Longest comment, note, reasons.
pub const COMMENT_MAX: usize = 2_000;
/// Longest plan summary or visit findings.
pub const SUMMARY_MAX: usize = 4_000;
/// Longest reference (delivery note, payment, handover record).
pub const REFERENCE_MAX: usize = 100;
/// Largest amount, in minor units.
pub const AMOUNT_MAX: i64 = 10_000_000_000;
/// Most districts of a call.
pub const DISTRICTS_MAX: usize = 40;
/// Most training places of a call.
pub const TRAINING_PLACES_MAX: i32 = 10_000;
/// Most criteria of a call.
pub const CRITERIA_MAX: usize = 20;
/// Most evaluators a call may require.
pub const MIN_EVALUATORS_MAX: i32 = 20;
/// Most topics of a course.
pub const TOPICS_MAX: usize = 30;
/// Most hours of a course.
pub const HOURS_MAX: i32 = 1_000;
/// Most days of a session.
pub const DAYS_MAX: usize = 60;
/// Most items of a plan.
pub const PLAN_ITEMS_MAX: usize = 50;
/// Largest quantity of an item.
pub const QUANTITY_MAX: i32 = 10_000;
/// Most items in one handover record.
pub const HANDOVER_ITEMS_MAX: usize = 100;
/// Most jobs a visit may report.
pub const JOBS_MAX: i32 = 10_000;
/// Most trainees in one day's register (each list).
pub const REGISTER_MAX: usize = 999;

/// An id (a UUID).
pub fn id(v: &mut Violations, field: &str, s: &str) -> Option<Uuid> {
    v.id(field, s)
}

/// A required text of at most `max` characters.
pub fn text(v: &mut Violations, field: &str, s: &str, max: usize) -> Option<String> {
    v.check(field, formats::text(s, max))
}

/// An optional text of at most `max` characters (empty if blank).
pub fn optional(v: &mut Violations, field: &str, s: &str, max: usize) -> Option<String> {
    v.check(field, formats::optional_text(s, max)).map(Option::unwrap_or_default)
}

/// A reason: 1 to 500 characters.
pub fn reason(v: &mut Violations, field: &str, s: &str) -> Option<String> {
    text(v, field, s, NOTE_MAX)
}

/// A reference (delivery note, payment, handover record): 1 to 100 characters.
pub fn reference(v: &mut Violations, field: &str, s: &str) -> Option<String> {
    text(v, field, s, REFERENCE_MAX)
}

/// An amount: a known currency, more than zero (or zero when `zero_ok`),
/// at most [`AMOUNT_MAX`].
pub fn money(v: &mut Violations, field: &str, m: Option<&PbMoney>, zero_ok: bool) -> Option<Money> {
    let Some(m) = m else {
        v.add(field, "is required");
        return None;
    };
    let currency = v.check(&format!("{field}.currency"), formats::currency(&m.currency));
    let low = i64::from(!zero_ok);
    let minor = if (low..=AMOUNT_MAX).contains(&m.amount_minor) {
        Some(m.amount_minor)
    } else {
        v.add(format!("{field}.amount_minor"), format!("must be between {low} and {AMOUNT_MAX} minor units"));
        None
    };
    Some(Money { minor: minor?, currency: currency? })
}

/// A calendar date.
pub fn date(v: &mut Violations, field: &str, d: Option<&Date>) -> Option<NaiveDate> {
    let Some(d) = d else {
        v.add(field, "is required");
        return None;
    };
    v.check(field, formats::date(d.year, d.month, d.day))
}

/// A date not after `today`.
pub fn past_date(v: &mut Violations, field: &str, d: Option<&Date>, today: NaiveDate) -> Option<NaiveDate> {
    let day = date(v, field, d)?;
    if day > today {
        v.add(field, "must not be in the future");
        return None;
    }
    Some(day)
}

/// An integer within `range`, as `u32`.
fn count(v: &mut Violations, field: &str, n: i32, range: std::ops::RangeInclusive<i32>) -> Option<u32> {
    if range.contains(&n) {
        u32::try_from(n).ok()
    } else {
        v.add(field, format!("must be {} to {}", range.start(), range.end()));
        None
    }
}

/// Distinct folded texts of at most `max` characters each, at most `most`.
fn folded_list(v: &mut Violations, field: &str, list: &[String], max: usize, most: usize) -> Option<Vec<String>> {
    v.check(field, formats::list_len(list.len(), most))?;
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    let mut ok = true;
    for (i, s) in list.iter().enumerate() {
        match formats::text(s, max) {
            Ok(t) => {
                let folded = formats::fold(&t);
                if !out.contains(&folded) {
                    out.push(folded);
                }
            }
            Err(e) => {
                v.add(format!("{field}[{i}]"), e.to_string());
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

// ---------------------------------------------------------------- registry values

/// A registry sex (`None` for not stated).
pub fn sex_of(s: i32) -> Result<Option<Sex>, &'static str> {
    match reg::Sex::try_from(s) {
        Ok(reg::Sex::Unspecified) => Ok(None),
        Ok(reg::Sex::Female) => Ok(Some(Sex::Female)),
        Ok(reg::Sex::Male) => Ok(Some(Sex::Male)),
        Err(_) => Err("must be a known sex"),
    }
}

/// A registry category.
pub fn category_of(c: i32) -> Option<Category> {
    Some(match reg::Category::try_from(c).ok()? {
        reg::Category::MigrantAbroad => Category::MigrantAbroad,
        reg::Category::Returnee => Category::Returnee,
        reg::Category::OverseasGraduate => Category::OverseasGraduate,
        reg::Category::DiasporaScientist => Category::DiasporaScientist,
        reg::Category::YouthEntrepreneur => Category::YouthEntrepreneur,
        reg::Category::WomanEntrepreneur => Category::WomanEntrepreneur,
        reg::Category::Unspecified => return None,
    })
}

// ---------------------------------------------------------------- calls

/// A call's terms, validated (the id comes from the command).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallTerms(NewCall);

impl CallTerms {
    /// The call these terms open.
    pub fn with_id(mut self, id: Uuid) -> NewCall {
        self.0.id = id;
        self.0
    }
}

/// A call's terms: every field checked, the cap against the budget, the
/// dates in order, the age range in order.
pub fn call_terms(v: &mut Violations, field: &str, t: Option<&pb::CallTerms>) -> Option<CallTerms> {
    let Some(t) = t else {
        v.add(field, "is required");
        return None;
    };
    let before = v.iter().count();
    let title = text(v, &format!("{field}.title"), &t.title, NAME_MAX);
    let budget = money(v, &format!("{field}.budget"), t.budget.as_ref(), false);
    let cap = money(v, &format!("{field}.cap"), t.cap.as_ref(), false);
    if let (Some(b), Some(c)) = (&budget, &cap) {
        if c.currency != b.currency {
            v.add(format!("{field}.cap.currency"), "must be the budget's currency");
        } else if c.minor > b.minor {
            v.add(format!("{field}.cap.amount_minor"), "must not be above the budget");
        }
    }
    let opens_on = date(v, &format!("{field}.opens_on"), t.opens_on.as_ref());
    let closes_on = date(v, &format!("{field}.closes_on"), t.closes_on.as_ref());
    if let (Some(o), Some(c)) = (opens_on, closes_on)
        && c < o
    {
        v.add(format!("{field}.closes_on"), "must not be before opens_on");
    }
    let districts = folded_list(v, &format!("{field}.districts"), &t.districts, DISTRICT_MAX, DISTRICTS_MAX);
    let places = count(v, &format!("{field}.training_places"), t.training_places, 1..=TRAINING_PLACES_MAX);
    let eligibility = eligibility(v, &format!("{field}.eligibility"), t.eligibility.as_ref());
    let evaluation = evaluation(v, &format!("{field}.evaluation"), t.evaluation.as_ref());
    if v.iter().count() > before {
        return None;
    }
    Some(CallTerms(NewCall {
        id: Uuid::nil(),
        title: title?,
        budget: budget?,
        cap: cap?,
        opens_on: opens_on?,
        closes_on: closes_on?,
        districts: districts?,
        training_places: places?,
        eligibility: eligibility?,
        evaluation: evaluation?,
    }))
}

/// Eligibility rules (absent: none).
pub fn eligibility(v: &mut Violations, field: &str, r: Option<&pb::EligibilityRules>) -> Option<Rules> {
    let Some(r) = r else { return Some(Rules::default()) };
    let age = match &r.age {
        None => Some(None),
        Some(a) => {
            let min = count(v, &format!("{field}.age.min_age"), a.min_age, 0..=130);
            let max = count(v, &format!("{field}.age.max_age"), a.max_age, 0..=130);
            match (min, max) {
                (Some(min), Some(max)) if max < min => {
                    v.add(format!("{field}.age.max_age"), "must not be below min_age");
                    None
                }
                (Some(min), Some(max)) => Some(Some(AgeRange { min, max })),
                _ => None,
            }
        }
    };
    let mut sexes = Vec::new();
    for (i, s) in r.sexes.iter().enumerate() {
        match sex_of(*s) {
            Ok(Some(s)) if !sexes.contains(&s) => sexes.push(s),
            Ok(Some(_)) => {}
            _ => v.add(format!("{field}.sexes[{i}]"), "must be female or male"),
        }
    }
    let mut categories = Vec::new();
    for (i, c) in r.categories.iter().enumerate() {
        match category_of(*c) {
            Some(c) if !categories.contains(&c) => categories.push(c),
            Some(_) => {}
            None => v.add(format!("{field}.categories[{i}]"), "must be a known registry category"),
        }
    }
    Some(Rules { age: age?, sexes, rural_only: r.rural_only, categories })
}

/// A criterion's key: 1 to 40 of `[a-z0-9_]`.
fn criterion_key(s: &str) -> bool {
    (1..=40).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// How plans are evaluated.
pub fn evaluation(v: &mut Violations, field: &str, e: Option<&pb::EvaluationRules>) -> Option<Evaluation> {
    let Some(e) = e else {
        v.add(field, "is required");
        return None;
    };
    let list = format!("{field}.criteria");
    let mut criteria: Vec<Criterion> = Vec::with_capacity(e.criteria.len());
    let mut ok = true;
    if e.criteria.is_empty() {
        v.add(&list, "must name at least one criterion");
        ok = false;
    }
    if e.criteria.len() > CRITERIA_MAX {
        v.add(&list, format!("must have at most {CRITERIA_MAX} entries"));
        ok = false;
    }
    for (i, c) in e.criteria.iter().enumerate() {
        let key = if !criterion_key(&c.key) {
            v.add(format!("{list}[{i}].key"), "must be 1 to 40 of a-z, 0-9 and _");
            None
        } else if e.criteria[..i].iter().any(|o| o.key == c.key) {
            v.add(format!("{list}[{i}].key"), "is repeated");
            None
        } else {
            Some(c.key.clone())
        };
        let title = text(v, &format!("{list}[{i}].title"), &c.title, NAME_MAX);
        let weight = count(v, &format!("{list}[{i}].weight"), c.weight, 1..=100);
        match (key, title, weight) {
            (Some(key), Some(title), Some(weight)) => criteria.push(Criterion { key, title, weight }),
            _ => ok = false,
        }
    }
    let scale_max = count(v, &format!("{field}.scale_max"), e.scale_max, 1..=100);
    let min_evaluators = count(v, &format!("{field}.min_evaluators"), e.min_evaluators, 1..=MIN_EVALUATORS_MAX);
    let pass_max = scale_max.map_or(10_000, |s| i32::try_from(s * 100).unwrap_or(10_000));
    let pass_score = count(v, &format!("{field}.pass_score"), e.pass_score, 0..=pass_max);
    if !ok {
        return None;
    }
    Some(Evaluation { criteria, scale_max: scale_max?, min_evaluators: min_evaluators?, pass_score: pass_score? })
}

// ---------------------------------------------------------------- training

/// An audience.
pub fn audience(v: &mut Violations, field: &str, a: i32) -> Option<Audience> {
    match pb::Audience::try_from(a) {
        Ok(pb::Audience::Entrepreneurs) => Some(Audience::Entrepreneurs),
        Ok(pb::Audience::Officials) => Some(Audience::Officials),
        _ => {
            v.add(field, "must be ENTREPRENEURS or OFFICIALS");
            None
        }
    }
}

/// A course's details (a threshold of 0 is the default, 80 %).
pub fn course_details(v: &mut Violations, field: &str, d: Option<&pb::CourseDetails>) -> Option<CourseDetails> {
    let Some(d) = d else {
        v.add(field, "is required");
        return None;
    };
    let title = text(v, &format!("{field}.title"), &d.title, NAME_MAX);
    let topics = folded_list(v, &format!("{field}.topics"), &d.topics, DISTRICT_MAX, TOPICS_MAX);
    let language = v.check(&format!("{field}.language"), formats::language_tag(&d.language));
    let hours = count(v, &format!("{field}.hours"), d.hours, 1..=HOURS_MAX);
    let threshold = match d.completion_threshold_percent {
        0 => Some(DEFAULT_THRESHOLD_PERCENT),
        t => count(v, &format!("{field}.completion_threshold_percent"), t, 1..=100),
    };
    Some(CourseDetails {
        title: title?,
        topics: topics?,
        language: language?,
        hours: hours?,
        threshold_percent: threshold?,
    })
}

/// A session's code: 3 to 24 of `[A-Z0-9-]` after trimming and upper-casing,
/// starting and ending with a letter or digit.
pub fn session_code(v: &mut Violations, field: &str, s: &str) -> Option<String> {
    let code = s.trim().to_ascii_uppercase();
    let ok = (3..=24).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        && !code.starts_with('-')
        && !code.ends_with('-');
    if ok {
        Some(code)
    } else {
        v.add(field, "must be 3 to 24 letters, digits and -, such as ANTR-2027-03");
        None
    }
}

/// A session's capacity: 1 to 999.
pub fn capacity(v: &mut Violations, field: &str, n: i32) -> Option<u32> {
    count(v, field, n, 1..=i32::try_from(CAPACITY_MAX).unwrap_or(999))
}

/// A session's own completion threshold (0: the course's).
pub fn threshold_override(v: &mut Violations, field: &str, n: i32) -> Option<Option<u32>> {
    if n == 0 {
        return Some(None);
    }
    count(v, field, n, 1..=100).map(Some)
}

/// A session's days (sorted; none twice), place and trainer.
pub fn session_details(v: &mut Violations, field: &str, d: Option<&pb::SessionDetails>) -> Option<SessionDetails> {
    let Some(d) = d else {
        v.add(field, "is required");
        return None;
    };
    let list = format!("{field}.days");
    let mut days: Vec<NaiveDate> = Vec::with_capacity(d.days.len());
    let mut ok = true;
    if d.days.is_empty() {
        v.add(&list, "must list at least one day");
        ok = false;
    }
    if d.days.len() > DAYS_MAX {
        v.add(&list, format!("must have at most {DAYS_MAX} entries"));
        ok = false;
    }
    for (i, day) in d.days.iter().enumerate() {
        match v.check(&format!("{list}[{i}]"), formats::date(day.year, day.month, day.day)) {
            Some(day) if days.contains(&day) => {
                v.add(format!("{list}[{i}]"), "is repeated");
                ok = false;
            }
            Some(day) => days.push(day),
            None => ok = false,
        }
    }
    days.sort_unstable();
    let venue = text(v, &format!("{field}.venue"), &d.venue, NAME_MAX);
    let district = text(v, &format!("{field}.district"), &d.district, DISTRICT_MAX);
    let trainer = text(v, &format!("{field}.trainer"), &d.trainer, NAME_MAX);
    if !ok {
        return None;
    }
    Some(SessionDetails { days, venue: venue?, district: district?, trainer: trainer? })
}

/// An official's details.
pub fn official_details(v: &mut Violations, field: &str, d: Option<&pb::OfficialDetails>) -> Option<OfficialDetails> {
    let Some(d) = d else {
        v.add(field, "is required");
        return None;
    };
    let kind = match pb::OfficialKind::try_from(d.kind) {
        Ok(pb::OfficialKind::LocalOfficial) => Some(OfficialKind::LocalOfficial),
        Ok(pb::OfficialKind::SmeSupportStaff) => Some(OfficialKind::SmeSupportStaff),
        _ => {
            v.add(format!("{field}.kind"), "must be LOCAL_OFFICIAL or SME_SUPPORT_STAFF");
            None
        }
    };
    let given_name = text(v, &format!("{field}.given_name"), &d.given_name, DISTRICT_MAX);
    let family_name = text(v, &format!("{field}.family_name"), &d.family_name, DISTRICT_MAX);
    let sex = v.check(&format!("{field}.sex"), sex_of(d.sex));
    let organisation = text(v, &format!("{field}.organisation"), &d.organisation, NAME_MAX);
    let role = text(v, &format!("{field}.role"), &d.role, NAME_MAX);
    let district = text(v, &format!("{field}.district"), &d.district, DISTRICT_MAX);
    let email = if d.email.is_empty() {
        Some(String::new())
    } else {
        v.check(&format!("{field}.email"), formats::email(&d.email))
    };
    let phone = if d.phone.is_empty() {
        Some(String::new())
    } else {
        v.check(&format!("{field}.phone"), formats::phone_e164(&d.phone))
    };
    Some(OfficialDetails {
        kind: kind?,
        given_name: given_name?,
        family_name: family_name?,
        sex: sex?,
        organisation: organisation?,
        role: role?,
        district: district?,
        email: email?,
        phone: phone?,
    })
}

/// A trainee: an application or an official.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trainee {
    /// An applicant's application.
    Application(Uuid),
    /// An official.
    Official(Uuid),
}

/// The trainee of an enrolment request (`application_id` or `official_id`).
pub fn trainee(v: &mut Violations, application_id: Option<&str>, official_id: Option<&str>) -> Option<Trainee> {
    match (application_id, official_id) {
        (Some(a), _) => id(v, "application_id", a).map(Trainee::Application),
        (None, Some(o)) => id(v, "official_id", o).map(Trainee::Official),
        (None, None) => {
            v.add("application_id", "an application_id or an official_id is required");
            None
        }
    }
}

/// A day's register: each trainee id once, present or absent; at least one.
pub fn register(v: &mut Violations, present: &[String], absent: &[String]) -> Option<Vec<(Uuid, bool)>> {
    let mut out: Vec<(Uuid, bool)> = Vec::with_capacity(present.len() + absent.len());
    let mut ok = true;
    if present.is_empty() && absent.is_empty() {
        v.add("present_trainee_ids", "name at least one trainee, present or absent");
        return None;
    }
    for (field, list, is_present) in [("present_trainee_ids", present, true), ("absent_trainee_ids", absent, false)] {
        if v.check(field, formats::list_len(list.len(), REGISTER_MAX)).is_none() {
            ok = false;
            continue;
        }
        for (i, s) in list.iter().enumerate() {
            match id(v, &format!("{field}[{i}]"), s) {
                Some(t) if out.iter().any(|(o, _)| *o == t) => {
                    v.add(format!("{field}[{i}]"), "is named twice");
                    ok = false;
                }
                Some(t) => out.push((t, is_present)),
                None => ok = false,
            }
        }
    }
    ok.then_some(out)
}

// ---------------------------------------------------------------- applications

/// A business plan: a NACE section, a summary, the requested amount and
/// items worth at least it, all in one currency.
pub fn plan(v: &mut Violations, field: &str, p: Option<&pb::BusinessPlan>) -> Option<Plan> {
    let Some(p) = p else {
        v.add(field, "is required");
        return None;
    };
    let sector = p.sector.trim().to_ascii_uppercase();
    let sector = if sector.len() == 1 && ("A"..="U").contains(&sector.as_str()) {
        Some(sector)
    } else {
        v.add(format!("{field}.sector"), "must be a NACE Rev. 2 section letter, A to U");
        None
    };
    let summary = text(v, &format!("{field}.summary"), &p.summary, SUMMARY_MAX);
    let requested = money(v, &format!("{field}.requested_amount"), p.requested_amount.as_ref(), false);
    let list = format!("{field}.items");
    let mut items: Vec<PlanItem> = Vec::with_capacity(p.items.len());
    let mut ok = true;
    if p.items.is_empty() {
        v.add(&list, "must list at least one item");
        ok = false;
    }
    if p.items.len() > PLAN_ITEMS_MAX {
        v.add(&list, format!("must have at most {PLAN_ITEMS_MAX} entries"));
        ok = false;
    }
    for (i, item) in p.items.iter().enumerate() {
        let description = text(v, &format!("{list}[{i}].description"), &item.description, NAME_MAX);
        let quantity = count(v, &format!("{list}[{i}].quantity"), item.quantity, 1..=QUANTITY_MAX);
        let unit_price = money(v, &format!("{list}[{i}].unit_price"), item.unit_price.as_ref(), false);
        if let (Some(r), Some(u)) = (&requested, &unit_price)
            && u.currency != r.currency
        {
            v.add(format!("{list}[{i}].unit_price.currency"), "must be the requested amount's currency");
            ok = false;
        }
        match (description, quantity, unit_price) {
            (Some(description), Some(quantity), Some(unit_price)) => {
                items.push(PlanItem { description, quantity, unit_price });
            }
            _ => ok = false,
        }
    }
    if !ok {
        return None;
    }
    let plan = Plan { sector: sector?, summary: summary?, requested: requested?, items };
    // At most 50 × 10,000 × 10^10: no overflow.
    if plan.items_total().unwrap_or(i64::MAX) < plan.requested.minor {
        v.add(&list, "must be worth at least the requested amount");
        return None;
    }
    Some(plan)
}

/// Criterion scores: each key once, each 0 to 100 (the call's criteria and
/// scale are the domain's check).
pub fn scores(v: &mut Violations, field: &str, list: &[pb::CriterionScore]) -> Option<Vec<(String, u32)>> {
    if list.is_empty() {
        v.add(field, "must score every criterion");
        return None;
    }
    v.check(field, formats::list_len(list.len(), CRITERIA_MAX))?;
    let mut out: Vec<(String, u32)> = Vec::with_capacity(list.len());
    let mut ok = true;
    for (i, s) in list.iter().enumerate() {
        let key_ok = if !criterion_key(&s.key) {
            v.add(format!("{field}[{i}].key"), "must be a criterion's key");
            false
        } else if list[..i].iter().any(|o| o.key == s.key) {
            v.add(format!("{field}[{i}].key"), "is scored twice");
            false
        } else {
            true
        };
        match count(v, &format!("{field}[{i}].score"), s.score, 0..=100) {
            Some(score) if key_ok => out.push((s.key.clone(), score)),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

/// An item to procure (the id comes from the command).
pub fn procurement_item(v: &mut Violations, field: &str, i: Option<&pb::ProcurementItem>, item: Uuid) -> Option<Item> {
    let Some(i) = i else {
        v.add(field, "is required");
        return None;
    };
    let description = text(v, &format!("{field}.description"), &i.description, NAME_MAX);
    let supplier = match &i.supplier {
        None => {
            v.add(format!("{field}.supplier"), "is required");
            None
        }
        Some(s) => {
            let name = text(v, &format!("{field}.supplier.name"), &s.name, NAME_MAX);
            let idno = if s.idno.is_empty() {
                Some(None)
            } else {
                v.check(&format!("{field}.supplier.idno"), formats::national_code(&s.idno)).map(Some)
            };
            match (name, idno) {
                (Some(name), Some(idno)) => Some(Supplier { name, idno }),
                _ => None,
            }
        }
    };
    let quantity = count(v, &format!("{field}.quantity"), i.quantity, 1..=QUANTITY_MAX);
    let unit_price = money(v, &format!("{field}.unit_price"), i.unit_price.as_ref(), false);
    Some(Item {
        id: item,
        description: description?,
        supplier: supplier?,
        quantity: quantity?,
        unit_price: unit_price?,
    })
}

/// A handover record: a reference, delivered items (each once), a day, a place.
pub fn handover(v: &mut Violations, field: &str, h: Option<&pb::Handover>) -> Option<Handover> {
    let Some(h) = h else {
        v.add(field, "is required");
        return None;
    };
    let reference = reference(v, &format!("{field}.reference"), &h.reference);
    let list = format!("{field}.item_ids");
    let mut items: Vec<Uuid> = Vec::with_capacity(h.item_ids.len());
    let mut ok = true;
    if h.item_ids.is_empty() {
        v.add(&list, "must name at least one item");
        ok = false;
    }
    if h.item_ids.len() > HANDOVER_ITEMS_MAX {
        v.add(&list, format!("must have at most {HANDOVER_ITEMS_MAX} entries"));
        ok = false;
    }
    for (i, s) in h.item_ids.iter().enumerate() {
        match id(v, &format!("{list}[{i}]"), s) {
            Some(item) if items.contains(&item) => {
                v.add(format!("{list}[{i}]"), "is named twice");
                ok = false;
            }
            Some(item) => items.push(item),
            None => ok = false,
        }
    }
    let on = date(v, &format!("{field}.handed_over_on"), h.handed_over_on.as_ref());
    let location = text(v, &format!("{field}.location"), &h.location, NAME_MAX);
    let note = optional(v, &format!("{field}.note"), &h.note, COMMENT_MAX);
    if !ok {
        return None;
    }
    Some(Handover { reference: reference?, items, on: on?, location: location?, note: note? })
}

/// A monitoring visit.
pub fn visit(v: &mut Violations, field: &str, m: Option<&pb::MonitoringVisit>) -> Option<Visit> {
    let Some(m) = m else {
        v.add(field, "is required");
        return None;
    };
    let on = date(v, &format!("{field}.visited_on"), m.visited_on.as_ref());
    let officer = text(v, &format!("{field}.officer"), &m.officer, NAME_MAX);
    let jobs = count(v, &format!("{field}.jobs_created"), m.jobs_created, 0..=JOBS_MAX);
    let findings = text(v, &format!("{field}.findings"), &m.findings, SUMMARY_MAX);
    Some(Visit { on: on?, officer: officer?, operating: m.operating, jobs_created: jobs?, findings: findings? })
}

// ---------------------------------------------------------------- support

/// A support kind.
pub fn support_kind(v: &mut Violations, field: &str, k: i32) -> Option<SupportKind> {
    let kind = match pb::SupportKind::try_from(k) {
        Ok(pb::SupportKind::BusinessPlanning) => SupportKind::BusinessPlanning,
        Ok(pb::SupportKind::Accounting) => SupportKind::Accounting,
        Ok(pb::SupportKind::Taxation) => SupportKind::Taxation,
        Ok(pb::SupportKind::Licensing) => SupportKind::Licensing,
        Ok(pb::SupportKind::QualityStandards) => SupportKind::QualityStandards,
        Ok(pb::SupportKind::Loans) => SupportKind::Loans,
        Ok(pb::SupportKind::FinancialLiteracy) => SupportKind::FinancialLiteracy,
        _ => {
            v.add(field, "must be a known support kind");
            return None;
        }
    };
    Some(kind)
}

/// Who delivered a support service (`staff`, `partner_id` or `other_provider`).
pub fn provider(v: &mut Violations, p: Option<&pb::record_support_service_request::Provider>) -> Option<Provider> {
    use pb::record_support_service_request::Provider as P;
    match p {
        Some(P::Staff(s)) => text(v, "staff", s, NAME_MAX).map(Provider::Staff),
        Some(P::PartnerId(s)) => id(v, "partner_id", s).map(Provider::Partner),
        Some(P::OtherProvider(s)) => text(v, "other_provider", s, NAME_MAX).map(Provider::Other),
        None => {
            v.add("staff", "a staff, partner_id or other_provider is required");
            None
        }
    }
}

/// The support a referral's outcome in the referral system counts as: a
/// loan disbursed is a loan; a service delivered counts when it is one of
/// the start-up support kinds (consulting as business planning); training,
/// legal help and business registration are not; nothing delivered is
/// nothing.
pub fn support_of_outcome(outcome: &partner::Outcome) -> Option<SupportKind> {
    use partner::outcome::Kind;
    match outcome.kind.as_ref()? {
        Kind::LoanDisbursed(_) => Some(SupportKind::Loans),
        Kind::ServiceDelivered(s) => Some(match partner::ServiceKind::try_from(s.service).ok()? {
            partner::ServiceKind::Loan => SupportKind::Loans,
            partner::ServiceKind::Accounting => SupportKind::Accounting,
            partner::ServiceKind::Taxation => SupportKind::Taxation,
            partner::ServiceKind::Licensing => SupportKind::Licensing,
            partner::ServiceKind::QualityStandards => SupportKind::QualityStandards,
            partner::ServiceKind::FinancialLiteracy => SupportKind::FinancialLiteracy,
            partner::ServiceKind::Consulting => SupportKind::BusinessPlanning,
            partner::ServiceKind::Training
            | partner::ServiceKind::Legal
            | partner::ServiceKind::BusinessRegistration
            | partner::ServiceKind::Unspecified => return None,
        }),
        Kind::NotDelivered(_) => None,
    }
}

#[cfg(test)]
mod tests;
