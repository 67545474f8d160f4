//! Balance and fairness figures of a round, for `/metrics` and the explain
//! answer: per service the use of its pods' nodes (max over average), per
//! tenant served over entitled CPU, Jain's index over tenants, the served
//! table's age and what a round moved. Pure functions: the caller passes the
//! topology, the CPU view, the tables and the time.

use std::collections::BTreeMap;

use mplb_wire::WeightsTable;
use mplb_wire::balance::{ExplainBalance, TenantShare};

use crate::policy::optimal::OptimalConfig;
use crate::policy::optimal::model::Inputs;
use crate::policy::{CpuView, usable};
use crate::topology::Topology;

/// The figures of one round's inputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Use over capacity of every node with a fresh report, by node name.
    pub nodes: BTreeMap<String, f64>,
    /// Per service FQDN: the use of the nodes of its ready pods.
    pub services: BTreeMap<String, Spread>,
    /// Per tenant name.
    pub tenants: BTreeMap<String, TenantShare>,
    /// Jain's index over tenants' served/entitled (capped at 1).
    pub jain: Option<f64>,
}

/// How evenly loaded the nodes of a service's ready pods are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spread {
    /// Use over capacity per known node hosting a ready pod.
    pub node_cpu_fraction: BTreeMap<String, f64>,
    /// Max over average of those; `None` when none is known or all are idle.
    pub max_over_avg: Option<f64>,
}

/// The largest value over the mean; `None` for no values or a zero mean.
pub fn max_over_avg(xs: &[f64]) -> Option<f64> {
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (!xs.is_empty() && mean > 0.0 && mean.is_finite()).then(|| max / mean)
}

/// Jain's fairness index (Σx)² / (n Σx²): 1 when all are equal, 1/n when one
/// gets everything; `None` for no values or all zero.
pub fn jain(xs: &[f64]) -> Option<f64> {
    let sum: f64 = xs.iter().sum();
    let sq: f64 = xs.iter().map(|x| x * x).sum();
    (!xs.is_empty() && sq > 0.0 && sq.is_finite()).then(|| sum * sum / (xs.len() as f64 * sq))
}

/// Seconds from the table's build time to `now_ms` (0 if the clock is behind).
pub fn age_s(table: &WeightsTable, now_ms: u64) -> f64 {
    now_ms.saturating_sub(table.generated_at_ms) as f64 / 1000.0
}

/// Per service of `next`: Σ |weight change| of its pods since `prev` (a pod
/// that came or went counts its whole weight). A service `prev` did not
/// steer moved nothing; a service `next` dropped moved its whole weight.
pub fn moved(prev: Option<&WeightsTable>, next: &WeightsTable) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Some(prev) = prev else {
        return next.services.keys().map(|s| (s.clone(), 0.0)).collect();
    };
    for (svc, n) in &next.services {
        let Some(p) = prev.services.get(svc) else {
            out.insert(svc.clone(), 0.0);
            continue;
        };
        let before: BTreeMap<&str, f64> = p
            .endpoints
            .iter()
            .map(|e| (e.pod.as_str(), e.weight))
            .collect();
        let now: BTreeMap<&str, f64> = n
            .endpoints
            .iter()
            .map(|e| (e.pod.as_str(), e.weight))
            .collect();
        let changed: f64 = now
            .iter()
            .map(|(pod, w)| (w - before.get(pod).copied().unwrap_or(0.0)).abs())
            .sum::<f64>()
            + before
                .iter()
                .filter(|(pod, _)| !now.contains_key(*pod))
                .map(|(_, w)| w.abs())
                .sum::<f64>();
        out.insert(svc.clone(), changed);
    }
    for (svc, p) in &prev.services {
        if !next.services.contains_key(svc) {
            out.insert(
                svc.clone(),
                p.endpoints.iter().map(|e| e.weight.abs()).sum(),
            );
        }
    }
    out
}

/// The figures of `topology` under `cpu`. A tenant is throttled when a ready
/// pod of it sits on a node used at `cfg.saturation_threshold` × capacity or
/// more; its demand is at least its fair share where the `optimal` policy
/// raises it (its load cannot escape the saturation: `model::Inputs`).
pub fn figures(topology: &Topology, cpu: &CpuView, cfg: &OptimalConfig) -> Figures {
    figures_of(topology, cpu, cfg, &Inputs::build(topology, cpu, cfg))
}

/// [`figures`] with `optimal`'s model of the round already built (the
/// engine builds it once for the figures and admission).
pub fn figures_of(
    topology: &Topology,
    cpu: &CpuView,
    cfg: &OptimalConfig,
    model: &Inputs,
) -> Figures {
    let saturation = cfg.saturation_threshold;
    let raised = |tenant: &str| (model.tenants.iter()).any(|t| t.name == tenant && t.raised);
    let mut f = Figures::default();
    for (name, n) in &cpu.nodes {
        let capacity = CpuView::capacity(topology, name, n);
        if capacity > 0.0 {
            f.nodes
                .insert(name.clone(), usable(n.used_millicores) / capacity);
        }
    }
    let mut served: BTreeMap<&str, f64> = BTreeMap::new();
    let mut throttled: BTreeMap<&str, bool> = BTreeMap::new();
    for svc in topology.services.values() {
        served.entry(&svc.tenant).or_default();
        throttled.entry(&svc.tenant).or_default();
        f.services.insert(svc.fqdn.clone(), Spread::default());
    }
    for pod in topology.pods.values() {
        let Some(svc) = topology.services.get(&pod.service) else {
            continue;
        };
        let Some(&frac) = f.nodes.get(&pod.node) else {
            continue;
        };
        *served.entry(&svc.tenant).or_default() +=
            usable(cpu.pods.get(&pod.name).copied().unwrap_or(0.0));
        if pod.ready {
            if frac >= saturation {
                throttled.insert(&svc.tenant, true);
            }
            if let Some(s) = f.services.get_mut(&svc.fqdn) {
                s.node_cpu_fraction.insert(pod.node.clone(), frac);
            }
        }
    }
    for s in f.services.values_mut() {
        let xs: Vec<f64> = s.node_cpu_fraction.values().copied().collect();
        s.max_over_avg = max_over_avg(&xs);
    }
    for (tenant, served) in served {
        let fair = usable(topology.fair_share(tenant));
        let throttled = throttled.get(tenant).copied().unwrap_or(false);
        let demand = if raised(tenant) {
            served.max(fair)
        } else {
            served
        };
        let entitled = fair.min(demand);
        f.tenants.insert(
            tenant.to_string(),
            TenantShare {
                name: tenant.to_string(),
                served_millicores: served,
                fair_share_millicores: fair,
                throttled,
                entitled_millicores: entitled,
                served_over_entitled: (entitled > 0.0).then(|| served / entitled),
            },
        );
    }
    let ratios: Vec<f64> = f
        .tenants
        .values()
        .filter_map(|t| t.served_over_entitled)
        .map(|r| r.min(1.0))
        .collect();
    f.jain = jain(&ratios);
    f
}

impl Figures {
    /// The explain answer's `balance` of `service` (an FQDN), with the served
    /// table's age and what the last round moved for it.
    pub fn explain(
        &self,
        topology: &Topology,
        service: &str,
        table_age_s: Option<f64>,
        moved_last_round: f64,
    ) -> Option<ExplainBalance> {
        let tenant = &topology.services.get(service)?.tenant;
        let spread = self.services.get(service).cloned().unwrap_or_default();
        Some(ExplainBalance {
            node_cpu_fraction: spread.node_cpu_fraction,
            node_cpu_max_over_avg: spread.max_over_avg,
            tenant: self.tenants.get(tenant)?.clone(),
            jain: self.jain,
            table_age_s,
            moved_last_round,
            admit: None,
        })
    }
}

#[cfg(test)]
mod tests;
