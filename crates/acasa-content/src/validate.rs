//! Requests into domain values: every bad field named (`slug`, `locale` as
//! BCP 47, `countries[1]`, `publish_at`, `body` over its size), before a
//! command reaches the domain. What only the domain can see (a source
//! revision that does not exist, expiry before publication) it names itself.

use acasa_domain::{Violations, formats};
use acasa_proto::{Timestamp, content::v1 as pb, time, r#type::v1::Date};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::{
    codec,
    domain::{
        Topic,
        agreement::{Kind, Status},
        article::Text,
        locale::Locale,
        render,
    },
};

/// Longest slug.
pub const SLUG_MAX: usize = 100;
/// Longest article title.
pub const TITLE_MAX: usize = 200;
/// Longest article summary.
pub const SUMMARY_MAX: usize = 1_000;
/// Longest article body, in characters.
pub const BODY_MAX: usize = 100_000;
/// Longest reason.
pub const REASON_MAX: usize = 2_000;
/// Most destination countries of an article.
pub const COUNTRIES_MAX: usize = 60;
/// Longest agreement title.
pub const AGREEMENT_TITLE_MAX: usize = 300;
/// Longest agreement summary.
pub const AGREEMENT_SUMMARY_MAX: usize = 10_000;
/// Longest document link.
pub const URL_MAX: usize = 2_000;

/// An id (a UUID).
pub fn id(v: &mut Violations, field: &str, s: &str) -> Option<Uuid> {
    v.id(field, s)
}

/// A required text of at most `max` characters.
pub fn text(v: &mut Violations, field: &str, s: &str, max: usize) -> Option<String> {
    v.check(field, formats::text(s, max))
}

/// A slug: 1 to [`SLUG_MAX`] characters of `a-z`, `0-9` and single
/// hyphens, neither first nor last (`ajutor-juridic-italia`).
pub fn slug(v: &mut Violations, field: &str, s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= SLUG_MAX
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--");
    if ok {
        Some(s.to_owned())
    } else {
        v.add(
            field,
            format!(
                "must be 1 to {SLUG_MAX} characters of a-z, 0-9 and single hyphens, not starting or ending with one"
            ),
        );
        None
    }
}

/// A locale (BCP 47), normalised (`ru-md` → `ru-MD`).
pub fn locale(v: &mut Violations, field: &str, s: &str) -> Option<Locale> {
    v.check(field, Locale::parse(s))
}

/// A reader's locale: empty means Romanian.
pub fn reader_locale(v: &mut Violations, s: &str) -> Option<Locale> {
    if s.is_empty() { Locale::parse("ro").ok() } else { locale(v, "locale", s) }
}

/// A country code (ISO 3166-1 alpha-2, upper case).
pub fn country(v: &mut Violations, field: &str, s: &str) -> Option<String> {
    v.check(field, formats::country_code(s))
}

/// An optional country filter.
pub fn country_filter(v: &mut Violations, s: &str) -> Option<Option<String>> {
    if s.is_empty() { Some(None) } else { country(v, "country", s).map(Some) }
}

/// Destination countries: at most [`COUNTRIES_MAX`], each a country code.
pub fn countries(v: &mut Violations, list: &[String]) -> Option<Vec<String>> {
    v.check("countries", formats::list_len(list.len(), COUNTRIES_MAX))?;
    let mut ok = true;
    let mut out = Vec::with_capacity(list.len());
    for (i, c) in list.iter().enumerate() {
        match country(v, &format!("countries[{i}]"), c) {
            Some(c) => out.push(c),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// A topic (required).
pub fn topic(v: &mut Violations, n: i32) -> Option<Topic> {
    let topic = codec::topic_from_pb(n);
    if topic.is_none() {
        v.add("topic", "must be a known topic");
    }
    topic
}

/// An optional topic filter.
pub fn topic_filter(v: &mut Violations, n: i32) -> Option<Option<i16>> {
    if n == 0 {
        return Some(None);
    }
    topic(v, n).map(|t| Some(codec::topic_to_pb(t) as i16))
}

/// An article revision's text.
pub fn article_text(v: &mut Violations, title: &str, summary: &str, body: &str) -> Option<Text> {
    let title = text(v, "title", title, TITLE_MAX);
    let summary = v.check("summary", formats::optional_text(summary, SUMMARY_MAX)).map(Option::unwrap_or_default);
    let body = self::body(v, body);
    Some(Text { title: title?, summary: summary?, body: body? })
}

/// A body: stored exactly as given (rendered safely for readers), 1 to
/// [`BODY_MAX`] characters, not blank.
fn body(v: &mut Violations, s: &str) -> Option<String> {
    let chars = s.chars().count();
    if s.trim().is_empty() {
        v.add("body", "is required");
        None
    } else if chars > BODY_MAX {
        v.add("body", format!("is {chars} characters long; at most {BODY_MAX} are allowed"));
        None
    } else if s.contains('\0') {
        v.add("body", "must not contain NUL characters");
        None
    } else {
        Some(s.to_owned())
    }
}

/// A reason: 1 to [`REASON_MAX`] characters.
pub fn reason(v: &mut Violations, s: &str) -> Option<String> {
    text(v, "reason", s, REASON_MAX)
}

/// A revision number: 0 for none.
pub fn translates(n: u32) -> Option<u32> {
    (n > 0).then_some(n)
}

/// A revision number that must be given.
pub fn revision(v: &mut Violations, field: &str, n: u32) -> Option<u32> {
    if n == 0 {
        v.add(field, "is required (revisions are numbered from 1)");
        None
    } else {
        Some(n)
    }
}

/// An optional instant.
pub fn instant(v: &mut Violations, field: &str, t: Option<&Timestamp>) -> Option<Option<DateTime<Utc>>> {
    let Some(t) = t else { return Some(None) };
    match time::checked_time(t) {
        Some(t) => Some(Some(t)),
        None => {
            v.add(field, "must be a valid time between the years 1 and 9999");
            None
        }
    }
}

/// A date, required, not after `today`.
pub fn past_date(v: &mut Violations, field: &str, d: Option<&Date>, today: NaiveDate) -> Option<NaiveDate> {
    let Some(d) = d else {
        v.add(field, "is required");
        return None;
    };
    let day = v.check(field, formats::date(d.year, d.month, d.day))?;
    if day > today {
        v.add(field, "must not be in the future");
        return None;
    }
    Some(day)
}

/// An agreement's other country: any but Moldova.
pub fn partner_country(v: &mut Violations, s: &str) -> Option<String> {
    let c = country(v, "country", s)?;
    if c == "MD" {
        v.add("country", "must be the other country of the agreement, not MD");
        return None;
    }
    Some(c)
}

/// An agreement kind (required).
pub fn kind(v: &mut Violations, n: i32) -> Option<Kind> {
    let kind = codec::kind_from_pb(n);
    if kind.is_none() {
        v.add("kind", "must be a known agreement kind");
    }
    kind
}

/// An agreement status (required).
pub fn status(v: &mut Violations, n: i32) -> Option<Status> {
    let status = codec::status_from_pb(n);
    if status.is_none() {
        v.add("status", "must be a known agreement status");
    }
    status
}

/// An optional enum filter: unset for any, else a known value.
pub fn enum_filter<T>(v: &mut Violations, field: &str, n: i32, known: fn(i32) -> Option<T>) -> Option<Option<i16>> {
    if n == 0 {
        return Some(None);
    }
    match (known(n), i16::try_from(n)) {
        (Some(_), Ok(n)) => Some(Some(n)),
        _ => {
            v.add(field, "must be a known value (or unset)");
            None
        }
    }
}

/// A document link: an http or https URL of at most [`URL_MAX`] characters.
pub fn url(v: &mut Violations, s: &str) -> Option<String> {
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    if s.is_empty() || s.len() > URL_MAX {
        v.add("url", format!("must be 1 to {URL_MAX} characters"));
        None
    } else if !(lower.starts_with("https://") || lower.starts_with("http://")) || !render::is_safe_url(s) {
        v.add("url", "must be an http or https URL");
        None
    } else if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        v.add("url", "must not contain spaces or control characters");
        None
    } else {
        Some(s.to_owned())
    }
}

/// The agreement summary's text.
pub fn agreement_summary(v: &mut Violations, s: &str) -> Option<String> {
    text(v, "summary", s, AGREEMENT_SUMMARY_MAX)
}

/// Most languages a campaign targets.
pub const CAMPAIGN_LANGUAGES_MAX: usize = 10;
/// Longest campaign message subject (and campaign name).
pub const SUBJECT_MAX: usize = 200;
/// Longest campaign message text.
pub const MESSAGE_MAX: usize = 5_000;

/// A campaign's target: countries abroad (not MD), 1 to
/// [`CAMPAIGN_LANGUAGES_MAX`] languages.
pub fn target(v: &mut Violations, t: Option<&pb::CampaignTarget>) -> Option<crate::domain::campaign::Target> {
    let Some(t) = t else {
        v.add("target", "is required");
        return None;
    };
    let mut ok = v.check("target.countries", formats::list_len(t.countries.len(), COUNTRIES_MAX)).is_some();
    let mut countries = Vec::with_capacity(t.countries.len());
    for (i, c) in t.countries.iter().enumerate() {
        let field = format!("target.countries[{i}]");
        match country(v, &field, c) {
            Some(c) if c == "MD" => {
                v.add(field, "campaigns reach people abroad: not MD");
                ok = false;
            }
            Some(c) => countries.push(c),
            None => ok = false,
        }
    }
    if t.languages.is_empty() || t.languages.len() > CAMPAIGN_LANGUAGES_MAX {
        v.add("target.languages", format!("must name 1 to {CAMPAIGN_LANGUAGES_MAX} languages"));
        ok = false;
    }
    let mut languages = Vec::with_capacity(t.languages.len());
    for (i, l) in t.languages.iter().enumerate() {
        match locale(v, &format!("target.languages[{i}]"), l) {
            Some(l) => languages.push(l.to_string()),
            None => ok = false,
        }
    }
    ok.then_some(crate::domain::campaign::Target { countries, languages })
}

/// A campaign's content for one language.
pub fn campaign_content(
    v: &mut Violations,
    c: Option<&pb::CampaignContent>,
) -> Option<(String, crate::domain::campaign::Content)> {
    use crate::domain::campaign::Content;
    let Some(c) = c else {
        v.add("content", "is required");
        return None;
    };
    let locale = locale(v, "content.locale", &c.locale);
    let content = match &c.content {
        Some(pb::campaign_content::Content::ArticleId(a)) => id(v, "content.article_id", a).map(Content::Article),
        Some(pb::campaign_content::Content::Message(m)) => {
            let subject = text(v, "content.message.subject", &m.subject, SUBJECT_MAX);
            let text = text(v, "content.message.text", &m.text, MESSAGE_MAX);
            Some(Content::Message { subject: subject?, text: text? })
        }
        None => {
            v.add("content", "must be an article_id or a message");
            None
        }
    };
    Some((locale?.to_string(), content?))
}

/// A required instant.
pub fn required_instant(v: &mut Violations, field: &str, t: Option<&Timestamp>) -> Option<DateTime<Utc>> {
    match instant(v, field, t)? {
        Some(t) => Some(t),
        None => {
            v.add(field, "is required");
            None
        }
    }
}

/// An article version's state filter.
pub fn state_filter(v: &mut Violations, n: i32) -> Option<Option<i16>> {
    enum_filter(v, "state", n, |n| pb::VersionState::try_from(n).ok().filter(|s| *s != pb::VersionState::Unspecified))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        let mut v = Violations::new();
        for good in ["a", "ajutor-juridic-italia", "2026-ghid"] {
            assert_eq!(slug(&mut v, "slug", good).as_deref(), Some(good));
        }
        assert!(v.is_empty());
        for bad in ["", "-a", "a-", "a--b", "A", "ă", "a b", "a_b", &"a".repeat(SLUG_MAX + 1)] {
            let mut v = Violations::new();
            assert_eq!(slug(&mut v, "slug", bad), None, "{bad}");
            assert_eq!(v.iter().next().map(|f| f.field.as_str()), Some("slug"));
        }
        assert!(slug(&mut v, "slug", &"a".repeat(SLUG_MAX)).is_some());
    }

    #[test]
    fn bodies_are_kept_as_given_within_bounds() {
        let mut v = Violations::new();
        let body = "<script>alert(1)</script>\n\n# Titlu";
        assert_eq!(article_text(&mut v, "T", "", body).map(|t| t.body), Some(body.to_owned()));
        for bad in ["", "   ", "a\0b"] {
            let mut v = Violations::new();
            assert!(article_text(&mut v, "T", "", bad).is_none());
            assert_eq!(v.iter().next().map(|f| f.field.as_str()), Some("body"));
        }
        let mut v = Violations::new();
        assert!(article_text(&mut v, "T", "", &"ă".repeat(BODY_MAX)).is_some());
        assert!(article_text(&mut v, "T", "", &"ă".repeat(BODY_MAX + 1)).is_none());
    }

    #[test]
    fn countries_name_the_bad_one() {
        let mut v = Violations::new();
        assert_eq!(countries(&mut v, &["IT".into(), "DE".into()]), Some(vec!["IT".into(), "DE".into()]));
        for bad in ["de", "XX", "ITA"] {
            let mut v = Violations::new();
            assert_eq!(countries(&mut v, &["IT".into(), bad.into()]), None);
            assert_eq!(v.iter().next().map(|f| f.field.as_str()), Some("countries[1]"));
        }
    }

    #[test]
    fn links_are_http_only() {
        let mut v = Violations::new();
        assert!(url(&mut v, "https://www.legis.md/cautare/getResults?doc_id=1").is_some());
        for bad in ["javascript:alert(1)", "mailto:a@b.md", "ftp://x", "https://a b", ""] {
            let mut v = Violations::new();
            assert!(url(&mut v, bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn agreements_are_with_another_country() {
        let mut v = Violations::new();
        assert!(partner_country(&mut v, "MD").is_none());
        assert_eq!(partner_country(&mut v, "IT").as_deref(), Some("IT"));
    }
}
