//! `mplb-lab`: the local lab orchestrator (see the `mplb_lab` crate docs).

use anyhow::Context;
use clap::{Parser, Subcommand};
use mplb_lab::envoy::{Balancer, CswrrSettings, Steering};
use mplb_lab::run::{self, RunConfig};
use mplb_lab::scenario::{Scenario, scenario_error};
use mplb_lab::stack::{Binaries, StackConfig};
use mplb_lab::{Error, plot, quick, report};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Commands besides a lab run.
#[derive(Debug, Subcommand)]
enum Cmd {
    /// Benchmark the filter's Envoy CPU per request and throughput (was scripts/bench-filter).
    BenchFilter(Box<mplb_lab::bench::BenchArgs>),
    /// Check that Envoy loads a filter module (`envoy --mode validate`).
    ValidateWasm {
        /// The module.
        #[arg(long)]
        wasm: PathBuf,
        /// The weight-server cluster named in its configuration.
        #[arg(
            long,
            default_value = "outbound|8080||weight-server.mplb-system.svc.cluster.local"
        )]
        weight_server_cluster: String,
    },
    /// Judge committed runs against the policy targets (docs/scenarios.md):
    /// prints the table of all scenarios x policies and the targets, medians
    /// over each run's repeats.
    Verdict {
        /// Run directories (`results/<scenario>/<UTC time>`), each holding
        /// `results.json`; the table links their `summary.md`.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
    },
    /// Render each run's `summary.md` body (tables, targets, spread) again
    /// from its `results.json`; the header stays as written.
    Summarize {
        /// Run directories (`results/<scenario>/<UTC time>`).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
    },
}

/// Run multiparty-lb on one machine: cgroup nodes, test-app pods, real
/// Envoy sidecars with the filter, the weight server and host agents.
#[derive(Debug, Parser)]
#[command(name = "mplb-lab", version)]
struct Args {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Scenario: a shipped name (lab/scenarios/NAME.yaml, embedded) or a
    /// path ending in .yaml (format: docs/scenarios.md).
    #[arg(long, env = "MPLB_LAB_SCENARIO", default_value = "shared-node")]
    scenario: String,
    /// The end-to-end checks only (under a minute); exits non-zero on a failed check.
    #[arg(long, env = "MPLB_LAB_QUICK")]
    quick: bool,
    /// Policies to compare, in order (default: the scenario's `run.policies`).
    #[arg(long, env = "MPLB_LAB_POLICIES", value_delimiter = ',')]
    policies: Option<Vec<String>>,
    /// Replace the first entry service's schedule by a constant load: this
    /// fraction of total node capacity, hog demand included.
    #[arg(long, env = "MPLB_LAB_UTILISATION")]
    utilisation: Option<f64>,
    /// Replace the first entry service's schedule by a constant rate (overrides --utilisation).
    #[arg(long, env = "MPLB_LAB_RATE")]
    rate: Option<f64>,
    /// Per-worker rate of hey (workers = rate / this).
    #[arg(long, env = "MPLB_LAB_PER_WORKER_RATE", default_value_t = 2.0)]
    per_worker_rate: f64,
    /// hey processes per load, started spread over one worker period (hey's
    /// workers tick in step: one process would send bursts).
    #[arg(long, env = "MPLB_LAB_HEY_SHARDS", default_value_t = 10)]
    hey_shards: u64,
    /// Warm-up load before each measured window (default: the scenario's).
    #[arg(long, env = "MPLB_LAB_WARMUP")]
    warmup: Option<humantime::Duration>,
    /// Measured load window per policy (default: the scenario's; events and
    /// steps past its end are refused).
    #[arg(long, env = "MPLB_LAB_DURATION")]
    duration: Option<humantime::Duration>,
    /// Repeat the whole comparison N times (default: the scenario's).
    #[arg(long, env = "MPLB_LAB_REPEAT")]
    repeat: Option<u32>,
    /// Steering of the filter for the non-even policies.
    #[arg(long, env = "MPLB_LAB_MODE", value_enum, default_value_t = mplb_wire::Mode::Subset)]
    mode: mplb_wire::Mode,
    /// Agent report interval and server recompute interval (the filters poll
    /// every half of it; `cswrr`'s weight update period is this too).
    #[arg(long, env = "MPLB_LAB_INTERVAL", default_value = "500ms")]
    interval: humantime::Duration,
    /// Time-series sampling period.
    #[arg(long, env = "MPLB_LAB_SAMPLE_EVERY", default_value = "250ms")]
    sample_every: humantime::Duration,
    /// cgroup v1 root.
    #[arg(long, env = "MPLB_LAB_CGROUP_ROOT", default_value = "/sys/fs/cgroup")]
    cgroup_root: PathBuf,
    /// Name of the lab's cgroup subtree.
    #[arg(long, env = "MPLB_LAB_CGROUP_NAME", default_value = "mplb-lab")]
    cgroup_name: String,
    /// First loopback port (consecutive ports from here; 0 = any free ports).
    #[arg(long, env = "MPLB_LAB_BASE_PORT", default_value_t = 18100)]
    base_port: u16,
    /// Kill and remove a leftover lab cgroup tree from another run.
    #[arg(long, env = "MPLB_LAB_FORCE_CLEANUP")]
    force_cleanup: bool,
    /// An extra weight-server flag, e.g. `--server-arg=--report-debounce=0s`
    /// (repeatable; written in the results' configuration).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Directory holding weight-server, host-agent, lab-app (default: next to this binary).
    #[arg(long, env = "MPLB_LAB_BIN_DIR")]
    bin_dir: Option<PathBuf>,
    /// The filter (default: <target>/wasm32-wasip1/wasm-release/mplb_filter.wasm).
    #[arg(long, env = "MPLB_LAB_WASM")]
    wasm: Option<PathBuf>,
    /// hey (default: $MPLB_HEY or PATH).
    #[arg(long, env = "MPLB_HEY")]
    hey: Option<PathBuf>,
    /// Results root; a run writes <results-dir>/<scenario>/<UTC time>/.
    #[arg(long, env = "MPLB_LAB_RESULTS_DIR", default_value = "results")]
    results_dir: PathBuf,
}

fn stamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace([':', '-'], "")
}

async fn main_inner(args: Args) -> anyhow::Result<()> {
    // A malformed scenario stops here, before anything starts; overrides of
    // its `run` section are checked by the same rules as the file.
    let mut file = mplb_wire::scenario::parse(&Scenario::load_text(&args.scenario)?)
        .map_err(|e| Error::Scenario(format!("{}: {}", args.scenario, scenario_error(e))))?;
    if let Some(p) = &args.policies {
        file.run.policies = p.clone();
    }
    if let Some(d) = args.duration {
        file.run.duration_s = d.as_secs_f64();
    }
    if let Some(w) = args.warmup {
        file.run.warmup_s = w.as_secs_f64();
    }
    if let Some(r) = args.repeat {
        file.run.repeat = r;
    }
    file.validate().map_err(|e| {
        let e = scenario_error(e);
        Error::Scenario(format!(
            "{} with the command-line overrides: {e}",
            args.scenario
        ))
    })?;
    let scenario = Scenario::from_file(file);
    let hey = mplb_lab::load::find_hey(args.hey.clone())?;
    let bins = Binaries::find(args.bin_dir.as_deref(), args.wasm.as_deref())?;
    let name = if args.quick {
        "quick".to_string()
    } else {
        scenario.name.clone()
    };
    let out = args.results_dir.join(name).join(stamp());
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    let command: Vec<String> = std::env::args().collect();
    report::write(
        &out.join("command.txt"),
        &format!("{}\n", command.join(" ")),
    )?;
    let stack = StackConfig {
        cgroup_root: args.cgroup_root.clone(),
        cgroup_name: args.cgroup_name.clone(),
        base_port: args.base_port,
        steering: Steering::Subset,
        balancer: Balancer::LeastRequest,
        policy: "spare".into(),
        interval: args.interval.into(),
        server_args: args.server_args.clone(),
        dir: out.join("run"),
    };
    if args.quick {
        bins.require_wasm()?;
        let rep = quick::run(&stack, &bins, &hey, args.force_cleanup).await?;
        let text = serde_json::to_string_pretty(&rep)?;
        report::write(&out.join("quick.json"), &text)?;
        println!("{text}");
        println!("quick report: {}", out.join("quick.json").display());
        if !rep.failures.is_empty() {
            anyhow::bail!("quick checks failed:\n  {}", rep.failures.join("\n  "));
        }
        println!("quick checks passed");
        return Ok(());
    }
    if scenario
        .run
        .policies
        .iter()
        .any(|p| p != "even" && p != "cswrr")
    {
        bins.require_wasm()?;
    }
    let rate_override = args
        .rate
        .or_else(|| args.utilisation.map(|u| scenario.rate_for_utilisation(u)));
    let cfg = RunConfig {
        scenario: scenario.clone(),
        policies: scenario.run.policies.clone(),
        rate_override,
        per_worker_rate: args.per_worker_rate,
        shards: args.hey_shards,
        warmup: std::time::Duration::from_secs_f64(scenario.run.warmup_s),
        duration: std::time::Duration::from_secs_f64(scenario.run.duration_s),
        repeat: scenario.run.repeat,
        steering: match args.mode {
            mplb_wire::Mode::Subset => Steering::Subset,
            mplb_wire::Mode::Session => Steering::Session,
            mplb_wire::Mode::Override => anyhow::bail!(
                "--mode override: the lab's Envoys steer by subset or session; override mode runs on Istio's generation (istio-harness)"
            ),
        },
        stack,
        force_cleanup: args.force_cleanup,
        hey,
        sample_every: args.sample_every.into(),
        cswrr: CswrrSettings::lab(args.interval.into()),
    };
    let schedules = run::schedules(&cfg);
    eprintln!(
        "[lab] scenario {}, load {:?} (start s, req/s) on {}m, policies {:?}, {} repeat(s); results in {}",
        scenario.name,
        schedules,
        scenario.total_capacity(),
        cfg.policies,
        cfg.repeat,
        out.display()
    );
    let results = run::compare(&cfg, &bins, &out).await?;
    let config = serde_json::json!({
        "command": command, "scenario": scenario, "schedules": schedules,
        "rate_override": rate_override, "utilisation": args.utilisation,
        "cswrr": cfg.cswrr, "steering": format!("{:?}", cfg.steering),
        "warmup_s": cfg.warmup.as_secs_f64(), "duration_s": cfg.duration.as_secs_f64(),
        "repeat": cfg.repeat, "per_worker_rate": cfg.per_worker_rate, "hey_shards": cfg.shards,
        "interval_s": cfg.stack.interval.as_secs_f64(), "server_args": cfg.stack.server_args,
        "loadavg": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
    });
    let run = mplb_lab::verdict::RunFile::from_parts(config.clone(), results.clone())?;
    report::write_data(&out, &config, &results, &mplb_lab::verdict::verdicts(&run))?;
    let plot_path = out.join("plot.svg");
    let pod_node = scenario
        .pods
        .iter()
        .map(|p| (p.name.clone(), p.node.clone()))
        .collect();
    let entry = scenario
        .entries()
        .next()
        .map(|s| s.name.clone())
        .unwrap_or_default();
    plot::draw(&plot_path, &results, &pod_node, &entry)?;
    let summary = mplb_lab::summary::markdown(&cfg, &run, &command.join(" "));
    report::write(&out.join("summary.md"), &summary)?;
    println!("{summary}");
    println!("plot: {}", plot_path.display());
    println!("summary: {}", out.join("summary.md").display());
    Ok(())
}

/// The benchmark on a blocking thread; a signal asks it to stop, and it
/// stops everything it started before returning.
fn bench_filter(bench: mplb_lab::bench::BenchArgs) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let flag = stop.clone();
        let mut task = tokio::task::spawn_blocking(move || mplb_lab::bench::run(bench, flag));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = &mut task => return Ok(r??),
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        stop.store(true, Ordering::Relaxed);
        eprintln!("[bench-filter] stopping after the current burst");
        Ok(task.await??)
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match args.command {
        Some(Cmd::ValidateWasm {
            wasm,
            weight_server_cluster,
        }) => {
            let envoy = mplb_envoy_harness::find_envoy()?;
            let dir = tempfile::tempdir()?;
            mplb_lab::validate_wasm::run(&envoy, &wasm, &weight_server_cluster, dir.path())?;
            println!("Envoy ({}) loads {}", envoy.display(), wasm.display());
            return Ok(());
        }
        Some(Cmd::BenchFilter(bench)) => return bench_filter(*bench),
        Some(Cmd::Verdict { runs }) => {
            use mplb_lab::verdict;
            let mut read = Vec::new();
            for dir in &runs {
                read.push((
                    dir.join("summary.md").display().to_string(),
                    verdict::read_run(dir)?,
                ));
            }
            let all: Vec<_> = read
                .iter()
                .flat_map(|(_, r)| verdict::verdicts(r))
                .collect();
            println!("{}", verdict::table(&read));
            println!("{}", verdict::targets_table(&all));
            return Ok(());
        }
        Some(Cmd::Summarize { runs }) => {
            for dir in &runs {
                mplb_lab::summary::rewrite(dir)?;
                println!("{}", dir.join("summary.md").display());
            }
            return Ok(());
        }
        None => {}
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        // Dropping the run future on a signal drops every process guard and
        // the cgroup guard: children are killed, cgroups removed.
        tokio::select! {
            r = main_inner(args) => r,
            _ = tokio::signal::ctrl_c() => Err(Error::Interrupted.into()),
            _ = term.recv() => Err(Error::Interrupted.into()),
        }
    })
}
