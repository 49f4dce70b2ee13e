//! The `exporter` section: ingest limits, idempotency, histogram buckets, heartbeat health and
//! collectors.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::check::Checker;
use super::collectors::CollectorsConfig;
use crate::model::PromDuration;

/// How the exporter takes events and what it collects by itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExporterConfig {
    /// Limits on ingest requests and on the registry's size.
    pub limits: Limits,
    /// How long an event `id` is remembered to drop a retried duplicate.
    #[serde(default = "default_idempotency_window")]
    pub idempotency_window: PromDuration,
    /// Histogram bucket upper bounds by metric name, replacing the catalog's defaults.
    pub buckets: BTreeMap<String, Vec<f64>>,
    /// Age of an engine's last heartbeat past which health turns warning (critical past 5×).
    #[serde(default = "default_heartbeat_timeout")]
    pub heartbeat_timeout: PromDuration,
    /// Pull collectors: file freshness, JSON snapshots, SQLite queries.
    pub collectors: CollectorsConfig,
}

/// Ingest limits; each rejection is counted in `tradewatch_events_rejected_total{reason}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body, as sent (413 past it).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    /// Largest request body after gunzip (413 past it).
    #[serde(default = "default_max_decoded_body_bytes")]
    pub max_decoded_body_bytes: u64,
    /// Most events in one request.
    #[serde(default = "default_max_events_per_batch")]
    pub max_events_per_batch: usize,
    /// Longest label value, in bytes.
    #[serde(default = "default_max_label_value_bytes")]
    pub max_label_value_bytes: usize,
    /// Most labels on a `metric` event.
    #[serde(default = "default_max_labels_per_metric")]
    pub max_labels_per_metric: usize,
    /// Most series in one metric family.
    #[serde(default = "default_max_series_per_family")]
    pub max_series_per_family: usize,
    /// Most series in the whole registry.
    #[serde(default = "default_max_series_total")]
    pub max_series_total: usize,
    /// Most accepted events waiting for the journal (429 past it).
    #[serde(default = "default_max_queued_events")]
    pub max_queued_events: usize,
}

fn default_max_body_bytes() -> u64 {
    16 << 20
}

fn default_max_decoded_body_bytes() -> u64 {
    64 << 20
}

fn default_max_events_per_batch() -> usize {
    100_000
}

fn default_max_label_value_bytes() -> usize {
    1024
}

fn default_max_labels_per_metric() -> usize {
    16
}

fn default_max_series_per_family() -> usize {
    200_000
}

fn default_max_series_total() -> usize {
    2_000_000
}

fn default_max_queued_events() -> usize {
    1_000_000
}

fn default_idempotency_window() -> PromDuration {
    PromDuration::from_secs(24 * 3600)
}

fn default_heartbeat_timeout() -> PromDuration {
    PromDuration::from_secs(60)
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body_bytes: default_max_body_bytes(),
            max_decoded_body_bytes: default_max_decoded_body_bytes(),
            max_events_per_batch: default_max_events_per_batch(),
            max_label_value_bytes: default_max_label_value_bytes(),
            max_labels_per_metric: default_max_labels_per_metric(),
            max_series_per_family: default_max_series_per_family(),
            max_series_total: default_max_series_total(),
            max_queued_events: default_max_queued_events(),
        }
    }
}

impl Default for ExporterConfig {
    fn default() -> ExporterConfig {
        ExporterConfig {
            limits: Limits::default(),
            idempotency_window: default_idempotency_window(),
            buckets: BTreeMap::new(),
            heartbeat_timeout: default_heartbeat_timeout(),
            collectors: CollectorsConfig::default(),
        }
    }
}

impl ExporterConfig {
    pub(crate) fn check(&self, c: &mut Checker<'_>) {
        c.within("limits", |c| self.limits.check(c));
        c.positive("heartbeat_timeout", self.heartbeat_timeout);
        c.within("buckets", |c| {
            for (metric, bounds) in &self.buckets {
                check_buckets(c, metric, bounds);
            }
        });
        c.within("collectors", |c| self.collectors.check(c));
    }
}

impl Limits {
    fn check(&self, c: &mut Checker<'_>) {
        let fields = [
            ("max_body_bytes", self.max_body_bytes),
            ("max_decoded_body_bytes", self.max_decoded_body_bytes),
            ("max_events_per_batch", self.max_events_per_batch as u64),
            ("max_label_value_bytes", self.max_label_value_bytes as u64),
            ("max_labels_per_metric", self.max_labels_per_metric as u64),
            ("max_series_per_family", self.max_series_per_family as u64),
            ("max_series_total", self.max_series_total as u64),
            ("max_queued_events", self.max_queued_events as u64),
        ];
        for (field, value) in fields {
            if value == 0 {
                c.field_error(field, "must be greater than 0");
            }
        }
        if self.max_decoded_body_bytes < self.max_body_bytes {
            c.field_error(
                "max_decoded_body_bytes",
                format!(
                    "max_decoded_body_bytes ({}) must not be smaller than max_body_bytes ({})",
                    self.max_decoded_body_bytes, self.max_body_bytes
                ),
            );
        }
        if self.max_series_total < self.max_series_per_family {
            c.field_error(
                "max_series_total",
                format!(
                    "max_series_total ({}) must not be smaller than max_series_per_family ({})",
                    self.max_series_total, self.max_series_per_family
                ),
            );
        }
    }
}

/// A bucket list: a valid metric name; bounds non-empty, finite, non-negative (an OpenMetrics
/// histogram with a negative bucket may not carry the `_sum` every observation feeds), strictly
/// increasing.
fn check_buckets(c: &mut Checker<'_>, metric: &str, bounds: &[f64]) {
    if !super::check::is_metric_name(metric) {
        c.field_key_error(metric, format!("invalid metric name {metric:?}"));
    }
    c.within(metric, |c| {
        if bounds.is_empty() {
            c.value_error("bucket list must not be empty");
        }
        for (i, &bound) in bounds.iter().enumerate() {
            if !bound.is_finite() {
                c.within(i, |c| {
                    c.value_error(format!(
                        "bucket {} must be finite, not {bound} (the +Inf bucket is implied)",
                        i + 1
                    ))
                });
            } else if bound < 0.0 {
                c.within(i, |c| {
                    c.value_error(format!(
                        "bucket {} must be ≥ 0, not {bound} (observations are never negative)",
                        i + 1
                    ))
                });
            } else if i > 0 && bounds[i - 1].is_finite() && bound <= bounds[i - 1] {
                c.within(i, |c| {
                    c.value_error(format!(
                        "bucket {} ({bound}) must be greater than bucket {} ({})",
                        i + 1,
                        i,
                        bounds[i - 1]
                    ))
                });
            }
        }
    });
}
