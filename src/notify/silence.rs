//! Silences as Alertmanager keeps them (`silence/silence.go`): matchers over a time range with
//! a state (pending, active, expired) at any instant; an update that would rewrite history
//! (other matchers, an active silence's start moved, an end in the past) expires the old
//! silence and creates one with a new id. Time is a parameter; the state is serde data the
//! caller persists.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::matcher::Matcher;

/// Where a silence is in its life at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    /// Starts later.
    Pending,
    /// Mutes matching alerts now.
    Active,
    /// Ended.
    Expired,
}

impl SilenceState {
    /// `pending`, `active` or `expired`, as Alertmanager's API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

/// One silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// A UUID; empty in a silence not stored yet.
    pub id: String,
    /// All must match an alert's labels for it to be silenced.
    pub matchers: Vec<Matcher>,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Silence {
    /// The state at `now`: pending before the start, expired after the end, active between
    /// (both ends included).
    pub fn state(&self, now: DateTime<Utc>) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now > self.ends_at {
            SilenceState::Expired
        } else {
            SilenceState::Active
        }
    }

    /// Whether every matcher matches `labels`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }

    fn validate(&self) -> Result<(), SilenceError> {
        let invalid = |m: String| Err(SilenceError::Invalid(m));
        if self.matchers.is_empty() {
            return invalid("at least one matcher required".to_owned());
        }
        for (i, m) in self.matchers.iter().enumerate() {
            if !super::matcher::is_valid_label_name(&m.name) {
                return invalid(format!(
                    "invalid label matcher {i}: invalid label name {:?}",
                    m.name
                ));
            }
        }
        let matches_empty = |m: &Matcher| match m.op {
            super::matcher::MatchOp::Equal | super::matcher::MatchOp::Regex => m.matches_value(""),
            _ => false,
        };
        if self.matchers.iter().all(matches_empty) {
            return invalid("at least one matcher must not match the empty string".to_owned());
        }
        if self.ends_at < self.starts_at {
            return invalid("end time must not be before start time".to_owned());
        }
        Ok(())
    }
}

/// Why a silence could not be stored or expired.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    /// No silence has this id.
    #[error("silence {0} not found")]
    NotFound(String),
    /// The silence is not acceptable.
    #[error("invalid silence: {0}")]
    Invalid(String),
}

/// Every silence, expired ones until garbage-collected; serde data for persistence.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Silences {
    silences: BTreeMap<String, Silence>,
}

/// Whether `b` may replace `a` in place at `now` without rewriting history.
fn can_update(a: &Silence, b: &Silence, now: DateTime<Utc>) -> bool {
    if a.matchers != b.matchers {
        return false;
    }
    match a.state(now) {
        SilenceState::Active => {
            a.starts_at.timestamp() == b.starts_at.timestamp() && b.ends_at >= now
        }
        SilenceState::Pending => b.starts_at >= now,
        SilenceState::Expired => false,
    }
}

/// A random (version 4) UUID.
fn new_id() -> String {
    let mut b = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut b)
        .expect("the system's random source works");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl Silences {
    /// No silences.
    pub fn new() -> Silences {
        Silences::default()
    }

    /// Creates (empty id) or updates a silence, as Alertmanager's `Set`: an update that keeps
    /// history is made in place; otherwise the old silence is expired (unless it already is)
    /// and a new one is created with a new id. A new silence starting in the past starts
    /// `now`. Returns the id stored.
    pub fn set(
        &mut self,
        mut silence: Silence,
        now: DateTime<Utc>,
    ) -> Result<String, SilenceError> {
        silence.validate()?;
        let prev = if silence.id.is_empty() {
            None
        } else {
            Some(
                self.silences
                    .get(&silence.id)
                    .cloned()
                    .ok_or_else(|| SilenceError::NotFound(silence.id.clone()))?,
            )
        };
        if let Some(prev) = &prev
            && can_update(prev, &silence, now)
        {
            silence.updated_at = now;
            let id = silence.id.clone();
            self.silences.insert(id.clone(), silence);
            return Ok(id);
        }
        silence.id = new_id();
        if silence.starts_at < now {
            silence.starts_at = now;
        }
        silence.updated_at = now;
        if let Some(prev) = prev
            && prev.state(now) != SilenceState::Expired
        {
            self.expire(&prev.id, now)?;
        }
        let id = silence.id.clone();
        self.silences.insert(id.clone(), silence);
        Ok(id)
    }

    /// Ends a silence now: an active one ends `now`, a pending one starts and ends `now`; an
    /// expired one is left as it is.
    pub fn expire(&mut self, id: &str, now: DateTime<Utc>) -> Result<(), SilenceError> {
        let silence = self
            .silences
            .get_mut(id)
            .ok_or_else(|| SilenceError::NotFound(id.to_owned()))?;
        match silence.state(now) {
            SilenceState::Expired => return Ok(()),
            SilenceState::Active => silence.ends_at = now,
            SilenceState::Pending => {
                silence.starts_at = now;
                silence.ends_at = now;
            }
        }
        silence.updated_at = now;
        Ok(())
    }

    /// The silence with this id.
    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.silences.get(id)
    }

    /// Every silence, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Silence> {
        self.silences.values()
    }

    /// The silences matching `labels` that are in one of `states` at `now`.
    pub fn query(
        &self,
        labels: &BTreeMap<String, String>,
        states: &[SilenceState],
        now: DateTime<Utc>,
    ) -> Vec<&Silence> {
        self.silences
            .values()
            .filter(|s| states.contains(&s.state(now)) && s.matches(labels))
            .collect()
    }

    /// The ids of the active silences that mute `labels` at `now` (none: not silenced).
    pub fn silenced_by(
        &self,
        labels: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> BTreeSet<String> {
        self.query(labels, &[SilenceState::Active], now)
            .into_iter()
            .map(|s| s.id.clone())
            .collect()
    }

    /// Whether an active silence mutes `labels` at `now`.
    pub fn mutes(&self, labels: &BTreeMap<String, String>, now: DateTime<Utc>) -> bool {
        !self.silenced_by(labels, now).is_empty()
    }

    /// Drops silences that ended more than `retention` before `now`; returns how many.
    pub fn gc(&mut self, now: DateTime<Utc>, retention: chrono::Duration) -> usize {
        let before = self.silences.len();
        self.silences.retain(|_, s| s.ends_at + retention > now);
        before - self.silences.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn silence(matchers: &[&str], start: i64, end: i64) -> Silence {
        Silence {
            id: String::new(),
            matchers: matchers
                .iter()
                .map(|m| Matcher::parse(m).unwrap())
                .collect(),
            starts_at: t(start),
            ends_at: t(end),
            created_by: "desk".into(),
            comment: "maintenance".into(),
            updated_at: t(0),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn states_and_muting() {
        let mut s = Silences::new();
        let id = s.set(silence(&["strategy=carry"], 100, 200), t(0)).unwrap();
        assert_eq!(id.len(), 36);
        let l = labels(&[("strategy", "carry"), ("alertname", "X")]);
        assert_eq!(s.get(&id).unwrap().state(t(50)), SilenceState::Pending);
        assert!(!s.mutes(&l, t(50)));
        assert!(s.mutes(&l, t(100)));
        assert!(s.mutes(&l, t(200)));
        assert!(!s.mutes(&l, t(201)));
        assert!(!s.mutes(&labels(&[("strategy", "momentum")]), t(150)));
        assert_eq!(s.silenced_by(&l, t(150)), BTreeSet::from([id.clone()]));
    }

    #[test]
    fn updates_keep_or_replace_as_alertmanager_does() {
        let mut s = Silences::new();
        let id = s.set(silence(&["a=b"], -10, 100), t(0)).unwrap();
        // A new silence starting in the past starts now.
        assert_eq!(s.get(&id).unwrap().starts_at, t(0));
        // Extending an active silence keeps its id.
        let mut longer = s.get(&id).unwrap().clone();
        longer.ends_at = t(500);
        assert_eq!(s.set(longer, t(10)).unwrap(), id);
        assert_eq!(s.get(&id).unwrap().ends_at, t(500));
        assert_eq!(s.get(&id).unwrap().updated_at, t(10));
        // Changing the matchers of an active silence expires it and creates another.
        let mut changed = s.get(&id).unwrap().clone();
        changed.matchers = vec![Matcher::parse("a=c").unwrap()];
        let new_id = s.set(changed, t(20)).unwrap();
        assert_ne!(new_id, id);
        assert_eq!(s.get(&id).unwrap().ends_at, t(20));
        assert_eq!(s.get(&id).unwrap().state(t(21)), SilenceState::Expired);
        assert_eq!(s.get(&new_id).unwrap().starts_at, t(20));
        // Moving an active silence's start is not an update either.
        let mut moved = s.get(&new_id).unwrap().clone();
        moved.starts_at = t(30);
        let third = s.set(moved, t(40)).unwrap();
        assert_ne!(third, new_id);
        // A pending silence may move its start, still in the future.
        let pending = s.set(silence(&["x=y"], 1000, 2000), t(40)).unwrap();
        let mut later = s.get(&pending).unwrap().clone();
        later.starts_at = t(1500);
        assert_eq!(s.set(later, t(50)).unwrap(), pending);
        // Expiring a pending silence ends it at once; expiring twice is fine.
        s.expire(&pending, t(60)).unwrap();
        assert_eq!(s.get(&pending).unwrap().starts_at, t(60));
        s.expire(&pending, t(70)).unwrap();
        assert_eq!(
            s.expire("nope", t(70)).unwrap_err(),
            SilenceError::NotFound("nope".into())
        );
        let mut unknown = silence(&["a=b"], 0, 10);
        unknown.id = "missing".into();
        assert_eq!(
            s.set(unknown, t(0)).unwrap_err(),
            SilenceError::NotFound("missing".into())
        );
        // Garbage collection after the retention.
        assert_eq!(s.gc(t(100_000), chrono::Duration::hours(1)), 4);
        assert_eq!(s.iter().count(), 0);
    }

    #[test]
    fn invalid_silences_are_refused() {
        let mut s = Silences::new();
        assert_eq!(
            s.set(silence(&["a=~.*", "b=\"\""], 0, 10), t(0))
                .unwrap_err()
                .to_string(),
            "invalid silence: at least one matcher must not match the empty string"
        );
        assert_eq!(
            s.set(silence(&[], 0, 10), t(0)).unwrap_err().to_string(),
            "invalid silence: at least one matcher required"
        );
        assert_eq!(
            s.set(silence(&["a=b"], 10, 0), t(0))
                .unwrap_err()
                .to_string(),
            "invalid silence: end time must not be before start time"
        );
        // State round-trips through serde.
        let id = s.set(silence(&["a=\"q\\\"x\""], 0, 10), t(0)).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        let back: Silences = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        assert!(back.mutes(&labels(&[("a", "q\"x")]), t(5)));
        assert!(back.get(&id).is_some());
    }
}
