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
use tradewatch::exporter::Format;

/// Series one label combination carries: 4 counters + 4 gauges + (10 buckets + sum + count).
#[path = "support/workload.rs"]
mod workload;

use workload::*;

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
