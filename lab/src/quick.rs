//! `--quick`: the end-to-end checks in under a minute. Reports arrive, the
//! table version advances, the filter's stamped split follows operator
//! weights set through the admin API (compared with the pods' own served
//! counts), and killing the weight server mid-load costs zero non-2xx.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use mplb_wire::admin::{OperatorWeights, PolicyKind, PolicyRequest};
use serde::Serialize;

use crate::envoy::Steering;
use crate::error::Result;
use crate::load::{self, LoadResult, LoadSpec};
use crate::measure;
use crate::run::Progress;
use crate::scenario::Scenario;
use crate::stack::{Binaries, Stack, StackConfig, prepare_cgroups};
use crate::thresholds;
use crate::weight_server_client::{
    admin_put, fresh_nodes, get_state, pod_counts, wait_stable, wait_until,
};

/// Operator weights the split check sets (frontend from the gateway, profile
/// from the frontend sidecars).
pub const SPLIT: &[(&str, &[(&str, f64)])] = &[
    (
        "frontend",
        &[
            ("frontend-0", 6.0),
            ("frontend-1", 3.0),
            ("frontend-2", 1.0),
        ],
    ),
    (
        "profile",
        &[("profile-0", 1.0), ("profile-1", 2.0), ("profile-2", 5.0)],
    ),
];

/// What `--quick` found.
#[derive(Debug, Clone, Serialize, Default)]
pub struct QuickReport {
    /// Nodes with a fresh report on the server.
    pub nodes_reporting: Vec<String>,
    /// Every node of the scenario (each should report).
    pub nodes_expected: Vec<String>,
    /// Version of the first served table (0 when none was served).
    pub first_version: u64,
    /// Version served after waiting for it to advance (0 when none).
    pub later_version: u64,
    /// Per pod: (served weight, mean over the load; observed share of its
    /// service's requests).
    pub split: BTreeMap<String, (f64, f64)>,
    /// Per pod: the operator's weight (normalised) set through the admin API.
    pub operator_split: BTreeMap<String, f64>,
    /// Version of the settled table the split was compared with.
    pub served_version: u64,
    /// Version served after the split load (the expected share of a pod is
    /// the mean of its weight in the two).
    pub version_after_split: u64,
    /// Requests the pods of the split's services served during the split load.
    pub split_requests: u64,
    /// Largest gap between a pod's observed share and its expected share.
    pub max_split_error: f64,
    /// Requests of the split load that reached a pod with `x-lb-endpt` naming it.
    pub stamped_for_me: u64,
    /// Requests of the split load that reached a pod with `x-lb-endpt` naming another.
    pub stamped_other: u64,
    /// hey's figures for the load during which the weight server was killed.
    pub drill: LoadResult,
    /// The first gateway's response counters (`2xx`, `5xx`, ...) over the drill.
    pub drill_gateway: BTreeMap<String, u64>,
    /// Seconds into the drill load at which the weight server was killed.
    pub server_killed_after_s: f64,
    /// One line per failed check (empty: every check passed).
    pub failures: Vec<String>,
}

/// Run the quick checks; the report lists every failed check.
pub async fn run(
    cfg: &StackConfig,
    bins: &Binaries,
    hey: &Path,
    force_cleanup: bool,
) -> Result<QuickReport> {
    let progress = Progress::new(Duration::from_secs(45));
    let client = reqwest::Client::new();
    let scenario = Scenario::shared_node()?;
    let mut cfg = cfg.clone();
    cfg.steering = Steering::Subset;
    cfg.policy = "spare".into();
    let cg = prepare_cgroups(&cfg.cgroup_root, &cfg.cgroup_name, force_cleanup)?;
    progress.say("quick: starting the stack (policy spare, filter on)");
    let mut stack = Stack::start(&cfg, &scenario, bins, cg, &client).await?;
    let mut rep = QuickReport {
        nodes_expected: scenario.nodes.iter().map(|n| n.name.clone()).collect(),
        ..Default::default()
    };
    let entry = scenario
        .service("frontend")
        .map(|s| s.authority())
        .unwrap_or_default();
    let spec = |rate: f64, secs: u64| LoadSpec {
        url: stack.gateway_url(),
        host: entry.clone(),
        rate,
        duration: Duration::from_secs(secs),
        per_worker_rate: 5.0,
        shards: 4,
    };

    // 1. Reports arrive; 2. the version advances (light load moves CPU).
    progress.say("quick: waiting for host reports and a first table");
    let mut bg = load::start(
        hey,
        &spec(60.0, 12),
        "hey-background",
        &cfg.dir,
        &stack.infra,
    )
    .await?;
    let state_url = stack.server_url("/admin/state");
    let want = rep.nodes_expected.len();
    let reported = wait_until(
        "fresh reports from every node",
        Duration::from_secs(10),
        || {
            let (c, u) = (client.clone(), state_url.clone());
            async move {
                get_state(&c, &u)
                    .await
                    .map(|s| fresh_nodes(&s).len() == want)
                    .unwrap_or(false)
            }
        },
    )
    .await;
    rep.nodes_reporting = get_state(&client, &state_url)
        .await
        .map(|s| fresh_nodes(&s))
        .unwrap_or_default();
    if let Err(e) = reported {
        rep.failures
            .push(format!("reports: {e}; fresh: {:?}", rep.nodes_reporting));
    }
    let first = measure::weights(&client, stack.server_addr)
        .await
        .map(|t| t.version);
    rep.first_version = first.unwrap_or(0);
    let server = stack.server_addr;
    let advanced = wait_until(
        "the table version to advance",
        Duration::from_secs(12),
        || {
            let c = client.clone();
            async move {
                match (first, measure::weights(&c, server).await) {
                    (Some(v0), Some(t)) => t.version > v0,
                    (None, Some(_)) => true,
                    _ => false,
                }
            }
        },
    )
    .await;
    rep.later_version = measure::weights(&client, server)
        .await
        .map(|t| t.version)
        .unwrap_or(0);
    if let Err(e) = advanced {
        rep.failures.push(format!(
            "version: {e} (first {first:?}, now {})",
            rep.later_version
        ));
    }
    bg.kill();

    // 3. Operator weights -> the stamped split.
    progress.say("quick: static weights through the admin API, checking the split");
    admin_put(
        &client,
        &stack.server_url("/admin/policy"),
        &PolicyRequest {
            policy: PolicyKind::Static,
        },
    )
    .await?;
    for (svc, weights) in SPLIT {
        let body: OperatorWeights = weights.iter().map(|(p, w)| (p.to_string(), *w)).collect();
        admin_put(
            &client,
            &stack.server_url(&format!("/admin/weights/{svc}")),
            &body,
        )
        .await?;
    }
    // The server damps every move (and skips moves under its dead band), so
    // the served table approaches the operator weights and settles near
    // them; the split is then compared with what is served.
    wait_until(
        "served weights near the operator weights",
        Duration::from_secs(15),
        || {
            let c = client.clone();
            async move {
                measure::weights(&c, server).await.is_some_and(|t| {
                    let w = measure::pod_weights(&t);
                    SPLIT.iter().all(|(_, ws)| {
                        let total: f64 = ws.iter().map(|(_, x)| x).sum();
                        ws.iter().all(|(p, x)| {
                            w.get(*p).is_some_and(|y| {
                                (y - x / total).abs() < thresholds::SETTLE_TOLERANCE
                            })
                        })
                    })
                })
            }
        },
    )
    .await?;
    let served_table = wait_stable(&client, server, cfg.interval).await?;
    rep.served_version = served_table.version;
    let served_w = measure::pod_weights(&served_table);
    // Let every filter poll the settled table (poll interval is half the agent interval).
    tokio::time::sleep(cfg.interval * 2).await;
    let before = pod_counts(&client, &stack).await?;
    let mut split_load =
        load::start(hey, &spec(150.0, 6), "hey-split", &cfg.dir, &stack.infra).await?;
    split_load.wait_exit(Duration::from_secs(40)).await?;
    let after = pod_counts(&client, &stack).await?;
    // A damped move may still land during the load: compare with the mean
    // of the weights served before and after it.
    let table_after = measure::weights(&client, server).await;
    rep.version_after_split = table_after.as_ref().map(|t| t.version).unwrap_or(0);
    let after_w = table_after
        .as_ref()
        .map(measure::pod_weights)
        .unwrap_or_default();
    let served_w: BTreeMap<String, f64> = served_w
        .iter()
        .map(|(p, w)| (p.clone(), (w + after_w.get(p).copied().unwrap_or(*w)) / 2.0))
        .collect();
    let mut total_split = 0;
    for (_, ws) in SPLIT {
        let total_w: f64 = ws.iter().map(|(_, x)| x).sum();
        let served = |p: &str, m: &BTreeMap<String, crate::app::AppStats>| {
            m.get(p).map(|s| s.served).unwrap_or(0)
        };
        let n: u64 = ws
            .iter()
            .map(|(p, _)| served(p, &after) - served(p, &before))
            .sum();
        total_split += n;
        for (p, w) in ws.iter() {
            let got = served(p, &after) - served(p, &before);
            let obs = if n > 0 { got as f64 / n as f64 } else { 0.0 };
            let want = served_w.get(*p).copied().unwrap_or(f64::NAN);
            rep.max_split_error = rep.max_split_error.max((obs - want).abs());
            rep.split.insert(p.to_string(), (want, obs));
            rep.operator_split.insert(p.to_string(), w / total_w);
        }
    }
    rep.split_requests = total_split;
    for (p, s) in &after {
        let b = before.get(p).cloned().unwrap_or_default();
        rep.stamped_for_me += s.stamped_for_me - b.stamped_for_me;
        rep.stamped_other += s.stamped_other - b.stamped_other;
    }
    if total_split < thresholds::MIN_SPLIT_REQUESTS {
        rep.failures
            .push(format!("split: only {total_split} requests served"));
    }
    if rep.max_split_error > thresholds::MAX_SPLIT_ERROR {
        rep.failures.push(format!(
            "split: off by {:.3} ({:?})",
            rep.max_split_error, rep.split
        ));
    }
    if rep.stamped_other > 0 || rep.stamped_for_me < total_split {
        rep.failures.push(format!(
            "stamping: {} requests stamped for their pod, {} for another, {total_split} served",
            rep.stamped_for_me, rep.stamped_other
        ));
    }

    // 4. Kill the weight server mid-load: zero non-2xx.
    progress.say("quick: failure drill (weight server killed mid-load)");
    let gw0 = measure::envoy_responses(&client, stack.gateway_admin).await?;
    let drill_spec = spec(100.0, 8);
    let mut drill = load::start(hey, &drill_spec, "hey-drill", &cfg.dir, &stack.infra).await?;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stack.kill_server();
    rep.server_killed_after_s = t0.elapsed().as_secs_f64();
    drill.wait_exit(Duration::from_secs(40)).await?;
    let gw1 = measure::envoy_responses(&client, stack.gateway_admin).await?;
    let csv = drill.output()?;
    rep.drill = load::parse_csv(&csv, drill_spec.rate, drill_spec.duration)?;
    rep.drill_gateway = gw1
        .iter()
        .map(|(k, v)| (k.clone(), v - gw0.get(k).copied().unwrap_or(0)))
        .collect();
    let gw_bad: u64 = ["4xx", "5xx"]
        .iter()
        .filter_map(|k| rep.drill_gateway.get(*k))
        .sum();
    if rep.drill.requests < thresholds::MIN_DRILL_REQUESTS || rep.drill.non_2xx > 0 || gw_bad > 0 {
        rep.failures.push(format!(
            "drill: {} requests, {} non-2xx (hey), {gw_bad} 4xx/5xx (gateway)",
            rep.drill.requests, rep.drill.non_2xx
        ));
    }
    for p in stack.apps.values_mut().chain(stack.envoys.iter_mut()) {
        if let Err(e) = p.check() {
            rep.failures.push(e.to_string());
        }
    }
    progress.say("quick: done, cleaning up");
    drop(stack);
    Ok(rep)
}
