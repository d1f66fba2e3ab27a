//! SMS: [`SmsSender`], the [`Sender`] for messages whose recipient is a phone
//! number, over an [`SmsGateway`].
//!
//! An SMS provider's HTTP API plugs in as an [`SmsGateway`]: it gets an
//! [`Sms`] (an E.164 number, the text, and the message id as the idempotency
//! key most providers accept as a client reference) and answers like any
//! sender, transient or permanent (an HTTP 429 or 5xx is transient, a 4xx
//! refusing the number permanent). None is provided here: the programme has
//! not chosen its provider, and no stand-in belongs where messages go out.
//!
//! The adapter sends the message's text only (an SMS has no subject and no
//! HTML) and fits it into at most `max_segments` segments: 160 characters in
//! one segment and 153 per segment of a longer message when every character
//! is in the GSM 03.38 alphabet (characters of its extension table count
//! twice), 70 and 67 otherwise (UCS-2: Cyrillic, and Romanian `ă â î ș ț`).
//! A longer text is cut at a word boundary and ends in `…` (`...` in GSM
//! texts, where `…` does not exist and would switch the whole text to UCS-2).

use futures::future::BoxFuture;

use super::{Message, SendError, Sender, scrub};

/// One SMS for an [`SmsGateway`].
#[derive(Clone, PartialEq, Eq)]
pub struct Sms {
    /// The message's id: the same for every attempt at the same message, for
    /// providers that drop repeats of a client reference.
    pub reference: String,
    /// The recipient, E.164 (`+37369123456`).
    pub to: String,
    /// The text, already fitted to the segment limit.
    pub text: String,
}

impl std::fmt::Debug for Sms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sms")
            .field("reference", &self.reference)
            .field("to", &"<redacted>")
            .field("chars", &self.text.chars().count())
            .finish()
    }
}

/// An SMS provider (its HTTP API, typically).
pub trait SmsGateway: Send + Sync {
    /// Hands `sms` to the provider; errors say whether to retry. The adapter
    /// removes the number from error texts.
    fn send_sms<'a>(&'a self, sms: &'a Sms) -> BoxFuture<'a, Result<(), SendError>>;
}

/// The [`Sender`] for SMS: checks the number, fits the text, calls the gateway.
#[derive(Debug)]
pub struct SmsSender<G> {
    gateway: G,
    max_segments: usize,
}

/// Segments a text may take unless told otherwise.
const DEFAULT_MAX_SEGMENTS: usize = 3;

impl<G: SmsGateway> SmsSender<G> {
    /// Sends through `gateway`, at most 3 segments per message.
    pub fn new(gateway: G) -> Self {
        SmsSender { gateway, max_segments: DEFAULT_MAX_SEGMENTS }
    }

    /// At most `segments` segments per message (at least 1).
    pub fn with_max_segments(mut self, segments: usize) -> Self {
        self.max_segments = segments.max(1);
        self
    }

    async fn deliver(&self, message: &Message) -> Result<(), SendError> {
        let to = e164(&message.to)
            .ok_or_else(|| SendError::Permanent("the recipient is not a phone number (E.164)".to_owned()))?;
        let text = fit(&message.text, self.max_segments);
        if text.is_empty() {
            return Err(SendError::Permanent("the message has no text".to_owned()));
        }
        let sms = Sms { reference: message.message_id.clone(), to, text };
        self.gateway.send_sms(&sms).await.map_err(|e| match e {
            SendError::Transient(t) => SendError::Transient(scrub(&scrub(&t, &sms.to), &message.to)),
            SendError::Permanent(t) => SendError::Permanent(scrub(&scrub(&t, &sms.to), &message.to)),
        })
    }
}

impl<G: SmsGateway> Sender for SmsSender<G> {
    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(self.deliver(message))
    }
}

/// `number` as E.164 (`+` and 8–15 digits), spaces, dashes, dots and
/// parentheses removed; `00` is taken for `+`.
fn e164(number: &str) -> Option<String> {
    let compact: String = number.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
    let digits = compact.strip_prefix('+').or_else(|| compact.strip_prefix("00"))?;
    let ok = (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
    ok.then(|| format!("+{digits}"))
}

/// The GSM 03.38 basic alphabet (one septet each).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The GSM 03.38 extension table (two septets each: escape and character).
const GSM_EXTENSION: &str = "^{}\\[~]|€\u{c}";

/// What a character costs in GSM septets, or `None` outside the alphabet.
fn gsm_septets(c: char) -> Option<usize> {
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// `text` fitted into `max_segments` segments (see the module documentation):
/// surrounding whitespace trimmed, cut at a word boundary with an ellipsis
/// when too long.
pub(crate) fn fit(text: &str, max_segments: usize) -> String {
    let text = text.trim();
    let gsm = text.chars().all(|c| gsm_septets(c).is_some());
    let (single, per_segment, ellipsis) = if gsm { (160, 153, "...") } else { (70, 67, "…") };
    let limit = if max_segments <= 1 { single } else { per_segment * max_segments };
    let cost = |s: &str| if gsm { s.chars().map(|c| gsm_septets(c).unwrap_or(1)).sum() } else { utf16_units(s) };
    if cost(text) <= limit {
        return text.to_owned();
    }
    let budget = limit - cost(ellipsis);
    let mut used = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        let c_cost = if gsm { gsm_septets(c).unwrap_or(1) } else { c.len_utf16() };
        if used + c_cost > budget {
            break;
        }
        used += c_cost;
        end = i + c.len_utf8();
    }
    let cut = &text[..end];
    // Back to the last whitespace, unless that loses more than a fifth of the text.
    let cut = match cut.rfind(char::is_whitespace) {
        Some(space) if space >= end * 4 / 5 => &cut[..space],
        _ => cut,
    };
    format!("{}{ellipsis}", cut.trim_end())
}

/// UCS-2 code units (characters outside the BMP take two).
fn utf16_units(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A gateway that records what it is given and answers `answer`.
    struct Recorder {
        sent: Mutex<Vec<Sms>>,
        answer: Result<(), SendError>,
    }

    impl SmsGateway for Recorder {
        fn send_sms<'a>(&'a self, sms: &'a Sms) -> BoxFuture<'a, Result<(), SendError>> {
            self.sent.lock().unwrap().push(sms.clone());
            Box::pin(std::future::ready(self.answer.clone()))
        }
    }

    fn recorder(answer: Result<(), SendError>) -> SmsSender<Recorder> {
        SmsSender::new(Recorder { sent: Mutex::new(Vec::new()), answer })
    }

    fn message(to: &str, text: &str) -> Message {
        Message {
            message_id: "<c1.p1@acasa>".into(),
            to: to.into(),
            subject: "Subiect".into(),
            text: text.into(),
            html: Some("<p>html</p>".into()),
            language: "ro".into(),
        }
    }

    #[tokio::test]
    async fn sends_the_text_to_the_e164_number_with_the_message_id() {
        let s = recorder(Ok(()));
        s.send(&message("+373 (69) 12-34-56", "Bună ziua!")).await.unwrap();
        let sent = s.gateway.sent.lock().unwrap().clone();
        assert_eq!(
            sent,
            vec![Sms { reference: "<c1.p1@acasa>".into(), to: "+37369123456".into(), text: "Bună ziua!".into() }]
        );
        assert!(!format!("{:?}", sent[0]).contains("3736912"));
    }

    #[tokio::test]
    async fn refuses_what_is_not_a_number_or_has_no_text() {
        let s = recorder(Ok(()));
        for to in ["069123456", "+37", "ana@example.md", "+373 69 12a456", "+0123456789"] {
            let err = s.send(&message(to, "text")).await.unwrap_err();
            assert!(matches!(&err, SendError::Permanent(t) if !t.contains(to)), "{to}: {err}");
        }
        assert!(!s.send(&message("+37369123456", "  ")).await.unwrap_err().is_transient());
        assert!(s.gateway.sent.lock().unwrap().is_empty());
        assert_eq!(e164("0037369123456").as_deref(), Some("+37369123456"));
    }

    #[tokio::test]
    async fn gateway_errors_keep_their_kind_and_lose_the_number() {
        let s = recorder(Err(SendError::Transient("429 too many requests for +37369123456".into())));
        let err = s.send(&message("+373 69 123 456", "t")).await.unwrap_err();
        assert_eq!(err, SendError::Transient("429 too many requests for <recipient>".into()));
        let s = recorder(Err(SendError::Permanent("number 37369123456 blocked".into())));
        let err = s.send(&message("+37369123456", "t")).await.unwrap_err();
        assert_eq!(err, SendError::Permanent("number <number> blocked".into()));
    }

    #[test]
    fn short_texts_are_kept() {
        assert_eq!(fit("  Hello {world}  ", 1), "Hello {world}");
        let gsm = "a".repeat(459);
        assert_eq!(fit(&gsm, 3), gsm);
        let ucs = "ș".repeat(70);
        assert_eq!(fit(&ucs, 1), ucs);
    }

    #[test]
    fn long_gsm_texts_are_cut_at_a_word_with_three_dots() {
        let text = "word ".repeat(100);
        let one = fit(&text, 1);
        assert!(one.ends_with("word..."), "{one}");
        assert!(one.chars().count() <= 160);
        let three = fit(&text, 3);
        assert!(three.chars().count() <= 459 && three.chars().count() > 440, "{}", three.len());
        // Extension characters count twice.
        let braces = "{".repeat(100);
        assert_eq!(fit(&braces, 1), format!("{}...", "{".repeat(78)));
    }

    #[test]
    fn long_ucs2_texts_are_cut_with_an_ellipsis() {
        for text in ["Информация о трудоустройстве за рубежом ".repeat(10), "Informații ședință ".repeat(20)]
        {
            let one = fit(&text, 1);
            assert!(one.ends_with('…'), "{one}");
            assert!(utf16_units(&one) <= 70, "{one}");
            let two = fit(&text, 2);
            assert!(utf16_units(&two) <= 134 && utf16_units(&two) > 100, "{two}");
            assert!(!two.contains("  "));
        }
        // One long word is cut inside it.
        let word = "ș".repeat(200);
        assert_eq!(fit(&word, 1), format!("{}…", "ș".repeat(69)));
    }
}
