//! The cluster as the weight server sees it (`topology` in
//! `GET /admin/state`): nodes, services with their tenant, fair share and
//! aliases, and pods. The weight server's policies read this same type.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// A snapshot of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Topology {
    /// By node name.
    pub nodes: BTreeMap<String, Node>,
    /// By FQDN (`name.namespace.svc.<cluster domain>`), the weights table key.
    pub services: BTreeMap<String, Service>,
    /// By pod name (unique within the managed set; namespaces are folded into
    /// the service key).
    pub pods: BTreeMap<String, Pod>,
    /// Short aliases left out because more than one service would claim them
    /// (two namespaces with a service of the same name); lowercased.
    #[serde(skip)]
    pub dropped_aliases: Vec<String>,
}

/// A node and its CPU capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The node's name.
    pub name: String,
    /// Allocatable CPU in millicores.
    pub capacity_millicores: f64,
}

/// A managed service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// Short name, e.g. `profile`.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// `name.namespace.svc.<cluster domain>`.
    pub fqdn: String,
    /// The party this service belongs to.
    pub tenant: String,
    /// The port clients use.
    pub port: u16,
    /// Explicit fair share of this service in millicores; a tenant's share is
    /// the sum over its services. `None`: the sum of its pods' CPU requests.
    pub fair_share_millicores: Option<f64>,
    /// All names besides the FQDN: `name`, `name.ns`, `name.ns.svc`, extras.
    pub aliases: Vec<String>,
}

/// A replica of a managed service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pod {
    /// The pod's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Canonical dashed UID (kube) or the pod name (file default).
    pub uid: String,
    /// FQDN of its service (a key of [`Topology::services`]).
    pub service: String,
    /// The node it runs on.
    pub node: String,
    /// Where it serves.
    pub address: SocketAddr,
    /// Whether it is ready.
    pub ready: bool,
    /// Sum of its containers' CPU requests, when known.
    pub cpu_request_millicores: Option<f64>,
}

impl Topology {
    /// Ready pods of a service, in stable (name) order.
    pub fn ready_pods<'a>(&'a self, fqdn: &'a str) -> impl Iterator<Item = &'a Pod> + 'a {
        self.pods
            .values()
            .filter(move |p| p.service == fqdn && p.ready)
    }

    /// Ready pods grouped by service FQDN, each in stable (name) order: one
    /// pass over the pods instead of one per service.
    pub fn ready_pods_by_service(&self) -> BTreeMap<&str, Vec<&Pod>> {
        let mut out: BTreeMap<&str, Vec<&Pod>> = BTreeMap::new();
        for p in self.pods.values().filter(|p| p.ready) {
            out.entry(p.service.as_str()).or_default().push(p);
        }
        out
    }

    /// The fair share of a tenant: explicit service shares, else pod requests.
    pub fn fair_share(&self, tenant: &str) -> f64 {
        self.services
            .values()
            .filter(|s| s.tenant == tenant)
            .map(|s| {
                s.fair_share_millicores.unwrap_or_else(|| {
                    self.pods
                        .values()
                        .filter(|p| p.service == s.fqdn)
                        .filter_map(|p| p.cpu_request_millicores)
                        .sum()
                })
            })
            .sum()
    }
}
