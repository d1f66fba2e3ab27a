//! Whether a Moldovan locality is rural, from its name (and its district).
//! Pure.
//!
//! The registry records a locality's name only; a call's `RURAL` rule needs
//! its kind. Moldova's urban localities are a closed, official list: the
//! municipalities (*municipii*) and towns (*orașe*) named in the annex of
//! Law no. 764-XV of 27 December 2001 on the administrative-territorial
//! organisation of the Republic of Moldova (as amended; 13 municipalities
//! and 53 towns, those of the left bank of the Dniester included). Every
//! other locality — a village (*sat*), a commune (*comună*) and its
//! villages, the villages inside a municipality — is rural by that law.
//! [`URBAN`] is that list, each place with the unit it belongs to (its
//! district, municipality or autonomous territorial unit).
//!
//! The rule, in order:
//!
//! 1. An empty name (or one without letters) is not known: `None`.
//! 2. A name marked as a village or commune (`s.`, `sat`, `satul`, `com.`,
//!    `comuna`, `village`, `с.`, `село`) is rural.
//! 3. A name on the list is urban — unless the district says otherwise: a
//!    town's name can also be a village's elsewhere (Costești is a town in
//!    Rîșcani and a village in Ialoveni), so a recognised district that is
//!    not the town's makes it that village, rural. A name marked as a town
//!    (`or.`, `mun.`, …) in another district is a contradiction: `None`.
//! 4. A name not on the list is rural, as the law says — unless it is
//!    marked as a town or municipality (a town the law does not list:
//!    `None`) or written in another script than Latin (the list knows the
//!    Russian names of the municipalities and towns, not of every village,
//!    so an unmatched Cyrillic name is not known: `None`).
//!
//! Names are compared folded: case, Romanian diacritics with or without
//! comma below (ș/ş, ț/ţ), ă, â and î alike (both spellings of Rîșcani /
//! Râșcani, and Rascani typed without them), hyphens and spaces, and the
//! prefixes `or.`, `orașul`, `mun.`, `municipiul`, `s.`, `com.` and their
//! kind. Only what comes before a first comma names the locality ("s.
//! Costești, r. Ialoveni").

/// A municipality or town of Law 764/2001's annex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Urban {
    /// Its official name.
    pub name: &'static str,
    /// A municipality (*municipiu*), else a town (*oraș*).
    pub municipality: bool,
    /// The district, municipality or autonomous territorial unit it is in.
    pub unit: &'static str,
    /// Other names it goes by (Russian, historical).
    pub aliases: &'static [&'static str],
}

const fn m(name: &'static str, unit: &'static str, aliases: &'static [&'static str]) -> Urban {
    Urban { name, municipality: true, unit, aliases }
}

const fn t(name: &'static str, unit: &'static str, aliases: &'static [&'static str]) -> Urban {
    Urban { name, municipality: false, unit, aliases }
}

/// The unit of the left bank's localities (Unitățile administrativ-teritoriale
/// din stînga Nistrului) and Gagauzia (UTA Găgăuzia).
const LEFT_BANK: &str = "Stînga Nistrului";
const GAGAUZIA: &str = "Găgăuzia";

/// Moldova's municipalities and towns (Law 764/2001, annex).
pub const URBAN: &[Urban] = &[
    // The municipalities.
    m("Chișinău", "Chișinău", &["Кишинёв", "Kishinev"]),
    m("Bălți", "Bălți", &["Бельцы", "Beltsy"]),
    m("Bender", "Bender", &["Tighina", "Бендеры", "Bendery"]),
    m("Cahul", "Cahul", &["Кагул", "Kagul"]),
    m("Ceadîr-Lunga", GAGAUZIA, &["Ciadîr-Lunga", "Чадыр-Лунга", "Chadyr-Lunga"]),
    m("Comrat", GAGAUZIA, &["Комрат"]),
    m("Edineț", "Edineț", &["Единцы", "Yedintsy"]),
    m("Hîncești", "Hîncești", &["Хынчешты", "Kotovsk"]),
    m("Orhei", "Orhei", &["Оргеев", "Orgeev"]),
    m("Soroca", "Soroca", &["Сороки", "Soroki"]),
    m("Strășeni", "Strășeni", &["Страшены"]),
    m("Tiraspol", LEFT_BANK, &["Тирасполь"]),
    m("Ungheni", "Ungheni", &["Унгены", "Ungeny"]),
    // The towns, in the order of the alphabet.
    t("Anenii Noi", "Anenii Noi", &["Анений Ной"]),
    t("Basarabeasca", "Basarabeasca", &["Бессарабка"]),
    t("Biruința", "Sîngerei", &["Бируинца"]),
    t("Briceni", "Briceni", &["Бричаны"]),
    t("Bucovăț", "Strășeni", &["Буковэц"]),
    t("Camenca", LEFT_BANK, &["Каменка", "Kamenka"]),
    t("Cantemir", "Cantemir", &["Кантемир"]),
    t("Căinari", "Căușeni", &["Кайнары"]),
    t("Călărași", "Călărași", &["Калараш"]),
    t("Căușeni", "Căușeni", &["Каушаны"]),
    t("Cimișlia", "Cimișlia", &["Чимишлия"]),
    t("Codru", "Chișinău", &["Кодру"]),
    t("Cornești", "Ungheni", &["Корнешты"]),
    t("Costești", "Rîșcani", &["Костешты"]),
    t("Crasnoe", LEFT_BANK, &["Красное"]),
    t("Cricova", "Chișinău", &["Криково"]),
    t("Criuleni", "Criuleni", &["Криуляны"]),
    t("Cupcini", "Edineț", &["Купчинь"]),
    t("Dnestrovsc", LEFT_BANK, &["Днестровск", "Dnestrovsk"]),
    t("Dondușeni", "Dondușeni", &["Дондюшаны"]),
    t("Drochia", "Drochia", &["Дрокия"]),
    t("Dubăsari", LEFT_BANK, &["Дубоссары"]),
    t("Durlești", "Chișinău", &["Дурлешты"]),
    t("Fălești", "Fălești", &["Фалешты"]),
    t("Florești", "Florești", &["Флорешты"]),
    t("Frunză", "Ocnița", &["Фрунзе"]),
    t("Ghindești", "Florești", &["Гиндешты"]),
    t("Glodeni", "Glodeni", &["Глодяны"]),
    t("Grigoriopol", LEFT_BANK, &["Григориополь"]),
    t("Ialoveni", "Ialoveni", &["Яловены"]),
    t("Iargara", "Leova", &["Яргара"]),
    t("Leova", "Leova", &["Леова"]),
    t("Lipcani", "Briceni", &["Липканы"]),
    t("Maiac", LEFT_BANK, &["Маяк"]),
    t("Mărculești", "Florești", &["Маркулешты"]),
    t("Nisporeni", "Nisporeni", &["Ниспорены"]),
    t("Ocnița", "Ocnița", &["Окница"]),
    t("Otaci", "Ocnița", &["Атаки"]),
    t("Rezina", "Rezina", &["Резина"]),
    t("Rîbnița", LEFT_BANK, &["Рыбница", "Rybnitsa"]),
    t("Rîșcani", "Rîșcani", &["Рышканы"]),
    t("Sîngera", "Chișinău", &["Сынжера"]),
    t("Sîngerei", "Sîngerei", &["Сынжерей"]),
    t("Slobozia", LEFT_BANK, &["Слободзея"]),
    t("Șoldănești", "Șoldănești", &["Шолданешты"]),
    t("Ștefan Vodă", "Ștefan Vodă", &["Штефан-Водэ"]),
    t("Taraclia", "Taraclia", &["Тараклия"]),
    t("Telenești", "Telenești", &["Теленешты"]),
    t("Tiraspolul Nou", LEFT_BANK, &[]),
    t("Tvardița", "Taraclia", &["Твардица"]),
    t("Vadul lui Vodă", "Chișinău", &["Вадул-луй-Водэ"]),
    t("Vatra", "Chișinău", &["Ватра"]),
    t("Vulcănești", GAGAUZIA, &["Вулканешты"]),
];

/// Moldova's first-level units as a district may name them, with the unit
/// of [`URBAN`] each stands for (the 32 districts are their own).
const UNITS: &[(&str, &str)] = &[
    ("Anenii Noi", "Anenii Noi"),
    ("Basarabeasca", "Basarabeasca"),
    ("Briceni", "Briceni"),
    ("Cahul", "Cahul"),
    ("Cantemir", "Cantemir"),
    ("Călărași", "Călărași"),
    ("Căușeni", "Căușeni"),
    ("Cimișlia", "Cimișlia"),
    ("Criuleni", "Criuleni"),
    ("Dondușeni", "Dondușeni"),
    ("Drochia", "Drochia"),
    // Dubăsari spans both banks; its one town is on the left.
    ("Dubăsari", LEFT_BANK),
    ("Edineț", "Edineț"),
    ("Fălești", "Fălești"),
    ("Florești", "Florești"),
    ("Glodeni", "Glodeni"),
    ("Hîncești", "Hîncești"),
    ("Ialoveni", "Ialoveni"),
    ("Leova", "Leova"),
    ("Nisporeni", "Nisporeni"),
    ("Ocnița", "Ocnița"),
    ("Orhei", "Orhei"),
    ("Rezina", "Rezina"),
    ("Rîșcani", "Rîșcani"),
    ("Sîngerei", "Sîngerei"),
    ("Soroca", "Soroca"),
    ("Strășeni", "Strășeni"),
    ("Șoldănești", "Șoldănești"),
    ("Ștefan Vodă", "Ștefan Vodă"),
    ("Taraclia", "Taraclia"),
    ("Telenești", "Telenești"),
    ("Ungheni", "Ungheni"),
    // The municipalities of the first level.
    ("Chișinău", "Chișinău"),
    ("Bălți", "Bălți"),
    ("Bender", "Bender"),
    ("Tighina", "Bender"),
    // Gagauzia and its districts.
    ("Găgăuzia", GAGAUZIA),
    ("Gagauzia", GAGAUZIA),
    ("Gagauz Yeri", GAGAUZIA),
    ("Comrat", GAGAUZIA),
    ("Ceadîr-Lunga", GAGAUZIA),
    ("Vulcănești", GAGAUZIA),
    // The left bank and its districts.
    ("Stînga Nistrului", LEFT_BANK),
    ("Transnistria", LEFT_BANK),
    ("Tiraspol", LEFT_BANK),
    ("Camenca", LEFT_BANK),
    ("Grigoriopol", LEFT_BANK),
    ("Rîbnița", LEFT_BANK),
    ("Slobozia", LEFT_BANK),
];

/// Words marking a village or commune.
const RURAL_MARKS: &[&str] = &["s", "sat", "satul", "c", "com", "comuna", "village", "commune", "с", "село"];
/// Words marking a town or municipality.
const URBAN_MARKS: &[&str] =
    &["or", "oras", "orasul", "mun", "municipiul", "municipiu", "town", "city", "г", "город", "пгт", "мун"];
/// Words around a district's name.
const UNIT_MARKS: &[&str] = &[
    "r",
    "rn",
    "r nul",
    "raion",
    "raionul",
    "district",
    "mun",
    "municipiul",
    "municipiu",
    "uta",
    "utag",
    "atu",
    "район",
    "р н",
    "мун",
];

/// Folded for comparison: lower case, â and î alike, no diacritics, every
/// run of other than letters and digits one space.
fn key(s: &str) -> String {
    let lower: String = s
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'â' | 'î' => 'i',
            'ё' => 'е',
            c => c,
        })
        .collect();
    acasa_domain::formats::fold(&lower)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The keys a place's name is matched by: the name folded, and with its î
/// written a (Rîșcani typed Rascani, from Râșcani).
fn keys(name: &str) -> [String; 2] {
    [key(name), key(&name.replace('î', "a"))]
}

/// The longest leading mark of `words` stripped from `k`: whether there
/// was one, and the rest.
fn strip_mark<'k>(k: &'k str, words: &[&str]) -> (bool, &'k str) {
    words
        .iter()
        .filter_map(|w| k.strip_prefix(w).and_then(|r| r.strip_prefix(' ')))
        .filter(|rest| !rest.is_empty())
        .min_by_key(|rest| rest.len())
        .map_or((false, k), |rest| (true, rest))
}

/// The municipality or town of that name (folded, without its mark).
fn urban(name: &str) -> Option<&'static Urban> {
    URBAN
        .iter()
        .find(|u| keys(u.name).iter().any(|k| k == name) || u.aliases.iter().any(|a| keys(a).iter().any(|k| k == name)))
}

/// The unit of [`URBAN`] a district names, if it is one.
fn unit_of(district: &str) -> Option<&'static str> {
    let k = key(district);
    let (_, mut k) = strip_mark(&k, UNIT_MARKS);
    for suffix in [" raion", " district", " r", " rn"] {
        k = k.strip_suffix(suffix).unwrap_or(k);
    }
    UNITS.iter().find(|(name, _)| keys(name).iter().any(|n| n == k)).map(|(_, unit)| *unit)
}

/// Whether the locality `locality` is rural, from its name alone (see the
/// module's rule): `Some(false)` a municipality or town of Law 764/2001,
/// `Some(true)` any other locality, `None` not known.
pub fn is_rural(locality: &str) -> Option<bool> {
    is_rural_in("", locality)
}

/// Whether the locality `locality` of the district `district` (may be
/// empty) is rural (see the module's rule).
pub fn is_rural_in(district: &str, locality: &str) -> Option<bool> {
    let first = locality.split(',').next().unwrap_or_default();
    let k = key(first);
    if !k.chars().any(char::is_alphabetic) {
        return None;
    }
    let (village, name) = strip_mark(&k, RURAL_MARKS);
    if village {
        return Some(true);
    }
    let (town, name) = strip_mark(name, URBAN_MARKS);
    match urban(name) {
        Some(u) => match unit_of(district) {
            Some(unit) if unit != u.unit => (!town).then_some(true),
            _ => Some(false),
        },
        None if town => None,
        None if name.chars().any(|c| c.is_alphabetic() && !c.is_ascii()) => None,
        None => Some(true),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_law_lists_13_municipalities_and_53_towns() {
        assert_eq!(URBAN.len(), 66);
        assert_eq!(URBAN.iter().filter(|u| u.municipality).count(), 13);
        let names: HashSet<String> = URBAN.iter().map(|u| key(u.name)).collect();
        assert_eq!(names.len(), 66, "no name twice");
        // Every place's unit is one a district can name.
        for u in URBAN {
            assert!(UNITS.iter().any(|(_, unit)| *unit == u.unit), "{}", u.name);
        }
        // Every key (name or alias) names one place only.
        let mut seen = HashSet::new();
        for u in URBAN {
            for k in std::iter::once(&u.name).chain(u.aliases).flat_map(|n| keys(n)) {
                assert!(seen.insert(k.clone()) || urban(&k) == Some(u), "{k}");
            }
        }
    }

    #[test]
    fn municipalities_and_towns_are_urban_however_written() {
        for name in [
            "Chișinău",
            "Chisinau",
            "CHIŞINĂU",
            "mun. Chișinău",
            "municipiul Chisinau",
            "Bălți",
            "balti",
            "Bender",
            "Tighina",
            "Comrat",
            "Ceadîr-Lunga",
            "Ceadâr Lunga",
            "ceadir-lunga",
            "Cahul",
            "Ungheni",
            "or. Orhei",
            "Soroca",
            "Edineț",
            "Edinet",
            "Hîncești",
            "Hâncești",
            "Hancesti",
            "Căușeni",
            "Causeni",
            "orașul Căușeni",
            "Rîșcani",
            "Râșcani",
            "Rascani",
            "Riscani",
            "Ștefan Vodă",
            "Stefan-Voda",
            "Ştefan Vodă",
            "Vadul lui Vodă",
            "Vadul-lui-Voda",
            "Tiraspolul Nou",
            "Rîbnița",
            "Camenca",
            "Dnestrovsc",
            "Cricova",
            "Durlești",
            "Anenii Noi",
            "  Vulcănești  ",
            "Кишинёв",
            "Кишинев",
            "г. Бельцы",
            "Chișinău, Moldova",
        ] {
            assert_eq!(is_rural(name), Some(false), "{name}");
        }
    }

    #[test]
    fn villages_and_communes_are_rural() {
        for name in [
            "Giurgiulești",
            "Stăuceni",
            "Colibași",
            "Pîrlița",
            "Sadovoe",
            "s. Giurgiulești",
            "sat Cioburciu",
            "satul Mereni",
            "com. Ciorescu",
            "comuna Trușeni",
            "s.Costești",
            "s. Costești, r. Ialoveni",
            "s. Cricova",
            "с. Копчак",
        ] {
            assert_eq!(is_rural(name), Some(true), "{name}");
        }
    }

    #[test]
    fn nothing_to_go_on_is_not_known() {
        for name in ["", "   ", "-", "12", ", Cahul", "or. Atlantida", "mun. Nowhere", "Копчак"] {
            assert_eq!(is_rural(name), None, "{name:?}");
        }
    }

    #[test]
    fn the_district_tells_a_town_from_a_village_of_the_same_name() {
        assert_eq!(is_rural_in("Rîșcani", "Costești"), Some(false));
        assert_eq!(is_rural_in("r-nul Râșcani", "Costești"), Some(false));
        assert_eq!(is_rural_in("Ialoveni", "Costești"), Some(true), "the village of Ialoveni");
        assert_eq!(is_rural_in("raionul Ialoveni", "Costesti"), Some(true));
        assert_eq!(is_rural_in("Ialoveni", "or. Costești"), None, "a town where there is none");
        assert_eq!(is_rural_in("mun. Chișinău", "Cricova"), Some(false));
        assert_eq!(is_rural_in("Chișinău", "Vadul lui Vodă"), Some(false));
        assert_eq!(is_rural_in("UTA Găgăuzia", "Comrat"), Some(false));
        assert_eq!(is_rural_in("Comrat", "Comrat"), Some(false));
        assert_eq!(is_rural_in("Ceadîr-Lunga", "Ceadîr-Lunga"), Some(false));
        assert_eq!(is_rural_in("Slobozia", "Dnestrovsc"), Some(false));
        assert_eq!(is_rural_in("Transnistria", "Tiraspol"), Some(false));
        assert_eq!(is_rural_in("Tighina", "Bender"), Some(false));
        assert_eq!(is_rural_in("Dubăsari", "Dubăsari"), Some(false));
        assert_eq!(is_rural_in("Stînga Nistrului", "Dubăsari"), Some(false));
        assert_eq!(is_rural_in("Dubăsari", "Cocieri"), Some(true));
        // A district not recognised does not overrule the name.
        assert_eq!(is_rural_in("Atlantida", "Costești"), Some(false));
        assert_eq!(is_rural_in("", "Costești"), Some(false));
        // Nor does it make a village urban.
        assert_eq!(is_rural_in("Cahul", "Giurgiulești"), Some(true));
        assert_eq!(is_rural_in("Cahul", ""), None);
    }

    #[test]
    fn names_fold_to_one_key() {
        assert_eq!(key("  Ştefan-Vodă "), "stefan voda");
        assert_eq!(key("Râșcani"), key("Rîşcani"));
        assert_eq!(key("Кишинёв"), "кишинев");
        assert_eq!(keys("Sîngerei")[1], "sangerei");
        assert_eq!(strip_mark("s", RURAL_MARKS), (false, "s"), "a mark alone is a name");
    }
}
