//! Admission through the plugin's callbacks: an admitting proxy sheds a
//! service's `admit` share with the 503 local reply, and never anything
//! else; a refused reply lets the request through.

use super::fixtures::{install, send, setup};
use super::*;
use crate::mock::{LocalResponse, MockHost};
use crate::vm::fixtures::{BACKEND, DAY, table, with_admit};
use mplb_wire::testing::TableBuilder;

/// The value of `name` among `headers`.
fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `n` requests to `authority` (with `extra` headers): (shed, per-pod
/// stamps of the admitted ones).
fn run(
    plugin: &mut Plugin,
    host: &MockHost,
    authority: &str,
    extra: &[(&str, &str)],
    n: usize,
) -> (usize, std::collections::BTreeMap<String, usize>) {
    let mut headers = vec![(":authority", authority)];
    headers.extend_from_slice(extra);
    let mut shed = 0;
    let mut stamps = std::collections::BTreeMap::new();
    for _ in 0..n {
        let (next, out) = send(plugin, host, &headers);
        let replies = host.take_local();
        match next {
            Next::Pause => {
                shed += 1;
                assert_eq!(replies.len(), 1, "one reply per shed request");
                // The request itself was left as it came.
                assert_eq!(get(&out, "x-lb-endpt"), extra.first().map(|(_, v)| *v));
            }
            Next::Continue => {
                assert!(replies.is_empty(), "{replies:?}");
                let pod = get(&out, "x-lb-endpt").unwrap_or("(none)").to_string();
                *stamps.entry(pod).or_insert(0) += 1;
            }
        }
    }
    (shed, stamps)
}

#[test]
fn an_admitting_gateway_sheds_the_admit_share_with_a_503() {
    let (_p, host, mut plugin) = setup(r#","admission":true"#);
    install(
        &mut plugin,
        &host,
        &with_admit(&table(1, [1, 1, 0], DAY), BACKEND, 0.7),
    );
    // The reply: 503, the shed headers, a short body (0.7: one or two
    // sheds in four requests).
    let sent = (0..4).map(|_| send(&mut plugin, &host, &[(":authority", "backend")]).0);
    let paused = sent.filter(|n| *n == Next::Pause).count();
    assert!((1..=2).contains(&paused), "{paused}");
    let replies = host.take_local();
    assert_eq!(
        replies,
        vec![
            LocalResponse {
                status: 503,
                details: "mplb_admission_shed".into(),
                headers: vec![
                    ("x-lb-shed".into(), "admission".into()),
                    ("retry-after".into(), "1".into())
                ],
                body: crate::admission::SHED_BODY.to_vec(),
            };
            paused
        ]
    );
    assert!(crate::admission::SHED_BODY.len() < 200);

    // 1,000 requests: 700 let in (to within one), split evenly over the
    // two pods with weight (a shed request takes no slot of the schedule).
    let (shed, stamps) = run(&mut plugin, &host, "backend:80", &[], 1000);
    assert!(shed.abs_diff(300) <= 1, "{shed} shed of 1000");
    assert_eq!(stamps.values().sum::<usize>(), 1000 - shed);
    for pod in ["b-0", "b-1"] {
        let got = stamps.get(pod).copied().unwrap_or(0);
        assert!(got.abs_diff(350) <= 2, "{stamps:?}");
    }
    // A pinned request is a request to the service too: shed alike (a
    // client's header does not get it past admission).
    let (shed, stamps) = run(&mut plugin, &host, "backend", &[("x-lb-endpt", "b-0")], 100);
    assert!(shed.abs_diff(30) <= 1, "{shed} shed of 100 pinned");
    assert_eq!(stamps.keys().collect::<Vec<_>>(), ["b-0"]);
    // No log line per request.
    assert!(
        !host.logs.borrow().iter().any(|(_, l)| l.contains("shed")),
        "{:?}",
        host.logs.borrow()
    );
}

#[test]
fn only_an_admitting_proxy_sheds_and_only_a_routed_service_with_admit() {
    // Sidecars (admission false) never shed, whatever the table says.
    let (_p, host, mut plugin) = setup("");
    install(
        &mut plugin,
        &host,
        &with_admit(&table(1, [1, 1, 0], DAY), BACKEND, 0.5),
    );
    assert_eq!(run(&mut plugin, &host, "backend", &[], 200).0, 0);

    let (p, host, mut plugin) = setup(r#","admission":true,"table_ttl_ms":2000"#);
    // No table yet: never shed.
    assert_eq!(run(&mut plugin, &host, "backend", &[], 50).0, 0);
    // The own service (here in the table, with admit), a service without
    // admit, an unknown destination, no `:authority`: never shed.
    let body = TableBuilder::new(1)
        .ttl_ms(DAY)
        .service(BACKEND, &["backend"])
        .pod("b-0", "10.0.0.1:80", 1.0)
        .service("frontend.default.svc.cluster.local", &["fe"])
        .pod("f-0", "10.0.2.1:80", 1.0)
        .service("other.default.svc.cluster.local", &["other"])
        .pod("o-0", "10.0.1.1:80", 1.0)
        .json();
    let body = with_admit(&body, BACKEND, 0.5);
    let body = with_admit(&body, "frontend.default.svc.cluster.local", 0.5);
    install(&mut plugin, &host, &body);
    for authority in ["frontend:8080", "fe", "other", "nope:80"] {
        let (shed, _) = run(&mut plugin, &host, authority, &[], 50);
        assert_eq!(shed, 0, "{authority}");
    }
    host.set_map(Map::Request, &[]);
    assert_eq!(plugin.on_request_headers(&host), Next::Continue);
    assert!(host.take_local().is_empty());
    // The service with admit is shed (the check above is not vacuous).
    assert_eq!(run(&mut plugin, &host, "backend", &[], 50).0, 25);

    // An expired table (the server stopped answering): never shed.
    host.fail_calls.set(true);
    while p.now.get() < 1_000_000 + 4_000 {
        super::fixtures::tick(&mut plugin, &host, (None, b""));
    }
    assert_eq!(run(&mut plugin, &host, "backend", &[], 50).0, 0);
}

#[test]
fn a_refused_reply_lets_the_request_through_stamped() {
    let (_p, host, mut plugin) = setup(r#","admission":true"#);
    install(
        &mut plugin,
        &host,
        &with_admit(&table(1, [1, 0, 0], DAY), BACKEND, 0.5),
    );
    host.fail_local.set(true);
    let (shed, stamps) = run(&mut plugin, &host, "backend", &[("x-lb-endpt", "o-0")], 100);
    assert_eq!(shed, 0, "never shed because of an error");
    assert_eq!(stamps.get("b-0"), Some(&100), "{stamps:?}");
    // Logged, rate-limited: one line, not one per request.
    let lines = host
        .logs
        .borrow()
        .iter()
        .filter(|(_, l)| l.contains("refused the admission reply"))
        .count();
    assert_eq!(lines, 1);
    // The host takes replies again: shedding resumes.
    host.fail_local.set(false);
    assert!(run(&mut plugin, &host, "backend", &[], 100).0.abs_diff(50) <= 1);
}
