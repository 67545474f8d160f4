//! Scenario runs end to end: the short `smoke` scenario through every
//! baseline (the `cswrr` one must move traffic off the hot node), a scenario
//! with every event kind, and a malformed file that must start nothing.
//! Needs root, cgroup v1, Envoy (scripts/setup.sh), hey, and
//! `cargo build --workspace --bins` plus the wasm build first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test]

use std::path::Path;
use std::process::Command;

/// One lab run at a time: the runs share two cores.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn lab(results: &Path, cgroup: &str, args: &[&str]) -> std::process::Output {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    Command::new(env!("CARGO_BIN_EXE_mplb-lab"))
        .args([
            "--base-port",
            "0",
            "--cgroup-name",
            cgroup,
            "--force-cleanup",
        ])
        .arg("--results-dir")
        .arg(results)
        .args(args)
        .output()
        .unwrap()
}

fn results_json(results: &Path, scenario: &str) -> serde_json::Value {
    let dir = std::fs::read_dir(results.join(scenario))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "mplb-lab failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn smoke_runs_every_baseline_and_cswrr_favours_the_cold_node() {
    let results = tempfile::tempdir().unwrap();
    let out = lab(
        results.path(),
        "mplb-lab-test-smoke",
        &["--scenario", "smoke"],
    );
    ok(&out);
    let r = results_json(results.path(), "smoke");
    let runs = r["results"].as_array().unwrap();
    let policies: Vec<&str> = runs.iter().map(|x| x["policy"].as_str().unwrap()).collect();
    assert_eq!(policies, ["even", "cswrr", "spare"]);
    for x in runs {
        assert_eq!(x["load"]["non_2xx"], 0, "{x:#}");
        assert!(x["load"]["requests"].as_u64().unwrap() > 100, "{x:#}");
    }
    // node-b carries a 200m hog: with the nodes' CPU in its ORCA reports,
    // Envoy's client-side WRR sends the cold pod (frontend-0) more work.
    let cswrr = &runs[1]["pod_millicores"];
    let (cold, hot) = (
        cswrr["frontend-0"].as_f64().unwrap(),
        cswrr["frontend-1"].as_f64().unwrap(),
    );
    assert!(
        cold > 1.3 * hot,
        "cswrr: frontend-0 {cold}m vs frontend-1 {hot}m"
    );
    assert_eq!(
        r["config"]["cswrr"]["enable_oob_load_report"], false,
        "{:#}",
        r["config"]
    );
}

const EVENTS: &str = r#"
name: events
nodes:
  - { name: node-a, capacity_millicores: 300 }
  - { name: node-b, capacity_millicores: 300 }
tenants:
  - { name: hotel, fair_share_millicores: 400 }
services:
  - { name: frontend, tenant: hotel, port: 8080, cost_us: 1000, entry: true, pods_on: [node-a, node-b, node-b] }
load:
  - service: frontend
    steps:
      - { at_s: 0, rps: 60 }
      - { at_s: 8, rps: 90 }
events:
  - { at_s: 1, kind: hog_start, node: node-a, millicores: 150 }
  - { at_s: 2, kind: agent_kill, node: node-b }
  - { at_s: 3, kind: server_kill }
  - { at_s: 4, kind: server_restart }
  - { at_s: 5, kind: agent_restart, node: node-b }
  - { at_s: 6, kind: pod_add, pod: frontend-2 }
  - { at_s: 7, kind: pod_not_ready, pod: frontend-1 }
  - { at_s: 9, kind: pod_ready, pod: frontend-1 }
  - { at_s: 10, kind: pod_remove, pod: frontend-2 }
  - { at_s: 11, kind: hog_stop, node: node-a }
run: { policies: [spare], warmup_s: 2, duration_s: 13 }
"#;

#[test]
fn every_event_kind_is_applied_to_the_running_stack() {
    let results = tempfile::tempdir().unwrap();
    let file = results.path().join("events.yaml");
    std::fs::write(&file, EVENTS).unwrap();
    let out = lab(
        results.path(),
        "mplb-lab-test-events",
        &["--scenario", file.to_str().unwrap()],
    );
    ok(&out);
    let r = results_json(results.path(), "events");
    let run = &r["results"][0];
    let events = run["events"].as_array().unwrap();
    let labels: Vec<&str> = events
        .iter()
        .map(|e| e["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "hog_start node-a",
            "agent_kill node-b",
            "server_kill",
            "server_restart",
            "agent_restart node-b",
            "pod_add frontend-2",
            "pod_not_ready frontend-1",
            "pod_ready frontend-1",
            "pod_remove frontend-2",
            "hog_stop node-a"
        ]
    );
    let effect = |i: usize| events[i]["effect"].as_str().unwrap().to_string();
    assert!(effect(0).starts_with("hog pid "), "{}", effect(0));
    assert!(effect(1).ends_with("exited: true"), "{}", effect(1));
    assert!(effect(3).contains("healthz"), "{}", effect(3));
    assert!(effect(4).starts_with("agent pid "), "{}", effect(4));
    assert!(
        effect(5).contains("frontend-2 answers") && effect(5).contains("restarted"),
        "{}",
        effect(5)
    );
    assert!(effect(6).contains("restarted"), "{}", effect(6));
    assert!(effect(8).contains("exited: true"), "{}", effect(8));
    assert!(effect(9).ends_with("exited: true"), "{}", effect(9));
    for e in events {
        let late = e["applied_s"].as_f64().unwrap() - e["at_s"].as_f64().unwrap();
        assert!((0.0..3.0).contains(&late), "{e:#}");
    }
    // The hog burnt CPU in node-a; frontend-2 served while it was present;
    // two load steps were offered.
    assert!(
        run["pod_millicores"]["frontend-2"].as_f64().unwrap() > 0.0,
        "{run:#}"
    );
    assert!(run["load"]["requests"].as_u64().unwrap() > 600, "{run:#}");
    assert_eq!(r["config"]["schedules"][0][1].as_array().unwrap().len(), 2);
}

#[test]
fn a_malformed_scenario_names_the_field_and_starts_nothing() {
    let results = tempfile::tempdir().unwrap();
    let file = results.path().join("bad.yaml");
    std::fs::write(
        &file,
        EVENTS.replace(
            "pod: frontend-2 }\n  - { at_s: 7",
            "pod: db-0 }\n  - { at_s: 7",
        ),
    )
    .unwrap();
    let out = lab(
        results.path(),
        "mplb-lab-test-malformed",
        &["--scenario", file.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("scenario events[5].pod: unknown pod \"db-0\""),
        "{stderr}"
    );
    // Nothing started: no results, no cgroup.
    assert!(!results.path().join("events").exists());
    assert!(!Path::new("/sys/fs/cgroup/cpu/mplb-lab-test-malformed").exists());
    assert!(!Path::new("/sys/fs/cgroup/cpuacct/mplb-lab-test-malformed").exists());
}
