//! Acknowledgement (DESIGN §3): someone says they are on it. An acknowledged firing alert is
//! not repeated at `repeat_interval` and does not escalate; the ack belongs to one firing
//! episode (the alert's start), so it is gone once the alert resolves and a new firing
//! notifies again. A group is acknowledged by acknowledging each alert firing in it.
//!
//! Pure: the dispatcher holds the acks and asks [`Acks::covers`]; the notifier persists them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::types::Alert;
use crate::alerts::Fingerprint;

/// Why an acknowledgement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// The fingerprint is not 16 hex digits.
    #[error("fingerprint {0:?} is not 16 hexadecimal digits")]
    BadFingerprint(String),
    /// No firing alert has this fingerprint.
    #[error("no firing alert has fingerprint {0}")]
    UnknownAlert(String),
    /// No group has this key, or none of its alerts fires.
    #[error("no group with key {0:?} has a firing alert")]
    UnknownGroup(String),
    /// The author is empty.
    #[error("author must not be empty")]
    NoAuthor,
}

/// One acknowledgement of one alert's firing episode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The alert's fingerprint, 16 hex digits.
    pub fingerprint: String,
    /// The alert's labels when it was acknowledged.
    pub labels: BTreeMap<String, String>,
    /// The group key, when the ack was given for a whole group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_key: Option<String>,
    /// Who acknowledged.
    pub author: String,
    /// Why, or what is being done.
    pub comment: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The start of the firing episode acknowledged.
    pub starts_at: DateTime<Utc>,
}

impl Ack {
    /// The ack of `alert`'s current firing episode.
    pub fn of(
        alert: &Alert,
        group_key: Option<&str>,
        author: &str,
        comment: &str,
        at: DateTime<Utc>,
    ) -> Result<Ack, AckError> {
        if author.trim().is_empty() {
            return Err(AckError::NoAuthor);
        }
        Ok(Ack {
            fingerprint: alert.fingerprint().to_string(),
            labels: alert.labels.clone(),
            group_key: group_key.map(str::to_owned),
            author: author.to_owned(),
            comment: comment.to_owned(),
            at,
            starts_at: alert.starts_at,
        })
    }
}

/// Parses a fingerprint as the API shows it (16 hex digits).
pub fn parse_fingerprint(text: &str) -> Result<Fingerprint, AckError> {
    if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AckError::BadFingerprint(text.to_owned()));
    }
    u64::from_str_radix(text, 16)
        .map(Fingerprint)
        .map_err(|_| AckError::BadFingerprint(text.to_owned()))
}

/// The acknowledgements in force, by fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acks {
    by_fingerprint: BTreeMap<Fingerprint, Ack>,
}

impl Acks {
    /// Records an ack (replacing an earlier one of the same alert).
    pub fn insert(&mut self, ack: Ack) {
        if let Ok(fp) = parse_fingerprint(&ack.fingerprint) {
            self.by_fingerprint.insert(fp, ack);
        }
    }

    /// Whether `alert`'s current firing episode is acknowledged.
    pub fn covers(&self, alert: &Alert) -> bool {
        self.by_fingerprint
            .get(&alert.fingerprint())
            .is_some_and(|ack| ack.starts_at == alert.starts_at)
    }

    /// The ack of a fingerprint, if any.
    pub fn get(&self, fp: Fingerprint) -> Option<&Ack> {
        self.by_fingerprint.get(&fp)
    }

    /// Every ack, by fingerprint.
    pub fn iter(&self) -> impl Iterator<Item = &Ack> {
        self.by_fingerprint.values()
    }

    /// How many acks there are.
    pub fn len(&self) -> usize {
        self.by_fingerprint.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.by_fingerprint.is_empty()
    }

    /// Drops the acks whose episode is over at `now`: the alert is gone, resolved, or firing
    /// again with a later start. Gives the fingerprints dropped.
    pub fn retain_current(
        &mut self,
        alerts: &BTreeMap<Fingerprint, Alert>,
        now: DateTime<Utc>,
    ) -> Vec<Fingerprint> {
        let mut dropped = Vec::new();
        self.by_fingerprint.retain(|fp, ack| {
            let keep = alerts
                .get(fp)
                .is_some_and(|a| !a.resolved_at(now) && a.starts_at == ack.starts_at);
            if !keep {
                dropped.push(*fp);
            }
            keep
        });
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(start: i64, end: i64) -> Alert {
        let t = |s| DateTime::from_timestamp(s, 0).unwrap();
        Alert {
            labels: [("alertname".to_owned(), "A".to_owned())].into(),
            annotations: BTreeMap::new(),
            starts_at: t(start),
            ends_at: t(end),
            updated_at: t(start),
            generator_url: String::new(),
            timeout: false,
        }
    }

    #[test]
    fn fingerprints_parse_as_shown() {
        let a = alert(0, 100);
        assert_eq!(
            parse_fingerprint(&a.fingerprint().to_string()),
            Ok(a.fingerprint())
        );
        assert!(matches!(
            parse_fingerprint("xyz"),
            Err(AckError::BadFingerprint(_))
        ));
        assert!(parse_fingerprint("+123456789abcdef").is_err());
    }

    #[test]
    fn an_ack_covers_one_episode_until_it_ends() {
        let now = DateTime::from_timestamp(50, 0).unwrap();
        let firing = alert(0, 100);
        let mut acks = Acks::default();
        acks.insert(Ack::of(&firing, None, "ann", "on it", now).unwrap());
        assert!(acks.covers(&firing));
        assert!(
            !acks.covers(&alert(60, 100)),
            "a later episode is not acked"
        );
        let mut store = BTreeMap::from([(firing.fingerprint(), firing.clone())]);
        assert!(acks.retain_current(&store, now).is_empty());
        store.insert(firing.fingerprint(), alert(0, 40));
        assert_eq!(acks.retain_current(&store, now), [firing.fingerprint()]);
        assert!(acks.is_empty());
        assert_eq!(
            Ack::of(&firing, None, " ", "", now),
            Err(AckError::NoAuthor)
        );
    }
}
