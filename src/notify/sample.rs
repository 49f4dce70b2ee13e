//! Trying a receiver out: `tradewatch notify test --receiver NAME` sends a sample notification
//! through each of the receiver's real integrations (SMTP, webhook, `.eml` files) with the
//! configured templates and reports each outcome; `tradewatch notify template render` shows
//! what the receiver's templates make of the same sample, sending nothing.
//!
//! The sample is a group of two alerts of the rule pack's `TradingDailyLossLimitBreached`, one
//! critical and one warning, with the annotations the pack gives (summary, description, value,
//! runbook and dashboard links).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::outbox::{Attempt, Channels, IntegrationKind, IntegrationRef};
use super::{Alert, Notification};
use crate::config::Config;

/// Why a receiver cannot be tried.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The configuration names no routing file.
    #[error(
        "{0}: the notifier section names no routing file (notifier.config_file or notifier.config)"
    )]
    NoRouting(String),
    /// The routing file could not be used.
    #[error("{0}")]
    Routing(String),
    /// No receiver has this name.
    #[error("no receiver named {name:?}; the receivers are: {known}")]
    UnknownReceiver {
        /// The name asked for.
        name: String,
        /// The names there are, comma-separated.
        known: String,
    },
    /// The receiver has no email or webhook integration.
    #[error("receiver {0:?} has no email_configs or webhook_configs")]
    NoIntegrations(String),
    /// An integration cannot be built (a secret file that cannot be read, a bad template).
    #[error("{0}")]
    Channel(String),
}

/// A sample notification for `receiver`, as its group would be flushed at `now`: two alerts
/// firing since ten minutes before, or both resolved a minute before when `resolved`. Its id
/// is new at every call, so a receiver that drops repeated `Idempotency-Key`s takes each test.
pub fn sample_notification(receiver: &str, resolved: bool, now: DateTime<Utc>) -> Notification {
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let starts_at = now - chrono::Duration::minutes(10);
    let ends_at = if resolved {
        now - chrono::Duration::minutes(1)
    } else {
        now + chrono::Duration::minutes(5)
    };
    let alert = |engine: &str, severity: &str, loss: &str, limit: &str| Alert {
        labels: labels(&[
            ("alertname", "TradingDailyLossLimitBreached"),
            ("engine", engine),
            ("severity", severity),
            ("strategy", "momentum"),
        ]),
        annotations: labels(&[
            (
                "summary",
                &format!("Sample: daily loss {loss} USD on {engine} is past the {limit} USD limit"),
            ),
            (
                "description",
                "A sample alert from tradewatch notify, to check this receiver.",
            ),
            ("value", &format!("-{loss}")),
            (
                "runbook_url",
                "https://github.com/tradewatch/tradewatch/blob/main/docs/runbooks/TradingDailyLossLimitBreached.md",
            ),
            (
                "dashboard",
                &format!("http://localhost:3000/d/tradewatch-risk?var-engine={engine}"),
            ),
        ]),
        starts_at,
        ends_at,
        updated_at: now,
        generator_url: "http://127.0.0.1:9470/graph?g0.expr=trading_daily_pnl".into(),
        timeout: false,
    };
    Notification {
        id: format!("sample-{}", now.timestamp_nanos_opt().unwrap_or_default()),
        receiver: receiver.to_owned(),
        group_key: "{}:{alertname=\"TradingDailyLossLimitBreached\", strategy=\"momentum\"}".into(),
        group_labels: labels(&[
            ("alertname", "TradingDailyLossLimitBreached"),
            ("strategy", "momentum"),
        ]),
        alerts: vec![
            alert("eng-1", "critical", "12400", "10000"),
            alert("eng-2", "warning", "8100", "10000"),
        ],
        created_at: now,
    }
}

/// The integrations of one receiver of `config`'s routing file, built as the running notifier
/// builds them (templates, secrets, `notifier.receivers` extras), in the order of
/// [`crate::notify::config::Receiver::integrations`] (emails first).
pub struct ReceiverChannels {
    channels: Channels,
    integrations: Vec<IntegrationRef>,
}

impl ReceiverChannels {
    /// Builds the integrations of `receiver`; only that receiver's secrets are read.
    pub fn build(config: &Config, receiver: &str) -> Result<ReceiverChannels, SampleError> {
        use crate::roles::sidecar::{notification_templates, routing};
        let origin = config.path.as_ref().map_or_else(
            || "the configuration".to_owned(),
            |p| p.display().to_string(),
        );
        let mut am = routing(config)
            .map_err(|e| SampleError::Routing(e.to_string()))?
            .ok_or(SampleError::NoRouting(origin))?;
        let Some(found) = am.receivers.iter().find(|r| r.name == receiver).cloned() else {
            let known: Vec<&str> = am.receivers.iter().map(|r| r.name.as_str()).collect();
            return Err(SampleError::UnknownReceiver {
                name: receiver.to_owned(),
                known: known.join(", "),
            });
        };
        let integrations: Vec<IntegrationRef> = found
            .integrations()
            .into_iter()
            .map(|(key, _)| IntegrationRef::new(receiver, key.kind, key.index))
            .collect();
        if integrations.is_empty() {
            return Err(SampleError::NoIntegrations(receiver.to_owned()));
        }
        am.receivers = vec![found];
        let templates =
            notification_templates(&am).map_err(|e| SampleError::Routing(e.to_string()))?;
        let channels = super::pipeline::channels(
            &am,
            &config.notifier,
            &templates,
            &external_url(config),
            None,
        )
        .map_err(|e| SampleError::Channel(e.to_string()))?;
        Ok(ReceiverChannels {
            channels,
            integrations,
        })
    }

    /// The receiver's integrations, emails first.
    pub fn integrations(&self) -> &[IntegrationRef] {
        &self.integrations
    }

    /// Sends `n` through every integration at `now`; gives each one's outcome, in order.
    pub async fn send(
        &self,
        n: &Notification,
        now: DateTime<Utc>,
    ) -> Vec<(IntegrationRef, Attempt)> {
        let mut outcomes = Vec::with_capacity(self.integrations.len());
        for at in &self.integrations {
            let attempt = match at.kind {
                IntegrationKind::Email => match self.channels.email(at) {
                    Some(email) => email.send(n, now).await.into(),
                    None => missing(at),
                },
                IntegrationKind::Webhook => match self.channels.webhook(at) {
                    Some(webhook) => webhook.send(n, now).await.into(),
                    None => missing(at),
                },
            };
            outcomes.push((at.clone(), attempt));
        }
        outcomes
    }

    /// What each integration's templates make of `n`: for an email its addresses, subject,
    /// headers and both bodies; for a webhook the request body. A template that fails is
    /// reported in its place, and makes the result an error.
    pub fn render(&self, n: &Notification) -> Result<String, String> {
        let mut out = String::new();
        let mut failed = false;
        for at in &self.integrations {
            let _ = writeln!(out, "==> {} {}", at.receiver, at.integration());
            match at.kind {
                IntegrationKind::Email => match self.channels.email(at).map(|e| e.render(n)) {
                    Some(Ok(email)) => {
                        let _ = writeln!(out, "To: {}", email.to.trim());
                        let _ = writeln!(out, "From: {}", email.from.trim());
                        let _ = writeln!(out, "Subject: {}", email.subject);
                        for (name, value) in &email.headers {
                            let _ = writeln!(out, "{name}: {value}");
                        }
                        if !email.text.trim().is_empty() {
                            let _ = writeln!(out, "\n--- text ---\n{}", email.text.trim_end());
                        }
                        if !email.html.trim().is_empty() {
                            let _ = writeln!(out, "\n--- html ---\n{}", email.html.trim_end());
                        }
                    }
                    Some(Err(e)) => {
                        failed = true;
                        let _ = writeln!(out, "error: {e}");
                    }
                    None => {
                        failed = true;
                        let _ = writeln!(out, "error: not configured");
                    }
                },
                IntegrationKind::Webhook => match self.channels.webhook(at).map(|w| w.render(n)) {
                    Some(Ok(body)) => {
                        let _ = writeln!(out, "{}", body.trim_end());
                    }
                    Some(Err(e)) => {
                        failed = true;
                        let _ = writeln!(out, "error: {e}");
                    }
                    None => {
                        failed = true;
                        let _ = writeln!(out, "error: not configured");
                    }
                },
            }
            out.push('\n');
        }
        if failed { Err(out) } else { Ok(out) }
    }
}

fn missing(at: &IntegrationRef) -> Attempt {
    Attempt::Failed {
        error: format!(
            "receiver {} has no integration {}",
            at.receiver,
            at.integration()
        ),
        response: None,
        retryable: false,
    }
}

/// The URL notifications link back to: `notifier.external_url`, else the listener's.
fn external_url(config: &Config) -> String {
    if let Some(url) = &config.notifier.external_url {
        return url.clone();
    }
    let scheme = if config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    match config.server.listen {
        Some(addr) => format!("{scheme}://{addr}"),
        None => format!("{scheme}://127.0.0.1:9470"),
    }
}

/// `notify test`: sends a sample notification to `receiver` and reports each integration's
/// outcome; true when every one delivered.
pub async fn run_test(config: &Config, receiver: &str) -> Result<(String, bool), SampleError> {
    let channels = ReceiverChannels::build(config, receiver)?;
    let now = Utc::now();
    let n = sample_notification(receiver, false, now);
    let mut out = format!(
        "Sent a sample notification (id {}) to receiver {receiver}:\n",
        n.id
    );
    let mut ok = true;
    for (at, attempt) in channels.send(&n, now).await {
        match attempt {
            Attempt::Delivered { response } => {
                let _ = writeln!(
                    out,
                    "  {}: delivered: {}",
                    at.integration(),
                    response.unwrap_or_default()
                );
            }
            Attempt::Failed {
                error, retryable, ..
            } => {
                ok = false;
                let kind = if retryable { "temporary" } else { "permanent" };
                let _ = writeln!(out, "  {}: failed ({kind}): {error}", at.integration());
            }
        }
    }
    Ok((out, ok))
}

/// `notify template render`: the receiver's templates over the sample notification.
pub fn run_render(
    config: &Config,
    receiver: &str,
    resolved: bool,
) -> Result<Result<String, String>, SampleError> {
    let channels = ReceiverChannels::build(config, receiver)?;
    Ok(channels.render(&sample_notification(receiver, resolved, Utc::now())))
}
