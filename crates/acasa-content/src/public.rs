//! The public reads: no login, only what is published and unexpired at the
//! moment of the call (`content.published`, checked against `now()` in the
//! query, so an expiry holds even before the deadline worker records it).
//!
//! **Fallback.** Each read resolves the reader's locale to its chain
//! ([`FallbackChain::candidates`]: the locale, its ancestors, its rule's
//! chain, the default chain) and serves, per article, the first locale of
//! the chain that is live; the answer says which ([`pb::Served`]).
//!
//! **Search** finds matches first, through the text-search index, each
//! chain locale with its own language's configuration
//! ([`search::ts_config`]), then keeps a match only if no earlier locale of
//! the chain serves that article: the reader searches the articles as they
//! would read them.
//!
//! **Bounds.** Page sizes (at most [`PAGE_MAX`]), query length and terms
//! ([`search::search_terms`]), at most [`SEARCH_MAX`] matches paged
//! through, and the per-client rate (in [`crate::grpc`]).

use acasa_domain::Violations;
use acasa_proto::content::v1 as pb;
use acasa_runtime::{ApiError, page};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Row as _, postgres::PgRow};
use uuid::Uuid;

use crate::{
    domain::{locale::Locale, search},
    grpc::PublicContentService,
    validate,
};

/// Default public page size.
pub const PAGE_DEFAULT: i32 = 20;
/// Largest public page.
pub const PAGE_MAX: i32 = 50;
/// Most search matches a reader can page through.
pub const SEARCH_MAX: i64 = 500;

/// Whether a `content.published` row `p` is live at the query's `now()`.
macro_rules! live {
    ($p:literal) => {
        concat!("(", $p, ".published_at <= now() AND (", $p, ".expire_at IS NULL OR ", $p, ".expire_at > now()))")
    };
}

/// The columns of an article listing, over `p` (published), `a`
/// (articles), `v` (the served version).
macro_rules! listing_columns {
    () => {
        "p.article_id, p.slug, p.topic, p.countries, p.locale, p.title, p.summary, p.published_at, \
         (p.locale <> a.source_locale AND COALESCE(v.in_line_with, 0) < a.source_revision) AS outdated"
    };
}

/// An agreement with its summary in the first locale of the chain `$1`
/// that has one (none: `$1` empty means the source locale).
macro_rules! agreement_query {
    () => {
        "SELECT a.agreement_id, a.country, a.kind, a.title, a.status, a.status_since, a.history, a.links, \
           s.locale AS summary_locale, s.summary, \
           (s.locale <> a.source_locale AND COALESCE(sv.in_line_with, 0) < a.source_revision) AS outdated \
         FROM content.agreements a \
         LEFT JOIN LATERAL (SELECT av.locale, av.current_revision, av.in_line_with \
             FROM content.agreement_versions av \
             LEFT JOIN unnest($1::text[]) WITH ORDINALITY AS c(locale, pos) ON c.locale = av.locale \
             WHERE av.agreement_id = a.agreement_id \
               AND (c.pos IS NOT NULL OR (cardinality($1::text[]) = 0 AND av.locale = a.source_locale)) \
             ORDER BY c.pos NULLS LAST LIMIT 1) sv ON true \
         LEFT JOIN content.agreement_summaries s ON s.agreement_id = a.agreement_id \
             AND s.locale = sv.locale AND s.revision = sv.current_revision"
    };
}
pub(crate) use agreement_query;

/// The locales tried for a reader, in order.
pub(crate) struct Chain {
    requested: String,
    locales: Vec<String>,
}

impl Chain {
    fn served(&self, locale: &str) -> Option<pb::Served> {
        Some(pb::Served {
            requested_locale: self.requested.clone(),
            served_locale: locale.to_owned(),
            fallback: locale != self.requested,
            chain: self.locales.clone(),
        })
    }
}

fn topic_of(r: &PgRow) -> Result<i32, sqlx::Error> {
    Ok(i32::from(r.try_get::<i16, _>("topic")?))
}

fn listing(r: &PgRow, chain: &Chain) -> Result<pb::ArticleListing, sqlx::Error> {
    let locale: String = r.try_get("locale")?;
    Ok(pb::ArticleListing {
        article_id: r.try_get::<Uuid, _>("article_id")?.to_string(),
        slug: r.try_get("slug")?,
        topic: topic_of(r)?,
        countries: r.try_get("countries")?,
        served: chain.served(&locale),
        title: r.try_get("title")?,
        summary: r.try_get("summary")?,
        published_at: Some(acasa_proto::time::timestamp(r.try_get("published_at")?)),
        outdated: r.try_get::<Option<bool>, _>("outdated")?.unwrap_or(false),
    })
}

impl PublicContentService {
    fn chain(&self, v: &mut Violations, locale: &str) -> Option<Chain> {
        let requested = validate::reader_locale(v, locale)?;
        let locales = self.chain.candidates(&requested).iter().map(ToString::to_string).collect();
        Some(Chain { requested: requested.to_string(), locales })
    }

    pub(crate) async fn get_article(&self, req: &pb::GetArticleRequest) -> Result<pb::GetArticleResponse, ApiError> {
        let mut v = Violations::new();
        let slug = validate::slug(&mut v, "slug", &req.slug);
        let chain = self.chain(&mut v, &req.locale);
        let (Some(slug), Some(chain)) = (slug, chain) else { return Err(v.into()) };
        let row = sqlx::query(concat!(
            "SELECT ",
            listing_columns!(),
            ", p.body_html, p.body_text, p.revision, p.expire_at, \
             ARRAY(SELECT o.locale FROM content.published o WHERE o.article_id = p.article_id AND ",
            live!("o"),
            " ORDER BY o.locale) AS available \
             FROM content.published p JOIN content.articles a ON a.article_id = p.article_id \
             JOIN content.article_versions v ON v.article_id = p.article_id AND v.locale = p.locale \
             WHERE p.slug = $1 AND p.locale = ANY($2) AND ",
            live!("p"),
            " ORDER BY array_position($2, p.locale) LIMIT 1"
        ))
        .bind(&slug)
        .bind(&chain.locales)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!("no article `{slug}` is published in {}", chain.locales.join(", ")))
        })?;
        let l = listing(&row, &chain)?;
        Ok(pb::GetArticleResponse {
            article: Some(pb::PublishedArticle {
                article_id: l.article_id,
                slug: l.slug,
                topic: l.topic,
                countries: l.countries,
                served: l.served,
                title: l.title,
                summary: l.summary,
                body_html: row.try_get("body_html")?,
                body_text: row.try_get("body_text")?,
                revision: u32::try_from(row.try_get::<i32, _>("revision")?).unwrap_or(0),
                published_at: l.published_at,
                expires_at: row.try_get::<Option<DateTime<Utc>>, _>("expire_at")?.map(acasa_proto::time::timestamp),
                outdated: l.outdated,
                available_locales: row.try_get("available")?,
            }),
        })
    }

    pub(crate) async fn list_articles(
        &self,
        req: &pb::ListArticlesRequest,
    ) -> Result<pb::ListArticlesResponse, ApiError> {
        let mut v = Violations::new();
        let chain = self.chain(&mut v, &req.locale);
        let country = validate::country_filter(&mut v, &req.country);
        let topic = validate::topic_filter(&mut v, req.topic);
        let page = page::request_within::<Uuid>(&mut v, req.page_size, &req.page_token, PAGE_DEFAULT, PAGE_MAX);
        let (Some(chain), Some(country), Some(topic), Some(page)) = (chain, country, topic, page) else {
            return Err(v.into());
        };
        let rows = sqlx::query(concat!(
            "SELECT DISTINCT ON (p.article_id) ",
            listing_columns!(),
            " FROM content.published p JOIN content.articles a ON a.article_id = p.article_id \
             JOIN content.article_versions v ON v.article_id = p.article_id AND v.locale = p.locale \
             WHERE p.locale = ANY($1) AND ",
            live!("p"),
            " AND ($2::text IS NULL OR p.countries = '{}' OR $2 = ANY(p.countries)) \
             AND ($3::smallint IS NULL OR p.topic = $3) AND ($4::uuid IS NULL OR p.article_id < $4) \
             ORDER BY p.article_id DESC, array_position($1, p.locale) LIMIT $5"
        ))
        .bind(&chain.locales)
        .bind(country)
        .bind(topic)
        .bind(page.after)
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await?;
        let (rows, next_page_token) = page.cut(rows, |r| r.try_get::<Uuid, _>("article_id").unwrap_or_default());
        let articles = rows.iter().map(|r| listing(r, &chain)).collect::<Result<_, _>>()?;
        Ok(pb::ListArticlesResponse { articles, next_page_token })
    }

    pub(crate) async fn search_articles(
        &self,
        req: &pb::SearchArticlesRequest,
    ) -> Result<pb::SearchArticlesResponse, ApiError> {
        let mut v = Violations::new();
        let query = v.check("query", search::search_terms(&req.query));
        let chain = self.chain(&mut v, &req.locale);
        let country = validate::country_filter(&mut v, &req.country);
        let topic = validate::topic_filter(&mut v, req.topic);
        let page = page::request_within::<(i32, Uuid)>(&mut v, req.page_size, &req.page_token, PAGE_DEFAULT, PAGE_MAX);
        let (Some(query), Some(chain), Some(country), Some(topic), Some(page)) = (query, chain, country, topic, page)
        else {
            return Err(v.into());
        };
        let offset = page.after.map_or(0, |(o, _)| i64::from(o.max(0)));
        if offset >= SEARCH_MAX {
            return Ok(pb::SearchArticlesResponse {
                articles: Vec::new(),
                next_page_token: String::new(),
                configurations: Vec::new(),
            });
        }
        let configs: Vec<&'static str> = chain
            .locales
            .iter()
            .map(|l| Locale::parse(l).map_or(search::FALLBACK_CONFIG, |l| search::ts_config(&l)))
            .collect();
        let limit = page.limit().min(SEARCH_MAX - offset + 1);
        // Every match is ranked (its vector is kept in the row: migration
        // 20261201000010), sorted, then walked best first: a match in the
        // chain's first locale is served; a later one only if no earlier
        // locale of the chain is live for the article, checked one match at
        // a time as the walk goes, so only until the page is full (`OFFSET
        // 0` keeps the sorted matches a subquery, the check above it). Only the
        // page's rows are joined for their columns (every published version
        // has its article and version rows, so the joins drop nothing). The
        // chain is materialised so each query is parsed once per locale, not
        // once per match. A query matching most articles still costs in
        // proportion to its matches (`make bench`: ~10 ms for 5,000).
        let rows = sqlx::query(concat!(
            "WITH chain AS MATERIALIZED (SELECT c.locale, c.pos, websearch_to_tsquery(c.cfg::regconfig, $3) AS q \
               FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS c(locale, cfg, pos)), \
             page AS (SELECT h.article_id, h.locale, h.rank FROM \
               (SELECT p.article_id, p.locale, c.pos, ts_rank_cd(p.tsv, c.q) AS rank \
                 FROM chain c JOIN content.published p ON p.locale = c.locale AND p.tsv @@ c.q \
                 WHERE ",
            live!("p"),
            " AND ($4::text IS NULL OR p.countries = '{}' OR $4 = ANY(p.countries)) \
                 AND ($5::smallint IS NULL OR p.topic = $5) \
                 ORDER BY rank DESC, p.article_id DESC OFFSET 0) h \
               WHERE h.pos = 1 OR NOT EXISTS (SELECT 1 FROM unnest(($1::text[])[1:h.pos - 1]) AS e(locale) \
                 JOIN content.published x ON x.article_id = h.article_id AND x.locale = e.locale WHERE ",
            live!("x"),
            ") ORDER BY h.rank DESC, h.article_id DESC OFFSET $6 LIMIT $7) \
             SELECT ",
            listing_columns!(),
            ", h.rank FROM page h \
             JOIN content.published p ON p.article_id = h.article_id AND p.locale = h.locale \
             JOIN content.articles a ON a.article_id = p.article_id \
             JOIN content.article_versions v ON v.article_id = p.article_id AND v.locale = p.locale \
             ORDER BY h.rank DESC, p.article_id DESC"
        ))
        .bind(&chain.locales)
        .bind(&configs)
        .bind(&query)
        .bind(country)
        .bind(topic)
        .bind(offset)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let size = usize::try_from(page.size).unwrap_or(0);
        let more = rows.len() > size && offset + page.size < SEARCH_MAX;
        let served: Vec<String> = rows.iter().filter_map(|r| r.try_get::<String, _>("locale").ok()).collect();
        let articles: Vec<pb::ArticleListing> =
            rows.iter().take(size).map(|r| listing(r, &chain)).collect::<Result<_, _>>()?;
        let next_page_token = if more {
            page::token(&(i32::try_from(offset + page.size).unwrap_or(i32::MAX), Uuid::nil()))
        } else {
            String::new()
        };
        let mut configurations: Vec<String> = chain
            .locales
            .iter()
            .zip(&configs)
            .filter(|(l, _)| served.contains(l))
            .map(|(l, c)| format!("{l}={c}"))
            .collect();
        if configurations.is_empty() {
            configurations = chain.locales.iter().zip(&configs).map(|(l, c)| format!("{l}={c}")).collect();
        }
        Ok(pb::SearchArticlesResponse { articles, next_page_token, configurations })
    }

    pub(crate) async fn get_agreement(
        &self,
        req: &pb::GetAgreementRequest,
    ) -> Result<pb::GetAgreementResponse, ApiError> {
        let mut v = Violations::new();
        let id = validate::id(&mut v, "agreement_id", &req.agreement_id);
        let chain = self.chain(&mut v, &req.locale);
        let (Some(id), Some(chain)) = (id, chain) else { return Err(v.into()) };
        let row = sqlx::query(concat!(agreement_query!(), " WHERE a.agreement_id = $2"))
            .bind(&chain.locales)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no agreement {id}")))?;
        Ok(pb::GetAgreementResponse { agreement: Some(agreement(&row, Some(&chain))?) })
    }

    pub(crate) async fn list_agreements(
        &self,
        req: &pb::ListAgreementsRequest,
    ) -> Result<pb::ListAgreementsResponse, ApiError> {
        let mut v = Violations::new();
        let chain = self.chain(&mut v, &req.locale);
        let country = validate::country_filter(&mut v, &req.country);
        let kind = validate::enum_filter(&mut v, "kind", req.kind, crate::codec::kind_from_pb);
        let status = validate::enum_filter(&mut v, "status", req.status, crate::codec::status_from_pb);
        let page = page::request_within::<(i32, Uuid)>(&mut v, req.page_size, &req.page_token, PAGE_DEFAULT, PAGE_MAX);
        let (Some(chain), Some(country), Some(kind), Some(status), Some(page)) = (chain, country, kind, status, page)
        else {
            return Err(v.into());
        };
        let offset = page.after.map_or(0, |(o, _)| i64::from(o.max(0)));
        let rows = sqlx::query(concat!(
            agreement_query!(),
            " WHERE ($2::text IS NULL OR a.country = $2) AND ($3::smallint IS NULL OR a.kind = $3) \
             AND ($4::smallint IS NULL OR a.status = $4) \
             ORDER BY a.country, a.title, a.agreement_id OFFSET $5 LIMIT $6"
        ))
        .bind(&chain.locales)
        .bind(country)
        .bind(kind)
        .bind(status)
        .bind(offset)
        .bind(page.limit())
        .fetch_all(&self.pool)
        .await?;
        let size = usize::try_from(page.size).unwrap_or(0);
        let next_page_token = if rows.len() > size {
            page::token(&(i32::try_from(offset + page.size).unwrap_or(i32::MAX), Uuid::nil()))
        } else {
            String::new()
        };
        let agreements = rows.iter().take(size).map(|r| agreement(r, Some(&chain))).collect::<Result<_, _>>()?;
        Ok(pb::ListAgreementsResponse { agreements, next_page_token })
    }
}

/// An agreement row of [`agreement_query`] for a reader of `chain` (none:
/// an editor, served the source).
pub(crate) fn agreement(r: &PgRow, chain: Option<&Chain>) -> Result<pb::PublishedAgreement, ApiError> {
    let history: serde_json::Value = r.try_get("history")?;
    let history = history
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|h| {
                    let status = i32::try_from(h.get("status")?.as_i64()?).ok()?;
                    let on = NaiveDate::parse_from_str(h.get("on")?.as_str()?, "%Y-%m-%d").ok()?;
                    Some(pb::StatusChange { status, on: Some(acasa_proto::time::date(on)) })
                })
                .collect()
        })
        .unwrap_or_default();
    let locale: Option<String> = r.try_get("summary_locale")?;
    Ok(pb::PublishedAgreement {
        agreement_id: r.try_get::<Uuid, _>("agreement_id")?.to_string(),
        country: r.try_get("country")?,
        kind: i32::from(r.try_get::<i16, _>("kind")?),
        title: r.try_get("title")?,
        status: i32::from(r.try_get::<i16, _>("status")?),
        status_since: Some(acasa_proto::time::date(r.try_get("status_since")?)),
        history,
        links: r.try_get("links")?,
        served: match (&locale, chain) {
            (Some(l), Some(chain)) => chain.served(l),
            (Some(l), None) => Some(pb::Served {
                requested_locale: l.clone(),
                served_locale: l.clone(),
                fallback: false,
                chain: vec![l.clone()],
            }),
            (None, _) => None,
        },
        summary: r.try_get::<Option<String>, _>("summary")?.unwrap_or_default(),
        outdated: r.try_get::<Option<bool>, _>("outdated")?.unwrap_or(false),
    })
}
