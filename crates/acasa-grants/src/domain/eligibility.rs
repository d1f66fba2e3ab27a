//! Eligibility: a person's facts, from this service's projection of the
//! registry's events, against a call's rules. Pure; the first rule that
//! fails names the refusal.
//!
//! The rules, in the order they are checked:
//!
//! 1. `PERSON_UNKNOWN`, `PERSON_ERASED`, `PERSON_MERGED`: the registry knows
//!    the person and they are active (merged: apply with the survivor).
//! 2. `PROGRAMME_CONSENT`: the person consents to programme participation.
//! 3. `AGE`: their age in whole years on the assessment day is within the
//!    call's range, both ends included (18 to 35: from the 18th birthday to
//!    the day before the 36th). Someone born on 29 February turns a year
//!    older on 1 March in a common year. No birth date: fails.
//! 4. `SEX`: their sex is one the call takes (none listed: any). Not stated:
//!    fails when the call lists any.
//! 5. `RURAL`: the call is for rural localities only and theirs is known to
//!    be rural. The registry records a locality's name, not its kind: the
//!    projection classifies it (unknown: fails).
//! 6. `CATEGORY`: they are in at least one of the call's categories (none
//!    listed: any).
//! 7. `DISTRICT`: their district (the return district if a return is
//!    recorded, else the home district) is one of the call's (none listed:
//!    every district). Compared folded (case and diacritics).
//!
//! Every rule holds together with the others: a call for "young *or* women"
//! entrepreneurs says so through the registry categories (youth
//! entrepreneur, woman entrepreneur), not through age and sex at once.

use std::fmt;

use acasa_domain::formats;
use chrono::{Datelike, NaiveDate};
use uuid::Uuid;

use super::{Category, Sex};

/// An age range in whole years, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AgeRange {
    /// The youngest age taken.
    pub min: u32,
    /// The oldest age taken.
    pub max: u32,
}

/// A call's eligibility rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rules {
    /// The age range, if any.
    pub age: Option<AgeRange>,
    /// The sexes taken (empty: any).
    pub sexes: Vec<Sex>,
    /// Rural localities only.
    pub rural_only: bool,
    /// The registry categories taken, any one of them (empty: any).
    pub categories: Vec<Category>,
}

/// Where the registry's person stands, as far as this service has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Standing {
    /// Not (yet) seen in the registry's log.
    #[default]
    Unknown,
    /// Erased.
    Erased,
    /// Merged into the survivor.
    Merged(Uuid),
    /// Active.
    Active,
}

/// What this service's projection of the registry knows of a person.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PersonFacts {
    /// Standing.
    pub standing: Standing,
    /// Consents to programme participation now.
    pub programme_consent: bool,
    /// Date of birth.
    pub birth_date: Option<NaiveDate>,
    /// Sex, if stated.
    pub sex: Option<Sex>,
    /// The locality is rural (`None`: not known).
    pub rural: Option<bool>,
    /// Registry categories.
    pub categories: Vec<Category>,
    /// District (the return district, else the home district).
    pub district: Option<String>,
}

/// The rule an applicant fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Not in the registry (as far as this service has seen).
    PersonUnknown,
    /// Erased.
    PersonErased,
    /// Merged into the survivor.
    PersonMerged(Uuid),
    /// No programme consent.
    ProgrammeConsent,
    /// Age outside the range, or no birth date.
    Age,
    /// A sex the call does not take, or none stated.
    Sex,
    /// Not known to live in a rural locality.
    Rural,
    /// In none of the call's categories.
    Category,
    /// A district outside the call's, or none.
    District,
}

impl Rule {
    /// The rule's stable name.
    pub fn name(self) -> &'static str {
        match self {
            Self::PersonUnknown => "PERSON_UNKNOWN",
            Self::PersonErased => "PERSON_ERASED",
            Self::PersonMerged(_) => "PERSON_MERGED",
            Self::ProgrammeConsent => "PROGRAMME_CONSENT",
            Self::Age => "AGE",
            Self::Sex => "SEX",
            Self::Rural => "RURAL",
            Self::Category => "CATEGORY",
            Self::District => "DISTRICT",
        }
    }

    /// Whether the rule is about the person's standing or consent: without
    /// them nothing about the person may be recorded at all, so an
    /// application is refused rather than recorded as ineligible.
    pub fn bars_recording(self) -> bool {
        matches!(self, Self::PersonUnknown | Self::PersonErased | Self::PersonMerged(_) | Self::ProgrammeConsent)
    }

    /// The rule of a stable name (as stored in events).
    pub fn from_name(name: &str, survivor: Uuid) -> Option<Self> {
        Some(match name {
            "PERSON_UNKNOWN" => Self::PersonUnknown,
            "PERSON_ERASED" => Self::PersonErased,
            "PERSON_MERGED" => Self::PersonMerged(survivor),
            "PROGRAMME_CONSENT" => Self::ProgrammeConsent,
            "AGE" => Self::Age,
            "SEX" => Self::Sex,
            "RURAL" => Self::Rural,
            "CATEGORY" => Self::Category,
            "DISTRICT" => Self::District,
            _ => return None,
        })
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PersonUnknown => {
                f.write_str("the person is not in the registry (or not yet seen here: pass min_registry_position)")
            }
            Self::PersonErased => f.write_str("the person was erased"),
            Self::PersonMerged(survivor) => write!(f, "the person was merged into {survivor}: apply with the survivor"),
            Self::ProgrammeConsent => f.write_str("the person has not consented to programme participation"),
            Self::Age => {
                f.write_str("the applicant's age is outside the call's age range (or the birth date is unknown)")
            }
            Self::Sex => f.write_str("the call does not take applicants of this sex (or it is not stated)"),
            Self::Rural => f.write_str("the call is for rural localities and the applicant's is not known to be rural"),
            Self::Category => f.write_str("the applicant is in none of the call's registry categories"),
            Self::District => f.write_str("the applicant's district is not one of the call's"),
        }
    }
}

/// Age in whole years on `on`; `None` if `on` is before the birth.
pub fn age_on(born: NaiveDate, on: NaiveDate) -> Option<u32> {
    if on < born {
        return None;
    }
    let birthday_passed = (on.month(), on.day()) >= (born.month(), born.day());
    let years = on.year() - born.year() - i32::from(!birthday_passed);
    u32::try_from(years).ok()
}

/// Checks `person` against `rules` and the call's `districts` on `on`: the
/// first rule that fails.
pub fn check(rules: &Rules, districts: &[String], person: &PersonFacts, on: NaiveDate) -> Result<(), Rule> {
    match person.standing {
        Standing::Unknown => return Err(Rule::PersonUnknown),
        Standing::Erased => return Err(Rule::PersonErased),
        Standing::Merged(survivor) => return Err(Rule::PersonMerged(survivor)),
        Standing::Active => {}
    }
    if !person.programme_consent {
        return Err(Rule::ProgrammeConsent);
    }
    if let Some(range) = rules.age {
        let age = person.birth_date.and_then(|b| age_on(b, on));
        if !age.is_some_and(|a| (range.min..=range.max).contains(&a)) {
            return Err(Rule::Age);
        }
    }
    if !rules.sexes.is_empty() && !person.sex.is_some_and(|s| rules.sexes.contains(&s)) {
        return Err(Rule::Sex);
    }
    if rules.rural_only && person.rural != Some(true) {
        return Err(Rule::Rural);
    }
    if !rules.categories.is_empty() && !person.categories.iter().any(|c| rules.categories.contains(c)) {
        return Err(Rule::Category);
    }
    if !districts.is_empty() {
        let theirs = person.district.as_deref().map(formats::fold);
        if !theirs.is_some_and(|d| districts.iter().any(|c| formats::fold(c) == d)) {
            return Err(Rule::District);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    /// 18 to 35, women, rural, youth or woman entrepreneurs.
    fn rules() -> Rules {
        Rules {
            age: Some(AgeRange { min: 18, max: 35 }),
            sexes: vec![Sex::Female],
            rural_only: true,
            categories: vec![Category::YouthEntrepreneur, Category::WomanEntrepreneur],
        }
    }

    fn districts() -> Vec<String> {
        vec!["Cahul".into(), "Ungheni".into(), "Strășeni".into()]
    }

    /// Born 2000-06-15: 26 on 2027-03-01.
    fn person() -> PersonFacts {
        PersonFacts {
            standing: Standing::Active,
            programme_consent: true,
            birth_date: Some(d(2000, 6, 15)),
            sex: Some(Sex::Female),
            rural: Some(true),
            categories: vec![Category::Returnee, Category::WomanEntrepreneur],
            district: Some("Cahul".into()),
        }
    }

    fn on() -> NaiveDate {
        d(2027, 3, 1)
    }

    fn fails(f: impl FnOnce(&mut PersonFacts)) -> Result<(), Rule> {
        let mut p = person();
        f(&mut p);
        check(&rules(), &districts(), &p, on())
    }

    #[test]
    fn an_eligible_person_passes_every_rule() {
        assert_eq!(check(&rules(), &districts(), &person(), on()), Ok(()));
        // No rules at all: anyone active with consent.
        let anyone = PersonFacts { standing: Standing::Active, programme_consent: true, ..PersonFacts::default() };
        assert_eq!(check(&Rules::default(), &[], &anyone, on()), Ok(()));
    }

    #[test]
    fn the_person_must_be_known_active_and_consenting() {
        let survivor = Uuid::from_u128(9);
        assert_eq!(fails(|p| p.standing = Standing::Unknown), Err(Rule::PersonUnknown));
        assert_eq!(fails(|p| p.standing = Standing::Erased), Err(Rule::PersonErased));
        assert_eq!(fails(|p| p.standing = Standing::Merged(survivor)), Err(Rule::PersonMerged(survivor)));
        assert_eq!(fails(|p| p.programme_consent = false), Err(Rule::ProgrammeConsent));
        // Standing comes before consent, consent before everything else.
        let nothing = PersonFacts::default();
        assert_eq!(check(&rules(), &districts(), &nothing, on()), Err(Rule::PersonUnknown));
        assert_eq!(
            fails(|p| {
                p.programme_consent = false;
                p.birth_date = None;
            }),
            Err(Rule::ProgrammeConsent)
        );
    }

    #[test]
    fn age_is_in_whole_years_both_ends_of_the_range_included() {
        // 18th birthday on the assessment day: 18, taken.
        assert_eq!(fails(|p| p.birth_date = Some(d(2009, 3, 1))), Ok(()));
        // One day short of 18.
        assert_eq!(fails(|p| p.birth_date = Some(d(2009, 3, 2))), Err(Rule::Age));
        // The day before the 36th birthday: still 35, taken.
        assert_eq!(fails(|p| p.birth_date = Some(d(1991, 3, 2))), Ok(()));
        // The 36th birthday: 36, too old.
        assert_eq!(fails(|p| p.birth_date = Some(d(1991, 3, 1))), Err(Rule::Age));
        assert_eq!(fails(|p| p.birth_date = None), Err(Rule::Age));
        // Born after the assessment day: no age, refused.
        assert_eq!(fails(|p| p.birth_date = Some(d(2028, 1, 1))), Err(Rule::Age));
        // Without an age rule the birth date does not matter.
        let mut no_age = rules();
        no_age.age = None;
        let mut p = person();
        p.birth_date = None;
        assert_eq!(check(&no_age, &districts(), &p, on()), Ok(()));
    }

    #[test]
    fn age_counts_birthdays() {
        assert_eq!(age_on(d(2000, 6, 15), d(2000, 6, 15)), Some(0));
        assert_eq!(age_on(d(2000, 6, 15), d(2027, 6, 14)), Some(26));
        assert_eq!(age_on(d(2000, 6, 15), d(2027, 6, 15)), Some(27));
        assert_eq!(age_on(d(2000, 6, 15), d(2027, 7, 1)), Some(27));
        assert_eq!(age_on(d(2000, 6, 15), d(2027, 5, 20)), Some(26));
        assert_eq!(age_on(d(2000, 6, 15), d(2000, 6, 14)), None);
        // 29 February: a year older on 1 March in a common year, on 29 February in a leap year.
        assert_eq!(age_on(d(2004, 2, 29), d(2022, 2, 28)), Some(17));
        assert_eq!(age_on(d(2004, 2, 29), d(2022, 3, 1)), Some(18));
        assert_eq!(age_on(d(2004, 2, 29), d(2024, 2, 29)), Some(20));
    }

    #[test]
    fn sex_must_be_one_the_call_takes() {
        assert_eq!(fails(|p| p.sex = Some(Sex::Male)), Err(Rule::Sex));
        assert_eq!(fails(|p| p.sex = None), Err(Rule::Sex));
        let mut any = rules();
        any.sexes.clear();
        let mut p = person();
        p.sex = None;
        assert_eq!(check(&any, &districts(), &p, on()), Ok(()));
        any.sexes = vec![Sex::Male, Sex::Female];
        p.sex = Some(Sex::Male);
        assert_eq!(check(&any, &districts(), &p, on()), Ok(()));
    }

    #[test]
    fn rural_calls_take_only_localities_known_to_be_rural() {
        assert_eq!(fails(|p| p.rural = Some(false)), Err(Rule::Rural));
        assert_eq!(fails(|p| p.rural = None), Err(Rule::Rural));
        let mut anywhere = rules();
        anywhere.rural_only = false;
        let mut p = person();
        p.rural = Some(false);
        assert_eq!(check(&anywhere, &districts(), &p, on()), Ok(()));
    }

    #[test]
    fn any_one_of_the_calls_categories_will_do() {
        assert_eq!(fails(|p| p.categories = vec![Category::Returnee]), Err(Rule::Category));
        assert_eq!(fails(|p| p.categories.clear()), Err(Rule::Category));
        assert_eq!(fails(|p| p.categories = vec![Category::YouthEntrepreneur]), Ok(()));
        let mut any = rules();
        any.categories.clear();
        let mut p = person();
        p.categories.clear();
        assert_eq!(check(&any, &districts(), &p, on()), Ok(()));
    }

    #[test]
    fn the_district_must_be_the_calls_compared_folded() {
        assert_eq!(fails(|p| p.district = Some("Bălți".into())), Err(Rule::District));
        assert_eq!(fails(|p| p.district = None), Err(Rule::District));
        assert_eq!(fails(|p| p.district = Some("straseni".into())), Ok(()));
        assert_eq!(fails(|p| p.district = Some("UNGHENI".into())), Ok(()));
        let mut p = person();
        p.district = None;
        assert_eq!(check(&rules(), &[], &p, on()), Ok(()), "no districts: every district");
    }

    #[test]
    fn the_first_failing_rule_names_the_refusal() {
        let everything_wrong = |p: &mut PersonFacts| {
            p.birth_date = Some(d(1950, 1, 1));
            p.sex = Some(Sex::Male);
            p.rural = Some(false);
            p.categories.clear();
            p.district = None;
        };
        assert_eq!(fails(everything_wrong), Err(Rule::Age));
        assert_eq!(
            fails(|p| {
                everything_wrong(p);
                p.birth_date = Some(d(2000, 1, 1));
            }),
            Err(Rule::Sex)
        );
        assert_eq!(
            fails(|p| {
                everything_wrong(p);
                p.birth_date = Some(d(2000, 1, 1));
                p.sex = Some(Sex::Female);
            }),
            Err(Rule::Rural)
        );
        assert_eq!(
            fails(|p| {
                everything_wrong(p);
                p.birth_date = Some(d(2000, 1, 1));
                p.sex = Some(Sex::Female);
                p.rural = Some(true);
            }),
            Err(Rule::Category)
        );
    }

    #[test]
    fn rules_have_stable_names_that_read_back() {
        let survivor = Uuid::from_u128(3);
        let all = [
            Rule::PersonUnknown,
            Rule::PersonErased,
            Rule::PersonMerged(survivor),
            Rule::ProgrammeConsent,
            Rule::Age,
            Rule::Sex,
            Rule::Rural,
            Rule::Category,
            Rule::District,
        ];
        let names: Vec<&str> = all.iter().map(|r| r.name()).collect();
        assert_eq!(
            names,
            [
                "PERSON_UNKNOWN",
                "PERSON_ERASED",
                "PERSON_MERGED",
                "PROGRAMME_CONSENT",
                "AGE",
                "SEX",
                "RURAL",
                "CATEGORY",
                "DISTRICT"
            ]
        );
        for r in all {
            assert_eq!(Rule::from_name(r.name(), survivor), Some(r));
            assert!(!r.to_string().is_empty());
        }
        assert_eq!(Rule::from_name("NOPE", survivor), None);
        assert!(Rule::PersonMerged(survivor).to_string().contains(&survivor.to_string()));
        let barring: Vec<Rule> = all.iter().copied().filter(|r| r.bars_recording()).collect();
        assert_eq!(barring, all[..4]);
    }
}
