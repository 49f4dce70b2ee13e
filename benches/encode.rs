//! Encoding the trading registry: `Registry::encode_into` in OpenMetrics and text 0.0.4 at 1k,
//! 10k and 100k series.
//!
//! The series set is the shared benchmark workload (`/work/shared/bench/series.py`): per
//! (strategy, symbol, venue) four counters, four gauges and one histogram with 9 finite buckets
//! (12 series), so 20 series a label combination; 10 strategies, 5 venues, as many symbols as
//! needed. Run with `cargo bench --bench encode`; the series count and the output size of each
//! case are printed before it runs.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tradewatch::exporter::{Format, MetricType, Registry};
use tradewatch::model::names::render_labels;

/// Series one label combination carries: 4 counters + 4 gauges + (10 buckets + sum + count).
const SERIES_PER_COMBO: usize = 20;
const STRATEGIES: usize = 10;
const VENUES: [&str; 5] = ["binance", "coinbase", "kraken", "cme", "nasdaq"];
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
];

/// A small deterministic generator (SplitMix64), so every run encodes the same values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Rounded to cents, as the Python workload does for money.
    fn cents(&mut self, lo: f64, hi: f64) -> f64 {
        (self.uniform(lo, hi) * 100.0).round() / 100.0
    }
}

/// A registry holding `series` trading series (a multiple of 20).
fn trading_registry(series: usize) -> Registry {
    assert_eq!(
        series % SERIES_PER_COMBO,
        0,
        "series must be a multiple of 20"
    );
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
            // Log-normal around 1 ms, as the Python workload draws it.
            let u1 = rng.uniform(f64::EPSILON, 1.0);
            let u2 = rng.uniform(0.0, 1.0);
            let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            h.observe((-7.0 + 0.8 * normal).exp());
        }
    }
    // The registry counts a histogram as one series; the exposition has 12 lines for it.
    assert_eq!(registry.series_total(), series / SERIES_PER_COMBO * 9);
    registry
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for series in [1_000, 10_000, 100_000] {
        let registry = trading_registry(series);
        if series >= 100_000 {
            group.sample_size(30);
        }
        for (name, format) in [("openmetrics", Format::OpenMetrics), ("text", Format::Text)] {
            let mut out = Vec::new();
            registry.encode_into(format, &mut out);
            let bytes = out.len();
            let samples = out
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
                .count();
            assert_eq!(samples, series);
            println!(
                "encode/{name}/{series}: {samples} series (sample lines) in {} registry series, \
                 {bytes} bytes ({:.1} bytes a series)",
                registry.series_total(),
                bytes as f64 / series as f64
            );
            group.throughput(Throughput::ElementsAndBytes {
                elements: series as u64,
                bytes: bytes as u64,
            });
            // A buffer reused across iterations, as a server keeping its last size would; the
            // first iteration's growth is part of the warm-up.
            group.bench_with_input(BenchmarkId::new(name, series), &registry, |b, r| {
                let mut out = Vec::with_capacity(bytes);
                b.iter(|| {
                    out.clear();
                    r.encode_into(format, &mut out);
                    black_box(out.len())
                })
            });
            // A fresh 64 KiB buffer every time, as `GET /metrics` does today.
            group.bench_with_input(
                BenchmarkId::new(format!("{name}_fresh_buffer"), series),
                &registry,
                |b, r| {
                    b.iter(|| {
                        let mut out = Vec::with_capacity(1 << 16);
                        r.encode_into(format, &mut out);
                        black_box(out.len())
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
