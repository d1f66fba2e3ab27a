//! Delivery of campaign messages: the [`Sender`] trait the outbox calls, and its
//! two adapters, e-mail over SMTP ([`SmtpSender`]) and SMS through a provider's
//! gateway ([`SmsSender`] over an [`SmsGateway`]).
//!
//! A sender delivers one [`Message`] and says whether a failure is worth a
//! retry ([`SendError::Transient`]: a 4xx reply, a refused or broken
//! connection, a timeout) or not ([`SendError::Permanent`]: a 5xx reply to the
//! message's own transaction, an address that is not one). The caller chooses
//! the message's id deterministically (`<campaign-id.person-id@acasa>`), so a
//! message sent again after an ambiguous failure carries the same `Message-ID`
//! and the receiving side can tell it is the same message. Error texts never
//! hold the recipient's address or number: they end up in logs and in the
//! outbox.
//!
//! # Why lettre
//!
//! E-mail goes out through [`lettre`] with its default features off and only
//! `smtp-transport`, `builder`, `tokio1`, `tokio1-rustls`, `ring` and
//! `rustls-native-certs` on. Everything heavy it needs is already in the
//! workspace (rustls 0.23 with ring and tokio-rustls through async-nats; idna,
//! url, mime, httpdate through the rest), so it adds six small crates (lettre,
//! nom 8, email-encoding, email_address, quoted_printable, base64 0.23): about
//! 7 s of compile time on two cores, no second TLS stack, no aws-lc-sys or
//! cmake, no OpenSSL. A hand-written client would have to get right what
//! lettre already does and tests: RFC 2047 encoded words for Romanian, Russian
//! and Ukrainian subjects, quoted-printable or base64 bodies, header folding,
//! MIME alternatives, dot-stuffing, STARTTLS, AUTH. Only lettre's connection
//! ([`lettre::transport::smtp::client::AsyncSmtpConnection`]) is used, not its
//! transport or pool: [`SmtpSender`] keeps exactly one connection, opens
//! another after a failure, and classifies errors itself (lettre's texts quote
//! the server's reply, which often repeats the address). The TCP stream under
//! it is ours, with Nagle's algorithm off (lettre's own manages 25 messages/s),
//! and so is the TLS handshake of SMTPS: tokio-rustls, rustls and
//! rustls-native-certs, all three already in the lock.

use std::fmt;

use futures::future::BoxFuture;

mod sms;
mod smtp;

pub use sms::{Sms, SmsGateway, SmsSender};
pub use smtp::{SettingsError, SmtpSender, SmtpSettings, TlsMode};

/// One message to one recipient.
///
/// `Debug` leaves the recipient out, so that a logged message names no one.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// Chosen by the caller, deterministic for a campaign and a person
    /// (`<campaign-id.person-id@acasa>`; the angle brackets may be left out).
    pub message_id: String,
    /// The recipient: an e-mail address for [`SmtpSender`], a phone number
    /// (E.164) for [`SmsSender`].
    pub to: String,
    /// The subject (e-mail only; SMS has none).
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// An HTML alternative to the text (e-mail only).
    pub html: Option<String>,
    /// The body's language, a BCP 47 tag (`ro`, `ru-MD`, `uk`); e-mail sends
    /// it as `Content-Language`.
    pub language: String,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("message_id", &self.message_id)
            .field("to", &"<redacted>")
            .field("language", &self.language)
            .field("html", &self.html.is_some())
            .finish_non_exhaustive()
    }
}

/// Why a message was not delivered. The texts name no recipient.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later: a 4xx reply, a connection refused or lost, a
    /// timeout, a server that could not be logged in to.
    #[error("transient: {0}")]
    Transient(String),
    /// Trying again will not help: a 5xx reply to this message, a recipient
    /// that is not an address or number, a message that cannot be built.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl SendError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient(_))
    }
}

/// The caller's record of a message as sent (the outbox row's commit): run
/// by [`Sender::send_recorded`] at the transaction's point of no return. Its
/// error text names no recipient.
pub type Record<'a> = BoxFuture<'a, Result<(), String>>;

/// What became of a message handed to [`Sender::send_recorded`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Recorded, and accepted by the server or gateway.
    Sent,
    /// Not delivered and not recorded: the record never ran, or failed and
    /// the message was abandoned before its point of no return.
    NotSent(SendError),
    /// Recorded at the point of no return, and then refused (a reply to the
    /// end of the data) or left without an answer (the connection broke):
    /// the caller corrects the record — failed, or uncertain, never resent.
    RecordedThen(SendError),
    /// Delivered, but the record failed afterwards (a sender that can only
    /// record after the server's reply: STARTTLS, SMS): the caller must
    /// record it now, or it may be sent again.
    SentNotRecorded(String),
}

/// Delivers messages; one implementation per channel.
///
/// Object safe (`Box<dyn Sender>`, `Arc<dyn Sender>`), hence the boxed future,
/// as elsewhere in the workspace.
pub trait Sender: Send + Sync {
    /// Delivers `message`, or says why not and whether to retry.
    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), SendError>>;

    /// Delivers `message` and runs `record` at the point where the message
    /// can no longer be taken back, so that a crash on either side of it
    /// neither loses the message nor sends it twice. By default (a channel
    /// with no such point, e.g. an SMS gateway's single request) `record`
    /// runs after the delivery is accepted.
    fn send_recorded<'a>(&'a self, message: &'a Message, record: Record<'a>) -> BoxFuture<'a, Delivery> {
        Box::pin(async move {
            match self.send(message).await {
                Ok(()) => match record.await {
                    Ok(()) => Delivery::Sent,
                    Err(e) => Delivery::SentNotRecorded(e),
                },
                Err(e) => Delivery::NotSent(e),
            }
        })
    }
}

/// The longest error text kept from a server or gateway.
const MAX_DETAIL: usize = 200;

/// `text` (a server's or gateway's reply) with anything that may identify the
/// recipient removed: the recipient itself wherever it appears, every word
/// holding an `@`, every run of 6 or more digits (phone numbers); control
/// characters become spaces and the result is cut at [`MAX_DETAIL`] characters.
pub(crate) fn scrub(text: &str, recipient: &str) -> String {
    let mut text: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let recipient = recipient.trim();
    if !recipient.is_empty() {
        text = replace_ignore_case(&text, recipient, "<recipient>");
    }
    let mut out = String::with_capacity(text.len());
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if word.contains('@') {
            out.push_str("<address>");
        } else {
            push_without_long_numbers(&mut out, word);
        }
    }
    let out = out.trim();
    match out.char_indices().nth(MAX_DETAIL) {
        Some((cut, _)) => format!("{}…", &out[..cut]),
        None => out.to_owned(),
    }
}

/// Replaces every case-insensitive (ASCII) occurrence of `needle` in `haystack`.
fn replace_ignore_case(haystack: &str, needle: &str, with: &str) -> String {
    let lower_hay = haystack.to_ascii_lowercase();
    let lower_needle = needle.to_ascii_lowercase();
    let mut out = String::with_capacity(haystack.len());
    let mut at = 0;
    while let Some(found) = lower_hay[at..].find(&lower_needle) {
        out.push_str(&haystack[at..at + found]);
        out.push_str(with);
        at += found + needle.len();
    }
    out.push_str(&haystack[at..]);
    out
}

/// Appends `word`, with every run of 6 or more digits (spaces, `-`, `.`, `(`,
/// `)` and `+` inside the run do not break it) replaced by `<number>`.
fn push_without_long_numbers(out: &mut String, word: &str) {
    let mut run = String::new();
    let mut digits = 0;
    let flush = |out: &mut String, run: &mut String, digits: &mut usize| {
        if *digits >= 6 {
            out.push_str("<number>");
        } else {
            out.push_str(run);
        }
        run.clear();
        *digits = 0;
    };
    for c in word.chars() {
        if c.is_ascii_digit() {
            digits += 1;
            run.push(c);
        } else if (digits > 0 && matches!(c, '-' | '.' | '(' | ')' | '+')) || (digits == 0 && c == '+') {
            run.push(c);
        } else {
            flush(out, &mut run, &mut digits);
            out.push(c);
        }
    }
    flush(out, &mut run, &mut digits);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_the_recipient_addresses_and_numbers() {
        assert_eq!(
            scrub("550 5.1.1 <Ana.Rusu@Example.md>: mailbox unavailable", "ana.rusu@example.md"),
            "550 5.1.1 <<recipient>>: mailbox unavailable"
        );
        assert_eq!(scrub("550 <other@example.md> unknown", "ana@example.md"), "550 <address> unknown");
        assert_eq!(scrub("number +373-69-123456 blocked", "+37369123456"), "number <number> blocked");
        assert_eq!(scrub("error 4711 (code 12345)", ""), "error 4711 (code 12345)");
        assert_eq!(scrub("line one\r\nline two", ""), "line one  line two");
    }

    #[test]
    fn scrub_cuts_long_replies() {
        let long = "x".repeat(500);
        let s = scrub(&long, "");
        assert_eq!(s.chars().count(), MAX_DETAIL + 1);
        assert!(s.ends_with('…'));
    }

    #[test]
    fn debug_names_no_recipient() {
        let m = Message {
            message_id: "<c.p@acasa>".into(),
            to: "ana@example.md".into(),
            subject: "s".into(),
            text: "t".into(),
            html: None,
            language: "ro".into(),
        };
        let shown = format!("{m:?}");
        assert!(!shown.contains("ana@"), "{shown}");
        assert!(shown.contains("<c.p@acasa>"));
    }

    #[test]
    fn send_error_says_whether_to_retry() {
        assert!(SendError::Transient("x".into()).is_transient());
        assert!(!SendError::Permanent("x".into()).is_transient());
    }
}
