//! The journal's thread: takes planned batches in arrival order, drops duplicates and events over
//! the series limits, appends the rest to the journal in one write per group, makes the group
//! durable with one fsync, applies it to the registry, and replies. Being the only writer, it
//! also takes snapshots at exact journal positions.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::Shared;
use super::event::Rejection;
use super::journal::{self, Journal};
use super::plan::{Action, Batch, Planner};
use super::snapshot;
use crate::config::FsyncMode;
use crate::exporter::registry::{Family, MetricType, sample_names};
use crate::telemetry::Telemetry;

/// What the writer tells a submitter.
#[derive(Debug)]
pub enum Outcome {
    /// The batch is journaled (as the fsync mode promises) and applied.
    Done {
        /// Lines acknowledged as duplicates of an earlier id.
        duplicates: Vec<u32>,
        /// Lines refused at the series limits.
        rejected: Vec<(u32, Rejection)>,
    },
    /// The journal could not be written; nothing was applied.
    Unavailable(String),
}

/// A message to the writer.
pub enum Msg {
    /// A planned batch and where to send its outcome.
    Batch(Box<Batch>, oneshot::Sender<Outcome>),
    /// Finish what is queued, write a snapshot and stop.
    Shutdown,
}

/// The writer's settings.
pub struct Settings {
    pub fsync: FsyncMode,
    pub fsync_interval: Duration,
    pub snapshot_interval: Duration,
    pub idempotency_window: f64,
    pub journal_retention: f64,
    pub snapshot_dir: std::path::PathBuf,
    pub journal_dir: std::path::PathBuf,
}

/// Ids seen within the idempotency window, oldest first.
#[derive(Default)]
pub struct IdWindow {
    seen: HashMap<Box<str>, f64>,
    order: VecDeque<(f64, Box<str>)>,
}

impl IdWindow {
    /// Records `id` as seen at `ts`; false when it was already seen.
    pub fn insert(&mut self, id: &str, ts: f64) -> bool {
        if self.seen.contains_key(id) {
            return false;
        }
        self.seen.insert(id.into(), ts);
        self.order.push_back((ts, id.into()));
        true
    }

    fn remove(&mut self, id: &str) {
        self.seen.remove(id);
    }

    /// Forgets ids seen before `cutoff`.
    pub fn expire(&mut self, cutoff: f64) {
        while let Some((ts, _)) = self.order.front() {
            if *ts >= cutoff {
                break;
            }
            let (ts, id) = self.order.pop_front().expect("front exists");
            if self.seen.get(&id) == Some(&ts) {
                self.seen.remove(&id);
            }
        }
    }

    /// Every id held, with the time it was seen.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.seen.iter().map(|(id, t)| (&**id, *t))
    }

    /// How many ids are held.
    pub fn len(&self) -> usize {
        self.seen.len()
    }
}

/// Applies the operations of one event (or replayed line) to the registry.
pub fn apply(planner: &Planner, batch: &mut Batch, ops: std::ops::Range<u32>) {
    for i in ops.clone() {
        let (index, action, key) = {
            let op = &batch.ops[i as usize];
            (op.family, op.action, op.key.clone())
        };
        let Some(family) = planner.family_to_apply(batch, index) else {
            continue;
        };
        let key = batch.key(&key);
        match action {
            Action::Keep => {}
            Action::Prune => {
                let keep: HashSet<&str> = batch.ops[ops.start as usize..ops.end as usize]
                    .iter()
                    .filter(|o| {
                        o.family == index && matches!(o.action, Action::Set(_) | Action::Keep)
                    })
                    .map(|o| batch.key(&o.key))
                    .collect();
                family.remove_where(|labels| labels.starts_with(key) && !keep.contains(labels));
            }
            action => {
                let series = family
                    .lookup(key)
                    .unwrap_or_else(|| family.create_unchecked(key));
                match action {
                    Action::Inc(v) => series.add(v),
                    Action::Set(v) => series.set(v),
                    Action::Max(v) => series.set_max(v),
                    Action::Observe(v) => family.observe(&series, v),
                    Action::IncIfRising { gauge } => {
                        let was = planner
                            .family(batch, gauge)
                            .ok()
                            .and_then(|g| g.lookup(key))
                            .map(|s| s.value());
                        if was != Some(1.0) {
                            series.add(1.0);
                        }
                    }
                    Action::Prune | Action::Keep => unreachable!("handled above"),
                }
            }
        }
    }
}

/// The writer's state.
pub struct Writer {
    pub planner: Arc<Planner>,
    pub journal: Journal,
    pub ids: IdWindow,
    pub settings: Settings,
    pub shared: Arc<Shared>,
    pub telemetry: Arc<Telemetry>,
}

/// What events accepted earlier in a group will create: series by family name, and the
/// sample names of new `metric` families with their owner.
#[derive(Default)]
struct Pending {
    keys: HashMap<String, HashSet<String>>,
    samples: HashMap<String, (String, MetricType)>,
}

impl Pending {
    fn check_family(&self, name: &str, kind: MetricType) -> Result<(), Rejection> {
        for sample in sample_names(name, kind) {
            if let Some((owner, owner_kind)) = self.samples.get(&sample)
                && (owner != name || *owner_kind != kind)
            {
                let message = if owner == name {
                    format!(
                        "metric {name} is already registered as a {}",
                        owner_kind.as_str()
                    )
                } else {
                    format!(
                        "metric {name} clashes with the samples of {} {owner}",
                        owner_kind.as_str()
                    )
                };
                return Err(Rejection::new("type_conflict", message));
            }
        }
        Ok(())
    }

    fn add_family(&mut self, name: &str, kind: MetricType) {
        for sample in sample_names(name, kind) {
            self.samples.insert(sample, (name.to_owned(), kind));
        }
    }
}

impl Writer {
    /// Runs until a shutdown message or until every sender is gone.
    pub fn run(mut self, rx: Receiver<Msg>) {
        let mut last_sync = Instant::now();
        let mut last_snapshot = Instant::now();
        let mut unsynced = false;
        let mut buf = Vec::new();
        let tick = Duration::from_millis(100);
        loop {
            let first = match rx.recv_timeout(tick) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut group = Vec::new();
            let mut shutdown = false;
            let mut bytes = 0;
            let mut next = first;
            while let Some(msg) = next {
                match msg {
                    Msg::Batch(batch, reply) => {
                        bytes += batch.journal.len();
                        group.push((batch, reply));
                    }
                    Msg::Shutdown => {
                        shutdown = true;
                        break;
                    }
                }
                next = if bytes < 32 << 20 {
                    rx.try_recv().ok()
                } else {
                    None
                };
            }
            if !group.is_empty() {
                unsynced |= self.process(group, &mut buf);
            }
            if unsynced
                && self.settings.fsync == FsyncMode::Interval
                && last_sync.elapsed() >= self.settings.fsync_interval
            {
                self.sync();
                unsynced = false;
                last_sync = Instant::now();
            }
            if last_snapshot.elapsed() >= self.settings.snapshot_interval {
                self.snapshot();
                last_snapshot = Instant::now();
            }
            if shutdown {
                break;
            }
        }
        self.sync();
        self.snapshot();
    }

    fn sync(&mut self) {
        let started = Instant::now();
        match self.journal.sync() {
            Ok(()) => self.telemetry.journal_fsync(started.elapsed()),
            Err(e) => {
                self.telemetry.journal_error();
                tracing::error!(error = %e, "Journal fsync failed.");
            }
        }
    }

    /// Takes a snapshot at the current journal position and applies retention.
    pub fn snapshot(&mut self) {
        let position = self.journal.position();
        let now = now();
        if let Err(e) = snapshot::write(
            &self.settings.snapshot_dir,
            self.planner.registry(),
            self.ids.iter(),
            &position,
            now,
        ) {
            tracing::error!(error = %e, "Snapshot failed; the journal is kept until one succeeds.");
            return;
        }
        let cutoff = journal::file_name(now - self.settings.journal_retention);
        match self.journal.delete_before(&cutoff, &position) {
            Ok(deleted) if !deleted.is_empty() => {
                tracing::info!(files = ?deleted, "Deleted journal files past retention.")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "Journal retention failed."),
        }
        self.telemetry
            .journal_bytes(journal::total_bytes(&self.settings.journal_dir));
    }

    /// Journals, applies and answers one group; returns whether it wrote without syncing.
    fn process(
        &mut self,
        mut group: Vec<(Box<Batch>, oneshot::Sender<Outcome>)>,
        buf: &mut Vec<u8>,
    ) -> bool {
        let now = now();
        self.ids.expire(now - self.settings.idempotency_window);
        buf.clear();
        let mut added_ids: Vec<String> = Vec::new();
        let mut verdicts: Vec<Vec<Verdict>> = Vec::with_capacity(group.len());
        {
            let mut pending = Pending::default();
            let mut new_total = 0usize;
            for (batch, _) in group.iter_mut() {
                let mut batch_verdicts = Vec::with_capacity(batch.events.len());
                for e in 0..batch.events.len() {
                    let event = &batch.events[e];
                    if let Some(id) = &event.id {
                        let id = batch.key(id);
                        if !self.ids.insert(id, now) {
                            batch_verdicts.push(Verdict::Duplicate);
                            continue;
                        }
                        added_ids.push(id.to_owned());
                    }
                    match self.resolve(batch, e, &mut pending, &mut new_total) {
                        Ok(()) => {
                            let event = &batch.events[e];
                            buf.extend_from_slice(&batch.journal[event.journal.clone()]);
                            batch_verdicts.push(Verdict::Accept);
                        }
                        Err(rejection) => {
                            if let Some(id) = &batch.events[e].id {
                                let id = batch.key(id).to_owned();
                                self.ids.remove(&id);
                                added_ids.retain(|a| *a != id);
                            }
                            batch_verdicts.push(Verdict::Reject(rejection));
                        }
                    }
                }
                verdicts.push(batch_verdicts);
            }
        }
        let written = buf.len() as u64;
        let result = self.journal.append(buf, now).and_then(|()| {
            if self.settings.fsync == FsyncMode::Batch && written > 0 {
                let started = Instant::now();
                let r = self.journal.sync();
                self.telemetry.journal_fsync(started.elapsed());
                if r.is_err() {
                    self.journal.cut_back(written);
                }
                r
            } else {
                Ok(())
            }
        });
        if let Err(e) = result {
            for id in &added_ids {
                self.ids.remove(id);
            }
            self.telemetry.journal_error();
            let message = format!("the journal cannot be written: {}", e.kind());
            tracing::error!(error = %e, "Journal write failed; refusing batches until it recovers.");
            *self.shared.journal_error.lock() = Some(message.clone());
            for (batch, reply) in group {
                self.shared
                    .queued
                    .fetch_sub(batch.events.len() + batch.rejected.len(), Ordering::Relaxed);
                let _ = reply.send(Outcome::Unavailable(message.clone()));
            }
            return false;
        }
        if self.shared.journal_error.lock().take().is_some() {
            tracing::info!("Journal writable again.");
        }
        for ((mut batch, reply), verdicts) in group.into_iter().zip(verdicts) {
            let mut duplicates = Vec::new();
            let mut rejected = Vec::new();
            for (e, verdict) in verdicts.into_iter().enumerate() {
                let line = batch.events[e].line;
                match verdict {
                    Verdict::Accept => {
                        let ops = batch.events[e].ops.clone();
                        apply(&self.planner, &mut batch, ops);
                    }
                    Verdict::Duplicate => {
                        self.telemetry
                            .events_duplicate(batch.events[e].kind.as_str(), 1);
                        duplicates.push(line);
                    }
                    Verdict::Reject(r) => {
                        self.telemetry.events_rejected(r.reason, 1);
                        rejected.push((line, r));
                    }
                }
            }
            self.shared
                .queued
                .fetch_sub(batch.events.len() + batch.rejected.len(), Ordering::Relaxed);
            let _ = reply.send(Outcome::Done {
                duplicates,
                rejected,
            });
        }
        self.shared.changed();
        written > 0 && self.settings.fsync != FsyncMode::Batch
    }

    /// Checks that the families and series event `e` would create fit: custom families that
    /// clash with nothing registered or pending, series under the limits, counting what events
    /// accepted earlier in this group will create.
    fn resolve(
        &self,
        batch: &Batch,
        e: usize,
        pending: &mut Pending,
        new_total: &mut usize,
    ) -> Result<(), Rejection> {
        let planner = &*self.planner;
        let registry = planner.registry();
        let conflict = |err: crate::exporter::registry::RegisterError| {
            Rejection::new("type_conflict", err.to_string())
        };
        let mut fresh: Vec<(&str, &str, Option<Arc<Family>>)> = Vec::new();
        let mut new_families: Vec<(&str, MetricType)> = Vec::new();
        let range = batch.events[e].ops.clone();
        for op in &batch.ops[range.start as usize..range.end as usize] {
            if matches!(op.action, Action::Prune | Action::Keep) {
                continue;
            }
            let key = batch.key(&op.key);
            let (name, family) = match planner.family(batch, op.family) {
                Ok(f) => (f.name(), Some(f.clone())),
                Err(custom) => {
                    let existing = registry
                        .check(&custom.name, custom.kind)
                        .map_err(conflict)?;
                    if existing.is_none() {
                        pending.check_family(&custom.name, custom.kind)?;
                        new_families.push((&custom.name, custom.kind));
                    }
                    (custom.name.as_str(), existing)
                }
            };
            let seen = pending.keys.get(name).is_some_and(|s| s.contains(key));
            if seen || fresh.iter().any(|(n, k, _)| *n == name && *k == key) {
                continue;
            }
            if family.as_ref().is_some_and(|f| f.lookup(key).is_some()) {
                continue;
            }
            fresh.push((name, key, family));
        }
        let total_new = *new_total + fresh.len();
        for (name, _, family) in &fresh {
            let family_new = pending.keys.get(*name).map_or(0, HashSet::len)
                + fresh.iter().filter(|(n, _, _)| n == name).count();
            let len = family.as_ref().map_or(0, |f| f.len());
            registry
                .check_room(name, len + family_new, total_new)
                .map_err(|err| Rejection::new("series_limit", err.to_string()))?;
        }
        *new_total = total_new;
        for (name, key, _) in fresh {
            pending
                .keys
                .entry(name.to_owned())
                .or_default()
                .insert(key.to_owned());
        }
        for (name, kind) in new_families {
            pending.add_family(name, kind);
        }
        Ok(())
    }
}

enum Verdict {
    Accept,
    Duplicate,
    Reject(Rejection),
}

/// The current Unix time in seconds.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
