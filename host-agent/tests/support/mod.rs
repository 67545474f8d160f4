//! Test support: a loopback HTTP server that records host reports and can be
//! told to answer 4xx, 5xx or garbage, stopped and restarted on the same port;
//! and a guard that kills a child process on drop.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Child;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Accept = 0,
    BadRequest = 1,
    ServerError = 2,
    Garbage = 3,
}

/// One request that reached the server.
#[derive(Debug, Clone)]
pub struct Hit {
    pub arrival_ms: u64,
    pub mode: Mode,
    pub path: String,
    pub body: Vec<u8>,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The recording server.
pub struct Server {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    hits: Arc<Mutex<Vec<Hit>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut s = Server {
            addr,
            mode: Arc::new(AtomicU8::new(Mode::Accept as u8)),
            hits: Arc::new(Mutex::new(Vec::new())),
            task: None,
        };
        s.serve(listener);
        s
    }

    fn serve(&mut self, listener: TcpListener) {
        let mode = self.mode.clone();
        let hits = self.hits.clone();
        self.task = Some(tokio::spawn(async move {
            // Connections live in this set: aborting the accept task drops them all.
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                conns.spawn(handle(stream, mode.clone(), hits.clone()));
            }
        }));
    }

    /// Close the listener and every open connection.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listen again on the same port.
    pub async fn restart(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("rebind {}: {e}; retrying", self.addr);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot rebind {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Wait (bounded) until `pred` holds for the hits.
    pub async fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&[Hit]) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.hits()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {:#?}",
                self.hits().len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn mode_of(v: u8) -> Mode {
    match v {
        1 => Mode::BadRequest,
        2 => Mode::ServerError,
        3 => Mode::Garbage,
        _ => Mode::Accept,
    }
}

async fn handle(mut stream: TcpStream, mode: Arc<AtomicU8>, hits: Arc<Mutex<Vec<Hit>>>) {
    let mut buf = Vec::new();
    loop {
        // Read one request: headers, then Content-Length bytes of body.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len);
        let mode = mode_of(mode.load(Ordering::SeqCst));
        hits.lock().unwrap().push(Hit {
            arrival_ms: now_ms(),
            mode,
            path,
            body,
        });
        let answer: &[u8] = match mode {
            Mode::Accept => b"HTTP/1.1 204 No Content\r\n\r\n",
            Mode::BadRequest => {
                b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 32\r\n\r\n{\"error\":\"node is unknown here\"}"
            }
            Mode::ServerError => {
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 27\r\n\r\n{\"error\":\"no topology yet\"}"
            }
            Mode::Garbage => b"\x00\xffthis is not HTTP at all\r\n\r\n",
        };
        if stream.write_all(answer).await.is_err() || mode == Mode::Garbage {
            return;
        }
    }
}

/// Kills and reaps the child on drop (also when a test fails).
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
