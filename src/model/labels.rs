//! Label sets: sorted name/value pairs including `__name__`, cheap to clone, hash and compare.
//!
//! Prometheus's label-set semantics: names are unique, pairs are kept sorted by name (byte
//! order), and a label with an empty value is the same as an absent label, so it is never stored.
//!
//! ```
//! use tradewatch::model::labels::Labels;
//!
//! let l = Labels::from_pairs([("job", "api"), ("__name__", "up"), ("zone", "")]);
//! assert_eq!(l.to_string(), r#"{__name__="up", job="api"}"#);
//! assert_eq!(l.metric_name(), Some("up"));
//! assert_eq!(l.get("zone"), None);
//! ```

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A fast, non-cryptographic 64-bit hasher (the Fx hash of rustc) for label-set maps inside the
/// process; not for data an attacker chooses the keys of and hashes are not stable across
/// versions.
#[derive(Debug, Clone, Copy, Default)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            self.add(head_word(rest));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// Builds [`FxHasher`]s for `HashMap`s keyed by labels or label hashes.
pub type FxBuildHasher = std::hash::BuildHasherDefault<FxHasher>;

/// A set of label names to keep, drop or hash by.
pub trait NameFilter {
    /// Whether `name` is in the set.
    fn contains(&self, name: &str) -> bool;
}

impl<T: AsRef<str>> NameFilter for [T] {
    fn contains(&self, name: &str) -> bool {
        self.iter().any(|n| same_name(n.as_ref(), name))
    }
}

impl<T: AsRef<str>, const N: usize> NameFilter for [T; N] {
    fn contains(&self, name: &str) -> bool {
        self.iter().any(|n| same_name(n.as_ref(), name))
    }
}

/// The first `min(len, 8)` bytes of `b` as a zero-padded little-endian word, read without a
/// `memcpy` call.
#[inline]
fn head_word(b: &[u8]) -> u64 {
    if let Some(eight) = b.first_chunk::<8>() {
        return u64::from_le_bytes(*eight);
    }
    let (mut word, mut shift, mut rest) = (0u64, 0, b);
    if let Some((four, tail)) = rest.split_first_chunk::<4>() {
        word = u64::from(u32::from_le_bytes(*four));
        shift = 32;
        rest = tail;
    }
    if let Some((two, tail)) = rest.split_first_chunk::<2>() {
        word |= u64::from(u16::from_le_bytes(*two)) << shift;
        shift += 16;
        rest = tail;
    }
    if let Some(&b) = rest.first() {
        word |= u64::from(b) << shift;
    }
    word
}

/// Whether two label names are equal: names are short, so up to 16 bytes are compared as two
/// words inline rather than through a `memcmp` call.
#[inline]
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    match a.len() {
        0..=8 => head_word(a) == head_word(b),
        9..=16 => {
            // The first eight bytes and the last eight (overlapping when shorter than 16).
            let tail = a.len() - 8;
            head_word(a) == head_word(b) && head_word(&a[tail..]) == head_word(&b[tail..])
        }
        _ => a == b,
    }
}

/// Label names with a mask of their lengths, so that most names that are not in the set are
/// told apart without comparing bytes (grouping keys of `sum by (…)` and vector matching).
#[derive(Debug, Clone, Default)]
pub struct NameSet {
    names: Vec<String>,
    /// Bit `n` (n < 63) is set when some name is `n` bytes long; bit 63 stands for longer ones.
    lengths: u64,
    /// Bit `b % 64` is set when some name starts with byte `b`.
    firsts: u64,
}

impl NameSet {
    /// The set of `names`.
    pub fn new(names: Vec<String>) -> NameSet {
        let mut set = NameSet {
            names: Vec::with_capacity(names.len()),
            lengths: 0,
            firsts: 0,
        };
        for n in names {
            set.push(n);
        }
        set
    }

    fn bit(len: usize) -> u64 {
        1 << len.min(63)
    }

    fn first_bit(name: &str) -> u64 {
        name.as_bytes().first().map_or(0, |b| 1 << (b % 64))
    }

    /// The names, in the order given.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Adds a name.
    pub fn push(&mut self, name: String) {
        self.lengths |= Self::bit(name.len());
        self.firsts |= Self::first_bit(&name);
        self.names.push(name);
    }
}

impl NameSet {
    /// Where `name` is in the set (the order given), if it is.
    #[inline]
    pub fn position(&self, name: &str) -> Option<usize> {
        if self.lengths & Self::bit(name.len()) == 0
            || (!name.is_empty() && self.firsts & Self::first_bit(name) == 0)
        {
            return None;
        }
        self.names.iter().position(|n| same_name(n, name))
    }
}

impl NameFilter for NameSet {
    #[inline]
    fn contains(&self, name: &str) -> bool {
        self.position(name).is_some()
    }
}

/// The label that holds a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label: a name and a non-empty value.
#[derive(Debug, Clone, Eq, PartialOrd, Ord)]
pub struct Label {
    /// The label's name.
    pub name: Arc<str>,
    /// The label's value (never empty inside a [`Labels`]).
    pub value: Arc<str>,
}

impl PartialEq for Label {
    /// Equal names and values; strings that are one allocation are equal without reading them
    /// (the standard library compares an `Arc<str>`'s bytes even then).
    fn eq(&self, other: &Label) -> bool {
        let same = |a: &Arc<str>, b: &Arc<str>| Arc::ptr_eq(a, b) || **a == **b;
        same(&self.name, &other.name) && same(&self.value, &other.value)
    }
}

impl std::hash::Hash for Label {
    /// The name's and the value's bytes, as equality compares them.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.value.hash(state);
    }
}

/// A sorted, immutable label set. Cloning is one reference-count increment; the set's hash is
/// computed once, when it is built, so maps keyed by label sets (the store's series, the
/// series a rule wrote) do not read the strings again.
#[derive(Clone)]
pub struct Labels {
    set: Arc<[Label]>,
    /// [`content_hash`] of `set`.
    hash: u64,
}

/// A 64-bit hash of the labels' names and values.
fn content_hash(set: &[Label]) -> u64 {
    let mut h = FxHasher::default();
    for l in set {
        h.write(l.name.as_bytes());
        h.write_u8(0xff);
        h.write(l.value.as_bytes());
        h.write_u8(0xff);
    }
    h.finish()
}

impl PartialEq for Labels {
    fn eq(&self, other: &Labels) -> bool {
        self.hash == other.hash && (Arc::ptr_eq(&self.set, &other.set) || self.set == other.set)
    }
}

impl Eq for Labels {}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Labels) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Labels {
    /// By the labels in name order, as Prometheus sorts label sets.
    fn cmp(&self, other: &Labels) -> std::cmp::Ordering {
        self.set.cmp(&other.set)
    }
}

impl Hash for Labels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl Default for Labels {
    fn default() -> Self {
        Self::empty()
    }
}

impl Labels {
    fn new(set: Arc<[Label]>) -> Labels {
        let hash = content_hash(&set);
        Labels { set, hash }
    }

    /// The empty label set.
    pub fn empty() -> Self {
        Labels::new(Arc::from(Vec::new()))
    }

    /// Builds a label set from pairs in any order; empty values are dropped and, when a name
    /// repeats, the last value wins.
    pub fn from_pairs<N: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut b = LabelsBuilder::default();
        for (n, v) in pairs {
            b.set(n.as_ref(), v.as_ref());
        }
        b.build()
    }

    /// The labels in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.set.iter()
    }

    /// How many labels there are.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether there is no label.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        if self.set.len() <= 16 {
            // Few labels: names of another length are passed over without reading them.
            return self
                .set
                .iter()
                .find(|l| same_name(&l.name, name))
                .map(|l| &*l.value);
        }
        self.set
            .binary_search_by(|l| (*l.name).cmp(name))
            .ok()
            .map(|i| &*self.set[i].value)
    }

    /// The value of `name`, or `""` when absent (Prometheus's reading of a missing label).
    pub fn get_or_empty(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        // Sorted, `__name__` is first unless a name starting with a capital letter precedes it.
        match self.set.first() {
            Some(l) if &*l.name == METRIC_NAME => Some(&l.value),
            Some(l) if *l.name > *METRIC_NAME => None,
            Some(_) => self.get(METRIC_NAME),
            None => None,
        }
    }

    /// The same set without `__name__`.
    pub fn without_metric_name(&self) -> Labels {
        if self.metric_name().is_none() {
            return self.clone();
        }
        Labels::new(
            self.set
                .iter()
                .filter(|l| &*l.name != METRIC_NAME)
                .cloned()
                .collect(),
        )
    }

    /// The same set with every label replaced by `share(label)`, an equal label (with interned
    /// strings, say); the set itself when every label comes back with the strings it had.
    pub fn with_shared_strings(&self, mut share: impl FnMut(&Label) -> Label) -> Labels {
        let mut changed = false;
        let shared: Vec<Label> = self
            .set
            .iter()
            .map(|l| {
                let s = share(l);
                debug_assert!(s == *l, "shared labels are equal");
                changed |= !Arc::ptr_eq(&s.name, &l.name) || !Arc::ptr_eq(&s.value, &l.value);
                s
            })
            .collect();
        if changed {
            // The same names and values: the same hash.
            Labels {
                set: shared.into(),
                hash: self.hash,
            }
        } else {
            self.clone()
        }
    }

    /// Whether both sets are the same allocation (so equal without comparing).
    pub fn ptr_eq(a: &Labels, b: &Labels) -> bool {
        Arc::ptr_eq(&a.set, &b.set)
    }

    /// A builder starting from this set.
    pub fn builder(&self) -> LabelsBuilder {
        // Room for the few labels builders usually add (alert and rule labels).
        let mut labels = Vec::with_capacity(self.set.len() + 4);
        labels.extend_from_slice(&self.set);
        LabelsBuilder { labels }
    }

    /// Only the labels whose names are in `names`.
    pub fn keep(&self, names: &(impl NameFilter + ?Sized)) -> Labels {
        Labels::new(
            self.set
                .iter()
                .filter(|l| names.contains(&l.name))
                .cloned()
                .collect(),
        )
    }

    /// The labels whose names are not in `names`.
    pub fn drop_names(&self, names: &(impl NameFilter + ?Sized)) -> Labels {
        Labels::new(
            self.set
                .iter()
                .filter(|l| !names.contains(&l.name))
                .cloned()
                .collect(),
        )
    }

    /// A 64-bit hash of the whole set.
    pub fn hash64(&self) -> u64 {
        self.hash
    }

    /// A 64-bit hash of the labels named in `names` only (absent ones count as empty). A name
    /// is hashed as its place in `names`, so hashes compare only for the same `names`.
    pub fn hash_for(&self, names: &NameSet) -> u64 {
        let mut h = FxHasher::default();
        for l in self.set.iter() {
            if let Some(i) = names.position(&l.name) {
                h.add(i as u64);
                h.write(l.value.as_bytes());
                h.write_u8(0xff);
            }
        }
        h.finish()
    }

    /// A 64-bit hash of the labels not named in `names` (`__name__` included unless named).
    pub fn hash_excluding(&self, names: &(impl NameFilter + ?Sized)) -> u64 {
        let mut h = FxHasher::default();
        for l in self.set.iter() {
            if !names.contains(&l.name) {
                h.write(l.name.as_bytes());
                h.write_u8(0xff);
                h.write(l.value.as_bytes());
                h.write_u8(0xff);
            }
        }
        h.finish()
    }

    /// A 64-bit hash of the labels not named in `names`, always leaving out `__name__`.
    pub fn hash_without(&self, names: &(impl NameFilter + ?Sized)) -> u64 {
        let mut h = FxHasher::default();
        for l in self.set.iter() {
            if !same_name(&l.name, METRIC_NAME) && !names.contains(&l.name) {
                h.write(l.name.as_bytes());
                h.write_u8(0xff);
                h.write(l.value.as_bytes());
                h.write_u8(0xff);
            }
        }
        h.finish()
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.set.iter()
    }
}

/// Writes `s` as Go's `strconv.Quote` would for the characters that occur in label values.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '"' => f.write_str("\\\"")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\x{:02x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

impl fmt::Display for Labels {
    /// Prometheus's `Labels.String()`: `{__name__="up", job="api"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.set.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&l.name)?;
            f.write_str("=")?;
            write_quoted(f, &l.value)?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Builds a [`Labels`] by setting and deleting labels; keeps the pairs sorted as it goes.
#[derive(Debug, Clone, Default)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    /// Sets `name` to `value`; an empty value deletes the label.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        if value.is_empty() {
            return self.del(name);
        }
        match self.labels.binary_search_by(|l| (*l.name).cmp(name)) {
            Ok(i) => {
                if &*self.labels[i].value != value {
                    self.labels[i].value = Arc::from(value);
                }
            }
            Err(i) => self.labels.insert(
                i,
                Label {
                    name: Arc::from(name),
                    value: Arc::from(value),
                },
            ),
        }
        self
    }

    /// Sets a label reusing already shared strings.
    pub fn set_label(&mut self, label: Label) -> &mut Self {
        if label.value.is_empty() {
            return self.del(&label.name);
        }
        match self.labels.binary_search_by(|l| l.name.cmp(&label.name)) {
            Ok(i) => self.labels[i] = label,
            Err(i) => self.labels.insert(i, label),
        }
        self
    }

    /// Deletes `name` if present.
    pub fn del(&mut self, name: &str) -> &mut Self {
        if let Ok(i) = self.labels.binary_search_by(|l| (*l.name).cmp(name)) {
            self.labels.remove(i);
        }
        self
    }

    /// The current value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|l| (*l.name).cmp(name))
            .ok()
            .map(|i| &*self.labels[i].value)
    }

    /// The finished label set.
    pub fn build(&self) -> Labels {
        Labels::new(self.labels.iter().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn sorted_unique_without_empty_values() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("b", "3"), ("c", "")]);
        let names: Vec<&str> = l.iter().map(|l| &*l.name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get_or_empty("c"), "");
    }

    #[test]
    fn equality_and_hash_ignore_construction_order() {
        let a = Labels::from_pairs([("x", "1"), ("y", "2")]);
        let b = Labels::from_pairs([("y", "2"), ("x", "1")]);
        assert_eq!(a, b);
        assert_eq!(a.hash64(), b.hash64());
        let set: HashSet<Labels> = [a.clone(), b].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert_ne!(a, Labels::from_pairs([("x", "1")]));
    }

    #[test]
    fn display_escapes() {
        let l = Labels::from_pairs([("__name__", "m"), ("a", "q\"\\\n")]);
        assert_eq!(l.to_string(), r#"{__name__="m", a="q\"\\\n"}"#);
        assert_eq!(Labels::empty().to_string(), "{}");
    }

    #[test]
    fn signatures() {
        let a = Labels::from_pairs([("__name__", "a"), ("job", "x"), ("i", "1")]);
        let b = Labels::from_pairs([("__name__", "b"), ("job", "x"), ("i", "2")]);
        let set = |names: &[&str]| NameSet::new(names.iter().map(|n| n.to_string()).collect());
        assert_eq!(a.hash_for(&set(&["job"])), b.hash_for(&set(&["job"])));
        assert_ne!(a.hash_for(&set(&["i"])), b.hash_for(&set(&["i"])));
        // The same value under another name of the set is another group.
        let le = Labels::from_pairs([("le", "1"), ("x", "0")]);
        let venue = Labels::from_pairs([("venue", "1"), ("x", "0")]);
        let both = set(&["le", "venue"]);
        assert_ne!(le.hash_for(&both), venue.hash_for(&both));
        assert_eq!(
            Labels::from_pairs([("le", "1"), ("venue", "2"), ("a", "3")]).hash_for(&both),
            Labels::from_pairs([("venue", "2"), ("le", "1")]).hash_for(&both)
        );
        assert_eq!(a.hash_without(&["i"]), b.hash_without(&["i"]));
        assert_eq!(a.without_metric_name().metric_name(), None);
        assert_eq!(a.keep(&["job"]).len(), 1);
        assert_eq!(a.drop_names(&["job"]).len(), 2);
    }

    #[test]
    fn names_compare_as_strings() {
        let names = [
            "",
            "a",
            "b",
            "le",
            "el",
            "job",
            "venue",
            "venux",
            "strategy",
            "strategz",
            "instance",
            "instancf",
            "__name__",
            "a_longer_name",
            "a_longer_namf",
            "b_longer_name",
            "exactly_sixteen_",
            "exactly_sixteen-",
            "a_name_of_twenty_one",
            "a_name_of_twenty_onf",
        ];
        for a in names {
            for b in names {
                assert_eq!(same_name(a, b), a == b, "{a:?} vs {b:?}");
            }
        }
        let set = NameSet::new(vec!["venue".into(), "le".into()]);
        assert_eq!(set.position("le"), Some(1));
        assert_eq!(set.position("venue"), Some(0));
        assert_eq!(set.position("venux"), None);
        assert_eq!(set.position(""), None);
    }

    #[test]
    fn builder() {
        let a = Labels::from_pairs([("a", "1")]);
        let mut b = a.builder();
        b.set("c", "3").set("b", "2").del("a").set("c", "");
        assert_eq!(b.build(), Labels::from_pairs([("b", "2")]));
    }
}
