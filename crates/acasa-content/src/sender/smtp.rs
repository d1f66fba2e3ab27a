//! E-mail over SMTP: [`SmtpSender`], one reused connection to one server.
//!
//! A message becomes an RFC 5322 message built by lettre: `Message-ID` as the
//! caller chose it, `Date`, `From`, `To`, the subject as RFC 2047 encoded
//! words when it is not ASCII, `Content-Language`, `MIME-Version`, and a
//! `text/plain; charset=utf-8` body (quoted-printable or base64, whichever is
//! shorter) or, with HTML, a `multipart/alternative` of the text and the HTML.
//! What goes on the wire is ASCII with CRLF line endings, so neither 8BITMIME
//! nor SMTPUTF8 is needed.
//!
//! The sender holds one connection (messages are sent one at a time over it,
//! in the order `send` is called) and opens it on the first message: TCP, TLS
//! or STARTTLS as configured, then AUTH PLAIN or LOGIN when there is a
//! username. Any failure drops the connection; the next message opens a new
//! one. A connection idle for [`IDLE_PROBE`] or more is checked with NOOP
//! first, since servers close idle connections and a message must not fail
//! only because of that.
//!
//! Errors: a 5xx reply in the message's transaction (MAIL FROM, RCPT TO,
//! DATA) is [`SendError::Permanent`], and so is a message that cannot be built
//! (a recipient that is not an address). A 4xx reply, a connection refused,
//! lost or timed out, a TLS failure, any failure while connecting or logging
//! in, and the 5xx replies that ask for a login or TLS first (530, 534, 535,
//! 538) are [`SendError::Transient`]: they say nothing about the message, and
//! the outbox should keep it until the settings are fixed.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use lettre::address::{Address, Envelope};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;

use super::{Delivery, Message, Record, SendError, Sender, scrub};
use crate::domain::locale::Locale;

mod gate;
mod settings;
#[cfg(test)]
mod tests;
mod tls;

use gate::{Gate, Gated};

pub use settings::{SettingsError, SmtpSettings, TlsMode};
use tls::{Security, TlsTcp};

/// A connection unused this long is checked with NOOP before the next message.
pub const IDLE_PROBE: Duration = Duration::from_secs(1);

/// The longest `Message-ID` accepted (RFC 5322 lines stop at 998).
const MAX_MESSAGE_ID: usize = 250;

const CONTENT_LANGUAGE: HeaderName = HeaderName::new_from_ascii_str("Content-Language");

/// Sends e-mail through one SMTP server over one reused connection.
pub struct SmtpSender {
    settings: SmtpSettings,
    from: Mailbox,
    hello: ClientId,
    credentials: Option<Credentials>,
    security: Security,
    connection: tokio::sync::Mutex<Option<Open>>,
}

/// The open connection, its end-of-data gate (none under STARTTLS: see
/// [`gate`]) and when it was last used.
struct Open {
    smtp: AsyncSmtpConnection,
    gate: Option<Arc<Gate>>,
    last_used: Instant,
}

impl fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSender")
            .field("host", &self.settings.host)
            .field("port", &self.settings.port)
            .field("tls", &self.settings.tls)
            .field("login", &self.credentials.is_some())
            .finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// Checks `settings` and reads the password file; connects on the first
    /// message.
    pub fn new(settings: SmtpSettings) -> Result<Self, SettingsError> {
        settings.validate()?;
        let from = settings.sender_mailbox()?;
        let credentials = match (&settings.username, &settings.password_file) {
            (Some(user), Some(file)) => {
                let password = std::fs::read_to_string(file).map_err(|e| {
                    SettingsError(format!("ACASA_SMTP_PASSWORD_FILE: cannot read {}: {e}", file.display()))
                })?;
                let password = password.trim();
                if password.is_empty() {
                    return Err(SettingsError(format!("ACASA_SMTP_PASSWORD_FILE: {} is empty", file.display())));
                }
                Some(Credentials::new(user.clone(), password.to_owned()))
            }
            _ => None,
        };
        let security = Security::new(&settings)?;
        let hello = ClientId::Domain(settings.hello_name.clone());
        Ok(SmtpSender { settings, from, hello, credentials, security, connection: tokio::sync::Mutex::new(None) })
    }

    /// The settings it sends with.
    pub fn settings(&self) -> &SmtpSettings {
        &self.settings
    }

    /// Ends the connection, if one is open, with QUIT. The next message opens
    /// another.
    pub async fn close(&self) {
        if let Some(mut open) = self.connection.lock().await.take() {
            let _ = tokio::time::timeout(self.settings.timeout, open.smtp.quit()).await;
        }
    }

    async fn deliver(&self, message: &Message) -> Result<(), SendError> {
        // A message that cannot be built fails before the connection is touched.
        let (envelope, bytes) = format_message(message, &self.from)?;
        let mut slot = self.connection.lock().await;
        let mut open = self.open(slot.take()).await?;
        match tokio::time::timeout(self.settings.timeout, open.smtp.send(&envelope, &bytes)).await {
            Ok(Ok(_)) => {
                open.last_used = Instant::now();
                *slot = Some(open);
                Ok(())
            }
            Ok(Err(e)) => {
                // lettre ends the connection after any failed command; keep it only if it did not.
                if !open.smtp.has_broken() {
                    *slot = Some(open);
                }
                Err(classify(&e, &message.to))
            }
            Err(_) => Err(self.timed_out()),
        }
    }

    fn timed_out(&self) -> SendError {
        SendError::Transient(format!(
            "the SMTP server did not complete the transaction within {} ms",
            self.settings.timeout.as_millis()
        ))
    }

    /// Sends `message`, holding its end of data until `record` has
    /// committed (see [`gate`]); without a gate (STARTTLS), records after
    /// the server's reply.
    async fn deliver_recorded(&self, message: &Message, record: Record<'_>) -> Delivery {
        let (envelope, bytes) = match format_message(message, &self.from) {
            Ok(m) => m,
            Err(e) => return Delivery::NotSent(e),
        };
        let mut slot = self.connection.lock().await;
        let mut open = match self.open(slot.take()).await {
            Ok(open) => open,
            Err(e) => return Delivery::NotSent(e),
        };
        let Some(gate) = open.gate.clone() else {
            drop(slot);
            return match self.deliver(message).await {
                Ok(()) => match record.await {
                    Ok(()) => Delivery::Sent,
                    Err(e) => Delivery::SentNotRecorded(e),
                },
                Err(e) => Delivery::NotSent(e),
            };
        };
        let (delivery, reusable) =
            self.through_gate(&mut open.smtp, &gate, (&envelope, &bytes), &message.to, record).await;
        if reusable && !open.smtp.has_broken() {
            open.last_used = Instant::now();
            *slot = Some(open);
        }
        delivery
    }

    /// One transaction over `smtp` with its end of data held by `gate`
    /// until `record` commits; whether the connection may be used again.
    async fn through_gate(
        &self,
        smtp: &mut AsyncSmtpConnection,
        gate: &Gate,
        (envelope, bytes): (&Envelope, &[u8]),
        to: &str,
        record: Record<'_>,
    ) -> (Delivery, bool) {
        let timeout = self.settings.timeout;
        let mut reached = gate.arm();
        let send = smtp.send(envelope, bytes);
        tokio::pin!(send);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        // Up to the end of the data: MAIL, RCPT, DATA, the body.
        let ended = tokio::select! {
            ended = &mut send => Some(ended),
            held = &mut reached => if held.is_ok() { None } else { Some((&mut send).await) },
            () = &mut deadline => {
                gate.disarm();
                return (Delivery::NotSent(self.timed_out()), false);
            }
        };
        if let Some(ended) = ended {
            // The transaction ended before its end of data: refused on the way.
            gate.disarm();
            return match ended {
                Ok(_) => (Delivery::SentNotRecorded("the end of data was not held".to_owned()), true),
                Err(e) => (Delivery::NotSent(classify(&e, to)), true),
            };
        }
        // The point of no return: the record first, then the end of data.
        let recorded = match tokio::time::timeout(timeout, record).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("recording the message failed: {e}")),
            Err(_) => Err("recording the message timed out".to_owned()),
        };
        if let Err(e) = recorded {
            // Abandoned: the held write is never let out, and the connection
            // is dropped (not awaited: lettre would answer the failure with a
            // QUIT the server, still reading data, never replies to). The
            // server discards the unterminated message.
            gate.abort();
            return (Delivery::NotSent(SendError::Transient(e)), false);
        }
        gate.release();
        match tokio::time::timeout(timeout, &mut send).await {
            Ok(Ok(_)) => (Delivery::Sent, true),
            Ok(Err(e)) => (Delivery::RecordedThen(classify(&e, to)), true),
            Err(_) => (Delivery::RecordedThen(self.timed_out()), false),
        }
    }

    /// The open connection, checked when idle, or a new one.
    async fn open(&self, open: Option<Open>) -> Result<Open, SendError> {
        Ok(match open {
            Some(open) if open.last_used.elapsed() < IDLE_PROBE => open,
            Some(mut open) => {
                let alive = tokio::time::timeout(self.settings.timeout, open.smtp.test_connected()).await;
                if matches!(alive, Ok(true)) {
                    open
                } else {
                    tracing::debug!("the idle SMTP connection is gone; connecting again");
                    self.connect().await?
                }
            }
            None => self.connect().await?,
        })
    }

    /// Opens a connection: TCP (Nagle off, see [`tls`]), TLS, the greeting,
    /// EHLO, STARTTLS and EHLO again, AUTH.
    async fn connect(&self) -> Result<Open, SendError> {
        let s = &self.settings;
        let where_ = format!("{}:{}", s.host, s.port);
        let steps = async {
            let host = s.host.trim_start_matches('[').trim_end_matches(']');
            let tcp = TcpStream::connect((host, s.port)).await.map_err(|e| format!("connecting: {e}"))?;
            tcp.set_nodelay(true).map_err(|e| format!("connecting: {e}"))?;
            let gate = Arc::new(Gate::default());
            let (stream, gate): (Box<dyn AsyncTokioStream>, _) = match &self.security {
                Security::Tls(connector, name) => {
                    let tls = TlsTcp::handshake(connector, name.clone(), tcp).await.map_err(|e| format!("TLS: {e}"))?;
                    (Box::new(Gated::new(tls, gate.clone())), Some(gate))
                }
                Security::Plain => (Box::new(Gated::new(tcp, gate.clone())), Some(gate)),
                // Below STARTTLS's TLS layer the end of data is ciphertext.
                Security::StartTls(_) => (Box::new(tcp), None),
            };
            let mut smtp = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
                .await
                .map_err(|e| format!("greeting and EHLO: {e}"))?;
            if let Security::StartTls(parameters) = &self.security {
                if !smtp.can_starttls() {
                    return Err("the server does not offer STARTTLS".to_owned());
                }
                smtp.starttls(parameters.clone(), &self.hello).await.map_err(|e| format!("STARTTLS: {e}"))?;
            }
            if let Some(credentials) = &self.credentials {
                smtp.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                    .await
                    .map_err(|e| format!("logging in: {e}"))?;
            }
            Ok((smtp, gate))
        };
        match tokio::time::timeout(s.timeout, steps).await {
            Ok(Ok((smtp, gate))) => {
                tracing::debug!(server = %where_, "connected to the SMTP server");
                Ok(Open { smtp, gate, last_used: Instant::now() })
            }
            Ok(Err(e)) => Err(SendError::Transient(format!("SMTP server {where_}: {}", scrub(&e, "")))),
            Err(_) => Err(SendError::Transient(format!(
                "SMTP server {where_}: no connection within {} ms",
                s.timeout.as_millis()
            ))),
        }
    }
}

impl Sender for SmtpSender {
    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(self.deliver(message))
    }

    fn send_recorded<'a>(&'a self, message: &'a Message, record: Record<'a>) -> BoxFuture<'a, Delivery> {
        Box::pin(self.deliver_recorded(message, record))
    }
}

/// Replies about the session, not the message: authentication or encryption
/// required (530), too weak (534), refused (535), required for this mechanism
/// (538). Our settings are wrong; the message is not.
const SESSION_CODES: [&str; 4] = ["530", "534", "535", "538"];

/// A failure of the message's transaction, as [`SendError`].
fn classify(e: &lettre::transport::smtp::Error, recipient: &str) -> SendError {
    let detail = scrub(&e.to_string(), recipient);
    let code = e.status().map(|c| c.to_string()).unwrap_or_default();
    if SESSION_CODES.contains(&code.as_str()) {
        SendError::Transient(format!("the SMTP server wants a login or TLS first (check ACASA_SMTP_*): {detail}"))
    } else if e.is_permanent() {
        SendError::Permanent(format!("the SMTP server refused the message: {detail}"))
    } else if e.is_transient() {
        SendError::Transient(format!("the SMTP server deferred the message: {detail}"))
    } else if e.is_client() {
        // What lettre refuses to send to this server (e.g. a non-ASCII address without SMTPUTF8).
        SendError::Permanent(format!("the message cannot go to this SMTP server: {detail}"))
    } else {
        SendError::Transient(format!("the SMTP connection failed: {detail}"))
    }
}

/// The envelope and the RFC 5322 text of `message`, from `from`.
pub(crate) fn format_message(message: &Message, from: &Mailbox) -> Result<(Envelope, Vec<u8>), SendError> {
    let to: Address = message
        .to
        .trim()
        .parse()
        .map_err(|_| SendError::Permanent("the recipient is not an e-mail address".to_owned()))?;
    let language =
        Locale::parse(&message.language).map_err(|e| SendError::Permanent(format!("the message's language: {e}")))?;
    let builder = lettre::Message::builder()
        .message_id(Some(message_id(&message.message_id)?))
        .from(from.clone())
        .to(Mailbox::new(None, to))
        .subject(one_line(&message.subject))
        .raw_header(HeaderValue::new(CONTENT_LANGUAGE, language.to_string()));
    let email = match &message.html {
        None => builder.singlepart(SinglePart::plain(message.text.clone())),
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(message.text.clone(), html.clone())),
    }
    .map_err(|e| SendError::Permanent(format!("the message cannot be built: {e}")))?;
    Ok((email.envelope().clone(), email.formatted()))
}

/// `id` as `<left@right>`: angle brackets added when missing; only dot-atom
/// characters, one `@`, both sides present.
fn message_id(id: &str) -> Result<String, SendError> {
    let id = id.trim();
    let inner = id.strip_prefix('<').and_then(|s| s.strip_suffix('>')).unwrap_or(id);
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b);
    let valid = match inner.split_once('@') {
        Some((left, right)) => {
            !left.is_empty() && !right.is_empty() && left.bytes().all(atext) && right.bytes().all(atext)
        }
        None => false,
    };
    if !valid || inner.len() + 2 > MAX_MESSAGE_ID {
        return Err(SendError::Permanent(format!(
            "the message id `{}` is not `<left@right>` of dot-atom characters, at most {MAX_MESSAGE_ID} long",
            id.escape_debug()
        )));
    }
    Ok(format!("<{inner}>"))
}

/// `s` on one line: line breaks and other control characters become spaces
/// (a subject cannot add headers).
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_owned()
}
