//! How template text moves the context: Go's `html/template` transition functions
//! (`transition.go`), byte for byte, with the JavaScript and CSS scanning they need (`js.go`,
//! `css.go`) and Go's `stripTags`.

use super::context::{Attr, ContentType, Ctx, Delim, Element, JsCtx, State, UrlPart, attr_type};

/// A transition: the context after a prefix of the text, and that prefix's length; or an
/// error (Go's `stateError` context), described as Go describes it.
pub(crate) type Step = Result<(Ctx, usize), String>;

/// Go's `transitionFunc[c.state](c, s)`.
pub(crate) fn transition(c: Ctx, s: &[u8]) -> Step {
    match c.state {
        State::Text => Ok(t_text(c, s)),
        State::Tag => t_tag(c, s),
        State::AttrName => t_attr_name(c, s),
        State::AfterName => Ok(t_after_name(c, s)),
        State::BeforeValue => Ok(t_before_value(c, s)),
        State::HtmlCmt => Ok(t_html_cmt(c, s)),
        State::Rcdata => Ok(t_special_tag_end(c, s)),
        State::Attr | State::Dead => Ok((c, s.len())),
        State::Url | State::Srcset => Ok(t_url(c, s)),
        State::Js => t_js(c, s),
        State::JsDqStr | State::JsSqStr | State::JsBqStr | State::JsRegexp => t_js_delimited(c, s),
        State::JsBlockCmt | State::CssBlockCmt => Ok(t_block_cmt(c, s)),
        State::JsLineCmt | State::CssLineCmt => Ok(t_line_cmt(c, s)),
        State::Css => Ok(t_css(c, s)),
        State::CssDqStr | State::CssSqStr | State::CssDqUrl | State::CssSqUrl | State::CssUrl => {
            t_css_str(c, s)
        }
    }
}

fn find(s: &[u8], needle: &[u8]) -> Option<usize> {
    s.windows(needle.len()).position(|w| w == needle)
}

fn find_any(s: &[u8], set: &[u8]) -> Option<usize> {
    s.iter().position(|b| set.contains(b))
}

/// Go's `bytes.IndexAny` with a set that has non-ASCII characters: the byte offset of the
/// first character of `s` in `set`.
fn find_any_char(s: &[u8], set: &[char]) -> Option<usize> {
    let text = String::from_utf8_lossy(s);
    if text.len() == s.len() {
        return text.find(set);
    }
    // Invalid UTF-8: only the ASCII members can match reliably; non-ASCII ones are rare here.
    let ascii: Vec<u8> = set
        .iter()
        .filter(|c| c.is_ascii())
        .map(|c| *c as u8)
        .collect();
    find_any(s, &ascii)
}

fn t_text(c: Ctx, s: &[u8]) -> (Ctx, usize) {
    let mut k = 0;
    loop {
        let Some(i) = s[k..].iter().position(|&b| b == b'<').map(|i| i + k) else {
            return (c, s.len());
        };
        if i + 1 == s.len() {
            return (c, s.len());
        }
        if s[i..].starts_with(b"<!--") {
            return (Ctx::of(State::HtmlCmt), i + 4);
        }
        let mut i = i + 1;
        let mut end = false;
        if s[i] == b'/' {
            if i + 1 == s.len() {
                return (c, s.len());
            }
            end = true;
            i += 1;
        }
        let (j, e) = eat_tag_name(s, i);
        if j != i {
            return (
                Ctx {
                    state: State::Tag,
                    element: if end { Element::None } else { e },
                    ..Ctx::default()
                },
                j,
            );
        }
        k = j;
    }
}

fn content_state(e: Element) -> State {
    match e {
        Element::None => State::Text,
        Element::Script => State::Js,
        Element::Style => State::Css,
        Element::Textarea | Element::Title => State::Rcdata,
    }
}

fn t_tag(c: Ctx, s: &[u8]) -> Step {
    let i = eat_white_space(s, 0);
    if i == s.len() {
        return Ok((c, s.len()));
    }
    if s[i] == b'>' {
        return Ok((
            Ctx {
                state: content_state(c.element),
                element: c.element,
                ..Ctx::default()
            },
            i + 1,
        ));
    }
    let j = eat_attr_name(s, i)?;
    if i == j {
        return Err(format!(
            "expected space, attr name, or end of tag, but got {}",
            go_quote(&s[i..])
        ));
    }
    let name = String::from_utf8_lossy(&s[i..j]).to_lowercase();
    let attr = if c.element == Element::Script && name == "type" {
        Attr::ScriptType
    } else {
        match attr_type(&name) {
            ContentType::Url => Attr::Url,
            ContentType::Css => Attr::Style,
            ContentType::Js => Attr::Script,
            ContentType::Srcset => Attr::Srcset,
            _ => Attr::None,
        }
    };
    let state = if j == s.len() {
        State::AttrName
    } else {
        State::AfterName
    };
    Ok((
        Ctx {
            state,
            element: c.element,
            attr,
            ..Ctx::default()
        },
        j,
    ))
}

fn t_attr_name(mut c: Ctx, s: &[u8]) -> Step {
    let i = eat_attr_name(s, 0)?;
    if i != s.len() {
        c.state = State::AfterName;
    }
    Ok((c, i))
}

fn t_after_name(mut c: Ctx, s: &[u8]) -> (Ctx, usize) {
    let i = eat_white_space(s, 0);
    if i == s.len() {
        return (c, s.len());
    }
    if s[i] != b'=' {
        c.state = State::Tag;
        return (c, i);
    }
    c.state = State::BeforeValue;
    (c, i + 1)
}

/// Go's `attrStartStates`.
pub(crate) fn attr_start_state(a: Attr) -> State {
    match a {
        Attr::None | Attr::ScriptType => State::Attr,
        Attr::Script => State::Js,
        Attr::Style => State::Css,
        Attr::Url => State::Url,
        Attr::Srcset => State::Srcset,
    }
}

fn t_before_value(mut c: Ctx, s: &[u8]) -> (Ctx, usize) {
    let mut i = eat_white_space(s, 0);
    if i == s.len() {
        return (c, s.len());
    }
    let mut delim = Delim::SpaceOrTagEnd;
    match s[i] {
        b'\'' => {
            delim = Delim::SingleQuote;
            i += 1;
        }
        b'"' => {
            delim = Delim::DoubleQuote;
            i += 1;
        }
        _ => {}
    }
    c.state = attr_start_state(c.attr);
    c.delim = delim;
    (c, i)
}

fn t_html_cmt(c: Ctx, s: &[u8]) -> (Ctx, usize) {
    match find(s, b"-->") {
        Some(i) => (Ctx::default(), i + 3),
        None => (c, s.len()),
    }
}

/// Go's `tSpecialTagEnd`: in a special element's content, the offset of its end tag.
pub(crate) fn t_special_tag_end(c: Ctx, s: &[u8]) -> (Ctx, usize) {
    let tag: &[u8] = match c.element {
        Element::None => return (c, s.len()),
        Element::Script => b"script",
        Element::Style => b"style",
        Element::Textarea => b"textarea",
        Element::Title => b"title",
    };
    match index_tag_end(s, tag) {
        Some(i) => (Ctx::default(), i),
        None => (c, s.len()),
    }
}

fn index_tag_end(mut s: &[u8], tag: &[u8]) -> Option<usize> {
    let mut res = 0;
    while !s.is_empty() {
        let i = find(s, b"</")?;
        s = &s[i + 2..];
        if tag.len() <= s.len() && tag.eq_ignore_ascii_case(&s[..tag.len()]) {
            s = &s[tag.len()..];
            if !s.is_empty() && b"> \t\n\x0c/".contains(&s[0]) {
                return Some(res + i);
            }
            res += tag.len();
        }
        res += i + 2;
    }
    None
}

pub(crate) fn t_url(mut c: Ctx, s: &[u8]) -> (Ctx, usize) {
    if s.iter().any(|&b| b == b'#' || b == b'?') {
        c.url = UrlPart::QueryOrFrag;
    } else if s.len() != eat_white_space(s, 0) && c.url == UrlPart::None {
        c.url = UrlPart::PreQuery;
    }
    (c, s.len())
}

fn t_js(mut c: Ctx, s: &[u8]) -> Step {
    let Some(mut i) = find_any(s, b"\"`'/") else {
        c.js = next_js_ctx(s, c.js);
        return Ok((c, s.len()));
    };
    c.js = next_js_ctx(&s[..i], c.js);
    match s[i] {
        b'"' => (c.state, c.js) = (State::JsDqStr, JsCtx::Regexp),
        b'\'' => (c.state, c.js) = (State::JsSqStr, JsCtx::Regexp),
        b'`' => (c.state, c.js) = (State::JsBqStr, JsCtx::Regexp),
        _ => {
            if s.get(i + 1) == Some(&b'/') {
                c.state = State::JsLineCmt;
                i += 1;
            } else if s.get(i + 1) == Some(&b'*') {
                c.state = State::JsBlockCmt;
                i += 1;
            } else if c.js == JsCtx::Regexp {
                c.state = State::JsRegexp;
            } else if c.js == JsCtx::DivOp {
                c.js = JsCtx::Regexp;
            } else {
                let rest = &s[i..];
                return Err(format!(
                    "'/' could start a division or regexp: {}",
                    go_quote_prefix(rest, 32)
                ));
            }
        }
    }
    Ok((c, i + 1))
}

fn t_js_delimited(mut c: Ctx, s: &[u8]) -> Step {
    let specials: &[u8] = match c.state {
        State::JsSqStr => b"\\'",
        State::JsBqStr => b"`\\",
        State::JsRegexp => b"\\/[]",
        _ => b"\\\"",
    };
    let mut k = 0;
    let mut in_charset = false;
    while let Some(mut i) = find_any(&s[k..], specials).map(|i| i + k) {
        match s[i] {
            b'\\' => {
                i += 1;
                if i == s.len() {
                    return Err(format!(
                        "unfinished escape sequence in JS string: {}",
                        go_quote(s)
                    ));
                }
            }
            b'[' => in_charset = true,
            b']' => in_charset = false,
            _ => {
                if !in_charset {
                    c.state = State::Js;
                    c.js = JsCtx::DivOp;
                    return Ok((c, i + 1));
                }
            }
        }
        k = i + 1;
    }
    if in_charset {
        return Err(format!("unfinished JS regexp charset: {}", go_quote(s)));
    }
    Ok((c, s.len()))
}

fn t_block_cmt(mut c: Ctx, s: &[u8]) -> (Ctx, usize) {
    let Some(i) = find(s, b"*/") else {
        return (c, s.len());
    };
    c.state = if c.state == State::JsBlockCmt {
        State::Js
    } else {
        State::Css
    };
    (c, i + 2)
}

fn t_line_cmt(mut c: Ctx, s: &[u8]) -> (Ctx, usize) {
    let (terminators, end): (&[char], State) = if c.state == State::JsLineCmt {
        (&['\n', '\r', '\u{2028}', '\u{2029}'], State::Js)
    } else {
        (&['\n', '\x0c', '\r'], State::Css)
    };
    match find_any_char(s, terminators) {
        Some(i) => {
            c.state = end;
            (c, i)
        }
        None => (c, s.len()),
    }
}

fn t_css(mut c: Ctx, s: &[u8]) -> (Ctx, usize) {
    let mut k = 0;
    loop {
        let Some(i) = find_any(&s[k..], b"(\"'/").map(|i| i + k) else {
            return (c, s.len());
        };
        match s[i] {
            b'(' => {
                let p = trim_right(&s[..i], b"\t\n\x0c\r ");
                if ends_with_css_keyword(p, "url") {
                    let rest = &s[i + 1..];
                    let lead = rest
                        .iter()
                        .take_while(|b| b"\t\n\x0c\r ".contains(b))
                        .count();
                    let mut j = i + 1 + lead;
                    if j != s.len() && s[j] == b'"' {
                        c.state = State::CssDqUrl;
                        j += 1;
                    } else if j != s.len() && s[j] == b'\'' {
                        c.state = State::CssSqUrl;
                        j += 1;
                    } else {
                        c.state = State::CssUrl;
                    }
                    return (c, j);
                }
            }
            b'/' => {
                if i + 1 < s.len() {
                    match s[i + 1] {
                        b'/' => {
                            c.state = State::CssLineCmt;
                            return (c, i + 2);
                        }
                        b'*' => {
                            c.state = State::CssBlockCmt;
                            return (c, i + 2);
                        }
                        _ => {}
                    }
                }
            }
            b'"' => {
                c.state = State::CssDqStr;
                return (c, i + 1);
            }
            _ => {
                c.state = State::CssSqStr;
                return (c, i + 1);
            }
        }
        k = i + 1;
    }
}

fn t_css_str(mut c: Ctx, s: &[u8]) -> Step {
    let end_and_esc: &[u8] = match c.state {
        State::CssDqStr | State::CssDqUrl => b"\\\"",
        State::CssSqStr | State::CssSqUrl => b"\\'",
        _ => b"\\\t\n\x0c\r )",
    };
    let mut k = 0;
    loop {
        let Some(mut i) = find_any(&s[k..], end_and_esc).map(|i| i + k) else {
            let (c, n) = t_url(c, &decode_css(&s[k..]));
            return Ok((c, k + n.min(s.len() - k)));
        };
        if s[i] == b'\\' {
            i += 1;
            if i == s.len() {
                return Err(format!(
                    "unfinished escape sequence in CSS string: {}",
                    go_quote(s)
                ));
            }
        } else {
            c.state = State::Css;
            return Ok((c, i + 1));
        }
        c = t_url(c, &decode_css(&s[..i + 1])).0;
        k = i + 1;
    }
}

fn trim_right<'s>(s: &'s [u8], set: &[u8]) -> &'s [u8] {
    let n = s.iter().rev().take_while(|b| set.contains(b)).count();
    &s[..s.len() - n]
}

/// Go's `isCSSNmchar`.
pub(crate) fn is_css_nmchar(r: char) -> bool {
    r.is_ascii_alphanumeric()
        || r == '-'
        || r == '_'
        || ('\u{80}'..='\u{d7ff}').contains(&r)
        || ('\u{e000}'..='\u{fffd}').contains(&r)
        || ('\u{10000}'..='\u{10ffff}').contains(&r)
}

fn ends_with_css_keyword(b: &[u8], kw: &str) -> bool {
    if b.len() < kw.len() {
        return false;
    }
    let i = b.len() - kw.len();
    if i != 0
        && let Some(r) = String::from_utf8_lossy(&b[..i]).chars().last()
        && is_css_nmchar(r)
    {
        return false;
    }
    b[i..].eq_ignore_ascii_case(kw.as_bytes())
}

/// Go's `decodeCSS`: CSS escapes (`\22`, `\"`) decoded.
pub(crate) fn decode_css(s: &[u8]) -> Vec<u8> {
    if !s.contains(&b'\\') {
        return s.to_vec();
    }
    let mut b = Vec::with_capacity(s.len());
    let mut s = s;
    while !s.is_empty() {
        let i = s.iter().position(|&x| x == b'\\').unwrap_or(s.len());
        b.extend_from_slice(&s[..i]);
        s = &s[i..];
        if s.len() < 2 {
            break;
        }
        if s[1].is_ascii_hexdigit() {
            let mut j = 2;
            while j < s.len() && j < 7 && s[j].is_ascii_hexdigit() {
                j += 1;
            }
            let mut r =
                u32::from_str_radix(std::str::from_utf8(&s[1..j]).unwrap_or("0"), 16).unwrap_or(0);
            if r > 0x10ffff {
                r /= 16;
                j -= 1;
            }
            let ch = char::from_u32(r).unwrap_or('\u{fffd}');
            let mut buf = [0; 4];
            b.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            s = skip_css_space(&s[j..]);
        } else {
            let n = utf8_len(&s[1..]);
            b.extend_from_slice(&s[1..1 + n]);
            s = &s[1 + n..];
        }
    }
    b
}

fn utf8_len(s: &[u8]) -> usize {
    let want = match s[0] {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    };
    if want <= s.len() && std::str::from_utf8(&s[..want]).is_ok() {
        want
    } else {
        1
    }
}

fn skip_css_space(c: &[u8]) -> &[u8] {
    match c.first() {
        Some(b'\t' | b'\n' | b'\x0c' | b' ') => &c[1..],
        Some(b'\r') if c.get(1) == Some(&b'\n') => &c[2..],
        Some(b'\r') => &c[1..],
        _ => c,
    }
}

fn eat_attr_name(s: &[u8], i: usize) -> Result<usize, String> {
    for j in i..s.len() {
        match s[j] {
            b' ' | b'\t' | b'\n' | b'\x0c' | b'\r' | b'=' | b'>' => return Ok(j),
            b'\'' | b'"' | b'<' => {
                return Err(format!(
                    "{} in attribute name: {}",
                    go_quote(&s[j..j + 1]),
                    go_quote_prefix(s, 32)
                ));
            }
            _ => {}
        }
    }
    Ok(s.len())
}

fn eat_tag_name(s: &[u8], i: usize) -> (usize, Element) {
    if i == s.len() || !s[i].is_ascii_alphabetic() {
        return (i, Element::None);
    }
    let mut j = i + 1;
    while j < s.len() {
        let x = s[j];
        if x.is_ascii_alphanumeric() {
            j += 1;
            continue;
        }
        if (x == b':' || x == b'-') && j + 1 < s.len() && s[j + 1].is_ascii_alphanumeric() {
            j += 2;
            continue;
        }
        break;
    }
    let e = match s[i..j].to_ascii_lowercase().as_slice() {
        b"script" => Element::Script,
        b"style" => Element::Style,
        b"textarea" => Element::Textarea,
        b"title" => Element::Title,
        _ => Element::None,
    };
    (j, e)
}

pub(crate) fn eat_white_space(s: &[u8], i: usize) -> usize {
    (i..s.len())
        .find(|&j| !matches!(s[j], b' ' | b'\t' | b'\n' | b'\x0c' | b'\r'))
        .unwrap_or(s.len())
}

/// Go's `nextJSCtx`: whether a `/` after `s` starts a regexp or divides.
fn next_js_ctx(s: &[u8], preceding: JsCtx) -> JsCtx {
    let text = String::from_utf8_lossy(s);
    let s = text
        .trim_end_matches(['\t', '\n', '\x0c', '\r', ' ', '\u{2028}', '\u{2029}'])
        .as_bytes();
    let Some(&c) = s.last() else {
        return preceding;
    };
    let n = s.len();
    match c {
        b'+' | b'-' => {
            let mut start = n - 1;
            while start > 0 && s[start - 1] == c {
                start -= 1;
            }
            if (n - start) & 1 == 1 {
                JsCtx::Regexp
            } else {
                JsCtx::DivOp
            }
        }
        b'.' => {
            if n != 1 && s[n - 2].is_ascii_digit() {
                JsCtx::DivOp
            } else {
                JsCtx::Regexp
            }
        }
        b',' | b'<' | b'>' | b'=' | b'*' | b'%' | b'&' | b'|' | b'^' | b'?' | b'!' | b'~'
        | b'(' | b'[' | b':' | b';' | b'{' | b'}' => JsCtx::Regexp,
        _ => {
            let mut j = n;
            while j > 0 && is_js_ident_part(s[j - 1] as char) {
                j -= 1;
            }
            match &s[j..] {
                b"break" | b"case" | b"continue" | b"delete" | b"do" | b"else" | b"finally"
                | b"in" | b"instanceof" | b"return" | b"throw" | b"try" | b"typeof" | b"void" => {
                    JsCtx::Regexp
                }
                _ => JsCtx::DivOp,
            }
        }
    }
}

/// Go's `isJSIdentPart` (ASCII only, as Go's is).
pub(crate) fn is_js_ident_part(r: char) -> bool {
    r == '$' || r == '_' || r.is_ascii_alphanumeric()
}

/// Go's `isJSType`: whether a `<script type>` holds JavaScript.
pub(crate) fn is_js_type(mime: &str) -> bool {
    let mime = mime.split(';').next().unwrap_or("").to_lowercase();
    matches!(
        mime.trim(),
        "application/ecmascript"
            | "application/javascript"
            | "application/json"
            | "application/ld+json"
            | "application/x-ecmascript"
            | "application/x-javascript"
            | "module"
            | "text/ecmascript"
            | "text/javascript"
            | "text/javascript1.0"
            | "text/javascript1.1"
            | "text/javascript1.2"
            | "text/javascript1.3"
            | "text/javascript1.4"
            | "text/javascript1.5"
            | "text/jscript"
            | "text/livescript"
            | "text/x-ecmascript"
            | "text/x-javascript"
    )
}

/// Go's `%q` of a byte slice.
pub(crate) fn go_quote(s: &[u8]) -> String {
    super::super::printf::quote(&String::from_utf8_lossy(s), false)
}

/// Go's `%.Nq` of a byte slice: the first `n` characters, quoted.
fn go_quote_prefix(s: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(s);
    let cut: String = text.chars().take(n).collect();
    super::super::printf::quote(&cut, false)
}

/// Go's `stripTags`: the text of an HTML fragment without its tags and comments.
pub(crate) fn strip_tags(html: &str) -> String {
    let s = html.as_bytes();
    let mut b: Vec<u8> = Vec::with_capacity(s.len());
    let mut c = Ctx::default();
    let mut i = 0;
    let mut all_text = true;
    let mut failed = false;
    while i != s.len() {
        if c.delim == Delim::None {
            let mut st = c.state;
            if c.element != Element::None && !st.is_in_tag() {
                st = State::Rcdata;
            }
            // Go calls the function of `st` with `c` as it is: for the content of a special
            // element that is tSpecialTagEnd, which reads only the element.
            let step = if st == State::Rcdata {
                Ok(t_special_tag_end(c, &s[i..]))
            } else {
                transition(c, &s[i..])
            };
            let Ok((d, nread)) = step else {
                all_text = false;
                failed = true;
                break;
            };
            let i1 = i + nread;
            if c.state == State::Text || c.state == State::Rcdata {
                let mut j = i1;
                if d.state != c.state
                    && let Some(j1) = (i..j).rev().find(|&j1| s[j1] == b'<')
                {
                    j = j1;
                }
                b.extend_from_slice(&s[i..j]);
            } else {
                all_text = false;
            }
            c = d;
            i = i1;
            continue;
        }
        let ends: &[u8] = match c.delim {
            Delim::DoubleQuote => b"\"",
            Delim::SingleQuote => b"'",
            _ => b" \t\n\x0c\r>",
        };
        let Some(mut i1) = find_any(&s[i..], ends).map(|k| k + i) else {
            break;
        };
        if c.delim != Delim::SpaceOrTagEnd {
            i1 += 1;
        }
        c = Ctx {
            state: State::Tag,
            element: c.element,
            ..Ctx::default()
        };
        i = i1;
    }
    if all_text {
        return html.to_string();
    }
    if !failed && (c.state == State::Text || c.state == State::Rcdata) {
        b.extend_from_slice(&s[i..]);
    }
    String::from_utf8_lossy(&b).into_owned()
}
