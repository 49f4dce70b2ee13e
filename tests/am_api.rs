//! Alertmanager's v2 API on tradewatch, against real clients: the real `amtool` adds and
//! queries alerts, adds, updates, queries and expires silences and reads the configuration of
//! a running `tradewatch run`; a real Prometheus with `alerting:` pointed at a `tradewatch
//! sidecar` delivers its firing alert with the ingest token; `tradewatch silence
//! add|list|expire` go through the same API. Validation errors and tokens are checked on the
//! router with `oneshot`.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Utc;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use support::{Exporter, Needs, Process};
use tower::ServiceExt;

use tradewatch::api::alertmanager::AlertmanagerApi;
use tradewatch::api::{self, AppState};
use tradewatch::config::{Config, Secret, Tokens};
use tradewatch::notify::config::AlertmanagerConfig;
use tradewatch::notify::outbox::OutboxSettings;
use tradewatch::notify::pipeline::Notifier;
use tradewatch::telemetry::Telemetry;

/// `amtool` (Debian's `prometheus-alertmanager` package).
const AMTOOL: Needs = Needs {
    what: "amtool",
    probe: &["amtool", "--version"],
    install: "apt-get install prometheus-alertmanager",
};

const ROUTING: &str = r#"
global:
  resolve_timeout: 5m
  smtp_auth_password: hunter2
route:
  receiver: desk
  group_by: [alertname]
  group_wait: 1h
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      continue: true
    - matchers: ['team="fx"']
      receiver: fx-desk
inhibit_rules:
  - source_matchers: ['alertname="VenueDown"']
    target_matchers: ['severity="warning"']
    equal: [venue]
receivers:
  - name: desk
  - name: pager
  - name: fx-desk
"#;

// ---------------------------------------------------------------------------------------------
// The router, without a socket
// ---------------------------------------------------------------------------------------------

struct Api {
    router: axum::Router,
    _dir: tempfile::TempDir,
}

fn tokens() -> Tokens {
    Tokens {
        ingest: Some(Secret::new("ingest-t")),
        admin: Some(Secret::new("admin-t")),
        read: Some(Secret::new("read-t")),
    }
}

fn router(tokens: Tokens) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let am = AlertmanagerConfig::parse(ROUTING, "alertmanager.yml").unwrap();
    let notifier = Notifier::open(
        &dir.path().join("state.db"),
        am,
        OutboxSettings::default(),
        None,
        None,
        Utc::now(),
    )
    .unwrap();
    let mut state = AppState::new(&Config::bundled(), Arc::new(Telemetry::new()), tokens);
    state.notifier = Some(AlertmanagerApi::with_original(
        Arc::new(notifier),
        "route:\n  receiver: desk\n".to_owned(),
        "2026-11-23T08:00:00Z".parse().unwrap(),
    ));
    Api {
        router: api::router(Arc::new(state)),
        _dir: dir,
    }
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let res = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, value)
    }
}

fn in_minutes(m: i64) -> String {
    (Utc::now() + chrono::Duration::minutes(m)).to_rfc3339()
}

#[tokio::test]
async fn posted_alerts_are_validated_as_alertmanager_does() {
    let api = router(Tokens::default());
    let (status, body) = api
        .call(
            "POST",
            "/api/v2/alerts",
            None,
            Some(json!([
                {"labels": {"alertname": "VenueDown", "venue": "xnas"}, "annotations": {"summary": "down"},
                 "generatorURL": "http://prometheus/graph"},
                {"labels": {}},
                {"labels": {"alertname": "X"}, "startsAt": in_minutes(0), "endsAt": in_minutes(-5)},
                {"labels": {"1bad": "x"}},
                {"labels": {"alertname": "Y"}, "annotations": {"bad-name": "x"}},
                {"labels": {"alertname": "Z", "empty": ""}, "startsAt": "0001-01-01T00:00:00.000Z",
                 "endsAt": "0001-01-01T00:00:00.000Z"},
            ])),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        "at least one label pair required; start time must be before end time; \
         invalid label set: invalid name \"1bad\"; invalid annotations: invalid name \"bad-name\""
    );
    // The valid alerts were taken all the same, with Alertmanager's shape.
    let (status, alerts) = api.call("GET", "/api/v2/alerts", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let alerts = alerts.as_array().unwrap();
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    let venue = alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == "VenueDown")
        .unwrap();
    assert_eq!(venue["annotations"]["summary"], "down");
    assert_eq!(venue["generatorURL"], "http://prometheus/graph");
    assert_eq!(venue["receivers"], json!([{"name": "desk"}]));
    assert_eq!(
        venue["status"],
        json!({"state": "active", "silencedBy": [], "inhibitedBy": []})
    );
    assert_eq!(venue["fingerprint"].as_str().unwrap().len(), 16);
    // No end given: the end is resolve_timeout (5m) after the update.
    let t = |k: &str| chrono::DateTime::parse_from_rfc3339(venue[k].as_str().unwrap()).unwrap();
    assert_eq!(t("endsAt") - t("updatedAt"), chrono::Duration::minutes(5));
    assert!(venue["startsAt"].as_str().unwrap().ends_with('Z'));
    // Go's zero times read as absent; empty label values are dropped.
    let z = alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == "Z")
        .unwrap();
    assert_eq!(z["labels"], json!({"alertname": "Z"}));
    assert_ne!(z["startsAt"], "0001-01-01T00:00:00.000Z");
    // Sorted by fingerprint.
    let fps: Vec<&str> = alerts
        .iter()
        .map(|a| a["fingerprint"].as_str().unwrap())
        .collect();
    let mut sorted = fps.clone();
    sorted.sort();
    assert_eq!(fps, sorted);

    let (status, body) = api
        .call("POST", "/api/v2/alerts", None, Some(json!({"labels": {}})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("parsing alerts body failed"),
        "{body}"
    );
    let (status, body) = api
        .call(
            "POST",
            "/api/v2/alerts",
            None,
            Some(json!([{"annotations": {}}])),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["message"], "0.labels in body is required");
}

#[tokio::test]
async fn alert_queries_filter_by_matchers_state_and_receiver() {
    let api = router(Tokens::default());
    let (status, _) = api
        .call(
            "POST",
            "/api/v2/alerts",
            None,
            Some(json!([
                {"labels": {"alertname": "VenueDown", "venue": "xnas", "severity": "critical", "team": "fx"}},
                {"labels": {"alertname": "SlowFills", "venue": "xnas", "severity": "warning"}},
                {"labels": {"alertname": "SlowFills", "venue": "arca", "severity": "warning", "team": "fx"}},
                {"labels": {"alertname": "Old"}, "startsAt": in_minutes(-10), "endsAt": in_minutes(-5)},
            ])),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let names = |v: &Value| -> Vec<String> {
        let mut n: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                format!(
                    "{}/{}",
                    a["labels"]["alertname"].as_str().unwrap(),
                    a["labels"]["venue"].as_str().unwrap_or("")
                )
            })
            .collect();
        n.sort();
        n
    };
    // The ended alert is not listed; the inhibited one is suppressed.
    let (_, all) = api.call("GET", "/api/v2/alerts", None, None).await;
    assert_eq!(
        names(&all),
        ["SlowFills/arca", "SlowFills/xnas", "VenueDown/xnas"]
    );
    let slow = all
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["venue"] == "xnas" && a["labels"]["alertname"] == "SlowFills")
        .unwrap();
    let venue_fp = all
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "VenueDown")
        .unwrap()["fingerprint"]
        .clone();
    assert_eq!(slow["status"]["state"], "suppressed");
    assert_eq!(slow["status"]["inhibitedBy"], json!([venue_fp]));
    let (_, q) = api
        .call("GET", "/api/v2/alerts?inhibited=false", None, None)
        .await;
    assert_eq!(names(&q), ["SlowFills/arca", "VenueDown/xnas"]);
    let (_, q) = api
        .call("GET", "/api/v2/alerts?active=false", None, None)
        .await;
    assert_eq!(names(&q), ["SlowFills/xnas"]);
    let (_, q) = api
        .call(
            "GET",
            "/api/v2/alerts?filter=alertname%3D%22SlowFills%22&filter=venue%3D~%22a.*%22",
            None,
            None,
        )
        .await;
    assert_eq!(names(&q), ["SlowFills/arca"]);
    // Receivers: the pager for a critical alert (continue), then the fx desk by team.
    let (_, q) = api
        .call("GET", "/api/v2/alerts?receiver=pager", None, None)
        .await;
    assert_eq!(names(&q), ["VenueDown/xnas"]);
    assert_eq!(
        q[0]["receivers"],
        json!([{"name": "pager"}, {"name": "fx-desk"}])
    );
    let (_, q) = api
        .call("GET", "/api/v2/alerts?receiver=fx-.*", None, None)
        .await;
    assert_eq!(names(&q), ["SlowFills/arca", "VenueDown/xnas"]);
    let (_, q) = api
        .call("GET", "/api/v2/alerts?receiver=desk", None, None)
        .await;
    assert_eq!(names(&q), ["SlowFills/xnas"]);

    let (status, body) = api
        .call("GET", "/api/v2/alerts?filter=%3Dx", None, None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, "bad matcher format: =x");
    let (status, body) = api
        .call("GET", "/api/v2/alerts?receiver=(", None, None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.as_str()
            .unwrap()
            .starts_with("failed to parse receiver param: "),
        "{body}"
    );
    let (status, body) = api
        .call("GET", "/api/v2/alerts?silenced=maybe", None, None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, "silenced in query must be of type bool: \"maybe\"");

    // Groups: per route, sorted by labels then receiver; each alert with its receivers.
    let (status, groups) = api.call("GET", "/api/v2/alerts/groups", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let shape: Vec<(String, String, usize)> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["labels"]["alertname"].as_str().unwrap().to_owned(),
                g["receiver"]["name"].as_str().unwrap().to_owned(),
                g["alerts"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("SlowFills".to_owned(), "desk".to_owned(), 1),
            ("SlowFills".to_owned(), "fx-desk".to_owned(), 1),
            ("VenueDown".to_owned(), "fx-desk".to_owned(), 1),
            ("VenueDown".to_owned(), "pager".to_owned(), 1),
        ]
    );
    assert_eq!(
        groups[2]["alerts"][0]["receivers"],
        json!([{"name": "fx-desk"}, {"name": "pager"}])
    );
    let (_, groups) = api
        .call("GET", "/api/v2/alerts/groups?receiver=pager", None, None)
        .await;
    assert_eq!(groups.as_array().unwrap().len(), 1);
    assert_eq!(
        groups[0]["alerts"][0]["receivers"],
        json!([{"name": "pager"}])
    );
}

#[tokio::test]
async fn silences_are_created_updated_listed_and_expired() {
    let api = router(Tokens::default());
    let silence = |id: Option<&str>, end: i64| {
        let mut s = json!({
            "matchers": [{"name": "venue", "value": "xnas", "isRegex": false, "isEqual": true},
                         {"name": "alertname", "value": "Slow.*", "isRegex": true}],
            "startsAt": in_minutes(0),
            "endsAt": in_minutes(end),
            "createdBy": "desk",
            "comment": "venue maintenance",
        });
        if let Some(id) = id {
            s["id"] = json!(id);
        }
        s
    };
    let (status, body) = api
        .call("POST", "/api/v2/silences", None, Some(silence(None, 60)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["silenceID"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    api.call(
        "POST",
        "/api/v2/alerts",
        None,
        Some(json!([{"labels": {"alertname": "SlowFills", "venue": "xnas"}}])),
    )
    .await;
    let (_, alerts) = api.call("GET", "/api/v2/alerts", None, None).await;
    assert_eq!(
        alerts[0]["status"],
        json!({"state": "suppressed", "silencedBy": [id], "inhibitedBy": []})
    );
    let (_, alerts) = api
        .call("GET", "/api/v2/alerts?silenced=false", None, None)
        .await;
    assert_eq!(alerts, json!([]));

    let (status, got) = api
        .call("GET", &format!("/api/v2/silence/{id}"), None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["status"]["state"], "active");
    assert_eq!(got["createdBy"], "desk");
    assert_eq!(got["comment"], "venue maintenance");
    assert_eq!(
        got["matchers"],
        json!([{"name": "venue", "value": "xnas", "isRegex": false, "isEqual": true},
               {"name": "alertname", "value": "Slow.*", "isRegex": true, "isEqual": true}])
    );
    // Extending it keeps the id (same matchers, same start).
    let mut longer = got.clone();
    longer["endsAt"] = json!(in_minutes(120));
    let (status, body) = api
        .call("POST", "/api/v2/silences", None, Some(longer))
        .await;
    assert_eq!(
        (status, body["silenceID"].as_str()),
        (StatusCode::OK, Some(id.as_str()))
    );
    // Listing filters by the silence's own matchers.
    let (_, list) = api
        .call("GET", "/api/v2/silences?filter=venue%3Dxnas", None, None)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, list) = api
        .call("GET", "/api/v2/silences?filter=venue%3Darca", None, None)
        .await;
    assert_eq!(list, json!([]));

    // Refusals, with Alertmanager's messages.
    let cases = [
        (
            {
                let mut s = silence(None, -5);
                s["startsAt"] = json!(in_minutes(-10));
                s
            },
            StatusCode::BAD_REQUEST,
            json!("Failed to create silence: end time can't be in the past"),
        ),
        (
            {
                let mut s = silence(None, 5);
                s["endsAt"] = s["startsAt"].clone();
                s
            },
            StatusCode::BAD_REQUEST,
            json!("Failed to create silence: start time must be before end time"),
        ),
        (
            silence(Some("00000000-0000-4000-8000-000000000000"), 5),
            StatusCode::NOT_FOUND,
            json!("silence not found"),
        ),
        (
            {
                let mut s = silence(None, 5);
                s["matchers"] = json!([{"name": "a", "value": "", "isRegex": false}]);
                s
            },
            StatusCode::BAD_REQUEST,
            json!("silence invalid: at least one matcher must not match the empty string"),
        ),
    ];
    for (body, want_status, want) in cases {
        let (status, got) = api.call("POST", "/api/v2/silences", None, Some(body)).await;
        assert_eq!((status, got), (want_status, want));
    }

    let (status, _) = api
        .call("DELETE", &format!("/api/v2/silence/{id}"), None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, got) = api
        .call("GET", &format!("/api/v2/silence/{id}"), None, None)
        .await;
    assert_eq!(got["status"]["state"], "expired");
    let (status, body) = api
        .call("DELETE", &format!("/api/v2/silence/{id}"), None, None)
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!(format!("silence {id} already expired"))
        )
    );
    let (status, body) = api.call("DELETE", "/api/v2/silence/nope", None, None).await;
    assert_eq!((status, body), (StatusCode::NOT_FOUND, Value::Null));
    let (status, body) = api.call("GET", "/api/v2/silence/nope", None, None).await;
    assert_eq!((status, body), (StatusCode::NOT_FOUND, Value::Null));
    let (_, alerts) = api.call("GET", "/api/v2/alerts", None, None).await;
    assert_eq!(alerts[0]["status"]["state"], "active");
}

#[tokio::test]
async fn status_and_receivers() {
    let api = router(Tokens::default());
    let (status, body) = api.call("GET", "/api/v2/status", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["cluster"], json!({"status": "disabled", "peers": []}));
    assert_eq!(body["config"]["original"], "route:\n  receiver: desk\n");
    assert_eq!(body["uptime"], "2026-11-23T08:00:00.000Z");
    assert_eq!(body["versionInfo"]["version"], env!("CARGO_PKG_VERSION"));
    for key in ["revision", "branch", "buildUser", "buildDate", "goVersion"] {
        assert!(body["versionInfo"][key].is_string(), "{key}");
    }
    let (_, body) = api.call("GET", "/api/v2/receivers", None, None).await;
    assert_eq!(
        body,
        json!([{"name": "desk"}, {"name": "pager"}, {"name": "fx-desk"}])
    );
}

/// A method, a path, a body, the tokens let in and the tokens refused.
type Case<'a> = (
    &'a str,
    &'a str,
    Option<Value>,
    &'a [&'a str],
    &'a [Option<&'a str>],
);

#[tokio::test]
async fn each_endpoint_takes_its_token() {
    let api = router(tokens());
    let alert = json!([{"labels": {"alertname": "X"}}]);
    let silence = json!({
        "matchers": [{"name": "alertname", "value": "X", "isRegex": false}],
        "startsAt": in_minutes(0), "endsAt": in_minutes(10), "createdBy": "a", "comment": "c",
    });
    let cases: [Case; 8] = [
        (
            "POST",
            "/api/v2/alerts",
            Some(alert),
            &["ingest-t", "admin-t"],
            &[None, Some("read-t")],
        ),
        (
            "POST",
            "/api/v2/silences",
            Some(silence),
            &["admin-t"],
            &[None, Some("ingest-t"), Some("read-t")],
        ),
        (
            "GET",
            "/api/v2/alerts",
            None,
            &["read-t", "admin-t"],
            &[None, Some("ingest-t")],
        ),
        (
            "GET",
            "/api/v2/alerts/groups",
            None,
            &["read-t"],
            &[None, Some("ingest-t")],
        ),
        (
            "GET",
            "/api/v2/silences",
            None,
            &["read-t"],
            &[None, Some("ingest-t")],
        ),
        ("GET", "/api/v2/status", None, &["read-t"], &[None]),
        (
            "GET",
            "/api/v2/receivers",
            None,
            &["read-t"],
            &[None, Some("wrong")],
        ),
        (
            "DELETE",
            "/api/v2/silence/x",
            None,
            &[],
            &[None, Some("read-t"), Some("ingest-t")],
        ),
    ];
    for (method, path, body, good, bad) in cases {
        for token in bad {
            let (status, _) = api.call(method, path, *token, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}"
            );
        }
        for token in good {
            let (status, got) = api.call(method, path, Some(token), body.clone()).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{method} {path} with {token}: {got}"
            );
        }
    }
    let (status, _) = api
        .call("DELETE", "/api/v2/silence/x", Some("admin-t"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------------------------------------
// A running tradewatch, with real clients
// ---------------------------------------------------------------------------------------------

const ADMIN: &str = "s3cret-admin";
const INGEST: &str = "s3cret-ingest";
const READ: &str = "s3cret-read";

/// Writes an alertmanager.yml, tokens and a tradewatch configuration under `dir`.
fn write_config(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("alertmanager.yml"), ROUTING).unwrap();
    std::fs::write(dir.join("admin.token"), format!("{ADMIN}\n")).unwrap();
    std::fs::write(dir.join("ingest.token"), format!("{INGEST}\n")).unwrap();
    std::fs::write(dir.join("read.token"), format!("{READ}\n")).unwrap();
    std::fs::write(
        dir.join("amtool-http.yml"),
        format!("authorization:\n  credentials: {ADMIN}\n"),
    )
    .unwrap();
    let config = dir.join("tradewatch.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  auth:\n    admin_token_file: {}\n    ingest_token_file: {}\n    read_token_file: {}\nsidecar:\n  rule_files: []\nnotifier:\n  config_file: alertmanager.yml\n",
            dir.join("admin.token").display(),
            dir.join("ingest.token").display(),
            dir.join("read.token").display(),
        ),
    )
    .unwrap();
    config
}

/// Runs amtool against `url` with the admin token; gives (success, stdout, stderr).
fn amtool(dir: &Path, url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("amtool")
        .arg(format!("--alertmanager.url={url}"))
        .arg(format!(
            "--http.config.file={}",
            dir.join("amtool-http.yml").display()
        ))
        .args(args)
        .env("HOME", dir)
        .output()
        .expect("amtool runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn amtool_ok(dir: &Path, url: &str, args: &[&str]) -> String {
    let (ok, out, err) = amtool(dir, url, args);
    assert!(ok, "amtool {args:?} failed:\n{out}\n{err}");
    out
}

fn amtool_json(dir: &Path, url: &str, args: &[&str]) -> Value {
    let mut all = vec!["-o", "json"];
    all.extend_from_slice(args);
    let out = amtool_ok(dir, url, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("amtool {args:?}: {e}\n{out}"))
}

fn alertnames(alerts: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap_or("").to_owned(),
                a["status"]["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_works_against_tradewatch() {
    if !support::available("amtool_works_against_tradewatch", &[&AMTOOL]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = write_config(d);
    let data = d.join("data");
    let run = Exporter::start_role("run", &data, &["--config", config.to_str().unwrap()]).await;
    let url = run.url("");

    // Without the token, amtool is refused.
    let (ok, _, err) = {
        let out = Command::new("amtool")
            .args([&format!("--alertmanager.url={url}"), "alert", "query"])
            .env("HOME", d)
            .output()
            .unwrap();
        (
            out.status.success(),
            (),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(!ok, "amtool without a token was let in");
    assert!(err.contains("401"), "{err}");

    amtool_ok(
        d,
        &url,
        &[
            "alert",
            "add",
            "alertname=DeskDown",
            "desk=fx",
            "severity=critical",
            "--annotation=summary=FX desk is down",
        ],
    );
    amtool_ok(
        d,
        &url,
        &["alert", "add", "alertname=SlowFills", "desk=rates"],
    );
    let alerts = amtool_json(d, &url, &["alert", "query"]);
    assert_eq!(
        alertnames(&alerts),
        [
            ("DeskDown".into(), "active".into()),
            ("SlowFills".into(), "active".into())
        ],
        "{alerts:#}"
    );
    let desk = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "DeskDown")
        .unwrap();
    assert_eq!(desk["annotations"]["summary"], "FX desk is down");
    assert_eq!(desk["receivers"], json!([{"name": "pager"}]));
    let simple = amtool_ok(d, &url, &["alert", "query", "alertname=DeskDown"]);
    assert!(
        simple.contains("DeskDown") && simple.contains("FX desk is down"),
        "{simple}"
    );
    assert!(!simple.contains("SlowFills"), "{simple}");

    // A silence: amtool prints its id; the alert is suppressed and leaves the default query.
    let id = amtool_ok(
        d,
        &url,
        &[
            "silence",
            "add",
            "desk=fx",
            "--author=ops",
            "--comment=desk move",
            "--duration=1h",
        ],
    )
    .trim()
    .to_owned();
    assert_eq!(id.len(), 36, "{id}");
    let silences = amtool_json(d, &url, &["silence", "query"]);
    assert_eq!(silences[0]["id"], id.as_str());
    assert_eq!(silences[0]["status"]["state"], "active");
    assert_eq!(silences[0]["createdBy"], "ops");
    assert_eq!(silences[0]["comment"], "desk move");
    assert_eq!(
        silences[0]["matchers"],
        json!([{"name": "desk", "value": "fx", "isRegex": false, "isEqual": true}])
    );
    let quiet = amtool_ok(d, &url, &["silence", "query", "-q", "desk=fx"]);
    assert_eq!(quiet.trim(), id);
    let alerts = amtool_json(d, &url, &["alert", "query"]);
    assert_eq!(alertnames(&alerts), [("SlowFills".into(), "active".into())]);
    let alerts = amtool_json(d, &url, &["alert", "query", "--silenced"]);
    let desk = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "DeskDown")
        .unwrap();
    assert_eq!(desk["status"]["state"], "suppressed");
    assert_eq!(desk["status"]["silencedBy"], json!([id]));

    // Updated in place (same matchers and start): the id stays, the end moves.
    let before = amtool_json(d, &url, &["silence", "query"])[0]["endsAt"].clone();
    let updated = amtool_ok(d, &url, &["silence", "update", &id, "--duration=3h"]);
    assert!(updated.contains(&id), "{updated}");
    let after = amtool_json(d, &url, &["silence", "query"]);
    assert_eq!(after.as_array().unwrap().len(), 1);
    assert_eq!(after[0]["id"], id.as_str());
    assert_ne!(after[0]["endsAt"], before);

    // The silence survives a restart (it is in state.db).
    let mut run = run;
    run.process.terminate(Duration::from_secs(20)).await;
    let run = Exporter::start_role("run", &data, &["--config", config.to_str().unwrap()]).await;
    let url = run.url("");
    let after = amtool_json(d, &url, &["silence", "query"]);
    assert_eq!(after[0]["id"], id.as_str(), "{after:#}");

    // Expired: gone from the default query, listed with --expired.
    amtool_ok(d, &url, &["silence", "expire", &id]);
    assert_eq!(amtool_json(d, &url, &["silence", "query"]), json!([]));
    let expired = amtool_json(d, &url, &["silence", "query", "--expired"]);
    assert_eq!(expired[0]["status"]["state"], "expired");
    let (ok, _, err) = amtool(
        d,
        &url,
        &["silence", "expire", "00000000-0000-4000-8000-000000000000"],
    );
    assert!(!ok && err.contains("404"), "{err}");

    // The configuration, as amtool reads it from /api/v2/status.
    let shown = amtool_ok(d, &url, &["config", "show"]);
    assert!(shown.contains("receiver: fx-desk"), "{shown}");
    assert!(
        shown.contains("<secret>") && !shown.contains("hunter2"),
        "{shown}"
    );
    let routes = amtool_ok(d, &url, &["config", "routes"]);
    assert!(
        routes.contains("pager") && routes.contains("fx-desk"),
        "{routes}"
    );
    let test = amtool_ok(d, &url, &["config", "routes", "test", "team=fx"]);
    assert_eq!(test.trim(), "fx-desk");
}

// ---------------------------------------------------------------------------------------------
// A real Prometheus sending alerts
// ---------------------------------------------------------------------------------------------

const PROMETHEUS: Needs = Needs {
    what: "prometheus",
    probe: &["prometheus", "--version"],
    install: "apt-get install prometheus",
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_delivers_its_alerts_to_tradewatch() {
    if !support::available(
        "prometheus_delivers_its_alerts_to_tradewatch",
        &[&PROMETHEUS],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = write_config(d);
    // The sidecar role alone, on its own listener.
    let run = Exporter::start_role(
        "sidecar",
        &d.join("data"),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    std::fs::write(
        d.join("prom.rules.yml"),
        "groups:\n  - name: always\n    interval: 1s\n    rules:\n      - alert: AlwaysFiring\n        expr: vector(1)\n        labels: {severity: info}\n        annotations: {summary: 'it fires'}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("prometheus.yml"),
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files: ['{}']\nalerting:\n  alertmanagers:\n    - api_version: v2\n      authorization: {{credentials_file: '{}'}}\n      static_configs:\n        - targets: ['{}']\n",
            d.join("prom.rules.yml").display(),
            d.join("ingest.token").display(),
            run.addr
        ),
    )
    .unwrap();
    let mut prometheus = None;
    for _ in 0..3 {
        let port = support::free_port();
        let mut command = Command::new("prometheus");
        command
            .arg(format!(
                "--config.file={}",
                d.join("prometheus.yml").display()
            ))
            .arg(format!("--storage.tsdb.path={}", d.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // The first send may come before the Alertmanager is discovered; resend soon.
            .arg("--rules.alert.resend-delay=1s");
        let mut p = Process::spawn("prometheus", command);
        match p
            .wait_ready(
                &format!("http://127.0.0.1:{port}/-/ready"),
                support::READY_DEADLINE,
            )
            .await
        {
            Ok(()) => {
                prometheus = Some(p);
                break;
            }
            Err(_) if p.log().contains("address already in use") => continue,
            Err(status) => panic!("prometheus exited ({status})\n{}", p.log()),
        }
    }
    let prometheus = prometheus.expect("prometheus started");
    let started = Instant::now();
    let alert = loop {
        let res = run
            .client()
            .get(run.url("/api/v2/alerts?filter=alertname%3DAlwaysFiring"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        if let Some(a) = body.as_array().and_then(|a| a.first()) {
            break a.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no alert from Prometheus\n--- prometheus ---\n{}\n--- tradewatch ---\n{}",
            prometheus.log(),
            run.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let labels: BTreeMap<String, String> = serde_json::from_value(alert["labels"].clone()).unwrap();
    assert_eq!(
        labels,
        BTreeMap::from([
            ("alertname".into(), "AlwaysFiring".into()),
            ("severity".into(), "info".into())
        ])
    );
    assert_eq!(alert["annotations"]["summary"], "it fires");
    assert!(
        alert["generatorURL"]
            .as_str()
            .unwrap()
            .contains("/graph?g0.expr=vector%281%29"),
        "{alert}"
    );
    assert_eq!(alert["status"]["state"], "active");
    assert_eq!(alert["receivers"], json!([{"name": "desk"}]));
}

// ---------------------------------------------------------------------------------------------
// tradewatch's own silence commands
// ---------------------------------------------------------------------------------------------

/// Runs `tradewatch ARGS`; gives (exit code, stdout, stderr).
fn tradewatch(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(support::BIN)
        .args(args)
        .env_remove("TRADEWATCH_URL")
        .env_remove("TRADEWATCH_TOKEN")
        .env_remove("TRADEWATCH_TOKEN_FILE")
        .env("NO_COLOR", "1")
        .output()
        .expect("tradewatch runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_commands_add_list_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = write_config(d);
    let run = Exporter::start_role(
        "run",
        &d.join("data"),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let url = run.url("");
    let admin = d.join("admin.token").display().to_string();
    let read = d.join("read.token").display().to_string();
    let conn = |token: &str| {
        vec![
            "--url".to_owned(),
            url.clone(),
            "--token-file".to_owned(),
            token.to_owned(),
        ]
    };
    let with = |args: &[&str], token: &str| {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(conn(token));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        tradewatch(&refs)
    };

    // The read token cannot silence.
    let (code, _, err) = with(&["silence", "add", "--comment", "x", "desk=fx"], &read);
    assert_eq!(code, 1);
    assert!(err.contains("asks for a token"), "{err}");

    let (code, out, err) = with(
        &[
            "silence",
            "add",
            "--duration",
            "2h",
            "--author",
            "ops",
            "--comment",
            "desk move",
            "DeskDown",
            "desk=~\"f.*\"",
        ],
        &admin,
    );
    assert_eq!(code, 0, "{err}");
    let id = out.trim().to_owned();
    assert_eq!(id.len(), 36, "{out}");
    let got: Value = run
        .client()
        .get(run.url(&format!("/api/v2/silence/{id}")))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["createdBy"], "ops");
    assert_eq!(
        got["matchers"],
        json!([{"name": "alertname", "value": "DeskDown", "isRegex": false, "isEqual": true},
               {"name": "desk", "value": "f.*", "isRegex": true, "isEqual": true}])
    );
    let t = |k: &str| chrono::DateTime::parse_from_rfc3339(got[k].as_str().unwrap()).unwrap();
    // Two hours from the command's now; the server starts it at its own (later) now.
    let length = (t("endsAt") - t("startsAt")).num_seconds();
    assert!((7170..=7200).contains(&length), "{got}");

    let (code, table, _) = with(&["silence", "list"], &read);
    assert_eq!(code, 0);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("MATCHERS"),
        "{table}"
    );
    assert!(
        lines[1].starts_with(&id)
            && lines[1].contains("alertname=\"DeskDown\" desk=~\"f.*\"")
            && lines[1].ends_with("desk move"),
        "{table}"
    );
    let (_, quiet, _) = with(&["silence", "list", "-q", "desk=~\"f.*\""], &read);
    assert_eq!(quiet.trim(), id);
    let (_, quiet, _) = with(&["silence", "list", "-q", "desk=fx"], &read);
    assert_eq!(quiet, "");

    let (code, _, err) = with(&["silence", "expire", &id], &admin);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = with(&["silence", "list"], &read);
    assert_eq!(out, "No silence is active or pending.\n");
    let (_, quiet, _) = with(&["silence", "list", "--expired", "-q"], &read);
    assert_eq!(quiet.trim(), id);
    let (code, _, err) = with(
        &["silence", "expire", "00000000-0000-4000-8000-000000000000"],
        &admin,
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("silence 00000000-0000-4000-8000-000000000000 not found"),
        "{err}"
    );
    let (code, _, err) = with(
        &[
            "silence",
            "add",
            "--end",
            "2020-01-01T00:00:00Z",
            "--comment",
            "late",
            "desk=fx",
        ],
        &admin,
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("400: Failed to create silence: start time must be before end time"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// tradewatch's own rule alerts
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_alerts_show_in_the_api_and_can_be_silenced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("alertmanager.yml"), ROUTING).unwrap();
    std::fs::write(
        d.join("risk.rules.yml"),
        "groups:\n  - name: risk\n    interval: 1s\n    rules:\n      - alert: TradingKillSwitchActive\n        expr: trading_kill_switch_active == 1\n        labels: {severity: critical}\n        annotations: {summary: 'Kill switch on {{ $labels.engine }}'}\n",
    )
    .unwrap();
    let config = d.join("tradewatch.yaml");
    std::fs::write(
        &config,
        format!(
            "sidecar:\n  rule_files: ['{}']\nnotifier:\n  config_file: alertmanager.yml\n",
            d.join("risk.rules.yml").display()
        ),
    )
    .unwrap();
    let run = Exporter::start_role(
        "run",
        &d.join("data"),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    run.post_all(&[json!({"type": "kill_switch", "engine": "alpha", "active": true})])
        .await;
    let get = |path: &'static str| {
        let request = run.client().get(run.url(path));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let started = Instant::now();
    let alert = loop {
        let alerts = get("/api/v2/alerts").await;
        if let Some(a) = alerts.as_array().and_then(|a| a.first()) {
            break a.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the rule alert never reached the notifier\n{}",
            run.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(alert["labels"]["alertname"], "TradingKillSwitchActive");
    assert_eq!(alert["labels"]["engine"], "alpha");
    assert_eq!(alert["annotations"]["summary"], "Kill switch on alpha");
    assert_eq!(alert["receivers"], json!([{"name": "pager"}]));
    assert_eq!(alert["status"]["state"], "active");
    let groups = get("/api/v2/alerts/groups").await;
    assert_eq!(groups[0]["receiver"]["name"], "pager");
    assert_eq!(
        groups[0]["labels"],
        json!({"alertname": "TradingKillSwitchActive"})
    );

    let silence = json!({
        "matchers": [{"name": "engine", "value": "alpha", "isRegex": false}],
        "startsAt": in_minutes(0), "endsAt": in_minutes(30), "createdBy": "desk", "comment": "drill",
    });
    let reply: Value = run
        .client()
        .post(run.url("/api/v2/silences"))
        .json(&silence)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = reply["silenceID"].as_str().unwrap();
    let alerts = get("/api/v2/alerts").await;
    assert_eq!(
        alerts[0]["status"],
        json!({"state": "suppressed", "silencedBy": [id], "inhibitedBy": []})
    );
}
