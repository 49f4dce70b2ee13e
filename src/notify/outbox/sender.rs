//! The sender: claims due items in batches, sends them at once through a [`Deliver`], records
//! every outcome in one transaction, and sleeps until the next item is due or a new one is
//! enqueued.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, mpsc};

use super::{Item, NotificationEvent, Outbox, OutboxError};

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver took it.
    Delivered {
        /// Its answer (`200 OK`, an SMTP reply).
        response: Option<String>,
    },
    /// It did not.
    Failed {
        /// Why.
        error: String,
        /// The receiver's answer, if it answered.
        response: Option<String>,
        /// Whether trying again later may work.
        retryable: bool,
    },
}

/// Sends one outbox item through the integration it names; the channels implement it, and so
/// can a test's receiver.
pub trait Deliver: Send + Sync + 'static {
    /// Sends `item` at `now`.
    fn deliver(&self, item: &Item, now: DateTime<Utc>) -> impl Future<Output = Attempt> + Send;
}

/// How long the sender waits for work at most before it looks again.
const IDLE_WAIT: Duration = Duration::from_secs(60);
/// How long it waits after the database refused before it tries again.
const ERROR_WAIT: Duration = Duration::from_secs(1);

/// The send loop over one outbox.
pub struct Sender<D> {
    outbox: Arc<Outbox>,
    deliver: Arc<D>,
    wake: Arc<Notify>,
    batch: usize,
}

impl<D: Deliver> Sender<D> {
    /// A sender of `outbox`'s items through `deliver`, 64 at a time.
    pub fn new(outbox: Arc<Outbox>, deliver: Arc<D>) -> Sender<D> {
        Sender {
            outbox,
            deliver,
            wake: Arc::new(Notify::new()),
            batch: 64,
        }
    }

    /// Claims and sends up to `batch` items at a time.
    pub fn with_batch(mut self, batch: usize) -> Sender<D> {
        self.batch = batch.max(1);
        self
    }

    /// What to `notify_one` after committing new items, so they go at once.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// One round at `now`: claims a batch of due items, sends them concurrently, records the
    /// outcomes; returns the events (none when nothing was due).
    pub async fn run_once(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<NotificationEvent>, OutboxError> {
        let outbox = self.outbox.clone();
        let batch = self.batch;
        let items = blocking(move || outbox.claim_due(now, batch)).await?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut sends = tokio::task::JoinSet::new();
        for item in items {
            let deliver = self.deliver.clone();
            sends.spawn(async move {
                let attempt = deliver.deliver(&item, now).await;
                (item.id, attempt)
            });
        }
        let mut outcomes = Vec::with_capacity(sends.len());
        while let Some(done) = sends.join_next().await {
            // A panicking channel leaves its item claimed; the lease brings it back.
            match done {
                Ok(outcome) => outcomes.push(outcome),
                Err(e) => tracing::error!(error = %e, "Delivery task failed."),
            }
        }
        outcomes.sort_by_key(|(id, _)| *id);
        let outbox = self.outbox.clone();
        blocking(move || outbox.record(&outcomes, now)).await
    }

    /// Sends until `shutdown` resolves, passing every event to `events`. It wakes when an item
    /// falls due or the [`Sender::waker`] is notified; a full batch is followed at once by the
    /// next. The batch in flight when `shutdown` comes is finished and recorded.
    pub async fn run(
        self,
        events: mpsc::UnboundedSender<NotificationEvent>,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            let now = Utc::now();
            let wait = match self.run_once(now).await {
                Ok(round) => {
                    let full = round.iter().filter(|e| e.outcome != "queued").count() >= self.batch;
                    for event in round {
                        log(&event);
                        let _ = events.send(event);
                    }
                    if full {
                        Duration::ZERO
                    } else {
                        self.until_next_due(now).await
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "Outbox round failed; will retry.");
                    ERROR_WAIT
                }
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn until_next_due(&self, now: DateTime<Utc>) -> Duration {
        let outbox = self.outbox.clone();
        match blocking(move || outbox.next_due()).await {
            Ok(Some(due)) => (due - now)
                .to_std()
                .unwrap_or(Duration::ZERO)
                .max(Duration::from_millis(1))
                .min(IDLE_WAIT),
            Ok(None) => IDLE_WAIT,
            Err(e) => {
                tracing::error!(error = %e, "Outbox lookup failed; will retry.");
                ERROR_WAIT
            }
        }
    }
}

fn log(event: &NotificationEvent) {
    match event.outcome.as_str() {
        "failed" => tracing::warn!(
            receiver = %event.receiver,
            integration = %event.integration,
            attempt = event.attempt,
            error = event.error.as_deref().unwrap_or(""),
            "Delivery failed; will retry."
        ),
        "dead" => tracing::error!(
            receiver = %event.receiver,
            integration = %event.integration,
            attempt = event.attempt,
            error = event.error.as_deref().unwrap_or(""),
            "Delivery given up."
        ),
        _ => tracing::debug!(
            receiver = %event.receiver,
            integration = %event.integration,
            outcome = %event.outcome,
            "Notification."
        ),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, OutboxError> + Send + 'static,
) -> Result<T, OutboxError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| OutboxError::Task(e.to_string()))?
}
