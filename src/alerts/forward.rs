//! Forwarding alerts to existing Alertmanagers (`sidecar.alerting`), as Prometheus's notifier
//! does: `POST /api/v2/alerts` with a JSON array, from a bounded queue that drops the oldest
//! alerts when the Alertmanagers cannot keep up, and a fan-out sink that hands the same alerts
//! to several destinations (the in-process notifier and the forwarder).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::SecondsFormat;
use tokio::sync::Notify;

use crate::notify::Alert;
use crate::rules::AlertSink;

/// Alerts queued for Alertmanagers before the oldest are dropped (Prometheus's
/// `--alertmanager.notification-queue-capacity`).
pub const QUEUE_CAPACITY: usize = 10_000;

/// Alerts in one request (Prometheus's `maxBatchSize`).
const BATCH: usize = 64;

/// An alert in Alertmanager's v2 `postableAlert` shape.
pub fn postable(alert: &Alert) -> serde_json::Value {
    serde_json::json!({
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": alert.starts_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        "endsAt": alert.ends_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        "generatorURL": alert.generator_url,
    })
}

struct Queue {
    alerts: Mutex<VecDeque<Alert>>,
    ready: Notify,
}

/// Sends alerts to Alertmanagers from a background task.
pub struct Forwarder {
    queue: Arc<Queue>,
    task: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    /// Starts a forwarder to the Alertmanagers at `urls` (their base URLs; `/api/v2/alerts` is
    /// appended), each request bounded by `timeout`.
    pub fn start(urls: Vec<String>, timeout: Duration) -> Forwarder {
        let queue = Arc::new(Queue {
            alerts: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
        });
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("a client with a timeout builds");
        let endpoints: Vec<String> = urls
            .iter()
            .map(|u| format!("{}/api/v2/alerts", u.trim_end_matches('/')))
            .collect();
        let task = tokio::spawn(run(queue.clone(), client, endpoints));
        Forwarder { queue, task }
    }

    /// Stops the task; alerts still queued are dropped, as Prometheus drops them at shutdown.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl AlertSink for Forwarder {
    fn send(&self, alerts: Vec<Alert>) {
        let mut queue = self.queue.alerts.lock().expect("queue lock");
        queue.extend(alerts);
        let over = queue.len().saturating_sub(QUEUE_CAPACITY);
        if over > 0 {
            queue.drain(..over);
            tracing::warn!(
                dropped = over,
                "Alert queue full; dropped the oldest alerts."
            );
        }
        drop(queue);
        self.queue.ready.notify_one();
    }
}

async fn run(queue: Arc<Queue>, client: reqwest::Client, endpoints: Vec<String>) {
    loop {
        let batch: Vec<Alert> = {
            let mut q = queue.alerts.lock().expect("queue lock");
            let n = q.len().min(BATCH);
            q.drain(..n).collect()
        };
        if batch.is_empty() {
            queue.ready.notified().await;
            continue;
        }
        let body: Vec<serde_json::Value> = batch.iter().map(postable).collect();
        let bytes = serde_json::to_vec(&body).expect("alerts serialize");
        for endpoint in &endpoints {
            let request = client
                .post(endpoint)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes.clone());
            match request.send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::warn!(
                    alertmanager = %endpoint,
                    status = r.status().as_u16(),
                    count = body.len(),
                    "Alertmanager refused alerts."
                ),
                Err(e) => tracing::warn!(
                    alertmanager = %endpoint,
                    error = %e,
                    count = body.len(),
                    "Alerts could not be sent to an Alertmanager."
                ),
            }
        }
    }
}

/// Hands the same alerts to several sinks.
pub struct FanOut(pub Vec<Arc<dyn AlertSink>>);

impl AlertSink for FanOut {
    fn send(&self, alerts: Vec<Alert>) {
        if let Some((last, rest)) = self.0.split_last() {
            for sink in rest {
                sink.send(alerts.clone());
            }
            last.send(alerts);
        }
    }
}
