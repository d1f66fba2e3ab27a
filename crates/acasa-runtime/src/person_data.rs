//! The client side of the registry's `PersonDataService`: how a service
//! that keeps its own projection of the registry's events has the sealed
//! fields of those events opened (the registry holds the keys; see
//! `proto/acasa/registry/v1/person_data.proto`). [`PersonData`] is what a
//! projection needs; [`RegistryPersonData`] asks the registry over gRPC, as
//! a `service` caller whose token subject is the service's name (the
//! registry grants purposes by subject): the token is read from
//! `ACASA_SERVICE_TOKEN_FILE` on every call (an identity provider's sidecar
//! may refresh it), or, without one, signed here for five minutes with the
//! HS256 key.

use std::{path::PathBuf, sync::Mutex, time::Duration};

use acasa_proto::registry::v1::{self as reg, person_data_service_client::PersonDataServiceClient};
use chrono::NaiveDate;
use futures::future::BoxFuture;
use tonic::transport::{Channel, Endpoint};
use uuid::Uuid;

use crate::{Config, Role, TokenIssuer};

/// The registry's log as other services project it: its person subjects and
/// the type names of the events they read (`proto/acasa/registry/v1/events.proto`).
pub mod registry_events {
    /// Subjects of a person's commits: the prefix, then the person id.
    pub const SUBJECT_PREFIX: &str = "acasa.registry.person.";
    /// `PersonRegistered`.
    pub const REGISTERED: &str = "acasa.registry.v1.PersonRegistered";
    /// `PersonDetailsUpdated`.
    pub const DETAILS_UPDATED: &str = "acasa.registry.v1.PersonDetailsUpdated";
    /// `ContactsUpdated`.
    pub const CONTACTS_UPDATED: &str = "acasa.registry.v1.ContactsUpdated";
    /// `ReturnRecorded` (its sealed `return_details` open for the purpose
    /// eligibility only).
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
    /// `PersonMerged`.
    pub const MERGED: &str = "acasa.registry.v1.PersonMerged";
    /// `PersonErased`.
    pub const ERASED: &str = "acasa.registry.v1.PersonErased";
}

/// Most sealed fields sent to the registry in one call.
pub const OPEN_CHUNK: usize = 500;

/// A sealed field of a registry event, to open.
#[derive(Clone, Debug)]
pub struct SealedField {
    /// The person.
    pub person: Uuid,
    /// The event's type name.
    pub event_type: String,
    /// `details` or `contacts`; `return_details` (of `ReturnRecorded`) with
    /// [`Purpose::Eligibility`] only.
    pub field: &'static str,
    /// The sealed payload.
    pub sealed: reg::Sealed,
}

/// What the registry opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opened {
    /// The programme profile of a `details` field (folded where matched on).
    Profile(ProgrammeProfile),
    /// The contact points of a `contacts` field.
    Contacts {
        /// E-mail.
        email: String,
        /// Phone.
        phone: String,
    },
    /// The eligibility facts of a `details` field (asked for eligibility).
    Eligibility(EligibilityFacts),
    /// Where a person returned to: a `return_details` field (asked for
    /// eligibility).
    ReturnPlace(ReturnPlace),
    /// The languages of a `details` field (asked for campaigns).
    Languages(Vec<String>),
    /// Cannot be opened: the person was erased (or the payload does not
    /// open). Nothing is kept.
    Gone,
}

/// The part of a person's details a placement needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgrammeProfile {
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Languages (BCP 47).
    pub languages: Vec<String>,
    /// Profession.
    pub profession: String,
    /// Scientific field.
    pub scientific_field: String,
    /// Skills.
    pub skills: Vec<String>,
    /// Fields of their education.
    pub education_fields: Vec<String>,
}

/// The registry's opening of sealed fields (its gRPC `PersonDataService`).
pub trait PersonData: Send + Sync + std::fmt::Debug {
    /// Opens `fields`, answering one [`Opened`] per field in order. An error
    /// means the registry could not be asked (the batch is retried).
    fn open(&self, fields: Vec<SealedField>) -> BoxFuture<'_, Result<Vec<Opened>, String>>;
}

/// What a call's eligibility rules need of a person's details.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EligibilityFacts {
    /// Birth date, if recorded and a date.
    pub birth_date: Option<NaiveDate>,
    /// Sex (the registry API's enum number; 0 not recorded).
    pub sex: i32,
    /// Home district (raion).
    pub home_district: String,
    /// Home locality.
    pub home_locality: String,
}

/// Where a person returned to (of a `ReturnRecorded`'s `return_details`,
/// opened for eligibility only): the district and locality, no date.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReturnPlace {
    /// District (raion) returned to; empty if the return names none.
    pub district: String,
    /// Locality returned to; empty if the return names none.
    pub locality: String,
}

/// Why a service asks (the registry answers a `details` field accordingly,
/// and opens `return_details` only for eligibility).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The programme profile, for matching.
    Matching,
    /// The eligibility facts, and the places returned to.
    Eligibility,
    /// The languages and the contacts, for information campaigns.
    Campaigns,
}

/// Opens `fields` through `data`, at most [`OPEN_CHUNK`] per call, in order.
pub async fn open_all(data: &dyn PersonData, mut fields: Vec<SealedField>) -> Result<Vec<Opened>, String> {
    let mut opened = Vec::with_capacity(fields.len());
    while !fields.is_empty() {
        let tail = fields.split_off(fields.len().min(OPEN_CHUNK));
        opened.extend(data.open(fields).await?);
        fields = tail;
    }
    Ok(opened)
}

/// How long a self-signed token lives, and when a new one is signed.
const TOKEN_TTL: Duration = Duration::from_secs(300);
const TOKEN_RENEW: Duration = Duration::from_secs(240);

/// Where the bearer token comes from.
enum Tokens {
    /// Read from this file on every call.
    File(PathBuf),
    /// Signed here; the last one and when it was signed.
    Signed(TokenIssuer, Mutex<Option<(String, std::time::Instant)>>),
}

/// The registry's `PersonDataService`.
pub struct RegistryPersonData {
    channel: Channel,
    tokens: Tokens,
    subject: &'static str,
    purpose: Purpose,
}

impl std::fmt::Debug for RegistryPersonData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryPersonData").finish_non_exhaustive()
    }
}

impl RegistryPersonData {
    /// The registry at `ACASA_REGISTRY_URL`, connected lazily (a registry
    /// that is down makes the projection retry its batch, never skip it).
    pub fn from_config(config: &Config, subject: &'static str, purpose: Purpose) -> anyhow::Result<Self> {
        let endpoint = Endpoint::from_shared(config.registry_url.clone())?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30));
        let tokens = match &config.service_token_file {
            Some(path) => Tokens::File(path.clone()),
            None => Tokens::Signed(TokenIssuer::from_config(config)?, Mutex::new(None)),
        };
        Ok(Self { channel: endpoint.connect_lazy(), tokens, subject, purpose })
    }

    /// The registry on `channel`, with tokens of `subject` signed by `issuer` (tests).
    pub fn with_issuer(channel: Channel, issuer: TokenIssuer, subject: &'static str, purpose: Purpose) -> Self {
        Self { channel, tokens: Tokens::Signed(issuer, Mutex::new(None)), subject, purpose }
    }

    fn token(&self) -> Result<String, String> {
        match &self.tokens {
            Tokens::File(path) => std::fs::read_to_string(path)
                .map(|t| t.trim().to_owned())
                .map_err(|e| format!("reading ACASA_SERVICE_TOKEN_FILE {}: {e}", path.display())),
            Tokens::Signed(issuer, last) => {
                let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((token, at)) = last.as_ref()
                    && at.elapsed() < TOKEN_RENEW
                {
                    return Ok(token.clone());
                }
                let token = issuer
                    .issue(self.subject, &[Role::Service], None, TOKEN_TTL)
                    .map_err(|e| format!("signing a service token: {e}"))?;
                *last = Some((token.clone(), std::time::Instant::now()));
                Ok(token)
            }
        }
    }
}

fn purpose_number(p: Purpose) -> i32 {
    match p {
        Purpose::Matching => reg::Purpose::Matching as i32,
        Purpose::Eligibility => reg::Purpose::Eligibility as i32,
        Purpose::Campaigns => reg::Purpose::Campaigns as i32,
    }
}

fn opened(item: reg::OpenedItem) -> Opened {
    match item.result {
        Some(reg::opened_item::Result::Profile(p)) => Opened::Profile(ProgrammeProfile {
            given_name: p.given_name,
            family_name: p.family_name,
            languages: p.languages,
            profession: p.profession,
            scientific_field: p.scientific_field,
            skills: p.skills,
            education_fields: p.education.into_iter().map(|e| e.field).filter(|f| !f.is_empty()).collect(),
        }),
        Some(reg::opened_item::Result::Contacts(c)) => Opened::Contacts { email: c.email, phone: c.phone },
        Some(reg::opened_item::Result::Eligibility(e)) => Opened::Eligibility(EligibilityFacts {
            birth_date: e.birth_date.as_ref().and_then(acasa_proto::time::naive_date),
            sex: e.sex,
            home_district: e.home_district,
            home_locality: e.home_locality,
        }),
        // Not openable (erased, unknown, tampered): nothing is kept.
        Some(reg::opened_item::Result::ReturnPlace(p)) => {
            Opened::ReturnPlace(ReturnPlace { district: p.district, locality: p.locality })
        }
        Some(reg::opened_item::Result::Campaign(c)) => Opened::Languages(c.languages),
        Some(reg::opened_item::Result::Unavailable(_)) | None => Opened::Gone,
    }
}

impl PersonData for RegistryPersonData {
    fn open(&self, fields: Vec<SealedField>) -> BoxFuture<'_, Result<Vec<Opened>, String>> {
        Box::pin(async move {
            let asked = fields.len();
            let items = fields
                .into_iter()
                .map(|f| reg::SealedItem {
                    person_id: f.person.to_string(),
                    event_type: f.event_type,
                    field: f.field.to_owned(),
                    sealed: Some(f.sealed),
                })
                .collect();
            let mut request =
                tonic::Request::new(reg::OpenPersonDataRequest { items, purpose: purpose_number(self.purpose) });
            let bearer = format!("Bearer {}", self.token()?);
            request.metadata_mut().insert(
                "authorization",
                bearer.parse().map_err(|_| "the service token is not a valid header value".to_owned())?,
            );
            let answer = PersonDataServiceClient::new(self.channel.clone())
                .open_person_data(request)
                .await
                .map_err(|s| format!("the registry's PersonDataService: {:?}: {}", s.code(), s.message()))?
                .into_inner();
            if answer.items.len() != asked {
                return Err(format!("the registry answered {} of {asked} fields", answer.items.len()));
            }
            Ok(answer.items.into_iter().map(opened).collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use acasa_proto::r#type::v1::Date;

    use super::*;

    /// Answers each field with its position, counting the calls.
    #[derive(Debug, Default)]
    struct Counting(AtomicUsize);

    impl PersonData for Counting {
        fn open(&self, fields: Vec<SealedField>) -> BoxFuture<'_, Result<Vec<Opened>, String>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                Ok(fields
                    .iter()
                    .map(|f| Opened::Contacts { email: f.event_type.clone(), phone: String::new() })
                    .collect())
            })
        }
    }

    fn field(n: usize) -> SealedField {
        SealedField {
            person: Uuid::nil(),
            event_type: n.to_string(),
            field: "contacts",
            sealed: reg::Sealed { scheme: 1, ciphertext: Vec::new() },
        }
    }

    #[tokio::test]
    async fn fields_are_opened_in_chunks_in_order() {
        let data = Counting::default();
        let answers = open_all(&data, (0..OPEN_CHUNK * 2 + 1).map(field).collect()).await.unwrap();
        assert_eq!(data.0.load(Ordering::SeqCst), 3);
        assert_eq!(answers.len(), OPEN_CHUNK * 2 + 1);
        assert_eq!(answers[OPEN_CHUNK], Opened::Contacts { email: OPEN_CHUNK.to_string(), phone: String::new() });
        assert!(open_all(&data, Vec::new()).await.unwrap().is_empty());
        assert_eq!(data.0.load(Ordering::SeqCst), 3, "nothing to open: no call");
    }

    #[test]
    fn answers_become_what_a_projection_keeps() {
        let item = |result| reg::OpenedItem { person_id: String::new(), result: Some(result) };
        let facts = reg::EligibilityFacts {
            birth_date: Some(Date { year: 1996, month: 2, day: 29 }),
            sex: 1,
            home_district: "Cahul".into(),
            home_locality: "Giurgiulești".into(),
        };
        assert_eq!(
            opened(item(reg::opened_item::Result::Eligibility(facts.clone()))),
            Opened::Eligibility(EligibilityFacts {
                birth_date: NaiveDate::from_ymd_opt(1996, 2, 29),
                sex: 1,
                home_district: "Cahul".into(),
                home_locality: "Giurgiulești".into(),
            })
        );
        let bad = reg::EligibilityFacts { birth_date: Some(Date { year: 1997, month: 2, day: 29 }), ..facts };
        let Opened::Eligibility(e) = opened(item(reg::opened_item::Result::Eligibility(bad))) else { panic!() };
        assert_eq!(e.birth_date, None, "not a date: none");
        let gone = reg::opened_item::Result::Unavailable(reg::Unavailable { reason: 1 });
        assert_eq!(opened(item(gone)), Opened::Gone);
        assert_eq!(opened(reg::OpenedItem::default()), Opened::Gone);
        let place = reg::ReturnPlace { district: "Căușeni".into(), locality: "Tocuz".into() };
        assert_eq!(
            opened(item(reg::opened_item::Result::ReturnPlace(place))),
            Opened::ReturnPlace(ReturnPlace { district: "Căușeni".into(), locality: "Tocuz".into() })
        );
        assert_eq!(
            opened(item(reg::opened_item::Result::ReturnPlace(reg::ReturnPlace::default()))),
            Opened::ReturnPlace(ReturnPlace::default()),
            "a return naming no place: an empty place, not gone"
        );
        assert_eq!(purpose_number(Purpose::Eligibility), reg::Purpose::Eligibility as i32);
        assert_eq!(purpose_number(Purpose::Matching), reg::Purpose::Matching as i32);
    }
}
