//! What the sidecar's series store costs in memory: 100,000 trading series (7 or 8 labels each,
//! shaped as the trading catalog shapes them) appended every 5 s, with the store trimming each
//! series to its retention as the sidecar's does, measured with a counting allocator (bytes the
//! program asked for and still holds) and with the process's resident memory (`VmRSS`, which adds
//! the allocator's own headers, rounding and free lists).
//!
//! `cargo run --release --example store_memory`
//! Environment: `SERIES` (100000), `SCRAPES` (240), `RETENTION` (seconds, 600), `INTERVAL`
//! (seconds between appends, 5).
//!
//! Prints, for the phases (labels built, first sample of every series, steady state):
//! live bytes, their change, and the bytes per series and per sample derived from the changes.

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tradewatch::model::labels::Labels;
use tradewatch::store::{Store, StoreOptions};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const VENUES: [&str; 5] = ["binance", "coinbase", "kraken", "cme", "nasdaq"];
const BUCKETS: [&str; 10] = [
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "+Inf",
];
const COUNTERS: [&str; 4] = [
    "trading_orders_total",
    "trading_fills_total",
    "trading_rejects_total",
    "trading_cancels_total",
];
const GAUGES: [&str; 4] = [
    "trading_position",
    "trading_pnl",
    "trading_open_orders",
    "trading_exposure_notional",
];

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Bytes allocated and not yet freed since the program started (`stats_alloc` counts a
/// reallocation's growth in `bytes_allocated` and its shrinking in `bytes_deallocated`).
fn live_bytes() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// The process's resident memory, in bytes.
fn rss_bytes() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The label sets of the trading catalog: per (strategy, symbol, venue) combination 4 counters,
/// 4 gauges and a 10-bucket histogram with `_sum` and `_count` (20 series), under one job,
/// instance and engine.
fn catalog(series: usize) -> Vec<Labels> {
    let mut out = Vec::with_capacity(series);
    let mut i = 0;
    while out.len() < series {
        let strategy = format!("strat_{:02}", i % 10);
        let symbol = format!("SYM{:04}", i / 50);
        let venue = VENUES[(i / 10) % VENUES.len()];
        let base = |name: &str| {
            vec![
                ("__name__", name.to_owned()),
                ("job", "trading".to_owned()),
                ("instance", "engine-01:9470".to_owned()),
                ("engine", "default".to_owned()),
                ("strategy", strategy.clone()),
                ("symbol", symbol.clone()),
                ("venue", venue.to_owned()),
            ]
        };
        for name in COUNTERS.iter().chain(&GAUGES) {
            out.push(Labels::from_pairs(base(name)));
        }
        for le in BUCKETS {
            let mut pairs = base("trading_order_latency_seconds_bucket");
            pairs.push(("le", le.to_owned()));
            out.push(Labels::from_pairs(pairs));
        }
        for name in [
            "trading_order_latency_seconds_sum",
            "trading_order_latency_seconds_count",
        ] {
            out.push(Labels::from_pairs(base(name)));
        }
        i += 1;
    }
    out.truncate(series);
    out
}

struct Phase {
    name: &'static str,
    live: i64,
    rss: i64,
    series: usize,
    samples: usize,
}

fn main() {
    let series = env("SERIES", 100_000);
    let scrapes = env("SCRAPES", 240).max(1);
    let retention_ms = env("RETENTION", 600) as i64 * 1000;
    let interval_ms = env("INTERVAL", 5) as i64 * 1000;
    let mut phases = Vec::new();
    let mut mark = |name, store: Option<&Store>| {
        let stats = store.map(Store::stats).unwrap_or_default();
        phases.push(Phase {
            name,
            live: live_bytes(),
            rss: rss_bytes(),
            series: stats.series,
            samples: stats.samples,
        });
    };
    mark("start", None);

    let labels = catalog(series);
    mark("label sets built (held by the caller)", None);

    let store = Store::new(StoreOptions { retention_ms });
    let region = Region::new(GLOBAL);
    let mut value = 0.0;
    for l in &labels {
        value += 1.0;
        store.append(l, 0, value).expect("in order");
    }
    let first = region.change();
    mark("first sample of every series", Some(&store));
    // The caller lets go of its label sets (a scrape loop keeps its own copies of the same Arcs,
    // which this leaves out): from here on the store holds the only reference.
    drop(labels);
    mark("caller's references dropped", Some(&store));

    // Later samples are appended by label set as a scrape loop does: look-up, not creation.
    let mut held: Vec<Labels> = Vec::with_capacity(series);
    store_labels(&store, &mut held);
    for k in 1..scrapes as i64 {
        for l in &held {
            value += 1.0;
            store.append(l, k * interval_ms, value).expect("in order");
        }
    }
    drop(held);
    mark("steady state", Some(&store));

    println!(
        "store memory: {series} series, {scrapes} appends each {}s apart, retention {}s",
        interval_ms / 1000,
        retention_ms / 1000
    );
    println!(
        "first appends: {} allocations for {series} series ({:.1} a series)",
        first.allocations,
        first.allocations as f64 / series as f64
    );
    println!(
        "{:<40} {:>10} {:>12} {:>14} {:>12}",
        "phase", "series", "samples", "live bytes", "RSS"
    );
    for p in &phases {
        println!(
            "{:<40} {:>10} {:>12} {:>14} {:>12}",
            p.name,
            p.series,
            p.samples,
            p.live,
            format!("{:.1} MiB", p.rss as f64 / (1 << 20) as f64)
        );
    }
    let at = |name: &str| {
        phases
            .iter()
            .find(|p| p.name.starts_with(name))
            .expect("phase")
    };
    let (start, built, one, dropped, steady) = (
        at("start"),
        at("label sets"),
        at("first sample"),
        at("caller's"),
        at("steady"),
    );
    let n = series as f64;
    println!(
        "label sets alone: {:.0} bytes a series (live), {:.0} (RSS)",
        (built.live - start.live) as f64 / n,
        (built.rss - start.rss) as f64 / n
    );
    println!(
        "per series in the store, label sets included, with its first sample: {:.0} bytes (live), {:.0} (RSS)",
        (dropped.live - start.live) as f64 / n,
        (one.rss - start.rss) as f64 / n
    );
    let added = (steady.samples - one.samples) as f64;
    println!(
        "per sample at steady state ({:.0} samples a series): {:.1} bytes (live), {:.1} (RSS)",
        steady.samples as f64 / n,
        (steady.live - dropped.live) as f64 / added,
        (steady.rss - one.rss) as f64 / added
    );
    println!(
        "whole store at steady state: {:.1} MiB live, {:.1} bytes a sample all told",
        (steady.live - start.live) as f64 / (1 << 20) as f64,
        (steady.live - start.live) as f64 / steady.samples as f64
    );
}

/// The store's own label sets, in the order a scrape loop would present them.
fn store_labels(store: &Store, out: &mut Vec<Labels>) {
    use tradewatch::store::Queryable;
    store
        .select(&[], i64::MIN, i64::MAX, &mut |l, _| out.push(l.clone()))
        .expect("the store selects");
}
