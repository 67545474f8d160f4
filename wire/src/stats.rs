//! Proxy stats: what a filter saw per destination pod since its last poll,
//! sent to `POST /v1/stats` on the weight server.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::{WireError, check_name, decode};

/// Largest accepted stats body.
pub const MAX_STATS_BYTES: usize = 1024 * 1024;
/// Most destination pods one stats body may carry.
pub const MAX_STATS_PODS: usize = 10_000;

/// Per-destination-pod counters of one proxy over one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyStats {
    /// Who is reporting (workload or pod name of the sidecar).
    pub proxy: String,
    /// Length of the window the counters cover, in ms.
    pub window_ms: u64,
    /// One entry per (service, pod) seen in the window.
    #[serde(default)]
    pub pods: Vec<PodStats>,
}

/// Counters for one destination pod.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodStats {
    /// Destination service FQDN (the weights table key).
    pub service: String,
    /// Destination pod name.
    pub pod: String,
    /// Requests sent to the pod in the window.
    pub requests: u64,
    /// Of those, responses with a 5xx status (or no response). Exact when
    /// the filter observed every response to the pod; above its sampling
    /// budget, an unbiased estimate (each observed error counts for the
    /// requests its sample stood for), never above `requests`.
    pub errors: u64,
    /// Sum of response latencies in microseconds.
    pub latency_sum_us: u64,
    /// Number of latencies summed (the responses observed).
    pub latency_count: u64,
}

impl ProxyStats {
    /// Decode and validate a stats body.
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let stats: ProxyStats = decode(body, MAX_STATS_BYTES)?;
        stats.validate()?;
        Ok(stats)
    }

    /// Check every rule of the contract.
    pub fn validate(&self) -> Result<(), WireError> {
        check_name("proxy", &self.proxy)?;
        if self.pods.len() > MAX_STATS_PODS {
            return Err(WireError::invalid(format!(
                "{} pods exceed the limit of {MAX_STATS_PODS}",
                self.pods.len()
            )));
        }
        let mut seen = HashSet::with_capacity(self.pods.len());
        for p in &self.pods {
            check_name("service", &p.service)?;
            check_name("pod", &p.pod)?;
            if p.errors > p.requests {
                return Err(WireError::invalid(format!(
                    "pod {:?}: {} errors exceed {} requests",
                    p.pod, p.errors, p.requests
                )));
            }
            if p.latency_count > 0 && p.latency_sum_us / p.latency_count > 3_600_000_000 {
                return Err(WireError::invalid(format!(
                    "pod {:?}: mean latency over an hour",
                    p.pod
                )));
            }
            if !seen.insert((p.service.as_str(), p.pod.as_str())) {
                return Err(WireError::invalid(format!(
                    "pod {:?} of {:?} repeats",
                    p.pod, p.service
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_good_stats_and_rejects_bad_ones() {
        let good = r#"{"proxy":"frontend-0","window_ms":1000,"pods":[
            {"service":"profile.default.svc.cluster.local","pod":"profile-0","requests":10,
             "errors":1,"latency_sum_us":12000,"latency_count":9}]}"#;
        let s = ProxyStats::parse(good.as_bytes()).unwrap();
        assert_eq!(s.pods[0].requests, 10);
        for bad in [
            r#"{"proxy":"","window_ms":1,"pods":[]}"#,
            r#"{"proxy":"p","window_ms":1,"pods":[{"service":"s","pod":"a","requests":1,"errors":2,"latency_sum_us":0,"latency_count":0}]}"#,
            r#"{"proxy":"p","window_ms":1,"pods":[{"service":"s","pod":"a","requests":-1,"errors":0,"latency_sum_us":0,"latency_count":0}]}"#,
            r#"{"proxy":"p","window_ms":1,"pods":[{"service":"s","pod":"a","requests":1,"errors":0,"latency_sum_us":0,"latency_count":0},{"service":"s","pod":"a","requests":1,"errors":0,"latency_sum_us":0,"latency_count":0}]}"#,
            r#"{"proxy":"p","window_ms":1,"extra":true}"#,
            r#"{"proxy":"p","window_ms":"1"}"#,
        ] {
            assert!(ProxyStats::parse(bad.as_bytes()).is_err(), "accepted {bad}");
        }
    }
}
