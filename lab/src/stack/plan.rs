//! What a stack starts, as pure functions of its configuration, its
//! scenario and the addresses handed out: the weight server's command line
//! and every Envoy's specification. [`super::Stack::start`] runs them; the
//! tests read them without starting a process.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::{Gateway, StackConfig};
use crate::envoy::{EnvoySpec, Upstream};
use crate::scenario::Scenario;

/// The weight server's flags: the lab's, `--admission-target` (and a period
/// of two intervals) when the
/// scenario sets `run.admission_target` (the server applies it under
/// `optimal` only), then the operator's `--server-arg`s.
pub(crate) fn server_args(
    cfg: &StackConfig,
    scenario: &Scenario,
    listen: SocketAddr,
    topology: &Path,
    state_dir: &Path,
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--listen".into(),
        listen.to_string(),
        "--topology".into(),
        topology.display().to_string(),
        "--policy".into(),
        cfg.policy.clone(),
    ];
    if let Some(target) = scenario.run.admission_target {
        // A step every two intervals: the gateways' poll (half an
        // interval) and a whole report window fit in between.
        args.extend([
            "--admission-target".into(),
            target.to_string(),
            "--admission-period".into(),
            humantime::format_duration(cfg.interval * 2).to_string(),
        ]);
    }
    args.extend([
        "--recompute-interval".into(),
        humantime::format_duration(cfg.interval).to_string(),
        "--state-dir".into(),
        state_dir.display().to_string(),
        "--insecure-admin".into(),
        "--insecure-reports".into(),
    ]);
    args.extend(cfg.server_args.iter().cloned());
    args
}

/// The Envoys of a stack: a gateway per entry service (`gateway` for the
/// first, `gateway-<service>` for the others), then a sidecar per pod of a
/// calling service (`sidecar-<pod>`, towards its callee). Only gateways
/// shed, and only when the scenario sets `run.admission_target`.
pub(crate) fn envoy_specs(
    cfg: &StackConfig,
    scenario: &Scenario,
    gateways: &[Gateway],
    sidecars: &BTreeMap<String, (SocketAddr, SocketAddr)>,
    pod_addrs: &BTreeMap<String, SocketAddr>,
    server_addr: SocketAddr,
    wasm: Option<PathBuf>,
) -> Vec<EnvoySpec> {
    let poll_ms = cfg.interval.as_millis().clamp(100, 5000) as u64 / 2;
    let upstream = |svc: &str| Upstream {
        name: svc.to_string(),
        pods: scenario
            .pods_of(svc)
            .filter_map(|p| Some((p.name.clone(), *pod_addrs.get(&p.name)?)))
            .collect(),
    };
    let pods_change = scenario.events.iter().any(|e| e.kind().starts_with("pod_"));
    let admission = scenario.run.admission_target.is_some();
    let spec =
        |name: String, (listen, admin), svc: &str, own: Option<String>, admission| EnvoySpec {
            name,
            listen,
            admin,
            upstream: upstream(svc),
            steering: cfg.steering,
            own_service: own,
            weight_server: server_addr,
            wasm: wasm.clone(),
            poll_interval_ms: poll_ms,
            balancer: cfg.balancer,
            retry_connect_failure: pods_change,
            admission,
        };
    let mut specs = Vec::new();
    for (i, g) in gateways.iter().enumerate() {
        let name = if i == 0 {
            "gateway".to_string()
        } else {
            format!("gateway-{}", g.service)
        };
        specs.push(spec(name, (g.listen, g.admin), &g.service, None, admission));
    }
    for (pod, addrs) in sidecars {
        let Some(p) = scenario.pods.iter().find(|p| &p.name == pod) else {
            continue;
        };
        let Some(callee) = scenario.service(&p.service).and_then(|s| s.calls.clone()) else {
            continue;
        };
        let own = Some(p.service.clone());
        specs.push(spec(format!("sidecar-{pod}"), *addrs, &callee, own, false));
    }
    specs
}

#[cfg(test)]
mod tests;
