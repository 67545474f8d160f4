//! Turns the LP's loads into per-service weights (every round) and keeps the
//! round to build the explain JSON of `GET /admin/explain/{service}` when it
//! is asked for ([`Round`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::model::Inputs;
use super::{Mode, OptimalConfig, Solved};
use crate::policy::{Decision, Explain, Explainer};

const MODEL: &str = "hosts = nodes with a fresh report; background = node use - managed pods' CPU; \
demand = smoothed CPU of a service's pods on known nodes (raised to the tenant's fair share when a \
pod of the tenant sits on a saturated node and its load cannot escape: the measured demand does not \
fit, or a service of the tenant has every ready pod on saturated nodes); if all demand fits: maximise the minimum spare \
fraction over hosts; else maximise the minimum over tenants of served/min(fair share, demand), \
then the minimum spare fraction; pods on unknown nodes keep their last share (an even one if they had none); weight = load / \
service load";

/// Build the [`Decision`]: weights for placed services now, explain for all
/// on demand from the kept round.
pub fn decision(inputs: Inputs, solved: Solved, cfg: &OptimalConfig) -> Decision {
    let round = Round {
        inputs,
        solved,
        cfg: cfg.clone(),
    };
    let mut weights = BTreeMap::new();
    let mut held = BTreeMap::new();
    if round.solved.mode != Mode::Idle {
        for (s, svc) in round.inputs.services.iter().enumerate() {
            let (placed, left_out) = round.outcome(s);
            if left_out.is_none() {
                weights.insert(svc.fqdn.clone(), round.weights(s, placed));
                if !svc.unknown_pods.is_empty() {
                    held.insert(svc.fqdn.clone(), svc.unknown_pods.iter().cloned().collect());
                }
            }
        }
    }
    Decision {
        weights,
        held,
        explain: Explain::lazy(Arc::new(round)),
        failure: None,
        // Background CPU, capacity and demand do not follow the split.
        undamped: true,
        admit: BTreeMap::new(),
    }
}

/// What an `optimal` round computed: enough to explain any of its services.
#[derive(Debug)]
pub struct Round {
    inputs: Inputs,
    solved: Solved,
    cfg: OptimalConfig,
}

impl Explainer for Round {
    fn services(&self) -> Vec<&str> {
        self.inputs
            .services
            .iter()
            .map(|s| s.fqdn.as_str())
            .collect()
    }

    fn explain(&self, service: &str) -> Option<Value> {
        let s = self
            .inputs
            .services
            .iter()
            .position(|s| s.fqdn == service)?;
        Some(self.service(s))
    }
}

impl Round {
    /// The load of LP pod `p`, millicores.
    fn load(&self, p: usize) -> f64 {
        self.solved.load.get(p).copied().unwrap_or(0.0)
    }

    /// Service `s`: the load placed on its pods and why it is left out, if
    /// it is.
    fn outcome(&self, s: usize) -> (f64, Option<String>) {
        let svc = &self.inputs.services[s];
        let placed: f64 = svc.lp_pods.iter().map(|&p| self.load(p)).sum();
        let mut left_out = svc.left_out.clone();
        if left_out.is_none() && !(placed > svc.demand * 1e-9 && placed.is_finite()) {
            left_out = Some("the LP placed none of its load (overloaded)".into());
        }
        (placed, left_out)
    }

    /// The explain JSON of service `s`.
    fn service(&self, s: usize) -> Value {
        let (inputs, solved, cfg) = (&self.inputs, &self.solved, &self.cfg);
        let mut host_load = vec![0.0; inputs.hosts.len()];
        for (p, pod) in inputs.pods.iter().enumerate() {
            host_load[pod.host] += self.load(p);
        }
        let svc = &inputs.services[s];
        let tenant = &inputs.tenants[svc.tenant];
        let (placed, left_out) = self.outcome(s);
        let weights = match left_out {
            None => self.weights(s, placed),
            Some(_) => BTreeMap::new(),
        };
        let ready = svc.ready() as f64;
        let mut pods = Vec::new();
        for &p in &svc.lp_pods {
            let pod = &inputs.pods[p];
            let host = &inputs.hosts[pod.host];
            let load = self.load(p);
            let why = if left_out.is_some() {
                "service left out: even split".to_string()
            } else if load <= placed * cfg.min_weight {
                format!(
                    "no load placed here: node {} is needed by other tenants or is fuller than \
                     the alternatives",
                    host.name
                )
            } else {
                format!(
                    "{:.0}m of the service's {:.0}m placed here; node {} ends with {:.1}% spare",
                    load,
                    placed,
                    host.name,
                    100.0 * (host.available - host_load[pod.host]) / host.capacity
                )
            };
            pods.push(json!({
                "pod": pod.name,
                "node": host.name,
                "node_known": true,
                "node_capacity_millicores": host.capacity,
                "node_used_millicores": host.used,
                "node_background_millicores": host.background,
                "node_saturated": host.saturated,
                "node_spare_fraction_after": (host.available - host_load[pod.host]) / host.capacity,
                "cpu_millicores": pod.cpu,
                "load_millicores": load,
                "weight": weights.get(&pod.name).copied(),
                "why": why,
            }));
        }
        for name in &svc.unknown_pods {
            pods.push(json!({
                "pod": name,
                "node_known": false,
                "weight": weights.get(name).copied(),
                "why": format!(
                    "its node has no fresh CPU report: keeps the share it had last round (an \
                     even 1/{ready} if it had none), no load moved toward it"
                ),
            }));
        }
        json!({
            "policy": "optimal",
            "service": svc.fqdn,
            "tenant": tenant.name,
            "status": match &left_out {
                None => "weighted".to_string(),
                Some(r) => format!("left out ({r}): the caller uses even weights"),
            },
            "mode": solved.mode,
            "solver": solved.solver,
            "solve_ms": solved.solve_ms,
            "stage_objectives": solved.objectives,
            "min_served_over_entitled": solved.min_served_ratio,
            "min_spare_fraction": solved.min_spare_fraction,
            "tenant_fair_share_millicores": tenant.fair_share,
            "tenant_demand_measured_millicores": tenant.demand_measured,
            "tenant_demand_millicores": tenant.demand,
            "tenant_entitled_millicores": tenant.entitled,
            "tenant_throttled": tenant.throttled,
            "service_demand_measured_millicores": svc.demand_measured,
            "service_demand_millicores": svc.demand,
            "service_load_placed_millicores": placed,
            "config": cfg,
            "model": MODEL,
            "pods": pods,
        })
    }

    /// Weights of a placed service: its known pods share `(N−U)/N` in
    /// proportion to their loads, each of the `U` pods on unknown nodes `1/N`.
    fn weights(&self, s: usize, placed: f64) -> BTreeMap<String, f64> {
        let (inputs, cfg) = (&self.inputs, &self.cfg);
        let svc = &inputs.services[s];
        let n = svc.ready() as f64;
        let known_share = svc.lp_pods.len() as f64 / n;
        let raw: Vec<(usize, f64)> = svc
            .lp_pods
            .iter()
            .map(|&p| (p, self.load(p) / placed))
            .collect();
        let above = |w: f64| if w >= cfg.min_weight { w } else { 0.0 };
        let kept: f64 = raw.iter().map(|&(_, w)| above(w)).sum();
        // A threshold that would drop everything is ignored.
        let (raw, kept): (Vec<(usize, f64)>, f64) = if kept > 0.0 {
            (raw.into_iter().map(|(p, w)| (p, above(w))).collect(), kept)
        } else {
            let sum = raw.iter().map(|&(_, w)| w).sum();
            (raw, sum)
        };
        let mut out = BTreeMap::new();
        for (p, w) in raw {
            out.insert(inputs.pods[p].name.clone(), known_share * w / kept);
        }
        for name in &svc.unknown_pods {
            out.insert(name.clone(), 1.0 / n);
        }
        out
    }
}
