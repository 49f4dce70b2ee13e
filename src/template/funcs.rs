//! Go's built-in template functions: `and`, `or`, `not`, `len`, `index`, `slice`, `eq` and the
//! comparisons, `print`, `printf`, `println`, `html`, `js`, `urlquery`, `call`.

use std::fmt::Write as _;

use super::Ty;
use super::printf::{sprint, sprintf, sprintln};
use super::value::{List, ListType, MapType, Value};

/// A built-in function of Go's `text/template`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// `and`.
    And,
    /// `or`.
    Or,
    /// `not`.
    Not,
    /// `len`.
    Len,
    /// `index`.
    Index,
    /// `slice`.
    Slice,
    /// `eq`.
    Eq,
    /// `ne`.
    Ne,
    /// `lt`.
    Lt,
    /// `le`.
    Le,
    /// `gt`.
    Gt,
    /// `ge`.
    Ge,
    /// `print`.
    Print,
    /// `printf`.
    Printf,
    /// `println`.
    Println,
    /// `html`.
    Html,
    /// `js`.
    Js,
    /// `urlquery`.
    Urlquery,
    /// `call`.
    Call,
}

impl Builtin {
    /// The built-in called `name`.
    pub fn from_name(name: &str) -> Option<Builtin> {
        Some(match name {
            "and" => Builtin::And,
            "or" => Builtin::Or,
            "not" => Builtin::Not,
            "len" => Builtin::Len,
            "index" => Builtin::Index,
            "slice" => Builtin::Slice,
            "eq" => Builtin::Eq,
            "ne" => Builtin::Ne,
            "lt" => Builtin::Lt,
            "le" => Builtin::Le,
            "gt" => Builtin::Gt,
            "ge" => Builtin::Ge,
            "print" => Builtin::Print,
            "printf" => Builtin::Printf,
            "println" => Builtin::Println,
            "html" => Builtin::Html,
            "js" => Builtin::Js,
            "urlquery" => Builtin::Urlquery,
            "call" => Builtin::Call,
            _ => return None,
        })
    }

    /// Fixed parameters and the variadic one, as Go declares them.
    pub fn signature(self) -> (&'static [Ty], Option<Ty>) {
        const R1: &[Ty] = &[Ty::Reflect];
        const R2: &[Ty] = &[Ty::Reflect, Ty::Reflect];
        match self {
            Builtin::And
            | Builtin::Or
            | Builtin::Index
            | Builtin::Slice
            | Builtin::Eq
            | Builtin::Call => (R1, Some(Ty::Reflect)),
            Builtin::Not | Builtin::Len => (R1, None),
            Builtin::Ne | Builtin::Lt | Builtin::Le | Builtin::Gt | Builtin::Ge => (R2, None),
            Builtin::Printf => (&[Ty::String], Some(Ty::Any)),
            Builtin::Print | Builtin::Println | Builtin::Html | Builtin::Js | Builtin::Urlquery => {
                (&[], Some(Ty::Any))
            }
        }
    }
}

/// Whether `name` is one of Go's built-ins.
pub fn is_builtin(name: &str) -> bool {
    Builtin::from_name(name).is_some()
}

/// Calls a built-in on evaluated arguments (`and`/`or` are evaluated lazily by the executor).
pub fn call_builtin(b: Builtin, mut args: Vec<Value>) -> Result<Value, String> {
    match b {
        Builtin::And | Builtin::Or => Ok(args.pop().unwrap_or_default()),
        Builtin::Not => Ok(Value::Bool(!args[0].truth())),
        Builtin::Len => length(&args[0]).map(|n| Value::Int(n as i64)),
        Builtin::Index => {
            let item = args.remove(0);
            index(item, &args)
        }
        Builtin::Slice => {
            let item = args.remove(0);
            slice(item, &args)
        }
        Builtin::Eq => {
            let a = args.remove(0);
            eq(&a, &args).map(Value::Bool)
        }
        Builtin::Ne => eq(&args[0], &args[1..]).map(|b| Value::Bool(!b)),
        Builtin::Lt => lt(&args[0], &args[1]).map(Value::Bool),
        Builtin::Le => le(&args[0], &args[1]).map(Value::Bool),
        Builtin::Gt => le(&args[0], &args[1]).map(|b| Value::Bool(!b)),
        Builtin::Ge => lt(&args[0], &args[1]).map(|b| Value::Bool(!b)),
        Builtin::Print => Ok(Value::from(sprint(&args))),
        Builtin::Println => Ok(Value::from(sprintln(&args))),
        Builtin::Printf => {
            let format = args.remove(0);
            Ok(Value::from(sprintf(format.as_str().unwrap_or(""), &args)))
        }
        Builtin::Html => Ok(Value::from(html_escape(&eval_args(args)))),
        Builtin::Js => Ok(Value::from(js_escape(&eval_args(args)))),
        Builtin::Urlquery => Ok(Value::from(query_escape(&eval_args(args)))),
        Builtin::Call => match args.first() {
            None | Some(Value::Invalid | Value::Nil) => Err("call of nil".into()),
            Some(v) => Err(format!("non-function of type {}", v.type_name())),
        },
    }
}

/// Go's `evalArgs`: a lone string as is, otherwise `fmt.Sprint` of the printable values.
pub fn eval_args(args: Vec<Value>) -> String {
    if let [Value::Str(s)] = args.as_slice() {
        return s.to_string();
    }
    let args: Vec<Value> = args
        .into_iter()
        .map(|a| match a {
            Value::Invalid | Value::Nil => Value::str("<no value>"),
            a => a,
        })
        .collect();
    sprint(&args)
}

fn length(v: &Value) -> Result<usize, String> {
    match v {
        Value::Invalid => Err("reflect: call of reflect.Value.Type on zero Value".into()),
        Value::Nil => Err("len of nil pointer".into()),
        v => v
            .len()
            .ok_or_else(|| format!("len of type {}", v.type_name())),
    }
}

fn index_arg(index: &Value, cap: usize) -> Result<usize, String> {
    let x = match index {
        Value::Int(i) => *i,
        Value::Duration(d) => d.0,
        Value::Month(n) | Value::Weekday(n) => i64::from(*n),
        Value::Invalid | Value::Nil => return Err("cannot index slice/array with nil".into()),
        v => {
            return Err(format!(
                "cannot index slice/array with type {}",
                v.type_name()
            ));
        }
    };
    if x < 0 || x as u64 > cap as u64 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

fn index(mut item: Value, indexes: &[Value]) -> Result<Value, String> {
    if matches!(item, Value::Invalid | Value::Nil) {
        return Err("index of untyped nil".into());
    }
    for ix in indexes {
        item = match &item {
            Value::Str(s) => {
                let x = index_arg(ix, s.len())?;
                match s.as_bytes().get(x) {
                    Some(b) => Value::Int(i64::from(*b)),
                    None => return Err("reflect: string index out of range".into()),
                }
            }
            Value::List(l) => {
                let x = index_arg(ix, l.items.len())?;
                match l.items.get(x) {
                    Some(v) => v.clone(),
                    None => return Err("reflect: slice index out of range".into()),
                }
            }
            Value::Map(m) => {
                let key = match ix {
                    Value::Str(s) => s.clone(),
                    Value::Invalid => return Err("value is nil; should be of type string".into()),
                    v => {
                        return Err(format!(
                            "value has type {}; should be string",
                            v.type_name()
                        ));
                    }
                };
                match m.entries.get(&*key) {
                    Some(v) => v.clone(),
                    None => match m.ty {
                        MapType::Interface => Value::Nil,
                        _ => Value::str(""),
                    },
                }
            }
            Value::Nil => return Err("index of nil pointer".into()),
            v => return Err(format!("can't index item of type {}", v.type_name())),
        };
    }
    Ok(item)
}

fn slice(item: Value, indexes: &[Value]) -> Result<Value, String> {
    if matches!(item, Value::Invalid | Value::Nil) {
        return Err("slice of untyped nil".into());
    }
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let len = match &item {
        Value::Str(s) => {
            if indexes.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            s.len()
        }
        Value::List(l) => l.items.len(),
        v => return Err(format!("can't slice item of type {}", v.type_name())),
    };
    let mut idx = [0, len, len];
    for (i, ix) in indexes.iter().enumerate() {
        idx[i] = index_arg(ix, len)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    match item {
        Value::Str(s) => match s.get(idx[0]..idx[1]) {
            Some(sub) => Ok(Value::str(sub)),
            None => Ok(Value::from(
                String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]]).into_owned(),
            )),
        },
        Value::List(l) => Ok(Value::List(std::sync::Arc::new(List {
            ty: l.ty,
            items: l.items[idx[0]..idx[1]].to_vec(),
        }))),
        _ => Ok(Value::Invalid),
    }
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    String,
}

fn basic_kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::Duration(_) | Value::Month(_) | Value::Weekday(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::Str(_) | Value::Html(_) => Kind::String,
        _ => Kind::Invalid,
    }
}

fn int_of(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Duration(d) => d.0,
        Value::Month(n) | Value::Weekday(n) => i64::from(*n),
        _ => 0,
    }
}

fn str_of(v: &Value) -> &str {
    match v {
        Value::Str(s) | Value::Html(s) => s,
        _ => "",
    }
}

fn is_zero(v: &Value) -> bool {
    matches!(v, Value::Invalid | Value::Nil)
}

fn eq(a: &Value, others: &[Value]) -> Result<bool, String> {
    if others.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let k1 = basic_kind(a);
    for b in others {
        let k2 = basic_kind(b);
        let truth = if k1 != k2 {
            if !is_zero(a) && !is_zero(b) {
                return Err("incompatible types for comparison".into());
            }
            false
        } else {
            match k1 {
                Kind::Bool => matches!((a, b), (Value::Bool(x), Value::Bool(y)) if x == y),
                Kind::Int => int_of(a) == int_of(b),
                Kind::Float => matches!((a, b), (Value::Float(x), Value::Float(y)) if x == y),
                Kind::String => str_of(a) == str_of(b),
                Kind::Invalid => {
                    if is_zero(a) || is_zero(b) {
                        is_zero(a) == is_zero(b)
                    } else {
                        match (a, b) {
                            (Value::Time(x), Value::Time(y)) => x == y,
                            (Value::List(_) | Value::Map(_), _)
                            | (_, Value::List(_) | Value::Map(_)) => {
                                let mut s = String::new();
                                super::value::print_plain(&mut s, b, 0);
                                return Err(format!("non-comparable type {s}: {}", b.type_name()));
                            }
                            (Value::Struct(x), Value::Struct(y)) => std::sync::Arc::ptr_eq(x, y),
                            _ => false,
                        }
                    }
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn lt(a: &Value, b: &Value) -> Result<bool, String> {
    let k1 = basic_kind(a);
    let k2 = basic_kind(b);
    if k1 == Kind::Invalid || k2 == Kind::Invalid {
        return Err("invalid type for comparison".into());
    }
    if k1 != k2 {
        return Err("incompatible types for comparison".into());
    }
    Ok(match k1 {
        Kind::Bool | Kind::Invalid => return Err("invalid type for comparison".into()),
        Kind::Float => matches!((a, b), (Value::Float(x), Value::Float(y)) if x < y),
        Kind::Int => int_of(a) < int_of(b),
        Kind::String => str_of(a) < str_of(b),
    })
}

fn le(a: &Value, b: &Value) -> Result<bool, String> {
    if lt(a, b)? {
        return Ok(true);
    }
    eq(a, std::slice::from_ref(b))
}

/// Go's `template.HTMLEscapeString`.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
pub fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u00{:02X}", c as u32);
            }
            c if (c as u32) >= 0x80 && (c.is_control() || c == '\u{2028}' || c == '\u{2029}') => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// A `[]interface {}` of values.
pub fn interface_list(items: Vec<Value>) -> Value {
    Value::list(ListType::Interface, items)
}
