//! The transport glue of `acasa.referrals.v1.ReferralService`: who may call
//! what and as whom (staff, a partner, a viewer), then the command
//! ([`crate::commands`]) or the query ([`crate::queries`]).

use std::pin::Pin;

use acasa_eventstore::Repository;
use acasa_projection::Positions;
use acasa_proto::referrals::v1::{self as pb, referral_service_server::ReferralServiceServer};
use acasa_runtime::{Authenticator, Draining, Principal, Role, request};
use acasa_vault::{Keys, Vault};
use async_nats::jetstream;
use futures::{Stream, StreamExt as _};
use sqlx::PgPool;
use tonic::{Request, Response, Status, service::Routes};
use uuid::Uuid;

use crate::{
    domain::{Actor, Partner, PartnerCommand, Referral, ReferralCommand, now, timestamp},
    feed, validate,
};

pub(crate) const ADMINS: &[Role] = &[Role::Admin];
pub(crate) const READERS: &[Role] = &[Role::Admin, Role::Caseworker, Role::Viewer];
pub(crate) const ACTORS: &[Role] = &[Role::Admin, Role::Caseworker, Role::Partner];
pub(crate) const ANYONE: &[Role] = &[Role::Admin, Role::Caseworker, Role::Viewer, Role::Partner];

/// The service's dependencies.
#[derive(Clone)]
pub struct ReferralService {
    pub(crate) partners: Repository<Partner>,
    pub(crate) referrals: Repository<Referral>,
    pub(crate) keys: Keys,
    pub(crate) positions: Positions,
    pub(crate) pool: PgPool,
    pub(crate) js: jetstream::Context,
    pub(crate) feed_streams: feed::FeedStreams,
}

impl std::fmt::Debug for ReferralService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferralService").field("referrals", &self.referrals).finish()
    }
}

/// Who the caller acts as: staff (admin, caseworker) first, else its partner.
pub fn actor(principal: &Principal) -> Result<Actor, Status> {
    if principal.has(Role::Admin) || principal.has(Role::Caseworker) {
        return Ok(Actor::Staff(principal.subject.clone()));
    }
    caller_partner(principal).map(Actor::Partner)
}

/// The partner a partner token speaks for.
pub(crate) fn caller_partner(principal: &Principal) -> Result<Uuid, Status> {
    if !principal.has(Role::Partner) {
        return Err(Status::permission_denied("requires a partner token"));
    }
    principal
        .partner_id
        .as_deref()
        .and_then(|p| Uuid::parse_str(p).ok())
        .ok_or_else(|| Status::permission_denied("the partner token names no valid partner_id"))
}

/// Who reads: staff see everything; a partner token sees its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reader {
    /// Admin or caseworker (profiles included).
    Staff,
    /// Viewer (no profiles).
    Viewer,
    /// A partner organisation.
    Partner(Uuid),
}

pub(crate) fn reader(principal: &Principal) -> Result<Reader, Status> {
    if principal.has(Role::Admin) || principal.has(Role::Caseworker) {
        Ok(Reader::Staff)
    } else if principal.has(Role::Viewer) {
        Ok(Reader::Viewer)
    } else {
        caller_partner(principal).map(Reader::Partner)
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::SubscribeReferralEventsResponse, Status>> + Send>>;

impl ReferralService {
    /// The service over its repositories, reservations, vault, read models
    /// and the feed stream.
    pub fn new(store: acasa_eventstore::EventStore, vault: Vault, positions: Positions, pool: PgPool) -> Self {
        let config = acasa_eventstore::RepositoryConfig::default();
        let js = store.jetstream().clone();
        Self {
            partners: Repository::new(store.clone(), config),
            referrals: Repository::new(store, config),
            keys: Keys::new(vault),
            positions,
            feed_streams: feed::FeedStreams::new(feed::StreamLimits::default(), pool.clone(), Draining::never()),
            pool,
            js,
        }
    }

    /// The principal of a request with one of `roles`; a partner token's
    /// partner must not be suspended (a suspended partner reads, answers and
    /// streams nothing until reactivated; nothing of its referrals is lost
    /// meanwhile). Read from the read model (one indexed row; the suspension
    /// applies once projected, milliseconds later, on every replica alike).
    pub(crate) async fn authorized<'r, T>(
        &self,
        request: &'r Request<T>,
        roles: &[Role],
    ) -> Result<&'r Principal, Status> {
        let principal = Principal::authorized(request, roles)?;
        if principal.has(Role::Admin) || principal.has(Role::Caseworker) || !principal.has(Role::Partner) {
            return Ok(principal);
        }
        let partner = caller_partner(principal)?;
        if feed::FeedStreams::is_suspended(&self.pool, partner).await.map_err(acasa_runtime::ApiError::from)? {
            return Err(Status::permission_denied(
                "the partner is suspended: nothing can be read or answered until the programme reactivates it",
            ));
        }
        Ok(principal)
    }

    /// The same service with its feed streams limited by `limits` and ended
    /// when `draining` starts.
    #[must_use]
    pub fn with_feed_streams(mut self, limits: feed::StreamLimits, draining: Draining) -> Self {
        self.feed_streams = feed::FeedStreams::new(limits, self.pool.clone(), draining);
        self
    }

    /// The service's routes, behind bearer authentication.
    pub fn routes(self, auth: &Authenticator) -> Routes {
        Routes::new(ReferralServiceServer::with_interceptor(self, auth.interceptor()))
    }

    /// The gRPC service name, for health.
    pub const NAME: &'static str = "acasa.referrals.v1.ReferralService";
}

#[tonic::async_trait]
impl pb::referral_service_server::ReferralService for ReferralService {
    async fn register_partner(
        &self,
        request: Request<pb::RegisterPartnerRequest>,
    ) -> Result<Response<pb::RegisterPartnerResponse>, Status> {
        let principal = Principal::authorized(&request, ADMINS)?;
        Ok(Response::new(self.register_partner(principal, request.get_ref()).await?))
    }

    async fn set_partner_services(
        &self,
        request: Request<pb::SetPartnerServicesRequest>,
    ) -> Result<Response<pb::SetPartnerServicesResponse>, Status> {
        let position = self
            .partner_request(
                &request,
                |r| &r.partner_id,
                true,
                |r, v| validate::services(v, "services", &r.services).map(PartnerCommand::SetServices),
            )
            .await?;
        Ok(Response::new(pb::SetPartnerServicesResponse { position }))
    }

    async fn set_partner_response_time(
        &self,
        request: Request<pb::SetPartnerResponseTimeRequest>,
    ) -> Result<Response<pb::SetPartnerResponseTimeResponse>, Status> {
        let position = self
            .partner_request(
                &request,
                |r| &r.partner_id,
                false,
                |r, v| {
                    validate::response_time(v, "response_time", r.response_time.as_ref(), true)
                        .map(PartnerCommand::SetResponseTime)
                },
            )
            .await?;
        Ok(Response::new(pb::SetPartnerResponseTimeResponse { position }))
    }

    async fn suspend_partner(
        &self,
        request: Request<pb::SuspendPartnerRequest>,
    ) -> Result<Response<pb::SuspendPartnerResponse>, Status> {
        let position = self
            .partner_request(
                &request,
                |r| &r.partner_id,
                false,
                |r, v| {
                    validate::note(v, "reason", &r.reason, validate::NOTE_MAX)
                        .map(|reason| PartnerCommand::Suspend { reason })
                },
            )
            .await?;
        Ok(Response::new(pb::SuspendPartnerResponse { position }))
    }

    async fn reactivate_partner(
        &self,
        request: Request<pb::ReactivatePartnerRequest>,
    ) -> Result<Response<pb::ReactivatePartnerResponse>, Status> {
        let position =
            self.partner_request(&request, |r| &r.partner_id, false, |_, _| Some(PartnerCommand::Reactivate)).await?;
        Ok(Response::new(pb::ReactivatePartnerResponse { position }))
    }

    async fn get_partner(
        &self,
        request: Request<pb::GetPartnerRequest>,
    ) -> Result<Response<pb::GetPartnerResponse>, Status> {
        self.authorized(&request, ANYONE).await?;
        let deadline = request::deadline(&request);
        let partner = self.get_partner_row(request.get_ref(), deadline).await?;
        Ok(Response::new(pb::GetPartnerResponse { partner: Some(partner) }))
    }

    async fn list_partners(
        &self,
        request: Request<pb::ListPartnersRequest>,
    ) -> Result<Response<pb::ListPartnersResponse>, Status> {
        self.authorized(&request, ANYONE).await?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.list_partners(request.get_ref(), deadline).await?))
    }

    async fn create_referral(
        &self,
        request: Request<pb::CreateReferralRequest>,
    ) -> Result<Response<pb::CreateReferralResponse>, Status> {
        let principal = self.authorized(&request, ACTORS).await?;
        let deadline = request::deadline(&request);
        let referrer = actor(principal)?;
        Ok(Response::new(self.create_referral(principal, referrer, request.get_ref(), deadline).await?))
    }

    async fn accept_referral(
        &self,
        request: Request<pb::AcceptReferralRequest>,
    ) -> Result<Response<pb::AcceptReferralResponse>, Status> {
        let position = self
            .transition(&request, |r| &r.referral_id, ACTORS, |_, by, _| Some(ReferralCommand::Accept(by, now())))
            .await?;
        Ok(Response::new(pb::AcceptReferralResponse { position }))
    }

    async fn decline_referral(
        &self,
        request: Request<pb::DeclineReferralRequest>,
    ) -> Result<Response<pb::DeclineReferralResponse>, Status> {
        let position = self
            .transition(
                &request,
                |r| &r.referral_id,
                ACTORS,
                |r, by, v| {
                    let reason = validate::decline_reason(v, "reason", r.reason);
                    let note = validate::note(v, "note", &r.note, validate::NOTE_MAX);
                    Some(ReferralCommand::Decline(by, reason?, note?, now()))
                },
            )
            .await?;
        Ok(Response::new(pb::DeclineReferralResponse { position }))
    }

    async fn report_progress(
        &self,
        request: Request<pb::ReportProgressRequest>,
    ) -> Result<Response<pb::ReportProgressResponse>, Status> {
        let position = self
            .transition(
                &request,
                |r| &r.referral_id,
                ACTORS,
                |r, by, v| {
                    let stage = validate::progress_stage(v, "stage", r.stage)?;
                    Some(ReferralCommand::ReportProgress(by, stage, now()))
                },
            )
            .await?;
        Ok(Response::new(pb::ReportProgressResponse { position }))
    }

    async fn record_outcome(
        &self,
        request: Request<pb::RecordOutcomeRequest>,
    ) -> Result<Response<pb::RecordOutcomeResponse>, Status> {
        let position = self
            .transition(
                &request,
                |r| &r.referral_id,
                ACTORS,
                |r, by, v| {
                    let outcome = validate::outcome(v, "outcome", r.outcome.as_ref())?;
                    Some(ReferralCommand::RecordOutcome(by, outcome, now()))
                },
            )
            .await?;
        Ok(Response::new(pb::RecordOutcomeResponse { position }))
    }

    async fn close_referral(
        &self,
        request: Request<pb::CloseReferralRequest>,
    ) -> Result<Response<pb::CloseReferralResponse>, Status> {
        let position = self
            .transition(&request, |r| &r.referral_id, ACTORS, |_, by, _| Some(ReferralCommand::Close(by, now())))
            .await?;
        Ok(Response::new(pb::CloseReferralResponse { position }))
    }

    async fn withdraw_referral(
        &self,
        request: Request<pb::WithdrawReferralRequest>,
    ) -> Result<Response<pb::WithdrawReferralResponse>, Status> {
        let position = self
            .transition(
                &request,
                |r| &r.referral_id,
                ACTORS,
                |r, by, v| {
                    let reason = validate::withdraw_reason(v, "reason", r.reason)?;
                    Some(ReferralCommand::Withdraw(by, reason, now()))
                },
            )
            .await?;
        Ok(Response::new(pb::WithdrawReferralResponse { position }))
    }

    async fn re_refer_referral(
        &self,
        request: Request<pb::ReReferReferralRequest>,
    ) -> Result<Response<pb::ReReferReferralResponse>, Status> {
        let principal = self.authorized(&request, ACTORS).await?;
        let deadline = request::deadline(&request);
        let by = actor(principal)?;
        Ok(Response::new(self.re_refer(principal, by, request.get_ref(), deadline).await?))
    }

    async fn get_referral(
        &self,
        request: Request<pb::GetReferralRequest>,
    ) -> Result<Response<pb::GetReferralResponse>, Status> {
        let principal = self.authorized(&request, ANYONE).await?;
        let reader = reader(principal)?;
        let deadline = request::deadline(&request);
        let referral = self.get_referral(reader, request.get_ref(), deadline).await?;
        Ok(Response::new(pb::GetReferralResponse { referral: Some(referral) }))
    }

    async fn list_inbox(
        &self,
        request: Request<pb::ListInboxRequest>,
    ) -> Result<Response<pb::ListInboxResponse>, Status> {
        let principal = self.authorized(&request, ANYONE).await?;
        let reader = reader(principal)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.list_inbox(reader, request.get_ref(), deadline).await?))
    }

    async fn get_pipeline(
        &self,
        request: Request<pb::GetPipelineRequest>,
    ) -> Result<Response<pb::GetPipelineResponse>, Status> {
        Principal::authorized(&request, READERS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.pipeline(request.get_ref(), deadline).await?))
    }

    async fn get_conversion(
        &self,
        request: Request<pb::GetConversionRequest>,
    ) -> Result<Response<pb::GetConversionResponse>, Status> {
        Principal::authorized(&request, READERS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.conversion(request.get_ref(), deadline).await?))
    }

    async fn list_sla_breaches(
        &self,
        request: Request<pb::ListSlaBreachesRequest>,
    ) -> Result<Response<pb::ListSlaBreachesResponse>, Status> {
        let principal = self.authorized(&request, ANYONE).await?;
        let reader = reader(principal)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.list_breaches(reader, request.get_ref(), deadline).await?))
    }

    type SubscribeReferralEventsStream = EventStream;

    async fn subscribe_referral_events(
        &self,
        request: Request<pb::SubscribeReferralEventsRequest>,
    ) -> Result<Response<Self::SubscribeReferralEventsStream>, Status> {
        let principal = Principal::authorized(&request, &[Role::Partner])?;
        let partner = caller_partner(principal)?;
        let from = request.get_ref().from_position;
        let suspended =
            feed::FeedStreams::is_suspended(&self.pool, partner).await.map_err(acasa_runtime::ApiError::from)?;
        if suspended {
            return Err(suspended_status());
        }
        // Held by the stream: released when it ends, however it ends.
        let slot = self
            .feed_streams
            .acquire(partner, request.remote_addr())
            .map_err(|refused| Status::resource_exhausted(refused.to_string()))?;
        let items = self
            .feed_streams
            .open(&self.js, slot, from)
            .await
            .map_err(|e| acasa_runtime::ApiError::Unavailable { what: "the partner feed", detail: e.to_string() })?;
        let stream = items.map(|item| match item {
            Ok(i) => Ok(pb::SubscribeReferralEventsResponse {
                position: i.position,
                id: i.id,
                r#type: i.kind,
                time: i.time.map(timestamp),
                event: Some(i.event),
            }),
            Err(feed::FeedEnd::Suspended) => Err(suspended_status()),
            Err(feed::FeedEnd::Draining { resume_after }) => Err(resumable(
                format!("the server is shutting down; resume with from_position {resume_after}"),
                resume_after,
            )),
            Err(feed::FeedEnd::Interrupted { reason, resume_after }) => {
                tracing::warn!(%reason, resume_after, "a partner feed stream was interrupted");
                Err(resumable(
                    format!("partner feed interrupted; resume with from_position {resume_after}"),
                    resume_after,
                ))
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// The metadata (trailer) of an ended feed stream naming the `from_position`
/// to resume with: the position of the last event it sent.
pub const RESUME_FROM: &str = "acasa-resume-from-position";

fn suspended_status() -> Status {
    Status::failed_precondition("the partner is suspended: its feed is closed until it is reactivated")
}

/// `UNAVAILABLE` (retry) with where to resume in `message` and [`RESUME_FROM`].
fn resumable(message: String, resume_after: u64) -> Status {
    let mut status = Status::unavailable(message);
    if let Ok(v) = resume_after.to_string().parse() {
        status.metadata_mut().insert(RESUME_FROM, v);
    }
    status
}
