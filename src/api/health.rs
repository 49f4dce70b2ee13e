//! Health (DESIGN §5): `/-/healthy`, `/-/ready` and `/api/v1/health`, whose checks come from
//! every role in the process.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::Shared;
use crate::ingest::Ingest;

/// How a check stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// All is well.
    Healthy,
    /// Worth a look.
    Warning,
    /// Needs someone now.
    Critical,
}

/// One health check's result.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// How it stands.
    pub status: Status,
    /// In words.
    pub message: String,
}

/// A source of health checks: each role in a process adds its own.
pub trait HealthSource: Send + Sync {
    /// The checks as they stand now.
    fn checks(&self) -> Vec<Check>;
}

/// Every health source of a process.
#[derive(Default)]
pub struct Health {
    sources: Vec<Box<dyn HealthSource>>,
}

/// The body of `/api/v1/health`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The worst status of any check.
    pub status: Status,
    /// Every check.
    pub checks: Vec<Check>,
}

impl Health {
    /// Adds a source.
    pub fn add(&mut self, source: impl HealthSource + 'static) {
        self.sources.push(Box::new(source));
    }

    /// Runs every check.
    pub fn report(&self) -> Report {
        let checks: Vec<Check> = self.sources.iter().flat_map(|s| s.checks()).collect();
        let status = checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Healthy);
        Report { status, checks }
    }
}

/// The exporter's checks: journal writable, disk space, heartbeat age per engine.
pub struct ExporterHealth {
    /// The ingest pipeline.
    pub ingest: Arc<Ingest>,
    /// Heartbeat age past which an engine is a warning (critical past five times it).
    pub heartbeat_timeout: Duration,
}

impl HealthSource for ExporterHealth {
    fn checks(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        checks.push(match self.ingest.journal_error() {
            None => Check {
                name: "journal".into(),
                status: Status::Healthy,
                message: "the journal is writable".into(),
            },
            Some(e) => Check {
                name: "journal".into(),
                status: Status::Critical,
                message: e,
            },
        });
        let dir = self.ingest.data_dir();
        checks.push(match (fs4::available_space(dir), fs4::total_space(dir)) {
            (Ok(free), Ok(total)) => {
                let mib = free / (1 << 20);
                let status = if free < 64 << 20 {
                    Status::Critical
                } else if free < 1 << 30 || free * 20 < total {
                    Status::Warning
                } else {
                    Status::Healthy
                };
                Check {
                    name: "disk".into(),
                    status,
                    message: format!("{mib} MiB free in the data directory"),
                }
            }
            (Err(e), _) | (_, Err(e)) => Check {
                name: "disk".into(),
                status: Status::Warning,
                message: format!("free space unknown: {}", e.kind()),
            },
        });
        let now = crate::ingest::now();
        let timeout = self.heartbeat_timeout.as_secs_f64();
        self.ingest.catalog().heartbeat.for_each(|s| {
            let engine = s
                .labels()
                .trim_start_matches("engine=\"")
                .trim_end_matches('"');
            let age = now - s.value();
            let status = if age > 5.0 * timeout {
                Status::Critical
            } else if age > timeout {
                Status::Warning
            } else {
                Status::Healthy
            };
            checks.push(Check {
                name: format!("heartbeat:{engine}"),
                status,
                message: format!("last event {age:.1}s ago"),
            });
        });
        checks
    }
}

/// `GET /-/healthy`: the process is up.
pub async fn healthy() -> &'static str {
    "tradewatch is Healthy.\n"
}

/// `GET /-/ready`: the process can take work (its journal is writable).
pub async fn ready(State(state): State<Shared>) -> Response {
    match state.ingest.as_ref().and_then(|i| i.journal_error()) {
        None => "tradewatch is Ready.\n".into_response(),
        Some(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("tradewatch is not ready: {e}\n"),
        )
            .into_response(),
    }
}

/// `GET /api/v1/health`: every check; 503 when one is critical.
pub async fn health(State(state): State<Shared>) -> Response {
    let report = state.health.report();
    let status = if report.status == Status::Critical {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, axum::Json(report)).into_response()
}

/// The sidecar's checks: firing alerts by severity, rule evaluation errors, targets down.
pub struct SidecarHealth {
    /// The rule layer in force.
    pub rules: crate::rules::RulesHandle,
    /// Whether the data comes from scrape targets (so `up` says whether they answer).
    pub scrapes: bool,
    /// The notifier, whose outbox backlog and dead items are checked.
    pub notifier: Option<Arc<crate::notify::pipeline::Notifier>>,
}

/// A pending outbox item older than this is a warning; ten times it, critical.
const OUTBOX_BACKLOG_WARNING: f64 = 60.0;

fn outbox_check(notifier: &crate::notify::pipeline::Notifier) -> Check {
    use crate::notify::outbox::ItemState;
    let stats = match notifier.outbox().stats(chrono::Utc::now()) {
        Ok(s) => s,
        Err(e) => {
            return Check {
                name: "outbox".into(),
                status: Status::Critical,
                message: format!("the outbox cannot be read: {e}"),
            };
        }
    };
    let of = |state| stats.iter().find(|s| s.state == state).copied();
    let pending = of(ItemState::Pending);
    let dead = of(ItemState::Dead).map_or(0, |s| s.count);
    let (count, age) = pending.map_or((0, 0.0), |p| (p.count, p.oldest_age_seconds));
    let status = if age > 10.0 * OUTBOX_BACKLOG_WARNING {
        Status::Critical
    } else if age > OUTBOX_BACKLOG_WARNING || dead > 0 {
        Status::Warning
    } else {
        Status::Healthy
    };
    let mut message = format!("{count} pending (oldest {age:.0}s)");
    if dead > 0 {
        message.push_str(&format!(
            ", {dead} dead: see `tradewatch outbox list`, resend with `tradewatch outbox retry`"
        ));
    }
    Check {
        name: "outbox".into(),
        status,
        message,
    }
}

impl HealthSource for SidecarHealth {
    fn checks(&self) -> Vec<Check> {
        let mut firing: std::collections::BTreeMap<String, usize> = Default::default();
        let mut failing = Vec::new();
        let current = self.rules.current();
        for runner in current.groups() {
            let run = runner.snapshot();
            for alerts in &run.state.alerts {
                for a in alerts.values() {
                    if a.alert.state == crate::alerts::AlertState::Firing {
                        let severity = a.labels.get("severity").unwrap_or("none").to_owned();
                        *firing.entry(severity).or_default() += 1;
                    }
                }
            }
            for (i, status) in run.rules.iter().enumerate() {
                if let Some(e) = &status.last_error {
                    failing.push(format!(
                        "{} in group {}: {e}",
                        runner.group.rules[i].name(),
                        runner.group.name
                    ));
                }
            }
        }
        let total: usize = firing.values().sum();
        let alerts = Check {
            name: "alerts".into(),
            status: if firing.contains_key("critical") {
                Status::Critical
            } else if total > 0 {
                Status::Warning
            } else {
                Status::Healthy
            },
            message: if total == 0 {
                "no alert is firing".into()
            } else {
                let parts: Vec<String> = firing.iter().map(|(s, n)| format!("{n} {s}")).collect();
                format!("{total} firing: {}", parts.join(", "))
            },
        };
        let rules = Check {
            name: "rules".into(),
            status: if failing.is_empty() {
                Status::Healthy
            } else {
                Status::Warning
            },
            message: match failing.as_slice() {
                [] => format!("{} groups evaluating", current.groups().len()),
                [one] => format!("1 rule failing: {one}"),
                [first, rest @ ..] => format!("{} rules failing; first: {first}", rest.len() + 1),
            },
        };
        let mut checks = vec![alerts, rules];
        if let Some(n) = &self.notifier {
            checks.push(outbox_check(n));
        }
        if self.scrapes {
            let down = targets_down(current.store());
            checks.push(Check {
                name: "scrape".into(),
                status: if down.is_empty() {
                    Status::Healthy
                } else {
                    Status::Warning
                },
                message: if down.is_empty() {
                    "every target answers".into()
                } else {
                    format!("targets down: {}", down.join(", "))
                },
            });
        }
        checks
    }
}

/// The `instance` of every target whose latest `up` is 0.
fn targets_down(store: &crate::store::Store) -> Vec<String> {
    let expr = crate::promql::parse("up == 0").expect("a valid expression");
    let now = crate::rules::schedule::now_ms();
    match crate::promql::Engine::default().instant(store, &expr, now) {
        Ok(crate::promql::QueryResult {
            value: crate::promql::Value::Vector(v),
            ..
        }) => v
            .iter()
            .map(|s| s.labels.get_or_empty("instance").to_owned())
            .collect(),
        _ => Vec::new(),
    }
}
