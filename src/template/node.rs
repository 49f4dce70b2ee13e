//! The parse tree of a template: the nodes Go's parser builds, and how each prints back (as Go
//! prints nodes in error messages).

use std::fmt::{self, Write as _};
use std::sync::Arc;

use super::printf::quote;

/// A parsed template body, with the source it came from for error positions.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The template's name (a `define`d name, or the name given to parse).
    pub name: String,
    /// The name of the text it was parsed from, as errors print it.
    pub parse_name: Arc<str>,
    /// That text.
    pub text: Arc<str>,
    /// The body.
    pub root: Vec<Node>,
}

impl Tree {
    /// `file:line:col` of a byte position, as Go's `ErrorContext` computes it.
    pub fn location(&self, pos: usize) -> String {
        let text = &self.text[..pos.min(self.text.len())];
        let (line, col) = match text.rfind('\n') {
            None => (1, pos),
            Some(i) => (1 + text.matches('\n').count(), pos - (i + 1)),
        };
        format!("{}:{}:{}", self.parse_name, line, col)
    }
}

/// A node of the body.
#[derive(Debug, Clone)]
pub enum Node {
    /// Plain text.
    Text(Arc<str>),
    /// `{{ pipeline }}`.
    Action(Pipe),
    /// `{{ if }}`.
    If(Branch),
    /// `{{ range }}`.
    Range(Branch),
    /// `{{ with }}`.
    With(Branch),
    /// `{{ template "name" pipeline }}` (also what `block` leaves in place).
    Template {
        /// Position of the name.
        pos: usize,
        /// The template's name.
        name: String,
        /// The data passed, if any.
        pipe: Option<Pipe>,
    },
    /// `{{ break }}`.
    Break(usize),
    /// `{{ continue }}`.
    Continue(usize),
}

/// The shared shape of `if`, `range` and `with`.
#[derive(Debug, Clone)]
pub struct Branch {
    /// Position of the pipeline.
    pub pos: usize,
    /// The condition or collection.
    pub pipe: Pipe,
    /// The body.
    pub list: Vec<Node>,
    /// The `else` body.
    pub else_list: Option<Vec<Node>>,
}

/// A pipeline: optional variable declarations and commands joined by `|`.
#[derive(Debug, Clone)]
pub struct Pipe {
    /// Position.
    pub pos: usize,
    /// `=` rather than `:=`.
    pub is_assign: bool,
    /// Declared or assigned variables.
    pub decl: Vec<String>,
    /// The commands.
    pub cmds: Vec<Command>,
}

/// A command: a function or value and its arguments.
#[derive(Debug, Clone)]
pub struct Command {
    /// Position.
    pub pos: usize,
    /// The operands; the first is the function or value.
    pub args: Vec<Arg>,
}

/// A number constant with each interpretation Go allows.
#[derive(Debug, Clone)]
pub struct Number {
    /// The source text.
    pub text: String,
    /// As int, if it fits.
    pub int: Option<i64>,
    /// As uint, if it fits.
    pub uint: Option<u64>,
    /// As float, if representable.
    pub float: Option<f64>,
}

/// An operand.
#[derive(Debug, Clone)]
pub enum Arg {
    /// `.A.B`.
    Field(usize, Vec<String>),
    /// `(pipe).A.B`, `f.A`.
    Chain(usize, Box<Arg>, Vec<String>),
    /// `$x.A.B`.
    Variable(usize, Vec<String>),
    /// A function name.
    Identifier(usize, String),
    /// `.`.
    Dot(usize),
    /// `nil`.
    Nil(usize),
    /// `true`/`false`.
    Bool(usize, bool),
    /// A number.
    Number(usize, Number),
    /// A string: its quoted source and its value.
    String(usize, String, Arc<str>),
    /// A parenthesized pipeline.
    Pipe(Box<Pipe>),
}

impl Arg {
    /// The byte position.
    pub fn pos(&self) -> usize {
        match self {
            Arg::Field(p, _)
            | Arg::Chain(p, _, _)
            | Arg::Variable(p, _)
            | Arg::Identifier(p, _)
            | Arg::Dot(p)
            | Arg::Nil(p)
            | Arg::Bool(p, _)
            | Arg::Number(p, _)
            | Arg::String(p, _, _) => *p,
            Arg::Pipe(p) => p.pos,
        }
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field(_, idents) => {
                for i in idents {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Chain(_, node, fields) => {
                if let Arg::Pipe(p) = &**node {
                    write!(f, "({p})")?;
                } else {
                    write!(f, "{node}")?;
                }
                for i in fields {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Variable(_, idents) => f.write_str(&idents.join(".")),
            Arg::Identifier(_, n) => f.write_str(n),
            Arg::Dot(_) => f.write_str("."),
            Arg::Nil(_) => f.write_str("nil"),
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Number(_, n) => f.write_str(&n.text),
            Arg::String(_, q, _) => f.write_str(q),
            Arg::Pipe(p) => write!(f, "{p}"),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_char(' ')?;
            }
            if let Arg::Pipe(p) = a {
                write!(f, "({p})")?;
            } else {
                write!(f, "{a}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(" := ")?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, l: &[Node]) -> fmt::Result {
    for n in l {
        write!(f, "{n}")?;
    }
    Ok(())
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let branch = |f: &mut fmt::Formatter<'_>, name: &str, b: &Branch| {
            write!(f, "{{{{{name} {}}}}}", b.pipe)?;
            write_list(f, &b.list)?;
            if let Some(e) = &b.else_list {
                f.write_str("{{else}}")?;
                write_list(f, e)?;
            }
            f.write_str("{{end}}")
        };
        match self {
            Node::Text(t) => f.write_str(&quote(t, false)),
            Node::Action(p) => write!(f, "{{{{{p}}}}}"),
            Node::If(b) => branch(f, "if", b),
            Node::Range(b) => branch(f, "range", b),
            Node::With(b) => branch(f, "with", b),
            Node::Template { name, pipe, .. } => {
                write!(f, "{{{{template {}", quote(name, false))?;
                if let Some(p) = pipe {
                    write!(f, " {p}")?;
                }
                f.write_str("}}")
            }
            Node::Break(_) => f.write_str("{{break}}"),
            Node::Continue(_) => f.write_str("{{continue}}"),
        }
    }
}
