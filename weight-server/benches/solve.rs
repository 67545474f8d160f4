//! Solve time of the `optimal` policy on synthetic clusters: 1,000 nodes x
//! 5,000 pods (target < 100 ms) and 5,000 nodes x 25,000 pods (target
//! < 1 s), in the common case (all demand fits) and overloaded (demand above
//! capacity), with services of 50 pods and of 5 pods. `decide` is measured
//! whole: model build, solves and weights (the explain JSON is built later,
//! per service, when an operator asks for it). The default solver
//! (`flow`) runs every case; the LP solver (`clarabel`) runs the 1,000-node
//! cases for comparison. Each case also prints the solver's own time
//! (`solve_ms`) and the number of levels solved.
//!
//! `CARGO_TARGET_DIR=... cargo bench -p weight-server --bench solve`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use weight_server::policy::optimal::{OptimalConfig, SolverKind, decide};
use weight_server::policy::{CpuView, NodeCpu};
use weight_server::topology::{Node, Pod, Service, Topology};

/// A tiny deterministic generator (no dependency, same cluster every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }
    fn index(&mut self, n: usize) -> usize {
        ((self.next() * n as f64) as usize).min(n - 1)
    }
}

/// `nodes` nodes of 4-16 cores with 10-40% background; `pods` pods in
/// services of `replicas` pods on random nodes, 2 services per tenant; pod
/// use scaled so managed demand is `load` x the room left by the background.
fn cluster(nodes: usize, pods: usize, replicas: usize, load: f64) -> (Topology, CpuView) {
    let mut rng = Lcg(0x5eed + nodes as u64);
    let mut t = Topology::default();
    let mut cpu = CpuView::default();
    let mut room = 0.0;
    for i in 0..nodes {
        let name = format!("node-{i}");
        let cap = 1000.0 * (4 + rng.index(13)) as f64;
        let bg = cap * rng.range(0.1, 0.4);
        room += cap - bg;
        t.nodes.insert(
            name.clone(),
            Node {
                name: name.clone(),
                capacity_millicores: cap,
            },
        );
        cpu.nodes.insert(
            name,
            NodeCpu {
                capacity_millicores: cap,
                used_millicores: bg,
            },
        );
    }
    let services = pods.div_ceil(replicas);
    for s in 0..services {
        let fqdn = format!("svc-{s}.default.svc.cluster.local");
        t.services.insert(
            fqdn.clone(),
            Service {
                name: format!("svc-{s}"),
                namespace: "default".into(),
                fqdn,
                tenant: format!("tenant-{}", s / 2),
                port: 8080,
                fair_share_millicores: None,
                aliases: Vec::new(),
            },
        );
    }
    let raw: Vec<f64> = (0..pods).map(|_| rng.range(0.2, 1.0)).collect();
    let scale = load * room / raw.iter().sum::<f64>();
    for (p, r) in raw.into_iter().enumerate() {
        let name = format!("pod-{p}");
        let node = format!("node-{}", rng.index(nodes));
        let use_ = r * scale;
        if let Some(n) = cpu.nodes.get_mut(&node) {
            n.used_millicores += use_;
        }
        cpu.pods.insert(name.clone(), use_);
        t.pods.insert(
            name.clone(),
            Pod {
                name: name.clone(),
                namespace: "default".into(),
                uid: name,
                service: format!("svc-{}.default.svc.cluster.local", p / replicas),
                node,
                address: std::net::SocketAddr::from(([10, 0, 0, 1], 8080)),
                ready: true,
                cpu_request_millicores: Some(use_ * 0.8),
            },
        );
    }
    (t, cpu)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("optimal");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    // (nodes, pods, replicas per service, load)
    for (nodes, pods, replicas, load) in [
        (1_000, 5_000, 50, 0.6),
        (1_000, 5_000, 50, 1.3),
        (5_000, 25_000, 50, 0.6),
        (5_000, 25_000, 50, 1.3),
        (1_000, 5_000, 5, 0.6),
        (1_000, 5_000, 5, 1.3),
        (5_000, 25_000, 5, 0.6),
        (5_000, 25_000, 5, 1.3),
    ] {
        let (t, cpu) = cluster(nodes, pods, replicas, load);
        for solver in [SolverKind::Flow, SolverKind::Clarabel] {
            if solver == SolverKind::Clarabel && nodes > 1_000 {
                continue;
            }
            let cfg = OptimalConfig {
                solver,
                ..OptimalConfig::default()
            };
            let d = decide(&t, &cpu, &cfg).unwrap();
            let e = d.explain.get(&d.explain.services()[0]).unwrap();
            eprintln!(
                "{nodes} nodes x {pods} pods, {replicas} per service, load {load}, {solver:?}: mode {}, \
                 {} services weighted, min spare {:.4}, min served/entitled {:.4}, solve_ms {:.1}, \
                 {} stage objectives",
                e["mode"],
                d.weights.len(),
                e["min_spare_fraction"].as_f64().unwrap(),
                e["min_served_over_entitled"].as_f64().unwrap(),
                e["solve_ms"].as_f64().unwrap(),
                e["stage_objectives"].as_array().unwrap().len(),
            );
            let name = format!("{solver:?}/{nodes}n_{pods}p_{replicas}r_load{load}").to_lowercase();
            group.bench_function(name, |b| {
                b.iter(|| decide(black_box(&t), black_box(&cpu), &cfg).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
