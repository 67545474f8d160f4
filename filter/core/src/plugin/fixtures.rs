//! Fixtures for the plugin's tests: a plugin configured on a mock host, and
//! helpers that drive its callbacks as Envoy does (tick, call answers,
//! whole requests).

use super::*;
use crate::mock::{MockHost, MockProxy};
use crate::vm::fixtures::cfg_body;

/// A plugin configured (root context 1) with the VMs' test config plus
/// `extra`, its own service `frontend`.
pub(super) fn setup(extra: &str) -> (std::rc::Rc<MockProxy>, MockHost, Plugin) {
    let proxy = MockProxy::new(1_000_000);
    let host = proxy.vm();
    let body = cfg_body(&format!(r#","service":"frontend"{extra}"#));
    host.set_buffer(Buffer::PluginConfiguration, body.as_bytes());
    let mut plugin = Plugin::default();
    assert!(plugin.configure(&host, 1), "{:?}", host.logs.borrow());
    (proxy, host, plugin)
}

/// Answer call `token` as Envoy does: `status` (`None`: no response) and
/// `body`.
pub(super) fn answer(
    plugin: &mut Plugin,
    host: &MockHost,
    token: u32,
    status: Option<u16>,
    body: &[u8],
) {
    let headers = match status {
        Some(s) => vec![(":status".to_string(), s.to_string())],
        None => vec![],
    };
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    host.set_map(Map::HttpCallResponse, &pairs);
    host.set_buffer(Buffer::HttpCallResponseBody, body);
    plugin.on_http_call_response(host, 1, token, pairs.len(), body.len());
}

/// Advance one tick and run it; answer the VM's polls with `weights`.
/// Returns the calls made.
pub(super) fn tick(
    plugin: &mut Plugin,
    host: &MockHost,
    weights: (Option<u16>, &[u8]),
) -> Vec<crate::mock::Call> {
    let tick_ms = plugin.filter().map_or(0, |vm| vm.config().tick_ms());
    host.proxy.advance(tick_ms);
    plugin.on_tick(host, 1);
    let calls = host.take_calls();
    for call in &calls {
        answer(plugin, host, call.token, weights.0, weights.1);
    }
    calls
}

/// Tick until the VM polls and installs `table`.
pub(super) fn install(plugin: &mut Plugin, host: &MockHost, table: &str) {
    for _ in 0..8 {
        let calls = tick(plugin, host, (Some(200), table.as_bytes()));
        if calls.iter().any(|c| c.header(":method") == Some("GET")) {
            return;
        }
    }
    panic!("the VM never polled");
}

/// One request, as Envoy runs it: request headers in (the callback may
/// edit them). Returns the request headers as the filter left them.
pub(super) fn request(
    plugin: &mut Plugin,
    host: &MockHost,
    headers: &[(&str, &str)],
) -> Vec<(String, String)> {
    let (next, out) = send(plugin, host, headers);
    assert_eq!(next, Next::Continue);
    out
}

/// [`request`], with what the callback told the host to do next.
pub(super) fn send(
    plugin: &mut Plugin,
    host: &MockHost,
    headers: &[(&str, &str)],
) -> (Next, Vec<(String, String)>) {
    host.set_map(Map::Request, headers);
    let next = plugin.on_request_headers(host);
    (next, host.map(Map::Request))
}
