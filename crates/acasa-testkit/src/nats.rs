//! A throwaway nats-server with JetStream.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use tempfile::TempDir;

use crate::{free_port, wait_for_port};

/// A running nats-server; killed and its store removed on drop.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    dir: TempDir,
    port: u16,
    /// Configuration text appended to the generated file (e.g. `accounts {...}`).
    extra: String,
}

/// Starts nats-server with configuration `conf`, appending its output to `log`.
pub(crate) fn spawn_server(conf: &Path, log: &Path) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    Command::new(binary())
        .arg("-c")
        .arg(conf)
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()
        .map_err(|e| anyhow::anyhow!("starting {}: {e} (set ACASA_NATS_SERVER_BIN)", binary().display()))
}

fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("ACASA_NATS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/bin/nats-server");
    if local.exists() { local } else { PathBuf::from("nats-server") }
}

/// How many configuration reloads the server's log reports: done, failed.
fn reloads(log: &Path) -> (usize, usize) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    (
        text.matches("Reloaded server configuration").count(),
        text.matches("Failed to reload server configuration").count(),
    )
}

impl NatsServer {
    /// Starts a server on a free port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with("").await
    }

    /// Starts a server on a free port with `extra` appended to its
    /// configuration, e.g. an `accounts { ... }` block (kept across
    /// [`restart`](Self::restart)). With accounts, JetStream is on in the
    /// accounts that enable it, and a client must log in as a user of one.
    pub async fn start_with(extra: &str) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("acasa-nats-").tempdir()?;
        let port = free_port()?;
        let mut s = Self { child: None, dir, port, extra: extra.to_owned() };
        s.spawn().await?;
        Ok(s)
    }

    fn write_config(&self) -> anyhow::Result<PathBuf> {
        let conf = self.dir.path().join("nats.conf");
        let store = self.dir.path().join("jetstream");
        std::fs::write(
            &conf,
            format!(
                "listen: 127.0.0.1:{}\nserver_name: acasa_test\njetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n{}",
                self.port,
                store.display(),
                self.extra
            ),
        )?;
        Ok(conf)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let conf = self.write_config()?;
        self.child = Some(spawn_server(&conf, &self.log_path())?);
        wait_for_port(self.port, Duration::from_secs(15)).await
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats.log")
    }

    /// Replaces the appended configuration text with `extra` and has the
    /// running server reload its configuration (`nats-server --signal
    /// reload=<pid>`, as a SIGHUP would), waiting until its log reports the
    /// reload. Connections stay open; those of users no longer configured are
    /// closed by the server.
    pub async fn reload_with(&mut self, extra: &str) -> anyhow::Result<()> {
        let pid = self.child.as_ref().map(Child::id).ok_or_else(|| anyhow::anyhow!("nats-server is not running"))?;
        self.extra = extra.to_owned();
        self.write_config()?;
        let log = self.log_path();
        let (done, failed) = reloads(&log);
        let status = Command::new(binary()).arg("--signal").arg(format!("reload={pid}")).status()?;
        anyhow::ensure!(status.success(), "nats-server --signal reload={pid}: {status}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match reloads(&log) {
                (_, f) if f > failed => anyhow::bail!("nats-server failed to reload (log: {})", log.display()),
                (d, _) if d > done => return Ok(()),
                _ => {}
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("nats-server did not report reloading (log: {})", log.display());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server with SIGKILL (acknowledged writes must survive it).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and store.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn().await
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
