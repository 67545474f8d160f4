//! `mplb-lab bench-filter` (a benchmark, not a test): Envoy CPU per request
//! and saturation throughput with no filter, with a do-nothing proxy-wasm
//! filter and with mplb-filter, in one run on this machine.
//!
//! The Envoys under test (`--instances` per variant, `--layout`) run at
//! once, all pinned to core 0 (`--concurrency 1`); wrk and the trivial
//! upstream share core 1. Load goes to one variant at a time in short
//! bursts, cycling through the variants (order rotating per cycle), so that
//! the changing load of a shared machine hits every variant alike ([`timed`]:
//! CPU from schedstat, disturbed cycles repeated, the bootstrap interval of
//! [`interval`]). `--instructions` counts instructions per request under
//! valgrind instead ([`instructions`]). Fairness: the upstream serves on
//! three ports (three hosts); the service cluster has those three endpoints
//! and the per-pod clusters one each, as in Istio; every variant talks to the
//! same three hosts through its own pools. Every flag also reads the
//! environment variable of the old `scripts/bench-filter` (BURST, CYCLES, ...).

mod args;
pub mod cpu;
pub mod instructions;
pub mod interval;
pub mod load;
pub mod setup;
pub mod timed;
pub mod variants;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mplb_envoy_harness::{Envoy, Launch, free_port};

use crate::error::{Error, Result};
pub use args::{BenchArgs, Layout};
use setup::Served;
use variants::Variant;

/// Progress lines on stderr.
pub fn log(msg: &str) {
    eprintln!("[bench-filter] {msg}");
}

/// Everything running for a benchmark; stopped on drop.
pub struct Bench {
    /// The knobs.
    pub args: BenchArgs,
    /// The Envoy binary.
    pub envoy: PathBuf,
    /// Work directory (configs, modules, logs).
    pub work: tempfile::TempDir,
    /// Variants, in order.
    pub variants: Vec<Variant>,
    /// Every instance run (`mplb`, `mplb#2`, ...), in order.
    pub runs: Vec<Served>,
    /// Per run name: its Envoy's index in `envoys` and admin address.
    pub envoy_of: BTreeMap<String, (usize, SocketAddr)>,
    /// The Envoys under test.
    pub envoys: Vec<Envoy>,
    /// Their launch lines (for restarts under valgrind).
    pub launches: Vec<Launch>,
    /// The upstream.
    pub upstream: Envoy,
    /// Niceness used.
    pub nice: i32,
    /// Instances per variant.
    pub instances: u32,
    /// Layout.
    pub layout: Layout,
    /// Set (by a signal handler) to end the run early.
    pub stop: Arc<AtomicBool>,
}

impl Bench {
    /// Err(Interrupted) once `stop` is set: checked between bursts and windows.
    pub fn check_stop(&self) -> Result<()> {
        if self.stop.load(Ordering::Relaxed) {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }
}

fn addr() -> Result<SocketAddr> {
    let p = free_port().map_err(|e| Error::Precondition(e.to_string()))?;
    Ok(SocketAddr::from(([127, 0, 0, 1], p)))
}

fn harness(e: mplb_envoy_harness::Error) -> Error {
    Error::Precondition(e.to_string())
}

/// Run the benchmark (or print the pooled interval) and print its tables;
/// setting `stop` ends it early (everything started is stopped).
pub fn run(args: BenchArgs, stop: Arc<AtomicBool>) -> Result<()> {
    if !args.pool.is_empty() {
        let mut text = String::new();
        for (i, f) in args.pool.iter().enumerate() {
            let t = std::fs::read_to_string(f).map_err(|e| Error::io("read", f, e))?;
            // Cycle numbers made distinct per file.
            text.extend(t.lines().map(|l| format!("{}-{l}\n", i + 1)));
        }
        for line in interval::report(&interval::parse(&text), &["mplb"]) {
            println!("{line}");
        }
        return Ok(());
    }
    let bench = start(args, stop)?;
    if bench.args.instructions {
        instructions::run(bench)
    } else {
        timed::run(bench)
    }
}

fn start(args: BenchArgs, stop: Arc<AtomicBool>) -> Result<Bench> {
    let envoy = mplb_envoy_harness::find_envoy().map_err(harness)?;
    for tool in ["wrk", "taskset", "curl"] {
        if crate::procs::which(tool).is_none() {
            return Err(Error::Precondition(format!(
                "{tool} missing: run scripts/setup.sh"
            )));
        }
    }
    if std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        < 2
    {
        return Err(Error::Precondition(
            "needs 2 cores (Envoy on core 0, load on core 1)".into(),
        ));
    }
    // SAFETY: geteuid only reads the caller's effective user id.
    let root = unsafe { libc::geteuid() } == 0;
    let nice = args.nice.unwrap_or(if root { -10 } else { 0 });
    let repo = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target"));
    log("building the filter and the noop filter (wasm32-wasip1, wasm-release)");
    let out = setup::build(&repo, &target)?;
    let work = tempfile::tempdir().map_err(|e| Error::io("create", "a temp dir", e))?;
    let mut modules = vec![
        (
            "mplb".to_string(),
            out.join("mplb_filter.wasm"),
            "-Oz".to_string(),
        ),
        ("noop".into(), out.join("examples/noop.wasm"), "-Oz".into()),
        (
            "probe".into(),
            out.join("examples/probe.wasm"),
            "-Oz".into(),
        ),
        (
            "rawprobe".into(),
            out.join("examples/rawprobe.wasm"),
            "-Oz".into(),
        ),
    ];
    if let Some(a) = &args.alt_wasm {
        modules.push(("alt".into(), a.clone(), args.alt_wasm_opt.clone()));
    }
    for (i, m) in args.more_wasm.iter().enumerate() {
        modules.push((
            format!("alt{}", i + 2),
            m.clone(),
            args.alt_wasm_opt.clone(),
        ));
    }
    for (name, src, level) in &modules {
        log(&setup::prepare_module(src, work.path(), name, level)?);
    }
    let variants = variants::plan(
        &args.variants,
        args.alt_wasm.is_some(),
        args.more_wasm.len(),
    )?;
    let (layout, instances) = if args.instructions {
        (Layout::Separate, args.instances.unwrap_or(1))
    } else {
        (
            args.layout.unwrap_or(Layout::Shared),
            args.instances.unwrap_or(3),
        )
    };

    let up = [addr()?, addr()?, addr()?];
    let up_admin = addr()?;
    let table = setup::table(&up, args.table_pods)?;
    let up_cfg = work.path().join("upstream.json");
    setup::upstream(up_admin, &up, &table)
        .write(&up_cfg)
        .map_err(harness)?;
    let pin = |core: &str| -> Vec<std::ffi::OsString> {
        ["nice", "-n", &nice.to_string(), "taskset", "-c", core]
            .iter()
            .map(Into::into)
            .collect()
    };
    let mut l = Launch::new(&envoy, &up_cfg);
    l.base_id = Some(u32::from(up[0].port()));
    l.log_level = "error".into();
    l.prefix = pin("1");
    let mut upstream = l
        .spawn(&work.path().join("upstream.log"))
        .map_err(harness)?;
    upstream
        .wait_ready(up_admin, Duration::from_secs(10))
        .map_err(harness)?;

    let mut runs = Vec::new();
    for i in 1..=instances {
        for (k, v) in variants.iter().enumerate() {
            let name = if i == 1 {
                v.name()
            } else {
                format!("{}#{i}", v.name())
            };
            runs.push(Served {
                variant: v.clone(),
                name,
                listen: addr()?,
                suffix: format!("-{}", k + 1),
            });
        }
    }
    let groups: Vec<(String, Vec<Served>)> = match layout {
        Layout::Separate => runs
            .iter()
            .map(|r| {
                (
                    r.name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
                    vec![r.clone()],
                )
            })
            .collect(),
        Layout::Shared => (1..=instances)
            .map(|i| {
                (
                    format!("instance{i}"),
                    runs.iter()
                        .skip((i as usize - 1) * variants.len())
                        .take(variants.len())
                        .cloned()
                        .collect(),
                )
            })
            .collect(),
    };
    let mut bench = Bench {
        args,
        envoy: envoy.clone(),
        work,
        variants,
        runs,
        envoy_of: BTreeMap::new(),
        envoys: Vec::new(),
        launches: Vec::new(),
        upstream,
        nice,
        instances,
        layout,
        stop,
    };
    let warm = load::Loader {
        prefix: pin_words(nice, "1"),
        headers: headers(&bench.args),
    };
    for (name, served) in groups {
        let admin = addr()?;
        let cfg = bench.work.path().join(format!("lb-{name}.json"));
        setup::under_test(admin, &served, &up, bench.work.path())
            .write(&cfg)
            .map_err(harness)?;
        let mut l = Launch::new(&envoy, &cfg);
        l.base_id = Some(u32::from(admin.port()));
        l.prefix = pin("0");
        let mut e = l
            .spawn(&bench.work.path().join(format!("lb-{name}.log")))
            .map_err(harness)?;
        e.wait_ready(admin, Duration::from_secs(10))
            .map_err(harness)?;
        for s in &served {
            bench
                .envoy_of
                .insert(s.name.clone(), (bench.envoys.len(), admin));
            warm.wrk(
                s.listen,
                &s.variant.host(bench.args.mplb_host.as_deref()),
                bench.args.conns,
                1,
            )?;
        }
        bench.envoys.push(e);
        bench.launches.push(l);
    }
    let names: Vec<String> = bench.variants.iter().map(Variant::name).collect();
    log(&format!(
        "variants: {} ({instances} instances each, layout {})",
        names.join(" "),
        if layout == Layout::Shared {
            "shared"
        } else {
            "separate"
        }
    ));
    Ok(bench)
}

/// `nice -n N taskset -c <core>`.
pub fn pin_words(nice: i32, core: &str) -> Vec<String> {
    ["nice", "-n", &nice.to_string(), "taskset", "-c", core]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The extra headers of every request (`--mesh-headers`).
pub fn headers(args: &BenchArgs) -> Vec<String> {
    if args.mesh_headers {
        load::MESH_HEADERS.iter().map(|s| s.to_string()).collect()
    } else {
        Vec::new()
    }
}

/// The median of `xs` (NaN when empty).
pub fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
