//! The client commands: `query`, `alerts status`, `health`, `silence`. Each talks HTTP to a running process
//! (DESIGN §0: `--url`, default `http://127.0.0.1:9470` or `TRADEWATCH_URL`; `--token-file` or
//! `TRADEWATCH_TOKEN`) and says what to do next when it cannot.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

pub mod silence;

/// Where a client command connects.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// The process's URL (`run` and `demo` listen on :9470, a separate sidecar on :9471).
    #[arg(long, env = "TRADEWATCH_URL", default_value = "http://127.0.0.1:9470")]
    pub url: String,
    /// File holding a bearer token (the read token, or admin for changes).
    #[arg(long, env = "TRADEWATCH_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The process did not answer.
    #[error(
        "cannot reach tradewatch at {url}: {reason}; is it running? Pass --url (or set TRADEWATCH_URL) to point at it"
    )]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The token was refused or missing.
    #[error(
        "{url} asks for a token: pass --token-file FILE or set TRADEWATCH_TOKEN (the read token to read; the admin token to change silences or acks)"
    )]
    Unauthorized {
        /// The URL.
        url: String,
    },
    /// The process answered with an error.
    #[error("{message}")]
    Refused {
        /// What it said.
        message: String,
    },
    /// The token file.
    #[error("cannot read token file {path}: {source}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl Connection {
    fn token(&self) -> Result<Option<String>, ClientError> {
        if let Some(path) = &self.token_file {
            let text = std::fs::read_to_string(path).map_err(|source| ClientError::TokenFile {
                path: path.clone(),
                source,
            })?;
            return Ok(Some(text.trim().to_owned()));
        }
        Ok(std::env::var("TRADEWATCH_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()))
    }

    /// `GET {url}{path}` as JSON; `allow` lists non-2xx statuses whose JSON body is wanted too.
    pub async fn get(&self, path: &str, allow: &[u16]) -> Result<(u16, Value), ClientError> {
        self.call(reqwest::Method::GET, path, None, allow).await
    }

    /// `METHOD {url}{path}` with an optional JSON body; the reply as JSON (`null` when empty);
    /// `allow` lists non-2xx statuses whose body is wanted too.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        allow: &[u16],
    ) -> Result<(u16, Value), ClientError> {
        self.call_within(method, path, body, allow, Duration::from_secs(30))
            .await
    }

    /// [`Connection::call`] with its own limit on the whole exchange.
    async fn call_within(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        allow: &[u16],
        limit: Duration,
    ) -> Result<(u16, Value), ClientError> {
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        let mut request = self.client(Some(limit)).request(method, &url);
        if let Some(token) = self.token()? {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|e| ClientError::Unreachable {
            url: self.url.clone(),
            reason: e.to_string(),
        })?;
        let status = response.status().as_u16();
        if status == 401 {
            return Err(ClientError::Unauthorized { url: url.clone() });
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Unreachable {
                url: self.url.clone(),
                reason: e.to_string(),
            })?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&status) || allow.contains(&status) {
            return Ok((status, body));
        }
        if status == 404 && path.starts_with("/api/v1/") {
            return Err(ClientError::Refused {
                message: format!(
                    "{url}: not found; is this a sidecar or `run` process? A separate sidecar listens on :9471"
                ),
            });
        }
        if status == 404 && path.starts_with("/api/v2/") && body["error"].is_string() {
            return Err(ClientError::Refused {
                message: format!(
                    "{url}: not found; does this process run the notifier (notifier.config_file)? A separate sidecar listens on :9471"
                ),
            });
        }
        // tradewatch's errors are {"error"}; Alertmanager's API answers a JSON string or
        // {"code", "message"}.
        let message = body["error"]
            .as_str()
            .or(body.as_str())
            .or(body["message"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        Err(ClientError::Refused {
            message: format!("{url}: {status}: {message}"),
        })
    }
}

impl Connection {
    fn client(&self, timeout: Option<Duration>) -> reqwest::Client {
        crate::server::install_crypto_provider();
        let mut b = reqwest::Client::builder();
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b.build().expect("a client builds")
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let request = match self.token()? {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.map_err(|e| ClientError::Unreachable {
            url: self.url.clone(),
            reason: e.to_string(),
        })?;
        if response.status() == 401 {
            return Err(ClientError::Unauthorized {
                url: response.url().to_string(),
            });
        }
        Ok(response)
    }

    /// `POST {url}{path}` with an empty body; the JSON reply, or the error it carries.
    pub async fn post(&self, path: &str) -> Result<Value, ClientError> {
        self.post_json(path, None).await
    }

    /// `POST {url}{path}` with a JSON body when given; the JSON reply, or the error it carries.
    pub async fn post_json(&self, path: &str, body: Option<&Value>) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        let mut request = self.client(Some(Duration::from_secs(30))).post(&url);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = self.send(request).await?;
        let status = response.status();
        let body: Value = response.json_value().await;
        if status.is_success() {
            Ok(body)
        } else {
            Err(ClientError::Refused {
                message: format!(
                    "{url}: {}: {}",
                    status.as_u16(),
                    body["error"].as_str().unwrap_or("")
                ),
            })
        }
    }
}

trait JsonValue {
    async fn json_value(self) -> Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> Value {
        let bytes = self.bytes().await.unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }
}

fn use_colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn labels_text(labels: &serde_json::Map<String, Value>, skip: &[&str]) -> String {
    let parts: Vec<String> = labels
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={:?}", v.as_str().unwrap_or("")))
        .collect();
    parts.join(", ")
}

/// The line of `expr` a `line:col: parse error` in `error` points at, with a caret under the
/// column (after a newline), or nothing when the error has no position.
fn caret(expr: &str, error: &str) -> String {
    let Some(before) = error.find(": parse error: ").map(|i| &error[..i]) else {
        return String::new();
    };
    let mut nums = before.rsplit([' ', ':']).map(str::parse::<usize>);
    let (Some(Ok(column)), Some(Ok(line))) = (nums.next(), nums.next()) else {
        return String::new();
    };
    let Some(text) = expr.split('\n').nth(line.saturating_sub(1)) else {
        return String::new();
    };
    let pad: String = text
        .chars()
        .take(column.saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    format!("\n  {text}\n  {pad}^")
}

/// `tradewatch query EXPR`: prints the result as promtool's `query instant` does, or the
/// API's JSON with `json`.
pub async fn query(
    conn: &Connection,
    expr: &str,
    time: Option<&str>,
    timeout: Option<&str>,
    json: bool,
) -> Result<String, ClientError> {
    let mut path = format!(
        "/api/v1/query?query={}",
        url::form_urlencoded::byte_serialize(expr.as_bytes()).collect::<String>()
    );
    if let Some(t) = time {
        path.push_str("&time=");
        path.extend(url::form_urlencoded::byte_serialize(t.as_bytes()));
    }
    if let Some(t) = timeout {
        path.push_str("&timeout=");
        path.extend(url::form_urlencoded::byte_serialize(t.as_bytes()));
    }
    // Prometheus's error statuses: bad_data 400, execution 422, timeout 503. The server stops a
    // query at its own timeout (2 minutes by default), so the client waits a little longer.
    let (_, body) = conn
        .call_within(
            reqwest::Method::GET,
            &path,
            None,
            &[400, 422, 503],
            Duration::from_secs(150),
        )
        .await?;
    if body["status"] == "error" {
        let error = body["error"].as_str().unwrap_or("");
        return Err(ClientError::Refused {
            message: format!(
                "{}: {error}{}",
                body["errorType"].as_str().unwrap_or("error"),
                caret(expr, error)
            ),
        });
    }
    if json {
        return Ok(format!("{}\n", body["data"]));
    }
    let mut out = String::new();
    let data = &body["data"];
    match data["resultType"].as_str() {
        Some("vector") => {
            for s in data["result"].as_array().into_iter().flatten() {
                let labels = s["metric"].as_object().cloned().unwrap_or_default();
                let name = labels.get("__name__").and_then(Value::as_str).unwrap_or("");
                let rest: Vec<String> = labels
                    .iter()
                    .filter(|(k, _)| *k != "__name__")
                    .map(|(k, v)| format!("{k}={:?}", v.as_str().unwrap_or("")))
                    .collect();
                let _ = writeln!(
                    out,
                    "{name}{{{}}} => {} @[{}]",
                    rest.join(", "),
                    s["value"][1].as_str().unwrap_or(""),
                    s["value"][0]
                );
            }
        }
        Some("scalar") | Some("string") => {
            let _ = writeln!(
                out,
                "{} @[{}]",
                data["result"][1].as_str().unwrap_or(""),
                data["result"][0]
            );
        }
        _ => {
            let _ = writeln!(out, "{data}");
        }
    }
    Ok(out)
}

/// `tradewatch alerts status`: a table of the pending and firing alerts, most severe first.
pub async fn alerts_status(conn: &Connection) -> Result<String, ClientError> {
    let (_, body) = conn.get("/api/v1/alerts", &[]).await?;
    let mut alerts: Vec<Value> = body["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if alerts.is_empty() {
        return Ok("No alert is pending or firing.\n".to_owned());
    }
    let rank = |a: &Value| -> (u8, u8, String) {
        let state = if a["state"] == "firing" { 0 } else { 1 };
        let severity = match a["labels"]["severity"].as_str() {
            Some("critical") => 0,
            Some("warning") => 1,
            _ => 2,
        };
        (
            state,
            severity,
            a["activeAt"].as_str().unwrap_or("").to_owned(),
        )
    };
    alerts.sort_by_key(rank);
    let colour = use_colour();
    let rows: Vec<[String; 5]> = alerts
        .iter()
        .map(|a| {
            let labels = a["labels"].as_object().cloned().unwrap_or_default();
            [
                a["state"].as_str().unwrap_or("").to_owned(),
                labels
                    .get("severity")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                labels
                    .get("alertname")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                a["activeAt"].as_str().unwrap_or("").to_owned(),
                labels_text(&labels, &["alertname", "severity"]),
            ]
        })
        .collect();
    let header = ["STATE", "SEVERITY", "ALERT", "ACTIVE SINCE", "LABELS"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let line = |cells: &[String; 5], out: &mut String, paint: Option<&str>| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i == 4 {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        match paint {
            Some(code) => {
                let _ = writeln!(out, "\x1b[{code}m{}\x1b[0m", text.trim_end());
            }
            None => {
                let _ = writeln!(out, "{}", text.trim_end());
            }
        }
    };
    line(&header.map(str::to_owned), &mut out, None);
    for row in &rows {
        let paint = colour.then(|| match (row[0].as_str(), row[1].as_str()) {
            ("firing", "critical") => "1;31",
            ("firing", _) => "33",
            _ => "2",
        });
        line(row, &mut out, paint);
    }
    Ok(out)
}

/// `tradewatch health`: the checks, and the exit code 0, 1 or 2 for healthy, warning or
/// critical (2 too when the process cannot be reached).
pub async fn health(conn: &Connection) -> (String, u8) {
    match conn.get("/api/v1/health", &[503]).await {
        Err(e) => (format!("critical: {e}\n"), 2),
        Ok((_, body)) => {
            let status = body["status"].as_str().unwrap_or("critical");
            let mut out = format!("{status}\n");
            for c in body["checks"].as_array().into_iter().flatten() {
                let _ = writeln!(
                    out,
                    "  {:<8} {}: {}",
                    c["status"].as_str().unwrap_or(""),
                    c["name"].as_str().unwrap_or(""),
                    c["message"].as_str().unwrap_or("")
                );
            }
            let code = match status {
                "healthy" => 0,
                "warning" => 1,
                _ => 2,
            };
            (out, code)
        }
    }
}

/// One alert log line as `alerts tail` prints it.
pub fn log_line_text(line: &Value) -> String {
    let ts = line["ts"].as_str().unwrap_or("");
    match line["kind"].as_str() {
        Some("transition") => {
            let labels = line["labels"].as_object().cloned().unwrap_or_default();
            format!(
                "{ts}  {:<9} {}  {}  (was {}, value {})",
                line["to"].as_str().unwrap_or(""),
                line["alertname"].as_str().unwrap_or(""),
                labels_text(&labels, &["alertname"]),
                line["from"].as_str().unwrap_or(""),
                line["value"]
            )
        }
        Some("notification") => {
            let mut text = format!(
                "{ts}  {:<9} {} {} {} ({}, attempt {})",
                line["outcome"].as_str().unwrap_or(""),
                line["receiver"].as_str().unwrap_or(""),
                line["integration"].as_str().unwrap_or(""),
                line["group_key"].as_str().unwrap_or(""),
                line["status"].as_str().unwrap_or(""),
                line["attempt"]
            );
            if let Some(e) = line["error"].as_str() {
                let _ = write!(text, ": {e}");
            }
            text
        }
        _ => line.to_string(),
    }
}

/// `tradewatch alerts tail`: the alert log since `since`, then every new line, until the
/// process goes away or the user stops it; `json` prints the lines as they come.
pub async fn alerts_tail(
    conn: &Connection,
    since: Option<&str>,
    json: bool,
    mut out: impl std::io::Write,
) -> Result<(), ClientError> {
    let mut path = "/api/v1/alert-log?follow=1".to_owned();
    if let Some(t) = since {
        path.push_str("&since=");
        path.extend(url::form_urlencoded::byte_serialize(t.as_bytes()));
    }
    let url = format!("{}{path}", conn.url.trim_end_matches('/'));
    let mut response = conn.send(conn.client(None).get(&url)).await?;
    if !response.status().is_success() {
        let status = response.status().as_u16();
        let body = response.json_value().await;
        return Err(ClientError::Refused {
            message: format!("{url}: {status}: {}", body["error"].as_str().unwrap_or("")),
        });
    }
    let mut pending = Vec::new();
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|e| ClientError::Unreachable {
                url: conn.url.clone(),
                reason: e.to_string(),
            })?;
        let Some(chunk) = chunk else { return Ok(()) };
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            let printed = if json {
                text
            } else {
                serde_json::from_str::<Value>(&text)
                    .map(|v| log_line_text(&v))
                    .unwrap_or(text)
            };
            if writeln!(out, "{printed}")
                .and_then(|()| out.flush())
                .is_err()
            {
                return Ok(());
            }
        }
    }
}

/// `tradewatch outbox list`: a table of outbox items (dead ones by default).
pub async fn outbox_list(conn: &Connection, state: &str) -> Result<String, ClientError> {
    let path = format!("/api/v1/outbox?state={state}");
    let (_, body) = conn.get(&path, &[]).await?;
    let items = body["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return Ok(format!("No {state} outbox item.\n"));
    }
    let mut out = format!(
        "{:<6} {:<9} {:<20} {:<11} {:>8}  {:<25} {}\n",
        "ID", "STATE", "RECEIVER", "INTEGRATION", "ATTEMPTS", "CREATED", "LAST ERROR"
    );
    for i in items {
        let _ = writeln!(
            out,
            "{:<6} {:<9} {:<20} {:<11} {:>8}  {:<25} {}",
            i["id"],
            i["state"].as_str().unwrap_or(""),
            i["receiver"].as_str().unwrap_or(""),
            i["integration"].as_str().unwrap_or(""),
            i["attempts"],
            i["created_at"].as_str().unwrap_or(""),
            i["last_error"].as_str().unwrap_or("")
        );
    }
    Ok(out)
}

/// `tradewatch outbox retry ID…`: each dead item goes back to pending.
pub async fn outbox_retry(conn: &Connection, ids: &[i64]) -> Result<String, ClientError> {
    let mut out = String::new();
    for id in ids {
        conn.post(&format!("/api/v1/outbox/{id}/retry")).await?;
        let _ = writeln!(out, "outbox item {id}: queued again");
    }
    Ok(out)
}

/// What `tradewatch ack` acknowledges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckTarget {
    /// A firing alert, by fingerprint.
    Alert(String),
    /// Every alert firing in a group, by group key.
    Group(String),
}

/// `tradewatch ack FINGERPRINT | --group KEY`: one line per alert acknowledged.
pub async fn ack(
    conn: &Connection,
    target: &AckTarget,
    author: &str,
    comment: &str,
) -> Result<String, ClientError> {
    let reply = match target {
        AckTarget::Alert(fp) => {
            let body = serde_json::json!({"author": author, "comment": comment});
            conn.post_json(&format!("/api/v1/alerts/{fp}/ack"), Some(&body))
                .await?
        }
        AckTarget::Group(key) => {
            let body = serde_json::json!({"group_key": key, "author": author, "comment": comment});
            conn.post_json("/api/v1/groups/ack", Some(&body)).await?
        }
    };
    let mut out = String::new();
    for a in reply["acks"].as_array().into_iter().flatten() {
        let labels = a["labels"].as_object().cloned().unwrap_or_default();
        let _ = writeln!(
            out,
            "acknowledged {} {{{}}} by {}",
            a["fingerprint"].as_str().unwrap_or(""),
            labels_text(&labels, &[]),
            a["author"].as_str().unwrap_or("")
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parse_error_is_shown_under_its_column() {
        let error = r#"invalid parameter "query": 2:4: parse error: unexpected end of input in grouping opts, expected "(""#;
        assert_eq!(caret("sum(x)\n by", error), "\n   by\n     ^");
        assert_eq!(
            caret("x +", "invalid parameter \"query\": parse error: x"),
            ""
        );
        assert_eq!(caret("x", "no such series"), "");
    }
}
