//! Where and how [`SmtpSender`](super::SmtpSender) sends: [`SmtpSettings`],
//! read from the `ACASA_SMTP_*` environment variables.

use std::env::VarError;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP: a relay on this machine or in the same pod, a test server.
    #[default]
    None,
    /// Plain TCP upgraded with STARTTLS before anything else is sent (port
    /// 587); a server that does not offer STARTTLS is not used.
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
}

/// The SMTP server and how to talk to it.
///
/// The password is not held here, only the file it is in
/// ([`SmtpSender::new`](super::SmtpSender::new) reads it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpSettings {
    /// The server's host name or address (`ACASA_SMTP_HOST`, default `127.0.0.1`).
    pub host: String,
    /// The server's port (`ACASA_SMTP_PORT`, default 2525: `make run`'s local server).
    pub port: u16,
    /// How the connection is protected (`ACASA_SMTP_TLS`: `none`, `starttls`
    /// or `tls`; default `none`).
    pub tls: TlsMode,
    /// PEM CA certificates to trust besides the system's
    /// (`ACASA_SMTP_CA_FILE`), for a relay with a certificate of an internal CA.
    pub ca_file: Option<PathBuf>,
    /// The user to log in as with AUTH PLAIN or LOGIN (`ACASA_SMTP_USERNAME`);
    /// none: no login.
    pub username: Option<String>,
    /// The file holding the password (`ACASA_SMTP_PASSWORD_FILE`), required
    /// with a username; surrounding whitespace is ignored.
    pub password_file: Option<PathBuf>,
    /// The `From` mailbox (`ACASA_SMTP_FROM`, default `Acasă <info@acasa.local>`),
    /// also the envelope sender.
    pub from: String,
    /// The name given in EHLO (`ACASA_SMTP_HELLO`, default `localhost`); a
    /// public server wants this host's DNS name.
    pub hello_name: String,
    /// The longest any one step may take: connecting (with TLS and login) or
    /// one message's transaction (`ACASA_SMTP_TIMEOUT_MS`, default 10000).
    pub timeout: Duration,
}

/// A setting that cannot be used; the text names the variable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub(crate) String);

impl Default for SmtpSettings {
    /// `make run`'s local server: 127.0.0.1:2525, no TLS, no login.
    fn default() -> Self {
        SmtpSettings {
            host: "127.0.0.1".to_owned(),
            port: 2525,
            tls: TlsMode::None,
            ca_file: None,
            username: None,
            password_file: None,
            from: "Acasă <info@acasa.local>".to_owned(),
            hello_name: "localhost".to_owned(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl SmtpSettings {
    /// Reads the `ACASA_SMTP_*` variables (an unset or empty one keeps its
    /// default) and checks the result ([`validate`](Self::validate)).
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_vars(|name| std::env::var(name))
    }

    /// As [`from_env`](Self::from_env), with the variables looked up by `var`.
    pub fn from_vars(var: impl Fn(&str) -> Result<String, VarError>) -> Result<Self, SettingsError> {
        let get = |name: &str| -> Result<Option<String>, SettingsError> {
            match var(name) {
                Ok(v) if v.trim().is_empty() => Ok(None),
                Ok(v) => Ok(Some(v.trim().to_owned())),
                Err(VarError::NotPresent) => Ok(None),
                Err(VarError::NotUnicode(_)) => Err(SettingsError(format!("{name} is not valid UTF-8"))),
            }
        };
        let mut s = SmtpSettings::default();
        if let Some(host) = get("ACASA_SMTP_HOST")? {
            s.host = host;
        }
        if let Some(port) = get("ACASA_SMTP_PORT")? {
            s.port = match port.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(SettingsError(format!("ACASA_SMTP_PORT: `{port}` is not a port (1–65535)"))),
            };
        }
        if let Some(tls) = get("ACASA_SMTP_TLS")? {
            s.tls = match tls.to_ascii_lowercase().as_str() {
                "none" => TlsMode::None,
                "starttls" => TlsMode::StartTls,
                "tls" => TlsMode::Tls,
                _ => return Err(SettingsError(format!("ACASA_SMTP_TLS: `{tls}` is not one of none, starttls, tls"))),
            };
        }
        s.ca_file = get("ACASA_SMTP_CA_FILE")?.map(PathBuf::from);
        s.username = get("ACASA_SMTP_USERNAME")?;
        s.password_file = get("ACASA_SMTP_PASSWORD_FILE")?.map(PathBuf::from);
        if let Some(from) = get("ACASA_SMTP_FROM")? {
            s.from = from;
        }
        if let Some(hello) = get("ACASA_SMTP_HELLO")? {
            s.hello_name = hello;
        }
        if let Some(ms) = get("ACASA_SMTP_TIMEOUT_MS")? {
            s.timeout = match ms.parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    return Err(SettingsError(format!(
                        "ACASA_SMTP_TIMEOUT_MS: `{ms}` is not a positive number of milliseconds"
                    )));
                }
            };
        }
        s.validate()?;
        Ok(s)
    }

    /// Checks what can be checked without the server: a host and port, a
    /// `From` that is a mailbox, a plain EHLO name, a positive timeout, a
    /// username and a password file together, and no password sent in clear
    /// to another machine (a login without TLS is allowed to a loopback
    /// address or `localhost` only).
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.host.trim().is_empty() || self.host.contains(char::is_whitespace) {
            return Err(SettingsError(format!("ACASA_SMTP_HOST: `{}` is not a host name", self.host)));
        }
        if self.port == 0 {
            return Err(SettingsError("ACASA_SMTP_PORT: 0 is not a port".to_owned()));
        }
        self.sender_mailbox()?;
        let hello = &self.hello_name;
        if hello.is_empty() || !hello.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b)) {
            return Err(SettingsError(format!(
                "ACASA_SMTP_HELLO: `{hello}` is not a host name (ASCII letters, digits, `-` and `.`)"
            )));
        }
        if self.ca_file.is_some() && self.tls == TlsMode::None {
            return Err(SettingsError("ACASA_SMTP_CA_FILE is set but ACASA_SMTP_TLS is none".to_owned()));
        }
        if self.timeout.is_zero() {
            return Err(SettingsError("ACASA_SMTP_TIMEOUT_MS: the timeout must be positive".to_owned()));
        }
        match (&self.username, &self.password_file) {
            (Some(_), None) => {
                return Err(SettingsError("ACASA_SMTP_USERNAME is set but ACASA_SMTP_PASSWORD_FILE is not".to_owned()));
            }
            (None, Some(_)) => {
                return Err(SettingsError("ACASA_SMTP_PASSWORD_FILE is set but ACASA_SMTP_USERNAME is not".to_owned()));
            }
            (Some(_), Some(_)) if self.tls == TlsMode::None && !self.is_loopback() => {
                return Err(SettingsError(format!(
                    "ACASA_SMTP_USERNAME: logging in to {} without TLS would send the password in clear; \
                     set ACASA_SMTP_TLS=starttls or tls",
                    self.host
                )));
            }
            _ => {}
        }
        Ok(())
    }

    /// The `From` mailbox, parsed.
    pub(crate) fn sender_mailbox(&self) -> Result<Mailbox, SettingsError> {
        self.from.parse::<Mailbox>().map_err(|e| {
            SettingsError(format!(
                "ACASA_SMTP_FROM: `{}` is not a mailbox (`Name <address>` or `address`): {e}",
                self.from
            ))
        })
    }

    /// Whether the host is this machine.
    fn is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<SmtpSettings, SettingsError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        SmtpSettings::from_vars(|name| vars.get(name).cloned().ok_or(VarError::NotPresent))
    }

    #[test]
    fn defaults_are_make_runs_local_server() {
        let s = from(&[]).unwrap();
        assert_eq!(s, SmtpSettings::default());
        assert_eq!((s.host.as_str(), s.port, s.tls), ("127.0.0.1", 2525, TlsMode::None));
        assert_eq!(s.sender_mailbox().unwrap().name.as_deref(), Some("Acasă"));
        assert_eq!(s.timeout, Duration::from_secs(10));
    }

    #[test]
    fn every_variable_is_read() {
        let s = from(&[
            ("ACASA_SMTP_HOST", "smtp.example.md"),
            ("ACASA_SMTP_PORT", "587"),
            ("ACASA_SMTP_TLS", "STARTTLS"),
            ("ACASA_SMTP_CA_FILE", "/etc/acasa/smtp-ca.pem"),
            ("ACASA_SMTP_USERNAME", "acasa"),
            ("ACASA_SMTP_PASSWORD_FILE", "/run/secrets/smtp"),
            ("ACASA_SMTP_FROM", "Programul Acasă <info@acasa.gov.md>"),
            ("ACASA_SMTP_HELLO", "acasa.gov.md"),
            ("ACASA_SMTP_TIMEOUT_MS", "2500"),
        ])
        .unwrap();
        assert_eq!(s.host, "smtp.example.md");
        assert_eq!(s.port, 587);
        assert_eq!(s.tls, TlsMode::StartTls);
        assert_eq!(s.ca_file, Some(PathBuf::from("/etc/acasa/smtp-ca.pem")));
        assert_eq!(s.username.as_deref(), Some("acasa"));
        assert_eq!(s.password_file, Some(PathBuf::from("/run/secrets/smtp")));
        assert_eq!(s.from, "Programul Acasă <info@acasa.gov.md>");
        assert_eq!(s.hello_name, "acasa.gov.md");
        assert_eq!(s.timeout, Duration::from_millis(2500));
        assert_eq!(from(&[("ACASA_SMTP_TLS", "tls")]).unwrap().tls, TlsMode::Tls);
        // Empty counts as unset.
        assert_eq!(from(&[("ACASA_SMTP_PORT", " ")]).unwrap().port, 2525);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (vars, variable) in [
            (&[("ACASA_SMTP_PORT", "25x")][..], "ACASA_SMTP_PORT"),
            (&[("ACASA_SMTP_PORT", "0")], "ACASA_SMTP_PORT"),
            (&[("ACASA_SMTP_PORT", "70000")], "ACASA_SMTP_PORT"),
            (&[("ACASA_SMTP_TLS", "ssl")], "ACASA_SMTP_TLS"),
            (&[("ACASA_SMTP_TIMEOUT_MS", "0")], "ACASA_SMTP_TIMEOUT_MS"),
            (&[("ACASA_SMTP_TIMEOUT_MS", "-5")], "ACASA_SMTP_TIMEOUT_MS"),
            (&[("ACASA_SMTP_FROM", "not a mailbox")], "ACASA_SMTP_FROM"),
            (&[("ACASA_SMTP_HELLO", "my host")], "ACASA_SMTP_HELLO"),
            (&[("ACASA_SMTP_HOST", "a b")], "ACASA_SMTP_HOST"),
            (&[("ACASA_SMTP_USERNAME", "acasa")], "ACASA_SMTP_PASSWORD_FILE"),
            (&[("ACASA_SMTP_PASSWORD_FILE", "/p")], "ACASA_SMTP_USERNAME"),
            (&[("ACASA_SMTP_CA_FILE", "/ca.pem")], "ACASA_SMTP_TLS"),
        ] {
            let err = from(vars).unwrap_err().to_string();
            assert!(err.contains(variable), "{vars:?}: {err}");
        }
    }

    #[test]
    fn no_password_in_clear_to_another_machine() {
        let login = [("ACASA_SMTP_USERNAME", "acasa"), ("ACASA_SMTP_PASSWORD_FILE", "/p")];
        let remote = [&login[..], &[("ACASA_SMTP_HOST", "smtp.example.md")]].concat();
        let err = from(&remote).unwrap_err().to_string();
        assert!(err.contains("ACASA_SMTP_TLS"), "{err}");
        let remote_tls = [&remote[..], &[("ACASA_SMTP_TLS", "tls")]].concat();
        assert!(from(&remote_tls).is_ok());
        for host in ["127.0.0.1", "localhost", "::1", "[::1]"] {
            let local = [&login[..], &[("ACASA_SMTP_HOST", host)]].concat();
            assert!(from(&local).is_ok(), "{host}");
        }
    }

    #[test]
    fn non_unicode_values_are_refused() {
        let err = SmtpSettings::from_vars(|name| {
            if name == "ACASA_SMTP_HOST" { Err(VarError::NotUnicode("x".into())) } else { Err(VarError::NotPresent) }
        })
        .unwrap_err();
        assert!(err.to_string().contains("ACASA_SMTP_HOST"));
    }
}
