//! The campaign part of `acasa bench` (within the content part): the
//! content worker's campaign sender delivering through the outbox to a
//! local SMTP server (aiosmtpd, started by `make bench`, its Maildir read
//! here).
//!
//! Setup (timed, not a target): `recipients` people registered in the
//! registry, living in Italy, reading Romanian, each with an e-mail address
//! and consent to information campaigns; then the wait until the content
//! worker's view of the registry (`content.audience`) holds them all. A
//! campaign with a Romanian message is created, scheduled a second ahead,
//! and the sender left to it: it starts the campaign, records its
//! recipients in batches, and delivers the outbox over its SMTP connections
//! (`ACASA_CONTENT_SEND_CONNECTIONS`), the registry opening every
//! recipient's contacts as it goes.
//!
//! Measured: messages recorded sent per second from the first to the last
//! (`content.deliveries.sent_at`; target ≥ 200/s), and from the send time to
//! the last; then the mailbox: every message counted once per `Message-ID`,
//! none twice.

use std::{
    collections::HashSet,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use acasa_proto::{
    content::v1::{self as pb, content_service_client::ContentServiceClient},
    registry::v1::{self as reg, registry_service_client::RegistryServiceClient},
};
use acasa_runtime::{Config, Role, TokenIssuer};
use anyhow::Context as _;
use chrono::Utc;
use serde::Serialize;

use super::client::{bearer, connect, req};
use super::stats::concurrently;

/// Where and how much.
#[derive(Clone, Debug)]
pub struct Target {
    /// The content service (`host:port`).
    pub content_addr: String,
    /// The registry (`host:port`).
    pub registry_addr: String,
    /// The SMTP server's Maildir.
    pub maildir: PathBuf,
    /// People to reach.
    pub recipients: usize,
    /// Registrations at once.
    pub clients: usize,
}

/// The figures.
#[derive(Debug, Serialize)]
pub struct CampaignReport {
    /// Recipients recorded.
    pub recipients: usize,
    /// Seconds to register them, consent included, and for the audience to hold them.
    pub setup_seconds: f64,
    /// Messages recorded sent per second, first to last (target ≥ 200).
    pub sends_per_second: f64,
    /// Seconds from the send time to the last message recorded sent.
    pub seconds_from_send_time: f64,
    /// Messages in the mailbox.
    pub mailbox_messages: usize,
    /// Messages in the mailbox with a `Message-ID` seen before (must be 0).
    pub duplicates: usize,
}

fn message_id(path: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("Message-ID:").or_else(|| l.strip_prefix("Message-Id:")))
        .map(|v| v.trim().to_owned())
}

/// Registers the people, runs a campaign to them, and measures it.
pub async fn run(config: &Config, pool: &sqlx::PgPool, target: &Target) -> anyhow::Result<CampaignReport> {
    let issuer = TokenIssuer::from_config(config)?;
    let ttl = Duration::from_secs(3600);
    let caseworker = Arc::new(bearer(&issuer.issue("bench-campaign-caseworker", &[Role::Caseworker], None, ttl)?)?);
    let editor = bearer(&issuer.issue("bench-campaign-editor", &[Role::Editor], None, ttl)?)?;
    let registry = Arc::new(connect(&target.registry_addr, 2, "registry").await?);
    let n = target.recipients.max(1);
    let run = uuid::Uuid::now_v7().simple().to_string();
    let timeout = Duration::from_secs(30);
    eprintln!("bench: campaign: registering {n} people abroad with consent to information campaigns…");
    let started = Instant::now();
    {
        let (registry, caseworker, run) = (registry.clone(), caseworker.clone(), run.clone());
        concurrently(n, target.clients.max(1), move |i| {
            let (registry, caseworker, run) = (registry.clone(), caseworker.clone(), run.clone());
            async move {
                let mut c = RegistryServiceClient::new(registry[i % registry.len()].clone());
                let person = reg::RegisterPersonRequest {
                    request_id: format!("bench-campaign-{run}-{i}"),
                    details: Some(reg::PersonDetails {
                        given_name: "Ion".into(),
                        family_name: format!("Campanie-{i}"),
                        birth_date: Some(acasa_proto::r#type::v1::Date { year: 1990, month: 5, day: 17 }),
                        languages: vec!["ro".into(), "it".into()],
                        ..Default::default()
                    }),
                    contacts: Some(reg::Contacts { email: format!("c{run}.{i}@example.md"), phone: String::new() }),
                    country_of_residence: "IT".into(),
                    categories: vec![reg::Category::MigrantAbroad as i32],
                    interests: vec![reg::Interest::Information as i32],
                };
                let p = c.register_person(req(&caseworker, person, timeout)).await.context("registering")?.into_inner();
                let consent = reg::GiveConsentRequest {
                    request_id: format!("bench-campaign-consent-{run}-{i}"),
                    person_id: p.person_id,
                    purpose: reg::ConsentPurpose::InformationCampaigns as i32,
                    partner_id: String::new(),
                    channel: reg::ConsentChannel::Online as i32,
                };
                c.give_consent(req(&caseworker, consent, timeout)).await.context("giving consent")?;
                Ok(())
            }
        })
        .await?;
    }
    // The audience holds them all (consent and languages: the registry opened them).
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM content.audience WHERE consent AND status = 1 AND country = 'IT' \
             AND 'ro' = ANY(languages)",
        )
        .fetch_one(pool)
        .await?;
        if usize::try_from(held).unwrap_or(0) >= n {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the content audience holds {held} of {n} people after 10 min");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let setup_seconds = started.elapsed().as_secs_f64();

    let mut content = ContentServiceClient::new(connect(&target.content_addr, 1, "content service").await?.remove(0));
    let r = req(
        &editor,
        pb::CreateCampaignRequest {
            request_id: format!("bench-campaign-{run}"),
            name: format!("Bench {run}"),
            target: Some(pb::CampaignTarget { countries: vec!["IT".into()], languages: vec!["ro".into()] }),
        },
        timeout,
    );
    let campaign = content.create_campaign(r).await.context("creating the campaign")?.into_inner().campaign_id;
    let r = req(
        &editor,
        pb::SetCampaignContentRequest {
            request_id: format!("bench-campaign-content-{run}"),
            campaign_id: campaign.clone(),
            content: Some(pb::CampaignContent {
                locale: "ro".into(),
                content: Some(pb::campaign_content::Content::Message(pb::CampaignMessage {
                    subject: "Drepturile dumneavoastră în Italia".into(),
                    text: "Perioadele lucrate în Italia se iau în calcul la pensie.".into(),
                })),
            }),
        },
        timeout,
    );
    content.set_campaign_content(r).await.context("setting the campaign's content")?;
    let send_at = Utc::now() + chrono::Duration::seconds(1);
    let r = req(
        &editor,
        pb::ScheduleCampaignRequest {
            request_id: format!("bench-campaign-schedule-{run}"),
            campaign_id: campaign.clone(),
            send_at: Some(acasa_proto::time::timestamp(send_at)),
        },
        timeout,
    );
    content.schedule_campaign(r).await.context("scheduling the campaign")?;
    eprintln!("bench: campaign: sending to {n} people through the outbox…");
    let id = uuid::Uuid::parse_str(&campaign)?;
    let deadline = Instant::now() + Duration::from_secs(900);
    let (sent, first, last) = loop {
        let (sent, first, last): (i64, Option<chrono::DateTime<Utc>>, Option<chrono::DateTime<Utc>>) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status = 2), min(sent_at), max(sent_at) FROM content.deliveries \
                 WHERE campaign_id = $1",
        )
        .bind(id)
        .fetch_one(pool)
        .await?;
        if usize::try_from(sent).unwrap_or(0) >= n {
            break (sent, first, last);
        }
        anyhow::ensure!(Instant::now() < deadline, "{sent} of {n} campaign messages sent after 15 min");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let span = match (first, last) {
        (Some(f), Some(l)) => (l - f).num_microseconds().unwrap_or(0) as f64 / 1e6,
        _ => 0.0,
    };
    let from_send = last.map_or(0.0, |l| (l - send_at).num_microseconds().unwrap_or(0) as f64 / 1e6);
    // The mailbox: this campaign's messages, each Message-ID once.
    let mut seen = HashSet::new();
    let (mut mailbox_messages, mut duplicates) = (0, 0);
    for dir in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(target.maildir.join(dir)) else { continue };
        for e in entries.flatten() {
            let Some(mid) = message_id(&e.path()) else { continue };
            if !mid.starts_with(&format!("<{campaign}.")) {
                continue;
            }
            mailbox_messages += 1;
            if !seen.insert(mid) {
                duplicates += 1;
            }
        }
    }
    Ok(CampaignReport {
        recipients: usize::try_from(sent).unwrap_or(0),
        setup_seconds,
        sends_per_second: if span > 0.0 { (sent as f64 - 1.0).max(1.0) / span } else { 0.0 },
        seconds_from_send_time: from_send,
        mailbox_messages,
        duplicates,
    })
}

/// Prints the figures.
pub fn print(c: &CampaignReport) {
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "  campaign sends: {} messages, {:.0} /s recorded sent first to last (target ≥ 200/s: {}), the last {:.1} s \
         after the send time; mailbox {} messages, {} twice (none allowed: {}); setup {:.1} s",
        c.recipients,
        c.sends_per_second,
        verdict(c.sends_per_second >= 200.0),
        c.seconds_from_send_time,
        c.mailbox_messages,
        c.duplicates,
        verdict(c.duplicates == 0 && c.mailbox_messages == c.recipients),
        c.setup_seconds
    );
}
