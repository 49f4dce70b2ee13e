//! Registry snapshots: every family and series with its raw cells, and the journal position the
//! snapshot covers, written atomically to `snapshot/registry.jsonl`.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::journal::Position;
use crate::exporter::{MetricType, Registry};

const FILE: &str = "registry.jsonl";

#[derive(Serialize, Deserialize)]
struct Header {
    version: u32,
    position: Position,
    written_at: f64,
}

#[derive(Serialize, Deserialize)]
struct FamilyRecord {
    name: String,
    kind: MetricType,
    help: String,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    buckets: Vec<f64>,
    /// (label block, cells as `u64` bits).
    series: Vec<(String, Vec<u64>)>,
}

/// The idempotency ids seen within the window, with their arrival times.
#[derive(Serialize, Deserialize)]
struct IdsRecord {
    ids: Vec<(String, f64)>,
}

/// Writes a snapshot of `registry` and the idempotency `ids` (with arrival times) covering the
/// journal up to `position`.
pub fn write<'i>(
    dir: &Path,
    registry: &Registry,
    ids: impl Iterator<Item = (&'i str, f64)>,
    position: &Position,
    now: f64,
) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let header = Header {
        version: 1,
        position: position.clone(),
        written_at: now,
    };
    serde_json::to_writer(&mut out, &header)?;
    out.write_all(b"\n")?;
    for family in registry.families() {
        let mut series = Vec::with_capacity(family.len());
        family.for_each(|s| series.push((s.labels().to_owned(), s.cell_bits())));
        let record = FamilyRecord {
            name: family.name().to_owned(),
            kind: family.kind(),
            help: family.help().to_owned(),
            unit: family.unit().map(str::to_owned),
            buckets: family.buckets().to_vec(),
            series,
        };
        serde_json::to_writer(&mut out, &record)?;
        out.write_all(b"\n")?;
    }
    let ids = IdsRecord {
        ids: ids.map(|(id, t)| (id.to_owned(), t)).collect(),
    };
    serde_json::to_writer(&mut out, &ids)?;
    out.write_all(b"\n")?;
    let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(FILE))?;
    File::open(dir)?.sync_all()
}

/// What loading a snapshot restored.
#[derive(Debug, Default)]
pub struct Restored {
    /// The journal position the snapshot covers (replay continues there).
    pub position: Position,
    /// Series restored.
    pub series: usize,
    /// Families skipped because their type or buckets changed since the snapshot.
    pub skipped: Vec<String>,
    /// Idempotency ids with their arrival times.
    pub ids: Vec<(String, f64)>,
    /// When the snapshot was written, Unix seconds.
    pub written_at: f64,
}

/// Loads the snapshot in `dir` into `registry`, if there is one.
pub fn load(dir: &Path, registry: &Registry) -> io::Result<Option<Restored>> {
    let file = match File::open(dir.join(FILE)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut lines = BufReader::with_capacity(1 << 20, file).lines();
    let header: Header = match lines.next() {
        Some(line) => serde_json::from_str(&line?)?,
        None => return Err(io::Error::new(io::ErrorKind::InvalidData, "empty snapshot")),
    };
    let mut restored = Restored {
        position: header.position,
        written_at: header.written_at,
        ..Restored::default()
    };
    for line in lines {
        let line = line?;
        if line.starts_with("{\"ids\":") {
            restored.ids = serde_json::from_str::<IdsRecord>(&line)?.ids;
            continue;
        }
        let record: FamilyRecord = serde_json::from_str(&line)?;
        let family = match registry.family(&record.name) {
            Some(f) if f.kind() == record.kind && f.buckets() == record.buckets.as_slice() => f,
            Some(_) => {
                restored.skipped.push(record.name);
                continue;
            }
            None => match registry.register(
                &record.name,
                record.kind,
                &record.help,
                record.unit.as_deref(),
                &record.buckets,
            ) {
                Ok(f) => f,
                Err(_) => {
                    restored.skipped.push(record.name);
                    continue;
                }
            },
        };
        for (labels, bits) in &record.series {
            if family.restore_series(labels, bits) {
                restored.series += 1;
            }
        }
    }
    Ok(Some(restored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_type() {
        let dir = tempfile::tempdir().unwrap();
        let a = Registry::default();
        a.register("c", MetricType::Counter, "h", None, &[])
            .unwrap()
            .counter("x=\"1\"")
            .unwrap()
            .inc_by(2.5);
        a.register("g", MetricType::Gauge, "h", None, &[])
            .unwrap()
            .gauge("")
            .unwrap()
            .set(f64::NAN);
        a.register("h", MetricType::Histogram, "h", None, &[1.0])
            .unwrap()
            .histogram("")
            .unwrap()
            .observe(3.0);
        let pos = Position {
            file: "2026-01-01.jsonl".into(),
            offset: 42,
        };
        write(dir.path(), &a, [("x", 0.5)].into_iter(), &pos, 1.0).unwrap();
        let b = Registry::default();
        let restored = load(dir.path(), &b).unwrap().unwrap();
        assert_eq!(restored.position, pos);
        assert_eq!(restored.series, 3);
        assert_eq!(restored.ids, vec![("x".to_owned(), 0.5)]);
        assert_eq!(restored.written_at, 1.0);
        use crate::exporter::Format;
        assert_eq!(a.encode(Format::OpenMetrics), b.encode(Format::OpenMetrics));
    }
}
