//! Contextual escaping as Go's `html/template` does it (`escape.go`): each action's pipeline
//! is made to end in the escapers of the context it prints in (HTML text, RCDATA, attribute
//! values, URLs, JavaScript values, strings and regexps, CSS), comments in the template text
//! are dropped (HTML comments, and JavaScript and CSS comments inside `<script>`, `<style>`),
//! a template called from a non-text context is escaped in a copy named for that context, and
//! a template whose branches or end leave the output in an ambiguous context is refused with
//! Go's error.

mod context;
mod escapers;
mod transition;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use self::context::{Attr, Ctx, Delim, Element, JsCtx, State, UrlPart};
pub use self::escapers::escaper;
use self::transition::{attr_start_state, go_quote, is_js_type, t_special_tag_end, transition};
use super::parse::{Arg, Branch, Command, Node, Pipe, Tree};
use super::printf::quote;

/// A template `html/template` refuses to execute, worded as Go's `html/template.Error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("html/template:{location}: {description}")]
pub struct EscapeError {
    /// `NAME:LINE:COL` of the node at fault, or the template's name when no node is.
    pub location: String,
    /// Go's description.
    pub description: String,
}

/// An error while escaping: its description and, when a node is at fault, its location.
struct Fault {
    location: Option<String>,
    description: String,
}

type Esc<T> = Result<T, Fault>;

/// Go's `nudge`: the context an action in a tag or before an attribute value really is in.
fn nudge(mut c: Ctx) -> Ctx {
    match c.state {
        State::Tag => c.state = State::AttrName,
        State::BeforeValue => {
            c.state = attr_start_state(c.attr);
            c.delim = Delim::SpaceOrTagEnd;
            c.attr = Attr::None;
        }
        State::AfterName => {
            c.state = State::AttrName;
            c.attr = Attr::None;
        }
        _ => {}
    }
    c
}

/// Go's `join`: the context after a branch whose arms end in `a` and `b`, or Go's description
/// of why there is none.
fn join(a: Ctx, b: Ctx, node_name: &str) -> Result<Ctx, String> {
    if a.state == State::Dead {
        return Ok(b);
    }
    if b.state == State::Dead || a == b {
        return Ok(a);
    }
    let mut c = a;
    c.url = b.url;
    if c == b {
        c.url = UrlPart::Unknown;
        return Ok(c);
    }
    let mut c = a;
    c.js = b.js;
    if c == b {
        c.js = JsCtx::Unknown;
        return Ok(c);
    }
    let (c, d) = (nudge(a), nudge(b));
    if (c != a || d != b)
        && let Ok(e) = join(c, d, node_name)
    {
        return Ok(e);
    }
    Err(format!(
        "{{{{{node_name}}}}} branches end in different contexts: {a}, {b}"
    ))
}

/// The contexts at the `break` and `continue` actions of the loop being escaped, with their
/// positions.
#[derive(Clone, Default)]
struct RangeCtx {
    breaks: Vec<(Ctx, usize)>,
    continues: Vec<(Ctx, usize)>,
}

/// The escapers `html/template` inserts for a context.
fn escapers_for(c: &mut Ctx) -> Result<Vec<&'static str>, &'static str> {
    let mut s = Vec::with_capacity(3);
    match c.state {
        State::Url
        | State::CssDqStr
        | State::CssSqStr
        | State::CssDqUrl
        | State::CssSqUrl
        | State::CssUrl => match c.url {
            UrlPart::None | UrlPart::PreQuery => {
                if c.url == UrlPart::None {
                    s.push("_html_template_urlfilter");
                }
                s.push(match c.state {
                    State::CssDqStr | State::CssSqStr => "_html_template_cssescaper",
                    _ => "_html_template_urlnormalizer",
                });
            }
            UrlPart::QueryOrFrag => s.push("_html_template_urlescaper"),
            UrlPart::Unknown => return Err("appears in an ambiguous context within a URL"),
        },
        State::Js => {
            s.push("_html_template_jsvalescaper");
            c.js = JsCtx::DivOp;
        }
        State::JsDqStr | State::JsSqStr => s.push("_html_template_jsstrescaper"),
        State::JsBqStr => return Err("appears in a JS template literal"),
        State::JsRegexp => s.push("_html_template_jsregexpescaper"),
        State::Css => s.push("_html_template_cssvaluefilter"),
        State::Text => s.push("_html_template_htmlescaper"),
        State::Rcdata => s.push("_html_template_rcdataescaper"),
        State::Attr => {}
        State::AttrName | State::Tag => {
            c.state = State::AttrName;
            s.push("_html_template_htmlnamefilter");
        }
        State::Srcset => s.push("_html_template_srcsetescaper"),
        State::HtmlCmt
        | State::JsBlockCmt
        | State::JsLineCmt
        | State::CssBlockCmt
        | State::CssLineCmt => s.push("_html_template_commentescaper"),
        // Nudged away, or ended the list before any action.
        State::AfterName | State::BeforeValue | State::Dead => {}
    }
    match c.delim {
        Delim::None => {}
        Delim::SpaceOrTagEnd => s.push("_html_template_nospaceescaper"),
        Delim::DoubleQuote | Delim::SingleQuote => s.push("_html_template_attrescaper"),
    }
    Ok(s)
}

fn is_predefined(name: &str) -> bool {
    name == "html" || name == "urlquery"
}

/// Go's `normalizeEscFn`: escapers that `html` or `urlquery` already does.
fn normalize(name: &str) -> &str {
    match name {
        "_html_template_attrescaper"
        | "_html_template_htmlescaper"
        | "_html_template_rcdataescaper" => "html",
        "_html_template_urlescaper" | "_html_template_urlnormalizer" => "urlquery",
        n => n,
    }
}

/// Go's `redundantFuncs`: escapers made useless by the one before them.
fn redundant(last: &str, next: &str) -> bool {
    matches!(
        (last, next),
        (
            "_html_template_commentescaper",
            "_html_template_attrescaper"
                | "_html_template_nospaceescaper"
                | "_html_template_htmlescaper"
        ) | (
            "_html_template_cssescaper"
                | "_html_template_jsregexpescaper"
                | "_html_template_jsstrescaper",
            "_html_template_attrescaper"
        ) | ("_html_template_urlescaper", "_html_template_urlnormalizer")
    )
}

fn ident(c: &Command) -> Option<&str> {
    match c.args.first() {
        Some(Arg::Identifier(_, n)) => Some(n),
        _ => None,
    }
}

/// Go's `appendCmd`: adds a command unless the last one makes it redundant.
fn append_cmd(cmds: &mut Vec<Command>, cmd: Command) {
    if let (Some(last), Some(next)) = (cmds.last().and_then(ident), ident(&cmd))
        && redundant(last, next)
    {
        return;
    }
    cmds.push(cmd);
}

fn ident_cmd(name: &str, pos: usize) -> Command {
    Command {
        pos,
        args: vec![Arg::Identifier(pos, name.to_string())],
    }
}

/// Go's `ensurePipelineContains`: appends the escapers, merging a trailing `html`/`urlquery`.
fn ensure_pipeline_contains(p: &mut Pipe, s: &[&'static str]) {
    if s.is_empty() {
        return;
    }
    let mut names: Vec<String> = s.iter().map(|n| n.to_string()).collect();
    let mut len = p.cmds.len();
    if let Some(esc) = p.cmds.last().and_then(ident).map(str::to_string)
        && is_predefined(&esc)
    {
        if p.cmds.len() == 1 && p.cmds[0].args.len() > 1 {
            let pos = p.cmds[0].args[0].pos();
            p.cmds[0].args[0] = Arg::Identifier(pos, "_eval_args_".into());
            append_cmd(&mut p.cmds, ident_cmd(&esc, p.pos));
            len += 1;
        }
        let mut dup = false;
        for n in names.iter_mut() {
            if normalize(n) == normalize(&esc) {
                *n = esc.clone();
                dup = true;
            }
        }
        if dup {
            len -= 1;
        }
    }
    p.cmds.truncate(len);
    let inserted: HashSet<String> = p
        .cmds
        .iter()
        .filter_map(ident)
        .map(|n| normalize(n).to_string())
        .collect();
    for n in names {
        if !inserted.contains(normalize(&n)) {
            append_cmd(&mut p.cmds, ident_cmd(&n, p.pos));
        }
    }
}

/// The position Go gives an action node: its first token after the left delimiter (a space,
/// when one follows `{{` or the trim marker `{{- `), where the pipeline starts at its first
/// word.
fn action_pos(text: &str, pipe: &Pipe) -> usize {
    let b = text.as_bytes();
    let mut p = pipe.pos.min(b.len());
    while p > 0 && matches!(b[p - 1], b' ' | b'\t' | b'\r' | b'\n') {
        p -= 1;
    }
    if p < pipe.pos && text[..p].ends_with("{{-") {
        p += 1;
    }
    p
}

/// Go's `html.UnescapeString` for the entities attribute values use: numeric references and
/// the named ones HTML's syntax needs (`&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&nbsp;`).
fn html_unescape(s: &[u8]) -> Vec<u8> {
    if !s.contains(&b'&') {
        return s.to_vec();
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'&' {
            out.push(s[i]);
            i += 1;
            continue;
        }
        let rest = &s[i + 1..];
        if rest.first() == Some(&b'#') {
            let hex = matches!(rest.get(1), Some(b'x' | b'X'));
            let start = if hex { 2 } else { 1 };
            let digits = rest[start..]
                .iter()
                .take_while(|b| {
                    if hex {
                        b.is_ascii_hexdigit()
                    } else {
                        b.is_ascii_digit()
                    }
                })
                .count();
            if digits > 0 {
                let text = std::str::from_utf8(&rest[start..start + digits]).unwrap_or("0");
                let n = u32::from_str_radix(text, if hex { 16 } else { 10 }).unwrap_or(u32::MAX);
                let ch = char::from_u32(n)
                    .filter(|&c| c != '\0')
                    .unwrap_or('\u{fffd}');
                let mut buf = [0; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                let mut end = i + 1 + start + digits;
                if s.get(end) == Some(&b';') {
                    end += 1;
                }
                i = end;
                continue;
            }
        }
        let named: &[(&str, &str)] = &[
            ("amp;", "&"),
            ("lt;", "<"),
            ("gt;", ">"),
            ("quot;", "\""),
            ("apos;", "'"),
            ("nbsp;", "\u{a0}"),
            ("amp", "&"),
            ("lt", "<"),
            ("gt", ">"),
            ("quot", "\""),
        ];
        match named.iter().find(|(n, _)| rest.starts_with(n.as_bytes())) {
            Some((n, v)) => {
                out.extend_from_slice(v.as_bytes());
                i += 1 + n.len();
            }
            None => {
                out.push(b'&');
                i += 1;
            }
        }
    }
    out
}

/// Go's `contextAfterText`: the context after a prefix of template text, and its length.
fn context_after_text(c: Ctx, s: &[u8]) -> Result<(Ctx, usize), String> {
    if c.delim == Delim::None {
        let (c1, i) = t_special_tag_end(c, s);
        if i == 0 {
            return Ok((c1, 0));
        }
        return transition(c, &s[..i]);
    }
    let ends: &[u8] = match c.delim {
        Delim::DoubleQuote => b"\"",
        Delim::SingleQuote => b"'",
        _ => b" \t\n\x0c\r>",
    };
    let mut i = s.iter().position(|b| ends.contains(b)).unwrap_or(s.len());
    if c.delim == Delim::SpaceOrTagEnd
        && let Some(j) = s[..i].iter().position(|b| b"\"'<=`".contains(b))
    {
        return Err(format!(
            "{} in unquoted attr: {}",
            go_quote(&s[j..j + 1]),
            go_quote(&s[..i])
        ));
    }
    if i == s.len() {
        let u = html_unescape(s);
        let mut u = u.as_slice();
        let mut c = c;
        while !u.is_empty() {
            let (c1, i1) = transition(c, u)?;
            if i1 == 0 && c1 == c {
                break;
            }
            c = c1;
            u = &u[i1..];
        }
        return Ok((c, s.len()));
    }
    let mut element = c.element;
    if c.state == State::Attr
        && c.element == Element::Script
        && c.attr == Attr::ScriptType
        && !is_js_type(&String::from_utf8_lossy(&s[..i]))
    {
        element = Element::None;
    }
    if c.delim != Delim::SpaceOrTagEnd {
        i += 1;
    }
    Ok((
        Ctx {
            state: State::Tag,
            element,
            ..Ctx::default()
        },
        i,
    ))
}

/// Go's `escapeText`: the context after a text node, and the text to write in its place if it
/// changes (a `<` that starts no tag written `&lt;`, comments dropped).
fn escape_text(mut c: Ctx, text: &str) -> Result<(Ctx, Option<String>), String> {
    let s = text.as_bytes();
    let mut b: Vec<u8> = Vec::new();
    let (mut written, mut i) = (0, 0);
    while i != s.len() {
        let (c1, nread) = context_after_text(c, &s[i..])?;
        let i1 = i + nread;
        if c.state == State::Text || c.state == State::Rcdata {
            let mut end = i1;
            if c1.state != c.state
                && let Some(j) = (i..end).rev().find(|&j| s[j] == b'<')
            {
                end = j;
            }
            for j in i..end {
                if s[j] == b'<'
                    && !(s.len() - j >= 9 && s[j..j + 9].eq_ignore_ascii_case(b"<!DOCTYPE"))
                {
                    b.extend_from_slice(&s[written..j]);
                    b.extend_from_slice(b"&lt;");
                    written = j + 1;
                }
            }
        } else if c.state.is_comment() && c.delim == Delim::None {
            match c.state {
                State::JsBlockCmt => {
                    let inner = String::from_utf8_lossy(&s[written..i1]);
                    b.push(if inner.contains(['\n', '\r', '\u{2028}', '\u{2029}']) {
                        b'\n'
                    } else {
                        b' '
                    });
                }
                State::CssBlockCmt => b.push(b' '),
                _ => {}
            }
            written = i1;
        }
        if c.state != c1.state && c1.state.is_comment() && c1.delim == Delim::None {
            let cs = i1.saturating_sub(if c1.state == State::HtmlCmt { 4 } else { 2 });
            b.extend_from_slice(&s[written..cs.max(written)]);
            written = i1;
        }
        if i == i1 && c == c1 {
            // Go panics here ("infinite loop"); no transition leaves both unchanged.
            break;
        }
        c = c1;
        i = i1;
    }
    if written == 0 {
        return Ok((c, None));
    }
    if !c.state.is_comment() || c.delim != Delim::None {
        b.extend_from_slice(&s[written..]);
    }
    Ok((c, Some(String::from_utf8_lossy(&b).into_owned())))
}

/// One escaping pass over a set, as Go's `escaper`: the escaped copies it has made, the
/// context each ends in, and the templates called since it started.
struct Escaper<'a> {
    source: &'a HashMap<String, Arc<Tree>>,
    done: HashMap<String, Arc<Tree>>,
    output: HashMap<String, Ctx>,
    called: HashSet<String>,
    ranges: Vec<RangeCtx>,
    /// The tree whose nodes are being escaped, for error positions.
    tree: Arc<Tree>,
}

impl<'a> Escaper<'a> {
    fn at(&self, pos: usize, description: String) -> Fault {
        Fault {
            location: Some(self.tree.location(pos)),
            description,
        }
    }

    /// A pass that starts from this one's results; its own are merged back only if wanted.
    fn child(&mut self) -> Escaper<'a> {
        Escaper {
            source: self.source,
            done: self.done.clone(),
            output: self.output.clone(),
            called: HashSet::new(),
            ranges: std::mem::take(&mut self.ranges),
            tree: self.tree.clone(),
        }
    }

    /// Go's `escapeTree`: escapes the template `name` for a call in context `c`; returns the
    /// context it ends in and the name of the escaped copy.
    fn tree(&mut self, c: Ctx, name: &str, pos: Option<usize>) -> Esc<(Ctx, String)> {
        let dname = c.mangle(name);
        self.called.insert(dname.clone());
        if let Some(out) = self.output.get(&dname) {
            return Ok((*out, dname));
        }
        let Some(src) = self.source.get(name).cloned() else {
            let description = format!("no such template {}", quote(name, false));
            return Err(match pos {
                Some(p) => self.at(p, description),
                None => Fault {
                    location: None,
                    description,
                },
            });
        };
        let outer = std::mem::replace(&mut self.tree, src.clone());
        let result = self.compute_out_ctx(c, &src, &dname);
        self.tree = outer;
        Ok((result?, dname))
    }

    /// Go's `computeOutCtx`: escapes the body assuming that recursive calls end where it
    /// starts; failing that, where the first attempt ended.
    fn compute_out_ctx(&mut self, c: Ctx, src: &Arc<Tree>, dname: &str) -> Esc<Ctx> {
        let (mut c1, mut ok) = self.template_body(c, src, dname)?;
        if !ok {
            let (c2, ok2) = self.template_body(c1, src, dname)?;
            if ok2 {
                (c1, ok) = (c2, true);
            }
        }
        if !ok {
            return Err(self.at(
                0,
                format!("cannot compute output context for template {dname}"),
            ));
        }
        Ok(c1)
    }

    fn template_body(&mut self, c: Ctx, src: &Arc<Tree>, dname: &str) -> Esc<(Ctx, bool)> {
        self.output.insert(dname.to_string(), c);
        let mut root = src.root.clone();
        let mut e1 = self.child();
        let result = e1.list(c, &mut root);
        self.ranges = std::mem::take(&mut e1.ranges);
        let c1 = result?;
        let ok = !e1.called.contains(dname) || c == c1;
        if ok {
            let mut tree = Tree::clone(src);
            tree.name = dname.to_string();
            tree.root = root;
            e1.done.insert(dname.to_string(), Arc::new(tree));
            self.done = e1.done;
            self.output = e1.output;
            self.called.extend(e1.called);
        }
        Ok((c1, ok))
    }

    fn list(&mut self, mut c: Ctx, list: &mut [Node]) -> Esc<Ctx> {
        for n in list {
            c = self.node(c, n)?;
            if c.state == State::Dead {
                break;
            }
        }
        Ok(c)
    }

    fn node(&mut self, c: Ctx, n: &mut Node) -> Esc<Ctx> {
        match n {
            Node::Text(t) => {
                let (c, text) = escape_text(c, t).map_err(|description| Fault {
                    location: None,
                    description,
                })?;
                if let Some(text) = text {
                    *t = Arc::from(text);
                }
                Ok(c)
            }
            Node::Action(p) => self.action(c, p),
            Node::If(b) => self.branch(c, b, "if"),
            Node::With(b) => self.branch(c, b, "with"),
            Node::Range(b) => self.branch(c, b, "range"),
            Node::Template { pos, name, .. } => {
                let (end, dname) = self.tree(c, name, Some(*pos))?;
                *name = dname;
                Ok(end)
            }
            Node::Break(pos) => {
                if let Some(r) = self.ranges.last_mut() {
                    r.breaks.push((c, *pos));
                }
                Ok(Ctx {
                    state: State::Dead,
                    ..Ctx::default()
                })
            }
            Node::Continue(pos) => {
                if let Some(r) = self.ranges.last_mut() {
                    // Go 1.19 appends to the breaks here, so a loop's continues also carry
                    // its earlier breaks.
                    let mut continues = r.breaks.clone();
                    continues.push((c, *pos));
                    r.continues = continues;
                }
                Ok(Ctx {
                    state: State::Dead,
                    ..Ctx::default()
                })
            }
        }
    }

    /// Go's `escapeAction`.
    fn action(&mut self, c: Ctx, p: &mut Pipe) -> Esc<Ctx> {
        if !p.decl.is_empty() {
            return Ok(c);
        }
        let mut c = nudge(c);
        let pos = action_pos(&self.tree.text, p);
        for (i, cmd) in p.cmds.iter().enumerate() {
            if let Some(id) = ident(cmd)
                && is_predefined(id)
                && (i < p.cmds.len() - 1
                    || c.state == State::Attr && c.delim == Delim::SpaceOrTagEnd && id == "html")
            {
                return Err(self.at(
                    pos,
                    format!(
                        "predefined escaper {} disallowed in template",
                        quote(id, false)
                    ),
                ));
            }
        }
        match escapers_for(&mut c) {
            Ok(s) => {
                ensure_pipeline_contains(p, &s);
                Ok(c)
            }
            Err(what) => Err(self.at(pos, format!("{{{{{p}}}}} {what}"))),
        }
    }

    /// Go's `escapeBranch`.
    fn branch(&mut self, c: Ctx, b: &mut Branch, name: &str) -> Esc<Ctx> {
        let mut c0 = if name == "range" {
            let again = b.list.clone();
            self.ranges.push(RangeCtx::default());
            let first = self.list(c, &mut b.list);
            let rc = self.ranges.pop().unwrap_or_default();
            let c0 = self.join_range(first?, rc)?;
            // The body can run again after itself: it must end where it starts.
            self.ranges.push(RangeCtx::default());
            let reentry = self.reentry(c0, again);
            let joined = reentry.and_then(|c1| {
                join(c0, c1, name).map_err(|description| self.at(b.pos, description))
            });
            let joined = match joined {
                Ok(j) => j,
                Err(mut f) => {
                    self.ranges.pop();
                    f.description = format!("on range loop re-entry: {}", f.description);
                    return Err(f);
                }
            };
            let rc = self.ranges.pop().unwrap_or_default();
            self.join_range(joined, rc)?
        } else {
            self.list(c, &mut b.list)?
        };
        let c1 = match &mut b.else_list {
            Some(e) => self.list(c, e)?,
            None => c,
        };
        c0 = join(c0, c1, name).map_err(|description| self.at(b.pos, description))?;
        Ok(c0)
    }

    /// Escapes a loop body once more, from where it ended, keeping nothing but the context.
    fn reentry(&mut self, c0: Ctx, mut body: Vec<Node>) -> Esc<Ctx> {
        let mut e1 = self.child();
        let result = e1.list(c0, &mut body);
        self.ranges = std::mem::take(&mut e1.ranges);
        result
    }

    /// Go's `joinRange`: joins the contexts at the loop's `break` and `continue` actions.
    fn join_range(&self, mut c0: Ctx, rc: RangeCtx) -> Esc<Ctx> {
        for (what, list) in [("break", rc.breaks), ("continue", rc.continues)] {
            for (c, pos) in list {
                c0 = join(c0, c, "range").map_err(|description| {
                    self.at(pos, format!("at range loop {what}: {description}"))
                })?;
            }
        }
        Ok(c0)
    }
}

/// The escaped trees of an HTML set, built as its templates are first executed (Go escapes
/// lazily too): each entry template in text context and each template in every context it is
/// called from; and the templates that could not be escaped, with Go's error.
#[derive(Debug, Default)]
pub struct Cache {
    trees: Arc<HashMap<String, Arc<Tree>>>,
    output: HashMap<String, Ctx>,
    failed: HashMap<String, EscapeError>,
}

impl Cache {
    /// A cache for the same set after `names` were (re)defined: what escaping did for other
    /// templates is kept.
    pub fn without(&self, names: &[&str]) -> Cache {
        let base = |k: &String| k.split('$').next().unwrap_or("").to_string();
        let keep = |k: &String| !names.contains(&base(k).as_str());
        Cache {
            trees: Arc::new(
                self.trees
                    .iter()
                    .filter(|(k, _)| keep(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            output: self
                .output
                .iter()
                .filter(|(k, _)| keep(k))
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            failed: HashMap::new(),
        }
    }

    /// The escaped trees, with the template `name` of `source` escaped among them; or Go's
    /// error if it cannot be (its branches or its end leave an ambiguous context, a value
    /// would land where no escaper is safe, …).
    pub fn escaped(
        &mut self,
        source: &HashMap<String, Arc<Tree>>,
        name: &str,
    ) -> Result<Arc<HashMap<String, Arc<Tree>>>, EscapeError> {
        if let Some(e) = self.failed.get(name) {
            return Err(e.clone());
        }
        if self.trees.contains_key(name) {
            return Ok(self.trees.clone());
        }
        let Some(tree) = source.get(name) else {
            return Ok(self.trees.clone());
        };
        let mut e = Escaper {
            source,
            done: (*self.trees).clone(),
            output: self.output.clone(),
            called: HashSet::new(),
            ranges: Vec::new(),
            tree: tree.clone(),
        };
        let fail = |location: Option<String>, description: String| EscapeError {
            location: location.unwrap_or_else(|| name.to_string()),
            description,
        };
        let err = match e.tree(Ctx::default(), name, None) {
            Ok((c, _)) if c.state == State::Text => None,
            Ok((c, _)) => Some(fail(None, format!("ends in a non-text context: {c}"))),
            Err(f) => Some(fail(f.location, f.description)),
        };
        if let Some(err) = err {
            self.failed.insert(name.to_string(), err.clone());
            return Err(err);
        }
        self.trees = Arc::new(e.done);
        self.output = e.output;
        Ok(self.trees.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_comments_and_tracks_attributes() {
        let (c, out) = escape_text(Ctx::default(), "a<!-- x -->b<a href=\"").unwrap();
        assert_eq!(out.as_deref(), Some("ab<a href=\""));
        assert_eq!(c.state, State::Url);
        assert_eq!(c.delim, Delim::DoubleQuote);
        let (c, _) = escape_text(c, "http://x/?q=").unwrap();
        assert_eq!(c.url, UrlPart::QueryOrFrag);
        let (c, _) = escape_text(c, "\">").unwrap();
        assert_eq!(c, Ctx::default());
        let (c, _) = escape_text(Ctx::default(), "<title>").unwrap();
        assert_eq!(c.state, State::Rcdata);
    }

    #[test]
    fn drops_script_comments() {
        let (c, out) = escape_text(
            Ctx::default(),
            "<script>a = 1; /* x\n */ b // y\nc</script>",
        )
        .unwrap();
        assert_eq!(out.as_deref(), Some("<script>a = 1; \n b \nc</script>"));
        assert_eq!(c, Ctx::default());
        let (c, _) = escape_text(Ctx::default(), "<script>x = '").unwrap();
        assert_eq!(c.state, State::JsSqStr);
        let (c, _) = escape_text(Ctx::default(), "<a onclick=\"f(&quot;").unwrap();
        assert_eq!(c.state, State::JsDqStr);
    }

    #[test]
    fn joins_branches_as_go() {
        let text = Ctx::default();
        let tag = Ctx {
            state: State::Tag,
            ..Ctx::default()
        };
        assert_eq!(join(text, text, "if"), Ok(text));
        assert_eq!(
            join(tag, text, "if").unwrap_err(),
            "{{if}} branches end in different contexts: \
             {stateTag delimNone urlPartNone jsCtxRegexp attrNone elementNone <nil>}, \
             {stateText delimNone urlPartNone jsCtxRegexp attrNone elementNone <nil>}"
        );
        let url = |u| Ctx {
            state: State::Url,
            url: u,
            ..Ctx::default()
        };
        assert_eq!(
            join(url(UrlPart::None), url(UrlPart::PreQuery), "if"),
            Ok(url(UrlPart::Unknown))
        );
    }
}
