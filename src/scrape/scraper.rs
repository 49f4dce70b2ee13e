//! The scrape loop: one tokio task per target, each scraping on its interval at a stable offset
//! within it (as Prometheus spreads its targets), until stopped.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::target::{ScrapeError, Target, scrape_once};
use crate::config::ScrapeConfig;
use crate::store::Store;
use crate::telemetry::Telemetry;

/// Called after a scrape that a target's change (its long poll) triggered, so the rules that
/// read it can evaluate at once.
pub type OnChange = Arc<dyn Fn() + Send + Sync>;

/// The running scrape loops of every configured target.
#[derive(Debug)]
pub struct Scraper {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
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
        let mut targets = Vec::with_capacity(config.targets.len());
        for t in &config.targets {
            let mut target = Target::new(t, config)?;
            if let Some(f) = &filter {
                target = target.with_filter(f.clone());
            }
            targets.push(match &telemetry {
                Some(telemetry) => target.with_telemetry(telemetry.clone()),
                None => target,
            });
        }
        Ok(Scraper::spawn_with(targets, store, on_change))
    }

    /// Starts one loop per already built target.
    pub fn spawn(targets: Vec<Target>, store: Arc<Store>) -> Scraper {
        Scraper::spawn_with(targets, store, None)
    }

    fn spawn_with(targets: Vec<Target>, store: Arc<Store>, on_change: Option<OnChange>) -> Scraper {
        let (stop, stopped) = watch::channel(false);
        let tasks = targets
            .into_iter()
            .map(|target| {
                tokio::spawn(run(
                    Arc::new(target),
                    store.clone(),
                    stopped.clone(),
                    on_change.clone(),
                ))
            })
            .collect();
        Scraper { stop, tasks }
    }

    /// Stops every loop (a scrape in flight is abandoned) and waits for them to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
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
