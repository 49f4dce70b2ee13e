//! Playing a scenario against an exporter: every [`BATCH_INTERVAL`] the scenario advances to
//! the wall clock (times the speed), its events go to `POST <url>/api/v1/events` as one NDJSON
//! batch, and its artifact files are written. A 429 or 503 is retried after its `Retry-After`,
//! an unreachable exporter with a growing backoff (events wait in order meanwhile); a rejected
//! line is a bug of the generator, logged and counted.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value;

use super::scenario::{ArtifactWrite, Scenario, Settings};

/// How often a batch is sent (wall-clock time).
pub const BATCH_INTERVAL: Duration = Duration::from_millis(200);
/// Most events in one request (the rest wait for the next).
pub const MAX_BATCH: usize = 10_000;
/// Most events kept waiting while the exporter is unreachable (over an hour of the session at
/// speed 1); past it the oldest are dropped, and counted.
pub const MAX_QUEUE: usize = 200_000;
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The first wait after a transport error; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait after a transport error.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long the events still queued at the end may take to go out.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// How to run the simulated engine.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// The exporter's base URL (`http://127.0.0.1:9470`).
    pub url: String,
    /// The ingest token, sent as `Authorization: Bearer`.
    pub token: Option<String>,
    /// The scenario's random seed.
    pub seed: u64,
    /// Scenario seconds per wall-clock second (1 plays in real time).
    pub speed: f64,
    /// Stop after this much scenario time; run until the shutdown signal when `None`.
    pub duration: Option<Duration>,
    /// Where to write the artifact files (`models/*.json`); none are written when `None`.
    pub artifacts_dir: Option<PathBuf>,
}

/// The simulated engine could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The URL does not parse.
    #[error("invalid exporter URL {url:?}: {message}")]
    Url {
        /// The URL as given.
        url: String,
        /// Why.
        message: String,
    },
    /// The speed is not a positive finite number.
    #[error("speed must be a positive number, not {0}")]
    Speed(f64),
    /// The token file cannot be read.
    #[error("failed to read the token file {path}: {source}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP client cannot be built.
    #[error("failed to build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The exporter answered in a way retrying cannot fix (401, 413, 415, a malformed request).
    #[error("the exporter refused the events with status {status}: {body}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Its reply.
        body: String,
    },
    /// An artifact file cannot be written.
    #[error("failed to write artifact {path}: {source}")]
    Artifact {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Reads an ingest token from a file, dropping surrounding whitespace.
pub fn read_token_file(path: &Path) -> Result<String, DemoError> {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_owned())
        .map_err(|source| DemoError::TokenFile {
            path: path.to_owned(),
            source,
        })
}

/// What a session sent and what the exporter made of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Events the exporter answered for.
    pub sent: u64,
    /// Of those, applied.
    pub accepted: u64,
    /// Acknowledged as duplicates of an earlier id.
    pub duplicates: u64,
    /// Rejected (each a bug of the generator).
    pub rejected: u64,
    /// Generated but never answered for (the exporter was unreachable at the end).
    pub unsent: u64,
    /// Dropped unsent because too many were waiting ([`MAX_QUEUE`]).
    pub dropped: u64,
    /// Events sent, by type.
    pub by_type: BTreeMap<String, u64>,
    /// Events rejected, by type.
    pub rejected_by_type: BTreeMap<String, u64>,
}

impl fmt::Display for Summary {
    /// One line: `demo engine: sent N events, accepted N, duplicates N, rejected N, unsent N
    /// [, dropped N]; by type: api_call=N cycle=N …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "demo engine: sent {} events, accepted {}, duplicates {}, rejected {}, unsent {}",
            self.sent, self.accepted, self.duplicates, self.rejected, self.unsent
        )?;
        if self.dropped > 0 {
            write!(f, ", dropped {}", self.dropped)?;
        }
        if !self.by_type.is_empty() {
            f.write_str("; by type:")?;
        }
        for (kind, n) in &self.by_type {
            write!(f, " {kind}={n}")?;
        }
        if !self.rejected_by_type.is_empty() {
            f.write_str("; rejected by type:")?;
            for (kind, n) in &self.rejected_by_type {
                write!(f, " {kind}={n}")?;
            }
        }
        Ok(())
    }
}

/// The exporter's reply to a batch.
#[derive(Debug, Deserialize)]
struct Reply {
    accepted: u64,
    duplicates: u64,
    rejected: Vec<RejectedLine>,
}

#[derive(Debug, Deserialize)]
struct RejectedLine {
    line: usize,
    error: String,
}

/// What came of one request.
enum Posted {
    /// The exporter judged the batch.
    Judged(Reply),
    /// 429 or 503: nothing applied; send it again after this long.
    RetryAfter(u16, Duration),
    /// No answer: nothing is known to have applied.
    Unreachable(String),
}

/// The queue of events waiting for the exporter and the one connection to it.
struct Sender {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
    queue: VecDeque<Value>,
    summary: Summary,
    wait_until: Option<Instant>,
    backoff: Duration,
    connected: bool,
}

impl Sender {
    fn ready(&self, now: Instant) -> bool {
        self.wait_until.is_none_or(|w| now >= w)
    }

    /// Queues `events`, dropping the oldest past [`MAX_QUEUE`].
    fn enqueue(&mut self, events: Vec<Value>) {
        self.queue.extend(events);
        let excess = self.queue.len().saturating_sub(MAX_QUEUE);
        if excess > 0 {
            self.queue.drain(..excess);
            self.summary.dropped += excess as u64;
            tracing::warn!(
                dropped = excess,
                queued = self.queue.len(),
                "Too many events waiting for the exporter; the oldest were dropped."
            );
        }
    }

    /// Sends the oldest queued events once.
    async fn flush(&mut self) -> Result<(), DemoError> {
        let n = self.queue.len().min(MAX_BATCH);
        if n == 0 {
            return Ok(());
        }
        let batch = &self.queue.make_contiguous()[..n];
        let mut body = String::with_capacity(n * 160);
        for event in batch {
            body.push_str(&event.to_string());
            body.push('\n');
        }
        match self.post(body).await? {
            Posted::Judged(reply) => {
                if !self.connected {
                    tracing::info!(url = %self.url, "Sending events.");
                    self.connected = true;
                }
                self.account(n, &reply);
                self.queue.drain(..n);
                self.wait_until = None;
                self.backoff = MIN_BACKOFF;
            }
            Posted::RetryAfter(status, after) => {
                tracing::warn!(
                    status,
                    retry_after = ?after,
                    events = n,
                    "The exporter cannot take the batch now; will retry."
                );
                self.wait_until = Some(Instant::now() + after);
            }
            Posted::Unreachable(error) => {
                tracing::warn!(
                    url = %self.url,
                    %error,
                    retry_in = ?self.backoff,
                    queued = self.queue.len(),
                    "The exporter did not answer; will retry."
                );
                self.connected = false;
                self.wait_until = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
        }
        Ok(())
    }

    async fn post(&self, body: String) -> Result<Posted, DemoError> {
        let mut request = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            .body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Ok(Posted::Unreachable(error_chain(&e))),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) => return Ok(Posted::Unreachable(error_chain(&e))),
        };
        match status {
            429 | 503 => Ok(Posted::RetryAfter(
                status,
                Duration::from_secs(retry_after.unwrap_or(1)),
            )),
            200 | 400 => match serde_json::from_str::<Reply>(&text) {
                Ok(reply) => Ok(Posted::Judged(reply)),
                Err(_) => Err(DemoError::Refused { status, body: text }),
            },
            _ => Err(DemoError::Refused { status, body: text }),
        }
    }

    /// Counts a judged batch of the `n` oldest queued events.
    fn account(&mut self, n: usize, reply: &Reply) {
        let summary = &mut self.summary;
        for event in self.queue.range(..n) {
            *summary.by_type.entry(kind_of(event)).or_default() += 1;
        }
        summary.sent += n as u64;
        summary.accepted += reply.accepted;
        summary.duplicates += reply.duplicates;
        for rejected in &reply.rejected {
            summary.rejected += 1;
            let event = rejected
                .line
                .checked_sub(1)
                .and_then(|i| self.queue.get(i).filter(|_| i < n));
            let kind = event.map_or_else(|| "unknown".to_owned(), kind_of);
            tracing::error!(
                line = rejected.line,
                r#type = %kind,
                error = %rejected.error,
                event = %event.map(|e| e.to_string()).unwrap_or_default(),
                "The exporter rejected a generated event: a bug of the demo engine."
            );
            *summary.rejected_by_type.entry(kind).or_default() += 1;
        }
    }
}

fn kind_of(event: &Value) -> String {
    event["type"].as_str().unwrap_or("unknown").to_owned()
}

/// An error with its sources, one after the other (reqwest's own message is terse).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `POST` address of the events under a base URL (a trailing `/` or not).
pub fn events_url(base: &str) -> Result<String, DemoError> {
    let parsed = url::Url::parse(base).map_err(|e| DemoError::Url {
        url: base.to_owned(),
        message: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(DemoError::Url {
            url: base.to_owned(),
            message: format!("the scheme must be http or https, not {}", parsed.scheme()),
        });
    }
    Ok(format!("{}/api/v1/events", base.trim_end_matches('/')))
}

/// Writes one artifact file and gives it its modification time.
pub fn write_artifact(dir: &Path, write: &ArtifactWrite) -> Result<(), DemoError> {
    let path = dir.join(write.path);
    let error = |source| DemoError::Artifact {
        path: path.clone(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    std::fs::write(&path, &write.content).map_err(error)?;
    let modified = UNIX_EPOCH + Duration::from_secs_f64(write.modified.max(0.0));
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(modified))
        .map_err(error)
}

/// Plays the scenario against the exporter until `duration` of scenario time has passed or
/// `shutdown` resolves, then sends what is still queued (for at most a few seconds) and
/// returns the summary.
pub async fn run(
    config: DriverConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, DemoError> {
    if !(config.speed.is_finite() && config.speed > 0.0) {
        return Err(DemoError::Speed(config.speed));
    }
    let url = events_url(&config.url)?;
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(DemoError::Client)?;
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut scenario = Scenario::new(Settings {
        seed: config.seed,
        epoch: epoch.as_secs_f64(),
        speed: config.speed,
        run: format!("{:x}", epoch.as_millis()),
    });
    let started = Instant::now();
    let end = config.duration.map(|d| d.as_secs_f64());
    tracing::info!(
        url = %url,
        seed = config.seed,
        speed = config.speed,
        duration = ?config.duration,
        "Demo engine started."
    );
    let mut sender = Sender {
        client,
        url,
        token: config.token.clone(),
        queue: VecDeque::new(),
        summary: Summary::default(),
        wait_until: None,
        backoff: MIN_BACKOFF,
        connected: false,
    };
    let mut ticker = tokio::time::interval(BATCH_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => {
                tracing::info!("Demo engine stopping.");
                break;
            }
            _ = ticker.tick() => {}
        }
        let mut t = started.elapsed().as_secs_f64() * config.speed;
        let finished = end.is_some_and(|e| t >= e);
        if let Some(e) = end {
            t = t.min(e);
        }
        let output = scenario.advance_to(t);
        if let Some(dir) = &config.artifacts_dir {
            for write in &output.artifacts {
                write_artifact(dir, write)?;
            }
        }
        sender.enqueue(output.events);
        if sender.ready(Instant::now()) {
            sender.flush().await?;
        }
        if finished {
            break;
        }
    }
    let deadline = Instant::now() + DRAIN_DEADLINE;
    while !sender.queue.is_empty() && Instant::now() < deadline {
        if let Some(w) = sender.wait_until {
            tokio::time::sleep_until(w.min(deadline).into()).await;
        }
        if sender.ready(Instant::now()) {
            sender.flush().await?;
        }
    }
    sender.summary.unsent = sender.queue.len() as u64;
    Ok(sender.summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for base in ["http://127.0.0.1:9470", "http://127.0.0.1:9470/"] {
            assert_eq!(
                events_url(base).unwrap(),
                "http://127.0.0.1:9470/api/v1/events"
            );
        }
        assert_eq!(
            events_url("ftp://x").unwrap_err().to_string(),
            "invalid exporter URL \"ftp://x\": the scheme must be http or https, not ftp"
        );
        assert!(events_url("127.0.0.1:9470").is_err());
    }

    #[test]
    fn summary_line() {
        let mut s = Summary {
            sent: 3,
            accepted: 2,
            rejected: 1,
            ..Summary::default()
        };
        s.by_type.insert("order".into(), 2);
        s.by_type.insert("fill".into(), 1);
        s.rejected_by_type.insert("fill".into(), 1);
        assert_eq!(
            s.to_string(),
            "demo engine: sent 3 events, accepted 2, duplicates 0, rejected 1, unsent 0; \
             by type: fill=1 order=2; rejected by type: fill=1"
        );
    }

    #[test]
    fn artifact_gets_its_time() {
        let dir = tempfile::tempdir().unwrap();
        let write = ArtifactWrite {
            path: "models/x.json",
            modified: 1_700_000_000.5,
            content: "{}\n".into(),
        };
        write_artifact(dir.path(), &write).unwrap();
        let meta = std::fs::metadata(dir.path().join("models/x.json")).unwrap();
        let modified = meta.modified().unwrap().duration_since(UNIX_EPOCH).unwrap();
        assert!((modified.as_secs_f64() - 1_700_000_000.5).abs() < 1e-3);
    }
}
