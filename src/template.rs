//! Go's `text/template`, ours: one engine for Prometheus rule templates (annotations and labels)
//! and Alertmanager notification templates, rendering byte for byte what they render.
//!
//! Templates are parsed once into a [`Templates`] set and rendered many times over a [`Value`]:
//!
//! ```
//! use tradewatch::template::{Templates, Value, MapType, Funcs, MissingKey};
//!
//! let mut set = Templates::new(Funcs::default()).missing_key(MissingKey::Zero);
//! set.parse("t", r#"{{ range $k, $v := . }}{{ $k }}={{ $v | printf "%q" }} {{ end }}"#).unwrap();
//! let data = Value::string_map(MapType::String, [("b", "2"), ("a", "1")]);
//! assert_eq!(set.execute("t", &data).unwrap(), r#"a="1" b="2" "#);
//! ```
//!
//! [`prometheus`] renders rule templates with Prometheus's data and functions,
//! [`alertmanager`] notification templates with Alertmanager's (and its default templates).

pub mod alertmanager;
mod exec;
pub mod funcs;
pub mod gotime;
pub mod html;
pub mod lex;
mod methods;
pub mod node;
pub mod parse;
pub mod printf;
pub mod prometheus;
pub mod value;

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

pub use gotime::{Duration, Time};
pub use parse::ParseError;
pub use value::{List, ListType, Map, MapType, Struct, Value};

/// The Go type of a function parameter, which decides how arguments are checked and converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// `interface {}`: anything (missing values arrive as nil).
    Any,
    /// `reflect.Value`, as Go's built-ins take: anything, missing values as they are.
    Reflect,
    /// `bool`.
    Bool,
    /// `int`.
    Int,
    /// `float64`.
    Float,
    /// `string`.
    String,
    /// `[]string`.
    StringSlice,
    /// `time.Time`.
    Time,
    /// `time.Duration`.
    Duration,
    /// Alertmanager's `template.KV`.
    Kv,
    /// Prometheus's `*template.sample`.
    Sample,
    /// Prometheus's `template.queryResult`.
    QueryResult,
}

/// What a function sees of the render it is called from: the caller's environment (for example
/// Prometheus's query engine and evaluation time), passed to [`Templates::execute_with`].
pub type Env<'a> = Option<&'a (dyn Any + Send + Sync)>;

/// A function's implementation: given the render's environment and checked arguments, a value or
/// an error message (Go wraps it as `error calling NAME: …`).
pub type FuncImpl = Arc<dyn Fn(&Env<'_>, Vec<Value>) -> Result<Value, String> + Send + Sync>;

/// A function templates can call.
#[derive(Clone)]
pub struct Func {
    /// Fixed parameters.
    pub params: Vec<Ty>,
    /// The type of the variadic tail, if any.
    pub variadic: Option<Ty>,
    /// The implementation.
    pub call: FuncImpl,
}

impl Func {
    /// A function of fixed parameters.
    pub fn new(
        params: &[Ty],
        call: impl Fn(&Env<'_>, Vec<Value>) -> Result<Value, String> + Send + Sync + 'static,
    ) -> Func {
        Func {
            params: params.to_vec(),
            variadic: None,
            call: Arc::new(call),
        }
    }

    /// A function whose last parameter is variadic.
    pub fn variadic(
        params: &[Ty],
        rest: Ty,
        call: impl Fn(&Env<'_>, Vec<Value>) -> Result<Value, String> + Send + Sync + 'static,
    ) -> Func {
        Func {
            params: params.to_vec(),
            variadic: Some(rest),
            call: Arc::new(call),
        }
    }
}

impl std::fmt::Debug for Func {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Func")
            .field("params", &self.params)
            .field("variadic", &self.variadic)
            .finish()
    }
}

/// A function map, Go's `template.FuncMap`.
#[derive(Clone, Debug, Default)]
pub struct Funcs(HashMap<String, Func>);

impl Funcs {
    /// Adds or replaces a function.
    pub fn insert(&mut self, name: &str, f: Func) {
        self.0.insert(name.to_string(), f);
    }

    /// The function called `name`.
    pub fn get(&self, name: &str) -> Option<&Func> {
        self.0.get(name)
    }

    /// Whether a function called `name` exists (registered or built in).
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name) || funcs::is_builtin(name)
    }
}

/// Go's `missingkey` option: what a missing map key evaluates to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissingKey {
    /// `missingkey=default`: an invalid value, printed `<no value>`.
    #[default]
    Invalid,
    /// `missingkey=zero`: the zero value of the map's element type.
    Zero,
    /// `missingkey=error`: an execution error.
    Error,
}

/// Bounds on one execution, so no template or data can hang or exhaust memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of output (and of any string a function returns).
    pub max_output: usize,
    /// Most evaluation steps (nodes walked, commands evaluated, loop iterations).
    pub max_steps: u64,
}

impl Default for Limits {
    /// 8 MiB of output and 5,000,000 steps: room for Alertmanager's default email to a group of
    /// a few thousand alerts, while a runaway template stops within about a second.
    fn default() -> Limits {
        Limits {
            max_output: 8 << 20,
            max_steps: 5_000_000,
        }
    }
}

/// An execution error, worded as Go's: `template: NAME:LINE:COL: executing "NAME" at <NODE>: …`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExecError {
    /// The template executing when it failed.
    pub name: String,
    /// Go's full message.
    pub message: String,
}

/// A parse or execution error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text did not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// Execution failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
}

/// A set of named templates sharing functions and options, Go's `*template.Template` with its
/// associated templates. Parsed once, executed any number of times, from any thread.
#[derive(Clone, Debug)]
pub struct Templates {
    trees: HashMap<String, Arc<parse::Tree>>,
    funcs: Arc<Funcs>,
    missing_key: MissingKey,
    html: bool,
    limits: Limits,
    html_cache: Arc<parking_lot::Mutex<html::Cache>>,
}

impl Templates {
    /// An empty set with these functions (Go's built-ins are always there).
    pub fn new(funcs: Funcs) -> Templates {
        Templates {
            trees: HashMap::new(),
            funcs: Arc::new(funcs),
            missing_key: MissingKey::Invalid,
            html: false,
            limits: Limits::default(),
            html_cache: Arc::default(),
        }
    }

    /// Sets Go's `missingkey` option.
    pub fn missing_key(mut self, m: MissingKey) -> Templates {
        self.missing_key = m;
        self
    }

    /// Makes this an `html/template` set: printed values are escaped by context (HTML, attributes,
    /// URLs, JavaScript, CSS), comments in the template text are dropped (HTML comments, and
    /// JavaScript and CSS comments in scripts and styles), and a template whose branches or end
    /// leave the output in an ambiguous context fails to execute with Go's `html/template` error.
    /// Applies to templates parsed afterwards.
    pub fn html(mut self) -> Templates {
        self.html = true;
        self
    }

    /// Sets the execution bounds.
    pub fn limits(mut self, limits: Limits) -> Templates {
        self.limits = limits;
        self
    }

    /// Parses `text` as the template `name`, adding it and every template it defines. A later
    /// definition replaces an earlier one of the same name, unless the later one is empty.
    pub fn parse(&mut self, name: &str, text: &str) -> Result<(), ParseError> {
        let funcs = self.funcs.clone();
        let trees = parse::parse(name, text, &|n| funcs.has(n))?;
        if self.html {
            let names: Vec<&str> = trees.iter().map(|t| t.name.as_str()).collect();
            let kept = self.html_cache.lock().without(&names);
            self.html_cache = Arc::new(parking_lot::Mutex::new(kept));
        }
        for tree in trees {
            let empty = tree
                .root
                .iter()
                .all(|n| matches!(n, parse::Node::Text(t) if t.trim().is_empty()));
            if empty && self.trees.contains_key(&tree.name) {
                continue;
            }
            self.trees.insert(tree.name.clone(), Arc::new(tree));
        }
        Ok(())
    }

    /// For an HTML set: escapes every template now (in text context, and what each calls in
    /// the contexts it calls them), so that sets cloned from this one to parse one more text
    /// escape only that text. Go escapes lazily, at first execution; the output is the same.
    pub fn escape_all(&self) {
        if !self.html {
            return;
        }
        let mut cache = self.html_cache.lock();
        for name in self.trees.keys() {
            // A template that cannot be escaped keeps its error for when it is executed.
            let _ = cache.escaped(&self.trees, name);
        }
    }

    /// Whether a template called `name` is defined.
    pub fn has(&self, name: &str) -> bool {
        self.trees.contains_key(name)
    }

    /// The names of the defined templates, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.trees.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Renders the template `name` over `data`.
    pub fn execute(&self, name: &str, data: &Value) -> Result<String, ExecError> {
        self.execute_with(name, data, None)
    }

    /// Renders the template `name` over `data`, with an environment for the functions.
    pub fn execute_with(
        &self,
        name: &str,
        data: &Value,
        env: Env<'_>,
    ) -> Result<String, ExecError> {
        let mut out = String::new();
        self.execute_into(&mut out, name, data, env)?;
        Ok(out)
    }

    /// Renders the template `name` over `data`, appending to `out`.
    pub fn execute_into(
        &self,
        out: &mut String,
        name: &str,
        data: &Value,
        env: Env<'_>,
    ) -> Result<(), ExecError> {
        let escaped;
        let trees = if self.html && self.trees.contains_key(name) {
            escaped = self
                .html_cache
                .lock()
                .escaped(&self.trees, name)
                .map_err(|e| ExecError {
                    name: name.to_string(),
                    message: e.to_string(),
                })?;
            &*escaped
        } else {
            &self.trees
        };
        let Some(tree) = trees.get(name) else {
            return Err(ExecError {
                name: name.to_string(),
                message: format!(
                    "template: no template {} associated with template {}",
                    printf::quote(name, false),
                    printf::quote(name, false)
                ),
            });
        };
        exec::execute(self, trees, tree, data, out, &env)
    }
}

#[cfg(test)]
mod tests;
