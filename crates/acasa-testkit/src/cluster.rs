//! A throwaway three-node nats-server cluster with JetStream, for R3 streams.

use std::{path::PathBuf, process::Child, time::Duration};

use tempfile::TempDir;

use crate::{free_port, nats::spawn_server, wait_for_port};

/// Three nats-server processes routed to each other on free ports, each with
/// its own store; killed and removed on drop.
#[derive(Debug)]
pub struct NatsCluster {
    children: Vec<Child>,
    _dir: TempDir,
    ports: Vec<u16>,
}

impl NatsCluster {
    /// Starts the three nodes and waits until JetStream has a meta leader.
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("acasa-nats-cluster-").tempdir()?;
        let ports = vec![free_port()?, free_port()?, free_port()?];
        let routes = [free_port()?, free_port()?, free_port()?];
        let route_urls: Vec<String> = routes.iter().map(|p| format!("\"nats-route://127.0.0.1:{p}\"")).collect();
        let mut children = Vec::new();
        for i in 0..3 {
            let node = dir.path().join(format!("n{i}"));
            std::fs::create_dir_all(&node)?;
            let conf = node.join("nats.conf");
            std::fs::write(
                &conf,
                format!(
                    "listen: 127.0.0.1:{port}\nserver_name: acasa_n{i}\n\
                     jetstream {{\n  store_dir: \"{store}\"\n  sync_interval: always\n}}\n\
                     cluster {{\n  name: acasa_test\n  listen: 127.0.0.1:{route}\n  routes: [{routes}]\n}}\n",
                    port = ports[i],
                    store = node.join("jetstream").display(),
                    route = routes[i],
                    routes = route_urls.join(", "),
                ),
            )?;
            children.push(spawn_server(&conf, &node.join("nats.log"))?);
        }
        let cluster = Self { children, _dir: dir, ports };
        for p in &cluster.ports {
            wait_for_port(*p, Duration::from_secs(15)).await?;
        }
        cluster.wait_for_jetstream().await?;
        Ok(cluster)
    }

    /// The client URL of every node (a client given all fails over).
    pub fn urls(&self) -> Vec<String> {
        self.ports.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect()
    }

    /// The log file of node `i`.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self._dir.path().join(format!("n{i}")).join("nats.log")
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
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
