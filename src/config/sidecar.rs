//! The `sidecar` section: rule evaluation, where its data comes from (scraped targets, the
//! in-process registry or a remote Prometheus API) and where alerts are forwarded.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::check::Checker;
use crate::model::{ByteSize, PromDuration};

/// How the alert sidecar evaluates rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SidecarConfig {
    /// Default interval of rule groups that set none.
    #[serde(default = "default_evaluation_interval")]
    pub evaluation_interval: PromDuration,
    /// Labels added to every alert sent on, as Prometheus's `external_labels`.
    pub external_labels: BTreeMap<String, String>,
    /// How long a pending alert's timer survives a restart.
    #[serde(default = "default_outage_tolerance")]
    pub outage_tolerance: PromDuration,
    /// Template for alerts' `generatorURL`; empty means
    /// `<external_url>/api/v1/query?query=<expr>`.
    pub generator_url: String,
    /// Longest a query of the query API may run (Prometheus's `--query.timeout`); a request's
    /// `timeout` parameter can only shorten it, and a rule's query is also bounded by its group's
    /// interval.
    #[serde(default = "default_query_timeout")]
    pub query_timeout: PromDuration,
    /// Globs of Prometheus rule files, relative to the working directory.
    #[serde(default = "default_rule_files")]
    pub rule_files: Vec<String>,
    /// Under `run`: the `job` and `instance` the process's in-process series carry.
    #[serde(rename = "self")]
    pub self_: SelfConfig,
    /// Embedded data source: targets scraped into the in-memory store.
    pub scrape: ScrapeConfig,
    /// Remote data source: expressions sent to a Prometheus-compatible API instead of scraping.
    pub remote: Option<RemoteConfig>,
    /// Series kept in the store beyond what rules select.
    pub store: StoreConfig,
    /// Alertmanagers to forward alerts to, as Prometheus does.
    pub alerting: AlertingConfig,
}

/// The identity of the in-process series under `run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelfConfig {
    /// The `job` label.
    #[serde(default = "default_self_job")]
    pub job: String,
    /// The `instance` label; unset means the listener's `host:port`.
    pub instance: Option<String>,
}

/// Scraping of targets into the embedded store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeConfig {
    /// Time between scrapes of a target.
    #[serde(default = "default_scrape_interval")]
    pub interval: PromDuration,
    /// How long a scrape may take.
    #[serde(default = "default_scrape_timeout")]
    pub timeout: PromDuration,
    /// Most samples one scrape may hold; a scrape with more fails as a whole
    /// (`sample limit exceeded`). 0 means no limit.
    pub sample_limit: u64,
    /// Largest (uncompressed) body a scrape may read; a larger body fails the scrape
    /// (`body size limit exceeded`). 0 means no limit.
    #[serde(default = "default_body_size_limit")]
    pub body_size_limit: ByteSize,
    /// The targets.
    pub targets: Vec<ScrapeTarget>,
}

/// One `/metrics` endpoint to scrape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeTarget {
    /// Full URL of the metrics endpoint (`http://127.0.0.1:9470/metrics`).
    pub url: String,
    /// The `job` label of the target's series.
    pub job: String,
    /// File holding a bearer token to send.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// Extra labels on every series of the target.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// This target's time between scrapes; unset means `scrape.interval`.
    #[serde(default)]
    pub interval: Option<PromDuration>,
    /// This target's scrape timeout; unset means `scrape.timeout`.
    #[serde(default)]
    pub timeout: Option<PromDuration>,
    /// This target's sample limit; unset means `scrape.sample_limit`.
    #[serde(default)]
    pub sample_limit: Option<u64>,
    /// This target's body size limit; unset means `scrape.body_size_limit`.
    #[serde(default)]
    pub body_size_limit: Option<ByteSize>,
}

impl ScrapeTarget {
    /// A target of `url` with `job` and nothing else set.
    pub fn new(url: impl Into<String>, job: impl Into<String>) -> ScrapeTarget {
        ScrapeTarget {
            url: url.into(),
            job: job.into(),
            bearer_token_file: None,
            labels: BTreeMap::new(),
            interval: None,
            timeout: None,
            sample_limit: None,
            body_size_limit: None,
        }
    }
}

/// A Prometheus-compatible query API that evaluates whole expressions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// Base URL of the API (`http://prometheus:9090`); `/api/v1/query` is appended.
    pub url: String,
    /// How to authenticate to `url` and `write_url`.
    #[serde(default)]
    pub auth: RemoteAuth,
    /// How long one query may take.
    #[serde(default = "default_remote_timeout")]
    pub timeout: PromDuration,
    /// Prometheus remote-write URL for recording-rule results and `ALERTS`; rule files with
    /// recording rules are refused without it.
    #[serde(default)]
    pub write_url: Option<String>,
}

/// Credentials for a remote API: a bearer token or basic auth, not both.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteAuth {
    /// File holding a bearer token.
    pub bearer_token_file: Option<PathBuf>,
    /// HTTP basic authentication.
    pub basic_auth: Option<BasicAuth>,
}

/// HTTP basic authentication with the password from a file or an environment variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// File holding the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
}

/// What the embedded store keeps beyond what rules select.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Series selectors (`{__name__=~"trading_.*"}`) whose series are also kept.
    pub keep: Vec<String>,
}

/// Forwarding of alerts to existing Alertmanagers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// The Alertmanagers.
    pub alertmanagers: Vec<AlertmanagerTarget>,
}

/// One Alertmanager.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerTarget {
    /// Base URL (`http://alertmanager:9093`); `/api/v2/alerts` is appended.
    pub url: String,
}

fn default_evaluation_interval() -> PromDuration {
    PromDuration::from_secs(1)
}

fn default_outage_tolerance() -> PromDuration {
    PromDuration::from_secs(3600)
}

fn default_query_timeout() -> PromDuration {
    PromDuration::from_secs(120)
}

fn default_rule_files() -> Vec<String> {
    vec!["rules/*.rules.yml".to_owned()]
}

fn default_self_job() -> String {
    "tradewatch".to_owned()
}

fn default_scrape_interval() -> PromDuration {
    PromDuration::from_secs(1)
}

fn default_scrape_timeout() -> PromDuration {
    PromDuration::from_secs(1)
}

/// 64 MiB: ample for a 100k-series exposition (about 12 MB), small enough that a runaway
/// exporter cannot exhaust the sidecar's memory.
fn default_body_size_limit() -> ByteSize {
    ByteSize::from_bytes(64 << 20)
}

fn default_remote_timeout() -> PromDuration {
    PromDuration::from_secs(30)
}

impl Default for SidecarConfig {
    fn default() -> SidecarConfig {
        SidecarConfig {
            evaluation_interval: default_evaluation_interval(),
            external_labels: BTreeMap::new(),
            outage_tolerance: default_outage_tolerance(),
            generator_url: String::new(),
            query_timeout: default_query_timeout(),
            rule_files: default_rule_files(),
            self_: SelfConfig::default(),
            scrape: ScrapeConfig::default(),
            remote: None,
            store: StoreConfig::default(),
            alerting: AlertingConfig::default(),
        }
    }
}

impl Default for SelfConfig {
    fn default() -> SelfConfig {
        SelfConfig {
            job: default_self_job(),
            instance: None,
        }
    }
}

impl Default for ScrapeConfig {
    fn default() -> ScrapeConfig {
        ScrapeConfig {
            interval: default_scrape_interval(),
            timeout: default_scrape_timeout(),
            sample_limit: 0,
            body_size_limit: default_body_size_limit(),
            targets: Vec::new(),
        }
    }
}

impl SidecarConfig {
    pub(crate) fn check(&self, c: &mut Checker<'_>) {
        c.positive("evaluation_interval", self.evaluation_interval);
        c.positive("query_timeout", self.query_timeout);
        c.within("external_labels", |c| {
            for name in self.external_labels.keys() {
                c.label_name_key(name);
            }
        });
        c.within("rule_files", |c| {
            for (i, glob) in self.rule_files.iter().enumerate() {
                if glob.is_empty() {
                    c.within(i, |c| c.value_error("must not be empty"));
                }
            }
        });
        c.within("self", |c| {
            c.non_empty("job", &self.self_.job);
            if let Some(instance) = &self.self_.instance {
                c.non_empty("instance", instance);
            }
        });
        c.within("scrape", |c| self.scrape.check(c));
        if let Some(remote) = &self.remote {
            if !self.scrape.targets.is_empty() {
                c.field_key_error(
                    "remote",
                    "remote and scrape.targets are mutually exclusive: rules read either a remote API or scraped targets",
                );
            }
            c.within("remote", |c| remote.check(c));
        }
        c.within("store", |c| {
            c.within("keep", |c| {
                for (i, selector) in self.store.keep.iter().enumerate() {
                    if selector.trim().is_empty() {
                        c.within(i, |c| c.value_error("must not be empty"));
                    }
                }
            });
        });
        c.within("alerting", |c| {
            c.within("alertmanagers", |c| {
                for (i, target) in self.alerting.alertmanagers.iter().enumerate() {
                    c.within(i, |c| c.http_url("url", &target.url));
                }
            });
        });
    }
}

impl ScrapeConfig {
    /// `target`'s interval: its own or the section's.
    pub fn interval_of(&self, target: &ScrapeTarget) -> PromDuration {
        target.interval.unwrap_or(self.interval)
    }

    /// `target`'s timeout: its own or the section's.
    pub fn timeout_of(&self, target: &ScrapeTarget) -> PromDuration {
        target.timeout.unwrap_or(self.timeout)
    }

    /// `target`'s sample limit (0: none): its own or the section's.
    pub fn sample_limit_of(&self, target: &ScrapeTarget) -> u64 {
        target.sample_limit.unwrap_or(self.sample_limit)
    }

    /// `target`'s body size limit (0: none): its own or the section's.
    pub fn body_size_limit_of(&self, target: &ScrapeTarget) -> ByteSize {
        target.body_size_limit.unwrap_or(self.body_size_limit)
    }

    fn check(&self, c: &mut Checker<'_>) {
        c.positive("interval", self.interval);
        c.positive("timeout", self.timeout);
        if self.timeout > self.interval {
            c.field_error(
                "timeout",
                format!(
                    "timeout ({}) must not be longer than interval ({})",
                    self.timeout, self.interval
                ),
            );
        }
        c.within("targets", |c| {
            for (i, target) in self.targets.iter().enumerate() {
                c.within(i, |c| {
                    c.http_url("url", &target.url);
                    c.non_empty("job", &target.job);
                    c.within("labels", |c| {
                        for name in target.labels.keys() {
                            c.label_name_key(name);
                        }
                    });
                    if let Some(interval) = target.interval {
                        c.positive("interval", interval);
                    }
                    if let Some(timeout) = target.timeout {
                        c.positive("timeout", timeout);
                    }
                    let (interval, timeout) = (self.interval_of(target), self.timeout_of(target));
                    if timeout > interval && (target.interval.is_some() || target.timeout.is_some())
                    {
                        let field = if target.timeout.is_some() {
                            "timeout"
                        } else {
                            "interval"
                        };
                        c.field_error(
                            field,
                            format!(
                                "timeout ({timeout}) must not be longer than interval ({interval})"
                            ),
                        );
                    }
                });
                let first = self.targets[..i].iter().position(|t| {
                    t.url == target.url && t.job == target.job && t.labels == target.labels
                });
                if let Some(first) = first {
                    c.within(i, |c| {
                        c.key_error(format!(
                            "same url, job and labels as targets[{first}]: a target is scraped once"
                        ));
                    });
                }
            }
        });
    }
}

impl RemoteConfig {
    fn check(&self, c: &mut Checker<'_>) {
        c.http_url("url", &self.url);
        if let Some(write_url) = &self.write_url {
            c.http_url("write_url", write_url);
        }
        c.positive("timeout", self.timeout);
        c.within("auth", |c| {
            c.exclusive(
                "bearer_token_file",
                self.auth.bearer_token_file.is_some(),
                "basic_auth",
                self.auth.basic_auth.is_some(),
            );
            if let Some(basic) = &self.auth.basic_auth {
                c.within("basic_auth", |c| {
                    c.non_empty("username", &basic.username);
                    c.exclusive(
                        "password_file",
                        basic.password_file.is_some(),
                        "password_env",
                        basic.password_env.is_some(),
                    );
                    if basic.password_file.is_none() && basic.password_env.is_none() {
                        c.key_error("basic_auth needs password_file or password_env");
                    }
                    if let Some(var) = &basic.password_env {
                        super::server::check_env_name(c, "password_env", var);
                    }
                });
            }
        });
    }
}
