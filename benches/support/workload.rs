//! The benchmarks' shared workload: a 100k-series trading registry (three labels; counters,
//! gauges and a histogram family), built deterministically so every run measures the same bytes.

#![allow(dead_code)]

use tradewatch::exporter::{MetricType, Registry};
use tradewatch::model::names::render_labels;

pub const SERIES: usize = 100_000;
/// Series one label combination carries: 4 counters + 4 gauges + (10 buckets + sum + count).
pub const SERIES_PER_COMBO: usize = 20;
pub const STRATEGIES: usize = 10;
pub const VENUES: [&str; 5] = ["binance", "coinbase", "kraken", "cme", "nasdaq"];
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
];

/// A small deterministic generator (SplitMix64), so every run parses the same bytes.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn cents(&mut self, lo: f64, hi: f64) -> f64 {
        (self.uniform(lo, hi) * 100.0).round() / 100.0
    }
}

/// The trading registry of `series` series.
pub fn trading_registry(series: usize) -> Registry {
    let registry = Registry::default();
    let family = |name: &str, kind, help: &str| {
        registry
            .register(name, kind, help, None, LATENCY_BUCKETS)
            .expect("fresh registry")
    };
    let counters = [
        family("trading_orders", MetricType::Counter, "Orders sent."),
        family("trading_fills", MetricType::Counter, "Fills received."),
        family("trading_rejects", MetricType::Counter, "Orders rejected."),
        family("trading_cancels", MetricType::Counter, "Orders cancelled."),
    ];
    let gauges = [
        family(
            "trading_position",
            MetricType::Gauge,
            "Net position (units).",
        ),
        family(
            "trading_pnl",
            MetricType::Gauge,
            "Realised + unrealised PnL.",
        ),
        family("trading_open_orders", MetricType::Gauge, "Open orders."),
        family(
            "trading_exposure_notional",
            MetricType::Gauge,
            "Gross notional exposure.",
        ),
    ];
    let latency = registry
        .register(
            "trading_order_latency_seconds",
            MetricType::Histogram,
            "Order ack latency.",
            Some("seconds"),
            LATENCY_BUCKETS,
        )
        .expect("fresh registry");
    let mut rng = Rng(42);
    let mut labels = String::new();
    for i in 0..series / SERIES_PER_COMBO {
        let strategy = format!("strat_{:02}", i % STRATEGIES);
        let symbol = format!("SYM{:04}", i / 50);
        let venue = VENUES[(i / 10) % VENUES.len()];
        labels.clear();
        render_labels(
            [
                ("strategy", Some(strategy.as_str())),
                ("symbol", Some(symbol.as_str())),
                ("venue", Some(venue)),
            ],
            &mut labels,
        );
        let orders = (1000 + rng.next() % 499_000) as f64;
        let values = [
            orders,
            (orders * rng.uniform(0.3, 0.9)).floor(),
            (rng.next() % 51) as f64,
            (orders * rng.uniform(0.05, 0.6)).floor(),
        ];
        for (family, v) in counters.iter().zip(values) {
            family.counter(&labels).expect("no limits").inc_by(v);
        }
        let values = [
            rng.cents(-1e5, 1e5),
            rng.cents(-1e4, 1e4),
            (rng.next() % 101) as f64,
            rng.cents(0.0, 1e7),
        ];
        for (family, v) in gauges.iter().zip(values) {
            family.gauge(&labels).expect("no limits").set(v);
        }
        let h = latency.histogram(&labels).expect("no limits");
        for _ in 0..5 {
            let u1 = rng.uniform(f64::EPSILON, 1.0);
            let u2 = rng.uniform(0.0, 1.0);
            let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            h.observe((-7.0 + 0.8 * normal).exp());
        }
    }
    registry
}
