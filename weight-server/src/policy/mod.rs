//! Policies turn a [`Topology`] and a [`CpuView`] into per-service weights.
//! `even`, `static` and `spare` live beside this file (server-core engineer);
//! `optimal` (the multi-party LP) lives in [`optimal`] (policy engineer).
//! Damping, the dead band, drains and the even fallback are applied by the
//! caller to the raw [`Decision`] a policy returns. Its explain JSON is
//! built when an operator asks for it ([`Explain`]).

pub mod even;
pub mod explain;
pub mod kind;
pub mod maxflow;
pub mod optimal;
pub mod spare;
pub mod static_;

pub use explain::{Explain, Explainer};
pub use kind::PolicyKind;

use std::collections::BTreeMap;

use serde::Serialize;

#[allow(unused_imports)]
use crate::topology::Topology;

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
}

/// Smoothed CPU of one node.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NodeCpu {
    /// Capacity in millicores as the agent reported it (falls back to the
    /// topology's capacity when the caller prefers that).
    pub capacity_millicores: f64,
    /// Smoothed node-wide usage in millicores (managed pods + background).
    pub used_millicores: f64,
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
}
