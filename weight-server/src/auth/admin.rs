//! Who may mutate through the admin API: a bearer token compared in constant
//! time, anyone (`--insecure-admin`), or nobody (no token file).

use axum::http::{HeaderMap, StatusCode, header};

use crate::http::ApiError;

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

    /// Allow or refuse a mutation carrying these headers.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
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
