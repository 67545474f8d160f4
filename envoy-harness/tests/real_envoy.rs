//! A real Envoy on free loopback ports: a bootstrap built with the harness
//! validates, starts, becomes ready, serves a direct response and a proxied
//! one (per-pod route), counts them in its stats, and stops with its group.
//! Needs Envoy (scripts/setup.sh).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use mplb_envoy_harness::{
    Bootstrap, Cluster, Launch, Listener, Route, admin, find_envoy, free_port, per_pod_routes,
    validate,
};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn get(to: SocketAddr, host: &str, headers: &str) -> String {
    let mut s = TcpStream::connect(to).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn a_real_envoy_runs_what_the_builders_describe() {
    let envoy = find_envoy().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (up, lb, admin_port) = (
        addr(free_port().unwrap()),
        addr(free_port().unwrap()),
        addr(free_port().unwrap()),
    );
    let mut b = Bootstrap::with_admin(admin_port);
    // An "upstream" listener answering directly, and a front listener routing
    // x-lb-endpt: p0 to a per-pod cluster of it, everything else to a direct 404.
    b.listeners.push(Listener::new(
        "up",
        up,
        vec![Route::direct(200, Some("from-upstream"))],
    ));
    let mut routes = per_pod_routes("x-lb-endpt", [("p0", "pod-p0")]);
    routes.push(Route::direct(404, Some("no-pod")));
    b.listeners
        .push(Listener::new("front", lb, routes).stat_prefix("front"));
    b.clusters.push(Cluster::new("pod-p0", [up]));
    let cfg = dir.path().join("envoy.json");
    b.write(&cfg).unwrap();
    validate(&envoy, &cfg, Duration::from_secs(120)).unwrap();

    let mut l = Launch::new(&envoy, &cfg);
    l.base_id = Some(u32::from(admin_port.port()));
    let mut e = l.spawn(&dir.path().join("envoy.log")).unwrap();
    e.wait_ready(admin_port, Duration::from_secs(30)).unwrap();
    assert!(get(lb, "x", "x-lb-endpt: p0\r\n").contains("from-upstream"));
    assert!(get(lb, "x", "").contains("no-pod"));
    let stats = admin::stats(admin_port, Some("^http\\.front\\.downstream_rq_total$")).unwrap();
    assert_eq!(stats["http.front.downstream_rq_total"], 2, "{stats:?}");
    let all = admin::stats(admin_port, None).unwrap();
    assert_eq!(all["cluster.pod-p0.upstream_rq_total"], 1);
    e.stop();
    assert!(e.check().is_err(), "stopped Envoy still running");
    assert!(!admin::ready(admin_port));
}

#[test]
fn validate_refuses_a_config_naming_a_missing_cluster() {
    let envoy = find_envoy().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut b = Bootstrap::default();
    b.listeners.push(Listener::new(
        "l",
        addr(free_port().unwrap()),
        vec![Route::to_cluster("nowhere")],
    ));
    let cfg = dir.path().join("bad.json");
    b.write(&cfg).unwrap();
    let err = validate(&envoy, &cfg, Duration::from_secs(120))
        .unwrap_err()
        .to_string();
    assert!(err.contains("nowhere"), "{err}");
}
