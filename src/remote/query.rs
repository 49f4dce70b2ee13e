//! A Prometheus HTTP API client for instant queries: `POST /api/v1/query` (form-encoded
//! `query`, `time`, `timeout`; `GET` when the server answers 405, as client_golang falls back),
//! results decoded into [`Value`] and Prometheus's error JSON turned into a rule's error.

use std::collections::BTreeMap;
use std::time::Duration;

use promql_parser::parser::Expr;
use reqwest::StatusCode;
use serde::Deserialize;

use super::{Auth, chain};
use crate::config::ConfigError;
use crate::config::sidecar::RemoteConfig;
use crate::model::labels::Labels;
use crate::promql::{InstantSample, Series, Value};
use crate::rules::Evaluate;
use crate::store::Sample;

/// Why a remote query failed; the message becomes the rule's last error.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// `sidecar.remote.url` is not a usable URL.
    #[error("sidecar.remote.url {url:?}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A secret could not be read.
    #[error(transparent)]
    Secret(#[from] ConfigError),
    /// The HTTP client could not be built.
    #[error("failed to build the remote query client: {0}")]
    Client(#[source] reqwest::Error),
    /// The server answered with Prometheus's error JSON.
    #[error("remote query failed: {error_type}: {error}")]
    Api {
        /// `errorType`: `bad_data`, `execution`, `timeout`, `canceled`, `internal`, …
        error_type: String,
        /// `error`.
        error: String,
    },
    /// The server answered with an HTTP error and no error JSON.
    #[error("remote query failed: HTTP {status}: {body}")]
    Status {
        /// The status.
        status: StatusCode,
        /// The start of the body.
        body: String,
    },
    /// No answer within `sidecar.remote.timeout`.
    #[error("remote query timed out after {0:?}")]
    Timeout(Duration),
    /// The request could not be sent or its answer read.
    #[error("remote query failed: {0}")]
    Request(String),
    /// The answer is not a Prometheus query response.
    #[error("remote query returned an unreadable response: {0}")]
    Decode(String),
}

/// Instant queries against one Prometheus-compatible API.
pub struct QueryClient {
    endpoint: reqwest::Url,
    client: reqwest::Client,
    auth: Auth,
    timeout: Duration,
    runtime: OwnRuntime,
}

/// The client's own runtime: one thread that drives its connections, so a query made from a
/// rule loop completes even while every worker of the process's runtime waits for that rule's
/// group (an API request reading its status, say).
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            // Also fine inside an async context, where a plain drop would panic.
            runtime.shutdown_background();
        }
    }
}

/// A response of the query API, success or error.
#[derive(Deserialize)]
struct Response {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<VectorSample>),
    Scalar((f64, String)),
    String((f64, String)),
    Matrix(Vec<MatrixSeries>),
}

#[derive(Deserialize)]
struct VectorSample {
    metric: BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(f64, String)>,
}

#[derive(Deserialize)]
struct MatrixSeries {
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// Milliseconds of a timestamp in seconds as the API writes it (`1435781451.781`).
fn millis(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

/// A sample value as the API writes it: a decimal, `NaN`, `+Inf` or `-Inf`.
fn value(text: &str) -> Result<f64, RemoteError> {
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => text
            .parse()
            .map_err(|_| RemoteError::Decode(format!("sample value {text:?} is not a number"))),
    }
}

fn labels(metric: &BTreeMap<String, String>) -> Labels {
    Labels::from_pairs(metric.iter())
}

/// The [`Value`] of a query response's body.
pub fn decode(body: &[u8]) -> Result<Value, RemoteError> {
    let response: Response =
        serde_json::from_slice(body).map_err(|e| RemoteError::Decode(e.to_string()))?;
    if response.status != "success" {
        return Err(RemoteError::Api {
            error_type: response.error_type.unwrap_or_else(|| "unknown".to_owned()),
            error: response.error.unwrap_or_default(),
        });
    }
    let data = response
        .data
        .ok_or_else(|| RemoteError::Decode("a successful response without data".to_owned()))?;
    Ok(match data {
        Data::Scalar((t, v)) => Value::Scalar {
            t: millis(t),
            f: value(&v)?,
        },
        Data::String((_, s)) => Value::String(s),
        Data::Vector(samples) => Value::Vector(
            samples
                .iter()
                .map(|s| {
                    let (t, v) = s.value.as_ref().ok_or_else(|| {
                        RemoteError::Decode(
                            "a sample without a float value (native histograms are not supported)"
                                .to_owned(),
                        )
                    })?;
                    Ok(InstantSample {
                        labels: labels(&s.metric),
                        t: millis(*t),
                        f: value(v)?,
                    })
                })
                .collect::<Result<_, RemoteError>>()?,
        ),
        Data::Matrix(series) => Value::Matrix(
            series
                .iter()
                .map(|s| {
                    Ok(Series {
                        labels: labels(&s.metric),
                        points: s
                            .values
                            .iter()
                            .map(|(t, v)| {
                                Ok(Sample {
                                    t: millis(*t),
                                    f: value(v)?,
                                })
                            })
                            .collect::<Result<_, RemoteError>>()?,
                    })
                })
                .collect::<Result<_, RemoteError>>()?,
        ),
    })
}

/// Milliseconds as the API's `time` parameter, in seconds (`1700000000.123`).
fn seconds(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    format!("{sign}{}.{:03}", ms / 1000, ms % 1000)
}

impl QueryClient {
    /// A client for `config.url`, reading the secrets of `config.auth`. Evaluations through
    /// [`Evaluate`] block the calling thread, which must not be a runtime's worker (the rule
    /// loops call from `spawn_blocking`).
    pub fn new(config: &RemoteConfig) -> Result<QueryClient, RemoteError> {
        let base = config.url.trim_end_matches('/');
        let endpoint =
            reqwest::Url::parse(&format!("{base}/api/v1/query")).map_err(|e| RemoteError::Url {
                url: config.url.clone(),
                reason: e.to_string(),
            })?;
        let auth = Auth::load(&config.auth)?;
        let timeout = config.timeout.as_duration();
        crate::server::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(RemoteError::Client)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("remote-query")
            .enable_all()
            .build()
            .map_err(|e| RemoteError::Request(format!("cannot start its runtime: {e}")))?;
        Ok(QueryClient {
            endpoint,
            client,
            auth,
            timeout,
            runtime: OwnRuntime(Some(runtime)),
        })
    }

    /// The value of `expr` at `at_ms` (Unix milliseconds).
    pub async fn query(&self, expr: &str, at_ms: i64) -> Result<Value, RemoteError> {
        let time = seconds(at_ms);
        let timeout = format!("{}ms", self.timeout.as_millis());
        let params = [
            ("query", expr),
            ("time", time.as_str()),
            ("timeout", timeout.as_str()),
        ];
        let form: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let post = self
            .auth
            .apply(self.client.post(self.endpoint.clone()))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form.clone());
        let mut response = post.send().await.map_err(|e| self.failed(&e))?;
        if response.status() == StatusCode::METHOD_NOT_ALLOWED {
            let mut url = self.endpoint.clone();
            url.set_query(Some(&form));
            response = self
                .auth
                .apply(self.client.get(url))
                .send()
                .await
                .map_err(|e| self.failed(&e))?;
        }
        let status = response.status();
        let body = response.bytes().await.map_err(|e| self.failed(&e))?;
        match decode(&body) {
            Err(e @ RemoteError::Api { .. }) => Err(e),
            decoded if status.is_success() => decoded,
            _ => Err(RemoteError::Status {
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(256)])
                    .trim()
                    .to_owned(),
            }),
        }
    }

    fn failed(&self, e: &reqwest::Error) -> RemoteError {
        if e.is_timeout() {
            RemoteError::Timeout(self.timeout)
        } else {
            RemoteError::Request(chain(e))
        }
    }
}

impl Evaluate for QueryClient {
    /// Sends the rule's source text, so the server parses it as written.
    fn instant(&self, _expr: &Expr, source: &str, at_ms: i64) -> Result<Value, String> {
        let runtime = self.runtime.0.as_ref().expect("runtime until drop");
        runtime
            .block_on(self.query(source, at_ms))
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_scalars_strings_and_matrices_decode() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"up","job":"a"},"value":[1435781451.781,"1"]},
            {"metric":{},"value":[1435781451.781,"NaN"]},
            {"metric":{"x":"y"},"value":[1435781451.781,"-Inf"]}]}}"#;
        let Value::Vector(v) = decode(body).unwrap() else {
            panic!("not a vector")
        };
        assert_eq!(v.len(), 3);
        assert_eq!(
            v[0].labels,
            Labels::from_pairs([("__name__", "up"), ("job", "a")])
        );
        assert_eq!((v[0].t, v[0].f), (1_435_781_451_781, 1.0));
        assert!(v[1].f.is_nan() && v[1].labels.is_empty());
        assert_eq!(v[2].f, f64::NEG_INFINITY);

        let body = br#"{"status":"success","data":{"resultType":"scalar","result":[12.5,"+Inf"]}}"#;
        assert_eq!(
            decode(body).unwrap(),
            Value::Scalar {
                t: 12_500,
                f: f64::INFINITY
            }
        );
        let body = br#"{"status":"success","data":{"resultType":"string","result":[1,"hi"]}}"#;
        assert_eq!(decode(body).unwrap(), Value::String("hi".to_owned()));
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"a":"b"},"values":[[1,"1"],[2.5,"2e3"]]}]}}"#;
        assert_eq!(
            decode(body).unwrap(),
            Value::Matrix(vec![Series {
                labels: Labels::from_pairs([("a", "b")]),
                points: vec![Sample { t: 1000, f: 1.0 }, Sample { t: 2500, f: 2000.0 }],
            }])
        );
    }

    #[test]
    fn prometheus_errors_become_the_rule_error() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected <EOF>"}"#;
        assert_eq!(
            decode(body).unwrap_err().to_string(),
            "remote query failed: bad_data: 1:5: parse error: unexpected <EOF>"
        );
        let err = decode(b"<html>").unwrap_err().to_string();
        assert!(
            err.starts_with("remote query returned an unreadable response: "),
            "{err}"
        );
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{}]}]}}"#;
        assert!(
            decode(body)
                .unwrap_err()
                .to_string()
                .contains("native histograms are not supported")
        );
        let body = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"x"]}}"#;
        assert_eq!(
            decode(body).unwrap_err().to_string(),
            "remote query returned an unreadable response: sample value \"x\" is not a number"
        );
    }

    #[test]
    fn times_are_seconds_with_milliseconds() {
        assert_eq!(seconds(1_700_000_000_123), "1700000000.123");
        assert_eq!(seconds(5), "0.005");
        assert_eq!(seconds(-1), "-0.001");
        assert_eq!(millis(1435781451.781), 1_435_781_451_781);
    }

    use std::sync::{Arc, Mutex};

    use crate::config::sidecar::{BasicAuth, RemoteAuth};
    use crate::model::PromDuration;

    /// What the fake API saw: method, `Authorization`, and the query parameters.
    type Seen = Arc<Mutex<Vec<(String, Option<String>, String)>>>;

    /// A query API on loopback that refuses POST with 405 when `post_allowed` is false and
    /// answers every query with a one-sample vector of the query's `time`.
    async fn api(post_allowed: bool) -> (String, Seen) {
        let seen: Seen = Arc::default();
        let record = seen.clone();
        let handler = move |method: axum::http::Method,
                            headers: axum::http::HeaderMap,
                            uri: axum::http::Uri,
                            body: String| {
            let record = record.clone();
            async move {
                let params = if method == axum::http::Method::POST {
                    body
                } else {
                    uri.query().unwrap_or_default().to_owned()
                };
                let auth = headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_owned());
                record
                    .lock()
                    .unwrap()
                    .push((method.to_string(), auth, params.clone()));
                if method == axum::http::Method::POST && !post_allowed {
                    return (axum::http::StatusCode::METHOD_NOT_ALLOWED, String::new());
                }
                let time = url::form_urlencoded::parse(params.as_bytes())
                    .find(|(k, _)| k == "time")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let body = format!(
                    r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{"a":"b"}},"value":[{time},"7"]}}]}}}}"#
                );
                (axum::http::StatusCode::OK, body)
            }
        };
        let app = axum::Router::new().route("/api/v1/query", axum::routing::any(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, seen)
    }

    fn config(url: &str, auth: RemoteAuth, timeout: PromDuration) -> RemoteConfig {
        RemoteConfig {
            url: url.to_owned(),
            auth,
            timeout,
            write_url: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn queries_post_with_basic_auth_and_fall_back_to_get() {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("password");
        std::fs::write(&password, "pa55\n").unwrap();
        let auth = RemoteAuth {
            bearer_token_file: None,
            basic_auth: Some(BasicAuth {
                username: "rules".to_owned(),
                password_file: Some(password),
                password_env: None,
            }),
        };
        for post_allowed in [true, false] {
            let (url, seen) = api(post_allowed).await;
            let client =
                QueryClient::new(&config(&url, auth.clone(), PromDuration::from_secs(3))).unwrap();
            let expr = crate::promql::parse("sum(up)").unwrap();
            // Through the rule seam, from a blocking thread as the rule loops call it.
            let value = tokio::task::spawn_blocking(move || {
                client.instant(&expr, "sum(up)", 1_700_000_000_250)
            })
            .await
            .unwrap()
            .unwrap();
            assert_eq!(
                value,
                Value::Vector(vec![InstantSample {
                    labels: Labels::from_pairs([("a", "b")]),
                    t: 1_700_000_000_250,
                    f: 7.0,
                }])
            );
            let seen = seen.lock().unwrap();
            let methods: Vec<&str> = seen.iter().map(|(m, _, _)| m.as_str()).collect();
            assert_eq!(
                methods,
                if post_allowed {
                    vec!["POST"]
                } else {
                    vec!["POST", "GET"]
                }
            );
            for (_, auth, params) in seen.iter() {
                // base64("rules:pa55")
                assert_eq!(auth.as_deref(), Some("Basic cnVsZXM6cGE1NQ=="));
                assert_eq!(
                    params,
                    "query=sum%28up%29&time=1700000000.250&timeout=3000ms"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_server_that_does_not_answer_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        // Accepts connections and never answers.
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let client = QueryClient::new(&config(
            &url,
            RemoteAuth::default(),
            PromDuration::from_millis(200),
        ))
        .unwrap();
        let err = client.query("up", 0).await.unwrap_err();
        assert_eq!(err.to_string(), "remote query timed out after 200ms");
        held.abort();
    }

    #[tokio::test]
    async fn a_missing_secret_is_named() {
        let auth = RemoteAuth {
            bearer_token_file: Some("/nonexistent/token".into()),
            basic_auth: None,
        };
        let err = QueryClient::new(&config(
            "http://127.0.0.1:9",
            auth,
            PromDuration::from_secs(1),
        ))
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.starts_with("failed to read sidecar.remote bearer token file /nonexistent/token: "),
            "{err}"
        );
    }
}
