//! Kubernetes discovery against a fake API server on loopback (real kube
//! client, real HTTP list + watch): initial sync, pod added, deleted, turning
//! unready, node capacity changes, namespaces, the managed label, and no
//! topology before both Pods and Nodes are synced. One `#[ignore]` test runs
//! against a real cluster (kubeconfig or in-cluster).
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod fake;

use std::sync::Arc;
use std::time::Duration;

use fake::{FakeApi, node, pod};
use weight_server::topology::kube::{KubeConfig, run};
use weight_server::topology::{Topology, TopologyRx};

/// Runs discovery in a task that is aborted on drop.
struct Discovery {
    rx: TopologyRx,
    task: tokio::task::JoinHandle<weight_server::Result<()>>,
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn start(api: &FakeApi, cfg: KubeConfig) -> Discovery {
    let (tx, rx) = tokio::sync::watch::channel(None);
    let task = tokio::spawn(run(api.client(), cfg, tx));
    Discovery { rx, task }
}

impl Discovery {
    /// Wait (at most 20 s) for a published topology satisfying `ok`.
    async fn until(&mut self, what: &str, ok: impl Fn(&Topology) -> bool) -> Arc<Topology> {
        let wait = self.rx.wait_for(|t| t.as_deref().is_some_and(&ok));
        let found = match tokio::time::timeout(Duration::from_secs(20), wait).await {
            Ok(Ok(t)) => Some(t.clone()),
            Ok(Err(_)) => panic!("discovery stopped while waiting for: {what}"),
            Err(_) => None,
        };
        match found {
            Some(t) => t.unwrap(),
            None => panic!(
                "timed out waiting for: {what}; last: {:#?}",
                self.rx.borrow()
            ),
        }
    }
}

const WEB: &str = "web.shop.svc.cluster.local";

fn ready(t: &Topology, pod: &str) -> Option<bool> {
    t.pods.get(pod).map(|p| p.ready)
}

#[tokio::test]
async fn list_then_watch_follows_pod_churn_and_node_capacity() {
    let api = FakeApi::start().await;
    api.apply("Node", node("n1", "4"));
    api.apply("Node", node("n2", "3500m"));
    api.apply("Pod", pod("shop", "web-0", "web", "n1", "10.0.0.1", true));
    api.apply("Pod", pod("shop", "web-1", "web", "n2", "10.0.0.2", true));
    let mut unmanaged = pod("shop", "other-0", "other", "n1", "10.0.0.9", true);
    unmanaged["metadata"]["labels"]["mplb.io/managed"] = "false".into();
    api.apply("Pod", unmanaged);
    let mut d = start(&api, KubeConfig::default());

    // Initial list.
    let t = d.until("initial sync", |t| t.pods.len() == 2).await;
    assert_eq!(t.nodes["n1"].capacity_millicores, 4000.0);
    assert_eq!(t.nodes["n2"].capacity_millicores, 3500.0);
    assert!(
        !t.pods.contains_key("other-0"),
        "unmanaged pod must be filtered by the label"
    );
    let svc = &t.services[WEB];
    assert_eq!(
        (
            svc.name.as_str(),
            svc.namespace.as_str(),
            svc.tenant.as_str()
        ),
        ("web", "shop", "tenant-web")
    );
    assert_eq!(svc.port, 8080);
    assert_eq!(svc.fair_share_millicores, Some(1200.0));
    let p = &t.pods["web-0"];
    assert_eq!(p.address, "10.0.0.1:8080".parse().unwrap());
    assert_eq!(
        (p.uid.as_str(), p.node.as_str(), p.service.as_str()),
        ("uid-web-0", "n1", WEB)
    );
    assert_eq!(p.cpu_request_millicores, Some(250.0));
    assert_eq!(t.ready_pods(WEB).count(), 2);

    // Watch: a pod is added.
    api.apply("Pod", pod("shop", "web-2", "web", "n1", "10.0.0.3", true));
    let t = d.until("pod added", |t| t.pods.contains_key("web-2")).await;
    assert_eq!(t.ready_pods(WEB).count(), 3);

    // A pod becomes unready: it leaves the ready set.
    api.apply("Pod", pod("shop", "web-0", "web", "n1", "10.0.0.1", false));
    let t = d
        .until("pod unready", |t| ready(t, "web-0") == Some(false))
        .await;
    let names: Vec<&str> = t.ready_pods(WEB).map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["web-1", "web-2"]);

    // A pod is deleted.
    api.delete("Pod", "shop", "web-1");
    let t = d
        .until("pod deleted", |t| !t.pods.contains_key("web-1"))
        .await;
    assert_eq!(t.pods.len(), 2);

    // A node's capacity changes; a node joins.
    api.apply("Node", node("n1", "8"));
    api.apply("Node", node("n3", "2"));
    let t = d
        .until("node capacity", |t| {
            t.nodes.get("n1").map(|n| n.capacity_millicores) == Some(8000.0)
                && t.nodes.contains_key("n3")
        })
        .await;
    assert_eq!(t.nodes["n3"].capacity_millicores, 2000.0);

    // The last pod of the service goes: the service goes too.
    api.delete("Pod", "shop", "web-0");
    api.delete("Pod", "shop", "web-2");
    let t = d.until("service gone", |t| t.pods.is_empty()).await;
    assert!(t.services.is_empty());
    // Both watches carried the managed label / no selector as configured.
    let reqs = api.requests();
    assert!(
        reqs.iter().any(|r| r.starts_with("Pod")
            && r.contains("mplb.io/managed=true")
            && r.contains("watch")),
        "{reqs:#?}"
    );
}

#[tokio::test]
async fn only_watched_namespaces_and_statefulset_owners() {
    let api = FakeApi::start().await;
    api.apply("Node", node("n1", "2"));
    let mut db = pod("a", "db-0", "unused", "n1", "10.0.1.1", true);
    db["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("app");
    db["metadata"]["ownerReferences"] = serde_json::json!([{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "s1"}]);
    api.apply("Pod", db);
    api.apply("Pod", pod("b", "web-0", "web", "n1", "10.0.2.1", true));
    let cfg = KubeConfig {
        namespaces: vec!["a".into()],
        cluster_domain: "example.org".into(),
        ..KubeConfig::default()
    };
    let mut d = start(&api, cfg);
    let t = d.until("sync", |t| t.pods.contains_key("db-0")).await;
    assert!(
        t.services.contains_key("db.a.svc.example.org"),
        "{:?}",
        t.services.keys()
    );
    assert!(!t.pods.contains_key("web-0"), "namespace b is not watched");
    // A later pod in the unwatched namespace is not seen; one in `a` is.
    api.apply("Pod", pod("b", "web-1", "web", "n1", "10.0.2.2", true));
    api.apply("Pod", pod("a", "api-0", "api", "n1", "10.0.1.2", true));
    let t = d.until("pod in a", |t| t.pods.contains_key("api-0")).await;
    assert!(!t.pods.contains_key("web-1"));
    assert!(
        api.requests()
            .iter()
            .all(|r| !r.starts_with("Pod") || r.contains("ns=Some(\"a\")"))
    );
}

#[tokio::test]
async fn nothing_is_published_until_nodes_are_synced_too() {
    let api = FakeApi::start().await;
    api.fail_nodes(true);
    api.apply("Node", node("n1", "2"));
    api.apply("Pod", pod("shop", "web-0", "web", "n1", "10.0.0.1", true));
    let mut d = start(&api, KubeConfig::default());
    // Wait until the node list has been tried (and refused) and pods listed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !api.requests().iter().any(|r| r.starts_with("Node")) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "node list never tried"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(d.rx.borrow().is_none(), "published before nodes synced");
    // The node watcher retries with backoff and then syncs.
    api.fail_nodes(false);
    let t = d
        .until("sync after node retry", |t| !t.nodes.is_empty())
        .await;
    assert_eq!(t.pods.len(), 1);
}

/// Against a real cluster: `cargo test -p weight-server --test kube_discovery -- --ignored`
/// with a kubeconfig (or in a pod). Expects the API to answer and nodes to exist.
#[tokio::test]
#[ignore = "needs a real Kubernetes cluster"]
async fn real_cluster_syncs() {
    let client = weight_server::topology::kube::default_client()
        .await
        .expect("kubeconfig or in-cluster config");
    let (tx, mut rx) = tokio::sync::watch::channel(None);
    let task = tokio::spawn(run(client, KubeConfig::default(), tx));
    let synced = tokio::time::timeout(Duration::from_secs(60), rx.wait_for(Option::is_some)).await;
    task.abort();
    let t = synced
        .expect("synced within 60 s")
        .expect("discovery running")
        .clone()
        .unwrap();
    assert!(!t.nodes.is_empty(), "a cluster has nodes");
    assert!(t.nodes.values().all(|n| n.capacity_millicores > 0.0));
}
