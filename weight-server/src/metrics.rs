//! Prometheus/OpenMetrics metrics (prometheus-client): reports and stats
//! accepted and rejected by reason, solve time, table version, per-pod
//! weight, per-node CPU, unknown pods.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::weights::Served;

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn solve_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 10))
}

/// Every metric of the server, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reports_accepted: Counter,
    reports_rejected: Family<Labels, Counter>,
    stats_accepted: Counter,
    stats_rejected: Family<Labels, Counter>,
    unknown_pods: Gauge,
    aliases_dropped: Gauge,
    solve_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    table_version: Gauge,
    pod_weight: Family<Labels, FloatGauge>,
    node_used: Family<Labels, FloatGauge>,
    node_capacity: Family<Labels, FloatGauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mplb");
        let m = Metrics {
            reports_accepted: Counter::default(),
            reports_rejected: Family::default(),
            stats_accepted: Counter::default(),
            stats_rejected: Family::default(),
            unknown_pods: Gauge::default(),
            aliases_dropped: Gauge::default(),
            solve_seconds: Family::new_with_constructor(solve_histogram),
            table_version: Gauge::default(),
            pod_weight: Family::default(),
            node_used: Family::default(),
            node_capacity: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "reports_accepted",
            "Host reports accepted",
            m.reports_accepted.clone(),
        );
        registry.register(
            "reports_rejected",
            "Host reports rejected, by reason",
            m.reports_rejected.clone(),
        );
        registry.register(
            "stats_accepted",
            "Proxy stats accepted",
            m.stats_accepted.clone(),
        );
        registry.register(
            "stats_rejected",
            "Proxy stats rejected, by reason",
            m.stats_rejected.clone(),
        );
        registry.register(
            "unknown_pods",
            "Reported pods the topology does not know",
            m.unknown_pods.clone(),
        );
        registry.register(
            "aliases_dropped",
            "Short aliases left out because services of several namespaces claim them",
            m.aliases_dropped.clone(),
        );
        registry.register(
            "solve_seconds",
            "Time to compute a policy decision",
            m.solve_seconds.clone(),
        );
        registry.register(
            "table_version",
            "Version of the served weights table",
            m.table_version.clone(),
        );
        registry.register(
            "pod_weight",
            "Weight of a pod in the served table",
            m.pod_weight.clone(),
        );
        registry.register(
            "node_cpu_used_millicores",
            "Smoothed CPU use of a node",
            m.node_used.clone(),
        );
        registry.register(
            "node_cpu_capacity_millicores",
            "Reported CPU capacity of a node",
            m.node_capacity.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn report_accepted(&self) {
        self.reports_accepted.inc();
    }

    pub fn report_rejected(&self, reason: &str) {
        self.reports_rejected
            .get_or_create(&labels(&[("reason", reason)]))
            .inc();
    }

    pub fn stats_accepted(&self) {
        self.stats_accepted.inc();
    }

    pub fn stats_rejected(&self, reason: &str) {
        self.stats_rejected
            .get_or_create(&labels(&[("reason", reason)]))
            .inc();
    }

    pub fn set_unknown_pods(&self, n: usize) {
        self.unknown_pods.set(n as i64);
    }

    /// How many short aliases the topology left out as ambiguous.
    pub fn set_aliases_dropped(&self, n: usize) {
        self.aliases_dropped.set(n as i64);
    }

    pub fn observe_solve(&self, policy: &str, seconds: f64) {
        self.solve_seconds
            .get_or_create(&labels(&[("policy", policy)]))
            .observe(seconds);
    }

    pub fn set_node_cpu(&self, node: &str, capacity: f64, used: f64) {
        let l = labels(&[("node", node)]);
        self.node_capacity.get_or_create(&l).set(capacity);
        self.node_used.get_or_create(&l).set(used);
    }

    /// Record a newly published table (replaces every per-pod weight).
    pub fn set_table(&self, served: &Served) {
        self.table_version.set(served.table.version as i64);
        self.pod_weight.clear();
        for (svc, s) in &served.table.services {
            for e in &s.endpoints {
                self.pod_weight
                    .get_or_create(&labels(&[("service", svc), ("pod", &e.pod)]))
                    .set(e.weight);
            }
        }
    }

    /// OpenMetrics text.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openmetrics_text() {
        let m = Metrics::new();
        m.report_accepted();
        m.report_rejected("malformed");
        m.observe_solve("spare", 0.001);
        m.set_node_cpu("n1", 2000.0, 500.0);
        let text = m.render().unwrap();
        assert!(text.contains("mplb_reports_accepted_total 1"), "{text}");
        assert!(
            text.contains("mplb_reports_rejected_total{reason=\"malformed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("mplb_node_cpu_used_millicores{node=\"n1\"} 500.0"),
            "{text}"
        );
        assert!(
            text.contains("mplb_solve_seconds_count{policy=\"spare\"} 1"),
            "{text}"
        );
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
