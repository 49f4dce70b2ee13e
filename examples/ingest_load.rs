//! A load generator for `POST /api/v1/events`: N connections, each posting batches of `order`
//! events back to back for D seconds, against a running exporter.
//!
//! It reports the sustained rate of accepted events, request latency (p50, p99, max), the
//! exporter's journal fsync durations over the run (the `tradewatch_journal_fsync_duration_seconds`
//! buckets read from `/metrics` before and after) and, given `--exporter-pid`, the CPU each side
//! used. `bench/ingest.sh` starts an exporter and runs it at several concurrency levels:
//!
//! ```text
//! cargo run --release --example ingest_load -- --url http://127.0.0.1:19480 --connections 8 --duration 10
//! ```
//!
//! Events are ~152 bytes with the newline and carry no `ts` (the exporter stamps the arrival
//! time): `{"type":"order","engine":"eng-2","strategy":"strat_07","venue":"kraken","side":"buy",
//! "status":"filled","symbol":"SYM123","latency_seconds":0.004217}`. Engines (4), strategies (10),
//! venues (5), sides and statuses (6) are drawn at random, so the run touches up to 2,400
//! `trading_orders_total` series and 20 latency histograms.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "Posts batches of order events to a tradewatch exporter and reports the rate.")]
struct Args {
    /// The exporter's base URL.
    #[arg(long, default_value = "http://127.0.0.1:9470")]
    url: String,
    /// Concurrent connections, each with one request in flight.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Events per request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Distinct request bodies to rotate through.
    #[arg(long, default_value_t = 16)]
    bodies: usize,
    /// Worker threads of the generator's runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// The exporter's process id, to report the CPU time it used.
    #[arg(long)]
    exporter_pid: Option<u32>,
    /// Do not read `/metrics` (no fsync figures): for an exporter under valgrind, where reading
    /// the process metrics crashes it.
    #[arg(long)]
    skip_metrics: bool,
    /// Print one machine-readable line (`key=value …`) after the report.
    #[arg(long)]
    summary: bool,
}

#[path = "../benches/support/orders.rs"]
mod orders;

/// What one connection saw while measuring.
#[derive(Default)]
struct Tally {
    requests: u64,
    accepted: u64,
    statuses: BTreeMap<u16, u64>,
    errors: u64,
    latencies_us: Vec<u32>,
}

#[derive(serde::Deserialize)]
struct Reply {
    accepted: u64,
}

async fn connection(
    url: String,
    bodies: Arc<Vec<Bytes>>,
    first: usize,
    measure_from: Instant,
    stop: Arc<AtomicBool>,
) -> Tally {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .no_gzip()
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .expect("an HTTP client");
    let mut tally = Tally::default();
    let mut i = first;
    while !stop.load(Ordering::Relaxed) {
        let body = bodies[i % bodies.len()].clone();
        i += 1;
        let started = Instant::now();
        let result = client
            .post(&url)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await;
        let (status, accepted) = match result {
            Ok(response) => {
                let status = response.status().as_u16();
                let bytes = response.bytes().await.unwrap_or_default();
                let accepted = serde_json::from_slice::<Reply>(&bytes).map_or(0, |r| r.accepted);
                (Some(status), accepted)
            }
            Err(_) => (None, 0),
        };
        let took = started.elapsed();
        if started < measure_from || stop.load(Ordering::Relaxed) {
            // Warm-up, or finished after the end: not counted.
            continue;
        }
        tally.requests += 1;
        tally.accepted += accepted;
        tally
            .latencies_us
            .push(took.as_micros().min(u32::MAX as u128) as u32);
        match status {
            Some(s) => *tally.statuses.entry(s).or_default() += 1,
            None => {
                tally.errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        if status == Some(429) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    tally
}

/// A histogram read from an exposition: cumulative counts by upper bound, sum and count.
#[derive(Debug, Default, Clone)]
struct Hist {
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

/// Reads the unlabelled histogram `name` and the counter samples of `counter` from text 0.0.4.
fn read_metrics(text: &str, name: &str, counter: &str) -> (Hist, f64) {
    let mut h = Hist::default();
    let mut total = 0.0;
    let bucket = format!("{name}_bucket{{le=\"");
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or(f64::NAN),
        };
        if let Some(le) = series.strip_prefix(&bucket) {
            let le = le.trim_end_matches("\"}");
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::NAN)
            };
            h.buckets.push((le, value));
        } else if series == format!("{name}_sum") {
            h.sum = value;
        } else if series == format!("{name}_count") {
            h.count = value;
        } else if series.starts_with(counter) {
            total += value;
        }
    }
    (h, total)
}

impl Hist {
    fn minus(&self, before: &Hist) -> Hist {
        let buckets = self
            .buckets
            .iter()
            .map(|&(le, c)| {
                let b = before
                    .buckets
                    .iter()
                    .find(|(l, _)| *l == le)
                    .map_or(0.0, |b| b.1);
                (le, c - b)
            })
            .collect();
        Hist {
            buckets,
            sum: self.sum - before.sum,
            count: self.count - before.count,
        }
    }

    /// The q-quantile by linear interpolation within a bucket, as `histogram_quantile` does.
    fn quantile(&self, q: f64) -> f64 {
        if self.count <= 0.0 {
            return f64::NAN;
        }
        let rank = q * self.count;
        let mut lower = (0.0, 0.0);
        for &(le, c) in &self.buckets {
            if c >= rank {
                if le.is_infinite() {
                    return lower.0;
                }
                let (l, lc) = lower;
                return l + (le - l) * (rank - lc) / (c - lc).max(f64::MIN_POSITIVE);
            }
            lower = (le, c);
        }
        f64::NAN
    }
}

/// Prints the fsyncs of the measured window and of the whole run.
fn report_fsync(fsync: &Hist, whole_run: &Hist, accepted: u64, elapsed: f64) {
    println!(
        "fsync (measured window): {} fsyncs ({:.1}/s, {:.0} events each), mean {:.2} ms, ~p50 {:.2} ms, ~p99 {:.2} ms",
        fsync.count,
        fsync.count / elapsed,
        accepted as f64 / fsync.count.max(1.0),
        1000.0 * fsync.sum / fsync.count.max(1.0),
        1000.0 * fsync.quantile(0.5),
        1000.0 * fsync.quantile(0.99)
    );
    let mut previous = 0.0;
    let per_bucket: Vec<String> = fsync
        .buckets
        .iter()
        .filter_map(|&(le, c)| {
            let n = c - previous;
            previous = c;
            (n > 0.0).then(|| {
                let le = if le.is_infinite() {
                    "+Inf".to_owned()
                } else {
                    format!("{}ms", le * 1000.0)
                };
                format!("≤{le}: {n}")
            })
        })
        .collect();
    println!(
        "fsync distribution (per bucket, measured window): {}",
        per_bucket.join(", ")
    );
    println!(
        "fsync including warm-up: {} fsyncs, mean {:.2} ms",
        whole_run.count,
        1000.0 * whole_run.sum / whole_run.count.max(1.0)
    );
}

/// CPU seconds (user + system) a process has used, from `/proc/PID/stat`.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Busy and total CPU seconds of the whole machine, from the first line of `/proc/stat`.
fn machine_cpu() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|t| t.parse().ok())
        .collect();
    let total: f64 = ticks.iter().sum();
    // idle and iowait are the 4th and 5th fields.
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some(((total - idle) / 100.0, total / 100.0))
}

fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

/// The fsync histogram and the count of received `order` events, unless `skip`.
async fn scrape(client: &reqwest::Client, url: &str, skip: bool) -> Option<(Hist, f64)> {
    if skip {
        return None;
    }
    let text = client
        .get(format!("{url}/metrics"))
        .header("accept", "text/plain; version=0.0.4")
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("a /metrics body");
    Some(read_metrics(
        &text,
        "tradewatch_journal_fsync_duration_seconds",
        "tradewatch_events_received_total{type=\"order\"}",
    ))
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(args));
}

async fn run(args: Args) {
    tradewatch::server::install_crypto_provider();
    let base = args.url.trim_end_matches('/').to_owned();
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        (0..args.bodies.max(1))
            .map(|i| orders::order_batch(i as u64 + 1, args.batch).into())
            .collect(),
    );
    let body_bytes: usize = bodies.iter().map(Bytes::len).sum();
    let event_bytes = body_bytes as f64 / (bodies.len() * args.batch) as f64;
    let client = reqwest::Client::builder()
        .no_gzip()
        .no_proxy()
        .build()
        .expect("an HTTP client");

    let before = scrape(&client, &base, args.skip_metrics).await;
    let stop = Arc::new(AtomicBool::new(false));
    let measure_from = Instant::now() + Duration::from_secs_f64(args.warmup);
    let url = format!("{base}/api/v1/events");
    let tasks: Vec<_> = (0..args.connections.max(1))
        .map(|c| {
            tokio::spawn(connection(
                url.clone(),
                bodies.clone(),
                c,
                measure_from,
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep_until(measure_from.into()).await;
    let start = scrape(&client, &base, args.skip_metrics).await;
    let cpu = |pid: Option<String>| pid.and_then(|p| cpu_seconds(&p));
    let exporter_pid = args.exporter_pid.map(|p| p.to_string());
    let exporter_cpu_start = cpu(exporter_pid.clone());
    let own_cpu_start = cpu(Some("self".into()));
    let machine_start = machine_cpu();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let exporter_cpu = cpu(exporter_pid)
        .zip(exporter_cpu_start)
        .map(|(b, a)| b - a);
    let own_cpu = cpu(Some("self".into()))
        .zip(own_cpu_start)
        .map(|(b, a)| b - a);
    let machine_busy = machine_cpu()
        .zip(machine_start)
        .map(|((busy, _), (busy0, _))| busy - busy0);
    let mut total = Tally::default();
    for t in tasks {
        let t = t.await.expect("a connection task");
        total.requests += t.requests;
        total.accepted += t.accepted;
        total.errors += t.errors;
        for (s, n) in t.statuses {
            *total.statuses.entry(s).or_default() += n;
        }
        total.latencies_us.extend(t.latencies_us);
    }
    let after = scrape(&client, &base, args.skip_metrics).await;
    total.latencies_us.sort_unstable();
    let rate = total.accepted as f64 / elapsed;
    println!(
        "connections={} batch={} event_bytes={event_bytes:.1} measured={elapsed:.2}s",
        args.connections, args.batch
    );
    let server_rate = match (&start, &after) {
        (Some((_, a)), Some((_, b))) => format!("{:.0}", (b - a) / elapsed),
        _ => "not read".to_owned(),
    };
    println!(
        "accepted events/s: {rate:.0} (server-side received: {server_rate}); requests: {} ({:.1}/s), statuses {:?}, transport errors {}",
        total.requests,
        total.requests as f64 / elapsed,
        total.statuses,
        total.errors
    );
    let lat = &total.latencies_us;
    println!(
        "request latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        percentile(lat, 0.50),
        percentile(lat, 0.90),
        percentile(lat, 0.99),
        percentile(lat, 1.0)
    );
    let fsync = match (before, start, after) {
        (Some((before, _)), Some((start, _)), Some((after, _))) => {
            let fsync = after.minus(&start);
            report_fsync(&fsync, &after.minus(&before), total.accepted, elapsed);
            fsync
        }
        _ => Hist::default(),
    };
    let pct = |s: Option<f64>| s.map_or(f64::NAN, |s| 100.0 * s / elapsed);
    let others = machine_busy
        .zip(own_cpu)
        .map(|(m, o)| m - o - exporter_cpu.unwrap_or(0.0));
    println!(
        "CPU over the window (100% = one core): exporter {:.0}%, generator {:.0}%, \
         other processes {:.0}%, machine busy {:.0}% of {}%",
        pct(exporter_cpu),
        pct(own_cpu),
        pct(others),
        pct(machine_busy),
        100 * std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if args.summary {
        println!(
            "SUMMARY connections={} events_per_s={rate:.0} p50_ms={:.2} p99_ms={:.2} fsyncs={} fsync_mean_ms={:.2} fsync_p99_ms={:.2} exporter_cpu_pct={:.0} generator_cpu_pct={:.0} others_cpu_pct={:.0}",
            args.connections,
            percentile(lat, 0.50),
            percentile(lat, 0.99),
            fsync.count,
            1000.0 * fsync.sum / fsync.count.max(1.0),
            1000.0 * fsync.quantile(0.99),
            pct(exporter_cpu),
            pct(own_cpu),
            pct(others),
        );
    }
}
