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

/// Istio's CRDs: `MPLB_ISTIO_CRDS`, else `shared/istio-crds/crd-all.gen.yaml`
/// beside the checkout (the convention of `envoyfilter/validate.py`).
pub fn istio_crds() -> Result<std::path::PathBuf> {
    let beside = repo_root().join("../shared/istio-crds/crd-all.gen.yaml");
    let candidates = [
        std::env::var_os("MPLB_ISTIO_CRDS").map(std::path::PathBuf::from),
        Some(beside),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.exists())
        .ok_or_else(|| {
            Error::Setup(
                "Istio CRDs not found: set MPLB_ISTIO_CRDS (crd-all.gen.yaml of Istio)".into(),
            )
        })
}
