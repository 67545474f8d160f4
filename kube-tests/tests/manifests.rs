//! Every manifest in `envoyfilter/` passes `kubectl apply --dry-run=server`
//! against a real kube-apiserver 1.37 with Istio's CRDs installed: the API
//! server's own schema, defaulting and admission check every object.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use mplb_kube_tests::{ControlPlane, istio_crds, kubectl, repo_root};

fn manifests(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && p.file_name() != Some("tests".as_ref()) {
            manifests(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml")
            && p.file_name() != Some("kustomization.yaml".as_ref())
        {
            out.push(p);
        }
    }
}

/// Namespaces the manifests put objects in (`namespace: x` lines).
fn namespaces(files: &[PathBuf]) -> BTreeSet<String> {
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter_map(|l| l.trim().strip_prefix("namespace: "))
                .map(|n| n.trim().trim_matches('"').to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Install Istio's CRDs and wait until the API server serves them.
pub fn install_istio_crds(cp: &ControlPlane) {
    let crds = istio_crds().unwrap();
    let kc = cp.admin_kubeconfig();
    kubectl::ok(
        kc,
        &["apply", "--server-side", "-f", crds.to_str().unwrap()],
    )
    .unwrap();
    kubectl::ok(
        kc,
        &[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ],
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_manifest_passes_server_side_dry_run_with_istio_crds() {
    let cp = ControlPlane::start().await.unwrap();
    install_istio_crds(&cp);
    let kc = cp.admin_kubeconfig();
    let root = repo_root().join("envoyfilter");
    let mut files = Vec::new();
    manifests(&root, &mut files);
    files.sort();
    assert!(files.len() >= 6, "manifests found: {files:?}");
    for ns in namespaces(&files) {
        kubectl::ok(kc, &["create", "namespace", &ns]).unwrap();
    }
    let mut failures = Vec::new();
    for f in &files {
        let out = kubectl::run(
            kc,
            &["apply", "--dry-run=server", "-f", f.to_str().unwrap()],
        )
        .unwrap();
        if !out.status.success() {
            failures.push(format!(
                "{}: {}",
                f.strip_prefix(repo_root()).unwrap_or(f).display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    for k in [root.clone(), root.join("hotel")] {
        let out = kubectl::run(
            kc,
            &["apply", "--dry-run=server", "-k", k.to_str().unwrap()],
        )
        .unwrap();
        if !out.status.success() {
            failures.push(format!(
                "-k {}: {}",
                k.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "server-side dry run failed:\n{}",
        failures.join("\n")
    );
}

/// The harness can fail: an object the API server's schema rejects is
/// refused by the same dry run (a Deployment without containers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_rejects_an_invalid_object() {
    let cp = ControlPlane::start().await.unwrap();
    let bad = cp.dir().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x, namespace: default}\n\
         spec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    \
         spec: {containers: []}\n",
    )
    .unwrap();
    let out = kubectl::run(
        cp.admin_kubeconfig(),
        &["apply", "--dry-run=server", "-f", bad.to_str().unwrap()],
    )
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("containers"), "{err}");
}
