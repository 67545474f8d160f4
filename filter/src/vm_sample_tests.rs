//! The VM's response sampling, end to end through its entry points: every
//! request counted, errors exact under light traffic and estimated under
//! heavy traffic, latency timed to a budget per destination pod.

use super::fixtures::*;
use super::*;
use crate::mock::MockHost;
use mplb_wire::{PodStats, ProxyStats};

/// `n` requests pinned to `pod`, finished as the glue finishes them: the
/// status is read (and the request timed) only when sampled. `error(i)`:
/// whether request `i` is answered 503.
fn traffic(vm: &mut VmFilter, pod: &str, n: usize, error: impl Fn(usize) -> bool) {
    let now = vm.clock_ms();
    for i in 0..n {
        let e = vm.on_request(now, Some("backend"), Some(pod));
        let (stamped, sample) = (e.stamped.expect("stamped"), e.sample);
        let weight = vm.status_weight(sample);
        let outcome = Outcome {
            weight,
            status: (weight > 0).then_some(if error(i) { 503 } else { 200 }),
            latency_us: (sample > 0).then_some(1000),
        };
        vm.on_done(stamped, outcome);
    }
}

/// Advance one tick; answer the VM's calls (304 to polls, 200 to stats
/// posts) and add the stats it posted to `totals`.
fn tick(vm: &mut VmFilter, host: &MockHost, totals: &mut Vec<PodStats>) {
    host.proxy.advance(vm.config().tick_ms());
    vm.on_tick(host);
    for call in host.take_calls() {
        let post = call.header(":method") == Some("POST");
        if post {
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
        let status = Some(if post { 200 } else { 304 });
        let resp = CallResponse {
            status,
            body: vec![],
        };
        vm.on_call_response(host, call.token, &resp);
    }
}

/// 200 ticks: `b-0` takes 500 requests per tick (every 10th a 503), `b-1`
/// one (all 503). The totals per pod: (requests, errors, timed).
fn heavy_and_light(extra: &str) -> [(u64, u64, u64); 2] {
    let (_p, host, mut vm) = setup(extra);
    poll_and_answer(&mut vm, &host, &ok(&table(1, [6, 3, 1], DAY)));
    let mut totals = Vec::new();
    for _ in 0..200 {
        traffic(&mut vm, "b-0", 500, |i| i % 10 == 0);
        traffic(&mut vm, "b-1", 1, |_| true);
        tick(&mut vm, &host, &mut totals);
    }
    for _ in 0..8 {
        tick(&mut vm, &host, &mut totals);
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
    let (p, host, mut vm) = setup("");
    poll_and_answer(&mut vm, &host, &ok(&table(1, [6, 3, 1], DAY)));
    let e = vm.on_request(p.now.get(), Some("nope"), None);
    assert!(e.stamped.is_none() && e.sample == 0);
    let e = vm.on_request(p.now.get(), Some("backend"), None);
    assert!(e.stamped.is_some() && e.sample == 1, "light: observed");
}
