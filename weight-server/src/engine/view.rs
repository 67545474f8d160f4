//! Read-only views of the engine for the admin API: `GET /admin/state`
//! ([`StateBody`]) and `GET /admin/explain/{service}` ([`ExplainBody`]).

use mplb_wire::admin::{EngineSettings, ExplainBody, NodeState, PodInputs, StateBody};

use super::{Engine, EngineConfig};
use crate::balance;

impl EngineConfig {
    /// The tunables as `GET /admin/state` shows them.
    pub fn settings(&self) -> EngineSettings {
        EngineSettings {
            damping: self.weights.damping,
            dead_band: self.weights.dead_band,
            ttl_ms: self.weights.ttl_ms,
            ewma_half_life_ms: self.ewma_half_life_ms,
            ewma_reset_step: self.ewma_reset_step,
            report_max_age_ms: self.report_max_age_ms,
            report_debounce_ms: self.report_debounce_ms,
            optimal: self.optimal.clone(),
        }
    }
}

impl Engine {
    /// `GET /admin/explain/{service}`; `None` for an unknown service.
    pub fn explain(&self, service: &str) -> Option<ExplainBody> {
        let fqdn = self.resolve_service(service)?;
        let topo = self.topology()?;
        let now = self.now_ms();
        let core = self.core();
        let cpu = core.reports.cpu_view(&topo, now);
        let svc = topo.services.get(&fqdn)?;
        let served = core.builder.current();
        let figures = balance::figures(&topo, &cpu, &self.cfg.optimal);
        let balance = figures
            .explain(
                &topo,
                &fqdn,
                served.as_ref().map(|s| balance::age_s(&s.table, now)),
                core.moved.get(&fqdn).copied().unwrap_or(0.0),
            )
            .map(|mut b| {
                b.admit = served
                    .as_ref()
                    .and_then(|s| s.table.services.get(&fqdn))
                    .and_then(|s| s.admit);
                b
            });
        let inputs = topo
            .pods
            .values()
            .filter(|p| p.service == fqdn)
            .map(|p| {
                let node = cpu.nodes.get(&p.node);
                let inputs = PodInputs {
                    node: p.node.clone(),
                    ready: p.ready,
                    drained: core.admin.drains.contains(&p.name),
                    pod_cpu_millicores: cpu.pods.get(&p.name).copied(),
                    node_known: node.is_some(),
                    node_cpu: node.copied(),
                    node_report_age_ms: core.reports.age_ms(&p.node, now),
                };
                (p.name.clone(), inputs)
            })
            .collect();
        Some(ExplainBody {
            tenant: svc.tenant.clone(),
            fair_share_millicores: topo.fair_share(&svc.tenant),
            policy: core.admin.policy,
            operator_weights: core.admin.static_weights.get(&fqdn).cloned(),
            inputs,
            policy_explain: core.explain.get(&fqdn),
            round: core.builder.rounds().get(&fqdn).cloned(),
            policy_error: core.last_error.clone(),
            served: served.and_then(|s| s.table.services.get(&fqdn).cloned()),
            balance,
            service: fqdn,
        })
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
    pub fn state(&self) -> StateBody {
        let topo = self.topology();
        let now = self.now_ms();
        let core = self.core();
        let nodes = core
            .reports
            .nodes()
            .iter()
            .map(|(n, st)| {
                let node = NodeState {
                    known: topo.as_ref().is_some_and(|t| t.nodes.contains_key(n)),
                    fresh: core.reports.is_fresh(n, now),
                    report_age_ms: now.saturating_sub(st.last_report_ms),
                    capacity_millicores: st.capacity_millicores,
                    used_millicores: st.used.value,
                    pods: st.pods.iter().map(|(p, e)| (p.clone(), e.value)).collect(),
                    unknown_pods: st.unknown_pods.clone(),
                };
                (n.clone(), node)
            })
            .collect();
        StateBody {
            policy: core.admin.policy,
            static_weights: core.admin.static_weights.clone(),
            drains: core.admin.drains.clone(),
            topology: topo.as_deref().cloned(),
            nodes,
            policy_error: core.last_error.clone(),
            weights: core.builder.current().map(|s| s.table.clone()),
            config: self.cfg.settings(),
        }
    }
}
