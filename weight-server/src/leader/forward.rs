//! Reports that reach a follower go to the leader: the same
//! body, with the sender's `Authorization` header (the leader runs the
//! TokenReview), and the leader's answer goes back as it came. With no
//! leader known, or one that cannot be reached, the answer is 503 with a
//! reason and `Retry-After`.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::Full;

use super::{Replica, Role};
use crate::http::ApiError;

/// Marks a forwarded request; a replica that does not lead answers it 503
/// rather than forward it again.
pub const FORWARDED: &str = "x-mplb-forwarded-by";

/// The largest answer of the leader passed back (its answers are short JSON).
const ANSWER_LIMIT: usize = 64 * 1024;

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
    let mut req = http::Request::post(format!("http://{address}{path}"))
        .header(FORWARDED, replica.identity());
    for h in [header::AUTHORIZATION, header::CONTENT_TYPE] {
        if let Some(v) = headers.get(&h) {
            req = req.header(h, v.clone());
        }
    }
    let sent = match req.body(Full::new(body)) {
        Ok(r) => replica.http.send(r, ANSWER_LIMIT).await,
        Err(e) => Err(e.to_string()),
    };
    let (status, got, bytes) = match sent {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(leader = %holder, %address, error = %e, "forwarding to the leader");
            return Some(unavailable(format!(
                "the leader {holder} at {address} cannot be reached; retry shortly"
            )));
        }
    };
    let mut out = HeaderMap::new();
    for h in [
        header::CONTENT_TYPE,
        header::RETRY_AFTER,
        header::WWW_AUTHENTICATE,
    ] {
        if let Some(v) = got.get(&h) {
            out.insert(h, v.clone());
        }
    }
    Some((status, out, bytes).into_response())
}
