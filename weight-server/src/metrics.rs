//! Prometheus/OpenMetrics metrics (prometheus-client): reports
//! accepted and rejected by reason, solve time, table version, per-pod
//! weight, per-node CPU, unknown pods, and the balance figures of
//! [`crate::balance`] (per service max/avg node CPU, per tenant
//! served/entitled, Jain's index, table age, weight moved per round).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::admission::Verdict;
use crate::balance::Figures;
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
    unknown_pods: Gauge,
    aliases_dropped: Gauge,
    solve_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    table_version: Gauge,
    pod_weight: Family<Labels, FloatGauge>,
    node_used: Family<Labels, FloatGauge>,
    node_capacity: Family<Labels, FloatGauge>,
    service_max_over_avg: Family<Labels, FloatGauge>,
    tenant_served: Family<Labels, FloatGauge>,
    tenant_entitled: Family<Labels, FloatGauge>,
    tenant_ratio: Family<Labels, FloatGauge>,
    tenant_admit: Family<Labels, FloatGauge>,
    tenant_offered: Family<Labels, FloatGauge>,
    jain: FloatGauge,
    table_age: FloatGauge,
    moved: Family<Labels, FloatGauge>,
    moved_round: FloatGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric registered under the `mplb` prefix, all at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mplb");
        let m = Metrics {
            reports_accepted: Counter::default(),
            reports_rejected: Family::default(),
            unknown_pods: Gauge::default(),
            aliases_dropped: Gauge::default(),
            solve_seconds: Family::new_with_constructor(solve_histogram),
            table_version: Gauge::default(),
            pod_weight: Family::default(),
            node_used: Family::default(),
            node_capacity: Family::default(),
            service_max_over_avg: Family::default(),
            tenant_served: Family::default(),
            tenant_entitled: Family::default(),
            tenant_ratio: Family::default(),
            tenant_admit: Family::default(),
            tenant_offered: Family::default(),
            jain: FloatGauge::default(),
            table_age: FloatGauge::default(),
            moved: Family::default(),
            moved_round: FloatGauge::default(),
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
        let balance: [(&str, &str, &Family<Labels, FloatGauge>); 7] = [
            (
                "tenant_admit_fraction",
                "Fraction of a tenant's requests entry gateways let in (admission; present while it runs)",
                &m.tenant_admit,
            ),
            (
                "tenant_offered_millicores",
                "A tenant's CPU demand if every request were let in, as admission estimates it",
                &m.tenant_offered,
            ),
            (
                "service_node_cpu_max_over_avg",
                "Busiest over average use (fraction of capacity) of the known nodes of a service's ready pods",
                &m.service_max_over_avg,
            ),
            (
                "tenant_served_millicores",
                "CPU a tenant's pods use on nodes with a fresh report",
                &m.tenant_served,
            ),
            (
                "tenant_entitled_millicores",
                "min(fair share, demand) of a tenant; demand is at least the fair share when throttled",
                &m.tenant_entitled,
            ),
            (
                "tenant_served_over_entitled",
                "A tenant's served over entitled CPU (absent when entitled is 0)",
                &m.tenant_ratio,
            ),
            (
                "service_weight_moved",
                "Sum of |weight change| of a service's pods in the last round",
                &m.moved,
            ),
        ];
        for (name, help, family) in balance {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "tenant_fairness_jain",
            "Jain's index over tenants' served/entitled capped at 1 (0 when no tenant is entitled)",
            m.jain.clone(),
        );
        registry.register(
            "table_age_seconds",
            "Seconds since the served weights table was built",
            m.table_age.clone(),
        );
        registry.register(
            "round_weight_moved",
            "Sum of |weight change| over every service in the last round",
            m.moved_round.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Count a host report taken into the engine.
    pub fn report_accepted(&self) {
        self.reports_accepted.inc();
    }

    /// Count a host report refused, by reason.
    pub fn report_rejected(&self, reason: &str) {
        self.reports_rejected
            .get_or_create(&labels(&[("reason", reason)]))
            .inc();
    }

    /// Pods reported by host agents that the topology does not know.
    pub fn set_unknown_pods(&self, n: usize) {
        self.unknown_pods.set(n as i64);
    }

    /// How many short aliases the topology left out as ambiguous.
    pub fn set_aliases_dropped(&self, n: usize) {
        self.aliases_dropped.set(n as i64);
    }

    /// How long one policy's solve took this round.
    pub fn observe_solve(&self, policy: &str, seconds: f64) {
        self.solve_seconds
            .get_or_create(&labels(&[("policy", policy)]))
            .observe(seconds);
    }

    /// A node's capacity and smoothed use, in millicores.
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

    /// Record a round's balance figures (replaces the previous round's).
    pub fn set_balance(&self, f: &Figures) {
        self.service_max_over_avg.clear();
        for (svc, s) in &f.services {
            if let Some(r) = s.max_over_avg {
                self.service_max_over_avg
                    .get_or_create(&labels(&[("service", svc)]))
                    .set(r);
            }
        }
        self.tenant_served.clear();
        self.tenant_entitled.clear();
        self.tenant_ratio.clear();
        for (name, t) in &f.tenants {
            let l = labels(&[("tenant", name)]);
            self.tenant_served
                .get_or_create(&l)
                .set(t.served_millicores);
            self.tenant_entitled
                .get_or_create(&l)
                .set(t.entitled_millicores);
            if let Some(r) = t.served_over_entitled {
                self.tenant_ratio.get_or_create(&l).set(r);
            }
        }
        self.jain.set(f.jain.unwrap_or(0.0));
    }

    /// Record admission's round: per tenant its offered demand and the
    /// fraction let in; empty when admission is off or not running.
    pub fn set_admission(&self, verdicts: &std::collections::BTreeMap<String, Verdict>) {
        self.tenant_admit.clear();
        self.tenant_offered.clear();
        for (tenant, v) in verdicts {
            let l = labels(&[("tenant", tenant)]);
            self.tenant_admit.get_or_create(&l).set(v.admit);
            self.tenant_offered.get_or_create(&l).set(v.offered);
        }
    }

    /// Record what a round moved, per service FQDN.
    pub fn set_moved(&self, moved: &std::collections::BTreeMap<String, f64>) {
        self.moved.clear();
        for (svc, m) in moved {
            self.moved
                .get_or_create(&labels(&[("service", svc)]))
                .set(*m);
        }
        self.moved_round.set(moved.values().sum());
    }

    /// The served table's age, set just before rendering.
    pub fn set_table_age(&self, seconds: f64) {
        self.table_age.set(seconds);
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
