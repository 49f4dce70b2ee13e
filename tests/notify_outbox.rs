//! The durable outbox on a real `state.db` (a temporary directory): enqueueing in the caller's
//! transaction, claims and leases, backoff, death at `max_age`, the fallback receiver, manual
//! retry, the self-metric figures, durability across reopening, and the sender delivering
//! through the real webhook channel to a real HTTP receiver that is down and then up. Time is a
//! parameter throughout; nothing sleeps.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{DateTime, TimeZone, Utc};
use parking_lot::Mutex;
use rusqlite::Connection;
use tradewatch::notify::outbox::{
    Attempt, Channels, Fallback, IntegrationKind, IntegrationRef, ItemState, Outbox, OutboxError,
    OutboxSettings, Sender, configure,
};
use tradewatch::notify::webhook::{Webhook, WebhookTarget};
use tradewatch::notify::{Alert, Notification};
use tradewatch::template::alertmanager::NotificationTemplates;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
}

fn notification(id: &str) -> Notification {
    Notification {
        id: id.into(),
        receiver: "ops".into(),
        group_key: "{}:{alertname=\"TradingKillSwitchActive\"}".into(),
        group_labels: BTreeMap::from([("alertname".into(), "TradingKillSwitchActive".into())]),
        alerts: vec![Alert {
            labels: BTreeMap::from([
                ("alertname".into(), "TradingKillSwitchActive".into()),
                ("engine".into(), id.into()),
            ]),
            annotations: BTreeMap::from([("summary".into(), "Kill switch engaged".into())]),
            starts_at: t(-30),
            ends_at: t(3600),
            updated_at: t(0),
            generator_url: "http://trading-box:9470/graph".into(),
            timeout: false,
        }],
        created_at: t(0),
    }
}

fn webhook0() -> IntegrationRef {
    IntegrationRef::new("ops", IntegrationKind::Webhook, 0)
}

fn settings() -> OutboxSettings {
    OutboxSettings {
        max_age: Duration::from_secs(600),
        backoff_min: Duration::from_secs(1),
        backoff_max: Duration::from_secs(60),
        lease: Duration::from_secs(30),
        fallback: Some(Fallback {
            receiver: "desk-phone".into(),
            integrations: vec![(IntegrationKind::Email, 0), (IntegrationKind::Webhook, 0)],
        }),
    }
}

fn open(dir: &tempfile::TempDir) -> Outbox {
    Outbox::open(&dir.path().join("state.db"), settings())
        .unwrap()
        .with_jitter_seed(7)
}

#[test]
fn state_db_is_wal_with_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("state.db")).unwrap();
    configure(&conn).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let sync: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(sync, 2, "synchronous=FULL");
}

#[test]
fn enqueue_commits_or_rolls_back_with_the_callers_group_state() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&dir);
    // The caller's own connection to the same state.db, with its own table.
    let mut conn = Connection::open(dir.path().join("state.db")).unwrap();
    configure(&conn).unwrap();
    Outbox::init(&conn).unwrap();
    conn.execute_batch("CREATE TABLE group_state (key TEXT PRIMARY KEY, flushed INTEGER)")
        .unwrap();

    let tx = conn.transaction().unwrap();
    tx.execute("INSERT INTO group_state VALUES ('g', 1)", [])
        .unwrap();
    let event = Outbox::enqueue(
        &tx,
        &notification("n1"),
        &webhook0(),
        settings().max_age,
        t(0),
    )
    .unwrap()
    .unwrap();
    tx.rollback().unwrap();
    assert_eq!(event.outcome, "queued");
    assert!(
        outbox.list(None).unwrap().is_empty(),
        "rolled back with the group state"
    );

    let tx = conn.transaction().unwrap();
    tx.execute("INSERT INTO group_state VALUES ('g', 1)", [])
        .unwrap();
    Outbox::enqueue(
        &tx,
        &notification("n1"),
        &webhook0(),
        settings().max_age,
        t(0),
    )
    .unwrap()
    .unwrap();
    // The same notification for the same integration again is no second item.
    assert!(
        Outbox::enqueue(
            &tx,
            &notification("n1"),
            &webhook0(),
            settings().max_age,
            t(0)
        )
        .unwrap()
        .is_none()
    );
    tx.commit().unwrap();
    let items = outbox.list(None).unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].notification, notification("n1"));
    assert_eq!(items[0].target, webhook0());
    assert_eq!(items[0].state, ItemState::Pending);
    assert_eq!(items[0].expires_at, t(600));
}

#[test]
fn a_claim_is_leased_and_a_lost_claim_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&dir);
    outbox
        .enqueue_now(&notification("n1"), &webhook0(), t(0))
        .unwrap();
    outbox
        .enqueue_now(&notification("n2"), &webhook0(), t(1))
        .unwrap();
    // Not due before it was enqueued.
    assert_eq!(outbox.claim_due(t(-1), 10).unwrap().len(), 0);
    let first = outbox.claim_due(t(1), 1).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].notification.id, "n1", "oldest due first");
    assert_eq!(first[0].attempts, 1);
    let second = outbox.claim_due(t(1), 10).unwrap();
    assert_eq!(second.len(), 1, "n1 is leased, n2 is free");
    assert_eq!(second[0].notification.id, "n2");
    assert!(outbox.claim_due(t(29), 10).unwrap().is_empty());
    // The sender died holding both; after the lease both are claimed again.
    let again = outbox.claim_due(t(31), 10).unwrap();
    assert_eq!(
        again
            .iter()
            .map(|i| (i.notification.id.as_str(), i.attempts))
            .collect::<Vec<_>>(),
        [("n1", 2), ("n2", 2)]
    );
    assert_eq!(outbox.next_due().unwrap(), Some(t(61)));
}

#[test]
fn failures_back_off_exponentially_with_jitter_between_min_and_max() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&dir);
    outbox
        .enqueue_now(&notification("n1"), &webhook0(), t(0))
        .unwrap();
    let mut now = t(0);
    let mut delays = Vec::new();
    for attempt in 1..=9u32 {
        let items = outbox.claim_due(now, 10).unwrap();
        assert_eq!(items.len(), 1, "due at attempt {attempt}");
        assert_eq!(items[0].attempts, attempt);
        let events = outbox
            .mark_failed(items[0].id, "503".into(), None, true, now)
            .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].outcome, "failed");
        assert_eq!(events[0].attempt, attempt);
        let item = outbox.get(items[0].id).unwrap().unwrap();
        let delay = (item.next_attempt_at - now).to_std().unwrap();
        // Exponential, jittered into the upper half, never outside [min, max].
        let base = Duration::from_secs(1 << (attempt - 1)).min(Duration::from_secs(60));
        assert!(
            delay >= (base / 2).max(Duration::from_secs(1)),
            "{attempt}: {delay:?}"
        );
        assert!(delay <= base, "{attempt}: {delay:?}");
        // Not due a moment before.
        let early = item.next_attempt_at - chrono::Duration::milliseconds(1);
        assert!(outbox.claim_due(early, 10).unwrap().is_empty());
        delays.push(delay);
        now = item.next_attempt_at;
    }
    assert!(
        delays[8] >= Duration::from_secs(30),
        "capped near max: {delays:?}"
    );
    // Jitter: the delays are not the bare doubling.
    let bare: Vec<Duration> = (0..9)
        .map(|i| Duration::from_secs(1 << i).min(Duration::from_secs(60)))
        .collect();
    assert_ne!(delays, bare);
}

#[test]
fn too_old_an_item_dies_and_goes_once_to_the_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&dir);
    outbox
        .enqueue_now(&notification("n1"), &webhook0(), t(0))
        .unwrap();
    let mut now = t(0);
    let mut last = Vec::new();
    for _ in 0..100 {
        let items = outbox.claim_due(now, 10).unwrap();
        let Some(item) = items.first() else { break };
        assert_eq!(item.target.receiver, "ops");
        last = outbox
            .mark_failed(item.id, "connection refused".into(), None, true, now)
            .unwrap();
        if last[0].outcome == "dead" {
            break;
        }
        now = outbox.get(item.id).unwrap().unwrap().next_attempt_at;
        assert!(now <= t(600), "never scheduled past max_age");
    }
    assert_eq!(last[0].outcome, "dead");
    assert_eq!(last[0].ts, t(600), "the last attempt is at the deadline");
    assert_eq!(last[0].error.as_deref(), Some("connection refused"));
    // The fallback receiver's two integrations each get a copy, queued.
    assert_eq!(
        last[1..]
            .iter()
            .map(|e| (
                e.receiver.as_str(),
                e.integration.as_str(),
                e.outcome.as_str()
            ))
            .collect::<Vec<_>>(),
        [
            ("desk-phone", "email[0]", "queued"),
            ("desk-phone", "webhook[0]", "queued")
        ]
    );
    let dead = outbox.list(Some(ItemState::Dead)).unwrap();
    assert_eq!(dead.len(), 1);
    let copies = outbox.list(Some(ItemState::Pending)).unwrap();
    assert_eq!(copies.len(), 2);
    for copy in &copies {
        assert_eq!(copy.fallback_of, Some(dead[0].id));
        assert_eq!(copy.notification.receiver, "desk-phone");
        assert_eq!(copy.notification.alerts, notification("n1").alerts);
        assert_eq!(
            copy.notification.id, "n1",
            "the same key for the receiver to drop"
        );
    }

    // A copy that dies too goes nowhere else.
    let claimed = outbox.claim_due(now, 10).unwrap();
    assert_eq!(claimed.len(), 2);
    let events = outbox
        .mark_failed(claimed[0].id, "550 no such user".into(), None, false, now)
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, "dead");

    // Retried by hand and dead again, the original does not go to the fallback twice.
    let queued = outbox.retry(dead[0].id, t(1000)).unwrap();
    assert_eq!(queued.outcome, "queued");
    let item = outbox.claim_due(t(1000), 10).unwrap();
    let item = item.iter().find(|i| i.id == dead[0].id).unwrap();
    let events = outbox
        .mark_failed(item.id, "400".into(), None, false, t(1000))
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(outbox.list(None).unwrap().len(), 3);
}

#[test]
fn a_permanent_failure_is_dead_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(
        &dir.path().join("state.db"),
        OutboxSettings {
            fallback: None,
            ..settings()
        },
    )
    .unwrap();
    outbox
        .enqueue_now(&notification("n1"), &webhook0(), t(0))
        .unwrap();
    let item = &outbox.claim_due(t(0), 10).unwrap()[0];
    let events = outbox
        .mark_failed(
            item.id,
            "webhook answered 400 Bad Request: no such channel".into(),
            Some("400 Bad Request: no such channel".into()),
            false,
            t(0),
        )
        .unwrap();
    assert_eq!(events.len(), 1, "no fallback configured");
    assert_eq!(events[0].outcome, "dead");
    assert_eq!(
        events[0].response.as_deref(),
        Some("400 Bad Request: no such channel")
    );
    let item = outbox.get(item.id).unwrap().unwrap();
    assert_eq!(item.state, ItemState::Dead);
    assert_eq!(
        item.last_error.as_deref(),
        Some("webhook answered 400 Bad Request: no such channel")
    );
}

#[test]
fn retry_only_takes_dead_items() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&dir);
    outbox
        .enqueue_now(&notification("n1"), &webhook0(), t(0))
        .unwrap();
    let id = outbox.list(None).unwrap()[0].id;
    match outbox.retry(id, t(0)) {
        Err(e @ OutboxError::NotDead { .. }) => {
            assert_eq!(
                e.to_string(),
                format!("outbox item {id} is pending, not dead")
            )
        }
        other => panic!("{other:?}"),
    }
    match outbox.retry(999, t(0)) {
        Err(e @ OutboxError::NotFound(999)) => {
            assert_eq!(e.to_string(), "outbox item 999 not found")
        }
        other => panic!("{other:?}"),
    }
    outbox.claim_due(t(0), 1).unwrap();
    outbox
        .mark_failed(id, "x".into(), None, false, t(0))
        .unwrap();
    outbox.retry(id, t(5000)).unwrap();
    let item = outbox.get(id).unwrap().unwrap();
    assert_eq!(item.state, ItemState::Pending);
    assert_eq!(item.next_attempt_at, t(5000));
    assert_eq!(item.expires_at, t(5600), "a fresh max_age");
    let claimed = outbox.claim_due(t(5000), 10).unwrap();
    assert!(claimed.iter().any(|i| i.id == id && i.attempts == 2));
}

#[test]
fn counts_and_oldest_age_per_state() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(
        &dir.path().join("state.db"),
        OutboxSettings {
            fallback: None,
            ..settings()
        },
    )
    .unwrap();
    for (i, at) in [0, 10, 20, 30].into_iter().enumerate() {
        outbox
            .enqueue_now(&notification(&format!("n{i}")), &webhook0(), t(at))
            .unwrap();
    }
    let claimed = outbox.claim_due(t(30), 2).unwrap();
    outbox.mark_delivered(claimed[0].id, None, t(30)).unwrap();
    outbox
        .mark_failed(claimed[1].id, "x".into(), None, false, t(30))
        .unwrap();
    let stats = outbox.stats(t(100)).unwrap();
    let by_state: HashMap<&str, (u64, f64)> = stats
        .iter()
        .map(|s| (s.state.as_str(), (s.count, s.oldest_age_seconds)))
        .collect();
    assert_eq!(by_state["delivered"], (1, 100.0));
    assert_eq!(by_state["dead"], (1, 90.0));
    assert_eq!(by_state["pending"], (2, 80.0));
    assert_eq!(
        outbox.purge(t(5)).unwrap(),
        1,
        "only the delivered item is that old"
    );
    let stats = outbox.stats(t(100)).unwrap();
    assert_eq!(stats[1].state, ItemState::Delivered);
    assert_eq!((stats[1].count, stats[1].oldest_age_seconds), (0, 0.0));
}

#[test]
fn items_and_leases_survive_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    {
        let outbox = open(&dir);
        outbox
            .enqueue_now(&notification("n1"), &webhook0(), t(0))
            .unwrap();
        outbox
            .enqueue_now(&notification("n2"), &webhook0(), t(0))
            .unwrap();
        outbox
            .enqueue_now(&notification("n3"), &webhook0(), t(0))
            .unwrap();
        let claimed = outbox.claim_due(t(0), 3).unwrap();
        outbox
            .mark_delivered(claimed[0].id, Some("200 OK".into()), t(1))
            .unwrap();
        outbox
            .mark_failed(claimed[1].id, "503".into(), None, true, t(1))
            .unwrap();
        // n3 stays claimed: the process dies mid-send.
    }
    let outbox = open(&dir);
    let items = outbox.list(None).unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].state, ItemState::Delivered);
    assert_eq!(items[0].delivered_at, Some(t(1)));
    assert_eq!(items[0].last_response.as_deref(), Some("200 OK"));
    assert_eq!(items[1].state, ItemState::Pending);
    assert_eq!(items[1].last_error.as_deref(), Some("503"));
    assert_eq!(items[2].notification, notification("n3"));
    // The process that claimed n3 is gone: reopening releases its claim, so n3 goes again at
    // once rather than when its 30 s lease would have ended; n2 waits for its backoff.
    let again: Vec<(String, u32)> = outbox
        .claim_due(t(1), 10)
        .unwrap()
        .into_iter()
        .map(|i| (i.notification.id, i.attempts))
        .collect();
    assert_eq!(again, [("n3".to_string(), 2)]);
    let later: Vec<String> = outbox
        .claim_due(t(3), 10)
        .unwrap()
        .into_iter()
        .map(|i| i.notification.id)
        .collect();
    assert_eq!(later, ["n2"], "n3 is claimed by this process now");
}

// ---------------------------------------------------------------------------------------------
// The sender, through the real webhook channel
// ---------------------------------------------------------------------------------------------

/// A webhook receiver that counts deliveries by `Idempotency-Key`.
#[derive(Clone, Default)]
struct Counting {
    seen: Arc<Mutex<HashMap<String, u32>>>,
}

async fn count(State(c): State<Counting>, headers: HeaderMap) -> StatusCode {
    let key = headers["idempotency-key"].to_str().unwrap().to_string();
    *c.seen.lock().entry(key).or_default() += 1;
    StatusCode::OK
}

async fn serve_on(listener: tokio::net::TcpListener) -> Counting {
    let counting = Counting::default();
    let app = Router::new()
        .route("/hook", post(count))
        .with_state(counting.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    counting
}

fn channels(addr: SocketAddr) -> Arc<Channels> {
    let mut target = WebhookTarget::new(format!("http://{addr}/hook"));
    target.timeout = Duration::from_secs(5);
    let webhook = Webhook::new(target, &NotificationTemplates::new(), "").unwrap();
    let mut channels = Channels::new();
    channels.add_webhook(webhook0(), webhook);
    Arc::new(channels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_then_up_every_item_delivered_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Arc::new(open(&dir));
    // A port with nothing listening: the receiver is down.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let sender = Sender::new(outbox.clone(), channels(addr)).with_batch(16);
    let batch: Vec<(Notification, IntegrationRef)> = (0..40)
        .map(|i| (notification(&format!("n{i:02}")), webhook0()))
        .collect();
    assert_eq!(outbox.enqueue_many(&batch, t(0)).unwrap().len(), 40);

    let mut now = t(0);
    let mut failed = 0;
    for _ in 0..3 {
        let events = sender.run_once(now).await.unwrap();
        assert!(events.iter().all(|e| e.outcome == "failed"), "{events:?}");
        assert!(
            events
                .iter()
                .all(|e| e.error.as_deref().unwrap().contains("connection failed"))
        );
        failed += events.len();
    }
    assert_eq!(failed, 40, "16 + 16 + 8 claimed and failed");
    assert!(
        sender.run_once(now).await.unwrap().is_empty(),
        "all backing off"
    );

    // The receiver comes up on the same address.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let counting = serve_on(listener).await;
    let mut delivered = Vec::new();
    for _ in 0..10 {
        now += chrono::Duration::seconds(60);
        loop {
            let events = sender.run_once(now).await.unwrap();
            if events.is_empty() {
                break;
            }
            delivered.extend(events.into_iter().filter(|e| e.outcome == "delivered"));
        }
    }
    assert_eq!(delivered.len(), 40);
    let seen = counting.seen.lock().clone();
    assert_eq!(seen.len(), 40);
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    assert_eq!(outbox.list(Some(ItemState::Delivered)).unwrap().len(), 40);
    assert!(delivered.iter().all(|e| e.attempt == 2));
    assert!(
        delivered
            .iter()
            .all(|e| e.response.as_deref() == Some("200 OK"))
    );
    // Alert firing → delivered: the alert started 30 s before t(0).
    assert_eq!(delivered[0].latency_seconds(), Some(90.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_sender_wakes_for_new_items() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Arc::new(open(&dir));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counting = serve_on(listener).await;
    let sender = Sender::new(outbox.clone(), channels(addr));
    let waker = sender.waker();
    let (events_tx, mut events_rx) = tokio::sync::mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(sender.run(events_tx, async {
        let _ = stop_rx.await;
    }));

    // Items enqueued while the sender is idle go as soon as it is woken.
    let now = Utc::now();
    for round in 0..3 {
        let batch: Vec<(Notification, IntegrationRef)> = (0..5)
            .map(|i| (notification(&format!("r{round}-{i}")), webhook0()))
            .collect();
        outbox.enqueue_many(&batch, now).unwrap();
        waker.notify_one();
        let mut delivered = 0;
        while delivered < 5 {
            let event = tokio::time::timeout(Duration::from_secs(30), events_rx.recv())
                .await
                .expect("the sender delivers within 30 s")
                .unwrap();
            assert_eq!(event.outcome, "delivered", "{event:?}");
            delivered += 1;
        }
    }
    stop_tx.send(()).unwrap();
    running.await.unwrap();
    assert_eq!(counting.seen.lock().len(), 15);
    assert_eq!(outbox.list(Some(ItemState::Delivered)).unwrap().len(), 15);
}

#[tokio::test]
async fn an_item_for_an_integration_that_is_gone_dies_and_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Arc::new(open(&dir));
    let sender = Sender::new(outbox.clone(), Arc::new(Channels::new()));
    outbox
        .enqueue_now(&notification("n1"), &webhook0(), t(0))
        .unwrap();
    let events = sender.run_once(t(0)).await.unwrap();
    assert_eq!(events[0].outcome, "dead");
    assert_eq!(
        events[0].error.as_deref(),
        Some("receiver ops has no integration webhook[0]")
    );
    assert_eq!(events.len(), 3, "two fallback copies queued");
}

#[test]
fn attempts_record_in_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&dir);
    for i in 0..3 {
        outbox
            .enqueue_now(&notification(&format!("n{i}")), &webhook0(), t(0))
            .unwrap();
    }
    let ids: Vec<i64> = outbox
        .claim_due(t(0), 10)
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    let events = outbox
        .record(
            &[
                (ids[0], Attempt::Delivered { response: None }),
                (
                    ids[1],
                    Attempt::Failed {
                        error: "timeout".into(),
                        response: None,
                        retryable: true,
                    },
                ),
                (ids[2], Attempt::Delivered { response: None }),
            ],
            t(1),
        )
        .unwrap();
    let outcomes: Vec<&str> = events.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["delivered", "failed", "delivered"]);
    // Marking a settled item again changes nothing.
    assert!(
        outbox
            .mark_delivered(ids[0], None, t(2))
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn resolved_only_without_send_resolved_is_settled_without_a_request() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counting = serve_on(listener).await;
    let mut target = WebhookTarget::new(format!("http://{addr}/hook"));
    target.send_resolved = false;
    let mut channels = Channels::new();
    channels.add_webhook(
        webhook0(),
        Webhook::new(target, &NotificationTemplates::new(), "").unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let outbox = Arc::new(open(&dir));
    let sender = Sender::new(outbox.clone(), Arc::new(channels));
    let mut resolved = notification("n1");
    resolved.alerts[0].ends_at = t(-5);
    outbox.enqueue_now(&resolved, &webhook0(), t(0)).unwrap();
    outbox
        .enqueue_now(&notification("n2"), &webhook0(), t(0))
        .unwrap();
    let events = sender.run_once(t(0)).await.unwrap();
    let summary: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e.id.as_str(),
                e.status.as_str(),
                e.response.as_deref().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "n1",
                "resolved",
                "not sent: only resolved alerts and send_resolved is off"
            ),
            ("n2", "firing", "200 OK"),
        ]
    );
    assert_eq!(
        counting.seen.lock().keys().cloned().collect::<Vec<_>>(),
        ["n2"]
    );
}

/// Several senders, each over its own connection to the same `state.db`, and a writer that
/// enqueues in its own transactions meanwhile: every mark-after-send waits for the write lock
/// instead of failing with "database is locked", so no item stays claimed to be sent again when
/// its lease ends, and none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_senders_and_writers_send_each_item_once() {
    const ITEMS: usize = 400;
    const SENDERS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counting = serve_on(listener).await;
    let outboxes: Vec<Arc<Outbox>> = (0..SENDERS)
        .map(|_| Arc::new(Outbox::open(&path, settings()).unwrap()))
        .collect();

    // The writer: batches of five in a transaction of its own connection, each reading the
    // table first as the notifier's flush does, while the senders mark what they sent.
    let writer = {
        let path = path.clone();
        std::thread::spawn(move || {
            let mut conn = Connection::open(&path).unwrap();
            configure(&conn).unwrap();
            for batch in 0..ITEMS / 5 {
                let tx = tradewatch::notify::outbox::write_transaction(&mut conn).unwrap();
                let _: i64 = tx
                    .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
                    .unwrap();
                for i in 0..5 {
                    let n = notification(&format!("h{:03}", batch * 5 + i));
                    Outbox::enqueue(&tx, &n, &webhook0(), settings().max_age, Utc::now()).unwrap();
                }
                tx.commit().unwrap();
            }
        })
    };

    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let delivered_events = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut senders = tokio::task::JoinSet::new();
    for outbox in &outboxes {
        let sender = Sender::new(outbox.clone(), channels(addr)).with_batch(8);
        let outbox = outbox.clone();
        let errors = errors.clone();
        let delivered_events = delivered_events.clone();
        senders.spawn(async move {
            loop {
                match sender.run_once(Utc::now()).await {
                    Ok(events) => {
                        let n = events.iter().filter(|e| e.outcome == "delivered").count();
                        delivered_events.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                        if events.is_empty() {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                    }
                    Err(e) => errors.lock().push(e.to_string()),
                }
                let done = outbox.list(Some(ItemState::Delivered)).unwrap().len() == ITEMS;
                if done || std::time::Instant::now() > deadline {
                    return;
                }
            }
        });
    }
    tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();
    while let Some(done) = senders.join_next().await {
        done.unwrap();
    }

    assert_eq!(
        *errors.lock(),
        Vec::<String>::new(),
        "no outbox round failed"
    );
    assert_eq!(
        outboxes[0].list(Some(ItemState::Delivered)).unwrap().len(),
        ITEMS,
        "every item delivered and marked"
    );
    assert_eq!(
        delivered_events.load(std::sync::atomic::Ordering::SeqCst),
        ITEMS
    );
    let seen = counting.seen.lock().clone();
    assert_eq!(seen.len(), ITEMS, "none lost");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
}
