//! `weight-server render-istio` output validates against the Istio CRD
//! schemas (../shared/istio-crds/crd-all.gen.yaml) with python3 + jsonschema
//! from the venv of scripts/setup.sh.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod proc;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn python() -> PathBuf {
    let venv = std::env::var_os("MPLB_VENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/mplb/venv")))
        .expect("HOME or MPLB_VENV");
    let py = venv.join("bin/python3");
    assert!(
        py.exists(),
        "{} is missing: run scripts/setup.sh",
        py.display()
    );
    py
}

fn crds() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates = [
        std::env::var_os("MPLB_ISTIO_CRDS").map(PathBuf::from),
        Some(root.join("shared/istio-crds/crd-all.gen.yaml")),
        Some(PathBuf::from("/work/shared/istio-crds/crd-all.gen.yaml")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.exists())
        .expect("the Istio CRDs (shared/istio-crds/crd-all.gen.yaml beside the checkout, or MPLB_ISTIO_CRDS)")
}

fn render(extra: &[&str]) -> String {
    let out = Command::new(proc::BIN)
        .args([
            "render-istio",
            "--topology",
            &proc::example("hotel-topology.yaml"),
        ])
        .args(extra)
        .env_remove("MPLB_TOPOLOGY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn validate(yaml: &str) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/validate_istio.py");
    let mut child = Command::new(python())
        .arg(script)
        .arg(crds())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "schema check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn subset_mode_validates_against_the_crds() {
    let yaml = render(&[]);
    assert!(yaml.contains("statefulset.kubernetes.io/pod-name: frontend-2"));
    assert!(yaml.contains("x-lb-endpt:"));
    // 8 services: one DestinationRule and one VirtualService each.
    assert_eq!(validate(&yaml).trim(), "DestinationRule=8 VirtualService=8");
}

#[test]
fn custom_header_and_session_mode() {
    let yaml = render(&["--header", "x-pin"]);
    assert!(yaml.contains("x-pin:") && !yaml.contains("x-lb-endpt"));
    validate(&yaml);
    let yaml = render(&["--mode", "session", "--session-header", "x-sess"]);
    assert!(yaml.contains("istio.io/persistent-session-header: x-sess"));
    assert_eq!(validate(&yaml).trim(), "Service=8");
}

#[test]
fn a_bad_topology_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("broken-topology.yaml");
    std::fs::write(&f, "pods: [{name: a}]").unwrap();
    let out = Command::new(proc::BIN)
        .args(["render-istio", "--topology", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken-topology.yaml"));
}
