//! Classic histograms: `histogram_quantile` and `histogram_fraction` over `le` buckets.

use std::collections::HashMap;

use promql_parser::parser::Expr;

use super::PromqlError;
use super::eval::{Evaluator, VSample, Val};
use super::functions::format_go_float;
use crate::model::labels::{FxBuildHasher, Labels, METRIC_NAME};

/// One cumulative bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    upper: f64,
    count: f64,
}

/// Whether two floats are equal within a relative tolerance (Go's `almost.Equal`).
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// Sorts, checks for a +Inf bucket, merges equal bounds. `None` when there is no +Inf bucket.
fn prepare(mut buckets: Vec<Bucket>) -> Option<Vec<Bucket>> {
    buckets.sort_by(|a, b| {
        a.upper
            .partial_cmp(&b.upper)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if buckets.last().is_none_or(|b| b.upper != f64::INFINITY) {
        return None;
    }
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match out.last_mut() {
            Some(last) if last.upper == b.upper => last.count += b.count,
            _ => out.push(b),
        }
    }
    Some(out)
}

/// Forces counts to be monotonic, ignoring tiny differences; true when a decrease was removed.
fn ensure_monotonic(buckets: &mut [Bucket]) -> bool {
    let mut forced = false;
    let mut prev = buckets[0].count;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.count;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, 1e-12) {
            b.count = prev;
            continue;
        }
        if curr < prev {
            b.count = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    forced
}

/// Prometheus's `BucketQuantile`: the value and whether monotonicity had to be forced.
fn bucket_quantile(q: f64, buckets: Vec<Bucket>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    let Some(mut buckets) = prepare(buckets) else {
        return (f64::NAN, false);
    };
    let forced = ensure_monotonic(&mut buckets);
    if buckets.len() < 2 {
        return (f64::NAN, forced);
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let b = buckets[..buckets.len() - 1].partition_point(|b| b.count < rank);
    if b == buckets.len() - 1 {
        return (buckets[buckets.len() - 2].upper, forced);
    }
    if b == 0 && buckets[0].upper <= 0.0 {
        return (buckets[0].upper, forced);
    }
    let mut start = 0.0;
    let end = buckets[b].upper;
    let mut count = buckets[b].count;
    if b > 0 {
        start = buckets[b - 1].upper;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    (start + (end - start) * (rank / count), forced)
}

/// Prometheus's `BucketFraction` for classic buckets.
fn bucket_fraction(lower: f64, upper: f64, buckets: Vec<Bucket>) -> f64 {
    let Some(buckets) = prepare(buckets) else {
        return f64::NAN;
    };
    let count = buckets[buckets.len() - 1].count;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, b) in buckets.iter().enumerate() {
        let lower_bound = if i > 0 {
            buckets[i - 1].upper
        } else if b.upper > 0.0 {
            0.0
        } else {
            f64::NEG_INFINITY
        };
        let upper_bound = b.upper;
        let interpolate = |v: f64| {
            // Nothing is known about where in an open-ended bucket observations fall:
            // the +Inf bucket counts at its lower edge, a bucket from -Inf at its upper edge.
            if upper_bound == f64::INFINITY {
                return rank;
            }
            if lower_bound == f64::NEG_INFINITY {
                return b.count;
            }
            rank + (b.count - rank) * (v - lower_bound) / (upper_bound - lower_bound)
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = b.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

/// Groups one step's bucket series by their labels without `le` (the name still counts, as in
/// Prometheus); warns about series whose `le` is missing or malformed.
fn group_buckets(ev: &Evaluator<'_>, vec: Vec<VSample>) -> Vec<(Labels, String, Vec<Bucket>)> {
    let mut groups: Vec<(Labels, String, Vec<Bucket>)> = Vec::new();
    let mut index: HashMap<u64, usize, FxBuildHasher> = HashMap::default();
    for s in vec {
        let le = s.labels.get_or_empty("le");
        let Ok(upper) = le.trim().parse::<f64>() else {
            ev.warn(format!(
                "bucket label \"le\" is missing or has a malformed value of {:?} for metric name {:?}",
                le,
                s.labels.get_or_empty(METRIC_NAME)
            ));
            continue;
        };
        let key = s.labels.hash_excluding(&["le"]);
        let gi = *index.entry(key).or_insert_with(|| {
            groups.push((
                s.labels.drop_names(&["le", METRIC_NAME]),
                s.labels.get_or_empty(METRIC_NAME).to_string(),
                Vec::new(),
            ));
            groups.len() - 1
        });
        groups[gi].2.push(Bucket { upper, count: s.f });
    }
    groups
}

pub(crate) fn histogram_quantile(ev: &Evaluator<'_>, args: &[&Expr]) -> Result<Val, PromqlError> {
    let q = ev.eval_scalar(args[0])?;
    let v = ev.eval_vector_in(args[1])?;
    let mut out = Vec::new();
    for (i, vec) in ev.split_steps_in(v).into_iter().enumerate() {
        if !(0.0..=1.0).contains(&q[i]) {
            ev.warn(format!(
                "quantile value should be between 0 and 1, got {}",
                format_go_float(q[i])
            ));
        }
        let mut step = Vec::new();
        for (labels, name, buckets) in group_buckets(ev, vec) {
            let (f, forced) = bucket_quantile(q[i], buckets);
            if forced {
                ev.info(format!("input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {name:?}"));
            }
            step.push(VSample {
                labels,
                f,
                drop_name: false,
            });
        }
        out.push(step);
    }
    Ok(Val::Vector(ev.join_steps(out)?))
}

pub(crate) fn histogram_fraction(ev: &Evaluator<'_>, args: &[&Expr]) -> Result<Val, PromqlError> {
    let lo = ev.eval_scalar(args[0])?;
    let hi = ev.eval_scalar(args[1])?;
    let v = ev.eval_vector(args[2])?;
    let mut out = Vec::new();
    for (i, vec) in ev.split_steps(v).into_iter().enumerate() {
        let step = group_buckets(ev, vec)
            .into_iter()
            .map(|(labels, _, buckets)| VSample {
                labels,
                f: bucket_fraction(lo[i], hi[i], buckets),
                drop_name: false,
            })
            .collect();
        out.push(step);
    }
    Ok(Val::Vector(ev.join_steps(out)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(pairs: &[(f64, f64)]) -> Vec<Bucket> {
        pairs
            .iter()
            .map(|&(upper, count)| Bucket { upper, count })
            .collect()
    }

    #[test]
    fn quantiles() {
        let h = b(&[(0.1, 10.0), (0.2, 20.0), (f64::INFINITY, 20.0)]);
        assert_eq!(bucket_quantile(0.5, h.clone()).0, 0.1);
        assert!((bucket_quantile(0.75, h.clone()).0 - 0.15).abs() < 1e-12);
        assert_eq!(bucket_quantile(1.0, h.clone()).0, 0.2);
        assert!(bucket_quantile(0.5, b(&[(1.0, 1.0)])).0.is_nan());
        assert!(bucket_quantile(0.5, b(&[(1.0, 5.0), (f64::INFINITY, 3.0)])).1);
    }
}
