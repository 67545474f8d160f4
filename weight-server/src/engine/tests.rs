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
