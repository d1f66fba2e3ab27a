//! Ranking candidates for an offer: pure, so every rule of the fit is a
//! unit test.
//!
//! Who may be ranked at all (programme consent, the offer kind's category,
//! active, no active placement) is the query's filter; this module orders
//! those people by fit and says why:
//!
//! - **subject** (50): a graduate's profession, or a scientist's scientific
//!   field, or a field of their education, fits the offer's subject;
//! - **skills** (10 each, at most 5 counted): a skill fits the offer's
//!   subject or one of the fields the host lists;
//! - **languages** (10 each): the candidate speaks one of the offer's
//!   working languages (by primary language: `ro-MD` speaks `ro`);
//! - **interest** (5): the person recorded an interest in this kind.
//!
//! Two texts *fit* when, folded, one contains the other as whole words
//! ("civil engineering" fits "engineering", "engineer" does not fit
//! "engineering"). Ties go to the lower person id, so pages are stable.

use uuid::Uuid;

use super::Kind;

/// Points for a subject match.
pub const SUBJECT_POINTS: i32 = 50;
/// Points per matching skill.
pub const SKILL_POINTS: i32 = 10;
/// Most skills counted.
pub const SKILLS_COUNTED: usize = 5;
/// Points per shared working language.
pub const LANGUAGE_POINTS: i32 = 10;
/// Points for a recorded interest in the offer's kind.
pub const INTEREST_POINTS: i32 = 5;

/// What an offer asks for (folded texts).
#[derive(Clone, Debug, Default)]
pub struct Wanted {
    /// Graduate placement or scientific assignment.
    pub kind: Option<Kind>,
    /// The profession or scientific field.
    pub subject: String,
    /// The fields and professions the host lists.
    pub host_fields: Vec<String>,
    /// Working languages (BCP 47).
    pub languages: Vec<String>,
}

/// What the registry says of a candidate (folded texts).
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// The registry person.
    pub person: Uuid,
    /// Profession.
    pub profession: Option<String>,
    /// Scientific field.
    pub scientific_field: Option<String>,
    /// Fields of their education.
    pub education_fields: Vec<String>,
    /// Skills.
    pub skills: Vec<String>,
    /// Languages (BCP 47).
    pub languages: Vec<String>,
    /// Recorded an interest in the offer's kind.
    pub interested: bool,
}

/// A ranked candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ranked {
    /// The registry person.
    pub person: Uuid,
    /// The score (higher first).
    pub score: i32,
    /// The subject matched on, if any (`profession agronomist`).
    pub subject_match: Option<String>,
    /// The skills that fit.
    pub matching_skills: Vec<String>,
    /// The offer's working languages the candidate speaks.
    pub matching_languages: Vec<String>,
    /// Interested in the kind.
    pub interested: bool,
}

impl Ranked {
    /// Why it ranks where it does, in words.
    pub fn reason(&self) -> String {
        let mut parts = Vec::new();
        match &self.subject_match {
            Some(m) => parts.push(format!("{m} matches")),
            None => parts.push("no profession or field match".to_owned()),
        }
        if !self.matching_skills.is_empty() {
            parts.push(format!("skills: {}", self.matching_skills.join(", ")));
        }
        if !self.matching_languages.is_empty() {
            parts.push(format!("speaks {}", self.matching_languages.join(", ")));
        }
        if self.interested {
            parts.push("interested".to_owned());
        }
        parts.join("; ")
    }
}

fn words(s: &str) -> Vec<&str> {
    s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect()
}

/// `a` and `b` fit: one holds the other's words, in order, as whole words.
pub fn fits(a: &str, b: &str) -> bool {
    let (a, b) = (words(a), words(b));
    if a.is_empty() || b.is_empty() {
        return false;
    }
    let contains = |hay: &[&str], needle: &[&str]| hay.windows(needle.len()).any(|w| w == needle);
    if a.len() >= b.len() { contains(&a, &b) } else { contains(&b, &a) }
}

fn primary(tag: &str) -> String {
    tag.split('-').next().unwrap_or(tag).to_ascii_lowercase()
}

/// Ranks one candidate.
pub fn rank_one(wanted: &Wanted, p: &Profile) -> Ranked {
    let own = match wanted.kind {
        Some(Kind::ScientificAssignment) => p.scientific_field.as_deref().map(|f| ("scientific field", f)),
        _ => p.profession.as_deref().map(|f| ("profession", f)),
    };
    let subject_match = own
        .filter(|(_, f)| fits(f, &wanted.subject))
        .map(|(what, f)| format!("{what} {f}"))
        .or_else(|| p.education_fields.iter().find(|f| fits(f, &wanted.subject)).map(|f| format!("education in {f}")));
    let matching_skills: Vec<String> = p
        .skills
        .iter()
        .filter(|s| fits(s, &wanted.subject) || wanted.host_fields.iter().any(|h| fits(s, h)))
        .take(SKILLS_COUNTED)
        .cloned()
        .collect();
    let spoken: Vec<String> = p.languages.iter().map(|l| primary(l)).collect();
    let matching_languages: Vec<String> =
        wanted.languages.iter().filter(|l| spoken.contains(&primary(l))).cloned().collect();
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let score = if subject_match.is_some() { SUBJECT_POINTS } else { 0 }
        + SKILL_POINTS * count(matching_skills.len())
        + LANGUAGE_POINTS * count(matching_languages.len())
        + if p.interested { INTEREST_POINTS } else { 0 };
    Ranked { person: p.person, score, subject_match, matching_skills, matching_languages, interested: p.interested }
}

/// `a` ranks before `b`: higher score first, then the lower person id.
fn before(a: &Ranked, b: &Ranked) -> bool {
    a.score > b.score || (a.score == b.score && a.person < b.person)
}

/// The best `n` candidates ranked after a cursor `(score, person)` (the
/// last of the previous page), kept while every candidate is offered once:
/// memory for `n`, whatever the number of people.
#[derive(Debug)]
pub struct Best {
    n: usize,
    after: Option<(i32, Uuid)>,
    kept: Vec<Ranked>,
}

impl Best {
    /// Keeps the best `n` after `after`.
    pub fn new(n: usize, after: Option<(i32, Uuid)>) -> Self {
        Self { n, after, kept: Vec::with_capacity(n.min(1024) + 1) }
    }

    /// Offers one ranked candidate.
    pub fn offer(&mut self, r: Ranked) {
        if let Some((score, person)) = self.after
            && !before(&Ranked { score, person, ..Ranked::empty() }, &r)
        {
            return;
        }
        if self.n == 0 {
            return;
        }
        if self.kept.len() == self.n {
            match self.kept.last() {
                Some(worst) if before(&r, worst) => {
                    self.kept.pop();
                }
                _ => return,
            }
        }
        let at = self.kept.partition_point(|k| before(k, &r));
        self.kept.insert(at, r);
    }

    /// The kept candidates, best first.
    pub fn into_sorted(self) -> Vec<Ranked> {
        self.kept
    }
}

impl Ranked {
    fn empty() -> Self {
        Self {
            person: Uuid::nil(),
            score: 0,
            subject_match: None,
            matching_skills: Vec::new(),
            matching_languages: Vec::new(),
            interested: false,
        }
    }
}

/// Ranks candidates, best first; ties by person id.
pub fn rank(wanted: &Wanted, candidates: &[Profile]) -> Vec<Ranked> {
    let mut ranked: Vec<Ranked> = candidates.iter().map(|p| rank_one(wanted, p)).collect();
    ranked.sort_by(|a, b| b.score.cmp(&a.score).then(a.person.cmp(&b.person)));
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted() -> Wanted {
        Wanted {
            kind: Some(Kind::GraduatePlacement),
            subject: "civil engineering".into(),
            host_fields: vec!["bridges".into(), "software".into()],
            languages: vec!["ro".into(), "en".into()],
        }
    }

    fn person(n: u128) -> Profile {
        Profile { person: Uuid::from_u128(n), ..Profile::default() }
    }

    #[test]
    fn texts_fit_on_whole_words_either_way() {
        assert!(fits("civil engineering", "engineering"));
        assert!(fits("engineering", "civil engineering"));
        assert!(fits("agronomist", "agronomist"));
        assert!(!fits("engineer", "engineering"));
        assert!(!fits("civil law", "civil engineering"));
        assert!(!fits("", "engineering"));
        assert!(!fits("engineering", " "));
    }

    #[test]
    fn the_subject_matches_on_a_graduates_profession_or_education_and_a_scientists_field() {
        let mut p = person(1);
        p.profession = Some("civil engineering".into());
        p.scientific_field = Some("physics".into());
        let r = rank_one(&wanted(), &p);
        assert_eq!(r.subject_match.as_deref(), Some("profession civil engineering"));
        assert_eq!(r.score, SUBJECT_POINTS);
        // For an assignment the scientific field counts, not the profession.
        let science = Wanted { kind: Some(Kind::ScientificAssignment), ..wanted() };
        assert_eq!(rank_one(&science, &p).subject_match, None);
        p.scientific_field = Some("engineering".into());
        assert_eq!(rank_one(&science, &p).subject_match.as_deref(), Some("scientific field engineering"));
        // Education is the fallback.
        let mut q = person(2);
        q.education_fields = vec!["history".into(), "engineering".into()];
        assert_eq!(rank_one(&wanted(), &q).subject_match.as_deref(), Some("education in engineering"));
    }

    #[test]
    fn skills_count_when_they_fit_the_subject_or_the_hosts_fields_five_at_most() {
        let mut p = person(1);
        p.skills = vec!["bridges".into(), "cooking".into(), "engineering".into()];
        let r = rank_one(&wanted(), &p);
        assert_eq!(r.matching_skills, ["bridges", "engineering"]);
        assert_eq!(r.score, 2 * SKILL_POINTS);
        p.skills = (0..8).map(|i| format!("software {i}")).collect();
        assert_eq!(rank_one(&wanted(), &p).score, SKILL_POINTS * 5);
    }

    #[test]
    fn languages_match_by_primary_language_and_interest_adds_a_little() {
        let mut p = person(1);
        p.languages = vec!["ro-MD".into(), "fr".into(), "EN".into()];
        p.interested = true;
        let r = rank_one(&wanted(), &p);
        assert_eq!(r.matching_languages, ["ro", "en"]);
        assert_eq!(r.score, 2 * LANGUAGE_POINTS + INTEREST_POINTS);
        assert_eq!(r.reason(), "no profession or field match; speaks ro, en; interested");
        // A language the offer does not use matches nothing.
        p.languages = vec!["fr".into()];
        assert!(rank_one(&wanted(), &p).matching_languages.is_empty());
    }

    #[test]
    fn the_best_after_a_cursor_are_kept_in_order_whatever_the_order_offered() {
        let ranked = |score, n| Ranked { score, person: Uuid::from_u128(n), ..Ranked::empty() };
        let all = [ranked(5, 9), ranked(50, 3), ranked(5, 1), ranked(20, 7), ranked(50, 2), ranked(0, 4)];
        let order = |best: Best| best.into_sorted().iter().map(|r| (r.score, r.person.as_u128())).collect::<Vec<_>>();
        let mut best = Best::new(3, None);
        all.iter().cloned().for_each(|r| best.offer(r));
        assert_eq!(order(best), [(50, 2), (50, 3), (20, 7)]);
        // The next page starts after the last one kept.
        let mut best = Best::new(3, Some((20, Uuid::from_u128(7))));
        all.iter().rev().cloned().for_each(|r| best.offer(r));
        assert_eq!(order(best), [(5, 1), (5, 9), (0, 4)]);
        let mut best = Best::new(2, Some((50, Uuid::from_u128(2))));
        all.iter().cloned().for_each(|r| best.offer(r));
        assert_eq!(order(best), [(50, 3), (20, 7)]);
        let mut none = Best::new(0, None);
        none.offer(ranked(1, 1));
        assert!(none.into_sorted().is_empty());
    }

    #[test]
    fn the_best_fit_ranks_first_and_ties_go_to_the_lower_id() {
        let mut a = person(3);
        a.languages = vec!["ro".into()];
        let mut b = person(2);
        b.profession = Some("civil engineering".into());
        b.skills = vec!["bridges".into()];
        let c = person(1);
        let d = person(0);
        let ranked = rank(&wanted(), &[a, b, c, d]);
        let order: Vec<u128> = ranked.iter().map(|r| r.person.as_u128()).collect();
        assert_eq!(order, [2, 3, 0, 1]);
        assert_eq!(ranked[0].reason(), "profession civil engineering matches; skills: bridges");
        assert_eq!(ranked[0].score, SUBJECT_POINTS + SKILL_POINTS);
    }
}
