//! The engine: the state behind every endpoint (reports, admin
//! state, the table builder) and the recompute round that turns topology +
//! CPU + admin state into a new table.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use mplb_wire::HostReport;
use tokio::sync::Notify;

use crate::admission::{Admission, AdmissionConfig};
use crate::balance;
use crate::calibration::{Calibration, CalibrationConfig};
use crate::clock::SharedClock;
use crate::metrics::Metrics;
use crate::persist::{AdminState, Store};
use crate::policy::optimal::OptimalConfig;
use crate::policy::optimal::model::Inputs;
use crate::policy::{self, Decision, Explain, Policy, PolicyKind, Round};
use crate::reports::{Reports, TooManyNodes};
use crate::topology::{Topology, TopologyRx};
use crate::weights::{Published, Served, TableBuilder, WeightsConfig};
use crate::{Error, Result};

mod rounds;
pub use rounds::recompute_loop;

mod view;

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Damping, dead band and the table's time-to-live.
    pub weights: WeightsConfig,
    /// Half-life of the CPU EWMA.
    pub ewma_half_life_ms: u64,
    /// A report this far (fraction of capacity) from a node's smoothed use
    /// resets the node's averages to the report; 0: never.
    pub ewma_reset_step: f64,
    /// A node whose last report is older than this is unknown.
    pub report_max_age_ms: u64,
    /// Knobs of the `optimal` policy.
    pub optimal: OptimalConfig,
    /// A host report triggers a round, at least this long after the last one
    /// (coalescing the agents' reports), when the policy's last decision was
    /// undamped; `None`: rounds on the interval only.
    pub report_debounce_ms: Option<u64>,
    /// Admission (with `optimal` only); `None`: off.
    pub admission: Option<AdmissionConfig>,
    /// Per-pod cost calibration of `optimal`'s weights; `None`: off.
    pub calibration: Option<CalibrationConfig>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            weights: WeightsConfig::default(),
            ewma_half_life_ms: 3_000,
            ewma_reset_step: 0.2,
            report_max_age_ms: 10_000,
            optimal: OptimalConfig::default(),
            report_debounce_ms: None,
            admission: None,
            calibration: None,
        }
    }
}

#[derive(Debug)]
struct Core {
    reports: Reports,
    admin: AdminState,
    /// The policy of `admin.policy`.
    policy: Arc<dyn Policy>,
    builder: TableBuilder,
    /// The last round's explain, built per service when asked for.
    explain: Explain,
    last_error: Option<String>,
    /// Per service FQDN: Σ |weight change| of the last round.
    moved: BTreeMap<String, f64>,
    /// The admission controller, when configured.
    admission: Option<Admission>,
    /// The cost calibration, when configured.
    calibration: Option<Calibration>,
}

/// Shared by the HTTP handlers and the recompute loop.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    clock: SharedClock,
    store: Store,
    topology: TopologyRx,
    core: Mutex<Core>,
    /// The served table: the builder's, read without the core lock.
    table: Published,
    /// The Prometheus metrics of `/metrics`.
    pub metrics: Metrics,
    /// Woken on admin changes so the next round runs at once.
    pub changed: Notify,
    /// Woken on every accepted host report (see
    /// [`EngineConfig::report_debounce_ms`]).
    pub reported: Notify,
    /// The last decision was undamped (its targets do not follow the
    /// split): reports trigger rounds. A damped policy moves a fraction per
    /// round, so extra rounds would make it swing: it keeps the interval.
    follows_reports: std::sync::atomic::AtomicBool,
}

/// Why an admin mutation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    /// The service or pod named does not exist (404).
    NotFound(String),
    #[error("{0}")]
    /// The request breaks a rule (422).
    Invalid(String),
    #[error("{0}")]
    /// Not possible yet, e.g. before the topology synced (503).
    Unavailable(String),
    #[error(transparent)]
    /// Persisting the admin state failed (500).
    Internal(#[from] Error),
}

impl Engine {
    /// Restore the admin state from `store` (or start from `initial`).
    pub fn new(
        cfg: EngineConfig,
        clock: SharedClock,
        store: Store,
        topology: TopologyRx,
        initial: PolicyKind,
    ) -> Result<Self> {
        let admin = match store.load()? {
            Some(saved) => {
                tracing::info!(path = ?store.path(), policy = %saved.policy, "restored admin state");
                saved
            }
            None => AdminState {
                policy: initial,
                ..AdminState::default()
            },
        };
        let now = clock.now_ms();
        let builder = TableBuilder::new(cfg.weights, now.max(1));
        let table = builder.published();
        let core = Core {
            reports: Reports::new(cfg.ewma_half_life_ms, cfg.report_max_age_ms)
                .with_reset_step(cfg.ewma_reset_step),
            policy: policy::for_kind(admin.policy, &cfg.optimal),
            admin,
            builder,
            explain: Explain::default(),
            last_error: None,
            moved: BTreeMap::new(),
            admission: cfg.admission.map(Admission::new),
            calibration: cfg.calibration.map(Calibration::new),
        };
        Ok(Engine {
            cfg,
            clock,
            store,
            topology,
            core: Mutex::new(core),
            table,
            metrics: Metrics::new(),
            changed: Notify::new(),
            reported: Notify::new(),
            follows_reports: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a host report should trigger a round: the policy's last
    /// decision was undamped (see [`EngineConfig::report_debounce_ms`]).
    pub fn follows_reports(&self) -> bool {
        self.follows_reports
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Now, from the engine's clock.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The newest topology, once synced.
    pub fn topology(&self) -> Option<Arc<Topology>> {
        self.topology.borrow().clone()
    }

    /// A receiver of topology changes (the recompute loop waits on it).
    pub fn topology_rx(&self) -> TopologyRx {
        self.topology.clone()
    }

    /// The served table, if any.
    pub fn table(&self) -> Option<Arc<Served>> {
        self.table.get()
    }

    /// Ready once the topology is synced and a first table exists.
    pub fn is_ready(&self) -> bool {
        self.topology.borrow().is_some() && self.table().is_some()
    }

    /// Fold a validated report; refused only when too many nodes are tracked.
    pub fn ingest_report(&self, r: &HostReport) -> Result<(), TooManyNodes> {
        let topo = self.topology();
        let now = self.now_ms();
        let mut core = self.core();
        let out = core.reports.ingest(r, topo.as_ref(), now)?;
        let unknown = core.reports.unknown_pod_count();
        let smoothed = core
            .reports
            .nodes()
            .get(&r.node)
            .map_or(r.used_millicores, |n| n.used.value);
        drop(core);
        if out.unknown_node {
            tracing::debug!(node = %r.node, "report from a node the topology does not know");
        }
        if out.unknown_pods > 0 {
            tracing::debug!(node = %r.node, n = out.unknown_pods, "report names unknown pods");
        }
        self.metrics.set_unknown_pods(unknown);
        self.metrics
            .set_node_cpu(&r.node, r.capacity_millicores, smoothed);
        self.metrics.report_accepted();
        self.reported.notify_one();
        Ok(())
    }

    /// One round. Returns whether a new table version was published.
    pub fn recompute(&self) -> Result<bool> {
        let Some(topo) = self.topology() else {
            return Ok(false);
        };
        self.metrics.set_aliases_dropped(topo.dropped_aliases.len());
        let now = self.now_ms();
        let (cpu, admin, policy) = {
            let core = self.core();
            (
                core.reports.cpu_view(&topo, now),
                core.admin.clone(),
                core.policy.clone(),
            )
        };
        let effective = without_drained(&topo, &admin.drains);
        let round = Round {
            topology: &effective,
            cpu: &cpu,
            operator: &admin.static_weights,
        };
        let model = Inputs::build(&effective, &cpu, &self.cfg.optimal);
        let figures = balance::figures_of(&effective, &cpu, &self.cfg.optimal, &model);
        self.metrics.set_balance(&figures);
        let started = Instant::now();
        let mut decision = policy.decide(&round).unwrap_or_else(|e| {
            tracing::warn!(policy = %policy.kind(), error = %e, "policy failed; every service falls back to even");
            Decision {
                failure: Some(e.to_string()),
                ..Decision::default()
            }
        });
        self.metrics
            .observe_solve(policy.kind().as_str(), started.elapsed().as_secs_f64());
        let mut core = self.core();
        if let Some(admission) = core.admission.as_mut() {
            let verdicts = if policy.kind() == PolicyKind::Optimal {
                let verdicts = admission.round(&model, now);
                decision.admit = admission.per_service(&effective);
                verdicts
            } else {
                admission.reset();
                BTreeMap::new()
            };
            tracing::debug!(?verdicts, "admission round");
            self.metrics.set_admission(&verdicts);
        }
        let before = core.builder.current();
        if let Some(calibration) = core.calibration.as_mut()
            && policy.kind() == PolicyKind::Optimal
        {
            calibration.apply(
                &mut decision,
                &cpu,
                before.as_ref().map(|b| &b.table),
                &admin.static_weights,
            );
        }
        let published = core.builder.round(&topo, &decision, &admin.drains, now)?;
        core.moved = match (&published, &before) {
            (Some(next), _) => balance::moved(before.as_ref().map(|b| &b.table), &next.table),
            (None, Some(b)) => b.table.services.keys().map(|s| (s.clone(), 0.0)).collect(),
            (None, None) => BTreeMap::new(),
        };
        self.metrics.set_moved(&core.moved);
        self.follows_reports
            .store(decision.undamped, std::sync::atomic::Ordering::Relaxed);
        core.explain = decision.explain;
        core.last_error = decision.failure;
        drop(core);
        if let Some(served) = &published {
            tracing::info!(
                version = served.table.version,
                services = served.table.services.len(),
                "new weights table"
            );
            self.metrics.set_table(served);
        }
        Ok(published.is_some())
    }

    /// This replica became the leader: its next table has version `next`
    /// or higher and is published at once, damped on from `last`.
    pub fn take_over(&self, next: u64, last: Option<&mplb_wire::WeightsTable>) {
        self.core().builder.take_over(next, last);
        self.changed.notify_one();
    }

    /// Resolve a service name or alias to its FQDN.
    pub fn resolve_service(&self, name: &str) -> Option<String> {
        let topo = self.topology()?;
        if topo.services.contains_key(name) {
            return Some(name.to_string());
        }
        topo.services
            .values()
            .find(|s| s.aliases.iter().any(|a| a == name))
            .map(|s| s.fqdn.clone())
    }

    fn mutate(
        &self,
        f: impl FnOnce(&mut AdminState) -> Result<(), AdminError>,
    ) -> Result<AdminState, AdminError> {
        let mut core = self.core();
        let mut next = core.admin.clone();
        f(&mut next)?;
        self.store.save(&next)?;
        if core.policy.kind() != next.policy {
            core.policy = policy::for_kind(next.policy, &self.cfg.optimal);
        }
        core.admin = next.clone();
        drop(core);
        self.changed.notify_one();
        Ok(next)
    }

    /// What an operator has set.
    pub fn admin_state(&self) -> AdminState {
        self.core().admin.clone()
    }

    /// Use policy `p` from the next round on.
    pub fn set_policy(&self, p: PolicyKind) -> Result<AdminState, AdminError> {
        self.mutate(|a| {
            a.policy = p;
            Ok(())
        })
    }

    /// Operator weights for a service: only its known pods, normalised.
    pub fn set_static(
        &self,
        service: &str,
        weights: BTreeMap<String, f64>,
    ) -> Result<AdminState, AdminError> {
        let topo = self
            .topology()
            .ok_or_else(|| AdminError::Unavailable("topology not synced yet".into()))?;
        let fqdn = self
            .resolve_service(service)
            .ok_or_else(|| AdminError::NotFound(format!("unknown service {service:?}")))?;
        if weights.is_empty() {
            return Err(AdminError::Invalid("no pod weights given".into()));
        }
        for (pod, w) in &weights {
            if topo.pods.get(pod).is_none_or(|p| p.service != fqdn) {
                return Err(AdminError::NotFound(format!(
                    "pod {pod:?} is not a pod of {fqdn:?}"
                )));
            }
            if !w.is_finite() || *w < 0.0 {
                return Err(AdminError::Invalid(format!(
                    "weight of {pod:?} must be a finite number >= 0"
                )));
            }
        }
        let sum: f64 = weights.values().sum();
        if !(sum > 0.0 && sum.is_finite()) {
            return Err(AdminError::Invalid(format!(
                "weights sum to {sum}, not a positive finite number"
            )));
        }
        let normalised = weights.into_iter().map(|(p, w)| (p, w / sum)).collect();
        self.mutate(|a| {
            a.static_weights.insert(fqdn, normalised);
            Ok(())
        })
    }

    /// Remove the operator weights of a service (name or alias).
    pub fn clear_static(&self, service: &str) -> Result<AdminState, AdminError> {
        let fqdn = self
            .resolve_service(service)
            .unwrap_or_else(|| service.to_string());
        self.mutate(|a| match a.static_weights.remove(&fqdn) {
            Some(_) => Ok(()),
            None => Err(AdminError::NotFound(format!(
                "service {service:?} has no operator weights"
            ))),
        })
    }

    /// Drain a pod (`on`) or put it back.
    pub fn drain(&self, pod: &str, on: bool) -> Result<AdminState, AdminError> {
        let known = self.topology().is_some_and(|t| t.pods.contains_key(pod));
        self.mutate(|a| {
            if on {
                if !known {
                    return Err(AdminError::NotFound(format!("unknown pod {pod:?}")));
                }
                a.drains.insert(pod.to_string());
            } else if !a.drains.remove(pod) {
                return Err(AdminError::NotFound(format!("pod {pod:?} is not drained")));
            }
            Ok(())
        })
    }
}

/// The topology the policies see: drained pods marked not ready.
fn without_drained(topo: &Arc<Topology>, drains: &BTreeSet<String>) -> Arc<Topology> {
    if !drains
        .iter()
        .any(|d| topo.pods.get(d).is_some_and(|p| p.ready))
    {
        return topo.clone();
    }
    let mut t = (**topo).clone();
    for d in drains {
        if let Some(p) = t.pods.get_mut(d) {
            p.ready = false;
        }
    }
    Arc::new(t)
}

#[cfg(test)]
mod tests;
