//! A differential test of the PromQL engine against the real `promtool` (Debian's `prometheus`
//! package, 2.42): random input series and random expressions, our engine's answers written as
//! the `exp_samples` of `promql_expr_test`s in one unit-test file per seed, which
//! `promtool test rules` must pass. An expression our engine refuses is written with no samples,
//! and promtool must refuse it too (its failure must be an `err:`); one case in 25 is a mistake
//! both must refuse (a range where an instant vector goes, a set operator with a scalar, an
//! empty label name, a bad regular expression, a collision after dropping names, …).
//!
//! Each seed is one batch: one test group of series and `PROMQL_DIFF_BATCH` (100) expressions,
//! one promtool run. By default seeds 0..20 run (2,000 cases); `PROMQL_DIFF_CASES=N` runs N
//! (N/100 seeds), `PROMQL_DIFF_SEED=S` runs seed S only (with `PROMQL_DIFF_CASES`, seeds S,
//! S+1, …); `PROMQL_DIFF_KEEP=DIR` keeps each seed's file. Every failure names its seed and case
//! and prints the series, the expression, our answer and promtool's, then the input series cut
//! down to those the case still fails with, and the smallest sub-expression that still
//! disagrees over them.
//!
//! What the generator keeps away from, as 2.42 and Prometheus 3 (which the engine follows)
//! differ there, or promtool cannot compare:
//! - window boundaries: 2.42's range, lookback and subquery windows are closed, Prometheus 3's
//!   are open on the left. Samples are 1m apart from 0; expressions are evaluated at `NmSs`
//!   with S one of 10, 30, 50; ranges are odd multiples of 15s (`45s`, `75s`, …), offsets whole
//!   minutes, `@` times at half minutes, subquery steps 20s/30s/1m/2m and subquery ranges odd
//!   multiples of 15s, so no sample and no subquery step sits on the start of a window. A
//!   series either runs to the end of the data or ends with a staleness marker, and a gap
//!   always starts with one, so no lookback window starts on a series' last sample;
//! - counter extrapolation: 3.x clamps the extrapolation towards zero after the threshold test,
//!   2.42 before it; they agree when a counter starts at 0, so counters (histogram buckets too)
//!   start, and restart after a gap, at 0, `rate`/`increase`/`irate` read counters only, and
//!   over a subquery only with steps of a minute or less (a 2m step can miss the 0);
//! - float order: 2.42 keeps a running mean for `avg`/`avg_over_time`, 3.x sums then divides,
//!   and 3.x sums with Kahan compensation where 2.42 does not: `avg`, `stddev`, `stdvar` and their
//!   `_over_time` forms are generated as `round(1024 * f(…))`, and `sum`'s operand is rounded to
//!   1/1024 so the sum is exact;
//! - `stddev`/`stdvar`/`avg` of an infinite value (3.x: NaN, 2.42: 0): their operands are
//!   selectors or range functions of the finite series (only `w` has NaN and infinite samples,
//!   read by selectors and by the range functions that treat them alike in both);
//! - `^`: Go's `math.Pow` multiplies by repeated squaring and libm's `pow` rounds once, so
//!   exponents are 0, 1 or 2 only; `exp`/`ln`/`log*`/trigonometry are left out for the same
//!   reason;
//! - delayed name removal: the engine removes `__name__` at the end, as Prometheus 3's own test
//!   engine does, 2.42 at once. So `label_replace`/`label_join` never read or write `__name__`,
//!   and there is no `or` inside a subquery (one series' steps can come from differently named
//!   series there, which 2.42 joins into one and the engine keeps apart);
//! - label names: Prometheus 3 takes any UTF-8 name (`1bad`), 2.42 only `[a-zA-Z_][a-zA-Z0-9_]*`,
//!   so the mistakes use the empty name;
//! - `multiple matches for labels`: 3.x checks one-to-one matching before a comparison filters,
//!   2.42 after; a case our engine refuses with it is left out;
//! - time functions (`hour`, …) of NaN: 2.42 converts with Go's `int64(NaN)`; their arguments
//!   are selectors;
//! - `@` inside a subquery: 2.42 loses steps of some (`predict_linear(x[r] @ t, s)` gives one
//!   point), so none there; subqueries always have a step (2.42's default differs);
//! - `holt_winters` (3.x: experimental `double_exponential_smoothing`), the experimental
//!   functions and native histograms;
//! - `topk`/`bottomk` pick among equal values in an unspecified order, so they are generated
//!   under a `sum`/`count`/`max`/`min` of the same grouping, which ties do not change;
//! - `NaN`, which never equals itself in promtool's comparison: an answer with NaN samples is
//!   tested as `(E) >= -Inf` (the other samples) and `((E) unless ((E) >= -Inf)) != bool 0`
//!   (which series are NaN); a NaN scalar is left out.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::Command;

use tradewatch::model::labels::Labels;
use tradewatch::rules::unittest::{TestFile, expr_results};

/// Expressions per seed (one promtool run).
const BATCH: usize = 100;
/// The last sample is at this minute.
const LAST_MINUTE: u64 = 30;
/// Every file has a case at this time (after every generated one), so that the same samples
/// are loaded whatever its other cases.
const LOAD_TILL: &str = "29m30s";
const LOAD_TILL_SECONDS: u64 = 29 * 60 + 30;

/// splitmix64: a small seeded generator, so a seed reproduces its case anywhere; and whether
/// the expression being generated is inside a subquery.
struct Rng(u64, bool);

impl Rng {
    fn next(&mut self) -> u64 {
        support::splitmix64(&mut self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------------------------
// Series
// ---------------------------------------------------------------------------------------------

/// One input series: its label set as promtool writes it and its values, one a minute.
#[derive(Debug, Clone)]
struct InputSeries {
    series: String,
    values: String,
}

/// Gauge values: small integers, some halves and quarters, gaps opened by a staleness marker.
fn gauge_values(rng: &mut Rng) -> String {
    let start = if rng.chance(3) { rng.below(8) } else { 0 };
    let mut out: Vec<String> = vec!["_".into(); start as usize];
    let mut gap = 0;
    let mut v: i64 = rng.below(11) as i64 - 3;
    for _ in start..=LAST_MINUTE {
        if gap > 0 {
            gap -= 1;
            out.push("_".into());
            continue;
        }
        if rng.chance(25) {
            out.push("stale".into());
            gap = rng.below(8);
            continue;
        }
        match rng.below(6) {
            0 => v = rng.below(11) as i64 - 3,
            1 | 2 => v += rng.below(3) as i64 - 1,
            _ => {}
        }
        let frac = ["", "", "", "", ".5", ".25"][rng.below(6) as usize];
        out.push(format!("{v}{frac}"));
    }
    out.join(" ")
}

/// Counter values: from 0, small increments, resets to 0, gaps after a staleness marker and
/// back at 0.
fn counter_values(rng: &mut Rng) -> String {
    let start = if rng.chance(3) { rng.below(8) } else { 0 };
    let mut out: Vec<String> = vec!["_".into(); start as usize];
    let mut gap = 0;
    let mut v: u64 = 0;
    let step = rng.below(5);
    for _ in start..=LAST_MINUTE {
        if gap > 0 {
            gap -= 1;
            out.push("_".into());
            if gap == 0 {
                v = 0;
            }
            continue;
        }
        if rng.chance(40) {
            out.push("stale".into());
            gap = rng.below(6) + 1;
            continue;
        }
        out.push(v.to_string());
        v = if rng.chance(20) {
            0
        } else {
            v + rng.below(step + 2)
        };
    }
    out.join(" ")
}

/// The input series of one batch: gauges `g` and `h`, counters `c_total`, classic histogram
/// buckets `lat_bucket`.
fn random_series(rng: &mut Rng) -> Vec<InputSeries> {
    let mut out = Vec::new();
    for job in ["a", "b"] {
        for inst in ["0", "1", "2"] {
            if !rng.chance(4) {
                out.push(InputSeries {
                    series: format!("g{{job=\"{job}\", inst=\"{inst}\"}}"),
                    values: gauge_values(rng),
                });
            }
            if !rng.chance(4) {
                out.push(InputSeries {
                    series: format!("c_total{{job=\"{job}\", inst=\"{inst}\"}}"),
                    values: counter_values(rng),
                });
            }
        }
        // A gauge with NaN and infinite samples among small integers.
        if !rng.chance(3) {
            let values: Vec<&str> = (0..=LAST_MINUTE)
                .map(|_| rng.pick(&["NaN", "Inf", "-Inf", "0", "1", "-2", "3", "5"]))
                .collect();
            out.push(InputSeries {
                series: format!("w{{job=\"{job}\", inst=\"{}\"}}", rng.below(3)),
                values: values.join(" "),
            });
        }
        for mode in ["x", "y"] {
            if !rng.chance(3) {
                out.push(InputSeries {
                    series: format!(
                        "h{{job=\"{job}\", inst=\"{}\", mode=\"{mode}\"}}",
                        rng.below(3)
                    ),
                    values: gauge_values(rng),
                });
            }
        }
        // Cumulative buckets, each a counter from 0, never below the bucket before it.
        if !rng.chance(4) {
            let bounds = ["0.25", "1", "4", "+Inf"];
            let mut counts = [0u64; 4];
            let mut rows: Vec<Vec<String>> = vec![Vec::new(); 4];
            for _ in 0..=LAST_MINUTE {
                for (i, c) in counts.iter().enumerate() {
                    rows[i].push(c.to_string());
                }
                let mut below = 0;
                for c in counts.iter_mut() {
                    below += rng.below(3);
                    *c += below;
                }
            }
            for (bound, row) in bounds.iter().zip(rows) {
                out.push(InputSeries {
                    series: format!("lat_bucket{{job=\"{job}\", le=\"{bound}\"}}"),
                    values: row.join(" "),
                });
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------------------------

/// Ranges off every window boundary (odd multiples of 15s).
const RANGES: &[&str] = &["45s", "75s", "105s", "2m15s", "3m45s", "5m15s", "7m45s"];
const SUBQUERY_STEPS: &[&str] = &["20s", "30s", "1m", "2m"];
const LABELS: &[&str] = &["job", "inst", "mode"];

fn matchers(rng: &mut Rng) -> String {
    let mut m = Vec::new();
    if rng.chance(3) {
        m.push(
            rng.pick(&["job=\"a\"", "job!=\"a\"", "job=~\"a|b\"", "job!~\"b\""])
                .to_owned(),
        );
    }
    if rng.chance(3) {
        m.push(
            rng.pick(&[
                "inst=\"1\"",
                "inst!=\"0\"",
                "inst=~\"0|2\"",
                "inst=~\".+\"",
                "inst!~\"1\"",
            ])
            .to_owned(),
        );
    }
    if m.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", m.join(", "))
    }
}

/// An offset (whole minutes, a few negative) or an `@` at a half minute, or neither.
fn offset(rng: &mut Rng) -> String {
    match rng.below(12) {
        0 | 1 => format!(" offset {}m", rng.below(4) + 1),
        2 => format!(" offset -{}m", rng.below(3) + 1),
        // 2.42 loses steps of some `@` expressions inside a subquery (one point for
        // `predict_linear(x[r] @ t, s)`): no `@` there.
        3 if !rng.1 => format!(" @ {}", rng.below(LAST_MINUTE) * 60 + 30),
        4 if !rng.1 => rng
            .pick(&[" @ start()", " @ end()", " @ 90 offset 1m"])
            .to_owned(),
        _ => String::new(),
    }
}

/// One of `metrics` with random matchers, now and then by a `__name__` regex.
fn selector(rng: &mut Rng, metrics: &[&str]) -> String {
    if rng.chance(15) {
        // One metric by a regular expression on its name. Not two: where a function drops the
        // names, 2.42 refuses a collision at once, and the engine (delayed name removal) only
        // if it reaches the end.
        let name = rng.pick(metrics);
        let m = matchers(rng);
        let rest = m.trim_start_matches('{').trim_end_matches('}');
        let sep = if rest.is_empty() { "" } else { ", " };
        return format!("{{__name__=~\"{name}|nope\"{sep}{rest}}}");
    }
    let metric = rng.pick(metrics);
    format!("{metric}{}", matchers(rng))
}

fn grouping(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => String::new(),
        1 => format!(" by ({})", rng.pick(LABELS)),
        2 => " by (job, inst)".to_owned(),
        _ => format!(" without ({})", rng.pick(LABELS)),
    }
}

fn scalar_literal(rng: &mut Rng) -> String {
    rng.pick(&["0", "1", "2", "3", "-1", "0.5", "2.25", "4", "10"])
        .to_owned()
}

/// A random scalar expression.
fn scalar(rng: &mut Rng, depth: u32) -> String {
    if depth >= 3 {
        return scalar_literal(rng);
    }
    match rng.below(6) {
        0 | 1 => scalar_literal(rng),
        2 => format!("scalar({})", vector(rng, depth + 1)),
        3 => "time()".to_owned(),
        4 => format!(
            "({} {} {})",
            scalar(rng, depth + 1),
            rng.pick(&["+", "-", "*", "/", "%"]),
            scalar(rng, depth + 1)
        ),
        _ => format!(
            "({} {} bool {})",
            scalar(rng, depth + 1),
            rng.pick(&["==", "!=", "<", ">", "<=", ">="]),
            scalar(rng, depth + 1)
        ),
    }
}

/// The operand of aggregation `op`: for `sum`, rounded to 1/1024 so that the sum is exact
/// (3.x sums with Kahan compensation, 2.42 without, which differ in the last bits for inexact
/// values such as rates).
fn summand(rng: &mut Rng, op: &str, depth: u32) -> String {
    let v = vector(rng, depth);
    if op == "sum" {
        format!("round({v}, 1/1024)")
    } else {
        v
    }
}

/// A range function over a range selector; over finite samples only unless `any`.
fn range_function(rng: &mut Rng, any: bool) -> String {
    let range = rng.pick(RANGES);
    let off = offset(rng);
    if rng.chance(3) {
        let f = rng.pick(&["rate", "increase", "irate", "resets", "changes", "delta"]);
        return format!("{f}({}[{range}]{off})", selector(rng, &["c_total"]));
    }
    if any && rng.chance(8) {
        // Over NaN and infinite samples: the functions whose 2.42 and 3.x forms agree there.
        let f = rng.pick(&[
            "min_over_time",
            "max_over_time",
            "count_over_time",
            "last_over_time",
            "present_over_time",
            "changes",
            "resets",
            "quantile_over_time(0.5, ",
        ]);
        let open = if f.ends_with(' ') { "" } else { "(" };
        return format!("{f}{open}{}[{range}]{off})", selector(rng, &["w"]));
    }
    let sel = format!("{}[{range}]{off}", selector(rng, &["g", "g", "h"]));
    match rng.below(14) {
        0 => format!("delta({sel})"),
        1 => format!("idelta({sel})"),
        2 => format!("deriv({sel})"),
        3 => format!("changes({sel})"),
        4 => format!("resets({sel})"),
        5 => format!(
            "predict_linear({sel}, {})",
            rng.pick(&["60", "-30", "0", "600"])
        ),
        6 => format!(
            "quantile_over_time({}, {sel})",
            rng.pick(&["0", "0.25", "0.5", "0.75", "1"])
        ),
        7 => format!(
            "round(1024 * {}({sel}))",
            rng.pick(&["avg_over_time", "stddev_over_time", "stdvar_over_time"])
        ),
        8 => format!("absent_over_time({sel})"),
        _ => format!(
            "{}({sel})",
            rng.pick(&[
                "min_over_time",
                "max_over_time",
                "sum_over_time",
                "count_over_time",
                "last_over_time",
                "present_over_time",
            ])
        ),
    }
}

/// An expression that both must refuse, when parsing or when evaluating.
fn mistake(rng: &mut Rng) -> String {
    let v = vector(rng, 2);
    let sel = selector(rng, &["g", "h", "w"]);
    match rng.below(13) {
        0 => format!("abs(({v})[75s])"),
        1 => format!("rate({sel})"),
        2 => format!("{sel}[75s]"),
        // Not `1bad`: Prometheus 3 takes any UTF-8 label name, 2.42 does not.
        3 => format!("label_replace({v}, \"\", \"x\", \"job\", \"(.*)\")"),
        4 => format!("label_replace({v}, \"dst\", \"x\", \"job\", \"(\")"),
        5 => format!("count_values(\"\", {v})"),
        6 => format!("quantile_over_time(0.5, {v})"),
        7 => format!("({v}) and 1"),
        8 => "(1 > 2)".to_owned(),
        9 => format!("-{{job=\"a\"}} + {}", scalar_literal(rng)),
        10 => format!("sum by (job) ({sel}[75s])"),
        11 => format!("{sel} offset 1m offset 2m"),
        _ => format!("({v}) + on (job) group_left ({{job=\"a\"}})"),
    }
}

/// A random instant-vector expression.
fn vector(rng: &mut Rng, depth: u32) -> String {
    if depth >= 3 {
        return match rng.below(3) {
            0 => range_function(rng, true),
            _ => format!(
                "{}{}",
                selector(rng, &["g", "h", "c_total", "w"]),
                offset(rng)
            ),
        };
    }
    let d = depth + 1;
    match rng.below(20) {
        0 | 1 => format!(
            "{}{}",
            selector(rng, &["g", "h", "c_total", "w", "w"]),
            offset(rng)
        ),
        2 | 3 => range_function(rng, true),
        4 => {
            // A subquery: its range and step keep its steps off the window start.
            let f = rng.pick(&[
                "min_over_time",
                "max_over_time",
                "sum_over_time",
                "count_over_time",
                "last_over_time",
                "changes",
                "delta",
                "deriv",
            ]);
            let outer = rng.1;
            rng.1 = true;
            let (f, inner, steps) = if rng.chance(5) {
                // The rate family over a counter's steps, a minute apart at most so that the
                // first step after a (re)start reads its 0 (see counter extrapolation above).
                (
                    rng.pick(&["rate", "increase", "irate", "resets"]),
                    selector(rng, &["c_total"]),
                    &SUBQUERY_STEPS[..3],
                )
            } else {
                (f, vector(rng, d), SUBQUERY_STEPS)
            };
            rng.1 = outer;
            let off = if rng.chance(5) { " offset 1m" } else { "" };
            format!(
                "{f}(({inner})[{}:{}]{off})",
                rng.pick(&["2m15s", "3m45s", "5m15s"]),
                rng.pick(steps)
            )
        }
        5 | 6 => {
            let op = rng.pick(&["sum", "min", "max", "count", "group"]);
            format!("{op}{}({})", grouping(rng), summand(rng, op, d))
        }
        7 => {
            // Over finite values only: for an infinite one 3.x gives NaN where 2.42 gives 0.
            let operand = if rng.chance(2) {
                selector(rng, &["g", "h", "c_total"])
            } else {
                range_function(rng, false)
            };
            format!(
                "round(1024 * {}{}({operand}))",
                rng.pick(&["avg", "stddev", "stdvar"]),
                grouping(rng),
            )
        }
        8 => {
            let g = grouping(rng);
            let op = rng.pick(&["sum", "count", "max", "min"]);
            format!(
                "{op}{g}({}{g}({}, {}))",
                rng.pick(&["topk", "bottomk"]),
                rng.pick(&["1", "2", "3"]),
                summand(rng, op, d)
            )
        }
        9 => {
            if rng.chance(2) {
                format!(
                    "quantile{}({}, {})",
                    grouping(rng),
                    rng.pick(&["0", "0.25", "0.5", "0.9", "1", "-1", "2"]),
                    vector(rng, d)
                )
            } else {
                format!("count_values{}(\"v\", {})", grouping(rng), vector(rng, d))
            }
        }
        10 | 11 => {
            // Vector and scalar.
            let comparison = rng.chance(2);
            let op = if comparison {
                rng.pick(&["==", "!=", "<", ">", "<=", ">="])
            } else {
                rng.pick(&["+", "-", "*", "/", "%", "^"])
            };
            let bool_ = if comparison && rng.chance(2) {
                " bool"
            } else {
                ""
            };
            if op == "^" {
                format!("({} ^ {})", vector(rng, d), rng.pick(&["0", "1", "2"]))
            } else if rng.chance(2) {
                format!("({} {op}{bool_} {})", vector(rng, d), scalar(rng, d))
            } else {
                format!("({} {op}{bool_} {})", scalar(rng, d), vector(rng, d))
            }
        }
        12 | 13 => {
            // Vector and vector, with matching.
            let mut op = rng.pick(&[
                "+", "-", "*", "/", "==", "!=", ">", "<=", "and", "or", "unless",
            ]);
            // In a subquery, `or` can take one series' steps from differently named series:
            // 2.42 has dropped the names and joins them, delayed name removal keeps them apart.
            if op == "or" && rng.1 {
                op = "unless";
            }
            let set = matches!(op, "and" | "or" | "unless");
            let bool_ = if !set && matches!(op, "==" | "!=" | ">" | "<=") && rng.chance(2) {
                " bool"
            } else {
                ""
            };
            // Many-to-one matching gets a "one" side that is one per group, mostly.
            let (mut lhs, mut rhs) = (vector(rng, d), vector(rng, d));
            let matching = match rng.below(6) {
                0 | 1 => String::new(),
                2 => format!(" on ({})", rng.pick(&["job", "job, inst", "inst", ""])),
                3 => format!(" ignoring ({})", rng.pick(&["mode", "inst"])),
                4 | 5 if !set => {
                    let (on, by) = if rng.chance(2) {
                        ("on (job)", "job")
                    } else {
                        ("ignoring (mode)", "job, inst")
                    };
                    let one = format!("{} by ({by}) ({{}})", rng.pick(&["sum", "max", "count"]));
                    if rng.chance(2) {
                        if !rng.chance(5) {
                            rhs = one.replace("{}", &rhs);
                        }
                        let extra = if on.starts_with("on") { "mode" } else { "" };
                        format!(" {on} group_left ({})", rng.pick(&["", extra]))
                    } else {
                        if !rng.chance(5) {
                            lhs = one.replace("{}", &lhs);
                        }
                        format!(" {on} group_right ()")
                    }
                }
                _ => String::new(),
            };
            format!("({lhs} {op}{bool_}{matching} {rhs})")
        }
        14 => format!(
            "{}({})",
            rng.pick(&[
                "abs",
                "ceil",
                "floor",
                "round",
                "sgn",
                "sqrt",
                "-",
                "sort",
                "sort_desc",
                "timestamp"
            ]),
            if rng.chance(3) {
                selector(rng, &["g", "h"])
            } else {
                vector(rng, d)
            }
        ),
        15 => match rng.below(4) {
            0 => format!(
                "clamp({}, {}, {})",
                vector(rng, d),
                scalar_literal(rng),
                scalar_literal(rng)
            ),
            1 => format!("clamp_min({}, {})", vector(rng, d), scalar_literal(rng)),
            2 => format!("clamp_max({}, {})", vector(rng, d), scalar_literal(rng)),
            _ => format!(
                "round({}, {})",
                vector(rng, d),
                rng.pick(&["0.5", "2", "0.25", "3"])
            ),
        },
        16 => {
            if rng.chance(2) {
                format!(
                    "label_replace({}, \"{}\", \"{}\", \"{}\", \"{}\")",
                    vector(rng, d),
                    rng.pick(&["dst", "job", "inst"]),
                    rng.pick(&["$1", "x-$1", "${1}y", "", "$2"]),
                    rng.pick(&["job", "inst", "mode", "none"]),
                    rng.pick(&["(.*)", "(a)", "([0-9])", "(.)(.*)", ""])
                )
            } else {
                format!(
                    "label_join({}, \"{}\", \"{}\", \"job\", \"inst\")",
                    vector(rng, d),
                    rng.pick(&["dst", "inst"]),
                    rng.pick(&["-", ""])
                )
            }
        }
        17 => {
            let q = rng.pick(&["0", "0.1", "0.5", "0.9", "0.99", "1"]);
            let by = rng.pick(&["le", "le, job"]);
            match rng.below(5) {
                0 => format!("histogram_quantile({q}, lat_bucket{})", matchers(rng)),
                1 => format!(
                    "histogram_quantile({q}, rate(lat_bucket{}[{}]))",
                    rng.pick(&["", "{le!=\"+Inf\"}", "{le!=\"1\"}", "{job=\"b\"}"]),
                    rng.pick(RANGES)
                ),
                2 => format!(
                    "histogram_quantile({q}, sum by ({by}) (rate(lat_bucket[{}])))",
                    rng.pick(RANGES)
                ),
                _ => format!(
                    "histogram_quantile({q}, sum by ({by}) (increase(lat_bucket[{}]{})))",
                    rng.pick(RANGES),
                    offset(rng)
                ),
            }
        }
        18 => match rng.below(4) {
            0 => format!("absent({})", selector(rng, &["g", "nope", "h"])),
            1 => format!("absent({})", vector(rng, d)),
            2 => format!("vector({})", scalar(rng, d)),
            _ => format!(
                "{}({})",
                rng.pick(&[
                    "minute",
                    "hour",
                    "day_of_week",
                    "day_of_month",
                    "month",
                    "year",
                    "days_in_month"
                ]),
                // Finite values only: 2.42 converts NaN to a time as Go's int64(NaN) does.
                if rng.chance(2) {
                    String::new()
                } else {
                    selector(rng, &["g", "h", "c_total"])
                }
            ),
        },
        _ => format!("-{}", selector(rng, &["g", "h"])),
    }
}

// ---------------------------------------------------------------------------------------------
// Cases and promtool
// ---------------------------------------------------------------------------------------------

/// One expression at one time, and what our engine answers.
#[derive(Debug, Clone)]
struct Case {
    /// Where it came from: `seed S case N` (and what it was rewritten from).
    origin: String,
    expr: String,
    eval_time: String,
    answer: Result<Vec<(Labels, f64)>, String>,
}

/// A case as written: expression, eval time, expected samples.
type Written = (String, String, Vec<(Labels, f64)>);

/// A YAML single-quoted string.
fn yaml_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A value as promtool's YAML reads it back exactly.
fn yaml_float(v: f64) -> String {
    if v == f64::INFINITY {
        ".inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-.inf".to_owned()
    } else {
        format!("{v:?}")
    }
}

/// The unit-test file: the series and each case with our answer (none for an error).
fn test_file(series: &[InputSeries], cases: &[Written]) -> String {
    let mut out =
        String::from("evaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n");
    for s in series {
        let _ = writeln!(
            out,
            "      - series: {}\n        values: {}",
            yaml_quote(&s.series),
            yaml_quote(&s.values)
        );
    }
    // The samples are loaded up to the largest eval_time (promtool's lazy loading): this case
    // keeps that the same whichever cases a file holds.
    let _ = writeln!(
        out,
        "    promql_expr_test:\n      - expr: time()\n        eval_time: {LOAD_TILL}\n        exp_samples: [{{labels: '{{}}', value: {}}}]",
        LOAD_TILL_SECONDS
    );
    for (expr, at, samples) in cases {
        let _ = writeln!(
            out,
            "      - expr: {}\n        eval_time: {at}",
            yaml_quote(expr)
        );
        if samples.is_empty() {
            out.push_str("        exp_samples: []\n");
            continue;
        }
        out.push_str("        exp_samples:\n");
        for (labels, v) in samples {
            let _ = writeln!(
                out,
                "          - labels: {}\n            value: {}",
                yaml_quote(&labels.to_string()),
                yaml_float(*v)
            );
        }
    }
    out
}

/// Our engine's answers to `exprs` (expression, eval time) over `series`, through the same
/// loader as `tradewatch rules test`.
fn our_answers(
    series: &[InputSeries],
    exprs: &[(String, String)],
) -> Vec<Result<Vec<(Labels, f64)>, String>> {
    let cases: Vec<Written> = exprs
        .iter()
        .map(|(e, t)| (e.clone(), t.clone(), Vec::new()))
        .collect();
    let text = test_file(series, &cases);
    let loaded = TestFile::parse(&text, "generated.test.yml")
        .unwrap_or_else(|e| panic!("the generated file does not load: {e}\n{text}"));
    let mut answers =
        expr_results(&loaded.file, 0).unwrap_or_else(|e| panic!("the input series: {e}\n{text}"));
    // The first is the loading case.
    let _loading = answers.remove(0);
    answers
}

/// Our answers, with each NaN-bearing vector answer replaced by two NaN-free cases.
fn cases_for(seed: u64, series: &[InputSeries], exprs: Vec<(String, String)>) -> Vec<Case> {
    let answers = our_answers(series, &exprs);
    let mut cases = Vec::new();
    let mut rewritten = Vec::new();
    for (i, ((expr, at), answer)) in exprs.into_iter().zip(answers).enumerate() {
        let origin = format!("seed {seed} case {i}");
        // 3.x checks one-to-one matching before a comparison filters, 2.42 after.
        if matches!(&answer, Err(e) if e.starts_with("multiple matches for labels")) {
            continue;
        }
        let has_nan = matches!(&answer, Ok(s) if s.iter().any(|(_, v)| v.is_nan()));
        if !has_nan {
            cases.push(Case {
                origin,
                expr,
                eval_time: at,
                answer,
            });
            continue;
        }
        let is_scalar = matches!(&answer, Ok(s) if s.len() == 1 && s[0].0.is_empty())
            && !expr.starts_with("vector(");
        if is_scalar {
            continue;
        }
        for rewrite in [
            format!("({expr}) >= -Inf"),
            format!("(({expr}) unless (({expr}) >= -Inf)) != bool 0"),
        ] {
            rewritten.push((
                format!("{origin} (rewritten for NaN from {expr})"),
                rewrite,
                at.clone(),
            ));
        }
    }
    let exprs: Vec<(String, String)> = rewritten
        .iter()
        .map(|(_, e, t)| (e.clone(), t.clone()))
        .collect();
    let answers = our_answers(series, &exprs);
    for ((origin, expr, at), answer) in rewritten.into_iter().zip(answers) {
        if matches!(&answer, Ok(s) if s.iter().any(|(_, v)| v.is_nan())) {
            continue;
        }
        cases.push(Case {
            origin,
            expr,
            eval_time: at,
            answer,
        });
    }
    cases
}

/// The cases promtool fails, by (expression, eval time), with their messages.
fn promtool_failures(
    dir: &std::path::Path,
    series: &[InputSeries],
    cases: &[Case],
) -> (BTreeMap<(String, String), String>, String) {
    let written: Vec<Written> = cases
        .iter()
        .map(|c| {
            (
                c.expr.clone(),
                c.eval_time.clone(),
                c.answer.clone().unwrap_or_default(),
            )
        })
        .collect();
    let path = dir.join("diff.test.yml");
    std::fs::write(&path, test_file(series, &written)).expect("writing the test file");
    let out = Command::new("promtool")
        .args(["test", "rules", "diff.test.yml"])
        .current_dir(dir)
        .output()
        .expect("running promtool");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut failures = BTreeMap::new();
    // Each failure starts `    expr: "…", time: 1m30s`, then `, err: …` or `,` and the
    // `exp:`/`got:` lines.
    let head = regex::Regex::new(r#"(?m)^    expr: ("(?:[^"\\]|\\.)*"), time: ([0-9hms.]+)"#)
        .expect("regex");
    let starts: Vec<(usize, String, String)> = head
        .captures_iter(&stderr)
        .map(|c| {
            let quoted = &c[1];
            let expr: String = serde_json::from_str(quoted).unwrap_or_else(|_| quoted.to_owned());
            (c.get(0).expect("match").start(), expr, c[2].to_owned())
        })
        .collect();
    for (i, (start, expr, at)) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(stderr.len(), |s| s.0);
        failures.insert((expr.clone(), at.clone()), stderr[*start..end].to_owned());
    }
    if !out.status.success() && failures.is_empty() {
        panic!(
            "promtool failed without a case failure:\n{stderr}\n{}",
            test_file(series, &written)
        );
    }
    (failures, stderr)
}

/// Where our answer and promtool disagree on a case: `None` when they agree.
fn disagreement(case: &Case, failures: &BTreeMap<(String, String), String>) -> Option<String> {
    let failure = failures.get(&(case.expr.clone(), case.eval_time.clone()));
    match (&case.answer, failure) {
        (Ok(_), None) => None,
        (Err(e), Some(f)) if f.contains(", err: ") => {
            let _ = e;
            None
        }
        (Ok(s), Some(f)) => Some(format!(
            "ours: {}\npromtool:\n{f}",
            s.iter()
                .map(|(l, v)| format!("{l} {v:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        (Err(e), Some(f)) => Some(format!("ours: error {e}\npromtool:\n{f}")),
        (Err(e), None) => Some(format!(
            "ours: error {e}\npromtool: no error, and no samples"
        )),
    }
}

/// How our engine and promtool disagree on `expr` at `at` over `series`, if they do (a NaN
/// answer cannot be compared and counts as agreeing).
fn disagrees(
    dir: &std::path::Path,
    series: &[InputSeries],
    expr: &str,
    at: &str,
) -> Option<String> {
    let answer = our_answers(series, &[(expr.to_owned(), at.to_owned())]).remove(0);
    if matches!(&answer, Ok(s) if s.iter().any(|(_, v)| v.is_nan())) {
        return None;
    }
    let case = Case {
        origin: String::new(),
        expr: expr.to_owned(),
        eval_time: at.to_owned(),
        answer,
    };
    disagreement(
        &case,
        &promtool_failures(dir, series, std::slice::from_ref(&case)).0,
    )
}

/// The series of `case` with as few input series as still make it disagree.
fn reduce(dir: &std::path::Path, series: &[InputSeries], case: &Case) -> Vec<InputSeries> {
    let mut kept = series.to_vec();
    let mut i = 0;
    while i < kept.len() {
        let mut fewer = kept.clone();
        fewer.remove(i);
        if disagrees(dir, &fewer, &case.expr, &case.eval_time).is_some() {
            kept = fewer;
        } else {
            i += 1;
        }
    }
    kept
}

/// The shortest sub-expression of `expr` (an instant vector or a scalar, as the parser prints
/// it) on which our engine and promtool still disagree, with how.
fn smallest_disagreeing(
    dir: &std::path::Path,
    series: &[InputSeries],
    expr: &str,
    at: &str,
) -> Option<(String, String)> {
    use promql_parser::parser::Expr;
    use promql_parser::parser::value::ValueType;
    fn collect(e: &Expr, out: &mut Vec<String>) {
        if matches!(e.value_type(), ValueType::Vector | ValueType::Scalar) {
            out.push(e.to_string());
        }
        match e {
            Expr::Aggregate(a) => {
                collect(&a.expr, out);
                if let Some(p) = &a.param {
                    collect(p, out);
                }
            }
            Expr::Unary(u) => collect(&u.expr, out),
            Expr::Binary(b) => {
                collect(&b.lhs, out);
                collect(&b.rhs, out);
            }
            Expr::Paren(p) => collect(&p.expr, out),
            Expr::Subquery(s) => collect(&s.expr, out),
            Expr::Call(c) => {
                for a in &c.args.args {
                    collect(a, out);
                }
            }
            _ => {}
        }
    }
    let parsed = promql_parser::parser::parse(expr).ok()?;
    let mut candidates = Vec::new();
    collect(&parsed, &mut candidates);
    candidates.sort_by_key(String::len);
    candidates.dedup();
    candidates
        .into_iter()
        .filter(|c| c.len() < expr.len())
        .take(40)
        .find_map(|c| disagrees(dir, series, &c, at).map(|why| (c, why)))
}

fn series_text(series: &[InputSeries]) -> String {
    series
        .iter()
        .map(|s| format!("  {} {}\n", s.series, s.values))
        .collect()
}

/// How many cases a seed ran, and how many of them our engine refused or answered with nothing.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    cases: usize,
    errors: usize,
    empty: usize,
}

/// One seed: generate, answer, run promtool, and describe every disagreement.
fn run_seed(dir: &std::path::Path, seed: u64, batch: usize) -> (Stats, Vec<String>) {
    let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed, false);
    let series = random_series(&mut rng);
    let mut seen = BTreeSet::new();
    let mut exprs = Vec::new();
    while exprs.len() < batch {
        let expr = match rng.below(25) {
            0..=2 => scalar(&mut rng, 0),
            3 => mistake(&mut rng),
            _ => vector(&mut rng, 0),
        };
        let at = format!(
            "{}m{}s",
            rng.below(LAST_MINUTE - 6) + 5,
            rng.pick(&["10", "30", "30", "50"])
        );
        if seen.insert((expr.clone(), at.clone())) {
            exprs.push((expr, at));
        }
    }
    let cases = cases_for(seed, &series, exprs);
    let (failures, _) = promtool_failures(dir, &series, &cases);
    if std::env::var_os("PROMQL_DIFF_KEEP").is_some() {
        let keep = std::path::Path::new(&std::env::var_os("PROMQL_DIFF_KEEP").expect("set"))
            .join(format!("seed{seed}.test.yml"));
        std::fs::copy(dir.join("diff.test.yml"), &keep).expect("keeping the test file");
    }
    let mut problems = Vec::new();
    for case in &cases {
        if let Some(why) = disagreement(case, &failures) {
            let reduced = reduce(dir, &series, case);
            let smaller = match smallest_disagreeing(dir, &reduced, &case.expr, &case.eval_time) {
                Some((expr, why)) => format!("\nthe smallest part that disagrees: {expr}\n{why}"),
                None => String::new(),
            };
            problems.push(format!(
                "{}: expr {} at {}\n{why}\nseries:\n{}reduced to:\n{}{smaller}",
                case.origin,
                case.expr,
                case.eval_time,
                series_text(&series),
                series_text(&reduced)
            ));
        }
    }
    let stats = Stats {
        cases: cases.len(),
        errors: cases.iter().filter(|c| c.answer.is_err()).count(),
        empty: cases
            .iter()
            .filter(|c| matches!(&c.answer, Ok(s) if s.is_empty()))
            .count(),
    };
    (stats, problems)
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?}: want a whole number"))
    })
}

#[test]
fn engine_agrees_with_promtool() {
    if !support::available("engine_agrees_with_promtool", &[&support::PROMTOOL]) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let batch = env_number("PROMQL_DIFF_BATCH").map_or(BATCH, |b| b.max(1) as usize);
    let first = env_number("PROMQL_DIFF_SEED").unwrap_or(0);
    let seeds = match (
        env_number("PROMQL_DIFF_CASES"),
        env_number("PROMQL_DIFF_SEED"),
    ) {
        (Some(n), _) => n.div_ceil(batch as u64).max(1),
        (None, Some(_)) => 1,
        (None, None) => 20,
    };
    let mut total = Stats::default();
    let mut errors = 0;
    let mut problems = Vec::new();
    let mut last = first;
    for seed in first..first + seeds {
        last = seed;
        let (n, p) = run_seed(dir.path(), seed, batch);
        total.cases += n.cases;
        total.errors += n.errors;
        total.empty += n.empty;
        errors += p.len();
        problems.extend(p);
        if problems.len() >= 5 {
            break;
        }
    }
    let _ = writeln!(
        std::io::stderr(),
        "promql_differential: {} cases over seeds {first}..={last} ({} errors, {} empty), {errors} disagreements",
        total.cases,
        total.errors,
        total.empty
    );
    assert!(
        problems.is_empty(),
        "{} disagreement(s) with promtool (rerun one with PROMQL_DIFF_SEED=S):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}
