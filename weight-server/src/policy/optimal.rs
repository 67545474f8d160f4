//! The `optimal` policy: the multi-party linear program of DESIGN.md.
//!
//! # Model
//!
//! * Hosts `h` are the nodes with a fresh report ([`CpuView::nodes`]) and a
//!   positive capacity `C_h`. Background `B_h` = smoothed node use − Σ smoothed
//!   CPU of the managed pods on it (any readiness), clamped at 0; managed load
//!   may use `A_h = max(0, C_h − B_h)`.
//! * A service's demand `D_svc` = Σ smoothed CPU of its pods on known hosts
//!   (drained or unready pods included: their load moves to the others). A
//!   tenant's demand `D_s` = Σ over its services; its fair share `F_s` is
//!   [`Topology::fair_share`]; its entitlement `E_s = min(F_s, D_s)`.
//! * Saturation: if a ready pod of a tenant sits on a node whose use is at
//!   least [`OptimalConfig::saturation_threshold`] × capacity, its measured
//!   demand is an under-estimate (throttled); with
//!   [`OptimalConfig::protect_saturated`] its demand is raised to at least
//!   `F_s` (spread over its services in proportion to their measured demand).
//! * One variable `x_p ≥ 0` (millicores) per ready pod on a known host; a
//!   service's pods carry its demand; weights are `x_p / Σ_svc x`.
//! * Pods on unknown nodes keep the share of an even split (`1/N` each of a
//!   service with `N` ready pods) and get no variable: no load is moved toward
//!   them on stale numbers; the LP splits the other `(N−U)/N` of the traffic.
//!
//! # Stages
//!
//! 1. *All demand served*: place every `D_svc` on its pods and maximise the
//!    minimum spare fraction `u = min_h (A_h − Σ_h x)/C_h`. If `u ≥ 0` every
//!    tenant is fully served (served/entitled ≥ 1) and this is the answer: one
//!    solve in the common case.
//! 2. *Overloaded* (`u < 0`): maximise `t` = min over tenants with `E_s > 0`
//!    of served/`E_s` (capped at 1: everyone gets `min(F_s, D_s)` when
//!    feasible) with hard capacities `Σ_h x ≤ A_h`, plus a small bonus
//!    ([`OptimalConfig::served_bonus`]) for total served load (work
//!    conservation); then, holding `t` and the served total (within
//!    [`OptimalConfig::tolerance`]), maximise the minimum spare fraction.
//!
//! Hosts without an LP variable do not enter the minimum. A service with no
//! ready pod on a known host, or no measured demand, or none of its load
//! placed, is left out (the caller falls back to even). Solver failure is an
//! error; nothing here panics or yields NaN.

#[path = "optimal_explain.rs"]
mod explain;
#[path = "optimal_lp.rs"]
pub mod lp;
#[path = "optimal_model.rs"]
pub mod model;

use std::time::Instant;

use serde::Serialize;

use self::lp::{Clarabel, Cmp, Lp, LpSolver};
use self::model::Inputs;
use super::{CpuView, Decision};
use crate::topology::Topology;

/// Knobs of the `optimal` policy.
#[derive(Debug, Clone, Serialize)]
pub struct OptimalConfig {
    /// A node whose smoothed use is at least this fraction of its capacity is
    /// saturated.
    pub saturation_threshold: f64,
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
}

impl Default for OptimalConfig {
    fn default() -> Self {
        Self {
            saturation_threshold: 0.9,
            protect_saturated: true,
            tolerance: 1e-4,
            served_bonus: 1e-3,
            min_weight: 1e-6,
        }
    }
}

/// Which stage produced the loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Every demand fits: max-min spare fraction.
    AllServed,
    /// Not everything fits: max-min served/entitled, then spare.
    Overloaded,
    /// Nothing to place.
    Idle,
}

/// The LP's answer in millicores, before it becomes weights.
#[derive(Debug, Clone)]
pub struct Solved {
    pub mode: Mode,
    /// Per LP pod (index of [`Inputs::pods`]): its load `x_p`, millicores.
    pub load: Vec<f64>,
    /// Min over tenants with `E_s > 0` of served/`E_s` (capped at 1).
    pub min_served_ratio: f64,
    /// Min over hosts with LP pods of the spare fraction after placement.
    pub min_spare_fraction: f64,
    /// The optimum of each stage solved, in order (for cross-checks).
    pub objectives: Vec<f64>,
    pub solver: &'static str,
    pub solve_ms: f64,
}

/// Raw per-service weights from the multi-party LP, solved with clarabel.
/// Services whose inputs are unusable are left out (the caller falls back
/// to even).
pub fn decide(topology: &Topology, cpu: &CpuView, cfg: &OptimalConfig) -> crate::Result<Decision> {
    decide_with(topology, cpu, cfg, &Clarabel)
}

/// [`decide`] with another LP solver (tests cross-check with microlp).
pub fn decide_with(
    topology: &Topology,
    cpu: &CpuView,
    cfg: &OptimalConfig,
    solver: &dyn LpSolver,
) -> crate::Result<Decision> {
    let inputs = Inputs::build(topology, cpu, cfg);
    let solved = solve(&inputs, cfg, solver)?;
    Ok(explain::decision(&inputs, &solved, cfg))
}

/// Variable indices of a stage model.
struct Vars {
    /// Per LP pod: its variable (`None` for pods of left-out services).
    pod: Vec<Option<usize>>,
    /// Per host: its pods' variables.
    host: Vec<Vec<usize>>,
    scale: f64,
}

fn pod_vars(inputs: &Inputs, lp: &mut Lp) -> Vars {
    let scale = inputs
        .hosts
        .iter()
        .map(|h| h.capacity)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let mut vars = Vars {
        pod: vec![None; inputs.pods.len()],
        host: vec![Vec::new(); inputs.hosts.len()],
        scale,
    };
    for (_, svc) in inputs.placed() {
        for &p in &svc.lp_pods {
            let v = lp.var(0.0, f64::INFINITY);
            vars.pod[p] = Some(v);
            vars.host[inputs.pods[p].host].push(v);
        }
    }
    vars
}

fn ones(vars: impl IntoIterator<Item = usize>) -> Vec<(usize, f64)> {
    vars.into_iter().map(|v| (v, 1.0)).collect()
}

fn svc_vars<'a>(inputs: &'a Inputs, vars: &'a Vars, s: usize) -> impl Iterator<Item = usize> + 'a {
    inputs.services[s]
        .lp_pods
        .iter()
        .filter_map(|&p| vars.pod[p])
}

fn tenant_vars(inputs: &Inputs, vars: &Vars, t: usize) -> Vec<usize> {
    inputs.tenants[t]
        .services
        .iter()
        .flat_map(|&s| svc_vars(inputs, vars, s))
        .collect()
}

/// Add `Σ_h x + (C_h/scale)·u ≤ A_h/scale` for every host with variables.
fn spare_rows(inputs: &Inputs, vars: &Vars, lp: &mut Lp, u: usize) {
    for (h, hv) in vars.host.iter().enumerate() {
        if hv.is_empty() {
            continue;
        }
        let host = &inputs.hosts[h];
        let mut terms = ones(hv.iter().copied());
        terms.push((u, host.capacity / vars.scale));
        lp.row(terms, Cmp::Le, host.available / vars.scale);
    }
}

fn loads(vars: &Vars, x: &[f64]) -> Vec<f64> {
    vars.pod
        .iter()
        .map(|v| {
            v.map_or(0.0, |v| {
                x.get(v).copied().unwrap_or(0.0).max(0.0) * vars.scale
            })
        })
        .collect()
}

/// Run the stages.
pub fn solve(inputs: &Inputs, cfg: &OptimalConfig, solver: &dyn LpSolver) -> crate::Result<Solved> {
    let started = Instant::now();
    let mut objectives = Vec::new();
    let done = |mode, load: Vec<f64>, ratio, spare, objectives| Solved {
        mode,
        load,
        min_served_ratio: ratio,
        min_spare_fraction: spare,
        objectives,
        solver: solver.name(),
        solve_ms: started.elapsed().as_secs_f64() * 1e3,
    };
    if inputs.placed().next().is_none() {
        return Ok(done(
            Mode::Idle,
            vec![0.0; inputs.pods.len()],
            1.0,
            1.0,
            objectives,
        ));
    }

    // Stage: all demand served, maximise the minimum spare fraction.
    let mut lp = Lp::default();
    let vars = pod_vars(inputs, &mut lp);
    let u = lp.var(f64::NEG_INFINITY, 1.0);
    lp.objective = vec![(u, 1.0)];
    for (s, svc) in inputs.placed() {
        lp.row(
            ones(svc_vars(inputs, &vars, s)),
            Cmp::Eq,
            svc.demand / vars.scale,
        );
    }
    spare_rows(inputs, &vars, &mut lp, u);
    let x = solver.maximise(&lp)?;
    let spare = x[u];
    objectives.push(spare);
    if spare >= -1e-7 {
        let load = loads(&vars, &x);
        return Ok(done(Mode::AllServed, load, 1.0, spare.max(0.0), objectives));
    }

    // Overloaded, first: maximise min served/entitled (+ a served bonus).
    let mut lp = Lp::default();
    let vars = pod_vars(inputs, &mut lp);
    let t = lp.var(0.0, 1.0);
    let total_demand: f64 = inputs.placed().map(|(_, s)| s.demand).sum::<f64>() / vars.scale;
    let bonus = cfg.served_bonus.max(0.0) / total_demand.max(1e-12);
    lp.objective = vec![(t, 1.0)];
    lp.objective
        .extend(vars.pod.iter().flatten().map(|&v| (v, bonus)));
    for (s, svc) in inputs.placed() {
        lp.row(
            ones(svc_vars(inputs, &vars, s)),
            Cmp::Le,
            svc.demand / vars.scale,
        );
    }
    let mut guarded = Vec::new();
    for (i, tenant) in inputs.tenants.iter().enumerate() {
        let e = tenant.entitled / vars.scale;
        if e > 1e-9 {
            let mut terms = ones(tenant_vars(inputs, &vars, i));
            terms.push((t, -e));
            lp.row(terms, Cmp::Ge, 0.0);
            guarded.push((i, e));
        }
    }
    for (h, hv) in vars.host.iter().enumerate() {
        if !hv.is_empty() {
            let a = inputs.hosts[h].available / vars.scale;
            lp.row(ones(hv.iter().copied()), Cmp::Le, a);
        }
    }
    let x1 = solver.maximise(&lp)?;
    objectives.push(lp.objective_value(&x1));
    let ratio = if guarded.is_empty() {
        1.0
    } else {
        x1[t].clamp(0.0, 1.0)
    };
    let served: f64 = vars.pod.iter().flatten().map(|&v| x1[v].max(0.0)).sum();

    // Overloaded, second: hold t and the served total, maximise min spare.
    // (Same variable order as the first stage: pods first.)
    let mut lp2 = Lp::default();
    let vars = pod_vars(inputs, &mut lp2);
    let u = lp2.var(0.0, 1.0);
    lp2.objective = vec![(u, 1.0)];
    for (s, svc) in inputs.placed() {
        lp2.row(
            ones(svc_vars(inputs, &vars, s)),
            Cmp::Le,
            svc.demand / vars.scale,
        );
    }
    for &(i, e) in &guarded {
        let floor = (ratio - cfg.tolerance).max(0.0) * e;
        lp2.row(ones(tenant_vars(inputs, &vars, i)), Cmp::Ge, floor);
    }
    let all = ones(vars.pod.iter().flatten().copied());
    lp2.row(all, Cmp::Ge, served * (1.0 - cfg.tolerance));
    spare_rows(inputs, &vars, &mut lp2, u);
    match solver.maximise(&lp2) {
        Ok(x2) => {
            objectives.push(x2[u]);
            let spare = x2[u].max(0.0);
            Ok(done(
                Mode::Overloaded,
                loads(&vars, &x2),
                ratio,
                spare,
                objectives,
            ))
        }
        Err(e) => {
            tracing::warn!(error = %e, "optimal: spare stage failed; keeping the fairness stage");
            let load = loads(&vars, &x1);
            let spare = min_spare(inputs, &load);
            Ok(done(Mode::Overloaded, load, ratio, spare, objectives))
        }
    }
}

/// The minimum spare fraction over hosts with LP pods for given loads.
pub fn min_spare(inputs: &Inputs, load: &[f64]) -> f64 {
    let mut placed = vec![0.0; inputs.hosts.len()];
    let mut used = vec![false; inputs.hosts.len()];
    for (p, pod) in inputs.pods.iter().enumerate() {
        if inputs.services[pod.service].left_out.is_none() {
            placed[pod.host] += load.get(p).copied().unwrap_or(0.0);
            used[pod.host] = true;
        }
    }
    inputs
        .hosts
        .iter()
        .enumerate()
        .filter(|(h, _)| used[*h])
        .map(|(h, host)| (host.available - placed[h]) / host.capacity)
        .fold(1.0_f64, f64::min)
}
