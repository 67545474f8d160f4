//! The whole server in process: `weight_server::serve` on a listener bound
//! to 127.0.0.1:0, driven over real HTTP, then shut down; `serve` returns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use mplb_wire::admin::StateBody;
use mplb_wire::{HostReport, PodCpu, WeightsTable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use weight_server::config::Cli;

fn example(name: &str) -> String {
    format!("{}/../examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// One HTTP/1.1 request (`Connection: close`): status and body.
async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

#[tokio::test]
async fn serve_answers_then_returns_on_shutdown() {
    let topo = example("topology.yaml");
    let cli = Cli::try_parse_from([
        "weight-server",
        "--topology",
        &topo,
        "--insecure-reports",
        "--policy",
        "spare",
        "--recompute-interval",
        "50ms",
    ])
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(weight_server::serve(cli.serve, listener, async {
        let _ = stopped.await;
    }));

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let report = HostReport {
        node: "node-a".into(),
        capacity_millicores: 2000.0,
        used_millicores: 1800.0,
        sampled_at_ms: now,
        interval_ms: 1000,
        pods: vec![PodCpu {
            uid: "profile-0".into(),
            name: None,
            namespace: None,
            millicores: 900.0,
            sampled_at_ms: now,
        }],
    };
    let body = serde_json::to_string(&report).unwrap();
    let (code, answer) = http(addr, "POST", "/v1/reports", &body).await;
    assert_eq!(code, 204, "{answer}");

    let (code, body) = http(addr, "GET", "/admin/state", "").await;
    assert_eq!(code, 200, "{body}");
    let state = StateBody::parse(body.as_bytes()).unwrap();
    assert_eq!(state.fresh_nodes(), ["node-a"]);
    assert_eq!(state.nodes["node-a"].pods["profile-0"], 900.0);

    let (code, body) = http(addr, "GET", "/v1/weights", "").await;
    assert_eq!(code, 200, "{body}");
    let table = WeightsTable::parse(body.as_bytes()).unwrap();
    let profile = &table.services["profile.default.svc.cluster.local"].endpoints;
    let pods: Vec<&str> = profile.iter().map(|e| e.pod.as_str()).collect();
    assert_eq!(pods, ["profile-0", "profile-1"]);

    stop.send(()).unwrap();
    let done = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returns after shutdown");
    done.unwrap().unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}
