//! `kill -9` with a full outbox, on the real binary: a few hundred notifications queued for a
//! slow webhook receiver, the process killed while it works through them, restarted on the
//! same data directory. Every notification arrives, and at most once more than tradewatch had
//! recorded as delivered when it died (counted at the receiver by `Idempotency-Key`): one
//! marked delivered is never sent again, one in flight at most once again. The claims the
//! killed process held are released when the outbox opens, so the rest goes at once rather
//! than when their lease (two minutes) would have ended.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use parking_lot::Mutex;
use serde_json::{Value, json};
use support::Exporter;

const NOTIFICATIONS: usize = 300;

/// What the receiver answered 200 to, by `Idempotency-Key`.
type Acked = Arc<Mutex<BTreeMap<String, u32>>>;

/// A webhook receiver that takes 40 ms per request and four at a time, so tradewatch is busy
/// with its outbox for a few seconds.
async fn slow_receiver() -> (String, Acked) {
    let acked: Acked = Acked::default();
    let store = acked.clone();
    let permits = Arc::new(tokio::sync::Semaphore::new(4));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, _body: axum::body::Bytes| {
            let store = store.clone();
            let permits = permits.clone();
            async move {
                let _permit = permits.acquire().await.unwrap();
                tokio::time::sleep(Duration::from_millis(40)).await;
                let key = headers["idempotency-key"].to_str().unwrap().to_owned();
                *store.lock().entry(key).or_default() += 1;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, acked)
}

fn write_config(dir: &Path, hook: &str) -> String {
    // Each alert is its own group, notified at once, and not again within the test.
    std::fs::write(
        dir.join("alertmanager.yml"),
        format!(
            "route:\n  receiver: slow\n  group_by: ['...']\n  group_wait: 0s\n  group_interval: 1h\n  repeat_interval: 4h\nreceivers:\n  - name: slow\n    webhook_configs:\n      - url: '{hook}'\n        send_resolved: false\n"
        ),
    )
    .unwrap();
    let config = dir.join("tradewatch.yaml");
    std::fs::write(
        &config,
        "sidecar:\n  rule_files: []\nnotifier:\n  config_file: alertmanager.yml\n",
    )
    .unwrap();
    config.display().to_string()
}

/// The notification ids the outbox holds in `state`, read from `state.db` directly.
fn outbox_ids(data: &Path, state: &str) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open(data.join("state.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT notification_id FROM outbox WHERE state = ?1")
        .unwrap();
    stmt.query_map([state], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

async fn wait_until(deadline: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_a_full_outbox_delivers_everything_at_most_once_more() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (hook, acked) = slow_receiver().await;
    let config = write_config(dir.path(), &hook);
    let mut run = Exporter::start_role("run", &data, &["--config", &config]).await;

    let now = chrono::Utc::now();
    let alerts: Vec<Value> = (0..NOTIFICATIONS)
        .map(|i| {
            json!({
                "labels": {"alertname": "TradingOrderRejectRateHigh", "engine": format!("eng-{i:03}")},
                "annotations": {"summary": format!("Rejects on eng-{i:03}")},
                "startsAt": now.to_rfc3339(),
                "endsAt": (now + chrono::Duration::hours(2)).to_rfc3339(),
            })
        })
        .collect();
    let answer = run
        .client()
        .post(run.url("/api/v2/alerts"))
        .json(&alerts)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());

    // Killed a third of the way through.
    let busy = wait_until(Duration::from_secs(60), || {
        acked.lock().len() >= NOTIFICATIONS / 3
    })
    .await;
    assert!(busy, "the receiver got too little\n{}", run.process.log());
    run.process.kill9();
    let acked_at_kill = acked.lock().clone();

    // What the dead process had recorded: everything queued, part of it delivered.
    let delivered_at_kill = outbox_ids(&data, "delivered");
    let pending_at_kill = outbox_ids(&data, "pending");
    assert_eq!(
        delivered_at_kill.len() + pending_at_kill.len(),
        NOTIFICATIONS,
        "every notification was in the outbox before the kill"
    );
    assert!(
        !pending_at_kill.is_empty(),
        "the kill came before the outbox was done"
    );
    for id in &delivered_at_kill {
        assert_eq!(
            acked_at_kill.get(id),
            Some(&1),
            "{id} is marked delivered, so the receiver answered it"
        );
    }

    // Restarted on the same data directory, it sends the rest, well within the lease the
    // killed process's claims had.
    let run = Exporter::start_role("run", &data, &["--config", &config]).await;
    let all = wait_until(Duration::from_secs(90), || {
        acked.lock().len() == NOTIFICATIONS
    })
    .await;
    let acked_now = acked.lock().clone();
    assert!(
        all,
        "{} of {NOTIFICATIONS} delivered after the restart\n{}",
        acked_now.len(),
        run.process.log()
    );
    let drained = wait_until(Duration::from_secs(30), || {
        outbox_ids(&data, "pending").is_empty()
    })
    .await;
    assert!(drained, "the outbox still holds pending items");
    assert_eq!(outbox_ids(&data, "delivered").len(), NOTIFICATIONS);

    let acked = acked.lock().clone();
    let ids: BTreeSet<&String> = acked.keys().collect();
    let queued: BTreeSet<&String> = delivered_at_kill.iter().chain(&pending_at_kill).collect();
    assert_eq!(ids, queued, "no notification other than those queued");
    let mut again = 0;
    for (id, &times) in &acked {
        if delivered_at_kill.contains(id) {
            assert_eq!(times, 1, "{id} was recorded delivered and sent again");
        } else {
            assert!(times <= 2, "{id} arrived {times} times");
            if times == 2 {
                again += 1;
                assert_eq!(
                    acked_at_kill.get(id),
                    Some(&1),
                    "{id} arrived twice, the first time before the kill"
                );
            }
        }
    }
    eprintln!(
        "at the kill: {} delivered, {} pending; {again} arrived a second time",
        delivered_at_kill.len(),
        pending_at_kill.len()
    );
    // Only what was in flight (one sender batch) can arrive twice.
    assert!(again <= 64, "{again} arrived twice");
}
