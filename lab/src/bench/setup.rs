//! What the benchmark runs: the wasm modules (built, then `wasm-opt`ed as
//! build-and-push.sh ships them), the trivial upstream (a second Envoy
//! answering with direct_response, also serving the weights table and a 304
//! to a poll naming the current version, as the weight server does), and the
//! Envoys under test: each variant on its own listener with its own clusters
//! (so its own upstream pools) and its own Wasm VM.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use mplb_envoy_harness::{Bootstrap, Cluster, Listener, Route, per_pod_routes};
use mplb_wire::{Endpoint, ServiceWeights, WeightsTable};

use super::variants::Variant;
use crate::error::{Error, Result};

/// The package the probe filters (noop, probe, rawprobe) are examples of.
pub const PROBE_PACKAGE: &str = "mplb-filter-probes";
/// The filter's package.
pub const FILTER_PACKAGE: &str = "mplb-filter";
/// wasm-opt flags Envoy's V8 accepts for rustc's wasm32-wasip1 output.
pub const WASM_OPT_FEATURES: [&str; 4] = [
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-nontrapping-float-to-int",
    "--enable-mutable-globals",
];

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .map_err(|e| Error::Precondition(format!("{what}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Precondition(format!("{what} failed ({status})")))
    }
}

/// Build the filter and the probe filters (wasm32-wasip1, wasm-release);
/// returns the output directory.
pub fn build(repo: &Path, target: &Path) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let wasm_build = |args: &[&str], what: &str| {
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(repo)
            .env("CARGO_TARGET_DIR", target)
            .args(["build", "-q", "--target", "wasm32-wasip1"])
            .args(["--profile", "wasm-release"])
            .args(args);
        run(&mut cmd, what)
    };
    wasm_build(
        &["-p", FILTER_PACKAGE, "--lib"],
        "cargo build of the filter",
    )?;
    wasm_build(
        &[
            "-p",
            PROBE_PACKAGE,
            "--example",
            "noop",
            "--example",
            "probe",
            "--example",
            "rawprobe",
        ],
        "cargo build of the probe filters",
    )?;
    Ok(target.join("wasm32-wasip1/wasm-release"))
}

/// Copy (or `wasm-opt` at `level`, when installed and not `none`) `src` to
/// `dir/<name>.wasm`; returns a log line with both sizes.
pub fn prepare_module(src: &Path, dir: &Path, name: &str, level: &str) -> Result<String> {
    let out = dir.join(format!("{name}.wasm"));
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let how = if level != "none" && crate::procs::which("wasm-opt").is_some() {
        run(
            Command::new("wasm-opt")
                .arg(level)
                .args(WASM_OPT_FEATURES)
                .arg(src)
                .arg("-o")
                .arg(&out),
            "wasm-opt",
        )?;
        format!(" (wasm-opt {level} {})", WASM_OPT_FEATURES.join(" "))
    } else {
        std::fs::copy(src, &out).map_err(|e| Error::io("copy", src, e))?;
        " (as built)".into()
    };
    Ok(format!(
        "{name} wasm: {} bytes built, {} bytes used{how}",
        size(src),
        size(&out)
    ))
}

/// The weights table the upstream serves: backend with pods p0/p1/p2 at
/// the three upstream hosts, weights 60/30/10, valid for an hour.
pub fn table(up: &[SocketAddr; 3], pods: u32) -> Result<String> {
    let mut endpoints: Vec<Endpoint> = [("p0", 60.0), ("p1", 30.0), ("p2", 10.0)]
        .into_iter()
        .zip(up)
        .map(|((pod, weight), address)| Endpoint {
            pod: pod.to_string(),
            address: address.to_string(),
            weight,
        })
        .collect();
    // Padding pods: distinct addresses in 127.1.0.0/16 nothing listens on
    // (a pick of one goes to the service route, not to that address).
    endpoints.extend((3..pods).map(|i| Endpoint {
        pod: format!("p{i}"),
        address: format!("127.1.{}.{}:8080", i / 250, i % 250 + 1),
        weight: 0.001,
    }));
    let backend = ServiceWeights {
        aliases: vec!["backend".to_string()],
        endpoints,
        admit: None,
    };
    let table = WeightsTable {
        version: 1,
        generated_at_ms: 1,
        ttl_ms: 3_600_000,
        services: BTreeMap::from([("backend.default.svc.cluster.local".to_string(), backend)]),
    };
    table
        .validate()
        .map_err(|e| Error::Results(format!("bench table: {e}")))?;
    serde_json::to_string(&table).map_err(|e| Error::Results(e.to_string()))
}

/// The upstream: three listeners (three hosts) answering directly.
pub fn upstream(admin: SocketAddr, up: &[SocketAddr; 3], table: &str) -> Bootstrap {
    let mut b = Bootstrap::with_admin(admin);
    for (i, a) in up.iter().enumerate() {
        let routes = vec![
            Route::direct(304, None)
                .path("/v1/weights")
                .header("if-none-match", "\"1\""),
            Route::direct(200, Some(table)).path("/v1/weights"),
            Route::direct(200, Some("ok")),
        ];
        b.listeners
            .push(Listener::new(format!("up{i}"), *a, routes).stat_prefix("up"));
    }
    b
}

/// One variant instance served by an Envoy under test.
#[derive(Debug, Clone)]
pub struct Served {
    /// Its variant.
    pub variant: Variant,
    /// Its run name (`mplb`, `mplb#2`).
    pub name: String,
    /// Its listener.
    pub listen: SocketAddr,
    /// Suffix of its stat prefix, clusters and VM id (`-1`).
    pub suffix: String,
}

/// An Envoy serving `served`, each on its own listener with its own clusters:
/// `svc<s>` (the three hosts, round robin) and `pod-p0<s>`..`pod-p2<s>` (one
/// each, as Istio's subset clusters), routed by `x-lb-endpt`; plus the
/// weight-server cluster (the upstream's first host).
pub fn under_test(
    admin: SocketAddr,
    served: &[Served],
    up: &[SocketAddr; 3],
    modules: &Path,
) -> Bootstrap {
    let mut b = Bootstrap::with_admin(admin);
    for s in served {
        let sfx = &s.suffix;
        let pods: Vec<(String, String)> = (0..3)
            .map(|i| (format!("p{i}"), format!("pod-p{i}{sfx}")))
            .collect();
        let mut routes = per_pod_routes(
            mplb_envoy_harness::ENDPOINT_HEADER,
            pods.iter().map(|(p, c)| (p.as_str(), c.as_str())),
        );
        routes.push(Route::to_cluster(format!("svc{sfx}")));
        let mut l =
            Listener::new(format!("lb{sfx}"), s.listen, routes).stat_prefix(format!("lb{sfx}"));
        if let Some(f) = s.variant.filter(modules, sfx) {
            l = l.filter(f);
        }
        b.listeners.push(l);
    }
    for s in served {
        let sfx = &s.suffix;
        b.clusters
            .push(Cluster::new(format!("svc{sfx}"), up.iter().copied()));
        for (i, a) in up.iter().enumerate() {
            b.clusters
                .push(Cluster::new(format!("pod-p{i}{sfx}"), [*a]));
        }
    }
    b.clusters.push(Cluster::new("weight-server", [up[0]]));
    b
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ups() -> [SocketAddr; 3] {
        ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"].map(|a| a.parse().unwrap())
    }

    #[test]
    fn the_table_is_a_valid_wire_table_and_the_upstream_serves_it() {
        let t = table(&ups(), 3).unwrap();
        let parsed = WeightsTable::parse(t.as_bytes()).unwrap();
        let backend = &parsed.services["backend.default.svc.cluster.local"];
        assert_eq!(backend.aliases, ["backend"]);
        let pods: Vec<(&str, &str, f64)> = backend
            .endpoints
            .iter()
            .map(|e| (e.pod.as_str(), e.address.as_str(), e.weight))
            .collect();
        assert_eq!(
            pods,
            [
                ("p0", "127.0.0.1:1", 60.0),
                ("p1", "127.0.0.1:2", 30.0),
                ("p2", "127.0.0.1:3", 10.0)
            ]
        );
        // Padded to 1,000 pods: a valid table, distinct addresses, the
        // padding 1 % of the weight.
        let big = WeightsTable::parse(table(&ups(), 1000).unwrap().as_bytes()).unwrap();
        let e = &big.services["backend.default.svc.cluster.local"].endpoints;
        assert_eq!(e.len(), 1000);
        let addrs: std::collections::BTreeSet<&str> =
            e.iter().map(|e| e.address.as_str()).collect();
        assert_eq!(addrs.len(), 1000);
        let padding: f64 = e[3..].iter().map(|e| e.weight).sum();
        assert!((padding - 0.997).abs() < 1e-9, "{padding}");
        assert_eq!((parsed.version, parsed.ttl_ms), (1, 3_600_000));
        let b = upstream("127.0.0.1:9".parse().unwrap(), &ups(), &t).to_json();
        let r = &b["static_resources"]["listeners"][2]["filter_chains"][0]["filters"][0]["typed_config"]
            ["route_config"]["virtual_hosts"][0]["routes"];
        assert_eq!(r[0]["direct_response"]["status"], 304);
        assert_eq!(r[1]["direct_response"]["body"]["inline_string"], t);
    }

    #[test]
    fn each_served_variant_has_its_listener_clusters_and_vm() {
        let served = [Variant::None, Variant::Mplb].map(|v| Served {
            name: v.name(),
            suffix: if v == Variant::None {
                "-1".into()
            } else {
                "-2".into()
            },
            variant: v,
            listen: "127.0.0.1:5".parse().unwrap(),
        });
        let b = under_test(
            "127.0.0.1:9".parse().unwrap(),
            &served,
            &ups(),
            Path::new("/m"),
        )
        .to_json();
        let ls = b["static_resources"]["listeners"].as_array().unwrap();
        let filters = |i: usize| {
            ls[i]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
                .as_array()
                .unwrap()
                .len()
        };
        assert_eq!((filters(0), filters(1)), (1, 2));
        let cs = b["static_resources"]["clusters"].as_array().unwrap();
        assert_eq!(cs.len(), 9);
        assert_eq!(cs[5]["name"], "pod-p0-2");
    }
}
