//! The notifier's routing file, Alertmanager's `alertmanager.yml` unchanged: read strictly,
//! checked as `amtool check-config` checks it, every problem reported at once as
//! `file:line:col: message`. The same shape is accepted inline, as tradewatch's
//! `notifier.config`.
//!
//! ```
//! use tradewatch::notify::config::AlertmanagerConfig;
//!
//! let text = "route:\n  receiver: ops\nreceivers:\n  - name: ops\n";
//! let config = AlertmanagerConfig::parse(text, "alertmanager.yml").unwrap();
//! assert_eq!(config.route.opts.receiver, "ops");
//!
//! let error = AlertmanagerConfig::parse("route:\n  receiver: nobody\nreceivers:\n  - name: ops\n", "am.yml");
//! assert_eq!(
//!     error.unwrap_err().to_string(),
//!     "am.yml:2:13: route.receiver: undefined receiver \"nobody\" used in route"
//! );
//! ```

mod check;
mod raw;
mod receivers;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use self::check::Check;
use self::raw::{RawConfig, RawInhibitRule, RawNamedInterval, RawRoute, Scalar};
use crate::config::yaml::{self, Diagnostic, Spans, YamlError};
use crate::config::{Config, ConfigError};
use crate::model::PromDuration;

use super::inhibit::InhibitRule;
use super::matcher::{MatchOp, Matcher, Matchers, is_valid_label_name, parse_matchers};
use super::route::{Route, RouteSpec};
use super::time_interval::{self as ti, TimeInterval};

pub use receivers::{
    Authorization, BasicAuth, EmailConfig, HttpConfig, IntegrationKey, IntegrationKind, Receiver,
    TlsConfig, WebhookConfig,
};

/// A validated Alertmanager configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertmanagerConfig {
    /// `global`.
    pub global: GlobalConfig,
    /// The routing tree.
    pub route: Route,
    /// The receivers, in file order.
    pub receivers: Vec<Receiver>,
    /// The inhibition rules, in file order.
    pub inhibit_rules: Vec<InhibitRule>,
    /// Named time intervals (`time_intervals` and the older `mute_time_intervals`).
    pub time_intervals: BTreeMap<String, Vec<TimeInterval>>,
    /// Template file globs, relative ones resolved against the file's directory.
    pub templates: Vec<String>,
}

/// `global`: what applies everywhere unless a receiver says otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalConfig {
    /// How long an alert without an end time stays firing after its last update (default 5m).
    pub resolve_timeout: Duration,
    /// Default HTTP client settings of webhooks.
    pub http_config: HttpConfig,
}

/// Why an Alertmanager configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum NotifyConfigError {
    /// The file could not be read.
    #[error("failed to read notifier config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not YAML, or not of Alertmanager's shape: one error, located.
    #[error(transparent)]
    Syntax(#[from] YamlError),
    /// Well-formed but wrong: every problem, one a line, in file order.
    #[error("{}", Lines(.0))]
    Invalid(Vec<Diagnostic>),
    /// A tradewatch configuration that could not be loaded.
    #[error(transparent)]
    Tradewatch(#[from] ConfigError),
    /// A tradewatch configuration without `notifier.config_file` or `notifier.config`.
    #[error("{}: no notifier.config_file or notifier.config: no Alertmanager configuration", path.display())]
    Missing {
        /// The tradewatch configuration file.
        path: PathBuf,
    },
}

struct Lines<'a>(&'a [Diagnostic]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// The keys only an Alertmanager file has at its top level.
const ALERTMANAGER_KEYS: [&str; 7] = [
    "global",
    "route",
    "receivers",
    "inhibit_rules",
    "templates",
    "time_intervals",
    "mute_time_intervals",
];

impl AlertmanagerConfig {
    /// Parses and checks an Alertmanager configuration text; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<AlertmanagerConfig, NotifyConfigError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let (raw, spans, mut problems) = if is_blank(text) {
            (RawConfig::default(), Spans::default(), Vec::new())
        } else {
            let (doc, problems) = yaml::parse_recovering::<RawConfig>(text, origin, recover)?;
            (doc.value, doc.spans, problems)
        };
        let mut check = Check::new(origin, Some(&spans), Vec::new());
        let config = build(&mut check, &raw);
        finish(config, &mut problems, check)
    }

    /// Reads and checks the file at `path`; relative template globs are resolved against its
    /// directory, as Alertmanager does.
    pub fn load(path: &Path) -> Result<AlertmanagerConfig, NotifyConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| NotifyConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = AlertmanagerConfig::parse(&text, &path.display().to_string())?;
        config.resolve_paths(path.parent().unwrap_or(Path::new("")));
        Ok(config)
    }

    /// Checks an inline configuration (tradewatch's `notifier.config`, read as JSON-shaped
    /// data); problems carry paths but no positions.
    pub fn from_value(
        value: &serde_json::Value,
        origin: &str,
    ) -> Result<AlertmanagerConfig, NotifyConfigError> {
        let raw: RawConfig = serde_json::from_value(value.clone()).map_err(|e| {
            NotifyConfigError::Syntax(YamlError(Diagnostic {
                origin: origin.to_owned(),
                location: None,
                message: format!("notifier.config: {e}"),
            }))
        })?;
        let mut check = Check::new(origin, None, vec!["notifier".into(), "config".into()]);
        let config = build(&mut check, &raw);
        finish(config, &mut Vec::new(), check)
    }

    /// The Alertmanager configuration a tradewatch configuration file points at: the file of
    /// `notifier.config_file` (relative to the tradewatch file's directory), or the inline
    /// `notifier.config`, located in the tradewatch file.
    pub fn from_tradewatch(path: &Path) -> Result<AlertmanagerConfig, NotifyConfigError> {
        let config = Config::load(path)?;
        let dir = path.parent().unwrap_or(Path::new(""));
        if let Some(file) = &config.notifier.config_file {
            return AlertmanagerConfig::load(&dir.join(file));
        }
        if config.notifier.config.is_none() {
            return Err(NotifyConfigError::Missing {
                path: path.to_owned(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| NotifyConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let origin = path.display().to_string();
        let (doc, mut problems) = yaml::parse_recovering::<Outer>(&text, &origin, recover)?;
        let raw = doc
            .value
            .notifier
            .and_then(|n| n.config)
            .unwrap_or_default();
        let mut check = Check::new(
            &origin,
            Some(&doc.spans),
            vec!["notifier".into(), "config".into()],
        );
        let config = build(&mut check, &raw);
        let mut config = finish(config, &mut problems, check)?;
        config.resolve_paths(dir);
        Ok(config)
    }

    /// Loads `path` as an Alertmanager file, or as a tradewatch configuration that points at
    /// one (told apart by the top-level keys).
    pub fn load_any(path: &Path) -> Result<AlertmanagerConfig, NotifyConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| NotifyConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let keys = yaml_serde::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()))
            .unwrap_or_default();
        let tradewatch = !keys.is_empty()
            && keys
                .iter()
                .all(|k| !ALERTMANAGER_KEYS.contains(&k.as_str()));
        if tradewatch {
            AlertmanagerConfig::from_tradewatch(path)
        } else {
            AlertmanagerConfig::load(path)
        }
    }

    /// The receiver named `name`.
    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.name == name)
    }

    fn resolve_paths(&mut self, dir: &Path) {
        for template in &mut self.templates {
            if !template.is_empty() && Path::new(template).is_relative() {
                *template = dir.join(&*template).display().to_string();
            }
        }
    }
}

/// A tradewatch configuration read only for its `notifier.config`.
#[derive(Debug, serde::Deserialize)]
struct Outer {
    notifier: Option<OuterNotifier>,
}

#[derive(Debug, serde::Deserialize)]
struct OuterNotifier {
    config: Option<RawConfig>,
}

fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    })
}

/// A bad duration is reported with the rest: it is set aside as `0`.
fn recover(scalar: &str, message: &str) -> Option<&'static str> {
    PromDuration::parse(scalar)
        .err()
        .filter(|error| message.ends_with(&error.to_string()))
        .map(|_| "0")
}

fn finish(
    config: AlertmanagerConfig,
    problems: &mut Vec<Diagnostic>,
    check: Check<'_>,
) -> Result<AlertmanagerConfig, NotifyConfigError> {
    for problem in check.finish() {
        if !problems
            .iter()
            .any(|p| p.location.is_some() && p.location == problem.location)
        {
            problems.push(problem);
        }
    }
    problems.sort_by_key(|p| p.location);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(NotifyConfigError::Invalid(std::mem::take(problems)))
    }
}

/// Names defined in the file, for the route checks.
struct Names {
    receivers: BTreeSet<String>,
    intervals: BTreeSet<String>,
}

fn build(c: &mut Check<'_>, raw: &RawConfig) -> AlertmanagerConfig {
    let global = raw.global.as_ref();
    let resolve_timeout = global
        .and_then(|g| g.resolve_timeout)
        .map_or(Duration::from_secs(300), PromDuration::as_duration);
    let mut smtp = receivers::SmtpDefaults {
        hello: "localhost".to_owned(),
        require_tls: true,
        ..Default::default()
    };
    let mut http_config = HttpConfig::default();
    if let Some(g) = global {
        c.within("global", |c| {
            let set = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
            if let Some(host) = set(&g.smtp_smarthost)
                && let Some(problem) = receivers::host_port_problem(&host)
            {
                c.field_error("smtp_smarthost", problem);
            }
            for (name_a, a, name_b, b) in [
                (
                    "smtp_auth_password",
                    &g.smtp_auth_password,
                    "smtp_auth_password_file",
                    &g.smtp_auth_password_file,
                ),
                (
                    "smtp_auth_secret",
                    &g.smtp_auth_secret,
                    "smtp_auth_secret_file",
                    &g.smtp_auth_secret_file,
                ),
            ] {
                if set(a).is_some() && set(b).is_some() {
                    c.field_key_error(
                        name_b,
                        format!("at most one of {name_a} & {name_b} must be configured"),
                    );
                }
            }
            for (field, url) in [
                ("slack_api_url", &g.slack_api_url),
                ("pagerduty_url", &g.pagerduty_url),
                ("opsgenie_api_url", &g.opsgenie_api_url),
                ("wechat_api_url", &g.wechat_api_url),
                ("victorops_api_url", &g.victorops_api_url),
                ("telegram_api_url", &g.telegram_api_url),
                ("webex_api_url", &g.webex_api_url),
            ] {
                if let Some(problem) = url.as_deref().and_then(receivers::url_problem) {
                    c.field_error(field, problem);
                }
            }
            smtp = receivers::SmtpDefaults {
                from: set(&g.smtp_from),
                hello: set(&g.smtp_hello).unwrap_or_else(|| "localhost".to_owned()),
                smarthost: set(&g.smtp_smarthost),
                auth_username: g.smtp_auth_username.clone().unwrap_or_default(),
                auth_password: set(&g.smtp_auth_password),
                auth_password_file: set(&g.smtp_auth_password_file),
                auth_secret: set(&g.smtp_auth_secret),
                auth_identity: g.smtp_auth_identity.clone().unwrap_or_default(),
                require_tls: g.smtp_require_tls.unwrap_or(true),
                tls_config: c.within("smtp_tls_config", |c| {
                    receivers::tls_config(c, g.smtp_tls_config.as_ref())
                }),
            };
            if let Some(h) = &g.http_config {
                http_config = c.within("http_config", |c| receivers::http_config(c, h));
            }
        });
    }

    let mut receiver_names = BTreeSet::new();
    let receivers: Vec<Receiver> = c.within("receivers", |c| {
        raw.receivers
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, r)| {
                c.within(i, |c| {
                    match r.name.as_deref().filter(|n| !n.is_empty()) {
                        None => c.key_error("missing name in receiver"),
                        Some(name) => {
                            if !receiver_names.insert(name.to_owned()) {
                                c.field_error(
                                    "name",
                                    format!("notification config name {name:?} is not unique"),
                                );
                            }
                        }
                    }
                    receivers::receiver(c, r, &smtp, &http_config)
                })
            })
            .collect()
    });

    let mut time_intervals = BTreeMap::new();
    for (field, what) in [
        ("mute_time_intervals", "mute time interval"),
        ("time_intervals", "time interval"),
    ] {
        let list = if field == "mute_time_intervals" {
            &raw.mute_time_intervals
        } else {
            &raw.time_intervals
        };
        c.within(field, |c| {
            for (i, named) in list.iter().flatten().enumerate() {
                c.within(i, |c| named_interval(c, named, what, &mut time_intervals));
            }
        });
    }

    let names = Names {
        receivers: receiver_names,
        intervals: time_intervals.keys().cloned().collect(),
    };
    let route = match &raw.route {
        None => {
            c.top_error("no route provided in config");
            Route::build(&RouteSpec::default())
        }
        Some(root) => c.within("route", |c| {
            if root.continue_matching == Some(true) {
                c.field_key_error("continue", "cannot have continue in root route");
            }
            if root.receiver.as_deref().is_none_or(str::is_empty) {
                c.key_error("root route must specify a default receiver");
            }
            let nonempty_map =
                |m: &Option<BTreeMap<String, Scalar>>| m.as_ref().is_some_and(|m| !m.is_empty());
            let field = if nonempty_map(&root.match_eq) {
                Some("match")
            } else if nonempty_map(&root.match_re) {
                Some("match_re")
            } else if root.matchers.as_ref().is_some_and(|m| !m.is_empty()) {
                Some("matchers")
            } else {
                None
            };
            if let Some(field) = field {
                c.field_key_error(field, "root route must not have any matchers");
            }
            if root
                .mute_time_intervals
                .as_ref()
                .is_some_and(|m| !m.is_empty())
            {
                c.field_key_error(
                    "mute_time_intervals",
                    "root route must not have any mute time intervals",
                );
            }
            if root
                .active_time_intervals
                .as_ref()
                .is_some_and(|m| !m.is_empty())
            {
                c.field_key_error(
                    "active_time_intervals",
                    "root route must not have any active time intervals",
                );
            }
            Route::build(&route_spec(c, root, &names))
        }),
    };

    let inhibit_rules = c.within("inhibit_rules", |c| {
        raw.inhibit_rules
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, r)| c.within(i, |c| inhibit_rule(c, r)))
            .collect()
    });

    AlertmanagerConfig {
        global: GlobalConfig {
            resolve_timeout,
            http_config,
        },
        route,
        receivers,
        inhibit_rules,
        time_intervals,
        templates: raw.templates.clone().unwrap_or_default(),
    }
}

fn named_interval(
    c: &mut Check<'_>,
    named: &RawNamedInterval,
    what: &str,
    out: &mut BTreeMap<String, Vec<TimeInterval>>,
) {
    let intervals: Vec<TimeInterval> = c.within("time_intervals", |c| {
        named
            .time_intervals
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, raw)| c.within(i, |c| time_interval(c, raw)))
            .collect()
    });
    match named.name.as_deref().filter(|n| !n.is_empty()) {
        None => c.key_error(format!("missing name in {what}")),
        Some(name) => {
            if out.insert(name.to_owned(), intervals).is_some() {
                c.field_error("name", format!("{what} {name:?} is not unique"));
            }
        }
    }
}

fn time_interval(c: &mut Check<'_>, raw: &raw::RawTimeInterval) -> TimeInterval {
    fn list<T>(
        c: &mut Check<'_>,
        field: &str,
        items: &Option<Vec<Scalar>>,
        parse: fn(&str) -> Result<T, String>,
    ) -> Option<Vec<T>> {
        let items = items.as_ref()?;
        c.within(field, |c| {
            Some(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| match parse(&s.0) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            c.within(i, |c| c.value_error(e));
                            None
                        }
                    })
                    .collect(),
            )
        })
    }
    let times = raw.times.as_ref().map(|times| {
        c.within("times", |c| {
            times
                .iter()
                .enumerate()
                .filter_map(|(i, t)| {
                    match ti::parse_time_range(t.start_time.as_deref(), t.end_time.as_deref()) {
                        Ok(r) => Some(r),
                        Err(e) => {
                            c.within(i, |c| c.value_error(e));
                            None
                        }
                    }
                })
                .collect()
        })
    });
    let location = raw
        .location
        .as_deref()
        .and_then(|l| match ti::parse_location(l) {
            Ok(l) => Some(l),
            Err(e) => {
                c.field_error("location", e);
                None
            }
        });
    TimeInterval {
        times,
        weekdays: list(c, "weekdays", &raw.weekdays, ti::parse_weekday_range),
        days_of_month: list(
            c,
            "days_of_month",
            &raw.days_of_month,
            ti::parse_day_of_month_range,
        ),
        months: list(c, "months", &raw.months, ti::parse_month_range),
        years: list(c, "years", &raw.years, ti::parse_year_range),
        location,
    }
}

/// Reads `match`, `match_re` and `matchers` (or their `source_`/`target_` forms) into one list.
fn matchers(
    c: &mut Check<'_>,
    fields: [&str; 3],
    eq: &Option<BTreeMap<String, Scalar>>,
    re: &Option<BTreeMap<String, Scalar>>,
    list: &Option<Vec<Scalar>>,
) -> Vec<Matcher> {
    let mut out = Vec::new();
    c.within(fields[0], |c| {
        for (name, value) in eq.iter().flatten() {
            if !is_valid_label_name(name) {
                c.field_key_error(name, format!("invalid label name {name:?}"));
            } else if let Ok(m) = Matcher::new(MatchOp::Equal, name, &value.0) {
                out.push(m);
            }
        }
    });
    c.within(fields[1], |c| {
        for (name, value) in re.iter().flatten() {
            if !is_valid_label_name(name) {
                c.field_key_error(name, format!("invalid label name {name:?}"));
                continue;
            }
            match Matcher::anchored(MatchOp::Regex, name, &value.0) {
                Ok(m) => out.push(m),
                Err(e) => c.field_error(name, e.to_string()),
            }
        }
    });
    c.within(fields[2], |c| {
        for (i, line) in list.iter().flatten().enumerate() {
            match parse_matchers(&line.0) {
                Ok(ms) => out.extend(ms),
                Err(e) => c.within(i, |c| c.value_error(e.to_string())),
            }
        }
    });
    out
}

fn route_spec(c: &mut Check<'_>, raw: &RawRoute, names: &Names) -> RouteSpec {
    let matchers = matchers(
        c,
        ["match", "match_re", "matchers"],
        &raw.match_eq,
        &raw.match_re,
        &raw.matchers,
    );
    let mut group_by = Vec::new();
    let mut group_by_all = false;
    if let Some(list) = &raw.group_by {
        c.within("group_by", |c| {
            let mut seen = BTreeSet::new();
            for (i, label) in list.iter().enumerate() {
                if label == "..." {
                    group_by_all = true;
                } else if !is_valid_label_name(label) {
                    c.within(i, |c| {
                        c.value_error(format!("invalid label name {label:?} in group_by list"));
                    });
                } else if !seen.insert(label.clone()) {
                    c.within(i, |c| {
                        c.value_error(format!("duplicated label {label:?} in group_by"));
                    });
                } else {
                    group_by.push(label.clone());
                }
            }
            if group_by_all && !group_by.is_empty() {
                c.key_error(
                    "cannot have wildcard group_by (`...`) and other labels at the same time",
                );
            }
        });
    }
    for (field, value) in [
        ("group_interval", raw.group_interval),
        ("repeat_interval", raw.repeat_interval),
    ] {
        if value.is_some_and(PromDuration::is_zero) {
            c.field_error(field, format!("{field} cannot be zero"));
        }
    }
    if let Some(receiver) = raw.receiver.as_deref().filter(|r| !r.is_empty())
        && !names.receivers.contains(receiver)
    {
        c.field_error(
            "receiver",
            format!("undefined receiver {receiver:?} used in route"),
        );
    }
    for field in ["mute_time_intervals", "active_time_intervals"] {
        let list = if field == "mute_time_intervals" {
            &raw.mute_time_intervals
        } else {
            &raw.active_time_intervals
        };
        c.within(field, |c| {
            for (i, name) in list.iter().flatten().enumerate() {
                if !names.intervals.contains(name) {
                    c.within(i, |c| {
                        c.value_error(format!("undefined time interval {name:?} used in route"));
                    });
                }
            }
        });
    }
    let routes = c.within("routes", |c| {
        raw.routes
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, child)| c.within(i, |c| route_spec(c, child, names)))
            .collect()
    });
    RouteSpec {
        receiver: raw.receiver.clone().filter(|r| !r.is_empty()),
        group_by: (!group_by.is_empty()).then_some(group_by),
        group_by_all,
        matchers,
        continue_matching: raw.continue_matching.unwrap_or(false),
        group_wait: raw.group_wait.map(PromDuration::as_duration),
        group_interval: raw.group_interval.map(PromDuration::as_duration),
        repeat_interval: raw.repeat_interval.map(PromDuration::as_duration),
        mute_time_intervals: raw.mute_time_intervals.clone().unwrap_or_default(),
        active_time_intervals: raw.active_time_intervals.clone().unwrap_or_default(),
        routes,
    }
}

fn inhibit_rule(c: &mut Check<'_>, raw: &RawInhibitRule) -> InhibitRule {
    let source = matchers(
        c,
        ["source_match", "source_match_re", "source_matchers"],
        &raw.source_match,
        &raw.source_match_re,
        &raw.source_matchers,
    );
    let target = matchers(
        c,
        ["target_match", "target_match_re", "target_matchers"],
        &raw.target_match,
        &raw.target_match_re,
        &raw.target_matchers,
    );
    let equal = raw.equal.clone().unwrap_or_default();
    c.within("equal", |c| {
        for (i, name) in equal.iter().enumerate() {
            if !is_valid_label_name(name) {
                c.within(i, |c| {
                    c.value_error(format!("{name:?} is not a valid label name"))
                });
            }
        }
    });
    InhibitRule {
        source_matchers: Matchers::sorted(source),
        target_matchers: Matchers::sorted(target),
        equal,
    }
}
