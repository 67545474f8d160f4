//! Envoy's admin: a small blocking HTTP/1.1 GET (`Connection: close`,
//! plain or chunked body), `/ready` and `/stats`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::error::{Error, Result};

/// GET `path` from the admin at `addr`: (status, body).
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<(u16, String)> {
    let bad = |reason: String| Error::Admin {
        addr,
        path: path.into(),
        reason,
    };
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| bad(e.to_string()))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| bad(e.to_string()))?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| bad(e.to_string()))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| bad(e.to_string()))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| bad(e.to_string()))?;
    parse_response(&raw).map_err(bad)
}

/// Parse a whole HTTP/1.1 response: status and body (chunked decoded).
pub fn parse_response(raw: &[u8]) -> std::result::Result<(u16, String), String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("no status line")?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let mut body = &raw[end + 4..];
    if !chunked {
        return Ok((status, String::from_utf8_lossy(body).into_owned()));
    }
    let mut out = Vec::new();
    loop {
        let nl = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk")?;
        let size_text = String::from_utf8_lossy(&body[..nl]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|e| format!("chunk size: {e}"))?;
        if size == 0 {
            break;
        }
        let data = body.get(nl + 2..nl + 2 + size).ok_or("short chunk")?;
        out.extend_from_slice(data);
        body = body.get(nl + 4 + size..).ok_or("short chunk")?;
    }
    Ok((status, String::from_utf8_lossy(&out).into_owned()))
}

/// Does the admin answer `/ready` with `LIVE`?
pub fn ready(addr: SocketAddr) -> bool {
    matches!(get(addr, "/ready", Duration::from_secs(1)), Ok((200, body)) if body.trim() == "LIVE")
}

/// Counters and gauges from `/stats` (optionally `?filter=<regex>`), by name.
pub fn stats(addr: SocketAddr, filter: Option<&str>) -> Result<BTreeMap<String, u64>> {
    let path = match filter {
        Some(f) => format!("/stats?filter={}", encode(f)),
        None => "/stats".to_string(),
    };
    let (status, body) = get(addr, &path, Duration::from_secs(5))?;
    if status != 200 {
        return Err(Error::Admin {
            addr,
            path,
            reason: format!("status {status}"),
        });
    }
    Ok(parse_stats(&body))
}

/// `name: value` lines whose value is an integer (histograms are skipped).
pub fn parse_stats(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(": ")?;
            Some((k.trim().to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Percent-encode a query value (unreserved characters kept).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn plain_and_chunked_bodies_are_read() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nLIVE\n";
        assert_eq!(parse_response(plain).unwrap(), (200, "LIVE\n".into()));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\na: 1\r\n3\r\n\nb:\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (200, "a: 1\nb:".into()));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    #[test]
    fn stats_keep_integers_and_skip_histograms() {
        let s = parse_stats(
            "http.lb.downstream_rq_total: 12\ncluster.x.h: P0(nan,1)\nserver.live: 1\n",
        );
        assert_eq!(s["http.lb.downstream_rq_total"], 12);
        assert_eq!(s["server.live"], 1);
        assert_eq!(s.len(), 2);
        assert_eq!(encode("cluster.pod-p.-1\\.x"), "cluster.pod-p.-1%5C.x");
    }
}
