//! kube-apiserver and etcd: built once by `kube-harness/build.sh` (which
//! caches them under `$MPLB_CACHE/kube/<key>/bin`) and found here.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::{Error, Result};

/// Paths of the control plane's programs.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The API server.
    pub kube_apiserver: PathBuf,
    /// etcd.
    pub etcd: PathBuf,
}

static BUILT: OnceLock<std::result::Result<Binaries, String>> = OnceLock::new();

/// Build (first call of a process, a no-op when cached) and return the
/// programs' paths.
pub fn get() -> Result<Binaries> {
    BUILT.get_or_init(build).clone().map_err(Error::Setup)
}

fn build() -> std::result::Result<Binaries, String> {
    let script = crate::repo_root().join("kube-harness/build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let bins = Binaries {
        kube_apiserver: dir.join("kube-apiserver"),
        etcd: dir.join("etcd"),
    };
    if !bins.kube_apiserver.exists() || !bins.etcd.exists() {
        return Err(format!(
            "{} printed {} without the programs",
            script.display(),
            dir.display()
        ));
    }
    Ok(bins)
}
