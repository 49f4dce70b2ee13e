//! The alert log's `notification` line (DESIGN §3): one per state change of an outbox item,
//! with what the self-metrics need beside it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};

use super::Item;

/// A `notification` line of the alert log (DESIGN §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationEvent {
    /// When, RFC 3339 UTC with milliseconds.
    #[serde(serialize_with = "millis", deserialize_with = "from_rfc3339")]
    pub ts: DateTime<Utc>,
    /// Always `notification`.
    pub kind: String,
    /// The notification id.
    pub id: String,
    /// The receiver.
    pub receiver: String,
    /// The integration (`webhook[0]`).
    pub integration: String,
    /// The group's key.
    pub group_key: String,
    /// The alerts' fingerprints.
    pub fingerprints: Vec<String>,
    /// `firing` or `resolved`.
    pub status: String,
    /// `queued`, `delivered`, `failed` or `dead`.
    pub outcome: String,
    /// Attempts so far.
    pub attempt: u32,
    /// The receiver's answer, if any.
    pub response: Option<String>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// The outbox item (not in the log line).
    #[serde(skip)]
    pub item: i64,
    /// When the earliest firing alert started (not in the log line): with `ts`, the latency
    /// of `tradewatch_notification_latency_seconds`.
    #[serde(skip)]
    pub firing_since: Option<DateTime<Utc>>,
}

impl NotificationEvent {
    pub(super) fn new(item: &Item, outcome: &str, ts: DateTime<Utc>) -> NotificationEvent {
        let n = &item.notification;
        NotificationEvent {
            ts,
            kind: "notification".to_string(),
            id: n.id.clone(),
            receiver: item.target.receiver.clone(),
            integration: item.target.integration(),
            group_key: n.group_key.clone(),
            fingerprints: n
                .alerts
                .iter()
                .map(|a| a.fingerprint().to_string())
                .collect(),
            status: n.status().as_str().to_string(),
            outcome: outcome.to_string(),
            attempt: item.attempts,
            response: None,
            error: None,
            item: item.id,
            firing_since: n
                .alerts
                .iter()
                .filter(|a| !a.resolved_at(n.created_at))
                .map(|a| a.starts_at)
                .min(),
        }
    }

    /// The integration's kind (`webhook`), the label of the self-metrics.
    pub fn integration_kind(&self) -> &str {
        self.integration
            .split('[')
            .next()
            .unwrap_or(&self.integration)
    }

    /// Seconds from the first firing alert's start to a delivery, for
    /// `tradewatch_notification_latency_seconds`.
    pub fn latency_seconds(&self) -> Option<f64> {
        let since = self.firing_since?;
        (self.outcome == "delivered").then(|| (self.ts - since).num_milliseconds() as f64 / 1000.0)
    }

    /// The line as the alert log writes it.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| unreachable!("an event serializes: {e}"))
    }
}

fn millis<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn from_rfc3339<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::notify::Notification;
    use crate::notify::outbox::{IntegrationKind, IntegrationRef, ItemState};

    fn from_ms(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    #[test]
    fn event_line_has_the_alert_log_shape() {
        let item = Item {
            id: 7,
            target: IntegrationRef::new("ops", IntegrationKind::Webhook, 1),
            notification: Notification {
                id: "n1".into(),
                receiver: "ops".into(),
                group_key: "{}:{}".into(),
                group_labels: BTreeMap::new(),
                alerts: vec![],
                created_at: from_ms(0),
            },
            state: ItemState::Pending,
            attempts: 2,
            created_at: from_ms(0),
            next_attempt_at: from_ms(0),
            expires_at: from_ms(0),
            last_error: None,
            last_response: None,
            delivered_at: None,
            fallback_of: None,
        };
        let mut event = NotificationEvent::new(&item, "failed", from_ms(1_700_000_000_123));
        event.error = Some("webhook answered 500".into());
        assert_eq!(
            event.to_json_line(),
            r#"{"ts":"2023-11-14T22:13:20.123Z","kind":"notification","id":"n1","receiver":"ops","integration":"webhook[1]","group_key":"{}:{}","fingerprints":[],"status":"resolved","outcome":"failed","attempt":2,"response":null,"error":"webhook answered 500"}"#
        );
        let back: NotificationEvent = serde_json::from_str(&event.to_json_line()).unwrap();
        assert_eq!(back.ts, event.ts);
        assert_eq!(back.integration_kind(), "webhook");
    }
}
