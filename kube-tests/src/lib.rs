//! A real Kubernetes control plane for the tests: etcd and kube-apiserver
//! built from the Go module in `kube-harness/` (cached under
//! `~/.cache/mplb/kube`), started on free loopback ports with RBAC,
//! service-account token signing and an admin token for the test itself.
//! No kubelet and no controllers: tests create Nodes and Pods and set pod
//! status through the status subresource ([`objects`]).
//!
//! Layout: [`binaries`] (build or reuse the Go programs), [`pki`] (keys),
//! [`process`] (child processes killed on drop), [`control_plane`] (etcd +
//! API server, kubeconfigs, tokens, restarts, compaction), [`objects`]
//! (namespaces, nodes, pods, services), [`kubectl`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod binaries;
pub mod control_plane;
pub mod error;
pub mod kubectl;
pub mod objects;
pub mod pki;
pub mod process;

pub use control_plane::ControlPlane;
pub use error::{Error, Result};

/// The repository root (this crate's parent folder).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| std::path::PathBuf::from("."))
}

/// Istio's CRDs: `MPLB_ISTIO_CRDS` (scripts/setup.sh sets it), else the
/// `istio.io/api` module that `istio-harness/` pins, from Go's module cache
/// (`go list -m`). Nothing outside the repository and Go's cache is read.
pub fn istio_crds() -> Result<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("MPLB_ISTIO_CRDS") {
        return Ok(std::path::PathBuf::from(p));
    }
    let go = std::env::var("MPLB_GO").unwrap_or_else(|_| "go".into());
    let out = std::process::Command::new(&go)
        .args(["list", "-m", "-f", "{{.Dir}}", "istio.io/api"])
        .current_dir(repo_root().join("istio-harness"))
        .output()
        .map_err(|e| {
            Error::Setup(format!(
                "{go} list -m istio.io/api: {e} (run scripts/setup.sh, or set MPLB_ISTIO_CRDS)"
            ))
        })?;
    if !out.status.success() {
        return Err(Error::Setup(format!(
            "go list -m istio.io/api: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let crds = std::path::Path::new(&dir).join("kubernetes/customresourcedefinitions.gen.yaml");
    if crds.exists() {
        Ok(crds)
    } else {
        Err(Error::Setup(format!(
            "Istio CRDs not found at {}",
            crds.display()
        )))
    }
}
