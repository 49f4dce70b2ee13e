//! Alerts: identity (Alertmanager's fingerprint), the pure state machine of
//! [`state::evaluate`], its persistence in `state.db` ([`persist`]) and the alert log ([`log`]).
//!
//! ```
//! use std::time::Duration;
//! use tradewatch::alerts::{AlertState, Observation, evaluate};
//!
//! let hold = Duration::from_secs(60);
//! let first = evaluate(None, Observation::Active { value: 1.0 }, 0, hold, Duration::ZERO);
//! assert_eq!(first.alert.as_ref().unwrap().state, AlertState::Pending);
//! let later = evaluate(first.alert.as_ref(), Observation::Active { value: 2.0 }, 60_000, hold, Duration::ZERO);
//! assert_eq!(later.alert.unwrap().state, AlertState::Firing);
//! ```

pub mod forward;
pub mod log;
pub mod persist;
pub mod state;

pub use state::{
    Alert, AlertState, Observation, RESOLVED_RETENTION, Step, Transition, evaluate, restore,
};

use crate::model::labels::Labels;

/// FNV-1a 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// The byte Prometheus and Alertmanager put after each label name and value.
const SEPARATOR: u8 = 0xff;

/// An alert's identity as Alertmanager computes it (`model.LabelSet.Fingerprint`): 64-bit FNV-1a
/// over the label names in sorted order, each name and each value followed by `0xff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint(pub u64);

impl Fingerprint {
    /// The fingerprint of a label set given as (name, value) pairs, in any order.
    pub fn of_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Fingerprint {
        let mut sorted: Vec<(&str, &str)> = pairs.into_iter().collect();
        sorted.sort_unstable();
        Fingerprint::of_sorted(sorted)
    }

    /// The fingerprint of a label set.
    pub fn of(labels: &Labels) -> Fingerprint {
        // A label set is already in name order: no copy to sort.
        Fingerprint::of_sorted(labels.iter().map(|l| (&*l.name, &*l.value)))
    }

    /// FNV-1a over `name, 0xff, value, 0xff` of pairs in name order.
    fn of_sorted<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Fingerprint {
        let mut hash = FNV_OFFSET;
        let mut add = |bytes: &[u8]| {
            for &b in bytes {
                hash ^= u64::from(b);
                hash = hash.wrapping_mul(FNV_PRIME);
            }
        };
        for (name, value) in pairs {
            add(name.as_bytes());
            add(&[SEPARATOR]);
            add(value.as_bytes());
            add(&[SEPARATOR]);
        }
        Fingerprint(hash)
    }
}

impl std::fmt::Display for Fingerprint {
    /// 16 lowercase hex digits, as amtool and Grafana show it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}
