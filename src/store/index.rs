//! The inverted index: for each label name and value, the sorted ids of the series that carry it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use crate::model::labels::{Label, Labels};

use super::matcher::{MatchKind, Matcher};

/// Label → postings (series ids in ascending order).
#[derive(Debug, Default)]
pub(crate) struct Postings {
    by_name: HashMap<Arc<str>, HashMap<Arc<str>, Vec<u32>>>,
}

impl Postings {
    /// Records that series `id` (larger than every id added before) carries `labels`.
    pub(crate) fn add(&mut self, id: u32, labels: &Labels) {
        for l in labels {
            self.by_name
                .entry(l.name.clone())
                .or_default()
                .entry(l.value.clone())
                .or_default()
                .push(id);
        }
    }

    /// `label` with the index's copies of its name and value, where the index has them: a new
    /// series' label set then shares its strings with the series already held.
    pub(crate) fn shared(&self, label: &Label) -> Label {
        let Some((name, values)) = self.by_name.get_key_value(&*label.name) else {
            return label.clone();
        };
        let value = values
            .get_key_value(&*label.value)
            .map_or_else(|| label.value.clone(), |(v, _)| v.clone());
        Label {
            name: name.clone(),
            value,
        }
    }

    /// Forgets the ids for which `dead` is true.
    pub(crate) fn retain(&mut self, live: impl Fn(u32) -> bool) {
        for values in self.by_name.values_mut() {
            for ids in values.values_mut() {
                ids.retain(|&id| live(id));
            }
            values.retain(|_, ids| !ids.is_empty());
        }
        self.by_name.retain(|_, values| !values.is_empty());
    }

    /// The distinct values of `name`.
    pub(crate) fn values(&self, name: &str) -> Vec<&str> {
        self.by_name
            .get(name)
            .map(|v| v.keys().map(|k| &**k).collect())
            .unwrap_or_default()
    }

    /// The label names in use.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.by_name.keys().map(|k| &**k).collect()
    }

    /// The series a matcher that rejects the empty value selects, or `None` when the matcher
    /// accepts the empty value (it cannot narrow the candidates through postings then).
    /// Borrowed from the index where one list answers it.
    pub(crate) fn for_matcher(&self, m: &Matcher) -> Option<Cow<'_, [u32]>> {
        if m.matches_empty() {
            return None;
        }
        let Some(values) = self.by_name.get(m.name.as_str()) else {
            return Some(Cow::Borrowed(&[]));
        };
        if m.kind == MatchKind::Equal {
            return Some(Cow::Borrowed(
                values.get(m.value.as_str()).map_or(&[][..], |ids| &ids[..]),
            ));
        }
        let lists: Vec<&Vec<u32>> = values
            .iter()
            .filter(|(v, _)| m.matches(v))
            .map(|(_, ids)| ids)
            .collect();
        Some(union(&lists))
    }
}

/// The sorted union of sorted lists.
fn union<'a>(lists: &[&'a Vec<u32>]) -> Cow<'a, [u32]> {
    Cow::Owned(match lists {
        [] => return Cow::Borrowed(&[]),
        [one] => return Cow::Borrowed(&one[..]),
        _ => {
            let mut all: Vec<u32> = lists.iter().flat_map(|l| l.iter().copied()).collect();
            all.sort_unstable();
            all.dedup();
            all
        }
    })
}

/// The sorted intersection of two sorted lists.
pub(crate) fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    let mut j = 0;
    for &x in small {
        // Gallop through the larger list.
        let rest = &large[j..];
        let k = rest.partition_point(|&y| y < x);
        j += k;
        if j < large.len() && large[j] == x {
            out.push(x);
            j += 1;
        }
        if j >= large.len() {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersects() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[3, 4, 5, 8]), vec![3, 5]);
        assert_eq!(intersect(&[], &[1]), Vec::<u32>::new());
        assert_eq!(*union(&[&vec![1, 4], &vec![2, 4]]), [1, 2, 4]);
    }
}
