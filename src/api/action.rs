//! Action links (DESIGN §3, §5): `GET /a/{token}` shows a small confirm page that works on a
//! phone; its button POSTs to the same address, which acknowledges or silences the alert. No
//! API token is needed: the link carries its own signature. A link that was altered or made
//! with another key is refused with 403, an expired one with 410, one used before with 409;
//! every outcome is counted in `tradewatch_action_links_total`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::Shared;
use crate::notify::action::{ActionLinks, Claims};
use crate::notify::pipeline::{ActionDone, ActionFailure, Notifier};
use crate::template::funcs::html_escape;

/// A page: the status, its title and body (HTML already escaped), and the outcome counted.
struct Page {
    status: StatusCode,
    title: String,
    body: String,
}

impl Page {
    fn message(status: StatusCode, title: &str, text: &str) -> Page {
        Page {
            status,
            title: title.to_owned(),
            body: format!("<p>{}</p>", html_escape(text)),
        }
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let html = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"referrer\" content=\"no-referrer\">\n<title>{title}</title>\n</head>\n\
             <body style=\"margin:0;padding:16px;font-family:-apple-system,Helvetica,Arial,sans-serif;font-size:17px;line-height:1.4;color:#212121;background:#f4f4f4\">\n\
             <div style=\"max-width:480px;margin:0 auto;background:#fff;border-radius:6px;padding:16px\">\n\
             <h1 style=\"font-size:20px;margin:0 0 12px\">{title}</h1>\n{body}\n</div>\n</body>\n</html>\n",
            title = html_escape(&self.title),
            body = self.body,
        );
        let mut response = (self.status, html).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ),
        );
        response
    }
}

fn count(state: &Shared, outcome: &str) {
    state.telemetry.action_link(outcome);
}

/// The notifier and its links, or the page that says there are none.
fn links(state: &Shared) -> Result<(Arc<Notifier>, Arc<ActionLinks>), Page> {
    state
        .sidecar
        .as_ref()
        .and_then(|s| s.notifier.clone())
        .and_then(|n| n.action_links().map(|l| (n, l)))
        .ok_or_else(|| {
            Page::message(
                StatusCode::NOT_FOUND,
                "No action links",
                "This tradewatch does not make action links (notifier.action_links is not set).",
            )
        })
}

/// The claims of `token`, or the refusal page (counted).
fn verify(state: &Shared, links: &ActionLinks, token: &str) -> Result<Claims, Page> {
    links.verify(token, Utc::now()).map_err(|e| {
        count(state, e.outcome());
        let status = match e {
            crate::notify::action::LinkError::BadSignature => StatusCode::FORBIDDEN,
            crate::notify::action::LinkError::Expired => StatusCode::GONE,
        };
        Page::message(status, "Link refused", &e.to_string())
    })
}

/// The notifier, the links and the claims of `token`, or the page that refuses it.
fn open(state: &Shared, token: &str) -> Result<(Arc<Notifier>, Arc<ActionLinks>, Claims), Page> {
    let (notifier, links) = links(state)?;
    let claims = verify(state, &links, token)?;
    Ok((notifier, links, claims))
}

fn used(state: &Shared) -> Page {
    count(state, "used");
    Page::message(
        StatusCode::CONFLICT,
        "Link already used",
        "This link was already used; each link works once.",
    )
}

fn alert_table(claims: &Claims) -> String {
    let mut rows = String::new();
    for (name, value) in &claims.labels {
        if name == "alertname" {
            continue;
        }
        rows.push_str(&format!(
            "<tr><td style=\"padding:2px 8px 2px 0;color:#616161\">{}</td><td>{}</td></tr>",
            html_escape(name),
            html_escape(value)
        ));
    }
    format!(
        "<div style=\"font-size:18px;font-weight:bold\">{}</div>\n<table style=\"font-size:15px;margin:8px 0 16px;border-collapse:collapse\">{rows}</table>",
        html_escape(claims.alertname())
    )
}

/// `GET /a/{token}`: the confirm page, whose button POSTs the action.
pub async fn show(State(state): State<Shared>, Path(token): Path<String>) -> Response {
    let (notifier, links, claims) = match open(&state, &token) {
        Ok(found) => found,
        Err(page) => return page.into_response(),
    };
    let id = claims.id.clone();
    match tokio::task::spawn_blocking(move || notifier.action_link_used(&id)).await {
        Ok(Ok(false)) => {}
        Ok(Ok(true)) => return used(&state).into_response(),
        _ => {
            count(&state, "error");
            return Page::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Try again",
                "The state database could not be read.",
            )
            .into_response();
        }
    }
    count(&state, "shown");
    let what = claims.action.description();
    let until = links
        .silence_end(claims.action, Utc::now())
        .map(|end| format!("<p>Until {}.</p>", html_escape(&links.show_time(end))))
        .unwrap_or_default();
    Page {
        status: StatusCode::OK,
        title: format!("{what}?"),
        body: format!(
            "{}\n{until}\n<form method=\"post\"><button type=\"submit\" style=\"width:100%;padding:14px;font-size:18px;border:0;border-radius:6px;background:#1565c0;color:#fff\">{}</button></form>",
            alert_table(&claims),
            html_escape(what)
        ),
    }
    .into_response()
}

/// `POST /a/{token}`: performs the action, once.
pub async fn perform(State(state): State<Shared>, Path(token): Path<String>) -> Response {
    let (notifier, links, claims) = match open(&state, &token) {
        Ok(found) => found,
        Err(page) => return page.into_response(),
    };
    let work = (claims.clone(), links.clone());
    let done =
        tokio::task::spawn_blocking(move || notifier.perform_action(&work.0, &work.1, Utc::now()))
            .await;
    let page = match done {
        Ok(Ok(ActionDone::Acknowledged)) => {
            count(&state, "done");
            tracing::info!(alert = claims.alertname(), fingerprint = %claims.fingerprint, "Acknowledged from an action link.");
            Page {
                status: StatusCode::OK,
                title: "Acknowledged".into(),
                body: format!(
                    "{}\n<p>No more repeats until it resolves; a new firing notifies again.</p>",
                    alert_table(&claims)
                ),
            }
        }
        Ok(Ok(ActionDone::Silenced { id, until })) => {
            count(&state, "done");
            tracing::info!(alert = claims.alertname(), silence = %id, "Silenced from an action link.");
            Page {
                status: StatusCode::OK,
                title: "Silenced".into(),
                body: format!(
                    "{}\n<p>Silenced until {} (silence {}).</p>",
                    alert_table(&claims),
                    html_escape(&links.show_time(until)),
                    html_escape(&id)
                ),
            }
        }
        Ok(Err(ActionFailure::Used)) => used(&state),
        Ok(Err(ActionFailure::Refused(reason))) => {
            count(&state, "refused");
            Page::message(StatusCode::NOT_FOUND, "Nothing to do", &reason)
        }
        Ok(Err(ActionFailure::Store(e))) => {
            count(&state, "error");
            tracing::error!(error = %e, "An action link could not be carried out.");
            Page::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Try again",
                "The state database could not be written.",
            )
        }
        Err(_) => {
            count(&state, "error");
            Page::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Try again",
                "Internal error.",
            )
        }
    };
    page.into_response()
}
