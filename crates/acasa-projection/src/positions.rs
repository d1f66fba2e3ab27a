//! Waiting until a read model has caught up to a position (read-your-writes).
//!
//! Checkpoint changes are announced with `pg_notify` inside the batch
//! transaction; a listener task turns them into wake-ups. Notifications are
//! only a hint (they can be dropped around reconnects): one poller per
//! projection also re-reads the checkpoint on a short timer while anyone
//! waits, so a lost notification costs latency, never correctness — and a
//! thousand waiters cost one query per tick, not a thousand.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use sqlx::{PgPool, postgres::PgListener};
use tokio::{
    sync::{Semaphore, watch},
    time::Instant,
};

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
    /// The position is past the end of the log: no commit will ever reach it.
    #[error("position {wanted} is past the end of the log ({end})")]
    BeyondLog {
        /// Where it was asked to be.
        wanted: u64,
        /// The log's last sequence.
        end: u64,
    },
    /// As many callers as allowed are waiting already.
    #[error("too many callers are waiting for the read model; retry shortly")]
    TooManyWaiters,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The broker failed (reading the log's end).
    #[error("reading the end of the log: {0}")]
    Broker(String),
}

/// Positions of projections, for waiting.
///
/// Waiters never poll the database themselves: one poller task per
/// projection re-reads its checkpoint while anyone waits on it (and stops
/// when nobody does), and `pg_notify` wakes them sooner. At most
/// [`Positions::MAX_WAITERS`] callers wait at once; a position past the end
/// of the log is refused at once.
#[derive(Clone, Debug)]
pub struct Positions {
    pool: PgPool,
    js: Option<async_nats::jetstream::Context>,
    watches: Arc<Mutex<HashMap<String, watch::Sender<u64>>>>,
    pollers: Arc<Mutex<HashSet<String>>>,
    ends: Arc<Mutex<HashMap<String, u64>>>,
    waiters: Arc<Semaphore>,
}

/// How often a projection's poller re-reads its checkpoint while someone waits.
const POLL: Duration = Duration::from_millis(25);

impl Positions {
    /// How many callers may wait for read models at once (per process).
    pub const MAX_WAITERS: usize = 512;

    /// Starts listening for checkpoint notifications on `pool`'s database.
    pub fn start(pool: PgPool) -> Self {
        let this = Self {
            pool: pool.clone(),
            js: None,
            watches: Arc::default(),
            pollers: Arc::default(),
            ends: Arc::default(),
            waiters: Arc::new(Semaphore::new(Self::MAX_WAITERS)),
        };
        let listener = this.clone();
        tokio::spawn(async move { listener.listen().await });
        this
    }

    /// How many callers are waiting now.
    pub fn waiting(&self) -> usize {
        Self::MAX_WAITERS - self.waiters.available_permits()
    }

    /// Refuses positions past the end of the logs, read from `js`.
    pub fn with_log(mut self, js: async_nats::jetstream::Context) -> Self {
        self.js = Some(js);
        self
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

    /// Refuses `min` past the end of `stream` (when a log is attached): the
    /// cached end first, the stream's info when `min` is past it.
    async fn check_end(&self, stream: &str, min: u64) -> Result<(), WaitError> {
        let Some(js) = &self.js else { return Ok(()) };
        let known = self.ends.lock().unwrap_or_else(|p| p.into_inner()).get(stream).copied().unwrap_or(0);
        if min <= known {
            return Ok(());
        }
        let mut s = js.get_stream(stream).await.map_err(|e| WaitError::Broker(e.to_string()))?;
        let end = s.info().await.map_err(|e| WaitError::Broker(e.to_string()))?.state.last_sequence;
        self.ends.lock().unwrap_or_else(|p| p.into_inner()).insert(stream.to_owned(), end);
        if min > end {
            return Err(WaitError::BeyondLog { wanted: min, end });
        }
        Ok(())
    }

    /// Starts the projection's poller unless it runs: it re-reads the
    /// checkpoint every [`POLL`] while anyone waits on it.
    fn ensure_poller(&self, name: &str, tx: &watch::Sender<u64>) {
        let mut pollers = self.pollers.lock().unwrap_or_else(|p| p.into_inner());
        if !pollers.insert(name.to_owned()) {
            return;
        }
        let (this, name, tx) = (self.clone(), name.to_owned(), tx.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(POLL).await;
                {
                    let mut pollers = this.pollers.lock().unwrap_or_else(|p| p.into_inner());
                    if tx.receiver_count() == 0 {
                        pollers.remove(&name);
                        return;
                    }
                }
                match this.current(&name).await {
                    Ok(pos) => {
                        tx.send_if_modified(|p| {
                            let moved = *p != pos;
                            *p = pos;
                            moved
                        });
                    }
                    Err(e) => tracing::debug!(projection = %name, error = %e, "reading a checkpoint failed"),
                }
            }
        });
    }

    /// The position a query reads at: after waiting for `min` (see
    /// [`Positions::wait_for`]), or the current one when `min` is 0.
    pub async fn at(&self, name: &str, stream: &str, min: u64, deadline: Instant) -> Result<u64, WaitError> {
        if min == 0 {
            return Ok(self.current(name).await?);
        }
        self.wait_for(name, stream, min, deadline).await
    }

    /// Waits until projection `name`, which follows stream `stream`, has
    /// applied position `min`, or `deadline`. Returns the position reached.
    pub async fn wait_for(&self, name: &str, stream: &str, min: u64, deadline: Instant) -> Result<u64, WaitError> {
        let tx = self.sender(name);
        let mut rx = tx.subscribe();
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
        self.check_end(stream, min).await?;
        let _permit = self.waiters.try_acquire().map_err(|_| WaitError::TooManyWaiters)?;
        self.ensure_poller(name, &tx);
        let mut reached = current;
        loop {
            let seen = *rx.borrow_and_update();
            reached = reached.max(seen);
            if seen >= min {
                return Ok(seen);
            }
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return Err(WaitError::Timeout { current: reached, wanted: min });
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    return Err(WaitError::Timeout { current: reached, wanted: min });
                }
            }
        }
    }
}
