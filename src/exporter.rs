//! The exporter role: the trading registry, its catalog of trading metrics, the pull
//! collectors, and `/metrics`.

pub mod catalog;
pub mod collectors;
pub mod encode;
pub mod registry;

pub use catalog::Catalog;
pub use encode::Format;
pub use registry::{
    Counter, Family, Gauge, Histogram, MetricType, Registry, Series, SeriesLimitError,
};

/// Prometheus's default histogram buckets, in seconds.
pub const DEFAULT_SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
