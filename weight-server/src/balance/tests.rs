use super::*;
use crate::policy::NodeCpu;
use crate::policy::optimal::OptimalConfig;
use mplb_wire::{Endpoint, ServiceWeights};

const TOPO: &str = r#"
nodes:
  - {name: a, capacity_millicores: 1000}
  - {name: b, capacity_millicores: 1000}
  - {name: c, capacity_millicores: 2000}
services:
  - {name: hotel, tenant: hotel, port: 80, fair_share_millicores: 600}
  - {name: batch, tenant: batch, port: 80, fair_share_millicores: 400}
pods:
  - {name: hotel-0, service: hotel, node: a, address: "127.0.0.1:1"}
  - {name: hotel-1, service: hotel, node: b, address: "127.0.0.1:2"}
  - {name: hotel-2, service: hotel, node: c, address: "127.0.0.1:3"}
  - {name: batch-0, service: batch, node: a, address: "127.0.0.1:4"}
"#;

const HOTEL: &str = "hotel.default.svc.cluster.local";
const BATCH: &str = "batch.default.svc.cluster.local";

fn cpu(nodes: &[(&str, f64, f64)], pods: &[(&str, f64)]) -> CpuView {
    CpuView {
        nodes: nodes
            .iter()
            .map(|(n, c, u)| {
                (
                    n.to_string(),
                    NodeCpu {
                        capacity_millicores: *c,
                        used_millicores: *u,
                    },
                )
            })
            .collect(),
        pods: pods.iter().map(|(p, c)| (p.to_string(), *c)).collect(),
        ..CpuView::default()
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn max_over_avg_and_jain_on_edges() {
    assert_eq!(max_over_avg(&[]), None);
    assert_eq!(max_over_avg(&[0.0, 0.0]), None);
    assert!(close(max_over_avg(&[0.5, 0.5]).unwrap(), 1.0));
    assert!(close(max_over_avg(&[0.9, 0.3]).unwrap(), 1.5));
    assert_eq!(jain(&[]), None);
    assert_eq!(jain(&[0.0]), None);
    assert!(close(jain(&[1.0, 1.0, 1.0]).unwrap(), 1.0));
    assert!(close(jain(&[1.0, 0.0]).unwrap(), 0.5));
    assert!(close(jain(&[1.0, 0.5]).unwrap(), 2.25 / 2.5));
}

#[test]
fn spread_counts_known_nodes_of_ready_pods() {
    let t = crate::topology::file::parse(TOPO, "cluster.local").unwrap();
    // Node c is unknown (no fresh report): it does not enter hotel's spread.
    let v = cpu(
        &[("a", 1000.0, 900.0), ("b", 1000.0, 300.0)],
        &[("hotel-0", 200.0), ("hotel-1", 250.0), ("batch-0", 300.0)],
    );
    let f = figures(&t, &v, &OptimalConfig::default());
    let hotel = &f.services[HOTEL];
    assert_eq!(hotel.node_cpu_fraction.len(), 2);
    assert!(close(hotel.max_over_avg.unwrap(), 0.9 / 0.6));
    assert!(close(f.services[BATCH].max_over_avg.unwrap(), 1.0));
    assert!(f.services[BATCH].node_cpu_fraction.contains_key("a"));
}

#[test]
fn a_throttled_tenant_stuck_on_a_saturated_node_is_entitled_to_its_fair_share() {
    let t = crate::topology::file::parse(TOPO, "cluster.local").unwrap();
    // Node a is saturated (0.95): both tenants have a ready pod there.
    // batch's only pod is there (its load cannot move: entitled to its fair
    // share, 400m, of which it gets 300m); hotel has pods on b and c, where
    // `optimal` moves its load, so its demand is what it uses.
    let v = cpu(
        &[
            ("a", 1000.0, 950.0),
            ("b", 1000.0, 300.0),
            ("c", 2000.0, 100.0),
        ],
        &[
            ("hotel-0", 150.0),
            ("hotel-1", 150.0),
            ("hotel-2", 0.0),
            ("batch-0", 300.0),
        ],
    );
    let f = figures(&t, &v, &OptimalConfig::default());
    let hotel = &f.tenants["hotel"];
    assert!(hotel.throttled);
    assert!(close(hotel.served_millicores, 300.0));
    assert!(close(hotel.entitled_millicores, 300.0));
    assert!(close(hotel.served_over_entitled.unwrap(), 1.0));
    let batch = &f.tenants["batch"];
    assert!(batch.throttled);
    assert!(close(batch.entitled_millicores, 400.0));
    assert!(close(batch.served_over_entitled.unwrap(), 0.75));
    // Capped at 1: Jain over [1, 0.75].
    assert!(close(f.jain.unwrap(), 1.75 * 1.75 / (2.0 * (1.0 + 0.5625))));
    // Without the protection no demand is raised.
    let off = OptimalConfig {
        protect_saturated: false,
        ..OptimalConfig::default()
    };
    let f = figures(&t, &v, &off);
    assert!(close(f.tenants["batch"].entitled_millicores, 300.0));

    // Not saturated: demand = served, everyone gets what it asks.
    let v = cpu(
        &[("a", 1000.0, 500.0), ("b", 1000.0, 300.0)],
        &[("hotel-0", 150.0), ("batch-0", 100.0)],
    );
    let f = figures(&t, &v, &OptimalConfig::default());
    assert!(!f.tenants["hotel"].throttled);
    assert!(close(f.tenants["hotel"].entitled_millicores, 150.0));
    assert!(close(f.jain.unwrap(), 1.0));
    let e = f.explain(&t, HOTEL, Some(1.5), 0.25).unwrap();
    assert_eq!(e.tenant.name, "hotel");
    assert_eq!((e.table_age_s, e.moved_last_round), (Some(1.5), 0.25));
    assert!(f.explain(&t, "nope", None, 0.0).is_none());
}

#[test]
fn idle_tenants_have_no_ratio_and_no_index() {
    let t = crate::topology::file::parse(TOPO, "cluster.local").unwrap();
    let f = figures(&t, &CpuView::default(), &OptimalConfig::default());
    assert_eq!(f.tenants["hotel"].served_over_entitled, None);
    assert_eq!(f.jain, None);
    assert_eq!(f.services[HOTEL].max_over_avg, None);
}

fn table(version: u64, at: u64, services: &[(&str, &[(&str, f64)])]) -> WeightsTable {
    WeightsTable {
        version,
        generated_at_ms: at,
        ttl_ms: 30_000,
        services: services
            .iter()
            .map(|(s, eps)| {
                (
                    s.to_string(),
                    ServiceWeights {
                        aliases: vec![],
                        endpoints: eps
                            .iter()
                            .map(|(p, w)| Endpoint {
                                pod: p.to_string(),
                                address: "127.0.0.1:1".into(),
                                weight: *w,
                            })
                            .collect(),
                        admit: None,
                    },
                )
            })
            .collect(),
    }
}

#[test]
fn moved_sums_absolute_changes_per_service() {
    let a = table(
        1,
        1_000,
        &[("s", &[("p0", 0.5), ("p1", 0.5)]), ("gone", &[("g", 1.0)])],
    );
    let b = table(
        2,
        3_500,
        &[("s", &[("p0", 0.7), ("p2", 0.3)]), ("new", &[("n", 1.0)])],
    );
    let m = moved(Some(&a), &b);
    // p0 +0.2, p2 +0.3 (came), p1 -0.5 (went).
    assert!(close(m["s"], 1.0));
    assert!(close(m["new"], 0.0));
    assert!(close(m["gone"], 1.0));
    assert!(moved(None, &b).values().all(|v| *v == 0.0));
    assert!(close(moved(Some(&b), &b)["s"], 0.0));
    assert!(close(age_s(&b, 4_000), 0.5));
    assert_eq!(age_s(&b, 0), 0.0);
}
