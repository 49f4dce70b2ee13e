//! The journal: accepted events, one JSON line each, in daily files `journal/YYYY-MM-DD.jsonl`.
//! Appends go at a tracked offset, so a failed write leaves nothing behind that a later write or
//! a replay would take for an accepted event.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A point in the journal: a file and a byte offset in it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    /// The file name, `YYYY-MM-DD.jsonl` (names sort in time order).
    pub file: String,
    /// Bytes from the file's start.
    pub offset: u64,
}

/// The journal's append end.
pub struct Journal {
    dir: PathBuf,
    file: Option<File>,
    name: String,
    len: u64,
}

/// The journal file name for a Unix time.
pub fn file_name(unix: f64) -> String {
    let t = chrono::DateTime::from_timestamp(unix as i64, 0).unwrap_or_default();
    format!("{}.jsonl", t.format("%Y-%m-%d"))
}

/// The Unix time at which a journal file's UTC day starts.
pub fn day_start(file: &str) -> Option<f64> {
    let date = chrono::NaiveDate::parse_from_str(file.get(..10)?, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp() as f64)
}

/// The journal files in `dir`, oldest first.
pub fn files(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    match fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let name = entry?.file_name().to_string_lossy().into_owned();
                if name.len() == 16 && name.ends_with(".jsonl") {
                    names.push(name);
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    names.sort();
    Ok(names)
}

/// Bytes held in journal files.
pub fn total_bytes(dir: &Path) -> u64 {
    files(dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|n| fs::metadata(dir.join(n)).ok())
        .map(|m| m.len())
        .sum()
}

impl Journal {
    /// Opens the journal in `dir` for appending after `end`, the end of the last complete line
    /// (from a replay); anything past it in that file is a torn write and is cut off.
    pub fn open(dir: &Path, end: Option<&Position>) -> io::Result<Journal> {
        fs::create_dir_all(dir)?;
        let mut journal = Journal {
            dir: dir.to_owned(),
            file: None,
            name: String::new(),
            len: 0,
        };
        if let Some(end) = end {
            let file = OpenOptions::new().write(true).open(dir.join(&end.file))?;
            if file.metadata()?.len() != end.offset {
                file.set_len(end.offset)?;
                file.sync_all()?;
            }
            journal.file = Some(file);
            journal.name = end.file.clone();
            journal.len = end.offset;
        }
        Ok(journal)
    }

    /// Where the next append goes (the end of the last good line).
    pub fn position(&self) -> Position {
        Position {
            file: self.name.clone(),
            offset: self.len,
        }
    }

    /// Appends `bytes` (whole lines) to the file for `now`. On failure nothing counts as
    /// written: the file is cut back and the next append overwrites whatever got through.
    pub fn append(&mut self, bytes: &[u8], now: f64) -> io::Result<()> {
        let name = file_name(now);
        if self.file.is_none() || name > self.name {
            self.roll(name)?;
        }
        let file = self.file.as_ref().expect("rolled");
        match file.write_all_at(bytes, self.len) {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = file.set_len(self.len);
                Err(e)
            }
        }
    }

    /// Forgets the last `n` appended bytes (their fsync failed, so they were never accepted).
    pub fn cut_back(&mut self, n: u64) {
        self.len -= n;
        if let Some(file) = &self.file {
            let _ = file.set_len(self.len);
        }
    }

    /// Makes every append so far durable.
    pub fn sync(&mut self) -> io::Result<()> {
        match &self.file {
            Some(f) => f.sync_data(),
            None => Ok(()),
        }
    }

    fn roll(&mut self, name: String) -> io::Result<()> {
        if let Some(f) = &self.file {
            f.sync_data()?;
        }
        let path = self.dir.join(&name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        let len = file.metadata()?.len();
        File::open(&self.dir)?.sync_all()?;
        self.file = Some(file);
        self.name = name;
        self.len = len;
        Ok(())
    }

    /// Deletes files older than `cutoff` (a file name) that also lie wholly before `covered`
    /// (the snapshot's position); returns their names.
    pub fn delete_before(&self, cutoff: &str, covered: &Position) -> io::Result<Vec<String>> {
        let mut deleted = Vec::new();
        for name in files(&self.dir)? {
            if name.as_str() < cutoff && name < covered.file && name != self.name {
                fs::remove_file(self.dir.join(&name))?;
                deleted.push(name);
            }
        }
        Ok(deleted)
    }
}

/// Reads every complete line from `from` on, in order, with its position; returns the end of
/// the last complete line (where appends continue), or `None` for an empty journal.
pub fn replay(
    dir: &Path,
    from: &Position,
    mut each: impl FnMut(&Position, &[u8]),
) -> io::Result<Option<Position>> {
    let mut end = None;
    for name in files(dir)? {
        if name < from.file {
            continue;
        }
        let mut file = File::open(dir.join(&name))?;
        let mut offset = if name == from.file { from.offset } else { 0 };
        file.seek(SeekFrom::Start(offset))?;
        let mut reader = BufReader::with_capacity(1 << 20, file.take(u64::MAX));
        let mut line = Vec::new();
        let mut pos = Position {
            file: name.clone(),
            offset,
        };
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            pos.offset = offset;
            each(&pos, &line[..n - 1]);
            offset += n as u64;
        }
        end = Some(Position { file: name, offset });
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_lines_are_cut_and_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), None).unwrap();
        j.append(b"{\"a\":1}\n{\"a\":2}\n", 86400.0 * 3.0).unwrap();
        j.sync().unwrap();
        let path = dir.path().join("1970-01-04.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut f, b"{\"a\":3").unwrap();
        let mut lines = Vec::new();
        let end = replay(dir.path(), &Position::default(), |_, l| {
            lines.push(l.to_vec())
        })
        .unwrap();
        assert_eq!(lines, vec![b"{\"a\":1}".to_vec(), b"{\"a\":2}".to_vec()]);
        assert_eq!(
            end,
            Some(Position {
                file: "1970-01-04.jsonl".into(),
                offset: 16
            })
        );
        let mut j = Journal::open(dir.path(), end.as_ref()).unwrap();
        j.append(b"{\"a\":4}\n", 86400.0 * 3.0).unwrap();
        assert_eq!(
            fs::read(&path).unwrap(),
            b"{\"a\":1}\n{\"a\":2}\n{\"a\":4}\n"
        );
    }

    #[test]
    fn rolls_daily_and_replays_from_a_position() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), None).unwrap();
        j.append(b"1\n", 0.0).unwrap();
        let mid = j.position();
        j.append(b"2\n", 10.0).unwrap();
        j.append(b"3\n", 86400.0).unwrap();
        let mut lines = Vec::new();
        replay(dir.path(), &mid, |_, l| lines.push(l.to_vec())).unwrap();
        assert_eq!(lines, vec![b"2".to_vec(), b"3".to_vec()]);
        let covered = j.position();
        assert_eq!(
            j.delete_before("1970-01-02.jsonl", &covered).unwrap(),
            vec!["1970-01-01.jsonl"]
        );
    }
}
