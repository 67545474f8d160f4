//! The benchmark's load: wrk bursts (pinned, niced) and curl's trickle,
//! and the Istio sidecar headers `--mesh-headers` adds to every request.

use std::net::SocketAddr;
use std::process::Command;

use crate::error::{Error, Result};

/// Headers an outbound request carries at the filter's place in an Istio
/// sidecar (an app's client headers, request id, B3 and W3C trace context,
/// Istio's peer metadata).
pub const MESH_HEADERS: &[&str] = &[
    "user-agent: Go-http-client/1.1",
    "accept: application/json",
    "accept-encoding: gzip",
    "x-request-id: 3f1c2a7e-9b4d-4e8a-a1f2-6c5d7e8f9a0b",
    "x-b3-traceid: 80f198ee56343ba864fe8b2a57d3eff7",
    "x-b3-spanid: e457b5a2e4d86bd1",
    "x-b3-parentspanid: 05e3ac9a4f6e3b90",
    "x-b3-sampled: 1",
    "traceparent: 00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01",
    "x-envoy-peer-metadata-id: sidecar~10.1.2.3~frontend-7d9f8b6c5d-x2k4p.default~default.svc.cluster.local",
    "x-envoy-peer-metadata: ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj9AQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2BhYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX4gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fiAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj9AQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2BhYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX4=",
];

/// What one wrk run reported.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkResult {
    /// Requests completed.
    pub requests: u64,
    /// Mean requests per second.
    pub rps: f64,
    /// Did any response have a non-2xx status?
    pub non_2xx: bool,
    /// wrk's output.
    pub text: String,
}

/// Parse wrk's summary.
pub fn parse_wrk(text: &str) -> Result<WrkResult> {
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok());
    let rps = text
        .lines()
        .find(|l| l.trim_start().starts_with("Requests/sec"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok());
    match (requests, rps) {
        (Some(requests), Some(rps)) => Ok(WrkResult {
            requests,
            rps,
            non_2xx: text.contains("Non-2xx"),
            text: text.to_string(),
        }),
        _ => Err(Error::Load(format!("unreadable wrk output:\n{text}"))),
    }
}

/// How the load is sent.
#[derive(Debug, Clone)]
pub struct Loader {
    /// Command prefix (`nice -n N taskset -c 1`).
    pub prefix: Vec<String>,
    /// Extra headers on every request.
    pub headers: Vec<String>,
}

impl Loader {
    fn command(&self, program: &str) -> Command {
        let mut words: Vec<&str> = self.prefix.iter().map(String::as_str).collect();
        words.push(program);
        let mut cmd = Command::new(words[0]);
        cmd.args(&words[1..]);
        cmd
    }

    /// wrk with one thread, `conns` connections, for `secs` seconds.
    pub fn wrk(&self, to: SocketAddr, host: &str, conns: u32, secs: u64) -> Result<WrkResult> {
        let mut cmd = self.command("wrk");
        cmd.args(["-t1", &format!("-c{conns}"), &format!("-d{secs}s")])
            .args(["-H", &format!("Host: {host}")]);
        for h in &self.headers {
            cmd.args(["-H", h]);
        }
        cmd.arg(format!("http://{to}/"));
        let out = cmd
            .output()
            .map_err(|e| Error::Load(format!("run wrk: {e}")))?;
        parse_wrk(&String::from_utf8_lossy(&out.stdout))
    }

    /// curl at `rps` requests per second, `n` requests on one connection.
    pub fn trickle(&self, to: SocketAddr, host: &str, rps: u32, n: u64) -> Result<()> {
        let mut cmd = self.command("curl");
        cmd.args([
            "-sf",
            "--rate",
            &format!("{rps}/s"),
            "-H",
            &format!("Host: {host}"),
        ]);
        for h in &self.headers {
            cmd.args(["-H", h]);
        }
        cmd.arg(format!("http://{to}/?n=[1-{n}]"));
        let out = cmd
            .output()
            .map_err(|e| Error::Load(format!("run curl: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Load(format!("curl trickle failed ({})", out.status)))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn wrk_output_gives_requests_rate_and_non_2xx() {
        let t = "Running 1s test @ http://127.0.0.1:1/\n  1 threads and 32 connections\n  12345 requests in 1.00s, 1.2MB read\nRequests/sec:  12340.50\nTransfer/sec: 1MB\n";
        let r = parse_wrk(t).unwrap();
        assert_eq!((r.requests, r.rps, r.non_2xx), (12345, 12340.5, false));
        let r = parse_wrk(&format!("{t}  Non-2xx or 3xx responses: 3\n")).unwrap();
        assert!(r.non_2xx);
        assert!(parse_wrk("connection refused").is_err());
    }
}
