//! The admin API (JSON in, JSON out). Reads are open; mutations need
//! `Authorization: Bearer <token>` (compared in constant time), or
//! `--insecure-admin`; without a token file they are refused.

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post, put};
use serde::de::DeserializeOwned;

use crate::api::{ApiError, AppState, read_body};
use crate::engine::AdminError;
use crate::persist::AdminState;
use mplb_wire::admin::{OperatorWeights, PolicyRequest};

/// Largest admin request body.
pub const MAX_ADMIN_BYTES: usize = 64 * 1024;

/// Who may mutate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAuth {
    /// A bearer token is required.
    Token(Vec<u8>),
    /// Anyone (`--insecure-admin`).
    Insecure,
    /// Nobody: no token configured.
    Disabled,
}

impl AdminAuth {
    /// From the token file contents (trimmed; empty is an error).
    pub fn from_token(token: &str) -> crate::Result<Self> {
        let t = token.trim();
        if t.is_empty() {
            return Err(crate::Error::Config("the admin token file is empty".into()));
        }
        Ok(AdminAuth::Token(t.as_bytes().to_vec()))
    }

    fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let expected = match self {
            AdminAuth::Insecure => return Ok(()),
            AdminAuth::Disabled => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "admin mutations are disabled: start with --admin-token-file (or --insecure-admin)",
                ));
            }
            AdminAuth::Token(t) => t,
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing Authorization: Bearer <token>",
                )
            })?;
        if constant_time_eq(given, expected) {
            Ok(())
        } else {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "bad admin token"))
        }
    }
}

/// Compare without an early exit on the first differing byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= x ^ y;
    }
    diff == 0
}

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

type Json = axum::Json<serde_json::Value>;

fn path(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(s)| s)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad path: {e}")))
}

async fn json_body<T: DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    let bytes = read_body(body, MAX_ADMIN_BYTES).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")))
}

fn answer(a: AdminState) -> Result<Json, ApiError> {
    serde_json::to_value(a)
        .map(axum::Json)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn state(State(s): State<AppState>) -> Json {
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
    answer(s.engine.set_policy(b.policy)?)
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
    answer(s.engine.set_static(&service, w)?)
}

async fn clear_weights(
    State(s): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json, ApiError> {
    s.auth.check(&headers)?;
    let service = path(p)?;
    tracing::info!(%service, "admin: operator weights removed");
    answer(s.engine.clear_static(&service)?)
}

async fn drain(
    State(s): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json, ApiError> {
    s.auth.check(&headers)?;
    let pod = path(p)?;
    tracing::info!(%pod, "admin: drain");
    answer(s.engine.drain(&pod, true)?)
}

async fn undrain(
    State(s): State<AppState>,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json, ApiError> {
    s.auth.check(&headers)?;
    let pod = path(p)?;
    tracing::info!(%pod, "admin: undrain");
    answer(s.engine.drain(&pod, false)?)
}

async fn explain(
    State(s): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Json, ApiError> {
    let service = path(p)?;
    s.engine.explain(&service).map(axum::Json).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown service {service:?}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
