//! TLS for [`SmtpSender`](super::SmtpSender): what each [`TlsMode`] needs,
//! prepared once, and the stream for TLS from the first byte.
//!
//! The TCP stream is ours, not lettre's, because lettre leaves Nagle's
//! algorithm on: it writes a message and its terminating `.` separately, and
//! the second write then waits for the server's delayed ACK, 40 ms a message
//! (25 messages/s). With TCP_NODELAY set, STARTTLS is lettre's (it upgrades
//! the stream it was given); TLS from the first byte has to happen before
//! lettre sees the stream, so it is done here with tokio-rustls, on the same
//! rustls and ring as lettre and async-nats.
//!
//! Both trust the system's CA certificates (rustls-native-certs) and those in
//! `ACASA_SMTP_CA_FILE`, and check the server's name against `ACASA_SMTP_HOST`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lettre::transport::smtp::client::{AsyncTokioStream, Certificate, TlsParameters};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{SettingsError, SmtpSettings, TlsMode};

/// What a connection's protection needs, prepared from the settings.
#[derive(Clone)]
pub(super) enum Security {
    /// Plain TCP.
    Plain,
    /// STARTTLS, done by lettre.
    StartTls(TlsParameters),
    /// TLS from the first byte: the connector and the name to check.
    Tls(TlsConnector, ServerName<'static>),
}

impl Security {
    /// Loads the CA certificates `settings` asks for.
    pub(super) fn new(settings: &SmtpSettings) -> Result<Self, SettingsError> {
        let extra = match &settings.ca_file {
            None => Vec::new(),
            Some(file) => {
                let pem = std::fs::read(file)
                    .map_err(|e| SettingsError(format!("ACASA_SMTP_CA_FILE: cannot read {}: {e}", file.display())))?;
                let certs = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().map_err(|e| {
                    SettingsError(format!("ACASA_SMTP_CA_FILE: {} is not PEM certificates: {e}", file.display()))
                })?;
                if certs.is_empty() {
                    return Err(SettingsError(format!("ACASA_SMTP_CA_FILE: no certificate in {}", file.display())));
                }
                certs
            }
        };
        let host = settings.host.trim_start_matches('[').trim_end_matches(']').to_owned();
        match settings.tls {
            TlsMode::None => Ok(Security::Plain),
            TlsMode::StartTls => {
                let mut builder = TlsParameters::builder(host);
                for cert in extra {
                    let cert = Certificate::from_der(cert.to_vec())
                        .map_err(|e| SettingsError(format!("ACASA_SMTP_CA_FILE: {e}")))?;
                    builder = builder.add_root_certificate(cert);
                }
                let parameters = builder
                    .build_rustls()
                    .map_err(|e| SettingsError(format!("ACASA_SMTP_TLS: cannot set up TLS: {e}")))?;
                Ok(Security::StartTls(parameters))
            }
            TlsMode::Tls => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                let (added, _) = roots.add_parsable_certificates(extra);
                if roots.is_empty() || (settings.ca_file.is_some() && added == 0) {
                    return Err(SettingsError(
                        "ACASA_SMTP_TLS: no usable CA certificate (install ca-certificates, or set ACASA_SMTP_CA_FILE)"
                            .to_owned(),
                    ));
                }
                let config =
                    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                        .with_safe_default_protocol_versions()
                        .map_err(|e| SettingsError(format!("ACASA_SMTP_TLS: cannot set up TLS: {e}")))?
                        .with_root_certificates(roots)
                        .with_no_client_auth();
                let name = ServerName::try_from(host)
                    .map_err(|e| SettingsError(format!("ACASA_SMTP_HOST: not a name TLS can check: {e}")))?;
                Ok(Security::Tls(TlsConnector::from(Arc::new(config)), name))
            }
        }
    }
}

/// A TLS stream over TCP that lettre can speak SMTP over.
#[derive(Debug)]
pub(super) struct TlsTcp(tokio_rustls::client::TlsStream<TcpStream>);

impl TlsTcp {
    /// The TLS handshake over `tcp`, checking the certificate against `name`.
    pub(super) async fn handshake(
        connector: &TlsConnector,
        name: ServerName<'static>,
        tcp: TcpStream,
    ) -> io::Result<Self> {
        Ok(TlsTcp(connector.connect(name, tcp).await?))
    }
}

impl AsyncRead for TlsTcp {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsTcp {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}
