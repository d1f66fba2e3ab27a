//! The transport glue of `acasa.grants.v1.GrantService`: who may call what
//! and as whom (programme staff, the committee, evaluators, finance,
//! viewers), then the command ([`crate::commands`]) or the query
//! ([`crate::queries`]).

use acasa_domain::pair::Pair;
use acasa_eventstore::{Coalescer, Repository, RepositoryConfig};
use acasa_projection::Positions;
use acasa_proto::grants::v1::{self as pb, grant_service_server::GrantServiceServer};
use acasa_runtime::{Authenticator, Principal, Role, request};
use acasa_vault::{Keys, Vault};
use sqlx::PgPool;
use tonic::{Request, Response, Status, service::Routes};

use crate::domain::{
    application::Application,
    call::Call,
    official::Official,
    support::Support,
    training::{Course, Session},
};

/// Programme staff: calls' reading, courses, sessions, officials,
/// applications, procurement, monitoring, support; evaluators score with
/// their own token.
pub(crate) const STAFF: &[Role] = &[Role::Admin, Role::Caseworker];
/// The committee's decisions and the calls' budgets: recorded by an admin.
pub(crate) const COMMITTEE: &[Role] = &[Role::Admin];
/// Supplier payments.
pub(crate) const FINANCE: &[Role] = &[Role::Admin, Role::Finance];
/// Applications and what they hold (a pseudonymous person id, amounts):
/// staff and finance.
pub(crate) const CASE_READERS: &[Role] = &[Role::Admin, Role::Caseworker, Role::Finance];
/// Officials (their names and contacts for staff only).
pub(crate) const STAFF_READERS: &[Role] = &[Role::Admin, Role::Caseworker, Role::Viewer];
/// The aggregate views, calls, courses and sessions (personal data only for staff).
pub(crate) const READERS: &[Role] = &[Role::Admin, Role::Caseworker, Role::Viewer, Role::Finance];

/// Calls and applications kept loaded per process.
pub const APPLICATIONS_CACHED: usize = 2_000;
/// Approvals of one call stored in one batch at most (four messages each).
pub const APPROVALS_GROUPED: usize = 64;
/// Sessions (with their trainees' applications) kept loaded per process.
pub const SESSIONS_CACHED: usize = 1_000;
/// Officials (with their sessions) kept loaded per process.
pub const OFFICIALS_CACHED: usize = 500;
/// Courses kept loaded per process.
pub const COURSES_CACHED: usize = 200;
/// People's support records kept loaded per process.
pub const SUPPORT_CACHED: usize = 500;

/// The programme's targets that `GetProgress` measures against (0: none set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Targets {
    /// Entrepreneurs trained.
    pub trained: u32,
    /// Grants awarded.
    pub grants: u32,
    /// Officials and SME-support staff trained.
    pub officials: u32,
}

impl Default for Targets {
    fn default() -> Self {
        Self { trained: 540, grants: 101, officials: 0 }
    }
}

/// Who reads, and so what they see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reader {
    /// Admin, caseworker: everything, officials' and trainees' names included.
    Staff,
    /// Finance: applications, amounts and budgets; no names.
    Finance,
    /// Viewer: the aggregate views, no personal data.
    Viewer,
}

pub(crate) fn reader(principal: &acasa_runtime::Principal) -> Reader {
    if principal.has(Role::Admin) || principal.has(Role::Caseworker) {
        Reader::Staff
    } else if principal.has(Role::Finance) {
        Reader::Finance
    } else {
        Reader::Viewer
    }
}

/// The service's dependencies.
///
/// The call and its applications share one repository
/// (`Pair<Call, Application>`): a committee's approval is the call's
/// `Commit` and the application's `Approve` in one atomic batch. A session
/// and its trainees likewise (`Pair<Session, Application>`,
/// `Pair<Session, Official>`): cancelling a session unenrols them in the
/// same batch.
#[derive(Clone)]
pub struct GrantService {
    pub(crate) calls: Repository<Pair<Call, Application>>,
    /// Approvals, grouped per call over `calls`.
    pub(crate) approvals: Coalescer<Pair<Call, Application>>,
    pub(crate) courses: Repository<Course>,
    pub(crate) sessions: Repository<Pair<Session, Application>>,
    pub(crate) officials: Repository<Pair<Session, Official>>,
    pub(crate) support: Repository<Support>,
    pub(crate) keys: Keys,
    pub(crate) positions: Positions,
    pub(crate) pool: PgPool,
    pub(crate) targets: Targets,
}

impl std::fmt::Debug for GrantService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantService").field("calls", &self.calls).finish()
    }
}

impl GrantService {
    /// The service over its repositories, its officials' vault and read models.
    pub fn new(store: acasa_eventstore::EventStore, vault: Vault, positions: Positions, pool: PgPool) -> Self {
        let config = |cache_capacity| RepositoryConfig { cache_capacity, ..RepositoryConfig::default() };
        let calls = Repository::new(store.clone(), config(APPLICATIONS_CACHED));
        Self {
            approvals: Coalescer::new(calls.clone(), APPROVALS_GROUPED),
            calls,
            courses: Repository::new(store.clone(), config(COURSES_CACHED)),
            sessions: Repository::new(store.clone(), config(SESSIONS_CACHED)),
            officials: Repository::new(store.clone(), config(OFFICIALS_CACHED)),
            support: Repository::new(store, config(SUPPORT_CACHED)),
            keys: Keys::new(vault),
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
        Routes::new(GrantServiceServer::with_interceptor(self, auth.interceptor()))
    }

    /// The gRPC service name, for health.
    pub const NAME: &'static str = "acasa.grants.v1.GrantService";
}

macro_rules! position {
    ($response:ident, $position:expr) => {
        Ok(Response::new(pb::$response { position: $position }))
    };
}

#[tonic::async_trait]
impl pb::grant_service_server::GrantService for GrantService {
    async fn open_call(&self, request: Request<pb::OpenCallRequest>) -> Result<Response<pb::OpenCallResponse>, Status> {
        Ok(Response::new(self.open_call(&request).await?))
    }

    async fn close_call(
        &self,
        request: Request<pb::CloseCallRequest>,
    ) -> Result<Response<pb::CloseCallResponse>, Status> {
        position!(CloseCallResponse, self.close_call(&request).await?)
    }

    async fn change_call_budget(
        &self,
        request: Request<pb::ChangeCallBudgetRequest>,
    ) -> Result<Response<pb::ChangeCallBudgetResponse>, Status> {
        position!(ChangeCallBudgetResponse, self.change_call_budget(&request).await?)
    }

    async fn get_call(&self, request: Request<pb::GetCallRequest>) -> Result<Response<pb::GetCallResponse>, Status> {
        let reader = reader(Principal::authorized(&request, READERS)?);
        let deadline = request::deadline(&request);
        Ok(Response::new(self.query_get_call(reader, request.get_ref(), deadline).await?))
    }

    async fn list_calls(
        &self,
        request: Request<pb::ListCallsRequest>,
    ) -> Result<Response<pb::ListCallsResponse>, Status> {
        let reader = reader(Principal::authorized(&request, READERS)?);
        let deadline = request::deadline(&request);
        Ok(Response::new(self.query_list_calls(reader, request.get_ref(), deadline).await?))
    }

    async fn create_course(
        &self,
        request: Request<pb::CreateCourseRequest>,
    ) -> Result<Response<pb::CreateCourseResponse>, Status> {
        Ok(Response::new(self.create_course(&request).await?))
    }

    async fn update_course(
        &self,
        request: Request<pb::UpdateCourseRequest>,
    ) -> Result<Response<pb::UpdateCourseResponse>, Status> {
        position!(UpdateCourseResponse, self.update_course(&request).await?)
    }

    async fn retire_course(
        &self,
        request: Request<pb::RetireCourseRequest>,
    ) -> Result<Response<pb::RetireCourseResponse>, Status> {
        position!(RetireCourseResponse, self.retire_course(&request).await?)
    }

    async fn get_course(
        &self,
        request: Request<pb::GetCourseRequest>,
    ) -> Result<Response<pb::GetCourseResponse>, Status> {
        let reader = reader(Principal::authorized(&request, READERS)?);
        let deadline = request::deadline(&request);
        Ok(Response::new(self.query_get_course(reader, request.get_ref(), deadline).await?))
    }

    async fn list_courses(
        &self,
        request: Request<pb::ListCoursesRequest>,
    ) -> Result<Response<pb::ListCoursesResponse>, Status> {
        let reader = reader(Principal::authorized(&request, READERS)?);
        let deadline = request::deadline(&request);
        Ok(Response::new(self.query_list_courses(reader, request.get_ref(), deadline).await?))
    }

    async fn schedule_session(
        &self,
        request: Request<pb::ScheduleSessionRequest>,
    ) -> Result<Response<pb::ScheduleSessionResponse>, Status> {
        Ok(Response::new(self.schedule_session(&request).await?))
    }

    async fn reschedule_session(
        &self,
        request: Request<pb::RescheduleSessionRequest>,
    ) -> Result<Response<pb::RescheduleSessionResponse>, Status> {
        position!(RescheduleSessionResponse, self.reschedule_session(&request).await?)
    }

    async fn change_session_capacity(
        &self,
        request: Request<pb::ChangeSessionCapacityRequest>,
    ) -> Result<Response<pb::ChangeSessionCapacityResponse>, Status> {
        position!(ChangeSessionCapacityResponse, self.change_session_capacity(&request).await?)
    }

    async fn cancel_session(
        &self,
        request: Request<pb::CancelSessionRequest>,
    ) -> Result<Response<pb::CancelSessionResponse>, Status> {
        position!(CancelSessionResponse, self.cancel_session(&request, request::deadline(&request)).await?)
    }

    async fn get_session(
        &self,
        request: Request<pb::GetSessionRequest>,
    ) -> Result<Response<pb::GetSessionResponse>, Status> {
        let reader = reader(Principal::authorized(&request, READERS)?);
        let deadline = request::deadline(&request);
        Ok(Response::new(self.query_get_session(reader, request.get_ref(), deadline).await?))
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let reader = reader(Principal::authorized(&request, READERS)?);
        let deadline = request::deadline(&request);
        Ok(Response::new(self.query_list_sessions(reader, request.get_ref(), deadline).await?))
    }

    async fn register_official(
        &self,
        request: Request<pb::RegisterOfficialRequest>,
    ) -> Result<Response<pb::RegisterOfficialResponse>, Status> {
        Ok(Response::new(self.register_official(&request).await?))
    }

    async fn update_official(
        &self,
        request: Request<pb::UpdateOfficialRequest>,
    ) -> Result<Response<pb::UpdateOfficialResponse>, Status> {
        position!(UpdateOfficialResponse, self.update_official(&request).await?)
    }

    async fn erase_official(
        &self,
        request: Request<pb::EraseOfficialRequest>,
    ) -> Result<Response<pb::EraseOfficialResponse>, Status> {
        position!(EraseOfficialResponse, self.erase_official(&request).await?)
    }

    async fn get_official(
        &self,
        request: Request<pb::GetOfficialRequest>,
    ) -> Result<Response<pb::GetOfficialResponse>, Status> {
        let reader = reader(Principal::authorized(&request, STAFF_READERS)?);
        let deadline = request::deadline(&request);
        Ok(Response::new(self.query_get_official(reader, request.get_ref(), deadline).await?))
    }

    async fn list_officials(
        &self,
        request: Request<pb::ListOfficialsRequest>,
    ) -> Result<Response<pb::ListOfficialsResponse>, Status> {
        let reader = reader(Principal::authorized(&request, STAFF_READERS)?);
        let deadline = request::deadline(&request);
        Ok(Response::new(self.query_list_officials(reader, request.get_ref(), deadline).await?))
    }

    async fn enrol_in_session(
        &self,
        request: Request<pb::EnrolInSessionRequest>,
    ) -> Result<Response<pb::EnrolInSessionResponse>, Status> {
        Ok(Response::new(self.enrol_in_session(&request).await?))
    }

    async fn unenrol_from_session(
        &self,
        request: Request<pb::UnenrolFromSessionRequest>,
    ) -> Result<Response<pb::UnenrolFromSessionResponse>, Status> {
        position!(UnenrolFromSessionResponse, self.unenrol_from_session(&request).await?)
    }

    async fn record_attendance(
        &self,
        request: Request<pb::RecordAttendanceRequest>,
    ) -> Result<Response<pb::RecordAttendanceResponse>, Status> {
        position!(RecordAttendanceResponse, self.record_attendance(&request).await?)
    }

    async fn complete_session(
        &self,
        request: Request<pb::CompleteSessionRequest>,
    ) -> Result<Response<pb::CompleteSessionResponse>, Status> {
        Ok(Response::new(self.complete_session(&request, request::deadline(&request)).await?))
    }

    async fn apply(&self, request: Request<pb::ApplyRequest>) -> Result<Response<pb::ApplyResponse>, Status> {
        Ok(Response::new(self.apply(&request, request::deadline(&request)).await?))
    }

    async fn reassess_eligibility(
        &self,
        request: Request<pb::ReassessEligibilityRequest>,
    ) -> Result<Response<pb::ReassessEligibilityResponse>, Status> {
        Ok(Response::new(self.reassess_eligibility(&request, request::deadline(&request)).await?))
    }

    async fn withdraw_application(
        &self,
        request: Request<pb::WithdrawApplicationRequest>,
    ) -> Result<Response<pb::WithdrawApplicationResponse>, Status> {
        position!(WithdrawApplicationResponse, self.withdraw_application(&request).await?)
    }

    async fn submit_business_plan(
        &self,
        request: Request<pb::SubmitBusinessPlanRequest>,
    ) -> Result<Response<pb::SubmitBusinessPlanResponse>, Status> {
        position!(SubmitBusinessPlanResponse, self.submit_business_plan(&request).await?)
    }

    async fn declare_conflict_of_interest(
        &self,
        request: Request<pb::DeclareConflictOfInterestRequest>,
    ) -> Result<Response<pb::DeclareConflictOfInterestResponse>, Status> {
        position!(DeclareConflictOfInterestResponse, self.declare_conflict_of_interest(&request).await?)
    }

    async fn score_application(
        &self,
        request: Request<pb::ScoreApplicationRequest>,
    ) -> Result<Response<pb::ScoreApplicationResponse>, Status> {
        Ok(Response::new(self.score_application(&request).await?))
    }

    async fn approve_grant(
        &self,
        request: Request<pb::ApproveGrantRequest>,
    ) -> Result<Response<pb::ApproveGrantResponse>, Status> {
        Ok(Response::new(self.approve_grant(&request).await?))
    }

    async fn reject_application(
        &self,
        request: Request<pb::RejectApplicationRequest>,
    ) -> Result<Response<pb::RejectApplicationResponse>, Status> {
        position!(RejectApplicationResponse, self.reject_application(&request).await?)
    }

    async fn get_application(
        &self,
        request: Request<pb::GetApplicationRequest>,
    ) -> Result<Response<pb::GetApplicationResponse>, Status> {
        let reader = reader(Principal::authorized(&request, CASE_READERS)?);
        let deadline = request::deadline(&request);
        Ok(Response::new(self.query_get_application(reader, request.get_ref(), deadline).await?))
    }

    async fn list_applications(
        &self,
        request: Request<pb::ListApplicationsRequest>,
    ) -> Result<Response<pb::ListApplicationsResponse>, Status> {
        let reader = reader(Principal::authorized(&request, CASE_READERS)?);
        let deadline = request::deadline(&request);
        Ok(Response::new(self.query_list_applications(reader, request.get_ref(), deadline).await?))
    }

    async fn order_item(
        &self,
        request: Request<pb::OrderItemRequest>,
    ) -> Result<Response<pb::OrderItemResponse>, Status> {
        Ok(Response::new(self.order_item(&request).await?))
    }

    async fn cancel_order(
        &self,
        request: Request<pb::CancelOrderRequest>,
    ) -> Result<Response<pb::CancelOrderResponse>, Status> {
        position!(CancelOrderResponse, self.cancel_order(&request).await?)
    }

    async fn record_delivery(
        &self,
        request: Request<pb::RecordDeliveryRequest>,
    ) -> Result<Response<pb::RecordDeliveryResponse>, Status> {
        position!(RecordDeliveryResponse, self.record_delivery(&request).await?)
    }

    async fn record_supplier_payment(
        &self,
        request: Request<pb::RecordSupplierPaymentRequest>,
    ) -> Result<Response<pb::RecordSupplierPaymentResponse>, Status> {
        position!(RecordSupplierPaymentResponse, self.record_supplier_payment(&request).await?)
    }

    async fn hand_over_items(
        &self,
        request: Request<pb::HandOverItemsRequest>,
    ) -> Result<Response<pb::HandOverItemsResponse>, Status> {
        position!(HandOverItemsResponse, self.hand_over_items(&request).await?)
    }

    async fn record_monitoring_visit(
        &self,
        request: Request<pb::RecordMonitoringVisitRequest>,
    ) -> Result<Response<pb::RecordMonitoringVisitResponse>, Status> {
        position!(RecordMonitoringVisitResponse, self.record_monitoring_visit(&request).await?)
    }

    async fn close_grant(
        &self,
        request: Request<pb::CloseGrantRequest>,
    ) -> Result<Response<pb::CloseGrantResponse>, Status> {
        Ok(Response::new(self.close_grant(&request).await?))
    }

    async fn cancel_grant(
        &self,
        request: Request<pb::CancelGrantRequest>,
    ) -> Result<Response<pb::CancelGrantResponse>, Status> {
        Ok(Response::new(self.cancel_grant(&request).await?))
    }

    async fn record_support_service(
        &self,
        request: Request<pb::RecordSupportServiceRequest>,
    ) -> Result<Response<pb::RecordSupportServiceResponse>, Status> {
        Ok(Response::new(self.record_support_service(&request).await?))
    }

    async fn retract_support_service(
        &self,
        request: Request<pb::RetractSupportServiceRequest>,
    ) -> Result<Response<pb::RetractSupportServiceResponse>, Status> {
        position!(RetractSupportServiceResponse, self.retract_support_service(&request).await?)
    }

    async fn list_support_services(
        &self,
        request: Request<pb::ListSupportServicesRequest>,
    ) -> Result<Response<pb::ListSupportServicesResponse>, Status> {
        let reader = reader(Principal::authorized(&request, CASE_READERS)?);
        let deadline = request::deadline(&request);
        Ok(Response::new(self.query_list_support_services(reader, request.get_ref(), deadline).await?))
    }

    async fn get_funnel(
        &self,
        request: Request<pb::GetFunnelRequest>,
    ) -> Result<Response<pb::GetFunnelResponse>, Status> {
        let reader = reader(Principal::authorized(&request, READERS)?);
        let deadline = request::deadline(&request);
        Ok(Response::new(self.query_get_funnel(reader, request.get_ref(), deadline).await?))
    }

    async fn get_budget(
        &self,
        request: Request<pb::GetBudgetRequest>,
    ) -> Result<Response<pb::GetBudgetResponse>, Status> {
        let reader = reader(Principal::authorized(&request, READERS)?);
        let deadline = request::deadline(&request);
        Ok(Response::new(self.query_get_budget(reader, request.get_ref(), deadline).await?))
    }

    async fn get_grants_by_district(
        &self,
        request: Request<pb::GetGrantsByDistrictRequest>,
    ) -> Result<Response<pb::GetGrantsByDistrictResponse>, Status> {
        let reader = reader(Principal::authorized(&request, READERS)?);
        let deadline = request::deadline(&request);
        Ok(Response::new(self.query_get_grants_by_district(reader, request.get_ref(), deadline).await?))
    }

    async fn get_training_completion(
        &self,
        request: Request<pb::GetTrainingCompletionRequest>,
    ) -> Result<Response<pb::GetTrainingCompletionResponse>, Status> {
        let reader = reader(Principal::authorized(&request, READERS)?);
        let deadline = request::deadline(&request);
        Ok(Response::new(self.query_get_training_completion(reader, request.get_ref(), deadline).await?))
    }

    async fn get_progress(
        &self,
        request: Request<pb::GetProgressRequest>,
    ) -> Result<Response<pb::GetProgressResponse>, Status> {
        let reader = reader(Principal::authorized(&request, READERS)?);
        let deadline = request::deadline(&request);
        Ok(Response::new(self.query_get_progress(reader, request.get_ref(), deadline).await?))
    }
}
