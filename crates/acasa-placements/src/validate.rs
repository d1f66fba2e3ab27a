//! Requests into domain values: every bad field named, in the request's own
//! terms (`details.contact.email`, `terms.allowance.currency`), before a
//! command reaches the domain.

use acasa_domain::{Violations, formats};
use acasa_proto::{
    placements::v1 as pb,
    r#type::v1::{Date, Money as PbMoney},
};
use chrono::NaiveDate;

use crate::domain::{
    Kind, Money, Outcome, OutcomeStage, Terms,
    host::{Contact, HostDetails, HostKind},
};

/// Longest name.
pub const NAME_MAX: usize = 200;
/// Longest district.
pub const DISTRICT_MAX: usize = 80;
/// Longest field or profession.
pub const SUBJECT_MAX: usize = 100;
/// Most fields and professions a host lists.
pub const HOSTS_MAX: usize = 30;
/// Most places in one offer.
pub const PLACES_MAX: i32 = 1_000;
/// Largest amount, in minor units.
pub const AMOUNT_MAX: i64 = 10_000_000_000;
/// Longest free text (reasons, references, notes).
pub const NOTE_MAX: usize = 500;
/// Most working languages of an offer.
pub const LANGUAGES_MAX: usize = 10;

/// An id (a UUID).
pub fn id(v: &mut Violations, field: &str, s: &str) -> Option<uuid::Uuid> {
    v.id(field, s)
}

/// A required text of at most `max` characters.
pub fn text(v: &mut Violations, field: &str, s: &str, max: usize) -> Option<String> {
    v.check(field, formats::text(s, max))
}

/// A host's IDNO (13 digits, check digit).
pub fn idno(v: &mut Violations, field: &str, s: &str) -> Option<String> {
    v.check(field, formats::national_code(s))
}

/// A host's details.
pub fn host_details(v: &mut Violations, field: &str, d: Option<&pb::HostDetails>) -> Option<HostDetails> {
    let Some(d) = d else {
        v.add(field, "is required");
        return None;
    };
    let kind = match pb::HostKind::try_from(d.kind) {
        Ok(pb::HostKind::PublicEmployer) => Some(HostKind::PublicEmployer),
        Ok(pb::HostKind::PrivateEmployer) => Some(HostKind::PrivateEmployer),
        Ok(pb::HostKind::ResearchInstitute) => Some(HostKind::ResearchInstitute),
        Ok(pb::HostKind::University) => Some(HostKind::University),
        _ => {
            v.add(format!("{field}.kind"), "must be a known host kind");
            None
        }
    };
    let name = v.check(&format!("{field}.name"), formats::text(&d.name, NAME_MAX));
    let district = v.check(&format!("{field}.district"), formats::text(&d.district, DISTRICT_MAX));
    let contact = contact(v, &format!("{field}.contact"), d.contact.as_ref());
    let hosts = subjects(v, &format!("{field}.hosts"), &d.hosts);
    Some(HostDetails { kind: kind?, name: name?, district: district?, contact: contact?, hosts: hosts? })
}

fn contact(v: &mut Violations, field: &str, c: Option<&pb::HostContact>) -> Option<Contact> {
    let Some(c) = c else {
        v.add(field, "is required");
        return None;
    };
    let name = v.check(&format!("{field}.name"), formats::text(&c.name, NAME_MAX));
    let email = v.check(&format!("{field}.email"), formats::email(&c.email));
    let phone = if c.phone.is_empty() {
        Some(String::new())
    } else {
        v.check(&format!("{field}.phone"), formats::phone_e164(&c.phone))
    };
    Some(Contact { name: name?, email: email?, phone: phone? })
}

/// Fields and professions: at least one, each folded, none repeated.
fn subjects(v: &mut Violations, field: &str, list: &[String]) -> Option<Vec<String>> {
    if list.is_empty() {
        v.add(field, "must name at least one field or profession");
        return None;
    }
    v.check(field, formats::list_len(list.len(), HOSTS_MAX))?;
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    let mut ok = true;
    for (i, s) in list.iter().enumerate() {
        match formats::text(s, SUBJECT_MAX) {
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

/// An amount: a known currency, more than zero (or zero when `zero_ok`).
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

/// An offer's terms: what the offer aggregate needs besides the host.
pub struct OfferTerms {
    /// The profession or field, folded.
    pub subject: String,
    /// Places.
    pub places: u32,
    /// Kind, term, allowance, travel cap.
    pub terms: Terms,
    /// Working languages (canonical BCP 47 tags, none repeated).
    pub languages: Vec<String>,
    /// The earliest start.
    pub start_from: NaiveDate,
    /// The latest start.
    pub start_until: NaiveDate,
}

/// An offer's terms (the term's length per kind and the window's order are
/// the domain's rules).
pub fn offer_terms(v: &mut Violations, field: &str, t: Option<&pb::OfferTerms>) -> Option<OfferTerms> {
    let Some(t) = t else {
        v.add(field, "is required");
        return None;
    };
    let kind = match pb::PlacementKind::try_from(t.kind) {
        Ok(pb::PlacementKind::GraduatePlacement) => Some(Kind::GraduatePlacement),
        Ok(pb::PlacementKind::ScientificAssignment) => Some(Kind::ScientificAssignment),
        _ => {
            v.add(format!("{field}.kind"), "must be a graduate placement or a scientific assignment");
            None
        }
    };
    let subject =
        v.check(&format!("{field}.subject"), formats::text(&t.subject, SUBJECT_MAX)).map(|s| formats::fold(&s));
    let places = if (1..=PLACES_MAX).contains(&t.places) {
        u32::try_from(t.places).ok()
    } else {
        v.add(format!("{field}.places"), format!("must be between 1 and {PLACES_MAX}"));
        None
    };
    let months = if t.term_months >= 1 {
        u32::try_from(t.term_months).ok()
    } else {
        v.add(format!("{field}.term_months"), "must be at least 1");
        None
    };
    let allowance = money(v, &format!("{field}.allowance"), t.allowance.as_ref(), false);
    let travel_cap = money(v, &format!("{field}.travel_cap"), t.travel_cap.as_ref(), true);
    if let (Some(a), Some(c)) = (&allowance, &travel_cap)
        && a.currency != c.currency
    {
        v.add(format!("{field}.travel_cap.currency"), "must be the allowance's currency");
    }
    let start_from = date(v, &format!("{field}.start_from"), t.start_from.as_ref());
    let start_until = date(v, &format!("{field}.start_until"), t.start_until.as_ref());
    let languages = languages(v, &format!("{field}.languages"), &t.languages);
    Some(OfferTerms {
        subject: subject?,
        places: places?,
        terms: Terms { kind: kind?, months: months?, allowance: allowance?, travel_cap: travel_cap? },
        languages: languages?,
        start_from: start_from?,
        start_until: start_until?,
    })
}

/// Languages: BCP 47 tags in canonical case, none repeated, at most
/// [`LANGUAGES_MAX`] (may be none).
pub fn languages(v: &mut Violations, field: &str, list: &[String]) -> Option<Vec<String>> {
    v.check(field, formats::list_len(list.len(), LANGUAGES_MAX))?;
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    let mut ok = true;
    for (i, l) in list.iter().enumerate() {
        match formats::language_tag(l) {
            Ok(tag) if !out.contains(&tag) => out.push(tag),
            Ok(_) => {}
            Err(e) => {
                v.add(format!("{field}[{i}]"), e.to_string());
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// A month of the term (from 1).
pub fn month(v: &mut Violations, field: &str, m: i32) -> Option<u32> {
    match u32::try_from(m) {
        Ok(m) if (1..=36).contains(&m) => Some(m),
        _ => {
            v.add(field, "must be a month of the term, from 1");
            None
        }
    }
}

/// A reason, reference or note: 1 to 500 characters.
pub fn note(v: &mut Violations, field: &str, s: &str) -> Option<String> {
    v.check(field, formats::text(s, NOTE_MAX))
}

/// An outcome and its stage; OTHER needs a note.
pub fn outcome(v: &mut Violations, stage: i32, kind: i32, note_text: &str) -> Option<(OutcomeStage, Outcome)> {
    let stage = match pb::OutcomeStage::try_from(stage) {
        Ok(pb::OutcomeStage::Completion) => Some(OutcomeStage::Completion),
        Ok(pb::OutcomeStage::FollowUp) => Some(OutcomeStage::FollowUp),
        _ => {
            v.add("stage", "must be COMPLETION or FOLLOW_UP");
            None
        }
    };
    let outcome = match pb::OutcomeKind::try_from(kind) {
        Ok(pb::OutcomeKind::EmployedInMoldova) => Some(Outcome::EmployedInMoldova),
        Ok(pb::OutcomeKind::ContinuedResearch) => Some(Outcome::ContinuedResearch),
        Ok(pb::OutcomeKind::ReturnedAbroad) => Some(Outcome::ReturnedAbroad),
        Ok(pb::OutcomeKind::Other) => note(v, "note", note_text).map(Outcome::Other),
        _ => {
            v.add("kind", "must be a known outcome");
            None
        }
    };
    Some((stage?, outcome?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: &Violations) -> Vec<String> {
        v.iter().map(|f| f.field.clone()).collect()
    }

    fn details() -> pb::HostDetails {
        pb::HostDetails {
            kind: pb::HostKind::University as i32,
            name: "Universitatea Tehnică".into(),
            district: "Chișinău".into(),
            contact: Some(pb::HostContact {
                name: "Ion Popa".into(),
                email: "hr@utm.md".into(),
                phone: "+37322000000".into(),
            }),
            hosts: vec!["Civil Engineering".into(), "civil engineering".into(), "Software".into()],
        }
    }

    fn terms() -> pb::OfferTerms {
        pb::OfferTerms {
            kind: pb::PlacementKind::GraduatePlacement as i32,
            subject: "Agronomist".into(),
            places: 3,
            term_months: 6,
            allowance: Some(PbMoney { amount_minor: 600_000, currency: "MDL".into() }),
            travel_cap: Some(PbMoney { amount_minor: 0, currency: "MDL".into() }),
            start_from: Some(Date { year: 2027, month: 1, day: 1 }),
            start_until: Some(Date { year: 2027, month: 3, day: 1 }),
            languages: vec!["ro".into(), "EN".into(), "ro".into()],
        }
    }

    #[test]
    fn good_host_details_are_folded_and_deduplicated() {
        let mut v = Violations::new();
        let d = host_details(&mut v, "details", Some(&details())).unwrap();
        assert!(v.is_empty(), "{v}");
        assert_eq!(d.kind, HostKind::University);
        assert_eq!(d.hosts, ["civil engineering", "software"]);
        assert_eq!(d.contact.phone, "+37322000000");
        let mut no_phone = details();
        no_phone.contact.as_mut().unwrap().phone.clear();
        assert_eq!(host_details(&mut v, "details", Some(&no_phone)).unwrap().contact.phone, "");
    }

    #[test]
    fn bad_host_details_name_every_field() {
        let mut bad = details();
        bad.kind = 0;
        bad.name.clear();
        bad.district = "x".repeat(81);
        bad.contact = Some(pb::HostContact { name: "A".into(), email: "not-mail".into(), phone: "123".into() });
        bad.hosts = vec!["ok".into(), "y".repeat(101)];
        let mut v = Violations::new();
        assert!(host_details(&mut v, "details", Some(&bad)).is_none());
        assert_eq!(
            fields(&v),
            [
                "details.kind",
                "details.name",
                "details.district",
                "details.contact.email",
                "details.contact.phone",
                "details.hosts[1]"
            ]
        );
        let mut v = Violations::new();
        let mut empty = details();
        empty.hosts.clear();
        empty.contact = None;
        assert!(host_details(&mut v, "details", Some(&empty)).is_none());
        assert_eq!(fields(&v), ["details.contact", "details.hosts"]);
        let mut v = Violations::new();
        assert!(host_details(&mut v, "details", None).is_none());
        assert!(idno(&mut v, "idno", "123").is_none());
        assert_eq!(fields(&v), ["details", "idno"]);
    }

    #[test]
    fn offer_terms_are_checked_field_by_field() {
        let mut v = Violations::new();
        let t = offer_terms(&mut v, "terms", Some(&terms())).unwrap();
        assert!(v.is_empty(), "{v}");
        assert_eq!((t.subject.as_str(), t.places, t.terms.months), ("agronomist", 3, 6));
        assert_eq!(t.terms.travel_cap, Money::new(0, "MDL"), "a zero cap is allowed");
        assert_eq!(t.languages, ["ro", "en"], "canonical case, none repeated");
        let mut bad = terms();
        bad.kind = 9;
        bad.places = 0;
        bad.term_months = 0;
        bad.allowance = Some(PbMoney { amount_minor: 0, currency: "MDL".into() });
        bad.travel_cap = Some(PbMoney { amount_minor: 5, currency: "EUR".into() });
        bad.start_from = Some(Date { year: 2027, month: 2, day: 30 });
        bad.start_until = None;
        let mut v = Violations::new();
        assert!(offer_terms(&mut v, "terms", Some(&bad)).is_none());
        assert_eq!(
            fields(&v),
            [
                "terms.kind",
                "terms.places",
                "terms.term_months",
                "terms.allowance.amount_minor",
                "terms.start_from",
                "terms.start_until"
            ]
        );
        let mut two_currencies = terms();
        two_currencies.travel_cap = Some(PbMoney { amount_minor: 5, currency: "EUR".into() });
        let mut v = Violations::new();
        offer_terms(&mut v, "terms", Some(&two_currencies));
        assert_eq!(fields(&v), ["terms.travel_cap.currency"]);
        let mut v = Violations::new();
        let mut places = terms();
        places.places = PLACES_MAX + 1;
        assert!(offer_terms(&mut v, "terms", Some(&places)).is_none());
        assert!(offer_terms(&mut v, "terms", None).is_none());
        assert!(money(&mut v, "amount", Some(&PbMoney { amount_minor: 1, currency: "XX".into() }), false).is_none());
        assert!(money(&mut v, "amount", None, true).is_none());
        assert_eq!(fields(&v), ["terms.places", "terms", "amount.currency", "amount"]);
    }

    #[test]
    fn every_kind_and_outcome_maps() {
        let mut v = Violations::new();
        for (k, want) in [
            (pb::HostKind::PublicEmployer, HostKind::PublicEmployer),
            (pb::HostKind::PrivateEmployer, HostKind::PrivateEmployer),
            (pb::HostKind::ResearchInstitute, HostKind::ResearchInstitute),
            (pb::HostKind::University, HostKind::University),
        ] {
            let mut d = details();
            d.kind = k as i32;
            assert_eq!(host_details(&mut v, "details", Some(&d)).map(|d| d.kind), Some(want));
        }
        for (k, want) in [
            (pb::PlacementKind::GraduatePlacement, Kind::GraduatePlacement),
            (pb::PlacementKind::ScientificAssignment, Kind::ScientificAssignment),
        ] {
            let mut t = terms();
            t.kind = k as i32;
            assert_eq!(offer_terms(&mut v, "terms", Some(&t)).map(|t| t.terms.kind), Some(want));
        }
        let stage = pb::OutcomeStage::Completion as i32;
        for (k, want) in [
            (pb::OutcomeKind::EmployedInMoldova, Outcome::EmployedInMoldova),
            (pb::OutcomeKind::ContinuedResearch, Outcome::ContinuedResearch),
            (pb::OutcomeKind::ReturnedAbroad, Outcome::ReturnedAbroad),
        ] {
            assert_eq!(outcome(&mut v, stage, k as i32, "").map(|(_, o)| o), Some(want));
        }
        assert!(v.is_empty(), "{v}");
    }

    #[test]
    fn ids_and_texts_name_their_field() {
        let mut v = Violations::new();
        let id = uuid::Uuid::from_u128(7);
        assert_eq!(self::id(&mut v, "offer_id", &id.to_string()), Some(id));
        assert_eq!(text(&mut v, "kind", " flight ", 10), Some("flight".into()));
        assert!(v.is_empty());
        assert_eq!(self::id(&mut v, "offer_id", "nope"), None);
        assert_eq!(text(&mut v, "kind", "", 10), None);
        assert_eq!(text(&mut v, "kind2", "elevenchars", 10), None);
        assert_eq!(fields(&v), ["offer_id", "kind", "kind2"]);
    }

    #[test]
    fn languages_are_tags_at_most_ten_and_may_be_none() {
        let mut v = Violations::new();
        assert_eq!(languages(&mut v, "languages", &[]), Some(vec![]));
        let eleven: Vec<String> = (0..11).map(|i| format!("x{i}")).collect();
        assert_eq!(languages(&mut v, "languages", &eleven), None);
        assert_eq!(languages(&mut v, "l", &["ro".into(), "1!".into()]), None);
        assert_eq!(fields(&v), ["languages", "l[1]"]);
    }

    #[test]
    fn months_notes_and_outcomes() {
        let mut v = Violations::new();
        assert_eq!(month(&mut v, "month", 1), Some(1));
        assert_eq!(month(&mut v, "month", 36), Some(36));
        assert!(v.is_empty());
        assert_eq!(month(&mut v, "month", 0), None);
        assert_eq!(month(&mut v, "month", 37), None);
        assert_eq!(note(&mut v, "reason", ""), None);
        assert_eq!(
            outcome(&mut v, pb::OutcomeStage::Completion as i32, pb::OutcomeKind::ReturnedAbroad as i32, ""),
            Some((OutcomeStage::Completion, Outcome::ReturnedAbroad))
        );
        assert_eq!(
            outcome(&mut v, pb::OutcomeStage::FollowUp as i32, pb::OutcomeKind::Other as i32, "studying"),
            Some((OutcomeStage::FollowUp, Outcome::Other("studying".into())))
        );
        assert!(outcome(&mut v, 0, pb::OutcomeKind::Other as i32, "").is_none());
        assert_eq!(fields(&v), ["month", "month", "reason", "stage", "note"]);
    }
}
