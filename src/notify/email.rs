//! The email channel: a notification rendered with Alertmanager's templates (or tradewatch's
//! own, made for a phone) into a multipart HTML and plain-text message, sent with lettre over
//! SMTP (STARTTLS, implicit TLS, or plain only when configured so) or written as an `.eml` file.
//!
//! The `Message-ID` is derived from the notification id, so every retry of one notification is
//! the same message to the receiving side.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailboxes, MultiPart, SinglePart, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::{Digest, Sha256};

use super::outbox::{Attempt, Deliver, Item};
use super::payload::{for_integration, template_data};
use super::types::{Alert, Notification};
use crate::config::server::{read_secret_env, read_secret_file};
use crate::config::{ConfigError, EmailExtras, Secret};
use crate::template::alertmanager::{NotificationTemplates, Prepared};
use crate::template::{ListType, Struct, Value};

/// tradewatch's email templates (`tradewatch.email.subject`, `.html`, `.text`).
pub const EMAIL_TMPL: &str = include_str!("email.tmpl");

/// The default subject: tradewatch's (`[FIRING:2] TradingDailyLossLimit strategy=momentum`).
pub const DEFAULT_SUBJECT: &str = r#"{{ template "tradewatch.email.subject" . }}"#;
/// The default HTML body: tradewatch's, made for a phone.
pub const DEFAULT_HTML: &str = r#"{{ template "tradewatch.email.html" . }}"#;
/// The default plain-text body: tradewatch's.
pub const DEFAULT_TEXT: &str = r#"{{ template "tradewatch.email.text" . }}"#;
/// Alertmanager's default subject, for a receiver that asks for Alertmanager's look.
pub const ALERTMANAGER_SUBJECT: &str = r#"{{ template "email.default.subject" . }}"#;
/// Alertmanager's default HTML body.
pub const ALERTMANAGER_HTML: &str = r#"{{ template "email.default.html" . }}"#;

/// Alertmanager's templates with tradewatch's email templates added; an operator's template
/// files go on top of these.
pub fn default_templates() -> NotificationTemplates {
    let mut t = NotificationTemplates::new();
    // The embedded file parses; a failure here is a build defect, caught by every email test.
    if let Err(e) = t.add("tradewatch_email.tmpl", EMAIL_TMPL) {
        panic!("embedded tradewatch email template: {e}");
    }
    t
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which the server must offer.
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
    /// No TLS at all: only when configured so (`require_tls: false`).
    None,
}

impl SmtpTls {
    /// Alertmanager's choice: implicit TLS on port 465, else STARTTLS when `require_tls` (its
    /// default), else plain (Alertmanager then does not use STARTTLS even when offered).
    pub fn alertmanager(require_tls: bool, port: u16) -> SmtpTls {
        if port == 465 {
            SmtpTls::Implicit
        } else if require_tls {
            SmtpTls::StartTls
        } else {
            SmtpTls::None
        }
    }
}

/// SMTP authentication (PLAIN or LOGIN, whichever the server offers).
#[derive(Debug, Clone)]
pub struct SmtpAuth {
    /// User name.
    pub username: String,
    /// Password, from the file or environment variable the configuration names.
    pub password: Secret,
    /// Alertmanager's `auth_identity` (the PLAIN authorization identity). lettre sends PLAIN
    /// without one, so the server uses the user name; kept so a conversion loses nothing.
    pub identity: Option<String>,
}

/// Certificate checks of the SMTP server.
#[derive(Debug, Clone, Default)]
pub struct SmtpTlsConfig {
    /// Extra trusted roots, PEM (Alertmanager's `tls_config.ca_file` contents).
    pub ca_pem: Option<Vec<u8>>,
    /// The name the certificate must carry; the smarthost's host by default.
    pub server_name: Option<String>,
    /// Accept any certificate (Alertmanager's `insecure_skip_verify`).
    pub insecure_skip_verify: bool,
}

/// Where messages go.
#[derive(Debug, Clone)]
pub enum EmailTransport {
    /// An SMTP server.
    Smtp {
        /// `host:port` (Alertmanager's `smarthost`).
        smarthost: String,
        /// The name sent in `EHLO` (Alertmanager's `hello`, default `localhost`).
        hello: String,
        /// Authentication, if any.
        auth: Option<SmtpAuth>,
        /// How the connection is secured.
        tls: SmtpTls,
        /// Certificate checks.
        tls_config: SmtpTlsConfig,
        /// How long the whole exchange may take per command.
        timeout: Duration,
    },
    /// `.eml` files in a directory (lettre's file transport), for local runs and the demo.
    Files(PathBuf),
}

/// One email integration, resolved: defaults applied, secrets loaded.
#[derive(Debug, Clone)]
pub struct EmailTarget {
    /// Recipients, comma-separated; a template.
    pub to: String,
    /// Sender; a template.
    pub from: String,
    /// Whether resolved alerts are sent.
    pub send_resolved: bool,
    /// Where messages go.
    pub transport: EmailTransport,
    /// The `Subject` header; a template.
    pub subject: String,
    /// Extra headers, each a template; `To`, `From` and `Subject` here override the fields.
    pub headers: BTreeMap<String, String>,
    /// The HTML body template; empty for a text-only message.
    pub html: String,
    /// The plain-text body template; empty for an HTML-only message.
    pub text: String,
}

impl EmailTarget {
    /// A target with tradewatch's templates (subject, HTML and text) and without
    /// `send_resolved` (Alertmanager's email default).
    pub fn new(to: impl Into<String>, from: impl Into<String>, transport: EmailTransport) -> Self {
        EmailTarget {
            to: to.into(),
            from: from.into(),
            send_resolved: false,
            transport,
            subject: DEFAULT_SUBJECT.to_string(),
            headers: BTreeMap::new(),
            html: DEFAULT_HTML.to_string(),
            text: DEFAULT_TEXT.to_string(),
        }
    }
}

/// The SMTP password tradewatch's settings for this receiver name
/// (`notifier.receivers.<name>.email`: `auth_password_env` or `auth_password_file`), if any.
pub fn password_from(extras: &EmailExtras) -> Result<Option<Secret>, ConfigError> {
    match (&extras.auth_password_file, &extras.auth_password_env) {
        (Some(path), _) => read_secret_file(path, "smtp password").map(Some),
        (None, Some(var)) => {
            read_secret_env(var, "smtp password", |var| std::env::var_os(var)).map(Some)
        }
        (None, None) => Ok(None),
    }
}

/// A link shown with an alert (acknowledge, silence for an hour, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The button's text.
    pub label: String,
    /// Where it goes.
    pub url: String,
}

/// Gives the links shown with each alert of a notification (the action links).
pub type Links = Arc<dyn Fn(&Notification, &Alert) -> Vec<Link> + Send + Sync>;

/// Why an email could not be set up, made or sent.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// A template does not parse.
    #[error("email {field} template: {source}")]
    TemplateParse {
        /// Which one (`subject`, `html`, a header's name).
        field: String,
        /// Why.
        source: crate::template::ParseError,
    },
    /// A template failed while rendering.
    #[error("email {field} template: {source}")]
    TemplateExec {
        /// Which one.
        field: String,
        /// Why.
        source: crate::template::ExecError,
    },
    /// The time zone is not an IANA zone.
    #[error("unknown time zone {0:?}")]
    TimeZone(String),
    /// An address does not parse.
    #[error("invalid {field} address {value:?}: {reason}")]
    Address {
        /// `to` or `from`.
        field: &'static str,
        /// The rendered value.
        value: String,
        /// Why.
        reason: String,
    },
    /// A header name is not valid.
    #[error("invalid email header name {0:?}")]
    HeaderName(String),
    /// The smarthost is not `host:port`.
    #[error("invalid smarthost {0:?}: want host:port")]
    Smarthost(String),
    /// TLS settings are unusable (a CA file that is not PEM).
    #[error("email tls: {0}")]
    Tls(#[source] lettre::transport::smtp::Error),
    /// The message could not be built.
    #[error("email message: {0}")]
    Message(#[from] lettre::error::Error),
    /// The SMTP exchange failed.
    #[error("smtp: {0}")]
    Smtp(#[source] lettre::transport::smtp::Error),
    /// The `.eml` file could not be written.
    #[error("email file: {0}")]
    File(#[source] lettre::transport::file::Error),
}

/// What one send came to.
#[derive(Debug)]
pub enum EmailOutcome {
    /// The server accepted the message (or the file was written).
    Delivered {
        /// The server's reply (`250 2.0.0 Ok: queued`) or the file written.
        response: String,
    },
    /// Worth another attempt: a 4xx reply, a timeout, a connection or TLS failure.
    Retryable(EmailError),
    /// Will fail the same way: a 5xx reply, a template or address that fails.
    Permanent(EmailError),
}

impl From<EmailOutcome> for Attempt {
    fn from(outcome: EmailOutcome) -> Attempt {
        match outcome {
            EmailOutcome::Delivered { response } => Attempt::Delivered {
                response: Some(response),
            },
            EmailOutcome::Retryable(e) => failed(e, true),
            EmailOutcome::Permanent(e) => failed(e, false),
        }
    }
}

fn failed(e: EmailError, retryable: bool) -> Attempt {
    let response = match &e {
        EmailError::Smtp(smtp) => smtp.status().map(|code| code.to_string()),
        _ => None,
    };
    Attempt::Failed {
        error: e.to_string(),
        response,
        retryable,
    }
}

enum Sink {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::Smtp(_) => f.write_str("Smtp"),
            Sink::Files(_, dir) => f.debug_tuple("Files").field(dir).finish(),
        }
    }
}

/// An email's templates rendered for one notification, before it becomes a MIME message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// `To`, as rendered (one or more addresses).
    pub to: String,
    /// `From`.
    pub from: String,
    /// The subject, on one line.
    pub subject: String,
    /// The other headers, each on one line, in configuration order.
    pub headers: Vec<(String, String)>,
    /// The HTML body (empty: the message is text only).
    pub html: String,
    /// The plain-text body (empty with an HTML body: the message is HTML only).
    pub text: String,
}

#[derive(Debug)]
struct Rendered {
    to: Prepared,
    from: Prepared,
    subject: Prepared,
    headers: Vec<(HeaderName, String, Prepared)>,
    html: Prepared,
    text: Prepared,
}

/// An email integration ready to send.
pub struct Email {
    target: EmailTarget,
    templates: Rendered,
    timezone: String,
    external_url: String,
    links: Option<Links>,
    sink: Sink,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("target", &self.target)
            .field("timezone", &self.timezone)
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}

impl Email {
    /// Checks the target (templates, header names, smarthost, TLS roots, time zone) and
    /// builds its transport. `templates` should hold tradewatch's email templates (see
    /// [`default_templates`]) for the defaults to render; `timezone` (an IANA name) is where
    /// times are shown; `external_url` goes into the data.
    pub fn new(
        target: EmailTarget,
        templates: &NotificationTemplates,
        timezone: &str,
        external_url: &str,
    ) -> Result<Email, EmailError> {
        if timezone != "UTC" && timezone != "Local" && timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(EmailError::TimeZone(timezone.to_string()));
        }
        let text = |field: &str, source: &str| {
            templates
                .prepare_text(source)
                .map_err(|source| EmailError::TemplateParse {
                    field: field.to_string(),
                    source,
                })
        };
        let mut headers = Vec::new();
        let (mut to, mut from, mut subject) = (
            target.to.as_str(),
            target.from.as_str(),
            target.subject.as_str(),
        );
        for (name, value) in &target.headers {
            match name.to_ascii_lowercase().as_str() {
                "to" => to = value,
                "from" => from = value,
                "subject" => subject = value,
                _ => {
                    let header = HeaderName::new_from_ascii(name.clone())
                        .map_err(|_| EmailError::HeaderName(name.clone()))?;
                    headers.push((header, name.clone(), text(name, value)?));
                }
            }
        }
        let rendered = Rendered {
            to: text("to", to)?,
            from: text("from", from)?,
            subject: text("subject", subject)?,
            headers,
            html: templates.prepare_html(&target.html).map_err(|source| {
                EmailError::TemplateParse {
                    field: "html".into(),
                    source,
                }
            })?,
            text: text("text", &target.text)?,
        };
        let sink = match &target.transport {
            EmailTransport::Files(dir) => {
                Sink::Files(AsyncFileTransport::new(dir.clone()), dir.clone())
            }
            EmailTransport::Smtp {
                smarthost,
                hello,
                auth,
                tls,
                tls_config,
                timeout,
            } => Sink::Smtp(smtp_transport(
                smarthost, hello, auth, *tls, tls_config, *timeout,
            )?),
        };
        Ok(Email {
            target,
            templates: rendered,
            timezone: timezone.to_string(),
            external_url: external_url.to_string(),
            links: None,
            sink,
        })
    }

    /// Shows these links with each alert.
    pub fn with_links(mut self, links: Links) -> Email {
        self.links = Some(links);
        self
    }

    /// The target this integration sends to.
    pub fn target(&self) -> &EmailTarget {
        &self.target
    }

    /// The data templates see: Alertmanager's, plus `.TZ` and each alert's `.Links`.
    fn data(&self, n: &Notification) -> Value {
        let data = template_data(n, &n.alerts, &self.external_url).value();
        let Value::Struct(top) = data else {
            return data;
        };
        let mut fields = top.fields.clone();
        for (name, value) in fields.iter_mut() {
            if *name != "Alerts" {
                continue;
            }
            let Value::List(list) = value else { continue };
            let items = list
                .items
                .iter()
                .zip(&n.alerts)
                .map(|(alert_value, alert)| {
                    let links = self
                        .links
                        .as_ref()
                        .map(|links| links(n, alert))
                        .unwrap_or_default();
                    extend(
                        alert_value,
                        "Links",
                        Value::list(
                            ListType::Interface,
                            links
                                .into_iter()
                                .map(|l| {
                                    Value::structure(
                                        "notify.Link",
                                        vec![
                                            ("Label", Value::str(l.label)),
                                            ("URL", Value::str(l.url)),
                                        ],
                                    )
                                })
                                .collect(),
                        ),
                    )
                })
                .collect();
            *value = Value::list(list.ty, items);
        }
        fields.push(("TZ", Value::str(&self.timezone)));
        Value::Struct(Arc::new(Struct {
            ty: top.ty,
            pointer: top.pointer,
            fields,
        }))
    }

    /// Renders every template of the message for `n`: what `notify template render` shows.
    pub fn render(&self, n: &Notification) -> Result<RenderedEmail, EmailError> {
        let data = self.data(n);
        let render = |field: &str, t: &Prepared| {
            t.execute_value(&data)
                .map_err(|source| EmailError::TemplateExec {
                    field: field.to_string(),
                    source,
                })
        };
        let mut headers = Vec::with_capacity(self.templates.headers.len());
        for (_, name, template) in &self.templates.headers {
            headers.push((name.clone(), one_line(&render(name, template)?)));
        }
        Ok(RenderedEmail {
            to: render("to", &self.templates.to)?,
            from: render("from", &self.templates.from)?,
            subject: one_line(&render("subject", &self.templates.subject)?),
            headers,
            html: render("html", &self.templates.html)?,
            text: render("text", &self.templates.text)?,
        })
    }

    /// The message for `n` dated `now`, as it would be sent.
    pub fn message(&self, n: &Notification, now: DateTime<Utc>) -> Result<Message, EmailError> {
        let RenderedEmail {
            to: to_text,
            from: from_text,
            subject,
            headers,
            html,
            text,
        } = self.render(n)?;
        let to: Mailboxes = to_text
            .parse()
            .map_err(|e: lettre::address::AddressError| EmailError::Address {
                field: "to",
                value: to_text.clone(),
                reason: e.to_string(),
            })?;
        let from: lettre::message::Mailbox =
            from_text
                .trim()
                .parse()
                .map_err(|e: lettre::address::AddressError| EmailError::Address {
                    field: "from",
                    value: from_text.clone(),
                    reason: e.to_string(),
                })?;
        let domain = from.email.domain().to_string();
        let mut builder = Message::builder()
            .from(from)
            .mailbox(header::To::from(to))
            .subject(subject)
            .message_id(Some(message_id(&n.id, &domain)))
            .date(SystemTime::from(now))
            .user_agent(concat!("tradewatch/", env!("CARGO_PKG_VERSION")).to_string());
        for ((header, _, _), (_, value)) in self.templates.headers.iter().zip(headers) {
            builder = builder.raw_header(HeaderValue::new(header.clone(), value));
        }
        let message = match (html.trim().is_empty(), text.trim().is_empty()) {
            (false, false) => builder.multipart(MultiPart::alternative_plain_html(text, html))?,
            (false, true) => builder.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html),
            )?,
            (true, _) => builder.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(text),
            )?,
        };
        Ok(message)
    }

    /// Renders and sends `n` at `now`.
    pub async fn send(&self, n: &Notification, now: DateTime<Utc>) -> EmailOutcome {
        let message = match self.message(n, now) {
            Ok(message) => message,
            Err(e) => return EmailOutcome::Permanent(e),
        };
        match &self.sink {
            Sink::Smtp(transport) => match transport.send(message).await {
                Ok(response) => EmailOutcome::Delivered {
                    response: format!(
                        "{} {}",
                        response.code(),
                        response.message().collect::<Vec<_>>().join(" ")
                    ),
                },
                Err(e) if e.is_permanent() || e.is_client() => {
                    EmailOutcome::Permanent(EmailError::Smtp(e))
                }
                Err(e) => EmailOutcome::Retryable(EmailError::Smtp(e)),
            },
            Sink::Files(transport, dir) => match transport.send(message).await {
                Ok(id) => EmailOutcome::Delivered {
                    response: format!("wrote {}", dir.join(format!("{id}.eml")).display()),
                },
                Err(e) => EmailOutcome::Retryable(EmailError::File(e)),
            },
        }
    }
}

impl Deliver for Email {
    /// Sends the item's notification as this integration should get it; a notification with
    /// nothing left to send counts as delivered.
    async fn deliver(&self, item: &Item, now: DateTime<Utc>) -> Attempt {
        match for_integration(&item.notification, self.target.send_resolved) {
            Some(n) => self.send(&n, now).await.into(),
            None => Attempt::Delivered {
                response: Some("not sent: only resolved alerts and send_resolved is off".into()),
            },
        }
    }
}

/// A copy of the struct `value` with one more field.
fn extend(value: &Value, name: &'static str, field: Value) -> Value {
    match value {
        Value::Struct(s) => {
            let mut fields = s.fields.clone();
            fields.push((name, field));
            Value::Struct(Arc::new(Struct {
                ty: s.ty,
                pointer: s.pointer,
                fields,
            }))
        }
        other => other.clone(),
    }
}

fn one_line(s: &str) -> String {
    s.split(['\r', '\n'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `<tradewatch.<id>@<domain>>`: the same for every attempt of one notification. An id that is
/// not safe in a `Message-ID` is replaced by a hash of it.
pub fn message_id(notification_id: &str, domain: &str) -> String {
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let safe = !notification_id.is_empty()
        && notification_id
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(atext));
    let left = if safe {
        notification_id.to_string()
    } else {
        let digest = Sha256::digest(notification_id.as_bytes());
        digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
    };
    let domain = if domain.is_empty() {
        "tradewatch.localdomain"
    } else {
        domain
    };
    format!("<tradewatch.{left}@{domain}>")
}

fn smtp_transport(
    smarthost: &str,
    hello: &str,
    auth: &Option<SmtpAuth>,
    tls: SmtpTls,
    tls_config: &SmtpTlsConfig,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, EmailError> {
    let (host, port) = smarthost
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.trim_matches(['[', ']']), port.parse::<u16>().ok()?)))
        .filter(|(host, _)| !host.is_empty())
        .ok_or_else(|| EmailError::Smarthost(smarthost.to_string()))?;
    crate::server::install_crypto_provider();
    let parameters = || -> Result<TlsParameters, EmailError> {
        let name = tls_config
            .server_name
            .clone()
            .unwrap_or_else(|| host.to_string());
        let mut builder = TlsParameters::builder(name)
            .dangerous_accept_invalid_certs(tls_config.insecure_skip_verify);
        if let Some(pem) = &tls_config.ca_pem {
            builder =
                builder.add_root_certificate(Certificate::from_pem(pem).map_err(EmailError::Tls)?);
        }
        builder.build_rustls().map_err(EmailError::Tls)
    };
    let tls = match tls {
        SmtpTls::StartTls => Tls::Required(parameters()?),
        SmtpTls::Implicit => Tls::Wrapper(parameters()?),
        SmtpTls::None => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .tls(tls)
        .hello_name(ClientId::Domain(if hello.is_empty() {
            "localhost".to_string()
        } else {
            hello.to_string()
        }))
        .timeout(Some(timeout));
    if let Some(auth) = auth {
        builder = builder.credentials(Credentials::new(
            auth.username.clone(),
            auth.password.expose().to_string(),
        ));
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_stable_and_safe() {
        assert_eq!(
            message_id("n-01.a7", "example.com"),
            "<tradewatch.n-01.a7@example.com>"
        );
        let odd = message_id("a b<c>", "example.com");
        assert_eq!(odd, message_id("a b<c>", "example.com"));
        assert!(odd.starts_with("<tradewatch."));
        assert!(!odd.contains(' ') && !odd[1..odd.len() - 1].contains(['<', '>']));
        assert_eq!(message_id("x", ""), "<tradewatch.x@tradewatch.localdomain>");
    }

    #[test]
    fn alertmanager_tls_choice() {
        assert_eq!(SmtpTls::alertmanager(true, 465), SmtpTls::Implicit);
        assert_eq!(SmtpTls::alertmanager(false, 465), SmtpTls::Implicit);
        assert_eq!(SmtpTls::alertmanager(true, 587), SmtpTls::StartTls);
        assert_eq!(SmtpTls::alertmanager(false, 25), SmtpTls::None);
    }

    #[test]
    fn embedded_templates_parse() {
        let t = default_templates();
        for name in [
            "tradewatch.email.subject",
            "tradewatch.email.html",
            "tradewatch.email.text",
        ] {
            assert!(t.text().has(name) && t.html().has(name), "{name}");
        }
    }
}
