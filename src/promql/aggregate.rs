//! Aggregation operators: `sum avg min max count group stddev stdvar topk bottomk quantile
//! count_values`, with `by` and `without`, in Prometheus's order of floating-point operations.

use std::collections::HashMap;
use std::sync::Mutex;

use promql_parser::parser::{AggregateExpr, LabelModifier};

use super::PromqlError;
use super::eval::{Evaluator, VSample, Val, err};
use super::functions::{format_go_float, quantile};
use super::plan::{Inputs, NodePlan};
use crate::model::labels::{FxBuildHasher, Labels, METRIC_NAME, NameFilter, NameSet};

/// Kahan-Neumaier summation step, as Prometheus's `kahanSumInc`.
pub(crate) fn kahan_sum_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Quantile,
    CountValues,
}

/// One group's running state.
struct Group {
    labels: Labels,
    /// Whether a member has been added (the first one sets the starting values).
    started: bool,
    value: f64,
    kahan_c: f64,
    mean: f64,
    count: f64,
    incremental_mean: bool,
    drop_name: bool,
    members: Vec<f64>,
}

impl Group {
    fn new(labels: Labels) -> Group {
        Group {
            labels,
            started: false,
            value: 0.0,
            kahan_c: 0.0,
            mean: 0.0,
            count: 0.0,
            incremental_mean: false,
            drop_name: false,
            members: Vec::new(),
        }
    }
}

/// Which group each series of an aggregation's input falls in (see [`super::plan`]).
#[derive(Debug, Default)]
pub(crate) struct GroupPlan {
    pub(super) inputs: Inputs,
    /// The group of each input series.
    group_of: Vec<u32>,
    /// Each group's labels, in the order of their first series.
    groups: Vec<Labels>,
}

impl GroupPlan {
    /// The groups of `vec`, its label sets kept for the next evaluation when `keep`.
    fn build(vec: &[VSample], grouping: &Grouping, keep: bool) -> GroupPlan {
        let mut plan = GroupPlan {
            inputs: if keep {
                Inputs::of(vec)
            } else {
                Inputs::default()
            },
            group_of: Vec::with_capacity(vec.len()),
            groups: Vec::new(),
        };
        let mut index: HashMap<u64, u32, FxBuildHasher> = HashMap::default();
        for s in vec {
            let key = grouping.key(&s.labels);
            let gi = *index.entry(key).or_insert_with(|| {
                plan.groups.push(grouping.labels(&s.labels));
                (plan.groups.len() - 1) as u32
            });
            plan.group_of.push(gi);
        }
        plan
    }
}

/// How grouping labels are chosen.
struct Grouping {
    without: bool,
    names: NameSet,
    /// `by` with no label or no modifier at all: a single group.
    all: bool,
}

impl Grouping {
    fn key(&self, l: &Labels) -> u64 {
        if self.all {
            0
        } else if self.without {
            l.hash_without(&self.names)
        } else {
            l.hash_for(&self.names)
        }
    }

    fn labels(&self, l: &Labels) -> Labels {
        if self.all {
            Labels::empty()
        } else if self.without {
            l.without_metric_name().drop_names(&self.names)
        } else {
            l.keep(&self.names)
        }
    }
}

/// Evaluates an aggregation; `plan`, when the node keeps one, is its plan for instant
/// evaluations.
pub(crate) fn eval_aggregate(
    ev: &Evaluator<'_>,
    a: &AggregateExpr,
    plan: Option<&Mutex<NodePlan>>,
) -> Result<Val, PromqlError> {
    let name = a.op.to_string();
    let op = match name.as_str() {
        "sum" => AggOp::Sum,
        "avg" => AggOp::Avg,
        "min" => AggOp::Min,
        "max" => AggOp::Max,
        "count" => AggOp::Count,
        "group" => AggOp::Group,
        "stddev" => AggOp::Stddev,
        "stdvar" => AggOp::Stdvar,
        "topk" => AggOp::Topk,
        "bottomk" => AggOp::Bottomk,
        "quantile" => AggOp::Quantile,
        "count_values" => AggOp::CountValues,
        other => return err(format!("aggregation {other} is not supported")),
    };
    let (without, mut names) = match &a.modifier {
        Some(LabelModifier::Include(l)) => (false, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (true, l.labels.clone()),
        None => (false, Vec::new()),
    };
    let mut value_label = None;
    let mut params: Option<Vec<f64>> = None;
    match (op, a.param.as_deref()) {
        (AggOp::CountValues, Some(p)) => {
            let Val::Str(s) = ev.eval(p)? else {
                return err("count_values needs a string parameter");
            };
            if s.is_empty() {
                return err(format!("invalid label name {s:?}"));
            }
            if !without {
                names.push(s.clone());
            }
            value_label = Some(s);
        }
        (AggOp::Topk | AggOp::Bottomk | AggOp::Quantile, Some(p)) => {
            params = Some(ev.eval_scalar(p)?);
        }
        _ => {}
    }
    let grouping = Grouping {
        all: !without && names.is_empty(),
        without,
        names: NameSet::new(names),
    };
    let input = ev.eval_vector_in(&a.expr)?;
    let steps = ev.split_steps_in(input);
    // A plan is for one step's series; a range query's steps each have their own.
    let mut plan = plan
        .filter(|_| steps.len() == 1)
        .and_then(|p| p.try_lock().ok());
    let mut out = Vec::with_capacity(steps.len());
    for (i, vec) in steps.into_iter().enumerate() {
        ev.deadline.step(vec.len())?;
        let param = params.as_ref().map(|p| p[i]);
        out.push(match op {
            AggOp::Topk | AggOp::Bottomk => {
                let k = param.unwrap_or(f64::NAN);
                if k.is_nan() {
                    return err("Parameter value is NaN");
                }
                top_k(vec, &grouping, k, op == AggOp::Topk)
            }
            AggOp::CountValues => {
                count_values(vec, &grouping, value_label.as_deref().unwrap_or_default())
            }
            _ => aggregate(
                ev,
                op,
                vec,
                &grouping,
                param,
                plan.as_deref_mut().map(|p| &mut p.groups),
            ),
        });
    }
    Ok(Val::Vector(ev.join_distinct_steps(out)?))
}

fn aggregate(
    ev: &Evaluator<'_>,
    op: AggOp,
    vec: Vec<VSample>,
    grouping: &Grouping,
    param: Option<f64>,
    plan: Option<&mut GroupPlan>,
) -> Vec<VSample> {
    if op == AggOp::Quantile {
        let q = param.unwrap_or(f64::NAN);
        if !(0.0..=1.0).contains(&q) && !vec.is_empty() {
            ev.warn(format!(
                "quantile value should be between 0 and 1, got {}",
                format_go_float(q)
            ));
        }
    }
    let by_name = grouping.all || grouping.without || !grouping.names.contains(METRIC_NAME);
    let fresh;
    let plan: &GroupPlan = match plan {
        Some(p) if p.inputs.fit(&vec) => p,
        Some(p) => {
            *p = GroupPlan::build(&vec, grouping, true);
            p
        }
        None => {
            fresh = GroupPlan::build(&vec, grouping, false);
            &fresh
        }
    };
    let mut order: Vec<Group> = plan.groups.iter().cloned().map(Group::new).collect();
    for (s, &gi) in vec.iter().zip(&plan.group_of) {
        let g = &mut order[gi as usize];
        let f = s.f;
        if !g.started {
            g.started = true;
            (g.value, g.mean) = match op {
                AggOp::Stddev | AggOp::Stdvar if !f.is_finite() => (f64::NAN, f),
                AggOp::Stddev | AggOp::Stdvar => (0.0, f),
                AggOp::Group => (1.0, f),
                _ => (f, f),
            };
            g.count = 1.0;
            g.drop_name = !by_name && s.drop_name;
            if op == AggOp::Quantile {
                g.members.push(f);
            }
            continue;
        }
        if !by_name {
            g.drop_name |= s.drop_name;
        }
        match op {
            AggOp::Sum => (g.value, g.kahan_c) = kahan_sum_inc(f, g.value, g.kahan_c),
            AggOp::Avg => {
                g.count += 1.0;
                if !g.incremental_mean {
                    let (nv, nc) = kahan_sum_inc(f, g.value, g.kahan_c);
                    if !nv.is_infinite() {
                        g.value = nv;
                        g.kahan_c = nc;
                        continue;
                    }
                    g.incremental_mean = true;
                    g.mean = g.value / (g.count - 1.0);
                    g.kahan_c /= g.count - 1.0;
                }
                let q = (g.count - 1.0) / g.count;
                (g.mean, g.kahan_c) = kahan_sum_inc(f / g.count, q * g.mean, q * g.kahan_c);
            }
            AggOp::Max => {
                if g.value < f || g.value.is_nan() {
                    g.value = f;
                }
            }
            AggOp::Min => {
                if g.value > f || g.value.is_nan() {
                    g.value = f;
                }
            }
            AggOp::Count => g.count += 1.0,
            AggOp::Group => {}
            AggOp::Stddev | AggOp::Stdvar => {
                g.count += 1.0;
                let delta = f - g.mean;
                g.mean += delta / g.count;
                g.value += delta * (f - g.mean);
            }
            AggOp::Quantile => g.members.push(f),
            AggOp::Topk | AggOp::Bottomk | AggOp::CountValues => {}
        }
    }
    order
        .into_iter()
        .map(|mut g| {
            let f = match op {
                AggOp::Sum => {
                    if g.value.is_infinite() {
                        g.value
                    } else {
                        g.value + g.kahan_c
                    }
                }
                AggOp::Avg => {
                    if g.incremental_mean {
                        g.mean + g.kahan_c
                    } else {
                        g.value / g.count + g.kahan_c / g.count
                    }
                }
                AggOp::Count => g.count,
                AggOp::Stdvar => g.value / g.count,
                AggOp::Stddev => (g.value / g.count).sqrt(),
                AggOp::Quantile => quantile(param.unwrap_or(f64::NAN), &mut g.members),
                _ => g.value,
            };
            VSample {
                labels: g.labels,
                f,
                drop_name: g.drop_name,
            }
        })
        .collect()
}

fn top_k(vec: Vec<VSample>, grouping: &Grouping, k: f64, top: bool) -> Vec<VSample> {
    if k < 1.0 {
        return Vec::new();
    }
    let k = if k >= usize::MAX as f64 {
        usize::MAX
    } else {
        k as usize
    };
    let mut groups: Vec<Vec<VSample>> = Vec::new();
    let mut index: HashMap<u64, usize, FxBuildHasher> = HashMap::default();
    for s in vec {
        let key = grouping.key(&s.labels);
        let gi = *index.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[gi].push(s);
    }
    let mut out = Vec::new();
    for mut g in groups {
        // Best first, NaN last (Prometheus treats NaN as the worst for both).
        g.sort_by(|a, b| {
            use std::cmp::Ordering;
            match (a.f.is_nan(), b.f.is_nan()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                _ if top => b.f.partial_cmp(&a.f).unwrap_or(Ordering::Equal),
                _ => a.f.partial_cmp(&b.f).unwrap_or(Ordering::Equal),
            }
        });
        g.truncate(k);
        out.extend(g);
    }
    out
}

fn count_values(vec: Vec<VSample>, grouping: &Grouping, value_label: &str) -> Vec<VSample> {
    let mut order: Vec<VSample> = Vec::new();
    let mut index: HashMap<u64, usize, FxBuildHasher> = HashMap::default();
    for s in vec {
        let mut b = s.labels.builder();
        b.set(value_label, &format_go_float(s.f));
        let metric = b.build();
        let key = if grouping.without {
            metric.hash_without(&grouping.names)
        } else {
            metric.hash_for(&grouping.names)
        };
        match index.get(&key) {
            Some(&i) => order[i].f += 1.0,
            None => {
                index.insert(key, order.len());
                order.push(VSample {
                    labels: grouping.labels(&metric),
                    f: 1.0,
                    drop_name: false,
                });
            }
        }
    }
    order
}
