//! Methods templates call on data: Alertmanager's `KV`, `Pairs` and `Alerts`, and Go's
//! `time.Time` and `time.Duration`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Ty;
use super::gotime::Duration;
use super::value::{ListType, Map, MapType, Value};

/// A method: its parameters and its implementation, given the receiver.
#[derive(Clone, Copy)]
pub struct Method {
    /// Parameter types.
    pub params: &'static [Ty],
    /// The implementation.
    pub call: fn(&Value, Vec<Value>) -> Result<Value, String>,
}

const NONE: &[Ty] = &[];

fn m(
    params: &'static [Ty],
    call: fn(&Value, Vec<Value>) -> Result<Value, String>,
) -> Option<Method> {
    Some(Method { params, call })
}

/// The method `name` of `receiver`'s type, if it has one.
pub fn lookup(receiver: &Value, name: &str) -> Option<Method> {
    match receiver {
        Value::Map(map) if map.ty == MapType::Kv => match name {
            "SortedPairs" => m(NONE, |r, _| Ok(sorted_pairs(r))),
            "Names" => m(NONE, |r, _| Ok(pair_part(&sorted_pairs(r), "Name"))),
            "Values" => m(NONE, |r, _| Ok(pair_part(&sorted_pairs(r), "Value"))),
            "Remove" => m(&[Ty::StringSlice], |r, a| Ok(remove(r, &a[0]))),
            _ => None,
        },
        Value::List(l) if l.ty == ListType::Pairs => match name {
            "Names" => m(NONE, |r, _| Ok(pair_part(r, "Name"))),
            "Values" => m(NONE, |r, _| Ok(pair_part(r, "Value"))),
            _ => None,
        },
        Value::List(l) if l.ty == ListType::Alerts => match name {
            "Firing" => m(NONE, |r, _| Ok(alerts_with_status(r, "firing"))),
            "Resolved" => m(NONE, |r, _| Ok(alerts_with_status(r, "resolved"))),
            _ => None,
        },
        Value::Time(_) => time_method(name),
        Value::Month(_) | Value::Weekday(_) if name == "String" => m(NONE, |r, _| {
            Ok(Value::str(r.calendar_name().unwrap_or_default()))
        }),
        Value::Duration(_) => duration_method(name),
        _ => None,
    }
}

fn sorted_pairs(r: &Value) -> Value {
    let Value::Map(map) = r else {
        return Value::list(ListType::Pairs, vec![]);
    };
    let mut items = Vec::with_capacity(map.entries.len());
    let pair = |k: &str, v: &Value| {
        Value::structure(
            "template.Pair",
            vec![("Name", Value::str(k)), ("Value", v.clone())],
        )
    };
    if let Some(v) = map.entries.get("alertname") {
        items.push(pair("alertname", v));
    }
    for (k, v) in &map.entries {
        if k != "alertname" {
            items.push(pair(k, v));
        }
    }
    Value::list(ListType::Pairs, items)
}

fn pair_part(r: &Value, field: &str) -> Value {
    let Value::List(l) = r else {
        return Value::list(ListType::String, vec![]);
    };
    let items = l
        .items
        .iter()
        .map(|p| match p {
            Value::Struct(s) => s.field(field).cloned().unwrap_or_default(),
            _ => Value::Invalid,
        })
        .collect();
    Value::list(ListType::String, items)
}

fn remove(r: &Value, keys: &Value) -> Value {
    let Value::Map(map) = r else {
        return r.clone();
    };
    let drop: Vec<&str> = match keys {
        Value::List(l) => l.items.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let entries: BTreeMap<String, Value> = map
        .entries
        .iter()
        .filter(|(k, _)| !drop.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Map(Arc::new(Map {
        ty: MapType::Kv,
        entries,
    }))
}

fn alerts_with_status(r: &Value, status: &str) -> Value {
    let Value::List(l) = r else {
        return Value::list(ListType::AlertSlice, vec![]);
    };
    let items = l
        .items
        .iter()
        .filter(|a| match a {
            Value::Struct(s) => s.field("Status").and_then(Value::as_str) == Some(status),
            _ => false,
        })
        .cloned()
        .collect();
    Value::list(ListType::AlertSlice, items)
}

fn time_of(v: &Value) -> &super::gotime::Time {
    match v {
        Value::Time(t) => t,
        _ => unreachable_time(),
    }
}

fn unreachable_time() -> &'static super::gotime::Time {
    static ZERO: std::sync::OnceLock<super::gotime::Time> = std::sync::OnceLock::new();
    ZERO.get_or_init(|| super::gotime::Time::utc(-62_135_596_800, 0))
}

fn time_method(name: &str) -> Option<Method> {
    match name {
        "Format" => m(&[Ty::String], |r, a| {
            Ok(Value::from(time_of(r).format(a[0].as_str().unwrap_or(""))))
        }),
        "String" => m(NONE, |r, _| {
            let mut s = String::new();
            time_of(r).write_string(&mut s);
            Ok(Value::from(s))
        }),
        "Unix" => m(NONE, |r, _| Ok(Value::Int(time_of(r).secs))),
        "UnixMilli" => m(NONE, |r, _| {
            Ok(Value::Int((time_of(r).unix_nanos() / 1_000_000) as i64))
        }),
        "UnixMicro" => m(NONE, |r, _| {
            Ok(Value::Int((time_of(r).unix_nanos() / 1_000) as i64))
        }),
        "UnixNano" => m(NONE, |r, _| Ok(Value::Int(time_of(r).unix_nanos() as i64))),
        "Year" => m(NONE, |r, _| Ok(Value::Int(time_of(r).civil().year))),
        "Month" => m(NONE, |r, _| {
            Ok(Value::Month(time_of(r).civil().month as u8))
        }),
        "Day" => m(NONE, |r, _| {
            Ok(Value::Int(i64::from(time_of(r).civil().day)))
        }),
        "YearDay" => m(NONE, |r, _| {
            Ok(Value::Int(i64::from(time_of(r).civil().yday)))
        }),
        "Weekday" => m(NONE, |r, _| {
            Ok(Value::Weekday(time_of(r).civil().weekday as u8))
        }),
        "Hour" => m(NONE, |r, _| {
            Ok(Value::Int(i64::from(time_of(r).civil().hour)))
        }),
        "Minute" => m(NONE, |r, _| {
            Ok(Value::Int(i64::from(time_of(r).civil().min)))
        }),
        "Second" => m(NONE, |r, _| {
            Ok(Value::Int(i64::from(time_of(r).civil().sec)))
        }),
        "Nanosecond" => m(NONE, |r, _| Ok(Value::Int(i64::from(time_of(r).nanos)))),
        "IsZero" => m(NONE, |r, _| Ok(Value::Bool(time_of(r).is_zero()))),
        "UTC" => m(NONE, |r, _| {
            let t = time_of(r);
            Ok(Value::Time(super::gotime::Time::utc(t.secs, t.nanos)))
        }),
        "Local" => m(NONE, |r, _| {
            let t = time_of(r);
            let mut l = super::gotime::Time::utc(t.secs, t.nanos);
            l.zone = Arc::new(super::gotime::Zone {
                abbr: "UTC".into(),
                location: "Local".into(),
            });
            Ok(Value::Time(l))
        }),
        "Location" => m(NONE, |r, _| {
            let t = time_of(r);
            Ok(Value::str(&t.zone.location))
        }),
        "Add" => m(&[Ty::Duration], |r, a| match &a[0] {
            Value::Duration(d) => Ok(Value::Time(time_of(r).add(*d))),
            _ => Err("bad duration".into()),
        }),
        "Sub" => m(&[Ty::Time], |r, a| match &a[0] {
            Value::Time(u) => {
                let d = time_of(r).unix_nanos() - u.unix_nanos();
                Ok(Value::Duration(Duration(
                    d.clamp(i64::MIN.into(), i64::MAX.into()) as i64,
                )))
            }
            _ => Err("bad time".into()),
        }),
        "Before" => m(&[Ty::Time], |r, a| match &a[0] {
            Value::Time(u) => Ok(Value::Bool(time_of(r).unix_nanos() < u.unix_nanos())),
            _ => Err("bad time".into()),
        }),
        "After" => m(&[Ty::Time], |r, a| match &a[0] {
            Value::Time(u) => Ok(Value::Bool(time_of(r).unix_nanos() > u.unix_nanos())),
            _ => Err("bad time".into()),
        }),
        "Round" => m(&[Ty::Duration], |r, a| {
            Ok(Value::Time(time_of(r).round(Duration(dur_of(&a[0])))))
        }),
        "Truncate" => m(&[Ty::Duration], |r, a| {
            Ok(Value::Time(time_of(r).truncate(Duration(dur_of(&a[0])))))
        }),
        "Equal" => m(&[Ty::Time], |r, a| match &a[0] {
            Value::Time(u) => Ok(Value::Bool(time_of(r).unix_nanos() == u.unix_nanos())),
            _ => Err("bad time".into()),
        }),
        _ => None,
    }
}

fn dur_of(v: &Value) -> i64 {
    match v {
        Value::Duration(d) => d.0,
        _ => 0,
    }
}

fn duration_method(name: &str) -> Option<Method> {
    match name {
        "String" => m(NONE, |r, _| {
            let mut s = String::new();
            Duration(dur_of(r)).write_string(&mut s);
            Ok(Value::from(s))
        }),
        "Hours" => m(NONE, |r, _| {
            let d = dur_of(r);
            Ok(Value::Float(
                (d / 3_600_000_000_000) as f64 + (d % 3_600_000_000_000) as f64 / 3.6e12,
            ))
        }),
        "Minutes" => m(NONE, |r, _| {
            let d = dur_of(r);
            Ok(Value::Float(
                (d / 60_000_000_000) as f64 + (d % 60_000_000_000) as f64 / 6e10,
            ))
        }),
        "Seconds" => m(NONE, |r, _| Ok(Value::Float(Duration(dur_of(r)).seconds()))),
        "Milliseconds" => m(NONE, |r, _| Ok(Value::Int(dur_of(r) / 1_000_000))),
        "Microseconds" => m(NONE, |r, _| Ok(Value::Int(dur_of(r) / 1_000))),
        "Nanoseconds" => m(NONE, |r, _| Ok(Value::Int(dur_of(r)))),
        "Abs" => m(NONE, |r, _| {
            Ok(Value::Duration(Duration(
                dur_of(r).checked_abs().unwrap_or(i64::MAX),
            )))
        }),
        "Round" => m(&[Ty::Duration], |r, a| {
            Ok(Value::Duration(
                Duration(dur_of(r)).round(Duration(dur_of(&a[0]))),
            ))
        }),
        "Truncate" => m(&[Ty::Duration], |r, a| {
            Ok(Value::Duration(
                Duration(dur_of(r)).truncate(Duration(dur_of(&a[0]))),
            ))
        }),
        _ => None,
    }
}
