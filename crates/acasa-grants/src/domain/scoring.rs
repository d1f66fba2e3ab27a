//! Evaluation arithmetic: weighted criteria, integer scores, no floats.
//!
//! A call defines its criteria (a key, a title and a weight), a scale
//! (every criterion is scored 0..=`scale_max`), how many evaluators must
//! score a plan before the committee decides, and optionally a pass score.
//!
//! An evaluator scores every criterion once. Their **weighted score** is
//! `Σ weightₖ·scoreₖ / Σ weightₖ`; the plan's **final score** is the mean of
//! the weighted scores of the evaluators who did not declare a conflict of
//! interest, computed in one division —
//! `Σₑ Σₖ weightₖ·scoreₑₖ / (evaluators · Σ weightₖ)` — and kept in
//! hundredths of a point, rounded half up (7.355 → 7.36).

use std::collections::BTreeMap;

/// One evaluation criterion.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Criterion {
    /// A short stable key (`viability`, `jobs`).
    pub key: String,
    /// What is judged.
    pub title: String,
    /// Its weight (1 to 100).
    pub weight: u32,
}

/// How a call's plans are evaluated.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Evaluation {
    /// The criteria (at least one, keys distinct).
    pub criteria: Vec<Criterion>,
    /// Every criterion is scored 0..=scale_max.
    pub scale_max: u32,
    /// Evaluators who must have scored (without a conflict) before the
    /// committee decides.
    pub min_evaluators: u32,
    /// The least final score an approved plan has, in hundredths of a point
    /// (0: none).
    pub pass_score: u32,
}

/// Why a set of scores does not fit the criteria.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScoresError {
    /// A key that is not a criterion.
    #[error("{0} is not one of the call's criteria")]
    Unknown(String),
    /// A criterion scored twice.
    #[error("{0} is scored twice")]
    Twice(String),
    /// A criterion not scored.
    #[error("{0} is not scored")]
    Missing(String),
    /// A score above the scale.
    #[error("{key} must be scored 0 to {max}")]
    AboveScale {
        /// The criterion.
        key: String,
        /// The scale's maximum.
        max: u32,
    },
}

/// Why a call's evaluation is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvaluationError {
    /// No criteria, a key twice, a blank key or a weight of 0 or over 100.
    #[error("needs at least one criterion, keys distinct, weights 1 to 100")]
    Criteria,
    /// A scale of 0 or over 100.
    #[error("the scale must be 1 to 100")]
    Scale,
    /// No evaluators required.
    #[error("at least one evaluator must score")]
    MinEvaluators,
    /// A pass score above the scale.
    #[error("the pass score must not be above the scale")]
    PassScore,
}

impl Evaluation {
    /// Checks the evaluation is usable.
    pub fn check(&self) -> Result<(), EvaluationError> {
        let keys_ok = self.criteria.iter().enumerate().all(|(i, c)| {
            !c.key.is_empty() && (1..=100).contains(&c.weight) && self.criteria[..i].iter().all(|o| o.key != c.key)
        });
        if self.criteria.is_empty() || !keys_ok {
            return Err(EvaluationError::Criteria);
        }
        if !(1..=100).contains(&self.scale_max) {
            return Err(EvaluationError::Scale);
        }
        if self.min_evaluators == 0 {
            return Err(EvaluationError::MinEvaluators);
        }
        if u64::from(self.pass_score) > u64::from(self.scale_max) * 100 {
            return Err(EvaluationError::PassScore);
        }
        Ok(())
    }

    /// The scores by criterion, checked: every criterion once, none above
    /// the scale, no other key.
    pub fn checked(&self, scores: &[(String, u32)]) -> Result<BTreeMap<String, u32>, ScoresError> {
        let mut out = BTreeMap::new();
        for (key, score) in scores {
            if !self.criteria.iter().any(|c| &c.key == key) {
                return Err(ScoresError::Unknown(key.clone()));
            }
            if *score > self.scale_max {
                return Err(ScoresError::AboveScale { key: key.clone(), max: self.scale_max });
            }
            if out.insert(key.clone(), *score).is_some() {
                return Err(ScoresError::Twice(key.clone()));
            }
        }
        if let Some(missing) = self.criteria.iter().find(|c| !out.contains_key(&c.key)) {
            return Err(ScoresError::Missing(missing.key.clone()));
        }
        Ok(out)
    }

    fn weights(&self) -> u64 {
        self.criteria.iter().map(|c| u64::from(c.weight)).sum()
    }

    fn weighted_sum(&self, scores: &BTreeMap<String, u32>) -> u64 {
        self.criteria.iter().map(|c| u64::from(c.weight) * u64::from(scores.get(&c.key).copied().unwrap_or(0))).sum()
    }

    /// One evaluator's weighted score, in hundredths of a point.
    pub fn weighted(&self, scores: &BTreeMap<String, u32>) -> u32 {
        hundredths(self.weighted_sum(scores), self.weights())
    }

    /// The final score over several evaluators' scores, in hundredths of a
    /// point; `None` without any.
    pub fn final_score<'a>(&self, evaluations: impl IntoIterator<Item = &'a BTreeMap<String, u32>>) -> Option<u32> {
        let (n, total) = evaluations.into_iter().fold((0u64, 0u64), |(n, t), s| (n + 1, t + self.weighted_sum(s)));
        (n > 0).then(|| hundredths(total, n * self.weights()))
    }
}

/// `100 · num / den` rounded half up (0 when `den` is 0).
fn hundredths(num: u64, den: u64) -> u32 {
    if den == 0 {
        return 0;
    }
    let v = (200 * num + den) / (2 * den);
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Viability ×3, jobs ×2, innovation ×1; scale 0–10; two evaluators.
    fn evaluation() -> Evaluation {
        Evaluation {
            criteria: vec![
                Criterion { key: "viability".into(), title: "Business viability".into(), weight: 3 },
                Criterion { key: "jobs".into(), title: "Jobs created".into(), weight: 2 },
                Criterion { key: "innovation".into(), title: "Innovation".into(), weight: 1 },
            ],
            scale_max: 10,
            min_evaluators: 2,
            pass_score: 600,
        }
    }

    fn scores(v: u32, j: u32, i: u32) -> Vec<(String, u32)> {
        vec![("viability".into(), v), ("jobs".into(), j), ("innovation".into(), i)]
    }

    #[test]
    fn a_usable_evaluation() {
        assert_eq!(evaluation().check(), Ok(()));
        let broken = |f: fn(&mut Evaluation)| {
            let mut e = evaluation();
            f(&mut e);
            e.check()
        };
        assert_eq!(broken(|e| e.criteria.clear()), Err(EvaluationError::Criteria));
        assert_eq!(broken(|e| e.criteria[1].key = "viability".into()), Err(EvaluationError::Criteria));
        assert_eq!(broken(|e| e.criteria[2].key.clear()), Err(EvaluationError::Criteria));
        assert_eq!(broken(|e| e.criteria[0].weight = 0), Err(EvaluationError::Criteria));
        assert_eq!(broken(|e| e.criteria[0].weight = 101), Err(EvaluationError::Criteria));
        assert_eq!(broken(|e| e.criteria[0].weight = 100), Ok(()));
        assert_eq!(broken(|e| e.scale_max = 0), Err(EvaluationError::Scale));
        assert_eq!(broken(|e| e.scale_max = 101), Err(EvaluationError::Scale));
        assert_eq!(broken(|e| e.scale_max = 100), Ok(()));
        assert_eq!(broken(|e| e.min_evaluators = 0), Err(EvaluationError::MinEvaluators));
        assert_eq!(broken(|e| e.pass_score = 1001), Err(EvaluationError::PassScore));
        assert_eq!(broken(|e| e.pass_score = 1000), Ok(()));
    }

    #[test]
    fn scores_cover_every_criterion_once_within_the_scale() {
        let e = evaluation();
        let ok = e.checked(&scores(8, 6, 10)).unwrap();
        assert_eq!(ok.get("jobs"), Some(&6));
        assert_eq!(e.checked(&scores(0, 0, 0)).map(|s| s.len()), Ok(3));
        assert_eq!(e.checked(&scores(11, 6, 10)), Err(ScoresError::AboveScale { key: "viability".into(), max: 10 }));
        let mut extra = scores(8, 6, 10);
        extra.push(("charm".into(), 5));
        assert_eq!(e.checked(&extra), Err(ScoresError::Unknown("charm".into())));
        let mut twice = scores(8, 6, 10);
        twice.push(("jobs".into(), 5));
        assert_eq!(e.checked(&twice), Err(ScoresError::Twice("jobs".into())));
        let mut short = scores(8, 6, 10);
        short.remove(1);
        assert_eq!(e.checked(&short), Err(ScoresError::Missing("jobs".into())));
        for err in [
            ScoresError::Unknown("a".into()),
            ScoresError::Twice("a".into()),
            ScoresError::Missing("a".into()),
            ScoresError::AboveScale { key: "a".into(), max: 10 },
        ] {
            assert!(err.to_string().starts_with('a'), "{err}");
        }
    }

    #[test]
    fn weighted_scores_and_the_final_mean_in_hundredths_half_up() {
        let e = evaluation();
        // (3·8 + 2·6 + 1·10) / 6 = 46/6 = 7.666… → 7.67
        let a = e.checked(&scores(8, 6, 10)).unwrap();
        assert_eq!(e.weighted(&a), 767);
        // (3·5 + 2·7 + 1·4) / 6 = 33/6 = 5.5 → 5.50
        let b = e.checked(&scores(5, 7, 4)).unwrap();
        assert_eq!(e.weighted(&b), 550);
        // (46 + 33) / 12 = 6.5833… → 6.58 (not the mean of the rounded 7.67 and 5.50)
        assert_eq!(e.final_score([&a, &b]), Some(658));
        assert_eq!(e.final_score([&a]), Some(767));
        assert_eq!(e.final_score(std::iter::empty()), None);
        // Equal weights on a 0–100 scale.
        let half = Evaluation {
            criteria: vec![
                Criterion { key: "a".into(), title: "A".into(), weight: 100 },
                Criterion { key: "b".into(), title: "B".into(), weight: 100 },
            ],
            scale_max: 100,
            min_evaluators: 1,
            pass_score: 0,
        };
        let s = half.checked(&[("a".into(), 7), ("b".into(), 8)]).unwrap();
        assert_eq!(half.weighted(&s), 750);
        let lo = half.checked(&[("a".into(), 7), ("b".into(), 7)]).unwrap();
        let hi = half.checked(&[("a".into(), 7), ("b".into(), 8)]).unwrap();
        let third = half.checked(&[("a".into(), 7), ("b".into(), 8)]).unwrap();
        let fourth = half.checked(&[("a".into(), 8), ("b".into(), 7)]).unwrap();
        // (1400 + 1500 + 1500 + 1500) / (4 · 200) = 7.375 → 7.38
        assert_eq!(half.final_score([&lo, &hi, &third, &fourth]), Some(738));
        // (1400 + 1500) / 400 = 7.25; (1400·3 + 1500) / 800 = 7.125 → 7.13
        assert_eq!(half.final_score([&lo, &lo, &lo, &hi]), Some(713));
        assert_eq!(hundredths(1, 0), 0);
        assert_eq!(hundredths(1, 3), 33);
        assert_eq!(hundredths(2, 3), 67);
        assert_eq!(hundredths(1, 200), 1, "0.005 rounds up to 0.01");
        assert_eq!(hundredths(1, 201), 0);
    }
}
