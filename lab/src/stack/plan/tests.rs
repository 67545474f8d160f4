//! The weight server's flags and the Envoys' plugin configs, with and
//! without the scenario's `run.admission_target`.

use std::time::Duration;

use mplb_wire::PluginConfig;

use super::*;
use crate::envoy::{Balancer, Steering};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn config(policy: &str) -> StackConfig {
    StackConfig {
        cgroup_root: "/sys/fs/cgroup".into(),
        cgroup_name: "mplb-lab-test".into(),
        base_port: 0,
        steering: Steering::Subset,
        balancer: Balancer::LeastRequest,
        policy: policy.into(),
        interval: Duration::from_millis(500),
        server_args: vec!["--log-json".into()],
        dir: "/tmp/run".into(),
    }
}

/// over-capacity (two entries, frontend calling profile), admission as given.
fn scenario(admission_target: Option<f64>) -> Scenario {
    let mut s = Scenario::by_name("over-capacity").unwrap();
    s.run.admission_target = admission_target;
    s
}

fn server(s: &Scenario, policy: &str) -> Vec<String> {
    server_args(
        &config(policy),
        s,
        addr(9000),
        Path::new("/tmp/run/topology.yaml"),
        Path::new("/tmp/run/server-state"),
    )
}

/// Every Envoy's name and its parsed plugin config.
fn plugin_configs(s: &Scenario) -> Vec<(String, PluginConfig)> {
    let mut port = 10_000;
    let mut next = || {
        port += 1;
        addr(port)
    };
    let gateways: Vec<Gateway> = s
        .entries()
        .map(|e| Gateway {
            service: e.name.clone(),
            listen: next(),
            admin: next(),
        })
        .collect();
    let pod_addrs: BTreeMap<String, SocketAddr> =
        s.pods.iter().map(|p| (p.name.clone(), next())).collect();
    let sidecars: BTreeMap<String, (SocketAddr, SocketAddr)> = s
        .pods
        .iter()
        .filter(|p| {
            s.service(&p.service)
                .and_then(|x| x.calls.as_ref())
                .is_some()
        })
        .map(|p| (p.name.clone(), (next(), next())))
        .collect();
    let wasm = Some(PathBuf::from("/x/mplb_filter.wasm"));
    let cfg = config("optimal");
    envoy_specs(&cfg, s, &gateways, &sidecars, &pod_addrs, addr(9000), wasm)
        .iter()
        .map(|e| {
            let text = e.plugin_config().to_string();
            (
                e.name.clone(),
                PluginConfig::parse(text.as_bytes()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_shipped_over_capacity_scenario_asks_for_admission() {
    let s = Scenario::by_name("over-capacity").unwrap();
    assert_eq!(s.run.admission_target, Some(0.95));
}

#[test]
fn the_server_gets_the_admission_target_iff_the_scenario_sets_it() {
    for policy in ["even", "spare", "optimal"] {
        let on = server(&scenario(Some(0.95)), policy);
        let at = on.iter().position(|a| a == "--admission-target").unwrap();
        assert_eq!(on[at + 1], "0.95", "{on:?}");
        assert_eq!(
            on[at + 2..at + 4],
            ["--admission-period", "1s"],
            "two intervals"
        );
        assert_eq!(on.iter().filter(|a| *a == "--admission-target").count(), 1);
        // The operator's --server-arg still comes last.
        assert_eq!(on.last().map(String::as_str), Some("--log-json"));

        let off = server(&scenario(None), policy);
        assert!(
            !off.iter().any(|a| a.contains("admission")),
            "no flag without run.admission_target: {off:?}"
        );
        // Otherwise the command line is what it was.
        let mut without = on.clone();
        without.drain(at..at + 4);
        assert_eq!(without, off);
    }
    let off = server(&scenario(None), "optimal");
    assert_eq!(
        off,
        [
            "--listen",
            "127.0.0.1:9000",
            "--topology",
            "/tmp/run/topology.yaml",
            "--policy",
            "optimal",
            "--recompute-interval",
            "500ms",
            "--state-dir",
            "/tmp/run/server-state",
            "--insecure-admin",
            "--insecure-reports",
            "--log-json",
        ]
    );
}

#[test]
fn only_gateways_shed_and_only_with_an_admission_target() {
    let on = plugin_configs(&scenario(Some(0.95)));
    let names: Vec<&str> = on.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "gateway",
            "gateway-web",
            "sidecar-frontend-0",
            "sidecar-frontend-1",
            "sidecar-frontend-2",
        ]
    );
    for (name, c) in &on {
        assert_eq!(c.admission, name.starts_with("gateway"), "{name}");
        // A gateway has no own service; a sidecar names its workload.
        assert_eq!(c.service.is_some(), name.starts_with("sidecar-"), "{name}");
    }
    let off = plugin_configs(&scenario(None));
    assert_eq!(off.len(), on.len());
    assert!(off.iter().all(|(_, c)| !c.admission));
}

#[test]
fn without_an_admission_target_the_plugin_config_has_no_admission_key() {
    let s = scenario(None);
    let gateways = [Gateway {
        service: "frontend".into(),
        listen: addr(10_001),
        admin: addr(10_002),
    }];
    let pods = s
        .pods
        .iter()
        .map(|p| (p.name.clone(), addr(9100)))
        .collect();
    let specs = envoy_specs(
        &config("spare"),
        &s,
        &gateways,
        &BTreeMap::new(),
        &pods,
        addr(9000),
        None,
    );
    assert_eq!(specs.len(), 1);
    assert!(specs[0].plugin_config().get("admission").is_none());
    assert_eq!(specs[0].upstream.pods.len(), 3);
}
