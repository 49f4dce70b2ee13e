//! Rendering templates with `tradewatch::template`, parsed once and rendered many times:
//!
//! - `template/annotation`: the typical rule annotation
//!   `{{ $labels.strategy }} lost {{ $value | humanize }}` over an alert with five labels, as
//!   Prometheus expands it (its variable definitions included); `template/annotation_with_data`
//!   also builds the alert's template data, as the rule layer does per alert (target ≤ 2 µs);
//! - `template/email_20_alerts`: Alertmanager's default email for a group of 20 firing alerts,
//!   subject (`email.default.subject`, text) and body (`email.default.html`, HTML-escaped),
//!   templates prepared once, the data turned into template values each time (target ≤ 200 µs).
//!
//! Run with `cargo bench --bench template`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tradewatch::template::Time;
use tradewatch::template::alertmanager::{Alert, Data, NotificationTemplates};
use tradewatch::template::prometheus::{AlertData, Expansion, RuleTemplate};

fn labels(strategy: &str) -> BTreeMap<String, String> {
    [
        ("__name__", "trading_pnl"),
        ("engine", "engine-1"),
        ("instance", "trading-box:9470"),
        ("job", "tradewatch"),
        ("strategy", strategy),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn annotation(c: &mut Criterion) {
    let t = RuleTemplate::new(
        "TradingDailyLossLimitBreached",
        "{{ $labels.strategy }} lost {{ $value | humanize }}",
    );
    let labels = labels("momentum");
    let external = BTreeMap::from([("region".to_string(), "eu".to_string())]);
    let env = Expansion::default();
    let data = AlertData::new(&labels, &external, "http://trading-box:9470", -12345.678);
    assert_eq!(t.expand(&data, &env).unwrap(), "momentum lost -12.35k");
    c.bench_function("template/annotation", |b| {
        b.iter(|| t.expand(black_box(&data), &env).unwrap())
    });
    c.bench_function("template/annotation_with_data", |b| {
        b.iter(|| {
            let data = AlertData::new(
                black_box(&labels),
                &external,
                "http://trading-box:9470",
                -12345.678,
            );
            t.expand(&data, &env).unwrap()
        })
    });
}

fn email(c: &mut Criterion) {
    let templates = NotificationTemplates::new();
    let alerts: Vec<Alert> = (0..20)
        .map(|i| {
            let mut l = labels(&format!("strategy-{i}"));
            l.remove("__name__");
            l.insert("alertname".into(), "TradingDailyLossLimitBreached".into());
            l.insert("severity".into(), "critical".into());
            Alert {
                status: "firing".into(),
                labels: l,
                annotations: BTreeMap::from([
                    ("summary".to_string(), format!("strategy-{i} lost 12.35k")),
                    (
                        "runbook_url".to_string(),
                        "https://wiki.example/loss?x=1&y=2".to_string(),
                    ),
                ]),
                starts_at: Time::utc(1_700_000_000 + i, 0),
                ends_at: Time::utc(1_700_003_600, 0),
                generator_url: "http://trading-box:9470/api/v1/query?query=trading_pnl+%3C+-1000"
                    .into(),
                fingerprint: format!("{i:016x}"),
            }
        })
        .collect();
    let group = BTreeMap::from([(
        "alertname".to_string(),
        "TradingDailyLossLimitBreached".to_string(),
    )]);
    let data = Data::new("trader-email", group, alerts, "http://trading-box:9470");
    let subject = r#"{{ template "email.default.subject" . }}"#;
    let body = r#"{{ template "email.default.html" . }}"#;
    assert!(
        templates
            .execute_html(body, &data)
            .unwrap()
            .contains("strategy-19")
    );
    let subject = templates.prepare_text(subject).unwrap();
    let body = templates.prepare_html(body).unwrap();
    c.bench_function("template/email_20_alerts_data_only", |b| {
        b.iter(|| black_box(&data).value())
    });
    c.bench_function("template/email_20_alerts", |b| {
        b.iter(|| {
            let value = black_box(&data).value();
            let s = subject.execute_value(&value).unwrap();
            let h = body.execute_value(&value).unwrap();
            (s, h)
        })
    });
}

criterion_group!(benches, annotation, email);
criterion_main!(benches);
