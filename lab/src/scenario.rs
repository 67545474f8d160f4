//! Lab scenarios: the typed scenario file ([`mplb_wire::scenario`], format in
//! docs/scenarios.md) turned into what the lab runs: nodes with capacities,
//! services with tenants, fair shares and per-request CPU costs, pods placed
//! on nodes, the offered-load schedule, timed events and the run settings.
//! Shipped scenarios live in `lab/scenarios/` and are embedded, so they run
//! by name from any directory. A scenario also renders the weight server's
//! topology file.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;

use mplb_wire::WireError;
use mplb_wire::scenario::{Event, LoadDef, RunDef, ScenarioFile, TenantDef};
use serde::Serialize;

use crate::error::{Error, Result};

/// The shipped scenarios, by name, as embedded YAML.
pub const SHIPPED: &[(&str, &str)] = &[
    ("shared-node", include_str!("../scenarios/shared-node.yaml")),
    ("homogeneous", include_str!("../scenarios/homogeneous.yaml")),
    ("two-tenants", include_str!("../scenarios/two-tenants.yaml")),
    ("load-step", include_str!("../scenarios/load-step.yaml")),
    ("hog", include_str!("../scenarios/hog.yaml")),
    (
        "agent-killed",
        include_str!("../scenarios/agent-killed.yaml"),
    ),
    (
        "over-capacity",
        include_str!("../scenarios/over-capacity.yaml"),
    ),
    ("smoke", include_str!("../scenarios/smoke.yaml")),
];

/// A cgroup "node".
#[derive(Debug, Clone, Serialize)]
pub struct NodeSpec {
    /// Node name: also the name of its cgroup under the lab subtree.
    pub name: String,
    /// CPU quota of the node's cgroup, in millicores.
    pub capacity_millicores: u64,
}

/// A service of a tenant.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceSpec {
    /// Short name (`frontend`); [`ServiceSpec::fqdn`] adds the namespace.
    pub name: String,
    /// The tenant that owns the service (a name from the scenario's `tenants`).
    pub tenant: String,
    /// The port clients put in `:authority`.
    pub port: u16,
    /// Fair share in millicores: the service's own, else its tenant's split
    /// evenly over the tenant's services; `None` when neither is set.
    pub fair_share_millicores: Option<f64>,
    /// CPU per request, in microseconds.
    pub cost_us: u64,
    /// The service this one calls per request (through its sidecar).
    pub calls: Option<String>,
    /// Background CPU demand of each pod (a batch hog).
    pub hog_millicores: u64,
    /// CPU request of each pod: its cgroup's cpu.shares (1024 per core).
    pub request_millicores: u64,
    /// Reached by the load generator through the ingress gateway.
    pub entry: bool,
}

/// A replica, bound to a loopback port when the lab starts.
#[derive(Debug, Clone, Serialize)]
pub struct PodSpec {
    /// Pod name (`frontend-0`): also its cgroup's name and its topology uid.
    pub name: String,
    /// The service this pod is a replica of.
    pub service: String,
    /// The node (cgroup) the pod runs on.
    pub node: String,
}

/// A whole scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// The scenario's name, from the file.
    pub name: String,
    /// Free text from the scenario file, printed in the run's summary.
    pub description: String,
    /// Nodes, in file order.
    pub nodes: Vec<NodeSpec>,
    /// Tenants as the file declares them.
    pub tenants: Vec<TenantDef>,
    /// Services, in file order.
    pub services: Vec<ServiceSpec>,
    /// Every pod of every service, including pods that start absent.
    pub pods: Vec<PodSpec>,
    /// Offered load per entry service.
    pub load: Vec<LoadDef>,
    /// Timed events of the measured window.
    pub events: Vec<Event>,
    /// Policies, repeats, windows.
    pub run: RunDef,
    /// Pods that start absent (their first event is `pod_add`).
    pub absent_at_start: BTreeSet<String>,
}

/// A scenario file's error as the lab's: `scenario <field>: <reason>`.
pub fn scenario_error(e: WireError) -> Error {
    match e {
        WireError::Field { field, reason } => Error::Scenario(format!("{field}: {reason}")),
        e => Error::Scenario(e.to_string()),
    }
}

/// The namespace of every lab service.
pub const NAMESPACE: &str = "default";

impl ServiceSpec {
    /// `name.default.svc.cluster.local`: the weights table key.
    pub fn fqdn(&self) -> String {
        format!("{}.{NAMESPACE}.svc.cluster.local", self.name)
    }
    /// What a client puts in `:authority`.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.fqdn(), self.port)
    }
}

impl Scenario {
    /// Build from a checked scenario file.
    pub fn from_file(f: ScenarioFile) -> Self {
        let nodes = f
            .nodes
            .iter()
            .map(|n| NodeSpec {
                name: n.name.clone(),
                capacity_millicores: n.capacity_millicores,
            })
            .collect();
        let mut services = Vec::new();
        let mut pods = Vec::new();
        for s in &f.services {
            let siblings = f.services.iter().filter(|x| x.tenant == s.tenant).count();
            let tenant_share = f
                .tenants
                .iter()
                .find(|t| t.name == s.tenant)
                .and_then(|t| t.fair_share_millicores);
            let fair = s
                .fair_share_millicores
                .map(|x| x as f64)
                .or(tenant_share.map(|t| t as f64 / siblings.max(1) as f64));
            services.push(ServiceSpec {
                name: s.name.clone(),
                tenant: s.tenant.clone(),
                port: s.port,
                fair_share_millicores: fair,
                cost_us: s.cost_us,
                calls: s.calls.clone(),
                hog_millicores: s.hog_millicores,
                request_millicores: s.request_millicores,
                entry: s.entry,
            });
            for (name, node) in s.pod_names().into_iter().zip(&s.pods_on) {
                pods.push(PodSpec {
                    name,
                    service: s.name.clone(),
                    node: node.clone(),
                });
            }
        }
        let mut absent_at_start = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for e in &f.events {
            match e {
                Event::PodAdd { pod, .. } if seen.insert(pod.clone()) => {
                    absent_at_start.insert(pod.clone());
                }
                Event::PodRemove { pod, .. }
                | Event::PodNotReady { pod, .. }
                | Event::PodReady { pod, .. } => {
                    seen.insert(pod.clone());
                }
                _ => {}
            }
        }
        Scenario {
            name: f.name,
            description: f.description,
            nodes,
            tenants: f.tenants,
            services,
            pods,
            load: f.load,
            events: f.events,
            run: f.run,
            absent_at_start,
        }
    }

    /// Parse and check scenario YAML.
    pub fn parse(text: &str) -> Result<Self> {
        mplb_wire::scenario::parse(text)
            .map(Self::from_file)
            .map_err(scenario_error)
    }

    /// A shipped scenario by name, or a file when `what` ends in `.yaml`/`.yml`.
    pub fn load(what: &str) -> Result<Self> {
        let text = Self::load_text(what)?;
        Self::parse(&text).map_err(|e| Error::Scenario(format!("{what}: {e}")))
    }

    /// The YAML of a shipped scenario or a file (see [`Scenario::load`]).
    pub fn load_text(what: &str) -> Result<String> {
        if what.ends_with(".yaml") || what.ends_with(".yml") {
            let path = Path::new(what);
            return std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e));
        }
        SHIPPED
            .iter()
            .find(|(n, _)| *n == what)
            .map(|(_, t)| t.to_string())
            .ok_or_else(|| {
                let known: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
                Error::Scenario(format!(
                    "unknown scenario {what:?} (shipped: {}; or pass a .yaml file)",
                    known.join(", ")
                ))
            })
    }

    /// A shipped scenario by name.
    pub fn by_name(name: &str) -> Result<Self> {
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            return Err(Error::Scenario(format!("{name:?} is a file, not a name")));
        }
        Self::load(name)
    }

    /// The multi-party case (`lab/scenarios/shared-node.yaml`).
    pub fn shared_node() -> Result<Self> {
        Self::by_name("shared-node")
    }

    /// The service named `name`, if the scenario has one.
    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The pods of `service`, in file order.
    pub fn pods_of<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a PodSpec> + 'a {
        self.pods.iter().filter(move |p| p.service == service)
    }

    /// Sum of all nodes' capacities, in millicores.
    pub fn total_capacity(&self) -> u64 {
        self.nodes.iter().map(|n| n.capacity_millicores).sum()
    }

    /// The entry services, in file order.
    pub fn entries(&self) -> impl Iterator<Item = &ServiceSpec> {
        self.services.iter().filter(|s| s.entry)
    }

    /// CPU per request of an entry request through all tiers, in microseconds.
    pub fn chain_cost_us(&self, entry: &str) -> u64 {
        let mut cost = 0;
        let mut next = Some(entry.to_string());
        let mut hops = 0;
        while let Some(name) = next {
            let Some(svc) = self.service(&name) else {
                break;
            };
            cost += svc.cost_us;
            next = svc.calls.clone();
            hops += 1;
            if hops > 16 {
                break;
            }
        }
        cost
    }

    /// The entry rate of a load step: its `rps`, or the rate whose request
    /// CPU through every tier is `cpu_fraction` of total capacity.
    pub fn step_rate(&self, entry: &str, rps: Option<f64>, cpu_fraction: Option<f64>) -> f64 {
        if let Some(r) = rps {
            return r;
        }
        let per_req_m = self.chain_cost_us(entry) as f64 / 1000.0;
        match cpu_fraction {
            Some(f) if per_req_m > 0.0 => f * self.total_capacity() as f64 / per_req_m,
            _ => 0.0,
        }
    }

    /// `(start s, rate)` steps of an entry service's schedule.
    pub fn schedule(&self, entry: &str) -> Vec<(f64, f64)> {
        self.load
            .iter()
            .filter(|l| l.service == entry)
            .flat_map(|l| l.steps.iter())
            .map(|s| (s.at_s, self.step_rate(entry, s.rps, s.cpu_fraction)))
            .collect()
    }

    /// The entry request rate that makes total demand (hog demand plus
    /// request CPU) `fraction` of total node capacity (the `--utilisation`
    /// override of the first entry service's schedule).
    pub fn rate_for_utilisation(&self, fraction: f64) -> f64 {
        let Some(entry) = self.entries().next() else {
            return 0.0;
        };
        let hogs: u64 = self
            .pods
            .iter()
            .filter_map(|p| self.service(&p.service))
            .map(|s| s.hog_millicores)
            .sum();
        let budget = fraction * self.total_capacity() as f64 - hogs as f64;
        let per_req_m = self.chain_cost_us(&entry.name) as f64 / 1000.0;
        if per_req_m <= 0.0 {
            return 0.0;
        }
        (budget / per_req_m).max(0.0)
    }

    /// The weight server's topology file (docs/ARCHITECTURE.md format), for
    /// every pod not in `absent`, with those in `not_ready` not ready.
    pub fn topology_yaml(
        &self,
        addrs: &dyn Fn(&str) -> SocketAddr,
        absent: &BTreeSet<String>,
        not_ready: &BTreeSet<String>,
    ) -> String {
        use mplb_wire::topology::{NodeEntry, PodEntry, ServiceEntry, TopologyFile};
        let doc = TopologyFile {
            nodes: self
                .nodes
                .iter()
                .map(|n| NodeEntry {
                    name: n.name.clone(),
                    capacity_millicores: n.capacity_millicores as f64,
                })
                .collect(),
            services: self
                .services
                .iter()
                .map(|s| ServiceEntry {
                    name: s.name.clone(),
                    namespace: NAMESPACE.to_string(),
                    tenant: Some(s.tenant.clone()),
                    port: s.port,
                    fair_share_millicores: s.fair_share_millicores,
                    aliases: Vec::new(),
                })
                .collect(),
            pods: self
                .pods
                .iter()
                .filter(|p| !absent.contains(&p.name))
                .map(|p| PodEntry {
                    name: p.name.clone(),
                    service: p.service.clone(),
                    node: p.node.clone(),
                    address: addrs(&p.name).to_string(),
                    uid: Some(p.name.clone()),
                    ready: !not_ready.contains(&p.name),
                    cpu_request_millicores: None,
                })
                .collect(),
        };
        serde_norway::to_string(&doc).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
