//! `summary.md`: what was run, the table per policy (per repeat), the
//! targets with the margin by which each is met or missed, the spread over
//! repeats and whether the policy ordering held.

use std::fmt::Write as _;

use crate::report::{ordering, spread, table, targets};
use crate::run::{PolicyResult, RunConfig, schedules};

/// The whole summary.
pub fn markdown(cfg: &RunConfig, results: &[PolicyResult], command: &str) -> String {
    let sc = &cfg.scenario;
    let mut s = format!("# Lab results: scenario `{}`\n\n", sc.name);
    let _ = writeln!(s, "Command: `{command}`\n");
    if !sc.description.is_empty() {
        let _ = writeln!(s, "{}\n", sc.description);
    }
    let load: Vec<String> = schedules(cfg)
        .iter()
        .map(|(svc, plan)| {
            let steps: Vec<String> = plan
                .iter()
                .map(|(at, r)| format!("{r:.0} req/s from {at:.0} s"))
                .collect();
            format!(
                "{svc} ({} us CPU per request over all tiers): {}",
                sc.chain_cost_us(svc),
                steps.join(", ")
            )
        })
        .collect();
    let _ = writeln!(
        s,
        "Nodes: {}. Offered load: {}. hey: {} req/s per worker in {} staggered processes. \
         Warm-up {} s, measured {} s per policy, {} repeat(s), agent/recompute interval {} ms. \
         Load average at the end: `{}` (the machine is shared: other builds may run at the same time).\n",
        sc.nodes
            .iter()
            .map(|n| format!("{} {}m", n.name, n.capacity_millicores))
            .collect::<Vec<_>>()
            .join(", "),
        load.join("; "),
        cfg.per_worker_rate,
        cfg.shards.max(1),
        cfg.warmup.as_secs(),
        cfg.duration.as_secs(),
        cfg.repeat.max(1),
        cfg.stack.interval.as_millis(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    if !sc.events.is_empty() {
        let ev: Vec<String> = sc
            .events
            .iter()
            .map(|e| format!("{} at {} s", e.label(), e.at_s()))
            .collect();
        let _ = writeln!(s, "Events: {}.\n", ev.join("; "));
    }
    if cfg.policies.iter().any(|p| p == "cswrr") {
        let _ = writeln!(
            s,
            "`cswrr`: no filter; Envoy's client_side_weighted_round_robin on every service cluster, \
             pods answering in-band ORCA (`endpoint-load-metrics`, their node's CPU utilisation and \
             their own rps). Settings: `{}`.\n",
            serde_json::to_string(&cfg.cswrr).unwrap_or_default()
        );
    }
    s.push_str(
        "Latency is per entry service (the first one in the p50/p99/p99.9 columns), end to end through every tier, from hey's per-request CSV. \
         Node CPU % is the node cgroup's cpuacct usage over the measured window divided by its quota. \
         Tenant CPU sums its pod cgroups; entitled = min(fair share, offered demand); \
         Jain = Jain's index over tenants' served/entitled (capped at 1); max/avg = busiest node's CPU % over the mean node's. `table versions`: changes of the served version seen by \
         the sampler; `weight moves`: samples where a normalised weight moved by > 0.01.\n\n",
    );
    for r in 1..=cfg.repeat.max(1) {
        let rows: Vec<&PolicyResult> = results.iter().filter(|x| x.repeat == r).collect();
        let _ = writeln!(s, "## Repeat {r}\n\n{}", table(&rows));
    }
    let ts = targets(results);
    if !ts.is_empty() {
        s.push_str(
            "## Targets (medians over repeats)\n\n| target | result | met |\n|---|---|---|\n",
        );
        for t in &ts {
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                t.name,
                t.detail,
                if t.met { "yes" } else { "**no**" }
            );
        }
        s.push('\n');
    }
    if cfg.repeat > 1 {
        let (orders, same) = ordering(results);
        let _ = writeln!(
            s,
            "## Spread over {} repeats\n\n{}",
            cfg.repeat,
            spread(results)
        );
        let _ = writeln!(
            s,
            "Ordering by hotel p99 (best first) per repeat: {}. Same in every repeat: **{}**.\n",
            orders
                .iter()
                .map(|o| o.join(" < "))
                .collect::<Vec<_>>()
                .join("; "),
            if same { "yes" } else { "no" }
        );
    }
    s.push_str("Files: `results.json` (all figures), `timeseries.csv` (per-node CPU and served weights every sample), `plot.svg`, `command.txt`, `runs/` (configs and logs of every process).\n");
    s
}
