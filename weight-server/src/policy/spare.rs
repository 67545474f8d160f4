//! The `spare` policy: a pod's weight is proportional to the spare CPU of
//! its node, `max(capacity - used, floor)`. Nodes without a fresh report get
//! the mean spare of the known nodes; with no known node at all the service
//! is left out (even fallback).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::{CpuView, Decision, Policy, PolicyKind, Round};
use crate::topology::Topology;

/// The `spare` policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spare;

impl Policy for Spare {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Spare
    }
    fn decide(&self, round: &Round<'_>) -> crate::Result<Decision> {
        Ok(decide(round.topology, round.cpu))
    }
}

/// The floor, as a fraction of the node's capacity, so a saturated node
/// still gets a trickle (and its pods stay warm).
pub const FLOOR_FRACTION: f64 = 0.01;

/// Spare CPU of every known node in millicores.
pub fn spare_by_node(topology: &Topology, cpu: &CpuView) -> BTreeMap<String, f64> {
    cpu.nodes
        .iter()
        .filter(|(n, _)| topology.nodes.contains_key(*n))
        .map(|(n, c)| {
            let cap = c.capacity_millicores;
            (
                n.clone(),
                (cap - c.used_millicores).max(cap * FLOOR_FRACTION),
            )
        })
        .collect()
}

/// Weights proportional to node spare CPU.
pub fn decide(topology: &Topology, cpu: &CpuView) -> Decision {
    let mut d = Decision::default();
    let spare = spare_by_node(topology, cpu);
    if spare.is_empty() {
        return d;
    }
    let mean = spare.values().sum::<f64>() / spare.len() as f64;
    for (fqdn, pods) in topology.ready_pods_by_service() {
        if !topology.services.contains_key(fqdn) {
            continue;
        }
        let mut w = BTreeMap::new();
        let mut why = BTreeMap::new();
        let mut held = BTreeSet::new();
        for p in pods {
            let (s, src) = match spare.get(&p.node) {
                Some(s) => (*s, "reported"),
                None => {
                    held.insert(p.name.clone());
                    (
                        mean,
                        "unknown node: keeps its last share (mean of known nodes if none)",
                    )
                }
            };
            w.insert(p.name.clone(), s);
            why.insert(
                p.name.clone(),
                json!({"node": p.node, "spare_millicores": s, "source": src}),
            );
        }
        let sum: f64 = w.values().sum();
        if w.is_empty() || !(sum > 0.0 && sum.is_finite()) {
            continue;
        }
        d.explain.insert(
            fqdn.to_string(),
            json!({"policy": "spare", "floor_fraction": FLOOR_FRACTION, "pods": why,
                   "why": "weight proportional to the spare CPU of the pod's node"}),
        );
        d.weights.insert(fqdn.to_string(), w);
        if !held.is_empty() {
            d.held.insert(fqdn.to_string(), held);
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::NodeCpu;
    use crate::topology::file;

    #[test]
    fn follows_spare_cpu_with_floor_and_mean_for_unknown() {
        let t = file::parse(
            r#"
nodes: [{name: n1, capacity_millicores: 2000}, {name: n2, capacity_millicores: 2000},
        {name: n3, capacity_millicores: 2000}]
services: [{name: a, port: 80}]
pods:
  - {name: a-0, service: a, node: n1, address: "127.0.0.1:1"}
  - {name: a-1, service: a, node: n2, address: "127.0.0.1:2"}
  - {name: a-2, service: a, node: n3, address: "127.0.0.1:3"}
"#,
            "cluster.local",
        )
        .unwrap();
        let mut cpu = CpuView::default();
        cpu.nodes.insert(
            "n1".into(),
            NodeCpu {
                capacity_millicores: 2000.0,
                used_millicores: 500.0,
            },
        );
        cpu.nodes.insert(
            "n2".into(),
            NodeCpu {
                capacity_millicores: 2000.0,
                used_millicores: 2500.0,
            },
        );
        let d = decide(&t, &cpu);
        let w = &d.weights["a.default.svc.cluster.local"];
        assert_eq!(w["a-0"], 1500.0);
        assert_eq!(w["a-1"], 20.0);
        assert_eq!(w["a-2"], 760.0);
        assert!(decide(&t, &CpuView::default()).weights.is_empty());
    }
}
