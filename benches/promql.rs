//! PromQL engine benchmarks: the 50-rule workload of `../shared/bench/` (10,000 trading series,
//! shaped as `series.py` shapes them, 36 scrapes 5 s apart) evaluated at one instant, an
//! instant selector over 100,000 series, and `histogram_quantile` over 10,000 buckets; and the
//! same 50 rules through the whole rule layer (templates, alert states, `state.db`, alert log).
//!
//! `cargo bench --bench promql`

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tradewatch::alerts::log::AlertLog;
use tradewatch::alerts::persist::AlertDb;
use tradewatch::model::labels::Labels;
use tradewatch::promql::{Engine, Expr, parse};
use tradewatch::rules::{AlertSink, RuleFile, Rules, Settings, compile};
use tradewatch::store::{Store, StoreOptions};

const SCRAPE_MS: i64 = 5_000;
const TICKS: i64 = 36;
const STRATEGIES: usize = 10;
const VENUES: [&str; 5] = ["binance", "coinbase", "kraken", "cme", "nasdaq"];
const BUCKETS: [&str; 10] = [
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "+Inf",
];

/// A small deterministic generator (xorshift), so runs compare.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn labels(name: &str, combo: &[(&str, String)], extra: &[(&str, &str)]) -> Labels {
    let mut pairs: Vec<(String, String)> = vec![
        ("__name__".into(), name.into()),
        ("job".into(), "trading".into()),
        ("instance".into(), "engine:9470".into()),
    ];
    pairs.extend(combo.iter().map(|(k, v)| (k.to_string(), v.clone())));
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Labels::from_pairs(pairs)
}

/// The 10,000 trading series of `series.py` (500 label combinations × 20 series), plus what a
/// scrape loop records, over 36 scrapes.
fn trading_store() -> (Store, i64) {
    let store = Store::new(StoreOptions {
        retention_ms: 3_600_000,
    });
    let mut rng = Rng(42);
    let mut series: Vec<(Labels, f64, u8)> = Vec::new(); // labels, value, kind
    for i in 0..500 {
        let combo = vec![
            ("strategy", format!("strat_{:02}", i % STRATEGIES)),
            ("symbol", format!("SYM{:04}", i / 50)),
            ("venue", VENUES[(i / 10) % 5].to_string()),
        ];
        for name in [
            "trading_orders_total",
            "trading_fills_total",
            "trading_rejects_total",
            "trading_cancels_total",
        ] {
            series.push((labels(name, &combo, &[]), (rng.next() * 5e5).floor(), 0));
        }
        for (name, scale) in [
            ("trading_position", 1e5),
            ("trading_pnl", 1e4),
            ("trading_open_orders", 100.0),
            ("trading_exposure_notional", 1e7),
        ] {
            series.push((labels(name, &combo, &[]), rng.next() * scale, 1));
        }
        for le in BUCKETS {
            let l = labels(
                "trading_order_latency_seconds_bucket",
                &combo,
                &[("le", le)],
            );
            series.push((l, 5.0, 2));
        }
        for name in [
            "trading_order_latency_seconds_sum",
            "trading_order_latency_seconds_count",
        ] {
            series.push((labels(name, &combo, &[]), 5.0, 2));
        }
    }
    let scrape = |name: &str| {
        Labels::from_pairs([
            ("__name__", name),
            ("job", "trading"),
            ("instance", "engine:9470"),
        ])
    };
    for t in 0..TICKS {
        let ts = t * SCRAPE_MS;
        for (l, v, kind) in series.iter_mut() {
            match kind {
                0 => *v += (rng.next() * 20.0).floor(),
                1 => *v += rng.next() * 200.0 - 100.0,
                _ => *v += (rng.next() * 2.0).floor(),
            }
            store.append(l, ts, *v).expect("in order");
        }
        for (name, v) in [
            ("up", 1.0),
            ("scrape_duration_seconds", 0.05),
            ("scrape_samples_scraped", 10_000.0),
            ("scrape_series_added", 0.0),
            ("process_start_time_seconds", 0.0),
            ("process_open_fds", 40.0),
            ("process_max_fds", 1024.0),
        ] {
            store.append(&scrape(name), ts, v).expect("in order");
        }
    }
    (store, (TICKS - 1) * SCRAPE_MS)
}

/// The `expr:` of every rule in `rules-50.yml`.
fn rule_exprs(path: &Path) -> Vec<Expr> {
    let text = std::fs::read_to_string(path).expect("readable rules file");
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .map(|e| {
            let e = e.trim().trim_matches('\'');
            parse(e).unwrap_or_else(|err| panic!("{err}"))
        })
        .collect()
}

/// The workload's rule file, or `None` (with a line saying so) when it is not there.
fn rules_path() -> Option<std::path::PathBuf> {
    // `RULES_50` names the rule file when the checkout is not beside `shared/`.
    let path = match std::env::var_os("RULES_50") {
        Some(p) => std::path::PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/rules-50.yml"),
    };
    if !path.is_file() {
        println!("skipped: the rule workload is not at {}", path.display());
        return None;
    }
    Some(path)
}

fn rules_50(c: &mut Criterion) {
    let Some(path) = rules_path() else { return };
    let exprs = rule_exprs(&path);
    assert_eq!(exprs.len(), 50);
    let (store, now) = trading_store();
    // `QUERY_TIMEOUT_MS=N` bounds each query as the rule layer does (the deadline's checks).
    let engine = match std::env::var("QUERY_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(ms) => Engine::default().with_timeout(Duration::from_millis(ms)),
        None => Engine::default(),
    };
    // `PROFILE_EVALS=N` evaluates the 50 rules N times and exits, for a profiler:
    // `valgrind --tool=callgrind --toggle-collect='*profile_evals*' <bench binary> rules_50`.
    if let Some(n) = std::env::var("PROFILE_EVALS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        profile_evals(&engine, &store, &exprs, now, n);
        std::process::exit(0);
    }
    for e in &exprs {
        engine
            .instant(&store, e, now)
            .expect("every rule evaluates");
    }
    let mut slowest: Vec<(std::time::Duration, String)> = exprs
        .iter()
        .map(|e| {
            let t = std::time::Instant::now();
            for _ in 0..10 {
                std::hint::black_box(engine.instant(&store, e, now).expect("evaluates"));
            }
            (t.elapsed() / 10, e.to_string())
        })
        .collect();
    slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
    for (d, e) in slowest.iter().take(8) {
        println!("{d:>12?}  {e}");
    }
    let stats = store.stats();
    println!(
        "store: {} series, {} samples (16 bytes of sample data each)",
        stats.series, stats.samples
    );
    c.bench_function("rules_50_one_evaluation_10k_series", |b| {
        b.iter(|| {
            for e in &exprs {
                std::hint::black_box(engine.instant(&store, e, now).expect("evaluates"));
            }
        })
    });
}

/// Evaluates every expression `n` times: the span a profiler collects.
#[inline(never)]
fn profile_evals(engine: &Engine, store: &Store, exprs: &[Expr], now: i64, n: usize) {
    for _ in 0..n {
        for e in exprs {
            std::hint::black_box(engine.instant(store, e, now).expect("evaluates"));
        }
    }
}

/// Where the alerts of the whole-layer benchmark go: nowhere.
struct Discard;

impl AlertSink for Discard {
    fn send(&self, _: Vec<tradewatch::notify::Alert>) {}
}

/// The same 50 rules through the whole rule layer: the rule file parsed and compiled as the
/// sidecar does, every group evaluated (expressions, templates of labels and annotations, alert
/// states, `ALERTS` and `ALERTS_FOR_STATE`, transitions written to `state.db` and the alert log).
fn rules_50_layer(c: &mut Criterion) {
    let Some(path) = rules_path() else { return };
    let text = std::fs::read_to_string(&path).expect("readable rules file");
    let file = RuleFile::parse(&text, "rules-50.yml").expect("the workload's rules load");
    let groups = compile(&file, "rules-50.yml", Duration::from_secs(5));
    let (store, now) = trading_store();
    let dir = tempfile::tempdir().expect("temporary directory");
    let rules = Rules::new(
        groups,
        Engine::default(),
        Arc::new(store),
        Settings::default(),
        Some(AlertDb::open(&dir.path().join("state.db")).expect("state.db opens")),
        Some(Arc::new(
            AlertLog::open(&dir.path().join("alerts"), Duration::from_secs(86_400))
                .expect("alert log opens"),
        )),
        Some(Arc::new(Discard)),
        None,
    );
    let groups = rules.groups().len();
    // Each evaluation a millisecond after the one before, as a sidecar's evaluations follow
    // each other: what the rules write (`ALERTS`, `ALERTS_FOR_STATE`) is appended, not refused
    // as a duplicate of the sample before.
    let tick = std::cell::Cell::new(0);
    let evaluate_all = |now: i64| {
        tick.set(tick.get() + 1);
        for g in 0..groups {
            std::hint::black_box(rules.evaluate(g, now + tick.get()));
        }
    };
    evaluate_all(now);
    let (pending, firing) = rules.totals();
    println!("whole layer: {pending} alerts pending, {firing} firing after the first evaluation");
    if let Some(n) = std::env::var("PROFILE_LAYER")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        profile_layer(&evaluate_all, now, n);
        std::process::exit(0);
    }
    c.bench_function("rules_50_whole_layer_10k_series", |b| {
        b.iter(|| evaluate_all(now))
    });
}

/// Evaluates every group `n` times: the span a profiler collects
/// (`--toggle-collect='*profile_layer*'`).
#[inline(never)]
fn profile_layer(evaluate_all: &dyn Fn(i64), now: i64, n: usize) {
    for _ in 0..n {
        evaluate_all(now);
    }
}

fn selector_100k(c: &mut Criterion) {
    let store = Store::new(StoreOptions::default());
    for i in 0..100_000 {
        let l = Labels::from_pairs([
            ("__name__", "m"),
            ("instance", &format!("host-{i}")),
            ("group", &format!("g{}", i % 100)),
        ]);
        store.append(&l, 0, i as f64).expect("fresh series");
    }
    let engine = Engine::default();
    for (name, q) in [
        ("selector_100k_series_all", "m"),
        ("selector_100k_series_1pct", "m{group=\"g7\"}"),
        ("sum_100k_series", "sum(m)"),
    ] {
        let e = parse(q).expect("parses");
        c.bench_function(name, |b| {
            b.iter(|| std::hint::black_box(engine.instant(&store, &e, 60_000).expect("evaluates")))
        });
    }
}

fn histogram_quantile_10k_buckets(c: &mut Criterion) {
    let store = Store::new(StoreOptions::default());
    for i in 0..1_000 {
        for (j, le) in BUCKETS.iter().enumerate() {
            let l = Labels::from_pairs([
                ("__name__", "h_bucket"),
                ("instance", &format!("host-{i}")),
                ("le", le),
            ]);
            for t in 0..13 {
                store
                    .append(&l, t * 5_000, (t * (j as i64 + 1)) as f64)
                    .expect("in order");
            }
        }
    }
    let e = parse("histogram_quantile(0.95, rate(h_bucket[1m]))").expect("parses");
    let engine = Engine::default();
    c.bench_function("histogram_quantile_10k_buckets", |b| {
        b.iter(|| std::hint::black_box(engine.instant(&store, &e, 60_000).expect("evaluates")))
    });
}

criterion_group!(
    benches,
    rules_50,
    rules_50_layer,
    selector_100k,
    histogram_quantile_10k_buckets
);
criterion_main!(benches);
