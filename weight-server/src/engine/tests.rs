use std::sync::Arc;

use k8s_openapi::api::core::v1 as corev1;

use super::*;
use crate::clock::ManualClock;
use crate::topology::kube::{KubeConfig, build};

fn web_pod(name: &str, namespace: &str, ip: &str) -> Arc<corev1::Pod> {
    let v = serde_json::json!({
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "web"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "a", "ports": [{"containerPort": 8080}]}]},
        "status": {"podIP": ip, "phase": "Running",
                   "conditions": [{"type": "Ready", "status": "True"}]}
    });
    Arc::new(serde_json::from_value(v).unwrap())
}

/// Two namespaces each with a service `web` (the Kubernetes topology): every
/// round used to fail on the ambiguous short alias `web`; now the round
/// publishes a table in which neither service claims it.
#[test]
fn rounds_succeed_when_two_namespaces_share_a_service_name() {
    let pods = [
        web_pod("web-0", "shop", "10.0.0.1"),
        web_pod("web-1", "blog", "10.0.0.2"),
    ];
    // A pod on a node the API server does not list is not ready.
    let node: Arc<corev1::Node> =
        Arc::new(serde_json::from_value(serde_json::json!({"metadata": {"name": "n1"}})).unwrap());
    let topo = build::topology(&pods, &[node], &[], &KubeConfig::default());
    let (_tx, rx) = tokio::sync::watch::channel(Some(Arc::new(topo)));
    let engine = Engine::new(
        EngineConfig::default(),
        Arc::new(ManualClock::new(1_000)),
        Store::memory(),
        rx,
        PolicyKind::Even,
    )
    .unwrap();
    assert!(engine.recompute().unwrap(), "a table is published");
    let served = engine.table().unwrap();
    assert_eq!(served.table.services.len(), 2);
    for svc in served.table.services.values() {
        assert!(!svc.aliases.iter().any(|a| a == "web"), "{:?}", svc.aliases);
    }
    assert_eq!(
        engine.resolve_service("web.blog").as_deref(),
        Some("web.blog.svc.cluster.local")
    );
}

/// One pod `a-0` of service `a` on node `n1`.
fn one_service() -> Arc<Topology> {
    Arc::new(
        crate::topology::file::parse(
            r#"
nodes: [{name: n1, capacity_millicores: 1000}]
services: [{name: a, port: 80}]
pods:
  - {name: a-0, service: a, node: n1, address: "127.0.0.1:1"}
  - {name: a-1, service: a, node: n1, address: "127.0.0.1:2"}
"#,
            "cluster.local",
        )
        .unwrap(),
    )
}

/// The operator weights are computed once a round, under `static` as under
/// any other policy (they used to be computed twice under `static`).
#[test]
fn operator_weights_are_computed_once_a_round() {
    use crate::policy::static_::RUNS;
    let (_tx, rx) = tokio::sync::watch::channel(Some(one_service()));
    let engine = Engine::new(
        EngineConfig::default(),
        Arc::new(ManualClock::new(1_000)),
        Store::memory(),
        rx,
        PolicyKind::Static,
    )
    .unwrap();
    engine
        .set_static(
            "a",
            [("a-0".to_string(), 3.0), ("a-1".to_string(), 1.0)].into(),
        )
        .unwrap();
    for policy in [PolicyKind::Static, PolicyKind::Even, PolicyKind::Spare] {
        engine.set_policy(policy).unwrap();
        RUNS.with(|r| r.set(0));
        engine.recompute().unwrap();
        assert_eq!(RUNS.with(|r| r.get()), 1, "{policy}");
        let served = engine.table().unwrap();
        let svc = &served.table.services["a.default.svc.cluster.local"];
        let w: Vec<f64> = svc.endpoints.iter().map(|e| e.weight).collect();
        assert!(w[0] > w[1], "{policy}: {w:?}");
    }
}
