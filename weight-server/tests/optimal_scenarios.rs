//! The `optimal` policy on hand-made scenarios: the original prototype's
//! three nodes and three tenants, overload, unknown nodes, drains, saturation
//! and degenerate inputs; the max-flow, clarabel and microlp answers compared.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{
    MicroLp, Scenario, assert_well_formed, explain_of, explained, fqdn, loads, prototype,
    weights_of,
};
use weight_server::policy::Decision;
use weight_server::policy::optimal::lp::Clarabel;
use weight_server::policy::optimal::{OptimalConfig, SolverKind, decide, decide_with};

/// The answers of the default solver (max-flow), then clarabel's, then
/// microlp's.
fn by_every_solver(s: &Scenario, cfg: &OptimalConfig) -> Vec<Decision> {
    let flow = OptimalConfig {
        solver: SolverKind::Flow,
        ..cfg.clone()
    };
    vec![
        decide(&s.topology, &s.cpu, &flow).unwrap(),
        decide_with(&s.topology, &s.cpu, cfg, &Clarabel).unwrap(),
        decide_with(&s.topology, &s.cpu, cfg, &MicroLp).unwrap(),
    ]
}

#[test]
fn prototype_moves_tenant_1_off_node_1_so_tenant_3_keeps_its_share() {
    let s = prototype();
    // Max-flow and clarabel (microlp's vertex answer is checked below).
    for d in by_every_solver(&s, &OptimalConfig::default())
        .into_iter()
        .take(2)
    {
        prototype_answer(&s, &d);
    }
}

fn prototype_answer(s: &Scenario, d: &Decision) {
    let d = d.clone();
    assert_well_formed(s, &d);
    let t1 = weights_of(&d, "t1");
    assert!(t1["t1-a"] < 0.01, "t1 should leave node 1: {t1:?}");
    assert!(t1["t1-b"] > 0.99, "{t1:?}");
    // Tenant 3 was throttled on a saturated node: its demand is raised to its
    // fair share, and node 1 now has room for all of it.
    assert_eq!(explained(&d, "t3", "tenant_demand_millicores"), 1500.0);
    assert_eq!(explain_of(&d, "t3")["tenant_throttled"], true);
    let load = loads(&d);
    assert!((load["t3-a"] - 1500.0).abs() < 1.0, "{load:?}");
    let node1 = 50.0 + load["t3-a"] + load["t1-a"];
    assert!(
        node1 <= 2000.0 * 0.8,
        "node 1 keeps spare after the move: {node1}"
    );
    // An even split would have put half of t1 on node 1 next to t3: overload.
    let even_node1 = 50.0 + load["t3-a"] + 0.5 * explained(&d, "t1", "service_demand_millicores");
    assert!(even_node1 > 2000.0, "{even_node1}");
    // Everyone is fully served; the bottleneck is node 1, saturated and so
    // planned with room reserved for its 50m background to double:
    // (2000 - 50 - 50 - 1500)/2000 spare against its plan.
    assert_eq!(explain_of(&d, "t1")["mode"], "all-served");
    assert!((explained(&d, "t1", "min_spare_fraction") - 0.2).abs() < 1e-4);
    // Balancing after the max-min: nodes 2 and 3 end equally spare, so t2
    // stays off node 2 (where t1 moved) and sits on node 3.
    let spare = |svc: &str, pod: &str| {
        let pods = explain_of(&d, svc)["pods"].as_array().unwrap().clone();
        let p = pods.into_iter().find(|p| p["pod"] == pod).unwrap();
        p["node_spare_fraction_after"].as_f64().unwrap()
    };
    assert!((spare("t2", "t2-a") - spare("t2", "t2-b")).abs() < 1e-3);
    assert!(
        weights_of(&d, "t2")["t2-a"] < 0.01,
        "{:?}",
        weights_of(&d, "t2")
    );
    // t3 has a single pod: weight 1.
    assert_eq!(weights_of(&d, "t3")["t3-a"], 1.0);
}

#[test]
fn every_solver_agrees_on_the_prototype() {
    let s = prototype();
    let all = by_every_solver(&s, &OptimalConfig::default());
    let names: Vec<_> = all
        .iter()
        .map(|d| explain_of(d, "t1")["solver"].clone())
        .collect();
    assert_eq!(names, ["flow", "clarabel", "microlp"]);
    for d in &all[1..] {
        for key in ["min_spare_fraction", "min_served_over_entitled"] {
            let (x, y) = (explained(&all[0], "t1", key), explained(d, "t1", key));
            assert!((x - y).abs() < 1e-5, "{key}: flow {x} vs {y}");
        }
        assert!(weights_of(d, "t1")["t1-a"] < 0.01);
    }
}

/// Two nodes of 1 core; `big` (fair share 1000m) wants 2000m over both,
/// `small` (fair share 1000m) wants 600m on node 1 only: 2600m > 2000m.
fn overloaded() -> Scenario {
    Scenario::default()
        .node("n1", 1000.0, 0.0)
        .node("n2", 1000.0, 0.0)
        .service("big", "big", Some(1000.0))
        .service("small", "small", Some(1000.0))
        .pod("big-a", "big", "n1", 500.0)
        .pod("big-b", "big", "n2", 500.0)
        .pod("small-a", "small", "n1", 600.0)
}

#[test]
fn overload_protects_every_entitlement_and_serves_what_fits() {
    let mut s = overloaded();
    // Measured use understates `big` (throttled): say it asks for 2000m.
    s.cpu.pods.insert("big-a".into(), 1000.0);
    s.cpu.pods.insert("big-b".into(), 1000.0);
    let cfg = OptimalConfig {
        protect_saturated: false,
        ..OptimalConfig::default()
    };
    for d in by_every_solver(&s, &cfg) {
        assert_well_formed(&s, &d);
        assert_eq!(explain_of(&d, "big")["mode"], "overloaded");
        assert!((explained(&d, "big", "min_served_over_entitled") - 1.0).abs() < 1e-3);
        let load = loads(&d);
        assert!(load["small-a"] >= 600.0 * (1.0 - 1e-3), "{load:?}");
        assert!(load["big-a"] + load["small-a"] <= 1000.0 + 1e-3, "{load:?}");
        let big = load["big-a"] + load["big-b"];
        assert!(
            big >= 1000.0 * (1.0 - 1e-3),
            "big keeps its fair share: {big}"
        );
        assert!(
            big + load["small-a"] >= 2000.0 * 0.99,
            "work conserving: {load:?}"
        );
        // big's weight on node 1 is what is left there: 400 of its 1400.
        let w = weights_of(&d, "big");
        assert!((w["big-a"] - 400.0 / 1400.0).abs() < 0.01, "{w:?}");
    }
}

#[test]
fn infeasible_entitlements_share_the_shortfall_equally() {
    // One 1-core node; two tenants each entitled to 1000m: each gets half.
    let s = Scenario::default()
        .node("n1", 1000.0, 0.0)
        .service("a", "a", Some(1000.0))
        .service("b", "b", Some(1000.0))
        .pod("a-0", "a", "n1", 1000.0)
        .pod("b-0", "b", "n1", 1000.0);
    let cfg = OptimalConfig {
        protect_saturated: false,
        ..OptimalConfig::default()
    };
    for d in by_every_solver(&s, &cfg) {
        assert_well_formed(&s, &d);
        assert!((explained(&d, "a", "min_served_over_entitled") - 0.5).abs() < 1e-3);
    }
}

#[test]
fn a_saturated_node_is_planned_below_saturation() {
    // n1 (1000m) is saturated: a hog shows 600m beside web-0's 400m, and may
    // want more. It is planned to 80 %: 200m for web, the rest to n2.
    let s = Scenario::default()
        .node("n1", 1000.0, 600.0)
        .node("n2", 1000.0, 0.0)
        .service("web", "web", None)
        .pod("web-0", "web", "n1", 400.0)
        .pod("web-1", "web", "n2", 400.0);
    let d = decide(&s.topology, &s.cpu, &OptimalConfig::default()).unwrap();
    assert_well_formed(&s, &d);
    let load = loads(&d);
    // Both nodes end equally spare: n1 (200m room) and n2 (1000m) share 800m.
    assert!(load["web-0"] < 1.0, "{load:?}");
    assert!((load["web-1"] - 800.0).abs() < 1e-3, "{load:?}");
    // Planned to full capacity (the earlier model), n1 keeps 100m of web.
    let full = OptimalConfig {
        saturated_plan: 1.0,
        ..OptimalConfig::default()
    };
    let load = loads(&decide(&s.topology, &s.cpu, &full).unwrap());
    assert!((load["web-0"] - 100.0).abs() < 1e-3, "{load:?}");
}

#[test]
fn a_throttled_tenant_that_can_move_keeps_its_measured_demand() {
    // A hog (190m) saturates n3 beside fe-2's 200m: hotel is throttled
    // there, but its 600m fit the other nodes and fe has pods on them. Its
    // demand stays the measured 600m (raised to its 1000m fair share it
    // would not fit: an overload, decided by entitlements, moving off n3
    // only as fast as the hog's use shows), and the balance takes the load
    // off n3 in one round: n3 planned to 130m (a reserve of 80m for the
    // hog), every node 27.5 % spare, 20m left on n3.
    let s = Scenario::default()
        .node("n1", 400.0, 0.0)
        .node("n2", 400.0, 0.0)
        .node("n3", 400.0, 190.0)
        .service("fe", "hotel", Some(1000.0))
        .pod("fe-0", "fe", "n1", 200.0)
        .pod("fe-1", "fe", "n2", 200.0)
        .pod("fe-2", "fe", "n3", 200.0);
    for d in by_every_solver(&s, &OptimalConfig::default()) {
        assert_well_formed(&s, &d);
        assert_eq!(explain_of(&d, "fe")["tenant_throttled"], true);
        assert!((explained(&d, "fe", "tenant_demand_millicores") - 600.0).abs() < 1e-6);
        assert_eq!(explain_of(&d, "fe")["mode"], "all-served");
        let load = loads(&d);
        assert!((load["fe-2"] - 20.0).abs() < 1e-2, "{load:?}");
        assert!((load["fe-0"] - 290.0).abs() < 1e-2, "{load:?}");
    }
    // The same tenant with its only pod on n3 cannot move: raised (as the
    // prototype's tenant 3 is) so the node makes room for its fair share.
    let stuck = Scenario::default()
        .node("n1", 400.0, 0.0)
        .node("n3", 400.0, 190.0)
        .service("fe", "hotel", Some(300.0))
        .service("web", "shop", None)
        .pod("fe-2", "fe", "n3", 200.0)
        .pod("web-0", "web", "n1", 0.0)
        .pod("web-1", "web", "n3", 0.0);
    let d = decide(&stuck.topology, &stuck.cpu, &OptimalConfig::default()).unwrap();
    let raised = explained(&d, "fe", "tenant_demand_millicores");
    assert!(
        (raised - 300.0).abs() < 1e-6,
        "{raised}: {}",
        explain_of(&d, "fe")
    );
}

#[test]
fn a_node_saturated_by_managed_load_only_keeps_its_room() {
    // Both nodes at 92 %, no background: nothing is hidden, so the split
    // stays proportional to capacity whether or not a node is saturated
    // (noise at the threshold must not move load).
    let s = Scenario::default()
        .node("n1", 1000.0, 0.0)
        .node("n2", 500.0, 0.0)
        .service("web", "web", None)
        .pod("web-0", "web", "n1", 920.0)
        .pod("web-1", "web", "n2", 460.0);
    for d in by_every_solver(&s, &OptimalConfig::default()) {
        assert_well_formed(&s, &d);
        let load = loads(&d);
        assert!((load["web-0"] - 920.0).abs() < 1e-3, "{load:?}");
        assert!((load["web-1"] - 460.0).abs() < 1e-3, "{load:?}");
    }
}

#[test]
fn the_plan_is_dropped_when_it_would_cut_a_service_it_cannot_move() {
    // n1 is saturated (hog 500m + api 400m of 1000m). Planned to 80 %, n1
    // would leave api 300m, and api has no pod elsewhere; the total demand
    // (400m + 100m) still fits the planned total, but not per node. The
    // plan is dropped: api keeps its 400m and web moves to n2.
    let s = Scenario::default()
        .node("n1", 1000.0, 500.0)
        .node("n2", 1000.0, 0.0)
        .service("api", "a", None)
        .service("web", "w", None)
        .pod("api-0", "api", "n1", 400.0)
        .pod("web-0", "web", "n1", 0.0)
        .pod("web-1", "web", "n2", 100.0);
    for d in by_every_solver(&s, &OptimalConfig::default()) {
        assert_well_formed(&s, &d);
        let load = loads(&d);
        assert!((load["api-0"] - 400.0).abs() < 1e-3, "{load:?}");
        assert!((load["web-1"] - 100.0).abs() < 1e-3, "{load:?}");
    }
}

#[test]
fn pods_on_unknown_nodes_keep_their_even_share() {
    let s = Scenario::default()
        .node("n1", 2000.0, 1500.0)
        .node("n2", 2000.0, 0.0)
        .unknown_node("n3", 2000.0)
        .service("web", "web", None)
        .pod("web-0", "web", "n1", 300.0)
        .pod("web-1", "web", "n2", 300.0)
        .pod("web-2", "web", "n3", 300.0);
    let d = decide(&s.topology, &s.cpu, &OptimalConfig::default()).unwrap();
    assert_well_formed(&s, &d);
    let w = weights_of(&d, "web");
    assert!((w["web-2"] - 1.0 / 3.0).abs() < 1e-12, "{w:?}");
    // The busy node 1 gets less than the idle node 2.
    assert!(w["web-0"] < w["web-1"], "{w:?}");
    let e = explain_of(&d, "web");
    let pods = e["pods"].as_array().unwrap();
    assert!(
        pods.iter()
            .any(|p| p["pod"] == "web-2" && p["node_known"] == false)
    );
}

#[test]
fn a_service_with_all_pods_on_unknown_nodes_is_left_out() {
    let s = Scenario::default()
        .node("n1", 2000.0, 0.0)
        .unknown_node("n2", 2000.0)
        .service("web", "web", None)
        .service("db", "db", None)
        .pod("web-0", "web", "n2", 100.0)
        .pod("db-0", "db", "n1", 100.0);
    let d = decide(&s.topology, &s.cpu, &OptimalConfig::default()).unwrap();
    assert!(!d.weights.contains_key(&fqdn("web")));
    let e = explain_of(&d, "web");
    let status = e["status"].as_str().unwrap();
    assert!(status.contains("fresh CPU report"), "{status}");
    assert!(d.weights.contains_key(&fqdn("db")));
}

#[test]
fn a_drained_pod_gets_no_weight_and_its_load_moves() {
    // The caller marks drained pods unready.
    let s = Scenario::default()
        .node("n1", 2000.0, 0.0)
        .node("n2", 2000.0, 0.0)
        .service("web", "web", None)
        .pod_with("web-0", "web", "n1", 800.0, false)
        .pod("web-1", "web", "n1", 200.0)
        .pod("web-2", "web", "n2", 200.0);
    let d = decide(&s.topology, &s.cpu, &OptimalConfig::default()).unwrap();
    assert_well_formed(&s, &d);
    let w = weights_of(&d, "web");
    assert!(!w.contains_key("web-0"));
    // The drained pod's 800m is demand placed on the two others: balancing
    // the nodes means node 1 (which loses the drained pod's use) and node 2
    // get 600m each.
    assert_eq!(explained(&d, "web", "service_demand_millicores"), 1200.0);
    assert!((w["web-1"] - 0.5).abs() < 0.01, "{w:?}");
}

#[test]
fn degenerate_inputs_never_panic_and_fall_back() {
    let cfg = OptimalConfig::default();
    // Empty everything.
    let s = Scenario::default();
    let d = decide(&s.topology, &s.cpu, &cfg).unwrap();
    assert!(d.weights.is_empty() && d.explain.is_empty());
    // No demand yet: left out, explained.
    let s = Scenario::default()
        .node("n1", 1000.0, 0.0)
        .service("web", "web", None)
        .pod("web-0", "web", "n1", 0.0)
        .pod("web-1", "web", "n1", 0.0);
    let d = decide(&s.topology, &s.cpu, &cfg).unwrap();
    assert!(d.weights.is_empty());
    assert!(
        explain_of(&d, "web")["status"]
            .as_str()
            .unwrap()
            .contains("no CPU demand")
    );
    // Zero, NaN and infinite numbers: the node is unknown, nothing is NaN.
    for (cap, used) in [
        (0.0, 10.0),
        (f64::NAN, 10.0),
        (1000.0, f64::NAN),
        (f64::INFINITY, 1.0),
    ] {
        let mut s = Scenario::default()
            .node("n1", 1000.0, 0.0)
            .node("n2", 1000.0, 0.0)
            .service("web", "web", Some(f64::NAN))
            .pod("web-0", "web", "n1", 100.0)
            .pod("web-1", "web", "n2", 100.0);
        s.topology.nodes.get_mut("n2").unwrap().capacity_millicores = cap;
        let n2 = s.cpu.nodes.get_mut("n2").unwrap();
        n2.capacity_millicores = cap;
        n2.used_millicores = used;
        s.cpu.pods.insert("web-0".into(), f64::INFINITY);
        let d = decide(&s.topology, &s.cpu, &cfg).unwrap();
        assert_well_formed(&s, &d);
        let text = serde_json::to_string(&d.explain).unwrap();
        assert!(!text.contains("NaN"), "{text}");
    }
    // Background above capacity everywhere: demand cannot be placed at all.
    let s = Scenario::default()
        .node("n1", 1000.0, 5000.0)
        .service("web", "web", Some(500.0))
        .pod("web-0", "web", "n1", 100.0);
    let d = decide(&s.topology, &s.cpu, &cfg).unwrap();
    assert_well_formed(&s, &d);
    assert!(!d.weights.contains_key(&fqdn("web")));
}

#[test]
fn explain_names_the_inputs_and_the_reason_per_pod() {
    let s = prototype();
    let d = decide(&s.topology, &s.cpu, &OptimalConfig::default()).unwrap();
    let e = &explain_of(&d, "t1");
    for key in [
        "tenant_fair_share_millicores",
        "tenant_demand_measured_millicores",
        "tenant_entitled_millicores",
        "service_demand_millicores",
        "model",
        "config",
        "solver",
    ] {
        assert!(!e[key].is_null(), "explain lacks {key}: {e:#}");
    }
    let pods = e["pods"].as_array().unwrap();
    let a = pods.iter().find(|p| p["pod"] == "t1-a").unwrap();
    assert!(
        a["why"]
            .as_str()
            .unwrap()
            .starts_with("no load placed here"),
        "{a:#}"
    );
    assert_eq!(a["node_saturated"], true);
    assert_eq!(a["node_background_millicores"], 50.0);
}

/// A solver that answers with the wrong number of values, or NaN.
struct Broken(bool);

impl weight_server::policy::optimal::lp::LpSolver for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }
    fn maximise(
        &self,
        lp: &weight_server::policy::optimal::lp::Lp,
    ) -> weight_server::Result<Vec<f64>> {
        Ok(if self.0 {
            vec![1.0]
        } else {
            vec![f64::NAN; lp.bounds.len()]
        })
    }
}

#[test]
fn a_misbehaving_solver_is_an_error_not_a_panic() {
    let s = prototype();
    for short in [true, false] {
        let r = decide_with(
            &s.topology,
            &s.cpu,
            &OptimalConfig::default(),
            &Broken(short),
        );
        let e = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("broken"), "{e}");
    }
}
