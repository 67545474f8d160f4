//! Admission through the real binary: with `--admission-target` and the
//! `optimal` policy, a cluster whose every node is saturated by two tenants
//! gets `admit` fractions in the table (the over-share tenant shed most),
//! on `/metrics` too; under another policy, or once the demand fits,
//! nothing is shed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod proc;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mplb_wire::WeightsTable;
use proc::*;

const TOPOLOGY: &str = r#"
nodes:
  - {name: node-a, capacity_millicores: 600}
  - {name: node-b, capacity_millicores: 400}
  - {name: node-c, capacity_millicores: 250}
services:
  - {name: frontend, tenant: hotel, port: 8080, fair_share_millicores: 350}
  - {name: profile, tenant: hotel, port: 8081, fair_share_millicores: 350}
  - {name: web, tenant: shop, port: 8082, fair_share_millicores: 550}
pods:
  - {name: frontend-a, service: frontend, node: node-a, address: "127.0.0.1:9001"}
  - {name: frontend-b, service: frontend, node: node-b, address: "127.0.0.1:9002"}
  - {name: frontend-c, service: frontend, node: node-c, address: "127.0.0.1:9003"}
  - {name: profile-a, service: profile, node: node-a, address: "127.0.0.1:9011"}
  - {name: profile-b, service: profile, node: node-b, address: "127.0.0.1:9012"}
  - {name: profile-c, service: profile, node: node-c, address: "127.0.0.1:9013"}
  - {name: web-a, service: web, node: node-a, address: "127.0.0.1:9021"}
  - {name: web-b, service: web, node: node-b, address: "127.0.0.1:9022"}
  - {name: web-c, service: web, node: node-c, address: "127.0.0.1:9023"}
"#;

const FRONTEND: &str = "frontend.default.svc.cluster.local";
const WEB: &str = "web.default.svc.cluster.local";

/// Every node at `load` of its capacity, split 2:1 between hotel's two pods
/// and shop's one (as the kernel splits a saturated node by cgroup).
fn report(srv: &Server, load: f64) {
    for (node, cap) in [("a", 600.0), ("b", 400.0), ("c", 250.0)] {
        let used = cap * load;
        let pods: Vec<_> = [("frontend", 1.0 / 3.0), ("profile", 1.0 / 3.0), ("web", 1.0 / 3.0)]
            .iter()
            .map(|(s, f)| serde_json::json!({"uid": format!("{s}-{node}"), "millicores": used * f, "sampled_at_ms": 1}))
            .collect();
        let body = serde_json::json!({"node": format!("node-{node}"), "capacity_millicores": cap,
            "used_millicores": used, "sampled_at_ms": 1, "interval_ms": 100, "pods": pods});
        let (code, answer) = http(srv.addr, "POST", "/v1/reports", &[], &body.to_string());
        assert_eq!(code, 204, "{answer}");
    }
}

fn table(srv: &Server) -> WeightsTable {
    let (code, body) = http(srv.addr, "GET", "/v1/weights", &[], "");
    assert_eq!(code, 200, "{body}");
    WeightsTable::parse(body.as_bytes()).unwrap()
}

fn admit_metrics(srv: &Server) -> BTreeMap<String, f64> {
    let (_, body) = http(srv.addr, "GET", "/metrics", &[], "");
    body.lines()
        .filter(|l| l.starts_with("mplb_tenant_admit_fraction{"))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// Report `load` until `pred` holds on the served table (10 s at most).
fn until(
    srv: &Server,
    load: f64,
    what: &str,
    pred: impl Fn(&WeightsTable) -> bool,
) -> WeightsTable {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        report(srv, load);
        if http(srv.addr, "GET", "/readyz", &[], "").0 == 200 {
            let t = table(srv);
            if pred(&t) {
                return t;
            }
        }
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_overloaded_cluster_sheds_the_over_share_tenant_at_the_gateways() {
    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("topology.yaml");
    std::fs::write(&topo, TOPOLOGY).unwrap();
    let srv = start(&[
        "--topology",
        topo.to_str().unwrap(),
        "--insecure-admin",
        "--insecure-reports",
        "--policy",
        "optimal",
        "--admission-target",
        "0.95",
        "--admission-period",
        "200ms",
        "--recompute-interval",
        "100ms",
        "--state-dir",
        dir.path().to_str().unwrap(),
    ])
    .unwrap();
    // Every node full: hotel uses 2/3 (833m of its 700m share), shop 1/3.
    let t = until(&srv, 1.0, "hotel shed", |t| {
        t.services[FRONTEND].admit.is_some_and(|a| a < 0.85)
    });
    let hotel = t.services[FRONTEND].admit_fraction();
    assert_eq!(
        t.services["profile.default.svc.cluster.local"].admit,
        Some(hotel),
        "every service of a tenant carries its fraction"
    );
    // shop is under its share: it is shed less, if at all.
    assert!(t.services[WEB].admit_fraction() > hotel, "{t:?}");
    // The explain answer says so too.
    let (code, body) = http(srv.addr, "GET", "/admin/explain/frontend", &[], "");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let shown = v["balance"]["admit"].as_f64().unwrap();
    assert!(shown < 0.85, "{body}");
    let m = admit_metrics(&srv);
    assert!(
        m.contains_key("mplb_tenant_admit_fraction{tenant=\"hotel\"}"),
        "{m:?}"
    );

    // Another policy: admission stops at once.
    set_policy(&srv, "spare");
    until(&srv, 1.0, "no admit under spare", |t| {
        t.services.values().all(|s| s.admit.is_none())
    });
    let (_, body) = http(srv.addr, "GET", "/admin/explain/frontend", &[], "");
    assert!(!body.contains("\"admit\""), "{body}");
    assert!(admit_metrics(&srv).is_empty());

    // Back to optimal, then the demand falls to half the capacity: the
    // fractions climb back to 1 and leave the table.
    set_policy(&srv, "optimal");
    until(&srv, 1.0, "hotel shed again", |t| {
        t.services[FRONTEND].admit.is_some()
    });
    until(&srv, 0.5, "everyone admitted", |t| {
        t.services.values().all(|s| s.admit.is_none())
    });
}
