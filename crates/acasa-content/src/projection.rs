//! The content read models (`content.*`), built from the service's log by
//! the projection `content.content`: articles with every revision and each
//! version's workflow, what readers get (`content.published`: one row per
//! live version, rendered safely, with its text-search vector), and the
//! agreements catalogue with every summary revision.
//!
//! Each event is applied as the aggregate evolves it (`domain::article`,
//! `domain::agreement`), so the read model says what the aggregate would.

use acasa_domain::{Aggregate as _, EventCodec as _};
use acasa_eventstore::StoredCommit;
use acasa_projection::{ApplyError, Projection};
use acasa_proto::Message as _;
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    codec,
    domain::{
        agreement::{Agreement, AgreementEvent},
        article::{Article, ArticleEvent, State},
        campaign::{Campaign, CampaignEvent, CampaignState},
        locale::Locale,
        render, search,
    },
};

/// Builds the service's read models from its log.
#[derive(Clone, Copy, Debug, Default)]
pub struct ContentProjection;

fn poison(e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Poison(e.to_string())
}

fn position(c: &StoredCommit) -> i64 {
    i64::try_from(c.sequence).unwrap_or(i64::MAX)
}

fn n(x: u32) -> i32 {
    i32::try_from(x).unwrap_or(i32::MAX)
}

fn state(s: State) -> i16 {
    codec::state_to_pb(s) as i16
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Article,
    Agreement,
    Campaign,
}

/// The kind and id of a commit's subject (`acasa.content.<kind>.<id>`);
/// `None` for a subject this projection does not read.
fn subject(s: &str) -> Result<Option<(Kind, Uuid)>, ApplyError> {
    let Some(rest) =
        s.strip_prefix("acasa.").and_then(|r| r.strip_prefix(crate::SERVICE)).and_then(|r| r.strip_prefix('.'))
    else {
        return Ok(None);
    };
    let Some((kind, id)) = rest.split_once('.') else { return Ok(None) };
    let kind = match kind {
        k if k == Article::KIND => Kind::Article,
        k if k == Agreement::KIND => Kind::Agreement,
        k if k == Campaign::KIND => Kind::Campaign,
        _ => return Ok(None),
    };
    let id = Uuid::parse_str(id).map_err(|_| poison(format!("subject {s} names an id that is not a UUID")))?;
    Ok(Some((kind, id)))
}

impl Projection for ContentProjection {
    fn name(&self) -> &str {
        crate::PROJECTION
    }

    fn reset<'c>(&'c self, conn: &'c mut PgConnection) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query(
                "TRUNCATE content.articles, content.article_revisions, content.article_versions, \
                 content.published, content.agreements, content.agreement_summaries, content.agreement_versions, \
                 content.campaigns, content.campaign_contents",
            )
            .execute(conn)
            .await?;
            Ok(())
        })
    }

    fn apply<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        commits: &'c [StoredCommit],
    ) -> BoxFuture<'c, Result<(), ApplyError>> {
        Box::pin(async move {
            for c in commits {
                let Some((kind, id)) = subject(&c.subject)? else { continue };
                let at = Applied { id, position: position(c) };
                for e in &c.events {
                    match kind {
                        Kind::Article => at.article(conn, &ArticleEvent::decode(e).map_err(poison)?).await?,
                        Kind::Agreement => at.agreement(conn, &AgreementEvent::decode(e).map_err(poison)?).await?,
                        Kind::Campaign => at.campaign(conn, &CampaignEvent::decode(e).map_err(poison)?).await?,
                    }
                }
            }
            Ok(())
        })
    }
}

/// The aggregate a commit is about, and the commit's stream position.
#[derive(Clone, Copy)]
struct Applied {
    id: Uuid,
    position: i64,
}

impl Applied {
    async fn article(self, conn: &mut PgConnection, e: &ArticleEvent) -> Result<(), ApplyError> {
        use ArticleEvent as E;
        let Self { id, position } = self;
        match e {
            E::Created(new, stamp) => {
                sqlx::query(
                    "INSERT INTO content.articles (article_id, slug, topic, countries, created_by, created_at, position) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (article_id) DO NOTHING",
                )
                .bind(id)
                .bind(&new.slug)
                .bind(codec::topic_to_pb(new.topic) as i16)
                .bind(&new.countries)
                .bind(&stamp.by)
                .bind(stamp.at)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::Retagged { topic, countries, .. } => {
                let topic = codec::topic_to_pb(*topic) as i16;
                sqlx::query(
                    "UPDATE content.articles SET topic = $2, countries = $3, position = $4 WHERE article_id = $1",
                )
                .bind(id)
                .bind(topic)
                .bind(countries)
                .bind(position)
                .execute(&mut *conn)
                .await?;
                sqlx::query("UPDATE content.published SET topic = $2, countries = $3 WHERE article_id = $1")
                    .bind(id)
                    .bind(topic)
                    .bind(countries)
                    .execute(&mut *conn)
                    .await?;
            }
            E::SlugChanged { slug, .. } => {
                sqlx::query("UPDATE content.articles SET slug = $2, position = $3 WHERE article_id = $1")
                    .bind(id)
                    .bind(slug)
                    .bind(position)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("UPDATE content.published SET slug = $2 WHERE article_id = $1")
                    .bind(id)
                    .bind(slug)
                    .execute(&mut *conn)
                    .await?;
            }
            E::Revised { locale, revision, text, translates, stamp } => {
                sqlx::query(
                    "INSERT INTO content.article_revisions \
                     (article_id, locale, revision, author, written_at, translates, title, summary, body) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(locale)
                .bind(n(*revision))
                .bind(&stamp.by)
                .bind(stamp.at)
                .bind(translates.map(n))
                .bind(&text.title)
                .bind(&text.summary)
                .bind(&text.body)
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "INSERT INTO content.article_versions (article_id, locale, state, current_revision, in_line_with) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (article_id, locale) DO UPDATE \
                     SET state = $3, current_revision = $4, in_line_with = $5",
                )
                .bind(id)
                .bind(locale)
                .bind(state(State::Draft))
                .bind(n(*revision))
                .bind(translates.map(n))
                .execute(&mut *conn)
                .await?;
                // The first version's locale is the source.
                sqlx::query(
                    "UPDATE content.articles SET source_locale = COALESCE(source_locale, $2), \
                     source_revision = CASE WHEN COALESCE(source_locale, $2) = $2 THEN $3 ELSE source_revision END, \
                     position = $4 WHERE article_id = $1",
                )
                .bind(id)
                .bind(locale)
                .bind(n(*revision))
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::Submitted { locale, .. } => self.set_state(conn, locale, State::InReview).await?,
            E::ChangesRequested { locale, .. } => self.set_state(conn, locale, State::Draft).await?,
            E::Approved { locale, revision, stamp } => {
                sqlx::query(
                    "UPDATE content.article_versions SET approved_revision = $3, approved_by = $4 \
                     WHERE article_id = $1 AND locale = $2",
                )
                .bind(id)
                .bind(locale)
                .bind(n(*revision))
                .bind(&stamp.by)
                .execute(&mut *conn)
                .await?;
            }
            E::Published { locale, revision, stamp, .. } => {
                sqlx::query(
                    "UPDATE content.article_versions SET state = $3, live_revision = $4, live_since = $5, \
                     publish_at = NULL WHERE article_id = $1 AND locale = $2",
                )
                .bind(id)
                .bind(locale)
                .bind(state(State::Published))
                .bind(n(*revision))
                .bind(stamp.at)
                .execute(&mut *conn)
                .await?;
                self.publish(conn, locale, *revision, stamp.at).await?;
            }
            E::Unpublished { locale, .. } | E::Expired { locale, .. } => {
                let expired = matches!(e, E::Expired { .. });
                sqlx::query(
                    "UPDATE content.article_versions SET live_revision = NULL, live_since = NULL, \
                     expire_at = CASE WHEN $4 THEN NULL ELSE expire_at END, \
                     state = CASE WHEN state = $3 THEN $5 ELSE state END WHERE article_id = $1 AND locale = $2",
                )
                .bind(id)
                .bind(locale)
                .bind(state(State::Published))
                .bind(expired)
                .bind(state(State::Unpublished))
                .execute(&mut *conn)
                .await?;
                sqlx::query("DELETE FROM content.published WHERE article_id = $1 AND locale = $2")
                    .bind(id)
                    .bind(locale)
                    .execute(&mut *conn)
                    .await?;
            }
            E::Scheduled { locale, publish_at, expire_at, .. } => {
                sqlx::query(
                    "UPDATE content.article_versions SET publish_at = $3, expire_at = $4 \
                     WHERE article_id = $1 AND locale = $2",
                )
                .bind(id)
                .bind(locale)
                .bind(publish_at)
                .bind(expire_at)
                .execute(&mut *conn)
                .await?;
                sqlx::query("UPDATE content.published SET expire_at = $3 WHERE article_id = $1 AND locale = $2")
                    .bind(id)
                    .bind(locale)
                    .bind(expire_at)
                    .execute(&mut *conn)
                    .await?;
            }
            E::TranslationConfirmed { locale, source_revision, .. } => {
                sqlx::query(
                    "UPDATE content.article_versions SET in_line_with = GREATEST(COALESCE(in_line_with, 0), $3) \
                     WHERE article_id = $1 AND locale = $2",
                )
                .bind(id)
                .bind(locale)
                .bind(n(*source_revision))
                .execute(&mut *conn)
                .await?;
            }
        }
        Ok(())
    }

    async fn set_state(self, conn: &mut PgConnection, locale: &str, s: State) -> Result<(), ApplyError> {
        sqlx::query("UPDATE content.article_versions SET state = $3 WHERE article_id = $1 AND locale = $2")
            .bind(self.id)
            .bind(locale)
            .bind(state(s))
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Makes `revision` of `locale` what readers get: rendered safely, with
    /// its language's text-search vector (title weighted above summary
    /// above body).
    async fn publish(
        self,
        conn: &mut PgConnection,
        locale: &str,
        revision: u32,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), ApplyError> {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT title, summary, body FROM content.article_revisions \
             WHERE article_id = $1 AND locale = $2 AND revision = $3",
        )
        .bind(self.id)
        .bind(locale)
        .bind(n(revision))
        .fetch_optional(&mut *conn)
        .await?;
        let Some((title, summary, body)) = row else {
            return Err(poison(format!("article {} publishes {locale} revision {revision} never written", self.id)));
        };
        let config = Locale::parse(locale).map(|l| search::ts_config(&l)).unwrap_or(search::FALLBACK_CONFIG);
        let body_text = render::to_plain_text(&body);
        sqlx::query(
            "INSERT INTO content.published (article_id, locale, slug, topic, countries, revision, title, summary, \
             body_html, body_text, published_at, expire_at, ts_config, tsv) \
             SELECT a.article_id, $2, a.slug, a.topic, a.countries, $3, $4, $5, $6, $7, $8, v.expire_at, \
                    $9::regconfig, \
                    setweight(to_tsvector($9::regconfig, $4), 'A') || \
                    setweight(to_tsvector($9::regconfig, $5), 'B') || \
                    setweight(to_tsvector($9::regconfig, $7), 'C') \
             FROM content.articles a JOIN content.article_versions v ON v.article_id = a.article_id AND v.locale = $2 \
             WHERE a.article_id = $1 \
             ON CONFLICT (article_id, locale) DO UPDATE SET slug = EXCLUDED.slug, topic = EXCLUDED.topic, \
               countries = EXCLUDED.countries, revision = EXCLUDED.revision, title = EXCLUDED.title, \
               summary = EXCLUDED.summary, body_html = EXCLUDED.body_html, body_text = EXCLUDED.body_text, \
               published_at = EXCLUDED.published_at, expire_at = EXCLUDED.expire_at, \
               ts_config = EXCLUDED.ts_config, tsv = EXCLUDED.tsv",
        )
        .bind(self.id)
        .bind(locale)
        .bind(n(revision))
        .bind(&title)
        .bind(&summary)
        .bind(render::to_html(&body))
        .bind(&body_text)
        .bind(at)
        .bind(config)
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn agreement(self, conn: &mut PgConnection, e: &AgreementEvent) -> Result<(), ApplyError> {
        use AgreementEvent as E;
        let Self { id, position } = self;
        match e {
            E::Created(new, stamp) => {
                let status = codec::status_to_pb(new.status) as i16;
                sqlx::query(
                    "INSERT INTO content.agreements (agreement_id, country, kind, title, status, status_since, \
                     history, created_at, position) \
                     VALUES ($1, $2, $3, $4, $5, $6, jsonb_build_array(jsonb_build_object('status', $5, 'on', $6)), \
                     $7, $8) ON CONFLICT (agreement_id) DO NOTHING",
                )
                .bind(id)
                .bind(&new.country)
                .bind(codec::kind_to_pb(new.kind) as i16)
                .bind(&new.title)
                .bind(status)
                .bind(new.on)
                .bind(stamp.at)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::Renamed { title, .. } => {
                sqlx::query("UPDATE content.agreements SET title = $2, position = $3 WHERE agreement_id = $1")
                    .bind(id)
                    .bind(title)
                    .bind(position)
                    .execute(&mut *conn)
                    .await?;
            }
            E::StatusChanged { to, on, .. } => {
                sqlx::query(
                    "UPDATE content.agreements SET status = $2, status_since = $3, \
                     history = history || jsonb_build_array(jsonb_build_object('status', $2, 'on', $3)), \
                     position = $4 WHERE agreement_id = $1",
                )
                .bind(id)
                .bind(codec::status_to_pb(*to) as i16)
                .bind(on)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::LinkAdded { url, .. } => {
                sqlx::query(
                    "UPDATE content.agreements SET links = array_append(array_remove(links, $2), $2), position = $3 \
                     WHERE agreement_id = $1",
                )
                .bind(id)
                .bind(url)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::LinkRemoved { url, .. } => {
                sqlx::query(
                    "UPDATE content.agreements SET links = array_remove(links, $2), position = $3 \
                     WHERE agreement_id = $1",
                )
                .bind(id)
                .bind(url)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::SummaryRevised { locale, revision, text, translates, stamp } => {
                sqlx::query(
                    "INSERT INTO content.agreement_summaries \
                     (agreement_id, locale, revision, author, written_at, translates, summary) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(locale)
                .bind(n(*revision))
                .bind(&stamp.by)
                .bind(stamp.at)
                .bind(translates.map(n))
                .bind(text)
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "INSERT INTO content.agreement_versions (agreement_id, locale, current_revision, in_line_with) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (agreement_id, locale) DO UPDATE \
                     SET current_revision = $3, in_line_with = $4",
                )
                .bind(id)
                .bind(locale)
                .bind(n(*revision))
                .bind(translates.map(n))
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "UPDATE content.agreements SET source_locale = COALESCE(source_locale, $2), \
                     source_revision = CASE WHEN COALESCE(source_locale, $2) = $2 THEN $3 ELSE source_revision END, \
                     position = $4 WHERE agreement_id = $1",
                )
                .bind(id)
                .bind(locale)
                .bind(n(*revision))
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::TranslationConfirmed { locale, source_revision, .. } => {
                sqlx::query(
                    "UPDATE content.agreement_versions SET in_line_with = GREATEST(COALESCE(in_line_with, 0), $3) \
                     WHERE agreement_id = $1 AND locale = $2",
                )
                .bind(id)
                .bind(locale)
                .bind(n(*source_revision))
                .execute(&mut *conn)
                .await?;
            }
        }
        Ok(())
    }

    async fn campaign_state(self, conn: &mut PgConnection, s: CampaignState) -> Result<(), ApplyError> {
        sqlx::query("UPDATE content.campaigns SET state = $2, position = $3 WHERE campaign_id = $1")
            .bind(self.id)
            .bind(codec::campaign_state_to_pb(s) as i16)
            .bind(self.position)
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn campaign(self, conn: &mut PgConnection, e: &CampaignEvent) -> Result<(), ApplyError> {
        use CampaignEvent as E;
        let Self { id, position } = self;
        match e {
            E::Created(new, stamp) => {
                sqlx::query(
                    "INSERT INTO content.campaigns (campaign_id, name, target, state, created_by, created_at, position) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (campaign_id) DO NOTHING",
                )
                .bind(id)
                .bind(&new.name)
                .bind(codec::target_to_pb(&new.target).encode_to_vec())
                .bind(codec::campaign_state_to_pb(CampaignState::Draft) as i16)
                .bind(&stamp.by)
                .bind(stamp.at)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::Retargeted(target, _) => {
                sqlx::query("UPDATE content.campaigns SET target = $2, position = $3 WHERE campaign_id = $1")
                    .bind(id)
                    .bind(codec::target_to_pb(target).encode_to_vec())
                    .bind(position)
                    .execute(&mut *conn)
                    .await?;
            }
            E::ContentSet { locale, content, .. } => {
                sqlx::query(
                    "INSERT INTO content.campaign_contents (campaign_id, locale, content) VALUES ($1, $2, $3) \
                     ON CONFLICT (campaign_id, locale) DO UPDATE SET content = EXCLUDED.content",
                )
                .bind(id)
                .bind(locale)
                .bind(codec::content_to_pb(locale, content).encode_to_vec())
                .execute(&mut *conn)
                .await?;
            }
            E::Scheduled { send_at, .. } => {
                sqlx::query(
                    "UPDATE content.campaigns SET state = $2, send_at = $3, position = $4 WHERE campaign_id = $1",
                )
                .bind(id)
                .bind(codec::campaign_state_to_pb(CampaignState::Scheduled) as i16)
                .bind(send_at)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::Unscheduled(_) => {
                sqlx::query(
                    "UPDATE content.campaigns SET state = $2, send_at = NULL, position = $3 WHERE campaign_id = $1",
                )
                .bind(id)
                .bind(codec::campaign_state_to_pb(CampaignState::Draft) as i16)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::Cancelled { reason, .. } => {
                sqlx::query(
                    "UPDATE content.campaigns SET state = $2, cancel_reason = $3, position = $4 WHERE campaign_id = $1",
                )
                .bind(id)
                .bind(codec::campaign_state_to_pb(CampaignState::Cancelled) as i16)
                .bind(reason)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::SendingStarted(_) => self.campaign_state(conn, CampaignState::Sending).await?,
            E::Completed(_) => self.campaign_state(conn, CampaignState::Completed).await?,
            E::BatchRecorded { sent, stamp } => {
                // The outbox: one pending row per recipient (ids only).
                let people: Vec<Uuid> = sent.iter().map(|r| r.person).collect();
                let locales: Vec<&str> = sent.iter().map(|r| r.locale.as_str()).collect();
                let countries: Vec<&str> = sent.iter().map(|r| r.country.as_str()).collect();
                sqlx::query(
                    "INSERT INTO content.deliveries (campaign_id, person_id, locale, country, next_attempt_at, \
                     recorded_at) SELECT $1, p, l, c, $5, $5 FROM unnest($2::uuid[], $3::text[], $4::text[]) \
                     AS r(p, l, c) ON CONFLICT (campaign_id, person_id) DO NOTHING",
                )
                .bind(id)
                .bind(&people)
                .bind(&locales)
                .bind(&countries)
                .bind(stamp.at)
                .execute(&mut *conn)
                .await?;
                let mut per_locale: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
                for r in sent {
                    *per_locale.entry(r.locale.as_str()).or_insert(0) += 1;
                }
                for (locale, n) in per_locale {
                    sqlx::query(
                        "UPDATE content.campaigns SET reach = jsonb_set(reach, ARRAY[$2], \
                         to_jsonb(COALESCE((reach ->> $2)::bigint, 0) + $3)), position = $4 WHERE campaign_id = $1",
                    )
                    .bind(id)
                    .bind(locale)
                    .bind(n)
                    .bind(position)
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
        Ok(())
    }
}
