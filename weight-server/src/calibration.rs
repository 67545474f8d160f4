//! Per-pod cost calibration for `optimal` (opt-in: `--optimal-calibrate`).
//!
//! `optimal` places CPU: a pod's load is its weight times the service's
//! demand, as if a request cost the same CPU on every pod. It does not: on
//! a busy node a request costs more (the application's fixed work is the
//! same, the rest grows with contention), so the plan's fixed point leaves
//! the cooler nodes under it (lab, two-tenants: node-a 3 points under a
//! balanced plan). Calibration measures each pod's relative cost
//! `k = (its share of the service's CPU) / (its share of the requests)`,
//! from the pods' last reported CPU and the weights the table served while
//! it was measured, and turns the plan into weights `∝ load / k`, so a pod
//! whose requests cost more gets fewer of them for the same CPU.
//!
//! The estimate is smoothed (`gain` per round) and clamped to
//! `[1/max_ratio, max_ratio]`; a pod serving less than `min_weight` of its
//! service, or without a fresh report, keeps its last factor (1 at first).
//! Only `optimal`'s decisions are calibrated; operator weights, drained
//! pods and services the policy left out are not touched.

use std::collections::BTreeMap;

use mplb_wire::WeightsTable;
use mplb_wire::admin::StaticWeights;

use crate::policy::{CpuView, Decision};

/// Knobs of the calibration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibrationConfig {
    /// Fraction of the way to a new estimate moved per round, in (0, 1].
    pub gain: f64,
    /// Largest factor (and smallest, as its inverse).
    pub max_ratio: f64,
    /// A pod serving less than this share is not measured.
    pub min_weight: f64,
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        CalibrationConfig {
            gain: 0.3,
            max_ratio: 1.5,
            min_weight: 0.05,
        }
    }
}

/// Per-pod cost factors, kept between rounds.
#[derive(Debug, Clone, Default)]
pub struct Calibration {
    cfg: CalibrationConfig,
    factors: BTreeMap<String, f64>,
}

impl Calibration {
    /// Factors of 1 until measured.
    pub fn new(cfg: CalibrationConfig) -> Self {
        Calibration {
            cfg,
            factors: BTreeMap::new(),
        }
    }

    /// A pod's current factor (1 when unmeasured).
    pub fn factor(&self, pod: &str) -> f64 {
        self.factors.get(pod).copied().unwrap_or(1.0)
    }

    /// Measure against what `served` carried and `cpu` shows, then rewrite
    /// `decision`'s weights as load over cost factor. Services missing from
    /// `served` are only rewritten with the factors already known; services
    /// `operator` sets weights for are left as they are.
    pub fn apply(
        &mut self,
        decision: &mut Decision,
        cpu: &CpuView,
        served: Option<&WeightsTable>,
        operator: &StaticWeights,
    ) {
        let mut next = BTreeMap::new();
        for (fqdn, targets) in &mut decision.weights {
            if operator.contains_key(fqdn) {
                continue;
            }
            if let Some(svc) = served.and_then(|t| t.services.get(fqdn)) {
                let measured: Vec<(&str, f64, f64)> = svc
                    .endpoints
                    .iter()
                    .filter_map(|e| Some((e.pod.as_str(), e.weight, *cpu.pods_last.get(&e.pod)?)))
                    .collect();
                let weight: f64 = measured.iter().map(|m| m.1).sum();
                let load: f64 = measured.iter().map(|m| m.2).sum();
                for (pod, w, c) in measured {
                    let prev = self.factor(pod);
                    let share = if weight > 0.0 { w / weight } else { 0.0 };
                    let k = if share >= self.cfg.min_weight && load > 0.0 && c.is_finite() {
                        let raw =
                            (c / load / share).clamp(1.0 / self.cfg.max_ratio, self.cfg.max_ratio);
                        prev + self.cfg.gain * (raw - prev)
                    } else {
                        prev
                    };
                    next.insert(pod.to_string(), k);
                }
            }
            for (pod, w) in targets.iter_mut() {
                let k = next.get(pod).copied().unwrap_or_else(|| self.factor(pod));
                *w /= k;
            }
        }
        self.factors = next;
    }
}

#[cfg(test)]
mod tests;
