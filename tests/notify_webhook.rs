//! The webhook channel against a real HTTP receiver on loopback (axum): the receiver checks the
//! HMAC signature and the `Idempotency-Key` itself and records what arrived; the tests read the
//! version 4 payload field by field and see 500, 400, 429 and a receiver that never answers
//! classified as Alertmanager's retrier and tradewatch's outbox need. Where Debian's
//! `prometheus-alertmanager` is installed, the payload is checked against the one a real
//! Alertmanager sends for the same alerts.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde_json::{Value, json};
use sha2::Sha256;
use tradewatch::config::Secret;
use tradewatch::notify::payload::for_integration;
use tradewatch::notify::webhook::{
    Webhook, WebhookAuth, WebhookError, WebhookOutcome, WebhookTarget,
};
use tradewatch::notify::{Alert, Notification};
use tradewatch::template::alertmanager::NotificationTemplates;

const SECRET: &str = "s3cret-signing-key";

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    /// The receiver's own verdict on `X-Tradewatch-Signature` (None: unsigned).
    signature_ok: Option<bool>,
}

#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
}

/// Verifies the signature as a receiver would, with the `hmac` crate directly.
fn verify(headers: &HeaderMap, body: &[u8]) -> Option<bool> {
    let signature = headers.get("x-tradewatch-signature")?.to_str().ok()?;
    let ts = headers.get("x-tradewatch-timestamp")?.to_str().ok()?;
    let hex = signature.strip_prefix("sha256=")?;
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac.verify_slice(&bytes).is_ok() && hex.chars().all(|c| !c.is_ascii_uppercase()))
}

async fn hook(
    State(receiver): State<Receiver>,
    Path(mode): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let signature_ok = verify(&headers, &body);
    receiver.received.lock().push(Received {
        path: mode.clone(),
        headers,
        body,
        signature_ok,
    });
    match mode.as_str() {
        "ok" => (StatusCode::OK, "thanks"),
        "accepted" => (StatusCode::ACCEPTED, ""),
        "fail" => (StatusCode::INTERNAL_SERVER_ERROR, "database is down"),
        "bad" => (StatusCode::BAD_REQUEST, "no such channel"),
        "slow-down" => (StatusCode::TOO_MANY_REQUESTS, "slow down"),
        "hang" => std::future::pending().await,
        _ => (StatusCode::NOT_FOUND, "not found"),
    }
}

/// Starts the receiver on a free loopback port; returns its base URL.
async fn start_receiver() -> (String, Receiver) {
    let receiver = Receiver::default();
    let app = Router::new()
        .route("/hook/{mode}", post(hook))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), receiver)
}

fn at(secs: i64, nanos: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, nanos).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Three alerts of one group at 1,700,000,100: two firing, one resolved at 1,700,000,050.
fn notification() -> Notification {
    let alert = |strategy: &str, starts: DateTime<Utc>, ends: DateTime<Utc>| Alert {
        labels: labels(&[
            ("alertname", "TradingDailyLossLimitBreached"),
            ("severity", "critical"),
            ("strategy", strategy),
        ]),
        annotations: labels(&[
            ("summary", "Daily loss limit breached"),
            ("runbook_url", &format!("http://wiki/runbooks/{strategy}")),
        ]),
        starts_at: starts,
        ends_at: ends,
        updated_at: at(1_700_000_090, 0),
        generator_url: format!("http://trading-box:9470/graph?s={strategy}"),
        timeout: false,
    };
    Notification {
        id: "n-0001-a7c3".into(),
        receiver: "ops.webhook".into(),
        group_key: "{}/{severity=\"critical\"}:{alertname=\"TradingDailyLossLimitBreached\"}"
            .into(),
        group_labels: labels(&[("alertname", "TradingDailyLossLimitBreached")]),
        alerts: vec![
            alert(
                "momentum",
                at(1_700_000_000, 123_456_789),
                at(1_700_000_400, 0),
            ),
            alert(
                "carry",
                at(1_700_000_010, 500_000_000),
                at(1_700_000_050, 0),
            ),
            alert("meanrev", at(1_700_000_020, 0), at(1_700_000_400, 0)),
        ],
        created_at: at(1_700_000_100, 0),
    }
}

fn webhook(url: String, configure: impl FnOnce(&mut WebhookTarget)) -> Webhook {
    let mut target = WebhookTarget::new(url);
    target.secret = Some(Secret::new(SECRET));
    target.timeout = Duration::from_secs(5);
    configure(&mut target);
    Webhook::new(
        target,
        &NotificationTemplates::new(),
        "http://trading-box:9470",
    )
    .unwrap()
}

#[tokio::test]
async fn payload_version_4_field_by_field_signed_and_keyed() {
    let (base, receiver) = start_receiver().await;
    let hook = webhook(format!("{base}/ok"), |t| t.max_alerts = 2);
    let now = at(1_700_000_101, 0);
    let outcome = hook.send(&notification(), now).await;
    match &outcome {
        WebhookOutcome::Delivered { status, body } => {
            assert_eq!(*status, StatusCode::OK);
            assert_eq!(body, "thanks");
        }
        other => panic!("expected delivered, got {other:?}"),
    }

    let received = receiver.received.lock().clone();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.path, "ok");
    assert_eq!(r.signature_ok, Some(true), "signature must verify");
    assert_eq!(r.headers["idempotency-key"], "n-0001-a7c3");
    assert_eq!(r.headers["x-tradewatch-timestamp"], "1700000101");
    assert_eq!(r.headers["content-type"], "application/json");
    assert!(
        r.headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("tradewatch/")
    );
    assert!(r.headers.get("authorization").is_none());

    let v: Value = serde_json::from_slice(&r.body).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected_keys = vec![
        "receiver",
        "status",
        "alerts",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "version",
        "groupKey",
        "truncatedAlerts",
    ];
    expected_keys.sort_unstable();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort_unstable();
    assert_eq!(keys_sorted, expected_keys);
    // The receiver's name is regexp-quoted, as Alertmanager's template data carries it.
    assert_eq!(v["receiver"], "ops\\.webhook");
    assert_eq!(v["status"], "firing");
    assert_eq!(v["version"], "4");
    assert_eq!(
        v["groupKey"],
        "{}/{severity=\"critical\"}:{alertname=\"TradingDailyLossLimitBreached\"}"
    );
    assert_eq!(v["truncatedAlerts"], 1);
    assert_eq!(v["externalURL"], "http://trading-box:9470");
    assert_eq!(
        v["groupLabels"],
        json!({"alertname": "TradingDailyLossLimitBreached"})
    );
    // Common labels and annotations are over the alerts sent (the first two).
    assert_eq!(
        v["commonLabels"],
        json!({"alertname": "TradingDailyLossLimitBreached", "severity": "critical"})
    );
    assert_eq!(
        v["commonAnnotations"],
        json!({"summary": "Daily loss limit breached"})
    );

    let alerts = v["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    let first = &alerts[0];
    let mut alert_keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    alert_keys.sort_unstable();
    assert_eq!(
        alert_keys,
        [
            "annotations",
            "endsAt",
            "fingerprint",
            "generatorURL",
            "labels",
            "startsAt",
            "status"
        ]
    );
    assert_eq!(first["status"], "firing");
    assert_eq!(
        first["labels"],
        json!({"alertname": "TradingDailyLossLimitBreached", "severity": "critical", "strategy": "momentum"})
    );
    assert_eq!(
        first["annotations"]["runbook_url"],
        "http://wiki/runbooks/momentum"
    );
    assert_eq!(first["startsAt"], "2023-11-14T22:13:20.123456789Z");
    // A firing alert's end is hidden as Go's zero time.
    assert_eq!(first["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        first["generatorURL"],
        "http://trading-box:9470/graph?s=momentum"
    );
    let fingerprint = notification().alerts[0].fingerprint().to_string();
    assert_eq!(first["fingerprint"], fingerprint.as_str());
    assert_eq!(fingerprint.len(), 16);

    let second = &alerts[1];
    assert_eq!(second["status"], "resolved");
    assert_eq!(second["labels"]["strategy"], "carry");
    assert_eq!(second["startsAt"], "2023-11-14T22:13:30.5Z");
    assert_eq!(second["endsAt"], "2023-11-14T22:14:10Z");
}

#[tokio::test]
async fn retries_use_the_same_idempotency_key_and_a_fresh_signature() {
    let (base, receiver) = start_receiver().await;
    let hook = webhook(format!("{base}/accepted"), |_| {});
    let n = notification();
    for now in [at(1_700_000_101, 0), at(1_700_000_161, 0)] {
        assert!(matches!(
            hook.send(&n, now).await,
            WebhookOutcome::Delivered { status, .. } if status == StatusCode::ACCEPTED
        ));
    }
    let received = receiver.received.lock().clone();
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0].headers["idempotency-key"],
        received[1].headers["idempotency-key"]
    );
    assert_ne!(
        received[0].headers["x-tradewatch-signature"],
        received[1].headers["x-tradewatch-signature"]
    );
    assert!(received.iter().all(|r| r.signature_ok == Some(true)));
    assert_eq!(received[0].body, received[1].body);
    let v: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(v["alerts"].as_array().unwrap().len(), 3);
    assert_eq!(v["truncatedAlerts"], 0);
}

#[tokio::test]
async fn a_tampered_body_fails_the_receivers_check() {
    // The receiver's verifier is the one the other tests rely on: it must say no to a body
    // that is not the one signed.
    let (base, receiver) = start_receiver().await;
    let hook = webhook(format!("{base}/ok"), |_| {});
    hook.send(&notification(), at(1_700_000_101, 0)).await;
    let r = receiver.received.lock()[0].clone();
    let mut body = r.body.to_vec();
    body[0] = b' ';
    assert_eq!(verify(&r.headers, &body), Some(false));
}

#[tokio::test]
async fn status_codes_classify_as_retryable_or_permanent() {
    let (base, receiver) = start_receiver().await;
    let n = notification();
    let now = at(1_700_000_101, 0);

    let outcome = webhook(format!("{base}/fail"), |_| {}).send(&n, now).await;
    match outcome {
        WebhookOutcome::Retryable(WebhookError::Status { status, body }) => {
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(body, "database is down");
        }
        other => panic!("500 must be retryable, got {other:?}"),
    }

    let outcome = webhook(format!("{base}/slow-down"), |_| {})
        .send(&n, now)
        .await;
    assert!(
        matches!(outcome, WebhookOutcome::Retryable(WebhookError::Status { status, .. }) if status == StatusCode::TOO_MANY_REQUESTS),
        "{outcome:?}"
    );

    let outcome = webhook(format!("{base}/bad"), |_| {}).send(&n, now).await;
    match &outcome {
        WebhookOutcome::Permanent(WebhookError::Status { status, body }) => {
            assert_eq!(*status, StatusCode::BAD_REQUEST);
            assert_eq!(body, "no such channel");
        }
        other => panic!("400 must be permanent, got {other:?}"),
    }
    assert_eq!(
        outcome.status(),
        Some(StatusCode::BAD_REQUEST),
        "the status is kept for the alert log"
    );
    assert_eq!(receiver.received.lock().len(), 3);
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out_retryably() {
    let (base, receiver) = start_receiver().await;
    let hook = webhook(format!("{base}/hang"), |t| {
        t.timeout = Duration::from_millis(300)
    });
    let started = std::time::Instant::now();
    let outcome = hook.send(&notification(), at(1_700_000_101, 0)).await;
    assert!(
        matches!(outcome, WebhookOutcome::Retryable(WebhookError::Timeout(d)) if d == Duration::from_millis(300)),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(receiver.received.lock().len(), 1, "the request did arrive");
}

#[tokio::test]
async fn a_closed_port_is_a_retryable_connect_failure() {
    // Bind then drop a listener: the port is free and refuses connections.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let hook = webhook(format!("http://127.0.0.1:{port}/hook/ok"), |_| {});
    let outcome = hook.send(&notification(), at(1_700_000_101, 0)).await;
    assert!(
        matches!(outcome, WebhookOutcome::Retryable(WebhookError::Connect(_))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn bearer_and_basic_auth_and_extra_headers() {
    let (base, receiver) = start_receiver().await;
    let n = notification();
    let now = at(1_700_000_101, 0);
    webhook(format!("{base}/ok"), |t| {
        t.auth = WebhookAuth::Bearer(Secret::new("tok-123"));
        t.headers = labels(&[("X-Desk", "equities"), ("X-Env", "prod")]);
        t.secret = None;
    })
    .send(&n, now)
    .await;
    webhook(format!("{base}/ok"), |t| {
        t.auth = WebhookAuth::Basic {
            username: "am".into(),
            password: Secret::new("pw:x"),
        };
    })
    .send(&n, now)
    .await;
    let received = receiver.received.lock().clone();
    assert_eq!(received[0].headers["authorization"], "Bearer tok-123");
    assert_eq!(received[0].headers["x-desk"], "equities");
    assert_eq!(received[0].headers["x-env"], "prod");
    assert_eq!(received[0].signature_ok, None, "no secret, no signature");
    assert!(received[0].headers.get("x-tradewatch-timestamp").is_none());
    // base64("am:pw:x")
    assert_eq!(received[1].headers["authorization"], "Basic YW06cHc6eA==");
}

#[tokio::test]
async fn a_body_template_replaces_the_payload() {
    let (base, receiver) = start_receiver().await;
    let template = r#"{"text": "{{ .Status | toUpper }} {{ .CommonLabels.alertname }}: {{ range .Alerts.Firing }}{{ .Labels.strategy }} {{ end }}({{ len .Alerts }} shown)"}"#;
    let hook = webhook(format!("{base}/ok"), |t| {
        t.body_template = Some(template.into());
        t.max_alerts = 2;
        t.headers = labels(&[("Content-Type", "application/vnd.chat+json")]);
    });
    let outcome = hook.send(&notification(), at(1_700_000_101, 0)).await;
    assert!(matches!(outcome, WebhookOutcome::Delivered { .. }));
    let r = receiver.received.lock()[0].clone();
    assert_eq!(
        std::str::from_utf8(&r.body).unwrap(),
        r#"{"text": "FIRING TradingDailyLossLimitBreached: momentum (2 shown)"}"#
    );
    assert_eq!(r.headers["content-type"], "application/vnd.chat+json");
    assert_eq!(r.signature_ok, Some(true), "a templated body is signed too");
}

#[tokio::test]
async fn a_failing_body_template_is_permanent_and_sends_nothing() {
    let (base, receiver) = start_receiver().await;
    let hook = webhook(format!("{base}/ok"), |t| {
        t.body_template = Some(r#"{{ index .Alerts 7 }}"#.into());
    });
    let outcome = hook.send(&notification(), at(1_700_000_101, 0)).await;
    assert!(
        matches!(
            outcome,
            WebhookOutcome::Permanent(WebhookError::TemplateExec(_))
        ),
        "{outcome:?}"
    );
    assert!(receiver.received.lock().is_empty());
}

#[test]
fn bad_targets_are_refused_with_their_reason() {
    let templates = NotificationTemplates::new();
    let e = Webhook::new(WebhookTarget::new("ftp://x/y"), &templates, "").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid webhook url \"ftp://x/y\": scheme ftp is not http or https"
    );
    let mut target = WebhookTarget::new("http://127.0.0.1:1/");
    target.headers = labels(&[("Bad Header", "x")]);
    let e = Webhook::new(target, &templates, "").unwrap_err();
    assert_eq!(e.to_string(), "invalid webhook header \"Bad Header\"");
    let mut target = WebhookTarget::new("http://127.0.0.1:1/");
    target.body_template = Some("{{ .Status ".into());
    let e = Webhook::new(target, &templates, "").unwrap_err();
    assert!(e.to_string().starts_with("webhook body template: "), "{e}");
}

#[test]
fn send_resolved_filtering_helper() {
    let n = notification();
    // With send_resolved the notification goes as it is.
    assert_eq!(for_integration(&n, true).unwrap().alerts.len(), 3);
    // Without, the resolved alert is dropped…
    let firing = for_integration(&n, false).unwrap();
    assert_eq!(firing.alerts.len(), 2);
    assert!(firing.alerts.iter().all(|a| !a.resolved_at(n.created_at)));
    // …and a notification of only resolved alerts is not sent at all.
    let mut resolved = n.clone();
    resolved.alerts.retain(|a| a.resolved_at(n.created_at));
    assert_eq!(resolved.alerts.len(), 1);
    assert!(for_integration(&resolved, false).is_none());
}

// ---------------------------------------------------------------------------------------------
// Against a real Alertmanager
// ---------------------------------------------------------------------------------------------

/// The Alertmanager server (Debian's `prometheus-alertmanager`).
const ALERTMANAGER: support::Needs = support::Needs {
    what: "prometheus-alertmanager",
    probe: &["prometheus-alertmanager", "--version"],
    install: "apt-get install prometheus-alertmanager",
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_matches_what_alertmanager_sends() {
    if !support::available("payload_matches_what_alertmanager_sends", &[&ALERTMANAGER]) {
        return;
    }
    let (base, receiver) = start_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: ops.webhook\n  group_by: [alertname, strategy]\n  \
             group_wait: 1s\n  group_interval: 1h\n  repeat_interval: 4h\n\
             receivers:\n  - name: ops.webhook\n    webhook_configs:\n      \
             - url: {base}/ok\n        send_resolved: true\n        max_alerts: 2\n"
        ),
    )
    .unwrap();
    let port = support::free_port();
    let mut command = std::process::Command::new("prometheus-alertmanager");
    command.args([
        &format!("--config.file={}", config.display()),
        &format!("--storage.path={}", dir.path().join("data").display()),
        &format!("--web.listen-address=127.0.0.1:{port}"),
        "--cluster.listen-address=",
        "--web.external-url=http://trading-box:9470",
    ]);
    let mut alertmanager = support::Process::spawn("alertmanager", command);
    let api = format!("http://127.0.0.1:{port}");
    tradewatch::server::install_crypto_provider();
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + support::READY_DEADLINE;
    loop {
        let ready = client.get(format!("{api}/-/ready")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(
            alertmanager.try_wait().is_none(),
            "alertmanager exited:\n{}",
            alertmanager.log()
        );
        assert!(
            std::time::Instant::now() < deadline,
            "alertmanager not ready:\n{}",
            alertmanager.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Three alerts of one group, one resolved, times with nanoseconds, around the wall clock
    // Alertmanager goes by.
    let now = Utc::now();
    let base_time = Utc
        .timestamp_opt(now.timestamp() - 600, 123_456_789)
        .unwrap();
    let mut n = notification();
    for a in &mut n.alerts {
        let strategy = a
            .labels
            .insert("strategy".into(), "momentum".into())
            .unwrap();
        a.labels.insert("symbol".into(), strategy);
    }
    n.alerts[0].starts_at = base_time;
    n.alerts[0].ends_at = now + chrono::Duration::hours(1);
    n.alerts[1].starts_at = base_time + chrono::Duration::milliseconds(1500);
    n.alerts[1].ends_at = now - chrono::Duration::seconds(60);
    n.alerts[2].starts_at = base_time + chrono::Duration::seconds(20);
    n.alerts[2].ends_at = now + chrono::Duration::hours(1);
    let posted: Vec<Value> = n
        .alerts
        .iter()
        .map(|a| {
            json!({
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": a.starts_at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                "endsAt": a.ends_at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                "generatorURL": a.generator_url,
            })
        })
        .collect();
    let response = client
        .post(format!("{api}/api/v2/alerts"))
        .json(&posted)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let theirs: Value = loop {
        if let Some(r) = receiver.received.lock().first() {
            break serde_json::from_slice(&r.body).unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no notification from alertmanager:\n{}",
            alertmanager.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // The order of alerts and the group key are the routing stage's; take them from
    // Alertmanager, with the alert it left out last.
    let order: Vec<String> = theirs["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["fingerprint"].as_str().unwrap().to_string())
        .collect();
    n.alerts.sort_by_key(|a| {
        order
            .iter()
            .position(|f| *f == a.fingerprint().to_string())
            .unwrap_or(9)
    });
    n.group_key = theirs["groupKey"].as_str().unwrap().to_string();
    n.group_labels = labels(&[
        ("alertname", "TradingDailyLossLimitBreached"),
        ("strategy", "momentum"),
    ]);
    n.created_at = Utc::now();
    let ours = serde_json::to_value(tradewatch::notify::payload::WebhookMessage::new(
        &n,
        "http://trading-box:9470",
        2,
    ))
    .unwrap();
    assert_eq!(ours, theirs);
    assert_eq!(theirs["truncatedAlerts"], 1);
    let statuses: Vec<&str> = theirs["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains(&"resolved") && statuses.contains(&"firing"),
        "{statuses:?}"
    );
    alertmanager.kill9();
}

#[tokio::test]
async fn tradewatch_extras_apply_to_a_target() {
    let (base, receiver) = start_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("webhook.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let extras = tradewatch::config::WebhookExtras {
        secret_file: Some(secret_file),
        body_template: None,
        headers: labels(&[("X-Desk", "fx")]),
        timeout: tradewatch::model::PromDuration::from_secs(3),
    };
    let mut target = WebhookTarget::new(format!("{base}/ok"));
    target.apply_extras(&extras).unwrap();
    assert_eq!(target.timeout, Duration::from_secs(3));
    let hook = Webhook::new(target, &NotificationTemplates::new(), "").unwrap();
    hook.send(&notification(), at(1_700_000_101, 0)).await;
    let r = receiver.received.lock()[0].clone();
    assert_eq!(
        r.signature_ok,
        Some(true),
        "the file's secret, newline dropped"
    );
    assert_eq!(r.headers["x-desk"], "fx");

    let empty = dir.path().join("empty.secret");
    std::fs::write(&empty, "\n").unwrap();
    let extras = tradewatch::config::WebhookExtras {
        secret_file: Some(empty.clone()),
        ..Default::default()
    };
    let e = WebhookTarget::new("http://x/")
        .apply_extras(&extras)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("webhook secret token file {} is empty", empty.display())
    );
}
