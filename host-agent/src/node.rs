//! The node's CPU capacity and node-wide usage.
//!
//! Either a cgroup stands for the node (`--node-cgroup`, or the agent's own
//! cgroup when it carries a CPU quota outside Kubernetes' pod tree): capacity is
//! its quota, usage its cumulative CPU. Or the whole host: capacity is the CPU
//! count of `/proc/stat`, usage the busy share of its `cpu` line.

use std::path::{Path, PathBuf};

use crate::cgroup::{Layout, clip, read_small};
use crate::error::AgentError;

/// Where node figures come from.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeSource {
    /// A cgroup (relative to the usage root) is the node; without a quota its
    /// capacity is the host's CPU count from `<proc_root>/stat`.
    Cgroup {
        /// The node cgroup, relative to the usage root.
        rel: PathBuf,
        /// Where `/proc` is (for the CPU count).
        proc_root: PathBuf,
    },
    /// The whole host, from `<proc_root>/stat`.
    Host {
        /// Where `/proc` is.
        proc_root: PathBuf,
    },
}

/// One reading of the node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeReading {
    /// The node's CPU capacity: its quota, else its CPU count, in millicores.
    pub capacity_millicores: f64,
    /// The cumulative usage counter read.
    pub counter: NodeCounter,
}

/// The cumulative part of a node reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NodeCounter {
    /// Cumulative CPU of the node cgroup, ns.
    CgroupNs(u64),
    /// Busy and total jiffies of `/proc/stat`, and the CPU count.
    Jiffies {
        /// Jiffies spent busy (all but idle and iowait).
        busy: u64,
        /// All jiffies.
        total: u64,
        /// The host's CPU count.
        cpus: u32,
    },
}

impl NodeSource {
    /// Pick the source: the given node cgroup, else the agent's own
    /// constraining cgroup (found from `<proc_root>/self/cgroup`), else the host.
    pub fn choose(layout: &Layout, node_cgroup: Option<PathBuf>, proc_root: &Path) -> NodeSource {
        let proc = proc_root.to_path_buf();
        if let Some(rel) = node_cgroup {
            return NodeSource::Cgroup {
                rel,
                proc_root: proc,
            };
        }
        own_cgroup(layout, proc_root)
            .and_then(|own| constraining_ancestor(layout, &own))
            .map_or_else(
                || NodeSource::Host {
                    proc_root: proc.clone(),
                },
                |rel| NodeSource::Cgroup {
                    rel,
                    proc_root: proc.clone(),
                },
            )
    }

    /// Read the node's capacity and cumulative usage now.
    pub fn read(&self, layout: &Layout) -> Result<NodeReading, AgentError> {
        match self {
            NodeSource::Cgroup { rel, proc_root } => {
                let usage = layout.usage_ns(rel)?;
                let capacity = match layout.effective_quota_millicores(rel)? {
                    Some(q) => q,
                    None => f64::from(host_cpus(proc_root)?) * 1000.0,
                };
                Ok(NodeReading {
                    capacity_millicores: capacity,
                    counter: NodeCounter::CgroupNs(usage),
                })
            }
            NodeSource::Host { proc_root } => {
                let (busy, total, cpus) = read_proc_stat(&proc_root.join("stat"))?;
                Ok(NodeReading {
                    capacity_millicores: f64::from(cpus) * 1000.0,
                    counter: NodeCounter::Jiffies { busy, total, cpus },
                })
            }
        }
    }
}

/// Node-wide usage between two readings `dt_ns` apart, in millicores.
pub fn used_millicores(prev: &NodeCounter, cur: &NodeCounter, dt_ns: u64) -> f64 {
    match (prev, cur) {
        (NodeCounter::CgroupNs(a), NodeCounter::CgroupNs(b)) if b >= a && dt_ns > 0 => {
            (b - a) as f64 * 1000.0 / dt_ns as f64
        }
        (
            NodeCounter::Jiffies {
                busy: b0,
                total: t0,
                ..
            },
            NodeCounter::Jiffies {
                busy: b1,
                total: t1,
                cpus,
            },
        ) if t1 > t0 && b1 >= b0 => (b1 - b0) as f64 / (t1 - t0) as f64 * f64::from(*cpus) * 1000.0,
        _ => 0.0,
    }
}

fn host_cpus(proc_root: &Path) -> Result<u32, AgentError> {
    read_proc_stat(&proc_root.join("stat")).map(|(_, _, cpus)| cpus)
}

/// (busy, total, cpu count) from a `/proc/stat`.
pub fn read_proc_stat(path: &Path) -> Result<(u64, u64, u32), AgentError> {
    let text = read_small(path)?;
    parse_proc_stat(&text).map_err(|reason| AgentError::malformed(path, reason))
}

fn parse_proc_stat(text: &str) -> Result<(u64, u64, u32), String> {
    let mut totals = None;
    let mut cpus = 0u32;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("cpu") => {
                let v: Vec<u64> = fields
                    .take(8)
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("cpu line {:?}: {e}", clip(line)))?;
                if v.len() < 4 {
                    return Err(format!("cpu line {:?} is too short", clip(line)));
                }
                let get = |i: usize| v.get(i).copied().unwrap_or(0);
                // user nice system idle iowait irq softirq steal (guest is inside user).
                let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
                let idle = get(3) + get(4);
                totals = Some((busy, busy + idle));
            }
            Some(name) if name.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    let (busy, total) = totals.ok_or("no cpu line")?;
    if cpus == 0 {
        return Err("no per-cpu lines".into());
    }
    Ok((busy, total, cpus))
}

/// The agent's own cgroup (relative path in the usage tree), from `/proc/self/cgroup`.
fn own_cgroup(layout: &Layout, proc_root: &Path) -> Option<PathBuf> {
    let text = read_small(&proc_root.join("self/cgroup")).ok()?;
    let path = text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let wanted = match layout {
            Layout::V2 { .. } => controllers.is_empty(),
            Layout::V1 { .. } => controllers.split(',').any(|c| c == "cpuacct"),
        };
        wanted.then(|| path.trim().to_string())
    })?;
    let rel = PathBuf::from(path.trim_start_matches('/'));
    // Inside Kubernetes the agent's own limit is its pod's, not the node's.
    let in_pod_tree = rel.components().any(|c| {
        let c = c.as_os_str().to_string_lossy();
        c == "kubepods" || c.ends_with("kubepods.slice")
    });
    (!rel.as_os_str().is_empty() && !in_pod_tree).then_some(rel)
}

/// The cgroup among `rel` and its ancestors with the tightest quota.
fn constraining_ancestor(layout: &Layout, rel: &Path) -> Option<PathBuf> {
    let mut best: Option<(f64, PathBuf)> = None;
    let mut cur = Some(rel);
    while let Some(dir) = cur {
        if dir.as_os_str().is_empty() {
            break;
        }
        if let Ok(Some(q)) = layout.quota_millicores(dir)
            && best.as_ref().is_none_or(|(b, _)| q < *b)
        {
            best = Some((q, dir.to_path_buf()));
        }
        cur = dir.parent();
    }
    best.map(|(_, dir)| dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const STAT: &str = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\ncpu1 50 0 25 400 25 0 0 0 0 0\nintr 1\n";

    #[test]
    fn proc_stat_usage_and_capacity() {
        assert_eq!(parse_proc_stat(STAT).unwrap(), (150, 1000, 2));
        assert!(parse_proc_stat("cpu 1 x 3 4\ncpu0 1 2 3 4\n").is_err());
        assert!(parse_proc_stat("intr 1\n").is_err());
        let a = NodeCounter::Jiffies {
            busy: 150,
            total: 1000,
            cpus: 2,
        };
        let b = NodeCounter::Jiffies {
            busy: 250,
            total: 1200,
            cpus: 2,
        };
        assert_eq!(used_millicores(&a, &b, 1), 1000.0);
        // Counters going backwards never give a spike.
        assert_eq!(used_millicores(&b, &a, 1), 0.0);
    }

    #[test]
    fn own_constrained_cgroup_becomes_the_node() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let w = |rel: &str, text: &str| {
            let p = r.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        };
        w("cg/cgroup.controllers", "cpu\n");
        w("cg/lab/node-a/cpu.max", "150000 100000\n");
        w("cg/lab/node-a/cpu.stat", "usage_usec 10\n");
        w("cg/lab/node-a/agent/cpu.max", "max 100000\n");
        w("proc/self/cgroup", "0::/lab/node-a/agent\n");
        w("proc/stat", STAT);
        let layout = Layout::detect(&r.join("cg")).unwrap();
        let src = NodeSource::choose(&layout, None, &r.join("proc"));
        assert_eq!(
            src,
            NodeSource::Cgroup {
                rel: "lab/node-a".into(),
                proc_root: r.join("proc")
            }
        );
        let reading = src.read(&layout).unwrap();
        assert_eq!(reading.capacity_millicores, 1500.0);
        assert_eq!(reading.counter, NodeCounter::CgroupNs(10_000));

        // Inside a Kubernetes pod: the host, not the pod limit.
        w("proc/self/cgroup", "0::/kubepods.slice/x\n");
        let src = NodeSource::choose(&layout, None, &r.join("proc"));
        assert!(matches!(src, NodeSource::Host { .. }), "{src:?}");
        assert_eq!(src.read(&layout).unwrap().capacity_millicores, 2000.0);
    }
}
