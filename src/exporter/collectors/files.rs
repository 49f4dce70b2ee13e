//! File freshness: the modification time of every file that matches a collector's globs, as
//! `trading_artifact_updated_timestamp_seconds{artifact}`.
//!
//! The `artifact` label is the file's path as its glob yields it: the configured pattern with
//! its wildcards filled in (`models/*.pkl` gives `models/momentum.pkl`; an absolute pattern
//! gives absolute paths). That reads like the configuration and stays unique where file names
//! alone would not (`a/latest.pkl`, `b/latest.pkl`). A symbolic link counts with its target's
//! time. A file that disappears drops its series; no match at all is not an error.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use super::{CollectError, Collection, Source, expand, label_block};
use crate::config::collectors::{CollectedType, FileCollector};

/// The metric the file-freshness collectors write.
pub const METRIC: &str = "trading_artifact_updated_timestamp_seconds";

/// Its help text.
pub const HELP: &str = "Modification time of a model or artifact file.";

/// A file's modification time could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// `stat` failed for another reason than the file being gone.
    #[error("failed to read the modification time of {path}: {source}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The globs of one file-freshness collector.
pub(super) struct Files {
    patterns: Vec<String>,
    max_label_value_bytes: usize,
}

impl Files {
    pub(super) fn new(config: &FileCollector, max_label_value_bytes: usize) -> Files {
        Files {
            patterns: config.paths.clone(),
            max_label_value_bytes,
        }
    }
}

impl Source for Files {
    fn collect(&self) -> Result<Collection, CollectError> {
        let mut times = BTreeMap::new();
        for pattern in &self.patterns {
            for path in expand(pattern)? {
                if times.contains_key(&path) {
                    continue;
                }
                let modified = match std::fs::metadata(&path).and_then(|m| m.modified()) {
                    Ok(t) => t,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(source) => return Err(FilesError::Metadata { path, source }.into()),
                };
                let seconds = match modified.duration_since(UNIX_EPOCH) {
                    Ok(d) => d.as_secs_f64(),
                    Err(before) => -before.duration().as_secs_f64(),
                };
                times.insert(path, seconds);
            }
        }
        let mut collection = Collection::default();
        let family = collection.family(METRIC, CollectedType::Gauge, HELP);
        for (path, seconds) in times {
            let artifact = path.to_string_lossy();
            let labels = label_block([("artifact", Some(&*artifact))], self.max_label_value_bytes)?;
            collection.push(family, labels, seconds)?;
        }
        Ok(collection)
    }
}
