//! Contextual escaping as Go's `html/template` does it, for the contexts notification emails
//! use: text, RCDATA (`<title>`), attribute values (quoted and not), URLs in `href`/`src`
//! (an unsafe scheme becomes `#ZgotmplZ`), with HTML comments dropped from the template text.
//! Like Go, escaping rewrites each action's pipeline to end in escaper functions, and a template
//! called from a non-text context is escaped in a copy named for that context.

use std::collections::HashMap;
use std::sync::Arc;

use super::funcs::{eval_args, query_escape};
use super::parse::{Arg, Command, Node, Pipe, Tree};
use super::printf::sprint;
use super::value::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
enum State {
    #[default]
    Text,
    Tag,
    AttrName,
    AfterName,
    BeforeValue,
    HtmlCmt,
    Rcdata,
    Attr,
    Url,
    Js,
    Css,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
enum Delim {
    #[default]
    None,
    Double,
    Single,
    SpaceOrTagEnd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
enum UrlPart {
    #[default]
    None,
    PreQuery,
    QueryOrFrag,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
enum AttrType {
    #[default]
    Normal,
    Url,
    Js,
    Css,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
enum Element {
    #[default]
    None,
    Script,
    Style,
    Textarea,
    Title,
}

/// Where in an HTML document the output is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
struct Ctx {
    state: State,
    delim: Delim,
    url: UrlPart,
    attr: AttrType,
    element: Element,
}

impl Ctx {
    fn mangle(&self, name: &str) -> String {
        if *self == Ctx::default() {
            return name.to_string();
        }
        let mut s = format!("{name}$htmltemplate_state{:?}", self.state);
        if self.delim != Delim::None {
            s.push_str(&format!("_delim{:?}", self.delim));
        }
        if self.url != UrlPart::None {
            s.push_str(&format!("_urlPart{:?}", self.url));
        }
        if self.element != Element::None {
            s.push_str(&format!("_element{:?}", self.element));
        }
        s
    }
}

fn attr_type(name: &str) -> AttrType {
    let mut n = name.to_ascii_lowercase();
    if let Some((_, local)) = n.split_once(':') {
        n = local.to_string();
    }
    if let Some(rest) = n.strip_prefix("data-") {
        n = rest.to_string();
    }
    if n.starts_with("on") {
        return AttrType::Js;
    }
    if n == "style" {
        return AttrType::Css;
    }
    const URLS: &[&str] = &[
        "action",
        "archive",
        "background",
        "cite",
        "classid",
        "codebase",
        "data",
        "formaction",
        "href",
        "icon",
        "longdesc",
        "manifest",
        "poster",
        "profile",
        "src",
        "usemap",
        "xmlns",
    ];
    if URLS.contains(&n.as_str()) || n.contains("src") || n.contains("uri") || n.contains("url") {
        return AttrType::Url;
    }
    AttrType::Normal
}

fn value_state(a: AttrType) -> State {
    match a {
        AttrType::Normal => State::Attr,
        AttrType::Url => State::Url,
        AttrType::Js => State::Js,
        AttrType::Css => State::Css,
    }
}

fn find_ci(hay: &str, from: usize, needle: &str) -> Option<usize> {
    let h = hay.as_bytes();
    let n = needle.as_bytes();
    (from..h.len().saturating_sub(n.len() - 1)).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// Moves the context over template text; returns the new context and the text to output
/// (HTML comments dropped, as Go does).
fn escape_text(mut c: Ctx, s: &str) -> (Ctx, String) {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut written = 0;
    let mut i = 0;
    let is_space = |x: u8| matches!(x, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c');
    while i < b.len() {
        match c.state {
            State::Text => {
                let Some(j) = s[i..].find('<').map(|j| j + i) else {
                    break;
                };
                if s[j..].starts_with("<!--") {
                    out.push_str(&s[written..j]);
                    match s[j + 4..].find("-->") {
                        Some(k) => i = j + 4 + k + 3,
                        None => {
                            c.state = State::HtmlCmt;
                            i = b.len();
                        }
                    }
                    written = i;
                    continue;
                }
                let mut k = j + 1;
                let end_tag = b.get(k) == Some(&b'/');
                if end_tag {
                    k += 1;
                }
                if b.get(k).is_some_and(u8::is_ascii_alphabetic) {
                    let start = k;
                    while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'-') {
                        k += 1;
                    }
                    let name = s[start..k].to_ascii_lowercase();
                    c.element = match name.as_str() {
                        _ if end_tag => Element::None,
                        "script" => Element::Script,
                        "style" => Element::Style,
                        "textarea" => Element::Textarea,
                        "title" => Element::Title,
                        _ => Element::None,
                    };
                    c.state = State::Tag;
                    i = k;
                } else {
                    // A '<' that starts no tag is written as "&lt;", as Go does.
                    if !s[j..].to_ascii_uppercase().starts_with("<!DOCTYPE") {
                        out.push_str(&s[written..j]);
                        out.push_str("&lt;");
                        written = j + 1;
                    }
                    i = j + 1;
                }
            }
            State::HtmlCmt => {
                match s[i..].find("-->") {
                    Some(k) => {
                        i += k + 3;
                        c.state = State::Text;
                    }
                    None => i = b.len(),
                }
                written = i;
            }
            State::Tag | State::AttrName => {
                while i < b.len() && (is_space(b[i]) || b[i] == b'/') {
                    i += 1;
                }
                if i >= b.len() {
                    break;
                }
                if b[i] == b'>' {
                    i += 1;
                    c.state = match c.element {
                        Element::Script => State::Js,
                        Element::Style => State::Css,
                        Element::Textarea | Element::Title => State::Rcdata,
                        Element::None => State::Text,
                    };
                    continue;
                }
                let start = i;
                while i < b.len() && !is_space(b[i]) && b[i] != b'=' && b[i] != b'>' {
                    i += 1;
                }
                c.attr = attr_type(&s[start..i]);
                c.state = State::AfterName;
            }
            State::AfterName => {
                while i < b.len() && is_space(b[i]) {
                    i += 1;
                }
                if i >= b.len() {
                    break;
                }
                if b[i] == b'=' {
                    i += 1;
                    c.state = State::BeforeValue;
                } else {
                    c.state = State::Tag;
                    c.attr = AttrType::Normal;
                }
            }
            State::BeforeValue => {
                while i < b.len() && is_space(b[i]) {
                    i += 1;
                }
                if i >= b.len() {
                    break;
                }
                c.delim = match b[i] {
                    b'"' => Delim::Double,
                    b'\'' => Delim::Single,
                    _ => Delim::SpaceOrTagEnd,
                };
                if c.delim != Delim::SpaceOrTagEnd {
                    i += 1;
                }
                c.state = value_state(c.attr);
                c.url = UrlPart::None;
            }
            _ if c.delim != Delim::None => {
                let end = match c.delim {
                    Delim::Double => s[i..].find('"'),
                    Delim::Single => s[i..].find('\''),
                    _ => s[i..].find(|ch: char| ch.is_ascii_whitespace() || ch == '>'),
                }
                .map(|e| e + i);
                let content = &s[i..end.unwrap_or(b.len())];
                if c.state == State::Url && c.url != UrlPart::QueryOrFrag {
                    if content.contains(['?', '#']) {
                        c.url = UrlPart::QueryOrFrag;
                    } else if !content.is_empty() {
                        c.url = UrlPart::PreQuery;
                    }
                }
                match end {
                    Some(e) => {
                        i = if c.delim == Delim::SpaceOrTagEnd {
                            e
                        } else {
                            e + 1
                        };
                        c.state = State::Tag;
                        c.delim = Delim::None;
                        c.attr = AttrType::Normal;
                        c.url = UrlPart::None;
                    }
                    None => i = b.len(),
                }
            }
            State::Rcdata | State::Js | State::Css | State::Attr | State::Url => {
                let tag = match c.element {
                    Element::Script => "</script",
                    Element::Style => "</style",
                    Element::Textarea => "</textarea",
                    Element::Title => "</title",
                    Element::None => {
                        c.state = State::Text;
                        continue;
                    }
                };
                let end = find_ci(s, i, tag);
                if c.state == State::Rcdata {
                    let stop = end.unwrap_or(b.len());
                    for j in i..stop {
                        if b[j] == b'<' {
                            out.push_str(&s[written..j]);
                            out.push_str("&lt;");
                            written = j + 1;
                        }
                    }
                }
                match end {
                    Some(k) => {
                        i = k;
                        c.state = State::Text;
                        c.element = Element::None;
                    }
                    None => i = b.len(),
                }
            }
        }
    }
    if written < b.len() && c.state != State::HtmlCmt {
        out.push_str(&s[written..]);
    }
    (c, out)
}

/// Go's `nudge`: the context an action in a tag or before an attribute value really is in.
fn nudge(mut c: Ctx) -> Ctx {
    match c.state {
        State::Tag | State::AfterName => c.state = State::AttrName,
        State::BeforeValue => {
            c.state = value_state(c.attr);
            c.delim = Delim::SpaceOrTagEnd;
            c.url = UrlPart::None;
        }
        _ => {}
    }
    c
}

fn escapers(c: Ctx) -> Vec<&'static str> {
    let mut s = Vec::with_capacity(3);
    match c.state {
        State::Url => match c.url {
            UrlPart::None => {
                s.push("_html_template_urlfilter");
                s.push("_html_template_urlnormalizer");
            }
            UrlPart::PreQuery => s.push("_html_template_urlnormalizer"),
            UrlPart::QueryOrFrag => s.push("_html_template_urlescaper"),
        },
        State::Js => s.push("_html_template_jsvalescaper"),
        State::Css => s.push("_html_template_cssvaluefilter"),
        State::Text => s.push("_html_template_htmlescaper"),
        State::Rcdata => s.push("_html_template_rcdataescaper"),
        State::Attr => {}
        State::AttrName | State::Tag | State::AfterName | State::BeforeValue => {
            s.push("_html_template_htmlnamefilter")
        }
        State::HtmlCmt => s.push("_html_template_commentescaper"),
    }
    match c.delim {
        Delim::None => {}
        Delim::SpaceOrTagEnd => s.push("_html_template_nospaceescaper"),
        _ => s.push("_html_template_attrescaper"),
    }
    s
}

fn normalize(name: &str) -> &str {
    match name {
        "_html_template_attrescaper"
        | "_html_template_htmlescaper"
        | "_html_template_rcdataescaper" => "html",
        "_html_template_urlescaper" | "_html_template_urlnormalizer" => "urlquery",
        n => n,
    }
}

fn ident(c: &Command) -> Option<&str> {
    match c.args.first() {
        Some(Arg::Identifier(_, n)) => Some(n),
        _ => None,
    }
}

/// Go's `ensurePipelineContains`: appends the escapers, merging a trailing `html`/`urlquery`.
fn ensure_pipeline_contains(p: &mut Pipe, mut s: Vec<&'static str>) {
    if s.is_empty() {
        return;
    }
    let mut len = p.cmds.len();
    let mut names: Vec<String> = s.iter().map(|n| n.to_string()).collect();
    if let Some(last) = p.cmds.last_mut()
        && let Some(esc) = ident(last).map(str::to_string)
        && (esc == "html" || esc == "urlquery")
    {
        if len == 1 && last.args.len() > 1 {
            let pos = last.args[0].pos();
            last.args[0] = Arg::Identifier(pos, "_eval_args_".into());
            p.cmds.push(Command {
                pos: p.pos,
                args: vec![Arg::Identifier(p.pos, esc.clone())],
            });
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
    let inserted: Vec<String> = p
        .cmds
        .iter()
        .filter_map(ident)
        .map(|n| normalize(n).to_string())
        .collect();
    for n in names {
        if !inserted.iter().any(|i| i == normalize(&n)) {
            p.cmds.push(Command {
                pos: p.pos,
                args: vec![Arg::Identifier(p.pos, n)],
            });
        }
    }
    s.clear();
}

struct Escaper<'a> {
    source: &'a HashMap<String, Arc<Tree>>,
    done: &'a mut HashMap<String, Arc<Tree>>,
    out_ctx: &'a mut HashMap<String, Ctx>,
}

impl Escaper<'_> {
    fn tree(&mut self, c: Ctx, name: &str) -> (Ctx, String) {
        let dname = c.mangle(name);
        if let Some(end) = self.out_ctx.get(&dname) {
            return (*end, dname);
        }
        let Some(src) = self.source.get(name) else {
            return (c, name.to_string());
        };
        self.out_ctx.insert(dname.clone(), c);
        let mut tree = Tree::clone(src);
        tree.name = dname.clone();
        let end = self.list(c, &mut tree.root);
        self.out_ctx.insert(dname.clone(), end);
        self.done.insert(dname.clone(), Arc::new(tree));
        (end, dname)
    }

    fn list(&mut self, mut c: Ctx, list: &mut [Node]) -> Ctx {
        for n in list {
            c = self.node(c, n);
        }
        c
    }

    fn node(&mut self, c: Ctx, n: &mut Node) -> Ctx {
        match n {
            Node::Text(t) => {
                let (c, text) = escape_text(c, t);
                if text.len() != t.len() {
                    *t = Arc::from(text);
                }
                c
            }
            Node::Action(p) => {
                if !p.decl.is_empty() {
                    return c;
                }
                let c = nudge(c);
                ensure_pipeline_contains(p, escapers(c));
                c
            }
            Node::If(b) | Node::With(b) | Node::Range(b) => {
                let c0 = self.list(c, &mut b.list);
                if let Some(e) = &mut b.else_list {
                    self.list(c, e);
                }
                c0
            }
            Node::Template { name, .. } => {
                let (end, dname) = self.tree(c, name);
                *name = dname;
                end
            }
            Node::Break(_) | Node::Continue(_) => c,
        }
    }
}

/// The escaped trees of an HTML set, built as its templates are first executed (Go escapes
/// lazily too): each entry template in text context and each template in every context it is
/// called from.
#[derive(Debug, Default)]
pub struct Cache {
    trees: Arc<HashMap<String, Arc<Tree>>>,
    ctx: HashMap<String, Ctx>,
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
            ctx: self
                .ctx
                .iter()
                .filter(|(k, _)| keep(k))
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        }
    }

    /// The escaped trees, with the template `name` of `source` escaped among them.
    pub fn escaped(
        &mut self,
        source: &HashMap<String, Arc<Tree>>,
        name: &str,
    ) -> Arc<HashMap<String, Arc<Tree>>> {
        if !self.trees.contains_key(name) {
            let mut done = (*self.trees).clone();
            let mut e = Escaper {
                source,
                done: &mut done,
                out_ctx: &mut self.ctx,
            };
            e.tree(Ctx::default(), name);
            self.trees = Arc::new(done);
        }
        self.trees.clone()
    }
}

/// The escaper functions `html/template` inserts, by name.
pub fn escaper(name: &str) -> Option<fn(&[Value]) -> Value> {
    Some(match name {
        "_eval_args_" => |a| Value::from(eval_args(a.to_vec())),
        "_html_template_htmlescaper" => |a| match a {
            [Value::Str(s)] if clean(s, Table::Html) => Value::Str(s.clone()),
            [Value::Html(s)] => Value::Str(s.clone()),
            _ => match stringify(a) {
                (s, true) => Value::from(s),
                (s, false) => Value::from(replace(&s, Table::Html)),
            },
        },
        "_html_template_rcdataescaper" => |a| Value::from(replace(&stringify(a).0, Table::Html)),
        "_html_template_attrescaper" => |a| match a {
            [Value::Str(s)] if clean(s, Table::Html) => Value::Str(s.clone()),
            _ => attr_escape(a),
        },
        "_html_template_nospaceescaper" => |a| match stringify(a) {
            (s, true) => Value::from(replace(&strip_tags(&s), Table::NospaceNorm)),
            (s, false) => Value::from(replace(&s, Table::Nospace)),
        },
        "_html_template_urlfilter" => |a| {
            let s = stringify(a).0;
            Value::from(if safe_url(&s) {
                s
            } else {
                "#ZgotmplZ".to_string()
            })
        },
        "_html_template_urlnormalizer" => |a| Value::from(url_process(&stringify(a).0, true)),
        "_html_template_urlescaper" => |a| Value::from(url_process(&stringify(a).0, false)),
        "_html_template_htmlnamefilter" => |a| {
            let s = stringify(a).0.to_ascii_lowercase();
            let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            Value::from(if ok && attr_type(&s) == AttrType::Normal {
                s
            } else {
                "ZgotmplZ".into()
            })
        },
        "_html_template_commentescaper" => |_| Value::str(""),
        "_html_template_jsvalescaper" => |a| Value::from(js_val(a)),
        "_html_template_cssvaluefilter" => |a| {
            let s = stringify(a).0;
            let ok = s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" #%-._,".contains(&b));
            Value::from(if ok { s } else { "ZgotmplZ".into() })
        },
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

#[derive(Clone, Copy, PartialEq)]
enum Table {
    Html,
    HtmlNorm,
    Nospace,
    NospaceNorm,
}

/// Whether `replace` would leave `s` as it is.
fn clean(s: &str, t: Table) -> bool {
    let nospace = matches!(t, Table::Nospace | Table::NospaceNorm);
    !s.is_empty()
        && !s.bytes().any(|b| {
            matches!(b, b'\0' | b'"' | b'&' | b'\'' | b'+' | b'<' | b'>')
                || nospace
                    && matches!(
                        b,
                        b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r' | b' ' | b'=' | b'`'
                    )
        })
}

fn attr_escape(a: &[Value]) -> Value {
    match stringify(a) {
        (s, true) => Value::from(replace(&strip_tags(&s), Table::HtmlNorm)),
        (s, false) => Value::from(replace(&s, Table::Html)),
    }
}

fn replace(s: &str, t: Table) -> String {
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
            c => {
                out.push(c);
                continue;
            }
        };
        out.push_str(r);
    }
    if nospace && out.is_empty() {
        return "ZgotmplZ".into();
    }
    out
}

fn strip_tags(s: &str) -> String {
    let (_, text) = escape_text(Ctx::default(), s);
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

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

fn url_process(s: &str, norm: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = match b {
            b'!' | b'#' | b'$' | b'&' | b'*' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?'
            | b'@' | b'[' | b']' => norm,
            b'-' | b'.' | b'_' | b'~' => true,
            b'%' => norm,
            b => b.is_ascii_alphanumeric(),
        };
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

fn js_val(args: &[Value]) -> String {
    let v = match args {
        [one] => one.clone(),
        _ => Value::from(eval_args(args.to_vec())),
    };
    let json = match &v {
        Value::Nil | Value::Invalid => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => {
            let mut s = String::new();
            super::printf::format_float(&mut s, *f, 'g', None);
            s
        }
        Value::Str(s) | Value::Html(s) => serde_json::to_string(&**s).unwrap_or_default(),
        other => serde_json::to_string(&super::value::to_display(other)).unwrap_or_default(),
    };
    let json = json
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029");
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
    if ident(json.chars().next()) || ident(json.chars().last()) {
        format!(" {json} ")
    } else {
        json
    }
}

/// `url.QueryEscape`, re-exported for the escapers' callers.
pub fn query(s: &str) -> String {
    query_escape(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_comments_and_tracks_attributes() {
        let (c, out) = escape_text(Ctx::default(), "a<!-- x -->b<a href=\"");
        assert_eq!(out, "ab<a href=\"");
        assert_eq!(c.state, State::Url);
        assert_eq!(c.delim, Delim::Double);
        let (c, _) = escape_text(c, "http://x/?q=");
        assert_eq!(c.url, UrlPart::QueryOrFrag);
        let (c, _) = escape_text(c, "\">");
        assert_eq!(c, Ctx::default());
        let (c, _) = escape_text(Ctx::default(), "<title>");
        assert_eq!(c.state, State::Rcdata);
    }

    #[test]
    fn escapes_by_context() {
        let esc = |n: &str, v: Value| match escaper(n).unwrap()(&[v]) {
            Value::Str(s) => s.to_string(),
            _ => unreachable!(),
        };
        assert_eq!(
            esc("_html_template_htmlescaper", Value::str("<a>&'+")),
            "&lt;a&gt;&amp;&#39;&#43;"
        );
        assert_eq!(
            esc("_html_template_htmlescaper", Value::Html(Arc::from("<b>"))),
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
            esc("_html_template_urlnormalizer", Value::str("http://x/a b")),
            "http://x/a%20b"
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
}
