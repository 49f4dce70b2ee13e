//! The parser of Go's `text/template`: the node tree, `define`/`block` definitions, variable
//! scoping, and Go's parse error messages; nodes print back as Go prints them in errors.

use std::collections::HashMap;
use std::sync::Arc;

use super::lex::{Item, ItemType, lex};
use super::printf::quote;

pub use super::node::{Arg, Branch, Command, Node, Number, Pipe, Tree};

/// A parse error, worded and located as Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {name}:{line}: {message}")]
pub struct ParseError {
    /// The name of the text being parsed.
    pub name: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column of the offending token (Go's message does not show it).
    pub column: usize,
    /// Go's message.
    pub message: String,
}

/// How deeply parentheses and control structures may nest. Go allows 10,000 on its growable
/// stacks and words the error the same; ours keeps parsing and execution within a thread's stack.
pub const MAX_NESTING: usize = 100;

enum Item2 {
    Node(Node),
    End,
    Else,
}

struct Parser<'a> {
    items: Vec<Item>,
    idx: usize,
    tok: usize,
    parse_name: Arc<str>,
    text: Arc<str>,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    action_line: usize,
    has_func: &'a dyn Fn(&str) -> bool,
    out: Vec<Tree>,
}

type PResult<T> = Result<T, ParseError>;

impl Parser<'_> {
    fn item(&self, i: usize) -> &Item {
        let i = i.min(self.items.len() - 1);
        &self.items[i]
    }

    fn next(&mut self) -> Item {
        let it = self.item(self.idx).clone();
        self.tok = self.idx.min(self.items.len() - 1);
        if self.idx < self.items.len() - 1 || it.typ != ItemType::Eof {
            self.idx += 1;
        }
        it
    }

    fn backup(&mut self) {
        self.idx -= 1;
    }

    fn peek(&mut self) -> Item {
        let it = self.item(self.idx).clone();
        self.tok = self.idx.min(self.items.len() - 1);
        it
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let t = self.next();
            if t.typ != ItemType::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn errorf(&self, message: String) -> ParseError {
        let it = self.item(self.tok);
        let before = &self.text[..it.pos.min(self.text.len())];
        let column = match before.rfind('\n') {
            Some(i) => it.pos - i,
            None => it.pos + 1,
        };
        ParseError {
            name: self.parse_name.to_string(),
            line: it.line,
            column,
            message,
        }
    }

    fn unexpected(&self, token: &Item, context: &str) -> ParseError {
        if token.typ == ItemType::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != token.line {
                extra = format!(
                    " in action started at {}:{}",
                    self.parse_name, self.action_line
                );
                if token.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_string();
                }
            }
            return self.errorf(format!("{token}{extra}"));
        }
        self.errorf(format!("unexpected {token} in {context}"))
    }

    fn expect(&mut self, typ: ItemType, context: &str) -> PResult<Item> {
        let t = self.next_non_space();
        if t.typ != typ {
            return Err(self.unexpected(&t, context));
        }
        Ok(t)
    }

    fn add(&mut self, tree: Tree) -> PResult<()> {
        if let Some(i) = self.out.iter().position(|t| t.name == tree.name) {
            if is_empty(&self.out[i].root) {
                self.out[i] = tree;
            } else if !is_empty(&tree.root) {
                return Err(self.errorf(format!(
                    "template: multiple definition of template {}",
                    quote(&tree.name, false)
                )));
            }
            return Ok(());
        }
        self.out.push(tree);
        Ok(())
    }

    fn parse(&mut self, name: &str) -> PResult<()> {
        let mut root = Vec::new();
        while self.peek().typ != ItemType::Eof {
            if self.peek().typ == ItemType::LeftDelim {
                let save = self.idx;
                self.next();
                if self.next_non_space().typ == ItemType::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.idx = save;
            }
            match self.text_or_action()? {
                Item2::Node(n) => root.push(n),
                Item2::End => return Err(self.errorf("unexpected {{end}}".into())),
                Item2::Else => return Err(self.errorf("unexpected {{else}}".into())),
            }
        }
        let tree = self.tree(name.to_string(), root);
        self.add(tree)
    }

    fn tree(&self, name: String, root: Vec<Node>) -> Tree {
        Tree {
            name,
            parse_name: self.parse_name.clone(),
            text: self.text.clone(),
            root,
        }
    }

    fn parse_definition(&mut self) -> PResult<()> {
        let context = "define clause";
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let t = self.next_non_space();
        if t.typ != ItemType::String && t.typ != ItemType::RawString {
            return Err(self.unexpected(&t, context));
        }
        let name = self.unquote(&t.val)?;
        self.expect(ItemType::RightDelim, context)?;
        let (list, end) = self.item_list()?;
        if !matches!(end, Item2::End) {
            return Err(self.errorf(format!("unexpected {} in {context}", end_str(&end))));
        }
        let tree = self.tree(name, list);
        self.add(tree)?;
        self.vars = saved_vars;
        Ok(())
    }

    fn item_list(&mut self) -> PResult<(Vec<Node>, Item2)> {
        let mut list = Vec::new();
        while self.peek_non_space().typ != ItemType::Eof {
            match self.text_or_action()? {
                Item2::Node(n) => list.push(n),
                other => return Ok((list, other)),
            }
        }
        Err(self.errorf("unexpected EOF".into()))
    }

    fn text_or_action(&mut self) -> PResult<Item2> {
        let t = self.next_non_space();
        match t.typ {
            ItemType::Text => Ok(Item2::Node(Node::Text(Arc::from(t.val.as_str())))),
            ItemType::LeftDelim => {
                self.action_line = t.line;
                let r = self.action();
                self.action_line = 0;
                r
            }
            _ => Err(self.unexpected(&t, "input")),
        }
    }

    fn action(&mut self) -> PResult<Item2> {
        let t = self.next_non_space();
        match t.typ {
            ItemType::Block => return self.block_control(),
            ItemType::Break | ItemType::Continue => {
                let word = if t.typ == ItemType::Break {
                    "break"
                } else {
                    "continue"
                };
                let n = self.next_non_space();
                if n.typ != ItemType::RightDelim {
                    return Err(self.unexpected(&n, &format!("{{{{{word}}}}}")));
                }
                if self.range_depth == 0 {
                    return Err(self.errorf(format!("{{{{{word}}}}} outside {{{{range}}}}")));
                }
                return Ok(Item2::Node(if t.typ == ItemType::Break {
                    Node::Break(t.pos)
                } else {
                    Node::Continue(t.pos)
                }));
            }
            ItemType::Else => {
                let p = self.peek_non_space();
                if p.typ == ItemType::If {
                    return Ok(Item2::Else);
                }
                self.expect(ItemType::RightDelim, "else")?;
                return Ok(Item2::Else);
            }
            ItemType::End => {
                self.expect(ItemType::RightDelim, "end")?;
                return Ok(Item2::End);
            }
            ItemType::If => return Ok(Item2::Node(Node::If(self.parse_control(true, "if")?))),
            ItemType::Range => {
                return Ok(Item2::Node(Node::Range(
                    self.parse_control(false, "range")?,
                )));
            }
            ItemType::With => {
                return Ok(Item2::Node(Node::With(self.parse_control(false, "with")?)));
            }
            ItemType::Template => return self.template_control(),
            _ => {}
        }
        self.backup();
        let pipe = self.pipeline("command", ItemType::RightDelim)?;
        Ok(Item2::Node(Node::Action(pipe)))
    }

    fn pipeline(&mut self, context: &str, end: ItemType) -> PResult<Pipe> {
        let t = self.peek_non_space();
        let mut pipe = Pipe {
            pos: t.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        'decls: loop {
            let v = self.peek_non_space();
            if v.typ == ItemType::Variable {
                let save = self.idx;
                self.next();
                let after = self.peek();
                let next = self.peek_non_space();
                if next.typ == ItemType::Assign || next.typ == ItemType::Declare {
                    pipe.is_assign = next.typ == ItemType::Assign;
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val.clone());
                } else if next.typ == ItemType::Char && next.val == "," {
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val.clone());
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().typ {
                            ItemType::Variable | ItemType::RightDelim | ItemType::RightParen => {
                                continue 'decls;
                            }
                            _ => {
                                return Err(
                                    self.errorf("range can only initialize variables".into())
                                );
                            }
                        }
                    }
                    return Err(self.errorf(format!("too many declarations in {context}")));
                } else {
                    let _ = after;
                    self.idx = save;
                }
            }
            break;
        }
        loop {
            let t = self.next_non_space();
            match t.typ {
                x if x == end => {
                    if pipe.cmds.is_empty() {
                        return Err(self.errorf(format!("missing value for {context}")));
                    }
                    for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
                        if matches!(
                            c.args[0],
                            Arg::Bool(..)
                                | Arg::Dot(_)
                                | Arg::Nil(_)
                                | Arg::Number(..)
                                | Arg::String(..)
                        ) {
                            return Err(self.errorf(format!(
                                "non executable command in pipeline stage {}",
                                i + 1
                            )));
                        }
                    }
                    return Ok(pipe);
                }
                ItemType::Bool
                | ItemType::CharConstant
                | ItemType::Complex
                | ItemType::Dot
                | ItemType::Field
                | ItemType::Identifier
                | ItemType::Number
                | ItemType::Nil
                | ItemType::RawString
                | ItemType::String
                | ItemType::Variable
                | ItemType::LeftParen => {
                    self.backup();
                    let c = self.command()?;
                    pipe.cmds.push(c);
                }
                _ => return Err(self.unexpected(&t, context)),
            }
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.errorf("max expression depth exceeded".into()));
        }
        Ok(())
    }

    fn parse_control(&mut self, allow_else_if: bool, context: &str) -> PResult<Branch> {
        self.enter()?;
        let r = self.parse_control_inner(allow_else_if, context);
        self.depth -= 1;
        r
    }

    fn parse_control_inner(&mut self, allow_else_if: bool, context: &str) -> PResult<Branch> {
        let nvars = self.vars.len();
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, next) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let mut else_list = None;
        if let Item2::Else = next {
            if allow_else_if && self.peek().typ == ItemType::If {
                self.next();
                let inner = self.parse_control(true, "if")?;
                else_list = Some(vec![Node::If(inner)]);
            } else {
                let (l, next) = self.item_list()?;
                if !matches!(next, Item2::End) {
                    return Err(self.errorf(format!("expected end; found {}", end_str(&next))));
                }
                else_list = Some(l);
            }
        }
        self.vars.truncate(nvars);
        Ok(Branch {
            pos: pipe.pos,
            pipe,
            list,
            else_list,
        })
    }

    fn block_control(&mut self) -> PResult<Item2> {
        let context = "block clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, context)?;
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_depth = std::mem::take(&mut self.range_depth);
        let (list, end) = self.item_list()?;
        if !matches!(end, Item2::End) {
            return Err(self.errorf(format!("unexpected {} in {context}", end_str(&end))));
        }
        let tree = self.tree(name.clone(), list);
        self.add(tree)?;
        self.vars = saved_vars;
        self.range_depth = saved_depth;
        Ok(Item2::Node(Node::Template {
            pos: t.pos,
            name,
            pipe: Some(pipe),
        }))
    }

    fn template_control(&mut self) -> PResult<Item2> {
        let context = "template clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, context)?;
        let mut pipe = None;
        if self.next_non_space().typ != ItemType::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(context, ItemType::RightDelim)?);
        }
        Ok(Item2::Node(Node::Template {
            pos: t.pos,
            name,
            pipe,
        }))
    }

    fn template_name(&self, t: &Item, context: &str) -> PResult<String> {
        match t.typ {
            ItemType::String | ItemType::RawString => self.unquote(&t.val),
            _ => Err(self.unexpected(t, context)),
        }
    }

    fn unquote(&self, s: &str) -> PResult<String> {
        unquote(s).ok_or_else(|| self.errorf("invalid syntax".into()))
    }

    fn command(&mut self) -> PResult<Command> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Command {
            pos,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let t = self.next();
            match t.typ {
                ItemType::Space => continue,
                ItemType::RightDelim | ItemType::RightParen => self.backup(),
                ItemType::Pipe => {}
                _ => return Err(self.unexpected(&t, "operand")),
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(self.errorf("empty command".into()));
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().typ == ItemType::Field {
            let pos = self.peek().pos;
            let mut fields = Vec::new();
            while self.peek().typ == ItemType::Field {
                fields.push(self.next().val[1..].to_string());
            }
            return Ok(Some(match node {
                Arg::Field(_, mut idents) => {
                    idents.extend(fields);
                    Arg::Field(pos, idents)
                }
                Arg::Variable(_, mut idents) => {
                    idents.extend(fields);
                    Arg::Variable(pos, idents)
                }
                Arg::Bool(..) | Arg::String(..) | Arg::Number(..) | Arg::Nil(_) | Arg::Dot(_) => {
                    return Err(self.errorf(format!(
                        "unexpected . after term {}",
                        quote(&node.to_string(), false)
                    )));
                }
                other => Arg::Chain(pos, Box::new(other), fields),
            }));
        }
        Ok(Some(node))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let t = self.next_non_space();
        Ok(Some(match t.typ {
            ItemType::Identifier => {
                if !(self.has_func)(&t.val) {
                    return Err(
                        self.errorf(format!("function {} not defined", quote(&t.val, false)))
                    );
                }
                Arg::Identifier(t.pos, t.val)
            }
            ItemType::Dot => Arg::Dot(t.pos),
            ItemType::Nil => Arg::Nil(t.pos),
            ItemType::Variable => {
                let idents: Vec<String> = split_var(&t.val);
                if !self.vars.iter().any(|v| *v == idents[0]) {
                    return Err(
                        self.errorf(format!("undefined variable {}", quote(&idents[0], false)))
                    );
                }
                Arg::Variable(t.pos, idents)
            }
            ItemType::Field => {
                Arg::Field(t.pos, t.val[1..].split('.').map(str::to_string).collect())
            }
            ItemType::Bool => Arg::Bool(t.pos, t.val == "true"),
            ItemType::CharConstant | ItemType::Complex | ItemType::Number => {
                let n = parse_number(&t.val, t.typ).map_err(|m| self.errorf(m))?;
                Arg::Number(t.pos, n)
            }
            ItemType::LeftParen => {
                self.enter()?;
                let p = self.pipeline("parenthesized pipeline", ItemType::RightParen);
                self.depth -= 1;
                Arg::Pipe(Box::new(p?))
            }
            ItemType::String | ItemType::RawString => {
                let s = self.unquote(&t.val)?;
                Arg::String(t.pos, t.val.clone(), Arc::from(s))
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

fn split_var(v: &str) -> Vec<String> {
    v.split('.').map(str::to_string).collect()
}

fn end_str(i: &Item2) -> &'static str {
    match i {
        Item2::End => "{{end}}",
        Item2::Else => "{{else}}",
        Item2::Node(_) => "node",
    }
}

fn is_empty(list: &[Node]) -> bool {
    list.iter().all(|n| match n {
        Node::Text(t) => t
            .trim_matches([' ', '\t', '\r', '\n', '\x0b', '\x0c'])
            .is_empty(),
        _ => false,
    })
}

/// Go's `strconv.Unquote` for double-quoted and back-quoted strings.
pub fn unquote(s: &str) -> Option<String> {
    if s.len() >= 2 && s.starts_with('`') && s.ends_with('`') {
        let inner = &s[1..s.len() - 1];
        return Some(inner.replace('\r', ""));
    }
    if s.len() < 2 || !s.starts_with('"') || !s.ends_with('"') {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            if c == '"' || c == '\n' {
                return None;
            }
            out.push(c);
            continue;
        }
        let ch = unescape(&mut chars, '"')?;
        out.push_str(&ch);
    }
    Some(out)
}

fn unescape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, q: char) -> Option<String> {
    let e = chars.next()?;
    let hex = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>, n: usize| -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            v = v * 16 + chars.next()?.to_digit(16)?;
        }
        Some(v)
    };
    let s = match e {
        'a' => "\x07".to_string(),
        'b' => "\x08".to_string(),
        'f' => "\x0c".to_string(),
        'n' => "\n".to_string(),
        'r' => "\r".to_string(),
        't' => "\t".to_string(),
        'v' => "\x0b".to_string(),
        '\\' => "\\".to_string(),
        c if c == q => c.to_string(),
        'x' => {
            let v = hex(chars, 2)?;
            // A byte escape; only ASCII keeps the string valid UTF-8 here.
            char::from_u32(v).filter(|_| v < 0x80)?.to_string()
        }
        'u' => char::from_u32(hex(chars, 4)?)?.to_string(),
        'U' => char::from_u32(hex(chars, 8)?)?.to_string(),
        '0'..='7' => {
            let mut v = e.to_digit(8)?;
            for _ in 0..2 {
                v = v * 8 + chars.next()?.to_digit(8)?;
            }
            if v >= 0x80 {
                return None;
            }
            char::from_u32(v)?.to_string()
        }
        _ => return None,
    };
    Some(s)
}

fn parse_go_int(text: &str) -> Option<i128> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(r) = lower.strip_prefix("0x") {
        (16, r.to_string(), true)
    } else if let Some(r) = lower.strip_prefix("0b") {
        (2, r.to_string(), true)
    } else if let Some(r) = lower.strip_prefix("0o") {
        (8, r.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    if digits.contains('_') {
        // Underscores only between digits, or after a base prefix.
        let ok = !digits.ends_with('_')
            && !digits.contains("__")
            && (prefixed || !digits.starts_with('_'));
        if !ok {
            return None;
        }
    }
    let digits = digits.replace('_', "");
    if digits.is_empty() {
        return None;
    }
    let v = i128::from_str_radix(&digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

/// A hexadecimal float (`0x1.8p3`), which Rust's `parse` does not read.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let body = body
        .strip_prefix("0x")
        .or_else(|| body.strip_prefix("0X"))?;
    let (mant, exp) = body.split_once(['p', 'P'])?;
    let exp: i32 = exp.parse().ok()?;
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp);
    Some(if neg { -v } else { v })
}

fn parse_number(text: &str, typ: ItemType) -> Result<Number, String> {
    let mut n = Number {
        text: text.to_string(),
        int: None,
        uint: None,
        float: None,
    };
    if typ == ItemType::CharConstant {
        let inner = &text[1..text.len() - 1];
        let c = if let Some(rest) = inner.strip_prefix('\\') {
            let mut it = rest.chars().peekable();
            let s = unescape(&mut it, '\'').ok_or("invalid syntax")?;
            if it.next().is_some() {
                return Err(format!("malformed character constant: {text}"));
            }
            s.chars().next().ok_or("invalid syntax")?
        } else {
            let mut it = inner.chars();
            let c = it.next().ok_or("invalid syntax")?;
            if it.next().is_some() {
                return Err(format!("malformed character constant: {text}"));
            }
            c
        };
        n.int = Some(c as i64);
        n.uint = Some(c as u64);
        n.float = Some(f64::from(c as u32));
        return Ok(n);
    }
    if typ == ItemType::Complex || text.ends_with('i') {
        return Err(format!("illegal number syntax: {}", quote(text, false)));
    }
    if let Some(v) = parse_go_int(text) {
        if let Ok(u) = u64::try_from(v) {
            n.uint = Some(u);
        }
        if let Ok(i) = i64::try_from(v) {
            n.int = Some(i);
        }
    }
    if let Some(i) = n.int {
        n.float = Some(i as f64);
    } else if let Some(u) = n.uint {
        n.float = Some(u as f64);
    } else {
        let clean = text.replace('_', "");
        if let Some(f) = parse_hex_float(&clean).or_else(|| clean.parse::<f64>().ok()) {
            if !text.contains(['.', 'e', 'E', 'p', 'P']) {
                return Err(format!("integer overflow: {}", quote(text, false)));
            }
            n.float = Some(f);
            if f.fract() == 0.0 && f.abs() < 9.2e18 {
                n.int = Some(f as i64);
            }
            if f.fract() == 0.0 && (0.0..1.8e19).contains(&f) {
                n.uint = Some(f as u64);
            }
        }
    }
    if n.int.is_none() && n.uint.is_none() && n.float.is_none() {
        return Err(format!("illegal number syntax: {}", quote(text, false)));
    }
    Ok(n)
}

/// Parses `text` (named `name`) into its trees: the body under `name` and one per `define` or
/// `block`. `has_func` tells which function names exist, as Go checks them at parse time.
pub fn parse(
    name: &str,
    text: &str,
    has_func: &dyn Fn(&str) -> bool,
) -> Result<Vec<Tree>, ParseError> {
    let mut p = Parser {
        items: lex(text),
        idx: 0,
        tok: 0,
        parse_name: Arc::from(name),
        text: Arc::from(text),
        vars: vec!["$".into()],
        range_depth: 0,
        depth: 0,
        action_line: 0,
        has_func,
        out: Vec::new(),
    };
    p.parse(name)?;
    Ok(p.out)
}

/// Collects trees into a name → tree map.
pub fn into_map(trees: Vec<Tree>) -> HashMap<String, Arc<Tree>> {
    trees
        .into_iter()
        .map(|t| (t.name.clone(), Arc::new(t)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Vec<Tree>, String> {
        parse("t", s, &|n| n == "f" || n == "printf").map_err(|e| e.to_string())
    }

    #[test]
    fn prints_nodes_back() {
        let t = p("{{if .A}}x{{else if $.B}}y{{end}}{{range $i, $v := .L}}{{f $v (printf \"%d\" $i)}}{{end}}").unwrap();
        assert_eq!(
            t[0].root[0].to_string(),
            "{{if .A}}\"x\"{{else}}{{if $.B}}\"y\"{{end}}{{end}}"
        );
        assert_eq!(
            t[0].root[1].to_string(),
            "{{range $i, $v := .L}}{{f $v (printf \"%d\" $i)}}{{end}}"
        );
    }

    #[test]
    fn errors_as_go() {
        assert_eq!(p("{{.A").unwrap_err(), "template: t:1: unclosed action");
        assert_eq!(
            p("{{end}}").unwrap_err(),
            "template: t:1: unexpected {{end}}"
        );
        assert_eq!(
            p("{{g 1}}").unwrap_err(),
            "template: t:1: function \"g\" not defined"
        );
        assert_eq!(
            p("\n{{$x}}").unwrap_err(),
            "template: t:2: undefined variable \"$x\""
        );
        assert_eq!(p("{{if .A}}").unwrap_err(), "template: t:1: unexpected EOF");
        assert_eq!(
            p("{{break}}").unwrap_err(),
            "template: t:1: {{break}} outside {{range}}"
        );
        assert_eq!(
            p("{{.A | 3}}").unwrap_err(),
            "template: t:1: non executable command in pipeline stage 2"
        );
    }
}
