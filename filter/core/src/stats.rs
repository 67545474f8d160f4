//! Proxy stats: per destination pod, requests, 5xx (or no response) and
//! latency since the last poll.
//!
//! Each VM counts into [`LocalStats`] (a counter per service and pod index of
//! the table, reached by indexing: no hashing or allocation per request).
//! Requests are all counted; errors and latency come from the responses the
//! pod's [`Sampler`] picked to observe (all of them under light traffic),
//! each observed error counting for its sampling period. The VM, on its tick, merges the counts into one shared-data aggregate with
//! CAS. The lease holder takes the aggregate (CAS swap with an
//! empty one) and sends it as `POST {stats_path}` with a `ProxyStats` body.

use std::collections::BTreeMap;

use mplb_wire::{MAX_STATS_PODS, PodStats, ProxyStats};
use serde::{Deserialize, Serialize};

use crate::host::Host;
use crate::index::TableIndex;
use crate::sample::Sampler;

/// The shared-data key of the aggregate.
pub const STATS_KEY: &str = "mplb.v1.stats";
const CAS_TRIES: usize = 4;

/// One pod's counts in one VM.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    /// Stamped requests.
    pub requests: u64,
    /// Errors (5xx or no response), estimated from the observed ones.
    pub errors: u64,
    /// Sum of the timed latencies, µs.
    pub latency_sum_us: u64,
    /// Requests timed.
    pub latency_count: u64,
}

/// One VM's counters for one table version.
#[derive(Debug, Default)]
pub struct LocalStats {
    version: u64,
    /// By service index, then pod index (of the table `version`); a counter
    /// with no requests is empty.
    counters: Vec<Vec<Counter>>,
    /// Whether any counter has requests.
    counted: bool,
    /// Which responses to observe, by service and pod index like `counters`
    /// (kept across flushes: a pod's period follows its traffic).
    samplers: Vec<Vec<Sampler>>,
}

/// What the end of one stamped request adds to its pod's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Requests its status stands for (its sampling period, or 1 when every
    /// status is read); 0 when the status was not read.
    pub weight: u32,
    /// The status when read; `None` when no response came.
    pub status: Option<u16>,
    /// Request headers to the end of the stream, in µs, when timed.
    pub latency_us: Option<u64>,
}

/// A 5xx, or no response at all.
pub fn is_error(status: Option<u16>) -> bool {
    status.is_none_or(|s| s >= 500)
}

/// The cross-VM aggregate in shared data.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Aggregate {
    since_ms: u64,
    pods: Vec<PodStats>,
}

impl LocalStats {
    /// Whether to observe the response of a request just stamped to `pod`
    /// of `service` under table `version`: the number of requests it stands
    /// for, 0 if not (`budget`: per tick; `random`: a uniform u32).
    pub fn draw(
        &mut self,
        version: u64,
        service: u32,
        pod: u32,
        budget: u32,
        random: impl FnOnce() -> u32,
    ) -> u32 {
        if version != self.version {
            // Counted under no sampler (and dropped by `record`).
            return 1;
        }
        cell(&mut self.samplers, service, pod).draw(budget, random)
    }

    /// A new tick: each pod's sampling period follows its last tick.
    pub fn tick(&mut self, budget: u32) {
        for sampler in self.samplers.iter_mut().flatten() {
            sampler.tick(budget);
        }
    }

    /// Count one finished request to `pod` of `service` under table `version`.
    pub fn record(&mut self, version: u64, service: u32, pod: u32, outcome: Outcome) {
        if version != self.version {
            // Counted under a table that has been replaced: indexes differ.
            return;
        }
        let c = cell(&mut self.counters, service, pod);
        self.counted = true;
        c.requests += 1;
        if outcome.weight > 0 && is_error(outcome.status) {
            c.errors = c.errors.saturating_add(u64::from(outcome.weight));
        }
        if let Some(us) = outcome.latency_us {
            c.latency_sum_us = c.latency_sum_us.saturating_add(us);
            c.latency_count += 1;
        }
    }

    /// Nothing counted since the last flush.
    pub fn is_empty(&self) -> bool {
        !self.counted
    }

    /// Forget every count (the rows stay allocated for the same table).
    fn clear(&mut self) {
        for row in &mut self.counters {
            row.fill(Counter::default());
        }
        self.counted = false;
    }

    /// Merge the counters into the shared aggregate (named with `index`, the
    /// table they were counted under) and start counting for `next_version`.
    /// If the CAS keeps failing the counts stay local for the next tick.
    pub fn flush(&mut self, host: &dyn Host, index: Option<&TableIndex>, next_version: u64) {
        if let Some(index) = index.filter(|i| i.version == self.version)
            && self.counted
        {
            let mut merged = false;
            for _ in 0..CAS_TRIES {
                let (mut agg, cas) = read(host, host.now_ms());
                self.merge_into(&mut agg, index);
                let Ok(body) = serde_json::to_vec(&agg) else {
                    break;
                };
                if host.shared_set(STATS_KEY, &body, cas).is_ok() {
                    merged = true;
                    break;
                }
            }
            if merged {
                self.clear();
            }
        }
        if next_version != self.version {
            self.counters.clear();
            self.samplers.clear();
            self.counted = false;
            self.version = next_version;
        }
    }

    fn merge_into(&self, agg: &mut Aggregate, index: &TableIndex) {
        let mut by_key: BTreeMap<(String, String), PodStats> = agg
            .pods
            .drain(..)
            .map(|p| ((p.service.clone(), p.pod.clone()), p))
            .collect();
        let counted = self.counters.iter().enumerate().flat_map(|(s, row)| {
            row.iter()
                .enumerate()
                .filter(|(_, c)| c.requests > 0)
                .map(move |(p, c)| (s, p, c))
        });
        for (s, p, c) in counted {
            let Some(svc) = index.service(s as u32) else {
                continue;
            };
            let Some(pod) = svc.pods.get(p) else {
                continue;
            };
            let key = (svc.fqdn.clone(), pod.name.clone());
            if !by_key.contains_key(&key) && by_key.len() >= MAX_STATS_PODS {
                continue;
            }
            let e = by_key.entry(key).or_insert_with(|| PodStats {
                service: svc.fqdn.clone(),
                pod: pod.name.clone(),
                ..PodStats::default()
            });
            e.requests = e.requests.saturating_add(c.requests);
            // An estimate can overshoot in a short window; the truth cannot.
            e.errors = e.errors.saturating_add(c.errors.min(c.requests));
            e.latency_sum_us = e.latency_sum_us.saturating_add(c.latency_sum_us);
            e.latency_count = e.latency_count.saturating_add(c.latency_count);
        }
        agg.pods = by_key.into_values().collect();
    }
}

/// The entry of `pod` of `service` in per-pod rows, grown on first use.
fn cell<T: Clone + Default>(rows: &mut Vec<Vec<T>>, service: u32, pod: u32) -> &mut T {
    let (s, p) = (service as usize, pod as usize);
    if rows.len() <= s {
        rows.resize_with(s + 1, Vec::new);
    }
    let row = &mut rows[s];
    if row.len() <= p {
        row.resize(p + 1, T::default());
    }
    &mut row[p]
}

/// An HTTP `:status` value: three ASCII digits (anything else: `None`).
pub fn parse_status(value: &[u8]) -> Option<u16> {
    match *value {
        [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// Take the aggregate (leaving an empty one that starts now). `None` when
/// there is nothing to send or another VM changed it meanwhile.
pub fn take_shared(host: &dyn Host, proxy: &str) -> Option<ProxyStats> {
    let now = host.now_ms();
    let (agg, cas) = read(host, now);
    if agg.pods.is_empty() {
        return None;
    }
    let empty = serde_json::to_vec(&Aggregate {
        since_ms: now,
        pods: Vec::new(),
    })
    .ok()?;
    host.shared_set(STATS_KEY, &empty, cas).ok()?;
    Some(ProxyStats {
        proxy: proxy.to_string(),
        window_ms: now.saturating_sub(agg.since_ms),
        pods: agg.pods,
    })
}

/// The aggregate and its CAS (0 if absent; unreadable counts as empty).
fn read(host: &dyn Host, now: u64) -> (Aggregate, u32) {
    match host.shared_get(STATS_KEY) {
        Some((body, cas)) => (
            serde_json::from_slice(&body).unwrap_or(Aggregate {
                since_ms: now,
                pods: Vec::new(),
            }),
            cas,
        ),
        None => (
            Aggregate {
                since_ms: now,
                pods: Vec::new(),
            },
            0,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::TableIndex;
    use crate::mock::MockProxy;
    use mplb_wire::WeightsTable;
    use mplb_wire::testing::TableBuilder;

    fn index() -> TableIndex {
        let body = TableBuilder::new(5)
            .service("backend.default.svc.cluster.local", &[])
            .pod("b-0", "10.0.0.1:80", 1.0)
            .pod("b-1", "10.0.0.2:80", 1.0)
            .json();
        TableIndex::build(&WeightsTable::parse(body.as_bytes()).unwrap())
    }

    /// An observed response (weight 1).
    fn seen(status: Option<u16>, latency_us: Option<u64>) -> Outcome {
        Outcome {
            weight: 1,
            status,
            latency_us,
        }
    }

    #[test]
    fn an_observed_error_counts_for_its_period_and_unread_statuses_for_none() {
        let proxy = MockProxy::new(0);
        let a = proxy.vm();
        let mut l = LocalStats::default();
        l.flush(&a, None, 5);
        let unread = Outcome::default();
        for _ in 0..9 {
            l.record(5, 0, 0, unread);
        }
        let error = Outcome {
            weight: 10,
            status: Some(503),
            latency_us: Some(40),
        };
        l.record(5, 0, 0, error);
        // Pod b-1: a period-4 error among 2 requests: capped at 2.
        l.record(5, 0, 1, unread);
        l.record(5, 0, 1, Outcome { weight: 4, ..error });
        l.flush(&a, Some(&index()), 5);
        let s = take_shared(&a, "p").unwrap();
        s.validate().unwrap();
        let got: Vec<_> = s
            .pods
            .iter()
            .map(|p| (p.pod.as_str(), p.requests, p.errors, p.latency_count))
            .collect();
        assert_eq!(got, [("b-0", 10, 10, 1), ("b-1", 2, 2, 1)]);
    }

    #[test]
    fn samplers_follow_each_pod_and_restart_with_a_table() {
        let mut l = LocalStats::default();
        l.flush(&MockProxy::new(0).vm(), None, 5);
        // Pod 0 has heavy traffic, pod 1 light: only pod 0 is sampled.
        for _ in 0..100 {
            l.draw(5, 0, 0, 4, || 0);
        }
        assert_eq!(l.draw(5, 0, 1, 4, || 0), 1);
        l.tick(4);
        assert_eq!(l.draw(5, 0, 0, 4, || 0), 25, "period 100 / 4");
        assert_eq!(l.draw(5, 0, 0, 4, || u32::MAX), 0);
        assert_eq!(l.draw(5, 0, 1, 4, || u32::MAX), 1);
        // Another table version: no sampler (observed, then dropped).
        assert_eq!(l.draw(6, 0, 0, 4, || u32::MAX), 1);
        l.flush(&MockProxy::new(0).vm(), None, 6);
        assert_eq!(l.draw(6, 0, 0, 4, || u32::MAX), 1, "period back to 1");
    }

    #[test]
    fn counts_from_two_vms_are_aggregated_and_taken_once() {
        let proxy = MockProxy::new(10_000);
        let (a, b) = (proxy.vm(), proxy.vm());
        let t = index();
        let (mut la, mut lb) = (LocalStats::default(), LocalStats::default());
        la.flush(&a, None, 5);
        lb.flush(&b, None, 5);
        la.record(5, 0, 0, seen(Some(200), Some(1000)));
        la.record(5, 0, 0, seen(Some(503), Some(3000)));
        la.record(5, 0, 1, seen(None, None));
        lb.record(5, 0, 0, seen(Some(200), Some(2000)));
        lb.record(4, 0, 1, seen(Some(200), Some(2000))); // old table: dropped
        la.flush(&a, Some(&t), 5);
        lb.flush(&b, Some(&t), 5);
        assert!(la.is_empty() && lb.is_empty());
        proxy.advance(700);
        let s = take_shared(&a, "frontend").unwrap();
        s.validate().unwrap();
        assert_eq!(s.window_ms, 700);
        let b0 = s.pods.iter().find(|p| p.pod == "b-0").unwrap();
        assert_eq!(
            (b0.requests, b0.errors, b0.latency_sum_us, b0.latency_count),
            (3, 1, 6000, 3)
        );
        assert_eq!(b0.service, "backend.default.svc.cluster.local");
        let b1 = s.pods.iter().find(|p| p.pod == "b-1").unwrap();
        assert_eq!((b1.requests, b1.errors, b1.latency_count), (1, 1, 0));
        assert!(take_shared(&b, "frontend").is_none(), "taken twice");
    }

    #[test]
    fn statuses_are_three_digits() {
        assert_eq!(parse_status(b"200"), Some(200));
        assert_eq!(parse_status(b"503"), Some(503));
        assert_eq!(parse_status(b"101"), Some(101));
        for bad in [&b""[..], b"20", b"2000", b"099", b"2x0", b" 200", b"\xff00"] {
            assert_eq!(parse_status(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_table_change_drops_counts_that_cannot_be_named() {
        let proxy = MockProxy::new(0);
        let a = proxy.vm();
        let mut l = LocalStats::default();
        l.flush(&a, None, 5);
        l.record(5, 0, 0, seen(Some(200), Some(10)));
        l.flush(&a, None, 6); // no index for version 5 any more
        assert!(l.is_empty());
        l.record(6, 0, 0, seen(Some(200), Some(10)));
        assert!(!l.is_empty());
        assert!(take_shared(&a, "p").is_none());
    }
}
