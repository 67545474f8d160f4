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

/// With `--optimal-calibrate`, a pod whose requests cost more (a bigger
/// share of the CPU than of the served weight) gets less weight than
/// `optimal`'s plan gives it; without it, the plan is served as is.
#[test]
fn calibration_gives_the_costlier_pod_less_weight() {
    let topo = Arc::new(
        crate::topology::file::parse(
            r#"
nodes: [{name: n1, capacity_millicores: 1000}, {name: n2, capacity_millicores: 1000}]
services: [{name: a, port: 80}]
pods:
  - {name: a-0, service: a, node: n1, address: "127.0.0.1:1"}
  - {name: a-1, service: a, node: n2, address: "127.0.0.1:2"}
"#,
            "cluster.local",
        )
        .unwrap(),
    );
    let weights = |calibration: Option<CalibrationConfig>| {
        let (_tx, rx) = tokio::sync::watch::channel(Some(topo.clone()));
        let engine = Engine::new(
            EngineConfig {
                calibration,
                ..EngineConfig::default()
            },
            Arc::new(ManualClock::new(1_000)),
            Store::memory(),
            rx,
            PolicyKind::Optimal,
        )
        .unwrap();
        // Equal weights served, but a-1's requests cost half as much again.
        for (node, pod, cpu) in [("n1", "a-0", 200.0), ("n2", "a-1", 300.0)] {
            let r: HostReport = serde_json::from_value(serde_json::json!({
                "node": node, "capacity_millicores": 1000.0, "used_millicores": cpu,
                "sampled_at_ms": 1, "interval_ms": 1000,
                "pods": [{"uid": pod, "millicores": cpu, "sampled_at_ms": 1}]
            }))
            .unwrap();
            engine.ingest_report(&r).unwrap();
        }
        // The first table serves the plan; the second is calibrated on it.
        engine.recompute().unwrap();
        engine.recompute().unwrap();
        let served = engine.table().unwrap();
        let w: Vec<f64> = served.table.services["a.default.svc.cluster.local"]
            .endpoints
            .iter()
            .map(|e| e.weight)
            .collect();
        w
    };
    let plain = weights(None);
    assert!(
        (plain[0] - 0.5).abs() < 1e-9,
        "the balanced plan: {plain:?}"
    );
    let calibrated = weights(Some(CalibrationConfig::default()));
    assert!(calibrated[0] > calibrated[1] + 0.05, "{calibrated:?}");
}
