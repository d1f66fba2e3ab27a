//! (in progress: the queries)

use acasa_proto::grants::v1 as pb;
use acasa_runtime::ApiError;
use tokio::time::Instant;

use crate::grpc::{GrantService, Reader};

impl GrantService {
    pub(crate) async fn query_get_call(
        &self,
        _reader: Reader,
        _req: &pb::GetCallRequest,
        _deadline: Instant,
    ) -> Result<pb::GetCallResponse, ApiError> {
        Err(ApiError::NotFound("not yet".into()))
    }

    pub(crate) async fn query_list_calls(
        &self,
        _reader: Reader,
        _req: &pb::ListCallsRequest,
        _deadline: Instant,
    ) -> Result<pb::ListCallsResponse, ApiError> {
        Err(ApiError::NotFound("not yet".into()))
    }

    pub(crate) async fn query_get_course(
        &self,
        _reader: Reader,
        _req: &pb::GetCourseRequest,
        _deadline: Instant,
    ) -> Result<pb::GetCourseResponse, ApiError> {
        Err(ApiError::NotFound("not yet".into()))
    }

    pub(crate) async fn query_list_courses(
        &self,
        _reader: Reader,
        _req: &pb::ListCoursesRequest,
        _deadline: Instant,
    ) -> Result<pb::ListCoursesResponse, ApiError> {
        Err(ApiError::NotFound("not yet".into()))
    }

    pub(crate) async fn query_get_session(
        &self,
        _reader: Reader,
        _req: &pb::GetSessionRequest,
        _deadline: Instant,
    ) -> Result<pb::GetSessionResponse, ApiError> {
        Err(ApiError::NotFound("not yet".into()))
    }

    pub(crate) async fn query_list_sessions(
        &self,
        _reader: Reader,
        _req: &pb::ListSessionsRequest,
        _deadline: Instant,
    ) -> Result<pb::ListSessionsResponse, ApiError> {
        Err(ApiError::NotFound("not yet".into()))
    }

    pub(crate) async fn query_get_official(
        &self,
        _reader: Reader,
        _req: &pb::GetOfficialRequest,
        _deadline: Instant,
    ) -> Result<pb::GetOfficialResponse, ApiError> {
        Err(ApiError::NotFound("not yet".into()))
    }

    pub(crate) async fn query_list_officials(
        &self,
        _reader: Reader,
        _req: &pb::ListOfficialsRequest,
        _deadline: Instant,
    ) -> Result<pb::ListOfficialsResponse, ApiError> {
        Err(ApiError::NotFound("not yet".into()))
    }

    pub(crate) async fn query_get_application(
        &self,
        _reader: Reader,
        _req: &pb::GetApplicationRequest,
        _deadline: Instant,
    ) -> Result<pb::GetApplicationResponse, ApiError> {
        Err(ApiError::NotFound("not yet".into()))
    }

    pub(crate) async fn query_list_applications(
        &self,
        _reader: Reader,
        _req: &pb::ListApplicationsRequest,
        _deadline: Instant,
    ) -> Result<pb::ListApplicationsResponse, ApiError> {
        Err(ApiError::NotFound("not yet".into()))
    }

    pub(crate) async fn query_list_support_services(
        &self,
        _reader: Reader,
        _req: &pb::ListSupportServicesRequest,
        _deadline: Instant,
    ) -> Result<pb::ListSupportServicesResponse, ApiError> {
        Err(ApiError::NotFound("not yet".into()))
    }

    pub(crate) async fn query_get_funnel(
        &self,
        _reader: Reader,
        _req: &pb::GetFunnelRequest,
        _deadline: Instant,
    ) -> Result<pb::GetFunnelResponse, ApiError> {
        Err(ApiError::NotFound("not yet".into()))
    }

    pub(crate) async fn query_get_budget(
        &self,
        _reader: Reader,
        _req: &pb::GetBudgetRequest,
        _deadline: Instant,
    ) -> Result<pb::GetBudgetResponse, ApiError> {
        Err(ApiError::NotFound("not yet".into()))
    }

    pub(crate) async fn query_get_grants_by_district(
        &self,
        _reader: Reader,
        _req: &pb::GetGrantsByDistrictRequest,
        _deadline: Instant,
    ) -> Result<pb::GetGrantsByDistrictResponse, ApiError> {
        Err(ApiError::NotFound("not yet".into()))
    }

    pub(crate) async fn query_get_training_completion(
        &self,
        _reader: Reader,
        _req: &pb::GetTrainingCompletionRequest,
        _deadline: Instant,
    ) -> Result<pb::GetTrainingCompletionResponse, ApiError> {
        Err(ApiError::NotFound("not yet".into()))
    }

    pub(crate) async fn query_get_progress(
        &self,
        _reader: Reader,
        _req: &pb::GetProgressRequest,
        _deadline: Instant,
    ) -> Result<pb::GetProgressResponse, ApiError> {
        Err(ApiError::NotFound("not yet".into()))
    }
}
