//! Waiting until a read model has caught up to a position (read-your-writes).
//!
//! Checkpoint changes are announced with `pg_notify` inside the batch
//! transaction; a listener task turns them into wake-ups. Notifications are
//! only a hint (they can be dropped around reconnects): waiters also re-read
//! the checkpoint on a short timer, so a lost notification costs latency,
//! never correctness.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use sqlx::{PgPool, postgres::PgListener};
use tokio::{sync::watch, time::Instant};

/// The read model did not reach the position in time.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The deadline passed first.
    #[error("read model at position {current}, behind the requested {wanted}")]
    Timeout {
        /// Where it is.
        current: u64,
        /// Where it was asked to be.
        wanted: u64,
    },
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Positions of projections, for waiting.
#[derive(Clone, Debug)]
pub struct Positions {
    pool: PgPool,
    watches: Arc<Mutex<HashMap<String, watch::Sender<u64>>>>,
}

/// How often a waiter re-reads the checkpoint when no notification came.
const POLL: Duration = Duration::from_millis(20);

impl Positions {
    /// Starts listening for checkpoint notifications on `pool`'s database.
    pub fn start(pool: PgPool) -> Self {
        let this = Self { pool: pool.clone(), watches: Arc::default() };
        let listener = this.clone();
        tokio::spawn(async move { listener.listen().await });
        this
    }

    async fn listen(self) {
        loop {
            match PgListener::connect_with(&self.pool).await {
                Ok(mut l) => {
                    if let Err(e) = l.listen("acasa_projection").await {
                        tracing::warn!(error = %e, "projection listener failed to listen");
                    } else {
                        loop {
                            match l.recv().await {
                                Ok(n) => self.announce(n.payload()),
                                Err(e) => {
                                    tracing::warn!(error = %e, "projection listener lost its connection");
                                    // Notifications (a rebuild's reset among them) may be lost
                                    // until we listen again: forget what was announced.
                                    self.forget();
                                    break;
                                }
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "projection listener cannot connect"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    fn forget(&self) {
        let w = self.watches.lock().unwrap_or_else(|p| p.into_inner());
        for tx in w.values() {
            tx.send_replace(0);
        }
    }

    fn announce(&self, payload: &str) {
        if let Some((name, pos)) = payload.rsplit_once(':')
            && let Ok(pos) = pos.parse::<u64>()
        {
            self.sender(name).send_replace(pos);
        }
    }

    fn sender(&self, name: &str) -> watch::Sender<u64> {
        let mut w = self.watches.lock().unwrap_or_else(|p| p.into_inner());
        w.entry(name.to_owned()).or_insert_with(|| watch::channel(0).0).clone()
    }

    /// The projection's current position, read from its checkpoint.
    pub async fn current(&self, name: &str) -> Result<u64, sqlx::Error> {
        let pos: Option<i64> = sqlx::query_scalar("SELECT position FROM projection.checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(pos.map_or(0, |p| u64::try_from(p).unwrap_or(0)))
    }

    /// Waits until projection `name` has applied position `min`, or `deadline`.
    /// Returns the position reached.
    pub async fn wait_for(&self, name: &str, min: u64, deadline: Instant) -> Result<u64, WaitError> {
        let mut rx = self.sender(name).subscribe();
        loop {
            // A notified position is committed (NOTIFY is delivered on commit):
            // when it already covers `min`, no query is needed.
            let notified = *rx.borrow_and_update();
            if notified >= min {
                return Ok(notified);
            }
            let current = self.current(name).await?;
            if current >= min {
                return Ok(current);
            }
            if Instant::now() >= deadline {
                return Err(WaitError::Timeout { current, wanted: min });
            }
            let wake = Instant::now() + POLL;
            tokio::select! {
                _ = rx.changed() => {}
                () = tokio::time::sleep_until(wake.min(deadline)) => {}
            }
        }
    }
}
