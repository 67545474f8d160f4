//! The policy comparison: for each repeat and each policy, a fresh stack,
//! a warm-up, then a fixed-rate load while CPU and weights are sampled.
//! Every policy gets the same topology, load, and durations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::envoy::Steering;
use crate::error::{Error, Result};
use crate::load::{self, LoadResult, LoadSpec};
use crate::measure::{self, CpuSnapshot, Sample};
use crate::scenario::Scenario;
use crate::stack::{Binaries, Stack, StackConfig, prepare_cgroups};

/// What to compare.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub scenario: Scenario,
    pub policies: Vec<String>,
    /// Entry requests per second.
    pub rate: f64,
    pub per_worker_rate: f64,
    /// hey processes per load (see [`crate::load`]).
    pub shards: u64,
    pub warmup: Duration,
    pub duration: Duration,
    pub repeat: u32,
    /// Steering for the non-`even` policies.
    pub steering: Steering,
    pub stack: StackConfig,
    pub force_cleanup: bool,
    pub hey: PathBuf,
    pub sample_every: Duration,
}

/// The outcome of one policy in one repeat.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyResult {
    pub policy: String,
    pub repeat: u32,
    pub load: LoadResult,
    /// Gateway Envoy's downstream response counters over the measured window.
    pub gateway: BTreeMap<String, u64>,
    pub node_util_pct: BTreeMap<String, f64>,
    pub tenant_millicores: BTreeMap<String, f64>,
    pub tenant_fair_share: BTreeMap<String, f64>,
    /// Times the served table version changed during the measured window.
    pub version_changes: u64,
    /// Samples in which some normalised weight moved by more than 0.01.
    pub weight_changes: u64,
    pub final_weights: BTreeMap<String, f64>,
    #[serde(skip)]
    pub samples: Vec<Sample>,
}

impl PolicyResult {
    /// Highest node utilisation.
    pub fn busiest_node_pct(&self) -> f64 {
        self.node_util_pct.values().copied().fold(0.0, f64::max)
    }
    /// A tenant's CPU as a fraction of its fair share.
    pub fn share_fraction(&self, tenant: &str) -> f64 {
        let fair = self.tenant_fair_share.get(tenant).copied().unwrap_or(0.0);
        let used = self.tenant_millicores.get(tenant).copied().unwrap_or(0.0);
        if fair > 0.0 { used / fair } else { 0.0 }
    }
    /// Non-2xx as the larger of hey's count and the gateway's.
    pub fn non_2xx(&self) -> u64 {
        let gw: u64 = ["3xx", "4xx", "5xx"]
            .iter()
            .filter_map(|k| self.gateway.get(*k))
            .sum();
        self.load.non_2xx.max(gw)
    }
}

/// Progress lines on stderr: phase and time left.
pub struct Progress {
    start: Instant,
    total: Duration,
}

impl Progress {
    pub fn new(total: Duration) -> Self {
        Progress {
            start: Instant::now(),
            total,
        }
    }
    pub fn say(&self, what: &str) {
        let left = self.total.saturating_sub(self.start.elapsed());
        eprintln!(
            "[lab {:>4}s] {what} (about {}s left)",
            self.start.elapsed().as_secs(),
            left.as_secs()
        );
    }
}

/// Rough wall time of a whole comparison.
pub fn estimate(cfg: &RunConfig) -> Duration {
    let per = cfg.warmup + cfg.duration + Duration::from_secs(8);
    per * (cfg.policies.len() as u32 * cfg.repeat.max(1))
}

fn steering_for(policy: &str, steering: Steering) -> Steering {
    if policy == "even" {
        Steering::Off
    } else {
        steering
    }
}

/// Run every repeat of every policy.
pub async fn compare(cfg: &RunConfig, bins: &Binaries, out: &Path) -> Result<Vec<PolicyResult>> {
    let client = reqwest::Client::new();
    let progress = Progress::new(estimate(cfg));
    let mut results = Vec::new();
    for r in 1..=cfg.repeat.max(1) {
        for (i, policy) in cfg.policies.iter().enumerate() {
            let tag = format!(
                "repeat {r}/{}, policy {policy} ({}/{})",
                cfg.repeat.max(1),
                i + 1,
                cfg.policies.len()
            );
            let res = one_policy(cfg, bins, out, policy, r, &tag, &progress, &client).await?;
            progress.say(&format!(
                "{tag}: p99 {:.1} ms, busiest node {:.0}%, non-2xx {}",
                res.load.p99_ms,
                res.busiest_node_pct(),
                res.non_2xx()
            ));
            results.push(res);
        }
    }
    Ok(results)
}

#[allow(clippy::too_many_arguments)]
async fn one_policy(
    cfg: &RunConfig,
    bins: &Binaries,
    out: &Path,
    policy: &str,
    repeat: u32,
    tag: &str,
    progress: &Progress,
    client: &reqwest::Client,
) -> Result<PolicyResult> {
    let mut scfg = cfg.stack.clone();
    scfg.steering = steering_for(policy, cfg.steering);
    scfg.policy = policy.to_string();
    scfg.dir = out.join("runs").join(format!("{repeat}-{policy}"));
    let cg = prepare_cgroups(&scfg.cgroup_root, &scfg.cgroup_name, cfg.force_cleanup)?;
    progress.say(&format!("{tag}: starting the stack"));
    let mut stack = Stack::start(&scfg, &cfg.scenario, bins, cg, client).await?;
    let entry = cfg
        .scenario
        .services
        .iter()
        .find(|s| s.entry)
        .ok_or_else(|| Error::Precondition("scenario has no entry service".into()))?;
    let gateway_url = stack.gateway_url();
    let spec = |duration| LoadSpec {
        url: gateway_url.clone(),
        host: entry.authority(),
        rate: cfg.rate,
        duration,
        per_worker_rate: cfg.per_worker_rate,
        shards: cfg.shards,
    };
    if !cfg.warmup.is_zero() {
        progress.say(&format!("{tag}: warm-up {}s", cfg.warmup.as_secs()));
        let mut hey = load::start(
            &cfg.hey,
            &spec(cfg.warmup),
            "hey-warmup",
            &scfg.dir,
            &stack.infra,
        )
        .await?;
        hey.wait_exit(cfg.warmup + Duration::from_secs(30)).await?;
        stack.check_alive()?;
    }
    progress.say(&format!(
        "{tag}: load {:.0} req/s for {}s",
        cfg.rate,
        cfg.duration.as_secs()
    ));
    let cg = stack.cgroups.0.clone();
    let gw0 = measure::envoy_responses(client, stack.gateway_admin).await?;
    let cpu0 = CpuSnapshot::take(&cg, &cfg.scenario)?;
    let mut hey = load::start(
        &cfg.hey,
        &spec(cfg.duration),
        "hey",
        &scfg.dir,
        &stack.infra,
    )
    .await?;
    let mut samples = Vec::new();
    let mut prev = cpu0.clone();
    let deadline = Instant::now() + cfg.duration + Duration::from_secs(30);
    while hey.alive() {
        if Instant::now() > deadline {
            return Err(Error::Timeout("hey to finish".into()));
        }
        tokio::time::sleep(cfg.sample_every).await;
        let now = CpuSnapshot::take(&cg, &cfg.scenario)?;
        let t_s = now.at.duration_since(cpu0.at).as_secs_f64();
        if t_s > cfg.duration.as_secs_f64() {
            // hey is draining; the window is over.
            prev = now;
            continue;
        }
        let table = measure::weights(client, stack.server_addr).await;
        samples.push(Sample {
            t_s,
            node_util_pct: measure::rates(&prev, &now, &cfg.scenario).node_util_pct,
            weights: table.as_ref().map(measure::pod_weights).unwrap_or_default(),
            version: table.map(|t| t.version),
        });
        prev = now;
    }
    let cpu1 = CpuSnapshot::take(&cg, &cfg.scenario)?;
    let gw1 = measure::envoy_responses(client, stack.gateway_admin).await?;
    stack.check_alive()?;
    let csv = hey.output()?;
    let load = load::parse_csv(&csv, cfg.rate, cfg.duration)?;
    let rates = measure::rates(&cpu0, &cpu1, &cfg.scenario);
    let gateway = gw1
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.saturating_sub(gw0.get(k).copied().unwrap_or(0)),
            )
        })
        .collect();
    drop(stack);
    Ok(PolicyResult {
        policy: policy.to_string(),
        repeat,
        load,
        gateway,
        node_util_pct: rates.node_util_pct.clone(),
        tenant_millicores: measure::tenant_millicores(&rates, &cfg.scenario),
        tenant_fair_share: measure::tenant_fair_share(&cfg.scenario),
        version_changes: count_version_changes(&samples),
        weight_changes: count_weight_changes(&samples),
        final_weights: samples
            .last()
            .map(|s| s.weights.clone())
            .unwrap_or_default(),
        samples,
    })
}

/// How often the observed table version changed between samples.
pub fn count_version_changes(samples: &[Sample]) -> u64 {
    let versions: Vec<u64> = samples.iter().filter_map(|s| s.version).collect();
    versions.windows(2).filter(|w| w[0] != w[1]).count() as u64
}

/// Samples where some normalised weight moved by more than 0.01.
pub fn count_weight_changes(samples: &[Sample]) -> u64 {
    samples
        .windows(2)
        .filter(|w| {
            w[1].weights
                .iter()
                .any(|(pod, x)| w[0].weights.get(pod).is_some_and(|y| (x - y).abs() > 0.01))
        })
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(version: Option<u64>, w: f64) -> Sample {
        Sample {
            t_s: 0.0,
            node_util_pct: BTreeMap::new(),
            weights: [("p-0".to_string(), w), ("p-1".to_string(), 1.0 - w)].into(),
            version,
        }
    }

    #[test]
    fn changes_are_counted_between_consecutive_samples() {
        let s = vec![
            sample(Some(1), 0.5),
            sample(Some(1), 0.505),
            sample(Some(2), 0.6),
            sample(None, 0.6),
            sample(Some(3), 0.6),
        ];
        assert_eq!(count_version_changes(&s), 2);
        assert_eq!(count_weight_changes(&s), 1);
    }

    #[test]
    fn even_runs_without_the_filter() {
        assert_eq!(steering_for("even", Steering::Subset), Steering::Off);
        assert_eq!(
            steering_for("optimal", Steering::Session),
            Steering::Session
        );
    }
}
