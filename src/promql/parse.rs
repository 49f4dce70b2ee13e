//! Parsing through `promql-parser`, with errors as Prometheus gives them: a message that names
//! the problem and a line and column.
//!
//! promql-parser 0.11 reports most grammar errors as "invalid promql query" with no position and
//! its AST has no spans. When it rejects an expression, the expression is read again by a lexer
//! ([`lex`]), a recursive-descent reading of Prometheus's grammar ([`grammar`]) and its type checks
//! ([`check`])
//! that say, as Prometheus 2.42 does, which token or node is wrong and why
//! (`1:10: unexpected end of input in grouping opts, expected "("`). Where that reading finds
//! nothing (a construct of Prometheus 3 that 2.42 did not know), promql-parser's message is kept,
//! with a position recovered from it where it can be (unbalanced brackets, a named token).

mod check;
mod grammar;
mod lex;

use promql_parser::parser::Expr;

/// A 1-based line and column (in characters; Prometheus counts bytes, the same for ASCII).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// A PromQL expression that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to parse {expr:?}: {}{message}", position.map(|p| format!("{}:{}: ", p.line, p.column)).unwrap_or_default())]
pub struct ParseError {
    /// The expression as given.
    pub expr: String,
    /// What is wrong, in the parser's words.
    pub message: String,
    /// Where, when it could be found.
    pub position: Option<Position>,
}

impl ParseError {
    /// The error as Prometheus words it, `line:col: parse error: message` (what
    /// `promtool check rules` prints after "could not parse expression: ", and the query API
    /// after `invalid parameter "query": `).
    pub fn prometheus_text(&self) -> String {
        let position = self
            .position
            .map(|p| format!("{}:{}: ", p.line, p.column))
            .unwrap_or_default();
        format!("{position}parse error: {}", self.message)
    }
}

/// Parses a PromQL expression.
///
/// ```
/// let err = tradewatch::promql::parse("sum(rate(x[5m])").unwrap_err();
/// assert_eq!(err.to_string(), r#"failed to parse "sum(rate(x[5m])": 1:16: unclosed left parenthesis"#);
/// let err = tradewatch::promql::parse("sum(rate(x[5m])) by job").unwrap_err();
/// assert_eq!(err.message, r#"unexpected identifier "job" in grouping opts, expected "(""#);
/// assert_eq!((err.position.unwrap().line, err.position.unwrap().column), (1, 21));
/// assert!(tradewatch::promql::parse("sum(rate(x[5m]))").is_ok());
/// ```
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    promql_parser::parser::parse(input).map_err(|message| {
        let (offset, message) = match grammar::diagnose(input, true) {
            Some((offset, message)) => (Some(offset), message),
            // promql-parser refuses a few expressions Prometheus accepts (`up{or = "a"}`).
            None if message == "invalid promql query" => (
                None,
                "invalid promql query (refused by the promql-parser crate tradewatch parses \
                 with, although Prometheus's grammar accepts it)"
                    .to_owned(),
            ),
            None => (locate(input, &message), message),
        };
        ParseError {
            expr: input.to_string(),
            position: offset.map(|offset| position_of(input, offset.min(input.len()))),
            message,
        }
    })
}

/// The first error Prometheus 2.42 itself reports for `input`, read without Prometheus 3's
/// additions, whether or not promql-parser accepts it: for the differential test against
/// `promtool` 2.42 (`tests/promql_errors.rs`).
#[doc(hidden)]
pub fn diagnose_as_prometheus_2_42(input: &str) -> Option<(Position, String)> {
    grammar::diagnose(input, false).map(|(offset, m)| (position_of(input, offset), m))
}

fn position_of(input: &str, offset: usize) -> Position {
    let before = &input[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    Position {
        line,
        column: input[line_start..offset].chars().count() + 1,
    }
}

/// The byte offsets of the brackets outside string literals and comments.
fn brackets(input: &str) -> Vec<(usize, char)> {
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut comment = false;
    for (i, c) in input.char_indices() {
        if comment {
            comment = c != '\n';
            continue;
        }
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '#' => comment = true,
            '(' | ')' | '[' | ']' | '{' | '}' => out.push((i, c)),
            _ => {}
        }
    }
    out
}

/// The byte offset the parser's message points at, when it can be recovered.
fn locate(input: &str, message: &str) -> Option<usize> {
    let opener = |open: char| {
        let close = match open {
            '(' => ')',
            '[' => ']',
            _ => '}',
        };
        let mut stack = Vec::new();
        for (i, c) in brackets(input) {
            if c == open {
                stack.push(i);
            } else if c == close {
                stack.pop();
            }
        }
        stack.first().copied()
    };
    let closer = |close: char| {
        let open = match close {
            ')' => '(',
            ']' => '[',
            _ => '{',
        };
        let mut depth = 0usize;
        for (i, c) in brackets(input) {
            if c == open {
                depth += 1;
            } else if c == close {
                if depth == 0 {
                    return Some(i);
                }
                depth -= 1;
            }
        }
        None
    };
    if message.contains("unclosed left parenthesis") {
        return opener('(');
    }
    if message.contains("unclosed left bracket") {
        return opener('[');
    }
    if message.contains("unclosed left brace") {
        return opener('{');
    }
    if message.contains("unexpected right parenthesis") {
        return closer(')');
    }
    if message.contains("unexpected right bracket") {
        return closer(']');
    }
    if message.contains("unexpected right brace") {
        return closer('}');
    }
    if message.contains("unexpected end of input") {
        return Some(input.trim_end().len());
    }
    // "… name 'foo'" names a function or label: its first occurrence as a word.
    if let Some(name) = message
        .strip_suffix('\'')
        .and_then(|m| m.rsplit_once(" '"))
        .map(|(_, name)| name)
        .filter(|name| name.len() > 1)
    {
        let is_word = |c: char| c == '_' || c == ':' || c.is_ascii_alphanumeric();
        return input.match_indices(name).map(|(i, _)| i).find(|&i| {
            !input[..i].ends_with(is_word) && !input[i + name.len()..].starts_with(is_word)
        });
    }
    // "…: 'c'" names the offending character.
    let named = message.strip_suffix('\'')?;
    let c = named.chars().last()?;
    if !named[..named.len() - c.len_utf8()].ends_with('\'') {
        return None;
    }
    input.find(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let e = parse("rate(x[5m)").unwrap_err();
        assert_eq!(
            e.position,
            Some(Position {
                line: 1,
                column: 10
            })
        );
        let e = parse("foo{a=\"b\"").unwrap_err();
        assert_eq!(
            e.position,
            Some(Position {
                line: 1,
                column: 10
            })
        );
        let e = parse("foo}").unwrap_err();
        assert_eq!(e.position, Some(Position { line: 1, column: 4 }));
        let e = parse("sum(x) by").unwrap_err();
        assert_eq!(
            e.position,
            Some(Position {
                line: 1,
                column: 10
            })
        );
        assert_eq!(
            e.to_string(),
            r#"failed to parse "sum(x) by": 1:10: unexpected end of input in grouping opts, expected "(""#
        );
        let e = parse("a +\n(b").unwrap_err();
        assert_eq!(e.position, Some(Position { line: 2, column: 3 }));
        let e = parse("up{or = \"a\"}").unwrap_err();
        assert_eq!(e.position, None);
        assert!(e.message.contains("Prometheus's grammar accepts it"), "{e}");
        // promql-parser's own message, located from the name it quotes.
        assert_eq!(
            locate("x + holt(y)", "unknown function with name 'holt'"),
            Some(4)
        );
    }
}
