//! promtool's printing of unit-test failures: Go's label sets, `strconv.FormatFloat(v, 'E', -1,
//! 64)`, `time.Duration` strings, and the indented alert lists.

use std::fmt;

use crate::model::labels::Labels;
use crate::template::gotime::Duration as GoDuration;
use crate::template::printf::{format_float, quote};

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    quote(s, false)
}

/// A value as promtool prints it: `4E-01`, `1.5E+00`, `NaN`, `+Inf`.
pub fn go_float(v: f64) -> String {
    let mut out = String::new();
    format_float(&mut out, v, 'E', None);
    out
}

/// Milliseconds as Go's `time.Duration.String()`: `0s`, `1m30s`, `1h0m0s`.
pub fn go_duration(ms: i64) -> String {
    let mut out = String::new();
    GoDuration(ms.saturating_mul(1_000_000)).write_string(&mut out);
    out
}

/// Samples as promtool lists them: `{labels} value, …`, or `nil` for none.
pub fn samples_string(samples: &[(Labels, f64)]) -> String {
    if samples.is_empty() {
        return "nil".to_owned();
    }
    samples
        .iter()
        .map(|(labels, v)| format!("{labels} {}", go_float(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Annotations printed as a Go label set (empty values kept).
fn annotations_string(annotations: &[(String, String)]) -> String {
    let inner: Vec<String> = annotations
        .iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

/// Each line after the first prefixed with `indent`, as promtool's `indentLines`.
fn indent_lines(text: &str, indent: &str) -> String {
    text.split('\n')
        .enumerate()
        .map(|(i, line)| {
            if i > 0 {
                format!("{indent}{line}")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A list of alerts (labels, annotations) printed as promtool's `labelsAndAnnotations`, indented
/// for its place after `exp:` or `got:`.
pub struct AlertList<'a>(pub &'a [(Labels, Vec<(String, String)>)]);

impl fmt::Display for AlertList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("[]");
        }
        let mut s = String::from("[");
        for (i, (labels, annotations)) in self.0.iter().enumerate() {
            let one = format!(
                "\nLabels:{labels}\nAnnotations:{}",
                annotations_string(annotations)
            );
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!("\n{i}:{}", indent_lines(&one, "  ")));
        }
        s.push_str("\n]");
        f.write_str(&indent_lines(&s, "            "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_floats() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(90_000), "1m30s");
        assert_eq!(go_duration(3_600_000), "1h0m0s");
        assert_eq!(go_float(3.999999999999991e-1), "3.999999999999991E-01");
        assert_eq!(go_float(f64::NAN), "NaN");
        assert_eq!(go_float(-1e100), "-1E+100");
    }

    #[test]
    fn alert_lists() {
        let labels = Labels::from_pairs([("alertname", "A"), ("job", "x")]);
        let list = [(labels, vec![("summary".to_owned(), "s".to_owned())])];
        assert_eq!(
            AlertList(&list).to_string(),
            "[\n            0:\n              Labels:{alertname=\"A\", job=\"x\"}\n              \
             Annotations:{summary=\"s\"}\n            ]"
        );
        assert_eq!(AlertList(&[]).to_string(), "[]");
    }
}
