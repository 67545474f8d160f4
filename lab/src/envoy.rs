//! Envoy configurations for the lab's gateway and sidecars, routed the way
//! `weight-server render-istio` routes an Istio mesh: per destination
//! service, one route per pod matching `x-lb-endpt: <pod>` to a cluster with
//! only that pod, then a default route to a LEAST_REQUEST cluster of all its
//! pods. Session mode instead relies on Envoy's stateful_session filter
//! (header `x-lb-session`, base64 `ip:port`) on the default cluster.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::error::{Error, Result};

/// How requests are steered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steering {
    /// No filter: Envoy's own LEAST_REQUEST (the `even` baseline).
    Off,
    /// The filter stamps `x-lb-endpt`; header-matched routes pick the pod.
    Subset,
    /// The filter sets `x-lb-session`; stateful_session overrides the host.
    Session,
}

/// One destination service reached through a listener.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Short name (`profile`), used for cluster names.
    pub name: String,
    /// `(pod name, address)` in stable order.
    pub pods: Vec<(String, SocketAddr)>,
}

/// One Envoy process: a listener towards one service, an admin port.
#[derive(Debug, Clone)]
pub struct EnvoySpec {
    /// Process name for logs (`gateway`, `sidecar-frontend-0`).
    pub name: String,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    pub upstream: Upstream,
    pub steering: Steering,
    /// The filter's `service`: the workload this proxy belongs to.
    pub own_service: Option<String>,
    pub weight_server: SocketAddr,
    pub wasm: Option<PathBuf>,
    /// The filter's `poll_interval_ms`.
    pub poll_interval_ms: u64,
}

/// The header the filter stamps.
pub const ENDPOINT_HEADER: &str = "x-lb-endpt";
/// The session header (session mode).
pub const SESSION_HEADER: &str = "x-lb-session";

fn endpoint(addr: &SocketAddr) -> Value {
    json!({"endpoint": {"address": {"socket_address": {
        "address": addr.ip().to_string(), "port_value": addr.port()}}}})
}

fn cluster(name: &str, addrs: &[SocketAddr], lb_policy: &str) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "lb_policy": lb_policy,
        "load_assignment": {"cluster_name": name, "endpoints": [{
            "lb_endpoints": addrs.iter().map(endpoint).collect::<Vec<_>>()}]},
    })
}

/// The cluster name of one pod of a service.
pub fn pod_cluster(service: &str, pod: &str) -> String {
    format!("{service}|{pod}")
}

impl EnvoySpec {
    /// The filter's plugin configuration (docs/ARCHITECTURE.md keys).
    pub fn plugin_config(&self) -> Value {
        let mut cfg = json!({
            "weight_server_cluster": "weight_server",
            "weight_server_authority": self.weight_server.to_string(),
            "poll_interval_ms": self.poll_interval_ms,
            "header": ENDPOINT_HEADER,
            "mode": if self.steering == Steering::Session { "session" } else { "subset" },
            "session_header": SESSION_HEADER,
        });
        if let Some(s) = &self.own_service {
            cfg["service"] = s.clone().into();
        }
        cfg
    }

    /// The whole bootstrap configuration.
    pub fn bootstrap(&self) -> Result<Value> {
        let up = &self.upstream;
        let mut routes = Vec::new();
        let mut clusters = vec![cluster(
            &up.name,
            &up.pods.iter().map(|(_, a)| *a).collect::<Vec<_>>(),
            "LEAST_REQUEST",
        )];
        if self.steering != Steering::Session {
            for (pod, addr) in &up.pods {
                let name = pod_cluster(&up.name, pod);
                routes.push(json!({
                    "match": {"prefix": "/", "headers": [{
                        "name": ENDPOINT_HEADER, "string_match": {"exact": pod}}]},
                    "route": {"cluster": name, "timeout": "15s"},
                }));
                clusters.push(cluster(&name, &[*addr], "ROUND_ROBIN"));
            }
        }
        routes.push(
            json!({"match": {"prefix": "/"}, "route": {"cluster": up.name, "timeout": "15s"}}),
        );
        clusters.push(cluster(
            "weight_server",
            &[self.weight_server],
            "ROUND_ROBIN",
        ));

        let mut filters = Vec::new();
        if self.steering != Steering::Off {
            let wasm = self.wasm.as_ref().ok_or_else(|| {
                Error::Precondition("the filter is on but no --wasm file was found".into())
            })?;
            filters.push(json!({
                "name": "envoy.filters.http.wasm",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                    "config": {
                        "name": "mplb",
                        "vm_config": {
                            "vm_id": "mplb",
                            "runtime": "envoy.wasm.runtime.v8",
                            "code": {"local": {"filename": wasm.display().to_string()}},
                        },
                        "configuration": {
                            "@type": "type.googleapis.com/google.protobuf.StringValue",
                            "value": self.plugin_config().to_string(),
                        },
                    },
                },
            }));
        }
        if self.steering == Steering::Session {
            filters.push(json!({
                "name": "envoy.filters.http.stateful_session",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.stateful_session.v3.StatefulSession",
                    "session_state": {
                        "name": "envoy.http.stateful_session.header",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.http.stateful_session.header.v3.HeaderBasedSessionState",
                            "name": SESSION_HEADER,
                        },
                    },
                },
            }));
        }
        filters.push(json!({
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        }));

        Ok(json!({
            "node": {"id": self.name, "cluster": "mplb-lab"},
            "admin": {"address": {"socket_address": {
                "address": self.admin.ip().to_string(), "port_value": self.admin.port()}}},
            "static_resources": {
                "listeners": [{
                    "name": "outbound",
                    "address": {"socket_address": {
                        "address": self.listen.ip().to_string(), "port_value": self.listen.port()}},
                    "filter_chains": [{"filters": [{
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                            "stat_prefix": self.name,
                            "route_config": {"name": "local", "virtual_hosts": [{
                                "name": up.name, "domains": ["*"], "routes": routes}]},
                            "http_filters": filters,
                        },
                    }]}],
                }],
                "clusters": clusters,
            },
        }))
    }

    /// Write the bootstrap to `dir/<name>.json`.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(format!("{}.json", self.name));
        let text = serde_json::to_string_pretty(&self.bootstrap()?)
            .map_err(|e| Error::Results(e.to_string()))?;
        std::fs::write(&path, text).map_err(|e| Error::io("write", &path, e))?;
        Ok(path)
    }
}

/// Find Envoy: `$MPLB_ENVOY`, else `~/.cache/mplb/venv/bin/envoy`, else `envoy` on PATH.
pub fn find_envoy() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("MPLB_ENVOY").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        return Err(Error::Precondition(format!(
            "MPLB_ENVOY={} is not a file; run `. scripts/setup.sh`",
            p.display()
        )));
    }
    if let Some(home) = std::env::var_os("HOME") {
        let p = PathBuf::from(home).join(".cache/mplb/venv/bin/envoy");
        if p.is_file() {
            return Ok(p);
        }
    }
    crate::procs::which("envoy").ok_or_else(|| {
        Error::Precondition(
            "Envoy not found (MPLB_ENVOY, ~/.cache/mplb/venv/bin/envoy, PATH); run `. scripts/setup.sh`"
                .into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(steering: Steering) -> EnvoySpec {
        EnvoySpec {
            name: "gateway".into(),
            listen: "127.0.0.1:10000".parse().unwrap(),
            admin: "127.0.0.1:10001".parse().unwrap(),
            upstream: Upstream {
                name: "frontend".into(),
                pods: vec![
                    ("frontend-0".into(), "127.0.0.1:9000".parse().unwrap()),
                    ("frontend-1".into(), "127.0.0.1:9001".parse().unwrap()),
                ],
            },
            steering,
            own_service: None,
            weight_server: "127.0.0.1:9999".parse().unwrap(),
            wasm: Some("/x/mplb_filter.wasm".into()),
            poll_interval_ms: 500,
        }
    }

    #[test]
    fn subset_routes_match_each_pod_then_default() {
        let b = spec(Steering::Subset).bootstrap().unwrap();
        let hcm = &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
        let routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
            .as_array()
            .unwrap();
        assert_eq!(routes.len(), 3);
        assert_eq!(
            routes[0]["match"]["headers"][0]["string_match"]["exact"],
            "frontend-0"
        );
        assert_eq!(routes[0]["route"]["cluster"], "frontend|frontend-0");
        assert_eq!(routes[2]["route"]["cluster"], "frontend");
        let filters = hcm["http_filters"].as_array().unwrap();
        assert_eq!(filters[0]["name"], "envoy.filters.http.wasm");
        assert_eq!(filters.last().unwrap()["name"], "envoy.filters.http.router");
        let clusters = b["static_resources"]["clusters"].as_array().unwrap();
        assert_eq!(clusters[0]["lb_policy"], "LEAST_REQUEST");
        assert!(clusters.iter().any(|c| c["name"] == "weight_server"));
    }

    #[test]
    fn off_has_no_filter_and_session_has_stateful_session_before_router() {
        let b = spec(Steering::Off).bootstrap().unwrap();
        let hcm = &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
        assert_eq!(hcm["http_filters"].as_array().unwrap().len(), 1);
        let b = spec(Steering::Session).bootstrap().unwrap();
        let hcm = &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
        let names: Vec<_> = hcm["http_filters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].clone())
            .collect();
        assert_eq!(
            names,
            [
                "envoy.filters.http.wasm",
                "envoy.filters.http.stateful_session",
                "envoy.filters.http.router"
            ]
        );
        assert_eq!(
            hcm["route_config"]["virtual_hosts"][0]["routes"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn filter_on_without_wasm_is_refused() {
        let mut s = spec(Steering::Subset);
        s.wasm = None;
        assert!(s.bootstrap().is_err());
    }
}
