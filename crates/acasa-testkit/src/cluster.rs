//! A throwaway three-node nats-server cluster with JetStream, for R3 streams.

use std::{
    path::PathBuf,
    process::Child,
    time::{Duration, Instant},
};

use tempfile::TempDir;

use crate::{free_port, nats::spawn_server, wait_for_port};

/// Three nats-server processes routed to each other on free ports, each with
/// its own store; killed and removed on drop. A node can be killed and
/// started again on its port and store ([`kill`](Self::kill),
/// [`restart`](Self::restart)), e.g. the leader of a stream
/// ([`stream_leader`](Self::stream_leader)).
#[derive(Debug)]
pub struct NatsCluster {
    children: Vec<Option<Child>>,
    _dir: TempDir,
    ports: Vec<u16>,
}

/// The `server_name` of node `i`.
fn node_name(i: usize) -> String {
    format!("acasa_n{i}")
}

impl NatsCluster {
    /// Starts the three nodes and waits until JetStream has a meta leader.
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("acasa-nats-cluster-").tempdir()?;
        let ports = vec![free_port()?, free_port()?, free_port()?];
        let routes = [free_port()?, free_port()?, free_port()?];
        let route_urls: Vec<String> = routes.iter().map(|p| format!("\"nats-route://127.0.0.1:{p}\"")).collect();
        let mut cluster = Self { children: Vec::new(), _dir: dir, ports };
        for (i, route) in routes.iter().enumerate() {
            let node = cluster.node_dir(i);
            std::fs::create_dir_all(&node)?;
            std::fs::write(
                node.join("nats.conf"),
                format!(
                    "listen: 127.0.0.1:{port}\nserver_name: {name}\n\
                     jetstream {{\n  store_dir: \"{store}\"\n  sync_interval: always\n}}\n\
                     cluster {{\n  name: acasa_test\n  listen: 127.0.0.1:{route}\n  routes: [{routes}]\n}}\n",
                    port = cluster.ports[i],
                    name = node_name(i),
                    store = node.join("jetstream").display(),
                    route = route,
                    routes = route_urls.join(", "),
                ),
            )?;
            cluster.children.push(Some(spawn_server(&node.join("nats.conf"), &cluster.log_path(i))?));
        }
        for p in &cluster.ports {
            wait_for_port(*p, Duration::from_secs(15)).await?;
        }
        cluster.wait_for_jetstream().await?;
        Ok(cluster)
    }

    fn node_dir(&self, i: usize) -> PathBuf {
        self._dir.path().join(format!("n{i}"))
    }

    /// The client URL of every node (a client given all fails over).
    pub fn urls(&self) -> Vec<String> {
        self.ports.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect()
    }

    /// The log file of node `i`.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("nats.log")
    }

    /// Which node leads `stream` now (its stream info's `cluster.leader`),
    /// asked through node `via`; waits up to `timeout` for the stream to
    /// have a leader.
    pub async fn stream_leader(&self, stream: &str, via: usize, timeout: Duration) -> anyhow::Result<usize> {
        let url = self.urls().get(via).cloned().ok_or_else(|| anyhow::anyhow!("no node {via}"))?;
        let js = async_nats::jetstream::new(async_nats::connect(url.as_str()).await?);
        let deadline = Instant::now() + timeout;
        loop {
            let leader = match js.get_stream(stream).await {
                Ok(mut s) => s.info().await.ok().and_then(|i| i.cluster.clone()).and_then(|c| c.leader),
                Err(_) => None,
            };
            if let Some(i) = leader.and_then(|name| (0..3).find(|i| node_name(*i) == name)) {
                return Ok(i);
            }
            anyhow::ensure!(Instant::now() < deadline, "{stream} has no leader after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills node `i` with SIGKILL (no leadership hand-over: the others elect).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children.get_mut(i).and_then(Option::take) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts node `i` again on its port and store (killing it first if it runs).
    pub async fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.kill(i);
        let conf = self.node_dir(i).join("nats.conf");
        let child = spawn_server(&conf, &self.log_path(i))?;
        if let Some(slot) = self.children.get_mut(i) {
            *slot = Some(child);
        }
        let port = self.ports.get(i).copied().ok_or_else(|| anyhow::anyhow!("no node {i}"))?;
        wait_for_port(port, Duration::from_secs(15)).await
    }

    async fn wait_for_jetstream(&self) -> anyhow::Result<()> {
        let client = async_nats::connect(self.urls()[0].as_str()).await?;
        let js = async_nats::jetstream::new(client);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            // Account info answers once the meta group has a leader.
            if js.query_account().await.is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("the cluster's JetStream did not come up (logs under {})", self._dir.path().display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}
