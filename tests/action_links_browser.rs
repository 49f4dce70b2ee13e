//! One-tap action links in a real browser: `tradewatch run` notifies an alert by email (an
//! `.eml` file read back with `mail-parser`); headless Chromium, driven over WebDriver by
//! Debian's `chromedriver`, opens the email's Acknowledge link at a phone's size and presses the
//! confirm page's button; the alert is then acknowledged. The same link opened again, an altered
//! link and an expired one show pages that refuse, and acknowledge nothing more.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mail_parser::MessageParser;
use serde_json::{Value, json};
use support::Exporter;
use tradewatch::notify::action::{Action, ActionLinks, Claims, GENERATED_KEY_FILE};

const CHROMIUM: support::Needs = support::Needs {
    what: "chromium",
    probe: &["chromium", "--version"],
    install: "apt-get install chromium",
};

const CHROMEDRIVER: support::Needs = support::Needs {
    what: "chromedriver",
    probe: &["chromedriver", "--version"],
    install: "apt-get install chromium-driver",
};

/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one headless Chromium session on it.
struct Browser {
    driver: Child,
    url: String,
    session: String,
    client: reqwest::Client,
}

impl Browser {
    async fn start() -> Browser {
        let port = support::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{url}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not answer"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=390,844"],
            },
        }}});
        let r: Value = client
            .post(format!("{url}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_owned();
        Browser {
            driver,
            url,
            session,
            client,
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.url, self.session);
        let mut request = self.client.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r: Value = request.send().await.unwrap().json().await.unwrap();
        assert!(r["value"].get("error").is_none(), "{path}: {r}");
        r["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn title(&self) -> String {
        let v = self.command(reqwest::Method::GET, "/title", None).await;
        v.as_str().unwrap().to_owned()
    }

    async fn text(&self) -> String {
        let body = self
            .command(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": "body"})),
            )
            .await;
        let id = body[ELEMENT].as_str().unwrap().to_owned();
        let v = self
            .command(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await;
        v.as_str().unwrap().to_owned()
    }

    /// Presses the submit button of the page's form.
    async fn press(&self) {
        let button = self
            .command(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector",
                            "value": "form button, form input[type=submit]"})),
            )
            .await;
        let id = button[ELEMENT].as_str().unwrap().to_owned();
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Waits until the page's title is `title`.
    async fn wait_title(&self, title: &str) {
        let started = Instant::now();
        loop {
            let now = self.title().await;
            if now == title {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "title {now:?}, waited for {title:?}\n{}",
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn write_config(dir: &Path) -> String {
    std::fs::write(
        dir.join("alertmanager.yml"),
        "route:\n  receiver: desk\n  group_by: ['...']\n  group_wait: 0s\n  group_interval: 1h\n  repeat_interval: 4h\nreceivers:\n  - name: desk\n    email_configs:\n      - to: trader@example.com\n        from: tradewatch@example.com\n        smarthost: 127.0.0.1:25\n        require_tls: false\n",
    )
    .unwrap();
    let config = dir.join("tradewatch.yaml");
    std::fs::write(
        &config,
        format!(
            "sidecar:\n  rule_files: []\nnotifier:\n  config_file: alertmanager.yml\n  action_links: {{ttl: 1h}}\n  receivers:\n    desk: {{email: {{files_dir: '{}'}}}}\n",
            dir.join("emails").display()
        ),
    )
    .unwrap();
    config.display().to_string()
}

/// The `href` of the HTML link whose text is `label`.
fn html_link(html: &str, label: &str) -> String {
    let end = html
        .find(&format!(">{label}</a>"))
        .unwrap_or_else(|| panic!("no {label} link in\n{html}"));
    let start = html[..end].rfind("href=\"").expect("an href") + "href=\"".len();
    let href = &html[start..];
    href[..href.find('"').unwrap()].replace("&amp;", "&")
}

async fn acks(run: &Exporter) -> Vec<Value> {
    let v: Value = run
        .client()
        .get(run.url("/api/v1/acks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["acks"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_opened_from_an_email_in_a_browser_acknowledges_the_alert() {
    let test = "a_link_opened_from_an_email_in_a_browser_acknowledges_the_alert";
    if !support::available(test, &[&CHROMIUM, &CHROMEDRIVER]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = write_config(dir.path());
    let run = Exporter::start_role("run", &data, &["--config", &config]).await;
    let now = chrono::Utc::now();
    let r = run
        .client()
        .post(run.url("/api/v2/alerts"))
        .json(&json!([{
            "labels": {"alertname": "TradingKillSwitchActive", "engine": "alpha"},
            "annotations": {"summary": "Kill switch engaged on alpha"},
            "startsAt": now.to_rfc3339(),
            "endsAt": (now + chrono::Duration::hours(2)).to_rfc3339(),
        }]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let started = Instant::now();
    let html = loop {
        let found = std::fs::read_dir(dir.path().join("emails"))
            .into_iter()
            .flatten()
            .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
            .find_map(|bytes| {
                Some(
                    MessageParser::default()
                        .parse(&bytes)?
                        .body_html(0)?
                        .into_owned(),
                )
            });
        if let Some(html) = found {
            break html;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no email\n{}",
            run.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ack = html_link(&html, "Acknowledge");
    assert!(ack.starts_with(&run.url("/a/")), "{ack}");

    let browser = Browser::start().await;
    browser.open(&ack).await;
    browser.wait_title("Acknowledge?").await;
    let page = browser.text().await;
    assert!(page.contains("TradingKillSwitchActive"), "{page}");
    assert!(acks(&run).await.is_empty(), "opening the page does nothing");

    browser.press().await;
    browser.wait_title("Acknowledged").await;
    let done = acks(&run).await;
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["author"], "action link");

    // The same link again, an altered one and an expired one: refused, nothing more acknowledged.
    browser.open(&ack).await;
    let used = (browser.title().await, browser.text().await);
    let mut altered = ack.clone().into_bytes();
    let at = altered.len() - 3;
    altered[at] = if altered[at] == b'x' { b'y' } else { b'x' };
    browser.open(&String::from_utf8(altered).unwrap()).await;
    let forged = (browser.title().await, browser.text().await);
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
        fingerprint: done[0]["fingerprint"].as_str().unwrap().to_owned(),
        labels: [("alertname".into(), "TradingKillSwitchActive".into())].into(),
        expires: chrono::Utc::now().timestamp() - 1,
        id: "0123456789ab".into(),
    });
    browser.open(&run.url(&format!("/a/{expired}"))).await;
    let late = (browser.title().await, browser.text().await);
    for (title, text) in [&used, &forged, &late] {
        assert!(
            !title.is_empty() && !title.contains('?') && title != "Acknowledged",
            "a refusing page, not a confirm page: {title:?} {text:?}"
        );
    }
    assert!(used.1.contains("already used"), "{used:?}");
    assert!(late.1.contains("expired"), "{late:?}");
    assert!(
        !forged.1.contains("expired") && !forged.1.contains("already used"),
        "{forged:?}"
    );
    assert_eq!(acks(&run).await.len(), 1);
    let _ = browser.command(reqwest::Method::DELETE, "", None).await;
}
