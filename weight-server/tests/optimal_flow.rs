//! The default `flow` solver of the `optimal` policy: it spreads services
//! where the optimum leaves a choice, balances what the overloaded stage
//! leaves, never overfills a node, and reaches clarabel's optimum on
//! clusters larger than the property tests' random ones.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{
    MicroLp, Scenario, assert_well_formed, explain_of, first_explain, loads, mode, unprotected,
    weights_of,
};
use weight_server::policy::Decision;
use weight_server::policy::optimal::lp::Clarabel;
use weight_server::policy::optimal::{OptimalConfig, decide, decide_with};

/// Per known node: its room for managed load (capacity − background).
fn rooms(s: &Scenario) -> Vec<(String, f64)> {
    (s.cpu.nodes.iter())
        .map(|(name, n)| {
            let managed: f64 = (s.topology.pods.values())
                .filter(|p| &p.node == name)
                .filter_map(|p| s.cpu.pods.get(&p.name))
                .sum();
            let bg = (n.used_millicores - managed).max(0.0);
            (name.clone(), (n.capacity_millicores - bg).max(0.0))
        })
        .collect()
}

#[test]
fn the_flow_solver_spreads_services_where_the_optimum_leaves_a_choice() {
    // Two equal nodes, two services with a pod on each: both nodes end half
    // full whichever way the services split, so the answer should split
    // each service evenly rather than give each service one node.
    let s = Scenario::default()
        .node("n1", 2000.0, 100.0)
        .node("n2", 2000.0, 100.0)
        .service("web", "web", None)
        .service("api", "api", None)
        .pod("web-1", "web", "n1", 300.0)
        .pod("web-2", "web", "n2", 100.0)
        .pod("api-1", "api", "n1", 100.0)
        .pod("api-2", "api", "n2", 300.0);
    let d = decide(&s.topology, &s.cpu, &OptimalConfig::default()).unwrap();
    assert_well_formed(&s, &d);
    for svc in ["web", "api"] {
        for (pod, w) in weights_of(&d, svc) {
            assert!((w - 0.5).abs() < 1e-6, "{pod}: {w}");
        }
    }
}

#[test]
fn the_flow_solver_balances_what_the_overloaded_stage_leaves() {
    // n1 is overloaded by `hot`; `cool` (fully served, 400m) can use n2
    // (200m background) and n3, which should end equally spare: 100m + 300m.
    let s = Scenario::default()
        .node("n1", 1000.0, 0.0)
        .node("n2", 1000.0, 200.0)
        .node("n3", 1000.0, 0.0)
        .service("hot", "hot", Some(800.0))
        .service("cool", "cool", Some(800.0))
        .pod("hot-0", "hot", "n1", 1500.0)
        .pod("cool-1", "cool", "n2", 300.0)
        .pod("cool-2", "cool", "n3", 100.0);
    // n1 planned to its full capacity (saturated nodes are planned to 80 %
    // by default: `a_saturated_node_is_planned_below_saturation`).
    let cfg = OptimalConfig {
        saturated_plan: 1.0,
        ..unprotected()
    };
    let d = decide(&s.topology, &s.cpu, &cfg).unwrap();
    assert_well_formed(&s, &d);
    assert_eq!(explain_of(&d, "cool")["mode"], "overloaded");
    let load = loads(&d);
    assert!((load["hot-0"] - 1000.0).abs() < 1e-3, "{load:?}");
    assert!((load["cool-1"] - 100.0).abs() < 1e-3, "{load:?}");
    assert!((load["cool-2"] - 300.0).abs() < 1e-3, "{load:?}");
}

#[test]
fn balancing_after_overload_never_overfills_a_node() {
    // Found by the property tests: s1 overloads n1; s0, s2 and s3 are fully
    // served and balanced over n0, n2 and n3 in two levels. A pod whose node
    // froze at the first level without its load must not keep the load of
    // the overloaded stage.
    let s = Scenario::default()
        .node("n0", 3044.3887578998297, 1232.735138254844)
        .node("n1", 1681.9979001154195, 931.7902408028458)
        .node("n2", 3993.6654846228353, 2003.213746574286)
        .node("n3", 2447.050063691162, 392.5530596604327)
        .service("s0", "t1", None)
        .service("s1", "t1", None)
        .service("s2", "t1", None)
        .service("s3", "t3", Some(1162.0785844667355))
        .pod("p0", "s0", "n0", 624.3109681982903)
        .pod("p1", "s3", "n3", 516.6815696309559)
        .pod_with("p2", "s1", "n0", 219.03809468850966, false)
        .pod_with("p3", "s0", "n0", 470.49204566671455, false)
        .pod("p4", "s1", "n1", 594.8368976231056)
        .pod("p5", "s3", "n0", 580.5862910644804)
        .pod("p6", "s0", "n2", 938.1235027489432)
        .pod("p7", "s2", "n0", 989.93779103874);
    let cfg = unprotected();
    // Room of n0 = capacity - background (node use - managed pods).
    let room = 3044.3887578998297 - 1232.735138254844;
    for d in [
        decide(&s.topology, &s.cpu, &cfg).unwrap(),
        decide_with(&s.topology, &s.cpu, &cfg, &Clarabel).unwrap(),
        decide_with(&s.topology, &s.cpu, &cfg, &MicroLp).unwrap(),
    ] {
        assert_well_formed(&s, &d);
        assert_eq!(explain_of(&d, "s0")["mode"], "overloaded");
        let l = loads(&d);
        let n0 = l["p0"] + l["p5"] + l["p7"];
        assert!(
            n0 <= room + 1e-3,
            "{}: n0 {n0} > {room}: {l:?}",
            explain_of(&d, "s0")["solver"]
        );
    }
}

/// A cluster bigger than the random specs of optimal_props.rs (deterministic): `nodes`
/// nodes of 2-8 cores with some background, services of 2-8 pods on random
/// nodes, 3 services per tenant, demand `load` x the room.
fn cluster(seed: u64, nodes: usize, services: usize, load: f64) -> Scenario {
    let mut x = seed;
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut s = Scenario::default();
    let mut room = 0.0;
    let mut caps = Vec::new();
    for i in 0..nodes {
        let cap = 1000.0 * (2.0 + (next() * 7.0).floor());
        let bg = cap * 0.4 * next();
        room += cap - bg;
        caps.push(cap);
        s = s.node(&format!("n{i}"), cap, bg);
    }
    let mut pods = Vec::new();
    for v in 0..services {
        let share = if next() < 0.3 {
            None
        } else {
            Some(500.0 + 6000.0 * next())
        };
        s = s.service(&format!("s{v}"), &format!("t{}", v / 3), share);
        let replicas = 2 + (next() * 7.0) as usize;
        for r in 0..replicas {
            pods.push((
                format!("s{v}-{r}"),
                v,
                (next() * nodes as f64) as usize,
                0.2 + next(),
            ));
        }
    }
    let scale = load * room / pods.iter().map(|p| p.3).sum::<f64>();
    for (name, v, node, raw) in pods {
        s = s.pod(
            &name,
            &format!("s{v}"),
            &format!("n{}", node.min(nodes - 1)),
            raw * scale,
        );
    }
    s
}

#[test]
fn the_flow_solver_matches_the_lp_on_larger_clusters() {
    // 60 nodes, ~150 services, in both modes: the max-flow answer reaches
    // clarabel's optimum (the LP solver is fast at this size).
    for (seed, load) in [(1, 0.5), (2, 0.9), (3, 1.3), (4, 2.0), (5, 4.0)] {
        let s = cluster(seed, 60, 150, load);
        let f = decide(&s.topology, &s.cpu, &unprotected()).unwrap();
        let c = decide_with(&s.topology, &s.cpu, &unprotected(), &Clarabel).unwrap();
        assert_well_formed(&s, &f);
        assert_eq!(mode(&f), mode(&c), "seed {seed}");
        let key = |d: &Decision, k: &str| first_explain(d).unwrap()[k].as_f64().unwrap();
        let served = |d: &Decision| loads(d).values().sum::<f64>();
        for k in ["min_spare_fraction", "min_served_over_entitled"] {
            let (x, y) = (key(&f, k), key(&c, k));
            assert!(
                (x - y).abs() <= 1.1e-3,
                "seed {seed} {k}: flow {x} vs clarabel {y}"
            );
        }
        let (x, y) = (served(&f), served(&c));
        assert!(
            x >= y * (1.0 - 2e-3),
            "seed {seed}: served flow {x} vs clarabel {y}"
        );
        // Feasibility of the flow answer itself: no host over its room.
        for (node, room) in rooms(&s) {
            let on: f64 = s
                .topology
                .pods
                .values()
                .filter(|p| p.node == node)
                .filter_map(|p| loads(&f).get(&p.name).copied())
                .sum();
            assert!(
                on <= room * (1.0 + 1e-6) + 1e-3,
                "seed {seed} {node}: {on} > {room}"
            );
        }
        eprintln!(
            "seed {seed} load {load}: {:?}, min spare {:.4}, ratio {:.4}",
            mode(&f),
            key(&f, "min_spare_fraction"),
            key(&f, "min_served_over_entitled")
        );
    }
}
