//! The transport glue of `acasa.placements.v1.PlacementService`: who may
//! call what and as whom (programme staff, finance, a host institution),
//! then the command ([`crate::commands`]) or the query ([`crate::queries`]).

use acasa_eventstore::{Repository, RepositoryConfig};
use acasa_projection::Positions;
use acasa_proto::placements::v1::{self as pb, placement_service_server::PlacementServiceServer};
use acasa_runtime::{Authenticator, Principal, Role, request};
use sqlx::PgPool;
use tonic::{Request, Response, Status, service::Routes};
use uuid::Uuid;

use crate::domain::{Placement, PlacementCommand, host::Host, offer::Offer};

/// Programme staff: manage hosts, offers and placements.
pub(crate) const STAFF: &[Role] = &[Role::Admin, Role::Caseworker];
/// Record payments.
pub(crate) const FINANCE: &[Role] = &[Role::Admin, Role::Finance];
/// Read the programme's views.
pub(crate) const READERS: &[Role] = &[Role::Admin, Role::Caseworker, Role::Viewer, Role::Finance];
/// Read, including a host institution (its own only).
pub(crate) const ANYONE: &[Role] = &[Role::Admin, Role::Caseworker, Role::Viewer, Role::Finance, Role::Host];

/// Hosts kept loaded per process.
pub const HOSTS_CACHED: usize = 500;
/// Offers kept loaded per process.
pub const OFFERS_CACHED: usize = 1_000;
/// Placements kept loaded per process.
pub const PLACEMENTS_CACHED: usize = 2_000;

/// The programme's targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Targets {
    /// Graduate placements.
    pub graduates: u32,
    /// Scientific assignments.
    pub scientists: u32,
}

impl Default for Targets {
    fn default() -> Self {
        Self { graduates: 43, scientists: 31 }
    }
}

/// The service's dependencies.
#[derive(Clone)]
pub struct PlacementService {
    pub(crate) hosts: Repository<Host>,
    pub(crate) offers: Repository<Offer>,
    pub(crate) placements: Repository<Placement>,
    pub(crate) positions: Positions,
    pub(crate) pool: PgPool,
    pub(crate) targets: Targets,
}

impl std::fmt::Debug for PlacementService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlacementService").field("placements", &self.placements).finish()
    }
}

/// Who reads, and so what they see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reader {
    /// Admin, caseworker: everything, the person's contacts included.
    Staff,
    /// Finance: everything, the person's name for the payment, no contacts.
    Finance,
    /// Viewer: no personal data.
    Viewer,
    /// A host institution: its own placements, the person's name and
    /// contacts while the placement runs.
    Host(Uuid),
}

/// The host a host token speaks for.
pub(crate) fn caller_host(principal: &Principal) -> Result<Uuid, Status> {
    if !principal.has(Role::Host) {
        return Err(Status::permission_denied("requires a host institution's token"));
    }
    principal
        .host_id
        .as_deref()
        .and_then(|h| Uuid::parse_str(h).ok())
        .ok_or_else(|| Status::permission_denied("the host token names no valid host_id"))
}

pub(crate) fn reader(principal: &Principal) -> Result<Reader, Status> {
    if principal.has(Role::Admin) || principal.has(Role::Caseworker) {
        Ok(Reader::Staff)
    } else if principal.has(Role::Finance) {
        Ok(Reader::Finance)
    } else if principal.has(Role::Viewer) {
        Ok(Reader::Viewer)
    } else {
        caller_host(principal).map(Reader::Host)
    }
}

impl PlacementService {
    /// The service over its repositories and read models.
    pub fn new(store: acasa_eventstore::EventStore, positions: Positions, pool: PgPool) -> Self {
        // A programme runs tens to thousands of placements: a cache of a few
        // thousand holds the working set without holding the service's
        // memory (each cached placement keeps its months, claims and the
        // request ids it has seen).
        let config = |cache_capacity| RepositoryConfig { cache_capacity, ..RepositoryConfig::default() };
        Self {
            hosts: Repository::new(store.clone(), config(HOSTS_CACHED)),
            offers: Repository::new(store.clone(), config(OFFERS_CACHED)),
            placements: Repository::new(store, config(PLACEMENTS_CACHED)),
            positions,
            pool,
            targets: Targets::default(),
        }
    }

    /// The same service measuring progress against `targets`.
    #[must_use]
    pub fn with_targets(mut self, targets: Targets) -> Self {
        self.targets = targets;
        self
    }

    /// The service's routes, behind bearer authentication.
    pub fn routes(self, auth: &Authenticator) -> Routes {
        Routes::new(PlacementServiceServer::with_interceptor(self, auth.interceptor()))
    }

    /// The gRPC service name, for health.
    pub const NAME: &'static str = "acasa.placements.v1.PlacementService";
}

macro_rules! position {
    ($response:ident, $position:expr) => {
        Ok(Response::new(pb::$response { position: $position }))
    };
}

#[tonic::async_trait]
impl pb::placement_service_server::PlacementService for PlacementService {
    async fn register_host(
        &self,
        request: Request<pb::RegisterHostRequest>,
    ) -> Result<Response<pb::RegisterHostResponse>, Status> {
        let principal = Principal::authorized(&request, STAFF)?;
        Ok(Response::new(self.register_host(principal, request.get_ref()).await?))
    }

    async fn update_host(
        &self,
        request: Request<pb::UpdateHostRequest>,
    ) -> Result<Response<pb::UpdateHostResponse>, Status> {
        position!(UpdateHostResponse, self.update_host(&request).await?)
    }

    async fn suspend_host(
        &self,
        request: Request<pb::SuspendHostRequest>,
    ) -> Result<Response<pb::SuspendHostResponse>, Status> {
        position!(SuspendHostResponse, self.suspend_host(&request).await?)
    }

    async fn reactivate_host(
        &self,
        request: Request<pb::ReactivateHostRequest>,
    ) -> Result<Response<pb::ReactivateHostResponse>, Status> {
        position!(ReactivateHostResponse, self.reactivate_host(&request).await?)
    }

    async fn get_host(&self, request: Request<pb::GetHostRequest>) -> Result<Response<pb::GetHostResponse>, Status> {
        let reader = reader(Principal::authorized(&request, ANYONE)?)?;
        let deadline = request::deadline(&request);
        let host = self.get_host_row(reader, request.get_ref(), deadline).await?;
        Ok(Response::new(pb::GetHostResponse { host: Some(host) }))
    }

    async fn list_hosts(
        &self,
        request: Request<pb::ListHostsRequest>,
    ) -> Result<Response<pb::ListHostsResponse>, Status> {
        Principal::authorized(&request, READERS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.list_hosts(request.get_ref(), deadline).await?))
    }

    async fn publish_offer(
        &self,
        request: Request<pb::PublishOfferRequest>,
    ) -> Result<Response<pb::PublishOfferResponse>, Status> {
        let principal = Principal::authorized(&request, STAFF)?;
        Ok(Response::new(self.publish_offer(principal, request.get_ref()).await?))
    }

    async fn close_offer(
        &self,
        request: Request<pb::CloseOfferRequest>,
    ) -> Result<Response<pb::CloseOfferResponse>, Status> {
        position!(CloseOfferResponse, self.close_offer(&request).await?)
    }

    async fn reopen_offer(
        &self,
        request: Request<pb::ReopenOfferRequest>,
    ) -> Result<Response<pb::ReopenOfferResponse>, Status> {
        position!(ReopenOfferResponse, self.reopen_offer(&request).await?)
    }

    async fn get_offer(&self, request: Request<pb::GetOfferRequest>) -> Result<Response<pb::GetOfferResponse>, Status> {
        let reader = reader(Principal::authorized(&request, ANYONE)?)?;
        let deadline = request::deadline(&request);
        let offer = self.get_offer_row(reader, request.get_ref(), deadline).await?;
        Ok(Response::new(pb::GetOfferResponse { offer: Some(offer) }))
    }

    async fn list_offers(
        &self,
        request: Request<pb::ListOffersRequest>,
    ) -> Result<Response<pb::ListOffersResponse>, Status> {
        let reader = reader(Principal::authorized(&request, ANYONE)?)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.list_offers(reader, request.get_ref(), deadline).await?))
    }

    async fn list_candidates(
        &self,
        request: Request<pb::ListCandidatesRequest>,
    ) -> Result<Response<pb::ListCandidatesResponse>, Status> {
        Principal::authorized(&request, STAFF)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.list_candidates(request.get_ref(), deadline).await?))
    }

    async fn propose_placement(
        &self,
        request: Request<pb::ProposePlacementRequest>,
    ) -> Result<Response<pb::ProposePlacementResponse>, Status> {
        let principal = Principal::authorized(&request, STAFF)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.propose(principal, request.get_ref(), deadline).await?))
    }

    async fn accept_placement(
        &self,
        request: Request<pb::AcceptPlacementRequest>,
    ) -> Result<Response<pb::AcceptPlacementResponse>, Status> {
        let position = self
            .transition(&request, |r| &r.placement_id, STAFF, |_, _| Some(PlacementCommand::Accept(crate::now())))
            .await?;
        position!(AcceptPlacementResponse, position)
    }

    async fn decline_placement(
        &self,
        request: Request<pb::DeclinePlacementRequest>,
    ) -> Result<Response<pb::DeclinePlacementResponse>, Status> {
        let position = self
            .transition(
                &request,
                |r| &r.placement_id,
                STAFF,
                |r, v| {
                    crate::validate::note(v, "reason", &r.reason)
                        .map(|reason| PlacementCommand::Decline(reason, crate::now()))
                },
            )
            .await?;
        position!(DeclinePlacementResponse, position)
    }

    async fn withdraw_placement(
        &self,
        request: Request<pb::WithdrawPlacementRequest>,
    ) -> Result<Response<pb::WithdrawPlacementResponse>, Status> {
        let position = self
            .transition(
                &request,
                |r| &r.placement_id,
                STAFF,
                |r, v| {
                    crate::validate::note(v, "reason", &r.reason)
                        .map(|reason| PlacementCommand::Withdraw(reason, crate::now()))
                },
            )
            .await?;
        position!(WithdrawPlacementResponse, position)
    }

    async fn sign_agreement(
        &self,
        request: Request<pb::SignAgreementRequest>,
    ) -> Result<Response<pb::SignAgreementResponse>, Status> {
        let position = self.transition(&request, |r| &r.placement_id, STAFF, crate::commands::sign).await?;
        position!(SignAgreementResponse, position)
    }

    async fn start_placement(
        &self,
        request: Request<pb::StartPlacementRequest>,
    ) -> Result<Response<pb::StartPlacementResponse>, Status> {
        let position = self
            .transition(
                &request,
                |r| &r.placement_id,
                STAFF,
                |r, v| crate::validate::date(v, "started_on", r.started_on.as_ref()).map(PlacementCommand::Start),
            )
            .await?;
        position!(StartPlacementResponse, position)
    }

    async fn confirm_presence(
        &self,
        request: Request<pb::ConfirmPresenceRequest>,
    ) -> Result<Response<pb::ConfirmPresenceResponse>, Status> {
        position!(ConfirmPresenceResponse, self.confirm_presence(&request).await?)
    }

    async fn record_allowance_payment(
        &self,
        request: Request<pb::RecordAllowancePaymentRequest>,
    ) -> Result<Response<pb::RecordAllowancePaymentResponse>, Status> {
        let position = self.transition(&request, |r| &r.placement_id, FINANCE, crate::commands::pay).await?;
        position!(RecordAllowancePaymentResponse, position)
    }

    async fn submit_travel_claim(
        &self,
        request: Request<pb::SubmitTravelClaimRequest>,
    ) -> Result<Response<pb::SubmitTravelClaimResponse>, Status> {
        Ok(Response::new(self.submit_travel(&request).await?))
    }

    async fn approve_travel_claim(
        &self,
        request: Request<pb::ApproveTravelClaimRequest>,
    ) -> Result<Response<pb::ApproveTravelClaimResponse>, Status> {
        let position = self.transition(&request, |r| &r.placement_id, STAFF, crate::commands::approve_travel).await?;
        position!(ApproveTravelClaimResponse, position)
    }

    async fn reject_travel_claim(
        &self,
        request: Request<pb::RejectTravelClaimRequest>,
    ) -> Result<Response<pb::RejectTravelClaimResponse>, Status> {
        let position = self.transition(&request, |r| &r.placement_id, STAFF, crate::commands::reject_travel).await?;
        position!(RejectTravelClaimResponse, position)
    }

    async fn pay_travel_claim(
        &self,
        request: Request<pb::PayTravelClaimRequest>,
    ) -> Result<Response<pb::PayTravelClaimResponse>, Status> {
        let position = self.transition(&request, |r| &r.placement_id, FINANCE, crate::commands::pay_travel).await?;
        position!(PayTravelClaimResponse, position)
    }

    async fn complete_placement(
        &self,
        request: Request<pb::CompletePlacementRequest>,
    ) -> Result<Response<pb::CompletePlacementResponse>, Status> {
        let position = self
            .transition(
                &request,
                |r| &r.placement_id,
                STAFF,
                |r, v| {
                    crate::validate::date(v, "completed_on", r.completed_on.as_ref()).map(PlacementCommand::Complete)
                },
            )
            .await?;
        position!(CompletePlacementResponse, position)
    }

    async fn end_placement_early(
        &self,
        request: Request<pb::EndPlacementEarlyRequest>,
    ) -> Result<Response<pb::EndPlacementEarlyResponse>, Status> {
        let position = self
            .transition(
                &request,
                |r| &r.placement_id,
                STAFF,
                |r, v| {
                    let on = crate::validate::date(v, "ended_on", r.ended_on.as_ref());
                    let reason = crate::validate::note(v, "reason", &r.reason);
                    Some(PlacementCommand::EndEarly(on?, reason?))
                },
            )
            .await?;
        position!(EndPlacementEarlyResponse, position)
    }

    async fn record_outcome(
        &self,
        request: Request<pb::RecordOutcomeRequest>,
    ) -> Result<Response<pb::RecordOutcomeResponse>, Status> {
        let position = self
            .transition(
                &request,
                |r| &r.placement_id,
                STAFF,
                |r, v| {
                    let outcome = crate::validate::outcome(v, r.stage, r.kind, &r.note);
                    let on = crate::validate::date(v, "recorded_on", r.recorded_on.as_ref());
                    let (stage, outcome) = outcome?;
                    Some(PlacementCommand::RecordOutcome(stage, outcome, on?))
                },
            )
            .await?;
        position!(RecordOutcomeResponse, position)
    }

    async fn get_placement(
        &self,
        request: Request<pb::GetPlacementRequest>,
    ) -> Result<Response<pb::GetPlacementResponse>, Status> {
        let reader = reader(Principal::authorized(&request, ANYONE)?)?;
        let deadline = request::deadline(&request);
        let placement = self.get_placement_row(reader, request.get_ref(), deadline).await?;
        Ok(Response::new(pb::GetPlacementResponse { placement: Some(placement) }))
    }

    async fn list_placements(
        &self,
        request: Request<pb::ListPlacementsRequest>,
    ) -> Result<Response<pb::ListPlacementsResponse>, Status> {
        let reader = reader(Principal::authorized(&request, ANYONE)?)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.list_placements(reader, request.get_ref(), deadline).await?))
    }

    async fn list_payments_due(
        &self,
        request: Request<pb::ListPaymentsDueRequest>,
    ) -> Result<Response<pb::ListPaymentsDueResponse>, Status> {
        Principal::authorized(&request, READERS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.list_payments_due(request.get_ref(), deadline).await?))
    }

    async fn get_budget(
        &self,
        request: Request<pb::GetBudgetRequest>,
    ) -> Result<Response<pb::GetBudgetResponse>, Status> {
        Principal::authorized(&request, READERS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.budget(request.get_ref(), deadline).await?))
    }

    async fn get_outcomes(
        &self,
        request: Request<pb::GetOutcomesRequest>,
    ) -> Result<Response<pb::GetOutcomesResponse>, Status> {
        Principal::authorized(&request, READERS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.outcomes(request.get_ref(), deadline).await?))
    }

    async fn get_progress(
        &self,
        request: Request<pb::GetProgressRequest>,
    ) -> Result<Response<pb::GetProgressResponse>, Status> {
        Principal::authorized(&request, READERS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.progress(request.get_ref(), deadline).await?))
    }
}
