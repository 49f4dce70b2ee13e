//! One-tap action links on the real binary (`tradewatch run`): alerts posted to
//! `/api/v2/alerts` are notified by email (written as `.eml` files, read back with
//! `mail-parser`) and by webhook (a real HTTP receiver); the links in the received email open
//! a confirm page whose form POST acknowledges or silences the alert, once. An altered link is
//! refused with 403, an expired one with 410, a used one with 409, also after a restart; the
//! webhook payload carries the same links; every outcome is counted.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mail_parser::MessageParser;
use serde_json::{Value, json};
use support::{Exporter, Received};
use tradewatch::notify::action::{Action, ActionLinks, Claims, GENERATED_KEY_FILE};

fn write_config(dir: &Path, hook: &str) -> (String, PathBuf) {
    let emails = dir.join("emails");
    std::fs::write(
        dir.join("alertmanager.yml"),
        format!(
            r#"
route:
  receiver: desk
  group_by: ['...']
  group_wait: 0s
  group_interval: 1h
  repeat_interval: 4h
receivers:
  - name: desk
    email_configs:
      - to: trader@example.com
        from: tradewatch@example.com
        smarthost: 127.0.0.1:25
        require_tls: false
    webhook_configs:
      - url: '{hook}'
"#
        ),
    )
    .unwrap();
    let config = dir.join("tradewatch.yaml");
    std::fs::write(
        &config,
        format!(
            "sidecar:\n  rule_files: []\nnotifier:\n  config_file: alertmanager.yml\n  timezone: America/New_York\n  action_links: {{ttl: 1h}}\n  receivers:\n    desk: {{email: {{files_dir: '{}'}}}}\n",
            emails.display()
        ),
    )
    .unwrap();
    (config.display().to_string(), emails)
}

/// The text bodies of the emails written so far, by subject.
fn emails(dir: &Path) -> Vec<(String, String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let bytes = std::fs::read(e.ok()?.path()).ok()?;
            let m = MessageParser::default().parse(&bytes)?;
            Some((
                m.subject()?.to_owned(),
                m.body_text(0)?.into_owned(),
                m.body_html(0)?.into_owned(),
            ))
        })
        .collect()
}

/// The URL of the link labelled `label` in a text body (`Label: URL` lines).
fn link(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{label}: ")))
        .unwrap_or_else(|| panic!("no {label} link in\n{text}"))
        .trim()
        .to_owned()
}

async fn wait_for<T>(deadline: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if started.elapsed() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get(url: &str) -> (u16, String) {
    let r = support::client().get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn post(url: &str) -> (u16, String) {
    let r = support::client().post(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn metric(metrics: &str, outcome: &str) -> f64 {
    let prefix = format!("tradewatch_action_links_total{{outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_in_a_received_email_acknowledge_and_silence_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (hook, received): (String, Received) = support::webhook_receiver(0).await;
    let (config, email_dir) = write_config(dir.path(), &hook);
    let mut run = Exporter::start_role("run", &data, &["--config", &config]).await;
    assert!(
        data.join(GENERATED_KEY_FILE).exists(),
        "a signing key is generated into the data directory"
    );

    let now = chrono::Utc::now();
    let alerts = json!([
        {"labels": {"alertname": "TradingKillSwitchActive", "engine": "<b>alpha</b>"},
         "annotations": {"summary": "Kill switch engaged"},
         "startsAt": now.to_rfc3339(), "endsAt": (now + chrono::Duration::hours(2)).to_rfc3339()},
        {"labels": {"alertname": "TradingOrderRejectRateHigh", "engine": "beta"},
         "startsAt": now.to_rfc3339(), "endsAt": (now + chrono::Duration::hours(2)).to_rfc3339()},
    ]);
    let answer = run
        .client()
        .post(run.url("/api/v2/alerts"))
        .json(&alerts)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);

    let mails = wait_for(Duration::from_secs(20), || {
        let m = emails(&email_dir);
        (m.len() == 2).then_some(m)
    })
    .await
    .unwrap_or_else(|| panic!("two emails expected\n{}", run.log()));
    let kill = mails
        .iter()
        .find(|(s, _, _)| s.contains("TradingKillSwitchActive"))
        .unwrap();
    let reject = mails
        .iter()
        .find(|(s, _, _)| s.contains("TradingOrderRejectRateHigh"))
        .unwrap();
    let ack = link(&kill.1, "Acknowledge");
    assert!(
        ack.starts_with(&format!("{}/a/", run.url(""))),
        "links point at this process: {ack}"
    );
    for label in [
        "Acknowledge",
        "Silence 1h",
        "Silence 4h",
        "Silence until end of day",
    ] {
        assert!(
            kill.2.contains(&format!(">{label}</a>")),
            "html lacks {label}"
        );
    }

    // The webhook payload carries the links too.
    let hooked = wait_for(Duration::from_secs(20), || {
        let got = received.lock().unwrap().clone();
        (got.len() == 2).then_some(got)
    })
    .await
    .expect("two webhook notifications");
    for (_, body) in &hooked {
        let actions = body["alerts"][0]["actions"].as_array().unwrap();
        let labels: Vec<&str> = actions
            .iter()
            .map(|a| a["label"].as_str().unwrap())
            .collect();
        assert_eq!(
            labels,
            [
                "Acknowledge",
                "Silence 1h",
                "Silence 4h",
                "Silence until end of day"
            ]
        );
        assert!(actions[0]["url"].as_str().unwrap().contains("/a/"));
    }

    // The confirm page: the alert, escaped, and a form that POSTs to the same link.
    let (status, page) = get(&ack).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<meta name=\"viewport\""), "{page}");
    assert!(page.contains("<title>Acknowledge?</title>"), "{page}");
    assert!(page.contains("TradingKillSwitchActive"), "{page}");
    assert!(page.contains("&lt;b&gt;alpha&lt;/b&gt;"), "escaped: {page}");
    assert!(!page.contains("<b>alpha"), "{page}");
    assert!(page.contains("<form method=\"post\">"), "{page}");
    assert!(
        run.client()
            .get(run.url("/api/v1/acks"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["acks"]
            .as_array()
            .unwrap()
            .is_empty(),
        "showing the page does nothing"
    );

    // Pressing the button acknowledges the alert.
    let (status, page) = post(&ack).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<title>Acknowledged</title>"), "{page}");
    let acks: Value = run
        .client()
        .get(run.url("/api/v1/acks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(acks["acks"].as_array().unwrap().len(), 1, "{acks}");
    assert_eq!(acks["acks"][0]["author"], "action link");
    let fingerprint = hooked
        .iter()
        .map(|(_, b)| &b["alerts"][0])
        .find(|a| a["labels"]["alertname"] == "TradingKillSwitchActive")
        .unwrap()["fingerprint"]
        .clone();
    assert_eq!(acks["acks"][0]["fingerprint"], fingerprint);

    // Once only.
    assert_eq!(post(&ack).await.0, 409);
    assert_eq!(get(&ack).await.0, 409);

    // An altered link: 403.
    let mut altered = ack.clone().into_bytes();
    let at = altered.len() - 3;
    altered[at] = if altered[at] == b'x' { b'y' } else { b'x' };
    let altered = String::from_utf8(altered).unwrap();
    assert_eq!(get(&altered).await.0, 403);
    assert_eq!(post(&altered).await.0, 403);

    // An expired link, signed with this process's key: 410.
    let key = std::fs::read_to_string(data.join(GENERATED_KEY_FILE)).unwrap();
    let signer = ActionLinks::new(
        key.trim().as_bytes().to_vec(),
        Duration::from_secs(3600),
        &run.url(""),
        "UTC",
    )
    .unwrap();
    let expired = signer.sign(&Claims {
        action: Action::Acknowledge,
        fingerprint: fingerprint.as_str().unwrap().to_owned(),
        labels: [(
            "alertname".to_string(),
            "TradingKillSwitchActive".to_string(),
        )]
        .into(),
        expires: chrono::Utc::now().timestamp() - 1,
        id: "0123456789ab".into(),
    });
    assert_eq!(get(&run.url(&format!("/a/{expired}"))).await.0, 410);
    assert_eq!(post(&run.url(&format!("/a/{expired}"))).await.0, 410);

    // Silence the other alert for an hour from its email.
    let silence = link(&reject.1, "Silence 1h");
    let (status, page) = get(&silence).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<title>Silence for 1 hour?</title>"),
        "{page}"
    );
    let (status, page) = post(&silence).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<title>Silenced</title>"), "{page}");
    let silences: Value = run
        .client()
        .get(run.url("/api/v2/silences"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let silences = silences.as_array().unwrap();
    assert_eq!(silences.len(), 1, "{silences:?}");
    assert_eq!(silences[0]["createdBy"], "action link");
    assert_eq!(silences[0]["status"]["state"], "active");
    let mut matchers: Vec<(String, String)> = silences[0]["matchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                m["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    matchers.sort();
    assert_eq!(
        matchers,
        [
            (
                "alertname".to_string(),
                "TradingOrderRejectRateHigh".to_string()
            ),
            ("engine".to_string(), "beta".to_string())
        ]
    );
    let ends = chrono::DateTime::parse_from_rfc3339(silences[0]["endsAt"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let span = ends - chrono::Utc::now();
    assert!(
        span > chrono::Duration::minutes(55) && span <= chrono::Duration::minutes(60),
        "{span:?}"
    );

    let metrics = run.openmetrics().await;
    assert_eq!(metric(&metrics, "done"), 2.0, "{metrics}");
    assert_eq!(metric(&metrics, "used"), 2.0);
    assert_eq!(metric(&metrics, "bad_signature"), 2.0);
    assert_eq!(metric(&metrics, "expired"), 2.0);
    assert_eq!(metric(&metrics, "shown"), 2.0);

    // After a restart the same key is used and a used link stays used.
    run.process.terminate(Duration::from_secs(30)).await;
    let run = Exporter::start_role("run", &data, &["--config", &config]).await;
    let ack = ack.replacen(&ack[..ack.find("/a/").unwrap()], &run.url(""), 1);
    assert_eq!(post(&ack).await.0, 409, "used before the restart");
    let four_hours = link(&reject.1, "Silence 4h");
    let four_hours = four_hours.replacen(
        &four_hours[..four_hours.find("/a/").unwrap()],
        &run.url(""),
        1,
    );
    assert_eq!(
        get(&four_hours).await.0,
        200,
        "the key survived the restart"
    );
}

// ---------------------------------------------------------------------------------------------
// Once, in-process: a refused action leaves the link usable; concurrent uses act once
// ---------------------------------------------------------------------------------------------

fn notifier(dir: &Path) -> tradewatch::notify::pipeline::Notifier {
    let am = tradewatch::notify::config::AlertmanagerConfig::parse(
        "route: {receiver: desk, group_wait: 0s}\nreceivers: [{name: desk}]\n",
        "alertmanager.yml",
    )
    .unwrap();
    tradewatch::notify::pipeline::Notifier::open(
        &dir.join("state.db"),
        am,
        tradewatch::notify::outbox::OutboxSettings::default(),
        None,
        None,
        chrono::Utc::now(),
    )
    .unwrap()
}

fn firing(engine: &str) -> tradewatch::notify::Alert {
    let now = chrono::Utc::now();
    tradewatch::notify::Alert {
        labels: [
            (
                "alertname".to_string(),
                "TradingKillSwitchActive".to_string(),
            ),
            ("engine".to_string(), engine.to_string()),
        ]
        .into(),
        annotations: Default::default(),
        starts_at: now - chrono::Duration::minutes(1),
        ends_at: now + chrono::Duration::hours(1),
        updated_at: now,
        generator_url: String::new(),
        timeout: false,
    }
}

fn claims_for(links: &ActionLinks, alert: &tradewatch::notify::Alert, label: &str) -> Claims {
    let now = chrono::Utc::now();
    let made = links.for_alert(alert, now);
    let url = &made.iter().find(|l| l.label == label).unwrap().url;
    links.verify(url.rsplit('/').next().unwrap(), now).unwrap()
}

#[test]
fn a_refused_action_keeps_the_link_and_concurrent_uses_act_once() {
    use tradewatch::notify::pipeline::{ActionDone, ActionFailure};
    let dir = tempfile::tempdir().unwrap();
    let notifier = std::sync::Arc::new(notifier(dir.path()));
    let links = std::sync::Arc::new(
        ActionLinks::new(
            b"a-key-for-this-test-only".to_vec(),
            Duration::from_secs(600),
            "http://trading-box:9470",
            "UTC",
        )
        .unwrap(),
    );
    let alpha = firing("alpha");
    let ack = claims_for(&links, &alpha, "Acknowledge");

    // The alert is not (yet) held by the notifier: refused, and the link is not spent.
    let now = chrono::Utc::now();
    match notifier.perform_action(&ack, &links, now) {
        Err(ActionFailure::Refused(reason)) => {
            assert!(
                reason.starts_with("no firing alert has fingerprint"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(!notifier.action_link_used(&ack.id).unwrap());

    notifier.receive(vec![alpha.clone()], now);
    assert_eq!(
        notifier.perform_action(&ack, &links, now).unwrap(),
        ActionDone::Acknowledged
    );
    assert!(notifier.action_link_used(&ack.id).unwrap());
    assert!(matches!(
        notifier.perform_action(&ack, &links, now),
        Err(ActionFailure::Used)
    ));

    // The same silence link pressed on two phones at once: one silence.
    let silence = claims_for(&links, &firing("beta"), "Silence 4h");
    let outcomes: Vec<_> = (0..4)
        .map(|_| {
            let (notifier, links, silence) = (notifier.clone(), links.clone(), silence.clone());
            std::thread::spawn(move || {
                notifier.perform_action(&silence, &links, chrono::Utc::now())
            })
        })
        .map(|t| t.join().unwrap())
        .collect();
    let done = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(ActionDone::Silenced { .. })))
        .count();
    let used = outcomes
        .iter()
        .filter(|o| matches!(o, Err(ActionFailure::Used)))
        .count();
    assert_eq!((done, used), (1, 3), "{outcomes:?}");
    let silences = notifier.with_dispatcher(|d| d.silences().iter().count());
    assert_eq!(silences, 1);

    // Kept in state.db: a notifier opened again on it refuses the used links.
    drop(notifier);
    let again = self::notifier(dir.path());
    assert!(again.action_link_used(&ack.id).unwrap());
    assert!(again.action_link_used(&silence.id).unwrap());
}
