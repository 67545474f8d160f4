//! End-to-end: the built filter in a real Envoy 1.40 (`--concurrency 2`: each
//! worker has its own Wasm VM; they share the poll lease), a scripted weight server, and upstream
//! replicas whose own counts are the evidence.
//!
//! Run: `cargo test -p mplb-filter --test envoy_e2e` (builds the wasm itself;
//! needs the wasm32-wasip1 target and Envoy from scripts/setup.sh).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use base64::Engine;
use support::Envoy;
use support::http::{Client, Replica};
use support::lab::{BACKEND, Lab, POLL_MS, TTL_MS, envoy_config_with, table, with_admit};

#[test]
fn subset_mode_follows_the_weights_and_fails_open() {
    let mut lab = Lab::start("subset");

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
    // A rejected table does not renew the kept one's age: serve a valid
    // one again and let it be polled (on a loaded machine the load above
    // can outlast the TTL, and an expired table fails open: no pins).
    lab.ws
        .serve(2, table(2, &lab.backend, &lab.other, [10, 30, 60]));
    std::thread::sleep(Duration::from_millis(2 * POLL_MS));

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

    // A pinned request's 5xx reaches the client as the pod gave it, and
    // the filter calls the weight server for the table only.
    lab.reset();
    lab.pinned_with_errors("r1", 400);
    assert_eq!(lab.backend[1].served(), 400);
    lab.assert_only_polls();

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
    let lab = Lab::start("session");
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

    lab.assert_only_polls();
    lab.assert_no_vm_failure();
}

#[test]
fn an_admitting_gateway_sheds_by_the_tables_admit_fraction() {
    let lab = Lab::start_with("subset", r#","admission":true"#);
    // Version 1 has no `admit`: nothing shed.
    lab.reset();
    let o = lab.load_counting_sheds("backend", 200);
    assert_eq!((o.served, o.shed), (200, 0));

    // Version 2 admits half of backend's requests. Wait for a shed, then
    // two poll periods, so that both workers run v2.
    let v2 = with_admit(
        &table(2, &lab.backend, &lab.other, [60, 30, 10]),
        BACKEND,
        0.5,
    );
    lab.ws.serve(2, v2);
    support::wait_for("a shed under v2", Duration::from_secs(10), || {
        lab.load_counting_sheds("backend", 4).shed > 0
    });
    std::thread::sleep(Duration::from_millis(2 * POLL_MS));

    // 200 requests: each worker VM lets in half of its requests to within
    // one (a credit per service, docs/ARCHITECTURE.md), so 100 ± 2 over the
    // two; the rest reach the backend, stamped, in the table's split.
    lab.reset();
    let o = lab.load_counting_sheds("backend", 200);
    eprintln!("admit 0.5: {} served, {} shed of 200", o.served, o.shed);
    assert_eq!(o.served + o.shed, 200);
    assert!(o.shed.abs_diff(100) <= 4, "{o:?}");
    let served: u64 = lab.backend.iter().map(Replica::served).sum();
    let stamped: u64 = lab.backend.iter().map(Replica::stamped).sum();
    assert_eq!((served, stamped), (o.served as u64, o.served as u64));
    lab.assert_split("admitted under admit 0.5", [0.6, 0.3, 0.1], 0.05);

    // A service without `admit`, and the own service: never shed.
    lab.reset();
    lab.load("other", &[], 100);
    assert_eq!(lab.other.served(), 100);
    lab.load("frontend:8080", &[], 100);
    lab.assert_only_polls();
    lab.assert_no_vm_failure();
}

#[test]
fn a_sidecar_never_sheds() {
    let lab = Lab::start("subset");
    // v2 admits half of backend's requests and moves all weight to r2, so
    // the test sees when v2 is in force.
    let v2 = with_admit(
        &table(2, &lab.backend, &lab.other, [0, 0, 100]),
        BACKEND,
        0.5,
    );
    lab.ws.serve(2, v2);
    support::wait_for("v2 in force", Duration::from_secs(10), || {
        lab.reset();
        lab.load("backend", &[], 8);
        lab.backend[2].served() == 8
    });
    std::thread::sleep(Duration::from_millis(2 * POLL_MS));
    lab.reset();
    let o = lab.load_counting_sheds("backend", 200);
    assert_eq!((o.served, o.shed), (200, 0), "admission is off: none shed");
    assert_eq!(lab.backend[2].stamped(), 200);
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
