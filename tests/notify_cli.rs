//! `tradewatch notify test` and `tradewatch notify template render`, run as the real binary
//! against a real SMTP server on loopback (a small RFC 5321 receiver written here, plain
//! SMTP, the received MIME read back with `mail-parser`) and a real HTTP webhook receiver that
//! verifies the HMAC signature.

mod support;

use std::path::Path;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use mail_parser::MessageParser;
use parking_lot::Mutex;
use serde_json::Value;
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const SECRET: &str = "s3cret-for-signing";

/// A request a webhook receiver got: its headers and the exact body bytes.
type Request = (axum::http::HeaderMap, Vec<u8>);

/// A plain SMTP receiver: EHLO/HELO, MAIL, RCPT, DATA (dot-unstuffed), RSET, NOOP, QUIT; every
/// message's data is kept.
async fn smtp_server() -> (std::net::SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let store = store.clone();
            tokio::spawn(async move {
                let _ = session(socket, &store).await;
            });
        }
    });
    (addr, received)
}

async fn session(
    socket: tokio::net::TcpStream,
    store: &Mutex<Vec<Vec<u8>>>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 mx.test ESMTP ready\r\n").await?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let answer: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250 mx.test\r\n",
            "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 2.0.0 Ok\r\n",
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = Vec::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                    data.extend_from_slice(unstuffed.as_bytes());
                }
                store.lock().push(data);
                b"250 2.0.0 Ok: queued as 7C1D\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 Command not recognized\r\n",
        };
        write.write_all(answer).await?;
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The routing file and the tradewatch configuration naming it; gives the configuration.
fn write_config(dir: &Path, smtp: std::net::SocketAddr, hook: &str) -> String {
    std::fs::write(dir.join("webhook.secret"), format!("{SECRET}\n")).unwrap();
    std::fs::write(
        dir.join("alertmanager.yml"),
        format!(
            r#"
route:
  receiver: trader-email
receivers:
  - name: trader-email
    email_configs:
      - to: trader@example.com
        from: tradewatch <alerts@example.com>
        smarthost: '{smtp}'
        require_tls: false
  - name: ops-webhook
    webhook_configs:
      - url: '{hook}'
  - name: unreachable
    webhook_configs:
      - url: 'http://127.0.0.1:{closed}/hook'
  - name: nobody
"#,
            closed = closed_port()
        ),
    )
    .unwrap();
    let config = dir.join("tradewatch.yaml");
    std::fs::write(
        &config,
        format!(
            "notifier:\n  config_file: alertmanager.yml\n  external_url: http://trading-box:9470\n  timezone: America/New_York\n  receivers:\n    ops-webhook: {{webhook: {{secret_file: '{}'}}}}\n",
            dir.join("webhook.secret").display()
        ),
    )
    .unwrap();
    config.display().to_string()
}

/// Runs the binary with `args`; gives its exit code, standard output and standard error.
async fn tradewatch(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    // Run off the runtime's threads: the servers the command talks to run on them.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(support::BIN)
            .args(&args)
            .env_remove("TRADEWATCH_CONFIG")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_test_sends_a_sample_email_through_real_smtp() {
    let dir = tempfile::tempdir().unwrap();
    let (smtp, received) = smtp_server().await;
    let (hook, _) = support::webhook_receiver(0).await;
    let config = write_config(dir.path(), smtp, &hook);

    let (code, out, err) = tradewatch(&[
        "notify",
        "test",
        "--config",
        &config,
        "--receiver",
        "trader-email",
    ])
    .await;
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("email[0]: delivered: 250 2.0.0 Ok: queued as 7C1D"),
        "{out}"
    );
    let messages = received.lock().clone();
    assert_eq!(messages.len(), 1);
    let message = MessageParser::default().parse(&messages[0]).unwrap();
    assert_eq!(
        message.subject(),
        Some("[FIRING:2] TradingDailyLossLimitBreached strategy=momentum")
    );
    let id = out
        .split("(id ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap();
    assert_eq!(
        message.message_id(),
        Some(format!("tradewatch.{id}@example.com").as_str())
    );
    let text = message.body_text(0).unwrap();
    assert!(
        text.contains("CRITICAL TradingDailyLossLimitBreached"),
        "{text}"
    );
    assert!(text.contains("  engine=eng-2"), "{text}");
    let html = message.body_html(0).unwrap();
    assert!(
        html.contains("href=\"http://localhost:3000/d/tradewatch-risk?var-engine=eng-1\""),
        "the configured default template with its Dashboard button:\n{html}"
    );
    assert!(html.contains("href=\"http://trading-box:9470\""), "{html}");

    // A second test is a new notification, not a retry of the first.
    let (code, out2, _) = tradewatch(&[
        "notify",
        "test",
        "--config",
        &config,
        "--receiver",
        "trader-email",
    ])
    .await;
    assert_eq!(code, 0);
    assert_ne!(out, out2, "a new id each time");
    assert_eq!(received.lock().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_test_posts_a_signed_sample_to_a_real_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let (smtp, mail) = smtp_server().await;
    // A receiver that verifies the signature over the exact bytes it got.
    let got: Arc<Mutex<Vec<Request>>> = Arc::default();
    let store = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
                store.lock().push((headers, body.to_vec()));
                "ok"
            },
        ),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = write_config(dir.path(), smtp, &hook);

    let (code, out, err) = tradewatch(&[
        "notify",
        "test",
        "--config",
        &config,
        "--receiver",
        "ops-webhook",
    ])
    .await;
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("webhook[0]: delivered: 200 OK"), "{out}");
    assert!(mail.lock().is_empty(), "only the named receiver is tried");
    let got = got.lock().clone();
    assert_eq!(got.len(), 1);
    let (headers, body) = &got[0];
    let ts = headers["x-tradewatch-timestamp"].to_str().unwrap();
    let hex = headers["x-tradewatch-signature"]
        .to_str()
        .unwrap()
        .strip_prefix("sha256=")
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        hex, want,
        "the signature verifies with the configured secret"
    );
    let payload: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(payload["version"], "4");
    assert_eq!(payload["receiver"], "ops-webhook");
    assert_eq!(payload["status"], "firing");
    assert_eq!(payload["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(payload["externalURL"], "http://trading-box:9470");
    assert!(
        headers["idempotency-key"]
            .to_str()
            .unwrap()
            .starts_with("sample-")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_test_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (smtp, _) = smtp_server().await;
    let (hook, _) = support::webhook_receiver(0).await;
    let config = write_config(dir.path(), smtp, &hook);

    let (code, out, _) = tradewatch(&[
        "notify",
        "test",
        "--config",
        &config,
        "--receiver",
        "unreachable",
    ])
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("webhook[0]: failed (temporary): "), "{out}");

    let (code, out, err) =
        tradewatch(&["notify", "test", "--config", &config, "--receiver", "desk"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains(
            "no receiver named \"desk\"; the receivers are: trader-email, ops-webhook, unreachable, nobody"
        ),
        "{err}"
    );

    let (code, _, err) = tradewatch(&[
        "notify",
        "test",
        "--config",
        &config,
        "--receiver",
        "nobody",
    ])
    .await;
    assert_eq!(code, 1);
    assert!(
        err.contains("receiver \"nobody\" has no email_configs or webhook_configs"),
        "{err}"
    );

    // An SMTP server that is down: the email is not sent, and the command says so.
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        format!(
            "route: {{receiver: mail}}\nreceivers:\n  - name: mail\n    email_configs:\n      - {{to: a@example.com, from: b@example.com, smarthost: '127.0.0.1:{}', require_tls: false}}\n",
            closed_port()
        ),
    )
    .unwrap();
    let (code, out, _) =
        tradewatch(&["notify", "test", "--config", &config, "--receiver", "mail"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("email[0]: failed (temporary): smtp: "),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_render_shows_each_integration_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (smtp, mail) = smtp_server().await;
    let (hook, hooked) = support::webhook_receiver(0).await;
    let config = write_config(dir.path(), smtp, &hook);

    let (code, out, err) = tradewatch(&[
        "notify",
        "template",
        "render",
        "--config",
        &config,
        "--receiver",
        "trader-email",
    ])
    .await;
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    for want in [
        "==> trader-email email[0]\n",
        "To: trader@example.com\n",
        "From: tradewatch <alerts@example.com>\n",
        "Subject: [FIRING:2] TradingDailyLossLimitBreached strategy=momentum\n",
        "\n--- text ---\n[FIRING:2] TradingDailyLossLimitBreached strategy=momentum\n",
        "Dashboard: http://localhost:3000/d/tradewatch-risk?var-engine=eng-1\n",
        "\n--- html ---\n<!DOCTYPE html>",
        "border-left:6px solid #c62828",
    ] {
        assert!(out.contains(want), "lacks {want:?}:\n{out}");
    }

    let (code, out, _) = tradewatch(&[
        "notify",
        "template",
        "render",
        "--config",
        &config,
        "--receiver",
        "trader-email",
        "--resolved",
    ])
    .await;
    assert_eq!(code, 0);
    assert!(
        out.contains("Subject: [RESOLVED] TradingDailyLossLimitBreached strategy=momentum\n"),
        "{out}"
    );

    let file = dir.path().join("ops.txt");
    let (code, out, _) = tradewatch(&[
        "notify",
        "template",
        "render",
        "--config",
        &config,
        "--receiver",
        "ops-webhook",
        "--output",
        file.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, 0);
    assert!(out.is_empty(), "written to the file: {out}");
    let text = std::fs::read_to_string(&file).unwrap();
    let body = text
        .strip_prefix("==> ops-webhook webhook[0]\n")
        .unwrap_or_else(|| panic!("{text}"));
    let payload: Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(payload["receiver"], "ops-webhook");
    assert_eq!(payload["alerts"][1]["labels"]["engine"], "eng-2");
    assert!(
        body.starts_with("{\n  \"receiver\"") || body.starts_with("{\n  \"version\""),
        "indented, in sending order: {body}"
    );

    assert!(mail.lock().is_empty(), "render sends no email");
    assert!(hooked.lock().unwrap().is_empty(), "render posts nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_render_reports_a_template_that_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        "route: {receiver: mail}\nreceivers:\n  - name: mail\n    email_configs:\n      - to: a@example.com\n        from: b@example.com\n        smarthost: '127.0.0.1:25'\n        require_tls: false\n        headers: {Subject: '{{ template \"no.such.template\" . }}'}\n",
    )
    .unwrap();
    let config = dir.path().join("tradewatch.yaml");
    std::fs::write(&config, "notifier:\n  config_file: alertmanager.yml\n").unwrap();
    let (code, out, err) = tradewatch(&[
        "notify",
        "template",
        "render",
        "--config",
        config.to_str().unwrap(),
        "--receiver",
        "mail",
    ])
    .await;
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("==> mail email[0]\nerror: email subject template: "),
        "{out}"
    );
    assert!(out.contains("no.such.template"), "{out}");
}
