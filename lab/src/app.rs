//! The lab's test application ("pods"): an HTTP service that burns a fixed
//! amount of CPU per request, optionally calls the next tier through its
//! sidecar (forwarding trace headers, never `x-lb-endpt`), and optionally runs
//! a background CPU hog (the batch tenant). Counts what it served.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

/// Headers an application forwards to the next tier (trace context).
/// `x-lb-endpt` is deliberately absent: the sidecar stamps it per hop.
pub const FORWARDED_HEADERS: &[&str] = &[
    "x-request-id",
    "traceparent",
    "tracestate",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "b3",
];

/// Path of the counters endpoint.
pub const STATS_PATH: &str = "/_lab/stats";

/// What one app process does.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// This pod's name (returned in bodies and stats).
    pub pod: String,
    /// CPU time burnt per request.
    pub cost: Duration,
    /// The next tier: URL of the local sidecar listener and the authority to
    /// call it with (e.g. `profile.default.svc.cluster.local:8081`).
    pub next: Option<(String, String)>,
    /// Background CPU demand in millicores (0 = none).
    pub hog_millicores: u64,
    /// Answer ORCA load reports from this node's CPU (the `cswrr` baseline).
    pub orca: Option<crate::orca::NodeCpu>,
}

/// Counters served at [`STATS_PATH`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AppStats {
    /// The pod these counters belong to (its [`AppConfig::pod`]).
    pub pod: String,
    /// Requests answered 200 (after the next tier answered, if any).
    pub served: u64,
    /// Requests that failed: the CPU burn's worker or the call to the next tier.
    pub errors: u64,
    /// Requests that arrived carrying `x-lb-endpt` naming this pod.
    pub stamped_for_me: u64,
    /// Requests that arrived carrying `x-lb-endpt` naming another pod.
    pub stamped_other: u64,
}

struct Shared {
    cfg: AppConfig,
    client: reqwest::Client,
    served: Arc<AtomicU64>,
    orca: Option<Arc<crate::orca::Reporter>>,
    errors: AtomicU64,
    stamped_for_me: AtomicU64,
    stamped_other: AtomicU64,
}

/// CPU time of the calling thread.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; the clock id is valid.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Burn `cost` of this thread's CPU time (not wall time: under contention
/// the request takes longer, as a real CPU-bound handler would).
pub fn burn(cost: Duration) -> u64 {
    let start = thread_cpu_time();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while thread_cpu_time().saturating_sub(start) < cost {
        for _ in 0..200 {
            x = x.rotate_left(7).wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5851_f42d;
        }
    }
    x
}

/// Run a duty-cycled hog wanting `millicores` of CPU, forever, on its own thread.
pub fn spawn_hog(millicores: u64) {
    if millicores == 0 {
        return;
    }
    let cores = millicores.div_ceil(1000);
    for _ in 0..cores {
        let per_thread = millicores / cores;
        std::thread::spawn(move || {
            let window = Duration::from_millis(20);
            let want = window * per_thread as u32 / 1000;
            loop {
                let start = Instant::now();
                let cpu0 = thread_cpu_time();
                // Spin until the window's CPU budget is used or the window ends.
                while thread_cpu_time().saturating_sub(cpu0) < want && start.elapsed() < window {
                    std::hint::black_box(burn(Duration::from_micros(200)));
                }
                if let Some(rest) = window.checked_sub(start.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
        });
    }
}

/// The app's router.
pub fn router(cfg: AppConfig) -> Router {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap_or_default();
    let served = Arc::new(AtomicU64::new(0));
    let orca = cfg.orca.clone().map(|src| {
        let r = crate::orca::Reporter::new(src);
        r.spawn(served.clone());
        r
    });
    let shared = Arc::new(Shared {
        cfg,
        client,
        served,
        orca,
        errors: AtomicU64::new(0),
        stamped_for_me: AtomicU64::new(0),
        stamped_other: AtomicU64::new(0),
    });
    Router::new()
        .route(STATS_PATH, get(stats))
        .fallback(handle)
        .with_state(shared)
}

/// Serve the app on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, cfg: AppConfig) -> std::io::Result<()> {
    spawn_hog(cfg.hog_millicores);
    axum::serve(listener, router(cfg)).await
}

async fn stats(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    axum::Json(AppStats {
        pod: s.cfg.pod.clone(),
        served: s.served.load(Ordering::Relaxed),
        errors: s.errors.load(Ordering::Relaxed),
        stamped_for_me: s.stamped_for_me.load(Ordering::Relaxed),
        stamped_other: s.stamped_other.load(Ordering::Relaxed),
    })
}

fn json_error(status: StatusCode, reason: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error": reason }))).into_response()
}

async fn handle(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(v) = headers.get("x-lb-endpt") {
        if v.as_bytes() == s.cfg.pod.as_bytes() {
            s.stamped_for_me.fetch_add(1, Ordering::Relaxed);
        } else {
            s.stamped_other.fetch_add(1, Ordering::Relaxed);
        }
    }
    let cost = s.cfg.cost;
    if !cost.is_zero()
        && let Err(e) = tokio::task::spawn_blocking(move || std::hint::black_box(burn(cost))).await
    {
        s.errors.fetch_add(1, Ordering::Relaxed);
        return json_error(StatusCode::INTERNAL_SERVER_ERROR, format!("worker: {e}"));
    }
    let mut body = s.cfg.pod.clone();
    if let Some((url, authority)) = &s.cfg.next {
        match call_next(&s.client, url, authority, &headers).await {
            Ok(next_body) => {
                body.push_str(" > ");
                body.push_str(next_body.trim());
            }
            Err(reason) => {
                s.errors.fetch_add(1, Ordering::Relaxed);
                return json_error(StatusCode::BAD_GATEWAY, reason);
            }
        }
    }
    s.served.fetch_add(1, Ordering::Relaxed);
    let mut resp = Response::new(Body::from(body + "\n"));
    if let Ok(v) = HeaderValue::from_str(&s.cfg.pod) {
        resp.headers_mut()
            .insert(HeaderName::from_static("x-lab-pod"), v);
    }
    if let Some(h) = s.orca.as_ref().and_then(|r| r.header())
        && let Ok(v) = HeaderValue::from_str(&h)
    {
        resp.headers_mut()
            .insert(HeaderName::from_static(crate::orca::HEADER), v);
    }
    resp
}

/// The headers the app passes on to the next tier.
pub fn forwarded(headers: &HeaderMap) -> Vec<(&'static str, HeaderValue)> {
    FORWARDED_HEADERS
        .iter()
        .filter_map(|name| headers.get(*name).map(|v| (*name, v.clone())))
        .collect()
}

async fn call_next(
    client: &reqwest::Client,
    url: &str,
    authority: &str,
    headers: &HeaderMap,
) -> Result<String, String> {
    let mut req = client.get(url).header("host", authority);
    for (name, value) in forwarded(headers) {
        req = req.header(name, value);
    }
    let resp = req.send().await.map_err(|e| format!("next tier: {e}"))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| format!("next tier body: {e}"))?;
    if !status.is_success() {
        return Err(format!("next tier answered {status}: {}", text.trim()));
    }
    Ok(text)
}

/// Parse an address for the app to listen on.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|e| format!("bad listen address {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burn_uses_at_least_the_asked_cpu() {
        let before = thread_cpu_time();
        burn(Duration::from_millis(5));
        assert!(thread_cpu_time() - before >= Duration::from_millis(5));
    }

    #[test]
    fn forwarded_keeps_trace_headers_and_drops_the_endpoint_header() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("abc"));
        h.insert("traceparent", HeaderValue::from_static("00-1-2-01"));
        h.insert("x-lb-endpt", HeaderValue::from_static("frontend-0"));
        h.insert("user-agent", HeaderValue::from_static("hey"));
        let names: Vec<_> = forwarded(&h).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["x-request-id", "traceparent"]);
    }
}
