//! Prometheus rule templates (alert annotations and labels): the data (`$labels`, `$value`,
//! `$externalLabels`, `$externalURL`, `.Labels`, `.Value`) and Prometheus 2.42's functions,
//! expanded exactly as its rule manager does, errors included.
//!
//! ```
//! use std::collections::BTreeMap;
//! use tradewatch::template::prometheus::{AlertData, Expansion, RuleTemplate};
//!
//! let t = RuleTemplate::new("TradingDailyLoss", "{{ $labels.strategy }} lost {{ $value | humanize }}");
//! let labels = BTreeMap::from([("strategy".to_string(), "momentum".to_string())]);
//! let data = AlertData::new(&labels, &BTreeMap::new(), "http://trading-box:9470", 12345.0);
//! assert_eq!(t.expand(&data, &Expansion::default()).unwrap(), "momentum lost 12.35k");
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use super::gotime::Time;
use super::printf::{format_float, sprintf};
use super::value::{ListType, Map, MapType, Struct, Value};
use super::{Error, Func, Funcs, MissingKey, Templates, Ty};

/// How deeply `args` may nest values (so no value is too deep to print or drop).
const MAX_VALUE_DEPTH: usize = 64;

/// One sample of a query result, as templates see it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// The series' labels, `__name__` included.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// Runs an instant PromQL query for the `query` function, so this module needs no engine.
pub trait QueryFn: Send + Sync {
    /// The instant vector `expr` evaluates to at `at`, or an error message.
    fn query(&self, expr: &str, at: &Time) -> Result<Vec<Sample>, String>;
}

/// What one expansion runs against: the query engine, the evaluation time and the external URL.
#[derive(Clone, Default)]
pub struct Expansion {
    /// The engine `query` runs on; without one, `query` fails.
    pub query: Option<Arc<dyn QueryFn>>,
    /// The evaluation time, for `query`.
    pub timestamp: Option<Time>,
    /// Prometheus's `--web.external-url` (for `externalURL` and `pathPrefix`).
    pub external_url: String,
}

/// The data of an alert's templates: `.Labels`, `.ExternalLabels`, `.ExternalURL`, `.Value`.
#[derive(Clone, Debug)]
pub struct AlertData(Value);

const DATA_TYPE: &str = "struct { Labels map[string]string; ExternalLabels map[string]string; \
                         ExternalURL string; Value float64 }";

impl AlertData {
    /// The data for one alert: its labels, the external labels and URL, and its value.
    pub fn new(
        labels: &BTreeMap<String, String>,
        external_labels: &BTreeMap<String, String>,
        external_url: &str,
        value: f64,
    ) -> AlertData {
        AlertData::from_values(
            Self::label_map(labels.iter().map(|(k, v)| (k.clone(), Value::str(v)))),
            Self::label_map(
                external_labels
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::str(v))),
            ),
            Value::str(external_url),
            value,
        )
    }

    /// A `map[string]string` of labels, from names and string values.
    pub fn label_map(entries: impl IntoIterator<Item = (String, Value)>) -> Value {
        Value::Map(Arc::new(Map {
            ty: MapType::String,
            entries: entries.into_iter().collect(),
        }))
    }

    /// The data from values built beforehand (the external labels and URL once for many alerts):
    /// `labels` and `external_labels` as [`AlertData::label_map`] makes them, `external_url` a
    /// string.
    pub fn from_values(
        labels: Value,
        external_labels: Value,
        external_url: Value,
        value: f64,
    ) -> AlertData {
        AlertData(Value::Struct(Arc::new(Struct {
            ty: DATA_TYPE,
            pointer: false,
            fields: vec![
                ("Labels", labels),
                ("ExternalLabels", external_labels),
                ("ExternalURL", external_url),
                ("Value", Value::Float(value)),
            ],
        })))
    }

    /// The data as a template value.
    pub fn value(&self) -> &Value {
        &self.0
    }
}

/// The definitions Prometheus puts before every alert template.
const DEFS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}\
                    {{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// An alert annotation or label template of a rule, parsed once.
#[derive(Clone, Debug)]
pub struct RuleTemplate {
    name: String,
    source: String,
    parsed: Result<Templates, super::ParseError>,
    /// The text has no action, so it expands to itself whatever the data.
    is_static: bool,
}

impl RuleTemplate {
    /// Parses `text` as Prometheus does for the alert `alert_name` (the template is named
    /// `__alert_<name>` and follows Prometheus's variable definitions). A parse error is kept
    /// and reported by each expansion, as Prometheus reports it.
    pub fn new(alert_name: &str, text: &str) -> RuleTemplate {
        let name = format!("__alert_{alert_name}");
        let mut set = Templates::new(funcs().clone()).missing_key(MissingKey::Zero);
        let parsed = set.parse(&name, &format!("{DEFS}{text}")).map(|()| set);
        RuleTemplate {
            is_static: parsed.is_ok() && !text.contains("{{"),
            name,
            source: text.to_owned(),
            parsed,
        }
    }

    /// The expansion of a template without actions (`severity: page`), which is its text
    /// whatever the alert; `None` for a template that needs the alert's data.
    pub fn static_text(&self) -> Option<&str> {
        self.is_static.then_some(self.source.as_str())
    }

    /// The template's text as written in the rule file.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The parse error, if the text does not parse, as `promtool check rules` prints it.
    pub fn parse_error(&self) -> Option<String> {
        self.parsed.as_ref().err().map(ToString::to_string)
    }

    /// Expands the template, or gives Prometheus's error (`error executing template …`,
    /// `error parsing template …`).
    pub fn expand(&self, data: &AlertData, env: &Expansion) -> Result<String, String> {
        let set = self.parsed.as_ref().map_err(|e| {
            format!(
                "error parsing template {}: {}",
                self.name,
                Error::from(e.clone())
            )
        })?;
        set.execute_with(&self.name, &data.0, Some(env))
            .map_err(|e| format!("error executing template {}: {e}", self.name))
    }

    /// Expands as Prometheus's rule manager does: an error becomes the text
    /// `<error expanding template: …>`.
    pub fn expand_or_error(&self, data: &AlertData, env: &Expansion) -> String {
        self.expand(data, env)
            .unwrap_or_else(|e| format!("<error expanding template: {e}>"))
    }
}

fn env_of<'a>(env: &'a super::Env<'_>) -> Option<&'a Expansion> {
    env.and_then(|e| e.downcast_ref::<Expansion>())
}

/// Go's `strconv.ParseFloat` for templates' string arguments.
pub fn parse_float(s: &str) -> Result<f64, String> {
    let invalid = || {
        format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            super::printf::quote(s, false)
        )
    };
    let t = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = t.to_ascii_lowercase();
    let special = matches!(lower.as_str(), "inf" | "infinity" | "nan");
    if !special
        && !t
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-' | b'_'))
    {
        return Err(invalid());
    }
    let v: f64 = s.replace('_', "").parse().map_err(|_| invalid())?;
    if v.is_infinite() && !special {
        return Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            super::printf::quote(s, false)
        ));
    }
    Ok(v)
}

/// Prometheus's `convertToFloat`: numbers, numeric strings and durations.
pub fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_float(s),
        Value::Duration(d) => Ok(d.seconds()),
        Value::Nil | Value::Invalid => Err("can't convert <nil> to float".into()),
        v => Err(format!("can't convert {} to float", v.type_name())),
    }
}

fn g4(v: f64) -> String {
    let mut s = String::new();
    format_float(&mut s, v, 'g', Some(4));
    s
}

/// Prometheus's `humanize`: SI prefixes, four significant digits.
pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return g4(v);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    g4(v) + prefix
}

/// Prometheus's `humanize1024`: binary prefixes.
pub fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    g4(v) + prefix
}

/// Prometheus's `humanizeDuration`: `1d 2h 3m 4s`, or seconds with SI prefixes below one.
pub fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return g4(v);
    }
    if v == 0.0 {
        return g4(v) + "s";
    }
    if v.abs() >= 1.0 {
        let mut sign = "";
        if v < 0.0 {
            sign = "-";
            v = -v;
        }
        let t = v as i64;
        let (seconds, minutes, hours, days) = (t % 60, t / 60 % 60, t / 3600 % 24, t / 86400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

/// Prometheus's `floatToTime`: seconds to a UTC time at millisecond precision.
pub fn float_to_time(v: f64) -> Result<Time, String> {
    if !v.is_finite() {
        return Err("value is NaN or Inf".into());
    }
    let ts = v * 1e9;
    if !(i64::MIN as f64..=i64::MAX as f64).contains(&ts) {
        let mut s = String::new();
        format_float(&mut s, v, 'g', None);
        return Err(format!(
            "{s} cannot be represented as a nanoseconds timestamp since it overflows int64"
        ));
    }
    let ms = (ts as i64) / 1_000_000;
    Ok(Time::utc(
        ms.div_euclid(1000),
        (ms.rem_euclid(1000) * 1_000_000) as u32,
    ))
}

/// Go's deprecated `strings.Title`, which Prometheus 2.42's `title` is.
pub fn title(s: &str) -> String {
    let sep = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphabetic() || c.is_numeric() {
            false
        } else {
            c.is_whitespace()
        }
    };
    let mut prev = ' ';
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if sep(prev) {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

/// Go's `net.SplitHostPort`.
pub fn split_host_port(hp: &str) -> Option<(&str, &str)> {
    let i = hp.rfind(':')?;
    let (host, port) = (&hp[..i], &hp[i + 1..]);
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']')?;
        if inner.contains(['[', ']']) {
            return None;
        }
        return Some((inner, port));
    }
    if host.contains([':', '[', ']']) || port.contains(['[', ']']) {
        return None;
    }
    Some((host, port))
}

fn strip_domain(hp: &str) -> String {
    let (host, port) = match split_host_port(hp) {
        Some((h, p)) => (h, p),
        None => (hp, ""),
    };
    if host.parse::<IpAddr>().is_ok() {
        return hp.to_string();
    }
    let host = host.split('.').next().unwrap_or("");
    if port.is_empty() {
        return host.to_string();
    }
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Prometheus's `model.ParseDuration` (`1h5m`, `1d`, `2w`, `1y`, `500ms`), in seconds.
pub fn parse_duration(s: &str) -> Result<f64, String> {
    use crate::model::duration::{DurationError, PromDuration};
    match PromDuration::parse(s) {
        Ok(d) => Ok(d.as_duration().as_millis() as f64 / 1000.0),
        Err(DurationError::OutOfRange) => Err("duration out of range".into()),
        Err(_) => Err(format!(
            "not a valid duration string: {}",
            super::printf::quote(s, false)
        )),
    }
}

fn sample_value(s: &Sample) -> Value {
    Value::Struct(Arc::new(Struct {
        ty: "*template.sample",
        pointer: true,
        fields: vec![
            (
                "Labels",
                Value::string_map(MapType::String, s.labels.iter()),
            ),
            ("Value", Value::Float(s.value)),
        ],
    }))
}

fn sample_field<'a>(v: &'a Value, field: &str) -> Option<&'a Value> {
    match v {
        Value::Struct(s) => s.field(field),
        _ => None,
    }
}

fn label_of(v: &Value, label: &str) -> String {
    match sample_field(v, "Labels") {
        Some(Value::Map(m)) => m
            .entries
            .get(label)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        _ => String::new(),
    }
}

fn num_fn(f: fn(f64) -> String) -> Func {
    Func::new(&[Ty::Any], move |_, a| Ok(Value::from(f(to_float(&a[0])?))))
}

fn str_fn(f: fn(&str) -> String) -> Func {
    Func::new(&[Ty::String], move |_, a| {
        Ok(Value::from(f(a[0].as_str().unwrap_or(""))))
    })
}

/// Go's `regexp.Compile`, with Go's wording for the common syntax errors.
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| {
        let msg = e.to_string();
        let code = if msg.contains("unclosed group") {
            "missing closing )"
        } else if msg.contains("unopened group") {
            "unexpected )"
        } else if msg.contains("unclosed character class") {
            "missing closing ]"
        } else if msg.contains("repetition operator missing expression") {
            "missing argument to repetition operator"
        } else if msg.contains("unrecognized escape") || msg.contains("incomplete escape") {
            "invalid escape sequence"
        } else {
            "invalid or unsupported Perl syntax"
        };
        format!("error parsing regexp: {code}: `{pattern}`")
    })
}

/// Prometheus's rule-template functions (Go's built-ins come with every set).
pub fn funcs() -> &'static Funcs {
    static FUNCS: OnceLock<Funcs> = OnceLock::new();
    FUNCS.get_or_init(|| {
        let mut f = Funcs::default();
        f.insert(
            "query",
            Func::new(&[Ty::String], |env, a| {
                let q = a[0].as_str().unwrap_or("");
                let exp = env_of(env).ok_or("no query engine")?;
                let engine = exp.query.as_ref().ok_or("no query engine")?;
                let ts = exp.timestamp.clone().unwrap_or_else(|| Time::utc(0, 0));
                let samples = engine.query(q, &ts)?;
                Ok(Value::list(
                    ListType::QueryResult,
                    samples.iter().map(sample_value).collect(),
                ))
            }),
        );
        f.insert(
            "first",
            Func::new(&[Ty::QueryResult], |_, a| match &a[0] {
                Value::List(l) if !l.items.is_empty() => Ok(l.items[0].clone()),
                _ => Err("first() called on vector with no elements".into()),
            }),
        );
        f.insert(
            "label",
            Func::new(&[Ty::String, Ty::Sample], |_, a| {
                Ok(Value::from(label_of(&a[1], a[0].as_str().unwrap_or(""))))
            }),
        );
        f.insert(
            "value",
            Func::new(&[Ty::Sample], |_, a| match sample_field(&a[0], "Value") {
                Some(v) => Ok(v.clone()),
                None => {
                    Err("runtime error: invalid memory address or nil pointer dereference".into())
                }
            }),
        );
        f.insert(
            "strvalue",
            Func::new(&[Ty::Sample], |_, a| {
                Ok(Value::from(label_of(&a[0], "__value__")))
            }),
        );
        f.insert(
            "sortByLabel",
            Func::new(&[Ty::String, Ty::QueryResult], |_, a| {
                let label = a[0].as_str().unwrap_or("");
                let Value::List(l) = &a[1] else {
                    return Ok(a[1].clone());
                };
                let mut items = l.items.clone();
                items.sort_by_cached_key(|s| label_of(s, label));
                Ok(Value::list(ListType::QueryResult, items))
            }),
        );
        f.insert(
            "args",
            Func::variadic(&[], Ty::Any, |_, a| {
                if a.iter()
                    .any(|v| v.depth(MAX_VALUE_DEPTH) >= MAX_VALUE_DEPTH)
                {
                    return Err("value nested too deeply".into());
                }
                let entries = a
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (format!("arg{i}"), v))
                    .collect();
                Ok(Value::Map(Arc::new(Map {
                    ty: MapType::Interface,
                    entries,
                })))
            }),
        );
        f.insert(
            "reReplaceAll",
            Func::new(&[Ty::String, Ty::String, Ty::String], |_, a| {
                let pattern = a[0].as_str().unwrap_or("");
                let re = compile_regex(pattern)
                    .map_err(|e| format!("regexp: Compile({}): {e}", backquote(pattern)))?;
                let text = a[2].as_str().unwrap_or("");
                Ok(Value::from(
                    re.replace_all(text, a[1].as_str().unwrap_or(""))
                        .into_owned(),
                ))
            }),
        );
        f.insert(
            "match",
            Func::new(&[Ty::String, Ty::String], |_, a| {
                let re = compile_regex(a[0].as_str().unwrap_or(""))?;
                Ok(Value::Bool(re.is_match(a[1].as_str().unwrap_or(""))))
            }),
        );
        f.insert(
            "safeHtml",
            Func::new(&[Ty::String], |_, a| match &a[0] {
                Value::Str(s) => Ok(Value::Html(s.clone())),
                _ => Ok(Value::Html(Arc::from(""))),
            }),
        );
        f.insert("title", str_fn(title));
        f.insert("toUpper", str_fn(str::to_uppercase));
        f.insert("toLower", str_fn(str::to_lowercase));
        f.insert(
            "graphLink",
            str_fn(|e| format!("/graph?g0.expr={}&g0.tab=0", super::funcs::query_escape(e))),
        );
        f.insert(
            "tableLink",
            str_fn(|e| format!("/graph?g0.expr={}&g0.tab=1", super::funcs::query_escape(e))),
        );
        f.insert(
            "stripPort",
            str_fn(|hp| split_host_port(hp).map_or(hp, |(h, _)| h).to_string()),
        );
        f.insert("stripDomain", str_fn(strip_domain));
        f.insert("humanize", num_fn(humanize));
        f.insert("humanize1024", num_fn(humanize1024));
        f.insert("humanizeDuration", num_fn(humanize_duration));
        f.insert(
            "humanizePercentage",
            num_fn(|v| {
                let mut s = g4(v * 100.0);
                s.push('%');
                s
            }),
        );
        f.insert(
            "humanizeTimestamp",
            Func::new(&[Ty::Any], |_, a| {
                let v = to_float(&a[0])?;
                if !v.is_finite() {
                    return Ok(Value::from(g4(v)));
                }
                let mut s = String::new();
                float_to_time(v)?.write_string(&mut s);
                Ok(Value::from(s))
            }),
        );
        f.insert(
            "toTime",
            Func::new(&[Ty::Any], |_, a| {
                Ok(Value::Time(float_to_time(to_float(&a[0])?)?))
            }),
        );
        f.insert(
            "parseDuration",
            Func::new(&[Ty::String], |_, a| {
                Ok(Value::Float(parse_duration(a[0].as_str().unwrap_or(""))?))
            }),
        );
        f.insert(
            "externalURL",
            Func::new(&[], |env, _| {
                Ok(Value::from(
                    env_of(env)
                        .map(|e| e.external_url.clone())
                        .unwrap_or_default(),
                ))
            }),
        );
        f.insert(
            "pathPrefix",
            Func::new(&[], |env, _| {
                let url = env_of(env).map(|e| e.external_url.as_str()).unwrap_or("");
                Ok(Value::from(url_path(url)))
            }),
        );
        f
    })
}

fn backquote(s: &str) -> String {
    if s.contains('`') {
        super::printf::quote(s, false)
    } else {
        format!("`{s}`")
    }
}

fn url_path(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(parsed) if parsed.path() != "/" || u.trim_end().ends_with('/') => {
            percent_decode(parsed.path())
        }
        _ => String::new(),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `printf` as Prometheus templates see it (for callers formatting values the same way).
pub fn format(format: &str, args: &[Value]) -> String {
    sprintf(format, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanizes_as_prometheus() {
        assert_eq!(humanize(1234567.0), "1.235M");
        assert_eq!(humanize(0.00012), "120u");
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize(1e30), "1e+06Y");
        assert_eq!(humanize(-0.000001234), "-1.234u");
        assert_eq!(humanize1024(1048576.0), "1Mi");
        assert_eq!(humanize_duration(90061.5), "1d 1h 1m 1s");
        assert_eq!(humanize_duration(0.0012), "1.2ms");
        assert_eq!(humanize_duration(-3700.0), "-1h 1m 40s");
        assert_eq!(humanize_duration(0.0), "0s");
        assert_eq!(
            title("hELLO wORLD-foo_bar o'neil"),
            "HELLO WORLD-Foo_bar O'Neil"
        );
        assert_eq!(strip_domain("host.example.com:9100"), "host:9100");
        assert_eq!(strip_domain("10.0.0.1:80"), "10.0.0.1:80");
        assert_eq!(parse_duration("1h5m").unwrap(), 3900.0);
        assert!(parse_duration("5m1h").is_err());
        let mut s = String::new();
        float_to_time(1700000000.123).unwrap().write_string(&mut s);
        assert_eq!(s, "2023-11-14 22:13:20.122 +0000 UTC");
    }
}
