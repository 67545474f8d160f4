//! Cost of one sampling round with 250 pods in a fixture tree (with pod names
//! from a log directory), per cgroup layout:
//! `cargo bench -p host-agent --bench sample`.

// A benchmark whose fixture cannot be built must stop loudly.
#![allow(clippy::expect_used)]

use std::fs;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use host_agent::clock::ManualClock;
use host_agent::fixture::{Driver, Tree, Version, uid, write_proc};
use host_agent::sampler::{PodSource, Sampler, SamplerConfig};

const PODS: u32 = 250;

fn bench(c: &mut Criterion) {
    let qos = ["guaranteed", "burstable", "besteffort"];
    for (version, driver) in [
        (Version::V1, Driver::Cgroupfs),
        (Version::V2, Driver::Systemd),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = Tree::create(&dir.path().join("cg"), version).expect("tree");
        let logs = dir.path().join("logs");
        fs::create_dir_all(&logs).expect("logs");
        for i in 0..PODS {
            let u = uid(i);
            let rel = Tree::pod_rel(driver, qos[i as usize % 3], &u);
            tree.set_usage_ns(&rel, u64::from(i) * 1_000_000)
                .expect("pod");
            fs::create_dir(logs.join(format!("ns_pod-{i}_{u}"))).expect("log dir");
        }
        write_proc(&dir.path().join("proc"), 8, 100, 900).expect("proc");
        let clock = Arc::new(ManualClock::new(1_763_800_000_000));
        let cfg = SamplerConfig {
            node_name: "bench".into(),
            cgroup_root: tree.root.clone(),
            proc_root: dir.path().join("proc"),
            pods: PodSource::Kubernetes {
                log_pods_dir: Some(logs),
            },
            node_cgroup: None,
        };
        let mut sampler = Sampler::new(cfg, clock.clone()).expect("sampler");
        sampler.sample();
        clock.advance_ms(1000);
        let probe = sampler.sample();
        assert_eq!(probe.report.map(|r| r.pods.len()), Some(PODS as usize));
        c.bench_function(&format!("sample_250_pods_{version:?}_{driver:?}"), |b| {
            b.iter(|| {
                clock.advance_ms(1000);
                let s = sampler.sample();
                std::hint::black_box(s.report.map(|r| serde_json::to_vec(&r)))
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
