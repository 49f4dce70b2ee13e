//! The scrape loops: one tokio task per target, each scraping on its own interval at a stable
//! offset within it (as Prometheus spreads its targets), until stopped; a reload keeps the loops
//! of unchanged targets running, restarts changed ones and ends removed ones with staleness
//! markers for their series.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::target::{ScrapeError, Target, scrape_once};
use crate::config::{ScrapeConfig, ScrapeTarget};
use crate::store::Store;
use crate::telemetry::Telemetry;

/// Called after a scrape that a target's change (its long poll) triggered, so the rules that
/// read it can evaluate at once.
pub type OnChange = Arc<dyn Fn() + Send + Sync>;

/// One target's running loop.
struct Loop {
    /// The target's configuration with the section's defaults filled in: a reload compares it.
    settings: ScrapeTarget,
    target: Arc<Target>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Loop {
    /// Stops the loop (a scrape in flight is abandoned) and waits for it to end.
    async fn stop(self) -> Arc<Target> {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.target
    }
}

/// The running scrape loops of every configured target.
pub struct Scraper {
    loops: Vec<Loop>,
    store: Arc<Store>,
    telemetry: Option<Arc<Telemetry>>,
    on_change: Option<OnChange>,
    filter: Option<super::filter::FilterHandle>,
}

impl std::fmt::Debug for Scraper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scraper")
            .field("targets", &self.loops.len())
            .finish_non_exhaustive()
    }
}

/// The targets of a new configuration, checked and built, ready for [`Scraper::apply`].
pub struct ScrapePlan {
    /// Each target's settings, and its new [`Target`] unless a running loop has the same.
    targets: Vec<(ScrapeTarget, Option<Target>)>,
}

/// What [`Scraper::apply`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReloadReport {
    /// Loops left running: the target's settings did not change.
    pub kept: usize,
    /// Loops restarted with new settings (same URL, job and labels).
    pub restarted: usize,
    /// New targets.
    pub added: usize,
    /// Targets gone, their series marked stale.
    pub removed: usize,
}

/// `target` with every setting it leaves to the section filled in from `config`.
fn settings(target: &ScrapeTarget, config: &ScrapeConfig) -> ScrapeTarget {
    ScrapeTarget {
        interval: Some(config.interval_of(target)),
        timeout: Some(config.timeout_of(target)),
        sample_limit: Some(config.sample_limit_of(target)),
        body_size_limit: Some(config.body_size_limit_of(target)),
        ..target.clone()
    }
}

/// Whether two targets are the same one (their series are the same), whatever their settings.
fn same_target(a: &ScrapeTarget, b: &ScrapeTarget) -> bool {
    a.url == b.url && a.job == b.job && a.labels == b.labels
}

impl Scraper {
    /// Starts one loop per target of `config`, appending into `store`; fails before starting
    /// any when a target is invalid.
    pub fn start(
        config: &ScrapeConfig,
        store: Arc<Store>,
        telemetry: Option<Arc<Telemetry>>,
    ) -> Result<Scraper, ScrapeError> {
        Scraper::start_with(config, store, telemetry, None, None)
    }

    /// [`Scraper::start`], calling `on_change` after each scrape a target's change triggered
    /// and keeping only the series `filter` keeps.
    pub fn start_with(
        config: &ScrapeConfig,
        store: Arc<Store>,
        telemetry: Option<Arc<Telemetry>>,
        on_change: Option<OnChange>,
        filter: Option<super::filter::FilterHandle>,
    ) -> Result<Scraper, ScrapeError> {
        let mut scraper = Scraper {
            loops: Vec::new(),
            store,
            telemetry,
            on_change,
            filter,
        };
        let plan = scraper.prepare(config)?;
        for (settings, target) in plan.targets {
            let target = target.expect("no loop runs yet");
            scraper.spawn_loop(settings, target);
        }
        Ok(scraper)
    }

    /// Starts one loop per already built target.
    pub fn spawn(targets: Vec<Target>, store: Arc<Store>) -> Scraper {
        let mut scraper = Scraper {
            loops: Vec::new(),
            store,
            telemetry: None,
            on_change: None,
            filter: None,
        };
        for target in targets {
            // Built by hand: no settings to compare at a reload, so a reload replaces it.
            let settings = ScrapeTarget::new(target.name(), "");
            scraper.spawn_loop(settings, target);
        }
        scraper
    }

    /// Checks and builds the targets of `config` that no running loop already scrapes with the
    /// same settings; changes nothing, so a reload can refuse the whole configuration.
    pub fn prepare(&self, config: &ScrapeConfig) -> Result<ScrapePlan, ScrapeError> {
        let mut targets = Vec::with_capacity(config.targets.len());
        // Each running loop serves at most one target of the plan, as `apply` matches them.
        let mut claimed = vec![false; self.loops.len()];
        for t in &config.targets {
            let settings = settings(t, config);
            let running =
                (0..self.loops.len()).find(|&i| !claimed[i] && self.loops[i].settings == settings);
            let target = if let Some(i) = running {
                claimed[i] = true;
                None
            } else {
                let mut target = Target::new(t, config)?;
                if let Some(f) = &self.filter {
                    target = target.with_filter(f.clone());
                }
                if let Some(telemetry) = &self.telemetry {
                    target = target.with_telemetry(telemetry.clone());
                }
                Some(target)
            };
            targets.push((settings, target));
        }
        Ok(ScrapePlan { targets })
    }

    /// Puts `plan` in force: loops of unchanged targets go on untouched; a target whose settings
    /// changed restarts, its staleness tracking carried over; a target no longer configured stops
    /// and its series (with `up` and the `scrape_*` series) get staleness markers at once.
    pub async fn apply(&mut self, plan: ScrapePlan) -> ReloadReport {
        let mut report = ReloadReport::default();
        let mut old: Vec<Option<Loop>> = std::mem::take(&mut self.loops)
            .into_iter()
            .map(Some)
            .collect();
        let mut kept = Vec::new();
        let mut starting = Vec::new();
        for (settings, target) in plan.targets {
            let unchanged = old
                .iter()
                .position(|l| l.as_ref().is_some_and(|l| l.settings == settings));
            match (unchanged, target) {
                (Some(i), None) => {
                    kept.push(old[i].take().expect("matched a running loop"));
                    report.kept += 1;
                }
                (_, Some(target)) => {
                    let previous = old.iter().position(|l| {
                        l.as_ref()
                            .is_some_and(|l| same_target(&l.settings, &settings))
                    });
                    match previous {
                        Some(i) => {
                            let stopped =
                                old[i].take().expect("matched a running loop").stop().await;
                            target.adopt_history(&stopped);
                            report.restarted += 1;
                        }
                        None => report.added += 1,
                    }
                    starting.push((settings, target));
                }
                // `prepare` left out the target because this scraper runs it: still there.
                (None, None) => unreachable!("a plan applies to the scraper that prepared it"),
            }
        }
        let now_ms = now_since_epoch().as_millis() as i64;
        for gone in old.into_iter().flatten() {
            let target = gone.stop().await;
            let stale = target.mark_gone(&self.store, now_ms);
            tracing::info!(target_url = %target.name(), stale, "Scrape target removed; its series are stale.");
            report.removed += 1;
        }
        self.loops = kept;
        for (settings, target) in starting {
            self.spawn_loop(settings, target);
        }
        report
    }

    /// [`Scraper::prepare`] then [`Scraper::apply`].
    pub async fn reload(&mut self, config: &ScrapeConfig) -> Result<ReloadReport, ScrapeError> {
        let plan = self.prepare(config)?;
        Ok(self.apply(plan).await)
    }

    /// How many targets are scraped.
    pub fn len(&self) -> usize {
        self.loops.len()
    }

    /// Whether no target is scraped.
    pub fn is_empty(&self) -> bool {
        self.loops.is_empty()
    }

    fn spawn_loop(&mut self, settings: ScrapeTarget, target: Target) {
        let (stop, stopped) = watch::channel(false);
        let target = Arc::new(target);
        let task = tokio::spawn(run(
            target.clone(),
            self.store.clone(),
            stopped,
            self.on_change.clone(),
        ));
        self.loops.push(Loop {
            settings,
            target,
            stop,
            task,
        });
    }

    /// Stops every loop (a scrape in flight is abandoned) and waits for them to end.
    pub async fn stop(self) {
        for l in &self.loops {
            let _ = l.stop.send(true);
        }
        for l in self.loops {
            let _ = l.task.await;
        }
    }
}

fn now_since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// How long to wait for the first scrape so that a target scrapes at the same offset within
/// its interval every time the process starts: Prometheus's `offset` from the target's hash.
pub fn first_scrape_delay(labels_hash: u64, interval: Duration, now: Duration) -> Duration {
    let interval_ns = interval.as_nanos().max(1);
    let now_ns = now.as_nanos();
    let base = interval_ns - now_ns % interval_ns;
    let offset = (u128::from(labels_hash) % interval_ns + base) % interval_ns;
    Duration::from_nanos(offset as u64)
}

/// Holds a tradewatch exporter's long poll open and signals `changed` each time its change
/// counter moves, while the target's scrapes say it offers one ([`super::target::CHANGES_HEADER`]).
async fn follow_changes(target: Arc<Target>, changed: Arc<tokio::sync::Notify>) {
    // The first answer may report changes from before this process: one scrape too many.
    let mut seq = 0;
    loop {
        if !target.has_changes() {
            // Looked at again soon: the first scrape that sees the header starts the poll.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        match target.wait_for_change(seq).await {
            Ok(Some(now)) => {
                if now > seq {
                    changed.notify_one();
                }
                seq = now;
            }
            // Offered, then not: an older exporter behind the same address; look again later.
            Ok(None) | Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

async fn run(
    target: Arc<Target>,
    store: Arc<Store>,
    mut stopped: watch::Receiver<bool>,
    on_change: Option<OnChange>,
) {
    let changed = Arc::new(tokio::sync::Notify::new());
    let follower = on_change
        .is_some()
        .then(|| tokio::spawn(follow_changes(target.clone(), changed.clone())));
    run_loop(&target, &store, &mut stopped, &changed, on_change.as_ref()).await;
    if let Some(f) = follower {
        f.abort();
    }
}

async fn run_loop(
    target: &Target,
    store: &Store,
    stopped: &mut watch::Receiver<bool>,
    changed: &tokio::sync::Notify,
    on_change: Option<&OnChange>,
) {
    let interval = target.interval();
    let delay = first_scrape_delay(target.labels().hash64(), interval, now_since_epoch());
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + delay,
        interval.max(Duration::from_millis(1)),
    );
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let triggered = tokio::select! {
            _ = stopped.changed() => return,
            _ = ticker.tick() => false,
            _ = changed.notified() => true,
        };
        let now_ms = now_since_epoch().as_millis() as i64;
        tokio::select! {
            _ = stopped.changed() => return,
            _ = scrape_once(target, store, now_ms) => {}
        }
        if let (true, Some(on_change)) = (triggered, on_change) {
            on_change();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_scrape_offset_is_stable_within_the_interval() {
        let interval = Duration::from_secs(10);
        let hash = 123_456_789_u64;
        // The absolute time of the first scrape modulo the interval does not depend on when
        // the process starts.
        let phase = |now: Duration| {
            (now + first_scrape_delay(hash, interval, now)).as_nanos() % interval.as_nanos()
        };
        let a = phase(Duration::from_millis(1_000_000_123));
        let b = phase(Duration::from_millis(1_000_007_456));
        assert_eq!(a, b);
        assert_eq!(a, u128::from(hash) % interval.as_nanos());
        assert!(first_scrape_delay(hash, interval, Duration::from_secs(5)) < interval);
    }
}
