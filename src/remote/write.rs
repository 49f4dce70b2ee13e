//! Prometheus remote write (protocol 1.0) of the samples rules write in remote mode: the
//! `WriteRequest` protobuf encoded by hand (four small messages need no protobuf toolchain),
//! snappy block compression, and a background sender that batches, retries 5xx, 429 and
//! transport errors with exponential backoff, and drops (counting) what a 4xx refuses.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use tokio::sync::{Notify, watch};

use super::{Auth, RemoteError, chain};
use crate::model::labels::Labels;
use crate::promql::InstantSample;
use crate::rules::SampleSink;
use crate::telemetry::Telemetry;

/// Samples queued before the oldest are dropped.
pub const QUEUE_CAPACITY: usize = 100_000;

/// Samples in one request (Prometheus's `max_samples_per_send`).
pub const MAX_SAMPLES_PER_SEND: usize = 2_000;

/// The first wait before a retry; it doubles up to [`MAX_BACKOFF`] (Prometheus's defaults).
pub const MIN_BACKOFF: Duration = Duration::from_millis(30);

/// The longest wait between retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long [`RemoteWriter::stop`] waits for the queue to drain.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field: key (field number, wire type 2), length, bytes.
fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(out, u64::from(field << 3 | 2));
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// `Label {name = 1; value = 2}`.
fn label(out: &mut Vec<u8>, name: &str, value: &str) {
    let mut l = Vec::with_capacity(name.len() + value.len() + 4);
    bytes_field(&mut l, 1, name.as_bytes());
    bytes_field(&mut l, 2, value.as_bytes());
    bytes_field(out, 1, &l);
}

/// `Sample {double value = 1; int64 timestamp = 2}`; zero values left out, as Go's encoder
/// does (the bits of `-0.0` are not zero, so it is kept).
fn sample(out: &mut Vec<u8>, t: i64, f: f64) {
    let mut s = Vec::with_capacity(11);
    if f.to_bits() != 0 {
        s.push(1 << 3 | 1);
        s.extend_from_slice(&f.to_bits().to_le_bytes());
    }
    if t != 0 {
        s.push(2 << 3);
        varint(&mut s, t as u64);
    }
    bytes_field(out, 2, &s);
}

/// The `WriteRequest` protobuf of `samples`: one `TimeSeries` per label set, in the order
/// each first appears, holding its samples in the order given (Prometheus refuses a series'
/// samples out of time order).
pub fn encode(samples: &[InstantSample]) -> Vec<u8> {
    let mut series: Vec<(&Labels, Vec<&InstantSample>)> = Vec::new();
    let mut index: HashMap<&Labels, usize> = HashMap::new();
    for s in samples {
        let i = *index.entry(&s.labels).or_insert_with(|| {
            series.push((&s.labels, Vec::new()));
            series.len() - 1
        });
        series[i].1.push(s);
    }
    let mut out = Vec::new();
    let mut ts = Vec::new();
    for (labels, samples) in series {
        ts.clear();
        for l in labels.iter() {
            label(&mut ts, &l.name, &l.value);
        }
        for s in samples {
            sample(&mut ts, s.t, s.f);
        }
        bytes_field(&mut out, 1, &ts);
    }
    out
}

/// What a writer did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Samples the endpoint accepted.
    pub sent: u64,
    /// Samples dropped: refused with a 4xx, pushed out of a full queue, or left at shutdown.
    pub dropped: u64,
    /// Requests that failed and were retried.
    pub retries: u64,
}

struct Shared {
    queue: Mutex<VecDeque<InstantSample>>,
    ready: Notify,
    stats: Mutex<WriteStats>,
    /// Where the counts also go, as `tradewatch_remote_write_*` self-metrics.
    telemetry: Option<Arc<Telemetry>>,
}

impl Shared {
    fn sent(&self, n: u64) {
        self.stats.lock().expect("stats lock").sent += n;
        if let Some(t) = &self.telemetry {
            t.remote_write_samples("sent", n);
        }
    }

    fn dropped(&self, n: u64) {
        self.stats.lock().expect("stats lock").dropped += n;
        if let Some(t) = &self.telemetry {
            t.remote_write_samples("dropped", n);
        }
    }

    fn retried(&self) {
        self.stats.lock().expect("stats lock").retries += 1;
        if let Some(t) = &self.telemetry {
            t.remote_write_retry();
        }
    }

    fn queued(&self, len: usize) {
        if let Some(t) = &self.telemetry {
            t.remote_write_queue(len);
        }
    }
}

/// Sends the samples it is given to a remote-write endpoint from a background task.
pub struct RemoteWriter {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Where and how to send.
struct Endpoint {
    url: reqwest::Url,
    client: reqwest::Client,
    auth: Auth,
}

/// How one request went.
enum Sent {
    Accepted,
    /// Worth retrying (5xx, 429, transport error), after at least the duration given.
    Retry(String, Option<Duration>),
    /// Refused for good (another 4xx).
    Refused(String),
}

impl RemoteWriter {
    /// Starts a writer to `url` with `auth`, each request bounded by `timeout`, counting what
    /// it does in `telemetry` when given. Must be called within a tokio runtime.
    pub fn start(
        url: &str,
        auth: Auth,
        timeout: Duration,
        telemetry: Option<Arc<Telemetry>>,
    ) -> Result<RemoteWriter, RemoteError> {
        let url = reqwest::Url::parse(url).map_err(|e| RemoteError::Url {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        crate::server::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(RemoteError::Client)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
            stats: Mutex::new(WriteStats::default()),
            telemetry,
        });
        let (stop, stopped) = watch::channel(false);
        let endpoint = Endpoint { url, client, auth };
        let task = tokio::spawn(run(shared.clone(), endpoint, stopped));
        Ok(RemoteWriter {
            shared,
            stop,
            task: Mutex::new(Some(task)),
        })
    }

    /// What the writer did so far.
    pub fn stats(&self) -> WriteStats {
        *self.shared.stats.lock().expect("stats lock")
    }

    /// Sends what is queued (within a few seconds, without retrying), then stops; what is left
    /// is dropped and counted.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        self.shared.ready.notify_one();
        let Some(mut task) = self.task.lock().expect("task lock").take() else {
            return;
        };
        if tokio::time::timeout(STOP_DEADLINE, &mut task)
            .await
            .is_err()
        {
            task.abort();
            let left = std::mem::take(&mut *self.shared.queue.lock().expect("queue lock")).len();
            self.shared.dropped(left as u64);
            self.shared.queued(0);
            tracing::warn!(dropped = left, "Remote write stopped with samples unsent.");
        }
        let stats = self.stats();
        tracing::info!(
            sent = stats.sent,
            dropped = stats.dropped,
            retries = stats.retries,
            "Remote write stopped."
        );
    }
}

impl SampleSink for RemoteWriter {
    fn send(&self, samples: Vec<InstantSample>) {
        let mut queue = self.shared.queue.lock().expect("queue lock");
        queue.extend(samples);
        let over = queue.len().saturating_sub(QUEUE_CAPACITY);
        queue.drain(..over);
        let len = queue.len();
        drop(queue);
        self.shared.queued(len);
        if over > 0 {
            self.shared.dropped(over as u64);
            tracing::warn!(
                dropped = over,
                "Remote write queue full; dropped the oldest samples."
            );
        }
        self.shared.ready.notify_one();
    }
}

async fn run(shared: Arc<Shared>, endpoint: Endpoint, mut stopped: watch::Receiver<bool>) {
    loop {
        let batch: Vec<InstantSample> = {
            let mut queue = shared.queue.lock().expect("queue lock");
            let n = queue.len().min(MAX_SAMPLES_PER_SEND);
            let batch = queue.drain(..n).collect();
            shared.queued(queue.len());
            batch
        };
        if batch.is_empty() {
            if *stopped.borrow() {
                return;
            }
            tokio::select! {
                _ = shared.ready.notified() => {}
                _ = stopped.changed() => {}
            }
            continue;
        }
        let body = match snap::raw::Encoder::new().compress_vec(&encode(&batch)) {
            Ok(body) => body,
            Err(e) => {
                shared.dropped(batch.len() as u64);
                tracing::error!(error = %e, "Remote write batch could not be compressed.");
                continue;
            }
        };
        let n = batch.len() as u64;
        let mut backoff = MIN_BACKOFF;
        loop {
            match send(&endpoint, body.clone()).await {
                Sent::Accepted => {
                    shared.sent(n);
                    break;
                }
                Sent::Refused(why) => {
                    shared.dropped(n);
                    tracing::warn!(dropped = n, error = %why, "Remote write refused a batch; dropped.");
                    break;
                }
                Sent::Retry(why, after) => {
                    if *stopped.borrow() {
                        shared.dropped(n);
                        tracing::warn!(dropped = n, error = %why, "Remote write failed at shutdown; dropped.");
                        break;
                    }
                    shared.retried();
                    let wait = after.unwrap_or(backoff).min(MAX_BACKOFF);
                    tracing::warn!(samples = n, error = %why, retry_in_ms = wait.as_millis() as u64, "Remote write failed; will retry.");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stopped.changed() => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

async fn send(endpoint: &Endpoint, body: Vec<u8>) -> Sent {
    let request = endpoint
        .auth
        .apply(endpoint.client.post(endpoint.url.clone()))
        .header(reqwest::header::CONTENT_ENCODING, "snappy")
        .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
        .header(
            reqwest::header::USER_AGENT,
            concat!("tradewatch/", env!("CARGO_PKG_VERSION")),
        )
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body);
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return Sent::Retry(chain(&e), None),
    };
    let status = response.status();
    if status.is_success() {
        return Sent::Accepted;
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = response.text().await.unwrap_or_default();
    let why = format!("HTTP {status}: {}", text.trim());
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Sent::Retry(why, retry_after)
    } else {
        Sent::Refused(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A protobuf field as read back: number and either a varint, a fixed64 or bytes.
    #[derive(Debug, PartialEq)]
    enum Field<'a> {
        Varint(u64),
        Fixed64(u64),
        Bytes(&'a [u8]),
    }

    fn read_varint(b: &[u8], at: &mut usize) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let byte = b[*at];
            *at += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return v;
            }
            shift += 7;
        }
    }

    fn fields(b: &[u8]) -> Vec<(u64, Field<'_>)> {
        let mut at = 0;
        let mut out = Vec::new();
        while at < b.len() {
            let key = read_varint(b, &mut at);
            let field = match key & 7 {
                0 => Field::Varint(read_varint(b, &mut at)),
                1 => {
                    let v = u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
                    at += 8;
                    Field::Fixed64(v)
                }
                2 => {
                    let n = read_varint(b, &mut at) as usize;
                    at += n;
                    Field::Bytes(&b[at - n..at])
                }
                w => panic!("wire type {w}"),
            };
            out.push((key >> 3, field));
        }
        out
    }

    /// A decoded `WriteRequest`: per series, its labels and its (timestamp, value bits).
    type Decoded = Vec<(Vec<(String, String)>, Vec<(i64, u64)>)>;

    fn decode(b: &[u8]) -> Decoded {
        let text = |f: &Field<'_>| match f {
            Field::Bytes(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("{other:?}"),
        };
        fields(b)
            .into_iter()
            .map(|(n, ts)| {
                assert_eq!(n, 1);
                let Field::Bytes(ts) = ts else { panic!() };
                let (mut labels, mut samples) = (Vec::new(), Vec::new());
                for (n, f) in fields(ts) {
                    let Field::Bytes(inner) = f else { panic!() };
                    let inner = fields(inner);
                    match n {
                        1 => labels.push((text(&inner[0].1), text(&inner[1].1))),
                        2 => {
                            let (mut t, mut v) = (0, 0);
                            for (n, f) in inner {
                                match (n, f) {
                                    (1, Field::Fixed64(bits)) => v = bits,
                                    (2, Field::Varint(x)) => t = x as i64,
                                    other => panic!("{other:?}"),
                                }
                            }
                            samples.push((t, v));
                        }
                        n => panic!("field {n}"),
                    }
                }
                (labels, samples)
            })
            .collect()
    }

    fn s(pairs: &[(&str, &str)], t: i64, f: f64) -> InstantSample {
        InstantSample {
            labels: Labels::from_pairs(pairs.iter().copied()),
            t,
            f,
        }
    }

    #[test]
    fn a_write_request_matches_the_bytes_prometheus_encodes() {
        // prompb.WriteRequest{Timeseries: [{Labels: [{__name__ up} {job a}],
        // Samples: [{Value: 1, Timestamp: 1700000000000}]}]}, marshalled by Prometheus's
        // gogo-protobuf code, written out by hand field by field.
        let bytes = encode(&[s(
            &[("__name__", "up"), ("job", "a")],
            1_700_000_000_000,
            1.0,
        )]);
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            0x0a, 0x2c,                                     // timeseries, 44 bytes
            0x0a, 0x0e,                                     //   label, 14 bytes
            0x0a, 0x08, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_',
            0x12, 0x02, b'u', b'p',
            0x0a, 0x08,                                     //   label, 8 bytes
            0x0a, 0x03, b'j', b'o', b'b',
            0x12, 0x01, b'a',
            0x12, 0x10,                                     //   sample, 16 bytes
            0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,             //     value 1.0
            0x10, 0x80, 0xd0, 0x95, 0xff, 0xbc, 0x31,       //     timestamp
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn series_group_their_samples_in_order_and_zero_values_are_left_out() {
        let stale = crate::store::stale_nan();
        let samples = [
            s(&[("__name__", "a")], 2000, 0.0),
            s(&[("__name__", "b"), ("x", "y")], 0, -2.5),
            s(&[("__name__", "a")], 3000, stale),
        ];
        let decoded = decode(&encode(&samples));
        assert_eq!(
            decoded,
            vec![
                (
                    vec![("__name__".to_owned(), "a".to_owned())],
                    vec![(2000, 0), (3000, stale.to_bits())]
                ),
                (
                    vec![
                        ("__name__".to_owned(), "b".to_owned()),
                        ("x".to_owned(), "y".to_owned())
                    ],
                    vec![(0, (-2.5f64).to_bits())]
                ),
            ]
        );
        // Zero timestamp and zero value are absent: the first sample is 3 bytes in all
        // (key 0x12, length 3, timestamp field).
        let bytes = encode(&samples[..1]);
        assert!(
            bytes.ends_with(&[0x12, 0x03, 0x10, 0xd0, 0x0f]),
            "{bytes:x?}"
        );
    }

    #[test]
    fn snappy_round_trips() {
        let samples: Vec<InstantSample> = (0..500)
            .map(|i| s(&[("__name__", "ALERTS"), ("n", &i.to_string())], i, 1.0))
            .collect();
        let raw = encode(&samples);
        let compressed = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        assert!(compressed.len() < raw.len());
        assert_eq!(
            snap::raw::Decoder::new()
                .decompress_vec(&compressed)
                .unwrap(),
            raw
        );
        assert_eq!(decode(&raw).len(), 500);
    }

    /// The requests a [`Receiver`] got: headers and body.
    type Requests = Arc<Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

    /// A remote-write receiver on loopback that answers with the statuses queued in it (then
    /// 204) and keeps every request's headers and body.
    struct Receiver {
        url: String,
        replies: Arc<Mutex<VecDeque<u16>>>,
        requests: Requests,
        server: tokio::task::JoinHandle<()>,
    }

    impl Receiver {
        async fn start(replies: &[u16]) -> Receiver {
            let replies = Arc::new(Mutex::new(replies.iter().copied().collect::<VecDeque<_>>()));
            let requests = Arc::new(Mutex::new(Vec::new()));
            let (r, q) = (replies.clone(), requests.clone());
            let app = axum::Router::new().route(
                "/api/v1/write",
                axum::routing::post(
                    move |headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
                        q.lock().unwrap().push((headers, body.to_vec()));
                        let status = r.lock().unwrap().pop_front().unwrap_or(204);
                        axum::http::StatusCode::from_u16(status).unwrap()
                    },
                ),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/api/v1/write", listener.local_addr().unwrap());
            let server = tokio::spawn(async move {
                axum::serve(listener, app).await.unwrap();
            });
            Receiver {
                url,
                replies,
                requests,
                server,
            }
        }
    }

    /// Polls `writer` until `done` holds for its stats, for at most ten seconds.
    async fn until(writer: &RemoteWriter, done: impl Fn(&WriteStats) -> bool) -> WriteStats {
        let started = std::time::Instant::now();
        loop {
            let stats = writer.stats();
            if done(&stats) || started.elapsed() > Duration::from_secs(10) {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn the_writer_retries_5xx_and_429_and_drops_what_a_4xx_refuses() {
        let receiver = Receiver::start(&[503, 429, 204, 400]).await;
        let auth = Auth::Bearer(crate::config::Secret::new("s3cret"));
        let telemetry = Arc::new(Telemetry::new());
        let writer = RemoteWriter::start(
            &receiver.url,
            auth,
            Duration::from_secs(5),
            Some(telemetry.clone()),
        )
        .unwrap();
        let alert = s(&[("__name__", "ALERTS"), ("alertname", "X")], 1_000, 1.0);
        writer.send(vec![alert.clone()]);
        let stats = until(&writer, |s| s.sent == 1).await;
        assert_eq!(
            stats,
            WriteStats {
                sent: 1,
                dropped: 0,
                retries: 2
            }
        );
        {
            let requests = receiver.requests.lock().unwrap();
            assert_eq!(requests.len(), 3);
            for (headers, body) in requests.iter() {
                let h = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
                assert_eq!(h("content-encoding"), "snappy");
                assert_eq!(h("content-type"), "application/x-protobuf");
                assert_eq!(h("x-prometheus-remote-write-version"), "0.1.0");
                assert_eq!(h("authorization"), "Bearer s3cret");
                let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
                assert_eq!(raw, encode(std::slice::from_ref(&alert)));
            }
        }
        writer.send(vec![s(&[("__name__", "r")], 2_000, 3.0)]);
        let stats = until(&writer, |s| s.dropped == 1).await;
        assert_eq!((stats.sent, stats.dropped, stats.retries), (1, 1, 2));
        assert_eq!(receiver.requests.lock().unwrap().len(), 4);
        assert!(receiver.replies.lock().unwrap().is_empty());
        let text = telemetry
            .self_registry()
            .encode(crate::exporter::encode::Format::Text);
        for line in [
            "tradewatch_remote_write_samples_total{outcome=\"sent\"} 1.0",
            "tradewatch_remote_write_samples_total{outcome=\"dropped\"} 1.0",
            "tradewatch_remote_write_retries_total 2.0",
            "tradewatch_remote_write_queue_samples 0.0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        writer.stop().await;
        receiver.server.abort();
    }

    #[tokio::test]
    async fn batches_hold_at_most_max_samples_per_send() {
        let receiver = Receiver::start(&[]).await;
        let writer =
            RemoteWriter::start(&receiver.url, Auth::None, Duration::from_secs(5), None).unwrap();
        let samples: Vec<InstantSample> = (0..MAX_SAMPLES_PER_SEND as i64 + 1)
            .map(|i| s(&[("__name__", "x")], i + 1, 1.0))
            .collect();
        writer.send(samples);
        let total = MAX_SAMPLES_PER_SEND as u64 + 1;
        assert_eq!(until(&writer, |s| s.sent == total).await.sent, total);
        {
            let requests = receiver.requests.lock().unwrap();
            let sizes: Vec<usize> = requests
                .iter()
                .map(|(_, body)| {
                    let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
                    decode(&raw).iter().map(|(_, s)| s.len()).sum()
                })
                .collect();
            assert_eq!(sizes, vec![MAX_SAMPLES_PER_SEND, 1]);
            assert!(requests[0].0.get("authorization").is_none());
        }
        writer.stop().await;
        receiver.server.abort();
    }
}
