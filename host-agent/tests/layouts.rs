//! Fixture trees for the four Kubernetes layouts (v1/v2 x cgroupfs/systemd,
//! plus v1 combined `cpu,cpuacct`) and local mode: counters advanced between
//! samples with a manual clock give exact millicores; churn, restarts and bad
//! files never produce spikes or crashes.

// Test code: a failed setup step must fail the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use host_agent::clock::ManualClock;
use host_agent::fixture::{Driver, Tree, Version, uid, write_proc};
use host_agent::sampler::{LocalPod, PodSource, Sampler, SamplerConfig};
use mplb_wire::HostReport;

const T0: u64 = 1_763_800_000_000;

struct Setup {
    _dir: tempfile::TempDir,
    tree: Tree,
    proc_root: PathBuf,
    logs: PathBuf,
    clock: Arc<ManualClock>,
}

fn setup(version: Version) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let tree = Tree::create(&dir.path().join("cgroup"), version).unwrap();
    let proc_root = dir.path().join("proc");
    write_proc(&proc_root, 4, 0, 0).unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir_all(&logs).unwrap();
    Setup {
        _dir: dir,
        tree,
        proc_root,
        logs,
        clock: Arc::new(ManualClock::new(T0)),
    }
}

fn k8s_sampler(s: &Setup) -> Sampler {
    let cfg = SamplerConfig {
        node_name: "node-a".into(),
        cgroup_root: s.tree.root.clone(),
        proc_root: s.proc_root.clone(),
        pods: PodSource::Kubernetes {
            log_pods_dir: Some(s.logs.clone()),
        },
        node_cgroup: None,
    };
    Sampler::new(cfg, s.clock.clone()).unwrap()
}

fn by_uid<'a>(r: &'a HostReport, uid: &str) -> Option<&'a mplb_wire::PodCpu> {
    r.pods.iter().find(|p| p.uid == uid)
}

#[test]
fn exact_millicores_in_all_layouts_and_qos_classes() {
    for version in [Version::V1, Version::V1Combined, Version::V2] {
        for driver in [Driver::Cgroupfs, Driver::Systemd] {
            let s = setup(version);
            let pods: Vec<(String, PathBuf)> = ["guaranteed", "burstable", "besteffort"]
                .iter()
                .enumerate()
                .map(|(i, qos)| {
                    let u = uid(i as u32 + 1);
                    (u.clone(), Tree::pod_rel(driver, qos, &u))
                })
                .collect();
            for (u, rel) in &pods {
                s.tree.set_usage_ns(rel, 5_000_000_000).unwrap();
                fs::create_dir(s.logs.join(format!("hotel_pod-{}_{u}", &u[..8]))).unwrap();
            }
            write_proc(&s.proc_root, 4, 1000, 9000).unwrap();
            let mut sampler = k8s_sampler(&s);
            let first = sampler.sample();
            assert!(first.report.is_none(), "priming round sends nothing");
            assert!(first.problems.is_empty(), "{:?}", first.problems);

            // 1000 ms later: pod i used (i+1) * 250 ms of CPU -> 250/500/750 m.
            s.clock.advance_ms(1000);
            for (i, (_, rel)) in pods.iter().enumerate() {
                let used = (i as u64 + 1) * 250_000_000;
                s.tree.set_usage_ns(rel, 5_000_000_000 + used).unwrap();
            }
            // Host: 200 busy of 400 jiffies on 4 CPUs = 2000 m.
            write_proc(&s.proc_root, 4, 1200, 9200).unwrap();
            let sample = sampler.sample();
            assert!(sample.problems.is_empty(), "{:?}", sample.problems);
            let report = sample.report.expect("report");
            report.validate().unwrap();
            let what = format!("{version:?}/{driver:?}");
            assert_eq!(report.node, "node-a");
            assert_eq!(report.capacity_millicores, 4000.0, "{what}");
            assert_eq!(report.used_millicores, 2000.0, "{what}");
            assert_eq!(report.interval_ms, 1000, "{what}");
            assert_eq!(report.sampled_at_ms, T0 + 1000, "{what}");
            assert_eq!(report.pods.len(), 3, "{what}: {report:?}");
            for (i, (u, _)) in pods.iter().enumerate() {
                let p = by_uid(&report, u).unwrap_or_else(|| panic!("{what}: {u} missing"));
                assert_eq!(p.millicores, (i as f64 + 1.0) * 250.0, "{what} {u}");
                assert_eq!(p.namespace.as_deref(), Some("hotel"));
                assert_eq!(p.name.as_deref(), Some(format!("pod-{}", &u[..8]).as_str()));
                assert_eq!(p.sampled_at_ms, T0 + 1000);
            }
        }
    }
}

#[test]
fn appear_disappear_and_restart_make_no_spike() {
    let s = setup(Version::V2);
    let (a, b, c) = (uid(1), uid(2), uid(3));
    let ra = Tree::pod_rel(Driver::Systemd, "burstable", &a);
    let rb = Tree::pod_rel(Driver::Systemd, "besteffort", &b);
    let rc = Tree::pod_rel(Driver::Systemd, "guaranteed", &c);
    s.tree.set_usage_ns(&ra, 100_000_000_000).unwrap();
    s.tree.set_usage_ns(&rb, 1_000).unwrap();
    let mut sampler = k8s_sampler(&s);
    assert!(sampler.sample().report.is_none());

    // Pod c appears with a large lifetime counter; pod a restarts (counter resets).
    s.clock.advance_ms(500);
    s.tree.set_usage_ns(&ra, 2_000_000).unwrap();
    s.tree.set_usage_ns(&rb, 1_000 + 50_000_000).unwrap();
    s.tree.set_usage_ns(&rc, 900_000_000_000).unwrap();
    let r = sampler.sample().report.unwrap();
    assert_eq!(r.interval_ms, 500);
    assert_eq!(r.pods.len(), 1, "only b has a rate: {r:?}");
    assert_eq!(by_uid(&r, &b).unwrap().millicores, 100.0);

    // Next round: a and c have baselines now; b disappeared.
    s.clock.advance_ms(1000);
    s.tree.set_usage_ns(&ra, 2_000_000 + 300_000_000).unwrap();
    s.tree
        .set_usage_ns(&rc, 900_000_000_000 + 1_000_000_000)
        .unwrap();
    s.tree.remove(&rb).unwrap();
    let sample = sampler.sample();
    assert!(
        sample.problems.is_empty(),
        "a vanished pod is not an error: {:?}",
        sample.problems
    );
    let r = sample.report.unwrap();
    assert_eq!(r.pods.len(), 2);
    assert_eq!(by_uid(&r, &a).unwrap().millicores, 300.0);
    assert_eq!(by_uid(&r, &c).unwrap().millicores, 1000.0);
    // Names unknown (no log dirs): uid only.
    assert_eq!(by_uid(&r, &a).unwrap().name, None);

    // b comes back with a fresh counter: baseline again, no spike.
    s.clock.advance_ms(1000);
    s.tree.set_usage_ns(&rb, 7).unwrap();
    let r = sampler.sample().report.unwrap();
    assert!(by_uid(&r, &b).is_none());
}

#[test]
fn bad_files_are_reported_with_their_path_and_the_rest_still_sampled() {
    let s = setup(Version::V2);
    let uids: Vec<String> = (1..=4).map(uid).collect();
    let rels: Vec<PathBuf> = uids
        .iter()
        .map(|u| Tree::pod_rel(Driver::Cgroupfs, "burstable", u))
        .collect();
    for rel in &rels {
        s.tree.set_usage_ns(rel, 0).unwrap();
    }
    let mut sampler = k8s_sampler(&s);
    assert!(sampler.sample().report.is_none());

    s.clock.advance_ms(1000);
    for rel in &rels {
        s.tree.set_usage_ns(rel, 100_000_000).unwrap();
    }
    // 0: malformed cpu.stat; 1: cpu.stat replaced by a directory (unreadable as a file);
    // 2: the pod directory keeps its name but loses its files (vanishing mid-read).
    fs::write(s.tree.usage_file(&rels[0]), "usage_usec lots\n").unwrap();
    let f1 = s.tree.usage_file(&rels[1]);
    fs::remove_file(&f1).unwrap();
    fs::create_dir(&f1).unwrap();
    fs::remove_file(s.tree.usage_file(&rels[2])).unwrap();
    let sample = sampler.sample();
    let report = sample
        .report
        .expect("the node and the good pod are still reported");
    assert_eq!(report.pods.len(), 1);
    assert_eq!(report.pods[0].uid, uids[3]);
    assert_eq!(report.pods[0].millicores, 100.0);
    let text: Vec<String> = sample.problems.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 3, "{text:?}");
    for rel in &rels[..3] {
        let needle = s.tree.usage_file(rel).display().to_string();
        assert!(
            text.iter().any(|t| t.contains(&needle)),
            "{needle} in {text:?}"
        );
    }
    assert!(text.iter().any(|t| t.contains("usage_usec")), "{text:?}");

    // An unreadable log dir and a broken /proc/stat: logged, never a crash.
    fs::remove_dir_all(&s.logs).unwrap();
    fs::write(s.proc_root.join("stat"), "garbage\n").unwrap();
    s.clock.advance_ms(1000);
    let sample = sampler.sample();
    assert!(sample.report.is_none(), "no node figures, no report");
    let text: Vec<String> = sample.problems.iter().map(ToString::to_string).collect();
    assert!(text.iter().any(|t| t.contains("proc/stat")), "{text:?}");
    assert!(text.iter().any(|t| t.contains("logs")), "{text:?}");
}

#[test]
fn local_mode_with_a_node_cgroup() {
    for version in [Version::V1, Version::V2] {
        let s = setup(version);
        let node = Path::new("mplb/node-a");
        let web = node.join("web-0");
        let db = node.join("db-0");
        s.tree.set_quota(node, Some(1500)).unwrap();
        s.tree.set_usage_ns(node, 0).unwrap();
        s.tree.set_usage_ns(&web, 0).unwrap();
        s.tree.set_usage_ns(&db, 0).unwrap();
        let cfg = SamplerConfig {
            node_name: "node-a".into(),
            cgroup_root: s.tree.root.clone(),
            proc_root: s.proc_root.clone(),
            pods: PodSource::Local(vec![
                LocalPod {
                    name: "web-0".into(),
                    rel: web.clone(),
                },
                LocalPod {
                    name: "db-0".into(),
                    rel: db.clone(),
                },
            ]),
            node_cgroup: Some(node.to_path_buf()),
        };
        let mut sampler = Sampler::new(cfg, s.clock.clone()).unwrap();
        assert!(sampler.sample().report.is_none());
        s.clock.advance_ms(2000);
        s.tree.set_usage_ns(&web, 1_000_000_000).unwrap();
        s.tree.set_usage_ns(&db, 500_000_000).unwrap();
        s.tree.set_usage_ns(node, 1_600_000_000).unwrap();
        let r = sampler.sample().report.unwrap();
        assert_eq!(r.capacity_millicores, 1500.0, "{version:?}");
        assert_eq!(r.used_millicores, 800.0, "{version:?}");
        assert_eq!(r.interval_ms, 2000);
        let w = by_uid(&r, "web-0").unwrap();
        assert_eq!((w.millicores, w.name.as_deref()), (500.0, Some("web-0")));
        assert_eq!(by_uid(&r, "db-0").unwrap().millicores, 250.0);
    }
}
