//! Values the domain's tests share.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::call::NewCall;
use super::eligibility::{AgeRange, PersonFacts, Rules, Standing};
use super::scoring::{Criterion, Evaluation};
use super::training::SessionFacts;
use super::{Audience, Category, Money, Sex, Stamp};

pub fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

pub fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

pub fn stamp() -> Stamp {
    Stamp::new("caseworker-1", at())
}

pub fn by(who: &str) -> Stamp {
    Stamp::new(who, at())
}

pub fn eur(minor: i64) -> Money {
    Money::new(minor, "EUR")
}

/// Five days, 2027-05-03 to 2027-05-07; 20 seats; 80 %.
pub fn session(audience: Audience) -> SessionFacts {
    SessionFacts {
        id: Uuid::from_u128(0x5e55),
        audience,
        code: "ANTR-2027-03".into(),
        days: (3..=7).map(|day| d(2027, 5, day)).collect(),
        capacity: 20,
        threshold_percent: 80,
        cancelled: false,
    }
}

/// 5,000.00 EUR, 2,000.00 cap, 2027-02-01 to 2027-03-31, Cahul and Ungheni,
/// 30 training places, 18 to 35, women or youth entrepreneurs; viability ×3,
/// jobs ×1 on 0–10, two evaluators, pass 6.00.
pub fn new_call() -> NewCall {
    NewCall {
        id: Uuid::from_u128(0xca11),
        title: "Start-up grants 2027".into(),
        budget: eur(500_000),
        cap: eur(200_000),
        opens_on: d(2027, 2, 1),
        closes_on: d(2027, 3, 31),
        districts: vec!["cahul".into(), "ungheni".into()],
        training_places: 30,
        eligibility: Rules {
            age: Some(AgeRange { min: 18, max: 35 }),
            sexes: Vec::new(),
            rural_only: false,
            categories: vec![Category::YouthEntrepreneur, Category::WomanEntrepreneur],
        },
        evaluation: Evaluation {
            criteria: vec![
                Criterion { key: "viability".into(), title: "Viability".into(), weight: 3 },
                Criterion { key: "jobs".into(), title: "Jobs".into(), weight: 1 },
            ],
            scale_max: 10,
            min_evaluators: 2,
            pass_score: 600,
        },
    }
}

/// A 26-year-old woman entrepreneur in Cahul who consents.
pub fn person() -> PersonFacts {
    PersonFacts {
        standing: Standing::Active,
        programme_consent: true,
        birth_date: Some(d(2000, 6, 15)),
        sex: Some(Sex::Female),
        rural: Some(true),
        categories: vec![Category::WomanEntrepreneur],
        district: Some("Cahul".into()),
    }
}
