//! [`PersonData`] over the registry's gRPC `PersonDataService`, as a
//! `service` caller: the token is read from `ACASA_SERVICE_TOKEN_FILE` on
//! every call (an identity provider's sidecar may refresh it), or, without
//! one, signed here for five minutes with the HS256 key.

use std::{path::PathBuf, sync::Mutex, time::Duration};

use acasa_proto::registry::v1::{self as reg, person_data_service_client::PersonDataServiceClient};
use acasa_runtime::{Config, Role, TokenIssuer};
use futures::future::BoxFuture;
use tonic::transport::{Channel, Endpoint};

use crate::people::{Opened, PersonData, ProgrammeProfile, SealedField};

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
}

impl std::fmt::Debug for RegistryPersonData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryPersonData").finish_non_exhaustive()
    }
}

impl RegistryPersonData {
    /// The registry at `ACASA_REGISTRY_URL`, connected lazily (a registry
    /// that is down makes the projection retry its batch, never skip it).
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let endpoint = Endpoint::from_shared(config.registry_url.clone())?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30));
        let tokens = match &config.service_token_file {
            Some(path) => Tokens::File(path.clone()),
            None => Tokens::Signed(TokenIssuer::from_config(config)?, Mutex::new(None)),
        };
        Ok(Self { channel: endpoint.connect_lazy(), tokens })
    }

    /// The registry on `channel`, with tokens signed by `issuer` (tests).
    pub fn with_issuer(channel: Channel, issuer: TokenIssuer) -> Self {
        Self { channel, tokens: Tokens::Signed(issuer, Mutex::new(None)) }
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
                    .issue(crate::SERVICE, &[Role::Service], None, TOKEN_TTL)
                    .map_err(|e| format!("signing a service token: {e}"))?;
                *last = Some((token.clone(), std::time::Instant::now()));
                Ok(token)
            }
        }
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
        // Not asked for (matching answers profiles), or not openable: nothing kept.
        Some(reg::opened_item::Result::Unavailable(_) | reg::opened_item::Result::Eligibility(_)) | None => {
            Opened::Gone
        }
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
                tonic::Request::new(reg::OpenPersonDataRequest { items, purpose: reg::Purpose::Matching as i32 });
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
