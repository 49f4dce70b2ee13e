//! The catalog of trading metrics (DESIGN §1): the names, types and labels that dashboards and
//! rules rely on, and typed functions to record them in-process.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::DEFAULT_SECONDS_BUCKETS;
use super::registry::{
    Counter, Family, Gauge, Histogram, MetricType, RegisterError, Registry, SeriesLimitError,
};
use crate::model::names::render_labels;

/// A label value that may be absent: `&str` is always present, `Option<&str>` may not be.
pub trait LabelValue<'a> {
    /// The value, or `None` when the label is left off the series.
    fn value(self) -> Option<&'a str>;
}

impl<'a> LabelValue<'a> for &'a str {
    fn value(self) -> Option<&'a str> {
        Some(self)
    }
}

impl<'a> LabelValue<'a> for Option<&'a str> {
    fn value(self) -> Option<&'a str> {
        self
    }
}

/// A handle type that can be taken from a family.
pub trait Handle: Sized {
    /// The handle on the series with this label block.
    fn take(family: &Family, labels: &str) -> Result<Self, SeriesLimitError>;
}

impl Handle for Counter {
    fn take(family: &Family, labels: &str) -> Result<Self, SeriesLimitError> {
        family.counter(labels)
    }
}

impl Handle for Gauge {
    fn take(family: &Family, labels: &str) -> Result<Self, SeriesLimitError> {
        family.gauge(labels)
    }
}

impl Handle for Histogram {
    fn take(family: &Family, labels: &str) -> Result<Self, SeriesLimitError> {
        family.histogram(labels)
    }
}

macro_rules! catalog {
    ($( $field:ident: $kind:ident $name:literal [$($label:ident: $lty:ty),*] $help:literal; )*) => {
        /// The trading families, registered in one registry.
        #[derive(Clone, Debug)]
        pub struct Catalog {
            $(
                #[doc = concat!("`", $name, "`: ", $help)]
                pub $field: Arc<Family>,
            )*
        }

        /// Positions of the catalog's families in [`Catalog::all`].
        #[allow(non_camel_case_types, missing_docs)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Id { $($field),* }

        impl Catalog {
            /// Every family of the catalog, in [`Id`] order.
            pub fn all(&self) -> Vec<Arc<Family>> {
                vec![$(self.$field.clone()),*]
            }

            /// Registers the trading families in `registry`; `buckets` overrides histogram
            /// buckets by metric name (Prometheus's defaults otherwise).
            pub fn try_new(
                registry: &Registry,
                buckets: &BTreeMap<String, Vec<f64>>,
            ) -> Result<Catalog, RegisterError> {
                Ok(Catalog {
                    $(
                        $field: {
                            let kind = MetricType::$kind;
                            let bounds = buckets.get($name).map(Vec::as_slice).unwrap_or(DEFAULT_SECONDS_BUCKETS);
                            let unit = $name.ends_with("_seconds").then_some("seconds");
                            registry.register($name, kind, $help, unit, bounds)?
                        },
                    )*
                })
            }

            $(
                #[doc = concat!("The `", $name, "` series with these labels.")]
                pub fn $field<'a>(&self, $($label: $lty),*) -> Result<$kind, SeriesLimitError> {
                    let mut labels = String::new();
                    keys::$field(&mut labels, $($label),*);
                    <$kind as Handle>::take(&self.$field, &labels)
                }
            )*
        }

        /// Label blocks of the catalog's families, in the order the catalog declares them.
        pub mod keys {
            use super::*;
            $(
                #[doc = concat!("Appends the label block of a `", $name, "` series.")]
                pub fn $field<'a>(out: &mut String, $($label: $lty),*) {
                    render_labels([$((stringify!($label), LabelValue::value($label))),*], out);
                }
            )*
        }
    };
}

catalog! {
    heartbeat: Gauge "trading_engine_heartbeat_timestamp_seconds" [engine: &'a str]
        "Unix time of the engine's latest event.";
    start_time: Gauge "trading_engine_start_time_seconds" [engine: &'a str]
        "Unix time the engine last started.";
    orders: Counter "trading_orders" [engine: &'a str, strategy: Option<&'a str>, venue: &'a str, side: &'a str, status: &'a str]
        "Orders by status.";
    order_latency: Histogram "trading_order_latency_seconds" [engine: &'a str, venue: &'a str]
        "Order round-trip latency.";
    fills: Counter "trading_fills" [engine: &'a str, strategy: Option<&'a str>, symbol: &'a str, side: &'a str]
        "Fills.";
    traded_notional: Counter "trading_traded_notional" [engine: &'a str, strategy: Option<&'a str>, symbol: &'a str, side: &'a str]
        "Traded notional (quantity times price).";
    decisions: Counter "trading_decisions" [engine: &'a str, strategy: Option<&'a str>, decision: &'a str]
        "Strategy decisions.";
    cycles: Counter "trading_cycles" [engine: &'a str, result: &'a str]
        "Engine cycles by result.";
    cycle_duration: Histogram "trading_cycle_duration_seconds" [engine: &'a str]
        "Duration of an engine cycle.";
    rebalances: Counter "trading_rebalances" [engine: &'a str, result: &'a str]
        "Rebalances by result.";
    rebalance_duration: Histogram "trading_rebalance_duration_seconds" [engine: &'a str]
        "Duration of a rebalance.";
    last_rebalance: Gauge "trading_last_rebalance_timestamp_seconds" [engine: &'a str]
        "Unix time of the latest successful or partial rebalance.";
    drift_max_ratio: Gauge "trading_drift_max_ratio" [engine: &'a str]
        "Largest drift of a position from its target weight, as a ratio.";
    portfolio_value: Gauge "trading_portfolio_value" [engine: &'a str, currency: &'a str]
        "Portfolio value.";
    cash_balance: Gauge "trading_cash_balance" [engine: &'a str, currency: &'a str]
        "Cash balance.";
    positions_open: Gauge "trading_positions_open" [engine: &'a str]
        "Open positions.";
    position_value: Gauge "trading_position_value" [engine: &'a str, symbol: &'a str]
        "Value of a position.";
    position_quantity: Gauge "trading_position_quantity" [engine: &'a str, symbol: &'a str]
        "Quantity held in a position.";
    position_limit: Gauge "trading_position_limit" [engine: &'a str, symbol: &'a str]
        "Position limit for a symbol.";
    daily_loss_limit: Gauge "trading_daily_loss_limit" [engine: &'a str]
        "Daily loss limit, a positive amount.";
    pnl_daily: Gauge "trading_pnl_daily" [engine: &'a str, strategy: Option<&'a str>, currency: &'a str]
        "Profit and loss since the start of the trading day.";
    pnl_realized: Gauge "trading_pnl_realized" [engine: &'a str, strategy: Option<&'a str>, currency: &'a str]
        "Realized profit and loss.";
    pnl_unrealized: Gauge "trading_pnl_unrealized" [engine: &'a str, strategy: Option<&'a str>, currency: &'a str]
        "Unrealized profit and loss.";
    drawdown_ratio: Gauge "trading_drawdown_ratio" [engine: &'a str, strategy: Option<&'a str>, currency: &'a str]
        "Drawdown from the peak, as a ratio.";
    circuit_breaker_active: Gauge "trading_circuit_breaker_active" [engine: &'a str, breaker: &'a str]
        "Whether a circuit breaker is tripped (1) or not (0).";
    circuit_breaker_trips: Counter "trading_circuit_breaker_trips" [engine: &'a str, breaker: &'a str]
        "Times a circuit breaker went from clear to tripped.";
    kill_switch_active: Gauge "trading_kill_switch_active" [engine: &'a str]
        "Whether the kill switch is engaged (1) or not (0).";
    connectivity_up: Gauge "trading_connectivity_up" [engine: &'a str, target: &'a str]
        "Whether a connection is up (1) or down (0).";
    api_requests: Counter "trading_api_requests" [engine: &'a str, api: &'a str, result: &'a str]
        "API requests by result.";
    api_request_duration: Histogram "trading_api_request_duration_seconds" [engine: &'a str, api: &'a str]
        "Duration of an API request.";
    api_errors: Counter "trading_api_errors" [engine: &'a str, api: &'a str, code: Option<&'a str>]
        "API requests that failed, by code.";
    data_provider_failures: Counter "trading_data_provider_failures" [engine: &'a str, provider: &'a str]
        "Failed requests to a data provider.";
    errors: Counter "trading_errors" [engine: &'a str, component: &'a str, kind: &'a str]
        "Errors by component and kind.";
    function_duration: Histogram "trading_function_duration_seconds" [engine: &'a str, function: &'a str]
        "Duration of an instrumented function.";
    function_calls: Counter "trading_function_calls" [engine: &'a str, function: &'a str, result: &'a str]
        "Calls of an instrumented function by result.";
    lock_wait: Histogram "trading_lock_wait_seconds" [engine: &'a str, lock: &'a str]
        "Time spent waiting for a lock.";
}

impl Catalog {
    /// Registers the trading families with Prometheus's default buckets, or the given ones.
    ///
    /// # Panics
    /// When `registry` already holds a family of a catalog name with another type.
    pub fn new(registry: &Registry, buckets: &BTreeMap<String, Vec<f64>>) -> Catalog {
        Catalog::try_new(registry, buckets).expect("catalog families conflict with registered ones")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporter::Format;

    #[test]
    fn optional_labels_are_absent() {
        let registry = Registry::default();
        let catalog = Catalog::new(&registry, &BTreeMap::new());
        catalog
            .orders("e", None, "v", "buy", "filled")
            .unwrap()
            .inc();
        catalog.pnl_daily("e", Some("s"), "USD").unwrap().set(-12.5);
        let text = registry.encode(Format::OpenMetrics);
        assert!(text.contains(
            "trading_orders_total{engine=\"e\",venue=\"v\",side=\"buy\",status=\"filled\"} 1.0\n"
        ));
        assert!(
            text.contains(
                "trading_pnl_daily{engine=\"e\",strategy=\"s\",currency=\"USD\"} -12.5\n"
            )
        );
        assert!(
            text.contains("# UNIT trading_order_latency_seconds seconds")
                || !text.contains("trading_order_latency")
        );
    }

    #[test]
    fn buckets_are_configurable() {
        let registry = Registry::default();
        let buckets = BTreeMap::from([(
            "trading_order_latency_seconds".to_owned(),
            vec![0.001, 0.002],
        )]);
        let catalog = Catalog::new(&registry, &buckets);
        assert_eq!(catalog.order_latency.buckets(), &[0.001, 0.002]);
        assert_eq!(catalog.lock_wait.buckets(), DEFAULT_SECONDS_BUCKETS);
    }
}
