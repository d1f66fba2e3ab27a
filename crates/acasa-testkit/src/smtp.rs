//! A throwaway SMTP server: aiosmtpd keeping what it receives in a Maildir,
//! and the parsing of what it received ([`ReceivedMessage`]).
//!
//! The server is
//! `python -m aiosmtpd -n -l 127.0.0.1:<port> -c <handler> <dir>/Maildir`,
//! the handler being aiosmtpd's own `Mailbox` with one addition for tests: recipients whose local part starts with `reject` are
//! refused with `550 5.1.1`, those starting with `defer` with `451 4.3.0`,
//! both replies quoting the address as real servers do. With
//! [`SmtpServer::start_with`] it speaks TLS from the first byte or requires
//! STARTTLS, with the test certificate in `fixtures/tls` (trust
//! [`SmtpServer::ca_certificate`]). Python comes from
//! `ACASA_PYTHON` (default: the project's `.tools/venv/bin/python`, where
//! `scripts/tools.sh venv` installs the pinned aiosmtpd, then `python3` on
//! `PATH`).

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::Context as _;
use mailparse::{MailHeaderMap as _, ParsedMail};
use tempfile::TempDir;

use crate::free_port;

/// aiosmtpd's `Mailbox` handler refusing some recipients (see the module doc).
const HANDLER: &str = r#""""aiosmtpd's Mailbox handler, refusing recipients named reject* (550) and defer* (451)."""
from aiosmtpd.handlers import Mailbox


class Handler(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        if local.startswith("defer"):
            return f"451 4.3.0 <{address}>: mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"
"#;

/// How long the server may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running aiosmtpd; killed and its Maildir removed on drop.
#[derive(Debug)]
pub struct SmtpServer {
    child: Option<Child>,
    dir: TempDir,
    port: u16,
    tls: SmtpTls,
}

/// How an [`SmtpServer`] protects its connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP.
    #[default]
    None,
    /// STARTTLS, required before MAIL FROM.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

/// A message as the server stored it, headers decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The envelope recipients (aiosmtpd's `X-RcptTo`), else the `To` addresses.
    pub to: Vec<String>,
    /// The `From` header, decoded.
    pub from: String,
    /// The `Message-ID` header, as sent (with its angle brackets).
    pub message_id: String,
    /// The `Subject` header, RFC 2047 decoded.
    pub subject: String,
    /// The `Content-Language` header.
    pub content_language: Option<String>,
    /// The `Date` header.
    pub date: Option<String>,
    /// The `text/plain` part (the body itself when not multipart), decoded,
    /// with `\n` line endings and no line break at the end.
    pub body_text: String,
    /// The `text/html` part, decoded like the text, if there is one.
    pub body_html: Option<String>,
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls")
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("ACASA_PYTHON") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/bin/python");
    if local.exists() { local } else { PathBuf::from("python3") }
}

impl SmtpServer {
    /// Starts a plain SMTP server on a free port, with an empty Maildir.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(SmtpTls::None).await
    }

    /// Starts a server protected by `tls` on a free port, with an empty Maildir.
    pub async fn start_with(tls: SmtpTls) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("acasa-smtp-").tempdir()?;
        std::fs::write(dir.path().join("acasa_testkit_smtp.py"), HANDLER)?;
        let port = free_port()?;
        let mut s = Self { child: None, dir, port, tls };
        s.spawn().await?;
        Ok(s)
    }

    /// The CA certificate (PEM) that issued the servers' certificate.
    pub fn ca_certificate() -> PathBuf {
        fixtures().join("ca.pem")
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let log_path = self.dir.path().join("aiosmtpd.log");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
        let mut command = Command::new(python());
        command.args(["-m", "aiosmtpd", "-n", "-l"]).arg(format!("127.0.0.1:{}", self.port));
        let (cert, key) = match self.tls {
            SmtpTls::None => (None, None),
            SmtpTls::StartTls => (Some("--tlscert"), Some("--tlskey")),
            SmtpTls::Tls => (Some("--smtpscert"), Some("--smtpskey")),
        };
        if let (Some(cert), Some(key)) = (cert, key) {
            command.arg(cert).arg(fixtures().join("server.pem")).arg(key).arg(fixtures().join("server.key"));
        }
        let child = command
            .args(["-c", "acasa_testkit_smtp.Handler"])
            .arg(self.maildir())
            .env("PYTHONPATH", self.dir.path())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {} -m aiosmtpd: {e} (set ACASA_PYTHON)", python().display()))?;
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return Ok(());
            }
            let exited = match self.child.as_mut() {
                Some(c) => c.try_wait()?.is_some(),
                None => true,
            };
            if exited || tokio::time::Instant::now() > deadline {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                self.kill();
                anyhow::bail!(
                    "aiosmtpd ({} -m aiosmtpd) did not listen on port {} (is aiosmtpd installed? \
                     scripts/tools.sh venv; or set ACASA_PYTHON): {}",
                    python().display(),
                    self.port,
                    log.trim()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The host it listens on.
    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    /// The port it listens on (the same after [`restart`](Self::restart)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Maildir it writes to.
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("Maildir")
    }

    /// Kills the server with SIGKILL; open connections break.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes the server (SIGSTOP): it accepts nothing and answers nothing
    /// until [`resume`](Self::resume) — a sender talking to it hangs
    /// mid-transaction.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("-STOP")
    }

    /// Lets a [`pause`](Self::pause)d server go on (SIGCONT).
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("-CONT")
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.pid().ok_or_else(|| anyhow::anyhow!("not running"))?;
        let status = std::process::Command::new("kill").args([signal, &pid.to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill {signal} {pid} failed");
        Ok(())
    }

    /// Starts it again on the same port and Maildir.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn().await
    }

    /// How many messages it has stored so far (cheaper than [`messages`](Self::messages)).
    pub fn message_count(&self) -> anyhow::Result<usize> {
        let mut n = 0;
        for sub in ["new", "cur"] {
            match std::fs::read_dir(self.maildir().join(sub)) {
                Ok(entries) => n += entries.count(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }

    /// Every message received so far (aiosmtpd stores a message before it
    /// answers 250), in no particular order.
    pub fn messages(&self) -> anyhow::Result<Vec<ReceivedMessage>> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let dir = self.maildir().join(sub);
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
            };
            for entry in entries {
                let path = entry?.path();
                out.push(read_message(&path)?);
            }
        }
        Ok(out)
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn read_message(path: &Path) -> anyhow::Result<ReceivedMessage> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse_message(&raw).with_context(|| format!("parsing {}", path.display()))
}

/// Parses an RFC 5322 message (as stored by the server, or as a sender would
/// send it) into its decoded parts.
pub fn parse_message(raw: &[u8]) -> anyhow::Result<ReceivedMessage> {
    let mail = mailparse::parse_mail(raw)?;
    let headers = &mail.headers;
    let to = match headers.get_first_value("X-RcptTo") {
        Some(rcpt) => rcpt.split(',').map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect(),
        None => match headers.get_first_header("To") {
            Some(h) => mailparse::addrparse_header(h)?
                .iter()
                .flat_map(|a| match a {
                    mailparse::MailAddr::Single(s) => vec![s.addr.clone()],
                    mailparse::MailAddr::Group(g) => g.addrs.iter().map(|s| s.addr.clone()).collect(),
                })
                .collect(),
            None => Vec::new(),
        },
    };
    let body = |mimetype: &str| -> anyhow::Result<Option<String>> {
        Ok(find_part(&mail, mimetype)
            .map(|p| p.get_body())
            .transpose()?
            .map(|b| b.replace("\r\n", "\n").trim_end_matches('\n').to_owned()))
    };
    let body_text = body("text/plain")?.ok_or_else(|| anyhow::anyhow!("no text/plain part"))?;
    let body_html = body("text/html")?;
    Ok(ReceivedMessage {
        to,
        from: headers.get_first_value("From").unwrap_or_default(),
        message_id: headers.get_first_value("Message-ID").unwrap_or_default(),
        subject: headers.get_first_value("Subject").unwrap_or_default(),
        content_language: headers.get_first_value("Content-Language"),
        date: headers.get_first_value("Date"),
        body_text,
        body_html,
    })
}

/// The first part (depth first) of type `mimetype`.
fn find_part<'m, 'a>(mail: &'m ParsedMail<'a>, mimetype: &str) -> Option<&'m ParsedMail<'a>> {
    if mail.subparts.is_empty() {
        return mail.ctype.mimetype.eq_ignore_ascii_case(mimetype).then_some(mail);
    }
    mail.subparts.iter().find_map(|p| find_part(p, mimetype))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    use tokio::net::TcpStream;

    use super::*;

    /// One SMTP exchange by hand: writes `line`, returns the (last) reply line.
    async fn say(conn: &mut BufReader<TcpStream>, line: &str) -> String {
        if !line.is_empty() {
            conn.get_mut().write_all(line.as_bytes()).await.unwrap();
        }
        loop {
            let mut reply = String::new();
            conn.read_line(&mut reply).await.unwrap();
            if reply.as_bytes().get(3) != Some(&b'-') {
                return reply;
            }
        }
    }

    #[tokio::test]
    async fn stores_parses_refuses_and_restarts() {
        let mut server = SmtpServer::start().await.unwrap();
        assert!(server.messages().unwrap().is_empty());
        let mut c = BufReader::new(TcpStream::connect((server.host(), server.port())).await.unwrap());
        assert!(say(&mut c, "").await.starts_with("220"));
        assert!(say(&mut c, "EHLO test\r\n").await.starts_with("250"));
        assert!(say(&mut c, "MAIL FROM:<info@acasa.local>\r\n").await.starts_with("250"));
        let refused = say(&mut c, "RCPT TO:<reject.me@example.md>\r\n").await;
        assert!(refused.starts_with("550 5.1.1 <reject.me@example.md>"), "{refused}");
        assert!(say(&mut c, "RCPT TO:<defer@example.md>\r\n").await.starts_with("451"));
        assert!(say(&mut c, "RCPT TO:<ana@example.md>\r\n").await.starts_with("250"));
        assert!(say(&mut c, "DATA\r\n").await.starts_with("354"));
        let data = "Message-ID: <c.p@acasa>\r\nFrom: =?utf-8?b?QWNhc8SD?= <info@acasa.local>\r\n\
                    To: ana@example.md\r\nSubject: =?utf-8?b?0J/RgNC40LLQtdGC?=\r\nContent-Language: ru\r\n\
                    MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
                    Content-Transfer-Encoding: base64\r\n\r\n0J/RgNC40LLQtdGCCi4=\r\n.\r\n";
        assert!(say(&mut c, data).await.starts_with("250"));
        assert!(say(&mut c, "QUIT\r\n").await.starts_with("221"));

        assert_eq!(server.message_count().unwrap(), 1);
        let got = server.messages().unwrap();
        assert_eq!(
            got,
            vec![ReceivedMessage {
                to: vec!["ana@example.md".into()],
                from: "Acasă <info@acasa.local>".into(),
                message_id: "<c.p@acasa>".into(),
                subject: "Привет".into(),
                content_language: Some("ru".into()),
                date: None,
                body_text: "Привет\n.".into(),
                body_html: None,
            }]
        );

        server.kill();
        assert!(TcpStream::connect((server.host(), server.port())).await.is_err());
        server.restart().await.unwrap();
        let mut c = BufReader::new(TcpStream::connect((server.host(), server.port())).await.unwrap());
        assert!(say(&mut c, "").await.starts_with("220"));
        assert_eq!(server.messages().unwrap().len(), 1, "the Maildir outlives a restart");
    }
}
