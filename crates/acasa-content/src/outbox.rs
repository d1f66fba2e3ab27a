//! The campaign sender: starts scheduled campaigns, records their
//! recipients in batches, and delivers the outbox.
//!
//! **Recording.** A sending campaign's recipients are the people of
//! `content.audience` (this service's view of the registry) living in one of
//! its countries abroad, reading one of its languages, with their
//! information-campaign consent given, not merged or erased. The sender
//! proposes batches from the read model; the campaign aggregate decides
//! (`RecordBatch` refuses a batch naming anyone already recorded, so no one
//! is recorded twice whatever the read model's lag or a concurrent sender
//! does). Each recorded batch becomes pending rows of the outbox,
//! `content.deliveries` — person ids only, never an address — by the
//! projection of the `CampaignBatchRecorded` event, so a recorded recipient
//! is never lost. When no one is left to record, the campaign completes.
//!
//! **Delivering.** A pending row is sent in its own database transaction:
//! the row is locked (`FOR UPDATE SKIP LOCKED`: several senders never take
//! the same row), the person's consent and erasure are checked in
//! `content.audience` at that moment (withdrawn: not sent; erased: not sent),
//! the contacts are opened by the registry for the purpose campaigns (never
//! stored here: after an erasure the registry opens nothing and no contact
//! detail remains anywhere in this service), the message rendered in the
//! recipient's language, and handed to the [`Sender`] with the row's update
//! to *sent* as its record: the SMTP sender holds the end of the data until
//! that update has committed ([`Sender::send_recorded`]). A crash before the
//! commit leaves the row pending and the server without the message (it is
//! sent once, later); a crash after it leaves the row sent and the message
//! on its way. The one window left is the commit's own round trip: a crash
//! after the database has made the update durable but before its reply
//! reaches the sender leaves the row sent and the message unsent (never a
//! duplicate). A 5xx refusal is recorded as failed; a transient failure is
//! retried with a growing delay, up to [`MAX_ATTEMPTS`]; a connection broken
//! after the end of data is recorded *uncertain* and never sent again.

use std::{collections::HashMap, sync::Arc, time::Duration};

use acasa_domain::RequestId;
use acasa_eventstore::{CommandError, Repository};
use acasa_proto::{Message as _, content::v1 as pb, registry::v1 as reg};
use acasa_runtime::person_data::{Opened, PersonData, SealedField, open_all};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::{
    domain::{
        Stamp,
        campaign::{Campaign, CampaignCommand, CampaignError, Recipient},
        locale::{FallbackChain, Locale},
    },
    sender::{Delivery, Message, SendError, Sender},
};

/// The actor the campaign events are recorded by.
pub const ACTOR: &str = "content-campaign-sender";
/// Recipients recorded in one batch at most.
pub const BATCH: i64 = 500;
/// Outbox rows taken per round.
pub const ROUND: i64 = 500;
/// Attempts before a transiently failing message is given up as failed.
pub const MAX_ATTEMPTS: i32 = 8;

/// `content.deliveries.status`: the API's `DeliveryStatus` numbers.
pub mod status {
    /// Waiting to be sent.
    pub const PENDING: i16 = super::pb::DeliveryStatus::Pending as i16;
    /// Sent.
    pub const SENT: i16 = super::pb::DeliveryStatus::Sent as i16;
    /// Not sent: the consent was withdrawn before the send.
    pub const NO_CONSENT: i16 = super::pb::DeliveryStatus::ConsentWithdrawn as i16;
    /// Not sent: the person was erased (or merged).
    pub const ERASED: i16 = super::pb::DeliveryStatus::Erased as i16;
    /// Refused, or no address.
    pub const FAILED: i16 = super::pb::DeliveryStatus::Failed as i16;
    /// Recorded sent, the server's answer never came: not sent again.
    pub const UNCERTAIN: i16 = super::pb::DeliveryStatus::Uncertain as i16;
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Campaigns started.
    pub started: usize,
    /// Recipients recorded.
    pub recorded: usize,
    /// Campaigns completed.
    pub completed: usize,
    /// Messages sent.
    pub sent: usize,
    /// Messages not sent: consent withdrawn, erased, failed, or uncertain.
    pub not_sent: usize,
    /// Messages to retry later.
    pub deferred: usize,
}

impl std::ops::AddAssign for Round {
    fn add_assign(&mut self, o: Round) {
        self.started += o.started;
        self.recorded += o.recorded;
        self.completed += o.completed;
        self.sent += o.sent;
        self.not_sent += o.not_sent;
        self.deferred += o.deferred;
    }
}

/// The campaign sender.
#[derive(Clone)]
pub struct Campaigns {
    repo: Repository<Campaign>,
    pool: PgPool,
    data: Arc<dyn PersonData>,
    senders: Vec<Arc<dyn Sender>>,
    chain: Arc<FallbackChain>,
    public_url: String,
    interval: Duration,
    sent: opentelemetry::metrics::Counter<u64>,
}

impl std::fmt::Debug for Campaigns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Campaigns").field("senders", &self.senders.len()).finish_non_exhaustive()
    }
}

/// A recipient's consent and status in the audience (none: not there).
type Person = (Option<bool>, Option<i16>);

/// One outbox row to deliver, with what it needs.
struct Pending {
    campaign: Uuid,
    person: Uuid,
    locale: String,
    attempts: i32,
}

/// The sender's settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where readers read articles: a campaign's article link is
    /// `<public_url>/<slug>?locale=<locale>`.
    pub public_url: String,
    /// How often a round runs.
    pub interval: Duration,
}

impl Campaigns {
    /// A sender recording through `repo`, opening contacts through `data`
    /// and delivering through `senders` (one connection each, used at once).
    pub fn new(
        repo: Repository<Campaign>,
        pool: PgPool,
        data: Arc<dyn PersonData>,
        senders: Vec<Arc<dyn Sender>>,
        chain: FallbackChain,
        settings: Settings,
    ) -> Self {
        let meter = opentelemetry::global::meter("acasa.content");
        // Labelled by the outcome only: nothing personal.
        let sent = meter
            .u64_counter("acasa.content.campaign_messages")
            .with_description("campaign messages handled, by outcome")
            .build();
        Self {
            repo,
            pool,
            data,
            senders,
            chain: Arc::new(chain),
            public_url: settings.public_url.trim_end_matches('/').to_owned(),
            interval: settings.interval,
            sent,
        }
    }

    async fn execute(&self, campaign: Uuid, request_id: &str, command: CampaignCommand) -> Result<usize, String> {
        let request_id = RequestId::parse(request_id).map_err(|e| e.to_string())?;
        let meta = acasa_runtime::request::system_meta(ACTOR, request_id, "acasa.content.CampaignSender");
        match self.repo.execute(&campaign.to_string(), &command, &meta).await {
            Ok(o) => Ok(o.events.len()),
            Err(CommandError::Rejected(e)) => Err(format!("refused: {e}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Starts the scheduled campaigns whose send time is reached by `now`.
    pub async fn start_due(&self, now: DateTime<Utc>) -> Result<usize, sqlx::Error> {
        let due: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT campaign_id, send_at FROM content.campaigns WHERE state = $1 AND send_at <= $2 \
             ORDER BY send_at LIMIT 100",
        )
        .bind(pb::CampaignState::Scheduled as i16)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut started = 0;
        for (campaign, at) in due {
            let request_id = format!("start:{campaign}:{}", at.timestamp_micros());
            match self.execute(campaign, &request_id, CampaignCommand::StartSending(Stamp::new(ACTOR, now))).await {
                Ok(n) => started += usize::from(n > 0),
                Err(e) => tracing::warn!(campaign_id = %campaign, error = %e, "starting a campaign failed"),
            }
        }
        Ok(started)
    }

    /// Records the next batch of each sending campaign, or completes it.
    pub async fn record(&self, now: DateTime<Utc>) -> Result<Round, sqlx::Error> {
        let sending: Vec<(Uuid,)> = sqlx::query_as("SELECT campaign_id FROM content.campaigns WHERE state = $1")
            .bind(pb::CampaignState::Sending as i16)
            .fetch_all(&self.pool)
            .await?;
        let mut round = Round::default();
        for (campaign,) in sending {
            let state = match self.repo.load(&campaign.to_string()).await {
                Ok((state, _)) => state,
                Err(e) => {
                    tracing::warn!(campaign_id = %campaign, error = %e, "loading a campaign failed");
                    continue;
                }
            };
            let Some(target) = state.target.clone() else { continue };
            let rows: Vec<(Uuid, String, Vec<String>)> = sqlx::query_as(
                "SELECT a.person_id, a.country, a.languages FROM content.audience a \
                 WHERE a.consent AND a.status = 1 AND a.country IS NOT NULL AND a.country <> 'MD' \
                   AND (cardinality($1::text[]) = 0 OR a.country = ANY($1)) AND a.languages && $2::text[] \
                   AND NOT EXISTS (SELECT 1 FROM content.deliveries d \
                                   WHERE d.campaign_id = $3 AND d.person_id = a.person_id) \
                 ORDER BY a.person_id LIMIT $4",
            )
            .bind(&target.countries)
            .bind(&target.languages)
            .bind(campaign)
            .bind(BATCH)
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                let request_id = format!("complete:{campaign}");
                match self.execute(campaign, &request_id, CampaignCommand::Complete(Stamp::new(ACTOR, now))).await {
                    Ok(n) => round.completed += usize::from(n > 0),
                    Err(e) => tracing::warn!(campaign_id = %campaign, error = %e, "completing a campaign failed"),
                }
                continue;
            }
            // The aggregate's own record wins over the read model's lag.
            let sent: Vec<Recipient> = rows
                .into_iter()
                .filter(|(person, _, _)| !state.sent.contains(person))
                .filter_map(|(person, country, languages)| {
                    let locale = languages.into_iter().find(|l| target.languages.contains(l))?;
                    Some(Recipient { person, locale, country })
                })
                .collect();
            let (Some(first), Some(last)) = (sent.first(), sent.last()) else { continue };
            let request_id = format!("batch:{campaign}:{}:{}:{}", first.person, last.person, sent.len());
            let n = sent.len();
            match self
                .execute(campaign, &request_id, CampaignCommand::RecordBatch { sent, stamp: Stamp::new(ACTOR, now) })
                .await
            {
                Ok(_) => round.recorded += n,
                Err(e) if e.contains(&CampaignError::AlreadySent.to_string()) => {
                    tracing::debug!(campaign_id = %campaign, "the outbox lags the campaign; next round");
                }
                Err(e) => tracing::warn!(campaign_id = %campaign, error = %e, "recording a batch failed"),
            }
        }
        Ok(round)
    }

    /// Delivers up to [`ROUND`] pending messages due by `now`.
    pub async fn deliver(&self, now: DateTime<Utc>) -> Result<Round, sqlx::Error> {
        let rows: Vec<(Uuid, Uuid, String, i32)> = sqlx::query_as(
            "SELECT campaign_id, person_id, locale, attempts FROM content.deliveries \
             WHERE status = $1 AND next_attempt_at <= $2 ORDER BY next_attempt_at, campaign_id, person_id LIMIT $3",
        )
        .bind(status::PENDING)
        .bind(now)
        .bind(ROUND)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(Round::default());
        }
        let pending: Vec<Pending> = rows
            .into_iter()
            .map(|(campaign, person, locale, attempts)| Pending { campaign, person, locale, attempts })
            .collect();
        let addresses = match self.addresses(&pending).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "the registry cannot open contacts now; next round");
                return Ok(Round::default());
            }
        };
        let messages = self.contents(&pending).await?;
        // One queue, drained by every connection at once.
        let queue = tokio::sync::Mutex::new(pending.into_iter());
        let mut work = Vec::with_capacity(self.senders.len());
        for sender in &self.senders {
            work.push(self.drain(sender.as_ref(), &queue, &addresses, &messages));
        }
        let mut round = Round::default();
        for r in futures::future::join_all(work).await {
            round += r;
        }
        Ok(round)
    }

    async fn drain(
        &self,
        sender: &dyn Sender,
        queue: &tokio::sync::Mutex<std::vec::IntoIter<Pending>>,
        addresses: &HashMap<Uuid, String>,
        messages: &HashMap<(Uuid, String), Option<(String, String)>>,
    ) -> Round {
        let mut round = Round::default();
        loop {
            let Some(p) = queue.lock().await.next() else { break };
            round += self.deliver_one(sender, &p, addresses.get(&p.person), messages).await;
        }
        round
    }

    /// The e-mail addresses of the people of `pending` who have one, opened
    /// by the registry now (an erased person's open for no one).
    async fn addresses(&self, pending: &[Pending]) -> Result<HashMap<Uuid, String>, String> {
        let mut people: Vec<Uuid> = pending.iter().map(|p| p.person).collect();
        people.sort_unstable();
        people.dedup();
        let rows: Vec<(Uuid, String, Vec<u8>)> = sqlx::query_as(
            "SELECT person_id, contacts_event, contacts_sealed FROM content.audience \
             WHERE person_id = ANY($1) AND status = 1 AND consent AND contacts_sealed IS NOT NULL",
        )
        .bind(&people)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| e.to_string())?;
        let mut fields = Vec::with_capacity(rows.len());
        let mut whose = Vec::with_capacity(rows.len());
        for (person, event_type, sealed) in rows {
            let Ok(sealed) = reg::Sealed::decode(sealed.as_slice()) else { continue };
            fields.push(SealedField { person, event_type, field: "contacts", sealed });
            whose.push(person);
        }
        let opened = open_all(&*self.data, fields).await?;
        Ok(whose
            .into_iter()
            .zip(opened)
            .filter_map(|(person, o)| match o {
                Opened::Contacts { email, .. } if !email.is_empty() => Some((person, email)),
                _ => None,
            })
            .collect())
    }

    /// Each (campaign, locale)'s subject and text, rendered once.
    async fn contents(
        &self,
        pending: &[Pending],
    ) -> Result<HashMap<(Uuid, String), Option<(String, String)>>, sqlx::Error> {
        let mut out = HashMap::new();
        for p in pending {
            let key = (p.campaign, p.locale.clone());
            if out.contains_key(&key) {
                continue;
            }
            let rendered = self.render(p.campaign, &p.locale).await?;
            out.insert(key, rendered);
        }
        Ok(out)
    }

    /// A campaign's subject and text in `locale`: its message, or its
    /// article's title, summary and link in the first locale of the chain
    /// published now. `None` when there is nothing to send.
    async fn render(&self, campaign: Uuid, locale: &str) -> Result<Option<(String, String)>, sqlx::Error> {
        let content: Option<(Vec<u8>,)> =
            sqlx::query_as("SELECT content FROM content.campaign_contents WHERE campaign_id = $1 AND locale = $2")
                .bind(campaign)
                .bind(locale)
                .fetch_optional(&self.pool)
                .await?;
        let Some(content) = content.and_then(|(c,)| pb::CampaignContent::decode(c.as_slice()).ok()) else {
            return Ok(None);
        };
        Ok(match content.content {
            Some(pb::campaign_content::Content::Message(m)) => Some((m.subject, m.text)),
            Some(pb::campaign_content::Content::ArticleId(article)) => {
                let Ok(article) = Uuid::parse_str(&article) else { return Ok(None) };
                let chain: Vec<String> = Locale::parse(locale)
                    .map(|l| self.chain.candidates(&l).iter().map(ToString::to_string).collect())
                    .unwrap_or_else(|_| vec![locale.to_owned()]);
                let row: Option<(String, String, String, String)> = sqlx::query_as(
                    "SELECT slug, locale, title, summary FROM content.published WHERE article_id = $1 \
                     AND locale = ANY($2) AND published_at <= now() AND (expire_at IS NULL OR expire_at > now()) \
                     ORDER BY array_position($2, locale) LIMIT 1",
                )
                .bind(article)
                .bind(&chain)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|(slug, served, title, summary)| {
                    let link = format!("{}/{slug}?locale={served}", self.public_url);
                    let text = if summary.is_empty() { link } else { format!("{summary}\n\n{link}") };
                    (title, text)
                })
            }
            None => None,
        })
    }

    async fn set(&self, p: &Pending, status: i16, error: Option<&str>) -> Round {
        let done = sqlx::query(
            "UPDATE content.deliveries SET status = $3, error = $4, attempts = attempts + 1 \
             WHERE campaign_id = $1 AND person_id = $2 AND status = 1",
        )
        .bind(p.campaign)
        .bind(p.person)
        .bind(status)
        .bind(error)
        .execute(&self.pool)
        .await;
        if let Err(e) = done {
            tracing::warn!(campaign_id = %p.campaign, error = %e, "updating the outbox failed; next round");
        }
        let outcome = match status {
            status::NO_CONSENT => "no_consent",
            status::ERASED => "erased",
            status::UNCERTAIN => "uncertain",
            _ => "failed",
        };
        self.sent.add(1, &[opentelemetry::KeyValue::new("outcome", outcome)]);
        Round { not_sent: 1, ..Round::default() }
    }

    async fn defer(&self, p: &Pending, e: &SendError) -> Round {
        if p.attempts + 1 >= MAX_ATTEMPTS {
            return self.set(p, status::FAILED, Some(&e.to_string())).await;
        }
        // 10 s, 20 s, 40 s… up to an hour.
        let delay = 10_i64.saturating_mul(1 << p.attempts.clamp(0, 9)).min(3600);
        let done = sqlx::query(
            "UPDATE content.deliveries SET attempts = attempts + 1, error = $3, \
             next_attempt_at = now() + make_interval(secs => $4) \
             WHERE campaign_id = $1 AND person_id = $2 AND status = 1",
        )
        .bind(p.campaign)
        .bind(p.person)
        .bind(e.to_string())
        .bind(delay as f64)
        .execute(&self.pool)
        .await;
        if let Err(e) = done {
            tracing::warn!(campaign_id = %p.campaign, error = %e, "updating the outbox failed; next round");
        }
        Round { deferred: 1, ..Round::default() }
    }

    /// Delivers one row: see the module documentation.
    async fn deliver_one(
        &self,
        sender: &dyn Sender,
        p: &Pending,
        address: Option<&String>,
        messages: &HashMap<(Uuid, String), Option<(String, String)>>,
    ) -> Round {
        // The row, locked and still pending (another sender did not take
        // it), and the person as the audience says now — one read, in the
        // transaction that records the send.
        let Ok(mut tx) = self.pool.begin().await else { return Round::default() };
        let row: Result<Option<Person>, sqlx::Error> = sqlx::query_as(
            "SELECT a.consent, a.status FROM content.deliveries d \
             LEFT JOIN content.audience a ON a.person_id = d.person_id \
             WHERE d.campaign_id = $1 AND d.person_id = $2 AND d.status = 1 FOR UPDATE OF d SKIP LOCKED",
        )
        .bind(p.campaign)
        .bind(p.person)
        .fetch_optional(&mut *tx)
        .await;
        let (consent, person_status) = match row {
            Ok(Some(r)) => r,
            Ok(None) => return Round::default(),
            Err(e) => {
                tracing::warn!(error = %e, "reading the outbox failed; next round");
                return Round::default();
            }
        };
        let not_sent = if person_status != Some(crate::audience::ACTIVE) {
            Some((status::ERASED, None))
        } else if consent != Some(true) {
            Some((status::NO_CONSENT, None))
        } else if address.is_none() {
            Some((status::FAILED, Some("no e-mail address")))
        } else if !matches!(messages.get(&(p.campaign, p.locale.clone())), Some(Some(_))) {
            Some((status::FAILED, Some("nothing to send in this language (article not published)")))
        } else {
            None
        };
        if let Some((to, error)) = not_sent {
            drop(tx);
            return self.set(p, to, error).await;
        }
        let (Some(to), Some(Some((subject, text)))) = (address, messages.get(&(p.campaign, p.locale.clone()))) else {
            return Round::default();
        };
        let message = Message {
            message_id: format!("<{}.{}@acasa>", p.campaign, p.person),
            to: to.clone(),
            subject: subject.clone(),
            text: text.clone(),
            html: None,
            language: p.locale.clone(),
        };
        let (campaign, person) = (p.campaign, p.person);
        let record = Box::pin(async move {
            sqlx::query(
                "UPDATE content.deliveries SET status = $3, sent_at = now(), attempts = attempts + 1, error = NULL \
                 WHERE campaign_id = $1 AND person_id = $2",
            )
            .bind(campaign)
            .bind(person)
            .bind(status::SENT)
            .execute(&mut *tx)
            .await
            .map_err(|e| e.to_string())?;
            tx.commit().await.map_err(|e| e.to_string())
        });
        match sender.send_recorded(&message, record).await {
            Delivery::Sent => {
                self.sent.add(1, &[opentelemetry::KeyValue::new("outcome", "sent")]);
                Round { sent: 1, ..Round::default() }
            }
            Delivery::NotSent(e @ SendError::Transient(_)) => self.defer(p, &e).await,
            Delivery::NotSent(e @ SendError::Permanent(_)) => self.set(p, status::FAILED, Some(&e.to_string())).await,
            Delivery::RecordedThen(e) => {
                let to = if e.is_transient() { status::UNCERTAIN } else { status::FAILED };
                let done = sqlx::query(
                    "UPDATE content.deliveries SET status = $3, error = $4 WHERE campaign_id = $1 AND person_id = $2",
                )
                .bind(campaign)
                .bind(person)
                .bind(to)
                .bind(e.to_string())
                .execute(&self.pool)
                .await;
                if let Err(db) = done {
                    tracing::error!(campaign_id = %campaign, error = %db, "correcting the outbox failed");
                }
                Round { not_sent: 1, ..Round::default() }
            }
            Delivery::SentNotRecorded(e) => {
                tracing::error!(campaign_id = %campaign, error = %e, "a message went out but its record failed");
                let done = sqlx::query(
                    "UPDATE content.deliveries SET status = $3, sent_at = now() WHERE campaign_id = $1 AND person_id = $2",
                )
                .bind(campaign)
                .bind(person)
                .bind(status::SENT)
                .execute(&self.pool)
                .await;
                if let Err(db) = done {
                    tracing::error!(campaign_id = %campaign, error = %db, "recording a sent message failed");
                }
                Round { sent: 1, ..Round::default() }
            }
        }
    }

    /// One round: start, record, deliver, as of `now`.
    pub async fn round(&self, now: DateTime<Utc>) -> Result<Round, sqlx::Error> {
        let mut round = Round { started: self.start_due(now).await?, ..Round::default() };
        round += self.record(now).await?;
        round += self.deliver(now).await?;
        Ok(round)
    }

    /// Rounds until `shutdown` turns true; a round that did something is
    /// followed at once by the next.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(interval = ?self.interval, connections = self.senders.len(), "campaign sender started");
        while !*shutdown.borrow() {
            let busy = match self.round(Utc::now()).await {
                Ok(r) => r != Round::default(),
                Err(e) => {
                    tracing::warn!(error = %e, "campaign round failed; retrying");
                    false
                }
            };
            if busy {
                continue;
            }
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => {}
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }
}
