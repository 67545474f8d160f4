//! Table-driven hostile requests: every endpoint answers bad input with a
//! 4xx and a JSON `{"error": "..."}` saying what was wrong, and changes no
//! state (admin state, reports, table).

mod common;
mod hostile_cases;

use common::*;
use hostile_cases::{cases, good_report};
use http::Method;

async fn snapshot(h: &Harness) -> (mplb_wire::admin::StateBody, Option<u64>) {
    let st = call(&h.app, Method::GET, "/admin/state", &[], "").await;
    assert_eq!(st.status, 200);
    (st.state(), h.engine.table().map(|t| t.table.version))
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
