//! The sidecar's Prometheus-compatible read API: `/api/v1/query`, `/api/v1/query_range`,
//! `/api/v1/series`, `/api/v1/labels`, `/api/v1/label/{name}/values`, `/api/v1/rules` and
//! `/api/v1/alerts`, in Prometheus's JSON shape (so Grafana's Prometheus data source, `promtool
//! query` and scripts written for Prometheus work against it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value as Json, json};

use super::Shared;
use crate::alerts::AlertState;
use crate::model::labels::Labels;
use crate::promql::{Engine, Expr, PromqlError, QueryResult, Value};
use crate::rules::RulesHandle;
use crate::rules::rule::CompiledRule;
use crate::rules::schedule::now_ms;
use crate::store::{Queryable, Store};

/// Most points a range query may return per series, as Prometheus limits it.
const MAX_POINTS: i64 = 11_000;

/// What the sidecar's read API works on.
pub struct SidecarApi {
    /// The rule layer in force.
    pub rules: RulesHandle,
    /// The store rules read.
    pub store: Arc<Store>,
    /// The notifier, when one is configured.
    pub notifier: Option<Arc<crate::notify::pipeline::Notifier>>,
    /// The alert log.
    pub log: Arc<crate::alerts::log::AlertLog>,
}

/// An error in Prometheus's shape: `{"status": "error", "errorType", "error"}`.
struct PromError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl PromError {
    fn bad_data(message: impl Into<String>) -> PromError {
        PromError {
            status: StatusCode::BAD_REQUEST,
            kind: "bad_data",
            message: message.into(),
        }
    }
}

impl PromError {
    /// An expression that does not parse, as Prometheus answers it:
    /// `invalid parameter "query": 1:10: parse error: unexpected …`.
    fn bad_query(param: &str, e: &crate::promql::ParseError) -> PromError {
        PromError::bad_data(format!(
            "invalid parameter {param:?}: {}",
            e.prometheus_text()
        ))
    }
}

impl From<PromqlError> for PromError {
    fn from(e: PromqlError) -> PromError {
        match e {
            PromqlError::Parse(p) => PromError::bad_query("query", &p),
            PromqlError::Timeout => PromError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                kind: "timeout",
                message: e.to_string(),
            },
            other => PromError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                kind: "execution",
                message: other.to_string(),
            },
        }
    }
}

impl IntoResponse for PromError {
    fn into_response(self) -> Response {
        let body = json!({"status": "error", "errorType": self.kind, "error": self.message});
        (self.status, axum::Json(body)).into_response()
    }
}

fn success(data: Json) -> Response {
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

/// Request parameters from the query string and, for a POST, the form body; a name may repeat.
struct Params(Vec<(String, String)>);

impl Params {
    fn new(query: Option<String>, body: &[u8]) -> Params {
        let mut pairs: Vec<(String, String)> = query
            .as_deref()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        pairs.extend(url::form_urlencoded::parse(body).into_owned());
        Params(pairs)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn time(&self, name: &str, default: i64) -> Result<i64, PromError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(v) => parse_time(v).ok_or_else(|| {
                PromError::bad_data(format!(
                    "invalid parameter \"{name}\": cannot parse {v:?} to a valid timestamp"
                ))
            }),
        }
    }
}

/// A time as Prometheus's API takes it: Unix seconds (with a fraction) or RFC 3339.
fn parse_time(v: &str) -> Option<i64> {
    if let Ok(secs) = v.parse::<f64>() {
        return secs.is_finite().then(|| (secs * 1000.0).round() as i64);
    }
    DateTime::parse_from_rfc3339(v)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// A step as Prometheus's API takes it: seconds or a Prometheus duration.
fn parse_step(v: &str) -> Option<i64> {
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs > 0.0).then(|| (secs * 1000.0).round() as i64);
    }
    crate::model::PromDuration::parse(v)
        .ok()
        .map(|d| d.as_duration().as_millis() as i64)
        .filter(|ms| *ms > 0)
}

/// A duration as Prometheus's API takes it (`timeout`): seconds or a Prometheus duration,
/// positive.
fn parse_duration(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .ok()
            .filter(|d| !d.is_zero());
    }
    crate::model::PromDuration::parse(v)
        .ok()
        .map(|d| d.as_duration())
        .filter(|d| !d.is_zero())
}

/// The engine for one query: `sidecar.query_timeout`, shortened by the request's `timeout`
/// parameter, as Prometheus bounds a query by both.
fn request_engine(api: &SidecarApi, params: &Params) -> Result<Engine, PromError> {
    let engine = api.rules.current().engine();
    let Some(v) = params.get("timeout").filter(|v| !v.is_empty()) else {
        return Ok(engine);
    };
    let asked = parse_duration(v).ok_or_else(|| {
        PromError::bad_data(format!(
            "invalid parameter \"timeout\": cannot parse {v:?} to a valid duration (seconds or a duration such as 30s, greater than zero)"
        ))
    })?;
    Ok(match engine.timeout() {
        Some(max) if max <= asked => engine,
        _ => engine.with_timeout(asked),
    })
}

/// Runs a query off the async workers (it may take up to its timeout).
async fn evaluate(
    store: Arc<Store>,
    run: impl FnOnce(&Store) -> Result<QueryResult, PromqlError> + Send + 'static,
) -> Result<QueryResult, PromError> {
    tokio::task::spawn_blocking(move || run(&store))
        .await
        .map_err(|e| PromError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "internal",
            message: format!("query evaluation failed: {e}"),
        })?
        .map_err(PromError::from)
}

/// A sample value as Prometheus's JSON writes it (Go's `FormatFloat(v, 'f', -1, 64)`).
fn value_string(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

/// A value as Prometheus's rules API writes alert values (Go's `FormatFloat(v, 'e', -1, 64)`).
fn value_e(v: f64) -> String {
    if !v.is_finite() {
        return value_string(v);
    }
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

fn seconds(t_ms: i64) -> Json {
    json!(t_ms as f64 / 1000.0)
}

fn metric(labels: &Labels) -> Json {
    let map: serde_json::Map<String, Json> = labels
        .iter()
        .map(|l| (l.name.to_string(), Json::String(l.value.to_string())))
        .collect();
    Json::Object(map)
}

fn result_json(value: Value) -> Json {
    match value {
        Value::Scalar { t, f } => {
            json!({"resultType": "scalar", "result": [seconds(t), value_string(f)]})
        }
        Value::String(s) => json!({"resultType": "string", "result": [seconds(now_ms()), s]}),
        Value::Vector(v) => json!({
            "resultType": "vector",
            "result": v.iter().map(|s| json!({"metric": metric(&s.labels), "value": [seconds(s.t), value_string(s.f)]})).collect::<Vec<_>>(),
        }),
        Value::Matrix(m) => json!({
            "resultType": "matrix",
            "result": m.iter().map(|s| json!({
                "metric": metric(&s.labels),
                "values": s.points.iter().map(|p| json!([seconds(p.t), value_string(p.f)])).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
    }
}

fn sidecar(state: &Shared) -> &SidecarApi {
    state
        .sidecar
        .as_ref()
        .expect("sidecar routes exist only with a sidecar")
}

/// `GET|POST /api/v1/query`.
pub async fn query(State(state): State<Shared>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let params = Params::new(q, &body);
    let prepare = || -> Result<(Engine, Expr, i64), PromError> {
        let expr = params.get("query").ok_or_else(|| {
            PromError::bad_data("invalid parameter \"query\": query must not be empty")
        })?;
        let t = params.time("time", now_ms())?;
        let engine = request_engine(sidecar(&state), &params)?;
        let parsed = crate::promql::parse(expr).map_err(PromqlError::from)?;
        Ok((engine, parsed, t))
    };
    let (engine, parsed, t) = match prepare() {
        Ok(prepared) => prepared,
        Err(e) => return e.into_response(),
    };
    let store = sidecar(&state).store.clone();
    match evaluate(store, move |store| engine.instant(store, &parsed, t)).await {
        Ok(result) => {
            let mut data = result_json(result.value);
            if !result.warnings.is_empty() || !result.infos.is_empty() {
                data["warnings"] = json!(result.warnings);
                data["infos"] = json!(result.infos);
            }
            success(data)
        }
        Err(e) => e.into_response(),
    }
}

/// `GET|POST /api/v1/query_range`.
pub async fn query_range(
    State(state): State<Shared>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let params = Params::new(q, &body);
    let prepare = || -> Result<(Engine, Expr, [i64; 3]), PromError> {
        let expr = params.get("query").ok_or_else(|| {
            PromError::bad_data("invalid parameter \"query\": query must not be empty")
        })?;
        let start = params.time("start", i64::MIN)?;
        let end = params.time("end", i64::MIN)?;
        if start == i64::MIN || end == i64::MIN {
            return Err(PromError::bad_data(
                "invalid parameter \"start\" or \"end\": both are required",
            ));
        }
        if end < start {
            return Err(PromError::bad_data(
                "invalid parameter \"end\": end timestamp must not be before start time",
            ));
        }
        let step = params.get("step").and_then(parse_step).ok_or_else(|| {
            PromError::bad_data("invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer")
        })?;
        if (end - start) / step > MAX_POINTS {
            return Err(PromError::bad_data(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        let engine = request_engine(sidecar(&state), &params)?;
        let parsed = crate::promql::parse(expr).map_err(PromqlError::from)?;
        Ok((engine, parsed, [start, end, step]))
    };
    let (engine, parsed, [start, end, step]) = match prepare() {
        Ok(prepared) => prepared,
        Err(e) => return e.into_response(),
    };
    let store = sidecar(&state).store.clone();
    match evaluate(store, move |store| {
        engine.range(store, &parsed, start, end, step)
    })
    .await
    {
        Ok(result) => success(result_json(result.value)),
        Err(e) => e.into_response(),
    }
}

/// The label sets of the series matching any `match[]` selector within the time range.
fn matching_series(state: &Shared, params: &Params) -> Result<BTreeSet<Labels>, PromError> {
    let api = sidecar(state);
    let now = now_ms();
    let start = params.time("start", now - 5 * 60_000)?;
    let end = params.time("end", now)?;
    let mut out = BTreeSet::new();
    for selector in params.all("match[]") {
        let expr =
            crate::promql::parse(selector).map_err(|e| PromError::bad_query("match[]", &e))?;
        let crate::promql::Expr::VectorSelector(vs) = &expr else {
            return Err(PromError::bad_data(format!(
                "invalid parameter \"match[]\": {selector:?} is not a series selector"
            )));
        };
        for matchers in crate::promql::selector_matchers(vs)? {
            api.store
                .select(&matchers, start, end, &mut |labels, _| {
                    out.insert(labels.clone());
                })
                .map_err(PromqlError::from)?;
        }
    }
    Ok(out)
}

/// `GET|POST /api/v1/series`.
pub async fn series(State(state): State<Shared>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let params = Params::new(q, &body);
    if params.all("match[]").is_empty() {
        return PromError::bad_data("no match[] parameter provided").into_response();
    }
    match matching_series(&state, &params) {
        Ok(set) => success(Json::Array(set.iter().map(metric).collect())),
        Err(e) => e.into_response(),
    }
}

/// `GET|POST /api/v1/labels`.
pub async fn labels(State(state): State<Shared>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let params = Params::new(q, &body);
    if params.all("match[]").is_empty() {
        return success(json!(sidecar(&state).store.label_names()));
    }
    match matching_series(&state, &params) {
        Ok(set) => {
            let names: BTreeSet<String> = set
                .iter()
                .flat_map(|l| l.iter().map(|l| l.name.to_string()).collect::<Vec<_>>())
                .collect();
            success(json!(names))
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /api/v1/label/{name}/values`.
pub async fn label_values(
    State(state): State<Shared>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let params = Params::new(q, &[]);
    if params.all("match[]").is_empty() {
        return success(json!(sidecar(&state).store.label_values(&name)));
    }
    match matching_series(&state, &params) {
        Ok(set) => {
            let values: BTreeSet<&str> = set.iter().filter_map(|l| l.get(&name)).collect();
            success(json!(values))
        }
        Err(e) => e.into_response(),
    }
}

fn rfc3339(ms: Option<i64>) -> String {
    match ms.and_then(DateTime::<Utc>::from_timestamp_millis) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        None => "0001-01-01T00:00:00Z".to_owned(),
    }
}

fn labels_json(pairs: &[(String, String)]) -> Json {
    let map: BTreeMap<&str, &str> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    json!(map)
}

fn alert_json(a: &crate::rules::ActiveAlert) -> Json {
    json!({
        "labels": metric(&a.labels),
        "annotations": a.annotations,
        "state": a.alert.state.as_str(),
        "activeAt": rfc3339(Some(a.alert.active_at)),
        "value": value_e(a.alert.value),
    })
}

fn shown(a: &crate::rules::ActiveAlert) -> bool {
    matches!(a.alert.state, AlertState::Pending | AlertState::Firing)
}

/// `GET /api/v1/rules`, with Prometheus's `type=alert|record` filter.
pub async fn rules(State(state): State<Shared>, RawQuery(q): RawQuery) -> Response {
    let params = Params::new(q, &[]);
    let only = params.get("type");
    let api = sidecar(&state);
    let mut groups = Vec::new();
    for runner in api.rules.current().groups() {
        let run = runner.snapshot();
        let mut rules = Vec::new();
        for (i, rule) in runner.group.rules.iter().enumerate() {
            let status = &run.rules[i];
            let mut entry = match rule {
                CompiledRule::Alerting(a) => {
                    if only == Some("record") {
                        continue;
                    }
                    let alerts: Vec<&crate::rules::ActiveAlert> = run
                        .state
                        .alerts
                        .get(i)
                        .map(|m| m.values().filter(|a| shown(a)).collect())
                        .unwrap_or_default();
                    let rule_state = alerts
                        .iter()
                        .map(|a| a.alert.state)
                        .max()
                        .map_or("inactive", |s| s.as_str());
                    let labels: Vec<(String, String)> = a
                        .labels
                        .iter()
                        .map(|(k, t)| (k.clone(), t.source().to_owned()))
                        .collect();
                    let annotations: Vec<(String, String)> = a
                        .annotations
                        .iter()
                        .map(|(k, t)| (k.clone(), t.source().to_owned()))
                        .collect();
                    json!({
                        "state": rule_state,
                        "name": a.alert,
                        "query": a.source,
                        "duration": a.hold.as_secs_f64(),
                        "keepFiringFor": a.keep_firing_for.as_secs_f64(),
                        "labels": labels_json(&labels),
                        "annotations": labels_json(&annotations),
                        "alerts": alerts.iter().map(|a| alert_json(a)).collect::<Vec<_>>(),
                        "type": "alerting",
                    })
                }
                CompiledRule::Recording(r) => {
                    if only == Some("alert") {
                        continue;
                    }
                    json!({
                        "name": r.record,
                        "query": r.source,
                        "labels": labels_json(&r.labels),
                        "type": "recording",
                    })
                }
            };
            entry["health"] = json!(status.health.as_str());
            if let Some(e) = &status.last_error {
                entry["lastError"] = json!(e);
            }
            entry["evaluationTime"] = json!(status.duration.as_secs_f64());
            entry["lastEvaluation"] = json!(rfc3339(status.last_evaluation));
            rules.push(entry);
        }
        groups.push(json!({
            "name": runner.group.name,
            "file": runner.group.file,
            "rules": rules,
            "interval": runner.group.interval.as_secs_f64(),
            "limit": runner.group.limit,
            "evaluationTime": run.last_duration.as_secs_f64(),
            "lastEvaluation": rfc3339(run.last_evaluation),
        }));
    }
    success(json!({ "groups": groups }))
}

/// `GET /api/v1/alerts`: pending and firing alerts.
pub async fn alerts(State(state): State<Shared>) -> Response {
    let api = sidecar(&state);
    let mut out = Vec::new();
    for runner in api.rules.current().groups() {
        let run = runner.snapshot();
        for alerts in &run.state.alerts {
            out.extend(alerts.values().filter(|a| shown(a)).map(alert_json));
        }
    }
    success(json!({ "alerts": out }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_format_as_prometheus_writes_them() {
        assert_eq!(value_string(1.0), "1");
        assert_eq!(value_string(0.5), "0.5");
        assert_eq!(value_string(1e6), "1000000");
        assert_eq!(value_string(f64::NEG_INFINITY), "-Inf");
        assert_eq!(value_e(1.0), "1e+00");
        assert_eq!(value_e(-1234.5), "-1.2345e+03");
        assert_eq!(value_e(0.001), "1e-03");
        assert_eq!(value_e(f64::NAN), "NaN");
        assert_eq!(parse_time("1.5"), Some(1500));
        assert_eq!(parse_time("2026-11-23T00:00:00Z"), Some(1_795_392_000_000));
        assert_eq!(parse_step("15s"), Some(15_000));
        assert_eq!(parse_step("0"), None);
        assert_eq!(parse_duration("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1ms"), Some(Duration::from_millis(1)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        for bad in ["0", "-1", "abc", "1x", "NaN", "inf", "0s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
