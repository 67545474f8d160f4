//! Load for the failover figure: upstream "pods" that answer 200 and count
//! what they serve (by the `x-lb-endpt` stamp the filter adds), and a
//! keep-alive HTTP/1.1 load bounded in count and time. std only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// An upstream answering every request 200 `ok`; counts requests.
pub struct Upstream {
    pub addr: SocketAddr,
    pub served: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    /// Listen on a free loopback port.
    pub fn start() -> Upstream {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let served = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, flag) = (served.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let count = count.clone();
                std::thread::spawn(move || serve(conn, &count));
            }
        });
        Upstream { addr, served, stop }
    }

    pub fn served(&self) -> u64 {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, count: &AtomicU64) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        let mut first = true;
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" && !first {
                break;
            }
            first = false;
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        count.fetch_add(1, Ordering::SeqCst);
        if w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

/// What a load run saw.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub ok: u64,
    pub non_2xx: u64,
    pub failed: u64,
}

/// `threads` keep-alive connections to `addr`, each sending `GET /` with
/// `Host: host` every `gap` until stopped (bounded by `limit` and 100 000
/// requests per thread); reconnects after a failure.
pub fn load(
    addr: SocketAddr,
    host: &str,
    threads: usize,
    gap: Duration,
    stop: Arc<AtomicBool>,
    limit: Duration,
) -> std::thread::JoinHandle<Outcome> {
    let host = host.to_string();
    std::thread::spawn(move || {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (host, stop) = (host.clone(), stop.clone());
                std::thread::spawn(move || {
                    let deadline = Instant::now() + limit;
                    let mut out = Outcome::default();
                    let mut conn: Option<BufReader<TcpStream>> = None;
                    let mut n = 0;
                    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline && n < 100_000 {
                        n += 1;
                        if conn.is_none() {
                            conn = TcpStream::connect(addr).ok().map(BufReader::new);
                        }
                        match conn.as_mut().and_then(|c| get(c, &host)) {
                            Some(s) if (200..300).contains(&s) => out.ok += 1,
                            Some(_) => out.non_2xx += 1,
                            None => {
                                out.failed += 1;
                                conn = None;
                            }
                        }
                        std::thread::sleep(gap);
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().fold(Outcome::default(), |mut a, h| {
            let o = h.join().unwrap();
            a.ok += o.ok;
            a.non_2xx += o.non_2xx;
            a.failed += o.failed;
            a
        })
    })
}

fn get(c: &mut BufReader<TcpStream>, host: &str) -> Option<u16> {
    let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
    c.get_mut().write_all(req.as_bytes()).ok()?;
    c.get_ref()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    let mut line = String::new();
    c.read_line(&mut line).ok()?;
    let status = line.split(' ').nth(1)?.parse().ok()?;
    let mut len = 0usize;
    loop {
        line.clear();
        if c.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    c.read_exact(&mut body).ok()?;
    Some(status)
}
