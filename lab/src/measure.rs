//! Measurements while load runs: node and pod CPU from the cgroups'
//! `cpuacct.usage`, the served weights table (`GET /v1/weights`), Envoy
//! response counters, the apps' own served counts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mplb_wire::WeightsTable;
use serde::Serialize;

use crate::app::{AppStats, STATS_PATH};
use crate::cgroup::CgroupFs;
use crate::error::{Error, Result};
use crate::scenario::Scenario;

/// Cumulative CPU of every node and pod cgroup at one instant.
#[derive(Debug, Clone)]
pub struct CpuSnapshot {
    /// When the counters were read.
    pub at: Instant,
    /// `cpuacct.usage` of each node cgroup, in nanoseconds, by node.
    pub nodes: BTreeMap<String, u64>,
    /// `cpuacct.usage` of each pod cgroup, in nanoseconds, by pod.
    pub pods: BTreeMap<String, u64>,
}

impl CpuSnapshot {
    /// Read every node's and pod's cgroup CPU counter now.
    pub fn take(cg: &CgroupFs, scenario: &Scenario) -> Result<Self> {
        let mut nodes = BTreeMap::new();
        for n in &scenario.nodes {
            nodes.insert(n.name.clone(), cg.usage_ns(&n.name)?);
        }
        let mut pods = BTreeMap::new();
        for p in &scenario.pods {
            pods.insert(
                p.name.clone(),
                cg.usage_ns(&format!("{}/{}", p.node, p.name))?,
            );
        }
        Ok(CpuSnapshot {
            at: Instant::now(),
            nodes,
            pods,
        })
    }
}

/// CPU rates between two snapshots.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CpuRates {
    /// Node utilisation in percent of its capacity.
    pub node_util_pct: BTreeMap<String, f64>,
    /// Pod CPU in millicores.
    pub pod_millicores: BTreeMap<String, f64>,
}

/// Rates from `a` to `b`.
pub fn rates(a: &CpuSnapshot, b: &CpuSnapshot, scenario: &Scenario) -> CpuRates {
    let secs = b.at.saturating_duration_since(a.at).as_secs_f64().max(1e-9);
    let milli = |x: u64, y: u64| y.saturating_sub(x) as f64 / 1e6 / secs;
    let mut out = CpuRates::default();
    for n in &scenario.nodes {
        let m = milli(a.nodes[&n.name], b.nodes[&n.name]);
        out.node_util_pct
            .insert(n.name.clone(), 100.0 * m / n.capacity_millicores as f64);
    }
    for p in &scenario.pods {
        out.pod_millicores
            .insert(p.name.clone(), milli(a.pods[&p.name], b.pods[&p.name]));
    }
    out
}

/// Millicores per tenant from pod rates.
pub fn tenant_millicores(rates: &CpuRates, scenario: &Scenario) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for p in &scenario.pods {
        if let Some(svc) = scenario.service(&p.service) {
            *out.entry(svc.tenant.clone()).or_insert(0.0) +=
                rates.pod_millicores.get(&p.name).copied().unwrap_or(0.0);
        }
    }
    out
}

/// Fair share per tenant (sum over its services).
pub fn tenant_fair_share(scenario: &Scenario) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for s in &scenario.services {
        if let Some(f) = s.fair_share_millicores {
            *out.entry(s.tenant.clone()).or_insert(0.0) += f;
        }
    }
    out
}

/// The current weights table, or `None` when the server has none (or is down).
pub async fn weights(client: &reqwest::Client, server: SocketAddr) -> Option<WeightsTable> {
    let resp = client
        .get(format!("http://{server}/v1/weights"))
        .timeout(Duration::from_millis(800))
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    WeightsTable::parse(&resp.bytes().await.ok()?).ok()
}

/// Normalised weights per pod (each service's weights sum to 1).
pub fn pod_weights(table: &WeightsTable) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for svc in table.services.values() {
        let total: f64 = svc.endpoints.iter().map(|e| e.weight).sum();
        for e in &svc.endpoints {
            let w = if total > 0.0 { e.weight / total } else { 0.0 };
            out.insert(e.pod.clone(), w);
        }
    }
    out
}

/// Envoy's downstream response counters (`2xx`, `4xx`, `5xx`, `total`).
pub async fn envoy_responses(
    client: &reqwest::Client,
    admin: SocketAddr,
) -> Result<BTreeMap<String, u64>> {
    let url = format!("http://{admin}/stats?filter=downstream_rq_");
    let text = client
        .get(&url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .map_err(|e| Error::http(&url, e))?
        .text()
        .await
        .map_err(|e| Error::http(&url, e))?;
    Ok(parse_envoy_responses(&text))
}

/// Sum `http.*.downstream_rq_{2xx,3xx,4xx,5xx,total}` over listeners.
pub fn parse_envoy_responses(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some((name, value)) = line.split_once(": ") else {
            continue;
        };
        if !name.starts_with("http.") {
            continue;
        }
        let Some(kind) = name
            .rsplit('.')
            .next()
            .and_then(|k| k.strip_prefix("downstream_rq_"))
        else {
            continue;
        };
        if matches!(kind, "2xx" | "3xx" | "4xx" | "5xx" | "total")
            && let Ok(v) = value.trim().parse::<u64>()
        {
            *out.entry(kind.to_string()).or_insert(0) += v;
        }
    }
    out
}

/// Counters of one app pod.
pub async fn app_stats(client: &reqwest::Client, addr: SocketAddr) -> Result<AppStats> {
    let url = format!("http://{addr}{STATS_PATH}");
    client
        .get(&url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .map_err(|e| Error::http(&url, e))?
        .json()
        .await
        .map_err(|e| Error::http(&url, e))
}

/// One row of the time series.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the measured window started.
    pub t_s: f64,
    /// Each node's utilisation since the previous sample, in percent of its capacity.
    pub node_util_pct: BTreeMap<String, f64>,
    /// Normalised served weight of each pod (empty when no table was served).
    pub weights: BTreeMap<String, f64>,
    /// Version of the served table (`None` when the server had none or was down).
    pub version: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_counters_sum_over_listeners_and_skip_others() {
        let text = "cluster.x.upstream_rq_2xx: 5\nhttp.gateway.downstream_rq_2xx: 10\n\
                    http.gateway.downstream_rq_5xx: 2\nhttp.admin.downstream_rq_2xx: 3\n\
                    http.gateway.downstream_rq_total: 12\nhttp.gateway.downstream_rq_time: P0(nan,1)\n";
        let m = parse_envoy_responses(text);
        assert_eq!(m["2xx"], 13);
        assert_eq!(m["5xx"], 2);
        assert_eq!(m["total"], 12);
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn rates_are_percent_of_capacity_and_tenants_sum_their_pods() {
        let s = Scenario::shared_node().unwrap();
        let t0 = Instant::now();
        let zero = |names: Vec<String>| names.into_iter().map(|n| (n, 0u64)).collect();
        let a = CpuSnapshot {
            at: t0,
            nodes: zero(s.nodes.iter().map(|n| n.name.clone()).collect()),
            pods: zero(s.pods.iter().map(|p| p.name.clone()).collect()),
        };
        let mut b = a.clone();
        b.at = t0 + Duration::from_secs(2);
        // node-c used 250 ms per second = 250m = 100% of 250m.
        b.nodes.insert("node-c".into(), 500_000_000);
        b.pods.insert("batch-0".into(), 300_000_000);
        b.pods.insert("frontend-2".into(), 200_000_000);
        let r = rates(&a, &b, &s);
        assert!((r.node_util_pct["node-c"] - 100.0).abs() < 1e-9);
        assert!((r.pod_millicores["batch-0"] - 150.0).abs() < 1e-9);
        let t = tenant_millicores(&r, &s);
        assert!((t["batch"] - 150.0).abs() < 1e-9);
        assert!((t["hotel"] - 100.0).abs() < 1e-9);
        assert_eq!(tenant_fair_share(&s)["hotel"], 1000.0);
    }
}
