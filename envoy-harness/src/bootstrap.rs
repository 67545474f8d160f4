//! Typed builders for Envoy's static bootstrap: listeners with an HTTP
//! connection manager (virtual hosts, routes, HTTP filters), STATIC clusters
//! and the admin address. Rendered as JSON, which Envoy reads for `-c`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::filters::HttpFilter;

mod route;

pub use route::{Action, HeaderMatch, PathMatch, Route, VirtualHost, per_pod_routes};

/// Envoy's `{"socket_address": ...}` for an address.
pub fn socket_address(addr: SocketAddr) -> Value {
    json!({"socket_address": {"address": addr.ip().to_string(), "port_value": addr.port()}})
}

/// An Envoy duration (`"0.25s"`).
pub fn duration(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// A cluster's load-balancing policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbPolicy {
    /// `ROUND_ROBIN` (Envoy's default).
    RoundRobin,
    /// `LEAST_REQUEST` (Istio's default for a service).
    LeastRequest,
}

/// A STATIC cluster of fixed endpoints.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Cluster name (what routes name).
    pub name: String,
    /// Its endpoints, one host each.
    pub endpoints: Vec<SocketAddr>,
    /// Load-balancing policy.
    pub lb_policy: LbPolicy,
    /// Connect timeout.
    pub connect_timeout: Duration,
}

impl Cluster {
    /// A round-robin cluster with a 1 s connect timeout.
    pub fn new(name: impl Into<String>, endpoints: impl IntoIterator<Item = SocketAddr>) -> Self {
        Cluster {
            name: name.into(),
            endpoints: endpoints.into_iter().collect(),
            lb_policy: LbPolicy::RoundRobin,
            connect_timeout: Duration::from_secs(1),
        }
    }

    /// Set the load-balancing policy.
    pub fn lb_policy(mut self, policy: LbPolicy) -> Self {
        self.lb_policy = policy;
        self
    }

    /// Set the connect timeout.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// The cluster as Envoy configuration.
    pub fn to_json(&self) -> Value {
        let eps: Vec<Value> = self
            .endpoints
            .iter()
            .map(|a| json!({"endpoint": {"address": socket_address(*a)}}))
            .collect();
        json!({
            "name": self.name,
            "type": "STATIC",
            "connect_timeout": duration(self.connect_timeout),
            "lb_policy": match self.lb_policy {
                LbPolicy::RoundRobin => "ROUND_ROBIN",
                LbPolicy::LeastRequest => "LEAST_REQUEST",
            },
            "load_assignment": {"cluster_name": self.name, "endpoints": [{"lb_endpoints": eps}]},
        })
    }
}

/// A listener with an HTTP connection manager; the router filter is always last.
#[derive(Debug, Clone)]
pub struct Listener {
    /// Listener name.
    pub name: String,
    /// Where it listens.
    pub address: SocketAddr,
    /// The HCM's `stat_prefix` (`http.<prefix>.downstream_rq_*`).
    pub stat_prefix: String,
    /// Virtual hosts of its route configuration.
    pub virtual_hosts: Vec<VirtualHost>,
    /// HTTP filters before the router.
    pub http_filters: Vec<HttpFilter>,
}

impl Listener {
    /// A listener with one virtual host for every domain and no filter but the router.
    pub fn new(name: impl Into<String>, address: SocketAddr, routes: Vec<Route>) -> Self {
        let name = name.into();
        Listener {
            virtual_hosts: vec![VirtualHost::all(name.clone(), routes)],
            stat_prefix: name.clone(),
            name,
            address,
            http_filters: Vec::new(),
        }
    }

    /// Set the stat prefix.
    pub fn stat_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.stat_prefix = prefix.into();
        self
    }

    /// Add an HTTP filter (before the router, after those added earlier).
    pub fn filter(mut self, f: HttpFilter) -> Self {
        self.http_filters.push(f);
        self
    }

    /// The listener as Envoy configuration.
    pub fn to_json(&self) -> Value {
        let mut filters: Vec<Value> = self.http_filters.iter().map(HttpFilter::to_json).collect();
        filters.push(HttpFilter::Router.to_json());
        let vhosts: Vec<Value> = self
            .virtual_hosts
            .iter()
            .map(|v| {
                json!({"name": v.name, "domains": v.domains,
                    "routes": v.routes.iter().map(Route::to_json).collect::<Vec<_>>()})
            })
            .collect();
        json!({
            "name": self.name,
            "address": socket_address(self.address),
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": self.stat_prefix,
                    // Direct responses up to 1 MiB (Envoy's default is 4 KiB):
                    // a scripted weights table of 1,000 pods is about 60 KB.
                    "route_config": {
                        "name": "local",
                        "virtual_hosts": vhosts,
                        "max_direct_response_body_size_bytes": 1_048_576,
                    },
                    "http_filters": filters,
                },
            }]}],
        })
    }
}

/// A whole static bootstrap.
#[derive(Debug, Clone, Default)]
pub struct Bootstrap {
    /// `node.id` and `node.cluster`, if set.
    pub node: Option<(String, String)>,
    /// Admin address, if any.
    pub admin: Option<SocketAddr>,
    /// Listeners.
    pub listeners: Vec<Listener>,
    /// Clusters.
    pub clusters: Vec<Cluster>,
}

impl Bootstrap {
    /// An empty bootstrap with an admin address.
    pub fn with_admin(admin: SocketAddr) -> Self {
        Bootstrap {
            admin: Some(admin),
            ..Bootstrap::default()
        }
    }

    /// The bootstrap as Envoy configuration.
    pub fn to_json(&self) -> Value {
        let mut b = json!({"static_resources": {
            "listeners": self.listeners.iter().map(Listener::to_json).collect::<Vec<_>>(),
            "clusters": self.clusters.iter().map(Cluster::to_json).collect::<Vec<_>>(),
        }});
        if let Some((id, cluster)) = &self.node {
            b["node"] = json!({"id": id, "cluster": cluster});
        }
        if let Some(a) = self.admin {
            b["admin"] = json!({"address": socket_address(a)});
        }
        b
    }

    /// Write it as JSON to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.to_json()).map_err(|e| Error::Write {
            path: path.into(),
            reason: e.to_string(),
        })?;
        std::fs::write(path, text).map_err(|e| Error::Write {
            path: path.into(),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn per_pod_routes_match_the_header_then_the_default_route_follows() {
        let mut routes = per_pod_routes("x-lb-endpt", [("p0", "pod-p0"), ("p1", "pod-p1")]);
        routes.push(Route::to_cluster("svc").timeout(Duration::from_secs(15)));
        let l = Listener::new("main", addr(10000), routes).to_json();
        let hcm = &l["filter_chains"][0]["filters"][0]["typed_config"];
        let r = &hcm["route_config"]["virtual_hosts"][0]["routes"];
        assert_eq!(r[0]["match"]["headers"][0]["name"], "x-lb-endpt");
        assert_eq!(r[0]["match"]["headers"][0]["string_match"]["exact"], "p0");
        assert_eq!(r[1]["route"]["cluster"], "pod-p1");
        assert_eq!(r[2]["route"]["cluster"], "svc");
        assert_eq!(r[2]["route"]["timeout"], "15s");
        assert!(r[2]["match"].get("headers").is_none());
        assert_eq!(hcm["http_filters"][0]["name"], "envoy.filters.http.router");
    }

    #[test]
    fn direct_responses_and_clusters_render_envoys_fields() {
        let r = Route::direct(304, None)
            .path("/v1/weights")
            .header("if-none-match", "\"1\"")
            .to_json();
        assert_eq!(r["match"]["path"], "/v1/weights");
        assert_eq!(r["direct_response"]["status"], 304);
        assert!(r["direct_response"].get("body").is_none());
        let r = Route::direct(200, Some("ok")).to_json();
        assert_eq!(r["direct_response"]["body"]["inline_string"], "ok");
        let c = Cluster::new("svc", [addr(1), addr(2)])
            .lb_policy(LbPolicy::LeastRequest)
            .connect_timeout(Duration::from_millis(250))
            .to_json();
        assert_eq!(c["connect_timeout"], "0.25s");
        assert_eq!(c["lb_policy"], "LEAST_REQUEST");
        let eps = &c["load_assignment"]["endpoints"][0]["lb_endpoints"];
        assert_eq!(
            eps[1]["endpoint"]["address"]["socket_address"]["port_value"],
            2
        );
    }

    #[test]
    fn a_bootstrap_has_admin_node_listeners_and_clusters() {
        let mut b = Bootstrap::with_admin(addr(9901));
        b.node = Some(("gw".into(), "lab".into()));
        b.listeners
            .push(Listener::new("l", addr(1), vec![Route::direct(200, None)]));
        b.clusters.push(Cluster::new("c", [addr(2)]));
        let j = b.to_json();
        assert_eq!(j["admin"]["address"]["socket_address"]["port_value"], 9901);
        assert_eq!(j["node"]["id"], "gw");
        assert_eq!(
            j["static_resources"]["listeners"].as_array().unwrap().len(),
            1
        );
        assert_eq!(j["static_resources"]["clusters"][0]["name"], "c");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.json");
        b.write(&p).unwrap();
        let back: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(back, j);
    }
}
