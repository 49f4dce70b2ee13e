//! The scripted incidents of the demo session: a table of named steps at fixed scenario times
//! (seconds since the engines started), so docs and tests can name them.
//!
//! Engine `alpha` trips a breaker, slides through its daily loss limit and engages its kill
//! switch in its first 30 seconds, then recovers; later it bursts API errors and loses its venue
//! connection for a while. Engine `beta` goes silent for [`HEARTBEAT_GAP`] seconds (no event at
//! all, so its heartbeat gauge stops moving) and comes back with a restart.

/// The engine of the kill switch, breaker, loss limit, API errors and connectivity steps.
pub const INCIDENT_ENGINE: &str = "alpha";
/// Its strategy whose losses breach the daily loss limit.
pub const LOSING_STRATEGY: &str = "momentum";
/// The breaker that trips.
pub const TRIPPED_BREAKER: &str = "max_order_rate";
/// The engine that goes silent.
pub const SILENT_ENGINE: &str = "beta";
/// The connection that flaps and then stays down.
pub const FLAPPING_TARGET: &str = "binance-ws";
/// The artifact file that is stale from the start (its retraining job died).
pub const STALE_ARTIFACT: &str = "models/mean_revert.json";

/// `alpha`'s `max_order_rate` breaker trips.
pub const BREAKER_TRIPPED: f64 = 8.0;
/// `momentum` starts losing fast.
pub const LOSS_SLIDE: f64 = 12.0;
/// `alpha`'s daily PnL (summed over its strategies, and `momentum`'s alone) is below minus its
/// daily loss limit from here until [`LOSS_RECOVERED`].
pub const LOSS_LIMIT_BREACHED: f64 = 20.0;
/// `alpha`'s kill switch engages (reason: the daily loss limit).
pub const KILL_SWITCH_ENGAGED: f64 = 22.0;
/// The breaker clears.
pub const BREAKER_CLEARED: f64 = 35.0;
/// `momentum` starts to win back.
pub const LOSS_RECOVERY: f64 = 40.0;
/// `alpha`'s daily PnL is back above minus the limit (and stays there).
pub const LOSS_RECOVERED: f64 = 45.0;
/// The kill switch is released.
pub const KILL_SWITCH_RELEASED: f64 = 50.0;
/// `beta` stops sending anything.
pub const HEARTBEAT_LOST: f64 = 60.0;
/// The heartbeat age past which the rule pack's `TradingEngineHeartbeatLost` fires
/// (`time() - trading_engine_heartbeat_timestamp_seconds > 60`).
pub const HEARTBEAT_ALERT_AFTER: f64 = 60.0;
/// How long `beta` stays silent: [`HEARTBEAT_ALERT_AFTER`] and 20 s more, so the alert fires
/// for a while whatever the scrape and evaluation intervals.
pub const HEARTBEAT_GAP: f64 = HEARTBEAT_ALERT_AFTER + 20.0;
/// `beta` is back, with an `engine_start`.
pub const HEARTBEAT_RESUMED: f64 = HEARTBEAT_LOST + HEARTBEAT_GAP;
/// `alpha`'s API calls start failing (429, 503, 500) at a high rate.
pub const API_ERROR_BURST: f64 = 70.0;
/// The burst ends.
pub const API_ERRORS_END: f64 = 85.0;
/// `alpha`'s `binance-ws` connection starts flapping (down and up every
/// [`FLAP_PERIOD`] seconds).
pub const CONNECTIVITY_FLAPPING: f64 = 75.0;
/// Half a flap: how long each down or up lasts while flapping.
pub const FLAP_PERIOD: f64 = 2.0;
/// The connection goes down and stays down.
pub const CONNECTIVITY_DOWN: f64 = 83.0;
/// The connection is back.
pub const CONNECTIVITY_RESTORED: f64 = 115.0;
/// Every incident is over: from here the session runs steady.
pub const ALL_CLEAR: f64 = 145.0;

/// The artifact age past which the rule pack's `TradingArtifactStale` fires
/// (`time() - trading_artifact_updated_timestamp_seconds > 90000`, 25 h).
pub const ARTIFACT_ALERT_AFTER: f64 = 90_000.0;
/// How many seconds before the session started the stale artifact was last written: two days,
/// well past [`ARTIFACT_ALERT_AFTER`].
pub const ARTIFACT_STALE_AGE: f64 = 2.0 * 86_400.0;

// The design's promises, checked when the crate compiles: the kill switch, the breaker and the
// loss limit within the first 30 seconds, a heartbeat gap long enough to alert.
const _: () = assert!(BREAKER_TRIPPED < 30.0 && LOSS_LIMIT_BREACHED < 30.0);
const _: () = assert!(KILL_SWITCH_ENGAGED < 30.0 && HEARTBEAT_GAP > HEARTBEAT_ALERT_AFTER);
const _: () = assert!(ARTIFACT_STALE_AGE > ARTIFACT_ALERT_AFTER);

/// One named step of the timeline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// Its name, in snake case.
    pub name: &'static str,
    /// When, in scenario seconds.
    pub at: f64,
    /// What happens, in words.
    pub what: &'static str,
}

/// Every step, in time order.
pub const TIMELINE: [Step; 16] = [
    Step {
        name: "engines_start",
        at: 0.0,
        what: "alpha and beta start: engine_start, limits, portfolio, connectivity; models/mean_revert.json is already two days old",
    },
    Step {
        name: "breaker_tripped",
        at: BREAKER_TRIPPED,
        what: "alpha's max_order_rate circuit breaker trips",
    },
    Step {
        name: "loss_slide",
        at: LOSS_SLIDE,
        what: "alpha/momentum starts losing fast",
    },
    Step {
        name: "loss_limit_breached",
        at: LOSS_LIMIT_BREACHED,
        what: "alpha's daily PnL is below minus its daily loss limit",
    },
    Step {
        name: "kill_switch_engaged",
        at: KILL_SWITCH_ENGAGED,
        what: "alpha's kill switch engages; alpha stops sending orders",
    },
    Step {
        name: "breaker_cleared",
        at: BREAKER_CLEARED,
        what: "alpha's breaker clears",
    },
    Step {
        name: "loss_recovery",
        at: LOSS_RECOVERY,
        what: "alpha/momentum starts winning back",
    },
    Step {
        name: "loss_recovered",
        at: LOSS_RECOVERED,
        what: "alpha's daily PnL is back above minus its limit",
    },
    Step {
        name: "kill_switch_released",
        at: KILL_SWITCH_RELEASED,
        what: "alpha's kill switch is released; trading resumes",
    },
    Step {
        name: "heartbeat_lost",
        at: HEARTBEAT_LOST,
        what: "beta stops sending anything",
    },
    Step {
        name: "api_error_burst",
        at: API_ERROR_BURST,
        what: "most of alpha's API calls fail with 429, 503 or 500",
    },
    Step {
        name: "connectivity_flapping",
        at: CONNECTIVITY_FLAPPING,
        what: "alpha's binance-ws goes down and up every 2 s",
    },
    Step {
        name: "connectivity_down",
        at: CONNECTIVITY_DOWN,
        what: "alpha's binance-ws stays down",
    },
    Step {
        name: "api_errors_end",
        at: API_ERRORS_END,
        what: "alpha's API calls succeed again",
    },
    Step {
        name: "connectivity_restored",
        at: CONNECTIVITY_RESTORED,
        what: "alpha's binance-ws is back up",
    },
    Step {
        name: "heartbeat_resumed",
        at: HEARTBEAT_RESUMED,
        what: "beta restarts (engine_start) and reports again",
    },
];

/// Whether the flapping target is up at `t`.
pub fn flapping_target_up(t: f64) -> bool {
    if t < CONNECTIVITY_FLAPPING {
        true
    } else if t < CONNECTIVITY_DOWN {
        // Down first, then up, each for FLAP_PERIOD.
        ((t - CONNECTIVITY_FLAPPING) / FLAP_PERIOD).floor() as i64 % 2 == 1
    } else {
        t >= CONNECTIVITY_RESTORED
    }
}

/// Whether `alpha`'s kill switch is engaged at `t`.
pub fn kill_switch_active(t: f64) -> bool {
    (KILL_SWITCH_ENGAGED..KILL_SWITCH_RELEASED).contains(&t)
}

/// Whether `alpha`'s breaker is tripped at `t`.
pub fn breaker_tripped(t: f64) -> bool {
    (BREAKER_TRIPPED..BREAKER_CLEARED).contains(&t)
}

/// Whether `beta` is silent at `t`.
pub fn silent(t: f64) -> bool {
    (HEARTBEAT_LOST..HEARTBEAT_RESUMED).contains(&t)
}

/// Whether `alpha`'s API calls are in their error burst at `t`.
pub fn api_error_burst(t: f64) -> bool {
    (API_ERROR_BURST..API_ERRORS_END).contains(&t)
}

/// The scripted part of `momentum`'s daily PnL at `t`, as a multiple of `alpha`'s daily loss
/// limit: 0, a slide to −1.25 reached at [`LOSS_LIMIT_BREACHED`], held until
/// [`LOSS_RECOVERY`], then a climb back to −0.5 reached at [`LOSS_RECOVERED`] and held.
pub fn scripted_loss(t: f64) -> f64 {
    const TROUGH: f64 = -1.25;
    const RECOVERED: f64 = -0.5;
    let ramp = |from: f64, to: f64, a: f64, b: f64| a + (b - a) * ((t - from) / (to - from));
    if t < LOSS_SLIDE {
        0.0
    } else if t < LOSS_LIMIT_BREACHED {
        ramp(LOSS_SLIDE, LOSS_LIMIT_BREACHED, 0.0, TROUGH)
    } else if t < LOSS_RECOVERY {
        TROUGH
    } else if t < LOSS_RECOVERED {
        ramp(LOSS_RECOVERY, LOSS_RECOVERED, TROUGH, RECOVERED)
    } else {
        RECOVERED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_in_order_and_named_once() {
        for pair in TIMELINE.windows(2) {
            assert!(pair[0].at <= pair[1].at, "{pair:?}");
        }
        let mut names: Vec<_> = TIMELINE.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TIMELINE.len());
        assert!(TIMELINE.iter().all(|s| s.at < ALL_CLEAR));
    }

    #[test]
    fn flapping() {
        assert!(flapping_target_up(CONNECTIVITY_FLAPPING - 0.1));
        assert!(!flapping_target_up(CONNECTIVITY_FLAPPING));
        assert!(flapping_target_up(CONNECTIVITY_FLAPPING + FLAP_PERIOD));
        assert!(!flapping_target_up(
            CONNECTIVITY_FLAPPING + 2.0 * FLAP_PERIOD
        ));
        assert!(!flapping_target_up(CONNECTIVITY_DOWN + 10.0));
        assert!(flapping_target_up(CONNECTIVITY_RESTORED));
    }

    #[test]
    fn loss_script() {
        assert_eq!(scripted_loss(LOSS_SLIDE - 0.1), 0.0);
        assert_eq!(scripted_loss(LOSS_LIMIT_BREACHED), -1.25);
        assert!((scripted_loss(LOSS_RECOVERED - 1e-9) + 0.5).abs() < 1e-6);
        assert_eq!(scripted_loss(1e6), -0.5);
    }
}
