//! The failover figure with real Envoys running the filter under load:
//! three weight-server replicas on the real API server behind one Envoy
//! cluster (the Service in front of them), the filter polling it, client
//! traffic through Envoy to two upstream pods; the leader is killed (-9)
//! mid-load. Printed: time to a new leader, non-2xx answers (clients and
//! `/v1/weights`), versions going back, and how long the weights in force
//! in Envoy were the old leader's last ones. Correctness is asserted (no
//! client error, no failed `/v1/weights` on a survivor, no version going
//! back); timings are only printed.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mplb_envoy_harness::{
    Bootstrap, Cluster, ENDPOINT_HEADER, HttpFilter, Launch, Listener, Route, WasmFilter,
    per_pod_routes,
};
use mplb_kube_tests::objects;

use crate::load::{Upstream, load};
use crate::replicas::*;
use crate::support::*;

const WEB: &str = "web.shop.svc.cluster.local";

/// The filter's wasm, built once (release profile of the shipped module).
fn filter_wasm() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            // <target>/debug/deps/kube_real-<hash>
            std::env::current_exe()
                .unwrap()
                .ancestors()
                .nth(3)
                .unwrap()
                .to_path_buf()
        });
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let ok = std::process::Command::new(cargo)
        .args([
            "build",
            "-p",
            "mplb-filter",
            "--target",
            "wasm32-wasip1",
            "--profile",
            "wasm-release",
        ])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap()
        .success();
    assert!(ok, "building the filter wasm failed");
    target.join("wasm32-wasip1/wasm-release/mplb_filter.wasm")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `[YYYY-MM-DD HH:MM:SS.mmm]` of an Envoy log line (TZ=UTC) in ms since the epoch.
fn log_ms(line: &str) -> Option<u64> {
    let s = line.strip_prefix('[')?.get(..23)?;
    let n = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let (y, m, d) = (n(0, 4)?, n(5, 7)?, n(8, 10)?);
    let (hh, mm, ss, ms) = (n(11, 13)?, n(14, 16)?, n(17, 19)?, n(20, 23)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms).ok()
}

/// `(ms, version)` of every "weights table vN in force" line of the filter.
fn in_force(log: &str) -> Vec<(u64, u64)> {
    log.lines()
        .filter_map(|l| {
            let v = l
                .split("weights table v")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()?;
            Some((log_ms(l)?, v))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoys_under_load_keep_serving_when_the_leader_is_killed() {
    let _serial = SERIAL.lock().await;
    let wasm = filter_wasm();
    let envoy_bin = mplb_envoy_harness::find_envoy().unwrap();
    let (cp, c) = control_plane(&weight_server_manifest()).await;
    let (a, b) = (Upstream::start(), Upstream::start());
    nodes_and_namespaces(&c, &[("n1", "4"), ("n2", "4")], &["shop"]).await;
    objects::service(&c, "shop", "web", 80, "http")
        .await
        .unwrap();
    for (pod, node, up) in [("web-a", "n1", &a), ("web-b", "n2", &b)] {
        objects::running_pod(&c, "shop", pod, "web", node, "127.0.0.1", up.addr.port())
            .await
            .unwrap();
    }
    let tokens = agent_tokens(&cp, &c, &["n1", "n2"]).await;
    let kc = service_account_kubeconfig(&cp, "weight-server").await;
    let mut servers: Vec<(String, Server)> = (0..3)
        .map(|i| (format!("ws-{i}"), replica(&kc, i)))
        .collect();
    let named: Vec<(String, &Server)> = servers.iter().map(|(n, s)| (n.clone(), s)).collect();
    let (leader, _) = until_leader(&c, &named, None, Duration::from_secs(30)).await;
    drop(named);
    let li = servers.iter().position(|(n, _)| *n == leader).unwrap();
    let survivors: Vec<usize> = (0..3).filter(|i| *i != li).collect();

    // Host agents report to a follower: n1 busy, n2 idle (spare: web-b gets more).
    let stop_reports = Arc::new(AtomicBool::new(false));
    let reporter = {
        let (addr, tokens, stop) = (
            servers[survivors[0]].1.addr,
            tokens.clone(),
            stop_reports.clone(),
        );
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(90);
            let mut statuses = Vec::new();
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                for (node, token) in &tokens {
                    let used = if node == "n1" { 3600.0 } else { 400.0 };
                    statuses.push(post_report(addr, token, node, used).map_or(0, |(s, _)| s));
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            statuses
        })
    };
    servers[li]
        .1
        .until("the leader weighs the reports", |t| {
            t["services"][WEB]["endpoints"][0]["weight"]
                .as_f64()
                .unwrap_or(1.0)
                < 0.3
        })
        .await;

    // Envoy: the filter polls the cluster of all three replicas.
    let dir = tempfile::tempdir().unwrap();
    let listen =
        std::net::SocketAddr::from(([127, 0, 0, 1], mplb_envoy_harness::free_port().unwrap()));
    let admin =
        std::net::SocketAddr::from(([127, 0, 0, 1], mplb_envoy_harness::free_port().unwrap()));
    let plugin = r#"{"weight_server_cluster":"weight-server","weight_server_authority":"weight-server","poll_interval_ms":200,"poll_timeout_ms":150,"table_ttl_ms":10000,"service":"frontend","mode":"subset"}"#;
    let mut routes = per_pod_routes(
        ENDPOINT_HEADER,
        [("web-a", "pod-web-a"), ("web-b", "pod-web-b")],
    );
    routes.push(Route::to_cluster("svc"));
    let mut boot = Bootstrap::with_admin(admin);
    boot.listeners.push(
        Listener::new("main", listen, routes)
            .filter(HttpFilter::Wasm(WasmFilter::new("mplb", &wasm, plugin))),
    );
    let ws_addrs: Vec<_> = servers.iter().map(|(_, s)| s.addr).collect();
    boot.clusters = vec![
        Cluster::new("weight-server", ws_addrs).connect_timeout(Duration::from_millis(250)),
        Cluster::new("svc", [a.addr, b.addr]),
        Cluster::new("pod-web-a", [a.addr]),
        Cluster::new("pod-web-b", [b.addr]),
    ];
    let cfg = dir.path().join("envoy.json");
    boot.write(&cfg).unwrap();
    let mut launch = Launch::new(&envoy_bin, &cfg);
    launch.concurrency = 2;
    launch.base_id = Some(u32::from(listen.port()));
    launch.component_log_level = Some("wasm:debug".into());
    launch.prefix = vec!["env".into(), "TZ=UTC".into()];
    let log = dir.path().join("envoy.log");
    let mut envoy = launch.spawn(&log).unwrap();
    envoy.wait_ready(admin, Duration::from_secs(30)).unwrap();
    let envoy_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while in_force(&envoy_log()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no table in force in Envoy:\n{}",
            envoy_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Load through Envoy; survivors' /v1/weights polled.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = load(
        listen,
        WEB,
        4,
        Duration::from_millis(5),
        stop.clone(),
        Duration::from_secs(60),
    );
    let pollers: Vec<(String, Poller)> = survivors
        .iter()
        .map(|i| {
            let (n, s) = &servers[*i];
            (
                n.clone(),
                Poller::start(
                    s.addr,
                    WEB,
                    "web-a",
                    Duration::from_millis(20),
                    Duration::from_secs(60),
                ),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (a0, b0) = (a.served(), b.served());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let share_before =
        (a.served() - a0) as f64 / ((a.served() - a0) + (b.served() - b0)).max(1) as f64;
    let before = servers[li].1.table().unwrap()["version"].as_u64().unwrap();

    let (old, killed) = servers.remove(li);
    let (t_kill, kill_ms) = (Instant::now(), now_ms());
    drop(killed); // SIGKILL
    let named: Vec<(String, &Server)> = servers.iter().map(|(n, s)| (n.clone(), s)).collect();
    let limit = Duration::from_millis(LEASE_MS + RETRY_MS) + Duration::from_secs(5);
    let (new, seen) = until_leader(&c, &named, Some(&old), limit).await;
    let to_leader = seen - t_kill;
    let deadline = Instant::now() + Duration::from_secs(20);
    let first_new = loop {
        if let Some(x) = in_force(&envoy_log())
            .into_iter()
            .find(|(_, v)| *v > before)
        {
            break x;
        }
        assert!(
            Instant::now() < deadline,
            "Envoy never took the new leader's table:\n{}",
            envoy_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (a1, b1) = (a.served(), b.served());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let share_after =
        (a.served() - a1) as f64 / ((a.served() - a1) + (b.served() - b1)).max(1) as f64;
    stop.store(true, Ordering::SeqCst);
    stop_reports.store(true, Ordering::SeqCst);
    let outcome = traffic.join().unwrap();
    let reports = reporter.join().unwrap();
    drop(named);
    let stats =
        mplb_envoy_harness::admin::stats(admin, Some("cluster.weight-server.")).unwrap_or_default();
    let stat = |k: &str| {
        stats
            .get(&format!("cluster.weight-server.{k}"))
            .copied()
            .unwrap_or(0)
    };
    envoy.stop();

    let forced = in_force(&envoy_log());
    let back = forced.windows(2).filter(|w| w[1].1 < w[0].1).count();
    println!(
        "envoy failover (lease {LEASE_MS} ms, retry {RETRY_MS} ms, kill -9 of leader {old}): \
         new leader {new} after {} ms; Envoy ran the old leader's last table (v{before}) for {} ms \
         after the kill, then v{}",
        to_leader.as_millis(),
        first_new.0.saturating_sub(kill_ms),
        first_new.1
    );
    println!(
        "client requests through Envoy: {} ok, {} non-2xx, {} failed; web-a share {share_before:.3} before, \
         {share_after:.3} after; filter table versions in force: {} changes, {back} back",
        outcome.ok,
        outcome.non_2xx,
        outcome.failed,
        forced.len()
    );
    println!(
        "the filter's calls to the weight-server cluster: {} requests, {} connect failures, {} 5xx \
         (the killed replica stays an endpoint: no kubelet/endpoints controller here)",
        stat("upstream_rq_total"),
        stat("upstream_cx_connect_fail"),
        stat("upstream_rq_5xx"),
    );
    let refused = reports.iter().filter(|s| !(200..300).contains(*s)).count();
    println!(
        "host reports: {} sent, {refused} non-2xx (503 while no leader is known)",
        reports.len()
    );
    for (name, p) in pollers {
        let samples = p.stop();
        let bad = samples.iter().filter(|s| s.status != 200).count();
        let vback = samples
            .windows(2)
            .filter(|w| w[1].version < w[0].version)
            .count();
        println!(
            "{name}: {} polls of /v1/weights, {bad} non-2xx, {vback} versions back",
            samples.len()
        );
        assert_eq!((bad, vback), (0, 0), "{name}");
    }
    assert_eq!(
        outcome.non_2xx + outcome.failed,
        0,
        "client errors through Envoy"
    );
    assert!(outcome.ok > 0);
    assert_eq!(back, 0, "a version went back in Envoy");
    assert!(first_new.1 > before);
}
