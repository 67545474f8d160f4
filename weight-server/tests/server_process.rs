//! The real binary: admin state survives a SIGKILL right after a write; a
//! corrupt state file stops the start naming the file; SIGTERM shuts down
//! gracefully.

mod proc;

use std::time::Duration;

use proc::*;

const TOKEN: &str = "integration-token";

fn args<'a>(dir: &'a str, token: &'a str, topo: &'a str) -> Vec<&'a str> {
    vec![
        "--topology",
        topo,
        "--state-dir",
        dir,
        "--admin-token-file",
        token,
        "--policy",
        "even",
    ]
}

#[test]
fn admin_state_survives_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let token = tmp.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let state = tmp.path().join("state");
    let (s, t, topo) = (
        state.to_str().unwrap(),
        token.to_str().unwrap(),
        example("topology.yaml"),
    );
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("authorization", bearer.as_str())];

    let mut srv = start(&args(s, t, &topo)).unwrap();
    assert_eq!(http(srv.addr, "GET", "/readyz", &[], "").0, 200);
    let (code, body) = http(
        srv.addr,
        "PUT",
        "/admin/policy",
        &auth,
        r#"{"policy":"spare"}"#,
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = http(
        srv.addr,
        "PUT",
        "/admin/weights/geo",
        &auth,
        r#"{"geo-0": 1, "geo-1": 3}"#,
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = http(srv.addr, "POST", "/admin/drain/profile-1", &auth, "");
    assert_eq!(code, 200, "{body}");
    // SIGKILL right after the last write's answer.
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
    drop(srv);

    let srv = start(&args(s, t, &topo)).unwrap();
    let (code, body) = http(srv.addr, "GET", "/admin/state", &[], "");
    assert_eq!(code, 200);
    let st = mplb_wire::admin::StateBody::parse(body.as_bytes()).unwrap();
    assert_eq!(st.policy, mplb_wire::admin::PolicyKind::Spare, "{st:?}");
    assert_eq!(st.drains.iter().collect::<Vec<_>>(), ["profile-1"]);
    assert_eq!(
        st.static_weights["geo.default.svc.cluster.local"]["geo-1"],
        0.75
    );
    let (code, body) = http(srv.addr, "GET", "/v1/weights", &[], "");
    assert_eq!(code, 200);
    let table = mplb_wire::WeightsTable::parse(body.as_bytes()).unwrap();
    let profile = &table.services["profile.default.svc.cluster.local"].endpoints;
    assert_eq!(
        (profile[1].pod.as_str(), profile[1].weight),
        ("profile-1", 0.0)
    );
    let geo = &table.services["geo.default.svc.cluster.local"].endpoints;
    assert_eq!(geo[1].weight, 0.75);
}

#[test]
fn a_corrupt_state_file_stops_the_start_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let token = tmp.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::write(state.join("admin-state.json"), b"{\"policy\": \"spa").unwrap();
    let topo = example("topology.yaml");
    let err = match start(&args(
        state.to_str().unwrap(),
        token.to_str().unwrap(),
        &topo,
    )) {
        Ok(_) => panic!("started with a corrupt state file"),
        Err(e) => e,
    };
    assert!(
        err.contains("admin-state.json") && err.contains("corrupt"),
        "{err}"
    );
    // The file is left as it was.
    assert_eq!(
        std::fs::read(state.join("admin-state.json")).unwrap(),
        b"{\"policy\": \"spa"
    );
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let topo = example("topology.yaml");
    let mut srv = start(&["--topology", &topo, "--insecure-admin"]).unwrap();
    assert_eq!(http(srv.addr, "GET", "/healthz", &[], "").0, 200);
    let pid = srv.child.id().to_string();
    let st = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = srv.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let log: Vec<String> = srv.lines.try_iter().collect();
    assert!(log.iter().any(|l| l.contains("SIGTERM")), "{log:?}");
}

#[test]
fn bad_flags_and_files_fail_the_start_with_a_reason() {
    let err = start(&["--topology", "/nonexistent/topo.yaml"])
        .err()
        .unwrap();
    assert!(err.contains("/nonexistent/topo.yaml"), "{err}");
    let err = start(&[]).err().unwrap();
    assert!(err.contains("--topology"), "{err}");
    let topo = example("topology.yaml");
    let err = start(&["--topology", &topo, "--damping", "2"])
        .err()
        .unwrap();
    assert!(err.contains("--damping"), "{err}");
}

#[test]
fn the_recompute_loop_follows_admin_changes_and_reports() {
    let topo = example("topology.yaml");
    let srv = start(&[
        "--topology",
        &topo,
        "--insecure-admin",
        "--insecure-reports",
        "--policy",
        "spare",
        "--recompute-interval",
        "200ms",
    ])
    .unwrap();
    let weights = || {
        let (code, body) = http(srv.addr, "GET", "/v1/weights", &[], "");
        assert_eq!(code, 200);
        mplb_wire::WeightsTable::parse(body.as_bytes()).unwrap()
    };
    let w = |t: &mplb_wire::WeightsTable, pod: &str| {
        t.services["profile.default.svc.cluster.local"]
            .endpoints
            .iter()
            .find(|e| e.pod == pod)
            .unwrap()
            .weight
    };
    let until = |what: &str, ok: &dyn Fn(&mplb_wire::WeightsTable) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let t = weights();
            if ok(&t) {
                return t;
            }
            assert!(std::time::Instant::now() < deadline, "{what}: {t:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let v0 = weights().version;
    let (code, _) = http(srv.addr, "POST", "/admin/drain/profile-0", &[], "");
    assert_eq!(code, 200);
    let t = until("drain", &|t| w(t, "profile-0") == 0.0);
    assert!(t.version > v0);
    http(srv.addr, "DELETE", "/admin/drain/profile-0", &[], "");
    // node-a nearly full, node-b idle: spare moves profile toward profile-1.
    for _ in 0..3 {
        for (node, used) in [("node-a", 1900.0), ("node-b", 100.0)] {
            let body = serde_json::json!({"node": node, "capacity_millicores": 2000.0, "used_millicores": used,
                "sampled_at_ms": 1, "interval_ms": 1000, "pods": []});
            assert_eq!(
                http(srv.addr, "POST", "/v1/reports", &[], &body.to_string()).0,
                204
            );
        }
    }
    until("spare", &|t| w(t, "profile-1") > 0.9);
}

#[test]
fn a_report_triggers_a_round_without_waiting_for_the_interval() {
    let topo = example("topology.yaml");
    let srv = start(&[
        "--topology",
        &topo,
        "--insecure-reports",
        "--policy",
        "optimal",
        "--recompute-interval",
        "1h",
        "--report-debounce",
        "100ms",
    ])
    .unwrap();
    let weights = || {
        let (code, body) = http(srv.addr, "GET", "/v1/weights", &[], "");
        (code == 200).then(|| mplb_wire::WeightsTable::parse(body.as_bytes()).unwrap())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let v0 = loop {
        if let Some(t) = weights() {
            break t.version;
        }
        assert!(std::time::Instant::now() < deadline, "no first table");
        std::thread::sleep(Duration::from_millis(50));
    };
    // `optimal` (undamped: it follows reports) moves profile off the busy node-a.
    let reports = [
        (
            "node-a",
            1900.0,
            serde_json::json!([{"uid": "profile-0", "millicores": 300.0, "sampled_at_ms": 1}]),
        ),
        (
            "node-b",
            300.0,
            serde_json::json!([{"uid": "profile-1", "millicores": 200.0, "sampled_at_ms": 1}]),
        ),
    ];
    for (node, used, pods) in reports {
        let body = serde_json::json!({"node": node, "capacity_millicores": 2000.0, "used_millicores": used,
            "sampled_at_ms": 1, "interval_ms": 1000, "pods": pods});
        assert_eq!(
            http(srv.addr, "POST", "/v1/reports", &[], &body.to_string()).0,
            204
        );
    }
    // The interval is an hour: only the reports can start the round.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let t = weights().unwrap();
        if t.version > v0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no round after the reports: {t:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `--topology kube` builds a TLS client. When the workspace is built as a
/// whole, rustls has two crypto providers compiled in (kube's ring and
/// reqwest's aws-lc-rs) and would panic unless the binary picks one.
#[test]
fn kube_topology_starts_with_an_https_api_server_and_is_not_ready() {
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
         clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n\
         users: [{name: u, user: {token: t}}]\n\
         contexts: [{name: c, context: {cluster: c, user: u}}]\n",
    )
    .unwrap();
    let srv = start_env(
        &["--topology", "kube", "--insecure-admin"],
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
    )
    .unwrap_or_else(|log| panic!("the server did not start:\n{log}"));
    assert_eq!(http(srv.addr, "GET", "/healthz", &[], "").0, 200);
    // No API server answers: never synced, so not ready, and still alive.
    assert_eq!(http(srv.addr, "GET", "/readyz", &[], "").0, 503);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(http(srv.addr, "GET", "/healthz", &[], "").0, 200);
}
