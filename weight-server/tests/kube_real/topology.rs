//! Pods, nodes and Services followed through the real API server: readiness,
//! scaling, deletes, node removal, Service target ports, two namespaces,
//! an API server restart, a `410 Gone` relist, and a missing RBAC rule.

use mplb_kube_tests::objects;

use crate::support::*;

const WEB: &str = "web.shop.svc.cluster.local";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_nodes_and_services_are_followed() {
    let _serial = SERIAL.lock().await;
    let (cp, c) = control_plane(&weight_server_manifest()).await;
    nodes_and_namespaces(&c, &[("n1", "4"), ("n2", "2")], &["shop"]).await;
    objects::service(&c, "shop", "web", 80, "http")
        .await
        .unwrap();
    objects::running_pod(&c, "shop", "web-a", "web", "n1", "10.1.0.1", 8080)
        .await
        .unwrap();
    objects::running_pod(&c, "shop", "web-b", "web", "n2", "10.1.0.2", 8080)
        .await
        .unwrap();
    let kc = service_account_kubeconfig(&cp, "weight-server").await;
    let ws = Server::kube(&kc, &[]);
    // The endpoint port is the Service's targetPort (`http`), not the pod's
    // first port (9090, `metrics`).
    let both = vec![
        "web-a=10.1.0.1:8080".to_string(),
        "web-b=10.1.0.2:8080".into(),
    ];
    ws.until("both pods", |t| endpoints(t, WEB) == both).await;

    objects::set_pod_status(&c, "shop", "web-b", "10.1.0.2", false)
        .await
        .unwrap();
    ws.until("web-b unready", |t| {
        endpoints(t, WEB) == ["web-a=10.1.0.1:8080"]
    })
    .await;
    objects::set_pod_status(&c, "shop", "web-b", "10.1.0.2", true)
        .await
        .unwrap();
    ws.until("web-b ready again", |t| endpoints(t, WEB) == both)
        .await;

    objects::running_pod(&c, "shop", "web-c", "web", "n1", "10.1.0.3", 8080)
        .await
        .unwrap();
    ws.until("scaled up", |t| endpoints(t, WEB).len() == 3)
        .await;
    objects::delete_pod(&c, "shop", "web-c", 0).await.unwrap();
    ws.until("scaled down", |t| endpoints(t, WEB) == both).await;

    objects::delete_node(&c, "n2").await.unwrap();
    ws.until("node n2 removed", |t| {
        endpoints(t, WEB) == ["web-a=10.1.0.1:8080"]
    })
    .await;

    // The Service now targets port `metrics`: every endpoint follows.
    let patch = serde_json::json!({"spec": {"ports": [{"name": "http", "port": 80, "targetPort": "metrics"}]}});
    kube::Api::<k8s_openapi::api::core::v1::Service>::namespaced(c.clone(), "shop")
        .patch(
            "web",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    ws.until("service target port", |t| {
        endpoints(t, WEB) == ["web-a=10.1.0.1:9090"]
    })
    .await;

    // A graceful delete (no kubelet confirms it) marks the pod terminating:
    // it leaves the table at once.
    objects::running_pod(&c, "shop", "web-d", "web", "n1", "10.1.0.4", 8080)
        .await
        .unwrap();
    ws.until("web-d", |t| endpoints(t, WEB).len() == 2).await;
    objects::delete_pod(&c, "shop", "web-d", 30).await.unwrap();
    ws.until("terminating web-d", |t| {
        endpoints(t, WEB) == ["web-a=10.1.0.1:9090"]
    })
    .await;
}

/// Two namespaces each with a service `web`: both are served, each with its
/// own pods; the short alias `web` would name both, so neither keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_service_name_in_two_namespaces() {
    let _serial = SERIAL.lock().await;
    let (cp, c) = control_plane(&weight_server_manifest()).await;
    nodes_and_namespaces(&c, &[("n1", "4")], &["shop", "blog"]).await;
    for (ns, ip) in [("shop", "10.1.0.1"), ("blog", "10.2.0.1")] {
        objects::service(&c, ns, "web", 80, "http").await.unwrap();
        let pod = format!("web-{ns}");
        objects::running_pod(&c, ns, &pod, "web", "n1", ip, 8080)
            .await
            .unwrap();
    }
    let kc = service_account_kubeconfig(&cp, "weight-server").await;
    let ws = Server::kube(&kc, &[]);
    let t = ws
        .until("both services", |t| {
            endpoints(t, WEB) == ["web-shop=10.1.0.1:8080"]
                && endpoints(t, "web.blog.svc.cluster.local") == ["web-blog=10.2.0.1:8080"]
        })
        .await;
    assert_eq!(t["services"].as_object().unwrap().len(), 2);
    for (fqdn, svc) in t["services"].as_object().unwrap() {
        let aliases = svc["aliases"].as_array().unwrap();
        assert!(!aliases.iter().any(|a| a == "web"), "{fqdn}: {aliases:?}");
    }
}

/// The watch survives an API server restart (changes made after it are
/// followed), and after a `410 Gone` (etcd compacted past the watch's
/// resource version, while the weight server could not reach the API
/// server) it relists: a pod deleted meanwhile leaves the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_survives_a_restart_and_relists_after_410_gone() {
    let _serial = SERIAL.lock().await;
    let (mut cp, c) = control_plane(&weight_server_manifest()).await;
    nodes_and_namespaces(&c, &[("n1", "4")], &["shop"]).await;
    objects::service(&c, "shop", "web", 80, "http")
        .await
        .unwrap();
    objects::running_pod(&c, "shop", "web-a", "web", "n1", "10.1.0.1", 8080)
        .await
        .unwrap();
    objects::running_pod(&c, "shop", "web-b", "web", "n1", "10.1.0.2", 8080)
        .await
        .unwrap();
    let kc = service_account_kubeconfig(&cp, "weight-server").await;
    let ws = Server::kube(&kc, &[]);
    ws.until("synced", |t| endpoints(t, WEB).len() == 2).await;

    cp.stop_apiserver();
    cp.start_apiserver().await.unwrap();
    let c = cp.admin_client().await.unwrap();
    objects::running_pod(&c, "shop", "web-c", "web", "n1", "10.1.0.3", 8080)
        .await
        .unwrap();
    ws.until("followed after a restart", |t| endpoints(t, WEB).len() == 3)
        .await;

    // While the API server is down for the weight server, a pod goes away and
    // etcd is compacted: the watch's resource version is gone (410).
    cp.stop_apiserver();
    cp.start_apiserver().await.unwrap();
    let c = cp.admin_client().await.unwrap();
    objects::delete_pod(&c, "shop", "web-a", 0).await.unwrap();
    for i in 0..20 {
        objects::set_pod_status(&c, "shop", "web-c", "10.1.0.3", i % 2 == 0)
            .await
            .unwrap();
    }
    objects::set_pod_status(&c, "shop", "web-c", "10.1.0.3", true)
        .await
        .unwrap();
    cp.compact_etcd().await.unwrap();
    cp.stop_apiserver();
    cp.start_apiserver().await.unwrap();
    let t = ws
        .until("relisted after 410", |t| {
            endpoints(t, WEB) == ["web-b=10.1.0.2:8080", "web-c=10.1.0.3:8080"]
        })
        .await;
    assert!(t["version"].as_u64().unwrap() > 1);
    let log = ws.log();
    assert!(
        log.contains("410") || log.contains("Expired") || log.contains("too old"),
        "no 410 seen by the weight server:\n{log}"
    );
}

/// Without one rule of the manifests' ClusterRole (watching Services), the
/// API server refuses the weight server with its own 403 and no table is
/// ever served: the RBAC of `envoyfilter/` is what these tests run with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_rbac_rule_fails_with_the_api_servers_403() {
    let _serial = SERIAL.lock().await;
    let manifest = weight_server_manifest();
    let trimmed = manifest.replace(
        r#"resources: ["pods", "nodes", "services"]"#,
        r#"resources: ["pods", "nodes"]"#,
    );
    assert_ne!(
        trimmed, manifest,
        "the ClusterRole's rule is not where this test expects it"
    );
    let (cp, c) = control_plane(&trimmed).await;
    nodes_and_namespaces(&c, &[("n1", "4")], &["shop"]).await;
    objects::running_pod(&c, "shop", "web-a", "web", "n1", "10.1.0.1", 8080)
        .await
        .unwrap();
    let kc = service_account_kubeconfig(&cp, "weight-server").await;
    let ws = Server::kube(&kc, &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !ws.log().contains("forbidden") && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let log = ws.log();
    assert!(
        log.contains("403") && log.contains("services is forbidden"),
        "no 403 from the API server:\n{log}"
    );
    assert!(ws.table().is_none(), "a table without the services watch");
}
