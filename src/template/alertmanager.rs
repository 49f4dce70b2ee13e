//! Alertmanager notification templates: its data model (`.Receiver`, `.Status`, `.Alerts` with
//! `.Firing`/`.Resolved`, the `KV` methods), its functions, and its default templates
//! (`default.tmpl`, `email.tmpl`) so `{{ template "email.default.subject" . }}` resolves; text
//! and HTML (contextually escaped) sets, as Alertmanager keeps both.
//!
//! ```
//! use std::collections::BTreeMap;
//! use tradewatch::template::alertmanager::{Alert, Data, NotificationTemplates};
//! use tradewatch::template::Time;
//!
//! let alert = Alert {
//!     status: "firing".into(),
//!     labels: BTreeMap::from([("alertname".into(), "TradingKillSwitchActive".into())]),
//!     starts_at: Time::utc(1_700_000_000, 0),
//!     ..Alert::default()
//! };
//! let data = Data::new("trader-email", BTreeMap::new(), vec![alert], "http://trading-box:9470");
//! let t = NotificationTemplates::new();
//! assert_eq!(
//!     t.execute_text(r#"{{ template "email.default.subject" . }}"#, &data).unwrap(),
//!     "[FIRING:1]  (TradingKillSwitchActive)"
//! );
//! ```

// NOTICE: `alertmanager_default.tmpl` and `alertmanager_email.tmpl` are Alertmanager's default
// templates (Prometheus Alertmanager, Copyright 2013-2015 The Prometheus Authors, Apache License
// 2.0), embedded unchanged as Debian's prometheus-alertmanager 0.25 ships them; the email
// template's HTML carries its own MIT notice (Mailgun's transactional email templates).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use super::gotime::{Duration, Time};
use super::prometheus::{compile_regex, humanize_duration, to_float};
use super::value::{ListType, Map, MapType, Struct, Value};
use super::{Error, Func, Funcs, MissingKey, ParseError, Templates, Ty};

/// Alertmanager's `default.tmpl`.
pub const DEFAULT_TMPL: &str = include_str!("alertmanager_default.tmpl");
/// Alertmanager's `email.tmpl`.
pub const EMAIL_TMPL: &str = include_str!("alertmanager_email.tmpl");

/// One alert of a notification.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// `firing` or `resolved`.
    pub status: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// When it started firing.
    pub starts_at: Time,
    /// When it ended (or will be considered ended).
    pub ends_at: Time,
    /// Link to the rule's expression.
    pub generator_url: String,
    /// Alertmanager's fingerprint, 16 hex digits.
    pub fingerprint: String,
}

fn zero_time() -> Time {
    Time::utc(-62_135_596_800, 0)
}

impl Default for Alert {
    fn default() -> Alert {
        Alert {
            status: String::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            starts_at: zero_time(),
            ends_at: zero_time(),
            generator_url: String::new(),
            fingerprint: String::new(),
        }
    }
}

/// The data of a notification, Alertmanager's `template.Data`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Data {
    /// The receiver's name (regexp-quoted, as Alertmanager passes it).
    pub receiver: String,
    /// `firing` when any alert fires, else `resolved`.
    pub status: String,
    /// The alerts.
    pub alerts: Vec<Alert>,
    /// The group's labels.
    pub group_labels: BTreeMap<String, String>,
    /// Labels every alert has with the same value.
    pub common_labels: BTreeMap<String, String>,
    /// Annotations every alert has with the same value.
    pub common_annotations: BTreeMap<String, String>,
    /// Alertmanager's external URL.
    pub external_url: String,
}

/// Go's `regexp.QuoteMeta`.
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn common(maps: &[&BTreeMap<String, String>]) -> BTreeMap<String, String> {
    let Some((first, rest)) = maps.split_first() else {
        return BTreeMap::new();
    };
    first
        .iter()
        .filter(|(k, v)| rest.iter().all(|m| m.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl Data {
    /// Assembles the data as Alertmanager's `Template.Data` does: the receiver regexp-quoted,
    /// the status, and the common labels and annotations.
    pub fn new(
        receiver: &str,
        group_labels: BTreeMap<String, String>,
        alerts: Vec<Alert>,
        external_url: &str,
    ) -> Data {
        let firing = alerts.iter().any(|a| a.status == "firing");
        let labels: Vec<&BTreeMap<String, String>> = alerts.iter().map(|a| &a.labels).collect();
        let annotations: Vec<&BTreeMap<String, String>> =
            alerts.iter().map(|a| &a.annotations).collect();
        Data {
            receiver: quote_meta(receiver),
            status: if firing { "firing" } else { "resolved" }.to_string(),
            common_labels: common(&labels),
            common_annotations: common(&annotations),
            alerts,
            group_labels,
            external_url: external_url.to_string(),
        }
    }

    /// Reads Alertmanager's JSON form of `template.Data` (what `amtool template render
    /// --template.data` takes and webhooks carry).
    pub fn from_json(j: &serde_json::Value) -> Result<Data, String> {
        let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
        let kv = |v: &serde_json::Value| -> BTreeMap<String, String> {
            v.as_object()
                .map(|o| o.iter().map(|(k, v)| (k.clone(), s(v))).collect())
                .unwrap_or_default()
        };
        let time = |v: &serde_json::Value| -> Result<Time, String> {
            match v.as_str() {
                None => Ok(zero_time()),
                Some(t) => Time::parse_rfc3339(t).ok_or_else(|| format!("bad time {t:?}")),
            }
        };
        let mut alerts = Vec::new();
        for a in j["alerts"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            alerts.push(Alert {
                status: s(&a["status"]),
                labels: kv(&a["labels"]),
                annotations: kv(&a["annotations"]),
                starts_at: time(&a["startsAt"])?,
                ends_at: time(&a["endsAt"])?,
                generator_url: s(&a["generatorURL"]),
                fingerprint: s(&a["fingerprint"]),
            });
        }
        Ok(Data {
            receiver: s(&j["receiver"]),
            status: s(&j["status"]),
            alerts,
            group_labels: kv(&j["groupLabels"]),
            common_labels: kv(&j["commonLabels"]),
            common_annotations: kv(&j["commonAnnotations"]),
            external_url: s(&j["externalURL"]),
        })
    }

    /// The data as a template value (`template.Data`).
    pub fn value(&self) -> Value {
        let alerts = self.alerts.iter().map(alert_value).collect();
        Value::Struct(Arc::new(Struct {
            ty: "template.Data",
            pointer: false,
            fields: vec![
                ("Receiver", Value::str(&self.receiver)),
                ("Status", Value::str(&self.status)),
                ("Alerts", Value::list(ListType::Alerts, alerts)),
                ("GroupLabels", kv_value(&self.group_labels)),
                ("CommonLabels", kv_value(&self.common_labels)),
                ("CommonAnnotations", kv_value(&self.common_annotations)),
                ("ExternalURL", Value::str(&self.external_url)),
            ],
        }))
    }
}

fn kv_value(m: &BTreeMap<String, String>) -> Value {
    Value::Map(Arc::new(Map {
        ty: MapType::Kv,
        entries: m.iter().map(|(k, v)| (k.clone(), Value::str(v))).collect(),
    }))
}

fn alert_value(a: &Alert) -> Value {
    Value::Struct(Arc::new(Struct {
        ty: "template.Alert",
        pointer: false,
        fields: vec![
            ("Status", Value::str(&a.status)),
            ("Labels", kv_value(&a.labels)),
            ("Annotations", kv_value(&a.annotations)),
            ("StartsAt", Value::Time(a.starts_at.clone())),
            ("EndsAt", Value::Time(a.ends_at.clone())),
            ("GeneratorURL", Value::str(&a.generator_url)),
            ("Fingerprint", Value::str(&a.fingerprint)),
        ],
    }))
}

/// `cases.Title(language.AmericanEnglish)`: each word's first letter upper case, the rest lower.
pub fn title(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    let mut titled = false;
    for (i, &c) in chars.iter().enumerate() {
        let word_char = c.is_alphanumeric() || c == '_';
        let joiner = matches!(c, '\'' | '.' | ':' | '’')
            && in_word
            && i > 0
            && chars[i - 1].is_alphabetic()
            && chars.get(i + 1).is_some_and(|n| n.is_alphabetic());
        if word_char || joiner {
            if !in_word {
                titled = false;
            }
            let cased = c.is_lowercase() || c.is_uppercase();
            if cased && !titled {
                out.extend(c.to_uppercase());
                titled = true;
            } else {
                out.extend(c.to_lowercase());
            }
            in_word = true;
        } else {
            out.push(c);
            in_word = false;
        }
    }
    out
}

fn s0(a: &[Value]) -> &str {
    a[0].as_str().unwrap_or("")
}

/// Alertmanager's template functions (Go's built-ins come with every set).
pub fn funcs() -> &'static Funcs {
    static FUNCS: OnceLock<Funcs> = OnceLock::new();
    FUNCS.get_or_init(|| {
        let mut f = Funcs::default();
        f.insert(
            "toUpper",
            Func::new(&[Ty::String], |_, a| Ok(Value::from(s0(&a).to_uppercase()))),
        );
        f.insert(
            "toLower",
            Func::new(&[Ty::String], |_, a| Ok(Value::from(s0(&a).to_lowercase()))),
        );
        f.insert(
            "title",
            Func::new(&[Ty::String], |_, a| Ok(Value::from(title(s0(&a))))),
        );
        f.insert(
            "trimSpace",
            Func::new(&[Ty::String], |_, a| Ok(Value::str(s0(&a).trim()))),
        );
        f.insert(
            "join",
            Func::new(&[Ty::String, Ty::StringSlice], |_, a| {
                let parts: Vec<&str> = match &a[1] {
                    Value::List(l) => l.items.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                Ok(Value::from(parts.join(s0(&a))))
            }),
        );
        f.insert(
            "match",
            Func::new(&[Ty::String, Ty::String], |_, a| {
                Ok(Value::Bool(
                    compile_regex(s0(&a))?.is_match(a[1].as_str().unwrap_or("")),
                ))
            }),
        );
        f.insert(
            "safeHtml",
            Func::new(&[Ty::String], |_, a| Ok(Value::Html(Arc::from(s0(&a))))),
        );
        f.insert(
            "reReplaceAll",
            Func::new(&[Ty::String, Ty::String, Ty::String], |_, a| {
                let re = compile_regex(s0(&a))
                    .map_err(|e| format!("regexp: Compile(`{}`): {e}", s0(&a)))?;
                let text = a[2].as_str().unwrap_or("");
                Ok(Value::from(
                    re.replace_all(text, a[1].as_str().unwrap_or(""))
                        .into_owned(),
                ))
            }),
        );
        f.insert(
            "stringSlice",
            Func::variadic(&[], Ty::String, |_, a| Ok(Value::list(ListType::String, a))),
        );
        f.insert(
            "date",
            Func::new(&[Ty::String, Ty::Time], |_, a| match &a[1] {
                Value::Time(t) => Ok(Value::from(t.format(s0(&a)))),
                _ => Err("not a time".into()),
            }),
        );
        f.insert(
            "tz",
            Func::new(&[Ty::String, Ty::Time], |_, a| match &a[1] {
                Value::Time(t) => Ok(Value::Time(t.in_zone(s0(&a))?)),
                _ => Err("not a time".into()),
            }),
        );
        f.insert(
            "since",
            Func::new(&[Ty::Time], |_, a| match &a[0] {
                Value::Time(t) => {
                    let now = chrono::Utc::now();
                    let now = Time::utc(now.timestamp(), now.timestamp_subsec_nanos());
                    let d = now.unix_nanos() - t.unix_nanos();
                    Ok(Value::Duration(Duration(
                        d.clamp(i64::MIN.into(), i64::MAX.into()) as i64,
                    )))
                }
                _ => Err("not a time".into()),
            }),
        );
        f.insert(
            "humanizeDuration",
            Func::new(&[Ty::Any], |_, a| {
                Ok(Value::from(humanize_duration(to_float(&a[0])?)))
            }),
        );
        f
    })
}

/// Alertmanager's template set: a text and an HTML set holding the default templates and the
/// operator's template files, both with `missingkey=zero`.
#[derive(Clone, Debug)]
pub struct NotificationTemplates {
    text: Templates,
    html: Templates,
}

impl Default for NotificationTemplates {
    fn default() -> Self {
        NotificationTemplates::new()
    }
}

impl NotificationTemplates {
    /// The sets with Alertmanager's default templates.
    pub fn new() -> NotificationTemplates {
        static DEFAULTS: OnceLock<NotificationTemplates> = OnceLock::new();
        DEFAULTS
            .get_or_init(|| {
                let mut t = NotificationTemplates {
                    text: Templates::new(funcs().clone()).missing_key(MissingKey::Zero),
                    html: Templates::new(funcs().clone())
                        .missing_key(MissingKey::Zero)
                        .html(),
                };
                for (name, text) in [("default.tmpl", DEFAULT_TMPL), ("email.tmpl", EMAIL_TMPL)] {
                    // The embedded templates parse; a failure here is a build defect.
                    if let Err(e) = t.add(name, text) {
                        panic!("embedded Alertmanager template {name}: {e}");
                    }
                }
                t
            })
            .clone()
    }

    /// Adds a template file (named by its base name, as Go's `ParseGlob` names it); its
    /// definitions replace earlier ones of the same name.
    pub fn add(&mut self, name: &str, text: &str) -> Result<(), ParseError> {
        self.text.parse(name, text)?;
        self.html.parse(name, text)?;
        self.html.escape_all();
        Ok(())
    }

    /// The text set.
    pub fn text(&self) -> &Templates {
        &self.text
    }

    /// The HTML set.
    pub fn html(&self) -> &Templates {
        &self.html
    }

    /// Parses `text` once for rendering many times (what [`Self::execute_text`] does per call).
    pub fn prepare_text(&self, text: &str) -> Result<Prepared, ParseError> {
        prepare(&self.text, text)
    }

    /// Parses `text` once for rendering many times as HTML.
    pub fn prepare_html(&self, text: &str) -> Result<Prepared, ParseError> {
        prepare(&self.html, text)
    }

    /// Alertmanager's `ExecuteTextString`: parses `text` as the template `""` beside the set's
    /// templates and renders it over `data`.
    pub fn execute_text(&self, text: &str, data: &Data) -> Result<String, Error> {
        render(&self.text, text, data)
    }

    /// Alertmanager's `ExecuteHTMLString`: as [`Self::execute_text`], escaped for HTML.
    pub fn execute_html(&self, text: &str, data: &Data) -> Result<String, Error> {
        render(&self.html, text, data)
    }
}

/// A notification template text parsed beside the set's templates, ready to render.
#[derive(Clone, Debug)]
pub struct Prepared {
    set: Option<Templates>,
}

impl Prepared {
    /// Renders over `data` (an empty text renders empty, as in Alertmanager).
    pub fn execute(&self, data: &Data) -> Result<String, super::ExecError> {
        self.execute_value(&data.value())
    }

    /// Renders over data already turned into a value (see [`Data::value`]).
    pub fn execute_value(&self, data: &Value) -> Result<String, super::ExecError> {
        match &self.set {
            Some(set) => set.execute("", data),
            None => Ok(String::new()),
        }
    }
}

fn prepare(set: &Templates, text: &str) -> Result<Prepared, ParseError> {
    if text.is_empty() {
        return Ok(Prepared { set: None });
    }
    let mut set = set.clone();
    set.parse("", text)?;
    Ok(Prepared { set: Some(set) })
}

fn render(set: &Templates, text: &str, data: &Data) -> Result<String, Error> {
    Ok(prepare(set, text)?.execute(data)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_as_x_text_cases() {
        assert_eq!(
            title("hELLO wORLD-foo_bar o'neil"),
            "Hello World-Foo_bar O'neil"
        );
    }

    #[test]
    fn newer_functions_work_as_alertmanager_main() {
        let t = NotificationTemplates::new();
        let alert = Alert {
            status: "firing".into(),
            starts_at: Time::utc(1_700_000_000, 0),
            ..Alert::default()
        };
        let data = Data::new("r", BTreeMap::new(), vec![alert], "");
        let text = r#"{{ range .Alerts }}{{ .StartsAt | date "2006-01-02 15:04 MST" }}|{{ (tz "America/New_York" .StartsAt).Format "15:04 MST" }}|{{ date "15:04" (tz "Asia/Kolkata" .StartsAt) }}{{ end }}|{{ trimSpace "  x \n" }}|{{ humanizeDuration 3700 }}|{{ gt (since (index .Alerts 0).StartsAt).Hours 1.0 }}"#;
        assert_eq!(
            t.execute_text(text, &data).unwrap(),
            "2023-11-14 22:13 UTC|17:13 EST|03:43|x|1h 1m 40s|true"
        );
        let e = t.execute_text(
            r#"{{ tz "Nowhere/City" (index .Alerts 0).StartsAt }}"#,
            &data,
        );
        assert!(
            e.unwrap_err()
                .to_string()
                .contains("error calling tz: unknown time zone Nowhere/City")
        );
    }

    #[test]
    fn common_labels_are_shared_values() {
        let a = |v: &str| Alert {
            status: "firing".into(),
            labels: BTreeMap::from([("a".into(), "1".into()), ("b".into(), v.into())]),
            ..Alert::default()
        };
        let d = Data::new("r.x", BTreeMap::new(), vec![a("1"), a("2")], "");
        assert_eq!(d.common_labels, BTreeMap::from([("a".into(), "1".into())]));
        assert_eq!(d.receiver, "r\\.x");
    }
}
