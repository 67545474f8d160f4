use super::*;
use crate::convergence::Convergence;
use crate::load::LoadResult;
use std::collections::BTreeMap;

fn result(policy: &str, repeat: u32, p99: f64, busiest: f64, shop: f64) -> PolicyResult {
    let load = LoadResult {
        p50_ms: p99 / 4.0,
        p99_ms: p99,
        p999_ms: p99 * 1.5,
        ..LoadResult::default()
    };
    PolicyResult {
        policy: policy.into(),
        repeat,
        load: load.clone(),
        entries: [("frontend".to_string(), load)].into(),
        gateway: BTreeMap::new(),
        node_util_pct: [("a".to_string(), busiest), ("b".to_string(), 50.0)].into(),
        tenant_millicores: [("hotel".to_string(), 500.0), ("shop".to_string(), shop)].into(),
        pod_millicores: BTreeMap::new(),
        tenant_fair_share: [("hotel".to_string(), 500.0), ("shop".to_string(), 400.0)].into(),
        tenant_entitled: [("hotel".to_string(), 500.0), ("shop".to_string(), 400.0)].into(),
        version_changes: 0,
        weight_changes: 0,
        final_weights: BTreeMap::new(),
        convergence: Convergence {
            settle: vec![(10.0, Some(2))],
            oscillations: 0,
            signal_to_weight_s: vec![1.5, 2.5],
        },
        events: Vec::new(),
        samples: Vec::new(),
    }
}

fn run() -> RunFile {
    let scenario = serde_json::json!({
        "name": "two", "tenants": [{"name": "hotel"}, {"name": "shop"}],
        "load": [{"service": "frontend", "steps": [{"at_s": 0, "cpu_fraction": 0.4}, {"at_s": 10, "cpu_fraction": 0.8}]}],
        "events": [{"at_s": 5, "kind": "hog_start", "node": "a"}],
        "nodes": [], "pods": []
    });
    let mut results = Vec::new();
    for rep in 1..=3 {
        // Medians: even 300 ms (node a at 99 %), spare 100 ms, optimal 105 ms.
        results.push(result("even", rep, 300.0 + rep as f64, 99.0, 300.0));
        results.push(result("spare", rep, 100.0, 60.0, 380.0));
        results.push(result(
            "optimal",
            rep,
            [90.0, 105.0, 200.0][rep as usize - 1],
            55.0,
            400.0,
        ));
    }
    RunFile {
        config: RunConfigView {
            scenario: serde_json::from_value(scenario).unwrap(),
        },
        results,
    }
}

#[test]
fn every_target_that_applies_is_judged_on_medians() {
    let v = verdicts(&run());
    let by: BTreeMap<&str, &Verdict> = v.iter().map(|v| (v.target.as_str(), v)).collect();
    let best = by["frontend p99 <= 1.10x the best other policy's"];
    assert!(best.met, "{best:?}");
    assert_eq!(best.measured, "105.0 ms vs spare 100.0 ms (1.05x)");
    let even = by["frontend p99 <= 0.5x even's (a node is contended)"];
    assert!(
        even.met && even.measured.starts_with("105.0 ms vs 302.0 ms"),
        "{even:?}"
    );
    let shop = by["shop served >= 99 % of its entitlement"];
    assert!(shop.met);
    assert_eq!(shop.measured, "100 % (spare 95 %)");
    // max/avg: optimal 55 over the mean of 55 and 50.
    assert!(by["max/avg node CPU <= 1.10 (all demand fits)"].met);
    assert_eq!(
        by["settles within 3 polls after a load step, no oscillation"].measured,
        "2 polls, 0 sign changes"
    );
    let signal = by["signal-to-weight p99 <= 2 s"];
    assert!(!signal.met);
    assert_eq!(signal.measured, "2.5 s");
    let t = targets_table(&v);
    assert!(
        t.contains("| two | signal-to-weight p99 <= 2 s | 2.5 s | **no** |"),
        "{t}"
    );
}

#[test]
fn demand_above_capacity_has_no_balance_target_and_no_optimal_no_verdict() {
    let mut r = run();
    r.config.scenario.load[0].steps[1].cpu_fraction = Some(1.3);
    assert!(!verdicts(&r).iter().any(|v| v.target.starts_with("max/avg")));
    r.results.retain(|x| x.policy != "optimal");
    assert!(verdicts(&r).is_empty());
}

#[test]
fn the_table_has_a_row_per_policy_with_medians() {
    let t = table(&[("results/two/x/summary.md".into(), run())]);
    assert!(
        t.contains("| [two](results/two/x/summary.md) | optimal | 26.2 / 105.0 / 157.5 | - | 0 | 1.05 | 55 | hotel 100%, shop 100% | 1.000 | 2 | 0 | 2.5 |"),
        "{t}"
    );
    assert!(t.contains("| even | "), "{t}");
}

#[test]
fn a_missing_results_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let e = read_run(dir.path()).unwrap_err().to_string();
    assert!(e.contains("results.json"), "{e}");
}
