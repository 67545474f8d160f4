//! Host reports: per-node and per-pod CPU, smoothed with an EWMA of a given
//! half-life, aged out after a maximum age, and turned into the [`CpuView`]
//! the policies read. A report whose node use, or whose background (node use
//! beyond the matched pods), differs from the smoothed one by more than the
//! reset step (a fraction of the node's capacity: a hog started, a load
//! step) resets that node's averages to the report, so a real change reaches
//! the policy at once while small noise stays smoothed.
//! Pods are matched by uid, else (namespace, name), else name; unknown pods
//! and nodes are kept but flagged.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use mplb_wire::HostReport;
use serde::Serialize;

use crate::policy::{CpuView, NodeCpu};
use crate::topology::Topology;

/// An exponentially weighted moving average stepped by elapsed time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ewma {
    /// The smoothed value.
    pub value: f64,
    /// When it was last stepped.
    pub at_ms: u64,
    /// The last sample, unsmoothed.
    #[serde(skip)]
    pub last: f64,
}

impl Ewma {
    /// An average starting at `value` at `at_ms`.
    pub fn new(value: f64, at_ms: u64) -> Self {
        Ewma {
            value,
            at_ms,
            last: value,
        }
    }

    /// Move toward `sample` by `1 - 0.5^(dt / half_life)`.
    pub fn update(&mut self, sample: f64, now_ms: u64, half_life_ms: u64) {
        let dt = now_ms.saturating_sub(self.at_ms) as f64;
        let alpha = if half_life_ms == 0 {
            1.0
        } else {
            1.0 - 0.5f64.powf(dt / half_life_ms as f64)
        };
        self.value += alpha * (sample - self.value);
        self.last = sample;
        self.at_ms = now_ms.max(self.at_ms);
    }
}

/// Most nodes tracked at once (reports from more are refused once the stale
/// ones are dropped), so random node names cannot grow memory without bound.
pub const MAX_TRACKED_NODES: usize = 20_000;

/// A report refused because [`MAX_TRACKED_NODES`] nodes have fresh reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("already tracking {MAX_TRACKED_NODES} nodes with fresh reports")]
pub struct TooManyNodes;

/// What is known of one node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeState {
    /// Reported capacity in millicores.
    pub capacity_millicores: f64,
    /// Smoothed node-wide use in millicores.
    pub used: Ewma,
    /// When its last report arrived.
    pub last_report_ms: u64,
    /// Smoothed CPU by pod name (matched pods only).
    pub pods: BTreeMap<String, Ewma>,
    /// Pods the report named that the topology does not know: uid -> last CPU.
    pub unknown_pods: BTreeMap<String, f64>,
}

/// Outcome of one ingested report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ingested {
    /// The topology does not know the node.
    pub unknown_node: bool,
    /// How many pods of the report the topology does not know.
    pub unknown_pods: usize,
}

#[derive(Debug, Default)]
struct PodIndex {
    by_uid: HashMap<String, String>,
    by_ns_name: HashMap<(String, String), String>,
}

/// All host reports received, smoothed.
#[derive(Debug)]
pub struct Reports {
    half_life_ms: u64,
    reset_step: f64,
    max_age_ms: u64,
    nodes: BTreeMap<String, NodeState>,
    index: Option<(Arc<Topology>, PodIndex)>,
}

impl Reports {
    /// Reports smoothed with this half-life, fresh for `max_age_ms`.
    pub fn new(half_life_ms: u64, max_age_ms: u64) -> Self {
        Reports {
            half_life_ms,
            reset_step: 0.0,
            max_age_ms,
            nodes: BTreeMap::new(),
            index: None,
        }
    }

    /// Reset a node's averages to a report whose node use is more than
    /// `fraction` of the node's capacity away from the smoothed use; `0`
    /// never resets (plain EWMA).
    pub fn with_reset_step(mut self, fraction: f64) -> Self {
        self.reset_step = if fraction.is_finite() {
            fraction.max(0.0)
        } else {
            0.0
        };
        self
    }

    fn index(&mut self, topo: &Arc<Topology>) -> &PodIndex {
        let fresh = matches!(&self.index, Some((t, _)) if Arc::ptr_eq(t, topo));
        if !fresh {
            let mut idx = PodIndex::default();
            for p in topo.pods.values() {
                idx.by_uid.insert(p.uid.clone(), p.name.clone());
                idx.by_ns_name
                    .insert((p.namespace.clone(), p.name.clone()), p.name.clone());
            }
            self.index = Some((topo.clone(), idx));
        }
        &self
            .index
            .get_or_insert_with(|| (topo.clone(), PodIndex::default()))
            .1
    }

    /// Fold a validated report into the smoothed state.
    pub fn ingest(
        &mut self,
        r: &HostReport,
        topo: Option<&Arc<Topology>>,
        now_ms: u64,
    ) -> Result<Ingested, TooManyNodes> {
        if !self.nodes.contains_key(&r.node) && self.nodes.len() >= MAX_TRACKED_NODES {
            let max = self.max_age_ms;
            self.nodes
                .retain(|_, n| now_ms.saturating_sub(n.last_report_ms) <= max);
            if self.nodes.len() >= MAX_TRACKED_NODES {
                return Err(TooManyNodes);
            }
        }
        let mut out = Ingested {
            unknown_node: topo.is_some_and(|t| !t.nodes.contains_key(&r.node)),
            ..Ingested::default()
        };
        let mut matched: Vec<(String, f64)> = Vec::with_capacity(r.pods.len());
        let mut unknown = BTreeMap::new();
        if let Some(topo) = topo {
            let idx = self.index(topo);
            for p in &r.pods {
                let name = idx.by_uid.get(&p.uid).cloned().or_else(|| {
                    let name = p.name.as_ref()?;
                    match &p.namespace {
                        Some(ns) => idx.by_ns_name.get(&(ns.clone(), name.clone())).cloned(),
                        None => topo.pods.get(name).map(|p| p.name.clone()),
                    }
                });
                match name {
                    Some(n) => matched.push((n, p.millicores)),
                    None => {
                        unknown.insert(p.uid.clone(), p.millicores);
                    }
                }
            }
        } else {
            unknown.extend(r.pods.iter().map(|p| (p.uid.clone(), p.millicores)));
        }
        out.unknown_pods = unknown.len();
        let hl = self.half_life_ms;
        let state = self
            .nodes
            .entry(r.node.clone())
            .or_insert_with(|| NodeState {
                capacity_millicores: r.capacity_millicores,
                used: Ewma::new(r.used_millicores, now_ms),
                last_report_ms: now_ms,
                pods: BTreeMap::new(),
                unknown_pods: BTreeMap::new(),
            });
        state.capacity_millicores = r.capacity_millicores;
        let step = self.reset_step * r.capacity_millicores;
        // Background (node use beyond the matched pods) as reported and as
        // smoothed: a hog starting on a saturated node shows only there.
        let background_now = r.used_millicores - matched.iter().map(|(_, c)| c).sum::<f64>();
        let background_smoothed = state.used.value
            - matched
                .iter()
                .map(|(n, c)| state.pods.get(n).map_or(*c, |e| e.value))
                .sum::<f64>();
        let reset = step > 0.0
            && ((r.used_millicores - state.used.value).abs() > step
                || (background_now - background_smoothed).abs() > step);
        if reset {
            state.used = Ewma::new(r.used_millicores, now_ms);
        } else {
            state.used.update(r.used_millicores, now_ms, hl);
        }
        state.last_report_ms = now_ms;
        let mut pods = BTreeMap::new();
        for (name, cpu) in matched {
            let mut e = match state.pods.get(&name) {
                Some(e) if !reset => *e,
                _ => Ewma::new(cpu, now_ms),
            };
            e.update(cpu, now_ms, hl);
            pods.insert(name, e);
        }
        state.pods = pods;
        state.unknown_pods = unknown;
        Ok(out)
    }

    /// Age of a node's last report, if any.
    pub fn age_ms(&self, node: &str, now_ms: u64) -> Option<u64> {
        self.nodes
            .get(node)
            .map(|n| now_ms.saturating_sub(n.last_report_ms))
    }

    /// Whether a node has a report younger than the maximum age.
    pub fn is_fresh(&self, node: &str, now_ms: u64) -> bool {
        self.age_ms(node, now_ms)
            .is_some_and(|a| a <= self.max_age_ms)
    }

    /// The CPU the policies see: fresh topology nodes and their pods.
    pub fn cpu_view(&self, topo: &Topology, now_ms: u64) -> CpuView {
        let mut view = CpuView::default();
        for (name, st) in &self.nodes {
            if !topo.nodes.contains_key(name) || !self.is_fresh(name, now_ms) {
                continue;
            }
            view.nodes.insert(
                name.clone(),
                NodeCpu {
                    capacity_millicores: st.capacity_millicores,
                    used_millicores: st.used.value.max(0.0),
                },
            );
            for (pod, e) in &st.pods {
                if topo.pods.get(pod).is_some_and(|p| &p.node == name) {
                    view.pods.insert(pod.clone(), e.value.max(0.0));
                    view.pods_last.insert(pod.clone(), e.last.max(0.0));
                }
            }
        }
        view
    }

    /// Every node with a report, for the admin state.
    pub fn nodes(&self) -> &BTreeMap<String, NodeState> {
        &self.nodes
    }

    /// Total of unknown pods over fresh reports.
    pub fn unknown_pod_count(&self) -> usize {
        self.nodes.values().map(|n| n.unknown_pods.len()).sum()
    }
}

#[cfg(test)]
mod tests;
