//! Table-driven hostile requests: every endpoint answers bad input with a
//! 4xx and a JSON `{"error": "..."}` saying what was wrong, and changes no
//! state (admin state, reports, table).

mod common;

use common::*;
use http::Method;

struct Case {
    what: &'static str,
    method: Method,
    uri: &'static str,
    auth: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    says: &'static str,
}

const GOOD_TOKEN: Option<&str> = Some("Bearer s3cret-token");

fn case(
    what: &'static str,
    method: Method,
    uri: &'static str,
    auth: Option<&'static str>,
    body: impl Into<Vec<u8>>,
    status: u16,
    says: &'static str,
) -> Case {
    Case {
        what,
        method,
        uri,
        auth,
        body: body.into(),
        status,
        says,
    }
}

fn good_report() -> String {
    report("node-a", 500.0, &[("profile-0", 100.0)])
}

fn cases() -> Vec<Case> {
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
    let big_admin = format!(r#"{{"policy":"even","x":"{}"}}"#, "a".repeat(70 * 1024));
    let t = GOOD_TOKEN;
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
            "policy: no token",
            M::PUT,
            "/admin/policy",
            None,
            r#"{"policy":"even"}"#,
            401,
            "Bearer",
        ),
        case(
            "policy: bad token",
            M::PUT,
            "/admin/policy",
            Some("Bearer nope"),
            r#"{"policy":"even"}"#,
            401,
            "bad admin token",
        ),
        case(
            "policy: token prefix",
            M::PUT,
            "/admin/policy",
            Some("Bearer s3cret"),
            r#"{"policy":"even"}"#,
            401,
            "bad admin token",
        ),
        case(
            "policy: basic auth",
            M::PUT,
            "/admin/policy",
            Some("Basic czNjcmV0LXRva2Vu"),
            r#"{"policy":"even"}"#,
            401,
            "Bearer",
        ),
        case(
            "policy: unknown name",
            M::PUT,
            "/admin/policy",
            t,
            r#"{"policy":"fastest"}"#,
            400,
            "unknown variant",
        ),
        case(
            "policy: wrong type",
            M::PUT,
            "/admin/policy",
            t,
            r#"{"policy":3}"#,
            400,
            "malformed",
        ),
        case(
            "policy: extra field",
            M::PUT,
            "/admin/policy",
            t,
            r#"{"policy":"even","x":1}"#,
            400,
            "unknown field",
        ),
        case(
            "policy: too large",
            M::PUT,
            "/admin/policy",
            t,
            big_admin,
            413,
            "limit",
        ),
        case(
            "policy: truncated",
            M::PUT,
            "/admin/policy",
            t,
            r#"{"policy":"ev"#,
            400,
            "malformed",
        ),
        case(
            "weights: unknown service",
            M::PUT,
            "/admin/weights/nosuch",
            t,
            r#"{"a":1}"#,
            404,
            "unknown service",
        ),
        case(
            "weights: pod of another service",
            M::PUT,
            "/admin/weights/profile",
            t,
            r#"{"rate-0":1}"#,
            404,
            "not a pod of",
        ),
        case(
            "weights: unknown pod",
            M::PUT,
            "/admin/weights/profile",
            t,
            r#"{"profile-9":1}"#,
            404,
            "not a pod of",
        ),
        case(
            "weights: negative",
            M::PUT,
            "/admin/weights/profile",
            t,
            r#"{"profile-0":-1,"profile-1":2}"#,
            422,
            ">= 0",
        ),
        case(
            "weights: all zero",
            M::PUT,
            "/admin/weights/profile",
            t,
            r#"{"profile-0":0,"profile-1":0}"#,
            422,
            "sum",
        ),
        case(
            "weights: empty",
            M::PUT,
            "/admin/weights/profile",
            t,
            "{}",
            422,
            "no pod weights",
        ),
        case(
            "weights: string",
            M::PUT,
            "/admin/weights/profile",
            t,
            r#"{"profile-0":"3"}"#,
            400,
            "malformed",
        ),
        case(
            "weights: NaN",
            M::PUT,
            "/admin/weights/profile",
            t,
            r#"{"profile-0":NaN}"#,
            400,
            "malformed",
        ),
        case(
            "weights: infinite",
            M::PUT,
            "/admin/weights/profile",
            t,
            r#"{"profile-0":1e999}"#,
            400,
            "malformed",
        ),
        case(
            "weights: array",
            M::PUT,
            "/admin/weights/profile",
            t,
            "[3,1]",
            400,
            "malformed",
        ),
        case(
            "weights: no token",
            M::PUT,
            "/admin/weights/profile",
            None,
            r#"{"profile-0":1}"#,
            401,
            "Bearer",
        ),
        case(
            "weights: delete unset",
            M::DELETE,
            "/admin/weights/profile",
            t,
            "",
            404,
            "no operator weights",
        ),
        case(
            "drain: unknown pod",
            M::POST,
            "/admin/drain/nosuch",
            t,
            "",
            404,
            "unknown pod",
        ),
        case(
            "drain: no token",
            M::POST,
            "/admin/drain/profile-0",
            None,
            "",
            401,
            "Bearer",
        ),
        case(
            "undrain: not drained",
            M::DELETE,
            "/admin/drain/profile-0",
            t,
            "",
            404,
            "not drained",
        ),
        case(
            "explain: unknown service",
            M::GET,
            "/admin/explain/nosuch",
            None,
            "",
            404,
            "unknown service",
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

async fn snapshot(h: &Harness) -> (serde_json::Value, Option<u64>) {
    let st = call(&h.app, Method::GET, "/admin/state", &[], "").await;
    assert_eq!(st.status, 200);
    (st.json(), h.engine.table().map(|t| t.table.version))
}

#[tokio::test]
async fn hostile_requests_get_a_4xx_json_reason_and_change_nothing() {
    let h = harness();
    let a = call(&h.app, Method::POST, "/v1/reports", &[], good_report()).await;
    assert_eq!(a.status, 204);
    h.engine.recompute().unwrap();
    let saved = std::fs::read(h.dir.path().join("admin-state.json")).ok();
    let before = snapshot(&h).await;
    let cases = cases();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    for c in cases {
        let mut headers = vec![];
        if let Some(a) = c.auth {
            headers.push(("authorization", a));
        }
        let a = call(&h.app, c.method.clone(), c.uri, &headers, c.body).await;
        assert_eq!(
            a.status.as_u16(),
            c.status,
            "{}: {}",
            c.what,
            String::from_utf8_lossy(&a.body)
        );
        let err = a.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(
            err.contains(c.says),
            "{}: error {err:?} does not say {:?}",
            c.what,
            c.says
        );
        h.engine.recompute().unwrap();
        assert_eq!(snapshot(&h).await, before, "{} changed state", c.what);
        assert_eq!(
            std::fs::read(h.dir.path().join("admin-state.json")).ok(),
            saved,
            "{}",
            c.what
        );
    }
}
