//! Full-text search: each locale's Postgres text-search configuration, and
//! the bounds on a reader's query.
//!
//! # Configurations
//!
//! Postgres 15 ships these configurations (`\dF`, checked against a
//! PostgreSQL 15 server): [`BUILTIN_CONFIGS`]. A locale maps by its language
//! to the configuration of that language (`ro` → `romanian`, `ru-MD` →
//! `russian`, `en-GB` → `english`, `sr-Latn-RS` → `serbian`, whose stemmer
//! handles both scripts); any other language gets `simple`.
//!
//! **Ukrainian has no configuration** in Postgres 15 and is indexed with
//! `simple`: lower-casing only, no stemming, no stop words. Not `russian`:
//! the Russian Snowball stemmer applies Russian endings to Ukrainian words
//! and stems inflected forms of the same word inconsistently (`держави` →
//! `держав` but `пільги` stays `пільги`), and its Russian stop-word list
//! drops Ukrainian words that happen to be spelled like Russian ones. With
//! `simple` a Ukrainian reader finds exactly the word forms written, which
//! is predictable; a Ukrainian dictionary (hunspell `uk_UA` files) can be
//! added later as a `ukrainian` configuration by changing [`ts_config`] and
//! re-indexing, without changing the API. No `unaccent`: diacritics carry
//! meaning in Romanian (`ș`, `ț`, `ă`) and the `romanian` stemmer expects
//! them.
//!
//! The configuration name is used by the read model as a literal
//! `regconfig` (`to_tsvector($cfg::regconfig, body)`), so it only ever comes
//! from this fixed list.
//!
//! # Queries
//!
//! The service passes a reader's query to `websearch_to_tsquery(cfg, $1)`
//! as a **bound parameter**: that function accepts any text (quotes, `or`,
//! `-`, stray punctuation) without raising a syntax error, so nothing here
//! has to escape it. [`search_terms`] only normalises whitespace, drops
//! control characters and enforces the bounds ([`MAX_QUERY_CHARS`],
//! [`MAX_QUERY_TERMS`]) that keep a public, unauthenticated search cheap.

use crate::domain::locale::Locale;

/// The text-search configurations built into PostgreSQL 15, as listed by
/// `\dF` (`SELECT cfgname FROM pg_ts_config`).
pub const BUILTIN_CONFIGS: [&str; 29] = [
    "arabic",
    "armenian",
    "basque",
    "catalan",
    "danish",
    "dutch",
    "english",
    "finnish",
    "french",
    "german",
    "greek",
    "hindi",
    "hungarian",
    "indonesian",
    "irish",
    "italian",
    "lithuanian",
    "nepali",
    "norwegian",
    "portuguese",
    "romanian",
    "russian",
    "serbian",
    "simple",
    "spanish",
    "swedish",
    "tamil",
    "turkish",
    "yiddish",
];

/// The configuration for languages without one of their own (Ukrainian
/// among them): lower-casing, no stemming, no stop words.
pub const FALLBACK_CONFIG: &str = "simple";

/// The longest query accepted, in characters, after whitespace is collapsed.
pub const MAX_QUERY_CHARS: usize = 200;

/// The most terms (whitespace-separated words, `or` and `-` not counted) a
/// query may have.
pub const MAX_QUERY_TERMS: usize = 12;

/// The Postgres text-search configuration for a locale's language;
/// [`FALLBACK_CONFIG`] (`simple`) when Postgres has none (Ukrainian).
pub fn ts_config(locale: &Locale) -> &'static str {
    match locale.language() {
        "ar" => "arabic",
        "hy" => "armenian",
        "eu" => "basque",
        "ca" => "catalan",
        "da" => "danish",
        "nl" => "dutch",
        "en" => "english",
        "fi" => "finnish",
        "fr" => "french",
        "de" => "german",
        "el" => "greek",
        "hi" => "hindi",
        "hu" => "hungarian",
        "id" => "indonesian",
        "ga" => "irish",
        "it" => "italian",
        "lt" => "lithuanian",
        "ne" => "nepali",
        "no" | "nb" | "nn" => "norwegian",
        "pt" => "portuguese",
        // `mo` is the withdrawn ISO 639 code for Romanian in Moldova.
        "ro" | "mo" => "romanian",
        "ru" => "russian",
        "sr" => "serbian",
        "es" => "spanish",
        "sv" => "swedish",
        "ta" => "tamil",
        "tr" => "turkish",
        "yi" => "yiddish",
        // Ukrainian and every other language: see the module documentation.
        _ => FALLBACK_CONFIG,
    }
}

/// Why a reader's query was refused; the service answers
/// `INVALID_ARGUMENT` naming the `query` field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    /// Nothing to search for (empty, or only blanks and control characters).
    #[error("query is empty")]
    Empty,
    /// Longer than [`MAX_QUERY_CHARS`].
    #[error("query is {got} characters long; at most {max} are allowed")]
    TooLong {
        /// The length given, in characters.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// More than [`MAX_QUERY_TERMS`] terms.
    #[error("query has {got} terms; at most {max} are allowed")]
    TooManyTerms {
        /// The terms given.
        got: usize,
        /// The limit.
        max: usize,
    },
}

/// Normalises a reader's query for `websearch_to_tsquery` (passed as a bound
/// parameter): control characters become spaces, runs of whitespace one
/// space, ends trimmed; then the bounds are checked. The websearch syntax
/// (`"a phrase"`, `or`, `-excluded`) passes through unchanged.
pub fn search_terms(q: &str) -> Result<String, SearchError> {
    // Bound the work: a huge input is refused without being normalised
    // beyond a few times the limit (whitespace that would collapse leaves
    // slack for queries padded with blanks).
    let scan_limit = MAX_QUERY_CHARS.saturating_mul(8);
    let mut normalised = String::with_capacity(q.len().min(scan_limit));
    let mut pending_space = false;
    for (scanned, c) in q.chars().enumerate() {
        if scanned > scan_limit {
            return Err(SearchError::TooLong { got: q.chars().count(), max: MAX_QUERY_CHARS });
        }
        if c.is_whitespace() || c.is_control() {
            pending_space = !normalised.is_empty();
        } else {
            if pending_space {
                normalised.push(' ');
                pending_space = false;
            }
            normalised.push(c);
        }
    }
    if normalised.is_empty() {
        return Err(SearchError::Empty);
    }
    let chars = normalised.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(SearchError::TooLong { got: chars, max: MAX_QUERY_CHARS });
    }
    let terms = normalised
        .split(' ')
        .map(|w| w.trim_matches(|c: char| c == '"' || c == '-'))
        .filter(|w| !w.is_empty() && !w.eq_ignore_ascii_case("or"))
        .count();
    if terms == 0 {
        return Err(SearchError::Empty);
    }
    if terms > MAX_QUERY_TERMS {
        return Err(SearchError::TooManyTerms { got: terms, max: MAX_QUERY_TERMS });
    }
    Ok(normalised)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(tag: &str) -> &'static str {
        ts_config(&Locale::parse(tag).unwrap())
    }

    #[test]
    fn the_programmes_languages_use_their_own_configuration() {
        assert_eq!(cfg("ro"), "romanian");
        assert_eq!(cfg("ro-MD"), "romanian");
        assert_eq!(cfg("ru"), "russian");
        assert_eq!(cfg("ru-MD"), "russian");
        assert_eq!(cfg("en"), "english");
        assert_eq!(cfg("en-GB"), "english");
        assert_eq!(cfg("sr-Latn-RS"), "serbian");
        assert_eq!(cfg("nb"), "norwegian");
        assert_eq!(cfg("de-AT"), "german");
        assert_eq!(cfg("it"), "italian");
    }

    #[test]
    fn ukrainian_and_languages_without_one_use_simple() {
        assert_eq!(cfg("uk"), "simple");
        assert_eq!(cfg("uk-UA"), "simple");
        assert_eq!(cfg("pl"), "simple");
        assert_eq!(cfg("he"), "simple");
    }

    #[test]
    fn every_configuration_returned_is_built_in() {
        let mut seen = std::collections::BTreeSet::new();
        for lang in [
            "ar", "hy", "eu", "ca", "da", "nl", "en", "fi", "fr", "de", "el", "hi", "hu", "id", "ga", "it", "lt", "ne",
            "no", "nb", "nn", "pt", "ro", "mo", "ru", "sr", "es", "sv", "ta", "tr", "yi", "uk", "pl", "bg",
        ] {
            let c = cfg(lang);
            assert!(BUILTIN_CONFIGS.contains(&c), "{lang} → {c}");
            seen.insert(c);
        }
        // Every built-in configuration is reachable from some language.
        assert_eq!(seen.len(), BUILTIN_CONFIGS.len());
        let mut sorted = BUILTIN_CONFIGS;
        sorted.sort_unstable();
        assert_eq!(sorted, BUILTIN_CONFIGS, "kept in \\dF order");
    }

    #[test]
    fn queries_are_trimmed_and_whitespace_collapsed() {
        assert_eq!(search_terms("  asistență   socială ").unwrap(), "asistență socială");
        assert_eq!(search_terms("допомога\t\nпільги").unwrap(), "допомога пільги");
        assert_eq!(search_terms("a\u{0}b\u{7}c").unwrap(), "a b c");
    }

    #[test]
    fn websearch_syntax_passes_through() {
        let q = r#""social security" or pension -Italy"#;
        assert_eq!(search_terms(q).unwrap(), q);
        // Odd punctuation is websearch_to_tsquery's to ignore, not an error.
        assert_eq!(search_terms("a & b | !c :*").unwrap(), "a & b | !c :*");
        assert_eq!(search_terms("'; DROP TABLE articles; --").unwrap(), "'; DROP TABLE articles; --");
    }

    #[test]
    fn empty_queries_are_refused() {
        assert_eq!(search_terms(""), Err(SearchError::Empty));
        assert_eq!(search_terms(" \t\n "), Err(SearchError::Empty));
        assert_eq!(search_terms("\u{0}\u{1}"), Err(SearchError::Empty));
        assert_eq!(search_terms(r#"" - or "#), Err(SearchError::Empty));
    }

    #[test]
    fn long_queries_are_refused() {
        let ok = "a".repeat(MAX_QUERY_CHARS);
        assert_eq!(search_terms(&ok).unwrap(), ok);
        // Characters, not bytes: 200 Cyrillic letters are 400 bytes.
        let cyrillic = "ж".repeat(MAX_QUERY_CHARS);
        assert_eq!(search_terms(&cyrillic).unwrap(), cyrillic);
        assert_eq!(search_terms(&"a".repeat(MAX_QUERY_CHARS + 1)), Err(SearchError::TooLong { got: 201, max: 200 }));
        // Collapsible whitespace does not count.
        let spaced = format!("{}{}", " ".repeat(500), "word");
        assert_eq!(search_terms(&spaced).unwrap(), "word");
        // A huge input is refused without being normalised.
        let huge = "x".repeat(1_000_000);
        assert!(matches!(search_terms(&huge), Err(SearchError::TooLong { .. })));
    }

    #[test]
    fn queries_with_too_many_terms_are_refused() {
        let twelve = (1..=12).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
        assert!(search_terms(&twelve).is_ok());
        // Operators are not terms.
        assert!(search_terms(&format!("{twelve} or -")).is_ok());
        let thirteen = format!("{twelve} w13");
        assert_eq!(search_terms(&thirteen), Err(SearchError::TooManyTerms { got: 13, max: 12 }));
        assert_eq!(
            SearchError::TooManyTerms { got: 13, max: 12 }.to_string(),
            "query has 13 terms; at most 12 are allowed"
        );
    }
}
