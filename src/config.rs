//! The configuration file: YAML → typed config → validated, every error as `file:line:col: message`.
//!
//! A syntax or type error stops the parse with one error; past it, every semantic problem is
//! collected and reported at once, each located at the offending key or value.
//!
//! ```
//! use tradewatch::config::Config;
//!
//! let config = Config::parse("storage:\n  data_dir: /var/lib/tradewatch\n", "tradewatch.yaml").unwrap();
//! assert_eq!(config.storage.data_dir, std::path::Path::new("/var/lib/tradewatch"));
//!
//! let error = Config::parse("storage:\n  fsync: sometimes\n", "tradewatch.yaml").unwrap_err();
//! assert!(error.to_string().starts_with("tradewatch.yaml:2:10: "));
//! ```

mod check;
pub mod collectors;
pub mod exporter;
pub mod notifier;
pub mod server;
pub mod sidecar;
pub mod storage;
pub mod yaml;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::{ByteSize, PromDuration};

pub use collectors::{
    CollectedType, CollectorsConfig, FileCollector, JsonCollector, JsonLabel, JsonValue, SqlQuery,
    SqliteCollector,
};
pub use exporter::{ExporterConfig, Limits};
pub use notifier::{
    ActionLinksConfig, Backoff, EmailExtras, Escalation, NotifierConfig, OutboxConfig,
    ReceiverExtras, WebhookExtras,
};
pub use server::{AuthConfig, Secret, ServerConfig, TlsConfig, Tokens};
pub use sidecar::{
    AlertingConfig, AlertmanagerTarget, BasicAuth, RemoteAuth, RemoteConfig, ScrapeConfig,
    ScrapeTarget, SelfConfig, SidecarConfig, StoreConfig,
};
pub use storage::{FsyncMode, StorageConfig};
pub use yaml::{Diagnostic, Location, YamlError};

/// The whole configuration; every section is optional and each role reads the ones it needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The listener, TLS and tokens.
    pub server: ServerConfig,
    /// The data directory and durability.
    pub storage: StorageConfig,
    /// Ingest limits, buckets, collectors.
    pub exporter: ExporterConfig,
    /// Rule evaluation and its data sources.
    pub sidecar: SidecarConfig,
    /// Notification routing and delivery.
    pub notifier: NotifierConfig,
    /// The directory of the file it was loaded from (`notifier.config_file` is relative to
    /// it); none for the bundled default or a text.
    #[serde(skip)]
    pub base_dir: Option<std::path::PathBuf>,
    /// The file it was loaded from, read again by a reload; none for the bundled default.
    #[serde(skip)]
    pub path: Option<std::path::PathBuf>,
}

/// The default configuration, used when no `--config` is given.
const BUNDLED: &str = include_str!("config/default.yaml");

/// Why a configuration (or a secret it points to) could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read config file {}: {source}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// Why it could not be read.
        source: io::Error,
    },
    /// Not YAML, or not of the config's shape: one error, located.
    #[error(transparent)]
    Syntax(#[from] YamlError),
    /// Well-formed but wrong: every problem found, one a line, in file order.
    #[error("{}", Lines(.0))]
    Invalid(Vec<Diagnostic>),
    /// A token set both from a file and from the environment.
    #[error("{file_field} and {env_field} are mutually exclusive")]
    TokenConflict {
        /// The file field (`ingest_token_file`).
        file_field: &'static str,
        /// The environment field (`ingest_token_env`).
        env_field: &'static str,
    },
    /// A secret file could not be read.
    #[error("failed to read {what} token file {}: {source}", path.display())]
    SecretFile {
        /// Which secret (`ingest`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: io::Error,
    },
    /// A secret file holds nothing but a newline.
    #[error("{what} token file {} is empty", path.display())]
    EmptySecretFile {
        /// Which secret (`ingest`).
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// A secret's environment variable is unset, empty or not UTF-8.
    #[error("environment variable {var} for the {what} token {problem}")]
    SecretEnv {
        /// Which secret (`ingest`).
        what: &'static str,
        /// The variable's name.
        var: String,
        /// What is wrong (`is not set`, `is empty`).
        problem: &'static str,
    },
}

impl ConfigError {
    /// The located problems: one for a syntax or type error, all for a semantic failure, none
    /// for other errors.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            ConfigError::Syntax(error) => vec![error.0.clone()],
            ConfigError::Invalid(problems) => problems.clone(),
            _ => Vec::new(),
        }
    }
}

/// Displays diagnostics one a line.
struct Lines<'a>(&'a [Diagnostic]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Reads and validates the config file at `path`; messages name the file as given.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::parse(&text, &path.display().to_string())?;
        config.base_dir = Some(path.parent().unwrap_or(Path::new("")).to_owned());
        config.path = Some(path.to_owned());
        Ok(config)
    }

    /// Parses and validates a config text; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        // A bad duration or size is reported with the rest, not alone: it is set aside as `0`,
        // and the checks that follow say nothing more at its position.
        let (document, mut problems) =
            yaml::parse_recovering::<Config>(text, origin, |scalar, message| {
                let duration = PromDuration::parse(scalar)
                    .err()
                    .is_some_and(|error| message.ends_with(&error.to_string()));
                let size = ByteSize::parse(scalar)
                    .err()
                    .is_some_and(|error| message.ends_with(&error.to_string()));
                (duration || size).then_some("0")
            })?;
        let mut checker = check::Checker::new(origin, &document.spans);
        document.value.check(&mut checker);
        for problem in checker.finish() {
            if !problems.iter().any(|p| p.location == problem.location) {
                problems.push(problem);
            }
        }
        problems.sort_by_key(|p| p.location);
        if problems.is_empty() {
            Ok(document.value)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// The bundled default configuration (exporter on `127.0.0.1:9470`, data in
    /// `./tradewatch-data`).
    ///
    /// # Panics
    ///
    /// Only if the bundled file itself is broken, which a unit test rules out.
    pub fn bundled() -> Config {
        match Config::parse(BUNDLED, "bundled default.yaml") {
            Ok(config) => config,
            Err(error) => panic!("the bundled default config is invalid:\n{error}"),
        }
    }

    fn check(&self, c: &mut check::Checker<'_>) {
        c.within("server", |c| self.server.check(c));
        c.within("storage", |c| self.storage.check(c));
        c.within("exporter", |c| self.exporter.check(c));
        c.within("sidecar", |c| self.sidecar.check(c));
        c.within("notifier", |c| self.notifier.check(c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_config_loads() {
        let config = Config::bundled();
        assert_eq!(
            config.server.listen,
            Some("127.0.0.1:9470".parse().unwrap())
        );
        assert_eq!(config.storage.data_dir, Path::new("./tradewatch-data"));
        assert_eq!(config.exporter, ExporterConfig::default());
        assert_eq!(config.notifier, NotifierConfig::default());
    }

    #[test]
    fn empty_text_is_the_default_config() {
        assert_eq!(Config::parse("", "empty.yaml").unwrap(), Config::default());
        assert_eq!(
            Config::parse("# nothing\n", "c.yaml").unwrap(),
            Config::default()
        );
        assert_eq!(
            Config::parse("server:\nexporter:\n", "c.yaml").unwrap(),
            Config::default()
        );
    }

    #[test]
    fn defaults_match_the_design() {
        let config = Config::default();
        assert_eq!(config.storage.fsync, FsyncMode::Batch);
        assert_eq!(config.storage.snapshot_interval.to_string(), "5m");
        assert_eq!(config.storage.journal_retention.to_string(), "90d");
        assert_eq!(config.exporter.idempotency_window.to_string(), "1d");
        assert_eq!(config.exporter.limits.max_body_bytes, 16 * 1024 * 1024);
        assert_eq!(
            config.exporter.limits.max_decoded_body_bytes,
            64 * 1024 * 1024
        );
        assert_eq!(config.sidecar.evaluation_interval.to_string(), "1s");
        assert_eq!(config.notifier.outbox.backoff.max.to_string(), "5m");
    }
}
