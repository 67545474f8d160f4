//! The multi-party linear program (the `optimal` policy). Owned by the
//! policy/kube engineer. (Initial version: signatures only; the LP follows.)

use serde::Serialize;

use super::{CpuView, Decision};
use crate::topology::Topology;

/// Knobs of the `optimal` policy.
#[derive(Debug, Clone, Serialize)]
pub struct OptimalConfig {
    /// A node whose smoothed use is at least this fraction of its capacity is
    /// saturated: demand of tenants on it is treated as at least their fair share.
    pub saturation_threshold: f64,
}

impl Default for OptimalConfig {
    fn default() -> Self {
        Self {
            saturation_threshold: 0.9,
        }
    }
}

/// Raw per-service weights from the multi-party LP. Services whose inputs are
/// unusable are left out (the caller falls back to even).
pub fn decide(topology: &Topology, cpu: &CpuView, cfg: &OptimalConfig) -> crate::Result<Decision> {
    let _ = (topology, cpu, cfg);
    Ok(Decision::default())
}
