//! Event ingest (DESIGN §1): bodies decoded into planned batches, a journal thread that makes
//! them durable before they apply, and restart from the last snapshot plus the journal.

pub mod event;
pub mod export;
pub mod journal;
pub mod plan;
pub mod snapshot;
pub(crate) mod writer;

pub use writer::now;

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{oneshot, watch};

use crate::config::{Config, Limits};
use crate::exporter::{Catalog, Registry};
use crate::telemetry::Telemetry;
use event::{EVENT_TYPES, Rejection};
use plan::{Batch, Planner};
use writer::{IdWindow, Msg, Outcome, Settings, Writer};

/// Why a whole request was refused.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The body (compressed or not) is over its limit.
    #[error("{0}")]
    TooLarge(String),
    /// The content type is not one the endpoint reads.
    #[error("unsupported content type {0:?}: send application/x-ndjson or application/json")]
    UnsupportedMediaType(String),
    /// The gzip stream is broken.
    #[error("the gzip body cannot be decompressed: {0}")]
    BadEncoding(String),
    /// The body holds no event, or is not JSON at its top level.
    #[error("{0}")]
    BadBody(String),
    /// The journal's queue is over its limit.
    #[error("the journal queue is full; retry shortly")]
    QueueFull,
    /// The journal cannot be written; nothing applied.
    #[error("{0}")]
    Unavailable(String),
}

/// How a body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// One JSON object a line (`application/x-ndjson`).
    Ndjson,
    /// A JSON array of objects, or one object (`application/json`).
    Json,
}

impl BodyKind {
    /// The framing a `Content-Type` names.
    pub fn from_content_type(content_type: Option<&str>) -> Result<BodyKind, IngestError> {
        let raw = content_type.unwrap_or("");
        let media = raw
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines" => Ok(BodyKind::Ndjson),
            "application/json" => Ok(BodyKind::Json),
            _ => Err(IngestError::UnsupportedMediaType(raw.to_owned())),
        }
    }
}

/// The reply to an ingest request.
#[derive(Debug, Serialize, PartialEq)]
pub struct Reply {
    /// Events applied.
    pub accepted: usize,
    /// Events acknowledged as duplicates of an earlier id.
    pub duplicates: usize,
    /// Events refused, with their 1-based line and why.
    pub rejected: Vec<RejectedLine>,
}

/// One refused event.
#[derive(Debug, Serialize, PartialEq)]
pub struct RejectedLine {
    /// 1-based line, or position in a JSON array.
    pub line: u32,
    /// What is wrong with it.
    pub error: String,
}

impl Reply {
    /// 200 when something applied or nothing was wrong, 400 when nothing could apply.
    pub fn status(&self) -> u16 {
        if self.accepted + self.duplicates == 0 && !self.rejected.is_empty() {
            400
        } else {
            200
        }
    }
}

/// State the writer shares with request handlers.
pub struct Shared {
    queued: AtomicUsize,
    journal_error: Mutex<Option<String>>,
    seq: AtomicU64,
    changes: watch::Sender<u64>,
}

impl Shared {
    fn changed(&self) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        self.changes.send_replace(seq);
    }
}

/// The ingest pipeline of one exporter.
pub struct Ingest {
    planner: Arc<Planner>,
    limits: Limits,
    tx: Mutex<Option<std::sync::mpsc::Sender<Msg>>>,
    shared: Arc<Shared>,
    telemetry: Arc<Telemetry>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    data_dir: PathBuf,
}

/// What start-up restored.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Series restored from the snapshot.
    pub snapshot_series: usize,
    /// Journal lines replayed after it.
    pub replayed: u64,
    /// Ids in the idempotency window.
    pub ids: usize,
    /// How long it took.
    pub took: Duration,
}

/// Start-up could not restore or open the journal.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Reading the snapshot or the journal failed.
    #[error("failed to restore from {path}: {source}")]
    Restore {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Ingest {
    /// Restores `registry` from the data directory's snapshot and journal and starts the
    /// journal's thread.
    pub fn start(
        config: &Config,
        registry: Arc<Registry>,
        telemetry: Arc<Telemetry>,
    ) -> Result<(Ingest, Recovery), StartError> {
        let started = Instant::now();
        let exporter = &config.exporter;
        let catalog = Catalog::new(&registry, &exporter.buckets);
        let planner = Arc::new(Planner::new(
            registry.clone(),
            catalog,
            exporter.limits.clone(),
            exporter.buckets.clone(),
        ));
        let data_dir = config.storage.data_dir.clone();
        let journal_dir = data_dir.join("journal");
        let snapshot_dir = data_dir.join("snapshot");
        let err = |path: &PathBuf| {
            let path = path.clone();
            move |source| StartError::Restore { path, source }
        };
        let restored = snapshot::load(&snapshot_dir, &registry).map_err(err(&snapshot_dir))?;
        let mut recovery = Recovery::default();
        let (from, snapshot_ids, snapshot_at) = match restored {
            Some(r) => {
                if !r.skipped.is_empty() {
                    tracing::warn!(families = ?r.skipped, "Snapshot families skipped: their type or buckets changed.");
                }
                recovery.snapshot_series = r.series;
                (r.position, r.ids, r.written_at)
            }
            None => (journal::Position::default(), Vec::new(), 0.0),
        };
        let window = exporter.idempotency_window.as_duration().as_secs_f64();
        let now = writer::now();
        let mut ids = IdWindow::default();
        for (id, seen) in &snapshot_ids {
            if *seen >= now - window {
                ids.insert(id, *seen);
            }
        }
        let end = journal::replay(&journal_dir, &from, |pos, line| {
            let mut batch = Batch::default();
            planner.plan_line(&mut batch, 1, line, now);
            if let Some(event) = batch.events.first() {
                if let Some(id) = &event.id {
                    // Arrival is not journaled: it lies after the snapshot, within the file's
                    // UTC day and before now. The event's own time is the guess when it falls
                    // there; otherwise the latest possible arrival, so an id is remembered
                    // longer rather than forgotten early.
                    let day = journal::day_start(&pos.file).unwrap_or(0.0);
                    let low = snapshot_at.max(day);
                    let high = now.min(day + 86_400.0).max(low);
                    let seen = if (low..=high).contains(&event.ts) { event.ts } else { high };
                    ids.insert(batch.key(id), seen);
                }
                let ops = event.ops.clone();
                writer::apply(&planner, &mut batch, ops);
                recovery.replayed += 1;
            } else if let Some((_, r)) = batch.rejected.first() {
                tracing::warn!(file = %pos.file, offset = pos.offset, error = %r.message, "Journal line no longer applies; skipped.");
            }
        })
        .map_err(err(&journal_dir))?;
        ids.expire(now - window);
        recovery.ids = ids.len();
        let journal =
            journal::Journal::open(&journal_dir, end.as_ref()).map_err(err(&journal_dir))?;
        let (changes, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            queued: AtomicUsize::new(0),
            journal_error: Mutex::new(None),
            seq: AtomicU64::new(0),
            changes,
        });
        let storage = &config.storage;
        let settings = Settings {
            fsync: storage.fsync,
            fsync_interval: storage.fsync_interval.as_duration(),
            snapshot_interval: storage.snapshot_interval.as_duration(),
            idempotency_window: window,
            journal_retention: storage.journal_retention.as_duration().as_secs_f64(),
            snapshot_dir,
            journal_dir,
        };
        let writer = Writer {
            planner: planner.clone(),
            journal,
            ids,
            settings,
            shared: shared.clone(),
            telemetry: telemetry.clone(),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer.run(rx))
            .expect("spawning the journal thread");
        recovery.took = started.elapsed();
        let ingest = Ingest {
            planner,
            limits: exporter.limits.clone(),
            tx: Mutex::new(Some(tx)),
            shared,
            telemetry,
            thread: Mutex::new(Some(thread)),
            data_dir,
        };
        Ok((ingest, recovery))
    }

    /// The registry events apply to.
    pub fn registry(&self) -> &Arc<Registry> {
        self.planner.registry()
    }

    /// The trading catalog.
    pub fn catalog(&self) -> &Catalog {
        self.planner.catalog()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// The journal's last error, while it cannot be written.
    pub fn journal_error(&self) -> Option<String> {
        self.shared.journal_error.lock().clone()
    }

    /// A receiver of the change counter, bumped after every applied group.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    /// Decompresses (when `gzip`) and decodes a request body into a planned batch.
    pub fn decode(
        &self,
        body: &[u8],
        gzip: bool,
        kind: BodyKind,
        now: f64,
    ) -> Result<Box<Batch>, IngestError> {
        let limits = &self.limits;
        if body.len() as u64 > limits.max_body_bytes {
            return Err(IngestError::TooLarge(format!(
                "the body is over the limit of {} bytes",
                limits.max_body_bytes
            )));
        }
        let inflated;
        let body = if gzip {
            let mut out = Vec::new();
            let mut reader =
                flate2::read::MultiGzDecoder::new(body).take(limits.max_decoded_body_bytes + 1);
            reader
                .read_to_end(&mut out)
                .map_err(|e| IngestError::BadEncoding(e.to_string()))?;
            if out.len() as u64 > limits.max_decoded_body_bytes {
                return Err(IngestError::TooLarge(format!(
                    "the decompressed body is over the limit of {} bytes",
                    limits.max_decoded_body_bytes
                )));
            }
            inflated = out;
            &inflated[..]
        } else {
            body
        };
        let mut batch = Box::new(Batch::default());
        batch.journal.reserve(body.len() + body.len() / 8);
        batch.keys.reserve(body.len() / 2);
        let too_many = || {
            IngestError::TooLarge(format!(
                "the batch holds over {} events",
                limits.max_events_per_batch
            ))
        };
        let first = body.iter().position(|b| !b.is_ascii_whitespace());
        match (kind, first.map(|i| body[i])) {
            (_, None) => return Err(IngestError::BadBody("the body holds no events".into())),
            (BodyKind::Json, Some(b'[')) => {
                let items: Vec<&serde_json::value::RawValue> = serde_json::from_slice(body)
                    .map_err(|e| {
                        IngestError::BadBody(format!(
                            "the body is not a JSON array of objects: {e}"
                        ))
                    })?;
                if items.len() > limits.max_events_per_batch {
                    return Err(too_many());
                }
                for (i, item) in items.iter().enumerate() {
                    self.planner
                        .plan_line(&mut batch, i as u32 + 1, item.get().as_bytes(), now);
                }
            }
            (BodyKind::Json, Some(_)) => {
                self.planner
                    .plan_line(&mut batch, 1, body.trim_ascii(), now)
            }
            (BodyKind::Ndjson, Some(_)) => {
                let mut count = 0;
                for (i, line) in body.split(|b| *b == b'\n').enumerate() {
                    let line = line.trim_ascii();
                    if line.is_empty() {
                        continue;
                    }
                    count += 1;
                    if count > limits.max_events_per_batch {
                        return Err(too_many());
                    }
                    self.planner.plan_line(&mut batch, i as u32 + 1, line, now);
                }
            }
        }
        Ok(batch)
    }

    /// Journals and applies a planned batch; replies once it is durable.
    pub async fn submit(&self, batch: Box<Batch>) -> Result<Reply, IngestError> {
        for (t, n) in EVENT_TYPES.iter().zip(batch.received) {
            if n > 0 {
                self.telemetry.events_received(t.as_str(), n);
            }
        }
        let mut rejected: Vec<RejectedLine> = Vec::with_capacity(batch.rejected.len());
        for (line, r) in &batch.rejected {
            self.telemetry.events_rejected(r.reason, 1);
            rejected.push(RejectedLine {
                line: *line,
                error: r.message.clone(),
            });
        }
        let events = batch.events.len();
        if events == 0 {
            return Ok(Reply {
                accepted: 0,
                duplicates: 0,
                rejected,
            });
        }
        let weight = events + batch.rejected.len();
        let queued = self.shared.queued.fetch_add(weight, Ordering::Relaxed);
        if queued > 0 && queued + weight > self.limits.max_queued_events {
            self.shared.queued.fetch_sub(weight, Ordering::Relaxed);
            self.telemetry.events_rejected("queue_full", events as u64);
            return Err(IngestError::QueueFull);
        }
        let (reply_tx, reply_rx) = oneshot::channel();
        let sent = match &*self.tx.lock() {
            Some(tx) => tx.send(Msg::Batch(batch, reply_tx)).is_ok(),
            None => false,
        };
        if !sent {
            self.shared.queued.fetch_sub(weight, Ordering::Relaxed);
            return Err(IngestError::Unavailable(
                "tradewatch is shutting down".into(),
            ));
        }
        match reply_rx.await {
            Ok(Outcome::Done {
                duplicates,
                rejected: late,
            }) => {
                let late_count = late.len();
                rejected.extend(late.into_iter().map(|(line, r)| RejectedLine {
                    line,
                    error: r.message,
                }));
                rejected.sort_by_key(|r| r.line);
                Ok(Reply {
                    accepted: events - duplicates.len() - late_count,
                    duplicates: duplicates.len(),
                    rejected,
                })
            }
            Ok(Outcome::Unavailable(message)) => {
                self.telemetry
                    .events_rejected("journal_unavailable", events as u64);
                Err(IngestError::Unavailable(message))
            }
            Err(_) => Err(IngestError::Unavailable("the journal stopped".into())),
        }
    }

    /// Stops taking batches, lets the journal finish what is queued, writes a snapshot and
    /// waits for the journal's thread to end.
    pub fn shutdown(&self) {
        let Some(tx) = self.tx.lock().take() else {
            return;
        };
        let _ = tx.send(Msg::Shutdown);
        drop(tx);
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A rejection for a whole request, as the client sees it.
pub fn rejection_reason(err: &IngestError) -> &'static str {
    match err {
        IngestError::TooLarge(_) => "too_large",
        IngestError::UnsupportedMediaType(_) => "unsupported_media_type",
        IngestError::BadEncoding(_) | IngestError::BadBody(_) => "malformed",
        IngestError::QueueFull => "queue_full",
        IngestError::Unavailable(_) => "journal_unavailable",
    }
}

impl From<Rejection> for RejectedLine {
    fn from(r: Rejection) -> Self {
        RejectedLine {
            line: 0,
            error: r.message,
        }
    }
}
