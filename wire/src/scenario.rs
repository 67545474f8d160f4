//! The lab's scenario file (docs/scenarios.md): nodes with CPU capacity,
//! tenants with fair shares, services with their pods, an offered-load
//! schedule per entry service, timed events, and what to run. [`parse`]
//! decodes YAML (unknown fields refused) and checks every semantic rule; the
//! error names the field, e.g. `scenario services[2].calls: unknown service "db"`.

use serde::{Deserialize, Serialize};

use crate::WireError;

/// Largest scenario file accepted.
pub const MAX_SCENARIO_BYTES: usize = 1024 * 1024;
/// The policies a scenario may name.
pub const POLICIES: &[&str] = &["even", "cswrr", "spare", "optimal"];

/// A whole scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Scenario name (results go to `results/<name>/`).
    pub name: String,
    /// What the scenario shows, for people.
    #[serde(default)]
    pub description: String,
    /// The cgroup nodes.
    pub nodes: Vec<NodeDef>,
    /// The tenants.
    pub tenants: Vec<TenantDef>,
    /// The services.
    pub services: Vec<ServiceDef>,
    /// Offered load per entry service.
    pub load: Vec<LoadDef>,
    /// Timed events during the measured window.
    #[serde(default)]
    pub events: Vec<Event>,
    /// Policies, repeats and windows.
    pub run: RunDef,
}

/// A node: a cgroup with a CPU quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDef {
    /// Node name.
    pub name: String,
    /// CPU quota of the node, in millicores (1000 = one core).
    pub capacity_millicores: u64,
}

/// A tenant and its fair share of CPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantDef {
    /// Tenant name.
    pub name: String,
    /// Fair share in millicores, split evenly over its services unless a
    /// service sets its own; absent = no share.
    #[serde(default)]
    pub fair_share_millicores: Option<u64>,
}

/// A service of a tenant, with its pods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDef {
    /// Service name.
    pub name: String,
    /// Its tenant (one of `tenants`).
    pub tenant: String,
    /// The port clients put in `:authority`.
    pub port: u16,
    /// CPU per request, in microseconds.
    #[serde(default)]
    pub cost_us: u64,
    /// The service it calls once per request.
    #[serde(default)]
    pub calls: Option<String>,
    /// Reached through the gateway (needs a `load` entry).
    #[serde(default)]
    pub entry: bool,
    /// CPU request of each pod (its cgroup's cpu.shares), in millicores.
    #[serde(default = "default_request")]
    pub request_millicores: u64,
    /// Background CPU each pod burns (a hog), in millicores.
    #[serde(default)]
    pub hog_millicores: u64,
    /// This service's own fair share (overrides the tenant's split).
    #[serde(default)]
    pub fair_share_millicores: Option<u64>,
    /// One pod per entry, on that node (repeat a node for more pods); pod i
    /// is named `<service>-<i>`.
    pub pods_on: Vec<String>,
}

fn default_request() -> u64 {
    100
}

/// The offered-load schedule of one entry service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadDef {
    /// The entry service.
    pub service: String,
    /// Steps; the first at 0 s, then in increasing time.
    pub steps: Vec<LoadStep>,
}

/// From `at_s` on, offer this rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadStep {
    /// Seconds into the measured window.
    pub at_s: f64,
    /// Requests per second; exactly one of `rps` and `cpu_fraction`.
    #[serde(default)]
    pub rps: Option<f64>,
    /// The rate whose request CPU, through every tier, is this fraction of
    /// all nodes' capacity.
    #[serde(default)]
    pub cpu_fraction: Option<f64>,
}

/// A timed event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// A background hog of `millicores` starts on a node.
    HogStart {
        /// Seconds into the measured window.
        at_s: f64,
        /// The node.
        node: String,
        /// Its CPU demand.
        millicores: u64,
    },
    /// The node's event hog stops.
    HogStop {
        /// Seconds into the measured window.
        at_s: f64,
        /// The node.
        node: String,
    },
    /// The node's host agent is killed.
    AgentKill {
        /// Seconds into the measured window.
        at_s: f64,
        /// The node.
        node: String,
    },
    /// The node's host agent starts again.
    AgentRestart {
        /// Seconds into the measured window.
        at_s: f64,
        /// The node.
        node: String,
    },
    /// The weight server is killed.
    ServerKill {
        /// Seconds into the measured window.
        at_s: f64,
    },
    /// The weight server starts again.
    ServerRestart {
        /// Seconds into the measured window.
        at_s: f64,
    },
    /// A pod starts (it is absent until then).
    PodAdd {
        /// Seconds into the measured window.
        at_s: f64,
        /// The pod (`<service>-<i>`).
        pod: String,
    },
    /// A pod is stopped and leaves the topology.
    PodRemove {
        /// Seconds into the measured window.
        at_s: f64,
        /// The pod.
        pod: String,
    },
    /// A pod turns not-ready (it keeps running).
    PodNotReady {
        /// Seconds into the measured window.
        at_s: f64,
        /// The pod.
        pod: String,
    },
    /// A pod turns ready again.
    PodReady {
        /// Seconds into the measured window.
        at_s: f64,
        /// The pod.
        pod: String,
    },
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunDef {
    /// Policies to compare, in order.
    pub policies: Vec<String>,
    /// Repeats of the whole comparison.
    #[serde(default = "one")]
    pub repeat: u32,
    /// Warm-up load (at the first step's rate) before each measured window.
    pub warmup_s: f64,
    /// The measured window.
    pub duration_s: f64,
    /// Admission for `optimal`'s runs: the weight server's
    /// `--admission-target` (a fraction of capacity in (0, 1]); absent: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission_target: Option<f64>,
}

fn one() -> u32 {
    1
}

impl Event {
    /// Seconds into the measured window.
    pub fn at_s(&self) -> f64 {
        match self {
            Event::HogStart { at_s, .. }
            | Event::HogStop { at_s, .. }
            | Event::AgentKill { at_s, .. }
            | Event::AgentRestart { at_s, .. }
            | Event::ServerKill { at_s }
            | Event::ServerRestart { at_s }
            | Event::PodAdd { at_s, .. }
            | Event::PodRemove { at_s, .. }
            | Event::PodNotReady { at_s, .. }
            | Event::PodReady { at_s, .. } => *at_s,
        }
    }

    /// The `kind` as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::HogStart { .. } => "hog_start",
            Event::HogStop { .. } => "hog_stop",
            Event::AgentKill { .. } => "agent_kill",
            Event::AgentRestart { .. } => "agent_restart",
            Event::ServerKill { .. } => "server_kill",
            Event::ServerRestart { .. } => "server_restart",
            Event::PodAdd { .. } => "pod_add",
            Event::PodRemove { .. } => "pod_remove",
            Event::PodNotReady { .. } => "pod_not_ready",
            Event::PodReady { .. } => "pod_ready",
        }
    }

    /// A short label for plots and logs (`hog_start node-b`).
    pub fn label(&self) -> String {
        match self {
            Event::HogStart { node, .. }
            | Event::HogStop { node, .. }
            | Event::AgentKill { node, .. }
            | Event::AgentRestart { node, .. } => format!("{} {node}", self.kind()),
            Event::PodAdd { pod, .. }
            | Event::PodRemove { pod, .. }
            | Event::PodNotReady { pod, .. }
            | Event::PodReady { pod, .. } => format!("{} {pod}", self.kind()),
            Event::ServerKill { .. } | Event::ServerRestart { .. } => self.kind().to_string(),
        }
    }
}

impl ServiceDef {
    /// The names of its pods, in `pods_on` order.
    pub fn pod_names(&self) -> Vec<String> {
        (0..self.pods_on.len())
            .map(|i| format!("{}-{i}", self.name))
            .collect()
    }
}

/// Decode and check a scenario file.
pub fn parse(text: &str) -> Result<ScenarioFile, WireError> {
    if text.len() > MAX_SCENARIO_BYTES {
        return Err(WireError::TooLarge {
            size: text.len(),
            limit: MAX_SCENARIO_BYTES,
        });
    }
    let file: ScenarioFile =
        serde_norway::from_str(text).map_err(|e| WireError::Malformed(format!("scenario: {e}")))?;
    file.validate()?;
    Ok(file)
}

mod validate;

#[cfg(test)]
mod tests;
