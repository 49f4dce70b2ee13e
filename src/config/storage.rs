//! The `storage` section: the data directory and how hard it is flushed.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::check::Checker;
use crate::model::PromDuration;

/// Where and how the process keeps its data (journal, snapshots, `state.db`, alert log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// The data directory; `--data-dir` overrides it.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// When the journal is made durable.
    #[serde(default)]
    pub fsync: FsyncMode,
    /// How often the journal is synced under `fsync: interval`.
    #[serde(default = "default_fsync_interval")]
    pub fsync_interval: PromDuration,
    /// How often the exporter writes a registry snapshot (and always at shutdown).
    #[serde(default = "default_snapshot_interval")]
    pub snapshot_interval: PromDuration,
    /// How long journal files are kept (never one the last snapshot does not cover).
    #[serde(default = "default_retention")]
    pub journal_retention: PromDuration,
    /// How long alert log files are kept.
    #[serde(default = "default_retention")]
    pub alert_log_retention: PromDuration,
}

/// When journal writes are synced to disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// Before each reply: concurrent batches share one fsync (group commit).
    #[default]
    Batch,
    /// Every `fsync_interval`; a crash may lose the last interval's acknowledged events.
    Interval,
    /// Never explicitly; the operating system decides.
    Never,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./tradewatch-data")
}

fn default_fsync_interval() -> PromDuration {
    PromDuration::from_secs(1)
}

fn default_snapshot_interval() -> PromDuration {
    PromDuration::from_secs(5 * 60)
}

fn default_retention() -> PromDuration {
    PromDuration::from_secs(90 * 24 * 3600)
}

impl Default for StorageConfig {
    fn default() -> StorageConfig {
        StorageConfig {
            data_dir: default_data_dir(),
            fsync: FsyncMode::default(),
            fsync_interval: default_fsync_interval(),
            snapshot_interval: default_snapshot_interval(),
            journal_retention: default_retention(),
            alert_log_retention: default_retention(),
        }
    }
}

impl StorageConfig {
    pub(crate) fn check(&self, c: &mut Checker<'_>) {
        c.non_empty_path("data_dir", &self.data_dir);
        c.positive("fsync_interval", self.fsync_interval);
        c.positive("snapshot_interval", self.snapshot_interval);
        c.positive("journal_retention", self.journal_retention);
        c.positive("alert_log_retention", self.alert_log_retention);
    }
}
