//! The ingest workload shared by `benches/ingest.rs` and `examples/ingest_load.rs`: NDJSON
//! batches of `order` events (about 150 bytes each), built deterministically from a seed.

const STATUSES: [&str; 6] = [
    "submitted",
    "filled",
    "partially_filled",
    "rejected",
    "cancelled",
    "failed",
];
const VENUES: [&str; 5] = ["binance", "coinbase", "kraken", "cme", "nasdaq"];

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

/// An NDJSON body of `events` order events.
pub fn order_batch(seed: u64, events: usize) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut body = Vec::with_capacity(events * 160);
    for _ in 0..events {
        let line = format!(
            r#"{{"type":"order","engine":"eng-{}","strategy":"strat_{:02}","venue":"{}","side":"{}","status":"{}","symbol":"SYM{:03}","latency_seconds":0.{:06}}}"#,
            rng.below(4),
            rng.below(10),
            VENUES[rng.below(5) as usize],
            if rng.below(2) == 0 { "buy" } else { "sell" },
            STATUSES[rng.below(6) as usize],
            rng.below(500),
            100 + rng.below(20_000),
        );
        body.extend_from_slice(line.as_bytes());
        body.push(b'\n');
    }
    body
}
