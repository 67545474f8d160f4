//! Cgroup hierarchies: which version and layout is mounted under the root,
//! and how to read a cgroup's cumulative CPU and its CPU quota.
//!
//! Supported: cgroup v2 (unified, `cgroup.controllers` at the root), cgroup v1
//! with separate `cpu` and `cpuacct` hierarchies, and v1 with the combined
//! `cpu,cpuacct` hierarchy (with or without the `cpu`/`cpuacct` symlinks).
//! All paths of cgroups are relative to the usage hierarchy: `cpuacct` on v1,
//! the unified tree on v2. On v1 the quota is read from the same relative path
//! under the `cpu` hierarchy.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::AgentError;

/// Largest cgroup file we read (they are a few hundred bytes).
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// The mounted cgroup layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// cgroup v1: `cpuacct` for usage, `cpu` (if mounted) for quotas.
    V1 {
        /// The `cpuacct` hierarchy's mount point.
        cpuacct: PathBuf,
        /// The `cpu` hierarchy's mount point, when mounted.
        cpu: Option<PathBuf>,
    },
    /// cgroup v2: one unified tree.
    V2 {
        /// The unified tree's mount point.
        root: PathBuf,
    },
}

impl Layout {
    /// Detect the layout under `root` (normally `/sys/fs/cgroup`).
    pub fn detect(root: &Path) -> Result<Layout, AgentError> {
        if root.join("cgroup.controllers").is_file() {
            return Ok(Layout::V2 {
                root: root.to_path_buf(),
            });
        }
        let v1_dirs = ["cpuacct", "cpu,cpuacct", "cpuacct,cpu"];
        let cpuacct = std::iter::once(root.to_path_buf())
            .chain(v1_dirs.iter().map(|d| root.join(d)))
            .find(|d| d.join("cpuacct.usage").is_file());
        if let Some(cpuacct) = cpuacct {
            let cpu = std::iter::once(root.to_path_buf())
                .chain(
                    ["cpu", "cpu,cpuacct", "cpuacct,cpu"]
                        .iter()
                        .map(|d| root.join(d)),
                )
                .find(|d| d.join("cpu.cfs_period_us").is_file());
            return Ok(Layout::V1 { cpuacct, cpu });
        }
        // Hybrid systems without a v1 cpuacct: the unified tree still has cpu.stat.
        let unified = root.join("unified");
        if unified.join("cgroup.controllers").is_file() {
            return Ok(Layout::V2 { root: unified });
        }
        Err(AgentError::NoCgroup(root.to_path_buf()))
    }

    /// The tree in which pod cgroups are looked up and usage is read.
    pub fn usage_root(&self) -> &Path {
        match self {
            Layout::V1 { cpuacct, .. } => cpuacct,
            Layout::V2 { root } => root,
        }
    }

    /// Short name for logs.
    pub fn describe(&self) -> String {
        match self {
            Layout::V1 { cpuacct, cpu } => format!(
                "cgroup v1 (cpuacct at {}, cpu at {})",
                cpuacct.display(),
                cpu.as_ref()
                    .map_or_else(|| "-".to_string(), |c| c.display().to_string())
            ),
            Layout::V2 { root } => format!("cgroup v2 (unified at {})", root.display()),
        }
    }

    /// Cumulative CPU time of the cgroup at `rel`, in nanoseconds.
    pub fn usage_ns(&self, rel: &Path) -> Result<u64, AgentError> {
        match self {
            Layout::V1 { cpuacct, .. } => {
                let path = cpuacct.join(rel).join("cpuacct.usage");
                let text = read_small(&path)?;
                text.trim()
                    .parse::<u64>()
                    .map_err(|e| AgentError::malformed(&path, format!("{e}: {:?}", clip(&text))))
            }
            Layout::V2 { root } => {
                let path = root.join(rel).join("cpu.stat");
                let text = read_small(&path)?;
                parse_usage_usec(&text)
                    .map(|us| us.saturating_mul(1000))
                    .map_err(|reason| AgentError::malformed(&path, reason))
            }
        }
    }

    /// The CPU quota of the cgroup at `rel` itself, in millicores; `None` if unlimited.
    pub fn quota_millicores(&self, rel: &Path) -> Result<Option<f64>, AgentError> {
        match self {
            Layout::V1 { cpu: None, .. } => Ok(None),
            Layout::V1 { cpu: Some(cpu), .. } => {
                let dir = cpu.join(rel);
                let quota_path = dir.join("cpu.cfs_quota_us");
                let quota_text = read_small(&quota_path)?;
                let quota: i64 = quota_text.trim().parse().map_err(|e| {
                    AgentError::malformed(&quota_path, format!("{e}: {:?}", clip(&quota_text)))
                })?;
                if quota < 0 {
                    return Ok(None);
                }
                let period_path = dir.join("cpu.cfs_period_us");
                let period_text = read_small(&period_path)?;
                let period: u64 = period_text.trim().parse().map_err(|e| {
                    AgentError::malformed(&period_path, format!("{e}: {:?}", clip(&period_text)))
                })?;
                quota_ratio(quota as f64, period, &period_path)
            }
            Layout::V2 { root } => {
                let path = root.join(rel).join("cpu.max");
                if !path.exists() {
                    // No cpu controller enabled for this cgroup: no quota.
                    return Ok(None);
                }
                let text = read_small(&path)?;
                let mut fields = text.split_whitespace();
                let (Some(quota), period) = (fields.next(), fields.next()) else {
                    return Err(AgentError::malformed(&path, "empty cpu.max"));
                };
                if quota == "max" {
                    return Ok(None);
                }
                let quota: u64 = quota
                    .parse()
                    .map_err(|e| AgentError::malformed(&path, format!("quota: {e}")))?;
                let period: u64 = period
                    .unwrap_or("100000")
                    .parse()
                    .map_err(|e| AgentError::malformed(&path, format!("period: {e}")))?;
                quota_ratio(quota as f64, period, &path)
            }
        }
    }

    /// The tightest quota of `rel` and all its ancestors, in millicores.
    pub fn effective_quota_millicores(&self, rel: &Path) -> Result<Option<f64>, AgentError> {
        let mut best = self.quota_millicores(rel)?;
        let mut cur = rel.parent();
        while let Some(dir) = cur {
            // An ancestor without quota files (the root of some trees) has no quota.
            if let Ok(Some(q)) = self.quota_millicores(dir) {
                best = Some(best.map_or(q, |b| b.min(q)));
            }
            cur = dir.parent();
        }
        Ok(best)
    }
}

fn quota_ratio(quota_us: f64, period_us: u64, path: &Path) -> Result<Option<f64>, AgentError> {
    if period_us == 0 {
        return Err(AgentError::malformed(path, "period is 0"));
    }
    Ok(Some(quota_us * 1000.0 / period_us as f64))
}

/// `usage_usec` from a v2 `cpu.stat`.
pub fn parse_usage_usec(text: &str) -> Result<u64, String> {
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        if fields.next() == Some("usage_usec") {
            let value = fields.next().ok_or("usage_usec has no value")?;
            return value
                .parse::<u64>()
                .map_err(|e| format!("usage_usec {:?}: {e}", clip(value)));
        }
    }
    Err(format!("no usage_usec line in {:?}", clip(text)))
}

/// Read a small text file, bounded.
pub fn read_small(path: &Path) -> Result<String, AgentError> {
    use std::io::Read;
    let file = fs::File::open(path).map_err(|e| AgentError::read(path, e))?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| AgentError::read(path, e))?;
    Ok(text)
}

/// The first characters of a text, for error messages.
pub(crate) fn clip(text: &str) -> String {
    text.chars().take(48).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn detects_v2_v1_split_v1_combined_and_nothing() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "v2/cgroup.controllers", "cpu memory\n");
        assert_eq!(
            Layout::detect(&t.path().join("v2")).unwrap(),
            Layout::V2 {
                root: t.path().join("v2")
            }
        );

        write(t.path(), "split/cpuacct/cpuacct.usage", "1\n");
        write(t.path(), "split/cpu/cpu.cfs_period_us", "100000\n");
        let split = t.path().join("split");
        assert_eq!(
            Layout::detect(&split).unwrap(),
            Layout::V1 {
                cpuacct: split.join("cpuacct"),
                cpu: Some(split.join("cpu"))
            }
        );

        write(t.path(), "comb/cpu,cpuacct/cpuacct.usage", "1\n");
        write(t.path(), "comb/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
        let comb = t.path().join("comb");
        let both = comb.join("cpu,cpuacct");
        assert_eq!(
            Layout::detect(&comb).unwrap(),
            Layout::V1 {
                cpuacct: both.clone(),
                cpu: Some(both)
            }
        );

        fs::create_dir_all(t.path().join("empty")).unwrap();
        let err = Layout::detect(&t.path().join("empty")).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn reads_usage_and_quotas() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "cgroup.controllers", "cpu\n");
        write(t.path(), "a/cpu.stat", "usage_usec 1500\nuser_usec 1000\n");
        write(t.path(), "a/cpu.max", "50000 100000\n");
        write(t.path(), "a/b/cpu.stat", "usage_usec 7\n");
        write(t.path(), "a/b/cpu.max", "max 100000\n");
        write(t.path(), "bad/cpu.stat", "user_usec 3\n");
        let l = Layout::detect(t.path()).unwrap();
        assert_eq!(l.usage_ns(Path::new("a")).unwrap(), 1_500_000);
        assert_eq!(l.quota_millicores(Path::new("a")).unwrap(), Some(500.0));
        assert_eq!(l.quota_millicores(Path::new("a/b")).unwrap(), None);
        assert_eq!(
            l.effective_quota_millicores(Path::new("a/b")).unwrap(),
            Some(500.0)
        );
        let err = l.usage_ns(Path::new("bad")).unwrap_err().to_string();
        assert!(
            err.contains("bad/cpu.stat") && err.contains("usage_usec"),
            "{err}"
        );
        let err = l.usage_ns(Path::new("gone")).unwrap_err().to_string();
        assert!(err.contains("gone/cpu.stat"), "{err}");

        let v1 = tempfile::tempdir().unwrap();
        write(v1.path(), "cpuacct/cpuacct.usage", "10\n");
        write(v1.path(), "cpuacct/n/cpuacct.usage", "123456789\n");
        write(v1.path(), "cpu/cpu.cfs_period_us", "100000\n");
        write(v1.path(), "cpu/cpu.cfs_quota_us", "-1\n");
        write(v1.path(), "cpu/n/cpu.cfs_period_us", "100000\n");
        write(v1.path(), "cpu/n/cpu.cfs_quota_us", "150000\n");
        write(v1.path(), "cpuacct/junk/cpuacct.usage", "12a\n");
        let l = Layout::detect(v1.path()).unwrap();
        assert_eq!(l.usage_ns(Path::new("n")).unwrap(), 123_456_789);
        assert_eq!(l.quota_millicores(Path::new("n")).unwrap(), Some(1500.0));
        assert_eq!(l.quota_millicores(Path::new("")).unwrap(), None);
        let err = l.usage_ns(Path::new("junk")).unwrap_err().to_string();
        assert!(err.contains("junk/cpuacct.usage"), "{err}");
    }
}
