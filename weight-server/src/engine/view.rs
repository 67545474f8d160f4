//! Read-only views of the engine for the admin API: `GET /admin/state`
//! and `GET /admin/explain/{service}`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::Engine;
use crate::balance;

impl Engine {
    /// `GET /admin/explain/{service}`.
    pub fn explain(&self, service: &str) -> Option<Value> {
        let fqdn = self.resolve_service(service)?;
        let topo = self.topology()?;
        let now = self.now_ms();
        let core = self.core();
        let cpu = core.reports.cpu_view(&topo, now);
        let traffic = core.stats.traffic(now).remove(&fqdn).unwrap_or_default();
        let svc = topo.services.get(&fqdn)?;
        let served = core.builder.current();
        let figures = balance::figures(&topo, &cpu, self.cfg.optimal.saturation_threshold);
        let balance = figures.explain(
            &topo,
            &fqdn,
            served.as_ref().map(|s| balance::age_s(&s.table, now)),
            core.moved.get(&fqdn).copied().unwrap_or(0.0),
        );
        let pods: BTreeMap<&str, Value> = topo
            .pods
            .values()
            .filter(|p| p.service == fqdn)
            .map(|p| {
                let node = cpu.nodes.get(&p.node);
                (p.name.as_str(), json!({
                    "node": p.node, "ready": p.ready, "drained": core.admin.drains.contains(&p.name),
                    "pod_cpu_millicores": cpu.pods.get(&p.name),
                    "node_known": node.is_some(), "node_cpu": node,
                    "node_report_age_ms": core.reports.age_ms(&p.node, now),
                    "traffic": traffic.get(&p.name),
                }))
            })
            .collect();
        Some(json!({
            "service": fqdn, "tenant": svc.tenant, "fair_share_millicores": topo.fair_share(&svc.tenant),
            "policy": core.admin.policy, "operator_weights": core.admin.static_weights.get(&fqdn),
            "inputs": pods, "policy_explain": core.explain.get(&fqdn),
            "round": core.builder.rounds().get(&fqdn), "policy_error": core.last_error,
            "served": served.and_then(|s| s.table.services.get(&fqdn).cloned()),
            "balance": balance,
        }))
    }

    /// `/metrics`: OpenMetrics text, the served table's age set to now.
    pub fn render_metrics(&self) -> Result<String, std::fmt::Error> {
        if let Some(t) = self.table() {
            self.metrics
                .set_table_age(balance::age_s(&t.table, self.now_ms()));
        }
        self.metrics.render()
    }

    /// `GET /admin/state`.
    pub fn state(&self) -> Value {
        let topo = self.topology();
        let now = self.now_ms();
        let core = self.core();
        let nodes: BTreeMap<&str, Value> = core
            .reports
            .nodes()
            .iter()
            .map(|(n, st)| {
                (n.as_str(), json!({
                    "known": topo.as_ref().is_some_and(|t| t.nodes.contains_key(n)),
                    "fresh": core.reports.is_fresh(n, now),
                    "report_age_ms": now.saturating_sub(st.last_report_ms),
                    "capacity_millicores": st.capacity_millicores,
                    "used_millicores": st.used.value,
                    "pods": st.pods.iter().map(|(p, e)| (p.clone(), e.value)).collect::<BTreeMap<_, _>>(),
                    "unknown_pods": st.unknown_pods,
                }))
            })
            .collect();
        json!({
            "policy": core.admin.policy,
            "static_weights": core.admin.static_weights,
            "drains": core.admin.drains,
            "topology": topo.as_deref(),
            "nodes": nodes,
            "traffic": core.stats.traffic(now),
            "policy_error": core.last_error,
            "weights": core.builder.current().map(|s| s.table.clone()),
            "config": {"damping": self.cfg.weights.damping, "dead_band": self.cfg.weights.dead_band,
                       "ttl_ms": self.cfg.weights.ttl_ms, "ewma_half_life_ms": self.cfg.ewma_half_life_ms,
                       "report_max_age_ms": self.cfg.report_max_age_ms,
                       "report_debounce_ms": self.cfg.report_debounce_ms, "optimal": self.cfg.optimal},
        })
    }
}
