//! ORCA load reports of a lab pod, for the `cswrr` baseline: every response
//! carries `endpoint-load-metrics: TEXT cpu_utilization=<u>,rps_fractional=<r>`,
//! where `u` is the CPU utilisation (0..1) of the pod's node cgroup (the
//! signal the host agents read) and `r` the pod's own served requests per
//! second, both over the last sampling period. Envoy's
//! `client_side_weighted_round_robin` computes a weight of `r / u` per host.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The response header Envoy reads in-band load reports from.
pub const HEADER: &str = "endpoint-load-metrics";
/// How often utilisation and rate are sampled.
pub const PERIOD: Duration = Duration::from_millis(500);

/// Where the node's CPU comes from.
#[derive(Debug, Clone)]
pub struct NodeCpu {
    /// The node cgroup's `cpuacct.usage` (nanoseconds).
    pub usage_file: PathBuf,
    /// The node's capacity in millicores.
    pub capacity_millicores: u64,
}

/// The latest sampled utilisation and rate.
#[derive(Debug)]
pub struct Reporter {
    source: NodeCpu,
    util: AtomicU64,
    rps: AtomicU64,
}

/// The header value for a utilisation and a rate.
pub fn header_value(util: f64, rps: f64) -> String {
    format!("TEXT cpu_utilization={util:.4},rps_fractional={rps:.3}")
}

/// Utilisation (0..1) from two usage readings `dt` apart.
pub fn utilisation(ns0: u64, ns1: u64, dt: Duration, capacity_millicores: u64) -> f64 {
    let avail = dt.as_secs_f64() * capacity_millicores as f64 / 1000.0;
    if avail <= 0.0 {
        return 0.0;
    }
    (ns1.saturating_sub(ns0) as f64 / 1e9 / avail).clamp(0.0, 1.0)
}

impl Reporter {
    /// A reporter for a node; nothing sampled yet.
    pub fn new(source: NodeCpu) -> Arc<Self> {
        Arc::new(Reporter {
            source,
            util: AtomicU64::new(0),
            rps: AtomicU64::new(0),
        })
    }

    /// The current header value, once a sample exists.
    pub fn header(&self) -> Option<String> {
        let util = f64::from_bits(self.util.load(Ordering::Relaxed));
        let rps = f64::from_bits(self.rps.load(Ordering::Relaxed));
        (rps > 0.0).then(|| header_value(util, rps))
    }

    fn read_ns(&self) -> Option<u64> {
        std::fs::read_to_string(&self.source.usage_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Sample every [`PERIOD`] on a thread of its own, for the life of the
    /// process; `served` counts the pod's served requests.
    pub fn spawn(self: &Arc<Self>, served: Arc<AtomicU64>) {
        let me = self.clone();
        std::thread::spawn(move || {
            let mut prev = (Instant::now(), me.read_ns(), served.load(Ordering::Relaxed));
            loop {
                std::thread::sleep(PERIOD);
                let now = (Instant::now(), me.read_ns(), served.load(Ordering::Relaxed));
                let dt = now.0.duration_since(prev.0);
                if let (Some(a), Some(b)) = (prev.1, now.1) {
                    let u = utilisation(a, b, dt, me.source.capacity_millicores);
                    me.util.store(u.to_bits(), Ordering::Relaxed);
                }
                let rps = now.2.saturating_sub(prev.2) as f64 / dt.as_secs_f64().max(1e-3);
                me.rps.store(rps.to_bits(), Ordering::Relaxed);
                prev = now;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utilisation_is_a_fraction_of_capacity() {
        // 250 ms of CPU in 1 s on a 500m node: 50%.
        let u = utilisation(0, 250_000_000, Duration::from_secs(1), 500);
        assert!((u - 0.5).abs() < 1e-9);
        assert_eq!(utilisation(5, 0, Duration::from_secs(1), 500), 0.0);
        assert_eq!(
            utilisation(0, u64::MAX / 2, Duration::from_secs(1), 500),
            1.0
        );
        assert_eq!(
            header_value(0.1, 10.0),
            "TEXT cpu_utilization=0.1000,rps_fractional=10.000"
        );
    }

    #[test]
    fn the_header_waits_for_a_sample_and_then_follows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("cpuacct.usage");
        std::fs::write(&f, "0\n").unwrap();
        let r = Reporter::new(NodeCpu {
            usage_file: f.clone(),
            capacity_millicores: 1000,
        });
        assert_eq!(r.header(), None);
        let served = Arc::new(AtomicU64::new(0));
        r.spawn(served.clone());
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut ns = 0u64;
        while r.header().is_none() && Instant::now() < deadline {
            // 10 requests and 20 ms of CPU per 50 ms: 40% of a 1000m node.
            served.fetch_add(10, Ordering::Relaxed);
            ns += 20_000_000;
            std::fs::write(&f, format!("{ns}\n")).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
        let h = r.header().unwrap();
        assert!(h.starts_with("TEXT cpu_utilization=0."), "{h}");
        assert!(h.contains(",rps_fractional="), "{h}");
    }
}
