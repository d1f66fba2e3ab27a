//! Opening people's sealed registry data for other Acasă services
//! (`acasa.registry.v1.PersonDataService`, person_data.proto).
//!
//! Another service keeps its own projection of the registry's events; their
//! personal fields are sealed with each person's data key, which never leaves
//! the registry. Like a key management service's decrypt, the service hands
//! the sealed values back and the registry opens them with the key as the
//! vault holds it *now* (never a cached one: an erasure by any replica holds
//! at once), with the same associated data as [`crate::codec::PersonCodec`]
//! (its [`open_sealed`]), and answers only what a programme needs of them:
//! `details` for every purpose (for [`Purpose::Campaigns`] the languages
//! only), `contacts` for [`Purpose::Matching`] and [`Purpose::Campaigns`],
//! `return_details` for
//! [`Purpose::Eligibility`] only, and then only the district and locality
//! returned to. An erased person's values open for no one, a consumer's
//! rebuild included.

use std::collections::HashMap;

use acasa_domain::Violations;
use acasa_proto::registry::v1::{self as pb, opened_item::Result as Opened, unavailable::Reason};
use acasa_runtime::{ApiError, Principal, Role};
use acasa_vault::KeyState;
use uuid::Uuid;

use crate::codec::{open_sealed, types};
use crate::grpc::PersonDataService;
use crate::validate;

/// Why a service asks, and so what a `details` item answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Matching people to offers: the programme profile.
    Matching,
    /// Checking eligibility rules: birth date, sex, home district and
    /// locality, and the district and locality returned to.
    Eligibility,
    /// Sending information campaigns: the languages, and the contacts.
    Campaigns,
}

impl Purpose {
    fn name(self) -> &'static str {
        match self {
            Purpose::Matching => "matching",
            Purpose::Eligibility => "eligibility",
            Purpose::Campaigns => "campaigns",
        }
    }

    /// The request's purpose (unset: matching); `None` for an unknown one.
    pub(crate) fn of(purpose: i32) -> Option<Self> {
        match pb::Purpose::try_from(purpose) {
            Ok(pb::Purpose::Unspecified | pb::Purpose::Matching) => Some(Purpose::Matching),
            Ok(pb::Purpose::Eligibility) => Some(Purpose::Eligibility),
            Ok(pb::Purpose::Campaigns) => Some(Purpose::Campaigns),
            Err(_) => None,
        }
    }
}

/// The policy when `ACASA_PERSON_DATA_PURPOSES` is not set.
pub const DEFAULT_POLICY: &str = "placements=matching;grants=matching,eligibility;content=campaigns";

/// Which service (its token's subject) may ask for which purposes
/// (`ACASA_PERSON_DATA_PURPOSES`). Admin tokens may ask for any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy(HashMap<String, Vec<Purpose>>);

impl Policy {
    /// Parses `subject=purpose,purpose;subject=purpose`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut grants = HashMap::new();
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (subject, purposes) =
                entry.split_once('=').ok_or_else(|| format!("`{entry}` is not subject=purpose,…"))?;
            let purposes = purposes
                .split(',')
                .map(|p| match p.trim() {
                    "matching" => Ok(Purpose::Matching),
                    "eligibility" => Ok(Purpose::Eligibility),
                    "campaigns" => Ok(Purpose::Campaigns),
                    other => Err(format!("`{other}` is not a purpose (matching, eligibility, campaigns)")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            grants.insert(subject.trim().to_owned(), purposes);
        }
        Ok(Self(grants))
    }

    /// Refuses a caller the policy does not grant `purpose`.
    pub(crate) fn check(&self, principal: &Principal, purpose: Purpose) -> Result<(), tonic::Status> {
        let granted = principal.has(Role::Admin)
            || self.0.get(&principal.subject).is_some_and(|purposes| purposes.contains(&purpose));
        if granted {
            Ok(())
        } else {
            Err(tonic::Status::permission_denied(format!(
                "the registry's policy does not let `{}` open person data for {}",
                principal.subject,
                purpose.name()
            )))
        }
    }
}

/// A sealed field the registry opens for other services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpenedField {
    /// `details`: a `PersonDetails`, answered as a `ProgrammeProfile`.
    Details,
    /// `contacts`: a `Contacts`, answered as `ContactPoints`.
    Contacts,
    /// `return_details`: a `ReturnDetails`, answered as a `ReturnPlace`
    /// (for [`Purpose::Eligibility`] only).
    ReturnDetails,
}

impl OpenedField {
    /// The field's name in the events (part of the associated data).
    pub(crate) fn name(self) -> &'static str {
        match self {
            OpenedField::Details => "details",
            OpenedField::Contacts => "contacts",
            OpenedField::ReturnDetails => "return_details",
        }
    }

    /// The event types that carry the field.
    pub(crate) fn event_types(self) -> &'static [&'static str] {
        match self {
            OpenedField::Details => &[types::REGISTERED, types::DETAILS_UPDATED],
            OpenedField::Contacts => &[types::REGISTERED, types::CONTACTS_UPDATED],
            OpenedField::ReturnDetails => &[types::RETURN_RECORDED],
        }
    }
}

/// One item of a request, validated.
#[derive(Debug)]
pub(crate) struct SealedItem<'a> {
    /// Whose.
    pub(crate) person: Uuid,
    /// The event's type name (one of the field's [`OpenedField::event_types`]).
    pub(crate) event_type: &'static str,
    /// Which field.
    pub(crate) field: OpenedField,
    /// The sealed value.
    pub(crate) sealed: &'a pb::Sealed,
}

impl PersonDataService {
    /// Opens every item with its person's key, read from the vault once per
    /// distinct person (one query for all).
    pub(crate) async fn open(
        &self,
        req: &pb::OpenPersonDataRequest,
        purpose: Purpose,
    ) -> Result<pb::OpenPersonDataResponse, ApiError> {
        let mut v = Violations::new();
        let Some(items) = validate::sealed_items(&mut v, &req.items, purpose) else { return Err(v.into()) };
        let mut people: Vec<Uuid> = items.iter().map(|i| i.person).collect();
        people.sort_unstable();
        people.dedup();
        let keys = self.keys.current_states(&people).await?;
        Ok(pb::OpenPersonDataResponse {
            items: items.iter().map(|i| opened(i, keys.get(&i.person), purpose)).collect(),
        })
    }
}

/// One item's answer, by what the vault holds for its person.
fn opened(item: &SealedItem<'_>, key: Option<&KeyState>, purpose: Purpose) -> pb::OpenedItem {
    let unavailable = |reason: Reason| Opened::Unavailable(pb::Unavailable { reason: reason as i32 });
    let result = match key {
        Some(KeyState::Live(key)) => {
            let (person, event_type, field) = (item.person, item.event_type, item.field.name());
            let opened = match item.field {
                OpenedField::Details => {
                    open_sealed(key, person, event_type, field, item.sealed).map(|d| match purpose {
                        Purpose::Matching => profile(d),
                        Purpose::Eligibility => eligibility(d),
                        Purpose::Campaigns => campaign(d),
                    })
                }
                OpenedField::Contacts => match purpose {
                    Purpose::Matching | Purpose::Campaigns => {
                        open_sealed(key, person, event_type, field, item.sealed).map(contact_points)
                    }
                    // Refused by validation before; were it not, nothing opens.
                    Purpose::Eligibility => Ok(unavailable(Reason::NotOpenable)),
                },
                OpenedField::ReturnDetails => match purpose {
                    Purpose::Eligibility => open_sealed(key, person, event_type, field, item.sealed).map(return_place),
                    // Refused by validation before; were it not, nothing opens.
                    Purpose::Matching | Purpose::Campaigns => Ok(unavailable(Reason::NotOpenable)),
                },
            };
            opened.unwrap_or_else(|_| unavailable(Reason::NotOpenable))
        }
        Some(KeyState::Erased) => unavailable(Reason::Erased),
        Some(KeyState::Absent) | None => unavailable(Reason::UnknownPerson),
    };
    pb::OpenedItem { person_id: item.person.to_string(), result: Some(result) }
}

/// What a campaign needs of a person's details: the languages, nothing else.
fn campaign(details: pb::PersonDetails) -> Opened {
    Opened::Campaign(pb::CampaignProfile { languages: details.languages })
}

/// What a programme needs of a person's details. Every field is named, so
/// that a field added to `PersonDetails` is a decision here, not a leak.
fn profile(details: pb::PersonDetails) -> Opened {
    let pb::PersonDetails {
        given_name,
        family_name,
        languages,
        education,
        profession,
        scientific_field,
        skills,
        birth_date: _,
        sex: _,
        idnp: _,
        home_district: _,
        home_locality: _,
    } = details;
    Opened::Profile(pb::ProgrammeProfile {
        given_name,
        family_name,
        languages,
        profession,
        scientific_field,
        skills,
        education,
    })
}

/// What a call's eligibility rules need of a person's details, and nothing
/// else (no names: the rules are checked by id).
fn eligibility(details: pb::PersonDetails) -> Opened {
    let pb::PersonDetails {
        birth_date,
        sex,
        home_district,
        home_locality,
        given_name: _,
        family_name: _,
        idnp: _,
        languages: _,
        education: _,
        profession: _,
        scientific_field: _,
        skills: _,
    } = details;
    Opened::Eligibility(pb::EligibilityFacts { birth_date, sex, home_district, home_locality })
}

/// Where a person returned to, for eligibility: the district and locality
/// (every field named, as in [`profile`]; no date).
fn return_place(ret: pb::ReturnDetails) -> Opened {
    let pb::ReturnDetails { district, locality, return_date: _ } = ret;
    Opened::ReturnPlace(pb::ReturnPlace { district, locality })
}

fn contact_points(contacts: pb::Contacts) -> Opened {
    let pb::Contacts { email, phone } = contacts;
    Opened::Contacts(pb::ContactPoints { email, phone })
}

#[cfg(test)]
mod tests {
    use acasa_domain::Codec as _;
    use acasa_proto::r#type::v1::Date;
    use acasa_vault::DataKey;

    use super::*;
    use crate::codec::PersonCodec;
    use crate::domain::{Category, PersonEvent, Personal};

    fn person() -> Uuid {
        Uuid::from_u128(41)
    }

    fn details() -> pb::PersonDetails {
        pb::PersonDetails {
            given_name: "Ana".into(),
            family_name: "Moraru".into(),
            birth_date: Some(Date { year: 1990, month: 5, day: 17 }),
            sex: pb::Sex::Female as i32,
            idnp: "2002001234563".into(),
            home_district: "Ungheni".into(),
            home_locality: "Sculeni".into(),
            languages: vec!["ro".into(), "it".into()],
            education: vec![pb::Education {
                level: pb::EducationLevel::Master as i32,
                field: "Agronomy".into(),
                institution: "Università di Bologna".into(),
                country: "IT".into(),
                year: 2014,
            }],
            profession: "agronomist".into(),
            scientific_field: "plant genetics".into(),
            skills: vec!["irrigation".into()],
        }
    }

    /// The sealed details and contacts of a registration, as the codec stores them.
    fn sealed(key: &DataKey) -> (pb::Sealed, pb::Sealed) {
        let codec = PersonCodec::new(person(), Some(key.clone()));
        let event = PersonEvent::Registered {
            id: person(),
            categories: vec![Category::Returnee],
            country: "MD".into(),
            interests: vec![],
            details: Personal::Open(details()),
            contacts: Personal::Open(pb::Contacts { email: "ana@example.md".into(), phone: "+37369123456".into() }),
        };
        let stored = codec.encode(&event).unwrap();
        let m: pb::PersonRegistered = acasa_proto::Message::decode(stored.data.as_slice()).unwrap();
        (m.details.unwrap(), m.contacts.unwrap())
    }

    /// The sealed details of a return to Căușeni, as the codec stores them.
    fn sealed_return(key: &DataKey) -> pb::Sealed {
        let codec = PersonCodec::new(person(), Some(key.clone()));
        let event = PersonEvent::ReturnRecorded(Personal::Open(pb::ReturnDetails {
            return_date: Some(Date { year: 2025, month: 3, day: 1 }),
            district: "Căușeni".into(),
            locality: "Tocuz".into(),
        }));
        let stored = codec.encode(&event).unwrap();
        assert_eq!(stored.type_name, types::RETURN_RECORDED);
        let m: pb::ReturnRecorded = acasa_proto::Message::decode(stored.data.as_slice()).unwrap();
        m.return_details.unwrap()
    }

    fn item<'a>(field: OpenedField, event_type: &'static str, sealed: &'a pb::Sealed) -> SealedItem<'a> {
        SealedItem { person: person(), event_type, field, sealed }
    }

    #[test]
    fn for_eligibility_details_open_to_birth_date_sex_and_home_only() {
        let key = DataKey::generate();
        let (d, _) = sealed(&key);
        let live = KeyState::Live(key);
        let facts = opened(&item(OpenedField::Details, types::REGISTERED, &d), Some(&live), Purpose::Eligibility);
        let full = details();
        assert_eq!(
            facts.result,
            Some(Opened::Eligibility(pb::EligibilityFacts {
                birth_date: full.birth_date,
                sex: full.sex,
                home_district: full.home_district,
                home_locality: full.home_locality,
            }))
        );
    }

    #[test]
    fn for_eligibility_return_details_open_to_the_district_and_locality_only() {
        let key = DataKey::generate();
        let r = sealed_return(&key);
        let live = KeyState::Live(key);
        let ret = item(OpenedField::ReturnDetails, types::RETURN_RECORDED, &r);
        let place = opened(&ret, Some(&live), Purpose::Eligibility);
        assert_eq!(place.person_id, person().to_string());
        assert_eq!(
            place.result,
            Some(Opened::ReturnPlace(pb::ReturnPlace { district: "Căușeni".into(), locality: "Tocuz".into() })),
            "no date of return"
        );
        // Never for matching (validation refuses it first; nothing opens even so).
        let not_openable = Some(Opened::Unavailable(pb::Unavailable { reason: Reason::NotOpenable as i32 }));
        assert_eq!(opened(&ret, Some(&live), Purpose::Matching).result, not_openable);
        // Under another label, or erased, it does not open either.
        let mislabelled = item(OpenedField::ReturnDetails, types::RETURN_RECORDED, &r);
        let other = SealedItem { person: Uuid::from_u128(42), ..mislabelled };
        assert_eq!(opened(&other, Some(&live), Purpose::Eligibility).result, not_openable);
        let (d, _) = sealed(&DataKey::generate());
        let details_as_return = item(OpenedField::ReturnDetails, types::RETURN_RECORDED, &d);
        assert_eq!(opened(&details_as_return, Some(&live), Purpose::Eligibility).result, not_openable);
        assert_eq!(
            opened(&ret, Some(&KeyState::Erased), Purpose::Eligibility).result,
            Some(Opened::Unavailable(pb::Unavailable { reason: Reason::Erased as i32 }))
        );
    }

    #[test]
    fn the_policy_grants_purposes_by_subject_and_admins_everything() {
        let policy = Policy::parse(DEFAULT_POLICY).unwrap();
        let caller = |subject: &str, role| Principal {
            subject: subject.into(),
            roles: vec![role],
            partner_id: None,
            host_id: None,
        };
        assert!(policy.check(&caller("placements", Role::Service), Purpose::Matching).is_ok());
        let refused = policy.check(&caller("placements", Role::Service), Purpose::Eligibility).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert!(refused.message().contains("`placements`"), "{}", refused.message());
        assert!(policy.check(&caller("grants", Role::Service), Purpose::Eligibility).is_ok());
        assert!(policy.check(&caller("content", Role::Service), Purpose::Matching).is_err());
        assert!(policy.check(&caller("content", Role::Service), Purpose::Campaigns).is_ok());
        assert!(policy.check(&caller("grants", Role::Service), Purpose::Campaigns).is_err());
        assert!(policy.check(&caller("ops", Role::Admin), Purpose::Eligibility).is_ok());
        assert_eq!(Policy::parse(" a = matching ; ;b=eligibility,matching").unwrap().0.len(), 2);
        assert!(Policy::parse("a").is_err());
        assert!(Policy::parse("a=everything").is_err());
        assert_eq!(Purpose::of(0), Some(Purpose::Matching));
        assert_eq!(Purpose::of(2), Some(Purpose::Eligibility));
        assert_eq!(Purpose::of(3), Some(Purpose::Campaigns));
        assert_eq!(Purpose::of(9), None);
    }

    #[test]
    fn for_campaigns_details_open_to_the_languages_only_and_contacts_to_contact_points() {
        let key = DataKey::generate();
        let (d, c) = sealed(&key);
        let r = sealed_return(&key);
        let live = KeyState::Live(key);
        let langs = opened(&item(OpenedField::Details, types::REGISTERED, &d), Some(&live), Purpose::Campaigns);
        assert_eq!(langs.result, Some(Opened::Campaign(pb::CampaignProfile { languages: details().languages })));
        let contacts = opened(&item(OpenedField::Contacts, types::REGISTERED, &c), Some(&live), Purpose::Campaigns);
        assert!(matches!(contacts.result, Some(Opened::Contacts(_))), "{contacts:?}");
        let ret =
            opened(&item(OpenedField::ReturnDetails, types::RETURN_RECORDED, &r), Some(&live), Purpose::Campaigns);
        assert_eq!(ret.result, Some(Opened::Unavailable(pb::Unavailable { reason: Reason::NotOpenable as i32 })));
    }

    #[test]
    fn details_open_to_the_programme_profile_only_and_contacts_to_contact_points() {
        let key = DataKey::generate();
        let (d, c) = sealed(&key);
        let live = KeyState::Live(key);
        let profile = opened(&item(OpenedField::Details, types::REGISTERED, &d), Some(&live), Purpose::Matching);
        assert_eq!(profile.person_id, person().to_string());
        let Some(Opened::Profile(p)) = profile.result else { panic!("{profile:?}") };
        let full = details();
        assert_eq!(
            p,
            pb::ProgrammeProfile {
                given_name: full.given_name,
                family_name: full.family_name,
                languages: full.languages,
                profession: full.profession,
                scientific_field: full.scientific_field,
                skills: full.skills,
                education: full.education,
            }
        );
        let contacts = opened(&item(OpenedField::Contacts, types::REGISTERED, &c), Some(&live), Purpose::Matching);
        assert_eq!(
            contacts.result,
            Some(Opened::Contacts(pb::ContactPoints { email: "ana@example.md".into(), phone: "+37369123456".into() }))
        );
    }

    #[test]
    fn a_value_under_another_label_or_key_does_not_open_and_a_missing_key_says_why() {
        let key = DataKey::generate();
        let (d, c) = sealed(&key);
        let live = KeyState::Live(key);
        let not_openable = Some(Opened::Unavailable(pb::Unavailable { reason: Reason::NotOpenable as i32 }));
        // Another event type, another field, another person, another key, a flipped bit, another scheme.
        assert_eq!(
            opened(&item(OpenedField::Details, types::DETAILS_UPDATED, &d), Some(&live), Purpose::Matching).result,
            not_openable
        );
        assert_eq!(
            opened(&item(OpenedField::Contacts, types::REGISTERED, &d), Some(&live), Purpose::Matching).result,
            not_openable
        );
        let other = SealedItem { person: Uuid::from_u128(42), ..item(OpenedField::Details, types::REGISTERED, &d) };
        assert_eq!(opened(&other, Some(&live), Purpose::Matching).result, not_openable);
        let stranger = KeyState::Live(DataKey::generate());
        assert_eq!(
            opened(&item(OpenedField::Contacts, types::REGISTERED, &c), Some(&stranger), Purpose::Matching).result,
            not_openable
        );
        let mut flipped = c.clone();
        flipped.ciphertext[20] ^= 1;
        assert_eq!(
            opened(&item(OpenedField::Contacts, types::REGISTERED, &flipped), Some(&live), Purpose::Matching).result,
            not_openable
        );
        let scheme = pb::Sealed { scheme: 2, ..c.clone() };
        assert_eq!(
            opened(&item(OpenedField::Contacts, types::REGISTERED, &scheme), Some(&live), Purpose::Matching).result,
            not_openable
        );
        // A key destroyed, or never made.
        let why = |k: Option<&KeyState>| {
            opened(&item(OpenedField::Details, types::REGISTERED, &d), k, Purpose::Matching).result
        };
        assert_eq!(
            why(Some(&KeyState::Erased)),
            Some(Opened::Unavailable(pb::Unavailable { reason: Reason::Erased as i32 }))
        );
        let unknown = Some(Opened::Unavailable(pb::Unavailable { reason: Reason::UnknownPerson as i32 }));
        assert_eq!(why(Some(&KeyState::Absent)), unknown);
        assert_eq!(why(None), unknown);
    }

    #[test]
    fn items_are_validated_each_bad_field_named() {
        let sealed = pb::Sealed { scheme: 1, ciphertext: vec![0; 40] };
        let good = |field: &str, event_type: &str| pb::SealedItem {
            person_id: person().to_string(),
            event_type: event_type.into(),
            field: field.into(),
            sealed: Some(sealed.clone()),
        };
        let fields_for = |items: &[pb::SealedItem], purpose| {
            let mut v = Violations::new();
            let out = validate::sealed_items(&mut v, items, purpose);
            assert_eq!(out.is_some(), v.is_empty());
            v.iter().map(|f| f.field.clone()).collect::<Vec<_>>()
        };
        let fields = |items: &[pb::SealedItem]| fields_for(items, Purpose::Matching);
        let ok = [
            good("details", types::REGISTERED),
            good("details", types::DETAILS_UPDATED),
            good("contacts", types::REGISTERED),
            good("contacts", types::CONTACTS_UPDATED),
        ];
        assert!(fields(&ok).is_empty());
        let mut v = Violations::new();
        let items = validate::sealed_items(&mut v, &ok, Purpose::Matching).unwrap();
        assert_eq!(
            items.iter().map(|i| (i.field, i.event_type)).collect::<Vec<_>>(),
            [
                (OpenedField::Details, types::REGISTERED),
                (OpenedField::Details, types::DETAILS_UPDATED),
                (OpenedField::Contacts, types::REGISTERED),
                (OpenedField::Contacts, types::CONTACTS_UPDATED),
            ]
        );
        // A return's details: for eligibility only, and only as ReturnRecorded carries them.
        let ret = [good("details", types::REGISTERED), good("return_details", types::RETURN_RECORDED)];
        assert_eq!(fields(&ret), ["items[1].field"], "not for matching");
        assert!(fields_for(&ret, Purpose::Eligibility).is_empty());
        let items = validate::sealed_items(&mut v, &ret, Purpose::Eligibility).unwrap();
        assert_eq!(items[1].field, OpenedField::ReturnDetails);
        let mislabelled = [good("return_details", types::REGISTERED), good("details", types::RETURN_RECORDED)];
        assert_eq!(fields_for(&mislabelled, Purpose::Eligibility), ["items[0].event_type", "items[1].event_type"]);
        // Contacts: for matching only; eligibility has no use for them.
        let contacts = [good("contacts", types::REGISTERED), good("contacts", types::CONTACTS_UPDATED)];
        assert!(fields(&contacts).is_empty());
        assert_eq!(fields_for(&contacts, Purpose::Eligibility), ["items[0].field", "items[1].field"]);
        assert_eq!(fields(&[]), ["items"]);
        assert_eq!(fields(&vec![good("details", types::REGISTERED); validate::OPEN_ITEMS_MAX + 1]), ["items"]);
        assert!(fields(&vec![good("details", types::REGISTERED); validate::OPEN_ITEMS_MAX]).is_empty());
        let bad = [
            good("details", types::REGISTERED),
            good("return_details", types::RETURN_RECORDED),
            good("details", types::CONTACTS_UPDATED),
            good("contacts", types::DETAILS_UPDATED),
            good("contacts", "PersonRegistered"),
            pb::SealedItem { person_id: "nope".into(), ..good("details", types::REGISTERED) },
            pb::SealedItem { person_id: String::new(), ..good("details", types::REGISTERED) },
            pb::SealedItem { sealed: None, ..good("contacts", types::REGISTERED) },
            pb::SealedItem { person_id: "x".into(), field: "idnp".into(), event_type: String::new(), sealed: None },
        ];
        assert_eq!(
            fields(&bad),
            [
                "items[1].field",
                "items[2].event_type",
                "items[3].event_type",
                "items[4].event_type",
                "items[5].person_id",
                "items[6].person_id",
                "items[7].sealed",
                "items[8].person_id",
                "items[8].field",
                "items[8].sealed",
            ]
        );
    }
}
