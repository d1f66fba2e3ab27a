//! The editorial commands: validate the request into domain values, let the
//! aggregate decide, and append through the command loop — one atomic batch
//! per command, its slug claims and request record included. The actor is
//! the token's subject: a revision's author, an approval's reviewer.

use acasa_domain::{Aggregate, Codec, EventCodec, Plain, Violations};
use acasa_eventstore::{CommandError, Outcome, Repository, Step};
use acasa_proto::{Idempotent, content::v1 as pb};
use acasa_runtime::{ApiError, Principal, Role, request::meta_of};
use chrono::Utc;
use tonic::{Request, Status};

use crate::{
    domain::{
        Stamp,
        agreement::{Agreement, AgreementCommand, AgreementEvent, NewAgreement},
        article::{Article, ArticleCommand, ArticleEvent, NewArticle, Text},
        campaign::{CampaignCommand, NewCampaign},
    },
    grpc::{ContentService, EDITORS, REVIEWERS},
    validate,
};

/// A command's caller, metadata and stamp.
struct Begun {
    meta: acasa_eventstore::CommandMeta,
    stamp: Stamp,
}

/// Authorises the caller and reads the request's idempotency metadata;
/// `None` with violations recorded.
fn begin<R: Idempotent>(request: &Request<R>, roles: &[Role], v: &mut Violations) -> Result<Option<Begun>, Status> {
    let principal: &Principal = Principal::authorized(request, roles)?;
    Ok(meta_of(principal, v, request.get_ref()).map(|meta| {
        let stamp = Stamp::new(&meta.actor, Utc::now());
        Begun { meta, stamp }
    }))
}

fn api<E: acasa_domain::Rejection>(e: CommandError<E>) -> Status {
    ApiError::from(e).into()
}

fn plain<E: EventCodec>() -> &'static dyn Codec<E> {
    &Plain
}

/// The revision an edit answers: the one it wrote, or (nothing changed, or
/// a retry) the latest revision of that locale holding exactly that text.
fn revision_of(events: &[ArticleEvent], state: &Article, locale: &str, text: &Text) -> u32 {
    events
        .iter()
        .find_map(|e| match e {
            ArticleEvent::Revised { revision, .. } => Some(*revision),
            _ => None,
        })
        .or_else(|| state.versions.history(locale).iter().rev().find(|r| r.content == *text).map(|r| r.number))
        .unwrap_or(0)
}

impl ContentService {
    /// Runs `build`'s command on aggregate `id_of(request)` of `repo`, for
    /// callers with one of `roles`.
    async fn on<A, R>(
        &self,
        repo: &Repository<A>,
        request: &Request<R>,
        roles: &[Role],
        id: (&'static str, fn(&R) -> &str),
        build: impl FnOnce(&R, Stamp, &mut Violations) -> Option<A::Command>,
    ) -> Result<Outcome<A>, Status>
    where
        A: Aggregate,
        A::Event: EventCodec,
        R: Idempotent,
    {
        let mut v = Violations::new();
        let begun = begin(request, roles, &mut v)?;
        let req = request.get_ref();
        let target = validate::id(&mut v, id.0, id.1(req));
        let command = match (&begun, target) {
            (Some(b), Some(_)) => build(req, b.stamp.clone(), &mut v),
            _ => None,
        };
        let (Some(begun), Some(target), Some(command)) = (begun, target, command) else {
            return Err(ApiError::from(v).into());
        };
        v.into_result().map_err(|e| Status::from(ApiError::from(e)))?;
        repo.execute(&target.to_string(), &command, &begun.meta).await.map_err(api)
    }

    /// An article's command, for `roles`; its position.
    async fn on_article<R: Idempotent>(
        &self,
        request: &Request<R>,
        roles: &[Role],
        id_of: fn(&R) -> &str,
        build: impl FnOnce(&R, Stamp, &mut Violations) -> Option<ArticleCommand>,
    ) -> Result<u64, Status> {
        Ok(self.on(&self.articles, request, roles, ("article_id", id_of), build).await?.position)
    }

    /// An agreement's command (editors); its outcome.
    async fn on_agreement<R: Idempotent>(
        &self,
        request: &Request<R>,
        id_of: fn(&R) -> &str,
        build: impl FnOnce(&R, Stamp, &mut Violations) -> Option<AgreementCommand>,
    ) -> Result<Outcome<Agreement>, Status> {
        self.on(&self.agreements, request, EDITORS, ("agreement_id", id_of), build).await
    }

    // ------------------------------------------------------------ articles

    pub(crate) async fn create_article(
        &self,
        request: &Request<pb::CreateArticleRequest>,
    ) -> Result<pb::CreateArticleResponse, Status> {
        let mut v = Violations::new();
        let begun = begin(request, EDITORS, &mut v)?;
        let req = request.get_ref();
        let topic = validate::topic(&mut v, req.topic);
        let countries = validate::countries(&mut v, &req.countries);
        let slug = validate::slug(&mut v, "slug", &req.slug);
        let (Some(begun), Some(topic), Some(countries), Some(slug)) = (begun, topic, countries, slug) else {
            return Err(ApiError::from(v).into());
        };
        let (id, fresh) = self.articles.creation_id(&begun.meta).await.map_err(api)?;
        let command = ArticleCommand::Create(NewArticle { id, topic, countries, slug }, begun.stamp);
        let step = Step { id: id.to_string(), command: &command, codec: plain(), new: fresh };
        let outcome = self.articles.execute_step(step, &begun.meta).await.map_err(api)?;
        Ok(pb::CreateArticleResponse { article_id: outcome.id, position: outcome.position })
    }

    pub(crate) async fn retag_article(&self, request: &Request<pb::RetagArticleRequest>) -> Result<u64, Status> {
        self.on_article(
            request,
            EDITORS,
            |r| &r.article_id,
            |r, stamp, v| {
                let topic = validate::topic(v, r.topic);
                let countries = validate::countries(v, &r.countries);
                Some(ArticleCommand::Retag { topic: topic?, countries: countries?, stamp })
            },
        )
        .await
    }

    pub(crate) async fn change_article_slug(
        &self,
        request: &Request<pb::ChangeArticleSlugRequest>,
    ) -> Result<u64, Status> {
        self.on_article(
            request,
            EDITORS,
            |r| &r.article_id,
            |r, stamp, v| validate::slug(v, "slug", &r.slug).map(|slug| ArticleCommand::ChangeSlug { slug, stamp }),
        )
        .await
    }

    pub(crate) async fn edit_article(
        &self,
        request: &Request<pb::EditArticleRequest>,
    ) -> Result<pb::EditArticleResponse, Status> {
        let mut edited = None;
        let outcome = self
            .on(&self.articles, request, EDITORS, ("article_id", |r| &r.article_id), |r, stamp, v| {
                let locale = validate::locale(v, "locale", &r.locale);
                let text = validate::article_text(v, &r.title, &r.summary, &r.body);
                let (locale, text) = (locale?.to_string(), text?);
                edited = Some((locale.clone(), text.clone()));
                Some(ArticleCommand::Edit { locale, text, translates: validate::translates(r.translates), stamp })
            })
            .await?;
        let mut revision = 0;
        if let Some((locale, text)) = edited {
            revision = revision_of(&outcome.events, &Article::default(), &locale, &text);
            if revision == 0 {
                let (state, _) = self.articles.load(&outcome.id).await.map_err(|e| Status::from(ApiError::from(e)))?;
                revision = revision_of(&[], &state, &locale, &text);
            }
        }
        Ok(pb::EditArticleResponse { revision, position: outcome.position })
    }

    pub(crate) async fn submit_article(&self, request: &Request<pb::SubmitArticleRequest>) -> Result<u64, Status> {
        self.on_article(
            request,
            EDITORS,
            |r| &r.article_id,
            |r, stamp, v| {
                let locale = validate::locale(v, "locale", &r.locale)?.to_string();
                Some(ArticleCommand::SubmitForReview { locale, stamp })
            },
        )
        .await
    }

    pub(crate) async fn request_article_changes(
        &self,
        request: &Request<pb::RequestArticleChangesRequest>,
    ) -> Result<u64, Status> {
        self.on_article(
            request,
            REVIEWERS,
            |r| &r.article_id,
            |r, stamp, v| {
                let locale = validate::locale(v, "locale", &r.locale);
                let reason = validate::reason(v, &r.reason);
                Some(ArticleCommand::RequestChanges { locale: locale?.to_string(), reason: reason?, stamp })
            },
        )
        .await
    }

    pub(crate) async fn approve_article(&self, request: &Request<pb::ApproveArticleRequest>) -> Result<u64, Status> {
        self.on_article(
            request,
            REVIEWERS,
            |r| &r.article_id,
            |r, stamp, v| {
                let locale = validate::locale(v, "locale", &r.locale);
                let revision = validate::revision(v, "revision", r.revision);
                Some(ArticleCommand::Approve { locale: locale?.to_string(), revision: revision?, stamp })
            },
        )
        .await
    }

    pub(crate) async fn publish_article(&self, request: &Request<pb::PublishArticleRequest>) -> Result<u64, Status> {
        self.on_article(
            request,
            crate::grpc::PUBLISHERS,
            |r| &r.article_id,
            |r, stamp, v| {
                let locale = validate::locale(v, "locale", &r.locale)?.to_string();
                Some(ArticleCommand::Publish { locale, stamp })
            },
        )
        .await
    }

    pub(crate) async fn unpublish_article(
        &self,
        request: &Request<pb::UnpublishArticleRequest>,
    ) -> Result<u64, Status> {
        self.on_article(
            request,
            crate::grpc::PUBLISHERS,
            |r| &r.article_id,
            |r, stamp, v| {
                let locale = validate::locale(v, "locale", &r.locale);
                let reason = validate::reason(v, &r.reason);
                Some(ArticleCommand::Unpublish { locale: locale?.to_string(), reason: reason?, stamp })
            },
        )
        .await
    }

    pub(crate) async fn schedule_article(&self, request: &Request<pb::ScheduleArticleRequest>) -> Result<u64, Status> {
        self.on_article(
            request,
            crate::grpc::PUBLISHERS,
            |r| &r.article_id,
            |r, stamp, v| {
                let locale = validate::locale(v, "locale", &r.locale);
                let publish_at = validate::instant(v, "publish_at", r.publish_at.as_ref());
                let expire_at = validate::instant(v, "expire_at", r.expire_at.as_ref());
                if let Some(Some(at)) = publish_at
                    && at < stamp.at - chrono::Duration::minutes(1)
                {
                    v.add("publish_at", "must not be in the past (publish now instead)");
                }
                if let Some(Some(at)) = expire_at
                    && at <= stamp.at
                {
                    v.add("expire_at", "must be in the future (unpublish now instead)");
                }
                Some(ArticleCommand::Schedule {
                    locale: locale?.to_string(),
                    publish_at: publish_at?,
                    expire_at: expire_at?,
                    stamp,
                })
            },
        )
        .await
    }

    pub(crate) async fn confirm_article_translation(
        &self,
        request: &Request<pb::ConfirmArticleTranslationRequest>,
    ) -> Result<u64, Status> {
        self.on_article(
            request,
            EDITORS,
            |r| &r.article_id,
            |r, stamp, v| {
                let locale = validate::locale(v, "locale", &r.locale);
                let source_revision = validate::revision(v, "source_revision", r.source_revision);
                Some(ArticleCommand::ConfirmTranslation {
                    locale: locale?.to_string(),
                    source_revision: source_revision?,
                    stamp,
                })
            },
        )
        .await
    }

    // ------------------------------------------------------------ agreements

    pub(crate) async fn create_agreement(
        &self,
        request: &Request<pb::CreateAgreementRequest>,
    ) -> Result<pb::CreateAgreementResponse, Status> {
        let mut v = Violations::new();
        let begun = begin(request, EDITORS, &mut v)?;
        let req = request.get_ref();
        let today = Utc::now().date_naive();
        let country = validate::partner_country(&mut v, &req.country);
        let kind = validate::kind(&mut v, req.kind);
        let title = validate::text(&mut v, "title", &req.title, validate::AGREEMENT_TITLE_MAX);
        let status = validate::status(&mut v, req.status);
        let on = validate::past_date(&mut v, "on", req.on.as_ref(), today);
        let (Some(begun), Some(country), Some(kind), Some(title), Some(status), Some(on)) =
            (begun, country, kind, title, status, on)
        else {
            return Err(ApiError::from(v).into());
        };
        let (id, fresh) = self.agreements.creation_id(&begun.meta).await.map_err(api)?;
        let command = AgreementCommand::Create(NewAgreement { id, country, kind, title, status, on }, begun.stamp);
        let step = Step { id: id.to_string(), command: &command, codec: plain(), new: fresh };
        let outcome = self.agreements.execute_step(step, &begun.meta).await.map_err(api)?;
        Ok(pb::CreateAgreementResponse { agreement_id: outcome.id, position: outcome.position })
    }

    pub(crate) async fn rename_agreement(&self, request: &Request<pb::RenameAgreementRequest>) -> Result<u64, Status> {
        let outcome = self
            .on_agreement(
                request,
                |r| &r.agreement_id,
                |r, stamp, v| {
                    validate::text(v, "title", &r.title, validate::AGREEMENT_TITLE_MAX)
                        .map(|title| AgreementCommand::Rename { title, stamp })
                },
            )
            .await?;
        Ok(outcome.position)
    }

    pub(crate) async fn change_agreement_status(
        &self,
        request: &Request<pb::ChangeAgreementStatusRequest>,
    ) -> Result<u64, Status> {
        let outcome = self
            .on_agreement(
                request,
                |r| &r.agreement_id,
                |r, stamp, v| {
                    let to = validate::status(v, r.status);
                    let on = validate::past_date(v, "on", r.on.as_ref(), stamp.at.date_naive());
                    Some(AgreementCommand::Transition { to: to?, on: on?, stamp })
                },
            )
            .await?;
        Ok(outcome.position)
    }

    pub(crate) async fn add_agreement_link(
        &self,
        request: &Request<pb::AddAgreementLinkRequest>,
    ) -> Result<u64, Status> {
        let outcome = self
            .on_agreement(
                request,
                |r| &r.agreement_id,
                |r, stamp, v| validate::url(v, &r.url).map(|url| AgreementCommand::AddLink { url, stamp }),
            )
            .await?;
        Ok(outcome.position)
    }

    pub(crate) async fn remove_agreement_link(
        &self,
        request: &Request<pb::RemoveAgreementLinkRequest>,
    ) -> Result<u64, Status> {
        let outcome = self
            .on_agreement(
                request,
                |r| &r.agreement_id,
                |r, stamp, v| {
                    validate::text(v, "url", &r.url, validate::URL_MAX)
                        .map(|url| AgreementCommand::RemoveLink { url, stamp })
                },
            )
            .await?;
        Ok(outcome.position)
    }

    pub(crate) async fn edit_agreement_summary(
        &self,
        request: &Request<pb::EditAgreementSummaryRequest>,
    ) -> Result<pb::EditAgreementSummaryResponse, Status> {
        let mut edited = None;
        let outcome = self
            .on_agreement(
                request,
                |r| &r.agreement_id,
                |r, stamp, v| {
                    let locale = validate::locale(v, "locale", &r.locale);
                    let text = validate::agreement_summary(v, &r.summary);
                    let (locale, text) = (locale?.to_string(), text?);
                    edited = Some((locale.clone(), text.clone()));
                    Some(AgreementCommand::EditSummary {
                        locale,
                        text,
                        translates: validate::translates(r.translates),
                        stamp,
                    })
                },
            )
            .await?;
        let written = outcome.events.iter().find_map(|e| match e {
            AgreementEvent::SummaryRevised { revision, .. } => Some(*revision),
            _ => None,
        });
        let revision = match (written, edited) {
            (Some(n), _) => n,
            (None, Some((locale, text))) => {
                let (state, _) =
                    self.agreements.load(&outcome.id).await.map_err(|e| Status::from(ApiError::from(e)))?;
                state.summaries.history(&locale).iter().rev().find(|r| r.content == text).map_or(0, |r| r.number)
            }
            (None, None) => 0,
        };
        Ok(pb::EditAgreementSummaryResponse { revision, position: outcome.position })
    }

    pub(crate) async fn confirm_agreement_translation(
        &self,
        request: &Request<pb::ConfirmAgreementTranslationRequest>,
    ) -> Result<u64, Status> {
        let outcome = self
            .on_agreement(
                request,
                |r| &r.agreement_id,
                |r, stamp, v| {
                    let locale = validate::locale(v, "locale", &r.locale);
                    let source_revision = validate::revision(v, "source_revision", r.source_revision);
                    Some(AgreementCommand::ConfirmTranslation {
                        locale: locale?.to_string(),
                        source_revision: source_revision?,
                        stamp,
                    })
                },
            )
            .await?;
        Ok(outcome.position)
    }

    // ------------------------------------------------------------ campaigns

    /// A campaign's command (editors); its position.
    async fn on_campaign<R: Idempotent>(
        &self,
        request: &Request<R>,
        id_of: fn(&R) -> &str,
        build: impl FnOnce(&R, Stamp, &mut Violations) -> Option<CampaignCommand>,
    ) -> Result<u64, Status> {
        Ok(self.on(&self.campaigns, request, EDITORS, ("campaign_id", id_of), build).await?.position)
    }

    pub(crate) async fn create_campaign(
        &self,
        request: &Request<pb::CreateCampaignRequest>,
    ) -> Result<pb::CreateCampaignResponse, Status> {
        let mut v = Violations::new();
        let begun = begin(request, EDITORS, &mut v)?;
        let req = request.get_ref();
        let name = validate::text(&mut v, "name", &req.name, validate::SUBJECT_MAX);
        let target = validate::target(&mut v, req.target.as_ref());
        let (Some(begun), Some(name), Some(target)) = (begun, name, target) else {
            return Err(ApiError::from(v).into());
        };
        let (id, fresh) = self.campaigns.creation_id(&begun.meta).await.map_err(api)?;
        let command = CampaignCommand::Create(NewCampaign { id, name, target }, begun.stamp);
        let step = Step { id: id.to_string(), command: &command, codec: plain(), new: fresh };
        let outcome = self.campaigns.execute_step(step, &begun.meta).await.map_err(api)?;
        Ok(pb::CreateCampaignResponse { campaign_id: outcome.id, position: outcome.position })
    }

    pub(crate) async fn retarget_campaign(
        &self,
        request: &Request<pb::RetargetCampaignRequest>,
    ) -> Result<u64, Status> {
        self.on_campaign(
            request,
            |r| &r.campaign_id,
            |r, stamp, v| validate::target(v, r.target.as_ref()).map(|t| CampaignCommand::Retarget(t, stamp)),
        )
        .await
    }

    pub(crate) async fn set_campaign_content(
        &self,
        request: &Request<pb::SetCampaignContentRequest>,
    ) -> Result<u64, Status> {
        self.on_campaign(
            request,
            |r| &r.campaign_id,
            |r, stamp, v| {
                validate::campaign_content(v, r.content.as_ref()).map(|(locale, content)| CampaignCommand::SetContent {
                    locale,
                    content,
                    stamp,
                })
            },
        )
        .await
    }

    pub(crate) async fn schedule_campaign(
        &self,
        request: &Request<pb::ScheduleCampaignRequest>,
    ) -> Result<u64, Status> {
        self.on_campaign(
            request,
            |r| &r.campaign_id,
            |r, stamp, v| {
                validate::required_instant(v, "send_at", r.send_at.as_ref())
                    .map(|send_at| CampaignCommand::Schedule { send_at, stamp })
            },
        )
        .await
    }

    pub(crate) async fn unschedule_campaign(
        &self,
        request: &Request<pb::UnscheduleCampaignRequest>,
    ) -> Result<u64, Status> {
        self.on_campaign(request, |r| &r.campaign_id, |_, stamp, _| Some(CampaignCommand::Unschedule(stamp))).await
    }

    pub(crate) async fn cancel_campaign(&self, request: &Request<pb::CancelCampaignRequest>) -> Result<u64, Status> {
        self.on_campaign(
            request,
            |r| &r.campaign_id,
            |r, stamp, v| validate::reason(v, &r.reason).map(|reason| CampaignCommand::Cancel { reason, stamp }),
        )
        .await
    }
}
