//! Alertmanager's v2 API (`api/v2/openapi.yaml`) over the notifier: `GET/POST /api/v2/alerts`,
//! `GET /api/v2/alerts/groups`, `GET/POST /api/v2/silences`, `GET/DELETE /api/v2/silence/{id}`,
//! `GET /api/v2/status` and `GET /api/v2/receivers`, with Alertmanager's field names, time
//! format, filters, sort orders and error payloads (a JSON string), so amtool, Grafana's
//! Alertmanager data source and Prometheus's `alerting:` work against tradewatch unchanged.
//! Every silence change is written to `state.db` before the reply.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::Shared;
use crate::config::Config;
use crate::notify::Alert;
use crate::notify::dispatch::{Dispatcher, Incoming};
use crate::notify::matcher::{MatchOp, Matcher, is_valid_label_name};
use crate::notify::pipeline::Notifier;
use crate::notify::silence::{Silence, SilenceError, SilenceState};
use crate::template::printf::quote;

/// What the Alertmanager API works on.
pub struct AlertmanagerApi {
    /// The running notifier.
    pub notifier: Arc<Notifier>,
    /// The routing configuration as `GET /api/v2/status` shows it (secrets masked); a reload
    /// replaces it.
    original: ShownConfig,
    /// When the API started (`uptime` in the status).
    started: DateTime<Utc>,
}

impl AlertmanagerApi {
    /// The API over `notifier`, showing the routing configuration that `config`'s `notifier`
    /// section names (its file, or the inline `notifier.config`) with secrets masked.
    pub fn new(notifier: Arc<Notifier>, config: &Config) -> AlertmanagerApi {
        let original = match routing_original(config) {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(error = %e, "The routing file cannot be shown in /api/v2/status.");
                String::new()
            }
        };
        AlertmanagerApi::with_original(notifier, original, Utc::now())
    }

    /// The API over `notifier` with the status's `config.original` and start time given.
    pub fn with_original(
        notifier: Arc<Notifier>,
        original: String,
        started: DateTime<Utc>,
    ) -> AlertmanagerApi {
        AlertmanagerApi {
            notifier,
            original: ShownConfig(Arc::new(RwLock::new(original))),
            started,
        }
    }

    /// The handle through which a reload replaces the configuration the status shows.
    pub fn shown_config(&self) -> ShownConfig {
        self.original.clone()
    }
}

/// The routing configuration `GET /api/v2/status` shows, shared with the reload path so that
/// the status follows `POST /-/reload` and SIGHUP as Alertmanager's does.
#[derive(Debug, Clone, Default)]
pub struct ShownConfig(Arc<RwLock<String>>);

impl ShownConfig {
    /// Shows the routing configuration of `config` (just put in force by a reload).
    pub fn update(&self, config: &Config) {
        let text = routing_original(config).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "The routing file cannot be shown in /api/v2/status.");
            String::new()
        });
        *self.0.write().expect("shown config lock") = text;
    }

    /// The text shown.
    pub fn text(&self) -> String {
        self.0.read().expect("shown config lock").clone()
    }
}

/// The keys whose values Alertmanager 0.25 keeps as secrets and prints as `<secret>`.
const SECRET_KEYS: [&str; 20] = [
    "smtp_auth_password",
    "smtp_auth_secret",
    "slack_api_url",
    "opsgenie_api_key",
    "wechat_api_secret",
    "victorops_api_key",
    "auth_password",
    "auth_secret",
    "password",
    "credentials",
    "bearer_token",
    "client_secret",
    "routing_key",
    "service_key",
    "api_key",
    "api_secret",
    "user_key",
    "token",
    "bot_token",
    "secret_key",
];

/// Replaces every secret value in an Alertmanager configuration by `<secret>`, as
/// Alertmanager's `Config.String()` does (slack's `api_url` is a secret there too).
fn mask_secrets(value: &mut Json, parent: Option<&str>) {
    match value {
        Json::Object(map) => {
            for (key, v) in map.iter_mut() {
                let secret = SECRET_KEYS.contains(&key.as_str())
                    || (key == "api_url" && parent == Some("slack_configs"));
                if secret && !v.is_null() {
                    *v = Json::String("<secret>".to_owned());
                } else {
                    mask_secrets(v, Some(key));
                }
            }
        }
        Json::Array(items) => {
            for item in items {
                mask_secrets(item, parent);
            }
        }
        _ => {}
    }
}

/// The routing configuration `config` names, as YAML with its secrets masked.
pub fn routing_original(config: &Config) -> Result<String, String> {
    let mut value = if let Some(file) = &config.notifier.config_file {
        let path = match &config.base_dir {
            Some(dir) => dir.join(file),
            None => file.clone(),
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        yaml_serde::from_str::<Json>(&text).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        config.notifier.config.clone().unwrap_or(Json::Null)
    };
    if value.is_null() {
        return Ok(String::new());
    }
    mask_secrets(&mut value, None);
    yaml_serde::to_string(&value).map_err(|e| e.to_string())
}

/// An error as Alertmanager's API gives it: a status and, usually, a JSON string.
#[derive(Debug)]
pub struct AmError {
    status: StatusCode,
    payload: Option<Json>,
}

impl AmError {
    fn bad_request(message: impl Into<String>) -> AmError {
        AmError {
            status: StatusCode::BAD_REQUEST,
            payload: Some(Json::String(message.into())),
        }
    }

    /// A malformed body, in go-openapi's shape `{"code", "message"}`.
    fn body(message: String) -> AmError {
        AmError {
            status: StatusCode::BAD_REQUEST,
            payload: Some(json!({"code": 400, "message": message})),
        }
    }

    fn internal(message: impl Into<String>) -> AmError {
        AmError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            payload: Some(Json::String(message.into())),
        }
    }

    fn not_found(payload: Option<&str>) -> AmError {
        AmError {
            status: StatusCode::NOT_FOUND,
            payload: payload.map(|p| Json::String(p.to_owned())),
        }
    }
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl IntoResponse for AmError {
    fn into_response(self) -> Response {
        no_store(match self.payload {
            Some(p) => (self.status, axum::Json(p)).into_response(),
            None => self.status.into_response(),
        })
    }
}

fn ok(body: Json) -> Response {
    no_store(axum::Json(body).into_response())
}

fn api(state: &Shared) -> Result<&AlertmanagerApi, AmError> {
    state
        .notifier
        .as_ref()
        .ok_or_else(|| AmError::not_found(Some("no notifier is configured")))
}

/// A time as Alertmanager writes it (go-openapi's `strfmt.DateTime`: RFC 3339, milliseconds).
fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Go's zero time, which amtool sends for a time it was not given.
fn is_go_zero(t: &DateTime<Utc>) -> bool {
    t.timestamp() == -62_135_596_800 && t.timestamp_subsec_nanos() == 0
}

// ---------------------------------------------------------------------------------------------
// Query parameters
// ---------------------------------------------------------------------------------------------

/// The query parameters of the alert and silence listings.
#[derive(Debug, Default)]
struct Query {
    filter: Vec<Matcher>,
    active: bool,
    silenced: bool,
    inhibited: bool,
    receiver: Option<regex::Regex>,
}

fn parse_bool(name: &str, v: &str) -> Result<bool, AmError> {
    // go-openapi's swag.ConvertBool.
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "ok" | "y" | "on" | "selected" | "checked" | "t" | "enabled" => {
            Ok(true)
        }
        "false" | "0" | "no" | "n" | "off" | "f" | "disabled" | "" => Ok(false),
        _ => Err(AmError::bad_request(format!(
            "{name} in query must be of type bool: {}",
            quote(v, false)
        ))),
    }
}

impl Query {
    fn parse(raw: Option<&str>) -> Result<Query, AmError> {
        let mut q = Query {
            active: true,
            silenced: true,
            inhibited: true,
            ..Query::default()
        };
        let pairs = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()).into_owned();
        for (name, value) in pairs {
            match name.as_str() {
                "filter" => q
                    .filter
                    .push(Matcher::parse(&value).map_err(|e| AmError::bad_request(e.to_string()))?),
                "active" => q.active = parse_bool(&name, &value)?,
                "silenced" => q.silenced = parse_bool(&name, &value)?,
                "inhibited" => q.inhibited = parse_bool(&name, &value)?,
                "unprocessed" => {
                    parse_bool(&name, &value)?;
                }
                "receiver" => {
                    let re = regex::Regex::new(&format!("^(?:{value})$")).map_err(|e| {
                        AmError::bad_request(format!("failed to parse receiver param: {e}"))
                    })?;
                    q.receiver = Some(re);
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

/// Alertmanager's `matchFilterLabels`: an equality matcher with an empty value also matches an
/// absent label; a negative one with an empty value matches any present label.
fn matches_filter(filter: &[Matcher], labels: &BTreeMap<String, String>) -> bool {
    filter.iter().all(|m| {
        let value = labels.get(&m.name);
        match m.op {
            MatchOp::NotEqual | MatchOp::NotRegex if m.value.is_empty() && value.is_some() => true,
            MatchOp::Equal | MatchOp::Regex if m.value.is_empty() && value.is_none() => true,
            _ => m.matches_value(value.map_or("", String::as_str)),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Alerts
// ---------------------------------------------------------------------------------------------

/// An alert's status: `(state, silencedBy, inhibitedBy)`.
fn status(
    d: &Dispatcher,
    alert: &Alert,
    now: DateTime<Utc>,
) -> (&'static str, Vec<String>, Vec<String>) {
    let (silences, inhibitors) = d.muted_by(&alert.labels, now);
    let silenced: Vec<String> = silences.into_iter().collect();
    let inhibited: Vec<String> = inhibitors.iter().map(ToString::to_string).collect();
    let state = if silenced.is_empty() && inhibited.is_empty() {
        "active"
    } else {
        "suppressed"
    };
    (state, silenced, inhibited)
}

/// Alertmanager's `alertFilter`: not ended, and passing the state switches and the matchers.
fn passes(d: &Dispatcher, q: &Query, alert: &Alert, now: DateTime<Utc>) -> bool {
    if alert.ends_at < now {
        return false;
    }
    let (state, silenced, inhibited) = status(d, alert, now);
    if !q.active && state == "active" {
        return false;
    }
    if !q.silenced && !silenced.is_empty() {
        return false;
    }
    if !q.inhibited && !inhibited.is_empty() {
        return false;
    }
    matches_filter(&q.filter, &alert.labels)
}

/// A `gettableAlert`.
fn gettable_alert(d: &Dispatcher, alert: &Alert, receivers: &[String], now: DateTime<Utc>) -> Json {
    let (state, silenced, inhibited) = status(d, alert, now);
    json!({
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": time(alert.starts_at),
        "endsAt": time(alert.ends_at),
        "updatedAt": time(alert.updated_at),
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint().to_string(),
        "receivers": receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
        "status": {"state": state, "silencedBy": silenced, "inhibitedBy": inhibited},
    })
}

/// The body of `GET /api/v2/alerts` at `now`: every alert not ended that passes the query,
/// by fingerprint.
fn alerts_at(d: &Dispatcher, q: &Query, now: DateTime<Utc>) -> Json {
    let mut out: Vec<(String, Json)> = Vec::new();
    for alert in d.alerts() {
        let receivers: Vec<String> = d
            .config()
            .route
            .matching(&alert.labels)
            .into_iter()
            .map(|r| r.opts.receiver.clone())
            .collect();
        if let Some(re) = &q.receiver
            && !receivers.iter().any(|r| re.is_match(r))
        {
            continue;
        }
        if !passes(d, q, alert, now) {
            continue;
        }
        out.push((
            alert.fingerprint().to_string(),
            gettable_alert(d, alert, &receivers, now),
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Json::Array(out.into_iter().map(|(_, a)| a).collect())
}

/// `GET /api/v2/alerts`.
pub async fn get_alerts(
    State(state): State<Shared>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AmError> {
    let am = api(&state)?;
    let q = Query::parse(raw.as_deref())?;
    let now = Utc::now();
    Ok(ok(am.notifier.with_dispatcher(|d| alerts_at(d, &q, now))))
}

/// One alert of `POST /api/v2/alerts` (a `postableAlert`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert {
    labels: Option<BTreeMap<String, Option<String>>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, Option<String>>>,
    #[serde(default)]
    starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    ends_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "generatorURL")]
    generator_url: Option<String>,
}

fn label_set_error(set: &BTreeMap<String, String>) -> Option<String> {
    set.keys()
        .find(|name| !is_valid_label_name(name))
        .map(|name| format!("invalid name {}", quote(name, false)))
}

/// Alertmanager's `Alert.Validate` of an alert whose times are filled in.
fn validate(incoming: &Incoming, start: DateTime<Utc>) -> Result<(), String> {
    if let Some(end) = incoming.ends_at
        && end < start
    {
        return Err("start time must be before end time".to_owned());
    }
    if let Some(e) = label_set_error(&incoming.labels) {
        return Err(format!("invalid label set: {e}"));
    }
    if incoming.labels.is_empty() {
        return Err("at least one label pair required".to_owned());
    }
    if let Some(e) = label_set_error(&incoming.annotations) {
        return Err(format!("invalid annotations: {e}"));
    }
    Ok(())
}

/// Reads a `postableAlerts` body into the alerts to take (labels with empty values dropped,
/// Go's zero times read as absent) and the validation errors of the others, as Alertmanager
/// does: the valid alerts are taken even when others are refused.
fn postable_alerts(
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(Vec<Incoming>, Vec<String>), AmError> {
    let posted: Vec<PostableAlert> = serde_json::from_slice(body)
        .map_err(|e| AmError::body(format!("parsing alerts body failed: {e}")))?;
    let mut valid = Vec::new();
    let mut errors = Vec::new();
    for (i, p) in posted.into_iter().enumerate() {
        let Some(labels) = p.labels else {
            return Err(AmError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                payload: Some(
                    json!({"code": 602, "message": format!("{i}.labels in body is required")}),
                ),
            });
        };
        let flatten = |m: BTreeMap<String, Option<String>>| -> BTreeMap<String, String> {
            m.into_iter()
                .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
                .collect()
        };
        let incoming = Incoming {
            labels: flatten(labels),
            annotations: p.annotations.map(flatten).unwrap_or_default(),
            starts_at: p.starts_at.filter(|t| !is_go_zero(t)),
            ends_at: p.ends_at.filter(|t| !is_go_zero(t)),
            generator_url: p.generator_url.unwrap_or_default(),
        };
        let start = incoming.starts_at.or(incoming.ends_at).unwrap_or(now);
        match validate(&incoming, start) {
            Ok(()) => valid.push(incoming),
            Err(e) => errors.push(e),
        }
    }
    Ok((valid, errors))
}

/// `POST /api/v2/alerts`: 200 with no body, or 400 with every validation error joined by
/// `; ` (the valid alerts are taken all the same).
pub async fn post_alerts(State(state): State<Shared>, body: Bytes) -> Result<Response, AmError> {
    let am = api(&state)?;
    let now = Utc::now();
    let (valid, errors) = postable_alerts(&body, now)?;
    if !valid.is_empty() {
        am.notifier.with_dispatcher(|d| {
            for incoming in valid {
                d.receive(incoming, now);
            }
        });
    }
    if !errors.is_empty() {
        let message = errors.join("; ");
        tracing::warn!(refused = errors.len(), error = %message, "Posted alerts refused.");
        return Err(AmError::bad_request(message));
    }
    Ok(no_store(StatusCode::OK.into_response()))
}

/// The body of `GET /api/v2/alerts/groups` at `now`: the groups with an alert passing the
/// query, each alert with the receivers of every group it shows in.
fn groups_at(d: &Dispatcher, q: &Query, now: DateTime<Utc>) -> Json {
    let mut kept = Vec::new();
    let mut receivers: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for group in d.groups() {
        if let Some(re) = &q.receiver
            && !re.is_match(&group.receiver)
        {
            continue;
        }
        let alerts: Vec<Alert> = group
            .alerts
            .iter()
            .filter(|a| passes(d, q, a, now))
            .cloned()
            .collect();
        if alerts.is_empty() {
            continue;
        }
        for a in &alerts {
            receivers
                .entry(a.fingerprint().0)
                .or_default()
                .push(group.receiver.clone());
        }
        kept.push((group.receiver, group.labels, alerts));
    }
    for r in receivers.values_mut() {
        r.sort();
    }
    let groups: Vec<Json> = kept
        .into_iter()
        .map(|(receiver, labels, alerts)| {
            let alerts: Vec<Json> = alerts
                .iter()
                .map(|a| {
                    let r = receivers
                        .get(&a.fingerprint().0)
                        .cloned()
                        .unwrap_or_default();
                    gettable_alert(d, a, &r, now)
                })
                .collect();
            json!({"labels": labels, "receiver": {"name": receiver}, "alerts": alerts})
        })
        .collect();
    Json::Array(groups)
}

/// `GET /api/v2/alerts/groups`.
pub async fn get_groups(
    State(state): State<Shared>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AmError> {
    let am = api(&state)?;
    let q = Query::parse(raw.as_deref())?;
    let now = Utc::now();
    Ok(ok(am.notifier.with_dispatcher(|d| groups_at(d, &q, now))))
}

// ---------------------------------------------------------------------------------------------
// Silences
// ---------------------------------------------------------------------------------------------

/// A `gettableSilence`.
fn gettable_silence(s: &Silence, now: DateTime<Utc>) -> Json {
    let matchers: Vec<Json> = s
        .matchers
        .iter()
        .map(|m| {
            json!({
                "name": m.name,
                "value": m.value,
                "isRegex": matches!(m.op, MatchOp::Regex | MatchOp::NotRegex),
                "isEqual": matches!(m.op, MatchOp::Equal | MatchOp::Regex),
            })
        })
        .collect();
    json!({
        "id": s.id,
        "status": {"state": s.state(now).as_str()},
        "updatedAt": time(s.updated_at),
        "matchers": matchers,
        "startsAt": time(s.starts_at),
        "endsAt": time(s.ends_at),
        "createdBy": s.created_by,
        "comment": s.comment,
    })
}

/// Alertmanager's `CheckSilenceMatchesFilterLabels`: every filter matcher is one of the
/// silence's (same name, operator and value).
fn silence_has(s: &Silence, filter: &[Matcher]) -> bool {
    filter.iter().all(|f| s.matchers.iter().any(|m| m == f))
}

/// The body of `GET /api/v2/silences` at `now`: active ones first (soonest end first), then
/// pending (soonest start first), then expired (latest end first).
fn silences_at(d: &Dispatcher, filter: &[Matcher], now: DateTime<Utc>) -> Json {
    let mut silences: Vec<&Silence> = d
        .silences()
        .iter()
        .filter(|s| silence_has(s, filter))
        .collect();
    let rank = |s: &Silence| match s.state(now) {
        SilenceState::Active => 0,
        SilenceState::Pending => 1,
        SilenceState::Expired => 2,
    };
    silences.sort_by(|a, b| {
        rank(a).cmp(&rank(b)).then_with(|| match a.state(now) {
            SilenceState::Active => a.ends_at.cmp(&b.ends_at),
            SilenceState::Pending => a.starts_at.cmp(&b.starts_at),
            SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
        })
    });
    Json::Array(
        silences
            .into_iter()
            .map(|s| gettable_silence(s, now))
            .collect(),
    )
}

/// `GET /api/v2/silences`.
pub async fn get_silences(
    State(state): State<Shared>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AmError> {
    let am = api(&state)?;
    let q = Query::parse(raw.as_deref())?;
    let now = Utc::now();
    Ok(ok(am
        .notifier
        .with_dispatcher(|d| silences_at(d, &q.filter, now))))
}

/// `GET /api/v2/silence/{id}`: the silence, or 404 with no body.
pub async fn get_silence(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, AmError> {
    let am = api(&state)?;
    let now = Utc::now();
    am.notifier
        .with_dispatcher(|d| d.silences().get(&id).map(|s| gettable_silence(s, now)))
        .map(ok)
        .ok_or(AmError::not_found(None))
}

/// A `postableSilence`'s matcher.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableMatcher {
    name: String,
    value: String,
    is_regex: bool,
    #[serde(default)]
    is_equal: Option<bool>,
}

/// A `postableSilence`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<PostableMatcher>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    created_by: String,
    comment: String,
}

/// How long an expired silence is kept (Alertmanager's `--data.retention` default).
const SILENCE_RETENTION: chrono::Duration = chrono::Duration::hours(120);

/// Checks a posted silence as Alertmanager's handler and `Silences.Set` do and stores it;
/// gives its id. Silences expired longer than [`SILENCE_RETENTION`] ago are dropped first, as
/// Alertmanager's maintenance drops them.
fn set_silence(
    d: &mut Dispatcher,
    p: PostableSilence,
    now: DateTime<Utc>,
) -> Result<String, AmError> {
    if p.matchers.is_empty() {
        return Err(AmError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            payload: Some(
                json!({"code": 612, "message": "matchers in body should have at least 1 items"}),
            ),
        });
    }
    if p.starts_at >= p.ends_at {
        return Err(AmError::bad_request(
            "Failed to create silence: start time must be before end time",
        ));
    }
    if p.ends_at < now {
        return Err(AmError::bad_request(
            "Failed to create silence: end time can't be in the past",
        ));
    }
    let mut matchers = Vec::new();
    for (i, m) in p.matchers.iter().enumerate() {
        let op = match (m.is_equal.unwrap_or(true), m.is_regex) {
            (true, false) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (false, true) => MatchOp::NotRegex,
        };
        let matcher = Matcher::new(op, &m.name, &m.value).map_err(|e| {
            AmError::bad_request(format!("silence invalid: invalid label matcher {i}: {e}"))
        })?;
        matchers.push(matcher);
    }
    let silence = Silence {
        id: p.id.unwrap_or_default(),
        matchers,
        starts_at: p.starts_at,
        ends_at: p.ends_at,
        created_by: p.created_by,
        comment: p.comment,
        updated_at: now,
    };
    d.silences_mut().gc(now, SILENCE_RETENTION);
    d.silences_mut().set(silence, now).map_err(|e| match e {
        SilenceError::NotFound(_) => AmError::not_found(Some("silence not found")),
        SilenceError::Invalid(m) => AmError::bad_request(format!("silence invalid: {m}")),
    })
}

/// Writes the silences to `state.db`; a failure is logged and answered with a bare 500.
async fn save(notifier: &Arc<Notifier>) -> Result<(), AmError> {
    let n = notifier.clone();
    match tokio::task::spawn_blocking(move || n.save_silences()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "Silences could not be saved.");
            Err(AmError::internal("failed to save silences"))
        }
        Err(_) => Err(AmError::internal("failed to save silences")),
    }
}

/// `POST /api/v2/silences`: creates a silence (no `id`) or updates one, `{"silenceID"}`.
pub async fn post_silences(State(state): State<Shared>, body: Bytes) -> Result<Response, AmError> {
    let am = api(&state)?;
    let posted: PostableSilence = serde_json::from_slice(&body)
        .map_err(|e| AmError::body(format!("parsing silence body failed: {e}")))?;
    let now = Utc::now();
    let id = am
        .notifier
        .with_dispatcher(|d| set_silence(d, posted, now))?;
    save(&am.notifier).await?;
    tracing::info!(silence = %id, "Silence set.");
    Ok(ok(json!({ "silenceID": id })))
}

/// `DELETE /api/v2/silence/{id}`: expires the silence (404 when unknown, 500 when it already
/// is, as Alertmanager answers).
pub async fn delete_silence(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, AmError> {
    let am = api(&state)?;
    let now = Utc::now();
    am.notifier.with_dispatcher(|d| {
        let silence = d.silences().get(&id).ok_or(AmError::not_found(None))?;
        if silence.state(now) == SilenceState::Expired {
            return Err(AmError::internal(format!("silence {id} already expired")));
        }
        d.silences_mut()
            .expire(&id, now)
            .map_err(|_| AmError::not_found(None))
    })?;
    save(&am.notifier).await?;
    tracing::info!(silence = %id, "Silence expired.");
    Ok(no_store(StatusCode::OK.into_response()))
}

// ---------------------------------------------------------------------------------------------
// Status and receivers
// ---------------------------------------------------------------------------------------------

/// `GET /api/v2/status`: no cluster, tradewatch's version, the routing configuration.
pub async fn status_handler(State(state): State<Shared>) -> Result<Response, AmError> {
    let am = api(&state)?;
    Ok(ok(json!({
        "cluster": {"status": "disabled", "peers": []},
        "versionInfo": {
            "version": env!("CARGO_PKG_VERSION"),
            "revision": option_env!("TRADEWATCH_REVISION").unwrap_or("unknown"),
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        },
        "config": {"original": am.original.text()},
        "uptime": time(am.started),
    })))
}

/// `GET /api/v2/receivers`: the receivers' names, in file order.
pub async fn receivers(State(state): State<Shared>) -> Result<Response, AmError> {
    let am = api(&state)?;
    let names: Vec<Json> = am.notifier.with_dispatcher(|d| {
        d.config()
            .receivers
            .iter()
            .map(|r| json!({"name": r.name}))
            .collect()
    });
    Ok(ok(Json::Array(names)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn filters_treat_empty_values_as_alertmanager_does() {
        let l = labels(&[("a", "1")]);
        let f = |s: &str| vec![Matcher::parse(s).unwrap()];
        assert!(matches_filter(&f("a=1"), &l));
        assert!(!matches_filter(&f("a=2"), &l));
        assert!(matches_filter(&f("b=\"\""), &l));
        assert!(!matches_filter(&f("a=\"\""), &l));
        assert!(matches_filter(&f("a!=\"\""), &l));
        assert!(matches_filter(&f("a!~\"\""), &l));
        assert!(!matches_filter(&f("b!~x"), &labels(&[("b", "x")])));
        assert!(matches_filter(&f("a=~\"1|2\""), &l));
    }

    #[test]
    fn secrets_are_masked() {
        let mut v: Json = yaml_serde::from_str(
            "global:\n  smtp_auth_password: hunter2\nreceivers:\n  - name: x\n    webhook_configs:\n      - url: http://h/\n        http_config:\n          authorization: {credentials: abc}\n    slack_configs:\n      - api_url: http://s/\n",
        )
        .unwrap();
        mask_secrets(&mut v, None);
        assert_eq!(v["global"]["smtp_auth_password"], "<secret>");
        let r = &v["receivers"][0];
        assert_eq!(r["webhook_configs"][0]["url"], "http://h/");
        assert_eq!(
            r["webhook_configs"][0]["http_config"]["authorization"]["credentials"],
            "<secret>"
        );
        assert_eq!(r["slack_configs"][0]["api_url"], "<secret>");
    }

    #[test]
    fn silences_expired_past_the_retention_are_dropped_at_the_next_change() {
        let config = crate::notify::config::AlertmanagerConfig::parse(
            "route:\n  receiver: x\nreceivers:\n  - name: x\n",
            "am.yml",
        )
        .unwrap();
        let mut d = Dispatcher::new(config);
        let t0: DateTime<Utc> = "2026-11-23T08:00:00Z".parse().unwrap();
        let posted = |start: DateTime<Utc>| PostableSilence {
            id: None,
            matchers: vec![PostableMatcher {
                name: "a".into(),
                value: "b".into(),
                is_regex: false,
                is_equal: None,
            }],
            starts_at: start,
            ends_at: start + chrono::Duration::hours(1),
            created_by: "desk".into(),
            comment: "c".into(),
        };
        let first = set_silence(&mut d, posted(t0), t0).unwrap();
        d.silences_mut().expire(&first, t0).unwrap();
        let later = t0 + chrono::Duration::hours(119);
        set_silence(&mut d, posted(later), later).unwrap();
        assert!(d.silences().get(&first).is_some());
        let much_later = t0 + chrono::Duration::hours(121);
        set_silence(&mut d, posted(much_later), much_later).unwrap();
        assert!(d.silences().get(&first).is_none());
        assert_eq!(d.silences().iter().count(), 2);
    }

    #[test]
    fn go_zero_time_is_absent() {
        let zero: DateTime<Utc> = "0001-01-01T00:00:00Z".parse().unwrap();
        assert!(is_go_zero(&zero));
        assert!(!is_go_zero(&Utc::now()));
    }
}
