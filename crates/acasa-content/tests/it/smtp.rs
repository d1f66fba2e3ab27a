//! [`SmtpSender`] against a real SMTP server (aiosmtpd, `acasa_testkit::SmtpServer`):
//! 500 Romanian, Russian and Ukrainian messages arrive once each, refused
//! recipients fail permanently, and a server killed mid-way gives transient
//! errors until it is back, after which the same sender delivers again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acasa_content::sender::{Message, SendError, Sender as _, SmtpSender, SmtpSettings, TlsMode};
use acasa_testkit::{ReceivedMessage, SmtpServer, SmtpTls};

const LANGUAGES: [(&str, &str, &str); 3] = [
    ("ro", "Informații despre angajarea în străinătate nr. {i}: ședința de marți", "Bună ziua!\nȚara vă așteaptă."),
    ("ru", "Информация о трудоустройстве за рубежом № {i}: встреча во вторник", "Здравствуйте!\nРодина ждёт вас."),
    ("uk", "Інформація про працевлаштування за кордоном № {i}: зустріч у вівторок", "Доброго дня!\nҐанок, їжак, є."),
];

/// The `i`-th message of a campaign: a language in turn, a line starting
/// with a dot, an HTML alternative on every fifth.
fn message(i: usize) -> Message {
    let (language, subject, text) = LANGUAGES[i % LANGUAGES.len()];
    Message {
        message_id: format!("<campaign-7.person-{i}@acasa>"),
        to: format!("person{i}@example.md"),
        subject: subject.replace("{i}", &i.to_string()),
        text: format!("{text}\n.\n.{i} — sfârșit"),
        html: i.is_multiple_of(5).then(|| format!("<p>{text} <b>{i}</b></p>")),
        language: language.to_owned(),
    }
}

fn check(got: &ReceivedMessage, i: usize) {
    let want = message(i);
    assert_eq!(got.to, std::slice::from_ref(&want.to), "{i}");
    assert_eq!(got.message_id, want.message_id, "{i}");
    assert_eq!(got.subject, want.subject, "{i}");
    assert_eq!(got.content_language.as_deref(), Some(want.language.as_str()), "{i}");
    assert_eq!(got.body_text, want.text, "{i}");
    assert_eq!(got.body_html, want.html, "{i}");
    assert_eq!(got.from, "Acasă <info@acasa.local>");
    assert!(got.date.is_some());
}

/// The messages received, by the `i` of their message id.
fn received(server: &SmtpServer) -> anyhow::Result<HashMap<usize, Vec<ReceivedMessage>>> {
    let mut by_i: HashMap<usize, Vec<ReceivedMessage>> = HashMap::new();
    for m in server.messages()? {
        let i = m
            .message_id
            .strip_prefix("<campaign-7.person-")
            .and_then(|s| s.strip_suffix("@acasa>"))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("unexpected message id {}", m.message_id))?;
        by_i.entry(i).or_default().push(m);
    }
    Ok(by_i)
}

fn sender(server: &SmtpServer) -> anyhow::Result<SmtpSender> {
    Ok(SmtpSender::new(SmtpSettings {
        host: server.host().to_owned(),
        port: server.port(),
        timeout: Duration::from_secs(10),
        ..SmtpSettings::default()
    })?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_messages_arrive_once_each() -> anyhow::Result<()> {
    let server = SmtpServer::start().await?;
    let sender = sender(&server)?;
    let messages: Vec<Message> = (0..500).map(message).collect();
    let started = Instant::now();
    for m in &messages {
        sender.send(m).await?;
    }
    let took = started.elapsed();
    println!(
        "SMTP: {} messages over one connection in {took:.2?}: {:.0} messages/s",
        messages.len(),
        messages.len() as f64 / took.as_secs_f64()
    );

    let got = received(&server)?;
    assert_eq!(got.len(), 500);
    for (i, copies) in &got {
        assert_eq!(copies.len(), 1, "message {i} arrived {} times", copies.len());
        check(&copies[0], *i);
    }
    Ok(())
}

#[tokio::test]
async fn refused_recipients_fail_permanently_deferred_ones_transiently() -> anyhow::Result<()> {
    let server = SmtpServer::start().await?;
    let sender = sender(&server)?;
    let mut m = message(0);
    m.to = "reject.ana.rusu@example.md".into();
    match sender.send(&m).await {
        Err(SendError::Permanent(text)) => {
            assert!(text.contains("550") && !text.contains("rusu") && !text.contains('@'), "{text}");
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    m.to = "defer.ana.rusu@example.md".into();
    match sender.send(&m).await {
        Err(SendError::Transient(text)) => {
            assert!(text.contains("451") && !text.contains("rusu") && !text.contains('@'), "{text}");
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
    // The sender carries on with the next message.
    sender.send(&message(1)).await?;
    let got = received(&server)?;
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), [1]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_way_gives_transient_errors_then_delivers_again() -> anyhow::Result<()> {
    const N: usize = 300;
    let mut server = SmtpServer::start().await?;
    let sender = Arc::new(sender(&server)?);

    // Send N messages in the background; kill the server once a third arrived.
    let task = tokio::spawn({
        let sender = sender.clone();
        async move {
            let mut failed = Vec::new();
            for i in 0..N {
                match sender.send(&message(i)).await {
                    Ok(()) => {}
                    Err(e) => failed.push((i, e)),
                }
            }
            failed
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.message_count()? < N / 3 {
        anyhow::ensure!(Instant::now() < deadline, "no {} messages within 60 s", N / 3);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    let failed = task.await?;
    let stored = server.message_count()?;
    assert!(stored < N, "the kill came too late to matter ({stored} stored)");
    // Every message not stored failed; so may the one in flight at the kill,
    // if the server stored it and died before its 250 went out.
    assert!(failed.len() == N - stored || failed.len() == N - stored + 1, "{} failed, {stored} stored", failed.len());
    for (i, e) in &failed {
        assert!(e.is_transient(), "message {i}: {e}");
        assert!(!e.to_string().contains(&format!("person{i}@")), "{e}");
    }
    println!("SMTP: killed after {stored} of {N}; {} transient failures, e.g. {}", failed.len(), failed[0].1);

    // Back up: the same sender connects again; the outbox would now retry the failed ones.
    server.restart().await?;
    for (i, _) in &failed {
        sender.send(&message(*i)).await?;
    }
    let got = received(&server)?;
    assert_eq!(got.len(), N, "every message arrived");
    let twice: Vec<usize> = got.iter().filter(|(_, copies)| copies.len() > 1).map(|(i, _)| *i).collect();
    for (i, copies) in &got {
        check(&copies[0], *i);
        assert!(copies.len() <= 2, "message {i} arrived {} times", copies.len());
    }
    // Only that one message can arrive twice, with the same Message-ID, which
    // is why the caller's ids are deterministic.
    assert!(twice.len() <= 1 && twice.iter().all(|i| failed.iter().any(|(f, _)| f == i)), "{twice:?}");
    assert_eq!(twice.len(), failed.len() - (N - stored));
    Ok(())
}

#[tokio::test]
async fn tls_and_starttls_deliver_to_a_trusted_server_only() -> anyhow::Result<()> {
    for (server_tls, tls) in [(SmtpTls::Tls, TlsMode::Tls), (SmtpTls::StartTls, TlsMode::StartTls)] {
        let server = SmtpServer::start_with(server_tls).await?;
        let settings = SmtpSettings {
            host: server.host().to_owned(),
            port: server.port(),
            tls,
            ca_file: Some(SmtpServer::ca_certificate()),
            timeout: Duration::from_secs(10),
            ..SmtpSettings::default()
        };
        let trusting = SmtpSender::new(settings.clone())?;
        trusting.send(&message(1)).await?;
        trusting.send(&message(2)).await?;

        // Without the test CA the certificate is not trusted: nothing is sent,
        // and the error is transient (the settings, not the message, are wrong).
        match SmtpSender::new(SmtpSettings { ca_file: None, ..settings.clone() }) {
            Ok(untrusting) => match untrusting.send(&message(3)).await {
                Err(SendError::Transient(text)) => assert!(text.contains("certificate"), "{tls:?}: {text}"),
                other => panic!("{tls:?}: expected a transient failure, got {other:?}"),
            },
            // A machine without any CA certificate refuses TLS from the start.
            Err(e) => assert!(e.to_string().contains("CA"), "{e}"),
        }
        // Plain SMTP to a server that requires STARTTLS: transient too.
        if server_tls == SmtpTls::StartTls {
            let plain = SmtpSender::new(SmtpSettings { tls: TlsMode::None, ca_file: None, ..settings })?;
            let err = plain.send(&message(4)).await.unwrap_err();
            assert!(err.is_transient(), "{err}");
        }

        let got = received(&server)?;
        assert_eq!(got.len(), 2, "{tls:?}");
        for (i, copies) in &got {
            assert_eq!(copies.len(), 1);
            check(&copies[0], *i);
        }
    }

    // STARTTLS required of a server that does not offer it.
    let server = SmtpServer::start().await?;
    let sender = SmtpSender::new(SmtpSettings {
        host: server.host().to_owned(),
        port: server.port(),
        tls: TlsMode::StartTls,
        ..SmtpSettings::default()
    })?;
    match sender.send(&message(1)).await {
        Err(SendError::Transient(text)) => assert!(text.contains("STARTTLS"), "{text}"),
        other => panic!("expected a transient failure, got {other:?}"),
    }
    assert_eq!(server.message_count()?, 0);
    Ok(())
}

/// A record that notes it ran and answers `result`.
fn record(
    ran: &Arc<std::sync::atomic::AtomicUsize>,
    result: Result<(), String>,
) -> acasa_content::sender::Record<'static> {
    let ran = ran.clone();
    Box::pin(async move {
        ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        result
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_data_goes_out_only_once_the_record_has_committed() -> anyhow::Result<()> {
    use acasa_content::sender::Delivery;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let server = SmtpServer::start().await?;
    let sender = Arc::new(sender(&server)?);
    let ran = Arc::new(AtomicUsize::new(0));

    // Recorded, then delivered.
    assert_eq!(sender.send_recorded(&message(1), record(&ran, Ok(()))).await, Delivery::Sent);
    // The record fails: the message is abandoned before its end of data.
    let failed = sender.send_recorded(&message(2), record(&ran, Err("database down".into()))).await;
    assert!(
        matches!(failed, Delivery::NotSent(SendError::Transient(ref e)) if e.contains("database down")),
        "{failed:?}"
    );
    // A crash while recording (the task dies with the record pending): nothing delivered.
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let crashing = {
        let sender = sender.clone();
        tokio::spawn(async move {
            let record: acasa_content::sender::Record<'static> = Box::pin(async move {
                let _ = started_tx.send(());
                std::future::pending::<()>().await;
                Ok(())
            });
            sender.send_recorded(&message(3), record).await
        })
    };
    started_rx.await?;
    crashing.abort();
    assert!(crashing.await.is_err(), "aborted");
    // A refused recipient: the record never runs.
    let before = ran.load(Ordering::SeqCst);
    let refused = Message { to: "reject-me@example.md".into(), ..message(4) };
    let refused = sender.send_recorded(&refused, record(&ran, Ok(()))).await;
    assert!(matches!(refused, Delivery::NotSent(SendError::Permanent(_))), "{refused:?}");
    assert_eq!(ran.load(Ordering::SeqCst), before);
    // The sender goes on (a new connection where the old one broke).
    assert_eq!(sender.send_recorded(&message(5), record(&ran, Ok(()))).await, Delivery::Sent);

    let got = received(&server)?;
    let mut ids: Vec<usize> = got.keys().copied().collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 5], "only the recorded messages arrived");
    assert!(got.values().all(|v| v.len() == 1));
    check(&got[&5][0], 5);
    Ok(())
}
