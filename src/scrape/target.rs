//! One scrape target and one scrape of it, as Prometheus does it: HTTP GET with its `Accept`
//! header and gzip, `job`/`instance` and the target's labels on every series, `le`/`quantile`
//! normalised, `up` and the `scrape_*` series, staleness markers for series that went away.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::parse::{Entry, FamilyType, Format, parse};
use crate::config::{ScrapeConfig, ScrapeTarget};
use crate::model::labels::{FxBuildHasher, Labels, LabelsBuilder};
use crate::store::{Store, stale_nan};
use crate::telemetry::Telemetry;

/// The `Accept` header Prometheus 3 sends with its default scrape protocols (no protobuf).
pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";

/// Why a target could not be set up or a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// The target's URL does not parse or has no host.
    #[error("invalid scrape url {url}: {reason}")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The bearer token file could not be read.
    #[error("failed to read bearer token file {}: {source}", path.display())]
    TokenFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("failed to build http client: {0}")]
    Client(#[source] reqwest::Error),
    /// The request failed (connection, TLS, timeout, body).
    #[error("scrape request failed: {0}")]
    Request(#[from] reqwest::Error),
    /// The target answered with a status other than 200.
    #[error("server returned HTTP status {0}")]
    Status(reqwest::StatusCode),
    /// The response's `Content-Type` is neither OpenMetrics nor Prometheus text.
    #[error("received unsupported Content-Type {0:?}")]
    ContentType(String),
    /// The (uncompressed) body reached the limit: Prometheus's `body size limit exceeded`.
    #[error("body size limit exceeded")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The exposition held more samples than the limit: Prometheus's `sample limit exceeded`.
    #[error("sample limit exceeded")]
    SampleLimit {
        /// The limit.
        limit: usize,
        /// Samples in the exposition.
        samples: usize,
    },
    /// The exposition is invalid.
    #[error("invalid exposition: {0}")]
    Parse(#[from] super::ParseError),
}

impl ScrapeError {
    /// A short, stable name for the failure, used as the `result` label of
    /// `tradewatch_scrapes_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            ScrapeError::InvalidUrl { .. } | ScrapeError::Client(_) => "config",
            ScrapeError::TokenFile { .. } => "token",
            ScrapeError::Request(e) if e.is_timeout() => "timeout",
            ScrapeError::Request(_) => "request",
            ScrapeError::Status(_) => "status",
            ScrapeError::ContentType(_) => "content_type",
            ScrapeError::BodyTooLarge { .. } => "body_too_large",
            ScrapeError::SampleLimit { .. } => "sample_limit",
            ScrapeError::Parse(_) => "parse",
        }
    }
}

/// The response header of a tradewatch exporter's `/metrics` that names its change long poll.
pub const CHANGES_HEADER: &str = "x-tradewatch-changes";

/// A configured target ready to scrape, with the series its previous scrape saw.
pub struct Target {
    url: reqwest::Url,
    name: String,
    /// `job`, `instance` and the configured labels.
    target_labels: Labels,
    bearer_token_file: Option<std::path::PathBuf>,
    timeout: Duration,
    interval: Duration,
    /// Bodies of this many (uncompressed) bytes or more fail; `usize::MAX` when unlimited.
    body_limit: usize,
    /// Expositions with more samples fail; `usize::MAX` when unlimited.
    sample_limit: usize,
    client: reqwest::Client,
    telemetry: Option<Arc<Telemetry>>,
    filter: Option<super::filter::FilterHandle>,
    /// Its last successful scrape carried [`CHANGES_HEADER`].
    has_changes: std::sync::atomic::AtomicBool,
    /// The series of the scrapes, with the marks of staleness tracking.
    cache: Mutex<LabelsCache>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url.as_str())
            .field("labels", &self.target_labels)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// A target from its configuration and the scrape section's defaults (interval, timeout,
    /// limits) for what the target does not set.
    pub fn new(target: &ScrapeTarget, scrape: &ScrapeConfig) -> Result<Target, ScrapeError> {
        let invalid = |reason: String| ScrapeError::InvalidUrl {
            url: target.url.clone(),
            reason,
        };
        let url = reqwest::Url::parse(&target.url).map_err(|e| invalid(e.to_string()))?;
        let host = url
            .host_str()
            .ok_or_else(|| invalid("no host".to_owned()))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| invalid("no port".to_owned()))?;
        let instance = format!("{host}:{port}");
        let mut b = LabelsBuilder::default();
        for (name, value) in &target.labels {
            b.set(name, value);
        }
        b.set("job", &target.job);
        b.set("instance", &instance);
        // reqwest is built without a default crypto provider; installing ours is harmless when
        // the process already has.
        crate::server::install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(concat!("tradewatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ScrapeError::Client)?;
        Ok(Target {
            name: target.url.clone(),
            url,
            target_labels: b.build(),
            bearer_token_file: target.bearer_token_file.clone(),
            timeout: scrape.timeout_of(target).0,
            interval: scrape.interval_of(target).0,
            body_limit: unlimited_if_zero(scrape.body_size_limit_of(target).bytes()),
            sample_limit: unlimited_if_zero(scrape.sample_limit_of(target)),
            client,
            telemetry: None,
            filter: None,
            has_changes: std::sync::atomic::AtomicBool::new(false),
            cache: Mutex::new(LabelsCache::default()),
        })
    }

    /// Sets the body size limit: a body of `bytes` (uncompressed) bytes or more fails the
    /// scrape, as Prometheus's `body_size_limit`; 0 means no limit.
    pub fn with_body_limit(mut self, bytes: usize) -> Target {
        self.body_limit = unlimited_if_zero(bytes as u64);
        self
    }

    /// Sets the sample limit: an exposition with more samples fails the scrape as a whole, as
    /// Prometheus's `sample_limit`; 0 means no limit.
    pub fn with_sample_limit(mut self, samples: usize) -> Target {
        self.sample_limit = unlimited_if_zero(samples as u64);
        self
    }

    /// Keeps only the series `filter` keeps (what rules can read); `up` and the `scrape_*`
    /// series are always kept.
    pub fn with_filter(mut self, filter: super::filter::FilterHandle) -> Target {
        self.filter = Some(filter);
        self
    }

    /// Records each scrape in `telemetry`.
    pub fn with_telemetry(mut self, telemetry: Arc<Telemetry>) -> Target {
        self.telemetry = Some(telemetry);
        self
    }

    /// The `job`, `instance` and configured labels put on every series.
    pub fn labels(&self) -> &Labels {
        &self.target_labels
    }

    /// The URL scraped; also the `target` label of the self-metrics.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Time between scrapes.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Takes over what `old` (the same target before a reload changed its settings) saw: the
    /// series of its last scrape, so that those the next scrape misses get their markers, and
    /// its label cache.
    pub fn adopt_history(&self, old: &Target) {
        *self.cache.lock() = std::mem::take(&mut *old.cache.lock());
    }

    /// Writes staleness markers at `now_ms` for every series of the last scrape and for `up`
    /// and the `scrape_*` series, as Prometheus does when a target goes away; returns how many
    /// were written.
    pub fn mark_gone(&self, store: &Store, now_ms: i64) -> usize {
        let mut cache = self.cache.lock();
        let stale = cache.mark_untracked(store, now_ms);
        cache.recorded = 0;
        let report = REPORT_SERIES
            .iter()
            .map(|name| self.target_labels.builder().set("__name__", name).build());
        stale
            + report
                .filter(|labels| store.append(labels, now_ms, stale_nan()).is_ok())
                .count()
    }

    /// Whether the target's last scrape said it offers the change long poll.
    pub fn has_changes(&self) -> bool {
        self.has_changes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits for a tradewatch exporter's change counter to pass `after` (its long poll
    /// `GET /api/v1/changes`, beside the metrics path): `Ok(Some(seq))` when it did (or at the
    /// poll's timeout, with the current value), `Ok(None)` when the target does not offer it
    /// (not a tradewatch exporter), `Err` on a transport failure.
    pub async fn wait_for_change(&self, after: u64) -> Result<Option<u64>, ScrapeError> {
        let mut url = self.url.clone();
        url.set_path("/api/v1/changes");
        url.set_query(Some(&format!("after={after}&timeout=5s")));
        let mut request = self.client.get(url).timeout(Duration::from_secs(10));
        if let Some(path) = &self.bearer_token_file {
            let token = std::fs::read_to_string(path).map_err(|source| ScrapeError::TokenFile {
                path: path.clone(),
                source,
            })?;
            request = request.bearer_auth(token.trim());
        }
        let response = request.send().await.map_err(ScrapeError::Request)?;
        if !response.status().is_success() {
            return Ok(None);
        }
        let bytes = response.bytes().await.map_err(ScrapeError::Request)?;
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return Ok(None);
        };
        Ok(body["seq"].as_u64())
    }

    /// GETs the body, decompressed and within the limit, and its format.
    async fn fetch(&self) -> Result<(Vec<u8>, Format), ScrapeError> {
        let mut request = self
            .client
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, ACCEPT_HEADER)
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                self.timeout.as_secs_f64().to_string(),
            )
            .timeout(self.timeout);
        if let Some(path) = &self.bearer_token_file {
            let token =
                tokio::fs::read_to_string(path)
                    .await
                    .map_err(|source| ScrapeError::TokenFile {
                        path: path.clone(),
                        source,
                    })?;
            request = request.bearer_auth(token.trim());
        }
        let mut response = request.send().await?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(ScrapeError::Status(response.status()));
        }
        self.has_changes.store(
            response.headers().contains_key(CHANGES_HEADER),
            std::sync::atomic::Ordering::Relaxed,
        );
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let format = format_of(&content_type).ok_or(ScrapeError::ContentType(content_type))?;
        // As Prometheus reads through a `LimitReader`: reaching the limit fails, and nothing past
        // it is read (chunks arrive already decompressed, so the limit counts inflated bytes).
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len().saturating_add(chunk.len()) >= self.body_limit {
                return Err(ScrapeError::BodyTooLarge {
                    limit: self.body_limit,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, format))
    }

    /// The samples of an exposition with the target's labels, or the first parse error.
    ///
    /// As Prometheus's scrape cache does, the final labels of a series are kept between scrapes
    /// under its series as written (name, labels, family type), so a series seen before costs
    /// one lookup and no allocation; entries of series absent from a successful scrape go.
    fn samples(&self, body: &[u8], format: Format) -> Result<Vec<Scraped>, ScrapeError> {
        let mut types: HashMap<&str, FamilyType, FxBuildHasher> = HashMap::default();
        let mut out = Vec::new();
        let mut cache = self.cache.lock();
        cache.generation += 1;
        let generation = cache.generation;
        let mut key = String::new();
        for entry in parse(body, format) {
            let sample = match entry? {
                Entry::Type { family, kind } => {
                    types.insert(family, kind);
                    continue;
                }
                Entry::Sample(s) => s,
                Entry::Help { .. } | Entry::Unit { .. } => continue,
            };
            let kind = types
                .get(sample.family)
                .copied()
                .unwrap_or(FamilyType::Unknown);
            key.clear();
            key.push_str(kind.as_str());
            for part in std::iter::once(sample.name)
                .chain(sample.labels.iter().flat_map(|(n, v)| [*n, v.as_ref()]))
            {
                // Length-prefixed, so no label value can make two series look alike.
                key.push_str(itoa::Buffer::new().format(part.len()));
                key.push(':');
                key.push_str(part);
            }
            let slot = match cache.index.get(key.as_str()) {
                Some(&slot) => slot,
                None => {
                    let labels = self.series_labels(&sample, kind);
                    cache.insert(key.clone(), labels)
                }
            };
            cache.entries[slot as usize].seen = generation;
            out.push(Scraped {
                slot,
                t: sample.timestamp,
                v: sample.value,
            });
        }
        Ok(out)
    }

    /// The final labels of a scraped series: `le`/`quantile` normalised, the target's labels
    /// set over the scraped ones.
    fn series_labels(&self, sample: &super::Sample<'_>, kind: FamilyType) -> Labels {
        let mut b = LabelsBuilder::default();
        b.set("__name__", sample.name);
        for (name, value) in &sample.labels {
            let normalised = match (kind, *name) {
                (FamilyType::Histogram, "le") | (FamilyType::Summary, "quantile") => {
                    value.parse::<f64>().ok().map(format_openmetrics_float)
                }
                _ => None,
            };
            b.set(name, normalised.as_deref().unwrap_or(value));
        }
        apply_target_labels(&mut b, &self.target_labels);
        b.build()
    }
}

fn unlimited_if_zero(limit: u64) -> usize {
    match limit {
        0 => usize::MAX,
        n => usize::try_from(n).unwrap_or(usize::MAX),
    }
}

/// Prometheus's scrape cache: the final labels of the series seen in the last successful
/// scrape, by series as written, each marked with the scrape that last saw it and the one that
/// last tracked it for staleness. The marks stand in for a set of the previous scrape's series:
/// a series tracked by the previous scrape and not by this one gets its marker, with no set
/// built, hashed or compared per scrape.
#[derive(Default)]
struct LabelsCache {
    /// Series as written (family type, name, labels) to its entry.
    index: HashMap<String, u32, FxBuildHasher>,
    entries: Vec<CacheEntry>,
    /// Entries free for reuse.
    free: Vec<u32>,
    /// The last parse's number (from 1).
    generation: u64,
    /// The parse whose tracked series are the previous scrape's; 0 after a failed scrape
    /// (whose markers are written) or before any.
    recorded: u64,
}

struct CacheEntry {
    labels: Labels,
    /// The parse that last saw the series.
    seen: u64,
    /// The parse that last tracked it for staleness (no exposed timestamp, kept by the
    /// filter, in a scrape that succeeded).
    tracked: u64,
}

impl LabelsCache {
    /// A new entry for the series written as `key`; its slot.
    fn insert(&mut self, key: String, labels: Labels) -> u32 {
        let entry = CacheEntry {
            labels,
            seen: 0,
            tracked: 0,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.entries[slot as usize] = entry;
                slot
            }
            None => {
                self.entries.push(entry);
                u32::try_from(self.entries.len() - 1).expect("fewer than 2^32 series")
            }
        };
        self.index.insert(key, slot);
        slot
    }

    /// Writes a staleness marker for every series the previous scrape tracked and the current
    /// one did not; how many were written.
    fn mark_untracked(&self, store: &Store, now_ms: i64) -> usize {
        if self.recorded == 0 {
            return 0;
        }
        self.entries
            .iter()
            .filter(|e| e.tracked == self.recorded)
            .filter(|e| store.append(&e.labels, now_ms, stale_nan()).is_ok())
            .count()
    }

    /// Drops the entries of series the last parse did not see.
    fn forget_unseen(&mut self) {
        let LabelsCache {
            index,
            entries,
            free,
            generation,
            ..
        } = self;
        index.retain(|_, slot| {
            let entry = &mut entries[*slot as usize];
            if entry.seen == *generation {
                return true;
            }
            entry.labels = Labels::default();
            entry.seen = 0;
            entry.tracked = 0;
            free.push(*slot);
            false
        });
    }
}

/// One scraped sample: its entry in the label cache; `t` is the exposed timestamp, if any.
struct Scraped {
    slot: u32,
    t: Option<i64>,
    v: f64,
}

/// Sets the target's labels over the scraped ones (`honor_labels: false`): a scraped label
/// that clashes is kept as `exported_<name>` (`exported_exported_<name>` if that is taken too).
fn apply_target_labels(b: &mut LabelsBuilder, target: &Labels) {
    let mut clashes = Vec::new();
    for l in target {
        if let Some(existing) = b.get(&l.name) {
            clashes.push((l.name.to_string(), existing.to_owned()));
        }
        b.set(&l.name, &l.value);
    }
    for (name, value) in clashes {
        let mut exported = format!("exported_{name}");
        while b.get(&exported).is_some() {
            exported.insert_str(0, "exported_");
        }
        b.set(&exported, &value);
    }
}

/// The exposition format of a response from its `Content-Type`, as Prometheus 3 decides it.
pub fn format_of(content_type: &str) -> Option<Format> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/openmetrics-text") {
        Some(Format::OpenMetrics)
    } else if media.eq_ignore_ascii_case("text/plain") {
        Some(Format::Text)
    } else {
        None
    }
}

/// Formats `f` as Prometheus's `formatOpenMetricsFloat` does: Go's `strconv.FormatFloat(f, 'g',
/// -1, 64)`, with `.0` appended when the result has neither `.` nor `e` (`1` → `1.0`,
/// `1e6` → `1e+06`, `0.00001` → `1e-05`).
pub fn format_openmetrics_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if f == 0.0 {
        return "0.0".to_owned();
    }
    // Shortest round-trip digits, as Go's 'g' with precision -1 picks them; Go writes them as
    // %e when the decimal exponent is below -4 or at least 6, as %f otherwise.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} writes an integer exponent");
    let s = if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    };
    if s.contains(['.', 'e']) { s } else { s + ".0" }
}

/// The series every scrape writes besides the target's own.
const REPORT_SERIES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// What one scrape did.
#[derive(Debug)]
pub struct ScrapeReport {
    /// Why the scrape failed; `None` means `up` was 1.
    pub error: Option<ScrapeError>,
    /// Samples in the exposition (`scrape_samples_scraped`).
    pub samples: usize,
    /// Series not seen in the previous scrape (`scrape_series_added`).
    pub series_added: usize,
    /// Series that got a staleness marker.
    pub stale: usize,
    /// Samples the store refused (out of order or duplicate timestamps).
    pub refused: usize,
    /// How long the scrape took (`scrape_duration_seconds`).
    pub duration: Duration,
}

impl ScrapeReport {
    /// Whether the scrape succeeded (`up` 1).
    pub fn is_up(&self) -> bool {
        self.error.is_none()
    }
}

/// Scrapes `target` once at `now_ms` into `store`: its samples (at their own timestamps when
/// exposed, `now_ms` otherwise), staleness markers at `now_ms` for series of the previous scrape
/// that are gone (all of them when the scrape fails), and `up`, `scrape_duration_seconds`,
/// `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling` and `scrape_series_added`.
///
/// A scrape that fails (request, status, body size limit, parse error, sample limit) appends
/// none of its samples: `up` is 0 and every series of the previous scrape gets its marker.
///
/// ```no_run
/// use tradewatch::config::{ScrapeConfig, ScrapeTarget};
/// use tradewatch::scrape::target::{Target, scrape_once};
/// use tradewatch::store::{Store, StoreOptions};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ScrapeTarget::new("http://127.0.0.1:9470/metrics", "engine");
/// let target = Target::new(&config, &ScrapeConfig::default())?;
/// let store = Store::new(StoreOptions::default());
/// let report = scrape_once(&target, &store, 1_700_000_000_000).await;
/// println!("up={} samples={}", report.is_up(), report.samples);
/// # Ok(())
/// # }
/// ```
pub async fn scrape_once(target: &Target, store: &Store, now_ms: i64) -> ScrapeReport {
    let started = Instant::now();
    let scraped = match target.fetch().await {
        Ok((body, format)) => target.samples(&body, format),
        Err(e) => Err(e),
    };
    record(target, store, now_ms, scraped, started)
}

/// What [`scrape_once`] does after the HTTP request, on a body already read: parses it and
/// appends its samples, the staleness markers and the report series into `store`, exactly as
/// a scrape does (the benchmarks measure the loop's own cost with it).
pub fn ingest(
    target: &Target,
    store: &Store,
    body: &[u8],
    format: Format,
    now_ms: i64,
) -> ScrapeReport {
    let started = Instant::now();
    let scraped = target.samples(body, format);
    record(target, store, now_ms, scraped, started)
}

fn record(
    target: &Target,
    store: &Store,
    now_ms: i64,
    scraped: Result<Vec<Scraped>, ScrapeError>,
    started: Instant,
) -> ScrapeReport {
    let duration = started.elapsed();
    let mut report = ScrapeReport {
        error: None,
        samples: 0,
        series_added: 0,
        stale: 0,
        refused: 0,
        duration,
    };
    let mut cache = target.cache.lock();
    let previous = cache.recorded;
    let generation = cache.generation;
    // Samples appended before the limit stopped Prometheus (its `..._post_metric_relabeling`).
    let mut post_relabeling = None;
    let scraped = match scraped {
        Ok(samples) if samples.len() > target.sample_limit => {
            report.samples = samples.len();
            post_relabeling = Some(target.sample_limit);
            Err(ScrapeError::SampleLimit {
                limit: target.sample_limit,
                samples: samples.len(),
            })
        }
        other => other,
    };
    match scraped {
        Ok(samples) => {
            report.samples = samples.len();
            let filter = target
                .filter
                .as_ref()
                .map(|f| f.read().expect("filter lock").clone());
            for s in samples {
                let entry = &mut cache.entries[s.slot as usize];
                if filter.as_ref().is_some_and(|f| !f.keeps(&entry.labels)) {
                    continue;
                }
                if store
                    .append_keeping(&mut entry.labels, s.t.unwrap_or(now_ms), s.v)
                    .is_err()
                {
                    report.refused += 1;
                }
                // As Prometheus, series with exposed timestamps get no staleness tracking.
                if s.t.is_none() {
                    if previous == 0 || entry.tracked != previous {
                        report.series_added += 1;
                    }
                    entry.tracked = generation;
                }
            }
            report.stale = cache.mark_untracked(store, now_ms);
            cache.forget_unseen();
            cache.recorded = generation;
        }
        Err(e) => {
            report.error = Some(e);
            report.stale = cache.mark_untracked(store, now_ms);
            cache.recorded = 0;
        }
    }
    drop(cache);

    let up = if report.is_up() { 1.0 } else { 0.0 };
    let samples = report.samples as f64;
    let post_relabeling = post_relabeling.map_or(samples, |n| n as f64);
    let values = [
        up,
        duration.as_secs_f64(),
        samples,
        post_relabeling,
        report.series_added as f64,
    ];
    for (name, value) in REPORT_SERIES.into_iter().zip(values) {
        let labels = target.target_labels.builder().set("__name__", name).build();
        if store.append(&labels, now_ms, value).is_err() {
            report.refused += 1;
        }
    }

    let result = report.error.as_ref().map_or("success", ScrapeError::reason);
    if let Some(telemetry) = &target.telemetry {
        telemetry.scrape(&target.name, result, duration);
    }
    match &report.error {
        None => tracing::debug!(
            target_url = %target.name,
            samples = report.samples,
            series_added = report.series_added,
            stale = report.stale,
            took_ms = duration.as_millis() as u64,
            "Scraped."
        ),
        Some(e) => tracing::warn!(
            target_url = %target.name,
            result,
            error = %e,
            samples = report.samples,
            stale = report.stale,
            "Scrape failed."
        ),
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_float_matches_go() {
        for (f, want) in [
            (1.0, "1.0"),
            (0.0, "0.0"),
            (-1.0, "-1.0"),
            (0.5, "0.5"),
            (10.0, "10.0"),
            (100000.0, "100000.0"),
            (1e6, "1e+06"),
            (1.5e6, "1.5e+06"),
            (123456789.0, "1.23456789e+08"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (2.5e-7, "2.5e-07"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (0.005, "0.005"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(format_openmetrics_float(f), want, "{f}");
        }
    }

    #[test]
    fn format_from_content_type() {
        assert_eq!(
            format_of("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            Some(Format::OpenMetrics)
        );
        assert_eq!(
            format_of("text/plain; version=0.0.4; charset=utf-8"),
            Some(Format::Text)
        );
        assert_eq!(format_of("application/json"), None);
        assert_eq!(format_of(""), None);
    }

    #[test]
    fn clashing_labels_become_exported() {
        let target = Labels::from_pairs([("job", "j"), ("instance", "h:1")]);
        let mut b = LabelsBuilder::default();
        b.set("__name__", "m")
            .set("job", "theirs")
            .set("exported_job", "x");
        apply_target_labels(&mut b, &target);
        let l = b.build();
        assert_eq!(l.get("job"), Some("j"));
        assert_eq!(l.get("instance"), Some("h:1"));
        assert_eq!(l.get("exported_job"), Some("x"));
        assert_eq!(l.get("exported_exported_job"), Some("theirs"));
    }
}
