//! SQL queries on a SQLite database an engine writes (orders, positions, risk events, daily
//! summaries): each row of a query's result is one series.
//!
//! The database is opened read-only (`SQLITE_OPEN_READ_ONLY`, then `PRAGMA query_only`), and a
//! statement SQLite does not judge read-only is refused. The busy timeout is the collector's
//! timeout, and a run that overruns it is interrupted (`sqlite3_interrupt`). All queries of a run
//! read one snapshot (one read transaction), which ends with the run. In WAL mode, as engines
//! should use, readers never block the engine's writes; in rollback-journal mode a query holds a
//! shared lock while it runs, so keep queries short there.
//!
//! Values: an integer or a real; text holding a number; `NULL` leaves the row out. Labels: text,
//! an integer or a real (`NULL` or empty text leaves the label out).

use std::path::PathBuf;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, InterruptHandle, OpenFlags};

use super::{CollectError, Collection, Source, label_block};
use crate::config::collectors::{SqlQuery, SqliteCollector};

/// A query could not run, or its rows do not fit its metric.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// Opening the database or running a query failed.
    #[error("{path}: {source}")]
    Sql {
        /// The database.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The statement would write.
    #[error("{path}: the query for {metric} is not read-only")]
    NotReadOnly {
        /// The database.
        path: PathBuf,
        /// The query's metric.
        metric: String,
    },
    /// A configured column is not in the query's result.
    #[error("{path}: the query for {metric} has no column {column:?} (it has {columns:?})")]
    NoColumn {
        /// The database.
        path: PathBuf,
        /// The query's metric.
        metric: String,
        /// The missing column.
        column: String,
        /// The result's columns.
        columns: Vec<String>,
    },
    /// A cell cannot be a value or a label.
    #[error("{path}: the query for {metric}: column {column:?} holds {found}, not a {wanted}")]
    BadCell {
        /// The database.
        path: PathBuf,
        /// The query's metric.
        metric: String,
        /// The column.
        column: String,
        /// What it holds.
        found: String,
        /// What it should hold.
        wanted: &'static str,
    },
}

/// One SQLite collector's database and queries.
pub(super) struct Queries {
    path: PathBuf,
    queries: Vec<SqlQuery>,
    busy_timeout: Duration,
    max_label_value_bytes: usize,
    /// The open connection's interrupt handle, while a run is in progress.
    running: Mutex<Option<InterruptHandle>>,
}

impl Queries {
    pub(super) fn new(config: &SqliteCollector, max_label_value_bytes: usize) -> Queries {
        Queries {
            path: config.path.clone(),
            queries: config.queries.clone(),
            busy_timeout: config.timeout.as_duration(),
            max_label_value_bytes,
            running: Mutex::new(None),
        }
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> SqliteError + '_ {
        |source| SqliteError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    /// Opens the database read-only with the busy timeout.
    fn open(&self) -> Result<Connection, SqliteError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(self.sql())?;
        *self.running.lock() = Some(conn.get_interrupt_handle());
        conn.busy_timeout(self.busy_timeout).map_err(self.sql())?;
        conn.pragma_update(None, "query_only", true)
            .map_err(self.sql())?;
        Ok(conn)
    }

    /// Runs one query into `collection`.
    fn query(
        &self,
        conn: &Connection,
        q: &SqlQuery,
        collection: &mut Collection,
    ) -> Result<(), CollectError> {
        let mut stmt = conn.prepare(&q.sql).map_err(self.sql())?;
        if !stmt.readonly() {
            return Err(SqliteError::NotReadOnly {
                path: self.path.clone(),
                metric: q.metric.clone(),
            }
            .into());
        }
        let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let index = |column: &str| {
            columns
                .iter()
                .position(|c| c == column)
                .ok_or_else(|| SqliteError::NoColumn {
                    path: self.path.clone(),
                    metric: q.metric.clone(),
                    column: column.to_owned(),
                    columns: columns.clone(),
                })
        };
        let value_at = index(&q.value_column)?;
        let label_at = (q.label_columns.iter())
            .map(|c| index(c))
            .collect::<Result<Vec<_>, _>>()?;
        let family = collection.family(&q.metric, q.kind, &q.help);
        let bad = |column: &str, found: String, wanted| SqliteError::BadCell {
            path: self.path.clone(),
            metric: q.metric.clone(),
            column: column.to_owned(),
            found,
            wanted,
        };
        let mut rows = stmt.query([]).map_err(self.sql())?;
        let mut labels: Vec<Option<String>> = Vec::with_capacity(label_at.len());
        while let Some(row) = rows.next().map_err(self.sql())? {
            let value = match row.get_ref(value_at).map_err(self.sql())? {
                ValueRef::Null => continue,
                ValueRef::Integer(i) => i as f64,
                ValueRef::Real(r) => r,
                ValueRef::Text(t) => std::str::from_utf8(t)
                    .ok()
                    .and_then(|t| t.trim().parse::<f64>().ok())
                    .ok_or_else(|| bad(&q.value_column, describe(ValueRef::Text(t)), "number"))?,
                other => return Err(bad(&q.value_column, describe(other), "number").into()),
            };
            labels.clear();
            for (&i, column) in label_at.iter().zip(&q.label_columns) {
                labels.push(match row.get_ref(i).map_err(self.sql())? {
                    ValueRef::Null => None,
                    ValueRef::Integer(v) => Some(v.to_string()),
                    ValueRef::Real(v) => Some(v.to_string()),
                    ValueRef::Text(t) => Some(
                        std::str::from_utf8(t)
                            .map_err(|_| bad(column, "text that is not UTF-8".into(), "label"))?
                            .to_owned(),
                    ),
                    other => return Err(bad(column, describe(other), "label").into()),
                });
            }
            let pairs = (q.label_columns.iter().map(String::as_str))
                .zip(labels.iter().map(Option::as_deref));
            let block = label_block(pairs, self.max_label_value_bytes)?;
            collection.push(family, block, value)?;
        }
        Ok(())
    }
}

/// A cell's type, for an error message.
fn describe(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => format!("the integer {i}"),
        ValueRef::Real(r) => format!("the real {r}"),
        ValueRef::Text(t) => format!("the text {:?}", String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => format!("a blob of {} bytes", b.len()),
    }
}

impl Source for Queries {
    fn collect(&self) -> Result<Collection, CollectError> {
        let result = (|| -> Result<Collection, CollectError> {
            let conn = self.open()?;
            // One read transaction: every query sees the same snapshot.
            let tx = conn.unchecked_transaction().map_err(self.sql())?;
            let mut collection = Collection::default();
            for q in &self.queries {
                self.query(&tx, q, &mut collection)?;
            }
            drop(tx);
            Ok(collection)
        })();
        *self.running.lock() = None;
        result
    }

    fn interrupt(&self) {
        if let Some(handle) = self.running.lock().as_ref() {
            handle.interrupt();
        }
    }
}
