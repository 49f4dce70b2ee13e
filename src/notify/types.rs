//! The vocabulary every notifier stage shares: an alert as Alertmanager holds it, and one
//! notification of one aggregation group to one receiver.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alerts::Fingerprint;

/// An alert as the notifier holds it (Alertmanager's `types.Alert`): from the rule layer
/// in-process, or posted to `POST /api/v2/alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Identifying labels, `alertname` among them.
    pub labels: BTreeMap<String, String>,
    /// Annotations (`summary`, `description`, `runbook_url`, …).
    pub annotations: BTreeMap<String, String>,
    /// When the alert started firing.
    pub starts_at: DateTime<Utc>,
    /// When it ends or ended. For an alert posted without an end, the notifier sets
    /// `updated_at + resolve_timeout` and `timeout`, as Alertmanager does.
    pub ends_at: DateTime<Utc>,
    /// When the notifier last received it.
    pub updated_at: DateTime<Utc>,
    /// Link to the expression that produced it.
    pub generator_url: String,
    /// `ends_at` was set from `resolve_timeout`, not by the sender.
    pub timeout: bool,
}

impl Alert {
    /// Alertmanager's fingerprint of the labels.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_pairs(self.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// The `alertname` label, or empty.
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }

    /// Whether the alert is resolved at `now` (its end is not after `now`).
    pub fn resolved_at(&self, now: DateTime<Utc>) -> bool {
        self.ends_at <= now
    }
}

/// Whether a notification reports trouble or its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationStatus {
    /// At least one alert fires.
    Firing,
    /// Every alert is resolved.
    Resolved,
}

impl NotificationStatus {
    /// `firing` or `resolved`, as Alertmanager writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Firing => "firing",
            NotificationStatus::Resolved => "resolved",
        }
    }
}

/// One notification: what an aggregation group sends to one receiver at one flush.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Stable id: the outbox key, the webhook `Idempotency-Key`, the email `Message-ID`.
    pub id: String,
    /// The receiver's name in the routing file.
    pub receiver: String,
    /// Alertmanager's group key (`{}/{severity="critical"}:{alertname="X"}`).
    pub group_key: String,
    /// The labels the group is formed by.
    pub group_labels: BTreeMap<String, String>,
    /// The alerts, in Alertmanager's order, with their state at the flush.
    pub alerts: Vec<Alert>,
    /// When the group was flushed.
    pub created_at: DateTime<Utc>,
}

impl Notification {
    /// Firing when any alert fires at the flush, else resolved.
    pub fn status(&self) -> NotificationStatus {
        if self.alerts.iter().any(|a| !a.resolved_at(self.created_at)) {
            NotificationStatus::Firing
        } else {
            NotificationStatus::Resolved
        }
    }
}
