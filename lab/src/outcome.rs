//! The outcome of one policy in one repeat ([`PolicyResult`]) and the
//! figures derived from it: busiest node, max/avg, shares, Jain, non-2xx,
//! table version and weight changes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::convergence::Convergence;
use crate::events::Applied;
use crate::load::LoadResult;
use crate::measure::Sample;

/// The outcome of one policy in one repeat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyResult {
    /// Policy name as given (`even`, `cswrr` or a weight-server policy).
    pub policy: String,
    /// Which repeat this is, from 1.
    pub repeat: u32,
    /// The first entry service's load (hotel in the shipped scenarios).
    pub load: LoadResult,
    /// Every entry service's load, by service.
    pub entries: BTreeMap<String, LoadResult>,
    /// Gateway Envoys' downstream response counters over the measured window.
    pub gateway: BTreeMap<String, u64>,
    /// Each node's CPU over the measured window, in percent of its capacity.
    pub node_util_pct: BTreeMap<String, f64>,
    /// Each tenant's CPU over the measured window (sum of its pods), in millicores.
    pub tenant_millicores: BTreeMap<String, f64>,
    /// CPU of each pod over the measured window, in millicores.
    pub pod_millicores: BTreeMap<String, f64>,
    /// Each tenant's fair share (sum over its services), in millicores.
    pub tenant_fair_share: BTreeMap<String, f64>,
    /// min(fair share, offered demand) per tenant, in millicores.
    pub tenant_entitled: BTreeMap<String, f64>,
    /// Times the served table version changed during the measured window.
    pub version_changes: u64,
    /// Samples in which some normalised weight moved by more than 0.01.
    pub weight_changes: u64,
    /// Normalised served weight of each pod in the last sample.
    pub final_weights: BTreeMap<String, f64>,
    /// Settle time after each change and signal-to-weight latency of each
    /// hog event ([`crate::convergence`]).
    #[serde(default)]
    pub convergence: Convergence,
    /// The scenario's events as applied.
    #[serde(default)]
    pub events: Vec<Applied>,
    /// The measured window's time series (not in the JSON; `timeseries.csv` holds it).
    #[serde(skip)]
    pub samples: Vec<Sample>,
}

impl PolicyResult {
    /// Highest node utilisation.
    pub fn busiest_node_pct(&self) -> f64 {
        self.node_util_pct.values().copied().fold(0.0, f64::max)
    }
    /// Busiest node's utilisation over the average node's.
    pub fn max_over_avg(&self) -> f64 {
        let n = self.node_util_pct.len().max(1) as f64;
        let avg = self.node_util_pct.values().sum::<f64>() / n;
        if avg > 0.0 {
            self.busiest_node_pct() / avg
        } else {
            0.0
        }
    }
    /// A tenant's CPU as a fraction of its fair share.
    pub fn share_fraction(&self, tenant: &str) -> f64 {
        let fair = self.tenant_fair_share.get(tenant).copied().unwrap_or(0.0);
        let used = self.tenant_millicores.get(tenant).copied().unwrap_or(0.0);
        if fair > 0.0 { used / fair } else { 0.0 }
    }
    /// A tenant's CPU over its entitlement (min(fair share, demand)).
    pub fn served_over_entitled(&self, tenant: &str) -> f64 {
        let ent = self.tenant_entitled.get(tenant).copied().unwrap_or(0.0);
        let used = self.tenant_millicores.get(tenant).copied().unwrap_or(0.0);
        if ent > 0.0 { used / ent } else { 0.0 }
    }
    /// Jain's index over tenants' served/entitled (1 = all equal).
    pub fn jain(&self) -> f64 {
        let xs: Vec<f64> = self
            .tenant_entitled
            .iter()
            .filter(|(_, e)| **e > 0.0)
            .map(|(t, _)| self.served_over_entitled(t).min(1.0))
            .collect();
        crate::fairness::jain(&xs)
    }
    /// Non-2xx as the larger of hey's count and the gateways'.
    pub fn non_2xx(&self) -> u64 {
        let gw: u64 = ["3xx", "4xx", "5xx"]
            .iter()
            .filter_map(|k| self.gateway.get(*k))
            .sum();
        let hey: u64 = self.entries.values().map(|l| l.non_2xx).sum();
        hey.max(gw)
    }
}

/// How often the observed table version changed between samples.
pub fn count_version_changes(samples: &[Sample]) -> u64 {
    let versions: Vec<u64> = samples.iter().filter_map(|s| s.version).collect();
    versions.windows(2).filter(|w| w[0] != w[1]).count() as u64
}

/// Samples where some normalised weight moved by more than 0.01.
pub fn count_weight_changes(samples: &[Sample]) -> u64 {
    samples
        .windows(2)
        .filter(|w| {
            w[1].weights
                .iter()
                .any(|(pod, x)| w[0].weights.get(pod).is_some_and(|y| (x - y).abs() > 0.01))
        })
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(version: Option<u64>, w: f64) -> Sample {
        Sample {
            t_s: 0.0,
            node_util_pct: BTreeMap::new(),
            weights: [("p-0".to_string(), w), ("p-1".to_string(), 1.0 - w)].into(),
            version,
        }
    }

    #[test]
    fn changes_are_counted_between_consecutive_samples() {
        let s = vec![
            sample(Some(1), 0.5),
            sample(Some(1), 0.505),
            sample(Some(2), 0.6),
            sample(None, 0.6),
            sample(Some(3), 0.6),
        ];
        assert_eq!(count_version_changes(&s), 2);
        assert_eq!(count_weight_changes(&s), 1);
    }
}
