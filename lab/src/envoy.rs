//! Envoy configurations for the lab's gateway and sidecars, routed the way
//! `weight-server render-istio` routes an Istio mesh: per destination
//! service, one route per pod matching `x-lb-endpt: <pod>` to a cluster with
//! only that pod, then a default route to a LEAST_REQUEST cluster of all its
//! pods. Session mode instead relies on Envoy's stateful_session filter
//! (header `x-lb-session`, base64 `ip:port`) on the default cluster. The
//! configuration is built with the project's Envoy harness (`mplb-envoy-harness`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mplb_envoy_harness::{
    self as harness, Bootstrap, Cluster, HttpFilter, Launch, LbPolicy, Listener, Route,
    VirtualHost, WasmFilter,
};
use serde::Serialize;
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

/// How the service cluster (the default route) balances.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Balancer {
    /// `LEAST_REQUEST` (Istio's default).
    LeastRequest,
    /// `envoy.load_balancing_policies.client_side_weighted_round_robin`, fed
    /// by the pods' in-band ORCA reports ([`crate::orca`]).
    Cswrr(CswrrSettings),
}

/// The settings of Envoy's client-side weighted round robin (field names as
/// in its `ClientSideWeightedRoundRobin` proto), written into each run's results.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CswrrSettings {
    /// An endpoint's weight is used only after it reported this long (Envoy's default 10 s).
    pub blackout_period_s: f64,
    /// A weight not refreshed this long is dropped (default 3 min).
    pub weight_expiration_period_s: f64,
    /// How often the scheduler's weights are recomputed (default 1 s).
    pub weight_update_period_s: f64,
    /// Errors per second over requests per second, times this, add to utilisation (default 1.0).
    pub error_utilization_penalty: f64,
    /// Out-of-band reports (a gRPC stream per backend) are off: the pods report in-band.
    pub enable_oob_load_report: bool,
}

impl CswrrSettings {
    /// The lab's tuning for agents reporting every `interval`: the update
    /// period is that interval (the same signal age as ours); the blackout is
    /// cut to 2 s so weights are in use well within the warm-up; expiry 10 s
    /// drops a pod that stopped answering long before Envoy's 3 min default
    /// would.
    pub fn lab(interval: Duration) -> CswrrSettings {
        CswrrSettings {
            blackout_period_s: 2.0,
            weight_expiration_period_s: 10.0,
            weight_update_period_s: interval.as_secs_f64(),
            error_utilization_penalty: 1.0,
            enable_oob_load_report: false,
        }
    }

    /// The cluster's `load_balancing_policy`.
    pub fn policy_json(&self) -> Value {
        let secs = |s: f64| harness::bootstrap::duration(Duration::from_secs_f64(s));
        json!({"policies": [{"typed_extension_config": {
            "name": "envoy.load_balancing_policies.client_side_weighted_round_robin",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.load_balancing_policies.client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin",
                "enable_oob_load_report": self.enable_oob_load_report,
                "blackout_period": secs(self.blackout_period_s),
                "weight_expiration_period": secs(self.weight_expiration_period_s),
                "weight_update_period": secs(self.weight_update_period_s),
                "error_utilization_penalty": self.error_utilization_penalty,
            }
        }}]})
    }
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
    /// The outbound listener's address (where clients send requests).
    pub listen: SocketAddr,
    /// Envoy's admin address (stats, `/ready`).
    pub admin: SocketAddr,
    /// The destination service and its pods.
    pub upstream: Upstream,
    /// How the filter steers; `Off` leaves the filter out.
    pub steering: Steering,
    /// The filter's `service`: the workload this proxy belongs to.
    pub own_service: Option<String>,
    /// The weight server the filter polls (the `weight_server` cluster).
    pub weight_server: SocketAddr,
    /// The filter's wasm file; required unless steering is off.
    pub wasm: Option<PathBuf>,
    /// The filter's `poll_interval_ms`.
    pub poll_interval_ms: u64,
    /// The service cluster's balancer.
    pub balancer: Balancer,
    /// Retry a request whose connection failed (Istio's default retry), for
    /// scenarios where pods come and go behind these static endpoints.
    pub retry_connect_failure: bool,
    /// The filter sheds by the table's `admit` (plugin key `admission`):
    /// entry gateways of a scenario with `run.admission_target` only.
    pub admission: bool,
}

/// The header the filter stamps.
pub const ENDPOINT_HEADER: &str = harness::ENDPOINT_HEADER;
/// The session header (session mode).
pub const SESSION_HEADER: &str = harness::SESSION_HEADER;
/// The route timeout of every route.
const ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

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
        if self.admission {
            cfg["admission"] = true.into();
        }
        cfg
    }

    /// The whole bootstrap configuration.
    pub fn bootstrap(&self) -> Result<Bootstrap> {
        let up = &self.upstream;
        let mut routes = Vec::new();
        let mut clusters = vec![
            Cluster::new(&up.name, up.pods.iter().map(|(_, a)| *a))
                .lb_policy(LbPolicy::LeastRequest),
        ];
        if self.steering != Steering::Session {
            for (pod, addr) in &up.pods {
                let name = pod_cluster(&up.name, pod);
                routes.push(
                    Route::to_cluster(&name)
                        .header(ENDPOINT_HEADER, pod)
                        .timeout(ROUTE_TIMEOUT),
                );
                clusters.push(Cluster::new(name, [*addr]));
            }
        }
        routes.push(Route::to_cluster(&up.name).timeout(ROUTE_TIMEOUT));
        clusters.push(Cluster::new("weight_server", [self.weight_server]));

        let mut listener =
            Listener::new("outbound", self.listen, Vec::new()).stat_prefix(&self.name);
        listener.virtual_hosts = vec![VirtualHost::all(&up.name, routes)];
        if self.steering != Steering::Off {
            let wasm = self.wasm.as_ref().ok_or_else(|| {
                Error::Precondition("the filter is on but no --wasm file was found".into())
            })?;
            listener = listener.filter(HttpFilter::Wasm(WasmFilter::new(
                "mplb",
                wasm,
                self.plugin_config().to_string(),
            )));
        }
        if self.steering == Steering::Session {
            listener = listener.filter(HttpFilter::StatefulSession {
                header: SESSION_HEADER.into(),
            });
        }
        Ok(Bootstrap {
            node: Some((self.name.clone(), "mplb-lab".into())),
            admin: Some(self.admin),
            listeners: vec![listener],
            clusters,
        })
    }

    /// The Envoy configuration: the bootstrap, with the service cluster's
    /// balancer and the routes' retry policy applied.
    pub fn config_json(&self) -> Result<Value> {
        let mut b = self.bootstrap()?.to_json();
        if let Balancer::Cswrr(settings) = self.balancer
            && let Some(clusters) = b["static_resources"]["clusters"].as_array_mut()
        {
            for c in clusters
                .iter_mut()
                .filter(|c| c["name"] == self.upstream.name.as_str())
            {
                if let Some(obj) = c.as_object_mut() {
                    obj.remove("lb_policy");
                    obj.insert("load_balancing_policy".into(), settings.policy_json());
                }
            }
        }
        if self.retry_connect_failure {
            let routes = &mut b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
                [0]["typed_config"]["route_config"]["virtual_hosts"][0]["routes"];
            if let Some(routes) = routes.as_array_mut() {
                for r in routes.iter_mut() {
                    r["route"]["retry_policy"] = json!({
                        "retry_on": "connect-failure,refused-stream,reset",
                        "num_retries": 2,
                        "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts",
                            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
                    });
                }
            }
        }
        Ok(b)
    }

    /// Write the configuration to `dir/<name>.json`.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(format!("{}.json", self.name));
        let text = serde_json::to_string_pretty(&self.config_json()?)
            .map_err(|e| Error::Results(e.to_string()))?;
        std::fs::write(&path, text).map_err(|e| Error::io("write", &path, e))?;
        Ok(path)
    }

    /// How to start this Envoy (one worker, no hot restart, log level warn).
    pub fn launch(&self, envoy: &Path, config: &Path) -> Launch {
        let mut l = Launch::new(envoy, config);
        l.disable_hot_restart = true;
        l.log_level = "warn".into();
        l
    }
}

/// Find Envoy: `$MPLB_ENVOY`, else `~/.cache/mplb/venv/bin/envoy`, else `envoy` on PATH.
pub fn find_envoy() -> Result<PathBuf> {
    harness::find_envoy().map_err(|e| Error::Precondition(e.to_string()))
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
            balancer: Balancer::LeastRequest,
            retry_connect_failure: false,
            admission: false,
        }
    }

    #[test]
    fn cswrr_replaces_the_service_clusters_policy_and_retries_are_added() {
        let mut s = spec(Steering::Off);
        s.balancer = Balancer::Cswrr(CswrrSettings::lab(Duration::from_millis(500)));
        s.retry_connect_failure = true;
        let b = s.config_json().unwrap();
        let c = &b["static_resources"]["clusters"][0];
        assert_eq!(c["name"], "frontend");
        assert!(c.get("lb_policy").is_none());
        let p = &c["load_balancing_policy"]["policies"][0]["typed_extension_config"];
        assert_eq!(
            p["name"],
            "envoy.load_balancing_policies.client_side_weighted_round_robin"
        );
        assert_eq!(p["typed_config"]["blackout_period"], "2s");
        assert_eq!(p["typed_config"]["enable_oob_load_report"], false);
        let hcm = &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
        let r = &hcm["route_config"]["virtual_hosts"][0]["routes"][0]["route"];
        assert_eq!(r["retry_policy"]["num_retries"], 2);
    }

    #[test]
    fn subset_routes_match_each_pod_then_default() {
        let b = spec(Steering::Subset).bootstrap().unwrap().to_json();
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
        let b = spec(Steering::Off).bootstrap().unwrap().to_json();
        let hcm = &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
        assert_eq!(hcm["http_filters"].as_array().unwrap().len(), 1);
        let b = spec(Steering::Session).bootstrap().unwrap().to_json();
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
