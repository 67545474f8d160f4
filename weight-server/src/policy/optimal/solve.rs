//! The stages of the `optimal` LP (see the parent module's doc): build each
//! stage as an [`Lp`], solve it, and hand the loads back as [`Solved`].

use std::time::Instant;

use super::lp::{Cmp, Lp, LpSolver};
use super::model::Inputs;
use super::{Mode, OptimalConfig, Solved};

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

/// Solve and check the answer's shape and numbers (a solver is not trusted
/// to return one finite value per variable).
fn checked(solver: &dyn LpSolver, lp: &Lp) -> crate::Result<Vec<f64>> {
    let x = solver.maximise(lp)?;
    if x.len() != lp.bounds.len() || x.iter().any(|v| !v.is_finite()) {
        return Err(crate::Error::Solver(format!(
            "{}: answer has {} values for {} variables or is not finite",
            solver.name(),
            x.len(),
            lp.bounds.len()
        )));
    }
    Ok(x)
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

/// Add `Σ_h x + (C_h/scale)·u ≤ A_h/scale` for every host with variables
/// (for a host frozen at level `l`: `Σ_h x ≤ (A_h − C_h·l)/scale`).
fn spare_rows(inputs: &Inputs, vars: &Vars, lp: &mut Lp, u: usize, frozen: &[Option<f64>]) {
    for (h, hv) in vars.host.iter().enumerate() {
        if hv.is_empty() {
            continue;
        }
        let host = &inputs.hosts[h];
        let (a, c) = (host.available / vars.scale, host.capacity / vars.scale);
        let mut terms = ones(hv.iter().copied());
        match frozen.get(h).copied().flatten() {
            Some(level) => lp.row(terms, Cmp::Le, a - c * level),
            None => {
                terms.push((u, c));
                lp.row(terms, Cmp::Le, a);
            }
        }
    }
}

/// Progressive filling after the max-min: hosts whose spare sits at the
/// optimum level are bottlenecks (clarabel, an interior-point method, lands
/// in the middle of the optimal face, so a host with no slack there has none
/// in any optimum); freeze them at that level and maximise the minimum spare
/// of the others, up to [`OptimalConfig::balance_rounds`] solves in all.
fn balance(
    inputs: &Inputs,
    vars: &Vars,
    cfg: &OptimalConfig,
    solver: &dyn LpSolver,
    mut x: Vec<f64>,
    mut level: f64,
    objectives: &mut Vec<f64>,
) -> Vec<f64> {
    let mut frozen: Vec<Option<f64>> = vec![None; inputs.hosts.len()];
    for _ in 1..cfg.balance_rounds.max(1) {
        let (mut newly, mut open) = (0, 0);
        for (h, hv) in vars.host.iter().enumerate() {
            if hv.is_empty() || frozen[h].is_some() {
                continue;
            }
            let host = &inputs.hosts[h];
            let placed: f64 = hv.iter().map(|&v| x[v]).sum();
            let spare = (host.available / vars.scale - placed) / (host.capacity / vars.scale);
            if spare <= level + 1e-6 {
                frozen[h] = Some(level - 1e-7);
                newly += 1;
            } else {
                open += 1;
            }
        }
        if newly == 0 || open == 0 {
            break;
        }
        let mut lp = Lp::default();
        let round_vars = pod_vars(inputs, &mut lp);
        let u = lp.var(f64::NEG_INFINITY, 1.0);
        lp.objective = vec![(u, 1.0)];
        for (s, svc) in inputs.placed() {
            let terms = ones(svc_vars(inputs, &round_vars, s));
            lp.row(terms, Cmp::Eq, svc.demand / vars.scale);
        }
        spare_rows(inputs, &round_vars, &mut lp, u, &frozen);
        match checked(solver, &lp) {
            Ok(next) if next[u] > level + 1e-9 => {
                objectives.push(next[u]);
                level = next[u];
                x = next;
            }
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(error = %e, "optimal: balancing round failed; keeping the max-min answer");
                break;
            }
        }
    }
    x
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

    // Stage: all demand served, maximise the minimum spare fraction. Skipped
    // when the demand exceeds the room on the hosts it can use.
    let mut lp = Lp::default();
    let vars = pod_vars(inputs, &mut lp);
    let demand: f64 = inputs.placed().map(|(_, s)| s.demand).sum();
    let room: f64 = (vars.host.iter().enumerate())
        .filter(|(_, hv)| !hv.is_empty())
        .map(|(h, _)| inputs.hosts[h].available)
        .sum();
    if demand <= room * (1.0 + 1e-9) {
        let u = lp.var(f64::NEG_INFINITY, 1.0);
        lp.objective = vec![(u, 1.0)];
        for (s, svc) in inputs.placed() {
            let terms = ones(svc_vars(inputs, &vars, s));
            lp.row(terms, Cmp::Eq, svc.demand / vars.scale);
        }
        spare_rows(inputs, &vars, &mut lp, u, &[]);
        let x = checked(solver, &lp)?;
        let spare = x[u];
        objectives.push(spare);
        if spare >= -1e-7 {
            let x = balance(inputs, &vars, cfg, solver, x, spare, &mut objectives);
            let load = loads(&vars, &x);
            return Ok(done(Mode::AllServed, load, 1.0, spare.max(0.0), objectives));
        }
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
    let x1 = checked(solver, &lp)?;
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
    spare_rows(inputs, &vars, &mut lp2, u, &[]);
    match checked(solver, &lp2) {
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
