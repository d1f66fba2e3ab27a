//! The counter aggregate: pure `decide` and `evolve`, and its validated inputs.

use acasa_domain::{Aggregate, Claim, ClaimChange, Rejection, RejectionKind};
use uuid::Uuid;

/// A counter's name: 1 to 100 characters, trimmed, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterName(String);

/// Why a name is invalid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    /// Blank.
    #[error("is required")]
    Empty,
    /// Too long.
    #[error("must be at most 100 characters")]
    TooLong,
    /// Control characters.
    #[error("must not contain control characters")]
    Control,
}

impl CounterName {
    /// Validates a name.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.chars().count() > 100 {
            return Err(NameError::TooLong);
        }
        if s.chars().any(char::is_control) {
            return Err(NameError::Control);
        }
        Ok(Self(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A positive amount of at most 1,000,000.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Amount(i64);

impl Amount {
    /// The largest amount.
    pub const MAX: i64 = 1_000_000;

    /// Validates an amount.
    pub fn parse(v: i64) -> Result<Self, String> {
        if (1..=Self::MAX).contains(&v) { Ok(Self(v)) } else { Err(format!("must be between 1 and {}", Self::MAX)) }
    }

    /// The amount.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// A counter's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    /// Its id, once created.
    pub id: Option<Uuid>,
    /// Its name.
    pub name: String,
    /// Upper bound; 0 unbounded.
    pub limit: i64,
    /// Current value.
    pub value: i64,
}

/// What can be asked of a counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CounterCommand {
    /// Create it.
    Create {
        /// The new id.
        id: Uuid,
        /// The name.
        name: CounterName,
        /// Upper bound; 0 unbounded.
        limit: i64,
    },
    /// Add to it.
    Increment {
        /// How much.
        amount: Amount,
    },
}

/// What happened to a counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CounterEvent {
    /// Created.
    Created {
        /// Its id.
        id: Uuid,
        /// Its name.
        name: String,
        /// Upper bound.
        limit: i64,
    },
    /// Incremented.
    Incremented {
        /// By how much.
        amount: i64,
        /// The value after.
        value: i64,
    },
}

/// Why a counter refused a command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CounterError {
    /// Create on an existing counter.
    #[error("the counter already exists")]
    AlreadyCreated,
    /// Increment on a counter that was never created.
    #[error("no such counter")]
    NotFound,
    /// The increment would pass the limit.
    #[error("the increment would take the value to {would_be}, past the limit {limit}")]
    LimitExceeded {
        /// The value it would reach.
        would_be: i64,
        /// The limit.
        limit: i64,
    },
}

impl Rejection for CounterError {
    fn kind(&self) -> RejectionKind {
        match self {
            Self::AlreadyCreated => RejectionKind::AlreadyExists,
            Self::NotFound => RejectionKind::NotFound,
            Self::LimitExceeded { .. } => RejectionKind::FailedPrecondition,
        }
    }
}

/// The claim kind of counter names: one counter per name.
pub const NAME_CLAIM: &str = "counter-name";

impl Aggregate for Counter {
    type Command = CounterCommand;
    type Event = CounterEvent;
    type Error = CounterError;
    const KIND: &'static str = "counter";

    fn decide(&self, command: &CounterCommand) -> Result<Vec<CounterEvent>, CounterError> {
        match command {
            CounterCommand::Create { id, name, limit } => {
                if self.exists() {
                    return Err(CounterError::AlreadyCreated);
                }
                Ok(vec![CounterEvent::Created { id: *id, name: name.as_str().to_owned(), limit: *limit }])
            }
            CounterCommand::Increment { amount } => {
                if !self.exists() {
                    return Err(CounterError::NotFound);
                }
                let would_be = self.value.saturating_add(amount.get());
                if self.limit > 0 && would_be > self.limit {
                    return Err(CounterError::LimitExceeded { would_be, limit: self.limit });
                }
                Ok(vec![CounterEvent::Incremented { amount: amount.get(), value: would_be }])
            }
        }
    }

    fn evolve(&mut self, event: &CounterEvent) {
        match event {
            CounterEvent::Created { id, name, limit } => {
                self.id = Some(*id);
                self.name.clone_from(name);
                self.limit = *limit;
            }
            CounterEvent::Incremented { value, .. } => self.value = *value,
        }
    }

    fn exists(&self) -> bool {
        self.id.is_some()
    }

    fn claims(&self, events: &[CounterEvent]) -> Vec<ClaimChange> {
        events
            .iter()
            .filter_map(|e| match e {
                CounterEvent::Created { name, .. } => Some(ClaimChange::Acquire(Claim::new(NAME_CLAIM, name.clone()))),
                CounterEvent::Incremented { .. } => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(events: &[CounterEvent]) -> Counter {
        acasa_domain::testing::given_events(events)
    }

    fn created(limit: i64) -> CounterEvent {
        CounterEvent::Created { id: Uuid::nil(), name: "n".into(), limit }
    }

    fn inc(n: i64) -> CounterCommand {
        CounterCommand::Increment { amount: Amount::parse(n).unwrap() }
    }

    #[test]
    fn create_then_increment() {
        let c = given(&[]);
        let cmd = CounterCommand::Create { id: Uuid::nil(), name: CounterName::parse(" n ").unwrap(), limit: 0 };
        assert_eq!(c.decide(&cmd), Ok(vec![created(0)]));
        let c = given(&[created(0)]);
        assert_eq!(c.decide(&inc(5)), Ok(vec![CounterEvent::Incremented { amount: 5, value: 5 }]));
    }

    #[test]
    fn create_twice_is_refused() {
        let cmd = CounterCommand::Create { id: Uuid::nil(), name: CounterName::parse("n").unwrap(), limit: 0 };
        assert_eq!(given(&[created(0)]).decide(&cmd), Err(CounterError::AlreadyCreated));
    }

    #[test]
    fn increment_needs_a_counter() {
        assert_eq!(given(&[]).decide(&inc(1)), Err(CounterError::NotFound));
    }

    #[test]
    fn the_limit_holds() {
        let c = given(&[created(10), CounterEvent::Incremented { amount: 8, value: 8 }]);
        assert_eq!(c.decide(&inc(3)), Err(CounterError::LimitExceeded { would_be: 11, limit: 10 }));
        assert_eq!(c.decide(&inc(2)), Ok(vec![CounterEvent::Incremented { amount: 2, value: 10 }]));
    }

    #[test]
    fn inputs_are_validated() {
        assert_eq!(CounterName::parse("  "), Err(NameError::Empty));
        assert_eq!(CounterName::parse(&"x".repeat(101)), Err(NameError::TooLong));
        assert_eq!(CounterName::parse("a\u{7}"), Err(NameError::Control));
        assert!(Amount::parse(0).is_err());
        assert!(Amount::parse(Amount::MAX + 1).is_err());
    }

    #[test]
    fn a_counter_claims_its_name_when_created_only() {
        use acasa_domain::testing::when;
        let name = CounterName::parse("visitors").unwrap();
        let create = CounterCommand::Create { id: Uuid::from_u128(1), name, limit: 0 };
        assert_eq!(when(&given(&[]), &create).claims(), [ClaimChange::Acquire(Claim::new(NAME_CLAIM, "visitors"))]);
        let increment = CounterCommand::Increment { amount: Amount::parse(1).unwrap() };
        assert_eq!(when(&given(&[created(0)]), &increment).claims(), []);
    }
}
