//! Levels of spare for the `flow` solver (see `optimal_flow.rs`): place
//! services' whole demand on hosts, maximising the minimum spare fraction
//! by Dinkelbach steps on minimum cuts, then progressive filling; and the
//! spread start every answer's flow is grown from.

use super::model::Inputs;
use crate::policy::maxflow::FlowNet;

pub const SRC: usize = 0;
pub const SINK: usize = 1;
/// Residuals below this (in units of the largest host capacity) are none.
pub const EPS: f64 = 1e-11;
/// Dinkelbach steps per level before giving up (it converges in a few).
pub const MAX_STEPS: usize = 200;

/// Room and capacity of a host, in units of `scale`.
pub fn room(inputs: &Inputs, h: usize, scale: f64) -> (f64, f64) {
    let host = &inputs.hosts[h];
    (host.available / scale, host.capacity / scale)
}

pub fn no_convergence() -> crate::Error {
    crate::Error::Solver("flow: a level did not converge".into())
}

/// Start a flow spread out: service slot `i` splits `want[i]` over its pods
/// in proportion to their host's room `cap[j]` (evenly when none has room),
/// each host's inflow scaled down to its room; `feeds[i]` are the edges from
/// the source to slot `i`. A max-flow grown from nothing piles each service
/// on a few pods; grown from this, the weights stay spread wherever the
/// optimum leaves a choice.
pub fn seed(
    net: &mut FlowNet,
    want: &[f64],
    feeds: &[Vec<usize>],
    pods: &[(usize, usize, usize)],
    sinks: &[usize],
    cap: &[f64],
) {
    let mut room = vec![0.0; want.len()];
    let mut count = vec![0.0; want.len()];
    for &(i, j, _) in pods {
        room[i] += cap[j];
        count[i] += 1.0;
    }
    let share = |i: usize, j: usize| {
        if room[i] > 0.0 {
            want[i] * cap[j] / room[i]
        } else {
            want[i] / count[i]
        }
    };
    let mut inflow = vec![0.0; sinks.len()];
    for &(i, j, _) in pods {
        inflow[j] += share(i, j);
    }
    let mut sent = vec![0.0; want.len()];
    let mut placed = vec![0.0; sinks.len()];
    for &(i, j, e) in pods {
        let x = if inflow[j] > cap[j] {
            share(i, j) * cap[j] / inflow[j]
        } else {
            share(i, j)
        };
        if x > 0.0 {
            net.push(e, x);
            sent[i] += x;
            placed[j] += x;
        }
    }
    for (i, edges) in feeds.iter().enumerate() {
        for &e in edges {
            net.push(e, sent[i]);
        }
    }
    for (j, &e) in sinks.iter().enumerate() {
        net.push(e, placed[j]);
    }
}

/// Place all the demand of `services` on hosts not `frozen`, maximising the
/// minimum spare fraction, then progressive filling: `rounds` levels in
/// all. Writes the loads (millicores) of the services' pods and pushes each
/// level. `None` when the first level is below 0 (not everything fits).
pub fn fill(
    inputs: &Inputs,
    scale: f64,
    mut services: Vec<usize>,
    mut frozen: Vec<bool>,
    rounds: u32,
    load: &mut [f64],
    levels: &mut Vec<f64>,
) -> crate::Result<Option<f64>> {
    let mut first = None;
    let rounds = rounds.max(1);
    // Pods on frozen hosts, or on hosts frozen in a later round without
    // load from this service, carry nothing.
    for &s in &services {
        for &p in &inputs.services[s].lp_pods {
            load[p] = 0.0;
        }
    }
    for round in 0..rounds {
        if services.is_empty() {
            break;
        }
        // Local numbering: source, sink, services, then their open hosts.
        let ns = services.len();
        let mut local = vec![usize::MAX; inputs.hosts.len()];
        let mut hosts = Vec::new();
        let mut ids = Vec::new(); // pod of each slot below
        let mut slots = Vec::new(); // (service slot, host slot, edge), edges added later
        for (i, &s) in services.iter().enumerate() {
            for &p in &inputs.services[s].lp_pods {
                let h = inputs.pods[p].host;
                if frozen[h] {
                    continue;
                }
                if local[h] == usize::MAX {
                    local[h] = hosts.len();
                    hosts.push(h);
                }
                ids.push(p);
                slots.push((i, local[h], 0));
            }
        }
        let mut net = FlowNet::new(2 + ns + hosts.len(), EPS);
        let demand: Vec<f64> = (services.iter())
            .map(|&s| inputs.services[s].demand / scale)
            .collect();
        let feeds: Vec<Vec<usize>> = (demand.iter().enumerate())
            .map(|(i, &d)| vec![net.edge(SRC, 2 + i, d)])
            .collect();
        for (i, j, e) in &mut slots {
            *e = net.edge(2 + *i, 2 + ns + *j, f64::INFINITY);
        }
        let ac: Vec<(f64, f64)> = hosts.iter().map(|&h| room(inputs, h, scale)).collect();
        // Each host's room at spare level `u`.
        let cap_at =
            |u: f64| -> Vec<f64> { ac.iter().map(|&(a, c)| (a - u * c).max(0.0)).collect() };
        let total: f64 = demand.iter().sum();
        let (sum_a, sum_c) = ac.iter().fold((0.0, 0.0), |(x, y), &(a, c)| (x + a, y + c));
        let mut u = ac.iter().map(|&(a, c)| a / c).fold(1.0, f64::min);
        if sum_c > 0.0 {
            u = u.min((sum_a - total) / sum_c);
        }
        if round == 0 && u < -1e-7 {
            return Ok(None);
        }
        let sinks: Vec<usize> = (cap_at(u).into_iter().enumerate())
            .map(|(j, cap)| net.edge(2 + ns + j, SINK, cap))
            .collect();
        let tol = 1e-9 * total + 4.0 * EPS * ns as f64;
        let mut flow = 0.0;
        for step in 0.. {
            flow += net.augment(SRC, SINK);
            if flow >= total - tol {
                break;
            }
            if step >= MAX_STEPS {
                return Err(no_convergence());
            }
            // The cut's services need all of the cut's hosts: its level.
            let side = net.reachable_from(SRC);
            let d: f64 = (0..ns).filter(|&i| side[2 + i]).map(|i| demand[i]).sum();
            let (a, c) = (ac.iter().enumerate())
                .filter(|&(j, _)| side[2 + ns + j])
                .fold((0.0, 0.0), |(x, y), (_, &(a, c))| (x + a, y + c));
            if c <= 0.0 || (a - d) / c >= u - 1e-12 {
                break; // Short only by rounding: keep this flow.
            }
            u = (a - d) / c;
            if round == 0 && u < -1e-7 {
                return Ok(None);
            }
            for (&e, cap) in sinks.iter().zip(cap_at(u)) {
                net.raise(e, cap);
            }
        }
        first.get_or_insert(u);
        levels.push(u);
        // The answer at this level, grown from a spread start.
        net.clear();
        seed(&mut net, &demand, &feeds, &slots, &sinks, &cap_at(u));
        net.augment(SRC, SINK);
        // Hosts that cannot pass more to the sink are full in every answer
        // at this level; services with load there are confined to them.
        let reach = net.reaching(SINK);
        let tight: Vec<bool> = (0..hosts.len()).map(|j| !reach[2 + ns + j]).collect();
        let mut confined = vec![false; ns];
        for &(i, j, e) in &slots {
            if tight[j] && net.flow(e) > EPS {
                confined[i] = true;
            }
        }
        let last = round + 1 == rounds || tight.iter().all(|&t| t) || !tight.contains(&true);
        for (&p, &(i, _, e)) in ids.iter().zip(&slots) {
            if last || confined[i] {
                load[p] = net.flow(e).max(0.0) * scale;
            }
        }
        if last {
            break;
        }
        for (j, &h) in hosts.iter().enumerate() {
            frozen[h] = frozen[h] || tight[j];
        }
        let mut slot = 0;
        services.retain(|_| {
            slot += 1;
            !confined[slot - 1]
        });
    }
    Ok(first)
}
