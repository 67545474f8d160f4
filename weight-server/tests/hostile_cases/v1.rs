//! Hostile requests to the `/v1` routes: reports, stats, weights and unknown paths.

use http::Method;

use super::{Case, case, good_report};
use crate::common::*;

pub fn cases() -> Vec<Case> {
    use Method as M;
    let r = good_report();
    let huge_report = {
        let mut s = r.clone();
        s.pop();
        format!("{s}{}}}", " ".repeat(1024 * 1024))
    };
    let stats = |pods: &str| format!(r#"{{"proxy":"p","window_ms":1000,"pods":[{pods}]}}"#);
    let pod = |req: i64, err: i64| {
        format!(
            r#"{{"service":"{PROFILE}","pod":"profile-0","requests":{req},"errors":{err},"latency_sum_us":1,"latency_count":1}}"#
        )
    };
    vec![
        case(
            "report: malformed",
            M::POST,
            "/v1/reports",
            None,
            "{",
            400,
            "malformed",
        ),
        case(
            "report: truncated",
            M::POST,
            "/v1/reports",
            None,
            &r[..r.len() / 2],
            400,
            "malformed",
        ),
        case(
            "report: empty body",
            M::POST,
            "/v1/reports",
            None,
            "",
            400,
            "malformed",
        ),
        case(
            "report: not UTF-8",
            M::POST,
            "/v1/reports",
            None,
            vec![0xff, 0xfe, 0x00],
            400,
            "malformed",
        ),
        case(
            "report: wrong type",
            M::POST,
            "/v1/reports",
            None,
            r.replace("2000.0", "\"lots\""),
            400,
            "malformed",
        ),
        case(
            "report: NaN",
            M::POST,
            "/v1/reports",
            None,
            r.replace("500.0", "NaN"),
            400,
            "malformed",
        ),
        case(
            "report: infinite",
            M::POST,
            "/v1/reports",
            None,
            r.replace("500.0", "1e999"),
            400,
            "malformed",
        ),
        case(
            "report: negative used",
            M::POST,
            "/v1/reports",
            None,
            r.replace("500.0", "-5"),
            422,
            "negative",
        ),
        case(
            "report: zero capacity",
            M::POST,
            "/v1/reports",
            None,
            r.replace("2000.0", "0"),
            422,
            "capacity",
        ),
        case(
            "report: negative pod cpu",
            M::POST,
            "/v1/reports",
            None,
            r.replace("100.0", "-1"),
            422,
            "negative",
        ),
        case(
            "report: unknown field",
            M::POST,
            "/v1/reports",
            None,
            r.replacen('{', "{\"x\":1,", 1),
            400,
            "unknown field",
        ),
        case(
            "report: duplicate pod",
            M::POST,
            "/v1/reports",
            None,
            report("node-a", 1.0, &[("p", 1.0), ("p", 2.0)]),
            422,
            "repeats",
        ),
        case(
            "report: too large",
            M::POST,
            "/v1/reports",
            None,
            huge_report,
            413,
            "limit",
        ),
        case(
            "report: empty node",
            M::POST,
            "/v1/reports",
            None,
            r.replace("node-a", ""),
            422,
            "empty",
        ),
        case(
            "stats: malformed",
            M::POST,
            "/v1/stats",
            None,
            "[1,",
            400,
            "malformed",
        ),
        case(
            "stats: errors > requests",
            M::POST,
            "/v1/stats",
            None,
            stats(&pod(1, 2)),
            422,
            "exceed",
        ),
        case(
            "stats: negative requests",
            M::POST,
            "/v1/stats",
            None,
            stats(&pod(-1, 0)),
            400,
            "malformed",
        ),
        case(
            "stats: too large",
            M::POST,
            "/v1/stats",
            None,
            vec![b' '; 1024 * 1024 + 1],
            413,
            "limit",
        ),
        case(
            "unknown route",
            M::GET,
            "/v1/nothing",
            None,
            "",
            404,
            "no such route",
        ),
        case(
            "wrong method on weights",
            M::DELETE,
            "/v1/weights",
            None,
            "",
            405,
            "method not allowed",
        ),
        case(
            "wrong method on reports",
            M::GET,
            "/v1/reports",
            None,
            "",
            405,
            "method not allowed",
        ),
    ]
}
