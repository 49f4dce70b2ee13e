//! Metric and label name syntax, as Prometheus validates it (legacy, pre-UTF-8 names).

/// Whether `name` is a valid Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// Whether `name` is a valid Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Appends `value` to `out` escaped as a label value in both exposition formats:
/// backslash, double quote and line feed.
pub fn escape_label_value(value: &str, out: &mut String) {
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends the inside of a label block, `a="x",b="y"`, for the pairs whose value is present.
pub fn render_labels<'a>(
    pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    out: &mut String,
) {
    let mut first = true;
    for (name, value) in pairs {
        let Some(value) = value else { continue };
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        escape_label_value(value, out);
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names() {
        for ok in ["a", "_a", "a:b", "trading_orders_total", ":x"] {
            assert!(is_valid_metric_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a b", "é"] {
            assert!(!is_valid_metric_name(bad), "{bad}");
        }
    }

    #[test]
    fn label_names() {
        assert!(is_valid_label_name("engine"));
        assert!(is_valid_label_name("__name__"));
        assert!(!is_valid_label_name("a:b"));
        assert!(!is_valid_label_name("9"));
    }

    #[test]
    fn renders_and_escapes() {
        let mut out = String::new();
        render_labels(
            [("a", Some("x")), ("b", None), ("c", Some("q\"\\\n"))],
            &mut out,
        );
        assert_eq!(out, r#"a="x",c="q\"\\\n""#);
    }

    fn unescape(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some(c) => out.push(c),
                    None => panic!("dangling escape"),
                }
            } else {
                assert!(c != '"' && c != '\n', "unescaped {c:?} in {s:?}");
                out.push(c);
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn escaping_round_trips(value in ".*") {
            let mut out = String::new();
            escape_label_value(&value, &mut out);
            proptest::prop_assert_eq!(unescape(&out), value);
        }
    }
}
