//! A second reading of an expression promql-parser rejected: Prometheus 2.42's grammar (as a
//! recursive descent over [`super::lex`]'s tokens, with the contexts of its error productions:
//! "in aggregation", "in grouping opts", "in label matching", "in offset", "in @", "in subquery
//! selector") and its parse actions (durations, numbers, regexes, offsets), then [`super::check`]'s
//! type checks, to find the first error as Prometheus reports it: the message and the byte offset
//! of the offending token or node.
//!
//! Only the diagnosis is used from here: whether an expression parses, and its AST, stay
//! promql-parser's.

use super::check::{Expr, Node, check, function};
use super::lex::{Kind, Lexer, Tok, go_quote};

/// The first error Prometheus would report: byte offset and message.
pub(super) type Diagnosis = (usize, String);

/// Re-reads `input`; the first error, or `None` when this reading finds none. `v3`: with what
/// Prometheus 3 added (quoted label and metric names, ranges and offsets in seconds, durations as
/// numbers), as promql-parser reads them; without, exactly as Prometheus 2.42 does.
pub(super) fn diagnose(input: &str, v3: bool) -> Option<Diagnosis> {
    let mut p = Parser {
        lx: Lexer::new(input, v3),
        v3,
        look: None,
        errors: Vec::new(),
        aggregations: 0,
        budget: NODE_BUDGET,
        depth: 0,
    };
    let tree = p.top();
    if let Some(first) = p.errors.into_iter().next() {
        return Some(first);
    }
    let tree = tree.ok()?;
    let mut errors = Vec::new();
    check(&tree, &mut errors);
    errors.into_iter().next()
}

/// How many expressions a diagnosis reads before it gives up (and promql-parser's message
/// stands): bounds the recursion on hostile input.
const NODE_BUDGET: usize = 1_000;

/// How deep expressions may nest in a diagnosis (real ones nest a few levels).
const MAX_DEPTH: usize = 64;

/// Parsing stopped at a grammar or lexer error (already recorded) or the budget ran out.
struct Stop;

type R<T> = Result<T, Stop>;

struct Parser<'a> {
    lx: Lexer<'a>,
    /// Whether Prometheus 3's additions are read.
    v3: bool,
    look: Option<Tok>,
    /// Errors in the order Prometheus records them; parsing stops at the first grammar error.
    errors: Vec<Diagnosis>,
    /// How many aggregations enclose the current token (their error production names it).
    aggregations: usize,
    /// Expressions left to read.
    budget: usize,
    /// How deep the current expression nests.
    depth: usize,
}

fn precedence(t: &Tok) -> Option<(u8, bool)> {
    if t.kind != Kind::Op {
        return None;
    }
    let p = match t.lower().as_str() {
        "or" => 1,
        "and" | "unless" => 2,
        "==" | "!=" | "<" | "<=" | ">" | ">=" => 3,
        "+" | "-" => 4,
        "*" | "/" | "%" | "atan2" => 5,
        "^" => return Some((6, true)),
        _ => return None,
    };
    Some((p, false))
}

/// Whether an expression can start with the token (a duration only in Prometheus 3).
fn starts_expr(t: &Tok, v3: bool) -> bool {
    match t.kind {
        Kind::Duration => v3,
        Kind::Number | Kind::Str | Kind::Ident | Kind::MetricIdent | Kind::Aggr | Kind::Pre => true,
        Kind::Punct => t.is("(") || t.is("{"),
        Kind::Keyword => t.is("by") || t.is("without") || t.is("offset"),
        Kind::Op => ["and", "or", "unless", "+", "-"].iter().any(|o| t.is(o)),
        Kind::Eof | Kind::Error => false,
    }
}

/// A duration, or a number of seconds as Prometheus 3 allows in ranges and offsets.
fn is_duration(t: &Tok, v3: bool) -> bool {
    t.kind == Kind::Duration || (v3 && t.kind == Kind::Number)
}

fn is_label(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

impl Parser<'_> {
    fn peek(&mut self) -> R<Tok> {
        if self.look.is_none() {
            self.look = Some(self.lx.token());
        }
        let t = self.look.clone().expect("a token was just read");
        if t.kind == Kind::Error {
            self.errors.push((t.pos, t.text));
            return Err(Stop);
        }
        Ok(t)
    }

    fn bump(&mut self) -> R<Tok> {
        let t = self.peek()?;
        self.look = None;
        Ok(t)
    }

    /// "unexpected X [in context][, expected Y]" at the token, and stop.
    fn unexpected<T>(&mut self, t: &Tok, context: &str, expected: &str) -> R<T> {
        let mut m = format!("unexpected {}", t.desc());
        if !context.is_empty() {
            m.push_str(" in ");
            m.push_str(context);
        }
        if !expected.is_empty() {
            m.push_str(", expected ");
            m.push_str(expected);
        }
        self.errors.push((t.pos, m));
        Err(Stop)
    }

    /// An unexpected token where no error production of its own applies.
    fn generic<T>(&mut self, t: &Tok) -> R<T> {
        let context = if self.aggregations > 0 {
            "aggregation"
        } else {
            ""
        };
        self.unexpected(t, context, "")
    }

    fn top(&mut self) -> R<Expr> {
        let t = self.peek()?;
        if t.kind == Kind::Eof {
            self.errors.push((0, "no expression found in input".into()));
            return Err(Stop);
        }
        let e = self.expr(0)?;
        let t = self.peek()?;
        if t.kind != Kind::Eof {
            return self.generic(&t);
        }
        Ok(e)
    }

    fn spend(&mut self) -> R<()> {
        self.budget = self.budget.checked_sub(1).ok_or(Stop)?;
        Ok(())
    }

    fn expr(&mut self, min: u8) -> R<Expr> {
        if self.depth == MAX_DEPTH {
            return Err(Stop);
        }
        self.depth += 1;
        let e = self.binary(min);
        self.depth -= 1;
        e
    }

    fn binary(&mut self, min: u8) -> R<Expr> {
        self.spend()?;
        let mut lhs = self.unary()?;
        loop {
            self.spend()?;
            let t = self.peek()?;
            let Some((prec, right)) = precedence(&t) else {
                return Ok(lhs);
            };
            if prec < min {
                return Ok(lhs);
            }
            self.bump()?;
            let mut bool_ = false;
            let (mut on, mut grouped) = (false, false);
            let (mut matching, mut include) = (Vec::new(), Vec::new());
            if self.peek()?.is("bool") {
                self.bump()?;
                bool_ = true;
            }
            let m = self.peek()?;
            if m.is("on") || m.is("ignoring") {
                self.bump()?;
                on = m.is("on");
                matching = self.grouping_labels()?;
                let g = self.peek()?;
                if g.is("group_left") || g.is("group_right") {
                    self.bump()?;
                    grouped = true;
                    // Labels or the right operand follow; anything else is taken for
                    // misplaced labels.
                    let next = self.peek()?;
                    if next.is("(") || !starts_expr(&next, self.v3) {
                        include = self.grouping_labels()?;
                    }
                }
            }
            let rhs = self.expr(if right { prec } else { prec + 1 })?;
            lhs = Expr {
                start: lhs.start,
                node: Node::Binary {
                    op: t.lower(),
                    op_pos: t.pos,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                    bool_,
                    on,
                    grouped,
                    matching,
                    include,
                },
            };
        }
    }

    fn unary(&mut self) -> R<Expr> {
        let t = self.peek()?;
        if t.is("+") || t.is("-") {
            self.bump()?;
            let e = self.expr(6)?;
            if matches!(e.node, Node::Number) {
                return Ok(Expr {
                    start: t.pos,
                    node: Node::Number,
                });
            }
            return Ok(Expr {
                start: t.pos,
                node: Node::Unary(Box::new(e)),
            });
        }
        let e = self.primary()?;
        self.postfix(e)
    }

    fn primary(&mut self) -> R<Expr> {
        let t = self.peek()?;
        match t.kind {
            Kind::Number => {
                self.bump()?;
                if let Err(e) = go_number(&t.text) {
                    self.errors
                        .push((t.pos, format!("error parsing number: {e}")));
                }
                Ok(Expr {
                    start: t.pos,
                    node: Node::Number,
                })
            }
            Kind::Str => {
                self.bump()?;
                Ok(Expr {
                    start: t.pos,
                    node: Node::Str,
                })
            }
            // Prometheus 3 reads a duration as its number of seconds.
            Kind::Duration if self.v3 => {
                self.bump()?;
                self.duration(&t);
                Ok(Expr {
                    start: t.pos,
                    node: Node::Number,
                })
            }
            Kind::Punct if t.is("(") => {
                self.bump()?;
                let e = self.expr(0)?;
                let close = self.peek()?;
                if !close.is(")") {
                    return self.generic(&close);
                }
                self.bump()?;
                Ok(Expr {
                    start: t.pos,
                    node: Node::Paren(Box::new(e)),
                })
            }
            Kind::Punct if t.is("{") => {
                let matchers = self.label_matchers()?;
                Ok(Expr {
                    start: t.pos,
                    node: Node::Vector {
                        name: None,
                        matchers,
                        offset: false,
                        at: false,
                    },
                })
            }
            Kind::Ident => {
                self.bump()?;
                if self.peek()?.is("(") {
                    return self.call(t);
                }
                self.selector(t)
            }
            Kind::Aggr => {
                self.bump()?;
                let next = self.peek()?;
                if next.is("(") || next.is("by") || next.is("without") {
                    return self.aggregate(t);
                }
                self.selector(t)
            }
            Kind::MetricIdent | Kind::Pre => {
                self.bump()?;
                self.selector(t)
            }
            Kind::Keyword if t.is("by") || t.is("without") || t.is("offset") => {
                self.bump()?;
                self.selector(t)
            }
            Kind::Op if t.is("and") || t.is("or") || t.is("unless") => {
                self.bump()?;
                self.selector(t)
            }
            _ => self.generic(&t),
        }
    }

    fn selector(&mut self, name: Tok) -> R<Expr> {
        let matchers = if self.peek()?.is("{") {
            self.label_matchers()?
        } else {
            Vec::new()
        };
        Ok(Expr {
            start: name.pos,
            node: Node::Vector {
                name: Some(name.text),
                matchers,
                offset: false,
                at: false,
            },
        })
    }

    fn label_matchers(&mut self) -> R<Vec<(String, String, bool)>> {
        self.bump()?;
        let mut out = Vec::new();
        loop {
            let t = self.peek()?;
            if t.is("}") {
                self.bump()?;
                return Ok(out);
            }
            if t.kind != Kind::Ident && !(self.v3 && t.kind == Kind::Str) {
                return self.unexpected(&t, "label matching", "identifier or \"}\"");
            }
            self.bump()?;
            let op = self.peek()?;
            // Prometheus 3: `{"name"}` selects by metric name, `{"label"="v"}` quotes a label.
            if t.kind == Kind::Str && (op.is(",") || op.is("}")) {
                out.push(("__name__".to_owned(), unquote(&t.text), false));
                if op.is(",") {
                    self.bump()?;
                }
                continue;
            }
            let label = if t.kind == Kind::Str {
                unquote(&t.text)
            } else {
                t.text.clone()
            };
            if !(op.is("=") || op.is("!=") || op.is("=~") || op.is("!~")) {
                return self.unexpected(&op, "label matching", "label matching operator");
            }
            self.bump()?;
            let v = self.peek()?;
            if v.kind != Kind::Str {
                return self.unexpected(&v, "label matching", "string");
            }
            self.bump()?;
            let value = unquote(&v.text);
            let empty = match op.text.as_str() {
                "=" => value.is_empty(),
                "!=" => !value.is_empty(),
                re => match regex::Regex::new(&format!("^(?:{value})$")) {
                    Ok(r) => r.is_match("") == (re == "=~"),
                    Err(e) => {
                        self.errors.push((t.pos, regex_error(&value, &e)));
                        true
                    }
                },
            };
            out.push((label, value, empty));
            let sep = self.peek()?;
            if sep.is(",") {
                self.bump()?;
            } else if !sep.is("}") {
                return self.unexpected(&sep, "label matching", "\",\" or \"}\"");
            }
        }
    }

    fn grouping_labels(&mut self) -> R<Vec<String>> {
        let t = self.peek()?;
        if !t.is("(") {
            return self.unexpected(&t, "grouping opts", "\"(\"");
        }
        self.bump()?;
        let mut out = Vec::new();
        if self.peek()?.is(")") {
            self.bump()?;
            return Ok(out);
        }
        loop {
            let t = self.peek()?;
            let maybe_label = match t.kind {
                Kind::Ident | Kind::MetricIdent | Kind::Aggr | Kind::Pre => true,
                // Every keyword but `without` may name a label here.
                Kind::Keyword => !t.is("without"),
                Kind::Op => matches!(t.lower().as_str(), "and" | "or" | "unless" | "atan2"),
                _ => false,
            };
            if self.v3 && t.kind == Kind::Str {
                // Prometheus 3 allows quoted label names.
                self.bump()?;
                out.push(unquote(&t.text));
            } else if !maybe_label || !is_label(&t.text) {
                return self.unexpected(&t, "grouping opts", "label");
            } else {
                self.bump()?;
                out.push(t.text);
            }
            let sep = self.peek()?;
            if sep.is(",") {
                self.bump()?;
                if self.peek()?.is(")") {
                    self.bump()?;
                    return Ok(out);
                }
            } else if sep.is(")") {
                self.bump()?;
                return Ok(out);
            } else {
                return self.unexpected(&sep, "grouping opts", "\",\" or \")\"");
            }
        }
    }

    /// `( args )` after a function name or aggregation operator.
    fn call_body(&mut self) -> R<Vec<Expr>> {
        self.bump()?;
        let mut args = Vec::new();
        if self.peek()?.is(")") {
            self.bump()?;
            return Ok(args);
        }
        loop {
            args.push(self.expr(0)?);
            let t = self.peek()?;
            if t.is(",") {
                self.bump()?;
                // Prometheus reduces `args ,` on any token that cannot start an expression.
                let next = self.peek()?;
                if !starts_expr(&next, self.v3) {
                    self.errors.push((
                        t.pos,
                        "trailing commas not allowed in function call args".into(),
                    ));
                    if !next.is(")") {
                        return self.generic(&next);
                    }
                    self.bump()?;
                    return Ok(args);
                }
            } else if t.is(")") {
                self.bump()?;
                return Ok(args);
            } else {
                return self.generic(&t);
            }
        }
    }

    fn call(&mut self, name: Tok) -> R<Expr> {
        let args = self.call_body()?;
        if function(&name.text).is_none() {
            self.errors.push((
                name.pos,
                format!("unknown function with name {}", go_quote(&name.text)),
            ));
        }
        Ok(Expr {
            start: name.pos,
            node: Node::Call {
                name: name.text,
                args,
            },
        })
    }

    fn aggregate(&mut self, op: Tok) -> R<Expr> {
        self.aggregations += 1;
        let mut modifier = false;
        let t = self.peek()?;
        if t.is("by") || t.is("without") {
            self.bump()?;
            self.grouping_labels()?;
            modifier = true;
        }
        let t = self.peek()?;
        if !t.is("(") {
            return self.generic(&t);
        }
        let mut args = self.call_body()?;
        if !modifier {
            let t = self.peek()?;
            if t.is("by") || t.is("without") {
                self.bump()?;
                self.grouping_labels()?;
            }
        }
        self.aggregations -= 1;
        let name = op.lower();
        let mut node = Node::Aggregate {
            op: name.clone(),
            param: None,
            expr: None,
        };
        let want = if matches!(
            name.as_str(),
            "topk" | "bottomk" | "quantile" | "count_values"
        ) {
            2
        } else {
            1
        };
        if args.is_empty() {
            self.errors.push((
                op.pos,
                "no arguments for aggregate expression provided".into(),
            ));
        } else if args.len() != want {
            self.errors.push((
                op.pos,
                format!(
                    "wrong number of arguments for aggregate expression provided, expected {want}, got {}",
                    args.len()
                ),
            ));
        } else {
            let expr = args.pop().map(Box::new);
            let param = args.pop().map(Box::new);
            node = Node::Aggregate {
                op: name,
                param,
                expr,
            };
        }
        Ok(Expr {
            start: op.pos,
            node,
        })
    }

    fn postfix(&mut self, mut e: Expr) -> R<Expr> {
        loop {
            let t = self.peek()?;
            if t.is("[") {
                e = self.range(e)?;
            } else if t.is("offset") {
                e = self.offset(e)?;
            } else if t.is("@") {
                e = self.at(e)?;
            } else {
                return Ok(e);
            }
        }
    }

    fn duration(&mut self, t: &Tok) {
        if t.kind != Kind::Duration {
            return;
        }
        if let Err(m) = go_duration(&t.text) {
            self.errors.push((t.pos, m));
        }
    }

    fn range(&mut self, e: Expr) -> R<Expr> {
        let open = self.bump()?;
        let t = self.peek()?;
        if !is_duration(&t, self.v3) {
            return self.unexpected(&t, "subquery selector", "duration");
        }
        self.bump()?;
        self.duration(&t);
        let t = self.peek()?;
        if t.is("]") {
            self.bump()?;
            let message = match &e.node {
                Node::Vector { offset: true, .. } => {
                    Some("no offset modifiers allowed before range")
                }
                Node::Vector { at: true, .. } => Some("no @ modifiers allowed before range"),
                Node::Vector { .. } => None,
                _ => Some("ranges only allowed for vector selectors"),
            };
            if let Some(m) = message {
                self.errors.push((open.pos, m.into()));
            }
            return Ok(Expr {
                start: e.start,
                node: Node::Matrix {
                    selector: Box::new(e),
                    offset: false,
                    at: false,
                },
            });
        }
        if !t.is(":") {
            return self.unexpected(&t, "subquery or range", "\":\" or \"]\"");
        }
        self.bump()?;
        let t = self.peek()?;
        if is_duration(&t, self.v3) {
            self.bump()?;
            self.duration(&t);
            let t = self.peek()?;
            if !t.is("]") {
                return self.unexpected(&t, "subquery selector", "\"]\"");
            }
        } else if !t.is("]") {
            return self.unexpected(&t, "subquery selector", "duration or \"]\"");
        }
        self.bump()?;
        Ok(Expr {
            start: e.start,
            node: Node::Subquery {
                expr: Box::new(e),
                offset: false,
                at: false,
            },
        })
    }

    fn offset(&mut self, mut e: Expr) -> R<Expr> {
        self.bump()?;
        let mut t = self.peek()?;
        if t.is("-") {
            self.bump()?;
            t = self.peek()?;
        }
        if !is_duration(&t, self.v3) {
            return self.unexpected(&t, "offset", "duration");
        }
        self.bump()?;
        self.duration(&t);
        match &mut e.node {
            Node::Vector { offset, .. }
            | Node::Matrix { offset, .. }
            | Node::Subquery { offset, .. } => {
                if *offset {
                    self.errors
                        .push((e.start, "offset may not be set multiple times".into()));
                }
                *offset = true;
            }
            _ => self.errors.push((
                e.start,
                "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery".into(),
            )),
        }
        Ok(e)
    }

    fn at(&mut self, mut e: Expr) -> R<Expr> {
        self.bump()?;
        let mut t = self.peek()?;
        if t.kind == Kind::Pre {
            self.bump()?;
            let open = self.peek()?;
            if !open.is("(") {
                return self.unexpected(&open, "@", "timestamp");
            }
            self.bump()?;
            let close = self.peek()?;
            if !close.is(")") {
                return self.unexpected(&close, "@", "timestamp");
            }
            self.bump()?;
        } else {
            if t.is("-") || t.is("+") {
                self.bump()?;
                t = self.peek()?;
            }
            if t.kind != Kind::Number {
                return self.unexpected(&t, "@", "timestamp");
            }
            self.bump()?;
        }
        match &mut e.node {
            Node::Vector { at, .. } | Node::Matrix { at, .. } | Node::Subquery { at, .. } => {
                if *at {
                    self.errors
                        .push((e.start, "@ <timestamp> may not be set multiple times".into()));
                }
                *at = true;
            }
            _ => self.errors.push((
                e.start,
                "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery".into(),
            )),
        }
        Ok(e)
    }
}

/// A number as Go's `strconv.ParseInt(s, 0, 64)` then `ParseFloat(s, 64)` read it.
fn go_number(s: &str) -> Result<f64, String> {
    let int = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse::<u64>().ok()
    };
    if int.is_some() {
        return Ok(0.0);
    }
    let float_syntax = s
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        || ["inf", "nan"].contains(&s.to_ascii_lowercase().as_str());
    match s.parse::<f64>() {
        Ok(f) if float_syntax => Ok(f),
        _ => Err(format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote(s)
        )),
    }
}

/// A duration as Prometheus's `model.ParseDuration` reads it, then refused when zero.
fn go_duration(s: &str) -> Result<u64, String> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let bad = || format!("not a valid duration string: {}", go_quote(s));
    let mut rest = s;
    let mut next_unit = 0;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let Some(i) = (next_unit..UNITS.len())
            .filter(|&i| rest.starts_with(UNITS[i].0))
            .max_by_key(|&i| UNITS[i].0.len())
        else {
            return Err(bad());
        };
        rest = &rest[UNITS[i].0.len()..];
        total = total.saturating_add(n.saturating_mul(UNITS[i].1));
        next_unit = i + 1;
    }
    if total == 0 {
        return Err("duration must be greater than 0".into());
    }
    Ok(total)
}

/// The value of a string token (its quotes removed, escapes resolved well enough for a regex).
fn unquote(text: &str) -> String {
    let inner = &text[1..text.len().saturating_sub(1).max(1)];
    if text.starts_with('`') {
        return inner.to_owned();
    }
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(c) => out.push(c),
            None => {}
        }
    }
    out
}

/// A regex compile error in the words of Go's `regexp` where the kind is known.
fn regex_error(value: &str, e: &regex::Error) -> String {
    let anchored = format!("^(?:{value})$");
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    let reason = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or("invalid regular expression");
    // The caret line under the pattern gives the span of the fault.
    let span = lines
        .iter()
        .position(|l| l.trim() == anchored)
        .and_then(|i| {
            let carets = lines.get(i + 1)?;
            let from = carets.find('^')?.checked_sub(lines[i].find('^')?)?;
            let len = carets.trim().chars().count();
            Some(anchored.chars().skip(from).take(len).collect::<String>())
        });
    let span_or_all = span.clone().unwrap_or_else(|| anchored.clone());
    let (code, expr) = if reason.starts_with("unclosed group") {
        ("missing closing )", anchored.clone())
    } else if reason.starts_with("unopened group") {
        ("unexpected )", anchored.clone())
    } else if reason.starts_with("invalid character class range") {
        ("invalid character class range", span_or_all)
    } else if reason.starts_with("repetition operator missing expression") {
        ("missing argument to repetition operator", span_or_all)
    } else if reason.starts_with("unclosed character class") {
        let from = span.map_or(0, |s| anchored.find(&s).unwrap_or(0));
        ("missing closing ]", anchored[from..].to_owned())
    } else if reason.contains("escape") {
        ("invalid escape sequence", span_or_all)
    } else {
        (reason, span_or_all)
    };
    format!("error parsing regexp: {code}: `{expr}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_numbers_as_go_reads_them() {
        assert_eq!(go_duration("1h30m"), Ok(5_400_000));
        assert_eq!(go_duration("5ms"), Ok(5));
        assert!(go_duration("1.5m").is_err());
        assert!(go_duration("5m1h").is_err());
        assert_eq!(
            go_duration("0s"),
            Err("duration must be greater than 0".into())
        );
        assert!(go_number("0x1f").is_ok());
        assert!(go_number("1e3").is_ok());
        assert!(go_number("Inf").is_ok());
        assert!(go_number("1e").is_err());
        assert!(go_number("0x").is_err());
    }

    #[test]
    fn diagnoses() {
        for (input, offset, message) in [
            (
                "sum(x) by",
                9,
                "unexpected end of input in grouping opts, expected \"(\"",
            ),
            (
                "x{a=b}",
                4,
                "unexpected identifier \"b\" in label matching, expected string",
            ),
            (
                "rate(x)",
                5,
                "expected type range vector in call to function \"rate\", got instant vector",
            ),
            ("sum by (job) (x +)", 17, "unexpected \")\" in aggregation"),
            (
                "x{a=~\"(\"}",
                2,
                "error parsing regexp: missing closing ): `^(?:()$`",
            ),
        ] {
            assert_eq!(
                diagnose(input, true),
                Some((offset, message.to_owned())),
                "{input}"
            );
        }
        assert_eq!(diagnose("sum(rate(x[5m])) by (job)", true), None);
        // What Prometheus 3 added (and promql-parser accepts) is read as it is, so that a later
        // error is the one reported.
        for (input, offset) in [
            ("x{\"a\"=\"b\"} + rate(y)", 18),
            ("{\"x\"} + rate(y)", 13),
            ("sum by (\"a\") (x) + rate(y)", 24),
            ("rate(x[5] offset 5) + 5m + rate(y)", 32),
        ] {
            assert_eq!(
                diagnose(input, true).map(|d| d.0),
                Some(offset),
                "{input}: {:?}",
                diagnose(input, true)
            );
        }
    }

    #[test]
    fn hostile_input_gives_up_without_overflowing() {
        assert_eq!(diagnose(&"(".repeat(200_000), true), None);
        assert_eq!(diagnose(&"-".repeat(200_000), true), None);
        assert_eq!(diagnose(&"x+".repeat(200_000), true), None);
        let long = format!("{}y[5m]", "x + ".repeat(200));
        assert_eq!(
            diagnose(&long, true),
            Some((
                long.len() - 5,
                "binary expression must contain only scalar and instant vector types".to_owned()
            ))
        );
        let deep = format!("{}x{} +", "(".repeat(30), ")".repeat(30));
        assert_eq!(
            diagnose(&deep, true),
            Some((deep.len(), "unexpected end of input".to_owned()))
        );
    }

    proptest::proptest! {
        #[test]
        fn any_input_is_read_without_panic(parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "x", "sum", "by", "(", ")", "[", "]", "{", "}", ",", "=", "=~", "!", "\"a\"",
                "'", "`", "\\", "5m", "1.5", "0x", ":", "offset", "@", "+", "-", "bool", "on",
                "group_left", " ", "\n", "#", "rate", "é", "\"(\"", "1e", "start",
            ]),
            0..24,
        )) {
            let input: String = parts.concat();
            if let Some((offset, _)) = diagnose(&input, true) {
                proptest::prop_assert!(offset <= input.len());
                proptest::prop_assert!(input.is_char_boundary(offset));
            }
            let _ = super::super::parse(&input);
        }
    }
}
