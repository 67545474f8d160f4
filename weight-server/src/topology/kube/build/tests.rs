use super::*;

fn pod(v: serde_json::Value) -> corev1::Pod {
    serde_json::from_value(v).unwrap()
}

fn base() -> serde_json::Value {
    serde_json::json!({
        "metadata": {"name": "web-0", "namespace": "shop", "uid": "u-1",
                     "labels": {"app": "web", "mplb.io/tenant": "acme"},
                     "annotations": {"mplb.io/fair-share": "1500m"}},
        "spec": {"nodeName": "n1", "containers": [
            {"name": "a", "ports": [{"containerPort": 8080}], "resources": {"requests": {"cpu": "250m"}}},
            {"name": "b", "resources": {"requests": {"cpu": "0.5"}}}]},
        "status": {"podIP": "10.0.0.7", "phase": "Running",
                   "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

#[test]
fn cpu_quantities_parse_to_millicores() {
    for (q, m) in [
        ("250m", 250.0),
        ("1", 1000.0),
        ("0.5", 500.0),
        ("2k", 2e6),
        ("1e3", 1e6),
        ("100u", 0.1),
        (" 3 ", 3000.0),
        ("1.5", 1500.0),
        ("500000n", 0.5),
    ] {
        let got = cpu_millicores(q).unwrap_or(f64::NAN);
        assert!((got - m).abs() < 1e-9 * m.max(1.0), "{q}: {got}");
    }
    for q in ["", "m", "-1", "abc", "1x", "NaN", "inf", "1e999", "e3"] {
        assert_eq!(cpu_millicores(q), None, "{q}");
    }
    assert_eq!(fair_share_millicores("1500"), Some(1500.0));
    assert_eq!(fair_share_millicores("1500m"), Some(1500.0));
    assert_eq!(fair_share_millicores("-5"), None);
    assert_eq!(fair_share_millicores("lots"), None);
}

#[test]
fn a_full_pod_maps_every_field() {
    let f = pod_facts(&pod(base())).unwrap();
    assert_eq!(f.name, "web-0");
    assert_eq!(f.namespace, "shop");
    assert_eq!(f.uid, "u-1");
    assert_eq!(f.service, "web");
    assert_eq!(f.node, "n1");
    assert_eq!(f.address, "10.0.0.7:8080".parse().unwrap());
    assert!(f.ready);
    assert_eq!(f.cpu_request_millicores, Some(750.0));
    assert_eq!(f.tenant.as_deref(), Some("acme"));
    assert_eq!(f.fair_share_millicores, Some(1500.0));
}

#[test]
fn service_falls_back_to_the_owner_statefulset_and_port_to_the_annotation() {
    let mut v = base();
    v["metadata"]["labels"] = serde_json::json!({});
    v["metadata"]["ownerReferences"] = serde_json::json!([
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "x"}]);
    v["metadata"]["annotations"]["mplb.io/port"] = "9090".into();
    let f = pod_facts(&pod(v)).unwrap();
    assert_eq!(f.service, "db");
    assert_eq!(f.address.port(), 9090);
    assert_eq!(f.tenant, None);
}

#[test]
fn unready_terminating_and_unusable_pods() {
    let mut v = base();
    v["status"]["conditions"][0]["status"] = "False".into();
    assert!(!pod_facts(&pod(v)).unwrap().ready);
    let mut v = base();
    v["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
    assert!(!pod_facts(&pod(v)).unwrap().ready);
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit); 6] = [
        ("no pod IP", |v| {
            v["status"]["podIP"] = serde_json::Value::Null
        }),
        ("not scheduled", |v| {
            v["spec"]["nodeName"] = serde_json::Value::Null
        }),
        ("finished", |v| v["status"]["phase"] = "Succeeded".into()),
        ("bad pod IP", |v| v["status"]["podIP"] = "10.0.0".into()),
        ("bad mplb.io/port annotation", |v| {
            v["metadata"]["annotations"]["mplb.io/port"] = "http".into()
        }),
        ("no `app` label and no owner StatefulSet", |v| {
            v["metadata"]["labels"] = serde_json::json!({})
        }),
    ];
    for (why, edit) in cases {
        let mut v = base();
        edit(&mut v);
        assert_eq!(pod_facts(&pod(v)), Err(why));
    }
    let mut v = base();
    v["spec"]["containers"][1]["resources"]["requests"]["cpu"] = "lots".into();
    assert_eq!(pod_facts(&pod(v)).unwrap().cpu_request_millicores, None);
}

/// Two namespaces each with a service `web`: the short alias `web` would
/// name both, so neither keeps it (the table would fail validation).
#[test]
fn an_ambiguous_short_alias_is_dropped_from_both_services() {
    let mut other = base();
    other["metadata"]["name"] = "web-9".into();
    other["metadata"]["namespace"] = "blog".into();
    let pods = vec![Arc::new(pod(base())), Arc::new(pod(other))];
    let t = topology(&pods, &[], &[], &KubeConfig::default());
    let shop = &t.services["web.shop.svc.cluster.local"];
    let blog = &t.services["web.blog.svc.cluster.local"];
    assert_eq!(shop.aliases, vec!["web.shop", "web.shop.svc"]);
    assert_eq!(blog.aliases, vec!["web.blog", "web.blog.svc"]);
    assert_eq!(t.dropped_aliases, ["web"]);
}

#[test]
fn topology_groups_pods_into_services_and_reads_node_capacity() {
    let node: corev1::Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "n1"},
        "status": {"allocatable": {"cpu": "3500m"}, "capacity": {"cpu": "4"}}}))
    .unwrap();
    let bare: corev1::Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "n2"}, "status": {"capacity": {"cpu": "2"}}}))
    .unwrap();
    let mut second = base();
    second["metadata"]["name"] = "web-1".into();
    second["metadata"]["annotations"] = serde_json::json!({});
    let pods = vec![Arc::new(pod(second)), Arc::new(pod(base()))];
    let t = topology(
        &pods,
        &[Arc::new(node), Arc::new(bare)],
        &[],
        &KubeConfig::default(),
    );
    assert_eq!(t.nodes["n1"].capacity_millicores, 3500.0);
    assert_eq!(t.nodes["n2"].capacity_millicores, 2000.0);
    let svc = &t.services["web.shop.svc.cluster.local"];
    assert_eq!(svc.tenant, "acme");
    assert_eq!(svc.port, 8080);
    assert_eq!(svc.fair_share_millicores, Some(1500.0));
    assert_eq!(svc.aliases, vec!["web", "web.shop", "web.shop.svc"]);
    assert_eq!(t.pods.len(), 2);
    assert_eq!(t.pods["web-1"].service, "web.shop.svc.cluster.local");
    assert_eq!(t.fair_share("acme"), 1500.0);
}

#[test]
fn a_service_sets_the_port_and_its_target_port_the_endpoint_port() {
    let node: corev1::Node =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "n1"}})).unwrap();
    let svc = |target: serde_json::Value| -> Arc<corev1::Service> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"ports": [{"port": 80, "targetPort": target}, {"port": 9}]}}))
            .unwrap(),
        )
    };
    let mut named = base();
    named["spec"]["containers"][0]["ports"] = serde_json::json!([
        {"name": "metrics", "containerPort": 9090}, {"name": "http", "containerPort": 8081}]);
    let pods = vec![Arc::new(pod(named))];
    let nodes = [Arc::new(node)];
    let cfg = KubeConfig::default();
    let t = topology(&pods, &nodes, &[svc("http".into())], &cfg);
    let s = &t.services["web.shop.svc.cluster.local"];
    assert_eq!(s.port, 80);
    assert_eq!(t.pods["web-0"].address, "10.0.0.7:8081".parse().unwrap());
    assert!(t.pods["web-0"].ready);
    let t = topology(&pods, &nodes, &[svc(7000.into())], &cfg);
    assert_eq!(t.pods["web-0"].address.port(), 7000);
    // A named target port the pod lacks: the pod is skipped.
    let t = topology(&pods, &nodes, &[svc("grpc".into())], &cfg);
    assert!(t.pods.is_empty());
    // No Service: the pod's first port, as before; no node: not ready.
    let t = topology(&pods, &[], &[], &cfg);
    assert_eq!(t.services["web.shop.svc.cluster.local"].port, 9090);
    assert!(!t.pods["web-0"].ready);
}
