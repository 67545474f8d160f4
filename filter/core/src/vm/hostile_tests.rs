//! Hostile weights tables: each is rejected whole, logged, and the last good
//! table stays in force (locally and in shared data).

use super::fixtures::{BACKEND, DAY, ok, poll_and_answer, setup, split, table};
use crate::host::CallResponse;
use crate::table_store::{META_KEY, TABLE_KEY};
use mplb_wire::testing::TableBuilder;

#[test]
fn hostile_tables_are_rejected_and_the_last_good_table_kept() {
    let (p, host, mut vm) = setup(&format!(r#","table_ttl_ms":{DAY}"#));
    poll_and_answer(&mut vm, &host, &ok(&table(1, [6, 3, 1], DAY)));
    let good = table(2, [1, 1, 1], DAY);
    // A table of one service whose endpoints are written out: some of them
    // cannot be built (a NaN or string weight, a missing field).
    let endpoints = |eps: &str| {
        TableBuilder::new(2)
            .ttl_ms(1000)
            .service(BACKEND, &[])
            .json()
            .replacen(r#""endpoints":[]"#, &format!(r#""endpoints":[{eps}]"#), 1)
    };
    let ep = |pod: &str, addr: &str, w: &str| {
        format!(r#"{{"pod":"{pod}","address":"{addr}","weight":{w}}}"#)
    };
    let many: Vec<String> = (0..10_001)
        .map(|i| ep(&format!("p{i}"), "10.0.0.1:80", "1"))
        .collect();
    let mut hostile: Vec<(&str, Vec<u8>)> = vec![
        (
            "NaN weight",
            endpoints(&ep("a", "10.0.0.1:80", "NaN")).into_bytes(),
        ),
        (
            "negative weight",
            endpoints(&ep("a", "10.0.0.1:80", "-1")).into_bytes(),
        ),
        (
            "infinite weight",
            endpoints(&ep("a", "10.0.0.1:80", "1e400")).into_bytes(),
        ),
        (
            "weights sum to 0",
            endpoints(&ep("a", "10.0.0.1:80", "0")).into_bytes(),
        ),
        (
            "weight as a string",
            endpoints(&ep("a", "10.0.0.1:80", "\"1\"")).into_bytes(),
        ),
        ("no endpoints", endpoints("").into_bytes()),
        (
            "duplicate pods",
            endpoints(&[ep("a", "10.0.0.1:80", "1"), ep("a", "10.0.0.2:80", "1")].join(","))
                .into_bytes(),
        ),
        (
            "bad address",
            endpoints(&ep("a", "not-an-address", "1")).into_bytes(),
        ),
        (
            "empty pod name",
            endpoints(&ep("", "10.0.0.1:80", "1")).into_bytes(),
        ),
        (
            "pod name with a space",
            endpoints(&ep("a b", "10.0.0.1:80", "1")).into_bytes(),
        ),
        (
            "pod name too long",
            endpoints(&ep(&"p".repeat(300), "10.0.0.1:80", "1")).into_bytes(),
        ),
        (
            "too many endpoints",
            endpoints(&many.join(",")).into_bytes(),
        ),
        ("empty body", Vec::new()),
        ("truncated JSON", good.as_bytes()[..good.len() / 2].to_vec()),
        (
            "non-UTF-8",
            [
                &good.as_bytes()[..40],
                &[0xff, 0xfe, 0xfd],
                &good.as_bytes()[40..],
            ]
            .concat(),
        ),
        (
            "deep nesting",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
        ),
        ("huge body", vec![b' '; mplb_wire::MAX_TABLE_BYTES + 1]),
        ("JSON null", b"null".to_vec()),
        ("top-level array", b"[]".to_vec()),
        (
            "version as a string",
            good.replacen("\"version\":2", "\"version\":\"2\"", 1)
                .into_bytes(),
        ),
        (
            "negative version",
            good.replacen("\"version\":2", "\"version\":-2", 1)
                .into_bytes(),
        ),
        (
            "missing version",
            good.replacen("\"version\":2,", "", 1).into_bytes(),
        ),
        (
            "ttl_ms 0",
            good.replacen(&format!("\"ttl_ms\":{DAY}"), "\"ttl_ms\":0", 1)
                .into_bytes(),
        ),
        (
            "services is an array",
            TableBuilder::new(2)
                .json()
                .replacen(r#""services":{}"#, r#""services":[]"#, 1)
                .into_bytes(),
        ),
        (
            "alias claimed by two services",
            good.replacen("[\"other\"]", "[\"backend\"]", 1)
                .into_bytes(),
        ),
        (
            "empty service name",
            good.replacen(BACKEND, "", 1).into_bytes(),
        ),
    ];
    hostile.push((
        "endpoint missing its weight",
        endpoints(r#"{"pod":"a","address":"10.0.0.1:80"}"#).into_bytes(),
    ));
    // Each case breaks the wire contract itself (not only the store), and
    // each is a different case.
    let mut kinds = std::collections::BTreeSet::new();
    for (kind, body) in &hostile {
        assert!(
            mplb_wire::WeightsTable::parse(body).is_err(),
            "{kind}: accepted by the wire contract"
        );
        assert!(kinds.insert(*kind), "{kind}: listed twice");
    }
    for (kind, body) in hostile {
        host.logs.borrow_mut().clear();
        p.advance(crate::host::LogLimiter::EVERY_MS);
        poll_and_answer(
            &mut vm,
            &host,
            &CallResponse {
                status: Some(200),
                body,
            },
        );
        assert_eq!(vm.store().version(), 1, "{kind}: table replaced");
        assert!(
            host.logged("keeping v1"),
            "{kind}: not logged: {:?}",
            host.logs.borrow()
        );
        assert_eq!(
            p.raw(META_KEY).unwrap().split(|&b| b == b' ').next(),
            Some(&b"1"[..]),
            "{kind}"
        );
        assert!(
            p.raw(TABLE_KEY).unwrap().starts_with(br#"{"version":1"#),
            "{kind}"
        );
        let c = split(&mut vm, p.now.get(), 1000);
        assert!(
            c[0] > 500 && c[2] < 200,
            "{kind}: old split not in force: {c:?}"
        );
    }
    // And a good table still goes through afterwards.
    poll_and_answer(&mut vm, &host, &ok(&good));
    assert_eq!(vm.store().version(), 2);
}
