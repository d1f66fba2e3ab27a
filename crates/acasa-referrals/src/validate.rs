//! Validation at the edge: requests into domain values, every bad field named
//! by its path in the request (e.g. `services[1].max_amount.currency`).

use std::{collections::BTreeSet, time::Duration};

use acasa_domain::{Violations, formats};
use acasa_proto::{partner::v1 as types, referrals::v1 as pb, r#type::v1::Money};
use uuid::Uuid;

use crate::domain::{DeclineReason, PartnerKind, ProgressStage, ServiceKind, WithdrawReason};

/// Longest partner name or shared display name.
pub const NAME_MAX: usize = 200;
/// Longest district.
pub const DISTRICT_MAX: usize = 80;
/// Most districts served.
pub const DISTRICTS_MAX: usize = 40;
/// Most catalogue entries.
pub const SERVICES_MAX: usize = 30;
/// Longest description, reason or note.
pub const NOTE_MAX: usize = 500;
/// Longest shared note.
pub const PROFILE_NOTE_MAX: usize = 2_000;
/// Longest postal address.
pub const ADDRESS_MAX: usize = 300;
/// Shortest response time.
pub const RESPONSE_TIME_MIN: Duration = Duration::from_secs(1);
/// Longest response time.
pub const RESPONSE_TIME_MAX: Duration = Duration::from_secs(90 * 24 * 3600);
/// Response time when none is given.
pub const RESPONSE_TIME_DEFAULT: Duration = Duration::from_secs(48 * 3600);
/// Largest amount in minor units (a loan of 100 million).
pub const AMOUNT_MAX: i64 = 10_000_000_000;

/// A required UUID.
pub fn id(v: &mut Violations, field: &str, s: &str) -> Option<Uuid> {
    v.id(field, s)
}

/// An optional UUID (empty: none).
pub fn optional_id(v: &mut Violations, field: &str, s: &str) -> Option<Option<Uuid>> {
    if s.is_empty() { Some(None) } else { id(v, field, s).map(Some) }
}

fn enum_value<E: TryFrom<i32> + Default + PartialEq>(v: &mut Violations, field: &str, raw: i32) -> Option<E> {
    match E::try_from(raw) {
        Ok(e) if e != E::default() => Some(e),
        Ok(_) => {
            v.add(field, "is required");
            None
        }
        Err(_) => {
            v.add(field, "is not a known value");
            None
        }
    }
}

/// A partner kind.
pub fn partner_kind(v: &mut Violations, field: &str, raw: i32) -> Option<PartnerKind> {
    enum_value(v, field, raw)
}

/// A service kind.
pub fn service_kind(v: &mut Violations, field: &str, raw: i32) -> Option<ServiceKind> {
    enum_value(v, field, raw)
}

/// A decline reason.
pub fn decline_reason(v: &mut Violations, field: &str, raw: i32) -> Option<DeclineReason> {
    enum_value(v, field, raw)
}

/// A withdrawal reason.
pub fn withdraw_reason(v: &mut Violations, field: &str, raw: i32) -> Option<WithdrawReason> {
    enum_value(v, field, raw)
}

/// A progress stage.
pub fn progress_stage(v: &mut Violations, field: &str, raw: i32) -> Option<ProgressStage> {
    enum_value(v, field, raw)
}

/// Optional free text (empty: none).
pub fn note(v: &mut Violations, field: &str, s: &str, max: usize) -> Option<String> {
    v.check(field, formats::optional_text(s, max)).map(Option::unwrap_or_default)
}

/// Required free text.
pub fn text(v: &mut Violations, field: &str, s: &str, max: usize) -> Option<String> {
    v.check(field, formats::text(s, max))
}

/// A positive amount of money in a known currency.
pub fn money(v: &mut Violations, field: &str, m: Option<&Money>) -> Option<Money> {
    let Some(m) = m else {
        v.add(field, "is required");
        return None;
    };
    let currency = v.check(&format!("{field}.currency"), formats::currency(&m.currency));
    let amount = if (1..=AMOUNT_MAX).contains(&m.amount_minor) {
        Some(m.amount_minor)
    } else {
        v.add(format!("{field}.amount_minor"), format!("must be between 1 and {AMOUNT_MAX} minor units"));
        None
    };
    Some(Money { amount_minor: amount?, currency: currency? })
}

/// A response time (unset: the default).
pub fn response_time(
    v: &mut Violations,
    field: &str,
    d: Option<&prost_types::Duration>,
    required: bool,
) -> Option<Duration> {
    let Some(d) = d else {
        if required {
            v.add(field, "is required");
            return None;
        }
        return Some(RESPONSE_TIME_DEFAULT);
    };
    let value = u64::try_from(d.seconds)
        .ok()
        .zip(u32::try_from(d.nanos).ok().filter(|n| *n < 1_000_000_000))
        .map(|(s, n)| Duration::new(s, n));
    match value {
        Some(t) if (RESPONSE_TIME_MIN..=RESPONSE_TIME_MAX).contains(&t) => Some(t),
        _ => {
            v.add(field, "must be between 1 second and 90 days");
            None
        }
    }
}

/// The districts served: 1 to 40, each 1 to 80 characters, duplicates dropped.
pub fn districts(v: &mut Violations, field: &str, ds: &[String]) -> Option<Vec<String>> {
    if ds.is_empty() {
        v.add(field, "name at least one district");
        return None;
    }
    v.check(field, formats::list_len(ds.len(), DISTRICTS_MAX))?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut ok = true;
    for (i, d) in ds.iter().enumerate() {
        match v.check(&format!("{field}[{i}]"), formats::text(d, DISTRICT_MAX)) {
            Some(d) if seen.insert(formats::fold(&d)) => out.push(d),
            Some(_) => {}
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// A partner's contact point: an e-mail or a phone at least.
pub fn contact(v: &mut Violations, field: &str, c: Option<&pb::PartnerContact>) -> Option<pb::PartnerContact> {
    let Some(c) = c else {
        v.add(field, "is required");
        return None;
    };
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
    let address = note(v, &format!("{field}.address"), &c.address, ADDRESS_MAX);
    if c.email.is_empty() && c.phone.is_empty() {
        v.add(field, "give an e-mail or a phone");
        return None;
    }
    Some(pb::PartnerContact { email: email?, phone: phone?, address: address? })
}

/// A catalogue: at most 30 entries, each service kind once; loan ranges only
/// for loans, in one currency, min ≤ max.
pub fn services(v: &mut Violations, field: &str, ss: &[pb::PartnerService]) -> Option<Vec<pb::PartnerService>> {
    v.check(field, formats::list_len(ss.len(), SERVICES_MAX))?;
    let mut kinds = BTreeSet::new();
    let mut out = Vec::new();
    let mut ok = true;
    for (i, s) in ss.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let kind = service_kind(v, &format!("{f}.kind"), s.kind);
        if let Some(k) = kind
            && !kinds.insert(k as i32)
        {
            v.add(format!("{f}.kind"), "is listed twice");
            ok = false;
        }
        let description = note(v, &format!("{f}.description"), &s.description, NOTE_MAX);
        let (min, max) = match (s.min_amount.as_ref(), s.max_amount.as_ref()) {
            (None, None) => (Some(None), Some(None)),
            (min, max) if kind == Some(ServiceKind::Loan) => {
                let a = money(v, &format!("{f}.min_amount"), min);
                let b = money(v, &format!("{f}.max_amount"), max);
                if let (Some(a), Some(b)) = (&a, &b) {
                    if a.currency != b.currency {
                        v.add(format!("{f}.max_amount.currency"), "must be the currency of min_amount");
                        ok = false;
                    } else if a.amount_minor > b.amount_minor {
                        v.add(format!("{f}.max_amount.amount_minor"), "must not be below min_amount");
                        ok = false;
                    }
                }
                (a.map(Some), b.map(Some))
            }
            _ => {
                v.add(format!("{f}.min_amount"), "amounts are for loans only");
                (None, None)
            }
        };
        match (kind, description, min, max) {
            (Some(kind), Some(description), Some(min_amount), Some(max_amount)) => {
                out.push(pb::PartnerService { kind: kind.into(), description, min_amount, max_amount })
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

/// A need: a service, and for loans optionally the amount asked for.
pub fn need(v: &mut Violations, field: &str, n: Option<&types::Need>) -> Option<types::Need> {
    let Some(n) = n else {
        v.add(field, "is required");
        return None;
    };
    let service = service_kind(v, &format!("{field}.service"), n.service);
    let amount = match &n.requested_amount {
        None => Some(None),
        Some(_) if service.is_some_and(|s| s != ServiceKind::Loan) => {
            v.add(format!("{field}.requested_amount"), "is for loans only");
            None
        }
        Some(m) => money(v, &format!("{field}.requested_amount"), Some(m)).map(Some),
    };
    Some(types::Need { service: service?.into(), requested_amount: amount? })
}

/// The shared profile: a name, and a phone or an e-mail.
pub fn profile(v: &mut Violations, field: &str, p: Option<&pb::SharedProfile>) -> Option<pb::SharedProfile> {
    let Some(p) = p else {
        v.add(field, "is required");
        return None;
    };
    let display_name = text(v, &format!("{field}.display_name"), &p.display_name, NAME_MAX);
    let phone = if p.phone.is_empty() {
        Some(String::new())
    } else {
        v.check(&format!("{field}.phone"), formats::phone_e164(&p.phone))
    };
    let email = if p.email.is_empty() {
        Some(String::new())
    } else {
        v.check(&format!("{field}.email"), formats::email(&p.email))
    };
    let note = note(v, &format!("{field}.note"), &p.note, PROFILE_NOTE_MAX);
    if p.phone.is_empty() && p.email.is_empty() {
        v.add(field, "give a phone or an e-mail the partner can use");
        return None;
    }
    Some(pb::SharedProfile { display_name: display_name?, phone: phone?, email: email?, note: note? })
}

/// An outcome.
pub fn outcome(v: &mut Violations, field: &str, o: Option<&types::Outcome>) -> Option<types::Outcome> {
    use types::outcome::Kind;
    let Some(kind) = o.and_then(|o| o.kind.as_ref()) else {
        v.add(field, "is required: loan_disbursed, service_delivered or not_delivered");
        return None;
    };
    let kind = match kind {
        Kind::LoanDisbursed(m) => Kind::LoanDisbursed(money(v, &format!("{field}.loan_disbursed"), Some(m))?),
        Kind::ServiceDelivered(s) => Kind::ServiceDelivered(types::ServiceDelivered {
            service: service_kind(v, &format!("{field}.service_delivered.service"), s.service)?.into(),
        }),
        Kind::NotDelivered(n) => Kind::NotDelivered(types::NotDelivered {
            reason: decline_reason(v, &format!("{field}.not_delivered.reason"), n.reason)?.into(),
        }),
    };
    Some(types::Outcome { kind: Some(kind) })
}

/// An IDNO (13 digits, 7-3-1 check digit).
pub fn idno(v: &mut Violations, field: &str, s: &str) -> Option<String> {
    v.check(field, formats::national_code(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: &Violations) -> Vec<String> {
        v.iter().map(|f| f.field.clone()).collect()
    }

    #[test]
    fn a_catalogue_names_every_bad_entry() {
        let mut v = Violations::new();
        let eur = |a| Some(Money { amount_minor: a, currency: "EUR".into() });
        let ss = vec![
            pb::PartnerService {
                kind: ServiceKind::Loan.into(),
                min_amount: eur(500),
                max_amount: eur(100),
                ..Default::default()
            },
            pb::PartnerService {
                kind: ServiceKind::Training.into(),
                min_amount: eur(1),
                max_amount: eur(2),
                ..Default::default()
            },
            pb::PartnerService { kind: ServiceKind::Loan.into(), ..Default::default() },
            pb::PartnerService { kind: 99, ..Default::default() },
        ];
        assert!(services(&mut v, "services", &ss).is_none());
        assert_eq!(
            fields(&v),
            ["services[0].max_amount.amount_minor", "services[1].min_amount", "services[2].kind", "services[3].kind"]
        );
    }

    #[test]
    fn a_good_catalogue_passes() {
        let mut v = Violations::new();
        let mdl = |a| Some(Money { amount_minor: a, currency: "MDL".into() });
        let ss = vec![
            pb::PartnerService {
                kind: ServiceKind::Loan.into(),
                min_amount: mdl(100),
                max_amount: mdl(100),
                ..Default::default()
            },
            pb::PartnerService {
                kind: ServiceKind::Accounting.into(),
                description: " books ".into(),
                ..Default::default()
            },
        ];
        let out = services(&mut v, "services", &ss).unwrap();
        assert!(v.is_empty());
        assert_eq!(out[1].description, "books");
    }

    #[test]
    fn response_times_are_bounded() {
        let mut v = Violations::new();
        let d = |seconds, nanos| prost_types::Duration { seconds, nanos };
        assert_eq!(response_time(&mut v, "t", None, false), Some(RESPONSE_TIME_DEFAULT));
        assert_eq!(response_time(&mut v, "t", Some(&d(1, 0)), true), Some(Duration::from_secs(1)));
        assert!(v.is_empty());
        assert_eq!(response_time(&mut v, "t", Some(&d(0, 999)), true), None);
        assert_eq!(response_time(&mut v, "t", Some(&d(-5, 0)), true), None);
        assert_eq!(response_time(&mut v, "t", Some(&d(91 * 86_400, 0)), true), None);
        assert_eq!(response_time(&mut v, "t", None, true), None);
        assert_eq!(v.iter().count(), 4);
    }

    #[test]
    fn needs_and_outcomes() {
        let mut v = Violations::new();
        let training_with_amount = types::Need {
            service: ServiceKind::Training.into(),
            requested_amount: Some(Money { amount_minor: 5, currency: "EUR".into() }),
        };
        assert!(need(&mut v, "need", Some(&training_with_amount)).is_none());
        assert!(need(&mut v, "need", None).is_none());
        let bad_loan = types::Outcome {
            kind: Some(types::outcome::Kind::LoanDisbursed(Money { amount_minor: 0, currency: "eur".into() })),
        };
        assert!(outcome(&mut v, "outcome", Some(&bad_loan)).is_none());
        assert!(outcome(&mut v, "outcome", Some(&types::Outcome { kind: None })).is_none());
        assert_eq!(
            fields(&v),
            [
                "need.requested_amount",
                "need",
                "outcome.loan_disbursed.currency",
                "outcome.loan_disbursed.amount_minor",
                "outcome"
            ]
        );
    }

    #[test]
    fn a_profile_needs_a_name_and_a_way_to_reach_the_person() {
        let mut v = Violations::new();
        let p = pb::SharedProfile { display_name: "Ana".into(), ..Default::default() };
        assert!(profile(&mut v, "profile", Some(&p)).is_none());
        let p = pb::SharedProfile { display_name: " ".into(), phone: "+37369123456".into(), ..Default::default() };
        assert!(profile(&mut v, "profile", Some(&p)).is_none());
        assert_eq!(fields(&v), ["profile", "profile.display_name"]);
    }

    #[test]
    fn districts_are_deduplicated_by_folded_form() {
        let mut v = Violations::new();
        let out = districts(&mut v, "d", &["Ștefan Vodă".into(), "stefan voda".into(), "Cahul".into()]).unwrap();
        assert_eq!(out, ["Ștefan Vodă", "Cahul"]);
        assert!(districts(&mut v, "d", &[]).is_none());
        assert!(districts(&mut v, "d", &["ok".into(), " ".into()]).is_none());
        assert_eq!(fields(&v), ["d", "d[1]"]);
    }
}
