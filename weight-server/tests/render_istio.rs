//! `weight-server render-istio` output validates against the Istio CRD
//! schemas (istio.io/api's CRDs from the Go module cache) with python3 + jsonschema
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

/// MPLB_ISTIO_CRDS, else the CRDs of the istio.io/api module that
/// istio-harness/go.mod pins, from the Go module cache (`go list -m`);
/// nothing outside the repository and that cache is read.
fn crds() -> PathBuf {
    if let Some(p) = std::env::var_os("MPLB_ISTIO_CRDS") {
        return PathBuf::from(p);
    }
    let harness = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../istio-harness");
    let go = std::env::var("MPLB_GO").unwrap_or_else(|_| "go".into());
    let out = Command::new(go)
        .args(["list", "-m", "-f", "{{.Dir}}", "istio.io/api"])
        .current_dir(&harness)
        .output()
        .expect("go (run scripts/setup.sh, or set MPLB_ISTIO_CRDS)");
    assert!(out.status.success(), "go list -m istio.io/api: {out:?}");
    let dir = String::from_utf8(out.stdout).expect("utf-8 path");
    PathBuf::from(dir.trim()).join("kubernetes/customresourcedefinitions.gen.yaml")
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
