//! Alert states in `state.db` (SQLite, WAL, `synchronous=FULL`): written at every transition, read
//! back at start so a firing alert stays firing with its `activeAt` and a pending one resumes its
//! timer (DESIGN §2).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::state::{Alert, AlertState};

/// Why `state.db` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateDbError {
    /// SQLite failed.
    #[error("failed to use state database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// A stored row does not read back.
    #[error("state database {path} holds a bad alert row: {message}")]
    Corrupt {
        /// The database file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Opens (creating when absent) the state database with the settings every table in it relies
/// on: WAL, `synchronous=FULL`, a busy timeout for the other connections of the process.
pub fn open_state_db(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

/// Turns an SQLite error into the state database's error for the file at `path`.
fn sqlite_err(path: &str) -> impl Fn(rusqlite::Error) -> StateDbError + Copy + '_ {
    move |source| StateDbError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

/// One persisted alert: where it belongs, its identity and its state.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedAlert {
    /// The rule it belongs to (see [`rule_key`]).
    pub rule_key: String,
    /// Alertmanager's fingerprint of the labels.
    pub fingerprint: u64,
    /// The labels.
    pub labels: BTreeMap<String, String>,
    /// The annotations at the last write.
    pub annotations: BTreeMap<String, String>,
    /// State and times.
    pub alert: Alert,
}

/// The key of an alerting rule across restarts and reloads: its file, group, name, and which of
/// the group's rules of that name it is.
pub fn rule_key(file: &str, group: &str, alert: &str, nth: usize) -> String {
    format!("{file}\u{1f}{group}\u{1f}{alert}\u{1f}{nth}")
}

/// The alert tables of `state.db`.
pub struct AlertDb {
    conn: Connection,
    path: String,
}

impl std::fmt::Debug for AlertDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertDb").field("path", &self.path).finish()
    }
}

fn state_name(s: AlertState) -> &'static str {
    s.as_str()
}

fn parse_state(s: &str) -> Option<AlertState> {
    Some(match s {
        "pending" => AlertState::Pending,
        "firing" => AlertState::Firing,
        "resolved" => AlertState::Resolved,
        "inactive" => AlertState::Inactive,
        _ => return None,
    })
}

/// A change to persist.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The alert is new or changed state.
    Put(SavedAlert),
    /// The alert is gone (inactive, or resolved past retention).
    Delete {
        /// The rule.
        rule_key: String,
        /// The alert.
        fingerprint: u64,
    },
}

impl AlertDb {
    /// Opens the tables in the database at `path`.
    pub fn open(path: &Path) -> Result<AlertDb, StateDbError> {
        let name = path.display().to_string();
        let err = sqlite_err(&name);
        let conn = open_state_db(path).map_err(err)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS alert_states (
                rule_key TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                labels TEXT NOT NULL,
                annotations TEXT NOT NULL,
                state TEXT NOT NULL,
                value TEXT NOT NULL,
                active_at INTEGER NOT NULL,
                fired_at INTEGER,
                resolved_at INTEGER,
                keep_firing_since INTEGER,
                PRIMARY KEY (rule_key, fingerprint)
            );
            CREATE TABLE IF NOT EXISTS rule_groups (
                group_key TEXT PRIMARY KEY,
                last_evaluation INTEGER NOT NULL
            );",
        )
        .map_err(err)?;
        Ok(AlertDb { conn, path: name })
    }

    fn err(&self, source: rusqlite::Error) -> StateDbError {
        sqlite_err(&self.path)(source)
    }

    /// Writes `changes` and the group's evaluation time in one transaction.
    pub fn write(
        &mut self,
        group_key: &str,
        last_evaluation: i64,
        changes: &[Change],
    ) -> Result<(), StateDbError> {
        let path = self.path.clone();
        let err = sqlite_err(&path);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        for change in changes {
            match change {
                Change::Put(saved) => {
                    let a = &saved.alert;
                    tx.execute(
                        "INSERT OR REPLACE INTO alert_states VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                        params![
                            saved.rule_key,
                            format!("{:016x}", saved.fingerprint),
                            serde_json::to_string(&saved.labels).expect("labels serialize"),
                            serde_json::to_string(&saved.annotations).expect("annotations serialize"),
                            state_name(a.state),
                            crate::model::value::format_float(a.value),
                            a.active_at,
                            a.fired_at,
                            a.resolved_at,
                            a.keep_firing_since,
                        ],
                    )
                    .map_err(err)?;
                }
                Change::Delete {
                    rule_key,
                    fingerprint,
                } => {
                    tx.execute(
                        "DELETE FROM alert_states WHERE rule_key = ?1 AND fingerprint = ?2",
                        params![rule_key, format!("{fingerprint:016x}")],
                    )
                    .map_err(err)?;
                }
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO rule_groups VALUES (?1, ?2)",
            params![group_key, last_evaluation],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Deletes the saved alerts of every rule not in `rule_keys` and the evaluation times of
    /// every group not in `group_keys`, in one transaction: what a reload or a restart left
    /// behind when it removed rules or groups. Gives how many rows went.
    pub fn prune(
        &mut self,
        rule_keys: &HashSet<&str>,
        group_keys: &HashSet<&str>,
    ) -> Result<usize, StateDbError> {
        let path = self.path.clone();
        let err = sqlite_err(&path);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut removed = 0;
        for (table, column, keep) in [
            ("alert_states", "rule_key", rule_keys),
            ("rule_groups", "group_key", group_keys),
        ] {
            let present: Vec<String> = tx
                .prepare(&format!("SELECT DISTINCT {column} FROM {table}"))
                .and_then(|mut stmt| stmt.query_map([], |r| r.get(0)).and_then(Iterator::collect))
                .map_err(err)?;
            for key in present.iter().filter(|k| !keep.contains(k.as_str())) {
                removed += tx
                    .execute(&format!("DELETE FROM {table} WHERE {column} = ?1"), [key])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(removed)
    }

    /// When the group last evaluated before this start, if it ever did.
    pub fn last_evaluation(&self, group_key: &str) -> Result<Option<i64>, StateDbError> {
        self.conn
            .query_row(
                "SELECT last_evaluation FROM rule_groups WHERE group_key = ?1",
                params![group_key],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every saved alert.
    pub fn load(&self) -> Result<Vec<SavedAlert>, StateDbError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT rule_key, fingerprint, labels, annotations, state, value, active_at, \
                 fired_at, resolved_at, keep_firing_since FROM alert_states",
            )
            .map_err(|e| self.err(e))?;
        type Row = (
            String,
            String,
            String,
            String,
            String,
            String,
            i64,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        );
        let rows: Vec<Row> = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                ))
            })
            .and_then(Iterator::collect)
            .map_err(|e| self.err(e))?;
        let corrupt = |message: String| StateDbError::Corrupt {
            path: self.path.clone(),
            message,
        };
        rows.into_iter()
            .map(|row| {
                let (
                    rule_key,
                    fp,
                    labels,
                    annotations,
                    state,
                    value,
                    active_at,
                    fired,
                    resolved,
                    keep,
                ) = row;
                Ok(SavedAlert {
                    fingerprint: u64::from_str_radix(&fp, 16)
                        .map_err(|_| corrupt(format!("fingerprint {fp:?}")))?,
                    labels: serde_json::from_str(&labels)
                        .map_err(|e| corrupt(format!("labels of {fp}: {e}")))?,
                    annotations: serde_json::from_str(&annotations)
                        .map_err(|e| corrupt(format!("annotations of {fp}: {e}")))?,
                    alert: Alert {
                        state: parse_state(&state)
                            .ok_or_else(|| corrupt(format!("state {state:?} of {fp}")))?,
                        value: value.parse::<f64>().unwrap_or(f64::NAN),
                        active_at,
                        fired_at: fired,
                        resolved_at: resolved,
                        keep_firing_since: keep,
                    },
                    rule_key,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_round_trip_through_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let saved = SavedAlert {
            rule_key: rule_key("a.yml", "g", "X", 0),
            fingerprint: 0xdead_beef,
            labels: BTreeMap::from([("alertname".into(), "X".into())]),
            annotations: BTreeMap::from([("summary".into(), "<b>".into())]),
            alert: Alert {
                state: AlertState::Firing,
                value: f64::INFINITY,
                active_at: 1_000,
                fired_at: Some(61_000),
                resolved_at: None,
                keep_firing_since: None,
            },
        };
        {
            let mut db = AlertDb::open(&path).unwrap();
            db.write("a.yml;g", 62_000, &[Change::Put(saved.clone())])
                .unwrap();
        }
        let mut db = AlertDb::open(&path).unwrap();
        assert_eq!(db.load().unwrap(), vec![saved.clone()]);
        assert_eq!(db.last_evaluation("a.yml;g").unwrap(), Some(62_000));
        assert_eq!(db.last_evaluation("other").unwrap(), None);
        db.write(
            "a.yml;g",
            63_000,
            &[Change::Delete {
                rule_key: saved.rule_key.clone(),
                fingerprint: saved.fingerprint,
            }],
        )
        .unwrap();
        assert!(db.load().unwrap().is_empty());
    }

    #[test]
    fn pruning_removes_exactly_the_rows_of_rules_and_groups_no_longer_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = AlertDb::open(&dir.path().join("state.db")).unwrap();
        let alert = |rule: &str, fingerprint: u64| SavedAlert {
            rule_key: rule_key("a.yml", "g", rule, 0),
            fingerprint,
            labels: BTreeMap::from([("alertname".into(), rule.into())]),
            annotations: BTreeMap::new(),
            alert: Alert {
                state: AlertState::Firing,
                value: 1.0,
                active_at: 1_000,
                fired_at: Some(1_000),
                resolved_at: None,
                keep_firing_since: None,
            },
        };
        let (kept, gone) = (alert("Kept", 1), alert("Gone", 2));
        db.write(
            "a.yml;g",
            2_000,
            &[
                Change::Put(kept.clone()),
                Change::Put(gone.clone()),
                Change::Put(alert("Gone", 3)),
            ],
        )
        .unwrap();
        db.write("a.yml;old", 2_000, &[]).unwrap();
        let rules = HashSet::from([kept.rule_key.as_str()]);
        let groups = HashSet::from(["a.yml;g"]);
        assert_eq!(db.prune(&rules, &groups).unwrap(), 3);
        assert_eq!(db.load().unwrap(), vec![kept.clone()]);
        assert_eq!(db.last_evaluation("a.yml;g").unwrap(), Some(2_000));
        assert_eq!(db.last_evaluation("a.yml;old").unwrap(), None);
        assert_eq!(
            db.prune(&rules, &groups).unwrap(),
            0,
            "nothing left to prune"
        );
    }
}
