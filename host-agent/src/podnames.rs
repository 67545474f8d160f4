//! Pod names and namespaces from the kubelet's log directories
//! (`/var/log/pods/<namespace>_<name>_<uid>/`), so the weight server can match
//! a pod before its own watch has seen it.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::AgentError;

/// Namespace and name of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodName {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
}

/// A cache of uid -> name, refreshed from the log directory when a uid is unknown.
#[derive(Debug)]
pub struct PodNames {
    dir: PathBuf,
    by_uid: HashMap<String, PodName>,
}

impl PodNames {
    /// An empty cache over the log directory `dir` (normally `/var/log/pods`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        PodNames {
            dir: dir.into(),
            by_uid: HashMap::new(),
        }
    }

    /// Make sure every uid in `uids` that has a log directory is known.
    /// Lists the directory only when some uid is missing from the cache.
    pub fn refresh_for<'a>(
        &mut self,
        uids: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), AgentError> {
        let mut missing = false;
        for uid in uids {
            if !self.by_uid.contains_key(uid) {
                missing = true;
                break;
            }
        }
        if missing {
            self.by_uid = scan(&self.dir)?;
        }
        Ok(())
    }

    /// The name of the pod `uid`, if known.
    pub fn get(&self, uid: &str) -> Option<&PodName> {
        self.by_uid.get(uid)
    }
}

/// Parse `<namespace>_<name>_<uid>` (none of the three may contain `_`).
pub fn parse_dir_name(dir_name: &str) -> Option<(String, PodName)> {
    let mut parts = dir_name.split('_');
    let (Some(namespace), Some(name), Some(uid), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if namespace.is_empty() || name.is_empty() || uid.is_empty() {
        return None;
    }
    Some((
        uid.to_ascii_lowercase(),
        PodName {
            namespace: namespace.to_string(),
            name: name.to_string(),
        },
    ))
}

fn scan(dir: &Path) -> Result<HashMap<String, PodName>, AgentError> {
    let entries = fs::read_dir(dir).map_err(|e| AgentError::read(dir, e))?;
    let mut out = HashMap::new();
    for entry in entries.flatten() {
        let parsed = entry
            .file_name()
            .into_string()
            .ok()
            .and_then(|name| parse_dir_name(&name));
        if let Some((uid, pod)) = parsed {
            out.insert(uid, pod);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_log_dir_names() {
        let (uid, pod) =
            parse_dir_name("hotel_profile-7d9f_0b5e8d6a-1c2d-4e5f-8a9b-0c1d2e3f4a5b").unwrap();
        assert_eq!(uid, "0b5e8d6a-1c2d-4e5f-8a9b-0c1d2e3f4a5b");
        assert_eq!(pod.namespace, "hotel");
        assert_eq!(pod.name, "profile-7d9f");
        assert_eq!(parse_dir_name("a_b"), None);
        assert_eq!(parse_dir_name("a_b_c_d"), None);
        assert_eq!(parse_dir_name("_b_c"), None);
    }

    #[test]
    fn refreshes_only_for_unknown_uids() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("ns_one_u1")).unwrap();
        let mut names = PodNames::new(t.path());
        names.refresh_for(["u1"]).unwrap();
        assert_eq!(names.get("u1").unwrap().name, "one");
        fs::create_dir(t.path().join("ns_two_u2")).unwrap();
        names.refresh_for(["u1"]).unwrap();
        assert!(
            names.get("u2").is_none(),
            "no rescan while all uids are known"
        );
        names.refresh_for(["u1", "u2"]).unwrap();
        assert_eq!(names.get("u2").unwrap().namespace, "ns");
        let mut missing = PodNames::new(t.path().join("nope"));
        let err = missing.refresh_for(["x"]).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }
}
