//! One warm scrape of 100k series end to end to the append interface: the body parsed, the
//! target's labels put on every series through the label cache, each sample appended to the
//! store, staleness tracked and the report series written, as the scrape loop does after its
//! HTTP request (`scrape::target::ingest`). Time per sample, and allocations per sample counted
//! by an instrumenting global allocator.
//!
//! The exposition is the shared benchmark workload as `benches/encode.rs` builds it (per
//! (strategy, symbol, venue) four counters, four gauges and a histogram with 9 finite buckets:
//! 20 series; three labels), encoded by our own encoder as OpenMetrics. Cases:
//!
//! - `scrape/warm_openmetrics`: a scrape of a target whose previous scrape saw the same series
//!   (the steady state: every label set is in the cache, every series in the store);
//! - printed before it: allocations and bytes allocated per sample of a cold scrape (empty cache
//!   and store) and of a warm one.
//!
//! Run with `cargo bench --bench scrape`.

use std::alloc::System;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tradewatch::config::{ScrapeConfig, ScrapeTarget};
use tradewatch::exporter::Format;
use tradewatch::scrape::target::{Target, ingest};
use tradewatch::store::{Store, StoreOptions};

#[path = "support/workload.rs"]
mod workload;

use workload::*;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Time between the scrapes of the benchmark, as the store sees it.
const INTERVAL_MS: i64 = 1_000;

fn target() -> Target {
    let config = ScrapeTarget::new("http://127.0.0.1:9470/metrics", "engine");
    Target::new(&config, &ScrapeConfig::default()).expect("a valid target")
}

fn store() -> Store {
    // Ten scrapes of history per series: the store trims as it appends, as the sidecar's does.
    Store::new(StoreOptions {
        retention_ms: 10 * INTERVAL_MS,
    })
}

/// Allocations and bytes allocated by one `ingest` of `body` at `now_ms`.
fn counted(target: &Target, store: &Store, body: &[u8], now_ms: i64) -> (usize, usize) {
    let region = Region::new(GLOBAL);
    let report = ingest(target, store, body, Format::OpenMetrics, now_ms);
    let stats = region.change();
    assert!(report.is_up(), "{report:?}");
    assert_eq!(report.samples, SERIES);
    (
        stats.allocations + stats.reallocations,
        stats.bytes_allocated,
    )
}

fn scrape(c: &mut Criterion) {
    let body = trading_registry(SERIES)
        .encode(Format::OpenMetrics)
        .into_bytes();
    let target = target();
    let store = store();
    let mut now_ms = 1_700_000_000_000;

    let (cold_allocs, cold_bytes) = counted(&target, &store, &body, now_ms);
    now_ms += INTERVAL_MS;
    let (warm_allocs, warm_bytes) = counted(&target, &store, &body, now_ms);
    let per = |n: usize| n as f64 / SERIES as f64;
    println!(
        "scrape: {SERIES} series, {} bytes of OpenMetrics; cold scrape {:.2} allocations and {:.0} bytes per sample; warm scrape {:.2} allocations and {:.0} bytes per sample",
        body.len(),
        per(cold_allocs),
        per(cold_bytes),
        per(warm_allocs),
        per(warm_bytes),
    );

    let mut group = c.benchmark_group("scrape");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(SERIES as u64));
    group.bench_function("warm_openmetrics", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                now_ms += INTERVAL_MS;
                black_box(ingest(
                    &target,
                    &store,
                    black_box(&body),
                    Format::OpenMetrics,
                    now_ms,
                ));
            }
            started.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, scrape);
criterion_main!(benches);
