//! The body of `GET /admin/state`: what an operator has set, the cluster,
//! every reporting node, the served table and the server's
//! tunables. Built by the weight server, read (and validated) by the lab
//! and the tests.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::cluster::Topology;
use super::{MAX_ADMIN_BODY_BYTES, PolicyKind, StaticWeights};
use crate::{WeightsTable, WireError, check_amount, decode};

/// `GET /admin/state`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateBody {
    /// The policy in force.
    pub policy: PolicyKind,
    /// Operator weights by service FQDN.
    #[serde(default)]
    pub static_weights: StaticWeights,
    /// Drained pod names.
    #[serde(default)]
    pub drains: BTreeSet<String>,
    /// The cluster, once the topology source has synced.
    #[serde(default)]
    pub topology: Option<Topology>,
    /// Nodes that have reported, by name.
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeState>,
    /// Why the policy failed in the last round, if it did.
    #[serde(default)]
    pub policy_error: Option<String>,
    /// The table being served, if any.
    #[serde(default)]
    pub weights: Option<WeightsTable>,
    /// The server's tunables.
    #[serde(default)]
    pub config: EngineSettings,
}

/// The part of `GET /admin/state` the lab's quick check reads (the same
/// type: one body, one type).
pub type StateSummary = StateBody;

impl StateBody {
    /// Decode and validate a `GET /admin/state` body: numbers finite and
    /// non-negative, the served table valid.
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let s: StateBody = decode(body, MAX_ADMIN_BODY_BYTES)?;
        s.validate()?;
        Ok(s)
    }

    /// The rules [`StateBody::parse`] checks.
    pub fn validate(&self) -> Result<(), WireError> {
        for (name, n) in &self.nodes {
            n.validate(name)?;
        }
        if let Some(t) = &self.weights {
            t.validate()?;
        }
        Ok(())
    }

    /// Nodes whose reports are fresh, in name order.
    pub fn fresh_nodes(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.fresh)
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

/// One node in `GET /admin/state` (`nodes`, by node name).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    /// Whether the topology knows the node.
    pub known: bool,
    /// Whether its last report is recent enough to be used.
    pub fresh: bool,
    /// Age of its last report.
    pub report_age_ms: u64,
    /// Reported capacity.
    pub capacity_millicores: f64,
    /// Smoothed node-wide use.
    pub used_millicores: f64,
    /// Smoothed use per reported pod.
    pub pods: BTreeMap<String, f64>,
    /// Pods in its reports the topology does not know: uid -> last CPU.
    pub unknown_pods: BTreeMap<String, f64>,
}

impl NodeState {
    fn validate(&self, name: &str) -> Result<(), WireError> {
        check_amount(
            &format!("capacity of node {name}"),
            self.capacity_millicores,
        )?;
        check_amount(&format!("use of node {name}"), self.used_millicores)?;
        for (pod, m) in self.pods.iter().chain(&self.unknown_pods) {
            check_amount(&format!("CPU of pod {pod} on node {name}"), *m)?;
        }
        Ok(())
    }
}

/// The weight server's tunables (`config` in `GET /admin/state`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineSettings {
    /// Fraction of the way to the target moved per round.
    pub damping: f64,
    /// A weight change below this is not a change.
    pub dead_band: f64,
    /// The table's time-to-live.
    pub ttl_ms: u64,
    /// Half-life of the CPU EWMA.
    pub ewma_half_life_ms: u64,
    /// A report this far from a node's smoothed use, as a fraction of its
    /// capacity, resets the node's averages to the report (0: never).
    #[serde(default)]
    pub ewma_reset_step: f64,
    /// A node whose last report is older than this is unknown.
    pub report_max_age_ms: u64,
    /// A host report starts a round this long after it arrives (reports
    /// within the wait share the round); none: rounds on the interval only.
    #[serde(default)]
    pub report_debounce_ms: Option<u64>,
    /// Knobs of the `optimal` policy.
    pub optimal: OptimalConfig,
}

/// Knobs of the `optimal` policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimalConfig {
    /// A node whose smoothed use is at least this fraction of its capacity is
    /// saturated.
    pub saturation_threshold: f64,
    /// A saturated node hides how much its background wants (the background
    /// is throttled too): room is reserved for the background to grow (as
    /// much again as it uses, at most `1 −` this fraction of the capacity),
    /// so load moves off it at once instead of step by step as the
    /// background's use shows.
    #[serde(default = "default_saturated_plan")]
    pub saturated_plan: f64,
    /// Raise the demand of a tenant with a pod on a saturated node to at
    /// least its fair share (its measured demand is throttled).
    pub protect_saturated: bool,
    /// Slack when a stage's optimum is held in the next stage (ratio units).
    pub tolerance: f64,
    /// Weight of the total served fraction next to `t` in the overloaded
    /// first stage (small: `t` comes first).
    pub served_bonus: f64,
    /// Weights below this fraction of a service are set to 0.
    pub min_weight: f64,
    /// When all demand fits: levels in all (the max-min spare, then
    /// progressive filling of the non-bottleneck hosts; 1 = max-min only).
    /// Each level is one LP solve with `clarabel`, a few max-flows with `flow`.
    pub balance_rounds: u32,
    /// How the stages are solved.
    pub solver: SolverKind,
}

impl Default for OptimalConfig {
    fn default() -> Self {
        Self {
            saturation_threshold: 0.9,
            saturated_plan: default_saturated_plan(),
            protect_saturated: true,
            tolerance: 1e-4,
            served_bonus: 1e-3,
            min_weight: 1e-6,
            balance_rounds: 16,
            solver: SolverKind::Flow,
        }
    }
}

fn default_saturated_plan() -> f64 {
    0.8
}

/// The solver of the `optimal` stages. Both solve the same model; `flow`
/// is exact and scales to clusters where the interior-point LP does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum SolverKind {
    /// Parametric max-flow (Dinic + Dinkelbach on minimum cuts).
    #[default]
    Flow,
    /// The LP of each stage with good_lp + clarabel (interior point).
    Clarabel,
}
