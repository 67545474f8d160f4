//! TokenReview of a host agent's token against the API server, with the
//! [`Cache`] in front. The weight server's RBAC must allow `create` on
//! `tokenreviews` (`envoyfilter/weight-server.yaml`).

use std::sync::Mutex;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::PostParams;
use kube::{Api, Client};

use super::Denied;
use super::cache::{Cache, Identity};
use crate::clock::SharedClock;

/// The key of a bound token's node in a TokenReview's `user.extra`.
pub const NODE_NAME_EXTRA: &str = "authentication.kubernetes.io/node-name";

/// Checks tokens of one ServiceAccount for one audience.
pub struct Reviewer {
    client: Client,
    audience: String,
    /// `system:serviceaccount:<ns>:<name>` of the host agent.
    user: String,
    cache: Mutex<Cache>,
    clock: SharedClock,
}

impl std::fmt::Debug for Reviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reviewer")
            .field("audience", &self.audience)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Reviewer {
    /// `account` is `namespace:name` of the host agent's ServiceAccount.
    pub fn new(client: Client, audience: &str, account: &str, clock: SharedClock) -> Reviewer {
        Reviewer {
            client,
            audience: audience.to_string(),
            user: format!("system:serviceaccount:{account}"),
            cache: Mutex::new(Cache::default()),
            clock,
        }
    }

    /// Accept `token` for a report of `node`, or say why not.
    pub async fn check(&self, token: &str, node: &str) -> Result<(), Denied> {
        let now = self.clock.now_ms();
        let cached = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(token, now).cloned());
        let identity = match cached {
            Some(i) => i,
            None => {
                let i = self.review(token).await?;
                if let Ok(mut c) = self.cache.lock() {
                    c.put(token, i.clone(), now);
                }
                i
            }
        };
        if identity.user != self.user {
            return Err(Denied::WrongAccount(identity.user));
        }
        match identity.node {
            Some(n) if n != node => Err(Denied::WrongNode {
                token: n,
                report: node.to_string(),
            }),
            _ => Ok(()),
        }
    }

    async fn review(&self, token: &str) -> Result<Identity, Denied> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_string(),
                audiences: Some(vec![self.audience.clone()]),
            },
            ..TokenReview::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let out = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| Denied::Unavailable(e.to_string()))?;
        let status = out.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            return Err(Denied::Invalid(
                status.error.unwrap_or_else(|| "not authenticated".into()),
            ));
        }
        if !status
            .audiences
            .iter()
            .flatten()
            .any(|a| *a == self.audience)
        {
            return Err(Denied::Invalid(format!(
                "not a token for {:?}",
                self.audience
            )));
        }
        let user = status.user.unwrap_or_default();
        let node = user
            .extra
            .as_ref()
            .and_then(|x| x.get(NODE_NAME_EXTRA))
            .and_then(|v| v.first())
            .cloned();
        Ok(Identity {
            user: user.username.unwrap_or_default(),
            node,
        })
    }
}
