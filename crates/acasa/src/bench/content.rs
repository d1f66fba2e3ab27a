//! The content part of `acasa bench`: a running content service and its
//! worker (`acasa serve content`, `acasa project content`: the read models
//! and the deadline worker; separate processes started by `make bench`,
//! which raises the public per-client rate for it, see `scripts/bench.sh`)
//! driven over gRPC, beside the raw JetStream ceiling measured in the same
//! run.
//!
//! Setup (timed, not a target): `articles` articles, each written in
//! Romanian and translated into Russian, English and Ukrainian, every
//! version submitted by one editor, approved by another subject (a
//! reviewer) and published — four published versions per article — and a
//! twentieth as many more published in Romanian and Russian only, so that
//! Ukrainian readers fall back to Romanian. The texts are generated from
//! parallel word lists per language (a few hundred words a body, the
//! general words drawn with a Zipf-like skew, each article leaning on its
//! topic's words and its destination countries), so the text-search index
//! holds realistic documents. `clients` articles are seeded at once, each
//! article's commands one after another; then the wait until the read
//! model holds the last of them (`GetArticleDraft` with `min_position`).
//!
//! After a warm-up (every slug read once, a few hundred searches and lists,
//! not measured), with `readers` at a time:
//!
//! 1. `GetArticle` by slug in a mix of locales: `ro`, `ru-MD` (served
//!    `ru`), `uk` (served `uk`, and `ro` for the articles without a
//!    Ukrainian version), `en` (target p99 ≤ 5 ms); each answer's served
//!    locale is checked.
//! 2. `SearchArticles` with one to three words in each language, in that
//!    language's locale or one falling back to it (Russian words for
//!    `ru-MD`, Romanian words for `uk`) (target p99 ≤ 50 ms).
//! 3. `ListArticles` for a destination country and a topic, in the same
//!    locales (reported, no target).
//!
//! Last, the peak RSS (VmHWM) of the service and the worker (target for
//! the service ≤ 100 MiB), and the campaign sends through the outbox to a
//! local SMTP server ([`super::campaigns`], target ≥ 200 messages/s, none
//! twice). No figure fails
//! the bench; an answer served in the wrong locale is counted and reported.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use acasa_proto::content::v1::{
    self as pb, content_service_client::ContentServiceClient, public_content_service_client::PublicContentServiceClient,
};
use acasa_runtime::{Config, Role, TokenIssuer};
use anyhow::Context as _;
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use serde::Serialize;
use tonic::{
    Code, Request, Status,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

use super::client::{bearer, connect, req};
use super::stats::{Rate, concurrently, peak_rss_mib, rate};

/// The deadline of one editorial command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// The deadline of one public read.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The languages written, in the order of the word lists' columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lang {
    Ro,
    Ru,
    En,
    Uk,
}

impl Lang {
    const ALL: [Lang; 4] = [Lang::Ro, Lang::Ru, Lang::En, Lang::Uk];

    fn code(self) -> &'static str {
        match self {
            Lang::Ro => "ro",
            Lang::Ru => "ru",
            Lang::En => "en",
            Lang::Uk => "uk",
        }
    }

    fn column(self) -> usize {
        self as usize
    }
}

/// General words (ro, ru, en, uk), most common first.
const GENERAL: &[[&str; 4]] = &[
    ["muncă", "работа", "work", "робота"],
    ["migranți", "мигранты", "migrants", "мігранти"],
    ["drepturi", "права", "rights", "права"],
    ["documente", "документы", "documents", "документи"],
    ["cetățeni", "граждане", "citizens", "громадяни"],
    ["Moldova", "Молдова", "Moldova", "Молдова"],
    ["informații", "информация", "information", "інформація"],
    ["ajutor", "помощь", "help", "допомога"],
    ["trebuie", "нужно", "must", "потрібно"],
    ["poate", "может", "can", "може"],
    ["cerere", "заявление", "application", "заява"],
    ["familie", "семья", "family", "родина"],
    ["lucrător", "работник", "worker", "працівник"],
    ["angajator", "работодатель", "employer", "роботодавець"],
    ["contract", "договор", "contract", "договір"],
    ["salariu", "зарплата", "salary", "зарплата"],
    ["copii", "дети", "children", "діти"],
    ["țară", "страна", "country", "країна"],
    ["lege", "закон", "law", "закон"],
    ["servicii", "услуги", "services", "послуги"],
    ["obține", "получить", "obtain", "отримати"],
    ["sprijin", "поддержка", "support", "підтримка"],
    ["consulat", "консульство", "consulate", "консульство"],
    ["important", "важно", "important", "важливо"],
    ["termen", "срок", "deadline", "термін"],
    ["depune", "подать", "submit", "подати"],
    ["necesar", "необходимо", "necessary", "необхідно"],
    ["program", "программа", "programme", "програма"],
    ["gratuit", "бесплатно", "free", "безкоштовно"],
    ["ambasadă", "посольство", "embassy", "посольство"],
    ["verifica", "проверить", "check", "перевірити"],
    ["autorități", "власти", "authorities", "влада"],
    ["reședință", "проживание", "residence", "проживання"],
    ["permis", "разрешение", "permit", "дозвіл"],
    ["cetățenie", "гражданство", "citizenship", "громадянство"],
    ["oficial", "официальный", "official", "офіційний"],
    ["procedură", "процедура", "procedure", "процедура"],
    ["primi", "получать", "receive", "одержувати"],
    ["legislație", "законодательство", "legislation", "законодавство"],
    ["instituție", "учреждение", "institution", "установа"],
    ["telefon", "телефон", "phone", "телефон"],
    ["adresă", "адрес", "address", "адреса"],
    ["birou", "офис", "office", "офіс"],
    ["programare", "запись", "appointment", "запис"],
    ["formular", "бланк", "form", "бланк"],
    ["costuri", "расходы", "costs", "витрати"],
    ["plăti", "оплатить", "pay", "сплатити"],
    ["online", "онлайн", "online", "онлайн"],
    ["contacta", "связаться", "contact", "звернутися"],
    ["ghid", "руководство", "guide", "посібник"],
    ["întrebări", "вопросы", "questions", "питання"],
    ["solicita", "запросить", "request", "запросити"],
    ["viză", "виза", "visa", "віза"],
    ["pașaport", "паспорт", "passport", "паспорт"],
    ["certificat", "справка", "certificate", "довідка"],
    ["traducere", "перевод", "translation", "переклад"],
    ["notar", "нотариус", "notary", "нотаріус"],
    ["apostilă", "апостиль", "apostille", "апостиль"],
    ["asigurare", "страховка", "insurance", "страхування"],
    ["recunoaște", "признать", "recognise", "визнати"],
    ["legal", "законный", "lawful", "законний"],
    ["nou", "новый", "new", "новий"],
    ["lunar", "ежемесячно", "monthly", "щомісяця"],
    ["anual", "ежегодно", "yearly", "щороку"],
    ["rapid", "быстро", "quickly", "швидко"],
    ["personal", "лично", "personally", "особисто"],
    ["electronic", "электронный", "electronic", "електронний"],
    ["serviciu", "услуга", "service", "послуга"],
    ["document", "документ", "document", "документ"],
    ["migrant", "мигрант", "migrant", "мігрант"],
];

/// Each topic's words (ro, ru, en, uk), in the API's topic order (1 to 7).
const TOPIC_WORDS: [&[[&str; 4]]; 7] = [
    &[
        ["avocat", "адвокат", "lawyer", "адвокат"],
        ["juridică", "юридическая", "counsel", "юридична"],
        ["instanță", "суд", "court", "суд"],
        ["plângere", "жалоба", "complaint", "скарга"],
        ["discriminare", "дискриминация", "discrimination", "дискримінація"],
        ["exploatare", "эксплуатация", "exploitation", "експлуатація"],
        ["consultanță", "консультация", "consultation", "консультація"],
        ["proces", "процесс", "lawsuit", "процес"],
        ["interpret", "переводчик", "interpreter", "перекладач"],
        ["litigiu", "спор", "dispute", "спір"],
        ["concediere", "увольнение", "dismissal", "звільнення"],
        ["inspecție", "инспекция", "inspection", "інспекція"],
    ],
    &[
        ["pensie", "пенсия", "pension", "пенсія"],
        ["pensii", "пенсии", "pensions", "пенсії"],
        ["stagiu", "стаж", "seniority", "стаж"],
        ["contribuții", "взносы", "contributions", "внески"],
        ["indemnizație", "пособие", "allowance", "виплата"],
        ["prestații", "выплаты", "benefits", "пільги"],
        ["acord", "соглашение", "agreement", "угода"],
        ["socială", "социальное", "social", "соціальне"],
        ["transfer", "перечисление", "transfer", "переказ"],
        ["vârstă", "возраст", "age", "вік"],
        ["calcul", "расчет", "calculation", "розрахунок"],
        ["portabilitate", "перенос", "portability", "перенесення"],
    ],
    &[
        ["medic", "врач", "doctor", "лікар"],
        ["spital", "больница", "hospital", "лікарня"],
        ["medicamente", "лекарства", "medicines", "ліки"],
        ["tratament", "лечение", "treatment", "лікування"],
        ["urgență", "неотложная", "emergency", "невідкладна"],
        ["poliță", "полис", "policy", "поліс"],
        ["medicală", "медицинская", "medical", "медична"],
        ["vaccinare", "вакцинация", "vaccination", "вакцинація"],
        ["boală", "болезнь", "illness", "хвороба"],
        ["clinică", "клиника", "clinic", "клініка"],
        ["sarcină", "беременность", "pregnancy", "вагітність"],
        ["stomatolog", "стоматолог", "dentist", "стоматолог"],
    ],
    &[
        ["buletin", "удостоверение", "identity", "посвідчення"],
        ["naștere", "рождение", "birth", "народження"],
        ["căsătorie", "брак", "marriage", "шлюб"],
        ["procură", "доверенность", "proxy", "довіреність"],
        ["legalizare", "легализация", "legalisation", "легалізація"],
        ["consulară", "консульская", "consular", "консульська"],
        ["reînnoire", "продление", "renewal", "продовження"],
        ["pierdere", "утеря", "loss", "втрата"],
        ["eliberare", "выдача", "issuance", "видача"],
        ["registru", "реестр", "register", "реєстр"],
        ["deces", "смерть", "death", "смерть"],
        ["duplicat", "дубликат", "duplicate", "дублікат"],
    ],
    &[
        ["întoarcere", "возвращение", "return", "повернення"],
        ["voluntară", "добровольное", "voluntary", "добровільне"],
        ["bilet", "билет", "ticket", "квиток"],
        ["călătorie", "поездка", "journey", "подорож"],
        ["asistență", "содействие", "assistance", "сприяння"],
        ["organizație", "организация", "organisation", "організація"],
        ["transport", "транспорт", "transport", "транспорт"],
        ["aeroport", "аэропорт", "airport", "аеропорт"],
        ["bagaj", "багаж", "luggage", "багаж"],
        ["frontieră", "граница", "border", "кордон"],
        ["escortă", "сопровождение", "escort", "супровід"],
        ["cazare", "жилье", "accommodation", "житло"],
    ],
    &[
        ["școală", "школа", "school", "школа"],
        ["educație", "образование", "education", "освіта"],
        ["grădiniță", "детсад", "kindergarten", "садочок"],
        ["elevi", "ученики", "pupils", "учні"],
        ["diplomă", "диплом", "diploma", "диплом"],
        ["echivalare", "эквивалентность", "equivalence", "еквівалентність"],
        ["înscriere", "зачисление", "enrolment", "зарахування"],
        ["profesor", "учитель", "teacher", "вчитель"],
        ["burse", "стипендии", "scholarships", "стипендії"],
        ["limba", "язык", "language", "мова"],
        ["universitate", "университет", "university", "університет"],
        ["bonă", "няня", "childminder", "няня"],
    ],
    &[
        ["reintegrare", "реинтеграция", "reintegration", "реінтеграція"],
        ["afacere", "бизнес", "business", "бізнес"],
        ["antreprenori", "предприниматели", "entrepreneurs", "підприємці"],
        ["grant", "грант", "grant", "грант"],
        ["investiții", "инвестиции", "investments", "інвестиції"],
        ["locuri", "вакансии", "vacancies", "вакансії"],
        ["credit", "кредит", "loan", "кредит"],
        ["fermă", "ферма", "farm", "ферма"],
        ["startup", "стартап", "startup", "стартап"],
        ["formare", "обучение", "training", "навчання"],
        ["economii", "сбережения", "savings", "заощадження"],
        ["remitențe", "переводы", "remittances", "перекази"],
    ],
];

/// Slug stems of the topics, in the same order.
const TOPIC_SLUGS: [&str; 7] = [
    "asistenta-juridica",
    "portabilitatea-prestatiilor",
    "sanatate-si-asigurari",
    "acte-si-ajutor-consular",
    "intoarcere-voluntara",
    "educatie-si-copii",
    "revenire-si-reintegrare",
];

/// Destination countries: the code and the name (ro, ru, en, uk).
const COUNTRIES: &[(&str, [&str; 4])] = &[
    ("IT", ["Italia", "Италия", "Italy", "Італія"]),
    ("DE", ["Germania", "Германия", "Germany", "Німеччина"]),
    ("FR", ["Franța", "Франция", "France", "Франція"]),
    ("ES", ["Spania", "Испания", "Spain", "Іспанія"]),
    ("PT", ["Portugalia", "Португалия", "Portugal", "Португалія"]),
    ("RO", ["România", "Румыния", "Romania", "Румунія"]),
    ("RU", ["Rusia", "Россия", "Russia", "Росія"]),
    ("IL", ["Israel", "Израиль", "Israel", "Ізраїль"]),
    ("IE", ["Irlanda", "Ирландия", "Ireland", "Ірландія"]),
    ("CZ", ["Cehia", "Чехия", "Czechia", "Чехія"]),
    ("PL", ["Polonia", "Польша", "Poland", "Польща"]),
    ("CA", ["Canada", "Канада", "Canada", "Канада"]),
];

/// The text of the link at the end of every body (ro, ru, en, uk).
const LINK_TEXT: [&str; 4] = ["Ghid oficial", "Официальное руководство", "Official guide", "Офіційний посібник"];

/// Function words of each language (not translated word for word).
const FUNCTION_WORDS: [&[&str]; 4] = [
    &["și", "în", "la", "de", "pentru", "cu", "pe", "din", "care", "este", "sunt", "un", "o", "nu", "se", "mai", "sau"],
    &["и", "в", "на", "для", "с", "по", "из", "который", "это", "не", "как", "или", "к", "от", "при", "до", "же"],
    &["the", "and", "of", "to", "in", "for", "with", "on", "is", "are", "a", "not", "or", "by", "from", "at", "as"],
    &["і", "в", "на", "для", "з", "по", "що", "це", "не", "як", "або", "та", "до", "від", "при", "у", "же"],
];

/// A token of a generated text, the same in every language.
#[derive(Clone, Copy, Debug)]
enum Tok {
    /// A general word.
    General(usize),
    /// A word of the article's topic.
    Topic(usize),
    /// A country's name.
    Country(usize),
    /// A function word (its slot).
    Function(usize),
}

/// An article's text in tokens: rendered in each language alike, so the
/// translations are parallel.
struct Plan {
    topic: usize,
    title: Vec<Tok>,
    summary: Vec<Tok>,
    paragraphs: Vec<Vec<Vec<Tok>>>,
    list: Vec<Vec<Tok>>,
}

/// An index in `0..n`, small ones far likelier (density ∝ 1/(x+1)).
fn skewed(rng: &mut StdRng, n: usize) -> usize {
    let x = ((n as f64 + 1.0).powf(rng.random::<f64>()) - 1.0) as usize;
    x.min(n - 1)
}

/// A content word of an article of `topic` about the countries `countries`.
fn content_word(rng: &mut StdRng, topic: usize, countries: &[usize]) -> Tok {
    let roll: f64 = rng.random();
    if roll < 0.30 {
        Tok::Topic(skewed(rng, TOPIC_WORDS[topic].len()))
    } else if roll < 0.37 {
        match countries {
            [] => Tok::Country(rng.random_range(0..COUNTRIES.len())),
            cs => Tok::Country(cs[rng.random_range(0..cs.len())]),
        }
    } else {
        Tok::General(skewed(rng, GENERAL.len()))
    }
}

fn sentence(rng: &mut StdRng, topic: usize, countries: &[usize], min: usize, max: usize) -> Vec<Tok> {
    let words = rng.random_range(min..=max);
    let mut out = Vec::with_capacity(words);
    while out.len() < words {
        out.push(content_word(rng, topic, countries));
        if out.len() < words && rng.random_bool(0.4) {
            out.push(Tok::Function(rng.random_range(0..FUNCTION_WORDS[0].len())));
        }
    }
    out
}

impl Plan {
    /// Article `i`'s text (the same every run).
    fn of(i: usize, topic: usize, countries: &[usize]) -> Plan {
        let mut rng = StdRng::seed_from_u64(0x00c0_47e7 ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut title = vec![Tok::Topic(rng.random_range(0..TOPIC_WORDS[topic].len()))];
        title.extend(sentence(&mut rng, topic, countries, 2, 5));
        if let Some(c) = countries.first() {
            title.push(Tok::Country(*c));
        }
        let summary = sentence(&mut rng, topic, countries, 12, 22);
        let paragraphs = (0..rng.random_range(4..=6))
            .map(|_| (0..rng.random_range(3..=5)).map(|_| sentence(&mut rng, topic, countries, 9, 17)).collect())
            .collect();
        let list = if rng.random_bool(0.6) {
            (0..rng.random_range(3..=5)).map(|_| sentence(&mut rng, topic, countries, 3, 7)).collect()
        } else {
            Vec::new()
        };
        Plan { topic, title, summary, paragraphs, list }
    }

    fn word(&self, t: Tok, lang: Lang) -> &'static str {
        let c = lang.column();
        match t {
            Tok::General(k) => GENERAL[k][c],
            Tok::Topic(k) => TOPIC_WORDS[self.topic][k][c],
            Tok::Country(k) => COUNTRIES[k].1[c],
            Tok::Function(k) => FUNCTION_WORDS[c][k % FUNCTION_WORDS[c].len()],
        }
    }

    /// The words of `toks`, the first capitalised.
    fn words(&self, toks: &[Tok], lang: Lang) -> String {
        let mut s = String::new();
        for (k, t) in toks.iter().enumerate() {
            let w = self.word(*t, lang);
            if k == 0 {
                let mut cs = w.chars();
                if let Some(first) = cs.next() {
                    s.extend(first.to_uppercase());
                    s.push_str(cs.as_str());
                }
            } else {
                s.push(' ');
                s.push_str(w);
            }
        }
        s
    }

    /// The title, summary and body in `lang`.
    fn render(&self, lang: Lang) -> (String, String, String) {
        let title = self.words(&self.title, lang);
        let summary = format!("{}.", self.words(&self.summary, lang));
        let mut body = format!("# {title}\n\n");
        for (k, p) in self.paragraphs.iter().enumerate() {
            let text: Vec<String> = p.iter().map(|s| format!("{}.", self.words(s, lang))).collect();
            body.push_str(&text.join(" "));
            body.push_str("\n\n");
            if k == 1 && !self.list.is_empty() {
                for item in &self.list {
                    body.push_str("- ");
                    body.push_str(&self.words(item, lang));
                    body.push('\n');
                }
                body.push('\n');
            }
        }
        body.push_str(&format!("[{}](https://www.gov.md)\n", LINK_TEXT[lang.column()]));
        (title, summary, body)
    }
}

/// The seeded article `i`: its topic (0 to 6), its countries (indexes of
/// [`COUNTRIES`]; none: every country) and its slug.
fn article_of(run: &str, i: usize) -> (usize, Vec<usize>, String) {
    let mut rng = StdRng::seed_from_u64(0x5eed_0000 ^ i as u64);
    let topic = rng.random_range(0..TOPIC_WORDS.len());
    let countries: Vec<usize> = if rng.random_bool(0.1) {
        Vec::new()
    } else {
        let mut cs = Vec::new();
        for _ in 0..rng.random_range(1..=3) {
            let c = rng.random_range(0..COUNTRIES.len());
            if !cs.contains(&c) {
                cs.push(c);
            }
        }
        cs
    };
    let place = countries.first().map_or_else(|| "toate".to_owned(), |c| COUNTRIES[*c].0.to_ascii_lowercase());
    (topic, countries, format!("{}-{place}-{}-{i}", TOPIC_SLUGS[topic], &run[..8]))
}

fn topic_pb(topic: usize) -> pb::Topic {
    pb::Topic::try_from(i32::try_from(topic + 1).unwrap_or(1)).unwrap_or(pb::Topic::LegalAssistance)
}

/// The `GetArticle` reads: a name, the locale asked for, the locale expected
/// served, and whether the article read is one without a Ukrainian version.
const READS: [(&str, &str, &str, bool); 5] = [
    ("ro", "ro", "ro", false),
    ("ru-MD → ru", "ru-MD", "ru", false),
    ("uk", "uk", "uk", false),
    ("uk → ro (no uk version)", "uk", "ro", true),
    ("en", "en", "en", false),
];

/// The searches: a name, the query's language and the reader's locale.
const SEARCHES: [(&str, Lang, &str); 5] = [
    ("ro words, ro", Lang::Ro, "ro"),
    ("ru words, ru-MD (→ ru)", Lang::Ru, "ru-MD"),
    ("en words, en", Lang::En, "en"),
    ("uk words, uk", Lang::Uk, "uk"),
    ("ro words, uk (→ ro)", Lang::Ro, "uk"),
];

/// The searches by their number of words.
const WORDS: [&str; 3] = ["one word", "two words", "three words"];

/// The versions matching, in the query's own language, the searches of
/// kind `kind` (at most the first 100 of the `searches` measured), on average.
async fn mean_matches(pool: &sqlx::PgPool, kind: usize, searches: usize) -> anyhow::Result<f64> {
    let (_, lang, _) = SEARCHES[kind];
    let config = acasa_content::domain::locale::Locale::parse(lang.code())
        .map_or(acasa_content::domain::search::FALLBACK_CONFIG, |l| acasa_content::domain::search::ts_config(&l));
    let sample = searches.div_ceil(SEARCHES.len()).clamp(1, 100);
    let mut total = 0_i64;
    for k in 0..sample {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM content.published WHERE locale = $1 AND tsv @@ websearch_to_tsquery($2::regconfig, $3)",
        )
        .bind(lang.code())
        .bind(config)
        .bind(query_of(k, lang))
        .fetch_one(pool)
        .await
        .context("counting a search's matches")?;
        total += n;
    }
    Ok(total as f64 / sample as f64)
}

/// The locales of the lists.
const LIST_LOCALES: [&str; 4] = ["ro", "ru-MD", "uk", "en"];

/// Search `k`'s words in `lang`: one to three, of a topic, the general
/// words and the countries.
fn query_of(k: usize, lang: Lang) -> String {
    let mut rng = StdRng::seed_from_u64(0x0a5e_a7c4 ^ k as u64);
    let topic = rng.random_range(0..TOPIC_WORDS.len());
    let c = lang.column();
    let n = rng.random_range(1..=3);
    let mut words: Vec<&str> = Vec::with_capacity(n);
    while words.len() < n {
        let roll: f64 = rng.random();
        let w = if roll < 0.5 {
            TOPIC_WORDS[topic][rng.random_range(0..TOPIC_WORDS[topic].len())][c]
        } else if roll < 0.7 {
            COUNTRIES[rng.random_range(0..COUNTRIES.len())].1[c]
        } else {
            GENERAL[rng.random_range(0..GENERAL.len())][c]
        };
        if !words.contains(&w) {
            words.push(w);
        }
    }
    words.join(" ")
}

/// Where the content service runs, for the benchmark.
#[derive(Clone, Debug)]
pub struct Target {
    /// The content service's gRPC address (`host:port`).
    pub addr: String,
    /// Articles published in all four languages.
    pub articles: usize,
    /// Articles seeded at once.
    pub clients: usize,
    /// Concurrent readers.
    pub readers: usize,
    /// `GetArticle` reads to measure.
    pub reads: usize,
    /// `SearchArticles` queries to measure (and half as many `ListArticles`).
    pub searches: usize,
    /// The service's pid, for its peak RSS.
    pub service_pid: Option<u32>,
    /// The worker's pid.
    pub worker_pid: Option<u32>,
    /// The campaign part (an SMTP server's Maildir and the registry), if any.
    pub campaign: Option<super::campaigns::Target>,
}

/// One kind of public read.
#[derive(Debug, Serialize)]
pub struct ReadKindRate {
    /// What was asked, in which locale.
    pub kind: &'static str,
    /// Articles answered, on average (searches and lists: the first page).
    pub mean_rows: f64,
    /// Searches: the versions matching in the query's own language, on
    /// average over a sample of the queries (counted in the database, not
    /// timed) — what each search ranks.
    pub mean_matches: Option<f64>,
    /// Its rate and latencies.
    pub rate: Rate,
}

/// The content figures.
#[derive(Debug, Serialize)]
pub struct ContentReport {
    /// Articles published in ro, ru, en and uk.
    pub articles: usize,
    /// Articles published in ro and ru only (for the fallbacks to ro).
    pub fallback_articles: usize,
    /// Published versions in the read model when the reads began.
    pub published_versions: i64,
    /// Size of `content.published` with its indexes and TOAST, MiB.
    pub published_table_mib: f64,
    /// Articles seeded at once.
    pub clients: usize,
    /// Editorial commands of the seeding (create; edit, submit, approve, publish per version).
    pub seed_commands: Rate,
    /// Retries after ABORTED, UNAVAILABLE or DEADLINE_EXCEEDED while seeding.
    pub seed_retries: u64,
    /// seed commands / raw JetStream publishes of this run.
    pub seed_to_raw: f64,
    /// Seconds the read model still needed after the last command was acknowledged.
    pub projection_wait_seconds: f64,
    /// Seconds the whole seeding took (commands and the wait).
    pub seed_seconds: f64,
    /// Readers at a time.
    pub readers: usize,
    /// `GetArticle` by slug, every locale of the mix.
    pub get_article: Rate,
    /// By locale.
    pub get_article_by_kind: Vec<ReadKindRate>,
    /// Answers served in another locale than expected (should be none).
    pub get_article_wrong_locale: usize,
    /// `SearchArticles`, every kind.
    pub search: Rate,
    /// By language and locale.
    pub search_by_kind: Vec<ReadKindRate>,
    /// By the number of words (one, two, three).
    pub search_by_words: Vec<ReadKindRate>,
    /// `ListArticles` for a country and a topic, every locale.
    pub list_articles: Rate,
    /// By locale.
    pub list_by_kind: Vec<ReadKindRate>,
    /// Peak RSS of the service when this part began (before any content), MiB.
    pub service_peak_rss_before_mib: Option<f64>,
    /// Peak RSS of the service when the seeding was done (before the reads), MiB.
    pub service_peak_rss_after_seed_mib: Option<f64>,
    /// Peak RSS of the service, MiB.
    pub service_peak_rss_mib: Option<f64>,
    /// Peak RSS of the worker, MiB.
    pub worker_peak_rss_mib: Option<f64>,
    /// The campaign sends through the outbox (target ≥ 200 messages/s, none twice).
    pub campaign_sends: Option<super::campaigns::CampaignReport>,
}

/// The clients and tokens the seeding needs.
struct Fixture {
    channels: Vec<Channel>,
    editor: MetadataValue<Ascii>,
    reviewer: MetadataValue<Ascii>,
    run: String,
    retries: AtomicU64,
    last_position: AtomicU64,
}

/// A closure sending `$msg` (cloned each time) with `$method` on client `$i`.
macro_rules! rpc {
    ($fx:expr, $i:expr, $method:ident, $auth:expr, $msg:expr) => {
        || {
            let mut c = $fx.grpc($i);
            let r = req($auth, $msg.clone(), COMMAND_TIMEOUT);
            async move { c.$method(r).await }
        }
    };
}

impl Fixture {
    fn grpc(&self, i: usize) -> ContentServiceClient<Channel> {
        ContentServiceClient::new(self.channels[i % self.channels.len()].clone())
    }

    fn seen(&self, position: u64) {
        self.last_position.fetch_max(position, Ordering::Relaxed);
    }

    /// Runs `op` until it answers something but ABORTED, UNAVAILABLE or
    /// DEADLINE_EXCEEDED (the same request id each time; at most 20 times).
    async fn must<T, F, Fut>(&self, what: &str, op: F) -> anyhow::Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut attempt = 0_u64;
        loop {
            match op().await {
                Ok(r) => return Ok(r.into_inner()),
                Err(s)
                    if matches!(s.code(), Code::Aborted | Code::Unavailable | Code::DeadlineExceeded)
                        && attempt < 20 =>
                {
                    attempt += 1;
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5 * attempt)).await;
                }
                Err(s) => return Err(anyhow::Error::new(s).context(what.to_owned())),
            }
        }
    }

    /// Seeds article `i` in `langs` (the first the source): created, each
    /// version written, submitted, approved by the reviewer and published;
    /// its id.
    async fn seed(&self, i: usize, langs: &[Lang]) -> anyhow::Result<String> {
        let (topic, countries, slug) = article_of(&self.run, i);
        let plan = Plan::of(i, topic, &countries);
        let id = |step: &str, lang: Lang| format!("{}-{step}-{i}-{}", self.run, lang.code());
        let create = pb::CreateArticleRequest {
            request_id: format!("{}-create-{i}", self.run),
            topic: topic_pb(topic) as i32,
            countries: countries.iter().map(|c| COUNTRIES[*c].0.to_owned()).collect(),
            slug,
        };
        let created = self.must("creating an article", rpc!(self, i, create_article, &self.editor, create)).await?;
        self.seen(created.position);
        let article_id = created.article_id;
        let mut source_revision = 0;
        for (k, lang) in langs.iter().enumerate() {
            let (title, summary, body) = plan.render(*lang);
            let edit = pb::EditArticleRequest {
                request_id: id("edit", *lang),
                article_id: article_id.clone(),
                locale: lang.code().into(),
                title,
                summary,
                body,
                translates: if k == 0 { 0 } else { source_revision },
            };
            let written = self.must("editing an article", rpc!(self, i, edit_article, &self.editor, edit)).await?;
            self.seen(written.position);
            if k == 0 {
                source_revision = written.revision;
            }
            let submit = pb::SubmitArticleRequest {
                request_id: id("submit", *lang),
                article_id: article_id.clone(),
                locale: lang.code().into(),
            };
            let r = self.must("submitting an article", rpc!(self, i, submit_article, &self.editor, submit)).await?;
            self.seen(r.position);
            let approve = pb::ApproveArticleRequest {
                request_id: id("approve", *lang),
                article_id: article_id.clone(),
                locale: lang.code().into(),
                revision: written.revision,
            };
            let r = self.must("approving an article", rpc!(self, i, approve_article, &self.reviewer, approve)).await?;
            self.seen(r.position);
            let publish = pb::PublishArticleRequest {
                request_id: id("publish", *lang),
                article_id: article_id.clone(),
                locale: lang.code().into(),
            };
            let r = self.must("publishing an article", rpc!(self, i, publish_article, &self.editor, publish)).await?;
            self.seen(r.position);
        }
        Ok(article_id)
    }
}

/// Latencies and answered rows of one kind of read.
type KindSamples = Mutex<(Vec<Duration>, usize)>;

fn samples(n: usize) -> Arc<Vec<KindSamples>> {
    Arc::new((0..n).map(|_| Mutex::new((Vec::new(), 0))).collect())
}

fn record(slots: &[KindSamples], kind: usize, latency: Duration, rows: usize) -> anyhow::Result<()> {
    let mut slot = slots[kind].lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    slot.0.push(latency);
    slot.1 += rows;
    Ok(())
}

fn by_kind(slots: &[KindSamples], names: &[&'static str], elapsed: Duration) -> anyhow::Result<Vec<ReadKindRate>> {
    let mut out = Vec::new();
    for (k, slot) in slots.iter().enumerate() {
        let (l, rows) = std::mem::take(&mut *slot.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
        let n = l.len();
        out.push(ReadKindRate {
            kind: names[k],
            mean_rows: rows as f64 / n.max(1) as f64,
            mean_matches: None,
            rate: rate(n, elapsed, l),
        });
    }
    Ok(out)
}

fn public(channels: &[Channel], i: usize) -> PublicContentServiceClient<Channel> {
    PublicContentServiceClient::new(channels[i % channels.len()].clone())
}

fn timed<T>(msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.set_timeout(READ_TIMEOUT);
    r
}

/// Runs the content benchmark; `raw_per_second` is the raw JetStream
/// ceiling of this run, `pool` the database the service reads (for the
/// published count and the table's size).
pub async fn run(
    config: &Config,
    pool: &sqlx::PgPool,
    target: &Target,
    raw_per_second: f64,
) -> anyhow::Result<ContentReport> {
    let clients = target.clients.max(1);
    let readers = target.readers.max(1);
    let full = target.articles.max(1);
    let partial = full.div_ceil(20);
    let total = full + partial;
    let run = uuid::Uuid::now_v7().simple().to_string();
    let issuer = TokenIssuer::from_config(config)?;
    let ttl = Duration::from_secs(6 * 3600);
    let fx = Arc::new(Fixture {
        channels: connect(&target.addr, 4, "content service").await?,
        editor: bearer(&issuer.issue("bench-content-editor", &[Role::Editor], None, ttl)?)?,
        reviewer: bearer(&issuer.issue("bench-content-reviewer", &[Role::Reviewer], None, ttl)?)?,
        run,
        retries: AtomicU64::new(0),
        last_position: AtomicU64::new(0),
    });

    eprintln!(
        "bench: content: seeding {full} articles in ro, ru, en, uk and {partial} in ro, ru only, {clients} at once…"
    );
    let service_peak_rss_before_mib = peak_rss_mib(target.service_pid);
    let started = Instant::now();
    let ids = Arc::new(Mutex::new(vec![String::new(); total]));
    {
        let (fx, ids) = (fx.clone(), ids.clone());
        concurrently(total, clients, move |i| {
            let (fx, ids) = (fx.clone(), ids.clone());
            async move {
                let langs: &[Lang] = if i < full { &Lang::ALL } else { &[Lang::Ro, Lang::Ru] };
                let id = fx.seed(i, langs).await?;
                ids.lock().map_err(|_| anyhow::anyhow!("poisoned"))?[i] = id;
                Ok(())
            }
        })
        .await?;
    }
    let commands = total + 4 * (4 * full + 2 * partial);
    let seed_commands = rate(commands, started.elapsed(), Vec::new());
    let seed_retries = fx.retries.load(Ordering::Relaxed);

    // The read model holds everything once it has reached the last position.
    let last = fx.last_position.load(Ordering::Relaxed);
    let waited = Instant::now();
    let first = ids.lock().map_err(|_| anyhow::anyhow!("poisoned"))?[0].clone();
    let draft = pb::GetArticleDraftRequest { article_id: first, min_position: last };
    fx.must("waiting for the content read model", rpc!(fx, 0, get_article_draft, &fx.editor, draft)).await?;
    let projection_wait_seconds = waited.elapsed().as_secs_f64();
    let seed_seconds = started.elapsed().as_secs_f64();
    let (published_versions, published_bytes): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM content.published), pg_total_relation_size('content.published'::regclass)",
    )
    .fetch_one(pool)
    .await
    .context("counting the published versions")?;
    let service_peak_rss_after_seed_mib = peak_rss_mib(target.service_pid);
    let expected = i64::try_from(4 * full + 2 * partial).unwrap_or(i64::MAX);
    if published_versions != expected {
        eprintln!("bench: content: WARNING: {published_versions} published versions, {expected} expected");
    }

    let channels = Arc::new(connect(&target.addr, 4, "content service").await?);
    let slugs: Arc<Vec<String>> = Arc::new((0..total).map(|i| article_of(&fx.run, i).2).collect());

    eprintln!("bench: content: warming up (every slug read once, searches and lists)…");
    {
        let (warm_channels, slugs) = (channels.clone(), slugs.clone());
        concurrently(total, readers, move |i| {
            let mut c = public(&warm_channels, i);
            let r = timed(pb::GetArticleRequest { slug: slugs[i].clone(), locale: "ro".into() });
            async move {
                c.get_article(r).await.context("a warm-up read")?;
                Ok(())
            }
        })
        .await?;
        let channels = channels.clone();
        let warm = (target.searches / 4).max(SEARCHES.len());
        concurrently(warm, readers, move |i| {
            let mut c = public(&channels, i);
            let (_, lang, locale) = SEARCHES[i % SEARCHES.len()];
            let search = timed(pb::SearchArticlesRequest {
                query: query_of(1_000_000 + i, lang),
                locale: locale.into(),
                ..Default::default()
            });
            let list = timed(pb::ListArticlesRequest {
                locale: LIST_LOCALES[i % LIST_LOCALES.len()].into(),
                country: COUNTRIES[i % COUNTRIES.len()].0.into(),
                topic: topic_pb(i % TOPIC_WORDS.len()) as i32,
                ..Default::default()
            });
            async move {
                c.search_articles(search).await.context("a warm-up search")?;
                c.list_articles(list).await.context("a warm-up list")?;
                Ok(())
            }
        })
        .await?;
    }

    let reads = target.reads.max(READS.len());
    eprintln!("bench: content: {reads} GetArticle reads by slug, {readers} readers…");
    let read_slots = samples(READS.len());
    let wrong = Arc::new(AtomicU64::new(0));
    let (read_elapsed, read_lat) = {
        let (channels, slugs, read_slots, wrong) = (channels.clone(), slugs.clone(), read_slots.clone(), wrong.clone());
        concurrently(reads, readers, move |i| {
            let kind = i % READS.len();
            let (_, locale, served, without_uk) = READS[kind];
            let k = (i / READS.len()).wrapping_mul(7_919);
            let article = if without_uk { full + k % partial } else { k % full };
            let mut c = public(&channels, i);
            let r = timed(pb::GetArticleRequest { slug: slugs[article].clone(), locale: locale.into() });
            let (read_slots, wrong) = (read_slots.clone(), wrong.clone());
            async move {
                let t = Instant::now();
                let a = c.get_article(r).await.context("reading an article")?.into_inner();
                let l = t.elapsed();
                let got = a.article.and_then(|a| a.served).map(|s| s.served_locale).unwrap_or_default();
                if got != served {
                    wrong.fetch_add(1, Ordering::Relaxed);
                }
                record(&read_slots, kind, l, 1)
            }
        })
        .await?
    };
    let get_article_by_kind = by_kind(&read_slots, &READS.map(|r| r.0), read_elapsed)?;

    let searches = target.searches.max(SEARCHES.len());
    eprintln!("bench: content: {searches} searches of one to three words, {readers} readers…");
    let search_slots = samples(SEARCHES.len());
    let word_slots = samples(WORDS.len());
    let (search_elapsed, search_lat) = {
        let (channels, search_slots, word_slots) = (channels.clone(), search_slots.clone(), word_slots.clone());
        concurrently(searches, readers, move |i| {
            let kind = i % SEARCHES.len();
            let (_, lang, locale) = SEARCHES[kind];
            let query = query_of(i / SEARCHES.len(), lang);
            let words = query.split_whitespace().count().clamp(1, WORDS.len()) - 1;
            let mut c = public(&channels, i);
            let r = timed(pb::SearchArticlesRequest { query, locale: locale.into(), ..Default::default() });
            let (search_slots, word_slots) = (search_slots.clone(), word_slots.clone());
            async move {
                let t = Instant::now();
                let a = c.search_articles(r).await.context("searching articles")?.into_inner();
                let l = t.elapsed();
                record(&word_slots, words, l, a.articles.len())?;
                record(&search_slots, kind, l, a.articles.len())
            }
        })
        .await?
    };
    let mut search_by_kind = by_kind(&search_slots, &SEARCHES.map(|s| s.0), search_elapsed)?;
    let search_by_words = by_kind(&word_slots, &WORDS, search_elapsed)?;
    for (kind, k) in search_by_kind.iter_mut().enumerate() {
        k.mean_matches = Some(mean_matches(pool, kind, searches).await?);
    }

    let lists = (searches / 2).max(LIST_LOCALES.len());
    eprintln!("bench: content: {lists} lists for a country and a topic, {readers} readers…");
    let list_slots = samples(LIST_LOCALES.len());
    let (list_elapsed, list_lat) = {
        let (channels, list_slots) = (channels.clone(), list_slots.clone());
        concurrently(lists, readers, move |i| {
            let kind = i % LIST_LOCALES.len();
            let k = i / LIST_LOCALES.len();
            let mut c = public(&channels, i);
            let r = timed(pb::ListArticlesRequest {
                locale: LIST_LOCALES[kind].into(),
                country: COUNTRIES[k % COUNTRIES.len()].0.into(),
                topic: topic_pb((k / COUNTRIES.len()) % TOPIC_WORDS.len()) as i32,
                ..Default::default()
            });
            let list_slots = list_slots.clone();
            async move {
                let t = Instant::now();
                let a = c.list_articles(r).await.context("listing articles")?.into_inner();
                record(&list_slots, kind, t.elapsed(), a.articles.len())
            }
        })
        .await?
    };
    let list_by_kind = by_kind(&list_slots, &LIST_LOCALES, list_elapsed)?;

    Ok(ContentReport {
        articles: full,
        fallback_articles: partial,
        published_versions,
        published_table_mib: published_bytes as f64 / (1024.0 * 1024.0),
        clients,
        seed_to_raw: seed_commands.per_second / raw_per_second.max(1e-9),
        seed_commands,
        seed_retries,
        projection_wait_seconds,
        seed_seconds,
        readers,
        get_article: rate(reads, read_elapsed, read_lat),
        get_article_by_kind,
        get_article_wrong_locale: usize::try_from(wrong.load(Ordering::Relaxed)).unwrap_or(usize::MAX),
        search: rate(searches, search_elapsed, search_lat),
        search_by_kind,
        search_by_words,
        list_articles: rate(lists, list_elapsed, list_lat),
        list_by_kind,
        service_peak_rss_before_mib,
        service_peak_rss_after_seed_mib,
        service_peak_rss_mib: peak_rss_mib(target.service_pid),
        worker_peak_rss_mib: peak_rss_mib(target.worker_pid),
        campaign_sends: match &target.campaign {
            Some(t) => Some(super::campaigns::run(config, pool, t).await?),
            None => None,
        },
    })
}

/// Prints the figures in the style of the others.
pub fn print_table(c: &ContentReport) {
    let lat = |x: &Rate| match (x.p50_ms, x.p99_ms) {
        (Some(a), Some(b)) => format!("p50 {a:6.2} ms  p99 {b:6.2} ms"),
        _ => String::new(),
    };
    let mib = |m: Option<f64>| m.map_or_else(|| "n/a".to_owned(), |m| format!("{m:.1} MiB"));
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "Content over gRPC — {} articles published in ro, ru, en, uk and {} in ro, ru only; {} seeded at once, \
         {} readers; public reads at an unthrottled per-client rate (make bench sets ACASA_CONTENT_PUBLIC_RATE)",
        c.articles, c.fallback_articles, c.clients, c.readers
    );
    println!(
        "  seeding: editorial commands {:>9.0} /s  ({} ops, {:.1} % of raw publishes; {} retries)",
        c.seed_commands.per_second,
        c.seed_commands.ops,
        c.seed_to_raw * 100.0,
        c.seed_retries
    );
    println!(
        "    read model waited {:.2} s; whole seeding {:.1} s; {} published versions ({:.1} MiB with indexes)",
        c.projection_wait_seconds, c.seed_seconds, c.published_versions, c.published_table_mib
    );
    let p99 = c.get_article.p99_ms.unwrap_or(f64::INFINITY);
    println!(
        "  GetArticle by slug         {:>10.0} /s  {}   (target p99 ≤ 5 ms: {})",
        c.get_article.per_second,
        lat(&c.get_article),
        verdict(p99 <= 5.0)
    );
    for k in &c.get_article_by_kind {
        println!("    {:<30} {:>6.0} /s  {}", k.kind, k.rate.per_second, lat(&k.rate));
    }
    if c.get_article_wrong_locale > 0 {
        println!("    WRONG: {} answers served in another locale than expected", c.get_article_wrong_locale);
    }
    let p99 = c.search.p99_ms.unwrap_or(f64::INFINITY);
    println!(
        "  SearchArticles, 1–3 words  {:>10.0} /s  {}   (target p99 ≤ 50 ms: {})",
        c.search.per_second,
        lat(&c.search),
        verdict(p99 <= 50.0)
    );
    for k in &c.search_by_kind {
        println!(
            "    {:<30} {:>6.0} /s  {}  ({:.1} rows; {:.0} matches ranked)",
            k.kind,
            k.rate.per_second,
            lat(&k.rate),
            k.mean_rows,
            k.mean_matches.unwrap_or(f64::NAN)
        );
    }
    for k in &c.search_by_words {
        println!("    {:<30} {:>6.0} /s  {}", k.kind, k.rate.per_second, lat(&k.rate));
    }
    println!("  ListArticles country+topic {:>10.0} /s  {}", c.list_articles.per_second, lat(&c.list_articles));
    for k in &c.list_by_kind {
        println!("    {:<30} {:>6.0} /s  {}  ({:.1} rows)", k.kind, k.rate.per_second, lat(&k.rate), k.mean_rows);
    }
    let rss_ok = c.service_peak_rss_mib.is_some_and(|m| m <= 100.0);
    println!(
        "  peak RSS: service {} (target ≤ 100 MiB: {}; {} before the seeding, {} after it), worker {}",
        mib(c.service_peak_rss_mib),
        if c.service_peak_rss_mib.is_some() { verdict(rss_ok) } else { "not measured" },
        mib(c.service_peak_rss_before_mib),
        mib(c.service_peak_rss_after_seed_mib),
        mib(c.worker_peak_rss_mib)
    );
    match &c.campaign_sends {
        Some(campaign) => super::campaigns::print(campaign),
        None => println!("  campaign sends: not measured (no --content-maildir and --registry-addr)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_articles_are_valid_and_a_few_hundred_words_in_each_language() {
        let run = uuid::Uuid::now_v7().simple().to_string();
        let mut words = Vec::new();
        for i in [0, 1, 2, 77, 4_999, 5_249] {
            let (topic, countries, slug) = article_of(&run, i);
            let mut v = acasa_domain::Violations::new();
            assert_eq!(acasa_content::validate::slug(&mut v, "slug", &slug).as_deref(), Some(slug.as_str()));
            let plan = Plan::of(i, topic, &countries);
            for lang in Lang::ALL {
                let (title, summary, body) = plan.render(lang);
                assert!(!title.is_empty() && title.chars().count() <= 200, "{title}");
                assert!(summary.chars().count() <= 1_000, "{summary}");
                words.push(body.split_whitespace().count());
            }
        }
        assert!(words.iter().all(|w| (150..=700).contains(w)), "{words:?}");
        for k in 0..50 {
            for lang in Lang::ALL {
                let q = query_of(k, lang);
                assert!((1..=3).contains(&q.split_whitespace().count()), "{q}");
            }
        }
    }
}
