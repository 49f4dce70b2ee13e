//! Trading events (DESIGN §1 "Event fields"): decoding one JSON object, checking it against its
//! type, and planning the registry operations it stands for.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

/// The event types of the contract with engines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum EventType {
    Heartbeat,
    EngineStart,
    Order,
    Fill,
    Decision,
    Cycle,
    Rebalance,
    Portfolio,
    Limits,
    Pnl,
    CircuitBreaker,
    KillSwitch,
    Connectivity,
    ApiCall,
    DataProvider,
    Error,
    Span,
    LockWait,
    Metric,
}

/// Every event type, in the order of the design's table.
pub const EVENT_TYPES: [EventType; 19] = [
    EventType::Heartbeat,
    EventType::EngineStart,
    EventType::Order,
    EventType::Fill,
    EventType::Decision,
    EventType::Cycle,
    EventType::Rebalance,
    EventType::Portfolio,
    EventType::Limits,
    EventType::Pnl,
    EventType::CircuitBreaker,
    EventType::KillSwitch,
    EventType::Connectivity,
    EventType::ApiCall,
    EventType::DataProvider,
    EventType::Error,
    EventType::Span,
    EventType::LockWait,
    EventType::Metric,
];

impl EventType {
    /// The `type` string of this event type.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Heartbeat => "heartbeat",
            EventType::EngineStart => "engine_start",
            EventType::Order => "order",
            EventType::Fill => "fill",
            EventType::Decision => "decision",
            EventType::Cycle => "cycle",
            EventType::Rebalance => "rebalance",
            EventType::Portfolio => "portfolio",
            EventType::Limits => "limits",
            EventType::Pnl => "pnl",
            EventType::CircuitBreaker => "circuit_breaker",
            EventType::KillSwitch => "kill_switch",
            EventType::Connectivity => "connectivity",
            EventType::ApiCall => "api_call",
            EventType::DataProvider => "data_provider",
            EventType::Error => "error",
            EventType::Span => "span",
            EventType::LockWait => "lock_wait",
            EventType::Metric => "metric",
        }
    }

    /// The event type named `s`.
    pub fn parse(s: &str) -> Option<EventType> {
        EVENT_TYPES.iter().copied().find(|t| t.as_str() == s)
    }

    /// The type-specific fields an event of this type may carry, required ones first.
    pub fn fields(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            EventType::Heartbeat | EventType::EngineStart => (&[], &[]),
            EventType::Order => (&["status", "venue", "side"], &["symbol", "latency_seconds"]),
            EventType::Fill => (&["symbol", "side", "quantity", "price"], &["notional"]),
            EventType::Decision => (&["decision"], &[]),
            EventType::Cycle => (&["duration_seconds"], &["result"]),
            EventType::Rebalance => (&["result"], &["duration_seconds", "drift_max_ratio"]),
            EventType::Portfolio => (&[], &["value", "cash", "currency", "positions"]),
            EventType::Limits => (&[], &["daily_loss_limit", "position_limits"]),
            EventType::Pnl => (
                &[],
                &[
                    "daily",
                    "realized",
                    "unrealized",
                    "drawdown_ratio",
                    "currency",
                ],
            ),
            EventType::CircuitBreaker => (&["breaker", "active"], &["reason"]),
            EventType::KillSwitch => (&["active"], &["reason"]),
            EventType::Connectivity => (&["target", "up"], &[]),
            EventType::ApiCall => (&["api"], &["duration_seconds", "ok", "code"]),
            EventType::DataProvider => (&["provider"], &["ok"]),
            EventType::Error => (&["component", "kind"], &["message"]),
            EventType::Span => (&["function", "duration_seconds"], &["ok"]),
            EventType::LockWait => (&["lock", "duration_seconds"], &[]),
            EventType::Metric => (&["kind", "name", "value"], &["labels", "help"]),
        }
    }
}

/// An event's time: RFC 3339 or Unix seconds.
#[derive(Clone, Copy, Debug)]
pub struct Ts(pub f64);

impl<'de> Deserialize<'de> for Ts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Ts, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Ts;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an RFC 3339 time or Unix seconds")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Ts, E> {
                if v.is_finite() && v >= 0.0 {
                    Ok(Ts(v))
                } else {
                    Err(E::custom("ts must be non-negative Unix seconds"))
                }
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Ts, E> {
                Ok(Ts(v as f64))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Ts, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Ts, E> {
                let t = chrono::DateTime::parse_from_rfc3339(v)
                    .map_err(|e| E::custom(format_args!("ts {v:?} is not RFC 3339: {e}")))?;
                let secs = t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9;
                self.visit_f64(secs)
            }
        }
        d.deserialize_any(V)
    }
}

/// An API error code: a string or an integer (an HTTP status, say).
#[derive(Debug)]
pub struct Code<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Code<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Code<'a>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Code<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Code<'de>, E> {
                Ok(Code(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Code<'de>, E> {
                Ok(Code(Cow::Owned(v.to_owned())))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Code<'de>, E> {
                Ok(Code(Cow::Owned(v.to_string())))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Code<'de>, E> {
                Ok(Code(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Code<'de>, E> {
                if v.fract() == 0.0 && v.abs() < 1e15 {
                    Ok(Code(Cow::Owned((v as i64).to_string())))
                } else {
                    Err(E::custom(format_args!(
                        "code must be a string or an integer, not {v}"
                    )))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads a present `ts`, refusing `null` (a missing `ts` is simply left out).
fn present_ts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Ts>, D::Error> {
    Ts::deserialize(d).map(Some)
}

/// One open position in a `portfolio` event.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position<'a> {
    /// The instrument.
    #[serde(borrow)]
    pub symbol: Cow<'a, str>,
    /// Quantity held.
    pub quantity: Option<f64>,
    /// Market value.
    pub value: Option<f64>,
}

/// An event as it arrives: every field of every type, each optional, checked against the type
/// afterwards so an unknown or misplaced field is named.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawEvent<'a> {
    #[serde(rename = "type", borrow)]
    pub kind_: Cow<'a, str>,
    #[serde(default, deserialize_with = "present_ts")]
    pub ts: Option<Ts>,
    #[serde(borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub engine: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub strategy: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub attrs: Option<&'a RawValue>,
    #[serde(borrow)]
    pub status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub venue: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub side: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub symbol: Option<Cow<'a, str>>,
    pub latency_seconds: Option<f64>,
    pub quantity: Option<f64>,
    pub price: Option<f64>,
    pub notional: Option<f64>,
    #[serde(borrow)]
    pub decision: Option<Cow<'a, str>>,
    pub duration_seconds: Option<f64>,
    #[serde(borrow)]
    pub result: Option<Cow<'a, str>>,
    pub drift_max_ratio: Option<f64>,
    pub value: Option<f64>,
    pub cash: Option<f64>,
    #[serde(borrow)]
    pub currency: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub positions: Option<Vec<Position<'a>>>,
    pub daily_loss_limit: Option<f64>,
    #[serde(borrow)]
    pub position_limits: Option<BTreeMap<Cow<'a, str>, f64>>,
    pub daily: Option<f64>,
    pub realized: Option<f64>,
    pub unrealized: Option<f64>,
    pub drawdown_ratio: Option<f64>,
    #[serde(borrow)]
    pub breaker: Option<Cow<'a, str>>,
    pub active: Option<bool>,
    #[serde(borrow)]
    pub reason: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub target: Option<Cow<'a, str>>,
    pub up: Option<bool>,
    #[serde(borrow)]
    pub api: Option<Cow<'a, str>>,
    pub ok: Option<bool>,
    #[serde(borrow)]
    pub code: Option<Code<'a>>,
    #[serde(borrow)]
    pub provider: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub component: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub message: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub function: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub lock: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub labels: Option<BTreeMap<Cow<'a, str>, Cow<'a, str>>>,
    #[serde(borrow)]
    pub help: Option<Cow<'a, str>>,
}

impl RawEvent<'_> {
    /// The names of the type-specific fields this event carries.
    pub fn present_fields(&self) -> Vec<&'static str> {
        let mut out = Vec::with_capacity(8);
        macro_rules! check {
            ($($f:ident),*) => { $( if self.$f.is_some() { out.push(stringify!($f)); } )* };
        }
        check!(
            status,
            venue,
            side,
            symbol,
            latency_seconds,
            quantity,
            price,
            notional,
            decision,
            duration_seconds,
            result,
            drift_max_ratio,
            value,
            cash,
            currency,
            positions,
            daily_loss_limit,
            position_limits,
            daily,
            realized,
            unrealized,
            drawdown_ratio,
            breaker,
            active,
            reason,
            target,
            up,
            api,
            ok,
            code,
            provider,
            component,
            kind,
            message,
            function,
            lock,
            name,
            labels,
            help
        );
        out
    }
}

/// Why an event was rejected: a reason for `tradewatch_events_rejected_total` and a message
/// for the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The `reason` label.
    pub reason: &'static str,
    /// What is wrong, in words.
    pub message: String,
}

impl Rejection {
    /// A rejection for `reason`.
    pub fn new(reason: &'static str, message: impl Into<String>) -> Rejection {
        Rejection {
            reason,
            message: message.into(),
        }
    }
}

/// Decodes one JSON object, naming the first problem.
pub fn decode(raw: &[u8]) -> Result<RawEvent<'_>, Rejection> {
    serde_json::from_slice(raw).map_err(|e| {
        let text = e.to_string();
        let mut msg = match text.rfind(" at line ") {
            Some(i) => text[..i].to_owned(),
            None => text.clone(),
        };
        let reason = if msg.starts_with("unknown field") {
            if let Some(i) = msg.find(", expected") {
                msg.truncate(i);
            }
            "unknown_field"
        } else if e.is_data() {
            "invalid_value"
        } else {
            "malformed"
        };
        if e.column() > 0 && reason == "malformed" {
            msg = format!("{msg} at column {}", e.column());
        }
        Rejection::new(reason, msg)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_is_named() {
        let err = decode(br#"{"type":"order","statsu":"filled"}"#).unwrap_err();
        assert_eq!(
            err,
            Rejection::new("unknown_field", "unknown field `statsu`")
        );
    }

    #[test]
    fn malformed_json_has_a_column() {
        let err = decode(br#"{"type":"order","#).unwrap_err();
        assert_eq!(err.reason, "malformed");
        assert!(err.message.contains("column"), "{}", err.message);
    }

    #[test]
    fn ts_forms() {
        let e = decode(br#"{"type":"heartbeat","ts":"2026-01-02T03:04:05.5Z"}"#).unwrap();
        assert_eq!(e.ts.unwrap().0, 1767323045.5);
        let e = decode(br#"{"type":"heartbeat","ts":1767323045.25}"#).unwrap();
        assert_eq!(e.ts.unwrap().0, 1767323045.25);
        assert!(decode(br#"{"type":"heartbeat","ts":"yesterday"}"#).is_err());
        assert!(decode(br#"{"type":"heartbeat","ts":-1}"#).is_err());
        let null = decode(br#"{"type":"heartbeat","ts":null}"#).unwrap_err();
        assert_eq!(
            null.message,
            "invalid type: null, expected an RFC 3339 time or Unix seconds"
        );
    }

    #[test]
    fn codes() {
        for (raw, code) in [
            (r#""E42""#, "E42"),
            ("500", "500"),
            ("500.0", "500"),
            ("-1", "-1"),
        ] {
            let text = format!(r#"{{"type":"api_call","api":"a","code":{raw}}}"#);
            assert_eq!(decode(text.as_bytes()).unwrap().code.unwrap().0, code);
        }
        let err = decode(br#"{"type":"api_call","api":"a","code":1.5}"#).unwrap_err();
        assert_eq!(err.message, "code must be a string or an integer, not 1.5");
    }

    #[test]
    fn every_type_round_trips_its_name() {
        for t in EVENT_TYPES {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
    }
}
