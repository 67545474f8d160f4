//! Replicas of the weight server electing a leader on the real API server
//! (`--leader-elect`, a short lease so tests run in seconds), the Lease as
//! the API server holds it, host-agent tokens for reports, and pollers of
//! `/v1/weights` that record every answer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use mplb_kube_tests::{ControlPlane, kubectl, objects, repo_root};
use serde_json::json;

use crate::support::Server;

/// The test's election timing: lease 3 s, renew deadline 2 s, retry 500 ms
/// (production: client-go's 15 s / 10 s / 2 s).
pub const LEASE_MS: u64 = 3_000;
/// See [`LEASE_MS`].
pub const RETRY_MS: u64 = 500;

/// Replica `ws-<i>` with `--leader-elect` and the `spare` policy (weights
/// follow the host reports).
pub fn replica(kubeconfig: &std::path::Path, i: usize) -> Server {
    let name = format!("ws-{i}");
    let args = [
        "--topology",
        "kube",
        "--policy",
        "spare",
        "--recompute-interval",
        "300ms",
        "--leader-elect",
        "--pod-name",
        &name,
        "--pod-ip",
        "127.0.0.1",
        "--lease-namespace",
        "mplb-system",
        "--lease-duration",
        "3s",
        "--renew-deadline",
        "2s",
        "--retry-period",
        "500ms",
        "--follow-interval",
        "200ms",
    ];
    Server::start(&args, &[("KUBECONFIG", kubeconfig.to_str().unwrap())])
}

/// `(holder, address)` of the Lease `mplb-system/weight-server`, if any.
pub async fn lease_holder(c: &kube::Client) -> Option<(String, String)> {
    let l = kube::Api::<Lease>::namespaced(c.clone(), "mplb-system")
        .get_opt("weight-server")
        .await
        .unwrap()?;
    let holder = l.spec?.holder_identity?;
    let addr = l
        .metadata
        .annotations?
        .get("mplb.io/leader-address")?
        .clone();
    Some((holder, addr))
}

/// Wait (bounded by `limit`) until the Lease names a holder other than
/// `not` whose replica logged that it leads; its identity and when seen.
pub async fn until_leader(
    c: &kube::Client,
    replicas: &[(String, &Server)],
    not: Option<&str>,
    limit: Duration,
) -> (String, Instant) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some((h, _)) = lease_holder(c).await
            && Some(h.as_str()) != not
            && let Some((_, s)) = replicas.iter().find(|(n, _)| *n == h)
            && s.log().contains("became the leader")
        {
            return (h, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs: Vec<String> = replicas
        .iter()
        .map(|(n, s)| format!("--- {n}:\n{}", s.log()))
        .collect();
    panic!(
        "no new leader within {limit:?} (Lease: {:?})\n{}",
        lease_holder(c).await,
        logs.join("\n")
    );
}

/// The host agent's RBAC, one agent pod per node, and a token bound to each
/// (dedicated audience): `(node, token)`.
pub async fn agent_tokens(
    cp: &ControlPlane,
    c: &kube::Client,
    nodes: &[&str],
) -> Vec<(String, String)> {
    let agent = std::fs::read_to_string(repo_root().join("envoyfilter/host-agent.yaml")).unwrap();
    let scratch = cp.dir().join("agent-rbac.yaml");
    kubectl::apply_kinds(cp.admin_kubeconfig(), &scratch, &agent, kubectl::RBAC_KINDS).unwrap();
    let mut out = Vec::new();
    for n in nodes {
        let name = format!("host-agent-{n}");
        let pod = json!({"metadata": {"name": name, "namespace": "mplb-system"},
            "spec": {"nodeName": n, "serviceAccountName": "host-agent",
                     "automountServiceAccountToken": false,
                     "containers": [{"name": "a", "image": "registry.invalid/agent:1"}]}});
        let uid = objects::create_pod(c, pod).await.unwrap();
        let aud = weight_server::auth::DEFAULT_AUDIENCE;
        let token = cp
            .token(
                "mplb-system",
                "host-agent",
                &[aud],
                3600,
                Some((&name, &uid)),
            )
            .await
            .unwrap();
        out.push((n.to_string(), token));
    }
    out
}

/// A host report of `node` with `used` of 4000 millicores.
pub fn report(node: &str, used: f64) -> String {
    json!({"node": node, "capacity_millicores": 4000.0, "used_millicores": used,
           "sampled_at_ms": 1, "interval_ms": 1000, "pods": []})
    .to_string()
}

/// One HTTP/1.1 request that may fail: `None` when the connection fails.
pub fn try_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok())?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// Post `node`'s report with `token` to `addr`.
pub fn post_report(addr: SocketAddr, token: &str, node: &str, used: f64) -> Option<(u16, String)> {
    let auth = format!("Bearer {token}");
    try_http(
        addr,
        "POST",
        "/v1/reports",
        &[("authorization", &auth)],
        &report(node, used),
    )
}

/// One answer of `GET /v1/weights`.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it came back.
    pub at: Instant,
    /// Its status (0: no connection).
    pub status: u16,
    /// The table's version (0 unless 200).
    pub version: u64,
    /// The weight of `pod` in the table (NaN unless 200).
    pub weight: f64,
}

/// A thread polling `/v1/weights` every `every` until stopped (bounded by
/// `limit` and 10 000 polls).
pub struct Poller {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<Sample>>>,
}

impl Poller {
    /// Poll `addr`, recording the weight of `pod` of service `fqdn`.
    pub fn start(
        addr: SocketAddr,
        fqdn: &str,
        pod: &str,
        every: Duration,
        limit: Duration,
    ) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (fqdn, pod) = (fqdn.to_string(), pod.to_string());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + limit;
            let mut out = Vec::new();
            while !flag.load(Ordering::SeqCst) && Instant::now() < deadline && out.len() < 10_000 {
                let (status, body) =
                    try_http(addr, "GET", "/v1/weights", &[], "").unwrap_or((0, String::new()));
                let t: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let weight = t["services"][&fqdn]["endpoints"]
                    .as_array()
                    .and_then(|e| e.iter().find(|e| e["pod"] == pod.as_str()))
                    .and_then(|e| e["weight"].as_f64())
                    .unwrap_or(f64::NAN);
                out.push(Sample {
                    at: Instant::now(),
                    status,
                    version: t["version"].as_u64().unwrap_or(0),
                    weight,
                });
                std::thread::sleep(every);
            }
            out
        });
        Poller {
            stop,
            thread: Some(thread),
        }
    }

    /// Stop and return every sample.
    pub fn stop(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default()
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
