//! Minimal HTTP/1.1 pieces over std: a threaded server with a handler, the
//! upstream replicas and the weight server built on it, and a client.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One parsed request.
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// One answer: status, extra headers, body.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

type Handler = Arc<dyn Fn(&Request) -> Answer + Send + Sync>;

/// Read one request; `None` at EOF or on garbage.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

/// A threaded HTTP/1.1 server; `stop` (or drop) closes the listener.
pub struct Server {
    pub addr: SocketAddr,
    stopped: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(keep_alive: bool, handler: Handler) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stopped = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stopped);
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let handler = Arc::clone(&handler);
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || serve(conn, keep_alive, &handler, &stop));
            }
        });
        Server {
            addr,
            stopped,
            accept: Some(accept),
        }
    }

    /// Stop accepting and close the listening socket.
    pub fn stop(&mut self) {
        if let Some(t) = self.accept.take() {
            self.stopped.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(self.addr);
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(conn: TcpStream, keep_alive: bool, handler: &Handler, stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    while let Some(req) = read_request(&mut r) {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let (status, headers, body) = handler(&req);
        let mut out = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if !keep_alive {
            out.push_str("connection: close\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&body);
        if w.write_all(&bytes).is_err() || !keep_alive {
            break;
        }
    }
    let _ = w.shutdown(Shutdown::Both);
}

/// An upstream replica: answers its name, counts requests, notes the
/// endpoint and session headers it received.
pub struct Replica {
    pub name: String,
    pub server: Server,
    pub served: Arc<AtomicU64>,
    pub stamped: Arc<AtomicU64>,
    pub sessions: Arc<Mutex<HashMap<String, u64>>>,
}

impl Replica {
    pub fn start(name: &str) -> Replica {
        let served = Arc::new(AtomicU64::new(0));
        let stamped = Arc::new(AtomicU64::new(0));
        let sessions = Arc::new(Mutex::new(HashMap::new()));
        let (s, st, se, n) = (
            Arc::clone(&served),
            Arc::clone(&stamped),
            Arc::clone(&sessions),
            name.to_string(),
        );
        let server = Server::start(
            true,
            Arc::new(move |req: &Request| {
                s.fetch_add(1, Ordering::SeqCst);
                if req.headers.contains_key("x-lb-endpt") {
                    st.fetch_add(1, Ordering::SeqCst);
                }
                if let Some(v) = req.headers.get("x-lb-session") {
                    *se.lock().unwrap().entry(v.clone()).or_insert(0) += 1;
                }
                // `x-test-status: 503` asks for that status (5xx counting).
                let status = req
                    .headers
                    .get("x-test-status")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(200);
                (status, vec![], n.clone().into_bytes())
            }),
        );
        Replica {
            name: name.to_string(),
            server,
            served,
            stamped,
            sessions,
        }
    }

    pub fn reset(&self) {
        self.served.store(0, Ordering::SeqCst);
        self.stamped.store(0, Ordering::SeqCst);
        self.sessions.lock().unwrap().clear();
    }

    pub fn served(&self) -> u64 {
        self.served.load(Ordering::SeqCst)
    }

    pub fn stamped(&self) -> u64 {
        self.stamped.load(Ordering::SeqCst)
    }
}

/// What the scripted weight server serves.
#[derive(Default)]
pub struct WeightState {
    /// The version and body served with 200 (ETag = version).
    pub table: Option<(u64, Vec<u8>)>,
    pub gets: u64,
    pub not_modified: u64,
    /// Every other call (`METHOD path`): the filter makes none.
    pub others: Vec<String>,
}

/// The weight server stand-in: `GET /v1/weights` with ETag/304.
pub struct WeightServer {
    pub server: Server,
    pub state: Arc<Mutex<WeightState>>,
}

impl WeightServer {
    pub fn start() -> WeightServer {
        let state = Arc::new(Mutex::new(WeightState::default()));
        let st = Arc::clone(&state);
        let server = Server::start(
            false,
            Arc::new(move |req: &Request| {
                let mut s = st.lock().unwrap();
                match (req.method.as_str(), req.path.as_str()) {
                    ("GET", "/v1/weights") => {
                        s.gets += 1;
                        let Some((version, body)) = s.table.clone() else {
                            return (503, vec![], br#"{"error":"no table yet"}"#.to_vec());
                        };
                        let etag = format!("\"{version}\"");
                        let hdrs = vec![("etag".to_string(), etag.clone())];
                        if req.headers.get("if-none-match") == Some(&etag) {
                            s.not_modified += 1;
                            return (304, hdrs, vec![]);
                        }
                        (200, hdrs, body)
                    }
                    (method, path) => {
                        s.others.push(format!("{method} {path}"));
                        (404, vec![], br#"{"error":"not found"}"#.to_vec())
                    }
                }
            }),
        );
        WeightServer { server, state }
    }

    pub fn serve(&self, version: u64, body: impl Into<Vec<u8>>) {
        self.state.lock().unwrap().table = Some((version, body.into()));
    }

    pub fn gets(&self) -> u64 {
        self.state.lock().unwrap().gets
    }
}

/// A response: status, headers (names lowercased), body.
pub type Response = (u16, Vec<(String, String)>, String);

/// A keep-alive HTTP/1.1 client connection.
pub struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> std::io::Result<Client> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.set_nodelay(true)?;
        Ok(Client {
            w: s.try_clone()?,
            r: BufReader::new(s),
        })
    }

    /// GET `path` with `Host: host` and extra headers; (status, body).
    pub fn get(
        &mut self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<(u16, String)> {
        let headers: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        self.get_bytes(host, path, &headers)
    }

    /// [`Client::get`] with header values as raw bytes (not UTF-8 allowed).
    pub fn get_bytes(
        &mut self,
        host: &str,
        path: &str,
        headers: &[(&str, &[u8])],
    ) -> std::io::Result<(u16, String)> {
        self.get_full(host, path, headers)
            .map(|(status, _, body)| (status, body))
    }

    /// [`Client::get_bytes`], with the response's headers (names
    /// lowercased, in order).
    pub fn get_full(
        &mut self,
        host: &str,
        path: &str,
        headers: &[(&str, &[u8])],
    ) -> std::io::Result<Response> {
        let mut req = format!("GET {path} HTTP/1.1\r\nhost: {host}\r\n").into_bytes();
        for (k, v) in headers {
            req.extend_from_slice(format!("{k}: ").as_bytes());
            req.extend_from_slice(v);
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"\r\n");
        self.w.write_all(&req)?;
        let bad = || std::io::Error::other("bad response");
        let mut line = String::new();
        self.r.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        let mut len = 0usize;
        let mut chunked = false;
        let mut got = Vec::new();
        loop {
            let mut h = String::new();
            if self.r.read_line(&mut h)? == 0 {
                return Err(bad());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                got.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().map_err(|_| bad())?;
                } else if k.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = v.trim().eq_ignore_ascii_case("chunked");
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                self.r.read_line(&mut size)?;
                let n = usize::from_str_radix(size.trim(), 16).map_err(|_| bad())?;
                let mut chunk = vec![0; n + 2];
                self.r.read_exact(&mut chunk)?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else {
            body.resize(len, 0);
            self.r.read_exact(&mut body)?;
        }
        Ok((status, got, String::from_utf8_lossy(&body).into_owned()))
    }
}
