//! Admission end to end: demand above capacity with `run.admission_target`;
//! the host agents' reports reach the weight server, `optimal`'s admission
//! writes `admit` into the table, the gateways' filters shed by it, and the
//! tenant that the kernel starves without it gets closer to its fair share.
//! Needs root, cgroup v1, Envoy (scripts/setup.sh), hey, and
//! `cargo build --workspace --bins` plus the wasm build first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test]

use std::process::Command;

/// Two 300m nodes; hotel's requests cross two pods per node (frontend and
/// profile) to shop's one, so unshed the kernel gives hotel about two thirds;
/// the fair shares are equal. 140 % of capacity offered.
const OVERLOAD: &str = r#"
name: admission
nodes:
  - { name: node-a, capacity_millicores: 300 }
  - { name: node-b, capacity_millicores: 300 }
tenants:
  - { name: hotel, fair_share_millicores: 300 }
  - { name: shop, fair_share_millicores: 300 }
services:
  - { name: frontend, tenant: hotel, port: 8080, cost_us: 1500, calls: profile, entry: true, pods_on: [node-a, node-b] }
  - { name: profile, tenant: hotel, port: 8081, cost_us: 1500, pods_on: [node-a, node-b] }
  - { name: web, tenant: shop, port: 8082, cost_us: 2000, entry: true, pods_on: [node-a, node-b] }
load:
  - service: frontend
    steps:
      - { at_s: 0, cpu_fraction: 0.8 }
  - service: web
    steps:
      - { at_s: 0, cpu_fraction: 0.6 }
run: { policies: [even, optimal], warmup_s: 8, duration_s: 12, admission_target: 0.9 }
"#;

#[test]
fn optimal_sheds_the_over_share_tenant_at_the_gateways_and_even_does_not() {
    let results = tempfile::tempdir().unwrap();
    let file = results.path().join("admission.yaml");
    std::fs::write(&file, OVERLOAD).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mplb-lab"))
        .args([
            "--base-port",
            "0",
            "--cgroup-name",
            "mplb-lab-test-admission",
            "--force-cleanup",
            "--scenario",
            file.to_str().unwrap(),
        ])
        .arg("--results-dir")
        .arg(results.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mplb-lab failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = std::fs::read_dir(results.path().join("admission"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(r["config"]["scenario"]["run"]["admission_target"], 0.9);
    let runs = r["results"].as_array().unwrap();
    let (even, optimal) = (&runs[0], &runs[1]);
    assert_eq!(
        (even["policy"].as_str(), optimal["policy"].as_str()),
        (Some("even"), Some("optimal"))
    );
    let shed =
        |x: &serde_json::Value, entry: &str| x["entries"][entry]["non_2xx"].as_u64().unwrap();
    // Without our filter nothing is shed (every request queues instead).
    assert_eq!(shed(even, "frontend") + shed(even, "web"), 0, "{even:#}");
    // hotel is over its share: its gateway sheds part of its requests.
    assert!(shed(optimal, "frontend") > 50, "{optimal:#}");
    // shop, starved by the kernel's per-cgroup split, gains on its share.
    let share = |x: &serde_json::Value| {
        x["tenant_millicores"]["shop"].as_f64().unwrap()
            / x["tenant_entitled"]["shop"].as_f64().unwrap()
    };
    eprintln!(
        "shed frontend {} web {}; shop served/entitled even {:.2} optimal {:.2}",
        shed(optimal, "frontend"),
        shed(optimal, "web"),
        share(even),
        share(optimal)
    );
    assert!(
        share(optimal) > share(even) + 0.1,
        "shop served/entitled: even {:.2}, optimal {:.2}",
        share(even),
        share(optimal)
    );
}
