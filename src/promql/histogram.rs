//! Classic histograms: `histogram_quantile` and `histogram_fraction` over `le` buckets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use promql_parser::parser::Expr;

use super::PromqlError;
use super::eval::{Evaluator, VSample, Val};
use super::functions::format_go_float;
use super::plan::{Inputs, NodePlan};
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

/// Which histogram and bucket each series of a `histogram_quantile` input is (see
/// [`super::plan`]).
#[derive(Debug, Default)]
pub(crate) struct BucketPlan {
    pub(super) inputs: Inputs,
    /// Per input series: its histogram and its bucket's upper bound; `None` when its `le` is
    /// missing or malformed.
    place: Vec<Option<(u32, f64)>>,
    /// Each histogram's labels (without `le` and the name), its metric name and its number of
    /// buckets, in the order of their first series.
    groups: Vec<(Labels, Arc<str>, usize)>,
}

impl BucketPlan {
    /// The histograms of `vec`, its label sets kept for the next evaluation when `keep`.
    fn build(vec: &[VSample], keep: bool) -> BucketPlan {
        let mut plan = BucketPlan {
            inputs: if keep {
                Inputs::of(vec)
            } else {
                Inputs::default()
            },
            place: Vec::with_capacity(vec.len()),
            groups: Vec::new(),
        };
        let mut index: HashMap<u64, u32, FxBuildHasher> = HashMap::default();
        for s in vec {
            let Ok(upper) = s.labels.get_or_empty("le").trim().parse::<f64>() else {
                plan.place.push(None);
                continue;
            };
            let key = s.labels.hash_excluding(&["le"]);
            let gi = *index.entry(key).or_insert_with(|| {
                plan.groups.push((
                    s.labels.drop_names(&["le", METRIC_NAME]),
                    s.labels.get_or_empty(METRIC_NAME).into(),
                    0,
                ));
                (plan.groups.len() - 1) as u32
            });
            plan.groups[gi as usize].2 += 1;
            plan.place.push(Some((gi, upper)));
        }
        plan
    }
}

/// Groups one step's bucket series by their labels without `le` (the name still counts, as in
/// Prometheus): each histogram's labels, metric name and buckets. Warns about series whose `le`
/// is missing or malformed.
fn group_buckets(
    ev: &Evaluator<'_>,
    vec: Vec<VSample>,
    plan: Option<&mut BucketPlan>,
) -> Vec<(Labels, Arc<str>, Vec<Bucket>)> {
    let fresh;
    let plan: &BucketPlan = match plan {
        Some(p) if p.inputs.fit(&vec) => p,
        Some(p) => {
            *p = BucketPlan::build(&vec, true);
            p
        }
        None => {
            fresh = BucketPlan::build(&vec, false);
            &fresh
        }
    };
    let mut groups: Vec<(Labels, Arc<str>, Vec<Bucket>)> = plan
        .groups
        .iter()
        .map(|(labels, name, n)| (labels.clone(), name.clone(), Vec::with_capacity(*n)))
        .collect();
    for (s, place) in vec.iter().zip(&plan.place) {
        match *place {
            Some((gi, upper)) => groups[gi as usize].2.push(Bucket { upper, count: s.f }),
            None => ev.warn(format!(
                "bucket label \"le\" is missing or has a malformed value of {:?} for metric name {:?}",
                s.labels.get_or_empty("le"),
                s.labels.get_or_empty(METRIC_NAME)
            )),
        }
    }
    groups
}

/// `histogram_quantile`; `plan`, when the node keeps one, is its plan for instant evaluations.
pub(crate) fn histogram_quantile(
    ev: &Evaluator<'_>,
    args: &[&Expr],
    plan: Option<&Mutex<NodePlan>>,
) -> Result<Val, PromqlError> {
    let q = ev.eval_scalar(args[0])?;
    let v = ev.eval_vector_in(args[1])?;
    let steps = ev.split_steps_in(v);
    // A plan is for one step's series; a range query's steps each have their own.
    let mut plan = plan
        .filter(|_| steps.len() == 1)
        .and_then(|p| p.try_lock().ok());
    let mut out = Vec::new();
    for (i, vec) in steps.into_iter().enumerate() {
        if !(0.0..=1.0).contains(&q[i]) {
            ev.warn(format!(
                "quantile value should be between 0 and 1, got {}",
                format_go_float(q[i])
            ));
        }
        let mut step = Vec::new();
        // The note names the metric: each name is noted once, not once per histogram.
        let mut noted: Vec<Arc<str>> = Vec::new();
        let plan = plan.as_deref_mut().map(|p| &mut p.buckets);
        for (labels, name, buckets) in group_buckets(ev, vec, plan) {
            let (f, forced) = bucket_quantile(q[i], buckets);
            if forced && !noted.contains(&name) {
                ev.info(format!("input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {name:?}"));
                noted.push(name);
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
        let step = group_buckets(ev, vec, None)
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
