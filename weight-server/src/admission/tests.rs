#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::policy::optimal::model::{Host, Svc, Tenant};

fn host(capacity: f64, background: f64) -> Host {
    Host {
        name: format!("node-{capacity}"),
        capacity,
        used: background,
        managed: 0.0,
        background,
        available: capacity - background,
        saturated: false,
    }
}

fn tenant(name: &str, fair_share: f64, served: f64, raised: bool) -> Tenant {
    Tenant {
        name: name.into(),
        fair_share,
        demand_measured: served,
        demand_last: served,
        demand: served,
        entitled: fair_share.min(served),
        throttled: raised,
        raised,
        services: vec![],
    }
}

/// hotel's frontend and profile, shop's web, a pod each.
fn two_tenants() -> Topology {
    crate::topology::file::parse(
        r#"
nodes:
  - {name: node-600, capacity_millicores: 600}
  - {name: node-400, capacity_millicores: 400}
  - {name: node-250, capacity_millicores: 250}
services:
  - {name: frontend, tenant: hotel, port: 80}
  - {name: profile, tenant: hotel, port: 81}
  - {name: web, tenant: shop, port: 82}
pods:
  - {name: frontend-0, service: frontend, node: node-600, address: "127.0.0.1:1"}
  - {name: profile-0, service: profile, node: node-400, address: "127.0.0.1:2"}
  - {name: web-0, service: web, node: node-250, address: "127.0.0.1:3"}
"#,
        "cluster.local",
    )
    .unwrap()
}

/// The over-capacity lab scenario's cluster: 1250m over three nodes.
fn hosts() -> Vec<Host> {
    vec![host(600.0, 0.0), host(400.0, 0.0), host(250.0, 0.0)]
}

#[test]
fn water_fill_gives_each_its_demand_when_it_fits_and_weighted_shares_when_not() {
    assert_eq!(
        water_fill(&[100.0, 200.0], &[1.0, 1.0], 400.0),
        [100.0, 200.0]
    );
    // Both want more than their share: split 700:550.
    let a = water_fill(&[900.0, 800.0], &[700.0, 550.0], 1250.0);
    assert!(
        (a[0] - 700.0).abs() < 1e-9 && (a[1] - 550.0).abs() < 1e-9,
        "{a:?}"
    );
    // One wants less than its share: it gets its demand, the other the rest.
    let a = water_fill(&[900.0, 300.0], &[700.0, 550.0], 1000.0);
    assert!(
        (a[0] - 700.0).abs() < 1e-9 && (a[1] - 300.0).abs() < 1e-9,
        "{a:?}"
    );
    // A tenant without a fair share still gets a little (the smallest weight).
    let a = water_fill(&[500.0, 500.0], &[0.0, 100.0], 400.0);
    assert!(
        (a[0] - 200.0).abs() < 1e-9 && (a[1] - 200.0).abs() < 1e-9,
        "{a:?}"
    );
    assert_eq!(water_fill(&[10.0], &[1.0], 0.0), [0.0]);
}

#[test]
fn demand_that_fits_is_never_shed() {
    let mut adm = Admission::new(AdmissionConfig::default());
    // A hog-like round: a tenant on a saturated node, not raised (it can move).
    let inputs = Inputs {
        hosts: hosts(),
        tenants: vec![
            tenant("hotel", 700.0, 600.0, false),
            tenant("shop", 550.0, 400.0, false),
        ],
        ..Inputs::default()
    };
    for i in 0..10 {
        let v = adm.round(&inputs, i * 2000);
        assert!(v.values().all(|v| v.admit == 1.0), "{v:?}");
    }
}

/// The plant: each tenant offers `true_demand`; the gateways let in `admit`
/// of it; when the admitted load exceeds the capacity, the kernel splits it
/// by cgroup (hotel has two pods per node to shop's one: 2:1), giving back
/// what one side does not use. The controller sees the served CPU through
/// its last report (a step every period; what a step decides is served
/// before the next one), and whether the model raised a tenant through the
/// engine's EWMA (3 s half-life).
fn simulate(
    adm: &mut Admission,
    true_demand: [f64; 2],
    rounds: u64,
    start_ms: u64,
    noise: f64,
    smoothed: &mut [f64; 2],
) -> Vec<BTreeMap<String, Verdict>> {
    let capacity = 1250.0;
    let mut out = Vec::new();
    for i in 0..rounds {
        // Report noise as a square wave: the worst case for a controller.
        let wobble = if i % 2 == 0 { 1.0 + noise } else { 1.0 - noise };
        let admit = |name: &str| adm.tenants.get(name).copied().unwrap_or(1.0);
        let want = [
            true_demand[0] * admit("hotel"),
            true_demand[1] * admit("shop"),
        ];
        let served = if want[0] + want[1] <= capacity {
            want
        } else {
            let (h, s) = (capacity * 2.0 / 3.0, capacity / 3.0);
            match (want[0] < h, want[1] < s) {
                (true, _) => [want[0], capacity - want[0]],
                (_, true) => [capacity - want[1], want[1]],
                _ => [h, s],
            }
        };
        let keep = 0.5f64.powf(500.0 / 3000.0);
        for k in 0..2 {
            smoothed[k] = served[k] + keep * (smoothed[k] - served[k]);
        }
        // Saturated nodes: the model raises a tenant it sees as stuck.
        let saturated = smoothed[0] + smoothed[1] >= 0.9 * capacity;
        let mut inputs = Inputs {
            hosts: hosts(),
            tenants: vec![
                tenant(
                    "hotel",
                    700.0,
                    smoothed[0],
                    saturated && smoothed[0] < 700.0,
                ),
                tenant("shop", 550.0, smoothed[1], saturated && smoothed[1] < 550.0),
            ],
            ..Inputs::default()
        };
        inputs.tenants[0].demand_last = served[0] * wobble;
        inputs.tenants[1].demand_last = served[1] * wobble;
        out.push(adm.round(&inputs, start_ms + i * 2000));
    }
    out
}

#[test]
fn over_capacity_each_tenant_converges_to_its_weighted_share_of_the_target() {
    let mut adm = Admission::new(AdmissionConfig::default());
    // Unshed, the kernel gives hotel 833m and shop 417m of 1250m.
    let mut smoothed = [833.0, 417.0];
    let rounds = simulate(&mut adm, [875.0, 750.0], 30, 0, 0.0, &mut smoothed);
    let last = rounds.last().unwrap();
    // Room: 0.95 x 1250 = 1187.5, split 700:550 -> 665 and 522.5.
    assert!((smoothed[0] - 665.0).abs() < 0.03 * 665.0, "{smoothed:?}");
    assert!((smoothed[1] - 522.5).abs() < 0.03 * 522.5, "{smoothed:?}");
    assert!(
        (last["hotel"].admit - 665.0 / 875.0).abs() < 0.03,
        "{last:?}"
    );
    assert!(
        (last["shop"].admit - 522.5 / 750.0).abs() < 0.03,
        "{last:?}"
    );
    // Settled within 20 steps: the last ten move each fraction by
    // less than 0.01.
    for w in rounds[20..].windows(2) {
        for t in ["hotel", "shop"] {
            assert!((w[1][t].admit - w[0][t].admit).abs() < 0.01, "{t}: {w:?}");
        }
    }
    let topo = two_tenants();
    let per_service = adm.per_service(&topo);
    assert_eq!(
        per_service.keys().collect::<Vec<_>>(),
        [
            "frontend.default.svc.cluster.local",
            "profile.default.svc.cluster.local",
            "web.default.svc.cluster.local"
        ]
    );
    assert_eq!(
        per_service["frontend.default.svc.cluster.local"], last["hotel"].admit,
        "every service of a tenant carries its fraction"
    );

    // Demand falls below capacity: everyone is let in again, and the table
    // stops carrying `admit`.
    let later = simulate(&mut adm, [500.0, 400.0], 20, 60_000, 0.0, &mut smoothed);
    let last = later.last().unwrap();
    assert!(last.values().all(|v| v.admit == 1.0), "{last:?}");
    assert!(adm.per_service(&topo).is_empty());
}

#[test]
fn noisy_reports_move_the_fractions_little() {
    let mut adm = Admission::new(AdmissionConfig::default());
    let mut smoothed = [833.0, 417.0];
    // Every report 5 % high, then 5 % low.
    let rounds = simulate(&mut adm, [875.0, 750.0], 60, 0, 0.05, &mut smoothed);
    for r in &rounds[30..] {
        assert!((r["hotel"].admit - 0.76).abs() < 0.05, "{r:?}");
        assert!((r["shop"].admit - 0.70).abs() < 0.05, "{r:?}");
    }
}

#[test]
fn the_floor_bounds_shedding_and_reset_lets_everything_in() {
    let cfg = AdmissionConfig {
        floor: 0.3,
        gain: 1.0,
        ..AdmissionConfig::default()
    };
    let mut adm = Admission::new(cfg);
    // A tenant without a fair share wanting ten times the cluster.
    let inputs = Inputs {
        hosts: hosts(),
        tenants: vec![
            tenant("greedy", 0.0, 12_000.0, false),
            tenant("quiet", 1000.0, 100.0, false),
        ],
        ..Inputs::default()
    };
    let v = adm.round(&inputs, 0);
    assert!((v["greedy"].admit - 0.3).abs() < 1e-12, "{v:?}");
    assert_eq!(v["quiet"].admit, 1.0);
    adm.reset();
    assert!(adm.tenants.is_empty());
}

#[test]
fn a_partial_picture_never_sheds_more() {
    let mut adm = Admission::new(AdmissionConfig::default());
    // Only the 600m node has reported, full: both tenants look stuck and
    // raised to their whole fair shares against 570m of known room; the
    // pods on the other nodes are unknown to the model.
    let inputs = Inputs {
        hosts: vec![host(600.0, 0.0)],
        services: vec![Svc {
            fqdn: "web.default.svc.cluster.local".into(),
            tenant: 1,
            demand_measured: 200.0,
            demand: 200.0,
            lp_pods: vec![],
            unknown_pods: vec!["web-0".into()],
            left_out: None,
        }],
        tenants: vec![
            tenant("hotel", 700.0, 400.0, true),
            tenant("shop", 550.0, 200.0, true),
        ],
        ..Inputs::default()
    };
    for i in 0..5 {
        let v = adm.round(&inputs, i * 2000);
        assert!(v.values().all(|v| v.admit == 1.0), "{v:?}");
    }
    // With every node known the same numbers shed.
    let mut full = inputs.clone();
    full.hosts = hosts();
    full.services[0].unknown_pods.clear();
    full.tenants[0].demand_last = 900.0;
    let v = adm.round(&full, 10_000);
    assert!(v["hotel"].admit < 1.0, "{v:?}");
    // A node goes stale again: the fractions hold or rise, never fall.
    let before = v["hotel"].admit;
    let v = adm.round(&inputs, 12_000);
    assert!(v["hotel"].admit >= before, "{v:?}");
}

#[test]
fn fractions_move_once_per_period_and_rounds_between_only_report() {
    let mut adm = Admission::new(AdmissionConfig::default());
    let mut inputs = Inputs {
        hosts: hosts(),
        tenants: vec![
            tenant("hotel", 700.0, 900.0, false),
            tenant("shop", 550.0, 500.0, false),
        ],
        ..Inputs::default()
    };
    let first = adm.round(&inputs, 0)["hotel"].admit;
    assert!(first < 1.0);
    // Reports keep coming (250 ms apart), the same overload: no move
    // before the period (2 s) is over, whatever they say.
    for at in [250, 500, 1000, 1999] {
        inputs.tenants[0].demand_last = 900.0 + at as f64;
        let v = adm.round(&inputs, at);
        assert_eq!(v["hotel"].admit, first, "at {at} ms");
        assert!(v["hotel"].offered > 900.0, "rounds between still estimate");
    }
    assert!(adm.round(&inputs, 2000)["hotel"].admit < first);
}
