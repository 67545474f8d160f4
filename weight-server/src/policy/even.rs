//! The `even` policy: equal weights over the ready pods of every service
//! (what Istio does on its own). Also the fallback for services other
//! policies leave out.

use serde_json::json;

use super::{Decision, Policy, PolicyKind, Round};
use crate::topology::{Pod, Topology};

/// The `even` policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Even;

impl Policy for Even {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Even
    }
    fn decide(&self, round: &Round<'_>) -> crate::Result<Decision> {
        Ok(decide(round.topology))
    }
}

/// Equal weights over `pods`; `None` when there is none.
pub fn over(pods: &[&Pod]) -> Option<std::collections::BTreeMap<String, f64>> {
    if pods.is_empty() {
        return None;
    }
    let w = 1.0 / pods.len() as f64;
    Some(pods.iter().map(|p| (p.name.clone(), w)).collect())
}

/// Equal weights for every service with a ready pod.
pub fn decide(topology: &Topology) -> Decision {
    let mut d = Decision::default();
    for (fqdn, pods) in topology.ready_pods_by_service() {
        if !topology.services.contains_key(fqdn) {
            continue;
        }
        if let Some(w) = over(&pods) {
            d.explain.insert(
                fqdn.to_string(),
                json!({"policy": "even", "why": format!("equal share over {} ready pods", w.len())}),
            );
            d.weights.insert(fqdn.to_string(), w);
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::file;

    #[test]
    fn splits_evenly_over_ready_pods_only() {
        let t = file::parse(
            r#"
nodes: [{name: n, capacity_millicores: 1000}]
services: [{name: a, port: 80}, {name: b, port: 80}]
pods:
  - {name: a-0, service: a, node: n, address: "127.0.0.1:1"}
  - {name: a-1, service: a, node: n, address: "127.0.0.1:2"}
  - {name: a-2, service: a, node: n, address: "127.0.0.1:3", ready: false}
  - {name: b-0, service: b, node: n, address: "127.0.0.1:4", ready: false}
"#,
            "cluster.local",
        )
        .unwrap();
        let d = decide(&t);
        let a = &d.weights["a.default.svc.cluster.local"];
        assert_eq!(a.len(), 2);
        assert_eq!(a["a-0"], 0.5);
        assert!(!d.weights.contains_key("b.default.svc.cluster.local"));
    }
}
