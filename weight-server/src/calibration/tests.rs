#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use mplb_wire::{Endpoint, ServiceWeights};

const SVC: &str = "front.default.svc.cluster.local";
const PODS: [&str; 3] = ["front-0", "front-1", "front-2"];

fn table(w: &[f64; 3]) -> WeightsTable {
    let endpoints = PODS
        .iter()
        .enumerate()
        .map(|(i, pod)| Endpoint {
            pod: pod.to_string(),
            address: format!("127.0.0.1:{}", 9000 + i),
            weight: w[i],
        })
        .collect();
    WeightsTable {
        version: 1,
        generated_at_ms: 1,
        ttl_ms: 30_000,
        services: [(
            SVC.to_string(),
            ServiceWeights {
                aliases: vec![],
                endpoints,
                admit: None,
            },
        )]
        .into(),
    }
}

fn decision(plan: &[f64; 3]) -> Decision {
    let mut d = Decision::default();
    d.weights.insert(
        SVC.into(),
        PODS.iter()
            .zip(plan)
            .map(|(p, w)| (p.to_string(), *w))
            .collect(),
    );
    d
}

/// The plant: a pod's CPU is its share of the requests times its cost.
fn cpu(w: &[f64; 3], cost: &[f64; 3]) -> CpuView {
    let mut v = CpuView::default();
    for i in 0..3 {
        v.pods_last.insert(PODS[i].into(), 600.0 * w[i] * cost[i]);
    }
    v
}

fn normalised(d: &Decision) -> [f64; 3] {
    let m = &d.weights[SVC];
    let sum: f64 = m.values().sum();
    [m[PODS[0]] / sum, m[PODS[1]] / sum, m[PODS[2]] / sum]
}

fn shares(w: &[f64; 3], cost: &[f64; 3]) -> [f64; 3] {
    let c: Vec<f64> = (0..3).map(|i| w[i] * cost[i]).collect();
    let sum: f64 = c.iter().sum();
    [c[0] / sum, c[1] / sum, c[2] / sum]
}

#[test]
fn the_planned_cpu_split_is_reached_when_requests_cost_differently() {
    // A request costs 0.9 on the cool pod, 1.25 on a busy one.
    let cost = [0.9, 1.25, 1.0];
    let plan = [0.5, 0.2, 0.3];
    // Uncalibrated, the plan's weights give another CPU split.
    let off = shares(&plan, &cost);
    assert!((off[0] - plan[0]).abs() > 0.02, "{off:?}");
    let mut cal = Calibration::new(CalibrationConfig::default());
    let mut w = plan;
    for _ in 0..40 {
        let mut d = decision(&plan);
        cal.apply(
            &mut d,
            &cpu(&w, &cost),
            Some(&table(&w)),
            &StaticWeights::new(),
        );
        w = normalised(&d);
    }
    let got = shares(&w, &cost);
    for i in 0..3 {
        assert!((got[i] - plan[i]).abs() < 0.005, "{got:?} vs {plan:?}");
    }
    assert!(cal.factor("front-1") > 1.1 && cal.factor("front-0") < 1.0);
}

#[test]
fn unmeasured_pods_keep_a_factor_of_one_and_factors_are_clamped() {
    let mut cal = Calibration::new(CalibrationConfig {
        gain: 1.0,
        ..CalibrationConfig::default()
    });
    // front-2 serves 1 %: not measured; front-1 looks 5x as costly: clamped.
    let w = [0.49, 0.5, 0.01];
    let mut v = CpuView::default();
    for (pod, c) in PODS.iter().zip([100.0, 500.0, 30.0]) {
        v.pods_last.insert(pod.to_string(), c);
    }
    let mut d = decision(&[0.4, 0.4, 0.2]);
    cal.apply(&mut d, &v, Some(&table(&w)), &StaticWeights::new());
    assert_eq!(cal.factor("front-2"), 1.0);
    assert!((cal.factor("front-1") - 1.5).abs() < 1e-12);
    assert!((cal.factor("front-0") - 1.0 / 1.5).abs() < 1e-12);
    // No table yet: the plan passes through (factors 1).
    let mut fresh = Calibration::new(CalibrationConfig::default());
    let mut d = decision(&[0.4, 0.4, 0.2]);
    fresh.apply(&mut d, &v, None, &StaticWeights::new());
    assert_eq!(normalised(&d), [0.4, 0.4, 0.2]);
}

#[test]
fn operator_weights_are_left_as_they_are() {
    let mut cal = Calibration::new(CalibrationConfig {
        gain: 1.0,
        ..CalibrationConfig::default()
    });
    let w = [0.4, 0.4, 0.2];
    let v = cpu(&w, &[0.8, 1.4, 1.0]);
    let operator: StaticWeights = [(
        SVC.to_string(),
        BTreeMap::from([(PODS[0].to_string(), 1.0)]),
    )]
    .into();
    let mut d = decision(&w);
    cal.apply(&mut d, &v, Some(&table(&w)), &operator);
    assert_eq!(normalised(&d), w);
}
