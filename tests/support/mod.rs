//! Helpers of the tests that run the real `tradewatch` binary and real outside programs
//! (python3's `prometheus_client`, `promtool`, `prometheus`): processes on free loopback ports,
//! readiness polling with a deadline, event posting, exposition parsing, and the one rule for
//! outside programs (run when installed, skip with one line when not, fail under `CI=true`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

/// The binary under test, as built by the same `cargo test` run.
pub const BIN: &str = env!("CARGO_BIN_EXE_tradewatch");

/// The Python helper that parses an exposition with `prometheus_client`.
pub const PARSE_EXPOSITION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/parse_exposition.py"
);

/// How long a process gets to become ready (or to exit) before the test fails.
pub const READY_DEADLINE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Outside programs
// ---------------------------------------------------------------------------------------------

/// An outside program a test needs: how to tell it is there and how to install it.
pub struct Needs {
    /// What is needed, in words.
    pub what: &'static str,
    /// A command that succeeds when it is there.
    pub probe: &'static [&'static str],
    /// How to install it.
    pub install: &'static str,
}

/// python3 with `prometheus_client` (its OpenMetrics and text parsers).
pub const PYTHON_PROMETHEUS_CLIENT: Needs = Needs {
    what: "python3 with prometheus_client",
    probe: &["python3", "-c", "import prometheus_client"],
    install: "pip install prometheus_client",
};

/// `promtool` (Debian's `prometheus` package).
pub const PROMTOOL: Needs = Needs {
    what: "promtool",
    probe: &["promtool", "--version"],
    install: "apt-get install prometheus",
};

/// The Prometheus server (Debian's `prometheus` package).
pub const PROMETHEUS: Needs = Needs {
    what: "prometheus",
    probe: &["prometheus", "--version"],
    install: "apt-get install prometheus",
};

/// Whether `CI=true`: then nothing may be skipped.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips `test` for `reason`: one line on stderr (written past the test harness's capture, so
/// it shows in a passing run), or a failure under `CI=true`.
pub fn skip(test: &str, reason: &str) {
    if ci() {
        panic!("{test}: {reason}, and nothing may be skipped under CI=true");
    }
    let _ = writeln!(std::io::stderr().lock(), "skipped: {test}: {reason}");
}

/// Whether every program in `needs` is installed. When one is not, `test` is skipped (see
/// [`skip`]) and the caller should return at once.
pub fn available(test: &str, needs: &[&Needs]) -> bool {
    for need in needs {
        let found = Command::new(need.probe[0])
            .args(&need.probe[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            skip(test, &format!("{} not found ({})", need.what, need.install));
            return false;
        }
    }
    true
}

/// Runs `program args` with `input` on stdin; returns its status, stdout and stderr.
pub fn run_with_input(program: &str, args: &[&str], input: &[u8]) -> (ExitStatus, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("waiting for the program");
    match writer.join().expect("stdin writer") {
        // A program that stops reading early says why in its status and stderr.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            panic!("writing to {program}: {e}")
        }
        _ => {}
    }
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// A free port on 127.0.0.1 (bound and released; a start that loses the race is retried).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a loopback port")
        .port()
}

/// A child process whose stdout and stderr go to a log file; killed (SIGKILL) when dropped
/// while still running.
pub struct Process {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Process {
    /// Starts `command` as `name`.
    pub fn spawn(name: &str, mut command: Command) -> Process {
        let log_dir = tempfile::tempdir().expect("a log directory");
        let log = log_dir.path().join("output.log");
        let file = File::create(&log).expect("creating the log");
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("cloning the log handle"))
            .stderr(file);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Process {
            name: name.to_owned(),
            child,
            status: None,
            log,
            _log_dir: log_dir,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("polling the child");
        }
        self.status
    }

    /// Sends SIGKILL and reaps it.
    pub fn kill9(&mut self) -> ExitStatus {
        if let Some(status) = self.try_wait() {
            return status;
        }
        self.child.kill().expect("sending SIGKILL");
        let status = self.child.wait().expect("reaping the child");
        self.status = Some(status);
        status
    }

    /// Sends `signal` (a name `kill -s` takes: TERM, INT, HUP…).
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status()
            .expect("running kill")
            .success();
        assert!(ok, "kill -s {signal} {} failed", self.pid());
    }

    /// Sends SIGTERM and waits, until `deadline`, for the process to exit.
    pub async fn terminate(&mut self, deadline: Duration) -> ExitStatus {
        if self.try_wait().is_none() {
            self.signal("TERM");
        }
        let started = Instant::now();
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            if started.elapsed() > deadline {
                let status = self.kill9();
                panic!(
                    "{} did not exit within {deadline:?} of SIGTERM (killed: {status})\n--- log ---\n{}",
                    self.name,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls `url` until it answers 200, the process exits, or `deadline` passes. On exit,
    /// returns the status as an error.
    pub async fn wait_ready(&mut self, url: &str, deadline: Duration) -> Result<(), ExitStatus> {
        let client = client_with_timeout(Duration::from_secs(2));
        let started = Instant::now();
        loop {
            if let Some(status) = self.try_wait() {
                return Err(status);
            }
            if let Ok(r) = client.get(url).send().await
                && r.status() == 200
            {
                return Ok(());
            }
            assert!(
                started.elapsed() < deadline,
                "{} not ready at {url} within {deadline:?}\n--- log ---\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP client for the tests (plain HTTP; no automatic decompression).
pub fn client() -> reqwest::Client {
    client_with_timeout(Duration::from_secs(60))
}

/// [`client`] with another request timeout.
pub fn client_with_timeout(timeout: Duration) -> reqwest::Client {
    tradewatch::server::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .no_gzip()
        .build()
        .expect("an HTTP client")
}

/// The reply to an ingest request.
#[derive(Debug)]
pub struct Posted {
    /// The HTTP status.
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// The JSON body.
    pub body: Value,
}

/// One NDJSON body of `events`.
pub fn ndjson(events: &[Value]) -> String {
    let mut body = String::new();
    for e in events {
        body.push_str(&serde_json::to_string(e).expect("an event serializes"));
        body.push('\n');
    }
    body
}

/// `POST /api/v1/events` of one exporter.
#[derive(Clone)]
pub struct Endpoint {
    client: reqwest::Client,
    url: String,
}

impl Endpoint {
    /// Posts `events` as NDJSON; a transport error or a reply that is not JSON is returned.
    pub async fn try_post(&self, events: &[Value]) -> Result<Posted, String> {
        let r = self
            .client
            .post(&self.url)
            .header("content-type", "application/x-ndjson")
            .body(ndjson(events))
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let status = r.status().as_u16();
        let retry_after = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap_or("<not ASCII>").to_owned());
        let bytes = r.bytes().await.map_err(|e| format!("{e:?}"))?;
        let body = serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "ingest reply ({status}) is not JSON: {e}: {}",
                String::from_utf8_lossy(&bytes)
            )
        })?;
        Ok(Posted {
            status,
            retry_after,
            body,
        })
    }
}

/// A running `tradewatch exporter` on a free loopback port.
pub struct Exporter {
    /// The process.
    pub process: Process,
    /// Its listener.
    pub addr: SocketAddr,
    /// Its data directory.
    pub data_dir: PathBuf,
    client: reqwest::Client,
}

impl Exporter {
    /// Starts an exporter on `data_dir` with the bundled configuration and waits until it
    /// answers `/-/healthy`.
    pub async fn start(data_dir: &Path) -> Exporter {
        Exporter::start_with(data_dir, &[]).await
    }

    /// Starts an exporter with extra command-line arguments (`--config FILE`, say).
    pub async fn start_with(data_dir: &Path, extra: &[&str]) -> Exporter {
        Exporter::start_role("exporter", data_dir, extra).await
    }

    /// Starts `tradewatch ROLE` (exporter, sidecar or run) with extra command-line arguments
    /// and waits until it answers `/-/healthy`.
    pub async fn start_role(role: &str, data_dir: &Path, extra: &[&str]) -> Exporter {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
            let mut command = Command::new(BIN);
            command
                .arg(role)
                .arg("--listen")
                .arg(addr.to_string())
                .arg("--data-dir")
                .arg(data_dir)
                .args(extra)
                .env_remove("TRADEWATCH_CONFIG")
                .env("NO_COLOR", "1")
                .env("TRADEWATCH_LOG", "info");
            let mut process = Process::spawn(&format!("tradewatch {role}"), command);
            let url = format!("http://{addr}/-/healthy");
            match process.wait_ready(&url, READY_DEADLINE).await {
                Ok(()) => {
                    return Exporter {
                        process,
                        addr,
                        data_dir: data_dir.to_owned(),
                        client: client(),
                    };
                }
                Err(_) if attempt < 3 && process.log().contains("in use") => continue,
                Err(status) => panic!(
                    "tradewatch {role} exited before it was ready ({status})\n--- log ---\n{}",
                    process.log()
                ),
            }
        }
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The test client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The ingest endpoint, to post from several tasks.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            client: self.client.clone(),
            url: self.url("/api/v1/events"),
        }
    }

    /// Posts `events` as NDJSON; a transport error or a reply that is not JSON is returned.
    pub async fn try_post(&self, events: &[Value]) -> Result<Posted, String> {
        self.endpoint().try_post(events).await
    }

    /// Posts `events` as NDJSON.
    pub async fn post(&self, events: &[Value]) -> Posted {
        self.try_post(events)
            .await
            .unwrap_or_else(|e| panic!("POST /api/v1/events: {e}\n--- log ---\n{}", self.log()))
    }

    /// Posts `events` and asserts every one was accepted.
    pub async fn post_all(&self, events: &[Value]) {
        let posted = self.post(events).await;
        assert_eq!(posted.status, 200, "{posted:?}");
        assert_eq!(
            posted.body,
            json!({"accepted": events.len(), "duplicates": 0, "rejected": []}),
        );
    }

    /// `GET path` with `headers`: status, headers and body.
    pub async fn get(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let mut request = self.client.get(self.url(path));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let r = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n--- log ---\n{}", self.log()));
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await.expect("reading the body").to_vec();
        (status, headers, body)
    }

    /// `/metrics` as OpenMetrics text.
    pub async fn openmetrics(&self) -> String {
        let (status, headers, body) = self
            .get(
                "/metrics",
                &[(
                    "accept",
                    "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
                )],
            )
            .await;
        assert_eq!(status, 200);
        let content_type = headers["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("application/openmetrics-text; version=1.0.0"),
            "{content_type}"
        );
        String::from_utf8(body).expect("UTF-8 exposition")
    }

    /// `/metrics` as Prometheus text 0.0.4 (no `Accept` header, as old scrapers send).
    pub async fn text(&self) -> String {
        let (status, headers, body) = self.get("/metrics", &[]).await;
        assert_eq!(status, 200);
        let content_type = headers["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        String::from_utf8(body).expect("UTF-8 exposition")
    }

    /// `/api/v1/health`: status and body.
    pub async fn health(&self) -> (u16, Value) {
        let (status, _, body) = self.get("/api/v1/health", &[]).await;
        let body = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "health is not JSON: {e}: {}",
                String::from_utf8_lossy(&body)
            )
        });
        (status, body)
    }

    /// What the process logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

// ---------------------------------------------------------------------------------------------
// Expositions
// ---------------------------------------------------------------------------------------------

/// The samples of an exposition whose name starts with one of `prefixes`, keyed by the series
/// as written (`name{labels}`). Reads the output of our own encoder (no timestamps or
/// exemplars), so the value is the last field of a line.
pub fn samples(text: &str, prefixes: &[&str]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if !prefixes.iter().any(|p| line.starts_with(p)) {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample line: {line:?}"));
        let value = parse_value(value).unwrap_or_else(|| panic!("bad value in {line:?}"));
        let previous = out.insert(series.to_owned(), value);
        assert!(previous.is_none(), "series written twice: {series}");
    }
    out
}

/// Splits a series as written, `name{a="x",b="y"}`, into its name and labels (escapes undone).
pub fn split_series(series: &str) -> (&str, BTreeMap<String, String>) {
    let Some((name, rest)) = series.split_once('{') else {
        return (series, BTreeMap::new());
    };
    let block = rest
        .strip_suffix('}')
        .unwrap_or_else(|| panic!("unterminated labels: {series:?}"));
    let mut labels = BTreeMap::new();
    let mut chars = block.chars().peekable();
    while chars.peek().is_some() {
        let label: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(
            chars.next(),
            Some('"'),
            "label value not quoted: {series:?}"
        );
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => panic!("dangling escape: {series:?}"),
                },
                Some(c) => value.push(c),
                None => panic!("unterminated label value: {series:?}"),
            }
        }
        labels.insert(label, value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    (name, labels)
}

/// The value of the sample `name` with exactly `labels` in `samples` (from [`samples`]).
pub fn value_of(
    samples: &BTreeMap<String, f64>,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut found = None;
    for (series, value) in samples {
        let (n, l) = split_series(series);
        if n == name && l == want {
            assert!(found.is_none(), "{name} {labels:?} appears twice");
            found = Some(*value);
        }
    }
    found
}

/// A sample value as the exposition formats write it.
pub fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        s => s.parse().ok(),
    }
}

/// A family as `prometheus_client` parsed it.
#[derive(Debug, Deserialize)]
pub struct PyFamily {
    /// Family name (without `_total` for counters).
    pub name: String,
    /// counter, gauge, histogram…
    #[serde(rename = "type")]
    pub kind: String,
    /// HELP text.
    pub help: String,
    /// UNIT (OpenMetrics only; empty when absent).
    pub unit: Option<String>,
    /// Its samples.
    pub samples: Vec<PySample>,
}

/// A sample as `prometheus_client` parsed it.
#[derive(Debug, Clone, Deserialize)]
pub struct PySample {
    /// Sample name (`_total`, `_bucket`… included).
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Value: a number, or "NaN", "+Inf", "-Inf".
    pub value: Value,
}

impl PySample {
    /// The value as a number.
    pub fn value(&self) -> f64 {
        match &self.value {
            Value::Number(n) => n.as_f64().expect("a finite number"),
            Value::String(s) => parse_value(s).expect("NaN or an infinity"),
            v => panic!("sample value {v}"),
        }
    }
}

/// Parses `text` with `prometheus_client` (`format`: "openmetrics" or "text"); a parse error
/// fails the test with the parser's message.
pub fn python_parse(format: &str, text: &str) -> Vec<PyFamily> {
    let (status, stdout, stderr) =
        run_with_input("python3", &[PARSE_EXPOSITION, format], text.as_bytes());
    assert!(
        status.success(),
        "prometheus_client's {format} parser refused the exposition ({status}):\n{stderr}\n--- exposition ---\n{text}"
    );
    serde_json::from_str(&stdout).expect("the helper prints JSON")
}

/// Every sample of `families`.
pub fn all_samples(families: &[PyFamily]) -> Vec<PySample> {
    families
        .iter()
        .flat_map(|f| f.samples.iter().cloned())
        .collect()
}

/// Whether two sample values agree (relative 1e-9, to allow for summed fractions).
pub fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) || (a.is_nan() && b.is_nan())
}

// ---------------------------------------------------------------------------------------------
// Events of every type and what they must show
// ---------------------------------------------------------------------------------------------

/// The engine of the every-type batch.
pub const ENGINE: &str = "eng-1";
/// A strategy whose label value needs escaping: quotes, backslashes, a newline, non-ASCII.
pub const STRATEGY: &str = "mean-rev \"v2\" C:\\models\\ line1\nline2 é";
/// A `metric` label value that needs escaping.
pub const TRICKY: &str = "say \"hi\" \\ back\\slash\nnext line ✓";

/// One sample the every-type batch must produce.
#[derive(Debug, Clone)]
pub struct Expected {
    /// Sample name.
    pub name: &'static str,
    /// Its exact label set.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The every-type batch, its samples and the series it must not leave.
pub struct EveryType {
    /// The events, one of each type of DESIGN §1's table and more.
    pub events: Vec<Value>,
    /// Samples that must be exposed, with exact labels and values.
    pub expected: Vec<Expected>,
    /// (sample name, labels) that must not be exposed.
    pub absent: Vec<(&'static str, BTreeMap<String, String>)>,
    /// Families (as `prometheus_client` names them) and their types.
    pub types: Vec<(&'static str, &'static str)>,
}

fn rfc3339(unix: f64) -> String {
    let secs = unix.floor();
    let nanos = ((unix - secs) * 1e9).round() as u32;
    chrono::DateTime::from_timestamp(secs as i64, nanos)
        .expect("a valid time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A batch covering every event type of DESIGN §1 (times relative to `base`, whole Unix
/// seconds), with what `/metrics` must show after it.
#[allow(clippy::too_many_lines)]
pub fn every_type(base: i64) -> EveryType {
    let b = base as f64;
    let e = ENGINE;
    let events = vec![
        json!({"type": "engine_start", "engine": e, "ts": base}),
        json!({"type": "heartbeat", "engine": e, "ts": rfc3339(b + 30.25)}),
        json!({"type": "order", "engine": e, "strategy": STRATEGY, "ts": b + 1.0, "id": "ord-1",
               "status": "filled", "venue": "XNAS", "side": "buy", "symbol": "AAPL",
               "latency_seconds": 0.042,
               "attrs": {"order_id": "A-1", "note": "free text, \"quoted\"\nand more", "n": [1, 2]}}),
        json!({"type": "order", "engine": e, "ts": b + 2.0, "status": "rejected", "venue": "XNAS",
               "side": "sell", "latency_seconds": 0.5, "attrs": {"reason": "price band"}}),
        json!({"type": "fill", "engine": e, "strategy": STRATEGY, "ts": b + 2.0, "id": "fill-1",
               "symbol": "AAPL", "side": "buy", "quantity": 10, "price": 187.5}),
        json!({"type": "fill", "engine": e, "ts": b + 2.0, "symbol": "MSFT", "side": "sell",
               "quantity": 3, "price": 400, "notional": 1199.5}),
        json!({"type": "decision", "engine": e, "strategy": "s2", "ts": b + 2.0,
               "decision": "enter_long"}),
        json!({"type": "decision", "ts": b + 3.0, "decision": "hold"}),
        json!({"type": "cycle", "engine": e, "ts": b + 3.0, "duration_seconds": 0.3}),
        json!({"type": "cycle", "engine": e, "ts": b + 3.0, "duration_seconds": 1.5,
               "result": "error"}),
        json!({"type": "rebalance", "engine": e, "ts": rfc3339(b + 5.5), "result": "partial",
               "duration_seconds": 2.0, "drift_max_ratio": 0.07}),
        json!({"type": "rebalance", "engine": e, "ts": b + 6.0, "result": "failed"}),
        json!({"type": "portfolio", "engine": e, "ts": b + 7.0, "value": 1_000_000.5,
               "cash": 250_000, "currency": "USD",
               "positions": [{"symbol": "AAPL", "quantity": 100, "value": 18750},
                             {"symbol": "MSFT", "quantity": 0, "value": 0}]}),
        json!({"type": "portfolio", "engine": e, "ts": b + 8.0, "value": 1_000_100.25,
               "positions": [{"symbol": "AAPL", "quantity": 120, "value": 22500}]}),
        json!({"type": "limits", "engine": e, "ts": b + 8.0, "daily_loss_limit": 5000,
               "position_limits": {"AAPL": 1000, "MSFT": 500}}),
        json!({"type": "pnl", "engine": e, "strategy": STRATEGY, "ts": b + 9.0, "id": "pnl-1",
               "daily": -120.5, "realized": 300.25, "unrealized": -420.75,
               "drawdown_ratio": 0.015}),
        json!({"type": "pnl", "engine": e, "ts": b + 9.0, "daily": 10, "currency": "EUR"}),
        json!({"type": "circuit_breaker", "engine": e, "ts": b + 10.0, "breaker": "max_loss",
               "active": true, "reason": "loss over the limit"}),
        json!({"type": "circuit_breaker", "engine": e, "ts": b + 11.0, "breaker": "max_loss",
               "active": true}),
        json!({"type": "circuit_breaker", "engine": e, "ts": b + 11.0, "breaker": "latency",
               "active": false}),
        json!({"type": "kill_switch", "engine": e, "ts": b + 12.0, "active": true,
               "reason": "manual"}),
        json!({"type": "connectivity", "engine": e, "ts": b + 12.0, "target": "broker-fix",
               "up": false}),
        json!({"type": "connectivity", "engine": e, "ts": b + 12.0, "target": "market-data",
               "up": true}),
        json!({"type": "api_call", "engine": e, "ts": b + 13.0, "api": "orders",
               "duration_seconds": 0.25, "ok": false, "code": 503}),
        json!({"type": "api_call", "engine": e, "ts": b + 13.0, "api": "orders",
               "duration_seconds": 0.01}),
        json!({"type": "api_call", "engine": e, "ts": b + 13.0, "api": "positions", "ok": false}),
        json!({"type": "data_provider", "engine": e, "ts": b + 14.0, "provider": "polygon",
               "ok": false}),
        json!({"type": "data_provider", "engine": e, "ts": b + 14.0, "provider": "polygon"}),
        json!({"type": "error", "engine": e, "ts": b + 15.0, "component": "risk",
               "kind": "timeout", "message": "risk check timed out"}),
        json!({"type": "span", "engine": e, "ts": b + 16.0, "function": "compute_signals",
               "duration_seconds": 0.012}),
        json!({"type": "span", "engine": e, "ts": b + 16.0, "function": "compute_signals",
               "duration_seconds": 0.02, "ok": false}),
        json!({"type": "lock_wait", "engine": e, "ts": b + 17.0, "lock": "book",
               "duration_seconds": 0.0005}),
        json!({"type": "metric", "engine": e, "ts": b + 18.0, "kind": "counter",
               "name": "desk_widgets_total", "value": 1.25, "help": "Widgets made at a desk.",
               "labels": {"desk": TRICKY, "region": "eu"}}),
        json!({"type": "metric", "engine": e, "ts": b + 18.0, "id": "w-2", "kind": "counter",
               "name": "desk_widgets_total", "value": 2.25, "help": "Widgets made at a desk.",
               "labels": {"desk": TRICKY, "region": "eu"}}),
        json!({"type": "metric", "engine": e, "strategy": "s2", "ts": b + 18.0,
               "kind": "counter", "name": "desk_requests_total", "value": 0,
               "help": "Requests a desk made."}),
        json!({"type": "metric", "engine": e, "ts": b + 19.0, "kind": "gauge",
               "name": "desk_queue_depth", "value": 7, "help": "Orders queued at a desk.",
               "labels": {"queue": "in"}}),
        json!({"type": "metric", "engine": e, "ts": b + 19.0, "kind": "gauge",
               "name": "desk_queue_depth", "value": -3.25, "help": "Orders queued at a desk.",
               "labels": {"queue": "in"}}),
        json!({"type": "metric", "engine": e, "ts": b + 20.0, "kind": "histogram",
               "name": "desk_fetch_duration_seconds", "value": 0.2,
               "help": "Time to fetch a desk's data.", "labels": {"source": "s3"}}),
        json!({"type": "metric", "engine": e, "ts": b + 20.0, "kind": "histogram",
               "name": "desk_fetch_duration_seconds", "value": 3.0,
               "help": "Time to fetch a desk's data.", "labels": {"source": "s3"}}),
    ];
    let x = |name: &'static str, pairs: &[(&str, &str)], value: f64| Expected {
        name,
        labels: labels(pairs),
        value,
    };
    let en = ("engine", e);
    let st = ("strategy", STRATEGY);
    let expected = vec![
        x(
            "trading_engine_heartbeat_timestamp_seconds",
            &[en],
            b + 30.25,
        ),
        x(
            "trading_engine_heartbeat_timestamp_seconds",
            &[("engine", "default")],
            b + 3.0,
        ),
        x("trading_engine_start_time_seconds", &[en], b),
        x(
            "trading_orders_total",
            &[
                en,
                st,
                ("venue", "XNAS"),
                ("side", "buy"),
                ("status", "filled"),
            ],
            1.0,
        ),
        x(
            "trading_orders_total",
            &[
                en,
                ("venue", "XNAS"),
                ("side", "sell"),
                ("status", "rejected"),
            ],
            1.0,
        ),
        x(
            "trading_order_latency_seconds_count",
            &[en, ("venue", "XNAS")],
            2.0,
        ),
        x(
            "trading_order_latency_seconds_sum",
            &[en, ("venue", "XNAS")],
            0.542,
        ),
        x(
            "trading_order_latency_seconds_bucket",
            &[en, ("venue", "XNAS"), ("le", "0.05")],
            1.0,
        ),
        x(
            "trading_order_latency_seconds_bucket",
            &[en, ("venue", "XNAS"), ("le", "0.25")],
            1.0,
        ),
        x(
            "trading_order_latency_seconds_bucket",
            &[en, ("venue", "XNAS"), ("le", "0.5")],
            2.0,
        ),
        x(
            "trading_order_latency_seconds_bucket",
            &[en, ("venue", "XNAS"), ("le", "+Inf")],
            2.0,
        ),
        x(
            "trading_fills_total",
            &[en, st, ("symbol", "AAPL"), ("side", "buy")],
            1.0,
        ),
        x(
            "trading_traded_notional_total",
            &[en, st, ("symbol", "AAPL"), ("side", "buy")],
            1875.0,
        ),
        x(
            "trading_fills_total",
            &[en, ("symbol", "MSFT"), ("side", "sell")],
            1.0,
        ),
        x(
            "trading_traded_notional_total",
            &[en, ("symbol", "MSFT"), ("side", "sell")],
            1199.5,
        ),
        x(
            "trading_decisions_total",
            &[en, ("strategy", "s2"), ("decision", "enter_long")],
            1.0,
        ),
        x(
            "trading_decisions_total",
            &[("engine", "default"), ("decision", "hold")],
            1.0,
        ),
        x("trading_cycles_total", &[en, ("result", "ok")], 1.0),
        x("trading_cycles_total", &[en, ("result", "error")], 1.0),
        x("trading_cycle_duration_seconds_count", &[en], 2.0),
        x("trading_cycle_duration_seconds_sum", &[en], 1.8),
        x(
            "trading_cycle_duration_seconds_bucket",
            &[en, ("le", "0.5")],
            1.0,
        ),
        x(
            "trading_cycle_duration_seconds_bucket",
            &[en, ("le", "2.5")],
            2.0,
        ),
        x(
            "trading_rebalances_total",
            &[en, ("result", "partial")],
            1.0,
        ),
        x("trading_rebalances_total", &[en, ("result", "failed")], 1.0),
        x("trading_rebalance_duration_seconds_count", &[en], 1.0),
        x("trading_rebalance_duration_seconds_sum", &[en], 2.0),
        x("trading_last_rebalance_timestamp_seconds", &[en], b + 5.5),
        x("trading_drift_max_ratio", &[en], 0.07),
        x(
            "trading_portfolio_value",
            &[en, ("currency", "USD")],
            1_000_100.25,
        ),
        x(
            "trading_cash_balance",
            &[en, ("currency", "USD")],
            250_000.0,
        ),
        x("trading_positions_open", &[en], 1.0),
        x(
            "trading_position_quantity",
            &[en, ("symbol", "AAPL")],
            120.0,
        ),
        x("trading_position_value", &[en, ("symbol", "AAPL")], 22500.0),
        x("trading_position_limit", &[en, ("symbol", "AAPL")], 1000.0),
        x("trading_position_limit", &[en, ("symbol", "MSFT")], 500.0),
        x("trading_daily_loss_limit", &[en], 5000.0),
        x("trading_pnl_daily", &[en, st, ("currency", "USD")], -120.5),
        x(
            "trading_pnl_realized",
            &[en, st, ("currency", "USD")],
            300.25,
        ),
        x(
            "trading_pnl_unrealized",
            &[en, st, ("currency", "USD")],
            -420.75,
        ),
        x(
            "trading_drawdown_ratio",
            &[en, st, ("currency", "USD")],
            0.015,
        ),
        x("trading_pnl_daily", &[en, ("currency", "EUR")], 10.0),
        x(
            "trading_circuit_breaker_active",
            &[en, ("breaker", "max_loss")],
            1.0,
        ),
        x(
            "trading_circuit_breaker_active",
            &[en, ("breaker", "latency")],
            0.0,
        ),
        x(
            "trading_circuit_breaker_trips_total",
            &[en, ("breaker", "max_loss")],
            1.0,
        ),
        x("trading_kill_switch_active", &[en], 1.0),
        x(
            "trading_connectivity_up",
            &[en, ("target", "broker-fix")],
            0.0,
        ),
        x(
            "trading_connectivity_up",
            &[en, ("target", "market-data")],
            1.0,
        ),
        x(
            "trading_api_requests_total",
            &[en, ("api", "orders"), ("result", "error")],
            1.0,
        ),
        x(
            "trading_api_requests_total",
            &[en, ("api", "orders"), ("result", "ok")],
            1.0,
        ),
        x(
            "trading_api_requests_total",
            &[en, ("api", "positions"), ("result", "error")],
            1.0,
        ),
        x(
            "trading_api_errors_total",
            &[en, ("api", "orders"), ("code", "503")],
            1.0,
        ),
        x("trading_api_errors_total", &[en, ("api", "positions")], 1.0),
        x(
            "trading_api_request_duration_seconds_count",
            &[en, ("api", "orders")],
            2.0,
        ),
        x(
            "trading_api_request_duration_seconds_sum",
            &[en, ("api", "orders")],
            0.26,
        ),
        x(
            "trading_data_provider_failures_total",
            &[en, ("provider", "polygon")],
            1.0,
        ),
        x(
            "trading_errors_total",
            &[en, ("component", "risk"), ("kind", "timeout")],
            1.0,
        ),
        x(
            "trading_function_calls_total",
            &[en, ("function", "compute_signals"), ("result", "ok")],
            1.0,
        ),
        x(
            "trading_function_calls_total",
            &[en, ("function", "compute_signals"), ("result", "error")],
            1.0,
        ),
        x(
            "trading_function_duration_seconds_count",
            &[en, ("function", "compute_signals")],
            2.0,
        ),
        x(
            "trading_function_duration_seconds_sum",
            &[en, ("function", "compute_signals")],
            0.032,
        ),
        x(
            "trading_lock_wait_seconds_count",
            &[en, ("lock", "book")],
            1.0,
        ),
        x(
            "trading_lock_wait_seconds_sum",
            &[en, ("lock", "book")],
            0.0005,
        ),
        x(
            "trading_lock_wait_seconds_bucket",
            &[en, ("lock", "book"), ("le", "0.005")],
            1.0,
        ),
        x(
            "desk_widgets_total",
            &[en, ("desk", TRICKY), ("region", "eu")],
            3.5,
        ),
        x("desk_requests_total", &[en, ("strategy", "s2")], 0.0),
        x("desk_queue_depth", &[en, ("queue", "in")], -3.25),
        x(
            "desk_fetch_duration_seconds_count",
            &[en, ("source", "s3")],
            2.0,
        ),
        x(
            "desk_fetch_duration_seconds_sum",
            &[en, ("source", "s3")],
            3.2,
        ),
        x(
            "desk_fetch_duration_seconds_bucket",
            &[en, ("source", "s3"), ("le", "0.25")],
            1.0,
        ),
        x(
            "desk_fetch_duration_seconds_bucket",
            &[en, ("source", "s3"), ("le", "5.0")],
            2.0,
        ),
    ];
    let absent = vec![
        (
            "trading_position_quantity",
            labels(&[en, ("symbol", "MSFT")]),
        ),
        ("trading_position_value", labels(&[en, ("symbol", "MSFT")])),
        (
            "trading_circuit_breaker_trips_total",
            labels(&[en, ("breaker", "latency")]),
        ),
        (
            "trading_orders_total",
            labels(&[
                en,
                ("strategy", ""),
                ("venue", "XNAS"),
                ("side", "sell"),
                ("status", "rejected"),
            ]),
        ),
    ];
    let types = vec![
        ("trading_engine_heartbeat_timestamp_seconds", "gauge"),
        ("trading_orders", "counter"),
        ("trading_order_latency_seconds", "histogram"),
        ("trading_pnl_daily", "gauge"),
        ("trading_circuit_breaker_trips", "counter"),
        ("desk_widgets", "counter"),
        ("desk_queue_depth", "gauge"),
        ("desk_fetch_duration_seconds", "histogram"),
    ];
    EveryType {
        events,
        expected,
        absent,
        types,
    }
}

/// Asserts that `samples` hold every expected sample with its exact labels and value, none of
/// the absent ones, and no label that came from an event's `attrs`.
pub fn assert_every_type(what: &str, samples: &[PySample], batch: &EveryType) {
    for x in &batch.expected {
        let found: Vec<&PySample> = samples
            .iter()
            .filter(|s| s.name == x.name && s.labels == x.labels)
            .collect();
        match found.as_slice() {
            [s] => assert!(
                close(s.value(), x.value),
                "{what}: {} {:?} is {}, expected {}",
                x.name,
                x.labels,
                s.value(),
                x.value
            ),
            [] => {
                let near: Vec<_> = samples.iter().filter(|s| s.name == x.name).collect();
                panic!(
                    "{what}: no sample {} {:?}; samples of that name: {near:#?}",
                    x.name, x.labels
                )
            }
            many => panic!(
                "{what}: {} {:?} appears {} times",
                x.name,
                x.labels,
                many.len()
            ),
        }
    }
    for (name, labels) in &batch.absent {
        assert!(
            !samples
                .iter()
                .any(|s| s.name == *name && s.labels == *labels),
            "{what}: {name} {labels:?} should be absent"
        );
    }
    for s in samples {
        for attr in ["order_id", "note", "reason", "n"] {
            assert!(
                !s.labels.contains_key(attr),
                "{what}: attrs leaked into a label: {s:?}"
            );
        }
    }
}

/// The current Unix time in whole seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

// ---------------------------------------------------------------------------------------------
// A webhook receiver
// ---------------------------------------------------------------------------------------------

/// What a [`webhook_receiver`] got: each request's headers and JSON body, in arrival order.
pub type Received = std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, Value)>>>;

/// A real HTTP receiver on 127.0.0.1:`port` (0 for any) that records every `POST /hook`;
/// gives its URL and what it got.
pub async fn webhook_receiver(port: u16) -> (String, Received) {
    use axum::extract::State;
    let received: Received = Received::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |State(r): State<Received>,
                 headers: axum::http::HeaderMap,
                 body: axum::body::Bytes| async move {
                    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    r.lock().unwrap().push((headers, json));
                    "ok"
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("binding the webhook receiver");
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

/// The next number of a SplitMix64 sequence whose state is `state`: the seeded generator of the
/// randomised tests, so that a seed printed in a failure reproduces the case.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
