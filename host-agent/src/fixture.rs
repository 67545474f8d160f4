//! Fake cgroup trees with controllable counters, for tests and benchmarks:
//! the four Kubernetes layouts (v1/v2 x cgroupfs/systemd) and plain named
//! cgroups for local mode.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Cgroup version of a fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// v1 with separate `cpu` and `cpuacct` hierarchies.
    V1,
    /// v1 with the combined `cpu,cpuacct` hierarchy and `cpu`/`cpuacct` symlinks.
    V1Combined,
    /// v2: one unified tree.
    V2,
}

/// Kubelet cgroup driver of a fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// `kubepods[/<qos>]/pod<uid>` directories.
    Cgroupfs,
    /// `kubepods.slice/...-pod<uid>.slice` units (dashes in the uid as `_`).
    Systemd,
}

/// A fixture tree rooted at `root` (the `--cgroup-root`).
#[derive(Debug)]
pub struct Tree {
    /// The root of the fake cgroup tree.
    pub root: PathBuf,
    /// Its cgroup version.
    pub version: Version,
}

impl Tree {
    /// An empty hierarchy of the given version.
    pub fn create(root: &Path, version: Version) -> io::Result<Tree> {
        let tree = Tree {
            root: root.to_path_buf(),
            version,
        };
        match version {
            Version::V2 => {
                fs::create_dir_all(root)?;
                fs::write(
                    root.join("cgroup.controllers"),
                    "cpuset cpu io memory pids\n",
                )?;
            }
            Version::V1 => {
                fs::create_dir_all(root.join("cpuacct"))?;
                fs::create_dir_all(root.join("cpu"))?;
            }
            Version::V1Combined => {
                fs::create_dir_all(root.join("cpu,cpuacct"))?;
                #[cfg(unix)]
                {
                    std::os::unix::fs::symlink("cpu,cpuacct", root.join("cpu"))?;
                    std::os::unix::fs::symlink("cpu,cpuacct", root.join("cpuacct"))?;
                }
            }
        }
        tree.set_usage_ns(Path::new(""), 0)?;
        tree.set_quota(Path::new(""), None)?;
        Ok(tree)
    }

    fn usage_dir(&self, rel: &Path) -> PathBuf {
        match self.version {
            Version::V2 => self.root.join(rel),
            Version::V1 => self.root.join("cpuacct").join(rel),
            Version::V1Combined => self.root.join("cpu,cpuacct").join(rel),
        }
    }

    fn cpu_dir(&self, rel: &Path) -> PathBuf {
        match self.version {
            Version::V2 => self.root.join(rel),
            Version::V1 => self.root.join("cpu").join(rel),
            Version::V1Combined => self.root.join("cpu,cpuacct").join(rel),
        }
    }

    /// Set the cumulative CPU of a cgroup (creating it).
    pub fn set_usage_ns(&self, rel: &Path, ns: u64) -> io::Result<()> {
        let dir = self.usage_dir(rel);
        fs::create_dir_all(&dir)?;
        match self.version {
            Version::V2 => fs::write(
                dir.join("cpu.stat"),
                format!(
                    "usage_usec {}\nuser_usec {}\nsystem_usec {}\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
                    ns / 1000,
                    ns / 2000,
                    ns / 2000
                ),
            ),
            Version::V1 | Version::V1Combined => {
                fs::write(dir.join("cpuacct.usage"), format!("{ns}\n"))
            }
        }
    }

    /// Set the CPU quota of a cgroup in millicores (`None` = unlimited).
    pub fn set_quota(&self, rel: &Path, millicores: Option<u64>) -> io::Result<()> {
        let dir = self.cpu_dir(rel);
        fs::create_dir_all(&dir)?;
        match self.version {
            Version::V2 => fs::write(
                dir.join("cpu.max"),
                match millicores {
                    Some(m) => format!("{} 100000\n", m * 100),
                    None => "max 100000\n".to_string(),
                },
            ),
            Version::V1 | Version::V1Combined => {
                fs::write(dir.join("cpu.cfs_period_us"), "100000\n")?;
                fs::write(
                    dir.join("cpu.cfs_quota_us"),
                    match millicores {
                        Some(m) => format!("{}\n", m * 100),
                        None => "-1\n".to_string(),
                    },
                )
            }
        }
    }

    /// Relative path of a Kubernetes pod cgroup for this driver and QoS class
    /// (`"guaranteed"`, `"burstable"` or `"besteffort"`).
    pub fn pod_rel(driver: Driver, qos: &str, uid: &str) -> PathBuf {
        let guaranteed = qos == "guaranteed";
        match driver {
            Driver::Cgroupfs if guaranteed => PathBuf::from(format!("kubepods/pod{uid}")),
            Driver::Cgroupfs => PathBuf::from(format!("kubepods/{qos}/pod{uid}")),
            Driver::Systemd => {
                let u = uid.replace('-', "_");
                if guaranteed {
                    PathBuf::from(format!("kubepods.slice/kubepods-pod{u}.slice"))
                } else {
                    PathBuf::from(format!(
                        "kubepods.slice/kubepods-{qos}.slice/kubepods-{qos}-pod{u}.slice"
                    ))
                }
            }
        }
    }

    /// Remove a cgroup directory (a pod going away).
    pub fn remove(&self, rel: &Path) -> io::Result<()> {
        fs::remove_dir_all(self.usage_dir(rel))
    }

    /// Path of the usage file of a cgroup (to break it in tests).
    pub fn usage_file(&self, rel: &Path) -> PathBuf {
        match self.version {
            Version::V2 => self.usage_dir(rel).join("cpu.stat"),
            Version::V1 | Version::V1Combined => self.usage_dir(rel).join("cpuacct.usage"),
        }
    }
}

/// A `/proc`-like directory with a `stat` of `cpus` CPUs and the given totals.
pub fn write_proc(proc_root: &Path, cpus: u32, busy: u64, idle: u64) -> io::Result<()> {
    fs::create_dir_all(proc_root.join("self"))?;
    let mut stat = format!("cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\n");
    for i in 0..cpus {
        stat.push_str(&format!("cpu{i} 0 0 0 0 0 0 0 0 0 0\n"));
    }
    stat.push_str("intr 0\nctxt 0\n");
    fs::write(proc_root.join("stat"), stat)?;
    fs::write(proc_root.join("self/cgroup"), "0::/\n")
}

/// A canonical-looking pod uid for index `i`.
pub fn uid(i: u32) -> String {
    format!("{i:08x}-0000-4000-8000-{:012x}", u64::from(i) * 7919)
}
