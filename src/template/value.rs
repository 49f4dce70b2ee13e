//! The dynamic values templates work on, standing in for Go's reflected values: strings, numbers,
//! maps with sorted keys, slices, structs, times, and Go's `%v` printing of each.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use super::gotime::{Duration, Time};

/// A value a template reads or computes, typed as Go would type it.
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// Go's invalid `reflect.Value`: a missing map key without `missingkey=zero`. Prints as
    /// `<no value>`.
    #[default]
    Invalid,
    /// A nil interface (JSON `null`, the zero value of `interface{}`). Prints as `<nil>`.
    Nil,
    /// `bool`.
    Bool(bool),
    /// `int` (and Go's other signed integers).
    Int(i64),
    /// `float64`.
    Float(f64),
    /// `string`.
    Str(Arc<str>),
    /// `html/template.HTML`: text marked safe by `safeHtml`, never escaped in HTML output.
    Html(Arc<str>),
    /// `time.Time`.
    Time(Time),
    /// `time.Duration`.
    Duration(Duration),
    /// `time.Month`, 1..=12: an integer that prints as its name (`%d` prints the number).
    Month(u8),
    /// `time.Weekday`, 0 (Sunday)..=6: an integer that prints as its name.
    Weekday(u8),
    /// A slice.
    List(Arc<List>),
    /// A map with string keys, kept sorted as Go's printing sorts them.
    Map(Arc<Map>),
    /// A struct (or a pointer to one) with named fields in declaration order.
    Struct(Arc<Struct>),
}

/// The Go type of a slice, which decides its methods and how errors name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListType {
    /// `[]interface {}` (what JSON arrays decode to).
    Interface,
    /// `[]string`.
    String,
    /// Alertmanager's `template.Pairs`, with `.Names` and `.Values`.
    Pairs,
    /// Alertmanager's `template.Alerts`, with `.Firing` and `.Resolved`.
    Alerts,
    /// `[]template.Alert`, what `.Firing` and `.Resolved` return.
    AlertSlice,
    /// Prometheus's `template.queryResult`, what `query` returns.
    QueryResult,
}

/// The Go type of a map, which decides its methods and the zero value of a missing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapType {
    /// `map[string]interface {}`.
    Interface,
    /// `map[string]string`.
    String,
    /// Alertmanager's `template.KV`, with `.SortedPairs`, `.Names`, `.Values` and `.Remove`.
    Kv,
}

/// A slice and its type.
#[derive(Clone, Debug)]
pub struct List {
    /// The slice's Go type.
    pub ty: ListType,
    /// The elements.
    pub items: Vec<Value>,
}

/// A map with string keys and its type.
#[derive(Clone, Debug)]
pub struct Map {
    /// The map's Go type.
    pub ty: MapType,
    /// The entries, sorted by key as Go prints them.
    pub entries: BTreeMap<String, Value>,
}

/// A struct: its Go type name and its fields in declaration order.
#[derive(Clone, Debug)]
pub struct Struct {
    /// The Go type name, such as `template.Alert`.
    pub ty: &'static str,
    /// Whether the value is a pointer to the struct (printed `&{…}` at top level).
    pub pointer: bool,
    /// Field names and values, in declaration order.
    pub fields: Vec<(&'static str, Value)>,
}

impl Struct {
    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

impl Value {
    /// A `string`.
    pub fn str(s: impl AsRef<str>) -> Value {
        Value::Str(Arc::from(s.as_ref()))
    }

    /// A `map[string]string` from pairs.
    pub fn string_map<K: Into<String>, V: AsRef<str>>(
        ty: MapType,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Value {
        let entries = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), Value::str(v)))
            .collect();
        Value::Map(Arc::new(Map { ty, entries }))
    }

    /// A `[]string`.
    pub fn string_list<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Value {
        Value::list(
            ListType::String,
            items.into_iter().map(Value::str).collect(),
        )
    }

    /// A slice of the given type.
    pub fn list(ty: ListType, items: Vec<Value>) -> Value {
        Value::List(Arc::new(List { ty, items }))
    }

    /// A struct value.
    pub fn structure(ty: &'static str, fields: Vec<(&'static str, Value)>) -> Value {
        Value::Struct(Arc::new(Struct {
            ty,
            pointer: false,
            fields,
        }))
    }

    /// Converts JSON as Go's `encoding/json` decodes into `interface{}`: objects become
    /// `map[string]interface {}`, arrays `[]interface {}`, numbers `float64`.
    pub fn from_json(j: &serde_json::Value) -> Value {
        match j {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::str(s),
            serde_json::Value::Array(a) => Value::list(
                ListType::Interface,
                a.iter().map(Value::from_json).collect(),
            ),
            serde_json::Value::Object(o) => Value::Map(Arc::new(Map {
                ty: MapType::Interface,
                entries: o
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            })),
        }
    }

    /// The Go type name, as `%T` and error messages print it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Invalid => "<invalid reflect.Value>",
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Html(_) => "template.HTML",
            Value::Time(_) => "time.Time",
            Value::Duration(_) => "time.Duration",
            Value::Month(_) => "time.Month",
            Value::Weekday(_) => "time.Weekday",
            Value::List(l) => match l.ty {
                ListType::Interface => "[]interface {}",
                ListType::String => "[]string",
                ListType::Pairs => "template.Pairs",
                ListType::Alerts => "template.Alerts",
                ListType::AlertSlice => "[]template.Alert",
                ListType::QueryResult => "template.queryResult",
            },
            Value::Map(m) => match m.ty {
                MapType::Interface => "map[string]interface {}",
                MapType::String => "map[string]string",
                MapType::Kv => "template.KV",
            },
            Value::Struct(s) => s.ty,
        }
    }

    /// The name a `time.Month` or `time.Weekday` prints as (Go's `String()`), for other values
    /// `None`.
    pub fn calendar_name(&self) -> Option<&'static str> {
        match self {
            Value::Month(m) => Some(super::gotime::month_name(u32::from(*m))),
            Value::Weekday(d) => Some(super::gotime::weekday_name(u32::from(*d))),
            _ => None,
        }
    }

    /// The string inside a `string` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Go's truth: false for zero numbers, empty strings, slices and maps, nil; true otherwise.
    /// `None` where Go cannot decide (never, for these types).
    pub fn truth(&self) -> bool {
        match self {
            Value::Invalid | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) | Value::Html(s) => !s.is_empty(),
            Value::Duration(d) => d.0 != 0,
            Value::Month(n) | Value::Weekday(n) => *n != 0,
            Value::List(l) => !l.items.is_empty(),
            Value::Map(m) => !m.entries.is_empty(),
            Value::Time(_) | Value::Struct(_) => true,
        }
    }

    /// The length `len` reports, for strings (bytes), slices and maps.
    pub fn len(&self) -> Option<usize> {
        match self {
            Value::Str(s) | Value::Html(s) => Some(s.len()),
            Value::List(l) => Some(l.items.len()),
            Value::Map(m) => Some(m.entries.len()),
            _ => None,
        }
    }

    /// How deeply containers nest in this value, counting up to `limit` at most.
    pub fn depth(&self, limit: usize) -> usize {
        if limit == 0 {
            return 0;
        }
        let inner = |items: &mut dyn Iterator<Item = &Value>| {
            items.map(|v| v.depth(limit - 1)).max().unwrap_or(0)
        };
        match self {
            Value::List(l) => 1 + inner(&mut l.items.iter()),
            Value::Map(m) => 1 + inner(&mut m.entries.values()),
            Value::Struct(s) => 1 + inner(&mut s.fields.iter().map(|(_, v)| v)),
            _ => 0,
        }
    }

    /// Whether `len` is zero (or the value has no length).
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::str(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(Arc::from(s))
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

/// Appends `v` as Go's `fmt.Fprint` prints it at top level (`{{ . }}`): pointers to structs are
/// followed, invalid values print `<no value>`.
pub fn print_top(out: &mut String, v: &Value) {
    match v {
        Value::Invalid => out.push_str("<no value>"),
        Value::Str(s) | Value::Html(s) => out.push_str(s),
        Value::Struct(s) if s.pointer => print_struct(out, s, 'v', false),
        _ => print_plain(out, v, 0),
    }
}

/// Appends `v` as `%v` prints it, at nesting depth `depth`.
pub fn print_plain(out: &mut String, v: &Value, depth: usize) {
    print_value(out, v, depth, false);
}

/// Appends `v` as `%+v` prints it: like `%v` with struct field names.
pub fn print_plus(out: &mut String, v: &Value, depth: usize) {
    print_value(out, v, depth, true);
}

/// `%v` (`plus` false) or `%+v` (`plus` true): they differ only in naming struct fields.
fn print_value(out: &mut String, v: &Value, depth: usize, plus: bool) {
    match v {
        Value::Invalid => out.push_str("<invalid reflect.Value>"),
        Value::Nil => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => super::printf::format_float(out, *f, 'g', None),
        Value::Str(s) | Value::Html(s) => out.push_str(s),
        Value::Time(t) => t.write_string(out),
        Value::Duration(d) => d.write_string(out),
        Value::Month(_) | Value::Weekday(_) => out.push_str(v.calendar_name().unwrap_or("")),
        Value::List(l) => {
            out.push('[');
            for (i, item) in l.items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print_value(out, item, depth + 1, plus);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, item)) in m.entries.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                print_value(out, item, depth + 1, plus);
            }
            out.push(']');
        }
        Value::Struct(s) if s.pointer && depth > 0 => out.push_str("0xc000010000"),
        Value::Struct(s) if plus => {
            if s.pointer {
                out.push('&');
            }
            out.push('{');
            for (i, (name, v)) in s.fields.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(name);
                out.push(':');
                print_value(out, v, depth + 1, true);
            }
            out.push('}');
        }
        Value::Struct(s) => {
            if s.pointer {
                out.push('&');
            }
            print_struct(out, s, 'v', false);
        }
    }
}

fn print_struct(out: &mut String, s: &Struct, _verb: char, names: bool) {
    out.push('{');
    for (i, (name, v)) in s.fields.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if names {
            out.push_str(name);
            out.push(':');
        }
        print_plain(out, v, 1);
    }
    out.push('}');
}

/// The string `fmt.Sprint(v)` gives.
pub fn to_display(v: &Value) -> String {
    let mut s = String::new();
    print_top(&mut s, v);
    s
}

#[cfg(test)]
mod size {
    #[test]
    fn values_stay_small() {
        assert!(std::mem::size_of::<super::Value>() <= 32);
    }
}
