//! The policy targets over committed runs (`mplb-lab verdict RUN_DIR...`):
//! each run's `results.json` is read back, every figure is the median over
//! the run's repeats, and the answer is one Markdown table of all scenarios
//! x policies and one of every target that applies to a scenario, with the
//! measured value, its bound and whether `optimal` meets it. The targets
//! and when each applies are defined in `docs/scenarios.md`.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::outcome::PolicyResult;
use crate::report::median;

/// The parts of `results.json` the verdict reads.
#[derive(Debug, Clone, Deserialize)]
pub struct RunFile {
    /// The run's configuration.
    pub config: RunConfigView,
    /// Every policy's outcome in every repeat.
    pub results: Vec<PolicyResult>,
}

/// The run's configuration, as far as the verdict needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct RunConfigView {
    /// The scenario as run.
    pub scenario: ScenarioView,
}

/// The scenario as run, as far as the verdict needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct ScenarioView {
    /// Its name.
    pub name: String,
    /// Offered load schedules per entry service.
    pub load: Vec<LoadView>,
    /// Timed events.
    #[serde(default)]
    pub events: Vec<EventView>,
    /// Tenants.
    pub tenants: Vec<NameView>,
}

/// One entry service's schedule.
#[derive(Debug, Clone, Deserialize)]
pub struct LoadView {
    /// The entry service.
    pub service: String,
    /// Its steps.
    pub steps: Vec<StepView>,
}

/// One step of a schedule.
#[derive(Debug, Clone, Deserialize)]
pub struct StepView {
    /// Fraction of total node capacity (hog demand included), if given so.
    #[serde(default)]
    pub cpu_fraction: Option<f64>,
}

/// A timed event.
#[derive(Debug, Clone, Deserialize)]
pub struct EventView {
    /// `hog_start`, `agent_kill`, ...
    pub kind: String,
}

/// Something with a name.
#[derive(Debug, Clone, Deserialize)]
pub struct NameView {
    /// The name.
    pub name: String,
}

/// Read a run directory's `results.json`.
pub fn read_run(dir: &Path) -> Result<RunFile> {
    let path = dir.join("results.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Results(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Error::Results(format!("{}: {e}", path.display())))
}

impl RunFile {
    /// The run as `results.json` will hold it: the configuration document
    /// the lab writes (read through the same typed view) and the results.
    pub fn from_parts(config: serde_json::Value, results: Vec<PolicyResult>) -> Result<Self> {
        let config = serde_json::from_value(config)
            .map_err(|e| Error::Results(format!("the run's configuration: {e}")))?;
        Ok(RunFile { config, results })
    }

    /// How many repeats the results hold.
    pub fn repeats(&self) -> u32 {
        self.results.iter().map(|r| r.repeat).max().unwrap_or(0)
    }
}

/// A scenario's figures per policy, medians over its repeats.
#[derive(Debug, Clone)]
pub struct Medians<'a> {
    run: &'a RunFile,
}

impl<'a> Medians<'a> {
    /// The figures of one run.
    pub fn new(run: &'a RunFile) -> Self {
        Medians { run }
    }

    /// Policies in the order they ran.
    pub fn policies(&self) -> Vec<&'a str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.run.results {
            if !out.contains(&r.policy.as_str()) {
                out.push(r.policy.as_str());
            }
        }
        out
    }

    /// Median of `f` over `policy`'s repeats.
    pub fn of(&self, policy: &str, f: impl Fn(&PolicyResult) -> Option<f64>) -> f64 {
        median(
            self.run
                .results
                .iter()
                .filter(|r| r.policy == policy)
                .filter_map(f)
                .collect(),
        )
    }

    /// Median p99 of an entry service.
    pub fn p99(&self, policy: &str, entry: &str) -> f64 {
        self.of(policy, |r| r.entries.get(entry).map(|l| l.p99_ms))
    }
}

/// One target in one scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The scenario.
    pub scenario: String,
    /// What is asked.
    pub target: String,
    /// What was measured (median over repeats), with the comparison.
    pub measured: String,
    /// Whether `optimal` meets it.
    pub met: bool,
}

fn entries(s: &ScenarioView) -> Vec<&str> {
    s.load.iter().map(|l| l.service.as_str()).collect()
}

/// Every target that applies to the run (docs/scenarios.md, "Targets").
pub fn verdicts(run: &RunFile) -> Vec<Verdict> {
    let m = Medians::new(run);
    let s = &run.config.scenario;
    let policies = m.policies();
    if !policies.contains(&"optimal") {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut push = |target: String, measured: String, met: bool| {
        out.push(Verdict {
            scenario: s.name.clone(),
            target,
            measured,
            met,
        })
    };
    let contended = m.of("even", |r| Some(r.busiest_node_pct())) >= 90.0;
    for entry in entries(s) {
        let opt = m.p99("optimal", entry);
        let best = policies
            .iter()
            .filter(|p| **p != "optimal")
            .map(|p| (m.p99(p, entry), *p))
            .filter(|(v, _)| v.is_finite())
            .min_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((b, name)) = best {
            push(
                format!("{entry} p99 <= 1.10x the best other policy's"),
                format!("{opt:.1} ms vs {name} {b:.1} ms ({:.2}x)", opt / b),
                opt <= 1.10 * b,
            );
        }
        if contended && policies.contains(&"even") {
            let even = m.p99("even", entry);
            push(
                format!("{entry} p99 <= 0.5x even's (a node is contended)"),
                format!("{opt:.1} ms vs {even:.1} ms ({:.2}x)", opt / even),
                opt <= 0.5 * even,
            );
        }
    }
    if s.tenants.len() >= 2 {
        for t in &s.tenants {
            let got = m.of("optimal", |r| {
                r.tenant_entitled
                    .contains_key(&t.name)
                    .then(|| r.served_over_entitled(&t.name))
            });
            let others: Vec<String> = ["spare", "cswrr"]
                .iter()
                .filter(|p| policies.contains(p))
                .map(|p| {
                    let v = m.of(p, |r| {
                        r.tenant_entitled
                            .contains_key(&t.name)
                            .then(|| r.served_over_entitled(&t.name))
                    });
                    format!("{p} {:.0} %", 100.0 * v)
                })
                .collect();
            push(
                format!("{} served >= 99 % of its entitlement", t.name),
                format!("{:.0} % ({})", 100.0 * got, others.join(", ")),
                got >= 0.99,
            );
        }
    }
    let offered: f64 = s
        .load
        .iter()
        .map(|l| {
            l.steps
                .iter()
                .filter_map(|st| st.cpu_fraction)
                .fold(0.0, f64::max)
        })
        .sum();
    if offered <= 1.0 {
        let v = m.of("optimal", |r| Some(r.max_over_avg()));
        push(
            "max/avg node CPU <= 1.10 (all demand fits)".into(),
            format!("{v:.2}"),
            v <= 1.10,
        );
    }
    if s.load.iter().any(|l| l.steps.len() > 1) {
        let settle = m.of("optimal", |r| r.convergence.worst_settle().map(f64::from));
        let osc = m.of("optimal", |r| Some(r.convergence.oscillations as f64));
        let shown = if settle.is_finite() {
            format!("{settle:.0}")
        } else {
            "never".into()
        };
        push(
            "settles within 3 polls after a load step, no oscillation".into(),
            format!("{shown} polls, {osc:.0} sign changes"),
            settle <= 3.0 && osc == 0.0,
        );
    }
    if s.events.iter().any(|e| e.kind.starts_with("hog_")) {
        let v = m.of("optimal", |r| r.convergence.signal_to_weight_p99_s());
        push(
            "signal-to-weight p99 <= 2 s".into(),
            format!("{v:.1} s"),
            v <= 2.0,
        );
    }
    out
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.0}%", 100.0 * v)
    } else {
        "-".into()
    }
}

/// The table of all scenarios x policies (medians over repeats).
pub fn table(runs: &[(String, RunFile)]) -> String {
    let mut s = String::from(
        "| scenario | policy | p50 / p99 / p99.9 ms (first entry) | other entry p99 ms | non-2xx | max/avg node CPU | busiest node % | tenants served/entitled | Jain | settle polls (worst) | oscillations | signal→weight p99 s |\n\
         |---|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|\n",
    );
    for (link, run) in runs {
        let m = Medians::new(run);
        let sc = &run.config.scenario;
        let first = entries(sc).first().copied().unwrap_or("");
        for p in m.policies() {
            let others: Vec<String> = entries(sc)
                .iter()
                .skip(1)
                .map(|e| format!("{e} {:.1}", m.p99(p, e)))
                .collect();
            let tenants: Vec<String> = sc
                .tenants
                .iter()
                .map(|t| {
                    let v = m.of(p, |r| {
                        r.tenant_entitled
                            .contains_key(&t.name)
                            .then(|| r.served_over_entitled(&t.name))
                    });
                    format!("{} {}", t.name, pct(v))
                })
                .collect();
            let opt = |v: f64, digits: usize| {
                if v.is_finite() {
                    format!("{v:.digits$}")
                } else {
                    "-".into()
                }
            };
            let _ = writeln!(
                s,
                "| [{}]({link}) | {p} | {:.1} / {:.1} / {:.1} | {} | {:.0} | {:.2} | {:.0} | {} | {:.3} | {} | {} | {} |",
                sc.name,
                m.of(p, |r| r.entries.get(first).map(|l| l.p50_ms)),
                m.p99(p, first),
                m.of(p, |r| r.entries.get(first).map(|l| l.p999_ms)),
                if others.is_empty() {
                    "-".into()
                } else {
                    others.join(", ")
                },
                m.of(p, |r| Some(r.non_2xx() as f64)),
                m.of(p, |r| Some(r.max_over_avg())),
                m.of(p, |r| Some(r.busiest_node_pct())),
                tenants.join(", "),
                m.of(p, |r| Some(r.jain())),
                opt(m.of(p, |r| r.convergence.worst_settle().map(f64::from)), 0),
                opt(
                    m.of(p, |r| (r.policy != "even" && r.policy != "cswrr")
                        .then_some(r.convergence.oscillations as f64)),
                    0
                ),
                opt(m.of(p, |r| r.convergence.signal_to_weight_p99_s()), 1),
            );
        }
    }
    s
}

/// The targets table.
pub fn targets_table(verdicts: &[Verdict]) -> String {
    let mut s = String::from("| scenario | target | optimal (median) | met |\n|---|---|---|---|\n");
    for v in verdicts {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            v.scenario,
            v.target,
            v.measured,
            if v.met { "yes" } else { "**no**" }
        );
    }
    s
}

#[cfg(test)]
mod tests;
