//! The balance and fairness figures of one service in the weight server's
//! `GET /admin/explain/{service}` answer (key `balance`): how even the CPU of
//! its pods' nodes is, its tenant's served/entitled CPU, Jain's index over all
//! tenants, the served table's age, what the last round moved and, while
//! admission sheds, the fraction let in. The same figures are on `/metrics`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Balance and fairness of one service and its tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainBalance {
    /// Use over capacity (a fraction) of each node with a fresh report that
    /// hosts a ready pod of the service, by node name.
    pub node_cpu_fraction: BTreeMap<String, f64>,
    /// The busiest of those nodes over their average (1 = even); `None` when
    /// no such node is known or all are idle.
    pub node_cpu_max_over_avg: Option<f64>,
    /// The service's tenant and its share of the CPU.
    pub tenant: TenantShare,
    /// Jain's index over every tenant's served/entitled (capped at 1); `None`
    /// when no tenant is entitled to anything.
    pub jain: Option<f64>,
    /// Seconds since the served table was built; `None` before the first one.
    pub table_age_s: Option<f64>,
    /// Σ |weight change| of the service's pods in the last round (0 when the
    /// round published nothing).
    pub moved_last_round: f64,
    /// The fraction of the service's requests entry gateways let in
    /// (admission, in the served table); absent while nothing is shed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admit: Option<f64>,
}

/// What a tenant is served against what it is entitled to, in millicores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantShare {
    /// The tenant's name.
    pub name: String,
    /// Σ smoothed CPU of its pods on nodes with a fresh report.
    pub served_millicores: f64,
    /// Its fair share.
    pub fair_share_millicores: f64,
    /// Whether a ready pod of it sits on a saturated node (its demand is then
    /// taken to be at least its fair share: what it gets is capped).
    pub throttled: bool,
    /// min(fair share, demand), demand = served, or at least the fair share
    /// when throttled.
    pub entitled_millicores: f64,
    /// served / entitled; `None` when entitled is 0.
    pub served_over_entitled: Option<f64>,
}
