//! The executor of Go's `text/template`: walks a parsed tree over a [`Value`], with Go's
//! evaluation of fields, methods, functions, variables, `range`/`with`/`template`, its argument
//! type checks and its execution error messages; bounded in steps, depth and output.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::Arc;

use super::funcs::{self, Builtin};
use super::methods;
use super::parse::{Arg, Branch, Command, Node, Pipe, Tree};
use super::printf::quote;
use super::value::{ListType, MapType, Value, print_top};
use super::{Env, ExecError, Func, MissingKey, Templates, Ty};

/// The node an error is reported at, as Go's `state.at` tracks it.
#[derive(Clone, Copy)]
enum At<'a> {
    None,
    Node(&'a Node),
    Pipe(&'a Pipe),
    Cmd(&'a Command),
    Arg(&'a Arg),
    Template(usize, &'a Node),
}

impl At<'_> {
    fn pos(&self) -> usize {
        match self {
            At::None => 0,
            At::Node(n) => match n {
                Node::Action(p) => p.pos,
                Node::If(b) | Node::Range(b) | Node::With(b) => b.pos,
                Node::Template { pos, .. } => *pos,
                Node::Break(p) | Node::Continue(p) => *p,
                Node::Text(_) => 0,
            },
            At::Pipe(p) => p.pos,
            At::Cmd(c) => c.pos,
            At::Arg(a) => a.pos(),
            At::Template(p, _) => *p,
        }
    }

    fn context(&self) -> String {
        match self {
            At::None => String::new(),
            At::Node(n) | At::Template(_, n) => n.to_string(),
            At::Pipe(p) => p.to_string(),
            At::Cmd(c) => c.to_string(),
            At::Arg(a) => match a {
                Arg::Pipe(p) => p.to_string(),
                a => a.to_string(),
            },
        }
    }
}

/// How a walk stops early.
pub(super) enum Ctl {
    Break,
    Continue,
    Error(Box<ExecError>),
}

type R<T> = Result<T, Ctl>;

/// A function found by name: one of Go's built-ins or a registered one.
#[derive(Clone)]
enum Callee<'a> {
    Builtin(Builtin),
    Func(&'a Func),
    Method(methods::Method),
    Escaper(fn(&[Value]) -> Value),
}

pub(super) struct State<'a> {
    set: &'a Templates,
    trees: &'a HashMap<String, Arc<Tree>>,
    tree: &'a Tree,
    at: At<'a>,
    vars: Vec<(&'a str, Value)>,
    out: &'a mut String,
    depth: usize,
    steps: &'a mut u64,
    env: &'a Env<'a>,
    /// Whether dot's static Go type is `interface {}` (an element of a `[]interface {}` or
    /// `map[string]interface {}` being ranged over), which Go names in field errors.
    dot_iface: bool,
}

fn holds_interfaces(v: &Value) -> bool {
    match v {
        Value::Map(m) => m.ty == MapType::Interface,
        Value::List(l) => l.ty == ListType::Interface,
        _ => false,
    }
}

/// Nesting of `{{ template }}` calls allowed (Go allows 100,000 on its growable stacks).
pub const MAX_DEPTH: usize = 200;

/// Runs `tree` over `data`, appending to `out`.
pub(super) fn execute(
    set: &Templates,
    trees: &HashMap<String, Arc<Tree>>,
    tree: &Tree,
    data: &Value,
    out: &mut String,
    env: &Env<'_>,
) -> Result<(), ExecError> {
    let mut steps = 0;
    let mut s = State {
        set,
        trees,
        tree,
        at: At::None,
        vars: vec![("$", data.clone())],
        out,
        depth: 0,
        steps: &mut steps,
        env,
        dot_iface: false,
    };
    match s.walk_list(data, &tree.root) {
        Ok(()) => Ok(()),
        Err(Ctl::Error(e)) => Err(*e),
        Err(_) => Ok(()),
    }
}

fn zero_of(ty: Ty) -> Value {
    match ty {
        Ty::StringSlice => Value::list(ListType::String, vec![]),
        Ty::QueryResult => Value::list(ListType::QueryResult, vec![]),
        Ty::Kv => Value::string_map::<String, String>(MapType::Kv, []),
        Ty::Reflect => Value::Invalid,
        _ => Value::Nil,
    }
}

impl<'a> State<'a> {
    fn errorf(&self, msg: impl Display) -> Ctl {
        let name = &self.tree.name;
        let message = if let At::None = self.at {
            format!("template: {name}: {msg}")
        } else {
            format!(
                "template: {}: executing {} at <{}>: {msg}",
                self.tree.location(self.at.pos()),
                quote(name, false),
                self.at.context()
            )
        };
        Ctl::Error(Box::new(ExecError {
            name: name.clone(),
            message,
        }))
    }

    fn own_error(&self, msg: impl Display) -> Ctl {
        Ctl::Error(Box::new(ExecError {
            name: self.tree.name.clone(),
            message: format!("template: {}: {msg}", self.tree.name),
        }))
    }

    fn step(&mut self) -> R<()> {
        *self.steps += 1;
        if *self.steps > self.set.limits.max_steps {
            return Err(self.own_error(format!(
                "execution exceeded {} steps",
                self.set.limits.max_steps
            )));
        }
        Ok(())
    }

    fn write(&mut self, s: &str) -> R<()> {
        if self.out.len() + s.len() > self.set.limits.max_output {
            return Err(self.own_error(format!(
                "output exceeds {} bytes",
                self.set.limits.max_output
            )));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn walk_list(&mut self, dot: &Value, list: &'a [Node]) -> R<()> {
        for n in list {
            self.walk(dot, n)?;
        }
        Ok(())
    }

    fn walk(&mut self, dot: &Value, node: &'a Node) -> R<()> {
        self.step()?;
        self.at = At::Node(node);
        match node {
            Node::Text(t) => self.write(t),
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.at = At::Node(node);
                    self.print_value(&v)?;
                }
                Ok(())
            }
            Node::If(b) => self.walk_if_or_with(false, dot, b),
            Node::With(b) => self.walk_if_or_with(true, dot, b),
            Node::Range(b) => self.walk_range(dot, node, b),
            Node::Template { pos, name, pipe } => {
                self.at = At::Template(*pos, node);
                let Some(tree) = self.trees.get(name) else {
                    return Err(self.errorf(format!("template {} not defined", quote(name, false))));
                };
                if self.depth >= MAX_DEPTH {
                    return Err(
                        self.errorf(format!("exceeded maximum template depth ({MAX_DEPTH})"))
                    );
                }
                let dot = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Value::Invalid,
                };
                let tree: &'a Tree = tree;
                let mut inner = State {
                    set: self.set,
                    trees: self.trees,
                    tree,
                    at: At::None,
                    vars: vec![("$", dot.clone())],
                    out: &mut *self.out,
                    depth: self.depth + 1,
                    steps: &mut *self.steps,
                    env: self.env,
                    dot_iface: false,
                };
                inner.walk_list(&dot, &tree.root)
            }
            Node::Break(_) => Err(Ctl::Break),
            Node::Continue(_) => Err(Ctl::Continue),
        }
    }

    fn print_value(&mut self, v: &Value) -> R<()> {
        match v {
            Value::Str(s) => self.write(&s.clone()),
            _ => {
                let mut s = String::new();
                print_top(&mut s, v);
                self.write(&s)
            }
        }
    }

    fn walk_if_or_with(&mut self, with: bool, dot: &Value, b: &'a Branch) -> R<()> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let r = if val.truth() {
            if with {
                let saved = std::mem::replace(&mut self.dot_iface, false);
                let r = self.walk_list(&val, &b.list);
                self.dot_iface = saved;
                r
            } else {
                self.walk_list(dot, &b.list)
            }
        } else if let Some(e) = &b.else_list {
            self.walk_list(dot, e)
        } else {
            Ok(())
        };
        self.vars.truncate(mark);
        r
    }

    fn walk_range(&mut self, dot: &Value, node: &'a Node, r: &'a Branch) -> R<()> {
        self.at = At::Node(node);
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &r.pipe)?;
        let inner_mark = self.vars.len();
        let mut any = false;
        let saved_iface = self.dot_iface;
        self.dot_iface = holds_interfaces(&val);
        let one = |s: &mut Self, index: Value, elem: Value| -> R<bool> {
            s.step()?;
            let n = s.vars.len();
            if !r.pipe.decl.is_empty() {
                s.vars[n - 1].1 = elem.clone();
            }
            if r.pipe.decl.len() > 1 {
                s.vars[n - 2].1 = index;
            }
            let res = s.walk_list(&elem, &r.list);
            s.vars.truncate(inner_mark);
            match res {
                Ok(()) | Err(Ctl::Continue) => Ok(true),
                Err(Ctl::Break) => Ok(false),
                Err(e) => Err(e),
            }
        };
        let looped = (|| {
            match &val {
                Value::List(l) => {
                    for (i, elem) in l.items.iter().enumerate() {
                        any = true;
                        if !one(self, Value::Int(i as i64), elem.clone())? {
                            break;
                        }
                    }
                }
                Value::Map(m) => {
                    for (k, elem) in &m.entries {
                        any = true;
                        if !one(self, Value::str(k), elem.clone())? {
                            break;
                        }
                    }
                }
                Value::Invalid | Value::Nil => {}
                other => {
                    let mut s = String::new();
                    super::value::print_plain(&mut s, other, 0);
                    return Err(self.errorf(format!("range can't iterate over {s}")));
                }
            }
            Ok(())
        })();
        self.dot_iface = saved_iface;
        looped?;
        if !any && let Some(e) = &r.else_list {
            self.walk_list(dot, e)?;
        }
        self.vars.truncate(mark);
        Ok(())
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &'a Pipe) -> R<Value> {
        self.at = At::Pipe(pipe);
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            self.step()?;
            let v = self.eval_command(dot, cmd, value.take())?;
            // Go turns a nil interface into an invalid value here ("lovely!").
            value = Some(if matches!(v, Value::Nil) {
                Value::Invalid
            } else {
                v
            });
        }
        let value = value.unwrap_or_default();
        for var in &pipe.decl {
            if pipe.is_assign {
                self.set_var(var, value.clone())?;
            } else {
                self.vars.push((var.as_str(), value.clone()));
            }
        }
        Ok(value)
    }

    fn set_var(&mut self, name: &str, value: Value) -> R<()> {
        for v in self.vars.iter_mut().rev() {
            if v.0 == name {
                v.1 = value;
                return Ok(());
            }
        }
        Err(self.errorf(format!("undefined variable: {name}")))
    }

    fn var_value(&self, name: &str) -> R<Value> {
        for v in self.vars.iter().rev() {
            if v.0 == name {
                return Ok(v.1.clone());
            }
        }
        Err(self.errorf(format!("undefined variable: {name}")))
    }

    fn not_a_function(&self, args: &[Arg], fin: &Option<Value>) -> R<()> {
        if args.len() > 1 || fin.is_some() {
            return Err(self.errorf(format!("can't give argument to non-function {}", args[0])));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &'a Command, fin: Option<Value>) -> R<Value> {
        let first = &cmd.args[0];
        match first {
            Arg::Field(_, idents) => {
                self.at = At::Arg(first);
                let iface = self.dot_iface;
                return self.eval_field_chain(
                    dot,
                    (dot.clone(), iface),
                    first,
                    idents,
                    &cmd.args,
                    fin,
                );
            }
            Arg::Chain(..) => return self.eval_chain(dot, first, &cmd.args, fin),
            Arg::Identifier(_, name) => {
                return self.eval_function(dot, first, name, Some(cmd), &cmd.args, fin);
            }
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, &fin)?;
                return self.eval_pipeline(dot, p);
            }
            Arg::Variable(..) => return self.eval_variable(dot, first, &cmd.args, fin),
            _ => {}
        }
        self.at = At::Arg(first);
        self.not_a_function(&cmd.args, &fin)?;
        match first {
            Arg::Bool(_, b) => Ok(Value::Bool(*b)),
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Nil(_) => Err(self.errorf("nil is not a command")),
            Arg::Number(..) => self.ideal_constant(first),
            Arg::String(_, _, s) => Ok(Value::Str(s.clone())),
            _ => Err(self.errorf(format!(
                "can't evaluate command {}",
                quote(&first.to_string(), false)
            ))),
        }
    }

    fn ideal_constant(&mut self, arg: &'a Arg) -> R<Value> {
        self.at = At::Arg(arg);
        let Arg::Number(_, n) = arg else {
            return Ok(Value::Invalid);
        };
        let t = &n.text;
        let is_hex_int = t.len() > 2
            && t.starts_with('0')
            && (t.as_bytes()[1] == b'x' || t.as_bytes()[1] == b'X')
            && !t.contains(['p', 'P']);
        let is_rune = t.starts_with('\'');
        if let Some(f) = n.float
            && !is_hex_int
            && !is_rune
            && t.contains(['.', 'e', 'E', 'p', 'P'])
        {
            return Ok(Value::Float(f));
        }
        if let Some(i) = n.int {
            return Ok(Value::Int(i));
        }
        if n.uint.is_some() {
            return Err(self.errorf(format!("{t} overflows int")));
        }
        Ok(Value::Invalid)
    }

    fn eval_chain(
        &mut self,
        dot: &Value,
        chain: &'a Arg,
        args: &'a [Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        self.at = At::Arg(chain);
        let Arg::Chain(_, node, fields) = chain else {
            return Ok(Value::Invalid);
        };
        if let Arg::Nil(_) = **node {
            return Err(self.errorf(format!("indirection through explicit nil in {chain}")));
        }
        let pipe = self.eval_arg(dot, Ty::Reflect, node)?;
        self.eval_field_chain(dot, (pipe, false), chain, fields, args, fin)
    }

    fn eval_variable(
        &mut self,
        dot: &Value,
        var: &'a Arg,
        args: &'a [Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        self.at = At::Arg(var);
        let Arg::Variable(_, idents) = var else {
            return Ok(Value::Invalid);
        };
        let value = self.var_value(&idents[0])?;
        if idents.len() == 1 {
            self.not_a_function(args, &fin)?;
            return Ok(value);
        }
        self.eval_field_chain(dot, (value, false), var, &idents[1..], args, fin)
    }

    fn eval_field_chain(
        &mut self,
        dot: &Value,
        (mut receiver, mut iface): (Value, bool),
        node: &'a Arg,
        ident: &'a [String],
        args: &'a [Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        let n = ident.len();
        for name in &ident[..n - 1] {
            let next_iface = holds_interfaces(&receiver);
            receiver = self.eval_field(dot, name, node, &[], None, (receiver, iface))?;
            iface = next_iface;
        }
        self.eval_field(dot, &ident[n - 1], node, args, fin, (receiver, iface))
    }

    fn eval_field(
        &mut self,
        dot: &Value,
        name: &str,
        node: &'a Arg,
        args: &'a [Arg],
        fin: Option<Value>,
        (receiver, iface): (Value, bool),
    ) -> R<Value> {
        if let Value::Invalid = receiver {
            if self.set.missing_key == MissingKey::Error {
                return Err(
                    self.errorf(format!("nil data; no entry for key {}", quote(name, false)))
                );
            }
            return Ok(Value::Invalid);
        }
        if let Value::Nil = receiver {
            return Err(self.errorf(format!("nil pointer evaluating interface {{}}.{name}")));
        }
        if let Some(m) = methods::lookup(&receiver, name) {
            return self.eval_call(
                dot,
                Callee::Method(m),
                Some(receiver),
                node,
                None,
                name,
                args,
                fin,
            );
        }
        let has_args = args.len() > 1 || fin.is_some();
        match &receiver {
            Value::Struct(s) => {
                if let Some(v) = s.field(name) {
                    if has_args {
                        return Err(self.errorf(format!(
                            "{name} has arguments but cannot be invoked as function"
                        )));
                    }
                    return Ok(v.clone());
                }
            }
            Value::Map(m) => {
                if has_args {
                    return Err(self.errorf(format!("{name} is not a method but has arguments")));
                }
                return match m.entries.get(name) {
                    Some(v) => Ok(v.clone()),
                    None => match self.set.missing_key {
                        MissingKey::Invalid => Ok(Value::Invalid),
                        MissingKey::Zero => Ok(match m.ty {
                            MapType::Interface => Value::Nil,
                            MapType::String | MapType::Kv => Value::str(""),
                        }),
                        MissingKey::Error => {
                            Err(self
                                .errorf(format!("map has no entry for key {}", quote(name, false))))
                        }
                    },
                };
            }
            _ => {}
        }
        let ty = if iface {
            "interface {}"
        } else {
            receiver.type_name()
        };
        Err(self.errorf(format!("can't evaluate field {name} in type {ty}")))
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        ident: &'a Arg,
        name: &'a str,
        cmd: Option<&'a Command>,
        args: &'a [Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        self.at = At::Arg(ident);
        let callee = if let Some(f) = self.set.funcs.get(name) {
            Callee::Func(f)
        } else if let Some(b) = Builtin::from_name(name) {
            Callee::Builtin(b)
        } else if let Some(e) = super::html::escaper(name) {
            Callee::Escaper(e)
        } else {
            return Err(self.errorf(format!("{} is not a defined function", quote(name, false))));
        };
        self.eval_call(dot, callee, None, ident, cmd, name, args, fin)
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_call(
        &mut self,
        dot: &Value,
        callee: Callee<'a>,
        receiver: Option<Value>,
        node: &'a Arg,
        cmd: Option<&'a Command>,
        name: &str,
        args: &'a [Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        let args = if args.is_empty() { args } else { &args[1..] };
        let (params, variadic): (&[Ty], Option<Ty>) = match &callee {
            Callee::Builtin(b) => b.signature(),
            Callee::Func(f) => (&f.params, f.variadic),
            Callee::Method(m) => (m.params, None),
            Callee::Escaper(_) => (&[], Some(Ty::Any)),
        };
        let num_in = args.len() + usize::from(fin.is_some());
        if variadic.is_some() {
            if num_in < params.len() {
                return Err(self.errorf(format!(
                    "wrong number of args for {name}: want at least {} got {}",
                    params.len(),
                    args.len()
                )));
            }
        } else if num_in != params.len() {
            return Err(self.errorf(format!(
                "wrong number of args for {name}: want {} got {num_in}",
                params.len()
            )));
        }
        if let Callee::Builtin(b @ (Builtin::And | Builtin::Or)) = callee {
            let want = b == Builtin::Or;
            let mut v = Value::Invalid;
            for arg in args {
                v = self.eval_arg(dot, Ty::Reflect, arg)?;
                if v.truth() == want {
                    return Ok(v);
                }
            }
            if let Some(f) = fin {
                v = f;
            }
            return Ok(v);
        }
        if let (Callee::Escaper(e), true, Some(f)) = (&callee, args.is_empty(), &fin) {
            // The common `{{ x | _html_template_… }}`: no argument vector to build.
            let v = if matches!(f, Value::Invalid) {
                Value::Nil
            } else {
                f.clone()
            };
            return Ok(e(std::slice::from_ref(&v)));
        }
        let mut argv = Vec::with_capacity(num_in);
        for (i, arg) in args.iter().enumerate() {
            let ty = params.get(i).copied().or(variadic).unwrap_or(Ty::Any);
            argv.push(self.eval_arg(dot, ty, arg)?);
        }
        if let Some(f) = fin {
            let ty = params
                .get(argv.len())
                .copied()
                .or(variadic)
                .unwrap_or(Ty::Any);
            argv.push(self.validate_type(f, ty)?);
        }
        let result = match callee {
            Callee::Builtin(b) => funcs::call_builtin(b, argv),
            Callee::Func(f) => (f.call)(self.env, argv),
            Callee::Method(m) => (m.call)(receiver.as_ref().unwrap_or(&Value::Invalid), argv),
            Callee::Escaper(e) => Ok(e(&argv)),
        };
        match result {
            Ok(v) => {
                if let Value::Str(s) | Value::Html(s) = &v
                    && s.len() > self.set.limits.max_output
                {
                    return Err(self.own_error(format!(
                        "output exceeds {} bytes",
                        self.set.limits.max_output
                    )));
                }
                Ok(v)
            }
            Err(e) => {
                self.at = match cmd {
                    Some(c) => At::Cmd(c),
                    None => At::Arg(node),
                };
                Err(self.errorf(format!("error calling {name}: {e}")))
            }
        }
    }

    fn validate_type(&mut self, value: Value, ty: Ty) -> R<Value> {
        match value {
            Value::Invalid => {
                if ty == Ty::Reflect {
                    return Ok(Value::Invalid);
                }
                if ty.can_be_nil() {
                    return Ok(zero_of(ty));
                }
                Err(self.errorf(format!("invalid value; expected {}", ty.name())))
            }
            v if ty.accepts(&v) => Ok(v),
            Value::Nil if ty.can_be_nil() => Ok(zero_of(ty)),
            v => Err(self.errorf(format!(
                "wrong type for value; expected {}; got {}",
                ty.name(),
                v.type_name()
            ))),
        }
    }

    fn eval_arg(&mut self, dot: &Value, ty: Ty, n: &'a Arg) -> R<Value> {
        self.at = At::Arg(n);
        match n {
            Arg::Dot(_) => return self.validate_type(dot.clone(), ty),
            Arg::Nil(_) => {
                if ty.can_be_nil() {
                    return Ok(zero_of(ty));
                }
                return Err(self.errorf(format!("cannot assign nil to {}", ty.name())));
            }
            Arg::Field(_, idents) => {
                let start = (dot.clone(), self.dot_iface);
                let v =
                    self.eval_field_chain(dot, start, n, idents, std::slice::from_ref(n), None)?;
                return self.validate_type(v, ty);
            }
            Arg::Variable(..) => {
                let v = self.eval_variable(dot, n, &[], None)?;
                return self.validate_type(v, ty);
            }
            Arg::Pipe(p) => {
                let v = self.eval_pipeline(dot, p)?;
                return self.validate_type(v, ty);
            }
            Arg::Identifier(_, name) => {
                let v = self.eval_function(dot, n, name, None, &[], None)?;
                return self.validate_type(v, ty);
            }
            Arg::Chain(..) => {
                let v = self.eval_chain(dot, n, &[], None)?;
                return self.validate_type(v, ty);
            }
            _ => {}
        }
        match ty {
            Ty::Bool => match n {
                Arg::Bool(_, b) => Ok(Value::Bool(*b)),
                _ => Err(self.errorf(format!("expected bool; found {n}"))),
            },
            Ty::Float => match n {
                Arg::Number(_, num) if num.float.is_some() => {
                    Ok(Value::Float(num.float.unwrap_or(0.0)))
                }
                _ => Err(self.errorf(format!("expected float; found {n}"))),
            },
            Ty::Int => match n {
                Arg::Number(_, num) if num.int.is_some() => Ok(Value::Int(num.int.unwrap_or(0))),
                _ => Err(self.errorf(format!("expected integer; found {n}"))),
            },
            Ty::Duration => match n {
                Arg::Number(_, num) if num.int.is_some() => {
                    Ok(Value::Duration(super::Duration(num.int.unwrap_or(0))))
                }
                _ => Err(self.errorf(format!("expected integer; found {n}"))),
            },
            Ty::String => match n {
                Arg::String(_, _, s) => Ok(Value::Str(s.clone())),
                _ => Err(self.errorf(format!("expected string; found {n}"))),
            },
            Ty::Any | Ty::Reflect => match n {
                Arg::Bool(_, b) => Ok(Value::Bool(*b)),
                Arg::Number(..) => self.ideal_constant(n),
                Arg::String(_, _, s) => Ok(Value::Str(s.clone())),
                _ => Err(self.errorf(format!(
                    "can't handle assignment of {n} to empty interface argument"
                ))),
            },
            _ => Err(self.errorf(format!("can't handle {n} for arg of type {}", ty.name()))),
        }
    }
}

impl Ty {
    /// The Go type name, as errors print it.
    pub fn name(self) -> &'static str {
        match self {
            Ty::Any => "interface {}",
            Ty::Reflect => "reflect.Value",
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Float => "float64",
            Ty::String => "string",
            Ty::StringSlice => "[]string",
            Ty::Time => "time.Time",
            Ty::Duration => "time.Duration",
            Ty::Kv => "template.KV",
            Ty::Sample => "*template.sample",
            Ty::QueryResult => "template.queryResult",
        }
    }

    fn can_be_nil(self) -> bool {
        matches!(
            self,
            Ty::Any | Ty::Reflect | Ty::StringSlice | Ty::Kv | Ty::Sample | Ty::QueryResult
        )
    }

    fn accepts(self, v: &Value) -> bool {
        match (self, v) {
            (Ty::Any | Ty::Reflect, _) => true,
            (Ty::Bool, Value::Bool(_)) => true,
            (Ty::Int, Value::Int(_)) => true,
            (Ty::Float, Value::Float(_)) => true,
            (Ty::String, Value::Str(_)) => true,
            (Ty::Time, Value::Time(_)) => true,
            (Ty::Duration, Value::Duration(_)) => true,
            (Ty::StringSlice, Value::List(l)) => l.ty == ListType::String,
            (Ty::QueryResult, Value::List(l)) => l.ty == ListType::QueryResult,
            (Ty::Kv, Value::Map(m)) => m.ty == MapType::Kv || m.ty == MapType::String,
            (Ty::Sample, Value::Struct(s)) => s.ty == "*template.sample",
            _ => false,
        }
    }
}
