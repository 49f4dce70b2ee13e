//! Functions over range vectors: the rate family (`rate irate increase delta idelta deriv
//! predict_linear resets changes`), the `*_over_time` functions and `absent_over_time`, with
//! Prometheus's extrapolation and order of floating-point operations.

use promql_parser::parser::Expr;

use super::PromqlError;
use super::aggregate::kahan_sum_inc;
use super::eval::{Evaluator, Points, StepSeries, Val, err, push_expected, window};
use super::functions::{absent_series, format_go_float, quantile};
use crate::model::labels::Labels;
use crate::store::{Sample, SeriesFacts};

/// `rate`, `increase` and `delta`: the change over the window, extrapolated towards its edges.
fn extrapolated_rate(
    w: &[Sample],
    facts: SeriesFacts,
    range_start: i64,
    range_end: i64,
    range: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let n_minus_one = (w.len() - 1) as f64;
    let first = w[0];
    let last = w[w.len() - 1];
    let mut result = last.f - first.f;
    if is_counter && facts.may_drop_after(first.t) {
        let mut prev = first.f;
        for p in &w[1..] {
            if p.f < prev {
                result += prev;
            }
            prev = p.f;
        }
    }
    let mut to_start = (first.t - range_start) as f64 / 1000.0;
    let mut to_end = (range_end - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg = sampled / n_minus_one;
    let threshold = avg * 1.1;
    let mut extrapolate_to = sampled;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if is_counter {
        let mut to_zero = to_start;
        if result > 0.0 && first.f >= 0.0 {
            to_zero = sampled * (first.f / result);
        }
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    extrapolate_to += to_start;
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    extrapolate_to += to_end;
    let mut factor = extrapolate_to / sampled;
    if is_rate {
        factor /= range as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` and `idelta`: from the last two samples.
fn instant_value(w: &[Sample], is_rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let last = w[w.len() - 1];
    let prev = w[w.len() - 2];
    let mut v = if is_rate && last.f < prev.f {
        last.f
    } else {
        last.f - prev.f
    };
    let dt = last.t - prev.t;
    if dt == 0 {
        return None;
    }
    if is_rate {
        v /= dt as f64 / 1000.0;
    }
    Some(v)
}

/// The sums over a window's x values (seconds relative to the intercept's time) that a
/// regression needs, Kahan-compensated: `(sum_x, c_x, sum_x2, c_x2)`. They depend only on the
/// window's times, and series scraped together have the same times: the sums of the last
/// window are kept and reused while the times are the same.
#[derive(Default)]
struct XSums {
    times: Vec<i64>,
    intercept_t: i64,
    sums: (f64, f64, f64, f64),
}

impl XSums {
    fn of(&mut self, w: &[Sample], intercept_t: i64) -> (f64, f64, f64, f64) {
        let same = self.intercept_t == intercept_t
            && self.times.len() == w.len()
            && self.times.iter().zip(w).all(|(&t, s)| t == s.t);
        if !same {
            let (mut sum_x, mut c_x, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
            for s in w {
                let x = (s.t - intercept_t) as f64 / 1e3;
                (sum_x, c_x) = kahan_sum_inc(x, sum_x, c_x);
                (sum_x2, c_x2) = kahan_sum_inc(x * x, sum_x2, c_x2);
            }
            self.times.clear();
            self.times.extend(w.iter().map(|s| s.t));
            self.intercept_t = intercept_t;
            self.sums = (sum_x, c_x, sum_x2, c_x2);
        }
        self.sums
    }
}

/// Least-squares fit with x in seconds relative to `intercept_t`: (slope, intercept). Each sum
/// takes its terms in the window's order, as Prometheus's loop does.
fn linear_regression(w: &[Sample], intercept_t: i64, xs: &mut XSums) -> (f64, f64) {
    let (mut n, mut sum_y, mut c_y) = (0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy) = (0.0, 0.0);
    let init_y = w[0].f;
    let mut const_y = true;
    for (i, s) in w.iter().enumerate() {
        if const_y && i > 0 && s.f != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (s.t - intercept_t) as f64 / 1e3;
        (sum_y, c_y) = kahan_sum_inc(s.f, sum_y, c_y);
        (sum_xy, c_xy) = kahan_sum_inc(x * s.f, sum_xy, c_xy);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (mut sum_x, c_x, mut sum_x2, c_x2) = xs.of(w, intercept_t);
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

fn avg_over_time(w: &[Sample]) -> f64 {
    let (mut sum, mut count) = (w[0].f, 1.0);
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for (i, s) in w[1..].iter().enumerate() {
        count = (i + 2) as f64;
        if !incremental {
            let (ns, nc) = kahan_sum_inc(s.f, sum, c);
            if !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_sum_inc(s.f / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

fn variance_over_time(w: &[Sample]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for s in w {
        count += 1.0;
        let delta = s.f - (mean + c_mean);
        (mean, c_mean) = kahan_sum_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_sum_inc(delta * (s.f - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// A range function, resolved from its name once per call rather than per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeFn {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Deriv,
    PredictLinear,
    Resets,
    Changes,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    SumOverTime,
    CountOverTime,
    StddevOverTime,
    StdvarOverTime,
    LastOverTime,
    FirstOverTime,
    PresentOverTime,
    QuantileOverTime,
}

impl RangeFn {
    fn from_name(name: &str) -> Option<RangeFn> {
        Some(match name {
            "rate" => RangeFn::Rate,
            "increase" => RangeFn::Increase,
            "delta" => RangeFn::Delta,
            "irate" => RangeFn::Irate,
            "idelta" => RangeFn::Idelta,
            "deriv" => RangeFn::Deriv,
            "predict_linear" => RangeFn::PredictLinear,
            "resets" => RangeFn::Resets,
            "changes" => RangeFn::Changes,
            "avg_over_time" => RangeFn::AvgOverTime,
            "min_over_time" => RangeFn::MinOverTime,
            "max_over_time" => RangeFn::MaxOverTime,
            "sum_over_time" => RangeFn::SumOverTime,
            "count_over_time" => RangeFn::CountOverTime,
            "stddev_over_time" => RangeFn::StddevOverTime,
            "stdvar_over_time" => RangeFn::StdvarOverTime,
            "last_over_time" => RangeFn::LastOverTime,
            "first_over_time" => RangeFn::FirstOverTime,
            "present_over_time" => RangeFn::PresentOverTime,
            "quantile_over_time" => RangeFn::QuantileOverTime,
            _ => return None,
        })
    }
}

/// Which argument holds the range vector, and whether a function is one of ours.
fn range_arg(name: &str) -> Option<usize> {
    Some(match name {
        "quantile_over_time" => 1,
        "rate" | "irate" | "increase" | "delta" | "idelta" | "deriv" | "predict_linear"
        | "resets" | "changes" | "avg_over_time" | "min_over_time" | "max_over_time"
        | "sum_over_time" | "count_over_time" | "stddev_over_time" | "stdvar_over_time"
        | "last_over_time" | "first_over_time" | "present_over_time" | "absent_over_time" => 0,
        _ => return None,
    })
}

pub(crate) fn eval_range_function(
    ev: &Evaluator<'_>,
    name: &str,
    args: &[&Expr],
) -> Result<Val, PromqlError> {
    let Some(ri) = range_arg(name) else {
        return err(format!("function {name}() is not supported"));
    };
    let param = match name {
        "quantile_over_time" => Some(ev.eval_scalar(args[0])?),
        "predict_linear" => Some(ev.eval_scalar(args[1])?),
        _ => None,
    };
    let direct = match args[ri] {
        Expr::MatrixSelector(ms) if name != "absent_over_time" => Some(ms),
        _ => None,
    };
    if name == "absent_over_time" {
        let rv = ev.eval_range(args[ri])?;
        let n = ev.n_steps();
        let mut present = vec![false; n];
        for s in &rv.series {
            for (i, p) in present.iter_mut().enumerate() {
                if !*p && !rv.window(&s.points, i).is_empty() {
                    *p = true;
                }
            }
        }
        return Ok(Val::Vector(absent_series(ev, &present, args[ri])));
    }
    if name == "quantile_over_time"
        && let Some(qs) = &param
    {
        for &q in qs {
            if !(0.0..=1.0).contains(&q) {
                ev.warn(format!(
                    "quantile value should be between 0 and 1, got {}",
                    format_go_float(q)
                ));
                break;
            }
        }
    }
    let counter_check = matches!(name, "rate" | "increase");
    let keep_name = matches!(name, "last_over_time" | "first_over_time");
    let param = param.as_ref();
    let Some(func) = RangeFn::from_name(name) else {
        return err(format!("function {name}() is not supported"));
    };
    let mut out = Vec::new();
    let mut xs = XSums::default();
    if let Some(ms) = direct {
        // Straight from the store, without copying the samples out first.
        let (refs, range) = ev.matrix_refs(ms);
        let expected = std::cell::Cell::new(0);
        ev.visit_range(
            ms,
            &mut |n| expected.set(n),
            &mut |labels, samples, facts| {
                let points = series_points(
                    ev,
                    func,
                    param,
                    counter_check,
                    labels,
                    samples,
                    facts,
                    &refs,
                    range,
                    &mut xs,
                );
                if !points.is_empty() {
                    let s = StepSeries {
                        labels: labels.clone(),
                        points,
                        drop_name: !keep_name,
                    };
                    push_expected(&mut out, &expected, s);
                }
            },
        )?;
        return Ok(Val::Vector(out));
    }
    let rv = ev.eval_range(args[ri])?;
    out.reserve(rv.series.len());
    for s in rv.series.iter() {
        let points = series_points(
            ev,
            func,
            param,
            counter_check,
            &s.labels,
            &s.points,
            SeriesFacts::UNKNOWN,
            &rv.refs,
            rv.range,
            &mut xs,
        );
        if !points.is_empty() {
            out.push(StepSeries {
                labels: s.labels.clone(),
                points,
                drop_name: s.drop_name || !keep_name,
            });
        }
    }
    Ok(Val::Vector(out))
}

/// One series' values at each step of a range function (the steps whose window is empty or
/// where the function has no value are left out).
#[allow(clippy::too_many_arguments)]
fn series_points(
    ev: &Evaluator<'_>,
    func: RangeFn,
    param: Option<&Vec<f64>>,
    counter_check: bool,
    labels: &Labels,
    points: &[Sample],
    facts: SeriesFacts,
    refs: &[i64],
    range: i64,
    xs: &mut XSums,
) -> Points {
    let n = refs.len();
    let non_counter = if counter_check {
        labels.metric_name().filter(|metric| {
            !["_total", "_sum", "_count", "_bucket"]
                .iter()
                .any(|suffix| metric.ends_with(suffix))
        })
    } else {
        None
    };
    let mut out = Points::new();
    for i in 0..n {
        let w = window(points, refs[i] - range, refs[i]);
        if w.is_empty() {
            continue;
        }
        let end = refs[i];
        let start = end - range;
        let v = match func {
            RangeFn::Rate => extrapolated_rate(w, facts, start, end, range, true, true),
            RangeFn::Increase => extrapolated_rate(w, facts, start, end, range, true, false),
            RangeFn::Delta => extrapolated_rate(w, facts, start, end, range, false, false),
            RangeFn::Irate => instant_value(w, true),
            RangeFn::Idelta => instant_value(w, false),
            RangeFn::Deriv => (w.len() >= 2).then(|| linear_regression(w, w[0].t, xs).0),
            RangeFn::PredictLinear => (w.len() >= 2).then(|| {
                let (slope, intercept) = linear_regression(w, ev.ts(i), xs);
                let d = param.map(|p| p[i]).unwrap_or(0.0);
                slope * d + intercept
            }),
            RangeFn::Resets if !facts.may_drop_after(w[0].t) => Some(0.0),
            RangeFn::Resets => Some(w.windows(2).filter(|p| p[1].f < p[0].f).count() as f64),
            RangeFn::Changes => Some(
                w.windows(2)
                    .filter(|p| !(p[1].f == p[0].f || (p[1].f.is_nan() && p[0].f.is_nan())))
                    .count() as f64,
            ),
            RangeFn::AvgOverTime => Some(avg_over_time(w)),
            RangeFn::MinOverTime => Some(
                w.iter()
                    .fold(w[0].f, |m, s| if s.f < m || m.is_nan() { s.f } else { m }),
            ),
            RangeFn::MaxOverTime => Some(
                w.iter()
                    .fold(w[0].f, |m, s| if s.f > m || m.is_nan() { s.f } else { m }),
            ),
            RangeFn::SumOverTime => {
                let (mut sum, mut c) = (0.0, 0.0);
                for s in w {
                    (sum, c) = kahan_sum_inc(s.f, sum, c);
                }
                Some(if sum.is_infinite() { sum } else { sum + c })
            }
            RangeFn::CountOverTime => Some(w.len() as f64),
            RangeFn::StddevOverTime => Some(variance_over_time(w).sqrt()),
            RangeFn::StdvarOverTime => Some(variance_over_time(w)),
            RangeFn::LastOverTime => Some(w[w.len() - 1].f),
            RangeFn::FirstOverTime => Some(w[0].f),
            RangeFn::PresentOverTime => Some(1.0),
            RangeFn::QuantileOverTime => {
                let q = param.map(|p| p[i]).unwrap_or(f64::NAN);
                let mut vals: Vec<f64> = w.iter().map(|s| s.f).collect();
                Some(quantile(q, &mut vals))
            }
        };
        if let Some(metric) = non_counter {
            ev.info(format!(
                "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {metric:?}"
            ));
        }
        if let Some(f) = v {
            out.push(Sample { t: ev.ts(i), f });
        }
    }
    out
}
