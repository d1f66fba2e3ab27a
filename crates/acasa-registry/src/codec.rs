//! Stored form of the person's events (`acasa.registry.v1`, events.proto):
//! personal payloads sealed with the person's data key.
//!
//! A [`PersonCodec`] belongs to one person. With the key it seals on encode
//! and opens on decode; without it (the key was destroyed by erasure) sealed
//! payloads decode as [`Personal::Shredded`] and nothing can be encoded.

use acasa_domain::{Codec, DecodeError, EncodeError, EncodedEvent};
use acasa_proto::{Message, registry::v1 as pb};
use acasa_vault::DataKey;
use chrono::{DateTime, Utc};
use prost_types::Timestamp;
use uuid::Uuid;

use crate::domain::{Category, Channel, ConsentKey, ConsentPurpose, Interest, PersonEvent, Personal};

/// Current sealing scheme: AES-256-GCM, random 96-bit nonce (see `acasa-vault`).
const SCHEME: u32 = 1;

/// Type names of the stored events.
pub mod types {
    /// `PersonRegistered`.
    pub const REGISTERED: &str = "acasa.registry.v1.PersonRegistered";
    /// `PersonDetailsUpdated`.
    pub const DETAILS_UPDATED: &str = "acasa.registry.v1.PersonDetailsUpdated";
    /// `ContactsUpdated`.
    pub const CONTACTS_UPDATED: &str = "acasa.registry.v1.ContactsUpdated";
    /// `ReturnRecorded`.
    pub const RETURN_RECORDED: &str = "acasa.registry.v1.ReturnRecorded";
    /// `CategoryAdded`.
    pub const CATEGORY_ADDED: &str = "acasa.registry.v1.CategoryAdded";
    /// `CategoryRemoved`.
    pub const CATEGORY_REMOVED: &str = "acasa.registry.v1.CategoryRemoved";
    /// `ConsentGiven`.
    pub const CONSENT_GIVEN: &str = "acasa.registry.v1.ConsentGiven";
    /// `ConsentWithdrawn`.
    pub const CONSENT_WITHDRAWN: &str = "acasa.registry.v1.ConsentWithdrawn";
    /// `InterestsRecorded`.
    pub const INTERESTS_RECORDED: &str = "acasa.registry.v1.InterestsRecorded";
    /// `DuplicateDismissed`.
    pub const DUPLICATE_DISMISSED: &str = "acasa.registry.v1.DuplicateDismissed";
    /// `PersonMerged`.
    pub const MERGED: &str = "acasa.registry.v1.PersonMerged";
    /// `DuplicateAbsorbed`.
    pub const ABSORBED: &str = "acasa.registry.v1.DuplicateAbsorbed";
    /// `PersonErased`.
    pub const ERASED: &str = "acasa.registry.v1.PersonErased";
}

/// The associated data of a person's sealed field:
/// `"<person id>|<event type name>|<field name>"`.
pub(crate) fn aad(person: Uuid, type_name: &str, field: &str) -> Vec<u8> {
    format!("{person}|{type_name}|{field}").into_bytes()
}

/// Why a sealed field did not open.
#[derive(Debug)]
pub(crate) enum Unopened {
    /// A sealing scheme this version does not know.
    Scheme(u32),
    /// Not with this key under this associated data: tampered with, another
    /// person's key, or another person, event or field than it was sealed for.
    Key,
    /// It opened, but is not the message it should be.
    Payload(String),
}

/// Opens `person`'s sealed field `field` of an event of type `type_name` with
/// their `key`, into the message it seals: what [`PersonCodec`] does for
/// every sealed field it decodes, and the registry for other services
/// ([`crate::person_data`]).
pub(crate) fn open_sealed<M: Message + Default>(
    key: &DataKey,
    person: Uuid,
    type_name: &str,
    field: &str,
    sealed: &pb::Sealed,
) -> Result<M, Unopened> {
    if sealed.scheme != SCHEME {
        return Err(Unopened::Scheme(sealed.scheme));
    }
    let plain = key.open(&aad(person, type_name, field), &sealed.ciphertext).map_err(|_| Unopened::Key)?;
    M::decode(plain.as_slice()).map_err(|e| Unopened::Payload(e.to_string()))
}

/// Encodes and decodes one person's events.
pub struct PersonCodec {
    person: Uuid,
    key: Option<DataKey>,
}

impl std::fmt::Debug for PersonCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonCodec").field("person", &self.person).field("has_key", &self.key.is_some()).finish()
    }
}

impl PersonCodec {
    /// The codec of `person`, with its data key if it still exists.
    pub fn new(person: Uuid, key: Option<DataKey>) -> Self {
        Self { person, key }
    }

    fn seal<M: Message>(
        &self,
        type_name: &str,
        field: &str,
        value: &Personal<M>,
    ) -> Result<Option<pb::Sealed>, EncodeError> {
        let Personal::Open(m) = value else {
            return Err(EncodeError(format!("{type_name}.{field}: a shredded payload cannot be written")));
        };
        let key = self.key.as_ref().ok_or_else(|| EncodeError("the person's data key is gone".into()))?;
        let ciphertext = key
            .seal(&aad(self.person, type_name, field), &m.encode_to_vec())
            .map_err(|e| EncodeError(format!("sealing {type_name}.{field}: {e}")))?;
        Ok(Some(pb::Sealed { scheme: SCHEME, ciphertext }))
    }

    fn open<M: Message + Default>(
        &self,
        e: &EncodedEvent,
        field: &str,
        sealed: Option<&pb::Sealed>,
    ) -> Result<Personal<M>, DecodeError> {
        let sealed = sealed.ok_or_else(|| DecodeError::new(e, format!("{field} is missing")))?;
        if sealed.scheme != SCHEME {
            return Err(DecodeError::new(e, format!("{field}: unknown sealing scheme {}", sealed.scheme)));
        }
        let Some(key) = &self.key else { return Ok(Personal::Shredded) };
        open_sealed(key, self.person, &e.type_name, field, sealed).map(Personal::Open).map_err(|u| match u {
            Unopened::Scheme(s) => DecodeError::new(e, format!("{field}: unknown sealing scheme {s}")),
            Unopened::Key => DecodeError::new(e, format!("{field} does not open with the person's key")),
            Unopened::Payload(err) => DecodeError::new(e, format!("{field}: {err}")),
        })
    }
}

fn encoded(type_name: &str, m: &impl Message) -> EncodedEvent {
    EncodedEvent { type_name: type_name.into(), schema_version: 1, data: m.encode_to_vec() }
}

/// Wire value of a consent's partner.
fn partner_text(key: &ConsentKey) -> String {
    key.partner.map(|p| p.to_string()).unwrap_or_default()
}

pub use acasa_proto::time::timestamp;

fn time_of(e: &EncodedEvent, t: Option<Timestamp>) -> Result<DateTime<Utc>, DecodeError> {
    let t = t.ok_or_else(|| DecodeError::new(e, "time is missing"))?;
    acasa_proto::time::checked_time(&t).ok_or_else(|| DecodeError::new(e, "time out of range"))
}

fn uuid_of(e: &EncodedEvent, field: &str, s: &str) -> Result<Uuid, DecodeError> {
    Uuid::parse_str(s).map_err(|_| DecodeError::new(e, format!("{field} is not a uuid")))
}

fn category_of(e: &EncodedEvent, v: i32) -> Result<Category, DecodeError> {
    Category::try_from(v)
        .ok()
        .filter(|c| *c != Category::Unspecified)
        .ok_or_else(|| DecodeError::new(e, "bad category"))
}

fn interests_of(e: &EncodedEvent, vs: &[i32]) -> Result<Vec<Interest>, DecodeError> {
    vs.iter()
        .map(|v| {
            Interest::try_from(*v)
                .ok()
                .filter(|i| *i != Interest::Unspecified)
                .ok_or_else(|| DecodeError::new(e, "bad interest"))
        })
        .collect()
}

fn consent_of(
    e: &EncodedEvent,
    purpose: i32,
    partner: &str,
    channel: i32,
) -> Result<(ConsentKey, Channel), DecodeError> {
    let purpose = ConsentPurpose::try_from(purpose)
        .ok()
        .filter(|p| *p != ConsentPurpose::Unspecified)
        .ok_or_else(|| DecodeError::new(e, "bad consent purpose"))?;
    let partner = if partner.is_empty() { None } else { Some(uuid_of(e, "partner_id", partner)?) };
    let channel = Channel::try_from(channel).map_err(|_| DecodeError::new(e, "bad consent channel"))?;
    Ok((ConsentKey { purpose, partner }, channel))
}

fn decode_msg<M: Message + Default>(e: &EncodedEvent) -> Result<M, DecodeError> {
    M::decode(e.data.as_slice()).map_err(|err| DecodeError::new(e, err.to_string()))
}

impl Codec<PersonEvent> for PersonCodec {
    fn encode(&self, event: &PersonEvent) -> Result<EncodedEvent, EncodeError> {
        use PersonEvent as E;
        use types::*;
        Ok(match event {
            E::Registered { id, categories, country, interests, details, contacts } => encoded(
                REGISTERED,
                &pb::PersonRegistered {
                    person_id: id.to_string(),
                    categories: categories.iter().map(|c| *c as i32).collect(),
                    country_of_residence: country.clone(),
                    interests: interests.iter().map(|i| *i as i32).collect(),
                    details: self.seal(REGISTERED, "details", details)?,
                    contacts: self.seal(REGISTERED, "contacts", contacts)?,
                },
            ),
            E::DetailsUpdated { country, details } => encoded(
                DETAILS_UPDATED,
                &pb::PersonDetailsUpdated {
                    country_of_residence: country.clone(),
                    details: self.seal(DETAILS_UPDATED, "details", details)?,
                },
            ),
            E::ContactsUpdated(c) => encoded(
                CONTACTS_UPDATED,
                &pb::ContactsUpdated { contacts: self.seal(CONTACTS_UPDATED, "contacts", c)? },
            ),
            E::ReturnRecorded(r) => encoded(
                RETURN_RECORDED,
                &pb::ReturnRecorded { return_details: self.seal(RETURN_RECORDED, "return_details", r)? },
            ),
            E::CategoryAdded(c) => encoded(CATEGORY_ADDED, &pb::CategoryAdded { category: *c as i32 }),
            E::CategoryRemoved(c) => encoded(CATEGORY_REMOVED, &pb::CategoryRemoved { category: *c as i32 }),
            E::ConsentGiven { key, channel, at } => encoded(
                CONSENT_GIVEN,
                &pb::ConsentGiven {
                    purpose: key.purpose as i32,
                    partner_id: partner_text(key),
                    channel: *channel as i32,
                    at: Some(timestamp(*at)),
                },
            ),
            E::ConsentWithdrawn { key, channel, at } => encoded(
                CONSENT_WITHDRAWN,
                &pb::ConsentWithdrawn {
                    purpose: key.purpose as i32,
                    partner_id: partner_text(key),
                    channel: *channel as i32,
                    at: Some(timestamp(*at)),
                },
            ),
            E::InterestsRecorded(i) => {
                encoded(INTERESTS_RECORDED, &pb::InterestsRecorded { interests: i.iter().map(|i| *i as i32).collect() })
            }
            E::DuplicateDismissed(o) => {
                encoded(DUPLICATE_DISMISSED, &pb::DuplicateDismissed { other_person_id: o.to_string() })
            }
            E::Merged(s) => encoded(MERGED, &pb::PersonMerged { survivor_person_id: s.to_string() }),
            E::Absorbed(m) => encoded(ABSORBED, &pb::DuplicateAbsorbed { merged_person_id: m.to_string() }),
            E::Erased { at } => encoded(ERASED, &pb::PersonErased { erased_at: Some(timestamp(*at)) }),
        })
    }

    fn decode(&self, e: &EncodedEvent) -> Result<PersonEvent, DecodeError> {
        use PersonEvent as E;
        use types::*;
        if e.schema_version != 1 {
            return Err(DecodeError::new(e, "unknown schema version"));
        }
        Ok(match e.type_name.as_str() {
            REGISTERED => {
                let m: pb::PersonRegistered = decode_msg(e)?;
                E::Registered {
                    id: uuid_of(e, "person_id", &m.person_id)?,
                    categories: m.categories.iter().map(|c| category_of(e, *c)).collect::<Result<_, _>>()?,
                    country: m.country_of_residence,
                    interests: interests_of(e, &m.interests)?,
                    details: self.open(e, "details", m.details.as_ref())?,
                    contacts: self.open(e, "contacts", m.contacts.as_ref())?,
                }
            }
            DETAILS_UPDATED => {
                let m: pb::PersonDetailsUpdated = decode_msg(e)?;
                E::DetailsUpdated {
                    country: m.country_of_residence,
                    details: self.open(e, "details", m.details.as_ref())?,
                }
            }
            CONTACTS_UPDATED => {
                let m: pb::ContactsUpdated = decode_msg(e)?;
                E::ContactsUpdated(self.open(e, "contacts", m.contacts.as_ref())?)
            }
            RETURN_RECORDED => {
                let m: pb::ReturnRecorded = decode_msg(e)?;
                E::ReturnRecorded(self.open(e, "return_details", m.return_details.as_ref())?)
            }
            CATEGORY_ADDED => E::CategoryAdded(category_of(e, decode_msg::<pb::CategoryAdded>(e)?.category)?),
            CATEGORY_REMOVED => E::CategoryRemoved(category_of(e, decode_msg::<pb::CategoryRemoved>(e)?.category)?),
            CONSENT_GIVEN => {
                let m: pb::ConsentGiven = decode_msg(e)?;
                let (key, channel) = consent_of(e, m.purpose, &m.partner_id, m.channel)?;
                E::ConsentGiven { key, channel, at: time_of(e, m.at)? }
            }
            CONSENT_WITHDRAWN => {
                let m: pb::ConsentWithdrawn = decode_msg(e)?;
                let (key, channel) = consent_of(e, m.purpose, &m.partner_id, m.channel)?;
                E::ConsentWithdrawn { key, channel, at: time_of(e, m.at)? }
            }
            INTERESTS_RECORDED => {
                E::InterestsRecorded(interests_of(e, &decode_msg::<pb::InterestsRecorded>(e)?.interests)?)
            }
            DUPLICATE_DISMISSED => {
                let m: pb::DuplicateDismissed = decode_msg(e)?;
                E::DuplicateDismissed(uuid_of(e, "other_person_id", &m.other_person_id)?)
            }
            MERGED => {
                let m: pb::PersonMerged = decode_msg(e)?;
                E::Merged(uuid_of(e, "survivor_person_id", &m.survivor_person_id)?)
            }
            ABSORBED => {
                let m: pb::DuplicateAbsorbed = decode_msg(e)?;
                E::Absorbed(uuid_of(e, "merged_person_id", &m.merged_person_id)?)
            }
            ERASED => E::Erased { at: time_of(e, decode_msg::<pb::PersonErased>(e)?.erased_at)? },
            _ => return Err(DecodeError::new(e, "unknown event type")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acasa_proto::r#type::v1::Date;

    fn person() -> Uuid {
        Uuid::from_u128(7)
    }

    fn registered() -> PersonEvent {
        PersonEvent::Registered {
            id: person(),
            categories: vec![Category::DiasporaScientist],
            country: "DE".into(),
            interests: vec![Interest::ScientificAssignment],
            details: Personal::Open(pb::PersonDetails {
                given_name: "Maria".into(),
                family_name: "Ciobanu".into(),
                birth_date: Some(Date { year: 1980, month: 2, day: 29 }),
                idnp: "2002001234567".into(),
                ..Default::default()
            }),
            contacts: Personal::Open(pb::Contacts { email: "maria@example.md".into(), phone: String::new() }),
        }
    }

    fn all_events() -> Vec<PersonEvent> {
        let at = DateTime::from_timestamp(1_800_000_000, 5).unwrap();
        let key = ConsentKey { purpose: ConsentPurpose::PartnerSharing, partner: Some(Uuid::from_u128(3)) };
        vec![
            registered(),
            PersonEvent::DetailsUpdated { country: "MD".into(), details: Personal::Open(pb::PersonDetails::default()) },
            PersonEvent::ContactsUpdated(Personal::Open(pb::Contacts::default())),
            PersonEvent::ReturnRecorded(Personal::Open(pb::ReturnDetails::default())),
            PersonEvent::CategoryAdded(Category::Returnee),
            PersonEvent::CategoryRemoved(Category::MigrantAbroad),
            PersonEvent::ConsentGiven { key, channel: Channel::Online, at },
            PersonEvent::ConsentWithdrawn { key, channel: Channel::Paper, at },
            PersonEvent::InterestsRecorded(vec![Interest::Information]),
            PersonEvent::DuplicateDismissed(Uuid::from_u128(4)),
            PersonEvent::Merged(Uuid::from_u128(5)),
            PersonEvent::Absorbed(Uuid::from_u128(6)),
            PersonEvent::Erased { at },
        ]
    }

    #[test]
    fn every_event_round_trips_with_the_key() {
        let codec = PersonCodec::new(person(), Some(DataKey::generate()));
        for e in all_events() {
            assert_eq!(codec.decode(&codec.encode(&e).unwrap()), Ok(e));
        }
    }

    #[test]
    fn personal_data_is_not_in_clear_and_is_shredded_without_the_key() {
        let codec = PersonCodec::new(person(), Some(DataKey::generate()));
        let stored = codec.encode(&registered()).unwrap();
        for needle in ["Maria", "Ciobanu", "2002001234567", "maria@example.md"] {
            assert!(!stored.data.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle} in clear");
        }
        let erased = PersonCodec::new(person(), None);
        match erased.decode(&stored).unwrap() {
            PersonEvent::Registered { details, contacts, categories, country, .. } => {
                assert_eq!(details, Personal::Shredded);
                assert_eq!(contacts, Personal::Shredded);
                assert_eq!(categories, vec![Category::DiasporaScientist]);
                assert_eq!(country, "DE");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(erased.encode(&registered()).is_err(), "nothing is written without the key");
    }

    #[test]
    fn a_payload_does_not_open_under_another_person_or_key() {
        let key = DataKey::generate();
        let stored = PersonCodec::new(person(), Some(key.clone())).encode(&registered()).unwrap();
        assert!(PersonCodec::new(Uuid::from_u128(8), Some(key)).decode(&stored).is_err());
        assert!(PersonCodec::new(person(), Some(DataKey::generate())).decode(&stored).is_err());
    }

    #[test]
    fn the_associated_data_binds_person_event_type_and_field() {
        assert_eq!(
            aad(person(), types::REGISTERED, "details"),
            b"00000000-0000-0000-0000-000000000007|acasa.registry.v1.PersonRegistered|details"
        );
        // What the codec seals, open_sealed opens under the same label only.
        let key = DataKey::generate();
        let stored = PersonCodec::new(person(), Some(key.clone())).encode(&registered()).unwrap();
        let m: pb::PersonRegistered = Message::decode(stored.data.as_slice()).unwrap();
        let contacts = m.contacts.unwrap();
        let opened: pb::Contacts = open_sealed(&key, person(), types::REGISTERED, "contacts", &contacts).unwrap();
        assert_eq!(opened.email, "maria@example.md");
        let wrong = open_sealed::<pb::Contacts>(&key, person(), types::CONTACTS_UPDATED, "contacts", &contacts);
        assert!(matches!(wrong, Err(Unopened::Key)));
        let unknown = pb::Sealed { scheme: 9, ..contacts };
        assert!(matches!(
            open_sealed::<pb::Contacts>(&key, person(), types::REGISTERED, "contacts", &unknown),
            Err(Unopened::Scheme(9))
        ));
    }

    #[test]
    fn unknown_and_garbage_events_are_refused() {
        let codec = PersonCodec::new(person(), None);
        let unknown = EncodedEvent { type_name: "acasa.registry.v1.Nope".into(), schema_version: 1, data: vec![] };
        assert!(codec.decode(&unknown).is_err());
        let garbage = EncodedEvent { type_name: types::CATEGORY_ADDED.into(), schema_version: 1, data: vec![0xff; 3] };
        assert!(codec.decode(&garbage).is_err());
        let zero = EncodedEvent { type_name: types::CATEGORY_ADDED.into(), schema_version: 1, data: vec![] };
        assert!(codec.decode(&zero).is_err(), "an unspecified category is not a category");
    }
}
