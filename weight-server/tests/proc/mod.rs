//! A real `weight-server` process for the integration tests: started on a
//! free loopback port, killed on drop, with a tiny HTTP/1.1 client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_weight-server");

pub fn example(name: &str) -> String {
    format!("{}/../examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A running server; SIGKILLed on drop if still running.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub lines: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the binary with `args` (plus `--listen 127.0.0.1:0`) and wait for
/// its "listening on" line; `Err(stderr)` if it exits first.
pub fn start(args: &[&str]) -> Result<Server, String> {
    start_env(args, &[])
}

/// [`start`] with extra environment variables.
pub fn start_env(args: &[&str], envs: &[(&str, &str)]) -> Result<Server, String> {
    let mut child = Command::new(BIN)
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .envs(envs.iter().copied())
        .env("RUST_LOG", "info")
        .env_remove("MPLB_TOPOLOGY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest.trim().parse().map_err(|e| format!("{e}: {line}"))?;
                    return Ok(Server {
                        child,
                        addr,
                        lines: rx,
                    });
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        seen.push_str(&line);
        seen.push('\n');
    }
    Err(seen)
}

/// `PUT /admin/policy` on a server started with `--insecure-admin`;
/// panics unless it answers 200.
pub fn set_policy(srv: &Server, policy: &str) {
    let body = format!(r#"{{"policy":"{policy}"}}"#);
    let (code, answer) = http(srv.addr, "PUT", "/admin/policy", &[], &body);
    assert_eq!(code, 200, "{answer}");
}

/// One request; returns (status, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    // Bodies of axum JSON answers are not chunked (known length).
    (status, body)
}
