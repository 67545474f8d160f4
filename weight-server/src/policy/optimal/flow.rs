//! The stages of the `optimal` LP solved exactly as parametric maximum flows
//! (the default solver). The LP is a transportation problem: services send
//! their demand over their pods to hosts, so each stage is a bipartite flow
//! question with one parameter, answered by Dinkelbach's method on minimum
//! cuts (each cut gives the exact level at which that set of hosts is the
//! bottleneck; a handful of max-flows per stage).
//!
//! * All demand fits: the largest spare level `u` such that every service's
//!   demand fits on hosts with room `A_h − u·C_h`. At the optimum, the hosts
//!   that cannot reach the sink in the residual graph are full in every
//!   optimum (the bottleneck); they and the services confined to them are
//!   frozen and the level of the rest is raised (progressive filling, up to
//!   [`OptimalConfig::balance_rounds`] levels).
//! * Overloaded: the largest `t` such that every guarded tenant gets
//!   `t·min(F_s, D_s)` with hard room `A_h`; then, holding those floors, the
//!   flow is grown to the most load served (augmenting paths from the source
//!   never lower a tenant's flow). Hosts on the source side of that final cut
//!   are full in every such answer; the fully served services off it are
//!   balanced over the remaining hosts as in the first case.

use std::time::Instant;

use super::levels::{EPS, MAX_STEPS, SINK, SRC, fill, no_convergence, room, seed};
use super::model::Inputs;
use super::solve::min_spare;
use super::{Mode, OptimalConfig, Solved};
use crate::policy::maxflow::FlowNet;

/// Overloaded: max-min served/entitled, then most served, then balance
/// what is fully served. Returns (ratio, objectives).
fn overloaded(
    inputs: &Inputs,
    cfg: &OptimalConfig,
    scale: f64,
    placed: &[usize],
    load: &mut [f64],
) -> crate::Result<(f64, Vec<f64>)> {
    let nt = inputs.tenants.len();
    let svc_node = |k: usize| 2 + nt + k;
    let host_node = |h: usize| 2 + nt + placed.len() + h;
    let mut net = FlowNet::new(2 + nt + placed.len() + inputs.hosts.len(), EPS);
    let tenant_edges: Vec<usize> = (0..nt).map(|i| net.edge(SRC, 2 + i, 0.0)).collect();
    let mut tenant_demand = vec![0.0; nt];
    let mut ids = Vec::new(); // pod of each slot below
    let mut slots = Vec::new(); // (service slot, host, edge)
    let mut feeds = Vec::new();
    for (k, &s) in placed.iter().enumerate() {
        let svc = &inputs.services[s];
        tenant_demand[svc.tenant] += svc.demand / scale;
        let feed = net.edge(2 + svc.tenant, svc_node(k), svc.demand / scale);
        feeds.push(vec![tenant_edges[svc.tenant], feed]);
        for &p in &svc.lp_pods {
            let h = inputs.pods[p].host;
            ids.push(p);
            slots.push((k, h, net.edge(svc_node(k), host_node(h), f64::INFINITY)));
        }
    }
    // Every host gets a sink edge (unused ones carry nothing and are never
    // on the source side of a cut).
    let cap: Vec<f64> = (0..inputs.hosts.len())
        .map(|h| room(inputs, h, scale).0)
        .collect();
    let sinks: Vec<usize> = (cap.iter().enumerate())
        .map(|(h, &a)| net.edge(host_node(h), SINK, a))
        .collect();
    let guarded: Vec<(usize, f64)> = (inputs.tenants.iter().enumerate())
        .map(|(i, t)| (i, (t.entitled / scale).min(tenant_demand[i])))
        .filter(|&(_, e)| e > 1e-9)
        .collect();

    // Max-min served/entitled by Dinkelbach from t = 1.
    let mut t = 1.0_f64;
    let entitled: f64 = guarded.iter().map(|&(_, e)| e).sum();
    for step in 0.. {
        if guarded.is_empty() {
            break;
        }
        net.clear();
        for &(i, e) in &guarded {
            net.raise(tenant_edges[i], t * e);
        }
        let flow = net.augment(SRC, SINK);
        if flow >= t * entitled - (1e-9 * entitled + 4.0 * EPS * nt as f64) {
            break;
        }
        if step >= MAX_STEPS {
            return Err(no_convergence());
        }
        let side = net.reachable_from(SRC);
        let mut rest: f64 = (placed.iter().enumerate())
            .filter(|&(k, &s)| !side[svc_node(k)] && side[2 + inputs.services[s].tenant])
            .map(|(_, &s)| inputs.services[s].demand / scale)
            .sum();
        rest += (cap.iter().enumerate())
            .filter(|&(h, _)| side[host_node(h)])
            .map(|(_, &a)| a)
            .sum::<f64>();
        let inside: f64 = (guarded.iter())
            .filter(|&&(i, _)| side[2 + i])
            .map(|&(_, e)| e)
            .sum();
        if inside <= 0.0 || rest / inside >= t - 1e-12 {
            break;
        }
        t = (rest / inside).max(0.0);
    }
    let ratio = if guarded.is_empty() {
        1.0
    } else {
        t.clamp(0.0, 1.0)
    };
    // The floors again, grown from a spread start (tenant over its services
    // by demand, service over its pods by host room).
    net.clear();
    let mut floor = vec![0.0; nt];
    for &(i, e) in &guarded {
        floor[i] = t * e;
    }
    let want: Vec<f64> = (placed.iter())
        .map(|&s| {
            let svc = &inputs.services[s];
            let d = tenant_demand[svc.tenant];
            if d > 0.0 {
                floor[svc.tenant] * (svc.demand / scale) / d
            } else {
                0.0
            }
        })
        .collect();
    seed(&mut net, &want, &feeds, &slots, &sinks, &cap);
    net.augment(SRC, SINK);

    // Most served with those floors: raise every tenant to its demand.
    for (i, &e) in tenant_edges.iter().enumerate() {
        net.raise(e, tenant_demand[i]);
    }
    net.augment(SRC, SINK);
    let served: f64 = tenant_edges.iter().map(|&e| net.flow(e)).sum();

    // Source side: partly served services and full hosts, fixed. The rest
    // is fully served: balance it.
    let side = net.reachable_from(SRC);
    let mut rest = Vec::new();
    for (k, &s) in placed.iter().enumerate() {
        if !side[svc_node(k)] {
            rest.push(s);
        }
    }
    for (&p, &(_, _, e)) in ids.iter().zip(&slots) {
        load[p] = net.flow(e).max(0.0) * scale;
    }
    let frozen: Vec<bool> = (0..inputs.hosts.len())
        .map(|h| side[host_node(h)])
        .collect();
    let mut objectives = vec![ratio, served];
    let mut balanced = load.to_vec();
    match fill(
        inputs,
        scale,
        rest,
        frozen,
        cfg.balance_rounds,
        &mut balanced,
        &mut objectives,
    ) {
        Ok(Some(_)) => load.copy_from_slice(&balanced),
        // The fully served services did fit in the max-flow, so neither is
        // expected; the max-flow's loads are a valid answer either way.
        Ok(None) => tracing::warn!(
            "optimal/flow: the fully served services did not fit when balanced; keeping the max-flow loads"
        ),
        Err(e) => tracing::warn!(
            error = %e,
            "optimal/flow: balancing the fully served services failed; keeping the max-flow loads"
        ),
    }
    Ok((ratio, objectives))
}

/// Run the stages with max-flows.
pub fn solve(inputs: &Inputs, cfg: &OptimalConfig) -> crate::Result<Solved> {
    let started = Instant::now();
    let done = |mode, load, ratio, spare, objectives| Solved {
        mode,
        load,
        min_served_ratio: ratio,
        min_spare_fraction: spare,
        objectives,
        solver: "flow",
        solve_ms: started.elapsed().as_secs_f64() * 1e3,
    };
    let mut load = vec![0.0; inputs.pods.len()];
    if inputs.placed().next().is_none() {
        return Ok(done(Mode::Idle, load, 1.0, 1.0, Vec::new()));
    }
    let scale = (inputs.hosts.iter())
        .map(|h| h.capacity)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let placed: Vec<usize> = inputs.placed().map(|(s, _)| s).collect();
    let mut levels = Vec::new();
    let frozen = vec![false; inputs.hosts.len()];
    let fits = fill(
        inputs,
        scale,
        placed.clone(),
        frozen,
        cfg.balance_rounds,
        &mut load,
        &mut levels,
    )?;
    if let Some(level) = fits {
        return Ok(done(Mode::AllServed, load, 1.0, level.max(0.0), levels));
    }
    load.fill(0.0);
    let (ratio, objectives) = overloaded(inputs, cfg, scale, &placed, &mut load)?;
    let spare = min_spare(inputs, &load);
    Ok(done(Mode::Overloaded, load, ratio, spare, objectives))
}
