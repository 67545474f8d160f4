//! On the machine's real cgroup tree (root needed): a cgroup with a CPU quota
//! of half a core runs two busy loops, and the agent's sampler measures
//! 500 +- 75 millicores. cgroup v1 (separate `cpu` and `cpuacct`, or combined
//! `cpu,cpuacct`) and v2 (unified, with the `cpu` controller) are supported.
//! The cgroups are removed afterwards, also when the test fails.
//!
//! If the tree is not writable the test prints `SKIPPED: ...` and FAILS,
//! unless `MPLB_ALLOW_NO_CGROUP=1` is set: it never passes silently.

// Test code: a failed setup step must fail the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use host_agent::cgroup::Layout;
use host_agent::clock::SystemClock;
use host_agent::sampler::{LocalPod, PodSource, Sampler, SamplerConfig};
use support::ChildGuard;

const ROOT: &str = "/sys/fs/cgroup";

fn unavailable(reason: &str) {
    eprintln!("SKIPPED: real cgroup CPU test: {reason}");
    if std::env::var("MPLB_ALLOW_NO_CGROUP").as_deref() == Ok("1") {
        eprintln!("SKIPPED: allowed by MPLB_ALLOW_NO_CGROUP=1");
        return;
    }
    panic!(
        "real cgroup test cannot run: {reason} (run as root on a host with cgroups, or set MPLB_ALLOW_NO_CGROUP=1 to skip)"
    );
}

/// Created cgroup directories (deepest last) and the busy processes in them.
/// Drop kills the processes, then removes the directories deepest first.
struct Cleanup {
    dirs: Vec<PathBuf>,
    children: Vec<ChildGuard>,
}

impl Cleanup {
    fn mkdir(&mut self, dir: PathBuf) -> std::io::Result<()> {
        if self.dirs.contains(&dir) {
            return Ok(());
        }
        fs::create_dir(&dir)?;
        self.dirs.push(dir);
        Ok(())
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.children.clear();
        for dir in self.dirs.iter().rev() {
            let mut tries = 0;
            while let Err(e) = fs::remove_dir(dir) {
                tries += 1;
                if tries > 40 {
                    eprintln!("WARNING: cannot remove cgroup {}: {e}", dir.display());
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

#[test]
fn measures_a_half_core_quota() {
    let root = Path::new(ROOT);
    let layout = match Layout::detect(root) {
        Ok(l) => l,
        Err(e) => return unavailable(&e.to_string()),
    };
    let base = format!("mplb-test-{}", std::process::id());
    let rel = PathBuf::from(&base).join("busy");
    let mut cleanup = Cleanup {
        dirs: Vec::new(),
        children: Vec::new(),
    };
    // (directory of the quota, directories to put the processes in)
    let (quota_dir, task_dirs) = match &layout {
        Layout::V1 {
            cpuacct,
            cpu: Some(cpu),
        } => {
            let cpu = fs::canonicalize(cpu).unwrap();
            let cpuacct = fs::canonicalize(cpuacct).unwrap();
            for tree in [&cpu, &cpuacct] {
                if let Err(e) = cleanup
                    .mkdir(tree.join(&base))
                    .and_then(|()| cleanup.mkdir(tree.join(&rel)))
                {
                    return unavailable(&format!(
                        "cannot create a cgroup under {}: {e}",
                        tree.display()
                    ));
                }
            }
            let q = cpu.join(&rel);
            // Win against other load on the machine, so the quota is what binds.
            for d in [cpu.join(&base), q.clone()] {
                fs::write(d.join("cpu.shares"), "262144").unwrap();
            }
            fs::write(q.join("cpu.cfs_period_us"), "100000").unwrap();
            fs::write(q.join("cpu.cfs_quota_us"), "50000").unwrap();
            let mut tasks = vec![q.join("tasks")];
            if cpuacct != cpu {
                tasks.push(cpuacct.join(&rel).join("tasks"));
            }
            (q, tasks)
        }
        Layout::V1 { cpu: None, .. } => {
            return unavailable("cgroup v1 without a cpu hierarchy: no quota to set");
        }
        Layout::V2 { root } => {
            let controllers =
                fs::read_to_string(root.join("cgroup.subtree_control")).unwrap_or_default();
            if !controllers.split_whitespace().any(|c| c == "cpu") {
                return unavailable(
                    "cgroup v2 without the cpu controller in the root's subtree_control",
                );
            }
            if let Err(e) = cleanup.mkdir(root.join(&base)).and_then(|()| {
                fs::write(root.join(&base).join("cgroup.subtree_control"), "+cpu")?;
                cleanup.mkdir(root.join(&rel))
            }) {
                return unavailable(&format!(
                    "cannot create a cgroup under {}: {e}",
                    root.display()
                ));
            }
            let q = root.join(&rel);
            fs::write(q.join("cpu.weight"), "10000").unwrap();
            fs::write(q.join("cpu.max"), "50000 100000").unwrap();
            (q.clone(), vec![q.join("cgroup.procs")])
        }
    };
    eprintln!(
        "real cgroup test: {} with quota at {}",
        layout.describe(),
        quota_dir.display()
    );

    for _ in 0..2 {
        let child = Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id().to_string();
        cleanup.children.push(ChildGuard(child));
        for tasks in &task_dirs {
            fs::write(tasks, &pid)
                .unwrap_or_else(|e| panic!("moving {pid} into {}: {e}", tasks.display()));
        }
    }

    let cfg = SamplerConfig {
        node_name: "real".into(),
        cgroup_root: root.to_path_buf(),
        proc_root: PathBuf::from("/proc"),
        pods: PodSource::Local(vec![LocalPod {
            name: "busy".into(),
            rel: rel.clone(),
        }]),
        node_cgroup: Some(PathBuf::from(&base)),
    };
    let mut sampler = Sampler::new(cfg, Arc::new(SystemClock::new())).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let prime = sampler.sample();
    assert!(prime.problems.is_empty(), "{:?}", prime.problems);
    std::thread::sleep(Duration::from_millis(2500));
    let sample = sampler.sample();
    assert!(sample.problems.is_empty(), "{:?}", sample.problems);
    let report = sample.report.expect("a report");
    let busy = report
        .pods
        .iter()
        .find(|p| p.uid == "busy")
        .expect("busy pod");
    eprintln!(
        "real cgroup test: busy pod {:.1} millicores over {} ms (node cgroup {:.1} of {:.0})",
        busy.millicores, report.interval_ms, report.used_millicores, report.capacity_millicores
    );
    assert!(
        (busy.millicores - 500.0).abs() <= 75.0,
        "measured {:.1} millicores under a 500 m quota",
        busy.millicores
    );
    // The parent (the "node" here) holds only the busy pod.
    assert!(
        (report.used_millicores - busy.millicores).abs() <= 25.0,
        "{report:?}"
    );
    drop(cleanup);
    for dir in task_dirs.iter().filter_map(|t| t.parent()) {
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }
}
