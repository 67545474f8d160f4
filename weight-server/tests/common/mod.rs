//! Shared helpers of the route tests: an app over the example topology with
//! a manual clock, and a one-shot caller.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use weight_server::admin::AdminAuth;
use weight_server::api::{AppState, app};
use weight_server::clock::ManualClock;
use weight_server::engine::{Engine, EngineConfig};
use weight_server::persist::Store;
use weight_server::policy::PolicyKind;
use weight_server::topology::{self, TopologyTx, file};

pub const TOKEN: &str = "s3cret-token";
pub const T0: u64 = 1_763_800_000_000;
pub const EXAMPLE: &str = include_str!("../../../examples/topology.yaml");
pub const PROFILE: &str = "profile.default.svc.cluster.local";

pub struct Harness {
    pub engine: Arc<Engine>,
    pub clock: Arc<ManualClock>,
    pub app: Router,
    pub tx: TopologyTx,
    pub dir: tempfile::TempDir,
}

pub fn harness_with(auth: AdminAuth, policy: PolicyKind, publish: bool) -> Harness {
    let clock = Arc::new(ManualClock::new(T0));
    let (tx, rx) = tokio::sync::watch::channel(None);
    if publish {
        topology::publish(&tx, file::parse(EXAMPLE, "cluster.local").unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::in_dir(dir.path()).unwrap();
    let engine =
        Arc::new(Engine::new(EngineConfig::default(), clock.clone(), store, rx, policy).unwrap());
    let app = app(AppState {
        replica: None,
        engine: engine.clone(),
        auth: Arc::new(auth),
        reports_auth: Arc::new(weight_server::auth::ReportAuth::Insecure),
    });
    Harness {
        engine,
        clock,
        app,
        tx,
        dir,
    }
}

pub fn harness() -> Harness {
    harness_with(
        AdminAuth::from_token(TOKEN).unwrap(),
        PolicyKind::Spare,
        true,
    )
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// A `GET /admin/state` answer, parsed and validated.
    pub fn state(&self) -> mplb_wire::admin::StateBody {
        mplb_wire::admin::StateBody::parse(&self.body).unwrap_or_else(|e| {
            panic!("bad state ({e}): {:?}", String::from_utf8_lossy(&self.body))
        })
    }

    /// A `GET /admin/explain/{service}` answer, parsed and validated.
    pub fn explain(&self) -> mplb_wire::admin::ExplainBody {
        mplb_wire::admin::ExplainBody::parse(&self.body).unwrap_or_else(|e| {
            panic!(
                "bad explain ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The admin state an admin mutation answers with.
    pub fn admin(&self) -> mplb_wire::admin::AdminState {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "bad admin state ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

pub async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

pub fn auth() -> (&'static str, &'static str) {
    ("authorization", "Bearer s3cret-token")
}

pub fn report(node: &str, used: f64, pods: &[(&str, f64)]) -> String {
    let pods: Vec<_> = pods
        .iter()
        .map(|(uid, m)| serde_json::json!({"uid": uid, "millicores": m, "sampled_at_ms": T0}))
        .collect();
    serde_json::json!({
        "node": node, "capacity_millicores": 2000.0, "used_millicores": used,
        "sampled_at_ms": T0, "interval_ms": 1000, "pods": pods,
    })
    .to_string()
}

/// Weight of `pod` in the served table of `service`.
pub fn weight(h: &Harness, service: &str, pod: &str) -> Option<f64> {
    let t = h.engine.table()?;
    t.table
        .services
        .get(service)?
        .endpoints
        .iter()
        .find(|e| e.pod == pod)
        .map(|e| e.weight)
}

/// Enough rounds for damping to converge into the dead band.
pub fn settle(h: &Harness) {
    for _ in 0..20 {
        h.engine.recompute().unwrap();
    }
}
