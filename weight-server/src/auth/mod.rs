//! Who may post host reports. In Kubernetes, a host agent sends its
//! projected ServiceAccount token (audience [`DEFAULT_AUDIENCE`]); the
//! [`review`] module checks it with a TokenReview against the API server,
//! accepts only the host agent's ServiceAccount and, when the token is bound
//! to a pod (it then names the pod's node), only a report for that node.
//! Local and lab modes run without tokens only behind `--insecure-reports`.

pub mod admin;
pub mod cache;
pub mod review;

use axum::http::{HeaderMap, StatusCode, header};

pub use admin::{AdminAuth, constant_time_eq};

use crate::http::ApiError;

/// The audience host agents request for their token.
pub const DEFAULT_AUDIENCE: &str = "mplb-weight-server";
/// The host agent's ServiceAccount (`namespace:name`).
pub const DEFAULT_AGENT_ACCOUNT: &str = "mplb-system:host-agent";

/// How reports are authenticated.
#[derive(Debug)]
pub enum ReportAuth {
    /// Any caller may report (`--insecure-reports`: local and lab modes).
    Insecure,
    /// No way to check tokens (a topology file without `--insecure-reports`):
    /// every report is refused.
    Disabled,
    /// Tokens checked by TokenReview.
    Review(Box<review::Reviewer>),
}

/// Why a report was refused: 401 (no valid token) or 403 (valid token, not
/// allowed), or 503 (the API server could not answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// 401: no bearer token.
    Missing,
    /// 401: the API server says the token is not valid (forged, expired,
    /// wrong audience, revoked).
    Invalid(String),
    /// 403: a valid token of another account.
    WrongAccount(String),
    /// 403: the token's node is not the report's.
    WrongNode {
        /// The node the token is bound to.
        token: String,
        /// The node the report names.
        report: String,
    },
    /// 401: report auth is disabled (no API server, no `--insecure-reports`).
    Disabled,
    /// 503: the TokenReview failed (API server unreachable or refusing us).
    Unavailable(String),
}

impl Denied {
    /// The `reason` label counted on `/metrics`.
    pub fn metric(&self) -> &'static str {
        match self {
            Denied::Missing => "no_token",
            Denied::Invalid(_) => "invalid_token",
            Denied::WrongAccount(_) => "wrong_account",
            Denied::WrongNode { .. } => "wrong_node",
            Denied::Disabled => "auth_disabled",
            Denied::Unavailable(_) => "token_review_failed",
        }
    }

    /// The JSON error answer.
    pub fn into_api_error(self) -> ApiError {
        match self {
            Denied::Missing => ApiError::new(StatusCode::UNAUTHORIZED, "no bearer token"),
            Denied::Invalid(why) => {
                ApiError::new(StatusCode::UNAUTHORIZED, format!("token rejected: {why}"))
            }
            Denied::WrongAccount(user) => ApiError::new(
                StatusCode::FORBIDDEN,
                format!("{user} may not post host reports"),
            ),
            Denied::WrongNode { token, report } => ApiError::new(
                StatusCode::FORBIDDEN,
                format!("the token is of node {token:?}, the report is for node {report:?}"),
            ),
            Denied::Disabled => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "reports need a ServiceAccount token checked by TokenReview (--topology kube) \
                 or --insecure-reports",
            ),
            Denied::Unavailable(why) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot check the token: {why}"),
            ),
        }
    }
}

/// The bearer token of `headers`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl ReportAuth {
    /// May the caller with `headers` post a report for `node`?
    pub async fn check(&self, headers: &HeaderMap, node: &str) -> Result<(), Denied> {
        match self {
            ReportAuth::Insecure => Ok(()),
            ReportAuth::Disabled => Err(Denied::Disabled),
            ReportAuth::Review(r) => r.check(bearer(headers).ok_or(Denied::Missing)?, node).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "bearer  xyz ".parse().unwrap());
        assert_eq!(bearer(&h), Some("xyz"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }

    #[tokio::test]
    async fn insecure_accepts_and_disabled_refuses() {
        let h = HeaderMap::new();
        assert_eq!(ReportAuth::Insecure.check(&h, "n1").await, Ok(()));
        let d = ReportAuth::Disabled.check(&h, "n1").await.unwrap_err();
        assert_eq!(d.metric(), "auth_disabled");
        assert_eq!(d.into_api_error().status, StatusCode::UNAUTHORIZED);
    }
}
