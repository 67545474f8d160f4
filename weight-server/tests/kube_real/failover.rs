//! Several weight-server replicas against the real API server, with the
//! ServiceAccount token and RBAC of `envoyfilter/weight-server.yaml`: one
//! leader on the Lease, reports sent to a follower change the leader's
//! table (the leader runs the TokenReview), and after a `kill -9` of the
//! leader a survivor leads within the lease duration plus a retry, no
//! replica's version goes back and `/v1/weights` never fails on the
//! survivors. Figures are printed, not asserted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mplb_kube_tests::objects;

use crate::replicas::*;
use crate::support::*;

const WEB: &str = "web.shop.svc.cluster.local";

fn weight(t: &serde_json::Value, pod: &str) -> f64 {
    t["services"][WEB]["endpoints"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["pod"] == pod))
        .and_then(|e| e["weight"].as_f64())
        .unwrap_or(f64::NAN)
}

/// Two nodes, service `shop/web` with `web-a` on n1 and `web-b` on n2.
pub async fn shop(c: &kube::Client) {
    nodes_and_namespaces(c, &[("n1", "4"), ("n2", "4")], &["shop"]).await;
    objects::service(c, "shop", "web", 80, "http")
        .await
        .unwrap();
    objects::running_pod(c, "shop", "web-a", "web", "n1", "10.1.0.1", 8080)
        .await
        .unwrap();
    objects::running_pod(c, "shop", "web-b", "web", "n2", "10.1.0.2", 8080)
        .await
        .unwrap();
}

/// Post both nodes' reports to `addr` every 250 ms until stopped (bounded:
/// 60 s); the statuses seen.
fn reporter(
    addr: std::net::SocketAddr,
    tokens: Vec<(String, String)>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<u16>> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut out = Vec::new();
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            for (node, token) in &tokens {
                let used = if node == "n1" { 3600.0 } else { 400.0 };
                out.push(post_report(addr, token, node, used).map_or(0, |(s, _)| s));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        out
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_takes_forwarded_reports_and_a_kill_9_fails_over_without_going_back() {
    let _serial = SERIAL.lock().await;
    let (cp, c) = control_plane(&weight_server_manifest()).await;
    shop(&c).await;
    let tokens = agent_tokens(&cp, &c, &["n1", "n2"]).await;
    let kc = service_account_kubeconfig(&cp, "weight-server").await;
    let mut servers: Vec<(String, Server)> = (0..3)
        .map(|i| (format!("ws-{i}"), replica(&kc, i)))
        .collect();
    let named: Vec<(String, &Server)> = servers.iter().map(|(n, s)| (n.clone(), s)).collect();
    let (leader, _) = until_leader(&c, &named, None, Duration::from_secs(30)).await;
    // Exactly one leader; the others follow it.
    let leading: Vec<&str> = named
        .iter()
        .filter(|(_, s)| s.log().contains("became the leader"))
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(leading, vec![leader.as_str()]);
    let lead = named.iter().find(|(n, _)| *n == leader).unwrap().1;
    let followers: Vec<&Server> = named
        .iter()
        .filter(|(n, _)| *n != leader)
        .map(|(_, s)| *s)
        .collect();
    for f in &followers {
        f.until("the leader's table on a follower", |t| {
            !endpoints(t, WEB).is_empty()
        })
        .await;
    }
    let f = followers[0];
    // Reports sent to a follower: forwarded with the agent's token, checked
    // by the leader (a report without a token gets the leader's 401).
    let (s, b) = try_http(f.addr, "POST", "/v1/reports", &[], &report("n1", 1.0)).unwrap();
    assert_eq!((s, b.contains("no bearer token")), (401, true), "{b}");
    for (node, token) in &tokens {
        let used = if node == "n1" { 3600.0 } else { 400.0 };
        let (s, b) = post_report(f.addr, token, node, used).unwrap();
        assert_eq!(s, 204, "{b}\nfollower log:\n{}", f.log());
    }
    let t = lead
        .until("the leader's table follows the forwarded reports", |t| {
            weight(t, "web-a") < 0.3
        })
        .await;
    let v = t["version"].as_u64().unwrap();
    for f in &followers {
        f.until("followers serve the leader's table", |t| {
            t["version"].as_u64().unwrap() >= v && weight(t, "web-a") < 0.3
        })
        .await;
    }
    drop(named);

    // Load: reports keep coming to a survivor; every survivor is polled.
    let li = servers.iter().position(|(n, _)| *n == leader).unwrap();
    let survivors: Vec<usize> = (0..servers.len()).filter(|i| *i != li).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let rep = reporter(servers[survivors[0]].1.addr, tokens.clone(), stop.clone());
    let pollers: Vec<(String, Poller)> = survivors
        .iter()
        .map(|i| {
            let (n, s) = &servers[*i];
            let p = Poller::start(
                s.addr,
                WEB,
                "web-a",
                Duration::from_millis(20),
                Duration::from_secs(60),
            );
            (n.clone(), p)
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = servers[li].1.table().unwrap()["version"].as_u64().unwrap();

    let (old, killed) = servers.remove(li);
    let t_kill = Instant::now();
    drop(killed); // SIGKILL
    let named: Vec<(String, &Server)> = servers.iter().map(|(n, s)| (n.clone(), s)).collect();
    let limit = Duration::from_millis(LEASE_MS + RETRY_MS) + Duration::from_secs(5);
    let (new, seen) = until_leader(&c, &named, Some(&old), limit).await;
    let to_leader = seen - t_kill;
    let nl = named.iter().find(|(n, _)| *n == new).unwrap().1;
    let t = nl
        .until("the new leader's table", |t| {
            t["version"].as_u64().unwrap() > before
        })
        .await;
    let first = t["version"].as_u64().unwrap();
    for (_, s) in &named {
        s.until("every survivor serves the new leader's table", |t| {
            t["version"].as_u64().unwrap() >= first
        })
        .await;
    }
    let t = nl
        .until("the new leader follows the reports", |t| {
            weight(t, "web-a") < 0.3
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let reports = rep.join().unwrap();
    drop(named);

    println!(
        "failover (lease {LEASE_MS} ms, retry {RETRY_MS} ms, kill -9 of {old}): new leader {new} after {} ms; \
         last version before {before}, new leader's first {first}, now {}",
        to_leader.as_millis(),
        t["version"]
    );
    let refused = reports.iter().filter(|s| !(200..300).contains(*s)).count();
    println!(
        "reports during the failover: {} sent, {refused} answered non-2xx (503 while no leader)",
        reports.len()
    );
    for (name, p) in pollers {
        let samples = p.stop();
        let bad = samples.iter().filter(|s| s.status != 200).count();
        let back = samples
            .windows(2)
            .filter(|w| w[1].version < w[0].version)
            .count();
        let stale_until = samples
            .iter()
            .find(|s| s.at > t_kill && s.version > before)
            .map(|s| s.at - t_kill);
        println!(
            "{name}: {} polls of /v1/weights, {bad} non-2xx, {back} version steps back, \
             served the old leader's last table for {} ms after the kill, web-a weight {:.3} -> {:.3}",
            samples.len(),
            stale_until.map_or(-1, |d| d.as_millis() as i64),
            samples.first().map_or(f64::NAN, |s| s.weight),
            samples.last().map_or(f64::NAN, |s| s.weight),
        );
        assert_eq!(bad, 0, "{name}: non-2xx answers of /v1/weights");
        assert_eq!(back, 0, "{name}: a version went back");
        assert!(
            stale_until.is_some(),
            "{name} never served the new leader's table"
        );
        assert!(
            samples.iter().all(|s| s.version >= v),
            "{name}: below a version served before"
        );
    }
    assert!(
        first > before,
        "the new leader's first version {first} <= {before}"
    );
}

/// Without the Role that lets the weight server write its Lease, the API
/// server refuses it with its own 403, nobody leads, and a report gets 503
/// with a reason and `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_lease_rule_fails_with_the_api_servers_403() {
    let _serial = SERIAL.lock().await;
    let manifest = weight_server_manifest();
    let trimmed = manifest.replace(r#"verbs: ["get", "create", "update"]"#, r#"verbs: ["get"]"#);
    assert_ne!(
        trimmed, manifest,
        "the Lease rule is not where this test expects it"
    );
    let (cp, c) = control_plane(&trimmed).await;
    shop(&c).await;
    let kc = service_account_kubeconfig(&cp, "weight-server").await;
    let ws = replica(&kc, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ws.log().contains("forbidden") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = ws.log();
    assert!(
        log.contains("403") && log.contains("leases.coordination.k8s.io is forbidden"),
        "no 403 from the API server:\n{log}"
    );
    assert!(!log.contains("became the leader"), "{log}");
    let (s, b) = try_http(ws.addr, "POST", "/v1/reports", &[], &report("n1", 1.0)).unwrap();
    assert_eq!((s, b.contains("no leader")), (503, true), "{b}");
    assert!(lease_holder(&c).await.is_none());
}
