//! Proxy stats: what the filters saw per destination pod, posted with their
//! polls. Each proxy's last window is kept per pod; a pod's request rate is
//! the sum over proxies with a fresh window, its error rate and mean latency
//! the pooled ratios. Windows older than the maximum age are dropped.

use std::collections::BTreeMap;

use mplb_wire::ProxyStats;

#[derive(Debug, Clone, Copy)]
struct Window {
    at_ms: u64,
    window_ms: u64,
    requests: u64,
    errors: u64,
    latency_sum_us: u64,
    latency_count: u64,
}

pub use mplb_wire::admin::PodTraffic;

/// Most (service, pod, proxy) windows kept, so random names cannot grow
/// memory without bound.
pub const MAX_WINDOWS: usize = 200_000;

/// Stats refused because [`MAX_WINDOWS`] fresh windows are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("already keeping {MAX_WINDOWS} fresh stats windows")]
pub struct TooManyWindows;

/// Last windows per (service, pod) per proxy.
#[derive(Debug)]
pub struct Stats {
    max_age_ms: u64,
    windows: BTreeMap<(String, String), BTreeMap<String, Window>>,
    len: usize,
    last_prune_ms: u64,
}

impl Stats {
    /// Stats windows fresh for `max_age_ms`.
    pub fn new(max_age_ms: u64) -> Self {
        Stats {
            max_age_ms,
            windows: BTreeMap::new(),
            len: 0,
            last_prune_ms: 0,
        }
    }

    /// Fold a validated stats body.
    pub fn ingest(&mut self, s: &ProxyStats, now_ms: u64) -> Result<(), TooManyWindows> {
        if self.len + s.pods.len() > MAX_WINDOWS {
            self.prune(now_ms);
            if self.len + s.pods.len() > MAX_WINDOWS {
                return Err(TooManyWindows);
            }
        }
        for p in &s.pods {
            let prev = self
                .windows
                .entry((p.service.clone(), p.pod.clone()))
                .or_default()
                .insert(
                    s.proxy.clone(),
                    Window {
                        at_ms: now_ms,
                        window_ms: s.window_ms.max(1),
                        requests: p.requests,
                        errors: p.errors,
                        latency_sum_us: p.latency_sum_us,
                        latency_count: p.latency_count,
                    },
                );
            if prev.is_none() {
                self.len += 1;
            }
        }
        if now_ms.saturating_sub(self.last_prune_ms) >= 1_000 {
            self.prune(now_ms);
        }
        Ok(())
    }

    fn prune(&mut self, now_ms: u64) {
        self.last_prune_ms = now_ms;
        let max = self.max_age_ms;
        self.windows.retain(|_, by_proxy| {
            by_proxy.retain(|_, w| now_ms.saturating_sub(w.at_ms) <= max);
            !by_proxy.is_empty()
        });
        self.len = self.windows.values().map(BTreeMap::len).sum();
    }

    /// Pooled figures per service FQDN (as the filters named it) and pod.
    pub fn traffic(&self, now_ms: u64) -> BTreeMap<String, BTreeMap<String, PodTraffic>> {
        let mut out: BTreeMap<String, BTreeMap<String, PodTraffic>> = BTreeMap::new();
        for ((svc, pod), by_proxy) in &self.windows {
            let fresh = by_proxy
                .values()
                .filter(|w| now_ms.saturating_sub(w.at_ms) <= self.max_age_ms);
            let (mut rate, mut req, mut err, mut lsum, mut lcount) = (0.0, 0u64, 0u64, 0u64, 0u64);
            let mut any = false;
            for w in fresh {
                any = true;
                rate += w.requests as f64 * 1000.0 / w.window_ms as f64;
                req = req.saturating_add(w.requests);
                err = err.saturating_add(w.errors);
                lsum = lsum.saturating_add(w.latency_sum_us);
                lcount = lcount.saturating_add(w.latency_count);
            }
            if !any {
                continue;
            }
            out.entry(svc.clone()).or_default().insert(
                pod.clone(),
                PodTraffic {
                    request_rate: rate,
                    error_rate: if req == 0 {
                        0.0
                    } else {
                        err as f64 / req as f64
                    },
                    mean_latency_ms: (lcount > 0).then(|| lsum as f64 / lcount as f64 / 1000.0),
                },
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mplb_wire::PodStats;

    fn stats(proxy: &str, requests: u64, errors: u64) -> ProxyStats {
        ProxyStats {
            proxy: proxy.into(),
            window_ms: 1000,
            pods: vec![PodStats {
                service: "s".into(),
                pod: "s-0".into(),
                requests,
                errors,
                latency_sum_us: requests * 2000,
                latency_count: requests,
            }],
        }
    }

    #[test]
    fn pools_proxies_and_ages_out() {
        let mut s = Stats::new(10_000);
        s.ingest(&stats("p1", 10, 1), 0).unwrap();
        s.ingest(&stats("p2", 30, 1), 500).unwrap();
        let t = s.traffic(500)["s"]["s-0"];
        assert_eq!(t.request_rate, 40.0);
        assert_eq!(t.error_rate, 2.0 / 40.0);
        assert_eq!(t.mean_latency_ms, Some(2.0));
        // p1's window ages out first.
        let t = s.traffic(10_200)["s"]["s-0"];
        assert_eq!(t.request_rate, 30.0);
        assert!(s.traffic(20_000).is_empty());
        assert_eq!(s.len, 2, "pruned on a later ingest, not yet");
        // A newer window of the same proxy replaces the older one.
        s.ingest(&stats("p2", 5, 0), 20_000).unwrap();
        assert_eq!(s.len, 1, "p1's stale window pruned");
        assert_eq!(s.traffic(20_000)["s"]["s-0"].request_rate, 5.0);
        assert_eq!(s.traffic(20_000)["s"]["s-0"].error_rate, 0.0);
    }
}
