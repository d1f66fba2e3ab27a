//! A throwaway Postgres 15. The cluster is initialised once per machine user
//! into a template directory and copied per server, which is much faster than
//! `initdb` each time.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::Context as _;
use tempfile::TempDir;

use crate::{free_port, wait_for_port};

fn bin(name: &str) -> PathBuf {
    let dir = std::env::var("ACASA_PG_BIN_DIR").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    PathBuf::from(dir).join(name)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// A command run as the `postgres` user when we are root.
fn pg_command(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn chown_to_postgres(path: &Path) -> anyhow::Result<()> {
    if is_root() {
        let ok = Command::new("chown").args(["-R", "postgres:postgres"]).arg(path).status()?.success();
        anyhow::ensure!(ok, "chown {} to postgres failed", path.display());
    }
    Ok(())
}

fn template() -> anyhow::Result<PathBuf> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let uid = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())?;
    let path = std::env::temp_dir().join(format!("acasa-pg15-template-{uid}"));
    if path.join("PG_VERSION").exists() {
        return Ok(path);
    }
    let staging = std::env::temp_dir().join(format!(
        "acasa-pg15-template-{uid}.{}.{}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)?;
    chown_to_postgres(&staging)?;
    let out = pg_command(&bin("initdb"))
        .arg("-D")
        .arg(&staging)
        .args(["-U", "acasa", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"])
        .output()
        .with_context(|| format!("running {} (set ACASA_PG_BIN_DIR)", bin("initdb").display()))?;
    anyhow::ensure!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
    // Another test binary may have won the race; either copy is fine.
    if std::fs::rename(&staging, &path).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    Ok(path)
}

/// A running Postgres; stopped and removed on drop.
#[derive(Debug)]
pub struct PostgresServer {
    child: Option<Child>,
    dir: TempDir,
    port: u16,
}

impl PostgresServer {
    /// Starts a server on a free port, as the `postgres` user when root.
    pub async fn start() -> anyhow::Result<Self> {
        let template = tokio::task::spawn_blocking(template).await??;
        let dir = tempfile::Builder::new().prefix("acasa-pg-").tempdir()?;
        let data = dir.path().join("data");
        let ok = Command::new("cp").arg("-a").arg(&template).arg(&data).status()?.success();
        anyhow::ensure!(ok, "copying the template cluster failed");
        chown_to_postgres(dir.path())?;
        let port = free_port()?;
        std::fs::File::create(dir.path().join("postgres.log"))?;
        chown_to_postgres(&dir.path().join("postgres.log"))?;
        let mut s = Self { child: None, dir, port };
        s.spawn().await?;
        Ok(s)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().append(true).open(self.dir.path().join("postgres.log"))?;
        let child = pg_command(&bin("postgres"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=200", "-c", "shared_buffers=64MB"])
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()?;
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(30)).await
    }

    /// Stops the server (fast shutdown: connections are closed), keeping its
    /// data and port for [`PostgresServer::restart`].
    pub fn stop(&mut self) {
        let _ = pg_command(&bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["stop", "-m", "fast", "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again, on the same port and data, after [`PostgresServer::stop`].
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.spawn().await
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://acasa@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a fresh database and returns its URL.
    pub async fn create_database(&self) -> anyhow::Result<String> {
        use sqlx::Connection as _;
        let name = format!("t_{}", uuid::Uuid::now_v7().simple());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut conn = loop {
            match sqlx::PgConnection::connect(&self.url("postgres")).await {
                Ok(c) => break c,
                Err(e) if tokio::time::Instant::now() > deadline => return Err(e.into()),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
        Ok(self.url(&name))
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = pg_command(&bin("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["stop", "-m", "immediate", "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
