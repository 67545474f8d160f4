//! `mplb-lab --quick` end to end: real Envoys with the filter, the real
//! weight server and host agents, lab-app pods in cgroup v1 nodes. Checks the
//! lab's own report: reports arrive from every node, the table version
//! advances, the stamped split follows operator weights (the pods' own served
//! counts), and killing the weight server mid-load costs zero non-2xx.
//! Needs root, cgroup v1, Envoy (scripts/setup.sh), hey, and
//! `cargo build --workspace --bins` plus the wasm build first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test]

use std::process::Command;

use mplb_lab::thresholds;

#[test]
fn quick_lab_run_passes_every_end_to_end_check() {
    let results = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mplb-lab"))
        .args([
            "--quick",
            "--base-port",
            "0",
            "--cgroup-name",
            "mplb-lab-test-quick",
            // A tree left by a killed earlier run of this test is removed.
            "--force-cleanup",
        ])
        .arg("--results-dir")
        .arg(results.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "mplb-lab --quick failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );

    let report_path = std::fs::read_dir(results.path().join("quick"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("quick.json");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();

    // Reports arrive from every node.
    assert_eq!(r["nodes_reporting"], r["nodes_expected"], "{r:#}");
    assert_eq!(r["nodes_expected"].as_array().unwrap().len(), 3);
    // The table version advances.
    assert!(
        r["later_version"].as_u64().unwrap() > r["first_version"].as_u64().unwrap(),
        "{r:#}"
    );
    // The stamped split follows the served weights, for both hops.
    let split = r["split"].as_object().unwrap();
    assert_eq!(split.len(), 6, "{r:#}");
    for (pod, pair) in split {
        let (want, got) = (pair[0].as_f64().unwrap(), pair[1].as_f64().unwrap());
        assert!(
            (want - got).abs() <= thresholds::MAX_SPLIT_ERROR,
            "{pod}: expected share {want}, served {got}"
        );
    }
    let served = r["split_requests"].as_u64().unwrap();
    assert!(served >= thresholds::MIN_SPLIT_REQUESTS, "{r:#}");
    assert_eq!(
        r["stamped_for_me"].as_u64().unwrap(),
        served,
        "every request stamped for the pod that served it"
    );
    assert_eq!(r["stamped_other"], 0);
    // The weight server killed mid-load: zero non-2xx.
    assert!(
        r["drill"]["requests"].as_u64().unwrap() >= thresholds::MIN_DRILL_REQUESTS,
        "{r:#}"
    );
    assert_eq!(r["drill"]["non_2xx"], 0, "{r:#}");
    assert_eq!(r["drill_gateway"]["5xx"], 0, "{r:#}");
    assert_eq!(r["drill_gateway"]["4xx"], 0, "{r:#}");
    assert_eq!(r["failures"].as_array().unwrap().len(), 0, "{r:#}");
}
