//! Durability of the real binary (DESIGN §1 "Durability"): `kill -9` in the middle of a stream
//! of batches, a graceful SIGTERM with its snapshot, and a full disk.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Endpoint, Exporter, every_type, samples, skip, unix_now, value_of};

// ---------------------------------------------------------------------------------------------
// kill -9
// ---------------------------------------------------------------------------------------------

/// splitmix64: random enough, and the same on every run of a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        support::splitmix64(&mut self.0)
    }

    /// A whole number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// Which events of a task's batches carry an `id`.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Ids {
    Every,
    None,
    Counters,
}

const TASKS: usize = 4;

fn ids_of(task: usize) -> Ids {
    match task {
        0 | 1 => Ids::Every,
        2 => Ids::None,
        _ => Ids::Counters,
    }
}

/// One batch a task sends, with what it adds to that task's series. Values are whole numbers
/// or eighths, so sums are exact.
#[derive(Clone, Debug)]
struct Sent {
    events: Vec<Value>,
    counter: f64,
    orders: f64,
    gauge: f64,
    pnl: f64,
    observations: f64,
    observed: f64,
    with_id: usize,
}

fn engine(task: usize) -> String {
    format!("crash-t{task}")
}

fn make_batch(round: usize, task: usize, seq: u64, rng: &mut Rng) -> Sent {
    let engine = engine(task);
    let ids = ids_of(task);
    let mut sent = Sent {
        events: Vec::new(),
        counter: 0.0,
        orders: 0.0,
        gauge: 0.0,
        pnl: 0.0,
        observations: 0.0,
        observed: 0.0,
        with_id: 0,
    };
    let push = |sent: &mut Sent, mut event: Value, id: bool| {
        if id {
            let n = sent.events.len();
            event["id"] = json!(format!("r{round}-t{task}-b{seq}-e{n}"));
            sent.with_id += 1;
        }
        sent.events.push(event);
    };
    for _ in 0..rng.range(1, 4) {
        let v = rng.range(1, 99) as f64;
        sent.counter += v;
        let e = json!({"type": "metric", "engine": engine, "kind": "counter",
                       "name": "crash_increments_total", "value": v, "help": "Increments."});
        push(&mut sent, e, ids != Ids::None);
    }
    for _ in 0..rng.range(1, 5) {
        sent.orders += 1.0;
        let e = json!({"type": "order", "engine": engine, "status": "filled", "venue": "V",
                       "side": "buy", "attrs": {"round": round, "seq": seq}});
        push(&mut sent, e, ids == Ids::Every);
    }
    for _ in 0..rng.range(1, 3) {
        let v = rng.range(0, 80) as f64 / 8.0;
        sent.observations += 1.0;
        sent.observed += v;
        let e = json!({"type": "metric", "engine": engine, "kind": "histogram",
                       "name": "crash_wait_seconds", "value": v, "help": "Waits."});
        push(&mut sent, e, ids == Ids::Every);
    }
    sent.gauge = rng.range(0, 1 << 20) as f64 / 8.0 - 50_000.0;
    let e = json!({"type": "metric", "engine": engine, "kind": "gauge", "name": "crash_level",
                   "value": sent.gauge, "help": "Level."});
    push(&mut sent, e, ids == Ids::Every);
    sent.pnl = -(rng.range(0, 1 << 20) as f64) / 4.0;
    let e = json!({"type": "pnl", "engine": engine, "daily": sent.pnl});
    push(&mut sent, e, ids == Ids::Every);
    sent
}

/// What one task saw in one round: acknowledged batches in order, and the batch whose reply
/// the kill cut off (it may have applied wholly, in part or not at all).
#[derive(Debug, Default)]
struct TaskLog {
    acked: Vec<Sent>,
    in_flight: Option<Sent>,
}

/// Posts batches one after another until a request fails (the kill).
async fn stream(
    round: usize,
    task: usize,
    endpoint: Endpoint,
    progress: std::sync::Arc<tokio::sync::watch::Sender<[usize; TASKS]>>,
) -> TaskLog {
    let mut rng = Rng(0x5eed ^ ((round as u64) << 32) ^ task as u64);
    let mut log = TaskLog::default();
    for seq in 0..100_000 {
        let sent = make_batch(round, task, seq, &mut rng);
        loop {
            match endpoint.try_post(&sent.events).await {
                Ok(p) if p.status == 200 => {
                    assert_eq!(
                        p.body,
                        json!({"accepted": sent.events.len(), "duplicates": 0, "rejected": []}),
                        "round {round} task {task} batch {seq}"
                    );
                    break;
                }
                // Refused whole, nothing applied: send it again.
                Ok(p) if p.status == 429 || p.status == 503 => continue,
                Ok(p) => panic!("round {round} task {task} batch {seq}: unexpected reply {p:?}"),
                Err(_) => {
                    log.in_flight = Some(sent);
                    return log;
                }
            }
        }
        log.acked.push(sent);
        progress.send_modify(|p| p[task] += 1);
    }
    panic!("round {round} task {task} was never cut off");
}

/// The series `name` of a task's engine in `got`.
fn crash_series(got: &BTreeMap<String, f64>, name: &str, engine: &str) -> Option<f64> {
    match name {
        "trading_orders_total" => value_of(
            got,
            name,
            &[
                ("engine", engine),
                ("venue", "V"),
                ("side", "buy"),
                ("status", "filled"),
            ],
        ),
        "trading_pnl_daily" => value_of(got, name, &[("engine", engine), ("currency", "USD")]),
        _ => value_of(got, name, &[("engine", engine)]),
    }
}

fn sum(sent: &[Sent], f: impl Fn(&Sent) -> f64) -> f64 {
    sent.iter().map(f).sum()
}

type Field = fn(&Sent) -> f64;

const COUNTERS: [(&str, Field); 4] = [
    ("crash_increments_total", |s| s.counter),
    ("trading_orders_total", |s| s.orders),
    ("crash_wait_seconds_count", |s| s.observations),
    ("crash_wait_seconds_sum", |s| s.observed),
];

const GAUGES: [(&str, Field); 2] = [
    ("crash_level", |s| s.gauge),
    ("trading_pnl_daily", |s| s.pnl),
];

/// Everything a task sent over all rounds.
#[derive(Debug, Default)]
struct Ledger {
    /// Acknowledged (or, for batches whose every event has an id, settled by re-posting).
    acked: Vec<Sent>,
    /// Cut off by a kill and not settled: each may have applied wholly, in part or not at all.
    unsettled: Vec<Sent>,
    /// The batch the last kill cut off.
    last_cut: Option<Sent>,
}

async fn crash_samples(exporter: &Exporter) -> BTreeMap<String, f64> {
    samples(
        &exporter.text().await,
        &["crash_", "trading_orders_total", "trading_pnl_daily"],
    )
}

/// Every counter lies between the acknowledged sum and that plus every unsettled batch;
/// every gauge holds its last acknowledged value or the value of the batch the kill cut off.
/// Returns how many series took part of a batch that was cut off.
fn assert_bounds(round: usize, got: &BTreeMap<String, f64>, ledgers: &[Ledger]) -> usize {
    let mut took_unsettled = 0;
    for (task, ledger) in ledgers.iter().enumerate() {
        let engine = engine(task);
        for (name, field) in COUNTERS {
            let acked = sum(&ledger.acked, field);
            let most = acked + sum(&ledger.unsettled, field);
            let v = crash_series(got, name, &engine)
                .unwrap_or_else(|| panic!("round {round}: {name}{{engine={engine}}} missing"));
            assert!(
                acked <= v && v <= most,
                "round {round}: {name}{{engine={engine}}} is {v} after kill -9 and restart; \
                 acknowledged {acked}, at most {most} with the batches cut off"
            );
            if v > acked {
                took_unsettled += 1;
            }
        }
        for (name, field) in GAUGES {
            let last = field(
                ledger
                    .acked
                    .last()
                    .expect("every task had batches acknowledged"),
            );
            let cut = ledger.last_cut.as_ref().map(field);
            let v = crash_series(got, name, &engine);
            assert!(
                v == Some(last) || (v.is_some() && v == cut),
                "round {round}: {name}{{engine={engine}}} is {v:?} after kill -9 and restart; \
                 last acknowledged {last}, cut off {cut:?}"
            );
        }
    }
    took_unsettled
}

/// Three rounds of: four tasks stream batches, `kill -9` mid-stream, restart on the same data
/// directory, check. Later rounds replay a journal that earlier kills may have torn.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_loses_no_acknowledged_event() {
    const ROUNDS: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let mut exporter = Exporter::start(dir.path()).await;
    let mut ledgers: Vec<Ledger> = (0..TASKS).map(|_| Ledger::default()).collect();
    let mut took_unsettled = 0;
    let mut batches = 0;
    for round in 0..ROUNDS {
        let (progress, mut seen) = tokio::sync::watch::channel([0usize; TASKS]);
        let progress = std::sync::Arc::new(progress);
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| tokio::spawn(stream(round, t, exporter.endpoint(), progress.clone())))
            .collect();
        let enough = tokio::time::timeout(
            Duration::from_secs(120),
            seen.wait_for(|p| p.iter().all(|n| *n >= 50) && p.iter().sum::<usize>() >= 300),
        )
        .await
        .is_ok();
        assert!(
            enough,
            "round {round}: too few batches acknowledged in 120s: {:?}\n{}",
            *seen.borrow(),
            exporter.log()
        );
        exporter.process.kill9();
        for (task, t) in tasks.into_iter().enumerate() {
            let log = t.await.unwrap();
            batches += log.acked.len();
            let ledger = &mut ledgers[task];
            ledger.acked.extend(log.acked);
            ledger.unsettled.extend(log.in_flight.clone());
            ledger.last_cut = log.in_flight;
        }
        drop(exporter);

        exporter = Exporter::start(dir.path()).await;
        took_unsettled += assert_bounds(round, &crash_samples(&exporter).await, &ledgers);

        // Ids survive the crash: acknowledged batches come back as duplicates, whole; and the
        // batch cut off is settled by sending it again (the part the journal kept is a
        // duplicate, the rest applies now).
        for (task, ledger) in ledgers.iter_mut().enumerate() {
            if ids_of(task) != Ids::Every {
                continue;
            }
            let n = ledger.acked.len();
            for sent in [&ledger.acked[0], &ledger.acked[n / 2], &ledger.acked[n - 1]] {
                let posted = exporter.post(&sent.events).await;
                assert_eq!(
                    posted.body,
                    json!({"accepted": 0, "duplicates": sent.events.len(), "rejected": []}),
                    "round {round}: re-posting an acknowledged batch of task {task}"
                );
            }
            if let Some(sent) = ledger.last_cut.take() {
                let posted = exporter.post(&sent.events).await;
                assert_eq!(posted.status, 200, "{posted:?}");
                let body = &posted.body;
                assert_eq!(
                    body["accepted"].as_u64().unwrap() + body["duplicates"].as_u64().unwrap(),
                    sent.events.len() as u64,
                    "{posted:?}"
                );
                ledger.unsettled.clear();
                ledger.acked.push(sent);
            }
        }
        // Settled tasks are now exact.
        let got = crash_samples(&exporter).await;
        for (task, ledger) in ledgers.iter().enumerate() {
            if ids_of(task) != Ids::Every {
                continue;
            }
            let engine = engine(task);
            for (name, field) in COUNTERS {
                assert_eq!(
                    crash_series(&got, name, &engine),
                    Some(sum(&ledger.acked, field)),
                    "round {round}: {name}{{engine={engine}}} after settling"
                );
            }
            for (name, field) in GAUGES {
                let last = field(ledger.acked.last().unwrap());
                assert_eq!(crash_series(&got, name, &engine), Some(last), "{name}");
            }
        }
    }

    // A batch where only some events carry ids: those are duplicates, the others apply again.
    assert_eq!(ids_of(3), Ids::Counters);
    let sent = &ledgers[3].acked[0];
    let posted = exporter.post(&sent.events).await;
    assert_eq!(
        posted.body,
        json!({"accepted": sent.events.len() - sent.with_id, "duplicates": sent.with_id, "rejected": []})
    );
    println!(
        "{ROUNDS} kills after {batches} acknowledged batches; \
         {took_unsettled} series held part of a batch that was cut off"
    );
}

// ---------------------------------------------------------------------------------------------
// SIGTERM
// ---------------------------------------------------------------------------------------------

const KEPT: [&str; 2] = ["trading_", "desk_"];

/// SIGTERM while four tasks stream: the process drains and exits 0, and after a restart
/// nothing acknowledged is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_mid_stream_exits_0_and_keeps_every_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut exporter = Exporter::start(dir.path()).await;
    let (progress, mut seen) = tokio::sync::watch::channel([0usize; TASKS]);
    let progress = std::sync::Arc::new(progress);
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| tokio::spawn(stream(0, t, exporter.endpoint(), progress.clone())))
        .collect();
    let enough = tokio::time::timeout(
        Duration::from_secs(120),
        seen.wait_for(|p| p.iter().all(|n| *n >= 25)),
    )
    .await
    .is_ok();
    assert!(enough, "too few batches acknowledged: {:?}", *seen.borrow());
    let status = exporter.process.terminate(Duration::from_secs(30)).await;
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM under load\n{}",
        exporter.log()
    );
    let mut ledgers = Vec::new();
    for t in tasks {
        let log = t.await.unwrap();
        ledgers.push(Ledger {
            acked: log.acked,
            unsettled: log.in_flight.clone().into_iter().collect(),
            last_cut: log.in_flight,
        });
    }
    drop(exporter);
    let exporter = Exporter::start(dir.path()).await;
    assert_bounds(0, &crash_samples(&exporter).await, &ledgers);
}

#[tokio::test]
async fn sigterm_snapshots_and_restart_restores() {
    let dir = tempfile::tempdir().unwrap();
    let mut exporter = Exporter::start(dir.path()).await;
    let batch = every_type(unix_now() - 120);
    exporter.post_all(&batch.events).await;
    let before = samples(&exporter.openmetrics().await, &KEPT);
    assert!(before.len() > 100, "{before:#?}");

    let status = exporter.process.terminate(Duration::from_secs(30)).await;
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM\n{}",
        exporter.log()
    );
    let snapshot_dir = dir.path().join("snapshot");
    let snapshots: Vec<_> = std::fs::read_dir(&snapshot_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", snapshot_dir.display()))
        .map(|e| e.unwrap())
        .filter(|e| e.metadata().unwrap().len() > 0)
        .collect();
    assert!(!snapshots.is_empty(), "no snapshot written at shutdown");
    drop(exporter);

    let mut exporter = Exporter::start(dir.path()).await;
    assert_eq!(samples(&exporter.openmetrics().await, &KEPT), before);
    // The idempotency window came back too.
    let order = batch
        .events
        .iter()
        .find(|e| e["id"] == "ord-1")
        .unwrap()
        .clone();
    let posted = exporter.post(&[order]).await;
    assert_eq!(
        posted.body,
        json!({"accepted": 0, "duplicates": 1, "rejected": []})
    );
    let status = exporter.process.terminate(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "{}", exporter.log());
    drop(exporter);

    // The snapshot alone holds everything: without the journal the values are the same.
    std::fs::rename(dir.path().join("journal"), dir.path().join("journal.moved")).unwrap();
    let exporter = Exporter::start(dir.path()).await;
    assert_eq!(samples(&exporter.openmetrics().await, &KEPT), before);
}

// ---------------------------------------------------------------------------------------------
// Disk full
// ---------------------------------------------------------------------------------------------

/// A tmpfs mounted for the test; unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Tmpfs {
            path: path.to_owned(),
        })
    }

    fn resize(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "remount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

const PAD: usize = 400;

/// 40 counter increments with ids and padding in `attrs` (journal only), and a gauge.
fn fill_batch(seq: usize) -> Vec<Value> {
    let pad = "x".repeat(PAD);
    let mut events: Vec<Value> = (0..40)
        .map(|i| {
            json!({"type": "metric", "engine": "filler", "kind": "counter",
                   "name": "fill_units_total", "value": 1, "help": "Units.",
                   "id": format!("fill-{seq}-{i}"), "attrs": {"pad": pad}})
        })
        .collect();
    events.push(
        json!({"type": "metric", "engine": "filler", "kind": "gauge",
                       "name": "fill_last_batch", "value": seq, "help": "Last batch."}),
    );
    events
}

fn check<'a>(health: &'a Value, name: &str) -> &'a Value {
    health["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {health}"))
}

#[tokio::test]
async fn disk_full_refuses_batches_and_recovers() {
    let test = "disk_full_refuses_batches_and_recovers";
    let dir = tempfile::tempdir().unwrap();
    let tmpfs = match Tmpfs::mount(dir.path(), "1m") {
        Ok(t) => t,
        Err(e) => {
            skip(test, &format!("cannot mount a tmpfs ({e}); run as root"));
            return;
        }
    };
    let data = tmpfs.path.join("data");
    let mut exporter = Exporter::start(&data).await;
    let units = |text: &str| {
        value_of(
            &samples(text, &["fill_"]),
            "fill_units_total",
            &[("engine", "filler")],
        )
    };
    let kept = ["trading_", "fill_"];

    // Fill the disk.
    let mut accepted = 0.0;
    let (failing, before) = {
        let mut seq = 0;
        loop {
            seq += 1;
            assert!(seq < 1000, "1 MiB never filled up");
            let events = fill_batch(seq);
            let before = samples(&exporter.text().await, &kept);
            let posted = exporter.post(&events).await;
            match posted.status {
                200 => {
                    assert_eq!(posted.body["accepted"], 41, "{posted:?}");
                    accepted += 40.0;
                }
                503 => {
                    let retry = posted
                        .retry_after
                        .as_deref()
                        .unwrap_or_else(|| panic!("503 without Retry-After: {posted:?}"));
                    assert!(
                        retry.parse::<u32>().is_ok_and(|s| s > 0),
                        "Retry-After: {retry}"
                    );
                    assert!(posted.body["error"].is_string(), "{posted:?}");
                    break (events, before);
                }
                _ => panic!("unexpected reply while filling the disk: {posted:?}"),
            }
        }
    };
    assert!(accepted > 0.0, "the disk was full before any batch");
    let text = exporter.text().await;
    assert_eq!(
        samples(&text, &kept),
        before,
        "the refused batch changed /metrics"
    );
    assert_eq!(units(&text), Some(accepted));
    let self_metric = |name: &str, labels: &[(&str, &str)]| {
        value_of(&samples(&text, &["tradewatch_"]), name, labels)
    };
    assert!(
        self_metric("tradewatch_journal_errors_total", &[]).is_some_and(|v| v >= 1.0),
        "tradewatch_journal_errors_total after a failed write:\n{text}"
    );
    assert!(
        self_metric(
            "tradewatch_events_rejected_total",
            &[("reason", "journal_unavailable")]
        )
        .is_some_and(|v| v >= 41.0),
        "tradewatch_events_rejected_total{{reason=\"journal_unavailable\"}}:\n{text}"
    );
    let (status, health) = exporter.health().await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "critical", "{health}");
    assert_eq!(check(&health, "journal")["status"], "critical", "{health}");
    assert_eq!(exporter.get("/-/ready", &[]).await.0, 503);

    // Still full: refused again, still nothing applied (its ids were not remembered).
    let posted = exporter.post(&failing).await;
    assert_eq!(posted.status, 503, "{posted:?}");
    assert_eq!(samples(&exporter.text().await, &kept), before);

    // Room again: the same batch applies in full, and health leaves critical.
    tmpfs.resize("2g");
    exporter.post_all(&failing).await;
    accepted += 40.0;
    assert_eq!(units(&exporter.text().await), Some(accepted));
    let (status, health) = exporter.health().await;
    assert_eq!(status, 200, "{health}");
    assert_ne!(health["status"], "critical", "{health}");
    assert_eq!(check(&health, "journal")["status"], "healthy", "{health}");
    assert_eq!(exporter.get("/-/ready", &[]).await.0, 200);
    let next = fill_batch(100_000);
    exporter.post_all(&next).await;
    accepted += 40.0;

    // The failed writes left nothing in the journal that a replay would take.
    exporter.process.kill9();
    drop(exporter);
    let exporter = Exporter::start(&data).await;
    assert_eq!(units(&exporter.text().await), Some(accepted));
    let posted = exporter.post(&failing).await;
    assert_eq!(
        posted.body,
        json!({"accepted": 1, "duplicates": 40, "rejected": []}),
        "re-posting the recovered batch after a restart"
    );
    drop(exporter);
    drop(tmpfs);
}
