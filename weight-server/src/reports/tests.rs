use super::*;
use crate::topology::file;
use mplb_wire::PodCpu;

fn topo() -> Arc<Topology> {
    Arc::new(
        file::parse(
            r#"
nodes: [{name: n1, capacity_millicores: 2000}, {name: n2, capacity_millicores: 2000}]
services: [{name: a, port: 80}]
pods:
  - {name: a-0, service: a, node: n1, address: "127.0.0.1:1", uid: uid-a0}
  - {name: a-1, service: a, node: n2, address: "127.0.0.1:2"}
"#,
            "cluster.local",
        )
        .unwrap(),
    )
}

fn report(node: &str, used: f64, pods: &[(&str, Option<&str>, f64)]) -> HostReport {
    HostReport {
        node: node.into(),
        capacity_millicores: 2000.0,
        used_millicores: used,
        sampled_at_ms: 0,
        interval_ms: 1000,
        pods: pods
            .iter()
            .map(|(uid, name, m)| PodCpu {
                uid: uid.to_string(),
                name: name.map(str::to_string),
                namespace: None,
                millicores: *m,
                sampled_at_ms: 0,
            })
            .collect(),
    }
}

#[test]
fn ewma_moves_half_way_per_half_life() {
    let mut e = Ewma::new(0.0, 0);
    e.update(100.0, 1000, 1000);
    assert!((e.value - 50.0).abs() < 1e-9);
    e.update(100.0, 2000, 1000);
    assert!((e.value - 75.0).abs() < 1e-9);
    let mut z = Ewma::new(0.0, 0);
    z.update(7.0, 0, 0);
    assert_eq!(z.value, 7.0);
}

#[test]
fn matches_by_uid_then_name_and_flags_unknown() {
    let t = topo();
    let mut r = Reports::new(1000, 10_000);
    let out = r.ingest(
        &report(
            "n1",
            500.0,
            &[
                ("uid-a0", None, 300.0),
                ("zzz", Some("a-1"), 10.0),
                ("ghost", None, 5.0),
            ],
        ),
        Some(&t),
        0,
    );
    assert_eq!(
        out.unwrap(),
        Ingested {
            unknown_node: false,
            unknown_pods: 1
        }
    );
    let view = r.cpu_view(&t, 0);
    assert_eq!(view.nodes["n1"].used_millicores, 500.0);
    assert_eq!(view.pods.get("a-0"), Some(&300.0));
    // a-1 matched by name but lives on n2, so it is not attributed to n1.
    assert_eq!(view.pods.get("a-1"), None);
    assert_eq!(r.unknown_pod_count(), 1);
    let out = r.ingest(&report("n9", 1.0, &[]), Some(&t), 0).unwrap();
    assert!(out.unknown_node);
    assert!(!r.cpu_view(&t, 0).nodes.contains_key("n9"));
}

#[test]
fn smooths_and_ages_out() {
    let t = topo();
    let mut r = Reports::new(1000, 10_000);
    r.ingest(&report("n1", 0.0, &[]), Some(&t), 0).unwrap();
    r.ingest(&report("n1", 1000.0, &[]), Some(&t), 1000)
        .unwrap();
    assert!((r.cpu_view(&t, 1000).nodes["n1"].used_millicores - 500.0).abs() < 1e-9);
    assert_eq!(r.age_ms("n1", 5000), Some(4000));
    assert!(r.cpu_view(&t, 11_000).nodes.contains_key("n1"));
    assert!(r.cpu_view(&t, 11_001).nodes.is_empty());
    assert_eq!(r.age_ms("n2", 0), None);
}

#[test]
fn node_count_is_bounded_but_stale_nodes_make_room() {
    let mut r = Reports::new(1000, 10_000);
    for i in 0..MAX_TRACKED_NODES {
        r.ingest(&report(&format!("x{i}"), 1.0, &[]), None, 0)
            .unwrap();
    }
    assert_eq!(
        r.ingest(&report("one-more", 1.0, &[]), None, 10_000),
        Err(TooManyNodes)
    );
    // A known node still reports.
    r.ingest(&report("x7", 1.0, &[]), None, 10_000).unwrap();
    // Once the others are stale they make room.
    r.ingest(&report("one-more", 1.0, &[]), None, 10_001)
        .unwrap();
    assert_eq!(r.nodes().len(), 2);
}

#[test]
fn pods_missing_from_a_report_are_dropped() {
    let t = topo();
    let mut r = Reports::new(1000, 10_000);
    r.ingest(&report("n1", 1.0, &[("uid-a0", None, 1.0)]), Some(&t), 0)
        .unwrap();
    r.ingest(&report("n1", 1.0, &[]), Some(&t), 1).unwrap();
    assert!(r.cpu_view(&t, 1).pods.is_empty());
}
