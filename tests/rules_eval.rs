//! Evaluating a rule group against the in-memory store: recording results are visible to later
//! rules in the group, alerts advance, `ALERTS` and `ALERTS_FOR_STATE` can be queried, errors
//! are per rule. Time is a parameter.

use std::time::Duration;

use tradewatch::alerts::{AlertState, Transition};
use tradewatch::model::labels::Labels;
use tradewatch::promql::{Engine, Value};
use tradewatch::rules::{GroupState, RuleFile, TemplateEnv, compile};
use tradewatch::store::Store;

const MIN: i64 = 60_000;

const RULES: &str = r#"
groups:
  - name: risk
    interval: 1m
    rules:
      - record: strategy:trading_pnl:sum
        expr: sum by (strategy) (trading_pnl)
      - alert: TradingDailyLossLimitBreached
        expr: strategy:trading_pnl:sum < -1000
        for: 2m
        labels:
          severity: critical
      - record: bad:string
        expr: '"a string"'
"#;

fn query(store: &Store, expr: &str, t: i64) -> Vec<(String, f64)> {
    let expr = tradewatch::promql::parse(expr).unwrap();
    match Engine::default().instant(store, &expr, t).unwrap().value {
        Value::Vector(v) => {
            let mut out: Vec<(String, f64)> = v
                .into_iter()
                .map(|s| {
                    let labels: Vec<String> = s
                        .labels
                        .iter()
                        .map(|l| format!("{}={}", l.name, l.value))
                        .collect();
                    (labels.join(","), s.f)
                })
                .collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }
        other => panic!("want a vector, got {other:?}"),
    }
}

#[test]
fn a_group_records_alerts_and_writes_alerts_series() {
    let loaded = RuleFile::parse(RULES, "risk.yml").unwrap();
    let group = compile(&loaded, "risk.yml", Duration::from_secs(15)).remove(0);
    let store = Store::default();
    let engine = Engine::default();
    let env = TemplateEnv::default();
    let mut state = GroupState::default();
    let pnl =
        |strategy: &str| Labels::from_pairs([("__name__", "trading_pnl"), ("strategy", strategy)]);
    let mut transitions = Vec::new();
    for step in 0..=3 {
        let now = step * MIN;
        store.append(&pnl("momentum"), now, -1500.0).unwrap();
        store.append(&pnl("carry"), now, 200.0).unwrap();
        let evaluation = group.evaluate(&mut state, &engine, &store, now, &env);
        assert_eq!(
            evaluation.errors,
            [(2, "rule result is not a vector or scalar".to_owned())]
        );
        transitions.extend(
            evaluation
                .transitions
                .into_iter()
                .map(|(rule, _, t)| (now, rule, t)),
        );
    }
    assert_eq!(
        transitions,
        [
            (
                0,
                1,
                Transition {
                    from: AlertState::Inactive,
                    to: AlertState::Pending
                }
            ),
            (
                2 * MIN,
                1,
                Transition {
                    from: AlertState::Pending,
                    to: AlertState::Firing
                }
            ),
        ]
    );
    assert_eq!(
        query(&store, "strategy:trading_pnl:sum", 3 * MIN),
        [
            (
                "__name__=strategy:trading_pnl:sum,strategy=carry".to_owned(),
                200.0
            ),
            (
                "__name__=strategy:trading_pnl:sum,strategy=momentum".to_owned(),
                -1500.0
            ),
        ]
    );
    assert_eq!(
        query(&store, "ALERTS", 3 * MIN),
        [(
            "__name__=ALERTS,alertname=TradingDailyLossLimitBreached,alertstate=firing,severity=critical,strategy=momentum".to_owned(),
            1.0
        )]
    );
    assert_eq!(
        query(&store, "ALERTS_FOR_STATE", 3 * MIN),
        [(
            "__name__=ALERTS_FOR_STATE,alertname=TradingDailyLossLimitBreached,severity=critical,strategy=momentum".to_owned(),
            0.0
        )]
    );
    // The loss recovers: the alert resolves and its series go stale at once.
    store.append(&pnl("momentum"), 4 * MIN, 10.0).unwrap();
    store.append(&pnl("carry"), 4 * MIN, 200.0).unwrap();
    let evaluation = group.evaluate(&mut state, &engine, &store, 4 * MIN, &env);
    assert_eq!(
        evaluation
            .transitions
            .iter()
            .map(|(_, _, t)| *t)
            .collect::<Vec<_>>(),
        [Transition {
            from: AlertState::Firing,
            to: AlertState::Resolved
        }]
    );
    assert_eq!(query(&store, "ALERTS", 4 * MIN), []);
    assert_eq!(query(&store, "ALERTS_FOR_STATE", 4 * MIN), []);
}

#[test]
fn query_offset_shifts_the_query_time() {
    let text = "groups:\n  - name: g\n    query_offset: 1m\n    rules:\n      - record: x:copy\n        expr: x\n";
    let loaded = RuleFile::parse(text, "g.yml").unwrap();
    let group = compile(&loaded, "g.yml", Duration::from_secs(60)).remove(0);
    let store = Store::default();
    let x = Labels::from_pairs([("__name__", "x")]);
    store.append(&x, 0, 1.0).unwrap();
    store.append(&x, MIN, 2.0).unwrap();
    let evaluation = group.evaluate(
        &mut GroupState::default(),
        &Engine::default(),
        &store,
        MIN,
        &TemplateEnv::default(),
    );
    assert!(evaluation.errors.is_empty(), "{:?}", evaluation.errors);
    // Evaluated at 0 (one minute back): the value then, written at that time.
    assert_eq!(
        query(&store, "x:copy", 0),
        [("__name__=x:copy".to_owned(), 1.0)]
    );
}
