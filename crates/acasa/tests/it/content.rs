//! Content over gRPC against real NATS and Postgres: an article written in
//! Romanian, reviewed by someone else, published, read without a token in
//! Ukrainian (falling back to Romanian) and in Russian once translated; the
//! translation going stale when the source changes, with the diff, until
//! confirmed; bodies rendered safely; scheduled publication and expiry
//! recorded by the deadline worker; the agreements catalogue; bad input and
//! broken rules named; the public per-client rate.

use std::time::Duration;

use acasa_content::{
    deadlines::Deadlines,
    domain::locale::FallbackChain,
    grpc::{ContentService, PublicContentService},
    projection::ContentProjection,
};
use acasa_eventstore::{EventStore, Repository, RepositoryConfig};
use acasa_projection::Positions;
use acasa_proto::{
    content::v1::{
        self as pb, content_service_client::ContentServiceClient,
        public_content_service_client::PublicContentServiceClient,
    },
    r#type::v1::Date,
};
use acasa_runtime::{Authenticator, Role, Serving, TokenIssuer, rate::RateLimiter};
use chrono::{Duration as Span, Utc};
use tokio::sync::watch;
use tonic::{Code, Request, Status, transport::Channel};
use tonic_types::StatusExt as _;
use uuid::Uuid;

use crate::harness::{Env, JWT_KEY_HEX, eventually, serve, worker};

const WAIT: Duration = Duration::from_secs(20);

struct Stack {
    _serving: Serving,
    client: ContentServiceClient<Channel>,
    public: PublicContentServiceClient<Channel>,
    issuer: TokenIssuer,
    store: EventStore,
    env_pool: sqlx::PgPool,
    stop: watch::Sender<bool>,
    worker: tokio::task::JoinHandle<()>,
}

async fn start(env: &Env, limiter: RateLimiter) -> Stack {
    let key = hex::decode(JWT_KEY_HEX).unwrap();
    let auth = Authenticator::hs256(&key, "acasa", "acasa");
    let positions = Positions::start(env.pool.clone());
    let store = EventStore::open(env.client().await, crate::harness::settings("content")).await.unwrap();
    let editorial = ContentService::new(store.clone(), positions, env.pool.clone());
    let public =
        PublicContentService::new(env.pool.clone(), FallbackChain::parse(FallbackChain::DEFAULT).unwrap(), limiter);
    let routes = acasa_content::grpc::routes(editorial, public, &auth);
    let (serving, channel) = serve(routes, &[ContentService::NAME, PublicContentService::NAME]).await;
    let (stop, stopped) = watch::channel(false);
    let w = worker(env, &store, ContentProjection);
    let worker = tokio::spawn(async move { w.run(stopped).await.unwrap() });
    Stack {
        _serving: serving,
        client: ContentServiceClient::new(channel.clone()),
        public: PublicContentServiceClient::new(channel),
        issuer: TokenIssuer::hs256(&key, "acasa", "acasa"),
        store,
        env_pool: env.pool.clone(),
        stop,
        worker,
    }
}

fn rid() -> String {
    Uuid::now_v7().to_string()
}

fn rule(s: &Status) -> String {
    assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
    s.get_error_details().precondition_failure().expect("a named rule").violations[0].r#type.clone()
}

fn fields(s: &Status) -> Vec<String> {
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    s.get_error_details()
        .bad_request()
        .expect("field violations")
        .field_violations
        .iter()
        .map(|f| f.field.clone())
        .collect()
}

/// Alice writes, Bob reviews.
const ALICE: &str = "editor-alice";
const BOB: &str = "reviewer-bob";

impl Stack {
    fn as_<T>(&self, subject: &str, roles: &[Role], msg: T) -> Request<T> {
        let token = self.issuer.issue(subject, roles, None, Duration::from_secs(600)).unwrap();
        let mut r = Request::new(msg);
        r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        r
    }

    fn alice<T>(&self, msg: T) -> Request<T> {
        self.as_(ALICE, &[Role::Editor], msg)
    }

    fn bob<T>(&self, msg: T) -> Request<T> {
        self.as_(BOB, &[Role::Reviewer], msg)
    }

    async fn create(&mut self, slug: &str, countries: &[&str]) -> String {
        let r = self.alice(pb::CreateArticleRequest {
            request_id: rid(),
            topic: pb::Topic::LegalAssistance as i32,
            countries: countries.iter().map(|c| (*c).to_owned()).collect(),
            slug: slug.into(),
        });
        self.client.create_article(r).await.unwrap().into_inner().article_id
    }

    async fn edit(&mut self, id: &str, locale: &str, title: &str, body: &str, translates: u32) -> (u32, u64) {
        let r = self.alice(pb::EditArticleRequest {
            request_id: rid(),
            article_id: id.into(),
            locale: locale.into(),
            title: title.into(),
            summary: format!("{title}: pe scurt"),
            body: body.into(),
            translates,
        });
        let a = self.client.edit_article(r).await.unwrap().into_inner();
        (a.revision, a.position)
    }

    /// Submits, has Bob approve and Alice publish `locale`'s `revision`.
    async fn review_and_publish(&mut self, id: &str, locale: &str, revision: u32) -> u64 {
        let r =
            self.alice(pb::SubmitArticleRequest { request_id: rid(), article_id: id.into(), locale: locale.into() });
        self.client.submit_article(r).await.unwrap();
        let r = self.bob(pb::ApproveArticleRequest {
            request_id: rid(),
            article_id: id.into(),
            locale: locale.into(),
            revision,
        });
        self.client.approve_article(r).await.unwrap();
        let r =
            self.alice(pb::PublishArticleRequest { request_id: rid(), article_id: id.into(), locale: locale.into() });
        self.client.publish_article(r).await.unwrap().into_inner().position
    }

    async fn draft(&mut self, id: &str, min_position: u64) -> pb::ArticleDraft {
        let r = self.alice(pb::GetArticleDraftRequest { article_id: id.into(), min_position });
        self.client.get_article_draft(r).await.unwrap().into_inner().article.unwrap()
    }

    /// Waits for the read model to reach `position`.
    async fn caught_up(&mut self, id: &str, position: u64) {
        self.draft(id, position).await;
    }

    async fn read(&mut self, slug: &str, locale: &str) -> Result<pb::PublishedArticle, Status> {
        let r = Request::new(pb::GetArticleRequest { slug: slug.into(), locale: locale.into() });
        self.public.get_article(r).await.map(|a| a.into_inner().article.unwrap())
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.worker.await.unwrap();
    }
}

const BODY_RO: &str = "# Asistență juridică în Italia\n\n\
    Migranții moldoveni au dreptul la asistență juridică gratuită.\n\n\
    <script>alert('x')</script>\n\n\
    [Ghid](javascript:alert(1)) și [portal](https://www.gov.md).";

#[tokio::test]
async fn an_article_is_reviewed_by_another_published_read_with_fallback_and_its_translation_goes_stale() {
    let env = Env::new().await;
    let mut s = start(&env, RateLimiter::new(1_000.0, 1_000)).await;
    let id = s.create("asistenta-juridica-italia", &["IT", "ES"]).await;

    // The same slug again is taken.
    let r = s.alice(pb::CreateArticleRequest {
        request_id: rid(),
        topic: pb::Topic::LegalAssistance as i32,
        countries: vec![],
        slug: "asistenta-juridica-italia".into(),
    });
    assert_eq!(s.client.create_article(r).await.unwrap_err().code(), Code::AlreadyExists);

    let (rev, position) = s.edit(&id, "ro", "Asistență juridică", BODY_RO, 0).await;
    assert_eq!(rev, 1);
    // Nothing is served before publication.
    assert_eq!(s.draft(&id, position).await.source_locale, "ro");
    assert_eq!(s.read("asistenta-juridica-italia", "ro").await.unwrap_err().code(), Code::NotFound);

    // Publishing without an approval, approving one's own revision: refused.
    let r = s.alice(pb::SubmitArticleRequest { request_id: rid(), article_id: id.clone(), locale: "ro".into() });
    s.client.submit_article(r).await.unwrap();
    let r = s.alice(pb::PublishArticleRequest { request_id: rid(), article_id: id.clone(), locale: "ro".into() });
    assert_eq!(rule(&s.client.publish_article(r).await.unwrap_err()), "NOT_APPROVED");
    // Alice as a reviewer too still cannot approve her own revision.
    let r = s.as_(
        ALICE,
        &[Role::Editor, Role::Reviewer],
        pb::ApproveArticleRequest { request_id: rid(), article_id: id.clone(), locale: "ro".into(), revision: 1 },
    );
    assert_eq!(rule(&s.client.approve_article(r).await.unwrap_err()), "OWN_REVISION");
    // An editor is not a reviewer.
    let r = s.alice(pb::ApproveArticleRequest {
        request_id: rid(),
        article_id: id.clone(),
        locale: "ro".into(),
        revision: 1,
    });
    assert_eq!(s.client.approve_article(r).await.unwrap_err().code(), Code::PermissionDenied);
    let position = s.review_and_publish(&id, "ro", 1).await;
    s.caught_up(&id, position).await;

    // A reader with no token asks for Ukrainian and gets Romanian, saying so.
    let a = s.read("asistenta-juridica-italia", "uk").await.unwrap();
    let served = a.served.clone().unwrap();
    assert_eq!((served.requested_locale.as_str(), served.served_locale.as_str(), served.fallback), ("uk", "ro", true));
    assert_eq!(served.chain, ["uk", "ro", "en"]);
    assert_eq!(a.title, "Asistență juridică");
    assert_eq!(a.available_locales, ["ro"]);
    // Rendered safely: the script is text, the javascript: link is no link.
    assert!(!a.body_html.contains("<script"), "{}", a.body_html);
    assert!(a.body_html.contains("&lt;script&gt;"), "{}", a.body_html);
    assert!(!a.body_html.contains("href=\"javascript"), "{}", a.body_html);
    assert!(a.body_html.contains("href=\"https://www.gov.md\""), "{}", a.body_html);
    // The revision as written keeps the body as given.
    let r = s.alice(pb::GetArticleRevisionRequest {
        article_id: id.clone(),
        locale: "ro".into(),
        revision: 1,
        min_position: 0,
    });
    assert_eq!(s.client.get_article_revision(r).await.unwrap().into_inner().revision.unwrap().body, BODY_RO);

    // A Russian translation of revision 1; a translation of a revision that
    // does not exist is refused.
    let r = s.alice(pb::EditArticleRequest {
        request_id: rid(),
        article_id: id.clone(),
        locale: "ru".into(),
        title: "Юридическая помощь".into(),
        summary: String::new(),
        body: "Молдавские мигранты имеют право на бесплатную юридическую помощь.".into(),
        translates: 9,
    });
    assert_eq!(rule(&s.client.edit_article(r).await.unwrap_err()), "NO_SUCH_SOURCE_REVISION");
    let (ru, _) =
        s.edit(&id, "ru", "Юридическая помощь", "Молдавские мигранты имеют право на юридическую помощь.", 1).await;
    let position = s.review_and_publish(&id, "ru", ru).await;
    s.caught_up(&id, position).await;
    let a = s.read("asistenta-juridica-italia", "ru-MD").await.unwrap();
    let served = a.served.clone().unwrap();
    assert_eq!((served.served_locale.as_str(), served.fallback), ("ru", true));
    assert_eq!(served.chain, ["ru-MD", "ru", "ro", "en"]);
    assert!(!a.outdated);

    // The source changes: the Russian version is stale, with the diff.
    let body2 = BODY_RO.replace("gratuită", "gratuită, și la un interpret");
    let (rev2, position) = s.edit(&id, "ro", "Asistență juridică", &body2, 0).await;
    assert_eq!(rev2, 2);
    let draft = s.draft(&id, position).await;
    let ru_version = draft.versions.iter().find(|v| v.locale == "ru").unwrap();
    assert!(ru_version.stale && ru_version.in_line_with == 1 && ru_version.source_revision == 2, "{ru_version:?}");
    let ro_version = draft.versions.iter().find(|v| v.locale == "ro").unwrap();
    assert!(ro_version.source && !ro_version.stale);
    // The edit is a draft: readers still get revision 1.
    assert_eq!((ro_version.state, ro_version.live_revision), (pb::VersionState::Draft as i32, 1));
    let r = s.alice(pb::GetArticleSourceDiffRequest {
        article_id: id.clone(),
        locale: "ru".into(),
        from_revision: 0,
        to_revision: 0,
        min_position: 0,
    });
    let diff = s.client.get_article_source_diff(r).await.unwrap().into_inner();
    assert_eq!((diff.source_locale.as_str(), diff.from_revision, diff.to_revision), ("ro", 1, 2));
    assert_eq!(diff.changes.len(), 1);
    assert_eq!(diff.changes[0].field, "body");
    assert!(
        diff.changes[0]
            .unified
            .contains("+Migranții moldoveni au dreptul la asistență juridică gratuită, și la un interpret.")
    );
    let r = s.alice(pb::ListArticleDraftsRequest { stale_only: true, ..Default::default() });
    let stale = s.client.list_article_drafts(r).await.unwrap().into_inner().articles;
    assert_eq!(stale.iter().map(|a| a.article_id.as_str()).collect::<Vec<_>>(), [id.as_str()]);
    let position = s.review_and_publish(&id, "ro", 2).await;
    s.caught_up(&id, position).await;
    let a = s.read("asistenta-juridica-italia", "ru").await.unwrap();
    assert!(a.outdated, "a stale translation is flagged to readers");

    // Confirmed in line with revision 2: no longer stale.
    let r = s.alice(pb::ConfirmArticleTranslationRequest {
        request_id: rid(),
        article_id: id.clone(),
        locale: "ru".into(),
        source_revision: 2,
    });
    let position = s.client.confirm_article_translation(r).await.unwrap().into_inner().position;
    let draft = s.draft(&id, position).await;
    assert!(!draft.versions.iter().find(|v| v.locale == "ru").unwrap().stale);
    assert!(!s.read("asistenta-juridica-italia", "ru").await.unwrap().outdated);

    // History, newest first, every revision with its author.
    let r =
        s.alice(pb::ListArticleRevisionsRequest { article_id: id.clone(), locale: "ro".into(), ..Default::default() });
    let history = s.client.list_article_revisions(r).await.unwrap().into_inner().revisions;
    assert_eq!(history.iter().map(|r| (r.revision, r.author.as_str())).collect::<Vec<_>>(), [(2, ALICE), (1, ALICE)]);

    // Lists and search, as the reader's chain serves them.
    let list = |country: &str, locale: &str| pb::ListArticlesRequest {
        locale: locale.into(),
        country: country.into(),
        ..Default::default()
    };
    let italy = s.public.list_articles(list("IT", "uk")).await.unwrap().into_inner().articles;
    assert_eq!(italy.len(), 1);
    assert_eq!(italy[0].served.as_ref().unwrap().served_locale, "ro");
    assert!(s.public.list_articles(list("FR", "ro")).await.unwrap().into_inner().articles.is_empty());
    let search = |q: &str, locale: &str| pb::SearchArticlesRequest {
        query: q.into(),
        locale: locale.into(),
        ..Default::default()
    };
    // Romanian stemming: "juridice" finds "juridică".
    let found = s.public.search_articles(search("juridice", "ro")).await.unwrap().into_inner();
    assert_eq!(found.articles.len(), 1);
    assert_eq!(found.configurations, ["ro=romanian"]);
    // A Russian reader searches the Russian version (russian stemming).
    let found = s.public.search_articles(search("юридической помощи", "ru")).await.unwrap().into_inner();
    assert_eq!(found.articles.len(), 1);
    assert_eq!(found.articles[0].served.as_ref().unwrap().served_locale, "ru");
    // …and does not find it by the Romanian words: the Russian version is what they read.
    assert!(s.public.search_articles(search("interpret", "ru")).await.unwrap().into_inner().articles.is_empty());
    // A Ukrainian reader has no Ukrainian version: Romanian is searched.
    let found = s.public.search_articles(search("interpret", "uk")).await.unwrap().into_inner();
    assert_eq!(found.articles.len(), 1);

    // Withdrawn: readers fall back along their chain.
    let r = s.alice(pb::UnpublishArticleRequest {
        request_id: rid(),
        article_id: id.clone(),
        locale: "ru".into(),
        reason: "revizie juridică".into(),
    });
    let position = s.client.unpublish_article(r).await.unwrap().into_inner().position;
    s.caught_up(&id, position).await;
    assert_eq!(s.read("asistenta-juridica-italia", "ru").await.unwrap().served.unwrap().served_locale, "ro");
    s.stop().await;
}

#[tokio::test]
async fn bad_input_is_named_and_public_reads_are_bounded() {
    let env = Env::new().await;
    let mut s = start(&env, RateLimiter::new(0.5, 3)).await;
    let r = s.alice(pb::CreateArticleRequest {
        request_id: rid(),
        topic: 0,
        countries: vec!["IT".into(), "Italy".into()],
        slug: "Ajutor Juridic".into(),
    });
    let mut bad = fields(&s.client.create_article(r).await.unwrap_err());
    bad.sort();
    assert_eq!(bad, ["countries[1]", "slug", "topic"]);
    let id = s.create("documente", &[]).await;
    let r = s.alice(pb::EditArticleRequest {
        request_id: rid(),
        article_id: id.clone(),
        locale: "ro_RO!".into(),
        title: String::new(),
        summary: String::new(),
        body: "x".repeat(acasa_content::validate::BODY_MAX + 1),
        translates: 0,
    });
    let mut bad = fields(&s.client.edit_article(r).await.unwrap_err());
    bad.sort();
    assert_eq!(bad, ["body", "locale", "title"]);
    // A translation must say what it translates.
    s.edit(&id, "ro", "Acte", "Pașaport.", 0).await;
    let r = s.alice(pb::EditArticleRequest {
        request_id: rid(),
        article_id: id.clone(),
        locale: "en".into(),
        title: "Papers".into(),
        summary: String::new(),
        body: "Passport.".into(),
        translates: 0,
    });
    assert_eq!(fields(&s.client.edit_article(r).await.unwrap_err()), ["translates"]);
    // Expiry before publication.
    let now = Utc::now();
    let r = s.alice(pb::ScheduleArticleRequest {
        request_id: rid(),
        article_id: id.clone(),
        locale: "ro".into(),
        publish_at: Some(acasa_proto::time::timestamp(now + Span::hours(2))),
        expire_at: Some(acasa_proto::time::timestamp(now + Span::hours(1))),
    });
    assert_eq!(fields(&s.client.schedule_article(r).await.unwrap_err()), ["expire_at"]);
    // Editing needs a token; reading does not.
    let r = Request::new(pb::GetArticleDraftRequest { article_id: id.clone(), min_position: 0 });
    assert_eq!(s.client.get_article_draft(r).await.unwrap_err().code(), Code::Unauthenticated);

    // Public: bad locale and page size named; over the per-client rate,
    // RESOURCE_EXHAUSTED with when to retry (burst 3 already spent by
    // the next three calls).
    let r = Request::new(pb::SearchArticlesRequest {
        query: "a ".repeat(200),
        locale: "xx-!!".into(),
        page_size: 500,
        ..Default::default()
    });
    let mut bad = fields(&s.public.search_articles(r).await.unwrap_err());
    bad.sort();
    assert_eq!(bad, ["locale", "page_size", "query"]);
    let r = Request::new(pb::GetArticleRequest { slug: "documente".into(), locale: "ro".into() });
    assert_eq!(s.public.get_article(r).await.unwrap_err().code(), Code::NotFound);
    let r = Request::new(pb::ListArticlesRequest::default());
    s.public.list_articles(r).await.unwrap();
    let r = Request::new(pb::ListArticlesRequest::default());
    let over = s.public.list_articles(r).await.unwrap_err();
    assert_eq!(over.code(), Code::ResourceExhausted, "{over:?}");
    assert!(over.get_details_retry_info().and_then(|r| r.retry_delay).is_some());
    s.stop().await;
}

#[tokio::test]
async fn the_deadline_worker_publishes_on_schedule_once_approved_and_expires() {
    let env = Env::new().await;
    let mut s = start(&env, RateLimiter::new(1_000.0, 1_000)).await;
    let sweeper = Deadlines::new(
        Repository::new(s.store.clone(), RepositoryConfig::default()),
        s.env_pool.clone(),
        Duration::from_secs(3600),
    );
    let id = s.create("intoarcere-voluntara", &["DE"]).await;
    let (rev, _) = s.edit(&id, "ro", "Întoarcere voluntară asistată", "Programul OIM.", 0).await;
    let now = Utc::now();
    let publish_at = now + Span::hours(1);
    let expire_at = now + Span::hours(3);
    let r = s.alice(pb::ScheduleArticleRequest {
        request_id: rid(),
        article_id: id.clone(),
        locale: "ro".into(),
        publish_at: Some(acasa_proto::time::timestamp(publish_at)),
        expire_at: Some(acasa_proto::time::timestamp(expire_at)),
    });
    let position = s.client.schedule_article(r).await.unwrap().into_inner().position;
    s.caught_up(&id, position).await;

    // Not yet due: nothing.
    let sweep = sweeper.sweep(now).await.unwrap();
    assert_eq!((sweep.candidates, sweep.published), (0, 0));
    // Due but not approved: not published, counted as waiting.
    let later = publish_at + Span::seconds(1);
    let sweep = sweeper.sweep(later).await.unwrap();
    assert_eq!((sweep.published, sweep.waiting), (0, 1));
    assert_eq!(s.draft(&id, 0).await.versions[0].live_revision, 0);

    // Approved: the next sweep publishes it, once.
    let r = s.alice(pb::SubmitArticleRequest { request_id: rid(), article_id: id.clone(), locale: "ro".into() });
    s.client.submit_article(r).await.unwrap();
    let r = s.bob(pb::ApproveArticleRequest {
        request_id: rid(),
        article_id: id.clone(),
        locale: "ro".into(),
        revision: rev,
    });
    let position = s.client.approve_article(r).await.unwrap().into_inner().position;
    s.caught_up(&id, position).await;
    let sweep = sweeper.sweep(later).await.unwrap();
    assert_eq!(sweep.published, 1);
    let version = eventually(WAIT, || {
        let mut client = s.client.clone();
        let r = s.alice(pb::GetArticleDraftRequest { article_id: id.clone(), min_position: 0 });
        async move {
            let d = client.get_article_draft(r).await.unwrap().into_inner().article.unwrap();
            let v = d.versions[0].clone();
            (v.live_revision == rev).then_some(v)
        }
    })
    .await;
    assert_eq!(version.state, pb::VersionState::Published as i32);
    assert_eq!(version.live_since.map(|t| t.seconds), Some(later.timestamp()));
    assert!(version.publish_at.is_none());
    // Published as of the scheduled time: a reader now (before it) gets nothing yet.
    assert_eq!(s.read("intoarcere-voluntara", "ro").await.unwrap_err().code(), Code::NotFound);
    // A repeated sweep records nothing more.
    assert_eq!(sweeper.sweep(later).await.unwrap(), acasa_content::deadlines::Sweep::default());

    // Expiry: recorded once its time is reached; the version is withdrawn.
    let gone = expire_at + Span::seconds(1);
    let sweep = sweeper.sweep(gone).await.unwrap();
    assert_eq!(sweep.expired, 1);
    let version = eventually(WAIT, || {
        let mut client = s.client.clone();
        let r = s.alice(pb::GetArticleDraftRequest { article_id: id.clone(), min_position: 0 });
        async move {
            let d = client.get_article_draft(r).await.unwrap().into_inner().article.unwrap();
            let v = d.versions[0].clone();
            (v.live_revision == 0).then_some(v)
        }
    })
    .await;
    assert_eq!(version.state, pb::VersionState::Unpublished as i32);
    assert!(version.expire_at.is_none());
    assert_eq!(sweeper.sweep(gone).await.unwrap(), acasa_content::deadlines::Sweep::default());
    s.stop().await;
}

#[tokio::test]
async fn published_now_then_expired_by_the_worker_leaves_readers() {
    let env = Env::new().await;
    let mut s = start(&env, RateLimiter::new(1_000.0, 1_000)).await;
    let sweeper = Deadlines::new(
        Repository::new(s.store.clone(), RepositoryConfig::default()),
        s.env_pool.clone(),
        Duration::from_secs(3600),
    );
    let id = s.create("asigurare-medicala", &[]).await;
    let (rev, _) = s.edit(&id, "ro", "Asigurare medicală", "CNAM.", 0).await;
    s.review_and_publish(&id, "ro", rev).await;
    let expire_at = Utc::now() + Span::hours(1);
    let r = s.alice(pb::ScheduleArticleRequest {
        request_id: rid(),
        article_id: id.clone(),
        locale: "ro".into(),
        publish_at: None,
        expire_at: Some(acasa_proto::time::timestamp(expire_at)),
    });
    let position = s.client.schedule_article(r).await.unwrap().into_inner().position;
    s.caught_up(&id, position).await;
    let a = s.read("asigurare-medicala", "en").await.unwrap();
    assert_eq!(a.expires_at.map(|t| t.seconds), Some(expire_at.timestamp()));
    assert_eq!(a.served.unwrap().served_locale, "ro");
    assert_eq!(sweeper.sweep(expire_at + Span::seconds(1)).await.unwrap().expired, 1);
    eventually(WAIT, || {
        let mut public = s.public.clone();
        async move {
            let r = Request::new(pb::GetArticleRequest { slug: "asigurare-medicala".into(), locale: "ro".into() });
            (public.get_article(r).await.err()?.code() == Code::NotFound).then_some(())
        }
    })
    .await;
    s.stop().await;
}

fn date(y: i32, m: i32, d: i32) -> Option<Date> {
    Some(Date { year: y, month: m, day: d })
}

#[tokio::test]
async fn the_agreements_catalogue_is_public_with_translated_summaries() {
    let env = Env::new().await;
    let mut s = start(&env, RateLimiter::new(1_000.0, 1_000)).await;
    let r = s.alice(pb::CreateAgreementRequest {
        request_id: rid(),
        country: "IT".into(),
        kind: pb::AgreementKind::SocialSecurity as i32,
        title: "Acord între Republica Moldova și Republica Italiană în domeniul securității sociale".into(),
        status: pb::AgreementStatus::Signed as i32,
        on: date(2021, 6, 18),
    });
    let id = s.client.create_agreement(r).await.unwrap().into_inner().agreement_id;
    // Moldova is not the other country; a date in the future is refused.
    let r = s.alice(pb::CreateAgreementRequest {
        request_id: rid(),
        country: "MD".into(),
        kind: pb::AgreementKind::Labour as i32,
        title: "x".into(),
        status: pb::AgreementStatus::Signed as i32,
        on: date(2999, 1, 1),
    });
    let mut bad = fields(&s.client.create_agreement(r).await.unwrap_err());
    bad.sort();
    assert_eq!(bad, ["country", "on"]);
    // Ratified before it was signed: refused; then ratified, in force.
    let status = |to: pb::AgreementStatus, on: Option<Date>| pb::ChangeAgreementStatusRequest {
        request_id: rid(),
        agreement_id: id.clone(),
        status: to as i32,
        on,
    };
    let r = s.alice(status(pb::AgreementStatus::Ratified, date(2020, 1, 1)));
    assert_eq!(rule(&s.client.change_agreement_status(r).await.unwrap_err()), "AGREEMENT_DATES");
    let r = s.alice(status(pb::AgreementStatus::Negotiating, date(2022, 1, 1)));
    assert_eq!(rule(&s.client.change_agreement_status(r).await.unwrap_err()), "AGREEMENT_STATUS");
    let r = s.alice(status(pb::AgreementStatus::Ratified, date(2022, 3, 1)));
    s.client.change_agreement_status(r).await.unwrap();
    let r = s.alice(status(pb::AgreementStatus::InForce, date(2022, 5, 1)));
    s.client.change_agreement_status(r).await.unwrap();
    let r = s.alice(pb::AddAgreementLinkRequest {
        request_id: rid(),
        agreement_id: id.clone(),
        url: "javascript:alert(1)".into(),
    });
    assert_eq!(fields(&s.client.add_agreement_link(r).await.unwrap_err()), ["url"]);
    let r = s.alice(pb::AddAgreementLinkRequest {
        request_id: rid(),
        agreement_id: id.clone(),
        url: "https://www.legis.md/acord-italia".into(),
    });
    s.client.add_agreement_link(r).await.unwrap();
    let summary = |locale: &str, text: &str, translates: u32| pb::EditAgreementSummaryRequest {
        request_id: rid(),
        agreement_id: id.clone(),
        locale: locale.into(),
        summary: text.into(),
        translates,
    };
    let r = s.alice(summary("ro", "Perioadele de muncă în Italia se iau în calcul la pensie.", 0));
    assert_eq!(s.client.edit_agreement_summary(r).await.unwrap().into_inner().revision, 1);
    let r = s.alice(summary("en", "Periods worked in Italy count towards the pension.", 1));
    s.client.edit_agreement_summary(r).await.unwrap();
    let r = s.alice(summary("ro", "Perioadele de muncă în Italia se iau în calcul la pensia din Moldova.", 0));
    let position = s.client.edit_agreement_summary(r).await.unwrap().into_inner().position;

    let r = s.alice(pb::GetAgreementDraftRequest { agreement_id: id.clone(), min_position: position });
    let draft = s.client.get_agreement_draft(r).await.unwrap().into_inner().agreement.unwrap();
    let en = draft.summaries.iter().find(|v| v.locale == "en").unwrap();
    assert!(en.stale && en.in_line_with == 1 && en.source_revision == 2, "{en:?}");
    let a = draft.agreement.unwrap();
    assert_eq!(a.status, pb::AgreementStatus::InForce as i32);
    assert_eq!(a.history.len(), 3);
    assert_eq!(a.links, ["https://www.legis.md/acord-italia"]);

    // Public, no token: Ukrainian falls back to Romanian; English is served, flagged outdated.
    let get = |locale: &str| Request::new(pb::GetAgreementRequest { agreement_id: id.clone(), locale: locale.into() });
    let uk = s.public.get_agreement(get("uk")).await.unwrap().into_inner().agreement.unwrap();
    assert_eq!(uk.served.as_ref().unwrap().served_locale, "ro");
    assert!(uk.summary.ends_with("pensia din Moldova."));
    let en = s.public.get_agreement(get("en")).await.unwrap().into_inner().agreement.unwrap();
    assert_eq!(en.served.as_ref().unwrap().served_locale, "en");
    assert!(en.outdated);
    let r = Request::new(pb::ListAgreementsRequest {
        country: "IT".into(),
        status: pb::AgreementStatus::InForce as i32,
        ..Default::default()
    });
    assert_eq!(s.public.list_agreements(r).await.unwrap().into_inner().agreements.len(), 1);
    let r = Request::new(pb::ListAgreementsRequest { country: "DE".into(), ..Default::default() });
    assert!(s.public.list_agreements(r).await.unwrap().into_inner().agreements.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn a_campaign_is_prepared_scheduled_and_cancelled_by_its_rules() {
    let env = Env::new().await;
    let mut s = start(&env, RateLimiter::new(1_000.0, 1_000)).await;
    let article = s.create("pensii-in-germania", &["DE"]).await;
    let target = |languages: &[&str]| {
        Some(pb::CampaignTarget {
            countries: vec!["DE".into(), "IT".into()],
            languages: languages.iter().map(|l| (*l).to_owned()).collect(),
        })
    };
    // People abroad only; at least one language.
    let r = s.alice(pb::CreateCampaignRequest {
        request_id: rid(),
        name: "Pensii".into(),
        target: Some(pb::CampaignTarget { countries: vec!["MD".into()], languages: vec![] }),
    });
    let mut bad = fields(&s.client.create_campaign(r).await.unwrap_err());
    bad.sort();
    assert_eq!(bad, ["target.countries[0]", "target.languages"]);
    let r =
        s.alice(pb::CreateCampaignRequest { request_id: rid(), name: "Pensii".into(), target: target(&["ro", "ru"]) });
    let id = s.client.create_campaign(r).await.unwrap().into_inner().campaign_id;
    let content = |locale: &str, content: pb::campaign_content::Content| pb::SetCampaignContentRequest {
        request_id: rid(),
        campaign_id: id.clone(),
        content: Some(pb::CampaignContent { locale: locale.into(), content: Some(content) }),
    };
    let r = s.alice(content("ro", pb::campaign_content::Content::ArticleId(article.clone())));
    s.client.set_campaign_content(r).await.unwrap();
    // Not a targeted language.
    let message = pb::campaign_content::Content::Message(pb::CampaignMessage {
        subject: "Пенсии в Германии".into(),
        text: "Ваш стаж в Германии учитывается.".into(),
    });
    let r = s.alice(content("uk", message.clone()));
    assert_eq!(fields(&s.client.set_campaign_content(r).await.unwrap_err()), ["locale"]);
    // Scheduling before every language has content.
    let send_at = Some(acasa_proto::time::timestamp(Utc::now() + Span::hours(1)));
    let schedule = |send_at| pb::ScheduleCampaignRequest { request_id: rid(), campaign_id: id.clone(), send_at };
    let r = s.alice(schedule(send_at));
    assert_eq!(rule(&s.client.schedule_campaign(r).await.unwrap_err()), "NO_CONTENT");
    let r = s.alice(content("ru", message));
    s.client.set_campaign_content(r).await.unwrap();
    let r = s.alice(schedule(Some(acasa_proto::time::timestamp(Utc::now() - Span::hours(1)))));
    assert_eq!(fields(&s.client.schedule_campaign(r).await.unwrap_err()), ["send_at"]);
    let r = s.alice(schedule(send_at));
    let position = s.client.schedule_campaign(r).await.unwrap().into_inner().position;
    // A scheduled campaign's content does not change.
    let r = s.alice(content("ro", pb::campaign_content::Content::ArticleId(Uuid::now_v7().to_string())));
    assert_eq!(rule(&s.client.set_campaign_content(r).await.unwrap_err()), "CAMPAIGN_STATE");
    let r = s.alice(pb::GetCampaignRequest { campaign_id: id.clone(), min_position: position });
    let c = s.client.get_campaign(r).await.unwrap().into_inner().campaign.unwrap();
    assert_eq!(c.state, pb::CampaignState::Scheduled as i32);
    assert_eq!(c.contents.iter().map(|c| c.locale.as_str()).collect::<Vec<_>>(), ["ro", "ru"]);
    assert_eq!(c.target.unwrap().languages, ["ro", "ru"]);
    assert_eq!(c.created_by, ALICE);
    let r = s.alice(pb::CancelCampaignRequest { request_id: rid(), campaign_id: id.clone(), reason: "amânat".into() });
    let position = s.client.cancel_campaign(r).await.unwrap().into_inner().position;
    let r = s.alice(pb::ListCampaignsRequest {
        state: pb::CampaignState::Cancelled as i32,
        min_position: position,
        ..Default::default()
    });
    let list = s.client.list_campaigns(r).await.unwrap().into_inner().campaigns;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].cancel_reason, "amânat");
    // A reviewer does not run campaigns.
    let r = s.bob(pb::CreateCampaignRequest { request_id: rid(), name: "x".into(), target: target(&["ro"]) });
    assert_eq!(s.client.create_campaign(r).await.unwrap_err().code(), Code::PermissionDenied);
    s.stop().await;
}
