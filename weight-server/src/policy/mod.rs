//! Policies turn a [`Topology`] and a [`CpuView`] into per-service weights.
//! Each one implements [`Policy`]; the engine holds the one an operator
//! picked ([`for_kind`]) and knows no policy's signature. `even`, `static`
//! and `spare` live beside this file; `optimal` (the multi-party LP) lives in
//! [`optimal`]. [`Operator`] lays operator weights over any other policy
//! (the `static` policy is those weights alone, so they are computed once a
//! round). Damping (unless the decision is [`Decision::undamped`]), the dead
//! band, drains and the even fallback are applied by the caller to the raw
//! [`Decision`] a policy returns. Its explain JSON
//! is built when an operator asks for it ([`Explain`]).

pub mod even;
pub mod explain;
pub mod kind;
pub mod maxflow;
pub mod operator;
pub mod optimal;
pub mod spare;
pub mod static_;

pub use explain::{Explain, Explainer};
pub use kind::PolicyKind;
pub use operator::Operator;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use self::optimal::OptimalConfig;
use self::static_::StaticWeights;
use crate::topology::Topology;

/// What a policy decides from, one round: the topology it may route to
/// (drained pods marked not ready), the CPU the reports show and the
/// operator weights.
#[derive(Debug, Clone, Copy)]
pub struct Round<'a> {
    /// The topology, drained pods not ready.
    pub topology: &'a Topology,
    /// Smoothed CPU of the nodes with fresh reports.
    pub cpu: &'a CpuView,
    /// Operator weights by service FQDN.
    pub operator: &'a StaticWeights,
}

/// A way to turn a [`Round`] into raw per-service weights.
pub trait Policy: fmt::Debug + Send + Sync {
    /// The name an operator picks it by.
    fn kind(&self) -> PolicyKind;
    /// The raw weights of this round; an error means no service has an
    /// opinion from this policy (the caller falls back).
    fn decide(&self, round: &Round<'_>) -> crate::Result<Decision>;
}

/// The policy an operator picked: `static` is the operator weights alone;
/// every other policy runs under [`Operator`], so operator weights win for
/// their services whatever the policy.
pub fn for_kind(kind: PolicyKind, optimal: &OptimalConfig) -> Arc<dyn Policy> {
    match kind {
        PolicyKind::Static => Arc::new(static_::Static),
        PolicyKind::Even => Arc::new(Operator::over(even::Even)),
        PolicyKind::Spare => Arc::new(Operator::over(spare::Spare)),
        PolicyKind::Optimal => Arc::new(Operator::over(optimal::Optimal::new(optimal.clone()))),
    }
}

/// What the policies know of CPU: built by the server core from smoothed
/// (EWMA) host reports. A node missing from `nodes` is unknown (no report, or
/// its last report is older than the configured age): no load is moved toward
/// it on stale numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuView {
    /// Nodes with a fresh report, by node name.
    pub nodes: BTreeMap<String, NodeCpu>,
    /// Smoothed CPU per managed pod (by pod name), in millicores, for pods on
    /// known nodes.
    pub pods: BTreeMap<String, f64>,
    /// The same pods' CPU in their node's last report, unsmoothed
    /// (admission reads it: it answers to the fraction let in just before,
    /// where the average answers to the last few seconds').
    #[serde(skip)]
    pub pods_last: BTreeMap<String, f64>,
}

pub use mplb_wire::admin::NodeCpu;

/// A figure the policies can use: finite and positive, else 0.
pub fn usable(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 { v } else { 0.0 }
}

impl CpuView {
    /// The capacity of a reporting node: its report's, else the
    /// topology's, else 0 (not usable). The one rule the policies and the
    /// balance figures share.
    pub fn capacity(topology: &Topology, name: &str, node: &NodeCpu) -> f64 {
        let reported = usable(node.capacity_millicores);
        if reported > 0.0 {
            reported
        } else {
            topology
                .nodes
                .get(name)
                .map_or(0.0, |t| usable(t.capacity_millicores))
        }
    }
}

/// A policy's raw answer, before damping.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Decision {
    /// Per service FQDN: per ready pod name, a non-negative weight. A service
    /// the policy has no opinion on is absent (the caller falls back to even).
    pub weights: BTreeMap<String, BTreeMap<String, f64>>,
    /// Per service FQDN: the inputs the policy used and why each pod got its
    /// weight, for `GET /admin/explain/{service}` (built on demand).
    pub explain: Explain,
    /// Why the policy gave no answer this round (its services fall back to
    /// even; operator weights still apply), if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The targets do not depend on the split being served (they come from
    /// background CPU and demand, as `optimal`'s do), so there is no
    /// feedback loop to calm: the caller moves straight to them instead of
    /// damping. Policies whose target follows the load the split itself
    /// puts on a node (`spare`) leave this false.
    pub undamped: bool,
    /// Per service FQDN: pods the policy could not judge (their node has no
    /// fresh report). The caller keeps the share each had last round and
    /// scales the other pods' weights into the rest, so no load moves
    /// toward a node on stale numbers; a pod with no share yet keeps the
    /// policy's weight.
    pub held: BTreeMap<String, BTreeSet<String>>,
    /// Per service FQDN: the fraction of its requests entry gateways let in
    /// (set by the engine's [`Admission`](crate::admission::Admission), not
    /// by policies); absent: all.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub admit: BTreeMap<String, f64>,
}
