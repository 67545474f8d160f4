//! The admin API's bodies (`/admin/*` on the weight server): the policy an
//! operator picks, operator weights, the admin state every mutation answers
//! with (and the server persists), `GET /admin/state` ([`StateBody`], with
//! the cluster of [`cluster`]) and `GET /admin/explain/{service}`
//! ([`ExplainBody`]). The server, the lab and the tests use these types
//! instead of building and indexing untyped JSON.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub mod cluster;
mod explain;
mod state;

pub use explain::{ExplainBody, NodeCpu, PodInputs, ServiceRound};
pub use state::{EngineSettings, NodeState, OptimalConfig, SolverKind, StateBody, StateSummary};

/// Largest `GET /admin/state` or `/admin/explain` body a reader accepts
/// (the state carries the whole topology).
pub const MAX_ADMIN_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Which policy computes the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// Equal weights over ready pods.
    #[default]
    Even,
    /// Operator weights (`PUT /admin/weights/{service}`), even elsewhere.
    Static,
    /// Proportional to the spare CPU of each pod's node.
    Spare,
    /// The multi-party linear program.
    Optimal,
}

impl PolicyKind {
    /// Every policy, in the order operators see them.
    pub const ALL: [PolicyKind; 4] = [
        PolicyKind::Even,
        PolicyKind::Static,
        PolicyKind::Spare,
        PolicyKind::Optimal,
    ];

    /// The lowercase name (`even`, `static`, `spare`, `optimal`).
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Even => "even",
            PolicyKind::Static => "static",
            PolicyKind::Spare => "spare",
            PolicyKind::Optimal => "optimal",
        }
    }
}

impl std::fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PolicyKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PolicyKind::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown policy {s:?} (even, static, spare, optimal)"))
    }
}

/// `PUT /admin/policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    /// The policy to use from the next round on.
    pub policy: PolicyKind,
}

/// `PUT /admin/weights/{service}`: weight per pod name (normalised by the
/// server; every pod must be one of the service's).
pub type OperatorWeights = BTreeMap<String, f64>;

/// Operator weights by service FQDN, then pod name.
pub type StaticWeights = BTreeMap<String, OperatorWeights>;

/// What an operator has set: the answer of every admin mutation, and what
/// the server persists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminState {
    /// The policy in force.
    pub policy: PolicyKind,
    /// Operator weights by service FQDN; those services are static until deleted.
    #[serde(default)]
    pub static_weights: StaticWeights,
    /// Drained pod names.
    #[serde(default)]
    pub drains: BTreeSet<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_parse_in_any_case_and_serialise_lowercase() {
        assert_eq!("Static".parse::<PolicyKind>(), Ok(PolicyKind::Static));
        assert!(
            "fastest"
                .parse::<PolicyKind>()
                .unwrap_err()
                .contains("fastest")
        );
        let body = serde_json::to_string(&PolicyRequest {
            policy: PolicyKind::Optimal,
        })
        .unwrap();
        assert_eq!(body, r#"{"policy":"optimal"}"#);
        assert!(serde_json::from_str::<PolicyRequest>(r#"{"policy":"even","x":1}"#).is_err());
    }

    #[test]
    fn a_state_summary_reads_the_admin_state_and_fresh_nodes() {
        let s: StateSummary = serde_json::from_str(
            r#"{"policy":"spare","static_weights":{},"drains":["a-0"],"weights":null,
                "nodes":{"n1":{"known":true,"fresh":true,"report_age_ms":5,
                   "capacity_millicores":1000.0,"used_millicores":10.0,"pods":{},"unknown_pods":{}},
                 "n2":{"known":true,"fresh":false,"report_age_ms":50000,
                   "capacity_millicores":1000.0,"used_millicores":10.0,"pods":{},"unknown_pods":{}}}}"#,
        )
        .unwrap();
        assert_eq!(s.policy, PolicyKind::Spare);
        assert!(s.drains.contains("a-0"));
        assert_eq!(s.fresh_nodes(), ["n1"]);
    }
}
