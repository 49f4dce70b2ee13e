//! The simulated trading engine of `tradewatch demo`: a seeded session of two engines and three
//! strategies that sends every event type, plays scripted incidents (kill switch, breaker, loss
//! limit, lost heartbeat, API error burst, connectivity loss) and keeps a few model files
//! fresh, or lets one go stale, for a file-freshness collector.
//!
//! [`scenario::Scenario`] is the pure generator (time is a parameter); [`driver::run`] plays it
//! against an exporter's `POST /api/v1/events` in real time, or faster.
//!
//! ```
//! use tradewatch::demo::scenario::{Scenario, Settings};
//! use tradewatch::demo::timeline::KILL_SWITCH_ENGAGED;
//!
//! let settings = Settings { seed: 1, epoch: 1_767_225_600.0, speed: 1.0, run: "r1".into() };
//! let events = Scenario::new(settings).events_until(KILL_SWITCH_ENGAGED);
//! let engaged = events.iter().any(|e| e["type"] == "kill_switch" && e["active"] == true);
//! assert!(engaged);
//! ```

pub mod driver;
mod rng;
pub mod scenario;
pub mod stack;
pub mod timeline;

pub use driver::{DemoError, DriverConfig, Summary, run};
pub use rng::Rng;
