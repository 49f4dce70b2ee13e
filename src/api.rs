//! HTTP endpoints (DESIGN §5): one router per process; each route declares the token it needs
//! and one middleware enforces it.

pub mod ack;
pub mod action;
pub mod alertmanager;
pub mod exporter;
pub mod health;
pub mod operations;
pub mod sidecar;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;

use crate::config::Tokens;
use crate::exporter::Registry;
use crate::ingest::Ingest;
use crate::telemetry::Telemetry;

/// Which token a route needs (DESIGN §5). The admin token also opens every other scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Open to anyone: `/metrics`, `/-/healthy`, `/-/ready`, and the signed action links `/a/…`.
    Public,
    /// Writing events or alerts.
    Ingest,
    /// Reading APIs.
    Read,
    /// Changing state: silences, acks, reload.
    Admin,
}

/// What the handlers share.
pub struct AppState {
    /// The exporter's ingest pipeline, when this process is an exporter.
    pub ingest: Option<Arc<Ingest>>,
    /// What the exporter's collectors read, served after the trading metrics.
    pub collected: Option<Arc<Registry>>,
    /// The process's own metrics.
    pub telemetry: Arc<Telemetry>,
    /// Configured tokens.
    pub tokens: Tokens,
    /// Health checks.
    pub health: health::Health,
    /// The largest request body read (before decompression).
    pub max_body_bytes: u64,
    /// The sidecar's rules, store and engine, when this process is a sidecar.
    pub sidecar: Option<sidecar::SidecarApi>,
    /// The notifier's Alertmanager API, when this process runs the notifier.
    pub notifier: Option<alertmanager::AlertmanagerApi>,
    /// Where `POST /-/reload` asks the running role to reload; the reply says how it went.
    pub reload: Option<tokio::sync::mpsc::Sender<ReloadRequest>>,
}

/// A reload request: the role answers `Ok` or the reason it refused the new configuration.
pub type ReloadRequest = tokio::sync::oneshot::Sender<Result<(), String>>;

/// Shared state handle.
pub type Shared = Arc<AppState>;

impl AppState {
    /// The state of an exporter process: its ingest pipeline, its collectors' registry and the
    /// exporter's health checks.
    pub fn exporter(
        config: &crate::config::Config,
        ingest: Arc<Ingest>,
        collected: Arc<Registry>,
        telemetry: Arc<Telemetry>,
        tokens: Tokens,
    ) -> Shared {
        let mut health = health::Health::default();
        health.add(health::ExporterHealth {
            ingest: ingest.clone(),
            heartbeat_timeout: config.exporter.heartbeat_timeout.as_duration(),
        });
        Arc::new(AppState {
            ingest: Some(ingest),
            collected: Some(collected),
            telemetry,
            tokens,
            health,
            max_body_bytes: config.exporter.limits.max_body_bytes,
            sidecar: None,
            notifier: None,
            reload: None,
        })
    }

    /// The state of a process with no role attached yet: the roles fill in their parts
    /// (`ingest`, `collected`, `sidecar`, health checks) before it is shared.
    pub fn new(
        config: &crate::config::Config,
        telemetry: Arc<Telemetry>,
        tokens: Tokens,
    ) -> AppState {
        AppState {
            ingest: None,
            collected: None,
            telemetry,
            tokens,
            health: health::Health::default(),
            max_body_bytes: config.exporter.limits.max_body_bytes,
            sidecar: None,
            notifier: None,
            reload: None,
        }
    }
}

/// The router of a process with `state`.
pub fn router(state: Shared) -> Router {
    let mut router = Router::new()
        .route(
            "/metrics",
            route(&state, Scope::Public, axum::routing::get(exporter::metrics)),
        )
        .route(
            "/-/healthy",
            route(&state, Scope::Public, axum::routing::get(health::healthy)),
        )
        .route(
            "/-/ready",
            route(&state, Scope::Public, axum::routing::get(health::ready)),
        )
        .route(
            "/api/v1/health",
            route(&state, Scope::Read, axum::routing::get(health::health)),
        );
    if state.ingest.is_some() {
        router = router
            .route(
                "/api/v1/events",
                route(&state, Scope::Ingest, axum::routing::post(exporter::ingest)),
            )
            .route(
                "/api/v1/events/schema",
                route(&state, Scope::Read, axum::routing::get(exporter::schema)),
            )
            .route(
                "/api/v1/changes",
                route(&state, Scope::Read, axum::routing::get(exporter::changes)),
            );
    }
    if state.reload.is_some() {
        router = router.route(
            "/-/reload",
            route(&state, Scope::Admin, axum::routing::post(reload)),
        );
    }
    if state.sidecar.is_some() {
        let read = |m| route(&state, Scope::Read, m);
        use axum::routing::get;
        router = router
            .route(
                "/api/v1/query",
                read(get(sidecar::query).post(sidecar::query)),
            )
            .route(
                "/api/v1/query_range",
                read(get(sidecar::query_range).post(sidecar::query_range)),
            )
            .route(
                "/api/v1/series",
                read(get(sidecar::series).post(sidecar::series)),
            )
            .route(
                "/api/v1/labels",
                read(get(sidecar::labels).post(sidecar::labels)),
            )
            .route(
                "/api/v1/label/{name}/values",
                read(get(sidecar::label_values)),
            )
            .route("/api/v1/rules", read(get(sidecar::rules)))
            .route("/api/v1/alerts", read(get(sidecar::alerts)))
            .route("/api/v1/outbox", read(get(operations::outbox)))
            .route(
                "/api/v1/outbox/{id}/retry",
                route(&state, Scope::Admin, axum::routing::post(operations::retry)),
            )
            .route("/api/v1/alert-log", read(get(operations::alert_log)))
            .route(
                "/api/v1/alerts/{fingerprint}/ack",
                route(&state, Scope::Admin, axum::routing::post(ack::ack_alert)),
            )
            .route(
                "/api/v1/groups/ack",
                route(&state, Scope::Admin, axum::routing::post(ack::ack_group)),
            )
            .route("/api/v1/acks", read(get(ack::list)))
            .route(
                "/a/{token}",
                route(
                    &state,
                    Scope::Public,
                    get(action::show).post(action::perform),
                ),
            );
    }
    if state.notifier.is_some() {
        use alertmanager as am;
        use axum::routing::{delete, get, post};
        router = router
            .route(
                "/api/v2/alerts",
                route(&state, Scope::Read, get(am::get_alerts)).merge(route(
                    &state,
                    Scope::Ingest,
                    post(am::post_alerts),
                )),
            )
            .route(
                "/api/v2/alerts/groups",
                route(&state, Scope::Read, get(am::get_groups)),
            )
            .route(
                "/api/v2/silences",
                route(&state, Scope::Read, get(am::get_silences)).merge(route(
                    &state,
                    Scope::Admin,
                    post(am::post_silences),
                )),
            )
            .route(
                "/api/v2/silence/{id}",
                route(&state, Scope::Read, get(am::get_silence)).merge(route(
                    &state,
                    Scope::Admin,
                    delete(am::delete_silence),
                )),
            )
            .route(
                "/api/v2/status",
                route(&state, Scope::Read, get(am::status_handler)),
            )
            .route(
                "/api/v2/receivers",
                route(&state, Scope::Read, get(am::receivers)),
            );
    }
    router.fallback(not_found).with_state(state)
}

/// `POST /-/reload`: 200 when the new configuration is in force, 500 with the reason (as
/// Prometheus answers) when it was refused and the old one keeps running.
async fn reload(State(state): State<Shared>) -> Response {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let Some(tx) = &state.reload else {
        return ApiError::new(StatusCode::NOT_FOUND, "no such endpoint").into_response();
    };
    if tx.send(reply).await.is_err() {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    match answer.await {
        Ok(Ok(())) => (StatusCode::OK, "").into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}"),
        )
            .into_response(),
        Err(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
}

fn route(state: &Shared, scope: Scope, method: MethodRouter<Shared>) -> MethodRouter<Shared> {
    method.route_layer(axum::middleware::from_fn_with_state(
        (state.clone(), scope),
        authorize,
    ))
}

async fn authorize(
    State((state, scope)): State<(Shared, Scope)>,
    request: Request,
    next: Next,
) -> Response {
    let tokens = &state.tokens;
    let required = match scope {
        Scope::Public => None,
        Scope::Ingest => tokens.ingest.as_ref(),
        Scope::Read => tokens.read.as_ref(),
        Scope::Admin => tokens.admin.as_ref(),
    };
    let Some(required) = required else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let ok = presented.is_some_and(|p| {
        required.matches(p.as_bytes())
            || tokens
                .admin
                .as_ref()
                .is_some_and(|a| a.matches(p.as_bytes()))
    });
    if ok {
        return next.run(request).await;
    }
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "a valid bearer token is required").into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// An error reply: a status and a message, as `{"error": "…"}`, with `Retry-After` when set.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u32>,
}

impl ApiError {
    /// An error with this status and message (the message reaches the client: no internals).
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Asks the client to retry after `seconds`.
    pub fn retry_after(mut self, seconds: u32) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = axum::Json(serde_json::json!({ "error": self.message }));
        let mut response = (self.status, body).into_response();
        if let Some(s) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}
