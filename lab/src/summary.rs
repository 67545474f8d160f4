//! `summary.md`: what was run, the table per policy (per repeat), the
//! targets with the margin by which each is met or missed, the spread over
//! repeats and whether the policy ordering held.

use std::fmt::Write as _;

use crate::load::LoadSpec;
use crate::report::{ordering, spread, table, targets};
use crate::run::{PolicyResult, RunConfig};

/// The whole summary.
pub fn markdown(cfg: &RunConfig, results: &[PolicyResult], command: &str) -> String {
    let sc = &cfg.scenario;
    let mut s = format!("# Lab results: scenario `{}`\n\n", sc.name);
    let _ = writeln!(s, "Command: `{command}`\n");
    let _ = writeln!(
        s,
        "Nodes: {}. Offered load {:.0} req/s at the gateway ({} us CPU per request over all tiers; \
         hey: {} workers in {} staggered processes), \
         warm-up {} s, measured {} s per policy, {} repeat(s), agent/recompute interval {} ms. \
         Load average at the end: `{}`.\n",
        sc.nodes
            .iter()
            .map(|n| format!("{} {}m", n.name, n.capacity_millicores))
            .collect::<Vec<_>>()
            .join(", "),
        cfg.rate,
        sc.services
            .iter()
            .find(|x| x.entry)
            .map(|e| sc.chain_cost_us(&e.name))
            .unwrap_or(0),
        LoadSpec {
            url: String::new(),
            host: String::new(),
            rate: cfg.rate,
            duration: cfg.duration,
            per_worker_rate: cfg.per_worker_rate,
            shards: cfg.shards,
        }
        .workers(),
        cfg.shards.max(1),
        cfg.warmup.as_secs(),
        cfg.duration.as_secs(),
        cfg.repeat.max(1),
        cfg.stack.interval.as_millis(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    s.push_str(
        "Latency is hotel's (gateway -> frontend -> profile), from hey's per-request CSV. \
         Node CPU % is the node cgroup's cpuacct usage over the measured window divided by its quota. \
         Tenant CPU sums its pod cgroups. `table versions`: changes of the served version seen by \
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
