//! Compiling validated rule files into groups ready to evaluate.

use std::path::Path;
use std::time::Duration;

use tradewatch::rules::{CompiledRule, RuleFile, compile};

fn groups(name: &str) -> Vec<tradewatch::rules::Group> {
    let path = Path::new("tests/data/rules").join(name);
    let loaded = RuleFile::load(&path).unwrap();
    compile(&loaded, name, Duration::from_secs(15))
}

#[test]
fn groups_take_their_interval_or_the_default() {
    let groups = groups("valid.yml");
    let summary: Vec<_> = groups
        .iter()
        .map(|g| (g.name.as_str(), g.interval, g.limit, g.rules.len()))
        .collect();
    assert_eq!(
        summary,
        [
            ("trading", Duration::from_secs(30), 10, 2),
            ("trading-loss", Duration::from_secs(15), 0, 1),
        ]
    );
}

#[test]
fn alerting_rules_carry_durations_and_parsed_templates() {
    let groups = groups("valid.yml");
    let CompiledRule::Alerting(alert) = &groups[0].rules[1] else {
        panic!("want an alerting rule");
    };
    assert_eq!(alert.alert, "TradingKillSwitchActive");
    assert_eq!(
        (alert.hold, alert.keep_firing_for),
        (Duration::ZERO, Duration::from_secs(60))
    );
    let names: Vec<_> = alert.labels.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["severity", "strategy"]);
    assert!(
        alert
            .annotations
            .iter()
            .all(|(_, t)| t.parse_error().is_none())
    );
    assert_eq!(groups[0].rules[0].name(), "job:trading_orders:rate5m");
}

#[test]
fn group_labels_and_query_offset_apply() {
    let groups = groups("valid_3x.yml");
    assert_eq!(groups[0].query_offset, Duration::from_secs(30));
    let CompiledRule::Recording(rule) = &groups[0].rules[0] else {
        panic!("want a recording rule");
    };
    assert_eq!(rule.labels, [("team".to_owned(), "trading".to_owned())]);
}
