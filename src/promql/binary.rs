//! Binary operators: arithmetic, comparison (with `bool`) and set operators, with vector
//! matching (`on`, `ignoring`, `group_left`, `group_right`) as Prometheus applies it.

use std::collections::{HashMap, HashSet};

use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality, token::TokenType};

use super::PromqlError;
use super::eval::{Evaluator, StepSeries, VSample, Val, err};
use crate::model::labels::{FxBuildHasher, Labels, NameSet};
use crate::store::Sample;

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl Op {
    pub fn from_token(t: &TokenType) -> Result<Op, PromqlError> {
        Ok(match t.to_string().as_str() {
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "%" => Op::Mod,
            "^" => Op::Pow,
            "atan2" => Op::Atan2,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            "<" => Op::Lt,
            ">=" => Op::Ge,
            "<=" => Op::Le,
            "and" => Op::And,
            "or" => Op::Or,
            "unless" => Op::Unless,
            other => return err(format!("unknown binary operator {other:?}")),
        })
    }

    pub fn is_comparison(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Gt | Op::Lt | Op::Ge | Op::Le)
    }

    fn is_set(self) -> bool {
        matches!(self, Op::And | Op::Or | Op::Unless)
    }
}

/// Applies `op` to two floats: the value and whether to keep it (comparisons filter).
pub(crate) fn apply(op: Op, l: f64, r: f64) -> (f64, bool) {
    match op {
        Op::Add => (l + r, true),
        Op::Sub => (l - r, true),
        Op::Mul => (l * r, true),
        Op::Div => (l / r, true),
        Op::Mod => (l % r, true),
        Op::Pow => (l.powf(r), true),
        Op::Atan2 => (l.atan2(r), true),
        Op::Eq => (l, l == r),
        Op::Ne => (l, l != r),
        Op::Gt => (l, l > r),
        Op::Lt => (l, l < r),
        Op::Ge => (l, l >= r),
        Op::Le => (l, l <= r),
        Op::And | Op::Or | Op::Unless => (l, false),
    }
}

/// How the two sides of a vector operation are matched.
struct Matching<'m> {
    card: &'m VectorMatchCardinality,
    on: bool,
    labels: NameSet,
    include: Vec<String>,
}

impl Matching<'_> {
    fn signature(&self, l: &Labels) -> u64 {
        if self.on {
            l.hash_for(&self.labels)
        } else {
            l.hash_without(&self.labels)
        }
    }

    fn matched_labels(&self, l: &Labels) -> Labels {
        if self.on {
            l.keep(&self.labels)
        } else {
            l.without_metric_name().drop_names(&self.labels)
        }
    }
}

static ONE_TO_ONE: VectorMatchCardinality = VectorMatchCardinality::OneToOne;
static MANY_TO_MANY: VectorMatchCardinality = VectorMatchCardinality::ManyToMany;

pub(crate) fn eval_binary(ev: &Evaluator<'_>, b: &BinaryExpr) -> Result<Val, PromqlError> {
    let op = Op::from_token(&b.op)?;
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ev.eval(&b.lhs)?;
    let rhs = ev.eval(&b.rhs)?;
    match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(
            l.iter()
                .zip(&r)
                .map(|(&a, &b)| {
                    let (v, keep) = apply(op, a, b);
                    if op.is_comparison() {
                        if keep { 1.0 } else { 0.0 }
                    } else {
                        v
                    }
                })
                .collect(),
        )),
        (Val::Vector(v), Val::Scalar(s)) => Ok(Val::Vector(vector_scalar(
            ev,
            op,
            v,
            &s,
            false,
            return_bool,
        ))),
        (Val::Scalar(s), Val::Vector(v)) => {
            Ok(Val::Vector(vector_scalar(ev, op, v, &s, true, return_bool)))
        }
        (Val::Vector(l), Val::Vector(r)) => {
            let modifier = b.modifier.as_ref();
            let card = modifier.map(|m| &m.card).unwrap_or(if op.is_set() {
                &MANY_TO_MANY
            } else {
                &ONE_TO_ONE
            });
            let (on, labels) = match modifier.and_then(|m| m.matching.as_ref()) {
                Some(LabelModifier::Include(ls)) => (true, ls.labels.clone()),
                Some(LabelModifier::Exclude(ls)) => (false, ls.labels.clone()),
                None => (false, Vec::new()),
            };
            let include = card.labels().map(|l| l.labels.clone()).unwrap_or_default();
            let matching = Matching {
                card,
                on,
                labels: NameSet::new(labels),
                include,
            };
            let ls = ev.split_steps(l);
            let rs = ev.split_steps(r);
            let mut out = Vec::with_capacity(ls.len());
            for (lv, rv) in ls.into_iter().zip(rs) {
                ev.deadline.step(lv.len() + rv.len())?;
                out.push(match op {
                    Op::And => and(lv, &rv, &matching),
                    Op::Or => or(lv, rv, &matching),
                    Op::Unless => unless(lv, &rv, &matching),
                    _ => vector_vector(op, lv, rv, &matching, return_bool)?,
                });
            }
            Ok(Val::Vector(ev.join_steps(out)?))
        }
        (l, r) => err(format!(
            "binary expression must contain only scalar and instant vector types, got {} and {}",
            l.type_name(),
            r.type_name()
        )),
    }
}

fn vector_scalar(
    ev: &Evaluator<'_>,
    op: Op,
    mut v: Vec<StepSeries>,
    s: &[f64],
    scalar_left: bool,
    return_bool: bool,
) -> Vec<StepSeries> {
    // Whether a point stays, with its new value.
    let keep_point = |p: &mut Sample| {
        let sv = s[ev.step_of(p.t)];
        let (l, r) = if scalar_left { (sv, p.f) } else { (p.f, sv) };
        let (mut value, keep) = apply(op, l, r);
        if op.is_comparison() && scalar_left {
            value = r;
        }
        if return_bool {
            p.f = if keep { 1.0 } else { 0.0 };
            return true;
        }
        if keep {
            p.f = value;
        }
        keep
    };
    v.retain_mut(|series| {
        if let [p] = &mut series.points[..] {
            // An instant query's one point: no pass over the points to filter them.
            if !keep_point(p) {
                return false;
            }
        } else {
            series.points.retain_mut(|p| keep_point(p));
            if series.points.is_empty() {
                return false;
            }
        }
        if return_bool || !op.is_comparison() {
            series.drop_name = true;
        }
        true
    });
    v
}

fn and(lhs: Vec<VSample>, rhs: &[VSample], m: &Matching<'_>) -> Vec<VSample> {
    if lhs.is_empty() || rhs.is_empty() {
        return Vec::new();
    }
    let sigs: HashSet<u64, FxBuildHasher> = rhs.iter().map(|s| m.signature(&s.labels)).collect();
    lhs.into_iter()
        .filter(|s| sigs.contains(&m.signature(&s.labels)))
        .collect()
}

fn or(mut lhs: Vec<VSample>, rhs: Vec<VSample>, m: &Matching<'_>) -> Vec<VSample> {
    if lhs.is_empty() {
        return rhs;
    }
    if rhs.is_empty() {
        return lhs;
    }
    let sigs: HashSet<u64, FxBuildHasher> = lhs.iter().map(|s| m.signature(&s.labels)).collect();
    lhs.extend(
        rhs.into_iter()
            .filter(|s| !sigs.contains(&m.signature(&s.labels))),
    );
    lhs
}

fn unless(lhs: Vec<VSample>, rhs: &[VSample], m: &Matching<'_>) -> Vec<VSample> {
    if lhs.is_empty() || rhs.is_empty() {
        return lhs;
    }
    let sigs: HashSet<u64, FxBuildHasher> = rhs.iter().map(|s| m.signature(&s.labels)).collect();
    lhs.into_iter()
        .filter(|s| !sigs.contains(&m.signature(&s.labels)))
        .collect()
}

fn vector_vector(
    op: Op,
    lhs: Vec<VSample>,
    rhs: Vec<VSample>,
    m: &Matching<'_>,
    return_bool: bool,
) -> Result<Vec<VSample>, PromqlError> {
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vec::new());
    }
    let one_to_many = matches!(m.card, VectorMatchCardinality::OneToMany(_));
    let one_to_one = matches!(m.card, VectorMatchCardinality::OneToOne);
    if matches!(m.card, VectorMatchCardinality::ManyToMany) {
        return err("many-to-many only allowed for set operators");
    }
    let (many, one) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let mut right: HashMap<u64, &VSample, FxBuildHasher> =
        HashMap::with_capacity_and_hasher(one.len(), FxBuildHasher::default());
    for s in &one {
        let sig = m.signature(&s.labels);
        if let Some(dup) = right.get(&sig) {
            let side = if one_to_many { "left" } else { "right" };
            return err(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                m.matched_labels(&s.labels),
                s.labels,
                dup.labels
            ));
        }
        right.insert(sig, s);
    }
    let mut matched: HashMap<u64, HashSet<Labels, FxBuildHasher>, FxBuildHasher> =
        HashMap::default();
    let mut out = Vec::new();
    for ls in &many {
        let sig = m.signature(&ls.labels);
        let Some(rs) = right.get(&sig) else {
            continue;
        };
        let (fl, fr) = if one_to_many {
            (rs.f, ls.f)
        } else {
            (ls.f, rs.f)
        };
        let (mut value, keep) = apply(op, fl, fr);
        // Matching errors count even for elements a comparison then filters away.
        let metric = result_metric(&ls.labels, &rs.labels, m);
        if one_to_one {
            if matched.insert(sig, HashSet::default()).is_some() {
                return err(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                );
            }
        } else if !matched.entry(sig).or_default().insert(metric.clone()) {
            return err("multiple matches for labels: grouping labels must ensure unique matches");
        }
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        out.push(VSample {
            labels: metric,
            f: value,
            drop_name: return_bool || !op.is_comparison() || ls.drop_name,
        });
    }
    Ok(out)
}

/// The labels of a result element: the "many" side's, narrowed for one-to-one matching, plus
/// the `group_x` labels taken from the "one" side.
fn result_metric(lhs: &Labels, rhs: &Labels, m: &Matching<'_>) -> Labels {
    let one_to_one = matches!(m.card, VectorMatchCardinality::OneToOne);
    if one_to_one && !m.on && m.labels.is_empty() && m.include.is_empty() {
        return lhs.clone();
    }
    let mut b = if one_to_one {
        if m.on {
            lhs.keep(&m.labels).builder()
        } else {
            lhs.drop_names(&m.labels).builder()
        }
    } else {
        lhs.builder()
    };
    for name in &m.include {
        b.set(name, rhs.get_or_empty(name));
    }
    b.build()
}
