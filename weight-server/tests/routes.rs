//! Route tests with `tower::ServiceExt::oneshot`: weights (ETag, 304),
//! reports, the admin API, health, readiness, metrics.

mod common;

use common::*;
use http::Method;
use weight_server::admin::AdminAuth;
use weight_server::policy::PolicyKind;

#[tokio::test]
async fn weights_serve_etag_and_304() {
    let h = harness();
    let a = call(&h.app, Method::GET, "/v1/weights", &[], "").await;
    assert_eq!(a.status, 503);
    assert!(
        a.json()["error"]
            .as_str()
            .unwrap()
            .contains("no weights table")
    );
    assert_eq!(
        call(&h.app, Method::GET, "/readyz", &[], "").await.status,
        503
    );

    assert!(h.engine.recompute().unwrap());
    let a = call(&h.app, Method::GET, "/v1/weights", &[], "").await;
    assert_eq!(a.status, 200);
    let etag = a.headers["etag"].to_str().unwrap().to_string();
    let table = mplb_wire::WeightsTable::parse(&a.body).unwrap();
    assert_eq!(etag, format!("\"{}\"", table.version));
    assert_eq!(table.version, T0);
    let profile = &table.services[PROFILE];
    assert!(profile.aliases.contains(&"profile".to_string()));
    let pods: Vec<_> = profile.endpoints.iter().map(|e| e.pod.as_str()).collect();
    assert_eq!(pods, ["profile-0", "profile-1"]);
    // No reports yet: spare has no data, so even.
    assert_eq!(profile.endpoints[0].weight, 0.5);

    let bare = etag.trim_matches('"').to_string();
    let weak = format!("W/{etag}");
    let list = format!("\"1\", {etag}");
    for inm in [
        etag.as_str(),
        bare.as_str(),
        weak.as_str(),
        list.as_str(),
        "*",
    ] {
        let a = call(
            &h.app,
            Method::GET,
            "/v1/weights",
            &[("if-none-match", inm)],
            "",
        )
        .await;
        assert_eq!(a.status, 304, "{inm}");
        assert!(a.body.is_empty());
        assert_eq!(a.headers["etag"], etag.as_str());
    }
    let a = call(
        &h.app,
        Method::GET,
        "/v1/weights",
        &[("if-none-match", "\"1\"")],
        "",
    )
    .await;
    assert_eq!(a.status, 200);
    let r = call(&h.app, Method::GET, "/readyz", &[], "").await;
    assert_eq!(r.status, 200);
    // Nothing changed: the version stays.
    assert!(!h.engine.recompute().unwrap());
}

#[tokio::test]
async fn reports_move_spare_weights_and_age_out() {
    let h = harness();
    h.engine.recompute().unwrap();
    let v0 = h.engine.table().unwrap().table.version;
    // node-a busy, node-b idle: profile moves toward profile-1 (node-b).
    for (node, used) in [("node-a", 1800.0), ("node-b", 200.0), ("node-c", 1000.0)] {
        let a = call(
            &h.app,
            Method::POST,
            "/v1/reports",
            &[],
            report(node, used, &[("profile-0", 300.0)]),
        )
        .await;
        assert_eq!(a.status, 204, "{}", String::from_utf8_lossy(&a.body));
    }
    for _ in 0..12 {
        h.clock.advance(500);
        h.engine.recompute().unwrap();
    }
    let w1 = weight(&h, PROFILE, "profile-1").unwrap();
    // spare: node-a 200, node-b 1800 -> 0.9 (within the dead band).
    assert!((w1 - 0.9).abs() <= 0.02, "{w1}");
    assert!(h.engine.table().unwrap().table.version > v0);
    h.clock.advance(6_000);
    let st = call(&h.app, Method::GET, "/admin/state", &[], "")
        .await
        .state();
    let node_a = &st.nodes["node-a"];
    assert_eq!(node_a.report_age_ms, 12_000);
    assert!(!node_a.fresh);
    assert_eq!(node_a.pods["profile-0"], 300.0);
    // All reports are older than 10 s now: no data, back to even.
    settle(&h);
    let w1 = weight(&h, PROFILE, "profile-1").unwrap();
    assert!((w1 - 0.5).abs() <= 0.02, "{w1}");
}

#[tokio::test]
async fn unknown_pods_and_nodes_are_kept_but_flagged() {
    let h = harness();
    let a = call(
        &h.app,
        Method::POST,
        "/v1/reports",
        &[],
        report("node-x", 10.0, &[("ghost", 1.0)]),
    )
    .await;
    assert_eq!(a.status, 204);
    let st = call(&h.app, Method::GET, "/admin/state", &[], "")
        .await
        .state();
    assert!(!st.nodes["node-x"].known);
    assert_eq!(st.nodes["node-x"].unknown_pods["ghost"], 1.0);
    let m = String::from_utf8(call(&h.app, Method::GET, "/metrics", &[], "").await.body).unwrap();
    assert!(m.contains("mplb_unknown_pods 1"), "{m}");
    assert!(m.contains("mplb_reports_accepted_total 1"), "{m}");
}

#[tokio::test]
async fn the_retired_stats_route_answers_gone() {
    let h = harness();
    let body = r#"{"proxy":"frontend-0","window_ms":1000,"pods":[]}"#;
    let a = call(&h.app, Method::POST, "/v1/stats", &[], body).await;
    assert_eq!(a.status, 410);
    let text = String::from_utf8(a.body).unwrap();
    assert!(text.contains("upgrade the filter"), "{text}");
}

#[tokio::test]
async fn admin_policy_static_drain_and_explain() {
    let h = harness();
    h.engine.recompute().unwrap();
    let a = call(
        &h.app,
        Method::PUT,
        "/admin/policy",
        &[auth()],
        r#"{"policy":"even"}"#,
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.admin().policy, PolicyKind::Even);

    // Operator weights, by alias; normalised; static until deleted.
    let a = call(
        &h.app,
        Method::PUT,
        "/admin/weights/profile",
        &[auth()],
        r#"{"profile-0": 3, "profile-1": 1}"#,
    )
    .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.admin().static_weights[PROFILE]["profile-0"], 0.75);
    settle(&h);
    let w0 = weight(&h, PROFILE, "profile-0").unwrap();
    assert!((w0 - 0.75).abs() <= 0.02, "{w0}");
    let x = call(
        &h.app,
        Method::GET,
        "/admin/explain/profile.default",
        &[],
        "",
    )
    .await
    .explain();
    assert_eq!(x.policy_explain.unwrap()["policy"], "static");
    assert_eq!(x.round.unwrap().source, "policy");

    let a = call(
        &h.app,
        Method::DELETE,
        "/admin/weights/profile",
        &[auth()],
        "",
    )
    .await;
    assert_eq!(a.status, 200);
    assert!(a.admin().static_weights.is_empty());

    // Drain: weight 0 at once, back when undrained.
    let a = call(
        &h.app,
        Method::POST,
        "/admin/drain/profile-0",
        &[auth()],
        "",
    )
    .await;
    assert_eq!(a.status, 200);
    h.engine.recompute().unwrap();
    assert_eq!(weight(&h, PROFILE, "profile-0"), Some(0.0));
    assert_eq!(weight(&h, PROFILE, "profile-1"), Some(1.0));
    let x = call(&h.app, Method::GET, "/admin/explain/profile", &[], "")
        .await
        .explain();
    assert!(x.inputs["profile-0"].drained);
    // The only pod of rate drained: the service leaves the table (fail open).
    call(&h.app, Method::POST, "/admin/drain/rate-0", &[auth()], "").await;
    h.engine.recompute().unwrap();
    assert!(
        !h.engine
            .table()
            .unwrap()
            .table
            .services
            .contains_key("rate.default.svc.cluster.local")
    );
    let a = call(
        &h.app,
        Method::DELETE,
        "/admin/drain/profile-0",
        &[auth()],
        "",
    )
    .await;
    assert_eq!(a.status, 200);
    h.engine.recompute().unwrap();
    assert_eq!(weight(&h, PROFILE, "profile-0"), Some(0.5));

    // Persisted.
    let saved: mplb_wire::admin::AdminState =
        serde_json::from_slice(&std::fs::read(h.dir.path().join("admin-state.json")).unwrap())
            .unwrap();
    assert_eq!(saved.policy, PolicyKind::Even);
    assert_eq!(saved.drains.iter().collect::<Vec<_>>(), ["rate-0"]);
}

#[tokio::test]
async fn mutations_are_refused_without_a_configured_token_unless_insecure() {
    let h = harness_with(AdminAuth::Disabled, PolicyKind::Even, true);
    let a = call(
        &h.app,
        Method::PUT,
        "/admin/policy",
        &[auth()],
        r#"{"policy":"spare"}"#,
    )
    .await;
    assert_eq!(a.status, 403);
    assert!(
        a.json()["error"]
            .as_str()
            .unwrap()
            .contains("--admin-token-file")
    );
    assert_eq!(
        call(&h.app, Method::GET, "/admin/state", &[], "")
            .await
            .status,
        200
    );
    let h = harness_with(AdminAuth::Insecure, PolicyKind::Even, true);
    let a = call(
        &h.app,
        Method::PUT,
        "/admin/policy",
        &[],
        r#"{"policy":"spare"}"#,
    )
    .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn readiness_waits_for_the_topology() {
    let h = harness_with(AdminAuth::Insecure, PolicyKind::Even, false);
    assert!(!h.engine.recompute().unwrap());
    let r = call(&h.app, Method::GET, "/readyz", &[], "").await;
    assert_eq!(r.status, 503);
    assert!(r.json()["error"].as_str().unwrap().contains("topology"));
    weight_server::topology::publish(
        &h.tx,
        weight_server::topology::file::parse(EXAMPLE, "cluster.local").unwrap(),
    );
    assert!(h.engine.recompute().unwrap());
    assert_eq!(
        call(&h.app, Method::GET, "/readyz", &[], "").await.status,
        200
    );
    assert_eq!(
        call(&h.app, Method::GET, "/healthz", &[], "").await.json()["status"],
        "ok"
    );
}

#[tokio::test]
async fn metrics_show_table_version_weights_and_solve_time() {
    let h = harness();
    h.engine.recompute().unwrap();
    call(&h.app, Method::POST, "/v1/reports", &[], "{").await;
    let a = call(&h.app, Method::GET, "/metrics", &[], "").await;
    assert!(
        a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let m = String::from_utf8(a.body).unwrap();
    assert!(m.contains(&format!("mplb_table_version {T0}")), "{m}");
    assert!(
        m.contains(
            "mplb_pod_weight{service=\"profile.default.svc.cluster.local\",pod=\"profile-0\"} 0.5"
        ),
        "{m}"
    );
    assert!(
        m.contains("mplb_solve_seconds_count{policy=\"spare\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("mplb_reports_rejected_total{reason=\"malformed\"} 1"),
        "{m}"
    );
}

#[tokio::test]
async fn a_topology_change_adds_and_removes_endpoints() {
    let h = harness();
    h.engine.recompute().unwrap();
    let v0 = h.engine.table().unwrap().table.version;
    let mut t = weight_server::topology::file::parse(EXAMPLE, "cluster.local").unwrap();
    t.pods.get_mut("profile-1").unwrap().ready = false;
    weight_server::topology::publish(&h.tx, t);
    assert!(h.engine.recompute().unwrap());
    let table = h.engine.table().unwrap();
    assert_eq!(table.table.version, v0 + 1);
    assert_eq!(table.table.services[PROFILE].endpoints.len(), 1);
    assert_eq!(weight(&h, PROFILE, "profile-0"), Some(1.0));
}
