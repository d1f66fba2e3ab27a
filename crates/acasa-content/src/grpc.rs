//! The transport glue of `acasa.content.v1`: `ContentService` (the
//! editorial side, behind a bearer token: who may call what, then the
//! command of [`crate::commands`] or the query of [`crate::queries`]) and
//! `PublicContentService` (no login: the per-client rate, then the public
//! query of [`crate::public`]).

use std::sync::Arc;

use acasa_eventstore::{Repository, RepositoryConfig};
use acasa_projection::Positions;
use acasa_proto::content::v1::{
    self as pb, content_service_server::ContentServiceServer, public_content_service_server::PublicContentServiceServer,
};
use acasa_runtime::{Authenticator, Principal, Role, rate::RateLimiter, request};
use sqlx::PgPool;
use tonic::{Request, Response, Status, service::Routes};

use crate::domain::{agreement::Agreement, article::Article, campaign::Campaign, locale::FallbackChain};

/// Writing articles, translations and the agreements catalogue.
pub(crate) const EDITORS: &[Role] = &[Role::Admin, Role::Editor];
/// Approving, or sending back, a version in review.
pub(crate) const REVIEWERS: &[Role] = &[Role::Admin, Role::Reviewer];
/// Publishing (an approved revision), withdrawing, scheduling.
pub(crate) const PUBLISHERS: &[Role] = &[Role::Admin, Role::Editor, Role::Reviewer];
/// Reading the editorial side.
pub(crate) const READERS: &[Role] = &[Role::Admin, Role::Editor, Role::Reviewer, Role::Viewer];

/// Articles kept loaded per process.
pub const ARTICLES_CACHED: usize = 500;
/// Agreements kept loaded per process.
pub const AGREEMENTS_CACHED: usize = 500;
/// Campaigns kept loaded per process.
pub const CAMPAIGNS_CACHED: usize = 100;

/// The editorial service's dependencies.
#[derive(Clone)]
pub struct ContentService {
    pub(crate) articles: Repository<Article>,
    pub(crate) agreements: Repository<Agreement>,
    pub(crate) campaigns: Repository<Campaign>,
    pub(crate) positions: Positions,
    pub(crate) pool: PgPool,
}

impl std::fmt::Debug for ContentService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentService").field("articles", &self.articles).finish()
    }
}

impl ContentService {
    /// The service over its repositories and read models.
    pub fn new(store: acasa_eventstore::EventStore, positions: Positions, pool: PgPool) -> Self {
        let config = |cache_capacity| RepositoryConfig { cache_capacity, ..RepositoryConfig::default() };
        Self {
            articles: Repository::new(store.clone(), config(ARTICLES_CACHED)),
            agreements: Repository::new(store.clone(), config(AGREEMENTS_CACHED)),
            campaigns: Repository::new(store, config(CAMPAIGNS_CACHED)),
            positions,
            pool,
        }
    }

    /// The gRPC service name, for health.
    pub const NAME: &'static str = "acasa.content.v1.ContentService";
}

/// The public reads' dependencies: the read models, the fallback chains,
/// the per-client rate.
#[derive(Clone, Debug)]
pub struct PublicContentService {
    pub(crate) pool: PgPool,
    pub(crate) chain: Arc<FallbackChain>,
    pub(crate) limiter: Arc<RateLimiter>,
}

impl PublicContentService {
    /// The public reads over the read models.
    pub fn new(pool: PgPool, chain: FallbackChain, limiter: RateLimiter) -> Self {
        Self { pool, chain: Arc::new(chain), limiter: Arc::new(limiter) }
    }

    /// The gRPC service name, for health.
    pub const NAME: &'static str = "acasa.content.v1.PublicContentService";
}

/// Both services' routes: the editorial one behind bearer authentication,
/// the public one without.
pub fn routes(editorial: ContentService, public: PublicContentService, auth: &Authenticator) -> Routes {
    Routes::new(ContentServiceServer::with_interceptor(editorial, auth.interceptor()))
        .add_service(PublicContentServiceServer::new(public))
}

macro_rules! position {
    ($response:ident, $position:expr) => {
        Ok(Response::new(pb::$response { position: $position }))
    };
}

macro_rules! query {
    ($self:ident, $request:ident, $method:ident) => {{
        Principal::authorized(&$request, READERS)?;
        let deadline = request::deadline(&$request);
        Ok(Response::new($self.$method($request.get_ref(), deadline).await?))
    }};
}

#[tonic::async_trait]
impl pb::content_service_server::ContentService for ContentService {
    async fn create_article(
        &self,
        request: Request<pb::CreateArticleRequest>,
    ) -> Result<Response<pb::CreateArticleResponse>, Status> {
        Ok(Response::new(self.create_article(&request).await?))
    }

    async fn retag_article(
        &self,
        request: Request<pb::RetagArticleRequest>,
    ) -> Result<Response<pb::RetagArticleResponse>, Status> {
        position!(RetagArticleResponse, self.retag_article(&request).await?)
    }

    async fn change_article_slug(
        &self,
        request: Request<pb::ChangeArticleSlugRequest>,
    ) -> Result<Response<pb::ChangeArticleSlugResponse>, Status> {
        position!(ChangeArticleSlugResponse, self.change_article_slug(&request).await?)
    }

    async fn edit_article(
        &self,
        request: Request<pb::EditArticleRequest>,
    ) -> Result<Response<pb::EditArticleResponse>, Status> {
        Ok(Response::new(self.edit_article(&request).await?))
    }

    async fn submit_article(
        &self,
        request: Request<pb::SubmitArticleRequest>,
    ) -> Result<Response<pb::SubmitArticleResponse>, Status> {
        position!(SubmitArticleResponse, self.submit_article(&request).await?)
    }

    async fn request_article_changes(
        &self,
        request: Request<pb::RequestArticleChangesRequest>,
    ) -> Result<Response<pb::RequestArticleChangesResponse>, Status> {
        position!(RequestArticleChangesResponse, self.request_article_changes(&request).await?)
    }

    async fn approve_article(
        &self,
        request: Request<pb::ApproveArticleRequest>,
    ) -> Result<Response<pb::ApproveArticleResponse>, Status> {
        position!(ApproveArticleResponse, self.approve_article(&request).await?)
    }

    async fn publish_article(
        &self,
        request: Request<pb::PublishArticleRequest>,
    ) -> Result<Response<pb::PublishArticleResponse>, Status> {
        position!(PublishArticleResponse, self.publish_article(&request).await?)
    }

    async fn unpublish_article(
        &self,
        request: Request<pb::UnpublishArticleRequest>,
    ) -> Result<Response<pb::UnpublishArticleResponse>, Status> {
        position!(UnpublishArticleResponse, self.unpublish_article(&request).await?)
    }

    async fn schedule_article(
        &self,
        request: Request<pb::ScheduleArticleRequest>,
    ) -> Result<Response<pb::ScheduleArticleResponse>, Status> {
        position!(ScheduleArticleResponse, self.schedule_article(&request).await?)
    }

    async fn confirm_article_translation(
        &self,
        request: Request<pb::ConfirmArticleTranslationRequest>,
    ) -> Result<Response<pb::ConfirmArticleTranslationResponse>, Status> {
        position!(ConfirmArticleTranslationResponse, self.confirm_article_translation(&request).await?)
    }

    async fn get_article_draft(
        &self,
        request: Request<pb::GetArticleDraftRequest>,
    ) -> Result<Response<pb::GetArticleDraftResponse>, Status> {
        query!(self, request, query_get_article_draft)
    }

    async fn list_article_drafts(
        &self,
        request: Request<pb::ListArticleDraftsRequest>,
    ) -> Result<Response<pb::ListArticleDraftsResponse>, Status> {
        query!(self, request, query_list_article_drafts)
    }

    async fn list_article_revisions(
        &self,
        request: Request<pb::ListArticleRevisionsRequest>,
    ) -> Result<Response<pb::ListArticleRevisionsResponse>, Status> {
        query!(self, request, query_list_article_revisions)
    }

    async fn get_article_revision(
        &self,
        request: Request<pb::GetArticleRevisionRequest>,
    ) -> Result<Response<pb::GetArticleRevisionResponse>, Status> {
        query!(self, request, query_get_article_revision)
    }

    async fn get_article_source_diff(
        &self,
        request: Request<pb::GetArticleSourceDiffRequest>,
    ) -> Result<Response<pb::GetArticleSourceDiffResponse>, Status> {
        query!(self, request, query_get_article_source_diff)
    }

    async fn create_agreement(
        &self,
        request: Request<pb::CreateAgreementRequest>,
    ) -> Result<Response<pb::CreateAgreementResponse>, Status> {
        Ok(Response::new(self.create_agreement(&request).await?))
    }

    async fn rename_agreement(
        &self,
        request: Request<pb::RenameAgreementRequest>,
    ) -> Result<Response<pb::RenameAgreementResponse>, Status> {
        position!(RenameAgreementResponse, self.rename_agreement(&request).await?)
    }

    async fn change_agreement_status(
        &self,
        request: Request<pb::ChangeAgreementStatusRequest>,
    ) -> Result<Response<pb::ChangeAgreementStatusResponse>, Status> {
        position!(ChangeAgreementStatusResponse, self.change_agreement_status(&request).await?)
    }

    async fn add_agreement_link(
        &self,
        request: Request<pb::AddAgreementLinkRequest>,
    ) -> Result<Response<pb::AddAgreementLinkResponse>, Status> {
        position!(AddAgreementLinkResponse, self.add_agreement_link(&request).await?)
    }

    async fn remove_agreement_link(
        &self,
        request: Request<pb::RemoveAgreementLinkRequest>,
    ) -> Result<Response<pb::RemoveAgreementLinkResponse>, Status> {
        position!(RemoveAgreementLinkResponse, self.remove_agreement_link(&request).await?)
    }

    async fn edit_agreement_summary(
        &self,
        request: Request<pb::EditAgreementSummaryRequest>,
    ) -> Result<Response<pb::EditAgreementSummaryResponse>, Status> {
        Ok(Response::new(self.edit_agreement_summary(&request).await?))
    }

    async fn confirm_agreement_translation(
        &self,
        request: Request<pb::ConfirmAgreementTranslationRequest>,
    ) -> Result<Response<pb::ConfirmAgreementTranslationResponse>, Status> {
        position!(ConfirmAgreementTranslationResponse, self.confirm_agreement_translation(&request).await?)
    }

    async fn get_agreement_draft(
        &self,
        request: Request<pb::GetAgreementDraftRequest>,
    ) -> Result<Response<pb::GetAgreementDraftResponse>, Status> {
        query!(self, request, query_get_agreement_draft)
    }

    async fn create_campaign(
        &self,
        request: Request<pb::CreateCampaignRequest>,
    ) -> Result<Response<pb::CreateCampaignResponse>, Status> {
        Ok(Response::new(self.create_campaign(&request).await?))
    }

    async fn retarget_campaign(
        &self,
        request: Request<pb::RetargetCampaignRequest>,
    ) -> Result<Response<pb::RetargetCampaignResponse>, Status> {
        position!(RetargetCampaignResponse, self.retarget_campaign(&request).await?)
    }

    async fn set_campaign_content(
        &self,
        request: Request<pb::SetCampaignContentRequest>,
    ) -> Result<Response<pb::SetCampaignContentResponse>, Status> {
        position!(SetCampaignContentResponse, self.set_campaign_content(&request).await?)
    }

    async fn schedule_campaign(
        &self,
        request: Request<pb::ScheduleCampaignRequest>,
    ) -> Result<Response<pb::ScheduleCampaignResponse>, Status> {
        position!(ScheduleCampaignResponse, self.schedule_campaign(&request).await?)
    }

    async fn unschedule_campaign(
        &self,
        request: Request<pb::UnscheduleCampaignRequest>,
    ) -> Result<Response<pb::UnscheduleCampaignResponse>, Status> {
        position!(UnscheduleCampaignResponse, self.unschedule_campaign(&request).await?)
    }

    async fn cancel_campaign(
        &self,
        request: Request<pb::CancelCampaignRequest>,
    ) -> Result<Response<pb::CancelCampaignResponse>, Status> {
        position!(CancelCampaignResponse, self.cancel_campaign(&request).await?)
    }

    async fn get_campaign(
        &self,
        request: Request<pb::GetCampaignRequest>,
    ) -> Result<Response<pb::GetCampaignResponse>, Status> {
        query!(self, request, query_get_campaign)
    }

    async fn get_campaign_reach(
        &self,
        request: Request<pb::GetCampaignReachRequest>,
    ) -> Result<Response<pb::GetCampaignReachResponse>, Status> {
        query!(self, request, query_get_campaign_reach)
    }

    async fn list_campaign_deliveries(
        &self,
        request: Request<pb::ListCampaignDeliveriesRequest>,
    ) -> Result<Response<pb::ListCampaignDeliveriesResponse>, Status> {
        Principal::authorized(&request, EDITORS)?;
        let deadline = request::deadline(&request);
        Ok(Response::new(self.query_list_campaign_deliveries(request.get_ref(), deadline).await?))
    }

    async fn list_campaigns(
        &self,
        request: Request<pb::ListCampaignsRequest>,
    ) -> Result<Response<pb::ListCampaignsResponse>, Status> {
        query!(self, request, query_list_campaigns)
    }
}

macro_rules! public {
    ($self:ident, $request:ident, $method:ident) => {{
        $self.limiter.admit(&$request)?;
        Ok(Response::new($self.$method($request.get_ref()).await?))
    }};
}

#[tonic::async_trait]
impl pb::public_content_service_server::PublicContentService for PublicContentService {
    async fn get_article(
        &self,
        request: Request<pb::GetArticleRequest>,
    ) -> Result<Response<pb::GetArticleResponse>, Status> {
        public!(self, request, get_article)
    }

    async fn list_articles(
        &self,
        request: Request<pb::ListArticlesRequest>,
    ) -> Result<Response<pb::ListArticlesResponse>, Status> {
        public!(self, request, list_articles)
    }

    async fn search_articles(
        &self,
        request: Request<pb::SearchArticlesRequest>,
    ) -> Result<Response<pb::SearchArticlesResponse>, Status> {
        public!(self, request, search_articles)
    }

    async fn get_agreement(
        &self,
        request: Request<pb::GetAgreementRequest>,
    ) -> Result<Response<pb::GetAgreementResponse>, Status> {
        public!(self, request, get_agreement)
    }

    async fn list_agreements(
        &self,
        request: Request<pb::ListAgreementsRequest>,
    ) -> Result<Response<pb::ListAgreementsResponse>, Status> {
        public!(self, request, list_agreements)
    }
}
