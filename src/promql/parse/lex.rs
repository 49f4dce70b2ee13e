//! A PromQL lexer that reads as Prometheus 2.42's does (the same tokens, the same states inside
//! braces and brackets, the same error messages at the same offsets), so that an expression
//! promql-parser rejects can be re-read to say which token is wrong and where.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Eof,
    /// A lexer error: the text is the message.
    Error,
    Ident,
    MetricIdent,
    Number,
    Duration,
    Str,
    /// `( ) { } [ ] , = :`
    Punct,
    /// Arithmetic, comparison, set and match operators, `atan2` and `@`.
    Op,
    /// `sum`, `avg`, …
    Aggr,
    /// `bool by group_left group_right ignoring offset on without`
    Keyword,
    /// `start`, `end`
    Pre,
}

/// One token: its kind, byte offset and text (for keywords as written, not lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tok {
    pub kind: Kind,
    pub pos: usize,
    pub text: String,
}

impl Tok {
    /// Whether this is the punctuation or operator `s` (keywords compared without case).
    pub fn is(&self, s: &str) -> bool {
        matches!(
            self.kind,
            Kind::Punct | Kind::Op | Kind::Keyword | Kind::Aggr | Kind::Pre
        ) && self.text.eq_ignore_ascii_case(s)
    }

    /// The lowercased text.
    pub fn lower(&self) -> String {
        self.text.to_ascii_lowercase()
    }

    /// How Prometheus names the token in "unexpected …".
    pub fn desc(&self) -> String {
        let short = |s: &str| {
            if s.chars().count() > 10 {
                format!("{}...", go_quote(&s.chars().take(10).collect::<String>()))
            } else {
                go_quote(s)
            }
        };
        match self.kind {
            Kind::Eof => "end of input".to_owned(),
            Kind::Error => self.text.clone(),
            Kind::Ident => format!("identifier {}", go_quote(&self.text)),
            Kind::MetricIdent => format!("metric identifier {}", go_quote(&self.text)),
            Kind::Number => format!("number {}", short(&self.text)),
            Kind::Duration => format!("duration {}", short(&self.text)),
            Kind::Str => format!("string {}", short(&self.text)),
            Kind::Punct => go_quote(&self.text),
            Kind::Op => format!("<op:{}>", self.text),
            Kind::Aggr => format!("<aggr:{}>", self.text),
            Kind::Keyword => format!("<{}>", self.text),
            Kind::Pre => go_quote(&self.text),
        }
    }
}

/// A string quoted as Go's `%q` does.
pub(super) fn go_quote(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A character quoted as Go's `%q` does (`None`, the end of input, as Go prints it).
fn quote_rune(c: Option<char>) -> String {
    match c.unwrap_or('\u{FFFD}') {
        '\'' => r"'\''".to_owned(),
        '\\' => r"'\\'".to_owned(),
        '\n' => r"'\n'".to_owned(),
        '\t' => r"'\t'".to_owned(),
        '\r' => r"'\r'".to_owned(),
        c if c.is_control() => format!("'\\x{:02x}'", c as u32),
        c => format!("'{c}'"),
    }
}

fn is_space(c: Option<char>) -> bool {
    matches!(c, Some(' ' | '\t' | '\n' | '\r'))
}

fn is_alpha(c: Option<char>) -> bool {
    matches!(c, Some(c) if c == '_' || c.is_ascii_alphabetic())
}

fn is_alnum(c: Option<char>) -> bool {
    is_alpha(c) || matches!(c, Some(c) if c.is_ascii_digit())
}

/// Prometheus's lexer state.
pub(super) struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    width: usize,
    paren_depth: i32,
    brace_open: bool,
    bracket_open: bool,
    got_colon: bool,
    duration_next: bool,
    string_open: char,
    done: bool,
    v3: bool,
}

impl<'a> Lexer<'a> {
    /// A lexer; `v3`: whether a range may be a bare number of seconds (Prometheus 3).
    pub fn new(input: &'a str, v3: bool) -> Lexer<'a> {
        Lexer {
            input,
            v3,
            pos: 0,
            start: 0,
            width: 0,
            paren_depth: 0,
            brace_open: false,
            bracket_open: false,
            got_colon: false,
            duration_next: false,
            string_open: '"',
            done: false,
        }
    }

    fn next(&mut self) -> Option<char> {
        let c = self.input[self.pos..].chars().next();
        self.width = c.map_or(0, char::len_utf8);
        self.pos += self.width;
        c
    }

    fn backup(&mut self) {
        self.pos -= self.width;
        self.width = 0;
    }

    fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.next() {
            Some(c) if valid.contains(c) => true,
            _ => {
                self.backup();
                false
            }
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    fn emit(&mut self, kind: Kind) -> Tok {
        let tok = Tok {
            kind,
            pos: self.start,
            text: self.input[self.start..self.pos].to_owned(),
        };
        self.start = self.pos;
        tok
    }

    fn error(&mut self, at: usize, message: String) -> Tok {
        self.done = true;
        Tok {
            kind: Kind::Error,
            pos: at,
            text: message,
        }
    }

    fn skip_comment(&mut self) {
        while let Some(c) = self.next() {
            if c == '\n' {
                break;
            }
        }
        self.start = self.pos;
    }

    /// The next token; after an error, the end of input.
    pub fn token(&mut self) -> Tok {
        loop {
            if self.done {
                return Tok {
                    kind: Kind::Eof,
                    pos: self.input.len(),
                    text: String::new(),
                };
            }
            if self.duration_next {
                self.duration_next = false;
                return self.duration();
            }
            if self.input[self.pos..].starts_with('#') {
                self.skip_comment();
                continue;
            }
            if self.brace_open {
                if let Some(t) = self.inside_braces() {
                    return t;
                }
                continue;
            }
            if let Some(t) = self.statement() {
                return t;
            }
        }
    }

    fn statement(&mut self) -> Option<Tok> {
        let start = self.start;
        let c = self.next();
        let tok = match c {
            None => {
                if self.paren_depth != 0 {
                    return Some(self.error(start, "unclosed left parenthesis".into()));
                }
                if self.bracket_open {
                    return Some(self.error(start, "unclosed left bracket".into()));
                }
                self.done = true;
                return Some(self.emit(Kind::Eof));
            }
            Some(c) if is_space(Some(c)) => {
                while is_space(self.peek()) {
                    self.next();
                }
                self.start = self.pos;
                return None;
            }
            Some(',') => self.emit(Kind::Punct),
            Some('*' | '/' | '%' | '+' | '-' | '^' | '@') => self.emit(Kind::Op),
            Some('=') => match self.peek() {
                Some('=') => {
                    self.next();
                    self.emit(Kind::Op)
                }
                Some('~') => {
                    return Some(self.error(start, "unexpected character after '=': '~'".into()));
                }
                _ => self.emit(Kind::Punct),
            },
            Some('!') => {
                let t = self.next();
                if t != Some('=') {
                    let m = format!("unexpected character after '!': {}", quote_rune(t));
                    return Some(self.error(start, m));
                }
                self.emit(Kind::Op)
            }
            Some('<' | '>') => {
                if self.peek() == Some('=') {
                    self.next();
                }
                self.emit(Kind::Op)
            }
            Some(d)
                if d.is_ascii_digit()
                    || (d == '.' && self.peek().is_some_and(|c| c.is_ascii_digit())) =>
            {
                self.backup();
                return Some(self.number_or_duration());
            }
            Some(q @ ('"' | '\'' | '`')) => {
                self.string_open = q;
                return Some(self.string());
            }
            Some(c) if is_alpha(Some(c)) || c == ':' => {
                if !self.bracket_open {
                    self.backup();
                    return Some(self.keyword_or_identifier());
                }
                if self.got_colon {
                    return Some(
                        self.error(start, format!("unexpected colon {}", quote_rune(Some(c)))),
                    );
                }
                // Prometheus 2.42 takes any letter after a range's duration for the colon.
                self.got_colon = true;
                let mut t = self.emit(Kind::Punct);
                t.text = ":".into();
                t
            }
            Some('(') => {
                self.paren_depth += 1;
                self.emit(Kind::Punct)
            }
            Some(')') => {
                let t = self.emit(Kind::Punct);
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    let at = self.start;
                    return Some(self.error(at, "unexpected right parenthesis ')'".into()));
                }
                t
            }
            Some('{') => {
                self.brace_open = true;
                self.emit(Kind::Punct)
            }
            Some('[') => {
                if self.bracket_open {
                    return Some(self.error(start, "unexpected left bracket '['".into()));
                }
                self.got_colon = false;
                let t = self.emit(Kind::Punct);
                while is_space(self.peek()) {
                    self.next();
                }
                self.start = self.pos;
                self.bracket_open = true;
                self.duration_next = true;
                t
            }
            Some(']') => {
                if !self.bracket_open {
                    return Some(self.error(start, "unexpected right bracket ']'".into()));
                }
                self.bracket_open = false;
                self.emit(Kind::Punct)
            }
            Some(c) => {
                let m = format!("unexpected character: {}", quote_rune(Some(c)));
                return Some(self.error(start, m));
            }
        };
        Some(tok)
    }

    fn inside_braces(&mut self) -> Option<Tok> {
        let start = self.start;
        let c = self.next();
        let tok = match c {
            None => return Some(self.error(start, "unexpected end of input inside braces".into())),
            Some(c) if is_space(Some(c)) => {
                while is_space(self.peek()) {
                    self.next();
                }
                self.start = self.pos;
                return None;
            }
            Some(c) if is_alpha(Some(c)) => {
                while is_alnum(self.peek()) {
                    self.next();
                }
                self.emit(Kind::Ident)
            }
            Some(',') => self.emit(Kind::Punct),
            Some(q @ ('"' | '\'' | '`')) => {
                self.string_open = q;
                return Some(self.string());
            }
            Some('=') => {
                if self.peek() == Some('~') {
                    self.next();
                    self.emit(Kind::Op)
                } else {
                    self.emit(Kind::Punct)
                }
            }
            Some('!') => match self.next() {
                Some('~' | '=') => self.emit(Kind::Op),
                t => {
                    let m = format!(
                        "unexpected character after '!' inside braces: {}",
                        quote_rune(t)
                    );
                    return Some(self.error(start, m));
                }
            },
            Some('{') => return Some(self.error(start, "unexpected left brace '{'".into())),
            Some('}') => {
                self.brace_open = false;
                self.emit(Kind::Punct)
            }
            Some(c) => {
                let m = format!(
                    "unexpected character inside braces: {}",
                    quote_rune(Some(c))
                );
                return Some(self.error(start, m));
            }
        };
        Some(tok)
    }

    fn keyword_or_identifier(&mut self) -> Tok {
        while is_alnum(self.peek()) || self.peek() == Some(':') {
            self.next();
        }
        let word = self.input[self.start..self.pos].to_ascii_lowercase();
        let kind = match word.as_str() {
            "and" | "or" | "unless" | "atan2" => Kind::Op,
            "sum" | "avg" | "count" | "min" | "max" | "group" | "stddev" | "stdvar" | "topk"
            | "bottomk" | "count_values" | "quantile" => Kind::Aggr,
            "offset" | "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            | "bool" => Kind::Keyword,
            "inf" | "nan" => Kind::Number,
            "start" | "end" => Kind::Pre,
            w if w.contains(':') => Kind::MetricIdent,
            _ => Kind::Ident,
        };
        self.emit(kind)
    }

    fn scan_number(&mut self) -> bool {
        let mut digits = "0123456789";
        if self.accept("0") && self.accept("xX") {
            digits = "0123456789abcdefABCDEF";
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789");
        }
        !is_alnum(self.peek())
    }

    fn accept_remaining_duration(&mut self) -> bool {
        if !self.accept("smhdwy") {
            return false;
        }
        self.accept("s");
        while self.accept("0123456789") {
            self.accept_run("0123456789");
            if !self.accept("smhdw") {
                return false;
            }
            self.accept("s");
        }
        let c = self.next();
        !is_alnum(c)
    }

    fn number_or_duration(&mut self) -> Tok {
        if self.scan_number() {
            return self.emit(Kind::Number);
        }
        if self.accept_remaining_duration() {
            self.backup();
            return self.emit(Kind::Duration);
        }
        let m = format!(
            "bad number or duration syntax: {}",
            go_quote(&self.input[self.start..self.pos])
        );
        let at = self.start;
        self.error(at, m)
    }

    /// The token after `[`: a duration (or, as Prometheus 3 allows, a number of seconds).
    fn duration(&mut self) -> Tok {
        let at = self.start;
        if self.scan_number() {
            // Prometheus 3 reads `[5]` as five seconds; 2.42 wanted a unit.
            if self.v3 && self.pos > at {
                return self.emit(Kind::Number);
            }
            return self.error(at, "missing unit character in duration".into());
        }
        if !self.accept_remaining_duration() {
            let m = format!(
                "bad duration syntax: {}",
                go_quote(&self.input[self.start..self.pos])
            );
            return self.error(at, m);
        }
        self.backup();
        self.emit(Kind::Duration)
    }

    fn string(&mut self) -> Tok {
        let at = self.start;
        let quote = self.string_open;
        loop {
            match self.next() {
                None if quote == '`' => return self.error(at, "unterminated raw string".into()),
                None => return self.error(at, "unterminated quoted string".into()),
                Some('\n') if quote != '`' => {
                    return self.error(at, "unterminated quoted string".into());
                }
                Some('\\') if quote != '`' => {
                    if let Some(m) = self.escape(quote) {
                        return self.error(at, m);
                    }
                }
                Some(c) if c == quote => break,
                Some(_) => {}
            }
        }
        self.emit(Kind::Str)
    }

    /// Reads an escape sequence after `\`; the error, if any.
    fn escape(&mut self, quote: char) -> Option<String> {
        let mut ch = self.next();
        let (mut n, base, max) = match ch {
            Some('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\') => return None,
            Some(c) if c == quote => return None,
            Some('0'..='7') => (3, 8, 255),
            Some('x') => {
                ch = self.next();
                (2, 16, 255)
            }
            Some('u') => {
                ch = self.next();
                (4, 16, 0x10FFFF)
            }
            Some('U') => {
                ch = self.next();
                (8, 16, 0x10FFFF)
            }
            None => return Some("escape sequence not terminated".into()),
            Some(c) => return Some(format!("unknown escape sequence U+{:04X} '{c}'", c as u32)),
        };
        let mut x: u32 = 0;
        while n > 0 {
            let d = ch.and_then(|c| c.to_digit(16)).unwrap_or(16);
            if d >= base {
                return Some(match ch {
                    None => "escape sequence not terminated".into(),
                    Some(c) => format!(
                        "illegal character U+{:04X} '{c}' in escape sequence",
                        c as u32
                    ),
                });
            }
            x = x.saturating_mul(base).saturating_add(d);
            n -= 1;
            if n > 0 {
                ch = self.next();
            }
        }
        if x > max || (0xD800..0xE000).contains(&x) {
            return Some("escape sequence is an invalid Unicode code point".into());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<(Kind, String)> {
        let mut lx = Lexer::new(input, true);
        let mut out = Vec::new();
        loop {
            let t = lx.token();
            let end = t.kind == Kind::Eof || t.kind == Kind::Error;
            out.push((t.kind, t.text));
            if end {
                return out;
            }
        }
    }

    #[test]
    fn tokens_and_errors() {
        assert_eq!(
            kinds("sum by (a) (x{b=~\"c\"}[5m])"),
            vec![
                (Kind::Aggr, "sum".into()),
                (Kind::Keyword, "by".into()),
                (Kind::Punct, "(".into()),
                (Kind::Ident, "a".into()),
                (Kind::Punct, ")".into()),
                (Kind::Punct, "(".into()),
                (Kind::Ident, "x".into()),
                (Kind::Punct, "{".into()),
                (Kind::Ident, "b".into()),
                (Kind::Op, "=~".into()),
                (Kind::Str, "\"c\"".into()),
                (Kind::Punct, "}".into()),
                (Kind::Punct, "[".into()),
                (Kind::Duration, "5m".into()),
                (Kind::Punct, "]".into()),
                (Kind::Punct, ")".into()),
                (Kind::Eof, String::new()),
            ]
        );
        assert_eq!(kinds("1.2.3").last().unwrap(), &(Kind::Eof, String::new()));
        assert_eq!(
            kinds("x[5x]").last().unwrap(),
            &(Kind::Error, "bad duration syntax: \"5\"".into())
        );
        assert_eq!(
            kinds("x{a=\"\\q\"}").last().unwrap(),
            &(Kind::Error, "unknown escape sequence U+0071 'q'".into())
        );
    }
}
