//! cgroup v1 "nodes" and "pods": a lab subtree (`mplb-lab/<node>/<pod>`) in
//! both the `cpu` hierarchy (quota = node capacity, shares = pod request) and
//! the `cpuacct` hierarchy (usage). Works with separate `cpu` and `cpuacct`
//! mounts and with the combined `cpu,cpuacct` mount.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The CFS period the lab uses for quotas.
pub const PERIOD_US: u64 = 100_000;

/// The two v1 hierarchies under a cgroup root, and the lab's subtree name.
#[derive(Debug, Clone)]
pub struct CgroupFs {
    root: PathBuf,
    cpu: PathBuf,
    cpuacct: PathBuf,
    lab: String,
}

impl CgroupFs {
    /// Find the `cpu` and `cpuacct` hierarchies under `root` (e.g.
    /// `/sys/fs/cgroup`) and check that they are writable.
    pub fn open(root: &Path, lab: &str) -> Result<Self> {
        let pick = |names: &[&str]| {
            names
                .iter()
                .map(|n| root.join(n))
                .find(|p| p.join("cgroup.procs").exists())
        };
        let cpu = pick(&["cpu", "cpu,cpuacct"]).ok_or_else(|| {
            Error::Precondition(format!(
                "no cgroup v1 cpu hierarchy under {} (need {}/cpu/cgroup.procs); the lab needs cgroup v1 and root",
                root.display(),
                root.display()
            ))
        })?;
        let cpuacct = pick(&["cpuacct", "cpu,cpuacct"]).ok_or_else(|| {
            Error::Precondition(format!(
                "no cgroup v1 cpuacct hierarchy under {}",
                root.display()
            ))
        })?;
        let fs = CgroupFs {
            root: root.to_path_buf(),
            cpu,
            cpuacct,
            lab: lab.to_string(),
        };
        for dir in [&fs.cpu, &fs.cpuacct] {
            let probe = dir.join(format!("{lab}-probe-{}", std::process::id()));
            fs::create_dir(&probe).map_err(|e| {
                Error::Precondition(format!(
                    "cannot create a cgroup under {} ({e}); run as root",
                    dir.display()
                ))
            })?;
            let _ = fs::remove_dir(&probe);
        }
        Ok(fs)
    }

    /// The cgroup root given to [`CgroupFs::open`].
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of `rel` (relative to the lab subtree) relative to the usage
    /// (cpuacct) hierarchy: what host agents are given.
    pub fn agent_path(&self, rel: &str) -> String {
        join_rel(&[&self.lab, rel])
    }

    /// Path of `rel` relative to the lab subtree in each hierarchy.
    fn dirs(&self, rel: &str) -> Vec<PathBuf> {
        let mut out = vec![self.cpu.join(&self.lab).join(rel)];
        let acct = self.cpuacct.join(&self.lab).join(rel);
        if acct != out[0] {
            out.push(acct);
        }
        out
    }

    /// Does the lab subtree exist already (from another run)?
    pub fn exists(&self) -> bool {
        self.dirs("").iter().any(|d| d.exists())
    }

    /// Create a cgroup (and its parents) in both hierarchies.
    pub fn create(&self, rel: &str) -> Result<()> {
        for dir in self.dirs(rel) {
            fs::create_dir_all(&dir).map_err(|e| Error::io("create cgroup", &dir, e))?;
        }
        Ok(())
    }

    /// Limit a cgroup to `millicores` of CPU (CFS quota over [`PERIOD_US`]).
    pub fn set_quota(&self, rel: &str, millicores: u64) -> Result<()> {
        let dir = self.cpu.join(&self.lab).join(rel);
        write(&dir.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
        let quota = millicores.max(1) * PERIOD_US / 1000;
        write(&dir.join("cpu.cfs_quota_us"), &quota.max(1000).to_string())
    }

    /// Set the CFS weight of a cgroup (what Kubernetes derives from a CPU
    /// request: 1024 per core).
    pub fn set_shares(&self, rel: &str, shares: u64) -> Result<()> {
        let dir = self.cpu.join(&self.lab).join(rel);
        write(&dir.join("cpu.shares"), &shares.max(2).to_string())
    }

    /// Move a whole process (all its threads) into a cgroup of both hierarchies.
    pub fn place(&self, rel: &str, pid: u32) -> Result<()> {
        for dir in self.dirs(rel) {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// The `cgroup.procs` files of a cgroup in every hierarchy (for
    /// [`crate::procs::Proc::spawn_in`]).
    pub fn procs_files(&self, rel: &str) -> Vec<PathBuf> {
        self.dirs(rel)
            .into_iter()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    /// The `cpuacct.usage` file of a cgroup (what a pod reads for ORCA reports).
    pub fn usage_file(&self, rel: &str) -> PathBuf {
        self.cpuacct.join(&self.lab).join(rel).join("cpuacct.usage")
    }

    /// Total CPU time used by a cgroup, in nanoseconds.
    pub fn usage_ns(&self, rel: &str) -> Result<u64> {
        let file = self.usage_file(rel);
        let text = fs::read_to_string(&file).map_err(|e| Error::io("read", &file, e))?;
        text.trim()
            .parse()
            .map_err(|e| Error::Results(format!("{}: {e}", file.display())))
    }

    /// Every process id in the lab subtree, in both hierarchies.
    pub fn live_pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for dir in self.dirs("") {
            walk(&dir, &mut |d| {
                if let Ok(text) = fs::read_to_string(d.join("cgroup.procs")) {
                    pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
                }
            });
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Remove the lab subtree, leaf first. Processes must be gone already;
    /// a cgroup that still holds one is left and reported.
    pub fn remove_all(&self) -> Result<()> {
        let mut failed = Vec::new();
        for dir in self.dirs("") {
            let mut all = Vec::new();
            walk(&dir, &mut |d| all.push(d.to_path_buf()));
            // walk is pre-order: reverse gives leaves before their parents.
            for d in all.iter().rev() {
                if let Err(e) = fs::remove_dir(d)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    failed.push(format!("{}: {e}", d.display()));
                }
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(Error::Results(format!(
                "could not remove cgroups: {}",
                failed.join("; ")
            )))
        }
    }
}

fn join_rel(parts: &[&str]) -> String {
    parts
        .iter()
        .flat_map(|p| p.split('/'))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

fn write(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value).map_err(|e| Error::io("write", path, e))
}

/// Pre-order walk over a directory and its subdirectories.
fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    if !dir.is_dir() {
        return;
    }
    f(dir);
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(&entry.path(), f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for h in ["cpu", "cpuacct"] {
            fs::create_dir_all(dir.path().join(h)).unwrap();
            fs::write(dir.path().join(h).join("cgroup.procs"), "").unwrap();
        }
        dir
    }

    #[test]
    fn open_finds_separate_hierarchies_and_agent_paths_use_cpuacct() {
        let root = fake_root();
        let fs = CgroupFs::open(root.path(), "mplb-lab").unwrap();
        assert_eq!(fs.agent_path("node-a/p-0"), "mplb-lab/node-a/p-0");
        assert!(!fs.exists());
        fs.create("node-a/p-0").unwrap();
        assert!(fs.exists());
        assert!(root.path().join("cpu/mplb-lab/node-a/p-0").is_dir());
        assert!(root.path().join("cpuacct/mplb-lab/node-a/p-0").is_dir());
    }

    #[test]
    fn open_refuses_without_hierarchies() {
        let dir = tempfile::tempdir().unwrap();
        let err = CgroupFs::open(dir.path(), "mplb-lab").unwrap_err();
        assert!(err.to_string().contains("cgroup v1"), "{err}");
    }

    #[test]
    fn quota_pids_usage_and_leaf_first_removal() {
        let root = fake_root();
        let fs = CgroupFs::open(root.path(), "lab").unwrap();
        fs.create("n/p").unwrap();
        fs.set_quota("n", 250).unwrap();
        let cpu = root.path().join("cpu/lab/n");
        assert_eq!(
            fs::read_to_string(cpu.join("cpu.cfs_quota_us")).unwrap(),
            "25000"
        );
        assert_eq!(
            fs::read_to_string(cpu.join("cpu.cfs_period_us")).unwrap(),
            "100000"
        );
        fs.place("n/p", 42).unwrap();
        assert_eq!(fs.live_pids(), vec![42]);
        fs::write(root.path().join("cpuacct/lab/n/cpuacct.usage"), "123456\n").unwrap();
        assert_eq!(fs.usage_ns("n").unwrap(), 123_456);
        // Plain directories with files cannot be rmdir'ed (real cgroups can):
        // clear the files the test wrote, then remove.
        for f in [
            "cpu/lab/n/cpu.cfs_quota_us",
            "cpu/lab/n/cpu.cfs_period_us",
            "cpu/lab/n/p/cgroup.procs",
            "cpuacct/lab/n/p/cgroup.procs",
            "cpuacct/lab/n/cpuacct.usage",
        ] {
            fs::remove_file(root.path().join(f)).unwrap();
        }
        fs.remove_all().unwrap();
        assert!(!fs.exists());
    }
}
