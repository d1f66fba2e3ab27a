//! The message as built (headers, encodings) and the sender against a scripted
//! SMTP peer: dot-stuffing on the wire, the classification of every kind of
//! failure, connection reuse. The real server (aiosmtpd) is in `tests/it`.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use acasa_testkit::parse_message;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

use super::*;

const ANA: &str = "ana.rusu@example.md";

fn message(subject: &str, text: &str, language: &str) -> Message {
    Message {
        message_id: "<0190c7d2-campaign.0190c7d3-person@acasa>".into(),
        to: ANA.into(),
        subject: subject.into(),
        text: text.into(),
        html: None,
        language: language.into(),
    }
}

fn from() -> Mailbox {
    SmtpSettings::default().sender_mailbox().unwrap()
}

fn formatted(m: &Message) -> String {
    let (envelope, bytes) = format_message(m, &from()).unwrap();
    assert_eq!(envelope.to().iter().map(ToString::to_string).collect::<Vec<_>>(), [ANA]);
    assert_eq!(envelope.from().map(ToString::to_string).as_deref(), Some("info@acasa.local"));
    String::from_utf8(bytes).unwrap()
}

/// The header block of `raw`, unfolded, as `(name, value)`.
fn headers(raw: &str) -> Vec<(String, String)> {
    let head = raw.split("\r\n\r\n").next().unwrap().replace("\r\n ", " ").replace("\r\n\t", " ");
    head.split("\r\n")
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_owned(), v.trim().to_owned())
        })
        .collect()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
}

#[test]
fn non_ascii_subjects_and_bodies_are_encoded_and_decode_back() {
    for (language, subject, text) in [
        (
            "ro",
            "Informații despre angajarea în străinătate: ședința de marți",
            "Bună ziua! Țară, școală, ăâî.\nA doua linie.",
        ),
        ("ru-MD", "Информация о трудоустройстве за рубежом — встреча во вторник", "Здравствуйте!\nВторая строка."),
        ("uk", "Інформація про працевлаштування за кордоном: зустріч у вівторок", "Доброго дня! Ґанок, їжак, є.\n"),
    ] {
        let m = message(subject, text, language);
        let raw = formatted(&m);
        assert!(raw.is_ascii(), "8BITMIME must not be needed");
        assert!(!raw.replace("\r\n", "").contains('\n') && !raw.replace("\r\n", "").contains('\r'), "CRLF only");
        for line in raw.split("\r\n") {
            assert!(line.len() <= 78, "line of {}: {line}", line.len());
        }
        let h = headers(&raw);
        assert_eq!(header(&h, "Message-ID"), ["<0190c7d2-campaign.0190c7d3-person@acasa>"]);
        assert_eq!(header(&h, "Content-Language"), [language]);
        assert_eq!(header(&h, "MIME-Version"), ["1.0"]);
        assert_eq!(header(&h, "Date").len(), 1);
        assert_eq!(header(&h, "To"), [ANA]);
        assert!(header(&h, "Subject")[0].to_ascii_lowercase().starts_with("=?utf-8?"), "RFC 2047: {raw}");
        assert!(header(&h, "From")[0].to_ascii_lowercase().starts_with("=?utf-8?"), "{raw}");
        assert!(header(&h, "Content-Type")[0].starts_with("text/plain; charset=utf-8"), "{raw}");

        let got = parse_message(raw.as_bytes()).unwrap();
        assert_eq!(got.subject, subject);
        assert_eq!(got.from, "Acasă <info@acasa.local>");
        assert_eq!(got.body_text, text.trim_end());
        assert_eq!(got.content_language.as_deref(), Some(language));
        assert_eq!(got.body_html, None);
    }
}

#[test]
fn ascii_stays_readable_and_html_is_an_alternative() {
    let mut m = message("Information session", "Hello.", "en");
    m.html = Some("<p>Bună ziua, <b>Ana</b>!</p>".into());
    let raw = formatted(&m);
    let h = headers(&raw);
    assert_eq!(header(&h, "Subject"), ["Information session"]);
    assert!(header(&h, "Content-Type")[0].starts_with("multipart/alternative"), "{raw}");
    let got = parse_message(raw.as_bytes()).unwrap();
    assert_eq!(got.body_text, "Hello.");
    assert_eq!(got.body_html.as_deref(), Some("<p>Bună ziua, <b>Ana</b>!</p>"));
}

#[test]
fn the_language_is_canonical_and_the_message_id_bracketed() {
    let mut m = message("s", "t", "ru_md");
    m.message_id = "campaign.person@acasa".into();
    let h = headers(&formatted(&m));
    assert_eq!(header(&h, "Content-Language"), ["ru-MD"]);
    assert_eq!(header(&h, "Message-ID"), ["<campaign.person@acasa>"]);
}

#[test]
fn a_subject_cannot_add_headers() {
    let raw = formatted(&message("Hello\r\nBcc: eve@example.md", "t", "en"));
    let h = headers(&raw);
    assert!(header(&h, "Bcc").is_empty(), "{raw}");
    assert_eq!(parse_message(raw.as_bytes()).unwrap().subject, "Hello  Bcc: eve@example.md");
}

#[test]
fn unusable_messages_are_permanent_failures_naming_no_one() {
    let bad = |f: fn(&mut Message)| {
        let mut m = message("s", "t", "ro");
        f(&mut m);
        let err = format_message(&m, &from()).unwrap_err();
        assert!(!err.is_transient(), "{err}");
        assert!(!err.to_string().contains("rusu"), "{err}");
        err
    };
    bad(|m| m.to = "ana.rusu(at)example.md".into());
    bad(|m| m.to = "ana.rusu@".into());
    bad(|m| m.language = "româna".into());
    for id in ["no-at-sign", "<a b@acasa>", "<a@acasa>\r\nBcc: x@y", "<@acasa>", "<a@b@c>", ""] {
        let id = id.to_owned();
        let mut m = message("s", "t", "ro");
        m.message_id = id.clone();
        assert!(format_message(&m, &from()).is_err(), "{id:?}");
    }
}

/// A scripted SMTP peer on 127.0.0.1: greets, answers each command with what
/// `reply` gives for its verb (`GREETING`, `EHLO`, `MAIL`, `RCPT`, `DATA`,
/// `.` for the end of the data, `AUTH`) or a positive default, and records
/// each message's data as it came over the wire (dot-stuffed).
struct Peer {
    port: u16,
    data: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
}

async fn peer(reply: fn(&str) -> Option<&'static str>) -> Peer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let data = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let (d, c) = (data.clone(), connections.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(BufReader::new(stream), reply, d.clone()));
        }
    });
    Peer { port, data, connections }
}

/// One connection of a [`Peer`].
async fn serve(
    mut conn: BufReader<tokio::net::TcpStream>,
    reply: fn(&str) -> Option<&'static str>,
    data: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let answer = |verb: &str, default: &str| format!("{}\r\n", reply(verb).unwrap_or(default));
    match reply("GREETING") {
        Some("") => {
            // Say nothing until the client gives up.
            let _ = conn.read_line(&mut String::new()).await;
            return Ok(());
        }
        g => conn.get_mut().write_all(format!("{}\r\n", g.unwrap_or("220 peer ESMTP")).as_bytes()).await?,
    }
    loop {
        let mut line = String::new();
        if conn.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let out = match verb.as_str() {
            "EHLO" => answer("EHLO", "250-peer\r\n250-8BITMIME\r\n250 AUTH PLAIN LOGIN"),
            "QUIT" => {
                conn.get_mut().write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            "DATA" => {
                let go = answer("DATA", "354 go ahead");
                conn.get_mut().write_all(go.as_bytes()).await?;
                if !go.starts_with("354") {
                    continue;
                }
                let mut raw = String::new();
                loop {
                    let mut l = String::new();
                    if conn.read_line(&mut l).await? == 0 {
                        return Ok(());
                    }
                    if l == ".\r\n" {
                        break;
                    }
                    raw.push_str(&l);
                }
                data.lock().unwrap().push(raw);
                answer(".", "250 2.0.0 queued")
            }
            "AUTH" => answer("AUTH", "235 2.7.0 accepted"),
            v => answer(v, "250 2.0.0 OK"),
        };
        conn.get_mut().write_all(out.as_bytes()).await?;
    }
}

fn sender_for(port: u16) -> SmtpSender {
    SmtpSender::new(SmtpSettings { port, timeout: Duration::from_secs(5), ..SmtpSettings::default() }).unwrap()
}

#[tokio::test]
async fn lines_starting_with_a_dot_are_stuffed_on_the_wire() {
    let p = peer(|_| None).await;
    let text = "first\n.\n..two\n.three\nlast.";
    sender_for(p.port).send(&message("Dots", text, "en")).await.unwrap();
    let wire = p.data.lock().unwrap().clone();
    assert_eq!(wire.len(), 1);
    let lines: Vec<&str> = wire[0].split("\r\n").collect();
    assert!(lines.contains(&"..") && lines.contains(&"...two") && lines.contains(&"..three"), "{lines:?}");
    let unstuffed: String = wire[0].split_inclusive("\r\n").map(|l| l.strip_prefix('.').unwrap_or(l)).collect();
    assert_eq!(parse_message(unstuffed.as_bytes()).unwrap().body_text, text);
}

#[tokio::test]
async fn one_connection_carries_every_message() {
    let p = peer(|_| None).await;
    let s = sender_for(p.port);
    for i in 0..5 {
        s.send(&message(&format!("n{i}"), "t", "ro")).await.unwrap();
    }
    assert_eq!(p.connections.load(Ordering::SeqCst), 1);
    assert_eq!(p.data.lock().unwrap().len(), 5);
    s.close().await;
    s.send(&message("after close", "t", "ro")).await.unwrap();
    assert_eq!(p.connections.load(Ordering::SeqCst), 2);
}

/// Sends one message through a peer answering `reply`; the error.
async fn failure(reply: fn(&str) -> Option<&'static str>) -> SendError {
    let p = peer(reply).await;
    sender_for(p.port).send(&message("s", "t", "ro")).await.unwrap_err()
}

fn assert_names_no_one(err: &SendError) {
    let text = err.to_string();
    assert!(!text.contains("rusu") && !text.contains('@'), "{text}");
}

#[tokio::test]
async fn a_5xx_to_the_message_is_permanent() {
    for reply in [
        (|v: &str| (v == "RCPT").then_some("550 5.1.1 <ana.rusu@example.md>: mailbox unavailable"))
            as fn(&str) -> Option<&'static str>,
        |v| (v == "MAIL").then_some("553 5.7.1 sender refused"),
        |v| (v == "DATA").then_some("554 5.5.1 no valid recipients"),
        |v| (v == ".").then_some("554 5.7.1 message ana.rusu@example.md refused as spam"),
    ] {
        let err = failure(reply).await;
        assert!(matches!(&err, SendError::Permanent(t) if t.contains("55")), "{err}");
        assert_names_no_one(&err);
    }
}

#[tokio::test]
async fn a_4xx_is_transient() {
    for reply in [
        (|v: &str| (v == "RCPT").then_some("451 4.3.0 <ana.rusu@example.md>: try again later"))
            as fn(&str) -> Option<&'static str>,
        |v| (v == "MAIL").then_some("421 4.3.2 shutting down"),
        |v| (v == ".").then_some("452 4.3.1 insufficient storage"),
    ] {
        let err = failure(reply).await;
        assert!(matches!(&err, SendError::Transient(t) if t.contains("4")), "{err}");
        assert_names_no_one(&err);
    }
}

#[tokio::test]
async fn failures_before_the_message_are_transient_even_5xx() {
    // The greeting, EHLO: nothing to do with the message.
    let err = failure(|v| (v == "GREETING").then_some("554 5.3.2 no service")).await;
    assert!(err.is_transient(), "{err}");
    let err = failure(|v| (v == "EHLO").then_some("550 5.7.1 go away")).await;
    assert!(err.is_transient(), "{err}");

    // A server wanting a login or TLS before MAIL FROM.
    let err = failure(|v| (v == "MAIL").then_some("530 5.7.0 Must issue a STARTTLS command first")).await;
    assert!(matches!(&err, SendError::Transient(t) if t.contains("530")), "{err}");

    // A refused login.
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("smtp.password");
    std::fs::write(&password_file, "s3cret\n").unwrap();
    let p = peer(|v| (v == "AUTH").then_some("535 5.7.8 authentication failed")).await;
    let s = SmtpSender::new(SmtpSettings {
        port: p.port,
        username: Some("acasa".into()),
        password_file: Some(password_file),
        ..SmtpSettings::default()
    })
    .unwrap();
    let err = s.send(&message("s", "t", "ro")).await.unwrap_err();
    assert!(matches!(&err, SendError::Transient(t) if t.contains("logging in") && !t.contains("s3cret")), "{err}");
    assert!(p.data.lock().unwrap().is_empty());
}

#[tokio::test]
async fn no_server_and_a_silent_server_are_transient() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = sender_for(port).send(&message("s", "t", "ro")).await.unwrap_err();
    assert!(err.is_transient(), "{err}");

    let p = peer(|v| (v == "GREETING").then_some("")).await;
    let s =
        SmtpSender::new(SmtpSettings { port: p.port, timeout: Duration::from_millis(200), ..SmtpSettings::default() })
            .unwrap();
    let err = s.send(&message("s", "t", "ro")).await.unwrap_err();
    assert!(matches!(&err, SendError::Transient(t) if t.contains("within 200 ms")), "{err}");
}

#[tokio::test]
async fn after_a_refusal_the_next_message_goes_out() {
    let p = peer(|v| (v == "RCPT").then_some("550 5.1.1 unknown")).await;
    let s = sender_for(p.port);
    assert!(!s.send(&message("s", "t", "ro")).await.unwrap_err().is_transient());
    assert!(!s.send(&message("s", "t", "ro")).await.unwrap_err().is_transient());
    // lettre ends the connection after a refused command; each message had its own.
    assert_eq!(p.connections.load(Ordering::SeqCst), 2);
}

#[test]
fn the_password_file_must_exist_and_hold_something() {
    let dir = tempfile::tempdir().unwrap();
    let settings = |file: &str| SmtpSettings {
        username: Some("acasa".into()),
        password_file: Some(dir.path().join(file)),
        ..SmtpSettings::default()
    };
    let err = SmtpSender::new(settings("missing")).unwrap_err().to_string();
    assert!(err.contains("ACASA_SMTP_PASSWORD_FILE"), "{err}");
    std::fs::write(dir.path().join("empty"), "\n").unwrap();
    let err = SmtpSender::new(settings("empty")).unwrap_err().to_string();
    assert!(err.contains("is empty"), "{err}");
}
