//! Two aggregates of different kinds deciding one command together: a
//! grants call's budget and the application it approves, both or neither.
//!
//! [`Pair<A, B>`] is an aggregate whose every instance is one side: its
//! commands say which ([`Either::First`] for an `A`, [`Either::Second`] for
//! a `B`), and so does the subject they address ([`Aggregate::subject_kind`]),
//! so one command loop can run an `A` step and a `B` step in one atomic
//! batch, each deciding by its own rules on its own state, each with its
//! own expected sequence. A `B` command never reaches an `A` subject: a
//! state loaded from a subject only ever holds that subject's side.

use std::fmt;

use crate::{
    Aggregate, ClaimChange, Codec, DecodeError, EncodeError, EncodedEvent, EventCodec, Rejection, RejectionKind,
};

/// One of two things: of the first aggregate or of the second.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Either<L, R> {
    /// The first aggregate's.
    First(L),
    /// The second aggregate's.
    Second(R),
}

/// The state of one side of a [`Pair`].
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Pair<A, B> {
    /// Nothing loaded yet (a new aggregate of either side).
    #[default]
    Empty,
    /// An `A`.
    First(A),
    /// A `B`.
    Second(B),
}

impl<A: Aggregate, B: Aggregate> Pair<A, B> {
    /// The `A` side (its default while empty or a `B`).
    pub fn first(&self) -> A {
        match self {
            Self::First(a) => a.clone(),
            _ => A::default(),
        }
    }

    /// The `B` side (its default while empty or an `A`).
    pub fn second(&self) -> B {
        match self {
            Self::Second(b) => b.clone(),
            _ => B::default(),
        }
    }
}

impl<L: fmt::Display, R: fmt::Display> fmt::Display for Either<L, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::First(l) => l.fmt(f),
            Self::Second(r) => r.fmt(f),
        }
    }
}

impl<L, R> std::error::Error for Either<L, R>
where
    L: std::error::Error,
    R: std::error::Error,
{
}

impl<L: Rejection, R: Rejection> Rejection for Either<L, R> {
    fn kind(&self) -> RejectionKind {
        match self {
            Self::First(l) => l.kind(),
            Self::Second(r) => r.kind(),
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::First(l) => l.field(),
            Self::Second(r) => r.field(),
        }
    }

    fn rule(&self) -> Option<&'static str> {
        match self {
            Self::First(l) => l.rule(),
            Self::Second(r) => r.rule(),
        }
    }
}

impl<L: EventCodec, R: EventCodec> EventCodec for Either<L, R> {
    fn encode(&self) -> EncodedEvent {
        match self {
            Self::First(l) => l.encode(),
            Self::Second(r) => r.encode(),
        }
    }

    /// The first side's event if it decodes as one, else the second's.
    fn decode(event: &EncodedEvent) -> Result<Self, DecodeError> {
        L::decode(event).map(Self::First).or_else(|first| {
            R::decode(event)
                .map(Self::Second)
                .map_err(|second| DecodeError::new(event, format!("{}; {}", first.reason, second.reason)))
        })
    }
}

/// The codec of a pair's events from each side's own codec (e.g. a plain
/// one and one holding a data key), for sides whose events have no plain
/// [`EventCodec`].
pub struct PairCodec<'a, L, R> {
    /// The first side's codec.
    pub first: &'a dyn Codec<L>,
    /// The second side's codec.
    pub second: &'a dyn Codec<R>,
}

impl<L, R> Codec<Either<L, R>> for PairCodec<'_, L, R> {
    fn encode(&self, event: &Either<L, R>) -> Result<EncodedEvent, EncodeError> {
        match event {
            Either::First(l) => self.first.encode(l),
            Either::Second(r) => self.second.encode(r),
        }
    }

    /// The first side's event if it decodes as one, else the second's.
    fn decode(&self, event: &EncodedEvent) -> Result<Either<L, R>, DecodeError> {
        self.first.decode(event).map(Either::First).or_else(|first| {
            self.second
                .decode(event)
                .map(Either::Second)
                .map_err(|second| DecodeError::new(event, format!("{}; {}", first.reason, second.reason)))
        })
    }
}

impl<A: Aggregate, B: Aggregate> Aggregate for Pair<A, B> {
    type Command = Either<A::Command, B::Command>;
    type Event = Either<A::Event, B::Event>;
    type Error = Either<A::Error, B::Error>;
    /// Not used for subjects: [`Aggregate::subject_kind`] names each side's.
    const KIND: &'static str = A::KIND;

    fn subject_kind(command: &Self::Command) -> &'static str {
        match command {
            Either::First(_) => A::KIND,
            Either::Second(_) => B::KIND,
        }
    }

    // Each side decides and evolves in place: no copy of the state (a call
    // holding thousands of commitments decides every approval).
    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error> {
        match command {
            Either::First(c) => match self {
                Self::First(a) => a.decide(c),
                _ => A::default().decide(c),
            }
            .map(|events| events.into_iter().map(Either::First).collect())
            .map_err(Either::First),
            Either::Second(c) => match self {
                Self::Second(b) => b.decide(c),
                _ => B::default().decide(c),
            }
            .map(|events| events.into_iter().map(Either::Second).collect())
            .map_err(Either::Second),
        }
    }

    fn evolve(&mut self, event: &Self::Event) {
        match (&mut *self, event) {
            (Self::First(a), Either::First(e)) => a.evolve(e),
            (Self::Second(b), Either::Second(e)) => b.evolve(e),
            (_, Either::First(e)) => {
                let mut a = A::default();
                a.evolve(e);
                *self = Self::First(a);
            }
            (_, Either::Second(e)) => {
                let mut b = B::default();
                b.evolve(e);
                *self = Self::Second(b);
            }
        }
    }

    fn exists(&self) -> bool {
        match self {
            Self::Empty => false,
            Self::First(a) => a.exists(),
            Self::Second(b) => b.exists(),
        }
    }

    fn claims(&self, events: &[Self::Event]) -> Vec<ClaimChange> {
        let firsts: Vec<A::Event> =
            events.iter().filter_map(|e| if let Either::First(e) = e { Some(e.clone()) } else { None }).collect();
        let seconds: Vec<B::Event> =
            events.iter().filter_map(|e| if let Either::Second(e) = e { Some(e.clone()) } else { None }).collect();
        let mut out = Vec::new();
        if !firsts.is_empty() {
            out.extend(match self {
                Self::First(a) => a.claims(&firsts),
                _ => A::default().claims(&firsts),
            });
        }
        if !seconds.is_empty() {
            out.extend(match self {
                Self::Second(b) => b.claims(&seconds),
                _ => B::default().claims(&seconds),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Claim;

    /// A budget: spends up to its amount.
    #[derive(Clone, Debug, Default, PartialEq)]
    struct Budget {
        left: Option<i64>,
    }

    /// An application: approved once.
    #[derive(Clone, Debug, Default, PartialEq)]
    struct Application {
        approved: Option<i64>,
        filed: bool,
    }

    #[derive(Debug, PartialEq, thiserror::Error)]
    enum Refused {
        #[error("over budget")]
        OverBudget,
        #[error("approved before")]
        Twice,
    }

    impl Rejection for Refused {
        fn kind(&self) -> RejectionKind {
            RejectionKind::FailedPrecondition
        }

        fn rule(&self) -> Option<&'static str> {
            Some(match self {
                Self::OverBudget => "OVER_BUDGET",
                Self::Twice => "TWICE",
            })
        }
    }

    impl Aggregate for Budget {
        type Command = i64;
        type Event = i64;
        type Error = Refused;
        const KIND: &'static str = "budget";

        fn decide(&self, spend: &i64) -> Result<Vec<i64>, Refused> {
            match self.left {
                None => Ok(vec![-*spend]),
                Some(left) if left >= *spend => Ok(vec![*spend]),
                Some(_) => Err(Refused::OverBudget),
            }
        }

        fn evolve(&mut self, e: &i64) {
            self.left = Some(match self.left {
                None => -*e,
                Some(left) => left - *e,
            });
        }

        fn exists(&self) -> bool {
            self.left.is_some()
        }
    }

    impl Aggregate for Application {
        type Command = i64;
        type Event = i64;
        type Error = Refused;
        const KIND: &'static str = "application";

        fn decide(&self, amount: &i64) -> Result<Vec<i64>, Refused> {
            if self.approved.is_some() { Err(Refused::Twice) } else { Ok(vec![*amount]) }
        }

        fn evolve(&mut self, e: &i64) {
            self.approved = Some(*e);
            self.filed = true;
        }

        fn exists(&self) -> bool {
            self.filed
        }

        fn claims(&self, events: &[i64]) -> Vec<ClaimChange> {
            events.iter().map(|e| ClaimChange::Acquire(Claim::new("approval", e.to_string()))).collect()
        }
    }

    type Grant = Pair<Budget, Application>;

    #[test]
    fn each_side_decides_by_its_own_rules_on_its_own_subject() {
        assert_eq!(Grant::subject_kind(&Either::First(1)), "budget");
        assert_eq!(Grant::subject_kind(&Either::Second(1)), "application");
        let mut budget = Grant::default();
        assert!(!budget.exists());
        // A budget of 100 is opened (the first event), then 60 is spent.
        budget.evolve(&Either::First(-100));
        assert!(budget.exists());
        assert_eq!(budget.decide(&Either::First(60)), Ok(vec![Either::First(60)]));
        budget.evolve(&Either::First(60));
        let refused = budget.decide(&Either::First(41)).unwrap_err();
        assert_eq!((refused.rule(), refused.kind()), (Some("OVER_BUDGET"), RejectionKind::FailedPrecondition));
        assert_eq!(refused.to_string(), "over budget");
        assert_eq!(budget.first().left, Some(40));
        assert_eq!(budget.second(), Application::default());

        let mut application = Grant::default();
        assert_eq!(application.decide(&Either::Second(40)), Ok(vec![Either::Second(40)]));
        assert_eq!(
            application.claims(&[Either::Second(40), Either::First(1)]),
            [ClaimChange::Acquire(Claim::new("approval", "40"))]
        );
        application.evolve(&Either::Second(40));
        assert!(application.exists());
        assert_eq!(application.decide(&Either::Second(1)).unwrap_err().rule(), Some("TWICE"));
        assert_eq!(budget.claims(&[Either::First(1)]), []);
    }

    struct Named(&'static str);

    impl EventCodec for Named {
        fn encode(&self) -> EncodedEvent {
            EncodedEvent { type_name: self.0.into(), schema_version: 1, data: Vec::new() }
        }

        fn decode(event: &EncodedEvent) -> Result<Self, DecodeError> {
            Err(DecodeError::new(event, "not mine"))
        }
    }

    #[derive(Debug, PartialEq)]
    struct Other;

    impl EventCodec for Other {
        fn encode(&self) -> EncodedEvent {
            EncodedEvent { type_name: "other".into(), schema_version: 1, data: Vec::new() }
        }

        fn decode(event: &EncodedEvent) -> Result<Self, DecodeError> {
            if event.type_name == "other" { Ok(Other) } else { Err(DecodeError::new(event, "not other")) }
        }
    }

    #[test]
    fn events_decode_as_the_side_they_belong_to() {
        let stored = Either::<Named, Other>::Second(Other).encode();
        assert!(matches!(Either::<Named, Other>::decode(&stored), Ok(Either::Second(Other))));
        let foreign = Either::<Named, Other>::First(Named("x")).encode();
        let e = Either::<Named, Other>::decode(&foreign).err().unwrap();
        assert_eq!(e.reason, "not mine; not other");
    }

    #[test]
    fn a_pair_codec_encodes_and_decodes_through_each_sides_own_codec() {
        use crate::Plain;
        let codec = PairCodec::<Named, Other> { first: &Plain, second: &Plain };
        let stored = codec.encode(&Either::Second(Other)).unwrap();
        assert_eq!(stored.type_name, "other");
        assert!(matches!(codec.decode(&stored), Ok(Either::Second(Other))));
        let first = codec.encode(&Either::First(Named("named"))).unwrap();
        assert_eq!(first.type_name, "named");
        let e = codec.decode(&first).err().unwrap();
        assert_eq!(e.reason, "not mine; not other");
    }
}
