//! Fixtures for the VM's tests: a config, a weights table, a VM on a mock
//! host, and helpers to poll and to count a split.

use super::*;
use crate::mock::{MockHost, MockProxy};
use mplb_wire::testing::TableBuilder;

pub(crate) const DAY: u64 = 86_400_000;
pub(crate) const BACKEND: &str = "backend.default.svc.cluster.local";

/// The tests' plugin configuration body, plus `extra` keys.
pub(crate) fn cfg_body(extra: &str) -> String {
    format!(
        r#"{{"weight_server_cluster":"outbound|8080||ws.mplb.svc.cluster.local",
        "poll_interval_ms":200,"poll_timeout_ms":100{extra}}}"#
    )
}

pub(crate) fn cfg(extra: &str) -> PluginConfig {
    PluginConfig::parse(cfg_body(extra).as_bytes()).unwrap()
}

pub(crate) fn table(version: u64, weights: [u32; 3], ttl_ms: u64) -> String {
    TableBuilder::new(version)
        .ttl_ms(ttl_ms)
        .service(BACKEND, &["backend"])
        .pod("b-0", "10.0.0.1:80", f64::from(weights[0]))
        .pod("b-1", "10.0.0.2:80", f64::from(weights[1]))
        .pod("b-2", "[fd00::3]:80", f64::from(weights[2]))
        .service("other.default.svc.cluster.local", &["other"])
        .pod("o-0", "10.0.1.1:80", 1.0)
        .json()
}

/// `body` (a table's JSON) with `admit` set on service `fqdn`.
pub(crate) fn with_admit(body: &str, fqdn: &str, admit: f64) -> String {
    let key = format!(r#""{fqdn}":{{"#);
    assert!(body.contains(&key), "{fqdn} not in {body}");
    body.replacen(&key, &format!(r#"{key}"admit":{admit},"#), 1)
}

pub(crate) fn ok(body: &str) -> CallResponse {
    CallResponse {
        status: Some(200),
        body: body.as_bytes().to_vec(),
    }
}

/// Tick until this VM polls; answer its weights call with `resp`.
pub(crate) fn poll_and_answer(vm: &mut VmFilter, host: &MockHost, resp: &CallResponse) {
    host.proxy.advance(200);
    vm.on_tick(host);
    let calls = host.take_calls();
    let get = calls
        .iter()
        .find(|c| c.header(":method") == Some("GET"))
        .expect("the VM polled");
    vm.on_call_response(host, get.token, resp);
}

pub(crate) fn split(vm: &mut VmFilter, now: u64, n: usize) -> [usize; 3] {
    let mut counts = [0; 3];
    for _ in 0..n {
        if let Some((_, pod)) = vm.on_request(now, Some("backend:80"), None).set {
            counts[pod.trim_start_matches("b-").parse::<usize>().unwrap()] += 1;
        }
    }
    counts
}

pub(crate) fn setup(extra: &str) -> (std::rc::Rc<MockProxy>, MockHost, VmFilter) {
    let proxy = MockProxy::new(1_000_000);
    let host = proxy.vm();
    let mut vm = VmFilter::new(cfg(extra), Some("frontend".into()), 7);
    vm.on_configure(&host);
    (proxy, host, vm)
}
