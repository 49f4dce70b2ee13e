//! Receivers of `alertmanager.yml` as tradewatch delivers them: `email_configs` and
//! `webhook_configs` with Alertmanager's defaults (globals filled in), and Prometheus's
//! `http_config` and `tls_config`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::check::Check;
use super::raw::{RawEmail, RawHttpConfig, RawReceiver, RawTlsConfig, RawWebhook};

/// A receiver: a name and the integrations a notification to it goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Receiver {
    /// The unique name routes refer to.
    pub name: String,
    /// Email integrations.
    pub email_configs: Vec<EmailConfig>,
    /// Webhook integrations.
    pub webhook_configs: Vec<WebhookConfig>,
}

/// Which kind of integration.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum IntegrationKind {
    /// `email_configs`.
    Email,
    /// `webhook_configs`.
    Webhook,
}

impl IntegrationKind {
    /// `email` or `webhook`, as Alertmanager names integrations.
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationKind::Email => "email",
            IntegrationKind::Webhook => "webhook",
        }
    }

    /// The kind named `email` or `webhook`.
    pub fn parse(s: &str) -> Option<IntegrationKind> {
        match s {
            "email" => Some(IntegrationKind::Email),
            "webhook" => Some(IntegrationKind::Webhook),
            _ => None,
        }
    }
}

/// One integration of a receiver: its kind and its index among the receiver's configs of that
/// kind (Alertmanager's notification-log receiver: name, integration, index).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct IntegrationKey {
    /// Email or webhook.
    pub kind: IntegrationKind,
    /// Position among the receiver's configs of that kind.
    pub index: usize,
}

impl std::fmt::Display for IntegrationKey {
    /// `webhook[0]`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]", self.kind.as_str(), self.index)
    }
}

impl Receiver {
    /// The receiver's integrations with their `send_resolved`, emails first, in file order.
    pub fn integrations(&self) -> Vec<(IntegrationKey, bool)> {
        let emails = self.email_configs.iter().enumerate().map(|(index, e)| {
            let key = IntegrationKey {
                kind: IntegrationKind::Email,
                index,
            };
            (key, e.send_resolved)
        });
        let webhooks = self.webhook_configs.iter().enumerate().map(|(index, w)| {
            let key = IntegrationKey {
                kind: IntegrationKind::Webhook,
                index,
            };
            (key, w.send_resolved)
        });
        emails.chain(webhooks).collect()
    }
}

/// An email integration, with the `global` SMTP settings filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailConfig {
    /// Notify when alerts resolve (default false).
    pub send_resolved: bool,
    /// Recipients, as written (a template).
    pub to: String,
    /// Sender.
    pub from: String,
    /// Name sent in HELO/EHLO.
    pub hello: String,
    /// SMTP server, `host:port`.
    pub smarthost: String,
    /// SMTP user.
    pub auth_username: String,
    /// SMTP password.
    pub auth_password: Option<String>,
    /// File holding the SMTP password.
    pub auth_password_file: Option<PathBuf>,
    /// CRAM-MD5 secret.
    pub auth_secret: Option<String>,
    /// PLAIN identity.
    pub auth_identity: String,
    /// Extra headers (templates), names in canonical form.
    pub headers: BTreeMap<String, String>,
    /// HTML body template.
    pub html: String,
    /// Text body template; none when empty.
    pub text: String,
    /// Require STARTTLS.
    pub require_tls: bool,
    /// TLS settings.
    pub tls_config: TlsConfig,
}

/// A webhook integration.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    /// Notify when alerts resolve (default true).
    pub send_resolved: bool,
    /// The URL to POST to.
    pub url: Option<String>,
    /// A file holding the URL.
    pub url_file: Option<PathBuf>,
    /// At most this many alerts per message; 0 is all.
    pub max_alerts: u64,
    /// Client settings.
    pub http_config: HttpConfig,
}

/// Prometheus's HTTP client settings.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// Basic authentication.
    pub basic_auth: Option<BasicAuth>,
    /// An `Authorization` header (`bearer_token` is read as type `Bearer`).
    pub authorization: Option<Authorization>,
    /// TLS settings.
    pub tls_config: TlsConfig,
    /// Follow redirects (default true).
    pub follow_redirects: bool,
    /// Allow HTTP/2 (default true).
    pub enable_http2: bool,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            basic_auth: None,
            authorization: None,
            tls_config: TlsConfig::default(),
            follow_redirects: true,
            enable_http2: true,
        }
    }
}

/// `basic_auth`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// File holding the user name.
    pub username_file: Option<PathBuf>,
    /// Password.
    pub password: Option<String>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
}

/// `authorization`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Authorization {
    /// The scheme (`Bearer` by default).
    pub kind: String,
    /// The credentials.
    pub credentials: Option<String>,
    /// File holding the credentials.
    pub credentials_file: Option<PathBuf>,
}

/// `tls_config`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsConfig {
    /// CA certificate, PEM.
    pub ca: Option<String>,
    /// CA certificate file.
    pub ca_file: Option<PathBuf>,
    /// Client certificate, PEM.
    pub cert: Option<String>,
    /// Client certificate file.
    pub cert_file: Option<PathBuf>,
    /// Client key, PEM.
    pub key: Option<String>,
    /// Client key file.
    pub key_file: Option<PathBuf>,
    /// Server name to verify.
    pub server_name: Option<String>,
    /// Skip certificate verification.
    pub insecure_skip_verify: bool,
    /// Lowest TLS version (`TLS12`).
    pub min_version: Option<String>,
    /// Highest TLS version.
    pub max_version: Option<String>,
}

/// The `global` SMTP settings an email config falls back to.
#[derive(Debug, Clone, Default)]
pub(crate) struct SmtpDefaults {
    pub from: Option<String>,
    pub hello: String,
    pub smarthost: Option<String>,
    pub auth_username: String,
    pub auth_password: Option<String>,
    pub auth_password_file: Option<String>,
    pub auth_secret: Option<String>,
    pub auth_identity: String,
    pub require_tls: bool,
    pub tls_config: TlsConfig,
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.clone().filter(|s| !s.is_empty())
}

fn path(s: &Option<String>) -> Option<PathBuf> {
    nonempty(s).map(PathBuf::from)
}

/// Go's `textproto.CanonicalMIMEHeaderKey`: `content-type` → `Content-Type`.
fn canonical_header(name: &str) -> String {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !name.bytes().all(token) {
        return name.to_owned();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// Checks a `host:port` as Go's `net.SplitHostPort` and Alertmanager's `HostPort` do.
pub(crate) fn host_port_problem(s: &str) -> Option<String> {
    let port = if let Some(rest) = s.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Some(format!("address {s}: missing ']' in address"));
        };
        match rest[end + 1..].strip_prefix(':') {
            Some(port) => port,
            None => return Some(format!("address {s}: missing port in address")),
        }
    } else {
        match s.matches(':').count() {
            0 => return Some(format!("address {s}: missing port in address")),
            1 => s.rsplit(':').next().unwrap_or_default(),
            _ => return Some(format!("address {s}: too many colons in address")),
        }
    };
    port.is_empty()
        .then(|| format!("address {s:?}: port cannot be empty"))
}

/// Checks a URL as Alertmanager's `URL` type does: http or https, with a host.
pub(crate) fn url_problem(s: &str) -> Option<String> {
    match url::Url::parse(s) {
        Err(url::ParseError::EmptyHost) => Some("missing host for URL".to_owned()),
        Err(e) => Some(format!("parse {s:?}: {e}")),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            Some(format!("unsupported scheme {:?} for URL", u.scheme()))
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Some("missing host for URL".to_owned()),
        Ok(_) => None,
    }
}

pub(crate) fn tls_config(c: &mut Check<'_>, raw: Option<&RawTlsConfig>) -> TlsConfig {
    let Some(raw) = raw else {
        return TlsConfig::default();
    };
    for (field, value) in [
        ("min_version", &raw.min_version),
        ("max_version", &raw.max_version),
    ] {
        if let Some(v) = value
            && !matches!(v.as_str(), "TLS10" | "TLS11" | "TLS12" | "TLS13")
        {
            c.field_error(field, format!("unknown TLS version: {v}"));
        }
    }
    for (a, a_set, b, b_set) in [
        ("ca", raw.ca.is_some(), "ca_file", raw.ca_file.is_some()),
        (
            "cert",
            raw.cert.is_some(),
            "cert_file",
            raw.cert_file.is_some(),
        ),
        ("key", raw.key.is_some(), "key_file", raw.key_file.is_some()),
    ] {
        if a_set && b_set {
            c.field_key_error(b, format!("at most one of {a} and {b} must be configured"));
        }
    }
    TlsConfig {
        ca: nonempty(&raw.ca),
        ca_file: path(&raw.ca_file),
        cert: nonempty(&raw.cert),
        cert_file: path(&raw.cert_file),
        key: nonempty(&raw.key),
        key_file: path(&raw.key_file),
        server_name: nonempty(&raw.server_name),
        insecure_skip_verify: raw.insecure_skip_verify.unwrap_or(false),
        min_version: nonempty(&raw.min_version),
        max_version: nonempty(&raw.max_version),
    }
}

/// Checks and reads an `http_config` as Prometheus's `HTTPClientConfig.Validate` does.
pub(crate) fn http_config(c: &mut Check<'_>, raw: &RawHttpConfig) -> HttpConfig {
    for (field, set) in [
        ("oauth2", raw.oauth2.is_some()),
        ("proxy_url", raw.proxy_url.is_some()),
        ("no_proxy", raw.no_proxy.is_some()),
        (
            "proxy_from_environment",
            raw.proxy_from_environment.is_some(),
        ),
        ("proxy_connect_header", raw.proxy_connect_header.is_some()),
    ] {
        if set {
            c.field_key_error(field, format!("{field} is not supported by tradewatch"));
        }
    }
    let bearer = nonempty(&raw.bearer_token);
    let bearer_file = nonempty(&raw.bearer_token_file);
    if bearer.is_some() && bearer_file.is_some() {
        c.field_key_error(
            "bearer_token_file",
            "at most one of bearer_token & bearer_token_file must be configured",
        );
    }
    let basic_auth = raw.basic_auth.as_ref().map(|b| {
        c.within("basic_auth", |c| {
            if nonempty(&b.username).is_some() && nonempty(&b.username_file).is_some() {
                c.field_key_error(
                    "username_file",
                    "at most one of basic_auth username & username_file must be configured",
                );
            }
            if nonempty(&b.password).is_some() && nonempty(&b.password_file).is_some() {
                c.field_key_error(
                    "password_file",
                    "at most one of basic_auth password & password_file must be configured",
                );
            }
        });
        BasicAuth {
            username: b.username.clone().unwrap_or_default(),
            username_file: path(&b.username_file),
            password: nonempty(&b.password),
            password_file: path(&b.password_file),
        }
    });
    if basic_auth.is_some() && (bearer.is_some() || bearer_file.is_some()) {
        c.field_key_error(
            "basic_auth",
            "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured",
        );
    }
    let mut authorization = raw.authorization.as_ref().map(|a| {
        let kind = nonempty(&a.kind).unwrap_or_else(|| "Bearer".to_owned());
        c.within("authorization", |c| {
            if nonempty(&a.credentials).is_some() && nonempty(&a.credentials_file).is_some() {
                c.field_key_error(
                    "credentials_file",
                    "at most one of authorization credentials & credentials_file must be configured",
                );
            }
            if kind.eq_ignore_ascii_case("basic") {
                c.field_error(
                    "type",
                    "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
                );
            }
        });
        Authorization {
            kind,
            credentials: nonempty(&a.credentials),
            credentials_file: path(&a.credentials_file),
        }
    });
    if authorization.is_some() {
        if bearer.is_some() || bearer_file.is_some() {
            c.field_key_error(
                "authorization",
                "authorization is not compatible with bearer_token & bearer_token_file",
            );
        }
        if basic_auth.is_some() {
            c.field_key_error(
                "authorization",
                "at most one of basic_auth, oauth2 & authorization must be configured",
            );
        }
    } else if bearer.is_some() || bearer_file.is_some() {
        authorization = Some(Authorization {
            kind: "Bearer".to_owned(),
            credentials: bearer,
            credentials_file: bearer_file.map(PathBuf::from),
        });
    }
    let tls_config = c.within("tls_config", |c| tls_config(c, raw.tls_config.as_ref()));
    HttpConfig {
        basic_auth,
        authorization,
        tls_config,
        follow_redirects: raw.follow_redirects.unwrap_or(true),
        enable_http2: raw.enable_http2.unwrap_or(true),
    }
}

fn email(c: &mut Check<'_>, raw: &RawEmail, smtp: &SmtpDefaults) -> EmailConfig {
    let to = nonempty(&raw.to);
    if to.is_none() {
        c.key_error("missing to address in email config");
    }
    let mut headers = BTreeMap::new();
    if let Some(raw_headers) = &raw.headers {
        c.within("headers", |c| {
            for (name, value) in raw_headers {
                let canonical = canonical_header(name);
                if headers.insert(canonical.clone(), value.0.clone()).is_some() {
                    c.field_key_error(
                        name,
                        format!("duplicate header {canonical:?} in email config"),
                    );
                }
            }
        });
    }
    let smarthost = match nonempty(&raw.smarthost) {
        Some(host) => {
            if let Some(problem) = host_port_problem(&host) {
                c.field_error("smarthost", problem);
            }
            host
        }
        None => {
            if smtp.smarthost.is_none() {
                c.key_error("no global SMTP smarthost set");
            }
            smtp.smarthost.clone().unwrap_or_default()
        }
    };
    let from = match nonempty(&raw.from) {
        Some(from) => from,
        None => {
            if smtp.from.is_none() {
                c.key_error("no global SMTP from set");
            }
            smtp.from.clone().unwrap_or_default()
        }
    };
    if nonempty(&raw.auth_password).is_some() && nonempty(&raw.auth_password_file).is_some() {
        c.field_key_error(
            "auth_password_file",
            "at most one of auth_password & auth_password_file must be configured",
        );
    }
    let (auth_password, auth_password_file) =
        if nonempty(&raw.auth_password).is_none() && nonempty(&raw.auth_password_file).is_none() {
            (smtp.auth_password.clone(), path(&smtp.auth_password_file))
        } else {
            (nonempty(&raw.auth_password), path(&raw.auth_password_file))
        };
    let tls_config = match &raw.tls_config {
        Some(tls) => c.within("tls_config", |c| tls_config(c, Some(tls))),
        None => smtp.tls_config.clone(),
    };
    EmailConfig {
        send_resolved: raw.send_resolved.unwrap_or(false),
        to: to.unwrap_or_default(),
        from,
        hello: nonempty(&raw.hello).unwrap_or_else(|| smtp.hello.clone()),
        smarthost,
        auth_username: nonempty(&raw.auth_username).unwrap_or_else(|| smtp.auth_username.clone()),
        auth_password,
        auth_password_file,
        auth_secret: nonempty(&raw.auth_secret).or_else(|| smtp.auth_secret.clone()),
        auth_identity: nonempty(&raw.auth_identity).unwrap_or_else(|| smtp.auth_identity.clone()),
        headers,
        html: raw
            .html
            .clone()
            .unwrap_or_else(|| "{{ template \"email.default.html\" . }}".to_owned()),
        text: raw.text.clone().unwrap_or_default(),
        require_tls: raw.require_tls.unwrap_or(smtp.require_tls),
        tls_config,
    }
}

fn webhook(c: &mut Check<'_>, raw: &RawWebhook, global_http: &HttpConfig) -> WebhookConfig {
    let url = nonempty(&raw.url);
    let url_file = nonempty(&raw.url_file);
    match (&url, &url_file) {
        (None, None) => c.key_error("one of url or url_file must be configured"),
        (Some(_), Some(_)) => {
            c.field_key_error(
                "url_file",
                "at most one of url & url_file must be configured",
            );
        }
        (Some(url), None) => {
            if let Some(problem) = url_problem(url) {
                c.field_error("url", problem);
            }
        }
        (None, Some(_)) => {}
    }
    let http_config = match &raw.http_config {
        Some(h) => c.within("http_config", |c| http_config(c, h)),
        None => global_http.clone(),
    };
    WebhookConfig {
        send_resolved: raw.send_resolved.unwrap_or(true),
        url,
        url_file: url_file.map(PathBuf::from),
        max_alerts: raw.max_alerts.unwrap_or(0),
        http_config,
    }
}

/// Checks one receiver (its name is checked by the caller) and fills in the globals.
pub(crate) fn receiver(
    c: &mut Check<'_>,
    raw: &RawReceiver,
    smtp: &SmtpDefaults,
    global_http: &HttpConfig,
) -> Receiver {
    for kind in raw.unsupported() {
        c.field_key_error(
            kind,
            format!(
                "{kind} are not supported by tradewatch (it delivers email_configs and webhook_configs)"
            ),
        );
    }
    let email_configs = c.within("email_configs", |c| {
        raw.email_configs
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, e)| c.within(i, |c| email(c, e, smtp)))
            .collect()
    });
    let webhook_configs = c.within("webhook_configs", |c| {
        raw.webhook_configs
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, w)| c.within(i, |c| webhook(c, w, global_http)))
            .collect()
    });
    Receiver {
        name: raw.name.clone().unwrap_or_default(),
        email_configs,
        webhook_configs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports_and_urls() {
        assert_eq!(host_port_problem("smtp.example.com:587"), None);
        assert_eq!(host_port_problem("[::1]:25"), None);
        assert_eq!(
            host_port_problem("h").unwrap(),
            "address h: missing port in address"
        );
        assert_eq!(
            host_port_problem("h:").unwrap(),
            "address \"h:\": port cannot be empty"
        );
        assert_eq!(url_problem("https://hooks.example.com/x"), None);
        assert_eq!(
            url_problem("ftp://x/").unwrap(),
            "unsupported scheme \"ftp\" for URL"
        );
        assert_eq!(canonical_header("x-priority"), "X-Priority");
        assert_eq!(canonical_header("SUBJECT"), "Subject");
    }
}
