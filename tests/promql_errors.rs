//! Malformed PromQL as real users write it: tradewatch must reject every expression of the corpus
//! with a message and a `line:column` as useful as the real `promtool check rules` (Debian's
//! Prometheus 2.42) gives for the same expression.
//!
//! Every expression goes in its own rule file (promtool stops at a file's first error) and one
//! promtool run checks them all, as does one `tradewatch rules check` run (which must print what
//! the library says). For each: both reject; ours carries a position, the same as
//! promtool's unless the expression is in [`POSITION_DIFFERS`]; ours names the problem (never
//! promql-parser's bare "invalid promql query"), in promtool's words unless the expression is in
//! [`MESSAGE_DIFFERS`]. The agreement figures are printed.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;

use tradewatch::promql::{Position, parse};

/// The corpus: the common mistakes, by kind.
const CORPUS: &[&str] = &[
    // Unbalanced parentheses, brackets and braces.
    "sum(rate(x[5m])",
    "sum(rate(x[5m])))",
    "rate(x[5m)",
    "rate(x[5m]]",
    "x{a=\"b\"",
    "x}",
    "(x + y",
    "x + y)",
    "sum by (job (x)",
    "rate(x{job=\"a\"[5m])",
    "x]",
    "(",
    // Missing operands.
    "x +",
    "+",
    "* x",
    "x + * y",
    "x and",
    "sum()",
    "rate()",
    "x ==",
    "x y",
    // Durations.
    "rate(x[5x])",
    "rate(x[])",
    "rate(x[5m:1h:])",
    "x[5m",
    "rate(x[1.5m])",
    "x[0s]",
    "max_over_time(x[5m:0s])",
    // Matchers.
    "x{a=b}",
    "x{a~\"x\"}",
    "x{a=}",
    "x{=\"b\"}",
    "x{a=\"b\" b=\"c\"}",
    "{}",
    "{a=~\".*\"}",
    "x{a=~\"(\"}",
    "x{a!~\"[z-a]\"}",
    "x{a==\"b\"}",
    // Functions.
    "rat(x[5m])",
    "foo(x)",
    "rate(x)",
    "rate(x[5m], 1)",
    "sum(rate(x[5m]), 1)",
    "histogram_quantile(x)",
    "histogram_quantile(0.9, rate(x[5m])",
    "abs(\"x\")",
    "label_replace(x, \"a\", \"b\", \"c\")",
    "round(x, y)",
    "rate(sum(x)[5m])",
    "increase(x[5m] offset)",
    "time(1)",
    "absent_over_time(x)",
    "clamp(x, 1)",
    "rate(x[5m],)",
    // Range vector where an instant vector is expected, and the reverse.
    "x[5m] + 1",
    "sum(x[5m])",
    "x[5m] > 0",
    "abs(x[5m])",
    "-x[5m]",
    "(x)[5m]",
    "sum(x)[5m]",
    "x offset 5m[5m]",
    // Aggregations and `by`.
    "sum(x) by",
    "sum(x) by job",
    "sum by(job) by (job) (x)",
    "by (job) sum(x)",
    "sum(x) by (job) without (a)",
    "sum(x) by (job,,)",
    "topk(x)",
    "topk(x, 5)",
    "quantile(x)",
    "count_values(x, y)",
    "sum x",
    "sum(x, y)",
    // Offset and @.
    "x offset",
    "x offset -",
    "offset 5m x",
    "x offset 5m offset 1m",
    "x @ foo",
    "x @ 1 @ 2",
    "rate(x[5m]) offset 5m[1m]",
    // Number literals.
    "1.2.3",
    "0x",
    "1e",
    "x > 1.2.3",
    "0x1g",
    // Strings.
    "\"x\" + 1",
    "sum(\"x\")",
    "x == \"y\"",
    "\"a\" \"b\"",
    "x{a=\"b}",
    "label_join(x, \"a\", \"-\", \"b)",
    "'abc",
    "`abc",
    "x{a=\"\\q\"}",
    // Regexes.
    "x{a=~\"*\"}",
    "x{a=~\"a(?<n>b\"}",
    // bool, set operators and vector matching.
    "x + bool y",
    "x and bool y",
    "1 > 2",
    "x group_left y",
    "x * group_left on (a) y",
    "x * on (a) group_left y z",
    "x and on(a) group_left y",
    "x or 1",
    "1 and x",
    "x * on a y",
    "x * ignoring(a) on(b) y",
    "x * on(a) group_left(b) group_right y",
    // Odd characters and keywords.
    "x # comment only\n+",
    "x ! y",
    "x ~= y",
    "x & y",
    "x || y",
    "x $ y",
    "on(a) x",
    "x;",
    "sum(x) without",
    "bool x",
    // More of the same, in combination.
    "sum without (a) by (b) (x)",
    "x * on(a) group_left(a) y",
    "x offset 1m offset 2m",
    "x @ start(",
    "x[5m:1m",
    "x[5m:1m)",
    "count_values(\"a\")",
    "quantile(0.5)",
    "x{a=\"b\"}{c=\"d\"}",
    "x{a=\"b\",,}",
    "x{a!b}",
    "abs(x) abs(y)",
    "1 + (2",
    "x[5m][5m]",
    "sum(x) by (a) by (b)",
    "vector(\"a\")",
    "scalar(x[5m])",
    "time() + bool 1",
    "x unless on(a) group_right y",
    "-\"a\"",
    "max_over_time(rate(x[5m])[1h])",
    "count_values(\"v\", x[5m])",
    "histogram_quantile(0.9 rate(x[5m]))",
    "x > 0 )",
    "((x)",
    "x / on (job) group_left (team y",
    "rate(x[5m]) # per second\n  +",
    "round(x, 1, 2)",
    "label_join(x, \"a\")",
    "day_of_week(x, y)",
    "x{__name__=\"y\"}",
    "{a=\"\"}",
    "sum(x) by (a-b)",
    "x and 1",
    "x @ 1 offset 1m [5m]",
    // Several lines.
    "sum(\n  rate(x[5m])\n) by",
    "sum by (job) (\n  rate(x[5m])\n  +\n)",
    "rate(\n  x\n)",
    "sum by (job) (\n  # requests per second\n  rate(x[5m]) +\n  # errors\n)",
    // Not ASCII.
    "x{a=\"é\"} +",
];

/// Expressions Prometheus 2.42 rejects and promql-parser, following Prometheus 3, accepts (and so
/// tradewatch): a range or offset as a number of seconds, a duration as a number, quoted label
/// names.
const ACCEPTED_SINCE_2_42: &[&str] = &[
    "rate(x[5])",
    "x offset 5",
    "5m",
    "x{\"a\"=\"b\"}",
    "sum(x) by (\"job\")",
];

/// Expressions where our position intentionally differs from promtool's, and why.
const POSITION_DIFFERS: &[(&str, &str)] = &[(
    "x{a=\"é\"} +",
    "columns count characters (what an editor shows), Prometheus counts bytes: 1:11, not 1:12",
)];

/// Expressions where our message intentionally differs from promtool's (beyond the position),
/// and why.
const MESSAGE_DIFFERS: &[(&str, &str)] = &[(
    "x{a=~\"a(?<n>b\"}",
    "Go's regexp before 1.22 knows no `(?<name>` group and says so; Rust's regex knows it and \
     finds the group unclosed",
)];

/// One expression's verdict: `line:col` and message, or `None` when it parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Verdict {
    position: Option<(usize, usize)>,
    message: String,
}

fn ours(expr: &str) -> Option<Verdict> {
    let e = parse(expr).err()?;
    Some(Verdict {
        position: e.position.map(|Position { line, column }| (line, column)),
        message: e.message,
    })
}

/// A rule file holding `expr` as a YAML block scalar, so that it reaches the parser unchanged.
fn rule_file(expr: &str) -> String {
    let mut out =
        String::from("groups:\n  - name: g\n    rules:\n      - record: r\n        expr: |-\n");
    for line in expr.split('\n') {
        let _ = writeln!(out, "          {line}");
    }
    out
}

/// The verdict per file name of `program check rules` (`promtool check rules` or
/// `tradewatch rules check`), from its lines
/// `NAME: l:c: group "g", rule 1, "r": could not parse expression: L:C: parse error: MESSAGE`
/// (tradewatch writes `NAME:l:c:`).
fn check_rules_verdicts(
    program: &str,
    check: &[&str],
    dir: &std::path::Path,
    names: &[String],
) -> BTreeMap<String, Verdict> {
    let out = Command::new(program)
        .args(check)
        .args(names)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap();
    let line_re = regex::Regex::new(
        r"^(e\d+\.yml): ?\d+:\d+: .*?could not parse expression: (?:(\d+):(\d+): )?parse error: (.*)$",
    )
    .unwrap();
    let mut verdicts = BTreeMap::new();
    for line in text.lines() {
        let Some(c) = line_re.captures(line) else {
            continue;
        };
        let position = c
            .get(2)
            .map(|l| (l.as_str().parse().unwrap(), c[3].parse().unwrap()));
        verdicts.entry(c[1].to_owned()).or_insert(Verdict {
            position,
            message: c[4].to_owned(),
        });
    }
    verdicts
}

#[test]
fn corpus_is_rejected_with_a_position_and_a_specific_message() {
    let mut failures = Vec::new();
    for expr in CORPUS {
        match ours(expr) {
            None => failures.push(format!("{expr:?}: accepted")),
            Some(v) if v.position.is_none() => failures.push(format!("{expr:?}: no position")),
            Some(v) if v.message.contains("invalid promql query") => {
                failures.push(format!("{expr:?}: {}", v.message))
            }
            Some(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_empty_expression_is_refused_at_its_start() {
    let v = ours("").unwrap();
    assert_eq!(
        (v.position, v.message.as_str()),
        (Some((1, 1)), "no expression found in input")
    );
}

#[test]
fn corpus_agrees_with_promtool() {
    if !support::available("corpus_agrees_with_promtool", &[&support::PROMTOOL]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<&str> = CORPUS.iter().chain(ACCEPTED_SINCE_2_42).copied().collect();
    let names: Vec<String> = (0..all.len()).map(|i| format!("e{i}.yml")).collect();
    for (name, expr) in names.iter().zip(&all) {
        std::fs::write(dir.path().join(name), rule_file(expr)).unwrap();
    }
    let theirs = check_rules_verdicts("promtool", &["check", "rules"], dir.path(), &names);
    let our_cli = check_rules_verdicts(support::BIN, &["rules", "check"], dir.path(), &names);
    for (name, expr) in names.iter().zip(&all).skip(CORPUS.len()) {
        assert!(theirs.contains_key(name), "promtool 2.42 accepts {expr:?}");
        assert_eq!(ours(expr), None, "{expr:?}");
    }
    let (mut with_position, mut same_position, mut same_message) = (0, 0, 0);
    let mut failures = Vec::new();
    let mut table = String::new();
    for (name, expr) in names.iter().zip(CORPUS) {
        let Some(their) = theirs.get(name) else {
            failures.push(format!(
                "{expr:?}: promtool accepts it (or its output did not parse)"
            ));
            continue;
        };
        let Some(our) = ours(expr) else {
            failures.push(format!("{expr:?}: accepted, promtool says {their:?}"));
            continue;
        };
        if our_cli.get(name) != Some(&our) {
            failures.push(format!(
                "{expr:?}: tradewatch rules check says {:?}, the library {our:?}",
                our_cli.get(name)
            ));
        }
        with_position += usize::from(our.position.is_some());
        let position_agrees = our.position == their.position;
        same_position += usize::from(position_agrees);
        let message_agrees = our.message == their.message;
        same_message += usize::from(message_agrees);
        let show = |v: &Verdict| {
            let (l, c) = v.position.unwrap_or_default();
            format!("{l}:{c}: {}", v.message)
        };
        let _ = writeln!(
            table,
            "{} {} {expr:?}\n    promtool:   {}\n    tradewatch: {}",
            if position_agrees { "=" } else { "!" },
            if message_agrees { "=" } else { "!" },
            show(their),
            show(&our)
        );
        if their.position.is_some() && our.position.is_none() {
            failures.push(format!("{expr:?}: no position, promtool {their:?}"));
        } else if !position_agrees && !POSITION_DIFFERS.iter().any(|(e, _)| e == expr) {
            failures.push(format!("{expr:?}: position {our:?}, promtool {their:?}"));
        }
        if our.message.contains("invalid promql query") {
            failures.push(format!("{expr:?}: unspecific message, promtool {their:?}"));
        } else if !message_agrees && !MESSAGE_DIFFERS.iter().any(|(e, _)| e == expr) {
            failures.push(format!("{expr:?}: message {our:?}, promtool {their:?}"));
        }
    }
    let n = CORPUS.len();
    let _ = std::io::Write::write_fmt(
        &mut std::io::stderr(),
        format_args!(
            "{table}promql_errors: {n} expressions; tradewatch gives a position for {with_position}, \
         promtool's position for {same_position}, promtool's message for {same_message}\n"
        ),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Valid expressions the mutation test starts from.
const SEEDS: &[&str] = &[
    r#"sum by (job) (rate(http_requests_total{code=~"5.."}[5m])) / sum by (job) (rate(http_requests_total[5m])) > 0.05"#,
    "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))",
    "x * on (a) group_left (b) y",
    "max_over_time(deriv(x[5m])[1h:1m]) offset 5m",
    r#"label_replace(up{job="a"}, "host", "$1", "instance", "(.*):.*")"#,
    "topk(3, sum without (instance) (x)) unless on (job) y",
    r#"absent(up{job="x"} == 1) or vector(0)"#,
    r#"count_values("version", build_info) > bool 1"#,
    "clamp_min(x - x offset 1d, 0) @ 1000",
    "-x ^ 2 % 3 atan2 y",
    "avg_over_time(x[10m] @ end()) and x",
];

/// Tokens the mutation test inserts or substitutes.
const ALPHABET: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    "=",
    "=~",
    "!=",
    "by",
    "without",
    "on",
    "ignoring",
    "offset",
    "@",
    "+",
    "-",
    "*",
    "/",
    "==",
    ">",
    "and",
    "or",
    "bool",
    "sum",
    "topk",
    "rate",
    "abs",
    "x",
    "job",
    "group_left",
    "group_right",
    ":",
    "#",
    "5m",
    "1",
    "\"a\"",
];

/// A small seeded generator (xorshift64*), so that a failure names the seed that reproduces it.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// One token deleted, inserted, replaced, or two swapped, in a seed expression.
fn mutation(rng: &mut Rng) -> String {
    let token = regex::Regex::new(
        r#""[^"]*"|[A-Za-z_:][A-Za-z0-9_:]*|\d+[a-z]*|\.\d+|==|!=|=~|!~|>=|<=|\S"#,
    )
    .unwrap();
    let seed = SEEDS[rng.below(SEEDS.len())];
    let mut t: Vec<&str> = token.find_iter(seed).map(|m| m.as_str()).collect();
    let i = rng.below(t.len());
    match rng.below(4) {
        0 => {
            t.remove(i);
        }
        1 => t.insert(i, ALPHABET[rng.below(ALPHABET.len())]),
        2 => t[i] = ALPHABET[rng.below(ALPHABET.len())],
        _ => {
            let j = rng.below(t.len());
            t.swap(i, j);
        }
    }
    t.join(" ")
}

/// Random one-token mistakes in valid expressions, read as Prometheus 2.42 reads them (without
/// Prometheus 3's additions), against `promtool check rules`: the same verdict, and for each
/// refused one the same position and message. `PROMQL_MUTATIONS=N` sets how many (300),
/// `PROMQL_MUTATIONS_SEED=S` the seed (printed). One difference is kept: promtool 2.42 names the
/// `@` token `"<Item 57385>" <op:@>`, a slip of its token table, where tradewatch says `<op:@>`.
#[test]
fn mutations_agree_with_promtool_2_42() {
    if !support::available("mutations_agree_with_promtool_2_42", &[&support::PROMTOOL]) {
        return;
    }
    let count: usize = std::env::var("PROMQL_MUTATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let seed: u64 = std::env::var("PROMQL_MUTATIONS_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
        .max(1);
    let mut rng = Rng(seed);
    let mut cases: Vec<String> = (0..count).map(|_| mutation(&mut rng)).collect();
    cases.sort();
    cases.dedup();
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..cases.len()).map(|i| format!("e{i}.yml")).collect();
    for (name, expr) in names.iter().zip(&cases) {
        std::fs::write(dir.path().join(name), rule_file(expr)).unwrap();
    }
    let theirs = check_rules_verdicts("promtool", &["check", "rules"], dir.path(), &names);
    let (mut refused, mut failures) = (0, Vec::new());
    for (name, expr) in names.iter().zip(&cases) {
        let ours =
            tradewatch::promql::diagnose_as_prometheus_2_42(expr).map(|(p, message)| Verdict {
                position: Some((p.line, p.column)),
                message,
            });
        let their = theirs.get(name).map(|v| Verdict {
            position: v.position,
            message: v.message.replace("\"<Item 57385>\" <op:@>", "<op:@>"),
        });
        refused += usize::from(their.is_some());
        if ours != their {
            failures.push(format!(
                "{expr:?}\n    promtool:   {their:?}\n    tradewatch: {ours:?}"
            ));
        }
    }
    let _ = std::io::Write::write_fmt(
        &mut std::io::stderr(),
        format_args!(
            "promql_errors: {} mutations (seed {seed}), {refused} refused by promtool, {} differ\n",
            cases.len(),
            failures.len()
        ),
    );
    assert!(
        failures.is_empty(),
        "seed {seed} (PROMQL_MUTATIONS_SEED={seed}):\n{}",
        failures.join("\n")
    );
}
