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
//! * Pods on unknown nodes get no variable: the LP places the other
//!   `(N−U)/N` of the traffic as if each of the `U` kept `1/N` (an even
//!   split of `N` ready pods). The decision marks them
//!   [`Decision::held`](crate::policy::Decision::held): the table builder
//!   keeps the share each had last round and scales the LP's pods into the
//!   rest, so no load moves toward a node on stale numbers.
//!
//! # Stages
//!
//! 1. *All demand served* (skipped when Σ demand exceeds Σ room `A_h` of the
//!    hosts it can use): place every `D_svc` on its pods and maximise the
//!    minimum spare fraction `u = min_h (A_h − Σ_h x)/C_h`. If `u ≥ 0` every
//!    tenant is fully served (served/entitled ≥ 1) and this is the answer.
//!    Then progressive filling ([`OptimalConfig::balance_rounds`] solves in
//!    all): hosts at the optimum level are frozen there and the minimum spare
//!    of the others is maximised, so non-bottleneck hosts are balanced too.
//! 2. *Overloaded* (`u < 0`): maximise `t` = min over tenants with `E_s > 0`
//!    of served/`E_s` (capped at 1: everyone gets `min(F_s, D_s)` when
//!    feasible) with hard capacities `Σ_h x ≤ A_h`, plus a small bonus
//!    ([`OptimalConfig::served_bonus`]) for total served load (work
//!    conservation); then, holding `t` and the served total (within
//!    [`OptimalConfig::tolerance`]), maximise the minimum spare fraction.
//!
//! # Solvers ([`OptimalConfig::solver`])
//!
//! * `flow` (default, `optimal_flow.rs`): the model is a transportation
//!   problem (services → pods → hosts), so every stage is a parametric
//!   maximum flow, solved exactly with Dinic and Dinkelbach steps on minimum
//!   cuts: a few max-flows per level, milliseconds at 5,000 nodes. It is
//!   exactly lexicographic where the LP uses a small bonus (overloaded: `t`
//!   first, then the most load served), and it balances the hosts that are
//!   left after the overloaded stage as in stage 1. Flows start spread (each
//!   service over its pods by host room) so weights do not pile on a few pods.
//! * `clarabel` (`optimal_solve.rs`): each stage as an LP with good_lp +
//!   clarabel (interior point). Exact too, but its factorisation fills in
//!   when many small services span many nodes (1.75 s at 1,000 nodes x 1,000
//!   services of 5 pods). Tests cross-check both against microlp.
//!
//! Hosts without an LP variable do not enter the minimum. A service with no
//! ready pod on a known host, or no measured demand, or none of its load
//! placed, is left out (the caller falls back to even). Solver failure is an
//! error; nothing here panics or yields NaN.

mod explain;
mod flow;
mod levels;
pub mod lp;
pub mod model;
mod solve;

use serde::Serialize;

use self::lp::{Clarabel, LpSolver};
use self::model::Inputs;
pub use self::solve::{min_spare, solve};
use super::{CpuView, Decision, Policy, PolicyKind, Round};
use crate::topology::Topology;

pub use mplb_wire::admin::{OptimalConfig, SolverKind};

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
    /// Which stage produced the loads.
    pub mode: Mode,
    /// Per LP pod (index of [`Inputs::pods`]): its load `x_p`, millicores.
    pub load: Vec<f64>,
    /// Min over tenants with `E_s > 0` of served/`E_s` (capped at 1).
    pub min_served_ratio: f64,
    /// Min over hosts with LP pods of the spare fraction after placement.
    pub min_spare_fraction: f64,
    /// The optimum of each stage solved, in order (for cross-checks).
    pub objectives: Vec<f64>,
    /// The solver used (`flow` or `clarabel`).
    pub solver: &'static str,
    /// Time spent solving, in milliseconds.
    pub solve_ms: f64,
}

/// The `optimal` policy with its knobs.
#[derive(Debug, Clone, Default)]
pub struct Optimal {
    cfg: OptimalConfig,
}

impl Optimal {
    /// The policy with these knobs.
    pub fn new(cfg: OptimalConfig) -> Self {
        Optimal { cfg }
    }
}

impl Policy for Optimal {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Optimal
    }
    fn decide(&self, round: &Round<'_>) -> crate::Result<Decision> {
        decide(round.topology, round.cpu, &self.cfg)
    }
}

/// Raw per-service weights from the multi-party LP, solved with
/// [`OptimalConfig::solver`]. Services whose inputs are unusable are left
/// out (the caller falls back to even).
pub fn decide(topology: &Topology, cpu: &CpuView, cfg: &OptimalConfig) -> crate::Result<Decision> {
    match cfg.solver {
        SolverKind::Clarabel => decide_with(topology, cpu, cfg, &Clarabel),
        SolverKind::Flow => {
            let inputs = Inputs::build(topology, cpu, cfg);
            let (inputs, solved) = with_plan(inputs, cfg, |i| flow::solve(i, cfg))?;
            Ok(explain::decision(inputs, solved, cfg))
        }
    }
}

/// Solve with saturated nodes planned down ([`Inputs::planned`]) when that
/// still serves every demand; otherwise with the nodes' full room.
fn with_plan(
    inputs: Inputs,
    cfg: &OptimalConfig,
    solve: impl Fn(&Inputs) -> crate::Result<Solved>,
) -> crate::Result<(Inputs, Solved)> {
    if let Some(planned) = inputs.planned(cfg) {
        let solved = solve(&planned)?;
        if solved.mode == Mode::AllServed {
            return Ok((planned, solved));
        }
    }
    let solved = solve(&inputs)?;
    Ok((inputs, solved))
}

/// [`decide`] with the stages as LPs and a given LP solver (clarabel in
/// production; tests cross-check with microlp).
pub fn decide_with(
    topology: &Topology,
    cpu: &CpuView,
    cfg: &OptimalConfig,
    solver: &dyn LpSolver,
) -> crate::Result<Decision> {
    let inputs = Inputs::build(topology, cpu, cfg);
    let (inputs, solved) = with_plan(inputs, cfg, |i| solve(i, cfg, solver))?;
    Ok(explain::decision(inputs, solved, cfg))
}
