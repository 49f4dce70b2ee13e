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
        let mut targets = Vec::with_capacity(config.targets.len());
        for t in &config.targets {
            let target = Target::new(t, config)?;
            targets.push(match &telemetry {
                Some(telemetry) => target.with_telemetry(telemetry.clone()),
                None => target,
            });
        }
        Ok(Scraper::spawn(targets, store))
    }

    /// Starts one loop per already built target.
    pub fn spawn(targets: Vec<Target>, store: Arc<Store>) -> Scraper {
        let (stop, stopped) = watch::channel(false);
        let tasks = targets
            .into_iter()
            .map(|target| tokio::spawn(run(target, store.clone(), stopped.clone())))
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

async fn run(target: Target, store: Arc<Store>, mut stopped: watch::Receiver<bool>) {
    let interval = target.interval();
    let delay = first_scrape_delay(target.labels().hash64(), interval, now_since_epoch());
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + delay,
        interval.max(Duration::from_millis(1)),
    );
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            _ = ticker.tick() => {}
        }
        let now_ms = now_since_epoch().as_millis() as i64;
        tokio::select! {
            _ = stopped.changed() => return,
            _ = scrape_once(&target, &store, now_ms) => {}
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
