use super::*;
use crate::topology::file;

fn topo(extra: &str) -> Topology {
    file::parse(
        &format!(
            r#"
nodes: [{{name: n, capacity_millicores: 1000}}]
services: [{{name: a, port: 80}}]
pods:
  - {{name: a-0, service: a, node: n, address: "127.0.0.1:1"}}
  - {{name: a-1, service: a, node: n, address: "127.0.0.1:2"}}
{extra}"#
        ),
        "cluster.local",
    )
    .unwrap()
}

const A: &str = "a.default.svc.cluster.local";

fn decision(w0: f64, w1: f64) -> Decision {
    let mut d = Decision::default();
    d.weights.insert(
        A.into(),
        [("a-0".to_string(), w0), ("a-1".to_string(), w1)].into(),
    );
    d
}

fn weights(s: &Served) -> Vec<f64> {
    s.table.services[A]
        .endpoints
        .iter()
        .map(|e| e.weight)
        .collect()
}

#[test]
fn damps_and_respects_the_dead_band() {
    let t = topo("");
    let mut b = TableBuilder::new(WeightsConfig::default(), 100);
    let reader = b.published();
    assert!(reader.get().is_none());
    let first = b
        .round(&t, &decision(1.0, 1.0), &BTreeSet::new(), 1)
        .unwrap()
        .unwrap();
    // One table: what a reader sees is the builder's, not a copy.
    assert!(Arc::ptr_eq(&reader.get().unwrap(), &first));
    assert_eq!(first.table.version, 100);
    assert_eq!(first.etag, "\"100\"");
    assert_eq!(weights(&first), vec![0.5, 0.5]);
    // Target 0.9/0.1: half way per round.
    let s = b
        .round(&t, &decision(9.0, 1.0), &BTreeSet::new(), 2)
        .unwrap()
        .unwrap();
    assert_eq!(s.table.version, 101);
    assert!((weights(&s)[0] - 0.7).abs() < 1e-9);
    let s = b
        .round(&t, &decision(9.0, 1.0), &BTreeSet::new(), 3)
        .unwrap()
        .unwrap();
    assert!((weights(&s)[0] - 0.8).abs() < 1e-9);
    // 0.85 (+0.05, published), 0.875 (+0.025, published), 0.8875 (+0.0125
    // from the published 0.875: inside the dead band, not published).
    assert!(
        b.round(&t, &decision(9.0, 1.0), &BTreeSet::new(), 4)
            .unwrap()
            .is_some()
    );
    assert!(
        b.round(&t, &decision(9.0, 1.0), &BTreeSet::new(), 5)
            .unwrap()
            .is_some()
    );
    assert!(
        b.round(&t, &decision(9.0, 1.0), &BTreeSet::new(), 6)
            .unwrap()
            .is_none()
    );
    // The damped state keeps converging; the table ends within the band.
    for i in 7..40 {
        b.round(&t, &decision(9.0, 1.0), &BTreeSet::new(), i)
            .unwrap();
    }
    let w = weights(&b.current().unwrap())[0];
    assert!((w - 0.9).abs() <= 0.02, "{w}");
}

#[test]
fn small_moves_do_not_bump_the_version() {
    let t = topo("");
    let cfg = WeightsConfig {
        damping: 1.0,
        dead_band: 0.02,
        ttl_ms: 5,
    };
    let mut b = TableBuilder::new(cfg, 1);
    b.round(&t, &decision(0.5, 0.5), &BTreeSet::new(), 1)
        .unwrap()
        .unwrap();
    assert!(
        b.round(&t, &decision(0.51, 0.49), &BTreeSet::new(), 2)
            .unwrap()
            .is_none()
    );
    assert_eq!(b.current().unwrap().table.version, 1);
    let s = b
        .round(&t, &decision(0.6, 0.4), &BTreeSet::new(), 3)
        .unwrap()
        .unwrap();
    assert_eq!(s.table.version, 2);
    assert_eq!(s.table.ttl_ms, 5);
}

#[test]
fn endpoints_coming_and_going_bump_the_version() {
    let cfg = WeightsConfig {
        damping: 0.5,
        dead_band: 0.5,
        ttl_ms: 5,
    };
    let mut b = TableBuilder::new(cfg, 1);
    b.round(&topo(""), &decision(1.0, 1.0), &BTreeSet::new(), 1)
        .unwrap()
        .unwrap();
    let t3 = topo(r#"  - {name: a-2, service: a, node: n, address: "127.0.0.1:3"}"#);
    let s = b
        .round(&t3, &decision(1.0, 1.0), &BTreeSet::new(), 2)
        .unwrap()
        .unwrap();
    let pods: Vec<_> = s.table.services[A]
        .endpoints
        .iter()
        .map(|e| e.pod.as_str())
        .collect();
    assert_eq!(pods, vec!["a-0", "a-1", "a-2"]);
    // The policy gave a-2 nothing: weight 0, but a new endpoint set jumps to target.
    assert_eq!(weights(&s), vec![0.5, 0.5, 0.0]);
    let s = b
        .round(&topo(""), &decision(1.0, 1.0), &BTreeSet::new(), 3)
        .unwrap()
        .unwrap();
    assert_eq!(s.table.services[A].endpoints.len(), 2);
}

#[test]
fn drains_get_zero_and_missing_services_fall_back_to_even() {
    let t = topo("");
    let mut b = TableBuilder::new(WeightsConfig::default(), 1);
    let drains: BTreeSet<String> = ["a-1".to_string()].into();
    let s = b
        .round(&t, &Decision::default(), &drains, 1)
        .unwrap()
        .unwrap();
    assert_eq!(weights(&s), vec![1.0, 0.0]);
    assert_eq!(b.rounds()[A].source, "even-fallback");
    assert_eq!(b.rounds()[A].drained, vec!["a-1".to_string()]);
    // Every pod drained: the service leaves the table (fail open).
    let all: BTreeSet<String> = ["a-0".to_string(), "a-1".to_string()].into();
    let s = b.round(&t, &Decision::default(), &all, 2).unwrap().unwrap();
    assert!(s.table.services.is_empty());
    // A policy answer of all zeros or NaN is unusable: even.
    let s = b
        .round(&t, &decision(f64::NAN, 0.0), &BTreeSet::new(), 3)
        .unwrap()
        .unwrap();
    assert_eq!(weights(&s), vec![0.5, 0.5]);
    assert!(mplb_wire::WeightsTable::parse(&s.body).is_ok());
}

#[test]
fn a_take_over_publishes_above_the_floor_and_damps_from_the_old_table() {
    let t = topo("");
    let none = BTreeSet::new();
    let mut old = TableBuilder::new(WeightsConfig::default(), 1);
    let served = old
        .round(&t, &decision(0.8, 0.2), &none, 1)
        .unwrap()
        .unwrap();
    let mut new = TableBuilder::new(WeightsConfig::default(), 5);
    new.take_over(1000, Some(&served.table));
    let s = new
        .round(&t, &decision(0.2, 0.8), &none, 2)
        .unwrap()
        .unwrap();
    assert_eq!(s.table.version, 1000);
    assert_eq!(weights(&s), vec![0.5, 0.5]);
    // Nothing changed: no new version, until leadership is taken again.
    assert!(
        new.round(&t, &decision(0.5, 0.5), &none, 3)
            .unwrap()
            .is_none()
    );
    new.take_over(10, None);
    let s = new
        .round(&t, &decision(0.5, 0.5), &none, 4)
        .unwrap()
        .unwrap();
    assert_eq!(
        s.table.version, 1001,
        "a lower floor never lowers the version"
    );
}

#[test]
fn an_undamped_decision_moves_straight_to_its_target() {
    let t = topo("");
    let mut b = TableBuilder::new(WeightsConfig::default(), 1);
    b.round(&t, &decision(1.0, 1.0), &BTreeSet::new(), 1)
        .unwrap();
    let mut d = decision(9.0, 1.0);
    d.undamped = true;
    let s = b.round(&t, &d, &BTreeSet::new(), 2).unwrap().unwrap();
    assert!((weights(&s)[0] - 0.9).abs() < 1e-9);
    assert!((b.rounds()[A].damped["a-0"] - 0.9).abs() < 1e-9);
}

#[test]
fn held_pods_keep_their_last_share_and_the_rest_is_scaled() {
    let t = topo("  - {name: a-2, service: a, node: n, address: \"127.0.0.1:3\"}\n");
    let mut b = TableBuilder::new(WeightsConfig::default(), 1);
    let three = |w: [f64; 3]| {
        let mut d = Decision {
            undamped: true,
            ..Decision::default()
        };
        d.weights.insert(
            A.into(),
            [("a-0", w[0]), ("a-1", w[1]), ("a-2", w[2])]
                .map(|(p, w)| (p.to_string(), w))
                .into(),
        );
        d
    };
    b.round(&t, &three([0.45, 0.45, 0.1]), &BTreeSet::new(), 1)
        .unwrap();
    // a-2's node went unknown: the policy says 1/3, the builder keeps 0.1.
    let mut d = three([0.5, 0.25, 1.0 / 3.0]);
    d.held.insert(A.into(), ["a-2".to_string()].into());
    let s = b.round(&t, &d, &BTreeSet::new(), 2).unwrap().unwrap();
    let w = weights(&s);
    assert!((w[2] - 0.1).abs() < 1e-9, "{w:?}");
    assert!((w[0] - 0.6).abs() < 1e-9, "{w:?}");
    assert!((w[1] - 0.3).abs() < 1e-9, "{w:?}");
    // A held pod with no share yet (a new builder) keeps the policy's weight
    // (normalised: (1/3) / (13/12)).
    let mut fresh = TableBuilder::new(WeightsConfig::default(), 1);
    let s = fresh.round(&t, &d, &BTreeSet::new(), 1).unwrap().unwrap();
    assert!((weights(&s)[2] - 4.0 / 13.0).abs() < 1e-9);
}
