//! The real `weight-server` and a real `host-agent` (local mode, on a real
//! cgroup v1 subtree): reports arrive; the server is stopped and restarted on
//! the same port; the agent resumes without a restart of its own, and no
//! report older than one interval is sent after recovery.
//!
//! The report ages are read by a recording relay between agent and server
//! (it forwards every report unchanged and answers 503 while the server is
//! down, as a stopped server's load balancer would); the server's own
//! `/admin/state` shows the node fresh again. Needs root and cgroup v1, and
//! `cargo build --workspace --bins` first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use mplb_lab::cgroup::CgroupFs;
use mplb_lab::procs::{Ports, Proc};
use mplb_lab::stack::{CgroupGuard, prepare_cgroups};
use mplb_wire::HostReport;
use mplb_wire::admin::StateBody;

const INTERVAL_MS: u64 = 500;

#[derive(Debug, Clone)]
struct Seen {
    arrived_ms: u64,
    sampled_at_ms: u64,
    forwarded: bool,
}

#[derive(Clone)]
struct Relay {
    upstream: String,
    client: reqwest::Client,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn relay(State(r): State<Relay>, body: Bytes) -> (StatusCode, String) {
    let arrived_ms = wall_ms();
    let sampled_at_ms = HostReport::parse(&body)
        .map(|h| h.sampled_at_ms)
        .unwrap_or(0);
    let resp = r
        .client
        .post(&r.upstream)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .timeout(Duration::from_millis(400))
        .send()
        .await;
    let (status, forwarded) = match resp {
        Ok(resp) => (resp.status(), resp.status().is_success()),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, false),
    };
    r.seen.lock().unwrap().push(Seen {
        arrived_ms,
        sampled_at_ms,
        forwarded,
    });
    (status, String::new())
}

fn bin_dir() -> PathBuf {
    let app = PathBuf::from(env!("CARGO_BIN_EXE_lab-app"));
    let dir = app.parent().unwrap().to_path_buf();
    for b in ["weight-server", "host-agent"] {
        assert!(
            dir.join(b).is_file(),
            "{} missing: run `cargo build --workspace --bins` first",
            dir.join(b).display()
        );
    }
    dir
}

async fn state(client: &reqwest::Client, server: SocketAddr) -> Option<StateBody> {
    let body = client
        .get(format!("http://{server}/admin/state"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .ok()?
        .bytes()
        .await
        .ok()?;
    StateBody::parse(&body).ok()
}

async fn wait_fresh(client: &reqwest::Client, server: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(s) = state(client, server).await
            && s.nodes
                .get("node-t")
                .is_some_and(|n| n.fresh && n.pods.contains_key("hog-0"))
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_resumes_after_a_server_restart_without_sending_stale_reports() {
    let dir = bin_dir();
    let tmp = tempfile::tempdir().unwrap();
    let fs: CgroupFs = prepare_cgroups("/sys/fs/cgroup".as_ref(), "mplb-lab-test-agent", true)
        .unwrap_or_else(|e| panic!("{e} (this test needs root and cgroup v1)"));
    let cg = CgroupGuard(fs.clone());
    fs.create("node-t/hog-0").unwrap();
    fs.set_quota("node-t", 300).unwrap();

    let mut ports = Ports::new(0);
    let (server_addr, relay_addr, app_addr) = (
        ports.take().unwrap(),
        ports.take().unwrap(),
        ports.take().unwrap(),
    );

    // A pod with CPU use: lab-app with a 100m hog.
    let mut app = Command::new(dir.join("lab-app"));
    app.args([
        "--listen",
        &app_addr.to_string(),
        "--pod",
        "hog-0",
        "--hog-millicores",
        "100",
    ]);
    let app = Proc::spawn("hog-0", app, tmp.path()).unwrap();
    fs.place("node-t/hog-0", app.pid()).unwrap();

    let topo = tmp.path().join("topology.yaml");
    std::fs::write(
        &topo,
        format!(
            "nodes: [{{name: node-t, capacity_millicores: 300}}]\n\
             services: [{{name: hog, tenant: batch, port: 8090, fair_share_millicores: 100}}]\n\
             pods: [{{name: hog-0, service: hog, node: node-t, address: \"{app_addr}\"}}]\n"
        ),
    )
    .unwrap();
    let server_cmd = || {
        let mut c = Command::new(dir.join("weight-server"));
        c.args(["--listen", &server_addr.to_string(), "--topology"])
            .arg(&topo)
            .args([
                "--policy",
                "spare",
                "--recompute-interval",
                "500ms",
                "--insecure-admin",
                "--insecure-reports",
            ]);
        c
    };
    let mut server = Proc::spawn("weight-server", server_cmd(), tmp.path()).unwrap();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let relay_state = Relay {
        upstream: format!("http://{server_addr}/v1/reports"),
        client: reqwest::Client::new(),
        seen: seen.clone(),
    };
    let listener = tokio::net::TcpListener::bind(relay_addr).await.unwrap();
    let relay_task = tokio::spawn(async move {
        let app = Router::new()
            .route("/v1/reports", post(relay))
            .with_state(relay_state);
        axum::serve(listener, app).await
    });

    let mut agent = Command::new(dir.join("host-agent"));
    agent
        .args(["--server", &format!("http://{relay_addr}")])
        .args([
            "--node-name",
            "node-t",
            "--interval",
            "500ms",
            "--max-backoff",
            "1s",
        ])
        .args(["--cgroup-root", "/sys/fs/cgroup"])
        .args(["--node-cgroup", &fs.agent_path("node-t")])
        .args([
            "--pods",
            &format!("hog-0={}", fs.agent_path("node-t/hog-0")),
        ]);
    let mut agent = Proc::spawn("host-agent", agent, tmp.path()).unwrap();
    let agent_pid = agent.pid();

    let client = reqwest::Client::new();
    assert!(
        wait_fresh(&client, server_addr, Duration::from_secs(15)).await,
        "no report arrived; server log:\n{}\nagent log:\n{}",
        mplb_lab::procs::tail(&server.log, 80),
        mplb_lab::procs::tail(&agent.log, 20)
    );
    let cpu = state(&client, server_addr).await.unwrap().nodes["node-t"].pods["hog-0"];
    assert!(cpu > 20.0, "the hog's CPU was reported as {cpu}m");

    // Stop the server; the agent keeps trying.
    server.kill();
    drop(server);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let failed_while_down = seen.lock().unwrap().iter().filter(|s| !s.forwarded).count();
    assert!(
        failed_while_down >= 1,
        "the agent did not retry while the server was down"
    );

    // Restart on the same port.
    let restarted_ms = wall_ms();
    let server = Proc::spawn("weight-server-2", server_cmd(), tmp.path()).unwrap();
    assert!(
        wait_fresh(&client, server_addr, Duration::from_secs(15)).await,
        "the agent did not resume; agent log:\n{}",
        mplb_lab::procs::tail(&agent.log, 20)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    agent.check().unwrap();
    assert_eq!(agent.pid(), agent_pid);

    let after: Vec<Seen> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.forwarded && s.arrived_ms >= restarted_ms)
        .cloned()
        .collect();
    assert!(
        after.len() >= 2,
        "only {} reports after recovery",
        after.len()
    );
    for s in &after {
        let age = s.arrived_ms.saturating_sub(s.sampled_at_ms);
        assert!(
            age < INTERVAL_MS,
            "a report {age} ms old (interval {INTERVAL_MS} ms) was sent after recovery: {after:?}"
        );
    }
    relay_task.abort();
    drop(agent);
    drop(server);
    drop(app);
    drop(cg);
}
