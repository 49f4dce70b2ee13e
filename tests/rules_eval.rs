//! Evaluating a rule group against the in-memory store: recording results are visible to later
//! rules in the group, alerts advance, `ALERTS` and `ALERTS_FOR_STATE` can be queried, errors
//! are per rule. Time is a parameter.

use std::time::Duration;

use tradewatch::alerts::{AlertState, Transition};
use tradewatch::model::labels::Labels;
use tradewatch::promql::{Engine, Expr, Value};
use tradewatch::rules::{Evaluate, GroupState, Local, RuleFile, TemplateEnv, compile};
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

/// The engine as a source that does not run queries at once: rules are queried one by one.
struct OneByOne<'a>(Local<'a>);

impl Evaluate for OneByOne<'_> {
    fn instant(&self, expr: &Expr, source: &str, at_ms: i64) -> Result<Value, String> {
        self.0.instant(expr, source, at_ms)
    }
}

#[test]
fn rules_queried_at_once_give_what_rules_queried_in_turn_give() {
    let text = r#"
groups:
  - name: latency
    rules:
      - alert: P99
        expr: histogram_quantile(0.99, sum by (le, venue) (rate(lat_bucket[1m]))) > 0.02
      - alert: P50
        expr: histogram_quantile(0.5, sum by (le, venue) (rate(lat_bucket[1m]))) > 0.01
      - alert: PerSeries
        expr: histogram_quantile(0.9, rate(lat_bucket[1m])) > 0.01
      - alert: Fast
        expr: sum by (venue) (rate(lat_bucket{le="0.01"}[1m])) / sum by (venue) (rate(lat_bucket{le="+Inf"}[1m])) < 2
      - alert: Broken
        expr: rate(lat_bucket[1m]) + on (le) rate(lat_bucket[1m])
"#;
    let loaded = RuleFile::parse(text, "l.yml").unwrap();
    let group = compile(&loaded, "l.yml", Duration::from_secs(15)).remove(0);
    assert!(group.independent, "no rule reads what the group writes");
    assert!(
        group.shared_slots >= 2,
        "the quantiles share their sums and rates"
    );
    let store = Store::default();
    for (i, venue) in ["a", "b", "c"].iter().enumerate() {
        for (j, le) in ["0.005", "0.01", "0.025", "+Inf"].iter().enumerate() {
            let l = Labels::from_pairs([
                ("__name__", "lat_bucket"),
                ("venue", venue),
                ("host", &format!("h{i}")),
                ("le", le),
            ]);
            for t in 0..10 {
                let v = (t * (j as i64 + 1) * (i as i64 + 2)) as f64;
                store.append(&l, t * 15_000, v).unwrap();
            }
        }
    }
    let engine = Engine::default();
    let env = TemplateEnv::default();
    let (mut at_once, mut in_turn) = (GroupState::default(), GroupState::default());
    for step in 0..3 {
        let now = 120_000 + step * 15_000;
        let a = group.evaluate(&mut at_once, &engine, &store, now, &env);
        let b = group.evaluate_on(
            &mut in_turn,
            &OneByOne(Local {
                engine: &engine,
                store: &store,
            }),
            &store,
            now,
            &env,
            false,
        );
        assert_eq!(a.transitions, b.transitions);
        assert_eq!(a.errors, b.errors);
        assert_eq!(a.errors.len(), 1, "many-to-many matching fails alone");
        assert!(!a.transitions.is_empty() || step > 0);
    }
    assert_eq!(at_once.alerts, in_turn.alerts);

    // A rule reading what an earlier rule records waits for it: no queries at once.
    let text = r#"
groups:
  - name: g
    rules:
      - record: venue:lat:rate1m
        expr: sum by (venue) (rate(lat_bucket[1m]))
      - alert: Slow
        expr: venue:lat:rate1m > 1
"#;
    let loaded = RuleFile::parse(text, "g.yml").unwrap();
    assert!(!compile(&loaded, "g.yml", Duration::from_secs(15))[0].independent);
}
