//! Parsing a 100k-series OpenMetrics exposition (and its text 0.0.4 form) with
//! `tradewatch::scrape`, in MB/s on one core.
//!
//! The exposition is the shared benchmark workload as `benches/encode.rs` builds it (per
//! (strategy, symbol, venue) four counters, four gauges and a histogram with 9 finite buckets:
//! 20 series; three labels), encoded by our own encoder. Cases:
//!
//! - `parse/openmetrics`: every entry of `scrape::parse` (metadata and samples, all checks);
//! - `parse/validate_openmetrics`: `scrape::validate` (the same work, keeping only problems);
//! - `parse/text`: `scrape::parse` on the text 0.0.4 encoding of the same registry.
//!
//! Run with `cargo bench --bench parse`. The OpenMetrics bytes are also written to
//! `target/tmp/parse-100k.om` so that `tests/python/om_rate.py` can time the Python
//! `prometheus_client` parser on the same input.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tradewatch::exporter::Format;
use tradewatch::scrape::{self, Entry};

#[path = "support/workload.rs"]
mod workload;

use workload::*;

/// Parses `input`, touching every entry; the number of samples.
fn parse_all(input: &[u8], format: scrape::Format) -> usize {
    let mut samples = 0;
    for entry in scrape::parse(input, format) {
        match entry.expect("the encoder's output is valid") {
            Entry::Sample(s) => {
                black_box(&s);
                samples += 1;
            }
            other => {
                black_box(other);
            }
        }
    }
    samples
}

fn parse(c: &mut Criterion) {
    let registry = trading_registry(SERIES);
    let om = registry.encode(Format::OpenMetrics).into_bytes();
    let text = registry.encode(Format::Text).into_bytes();
    assert_eq!(parse_all(&om, Format::OpenMetrics), SERIES);
    assert_eq!(parse_all(&text, Format::Text), SERIES);
    let dump = concat!(env!("CARGO_TARGET_TMPDIR"), "/parse-100k.om");
    std::fs::write(dump, &om).expect("writing the exposition for om_rate.py");
    println!(
        "parse: {SERIES} series; OpenMetrics {} bytes (written to {dump}), text {} bytes",
        om.len(),
        text.len()
    );

    let mut group = c.benchmark_group("parse");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(om.len() as u64));
    group.bench_function("openmetrics", |b| {
        b.iter(|| parse_all(black_box(&om), Format::OpenMetrics))
    });
    group.bench_function("validate_openmetrics", |b| {
        b.iter(|| scrape::validate(black_box(&om), Format::OpenMetrics).len())
    });
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("text", |b| {
        b.iter(|| parse_all(black_box(&text), Format::Text))
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
