//! Routing against the real `amtool config routes test`: `tradewatch notify routes test` must
//! print the same bytes and exit with the same code on the fixtures, and our routing must give
//! the same receivers and `--tree` output as amtool on a few hundred generated route trees and
//! label sets (seeded, so a failure replays).

mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use tradewatch::notify::config::AlertmanagerConfig;
use tradewatch::notify::route::routes_test;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/notify");

/// `amtool` (Debian's `prometheus-alertmanager`).
const AMTOOL: support::Needs = support::Needs {
    what: "amtool",
    probe: &["amtool", "--version"],
    install: "apt-get install prometheus-alertmanager",
};

/// amtool's stdout and exit code for `config routes test` on `file`.
fn amtool(file: &Path, args: &[&str]) -> (String, i32) {
    let out = Command::new("amtool")
        .args(["config", "routes", "test"])
        .arg(format!("--config.file={}", file.display()))
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// Our binary's stdout and exit code for `notify routes test` on `file`.
fn ours(file: &Path, args: &[&str]) -> (String, i32) {
    let out = Command::new(support::BIN)
        .args(["notify", "routes", "test", "--config"])
        .arg(file)
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn the_binary_prints_what_amtool_prints_on_the_fixtures() {
    if !support::available("routes_test_fixtures", &[&AMTOOL]) {
        return;
    }
    let trading = Path::new(DIR).join("valid/trading.yml");
    let continued = Path::new(DIR).join("valid/continue_and_defaults.yml");
    let cases: &[(&Path, &[&str])] = &[
        (&trading, &["severity=critical"]),
        (
            &trading,
            &["--tree", "severity=critical", "alertname=TradingKillSwitch"],
        ),
        (
            &trading,
            &["--tree", "severity=warning", "strategy=carry", "venue=cme"],
        ),
        (
            &trading,
            &["--tree", "severity=warning", "strategy=carry", "venue=lse"],
        ),
        (&trading, &["team=momentum", "venue=binance"]),
        (&trading, &["--tree", "venue=coinbase"]),
        (&trading, &["--tree"]),
        (&trading, &["env=test", "severity=info"]),
        (
            &trading,
            &[
                "--verify.receivers=trader-email,desk-phone",
                "severity=critical",
                "alertname=TradingDailyLossLimit",
            ],
        ),
        (
            &trading,
            &["--verify.receivers=ops-webhook", "severity=critical"],
        ),
        (
            &trading,
            &["--tree", "--verify.receivers=nobody", "team=momentum"],
        ),
        (
            &trading,
            &["severity=\"critical\"", "alertname = \"TradingKillSwitch\""],
        ),
        (&trading, &["severity!=critical"]),
        (&trading, &["not a label"]),
        (&continued, &["--tree", "x=1", "y=1"]),
        (&continued, &["--tree", "x=2", "y=2"]),
        (&continued, &["--tree", "x=1"]),
        (&continued, &["x=3"]),
    ];
    for (file, args) in cases {
        assert_eq!(
            ours(file, args),
            amtool(file, args),
            "{} {args:?}",
            file.display()
        );
    }
    // The inline form routes as the same configuration in a file of its own.
    let inline = Path::new(DIR).join("tradewatch_inline.yaml");
    let value: serde_json::Value =
        yaml_serde::from_str(&std::fs::read_to_string(&inline).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let extracted = dir.path().join("alertmanager.yml");
    std::fs::write(
        &extracted,
        yaml_serde::to_string(&value["notifier"]["config"]).unwrap(),
    )
    .unwrap();
    for args in [&["--tree", "severity=critical"][..], &["severity=info"][..]] {
        assert_eq!(ours(&inline, args), amtool(&extracted, args), "{args:?}");
    }
    // A tradewatch configuration routes as the Alertmanager file it points at.
    let tradewatch = Path::new(DIR).join("tradewatch_file.yaml");
    let args = ["--tree", "severity=critical", "alertname=TradingKillSwitch"];
    assert_eq!(ours(&tradewatch, &args), amtool(&trading, &args));
}

/// A small deterministic generator (64-bit LCG), so failures replay from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const NAMES: [&str; 3] = ["a", "b", "c"];
const VALUES: [&str; 7] = ["x", "y", "z", "", "5", "é", "X"];
/// Plain regexes, and some whose meaning differs between Go and Rust's defaults (ASCII `\d`
/// and `\w` in Go, POSIX classes, case folding).
const REGEXES: [&str; 10] = [
    "x|y",
    "x.*",
    ".*",
    "[xz]",
    "y?",
    "\\d",
    "\\w+",
    "[[:alpha:]]+",
    "(?i)x",
    "[^\\W]",
];

fn matcher(rng: &mut Rng) -> String {
    let name = rng.pick(&NAMES);
    match rng.below(4) {
        0 => format!("{name}=\"{}\"", rng.pick(&VALUES)),
        1 => format!("{name}!=\"{}\"", rng.pick(&VALUES)),
        2 => format!("{name}=~\"{}\"", rng.pick(&REGEXES)),
        _ => format!("{name}!~\"{}\"", rng.pick(&REGEXES)),
    }
}

/// Writes a route node (not the root) with random matchers, continue and children.
fn route(rng: &mut Rng, depth: usize, indent: &str, receivers: &mut usize, out: &mut String) {
    let _ = writeln!(out, "{indent}- receiver: r{}", *receivers);
    *receivers += 1;
    let inner = format!("{indent}  ");
    match rng.below(3) {
        0 => {}
        1 => {
            let ms: Vec<String> = (0..1 + rng.below(2)).map(|_| matcher(rng)).collect();
            let quoted: Vec<String> = ms.iter().map(|m| format!("'{m}'")).collect();
            let _ = writeln!(out, "{inner}matchers: [{}]", quoted.join(", "));
        }
        _ => {
            let name = rng.pick(&NAMES);
            if rng.below(2) == 0 {
                let _ = writeln!(out, "{inner}match: {{{name}: '{}'}}", rng.pick(&VALUES));
            } else {
                let _ = writeln!(out, "{inner}match_re: {{{name}: '{}'}}", rng.pick(&REGEXES));
            }
        }
    }
    if rng.below(3) == 0 {
        let _ = writeln!(out, "{inner}continue: true");
    }
    if depth < 3 && rng.below(2) == 0 {
        let _ = writeln!(out, "{inner}routes:");
        for _ in 0..1 + rng.below(3) {
            route(rng, depth + 1, &format!("{inner}  "), receivers, out);
        }
    }
}

fn tree(rng: &mut Rng) -> String {
    let mut body = String::new();
    let mut receivers = 1;
    for _ in 0..1 + rng.below(4) {
        route(rng, 1, "    ", &mut receivers, &mut body);
    }
    let mut out = String::from("route:\n  receiver: r0\n  routes:\n");
    out.push_str(&body);
    out.push_str("receivers:\n");
    for i in 0..receivers {
        let _ = writeln!(out, "  - name: r{i}");
    }
    out
}

fn labels(rng: &mut Rng) -> Vec<String> {
    let mut out = Vec::new();
    for name in NAMES {
        if rng.below(3) != 0 {
            out.push(format!("{name}={}", rng.pick(&VALUES)));
        }
    }
    out
}

#[test]
fn generated_trees_route_as_amtool_routes_them() {
    if !support::available("routes_test_generated", &[&AMTOOL]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x7472_6164_6577_6174);
    let mut cases = 0;
    for n in 0..150 {
        let text = tree(&mut rng);
        let file: PathBuf = dir.path().join(format!("tree{n}.yml"));
        std::fs::write(&file, &text).unwrap();
        let config = AlertmanagerConfig::load(&file)
            .unwrap_or_else(|e| panic!("generated tree {n} does not load: {e}\n{text}"));
        for _ in 0..2 {
            let labels = labels(&mut rng);
            let tree = rng.below(2) == 0;
            let mut args: Vec<&str> = labels.iter().map(String::as_str).collect();
            if tree {
                args.insert(0, "--tree");
            }
            let (expected, code) = amtool(&file, &args);
            let (got, our_code) = routes_test(&config.route, &labels, tree, None).unwrap();
            assert_eq!(
                (got, i32::from(our_code)),
                (expected, code),
                "tree {n}, labels {labels:?}:\n{text}"
            );
            cases += 1;
        }
    }
    assert_eq!(cases, 300);
}
