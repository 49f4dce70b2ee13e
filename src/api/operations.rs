//! tradewatch's own sidecar endpoints for the people who run it: the outbox
//! (`GET /api/v1/outbox`, `POST /api/v1/outbox/{id}/retry`) and the alert log
//! (`GET /api/v1/alert-log`, an NDJSON stream with `follow=1`).

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, Shared};
use crate::notify::outbox::{Item, ItemState, OutboxError};

fn item_json(item: &Item) -> serde_json::Value {
    let n = &item.notification;
    json!({
        "id": item.id,
        "receiver": item.target.receiver,
        "integration": item.target.integration(),
        "state": item.state.as_str(),
        "attempts": item.attempts,
        "created_at": item.created_at,
        "next_attempt_at": item.next_attempt_at,
        "expires_at": item.expires_at,
        "delivered_at": item.delivered_at,
        "last_error": item.last_error,
        "last_response": item.last_response,
        "fallback_of": item.fallback_of,
        "notification": n.id,
        "group_key": n.group_key,
        "status": n.status().as_str(),
        "alerts": n.alerts.iter().map(|a| a.name().to_owned()).collect::<Vec<_>>(),
    })
}

fn notifier(
    state: &Shared,
) -> Result<&std::sync::Arc<crate::notify::pipeline::Notifier>, ApiError> {
    state
        .sidecar
        .as_ref()
        .and_then(|s| s.notifier.as_ref())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no notifier: set notifier.config_file or notifier.config",
            )
        })
}

/// `?state=` of `GET /api/v1/outbox`.
#[derive(Debug, Deserialize)]
pub struct OutboxQuery {
    state: Option<String>,
}

/// `GET /api/v1/outbox[?state=pending|delivered|dead]`: the items, oldest first.
pub async fn outbox(
    State(state): State<Shared>,
    Query(q): Query<OutboxQuery>,
) -> Result<Response, ApiError> {
    let notifier = notifier(&state)?.clone();
    let filter = match q.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            ItemState::ALL
                .into_iter()
                .find(|st| st.as_str() == s)
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!("state must be pending, delivered or dead, not {s:?}"),
                    )
                })?,
        ),
    };
    let items = tokio::task::spawn_blocking(move || notifier.outbox().list(filter))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "outbox lookup failed"))?
        .map_err(|e| {
            tracing::error!(error = %e, "Outbox lookup failed.");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "outbox lookup failed")
        })?;
    Ok(
        axum::Json(json!({"items": items.iter().map(item_json).collect::<Vec<_>>()}))
            .into_response(),
    )
}

/// `POST /api/v1/outbox/{id}/retry`: a dead item goes back to pending, due now.
pub async fn retry(State(state): State<Shared>, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let notifier = notifier(&state)?.clone();
    let done = tokio::task::spawn_blocking(move || notifier.retry(id, Utc::now()))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "retry failed"))?;
    match done {
        Ok(event) => Ok(axum::Json(
            json!({"id": id, "state": "pending", "notification": event.id}),
        )
        .into_response()),
        Err(OutboxError::NotFound(_)) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("outbox item {id} not found"),
        )),
        Err(e @ OutboxError::NotDead { .. }) => {
            Err(ApiError::new(StatusCode::CONFLICT, e.to_string()))
        }
        Err(e) => {
            tracing::error!(error = %e, "Outbox retry failed.");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "retry failed",
            ))
        }
    }
}

/// Parameters of `GET /api/v1/alert-log`.
#[derive(Debug, Deserialize)]
pub struct LogQuery {
    /// Lines from this time on (RFC 3339); default the last hour.
    since: Option<String>,
    /// Keep the response open and stream new lines as they are written.
    follow: Option<String>,
}

/// `GET /api/v1/alert-log[?since=T][&follow=1]`: the alert log's lines since `since` as NDJSON;
/// with `follow`, then every new line as it is written, until the client goes away.
pub async fn alert_log(
    State(state): State<Shared>,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let log = state
        .sidecar
        .as_ref()
        .map(|s| s.log.clone())
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no alert log in this process"))?;
    let since = match q.since.as_deref() {
        None | Some("") => Utc::now() - chrono::Duration::hours(1),
        Some(t) => DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("since must be an RFC 3339 time, not {t:?}"),
                )
            })?,
    };
    let follow = matches!(q.follow.as_deref(), Some("1" | "true"));
    // Subscribe before reading the backlog, so no line falls between the two.
    let mut live = log.follow();
    let backlog = {
        let log = log.clone();
        tokio::task::spawn_blocking(move || log.read_since(since))
            .await
            .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "alert log read failed"))?
            .map_err(|e| {
                tracing::error!(error = %e, "Alert log read failed.");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "alert log read failed")
            })?
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(64);
    tokio::spawn(async move {
        let mut last_backlog = None;
        for line in backlog {
            last_backlog = Some(line.clone());
            if tx.send(Ok(Bytes::from(line + "\n"))).await.is_err() {
                return;
            }
        }
        if !follow {
            return;
        }
        loop {
            match live.recv().await {
                Ok(line) => {
                    // A line written while the backlog was read comes twice; skip the copy.
                    if last_backlog.as_deref() == Some(line.as_str()) {
                        last_backlog = None;
                        continue;
                    }
                    if tx.send(Ok(Bytes::from(line + "\n"))).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "Alert log follower too slow; lines skipped.");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}
