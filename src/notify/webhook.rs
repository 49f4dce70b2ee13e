//! The webhook channel: Alertmanager's webhook payload (version 4) or a templated body, POSTed
//! with reqwest, an `Idempotency-Key`, optional auth and extra headers, and with a secret an
//! HMAC-SHA256 signature over `"<timestamp>.<body>"`.
//!
//! Every send ends in a typed [`WebhookOutcome`]: delivered, a failure worth retrying (5xx, 408,
//! 429, a timeout, a connection that failed) or a permanent one (any other 4xx, a body template
//! that does not render).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;

use super::email::Links;
use super::outbox::{Attempt, Deliver, Item};
use super::payload::{ActionLink, WebhookMessage, for_integration, template_data, truncate};
use super::types::Notification;
use crate::config::server::read_secret_file;
use crate::config::{ConfigError, Secret, WebhookExtras};
use crate::template::alertmanager::{NotificationTemplates, Prepared};

/// The header carrying the notification id, the same on every retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The header carrying the Unix seconds the signature covers.
pub const TIMESTAMP_HEADER: &str = "x-tradewatch-timestamp";
/// The header carrying `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
pub const SIGNATURE_HEADER: &str = "x-tradewatch-signature";

/// How much of a response body is kept for the alert log.
const RESPONSE_EXCERPT: usize = 512;

/// How a webhook request authenticates.
#[derive(Debug, Clone, Default)]
pub enum WebhookAuth {
    /// No `Authorization` header.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// HTTP basic auth.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
}

/// One webhook integration, resolved: defaults applied, secrets loaded.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    /// Where to POST.
    pub url: String,
    /// Whether resolved alerts are sent (see [`super::payload::for_integration`]).
    pub send_resolved: bool,
    /// At most this many alerts per request; 0 for all.
    pub max_alerts: usize,
    /// Authentication.
    pub auth: WebhookAuth,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
    /// How long one request may take.
    pub timeout: Duration,
    /// Key of the `X-Tradewatch-Signature` HMAC; unsigned without it.
    pub secret: Option<Secret>,
    /// A Go template for the body (over Alertmanager's data) instead of the JSON payload.
    pub body_template: Option<String>,
}

impl WebhookTarget {
    /// A target at `url` with Alertmanager's defaults: resolved alerts sent, no limit on
    /// alerts, no auth, a 10 s timeout, unsigned.
    pub fn new(url: impl Into<String>) -> WebhookTarget {
        WebhookTarget {
            url: url.into(),
            send_resolved: true,
            max_alerts: 0,
            auth: WebhookAuth::None,
            headers: BTreeMap::new(),
            timeout: Duration::from_secs(10),
            secret: None,
            body_template: None,
        }
    }
}

impl WebhookTarget {
    /// Applies tradewatch's settings for this receiver (`notifier.receivers.<name>.webhook`):
    /// extra headers, timeout, body template, and the signing secret read from its file (a
    /// trailing newline dropped).
    pub fn apply_extras(&mut self, extras: &WebhookExtras) -> Result<(), ConfigError> {
        self.headers
            .extend(extras.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.timeout = extras.timeout.0;
        if let Some(template) = &extras.body_template {
            self.body_template = Some(template.clone());
        }
        if let Some(path) = &extras.secret_file {
            self.secret = Some(read_secret_file(path, "webhook secret")?);
        }
        Ok(())
    }
}

/// Why a webhook could not be set up or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL does not parse or is not http(s).
    #[error("invalid webhook url {url:?}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A configured header has an invalid name or value.
    #[error("invalid webhook header {name:?}")]
    Header {
        /// The header's name.
        name: String,
    },
    /// The body template does not parse.
    #[error("webhook body template: {0}")]
    TemplateParse(#[from] crate::template::ParseError),
    /// The body template failed while rendering.
    #[error("webhook body template: {0}")]
    TemplateExec(#[from] crate::template::ExecError),
    /// The HTTP client could not be built.
    #[error("webhook client: {0}")]
    Client(#[source] reqwest::Error),
    /// The receiver answered with a status other than 2xx.
    #[error("webhook answered {status}: {body}")]
    Status {
        /// The status.
        status: StatusCode,
        /// The start of the response body.
        body: String,
    },
    /// No answer within the timeout.
    #[error("webhook request timed out after {0:?}")]
    Timeout(Duration),
    /// The connection failed.
    #[error("webhook connection failed: {0}")]
    Connect(#[source] reqwest::Error),
    /// The request failed otherwise (reset connection, broken body).
    #[error("webhook request failed: {0}")]
    Request(#[source] reqwest::Error),
}

/// What one send came to.
#[derive(Debug)]
pub enum WebhookOutcome {
    /// The receiver answered 2xx.
    Delivered {
        /// The status.
        status: StatusCode,
        /// The start of the response body.
        body: String,
    },
    /// Worth another attempt later: 5xx, 408, 429, a timeout, a failed connection.
    Retryable(WebhookError),
    /// Will fail the same way again: another 4xx, a template that fails.
    Permanent(WebhookError),
}

impl WebhookOutcome {
    /// The HTTP status the receiver answered, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            WebhookOutcome::Delivered { status, .. } => Some(*status),
            WebhookOutcome::Retryable(WebhookError::Status { status, .. })
            | WebhookOutcome::Permanent(WebhookError::Status { status, .. }) => Some(*status),
            _ => None,
        }
    }
}

/// Whether a failure with this status is worth retrying.
pub fn retryable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// `sha256=<lowercase hex HMAC-SHA256 of "<timestamp>.<body>">`, the value of
/// `X-Tradewatch-Signature`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest {
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    out
}

/// A webhook integration ready to send.
pub struct Webhook {
    target: WebhookTarget,
    url: reqwest::Url,
    headers: HeaderMap,
    body: Option<Prepared>,
    external_url: String,
    client: reqwest::Client,
    links: Option<Links>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("target", &self.target)
            .field("url", &self.url)
            .field("body", &self.body)
            .field("external_url", &self.external_url)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// Checks the target (URL, headers, body template) and builds its client; `templates` holds
    /// the operator's template files beside Alertmanager's defaults, and `external_url` goes
    /// into the payload.
    pub fn new(
        target: WebhookTarget,
        templates: &NotificationTemplates,
        external_url: &str,
    ) -> Result<Webhook, WebhookError> {
        let url = reqwest::Url::parse(&target.url).map_err(|e| WebhookError::Url {
            url: target.url.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(WebhookError::Url {
                url: target.url.clone(),
                reason: format!("scheme {} is not http or https", url.scheme()),
            });
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in &target.headers {
            let bad = || WebhookError::Header { name: name.clone() };
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
            let value = HeaderValue::from_str(value).map_err(|_| bad())?;
            headers.insert(name, value);
        }
        let body = target
            .body_template
            .as_deref()
            .map(|text| templates.prepare_text(text))
            .transpose()?;
        crate::server::install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(concat!("tradewatch/", env!("CARGO_PKG_VERSION")))
            .timeout(target.timeout)
            .build()
            .map_err(WebhookError::Client)?;
        Ok(Webhook {
            target,
            url,
            headers,
            body,
            external_url: external_url.to_string(),
            client,
            links: None,
        })
    }

    /// Puts these links (the action links) in each alert of the default payload, as
    /// `actions`.
    pub fn with_links(mut self, links: Links) -> Webhook {
        self.links = Some(links);
        self
    }

    /// Alertmanager's payload for `n`, with the action links when configured.
    fn message(&self, n: &Notification) -> WebhookMessage {
        let (alerts, truncated) = truncate(&n.alerts, self.target.max_alerts);
        let data = template_data(n, alerts, &self.external_url);
        let mut message = WebhookMessage::from_data(&data, &n.group_key, truncated);
        if let Some(links) = &self.links {
            for (out, alert) in message.alerts.iter_mut().zip(alerts) {
                out.actions = links(n, alert)
                    .into_iter()
                    .map(|l| ActionLink {
                        label: l.label,
                        url: l.url,
                    })
                    .collect();
            }
        }
        message
    }

    /// The target this webhook sends to.
    pub fn target(&self) -> &WebhookTarget {
        &self.target
    }

    /// The request body for `n`: Alertmanager's JSON payload, or the body template rendered
    /// over the same (truncated) data.
    pub fn body(&self, n: &Notification) -> Result<Vec<u8>, WebhookError> {
        match &self.body {
            Some(template) => {
                let (alerts, _) = truncate(&n.alerts, self.target.max_alerts);
                let data = template_data(n, alerts, &self.external_url);
                Ok(template.execute(&data)?.into_bytes())
            }
            None => Ok(serde_json::to_vec(&self.message(n))
                .unwrap_or_else(|e| unreachable!("a message of strings serializes: {e}"))),
        }
    }

    /// The request body for `n` as a person reads it (`notify template render`): the body
    /// template's output as it is, or Alertmanager's JSON payload indented, fields in the order
    /// they are sent.
    pub fn render(&self, n: &Notification) -> Result<String, WebhookError> {
        if self.body.is_some() {
            return Ok(String::from_utf8_lossy(&self.body(n)?).into_owned());
        }
        Ok(serde_json::to_string_pretty(&self.message(n))
            .unwrap_or_else(|e| unreachable!("a message of strings serializes: {e}")))
    }

    /// POSTs `n`, signed at `now` when a secret is configured.
    pub async fn send(&self, n: &Notification, now: DateTime<Utc>) -> WebhookOutcome {
        let body = match self.body(n) {
            Ok(body) => body,
            Err(e) => return WebhookOutcome::Permanent(e),
        };
        let mut request = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(IDEMPOTENCY_KEY, &n.id);
        request = match &self.target.auth {
            WebhookAuth::None => request,
            WebhookAuth::Bearer(token) => request.bearer_auth(token.expose()),
            WebhookAuth::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose()))
            }
        };
        if let Some(secret) = &self.target.secret {
            let ts = now.timestamp();
            request = request.header(TIMESTAMP_HEADER, ts.to_string()).header(
                SIGNATURE_HEADER,
                signature(secret.expose().as_bytes(), ts, &body),
            );
        }
        let response = match request.body(body).send().await {
            Ok(response) => response,
            Err(e) => return self.failed(e),
        };
        let status = response.status();
        let body = match response.bytes().await {
            Ok(bytes) => excerpt(&bytes),
            Err(e) if status.is_success() => {
                // The receiver said yes; a body cut short does not change that.
                tracing::debug!(url = %self.url, error = %e, "Webhook response body unread.");
                String::new()
            }
            Err(e) => return self.failed(e),
        };
        if status.is_success() {
            WebhookOutcome::Delivered { status, body }
        } else if retryable_status(status) {
            WebhookOutcome::Retryable(WebhookError::Status { status, body })
        } else {
            WebhookOutcome::Permanent(WebhookError::Status { status, body })
        }
    }

    fn failed(&self, e: reqwest::Error) -> WebhookOutcome {
        if e.is_timeout() {
            WebhookOutcome::Retryable(WebhookError::Timeout(self.target.timeout))
        } else if e.is_connect() {
            WebhookOutcome::Retryable(WebhookError::Connect(e.without_url()))
        } else if e.is_builder() {
            WebhookOutcome::Permanent(WebhookError::Request(e.without_url()))
        } else {
            WebhookOutcome::Retryable(WebhookError::Request(e.without_url()))
        }
    }
}

impl From<WebhookOutcome> for Attempt {
    fn from(outcome: WebhookOutcome) -> Attempt {
        match outcome {
            WebhookOutcome::Delivered { status, body } => Attempt::Delivered {
                response: Some(response_line(status, &body)),
            },
            WebhookOutcome::Retryable(e) | WebhookOutcome::Permanent(e) => {
                let retryable = matches!(e, WebhookError::Status { status, .. } if retryable_status(status))
                    || matches!(
                        e,
                        WebhookError::Timeout(_)
                            | WebhookError::Connect(_)
                            | WebhookError::Request(_)
                    );
                let response = match &e {
                    WebhookError::Status { status, body } => Some(response_line(*status, body)),
                    _ => None,
                };
                Attempt::Failed {
                    error: e.to_string(),
                    response,
                    retryable,
                }
            }
        }
    }
}

impl Deliver for Webhook {
    /// Sends the item's notification as this integration should get it (see
    /// [`for_integration`]); a notification with nothing left to send counts as delivered.
    async fn deliver(&self, item: &Item, now: DateTime<Utc>) -> Attempt {
        match for_integration(&item.notification, self.target.send_resolved) {
            Some(n) => self.send(&n, now).await.into(),
            None => Attempt::Delivered {
                response: Some("not sent: only resolved alerts and send_resolved is off".into()),
            },
        }
    }
}

/// `200 OK: <body excerpt>`, what the alert log keeps of an answer.
fn response_line(status: StatusCode, body: &str) -> String {
    if body.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {body}")
    }
}

fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(RESPONSE_EXCERPT)]);
    text.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Python's `hmac.new(b"key", b"1700000000.{}", hashlib.sha256).hexdigest()`.
        assert_eq!(
            signature(b"key", 1_700_000_000, b"{}"),
            "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }

    #[test]
    fn retry_classification() {
        for s in [500, 502, 503, 408, 429] {
            assert!(retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 410, 422] {
            assert!(!retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }
}
