//! The transport glue of `acasa.registry.v1.RegistryService`: who may call
//! what, then the command ([`crate::commands`]) or the query
//! ([`crate::queries`]); and of `acasa.registry.v1.PersonDataService`: who
//! may open sealed person data, then [`crate::person_data`]. Nothing else
//! happens here.

use std::collections::BTreeSet;

use acasa_eventstore::Repository;
use acasa_projection::Positions;
use acasa_proto::registry::v1::{
    self as pb, person_data_service_server::PersonDataServiceServer, registry_service_server::RegistryServiceServer,
};
use acasa_runtime::{Authenticator, Principal, Role, request};
use acasa_vault::{Keys, Vault};
use chrono::Utc;
use sqlx::PgPool;
use tonic::{Request, Response, Status, service::Routes};
use tracing::Instrument as _;

use crate::commands::today;
use crate::{
    domain::{Interest, Person, PersonCommand},
    validate::{self},
};

pub(crate) const WRITERS: &[Role] = &[Role::Admin, Role::Caseworker];
pub(crate) const READERS: &[Role] = &[Role::Admin, Role::Caseworker, Role::Viewer];
pub(crate) const ADMINS: &[Role] = &[Role::Admin];
/// Who may have sealed person data opened: other services' workers, and admins.
pub(crate) const OPENERS: &[Role] = &[Role::Admin, Role::Service];

/// The service's dependencies.
#[derive(Clone)]
pub struct RegistryService {
    pub(crate) repo: Repository<Person>,
    pub(crate) keys: Keys,
    pub(crate) positions: Positions,
    pub(crate) pool: PgPool,
}

impl std::fmt::Debug for RegistryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryService").field("repo", &self.repo).field("keys", &self.keys).finish()
    }
}

impl RegistryService {
    /// The service over its repository, vault and read model.
    pub fn new(repo: Repository<Person>, vault: Vault, positions: Positions, pool: PgPool) -> Self {
        Self { repo, keys: Keys::new(vault), positions, pool }
    }

    /// Uses `keys` for the data keys (e.g. another cache lifetime).
    pub fn with_keys(mut self, keys: Keys) -> Self {
        self.keys = keys;
        self
    }

    /// The service's routes, behind bearer authentication.
    pub fn routes(self, auth: &Authenticator) -> Routes {
        Routes::new(RegistryServiceServer::with_interceptor(self, auth.interceptor()))
    }

    /// The gRPC service name, for health.
    pub const NAME: &'static str = "acasa.registry.v1.RegistryService";
}

#[tonic::async_trait]
impl pb::registry_service_server::RegistryService for RegistryService {
    async fn register_person(
        &self,
        request: Request<pb::RegisterPersonRequest>,
    ) -> Result<Response<pb::RegisterPersonResponse>, Status> {
        let principal = Principal::authorized(&request, WRITERS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.register(principal, request.get_ref(), deadline).await?))
    }

    async fn update_person_details(
        &self,
        request: Request<pb::UpdatePersonDetailsRequest>,
    ) -> Result<Response<pb::UpdatePersonDetailsResponse>, Status> {
        let principal = Principal::authorized(&request, WRITERS)?;
        let position = self.update_details(principal, request.get_ref()).await?;
        Ok(Response::new(pb::UpdatePersonDetailsResponse { position }))
    }

    async fn update_contacts(
        &self,
        request: Request<pb::UpdateContactsRequest>,
    ) -> Result<Response<pb::UpdateContactsResponse>, Status> {
        let position = self
            .person_command(
                &request,
                |r| &r.person_id,
                |req, v| {
                    let contacts = validate::contacts(v, "contacts", req.contacts.as_ref());
                    contacts.map(PersonCommand::UpdateContacts)
                },
            )
            .await?;
        Ok(Response::new(pb::UpdateContactsResponse { position }))
    }

    async fn record_return(
        &self,
        request: Request<pb::RecordReturnRequest>,
    ) -> Result<Response<pb::RecordReturnResponse>, Status> {
        let position = self
            .person_command(
                &request,
                |r| &r.person_id,
                |req, v| {
                    let ret = validate::return_details(v, "return_details", req.return_details.as_ref(), today());
                    ret.map(PersonCommand::RecordReturn)
                },
            )
            .await?;
        Ok(Response::new(pb::RecordReturnResponse { position }))
    }

    async fn add_category(
        &self,
        request: Request<pb::AddCategoryRequest>,
    ) -> Result<Response<pb::AddCategoryResponse>, Status> {
        let position = self
            .person_command(
                &request,
                |r| &r.person_id,
                |req, v| {
                    let c = validate::category(v, "category", req.category);
                    c.map(PersonCommand::AddCategory)
                },
            )
            .await?;
        Ok(Response::new(pb::AddCategoryResponse { position }))
    }

    async fn remove_category(
        &self,
        request: Request<pb::RemoveCategoryRequest>,
    ) -> Result<Response<pb::RemoveCategoryResponse>, Status> {
        let position = self
            .person_command(
                &request,
                |r| &r.person_id,
                |req, v| {
                    let c = validate::category(v, "category", req.category);
                    c.map(PersonCommand::RemoveCategory)
                },
            )
            .await?;
        Ok(Response::new(pb::RemoveCategoryResponse { position }))
    }

    async fn give_consent(
        &self,
        request: Request<pb::GiveConsentRequest>,
    ) -> Result<Response<pb::GiveConsentResponse>, Status> {
        let position = self
            .person_command(
                &request,
                |r| &r.person_id,
                |req, v| {
                    let consent = validate::consent(v, req.purpose, &req.partner_id, req.channel);
                    consent.map(|(key, channel)| PersonCommand::GiveConsent { key, channel, at: Utc::now() })
                },
            )
            .await?;
        Ok(Response::new(pb::GiveConsentResponse { position }))
    }

    async fn withdraw_consent(
        &self,
        request: Request<pb::WithdrawConsentRequest>,
    ) -> Result<Response<pb::WithdrawConsentResponse>, Status> {
        let position = self
            .person_command(
                &request,
                |r| &r.person_id,
                |req, v| {
                    let consent = validate::consent(v, req.purpose, &req.partner_id, req.channel);
                    consent.map(|(key, channel)| PersonCommand::WithdrawConsent { key, channel, at: Utc::now() })
                },
            )
            .await?;
        Ok(Response::new(pb::WithdrawConsentResponse { position }))
    }

    async fn record_interests(
        &self,
        request: Request<pb::RecordInterestsRequest>,
    ) -> Result<Response<pb::RecordInterestsResponse>, Status> {
        let position = self
            .person_command(
                &request,
                |r| &r.person_id,
                |req, v| {
                    let interests: Option<BTreeSet<Interest>> = validate::interests(v, "interests", &req.interests);
                    interests.map(PersonCommand::RecordInterests)
                },
            )
            .await?;
        Ok(Response::new(pb::RecordInterestsResponse { position }))
    }

    async fn dismiss_duplicate(
        &self,
        request: Request<pb::DismissDuplicateRequest>,
    ) -> Result<Response<pb::DismissDuplicateResponse>, Status> {
        let position = self
            .person_command(
                &request,
                |r| &r.person_id,
                |req, v| {
                    let other = validate::id(v, "other_person_id", &req.other_person_id);
                    other.map(PersonCommand::DismissDuplicate)
                },
            )
            .await?;
        Ok(Response::new(pb::DismissDuplicateResponse { position }))
    }

    async fn merge_people(
        &self,
        request: Request<pb::MergePeopleRequest>,
    ) -> Result<Response<pb::MergePeopleResponse>, Status> {
        let principal = Principal::authorized(&request, ADMINS)?;
        let position = self.merge(principal, request.get_ref()).await?;
        Ok(Response::new(pb::MergePeopleResponse { position }))
    }

    async fn erase_person(
        &self,
        request: Request<pb::ErasePersonRequest>,
    ) -> Result<Response<pb::ErasePersonResponse>, Status> {
        let principal = Principal::authorized(&request, ADMINS)?;
        let position = self.erase(principal, request.get_ref()).await?;
        Ok(Response::new(pb::ErasePersonResponse { position }))
    }

    async fn get_person(
        &self,
        request: Request<pb::GetPersonRequest>,
    ) -> Result<Response<pb::GetPersonResponse>, Status> {
        Principal::authorized(&request, READERS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.get(request.get_ref(), deadline).await?))
    }

    async fn search_people(
        &self,
        request: Request<pb::SearchPeopleRequest>,
    ) -> Result<Response<pb::SearchPeopleResponse>, Status> {
        Principal::authorized(&request, READERS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.search(request.get_ref(), deadline).await?))
    }

    async fn list_candidates(
        &self,
        request: Request<pb::ListCandidatesRequest>,
    ) -> Result<Response<pb::ListCandidatesResponse>, Status> {
        Principal::authorized(&request, READERS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.candidates(request.get_ref(), deadline).await?))
    }

    async fn list_duplicate_flags(
        &self,
        request: Request<pb::ListDuplicateFlagsRequest>,
    ) -> Result<Response<pb::ListDuplicateFlagsResponse>, Status> {
        Principal::authorized(&request, READERS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.flags(request.get_ref(), deadline).await?))
    }

    async fn count_people(
        &self,
        request: Request<pb::CountPeopleRequest>,
    ) -> Result<Response<pb::CountPeopleResponse>, Status> {
        Principal::authorized(&request, READERS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.counts(request.get_ref(), deadline).await?))
    }
}

/// `acasa.registry.v1.PersonDataService`: opens people's sealed fields for
/// other Acasă services with the registry's own data keys
/// ([`crate::person_data`]).
#[derive(Clone, Debug)]
pub struct PersonDataService {
    pub(crate) keys: Keys,
    pub(crate) policy: std::sync::Arc<crate::person_data::Policy>,
}

impl PersonDataService {
    /// The service over the registry's data keys (the same [`Keys`] the
    /// registry's codec uses; opening always reads the vault, never their cache).
    pub fn new(keys: Keys) -> Self {
        let policy = crate::person_data::Policy::parse(crate::person_data::DEFAULT_POLICY).unwrap_or_default();
        Self { keys, policy: std::sync::Arc::new(policy) }
    }

    /// The same service granting purposes by `policy`.
    #[must_use]
    pub fn with_policy(mut self, policy: crate::person_data::Policy) -> Self {
        self.policy = std::sync::Arc::new(policy);
        self
    }

    /// `routes` with this service added, behind bearer authentication.
    pub fn add_to(self, routes: Routes, auth: &Authenticator) -> Routes {
        routes.add_service(PersonDataServiceServer::with_interceptor(self, auth.interceptor()))
    }

    /// The gRPC service name, for health.
    pub const NAME: &'static str = "acasa.registry.v1.PersonDataService";
}

#[tonic::async_trait]
impl pb::person_data_service_server::PersonDataService for PersonDataService {
    async fn open_person_data(
        &self,
        request: Request<pb::OpenPersonDataRequest>,
    ) -> Result<Response<pb::OpenPersonDataResponse>, Status> {
        let principal = Principal::authorized(&request, OPENERS)?;
        let Some(purpose) = crate::person_data::Purpose::of(request.get_ref().purpose) else {
            let mut v = acasa_domain::Violations::new();
            v.add("purpose", "must be MATCHING, ELIGIBILITY or CAMPAIGNS (or unset: matching)");
            return Err(acasa_runtime::ApiError::from(v).into());
        };
        self.policy.check(principal, purpose)?;
        // The number of items only: nothing of what is opened is logged.
        let span = tracing::info_span!("registry.open_person_data", items = request.get_ref().items.len());
        Ok(Response::new(self.open(request.get_ref(), purpose).instrument(span).await?))
    }
}
