//! Lab scenarios: nodes with capacities, services with tenants, fair shares
//! and per-request CPU costs, pods placed on nodes, and the offered load.
//! A scenario also renders the weight server's topology file.

use std::net::SocketAddr;

use serde::Serialize;

/// A cgroup "node".
#[derive(Debug, Clone, Serialize)]
pub struct NodeSpec {
    pub name: String,
    pub capacity_millicores: u64,
}

/// A service of a tenant.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceSpec {
    pub name: String,
    pub tenant: String,
    /// The port clients put in `:authority`.
    pub port: u16,
    pub fair_share_millicores: Option<u64>,
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
    pub name: String,
    pub service: String,
    pub node: String,
}

/// A whole scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub name: String,
    pub nodes: Vec<NodeSpec>,
    pub services: Vec<ServiceSpec>,
    pub pods: Vec<PodSpec>,
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
    /// The multi-party case: three unequal nodes; tenant `hotel` (frontend
    /// calling profile) on all of them; tenant `batch` (a CPU hog with a fair
    /// share) only on the smallest.
    pub fn shared_node() -> Self {
        let nodes = vec![
            node("node-a", 600),
            node("node-b", 400),
            node("node-c", 250),
        ];
        let hotel = |name: &str, port, calls: Option<&str>, entry| ServiceSpec {
            name: name.into(),
            tenant: "hotel".into(),
            port,
            fair_share_millicores: Some(500),
            cost_us: 2000,
            calls: calls.map(str::to_string),
            hog_millicores: 0,
            request_millicores: 100,
            entry,
        };
        let services = vec![
            hotel("frontend", 8080, Some("profile"), true),
            hotel("profile", 8081, None, false),
            ServiceSpec {
                name: "batch".into(),
                tenant: "batch".into(),
                port: 8090,
                fair_share_millicores: Some(150),
                cost_us: 0,
                calls: None,
                hog_millicores: 175,
                request_millicores: 150,
                entry: false,
            },
        ];
        let mut pods = Vec::new();
        for svc in ["frontend", "profile"] {
            for (i, n) in ["node-a", "node-b", "node-c"].iter().enumerate() {
                pods.push(pod(&format!("{svc}-{i}"), svc, n));
            }
        }
        pods.push(pod("batch-0", "batch", "node-c"));
        Scenario {
            name: "shared-node".into(),
            nodes,
            services,
            pods,
        }
    }

    /// Look a scenario up by name.
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "shared-node" => Some(Self::shared_node()),
            _ => None,
        }
    }

    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn pods_of<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a PodSpec> + 'a {
        self.pods.iter().filter(move |p| p.service == service)
    }

    pub fn total_capacity(&self) -> u64 {
        self.nodes.iter().map(|n| n.capacity_millicores).sum()
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

    /// The entry request rate that makes total demand (hog demand plus
    /// request CPU) `fraction` of total node capacity.
    pub fn rate_for_utilisation(&self, fraction: f64) -> f64 {
        let Some(entry) = self.services.iter().find(|s| s.entry) else {
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

    /// The weight server's topology file (docs/ARCHITECTURE.md format).
    pub fn topology_yaml(&self, addrs: &dyn Fn(&str) -> SocketAddr) -> String {
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
                    fair_share_millicores: s.fair_share_millicores.map(|f| f as f64),
                    aliases: Vec::new(),
                })
                .collect(),
            pods: self
                .pods
                .iter()
                .map(|p| PodEntry {
                    name: p.name.clone(),
                    service: p.service.clone(),
                    node: p.node.clone(),
                    address: addrs(&p.name).to_string(),
                    uid: Some(p.name.clone()),
                    ready: true,
                    cpu_request_millicores: None,
                })
                .collect(),
        };
        serde_norway::to_string(&doc).unwrap_or_default()
    }
}

fn node(name: &str, capacity_millicores: u64) -> NodeSpec {
    NodeSpec {
        name: name.into(),
        capacity_millicores,
    }
}

fn pod(name: &str, service: &str, node: &str) -> PodSpec {
    PodSpec {
        name: name.into(),
        service: service.into(),
        node: node.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_node_shape() {
        let s = Scenario::shared_node();
        assert_eq!(s.total_capacity(), 1250);
        assert_eq!(s.chain_cost_us("frontend"), 4000);
        assert_eq!(
            s.pods_of("batch")
                .map(|p| p.node.as_str())
                .collect::<Vec<_>>(),
            ["node-c"]
        );
        // 70% of 1250m = 875m, minus the 175m hog = 700m at 4 ms per request.
        assert!((s.rate_for_utilisation(0.7) - 175.0).abs() < 1e-6);
    }

    #[test]
    fn topology_file_uses_pod_names_as_uids() {
        let s = Scenario::shared_node();
        let yaml = s.topology_yaml(&|_| "127.0.0.1:9000".parse().unwrap());
        let t: mplb_wire::topology::TopologyFile = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(t.nodes[2].capacity_millicores, 250.0);
        assert_eq!(t.services[2].fair_share_millicores, Some(150.0));
        assert_eq!(t.pods[0].uid.as_deref(), Some("frontend-0"));
        assert_eq!(t.pods[0].address, "127.0.0.1:9000");
    }
}
