//! Operator weights over another policy: the services an operator set
//! weights for (`PUT /admin/weights/{service}`) get them, whatever the
//! policy decided; the others keep the policy's answer. When the policy
//! fails, its services fall back to even and the operator weights still
//! apply.

use super::{Decision, Policy, PolicyKind, Round, static_};

/// `inner` with operator weights laid over it.
#[derive(Debug)]
pub struct Operator<P> {
    inner: P,
}

impl<P: Policy> Operator<P> {
    /// Lay operator weights over `inner`.
    pub fn over(inner: P) -> Self {
        Operator { inner }
    }
}

impl<P: Policy> Policy for Operator<P> {
    fn kind(&self) -> PolicyKind {
        self.inner.kind()
    }

    fn decide(&self, round: &Round<'_>) -> crate::Result<Decision> {
        let mut decision = self.inner.decide(round).unwrap_or_else(|e| {
            tracing::warn!(policy = %self.inner.kind(), error = %e,
                "policy failed; every service falls back to even");
            Decision {
                failure: Some(e.to_string()),
                ..Decision::default()
            }
        });
        let overrides = static_::decide(round.topology, round.operator);
        for (svc, w) in overrides.weights {
            decision.held.remove(&svc);
            decision.weights.insert(svc.clone(), w);
            if let Some(x) = overrides.explain.get(&svc) {
                decision.explain.insert(svc, x);
            }
        }
        Ok(decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{CpuView, Decision, even::Even};
    use crate::topology::file;

    /// Always fails.
    #[derive(Debug)]
    struct Broken;

    impl Policy for Broken {
        fn kind(&self) -> PolicyKind {
            PolicyKind::Optimal
        }
        fn decide(&self, _: &Round<'_>) -> crate::Result<Decision> {
            Err(crate::Error::Solver("no answer".into()))
        }
    }

    #[test]
    fn operator_weights_win_and_survive_a_failed_policy() {
        let t = file::parse(
            r#"
nodes: [{name: n, capacity_millicores: 1000}]
services: [{name: a, port: 80}, {name: b, port: 80}]
pods:
  - {name: a-0, service: a, node: n, address: "127.0.0.1:1"}
  - {name: a-1, service: a, node: n, address: "127.0.0.1:2"}
  - {name: b-0, service: b, node: n, address: "127.0.0.1:3"}
"#,
            "cluster.local",
        )
        .unwrap();
        let mut op = static_::StaticWeights::new();
        op.insert(
            "a.default.svc.cluster.local".into(),
            [("a-0".to_string(), 1.0)].into(),
        );
        let cpu = CpuView::default();
        let round = Round {
            topology: &t,
            cpu: &cpu,
            operator: &op,
        };
        let d = Operator::over(Even).decide(&round).unwrap();
        assert_eq!(d.weights["a.default.svc.cluster.local"]["a-1"], 0.0);
        assert_eq!(d.weights["b.default.svc.cluster.local"]["b-0"], 1.0);
        assert!(d.failure.is_none());
        let d = Operator::over(Broken).decide(&round).unwrap();
        assert_eq!(d.failure.as_deref(), Some("LP solver: no answer"));
        assert_eq!(d.weights.len(), 1);
        assert_eq!(d.weights["a.default.svc.cluster.local"]["a-0"], 1.0);
        assert_eq!(Operator::over(Broken).kind(), PolicyKind::Optimal);
    }
}
