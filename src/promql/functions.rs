//! Function calls: the dispatch, and the functions over instant vectors and scalars (math,
//! trigonometry, clamping, time, labels, sorting, `absent`, `scalar`, `vector`, `timestamp`).
//! Functions over range vectors are in `range_functions.rs`, histograms in `histogram.rs`.

use std::sync::Mutex;

use chrono::{DateTime, Datelike, Timelike};
use promql_parser::parser::{Call, Expr};

use super::PromqlError;
use super::eval::{Evaluator, Points, StepSeries, Val, err};
use super::plan::NodePlan;
use super::{histogram, range_functions};
use crate::model::labels::{Labels, METRIC_NAME};
use crate::store::{Sample, matcher::anchored_regex};

/// Go's `math.Max`: NaN wins over everything but +Inf.
pub(crate) fn go_max(a: f64, b: f64) -> f64 {
    if a == f64::INFINITY || b == f64::INFINITY {
        f64::INFINITY
    } else if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { b } else { a }
    } else if a > b {
        a
    } else {
        b
    }
}

/// Go's `math.Min`: NaN wins over everything but -Inf.
pub(crate) fn go_min(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY || b == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { a } else { b }
    } else if a < b {
        a
    } else {
        b
    }
}

/// A float as Go's `strconv.FormatFloat(f, 'f', -1, 64)` writes it.
pub(crate) fn format_go_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{f}")
    }
}

/// Prometheus's `quantile`: linear interpolation between the closest ranks, NaN sorted first.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).expect("not NaN"),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

fn unwrap_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unwrap_parens(&p.expr),
        e => e,
    }
}

/// Maps every point of every series; the result drops `__name__`.
fn map_points(mut v: Vec<StepSeries>, f: impl Fn(f64) -> f64) -> Val {
    for s in &mut v {
        s.drop_name = true;
        for p in &mut s.points {
            p.f = f(p.f);
        }
    }
    Val::Vector(v)
}

/// Like [`map_points`], with the step index of each point for per-step parameters.
fn map_points_at(
    ev: &Evaluator<'_>,
    mut v: Vec<StepSeries>,
    f: impl Fn(usize, f64) -> Option<f64>,
) -> Val {
    for s in &mut v {
        s.drop_name = true;
        s.points.retain_mut(|p| match f(ev.step_of(p.t), p.f) {
            Some(x) => {
                p.f = x;
                true
            }
            None => false,
        });
    }
    v.retain(|s| !s.points.is_empty());
    Val::Vector(v)
}

fn math_fn(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sgn" => |v: f64| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        "acos" => f64::acos,
        "acosh" => f64::acosh,
        "asin" => f64::asin,
        "asinh" => f64::asinh,
        "atan" => f64::atan,
        "atanh" => f64::atanh,
        "cos" => f64::cos,
        "cosh" => f64::cosh,
        "sin" => f64::sin,
        "sinh" => f64::sinh,
        "tan" => f64::tan,
        "tanh" => f64::tanh,
        "deg" => |v: f64| v * 180.0 / std::f64::consts::PI,
        "rad" => |v: f64| v * std::f64::consts::PI / 180.0,
        _ => return None,
    })
}

fn date_fn(name: &str) -> Option<fn(DateTime<chrono::Utc>) -> f64> {
    Some(match name {
        "day_of_month" => |d| d.day() as f64,
        "day_of_week" => |d| d.weekday().num_days_from_sunday() as f64,
        "day_of_year" => |d| d.ordinal() as f64,
        "days_in_month" => |d| {
            let (y, m) = (d.year(), d.month());
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            let first_next = chrono::NaiveDate::from_ymd_opt(ny, nm, 1).expect("valid date");
            first_next.pred_opt().expect("valid date").day() as f64
        },
        "hour" => |d| d.hour() as f64,
        "minute" => |d| d.minute() as f64,
        "month" => |d| d.month() as f64,
        "year" => |d| d.year() as f64,
        _ => return None,
    })
}

/// Labels of the series `absent()` reports: the selector's equality matchers, except the name
/// and any label matched more than once or otherwise.
pub(crate) fn absent_labels(e: &Expr) -> Labels {
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::empty(),
    };
    let mut b = Labels::empty().builder();
    let mut has = std::collections::HashSet::new();
    let all = vs
        .matchers
        .matchers
        .iter()
        .chain(vs.matchers.or_matchers.iter().flatten());
    for m in all {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, promql_parser::label::MatchOp::Equal) && !has.contains(&m.name) {
            b.set(&m.name, &m.value);
            has.insert(m.name.clone());
        } else {
            b.del(&m.name);
        }
    }
    b.build()
}

fn string_arg(ev: &Evaluator<'_>, e: &Expr) -> Result<String, PromqlError> {
    match ev.eval(e)? {
        Val::Str(s) => Ok(s),
        other => err(format!("expected string, got {}", other.type_name())),
    }
}

/// Evaluates a function call; `plan`, when the node keeps one, is its plan for instant
/// evaluations.
pub(crate) fn eval_call(
    ev: &Evaluator<'_>,
    c: &Call,
    plan: Option<&Mutex<NodePlan>>,
) -> Result<Val, PromqlError> {
    let name = c.func.name;
    let args: Vec<&Expr> = c.args.args.iter().map(|a| a.as_ref()).collect();
    let n = ev.n_steps();
    if let Some(f) = math_fn(name) {
        let v = ev.eval_vector(args[0])?;
        return Ok(map_points(v, f));
    }
    if let Some(f) = date_fn(name) {
        let v = match args.first() {
            Some(a) => ev.eval_vector(a)?,
            None => vec![StepSeries {
                labels: Labels::empty(),
                points: (0..n)
                    .map(|i| Sample {
                        t: ev.ts(i),
                        f: ev.ts(i) as f64 / 1000.0,
                    })
                    .collect(),
                drop_name: false,
            }],
        };
        return Ok(map_points_at(ev, v, |_, x| {
            if !x.is_finite() {
                return Some(f64::NAN);
            }
            DateTime::from_timestamp(x as i64, 0).map(f)
        }));
    }
    match name {
        "time" => Ok(Val::Scalar(
            (0..n).map(|i| ev.ts(i) as f64 / 1000.0).collect(),
        )),
        "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; n])),
        "vector" => {
            let s = ev.eval_scalar(args[0])?;
            Ok(Val::Vector(vec![StepSeries {
                labels: Labels::empty(),
                points: s
                    .iter()
                    .enumerate()
                    .map(|(i, &f)| Sample { t: ev.ts(i), f })
                    .collect(),
                drop_name: false,
            }]))
        }
        "scalar" => {
            let v = ev.eval_vector(args[0])?;
            let mut out = vec![f64::NAN; n];
            let mut counts = vec![0usize; n];
            for s in &v {
                for p in &s.points {
                    let i = ev.step_of(p.t);
                    counts[i] += 1;
                    out[i] = p.f;
                }
            }
            for (o, c) in out.iter_mut().zip(counts) {
                if c != 1 {
                    *o = f64::NAN;
                }
            }
            Ok(Val::Scalar(out))
        }
        "round" => {
            let v = ev.eval_vector(args[0])?;
            let to = match args.get(1) {
                Some(a) => ev.eval_scalar(a)?,
                None => vec![1.0; n],
            };
            Ok(map_points_at(ev, v, |i, x| {
                let inv = 1.0 / to[i];
                Some((x * inv + 0.5).floor() / inv)
            }))
        }
        "clamp" => {
            let v = ev.eval_vector(args[0])?;
            let lo = ev.eval_scalar(args[1])?;
            let hi = ev.eval_scalar(args[2])?;
            Ok(map_points_at(ev, v, |i, x| {
                if hi[i] < lo[i] {
                    None
                } else {
                    Some(go_max(lo[i], go_min(hi[i], x)))
                }
            }))
        }
        "clamp_min" => {
            let v = ev.eval_vector(args[0])?;
            let lo = ev.eval_scalar(args[1])?;
            Ok(map_points_at(ev, v, |i, x| Some(go_max(lo[i], x))))
        }
        "clamp_max" => {
            let v = ev.eval_vector(args[0])?;
            let hi = ev.eval_scalar(args[1])?;
            Ok(map_points_at(ev, v, |i, x| Some(go_min(hi[i], x))))
        }
        "timestamp" => {
            let mut v = match unwrap_parens(args[0]) {
                Expr::VectorSelector(vs) => ev.select_vector(vs, true)?,
                other => {
                    let mut v = ev.eval_vector(other)?;
                    for s in &mut v {
                        for p in &mut s.points {
                            p.f = p.t as f64 / 1000.0;
                        }
                    }
                    v
                }
            };
            for s in &mut v {
                s.drop_name = true;
            }
            Ok(Val::Vector(v))
        }
        "absent" => {
            let v = ev.eval_vector(args[0])?;
            let mut present = vec![false; n];
            for s in &v {
                for p in &s.points {
                    present[ev.step_of(p.t)] = true;
                }
            }
            Ok(Val::Vector(absent_series(ev, &present, args[0])))
        }
        "sort" | "sort_desc" => {
            if ev.range_query {
                ev.warn("sort is ineffective for range queries since results are always ordered by labels".into());
            }
            let mut v = ev.eval_vector(args[0])?;
            if n == 1 {
                let desc = name == "sort_desc";
                v.sort_by(|a, b| {
                    let (x, y) = (a.points[0].f, b.points[0].f);
                    match (x.is_nan(), y.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ if desc => y.partial_cmp(&x).expect("not NaN"),
                        _ => x.partial_cmp(&y).expect("not NaN"),
                    }
                });
            }
            Ok(Val::Vector(v))
        }
        "label_replace" => {
            let v = ev.eval_vector(args[0])?;
            let dst = string_arg(ev, args[1])?;
            let repl = string_arg(ev, args[2])?;
            let src = string_arg(ev, args[3])?;
            let re_src = string_arg(ev, args[4])?;
            let re = anchored_regex(&re_src).map_err(|e| {
                PromqlError::Execution(format!(
                    "invalid regular expression in label_replace(): {}",
                    e.message
                ))
            })?;
            if dst.is_empty() {
                return err(format!(
                    "invalid destination label name in label_replace(): {dst}"
                ));
            }
            let mut out = Vec::with_capacity(v.len());
            for mut s in v {
                let value = s.labels.get_or_empty(&src).to_string();
                if let Some(caps) = re.captures(&value) {
                    let mut res = String::new();
                    caps.expand(&repl, &mut res);
                    let mut b = s.labels.builder();
                    b.set(&dst, &res);
                    s.labels = b.build();
                    if dst == METRIC_NAME {
                        s.drop_name = false;
                    }
                }
                out.push(s);
            }
            relabelled(ev, out)
        }
        "label_join" => {
            let v = ev.eval_vector(args[0])?;
            let dst = string_arg(ev, args[1])?;
            let sep = string_arg(ev, args[2])?;
            let mut srcs = Vec::new();
            for a in &args[3..] {
                srcs.push(string_arg(ev, a)?);
            }
            if dst.is_empty() {
                return err(format!(
                    "invalid destination label name in label_join(): {dst}"
                ));
            }
            let mut out = Vec::with_capacity(v.len());
            for mut s in v {
                let joined: Vec<&str> = srcs.iter().map(|n| s.labels.get_or_empty(n)).collect();
                let joined = joined.join(&sep);
                let mut b = s.labels.builder();
                b.set(&dst, &joined);
                s.labels = b.build();
                if dst == METRIC_NAME {
                    s.drop_name = false;
                }
                out.push(s);
            }
            relabelled(ev, out)
        }
        "histogram_quantile" => histogram::histogram_quantile(ev, &args, plan),
        "histogram_fraction" => histogram::histogram_fraction(ev, &args),
        _ => range_functions::eval_range_function(ev, name, &args),
    }
}

/// Series whose labels a function rewrote: merged by label set, duplicates at one step refused.
fn relabelled(ev: &Evaluator<'_>, v: Vec<StepSeries>) -> Result<Val, PromqlError> {
    Ok(Val::Vector(ev.join_steps(ev.split_steps(v))?))
}

/// The series `absent()`/`absent_over_time()` return: value 1 at the steps where nothing was
/// present.
pub(crate) fn absent_series(ev: &Evaluator<'_>, present: &[bool], arg: &Expr) -> Vec<StepSeries> {
    let points: Points = present
        .iter()
        .enumerate()
        .filter(|(_, p)| !**p)
        .map(|(i, _)| Sample {
            t: ev.ts(i),
            f: 1.0,
        })
        .collect();
    if points.is_empty() {
        return Vec::new();
    }
    vec![StepSeries {
        labels: absent_labels(arg),
        points,
        drop_name: false,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_semantics() {
        assert!(go_max(f64::NAN, 1.0).is_nan());
        assert_eq!(go_max(f64::NAN, f64::INFINITY), f64::INFINITY);
        assert_eq!(go_min(f64::NAN, f64::NEG_INFINITY), f64::NEG_INFINITY);
        assert_eq!(format_go_float(1e21), "1000000000000000000000");
        assert_eq!(format_go_float(f64::INFINITY), "+Inf");
        assert_eq!(quantile(0.5, &mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(quantile(0.25, &mut [4.0, 1.0]), 1.75);
    }
}
