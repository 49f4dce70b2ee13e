//! `tradewatch journal export`: the journal as a trade journal, one row per event with its fields
//! flattened, as CSV or JSON lines.
//!
//! **Rows.** Events whose `ts` lies in `[from, to)`, of the chosen types and engines, in journal
//! order (arrival order). Columns: `ts` (RFC 3339 with milliseconds, in UTC or the chosen zone),
//! `type`, `engine`, `strategy`, `id`, then the fields of the event types (required first, in the
//! order of the event table), then `attrs.<key>` for each key of `attrs`. Values are read as
//! ingest reads them: `engine` defaults to `default`, a fill's `notional` to quantity × price,
//! a cycle's `result` to `ok`, `currency` to `USD`, `ok` to true. A nested field (`positions`,
//! `position_limits`, `labels`, an object in `attrs`) is one cell of compact JSON.
//!
//! **CSV** needs its columns before the first row, and a trade journal wants `attrs` as columns
//! it can sort and filter by. So the type columns come from the `--type` filter (every type's
//! when there is none: the same command gives the same columns every day), and the `attrs`
//! columns from a first pass over the selected files that gathers the keys of the matching
//! events' `attrs`, sorted. Both passes stream; memory holds the set of keys, not the rows. A
//! header row, RFC 4180 quoting (fields with a comma, quote or line break in double quotes),
//! CRLF line ends, UTF-8. **JSON lines** need no first pass: one object a line, with the same
//! keys, absent fields left out, numbers as numbers and nested fields as JSON.
//!
//! **Files.** Journal files are named by the UTC day an event *arrived*; an event's `ts` is the
//! engine's. Only the files from the day before `from` to the day after `to` are read (a day's
//! margin each side for events sent late across midnight and engine clocks ahead), line by line.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Days, NaiveDate, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use serde_json::value::RawValue;

use super::event::{EVENT_TYPES, EventType, RawEvent, decode};
use super::journal;
use crate::cli::ExportArgs;
use crate::config::{Config, ConfigError};

/// The columns every row has, before the type fields.
pub const COMMON_COLUMNS: [&str; 5] = ["ts", "type", "engine", "strategy", "id"];

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Comma-separated values with a header row (RFC 4180).
    Csv,
    /// One JSON object a line.
    Jsonl,
}

/// Which events to export, and the zone their times are shown in.
#[derive(Debug, Clone)]
pub struct Query {
    /// Start of the range, inclusive.
    pub from: DateTime<Utc>,
    /// End of the range, exclusive.
    pub to: DateTime<Utc>,
    /// Event types to keep; all when empty.
    pub types: Vec<EventType>,
    /// Engines to keep; all when empty.
    pub engines: Vec<String>,
    /// The zone of the `ts` column.
    pub timezone: Tz,
}

/// What an export did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Rows written (events exported).
    pub rows: u64,
    /// Journal files read, oldest first.
    pub files: Vec<String>,
    /// Journal lines that did not decode and were skipped.
    pub skipped: u64,
}

/// The export could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The configuration file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `--from` or `--to` is neither RFC 3339 nor a date.
    #[error(
        "--{flag} {value:?} is neither an RFC 3339 time (2026-11-01T09:30:00Z) nor a date (2026-11-01)"
    )]
    BadTime {
        /// `from` or `to`.
        flag: &'static str,
        /// What was given.
        value: String,
    },
    /// The range ends before it starts.
    #[error("--from ({from}) is after --to ({to})")]
    Reversed {
        /// Start, RFC 3339.
        from: String,
        /// End, RFC 3339.
        to: String,
    },
    /// Not an IANA time zone name.
    #[error("unknown time zone {0:?}: expected an IANA name such as America/New_York or UTC")]
    BadTimezone(String),
    /// An event type that does not exist.
    #[error("unknown event type {0:?}")]
    BadType(String),
    /// The data directory has no journal.
    #[error("no journal in {0}: is the data directory right (--data-dir, --config)?")]
    NoJournal(PathBuf),
    /// Reading a journal file.
    #[error("failed to read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Writing the output.
    #[error("failed to write the export: {0}")]
    Write(#[source] io::Error),
}

impl ExportError {
    /// Whether the reader of the output went away (`| head`): not worth an error message.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, ExportError::Write(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

impl From<csv::Error> for ExportError {
    fn from(e: csv::Error) -> Self {
        match e.into_kind() {
            csv::ErrorKind::Io(e) => ExportError::Write(e),
            other => ExportError::Write(io::Error::other(format!("{other:?}"))),
        }
    }
}

/// Runs `tradewatch journal export` with its command-line arguments, writing to `out`.
pub fn run(args: &ExportArgs, out: impl Write) -> Result<Summary, ExportError> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::bundled(),
    };
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| config.storage.data_dir.clone());
    let zone = args
        .timezone
        .as_deref()
        .unwrap_or(&config.notifier.timezone);
    let timezone: Tz = zone
        .parse()
        .map_err(|_| ExportError::BadTimezone(zone.to_owned()))?;
    let types = (args.types.iter())
        .map(|t| EventType::parse(t).ok_or_else(|| ExportError::BadType(t.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    let query = Query {
        from: parse_time("from", &args.from, timezone, false)?,
        to: parse_time("to", &args.to, timezone, true)?,
        types,
        engines: args.engines.clone(),
        timezone,
    };
    let summary = export(&data_dir.join("journal"), &query, args.format, out)?;
    tracing::info!(
        rows = summary.rows,
        files = summary.files.len(),
        skipped = summary.skipped,
        "Journal exported."
    );
    Ok(summary)
}

/// A bound of the range: an RFC 3339 time, or a date meaning its midnight in `timezone` (for
/// the end, the next day's midnight, so `--to 2026-11-30` includes that day).
pub fn parse_time(
    flag: &'static str,
    text: &str,
    timezone: Tz,
    end: bool,
) -> Result<DateTime<Utc>, ExportError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let bad = || ExportError::BadTime {
        flag,
        value: text.to_owned(),
    };
    let mut date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad())?;
    if end {
        date = date.checked_add_days(Days::new(1)).ok_or_else(bad)?;
    }
    // Midnight, or the first time after it that exists (where a DST change skips midnight).
    let midnight = date.and_hms_opt(0, 0, 0).ok_or_else(bad)?;
    (0..=3)
        .find_map(|hours| {
            let local = midnight + chrono::Duration::hours(hours);
            timezone.from_local_datetime(&local).earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(bad)
}

/// Exports the events of `query` from the journal in `journal_dir` to `out`.
pub fn export(
    journal_dir: &Path,
    query: &Query,
    format: ExportFormat,
    out: impl Write,
) -> Result<Summary, ExportError> {
    if query.from > query.to {
        return Err(ExportError::Reversed {
            from: query.from.to_rfc3339_opts(SecondsFormat::Millis, true),
            to: query.to.to_rfc3339_opts(SecondsFormat::Millis, true),
        });
    }
    if !journal_dir.is_dir() {
        return Err(ExportError::NoJournal(journal_dir.to_owned()));
    }
    let files = selected_files(journal_dir, query)?;
    let mut summary = Summary {
        files: files.clone(),
        ..Summary::default()
    };
    match format {
        ExportFormat::Csv => {
            // The second pass stops where the first did, so rows and columns agree while an
            // exporter appends.
            let mut ends = Vec::new();
            let mut attrs = BTreeSet::new();
            scan(
                journal_dir,
                &files,
                &mut Ends::Record(&mut ends),
                query,
                |row| {
                    if let Some(raw) = row.event.attrs {
                        attrs.extend(attr_keys(raw));
                    }
                    Ok(())
                },
            )?;
            let columns = columns(&query.types, attrs.iter().map(String::as_str));
            let index: HashMap<&str, usize> = (columns.iter().enumerate())
                .map(|(i, c)| (c.as_str(), i))
                .collect();
            let mut csv = csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(out);
            csv.write_record(&columns)?;
            let mut record = vec![String::new(); columns.len()];
            summary.skipped = scan(journal_dir, &files, &mut Ends::Stop(&ends), query, |row| {
                record.iter_mut().for_each(String::clear);
                for (name, cell) in row.cells(query.timezone) {
                    if let Some(&i) = index.get(&*name) {
                        cell.write_text(&mut record[i]);
                    }
                }
                csv.write_record(&record)?;
                summary.rows += 1;
                Ok(())
            })?;
            csv.flush().map_err(ExportError::Write)?;
        }
        ExportFormat::Jsonl => {
            let mut out = BufWriter::with_capacity(1 << 16, out);
            summary.skipped = scan(journal_dir, &files, &mut Ends::Open, query, |row| {
                write_json_line(&mut out, row, query.timezone).map_err(ExportError::Write)?;
                summary.rows += 1;
                Ok(())
            })?;
            out.flush().map_err(ExportError::Write)?;
        }
    }
    Ok(summary)
}

/// The CSV columns for these types (all when empty) and these `attrs` keys.
pub fn columns<'a>(types: &[EventType], attrs: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut columns: Vec<String> = COMMON_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    for t in EVENT_TYPES {
        if !types.is_empty() && !types.contains(&t) {
            continue;
        }
        let (required, optional) = t.fields();
        for field in required.iter().chain(optional) {
            if !columns.iter().any(|c| c == field) {
                columns.push((*field).to_owned());
            }
        }
    }
    columns.extend(attrs.into_iter().map(|k| format!("attrs.{k}")));
    columns
}

/// The journal files that can hold events of the range: arrival days from the day before
/// `from` to the day after `to`.
fn selected_files(dir: &Path, query: &Query) -> Result<Vec<String>, ExportError> {
    let read_err = |source| ExportError::Read {
        path: dir.to_owned(),
        source,
    };
    if query.from >= query.to {
        return Ok(Vec::new());
    }
    let last_instant = query.to - chrono::Duration::milliseconds(1);
    let first = query.from.date_naive().pred_opt().unwrap_or(NaiveDate::MIN);
    let last = last_instant
        .date_naive()
        .succ_opt()
        .unwrap_or(NaiveDate::MAX);
    Ok(journal::files(dir)
        .map_err(read_err)?
        .into_iter()
        .filter(|name| {
            NaiveDate::parse_from_str(&name[..10], "%Y-%m-%d")
                .is_ok_and(|day| first <= day && day <= last)
        })
        .collect())
}

/// One event of the range, decoded from its journal line.
struct Row<'a> {
    event: RawEvent<'a>,
    kind: EventType,
    /// `ts` in Unix milliseconds.
    millis: i64,
}

/// Where a scan stops reading each file.
enum Ends<'a> {
    /// At the end of its last complete line.
    Open,
    /// There, and note each file's end.
    Record(&'a mut Vec<u64>),
    /// At the ends an earlier scan noted.
    Stop(&'a [u64]),
}

/// Reads the selected files line by line and calls `each` with every event of the query;
/// returns how many lines did not decode.
fn scan(
    dir: &Path,
    files: &[String],
    ends: &mut Ends<'_>,
    query: &Query,
    mut each: impl FnMut(&Row<'_>) -> Result<(), ExportError>,
) -> Result<u64, ExportError> {
    let from = query.from.timestamp_millis();
    let to = query.to.timestamp_millis();
    let mut skipped = 0;
    // The first of two passes leaves the warnings to the second.
    let quiet = matches!(ends, Ends::Record(_));
    let mut line = Vec::with_capacity(4096);
    for (i, name) in files.iter().enumerate() {
        let path = dir.join(name);
        let read_err = |source| ExportError::Read {
            path: path.clone(),
            source,
        };
        let limit = match ends {
            Ends::Stop(ends) => ends.get(i).copied().unwrap_or(0),
            _ => u64::MAX,
        };
        let file = File::open(&path).map_err(read_err)?;
        let mut reader = BufReader::with_capacity(1 << 18, file.take(limit));
        let mut number = 0u64;
        let mut offset = 0u64;
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(read_err)?;
            // The end, or a torn last line (being written, or cut by a crash).
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            offset += n as u64;
            number += 1;
            let event = match decode(&line[..n - 1]) {
                Ok(e) => e,
                Err(r) => {
                    if !quiet {
                        tracing::warn!(file = %path.display(), line = number, error = %r.message, "Journal line skipped.");
                    }
                    skipped += 1;
                    continue;
                }
            };
            let (Some(kind), Some(ts)) = (EventType::parse(&event.kind_), event.ts) else {
                if !quiet {
                    tracing::warn!(file = %path.display(), line = number, "Journal line without a known type or a ts; skipped.");
                }
                skipped += 1;
                continue;
            };
            let millis = (ts.0 * 1000.0).round() as i64;
            let engine = event.engine.as_deref().unwrap_or("default");
            if millis < from
                || millis >= to
                || !(query.types.is_empty() || query.types.contains(&kind))
                || !(query.engines.is_empty() || query.engines.iter().any(|e| e == engine))
            {
                continue;
            }
            each(&Row {
                event,
                kind,
                millis,
            })?;
        }
        if let Ends::Record(ends) = ends {
            ends.push(offset);
        }
    }
    Ok(skipped)
}

/// The keys of an `attrs` object.
fn attr_keys(raw: &RawValue) -> Vec<String> {
    serde_json::from_str::<HashMap<String, serde::de::IgnoredAny>>(raw.get())
        .map(|m| m.into_keys().collect())
        .unwrap_or_default()
}

/// One cell of a row.
#[derive(Debug, PartialEq)]
enum Cell<'a> {
    Text(Cow<'a, str>),
    Number(f64),
    Bool(bool),
    /// A JSON value: a nested field, or an `attrs` number kept exactly as written.
    Json(Value),
}

impl Cell<'_> {
    /// The cell as CSV text.
    fn write_text(&self, out: &mut String) {
        use std::fmt::Write as _;
        match self {
            Cell::Text(s) => out.push_str(s),
            // Display gives the shortest text that reads back as the same number, without an
            // exponent: what a spreadsheet reads as a number.
            Cell::Number(n) => {
                let _ = write!(out, "{n}");
            }
            Cell::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Cell::Json(v) => {
                let _ = write!(out, "{v}");
            }
        }
    }

    /// The cell as a JSON value.
    fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        match self {
            Cell::Text(s) => serde_json::to_writer(&mut *out, s)?,
            Cell::Number(n) => serde_json::to_writer(&mut *out, n)?,
            Cell::Bool(b) => serde_json::to_writer(&mut *out, b)?,
            Cell::Json(v) => serde_json::to_writer(&mut *out, v)?,
        }
        Ok(())
    }
}

impl<'a> Row<'a> {
    /// The row's present cells, by column name, in column order.
    fn cells(&'a self, timezone: Tz) -> Vec<(Cow<'a, str>, Cell<'a>)> {
        let e = &self.event;
        let text = |v: &'a Option<Cow<'a, str>>| v.as_deref().map(|s| Cell::Text(s.into()));
        let mut cells = vec![
            (
                "ts".into(),
                Cell::Text(format_ts(self.millis, timezone).into()),
            ),
            ("type".into(), Cell::Text(self.kind.as_str().into())),
            (
                "engine".into(),
                Cell::Text(e.engine.as_deref().unwrap_or("default").into()),
            ),
        ];
        cells.extend(text(&e.strategy).map(|c| ("strategy".into(), c)));
        cells.extend(text(&e.id).map(|c| ("id".into(), c)));
        let (required, optional) = self.kind.fields();
        for name in required.iter().chain(optional) {
            if let Some(cell) = field(e, self.kind, name) {
                cells.push(((*name).into(), cell));
            }
        }
        if let Some(raw) = e.attrs
            && let Ok(attrs) = serde_json::from_str::<serde_json::Map<String, Value>>(raw.get())
        {
            for (key, value) in attrs {
                let cell = match value {
                    Value::Null => continue,
                    Value::String(s) => Cell::Text(s.into()),
                    Value::Bool(b) => Cell::Bool(b),
                    other => Cell::Json(other),
                };
                cells.push((format!("attrs.{key}").into(), cell));
            }
        }
        cells
    }
}

/// `ts` as RFC 3339 with milliseconds in `timezone` (`Z` for UTC).
fn format_ts(millis: i64, timezone: Tz) -> String {
    DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .with_timezone(&timezone)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A type field of an event, with the default ingest gives it when absent.
fn field<'a>(e: &'a RawEvent<'a>, kind: EventType, name: &str) -> Option<Cell<'a>> {
    let text = |v: &'a Option<Cow<'a, str>>| v.as_deref().map(|s| Cell::Text(s.into()));
    let number = |v: Option<f64>| v.map(Cell::Number);
    let bool_or = |v: Option<bool>, default| Some(Cell::Bool(v.unwrap_or(default)));
    match name {
        "status" => text(&e.status),
        "venue" => text(&e.venue),
        "side" => text(&e.side),
        "symbol" => text(&e.symbol),
        "decision" => text(&e.decision),
        "result" if kind == EventType::Cycle => {
            Some(Cell::Text(e.result.as_deref().unwrap_or("ok").into()))
        }
        "result" => text(&e.result),
        "currency" => Some(Cell::Text(e.currency.as_deref().unwrap_or("USD").into())),
        "breaker" => text(&e.breaker),
        "reason" => text(&e.reason),
        "target" => text(&e.target),
        "api" => text(&e.api),
        "provider" => text(&e.provider),
        "component" => text(&e.component),
        "kind" => text(&e.kind),
        "message" => text(&e.message),
        "function" => text(&e.function),
        "lock" => text(&e.lock),
        "name" => text(&e.name),
        "help" => text(&e.help),
        "code" => e.code.as_ref().map(|c| Cell::Text(c.0.as_ref().into())),
        "latency_seconds" => number(e.latency_seconds),
        "quantity" => number(e.quantity),
        "price" => number(e.price),
        "notional" => number(e.notional.or_else(|| Some(e.quantity? * e.price?))),
        "duration_seconds" => number(e.duration_seconds),
        "drift_max_ratio" => number(e.drift_max_ratio),
        "value" => number(e.value),
        "cash" => number(e.cash),
        "daily_loss_limit" => number(e.daily_loss_limit),
        "daily" => number(e.daily),
        "realized" => number(e.realized),
        "unrealized" => number(e.unrealized),
        "drawdown_ratio" => number(e.drawdown_ratio),
        "active" => e.active.map(Cell::Bool),
        "up" => e.up.map(Cell::Bool),
        "ok" => bool_or(e.ok, true),
        "positions" => e.positions.as_ref().map(|positions| {
            let list = positions.iter().map(|p| {
                let mut o = serde_json::Map::new();
                o.insert("symbol".into(), Value::from(p.symbol.as_ref()));
                if let Some(q) = p.quantity {
                    o.insert("quantity".into(), Value::from(q));
                }
                if let Some(v) = p.value {
                    o.insert("value".into(), Value::from(v));
                }
                Value::Object(o)
            });
            Cell::Json(Value::Array(list.collect()))
        }),
        "position_limits" => e.position_limits.as_ref().map(|limits| {
            let map = limits.iter().map(|(k, v)| (k.to_string(), Value::from(*v)));
            Cell::Json(Value::Object(map.collect()))
        }),
        "labels" => e.labels.as_ref().map(|labels| {
            let map = labels
                .iter()
                .map(|(k, v)| (k.to_string(), Value::from(v.as_ref())));
            Cell::Json(Value::Object(map.collect()))
        }),
        _ => None,
    }
}

/// One row as a JSON object on one line, keys in column order.
fn write_json_line(out: &mut impl Write, row: &Row<'_>, timezone: Tz) -> io::Result<()> {
    out.write_all(b"{")?;
    for (i, (name, cell)) in row.cells(timezone).iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, name)?;
        out.write_all(b":")?;
        cell.write_json(out)?;
    }
    out.write_all(b"}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value for every type field, so each event below carries every field of its type.
    fn sample(field: &str) -> Value {
        match field {
            "status" => "filled".into(),
            "side" => "buy".into(),
            "active" | "up" | "ok" => true.into(),
            "positions" => serde_json::json!([{"symbol": "X", "quantity": 1.0}]),
            "position_limits" => serde_json::json!({"X": 5.0}),
            "labels" => serde_json::json!({"a": "b"}),
            "kind" => "gauge".into(),
            "code" => 500.into(),
            f if f.ends_with("seconds") || f.ends_with("ratio") => 0.5.into(),
            "quantity" | "price" | "notional" | "value" | "cash" | "daily_loss_limit" | "daily"
            | "realized" | "unrealized" => 2.0.into(),
            _ => "text".into(),
        }
    }

    #[test]
    fn every_field_of_every_type_has_a_cell() {
        for t in EVENT_TYPES {
            let (required, optional) = t.fields();
            let mut event = serde_json::json!({"type": t.as_str(), "ts": 1});
            for f in required.iter().chain(optional) {
                event[*f] = sample(f);
            }
            let text = event.to_string();
            let e = decode(text.as_bytes()).unwrap();
            for f in required.iter().chain(optional) {
                assert!(field(&e, t, f).is_some(), "{}: {f}", t.as_str());
            }
        }
    }

    #[test]
    fn notional_is_computed_when_absent() {
        let e = decode(br#"{"type":"fill","symbol":"X","side":"buy","quantity":3,"price":2.5}"#)
            .unwrap();
        assert_eq!(
            field(&e, EventType::Fill, "notional"),
            Some(Cell::Number(7.5))
        );
    }

    #[test]
    fn dates_are_midnights_in_the_zone() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let from = parse_time("from", "2026-11-01", ny, false).unwrap();
        assert_eq!(from.to_rfc3339(), "2026-11-01T04:00:00+00:00");
        // 2026-11-01 is 25 hours long in New York (DST ends).
        let to = parse_time("to", "2026-11-01", ny, true).unwrap();
        assert_eq!(to.to_rfc3339(), "2026-11-02T05:00:00+00:00");
        let utc = parse_time("from", "2026-11-01T09:30:00-04:00", ny, false).unwrap();
        assert_eq!(utc.to_rfc3339(), "2026-11-01T13:30:00+00:00");
        let err = parse_time("from", "yesterday", ny, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--from \"yesterday\" is neither an RFC 3339 time (2026-11-01T09:30:00Z) nor a date (2026-11-01)"
        );
        // Midnight does not exist on 2026-09-06 in Santiago (clocks go from 00:00 to 01:00).
        let scl: Tz = "America/Santiago".parse().unwrap();
        let t = parse_time("from", "2026-09-06", scl, false).unwrap();
        assert_eq!(
            t.with_timezone(&scl).to_rfc3339(),
            "2026-09-06T01:00:00-03:00"
        );
    }

    #[test]
    fn csv_columns_follow_the_type_filter() {
        let cols = columns(&[EventType::Fill], ["order_id", "reason"]);
        assert_eq!(
            cols,
            [
                "ts",
                "type",
                "engine",
                "strategy",
                "id",
                "symbol",
                "side",
                "quantity",
                "price",
                "notional",
                "attrs.order_id",
                "attrs.reason"
            ]
        );
        let all = columns(&[], []);
        assert!(all.contains(&"latency_seconds".to_owned()));
        let unique: BTreeSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
    }

    #[test]
    fn times_have_milliseconds() {
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            format_ts(1_793_518_200_123, Tz::UTC),
            "2026-11-01T07:30:00.123Z"
        );
        assert_eq!(
            format_ts(1_793_518_200_123, ny),
            "2026-11-01T02:30:00.123-05:00"
        );
    }
}
