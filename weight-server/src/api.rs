//! The HTTP surface: `/v1/weights` (ETag, 304), `/v1/reports`, health,
//! readiness, metrics, and the admin routes of [`crate::admin`].
//! `/v1/stats`, where earlier filters posted per-pod proxy stats, answers
//! 410 Gone.
//! Every error is JSON `{"error": "<reason>"}` with the right status.

use std::future::Future;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mplb_wire::{HostReport, MAX_REPORT_BYTES, WireError};
use serde_json::json;
use tokio::net::TcpListener;

use crate::admin;
pub use crate::http::{ApiError, read_body};
use crate::leader::forward;
pub use crate::state::AppState;

fn wire_error(e: &WireError) -> (ApiError, &'static str) {
    let (status, reason) = match e {
        WireError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        WireError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed"),
        WireError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        WireError::Field { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
    };
    (ApiError::new(status, e.to_string()), reason)
}

/// The router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/v1/weights", get(weights))
        .route("/v1/reports", post(reports))
        .route("/v1/stats", post(stats_gone))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(admin::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this route",
            )
        })
        .with_state(state)
}

/// Whether `If-None-Match` names the current version (quoted, bare, `W/`, `*`).
pub fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    let bare = etag.trim_matches('"');
    headers.get_all(header::IF_NONE_MATCH).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',').any(|t| {
                let t = t.trim();
                let t = t.strip_prefix("W/").unwrap_or(t);
                t == "*" || t == etag || t == bare
            })
        })
    })
}

/// The highest version named in `If-None-Match`, if any.
fn newest_held(headers: &HeaderMap) -> Option<u64> {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .filter_map(|t| {
            let t = t.trim();
            t.strip_prefix("W/")
                .unwrap_or(t)
                .trim_matches('"')
                .parse()
                .ok()
        })
        .max()
}

async fn weights(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let served = match &s.replica {
        Some(r) => r.served(&s.engine),
        None => s.engine.table(),
    };
    let Some(served) = served else {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no weights table yet")
            .into_response();
    };
    let etag = HeaderValue::from_str(&served.etag).unwrap_or(HeaderValue::from_static("\"0\""));
    // Replicas: a reader holding a newer version (from a replica ahead of
    // this one) keeps it rather than step back.
    let ahead = s.replica.is_some() && newest_held(&headers) >= Some(served.table.version);
    if ahead || etag_matches(&headers, &served.etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        StatusCode::OK,
        [
            (header::ETAG, etag),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        served.body.clone(),
    )
        .into_response()
}

async fn reports(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body, MAX_REPORT_BYTES).await.inspect_err(|_| {
        s.engine.metrics.report_rejected("too_large");
    })?;
    if let Some(r) = &s.replica
        && let Some(answer) = forward::route(r, "/v1/reports", &headers, bytes.clone()).await
    {
        return Ok(answer);
    }
    let report = HostReport::parse(&bytes).map_err(|e| {
        let (err, reason) = wire_error(&e);
        s.engine.metrics.report_rejected(reason);
        tracing::debug!(error = %e, "host report rejected");
        err
    })?;
    s.reports_auth
        .check(&headers, &report.node)
        .await
        .map_err(|d| {
            s.engine.metrics.report_rejected(d.metric());
            tracing::info!(node = %report.node, reason = ?d, "host report refused");
            d.into_api_error()
        })?;
    s.engine.ingest_report(&report).map_err(|e| {
        s.engine.metrics.report_rejected("too_many_nodes");
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string())
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Earlier filters posted per-pod proxy stats here; no policy read them and
/// they were removed. A filter still posting them is older than this server.
async fn stats_gone() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "proxy stats were removed: upgrade the filter (it needs only GET /v1/weights)",
    )
}

async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(json!({"status": "ok"}))
}

async fn readyz(State(s): State<AppState>) -> Result<axum::Json<serde_json::Value>, ApiError> {
    if s.engine.topology().is_none() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: topology not synced",
        ));
    }
    match s.engine.table() {
        Some(t) => Ok(axum::Json(
            json!({"ready": true, "version": t.table.version}),
        )),
        None => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no weights table yet",
        )),
    }
}

async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let text = s
        .engine
        .render_metrics()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        text,
    )
        .into_response())
}

/// Serve until `shutdown` resolves, then drain in-flight requests.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
