//! Admin state (policy, operator weights, drains) persisted under
//! `--state-dir` with an atomic write: temp file, fsync, rename, fsync of the
//! directory. At start the file is restored; a corrupt file stops the start
//! with an error naming it, never a silent reset.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// File name inside the state directory.
pub const STATE_FILE: &str = "admin-state.json";

/// What the admin API changes (the admin contract's type).
pub use mplb_wire::admin::AdminState;

/// Where the admin state lives (or nowhere, without `--state-dir`).
#[derive(Debug, Clone)]
pub struct Store {
    path: Option<PathBuf>,
}

impl Store {
    /// No persistence.
    pub fn memory() -> Self {
        Store { path: None }
    }

    /// Persist under `dir` (created if missing).
    pub fn in_dir(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::State {
            path: dir.to_path_buf(),
            reason: format!("cannot create the state directory: {e}"),
        })?;
        Ok(Store {
            path: Some(dir.join(STATE_FILE)),
        })
    }

    /// The state file, when persisted.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The saved state, `None` when there is no file yet.
    pub fn load(&self) -> Result<Option<AdminState>> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let err = |reason: String| Error::State {
            path: path.clone(),
            reason,
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(e.to_string())),
        };
        let state: AdminState = serde_json::from_slice(&bytes).map_err(|e| {
            err(format!(
                "corrupt admin state ({e}); fix or remove the file to start"
            ))
        })?;
        for (svc, w) in &state.static_weights {
            if w.values().any(|v| !v.is_finite() || *v < 0.0) || w.values().sum::<f64>() <= 0.0 {
                return Err(err(format!("corrupt admin state: bad weights for {svc:?}")));
            }
        }
        Ok(Some(state))
    }

    /// Write atomically: temp file, fsync, rename, fsync the directory.
    pub fn save(&self, state: &AdminState) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let err = |reason: String| Error::State {
            path: path.clone(),
            reason,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".{STATE_FILE}.tmp"));
        let body = serde_json::to_vec_pretty(state).map_err(|e| err(e.to_string()))?;
        let mut f = std::fs::File::create(&tmp).map_err(|e| err(e.to_string()))?;
        f.write_all(&body).map_err(|e| err(e.to_string()))?;
        f.sync_all().map_err(|e| err(e.to_string()))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| err(format!("fsync of the directory: {e}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyKind;

    #[test]
    fn round_trips_and_refuses_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::in_dir(&dir.path().join("sub")).unwrap();
        assert_eq!(store.load().unwrap(), None);
        let mut st = AdminState {
            policy: PolicyKind::Spare,
            ..AdminState::default()
        };
        st.drains.insert("a-0".into());
        st.static_weights.insert(
            "a.default.svc.cluster.local".into(),
            [("a-0".to_string(), 1.0)].into(),
        );
        store.save(&st).unwrap();
        assert_eq!(store.load().unwrap(), Some(st));
        let path = store.path().unwrap().to_path_buf();
        std::fs::write(&path, b"{\"policy\": \"spa").unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(e.contains(STATE_FILE) && e.contains("corrupt"), "{e}");
        std::fs::write(
            &path,
            br#"{"policy":"even","static_weights":{"s":{"p":-1}}}"#,
        )
        .unwrap();
        assert!(store.load().is_err());
        assert_eq!(Store::memory().load().unwrap(), None);
        Store::memory().save(&AdminState::default()).unwrap();
    }
}
