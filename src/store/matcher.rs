//! Label matchers as Prometheus reads them: `=`, `!=`, `=~`, `!~`, with regexes anchored at both ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use regex::Regex;

use crate::model::labels::Labels;

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

/// A compiled label matcher. An absent label reads as the empty string, so `a=""` matches series
/// without `a` and `a!=""` only those that have it.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The label name.
    pub name: String,
    /// The operator.
    pub kind: MatchKind,
    /// The value or the regex's source as written.
    pub value: String,
    re: Option<Arc<Regex>>,
}

/// A regex that does not compile.
#[derive(Debug, thiserror::Error)]
#[error("invalid regular expression {source_text:?}: {message}")]
pub struct InvalidRegex {
    /// The regex as written.
    pub source_text: String,
    /// The regex crate's complaint.
    pub message: String,
}

/// Compiles `re` with Prometheus's anchoring: the whole value must match, and `.` also matches a
/// newline (Prometheus 3 compiles `^(?s:re)$`).
pub fn anchored_regex(re: &str) -> Result<Regex, InvalidRegex> {
    Regex::new(&format!("^(?s:{re})$")).map_err(|e| InvalidRegex {
        source_text: re.to_string(),
        message: e.to_string(),
    })
}

/// Most regexes [`shared_regex`] keeps; past this it starts afresh.
const REGEX_CACHE_LIMIT: usize = 4096;

/// [`anchored_regex`], compiled once per process for a given source: rules evaluate the same
/// selectors every few seconds, and one shared `Regex` also keeps the matching caches it has
/// built (a clone would start without them).
pub fn shared_regex(re: &str) -> Result<Arc<Regex>, InvalidRegex> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(r) = cache.lock().expect("regex cache lock").get(re) {
        return Ok(r.clone());
    }
    let compiled = Arc::new(anchored_regex(re)?);
    let mut cache = cache.lock().expect("regex cache lock");
    if cache.len() >= REGEX_CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(re.to_string(), compiled.clone());
    Ok(compiled)
}

impl Matcher {
    /// A matcher; regexes are compiled here.
    pub fn new(kind: MatchKind, name: &str, value: &str) -> Result<Self, InvalidRegex> {
        let re = match kind {
            MatchKind::Regex | MatchKind::NotRegex => Some(shared_regex(value)?),
            _ => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            kind,
            value: value.to_string(),
            re,
        })
    }

    /// `name="value"`.
    pub fn equal(name: &str, value: &str) -> Self {
        Matcher {
            name: name.to_string(),
            kind: MatchKind::Equal,
            value: value.to_string(),
            re: None,
        }
    }

    /// Whether a label value (`""` for absent) matches.
    pub fn matches(&self, v: &str) -> bool {
        match self.kind {
            MatchKind::Equal => self.value == v,
            MatchKind::NotEqual => self.value != v,
            MatchKind::Regex => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchKind::NotRegex => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Whether the matcher accepts a series that lacks the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// Whether a label set matches.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get_or_empty(&self.name))
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.kind {
            MatchKind::Equal => "=",
            MatchKind::NotEqual => "!=",
            MatchKind::Regex => "=~",
            MatchKind::NotRegex => "!~",
        };
        write!(f, "{}{}{:?}", self.name, op, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchoring_and_empty() {
        let m = Matcher::new(MatchKind::Regex, "a", "fo+").unwrap();
        assert!(m.matches("foo"));
        assert!(!m.matches("xfoo"));
        assert!(!m.matches("foox"));
        assert!(!m.matches_empty());
        let n = Matcher::new(MatchKind::NotRegex, "a", "fo+").unwrap();
        assert!(n.matches_empty());
        assert!(
            Matcher::new(MatchKind::Regex, "a", "a.b")
                .unwrap()
                .matches("a\nb")
        );
        assert!(Matcher::equal("a", "").matches_empty());
        assert!(Matcher::new(MatchKind::Regex, "a", "(").is_err());
    }
}
