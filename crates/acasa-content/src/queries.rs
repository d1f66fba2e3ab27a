//! The editorial queries: read models only (`content.*`, built by
//! [`crate::projection`]), after waiting for the caller's `min_position`;
//! lists keyset-paged ([`acasa_runtime::page`]). The roles are checked by
//! [`crate::grpc`].

use acasa_domain::Violations;
use acasa_proto::content::v1 as pb;
use acasa_runtime::{ApiError, page};
use chrono::{DateTime, Utc};
use sqlx::{Row as _, postgres::PgRow};
use tokio::time::Instant;
use uuid::Uuid;

use crate::{domain::diff, grpc::ContentService, public, validate};

/// Lines of context around each change of a source diff.
const DIFF_CONTEXT: usize = 3;

fn ts(t: Option<DateTime<Utc>>) -> Option<prost_types::Timestamp> {
    t.map(acasa_proto::time::timestamp)
}

fn n(r: &PgRow, column: &str) -> Result<u32, sqlx::Error> {
    Ok(r.try_get::<Option<i32>, _>(column)?.and_then(|n| u32::try_from(n).ok()).unwrap_or(0))
}

/// The columns of an article's versions (`v`) with their current
/// revisions (`r`) and the article's source (`a`).
macro_rules! version_columns {
    () => {
        "v.locale, v.state, v.current_revision, v.approved_revision, v.approved_by, v.live_revision, \
         v.live_since, v.publish_at, v.expire_at, v.in_line_with, r.title, r.author, r.written_at, \
         (v.locale = a.source_locale) AS is_source, a.source_revision"
    };
}

/// The columns of a campaign.
macro_rules! campaign_columns {
    () => {
        "campaign_id, name, target, state, send_at, reach, cancel_reason, created_by, created_at"
    };
}

fn version(r: &PgRow) -> Result<pb::Version, sqlx::Error> {
    let source: bool = r.try_get::<Option<bool>, _>("is_source")?.unwrap_or(false);
    let in_line_with = n(r, "in_line_with")?;
    let source_revision = n(r, "source_revision")?;
    let stale = !source && in_line_with < source_revision;
    Ok(pb::Version {
        locale: r.try_get("locale")?,
        state: i32::from(r.try_get::<i16, _>("state")?),
        source,
        current_revision: n(r, "current_revision")?,
        title: r.try_get("title")?,
        author: r.try_get("author")?,
        written_at: ts(r.try_get("written_at")?),
        approved_revision: n(r, "approved_revision")?,
        approved_by: r.try_get::<Option<String>, _>("approved_by")?.unwrap_or_default(),
        live_revision: n(r, "live_revision")?,
        live_since: ts(r.try_get("live_since")?),
        publish_at: ts(r.try_get("publish_at")?),
        expire_at: ts(r.try_get("expire_at")?),
        in_line_with: if source { 0 } else { in_line_with },
        stale,
        source_revision: if stale { source_revision } else { 0 },
    })
}

fn revision(r: &PgRow, with_body: bool) -> Result<pb::Revision, sqlx::Error> {
    Ok(pb::Revision {
        locale: r.try_get("locale")?,
        revision: n(r, "revision")?,
        author: r.try_get("author")?,
        written_at: ts(r.try_get("written_at")?),
        translates: n(r, "translates")?,
        title: r.try_get::<Option<String>, _>("title")?.unwrap_or_default(),
        summary: r.try_get("summary")?,
        body: if with_body { r.try_get("body")? } else { String::new() },
    })
}

impl ContentService {
    /// Waits for this service's read model at `min` (request field `min_position`).
    async fn at(&self, min: u64, deadline: Instant) -> Result<u64, ApiError> {
        let stream = acasa_eventstore::stream_name_of(crate::SERVICE);
        self.positions
            .at(crate::PROJECTION, &stream, min, deadline)
            .await
            .map_err(|e| ApiError::waiting(e, "min_position"))
    }

    /// The articles `ids` as editors see them, in that order.
    async fn drafts(&self, ids: &[Uuid]) -> Result<Vec<pb::ArticleDraft>, ApiError> {
        let articles = sqlx::query(
            "SELECT article_id, slug, topic, countries, source_locale, created_by, created_at \
             FROM content.articles WHERE article_id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        let versions = sqlx::query(concat!(
            "SELECT v.article_id, ",
            version_columns!(),
            " FROM content.article_versions v JOIN content.articles a ON a.article_id = v.article_id \
             JOIN content.article_revisions r ON r.article_id = v.article_id AND r.locale = v.locale \
               AND r.revision = v.current_revision \
             WHERE v.article_id = ANY($1) ORDER BY (v.locale = a.source_locale) DESC, v.locale"
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(a) = articles.iter().find(|a| a.try_get::<Uuid, _>("article_id").ok() == Some(*id)) else {
                continue;
            };
            let mut draft = pb::ArticleDraft {
                article_id: id.to_string(),
                slug: a.try_get("slug")?,
                topic: i32::from(a.try_get::<i16, _>("topic")?),
                countries: a.try_get("countries")?,
                source_locale: a.try_get::<Option<String>, _>("source_locale")?.unwrap_or_default(),
                versions: Vec::new(),
                created_by: a.try_get("created_by")?,
                created_at: ts(a.try_get("created_at")?),
            };
            for v in versions.iter().filter(|v| v.try_get::<Uuid, _>("article_id").ok() == Some(*id)) {
                draft.versions.push(version(v)?);
            }
            out.push(draft);
        }
        Ok(out)
    }

    pub(crate) async fn query_get_article_draft(
        &self,
        req: &pb::GetArticleDraftRequest,
        deadline: Instant,
    ) -> Result<pb::GetArticleDraftResponse, ApiError> {
        let mut v = Violations::new();
        let Some(id) = validate::id(&mut v, "article_id", &req.article_id) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let article = self.drafts(&[id]).await?.pop().ok_or_else(|| ApiError::NotFound(format!("no article {id}")))?;
        Ok(pb::GetArticleDraftResponse { article: Some(article) })
    }

    pub(crate) async fn query_list_article_drafts(
        &self,
        req: &pb::ListArticleDraftsRequest,
        deadline: Instant,
    ) -> Result<pb::ListArticleDraftsResponse, ApiError> {
        let mut v = Violations::new();
        let topic = validate::topic_filter(&mut v, req.topic);
        let country = validate::country_filter(&mut v, &req.country);
        let locale = if req.locale.is_empty() {
            Some(None)
        } else {
            validate::locale(&mut v, "locale", &req.locale).map(|l| Some(l.to_string()))
        };
        let state = validate::state_filter(&mut v, req.state);
        let page = page::request::<Uuid>(&mut v, req.page_size, &req.page_token);
        let (Some(topic), Some(country), Some(locale), Some(state), Some(page)) = (topic, country, locale, state, page)
        else {
            return Err(v.into());
        };
        self.at(req.min_position, deadline).await?;
        let rows = sqlx::query(
            "SELECT a.article_id FROM content.articles a \
             WHERE ($1::smallint IS NULL OR a.topic = $1) \
               AND ($2::text IS NULL OR a.countries = '{}' OR $2 = ANY(a.countries)) \
               AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM content.article_versions v \
                     WHERE v.article_id = a.article_id AND v.locale = $3)) \
               AND ($4::smallint IS NULL OR EXISTS (SELECT 1 FROM content.article_versions v \
                     WHERE v.article_id = a.article_id AND v.state = $4 AND ($3::text IS NULL OR v.locale = $3))) \
               AND (NOT $5 OR EXISTS (SELECT 1 FROM content.article_versions v \
                     WHERE v.article_id = a.article_id AND v.locale <> a.source_locale \
                       AND COALESCE(v.in_line_with, 0) < a.source_revision AND ($3::text IS NULL OR v.locale = $3))) \
               AND ($6::uuid IS NULL OR a.article_id < $6) \
             ORDER BY a.article_id DESC LIMIT $7",
        )
        .bind(topic)
        .bind(country)
        .bind(locale)
        .bind(state)
        .bind(req.stale_only)
        .bind(page.after)
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.try_get("article_id")).collect::<Result<_, _>>()?;
        let (ids, next_page_token) = page.cut(ids, |id| *id);
        Ok(pb::ListArticleDraftsResponse { articles: self.drafts(&ids).await?, next_page_token })
    }

    pub(crate) async fn query_list_article_revisions(
        &self,
        req: &pb::ListArticleRevisionsRequest,
        deadline: Instant,
    ) -> Result<pb::ListArticleRevisionsResponse, ApiError> {
        let mut v = Violations::new();
        let id = validate::id(&mut v, "article_id", &req.article_id);
        let locale = validate::locale(&mut v, "locale", &req.locale);
        let page = page::request::<(i32, Uuid)>(&mut v, req.page_size, &req.page_token);
        let (Some(id), Some(locale), Some(page)) = (id, locale, page) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let rows = sqlx::query(
            "SELECT locale, revision, author, written_at, translates, title, summary FROM content.article_revisions \
             WHERE article_id = $1 AND locale = $2 AND ($3::integer IS NULL OR revision < $3) \
             ORDER BY revision DESC LIMIT $4",
        )
        .bind(id)
        .bind(locale.as_str())
        .bind(page.after.map(|(n, _)| n))
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() && page.after.is_none() {
            self.article_exists(id).await?;
        }
        let (rows, next_page_token) =
            page.cut(rows, |r| (r.try_get::<i32, _>("revision").unwrap_or_default(), Uuid::nil()));
        let revisions = rows.iter().map(|r| revision(r, false)).collect::<Result<_, _>>()?;
        Ok(pb::ListArticleRevisionsResponse { revisions, next_page_token })
    }

    async fn article_exists(&self, id: Uuid) -> Result<(), ApiError> {
        let found: Option<(Uuid,)> = sqlx::query_as("SELECT article_id FROM content.articles WHERE article_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        found.map(|_| ()).ok_or_else(|| ApiError::NotFound(format!("no article {id}")))
    }

    pub(crate) async fn query_get_article_revision(
        &self,
        req: &pb::GetArticleRevisionRequest,
        deadline: Instant,
    ) -> Result<pb::GetArticleRevisionResponse, ApiError> {
        let mut v = Violations::new();
        let id = validate::id(&mut v, "article_id", &req.article_id);
        let locale = validate::locale(&mut v, "locale", &req.locale);
        let (Some(id), Some(locale)) = (id, locale) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let row = sqlx::query(
            "SELECT locale, revision, author, written_at, translates, title, summary, body \
             FROM content.article_revisions WHERE article_id = $1 AND locale = $2 \
               AND revision = CASE WHEN $3 = 0 THEN (SELECT current_revision FROM content.article_versions \
                 WHERE article_id = $1 AND locale = $2) ELSE $3 END",
        )
        .bind(id)
        .bind(locale.as_str())
        .bind(i32::try_from(req.revision).unwrap_or(i32::MAX))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            self.article_exists(id).await?;
            return Err(ApiError::NotFound(format!("article {id} has no {locale} revision {}", req.revision)));
        };
        Ok(pb::GetArticleRevisionResponse { revision: Some(revision(&row, true)?) })
    }

    pub(crate) async fn query_get_article_source_diff(
        &self,
        req: &pb::GetArticleSourceDiffRequest,
        deadline: Instant,
    ) -> Result<pb::GetArticleSourceDiffResponse, ApiError> {
        let mut v = Violations::new();
        let id = validate::id(&mut v, "article_id", &req.article_id);
        let locale = if req.locale.is_empty() {
            Some(None)
        } else {
            validate::locale(&mut v, "locale", &req.locale).map(|l| Some(l.to_string()))
        };
        let (Some(id), Some(locale)) = (id, locale) else { return Err(v.into()) };
        if locale.is_none() && req.from_revision == 0 {
            v.add("from_revision", "is required without a locale");
            return Err(v.into());
        }
        self.at(req.min_position, deadline).await?;
        let article: Option<(Option<String>, i32)> =
            sqlx::query_as("SELECT source_locale, source_revision FROM content.articles WHERE article_id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let (Some(source), current) = article.ok_or_else(|| ApiError::NotFound(format!("no article {id}")))? else {
            return Err(ApiError::NotFound(format!("article {id} has no version yet")));
        };
        let current = u32::try_from(current).unwrap_or(0);
        let (from, to) = match &locale {
            Some(locale) => {
                let in_line: Option<(Option<i32>,)> = sqlx::query_as(
                    "SELECT in_line_with FROM content.article_versions WHERE article_id = $1 AND locale = $2",
                )
                .bind(id)
                .bind(locale)
                .fetch_optional(&self.pool)
                .await?;
                let Some((in_line,)) = in_line else {
                    return Err(ApiError::NotFound(format!("article {id} has no {locale} version")));
                };
                if *locale == source {
                    return Err(ApiError::Rejected {
                        kind: acasa_domain::RejectionKind::FailedPrecondition,
                        message: format!("{locale} is the source version, not a translation"),
                        rule: Some("NOT_A_TRANSLATION"),
                    });
                }
                (in_line.and_then(|n| u32::try_from(n).ok()).unwrap_or(0), current)
            }
            None => (req.from_revision, if req.to_revision == 0 { current } else { req.to_revision }),
        };
        let texts = sqlx::query(
            "SELECT revision, title, summary, body FROM content.article_revisions \
             WHERE article_id = $1 AND locale = $2 AND revision IN ($3, $4)",
        )
        .bind(id)
        .bind(&source)
        .bind(i32::try_from(from).unwrap_or(i32::MAX))
        .bind(i32::try_from(to).unwrap_or(i32::MAX))
        .fetch_all(&self.pool)
        .await?;
        let text_of = |n: u32| -> Result<Option<(String, String, String)>, sqlx::Error> {
            for r in &texts {
                if self::n(r, "revision")? == n {
                    return Ok(Some((r.try_get("title")?, r.try_get("summary")?, r.try_get("body")?)));
                }
            }
            Ok(None)
        };
        let (Some(old), Some(new)) = (text_of(from)?, text_of(to)?) else {
            let missing = if text_of(from)?.is_none() { from } else { to };
            return Err(ApiError::NotFound(format!("the source ({source}) has no revision {missing}")));
        };
        let mut changes = Vec::new();
        for (field, old, new) in [("title", &old.0, &new.0), ("summary", &old.1, &new.1), ("body", &old.2, &new.2)] {
            let d = diff::diff_lines(old, new);
            if !d.is_unchanged() {
                changes.push(pb::FieldDiff {
                    field: field.to_owned(),
                    unified: d.unified(DIFF_CONTEXT),
                    deleted: u32::try_from(d.deleted()).unwrap_or(u32::MAX),
                    inserted: u32::try_from(d.inserted()).unwrap_or(u32::MAX),
                });
            }
        }
        Ok(pb::GetArticleSourceDiffResponse { source_locale: source, from_revision: from, to_revision: to, changes })
    }

    pub(crate) async fn query_get_agreement_draft(
        &self,
        req: &pb::GetAgreementDraftRequest,
        deadline: Instant,
    ) -> Result<pb::GetAgreementDraftResponse, ApiError> {
        let mut v = Violations::new();
        let Some(id) = validate::id(&mut v, "agreement_id", &req.agreement_id) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let empty: Vec<String> = Vec::new();
        let row = sqlx::query(concat!(public::agreement_query!(), " WHERE a.agreement_id = $2"))
            .bind(&empty)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no agreement {id}")))?;
        let agreement = public::agreement(&row, None)?;
        let versions = sqlx::query(
            "SELECT v.locale, v.in_line_with, (v.locale = a.source_locale) AS is_source, a.source_revision \
             FROM content.agreement_versions v JOIN content.agreements a ON a.agreement_id = v.agreement_id \
             WHERE v.agreement_id = $1 ORDER BY (v.locale = a.source_locale) DESC, v.locale",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let revisions = sqlx::query(
            "SELECT locale, revision, author, written_at, translates, NULL::text AS title, summary \
             FROM content.agreement_summaries WHERE agreement_id = $1 ORDER BY locale, revision",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut summaries = Vec::with_capacity(versions.len());
        for r in &versions {
            let locale: String = r.try_get("locale")?;
            let source = r.try_get::<Option<bool>, _>("is_source")?.unwrap_or(false);
            let in_line_with = n(r, "in_line_with")?;
            let source_revision = n(r, "source_revision")?;
            let stale = !source && in_line_with < source_revision;
            let mut list = Vec::new();
            for rev in &revisions {
                if rev.try_get::<String, _>("locale")? == locale {
                    list.push(revision(rev, false)?);
                }
            }
            summaries.push(pb::SummaryVersion {
                locale,
                source,
                revisions: list,
                in_line_with: if source { 0 } else { in_line_with },
                stale,
                source_revision,
            });
        }
        Ok(pb::GetAgreementDraftResponse {
            agreement: Some(pb::AgreementDraft { agreement: Some(agreement), summaries }),
        })
    }

    /// The campaigns `ids` with their contents, in that order.
    async fn campaigns_of(&self, rows: &[PgRow]) -> Result<Vec<pb::Campaign>, ApiError> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.try_get("campaign_id")).collect::<Result<_, _>>()?;
        let contents = sqlx::query(
            "SELECT campaign_id, content FROM content.campaign_contents WHERE campaign_id = ANY($1) ORDER BY locale",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (r, id) in rows.iter().zip(&ids) {
            let target: Vec<u8> = r.try_get("target")?;
            let target = <pb::CampaignTarget as acasa_proto::Message>::decode(target.as_slice())
                .map_err(|e| ApiError::Internal(format!("read model: target: {e}")))?;
            let mut campaign_contents = Vec::new();
            for c in contents.iter().filter(|c| c.try_get::<Uuid, _>("campaign_id").ok() == Some(*id)) {
                let bytes: Vec<u8> = c.try_get("content")?;
                campaign_contents.push(
                    <pb::CampaignContent as acasa_proto::Message>::decode(bytes.as_slice())
                        .map_err(|e| ApiError::Internal(format!("read model: content: {e}")))?,
                );
            }
            let reach: serde_json::Value = r.try_get("reach")?;
            let reach = reach
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(locale, n)| pb::LanguageReach {
                            locale: locale.clone(),
                            recipients: n.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(pb::Campaign {
                campaign_id: id.to_string(),
                name: r.try_get("name")?,
                target: Some(target),
                contents: campaign_contents,
                state: i32::from(r.try_get::<i16, _>("state")?),
                send_at: ts(r.try_get("send_at")?),
                reach,
                created_by: r.try_get("created_by")?,
                created_at: ts(r.try_get("created_at")?),
                cancel_reason: r.try_get::<Option<String>, _>("cancel_reason")?.unwrap_or_default(),
            });
        }
        Ok(out)
    }

    pub(crate) async fn query_get_campaign(
        &self,
        req: &pb::GetCampaignRequest,
        deadline: Instant,
    ) -> Result<pb::GetCampaignResponse, ApiError> {
        let mut v = Violations::new();
        let Some(id) = validate::id(&mut v, "campaign_id", &req.campaign_id) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let rows =
            sqlx::query(concat!("SELECT ", campaign_columns!(), " FROM content.campaigns WHERE campaign_id = $1"))
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        let campaign =
            self.campaigns_of(&rows).await?.pop().ok_or_else(|| ApiError::NotFound(format!("no campaign {id}")))?;
        Ok(pb::GetCampaignResponse { campaign: Some(campaign) })
    }

    pub(crate) async fn query_list_campaigns(
        &self,
        req: &pb::ListCampaignsRequest,
        deadline: Instant,
    ) -> Result<pb::ListCampaignsResponse, ApiError> {
        let mut v = Violations::new();
        let state = validate::enum_filter(&mut v, "state", req.state, |n| {
            pb::CampaignState::try_from(n).ok().filter(|s| *s != pb::CampaignState::Unspecified)
        });
        let page = page::request::<Uuid>(&mut v, req.page_size, &req.page_token);
        let (Some(state), Some(page)) = (state, page) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            campaign_columns!(),
            " FROM content.campaigns WHERE ($1::smallint IS NULL OR state = $1) \
             AND ($2::uuid IS NULL OR campaign_id < $2) ORDER BY campaign_id DESC LIMIT $3"
        ))
        .bind(state)
        .bind(page.after)
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await?;
        let (rows, next_page_token) = page.cut(rows, |r| r.try_get::<Uuid, _>("campaign_id").unwrap_or_default());
        Ok(pb::ListCampaignsResponse { campaigns: self.campaigns_of(&rows).await?, next_page_token })
    }

    pub(crate) async fn query_get_campaign_reach(
        &self,
        req: &pb::GetCampaignReachRequest,
        deadline: Instant,
    ) -> Result<pb::GetCampaignReachResponse, ApiError> {
        use crate::outbox::status;
        let mut v = Violations::new();
        let Some(id) = validate::id(&mut v, "campaign_id", &req.campaign_id) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let exists: Option<(Uuid,)> =
            sqlx::query_as("SELECT campaign_id FROM content.campaigns WHERE campaign_id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        if exists.is_none() {
            return Err(ApiError::NotFound(format!("no campaign {id}")));
        }
        let rows = sqlx::query(
            "SELECT country, locale, count(*) AS recipients, \
               count(*) FILTER (WHERE status = $2) AS sent, count(*) FILTER (WHERE status = $3) AS withdrawn, \
               count(*) FILTER (WHERE status = $4) AS erased, count(*) FILTER (WHERE status = $5) AS failed, \
               count(*) FILTER (WHERE status = $6) AS uncertain, count(*) FILTER (WHERE status = $7) AS pending \
             FROM content.deliveries WHERE campaign_id = $1 GROUP BY country, locale ORDER BY country, locale",
        )
        .bind(id)
        .bind(status::SENT)
        .bind(status::NO_CONSENT)
        .bind(status::ERASED)
        .bind(status::FAILED)
        .bind(status::UNCERTAIN)
        .bind(status::PENDING)
        .fetch_all(&self.pool)
        .await?;
        let count = |r: &PgRow, c: &str| -> Result<u32, sqlx::Error> {
            Ok(u32::try_from(r.try_get::<i64, _>(c)?).unwrap_or(u32::MAX))
        };
        let mut total = pb::ReachRow::default();
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let row = pb::ReachRow {
                country: r.try_get("country")?,
                locale: r.try_get("locale")?,
                recipients: count(r, "recipients")?,
                sent: count(r, "sent")?,
                consent_withdrawn: count(r, "withdrawn")?,
                erased: count(r, "erased")?,
                failed: count(r, "failed")?,
                uncertain: count(r, "uncertain")?,
                pending: count(r, "pending")?,
            };
            total.recipients += row.recipients;
            total.sent += row.sent;
            total.consent_withdrawn += row.consent_withdrawn;
            total.erased += row.erased;
            total.failed += row.failed;
            total.uncertain += row.uncertain;
            total.pending += row.pending;
            out.push(row);
        }
        Ok(pb::GetCampaignReachResponse { rows: out, total: Some(total) })
    }

    pub(crate) async fn query_list_campaign_deliveries(
        &self,
        req: &pb::ListCampaignDeliveriesRequest,
        deadline: Instant,
    ) -> Result<pb::ListCampaignDeliveriesResponse, ApiError> {
        let mut v = Violations::new();
        let id = validate::id(&mut v, "campaign_id", &req.campaign_id);
        let page = page::request::<Uuid>(&mut v, req.page_size, &req.page_token);
        let (Some(id), Some(page)) = (id, page) else { return Err(v.into()) };
        self.at(req.min_position, deadline).await?;
        let rows = sqlx::query(
            "SELECT person_id, locale, country, status, recorded_at, sent_at, attempts, error \
             FROM content.deliveries WHERE campaign_id = $1 AND ($2::uuid IS NULL OR person_id > $2) \
             ORDER BY person_id LIMIT $3",
        )
        .bind(id)
        .bind(page.after)
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await?;
        let (rows, next_page_token) = page.cut(rows, |r| r.try_get::<Uuid, _>("person_id").unwrap_or_default());
        let mut deliveries = Vec::with_capacity(rows.len());
        for r in &rows {
            deliveries.push(pb::CampaignDelivery {
                person_id: r.try_get::<Uuid, _>("person_id")?.to_string(),
                locale: r.try_get("locale")?,
                country: r.try_get("country")?,
                status: i32::from(r.try_get::<i16, _>("status")?),
                recorded_at: ts(r.try_get("recorded_at")?),
                sent_at: ts(r.try_get("sent_at")?),
                attempts: u32::try_from(r.try_get::<i32, _>("attempts")?).unwrap_or(0),
                error: r.try_get::<Option<String>, _>("error")?.unwrap_or_default(),
            });
        }
        Ok(pb::ListCampaignDeliveriesResponse { deliveries, next_page_token })
    }
}
