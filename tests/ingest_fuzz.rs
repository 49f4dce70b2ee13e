//! Property tests on event decoding: arbitrary and mutated input never panics, a rejected line
//! leaves nothing behind in the batch, and an accepted line's journal text decodes to the same
//! plan.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use tradewatch::config::Limits;
use tradewatch::exporter::{Catalog, Registry};
use tradewatch::ingest::plan::{Batch, Planner};

const SEEDS: &[&str] = &[
    r#"{"type":"order","engine":"e1","strategy":"mom","status":"filled","venue":"binance","side":"buy","latency_seconds":0.012,"id":"x"}"#,
    r#"{"type":"fill","symbol":"BTC","side":"sell","quantity":2,"price":10.5,"attrs":{"order_id":"a"}}"#,
    r#"{"type":"portfolio","value":1,"positions":[{"symbol":"A","quantity":1,"value":2}]}"#,
    r#"{"type":"pnl","daily":-120.5,"ts":"2026-01-02T03:04:05Z"}"#,
    r#"{"type":"limits","daily_loss_limit":1000,"position_limits":{"BTC":2}}"#,
    r#"{"type":"circuit_breaker","breaker":"dd","active":true,"reason":"drawdown"}"#,
    r#"{"type":"api_call","api":"orders","ok":false,"code":503,"duration_seconds":0.2}"#,
    r#"{"type":"metric","kind":"histogram","name":"h","value":0.3,"labels":{"a":"b"}}"#,
];

fn planner() -> Planner {
    let registry = Arc::new(Registry::with_limits(1000, 10_000));
    let catalog = Catalog::new(&registry, &BTreeMap::new());
    Planner::new(registry, catalog, Limits::default(), BTreeMap::new())
}

fn check(planner: &Planner, raw: &[u8]) {
    let mut batch = Batch::default();
    planner.plan_line(&mut batch, 1, raw, 1.0e9);
    match (batch.events.first(), batch.rejected.first()) {
        (Some(event), None) => {
            // The journal line replays to the same operations.
            let line = &batch.journal[event.journal.start..event.journal.end - 1];
            let mut again = Batch::default();
            planner.plan_line(&mut again, 1, line, 2.0e9);
            assert_eq!(
                again.rejected.len(),
                0,
                "journal line rejected: {:?}",
                again.rejected
            );
            let ops = |b: &Batch| {
                b.ops
                    .iter()
                    .map(|o| {
                        (
                            o.family,
                            b.key(&o.key).to_owned(),
                            format!("{:?}", o.action),
                        )
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(ops(&batch), ops(&again));
        }
        (None, Some((line, rejection))) => {
            assert_eq!(*line, 1);
            assert!(!rejection.message.is_empty());
            assert!(batch.ops.is_empty() && batch.keys.is_empty() && batch.journal.is_empty());
        }
        other => panic!("one line gave {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        check(&planner(), &raw);
    }

    #[test]
    fn mutated_events_never_panic(seed in 0..SEEDS.len(), cuts in proptest::collection::vec((0usize..400, any::<u8>()), 1..4)) {
        let mut raw = SEEDS[seed].as_bytes().to_vec();
        for (at, byte) in cuts {
            let at = at % (raw.len() + 1);
            if byte % 3 == 0 && at < raw.len() {
                raw.remove(at);
            } else {
                raw.insert(at, byte);
            }
        }
        check(&planner(), &raw);
    }

    #[test]
    fn whitespace_around_an_event_is_accepted_and_replays(
        seed in 0..SEEDS.len(),
        before in "[ \t]{0,3}",
        after in "[ \t]{0,3}",
    ) {
        check(&planner(), format!("{before}{}{after}", SEEDS[seed]).as_bytes());
    }

    #[test]
    fn any_label_value_is_accepted_and_replays(value in "\\PC{1,40}") {
        let event = serde_json::json!({"type": "decision", "decision": value, "strategy": value});
        check(&planner(), event.to_string().as_bytes());
    }
}

#[test]
fn seeds_are_accepted() {
    let planner = planner();
    for seed in SEEDS {
        let mut batch = Batch::default();
        planner.plan_line(&mut batch, 1, seed.as_bytes(), 1.0e9);
        assert!(batch.rejected.is_empty(), "{seed}: {:?}", batch.rejected);
        check(&planner, seed.as_bytes());
    }
}
