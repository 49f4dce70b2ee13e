//! What a notification looks like to the outside: Alertmanager's template data for it and its
//! webhook payload, version 4, field for field, with times printed as Go prints them.
//!
//! ```
//! use std::collections::BTreeMap;
//! use chrono::{TimeZone, Utc};
//! use tradewatch::notify::{Alert, Notification};
//! use tradewatch::notify::payload::WebhookMessage;
//!
//! let at = Utc.timestamp_opt(1_700_000_000, 5_000).unwrap();
//! let alert = Alert {
//!     labels: BTreeMap::from([("alertname".into(), "TradingKillSwitchActive".into())]),
//!     annotations: BTreeMap::new(),
//!     starts_at: at,
//!     ends_at: at + chrono::Duration::minutes(5),
//!     updated_at: at,
//!     generator_url: String::new(),
//!     timeout: true,
//! };
//! let n = Notification {
//!     id: "n1".into(),
//!     receiver: "ops".into(),
//!     group_key: "{}:{}".into(),
//!     group_labels: BTreeMap::new(),
//!     alerts: vec![alert],
//!     created_at: at,
//! };
//! let message = WebhookMessage::new(&n, "http://trading-box:9470", 0);
//! assert_eq!(message.alerts[0].starts_at, "2023-11-14T22:13:20.000005Z");
//! // A firing alert's end is not shown, as in Alertmanager.
//! assert_eq!(message.alerts[0].ends_at, "0001-01-01T00:00:00Z");
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::types::{Alert, Notification};
use crate::template::Time;
use crate::template::alertmanager;

/// Go's `time.RFC3339Nano`, the layout of `time.Time` in JSON.
const RFC3339_NANO: &str = "2006-01-02T15:04:05.999999999Z07:00";

/// A time as Go's JSON encoding prints it: RFC 3339 with the fraction's trailing zeros dropped
/// (`2023-11-14T22:13:20.5Z`), Go's zero time as `0001-01-01T00:00:00Z`.
pub fn go_time(t: &Time) -> String {
    t.format(RFC3339_NANO)
}

/// Go's zero `time.Time`.
pub fn zero_time() -> Time {
    Time::utc(-62_135_596_800, 0)
}

/// The notification as the integration with `send_resolved` should get it, as Alertmanager's
/// retry stage decides: with `send_resolved`, unchanged; without it, its resolved alerts
/// removed, and nothing at all when none fires.
pub fn for_integration(n: &Notification, send_resolved: bool) -> Option<Notification> {
    if send_resolved {
        return Some(n.clone());
    }
    let firing: Vec<Alert> = n
        .alerts
        .iter()
        .filter(|a| !a.resolved_at(n.created_at))
        .cloned()
        .collect();
    if firing.is_empty() {
        return None;
    }
    Some(Notification {
        alerts: firing,
        ..n.clone()
    })
}

/// An alert as templates and webhooks see it at `now`: the end of a firing alert is hidden (Go's
/// zero time), as Alertmanager's `types.Alerts` does.
pub fn template_alert(a: &Alert, now: DateTime<Utc>) -> alertmanager::Alert {
    let resolved = a.resolved_at(now);
    alertmanager::Alert {
        status: if resolved { "resolved" } else { "firing" }.to_string(),
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        starts_at: Time::from_chrono(a.starts_at),
        ends_at: if resolved {
            Time::from_chrono(a.ends_at)
        } else {
            zero_time()
        },
        generator_url: a.generator_url.clone(),
        fingerprint: a.fingerprint().to_string(),
    }
}

/// Alertmanager's template data for `alerts` of notification `n` (the receiver regexp-quoted,
/// common labels and annotations over these alerts).
pub fn template_data(n: &Notification, alerts: &[Alert], external_url: &str) -> alertmanager::Data {
    alertmanager::Data::new(
        &n.receiver,
        n.group_labels.clone(),
        alerts
            .iter()
            .map(|a| template_alert(a, n.created_at))
            .collect(),
        external_url,
    )
}

/// The first `max_alerts` alerts (all when it is 0) and how many were left out, as
/// Alertmanager's `truncateAlerts`.
pub fn truncate(alerts: &[Alert], max_alerts: usize) -> (&[Alert], usize) {
    if max_alerts > 0 && alerts.len() > max_alerts {
        (&alerts[..max_alerts], alerts.len() - max_alerts)
    } else {
        (alerts, 0)
    }
}

/// Alertmanager's webhook payload (`webhook.Message`, version 4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookMessage {
    /// The receiver's name, regexp-quoted as Alertmanager passes it.
    pub receiver: String,
    /// `firing` when any alert fires, else `resolved`.
    pub status: String,
    /// The alerts (at most `max_alerts`).
    pub alerts: Vec<WebhookAlert>,
    /// The labels the group is formed by.
    pub group_labels: BTreeMap<String, String>,
    /// Labels every alert has with the same value.
    pub common_labels: BTreeMap<String, String>,
    /// Annotations every alert has with the same value.
    pub common_annotations: BTreeMap<String, String>,
    /// Where this notifier is reached.
    #[serde(rename = "externalURL")]
    pub external_url: String,
    /// Always `4`.
    pub version: String,
    /// The group's key.
    pub group_key: String,
    /// How many alerts `max_alerts` left out.
    pub truncated_alerts: u64,
}

/// One alert of a [`WebhookMessage`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookAlert {
    /// `firing` or `resolved`.
    pub status: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Start, RFC 3339 as Go prints it.
    pub starts_at: String,
    /// End, or `0001-01-01T00:00:00Z` while firing.
    pub ends_at: String,
    /// Link to the rule's expression.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    /// Alertmanager's fingerprint, 16 hex digits.
    pub fingerprint: String,
    /// tradewatch's one-tap action links (`notifier.action_links`); absent without them, so the
    /// payload is Alertmanager's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionLink>,
}

/// One action link of a [`WebhookAlert`]: `{"label": "Silence 1h", "url": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionLink {
    /// What it does.
    pub label: String,
    /// The confirm page.
    pub url: String,
}

impl WebhookMessage {
    /// The payload of `n`, with at most `max_alerts` alerts (0: all).
    pub fn new(n: &Notification, external_url: &str, max_alerts: usize) -> WebhookMessage {
        let (alerts, truncated) = truncate(&n.alerts, max_alerts);
        WebhookMessage::from_data(
            &template_data(n, alerts, external_url),
            &n.group_key,
            truncated,
        )
    }

    /// The payload of template data already made (the alerts already truncated).
    pub fn from_data(
        data: &alertmanager::Data,
        group_key: &str,
        truncated_alerts: usize,
    ) -> WebhookMessage {
        WebhookMessage {
            receiver: data.receiver.clone(),
            status: data.status.clone(),
            alerts: data
                .alerts
                .iter()
                .map(|a| WebhookAlert {
                    status: a.status.clone(),
                    labels: a.labels.clone(),
                    annotations: a.annotations.clone(),
                    starts_at: go_time(&a.starts_at),
                    ends_at: go_time(&a.ends_at),
                    generator_url: a.generator_url.clone(),
                    fingerprint: a.fingerprint.clone(),
                    actions: Vec::new(),
                })
                .collect(),
            group_labels: data.group_labels.clone(),
            common_labels: data.common_labels.clone(),
            common_annotations: data.common_annotations.clone(),
            external_url: data.external_url.clone(),
            version: "4".to_string(),
            group_key: group_key.to_string(),
            truncated_alerts: truncated_alerts as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_time_trims_fraction_zeros() {
        assert_eq!(
            go_time(&Time::utc(0, 500_000_000)),
            "1970-01-01T00:00:00.5Z"
        );
        assert_eq!(go_time(&Time::utc(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(go_time(&Time::utc(0, 1)), "1970-01-01T00:00:00.000000001Z");
        assert_eq!(go_time(&zero_time()), "0001-01-01T00:00:00Z");
    }

    proptest::proptest! {
        /// Go's RFC3339Nano: the instant reads back, and a fraction never ends in 0.
        #[test]
        fn go_time_reads_back(secs in -62_135_596_800i64..253_402_300_799, nanos in 0u32..1_000_000_000) {
            let t = Time::utc(secs, nanos);
            let text = go_time(&t);
            let back = Time::parse_rfc3339(&text).unwrap();
            proptest::prop_assert_eq!((back.secs, back.nanos), (secs, nanos));
            proptest::prop_assert!(text.ends_with('Z'));
            if let Some((_, fraction)) = text.trim_end_matches('Z').split_once('.') {
                proptest::prop_assert!(!fraction.ends_with('0') && fraction.len() <= 9, "{}", text);
            } else {
                proptest::prop_assert_eq!(nanos, 0);
            }
        }
    }

    #[test]
    fn truncation_counts_what_it_drops() {
        let a = |i: u32| Alert {
            labels: BTreeMap::from([("i".into(), i.to_string())]),
            annotations: BTreeMap::new(),
            starts_at: DateTime::UNIX_EPOCH,
            ends_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
            generator_url: String::new(),
            timeout: false,
        };
        let alerts: Vec<Alert> = (0..5).map(a).collect();
        assert_eq!(truncate(&alerts, 0).1, 0);
        assert_eq!(truncate(&alerts, 5).1, 0);
        let (kept, dropped) = truncate(&alerts, 2);
        assert_eq!((kept.len(), dropped), (2, 3));
    }
}
