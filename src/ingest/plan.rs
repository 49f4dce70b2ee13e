//! Planning a batch: each accepted event becomes its journal line and the registry operations
//! it stands for, computed off the journal's thread and applied only once the line is durable.

use std::ops::Range;
use std::sync::Arc;

use super::event::{EVENT_TYPES, EventType, RawEvent, Rejection, decode};
use crate::config::Limits;
use crate::exporter::catalog::{Id, keys};
use crate::exporter::registry::{Family, MetricType, sample_names};
use crate::exporter::{Catalog, DEFAULT_SECONDS_BUCKETS, Registry};
use crate::model::names::{is_valid_label_name, is_valid_metric_name, render_labels};

/// What an operation does to its series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    /// Adds to a counter.
    Inc(f64),
    /// Sets a gauge.
    Set(f64),
    /// Raises a gauge to the value if it is higher (heartbeats).
    Max(f64),
    /// Records a histogram observation.
    Observe(f64),
    /// Adds one to a counter when the gauge of the same labels in `gauge` is not already 1
    /// (a circuit breaker going from clear to tripped); comes before that gauge's `Set`.
    IncIfRising {
        /// The gauge family, as an index into the planner's family table.
        gauge: u32,
    },
    /// Removes the series of the family whose label block starts with the key and that this
    /// event did not `Set` or `Keep` (positions that left the portfolio).
    Prune,
    /// Marks a series as still present for a later `Prune` of the same event; changes nothing.
    Keep,
}

/// One operation on one series.
#[derive(Debug)]
pub struct Op {
    /// Index of the family: the catalog's [`Id`], or past it, the batch's custom families.
    pub family: u32,
    /// The label block, as a range of [`Batch::keys`].
    pub key: Range<u32>,
    /// What to do.
    pub action: Action,
}

/// An event that passed every check.
#[derive(Debug)]
pub struct Planned {
    /// Its 1-based line (or array position).
    pub line: u32,
    /// Its type.
    pub kind: EventType,
    /// Its time, Unix seconds (arrival when the event had none).
    pub ts: f64,
    /// Its idempotency id, as a range of [`Batch::keys`].
    pub id: Option<Range<u32>>,
    /// Its journal line, as a range of [`Batch::journal`] (newline included).
    pub journal: Range<usize>,
    /// Its operations, as a range of [`Batch::ops`].
    pub ops: Range<u32>,
}

/// A decoded batch: accepted events with their journal lines and operations, and rejections.
#[derive(Debug, Default)]
pub struct Batch {
    /// Label blocks and ids, concatenated.
    pub keys: String,
    /// Journal lines, concatenated.
    pub journal: Vec<u8>,
    /// Accepted events, in order.
    pub events: Vec<Planned>,
    /// Their operations.
    pub ops: Vec<Op>,
    /// Families of `metric` events, indexed from the catalog's length; registered only when an
    /// event of theirs applies.
    pub custom: Vec<CustomFamily>,
    /// Rejected lines.
    pub rejected: Vec<(u32, Rejection)>,
    /// Events decoded, by type (for `tradewatch_events_received_total`).
    pub received: [u64; EVENT_TYPES.len()],
}

/// A family a `metric` event names.
#[derive(Debug)]
pub struct CustomFamily {
    /// The family name (a counter's without `_total`).
    pub name: String,
    /// Its type.
    pub kind: MetricType,
    /// Help text, from the event that first names it.
    pub help: String,
    /// Histogram buckets.
    pub buckets: Vec<f64>,
    /// The registered family, once an event of it applied.
    pub registered: Option<Arc<Family>>,
}

impl Batch {
    /// The text of a range of [`Batch::keys`].
    pub fn key(&self, r: &Range<u32>) -> &str {
        &self.keys[r.start as usize..r.end as usize]
    }
}

/// Turns events into planned operations against one catalog.
pub struct Planner {
    registry: Arc<Registry>,
    catalog: Catalog,
    families: Vec<Arc<Family>>,
    limits: Limits,
    buckets: std::collections::BTreeMap<String, Vec<f64>>,
}

impl Planner {
    /// A planner for `catalog`'s registry under `limits`.
    pub fn new(
        registry: Arc<Registry>,
        catalog: Catalog,
        limits: Limits,
        buckets: std::collections::BTreeMap<String, Vec<f64>>,
    ) -> Planner {
        let families = catalog.all();
        Planner {
            registry,
            catalog,
            families,
            limits,
            buckets,
        }
    }

    /// The catalog's families in [`Id`] order.
    pub fn families(&self) -> &[Arc<Family>] {
        &self.families
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The catalog family an operation names, or `Err` with the batch's custom family.
    pub fn family<'b>(
        &'b self,
        batch: &'b Batch,
        index: u32,
    ) -> Result<&'b Arc<Family>, &'b CustomFamily> {
        let i = index as usize;
        self.families
            .get(i)
            .ok_or_else(|| &batch.custom[i - self.families.len()])
    }

    /// The registered family an operation names, registering a custom family on first use;
    /// `None` when it cannot be registered (a replayed event whose name now clashes).
    pub fn family_to_apply(&self, batch: &mut Batch, index: u32) -> Option<Arc<Family>> {
        let i = index as usize;
        if let Some(f) = self.families.get(i) {
            return Some(f.clone());
        }
        let custom = &mut batch.custom[i - self.families.len()];
        if let Some(f) = &custom.registered {
            return Some(f.clone());
        }
        match self.registry.register(
            &custom.name,
            custom.kind,
            &custom.help,
            None,
            &custom.buckets,
        ) {
            Ok(f) => {
                custom.registered = Some(f.clone());
                Some(f)
            }
            Err(e) => {
                tracing::warn!(error = %e, "Metric family cannot be registered; its operation is skipped.");
                None
            }
        }
    }

    /// Plans one event given as its raw JSON text, at `line`; `now` stands in for a missing `ts`.
    pub fn plan_line(&self, batch: &mut Batch, line: u32, raw: &[u8], now: f64) {
        let marks = (
            batch.keys.len(),
            batch.ops.len(),
            batch.journal.len(),
            batch.custom.len(),
        );
        let result = decode(raw).and_then(|event| {
            let kind = EventType::parse(&event.kind_).ok_or_else(|| {
                Rejection::new(
                    "unknown_type",
                    format!("unknown event type `{}`", event.kind_),
                )
            })?;
            batch.received[kind as usize] += 1;
            self.plan_event(batch, &event, kind, raw, now)
        });
        match result {
            Ok(planned) => batch.events.push(Planned { line, ..planned }),
            Err(rejection) => {
                batch.keys.truncate(marks.0);
                batch.ops.truncate(marks.1);
                batch.journal.truncate(marks.2);
                batch.custom.truncate(marks.3);
                batch.rejected.push((line, rejection));
            }
        }
    }

    fn plan_event(
        &self,
        batch: &mut Batch,
        e: &RawEvent<'_>,
        kind: EventType,
        raw: &[u8],
        now: f64,
    ) -> Result<Planned, Rejection> {
        let (required, optional) = kind.fields();
        let present = e.present_fields();
        for &field in &present {
            if !required.contains(&field) && !optional.contains(&field) {
                return Err(Rejection::new(
                    "unknown_field",
                    format!("field `{field}` does not apply to type `{}`", kind.as_str()),
                ));
            }
        }
        if let Some(missing) = required.iter().find(|f| !present.contains(f)) {
            return Err(Rejection::new(
                "missing_field",
                format!(
                    "missing required field `{missing}` for type `{}`",
                    kind.as_str()
                ),
            ));
        }
        if let Some(attrs) = e.attrs
            && !attrs.get().starts_with('{')
        {
            return Err(Rejection::new(
                "invalid_value",
                "attrs must be a JSON object",
            ));
        }
        let ts = e.ts.map_or(now, |t| t.0);
        let engine = self.label("engine", e.engine.as_deref().unwrap_or("default"))?;
        let strategy = e
            .strategy
            .as_deref()
            .map(|s| self.label("strategy", s))
            .transpose()?;
        let id = match &e.id {
            Some(id) if id.is_empty() => {
                return Err(Rejection::new("invalid_value", "id must not be empty"));
            }
            Some(id) => {
                let start = batch.keys.len() as u32;
                batch.keys.push_str(id);
                Some(start..batch.keys.len() as u32)
            }
            None => None,
        };
        let ops_start = batch.ops.len() as u32;
        let mut plan = Ops {
            batch,
            catalog_len: self.families.len() as u32,
        };
        plan.push(Id::heartbeat, Action::Max(ts), |k| {
            keys::heartbeat(k, engine)
        });
        self.plan_type(&mut plan, e, kind, engine, strategy, ts)?;
        let ops = ops_start..batch.ops.len() as u32;
        let journal_start = batch.journal.len();
        write_journal_line(&mut batch.journal, raw, e.ts.is_none().then_some(ts))?;
        Ok(Planned {
            line: 0,
            kind,
            ts,
            id,
            journal: journal_start..batch.journal.len(),
            ops,
        })
    }

    fn label<'s>(&self, field: &str, value: &'s str) -> Result<&'s str, Rejection> {
        if value.is_empty() {
            return Err(Rejection::new(
                "invalid_value",
                format!("{field} must not be empty (leave it out instead)"),
            ));
        }
        if value.len() > self.limits.max_label_value_bytes {
            return Err(Rejection::new(
                "label_value_too_long",
                format!(
                    "{field} is {} bytes, over the limit of {}",
                    value.len(),
                    self.limits.max_label_value_bytes
                ),
            ));
        }
        Ok(value)
    }

    fn required<'s>(
        &self,
        field: &str,
        value: &'s Option<std::borrow::Cow<'_, str>>,
    ) -> Result<&'s str, Rejection> {
        self.label(field, value.as_deref().unwrap_or_default())
    }

    #[allow(clippy::too_many_lines)]
    fn plan_type(
        &self,
        plan: &mut Ops<'_>,
        e: &RawEvent<'_>,
        kind: EventType,
        engine: &str,
        strategy: Option<&str>,
        ts: f64,
    ) -> Result<(), Rejection> {
        match kind {
            EventType::Heartbeat => {}
            EventType::EngineStart => {
                plan.push(Id::start_time, Action::Set(ts), |k| {
                    keys::start_time(k, engine)
                });
            }
            EventType::Order => {
                let status = one_of(
                    "status",
                    e.status.as_deref(),
                    &[
                        "submitted",
                        "filled",
                        "partially_filled",
                        "rejected",
                        "cancelled",
                        "failed",
                    ],
                )?;
                let venue = self.required("venue", &e.venue)?;
                let side = one_of("side", e.side.as_deref(), &["buy", "sell"])?;
                if let Some(s) = &e.symbol {
                    self.label("symbol", s)?;
                }
                plan.push(Id::orders, Action::Inc(1.0), |k| {
                    keys::orders(k, engine, strategy, venue, side, status)
                });
                if let Some(l) = e.latency_seconds {
                    plan.push(
                        Id::order_latency,
                        Action::Observe(non_negative("latency_seconds", l)?),
                        |k| keys::order_latency(k, engine, venue),
                    );
                }
            }
            EventType::Fill => {
                let symbol = self.required("symbol", &e.symbol)?;
                let side = one_of("side", e.side.as_deref(), &["buy", "sell"])?;
                let quantity = positive("quantity", e.quantity.unwrap_or_default())?;
                let price = non_negative("price", e.price.unwrap_or_default())?;
                let notional = non_negative("notional", e.notional.unwrap_or(quantity * price))?;
                plan.push(Id::fills, Action::Inc(1.0), |k| {
                    keys::fills(k, engine, strategy, symbol, side)
                });
                plan.push(Id::traded_notional, Action::Inc(notional), |k| {
                    keys::traded_notional(k, engine, strategy, symbol, side)
                });
            }
            EventType::Decision => {
                let decision = self.required("decision", &e.decision)?;
                plan.push(Id::decisions, Action::Inc(1.0), |k| {
                    keys::decisions(k, engine, strategy, decision)
                });
            }
            EventType::Cycle => {
                let result = one_of(
                    "result",
                    Some(e.result.as_deref().unwrap_or("ok")),
                    &["ok", "error"],
                )?;
                let d = non_negative("duration_seconds", e.duration_seconds.unwrap_or_default())?;
                plan.push(Id::cycles, Action::Inc(1.0), |k| {
                    keys::cycles(k, engine, result)
                });
                plan.push(Id::cycle_duration, Action::Observe(d), |k| {
                    keys::cycle_duration(k, engine)
                });
            }
            EventType::Rebalance => {
                let result = one_of(
                    "result",
                    e.result.as_deref(),
                    &["success", "partial", "failed"],
                )?;
                plan.push(Id::rebalances, Action::Inc(1.0), |k| {
                    keys::rebalances(k, engine, result)
                });
                if let Some(d) = e.duration_seconds {
                    let d = non_negative("duration_seconds", d)?;
                    plan.push(Id::rebalance_duration, Action::Observe(d), |k| {
                        keys::rebalance_duration(k, engine)
                    });
                }
                if result != "failed" {
                    plan.push(Id::last_rebalance, Action::Set(ts), |k| {
                        keys::last_rebalance(k, engine)
                    });
                }
                if let Some(r) = e.drift_max_ratio {
                    plan.push(Id::drift_max_ratio, Action::Set(r), |k| {
                        keys::drift_max_ratio(k, engine)
                    });
                }
            }
            EventType::Portfolio => {
                let currency = self.label("currency", e.currency.as_deref().unwrap_or("USD"))?;
                if let Some(v) = e.value {
                    plan.push(Id::portfolio_value, Action::Set(v), |k| {
                        keys::portfolio_value(k, engine, currency)
                    });
                }
                if let Some(v) = e.cash {
                    plan.push(Id::cash_balance, Action::Set(v), |k| {
                        keys::cash_balance(k, engine, currency)
                    });
                }
                if let Some(positions) = &e.positions {
                    for p in positions {
                        let symbol = self.label("positions[].symbol", &p.symbol)?;
                        for id in [Id::position_quantity, Id::position_value] {
                            plan.push(id, Action::Keep, |k| {
                                keys::position_value(k, engine, symbol)
                            });
                        }
                        if let Some(q) = p.quantity {
                            plan.push(Id::position_quantity, Action::Set(q), |k| {
                                keys::position_quantity(k, engine, symbol)
                            });
                        }
                        if let Some(v) = p.value {
                            plan.push(Id::position_value, Action::Set(v), |k| {
                                keys::position_value(k, engine, symbol)
                            });
                        }
                    }
                    let open = positions.iter().filter(|p| p.quantity != Some(0.0)).count();
                    plan.push(Id::positions_open, Action::Set(open as f64), |k| {
                        keys::positions_open(k, engine)
                    });
                    for id in [Id::position_quantity, Id::position_value] {
                        plan.push(id, Action::Prune, |k| {
                            render_labels([("engine", Some(engine))], k);
                            k.push(',');
                        });
                    }
                }
            }
            EventType::Limits => {
                if let Some(l) = e.daily_loss_limit {
                    let l = positive("daily_loss_limit", l)?;
                    plan.push(Id::daily_loss_limit, Action::Set(l), |k| {
                        keys::daily_loss_limit(k, engine)
                    });
                }
                for (symbol, limit) in e.position_limits.iter().flatten() {
                    let symbol = self.label("position_limits symbol", symbol)?;
                    plan.push(Id::position_limit, Action::Set(*limit), |k| {
                        keys::position_limit(k, engine, symbol)
                    });
                }
            }
            EventType::Pnl => {
                let currency = self.label("currency", e.currency.as_deref().unwrap_or("USD"))?;
                for (id, v) in [
                    (Id::pnl_daily, e.daily),
                    (Id::pnl_realized, e.realized),
                    (Id::pnl_unrealized, e.unrealized),
                    (Id::drawdown_ratio, e.drawdown_ratio),
                ] {
                    if let Some(v) = v {
                        plan.push(id, Action::Set(v), |k| {
                            keys::pnl_daily(k, engine, strategy, currency)
                        });
                    }
                }
            }
            EventType::CircuitBreaker => {
                let breaker = self.required("breaker", &e.breaker)?;
                let active = e.active.unwrap_or_default();
                if active {
                    let gauge = Id::circuit_breaker_active as u32;
                    plan.push(
                        Id::circuit_breaker_trips,
                        Action::IncIfRising { gauge },
                        |k| keys::circuit_breaker_trips(k, engine, breaker),
                    );
                }
                plan.push(
                    Id::circuit_breaker_active,
                    Action::Set(bool_value(active)),
                    |k| keys::circuit_breaker_active(k, engine, breaker),
                );
            }
            EventType::KillSwitch => {
                let active = bool_value(e.active.unwrap_or_default());
                plan.push(Id::kill_switch_active, Action::Set(active), |k| {
                    keys::kill_switch_active(k, engine)
                });
            }
            EventType::Connectivity => {
                let target = self.required("target", &e.target)?;
                let up = bool_value(e.up.unwrap_or_default());
                plan.push(Id::connectivity_up, Action::Set(up), |k| {
                    keys::connectivity_up(k, engine, target)
                });
            }
            EventType::ApiCall => {
                let api = self.required("api", &e.api)?;
                let ok = e.ok.unwrap_or(true);
                let code = e
                    .code
                    .as_ref()
                    .map(|c| self.label("code", &c.0))
                    .transpose()?;
                let result = if ok { "ok" } else { "error" };
                plan.push(Id::api_requests, Action::Inc(1.0), |k| {
                    keys::api_requests(k, engine, api, result)
                });
                if let Some(d) = e.duration_seconds {
                    let d = non_negative("duration_seconds", d)?;
                    plan.push(Id::api_request_duration, Action::Observe(d), |k| {
                        keys::api_request_duration(k, engine, api)
                    });
                }
                if !ok {
                    plan.push(Id::api_errors, Action::Inc(1.0), |k| {
                        keys::api_errors(k, engine, api, code)
                    });
                }
            }
            EventType::DataProvider => {
                let provider = self.required("provider", &e.provider)?;
                if !e.ok.unwrap_or(true) {
                    plan.push(Id::data_provider_failures, Action::Inc(1.0), |k| {
                        keys::data_provider_failures(k, engine, provider)
                    });
                }
            }
            EventType::Error => {
                let component = self.required("component", &e.component)?;
                let kind = self.required("kind", &e.kind)?;
                plan.push(Id::errors, Action::Inc(1.0), |k| {
                    keys::errors(k, engine, component, kind)
                });
            }
            EventType::Span => {
                let function = self.required("function", &e.function)?;
                let d = non_negative("duration_seconds", e.duration_seconds.unwrap_or_default())?;
                let result = if e.ok.unwrap_or(true) { "ok" } else { "error" };
                plan.push(Id::function_duration, Action::Observe(d), |k| {
                    keys::function_duration(k, engine, function)
                });
                plan.push(Id::function_calls, Action::Inc(1.0), |k| {
                    keys::function_calls(k, engine, function, result)
                });
            }
            EventType::LockWait => {
                let lock = self.required("lock", &e.lock)?;
                let d = non_negative("duration_seconds", e.duration_seconds.unwrap_or_default())?;
                plan.push(Id::lock_wait, Action::Observe(d), |k| {
                    keys::lock_wait(k, engine, lock)
                });
            }
            EventType::Metric => self.plan_metric(plan, e, engine, strategy)?,
        }
        Ok(())
    }

    fn plan_metric(
        &self,
        plan: &mut Ops<'_>,
        e: &RawEvent<'_>,
        engine: &str,
        strategy: Option<&str>,
    ) -> Result<(), Rejection> {
        let name = e.name.as_deref().unwrap_or_default();
        if !is_valid_metric_name(name) {
            return Err(Rejection::new(
                "invalid_name",
                format!("metric name {name:?} is not a valid Prometheus metric name"),
            ));
        }
        if let Some(prefix) = ["trading_", "tradewatch_", "process_", "__"]
            .iter()
            .find(|p| name.starts_with(*p))
        {
            return Err(Rejection::new(
                "reserved_name",
                format!("metric name {name:?} uses the reserved prefix `{prefix}`"),
            ));
        }
        let kind = match e.kind.as_deref() {
            Some("counter") => MetricType::Counter,
            Some("gauge") => MetricType::Gauge,
            Some("histogram") => MetricType::Histogram,
            other => {
                return Err(Rejection::new(
                    "invalid_value",
                    format!(
                        "kind must be counter, gauge or histogram, not {:?}",
                        other.unwrap_or_default()
                    ),
                ));
            }
        };
        let value = e.value.unwrap_or_default();
        let family_name = match kind {
            MetricType::Counter => {
                non_negative("value (a counter increment)", value)?;
                match name.strip_suffix("_total") {
                    Some("") => {
                        return Err(Rejection::new(
                            "invalid_name",
                            "metric name \"_total\" leaves an empty family name",
                        ));
                    }
                    Some(base) => base,
                    None => name,
                }
            }
            MetricType::Histogram if value < 0.0 => {
                return Err(Rejection::new(
                    "invalid_value",
                    format!(
                        "value (a histogram observation) must be a finite number ≥ 0, not {value}"
                    ),
                ));
            }
            _ if name.ends_with("_total") => {
                return Err(Rejection::new(
                    "invalid_name",
                    format!(
                        "a {} may not be named {name:?}: the `_total` suffix is for counters",
                        kind.as_str()
                    ),
                ));
            }
            _ => name,
        };
        let labels = e.labels.as_ref();
        let count = labels.map_or(0, |l| l.len());
        if count > self.limits.max_labels_per_metric {
            return Err(Rejection::new(
                "too_many_labels",
                format!(
                    "{count} labels, over the limit of {}",
                    self.limits.max_labels_per_metric
                ),
            ));
        }
        for (label, v) in labels.into_iter().flatten() {
            if !is_valid_label_name(label) {
                return Err(Rejection::new(
                    "invalid_name",
                    format!("label name {label:?} is not a valid Prometheus label name"),
                ));
            }
            if label.starts_with("__") {
                return Err(Rejection::new(
                    "reserved_name",
                    format!("label name {label:?} uses the reserved prefix `__`"),
                ));
            }
            if label == "engine" || label == "strategy" {
                return Err(Rejection::new(
                    "reserved_name",
                    format!("label {label:?} comes from the event's top-level `{label}` field"),
                ));
            }
            if label == "le" && kind == MetricType::Histogram {
                return Err(Rejection::new(
                    "reserved_name",
                    "label \"le\" is reserved for histogram buckets",
                ));
            }
            self.label(&format!("labels.{label}"), v)?;
        }
        let bounds = self
            .buckets
            .get(name)
            .map_or(DEFAULT_SECONDS_BUCKETS, Vec::as_slice);
        self.registry
            .check(family_name, kind)
            .map_err(|err| Rejection::new("type_conflict", err.to_string()))?;
        let batch = &mut *plan.batch;
        let index = match batch.custom.iter().position(|c| c.name == family_name) {
            Some(i) if batch.custom[i].kind == kind => i,
            Some(i) => {
                return Err(Rejection::new(
                    "type_conflict",
                    format!(
                        "metric {family_name} is already registered as a {}",
                        batch.custom[i].kind.as_str()
                    ),
                ));
            }
            None => {
                let ours = sample_names(family_name, kind);
                if let Some(c) = batch.custom.iter().find(|c| {
                    sample_names(&c.name, c.kind)
                        .iter()
                        .any(|n| ours.contains(n))
                }) {
                    return Err(Rejection::new(
                        "type_conflict",
                        format!(
                            "metric {family_name} clashes with the samples of {} {}",
                            c.kind.as_str(),
                            c.name
                        ),
                    ));
                }
                batch.custom.push(CustomFamily {
                    name: family_name.to_owned(),
                    kind,
                    help: match e.help.as_deref() {
                        Some(help) if !help.is_empty() => help.to_owned(),
                        _ => format!("{family_name}, reported by the engine."),
                    },
                    buckets: bounds.to_vec(),
                    registered: None,
                });
                batch.custom.len() - 1
            }
        };
        let action = match kind {
            MetricType::Counter => Action::Inc(value),
            MetricType::Gauge => Action::Set(value),
            MetricType::Histogram => Action::Observe(value),
        };
        let start = batch.keys.len() as u32;
        let pairs = [("engine", Some(engine)), ("strategy", strategy)].into_iter();
        let user = labels
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_ref(), Some(v.as_ref())));
        render_labels(pairs.chain(user), &mut batch.keys);
        let key = start..batch.keys.len() as u32;
        batch.ops.push(Op {
            family: plan.catalog_len + index as u32,
            key,
            action,
        });
        Ok(())
    }
}

struct Ops<'b> {
    batch: &'b mut Batch,
    catalog_len: u32,
}

impl Ops<'_> {
    fn push(&mut self, family: Id, action: Action, labels: impl FnOnce(&mut String)) {
        let start = self.batch.keys.len() as u32;
        labels(&mut self.batch.keys);
        let key = start..self.batch.keys.len() as u32;
        self.batch.ops.push(Op {
            family: family as u32,
            key,
            action,
        });
    }
}

fn one_of<'s>(field: &str, value: Option<&'s str>, allowed: &[&str]) -> Result<&'s str, Rejection> {
    match value {
        Some(v) if allowed.contains(&v) => Ok(v),
        v => Err(Rejection::new(
            "invalid_value",
            format!(
                "{field} must be one of {}, not {:?}",
                allowed.join(", "),
                v.unwrap_or_default()
            ),
        )),
    }
}

fn non_negative(field: &str, v: f64) -> Result<f64, Rejection> {
    if v >= 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err(Rejection::new(
            "invalid_value",
            format!("{field} must be a finite number ≥ 0, not {v}"),
        ))
    }
}

fn positive(field: &str, v: f64) -> Result<f64, Rejection> {
    if v > 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err(Rejection::new(
            "invalid_value",
            format!("{field} must be a finite number > 0, not {v}"),
        ))
    }
}

fn bool_value(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Appends the event's journal line: its own text on one line, with `ts` added when the event
/// had none, so replaying the journal gives the same result.
fn write_journal_line(out: &mut Vec<u8>, raw: &[u8], ts: Option<f64>) -> Result<(), Rejection> {
    let minified;
    let raw = if raw.iter().any(|b| matches!(b, b'\n' | b'\r')) {
        let value: serde_json::Value =
            serde_json::from_slice(raw).map_err(|e| Rejection::new("malformed", e.to_string()))?;
        minified = serde_json::to_vec(&value).expect("a JSON value serializes");
        &minified[..]
    } else {
        raw.trim_ascii()
    };
    match ts {
        // `raw` is an object (it decoded as an event), so after the trim it opens with `{`.
        Some(ts) => {
            out.extend_from_slice(b"{\"ts\":");
            crate::model::value::write_float(ts, out);
            out.push(b',');
            out.extend_from_slice(&raw[1..]);
        }
        None => out.extend_from_slice(raw),
    }
    out.push(b'\n');
    Ok(())
}
