//! End-to-end: the built filter in a real Envoy 1.40 (`--concurrency 2`: each
//! worker has its own Wasm VM; they share the poll lease), a scripted weight server, and upstream
//! replicas whose own counts are the evidence.
//!
//! Run: `cargo test -p mplb-filter --test envoy_e2e` (builds the wasm itself;
//! needs the wasm32-wasip1 target and Envoy from scripts/setup.sh).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use mplb_envoy_harness::{
    Bootstrap, Cluster, ENDPOINT_HEADER, HttpFilter, Listener, Route, SESSION_HEADER, WasmFilter,
    per_pod_routes,
};
use mplb_wire::ProxyStats;
use mplb_wire::testing::TableBuilder;
use support::http::{Client, Replica, WeightServer};
use support::{Config, Envoy, filter_wasm, wait_for};

const BACKEND: &str = "backend.default.svc.cluster.local";
const POLL_MS: u64 = 200;
const TTL_MS: u64 = 2000;

struct Lab {
    ws: WeightServer,
    backend: Vec<Replica>,
    other: Replica,
    envoy: Envoy,
}

fn table(version: u64, backend: &[Replica], other: &Replica, weights: [u32; 3]) -> String {
    let mut t = TableBuilder::new(version).service(BACKEND, &["backend"]);
    for (r, w) in backend.iter().zip(weights) {
        t = t.pod(&r.name, &r.server.addr.to_string(), f64::from(w));
    }
    t.service("other.default.svc.cluster.local", &["other"])
        .pod(&other.name, &other.server.addr.to_string(), 1.0)
        .json()
}

fn cluster(name: &str, addrs: &[SocketAddr]) -> Cluster {
    Cluster::new(name, addrs.iter().copied()).connect_timeout(Duration::from_millis(250))
}

/// `samples`: responses observed per pod and second (above any rate here:
/// every one observed, so error counts are exact).
fn envoy_config(
    ws: SocketAddr,
    backend: &[Replica],
    other: &Replica,
    mode: &str,
    samples: u32,
) -> Config {
    let plugin = format!(
        r#"{{"weight_server_cluster":"weight-server","weight_server_authority":"weight-server","poll_interval_ms":{POLL_MS},"poll_timeout_ms":150,"table_ttl_ms":{TTL_MS},"service":"frontend","mode":"{mode}","response_samples_per_s":{samples}}}"#
    );
    envoy_config_with(ws, backend, other, mode, &plugin)
}

/// The filter's Envoy: per-pod routes on `x-lb-endpt` (subset mode) before
/// the service route, the wasm filter with `plugin`, stateful session (session
/// mode); built with the project's Envoy harness.
fn envoy_config_with(
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

impl Lab {
    fn start(mode: &str, samples: u32) -> Lab {
        let backend: Vec<Replica> = ["r0", "r1", "r2"]
            .iter()
            .map(|n| Replica::start(n))
            .collect();
        let other = Replica::start("o0");
        let ws = WeightServer::start();
        ws.serve(1, table(1, &backend, &other, [60, 30, 10]));
        let envoy = Envoy::start(
            &envoy_config(ws.server.addr, &backend, &other, mode, samples),
            2,
        );
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

    fn reset(&self) {
        for r in self.backend.iter().chain([&self.other]) {
            r.reset();
        }
    }

    /// `n` GETs over 4 keep-alive connections; panics unless all are 200.
    fn load(&self, host: &str, headers: &[(&str, &str)], n: usize) {
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

    /// The replicas' own counts as shares of what they served.
    fn shares(&self) -> Vec<f64> {
        let served: Vec<u64> = self.backend.iter().map(Replica::served).collect();
        let total: u64 = served.iter().sum();
        served
            .iter()
            .map(|&s| s as f64 / total.max(1) as f64)
            .collect()
    }

    /// No Wasm VM panicked or failed (a panic kills the VM).
    fn assert_no_vm_failure(&self) {
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
    /// answered 503 (each checked); the pod's (requests, errors, timed) in
    /// the stats posted meanwhile.
    fn pinned_stats(&self, pod: &str, n: usize) -> (u64, u64, u64) {
        let window = Duration::from_millis(5 * POLL_MS);
        std::thread::sleep(window);
        let before = self.ws.state.lock().unwrap().stats_bodies.len();
        let mut c = Client::connect(self.envoy.listen).unwrap();
        for i in 0..n {
            let want = if i % 4 == 0 { "503" } else { "200" };
            let headers = [("x-lb-endpt", pod), ("x-test-status", want)];
            let (status, _) = c.get("backend", "/", &headers).unwrap();
            assert_eq!(status.to_string(), want, "{}", self.envoy.log_text());
        }
        drop(c);
        std::thread::sleep(window);
        let bodies = self.ws.state.lock().unwrap().stats_bodies[before..].to_vec();
        bodies
            .iter()
            .flat_map(|b| ProxyStats::parse(b).unwrap().pods)
            .filter(|p| p.pod == pod && p.service == BACKEND)
            .fold((0, 0, 0), |(r, e, l), p| {
                (r + p.requests, e + p.errors, l + p.latency_count)
            })
    }

    fn assert_split(&self, what: &str, want: [f64; 3], tolerance: f64) {
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

#[test]
fn subset_mode_follows_the_weights_and_fails_open() {
    let mut lab = Lab::start("subset", 1_000_000);

    // The split follows 60/30/10 over 3,000 requests, every one stamped.
    lab.reset();
    lab.load("backend", &[], 3000);
    lab.assert_split("60/30/10", [0.6, 0.3, 0.1], 0.03);
    assert_eq!(lab.backend.iter().map(Replica::stamped).sum::<u64>(), 3000);

    // Every VM ticks, one polls per period: about one GET per 200 ms.
    let (g0, t0) = (lab.ws.gets(), Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    let (gets, periods) = (
        lab.ws.gets() - g0,
        t0.elapsed().as_millis() as u64 / POLL_MS,
    );
    eprintln!("{gets} polls in {periods} periods");
    assert!(
        gets >= periods / 2 && gets <= periods + 2,
        "{gets} polls in {periods} periods"
    );

    // A weight change is followed within two poll periods.
    lab.ws
        .serve(2, table(2, &lab.backend, &lab.other, [10, 30, 60]));
    std::thread::sleep(Duration::from_millis(2 * POLL_MS));
    lab.reset();
    lab.load("backend", &[], 3000);
    lab.assert_split("changed to 10/30/60", [0.1, 0.3, 0.6], 0.04);

    // An invalid table leaves the old split in force (and is logged).
    let invalid =
        table(3, &lab.backend, &lab.other, [10, 30, 60]).replace("\"weight\":60", "\"weight\":-60");
    lab.ws.serve(3, invalid);
    std::thread::sleep(Duration::from_millis(3 * POLL_MS));
    lab.reset();
    lab.load("backend", &[], 3000);
    lab.assert_split("after an invalid table", [0.1, 0.3, 0.6], 0.04);
    assert!(
        lab.envoy.log_text().contains("keeping v2"),
        "rejection not logged:\n{}",
        lab.envoy.log_text()
    );
    lab.ws
        .serve(2, table(2, &lab.backend, &lab.other, [10, 30, 60]));

    // A pin to a pod of the destination is honoured.
    for (i, pod) in ["r2", "r0"].iter().enumerate() {
        lab.reset();
        lab.load("backend", &[("x-lb-endpt", pod)], 300);
        assert_eq!(lab.backend[[2, 0][i]].served(), 300, "pin to {pod}");
    }

    // A stale header naming another service's pod is replaced, never followed.
    lab.reset();
    lab.load("backend:8080", &[("x-lb-endpt", "o0")], 3000);
    assert_eq!(lab.other.served(), 0, "stale header followed");
    lab.assert_split("stale header replaced", [0.1, 0.3, 0.6], 0.04);

    // A header value that is not UTF-8 (obs-text, which Envoy passes on)
    // names no pod: replaced like any stale header, and the VM survives.
    lab.reset();
    let mut c = Client::connect(lab.envoy.listen).unwrap();
    for _ in 0..200 {
        let (status, _) = c
            .get_bytes("backend", "/", &[("x-lb-endpt", b"r\xff\xfe0")])
            .unwrap();
        assert_eq!(status, 200, "{}", lab.envoy.log_text());
    }
    assert_eq!(lab.backend.iter().map(Replica::stamped).sum::<u64>(), 200);

    // Requests to the own service are not touched: Envoy's round robin.
    lab.reset();
    lab.load("frontend:8080", &[], 600);
    assert_eq!(lab.backend.iter().map(Replica::stamped).sum::<u64>(), 0);
    lab.assert_split("own service (round robin)", [1.0 / 3.0; 3], 0.05);

    // Every stamped request is counted once, 5xx as errors, and timed (the
    // sampling budget is set above any rate here): 400 requests pinned to
    // r1, 100 of them answered 503.
    let r1 = lab.pinned_stats("r1", 400);
    eprintln!("r1 stats (requests, errors, timed): {r1:?}");
    assert_eq!((r1.0, r1.1), (400, 100), "r1 stats");
    assert_eq!(r1.2, 400, "timed of 400");

    // Proxy stats rode along on the polls.
    let bodies = lab.ws.state.lock().unwrap().stats_bodies.clone();
    let stats: Vec<ProxyStats> = bodies
        .iter()
        .map(|b| ProxyStats::parse(b).unwrap())
        .collect();
    let r0: u64 = stats
        .iter()
        .flat_map(|s| &s.pods)
        .filter(|p| p.pod == "r0" && p.service == BACKEND)
        .map(|p| p.requests)
        .sum();
    assert!(r0 > 0, "no stats for r0 in {} bodies", stats.len());
    assert!(stats.iter().all(|s| s.proxy == "frontend"));

    // Weight server killed: every request still succeeds; after the TTL the
    // filter stamps nothing and Envoy's own balancing applies.
    lab.ws.server.stop();
    assert!(!support::is_listening(lab.ws.server.addr));
    let killed = Instant::now();
    lab.reset();
    lab.load("backend", &[], 600);
    std::thread::sleep(
        Duration::from_millis(TTL_MS + 2 * POLL_MS).saturating_sub(killed.elapsed()),
    );
    lab.reset();
    lab.load("backend", &[("x-lb-endpt", "o0")], 1500);
    assert_eq!(
        lab.backend.iter().map(Replica::stamped).sum::<u64>(),
        0,
        "stamped after the TTL"
    );
    assert_eq!(lab.other.served(), 0, "stale header kept after the TTL");
    lab.assert_split("weight server gone, after the TTL", [1.0 / 3.0; 3], 0.05);
    lab.assert_no_vm_failure();
}

#[test]
fn session_mode_routes_through_stateful_session() {
    // Sampled responses (the filter's default is 32): see the stats below.
    let lab = Lab::start("session", 400);
    lab.reset();
    lab.load("backend", &[], 3000);
    lab.assert_split("session 60/30/10", [0.6, 0.3, 0.1], 0.03);
    // Each replica only ever received the session value naming itself.
    for r in &lab.backend {
        let want = base64::engine::general_purpose::STANDARD.encode(r.server.addr.to_string());
        let seen = r.sessions.lock().unwrap().clone();
        assert_eq!(
            seen.keys().collect::<Vec<_>>(),
            vec![&want],
            "{}: {seen:?}",
            r.name
        );
    }
    // A pin through the session header (no per-pod routes in this Envoy).
    lab.reset();
    lab.load("backend", &[("x-lb-endpt", "r2")], 300);
    assert_eq!(lab.backend[2].served(), 300);

    // Under sampling every request is still counted; errors are estimated
    // from the observed responses (each standing for its period), latency
    // timed for those only. 4,000 requests pinned to r1, every 4th a 503.
    let (requests, errors, timed) = lab.pinned_stats("r1", 4000);
    eprintln!("r1 sampled stats (requests, errors, timed): {requests} {errors} {timed}");
    assert_eq!(requests, 4000);
    assert!(timed > 0 && timed < 4000 / 2, "sampled: {timed} timed");
    // The estimate's standard error, with `timed` observed of 4,000 and a
    // 503 share of 1/4: sqrt(timed / 4 * 3 / 4) * 4000 / timed.
    let se = (timed as f64 * 3.0 / 16.0).sqrt() * 4000.0 / timed as f64;
    let off = (errors as f64 - 1000.0).abs();
    assert!(off < 4.0 * se + 20.0, "errors {errors}, 1,000 +- {se:.0}");
    lab.assert_no_vm_failure();
}

#[test]
fn a_bad_configuration_refuses_to_start_naming_the_field() {
    let backend: Vec<Replica> = ["r0", "r1", "r2"]
        .iter()
        .map(|n| Replica::start(n))
        .collect();
    let other = Replica::start("o0");
    let plugin = r#"{"weight_server_cluster":"weight-server","poll_interval_ms":-1}"#;
    let cfg = envoy_config_with(other.server.addr, &backend, &other, "subset", plugin);
    let (exited, log) = Envoy::start_expecting_failure(&cfg);
    assert!(
        exited,
        "Envoy started with a bad plugin configuration:\n{log}"
    );
    let ours: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("mplb: refusing to start"))
        .collect();
    assert_eq!(ours.len(), 1, "want exactly one refusal line:\n{log}");
    assert!(
        ours.iter()
            .all(|l| l.contains("`poll_interval_ms`") && l.contains("between")),
        "{ours:?}"
    );
}
