//! The real binary's balance figures: per service max/avg node CPU, per
//! tenant served/entitled, Jain's index, the table's age and what a round
//! moved, on `/metrics` and in `GET /admin/explain/{service}`.

mod proc;

use std::collections::BTreeMap;
use std::time::Duration;

use mplb_wire::balance::ExplainBalance;
use proc::*;

/// A node's report: name, used millicores, per pod its millicores.
type NodeReport<'a> = (&'a str, f64, &'a [(&'a str, f64)]);

const PROFILE: &str = "profile.default.svc.cluster.local";

/// `name{labels} value` lines of the OpenMetrics text, by `name{labels}`.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn metrics(srv: &Server) -> BTreeMap<String, f64> {
    let (code, body) = http(srv.addr, "GET", "/metrics", &[], "");
    assert_eq!(code, 200, "{body}");
    samples(&body)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn balance_figures_on_metrics_and_explain() {
    let topo = example("topology.yaml");
    // Rounds only at start and on admin changes: each round is ours.
    let srv = start(&[
        "--topology",
        &topo,
        "--insecure-admin",
        "--insecure-reports",
        "--policy",
        "even",
        "--recompute-interval",
        "1h",
        "--report-debounce",
        "0s",
    ])
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while http(srv.addr, "GET", "/readyz", &[], "").0 != 200 {
        assert!(std::time::Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    // node-a saturated (0.95) with profile-0 and rate-0; node-b, node-c light.
    let nodes: [NodeReport; 3] = [
        ("node-a", 1900.0, &[("profile-0", 300.0), ("rate-0", 400.0)]),
        ("node-b", 300.0, &[("profile-1", 200.0), ("geo-0", 100.0)]),
        ("node-c", 100.0, &[("geo-1", 100.0)]),
    ];
    for _ in 0..3 {
        for (node, used, pods) in nodes {
            let pods: Vec<_> = pods
                .iter()
                .map(|(p, m)| serde_json::json!({"uid": p, "millicores": m, "sampled_at_ms": 1}))
                .collect();
            let body = serde_json::json!({"node": node, "capacity_millicores": 2000.0, "used_millicores": used,
                "sampled_at_ms": 1, "interval_ms": 1000, "pods": pods});
            let (code, answer) = http(srv.addr, "POST", "/v1/reports", &[], &body.to_string());
            assert_eq!(code, 204, "{answer}");
        }
    }
    let v0 = metrics(&srv)["mplb_table_version"];
    // The switch to spare runs one round at once: it moves profile toward node-b.
    set_policy(&srv, "spare");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let m = loop {
        let m = metrics(&srv);
        if m["mplb_table_version"] > v0 {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "no new table: {m:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let svc = |name: &str, s: &str| m[&format!("{name}{{service=\"{s}\"}}")];
    let tenant = |name: &str, t: &str| m[&format!("{name}{{tenant=\"{t}\"}}")];
    // profile sits on node-a (0.95) and node-b (0.15).
    assert!(
        close(
            svc("mplb_service_node_cpu_max_over_avg", PROFILE),
            0.95 / 0.55
        ),
        "{m:?}"
    );
    // profile and rate are throttled on node-a. rate's only pod is there (its
    // load cannot move): entitled to its fair share. profile has a pod on
    // node-b and all demand fits: entitled to what it uses (as `optimal`
    // reads it).
    assert!(
        close(tenant("mplb_tenant_served_millicores", "profile"), 500.0),
        "{m:?}"
    );
    assert!(close(
        tenant("mplb_tenant_entitled_millicores", "profile"),
        500.0
    ));
    assert!(close(
        tenant("mplb_tenant_served_over_entitled", "profile"),
        1.0
    ));
    assert!(close(
        tenant("mplb_tenant_entitled_millicores", "rate"),
        1000.0
    ));
    assert!(close(
        tenant("mplb_tenant_served_over_entitled", "rate"),
        0.4
    ));
    assert!(close(
        tenant("mplb_tenant_served_over_entitled", "geo"),
        1.0
    ));
    let jain = 2.4f64.powi(2) / (3.0 * (1.0 + 0.16 + 1.0));
    assert!(close(m["mplb_tenant_fairness_jain"], jain), "{m:?}");
    let moved = svc("mplb_service_weight_moved", PROFILE);
    assert!(moved > 0.1 && moved <= 2.0, "{m:?}");
    assert!(close(
        m["mplb_round_weight_moved"],
        m.iter()
            .filter(|(k, _)| k.starts_with("mplb_service_weight_moved{"))
            .map(|(_, v)| v)
            .sum()
    ));
    // No round since: the table ages.
    let age = m["mplb_table_age_seconds"];
    assert!((0.0..5.0).contains(&age), "{m:?}");
    std::thread::sleep(Duration::from_millis(1100));
    let later = metrics(&srv)["mplb_table_age_seconds"];
    assert!(later >= age + 1.0, "{age} then {later}");

    let (code, body) = http(srv.addr, "GET", "/admin/explain/profile", &[], "");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let b: ExplainBalance = serde_json::from_value(v["balance"].clone()).unwrap();
    assert_eq!(b.tenant.name, "profile");
    assert!(b.tenant.throttled);
    assert_eq!(
        b.node_cpu_fraction.keys().collect::<Vec<_>>(),
        ["node-a", "node-b"]
    );
    assert!(close(b.node_cpu_max_over_avg.unwrap(), 0.95 / 0.55));
    assert!(close(b.jain.unwrap(), jain));
    assert!(close(b.moved_last_round, moved));
    assert!(b.table_age_s.unwrap() >= 1.0);
}
