//! The real `host-agent` binary against a loopback recording server: reports
//! arrive; the server stops and restarts and the agent resumes on its own,
//! never sending a report older than one interval after recovery; 4xx, 5xx
//! and garbage answers are logged with their status and never crash it.

// Test code: a failed setup step must fail the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use host_agent::fixture::{Tree, Version};
use mplb_wire::HostReport;
use support::{ChildGuard, Hit, Mode, Server, now_ms};

const INTERVAL_MS: u64 = 300;
/// Loopback delivery and scheduling between the agent's age check and arrival.
const DELIVERY_SLACK_MS: u64 = 150;

struct Agent {
    child: ChildGuard,
    log: PathBuf,
    tree: Tree,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start(server: &str) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::create(&dir.path().join("cg"), Version::V2).unwrap();
        let node = Path::new("lab/node-a");
        tree.set_quota(node, Some(2000)).unwrap();
        tree.set_usage_ns(node, 1_000).unwrap();
        tree.set_usage_ns(&node.join("web-0"), 1_000).unwrap();
        tree.set_usage_ns(&node.join("db-0"), 1_000).unwrap();
        let log = dir.path().join("agent.log");
        let child = Command::new(env!("CARGO_BIN_EXE_host-agent"))
            .env("MPLB_SERVER", server)
            .env("NODE_NAME", "node-a")
            .env("RUST_LOG", "info")
            .args(["--interval", &format!("{INTERVAL_MS}ms")])
            .args(["--timeout", "200ms", "--max-backoff", "400ms"])
            .arg("--cgroup-root")
            .arg(&tree.root)
            .args(["--pods", "web-0=lab/node-a/web-0,db-0=/lab/node-a/db-0"])
            .args(["--node-cgroup", "lab/node-a"])
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Agent {
            child: ChildGuard(child),
            log,
            tree,
            _dir: dir,
        }
    }

    /// Break (or repair) the node cgroup's usage file: no report can be built.
    fn break_node(&self, broken: bool) {
        let node = Path::new("lab/node-a");
        if broken {
            fs::write(self.tree.usage_file(node), "garbage\n").unwrap();
        } else {
            self.tree.set_usage_ns(node, 5_000).unwrap();
        }
    }

    fn logs(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_alive(&mut self) {
        let status = self.child.0.try_wait().unwrap();
        assert!(
            status.is_none(),
            "agent exited: {status:?}\n{}",
            self.logs()
        );
    }
}

fn reports(hits: &[Hit]) -> Vec<(u64, HostReport)> {
    hits.iter()
        .map(|h| {
            assert_eq!(h.path, "/v1/reports");
            (h.arrival_ms, HostReport::parse(&h.body).unwrap())
        })
        .collect()
}

fn accepted(hits: &[Hit]) -> usize {
    hits.iter().filter(|h| h.mode == Mode::Accept).count()
}

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_server_restart_and_sends_nothing_stale() {
    let mut server = Server::start().await;
    let mut agent = Agent::start(&server.url());
    server
        .wait_for("3 reports", WAIT, |h| accepted(h) >= 3)
        .await;

    server.stop().await;
    let stopped_at = now_ms();
    tokio::time::sleep(Duration::from_millis(6 * INTERVAL_MS)).await;
    agent.assert_alive();
    let before = server.hits().len();
    let restarted_at = now_ms();
    server.restart().await;
    server
        .wait_for("3 reports after the restart", WAIT, |h| {
            h.len() >= before + 3
        })
        .await;
    agent.assert_alive();

    let all = reports(&server.hits());
    for (_, r) in &all {
        assert_eq!(r.node, "node-a");
        assert_eq!(r.capacity_millicores, 2000.0);
        let mut uids: Vec<&str> = r.pods.iter().map(|p| p.uid.as_str()).collect();
        uids.sort_unstable();
        assert_eq!(uids, ["db-0", "web-0"]);
    }
    for pair in all.windows(2) {
        assert!(
            pair[1].1.sampled_at_ms > pair[0].1.sampled_at_ms,
            "each report is newer than the one before: {pair:?}"
        );
    }
    let after = &all[before..];
    for (arrival, r) in after {
        assert!(
            r.sampled_at_ms + INTERVAL_MS >= restarted_at,
            "a sample from the outage ({} ms before the restart) was sent",
            restarted_at - r.sampled_at_ms
        );
        assert!(
            *arrival <= r.sampled_at_ms + INTERVAL_MS + DELIVERY_SLACK_MS,
            "report arrived {} ms after it was sampled (interval {INTERVAL_MS} ms)",
            arrival - r.sampled_at_ms
        );
    }
    assert!(
        all[..before]
            .iter()
            .all(|(_, r)| r.sampled_at_ms <= stopped_at),
        "nothing arrived while the server was down"
    );
    let logs = agent.logs();
    assert!(logs.contains("cannot push report"), "{logs}");
    assert!(logs.contains("weight server is back"), "{logs}");

    // Second outage during which sampling also stops (node unreadable): the
    // last report left in the channel is never sent after recovery.
    server.stop().await;
    tokio::time::sleep(Duration::from_millis(2 * INTERVAL_MS)).await;
    agent.break_node(true);
    tokio::time::sleep(Duration::from_millis(4 * INTERVAL_MS)).await;
    let before = server.hits().len();
    server.restart().await;
    tokio::time::sleep(Duration::from_millis(6 * INTERVAL_MS)).await;
    assert_eq!(
        server.hits().len(),
        before,
        "a report sampled before the node broke was sent after recovery"
    );
    let repaired_at = now_ms();
    agent.break_node(false);
    server
        .wait_for("reports after the repair", WAIT, |h| h.len() >= before + 2)
        .await;
    for (_, r) in &reports(&server.hits())[before..] {
        assert!(r.sampled_at_ms >= repaired_at, "stale report {r:?}");
    }
    agent.assert_alive();
    let logs = agent.logs();
    assert!(logs.contains("lab/node-a/cpu.stat"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_answers_are_logged_and_never_crash_it() {
    let server = Server::start().await;
    let mut agent = Agent::start(&server.url());
    server
        .wait_for("a report", WAIT, |h| accepted(h) >= 1)
        .await;

    // 4xx: logged with the reason; a rejected report is never retried.
    server.set_mode(Mode::BadRequest);
    let mark = server.hits().len();
    server
        .wait_for("4 rejected reports", WAIT, |h| h.len() >= mark + 4)
        .await;
    let rejected: Vec<u64> = reports(&server.hits()[mark..])
        .iter()
        .map(|(_, r)| r.sampled_at_ms)
        .collect();
    let mut unique = rejected.clone();
    unique.dedup();
    assert_eq!(unique, rejected, "a rejected report was sent twice");

    // 5xx and garbage: logged, backed off, retried.
    for mode in [Mode::ServerError, Mode::Garbage] {
        server.set_mode(mode);
        let mark = server.hits().len();
        server
            .wait_for("3 failed pushes", WAIT, |h| h.len() >= mark + 3)
            .await;
        agent.assert_alive();
    }
    server.set_mode(Mode::Accept);
    let mark = accepted(&server.hits());
    server
        .wait_for("reports accepted again", WAIT, |h| accepted(h) >= mark + 2)
        .await;
    agent.assert_alive();
    let logs = agent.logs();
    for needle in [
        "400",
        "node is unknown here",
        "503",
        "no topology yet",
        "weight server is back",
    ] {
        assert!(logs.contains(needle), "{needle:?} not in logs:\n{logs}");
    }
    // The garbage answer shows up as a transport error naming the URL.
    assert!(
        logs.contains(&format!("{}/v1/reports", server.url())),
        "{logs}"
    );
}

#[test]
fn refuses_bad_flags_with_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_host-agent"))
        .env("MPLB_SERVER", "http://127.0.0.1:9")
        .env("NODE_NAME", "node-a")
        .args(["--pods", "web=../escape"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must stay under the cgroup root"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_host-agent"))
        .env("MPLB_SERVER", "http://127.0.0.1:9")
        .env("NODE_NAME", "node-a")
        .args(["--cgroup-root", "/nonexistent-mplb-root", "--pods", "a=b"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent-mplb-root"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_mode_reports_discovered_pods_with_names() {
    use host_agent::fixture::{Driver, uid, write_proc};
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tree = Tree::create(&dir.path().join("cg"), Version::V1).unwrap();
    let (a, b) = (uid(1), uid(2));
    let ra = Tree::pod_rel(Driver::Systemd, "burstable", &a);
    let rb = Tree::pod_rel(Driver::Systemd, "guaranteed", &b);
    tree.set_usage_ns(&ra, 0).unwrap();
    tree.set_usage_ns(&rb, 0).unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir_all(logs.join(format!("hotel_profile-0_{a}"))).unwrap();
    let proc_root = dir.path().join("proc");
    write_proc(&proc_root, 3, 0, 0).unwrap();
    let log = dir.path().join("agent.log");
    let child = Command::new(env!("CARGO_BIN_EXE_host-agent"))
        .env("MPLB_SERVER", server.url())
        .env("NODE_NAME", "node-k")
        .env("MPLB_INTERVAL", "200ms")
        .env("MPLB_CGROUP_ROOT", &tree.root)
        .env("MPLB_LOG_PODS_DIR", &logs)
        .env("MPLB_PROC_ROOT", &proc_root)
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _guard = ChildGuard(child);
    server.wait_for("a report", WAIT, |h| !h.is_empty()).await;
    // Pod a burns CPU from now on: its counter jumps by 10 s of CPU.
    tree.set_usage_ns(&ra, 10_000_000_000).unwrap();
    server
        .wait_for("a report with CPU for pod a", WAIT, |h| {
            reports(h)
                .iter()
                .any(|(_, r)| r.pods.iter().any(|p| p.millicores > 0.0))
        })
        .await;
    let all = reports(&server.hits());
    let (_, r) = all
        .iter()
        .find(|(_, r)| r.pods.iter().any(|p| p.millicores > 0.0))
        .unwrap();
    assert_eq!(r.node, "node-k");
    assert_eq!(r.capacity_millicores, 3000.0, "CPU count from --proc-root");
    let pa = r.pods.iter().find(|p| p.uid == a).unwrap();
    assert_eq!(pa.name.as_deref(), Some("profile-0"));
    assert_eq!(pa.namespace.as_deref(), Some("hotel"));
    let pb = r.pods.iter().find(|p| p.uid == b).unwrap();
    assert_eq!((pb.name.as_deref(), pb.millicores), (None, 0.0));
}
