//! Shared helpers of the `optimal_*` tests (a module of each test that uses it): a
//! microlp [`LpSolver`] for cross-checks and a compact scenario builder.
#![allow(dead_code, clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use weight_server::policy::optimal::lp::{Cmp, Lp, LpSolver};
use weight_server::policy::{CpuView, NodeCpu};
use weight_server::topology::{Node, Pod, Service, Topology};

/// microlp (dual simplex, pure Rust) behind the same trait as clarabel.
pub struct MicroLp;

impl LpSolver for MicroLp {
    fn name(&self) -> &'static str {
        "microlp"
    }

    fn maximise(&self, lp: &Lp) -> weight_server::Result<Vec<f64>> {
        let mut obj = vec![0.0; lp.bounds.len()];
        for &(v, c) in &lp.objective {
            obj[v] += c;
        }
        let mut p = microlp::Problem::new(microlp::OptimizationDirection::Maximize);
        let vars: Vec<microlp::Variable> = lp
            .bounds
            .iter()
            .zip(&obj)
            .map(|(&b, &c)| p.add_var(c, b))
            .collect();
        for row in &lp.rows {
            let op = match row.cmp {
                Cmp::Le => microlp::ComparisonOp::Le,
                Cmp::Ge => microlp::ComparisonOp::Ge,
                Cmp::Eq => microlp::ComparisonOp::Eq,
            };
            let terms: Vec<(microlp::Variable, f64)> =
                row.terms.iter().map(|&(v, c)| (vars[v], c)).collect();
            p.add_constraint(terms, op, row.rhs);
        }
        let sol = p
            .solve()
            .map_err(|e| weight_server::Error::Solver(format!("microlp: {e}")))?
            .into_solution()
            .map_err(|e| weight_server::Error::Solver(format!("microlp: {e:?}")))?;
        Ok(vars.iter().map(|&v| sol.var_value(v)).collect())
    }
}

/// One pod of a scenario.
#[derive(Debug, Clone)]
pub struct P {
    pub name: String,
    pub service: String,
    pub node: String,
    pub cpu: f64,
    pub ready: bool,
}

/// A scenario: topology plus CPU view, built fluently.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    pub topology: Topology,
    pub cpu: CpuView,
}

pub fn fqdn(service: &str) -> String {
    format!("{service}.default.svc.cluster.local")
}

impl Scenario {
    /// A node with capacity and background use (reported use = background +
    /// the CPU of the pods added on it).
    pub fn node(mut self, name: &str, capacity: f64, background: f64) -> Self {
        self.topology.nodes.insert(
            name.into(),
            Node {
                name: name.into(),
                capacity_millicores: capacity,
            },
        );
        self.cpu.nodes.insert(
            name.into(),
            NodeCpu {
                capacity_millicores: capacity,
                used_millicores: background,
            },
        );
        self
    }

    /// A node in the topology without a fresh report.
    pub fn unknown_node(mut self, name: &str, capacity: f64) -> Self {
        self.topology.nodes.insert(
            name.into(),
            Node {
                name: name.into(),
                capacity_millicores: capacity,
            },
        );
        self
    }

    pub fn service(mut self, name: &str, tenant: &str, fair_share: Option<f64>) -> Self {
        let fq = fqdn(name);
        self.topology.services.insert(
            fq.clone(),
            Service {
                name: name.into(),
                namespace: "default".into(),
                fqdn: fq,
                tenant: tenant.into(),
                port: 8080,
                fair_share_millicores: fair_share,
                aliases: mplb_wire::default_aliases(name, "default"),
            },
        );
        self
    }

    /// A ready pod using `cpu` millicores.
    pub fn pod(self, name: &str, service: &str, node: &str, cpu: f64) -> Self {
        self.pod_with(name, service, node, cpu, true)
    }

    pub fn pod_with(
        mut self,
        name: &str,
        service: &str,
        node: &str,
        cpu: f64,
        ready: bool,
    ) -> Self {
        let n = self.topology.pods.len() as u16;
        self.topology.pods.insert(
            name.into(),
            Pod {
                name: name.into(),
                namespace: "default".into(),
                uid: name.into(),
                service: fqdn(service),
                node: node.into(),
                address: std::net::SocketAddr::from(([127, 0, 0, 1], 9000 + n)),
                ready,
                cpu_request_millicores: None,
            },
        );
        if let Some(n) = self.cpu.nodes.get_mut(node) {
            n.used_millicores += cpu;
            self.cpu.pods.insert(name.into(), cpu);
        }
        self
    }
}

/// Weights of one service (panics with context when absent: tests only).
pub fn weights_of<'a>(
    d: &'a weight_server::policy::Decision,
    service: &str,
) -> &'a BTreeMap<String, f64> {
    d.weights.get(&fqdn(service)).unwrap_or_else(|| {
        panic!(
            "no weights for {service}: {:#?}",
            d.explain.get(&fqdn(service))
        )
    })
}

/// Check the universal rules of a decision: every weighted service has
/// finite, non-negative weights summing to 1 over exactly its ready pods.
pub fn assert_well_formed(s: &Scenario, d: &weight_server::policy::Decision) {
    for (svc, w) in &d.weights {
        let ready: Vec<&String> = s.topology.ready_pods(svc).map(|p| &p.name).collect();
        let keys: Vec<&String> = w.keys().collect();
        assert_eq!(
            keys, ready,
            "{svc}: weights must cover exactly the ready pods"
        );
        let sum: f64 = w.values().sum();
        assert!(
            w.values().all(|v| v.is_finite() && *v >= 0.0),
            "{svc}: weights {w:?}"
        );
        assert!((sum - 1.0).abs() < 1e-9, "{svc}: sum {sum}");
    }
    for svc in d.weights.keys() {
        assert!(d.explain.contains(svc), "{svc}: weighted but not explained");
    }
}

/// The explain JSON of a service (panics with context when absent: tests only).
pub fn explain_of(d: &weight_server::policy::Decision, service: &str) -> serde_json::Value {
    d.explain.get(&fqdn(service)).unwrap_or_else(|| {
        panic!(
            "no explain for {service}; explained: {:?}",
            d.explain.services()
        )
    })
}

/// A number from the explain JSON of a service.
pub fn explained(d: &weight_server::policy::Decision, service: &str, key: &str) -> f64 {
    d.explain
        .get(&fqdn(service))
        .and_then(|e| e.get(key).and_then(serde_json::Value::as_f64))
        .unwrap_or_else(|| panic!("explain of {service} lacks {key}"))
}

/// Per pod load (millicores) as the explain output reports it.
pub fn loads(d: &weight_server::policy::Decision) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for e in d.explain.all().values() {
        for p in e["pods"].as_array().into_iter().flatten() {
            if let (Some(name), Some(load)) = (p["pod"].as_str(), p["load_millicores"].as_f64()) {
                out.insert(name.to_string(), load);
            }
        }
    }
    out
}

/// The default config without the saturation raise (the tests' oracles do
/// not model it).
pub fn unprotected() -> weight_server::policy::optimal::OptimalConfig {
    weight_server::policy::optimal::OptimalConfig {
        protect_saturated: false,
        ..Default::default()
    }
}

/// The stage a decision came from (`all-served`, `overloaded`, `idle`).
pub fn mode(d: &weight_server::policy::Decision) -> Option<serde_json::Value> {
    first_explain(d).map(|e| e["mode"].clone())
}

/// The explain JSON of the first service (FQDN order); `None` without any.
pub fn first_explain(d: &weight_server::policy::Decision) -> Option<serde_json::Value> {
    d.explain.services().first().and_then(|s| d.explain.get(s))
}

/// The prototype: 3 nodes of 2 cores; tenant 1 (`t1`) on nodes 1 and 2,
/// tenant 2 (`t2`) on nodes 2 and 3, tenant 3 (`t3`) only on node 1. Node 1
/// is saturated: t3 is throttled at 1300m although its fair share is 1500m,
/// and half of t1's traffic lands there.
pub fn prototype() -> Scenario {
    Scenario::default()
        .node("n1", 2000.0, 50.0)
        .node("n2", 2000.0, 50.0)
        .node("n3", 2000.0, 50.0)
        .service("t1", "tenant-1", Some(1000.0))
        .service("t2", "tenant-2", Some(1000.0))
        .service("t3", "tenant-3", Some(1500.0))
        .pod("t1-a", "t1", "n1", 600.0)
        .pod("t1-b", "t1", "n2", 400.0)
        .pod("t2-a", "t2", "n2", 500.0)
        .pod("t2-b", "t2", "n3", 500.0)
        .pod("t3-a", "t3", "n1", 1300.0)
}
