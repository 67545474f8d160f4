//! The sender: pushes the newest report to `POST {server}/v1/reports`.
//!
//! It reads from a `watch` channel that only ever holds the newest report, so
//! sampling never waits for the network and nothing stale is queued. A 2xx
//! is accepted; a 4xx is logged with the server's reason and that report is
//! dropped (the next one replaces it); a 5xx or transport error backs off
//! exponentially with jitter up to a cap, and the retry takes whatever report
//! is newest then, skipping any older than one interval.

use std::sync::Arc;
use std::time::Duration;

use mplb_wire::HostReport;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::error::AgentError;

/// First backoff after a failure.
pub const BASE_BACKOFF: Duration = Duration::from_millis(100);

/// How to reach the weight server.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Base URL of the weight server, e.g. `http://weight-server:8080`.
    pub server: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Largest wait between retries.
    pub max_backoff: Duration,
    /// Sampling interval: reports older than this are never sent.
    pub interval: Duration,
    /// File holding the projected ServiceAccount token sent as the bearer
    /// token; read again for every report (the kubelet rotates it).
    pub token_file: Option<std::path::PathBuf>,
}

/// What became of one POST.
#[derive(Debug)]
pub enum Outcome {
    /// 2xx: the server took the report.
    Accepted,
    /// 4xx: do not retry this report.
    Rejected(AgentError),
    /// 5xx or transport: back off and retry with the newest report.
    Failed(AgentError),
}

/// Pushes reports; one per agent.
pub struct Sender {
    cfg: SenderConfig,
    url: String,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    rng: u64,
}

impl Sender {
    /// A sender to `cfg.server`, its backoff jitter seeded from `clock`.
    pub fn new(cfg: SenderConfig, clock: Arc<dyn Clock>) -> Result<Sender, AgentError> {
        let url = format!("{}/v1/reports", cfg.server.trim_end_matches('/'));
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .pool_max_idle_per_host(1)
            .build()
            .map_err(|e| AgentError::Http {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let rng = clock.mono_ns() ^ (u64::from(std::process::id()) << 32) ^ clock.wall_ms();
        Ok(Sender {
            cfg,
            url,
            client,
            clock,
            rng: rng | 1,
        })
    }

    /// Run until the sampling side of `rx` is dropped.
    pub async fn run(mut self, mut rx: watch::Receiver<Option<Arc<HostReport>>>) {
        let interval_ms = u64::try_from(self.cfg.interval.as_millis()).unwrap_or(u64::MAX);
        let mut failures: u32 = 0;
        let mut down_since_ms = 0u64;
        'next: while rx.changed().await.is_ok() {
            loop {
                let Some(report) = rx.borrow_and_update().clone() else {
                    continue 'next;
                };
                let age = self.clock.wall_ms().saturating_sub(report.sampled_at_ms);
                if age >= interval_ms {
                    tracing::debug!(age_ms = age, "newest report is stale; waiting for the next");
                    continue 'next;
                }
                match self.post(&report).await {
                    Outcome::Accepted => {
                        if failures > 0 {
                            tracing::info!(
                                url = %self.url,
                                failed_attempts = failures,
                                down_ms = self.clock.wall_ms().saturating_sub(down_since_ms),
                                "weight server is back; reports accepted again"
                            );
                        }
                        failures = 0;
                        continue 'next;
                    }
                    Outcome::Rejected(e) => {
                        tracing::warn!(url = %self.url, error = %e, "report rejected; dropping it");
                        continue 'next;
                    }
                    Outcome::Failed(e) => {
                        if failures == 0 {
                            down_since_ms = self.clock.wall_ms();
                        }
                        failures = failures.saturating_add(1);
                        let wait = self.backoff(failures);
                        if failures.is_power_of_two() {
                            tracing::warn!(
                                url = %self.url,
                                error = %e,
                                failed_attempts = failures,
                                retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                                "cannot push report; backing off"
                            );
                        }
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
    }

    /// POST one report.
    pub async fn post(&self, report: &HostReport) -> Outcome {
        let mut request = self.client.post(&self.url).json(report);
        if let Some(path) = &self.cfg.token_file {
            match tokio::fs::read_to_string(path).await {
                Ok(token) => request = request.bearer_auth(token.trim()),
                Err(e) => {
                    return Outcome::Failed(AgentError::Http {
                        url: self.url.clone(),
                        reason: format!("cannot read the token file {}: {e}", path.display()),
                    });
                }
            }
        }
        let result = request.send().await;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Failed(AgentError::Http {
                    url: self.url.clone(),
                    reason: error_chain(&e),
                });
            }
        };
        let status = response.status();
        if status.is_success() {
            return Outcome::Accepted;
        }
        let body = response.bytes().await.unwrap_or_default();
        let err = AgentError::Status {
            status: status.as_u16(),
            reason: reason_of(&body),
        };
        if status.is_client_error() {
            Outcome::Rejected(err)
        } else {
            Outcome::Failed(err)
        }
    }

    /// Capped exponential backoff with jitter in [b/2, b].
    fn backoff(&mut self, failures: u32) -> Duration {
        let exp = BASE_BACKOFF.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        let cap = exp.min(self.cfg.max_backoff).max(Duration::from_millis(1));
        // xorshift64: jitter only, not security.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let half = cap / 2;
        let extra_ns = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
        half + Duration::from_nanos(self.rng % extra_ns)
    }
}

/// The `error` of a JSON error body, else the body's first bytes.
pub fn reason_of(body: &[u8]) -> String {
    let parsed: Option<String> = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_string));
    let text = parsed.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let clipped: String = text.chars().take(200).collect();
    if clipped.is_empty() {
        "(empty body)".into()
    } else {
        clipped
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn reasons_from_json_or_raw_bodies() {
        assert_eq!(reason_of(br#"{"error":"node is empty"}"#), "node is empty");
        assert_eq!(reason_of(b"<html>oops"), "<html>oops");
        assert_eq!(reason_of(b""), "(empty body)");
        assert_eq!(reason_of(&[0xff, b'a']), "\u{fffd}a");
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let cfg = SenderConfig {
            server: "http://127.0.0.1:1".into(),
            timeout: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            interval: Duration::from_secs(1),
            token_file: None,
        };
        let mut s = Sender::new(cfg, Arc::new(ManualClock::new(5))).unwrap();
        for failures in 1..40 {
            let exp = BASE_BACKOFF.saturating_mul(1 << (failures - 1).min(16));
            let cap = exp.min(Duration::from_secs(2));
            let b = s.backoff(failures);
            assert!(b >= cap / 2 && b <= cap, "{failures}: {b:?} vs {cap:?}");
        }
        let draws: std::collections::HashSet<_> = (0..20).map(|_| s.backoff(30)).collect();
        assert!(draws.len() > 10, "jitter varies: {draws:?}");
    }

    /// The token file is read for every report and sent as the bearer
    /// token; an unreadable file is a retryable failure.
    #[tokio::test]
    async fn the_token_file_is_sent_as_the_bearer_token() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..2 {
                let (mut c, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 8192];
                let n = c.read(&mut buf).await.unwrap();
                seen.push(String::from_utf8_lossy(&buf[..n]).to_lowercase());
                c.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                    .await
                    .unwrap();
            }
            seen
        });
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        let cfg = SenderConfig {
            server: format!("http://{addr}"),
            timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(2),
            interval: Duration::from_secs(1),
            token_file: Some(token.clone()),
        };
        let s = Sender::new(cfg, Arc::new(ManualClock::new(5))).unwrap();
        let report: HostReport = serde_json::from_value(serde_json::json!({
            "node": "n1", "capacity_millicores": 1000.0, "used_millicores": 1.0,
            "sampled_at_ms": 5, "interval_ms": 1000}))
        .unwrap();
        assert!(
            matches!(s.post(&report).await, Outcome::Failed(_)),
            "no token file yet"
        );
        for t in ["first-token\n", "rotated-token"] {
            std::fs::write(&token, t).unwrap();
            assert!(matches!(s.post(&report).await, Outcome::Accepted));
        }
        let seen = server.await.unwrap();
        assert!(
            seen[0].contains("authorization: bearer first-token\r\n"),
            "{}",
            seen[0]
        );
        assert!(
            seen[1].contains("authorization: bearer rotated-token\r\n"),
            "{}",
            seen[1]
        );
    }
}
