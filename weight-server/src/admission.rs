//! Admission: when the tenants' demand exceeds what the nodes can serve, no
//! split of the load can give every tenant its fair share (the kernel splits
//! a saturated node by cgroup, not by tenant), and every request queues. The
//! admission controller then tells the entry gateways to let in only a
//! fraction of each over-share tenant's requests (`admit` in the table; a
//! gateway with the plugin key `admission` answers the rest with a 503 at
//! once), so that the admitted load fits within `target` × capacity and is
//! split between tenants by weighted max-min fairness over their fair shares.
//!
//! It runs with the `optimal` policy and reads its model
//! ([`Inputs`]): per tenant the CPU its pods use, its fair share, and whether
//! its demand was raised (its load cannot escape saturated nodes, so its
//! measured use understates what it wants). Each round:
//!
//! 1. *Offered demand.* What a tenant would use if everything were let in:
//!    `d = served / admitted`, with `served` its pods' CPU in the nodes' last
//!    reports (unsmoothed: the smoothed CPU answers to the fractions of the
//!    last few seconds, and resets on a large step, so it cannot be divided
//!    by any one of them) and `admitted` the fraction the table carried
//!    before this round; at least the fair share when the model raised the
//!    tenant (its use on saturated nodes understates what it wants). While
//!    nodes stay full, `served` is capped by the kernel and `d` is a lower
//!    bound: the fraction then falls a little each round until the nodes
//!    have room and `d` is exact.
//! 2. *Room.* `R = Σ_h max(0, target × C_h − B_h)` over the known nodes
//!    (background use `B_h` is not ours to shed).
//! 3. If `Σ d ≤ R` nobody is shed. Otherwise each tenant's allowance is
//!    `min(d, λ F)` with `λ` such that the allowances fill `R` (water
//!    filling weighted by fair share `F`), and its target fraction is
//!    `allowance / d`, at least `floor`.
//! 4. The served fraction moves `gain` of the way to the target and snaps
//!    to 1 when it is within 1 %, so a table carries `admit` only while
//!    shedding. It moves at most once per `period`: rounds come with every
//!    report, and a step must first reach the gateways (their poll) and then
//!    a whole report window before its effect can be read; a round in
//!    between only reports.
//!
//! While a node hosting a ready managed pod has no fresh report, the
//! picture is partial (the known nodes' room against tenants' whole fair
//! shares), so fractions may rise but never fall.
//!
//! The allowance is computed over the cluster's room, not per node: a
//! tenant whose pods sit only on some nodes is treated as if it could use
//! them all.

use std::collections::BTreeMap;

use crate::policy::optimal::model::Inputs;
use crate::topology::Topology;

/// Knobs of the admission controller (`--admission-target`,
/// `--admission-floor`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdmissionConfig {
    /// The share of each node's capacity admitted load may use, in (0, 1].
    pub target: f64,
    /// The smallest fraction of a tenant's requests let in, in (0, 1].
    pub floor: f64,
    /// Fraction of the way to the target fraction moved per step, in (0, 1].
    pub gain: f64,
    /// Least time between two steps, ms (`--admission-period`).
    pub period_ms: u64,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            target: 0.95,
            floor: 0.05,
            gain: 0.5,
            period_ms: 2_000,
        }
    }
}

/// What a round decided for one tenant (for logs, metrics and tests).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// Estimated demand if everything were let in, millicores.
    pub offered: f64,
    /// What it may use, millicores (its offered demand when nobody is shed).
    pub allowance: f64,
    /// The fraction of its requests the gateways let in.
    pub admit: f64,
}

/// The controller; one per engine.
#[derive(Debug, Clone)]
pub struct Admission {
    cfg: AdmissionConfig,
    /// Per tenant, the fraction the table carries (1 when absent).
    tenants: BTreeMap<String, f64>,
    /// When the fractions last moved.
    last_step_ms: Option<u64>,
}

impl Admission {
    /// A controller that admits everything until a round says otherwise.
    pub fn new(cfg: AdmissionConfig) -> Self {
        Admission {
            cfg,
            tenants: BTreeMap::new(),
            last_step_ms: None,
        }
    }

    /// Let everything in again (the policy is no longer `optimal`).
    pub fn reset(&mut self) {
        self.tenants.clear();
        self.last_step_ms = None;
    }

    /// One round at `now_ms` over `inputs` (`optimal`'s model of the
    /// round): per tenant what it may use and the fraction let in. The
    /// fractions move only when a period has passed since they last did.
    pub fn round(&mut self, inputs: &Inputs, now_ms: u64) -> BTreeMap<String, Verdict> {
        let step = self
            .last_step_ms
            .is_none_or(|l| now_ms.saturating_sub(l) >= self.cfg.period_ms);
        if step {
            self.last_step_ms = Some(now_ms);
        }
        // The model lists ready pods on nodes without a fresh report.
        let partial = inputs.services.iter().any(|s| !s.unknown_pods.is_empty());
        let offered: Vec<f64> = inputs
            .tenants
            .iter()
            .map(|t| {
                let admitted = self.tenants.get(&t.name).copied().unwrap_or(1.0);
                let d = t.demand_last / admitted.max(self.cfg.floor);
                if t.raised { d.max(t.fair_share) } else { d }
            })
            .collect();
        let weights: Vec<f64> = inputs.tenants.iter().map(|t| t.fair_share).collect();
        let room: f64 = inputs
            .hosts
            .iter()
            .map(|h| (self.cfg.target * h.capacity - h.background).max(0.0))
            .sum();
        let allowance = water_fill(&offered, &weights, room);
        let mut out = BTreeMap::new();
        let mut next = BTreeMap::new();
        for ((t, &d), &a) in inputs.tenants.iter().zip(&offered).zip(&allowance) {
            let prev = self.tenants.get(&t.name).copied().unwrap_or(1.0);
            let mut target = if d > 0.0 {
                (a / d).clamp(self.cfg.floor, 1.0)
            } else {
                1.0
            };
            if partial {
                target = target.max(prev);
            }
            let mut served = prev;
            if step {
                served += self.cfg.gain * (target - prev);
                if (1.0 - served) < 0.01 {
                    served = 1.0;
                }
            }
            if (served - prev).abs() >= 0.01 || (served == 1.0) != (prev == 1.0) {
                tracing::info!(
                    tenant = %t.name,
                    offered_millicores = d.round(),
                    allowance_millicores = a.round(),
                    served_millicores = t.demand_last.round(),
                    admit = (served * 1000.0).round() / 1000.0,
                    "admission"
                );
            }
            next.insert(t.name.clone(), served);
            out.insert(
                t.name.clone(),
                Verdict {
                    offered: d,
                    allowance: a,
                    admit: served,
                },
            );
        }
        self.tenants = next;
        out
    }

    /// The fraction let in per service FQDN, for the services of tenants
    /// being shed only (the others carry no `admit`).
    pub fn per_service(&self, topology: &Topology) -> BTreeMap<String, f64> {
        topology
            .services
            .values()
            .filter_map(|s| {
                let a = *self.tenants.get(&s.tenant)?;
                (a < 1.0).then(|| (s.fqdn.clone(), a))
            })
            .collect()
    }
}

/// Weighted max-min fair allocation of `room` to demands `d` with weights
/// `w`: each gets `min(d_i, λ w_i)` with `λ` as large as `room` allows; when
/// everything fits, each gets its demand. Weights of 0 count as the
/// smallest positive weight (equal weights if all are 0), so a tenant with
/// no fair share still gets a little.
pub fn water_fill(d: &[f64], w: &[f64], room: f64) -> Vec<f64> {
    let total: f64 = d.iter().sum();
    if total <= room {
        return d.to_vec();
    }
    let smallest = w
        .iter()
        .copied()
        .filter(|x| *x > 0.0)
        .fold(f64::INFINITY, f64::min);
    let floor = if smallest.is_finite() { smallest } else { 1.0 };
    let w: Vec<f64> = w
        .iter()
        .map(|x| if *x > 0.0 { *x } else { floor })
        .collect();
    // Tenants in the order their demand runs out as λ grows.
    let mut order: Vec<usize> = (0..d.len()).collect();
    order.sort_by(|&a, &b| (d[a] / w[a]).total_cmp(&(d[b] / w[b])));
    let mut left = room.max(0.0);
    let mut weight_left: f64 = w.iter().sum();
    let mut out = vec![0.0; d.len()];
    for (k, &i) in order.iter().enumerate() {
        let lambda = left / weight_left;
        if d[i] <= lambda * w[i] {
            out[i] = d[i];
            left -= d[i];
            weight_left -= w[i];
        } else {
            for &j in &order[k..] {
                out[j] = lambda * w[j];
            }
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests;
