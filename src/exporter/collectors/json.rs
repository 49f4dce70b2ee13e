//! JSON snapshot files: numbers an engine writes to a JSON file (or to several, matched by a
//! glob), read through RFC 6901 JSON pointers, with labels from the file's fields or its name.
//!
//! A file is read whole and parsed before anything of it is used; a read that does not parse,
//! or during which the file's size or modification time changed (an engine rewriting it in
//! place), is retried a few times, and if it never settles the run fails: values are never
//! taken from half a file. Every file of the run is read before any series changes.
//!
//! Values: a number; `true`/`false` as 1/0; a string holding a number (`"12.5"`, as Python's
//! `Decimal` often is written). `null` leaves the series out. A pointer that finds nothing is an
//! error, as a misspelt pointer would otherwise go unnoticed. Labels: a string, a number or a
//! boolean (an empty string or `null` leaves the label out), or `file_stem`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::{CollectError, Collection, Source, expand, label_block};
use crate::config::collectors::{JsonCollector, JsonLabel};

/// Reads of one file before a run gives up on it.
const ATTEMPTS: u32 = 4;

/// Pause before the second read; doubled before each later one.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(20);

/// A JSON snapshot file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The pattern matches no file.
    #[error("no file matches {0:?}")]
    NoMatch(String),
    /// A file cannot be read.
    #[error("failed to read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Every read found incomplete JSON, or a file that changed while it was read.
    #[error("{path} did not settle as complete JSON in {attempts} reads: {last}")]
    Unsettled {
        /// The file.
        path: PathBuf,
        /// Reads made.
        attempts: u32,
        /// What was wrong with the last read.
        last: String,
    },
    /// A pointer finds nothing in the file.
    #[error("{path}: nothing at {pointer}")]
    Missing {
        /// The file.
        path: PathBuf,
        /// The pointer.
        pointer: String,
    },
    /// A value is not a number.
    #[error("{path}: the value at {pointer} is not a number: {found}")]
    NotANumber {
        /// The file.
        path: PathBuf,
        /// The pointer.
        pointer: String,
        /// What is there, as JSON (cut to 64 bytes).
        found: String,
    },
    /// A label's field is an object or an array.
    #[error("{path}: label {label} at {pointer} is not a string, number or boolean")]
    BadLabel {
        /// The file.
        path: PathBuf,
        /// The label name.
        label: String,
        /// The pointer.
        pointer: String,
    },
}

/// One JSON collector's files, values and labels.
pub(super) struct JsonFiles {
    config: JsonCollector,
    max_label_value_bytes: usize,
}

impl JsonFiles {
    pub(super) fn new(config: &JsonCollector, max_label_value_bytes: usize) -> JsonFiles {
        JsonFiles {
            config: config.clone(),
            max_label_value_bytes,
        }
    }

    /// The labels of one file's series, in label-name order.
    fn labels(&self, path: &Path, doc: &Value) -> Result<Vec<(String, Option<String>)>, JsonError> {
        let mut out = Vec::with_capacity(self.config.labels.len());
        for (name, source) in &self.config.labels {
            let value = match source {
                JsonLabel {
                    pointer: Some(pointer),
                    ..
                } => match doc.pointer(pointer) {
                    None => {
                        return Err(JsonError::Missing {
                            path: path.to_owned(),
                            pointer: pointer.clone(),
                        });
                    }
                    Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    Some(Value::Bool(b)) => Some(b.to_string()),
                    Some(_) => {
                        return Err(JsonError::BadLabel {
                            path: path.to_owned(),
                            label: name.clone(),
                            pointer: pointer.clone(),
                        });
                    }
                },
                JsonLabel { pointer: None, .. } => {
                    path.file_stem().map(|s| s.to_string_lossy().into_owned())
                }
            };
            out.push((name.clone(), value));
        }
        Ok(out)
    }
}

impl Source for JsonFiles {
    fn collect(&self) -> Result<Collection, CollectError> {
        let mut docs = Vec::new();
        for path in expand(&self.config.path)? {
            if let Some(doc) = read_settled(&path)? {
                docs.push((path, doc));
            }
        }
        if docs.is_empty() {
            return Err(JsonError::NoMatch(self.config.path.clone()).into());
        }
        let mut collection = Collection::default();
        let families: Vec<usize> = (self.config.values.iter())
            .map(|v| collection.family(&v.metric, v.kind, &v.help))
            .collect();
        for (path, doc) in &docs {
            let labels = self.labels(path, doc)?;
            let pairs = || labels.iter().map(|(n, v)| (n.as_str(), v.as_deref()));
            let block = label_block(pairs(), self.max_label_value_bytes)?;
            for (value, &family) in self.config.values.iter().zip(&families) {
                if let Some(v) = number(path, doc, &value.pointer)? {
                    collection.push(family, block.clone(), v)?;
                }
            }
        }
        Ok(collection)
    }
}

/// The number at `pointer`, `None` for `null`.
fn number(path: &Path, doc: &Value, pointer: &str) -> Result<Option<f64>, JsonError> {
    let not_a_number = |v: &Value| {
        let mut found = v.to_string();
        if found.len() > 64 {
            let cut = (0..=64)
                .rev()
                .find(|i| found.is_char_boundary(*i))
                .unwrap_or(0);
            found.truncate(cut);
            found.push('…');
        }
        JsonError::NotANumber {
            path: path.to_owned(),
            pointer: pointer.to_owned(),
            found,
        }
    };
    match doc.pointer(pointer) {
        None => Err(JsonError::Missing {
            path: path.to_owned(),
            pointer: pointer.to_owned(),
        }),
        Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(if *b { 1.0 } else { 0.0 })),
        Some(v @ Value::Number(n)) => n.as_f64().map(Some).ok_or_else(|| not_a_number(v)),
        Some(v @ Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| not_a_number(v)),
        Some(v) => Err(not_a_number(v)),
    }
}

/// The file's size and modification time, `None` when it is gone.
fn stamp(path: &Path) -> Result<Option<(u64, Option<SystemTime>)>, JsonError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some((m.len(), m.modified().ok()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(JsonError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Reads and parses `path` until a read parses and the file did not change during it;
/// `None` when the file is gone.
fn read_settled(path: &Path) -> Result<Option<Value>, JsonError> {
    let mut delay = FIRST_RETRY_DELAY;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            std::thread::sleep(delay);
            delay *= 2;
        }
        let Some(before) = stamp(path)? else {
            return Ok(None);
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(JsonError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        if stamp(path)? != Some(before) {
            last = "the file changed while it was read".to_owned();
            continue;
        }
        match serde_json::from_slice(&bytes) {
            Ok(doc) => return Ok(Some(doc)),
            Err(e) => last = e.to_string(),
        }
    }
    Err(JsonError::Unsettled {
        path: path.to_owned(),
        attempts: ATTEMPTS,
        last,
    })
}
