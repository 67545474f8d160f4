use super::fixtures::*;
use super::*;
use crate::host::Level;
use crate::mock::{MockHost, MockProxy};
use mplb_wire::testing::TableBuilder;

#[test]
fn polls_with_etag_and_installs_a_200() {
    let (_p, host, mut vm) = setup("");
    host.proxy.advance(200);
    vm.on_tick(&host);
    let calls = host.take_calls();
    assert_eq!(calls.len(), 1, "one call: the GET");
    let get = &calls[0];
    assert_eq!(get.cluster, "outbound|8080||ws.mplb.svc.cluster.local");
    assert_eq!(get.header(":path"), Some("/v1/weights"));
    assert_eq!(
        get.header(":authority"),
        Some("ws.mplb.svc.cluster.local:8080")
    );
    assert_eq!(get.header("if-none-match"), None);
    assert_eq!(get.timeout_ms, 100);
    vm.on_call_response(&host, get.token, &ok(&table(4, [6, 3, 1], DAY)));
    assert_eq!(vm.store().version(), 4);
    host.proxy.advance(200);
    vm.on_tick(&host);
    let calls = host.take_calls();
    assert_eq!(calls[0].header("if-none-match"), Some("\"4\""));
}

#[test]
fn a_304_refreshes_and_failures_keep_the_table_until_the_ttl() {
    let (p, host, mut vm) = setup(r#","table_ttl_ms":1000"#);
    poll_and_answer(&mut vm, &host, &ok(&table(1, [1, 1, 1], DAY)));
    for _ in 0..10 {
        poll_and_answer(
            &mut vm,
            &host,
            &CallResponse {
                status: Some(304),
                body: vec![],
            },
        );
    }
    // 2 s later the table is still fresh thanks to the 304s.
    assert!(vm.store().current(p.now.get() + 999).is_some());
    let fresh_until = p.now.get() + 1000;
    // Then errors, timeouts and 5xx: nothing refreshes.
    for resp in [
        CallResponse {
            status: None,
            body: vec![],
        },
        CallResponse {
            status: Some(503),
            body: br#"{"error":"no table"}"#.to_vec(),
        },
        CallResponse {
            status: Some(404),
            body: vec![],
        },
    ] {
        poll_and_answer(&mut vm, &host, &resp);
        assert_eq!(vm.store().version(), 1);
    }
    assert!(host.logged("timeout or connection error"));
    assert!(vm.store().current(fresh_until - 1).is_some());
    assert!(vm.store().current(fresh_until).is_none());
    // Expired: stamp nothing, strip a stale header.
    let e = vm.on_request(fresh_until, Some("backend"), Some("b-1"));
    assert_eq!(
        e,
        Edits {
            remove: Some("x-lb-endpt"),
            set: None,
            stamped: None,
            shed: false,
        }
    );
    let e = vm.on_request(fresh_until, Some("backend"), None);
    assert_eq!(e, Edits::default());
}

#[test]
fn poll_errors_are_logged_rate_limited() {
    let (_p, host, mut vm) = setup("");
    for _ in 0..20 {
        poll_and_answer(
            &mut vm,
            &host,
            &CallResponse {
                status: None,
                body: vec![],
            },
        );
    }
    let warn = host
        .logs
        .borrow()
        .iter()
        .filter(|(l, _)| *l == Level::Warn)
        .count();
    assert_eq!(
        warn,
        1,
        "20 failures in 4 s log once: {:?}",
        host.logs.borrow()
    );
    host.fail_calls.set(true);
    host.proxy.advance(crate::host::LogLimiter::EVERY_MS);
    vm.on_tick(&host);
    assert!(host.logged("cannot call cluster"));
}

#[test]
fn only_the_lease_holder_polls_and_the_others_follow_the_shared_table() {
    let proxy = MockProxy::new(1_000_000);
    let hosts: Vec<MockHost> = (0..3).map(|_| proxy.vm()).collect();
    let mut vms: Vec<VmFilter> = (0..3)
        .map(|i| VmFilter::new(cfg(""), Some("frontend".into()), i))
        .collect();
    for (vm, h) in vms.iter_mut().zip(&hosts) {
        vm.on_configure(h);
    }
    let mut polls = 0;
    for round in 0..40u64 {
        // Every VM ticks every 50 ms (tick_ms of a 200 ms interval).
        proxy.advance(50);
        for (vm, h) in vms.iter_mut().zip(&hosts) {
            vm.on_tick(h);
            for call in h.take_calls() {
                if call.header(":method") == Some("GET") {
                    polls += 1;
                    let version = 1 + round / 8;
                    vm.on_call_response(h, call.token, &ok(&table(version, [6, 3, 1], DAY)));
                }
            }
        }
    }
    // 40 ticks of 50 ms = 2000 ms = 10 periods.
    assert!((9..=10).contains(&polls), "{polls} polls in 10 periods");
    proxy.advance(50);
    for (vm, h) in vms.iter_mut().zip(&hosts) {
        vm.on_tick(h);
        assert_eq!(vm.store().version(), 5);
    }
}

#[test]
fn subset_mode_edits() {
    let (p, host, mut vm) = setup("");
    poll_and_answer(&mut vm, &host, &ok(&table(1, [6, 3, 1], DAY)));
    let now = p.now.get();
    // Pin honoured: nothing to set, counted as b-2.
    let e = vm.on_request(now, Some("backend"), Some("b-2"));
    assert_eq!((e.remove, e.set), (None, None));
    assert_eq!(e.stamped.map(|s| s.pod), Some(2));
    // Stale header for another service: replaced.
    let e = vm.on_request(now, Some("backend"), Some("o-0"));
    assert!(matches!(e.set, Some(("x-lb-endpt", pod)) if pod.starts_with("b-")));
    // Own service (inbound): untouched.
    assert_eq!(
        vm.on_request(now, Some("frontend:8080"), Some("o-0")),
        Edits::default()
    );
    // Unknown destination: strip.
    assert!(
        vm.on_request(now, Some("nope"), Some("b-0"))
            .remove
            .is_some()
    );
    let c = split(&mut vm, now, 30_000);
    for (got, want) in c.iter().zip([0.6, 0.3, 0.1]) {
        assert!((*got as f64 / 30_000.0 - want).abs() < 0.01, "{c:?}");
    }
}

#[test]
fn session_mode_sets_base64_of_ip_port() {
    let (p, host, mut vm) = setup(r#","mode":"session""#);
    poll_and_answer(&mut vm, &host, &ok(&table(1, [0, 0, 1], DAY)));
    let now = p.now.get();
    let e = vm.on_request(now, Some("backend"), None);
    // base64("[fd00::3]:80")
    assert_eq!(e.set, Some(("x-lb-session", "W2ZkMDA6OjNdOjgw")));
    assert!(e.remove.is_none());
    // A pin picks the pinned pod's address and keeps the pin header.
    let e = vm.on_request(now, Some("backend"), Some("b-0"));
    assert_eq!(e.set, Some(("x-lb-session", "MTAuMC4wLjE6ODA=")));
    assert!(e.remove.is_none());
    // A stale endpoint header is removed.
    let e = vm.on_request(now, Some("backend"), Some("o-0"));
    assert_eq!(e.set, Some(("x-lb-session", "W2ZkMDA6OjNdOjgw")));
    assert!(e.remove.is_some());
}

#[test]
fn a_poll_is_one_get_whatever_was_stamped() {
    let (p, host, mut vm) = setup("");
    poll_and_answer(&mut vm, &host, &ok(&table(1, [6, 3, 1], DAY)));
    let now = p.now.get();
    for _ in 0..50 {
        assert!(vm.on_request(now, Some("backend"), None).stamped.is_some());
    }
    p.advance(200);
    vm.on_tick(&host);
    let calls = host.take_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].header(":method"), Some("GET"));
    assert!(calls[0].body.is_none());
}

#[test]
fn the_tick_clock_drives_expiry_to_within_one_tick() {
    let (p, host, mut vm) = setup(r#","table_ttl_ms":1000"#);
    poll_and_answer(&mut vm, &host, &ok(&table(1, [6, 3, 1], DAY)));
    let fresh_at = p.now.get();
    assert_eq!(vm.clock_ms(), fresh_at);
    // The host clock moves past the TTL; the VM's clock only on its tick.
    host.fail_calls.set(true); // the weight server is gone: polls fail
    p.advance(1000);
    assert!(
        vm.on_request(vm.clock_ms(), Some("backend"), None)
            .stamped
            .is_some(),
        "stamped until the next tick"
    );
    vm.on_tick(&host);
    assert_eq!(vm.clock_ms(), fresh_at + 1000);
    let e = vm.on_request(vm.clock_ms(), Some("backend"), Some("o-0"));
    assert!(
        e.stamped.is_none() && e.remove.is_some(),
        "expired at the tick"
    );
}

#[test]
fn a_repeated_destination_is_resolved_again_under_a_new_table() {
    let (_p, host, mut vm) = setup("");
    poll_and_answer(&mut vm, &host, &ok(&table(1, [1, 0, 0], DAY)));
    let now = vm.clock_ms();
    let e = vm.on_request(now, Some("backend"), None);
    assert_eq!(e.set, Some(("x-lb-endpt", "b-0")));
    // v2 puts a service before backend (its index moves) and drops `other`.
    let v2 = TableBuilder::new(2)
        .ttl_ms(DAY)
        .service("aaa.default.svc.cluster.local", &["aaa"])
        .pod("a-0", "10.0.9.1:80", 1.0)
        .service(BACKEND, &["backend"])
        .pod("b-9", "10.0.0.9:80", 1.0)
        .json();
    poll_and_answer(&mut vm, &host, &ok(&v2));
    let now = vm.clock_ms();
    for _ in 0..2 {
        let e = vm.on_request(now, Some("backend"), None);
        assert_eq!(
            e.set,
            Some(("x-lb-endpt", "b-9")),
            "same authority, new table"
        );
        let e = vm.on_request(now, Some("other"), Some("o-0"));
        assert!(e.stamped.is_none() && e.remove.is_some(), "gone from v2");
        let e = vm.on_request(now, Some("aaa:80"), None);
        assert_eq!(e.set, Some(("x-lb-endpt", "a-0")));
    }
    // An authority that differs only in case or port resolves alike.
    let e = vm.on_request(now, Some("Backend:8080"), None);
    assert_eq!(e.set, Some(("x-lb-endpt", "b-9")));
}

#[test]
fn picks_follow_the_weights_in_every_short_run_and_restart_with_a_new_table() {
    let (p, host, mut vm) = setup("");
    poll_and_answer(&mut vm, &host, &ok(&table(1, [6, 3, 1], DAY)));
    let now = p.now.get();
    // Smooth weighted round robin: every run of 20 picks holds 12/6/2 to
    // within 2 (independent draws stray far more over 100 runs).
    for _ in 0..100 {
        let got = split(&mut vm, now, 20);
        for (g, want) in got.iter().zip([12, 6, 2]) {
            assert!(g.abs_diff(want) <= 2, "{got:?}");
        }
    }
    // A new version: its own schedule, at once.
    poll_and_answer(&mut vm, &host, &ok(&table(2, [0, 1, 1], DAY)));
    let got = split(&mut vm, p.now.get(), 20);
    assert_eq!(got[0], 0, "{got:?}");
    assert!(got[1].abs_diff(10) <= 1, "{got:?}");
}
