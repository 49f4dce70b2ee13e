//! Alerting rules applied to query results: identity after templating, annotations, state
//! transitions over evaluations, limits. Time is a parameter; nothing sleeps.

use std::time::Duration;

use tradewatch::alerts::{AlertState, Fingerprint, Transition};
use tradewatch::model::labels::Labels;
use tradewatch::promql::InstantSample;
use tradewatch::rules::{
    AlertingError, AlertingRule, CompiledRule, RuleAlerts, RuleFile, TemplateEnv, compile,
};

const MIN: i64 = 60_000;

fn rule(text: &str) -> AlertingRule {
    let loaded = RuleFile::parse(text, "test.yml").unwrap();
    let mut groups = compile(&loaded, "test.yml", Duration::from_secs(60));
    match groups.remove(0).rules.remove(0) {
        CompiledRule::Alerting(rule) => rule,
        CompiledRule::Recording(_) => panic!("want an alerting rule"),
    }
}

fn sample(pairs: &[(&str, &str)], f: f64) -> InstantSample {
    InstantSample {
        labels: Labels::from_pairs(pairs.iter().copied()),
        t: 0,
        f,
    }
}

const LOSS: &str = r#"
groups:
  - name: risk
    rules:
      - alert: TradingDailyLossLimitBreached
        expr: trading_daily_pnl < -1000
        for: 5m
        labels:
          severity: critical
          desk: '{{ $labels.desk }}'
        annotations:
          summary: 'Loss {{ $value }} on {{ $labels.strategy }}'
"#;

#[test]
fn identity_is_the_label_set_after_templating() {
    let rule = rule(LOSS);
    let mut alerts = RuleAlerts::new();
    let samples = [sample(
        &[("__name__", "trading_daily_pnl"), ("strategy", "momentum")],
        -1500.0,
    )];
    let transitions = rule
        .apply(&mut alerts, &samples, 0, 0, &TemplateEnv::default())
        .unwrap();
    assert_eq!(alerts.len(), 1);
    let (fingerprint, alert) = alerts.iter().next().unwrap();
    // `desk` rendered empty and is dropped; `__name__` is gone; `alertname` is set.
    let want = Labels::from_pairs([
        ("alertname", "TradingDailyLossLimitBreached"),
        ("severity", "critical"),
        ("strategy", "momentum"),
    ]);
    assert_eq!(alert.labels, want);
    assert_eq!(*fingerprint, Fingerprint::of(&want));
    assert_eq!(alert.annotations["summary"], "Loss -1500 on momentum");
    assert_eq!(
        transitions,
        [(
            *fingerprint,
            Transition {
                from: AlertState::Inactive,
                to: AlertState::Pending
            }
        )]
    );
}

#[test]
fn alerts_move_through_their_states_over_evaluations() {
    let rule = rule(LOSS);
    let env = TemplateEnv::default();
    let mut alerts = RuleAlerts::new();
    let a = sample(&[("strategy", "a")], -2000.0);
    let b = sample(&[("strategy", "b")], -3000.0);
    let states = |alerts: &RuleAlerts| -> Vec<AlertState> {
        alerts.values().map(|a| a.alert.state).collect()
    };
    rule.apply(&mut alerts, std::slice::from_ref(&a), 0, 0, &env)
        .unwrap();
    rule.apply(&mut alerts, &[a.clone(), b.clone()], 2 * MIN, 0, &env)
        .unwrap();
    assert_eq!(states(&alerts), [AlertState::Pending, AlertState::Pending]);
    let t = rule
        .apply(&mut alerts, &[a.clone(), b.clone()], 5 * MIN, 0, &env)
        .unwrap();
    assert_eq!(t.len(), 1, "only `a` has been pending for 5m");
    // `b` clears while pending (dropped), `a` clears while firing (resolved, kept).
    rule.apply(&mut alerts, &[], 6 * MIN, 0, &env).unwrap();
    assert_eq!(states(&alerts), [AlertState::Resolved]);
    let kept = alerts.values().next().unwrap();
    assert_eq!(kept.alert.resolved_at, Some(6 * MIN));
    assert_eq!(kept.annotations["summary"], "Loss -2000 on a");
}

#[test]
fn samples_that_collide_after_templating_are_an_error() {
    let rule = rule(LOSS);
    let samples = [
        sample(&[("__name__", "x"), ("strategy", "s")], -2000.0),
        sample(&[("__name__", "y"), ("strategy", "s")], -2000.0),
    ];
    let mut alerts = RuleAlerts::new();
    let error = rule
        .apply(&mut alerts, &samples, 0, 0, &TemplateEnv::default())
        .unwrap_err();
    assert_eq!(error, AlertingError::DuplicateLabels);
    assert_eq!(
        error.to_string(),
        "vector contains metrics with the same labelset after applying alert labels"
    );
}

#[test]
fn limit_drops_every_alert_of_the_rule() {
    let rule = rule(LOSS);
    let samples = [
        sample(&[("strategy", "a")], -2000.0),
        sample(&[("strategy", "b")], -2000.0),
    ];
    let mut alerts = RuleAlerts::new();
    let error = rule
        .apply(&mut alerts, &samples, 0, 1, &TemplateEnv::default())
        .unwrap_err();
    assert_eq!(error.to_string(), "exceeded limit of 1 with 2 alerts");
    assert!(alerts.is_empty());
    rule.apply(&mut alerts, &samples, 0, 2, &TemplateEnv::default())
        .unwrap();
    assert_eq!(alerts.len(), 2);
}

#[test]
fn a_failing_template_renders_prometheus_error_text() {
    let rule = rule(
        r#"
groups:
  - name: g
    rules:
      - alert: A
        expr: up == 0
        annotations:
          summary: '{{ query "up" }}'
"#,
    );
    let mut alerts = RuleAlerts::new();
    rule.apply(
        &mut alerts,
        &[sample(&[("job", "x")], 0.0)],
        0,
        0,
        &TemplateEnv::default(),
    )
    .unwrap();
    let summary = &alerts.values().next().unwrap().annotations["summary"];
    assert!(
        summary.starts_with("<error expanding template: error executing template __alert_A:"),
        "{summary}"
    );
}

#[test]
fn alerts_and_alerts_for_state_series() {
    let rule = rule(LOSS);
    let env = TemplateEnv::default();
    let mut alerts = RuleAlerts::new();
    let a = sample(&[("strategy", "a")], -2000.0);
    rule.apply(&mut alerts, std::slice::from_ref(&a), 61_500, 0, &env)
        .unwrap();
    let render = |alerts: &RuleAlerts, now: i64| -> Vec<String> {
        tradewatch::rules::alert_series(alerts, now)
            .iter()
            .map(|s| {
                let labels: Vec<String> = s
                    .labels
                    .iter()
                    .map(|l| format!("{}={}", l.name, l.value))
                    .collect();
                format!("{} {} @{}", labels.join(","), s.f, s.t)
            })
            .collect()
    };
    assert_eq!(
        render(&alerts, 61_500),
        [
            "__name__=ALERTS,alertname=TradingDailyLossLimitBreached,alertstate=pending,severity=critical,strategy=a 1 @61500",
            "__name__=ALERTS_FOR_STATE,alertname=TradingDailyLossLimitBreached,severity=critical,strategy=a 61 @61500",
        ]
    );
    rule.apply(&mut alerts, std::slice::from_ref(&a), 7 * MIN, 0, &env)
        .unwrap();
    assert!(render(&alerts, 6 * MIN)[0].contains("alertstate=firing"));
    rule.apply(&mut alerts, &[], 7 * MIN, 0, &env).unwrap();
    assert_eq!(
        render(&alerts, 7 * MIN),
        Vec::<String>::new(),
        "resolved: none"
    );
}

const STATIC: &str = r#"
groups:
  - name: risk
    rules:
      - alert: PositionLimit
        expr: abs(trading_position) > 100
        for: 1m
        labels:
          severity: page
        annotations:
          summary: 'Position limit breached'
"#;

/// A rule applied evaluation after evaluation keeps what its samples made of its alerts (labels
/// and fingerprints, annotations without actions); the result is the same as a rule compiled
/// afresh for each evaluation, which keeps nothing: alerts, transitions and errors alike, over
/// samples that come, go, change value and collide after templating.
#[test]
fn a_rule_answers_as_a_fresh_compilation_over_many_evaluations() {
    // Static labels, then static labels with templated annotations, then templated labels.
    let templated = STATIC.replace(
        "'Position limit breached'",
        "'Position {{ $value }} on {{ $labels.venue }}'",
    );
    for text in [STATIC, templated.as_str(), LOSS] {
        let kept = rule(text);
        let env = TemplateEnv::default();
        let mut rng = fastrand::Rng::with_seed(11);
        let (mut mine, mut fresh) = (RuleAlerts::new(), RuleAlerts::new());
        for round in 0..200i64 {
            let mut samples = Vec::new();
            for i in 0..8 {
                if rng.u8(..10) < 3 {
                    continue;
                }
                let venue = format!("v{i}");
                // Now and then two names give the same labels once `__name__` is gone.
                let name = if rng.u8(..40) == 0 {
                    "other"
                } else {
                    "trading_position"
                };
                samples.push(sample(
                    &[("__name__", name), ("venue", &venue), ("strategy", "s")],
                    rng.i32(-4..4) as f64 * 50.0,
                ));
                if name == "other" {
                    samples.push(sample(
                        &[
                            ("__name__", "trading_position"),
                            ("venue", &venue),
                            ("strategy", "s"),
                        ],
                        1.0,
                    ));
                }
            }
            let now = round * 20_000;
            let got = kept.apply(&mut mine, &samples, now, 0, &env);
            let want = rule(text).apply(&mut fresh, &samples, now, 0, &env);
            assert_eq!(got, want, "round {round} of\n{text}");
            assert_eq!(mine, fresh, "round {round} of\n{text}");
        }
    }
}

/// A reloaded rule with other labels does not take the alerts' labels from the old rule.
#[test]
fn a_recompiled_rule_makes_its_alerts_labels_again() {
    let old = rule(STATIC);
    let new = rule(&STATIC.replace("severity: page", "severity: ticket"));
    let env = TemplateEnv::default();
    let samples = [sample(&[("venue", "a")], 500.0)];
    let mut alerts = RuleAlerts::new();
    old.apply(&mut alerts, &samples, 0, 0, &env).unwrap();
    old.apply(&mut alerts, &samples, MIN, 0, &env).unwrap();
    new.apply(&mut alerts, &samples, 2 * MIN, 0, &env).unwrap();
    let severities: Vec<(&str, AlertState)> = alerts
        .values()
        .map(|a| (a.labels.get("severity").unwrap(), a.alert.state))
        .collect();
    // The old alert resolves; the new one begins.
    let want = [
        ("ticket", AlertState::Pending),
        ("page", AlertState::Resolved),
    ];
    assert_eq!(severities.len(), 2);
    for w in want {
        assert!(severities.contains(&w), "{severities:?}");
    }
}
