//! Acknowledgement endpoints (DESIGN §5): `POST /api/v1/alerts/{fingerprint}/ack` with
//! `{"author", "comment"}`, `POST /api/v1/groups/ack` with `{"group_key", "author", "comment"}`
//! (admin), and `GET /api/v1/acks` (read).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, Shared};
use crate::notify::ack::{AckError, parse_fingerprint};
use crate::notify::pipeline::{AckFailure, AckTarget, Notifier};

/// Body of `POST /api/v1/alerts/{fingerprint}/ack`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertAck {
    author: String,
    #[serde(default)]
    comment: String,
}

/// Body of `POST /api/v1/groups/ack`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupAck {
    group_key: String,
    author: String,
    #[serde(default)]
    comment: String,
}

fn notifier(state: &Shared) -> Result<Arc<Notifier>, ApiError> {
    state
        .sidecar
        .as_ref()
        .and_then(|s| s.notifier.clone())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no notifier: set notifier.config_file or notifier.config",
            )
        })
}

fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad request body: {e}")))
}

async fn acknowledge(
    notifier: Arc<Notifier>,
    target: AckTarget,
    author: String,
    comment: String,
) -> Result<Response, ApiError> {
    let done = tokio::task::spawn_blocking(move || {
        notifier.acknowledge(target, &author, &comment, Utc::now())
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "ack failed"))?;
    match done {
        Ok(acks) => Ok(axum::Json(json!({ "acks": acks })).into_response()),
        Err(AckFailure::Refused(e)) => {
            let status = match e {
                AckError::UnknownAlert(_) | AckError::UnknownGroup(_) => StatusCode::NOT_FOUND,
                AckError::BadFingerprint(_) | AckError::NoAuthor => StatusCode::BAD_REQUEST,
            };
            Err(ApiError::new(status, e.to_string()))
        }
        Err(AckFailure::Store(e)) => {
            tracing::error!(error = %e, "Acknowledgement could not be stored.");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "acknowledgement could not be stored",
            ))
        }
    }
}

/// `POST /api/v1/alerts/{fingerprint}/ack`: acknowledges one firing alert.
pub async fn ack_alert(
    State(state): State<Shared>,
    Path(fingerprint): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let notifier = notifier(&state)?;
    let fp = parse_fingerprint(&fingerprint)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let req: AlertAck = body(&bytes)?;
    acknowledge(notifier, AckTarget::Alert(fp), req.author, req.comment).await
}

/// `POST /api/v1/groups/ack`: acknowledges every alert firing in a group.
pub async fn ack_group(
    State(state): State<Shared>,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let notifier = notifier(&state)?;
    let req: GroupAck = body(&bytes)?;
    acknowledge(
        notifier,
        AckTarget::Group(req.group_key),
        req.author,
        req.comment,
    )
    .await
}

/// `GET /api/v1/acks`: the acknowledgements in force.
pub async fn list(State(state): State<Shared>) -> Result<Response, ApiError> {
    let notifier = notifier(&state)?;
    Ok(axum::Json(json!({ "acks": notifier.acks() })).into_response())
}
