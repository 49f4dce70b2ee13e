//! Property tests: no template text, data or format string makes the template engine panic or
//! run away; every execution ends, within its step and output bounds.

use proptest::prelude::*;
use tradewatch::template::alertmanager::{Data, NotificationTemplates};
use tradewatch::template::printf::sprintf;
use tradewatch::template::prometheus::{AlertData, Expansion, RuleTemplate};
use tradewatch::template::{Funcs, Limits, MissingKey, Templates, Time, Value};

/// Pieces templates are made of, so random texts reach deep into the parser and executor.
const PIECES: &[&str] = &[
    "{{",
    "}}",
    "{{-",
    "-}}",
    " ",
    "\n",
    ".",
    ".a",
    ".b.c",
    "$",
    "$x",
    ":=",
    "=",
    "|",
    "(",
    ")",
    ",",
    "if",
    "else",
    "end",
    "range",
    "with",
    "define",
    "template",
    "block",
    "break",
    "continue",
    "\"t\"",
    "\"x\"",
    "`r`",
    "'c'",
    "1",
    "-2.5",
    "0x1F",
    "1e3",
    "nil",
    "true",
    "and",
    "or",
    "not",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "html",
    "js",
    "urlquery",
    "call",
    "\"%d %s %v %5.2f %[2]q %!\"",
    "/*",
    "*/",
    "text",
    "<a href=\"",
    "\">",
];

/// Pieces of HTML documents around actions, so random texts reach every context the HTML
/// escaper tracks: tags, attributes of each kind, scripts, styles, strings, regexps, comments.
const HTML_PIECES: &[&str] = &[
    "{{.a}}",
    "{{.b}}",
    "{{if .a}}",
    "{{else}}",
    "{{end}}",
    "{{range .b}}",
    "{{break}}",
    "{{continue}}",
    "{{with .a}}",
    "{{template \"d\" .}}",
    "{{define \"d\"}}",
    "{{.a | html}}",
    "{{urlquery .a}}",
    "<a ",
    "<p>",
    "<script>",
    "</script>",
    "<style>",
    "</style>",
    "<title>",
    "<script type=\"text/template\">",
    "href=",
    "onclick=",
    "style=",
    "srcset=",
    "title=",
    "=",
    "\"",
    "'",
    "`",
    ">",
    "<",
    "</",
    "/",
    "/*",
    "*/",
    "//",
    "<!--",
    "-->",
    "\\",
    "[",
    "]",
    "(",
    ")",
    "url(",
    "?",
    "#",
    "&quot;",
    "&#39;",
    "x",
    " ",
    "\n",
    "\u{2028}",
    "+",
    "return",
];

fn template_text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..60).prop_map(|v| v.concat())
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        "[a-c]{0,3}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-c]", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn limits() -> Limits {
    Limits {
        max_output: 4096,
        max_steps: 5_000,
    }
}

proptest! {
    #[test]
    fn any_template_parses_or_fails_cleanly_and_executes_bounded(text in template_text(), data in json_value()) {
        for (missing, html) in [(MissingKey::Invalid, false), (MissingKey::Zero, true)] {
            let mut set = Templates::new(Funcs::default()).missing_key(missing).limits(limits());
            if html {
                set = set.html();
            }
            if set.parse("t", &text).is_ok() {
                let mut out = String::new();
                let _ = set.execute_into(&mut out, "t", &Value::from_json(&data), None);
                prop_assert!(out.len() <= limits().max_output);
            }
        }
    }

    #[test]
    fn any_html_template_escapes_or_fails_cleanly(
        pieces in prop::collection::vec(prop::sample::select(HTML_PIECES), 0..40),
        data in json_value(),
    ) {
        let text = pieces.concat();
        let mut set = Templates::new(Funcs::default()).limits(limits()).html();
        if set.parse("t", &text).is_ok() {
            let mut out = String::new();
            let _ = set.execute_into(&mut out, "t", &Value::from_json(&data), None);
            prop_assert!(out.len() <= limits().max_output);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(text in "\\PC{0,80}") {
        let mut set = Templates::new(Funcs::default()).limits(limits());
        if set.parse("t", &text).is_ok() {
            let _ = set.execute("t", &Value::Nil);
        }
    }

    #[test]
    fn printf_never_panics(format in "[%#0+\\- .*\\[\\]0-9a-zA-Z!]{0,24}", n in any::<i64>(), f in any::<f64>(), s in "\\PC{0,8}") {
        let _ = sprintf(&format, &[Value::Int(n), Value::Float(f), Value::from(s), Value::Nil]);
    }

    #[test]
    fn time_layouts_never_panic(layout in "[0-9A-Za-z_:.,\\- ]{0,30}", secs in -100_000_000_000i64..100_000_000_000, nanos in 0u32..1_000_000_000) {
        let _ = Time::utc(secs, nanos).format(&layout);
    }

    #[test]
    fn rule_templates_never_panic(text in template_text(), value in any::<f64>()) {
        let labels = [("a".to_string(), "1".to_string())].into_iter().collect();
        let data = AlertData::new(&labels, &labels, "http://x", value);
        let _ = RuleTemplate::new("A", &text).expand_or_error(&data, &Expansion::default());
    }

    #[test]
    fn notification_templates_never_panic(text in template_text()) {
        let t = NotificationTemplates::new();
        let data = Data::new("r", Default::default(), vec![], "http://x");
        let _ = t.execute_text(&text, &data);
        let _ = t.execute_html(&text, &data);
    }
}
