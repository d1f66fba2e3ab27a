//! Format parsers for the identifiers and values the brief fixes: Moldovan national codes
//! (IDNP/IDNO), e-mail addresses, E.164 phone numbers, ISO 3166-1 alpha-2 countries, BCP 47
//! language tags, ISO 4217 currencies, bounded text, calendar dates and list sizes.
//!
//! Every parser is pure and returns the canonical value or a [`FormatError`] whose message reads
//! well after a field name, e.g. `idnp: has a wrong check digit`.

use chrono::{Months, NaiveDate};

/// Why a value is not in the expected format. Its `Display` is a short, lower-case phrase meant to
/// be shown to API clients after the field name (`field: message`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The value is empty (or only whitespace, for text).
    #[error("is required")]
    Required,
    /// The text is longer than the maximum number of characters.
    #[error("must be at most {max} characters")]
    TooLong {
        /// The maximum number of characters allowed.
        max: usize,
    },
    /// The list has more than the maximum number of entries.
    #[error("must have at most {max} entries")]
    TooMany {
        /// The maximum number of entries allowed.
        max: usize,
    },
    /// Any other format violation; the message says what is expected.
    #[error("{0}")]
    Invalid(&'static str),
}

// ---------------------------------------------------------------------------------------------
// National codes (IDNP / IDNO)
// ---------------------------------------------------------------------------------------------

const NATIONAL_CODE_WEIGHTS: [u32; 3] = [7, 3, 1];

/// The check digit of a Moldovan national code (IDNP/IDNO) for its first 12 digits, given as digit
/// values 0–9: the sum of each digit times its weight (7, 3, 1 repeating), mod 10.
pub fn national_code_check_digit(first12: &[u8; 12]) -> u8 {
    let sum: u32 = first12.iter().zip(NATIONAL_CODE_WEIGHTS.iter().cycle()).map(|(&d, &w)| u32::from(d) * w).sum();
    // `sum % 10` is below 10, so the conversion cannot fail.
    u8::try_from(sum % 10).unwrap_or(0)
}

/// Appends the check digit to 12 ASCII digits, giving a valid 13-digit national code; `None` if
/// `prefix12` is not exactly 12 ASCII digits. Meant for test fixtures and benchmarks.
pub fn make_national_code(prefix12: &str) -> Option<String> {
    let first12 = twelve_digits(prefix12.as_bytes())?;
    let check = national_code_check_digit(&first12);
    Some(format!("{prefix12}{check}"))
}

fn twelve_digits(bytes: &[u8]) -> Option<[u8; 12]> {
    if bytes.len() != 12 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut digits = [0u8; 12];
    for (d, b) in digits.iter_mut().zip(bytes) {
        *d = b - b'0';
    }
    Some(digits)
}

/// A Moldovan personal (IDNP) or company (IDNO) code: exactly 13 ASCII digits whose last digit is
/// the check digit of the first 12 (see [`national_code_check_digit`]). Nothing is trimmed.
pub fn national_code(s: &str) -> Result<String, FormatError> {
    if s.is_empty() {
        return Err(FormatError::Required);
    }
    let bytes = s.as_bytes();
    if bytes.len() != 13 || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(FormatError::Invalid("must be exactly 13 digits"));
    }
    let first12 = twelve_digits(&bytes[..12]).ok_or(FormatError::Invalid("must be exactly 13 digits"))?;
    if national_code_check_digit(&first12) != bytes[12] - b'0' {
        return Err(FormatError::Invalid("has a wrong check digit"));
    }
    Ok(s.to_owned())
}

// ---------------------------------------------------------------------------------------------
// E-mail
// ---------------------------------------------------------------------------------------------

const EMAIL_MESSAGE: &str = "must be an e-mail address such as ion.popescu@example.md";

/// An e-mail address, checked pragmatically: 3 to 254 characters, exactly one `@`, a local part of
/// 1 to 64 printable ASCII characters without spaces, quotes or `<>()[],;:\` (and without leading,
/// trailing or doubled dots), and a domain of dot-separated labels (1 to 63 letters, digits or
/// hyphens, not starting or ending with a hyphen) whose last label is alphabetic with at least two
/// letters. Returned with the domain lower-cased.
pub fn email(s: &str) -> Result<String, FormatError> {
    if s.is_empty() {
        return Err(FormatError::Required);
    }
    let len = s.chars().count();
    if len > 254 {
        return Err(FormatError::TooLong { max: 254 });
    }
    let invalid = FormatError::Invalid(EMAIL_MESSAGE);
    if len < 3 {
        return Err(invalid);
    }
    let (local, domain) = s.split_once('@').ok_or(invalid.clone())?;
    if domain.contains('@') || !email_local_ok(local) || !email_domain_ok(domain) {
        return Err(invalid);
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

fn email_local_ok(local: &str) -> bool {
    const FORBIDDEN: &[u8] = b"\"'<>()[],;:\\";
    (1..=64).contains(&local.len())
        && local.bytes().all(|b| b.is_ascii_graphic() && !FORBIDDEN.contains(&b))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
}

fn email_domain_ok(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let labels_ok = labels.iter().all(|label| {
        (1..=63).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    let tld_ok = labels.last().is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()));
    labels_ok && tld_ok
}

// ---------------------------------------------------------------------------------------------
// Phone
// ---------------------------------------------------------------------------------------------

/// A phone number in E.164 form: `+` followed by 8 to 15 digits, the first not `0`. Nothing is
/// trimmed and no separators are allowed.
pub fn phone_e164(s: &str) -> Result<String, FormatError> {
    if s.is_empty() {
        return Err(FormatError::Required);
    }
    let invalid = FormatError::Invalid("must be an E.164 number such as +37369123456");
    let digits = s.strip_prefix('+').ok_or(invalid.clone())?.as_bytes();
    let ok = (8..=15).contains(&digits.len())
        && digits.iter().all(u8::is_ascii_digit)
        && digits.first().is_some_and(|&d| d != b'0');
    if ok { Ok(s.to_owned()) } else { Err(invalid) }
}

// ---------------------------------------------------------------------------------------------
// Countries
// ---------------------------------------------------------------------------------------------

/// The 249 officially assigned ISO 3166-1 alpha-2 codes, sorted (user-assigned codes such as `XK`
/// are not included).
pub const COUNTRY_CODES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ", "BA", "BB", "BD",
    "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA",
    "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE",
    "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA",
    "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK",
    "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP",
    "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT",
    "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS",
    "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ",
    "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS",
    "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST",
    "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW",
    "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI", "VN", "VU", "WF", "WS", "YE", "YT", "ZA",
    "ZM", "ZW",
];

/// An ISO 3166-1 alpha-2 country code: two upper-case ASCII letters that are officially assigned
/// (see [`COUNTRY_CODES`]). Lower case is rejected rather than corrected.
pub fn country_code(s: &str) -> Result<String, FormatError> {
    if s.is_empty() {
        return Err(FormatError::Required);
    }
    if s.len() != 2 || !s.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(FormatError::Invalid("must be an upper-case ISO 3166-1 alpha-2 code such as MD"));
    }
    if COUNTRY_CODES.binary_search(&s).is_err() {
        return Err(FormatError::Invalid("is not an ISO 3166-1 alpha-2 country code"));
    }
    Ok(s.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Languages
// ---------------------------------------------------------------------------------------------

/// The 184 ISO 639-1 two-letter language codes, sorted.
pub const ISO_639_1_CODES: [&str; 184] = [
    "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bh", "bi", "bm", "bn",
    "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da", "de", "dv", "dz", "ee", "el", "en",
    "eo", "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr", "fy", "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he",
    "hi", "ho", "hr", "ht", "hu", "hy", "hz", "ia", "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv",
    "ka", "kg", "ki", "kj", "kk", "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li",
    "ln", "lo", "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb", "nd", "ne",
    "ng", "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi", "pl", "ps", "pt", "qu", "rm",
    "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk", "sl", "sm", "sn", "so", "sq", "sr", "ss", "st",
    "su", "sv", "sw", "ta", "te", "tg", "th", "ti", "tk", "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk",
    "ur", "uz", "ve", "vi", "vo", "wa", "wo", "xh", "yi", "yo", "za", "zh", "zu",
];

const LANGUAGE_TAG_MESSAGE: &str = "must be a BCP 47 language tag such as ro or en-GB";
const LANGUAGE_TAG_MAX_LEN: usize = 35;

/// A BCP 47 (RFC 5646) language tag, checked for well-formedness over the common subset:
/// a primary language of 2 or 3 letters (a 2-letter one must be an ISO 639-1 code, see
/// [`ISO_639_1_CODES`]), then optionally a script (4 letters), a region (2 letters or 3 digits),
/// distinct variants (5 to 8 letters or digits, or 4 starting with a digit), extensions with distinct
/// singletons (`u-ca-buddhist`) and private use (`x-…`), separated by `-`, at most 35 characters.
/// Extended language subtags, the reserved 4- and 5-to-8-letter primary subtags, tags that are only
/// private use, and grandfathered tags are rejected.
///
/// Returned in canonical case: language lower, script title case, region upper, the rest lower
/// (`EN-gb` becomes `en-GB`, `zh-hant-tw` becomes `zh-Hant-TW`).
pub fn language_tag(s: &str) -> Result<String, FormatError> {
    if s.is_empty() {
        return Err(FormatError::Required);
    }
    parse_language_tag(s).ok_or(FormatError::Invalid(LANGUAGE_TAG_MESSAGE))
}

fn parse_language_tag(s: &str) -> Option<String> {
    if s.len() > LANGUAGE_TAG_MAX_LEN {
        return None;
    }
    let subtags: Vec<&str> = s.split('-').collect();
    if subtags.iter().any(|t| t.is_empty() || t.len() > 8 || !t.bytes().all(|b| b.is_ascii_alphanumeric())) {
        return None;
    }
    let mut out: Vec<String> = Vec::with_capacity(subtags.len());
    let mut rest = subtags.as_slice();

    // Primary language: 2 or 3 letters.
    let (&language, tail) = rest.split_first()?;
    if !(2..=3).contains(&language.len()) || !is_alpha(language) {
        return None;
    }
    let language = language.to_ascii_lowercase();
    if language.len() == 2 && ISO_639_1_CODES.binary_search(&language.as_str()).is_err() {
        return None;
    }
    out.push(language);
    rest = tail;

    // Script: 4 letters, title case.
    if let Some((&script, tail)) = rest.split_first()
        && script.len() == 4
        && is_alpha(script)
    {
        out.push(title_case(script));
        rest = tail;
    }

    // Region: 2 letters or 3 digits, upper case.
    if let Some((&region, tail)) = rest.split_first()
        && ((region.len() == 2 && is_alpha(region)) || (region.len() == 3 && is_digits(region)))
    {
        out.push(region.to_ascii_uppercase());
        rest = tail;
    }

    // Variants: 5-8 alphanumerics, or 4 starting with a digit; no repeats.
    let mut variants: Vec<String> = Vec::new();
    while let Some((&variant, tail)) = rest.split_first() {
        let is_variant =
            (5..=8).contains(&variant.len()) || (variant.len() == 4 && variant.as_bytes()[0].is_ascii_digit());
        if !is_variant {
            break;
        }
        let variant = variant.to_ascii_lowercase();
        if variants.contains(&variant) {
            return None;
        }
        variants.push(variant);
        rest = tail;
    }
    out.extend(variants);

    // Extensions: a singleton other than `x` followed by one or more subtags of 2-8 characters;
    // each singleton at most once.
    let mut singletons: Vec<u8> = Vec::new();
    while let Some((&singleton, tail)) = rest.split_first() {
        let Some(s0) = single_byte(singleton) else { break };
        if s0 == b'x' {
            break;
        }
        if singletons.contains(&s0) {
            return None;
        }
        singletons.push(s0);
        out.push(singleton.to_ascii_lowercase());
        rest = tail;
        let mut count = 0;
        while let Some((&subtag, tail)) = rest.split_first() {
            if subtag.len() < 2 {
                break;
            }
            out.push(subtag.to_ascii_lowercase());
            rest = tail;
            count += 1;
        }
        if count == 0 {
            return None;
        }
    }

    // Private use: `x` followed by one or more subtags of 1-8 characters, to the end.
    if let Some((&x, tail)) = rest.split_first() {
        if single_byte(x) != Some(b'x') || tail.is_empty() {
            return None;
        }
        out.extend(rest.iter().map(|t| t.to_ascii_lowercase()));
        rest = &[];
    }

    rest.is_empty().then(|| out.join("-"))
}

fn is_alpha(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphabetic())
}

fn is_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn single_byte(s: &str) -> Option<u8> {
    match s.as_bytes() {
        [b] => Some(b.to_ascii_lowercase()),
        _ => None,
    }
}

fn title_case(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Currencies
// ---------------------------------------------------------------------------------------------

/// The ISO 4217 currency codes the programme accepts, sorted.
pub const CURRENCY_CODES: [&str; 19] = [
    "AUD", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "ILS", "JPY", "MDL", "NOK", "PLN", "RON", "RUB", "SEK",
    "TRY", "UAH", "USD",
];

/// An ISO 4217 currency code the programme handles (see [`CURRENCY_CODES`]): three upper-case
/// letters. Lower case is rejected rather than corrected.
pub fn currency(s: &str) -> Result<String, FormatError> {
    if s.is_empty() {
        return Err(FormatError::Required);
    }
    if CURRENCY_CODES.binary_search(&s).is_err() {
        return Err(FormatError::Invalid("must be an ISO 4217 currency code such as EUR or MDL"));
    }
    Ok(s.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Text and lists
// ---------------------------------------------------------------------------------------------

/// Required free text: surrounding whitespace is trimmed; the rest must be non-empty, at most
/// `max_chars` characters (Unicode scalar values) and free of control characters (including
/// interior line breaks and tabs).
pub fn text(s: &str, max_chars: usize) -> Result<String, FormatError> {
    let trimmed = s.trim();
    if trimmed.is_empty() {
        return Err(FormatError::Required);
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FormatError::Invalid("must not contain control characters"));
    }
    if trimmed.chars().count() > max_chars {
        return Err(FormatError::TooLong { max: max_chars });
    }
    Ok(trimmed.to_owned())
}

/// Optional free text: empty or whitespace-only gives `None`; anything else is checked as by
/// [`text`].
pub fn optional_text(s: &str, max_chars: usize) -> Result<Option<String>, FormatError> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    text(s, max_chars).map(Some)
}

/// A list length of at most `max` entries.
pub fn list_len(len: usize, max: usize) -> Result<(), FormatError> {
    if len > max {
        return Err(FormatError::TooMany { max });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------

/// The earliest year [`date`] accepts.
pub const MIN_YEAR: i32 = 1900;
/// The latest year [`date`] accepts.
pub const MAX_YEAR: i32 = 2200;
/// How many years before today a [`birth_date`] may lie, at most.
pub const MAX_AGE_YEARS: u32 = 130;

/// A valid Gregorian calendar date in the years 1900 to 2200.
pub fn date(year: i32, month: i32, day: i32) -> Result<NaiveDate, FormatError> {
    if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
        return Err(FormatError::Invalid("must be between 1900 and 2200"));
    }
    let invalid = FormatError::Invalid("is not a valid calendar date");
    let month = u32::try_from(month).map_err(|_| invalid.clone())?;
    let day = u32::try_from(day).map_err(|_| invalid.clone())?;
    NaiveDate::from_ymd_opt(year, month, day).ok_or(invalid)
}

/// A date of birth: a valid [`date`], not after `today`, and not more than 130 years before it.
pub fn birth_date(year: i32, month: i32, day: i32, today: NaiveDate) -> Result<NaiveDate, FormatError> {
    let born = date(year, month, day)?;
    if born > today {
        return Err(FormatError::Invalid("must not be in the future"));
    }
    if let Some(earliest) = today.checked_sub_months(Months::new(MAX_AGE_YEARS * 12))
        && born < earliest
    {
        return Err(FormatError::Invalid("must be within the last 130 years"));
    }
    Ok(born)
}

/// Lower case with Romanian and common Latin diacritics removed: the form
/// names are compared and searched in.
pub fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'ă' | 'â' | 'á' | 'à' | 'ä' | 'ã' | 'å' => 'a',
            'î' | 'í' | 'ì' | 'ï' => 'i',
            'ș' | 'ş' => 's',
            'ț' | 'ţ' => 't',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            'ñ' => 'n',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg<T: std::fmt::Debug>(r: Result<T, FormatError>) -> String {
        r.unwrap_err().to_string()
    }

    // --- national codes ---

    #[test]
    fn check_digit_follows_7_3_1_weights() {
        // 1*7 + 2*3 + 3*1 + 4*7 + 5*3 + 6*1 + 7*7 + 8*3 + 9*1 + 0*7 + 1*3 + 2*1 = 152 -> 2
        assert_eq!(national_code_check_digit(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2]), 2);
        assert_eq!(national_code_check_digit(&[0; 12]), 0);
        assert_eq!(make_national_code("123456789012").as_deref(), Some("1234567890122"));
    }

    #[test]
    fn generated_national_codes_are_valid() {
        for prefix in ["200200123456", "098765432109", "100360001234", "200500107821", "999999999999"] {
            let code = make_national_code(prefix).unwrap();
            assert_eq!(code.len(), 13);
            assert_eq!(national_code(&code).unwrap(), code);
        }
    }

    #[test]
    fn make_national_code_rejects_bad_prefixes() {
        assert_eq!(make_national_code("12345678901"), None);
        assert_eq!(make_national_code("1234567890123"), None);
        assert_eq!(make_national_code("12345678901a"), None);
        assert_eq!(make_national_code(""), None);
    }

    #[test]
    fn wrong_check_digit_is_rejected() {
        let code = make_national_code("200200123456").unwrap();
        let last = code.as_bytes()[12] - b'0';
        let wrong = format!("{}{}", &code[..12], (last + 1) % 10);
        assert_eq!(msg(national_code(&wrong)), "has a wrong check digit");
    }

    #[test]
    fn malformed_national_codes_are_rejected() {
        assert_eq!(national_code(""), Err(FormatError::Required));
        let code = make_national_code("200200123456").unwrap();
        for bad in [
            code[..12].to_owned(),
            format!("{code}0"),
            format!(" {code}"),
            format!("{code} "),
            "20020012345a7".to_owned(),
            "２００２００１２３４５６７".to_owned(),
            "-200200123456".to_owned(),
        ] {
            assert_eq!(msg(national_code(&bad)), "must be exactly 13 digits", "{bad:?}");
        }
    }

    // --- e-mail ---

    #[test]
    fn valid_emails() {
        assert_eq!(email("ion.popescu@example.md").unwrap(), "ion.popescu@example.md");
        assert_eq!(email("Ion.Popescu+acasa@Mail.Example.MD").unwrap(), "Ion.Popescu+acasa@mail.example.md");
        assert_eq!(email("a@b.co").unwrap(), "a@b.co");
        assert_eq!(email("x_y-z@sub-domain.example.org").unwrap(), "x_y-z@sub-domain.example.org");
    }

    #[test]
    fn invalid_emails() {
        assert_eq!(email(""), Err(FormatError::Required));
        let long_local = "a".repeat(65);
        let long_label = "b".repeat(64);
        for bad in [
            "a@b",
            "no-at",
            "two@@x.md",
            "a@b@x.md",
            "sp ace@x.md",
            "@x.md",
            "ion@",
            "ion@.md",
            "ion@x..md",
            "ion@-x.md",
            "ion@x-.md",
            "ion@x.m",
            "ion@x.m1",
            "ion@x_y.md",
            "ion@x.md.",
            "\"ion\"@x.md",
            "i<o>n@x.md",
            "ion,p@x.md",
            "ion;p@x.md",
            "ion:p@x.md",
            "io\\n@x.md",
            ".ion@x.md",
            "ion.@x.md",
            "i..on@x.md",
            "ïon@x.md",
            "ion@exämple.md",
            " ion@x.md",
            &format!("{long_local}@x.md"),
            &format!("ion@{long_label}.md"),
        ] {
            assert_eq!(msg(email(bad)), EMAIL_MESSAGE, "{bad:?}");
        }
        let too_long = format!("{}@{}.md", "a".repeat(64), vec!["c".repeat(60); 4].join("."));
        assert!(too_long.len() > 254);
        assert_eq!(msg(email(&too_long)), "must be at most 254 characters");
    }

    // --- phone ---

    #[test]
    fn valid_phones() {
        assert_eq!(phone_e164("+37369123456").unwrap(), "+37369123456");
        assert!(phone_e164("+12345678").is_ok());
        assert!(phone_e164("+123456789012345").is_ok());
    }

    #[test]
    fn invalid_phones() {
        assert_eq!(phone_e164(""), Err(FormatError::Required));
        for bad in
            ["37369123456", "+0123456789", "+1234567", "+1234567890123456", "+373 69 123 456", "+373-69123456", "+"]
        {
            assert_eq!(msg(phone_e164(bad)), "must be an E.164 number such as +37369123456", "{bad:?}");
        }
    }

    // --- countries ---

    #[test]
    fn country_list_is_sorted_and_unique() {
        assert!(COUNTRY_CODES.windows(2).all(|w| w[0] < w[1]));
        assert!(COUNTRY_CODES.iter().all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())));
    }

    #[test]
    fn valid_countries() {
        for ok in ["MD", "RO", "IT", "AD", "ZW", "UA", "GB"] {
            assert_eq!(country_code(ok).unwrap(), ok);
        }
    }

    #[test]
    fn invalid_countries() {
        assert_eq!(country_code(""), Err(FormatError::Required));
        for bad in ["md", "Md", "MDA", "M", "M1", " MD"] {
            assert_eq!(msg(country_code(bad)), "must be an upper-case ISO 3166-1 alpha-2 code such as MD", "{bad:?}");
        }
        for unknown in ["XX", "XK", "AA", "ZZ", "UK", "EU"] {
            assert_eq!(msg(country_code(unknown)), "is not an ISO 3166-1 alpha-2 country code", "{unknown:?}");
        }
    }

    // --- languages ---

    #[test]
    fn language_list_is_sorted_and_unique() {
        assert!(ISO_639_1_CODES.windows(2).all(|w| w[0] < w[1]));
        assert!(ISO_639_1_CODES.iter().all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_lowercase())));
    }

    #[test]
    fn valid_language_tags() {
        for ok in [
            "ro",
            "ru",
            "en",
            "uk",
            "en-GB",
            "zh-Hant-TW",
            "sr-Latn",
            "es-419",
            "rom",
            "de-CH-1996",
            "sl-rozaj-biske",
            "en-US-u-ca-gregory",
            "ro-MD-x-acasa",
            "en-a-bbb-x-a-ccc",
            "hy-Latn-IT-arevela",
        ] {
            assert_eq!(language_tag(ok).unwrap(), ok);
        }
    }

    #[test]
    fn language_tags_are_canonicalised() {
        assert_eq!(language_tag("EN-gb").unwrap(), "en-GB");
        assert_eq!(language_tag("ZH-hANT-tw").unwrap(), "zh-Hant-TW");
        assert_eq!(language_tag("SR-LATN").unwrap(), "sr-Latn");
        assert_eq!(language_tag("RO").unwrap(), "ro");
        assert_eq!(language_tag("DE-CH-1996-U-CO-PHONEBK-X-FOO").unwrap(), "de-CH-1996-u-co-phonebk-x-foo");
    }

    #[test]
    fn invalid_language_tags() {
        assert_eq!(language_tag(""), Err(FormatError::Required));
        for bad in [
            "english",
            "e",
            "en_GB",
            "qq",
            "xx",
            "engl",
            "en-",
            "-en",
            "en--GB",
            "en-GB-",
            "en GB",
            " en",
            "en-G",
            "en-GBR",
            "en-12",
            "en-123456789",
            "en-verylongvariant",
            "en-u",
            "en-u-x",
            "en-u-ca-u-co",
            "en-x",
            "en-x-toolongsubtag",
            "de-1996-1996",
            "zh-yue",
            "x-private",
            "i-klingon",
            "ro-Latn-Latn",
            "ro-MD-RO",
            "ro-ö",
        ] {
            assert_eq!(msg(language_tag(bad)), "must be a BCP 47 language tag such as ro or en-GB", "{bad:?}");
        }
    }

    #[test]
    fn language_tag_length_is_capped_at_35() {
        let ok = "en-GB-x-aaaaaaaa-bbbbbbbb-ccccccc-d";
        assert_eq!(ok.len(), 35);
        assert_eq!(language_tag(ok).unwrap(), ok);
        let too_long = "en-GB-x-aaaaaaaa-bbbbbbbb-ccccccc-dd";
        assert_eq!(too_long.len(), 36);
        assert!(language_tag(too_long).is_err());
    }

    // --- currencies ---

    #[test]
    fn currencies() {
        assert!(CURRENCY_CODES.windows(2).all(|w| w[0] < w[1]));
        for ok in ["EUR", "MDL", "USD", "RON", "UAH"] {
            assert_eq!(currency(ok).unwrap(), ok);
        }
        assert_eq!(currency(""), Err(FormatError::Required));
        for bad in ["eur", "EU", "EURO", "XXX", "BTC", " EUR"] {
            assert_eq!(msg(currency(bad)), "must be an ISO 4217 currency code such as EUR or MDL", "{bad:?}");
        }
    }

    // --- text and lists ---

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(text("  Ion Popescu \n", 100).unwrap(), "Ion Popescu");
        assert_eq!(text("Ștefan cel Mare", 15).unwrap(), "Ștefan cel Mare");
        assert_eq!(text("", 10), Err(FormatError::Required));
        assert_eq!(text(" \t\n ", 10), Err(FormatError::Required));
        assert_eq!(msg(text("Ștefan cel Mare", 14)), "must be at most 14 characters");
        assert_eq!(msg(text("line\nbreak", 100)), "must not contain control characters");
        assert_eq!(msg(text("tab\there", 100)), "must not contain control characters");
        assert_eq!(msg(text("nul\0", 100)), "must not contain control characters");
        assert_eq!(msg(text("bell\u{7}", 100)), "must not contain control characters");
    }

    #[test]
    fn optional_text_allows_blank() {
        assert_eq!(optional_text("", 10), Ok(None));
        assert_eq!(optional_text("   ", 10), Ok(None));
        assert_eq!(optional_text(" Chișinău ", 10), Ok(Some("Chișinău".to_owned())));
        assert_eq!(msg(optional_text("Chișinău, Moldova", 10)), "must be at most 10 characters");
        assert_eq!(msg(optional_text("a\u{1b}b", 10)), "must not contain control characters");
    }

    #[test]
    fn list_lengths() {
        assert_eq!(list_len(0, 3), Ok(()));
        assert_eq!(list_len(3, 3), Ok(()));
        assert_eq!(msg(list_len(4, 3)), "must have at most 3 entries");
    }

    // --- dates ---

    #[test]
    fn calendar_dates() {
        assert_eq!(date(2024, 2, 29).unwrap(), NaiveDate::from_ymd_opt(2024, 2, 29).unwrap());
        assert_eq!(date(2000, 2, 29).unwrap(), NaiveDate::from_ymd_opt(2000, 2, 29).unwrap());
        assert!(date(1900, 1, 1).is_ok());
        assert!(date(2200, 12, 31).is_ok());
        for (y, m, d) in
            [(2023, 2, 29), (1900, 2, 29), (2024, 4, 31), (2024, 13, 1), (2024, 0, 1), (2024, 1, 0), (2024, -1, 1)]
        {
            assert_eq!(msg(date(y, m, d)), "is not a valid calendar date", "{y}-{m}-{d}");
        }
        assert_eq!(msg(date(1899, 12, 31)), "must be between 1900 and 2200");
        assert_eq!(msg(date(2201, 1, 1)), "must be between 1900 and 2200");
        assert_eq!(msg(date(-5, 1, 1)), "must be between 1900 and 2200");
    }

    #[test]
    fn birth_dates() {
        let today = NaiveDate::from_ymd_opt(2025, 6, 15).unwrap();
        assert_eq!(birth_date(1990, 3, 8, today).unwrap(), NaiveDate::from_ymd_opt(1990, 3, 8).unwrap());
        assert_eq!(birth_date(2025, 6, 15, today).unwrap(), today);
        assert_eq!(msg(birth_date(2025, 6, 16, today)), "must not be in the future");
        assert_eq!(msg(birth_date(2030, 1, 1, today)), "must not be in the future");
        assert_eq!(msg(birth_date(2023, 2, 29, today)), "is not a valid calendar date");
        assert_eq!(msg(birth_date(1899, 1, 1, today)), "must be between 1900 and 2200");

        let later = NaiveDate::from_ymd_opt(2150, 6, 15).unwrap();
        assert!(birth_date(2020, 6, 15, later).is_ok());
        assert_eq!(msg(birth_date(2020, 6, 14, later)), "must be within the last 130 years");

        // 130 years before a 29 February falls on 28 February.
        let leap = NaiveDate::from_ymd_opt(2160, 2, 29).unwrap();
        assert!(birth_date(2030, 2, 28, leap).is_ok());
        assert_eq!(msg(birth_date(2030, 2, 27, leap)), "must be within the last 130 years");
    }

    #[test]
    fn error_display_and_traits() {
        fn is_error<E: std::error::Error + Clone + PartialEq + std::fmt::Debug + Send + Sync + 'static>() {}
        is_error::<FormatError>();
        assert_eq!(FormatError::Required.to_string(), "is required");
        assert_eq!(FormatError::TooLong { max: 100 }.to_string(), "must be at most 100 characters");
        assert_eq!(FormatError::TooMany { max: 5 }.to_string(), "must have at most 5 entries");
    }
}
