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

#[test]
fn a_step_beyond_the_reset_fraction_resets_the_node_and_noise_is_smoothed() {
    let t = topo();
    // Capacity 2000: a step of more than 400 (20 %) resets.
    let mut r = Reports::new(1000, 10_000).with_reset_step(0.2);
    r.ingest(
        &report("n1", 500.0, &[("uid-a0", None, 300.0)]),
        Some(&t),
        0,
    )
    .unwrap();
    // 300 up: smoothed half way (one half-life).
    r.ingest(
        &report("n1", 800.0, &[("uid-a0", None, 300.0)]),
        Some(&t),
        1000,
    )
    .unwrap();
    let v = r.cpu_view(&t, 1000);
    assert!((v.nodes["n1"].used_millicores - 650.0).abs() < 1e-9);
    // 1,250 above the smoothed 650: a hog started; node and pods take the report.
    r.ingest(
        &report("n1", 1900.0, &[("uid-a0", None, 100.0)]),
        Some(&t),
        2000,
    )
    .unwrap();
    let v = r.cpu_view(&t, 2000);
    assert_eq!(v.nodes["n1"].used_millicores, 1900.0);
    assert_eq!(v.pods["a-0"], 100.0);
    // Without a reset step the same reports stay smoothed.
    let mut plain = Reports::new(1000, 10_000);
    for (used, at) in [(500.0, 0), (800.0, 1000), (1900.0, 2000)] {
        plain
            .ingest(
                &report("n1", used, &[("uid-a0", None, 300.0)]),
                Some(&t),
                at,
            )
            .unwrap();
    }
    assert!((plain.cpu_view(&t, 2000).nodes["n1"].used_millicores - 1275.0).abs() < 1e-9);
}

#[test]
fn a_reset_step_that_is_not_a_number_never_resets() {
    let t = topo();
    let mut r = Reports::new(1000, 10_000).with_reset_step(f64::NAN);
    for (used, at) in [(0.0, 0), (2000.0, 1000)] {
        r.ingest(&report("n1", used, &[]), Some(&t), at).unwrap();
    }
    assert!((r.cpu_view(&t, 1000).nodes["n1"].used_millicores - 1000.0).abs() < 1e-9);
}

#[test]
fn a_background_step_on_a_saturated_node_resets_too() {
    let t = topo();
    let mut r = Reports::new(3000, 10_000).with_reset_step(0.2);
    // Saturated throughout (node use 2000): the hog shows only as the pod's
    // share falling from 1,900 to 1,000 (background 100 -> 1,000).
    r.ingest(
        &report("n1", 2000.0, &[("uid-a0", None, 1900.0)]),
        Some(&t),
        0,
    )
    .unwrap();
    r.ingest(
        &report("n1", 2000.0, &[("uid-a0", None, 1000.0)]),
        Some(&t),
        1000,
    )
    .unwrap();
    assert_eq!(r.cpu_view(&t, 1000).pods["a-0"], 1000.0);
    // A move of 100 (5 % of capacity) stays smoothed.
    r.ingest(
        &report("n1", 2000.0, &[("uid-a0", None, 900.0)]),
        Some(&t),
        4000,
    )
    .unwrap();
    assert!((r.cpu_view(&t, 4000).pods["a-0"] - 950.0).abs() < 1e-9);
}

#[test]
fn the_view_carries_each_pods_last_report_beside_its_average() {
    let t = topo();
    let mut r = Reports::new(1000, 10_000);
    for (cpu, at) in [(300.0, 0), (100.0, 1000)] {
        r.ingest(&report("n1", 500.0, &[("uid-a0", None, cpu)]), Some(&t), at)
            .unwrap();
    }
    let v = r.cpu_view(&t, 1000);
    assert!(
        (v.pods["a-0"] - 200.0).abs() < 1e-9,
        "half way after one half-life"
    );
    assert_eq!(v.pods_last["a-0"], 100.0);
}
