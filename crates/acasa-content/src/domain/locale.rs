//! Locales (a validated subset of BCP 47) and the fallback chain used when a
//! translation is missing.
//!
//! # Locales
//!
//! A [`Locale`] is `language[-Script][-REGION]`: a language of 2–3 ASCII
//! letters, an optional 4-letter script and an optional region of 2 letters
//! or 3 digits (UN M.49). That covers every language the programme publishes
//! (`ro`, `ru-MD`, `uk`, `en-GB`, `sr-Latn-RS`, `es-419`). Parsing is
//! case-insensitive and accepts `_` as a separator (`ru_md`); the stored form
//! is the canonical one (`ru-MD`, `sr-Latn-RS`). Variants, extensions and
//! private-use subtags are refused: content is not published in them.
//!
//! # Fallback
//!
//! The configuration (the `ACASA_CONTENT_FALLBACK` value) is a list of rules
//! separated by `;`. A rule is `key=chain` or just a chain:
//!
//! ```text
//! ru-MD>ru>ro>en; uk=uk>ro>en; en=en>ro; *=ro>en
//! ```
//!
//! * a chain lists locales separated by `>` (or `→`, `->`, `,`);
//! * the key is a locale or a bare language, or `*` for every other one;
//! * a rule without a key is keyed by its first locale (`ru-MD>ru>ro>en` is
//!   `ru-MD=ru-MD>ru>ro>en`).
//!
//! A requested locale is tried first, then its parents (`sr-Latn-RS`,
//! `sr-Latn`, `sr`); then the chain of the most specific rule whose key is
//! the requested locale or one of its parents; then the `*` chain, which
//! should end at the source language (Romanian). Duplicates are tried once.
//! [`FallbackChain::resolve`] returns the first available locale so that the
//! answer can say which locale was served. Matching is exact: a reader asking
//! for `ru` is not served `ru-MD` unless a rule says so.
//!
//! Ukrainian does not fall back to Russian by default: the programme's
//! Ukrainian readers are largely displaced people, and Romanian (the source)
//! is the authoritative text.

use std::fmt;
use std::str::FromStr;

/// The longest tag accepted (`sr-Latn-RS` is 10; this leaves room).
const MAX_TAG_LEN: usize = 16;
/// The longest fallback configuration accepted.
const MAX_CONFIG_LEN: usize = 4096;

/// Why a locale tag was refused; each variant names the bad part.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LocaleError {
    /// Nothing was given.
    #[error("locale is empty")]
    Empty,
    /// The tag is longer than any the programme publishes in.
    #[error("locale is longer than {MAX_TAG_LEN} characters")]
    TooLong,
    /// The language subtag is not 2–3 ASCII letters.
    #[error("locale language `{0}` must be 2–3 letters (e.g. `ro`, `uk`)")]
    Language(String),
    /// A subtag after the language is neither a script nor a region, or is
    /// out of order, or is empty.
    #[error("locale subtag `{0}` is not a 4-letter script or a 2-letter / 3-digit region (e.g. `sr-Latn-RS`, `ru-MD`)")]
    Subtag(String),
}

/// A validated, normalised BCP 47 tag: `language[-Script][-REGION]`.
///
/// Equality, ordering and hashing use the canonical form, so `RU_md` and
/// `ru-MD` are the same locale.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Locale {
    /// The canonical tag.
    tag: String,
    /// Byte length of the language subtag within `tag`.
    lang_len: usize,
    /// Byte range of the script subtag within `tag`.
    script: Option<(usize, usize)>,
    /// Byte range of the region subtag within `tag`.
    region: Option<(usize, usize)>,
}

impl Locale {
    /// Parses and normalises a tag (`ru_md` → `ru-MD`, `SR-latn-rs` →
    /// `sr-Latn-RS`).
    pub fn parse(input: &str) -> Result<Locale, LocaleError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(LocaleError::Empty);
        }
        if input.len() > MAX_TAG_LEN {
            return Err(LocaleError::TooLong);
        }
        let mut parts = input.split(['-', '_']);
        let language = parts.next().unwrap_or_default();
        if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(LocaleError::Language(language.to_owned()));
        }
        let mut tag = language.to_ascii_lowercase();
        let lang_len = tag.len();
        let mut script = None;
        let mut region = None;
        for part in parts {
            let is_script = part.len() == 4 && part.bytes().all(|b| b.is_ascii_alphabetic());
            let is_region = (part.len() == 2 && part.bytes().all(|b| b.is_ascii_alphabetic()))
                || (part.len() == 3 && part.bytes().all(|b| b.is_ascii_digit()));
            if is_script && script.is_none() && region.is_none() {
                tag.push('-');
                let start = tag.len();
                let mut chars = part.chars();
                if let Some(first) = chars.next() {
                    tag.push(first.to_ascii_uppercase());
                }
                tag.push_str(&chars.as_str().to_ascii_lowercase());
                script = Some((start, tag.len()));
            } else if is_region && region.is_none() {
                tag.push('-');
                let start = tag.len();
                tag.push_str(&part.to_ascii_uppercase());
                region = Some((start, tag.len()));
            } else {
                return Err(LocaleError::Subtag(part.to_owned()));
            }
        }
        Ok(Locale { tag, lang_len, script, region })
    }

    /// The canonical tag (`sr-Latn-RS`).
    pub fn as_str(&self) -> &str {
        &self.tag
    }

    /// The language subtag, lowercase (`ru` for `ru-MD`).
    pub fn language(&self) -> &str {
        &self.tag[..self.lang_len]
    }

    /// The script subtag, titlecase (`Latn` for `sr-Latn-RS`), if any.
    pub fn script(&self) -> Option<&str> {
        self.script.map(|(a, b)| &self.tag[a..b])
    }

    /// The region subtag, uppercase or digits (`MD` for `ru-MD`), if any.
    pub fn region(&self) -> Option<&str> {
        self.region.map(|(a, b)| &self.tag[a..b])
    }

    /// Whether this is a bare language (`ru`).
    pub fn is_language_only(&self) -> bool {
        self.script.is_none() && self.region.is_none()
    }

    /// The parent by BCP 47 truncation: the region is dropped first, then the
    /// script (`sr-Latn-RS` → `sr-Latn` → `sr`); a bare language has none.
    pub fn parent(&self) -> Option<Locale> {
        let end = match (self.script, self.region) {
            (_, Some((start, _))) | (Some((start, _)), None) => start - 1,
            (None, None) => return None,
        };
        Some(Locale {
            tag: self.tag[..end].to_owned(),
            lang_len: self.lang_len,
            script: if self.region.is_some() { self.script } else { None },
            region: None,
        })
    }

    /// This locale followed by its parents (`sr-Latn-RS`, `sr-Latn`, `sr`).
    pub fn ancestry(&self) -> Vec<Locale> {
        let mut out = vec![self.clone()];
        while let Some(parent) = out.last().and_then(Locale::parent) {
            out.push(parent);
        }
        out
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.tag)
    }
}

impl fmt::Debug for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Locale({})", self.tag)
    }
}

impl FromStr for Locale {
    type Err = LocaleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Locale::parse(s)
    }
}

impl AsRef<str> for Locale {
    fn as_ref(&self) -> &str {
        &self.tag
    }
}

/// Why a fallback configuration was refused; the message names the rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FallbackConfigError {
    /// The configuration has no rule.
    #[error("fallback configuration is empty")]
    Empty,
    /// The configuration is unreasonably long.
    #[error("fallback configuration is longer than {MAX_CONFIG_LEN} bytes")]
    TooLong,
    /// A rule has an empty key or an empty chain, or an empty link (`ru>>ro`).
    #[error("fallback rule `{rule}`: {what} is empty")]
    EmptyPart {
        /// The rule as written.
        rule: String,
        /// Which part is empty (`key`, `chain`, `locale`).
        what: &'static str,
    },
    /// A locale in a rule does not parse.
    #[error("fallback rule `{rule}`: `{part}`: {error}")]
    BadLocale {
        /// The rule as written.
        rule: String,
        /// The bad locale as written.
        part: String,
        /// Why it was refused.
        error: LocaleError,
    },
    /// Two rules have the same key.
    #[error("fallback rule `{rule}`: key `{key}` is already configured")]
    DuplicateKey {
        /// The second rule as written.
        rule: String,
        /// The repeated key.
        key: String,
    },
}

/// The fallback rules: see the [module documentation](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FallbackChain {
    /// Keyed rules, in configuration order.
    rules: Vec<(Locale, Vec<Locale>)>,
    /// The `*` rule, tried last.
    default: Vec<Locale>,
}

impl FallbackChain {
    /// The configuration used when `ACASA_CONTENT_FALLBACK` is unset: Russian
    /// in Moldova falls back to Russian, then Romanian (the source), then
    /// English; Ukrainian and English to Romanian; everything else to Romanian
    /// then English.
    pub const DEFAULT: &'static str = "ru-MD>ru>ro>en; ru=ru>ro>en; uk=uk>ro>en; en=en>ro; *=ro>en";

    /// Parses a configuration (see the [module documentation](self)).
    pub fn parse(config: &str) -> Result<FallbackChain, FallbackConfigError> {
        if config.len() > MAX_CONFIG_LEN {
            return Err(FallbackConfigError::TooLong);
        }
        let mut rules: Vec<(Locale, Vec<Locale>)> = Vec::new();
        let mut default: Option<Vec<Locale>> = None;
        for raw in config.split([';', '\n']) {
            let rule = raw.trim();
            if rule.is_empty() {
                continue;
            }
            let (key, chain) = match rule.split_once('=') {
                Some((key, chain)) => (Some(key.trim()), chain),
                None => (None, rule),
            };
            let chain = parse_chain(rule, chain)?;
            let key = match key {
                Some("") => {
                    return Err(FallbackConfigError::EmptyPart { rule: rule.to_owned(), what: "key" });
                }
                Some("*") => {
                    if default.is_some() {
                        return Err(FallbackConfigError::DuplicateKey { rule: rule.to_owned(), key: "*".to_owned() });
                    }
                    default = Some(chain);
                    continue;
                }
                Some(key) => Locale::parse(key).map_err(|error| FallbackConfigError::BadLocale {
                    rule: rule.to_owned(),
                    part: key.to_owned(),
                    error,
                })?,
                None => match chain.first() {
                    Some(first) => first.clone(),
                    None => {
                        return Err(FallbackConfigError::EmptyPart { rule: rule.to_owned(), what: "chain" });
                    }
                },
            };
            if rules.iter().any(|(k, _)| *k == key) {
                return Err(FallbackConfigError::DuplicateKey { rule: rule.to_owned(), key: key.to_string() });
            }
            rules.push((key, chain));
        }
        if rules.is_empty() && default.is_none() {
            return Err(FallbackConfigError::Empty);
        }
        Ok(FallbackChain { rules, default: default.unwrap_or_default() })
    }

    /// The locales tried for `requested`, in order, without duplicates.
    pub fn candidates(&self, requested: &Locale) -> Vec<Locale> {
        let ancestry = requested.ancestry();
        let mut out: Vec<Locale> = Vec::new();
        let mut push = |locale: &Locale| {
            if !out.contains(locale) {
                out.push(locale.clone());
            }
        };
        ancestry.iter().for_each(&mut push);
        let rule = ancestry.iter().find_map(|l| self.rules.iter().find(|(key, _)| key == l));
        if let Some((_, chain)) = rule {
            chain.iter().for_each(&mut push);
        }
        self.default.iter().for_each(&mut push);
        out
    }

    /// The first of [`candidates`](Self::candidates) that is `available`:
    /// the locale to serve, or `None` when no candidate is available.
    pub fn resolve<'a>(&self, requested: &Locale, available: &'a [Locale]) -> Option<&'a Locale> {
        self.candidates(requested).iter().find_map(|c| available.iter().find(|a| *a == c))
    }
}

impl Default for FallbackChain {
    fn default() -> Self {
        // The constant is tested to parse; an empty chain is the safe
        // degenerate case rather than a panic.
        FallbackChain::parse(Self::DEFAULT).unwrap_or(FallbackChain { rules: Vec::new(), default: Vec::new() })
    }
}

impl FromStr for FallbackChain {
    type Err = FallbackConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FallbackChain::parse(s)
    }
}

/// Parses `a>b>c` (or `→`, `->`, `,`) within `rule`.
fn parse_chain(rule: &str, chain: &str) -> Result<Vec<Locale>, FallbackConfigError> {
    let chain = chain.replace("->", ">").replace(['→', ','], ">");
    let chain = chain.trim();
    if chain.is_empty() {
        return Err(FallbackConfigError::EmptyPart { rule: rule.to_owned(), what: "chain" });
    }
    chain
        .split('>')
        .map(|part| {
            let part = part.trim();
            if part.is_empty() {
                return Err(FallbackConfigError::EmptyPart { rule: rule.to_owned(), what: "locale" });
            }
            Locale::parse(part).map_err(|error| FallbackConfigError::BadLocale {
                rule: rule.to_owned(),
                part: part.to_owned(),
                error,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(s: &str) -> Locale {
        Locale::parse(s).unwrap()
    }

    fn tags(v: &[Locale]) -> Vec<&str> {
        v.iter().map(Locale::as_str).collect()
    }

    #[test]
    fn parses_and_normalises_the_programmes_locales() {
        for (input, canonical) in [
            ("ro", "ro"),
            ("RO", "ro"),
            ("ru-MD", "ru-MD"),
            ("ru_md", "ru-MD"),
            ("uk", "uk"),
            ("en-gb", "en-GB"),
            ("SR-latn-rs", "sr-Latn-RS"),
            ("sr-Cyrl", "sr-Cyrl"),
            ("es-419", "es-419"),
            ("fil", "fil"),
            ("  de-AT ", "de-AT"),
        ] {
            assert_eq!(l(input).as_str(), canonical, "{input}");
        }
    }

    #[test]
    fn exposes_its_subtags() {
        let sr = l("sr-latn-rs");
        assert_eq!(sr.language(), "sr");
        assert_eq!(sr.script(), Some("Latn"));
        assert_eq!(sr.region(), Some("RS"));
        let ru = l("ru-MD");
        assert_eq!((ru.language(), ru.script(), ru.region()), ("ru", None, Some("MD")));
        let uk = l("uk");
        assert_eq!((uk.language(), uk.script(), uk.region()), ("uk", None, None));
        assert!(uk.is_language_only());
        assert_eq!(l("es-419").region(), Some("419"));
    }

    #[test]
    fn equal_whatever_the_case_written() {
        assert_eq!(l("RU_md"), l("ru-MD"));
        assert_eq!(l("ru-MD").to_string(), "ru-MD");
        assert_eq!("en-GB".parse::<Locale>().unwrap(), l("en-gb"));
        assert_eq!(format!("{:?}", l("uk")), "Locale(uk)");
    }

    #[test]
    fn refuses_bad_tags_naming_the_part() {
        assert_eq!(Locale::parse(""), Err(LocaleError::Empty));
        assert_eq!(Locale::parse("   "), Err(LocaleError::Empty));
        assert_eq!(Locale::parse("r"), Err(LocaleError::Language("r".into())));
        assert_eq!(Locale::parse("russ"), Err(LocaleError::Language("russ".into())));
        assert_eq!(Locale::parse("r1"), Err(LocaleError::Language("r1".into())));
        assert_eq!(Locale::parse("-MD"), Err(LocaleError::Language("".into())));
        assert_eq!(Locale::parse("ру"), Err(LocaleError::Language("ру".into())));
        assert_eq!(Locale::parse("ru-"), Err(LocaleError::Subtag("".into())));
        assert_eq!(Locale::parse("ru-M"), Err(LocaleError::Subtag("M".into())));
        assert_eq!(Locale::parse("ru-MDA"), Err(LocaleError::Subtag("MDA".into())));
        assert_eq!(Locale::parse("ru-12"), Err(LocaleError::Subtag("12".into())));
        // Script after region, two regions, two scripts.
        assert_eq!(Locale::parse("sr-RS-Latn"), Err(LocaleError::Subtag("Latn".into())));
        assert_eq!(Locale::parse("ru-MD-RU"), Err(LocaleError::Subtag("RU".into())));
        assert_eq!(Locale::parse("sr-Latn-Cyrl"), Err(LocaleError::Subtag("Cyrl".into())));
        // Variants, extensions, private use.
        assert_eq!(Locale::parse("de-DE-1996"), Err(LocaleError::Subtag("1996".into())));
        assert_eq!(Locale::parse("en-x-hi"), Err(LocaleError::Subtag("x".into())));
        assert_eq!(Locale::parse("ro-RO-u-ca-gregory"), Err(LocaleError::TooLong));
        assert_eq!(Locale::parse("ro<script>"), Err(LocaleError::Language("ro<script>".into())));
        let message = Locale::parse("ru-M").unwrap_err().to_string();
        assert!(message.contains("`M`"), "{message}");
    }

    #[test]
    fn parents_truncate_region_then_script() {
        assert_eq!(tags(&l("sr-Latn-RS").ancestry()), ["sr-Latn-RS", "sr-Latn", "sr"]);
        assert_eq!(tags(&l("ru-MD").ancestry()), ["ru-MD", "ru"]);
        assert_eq!(tags(&l("uk").ancestry()), ["uk"]);
        let p = l("sr-Latn-RS").parent().unwrap();
        assert_eq!(p.script(), Some("Latn"));
        assert_eq!(p.region(), None);
        assert_eq!(p, l("sr-Latn"));
        assert_eq!(l("uk").parent(), None);
    }

    #[test]
    fn the_default_configuration_parses() {
        let chain = FallbackChain::default();
        assert_eq!(chain, FallbackChain::parse(FallbackChain::DEFAULT).unwrap());
        assert_eq!(tags(&chain.candidates(&l("ru-MD"))), ["ru-MD", "ru", "ro", "en"]);
        assert_eq!(tags(&chain.candidates(&l("uk"))), ["uk", "ro", "en"]);
        assert_eq!(tags(&chain.candidates(&l("uk-UA"))), ["uk-UA", "uk", "ro", "en"]);
        assert_eq!(tags(&chain.candidates(&l("en-GB"))), ["en-GB", "en", "ro"]);
        assert_eq!(tags(&chain.candidates(&l("de-AT"))), ["de-AT", "de", "ro", "en"]);
        assert_eq!(tags(&chain.candidates(&l("ro"))), ["ro", "en"]);
    }

    #[test]
    fn given_a_ukrainian_reader_when_only_romanian_exists_then_romanian_is_served() {
        let chain = FallbackChain::default();
        let available = [l("ro"), l("ru")];
        assert_eq!(chain.resolve(&l("uk"), &available), Some(&l("ro")));
    }

    #[test]
    fn given_the_requested_locale_exists_then_it_is_served() {
        let chain = FallbackChain::default();
        let available = [l("ro"), l("ru"), l("ru-MD")];
        assert_eq!(chain.resolve(&l("ru-md"), &available), Some(&l("ru-MD")));
    }

    #[test]
    fn given_a_regional_request_then_the_parent_language_comes_first() {
        let chain = FallbackChain::default();
        let available = [l("en"), l("ro"), l("ru")];
        assert_eq!(chain.resolve(&l("ru-MD"), &available), Some(&l("ru")));
        assert_eq!(chain.resolve(&l("ru-UA"), &available), Some(&l("ru")));
    }

    #[test]
    fn given_nothing_on_the_chain_is_available_then_none() {
        let chain = FallbackChain::default();
        assert_eq!(chain.resolve(&l("uk"), &[l("de")]), None);
        assert_eq!(chain.resolve(&l("uk"), &[]), None);
    }

    #[test]
    fn exact_matching_does_not_serve_a_more_specific_locale() {
        let chain = FallbackChain::default();
        assert_eq!(chain.resolve(&l("ru"), &[l("ru-MD"), l("ro")]), Some(&l("ro")));
    }

    #[test]
    fn accepts_every_separator_syntax() {
        let a = FallbackChain::parse("ru-MD>ru>ro>en").unwrap();
        let b = FallbackChain::parse("ru-MD → ru → ro → en").unwrap();
        let c = FallbackChain::parse("ru-MD -> ru -> ro -> en").unwrap();
        let d = FallbackChain::parse("ru-MD=ru-MD,ru,ro,en").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a, d);
        assert_eq!(tags(&a.candidates(&l("ru-MD"))), ["ru-MD", "ru", "ro", "en"]);
        // No rule and no default for Ukrainian: only itself.
        assert_eq!(tags(&a.candidates(&l("uk"))), ["uk"]);
    }

    #[test]
    fn rules_may_be_separated_by_newlines_and_keyed_by_language() {
        let chain = FallbackChain::parse("uk = uk > ru > ro\n *=ro").unwrap();
        assert_eq!(tags(&chain.candidates(&l("uk-UA"))), ["uk-UA", "uk", "ru", "ro"]);
        assert_eq!(tags(&chain.candidates(&l("fr"))), ["fr", "ro"]);
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let chain = FallbackChain::parse("ru=ru>en; ru-MD=ru-MD>ro; *=ro").unwrap();
        assert_eq!(tags(&chain.candidates(&l("ru-MD"))), ["ru-MD", "ru", "ro"]);
        assert_eq!(tags(&chain.candidates(&l("ru-RU"))), ["ru-RU", "ru", "en", "ro"]);
    }

    #[test]
    fn bad_configurations_name_the_bad_part() {
        assert_eq!(FallbackChain::parse(""), Err(FallbackConfigError::Empty));
        assert_eq!(FallbackChain::parse(" ; ;"), Err(FallbackConfigError::Empty));
        assert_eq!(FallbackChain::parse("x".repeat(5000).as_str()), Err(FallbackConfigError::TooLong));
        let err = FallbackChain::parse("ru-MD>ru; uk=uk>>ro").unwrap_err();
        assert_eq!(err, FallbackConfigError::EmptyPart { rule: "uk=uk>>ro".into(), what: "locale" });
        let err = FallbackChain::parse("uk=").unwrap_err();
        assert!(matches!(err, FallbackConfigError::EmptyPart { what: "chain", .. }));
        let err = FallbackChain::parse("=ro").unwrap_err();
        assert!(matches!(err, FallbackConfigError::EmptyPart { what: "key", .. }));
        let err = FallbackChain::parse("ru-MD>russian>ro").unwrap_err();
        assert_eq!(
            err.to_string(),
            "fallback rule `ru-MD>russian>ro`: `russian`: locale language `russian` must be 2–3 letters (e.g. `ro`, `uk`)"
        );
        let err = FallbackChain::parse("xx-1=ro").unwrap_err();
        assert!(matches!(err, FallbackConfigError::BadLocale { ref part, .. } if part == "xx-1"));
        let err = FallbackChain::parse("ru>ro; ru=ru>en").unwrap_err();
        assert_eq!(err, FallbackConfigError::DuplicateKey { rule: "ru=ru>en".into(), key: "ru".into() });
        let err = FallbackChain::parse("*=ro; *=en").unwrap_err();
        assert!(matches!(err, FallbackConfigError::DuplicateKey { ref key, .. } if key == "*"));
    }
}
