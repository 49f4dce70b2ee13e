//! The exporter's endpoints: event ingest, the events' JSON Schema, the change long poll and
//! `/metrics`.

use std::io::Write;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{ApiError, Shared};
use crate::exporter::{Format, encode};
use crate::ingest::{BodyKind, IngestError, rejection_reason};

/// The JSON Schema of events, as kept in the repository.
pub const EVENTS_SCHEMA: &str = include_str!("../../schema/events.schema.json");

/// `POST /api/v1/events`.
pub async fn ingest(State(state): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let response = match ingest_inner(&state, &headers, body).await {
        Ok(reply) => {
            let status = StatusCode::from_u16(reply.status()).unwrap_or(StatusCode::OK);
            (status, axum::Json(reply)).into_response()
        }
        Err(err) => {
            if !matches!(err, IngestError::QueueFull | IngestError::Unavailable(_)) {
                state.telemetry.events_rejected(rejection_reason(&err), 1);
            }
            let (status, retry) = match &err {
                IngestError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, None),
                IngestError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, None),
                IngestError::BadEncoding(_) | IngestError::BadBody(_) => {
                    (StatusCode::BAD_REQUEST, None)
                }
                IngestError::QueueFull => (StatusCode::TOO_MANY_REQUESTS, Some(1)),
                IngestError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, Some(5)),
            };
            let mut e = ApiError::new(status, err.to_string());
            if let Some(r) = retry {
                e = e.retry_after(r);
            }
            e.into_response()
        }
    };
    state
        .telemetry
        .ingest_request(response.status().as_u16(), started.elapsed());
    response
}

async fn ingest_inner(
    state: &Shared,
    headers: &HeaderMap,
    body: Body,
) -> Result<crate::ingest::Reply, IngestError> {
    let ingest = state
        .ingest
        .as_ref()
        .expect("route exists only on exporters");
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let kind = BodyKind::from_content_type(content_type)?;
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
    {
        None => false,
        Some(e) if e == "gzip" || e == "x-gzip" => true,
        Some(e) if e == "identity" => false,
        Some(e) => {
            return Err(IngestError::UnsupportedMediaType(format!(
                "Content-Encoding {e}"
            )));
        }
    };
    let limit = usize::try_from(state.max_body_bytes).unwrap_or(usize::MAX);
    let bytes: Bytes = axum::body::to_bytes(body, limit + 1).await.map_err(|_| {
        IngestError::TooLarge(format!("the body is over the limit of {limit} bytes"))
    })?;
    let now = crate::ingest::now();
    let batch = ingest.decode(&bytes, gzip, kind, now)?;
    drop(bytes);
    ingest.submit(batch).await
}

/// `GET /api/v1/events/schema`.
pub async fn schema() -> Response {
    (
        [(header::CONTENT_TYPE, "application/schema+json")],
        EVENTS_SCHEMA,
    )
        .into_response()
}

/// Query of the change long poll.
#[derive(serde::Deserialize)]
pub struct ChangesQuery {
    /// Answer once the change counter passes this.
    #[serde(default)]
    after: u64,
    /// How long to hold the request open (Prometheus duration, at most 60s).
    timeout: Option<crate::model::PromDuration>,
}

/// `GET /api/v1/changes?after=SEQ&timeout=5s`: answers `{"seq": N}` as soon as the change
/// counter passes `after`, or at the timeout with its current value.
pub async fn changes(State(state): State<Shared>, Query(q): Query<ChangesQuery>) -> Response {
    let ingest = state
        .ingest
        .as_ref()
        .expect("route exists only on exporters");
    let timeout = q
        .timeout
        .map_or(Duration::from_secs(5), |d| d.as_duration())
        .min(Duration::from_secs(60));
    let mut rx = ingest.changes();
    let after = q.after;
    let passed = tokio::time::timeout(timeout, async {
        rx.wait_for(|seq| *seq > after).await.map(|s| *s)
    })
    .await;
    let seq = match passed {
        Ok(Ok(seq)) => seq,
        _ => *rx.borrow(),
    };
    axum::Json(serde_json::json!({ "seq": seq })).into_response()
}

/// `GET /metrics`: the trading registry, the collectors' and the self-metrics, in the negotiated
/// format, gzipped when the scraper accepts it.
pub async fn metrics(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|e| e.split(';').next().map(str::trim) == Some("gzip"))
        });
    let offers_changes = state.ingest.is_some();
    let encoded = tokio::task::spawn_blocking(move || {
        let mut out = Vec::with_capacity(1 << 16);
        let trading = state.ingest.as_ref().map(|i| i.registry().as_ref());
        if let Some(registry) = trading {
            registry.encode_into(format, &mut out);
        }
        if let Some(collected) = &state.collected {
            collected.encode_into(format, &mut out);
        }
        state
            .telemetry
            .registry(trading)
            .encode_into(format, &mut out);
        encode::finish(format, &mut out);
        if gzip {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(out.len() / 8),
                flate2::Compression::fast(),
            );
            gz.write_all(&out).expect("writing to memory");
            out = gz.finish().expect("writing to memory");
        }
        out
    })
    .await;
    let Ok(body) = encoded else {
        return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed").into_response();
    };
    let mut response = Response::new(Body::from(body));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if offers_changes {
        // Tells a scraping sidecar that this target has the change long poll.
        h.insert(
            crate::scrape::target::CHANGES_HEADER,
            HeaderValue::from_static("/api/v1/changes"),
        );
    }
    response
}
