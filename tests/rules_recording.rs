//! Recording rules applied to query results: renaming, labels, collisions, limits.

use std::time::Duration;

use tradewatch::model::labels::Labels;
use tradewatch::promql::InstantSample;
use tradewatch::rules::{CompiledRule, RecordingError, RecordingRule, RuleFile, compile};

fn rule(text: &str) -> RecordingRule {
    let loaded = RuleFile::parse(text, "test.yml").unwrap();
    let mut groups = compile(&loaded, "test.yml", Duration::from_secs(60));
    match groups.remove(0).rules.remove(0) {
        CompiledRule::Recording(rule) => rule,
        CompiledRule::Alerting(_) => panic!("want a recording rule"),
    }
}

fn sample(pairs: &[(&str, &str)], f: f64) -> InstantSample {
    InstantSample {
        labels: Labels::from_pairs(pairs.iter().copied()),
        t: 5_000,
        f,
    }
}

const RULE: &str = r#"
groups:
  - name: g
    rules:
      - record: venue:trading_orders:rate5m
        expr: sum by (venue, job) (rate(trading_orders_total[5m]))
        labels:
          source: rules
          job: ''
"#;

#[test]
fn samples_are_renamed_and_labelled() {
    let out = rule(RULE)
        .apply(
            &[sample(&[("venue", "binance"), ("job", "engine")], 2.5)],
            0,
        )
        .unwrap();
    assert_eq!(
        out,
        [InstantSample {
            labels: Labels::from_pairs([
                ("__name__", "venue:trading_orders:rate5m"),
                ("source", "rules"),
                ("venue", "binance"),
            ]),
            t: 5_000,
            f: 2.5,
        }],
        "an empty rule label removes the label"
    );
}

#[test]
fn collisions_and_limits_fail() {
    let rule = rule(RULE);
    let samples = [
        sample(&[("venue", "a"), ("job", "x")], 1.0),
        sample(&[("venue", "a"), ("job", "y")], 1.0),
    ];
    let error = rule.apply(&samples, 0).unwrap_err();
    assert_eq!(error, RecordingError::DuplicateLabels);
    assert_eq!(
        error.to_string(),
        "vector contains metrics with the same labelset after applying rule labels"
    );
    let samples = [
        sample(&[("venue", "a")], 1.0),
        sample(&[("venue", "b")], 1.0),
    ];
    assert_eq!(
        rule.apply(&samples, 1).unwrap_err().to_string(),
        "exceeded limit of 1 with 2 series"
    );
    assert_eq!(rule.apply(&samples, 2).unwrap().len(), 2);
}
