//! Whole requests through the plugin's callbacks, as the module runs them:
//! headers in, edits out, for every per-request branch.

use super::fixtures::{install, request, setup, tick};
use super::*;
use crate::vm::fixtures::{DAY, table};

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
    // No table yet: a stale endpoint header goes, nothing is stamped.
    let out = request(
        &mut plugin,
        &host,
        &[(":authority", "backend"), ("x-lb-endpt", "b-0")],
    );
    assert_eq!(out, pairs(&[(":authority", "backend")]));
    let out = request(&mut plugin, &host, &[(":authority", "backend")]);
    assert_eq!(out, pairs(&[(":authority", "backend")]));

    install(&mut plugin, &host, &table(1, [0, 1, 0], DAY));

    // Unknown destination: stripped, untouched without the header.
    let out = request(
        &mut plugin,
        &host,
        &[(":authority", "nope:80"), ("x-lb-endpt", "b-0")],
    );
    assert_eq!(out, pairs(&[(":authority", "nope:80")]));
    // Own service: untouched, even with an endpoint header.
    let own = [(":authority", "frontend:8080"), ("x-lb-endpt", "o-0")];
    assert_eq!(request(&mut plugin, &host, &own), pairs(&own));
    // A pick: the only pod with weight.
    let out = request(
        &mut plugin,
        &host,
        &[(":authority", "backend.default.svc.cluster.local:80")],
    );
    assert_eq!(get(&out, "x-lb-endpt"), Some("b-1"));
    // A pin to a pod of the destination is kept as it is.
    let pin = [(":authority", "backend"), ("x-lb-endpt", "b-2")];
    assert_eq!(request(&mut plugin, &host, &pin), pairs(&pin));
    // A stale header naming another service's pod is replaced.
    let out = request(
        &mut plugin,
        &host,
        &[(":authority", "backend"), ("x-lb-endpt", "o-0")],
    );
    assert_eq!(get(&out, "x-lb-endpt"), Some("b-1"));
    // A value that is not UTF-8 names no pod: replaced too.
    host.set_map(Map::Request, &[(":authority", "backend")]);
    host.headers
        .borrow_mut()
        .get_mut(&0)
        .unwrap()
        .push(("x-lb-endpt".into(), vec![0xff]));
    assert_eq!(plugin.on_request_headers(&host), Next::Continue);
    assert_eq!(get(&host.map(Map::Request), "x-lb-endpt"), Some("b-1"));

    // Expired table: the server stops answering; 2 s later the table is
    // stale and requests fail open again.
    for _ in 0..60 {
        tick(&mut plugin, &host, (None, b""));
    }
    assert!(p.now.get() > 1_000_000 + 2_000);
    let out = request(
        &mut plugin,
        &host,
        &[(":authority", "backend"), ("x-lb-endpt", "b-1")],
    );
    assert_eq!(out, pairs(&[(":authority", "backend")]));
}

#[test]
fn session_mode_end_to_end() {
    let (_p, host, mut plugin) = setup(r#","mode":"session""#);
    install(&mut plugin, &host, &table(1, [0, 0, 1], DAY));
    // A pick: base64("[fd00::3]:80").
    let out = request(&mut plugin, &host, &[(":authority", "backend")]);
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
        &[(":authority", "backend"), ("x-lb-endpt", "b-0")],
    );
    assert_eq!(get(&out, "x-lb-endpt"), Some("b-0"));
    assert_eq!(get(&out, "x-lb-session"), Some("MTAuMC4wLjE6ODA="));
    // A stale endpoint header is removed.
    let out = request(
        &mut plugin,
        &host,
        &[(":authority", "backend"), ("x-lb-endpt", "o-0")],
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
    let out = request(&mut plugin, &host, &[(":authority", "backend")]);
    assert_eq!(
        out,
        pairs(&[(":authority", "backend"), ("x-lb-host", "[fd00::3]:80")])
    );
    // A pin keeps its header and gets its pod's address.
    let out = request(
        &mut plugin,
        &host,
        &[(":authority", "backend"), ("x-lb-endpt", "b-0")],
    );
    assert_eq!(get(&out, "x-lb-endpt"), Some("b-0"));
    assert_eq!(get(&out, "x-lb-host"), Some("10.0.0.1:80"));
    // A stale endpoint header is removed, and a client's own x-lb-host is
    // replaced by the pick.
    let out = request(
        &mut plugin,
        &host,
        &[
            (":authority", "backend"),
            ("x-lb-endpt", "o-0"),
            ("x-lb-host", "10.9.9.9:80"),
        ],
    );
    assert_eq!(
        out,
        pairs(&[(":authority", "backend"), ("x-lb-host", "[fd00::3]:80")])
    );
}

#[test]
fn a_request_reads_nothing_of_its_response() {
    let (_p, host, mut plugin) = setup("");
    install(&mut plugin, &host, &table(1, [1, 0, 0], DAY));
    for _ in 0..100 {
        let out = request(&mut plugin, &host, &[(":authority", "backend")]);
        assert_eq!(get(&out, "x-lb-endpt"), Some("b-0"));
    }
    assert_eq!(host.take_reads(Map::Response, ":status"), 0);
}

#[test]
fn retired_keys_start_the_filter_with_a_warning() {
    let (_p, host, plugin) = setup(r#","response_samples_per_s":20,"exact_errors":true"#);
    assert!(plugin.filter().is_some());
    assert!(host.logged(
        r#"ignoring retired configuration keys ["response_samples_per_s", "exact_errors"]"#
    ));
}
