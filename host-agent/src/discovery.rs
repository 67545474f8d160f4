//! Kubernetes pod cgroups: find every pod's cgroup under the usage tree, for
//! both kubelet cgroup drivers and all QoS classes.
//!
//! - cgroupfs: `kubepods/pod<uid>/` (guaranteed), `kubepods/burstable/pod<uid>/`,
//!   `kubepods/besteffort/pod<uid>/`.
//! - systemd: `kubepods.slice/kubepods-pod<uid_>.slice/` (guaranteed),
//!   `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/`,
//!   and the same for besteffort; the uid has `_` for `-`.
//!
//! The kubepods tree is looked for at the top of the usage tree and one level
//! down (kind and some distributions nest it, e.g.
//! `kubelet.slice/kubelet-kubepods.slice/`).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::AgentError;

/// One pod cgroup found on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodCgroup {
    /// Canonical dashed pod UID.
    pub uid: String,
    /// Cgroup path relative to the usage root.
    pub rel: PathBuf,
}

/// Longest pod UID accepted from a directory name.
const MAX_UID_LEN: usize = 64;

/// Every pod cgroup under `usage_root`, sorted by uid. Directories that cannot
/// be listed are reported in `problems` and skipped.
pub fn discover(usage_root: &Path, problems: &mut Vec<AgentError>) -> Vec<PodCgroup> {
    let mut pods = Vec::new();
    for top in kubepods_roots(usage_root, problems) {
        for (name, rel) in subdirs(usage_root, &top, problems) {
            if let Some(uid) = pod_uid(&name) {
                pods.push(PodCgroup { uid, rel });
            } else if is_qos(&name) {
                for (name, rel) in subdirs(usage_root, &rel, problems) {
                    if let Some(uid) = pod_uid(&name) {
                        pods.push(PodCgroup { uid, rel });
                    }
                }
            }
        }
    }
    pods.sort_by(|a, b| a.uid.cmp(&b.uid));
    pods.dedup_by(|a, b| a.uid == b.uid);
    pods
}

/// Relative paths of the kubepods trees (depth 0 or 1).
fn kubepods_roots(usage_root: &Path, problems: &mut Vec<AgentError>) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    for (name, rel) in subdirs(usage_root, Path::new(""), problems) {
        if is_kubepods(&name) {
            roots.push(rel);
        } else if name.starts_with("kubelet") {
            let mut ignore = Vec::new();
            for (name, rel) in subdirs(usage_root, &rel, &mut ignore) {
                if is_kubepods(&name) {
                    roots.push(rel);
                }
            }
        }
    }
    roots
}

fn is_kubepods(name: &str) -> bool {
    name == "kubepods" || name == "kubepods.slice" || name.ends_with("-kubepods.slice")
}

fn is_qos(name: &str) -> bool {
    matches!(name, "burstable" | "besteffort")
        || name.ends_with("-burstable.slice")
        || name.ends_with("-besteffort.slice")
}

/// The canonical uid in a pod cgroup directory name, if it is one.
pub fn pod_uid(name: &str) -> Option<String> {
    let raw = match name.strip_suffix(".slice") {
        // systemd: the last dash-separated segment is `pod<uid_with_underscores>`.
        Some(stem) => stem.rsplit('-').next()?.strip_prefix("pod")?,
        None => name.strip_prefix("pod")?,
    };
    let ok = !raw.is_empty()
        && raw.len() <= MAX_UID_LEN
        && raw
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == '-' || c == '_');
    ok.then(|| raw.replace('_', "-").to_ascii_lowercase())
}

/// Sub-directories of `usage_root/rel` as (name, relative path).
fn subdirs(
    usage_root: &Path,
    rel: &Path,
    problems: &mut Vec<AgentError>,
) -> Vec<(String, PathBuf)> {
    let dir = usage_root.join(rel);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => {
            // A tree that vanished between listing and reading is normal churn.
            if e.kind() != std::io::ErrorKind::NotFound {
                problems.push(AgentError::read(dir, e));
            }
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if !is_dir {
            continue;
        }
        if let Ok(name) = entry.file_name().into_string() {
            let rel = rel.join(&name);
            out.push((name, rel));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_from_both_drivers() {
        let uid = "0b5e8d6a-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
        assert_eq!(pod_uid(&format!("pod{uid}")).as_deref(), Some(uid));
        let under = uid.replace('-', "_");
        for name in [
            format!("kubepods-pod{under}.slice"),
            format!("kubepods-burstable-pod{under}.slice"),
            format!("kubelet-kubepods-besteffort-pod{under}.slice"),
        ] {
            assert_eq!(pod_uid(&name).as_deref(), Some(uid), "{name}");
        }
        // Static pods have a 32-hex config hash as uid.
        assert_eq!(
            pod_uid("pod6a7f3b1c9d2e4f5a6b7c8d9e0f1a2b3c").as_deref(),
            Some("6a7f3b1c9d2e4f5a6b7c8d9e0f1a2b3c")
        );
        for not_pod in [
            "burstable",
            "kubepods-burstable.slice",
            "pod",
            "podxyz",
            "cri-containerd-abc.scope",
            "pod../etc",
        ] {
            assert_eq!(pod_uid(not_pod), None, "{not_pod}");
        }
    }

    #[test]
    fn finds_nested_kubelet_slices_and_skips_noise() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let uid = "11111111-2222-3333-4444-555555555555";
        let under = uid.replace('-', "_");
        for d in [
            format!(
                "kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod{under}.slice/cri-containerd-x.scope"
            ),
            "system.slice/docker.service".to_string(),
            "kubepods.slice/kubepods-besteffort.slice/not-a-pod".to_string(),
        ] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        let mut problems = Vec::new();
        let pods = discover(r, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].uid, uid);
        assert!(
            pods[0]
                .rel
                .starts_with("kubelet.slice/kubelet-kubepods.slice")
        );
    }
}
