//! Reports and proxy stats that reach a follower go to the leader: the same
//! body, with the sender's `Authorization` header (the leader runs the
//! TokenReview), and the leader's answer goes back as it came. With no
//! leader known, or one that cannot be reached, the answer is 503 with a
//! reason and `Retry-After`.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Replica, Role};
use crate::http::ApiError;

/// Marks a forwarded request; a replica that does not lead answers it 503
/// rather than forward it again.
pub const FORWARDED: &str = "x-mplb-forwarded-by";

/// Seconds a sender is told to wait when no leader is known.
pub const RETRY_AFTER_S: u32 = 1;

fn unavailable(reason: String) -> Response {
    let mut r = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, reason).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
    r
}

/// `None`: this replica leads, handle the request here. Otherwise the
/// answer: the leader's, or 503.
pub async fn route(
    replica: &Replica,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Option<Response> {
    let (holder, address) = match replica.role() {
        Role::Leader => return None,
        Role::Unknown => {
            return Some(unavailable(
                "no leader elected yet; retry shortly".to_string(),
            ));
        }
        Role::Follower { holder, address } => (holder, address),
    };
    if let Some(by) = headers.get(FORWARDED) {
        let by = by.to_str().unwrap_or("?");
        return Some(unavailable(format!(
            "forwarded by {by}, but this replica does not lead ({holder} does)"
        )));
    }
    let mut req = replica
        .http
        .post(format!("http://{address}{path}"))
        .header(FORWARDED, replica.identity())
        .body(body);
    for h in [header::AUTHORIZATION, header::CONTENT_TYPE] {
        if let Some(v) = headers.get(&h) {
            req = req.header(h, v.clone());
        }
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(leader = %holder, %address, error = %e, "forwarding to the leader");
            return Some(unavailable(format!(
                "the leader {holder} at {address} cannot be reached; retry shortly"
            )));
        }
    };
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = HeaderMap::new();
    for h in [
        header::CONTENT_TYPE,
        header::RETRY_AFTER,
        header::WWW_AUTHENTICATE,
    ] {
        if let Some(v) = resp.headers().get(h.as_str())
            && let Ok(v) = HeaderValue::from_bytes(v.as_bytes())
        {
            out.insert(h, v);
        }
    }
    let bytes = resp.bytes().await.unwrap_or_default();
    Some((status, out, bytes).into_response())
}
