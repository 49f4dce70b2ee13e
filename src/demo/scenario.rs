//! The simulated trading session: a pure, seeded generator of events (and artifact file writes)
//! as a function of scenario time. Two engines trade three strategies on a random-walk market
//! and play the incidents of [`super::timeline`].
//!
//! Time advances in steps of [`TICK`] seconds; [`Scenario::advance_to`] plays every step up to
//! a time, so the same seed gives the same events however the calls are spaced. An event's `ts`
//! is `epoch + t / speed`: at speed 1 the wall clock of a session that started at `epoch`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::rng::Rng;
use super::timeline::{
    self, ARTIFACT_STALE_AGE, FLAPPING_TARGET, HEARTBEAT_RESUMED, INCIDENT_ENGINE, LOSING_STRATEGY,
    SILENT_ENGINE, STALE_ARTIFACT, TRIPPED_BREAKER,
};

/// Scenario seconds per simulation step.
pub const TICK: f64 = 0.1;
/// Steps per scenario second.
const TICKS_PER_SECOND: u64 = 10;
/// How often the artifact files are rewritten, in scenario seconds.
pub const ARTIFACT_REFRESH: f64 = 10.0;
/// How often the engines send their limits again, in scenario seconds.
pub const LIMITS_INTERVAL: f64 = 30.0;
/// How often each engine rebalances, in scenario seconds.
pub const REBALANCE_INTERVAL: f64 = 30.0;
/// How often each engine reports its portfolio, in scenario seconds.
pub const PORTFOLIO_INTERVAL: f64 = 2.0;
/// How often each engine reports the state of its connections, in scenario seconds.
pub const CONNECTIVITY_INTERVAL: f64 = 5.0;

/// Each engine's data provider fails once every this many scenario seconds (first at
/// [`DATA_PROVIDER_FIRST_FAILURE`]): seen early, and rare enough that the rule pack's
/// `TradingDataProviderFailures` (5 in 5 minutes) stays quiet.
pub const DATA_PROVIDER_FAILURE_EVERY: f64 = 97.0;
/// When the data provider first fails.
pub const DATA_PROVIDER_FIRST_FAILURE: f64 = 3.0;

/// What a scenario is built from.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The random seed.
    pub seed: u64,
    /// Unix seconds of scenario time 0.
    pub epoch: f64,
    /// How many scenario seconds pass per wall-clock second.
    pub speed: f64,
    /// A tag that makes this session's idempotency ids its own (two sessions with one seed must
    /// not collide in an exporter's idempotency window).
    pub run: String,
}

/// One artifact file to (re)write.
#[derive(Clone, Debug, PartialEq)]
pub struct ArtifactWrite {
    /// Its path under the artifacts folder (`models/momentum.json`).
    pub path: &'static str,
    /// The modification time to give it, Unix seconds.
    pub modified: f64,
    /// Its contents.
    pub content: String,
}

/// What a stretch of scenario time produced.
#[derive(Debug, Default)]
pub struct Output {
    /// Events, in order.
    pub events: Vec<Value>,
    /// Artifact files to write, in order.
    pub artifacts: Vec<ArtifactWrite>,
}

/// How a strategy picks its side.
#[derive(Clone, Copy, Debug)]
enum Style {
    /// With the last second's move.
    Momentum,
    /// Against it.
    MeanRevert,
    /// Both sides, alternately.
    MarketMaking,
}

struct StrategySpec {
    name: &'static str,
    style: Style,
    /// Orders per scenario second.
    order_rate: f64,
    /// Capital, for the drawdown ratio.
    capital: f64,
}

struct EngineSpec {
    name: &'static str,
    strategies: &'static [StrategySpec],
    venues: &'static [&'static str],
    targets: &'static [&'static str],
    breakers: &'static [&'static str],
    /// Symbol, position limit, opening quantity.
    symbols: &'static [(&'static str, f64, f64)],
    daily_loss_limit: f64,
    capital: f64,
    apis: &'static [&'static str],
    provider: &'static str,
}

const ENGINES: [EngineSpec; 2] = [
    EngineSpec {
        name: INCIDENT_ENGINE,
        strategies: &[
            StrategySpec {
                name: LOSING_STRATEGY,
                style: Style::Momentum,
                order_rate: 1.5,
                capital: 500_000.0,
            },
            StrategySpec {
                name: "mean_revert",
                style: Style::MeanRevert,
                order_rate: 1.0,
                capital: 500_000.0,
            },
        ],
        venues: &["binance", "coinbase"],
        targets: &[FLAPPING_TARGET, "coinbase-ws", "polygon-feed"],
        breakers: &[TRIPPED_BREAKER, "max_drawdown"],
        symbols: &[
            ("BTCUSDT", 2.0, 0.5),
            ("ETHUSDT", 40.0, 10.0),
            ("SOLUSDT", 800.0, 200.0),
        ],
        daily_loss_limit: 25_000.0,
        capital: 1_000_000.0,
        apis: &["binance.new_order", "binance.account", "coinbase.new_order"],
        provider: "polygon",
    },
    EngineSpec {
        name: SILENT_ENGINE,
        strategies: &[StrategySpec {
            name: "market_making",
            style: Style::MarketMaking,
            order_rate: 2.0,
            capital: 500_000.0,
        }],
        venues: &["binance", "kraken"],
        targets: &["binance-ws", "kraken-ws"],
        breakers: &["max_order_rate"],
        symbols: &[("BTCUSDT", 1.0, 0.2), ("ETHUSDT", 20.0, 5.0)],
        daily_loss_limit: 15_000.0,
        capital: 500_000.0,
        apis: &["binance.new_order", "kraken.new_order", "kraken.balance"],
        provider: "kaiko",
    },
];

/// The models the artifact files stand for: path, strategy.
const ARTIFACTS: [(&str, &str); 3] = [
    ("models/momentum.json", "momentum"),
    (STALE_ARTIFACT, "mean_revert"),
    ("models/market_making.json", "market_making"),
];

/// Prices of the traded symbols: a geometric random walk shared by the engines.
struct Market {
    /// Symbol, price, price one second ago, typical order quantity.
    symbols: Vec<(&'static str, f64, f64, f64)>,
}

impl Market {
    fn new() -> Market {
        Market {
            symbols: vec![
                ("BTCUSDT", 64_000.0, 64_000.0, 0.1),
                ("ETHUSDT", 3_300.0, 3_300.0, 2.0),
                ("SOLUSDT", 150.0, 150.0, 40.0),
            ],
        }
    }

    fn step(&mut self, rng: &mut Rng, second: bool) {
        for s in &mut self.symbols {
            if second {
                s.2 = s.1;
            }
            s.1 *= (0.0005 * rng.normal()).exp();
        }
    }

    fn get(&self, symbol: &str) -> (f64, f64, f64) {
        let s = self
            .symbols
            .iter()
            .find(|s| s.0 == symbol)
            .expect("every engine symbol is on the market");
        (s.1, s.2, s.3)
    }
}

/// A strategy's PnL: two bounded random walks (daily and unrealized) and a peak for the
/// drawdown.
struct Pnl {
    walk: f64,
    unrealized: f64,
    peak: f64,
}

struct EngineState {
    spec: &'static EngineSpec,
    /// Quantity held, per symbol of the spec.
    positions: Vec<f64>,
    cash: f64,
    pnl: Vec<Pnl>,
    next_order: u64,
    /// Whether it was silent at the previous step.
    was_silent: bool,
}

/// The simulated session.
pub struct Scenario {
    settings: Settings,
    rng: Rng,
    next_tick: u64,
    market: Market,
    engines: Vec<EngineState>,
    artifact_version: u64,
}

/// Rounds to `digits` decimals, so events read well.
fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Collects the events of one step.
struct Step<'a> {
    events: &'a mut Vec<Value>,
    ts: f64,
    t: f64,
}

impl Step<'_> {
    fn push(&mut self, kind: &str, engine: &str, strategy: Option<&str>, fields: Value) {
        let mut event = Map::new();
        event.insert("type".into(), kind.into());
        event.insert("ts".into(), json!(self.ts));
        event.insert("engine".into(), engine.into());
        if let Some(s) = strategy {
            event.insert("strategy".into(), s.into());
        }
        if let Value::Object(fields) = fields {
            event.extend(fields);
        }
        self.events.push(Value::Object(event));
    }
}

impl Scenario {
    /// A session at scenario time 0, nothing played yet.
    pub fn new(settings: Settings) -> Scenario {
        let engines = ENGINES
            .iter()
            .map(|spec| {
                let market = Market::new();
                let held: f64 = spec
                    .symbols
                    .iter()
                    .map(|(s, _, q)| q * market.get(s).0)
                    .sum();
                EngineState {
                    spec,
                    positions: spec.symbols.iter().map(|s| s.2).collect(),
                    cash: spec.capital - held,
                    pnl: spec
                        .strategies
                        .iter()
                        .map(|s| Pnl {
                            walk: 0.0,
                            unrealized: 0.0,
                            peak: s.capital,
                        })
                        .collect(),
                    next_order: 1,
                    was_silent: false,
                }
            })
            .collect();
        Scenario {
            rng: Rng::new(settings.seed),
            settings,
            next_tick: 0,
            market: Market::new(),
            engines,
            artifact_version: 0,
        }
    }

    /// The scenario time of the next step to play.
    pub fn now(&self) -> f64 {
        tick_time(self.next_tick)
    }

    /// Unix seconds of scenario time `t`, to the millisecond.
    pub fn ts(&self, t: f64) -> f64 {
        round(self.settings.epoch + t / self.settings.speed, 3)
    }

    /// Plays every step up to scenario time `t` (inclusive) and returns what they produced.
    pub fn advance_to(&mut self, t: f64) -> Output {
        let mut out = Output::default();
        while tick_time(self.next_tick) <= t + 1e-9 {
            self.play(self.next_tick, &mut out);
            self.next_tick += 1;
        }
        out
    }

    /// The events of every step up to scenario time `t`.
    pub fn events_until(&mut self, t: f64) -> Vec<Value> {
        self.advance_to(t).events
    }

    fn play(&mut self, tick: u64, out: &mut Output) {
        let t = tick_time(tick);
        let second = tick.is_multiple_of(TICKS_PER_SECOND);
        self.market.step(&mut self.rng, second);
        let mut step = Step {
            events: &mut out.events,
            ts: self.ts(t),
            t,
        };
        for engine in &mut self.engines {
            engine.play(
                tick,
                &mut step,
                &mut self.rng,
                &self.market,
                &self.settings.run,
            );
        }
        if every(tick, ARTIFACT_REFRESH) {
            self.artifact_version += 1;
            for (path, strategy) in ARTIFACTS {
                let stale = path == STALE_ARTIFACT;
                if stale && tick > 0 {
                    continue;
                }
                let modified = if stale {
                    self.ts(t) - ARTIFACT_STALE_AGE
                } else {
                    self.ts(t)
                };
                let version = if stale { 1 } else { self.artifact_version };
                let content = json!({
                    "strategy": strategy,
                    "version": version,
                    "trained_at": modified,
                    "weights": (0..4).map(|_| round(self.rng.normal(), 4)).collect::<Vec<_>>(),
                });
                out.artifacts.push(ArtifactWrite {
                    path,
                    modified,
                    content: format!("{content}\n"),
                });
            }
        }
    }
}

/// Scenario time of step `tick` (exact for the timeline's tenths of a second).
fn tick_time(tick: u64) -> f64 {
    tick as f64 / TICKS_PER_SECOND as f64
}

/// Whether `tick` starts a period of `seconds` (offset by `offset` seconds).
fn every_from(tick: u64, seconds: f64, offset: f64) -> bool {
    let period = (seconds * TICKS_PER_SECOND as f64).round() as u64;
    let offset = (offset * TICKS_PER_SECOND as f64).round() as u64;
    tick >= offset && (tick - offset).is_multiple_of(period)
}

fn every(tick: u64, seconds: f64) -> bool {
    every_from(tick, seconds, 0.0)
}

impl EngineState {
    fn name(&self) -> &'static str {
        self.spec.name
    }

    fn is_incident_engine(&self) -> bool {
        self.spec.name == INCIDENT_ENGINE
    }

    fn play(&mut self, tick: u64, step: &mut Step<'_>, rng: &mut Rng, market: &Market, run: &str) {
        let t = step.t;
        let prev = if tick == 0 {
            None
        } else {
            Some(tick_time(tick - 1))
        };
        if self.name() == SILENT_ENGINE {
            let silent = timeline::silent(t);
            let resumed = self.was_silent && !silent;
            self.was_silent = silent;
            if silent {
                return;
            }
            if resumed {
                debug_assert!(t >= HEARTBEAT_RESUMED);
                self.report_start(step, market);
            }
        }
        if tick == 0 {
            self.report_start(step, market);
        }
        if self.is_incident_engine() {
            self.play_incidents(step, prev);
        }
        self.trade(step, rng, market, run);
        if every(tick, 1.0) {
            self.every_second(tick, step, rng);
        }
        if tick > 0 && every(tick, PORTFOLIO_INTERVAL) {
            self.report_portfolio(step, market);
        }
        if tick > 0 && every(tick, LIMITS_INTERVAL) {
            self.report_limits(step);
        }
        if tick > 0 && every(tick, CONNECTIVITY_INTERVAL) {
            self.report_connectivity(step);
        }
        let offset = if self.is_incident_engine() { 5.0 } else { 7.0 };
        if every_from(tick, REBALANCE_INTERVAL, offset) {
            self.rebalance(step, rng);
        }
    }

    /// What an engine says when it starts: its start, limits, the state of its switches,
    /// breakers and connections, and its portfolio.
    fn report_start(&mut self, step: &mut Step<'_>, market: &Market) {
        let engine = self.name();
        step.push("engine_start", engine, None, json!({}));
        self.report_limits(step);
        step.push(
            "kill_switch",
            engine,
            None,
            json!({"active": self.is_incident_engine() && timeline::kill_switch_active(step.t)}),
        );
        for breaker in self.spec.breakers {
            let active = self.is_incident_engine()
                && *breaker == TRIPPED_BREAKER
                && timeline::breaker_tripped(step.t);
            step.push(
                "circuit_breaker",
                engine,
                None,
                json!({"breaker": breaker, "active": active}),
            );
        }
        self.report_connectivity(step);
        self.report_portfolio(step, market);
    }

    fn report_limits(&self, step: &mut Step<'_>) {
        let limits: BTreeMap<&str, f64> = self.spec.symbols.iter().map(|s| (s.0, s.1)).collect();
        step.push(
            "limits",
            self.name(),
            None,
            json!({"daily_loss_limit": self.spec.daily_loss_limit, "position_limits": limits}),
        );
    }

    fn target_up(&self, target: &str, t: f64) -> bool {
        !(self.is_incident_engine() && target == FLAPPING_TARGET) || timeline::flapping_target_up(t)
    }

    fn report_connectivity(&self, step: &mut Step<'_>) {
        for target in self.spec.targets {
            step.push(
                "connectivity",
                self.name(),
                None,
                json!({"target": target, "up": self.target_up(target, step.t)}),
            );
        }
    }

    fn report_portfolio(&self, step: &mut Step<'_>, market: &Market) {
        let mut total = self.cash;
        let positions: Vec<Value> = self
            .spec
            .symbols
            .iter()
            .zip(&self.positions)
            .map(|((symbol, _, _), quantity)| {
                let value = quantity * market.get(symbol).0;
                total += value;
                json!({"symbol": symbol, "quantity": round(*quantity, 4), "value": round(value, 2)})
            })
            .collect();
        step.push(
            "portfolio",
            self.name(),
            None,
            json!({
                "value": round(total, 2),
                "cash": round(self.cash, 2),
                "currency": "USD",
                "positions": positions,
            }),
        );
    }

    /// The incident engine's scripted state changes, each at the step where it happens.
    fn play_incidents(&self, step: &mut Step<'_>, prev: Option<f64>) {
        let Some(prev) = prev else { return };
        let t = step.t;
        let engine = self.name();
        if timeline::breaker_tripped(t) != timeline::breaker_tripped(prev) {
            let active = timeline::breaker_tripped(t);
            let mut fields = json!({"breaker": TRIPPED_BREAKER, "active": active});
            if active {
                fields["reason"] = "54 orders in 1s".into();
            }
            step.push("circuit_breaker", engine, None, fields);
        }
        if timeline::kill_switch_active(t) != timeline::kill_switch_active(prev) {
            let active = timeline::kill_switch_active(t);
            let reason = if active {
                "daily loss limit breached"
            } else {
                "released by risk desk"
            };
            step.push(
                "kill_switch",
                engine,
                None,
                json!({"active": active, "reason": reason}),
            );
        }
        if timeline::flapping_target_up(t) != timeline::flapping_target_up(prev) {
            step.push(
                "connectivity",
                engine,
                None,
                json!({"target": FLAPPING_TARGET, "up": timeline::flapping_target_up(t)}),
            );
        }
    }

    /// Orders and fills for this step.
    fn trade(&mut self, step: &mut Step<'_>, rng: &mut Rng, market: &Market, run: &str) {
        let t = step.t;
        let incident = self.is_incident_engine();
        if incident && timeline::kill_switch_active(t) {
            return;
        }
        let throttle = if incident && timeline::breaker_tripped(t) {
            0.3
        } else {
            1.0
        };
        for strategy in self.spec.strategies {
            if !rng.chance(strategy.order_rate * throttle * TICK) {
                continue;
            }
            let i = (rng.next_u64() % self.spec.symbols.len() as u64) as usize;
            let (symbol, limit, _) = self.spec.symbols[i];
            let (price, last, lot) = market.get(symbol);
            let up = price >= last;
            let mut buy = match strategy.style {
                Style::Momentum => up,
                Style::MeanRevert => !up,
                Style::MarketMaking => self.next_order.is_multiple_of(2),
            };
            let quantity = round(lot * rng.range(0.2, 1.0), 4).max(0.0001);
            let after = self.positions[i] + if buy { quantity } else { -quantity };
            if after.abs() > 0.8 * limit {
                buy = !buy;
            }
            let side = if buy { "buy" } else { "sell" };
            let venue = *rng.pick(self.spec.venues);
            let n = self.next_order;
            self.next_order += 1;
            let engine = self.name();
            let order_id = format!("ord-{n}");
            let id = |what: &str| format!("{engine}:{run}:{order_id}:{what}");
            let order = |status: &str, latency: Option<f64>| {
                let mut fields = json!({
                    "status": status, "venue": venue, "side": side, "symbol": symbol,
                    "id": id(status), "attrs": {"order_id": order_id},
                });
                if let Some(l) = latency {
                    fields["latency_seconds"] = json!(round(l, 6));
                }
                fields
            };
            step.push(
                "order",
                engine,
                Some(strategy.name),
                order("submitted", None),
            );
            let latency = rng.log_normal(0.015, 0.5);
            let failing = incident && timeline::api_error_burst(t);
            let r = rng.unit();
            let outcome = if failing && r < 0.4 {
                "failed"
            } else if r < 0.82 {
                "filled"
            } else if r < 0.90 {
                "partially_filled"
            } else if r < 0.97 {
                "cancelled"
            } else if r < 0.99 {
                "rejected"
            } else {
                "failed"
            };
            let fill_price = round(price * (1.0 + 0.0002 * rng.normal()), 2);
            let mut fills = Vec::new();
            match outcome {
                "filled" => fills.push(quantity),
                "partially_filled" => {
                    let part = round(quantity * rng.range(0.2, 0.8), 4).max(0.0001);
                    step.push(
                        "order",
                        engine,
                        Some(strategy.name),
                        order("partially_filled", Some(latency)),
                    );
                    fills.push(part);
                    if quantity - part > 0.0 {
                        fills.push(round(quantity - part, 4));
                    }
                }
                _ => {}
            }
            let last_status = if outcome == "partially_filled" {
                "filled"
            } else {
                outcome
            };
            step.push(
                "order",
                engine,
                Some(strategy.name),
                order(last_status, Some(latency)),
            );
            for (k, q) in fills.into_iter().filter(|q| *q > 0.0).enumerate() {
                step.push(
                    "fill",
                    engine,
                    Some(strategy.name),
                    json!({
                        "symbol": symbol, "side": side, "quantity": q, "price": fill_price,
                        "id": id(&format!("fill-{}", k + 1)),
                    }),
                );
                let signed = if buy { q } else { -q };
                self.positions[i] += signed;
                self.cash -= signed * fill_price;
            }
        }
    }

    /// What an engine reports once a second: heartbeat, cycle, decisions, PnL, API calls, data
    /// provider, spans, lock waits, its own metrics and now and then an error.
    fn every_second(&mut self, tick: u64, step: &mut Step<'_>, rng: &mut Rng) {
        let t = step.t;
        let engine = self.name();
        let incident = self.is_incident_engine();
        let burst = incident && timeline::api_error_burst(t);
        let halted = incident && timeline::kill_switch_active(t);
        step.push("heartbeat", engine, None, json!({}));

        // API calls first: the cycle's result depends on them.
        let (calls, error_rate) = if burst { (10, 0.7) } else { (3, 0.01) };
        let mut failed = 0;
        for _ in 0..calls {
            let api = *rng.pick(self.spec.apis);
            let duration = round(rng.log_normal(0.06, 0.5), 6);
            if rng.chance(error_rate) {
                failed += 1;
                let code = if burst {
                    *rng.pick(&[429, 429, 503, 500])
                } else {
                    *rng.pick(&[429, 500, 502])
                };
                step.push(
                    "api_call",
                    engine,
                    None,
                    json!({"api": api, "duration_seconds": duration, "ok": false, "code": code}),
                );
                if burst && rng.chance(0.5) {
                    step.push(
                        "error",
                        engine,
                        None,
                        json!({"component": "order_router", "kind": "rate_limited",
                               "message": format!("{api} answered {code}")}),
                    );
                }
            } else {
                step.push(
                    "api_call",
                    engine,
                    None,
                    json!({"api": api, "duration_seconds": duration, "ok": true}),
                );
            }
        }
        let result = if failed > calls / 2 || rng.chance(0.01) {
            "error"
        } else {
            "ok"
        };
        step.push(
            "cycle",
            engine,
            None,
            json!({"duration_seconds": round(rng.log_normal(0.12, 0.4), 6), "result": result}),
        );

        let limit = self.spec.daily_loss_limit;
        for (strategy, pnl) in self.spec.strategies.iter().zip(&mut self.pnl) {
            let decision = if halted {
                "blocked"
            } else {
                *rng.pick(&["buy", "sell", "hold", "hold"])
            };
            step.push(
                "decision",
                engine,
                Some(strategy.name),
                json!({"decision": decision}),
            );
            let bound = 0.08 * limit;
            pnl.walk = (pnl.walk + 0.01 * limit * rng.normal()).clamp(-bound, bound);
            pnl.unrealized =
                (pnl.unrealized + 0.01 * limit * rng.normal()).clamp(-bound / 2.0, bound / 2.0);
            let scripted = if incident && strategy.name == LOSING_STRATEGY {
                timeline::scripted_loss(t) * limit
            } else {
                0.0
            };
            let daily = round(pnl.walk + scripted, 2);
            let unrealized = round(pnl.unrealized, 2);
            let equity = strategy.capital + daily;
            pnl.peak = pnl.peak.max(equity);
            step.push(
                "pnl",
                engine,
                Some(strategy.name),
                json!({
                    "daily": daily,
                    "realized": round(daily - unrealized, 2),
                    "unrealized": unrealized,
                    "drawdown_ratio": round((pnl.peak - equity) / pnl.peak, 6),
                    "currency": "USD",
                }),
            );
            step.push(
                "metric",
                engine,
                Some(strategy.name),
                json!({
                    "kind": "counter", "name": "signals_generated_total",
                    "value": (rng.next_u64() % 5) + 1,
                    "labels": {"signal": signal_of(strategy.style)},
                    "help": "Trading signals a strategy generated.",
                }),
            );
            step.push(
                "metric",
                engine,
                Some(strategy.name),
                json!({
                    "kind": "histogram", "name": "model_inference_seconds",
                    "value": round(rng.log_normal(0.004, 0.3), 6),
                    "labels": {"model": format!("{}-v3", strategy.name)},
                    "help": "Time to score one batch of market data.",
                }),
            );
        }

        let provider = self.spec.provider;
        if every_from(
            tick,
            DATA_PROVIDER_FAILURE_EVERY,
            DATA_PROVIDER_FIRST_FAILURE,
        ) {
            step.push(
                "data_provider",
                engine,
                None,
                json!({"provider": provider, "ok": false, "attrs": {"error": "timeout after 5s"}}),
            );
            step.push(
                "error",
                engine,
                None,
                json!({"component": "market_data", "kind": "provider_timeout",
                       "message": format!("{provider} did not answer in 5s")}),
            );
        } else {
            step.push(
                "data_provider",
                engine,
                None,
                json!({"provider": provider, "ok": true}),
            );
        }
        for (function, median, failure) in [
            ("load_market_data", 0.05, 0.02),
            ("compute_signals", 0.003, 0.0),
            ("place_orders", 0.02, if burst { 0.5 } else { 0.005 }),
        ] {
            step.push(
                "span",
                engine,
                None,
                json!({"function": function,
                       "duration_seconds": round(rng.log_normal(median, 0.4), 6),
                       "ok": !rng.chance(failure)}),
            );
        }
        for (lock, median) in [("book", 0.0004), ("portfolio", 0.0002)] {
            step.push(
                "lock_wait",
                engine,
                None,
                json!({"lock": lock, "duration_seconds": round(rng.log_normal(median, 0.6), 7)}),
            );
        }
        step.push(
            "metric",
            engine,
            None,
            json!({
                "kind": "gauge", "name": "engine_queue_depth",
                "value": rng.next_u64() % 30,
                "labels": {"queue": "orders"},
                "help": "Orders waiting to be sent.",
            }),
        );
        if rng.chance(0.03) {
            let (component, kind, message) = *rng.pick(&[
                ("signals", "stale_data", "quote older than 2s"),
                ("order_router", "timeout", "no ack from venue in 2s"),
                ("risk", "position_check", "position check retried"),
            ]);
            step.push(
                "error",
                engine,
                None,
                json!({"component": component, "kind": kind, "message": message}),
            );
        }
    }

    fn rebalance(&self, step: &mut Step<'_>, rng: &mut Rng) {
        let (result, drift) = if rng.chance(0.9) {
            ("success", rng.range(0.002, 0.03))
        } else {
            ("partial", rng.range(0.03, 0.045))
        };
        step.push(
            "rebalance",
            self.name(),
            None,
            json!({
                "result": result,
                "duration_seconds": round(rng.log_normal(4.0, 0.4), 3),
                "drift_max_ratio": round(drift, 4),
            }),
        );
    }
}

fn signal_of(style: Style) -> &'static str {
    match style {
        Style::Momentum => "breakout",
        Style::MeanRevert => "reversion",
        Style::MarketMaking => "quote",
    }
}

/// The engines of the session and the strategies of each.
pub fn engines() -> Vec<(&'static str, Vec<&'static str>)> {
    ENGINES
        .iter()
        .map(|e| (e.name, e.strategies.iter().map(|s| s.name).collect()))
        .collect()
}

/// The daily loss limit the session gives `engine`.
pub fn daily_loss_limit(engine: &str) -> Option<f64> {
    ENGINES
        .iter()
        .find(|e| e.name == engine)
        .map(|e| e.daily_loss_limit)
}

/// The artifact files the session writes, the stale one included.
pub fn artifact_paths() -> [&'static str; 3] {
    ARTIFACTS.map(|a| a.0)
}
