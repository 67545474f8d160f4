//! The sampler: each call reads every pod's cumulative CPU and the node, and
//! turns the deltas since the previous call into a host report.
//!
//! Rates come from the monotonic clock. The first call only primes the
//! counters. A pod seen for the first time, or whose counter went backwards
//! (its cgroup was recreated), is re-baselined and left out of that one report
//! instead of producing a spike; a pod that disappears is forgotten.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use mplb_wire::{HostReport, MAX_REPORT_PODS, PodCpu};

use crate::cgroup::Layout;
use crate::clock::Clock;
use crate::discovery::discover;
use crate::error::AgentError;
use crate::node::{NodeCounter, NodeSource, used_millicores};
use crate::podnames::PodNames;

/// Which cgroups are pods.
#[derive(Debug, Clone, PartialEq)]
pub enum PodSource {
    /// Discover kubelet pod cgroups; names from the log directory if given.
    Kubernetes {
        /// The kubelet's pod log directory (`/var/log/pods`), for names.
        log_pods_dir: Option<PathBuf>,
    },
    /// Named cgroups (local mode): uid = name = the given name.
    Local(Vec<LocalPod>),
}

/// A named cgroup reported as a pod in local mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPod {
    /// The pod's name (also its uid).
    pub name: String,
    /// Path relative to the usage root (cpuacct on v1, unified on v2).
    pub rel: PathBuf,
}

/// What the sampler needs to know.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    /// The node's name in reports.
    pub node_name: String,
    /// Where the cgroup tree is mounted (normally `/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
    /// Where `/proc` is.
    pub proc_root: PathBuf,
    /// Which cgroups are pods.
    pub pods: PodSource,
    /// A cgroup standing for the node (local mode).
    pub node_cgroup: Option<PathBuf>,
}

/// The outcome of one sampling round.
#[derive(Debug)]
pub struct Sample {
    /// The report, absent on the priming round or when the node could not be read.
    pub report: Option<HostReport>,
    /// Everything that went wrong, each naming its path; the rest was still sampled.
    pub problems: Vec<AgentError>,
}

struct Target {
    uid: String,
    name: Option<String>,
    namespace: Option<String>,
    rel: PathBuf,
}

/// Turns cumulative counters into rates.
pub struct Sampler {
    node_name: String,
    layout: Layout,
    node: NodeSource,
    pods: PodSource,
    names: Option<PodNames>,
    clock: Arc<dyn Clock>,
    prev_mono_ns: Option<u64>,
    prev_node: Option<NodeCounter>,
    prev_pods: HashMap<String, u64>,
}

impl Sampler {
    /// Detect the cgroup layout and the node source.
    pub fn new(cfg: SamplerConfig, clock: Arc<dyn Clock>) -> Result<Sampler, AgentError> {
        let layout = Layout::detect(&cfg.cgroup_root)?;
        let node = NodeSource::choose(&layout, cfg.node_cgroup.clone(), &cfg.proc_root);
        let names = match &cfg.pods {
            PodSource::Kubernetes {
                log_pods_dir: Some(dir),
            } => Some(PodNames::new(dir)),
            _ => None,
        };
        Ok(Sampler {
            node_name: cfg.node_name,
            layout,
            node,
            pods: cfg.pods,
            names,
            clock,
            prev_mono_ns: None,
            prev_node: None,
            prev_pods: HashMap::new(),
        })
    }

    /// The cgroup layout detected at start.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Where the node's figures come from.
    pub fn node_source(&self) -> &NodeSource {
        &self.node
    }

    /// Take one sample.
    pub fn sample(&mut self) -> Sample {
        let mono = self.clock.mono_ns();
        let wall = self.clock.wall_ms();
        let mut problems = Vec::new();
        let dt_ns = self
            .prev_mono_ns
            .and_then(|prev| mono.checked_sub(prev))
            .filter(|dt| *dt > 0);

        let node = match self.node.read(&self.layout) {
            Ok(reading) => Some(reading),
            Err(e) => {
                problems.push(e);
                None
            }
        };

        let targets = self.targets(&mut problems);
        let mut counters = HashMap::with_capacity(targets.len());
        let mut pods = Vec::with_capacity(targets.len());
        for target in targets {
            let counter = match self.layout.usage_ns(&target.rel) {
                Ok(c) => c,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            match (dt_ns, self.prev_pods.get(&target.uid)) {
                (Some(dt), Some(&old)) if counter >= old => pods.push(PodCpu {
                    millicores: (counter - old) as f64 * 1000.0 / dt as f64,
                    uid: target.uid.clone(),
                    name: target.name,
                    namespace: target.namespace,
                    sampled_at_ms: wall,
                }),
                (_, Some(&old)) if counter < old => tracing::info!(
                    uid = %target.uid,
                    old,
                    new = counter,
                    "pod CPU counter went backwards (cgroup recreated); re-baselined"
                ),
                _ => {}
            }
            counters.insert(target.uid, counter);
        }
        self.prev_pods = counters;
        self.prev_mono_ns = Some(mono);

        let Some(node) = node else {
            self.prev_node = None;
            return Sample {
                report: None,
                problems,
            };
        };
        let prev_node = self.prev_node.replace(node.counter);
        let (Some(dt), Some(prev_node)) = (dt_ns, prev_node) else {
            return Sample {
                report: None,
                problems,
            };
        };
        if pods.len() > MAX_REPORT_PODS {
            problems.push(AgentError::Config(format!(
                "{} pods exceed the report limit of {MAX_REPORT_PODS}; the rest are left out",
                pods.len()
            )));
            pods.truncate(MAX_REPORT_PODS);
        }
        let report = HostReport {
            node: self.node_name.clone(),
            capacity_millicores: node.capacity_millicores,
            used_millicores: used_millicores(&prev_node, &node.counter, dt),
            sampled_at_ms: wall,
            interval_ms: ((dt + 500_000) / 1_000_000).max(1),
            pods,
        };
        match report.validate() {
            Ok(()) => Sample {
                report: Some(report),
                problems,
            },
            Err(e) => {
                problems.push(e.into());
                Sample {
                    report: None,
                    problems,
                }
            }
        }
    }

    fn targets(&mut self, problems: &mut Vec<AgentError>) -> Vec<Target> {
        match &self.pods {
            PodSource::Local(list) => list
                .iter()
                .map(|p| Target {
                    uid: p.name.clone(),
                    name: Some(p.name.clone()),
                    namespace: None,
                    rel: p.rel.clone(),
                })
                .collect(),
            PodSource::Kubernetes { .. } => {
                let found = discover(self.layout.usage_root(), problems);
                if let Some(names) = &mut self.names
                    && let Err(e) = names.refresh_for(found.iter().map(|p| p.uid.as_str()))
                {
                    problems.push(e);
                }
                found
                    .into_iter()
                    .map(|p| {
                        let known = self.names.as_ref().and_then(|n| n.get(&p.uid));
                        Target {
                            name: known.map(|k| k.name.clone()),
                            namespace: known.map(|k| k.namespace.clone()),
                            uid: p.uid,
                            rel: p.rel,
                        }
                    })
                    .collect()
            }
        }
    }
}
