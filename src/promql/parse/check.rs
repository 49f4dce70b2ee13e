//! The tree a diagnosis reads (only what Prometheus's checks need: node kinds, start offsets,
//! operators, modifiers) and Prometheus 2.42's `checkAST` over it: argument counts and types of
//! functions and aggregations, the operand types of binary and unary expressions, `bool` and
//! set operators, vector matching, empty selectors, each error at the node Prometheus points at.

use super::grammar::Diagnosis;
use super::lex::go_quote;

/// A value type, as Prometheus's checker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ty {
    Scalar,
    Vector,
    Matrix,
    Str,
}

impl Ty {
    /// Prometheus's `documentedType`.
    fn documented(self) -> &'static str {
        match self {
            Ty::Scalar => "scalar",
            Ty::Vector => "instant vector",
            Ty::Matrix => "range vector",
            Ty::Str => "string",
        }
    }

    /// Prometheus's `ValueType` string.
    fn name(self) -> &'static str {
        match self {
            Ty::Scalar => "scalar",
            Ty::Vector => "vector",
            Ty::Matrix => "matrix",
            Ty::Str => "string",
        }
    }
}

/// A function: argument types, how many optional trailing arguments (Prometheus's `Variadic`:
/// 0 exact, n up to n more, -1 unbounded), return type.
pub(super) struct Function {
    args: &'static [Ty],
    variadic: i32,
    returns: Ty,
}

/// The functions of Prometheus 2.42 and of 3.x (promql-parser's set).
pub(super) fn function(name: &str) -> Option<Function> {
    use Ty::{Matrix as M, Scalar as S, Str as T, Vector as V};
    let f = |args: &'static [Ty], variadic: i32, returns: Ty| {
        Some(Function {
            args,
            variadic,
            returns,
        })
    };
    match name {
        "abs" | "absent" | "acos" | "acosh" | "asin" | "asinh" | "atan" | "atanh" | "ceil"
        | "cos" | "cosh" | "deg" | "exp" | "floor" | "ln" | "log10" | "log2" | "rad" | "sgn"
        | "sin" | "sinh" | "sort" | "sort_desc" | "sqrt" | "tan" | "tanh" | "timestamp"
        | "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
        | "histogram_stdvar" => f(&[V], 0, V),
        "absent_over_time"
        | "avg_over_time"
        | "changes"
        | "count_over_time"
        | "delta"
        | "deriv"
        | "idelta"
        | "increase"
        | "irate"
        | "last_over_time"
        | "max_over_time"
        | "min_over_time"
        | "present_over_time"
        | "rate"
        | "resets"
        | "stddev_over_time"
        | "stdvar_over_time"
        | "sum_over_time"
        | "mad_over_time"
        | "ts_of_max_over_time"
        | "ts_of_min_over_time"
        | "ts_of_last_over_time"
        | "first_over_time"
        | "ts_of_first_over_time" => f(&[M], 0, V),
        "quantile_over_time" => f(&[S, M], 0, V),
        "predict_linear" => f(&[M, S], 0, V),
        "holt_winters" | "double_exponential_smoothing" => f(&[M, S, S], 0, V),
        "clamp" => f(&[V, S, S], 0, V),
        "clamp_max" | "clamp_min" => f(&[V, S], 0, V),
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute"
        | "month" | "year" => f(&[V], 1, V),
        "histogram_quantile" => f(&[S, V], 0, V),
        "histogram_fraction" => f(&[S, S, V], 0, V),
        "label_join" => f(&[V, T, T, T], -1, V),
        "label_replace" => f(&[V, T, T, T, T], 0, V),
        "sort_by_label" | "sort_by_label_desc" => f(&[V, T], -1, V),
        "round" => f(&[V, S], 1, V),
        "info" => f(&[V, V], 1, V),
        "pi" | "time" => f(&[], 0, S),
        "scalar" => f(&[V], 0, S),
        "vector" => f(&[S], 0, V),
        _ => None,
    }
}

#[derive(Debug)]
pub(super) enum Node {
    Number,
    Str,
    Vector {
        name: Option<String>,
        /// (label, value, matches the empty string)
        matchers: Vec<(String, String, bool)>,
        offset: bool,
        at: bool,
    },
    Matrix {
        selector: Box<Expr>,
        offset: bool,
        at: bool,
    },
    Subquery {
        expr: Box<Expr>,
        offset: bool,
        at: bool,
    },
    Paren(Box<Expr>),
    Unary(Box<Expr>),
    Binary {
        op: String,
        op_pos: usize,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        bool_: bool,
        on: bool,
        grouped: bool,
        matching: Vec<String>,
        include: Vec<String>,
    },
    Call {
        name: String,
        args: Vec<Expr>,
    },
    Aggregate {
        op: String,
        param: Option<Box<Expr>>,
        expr: Option<Box<Expr>>,
    },
}

#[derive(Debug)]
pub(super) struct Expr {
    /// Where Prometheus's position range for the node starts.
    pub start: usize,
    pub node: Node,
}

impl Expr {
    fn ty(&self) -> Ty {
        match &self.node {
            Node::Number => Ty::Scalar,
            Node::Str => Ty::Str,
            Node::Vector { .. } | Node::Aggregate { .. } => Ty::Vector,
            Node::Matrix { .. } | Node::Subquery { .. } => Ty::Matrix,
            Node::Paren(e) | Node::Unary(e) => e.ty(),
            Node::Binary { lhs, rhs, .. } => {
                if lhs.ty() == Ty::Scalar && rhs.ty() == Ty::Scalar {
                    Ty::Scalar
                } else {
                    Ty::Vector
                }
            }
            Node::Call { name, .. } => function(name).map_or(Ty::Vector, |f| f.returns),
        }
    }
}

pub(super) fn is_comparison(op: &str) -> bool {
    matches!(op, "==" | "!=" | "<" | "<=" | ">" | ">=")
}

pub(super) fn is_set(op: &str) -> bool {
    matches!(op, "and" | "or" | "unless")
}

/// The type errors of Prometheus's `checkAST`, in its order; returns the node's type.
pub(super) fn check(e: &Expr, errors: &mut Vec<Diagnosis>) -> Ty {
    let ty = e.ty();
    match &e.node {
        Node::Number | Node::Str => {}
        Node::Matrix { selector, .. } => {
            check(selector, errors);
        }
        Node::Vector { name, matchers, .. } => {
            if let Some(name) = name {
                for (_, value, _) in matchers.iter().filter(|(l, _, _)| l == "__name__") {
                    errors.push((
                        e.start,
                        format!(
                            "metric name must not be set twice: {} or {}",
                            go_quote(name),
                            go_quote(value)
                        ),
                    ));
                }
            } else if matchers.iter().all(|(_, _, empty)| *empty) {
                errors.push((
                    e.start,
                    "vector selector must contain at least one non-empty matcher".into(),
                ));
            }
        }
        Node::Paren(inner) => {
            check(inner, errors);
        }
        Node::Unary(inner) => {
            let t = check(inner, errors);
            if t != Ty::Scalar && t != Ty::Vector {
                errors.push((
                    e.start,
                    format!(
                        "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                        go_quote(t.documented())
                    ),
                ));
            }
        }
        Node::Subquery { expr, .. } => {
            let t = check(expr, errors);
            if t != Ty::Vector {
                errors.push((
                    e.start,
                    format!(
                        "subquery is only allowed on instant vector, got {} instead",
                        t.name()
                    ),
                ));
            }
        }
        Node::Aggregate { op, param, expr } => {
            if let Some(expr) = expr {
                expect(expr, Ty::Vector, "aggregation expression", errors);
            }
            if let Some(param) = param {
                let want = if op == "count_values" {
                    Ty::Str
                } else {
                    Ty::Scalar
                };
                expect(param, want, "aggregation parameter", errors);
            }
        }
        Node::Call { name, args } => {
            if let Some(f) = function(name) {
                let n = f.args.len();
                let q = go_quote(name);
                if f.variadic == 0 {
                    if n != args.len() {
                        errors.push((
                            e.start,
                            format!(
                                "expected {n} argument(s) in call to {q}, got {}",
                                args.len()
                            ),
                        ));
                    }
                } else {
                    let least = n - 1;
                    let most = least as i64 + i64::from(f.variadic);
                    if least > args.len() {
                        errors.push((
                            e.start,
                            format!(
                                "expected at least {least} argument(s) in call to {q}, got {}",
                                args.len()
                            ),
                        ));
                    } else if f.variadic > 0 && most < args.len() as i64 {
                        errors.push((
                            e.start,
                            format!(
                                "expected at most {most} argument(s) in call to {q}, got {}",
                                args.len()
                            ),
                        ));
                    }
                }
                for (i, arg) in args.iter().enumerate() {
                    let i = if i >= n {
                        if f.variadic == 0 {
                            break;
                        }
                        n - 1
                    } else {
                        i
                    };
                    expect(arg, f.args[i], &format!("call to function {q}"), errors);
                }
            }
        }
        Node::Binary {
            op,
            op_pos,
            lhs,
            rhs,
            bool_,
            on,
            grouped,
            matching,
            include,
        } => {
            let lt = check(lhs, errors);
            let rt = check(rhs, errors);
            if *bool_ && !is_comparison(op) {
                errors.push((
                    *op_pos,
                    "bool modifier can only be used on comparison operators".into(),
                ));
            }
            if is_comparison(op) && !bool_ && lt == Ty::Scalar && rt == Ty::Scalar {
                errors.push((
                    *op_pos,
                    "comparisons between scalars must use BOOL modifier".into(),
                ));
            }
            if *on {
                for l in matching.iter().filter(|l| include.contains(l)) {
                    errors.push((
                        *op_pos,
                        format!(
                            "label {} must not occur in ON and GROUP clause at once",
                            go_quote(l)
                        ),
                    ));
                }
            }
            for (t, side) in [(lt, lhs), (rt, rhs)] {
                if t != Ty::Scalar && t != Ty::Vector {
                    errors.push((
                        side.start,
                        "binary expression must contain only scalar and instant vector types"
                            .into(),
                    ));
                }
            }
            let both_vectors = lt == Ty::Vector && rt == Ty::Vector;
            if !both_vectors {
                if !matching.is_empty() {
                    errors.push((
                        e.start,
                        "vector matching only allowed between instant vectors".into(),
                    ));
                }
            } else if is_set(op) && *grouped {
                errors.push((
                    e.start,
                    format!("no grouping allowed for {} operation", go_quote(op)),
                ));
            }
            if (lt == Ty::Scalar || rt == Ty::Scalar) && is_set(op) {
                errors.push((
                    e.start,
                    format!(
                        "set operator {} not allowed in binary scalar expression",
                        go_quote(op)
                    ),
                ));
            }
        }
    }
    ty
}

fn expect(e: &Expr, want: Ty, context: &str, errors: &mut Vec<Diagnosis>) {
    let t = check(e, errors);
    if t != want {
        errors.push((
            e.start,
            format!(
                "expected type {} in {context}, got {}",
                want.documented(),
                t.documented()
            ),
        ));
    }
}
