//! The email channel against a real SMTP server on loopback: a small RFC 5321 receiver written
//! here (EHLO, STARTTLS with a self-signed certificate from rcgen, implicit TLS, AUTH PLAIN,
//! MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT) that records each message with how
//! it came (TLS or not, who authenticated). The received MIME is read back with the
//! `mail-parser` crate: subject, both parts, `Message-ID`, headers, escaping.
//!
//! (`mailin-embedded`, the in-process SMTP server crate, enables rustls's default aws-lc
//! provider, which this crate's lock file must not contain.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use mail_parser::{MessageParser, MimeHeaders};
use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tradewatch::config::Secret;
use tradewatch::notify::email::{
    Email, EmailError, EmailOutcome, EmailTarget, EmailTransport, Link, SmtpAuth, SmtpTls,
    SmtpTlsConfig, default_templates,
};
use tradewatch::notify::outbox::{
    Channels, IntegrationKind, IntegrationRef, Outbox, OutboxSettings, Sender,
};
use tradewatch::notify::{Alert, Notification};

// ---------------------------------------------------------------------------------------------
// The SMTP server
// ---------------------------------------------------------------------------------------------

/// One message as the server received it.
#[derive(Debug, Clone)]
struct Received {
    helo: String,
    tls: bool,
    auth: Option<(String, String)>,
    mail_from: String,
    rcpt_to: Vec<String>,
    data: Vec<u8>,
}

#[derive(Clone)]
struct ServerConfig {
    /// Offer STARTTLS with this configuration.
    starttls: Option<Arc<rustls::ServerConfig>>,
    /// Speak TLS from the first byte.
    implicit: Option<Arc<rustls::ServerConfig>>,
    /// Require AUTH PLAIN with these credentials before MAIL.
    credentials: Option<(String, String)>,
    /// The reply to the end of DATA.
    data_reply: &'static str,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            starttls: None,
            implicit: None,
            credentials: None,
            data_reply: "250 2.0.0 Ok: queued as 4F2A",
        }
    }
}

struct SmtpServer {
    addr: std::net::SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn start_smtp(config: ServerConfig) -> SmtpServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let config = config.clone();
            let store = store.clone();
            tokio::spawn(async move {
                let (stream, tls): (Box<dyn Stream>, bool) = match &config.implicit {
                    Some(tls) => match TlsAcceptor::from(tls.clone()).accept(socket).await {
                        Ok(s) => (Box::new(s), true),
                        Err(_) => return,
                    },
                    None => (Box::new(socket), false),
                };
                let _ = session(stream, tls, &config, &store).await;
            });
        }
    });
    SmtpServer { addr, received }
}

async fn reply(w: &mut BufReader<Box<dyn Stream>>, text: &str) -> std::io::Result<()> {
    w.get_mut().write_all(text.as_bytes()).await?;
    w.get_mut().write_all(b"\r\n").await?;
    w.get_mut().flush().await
}

async fn read_line(r: &mut BufReader<Box<dyn Stream>>) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    if r.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()))
}

/// One SMTP session (RFC 5321 §4.1), with STARTTLS (RFC 3207) and AUTH PLAIN (RFC 4954).
async fn session(
    stream: Box<dyn Stream>,
    mut tls: bool,
    config: &ServerConfig,
    store: &Mutex<Vec<Received>>,
) -> std::io::Result<()> {
    let mut io = BufReader::new(stream);
    reply(&mut io, "220 mx.test ESMTP ready").await?;
    let mut helo = String::new();
    let mut auth: Option<(String, String)> = None;
    let mut mail_from: Option<String> = None;
    let mut rcpt_to = Vec::new();
    while let Some(line) = read_line(&mut io).await? {
        let upper = line.to_ascii_uppercase();
        let verb = upper.split(' ').next().unwrap_or("");
        match verb {
            "EHLO" | "HELO" => {
                helo = line[5.min(line.len())..].trim().to_string();
                mail_from = None;
                rcpt_to.clear();
                if verb == "HELO" {
                    reply(&mut io, "250 mx.test").await?;
                    continue;
                }
                let mut lines = vec![format!("mx.test greets {helo}")];
                if config.starttls.is_some() && !tls {
                    lines.push("STARTTLS".into());
                }
                if config.credentials.is_some() {
                    lines.push("AUTH PLAIN".into());
                }
                lines.push("8BITMIME".into());
                let last = lines.len() - 1;
                for (i, l) in lines.iter().enumerate() {
                    let sep = if i == last { ' ' } else { '-' };
                    reply(&mut io, &format!("250{sep}{l}")).await?;
                }
            }
            "STARTTLS" => {
                let Some(server) = config.starttls.clone().filter(|_| !tls) else {
                    reply(&mut io, "502 5.5.1 STARTTLS not offered").await?;
                    continue;
                };
                reply(&mut io, "220 2.0.0 Ready to start TLS").await?;
                assert!(io.buffer().is_empty(), "no pipelining across STARTTLS");
                let plain = io.into_inner();
                let secured = TlsAcceptor::from(server).accept(plain).await?;
                io = BufReader::new(Box::new(secured));
                tls = true;
                // RFC 3207: the session starts over.
                helo.clear();
                auth = None;
            }
            "AUTH" => {
                let parts: Vec<&str> = line.split(' ').collect();
                if parts.get(1).map(|m| m.to_ascii_uppercase()) != Some("PLAIN".into()) {
                    reply(&mut io, "504 5.5.4 Unrecognized authentication type").await?;
                    continue;
                }
                let initial = match parts.get(2) {
                    Some(initial) => initial.to_string(),
                    None => {
                        reply(&mut io, "334 ").await?;
                        read_line(&mut io).await?.unwrap_or_default()
                    }
                };
                let decoded = base64_decode(&initial);
                let fields: Vec<String> = decoded
                    .split(|&b| b == 0)
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect();
                let given = (
                    fields.get(1).cloned().unwrap_or_default(),
                    fields.get(2).cloned().unwrap_or_default(),
                );
                if config.credentials.as_ref() == Some(&given) {
                    auth = Some(given);
                    reply(&mut io, "235 2.7.0 Authentication successful").await?;
                } else {
                    reply(&mut io, "535 5.7.8 Authentication credentials invalid").await?;
                }
            }
            "MAIL" => {
                if config.credentials.is_some() && auth.is_none() {
                    reply(&mut io, "530 5.7.0 Authentication required").await?;
                    continue;
                }
                mail_from = Some(angle(&line));
                reply(&mut io, "250 2.1.0 Ok").await?;
            }
            "RCPT" => {
                if mail_from.is_none() {
                    reply(&mut io, "503 5.5.1 Need MAIL first").await?;
                    continue;
                }
                rcpt_to.push(angle(&line));
                reply(&mut io, "250 2.1.5 Ok").await?;
            }
            "DATA" => {
                if rcpt_to.is_empty() {
                    reply(&mut io, "503 5.5.1 Need RCPT first").await?;
                    continue;
                }
                reply(&mut io, "354 End data with <CR><LF>.<CR><LF>").await?;
                let mut data = Vec::new();
                loop {
                    let mut raw = Vec::new();
                    if io.read_until(b'\n', &mut raw).await? == 0 {
                        return Ok(());
                    }
                    if raw == b".\r\n" {
                        break;
                    }
                    // Dot-unstuffing (RFC 5321 §4.5.2).
                    let line = raw.strip_prefix(b".").unwrap_or(&raw);
                    data.extend_from_slice(line);
                }
                if config.data_reply.starts_with('2') {
                    store.lock().push(Received {
                        helo: helo.clone(),
                        tls,
                        auth: auth.clone(),
                        mail_from: mail_from.take().unwrap_or_default(),
                        rcpt_to: std::mem::take(&mut rcpt_to),
                        data,
                    });
                }
                reply(&mut io, config.data_reply).await?;
            }
            "RSET" => {
                mail_from = None;
                rcpt_to.clear();
                reply(&mut io, "250 2.0.0 Ok").await?;
            }
            "NOOP" => reply(&mut io, "250 2.0.0 Ok").await?,
            "QUIT" => {
                reply(&mut io, "221 2.0.0 Bye").await?;
                return Ok(());
            }
            _ => reply(&mut io, "502 5.5.2 Command not recognized").await?,
        }
    }
    Ok(())
}

/// The address between `<` and `>` of a MAIL or RCPT command.
fn angle(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line[start..].find('>').map_or(line.len(), |i| start + i);
    line[start..end].to_string()
}

fn base64_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|&c| c != b'=') {
        let Some(v) = ALPHABET.iter().position(|&a| a == c) else {
            continue;
        };
        buffer = buffer << 6 | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// A self-signed certificate for `localhost`: the server's TLS configuration and the PEM the
/// client trusts.
fn tls_pair() -> (Arc<rustls::ServerConfig>, Vec<u8>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![der], key)
    .unwrap();
    (Arc::new(config), cert.cert.pem().into_bytes())
}

// ---------------------------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------------------------

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Two firing alerts of the group `strategy=momentum`, one with a hostile label value.
fn notification() -> Notification {
    let alert = |symbol: &str, severity: &str| Alert {
        labels: labels(&[
            ("alertname", "TradingDailyLossLimitBreached"),
            ("severity", severity),
            ("strategy", "momentum"),
            ("symbol", symbol),
        ]),
        annotations: labels(&[
            ("summary", "Daily loss 12,400 USD over the 10,000 USD limit"),
            ("value", "-12400"),
            ("runbook_url", "https://wiki.example/runbooks/daily-loss"),
            ("dashboard_url", "https://grafana.example/d/risk"),
        ]),
        starts_at: at(1_700_000_000),
        ends_at: at(1_700_003_600),
        updated_at: at(1_700_000_050),
        generator_url: "http://trading-box:9470/graph".into(),
        timeout: false,
    };
    Notification {
        id: "n-0001-a7c3".into(),
        receiver: "trader-email".into(),
        group_key: "{}:{alertname=\"TradingDailyLossLimitBreached\", strategy=\"momentum\"}".into(),
        group_labels: labels(&[
            ("alertname", "TradingDailyLossLimitBreached"),
            ("strategy", "momentum"),
        ]),
        alerts: vec![
            alert("<script>alert(1)</script>", "critical"),
            alert("BTC-USD", "warning"),
        ],
        created_at: at(1_700_000_060),
    }
}

fn smtp(server: &SmtpServer, tls: SmtpTls, ca: Option<Vec<u8>>) -> EmailTransport {
    EmailTransport::Smtp {
        smarthost: server.addr.to_string(),
        hello: "trading-box".into(),
        auth: None,
        tls,
        tls_config: SmtpTlsConfig {
            ca_pem: ca,
            server_name: Some("localhost".into()),
            insecure_skip_verify: false,
        },
        timeout: Duration::from_secs(10),
    }
}

fn email(target: EmailTarget) -> Email {
    Email::new(
        target,
        &default_templates(),
        "America/New_York",
        "http://trading-box:9470",
    )
    .unwrap()
}

fn action_links() -> tradewatch::notify::email::Links {
    Arc::new(|n: &Notification, a: &Alert| {
        vec![
            Link {
                label: "Acknowledge".into(),
                url: format!("http://trading-box:9470/a/ack-{}-{}", n.id, a.fingerprint()),
            },
            Link {
                label: "Silence 1h".into(),
                url: "javascript:alert(1)".into(),
            },
        ]
    })
}

fn delivered(outcome: EmailOutcome) -> String {
    match outcome {
        EmailOutcome::Delivered { response } => response,
        other => panic!("expected delivered, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn starttls_auth_and_a_multipart_message_made_for_a_phone() {
    let (server_tls, ca) = tls_pair();
    let server = start_smtp(ServerConfig {
        starttls: Some(server_tls),
        credentials: Some(("alerts@example.com".into(), "hunter2".into())),
        ..ServerConfig::default()
    })
    .await;
    let mut transport = smtp(&server, SmtpTls::StartTls, Some(ca));
    if let EmailTransport::Smtp { auth, .. } = &mut transport {
        *auth = Some(SmtpAuth {
            username: "alerts@example.com".into(),
            password: Secret::new("hunter2"),
            identity: None,
        });
    }
    let mut target = EmailTarget::new(
        "trader@example.com, desk@example.com",
        "tradewatch <alerts@example.com>",
        transport,
    );
    target.headers = labels(&[("X-Alert-Count", "{{ len .Alerts }} alerts")]);
    let email = email(target).with_links(action_links());
    let now = at(1_700_000_061);
    let response = delivered(email.send(&notification(), now).await);
    assert_eq!(response, "250 2.0.0 Ok: queued as 4F2A");

    let received = server.received.lock().clone();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert!(r.tls, "STARTTLS before the message");
    assert_eq!(r.helo, "trading-box");
    assert_eq!(
        r.auth,
        Some(("alerts@example.com".into(), "hunter2".into()))
    );
    assert_eq!(r.mail_from, "alerts@example.com");
    assert_eq!(r.rcpt_to, ["trader@example.com", "desk@example.com"]);

    let message = MessageParser::default().parse(&r.data).unwrap();
    assert_eq!(
        message.subject(),
        Some("[FIRING:2] TradingDailyLossLimitBreached strategy=momentum")
    );
    assert_eq!(
        message.message_id(),
        Some("tradewatch.n-0001-a7c3@example.com")
    );
    assert_eq!(
        message.date().unwrap().to_timestamp(),
        1_700_000_061,
        "dated when sent"
    );
    assert_eq!(
        message.header_raw("X-Alert-Count").map(str::trim),
        Some("2 alerts")
    );
    let from = message.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("tradewatch"));
    assert_eq!(from.address(), Some("alerts@example.com"));
    assert_eq!(message.to().unwrap().iter().count(), 2);
    assert_eq!(message.text_body_count(), 1);
    assert_eq!(message.html_body_count(), 1);
    let content_type = message.content_type().unwrap();
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("multipart", Some("alternative"))
    );

    let text = message.body_text(0).unwrap();
    for want in [
        "[FIRING:2] TradingDailyLossLimitBreached strategy=momentum",
        "CRITICAL TradingDailyLossLimitBreached",
        "WARNING TradingDailyLossLimitBreached",
        "Daily loss 12,400 USD over the 10,000 USD limit",
        "Value: -12400",
        // 22:13:20 UTC is 17:13:20 in New York in November.
        "Since: Tue 14 Nov 17:13:20 EST",
        "  symbol=<script>alert(1)</script>",
        "  strategy=momentum",
        "Runbook: https://wiki.example/runbooks/daily-loss",
        "Dashboard: https://grafana.example/d/risk",
        "Acknowledge: http://trading-box:9470/a/ack-n-0001-a7c3-",
    ] {
        assert!(text.contains(want), "text lacks {want:?}:\n{text}");
    }

    let html = message.body_html(0).unwrap();
    assert!(
        !html.contains("<script>"),
        "a label value arrives escaped:\n{html}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    for want in [
        "<meta name=\"viewport\"",
        "border-left:6px solid #c62828",
        "border-left:6px solid #ef6c00",
        "Daily loss 12,400 USD over the 10,000 USD limit",
        "Value: <b>-12400</b>",
        "Since Tue 14 Nov 17:13:20 EST",
        "href=\"https://wiki.example/runbooks/daily-loss\"",
        "href=\"https://grafana.example/d/risk\"",
        ">Acknowledge</a>",
        // An unsafe scheme in a link is neutralised, as Go's html/template does.
        "href=\"#ZgotmplZ\"",
    ] {
        assert!(html.contains(want), "html lacks {want:?}:\n{html}");
    }
}

#[tokio::test]
async fn retries_send_the_same_message_id() {
    let server = start_smtp(ServerConfig::default()).await;
    let email = email(EmailTarget::new(
        "trader@example.com",
        "alerts@example.com",
        smtp(&server, SmtpTls::None, None),
    ));
    let n = notification();
    delivered(email.send(&n, at(1_700_000_061)).await);
    delivered(email.send(&n, at(1_700_000_121)).await);
    let received = server.received.lock().clone();
    let ids: Vec<String> = received
        .iter()
        .map(|r| {
            MessageParser::default()
                .parse(&r.data)
                .unwrap()
                .message_id()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
    let mut other = n.clone();
    other.id = "n-0002".into();
    let m = email.message(&other, at(1_700_000_061)).unwrap();
    let formatted = m.formatted();
    let parsed = MessageParser::default().parse(&formatted).unwrap();
    assert_ne!(parsed.message_id().unwrap(), ids[0]);
}

#[tokio::test]
async fn implicit_tls_from_the_first_byte() {
    let (server_tls, ca) = tls_pair();
    let server = start_smtp(ServerConfig {
        implicit: Some(server_tls),
        ..ServerConfig::default()
    })
    .await;
    let email = email(EmailTarget::new(
        "trader@example.com",
        "alerts@example.com",
        smtp(&server, SmtpTls::Implicit, Some(ca)),
    ));
    delivered(email.send(&notification(), at(1_700_000_061)).await);
    let received = server.received.lock().clone();
    assert_eq!(received.len(), 1);
    assert!(received[0].tls);
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_and_retried() {
    let (server_tls, _) = tls_pair();
    let (_, other_ca) = tls_pair();
    let server = start_smtp(ServerConfig {
        starttls: Some(server_tls),
        ..ServerConfig::default()
    })
    .await;
    let email = email(EmailTarget::new(
        "trader@example.com",
        "alerts@example.com",
        smtp(&server, SmtpTls::StartTls, Some(other_ca)),
    ));
    let outcome = email.send(&notification(), at(1_700_000_061)).await;
    assert!(
        matches!(outcome, EmailOutcome::Retryable(EmailError::Smtp(_))),
        "{outcome:?}"
    );
    assert!(server.received.lock().is_empty());
}

#[tokio::test]
async fn plain_only_when_configured_and_text_only_without_html() {
    // The server offers STARTTLS; with `require_tls: false` Alertmanager does not use it.
    let (server_tls, _) = tls_pair();
    let server = start_smtp(ServerConfig {
        starttls: Some(server_tls),
        ..ServerConfig::default()
    })
    .await;
    let mut target = EmailTarget::new(
        "trader@example.com",
        "alerts@example.com",
        smtp(
            &server,
            SmtpTls::alertmanager(false, server.addr.port()),
            None,
        ),
    );
    target.html = String::new();
    delivered(email(target).send(&notification(), at(1_700_000_061)).await);
    let received = server.received.lock().clone();
    assert!(!received[0].tls);
    let message = MessageParser::default().parse(&received[0].data).unwrap();
    let content_type = message.content_type().unwrap();
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("text", Some("plain"))
    );
    assert_eq!(
        message.html_body_count(),
        1,
        "mail-parser renders text as html"
    );
    assert!(
        message
            .body_text(0)
            .unwrap()
            .contains("symbol=<script>alert(1)</script>"),
        "plain text is not escaped"
    );
}

#[tokio::test]
async fn starttls_required_but_not_offered_sends_nothing() {
    let server = start_smtp(ServerConfig::default()).await;
    let email = email(EmailTarget::new(
        "trader@example.com",
        "alerts@example.com",
        smtp(&server, SmtpTls::StartTls, None),
    ));
    let outcome = email.send(&notification(), at(1_700_000_061)).await;
    assert!(
        !matches!(outcome, EmailOutcome::Delivered { .. }),
        "{outcome:?}"
    );
    assert!(server.received.lock().is_empty());
}

#[tokio::test]
async fn smtp_replies_classify_as_retryable_or_permanent() {
    for (reply, retryable) in [
        ("451 4.3.0 Mail server temporarily rejected message", true),
        ("554 5.7.1 Message rejected as spam", false),
    ] {
        let server = start_smtp(ServerConfig {
            data_reply: reply,
            ..ServerConfig::default()
        })
        .await;
        let email = email(EmailTarget::new(
            "trader@example.com",
            "alerts@example.com",
            smtp(&server, SmtpTls::None, None),
        ));
        let outcome = email.send(&notification(), at(1_700_000_061)).await;
        let attempt: tradewatch::notify::outbox::Attempt = match outcome {
            EmailOutcome::Retryable(e) => {
                assert!(retryable, "{reply}: {e}");
                EmailOutcome::Retryable(e).into()
            }
            EmailOutcome::Permanent(e) => {
                assert!(!retryable, "{reply}: {e}");
                EmailOutcome::Permanent(e).into()
            }
            other => panic!("{reply}: {other:?}"),
        };
        match attempt {
            tradewatch::notify::outbox::Attempt::Failed {
                error, response, ..
            } => {
                assert!(error.starts_with("smtp: "), "{error}");
                assert_eq!(response.as_deref(), Some(&reply[..3]));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn a_wrong_password_is_permanent() {
    let server = start_smtp(ServerConfig {
        credentials: Some(("alerts".into(), "right".into())),
        ..ServerConfig::default()
    })
    .await;
    let mut transport = smtp(&server, SmtpTls::None, None);
    if let EmailTransport::Smtp { auth, .. } = &mut transport {
        *auth = Some(SmtpAuth {
            username: "alerts".into(),
            password: Secret::new("wrong"),
            identity: None,
        });
    }
    let email = email(EmailTarget::new(
        "trader@example.com",
        "alerts@example.com",
        transport,
    ));
    let outcome = email.send(&notification(), at(1_700_000_061)).await;
    assert!(
        matches!(outcome, EmailOutcome::Permanent(EmailError::Smtp(_))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_closed_port_is_retryable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let email = email(EmailTarget::new(
        "trader@example.com",
        "alerts@example.com",
        EmailTransport::Smtp {
            smarthost: format!("127.0.0.1:{port}"),
            hello: String::new(),
            auth: None,
            tls: SmtpTls::None,
            tls_config: SmtpTlsConfig::default(),
            timeout: Duration::from_secs(5),
        },
    ));
    let outcome = email.send(&notification(), at(1_700_000_061)).await;
    assert!(matches!(outcome, EmailOutcome::Retryable(_)), "{outcome:?}");
}

#[tokio::test]
async fn eml_files_for_local_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut target = EmailTarget::new(
        "trader@example.com",
        "alerts@example.com",
        EmailTransport::Files(dir.path().to_path_buf()),
    );
    target.headers = labels(&[("Subject", "{{ .Status }}: {{ .CommonLabels.strategy }}")]);
    let email = email(target);
    let response = delivered(email.send(&notification(), at(1_700_000_061)).await);
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].extension().unwrap(), "eml");
    assert_eq!(response, format!("wrote {}", files[0].display()));
    let bytes = std::fs::read(&files[0]).unwrap();
    let message = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(message.subject(), Some("firing: momentum"));
    assert_eq!(
        message.message_id(),
        Some("tradewatch.n-0001-a7c3@example.com")
    );
}

#[tokio::test]
async fn resolved_subject_and_alertmanagers_own_templates() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = notification();
    for a in &mut n.alerts {
        a.ends_at = at(1_700_000_030);
    }
    let mut target = EmailTarget::new(
        "trader@example.com",
        "alerts@example.com",
        EmailTransport::Files(dir.path().to_path_buf()),
    );
    target.send_resolved = true;
    let message = email(target.clone())
        .message(&n, at(1_700_000_061))
        .unwrap();
    let parsed = MessageParser::default()
        .parse(&message.formatted())
        .unwrap()
        .into_owned();
    assert_eq!(
        parsed.subject(),
        Some("[RESOLVED] TradingDailyLossLimitBreached strategy=momentum")
    );
    assert!(
        parsed
            .body_text(0)
            .unwrap()
            .contains("Resolved: Tue 14 Nov 17:13:50 EST")
    );
    assert!(
        parsed
            .body_html(0)
            .unwrap()
            .contains("border-left:6px solid #2e7d32")
    );
    // Alertmanager's look, as its defaults render it.
    target.subject = tradewatch::notify::email::ALERTMANAGER_SUBJECT.into();
    target.html = tradewatch::notify::email::ALERTMANAGER_HTML.into();
    target.text = String::new();
    let message = email(target)
        .message(&n, at(1_700_000_061))
        .unwrap()
        .formatted();
    let parsed = MessageParser::default().parse(&message).unwrap();
    // __subject: the group's label values; no common labels beyond the group's.
    assert_eq!(
        parsed.subject(),
        Some("[RESOLVED] TradingDailyLossLimitBreached momentum")
    );
    // HTML only: the text template is empty.
    let content_type = parsed.content_type().unwrap();
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("text", Some("html"))
    );
    assert!(
        parsed
            .body_html(0)
            .unwrap()
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;")
    );
}

#[test]
fn bad_settings_are_refused_with_their_reason() {
    let templates = default_templates();
    let files = EmailTransport::Files(std::env::temp_dir());
    let e = Email::new(
        EmailTarget::new("a@example.com", "b@example.com", files.clone()),
        &templates,
        "Mars/Olympus",
        "",
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "unknown time zone \"Mars/Olympus\"");
    let mut target = EmailTarget::new("a@example.com", "b@example.com", files.clone());
    target.subject = "{{ .Status ".into();
    let e = Email::new(target, &templates, "UTC", "").unwrap_err();
    assert!(e.to_string().starts_with("email subject template: "), "{e}");
    let mut target = EmailTarget::new("a@example.com", "b@example.com", files.clone());
    target.headers = labels(&[("Bad Header", "x")]);
    let e = Email::new(target, &templates, "UTC", "").unwrap_err();
    assert_eq!(e.to_string(), "invalid email header name \"Bad Header\"");
    let transport = EmailTransport::Smtp {
        smarthost: "mail.example.com".into(),
        hello: String::new(),
        auth: None,
        tls: SmtpTls::StartTls,
        tls_config: SmtpTlsConfig::default(),
        timeout: Duration::from_secs(5),
    };
    let e = Email::new(
        EmailTarget::new("a@example.com", "b@example.com", transport),
        &templates,
        "UTC",
        "",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid smarthost \"mail.example.com\": want host:port"
    );
    let email = Email::new(
        EmailTarget::new("not an address", "b@example.com", files),
        &templates,
        "UTC",
        "",
    )
    .unwrap();
    let e = email.message(&notification(), at(0)).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("invalid to address \"not an address\""),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_sends_email_through_the_channel() {
    let server = start_smtp(ServerConfig::default()).await;
    let outbox = Arc::new(Outbox::open_in_memory(OutboxSettings::default()).unwrap());
    let at_ref = IntegrationRef::new("trader-email", IntegrationKind::Email, 0);
    let mut channels = Channels::new();
    channels.add_email(
        at_ref.clone(),
        email(EmailTarget::new(
            "trader@example.com",
            "alerts@example.com",
            smtp(&server, SmtpTls::None, None),
        )),
    );
    let sender = Sender::new(outbox.clone(), Arc::new(channels));
    outbox
        .enqueue_now(&notification(), &at_ref, at(1_700_000_060))
        .unwrap();
    let events = sender.run_once(at(1_700_000_061)).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, "delivered");
    assert_eq!(events[0].integration, "email[0]");
    assert_eq!(
        events[0].response.as_deref(),
        Some("250 2.0.0 Ok: queued as 4F2A")
    );
    assert_eq!(server.received.lock().len(), 1);
}

proptest::proptest! {
    /// Whatever the notification id, the message carries a `Message-ID` that parses back as
    /// the one derived from it.
    #[test]
    fn any_notification_id_gives_a_parseable_message_id(id in "\\PC{1,40}") {
        let dir = std::env::temp_dir();
        let email = Email::new(
            EmailTarget::new("a@example.com", "b@example.com", EmailTransport::Files(dir)),
            &default_templates(),
            "UTC",
            "",
        )
        .unwrap();
        let mut n = notification();
        n.id = id.clone();
        let formatted = email.message(&n, at(1_700_000_000)).unwrap().formatted();
        let parsed = MessageParser::default().parse(&formatted).unwrap();
        let expected = tradewatch::notify::email::message_id(&id, "example.com");
        proptest::prop_assert_eq!(parsed.message_id(), Some(&expected[1..expected.len() - 1]));
    }
}

#[test]
fn smtp_password_from_tradewatch_extras() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("smtp.pw");
    std::fs::write(&file, "hunter2\n").unwrap();
    let extras = tradewatch::config::EmailExtras {
        auth_password_file: Some(file),
        ..Default::default()
    };
    let password = tradewatch::notify::email::password_from(&extras)
        .unwrap()
        .unwrap();
    assert_eq!(password.expose(), "hunter2");
    assert!(
        tradewatch::notify::email::password_from(&Default::default())
            .unwrap()
            .is_none()
    );
    let extras = tradewatch::config::EmailExtras {
        auth_password_env: Some("TRADEWATCH_TEST_SMTP_PASSWORD_NEVER_SET".into()),
        ..Default::default()
    };
    let e = tradewatch::notify::email::password_from(&extras).unwrap_err();
    assert_eq!(
        e.to_string(),
        "environment variable TRADEWATCH_TEST_SMTP_PASSWORD_NEVER_SET for the smtp password token is not set"
    );
}

/// The rule pack puts the dashboard link in the `dashboard` annotation: the default email shows
/// its Dashboard button from there, and from `dashboard_url` (the older name) when that is all
/// an alert has; with both, `dashboard` wins.
#[test]
fn the_dashboard_button_reads_the_rule_packs_dashboard_annotation() {
    let dir = tempfile::tempdir().unwrap();
    let email = email(EmailTarget::new(
        "trader@example.com",
        "alerts@example.com",
        EmailTransport::Files(dir.path().to_path_buf()),
    ));
    let pack = "http://localhost:3000/d/tradewatch-risk?var-engine=eng-1";
    let render = |annotations: &[(&str, &str)]| {
        let mut n = notification();
        n.alerts.truncate(1);
        n.alerts[0].annotations = labels(annotations);
        let bytes = email.message(&n, at(1_700_000_061)).unwrap().formatted();
        let message = MessageParser::default().parse(&bytes).unwrap();
        (
            message.body_text(0).unwrap().into_owned(),
            message.body_html(0).unwrap().into_owned(),
        )
    };

    let (text, html) = render(&[("summary", "Kill switch engaged"), ("dashboard", pack)]);
    assert!(
        text.contains(&format!("Dashboard: {pack}")),
        "text lacks the dashboard link:\n{text}"
    );
    let href = "href=\"http://localhost:3000/d/tradewatch-risk?var-engine=eng-1\"";
    assert!(html.contains(href), "html lacks {href}:\n{html}");
    assert!(html.contains(">Dashboard</a>"), "{html}");

    let (text, html) = render(&[("dashboard_url", "https://grafana.example/d/risk")]);
    assert!(
        text.contains("Dashboard: https://grafana.example/d/risk"),
        "{text}"
    );
    assert!(
        html.contains("href=\"https://grafana.example/d/risk\""),
        "{html}"
    );

    let (text, html) = render(&[
        ("dashboard", pack),
        ("dashboard_url", "https://grafana.example/d/risk"),
    ]);
    assert_eq!(text.matches("Dashboard:").count(), 1, "{text}");
    assert!(text.contains(&format!("Dashboard: {pack}")), "{text}");
    assert_eq!(html.matches(">Dashboard</a>").count(), 1, "{html}");

    let (text, html) = render(&[("summary", "no links")]);
    assert!(!text.contains("Dashboard"), "{text}");
    assert!(!html.contains(">Dashboard</a>"), "{html}");
}
