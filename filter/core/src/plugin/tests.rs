//! Whole requests through the plugin's callbacks, as the module runs them:
//! headers in, edits out, end of stream, stats, for every per-request
//! branch.

use super::fixtures::{install, request, setup, tick};
use super::*;
use crate::mock::MockHost;
use crate::vm::fixtures::{DAY, table};
use mplb_wire::{PodStats, ProxyStats};

/// Headers as the tests write them.
fn pairs(h: &[(&str, &str)]) -> Vec<(String, String)> {
    h.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The value of `name` among `headers`.
fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Tick until the stats are posted; the pods posted (none: nothing counted).
fn posted(plugin: &mut Plugin, host: &MockHost) -> Vec<PodStats> {
    let mut pods = Vec::new();
    for _ in 0..8 {
        for call in tick(plugin, host, (Some(304), b"")) {
            if call.header(":method") == Some("POST") {
                pods.extend(
                    ProxyStats::parse(call.body.as_deref().unwrap())
                        .unwrap()
                        .pods,
                );
            }
        }
    }
    pods
}

#[test]
fn configure_refuses_a_bad_configuration_and_names_the_field() {
    let host = crate::mock::MockProxy::new(1).vm();
    host.set_buffer(
        Buffer::PluginConfiguration,
        br#"{"weight_server_cluster":"ws","mode":"x"}"#,
    );
    let mut plugin = Plugin::default();
    assert!(!plugin.configure(&host, 1));
    assert!(host.logged("refusing to start: bad configuration: field `mode`"));
    assert!(plugin.filter().is_none());
    // A good one starts it and asks for the tick (poll interval / 4).
    host.set_buffer(
        Buffer::PluginConfiguration,
        br#"{"weight_server_cluster":"ws","service":"fe"}"#,
    );
    assert!(plugin.configure(&host, 1));
    assert_eq!(host.tick_ms.get(), Some(250));
}

#[test]
fn the_own_service_comes_from_config_env_or_node_metadata() {
    let own = |env: Option<&str>, prop: Option<&str>| {
        let host = crate::mock::MockProxy::new(1).vm();
        host.set_buffer(
            Buffer::PluginConfiguration,
            br#"{"weight_server_cluster":"ws"}"#,
        );
        if let Some(e) = env {
            host.env
                .borrow_mut()
                .insert("ISTIO_META_WORKLOAD_NAME".into(), e.into());
        }
        if let Some(p) = prop {
            host.properties
                .borrow_mut()
                .insert("node.metadata.WORKLOAD_NAME".into(), p.as_bytes().to_vec());
        }
        let mut plugin = Plugin::default();
        assert!(plugin.configure(&host, 1));
        host.logged("own service unknown")
    };
    assert!(!own(Some("frontend"), None));
    assert!(!own(None, Some("frontend")));
    assert!(own(None, Some("front end")), "whitespace: not a name");
    assert!(own(None, None));
}

#[test]
fn every_per_request_branch_end_to_end() {
    let (p, host, mut plugin) = setup(r#","table_ttl_ms":2000"#);
    let ids = std::cell::Cell::new(0u32);
    let next = || {
        ids.set(ids.get() + 1);
        ids.get()
    };

    // No table yet: a stale endpoint header goes, nothing is stamped.
    let out = request(
        &mut plugin,
        &host,
        next(),
        &[(":authority", "backend"), ("x-lb-endpt", "b-0")],
        Some(200),
    );
    assert_eq!(out, pairs(&[(":authority", "backend")]));
    let out = request(
        &mut plugin,
        &host,
        next(),
        &[(":authority", "backend")],
        Some(200),
    );
    assert_eq!(out, pairs(&[(":authority", "backend")]));
    assert_eq!(plugin.in_flight(), 0, "unstamped requests keep no stream");

    install(&mut plugin, &host, &table(1, [0, 1, 0], DAY));

    // Unknown destination: stripped, untouched without the header.
    let out = request(
        &mut plugin,
        &host,
        next(),
        &[(":authority", "nope:80"), ("x-lb-endpt", "b-0")],
        Some(200),
    );
    assert_eq!(out, pairs(&[(":authority", "nope:80")]));
    // Own service: untouched, even with an endpoint header.
    let own = [(":authority", "frontend:8080"), ("x-lb-endpt", "o-0")];
    assert_eq!(
        request(&mut plugin, &host, next(), &own, Some(200)),
        pairs(&own)
    );
    // A pick: the only pod with weight.
    let out = request(
        &mut plugin,
        &host,
        next(),
        &[(":authority", "backend.default.svc.cluster.local:80")],
        Some(200),
    );
    assert_eq!(get(&out, "x-lb-endpt"), Some("b-1"));
    // A pin to a pod of the destination is kept as it is.
    let pin = [(":authority", "backend"), ("x-lb-endpt", "b-2")];
    assert_eq!(
        request(&mut plugin, &host, next(), &pin, Some(503)),
        pairs(&pin)
    );
    // A stale header naming another service's pod is replaced.
    let out = request(
        &mut plugin,
        &host,
        next(),
        &[(":authority", "backend"), ("x-lb-endpt", "o-0")],
        None,
    );
    assert_eq!(get(&out, "x-lb-endpt"), Some("b-1"));
    // A value that is not UTF-8 names no pod: replaced too.
    host.set_map(Map::Request, &[(":authority", "backend")]);
    host.headers
        .borrow_mut()
        .get_mut(&0)
        .unwrap()
        .push(("x-lb-endpt".into(), vec![0xff]));
    plugin.on_request_headers(&host, next());
    assert_eq!(get(&host.map(Map::Request), "x-lb-endpt"), Some("b-1"));
    host.set_map(Map::Response, &[(":status", "200")]);
    plugin.on_log(&host, ids.get());
    assert_eq!(plugin.in_flight(), 0, "every stream ended");

    // Stats: b-1 has the pick, the stale replacement (no response: an
    // error) and the non-UTF-8 one; b-2 the pin (a 503).
    let mut pods = posted(&mut plugin, &host);
    pods.sort_by(|a, b| a.pod.cmp(&b.pod));
    let counts: Vec<(&str, u64, u64)> = pods
        .iter()
        .map(|s| (s.pod.as_str(), s.requests, s.errors))
        .collect();
    assert_eq!(counts, [("b-1", 3, 1), ("b-2", 1, 1)]);
    assert!(
        pods.iter()
            .all(|s| s.service == crate::vm::fixtures::BACKEND)
    );

    // Expired table: the server stops answering; 2 s later the table is
    // stale and requests fail open again.
    for _ in 0..60 {
        tick(&mut plugin, &host, (None, b""));
    }
    assert!(p.now.get() > 1_000_000 + 2_000);
    let out = request(
        &mut plugin,
        &host,
        next(),
        &[(":authority", "backend"), ("x-lb-endpt", "b-1")],
        Some(200),
    );
    assert_eq!(out, pairs(&[(":authority", "backend")]));
    assert_eq!(plugin.in_flight(), 0);
}

#[test]
fn session_mode_end_to_end() {
    let (_p, host, mut plugin) = setup(r#","mode":"session""#);
    install(&mut plugin, &host, &table(1, [0, 0, 1], DAY));
    // A pick: base64("[fd00::3]:80").
    let out = request(
        &mut plugin,
        &host,
        1,
        &[(":authority", "backend")],
        Some(200),
    );
    assert_eq!(
        out,
        pairs(&[
            (":authority", "backend"),
            ("x-lb-session", "W2ZkMDA6OjNdOjgw")
        ])
    );
    // A pin keeps its header and gets its pod's address.
    let out = request(
        &mut plugin,
        &host,
        2,
        &[(":authority", "backend"), ("x-lb-endpt", "b-0")],
        Some(200),
    );
    assert_eq!(get(&out, "x-lb-endpt"), Some("b-0"));
    assert_eq!(get(&out, "x-lb-session"), Some("MTAuMC4wLjE6ODA="));
    // A stale endpoint header is removed.
    let out = request(
        &mut plugin,
        &host,
        3,
        &[(":authority", "backend"), ("x-lb-endpt", "o-0")],
        Some(200),
    );
    assert_eq!(
        out,
        pairs(&[
            (":authority", "backend"),
            ("x-lb-session", "W2ZkMDA6OjNdOjgw")
        ])
    );
}

#[test]
fn override_mode_end_to_end() {
    let (_p, host, mut plugin) = setup(r#","mode":"override""#);
    install(&mut plugin, &host, &table(1, [0, 0, 1], DAY));
    // A pick: the pod's ip:port, in the clear (the Lua extension reads it).
    let out = request(
        &mut plugin,
        &host,
        1,
        &[(":authority", "backend")],
        Some(200),
    );
    assert_eq!(
        out,
        pairs(&[(":authority", "backend"), ("x-lb-host", "[fd00::3]:80")])
    );
    // A pin keeps its header and gets its pod's address.
    let out = request(
        &mut plugin,
        &host,
        2,
        &[(":authority", "backend"), ("x-lb-endpt", "b-0")],
        Some(200),
    );
    assert_eq!(get(&out, "x-lb-endpt"), Some("b-0"));
    assert_eq!(get(&out, "x-lb-host"), Some("10.0.0.1:80"));
    // A stale endpoint header is removed, and a client's own x-lb-host is
    // replaced by the pick.
    let out = request(
        &mut plugin,
        &host,
        3,
        &[
            (":authority", "backend"),
            ("x-lb-endpt", "o-0"),
            ("x-lb-host", "10.9.9.9:80"),
        ],
        Some(200),
    );
    assert_eq!(
        out,
        pairs(&[(":authority", "backend"), ("x-lb-host", "[fd00::3]:80")])
    );
}

#[test]
fn only_sampled_responses_are_read_and_timed() {
    // 20 per second over 50 ms ticks: 1 observed per pod and tick.
    let (p, host, mut plugin) = setup(r#","response_samples_per_s":20"#);
    install(&mut plugin, &host, &table(1, [1, 0, 0], DAY));
    p.ns_step.set(2_000_000);
    let req = [(":authority", "backend")];
    // Light traffic: every response is observed (status read, timed).
    request(&mut plugin, &host, 1, &req, Some(503));
    assert_eq!(host.take_reads(Map::Response, ":status"), 1);
    let pods = posted(&mut plugin, &host);
    assert_eq!(
        (pods[0].requests, pods[0].errors, pods[0].latency_count),
        (1, 1, 1)
    );
    assert_eq!(pods[0].latency_sum_us, 2_000);
    // Heavy traffic: after a tick of 1,000, about 1 in 1,000 is observed;
    // the others are counted with no status read and no clock read.
    for id in 0..1000 {
        request(&mut plugin, &host, 10 + id, &req, Some(200));
    }
    let first = host.take_reads(Map::Response, ":status");
    tick(&mut plugin, &host, (Some(304), b""));
    for id in 0..1000 {
        request(&mut plugin, &host, 2000 + id, &req, Some(503));
    }
    let read = host.take_reads(Map::Response, ":status");
    assert!((1..=20).contains(&read), "read {read} of 1000");
    let pods = posted(&mut plugin, &host);
    let b0 = pods.iter().find(|s| s.pod == "b-0").unwrap();
    assert_eq!(b0.requests, 2000, "every request counted");
    assert_eq!(
        b0.latency_count,
        (first + read) as u64,
        "timed: the observed ones"
    );
    // Each observed 503 stands for its period: the estimate is of 1,000.
    assert!((200..=5000).contains(&b0.errors), "errors {}", b0.errors);
}
