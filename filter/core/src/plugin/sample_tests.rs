//! Response sampling, end to end through the plugin's callbacks (the code
//! the module runs): every
//! request counted, errors exact under light traffic and estimated under
//! heavy traffic, latency timed to a budget per destination pod.

use super::fixtures::{request, setup, tick};
use super::*;
use crate::mock::MockHost;
use crate::vm::fixtures::{DAY, table};
use mplb_wire::{PodStats, ProxyStats};

/// `n` requests pinned to `pod`, run through the plugin's callbacks as
/// Envoy runs them; each takes 1 ms when timed. `error(i)`: whether
/// request `i` is answered 503.
fn traffic(
    plugin: &mut Plugin,
    host: &MockHost,
    next_id: &mut u32,
    pod: &str,
    n: usize,
    error: impl Fn(usize) -> bool,
) {
    host.proxy.ns_step.set(1_000_000);
    for i in 0..n {
        *next_id += 1;
        let status = if error(i) { 503 } else { 200 };
        let headers = [(":authority", "backend"), ("x-lb-endpt", pod)];
        request(plugin, host, *next_id, &headers, Some(status));
    }
    assert_eq!(plugin.in_flight(), 0, "every stream ended");
}

/// One tick, the polls answered 304; adds the stats posted to `totals`.
fn tick_and_collect(plugin: &mut Plugin, host: &MockHost, totals: &mut Vec<PodStats>) {
    for call in tick(plugin, host, (Some(304), b"")) {
        if call.header(":method") != Some("POST") {
            continue;
        }
        let body = ProxyStats::parse(call.body.as_deref().unwrap()).unwrap();
        for p in body.pods {
            match totals.iter_mut().find(|t| t.pod == p.pod) {
                Some(t) => {
                    t.requests += p.requests;
                    t.errors += p.errors;
                    t.latency_count += p.latency_count;
                    t.latency_sum_us += p.latency_sum_us;
                }
                None => totals.push(p),
            }
        }
    }
}

/// 200 ticks: `b-0` takes 500 requests per tick (every 10th a 503), `b-1`
/// one (all 503). The totals per pod: (requests, errors, timed).
fn heavy_and_light(extra: &str) -> [(u64, u64, u64); 2] {
    let (_p, host, mut plugin) = setup(extra);
    super::fixtures::install(&mut plugin, &host, &table(1, [6, 3, 1], DAY));
    let (mut totals, mut id) = (Vec::new(), 0);
    for _ in 0..200 {
        traffic(&mut plugin, &host, &mut id, "b-0", 500, |i| i % 10 == 0);
        traffic(&mut plugin, &host, &mut id, "b-1", 1, |_| true);
        tick_and_collect(&mut plugin, &host, &mut totals);
    }
    for _ in 0..8 {
        tick_and_collect(&mut plugin, &host, &mut totals);
    }
    ["b-0", "b-1"].map(|pod| {
        let t = totals.iter().find(|t| t.pod == pod).unwrap();
        assert_eq!(t.latency_sum_us, t.latency_count * 1000);
        (t.requests, t.errors, t.latency_count)
    })
}

#[test]
fn heavy_traffic_is_sampled_per_pod_and_light_traffic_observed_in_full() {
    // 400 per second over 50 ms ticks: 20 observed per pod and tick.
    let [b0, b1] = heavy_and_light(r#","response_samples_per_s":400"#);
    eprintln!("b-0 (requests, errors, timed): {b0:?}");
    assert_eq!(b0.0, 100_000, "every request counted");
    // About 4,000 observed responses: the estimate's standard error is
    // about 5 %.
    let err = b0.1 as f64 / 10_000.0 - 1.0;
    assert!(err.abs() < 0.15, "errors {} of 10,000", b0.1);
    assert!((3_000..6_000).contains(&b0.2), "timed {}", b0.2);
    // The light pod is observed in full: exact.
    assert_eq!(b1, (200, 200, 200));
}

#[test]
fn exact_errors_reads_every_status_and_still_samples_latency() {
    let [b0, b1] = heavy_and_light(r#","response_samples_per_s":400,"exact_errors":true"#);
    assert_eq!((b0.0, b0.1), (100_000, 10_000));
    assert!((3_000..6_000).contains(&b0.2), "timed {}", b0.2);
    assert_eq!(b1, (200, 200, 200));
}

#[test]
fn unstamped_requests_are_neither_counted_nor_sampled() {
    let (p, host, mut vm) = crate::vm::fixtures::setup("");
    crate::vm::fixtures::poll_and_answer(
        &mut vm,
        &host,
        &crate::vm::fixtures::ok(&table(1, [6, 3, 1], DAY)),
    );
    let e = vm.on_request(p.now.get(), Some("nope"), None);
    assert!(e.stamped.is_none() && e.sample == 0);
    let e = vm.on_request(p.now.get(), Some("backend"), None);
    assert!(e.stamped.is_some() && e.sample == 1, "light: observed");
}
