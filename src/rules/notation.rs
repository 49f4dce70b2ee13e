//! Prometheus's series notation for test data, as `promtool test rules` reads `input_series` and
//! PromQL test scripts read `load` lines: a label set written as a selector with `=` only
//! (`up{job="a"}`, `{__name__="up"}`, `{}`), then values in the expanding notation
//! (`1+2x3` is `1 3 5 7`, `_` an omitted step, `stale` a staleness marker).
//!
//! ```
//! use tradewatch::rules::notation::{SeriesValue, parse_series_line};
//!
//! let line = parse_series_line(r#"up{job="a"} 1+1x2 _ stale"#).unwrap();
//! assert_eq!(line.labels.unwrap().get("job"), Some("a"));
//! assert_eq!(
//!     line.values,
//!     vec![
//!         SeriesValue::Value(1.0),
//!         SeriesValue::Value(2.0),
//!         SeriesValue::Value(3.0),
//!         SeriesValue::Omitted,
//!         SeriesValue::Stale,
//!     ]
//! );
//! ```

use promql_parser::label::MatchOp;
use promql_parser::parser::Expr;

use crate::model::labels::{Labels, METRIC_NAME};

/// One step of a series: a value, nothing, or a staleness marker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SeriesValue {
    /// A sample with this value.
    Value(f64),
    /// No sample at this step (`_`).
    Omitted,
    /// A staleness marker (`stale`).
    Stale,
}

/// A series line: its labels (`None` when the line is a bare value, as a scalar) and its values
/// from step 0 on.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesLine {
    /// The labels, `__name__` included.
    pub labels: Option<Labels>,
    /// The values, one per step.
    pub values: Vec<SeriesValue>,
    /// Whether the values are native histograms (`{{…}}`), which are not expanded.
    pub native: bool,
}

/// Why a series or its values do not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotationError {
    /// A value token that is neither a number, `_`, `stale` nor an expansion.
    #[error("invalid value {0:?}: want a number, _, stale, or a+bxn")]
    Value(String),
    /// A label set that is not `name{label="value", …}`.
    #[error("invalid series {series:?}: {reason}")]
    Labels {
        /// The text as written.
        series: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A number as the notation writes it: decimal, `0x` hex, `Inf`, `NaN`, signed.
fn parse_number(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        "nan" | "+nan" | "-nan" => Some(f64::NAN),
        _ => {
            if let Some(hex) = s.strip_prefix("0x") {
                return i64::from_str_radix(hex, 16).ok().map(|v| v as f64);
            }
            s.parse().ok()
        }
    }
}

/// Expands one token: `_`, `stale`, a number, or `a+bxn` / `a-bxn` / `axn` (n+1 values), `_xn`
/// (n omitted steps).
fn expand_token(tok: &str, out: &mut Vec<SeriesValue>) -> Option<()> {
    match tok {
        "_" => {
            out.push(SeriesValue::Omitted);
            return Some(());
        }
        "stale" => {
            out.push(SeriesValue::Stale);
            return Some(());
        }
        _ => {}
    }
    let Some(x) = tok.rfind('x') else {
        out.push(SeriesValue::Value(parse_number(tok)?));
        return Some(());
    };
    let times: usize = tok[x + 1..].parse().ok()?;
    let head = &tok[..x];
    match head {
        "_" => {
            out.extend(std::iter::repeat_n(SeriesValue::Omitted, times));
            return Some(());
        }
        "stale" => {
            out.extend(std::iter::repeat_n(SeriesValue::Stale, times));
            return Some(());
        }
        _ => {}
    }
    let bytes = head.as_bytes();
    let split = (1..bytes.len())
        .find(|&i| (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E'));
    let (start, step) = match split {
        Some(i) => {
            let a = parse_number(&head[..i])?;
            let b = parse_number(&head[i + 1..])?;
            (a, if bytes[i] == b'-' { -b } else { b })
        }
        None => (parse_number(head)?, 0.0),
    };
    let mut v = start;
    for _ in 0..=times {
        out.push(SeriesValue::Value(v));
        v += step;
    }
    Some(())
}

/// Expands a whitespace-separated list of values.
pub fn expand_values(text: &str) -> Result<Vec<SeriesValue>, NotationError> {
    let mut out = Vec::new();
    for tok in text.split_whitespace() {
        expand_token(tok, &mut out).ok_or_else(|| NotationError::Value(tok.to_owned()))?;
    }
    Ok(out)
}

/// A PromQL parse error as Prometheus words it: `line:col: parse error: message`.
pub fn parse_error_message(e: &crate::promql::ParseError) -> String {
    e.prometheus_text()
}

/// The labels of a series written as a selector with `=` matchers only: `name`,
/// `name{a="b"}`, `{__name__="x", a="b"}`, or `{}` (no labels). Empty text is `{}` too, as
/// promtool reads an `exp_samples` entry without `labels`.
pub fn parse_series_labels(text: &str) -> Result<Labels, NotationError> {
    let trimmed = text.trim();
    let compact: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() || compact == "{}" {
        return Ok(Labels::empty());
    }
    let fail = |reason: String| NotationError::Labels {
        series: text.to_owned(),
        reason,
    };
    let expr = crate::promql::parse(trimmed).map_err(|e| fail(parse_error_message(&e)))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(fail("not a metric name and label set".to_owned()));
    };
    if vs.offset.is_some() || vs.at.is_some() || !vs.matchers.or_matchers.is_empty() {
        return Err(fail("not a metric name and label set".to_owned()));
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(name) = vs.name {
        pairs.push((METRIC_NAME.into(), name));
    }
    for m in vs.matchers.matchers {
        if !matches!(m.op, MatchOp::Equal) {
            return Err(fail(format!(
                "unexpected {} in label set, expected \"=\"",
                m.op
            )));
        }
        if pairs.iter().any(|(name, _)| *name == m.name) {
            return Err(fail(format!("label {:?} given twice", m.name)));
        }
        pairs.push((m.name, m.value));
    }
    Ok(Labels::from_pairs(pairs))
}

/// Index of the end of the series part of a line: the first whitespace outside braces and
/// quotes.
fn series_end(line: &str) -> usize {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '{' => depth += 1,
            '}' => depth -= 1,
            c if c.is_whitespace() && depth == 0 => return i,
            _ => {}
        }
    }
    line.len()
}

/// Parses a whole series line: the series, then its values. A line that is one value and no
/// label set (`5`, `1+1x3`) has `labels` `None`.
pub fn parse_series_line(line: &str) -> Result<SeriesLine, NotationError> {
    let line = line.trim();
    let native = line.contains("{{");
    let end = series_end(line);
    let head = &line[..end];
    let rest = line[end..].trim();
    let mut values = Vec::new();
    if rest.is_empty() && !head.starts_with('{') && expand_token(head, &mut values).is_some() {
        return Ok(SeriesLine {
            labels: None,
            values,
            native,
        });
    }
    let labels = parse_series_labels(head)?;
    let values = if native {
        Vec::new()
    } else {
        expand_values(rest)?
    };
    Ok(SeriesLine {
        labels: Some(labels),
        values,
        native,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<SeriesValue> {
        expand_values(text).unwrap()
    }

    #[test]
    fn expansions() {
        use SeriesValue::{Omitted, Stale, Value};
        assert_eq!(
            values("-2+4x3"),
            vec![Value(-2.0), Value(2.0), Value(6.0), Value(10.0)]
        );
        assert_eq!(values("1-2x2"), vec![Value(1.0), Value(-1.0), Value(-3.0)]);
        assert_eq!(values("3x1"), vec![Value(3.0), Value(3.0)]);
        assert_eq!(values("_x2 stale"), vec![Omitted, Omitted, Stale]);
        assert_eq!(values("1e3+1e2x1"), vec![Value(1000.0), Value(1100.0)]);
        // As promtool reads it: zero, repeated (not hexadecimal 2).
        assert_eq!(values("0x2"), vec![Value(0.0); 3]);
        assert!(matches!(values("Inf")[0], Value(v) if v == f64::INFINITY));
        assert!(expand_values("1+x").is_err());
        assert!(expand_values("abc").is_err());
    }

    #[test]
    fn label_sets() {
        let l = parse_series_labels(r#"up{job="a", instance="b"}"#).unwrap();
        assert_eq!(l.metric_name(), Some("up"));
        assert_eq!(l.get("instance"), Some("b"));
        assert_eq!(parse_series_labels("{ }").unwrap(), Labels::empty());
        assert_eq!(parse_series_labels("").unwrap(), Labels::empty());
        let e = parse_series_labels(r#"up{a=~"b"}"#).unwrap_err();
        assert!(e.to_string().contains("expected \"=\""), "{e}");
        assert!(parse_series_labels("sum(up)").is_err());
        assert!(parse_series_labels("up[5m]").is_err());
    }

    proptest::proptest! {
        /// `a+bxn` and `a-bxn` expand to the n+1 terms of the progression, as promtool's
        /// series notation does, whatever the numbers.
        #[test]
        fn expansions_are_progressions(a in -1e6f64..1e6, b in 0f64..1e3, n in 0usize..50, minus: bool) {
            let text = format!("{a}{}{b}x{n}", if minus { '-' } else { '+' });
            let got = expand_values(&text).unwrap();
            proptest::prop_assert_eq!(got.len(), n + 1);
            let step = if minus { -b } else { b };
            let mut want = a;
            for v in got {
                proptest::prop_assert_eq!(v, SeriesValue::Value(want));
                want += step;
            }
        }

        /// A label set printed as promtool prints it parses back to itself (names prefixed so
        /// that none is a PromQL keyword, which promtool refuses too).
        #[test]
        fn label_sets_round_trip(
            name in "m_[a-zA-Z0-9_:]{0,8}",
            labels in proptest::collection::btree_map("l_[a-z0-9_]{0,6}", "[ -~]{1,8}", 0..4),
        ) {
            let mut pairs: Vec<(String, String)> = labels.into_iter().collect();
            pairs.push(("__name__".to_owned(), name));
            let want = Labels::from_pairs(pairs);
            let text = want.to_string();
            proptest::prop_assert_eq!(parse_series_labels(&text), Ok(want));
        }
    }

    #[test]
    fn lines() {
        let line = parse_series_line("5").unwrap();
        assert_eq!(line.labels, None);
        let line = parse_series_line(r#"x{a="b c"}   1 2"#).unwrap();
        assert_eq!(line.labels.unwrap().get("a"), Some("b c"));
        assert_eq!(line.values.len(), 2);
        let line = parse_series_line("h {{schema:0 sum:1}}").unwrap();
        assert!(line.native && line.values.is_empty());
    }
}
