//! The `static` policy: operator weights set with `PUT /admin/weights/{service}`,
//! restricted to the pods that are ready now. A service without operator
//! weights (or whose weighted pods are all gone) is left out, so the caller
//! falls back to even.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Decision, Policy, PolicyKind, Round};
use crate::topology::Topology;

/// Operator weights by service FQDN, then pod name.
pub use mplb_wire::admin::StaticWeights;

/// The `static` policy: the operator weights alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct Static;

impl Policy for Static {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Static
    }
    fn decide(&self, round: &Round<'_>) -> crate::Result<Decision> {
        Ok(decide(round.topology, round.operator))
    }
}

#[cfg(test)]
thread_local! {
    /// How often [`decide`] ran on this thread (tests prove it runs once a round).
    pub static RUNS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Operator weights for the services that have them.
pub fn decide(topology: &Topology, statics: &StaticWeights) -> Decision {
    #[cfg(test)]
    RUNS.with(|r| r.set(r.get() + 1));
    let mut d = Decision::default();
    if statics.is_empty() {
        return d;
    }
    let by_service = topology.ready_pods_by_service();
    for (fqdn, set) in statics {
        if !topology.services.contains_key(fqdn) {
            continue;
        }
        let w: BTreeMap<String, f64> = by_service
            .get(fqdn.as_str())
            .into_iter()
            .flatten()
            .map(|p| (p.name.clone(), set.get(&p.name).copied().unwrap_or(0.0)))
            .collect();
        let sum: f64 = w.values().sum();
        if !(sum > 0.0 && sum.is_finite()) {
            continue;
        }
        d.explain.insert(
            fqdn.clone(),
            json!({"policy": "static", "operator_weights": set,
                   "why": "operator weights over the ready pods; pods the operator did not name get 0"}),
        );
        d.weights.insert(fqdn.clone(), w);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::file;

    #[test]
    fn uses_operator_weights_of_ready_pods() {
        let t = file::parse(
            r#"
nodes: [{name: n, capacity_millicores: 1000}]
services: [{name: a, port: 80}, {name: b, port: 80}]
pods:
  - {name: a-0, service: a, node: n, address: "127.0.0.1:1"}
  - {name: a-1, service: a, node: n, address: "127.0.0.1:2"}
  - {name: b-0, service: b, node: n, address: "127.0.0.1:4", ready: false}
"#,
            "cluster.local",
        )
        .unwrap();
        let mut s = StaticWeights::new();
        s.insert(
            "a.default.svc.cluster.local".into(),
            [("a-0".to_string(), 0.75), ("a-1".to_string(), 0.25)].into(),
        );
        s.insert(
            "b.default.svc.cluster.local".into(),
            [("b-0".to_string(), 1.0)].into(),
        );
        let d = decide(&t, &s);
        assert_eq!(d.weights["a.default.svc.cluster.local"]["a-0"], 0.75);
        assert!(!d.weights.contains_key("b.default.svc.cluster.local"));
    }
}
