//! One page-token scheme for every list query: keyset pagination over a
//! sort key, an opaque versioned token (base64url of `c1:<the last row's
//! key>`, ids and times only, never personal data), and one rule for page
//! sizes.

use acasa_domain::Violations;
use base64::Engine as _;
use chrono::{DateTime, Datelike as _, Utc};
use uuid::Uuid;

/// Rows per page when the client does not say.
pub const PAGE_DEFAULT: i32 = 50;
/// The most rows per page.
pub const PAGE_MAX: i32 = 200;

const VERSION: &str = "c1:";

/// A row's place in a keyset order: what a token remembers.
pub trait Cursor: Sized {
    /// The key as text.
    fn to_text(&self) -> String;
    /// The key from its text.
    fn from_text(text: &str) -> Option<Self>;
}

impl Cursor for Uuid {
    fn to_text(&self) -> String {
        self.to_string()
    }

    fn from_text(text: &str) -> Option<Self> {
        Uuid::parse_str(text).ok()
    }
}

impl Cursor for (Uuid, Uuid) {
    fn to_text(&self) -> String {
        format!("{}/{}", self.0, self.1)
    }

    fn from_text(text: &str) -> Option<Self> {
        let (a, b) = text.split_once('/')?;
        Some((Uuid::parse_str(a).ok()?, Uuid::parse_str(b).ok()?))
    }
}

impl Cursor for (DateTime<Utc>, Uuid) {
    fn to_text(&self) -> String {
        format!("{}/{}", self.0.timestamp_micros(), self.1)
    }

    /// Only times Postgres can compare with (years 1 to 9999): a forged
    /// token out of that range is a bad token, not a database error.
    fn from_text(text: &str) -> Option<Self> {
        let (at, id) = text.split_once('/')?;
        let at = DateTime::from_timestamp_micros(at.parse().ok()?)?;
        (1..=9999).contains(&at.year()).then_some(())?;
        Some((at, Uuid::parse_str(id).ok()?))
    }
}

impl Cursor for (i32, Uuid) {
    fn to_text(&self) -> String {
        format!("{}/{}", self.0, self.1)
    }

    fn from_text(text: &str) -> Option<Self> {
        let (n, id) = text.split_once('/')?;
        Some((n.parse().ok()?, Uuid::parse_str(id).ok()?))
    }
}

impl Cursor for (chrono::NaiveDate, Uuid, i32) {
    fn to_text(&self) -> String {
        format!("{}/{}/{}", self.0.format("%Y-%m-%d"), self.1, self.2)
    }

    /// Only dates Postgres can compare with (years 1 to 9999).
    fn from_text(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, '/');
        let date = chrono::NaiveDate::parse_from_str(parts.next()?, "%Y-%m-%d").ok()?;
        (1..=9999).contains(&date.year()).then_some(())?;
        let id = Uuid::parse_str(parts.next()?).ok()?;
        Some((date, id, parts.next()?.parse().ok()?))
    }
}

/// A validated page request: how many rows, after which key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest<C> {
    /// Rows on the page.
    pub size: i64,
    /// The last key of the previous page.
    pub after: Option<C>,
}

impl<C> PageRequest<C> {
    /// The SQL `LIMIT`: one more than the page, to know whether more follow.
    pub fn limit(&self) -> i64 {
        self.size + 1
    }

    /// Cuts `rows` (fetched with [`limit`](Self::limit)) to the page, and
    /// gives the token of the next page (empty when this is the last).
    pub fn cut<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> C) -> (Vec<T>, String)
    where
        C: Cursor,
    {
        let size = usize::try_from(self.size).unwrap_or(0);
        let more = rows.len() > size;
        rows.truncate(size);
        let token = match rows.last() {
            Some(last) if more => token(&key(last)),
            _ => String::new(),
        };
        (rows, token)
    }
}

/// Validates `page_size` (0 for the default) and `page_token` into `v`,
/// naming the bad field.
pub fn request<C: Cursor>(v: &mut Violations, size: i32, token: &str) -> Option<PageRequest<C>> {
    request_within(v, size, token, PAGE_DEFAULT, PAGE_MAX)
}

/// [`request`] with another default and maximum page size (e.g. the
/// public reads' smaller pages).
pub fn request_within<C: Cursor>(
    v: &mut Violations,
    size: i32,
    token: &str,
    default: i32,
    max: i32,
) -> Option<PageRequest<C>> {
    let size = match size {
        0 => default,
        s if (1..=max).contains(&s) => s,
        _ => {
            v.add("page_size", format!("must be between 1 and {max} (0 for {default})"));
            return None;
        }
    };
    if token.is_empty() {
        return Some(PageRequest { size: i64::from(size), after: None });
    }
    let after = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix(VERSION).and_then(C::from_text));
    match after {
        Some(after) => Some(PageRequest { size: i64::from(size), after: Some(after) }),
        None => {
            v.add("page_token", "is not a token from a previous page of this query");
            None
        }
    }
}

/// The token of the page after `last`.
pub fn token<C: Cursor>(last: &C) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{VERSION}{}", last.to_text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_and_date_keys_round_trip_and_refuse_forgeries() {
        let id = Uuid::from_u128(5);
        let key = (-3, id);
        assert_eq!(<(i32, Uuid)>::from_text(&key.to_text()), Some(key));
        let day = chrono::NaiveDate::from_ymd_opt(2027, 2, 15).unwrap();
        let key = (day, id, 4);
        assert_eq!(<(chrono::NaiveDate, Uuid, i32)>::from_text(&key.to_text()), Some(key));
        assert_eq!(<(chrono::NaiveDate, Uuid, i32)>::from_text(&format!("10000-01-01/{id}/1")), None);
        assert_eq!(<(chrono::NaiveDate, Uuid, i32)>::from_text(&format!("2027-02-15/{id}")), None);
        assert_eq!(<(i32, Uuid)>::from_text("x/y"), None);
    }

    #[test]
    fn tokens_round_trip_for_every_key_shape() {
        let id = Uuid::now_v7();
        let other = Uuid::now_v7();
        let at = DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap();
        let mut v = Violations::new();
        assert_eq!(request::<Uuid>(&mut v, 5, &token(&id)).unwrap().after, Some(id));
        assert_eq!(request::<(Uuid, Uuid)>(&mut v, 5, &token(&(id, other))).unwrap().after, Some((id, other)));
        assert_eq!(request::<(DateTime<Utc>, Uuid)>(&mut v, 5, &token(&(at, id))).unwrap().after, Some((at, id)));
        assert!(v.is_empty());
    }

    #[test]
    fn sizes_and_foreign_tokens_are_refused_by_field() {
        let mut v = Violations::new();
        assert_eq!(request::<Uuid>(&mut v, 0, "").unwrap().size, i64::from(PAGE_DEFAULT));
        assert_eq!(request::<Uuid>(&mut v, PAGE_MAX, "").unwrap().size, i64::from(PAGE_MAX));
        assert!(v.is_empty());
        assert!(request::<Uuid>(&mut v, PAGE_MAX + 1, "").is_none());
        assert!(request::<Uuid>(&mut v, -1, "").is_none());
        assert!(request::<Uuid>(&mut v, 10, "garbage").is_none());
        // A token of another query's key shape is not this query's.
        assert!(request::<(Uuid, Uuid)>(&mut v, 10, &token(&Uuid::now_v7())).is_none());
        // A forged time outside what the database holds (issue 11: answered INTERNAL).
        let far = DateTime::from_timestamp_micros(i64::MAX / 2).unwrap();
        assert!(request::<(DateTime<Utc>, Uuid)>(&mut v, 10, &token(&(far, Uuid::now_v7()))).is_none());
        let early = DateTime::from_timestamp_micros(-62_200_000_000_000_000).unwrap();
        assert!(request::<(DateTime<Utc>, Uuid)>(&mut v, 10, &token(&(early, Uuid::now_v7()))).is_none());
        let last = DateTime::from_timestamp_micros(253_402_300_799_000_000).unwrap();
        assert!(request::<(DateTime<Utc>, Uuid)>(&mut v, 10, &token(&(last, Uuid::now_v7()))).is_some());
        let fields: Vec<String> = v.iter().map(|f| f.field.clone()).collect();
        assert_eq!(fields, ["page_size", "page_size", "page_token", "page_token", "page_token", "page_token"]);
    }

    #[test]
    fn a_page_is_cut_and_the_next_token_points_after_its_last_row() {
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        let page = PageRequest::<Uuid> { size: 3, after: None };
        let (rows, next) = page.cut(ids[..4].to_vec(), |id| *id);
        assert_eq!(rows, ids[..3]);
        let mut v = Violations::new();
        assert_eq!(request::<Uuid>(&mut v, 3, &next).unwrap().after, Some(ids[2]));
        assert_eq!(page.limit(), 4, "one row more than the page tells whether more follow");
        let (rows, next) = page.cut(ids[..3].to_vec(), |id| *id);
        assert_eq!((rows.len(), next.as_str()), (3, ""), "no more rows, no token");
    }
}
