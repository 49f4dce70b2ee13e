//! Ingest without HTTP: planning, decoding and applying a batch of 1,000 `order` events.
//!
//! - `ingest/plan_line`: `Planner::plan_line` on each line (JSON decode, checks, label blocks,
//!   journal line);
//! - `ingest/decode`: `Ingest::decode` on the NDJSON body (the above plus line splitting);
//! - `ingest/decode_submit_fsync_never`: `decode` + `Ingest::submit` on a tokio runtime, with the
//!   journal in a temporary directory and `fsync: never`: the journal thread appends the lines
//!   and applies the operations to the registry before the reply. The writer's `apply` is
//!   crate-private (`ingest::writer` is `pub(crate)`), so applying is measured this way, together
//!   with the journal write and the hand-off to the journal thread.
//!
//! Events are ~146 bytes, without `ts` (the exporter stamps the arrival time, as for an engine
//! that sends none) and with varied engines, strategies, venues, sides and statuses: up to 2,400
//! `trading_orders_total` series and 20 latency histograms. Run with
//! `cargo bench --bench ingest`; throughput is in events/s. Before measuring it prints the size of
//! a decoded `RawEvent` and whether decoding borrows the event's strings from the body or copies
//! them (each copy is an allocation on the hot path).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tradewatch::config::{Config, FsyncMode};
use tradewatch::exporter::{Catalog, Registry};
use tradewatch::ingest::plan::{Batch, Planner};
use tradewatch::ingest::{BodyKind, Ingest};
use tradewatch::telemetry::Telemetry;

const EVENTS: usize = 1_000;
#[path = "support/orders.rs"]
mod orders;

use orders::order_batch;

fn ingest(c: &mut Criterion) {
    let body = order_batch(7, EVENTS);
    println!(
        "ingest: {EVENTS} order events, {} bytes ({:.1} bytes an event); a decoded RawEvent is {} bytes",
        body.len(),
        body.len() as f64 / EVENTS as f64,
        std::mem::size_of::<tradewatch::ingest::event::RawEvent<'_>>()
    );
    // Whether decoding borrows the event's optional strings or copies them (an allocation each).
    let first = body.split(|b| *b == b'\n').next().expect("a line");
    let event = tradewatch::ingest::event::decode(first).expect("a valid event");
    println!(
        "ingest: `type` borrowed from the body: {}, `engine` borrowed: {}",
        matches!(event.kind_, std::borrow::Cow::Borrowed(_)),
        matches!(event.engine, Some(std::borrow::Cow::Borrowed(_)))
    );
    drop(event);
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(EVENTS as u64));

    let config = Config::default();
    let registry = Arc::new(Registry::default());
    let catalog = Catalog::new(&registry, &config.exporter.buckets);
    let planner = Planner::new(
        registry,
        catalog,
        config.exporter.limits.clone(),
        config.exporter.buckets.clone(),
    );
    let now = tradewatch::ingest::now();
    group.bench_function("plan_line", |b| {
        b.iter(|| {
            let mut batch = Batch::default();
            batch.journal.reserve(body.len() + body.len() / 8);
            batch.keys.reserve(body.len() / 2);
            for (i, line) in body.split(|b| *b == b'\n').enumerate() {
                if !line.is_empty() {
                    planner.plan_line(&mut batch, i as u32 + 1, line, now);
                }
            }
            assert_eq!(batch.events.len(), EVENTS);
            black_box(batch)
        })
    });

    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_owned();
    config.storage.fsync = FsyncMode::Never;
    let registry = Arc::new(Registry::with_limits(
        config.exporter.limits.max_series_per_family,
        config.exporter.limits.max_series_total,
    ));
    let (ingest, _) = Ingest::start(&config, registry, Arc::new(Telemetry::new()))
        .expect("ingest starts on an empty directory");
    group.bench_function("decode", |b| {
        b.iter(|| {
            let batch = ingest
                .decode(&body, false, BodyKind::Ndjson, now)
                .expect("a valid body");
            assert_eq!(batch.events.len(), EVENTS);
            black_box(batch)
        })
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    // Each iteration appends ~170 kB to the journal; keep the run to a few hundred MB.
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("decode_submit_fsync_never", |b| {
        b.iter(|| {
            let batch = ingest
                .decode(&body, false, BodyKind::Ndjson, now)
                .expect("a valid body");
            let reply = runtime
                .block_on(ingest.submit(batch))
                .expect("the journal accepts");
            assert_eq!(reply.accepted, EVENTS);
            black_box(reply)
        })
    });
    group.finish();
    let series = ingest.registry().series_total();
    drop(ingest);
    println!("ingest: the registry held {series} series");
}

criterion_group!(benches, ingest);
criterion_main!(benches);
