//! The per-VM lookup structure built once per table version: every name a
//! destination may be called by → its service, and per service the endpoints
//! with cumulative weights (for the pick) and a pod-name map (for pinning).

use base64::Engine;
use mplb_wire::WeightsTable;

use crate::fasthash::FastMap;

/// One endpoint, with its session-header value pre-encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct PodEntry {
    /// The pod's name.
    pub name: String,
    /// Its `ip:port`.
    pub address: String,
    /// `base64(ip:port)`, the value Envoy's header-based stateful session reads.
    pub session_value: String,
}

/// One service of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceEntry {
    /// The service's FQDN.
    pub fqdn: String,
    /// Its endpoints, in table order.
    pub pods: Vec<PodEntry>,
    /// The fraction of its new requests an admitting proxy lets in (the
    /// table's `admit`; 1 when absent): [`crate::admission`].
    pub admit: f64,
    cumulative: Vec<f64>,
    total: f64,
    /// The last endpoint with a positive weight (guard against rounding).
    last_positive: usize,
    by_pod: FastMap<String, u32>,
}

/// The lookup structure of one table version.
#[derive(Debug, Clone, PartialEq)]
pub struct TableIndex {
    /// The table's version.
    pub version: u64,
    /// The table's own time-to-live.
    pub ttl_ms: u64,
    names: FastMap<String, u32>,
    services: Vec<ServiceEntry>,
}

impl TableIndex {
    /// Build from a validated table (names lowercased for matching).
    pub fn build(table: &WeightsTable) -> TableIndex {
        let mut names = FastMap::default();
        let mut services = Vec::with_capacity(table.services.len());
        for (fqdn, svc) in &table.services {
            let idx = services.len() as u32;
            names.insert(fqdn.to_ascii_lowercase(), idx);
            for alias in &svc.aliases {
                names.insert(alias.to_ascii_lowercase(), idx);
            }
            let mut cumulative = Vec::with_capacity(svc.endpoints.len());
            let mut total = 0.0;
            let mut last_positive = 0;
            let mut pods = Vec::with_capacity(svc.endpoints.len());
            let mut by_pod =
                FastMap::with_capacity_and_hasher(svc.endpoints.len(), Default::default());
            for (i, ep) in svc.endpoints.iter().enumerate() {
                total += ep.weight;
                cumulative.push(total);
                if ep.weight > 0.0 {
                    last_positive = i;
                }
                by_pod.insert(ep.pod.clone(), i as u32);
                pods.push(PodEntry {
                    name: ep.pod.clone(),
                    address: ep.address.clone(),
                    session_value: base64::engine::general_purpose::STANDARD.encode(&ep.address),
                });
            }
            services.push(ServiceEntry {
                fqdn: fqdn.clone(),
                pods,
                admit: svc.admit_fraction(),
                cumulative,
                total,
                last_positive,
                by_pod,
            });
        }
        TableIndex {
            version: table.version,
            ttl_ms: table.ttl_ms,
            names,
            services,
        }
    }

    /// The service a host name (port already stripped) resolves to.
    pub fn lookup(&self, host: &str) -> Option<u32> {
        if host.bytes().any(|b| b.is_ascii_uppercase()) {
            self.names.get(&host.to_ascii_lowercase()).copied()
        } else {
            self.names.get(host).copied()
        }
    }

    /// The service at index `idx`.
    pub fn service(&self, idx: u32) -> Option<&ServiceEntry> {
        self.services.get(idx as usize)
    }
}

impl ServiceEntry {
    /// Index of a pod of this service by name.
    pub fn pod_index(&self, pod: &str) -> Option<u32> {
        self.by_pod.get(pod).copied()
    }

    /// The endpoints' weights, in table order.
    pub fn weights(&self) -> impl Iterator<Item = f64> + '_ {
        self.cumulative.iter().scan(0.0, |before, &c| {
            let w = c - *before;
            *before = c;
            Some(w)
        })
    }

    /// Pick an endpoint by weight from 64 random bits (an independent draw;
    /// the filter picks with [`crate::schedule`], and falls back to this).
    pub fn pick(&self, random: u64) -> u32 {
        // 53 random bits → a uniform float in [0, 1).
        let unit = (random >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        let target = unit * self.total;
        let i = self.cumulative.partition_point(|&c| c <= target);
        i.min(self.last_positive) as u32
    }
}

/// The host part of an `:authority` (`host`, `host:port`, `[v6]:port`).
pub fn authority_host(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mplb_wire::testing::TableBuilder;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    pub(crate) fn table(weights: &[f64]) -> WeightsTable {
        let mut t = TableBuilder::new(7).service(
            "backend.default.svc.cluster.local",
            &["backend", "backend.default"],
        );
        for (i, w) in weights.iter().enumerate() {
            t = t.pod(&format!("b-{i}"), &format!("10.0.0.{i}:80"), *w);
        }
        WeightsTable::parse(t.json().as_bytes()).unwrap()
    }

    #[test]
    fn pick_distribution_is_within_one_percent_over_100k_draws() {
        for weights in [
            &[0.6, 0.3, 0.1][..],
            &[5.0, 0.0, 1.0, 2.0],
            &[1.0],
            &[0.0, 3.0],
        ] {
            let index = TableIndex::build(&table(weights));
            let svc = index.service(0).unwrap();
            let mut rng = SmallRng::seed_from_u64(42);
            let mut counts = vec![0u64; weights.len()];
            let draws = 100_000;
            for _ in 0..draws {
                counts[svc.pick(rng.next_u64()) as usize] += 1;
            }
            let total: f64 = weights.iter().sum();
            for (i, w) in weights.iter().enumerate() {
                let got = counts[i] as f64 / draws as f64;
                let want = w / total;
                assert!(
                    (got - want).abs() < 0.01,
                    "{weights:?}: pod {i} got {got}, want {want}"
                );
                if *w == 0.0 {
                    assert_eq!(counts[i], 0, "zero-weight pod picked");
                }
            }
        }
    }

    #[test]
    fn extreme_random_values_stay_in_range_and_skip_zero_weights() {
        let index = TableIndex::build(&table(&[0.0, 1.0, 0.0]));
        let svc = index.service(0).unwrap();
        for r in [0, 1, u64::MAX, u64::MAX - 1, 1 << 63] {
            assert_eq!(svc.pick(r), 1);
        }
    }

    #[test]
    fn names_resolve_case_insensitively_and_pods_by_name() {
        let index = TableIndex::build(&table(&[1.0, 1.0]));
        for name in [
            "backend",
            "BACKEND",
            "backend.default",
            "backend.default.svc.cluster.local",
        ] {
            assert_eq!(index.lookup(name), Some(0), "{name}");
        }
        assert_eq!(index.lookup("other"), None);
        let svc = index.service(0).unwrap();
        assert_eq!(svc.pod_index("b-1"), Some(1));
        assert_eq!(svc.pod_index("b-9"), None);
        assert_eq!(svc.pods[0].session_value, "MTAuMC4wLjA6ODA=");
        assert_eq!(svc.admit, 1.0, "no admit: all");
    }

    #[test]
    fn a_services_admit_fraction_is_indexed() {
        let mut t = table(&[1.0]);
        if let Some(svc) = t.services.values_mut().next() {
            svc.admit = Some(0.25);
        }
        let index = TableIndex::build(&t);
        assert_eq!(index.service(0).map(|s| s.admit), Some(0.25));
    }

    #[test]
    fn authority_host_strips_the_port() {
        assert_eq!(authority_host("backend:8080"), "backend");
        assert_eq!(authority_host("backend"), "backend");
        assert_eq!(authority_host("[fd00::1]:80"), "[fd00::1]");
        assert_eq!(authority_host("[fd00::1"), "[fd00::1");
        assert_eq!(authority_host("a:b"), "a:b");
        assert_eq!(authority_host(""), "");
        assert_eq!(authority_host(":"), "");
    }
}
