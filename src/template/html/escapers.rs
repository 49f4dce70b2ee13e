//! The escaper functions Go's `html/template` inserts into pipelines (`_html_template_…`),
//! byte for byte as Go's `html.go`, `js.go`, `css.go` and `url.go` write them.

use std::fmt::Write as _;

use super::super::funcs::eval_args;
use super::super::printf::{format_float, sprint};
use super::super::value::Value;
use super::context::{ContentType, attr_type};
use super::transition::{decode_css, is_css_nmchar, is_js_ident_part, strip_tags};

/// What a filter writes in place of a value it refuses.
const FAILSAFE: &str = "ZgotmplZ";

/// The escaper functions `html/template` inserts, by name.
pub fn escaper(name: &str) -> Option<fn(&[Value]) -> Value> {
    Some(match name {
        "_eval_args_" => |a| Value::from(eval_args(a.to_vec())),
        "_html_template_htmlescaper" => |a| match a {
            [Value::Html(s)] => Value::Str(s.clone()),
            [Value::Str(s)] if !s.bytes().any(html_special) => Value::Str(s.clone()),
            _ => Value::from(html_replace(&stringify(a).0, Table::Html, true)),
        },
        "_html_template_rcdataescaper" => |a| {
            Value::from(match stringify(a) {
                (s, true) => html_replace(&s, Table::HtmlNorm, true),
                (s, false) => html_replace(&s, Table::Html, true),
            })
        },
        "_html_template_attrescaper" => |a| match a {
            [Value::Str(s)] if !s.bytes().any(html_special) => Value::Str(s.clone()),
            _ => Value::from(match stringify(a) {
                (s, true) => html_replace(&strip_tags(&s), Table::HtmlNorm, true),
                (s, false) => html_replace(&s, Table::Html, true),
            }),
        },
        "_html_template_nospaceescaper" => |a| {
            Value::from(match stringify(a) {
                (s, true) => html_replace(&strip_tags(&s), Table::NospaceNorm, false),
                (s, false) => html_replace(&s, Table::Nospace, false),
            })
        },
        "_html_template_urlfilter" => |a| {
            let s = stringify(a).0;
            Value::from(if safe_url(&s) {
                s
            } else {
                format!("#{FAILSAFE}")
            })
        },
        "_html_template_urlnormalizer" => |a| Value::from(url_process(&stringify(a).0, true)),
        "_html_template_urlescaper" => |a| Value::from(url_process(&stringify(a).0, false)),
        "_html_template_srcsetescaper" => |a| Value::from(srcset(&stringify(a).0)),
        "_html_template_htmlnamefilter" => |a| Value::from(html_name_filter(&stringify(a).0)),
        "_html_template_commentescaper" => |_| Value::str(""),
        "_html_template_jsvalescaper" => |a| Value::from(js_val(a)),
        "_html_template_jsstrescaper" => |a| Value::from(js_replace(&stringify(a).0, JS_STR)),
        "_html_template_jsregexpescaper" => |a| {
            let s = js_replace(&stringify(a).0, JS_REGEXP);
            Value::from(if s.is_empty() { "(?:)".to_string() } else { s })
        },
        "_html_template_cssescaper" => |a| Value::from(css_escape(&stringify(a).0)),
        "_html_template_cssvaluefilter" => |a| Value::from(css_value_filter(&stringify(a).0)),
        _ => return None,
    })
}

/// Go's `stringify`: the text of the arguments and whether it is trusted HTML.
fn stringify(args: &[Value]) -> (String, bool) {
    if let [one] = args {
        match one {
            Value::Str(s) => return (s.to_string(), false),
            Value::Html(s) => return (s.to_string(), true),
            _ => {}
        }
    }
    let args: Vec<Value> = args
        .iter()
        .filter(|a| !matches!(a, Value::Nil | Value::Invalid))
        .cloned()
        .collect();
    (sprint(&args), false)
}

fn html_special(b: u8) -> bool {
    matches!(b, b'\0' | b'"' | b'&' | b'\'' | b'+' | b'<' | b'>') || b >= 0x80
}

#[derive(Clone, Copy, PartialEq)]
enum Table {
    Html,
    HtmlNorm,
    Nospace,
    NospaceNorm,
}

/// Go's `htmlReplacer`; `bad_runes` false also escapes the non-characters U+FDD0…U+FDEF and
/// U+FFF0…U+FFFF.
fn html_replace(s: &str, t: Table, bad_runes: bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let nospace = matches!(t, Table::Nospace | Table::NospaceNorm);
    let norm = matches!(t, Table::HtmlNorm | Table::NospaceNorm);
    for c in s.chars() {
        let r = match c {
            '\0' if nospace => "&#xfffd;",
            '\0' => "\u{FFFD}",
            '"' => "&#34;",
            '&' if norm => "&",
            '&' => "&amp;",
            '\'' => "&#39;",
            '+' => "&#43;",
            '<' => "&lt;",
            '>' => "&gt;",
            '\t' if nospace => "&#9;",
            '\n' if nospace => "&#10;",
            '\x0b' if nospace => "&#11;",
            '\x0c' if nospace => "&#12;",
            '\r' if nospace => "&#13;",
            ' ' if nospace => "&#32;",
            '=' if nospace => "&#61;",
            '`' if nospace => "&#96;",
            '\u{fdd0}'..='\u{fdef}' | '\u{fff0}'..='\u{ffff}' if !bad_runes => {
                let _ = write!(out, "&#x{:x};", c as u32);
                continue;
            }
            c => {
                out.push(c);
                continue;
            }
        };
        out.push_str(r);
    }
    out
}

fn html_name_filter(s: &str) -> String {
    if s.is_empty() {
        return FAILSAFE.into();
    }
    let s = s.to_lowercase();
    if attr_type(&s) != ContentType::Plain {
        return FAILSAFE.into();
    }
    if !s
        .chars()
        .all(|r| r.is_ascii_digit() || r.is_ascii_lowercase())
    {
        return FAILSAFE.into();
    }
    s
}

/// Go's `isSafeURL`: no scheme, or http, https or mailto.
fn safe_url(s: &str) -> bool {
    if let Some((scheme, _)) = s.split_once(':')
        && !scheme.contains('/')
    {
        return ["http", "https", "mailto"]
            .iter()
            .any(|ok| scheme.eq_ignore_ascii_case(ok));
    }
    true
}

/// Go's `processURLOnto`: percent-encodes what a URL (`norm`) or a URL part may not hold.
fn url_onto(out: &mut String, s: &str, norm: bool) {
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        let keep = match c {
            b'!' | b'#' | b'$' | b'&' | b'*' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?'
            | b'@' | b'[' | b']' => norm,
            b'-' | b'.' | b'_' | b'~' => true,
            b'%' => {
                norm && i + 2 < b.len()
                    && b[i + 1].is_ascii_hexdigit()
                    && b[i + 2].is_ascii_hexdigit()
            }
            c => c.is_ascii_alphanumeric(),
        };
        if keep {
            out.push(c as char);
        } else {
            let _ = write!(out, "%{c:02x}");
        }
    }
}

fn url_process(s: &str, norm: bool) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    url_onto(&mut out, s, norm);
    out
}

/// Go's `srcsetFilterAndEscaper` for plain text: each comma-separated candidate filtered.
fn srcset(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut written = 0;
    for (i, b) in s.bytes().enumerate() {
        if b == b',' {
            srcset_element(&mut out, s, written, i);
            out.push(',');
            written = i + 1;
        }
    }
    srcset_element(&mut out, s, written, s.len());
    out
}

fn srcset_element(out: &mut String, s: &str, left: usize, right: usize) {
    let b = s.as_bytes();
    let space = |c: u8| matches!(c, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ');
    let mut start = left;
    while start < right && space(b[start]) {
        start += 1;
    }
    let end = (start..right).find(|&i| space(b[i])).unwrap_or(right);
    let url = &s[start..end];
    if safe_url(url) && (end..right).all(|i| space(b[i]) || b[i].is_ascii_alphanumeric()) {
        out.push_str(&s[left..start]);
        url_onto(out, url, true);
        out.push_str(&s[end..right]);
        return;
    }
    out.push('#');
    out.push_str(FAILSAFE);
}

/// Go's `jsStrReplacementTable` past the control characters.
const JS_STR: &[(char, &str)] = &[
    ('"', "\\u0022"),
    ('`', "\\u0060"),
    ('&', "\\u0026"),
    ('\'', "\\u0027"),
    ('+', "\\u002b"),
    ('/', "\\/"),
    ('<', "\\u003c"),
    ('>', "\\u003e"),
    ('\\', "\\\\"),
];

/// Go's `jsRegexpReplacementTable` past the control characters.
const JS_REGEXP: &[(char, &str)] = &[
    ('"', "\\u0022"),
    ('$', "\\$"),
    ('&', "\\u0026"),
    ('\'', "\\u0027"),
    ('(', "\\("),
    (')', "\\)"),
    ('*', "\\*"),
    ('+', "\\u002b"),
    ('-', "\\-"),
    ('.', "\\."),
    ('/', "\\/"),
    ('<', "\\u003c"),
    ('>', "\\u003e"),
    ('?', "\\?"),
    ('[', "\\["),
    ('\\', "\\\\"),
    (']', "\\]"),
    ('^', "\\^"),
    ('{', "\\{"),
    ('|', "\\|"),
    ('}', "\\}"),
];

/// Go's `replace` in `js.go`: control characters as `\t`, `\n`, `\f`, `\r` or `\u00XX`, the
/// table's characters, and U+2028/U+2029 as `\u2028`/`\u2029`.
fn js_replace(s: &str, table: &[(char, &str)]) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\0'..='\x1f' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => match table.iter().find(|(k, _)| *k == c) {
                Some((_, r)) => out.push_str(r),
                None => out.push(c),
            },
        }
    }
    out
}

/// Go's `jsValEscaper`: the value as JSON (as `encoding/json` writes it, `<`, `>` and `&`
/// escaped), padded with spaces where it starts or ends like an identifier.
fn js_val(args: &[Value]) -> String {
    let top = match args {
        // Go's fmt.Stringer values (durations, months, weekdays) become their text.
        [v @ (Value::Duration(_) | Value::Month(_) | Value::Weekday(_))] => {
            Value::str(super::super::value::to_display(v))
        }
        [one] => one.clone(),
        _ => Value::str(sprint(args)),
    };
    let mut json = String::new();
    if let Err(e) = json_marshal(&mut json, &top, 0) {
        return format!(" /* {} */null ", e.replace("*/", "* /"));
    }
    if json.is_empty() {
        return " null ".into();
    }
    let pad = json.chars().next().is_some_and(is_js_ident_part)
        || json.chars().last().is_some_and(is_js_ident_part);
    if pad { format!(" {json} ") } else { json }
}

/// How deep `json_marshal` goes before it gives up, as Go's encoder does on cycles.
const MAX_JSON_DEPTH: usize = 1000;

/// `encoding/json`'s `Marshal` of a template value.
fn json_marshal(out: &mut String, v: &Value, depth: usize) -> Result<(), String> {
    if depth > MAX_JSON_DEPTH {
        return Err("json: unsupported value: nested too deeply".into());
    }
    match v {
        Value::Invalid | Value::Nil => out.push_str("null"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => json_float(out, *f)?,
        Value::Str(s) | Value::Html(s) => json_string(out, s),
        Value::Time(t) => {
            out.push('"');
            t.format_into(out, "2006-01-02T15:04:05.999999999Z07:00");
            out.push('"');
        }
        Value::Duration(d) => {
            let _ = write!(out, "{}", d.0);
        }
        Value::Month(m) | Value::Weekday(m) => {
            let _ = write!(out, "{m}");
        }
        Value::List(l) => {
            out.push('[');
            for (i, item) in l.items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_marshal(out, item, depth + 1)?;
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            for (i, (k, item)) in m.entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, k);
                out.push(':');
                json_marshal(out, item, depth + 1)?;
            }
            out.push('}');
        }
        Value::Struct(s) => {
            out.push('{');
            for (i, (name, item)) in s.fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, &json_field_name(s.ty, name));
                out.push(':');
                json_marshal(out, item, depth + 1)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// The JSON name of a struct field: Alertmanager's `Data` and `Alert` tag theirs in lower
/// camel case (`startsAt`, `generatorURL`); other structs' fields keep their Go names.
fn json_field_name(ty: &str, name: &str) -> String {
    if matches!(ty, "template.Data" | "template.Alert") {
        let mut c = name.chars();
        match c.next() {
            Some(f) => f.to_lowercase().chain(c).collect(),
            None => String::new(),
        }
    } else {
        name.to_string()
    }
}

/// `encoding/json`'s float encoding: `%f` shortest between 1e-6 and 1e21, else `%e` shortest
/// with a one-digit negative exponent unpadded.
fn json_float(out: &mut String, f: f64) -> Result<(), String> {
    if !f.is_finite() {
        let mut s = String::new();
        format_float(&mut s, f, 'g', None);
        return Err(format!("json: unsupported value: {s}"));
    }
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let mut s = String::new();
        format_float(&mut s, f, 'e', None);
        let n = s.len();
        if n >= 4 && s.as_bytes()[n - 4] == b'e' && &s[n - 3..n - 1] == "-0" {
            s.remove(n - 2);
        }
        out.push_str(&s);
    } else {
        format_float(out, f, 'f', None);
    }
    Ok(())
}

/// `encoding/json`'s string encoding with HTML escaping.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0'..='\x1f' | '<' | '>' | '&' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `cssEscaper`: CSS's `\hex` escapes, a space after one where the next character could
/// extend it.
fn css_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let b = s.as_bytes();
    for (i, c) in s.char_indices() {
        let repl = match c {
            '\0' => "\\0",
            '\t' => "\\9",
            '\n' => "\\a",
            '\x0c' => "\\c",
            '\r' => "\\d",
            '"' => "\\22",
            '&' => "\\26",
            '\'' => "\\27",
            '(' => "\\28",
            ')' => "\\29",
            '+' => "\\2b",
            '/' => "\\2f",
            ':' => "\\3a",
            ';' => "\\3b",
            '<' => "\\3c",
            '>' => "\\3e",
            '\\' => "\\\\",
            '{' => "\\7b",
            '}' => "\\7d",
            c => {
                out.push(c);
                continue;
            }
        };
        out.push_str(repl);
        let next = i + c.len_utf8();
        if repl != "\\\\"
            && (next == b.len()
                || b[next].is_ascii_hexdigit()
                || matches!(b[next], b'\t' | b'\n' | b'\x0c' | b'\r' | b' '))
        {
            out.push(' ');
        }
    }
    out
}

/// Go's `cssValueFilter`: the value decoded, if it is an innocuous CSS value.
fn css_value_filter(s: &str) -> String {
    let b = decode_css(s.as_bytes());
    let mut id = Vec::with_capacity(64);
    for (i, &c) in b.iter().enumerate() {
        match c {
            0 | b'"' | b'\'' | b'(' | b')' | b'/' | b';' | b'@' | b'[' | b'\\' | b']' | b'`'
            | b'{' | b'}' => return FAILSAFE.into(),
            b'-' if i != 0 && b[i - 1] == b'-' => return FAILSAFE.into(),
            c if c < 0x80 && is_css_nmchar(c as char) => id.push(c.to_ascii_lowercase()),
            _ => {}
        }
    }
    let has = |w: &[u8]| id.windows(w.len()).any(|x| x == w);
    if has(b"expression") || has(b"mozbinding") {
        return FAILSAFE.into();
    }
    String::from_utf8_lossy(&b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(name: &str, v: Value) -> String {
        match escaper(name).unwrap()(&[v]) {
            Value::Str(s) => s.to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn escapes_by_context() {
        assert_eq!(
            esc("_html_template_htmlescaper", Value::str("<a>&'+")),
            "&lt;a&gt;&amp;&#39;&#43;"
        );
        assert_eq!(
            esc("_html_template_htmlescaper", Value::Html("<b>".into())),
            "<b>"
        );
        assert_eq!(
            esc(
                "_html_template_urlfilter",
                Value::str("javascript:alert(1)")
            ),
            "#ZgotmplZ"
        );
        assert_eq!(
            esc(
                "_html_template_urlnormalizer",
                Value::str("http://x/a b%2g%41")
            ),
            "http://x/a%20b%252g%41"
        );
        assert_eq!(
            esc("_html_template_urlescaper", Value::str("a b&c")),
            "a%20b%26c"
        );
        assert_eq!(
            esc("_html_template_nospaceescaper", Value::str("a b")),
            "a&#32;b"
        );
    }

    #[test]
    fn escapes_javascript_as_go() {
        assert_eq!(
            esc(
                "_html_template_jsstrescaper",
                Value::str("a\"b<\u{2028}/\\'\x01")
            ),
            "a\\u0022b\\u003c\\u2028\\/\\\\\\u0027\\u0001"
        );
        assert_eq!(
            esc("_html_template_jsregexpescaper", Value::str("")),
            "(?:)"
        );
        assert_eq!(
            esc("_html_template_jsregexpescaper", Value::str("a.b*")),
            "a\\.b\\*"
        );
        assert_eq!(
            esc("_html_template_jsvalescaper", Value::str("<x>")),
            "\"\\u003cx\\u003e\""
        );
        assert_eq!(esc("_html_template_jsvalescaper", Value::Float(3.0)), " 3 ");
        assert_eq!(
            esc("_html_template_jsvalescaper", Value::Float(1e-7)),
            " 1e-7 "
        );
        assert_eq!(esc("_html_template_jsvalescaper", Value::Nil), " null ");
        assert_eq!(
            esc("_html_template_jsvalescaper", Value::Float(f64::NAN)),
            " /* json: unsupported value: NaN */null "
        );
    }

    #[test]
    fn escapes_css_as_go() {
        assert_eq!(
            esc("_html_template_cssescaper", Value::str("a\"b;")),
            "a\\22 b\\3b "
        );
        assert_eq!(
            esc("_html_template_cssvaluefilter", Value::str("red")),
            "red"
        );
        assert_eq!(
            esc("_html_template_cssvaluefilter", Value::str("expression(x)")),
            "ZgotmplZ"
        );
        assert_eq!(
            esc("_html_template_cssvaluefilter", Value::str("\\72 ed")),
            "red"
        );
    }
}
