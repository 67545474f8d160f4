//! Host reports authenticated by TokenReview against the real API server:
//! only the host agent's ServiceAccount, with the dedicated audience, for
//! the node its pod runs on. Everything else gets 401/403 with a reason,
//! changes nothing, and is counted on `/metrics`.

use mplb_kube_tests::control_plane::ISSUER;
use mplb_kube_tests::{kubectl, objects, pki, repo_root};
use serde_json::json;

use crate::support::*;

fn report(node: &str) -> String {
    json!({"node": node, "capacity_millicores": 4000.0, "used_millicores": 1000.0,
           "sampled_at_ms": 1, "interval_ms": 1000, "pods": []})
    .to_string()
}

fn post(ws: &Server, token: Option<&str>, node: &str) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    http(ws.addr, "POST", "/v1/reports", &headers, &report(node))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_host_agents_token_for_its_own_node_may_report() {
    let _serial = SERIAL.lock().await;
    let (cp, c) = control_plane(&weight_server_manifest()).await;
    let agent = std::fs::read_to_string(repo_root().join("envoyfilter/host-agent.yaml")).unwrap();
    let scratch = cp.dir().join("agent-rbac.yaml");
    kubectl::apply_kinds(cp.admin_kubeconfig(), &scratch, &agent, kubectl::RBAC_KINDS).unwrap();
    nodes_and_namespaces(&c, &[("n1", "4"), ("n2", "4")], &["shop"]).await;
    objects::service(&c, "shop", "web", 80, "http")
        .await
        .unwrap();
    objects::running_pod(&c, "shop", "web-a", "web", "n1", "10.1.0.1", 8080)
        .await
        .unwrap();
    // The host agent's pod on n1 (as the DaemonSet would make it).
    let pod = json!({"metadata": {"name": "host-agent-n1", "namespace": "mplb-system"},
        "spec": {"nodeName": "n1", "serviceAccountName": "host-agent",
                 "automountServiceAccountToken": false,
                 "containers": [{"name": "a", "image": "registry.invalid/agent:1"}]}});
    let uid = objects::create_pod(&c, pod).await.unwrap();
    let aud = weight_server::auth::DEFAULT_AUDIENCE;
    let bound = Some(("host-agent-n1", uid.as_str()));
    let good = cp
        .token("mplb-system", "host-agent", &[aud], 3600, bound)
        .await
        .unwrap();
    let kc = service_account_kubeconfig(&cp, "weight-server").await;
    let ws = Server::kube(&kc, &[]);
    ws.until("table", |t| {
        !endpoints(t, "web.shop.svc.cluster.local").is_empty()
    })
    .await;

    let (s, b) = post(&ws, Some(&good), "n1");
    assert_eq!(s, 204, "{b}\n{}", ws.log());
    // Cached: the same token again is accepted.
    assert_eq!(post(&ws, Some(&good), "n1").0, 204);

    let (s, b) = post(&ws, Some(&good), "n2");
    assert_eq!(s, 403, "{b}");
    assert!(
        b.contains("node \\\"n1\\\"") && b.contains("\\\"n2\\\""),
        "{b}"
    );

    let (s, b) = post(&ws, None, "n1");
    assert_eq!((s, b.contains("no bearer token")), (401, true), "{b}");

    let mut forged = good.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    let (s, b) = post(&ws, Some(&forged), "n1");
    assert_eq!((s, b.contains("token rejected")), (401, true), "{b}");

    let wrong_aud = cp
        .token("mplb-system", "host-agent", &[ISSUER], 3600, bound)
        .await
        .unwrap();
    let (s, b) = post(&ws, Some(&wrong_aud), "n1");
    assert_eq!((s, b.contains("token rejected")), (401, true), "{b}");

    let other = cp
        .token("mplb-system", "weight-server", &[aud], 3600, None)
        .await
        .unwrap();
    let (s, b) = post(&ws, Some(&other), "n1");
    assert_eq!(s, 403, "{b}");
    assert!(
        b.contains("system:serviceaccount:mplb-system:weight-server may not"),
        "{b}"
    );

    // Signed by the API server's own key, but expired an hour ago.
    let sa = kube::Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(
        c.clone(),
        "mplb-system",
    )
    .get("host-agent")
    .await
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iss": ISSUER, "aud": [aud], "sub": "system:serviceaccount:mplb-system:host-agent",
        "exp": now - 3600, "iat": now - 7200, "nbf": now - 7200,
        "kubernetes.io": {"namespace": "mplb-system",
                          "serviceaccount": {"name": "host-agent", "uid": sa.metadata.uid.unwrap()}}});
    let expired = pki::jwt_rs256(&cp.sa_key.private, &claims).unwrap();
    let (s, b) = post(&ws, Some(&expired), "n1");
    assert_eq!(s, 401, "{b}");
    assert!(b.contains("expired"), "{b}");
    // The same claims, not expired, are accepted: the refusal was the expiry.
    let mut fresh = claims.clone();
    fresh["exp"] = (now + 3600).into();
    let fresh = pki::jwt_rs256(&cp.sa_key.private, &fresh).unwrap();
    assert_eq!(post(&ws, Some(&fresh), "n1").0, 204, "{}", ws.log());

    let (_, metrics) = http(ws.addr, "GET", "/metrics", &[], "");
    for reason in ["wrong_node", "no_token", "invalid_token", "wrong_account"] {
        assert!(
            metrics.lines().any(|l| l.contains("reports_rejected")
                && l.contains(reason)
                && !l.ends_with(" 0")),
            "{reason} not counted:\n{metrics}"
        );
    }
    let invalid = metrics
        .lines()
        .find(|l| l.contains("reports_rejected") && l.contains("invalid_token"))
        .unwrap();
    assert!(invalid.ends_with(" 3"), "{invalid}");
}
