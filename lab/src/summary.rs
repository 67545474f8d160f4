//! `summary.md`: a header saying what was run (from the run's
//! configuration), then a body rendered from the results alone (the table
//! per policy and repeat, the targets of docs/scenarios.md judged by
//! [`crate::verdict`], the spread over repeats and whether the ordering
//! held), so `mplb-lab summarize` can render the body again from a
//! committed `results.json`.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::report::{ordering, spread, table};
use crate::run::{PolicyResult, RunConfig, schedules};
use crate::verdict::{RunFile, read_run, verdicts};

/// Where the body starts: the first repeat's heading.
pub const BODY_START: &str = "## Repeat 1\n";

/// The whole summary.
pub fn markdown(cfg: &RunConfig, run: &RunFile, command: &str) -> String {
    header(cfg, command) + &body(run)
}

/// What was run: the command, the scenario, the load, the events, the
/// baseline's settings and how to read the tables.
pub fn header(cfg: &RunConfig, command: &str) -> String {
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
         Warm-up {} s, measured {} s per policy, {} repeat(s), agent/recompute interval {} ms{}. \
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
        sc.run.admission_target.map_or(String::new(), |a| format!(
            ", admission target {a} (optimal's runs)"
        )),
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
        "Latency is per entry service (the first one in the p50/p99/p99.9 columns), end to end through every tier, from hey's per-request CSV, \
         over the 2xx responses only (a shed request's fast 503 is not a served request's latency). \
         `non-2xx` (the larger of hey's count and the gateways' counters) counts the requests the gateways shed \
         (when admission is on) plus errors. \
         Node CPU % is the node cgroup's cpuacct usage over the measured window divided by its quota. \
         Tenant CPU sums its pod cgroups; entitled = min(fair share, offered demand); \
         Jain = Jain's index over tenants' served/entitled (capped at 1); max/avg = busiest node's CPU % over the mean node's. `table versions`: changes of the served version seen by \
         the sampler; `weight moves`: samples where a normalised weight moved by > 0.01.\n\n",
    );
    s
}

/// The tables of every repeat, the targets, the spread and the ordering.
pub fn body(run: &RunFile) -> String {
    let results = &run.results;
    let repeats = run.repeats();
    let mut s = String::new();
    for r in 1..=repeats {
        let rows: Vec<&PolicyResult> = results.iter().filter(|x| x.repeat == r).collect();
        let _ = writeln!(s, "## Repeat {r}\n\n{}", table(&rows));
    }
    let ts = verdicts(run);
    if !ts.is_empty() {
        s.push_str(
            "## Targets (docs/scenarios.md; medians over repeats)\n\n| target | optimal | met |\n|---|---|---|\n",
        );
        for t in &ts {
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                t.target,
                t.measured,
                if t.met { "yes" } else { "**no**" }
            );
        }
        s.push('\n');
    }
    if repeats > 1 {
        let (orders, same) = ordering(results);
        let _ = writeln!(
            s,
            "## Spread over {} repeats\n\n{}",
            repeats,
            spread(results)
        );
        let _ = writeln!(
            s,
            "Ordering by the first entry's p99 (best first) per repeat: {}. Same in every repeat: **{}**.\n",
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

/// The summary again with its body rendered from `run`: the header (what
/// was run) stays as written; an error when `existing` has no body.
pub fn rerender(existing: &str, run: &RunFile) -> Result<String> {
    let at = existing.find(BODY_START).ok_or_else(|| {
        Error::Results(format!("summary.md has no {:?} heading", BODY_START.trim()))
    })?;
    Ok(format!("{}{}", &existing[..at], body(run)))
}

/// Render `dir/summary.md`'s body again from `dir/results.json`
/// (`mplb-lab summarize`), e.g. after the targets' definitions change.
pub fn rewrite(dir: &Path) -> Result<()> {
    let run = read_run(dir)?;
    let path = dir.join("summary.md");
    let existing = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
    crate::report::write(&path, &rerender(&existing, &run)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(results: serde_json::Value) -> RunFile {
        let doc = serde_json::json!({
            "config": {"scenario": {"name": "s", "tenants": [{"name": "hotel"}],
                "load": [{"service": "frontend", "steps": [{"cpu_fraction": 0.5}]}]}},
            "results": results,
        });
        serde_json::from_value(doc).unwrap()
    }

    fn config(scenario: &str, admission_target: Option<f64>) -> RunConfig {
        use crate::envoy::{Balancer, CswrrSettings, Steering};
        use std::time::Duration;
        let mut scenario = crate::scenario::Scenario::by_name(scenario).unwrap();
        scenario.run.admission_target = admission_target;
        RunConfig {
            policies: scenario.run.policies.clone(),
            scenario,
            rate_override: None,
            per_worker_rate: 2.0,
            shards: 10,
            warmup: Duration::from_secs(10),
            duration: Duration::from_secs(30),
            repeat: 1,
            steering: Steering::Subset,
            stack: crate::stack::StackConfig {
                cgroup_root: "/sys/fs/cgroup".into(),
                cgroup_name: "mplb-lab".into(),
                base_port: 0,
                steering: Steering::Subset,
                balancer: Balancer::LeastRequest,
                policy: "spare".into(),
                interval: Duration::from_millis(500),
                server_args: Vec::new(),
                dir: "/tmp/run".into(),
            },
            force_cleanup: false,
            hey: "hey".into(),
            sample_every: Duration::from_secs(1),
            cswrr: CswrrSettings::lab(Duration::from_millis(500)),
        }
    }

    #[test]
    fn the_header_names_the_admission_target_and_the_2xx_latency_rule() {
        let on = header(&config("over-capacity", Some(0.95)), "mplb-lab");
        assert!(
            on.contains("interval 500 ms, admission target 0.95 (optimal's runs). "),
            "{on}"
        );
        let off = header(&config("over-capacity", None), "mplb-lab");
        assert!(!off.contains("admission target"), "{off}");
        assert!(off.contains("interval 500 ms. "), "{off}");
        for h in [&on, &off] {
            assert!(h.contains("over the 2xx responses only"), "{h}");
            assert!(h.contains("requests the gateways shed"), "{h}");
        }
    }

    #[test]
    fn rerender_keeps_the_header_and_replaces_the_body() {
        let run = run_with(serde_json::json!([]));
        let old = "# Lab results\n\nheader text\n\n## Repeat 1\n\nold table\n## Targets\nold\n";
        let new = rerender(old, &run).unwrap();
        assert!(new.starts_with("# Lab results\n\nheader text\n\n"), "{new}");
        assert!(
            !new.contains("old table") && !new.contains("old\n"),
            "{new}"
        );
        assert!(
            new.ends_with("`runs/` (configs and logs of every process).\n"),
            "{new}"
        );
        let err = rerender("# no body\n", &run).unwrap_err().to_string();
        assert!(err.contains("## Repeat 1"), "{err}");
    }
}
