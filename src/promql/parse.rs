//! Parsing through `promql-parser`, with errors that name the expression and, where the
//! parser's message allows it, a line and column.
//!
//! promql-parser 0.11 reports most grammar errors as "invalid promql query" with no position and
//! its AST has no spans; positions are recovered here for unbalanced brackets, a named offending
//! character and a premature end of input, and are absent otherwise.

use promql_parser::parser::Expr;

/// A 1-based line and column (in characters).
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

/// Parses a PromQL expression.
///
/// ```
/// let err = tradewatch::promql::parse("sum(rate(x[5m])").unwrap_err();
/// assert_eq!(err.to_string(), r#"failed to parse "sum(rate(x[5m])": 1:4: unclosed left parenthesis"#);
/// assert!(tradewatch::promql::parse("sum(rate(x[5m]))").is_ok());
/// ```
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    promql_parser::parser::parse(input).map_err(|message| ParseError {
        expr: input.to_string(),
        position: locate(input, &message).map(|offset| position_of(input, offset)),
        message,
    })
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
        assert_eq!(e.position, None);
        assert!(e.to_string().starts_with("failed to parse \"sum(x) by\": "));
        let e = parse("a +\n(b").unwrap_err();
        assert_eq!(e.position, Some(Position { line: 2, column: 1 }));
    }
}
