//! The `notifier` section: where Alertmanager's routing file is, and what Alertmanager's format
//! cannot say (escalation, fallback, outbox retries, action links, webhook signing and bodies,
//! secrets from the environment), keyed by receiver name.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::check::{Checker, label_name_problem};
use super::server::check_env_name;
use crate::model::PromDuration;

/// How notifications are routed and delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifierConfig {
    /// Path of an Alertmanager configuration file (`alertmanager.yml`), used unchanged.
    pub config_file: Option<PathBuf>,
    /// The same configuration inline, instead of `config_file`; kept as a JSON-shaped value
    /// until the notifier reads it.
    pub config: Option<serde_json::Value>,
    /// The URL people reach this process at, for links in notifications; unset means the
    /// listener's address.
    pub external_url: Option<String>,
    /// IANA time zone for times shown in notifications (`America/New_York`).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Receivers notified when a firing alert stays unacknowledged too long.
    pub escalations: Vec<Escalation>,
    /// Receiver that gets notifications the outbox gave up on.
    pub fallback_receiver: Option<String>,
    /// Retries of undelivered notifications.
    pub outbox: OutboxConfig,
    /// Signed acknowledge and silence links in notifications; none without it.
    pub action_links: Option<ActionLinksConfig>,
    /// Settings Alertmanager's file cannot hold, by receiver name.
    pub receivers: BTreeMap<String, ReceiverExtras>,
}

/// Notify another receiver when matching alerts stay firing and unacknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// Alertmanager matchers (`severity="critical"`), all of which must match.
    pub matchers: Vec<String>,
    /// How long an alert must fire unacknowledged.
    pub after: PromDuration,
    /// The receiver to notify.
    pub receiver: String,
}

/// Delivery retries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Age at which an undelivered notification is dead and goes to the fallback receiver.
    #[serde(default = "default_max_age")]
    pub max_age: PromDuration,
    /// Exponential backoff between attempts, with jitter.
    pub backoff: Backoff,
}

/// Bounds of the exponential backoff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Backoff {
    /// Delay before the first retry.
    #[serde(default = "default_backoff_min")]
    pub min: PromDuration,
    /// Longest delay between retries.
    #[serde(default = "default_backoff_max")]
    pub max: PromDuration,
}

/// Signing of the `/a/<token>` links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionLinksConfig {
    /// File holding the signing key; without it a key is generated into the data directory
    /// (`action_links.key`) and kept there.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// How long a link stays valid.
    #[serde(default = "default_action_link_ttl")]
    pub ttl: PromDuration,
}

/// tradewatch's settings for one receiver of the Alertmanager file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiverExtras {
    /// Settings for the receiver's webhook configs.
    pub webhook: Option<WebhookExtras>,
    /// Settings for the receiver's email configs.
    pub email: Option<EmailExtras>,
}

/// Webhook settings Alertmanager lacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookExtras {
    /// File holding the HMAC-SHA256 key for `X-Tradewatch-Signature`; unsigned without it.
    pub secret_file: Option<PathBuf>,
    /// A template for the request body instead of Alertmanager's webhook payload.
    pub body_template: Option<String>,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
    /// How long one request may take.
    #[serde(default = "default_webhook_timeout")]
    pub timeout: PromDuration,
}

/// Email settings Alertmanager lacks: the SMTP password from the environment or a file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailExtras {
    /// Environment variable holding the SMTP password.
    pub auth_password_env: Option<String>,
    /// File holding the SMTP password.
    pub auth_password_file: Option<PathBuf>,
    /// Write each message as an `.eml` file in this directory instead of sending it over SMTP
    /// (local runs, the demo).
    pub files_dir: Option<PathBuf>,
}

fn default_timezone() -> String {
    "UTC".to_owned()
}

fn default_max_age() -> PromDuration {
    PromDuration::from_secs(24 * 3600)
}

fn default_backoff_min() -> PromDuration {
    PromDuration::from_millis(250)
}

fn default_backoff_max() -> PromDuration {
    PromDuration::from_secs(5 * 60)
}

fn default_action_link_ttl() -> PromDuration {
    PromDuration::from_secs(24 * 3600)
}

fn default_webhook_timeout() -> PromDuration {
    PromDuration::from_secs(10)
}

impl Default for NotifierConfig {
    fn default() -> NotifierConfig {
        NotifierConfig {
            config_file: None,
            config: None,
            external_url: None,
            timezone: default_timezone(),
            escalations: Vec::new(),
            fallback_receiver: None,
            outbox: OutboxConfig::default(),
            action_links: None,
            receivers: BTreeMap::new(),
        }
    }
}

impl Default for OutboxConfig {
    fn default() -> OutboxConfig {
        OutboxConfig {
            max_age: default_max_age(),
            backoff: Backoff::default(),
        }
    }
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            min: default_backoff_min(),
            max: default_backoff_max(),
        }
    }
}

impl Default for WebhookExtras {
    fn default() -> WebhookExtras {
        WebhookExtras {
            secret_file: None,
            body_template: None,
            headers: BTreeMap::new(),
            timeout: default_webhook_timeout(),
        }
    }
}

impl NotifierConfig {
    pub(crate) fn check(&self, c: &mut Checker<'_>) {
        c.exclusive(
            "config_file",
            self.config_file.is_some(),
            "config",
            self.config.is_some(),
        );
        if let Some(path) = &self.config_file {
            c.non_empty_path("config_file", path);
        }
        if self
            .config
            .as_ref()
            .is_some_and(|config| !config.is_object())
        {
            c.field_error("config", "must be a mapping in Alertmanager's format");
        }
        if let Some(url) = &self.external_url {
            c.http_url("external_url", url);
        }
        c.non_empty("timezone", &self.timezone);
        c.within("escalations", |c| {
            for (i, escalation) in self.escalations.iter().enumerate() {
                c.within(i, |c| {
                    c.positive("after", escalation.after);
                    c.non_empty("receiver", &escalation.receiver);
                    c.within("matchers", |c| {
                        for (j, matcher) in escalation.matchers.iter().enumerate() {
                            if let Some(problem) = matcher_problem(matcher) {
                                c.within(j, |c| c.value_error(problem));
                            }
                        }
                    });
                });
            }
        });
        if let Some(receiver) = &self.fallback_receiver {
            c.non_empty("fallback_receiver", receiver);
        }
        c.within("outbox", |c| {
            c.positive("max_age", self.outbox.max_age);
            let backoff = &self.outbox.backoff;
            c.within("backoff", |c| {
                c.positive("min", backoff.min);
                if backoff.min > backoff.max {
                    c.field_error(
                        "min",
                        format!(
                            "backoff min ({}) must not exceed max ({})",
                            backoff.min, backoff.max
                        ),
                    );
                }
            });
        });
        if let Some(links) = &self.action_links {
            c.within("action_links", |c| {
                if let Some(path) = &links.secret_file {
                    c.non_empty_path("secret_file", path);
                }
                c.positive("ttl", links.ttl);
            });
        }
        c.within("receivers", |c| {
            for (name, extras) in &self.receivers {
                if name.is_empty() {
                    c.field_key_error(name, "must not be empty");
                }
                c.within(name, |c| extras.check(c));
            }
        });
    }
}

impl ReceiverExtras {
    fn check(&self, c: &mut Checker<'_>) {
        if let Some(webhook) = &self.webhook {
            c.within("webhook", |c| {
                c.positive("timeout", webhook.timeout);
                if let Some(path) = &webhook.secret_file {
                    c.non_empty_path("secret_file", path);
                }
                c.within("headers", |c| {
                    for (name, value) in &webhook.headers {
                        let token =
                            |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
                        if name.is_empty() || !name.bytes().all(token) {
                            c.field_key_error(name, format!("invalid header name {name:?}"));
                        } else if value.contains(['\r', '\n', '\0']) {
                            c.field_error(
                                name,
                                format!("header {name} has a line break or NUL in its value"),
                            );
                        }
                    }
                });
            });
        }
        if let Some(email) = &self.email {
            c.within("email", |c| {
                c.exclusive(
                    "auth_password_env",
                    email.auth_password_env.is_some(),
                    "auth_password_file",
                    email.auth_password_file.is_some(),
                );
                if let Some(var) = &email.auth_password_env {
                    check_env_name(c, "auth_password_env", var);
                }
            });
        }
    }
}

/// Why `matcher` is not an Alertmanager matcher (`name="value"`, `name=~"regex"`, `!=`, `!~`;
/// the value quoted or bare), if it is not.
fn matcher_problem(matcher: &str) -> Option<String> {
    let matcher = matcher.trim();
    let Some(at) = matcher.find(['=', '!']) else {
        return Some(format!(
            "invalid matcher {matcher:?}: no operator (=, !=, =~, !~)"
        ));
    };
    let name = matcher[..at].trim();
    let rest = &matcher[at..];
    let op_len = if rest.starts_with("=~") || rest.starts_with("!~") || rest.starts_with("!=") {
        2
    } else if rest.starts_with('=') {
        1
    } else {
        return Some(format!(
            "invalid matcher {matcher:?}: no operator (=, !=, =~, !~)"
        ));
    };
    if let Some(problem) = label_name_problem(name).filter(|_| !name.starts_with("__")) {
        return Some(format!("invalid matcher {matcher:?}: {problem}"));
    }
    let value = rest[op_len..].trim();
    if value.starts_with('"') && (value.len() < 2 || !value.ends_with('"')) {
        return Some(format!(
            "invalid matcher {matcher:?}: unterminated quoted value"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::matcher_problem;

    #[test]
    fn matchers() {
        for good in [
            "severity=\"critical\"",
            "alertname=~\"Trading.*\"",
            "env != prod",
            "x=",
            "__name__=\"up\"",
        ] {
            assert_eq!(matcher_problem(good), None, "{good}");
        }
        for bad in ["severity", "1x=\"a\"", "=\"a\"", "a=\"b", "a!b"] {
            assert!(matcher_problem(bad).is_some(), "{bad}");
        }
    }
}
