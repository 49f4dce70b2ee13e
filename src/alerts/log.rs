//! The alert log, `alerts/YYYY-MM-DD.jsonl`: one JSON line per alert transition and per delivery
//! outcome (DESIGN §3), in daily UTC files like the journal's, with retention, and a live feed
//! for `GET /api/v1/alert-log?follow=1`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::ingest::journal;

/// Lines buffered for a follower that reads slower than alerts happen.
const FOLLOW_BUFFER: usize = 4096;

/// `ts` as the alert log writes it: RFC 3339 UTC with milliseconds.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A Unix-milliseconds time as the alert log writes it.
pub fn timestamp_ms(ms: i64) -> String {
    timestamp(DateTime::from_timestamp_millis(ms).unwrap_or_default())
}

/// A sample value as the alert log writes it: a number, or a string for NaN and infinities.
pub fn value(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v).map_or_else(
        || serde_json::Value::String(crate::model::value::format_float(v)),
        serde_json::Value::Number,
    )
}

/// A `transition` line: an alert changed state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransitionLine {
    /// When, RFC 3339 UTC with milliseconds.
    pub ts: String,
    /// Always `transition`.
    pub kind: &'static str,
    /// Alertmanager's fingerprint, 16 hex digits.
    pub fingerprint: String,
    /// The `alertname` label.
    pub alertname: String,
    /// Every label of the alert.
    pub labels: BTreeMap<String, String>,
    /// The annotations at the transition.
    pub annotations: BTreeMap<String, String>,
    /// The state before.
    pub from: &'static str,
    /// The state after.
    pub to: &'static str,
    /// The value at the transition.
    pub value: serde_json::Value,
    /// When the alert became active.
    pub active_at: String,
}

/// Why the alert log could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AlertLogError {
    /// A file of the log.
    #[error("failed to write alert log {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

struct Open {
    name: String,
    file: File,
}

/// The alert log of a data directory.
pub struct AlertLog {
    dir: PathBuf,
    retention_secs: f64,
    open: Mutex<Option<Open>>,
    feed: broadcast::Sender<String>,
}

impl std::fmt::Debug for AlertLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertLog").field("dir", &self.dir).finish()
    }
}

impl AlertLog {
    /// The log in `dir` (created when absent), keeping files for `retention`.
    pub fn open(dir: &Path, retention: std::time::Duration) -> Result<AlertLog, AlertLogError> {
        std::fs::create_dir_all(dir).map_err(|source| AlertLogError::Io {
            path: dir.to_owned(),
            source,
        })?;
        Ok(AlertLog {
            dir: dir.to_owned(),
            retention_secs: retention.as_secs_f64(),
            open: Mutex::new(None),
            feed: broadcast::channel(FOLLOW_BUFFER).0,
        })
    }

    /// The folder of the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `lines` to the file of `now`'s UTC day and sends them to followers. The lines
    /// are written with one `write` so a crash leaves whole lines or a torn last one.
    pub fn append<T: Serialize>(
        &self,
        now: DateTime<Utc>,
        lines: &[T],
    ) -> Result<(), AlertLogError> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for line in lines {
            let json = serde_json::to_string(line).expect("alert log lines serialize");
            text.push_str(&json);
            text.push('\n');
        }
        let name = journal::file_name(now.timestamp() as f64);
        let path = self.dir.join(&name);
        let io_err = |source| AlertLogError::Io {
            path: path.clone(),
            source,
        };
        {
            let mut open = self.open.lock().expect("alert log lock");
            if open.as_ref().is_none_or(|o| o.name != name) {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(io_err)?;
                *open = Some(Open { name, file });
            }
            let file = &mut open.as_mut().expect("just opened").file;
            file.write_all(text.as_bytes()).map_err(io_err)?;
        }
        for line in text.lines() {
            // No follower is not an error.
            let _ = self.feed.send(line.to_owned());
        }
        Ok(())
    }

    /// A feed of every line appended from now on.
    pub fn follow(&self) -> broadcast::Receiver<String> {
        self.feed.subscribe()
    }

    /// The lines of the log's files from `since` on, oldest first (for a follower's backlog).
    pub fn read_since(&self, since: DateTime<Utc>) -> io::Result<Vec<String>> {
        let first = journal::file_name(since.timestamp() as f64);
        let since = timestamp(since);
        let mut out = Vec::new();
        for name in journal::files(&self.dir)? {
            if name < first {
                continue;
            }
            let text = std::fs::read_to_string(self.dir.join(&name))?;
            for line in text.lines() {
                // `ts` is the first field and sorts as text.
                let ts = line
                    .strip_prefix("{\"ts\":\"")
                    .and_then(|rest| rest.get(..since.len()));
                if ts.is_some_and(|ts| ts >= since.as_str()) {
                    out.push(line.to_owned());
                }
            }
        }
        Ok(out)
    }

    /// Deletes the files whose whole day is older than the retention; gives their names.
    pub fn apply_retention(&self, now: DateTime<Utc>) -> io::Result<Vec<String>> {
        let cutoff = journal::file_name(now.timestamp() as f64 - self.retention_secs);
        let mut deleted = Vec::new();
        for name in journal::files(&self.dir)? {
            if name < cutoff {
                std::fs::remove_file(self.dir.join(&name))?;
                deleted.push(name);
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ts: &str, fingerprint: &str) -> TransitionLine {
        TransitionLine {
            ts: ts.to_owned(),
            kind: "transition",
            fingerprint: fingerprint.to_owned(),
            alertname: "X".to_owned(),
            labels: BTreeMap::from([("alertname".to_owned(), "X".to_owned())]),
            annotations: BTreeMap::new(),
            from: "inactive",
            to: "pending",
            value: value(f64::NAN),
            active_at: ts.to_owned(),
        }
    }

    #[test]
    fn lines_go_to_the_day_file_and_to_followers() {
        let dir = tempfile::tempdir().unwrap();
        let log = AlertLog::open(dir.path(), std::time::Duration::from_secs(86400)).unwrap();
        let mut feed = log.follow();
        let day1: DateTime<Utc> = "2026-11-20T23:59:59.5Z".parse().unwrap();
        let day2: DateTime<Utc> = "2026-11-21T00:00:01Z".parse().unwrap();
        log.append(day1, &[line(&timestamp(day1), "a")]).unwrap();
        log.append(day2, &[line(&timestamp(day2), "b")]).unwrap();
        let first = std::fs::read_to_string(dir.path().join("2026-11-20.jsonl")).unwrap();
        assert!(first.starts_with(
            r#"{"ts":"2026-11-20T23:59:59.500Z","kind":"transition","fingerprint":"a""#
        ));
        assert!(first.contains(r#""value":"NaN""#), "{first}");
        assert!(feed.try_recv().unwrap().contains(r#""fingerprint":"a""#));
        assert!(feed.try_recv().unwrap().contains(r#""fingerprint":"b""#));
        let since = log
            .read_since("2026-11-21T00:00:00Z".parse().unwrap())
            .unwrap();
        assert_eq!(since.len(), 1);
        assert!(since[0].contains(r#""fingerprint":"b""#));
        let later: DateTime<Utc> = "2026-11-22T12:00:00Z".parse().unwrap();
        assert_eq!(
            log.apply_retention(later).unwrap(),
            vec!["2026-11-20.jsonl"]
        );
    }
}
