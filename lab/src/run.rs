//! The policy comparison: for each repeat and each policy, a fresh stack,
//! a warm-up, then a fixed-rate load while CPU and weights are sampled.
//! Every policy gets the same topology, load, and durations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::convergence::{self, Convergence};
use crate::envoy::{Balancer, CswrrSettings, Steering};
use crate::error::{Error, Result};
use crate::events::Applied;
use crate::load::{self, LoadSpec};
use crate::measure::{self, CpuSnapshot, Sample};
pub use crate::outcome::{PolicyResult, count_version_changes, count_weight_changes};
pub use crate::progress::Progress;
use crate::scenario::Scenario;
use crate::stack::{Binaries, Stack, StackConfig, prepare_cgroups};

/// What to compare.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The scenario every policy runs.
    pub scenario: Scenario,
    /// Policy names in run order: `even`, `cswrr` or a weight-server policy.
    pub policies: Vec<String>,
    /// A constant entry rate for the first entry service, replacing its
    /// schedule (`--rate` / `--utilisation`).
    pub rate_override: Option<f64>,
    /// hey's per-worker rate, in requests per second (workers = rate / this).
    pub per_worker_rate: f64,
    /// hey processes per load (see [`crate::load`]).
    pub shards: u64,
    /// Load before each measured window (zero: none).
    pub warmup: Duration,
    /// Length of each policy's measured window.
    pub duration: Duration,
    /// How many times the whole comparison runs (0 counts as 1).
    pub repeat: u32,
    /// Steering for the filter's policies.
    pub steering: Steering,
    /// Stack settings; steering, balancer, policy and dir are set per policy.
    pub stack: StackConfig,
    /// Kill and remove a leftover lab cgroup tree instead of refusing to start.
    pub force_cleanup: bool,
    /// The hey executable.
    pub hey: PathBuf,
    /// Period of the CPU and weights samples.
    pub sample_every: Duration,
    /// Envoy's client-side WRR settings of the `cswrr` baseline.
    pub cswrr: CswrrSettings,
}

/// Rough wall time of a whole comparison.
pub fn estimate(cfg: &RunConfig) -> Duration {
    let per = cfg.warmup + cfg.duration + Duration::from_secs(8);
    per * (cfg.policies.len() as u32 * cfg.repeat.max(1))
}

/// The filter's steering, the balancer and the weight server's policy of a policy name.
fn setup_for(
    policy: &str,
    steering: Steering,
    cswrr: CswrrSettings,
) -> (Steering, Balancer, String) {
    match policy {
        "even" => (Steering::Off, Balancer::LeastRequest, "even".into()),
        "cswrr" => (Steering::Off, Balancer::Cswrr(cswrr), "even".into()),
        p => (steering, Balancer::LeastRequest, p.into()),
    }
}

/// The `(start s, rate)` schedule of each entry service.
pub fn schedules(cfg: &RunConfig) -> Vec<(String, Vec<(f64, f64)>)> {
    cfg.scenario
        .entries()
        .enumerate()
        .map(|(i, e)| {
            let plan = match cfg.rate_override {
                Some(r) if i == 0 => vec![(0.0, r)],
                _ => cfg.scenario.schedule(&e.name),
            };
            (e.name.clone(), plan)
        })
        .collect()
}

/// Time-weighted mean rate of a schedule over `duration`.
pub fn mean_rate(plan: &[(f64, f64)], duration: f64) -> f64 {
    let mut total = 0.0;
    for (i, (at, rate)) in plan.iter().enumerate() {
        let end = plan.get(i + 1).map_or(duration, |n| n.0).min(duration);
        total += rate * (end - at).max(0.0);
    }
    if duration > 0.0 {
        total / duration
    } else {
        0.0
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
    (scfg.steering, scfg.balancer, scfg.policy) = setup_for(policy, cfg.steering, cfg.cswrr);
    scfg.dir = out.join("runs").join(format!("{repeat}-{policy}"));
    let cg = prepare_cgroups(&scfg.cgroup_root, &scfg.cgroup_name, cfg.force_cleanup)?;
    progress.say(&format!("{tag}: starting the stack"));
    let mut stack = Stack::start(&scfg, &cfg.scenario, bins, cg, client).await?;
    let plans = schedules(cfg);
    if plans.is_empty() {
        return Err(Error::Precondition("scenario has no entry service".into()));
    }
    let gateways = stack.gateways.clone();
    let spec = |entry: usize, rate: f64, duration| LoadSpec {
        url: format!("http://{}/", gateways[entry].listen),
        host: cfg
            .scenario
            .service(&gateways[entry].service)
            .map(|s| s.authority())
            .unwrap_or_default(),
        rate,
        duration,
        per_worker_rate: cfg.per_worker_rate,
        shards: cfg.shards,
    };
    if !cfg.warmup.is_zero() {
        progress.say(&format!("{tag}: warm-up {}s", cfg.warmup.as_secs()));
        let mut warm = Vec::new();
        for (i, (svc, plan)) in plans.iter().enumerate() {
            let rate = plan.first().map_or(0.0, |s| s.1);
            let name = format!("hey-warmup-{svc}");
            warm.push(
                load::start(
                    &cfg.hey,
                    &spec(i, rate, cfg.warmup),
                    &name,
                    &scfg.dir,
                    &stack.infra,
                )
                .await?,
            );
        }
        for hey in &mut warm {
            hey.wait_exit(cfg.warmup + Duration::from_secs(30)).await?;
        }
        stack.check_alive()?;
    }
    progress.say(&format!(
        "{tag}: measured load for {}s",
        cfg.duration.as_secs()
    ));
    let cg = stack.cgroups.0.clone();
    let gw0 = gateway_counters(client, &gateways).await?;
    let cpu0 = CpuSnapshot::take(&cg, &cfg.scenario)?;
    let window = cfg.duration.as_secs_f64();
    // Per entry: the next step to start, and every load started so far.
    let mut next_step = vec![0usize; plans.len()];
    let mut loads: Vec<Vec<load::LoadRun>> = plans.iter().map(|_| Vec::new()).collect();
    let mut next_event = 0;
    let mut applied = Vec::new();
    let mut samples = Vec::new();
    let mut prev = cpu0.clone();
    let mut end_cpu = None;
    let mut next_sample = cfg.sample_every.as_secs_f64();
    let deadline = Instant::now() + cfg.duration + Duration::from_secs(60);
    loop {
        let t = cpu0.at.elapsed().as_secs_f64();
        if Instant::now() > deadline {
            return Err(Error::Timeout("the measured window to end".into()));
        }
        for (i, (svc, plan)) in plans.iter().enumerate() {
            while next_step[i] < plan.len() && plan[next_step[i]].0 <= t && t < window {
                let (at, rate) = plan[next_step[i]];
                let end = plan.get(next_step[i] + 1).map_or(window, |n| n.0);
                let dur = Duration::from_secs_f64((end - at.max(t)).max(0.5));
                let name = format!("hey-{svc}-{}", next_step[i]);
                loads[i].push(
                    load::start(
                        &cfg.hey,
                        &spec(i, rate, dur),
                        &name,
                        &scfg.dir,
                        &stack.infra,
                    )
                    .await?,
                );
                next_step[i] += 1;
            }
        }
        while let Some(e) = cfg
            .scenario
            .events
            .get(next_event)
            .filter(|e| e.at_s() <= t)
        {
            progress.say(&format!("{tag}: event {} at {t:.1}s", e.label()));
            let effect = stack.apply(e, client).await?;
            applied.push(Applied {
                at_s: e.at_s(),
                applied_s: cpu0.at.elapsed().as_secs_f64(),
                label: e.label(),
                effect,
            });
            next_event += 1;
        }
        let busy = loads.iter_mut().flatten().any(|l| l.alive());
        let steps_left = next_step.iter().zip(&plans).any(|(n, (_, p))| *n < p.len());
        if t >= window && !busy && (!steps_left || t > window + 1.0) {
            break;
        }
        if t >= next_sample && t <= window {
            next_sample += cfg.sample_every.as_secs_f64();
            let now = CpuSnapshot::take(&cg, &cfg.scenario)?;
            let table = measure::weights(client, stack.server_addr).await;
            samples.push(Sample {
                t_s: now.at.duration_since(cpu0.at).as_secs_f64(),
                node_util_pct: measure::rates(&prev, &now, &cfg.scenario).node_util_pct,
                weights: table.as_ref().map(measure::pod_weights).unwrap_or_default(),
                version: table.map(|t| t.version),
            });
            prev = now;
        }
        if t >= window && end_cpu.is_none() {
            // The window is over: take the CPU reading now, not after the drain.
            end_cpu = Some(CpuSnapshot::take(&cg, &cfg.scenario)?);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cpu1 = match end_cpu {
        Some(c) => c,
        None => CpuSnapshot::take(&cg, &cfg.scenario)?,
    };
    let gw1 = gateway_counters(client, &gateways).await?;
    stack.check_alive()?;
    let mut entries = BTreeMap::new();
    let mut mean_rates = BTreeMap::new();
    for (i, (svc, plan)) in plans.iter().enumerate() {
        let mut csv = String::new();
        for l in &loads[i] {
            csv.push_str(&l.output()?);
        }
        let offered = mean_rate(plan, window);
        mean_rates.insert(svc.clone(), offered);
        entries.insert(svc.clone(), load::parse_csv(&csv, offered, cfg.duration)?);
    }
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
    let fair = measure::tenant_fair_share(&cfg.scenario);
    let convergence = convergence_of(&plans, &applied, &samples, window);
    let demand = crate::fairness::tenant_demand(&cfg.scenario, &mean_rates);
    Ok(PolicyResult {
        policy: policy.to_string(),
        repeat,
        load: entries.get(&plans[0].0).cloned().unwrap_or_default(),
        entries,
        gateway,
        node_util_pct: rates.node_util_pct.clone(),
        tenant_millicores: measure::tenant_millicores(&rates, &cfg.scenario),
        pod_millicores: rates.pod_millicores.clone(),
        tenant_entitled: crate::fairness::entitled(&fair, &demand),
        tenant_fair_share: fair,
        version_changes: count_version_changes(&samples),
        weight_changes: count_weight_changes(&samples),
        convergence,
        final_weights: samples
            .last()
            .map(|s| s.weights.clone())
            .unwrap_or_default(),
        events: applied,
        samples,
    })
}

/// Every gateway's downstream response counters, summed.
async fn gateway_counters(
    client: &reqwest::Client,
    gateways: &[crate::stack::Gateway],
) -> Result<BTreeMap<String, u64>> {
    let mut sum = BTreeMap::new();
    for g in gateways {
        for (k, v) in measure::envoy_responses(client, g.admin).await? {
            *sum.entry(k).or_insert(0) += v;
        }
    }
    Ok(sum)
}

/// Settle after every load step and applied event, signal-to-weight after
/// every hog event.
fn convergence_of(
    plans: &[(String, Vec<(f64, f64)>)],
    applied: &[Applied],
    samples: &[Sample],
    window: f64,
) -> Convergence {
    let mut changes: Vec<f64> = plans
        .iter()
        .flat_map(|(_, p)| p.iter().map(|s| s.0))
        .filter(|at| *at > 0.0 && *at < window)
        .collect();
    changes.extend(applied.iter().map(|a| a.applied_s));
    let signals: Vec<f64> = applied
        .iter()
        .filter(|a| a.label.starts_with("hog_"))
        .map(|a| a.applied_s)
        .collect();
    convergence::measure(samples, &changes, &signals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baselines_run_without_the_filter() {
        let c = CswrrSettings::lab(Duration::from_millis(500));
        assert_eq!(setup_for("even", Steering::Subset, c).0, Steering::Off);
        let (st, b, server) = setup_for("cswrr", Steering::Subset, c);
        assert_eq!(
            (st, b, server.as_str()),
            (Steering::Off, Balancer::Cswrr(c), "even")
        );
        assert_eq!(
            setup_for("optimal", Steering::Session, c).0,
            Steering::Session
        );
    }

    #[test]
    fn mean_rate_weighs_steps_by_their_length() {
        let plan = [(0.0, 100.0), (15.0, 200.0), (30.0, 100.0)];
        assert!((mean_rate(&plan, 45.0) - 133.333_333).abs() < 1e-3);
        assert!((mean_rate(&[(0.0, 50.0)], 30.0) - 50.0).abs() < 1e-9);
    }
}
