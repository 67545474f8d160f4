//! The body of `GET /admin/explain/{service}`: the inputs of one service's
//! weights (its pods, their nodes' CPU), what the policy said and
//! why, the round's target and damped weights, and what is served.
//!
//! New figures are added as new fields with `#[serde(default)]`, so an
//! older reader keeps reading a newer server's body (unknown fields are
//! ignored on read).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{MAX_ADMIN_BODY_BYTES, OperatorWeights, PolicyKind};
use crate::{ServiceWeights, WireError, check_amount, decode};

/// `GET /admin/explain/{service}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainBody {
    /// The service's FQDN.
    pub service: String,
    /// Its tenant.
    pub tenant: String,
    /// The tenant's fair share in millicores.
    pub fair_share_millicores: f64,
    /// The policy in force.
    pub policy: PolicyKind,
    /// Operator weights of this service, if set.
    #[serde(default)]
    pub operator_weights: Option<OperatorWeights>,
    /// What the policy could see of each pod, by pod name.
    #[serde(default)]
    pub inputs: BTreeMap<String, PodInputs>,
    /// The policy's own account of its decision (its shape is the policy's:
    /// `policy` names it), if it explained this service.
    #[serde(default)]
    pub policy_explain: Option<serde_json::Value>,
    /// Where the last round's target came from and how it was damped.
    #[serde(default)]
    pub round: Option<ServiceRound>,
    /// Why the policy failed in the last round, if it did.
    #[serde(default)]
    pub policy_error: Option<String>,
    /// The service's entry in the served table, if any.
    #[serde(default)]
    pub served: Option<ServiceWeights>,
    /// Balance and fairness figures around this service (its pods' nodes,
    /// its tenant's served/entitled CPU, the table's age, what moved).
    #[serde(default)]
    pub balance: Option<crate::balance::ExplainBalance>,
}

impl ExplainBody {
    /// Decode and validate a `GET /admin/explain/{service}` body: numbers
    /// finite and non-negative, weights in [0, 1].
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let e: ExplainBody = decode(body, MAX_ADMIN_BODY_BYTES)?;
        e.validate()?;
        Ok(e)
    }

    /// The rules [`ExplainBody::parse`] checks.
    pub fn validate(&self) -> Result<(), WireError> {
        check_amount("fair_share_millicores", self.fair_share_millicores)?;
        for (pod, i) in &self.inputs {
            i.validate(pod)?;
        }
        if let Some(r) = &self.round {
            for (pod, w) in r.target.iter().chain(&r.damped) {
                check_fraction(&format!("round weight of {pod}"), *w)?;
            }
        }
        if let Some(s) = &self.served {
            for e in &s.endpoints {
                check_fraction(&format!("served weight of {}", e.pod), e.weight)?;
            }
        }
        Ok(())
    }
}

fn check_fraction(what: &str, v: f64) -> Result<(), WireError> {
    check_amount(what, v)?;
    if v > 1.0 + 1e-9 {
        return Err(WireError::Invalid(format!("{what} is above 1 ({v})")));
    }
    Ok(())
}

/// What a policy could see of one pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodInputs {
    /// The node it runs on.
    pub node: String,
    /// Whether it is ready.
    pub ready: bool,
    /// Whether the operator drained it.
    pub drained: bool,
    /// Its smoothed CPU, when its node reports fresh figures.
    #[serde(default)]
    pub pod_cpu_millicores: Option<f64>,
    /// Whether its node has a fresh report.
    pub node_known: bool,
    /// Its node's smoothed CPU, when fresh.
    #[serde(default)]
    pub node_cpu: Option<NodeCpu>,
    /// Age of its node's last report, if any.
    #[serde(default)]
    pub node_report_age_ms: Option<u64>,
}

impl PodInputs {
    fn validate(&self, pod: &str) -> Result<(), WireError> {
        if let Some(c) = self.pod_cpu_millicores {
            check_amount(&format!("CPU of pod {pod}"), c)?;
        }
        if let Some(n) = &self.node_cpu {
            check_amount(&format!("capacity of {pod}'s node"), n.capacity_millicores)?;
            check_amount(&format!("use of {pod}'s node"), n.used_millicores)?;
        }
        Ok(())
    }
}

/// Smoothed CPU of one node.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NodeCpu {
    /// Capacity in millicores as the agent reported it (falls back to the
    /// topology's capacity when the caller prefers that).
    pub capacity_millicores: f64,
    /// Smoothed node-wide usage in millicores (managed pods + background).
    pub used_millicores: f64,
}

/// Where a service's target came from in a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRound {
    /// `policy`, or `even-fallback` when the policy had no usable answer.
    pub source: String,
    /// Normalised target over ready, non-drained pods.
    pub target: BTreeMap<String, f64>,
    /// After damping (what the table carries once published).
    pub damped: BTreeMap<String, f64>,
    /// Ready pods drained by the operator (weight 0).
    pub drained: Vec<String>,
}
