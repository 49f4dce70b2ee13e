//! Alertmanager's label matchers (`pkg/labels`): `a="b"`, `a!="b"`, `a=~"re"`, `a!~"re"`, the
//! value quoted or bare, lists in braces; printed, sorted and matched as Alertmanager does.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// Why a matcher could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    /// Not `name op value`.
    #[error("bad matcher format: {0}")]
    Format(String),
    /// A `"` inside the value that is not escaped, or a missing closing quote.
    #[error("matcher value contains unescaped double quote: {0}")]
    UnescapedQuote(String),
    /// The regex does not compile.
    #[error("error parsing regexp {pattern:?}: {message}")]
    Regex {
        /// The regex as written.
        pattern: String,
        /// The regex engine's complaint.
        message: String,
    },
}

/// One label matcher. An absent label reads as the empty string.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The label name.
    pub name: String,
    /// The operator.
    pub op: MatchOp,
    /// The value, or the regex as written (without Alertmanager's anchors).
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl PartialOrd for Matcher {
    fn partial_cmp(&self, other: &Matcher) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Matcher {
    /// Alertmanager's `Matchers.Less`: by name, then value, then operator.
    fn cmp(&self, other: &Matcher) -> Ordering {
        self.name
            .cmp(&other.name)
            .then_with(|| self.value.cmp(&other.value))
            .then_with(|| self.op.cmp(&other.op))
    }
}

impl Matcher {
    /// A matcher; a regex is compiled anchored, `^(?:value)$`, with Go's meaning of `\d`, `\w`,
    /// `\s` and `\b` (ASCII).
    pub fn new(op: MatchOp, name: &str, value: &str) -> Result<Matcher, MatcherError> {
        let re = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(compile_anchored(value)?),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Matcher {
            name: name.to_owned(),
            op,
            value: value.to_owned(),
            re,
        })
    }

    /// Parses one matcher as Alertmanager's `labels.ParseMatcher` does: a label name, an
    /// operator, and a value that may be quoted (with `\"`, `\n` and `\\` escapes); whitespace
    /// around each part is dropped.
    pub fn parse(s: &str) -> Result<Matcher, MatcherError> {
        let (name, op, raw) = split_matcher(s).ok_or_else(|| MatcherError::Format(s.to_owned()))?;
        let value = unescape_value(raw)?;
        Matcher::new(op, name, &value)
    }

    /// Whether a label value (`""` for an absent label) matches.
    pub fn matches_value(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => self.value == value,
            MatchOp::NotEqual => self.value != value,
            MatchOp::Regex => self.re.as_ref().is_some_and(|re| re.is_match(value)),
            MatchOp::NotRegex => !self.re.as_ref().is_some_and(|re| re.is_match(value)),
        }
    }

    /// Whether the label set satisfies this matcher.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_value(labels.get(&self.name).map_or("", String::as_str))
    }

    /// The regex as Alertmanager's `Regexp.String()` prints it for `match_re` entries:
    /// `^(?:value)$`.
    pub fn anchored(op: MatchOp, name: &str, pattern: &str) -> Result<Matcher, MatcherError> {
        compile_anchored(pattern)?;
        Matcher::new(op, name, &format!("^(?:{pattern})$"))
    }
}

impl fmt::Display for Matcher {
    /// `name="value"` with OpenMetrics escaping, as Alertmanager prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"", self.name, self.op.as_str())?;
        for c in self.value.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '"' => f.write_str("\\\"")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

impl Serialize for Matcher {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Matcher, D::Error> {
        let text = String::deserialize(deserializer)?;
        Matcher::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A list of matchers, all of which must match; kept sorted as Alertmanager keeps route and
/// inhibition matchers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Matchers(pub Vec<Matcher>);

impl Matchers {
    /// The matchers, sorted.
    pub fn sorted(mut matchers: Vec<Matcher>) -> Matchers {
        matchers.sort();
        Matchers(matchers)
    }

    /// Whether every matcher matches the label set (true when there are none).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|m| m.matches(labels))
    }

    /// Whether there are no matchers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many matchers.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Display for Matchers {
    /// `{a="b",c=~"d"}`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str("}")
    }
}

/// Parses a comma-separated list as Alertmanager's `labels.ParseMatchers` does: optional
/// braces, commas inside quotes kept, a trailing comma allowed.
pub fn parse_matchers(s: &str) -> Result<Vec<Matcher>, MatcherError> {
    let s = s.strip_prefix('{').unwrap_or(s);
    let s = s.strip_suffix('}').unwrap_or(s);
    let mut tokens = Vec::new();
    let mut token = String::new();
    let (mut inside_quotes, mut escaped) = (false, false);
    for c in s.chars() {
        match c {
            ',' if !inside_quotes => {
                tokens.push(std::mem::take(&mut token));
                continue;
            }
            ',' => {}
            '"' => {
                if escaped {
                    escaped = false;
                } else {
                    inside_quotes = !inside_quotes;
                }
            }
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        token.push(c);
    }
    let last = token.trim();
    if !last.is_empty() {
        tokens.push(last.to_owned());
    }
    tokens.iter().map(|t| Matcher::parse(t)).collect()
}

/// Go's `\s`: `[\t\n\f\r ]`.
fn is_go_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// Splits `name op value` as the regex `^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*(.*?)\s*$`
/// does.
fn split_matcher(s: &str) -> Option<(&str, MatchOp, &str)> {
    let s = s.trim_start_matches(is_go_space);
    let name_len = s
        .char_indices()
        .take_while(|&(i, c)| {
            c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
        })
        .count();
    if name_len == 0 {
        return None;
    }
    let (name, rest) = s.split_at(name_len);
    let rest = rest.trim_start_matches(is_go_space);
    let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
        (MatchOp::Regex, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (MatchOp::Equal, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (MatchOp::NotEqual, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (MatchOp::NotRegex, r)
    } else {
        return None;
    };
    Some((
        name,
        op,
        rest.trim_start_matches(is_go_space)
            .trim_end_matches(is_go_space),
    ))
}

/// Unquotes a matcher value: an optional surrounding pair of `"`, with `\"`, `\n` and `\\`
/// escapes; any other backslash is literal.
fn unescape_value(raw: &str) -> Result<String, MatcherError> {
    let (body, mut expect_quote) = match raw.strip_prefix('"') {
        Some(body) => (body, true),
        None => (raw, false),
    };
    let mut value = String::with_capacity(body.len());
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if escaped {
            escaped = false;
            match c {
                'n' => value.push('\n'),
                '"' | '\\' => value.push(c),
                c => {
                    value.push('\\');
                    value.push(c);
                }
            }
            continue;
        }
        let last = i + c.len_utf8() == body.len();
        match c {
            '\\' if !last => escaped = true,
            '\\' => value.push('\\'),
            '"' => {
                if !expect_quote || !last {
                    return Err(MatcherError::UnescapedQuote(raw.to_owned()));
                }
                expect_quote = false;
            }
            c => value.push(c),
        }
    }
    if expect_quote {
        return Err(MatcherError::UnescapedQuote(raw.to_owned()));
    }
    Ok(value)
}

/// Compiles `^(?:pattern)$` with Go's regexp meaning.
pub(crate) fn compile_anchored(pattern: &str) -> Result<Regex, MatcherError> {
    if let Some(message) = go_syntax_problem(pattern) {
        return Err(MatcherError::Regex {
            pattern: pattern.to_owned(),
            message,
        });
    }
    let translated = go_to_rust_regex(pattern);
    Regex::new(&format!("^(?:{translated})$")).map_err(|e| MatcherError::Regex {
        pattern: pattern.to_owned(),
        message: e
            .to_string()
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .trim_start_matches("error: ")
            .to_owned(),
    })
}

/// A `{n}`, `{n,}` or `{n,m}` repetition at the start of `chars`: its bounds and length.
fn repeat_at(chars: &[char]) -> Option<(u64, Option<u64>, usize)> {
    let end = chars.iter().position(|&c| c == '}')?;
    let body: String = chars[1..end].iter().collect();
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().unwrap_or(u64::MAX))
    };
    let (min, max) = match body.split_once(',') {
        None => {
            let n = number(&body)?;
            (n, Some(n))
        }
        Some((a, "")) => (number(a)?, None),
        Some((a, b)) => (number(a)?, Some(number(b)?)),
    };
    Some((min, max, end + 1))
}

/// What Go's regexp parser (of the Go that built amtool 0.25) refuses and the `regex` crate
/// accepts: repeat counts over 1000, a repetition of a repetition, `(?<name>…)`.
fn go_syntax_problem(pattern: &str) -> Option<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let (mut i, mut in_class) = (0, false);
    // After a repetition operator: whether a lazy `?` may still follow.
    let (mut after_repeat, mut lazy_allowed) = (false, false);
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let e = chars.get(i + 1).copied().unwrap_or('\\');
            let octal_next = chars.get(i + 2).is_some_and(|d| ('0'..='7').contains(d));
            let valid = !e.is_ascii_alphanumeric()
                || "aftnrvxpPdDsSwWbBAzQ0".contains(e)
                || (('1'..='7').contains(&e) && octal_next);
            if !valid {
                return Some(format!("invalid escape sequence: `\\{e}`"));
            }
            i += 2;
            if e == 'Q' {
                while i < chars.len() && !(chars[i] == '\\' && chars.get(i + 1) == Some(&'E')) {
                    i += 1;
                }
                i += 2;
            }
            after_repeat = false;
            lazy_allowed = false;
            continue;
        }
        if in_class {
            if c == ']' {
                in_class = false;
                after_repeat = false;
            } else if c == '[' && chars.get(i + 1) == Some(&':') {
                let rest: String = chars[i + 2..].iter().collect();
                if let Some(end) = rest.find(":]") {
                    let name = rest[..end].trim_start_matches('^');
                    const POSIX: [&str; 14] = [
                        "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower",
                        "print", "punct", "space", "upper", "word", "xdigit",
                    ];
                    if !POSIX.contains(&name) {
                        return Some(format!(
                            "invalid character class range: `[:{}:]`",
                            &rest[..end]
                        ));
                    }
                    i += 2 + rest[..end].chars().count() + 2;
                    continue;
                }
            }
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    i += 1;
                }
                continue;
            }
            '(' if chars.get(i + 1) == Some(&'?')
                && chars.get(i + 2) == Some(&'<')
                && !matches!(chars.get(i + 3), Some('=' | '!')) =>
            {
                return Some("invalid or unsupported Perl syntax: `(?<`".to_owned());
            }
            '?' if lazy_allowed => {
                lazy_allowed = false;
            }
            '*' | '+' | '?' => {
                if after_repeat {
                    return Some("invalid nested repetition operator".to_owned());
                }
                after_repeat = true;
                lazy_allowed = true;
            }
            '{' => match repeat_at(&chars[i..]) {
                Some((min, max, len)) => {
                    if min > 1000 || max.is_some_and(|m| m > 1000) {
                        return Some("invalid repeat count".to_owned());
                    }
                    if after_repeat {
                        return Some("invalid nested repetition operator".to_owned());
                    }
                    after_repeat = true;
                    lazy_allowed = true;
                    i += len;
                    continue;
                }
                None => {
                    after_repeat = false;
                    lazy_allowed = false;
                }
            },
            _ => {
                after_repeat = false;
                lazy_allowed = false;
            }
        }
        i += 1;
    }
    None
}

/// Rewrites a Go (RE2) regex for the `regex` crate: Perl classes and `\b` are ASCII in Go,
/// `\Q…\E` quotes, and inside a class `[` and doubled `&`, `~`, `-` are literal.
fn go_to_rust_regex(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    let mut class_depth = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            let e = chars[i + 1];
            i += 2;
            if e == 'Q' {
                let mut literal = String::new();
                while i < chars.len() && !(chars[i] == '\\' && chars.get(i + 1) == Some(&'E')) {
                    literal.push(chars[i]);
                    i += 1;
                }
                i = (i + 2).min(chars.len().max(i));
                out.push_str(&regex::escape(&literal));
                continue;
            }
            // `\p{Greek}`, `\x{41}`: copied through the brace.
            if matches!(e, 'p' | 'P' | 'x') && chars.get(i) == Some(&'{') {
                let end = chars[i..]
                    .iter()
                    .position(|&c| c == '}')
                    .map_or(chars.len(), |p| i + p + 1);
                out.push('\\');
                out.push(e);
                out.extend(&chars[i..end]);
                i = end;
                continue;
            }
            // Go's octal escapes (`\0`, `\012`), which the regex crate does not read.
            if e.is_digit(8) {
                let mut value = e.to_digit(8).unwrap_or(0);
                let mut digits = 1;
                while digits < 3 && chars.get(i).is_some_and(|d| d.is_digit(8)) {
                    value = value * 8 + chars[i].to_digit(8).unwrap_or(0);
                    i += 1;
                    digits += 1;
                }
                out.push_str(&format!("\\x{{{value:x}}}"));
                continue;
            }
            if class_depth {
                match e {
                    'd' => out.push_str("0-9"),
                    'w' => out.push_str("0-9A-Za-z_"),
                    's' => out.push_str("\\t\\n\\x0C\\r "),
                    'D' => out.push_str("[^0-9]"),
                    'W' => out.push_str("[^0-9A-Za-z_]"),
                    'S' => out.push_str("[^\\t\\n\\x0C\\r ]"),
                    e => {
                        out.push('\\');
                        out.push(e);
                    }
                }
            } else if let Some(class) = match e {
                'd' => Some("[0-9]"),
                'D' => Some("[^0-9]"),
                'w' => Some("[0-9A-Za-z_]"),
                'W' => Some("[^0-9A-Za-z_]"),
                's' => Some("[\\t\\n\\x0C\\r ]"),
                'S' => Some("[^\\t\\n\\x0C\\r ]"),
                'b' => Some("(?-u:\\b)"),
                'B' => Some("(?-u:\\B)"),
                _ => None,
            } {
                out.push_str(class);
            } else {
                out.push('\\');
                out.push(e);
            }
            continue;
        }
        if class_depth {
            match c {
                ']' => {
                    class_depth = false;
                    out.push(']');
                }
                '[' if chars.get(i + 1) == Some(&':') => {
                    // A POSIX class `[:alpha:]`, copied through its `:]`.
                    let end = (i + 2..chars.len().saturating_sub(1))
                        .find(|&j| chars[j] == ':' && chars[j + 1] == ']');
                    match end {
                        Some(end) => {
                            out.extend(&chars[i..end + 2]);
                            i = end + 2;
                            continue;
                        }
                        None => out.push_str("\\["),
                    }
                }
                '[' => out.push_str("\\["),
                '&' | '~' | '-' if chars.get(i + 1) == Some(&c) => {
                    out.push('\\');
                    out.push(c);
                }
                c => out.push(c),
            }
            i += 1;
            continue;
        }
        if c == '[' {
            class_depth = true;
            out.push('[');
            i += 1;
            if chars.get(i) == Some(&'^') {
                out.push('^');
                i += 1;
            }
            // A `]` first in a class is literal.
            if chars.get(i) == Some(&']') {
                out.push_str("\\]");
                i += 1;
            }
            continue;
        }
        // Go reads a `{` that does not start a repetition as a literal.
        if c == '{' && repeat_at(&chars[i..]).is_none() {
            out.push_str("\\{");
            i += 1;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Go's `model.LabelSet.String()`: `{a="b", c="d"}`, names sorted, values quoted as Go's `%q`.
pub fn label_set_string(labels: &BTreeMap<String, String>) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name);
        out.push('=');
        out.push_str(&crate::template::printf::quote(value, false));
    }
    out.push('}');
    out
}

/// Whether `name` is a valid label name for Alertmanager 0.25 (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_valid_label_name(name: &str) -> bool {
    crate::model::names::is_valid_label_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_as_alertmanager() {
        let m = Matcher::parse(" a = \"b c\" ").unwrap();
        assert_eq!(
            (m.name.as_str(), m.op, m.value.as_str()),
            ("a", MatchOp::Equal, "b c")
        );
        let m = Matcher::parse("a=b=c").unwrap();
        assert_eq!(m.value, "b=c");
        let m = Matcher::parse("a==b").unwrap();
        assert_eq!(m.value, "=b");
        let m = Matcher::parse(r#"a="x\"y\n\\z\q""#).unwrap();
        assert_eq!(m.value, "x\"y\n\\z\\q");
        assert_eq!(m.to_string(), r#"a="x\"y\n\\z\\q""#);
        assert_eq!(Matcher::parse("a=").unwrap().value, "");
        assert_eq!(Matcher::parse("a=~b").unwrap().op, MatchOp::Regex);
        assert_eq!(
            Matcher::parse("a=b\"c").unwrap_err().to_string(),
            "matcher value contains unescaped double quote: b\"c"
        );
        assert_eq!(
            Matcher::parse("1a=b").unwrap_err().to_string(),
            "bad matcher format: 1a=b"
        );
        assert!(Matcher::parse("a=\"b").is_err());
        assert!(Matcher::parse("a=~\"(\"").is_err());
    }

    #[test]
    fn lists_in_braces() {
        let ms = parse_matchers(r#"{foo = "bar", dings != "bums", }"#).unwrap();
        assert_eq!(Matchers(ms).to_string(), r#"{foo="bar",dings!="bums"}"#);
        let ms = parse_matchers(r#"quote="a, \"b\"",x=~"5..""#).unwrap();
        assert_eq!(ms[0].value, "a, \"b\"");
        assert_eq!(ms[1].value, "5..");
    }

    #[test]
    fn matching_is_anchored_and_go_flavoured() {
        let l = labels(&[("a", "abc"), ("n", "٣")]);
        assert!(
            Matcher::parse("a=~b")
                .unwrap()
                .matches(&labels(&[("a", "b")]))
        );
        assert!(!Matcher::parse("a=~b").unwrap().matches(&l));
        assert!(Matcher::parse("a=~a.c").unwrap().matches(&l));
        assert!(Matcher::parse("missing=\"\"").unwrap().matches(&l));
        assert!(Matcher::parse("missing!~.+").unwrap().matches(&l));
        // Go's \d is ASCII only.
        assert!(!Matcher::parse("n=~\\d").unwrap().matches(&l));
        assert!(Matcher::parse("a=~[\\w]+").unwrap().matches(&l));
        assert!(Matcher::parse("a=~\"\\\\Qa.c\\\\E|x\"").is_ok());
        assert!(
            Matcher::parse("a=~[[]")
                .unwrap()
                .matches(&labels(&[("a", "[")]))
        );
        assert!(
            Matcher::parse("a=~[a&&b]+")
                .unwrap()
                .matches(&labels(&[("a", "a&b")]))
        );
    }

    #[test]
    fn sorted_by_name_value_then_op() {
        let ms = Matchers::sorted(vec![
            Matcher::parse("b=x").unwrap(),
            Matcher::parse("a!=y").unwrap(),
            Matcher::parse("a=y").unwrap(),
            Matcher::parse("a=x").unwrap(),
        ]);
        assert_eq!(ms.to_string(), r#"{a="x",a="y",a!="y",b="x"}"#);
    }

    proptest::proptest! {
        /// What Alertmanager prints, it reads back as the same matcher, whatever the value.
        #[test]
        fn printed_matchers_parse_back(
            name in "[a-zA-Z_][a-zA-Z0-9_]{0,6}",
            value in "(\\PC|[\\\\\"\n ,{}=~!]){0,12}",
            negative in proptest::bool::ANY,
        ) {
            let op = if negative { MatchOp::NotEqual } else { MatchOp::Equal };
            let m = Matcher::new(op, &name, &value).unwrap();
            let back = Matcher::parse(&m.to_string()).unwrap();
            proptest::prop_assert_eq!(&back, &m);
            let listed = parse_matchers(&Matchers(vec![m.clone(), m.clone()]).to_string()).unwrap();
            proptest::prop_assert_eq!(listed, vec![m.clone(), m]);
        }
    }

    #[test]
    fn label_sets_print_as_go() {
        assert_eq!(
            label_set_string(&labels(&[("b", "q\"\n"), ("a", "é")])),
            "{a=\"é\", b=\"q\\\"\\n\"}"
        );
    }
}
