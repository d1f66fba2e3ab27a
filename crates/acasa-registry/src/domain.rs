//! The person aggregate: pure `decide` and `evolve`.
//!
//! Personal payloads are the API's protobuf messages, validated and
//! normalised at the edge ([`crate::validate`]) before they reach a command.
//! In events they are [`Personal`]: open when the person's data key was at
//! hand when the log was read, [`Personal::Shredded`] after erasure.

use std::collections::{BTreeMap, BTreeSet};

use acasa_domain::{Aggregate, Claim, ClaimChange, Rejection, RejectionKind};
use acasa_proto::registry::v1 as pb;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

pub use pb::{Category, ConsentChannel as Channel, ConsentPurpose, Interest};

/// A personal payload as read from the log.
#[derive(Clone, Debug, PartialEq)]
pub enum Personal<T> {
    /// Readable.
    Open(T),
    /// Its data key is destroyed: the person was erased.
    Shredded,
}

impl<T> Personal<T> {
    /// The payload, if readable.
    pub fn open(&self) -> Option<&T> {
        match self {
            Self::Open(t) => Some(t),
            Self::Shredded => None,
        }
    }
}

/// Calendar dates to and from protobuf `Date`s.
pub use acasa_proto::time::{date as proto_date, naive_date};

/// Validated personal details (built by [`crate::validate`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Details {
    /// The normalised message.
    pub pb: pb::PersonDetails,
    /// The birth date it carries.
    pub birth_date: NaiveDate,
}

impl Details {
    /// Reads the birth date out of a stored message.
    pub fn from_pb(pb: pb::PersonDetails) -> Option<Self> {
        let birth_date = naive_date(pb.birth_date.as_ref()?)?;
        Some(Self { pb, birth_date })
    }

    /// The IDNP, if any.
    pub fn idnp(&self) -> Option<&str> {
        Some(self.pb.idnp.as_str()).filter(|s| !s.is_empty())
    }
}

/// A validated return.
#[derive(Clone, Debug, PartialEq)]
pub struct Return {
    /// The normalised message.
    pub pb: pb::ReturnDetails,
    /// The return date it carries.
    pub date: NaiveDate,
}

impl Return {
    /// Reads the date out of a stored message.
    pub fn from_pb(pb: pb::ReturnDetails) -> Option<Self> {
        let date = naive_date(pb.return_date.as_ref()?)?;
        Some(Self { pb, date })
    }
}

/// Which consent: a purpose, and for partner sharing the partner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConsentKey {
    /// The purpose.
    pub purpose: ConsentPurpose,
    /// The partner, for [`ConsentPurpose::PartnerSharing`] only.
    pub partner: Option<Uuid>,
}

/// Where a record stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Status {
    /// Live.
    #[default]
    Active,
    /// Merged into the survivor.
    Merged(Uuid),
    /// Erased.
    Erased,
}

/// A person's state, as far as the rules need it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Person {
    /// Id, once registered.
    pub id: Option<Uuid>,
    /// Status.
    pub status: Status,
    /// Categories.
    pub categories: BTreeSet<Category>,
    /// Country of residence.
    pub country: String,
    /// Interests.
    pub interests: BTreeSet<Interest>,
    /// Details (None once shredded).
    pub details: Option<Details>,
    /// Contacts (None once shredded).
    pub contacts: Option<pb::Contacts>,
    /// The last recorded return (None if none, or shredded).
    pub return_date: Option<NaiveDate>,
    /// Whether a return was recorded.
    pub returned: bool,
    /// Consents and whether each is given now.
    pub consents: BTreeMap<ConsentKey, bool>,
    /// The records merged into this one (the same human).
    pub absorbed: BTreeSet<Uuid>,
}

impl Person {
    /// Whether consent `key` is given now.
    pub fn has_consent(&self, key: &ConsentKey) -> bool {
        self.consents.get(key).copied().unwrap_or(false)
    }
}

/// What can be asked of a person.
#[derive(Clone, Debug, PartialEq)]
pub enum PersonCommand {
    /// Register.
    Register {
        /// The new id.
        id: Uuid,
        /// Details.
        details: Details,
        /// Contacts.
        contacts: pb::Contacts,
        /// Country of residence.
        country: String,
        /// At least one category.
        categories: BTreeSet<Category>,
        /// Interests.
        interests: BTreeSet<Interest>,
    },
    /// Replace the details.
    UpdateDetails {
        /// Details.
        details: Details,
        /// Country of residence.
        country: String,
    },
    /// Replace the contacts.
    UpdateContacts(pb::Contacts),
    /// Record a return.
    RecordReturn(Return),
    /// Add a category.
    AddCategory(Category),
    /// Remove a category.
    RemoveCategory(Category),
    /// Give consent.
    GiveConsent {
        /// Which.
        key: ConsentKey,
        /// How.
        channel: Channel,
        /// When.
        at: DateTime<Utc>,
    },
    /// Withdraw consent.
    WithdrawConsent {
        /// Which.
        key: ConsentKey,
        /// How.
        channel: Channel,
        /// When.
        at: DateTime<Utc>,
    },
    /// Replace the interests.
    RecordInterests(BTreeSet<Interest>),
    /// Dismiss a duplicate flag with another person.
    DismissDuplicate(Uuid),
    /// Merge this record into a survivor.
    MergeInto(Uuid),
    /// Take in a merged record's categories.
    Absorb {
        /// The merged record.
        merged: Uuid,
        /// Its categories.
        categories: BTreeSet<Category>,
    },
    /// Erase this record, one of a human's records erased together: the
    /// erasing command names the records merged into this one that it erases
    /// with it, and is refused if another was merged in meanwhile.
    Erase {
        /// When.
        at: DateTime<Utc>,
        /// The records merged into this one that the same command erases.
        with: BTreeSet<Uuid>,
    },
}

/// What happened to a person.
#[derive(Clone, Debug, PartialEq)]
pub enum PersonEvent {
    /// Registered.
    Registered {
        /// Id.
        id: Uuid,
        /// Categories.
        categories: Vec<Category>,
        /// Country of residence.
        country: String,
        /// Interests.
        interests: Vec<Interest>,
        /// Details.
        details: Personal<pb::PersonDetails>,
        /// Contacts.
        contacts: Personal<pb::Contacts>,
    },
    /// Details replaced.
    DetailsUpdated {
        /// Country of residence.
        country: String,
        /// Details.
        details: Personal<pb::PersonDetails>,
    },
    /// Contacts replaced.
    ContactsUpdated(Personal<pb::Contacts>),
    /// Returned to Moldova.
    ReturnRecorded(Personal<pb::ReturnDetails>),
    /// Category added.
    CategoryAdded(Category),
    /// Category removed.
    CategoryRemoved(Category),
    /// Consent given.
    ConsentGiven {
        /// Which.
        key: ConsentKey,
        /// How.
        channel: Channel,
        /// When.
        at: DateTime<Utc>,
    },
    /// Consent withdrawn.
    ConsentWithdrawn {
        /// Which.
        key: ConsentKey,
        /// How.
        channel: Channel,
        /// When.
        at: DateTime<Utc>,
    },
    /// Interests replaced.
    InterestsRecorded(Vec<Interest>),
    /// A duplicate flag dismissed.
    DuplicateDismissed(Uuid),
    /// Merged into a survivor.
    Merged(Uuid),
    /// A duplicate merged in.
    Absorbed(Uuid),
    /// Erased.
    Erased {
        /// When.
        at: DateTime<Utc>,
    },
}

/// Why a person refused a command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PersonError {
    /// Register on an existing id.
    #[error("the person is already registered")]
    AlreadyRegistered,
    /// No such person.
    #[error("no such person")]
    NotFound,
    /// The record was merged.
    #[error("the record was merged into {0}; act on that person")]
    Merged(Uuid),
    /// The record was erased.
    #[error("the person was erased")]
    Erased,
    /// A return dated before the birth date.
    #[error("must not be before the birth date")]
    ReturnBeforeBirth,
    /// New birth date after the recorded return.
    #[error("must not be after the recorded return date")]
    BirthAfterReturn,
    /// Removing the last category.
    #[error("a person keeps at least one category")]
    LastCategory,
    /// Withdrawing a consent that is not given.
    #[error("there is no given consent for this purpose to withdraw")]
    NoConsent,
    /// A person cannot be their own duplicate.
    #[error("must be another person")]
    SamePerson,
    /// An erasure that does not reach every record merged into this one.
    #[error("another record was merged into this person meanwhile; retry the erasure")]
    MergedMeanwhile,
}

impl Rejection for PersonError {
    fn kind(&self) -> RejectionKind {
        match self {
            Self::AlreadyRegistered => RejectionKind::AlreadyExists,
            Self::NotFound => RejectionKind::NotFound,
            Self::Merged(_) | Self::Erased | Self::LastCategory | Self::NoConsent | Self::MergedMeanwhile => {
                RejectionKind::FailedPrecondition
            }
            Self::ReturnBeforeBirth | Self::BirthAfterReturn | Self::SamePerson => RejectionKind::InvalidArgument,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::ReturnBeforeBirth => Some("return_details.return_date"),
            Self::BirthAfterReturn => Some("details.birth_date"),
            Self::SamePerson => Some("other_person_id"),
            _ => None,
        }
    }
}

impl Person {
    fn writable(&self) -> Result<(), PersonError> {
        match self.status {
            _ if self.id.is_none() => Err(PersonError::NotFound),
            Status::Active => Ok(()),
            Status::Merged(into) => Err(PersonError::Merged(into)),
            Status::Erased => Err(PersonError::Erased),
        }
    }

    fn id_or_nil(&self) -> Uuid {
        self.id.unwrap_or_default()
    }
}

impl Aggregate for Person {
    type Command = PersonCommand;
    type Event = PersonEvent;
    type Error = PersonError;
    const KIND: &'static str = "person";

    fn decide(&self, command: &PersonCommand) -> Result<Vec<PersonEvent>, PersonError> {
        use PersonCommand as C;
        use PersonEvent as E;
        if let C::Register { id, details, contacts, country, categories, interests } = command {
            if self.exists() {
                return Err(PersonError::AlreadyRegistered);
            }
            return Ok(vec![E::Registered {
                id: *id,
                categories: categories.iter().copied().collect(),
                country: country.clone(),
                interests: interests.iter().copied().collect(),
                details: Personal::Open(details.pb.clone()),
                contacts: Personal::Open(contacts.clone()),
            }]);
        }
        // Erasure reaches a merged record too: it is the same human.
        if let C::Erase { at, with } = command {
            if !self.exists() {
                return Err(PersonError::NotFound);
            }
            if self.status == Status::Erased {
                return Err(PersonError::Erased);
            }
            if !self.absorbed.is_subset(with) {
                return Err(PersonError::MergedMeanwhile);
            }
            return Ok(vec![E::Erased { at: *at }]);
        }
        self.writable()?;
        Ok(match command {
            C::Register { .. } | C::Erase { .. } => Vec::new(),
            C::UpdateDetails { details, country } => {
                if self.return_date.is_some_and(|r| r < details.birth_date) {
                    return Err(PersonError::BirthAfterReturn);
                }
                vec![E::DetailsUpdated { country: country.clone(), details: Personal::Open(details.pb.clone()) }]
            }
            C::UpdateContacts(contacts) => vec![E::ContactsUpdated(Personal::Open(contacts.clone()))],
            C::RecordReturn(ret) => {
                if self.details.as_ref().is_some_and(|d| ret.date < d.birth_date) {
                    return Err(PersonError::ReturnBeforeBirth);
                }
                let mut events = vec![E::ReturnRecorded(Personal::Open(ret.pb.clone()))];
                if !self.categories.contains(&Category::Returnee) {
                    events.push(E::CategoryAdded(Category::Returnee));
                }
                if self.categories.contains(&Category::MigrantAbroad) {
                    events.push(E::CategoryRemoved(Category::MigrantAbroad));
                }
                events
            }
            C::AddCategory(c) if self.categories.contains(c) => Vec::new(),
            C::AddCategory(c) => vec![E::CategoryAdded(*c)],
            C::RemoveCategory(c) if !self.categories.contains(c) => Vec::new(),
            C::RemoveCategory(_) if self.categories.len() == 1 => return Err(PersonError::LastCategory),
            C::RemoveCategory(c) => vec![E::CategoryRemoved(*c)],
            C::GiveConsent { key, .. } if self.has_consent(key) => Vec::new(),
            C::GiveConsent { key, channel, at } => vec![E::ConsentGiven { key: *key, channel: *channel, at: *at }],
            C::WithdrawConsent { key, .. } if !self.has_consent(key) => return Err(PersonError::NoConsent),
            C::WithdrawConsent { key, channel, at } => {
                vec![E::ConsentWithdrawn { key: *key, channel: *channel, at: *at }]
            }
            C::RecordInterests(interests) => vec![E::InterestsRecorded(interests.iter().copied().collect())],
            C::DismissDuplicate(other) if *other == self.id_or_nil() => return Err(PersonError::SamePerson),
            C::DismissDuplicate(other) => vec![E::DuplicateDismissed(*other)],
            C::MergeInto(survivor) if *survivor == self.id_or_nil() => return Err(PersonError::SamePerson),
            C::MergeInto(survivor) => vec![E::Merged(*survivor)],
            C::Absorb { merged, .. } if *merged == self.id_or_nil() => return Err(PersonError::SamePerson),
            C::Absorb { merged, categories } => {
                let mut events = vec![E::Absorbed(*merged)];
                events.extend(categories.difference(&self.categories).map(|c| E::CategoryAdded(*c)));
                events
            }
        })
    }

    fn evolve(&mut self, event: &PersonEvent) {
        use PersonEvent as E;
        match event {
            E::Registered { id, categories, country, interests, details, contacts } => {
                self.id = Some(*id);
                self.categories = categories.iter().copied().collect();
                self.country.clone_from(country);
                self.interests = interests.iter().copied().collect();
                self.details = details.open().cloned().and_then(Details::from_pb);
                self.contacts = contacts.open().cloned();
            }
            E::DetailsUpdated { country, details } => {
                self.country.clone_from(country);
                self.details = details.open().cloned().and_then(Details::from_pb);
            }
            E::ContactsUpdated(contacts) => self.contacts = contacts.open().cloned(),
            E::ReturnRecorded(ret) => {
                self.returned = true;
                self.country = "MD".into();
                self.return_date = ret.open().cloned().and_then(Return::from_pb).map(|r| r.date);
            }
            E::CategoryAdded(c) => {
                self.categories.insert(*c);
            }
            E::CategoryRemoved(c) => {
                self.categories.remove(c);
            }
            E::ConsentGiven { key, .. } => {
                self.consents.insert(*key, true);
            }
            E::ConsentWithdrawn { key, .. } => {
                self.consents.insert(*key, false);
            }
            E::InterestsRecorded(i) => self.interests = i.iter().copied().collect(),
            E::DuplicateDismissed(_) => {}
            E::Absorbed(merged) => {
                self.absorbed.insert(*merged);
            }
            E::Merged(survivor) => self.status = Status::Merged(*survivor),
            E::Erased { .. } => {
                self.status = Status::Erased;
                self.details = None;
                self.contacts = None;
                self.return_date = None;
            }
        }
    }

    fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// One person per IDNP: registration takes it, a details update that
    /// changes it frees the old one and takes the new, erasure frees it. A
    /// merged record keeps it (it leads to the survivor).
    ///
    /// Names and birth date are a shared mark: a registration (or a change
    /// of either) marks them, so it learns who registered them last before
    /// (RegisterPerson's `possible_duplicates`).
    fn claims(&self, events: &[PersonEvent]) -> Vec<ClaimChange> {
        use PersonEvent as E;
        let mut held = self.details.as_ref().and_then(Details::idnp).map(str::to_owned);
        let mut similar = self.details.as_ref().and_then(|d| similarity_key(&d.pb));
        let mut out = Vec::new();
        for event in events {
            if let E::Registered { details, .. } | E::DetailsUpdated { details, .. } = event {
                let next = details.open().and_then(similarity_key);
                if next.is_some() && next != similar {
                    out.extend(next.clone().map(|k| ClaimChange::Mark(Claim::new(SIMILAR_MARK, k))));
                }
                similar = next;
            }
            let next = match event {
                E::Registered { details, .. } | E::DetailsUpdated { details, .. } => {
                    details.open().map(|d| d.idnp.clone()).filter(|s| !s.is_empty())
                }
                E::Erased { .. } => None,
                _ => continue,
            };
            if next != held {
                if let Some(old) = held.take() {
                    out.push(ClaimChange::Release(Claim::new(IDNP_CLAIM, old)));
                }
                if let Some(new) = &next {
                    out.push(ClaimChange::Acquire(Claim::new(IDNP_CLAIM, new.clone())));
                }
                held = next;
            }
        }
        out
    }
}

/// The claim kind of IDNPs: one person per national id.
pub const IDNP_CLAIM: &str = "idnp";

/// The mark kind of folded names and birth date (shared: a duplicate flag).
pub const SIMILAR_MARK: &str = "similar";

/// The folded names and birth date people are compared by.
pub fn similarity_key(d: &pb::PersonDetails) -> Option<String> {
    let birth = naive_date(d.birth_date.as_ref()?)?;
    Some(format!("{}|{birth}", crate::validate::fold(&format!("{} {}", d.family_name, d.given_name))))
}

#[cfg(test)]
mod tests {
    use acasa_proto::r#type::v1::Date;
    use chrono::Datelike as _;

    use super::*;

    fn id() -> Uuid {
        Uuid::from_u128(1)
    }

    fn details(y: i32) -> Details {
        let pb = pb::PersonDetails {
            given_name: "Ion".into(),
            family_name: "Rusu".into(),
            birth_date: Some(Date { year: y, month: 5, day: 17 }),
            ..Default::default()
        };
        Details::from_pb(pb).unwrap()
    }

    fn ret(y: i32) -> Return {
        Return::from_pb(pb::ReturnDetails {
            return_date: Some(Date { year: y, month: 1, day: 2 }),
            district: "Cahul".into(),
            locality: "Cahul".into(),
        })
        .unwrap()
    }

    fn register() -> PersonCommand {
        PersonCommand::Register {
            id: id(),
            details: details(1990),
            contacts: pb::Contacts { email: "ion@example.md".into(), phone: String::new() },
            country: "IT".into(),
            categories: [Category::MigrantAbroad].into(),
            interests: [Interest::Placement].into(),
        }
    }

    fn given(commands: &[PersonCommand]) -> Person {
        acasa_domain::testing::given(commands)
    }

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn erase() -> PersonCommand {
        PersonCommand::Erase { at: at(), with: BTreeSet::new() }
    }

    fn programme() -> ConsentKey {
        ConsentKey { purpose: ConsentPurpose::ProgrammeParticipation, partner: None }
    }

    fn with_idnp(idnp: &str) -> Details {
        let mut d = details(1990);
        d.pb.idnp = idnp.into();
        d
    }

    /// The claims a command's events change, given the history.
    fn claims_of(history: &[PersonCommand], command: &PersonCommand) -> Vec<ClaimChange> {
        acasa_domain::testing::when(&given(history), command).claims()
    }

    fn idnp_claim(v: &str) -> Claim {
        Claim::new(IDNP_CLAIM, v)
    }

    #[test]
    fn the_idnp_is_claimed_at_registration_moved_by_a_correction_and_freed_by_erasure() {
        let idnp_claims_of = |history: &[PersonCommand], command: &PersonCommand| -> Vec<ClaimChange> {
            claims_of(history, command).into_iter().filter(|c| !matches!(c, ClaimChange::Mark(_))).collect()
        };
        let PersonCommand::Register { id, contacts, country, categories, interests, .. } = register() else {
            unreachable!()
        };
        let registered = PersonCommand::Register {
            id,
            details: with_idnp("2000000000001"),
            contacts,
            country,
            categories,
            interests,
        };
        assert_eq!(idnp_claims_of(&[], &registered), [ClaimChange::Acquire(idnp_claim("2000000000001"))]);
        assert_eq!(idnp_claims_of(&[], &register()), [], "no IDNP, nothing to claim");
        let update = |idnp: &str| PersonCommand::UpdateDetails { details: with_idnp(idnp), country: "IT".into() };
        assert_eq!(
            idnp_claims_of(std::slice::from_ref(&registered), &update("2000000000002")),
            [ClaimChange::Release(idnp_claim("2000000000001")), ClaimChange::Acquire(idnp_claim("2000000000002"))]
        );
        assert_eq!(idnp_claims_of(std::slice::from_ref(&registered), &update("2000000000001")), [], "unchanged");
        assert_eq!(
            idnp_claims_of(std::slice::from_ref(&registered), &update("")),
            [ClaimChange::Release(idnp_claim("2000000000001"))]
        );
        assert_eq!(
            idnp_claims_of(&[register()], &update("2000000000003")),
            [ClaimChange::Acquire(idnp_claim("2000000000003"))]
        );
        assert_eq!(
            idnp_claims_of(std::slice::from_ref(&registered), &erase()),
            [ClaimChange::Release(idnp_claim("2000000000001"))]
        );
        // A merged record keeps its IDNP: it leads to the survivor.
        assert_eq!(
            idnp_claims_of(std::slice::from_ref(&registered), &PersonCommand::MergeInto(Uuid::from_u128(9))),
            []
        );
    }

    #[test]
    fn a_return_on_the_birth_day_is_allowed_a_day_before_is_not() {
        let on = |y, m, d| {
            Return::from_pb(pb::ReturnDetails {
                return_date: Some(Date { year: y, month: m, day: d }),
                district: "Cahul".into(),
                locality: "Cahul".into(),
            })
            .unwrap()
        };
        // Registered born 1990-05-17.
        let p = given(&[register()]);
        assert!(p.decide(&PersonCommand::RecordReturn(on(1990, 5, 17))).is_ok());
        assert_eq!(p.decide(&PersonCommand::RecordReturn(on(1990, 5, 16))), Err(PersonError::ReturnBeforeBirth));
        // Returned on 1995-01-02: a birth date that day is allowed, a day later is not.
        let returned = given(&[register(), PersonCommand::RecordReturn(ret(1995))]);
        let born = |m, d| {
            let mut details = details(1995);
            details.pb.birth_date = Some(Date { year: 1995, month: m, day: d });
            PersonCommand::UpdateDetails { details: Details::from_pb(details.pb).unwrap(), country: "MD".into() }
        };
        assert!(returned.decide(&born(1, 2)).is_ok());
        assert_eq!(returned.decide(&born(1, 3)), Err(PersonError::BirthAfterReturn));
    }

    #[test]
    fn rejections_name_their_field_and_dates_round_trip() {
        assert_eq!(PersonError::ReturnBeforeBirth.field(), Some("return_details.return_date"));
        assert_eq!(PersonError::BirthAfterReturn.field(), Some("details.birth_date"));
        assert_eq!(PersonError::SamePerson.field(), Some("other_person_id"));
        assert_eq!(PersonError::Erased.field(), None);
        let d = NaiveDate::from_ymd_opt(1988, 3, 9).unwrap();
        assert_eq!(proto_date(d), Date { year: 1988, month: 3, day: 9 });
        assert_eq!(naive_date(&proto_date(d)), Some(d));
    }

    #[test]
    fn names_and_birth_date_are_marked_at_registration_and_when_they_change() {
        let mark = |key: &str| ClaimChange::Mark(Claim::new(SIMILAR_MARK, key));
        assert_eq!(claims_of(&[], &register()), [mark("rusu ion|1990-05-17")]);
        let update = |d: Details| PersonCommand::UpdateDetails { details: d, country: "IT".into() };
        assert_eq!(claims_of(&[register()], &update(details(1990))), [], "unchanged");
        assert_eq!(claims_of(&[register()], &update(details(1991))), [mark("rusu ion|1991-05-17")]);
        let mut renamed = details(1990);
        renamed.pb.given_name = "Ioan".into();
        assert_eq!(claims_of(&[register()], &update(renamed)), [mark("rusu ioan|1990-05-17")]);
        assert_eq!(claims_of(&[register()], &erase()), [], "an erasure marks nothing");
    }

    #[test]
    fn registering_twice_is_refused() {
        let p = given(&[]);
        let events = p.decide(&register()).unwrap();
        assert!(matches!(&events[..], [PersonEvent::Registered { id: i, .. }] if *i == id()));
        assert_eq!(given(&[register()]).decide(&register()), Err(PersonError::AlreadyRegistered));
    }

    #[test]
    fn commands_need_a_registered_person() {
        let p = given(&[]);
        assert_eq!(p.decide(&PersonCommand::AddCategory(Category::Returnee)), Err(PersonError::NotFound));
        assert_eq!(p.decide(&erase()), Err(PersonError::NotFound));
    }

    #[test]
    fn details_and_contacts_are_replaced() {
        let p = given(&[register()]);
        let update = PersonCommand::UpdateDetails { details: details(1991), country: "DE".into() };
        let p2 = given(&[register(), update.clone()]);
        assert_eq!(p2.country, "DE");
        assert_eq!(p2.details.as_ref().map(|d| d.birth_date.year()), Some(1991));
        let contacts = pb::Contacts { email: String::new(), phone: "+37369123456".into() };
        assert_eq!(
            p.decide(&PersonCommand::UpdateContacts(contacts.clone())),
            Ok(vec![PersonEvent::ContactsUpdated(Personal::Open(contacts))])
        );
    }

    #[test]
    fn a_return_makes_a_returnee_living_in_moldova() {
        let p = given(&[register(), PersonCommand::RecordReturn(ret(2024))]);
        assert!(p.returned);
        assert_eq!(p.country, "MD");
        assert_eq!(p.categories, [Category::Returnee].into());
        assert_eq!(p.return_date.map(|d| d.year()), Some(2024));
    }

    #[test]
    fn no_return_before_birth_and_no_birth_after_return() {
        let p = given(&[register()]);
        let err = p.decide(&PersonCommand::RecordReturn(ret(1985))).unwrap_err();
        assert_eq!(err, PersonError::ReturnBeforeBirth);
        assert_eq!(err.kind(), RejectionKind::InvalidArgument);
        assert_eq!(err.field(), Some("return_details.return_date"));
        let p = given(&[register(), PersonCommand::RecordReturn(ret(2024))]);
        let update = PersonCommand::UpdateDetails { details: details(2025), country: "MD".into() };
        assert_eq!(p.decide(&update), Err(PersonError::BirthAfterReturn));
    }

    #[test]
    fn categories_are_a_set_and_one_always_remains() {
        let p = given(&[register()]);
        assert_eq!(p.decide(&PersonCommand::AddCategory(Category::MigrantAbroad)), Ok(vec![]));
        assert_eq!(p.decide(&PersonCommand::RemoveCategory(Category::Returnee)), Ok(vec![]));
        assert_eq!(p.decide(&PersonCommand::RemoveCategory(Category::MigrantAbroad)), Err(PersonError::LastCategory));
        let p = given(&[register(), PersonCommand::AddCategory(Category::DiasporaScientist)]);
        assert_eq!(
            p.decide(&PersonCommand::RemoveCategory(Category::MigrantAbroad)),
            Ok(vec![PersonEvent::CategoryRemoved(Category::MigrantAbroad)])
        );
    }

    #[test]
    fn consent_is_given_withdrawn_and_kept_per_purpose_and_partner() {
        let give = PersonCommand::GiveConsent { key: programme(), channel: Channel::InPerson, at: at() };
        let p = given(&[register(), give.clone()]);
        assert!(p.has_consent(&programme()));
        assert_eq!(p.decide(&give), Ok(vec![]), "giving twice changes nothing");
        let partner = ConsentKey { purpose: ConsentPurpose::PartnerSharing, partner: Some(Uuid::from_u128(9)) };
        assert!(!p.has_consent(&partner));
        let withdraw = PersonCommand::WithdrawConsent { key: partner, channel: Channel::Online, at: at() };
        assert_eq!(p.decide(&withdraw), Err(PersonError::NoConsent));
        let withdraw = PersonCommand::WithdrawConsent { key: programme(), channel: Channel::Online, at: at() };
        let p = given(&[register(), give, withdraw]);
        assert!(!p.has_consent(&programme()));
    }

    #[test]
    fn interests_are_replaced() {
        let p = given(&[register(), PersonCommand::RecordInterests([Interest::ScientificAssignment].into())]);
        assert_eq!(p.interests, [Interest::ScientificAssignment].into());
    }

    #[test]
    fn duplicates_are_dismissed_or_merged_never_with_oneself() {
        let p = given(&[register()]);
        assert_eq!(p.decide(&PersonCommand::DismissDuplicate(id())), Err(PersonError::SamePerson));
        assert_eq!(p.decide(&PersonCommand::MergeInto(id())), Err(PersonError::SamePerson));
        let other = Uuid::from_u128(2);
        assert_eq!(p.decide(&PersonCommand::DismissDuplicate(other)), Ok(vec![PersonEvent::DuplicateDismissed(other)]));
        let merged = given(&[register(), PersonCommand::MergeInto(other)]);
        assert_eq!(merged.status, Status::Merged(other));
        assert_eq!(
            merged.decide(&PersonCommand::AddCategory(Category::Returnee)),
            Err(PersonError::Merged(other)),
            "a merged record is read-only"
        );
        let itself = PersonCommand::Absorb { merged: id(), categories: BTreeSet::new() };
        assert_eq!(p.decide(&itself), Err(PersonError::SamePerson), "absorbing oneself");
        let absorb =
            PersonCommand::Absorb { merged: other, categories: [Category::MigrantAbroad, Category::Returnee].into() };
        assert_eq!(
            p.decide(&absorb),
            Ok(vec![PersonEvent::Absorbed(other), PersonEvent::CategoryAdded(Category::Returnee)])
        );
    }

    #[test]
    fn erasure_forgets_personal_data_keeps_the_rest_and_ends_the_record() {
        let p = given(&[register(), erase()]);
        assert_eq!(p.status, Status::Erased);
        assert!(p.details.is_none() && p.contacts.is_none());
        assert_eq!(p.categories, [Category::MigrantAbroad].into());
        assert_eq!(p.country, "IT");
        assert_eq!(p.decide(&erase()), Err(PersonError::Erased));
        assert_eq!(p.decide(&PersonCommand::RecordInterests(BTreeSet::new())), Err(PersonError::Erased));
        // A merged record can still be erased.
        let merged = given(&[register(), PersonCommand::MergeInto(Uuid::from_u128(2))]);
        assert_eq!(merged.decide(&erase()), Ok(vec![PersonEvent::Erased { at: at() }]));
    }

    #[test]
    fn erasure_of_a_survivor_must_reach_every_record_merged_into_it() {
        let (a, b) = (Uuid::from_u128(2), Uuid::from_u128(3));
        let absorb = |m| PersonCommand::Absorb { merged: m, categories: BTreeSet::new() };
        let survivor = given(&[register(), absorb(a), absorb(b)]);
        assert_eq!(survivor.absorbed, [a, b].into());
        let erase_with = |with: &[Uuid]| PersonCommand::Erase { at: at(), with: with.iter().copied().collect() };
        assert_eq!(survivor.decide(&erase_with(&[a])), Err(PersonError::MergedMeanwhile));
        assert_eq!(survivor.decide(&erase()), Err(PersonError::MergedMeanwhile));
        assert_eq!(survivor.decide(&erase_with(&[a, b])), Ok(vec![PersonEvent::Erased { at: at() }]));
        assert_eq!(PersonError::MergedMeanwhile.kind(), RejectionKind::FailedPrecondition);
    }

    #[test]
    fn shredded_events_evolve_to_a_state_without_personal_data() {
        let mut p = Person::default();
        p.evolve(&PersonEvent::Registered {
            id: id(),
            categories: vec![Category::Returnee],
            country: "MD".into(),
            interests: vec![],
            details: Personal::Shredded,
            contacts: Personal::Shredded,
        });
        p.evolve(&PersonEvent::Erased { at: at() });
        assert!(p.exists() && p.details.is_none());
        assert_eq!(p.categories, [Category::Returnee].into());
    }
}
