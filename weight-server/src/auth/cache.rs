//! Reviewed tokens, kept until the token's own expiry (capped), bounded in
//! size. Only accepted tokens are kept: a refused one is asked again.

use std::collections::HashMap;

use base64::Engine as _;

/// Most tokens kept (one per node's agent, plus rotation overlap).
pub const MAX_ENTRIES: usize = 4096;
/// Longest a review is trusted, whatever the token's expiry.
pub const MAX_AGE_MS: u64 = 10 * 60 * 1000;

/// What a review established about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `system:serviceaccount:<ns>:<name>`.
    pub user: String,
    /// The node of the pod the token is bound to, when it says.
    pub node: Option<String>,
}

#[derive(Debug)]
struct Entry {
    identity: Identity,
    until_ms: u64,
}

/// The cache.
#[derive(Debug, Default)]
pub struct Cache {
    entries: HashMap<String, Entry>,
}

/// The `exp` claim of a JWT in ms (unverified: only to bound how long a
/// review that accepted the token is reused).
pub fn expiry_ms(token: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["exp"].as_u64()?.checked_mul(1000)
}

impl Cache {
    /// A still valid review of `token`.
    pub fn get(&self, token: &str, now_ms: u64) -> Option<&Identity> {
        self.entries
            .get(token)
            .filter(|e| e.until_ms > now_ms)
            .map(|e| &e.identity)
    }

    /// Keep an accepted review until the token expires (at most
    /// [`MAX_AGE_MS`]); a token without a readable expiry is not kept.
    pub fn put(&mut self, token: &str, identity: Identity, now_ms: u64) {
        let Some(exp) = expiry_ms(token) else { return };
        let until_ms = exp.min(now_ms.saturating_add(MAX_AGE_MS));
        if until_ms <= now_ms {
            return;
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.retain(|_, e| e.until_ms > now_ms);
        }
        if self.entries.len() >= MAX_ENTRIES {
            // Still full of live entries: drop the one expiring first.
            if let Some(k) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.until_ms)
                .map(|(k, _)| k.clone())
            {
                self.entries.remove(&k);
            }
        }
        self.entries
            .insert(token.to_string(), Entry { identity, until_ms });
    }

    /// Number of kept reviews.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(exp_s: u64) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(br#"{"alg":"RS256"}"#),
            e.encode(format!(r#"{{"exp":{exp_s}}}"#))
        )
    }

    fn id() -> Identity {
        Identity {
            user: "u".into(),
            node: None,
        }
    }

    #[test]
    fn kept_until_expiry_capped_and_bounded() {
        let now = 1_000_000_000;
        let mut c = Cache::default();
        let t = jwt(now / 1000 + 60);
        c.put(&t, id(), now);
        assert!(c.get(&t, now + 59_000).is_some());
        assert!(c.get(&t, now + 60_000).is_none(), "expired with the token");
        let long = jwt(now / 1000 + 86_400);
        c.put(&long, id(), now);
        assert!(c.get(&long, now + MAX_AGE_MS - 1).is_some());
        assert!(c.get(&long, now + MAX_AGE_MS).is_none(), "capped");
        c.put("not-a-jwt", id(), now);
        c.put(&jwt(now / 1000 - 1), id(), now);
        assert_eq!(c.len(), 2, "no expiry or expired: not kept");
        for i in 0..(MAX_ENTRIES as u64 + 10) {
            c.put(&jwt(now / 1000 + 100 + i), id(), now);
        }
        assert_eq!(c.len(), MAX_ENTRIES);
    }
}
