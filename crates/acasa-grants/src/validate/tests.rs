//! Every bad field is named by its path in the request.

use super::*;

fn fields(v: &Violations) -> Vec<String> {
    v.iter().map(|f| f.field.clone()).collect()
}

fn eur(amount_minor: i64) -> Option<PbMoney> {
    Some(PbMoney { amount_minor, currency: "EUR".into() })
}

fn day(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

fn terms() -> pb::CallTerms {
    pb::CallTerms {
        title: " Start-up grants 2027 ".into(),
        budget: eur(20_200_000),
        cap: eur(200_000),
        opens_on: day(2027, 2, 1),
        closes_on: day(2027, 3, 31),
        districts: vec!["Cahul".into(), "cahul".into(), "Strășeni".into()],
        training_places: 540,
        eligibility: Some(pb::EligibilityRules {
            age: Some(pb::AgeRange { min_age: 18, max_age: 35 }),
            sexes: vec![reg::Sex::Female as i32, reg::Sex::Female as i32],
            rural_only: true,
            categories: vec![reg::Category::YouthEntrepreneur as i32, reg::Category::WomanEntrepreneur as i32],
        }),
        evaluation: Some(pb::EvaluationRules {
            criteria: vec![
                pb::Criterion { key: "viability".into(), title: "Viability".into(), weight: 3 },
                pb::Criterion { key: "jobs_created".into(), title: "Jobs".into(), weight: 1 },
            ],
            scale_max: 10,
            min_evaluators: 2,
            pass_score: 600,
        }),
    }
}

#[test]
fn good_call_terms_become_a_call() {
    let mut v = Violations::new();
    let call = call_terms(&mut v, "terms", Some(&terms())).unwrap().with_id(Uuid::from_u128(7));
    assert!(v.is_empty(), "{v}");
    assert_eq!(call.id, Uuid::from_u128(7));
    assert_eq!(call.title, "Start-up grants 2027");
    assert_eq!(call.districts, ["cahul", "straseni"], "folded, none twice");
    assert_eq!(call.eligibility.age, Some(AgeRange { min: 18, max: 35 }));
    assert_eq!(call.eligibility.sexes, [Sex::Female]);
    assert_eq!(call.eligibility.categories, [Category::YouthEntrepreneur, Category::WomanEntrepreneur]);
    assert!(call.eligibility.rural_only);
    assert_eq!(call.evaluation.criteria.len(), 2);
    assert_eq!((call.evaluation.scale_max, call.evaluation.min_evaluators, call.evaluation.pass_score), (10, 2, 600));
    // No eligibility at all: anyone; no age: any age.
    let mut open = terms();
    open.eligibility = None;
    assert_eq!(
        call_terms(&mut v, "terms", Some(&open)).map(|c| c.with_id(Uuid::nil()).eligibility),
        Some(Rules::default())
    );
    let mut any_age = terms();
    any_age.eligibility.as_mut().unwrap().age = None;
    assert_eq!(call_terms(&mut v, "terms", Some(&any_age)).unwrap().with_id(Uuid::nil()).eligibility.age, None);
    assert!(v.is_empty(), "{v}");
}

#[test]
fn bad_call_terms_name_every_field() {
    let mut bad = terms();
    bad.title.clear();
    bad.budget = eur(0);
    bad.cap = Some(PbMoney { amount_minor: 1, currency: "XXX".into() });
    bad.opens_on = day(2027, 2, 30);
    bad.closes_on = None;
    bad.districts = vec!["ok".into(), "x".repeat(101)];
    bad.training_places = 0;
    let e = bad.eligibility.as_mut().unwrap();
    e.age = Some(pb::AgeRange { min_age: -1, max_age: 131 });
    e.sexes = vec![0, 9];
    e.categories = vec![0];
    let r = bad.evaluation.as_mut().unwrap();
    r.criteria = vec![
        pb::Criterion { key: "Viability".into(), title: String::new(), weight: 0 },
        pb::Criterion { key: "jobs".into(), title: "Jobs".into(), weight: 101 },
        pb::Criterion { key: "jobs".into(), title: "Jobs".into(), weight: 1 },
    ];
    r.scale_max = 0;
    r.min_evaluators = 21;
    r.pass_score = -1;
    let mut v = Violations::new();
    assert!(call_terms(&mut v, "terms", Some(&bad)).is_none());
    assert_eq!(
        fields(&v),
        [
            "terms.title",
            "terms.budget.amount_minor",
            "terms.cap.currency",
            "terms.opens_on",
            "terms.closes_on",
            "terms.districts[1]",
            "terms.training_places",
            "terms.eligibility.age.min_age",
            "terms.eligibility.age.max_age",
            "terms.eligibility.sexes[0]",
            "terms.eligibility.sexes[1]",
            "terms.eligibility.categories[0]",
            "terms.evaluation.criteria[0].key",
            "terms.evaluation.criteria[0].title",
            "terms.evaluation.criteria[0].weight",
            "terms.evaluation.criteria[1].weight",
            "terms.evaluation.criteria[2].key",
            "terms.evaluation.scale_max",
            "terms.evaluation.min_evaluators",
            "terms.evaluation.pass_score",
        ]
    );
}

#[test]
fn call_terms_are_checked_across_fields() {
    let check = |f: fn(&mut pb::CallTerms)| {
        let mut t = terms();
        f(&mut t);
        let mut v = Violations::new();
        let out = call_terms(&mut v, "terms", Some(&t));
        assert_eq!(out.is_none(), !v.is_empty());
        fields(&v)
    };
    assert_eq!(check(|t| t.cap = Some(PbMoney { amount_minor: 1, currency: "MDL".into() })), ["terms.cap.currency"]);
    assert_eq!(check(|t| t.cap = eur(20_200_001)), ["terms.cap.amount_minor"]);
    assert_eq!(check(|t| t.cap = eur(20_200_000)), Vec::<String>::new(), "the cap may be the budget");
    assert_eq!(check(|t| t.closes_on = day(2027, 1, 31)), ["terms.closes_on"]);
    assert_eq!(check(|t| t.closes_on = day(2027, 2, 1)), Vec::<String>::new(), "a one-day call");
    assert_eq!(
        check(|t| t.eligibility.as_mut().unwrap().age = Some(pb::AgeRange { min_age: 36, max_age: 35 })),
        ["terms.eligibility.age.max_age"]
    );
    assert_eq!(
        check(|t| t.eligibility.as_mut().unwrap().age = Some(pb::AgeRange { min_age: 35, max_age: 35 })),
        Vec::<String>::new(),
        "a one-year range"
    );
    assert_eq!(check(|t| t.training_places = 10_001), ["terms.training_places"]);
    let mut twice = terms();
    twice.eligibility.as_mut().unwrap().categories =
        vec![reg::Category::Returnee as i32, reg::Category::Returnee as i32];
    let mut v = Violations::new();
    let call = call_terms(&mut v, "terms", Some(&twice)).unwrap().with_id(Uuid::nil());
    assert_eq!(call.eligibility.categories, [Category::Returnee], "none twice");
    assert_eq!(check(|t| t.districts = vec!["d".into(); 41]), ["terms.districts"]);
    assert_eq!(check(|t| t.evaluation = None), ["terms.evaluation"]);
    assert_eq!(check(|t| t.evaluation.as_mut().unwrap().criteria.clear()), ["terms.evaluation.criteria"]);
    assert_eq!(
        check(|t| {
            let c = t.evaluation.as_ref().unwrap().criteria[0].clone();
            t.evaluation.as_mut().unwrap().criteria =
                (0..21).map(|i| pb::Criterion { key: format!("k{i}"), ..c.clone() }).collect();
        }),
        ["terms.evaluation.criteria"]
    );
    assert_eq!(
        check(|t| {
            let c = t.evaluation.as_ref().unwrap().criteria[0].clone();
            t.evaluation.as_mut().unwrap().criteria =
                (0..20).map(|i| pb::Criterion { key: format!("k{i}"), ..c.clone() }).collect();
        }),
        Vec::<String>::new(),
        "twenty criteria"
    );
    assert_eq!(check(|t| t.evaluation.as_mut().unwrap().pass_score = 1_001), ["terms.evaluation.pass_score"]);
    assert_eq!(check(|t| t.evaluation.as_mut().unwrap().pass_score = 1_000), Vec::<String>::new());
    let mut v = Violations::new();
    assert!(call_terms(&mut v, "terms", None).is_none());
    assert_eq!(fields(&v), ["terms"]);
}

#[test]
fn call_terms_are_none_only_when_they_are_bad() {
    // Violations of other fields found before do not make good terms bad.
    let mut v = Violations::new();
    v.add("request_id", "is required");
    assert!(call_terms(&mut v, "terms", Some(&terms())).is_some());
}

fn course() -> pb::CourseDetails {
    pb::CourseDetails {
        title: "Start your business".into(),
        topics: vec!["Business planning".into(), "business planning".into(), "Accounting".into()],
        language: "RO".into(),
        hours: 40,
        completion_threshold_percent: 0,
    }
}

#[test]
fn course_details_default_to_an_80_percent_threshold() {
    let mut v = Violations::new();
    let c = course_details(&mut v, "details", Some(&course())).unwrap();
    assert!(v.is_empty(), "{v}");
    assert_eq!((c.threshold_percent, c.language.as_str(), c.topics.len()), (80, "ro", 2));
    let mut own = course();
    own.completion_threshold_percent = 100;
    assert_eq!(course_details(&mut v, "details", Some(&own)).map(|c| c.threshold_percent), Some(100));
    let mut bad = course();
    bad.title.clear();
    bad.topics = vec![String::new()];
    bad.language = "english".into();
    bad.hours = 0;
    bad.completion_threshold_percent = 101;
    assert!(course_details(&mut v, "details", Some(&bad)).is_none());
    assert!(course_details(&mut v, "details", None).is_none());
    assert_eq!(
        fields(&v),
        [
            "details.title",
            "details.topics[0]",
            "details.language",
            "details.hours",
            "details.completion_threshold_percent",
            "details"
        ]
    );
}

#[test]
fn audiences_codes_capacities_and_thresholds() {
    let mut v = Violations::new();
    assert_eq!(audience(&mut v, "audience", pb::Audience::Entrepreneurs as i32), Some(Audience::Entrepreneurs));
    assert_eq!(audience(&mut v, "audience", pb::Audience::Officials as i32), Some(Audience::Officials));
    assert_eq!(session_code(&mut v, "code", " antr-2027-03 "), Some("ANTR-2027-03".into()));
    assert_eq!(session_code(&mut v, "code", "A1B"), Some("A1B".into()));
    assert_eq!(capacity(&mut v, "capacity", 1), Some(1));
    assert_eq!(capacity(&mut v, "capacity", 999), Some(999));
    assert_eq!(threshold_override(&mut v, "t", 0), Some(None));
    assert_eq!(threshold_override(&mut v, "t", 100), Some(Some(100)));
    assert!(v.is_empty(), "{v}");
    assert_eq!(audience(&mut v, "audience", 0), None);
    for bad in ["AB", "-AB1", "AB1-", "A_B1", &"A".repeat(25), "ĂBC"] {
        assert_eq!(session_code(&mut v, "code", bad), None, "{bad}");
    }
    assert_eq!(capacity(&mut v, "capacity", 0), None);
    assert_eq!(capacity(&mut v, "capacity", 1000), None);
    assert_eq!(threshold_override(&mut v, "t", 101), None);
    assert_eq!(threshold_override(&mut v, "t", -1), None);
    assert_eq!(
        fields(&v),
        ["audience", "code", "code", "code", "code", "code", "code", "capacity", "capacity", "t", "t"]
    );
}

#[test]
fn session_days_are_sorted_and_each_once() {
    let details = pb::SessionDetails {
        days: vec![day(2027, 5, 4).unwrap(), day(2027, 5, 3).unwrap()],
        venue: "Casa de Cultură".into(),
        district: "Cahul".into(),
        trainer: "Ana Rusu".into(),
    };
    let mut v = Violations::new();
    let d = session_details(&mut v, "details", Some(&details)).unwrap();
    assert!(v.is_empty(), "{v}");
    assert_eq!(d.days, [NaiveDate::from_ymd_opt(2027, 5, 3).unwrap(), NaiveDate::from_ymd_opt(2027, 5, 4).unwrap()]);
    let mut bad = details.clone();
    bad.days = vec![day(2027, 5, 3).unwrap(), day(2027, 5, 3).unwrap(), day(2027, 2, 30).unwrap()];
    bad.venue.clear();
    bad.district.clear();
    bad.trainer = "t".repeat(201);
    assert!(session_details(&mut v, "details", Some(&bad)).is_none());
    let mut none = details.clone();
    none.days.clear();
    assert!(session_details(&mut v, "details", Some(&none)).is_none());
    let mut sixty = details.clone();
    sixty.days = (0..60).map(|i| Date { year: 2027, month: 1 + i / 28, day: 1 + i % 28 }).collect();
    assert_eq!(session_details(&mut v, "details", Some(&sixty)).map(|d| d.days.len()), Some(60));
    let mut many = details;
    many.days = (0..61).map(|i| Date { year: 2027, month: 1 + i / 28, day: 1 + i % 28 }).collect();
    assert!(session_details(&mut v, "details", Some(&many)).is_none());
    assert!(session_details(&mut v, "details", None).is_none());
    assert_eq!(
        fields(&v),
        [
            "details.days[1]",
            "details.days[2]",
            "details.venue",
            "details.district",
            "details.trainer",
            "details.days",
            "details.days",
            "details"
        ]
    );
}

fn official() -> pb::OfficialDetails {
    pb::OfficialDetails {
        kind: pb::OfficialKind::SmeSupportStaff as i32,
        given_name: "Elena".into(),
        family_name: "Ciobanu".into(),
        sex: reg::Sex::Unspecified as i32,
        organisation: "ODA".into(),
        role: "Business advisor".into(),
        district: "Chișinău".into(),
        email: String::new(),
        phone: String::new(),
    }
}

#[test]
fn official_details_with_optional_contacts() {
    let mut v = Violations::new();
    let o = official_details(&mut v, "details", Some(&official())).unwrap();
    assert!(v.is_empty(), "{v}");
    assert_eq!((o.kind, o.sex, o.email.as_str(), o.phone.as_str()), (OfficialKind::SmeSupportStaff, None, "", ""));
    let mut local = official();
    local.kind = pb::OfficialKind::LocalOfficial as i32;
    local.sex = reg::Sex::Male as i32;
    local.email = "e@primaria.md".into();
    local.phone = "+37329912345".into();
    let o = official_details(&mut v, "details", Some(&local)).unwrap();
    assert_eq!((o.kind, o.sex), (OfficialKind::LocalOfficial, Some(Sex::Male)));
    let mut bad = official();
    bad.kind = 0;
    bad.given_name.clear();
    bad.family_name = "f".repeat(101);
    bad.sex = 7;
    bad.organisation.clear();
    bad.role.clear();
    bad.district.clear();
    bad.email = "nope".into();
    bad.phone = "0691".into();
    assert!(official_details(&mut v, "details", Some(&bad)).is_none());
    assert!(official_details(&mut v, "details", None).is_none());
    assert_eq!(
        fields(&v),
        [
            "details.kind",
            "details.given_name",
            "details.family_name",
            "details.sex",
            "details.organisation",
            "details.role",
            "details.district",
            "details.email",
            "details.phone",
            "details"
        ]
    );
}

#[test]
fn trainees_and_registers() {
    let a = Uuid::from_u128(1);
    let b = Uuid::from_u128(2);
    let mut v = Violations::new();
    assert_eq!(trainee(&mut v, Some(&a.to_string()), None), Some(Trainee::Application(a)));
    assert_eq!(trainee(&mut v, None, Some(&b.to_string())), Some(Trainee::Official(b)));
    assert_eq!(register(&mut v, &[a.to_string()], &[b.to_string()]), Some(vec![(a, true), (b, false)]));
    assert_eq!(register(&mut v, &[], &[b.to_string()]), Some(vec![(b, false)]));
    assert!(v.is_empty(), "{v}");
    assert_eq!(trainee(&mut v, None, None), None);
    assert_eq!(trainee(&mut v, Some("x"), None), None);
    assert_eq!(trainee(&mut v, None, Some("")), None);
    assert_eq!(register(&mut v, &[], &[]), None);
    assert_eq!(register(&mut v, &[a.to_string(), "bad".into()], &[a.to_string()]), None);
    assert_eq!(register(&mut v, &vec![a.to_string(); 1000], &[]), None);
    assert_eq!(
        fields(&v),
        [
            "application_id",
            "application_id",
            "official_id",
            "present_trainee_ids",
            "present_trainee_ids[1]",
            "absent_trainee_ids[0]",
            "present_trainee_ids"
        ]
    );
}

fn plan() -> pb::BusinessPlan {
    pb::BusinessPlan {
        sector: " a ".into(),
        summary: "A greenhouse".into(),
        requested_amount: eur(180_000),
        items: vec![
            pb::PlanItem { description: "Greenhouse".into(), quantity: 1, unit_price: eur(150_000) },
            pb::PlanItem { description: "Irrigation".into(), quantity: 2, unit_price: eur(15_000) },
        ],
    }
}

#[test]
fn a_plan_names_its_sector_and_items_worth_the_request() {
    let mut v = Violations::new();
    let p = plan_of(&mut v, Some(&plan())).unwrap();
    assert!(v.is_empty(), "{v}");
    assert_eq!((p.sector.as_str(), p.items.len(), p.items_total()), ("A", 2, Some(180_000)), "exactly the request");
    for sector in ["U", "c"] {
        let mut s = plan();
        s.sector = sector.into();
        assert!(plan_of(&mut v, Some(&s)).is_some(), "{sector}");
    }
    let mut short = plan();
    short.items[1].quantity = 1;
    assert!(plan_of(&mut v, Some(&short)).is_none());
    assert_eq!(fields(&v), ["plan.items"]);
    let mut bad = plan();
    bad.sector = "V".into();
    bad.summary.clear();
    bad.requested_amount = eur(0);
    bad.items = vec![
        pb::PlanItem { description: String::new(), quantity: 0, unit_price: eur(0) },
        pb::PlanItem {
            description: "x".into(),
            quantity: 10_001,
            unit_price: Some(PbMoney { amount_minor: 1, currency: "MDL".into() }),
        },
    ];
    let mut v = Violations::new();
    assert!(plan_of(&mut v, Some(&bad)).is_none());
    assert_eq!(
        fields(&v),
        [
            "plan.sector",
            "plan.summary",
            "plan.requested_amount.amount_minor",
            "plan.items[0].description",
            "plan.items[0].quantity",
            "plan.items[0].unit_price.amount_minor",
            "plan.items[1].quantity",
        ]
    );
    let mut other_currency = plan();
    other_currency.items[0].unit_price = Some(PbMoney { amount_minor: 150_000, currency: "MDL".into() });
    let mut v = Violations::new();
    assert!(plan_of(&mut v, Some(&other_currency)).is_none());
    assert_eq!(fields(&v), ["plan.items[0].unit_price.currency"]);
    let mut v = Violations::new();
    let mut empty = plan();
    empty.items.clear();
    assert!(plan_of(&mut v, Some(&empty)).is_none());
    let mut fifty = plan();
    fifty.items = vec![fifty.items[0].clone(); 50];
    assert_eq!(plan_of(&mut v, Some(&fifty)).map(|p| p.items.len()), Some(50));
    let mut many = plan();
    many.items = vec![many.items[0].clone(); 51];
    assert!(plan_of(&mut v, Some(&many)).is_none());
    assert!(plan_of(&mut v, None).is_none());
    assert_eq!(fields(&v), ["plan.items", "plan.items", "plan"]);
}

fn plan_of(v: &mut Violations, p: Option<&pb::BusinessPlan>) -> Option<Plan> {
    super::plan(v, "plan", p)
}

#[test]
fn scores_name_each_criterion_once() {
    let s = |key: &str, score: i32| pb::CriterionScore { key: key.into(), score };
    let mut v = Violations::new();
    assert_eq!(
        scores(&mut v, "scores", &[s("viability", 8), s("jobs", 0)]),
        Some(vec![("viability".into(), 8), ("jobs".into(), 0)])
    );
    assert!(v.is_empty());
    assert_eq!(scores(&mut v, "scores", &[]), None);
    assert_eq!(scores(&mut v, "scores", &[s("jobs", 1), s("Bad", 1)]), None, "a bad key alone");
    assert_eq!(scores(&mut v, "scores", &[s("Bad", 1), s("jobs", 101), s("jobs", 1), s("jobs", 1)]), None);
    assert_eq!(scores(&mut v, "scores", &vec![s("a", 1); 21]), None);
    assert_eq!(
        fields(&v),
        ["scores", "scores[1].key", "scores[0].key", "scores[1].score", "scores[2].key", "scores[3].key", "scores"]
    );
}

fn item() -> pb::ProcurementItem {
    pb::ProcurementItem {
        description: "Greenhouse 8×30 m".into(),
        supplier: Some(pb::Supplier { name: "Agro-Tehnica SRL".into(), idno: String::new() }),
        quantity: 1,
        unit_price: eur(150_000),
    }
}

#[test]
fn procurement_items_handovers_and_visits() {
    let id9 = Uuid::from_u128(9);
    let mut v = Violations::new();
    let i = procurement_item(&mut v, "item", Some(&item()), id9).unwrap();
    assert_eq!((i.id, i.supplier.idno.clone(), i.quantity), (id9, None, 1));
    let idno = acasa_domain::formats::make_national_code("100360001234").unwrap();
    let mut with_idno = item();
    with_idno.supplier.as_mut().unwrap().idno = idno.clone();
    assert_eq!(procurement_item(&mut v, "item", Some(&with_idno), id9).unwrap().supplier.idno, Some(idno));
    assert!(v.is_empty(), "{v}");
    let mut bad = item();
    bad.description.clear();
    bad.supplier = Some(pb::Supplier { name: String::new(), idno: "123".into() });
    bad.quantity = 0;
    bad.unit_price = None;
    assert!(procurement_item(&mut v, "item", Some(&bad), id9).is_none());
    let mut no_supplier = item();
    no_supplier.supplier = None;
    assert!(procurement_item(&mut v, "item", Some(&no_supplier), id9).is_none());
    assert!(procurement_item(&mut v, "item", None, id9).is_none());
    assert_eq!(
        fields(&v),
        [
            "item.description",
            "item.supplier.name",
            "item.supplier.idno",
            "item.quantity",
            "item.unit_price",
            "item.supplier",
            "item"
        ]
    );

    let a = Uuid::from_u128(1);
    let good = pb::Handover {
        reference: "HO-1".into(),
        item_ids: vec![a.to_string()],
        handed_over_on: day(2027, 9, 15),
        location: "Cahul".into(),
        note: "  ".into(),
    };
    let mut v = Violations::new();
    assert_eq!(handover(&mut v, "handover", Some(&good)).map(|h| (h.items, h.note)), Some((vec![a], String::new())));
    assert!(v.is_empty(), "{v}");
    let mut bad = good.clone();
    bad.reference.clear();
    bad.item_ids = vec![a.to_string(), a.to_string(), "x".into()];
    bad.handed_over_on = None;
    bad.location.clear();
    bad.note = "n".repeat(2001);
    assert!(handover(&mut v, "handover", Some(&bad)).is_none());
    let mut empty = good.clone();
    empty.item_ids.clear();
    assert!(handover(&mut v, "handover", Some(&empty)).is_none());
    let mut hundred = good.clone();
    hundred.item_ids = (0..100).map(|i| Uuid::from_u128(i).to_string()).collect();
    assert_eq!(handover(&mut v, "handover", Some(&hundred)).map(|h| h.items.len()), Some(100));
    let mut many = good;
    many.item_ids = (0..101).map(|i| Uuid::from_u128(i).to_string()).collect();
    assert!(handover(&mut v, "handover", Some(&many)).is_none());
    assert!(handover(&mut v, "handover", None).is_none());
    assert_eq!(
        fields(&v),
        [
            "handover.reference",
            "handover.item_ids[1]",
            "handover.item_ids[2]",
            "handover.handed_over_on",
            "handover.location",
            "handover.note",
            "handover.item_ids",
            "handover.item_ids",
            "handover"
        ]
    );

    let good = pb::MonitoringVisit {
        visited_on: day(2028, 3, 1),
        officer: "M. Popa".into(),
        operating: true,
        jobs_created: 2,
        findings: "harvest sold".into(),
    };
    let mut v = Violations::new();
    assert_eq!(visit(&mut v, "visit", Some(&good)).map(|x| (x.operating, x.jobs_created)), Some((true, 2)));
    let bad = pb::MonitoringVisit {
        visited_on: None,
        officer: String::new(),
        operating: false,
        jobs_created: -1,
        findings: String::new(),
    };
    assert!(visit(&mut v, "visit", Some(&bad)).is_none());
    assert!(visit(&mut v, "visit", None).is_none());
    assert_eq!(fields(&v), ["visit.visited_on", "visit.officer", "visit.jobs_created", "visit.findings", "visit"]);
}

#[test]
fn support_kinds_and_providers() {
    use pb::record_support_service_request::Provider as P;
    let mut v = Violations::new();
    for (k, want) in [
        (pb::SupportKind::BusinessPlanning, SupportKind::BusinessPlanning),
        (pb::SupportKind::Accounting, SupportKind::Accounting),
        (pb::SupportKind::Taxation, SupportKind::Taxation),
        (pb::SupportKind::Licensing, SupportKind::Licensing),
        (pb::SupportKind::QualityStandards, SupportKind::QualityStandards),
        (pb::SupportKind::Loans, SupportKind::Loans),
        (pb::SupportKind::FinancialLiteracy, SupportKind::FinancialLiteracy),
    ] {
        assert_eq!(support_kind(&mut v, "kind", k as i32), Some(want));
    }
    let partner = Uuid::from_u128(0xfa);
    assert_eq!(provider(&mut v, Some(&P::Staff(" cw-1 ".into()))), Some(Provider::Staff("cw-1".into())));
    assert_eq!(provider(&mut v, Some(&P::PartnerId(partner.to_string()))), Some(Provider::Partner(partner)));
    assert_eq!(provider(&mut v, Some(&P::OtherProvider("ODA".into()))), Some(Provider::Other("ODA".into())));
    assert!(v.is_empty(), "{v}");
    assert_eq!(support_kind(&mut v, "kind", 0), None);
    assert_eq!(provider(&mut v, None), None);
    assert_eq!(provider(&mut v, Some(&P::PartnerId("x".into()))), None);
    assert_eq!(provider(&mut v, Some(&P::OtherProvider(String::new()))), None);
    assert_eq!(fields(&v), ["kind", "staff", "partner_id", "other_provider"]);
}

#[test]
fn referral_outcomes_that_count_as_support() {
    use partner::outcome::Kind;
    let delivered = |s: partner::ServiceKind| partner::Outcome {
        kind: Some(Kind::ServiceDelivered(partner::ServiceDelivered { service: s as i32 })),
    };
    for (s, want) in [
        (partner::ServiceKind::Loan, Some(SupportKind::Loans)),
        (partner::ServiceKind::Accounting, Some(SupportKind::Accounting)),
        (partner::ServiceKind::Taxation, Some(SupportKind::Taxation)),
        (partner::ServiceKind::Licensing, Some(SupportKind::Licensing)),
        (partner::ServiceKind::QualityStandards, Some(SupportKind::QualityStandards)),
        (partner::ServiceKind::FinancialLiteracy, Some(SupportKind::FinancialLiteracy)),
        (partner::ServiceKind::Consulting, Some(SupportKind::BusinessPlanning)),
        (partner::ServiceKind::Training, None),
        (partner::ServiceKind::Legal, None),
        (partner::ServiceKind::BusinessRegistration, None),
        (partner::ServiceKind::Unspecified, None),
    ] {
        assert_eq!(support_of_outcome(&delivered(s)), want, "{s:?}");
    }
    let loan =
        partner::Outcome { kind: Some(Kind::LoanDisbursed(PbMoney { amount_minor: 1, currency: "MDL".into() })) };
    assert_eq!(support_of_outcome(&loan), Some(SupportKind::Loans));
    let nothing = partner::Outcome { kind: Some(Kind::NotDelivered(partner::NotDelivered { reason: 1 })) };
    assert_eq!(support_of_outcome(&nothing), None);
    assert_eq!(support_of_outcome(&partner::Outcome { kind: None }), None);
    let unknown = partner::Outcome { kind: Some(Kind::ServiceDelivered(partner::ServiceDelivered { service: 99 })) };
    assert_eq!(support_of_outcome(&unknown), None);
}

#[test]
fn registry_values_and_thin_helpers() {
    assert_eq!(sex_of(reg::Sex::Unspecified as i32), Ok(None));
    assert_eq!(sex_of(reg::Sex::Female as i32), Ok(Some(Sex::Female)));
    assert_eq!(sex_of(reg::Sex::Male as i32), Ok(Some(Sex::Male)));
    assert!(sex_of(9).is_err());
    for (c, want) in [
        (reg::Category::MigrantAbroad, Some(Category::MigrantAbroad)),
        (reg::Category::Returnee, Some(Category::Returnee)),
        (reg::Category::OverseasGraduate, Some(Category::OverseasGraduate)),
        (reg::Category::DiasporaScientist, Some(Category::DiasporaScientist)),
        (reg::Category::YouthEntrepreneur, Some(Category::YouthEntrepreneur)),
        (reg::Category::WomanEntrepreneur, Some(Category::WomanEntrepreneur)),
        (reg::Category::Unspecified, None),
    ] {
        assert_eq!(category_of(c as i32), want);
    }
    assert_eq!(category_of(99), None);
    let today = NaiveDate::from_ymd_opt(2027, 6, 1).unwrap();
    let mut v = Violations::new();
    let id7 = Uuid::from_u128(7);
    assert_eq!(id(&mut v, "call_id", &id7.to_string()), Some(id7));
    assert_eq!(text(&mut v, "title", " x ", 5), Some("x".into()));
    assert_eq!(optional(&mut v, "note", "", 5), Some(String::new()));
    assert_eq!(optional(&mut v, "note", " n ", 5), Some("n".into()));
    assert_eq!(reason(&mut v, "reason", "moved"), Some("moved".into()));
    assert_eq!(reference(&mut v, "reference", "DN-1"), Some("DN-1".into()));
    assert_eq!(past_date(&mut v, "delivered_on", day(2027, 6, 1).as_ref(), today), Some(today));
    assert_eq!(money(&mut v, "amount", eur(0).as_ref(), true), Some(Money::new(0, "EUR")));
    assert!(v.is_empty(), "{v}");
    assert_eq!(id(&mut v, "call_id", ""), None);
    assert_eq!(optional(&mut v, "note", "toolong", 5), None);
    assert_eq!(reason(&mut v, "reason", &"r".repeat(501)), None);
    assert_eq!(reference(&mut v, "reference", &"r".repeat(101)), None);
    assert_eq!(past_date(&mut v, "delivered_on", day(2027, 6, 2).as_ref(), today), None);
    assert_eq!(past_date(&mut v, "delivered_on", None, today), None);
    assert_eq!(money(&mut v, "amount", eur(AMOUNT_MAX + 1).as_ref(), false), None);
    assert_eq!(money(&mut v, "amount", eur(-1).as_ref(), true), None);
    assert_eq!(money(&mut v, "amount", None, true), None);
    assert_eq!(date(&mut v, "on", None), None);
    assert_eq!(
        fields(&v),
        [
            "call_id",
            "note",
            "reason",
            "reference",
            "delivered_on",
            "delivered_on",
            "amount.amount_minor",
            "amount.amount_minor",
            "amount",
            "on"
        ]
    );
}
