//! The end-to-end lab: upstream replicas, a scripted weight server and the
//! filter's Envoy (built with the project's Envoy harness), with the checks
//! the tests share.

use std::net::SocketAddr;
use std::time::Duration;

use mplb_envoy_harness::{
    Bootstrap, Cluster, ENDPOINT_HEADER, HttpFilter, Listener, Route, SESSION_HEADER, WasmFilter,
    per_pod_routes,
};
use mplb_wire::testing::TableBuilder;

use crate::support::http::{Client, Replica, WeightServer};
use crate::support::{Config, Envoy, filter_wasm, wait_for};

pub(crate) const BACKEND: &str = "backend.default.svc.cluster.local";
pub(crate) const POLL_MS: u64 = 200;
pub(crate) const TTL_MS: u64 = 2000;

pub(crate) struct Lab {
    pub(crate) ws: WeightServer,
    pub(crate) backend: Vec<Replica>,
    pub(crate) other: Replica,
    pub(crate) envoy: Envoy,
}

pub(crate) fn table(
    version: u64,
    backend: &[Replica],
    other: &Replica,
    weights: [u32; 3],
) -> String {
    let mut t = TableBuilder::new(version).service(BACKEND, &["backend"]);
    for (r, w) in backend.iter().zip(weights) {
        t = t.pod(&r.name, &r.server.addr.to_string(), f64::from(w));
    }
    t.service("other.default.svc.cluster.local", &["other"])
        .pod(&other.name, &other.server.addr.to_string(), 1.0)
        .json()
}

pub(crate) fn cluster(name: &str, addrs: &[SocketAddr]) -> Cluster {
    Cluster::new(name, addrs.iter().copied()).connect_timeout(Duration::from_millis(250))
}

/// `body` (a table's JSON) with `admit` set on service `fqdn`.
pub(crate) fn with_admit(body: &str, fqdn: &str, admit: f64) -> String {
    let key = format!(r#""{fqdn}":{{"#);
    assert!(body.contains(&key), "{fqdn} not in {body}");
    body.replacen(&key, &format!(r#"{key}"admit":{admit},"#), 1)
}

/// The plugin configuration of the lab's filter, in `mode`, plus `extra`
/// keys (`,"key":value...`).
pub(crate) fn envoy_config(
    ws: SocketAddr,
    backend: &[Replica],
    other: &Replica,
    mode: &str,
    extra: &str,
) -> Config {
    let plugin = format!(
        r#"{{"weight_server_cluster":"weight-server","weight_server_authority":"weight-server","poll_interval_ms":{POLL_MS},"poll_timeout_ms":150,"table_ttl_ms":{TTL_MS},"service":"frontend","mode":"{mode}"{extra}}}"#
    );
    envoy_config_with(ws, backend, other, mode, &plugin)
}

/// The filter's Envoy: per-pod routes on `x-lb-endpt` (subset mode) before
/// the service route, the wasm filter with `plugin`, stateful session (session
/// mode); built with the project's Envoy harness.
pub(crate) fn envoy_config_with(
    ws: SocketAddr,
    backend: &[Replica],
    other: &Replica,
    mode: &str,
    plugin: &str,
) -> Config {
    let wasm = filter_wasm();
    let session = mode == "session";
    let mut clusters = vec![cluster("weight-server", &[ws])];
    let all: Vec<SocketAddr> = backend.iter().map(|r| r.server.addr).collect();
    clusters.push(cluster("svc", &all));
    let mut pods = Vec::new();
    for r in backend.iter().chain([other]) {
        clusters.push(cluster(&format!("pod-{}", r.name), &[r.server.addr]));
        pods.push((r.name.clone(), format!("pod-{}", r.name)));
    }
    let plugin = plugin.to_string();
    Box::new(move |listen, admin| {
        let mut routes = Vec::new();
        if !session {
            routes = per_pod_routes(
                ENDPOINT_HEADER,
                pods.iter().map(|(p, c)| (p.as_str(), c.as_str())),
            );
        }
        routes.push(Route::to_cluster("svc"));
        let mut l = Listener::new("main", listen, routes).filter(HttpFilter::Wasm(
            WasmFilter::new("mplb", &wasm, plugin.clone()),
        ));
        if session {
            l = l.filter(HttpFilter::StatefulSession {
                header: SESSION_HEADER.into(),
            });
        }
        let mut b = Bootstrap::with_admin(admin);
        b.listeners.push(l);
        b.clusters = clusters.clone();
        b
    })
}

/// What `n` requests through the filter got: answered by a backend
/// replica (200), and shed by admission (the 503 local reply).
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) served: usize,
    pub(crate) shed: usize,
}

impl Lab {
    pub(crate) fn start(mode: &str) -> Lab {
        Lab::start_with(mode, "")
    }

    /// [`Lab::start`] with `extra` plugin configuration keys.
    pub(crate) fn start_with(mode: &str, extra: &str) -> Lab {
        let backend: Vec<Replica> = ["r0", "r1", "r2"]
            .iter()
            .map(|n| Replica::start(n))
            .collect();
        let other = Replica::start("o0");
        let ws = WeightServer::start();
        ws.serve(1, table(1, &backend, &other, [60, 30, 10]));
        let config = envoy_config(ws.server.addr, &backend, &other, mode, extra);
        let envoy = Envoy::start(&config, 2);
        let lab = Lab {
            ws,
            backend,
            other,
            envoy,
        };
        // Ready once the workers stamp: a probe reaches a replica with the header.
        wait_for(
            "the first table to be in force",
            Duration::from_secs(20),
            || {
                lab.reset();
                lab.load("backend", &[], 8);
                lab.backend
                    .iter()
                    .map(|r| r.stamped() + r.sessions.lock().unwrap().values().sum::<u64>())
                    .sum::<u64>()
                    >= 8
            },
        );
        lab
    }

    pub(crate) fn reset(&self) {
        for r in self.backend.iter().chain([&self.other]) {
            r.reset();
        }
    }

    /// `n` GETs over 4 keep-alive connections; panics unless all are 200.
    pub(crate) fn load(&self, host: &str, headers: &[(&str, &str)], n: usize) {
        let failed: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|t| {
                    let addr = self.envoy.listen;
                    s.spawn(move || {
                        let mut c = Client::connect(addr).unwrap();
                        (t..n)
                            .step_by(4)
                            .filter(|_| !matches!(c.get(host, "/", headers), Ok((200, _))))
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(
            failed,
            0,
            "{failed} of {n} requests failed\n{}",
            self.envoy.log_text()
        );
    }

    /// `n` GETs over 4 keep-alive connections, counting 200s and admission
    /// sheds; panics on anything else (a shed must carry `x-lb-shed:
    /// admission` and `retry-after: 1`).
    pub(crate) fn load_counting_sheds(&self, host: &str, n: usize) -> Outcome {
        let outcomes: Vec<Outcome> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|t| {
                    let addr = self.envoy.listen;
                    s.spawn(move || {
                        let mut c = Client::connect(addr).unwrap();
                        let mut o = Outcome::default();
                        for _ in (t..n).step_by(4) {
                            let (status, headers, body) = c.get_full(host, "/", &[]).unwrap();
                            let header = |name: &str| {
                                headers
                                    .iter()
                                    .find(|(k, _)| k == name)
                                    .map(|(_, v)| v.as_str())
                            };
                            match status {
                                200 => o.served += 1,
                                503 => {
                                    assert_eq!(
                                        header("x-lb-shed"),
                                        Some("admission"),
                                        "{headers:?}"
                                    );
                                    assert_eq!(header("retry-after"), Some("1"), "{headers:?}");
                                    assert!(body.contains("admission"), "{body}");
                                    o.shed += 1;
                                }
                                other => panic!("status {other}: {headers:?} {body}"),
                            }
                        }
                        o
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        Outcome {
            served: outcomes.iter().map(|o| o.served).sum(),
            shed: outcomes.iter().map(|o| o.shed).sum(),
        }
    }

    /// The replicas' own counts as shares of what they served.
    pub(crate) fn shares(&self) -> Vec<f64> {
        let served: Vec<u64> = self.backend.iter().map(Replica::served).collect();
        let total: u64 = served.iter().sum();
        served
            .iter()
            .map(|&s| s as f64 / total.max(1) as f64)
            .collect()
    }

    /// No Wasm VM panicked or failed (a panic kills the VM).
    pub(crate) fn assert_no_vm_failure(&self) {
        let log = self.envoy.log_text();
        for bad in [
            "panicked",
            "wasm_vm_failed",
            "Wasm VM failed",
            "failed to load",
        ] {
            assert!(!log.contains(bad), "{bad:?} in the Envoy log:\n{log}");
        }
    }

    /// `n` requests pinned to backend `pod` over one connection, every 4th
    /// answered 503: each status reaches the client as the pod gave it.
    pub(crate) fn pinned_with_errors(&self, pod: &str, n: usize) {
        let mut c = Client::connect(self.envoy.listen).unwrap();
        for i in 0..n {
            let want = if i % 4 == 0 { "503" } else { "200" };
            let headers = [("x-lb-endpt", pod), ("x-test-status", want)];
            let (status, _) = c.get("backend", "/", &headers).unwrap();
            assert_eq!(status.to_string(), want, "{}", self.envoy.log_text());
        }
    }

    /// The filter called the weight server for nothing but the table.
    pub(crate) fn assert_only_polls(&self) {
        let s = self.ws.state.lock().unwrap();
        assert!(s.gets > 0, "no poll");
        assert!(s.others.is_empty(), "other calls: {:?}", s.others);
    }

    pub(crate) fn assert_split(&self, what: &str, want: [f64; 3], tolerance: f64) {
        let got = self.shares();
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= tolerance,
                "{what}: split {got:?}, want {want:?} ±{tolerance}"
            );
        }
        eprintln!("{what}: split {got:.3?} (want {want:?})");
    }
}
