//! Go's `fmt` for template values: `printf` verbs, flags, widths, precisions and argument
//! indexes, `print`/`println` spacing, and `strconv`'s float formatting (`%g` shortest, `%e`).

use std::fmt::Write as _;

use super::value::{ListType, MapType, Value};

/// Appends `f` formatted as Go's `strconv.FormatFloat(f, verb, prec, 64)` does for the verbs
/// `e`, `E`, `f`, `g` and `G`; `prec` `None` is the shortest representation that round-trips.
pub fn format_float(out: &mut String, f: f64, verb: char, prec: Option<usize>) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    let neg = f.is_sign_negative();
    let a = f.abs();
    if verb == 'f' || verb == 'F' {
        if neg {
            out.push('-');
        }
        match prec {
            Some(p) => {
                let _ = write!(out, "{a:.p$}");
            }
            None => {
                let d = Digits::shortest(a);
                let p = (d.nd() as i32 - d.dp).max(0) as usize;
                fmt_f(out, &d, p);
            }
        }
        return;
    }
    let upper = verb == 'E' || verb == 'G';
    let d = match (verb, prec) {
        (_, None) => Digits::shortest(a),
        ('e' | 'E', Some(p)) => Digits::significant(a, p + 1),
        (_, Some(p)) => Digits::significant(a, p.max(1)),
    };
    if neg {
        out.push('-');
    }
    let e = if upper { 'E' } else { 'e' };
    match verb {
        'e' | 'E' => {
            let p = prec.unwrap_or(d.nd().saturating_sub(1));
            fmt_e(out, &d, p, e);
        }
        _ => {
            let shortest = prec.is_none();
            let mut p = match prec {
                None => d.nd(),
                Some(p) => p.max(1),
            } as i32;
            let mut eprec = p;
            let nd = d.nd() as i32;
            if eprec > nd && nd >= d.dp {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exp = d.dp - 1;
            if exp < -4 || exp >= eprec {
                if p > nd {
                    p = nd;
                }
                fmt_e(out, &d, (p - 1).max(0) as usize, e);
            } else {
                if p > d.dp {
                    p = nd;
                }
                fmt_f(out, &d, (p - d.dp).max(0) as usize);
            }
        }
    }
}

/// Decimal digits of a non-negative float without trailing zeros, with the decimal point
/// position: value = 0.d1d2d3… × 10^dp.
struct Digits {
    d: Vec<u8>,
    dp: i32,
}

impl Digits {
    fn nd(&self) -> usize {
        self.d.len()
    }

    fn parse(s: &str) -> Digits {
        // s is Rust's `{:e}` output: "d.ddde±x" or "de±x".
        let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
        while d.last() == Some(&b'0') {
            d.pop();
        }
        if d.is_empty() {
            return Digits { d, dp: 0 };
        }
        Digits { d, dp: exp + 1 }
    }

    fn shortest(a: f64) -> Digits {
        if a == 0.0 {
            return Digits { d: vec![], dp: 0 };
        }
        Digits::parse(&format!("{a:e}"))
    }

    fn significant(a: f64, n: usize) -> Digits {
        if a == 0.0 {
            return Digits { d: vec![], dp: 0 };
        }
        let n = n.clamp(1, 800);
        Digits::parse(&format!("{:.*e}", n - 1, a))
    }
}

fn fmt_e(out: &mut String, d: &Digits, prec: usize, e: char) {
    out.push(*d.d.first().unwrap_or(&b'0') as char);
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(*d.d.get(i).unwrap_or(&b'0') as char);
        }
    }
    out.push(e);
    let mut exp = if d.d.is_empty() { 0 } else { d.dp - 1 };
    if exp < 0 {
        out.push('-');
        exp = -exp;
    } else {
        out.push('+');
    }
    if exp < 10 {
        out.push('0');
    }
    let _ = write!(out, "{exp}");
}

fn fmt_f(out: &mut String, d: &Digits, prec: usize) {
    if d.dp > 0 {
        let m = d.nd().min(d.dp as usize);
        for &c in &d.d[..m] {
            out.push(c as char);
        }
        for _ in m..d.dp as usize {
            out.push('0');
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 0..prec as i32 {
            let j = d.dp + i;
            let c = if j >= 0 && (j as usize) < d.nd() {
                d.d[j as usize]
            } else {
                b'0'
            };
            out.push(c as char);
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
    wid: Option<usize>,
    prec: Option<usize>,
}

struct Printer {
    buf: String,
    f: Flags,
    /// Printing a bad verb's operand, where Go calls no `String` method.
    erroring: bool,
}

/// Go's `fmt.Sprintf`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut p = Printer {
        buf: String::with_capacity(format.len() + 16),
        f: Flags::default(),
        erroring: false,
    };
    p.do_printf(format, args);
    p.buf
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut p = Printer {
        buf: String::new(),
        f: Flags::default(),
        erroring: false,
    };
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Value::Str(_) | Value::Html(_));
        if i > 0 && !is_string && !prev_string {
            p.buf.push(' ');
        }
        p.print_arg(a, 'v', 0);
        prev_string = is_string;
    }
    p.buf
}

/// Go's `fmt.Sprintln`: operands separated by spaces, then a newline.
pub fn sprintln(args: &[Value]) -> String {
    let mut p = Printer {
        buf: String::new(),
        f: Flags::default(),
        erroring: false,
    };
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            p.buf.push(' ');
        }
        p.print_arg(a, 'v', 0);
    }
    p.buf.push('\n');
    p.buf
}

fn parse_num(s: &[u8], mut i: usize) -> (Option<usize>, usize) {
    let start = i;
    let mut n: usize = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if n > 1_000_000 {
            return (None, s.len());
        }
        n = n * 10 + (s[i] - b'0') as usize;
        i += 1;
    }
    if i == start { (None, i) } else { (Some(n), i) }
}

impl Printer {
    fn arg_number(
        &mut self,
        arg_num: usize,
        s: &[u8],
        i: usize,
        nargs: usize,
        good: &mut bool,
        reordered: &mut bool,
    ) -> (usize, usize, bool) {
        if i >= s.len() || s[i] != b'[' {
            return (arg_num, i, false);
        }
        *reordered = true;
        // parseArgNumber
        let rest = &s[i..];
        let (index, wid, ok) = 'p: {
            if rest.len() < 3 {
                break 'p (0i64, 1, false);
            }
            for j in 1..rest.len() {
                if rest[j] == b']' {
                    let (n, ni) = parse_num(rest, 1);
                    match n {
                        Some(n) if ni == j => break 'p (n as i64 - 1, j + 1, true),
                        _ => break 'p (0, j + 1, false),
                    }
                }
            }
            (0, 1, false)
        };
        if ok && index >= 0 && (index as usize) < nargs {
            return (index as usize, i + wid, true);
        }
        *good = false;
        (arg_num, i + wid, ok)
    }

    fn do_printf(&mut self, format: &str, a: &[Value]) {
        let s = format.as_bytes();
        let end = s.len();
        let mut arg_num = 0;
        let mut reordered = false;
        let mut i = 0;
        while i < end {
            let mut good = true;
            let lasti = i;
            while i < end && s[i] != b'%' {
                i += 1;
            }
            self.buf.push_str(&format[lasti..i]);
            if i >= end {
                break;
            }
            i += 1;
            self.f = Flags::default();
            while i < end {
                match s[i] {
                    b'#' => self.f.sharp = true,
                    b'0' => self.f.zero = !self.f.minus,
                    b'+' => self.f.plus = true,
                    b'-' => {
                        self.f.minus = true;
                        self.f.zero = false;
                    }
                    b' ' => self.f.space = true,
                    _ => break,
                }
                i += 1;
            }
            let mut after_index;
            (arg_num, i, after_index) =
                self.arg_number(arg_num, s, i, a.len(), &mut good, &mut reordered);
            if i < end && s[i] == b'*' {
                i += 1;
                match a.get(arg_num) {
                    Some(Value::Int(n)) if n.unsigned_abs() <= 1_000_000 => {
                        let n = *n;
                        if n < 0 {
                            self.f.minus = true;
                            self.f.zero = false;
                        }
                        self.f.wid = Some(n.unsigned_abs() as usize);
                    }
                    _ => self.buf.push_str("%!(BADWIDTH)"),
                }
                if arg_num < a.len() {
                    arg_num += 1;
                }
                after_index = false;
            } else {
                let (w, ni) = parse_num(s, i);
                self.f.wid = w;
                i = ni;
                if after_index && w.is_some() {
                    good = false;
                }
            }
            if i + 1 < end && s[i] == b'.' {
                i += 1;
                if after_index {
                    good = false;
                }
                (arg_num, i, after_index) =
                    self.arg_number(arg_num, s, i, a.len(), &mut good, &mut reordered);
                if i < end && s[i] == b'*' {
                    i += 1;
                    match a.get(arg_num) {
                        Some(Value::Int(n)) if n.unsigned_abs() <= 1_000_000 => {
                            self.f.prec = if *n < 0 { None } else { Some(*n as usize) };
                            if *n < 0 {
                                self.buf.push_str("%!(BADPREC)");
                            }
                        }
                        _ => self.buf.push_str("%!(BADPREC)"),
                    }
                    if arg_num < a.len() {
                        arg_num += 1;
                    }
                    after_index = false;
                } else {
                    let (p, ni) = parse_num(s, i);
                    self.f.prec = Some(p.unwrap_or(0));
                    i = ni;
                }
            }
            if !after_index {
                (arg_num, i, _) =
                    self.arg_number(arg_num, s, i, a.len(), &mut good, &mut reordered);
            }
            if i >= end {
                self.buf.push_str("%!(NOVERB)");
                break;
            }
            let verb = format[i..].chars().next().unwrap_or('?');
            i += verb.len_utf8();
            if verb == '%' {
                self.buf.push('%');
            } else if !good {
                let _ = write!(self.buf, "%!{verb}(BADINDEX)");
            } else if arg_num >= a.len() {
                let _ = write!(self.buf, "%!{verb}(MISSING)");
            } else {
                if verb == 'v' {
                    self.f.sharp_v = self.f.sharp;
                    self.f.sharp = false;
                    self.f.plus_v = self.f.plus;
                    self.f.plus = false;
                }
                self.print_arg(&a[arg_num], verb, 0);
                arg_num += 1;
            }
        }
        if !reordered && arg_num < a.len() {
            self.f = Flags::default();
            self.buf.push_str("%!(EXTRA ");
            for (k, arg) in a[arg_num..].iter().enumerate() {
                if k > 0 {
                    self.buf.push_str(", ");
                }
                if matches!(arg, Value::Nil | Value::Invalid) {
                    self.buf.push_str("<nil>");
                } else {
                    self.buf.push_str(arg.type_name());
                    self.buf.push('=');
                    self.print_arg(arg, 'v', 0);
                }
            }
            self.buf.push(')');
        }
    }

    fn pad(&mut self, s: &str) {
        let Some(wid) = self.f.wid.filter(|w| *w > 0) else {
            self.buf.push_str(s);
            return;
        };
        let n = s.chars().count();
        if n >= wid {
            self.buf.push_str(s);
            return;
        }
        let padc = if self.f.zero { '0' } else { ' ' };
        if self.f.minus {
            self.buf.push_str(s);
            for _ in n..wid {
                self.buf.push(' ');
            }
        } else {
            for _ in n..wid {
                self.buf.push(padc);
            }
            self.buf.push_str(s);
        }
    }

    fn bad_verb(&mut self, verb: char, v: &Value) {
        let _ = write!(self.buf, "%!{verb}(");
        match v {
            Value::Nil | Value::Invalid => self.buf.push_str("<nil>"),
            _ => {
                self.buf.push_str(v.type_name());
                self.buf.push('=');
                let saved = self.f;
                self.f.sharp_v = false;
                self.f.plus_v = false;
                self.erroring = true;
                self.print_arg(v, 'v', 0);
                self.erroring = false;
                self.f = saved;
            }
        }
        self.buf.push(')');
    }

    fn print_arg(&mut self, v: &Value, verb: char, depth: usize) {
        if verb == 'T' {
            let t = v.type_name();
            self.pad(t);
            return;
        }
        match v {
            Value::Invalid | Value::Nil => {
                if depth > 0 && self.f.sharp_v {
                    self.buf.push_str("interface {}(nil)");
                } else if verb == 'v' {
                    self.pad("<nil>");
                } else {
                    self.bad_verb(verb, v);
                }
            }
            Value::Bool(b) => match verb {
                't' | 'v' => self.pad(if *b { "true" } else { "false" }),
                _ => self.bad_verb(verb, v),
            },
            Value::Int(n) => self.fmt_int(*n, verb, v),
            Value::Float(x) => self.fmt_float(*x, verb, v),
            Value::Str(s) => self.fmt_string(s, verb, v, false),
            Value::Html(s) => self.fmt_string(s, verb, v, true),
            Value::Time(t) => match verb {
                'v' | 's' | 'q' | 'x' | 'X' if !self.f.sharp_v => {
                    let mut s = String::new();
                    t.write_string(&mut s);
                    self.fmt_string(&s, verb, v, false)
                }
                _ => self.bad_verb(verb, v),
            },
            Value::Duration(d) => match verb {
                'v' | 's' | 'q' | 'x' | 'X' if !self.f.sharp_v && !self.erroring => {
                    let mut s = String::new();
                    d.write_string(&mut s);
                    self.fmt_string(&s, verb, v, false)
                }
                _ => self.fmt_int(d.0, verb, v),
            },
            Value::Month(n) | Value::Weekday(n) => match v.calendar_name() {
                Some(name)
                    if matches!(verb, 'v' | 's' | 'q' | 'x' | 'X')
                        && !self.f.sharp_v
                        && !self.erroring =>
                {
                    self.fmt_string(name, verb, v, false)
                }
                _ => self.fmt_int(i64::from(*n), verb, v),
            },
            Value::List(l) => {
                if self.f.sharp_v {
                    self.buf.push_str(v.type_name());
                    if l.items.is_empty() && l.ty == ListType::Interface {
                        self.buf.push_str("{}");
                        return;
                    }
                    self.buf.push('{');
                    for (i, item) in l.items.iter().enumerate() {
                        if i > 0 {
                            self.buf.push_str(", ");
                        }
                        self.print_arg(item, verb, depth + 1);
                    }
                    self.buf.push('}');
                } else {
                    self.buf.push('[');
                    for (i, item) in l.items.iter().enumerate() {
                        if i > 0 {
                            self.buf.push(' ');
                        }
                        self.print_arg(item, verb, depth + 1);
                    }
                    self.buf.push(']');
                }
            }
            Value::Map(m) => {
                if self.f.sharp_v {
                    self.buf.push_str(v.type_name());
                    self.buf.push('{');
                } else {
                    self.buf.push_str("map[");
                }
                for (i, (k, item)) in m.entries.iter().enumerate() {
                    if i > 0 {
                        self.buf.push_str(if self.f.sharp_v { ", " } else { " " });
                    }
                    self.fmt_string(k, verb, &Value::str(k), false);
                    self.buf.push(':');
                    let item = match (m.ty, item) {
                        (MapType::Interface, _) => item.clone(),
                        _ => item.clone(),
                    };
                    self.print_arg(&item, verb, depth + 1);
                }
                self.buf.push(if self.f.sharp_v { '}' } else { ']' });
            }
            Value::Struct(s) => {
                if s.pointer && depth > 0 {
                    self.buf.push_str("0xc000010000");
                    return;
                }
                if s.pointer {
                    self.buf.push('&');
                }
                if self.f.sharp_v {
                    self.buf.push_str(s.ty.trim_start_matches('*'));
                }
                self.buf.push('{');
                for (i, (name, item)) in s.fields.iter().enumerate() {
                    if i > 0 {
                        self.buf.push_str(if self.f.sharp_v { ", " } else { " " });
                    }
                    if self.f.plus_v || self.f.sharp_v {
                        self.buf.push_str(name);
                        self.buf.push(':');
                    }
                    self.print_arg(item, verb, depth + 1);
                }
                self.buf.push('}');
            }
        }
    }

    fn fmt_string(&mut self, s: &str, verb: char, v: &Value, html: bool) {
        let s = match self.f.prec {
            Some(p) if matches!(verb, 'v' | 's' | 'q' | 'x' | 'X') => {
                match s.char_indices().nth(p) {
                    Some((i, _)) => &s[..i],
                    None => s,
                }
            }
            _ => s,
        };
        match verb {
            'v' if self.f.sharp_v => {
                let q = quote(s, false);
                if html {
                    let w = format!("\"{}\"", &q[1..q.len() - 1]);
                    self.pad(&w);
                } else {
                    self.pad(&q);
                }
            }
            'v' | 's' => self.pad(s),
            'q' => {
                if self.f.sharp
                    && !s.contains('`')
                    && !s.chars().any(|c| c.is_control() && c != '\t')
                {
                    let q = format!("`{s}`");
                    self.pad(&q);
                } else {
                    let q = quote(s, self.f.plus);
                    self.pad(&q);
                }
            }
            'x' | 'X' => {
                let mut out = String::new();
                for (i, b) in s.bytes().enumerate() {
                    if i > 0 && self.f.space {
                        out.push(' ');
                    }
                    if self.f.sharp && (i == 0 || self.f.space) {
                        out.push_str(if verb == 'x' { "0x" } else { "0X" });
                    }
                    if verb == 'x' {
                        let _ = write!(out, "{b:02x}");
                    } else {
                        let _ = write!(out, "{b:02X}");
                    }
                }
                self.pad(&out);
            }
            _ => self.bad_verb(verb, v),
        }
    }

    fn fmt_int(&mut self, n: i64, verb: char, v: &Value) {
        let (base, upper) = match verb {
            'v' | 'd' => (10, false),
            'b' => (2, false),
            'o' | 'O' => (8, false),
            'x' => (16, false),
            'X' => (16, true),
            'c' => {
                let c = char::from_u32(n as u32).unwrap_or('\u{FFFD}');
                let s = c.to_string();
                self.pad(&s);
                return;
            }
            'q' => {
                let c = char::from_u32(n as u32).unwrap_or('\u{FFFD}');
                let s = quote_rune(c);
                self.pad(&s);
                return;
            }
            'U' => {
                let mut s = format!("U+{:04X}", n as u32);
                if self.f.sharp
                    && let Some(c) = char::from_u32(n as u32)
                    && !c.is_control()
                {
                    let _ = write!(s, " '{c}'");
                }
                self.pad(&s);
                return;
            }
            _ => return self.bad_verb(verb, v),
        };
        let negative = n < 0;
        let u = n.unsigned_abs();
        let mut digits = match base {
            2 => format!("{u:b}"),
            8 => format!("{u:o}"),
            16 if upper => format!("{u:X}"),
            16 => format!("{u:x}"),
            _ => format!("{u}"),
        };
        let mut prec = 0usize;
        if let Some(p) = self.f.prec {
            prec = p;
            if p == 0 && u == 0 {
                let saved = self.f.zero;
                self.f.zero = false;
                self.pad("");
                self.f.zero = saved;
                return;
            }
        } else if self.f.zero
            && let Some(w) = self.f.wid
        {
            prec = w;
            if negative || self.f.plus || self.f.space {
                prec = prec.saturating_sub(1);
            }
        }
        while digits.len() < prec {
            digits.insert(0, '0');
        }
        if self.f.sharp {
            match base {
                2 => digits.insert_str(0, "0b"),
                8 if !digits.starts_with('0') => digits.insert(0, '0'),
                16 => digits.insert_str(0, if upper { "0X" } else { "0x" }),
                _ => {}
            }
        }
        if verb == 'O' {
            digits.insert_str(0, "0o");
        }
        if negative {
            digits.insert(0, '-');
        } else if self.f.plus {
            digits.insert(0, '+');
        } else if self.f.space {
            digits.insert(0, ' ');
        }
        let saved = self.f.zero;
        self.f.zero = false;
        self.pad(&digits);
        self.f.zero = saved;
    }

    fn fmt_float(&mut self, x: f64, verb: char, v: &Value) {
        let (verb, default_prec) = match verb {
            'v' => ('g', None),
            'g' | 'G' => (verb, None),
            'e' | 'E' | 'f' => (verb, Some(6)),
            'F' => ('f', Some(6)),
            _ => return self.bad_verb(verb, v),
        };
        let prec = self.f.prec.or(default_prec);
        let mut num = String::new();
        format_float(&mut num, x, verb, prec);
        let mut num = if num.starts_with('-') || num.starts_with('+') {
            num
        } else {
            format!("+{num}")
        };
        if self.f.space && num.starts_with('+') && !self.f.plus {
            num.replace_range(0..1, " ");
        }
        if num[1..].starts_with("Inf") || num[1..].starts_with("NaN") {
            let saved = self.f.zero;
            self.f.zero = false;
            if num[1..].starts_with("NaN") && !self.f.space && !self.f.plus {
                num.remove(0);
            }
            if num.starts_with('+') && !self.f.plus && !self.f.space {
                num.remove(0);
            }
            self.pad(&num);
            self.f.zero = saved;
            return;
        }
        if self.f.sharp {
            let mut digits: i64 = match verb {
                'g' | 'G' => prec.map(|p| p as i64).unwrap_or(6),
                _ => 0,
            };
            let (body, tail) = match num.find(['e', 'E']) {
                Some(i) => (num[..i].to_string(), num[i..].to_string()),
                None => (num.clone(), String::new()),
            };
            let mut body = body;
            let mut saw_nonzero = false;
            let has_point = body.contains('.');
            for c in body[1..].chars() {
                if c == '.' {
                    continue;
                }
                if c != '0' {
                    saw_nonzero = true;
                }
                if saw_nonzero {
                    digits -= 1;
                }
            }
            if !has_point {
                if body.len() == 2 && body.ends_with('0') {
                    digits -= 1;
                }
                body.push('.');
            }
            while digits > 0 {
                body.push('0');
                digits -= 1;
            }
            num = body + &tail;
        }
        if self.f.plus || !num.starts_with('+') {
            if self.f.zero
                && let Some(w) = self.f.wid
                && w > num.len()
            {
                let sign = num.remove(0);
                self.buf.push(sign);
                for _ in 0..(w - num.len() - 1) {
                    self.buf.push('0');
                }
                self.buf.push_str(&num);
                return;
            }
            self.pad(&num);
            return;
        }
        let rest = num[1..].to_string();
        self.pad(&rest);
    }
}

fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(c, '\u{AD}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{E000}'..='\u{F8FF}'))
}

fn escape_char(out: &mut String, c: char, quote: char, ascii: bool) {
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        '\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if (c as u32) < 0x80 && is_print(c) => out.push(c),
        c if !ascii && is_print(c) => out.push(c),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// Go's `strconv.Quote` (or `QuoteToASCII` when `ascii`).
pub fn quote(s: &str, ascii: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        escape_char(&mut out, c, '"', ascii);
    }
    out.push('"');
    out
}

fn quote_rune(c: char) -> String {
    let mut out = String::from("'");
    escape_char(&mut out, c, '\'', false);
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(f: f64, verb: char, prec: Option<usize>) -> String {
        let mut s = String::new();
        format_float(&mut s, f, verb, prec);
        s
    }

    #[test]
    fn floats_format_as_strconv() {
        assert_eq!(g(1e6, 'g', None), "1e+06");
        assert_eq!(g(123456.0, 'g', None), "123456");
        assert_eq!(g(0.0001, 'g', None), "0.0001");
        assert_eq!(g(0.00001, 'g', None), "1e-05");
        assert_eq!(g(0.0, 'g', None), "0");
        assert_eq!(g(100000.0, 'g', Some(4)), "1e+05");
        assert_eq!(g(1000.0, 'g', Some(4)), "1000");
        assert_eq!(g(12345.0, 'g', Some(4)), "1.234e+04");
        assert_eq!(g(1.5, 'e', Some(3)), "1.500e+00");
        assert_eq!(g(-2.5, 'f', Some(0)), "-2");
        assert_eq!(g(1e21, 'f', None), "1000000000000000000000");
    }

    #[test]
    fn printf_verbs_and_flags() {
        let s = |f: &str, a: &[Value]| sprintf(f, a);
        assert_eq!(
            s(
                "%5.2f|%-5d|%05d|%x|%q",
                &[
                    Value::Float(1.23456),
                    Value::Int(42),
                    Value::Int(-42),
                    Value::Int(255),
                    Value::str("a\"b")
                ]
            ),
            " 1.23|42   |-0042|ff|\"a\\\"b\""
        );
        assert_eq!(s("%d", &[Value::str("x")]), "%!d(string=x)");
        assert_eq!(s("%d %d", &[Value::Int(1)]), "1 %!d(MISSING)");
        assert_eq!(
            s("%d", &[Value::Int(1), Value::str("x")]),
            "1%!(EXTRA string=x)"
        );
        assert_eq!(s("%[2]d %[1]d", &[Value::Int(1), Value::Int(2)]), "2 1");
        assert_eq!(
            s("%v %T", &[Value::Nil, Value::Float(1.0)]),
            "<nil> float64"
        );
        assert_eq!(s("%6.2f%%", &[Value::Float(99.5)]), " 99.50%");
        assert_eq!(
            sprint(&[Value::Int(1), Value::Int(2), Value::str("a"), Value::Int(3)]),
            "1 2a3"
        );
    }
}
