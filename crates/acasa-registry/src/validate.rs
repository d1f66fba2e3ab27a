//! Validation at the edge: requests into domain values, every bad field named
//! by its path in the request (e.g. `details.languages[2]`).

use std::collections::BTreeSet;

use acasa_domain::{Violations, formats};
use acasa_proto::{registry::v1 as pb, r#type::v1::Date};
use chrono::{Datelike as _, NaiveDate};
use uuid::Uuid;

use crate::domain::{Category, Channel, ConsentKey, ConsentPurpose, Details, Interest, Return, proto_date};
use crate::person_data::{OpenedField, Purpose, SealedItem};

/// Longest name.
pub const NAME_MAX: usize = 100;
/// Longest district or locality.
pub const PLACE_MAX: usize = 100;
/// Longest profession, field or institution.
pub const LONG_TEXT_MAX: usize = 200;
/// Longest skill.
pub const SKILL_MAX: usize = 100;
/// Most languages.
pub const LANGUAGES_MAX: usize = 20;
/// Most education entries.
pub const EDUCATION_MAX: usize = 20;
/// Most skills.
pub const SKILLS_MAX: usize = 50;

/// A required UUID.
pub fn id(v: &mut Violations, field: &str, s: &str) -> Option<Uuid> {
    v.id(field, s)
}

fn req_text(v: &mut Violations, field: &str, s: &str, max: usize) -> Option<String> {
    v.check(field, formats::text(s, max))
}

fn opt_text(v: &mut Violations, field: &str, s: &str, max: usize) -> String {
    v.check(field, formats::optional_text(s, max)).flatten().unwrap_or_default()
}

fn date_of(v: &mut Violations, field: &str, d: Option<&Date>) -> Option<NaiveDate> {
    let Some(d) = d else {
        v.add(field, "is required");
        return None;
    };
    v.check(field, formats::date(d.year, d.month, d.day))
}

/// A country of residence.
pub fn country(v: &mut Violations, field: &str, s: &str) -> Option<String> {
    v.check(field, formats::country_code(s))
}

/// Validated, normalised personal details.
pub fn details(v: &mut Violations, field: &str, d: Option<&pb::PersonDetails>, today: NaiveDate) -> Option<Details> {
    let Some(d) = d else {
        v.add(field, "is required");
        return None;
    };
    let before = v.iter().count();
    let given_name = req_text(v, &format!("{field}.given_name"), &d.given_name, NAME_MAX);
    let family_name = req_text(v, &format!("{field}.family_name"), &d.family_name, NAME_MAX);
    let birth_field = format!("{field}.birth_date");
    let birth_date = match d.birth_date.as_ref() {
        None => {
            v.add(&birth_field, "is required");
            None
        }
        Some(b) => v.check(&birth_field, formats::birth_date(b.year, b.month, b.day, today)),
    };
    let sex = match pb::Sex::try_from(d.sex) {
        Ok(s) => s,
        Err(_) => {
            v.add(format!("{field}.sex"), "is not a known value");
            pb::Sex::Unspecified
        }
    };
    let idnp = if d.idnp.is_empty() {
        String::new()
    } else {
        v.check(&format!("{field}.idnp"), formats::national_code(&d.idnp)).unwrap_or_default()
    };
    let home_district = opt_text(v, &format!("{field}.home_district"), &d.home_district, PLACE_MAX);
    let home_locality = opt_text(v, &format!("{field}.home_locality"), &d.home_locality, PLACE_MAX);
    let mut languages = Vec::new();
    if v.check(&format!("{field}.languages"), formats::list_len(d.languages.len(), LANGUAGES_MAX)).is_some() {
        for (i, l) in d.languages.iter().enumerate() {
            if let Some(l) = v.check(&format!("{field}.languages[{i}]"), formats::language_tag(l))
                && !languages.contains(&l)
            {
                languages.push(l);
            }
        }
    }
    let mut education = Vec::new();
    if v.check(&format!("{field}.education"), formats::list_len(d.education.len(), EDUCATION_MAX)).is_some() {
        for (i, e) in d.education.iter().enumerate() {
            education.push(education_entry(v, &format!("{field}.education[{i}]"), e, today));
        }
    }
    let profession = opt_text(v, &format!("{field}.profession"), &d.profession, LONG_TEXT_MAX);
    let scientific_field = opt_text(v, &format!("{field}.scientific_field"), &d.scientific_field, LONG_TEXT_MAX);
    let mut skills = Vec::new();
    if v.check(&format!("{field}.skills"), formats::list_len(d.skills.len(), SKILLS_MAX)).is_some() {
        for (i, s) in d.skills.iter().enumerate() {
            if let Some(s) = req_text(v, &format!("{field}.skills[{i}]"), s, SKILL_MAX)
                && !skills.contains(&s)
            {
                skills.push(s);
            }
        }
    }
    if v.iter().count() > before {
        return None;
    }
    let (given_name, family_name, birth_date) = (given_name?, family_name?, birth_date?);
    let pb = pb::PersonDetails {
        given_name,
        family_name,
        birth_date: Some(proto_date(birth_date)),
        sex: sex as i32,
        idnp,
        home_district,
        home_locality,
        languages,
        education,
        profession,
        scientific_field,
        skills,
    };
    Some(Details { pb, birth_date })
}

fn education_entry(v: &mut Violations, field: &str, e: &pb::Education, today: NaiveDate) -> pb::Education {
    let level = match pb::EducationLevel::try_from(e.level) {
        Ok(pb::EducationLevel::Unspecified) => {
            v.add(format!("{field}.level"), "is required");
            0
        }
        Ok(l) => l as i32,
        Err(_) => {
            v.add(format!("{field}.level"), "is not a known value");
            0
        }
    };
    let country = if e.country.is_empty() {
        String::new()
    } else {
        v.check(&format!("{field}.country"), formats::country_code(&e.country)).unwrap_or_default()
    };
    if e.year != 0 && !(formats::MIN_YEAR..=today.year() + 1).contains(&e.year) {
        v.add(format!("{field}.year"), format!("must be between {} and {}, or 0", formats::MIN_YEAR, today.year() + 1));
    }
    pb::Education {
        level,
        field: opt_text(v, &format!("{field}.field"), &e.field, LONG_TEXT_MAX),
        institution: opt_text(v, &format!("{field}.institution"), &e.institution, LONG_TEXT_MAX),
        country,
        year: e.year,
    }
}

/// Validated contacts (both optional).
pub fn contacts(v: &mut Violations, field: &str, c: Option<&pb::Contacts>) -> Option<pb::Contacts> {
    let Some(c) = c else { return Some(pb::Contacts::default()) };
    let email = if c.email.is_empty() {
        Some(String::new())
    } else {
        v.check(&format!("{field}.email"), formats::email(&c.email))
    };
    let phone = if c.phone.is_empty() {
        Some(String::new())
    } else {
        v.check(&format!("{field}.phone"), formats::phone_e164(&c.phone))
    };
    Some(pb::Contacts { email: email?, phone: phone? })
}

/// A validated return: date not in the future (not before birth is the domain's rule).
pub fn return_details(
    v: &mut Violations,
    field: &str,
    r: Option<&pb::ReturnDetails>,
    today: NaiveDate,
) -> Option<Return> {
    let Some(r) = r else {
        v.add(field, "is required");
        return None;
    };
    let date_field = format!("{field}.return_date");
    let date = date_of(v, &date_field, r.return_date.as_ref());
    if date.is_some_and(|d| d > today) {
        v.add(&date_field, "must not be in the future");
        return None;
    }
    let district = opt_text(v, &format!("{field}.district"), &r.district, PLACE_MAX);
    let locality = opt_text(v, &format!("{field}.locality"), &r.locality, PLACE_MAX);
    let date = date?;
    Some(Return { pb: pb::ReturnDetails { return_date: Some(proto_date(date)), district, locality }, date })
}

/// One category (not unspecified).
pub fn category(v: &mut Violations, field: &str, c: i32) -> Option<Category> {
    match Category::try_from(c) {
        Ok(Category::Unspecified) => {
            v.add(field, "is required");
            None
        }
        Ok(c) => Some(c),
        Err(_) => {
            v.add(field, "is not a known category");
            None
        }
    }
}

/// A set of categories; `required`: at least one.
pub fn categories(v: &mut Violations, field: &str, cs: &[i32], required: bool) -> Option<BTreeSet<Category>> {
    if required && cs.is_empty() {
        v.add(field, "must name at least one category");
        return None;
    }
    let mut out = BTreeSet::new();
    let mut ok = true;
    for (i, c) in cs.iter().enumerate() {
        match category(v, &format!("{field}[{i}]"), *c) {
            Some(c) if !out.insert(c) => {
                v.add(format!("{field}[{i}]"), "is repeated");
                ok = false;
            }
            Some(_) => {}
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// A set of interests.
pub fn interests(v: &mut Violations, field: &str, is: &[i32]) -> Option<BTreeSet<Interest>> {
    let mut out = BTreeSet::new();
    let mut ok = true;
    for (i, x) in is.iter().enumerate() {
        match Interest::try_from(*x) {
            Ok(Interest::Unspecified) | Err(_) => {
                v.add(format!("{field}[{i}]"), "is not a known interest");
                ok = false;
            }
            Ok(x) if !out.insert(x) => {
                v.add(format!("{field}[{i}]"), "is repeated");
                ok = false;
            }
            Ok(_) => {}
        }
    }
    ok.then_some(out)
}

/// A consent's purpose, partner and channel.
pub fn consent(v: &mut Violations, purpose: i32, partner_id: &str, channel: i32) -> Option<(ConsentKey, Channel)> {
    let purpose = match ConsentPurpose::try_from(purpose) {
        Ok(ConsentPurpose::Unspecified) => {
            v.add("purpose", "is required");
            None
        }
        Ok(p) => Some(p),
        Err(_) => {
            v.add("purpose", "is not a known purpose");
            None
        }
    };
    let partner = match purpose {
        Some(ConsentPurpose::PartnerSharing) => id(v, "partner_id", partner_id).map(Some),
        _ if !partner_id.is_empty() => {
            v.add("partner_id", "is only for partner sharing");
            None
        }
        _ => Some(None),
    };
    let channel = match Channel::try_from(channel) {
        Ok(Channel::Unspecified) => {
            v.add("channel", "is required");
            None
        }
        Ok(c) => Some(c),
        Err(_) => {
            v.add("channel", "is not a known channel");
            None
        }
    };
    Some((ConsentKey { purpose: purpose?, partner: partner? }, channel?))
}

/// Most items of one `OpenPersonData` call.
pub const OPEN_ITEMS_MAX: usize = 500;

/// The items of an `OpenPersonData` request: 1 to [`OPEN_ITEMS_MAX`], each
/// a person id, a sealed field the registry opens for other services
/// (`details` or `contacts`; `return_details` for [`Purpose::Eligibility`]
/// only) of an event type that carries it, and the sealed value. Each bad
/// field is named by its item (`items[3].field`).
pub(crate) fn sealed_items<'a>(
    v: &mut Violations,
    items: &'a [pb::SealedItem],
    purpose: Purpose,
) -> Option<Vec<SealedItem<'a>>> {
    if items.is_empty() || items.len() > OPEN_ITEMS_MAX {
        v.add("items", format!("must hold 1 to {OPEN_ITEMS_MAX} items"));
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = |f: &str| format!("items[{i}].{f}");
        let person = id(v, &at("person_id"), &item.person_id);
        let field = match item.field.as_str() {
            "details" => Some(OpenedField::Details),
            "contacts" if matches!(purpose, Purpose::Matching | Purpose::Campaigns) => Some(OpenedField::Contacts),
            "contacts" => {
                v.add(at("field"), "`contacts` opens for the purposes MATCHING and CAMPAIGNS only");
                None
            }
            "return_details" if purpose == Purpose::Eligibility => Some(OpenedField::ReturnDetails),
            "return_details" => {
                v.add(at("field"), "`return_details` opens for the purpose ELIGIBILITY only");
                None
            }
            _ => {
                v.add(
                    at("field"),
                    "must be `details`, (for matching) `contacts` or (for eligibility) `return_details` \
                     (the sealed fields opened for other services)",
                );
                None
            }
        };
        let event_type = field.and_then(|f| {
            let carrying = f.event_types();
            let found = carrying.iter().copied().find(|t| *t == item.event_type);
            if found.is_none() {
                v.add(
                    at("event_type"),
                    format!("must be an event type carrying `{}`: {}", f.name(), carrying.join(" or ")),
                );
            }
            found
        });
        let sealed = item.sealed.as_ref();
        if sealed.is_none() {
            v.add(at("sealed"), "is required");
        }
        if let (Some(person), Some(field), Some(event_type), Some(sealed)) = (person, field, event_type, sealed) {
            out.push(SealedItem { person, event_type, field, sealed });
        }
    }
    (out.len() == items.len()).then_some(out)
}

pub use acasa_domain::formats::fold;

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
    }

    fn good() -> pb::PersonDetails {
        pb::PersonDetails {
            given_name: " Ion ".into(),
            family_name: "Rusu".into(),
            birth_date: Some(Date { year: 1990, month: 5, day: 17 }),
            idnp: formats::make_national_code("200200123456").unwrap(),
            languages: vec!["RO".into(), "ro".into(), "en-gb".into()],
            skills: vec!["welding".into(), "welding".into()],
            ..Default::default()
        }
    }

    fn fields(v: &Violations) -> Vec<String> {
        v.iter().map(|f| f.field.clone()).collect()
    }

    #[test]
    fn good_details_are_normalised() {
        let mut v = Violations::new();
        let d = details(&mut v, "details", Some(&good()), today()).unwrap();
        assert!(v.is_empty());
        assert_eq!(d.pb.given_name, "Ion");
        assert_eq!(d.pb.languages, ["ro", "en-GB"]);
        assert_eq!(d.pb.skills, ["welding"]);
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut d = good();
        d.given_name = String::new();
        d.birth_date = Some(Date { year: 2030, month: 1, day: 1 });
        d.idnp = "2002001234560".into();
        d.languages = vec!["ro".into(), "english".into()];
        d.education = vec![pb::Education { level: 9, country: "XX".into(), year: 1800, ..Default::default() }];
        d.skills = vec!["a\u{7}".into()];
        d.sex = 7;
        let mut v = Violations::new();
        assert!(details(&mut v, "details", Some(&d), today()).is_none());
        assert_eq!(
            fields(&v),
            [
                "details.given_name",
                "details.birth_date",
                "details.sex",
                "details.idnp",
                "details.languages[1]",
                "details.education[0].level",
                "details.education[0].country",
                "details.education[0].year",
                "details.skills[0]",
            ]
        );
    }

    #[test]
    fn contacts_categories_interests_and_consent() {
        let mut v = Violations::new();
        let c = pb::Contacts { email: "x@".into(), phone: "069123456".into() };
        assert!(contacts(&mut v, "contacts", Some(&c)).is_none());
        assert!(categories(&mut v, "categories", &[], true).is_none());
        assert!(categories(&mut v, "cats", &[1, 1, 99], false).is_none());
        assert!(interests(&mut v, "interests", &[0]).is_none());
        assert!(consent(&mut v, 2, "", 1).is_none());
        assert!(consent(&mut v, 1, "x", 0).is_none());
        assert_eq!(
            fields(&v),
            [
                "contacts.email",
                "contacts.phone",
                "categories",
                "cats[1]",
                "cats[2]",
                "interests[0]",
                "partner_id",
                "partner_id",
                "channel"
            ]
        );
    }

    #[test]
    fn returns_are_not_in_the_future() {
        let mut v = Violations::new();
        let r = pb::ReturnDetails { return_date: Some(Date { year: 2027, month: 1, day: 1 }), ..Default::default() };
        assert!(return_details(&mut v, "return_details", Some(&r), today()).is_none());
        assert_eq!(fields(&v), ["return_details.return_date"]);
    }

    #[test]
    fn folding_ignores_case_and_diacritics() {
        assert_eq!(fold("Ștefan Țurcanu-Mîndru"), "stefan turcanu-mindru");
    }
}
