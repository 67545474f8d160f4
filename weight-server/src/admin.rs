//! The admin API (JSON in, JSON out). Reads are open; mutations need
//! `Authorization: Bearer <token>` (compared in constant time), or
//! `--insecure-admin`; without a token file they are refused.

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use serde::de::DeserializeOwned;

pub use crate::auth::{AdminAuth, constant_time_eq};
use crate::engine::AdminError;
use crate::http::{ApiError, read_body};
use crate::persist::AdminState;
use crate::state::AppState;
use mplb_wire::admin::{ExplainBody, OperatorWeights, PolicyRequest, StateBody};

/// Largest admin request body.
pub const MAX_ADMIN_BYTES: usize = 64 * 1024;

/// The admin routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/state", get(state))
        .route("/admin/policy", put(set_policy))
        .route(
            "/admin/weights/{service}",
            put(set_weights).delete(clear_weights),
        )
        .route("/admin/drain/{pod}", post(drain).delete(undrain))
        .route("/admin/explain/{service}", get(explain))
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        let status = match &e {
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AdminError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "admin mutation failed");
        }
        ApiError::new(status, e.to_string())
    }
}

type Json = axum::Json<AdminState>;

fn path(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(s)| s)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad path: {e}")))
}

async fn json_body<T: DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    let bytes = read_body(body, MAX_ADMIN_BYTES).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")))
}

async fn state(State(s): State<AppState>) -> axum::Json<StateBody> {
    axum::Json(s.engine.state())
}

async fn set_policy(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json, ApiError> {
    s.auth.check(&headers)?;
    let b: PolicyRequest = json_body(body).await?;
    tracing::info!(policy = %b.policy, "admin: policy");
    Ok(axum::Json(s.engine.set_policy(b.policy)?))
}

async fn set_weights(
    State(s): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json, ApiError> {
    s.auth.check(&headers)?;
    let service = path(p)?;
    let w: OperatorWeights = json_body(body).await?;
    tracing::info!(%service, "admin: operator weights");
    Ok(axum::Json(s.engine.set_static(&service, w)?))
}

async fn clear_weights(
    State(s): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json, ApiError> {
    s.auth.check(&headers)?;
    let service = path(p)?;
    tracing::info!(%service, "admin: operator weights removed");
    Ok(axum::Json(s.engine.clear_static(&service)?))
}

async fn drain(
    State(s): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json, ApiError> {
    s.auth.check(&headers)?;
    let pod = path(p)?;
    tracing::info!(%pod, "admin: drain");
    Ok(axum::Json(s.engine.drain(&pod, true)?))
}

async fn undrain(
    State(s): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json, ApiError> {
    s.auth.check(&headers)?;
    let pod = path(p)?;
    tracing::info!(%pod, "admin: undrain");
    Ok(axum::Json(s.engine.drain(&pod, false)?))
}

async fn explain(
    State(s): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<ExplainBody>, ApiError> {
    let service = path(p)?;
    s.engine.explain(&service).map(axum::Json).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown service {service:?}"),
        )
    })
}
